//! The cryptographic primitives the module uses for itself, outside any PKCS#11
//! mechanism: the store's sealing and MACs, the audit chain's hashes and checkpoint
//! signatures, the PIN KDF, and the OS random source. They live here, beside the
//! mechanisms, so that every crypto crate is called from `src/mechanism/` only (a test,
//! `tests/crypto_seam.rs`, keeps it so) and a second backend replaces them with the rest.

use zeroize::Zeroizing;

use super::hash::{self, HashAlg};
use super::Digester;
use crate::error::{Error, Internal, Result};

/// Fills `buf` from the backend's CSPRNG (AWS-LC's, or the OS's under `rustcrypto`).
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    super::backend::fill_random(buf)
}

/// The crypto backend this build uses ("aws-lc" or "rustcrypto"), for `C_GetInfo` and
/// the admin tool.
pub const BACKEND: &str = super::backend::NAME;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(data);
    h.finalize()
}

/// A streaming SHA-256 (FIPS 180-4).
pub struct Sha256(Box<dyn Digester>);

impl Sha256 {
    /// An empty hash.
    pub fn new() -> Sha256 {
        Sha256(hash::digester(HashAlg::Sha256))
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        self.0.update(data.as_ref());
    }

    /// The digest of everything absorbed.
    pub fn finalize(mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.finish());
        out
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
    super::hmac::hmac_sha256(key, parts)
}

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag: `ciphertext || tag`.
pub fn aes256_gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let p = super::GcmParams { iv: nonce.to_vec(), aad: aad.to_vec(), tag_len: 16 };
    super::aes_gcm::seal(key, &p, plaintext)
}

/// Opens [`aes256_gcm_seal`]'s output; any failure is
/// `CKR_ENCRYPTED_DATA_INVALID`-shaped ([`Error::EncryptedDataInvalid`]).
pub fn aes256_gcm_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let p = super::GcmParams { iv: nonce.to_vec(), aad: aad.to_vec(), tag_len: 16 };
    super::aes_gcm::open(key, &p, sealed)
}

/// Whether `signature` (`r || s`) is an ECDSA P-256 signature of the SHA-256 `digest`
/// under the uncompressed public point `public`.
pub fn p256_verify_prehash(public: &[u8], digest: &[u8; 32], signature: &[u8]) -> bool {
    let Ok(mut verifier) = super::ecdsa::verifier(super::ec::Curve::P256, public, None) else {
        return false;
    };
    verifier.update(digest).is_ok() && verifier.finish(signature).is_ok()
}

/// The uncompressed P-256 public point of the private `scalar` (32 bytes); a scalar out
/// of range is an error (callers deriving one from a hash try the next).
pub fn p256_public_key(scalar: &[u8]) -> Result<Vec<u8>> {
    super::ec::public_from_private(super::ec::Curve::P256, scalar)
}

/// An ECDSA P-256 signature (`r || s`) of the SHA-256 `digest` under the private `scalar`.
pub fn p256_sign_prehash(scalar: &[u8], digest: &[u8; 32]) -> Result<Vec<u8>> {
    let mut signer = super::ecdsa::signer(super::ec::Curve::P256, scalar, None)?;
    signer.update(digest)?;
    signer.finish()
}

/// A P-256 public point as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
pub fn p256_public_key_pem(point: &[u8]) -> Result<String> {
    use p256::pkcs8::EncodePublicKey;
    let key = p256::PublicKey::from_sec1_bytes(point).map_err(|_| Error::Integrity("not a P-256 point"))?;
    key.to_public_key_pem(p256::pkcs8::LineEnding::LF).map_err(|_| Error::Integrity("the P-256 key does not encode"))
}

/// Length of an ML-DSA-65 seed (`ξ`).
pub const MLDSA65_SEED_LEN: usize = super::mldsa::SEED_LEN;

