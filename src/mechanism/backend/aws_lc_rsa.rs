//! RSA on the aws-lc backend: the shapes aws-lc-rs has a form for, each answering `None`
//! where it has none so that `rsa_sign.rs` / `rsa_enc.rs` take the RustCrypto path for
//! that call (README, "Crypto backends", lists which).
//!
//! What aws-lc-rs serves: PKCS#1 v1.5 and PSS signatures over SHA-256/384/512 (PSS with
//! the salt as long as the hash, the only salt aws-lc-rs's signing takes at run time),
//! OAEP with SHA-1/SHA-2 and any label, PKCS#1 v1.5 encryption and decryption with
//! explicit rejection (AWS-LC's `rsa_padding_check_PKCS1_type_2` scans every byte in
//! constant time and decides with one branch at the end, the same guarantee `rsa_enc.rs`
//! gives), and key generation at 2048/3072/4096 bits with e = 65537. What it has no form
//! for: SHA-224 signatures, PSS salts other than the hash length, OAEP over SHA-224, the
//! raw RSA operation (so no implicit rejection for key transport), public exponents
//! above 33 bits. Keys are built once per object from their components (the callers
//! cache them); aws-lc-rs zeroizes the key material it holds on drop.

use std::sync::OnceLock;

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeyPair, KeyPairComponents, KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
    PublicKeyComponents, RsaParameters,
};
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaEncoding};
use zeroize::Zeroizing;

use super::Sha;
use crate::error::{Error, Internal, Result};

/// An RSA key's components, big-endian (leading zeros allowed on the private ones).
pub struct RsaComponents<'a> {
    /// Modulus.
    pub n: &'a [u8],
    /// Public exponent.
    pub e: &'a [u8],
    /// Private exponent.
    pub d: &'a [u8],
    /// First prime.
    pub p: &'a [u8],
    /// Second prime.
    pub q: &'a [u8],
    /// d mod (p-1).
    pub dp: &'a [u8],
    /// d mod (q-1).
    pub dq: &'a [u8],
    /// q^-1 mod p.
    pub qinv: &'a [u8],
}

/// A fresh key's components, as the backend encodes them (minimal big-endian).
pub struct RsaGenerated {
    /// n, e, d, p, q, dp, dq, qinv in that order.
    pub parts: [Zeroizing<Vec<u8>>; 8],
}

fn strip(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Whether aws-lc takes this public exponent: odd, above 1, at most 33 bits (AWS-LC's
/// `rsa_check_public_key` limit; the RustCrypto path serves the rest).
fn exponent_served(e: &[u8]) -> bool {
    let e = strip(e);
    let bits = e.len() * 8 - e.first().map_or(8, |b| b.leading_zeros() as usize);
    (2..=33).contains(&bits) && e.last().is_some_and(|b| b & 1 == 1)
}

fn digest_alg(hash: Sha) -> Option<&'static digest::Algorithm> {
    match hash {
        Sha::Sha256 => Some(&digest::SHA256),
        Sha::Sha384 => Some(&digest::SHA384),
        Sha::Sha512 => Some(&digest::SHA512),
        Sha::Sha1 | Sha::Sha224 => None,
    }
}

/// The signing encoding and verification parameters of a scheme aws-lc-rs has.
fn sig_algs(hash: Sha, pss: bool) -> Option<(&'static dyn RsaEncoding, &'static RsaParameters, usize)> {
    Some(match (hash, pss) {
        (Sha::Sha256, false) => (&signature::RSA_PKCS1_SHA256, &signature::RSA_PKCS1_2048_8192_SHA256, 0),
        (Sha::Sha384, false) => (&signature::RSA_PKCS1_SHA384, &signature::RSA_PKCS1_2048_8192_SHA384, 1),
        (Sha::Sha512, false) => (&signature::RSA_PKCS1_SHA512, &signature::RSA_PKCS1_2048_8192_SHA512, 2),
        (Sha::Sha256, true) => (&signature::RSA_PSS_SHA256, &signature::RSA_PSS_2048_8192_SHA256, 3),
        (Sha::Sha384, true) => (&signature::RSA_PSS_SHA384, &signature::RSA_PSS_2048_8192_SHA384, 4),
        (Sha::Sha512, true) => (&signature::RSA_PSS_SHA512, &signature::RSA_PSS_2048_8192_SHA512, 5),
        _ => return None,
    })
}

/// The scheme of a signature with `salt` (`None`: PKCS#1 v1.5), if aws-lc-rs has it.
fn scheme(hash: Sha, salt: Option<usize>) -> Option<(&'static dyn RsaEncoding, &'static RsaParameters, usize)> {
    let alg = digest_alg(hash)?;
    match salt {
        None => sig_algs(hash, false),
        Some(s) if s == alg.output_len() => sig_algs(hash, true),
        Some(_) => None,
    }
}

fn oaep_alg(hash: Sha) -> Option<&'static OaepAlgorithm> {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512};
    match hash {
        Sha::Sha1 => Some(&OAEP_SHA1_MGF1SHA1),
        Sha::Sha256 => Some(&OAEP_SHA256_MGF1SHA256),
        Sha::Sha384 => Some(&OAEP_SHA384_MGF1SHA384),
        Sha::Sha512 => Some(&OAEP_SHA512_MGF1SHA512),
        Sha::Sha224 => None,
    }
}