/// The ML-DSA-65 public key (FIPS 204 `pkEncode`) of the key pair made from `seed`.
pub fn mldsa65_public_key(seed: &[u8]) -> Result<Vec<u8>> {
    super::mldsa::public_key_of_seed(super::mldsa::ParamSet::MlDsa65, seed)
}

/// A pure ML-DSA-65 signature (hedged, empty context) of `message` under the key pair
/// made from `seed`.
pub fn mldsa65_sign(seed: &[u8], message: &[u8]) -> Result<Vec<u8>> {
    super::mldsa::sign_with_seed(super::mldsa::ParamSet::MlDsa65, seed, &[], message)
}

/// Whether `signature` is a pure ML-DSA-65 signature (empty context) of `message` under
/// the encoded public key `public`.
pub fn mldsa65_verify(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    super::mldsa::verify_pure(super::mldsa::ParamSet::MlDsa65, public, &[], message, signature).is_ok()
}

/// An ML-DSA-65 public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo with the
/// FIPS 204 OID id-ml-dsa-65, 2.16.840.1.101.3.4.3.18, and no parameters).
pub fn mldsa65_public_key_pem(public: &[u8]) -> Result<String> {
    use p256::pkcs8::EncodePublicKey;
    let encoded = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(public)
        .map_err(|_| Error::Integrity("not an ML-DSA-65 public key"))?;
    let key = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&encoded);
    key.to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .map_err(|_| Error::Integrity("the ML-DSA-65 key does not encode"))
}

/// HKDF-SHA256 (RFC 5869, extract then expand) of `ikm` with `salt` and `info`, into
/// `N` bytes (at most 255 × 32).
pub fn hkdf_sha256<const N: usize>(ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; N]>> {
    let p = super::hkdf::HkdfParams {
        extract: true,
        expand: true,
        hash: HashAlg::Sha256,
        salt: super::hkdf::HkdfSalt::Data(salt.to_vec()),
        info: info.to_vec(),
    };
    let okm = super::hkdf::hkdf(&p, ikm, Some(salt), Some(N))?;
    let mut out = Zeroizing::new([0u8; N]);
    if okm.len() != N {
        return Err(Error::Internal(Internal::DerivedLength));
    }
    out.copy_from_slice(&okm);
    Ok(out)
}

/// The key check value of an AES key as PKCS#11 3.0 defines `CKA_CHECK_VALUE` for AES
/// (§2.8 of the mechanisms spec): the first three bytes of the key's AES-ECB encryption
/// of one all-zero block. It names a key without revealing it.
pub fn aes_check_value(key: &[u8]) -> Result<[u8; 3]> {
    let mut ecb = super::aes_block::ecb(key, true)?;
    let mut out = Vec::with_capacity(16);
    ecb.update(&[0u8; 16], &mut out)?;
    ecb.finish(&mut out)?;
    let mut kcv = [0u8; 3];
    kcv.copy_from_slice(out.get(..3).ok_or(Error::Internal(Internal::CipherOutputLength))?);
    Ok(kcv)
}

fn kdf_failed(e: &argon2::Error) -> Error {
    log::error!("argon2: {e}");
    Error::Internal(Internal::Kdf)
}

/// Argon2id (RFC 9106, version 0x13, one lane) of `password` with `salt`, `memory_kib`
/// KiB and `passes` passes, into `N` bytes.
pub fn argon2id<const N: usize>(
    password: &[u8],
    salt: &[u8],
    memory_kib: u32,
    passes: u32,
) -> Result<Zeroizing<[u8; N]>> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(memory_kib, passes, 1, Some(N)).map_err(|e| kdf_failed(&e))?;
    let mut out = Zeroizing::new([0u8; N]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, out.as_mut())
        .map_err(|e| kdf_failed(&e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_p256_signature_from_a_scalar_verifies_under_its_public_key_only() {
        let digest = sha256(b"checkpoint");
        let public = p256_public_key(&[0x11; 32]).expect("in range");
        let signature = p256_sign_prehash(&[0x11; 32], &digest).expect("signs");
        assert!(p256_verify_prehash(&public, &digest, &signature));
        assert!(!p256_verify_prehash(&public, &sha256(b"other"), &signature));
        let other = p256_public_key(&[0x22; 32]).expect("in range");
        assert!(!p256_verify_prehash(&other, &digest, &signature));
        assert!(p256_public_key(&[0; 32]).is_err(), "zero is no scalar");
        assert!(p256_public_key(&[0xff; 32]).is_err(), "above the group order");
    }

    // FIPS 180-4 example (NIST CSRC SHA256.pdf): "abc".
    #[test]
    fn sha256_of_abc_is_the_fips_example() {
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex::encode(sha256(b"abc")), want);
        let mut h = Sha256::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(hex::encode(h.finalize()), want);
    }

    // RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).unwrap();
        assert_eq!(hex::encode(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn gcm_seal_opens_and_a_flipped_byte_does_not() {
        let (key, nonce) = ([3u8; 32], [5u8; 12]);
        let mut sealed = aes256_gcm_seal(&key, &nonce, b"ad", b"secret").unwrap();
        assert_eq!(aes256_gcm_open(&key, &nonce, b"ad", &sealed).unwrap().as_slice(), b"secret");
        sealed[0] ^= 1;
        assert!(aes256_gcm_open(&key, &nonce, b"ad", &sealed).is_err());
    }

    #[test]
    fn mldsa65_signs_verifies_and_encodes_with_the_fips_204_oid() {
        let seed = [4u8; MLDSA65_SEED_LEN];
        let public = mldsa65_public_key(&seed).unwrap();
        assert_eq!(public.len(), 1952);
        let mut sig = mldsa65_sign(&seed, b"checkpoint").unwrap();
        assert!(mldsa65_verify(&public, b"checkpoint", &sig));
        assert!(!mldsa65_verify(&public, b"checkpoinT", &sig));
        sig[10] ^= 1;
        assert!(!mldsa65_verify(&public, b"checkpoint", &sig));
        assert!(!mldsa65_verify(&public[1..], b"checkpoint", &sig), "a short key is refused, not a panic");
        let pem = mldsa65_public_key_pem(&public).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        // SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.3.18 } BIT STRING { 0 || pk } }
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = p256::pkcs8::der::Document::from_pem(&pem).map(|(_, d)| d.as_bytes().to_vec()).unwrap();
        let oid = [0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12];
        assert_eq!(&der[4..17], &oid, "{body}");
        assert_eq!(&der[der.len() - 1952..], public.as_slice());
    }

    // RFC 5869 appendix A.1 (test case 1), truncated to its first 32 bytes.
    #[test]
    fn hkdf_sha256_matches_rfc_5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm = hkdf_sha256::<32>(&ikm, &salt, &info).unwrap();
        assert_eq!(hex::encode(*okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
    }

    // FIPS 197 appendix C.3: AES-256 of 00112233... under 000102...1f is 8ea2b7ca...; the
    // check value of the all-zero key is the first three bytes of AES-256(0, 0), dc95c0.
    #[test]
    fn aes_check_value_is_the_first_three_bytes_of_ecb_of_zero() {
        assert_eq!(aes_check_value(&[0u8; 32]).unwrap(), [0xdc, 0x95, 0xc0]);
        assert_ne!(aes_check_value(&[1u8; 32]).unwrap(), aes_check_value(&[2u8; 32]).unwrap());
    }

    // RFC 9106 §5.3's Argon2id vector needs secret and associated data, which the module
    // never uses; this pins the output of the parameters instead against a second run
    // and a changed salt.
    #[test]
    fn argon2id_is_deterministic_and_salted() {
        let a = argon2id::<32>(b"pin", b"saltsaltsaltsalt", 64, 1).unwrap();
        let b = argon2id::<32>(b"pin", b"saltsaltsaltsalt", 64, 1).unwrap();
        let c = argon2id::<32>(b"pin", b"saltsaltsaltsal!", 64, 1).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
    }
}