fn import_digest(hash: Sha, value: &[u8]) -> Result<Digest> {
    let alg = digest_alg(hash).ok_or(Error::MechanismParamInvalid)?;
    Digest::import_less_safe(value, alg).map_err(|_| Error::DataLenRange)
}

/// An RSA private key held by AWS-LC: one parse, for signing and both decryptions.
pub struct RsaPrivateKey {
    pair: KeyPair,
    pkcs1: Pkcs1PrivateDecryptingKey,
    oaep: OaepPrivateDecryptingKey,
}

impl RsaPrivateKey {
    /// The key of validated components (AWS-LC checks them again: `n = p·q`, the CRT
    /// values, `e·d ≡ 1`); `None` if aws-lc does not hold such a key.
    pub fn new(c: &RsaComponents<'_>) -> Option<RsaPrivateKey> {
        if !exponent_served(c.e) {
            return None;
        }
        let components = KeyPairComponents {
            public_key: PublicKeyComponents { n: strip(c.n), e: strip(c.e) },
            d: c.d,
            p: c.p,
            q: c.q,
            dP: c.dp,
            dQ: c.dq,
            qInv: c.qinv,
        };
        let pair = KeyPair::from_components(&components).ok()?;
        // The decrypting key types take PKCS#8 only; the DER buffer zeroizes on drop.
        let der = pair.as_der().ok()?;
        let decrypting = || PrivateDecryptingKey::from_pkcs8(der.as_ref()).ok();
        let pkcs1 = Pkcs1PrivateDecryptingKey::new(decrypting()?).ok()?;
        let oaep = OaepPrivateDecryptingKey::new(decrypting()?).ok()?;
        Some(RsaPrivateKey { pair, pkcs1, oaep })
    }

    /// The modulus length in bytes.
    pub fn size(&self) -> usize {
        self.pair.public_modulus_len()
    }

    /// Whether [`RsaPrivateKey::sign`] serves `hash` with `salt` (`None`: PKCS#1 v1.5).
    pub fn signs(hash: Sha, salt: Option<usize>) -> bool {
        scheme(hash, salt).is_some()
    }

    /// A signature over `digest` (the hash's output), PKCS#1 v1.5 or PSS with `salt`;
    /// a scheme [`RsaPrivateKey::signs`] refuses is `CKR_MECHANISM_PARAM_INVALID`.
    pub fn sign(&self, hash: Sha, salt: Option<usize>, digest: &[u8]) -> Result<Vec<u8>> {
        let (encoding, _, _) = scheme(hash, salt).ok_or(Error::MechanismParamInvalid)?;
        let mut sig = vec![0u8; self.size()];
        self.pair
            .sign_digest(encoding, &import_digest(hash, digest)?, &mut sig)
            .map_err(|_| Error::Internal(Internal::RsaOperation))?;
        Ok(sig)
    }

    /// RSAES-PKCS1-v1_5 decryption of a modulus-length ciphertext; every failure is
    /// `CKR_ENCRYPTED_DATA_INVALID` (explicit rejection, see the file's header).
    pub fn decrypt_pkcs1(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.pkcs1.min_output_size()]);
        let len = self.pkcs1.decrypt(ciphertext, &mut out).map_err(|_| Error::EncryptedDataInvalid)?.len();
        out.truncate(len);
        Ok(out)
    }

    /// Whether [`RsaPrivateKey::decrypt_oaep`] serves `hash`.
    pub fn oaep_serves(hash: Sha) -> bool {
        oaep_alg(hash).is_some()
    }

    /// RSAES-OAEP decryption (MGF1 over `hash`); every failure after the length check is
    /// `CKR_ENCRYPTED_DATA_INVALID`.
    pub fn decrypt_oaep(&self, hash: Sha, label: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let alg = oaep_alg(hash).ok_or(Error::MechanismParamInvalid)?;
        let mut out = Zeroizing::new(vec![0u8; self.oaep.min_output_size()]);
        let label = (!label.is_empty()).then_some(label);
        let len = self.oaep.decrypt(alg, ciphertext, &mut out, label).map_err(|_| Error::EncryptedDataInvalid)?.len();
        out.truncate(len);
        Ok(out)
    }
}

/// An RSA public key held by AWS-LC, with a parsed verifier per scheme made on first use.
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
    pkcs1: Pkcs1PublicEncryptingKey,
    oaep: OaepPublicEncryptingKey,
    verifiers: [OnceLock<ParsedPublicKey>; 6],
}

impl RsaPublicKey {
    /// The key of a checked modulus and exponent; `None` if aws-lc does not hold it.
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaPublicKey> {
        if !exponent_served(e) {
            return None;
        }
        let (n, e) = (strip(n).to_vec(), strip(e).to_vec());
        let public: PublicEncryptingKey = PublicKeyComponents { n: &n[..], e: &e[..] }.try_into().ok()?;
        let pkcs1 = Pkcs1PublicEncryptingKey::new(public.clone()).ok()?;
        let oaep = OaepPublicEncryptingKey::new(public).ok()?;
        Some(RsaPublicKey { n, e, pkcs1, oaep, verifiers: Default::default() })
    }

    /// The modulus length in bytes.
    pub fn size(&self) -> usize {
        self.n.len()
    }

    /// Checks `sig` (modulus length) over `digest` as [`RsaPrivateKey::sign`] makes it; a
    /// scheme aws-lc-rs lacks is `CKR_MECHANISM_PARAM_INVALID`, any mismatch
    /// `CKR_SIGNATURE_INVALID`.
    pub fn verify(&self, hash: Sha, salt: Option<usize>, digest: &[u8], sig: &[u8]) -> Result<()> {
        let (_, params, slot) = scheme(hash, salt).ok_or(Error::MechanismParamInvalid)?;
        let digest = import_digest(hash, digest)?;
        let parsed = match self.verifiers[slot].get() {
            Some(p) => p,
            None => {
                let made = PublicKeyComponents { n: &self.n[..], e: &self.e[..] }
                    .to_parsed_public_key(params)
                    .map_err(|_| Error::Internal(Internal::RsaOperation))?;
                self.verifiers[slot].get_or_init(|| made)
            }
        };
        parsed.verify_digest_sig(&digest, sig).map_err(|_| Error::SignatureInvalid)
    }

    /// RSAES-PKCS1-v1_5 encryption (length already checked).
    pub fn encrypt_pkcs1(&self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.pkcs1.ciphertext_size()];
        let len = self.pkcs1.encrypt(data, &mut out).map_err(|_| Error::Internal(Internal::RsaOperation))?.len();
        out.truncate(len);
        Ok(out)
    }

    /// RSAES-OAEP encryption (MGF1 over `hash`; length already checked).
    pub fn encrypt_oaep(&self, hash: Sha, label: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let alg = oaep_alg(hash).ok_or(Error::MechanismParamInvalid)?;
        let mut out = vec![0u8; self.oaep.ciphertext_size()];
        let label = (!label.is_empty()).then_some(label);
        let len =
            self.oaep.encrypt(alg, data, &mut out, label).map_err(|_| Error::Internal(Internal::RsaOperation))?.len();
        out.truncate(len);
        Ok(out)
    }
}

/// A fresh key pair from AWS-LC's generator, if it makes this size and exponent (2048,
/// 3072 or 4096 bits with e = 65537); `None` otherwise.
pub fn rsa_generate(bits: usize, e: &[u8]) -> Option<Result<RsaGenerated>> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return None,
    };
    if strip(e) != [1, 0, 1] {
        return None;
    }
    let failed = || Error::Internal(Internal::RsaOperation);
    let made = KeyPair::generate(size).map_err(|_| failed()).and_then(|pair| {
        let der = pair.as_der().map_err(|_| failed())?;
        der::private_key_parts(der.as_ref()).ok_or(Error::Internal(Internal::RsaKeyShape))
    });
    Some(made)
}

/// Just enough DER to read the integers of a PKCS#8-wrapped `RSAPrivateKey` (RFC 5208,
/// RFC 8017 A.1.2) that AWS-LC itself wrote: aws-lc-rs exports private keys only so.
mod der {
    use zeroize::Zeroizing;

    use super::RsaGenerated;

    /// One TLV of `tag` at the front of `input`: (contents, rest).
    fn take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }

    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;

    /// n, e, d, p, q, dp, dq, qinv of a PKCS#8 RSA private key.
    pub(super) fn private_key_parts(pkcs8: &[u8]) -> Option<RsaGenerated> {
        let (info, _) = take(pkcs8, SEQUENCE)?;
        let (_version, rest) = take(info, INTEGER)?;
        let (_algorithm, rest) = take(rest, SEQUENCE)?;
        let (octets, _) = take(rest, OCTET_STRING)?;
        let (key, _) = take(octets, SEQUENCE)?;
        let (_version, mut rest) = take(key, INTEGER)?;
        let mut parts: [Zeroizing<Vec<u8>>; 8] = Default::default();
        for part in &mut parts {
            let (value, after) = take(rest, INTEGER)?;
            *part = Zeroizing::new(super::strip(value).to_vec());
            rest = after;
        }
        Some(RsaGenerated { parts })
    }
}
