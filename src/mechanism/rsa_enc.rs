//! RSA encryption (RFC 8017): `CKM_RSA_PKCS` (RSAES-PKCS1-v1_5) and `CKM_RSA_PKCS_OAEP`
//! (`CK_RSA_PKCS_OAEP_PARAMS`: SHA-1 or SHA-2, MGF1 over the same hash, optional label),
//! for `C_Encrypt`/`C_Decrypt` and for wrapping secret keys.
//!
//! The backend serves both paddings where it has them (aws-lc: PKCS#1 v1.5, and OAEP over
//! SHA-1 and SHA-256/384/512; its v1.5 padding check is constant-time with one branch at
//! the end, the guarantee below); the rest, and the v1.5 unwrap, run on the `rsa` crate.
//!
//! PKCS#1 v1.5 decryption is the Bleichenbacher/Marvin danger zone, so it is built here
//! from two constant-time parts rather than the crate's implicit-rejection decryptor
//! (which never reports a padding failure, while PKCS#11 callers expect one):
//! 1. `rsa::hazmat::rsa_decrypt_and_check`: the blinded, constant-time private-key
//!    operation on `crypto-bigint`, with its CRT fault check;
//! 2. [`pkcs1_unpad`]: the EME-PKCS1-v1_5 checks over every byte with `subtle` choices, no
//!    branch or index that depends on where the padding goes wrong.
//!
//! Every failure after the length check is the one `CKR_ENCRYPTED_DATA_INVALID`, decided
//! by a single branch at the end. The verdict itself is the oracle PKCS#1 v1.5 has always
//! had (prefer OAEP); what this file guarantees is that its timing says nothing more.
//! The benchmark (`benches/compare.rs`, "RSA PKCS#1 decrypt timing") measures it.
//!
//! Key transport (`C_UnwrapKey`) does not report padding at all: [`pkcs1_decrypt_implicit`]
//! answers a bad padding or an unusable length with a synthetic key (implicit rejection),
//! since there a verdict is a Bleichenbacher oracle that a caller can query freely.

use crypto_bigint::BoxedUint;
use cryptoki_sys::*;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, Pkcs1v15Encrypt};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater};
use zeroize::Zeroizing;

use std::sync::Arc;

use super::backend::{self, Sha};
use super::registry::{
    build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape, UnwrapTarget, WrapOps,
};
use super::rsa as rsa_keys;
use super::rsa::{MAX_BITS, MIN_BITS};
use super::{Cipher, HashAlg, Mechanism, OaepParams};
use crate::error::{Error, Internal, Result};

const ENC: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;

const fn row(ty: CK_MECHANISM_TYPE, flags: CK_FLAGS, param: ParamShape) -> MechEntry {
    let signs = flags & CKF_SIGN != 0;
    MechEntry {
        ty,
        info: MechInfo { min_key: MIN_BITS as CK_ULONG, max_key: MAX_BITS as CK_ULONG, flags },
        key: KeyNeed::Pair(&[CKK_RSA]),
        param,
        build: if matches!(param, ParamShape::Oaep) { build_oaep } else { build_plain },
        ops: Ops {
            encrypt: Some(encrypt_op),
            decrypt: Some(decrypt_op),
            sign: if signs { Some(super::rsa_sign::sign_op) } else { None },
            verify: if signs { Some(super::rsa_sign::verify_op) } else { None },
            wrap: Some(WrapOps { wrapped_len: wrapped_len_op, wrap: wrap_op, unwrap: unwrap_op }),
            ..Ops::NONE
        },
    }
}

/// Registry rows (modulus sizes in bits). `CKM_RSA_PKCS` also signs.
pub const ENTRIES: &[MechEntry] =
    &[row(CKM_RSA_PKCS, ENC | CKF_SIGN | CKF_VERIFY, ParamShape::None), row(CKM_RSA_PKCS_OAEP, ENC, ParamShape::Oaep)];

fn build_oaep(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Oaep { hash, mgf, label } = p else { return Err(Error::MechanismParamInvalid) };
    Ok(Mechanism::RsaOaep(OaepParams { hash: super::rsa_sign::param_hash(hash, mgf)?, label }))
}

/// The padding of an RSA encryption mechanism.
pub fn padding(m: &Mechanism) -> Result<Padding> {
    match m {
        Mechanism::RsaPkcs => Ok(Padding::Pkcs1),
        Mechanism::RsaOaep(p) => Ok(Padding::Oaep(p.clone())),
        _ => Err(Error::MechanismInvalid),
    }
}

/// Whether the backend serves `padding` (PKCS#1 v1.5 always, OAEP by hash).
fn backend_serves(padding: &Padding) -> Option<Option<Sha>> {
    match padding {
        Padding::Pkcs1 => Some(None),
        Padding::Oaep(p) => p.hash.backend().filter(|h| backend::RsaPrivateKey::oaep_serves(*h)).map(Some),
    }
}

/// The key an encryption uses: the backend's when it holds the key and serves the
/// padding, else the RustCrypto one.
fn public_key_of(key: &dyn KeyView, padding: &Padding) -> Result<RsaKey> {
    if backend_serves(padding).is_some() {
        let fast = rsa_keys::backend_public_of(key)?;
        if fast.is_some() {
            return Ok(RsaKey::FastPublic(fast));
        }
    }
    Ok(RsaKey::Public(rsa_keys::public_of(key)?))
}

/// The key a decryption uses, chosen as [`public_key_of`] chooses.
fn private_key_of(key: &dyn KeyView, padding: &Padding) -> Result<RsaKey> {
    if backend_serves(padding).is_some() {
        let fast = rsa_keys::backend_private_of(key)?;
        if fast.is_some() {
            return Ok(RsaKey::FastPrivate(fast));
        }
    }
    Ok(RsaKey::Private(rsa_keys::private_of(key)?))
}

fn encrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    let padding = padding(m)?;
    Ok(Box::new(RsaCipher { key: public_key_of(key, &padding)?, padding, input: Zeroizing::default() }))
}

fn decrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    let padding = padding(m)?;
    Ok(Box::new(RsaCipher { key: private_key_of(key, &padding)?, padding, input: Zeroizing::default() }))
}

fn wrapped_len_op(m: &Mechanism, kek: &dyn KeyView, _: usize) -> Result<usize> {
    Ok(public_key_of(kek, &padding(m)?)?.k())
}

fn wrap_op(m: &Mechanism, kek: &dyn KeyView, value: &[u8]) -> Result<Vec<u8>> {
    let padding = padding(m)?;
    public_key_of(kek, &padding)?.encrypt(&padding, value)
}

/// The value lengths an unwrapped key may have: the template's `CKA_VALUE_LEN`, else the
/// type's sizes (any length for generic secrets). Public information, so a length the
/// modulus cannot carry is refused up front.
fn accepted_lengths(target: UnwrapTarget, k: usize) -> Result<Vec<usize>> {
    let most = k.saturating_sub(11);
    let lengths = match target.value_len {
        Some(len) => vec![len],
        None if target.key_type == CKK_AES => vec![16, 24, 32],
        None => (1..=most).collect(),
    };
    if lengths.iter().any(|l| (1..=most).contains(l)) {
        Ok(lengths)
    } else {
        Err(Error::TemplateInconsistent(CKA_VALUE_LEN))
    }
}

/// v1.5 unwraps with implicit rejection, so bad padding and a wrong length yield a
/// synthetic key of an accepted length (no padding oracle); the remaining errors are
/// public facts. That path stays on RustCrypto in every build: it needs the raw RSA
/// operation, which aws-lc-rs does not expose.
fn unwrap_op(m: &Mechanism, kek: &dyn KeyView, wrapped: &[u8], target: UnwrapTarget) -> Result<Zeroizing<Vec<u8>>> {
    match padding(m)? {
        Padding::Pkcs1 => {
            let private = rsa_keys::private_of(kek)?;
            pkcs1_decrypt_implicit(&private, wrapped, &accepted_lengths(target, private.size())?)
        }
        oaep @ Padding::Oaep(_) => private_key_of(kek, &oaep)?.decrypt(&oaep, wrapped),
    }
}

/// Which padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Padding {
    /// RSAES-PKCS1-v1_5.
    Pkcs1,
    /// RSAES-OAEP.
    Oaep(OaepParams),
}

macro_rules! with_oaep {
    ($p:expr, $oaep:ident => $body:expr) => {{
        let label = $p.label.clone();
        match $p.hash {
            HashAlg::Sha1 => {
                let $oaep = Oaep::<Sha1>::new_with_label(label);
                $body
            }
            HashAlg::Sha224 => {
                let $oaep = Oaep::<Sha224>::new_with_label(label);
                $body
            }
            HashAlg::Sha256 => {
                let $oaep = Oaep::<Sha256>::new_with_label(label);
                $body
            }
            HashAlg::Sha384 => {
                let $oaep = Oaep::<Sha384>::new_with_label(label);
                $body
            }
            HashAlg::Sha512 => {
                let $oaep = Oaep::<Sha512>::new_with_label(label);
                $body
            }
            _ => return Err(Error::MechanismParamInvalid),
        }
    }};
}

/// Most plaintext bytes `padding` takes with a `k`-byte modulus.
pub fn max_plaintext(padding: &Padding, k: usize) -> usize {
    match padding {
        Padding::Pkcs1 => k.saturating_sub(11),
        Padding::Oaep(p) => k.saturating_sub(2 * p.hash.output_len() + 2),
    }
}

/// Encrypts `data` (at most [`max_plaintext`] bytes, else `CKR_DATA_LEN_RANGE`).
pub fn encrypt(key: &rsa::PublicKey, padding: &Padding, data: &[u8]) -> Result<Vec<u8>> {
    if data.len() > max_plaintext(padding, key.size()) {
        return Err(Error::DataLenRange);
    }
    let rng = &mut crypto_common::getrandom::SysRng;
    let failed = |_| Error::Internal(Internal::RsaOperation);
    match padding {
        Padding::Pkcs1 => key.encrypt(rng, Pkcs1v15Encrypt, data).map_err(failed),
        Padding::Oaep(p) => with_oaep!(p, oaep => key.encrypt(rng, oaep, data).map_err(failed)),
    }
}

/// Decrypts `ciphertext` (exactly the modulus length, else
/// `CKR_ENCRYPTED_DATA_LEN_RANGE`); any other failure is `CKR_ENCRYPTED_DATA_INVALID`.
pub fn decrypt(key: &rsa::PrivateKey, padding: &Padding, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let k = key.size();
    if ciphertext.len() != k {
        return Err(Error::EncryptedDataLenRange);
    }
    match padding {
        Padding::Pkcs1 => pkcs1_decrypt(key, ciphertext),
        Padding::Oaep(p) => {
            let rng = &mut crypto_common::getrandom::SysRng;
            with_oaep!(p, oaep => key.decrypt_blinded(rng, oaep, ciphertext))
                .map(Zeroizing::new)
                .map_err(|_| Error::EncryptedDataInvalid)
        }
    }
}

/// The RSA private operation on `ciphertext`, as the modulus-length encoded message.
/// Refuses c >= n (public information) and CRT faults with `CKR_ENCRYPTED_DATA_INVALID`.
fn raw_decrypt(key: &rsa::PrivateKey, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let k = key.size();
    let precision = key.n().as_ref().bits_precision();
    let c = BoxedUint::from_be_slice(ciphertext, precision).map_err(|_| Error::EncryptedDataInvalid)?;
    let m = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut crypto_common::getrandom::SysRng), &c)
        .map_err(|_| Error::EncryptedDataInvalid)?;
    let bytes = Zeroizing::new(m.to_be_bytes().to_vec());
    let mut em = Zeroizing::new(vec![0u8; k]);
    let take = bytes.len().min(k);
    em[k - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    Ok(em)
}

fn pkcs1_decrypt(key: &rsa::PrivateKey, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let em = raw_decrypt(key, ciphertext)?;
    let (ok, start) = pkcs1_unpad(&em);
    if !bool::from(ok) {
        return Err(Error::EncryptedDataInvalid);
    }
    Ok(Zeroizing::new(em[start..].to_vec()))
}

/// PKCS#1 v1.5 decryption for key transport, with implicit rejection
/// (draft-irtf-cfrg-rsa-guidance, as OpenSSL 3.2 does): when the padding is wrong, or
/// the message length is not one of `lengths` (the key lengths the caller's template
/// accepts), the answer is a synthetic message of an accepted length, derived from the
/// ciphertext and the private exponent. The caller cannot tell it from a real one except
/// by using the key, so no answer or error code says whether the padding was valid.
///
/// Errors only on public facts: a ciphertext that is not the modulus length
/// (`CKR_ENCRYPTED_DATA_LEN_RANGE`), or not below the modulus, or a CRT fault
/// (`CKR_ENCRYPTED_DATA_INVALID`), or no usable length in `lengths` (`CKR_DATA_LEN_RANGE`).
pub fn pkcs1_decrypt_implicit(
    key: &rsa::PrivateKey,
    ciphertext: &[u8],
    lengths: &[usize],
) -> Result<Zeroizing<Vec<u8>>> {
    use rsa::traits::PrivateKeyParts;
    let k = key.size();
    if ciphertext.len() != k {
        return Err(Error::EncryptedDataLenRange);
    }
    let lengths: Vec<u32> = lengths
        .iter()
        .filter(|&&l| (1..=k.saturating_sub(11)).contains(&l))
        .filter_map(|&l| l.try_into().ok())
        .collect();
    if lengths.is_empty() {
        return Err(Error::DataLenRange);
    }
    let em = raw_decrypt(key, ciphertext)?;
    let (padding_ok, start) = pkcs1_unpad(&em);
    let real_len = u32::try_from(k.saturating_sub(start)).unwrap_or(0);
    let mut length_ok = Choice::from(0);
    for l in &lengths {
        length_ok |= real_len.ct_eq(l);
    }
    let use_real = padding_ok & length_ok;

    // The key derivation key: HMAC-SHA256 keyed by SHA-256(d) over the ciphertext.
    let d = Zeroizing::new(key.d().to_be_bytes().to_vec());
    let d_hash = Zeroizing::new(<sha2::Sha256 as sha2::Digest>::digest(d.as_slice()).to_vec());
    let kdk = Zeroizing::new(super::hmac::hmac_sha256(&d_hash, &[ciphertext])?.to_vec());
    let synthetic = implicit_prf(&kdk, b"message", k)?;
    let pick = implicit_prf(&kdk, b"length", 4)?;
    let pick = u32::from_be_bytes([pick[0], pick[1], pick[2], pick[3]]);
    // Modulo bias is irrelevant here: the length only has to be one the caller accepts.
    let index = pick % u32::try_from(lengths.len()).unwrap_or(u32::MAX);
    let mut synthetic_len = 0u32;
    for (i, l) in lengths.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        synthetic_len.conditional_assign(l, i.ct_eq(&index));
    }

    // Both candidates are right-aligned in k bytes; one constant-time pass picks.
    let len = u32::conditional_select(&synthetic_len, &real_len, use_real);
    let mut out = Zeroizing::new(vec![0u8; k]);
    for (o, (s, e)) in out.iter_mut().zip(synthetic.iter().zip(em.iter())) {
        *o = u8::conditional_select(s, e, use_real);
    }
    let len = usize::try_from(len).unwrap_or(0).min(k);
    Ok(Zeroizing::new(out[k - len..].to_vec()))
}

/// `len` pseudo-random bytes from `key` and `label`: HMAC-SHA256(key, i || label || bits)
/// for i = 0, 1, ..., the draft's PRF.
fn implicit_prf(key: &[u8], label: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let bits = u16::try_from(len.saturating_mul(8)).unwrap_or(u16::MAX).to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut i = 0u16;
    while out.len() < len {
        out.extend_from_slice(super::hmac::hmac_sha256(key, &[&i.to_be_bytes(), label, &bits])?.as_slice());
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// EME-PKCS1-v1_5 decoding of `em = 00 || 02 || PS || 00 || M` (PS at least 8 nonzero
/// bytes): (valid, index of M). Every byte is read and every check accumulated in a
/// `Choice`, whatever the input; the index is meaningful only when valid.
pub fn pkcs1_unpad(em: &[u8]) -> (Choice, usize) {
    if em.len() < 11 {
        return (Choice::from(0), 0);
    }
    let mut bad = !em[0].ct_eq(&0) | !em[1].ct_eq(&2);
    let mut looking = Choice::from(1);
    let mut separator = 0u32;
    for (i, &b) in em.iter().enumerate().skip(2) {
        let zero = b.ct_eq(&0);
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        separator.conditional_assign(&i, looking & zero);
        looking &= !zero;
    }
    // No separator, or fewer than eight padding bytes (separator index below 10).
    bad |= looking | !separator.ct_gt(&9);
    (!bad, usize::try_from(separator).unwrap_or(usize::MAX).saturating_add(1))
}

/// A buffered RSA encryption or decryption: `C_*Update` collects, the final call works.
struct RsaCipher {
    key: RsaKey,
    padding: Padding,
    input: Zeroizing<Vec<u8>>,
}

/// The key of an RSA encryption or decryption: the RustCrypto one or the backend's
/// (`Fast*`, only ever holding `Some`, for a padding the backend serves).
enum RsaKey {
    Public(Arc<rsa::PublicKey>),
    Private(Arc<rsa::PrivateKey>),
    FastPublic(Arc<Option<backend::RsaPublicKey>>),
    FastPrivate(Arc<Option<backend::RsaPrivateKey>>),
}

impl RsaKey {
    fn k(&self) -> usize {
        match self {
            RsaKey::Public(k) => k.size(),
            RsaKey::Private(k) => k.size(),
            RsaKey::FastPublic(k) => k.as_ref().as_ref().map_or(0, backend::RsaPublicKey::size),
            RsaKey::FastPrivate(k) => k.as_ref().as_ref().map_or(0, backend::RsaPrivateKey::size),
        }
    }

    fn is_public(&self) -> bool {
        matches!(self, RsaKey::Public(_) | RsaKey::FastPublic(_))
    }

    /// Encrypts `data` (at most [`max_plaintext`] bytes, else `CKR_DATA_LEN_RANGE`).
    fn encrypt(&self, padding: &Padding, data: &[u8]) -> Result<Vec<u8>> {
        let fast = match self {
            RsaKey::Public(k) => return encrypt(k, padding, data),
            RsaKey::FastPublic(k) => k.as_ref().as_ref(),
            RsaKey::Private(_) | RsaKey::FastPrivate(_) => None,
        };
        let key = fast.ok_or(Error::Internal(Internal::RsaOperation))?;
        if data.len() > max_plaintext(padding, key.size()) {
            return Err(Error::DataLenRange);
        }
        match (padding, backend_serves(padding)) {
            (Padding::Pkcs1, _) => key.encrypt_pkcs1(data),
            (Padding::Oaep(p), Some(Some(hash))) => key.encrypt_oaep(hash, &p.label, data),
            (Padding::Oaep(_), _) => Err(Error::MechanismParamInvalid),
        }
    }

    /// Decrypts `ciphertext` (exactly the modulus length, else
    /// `CKR_ENCRYPTED_DATA_LEN_RANGE`); any other failure is `CKR_ENCRYPTED_DATA_INVALID`.
    fn decrypt(&self, padding: &Padding, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let fast = match self {
            RsaKey::Private(k) => return decrypt(k, padding, ciphertext),
            RsaKey::FastPrivate(k) => k.as_ref().as_ref(),
            RsaKey::Public(_) | RsaKey::FastPublic(_) => None,
        };
        let key = fast.ok_or(Error::Internal(Internal::RsaOperation))?;
        if ciphertext.len() != key.size() {
            return Err(Error::EncryptedDataLenRange);
        }
        match (padding, backend_serves(padding)) {
            (Padding::Pkcs1, _) => key.decrypt_pkcs1(ciphertext),
            (Padding::Oaep(p), Some(Some(hash))) => key.decrypt_oaep(hash, &p.label, ciphertext),
            (Padding::Oaep(_), _) => Err(Error::MechanismParamInvalid),
        }
    }
}

impl Cipher for RsaCipher {
    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn update(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        if self.input.len().saturating_add(input.len()) > self.key.k() {
            return Err(match self.key.is_public() {
                true => Error::DataLenRange,
                false => Error::EncryptedDataLenRange,
            });
        }
        self.input.extend_from_slice(input);
        Ok(())
    }

    fn final_len(&self, _more: usize) -> usize {
        self.key.k()
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let input = std::mem::take(&mut self.input);
        match self.key.is_public() {
            true => out.extend_from_slice(&self.key.encrypt(&self.padding, &input)?),
            false => out.extend_from_slice(&self.key.decrypt(&self.padding, &input)?),
        }
        Ok(())
    }
}

/// An encryption with a public key on the RustCrypto path.
pub fn encryptor(key: rsa::PublicKey, padding: Padding) -> Box<dyn Cipher> {
    Box::new(RsaCipher { key: RsaKey::Public(Arc::new(key)), padding, input: Zeroizing::default() })
}

/// A decryption with a private key on the RustCrypto path.
pub fn decryptor(key: rsa::PrivateKey, padding: Padding) -> Box<dyn Cipher> {
    Box::new(RsaCipher { key: RsaKey::Private(Arc::new(key)), padding, input: Zeroizing::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::rsa as keys;

    #[test]
    fn both_paddings_round_trip_and_tampering_is_one_error() {
        let key = keys::generate(2048, None).unwrap();
        let public = key.to_public_key();
        let oaep = |hash, label: &[u8]| Padding::Oaep(OaepParams { hash, label: label.to_vec() });
        for padding in [Padding::Pkcs1, oaep(HashAlg::Sha1, b""), oaep(HashAlg::Sha256, b"label")] {
            let ct = encrypt(&public, &padding, b"secret").unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(decrypt(&key, &padding, &ct).unwrap().as_slice(), b"secret", "{padding:?}");
            let mut bad = ct.clone();
            bad[200] ^= 1;
            assert_eq!(decrypt(&key, &padding, &bad), Err(Error::EncryptedDataInvalid), "{padding:?}");
            assert_eq!(decrypt(&key, &padding, &ct[1..]), Err(Error::EncryptedDataLenRange), "{padding:?}");
            let too_long = vec![1u8; max_plaintext(&padding, 256) + 1];
            assert_eq!(encrypt(&public, &padding, &too_long), Err(Error::DataLenRange));
        }
        let ct = encrypt(&public, &oaep(HashAlg::Sha256, b"label"), b"x").unwrap();
        assert_eq!(decrypt(&key, &oaep(HashAlg::Sha256, b"other"), &ct), Err(Error::EncryptedDataInvalid), "label");
    }

    #[test]
    fn backend_and_rustcrypto_encryptions_open_each_other() {
        let key = keys::generate(2048, None).unwrap();
        let public = key.to_public_key();
        let (parts, p) = keys::parts(&key).unwrap();
        let c = backend::RsaComponents {
            n: &parts.n,
            e: &parts.e,
            d: &p.d,
            p: &p.p,
            q: &p.q,
            dp: &p.dp,
            dq: &p.dq,
            qinv: &p.qinv,
        };
        let (Some(fast), Some(fast_public)) =
            (backend::RsaPrivateKey::new(&c), backend::RsaPublicKey::new(&parts.n, &parts.e))
        else {
            assert_eq!(backend::NAME, "rustcrypto");
            return;
        };
        let oaep = |hash, label: &[u8]| Padding::Oaep(OaepParams { hash, label: label.to_vec() });
        for padding in [Padding::Pkcs1, oaep(HashAlg::Sha1, b""), oaep(HashAlg::Sha256, b"label")] {
            let (sha, label) = match &padding {
                Padding::Oaep(o) => (o.hash.backend(), o.label.clone()),
                Padding::Pkcs1 => (None, Vec::new()),
            };
            let by_rust = encrypt(&public, &padding, b"secret").unwrap();
            let by_fast = match sha {
                Some(h) => fast_public.encrypt_oaep(h, &label, b"secret").unwrap(),
                None => fast_public.encrypt_pkcs1(b"secret").unwrap(),
            };
            assert_eq!(decrypt(&key, &padding, &by_fast).unwrap().as_slice(), b"secret", "{padding:?}");
            let opened = match sha {
                Some(h) => fast.decrypt_oaep(h, &label, &by_rust).unwrap(),
                None => fast.decrypt_pkcs1(&by_rust).unwrap(),
            };
            assert_eq!(opened.as_slice(), b"secret", "{padding:?}");
            let mut bad = by_rust.clone();
            bad[9] ^= 1;
            let refused = match sha {
                Some(h) => fast.decrypt_oaep(h, &label, &bad),
                None => fast.decrypt_pkcs1(&bad),
            };
            assert_eq!(refused, Err(Error::EncryptedDataInvalid), "{padding:?}");
        }
    }

    #[test]
    fn implicit_rejection_gives_the_message_or_a_stable_synthetic_one() {
        let key = keys::generate(2048, None).unwrap();
        let public = key.to_public_key();
        let ct = encrypt(&public, &Padding::Pkcs1, &[9; 32]).unwrap();
        assert_eq!(pkcs1_decrypt_implicit(&key, &ct, &[16, 24, 32]).unwrap().as_slice(), &[9; 32]);
        // Right padding, length not accepted: synthetic, of an accepted length.
        let fake = pkcs1_decrypt_implicit(&key, &ct, &[16]).unwrap();
        assert_eq!(fake.len(), 16);
        assert_ne!(fake.as_slice(), &[9; 16]);
        let mut bad = ct.clone();
        bad[100] ^= 1;
        let a = pkcs1_decrypt_implicit(&key, &bad, &[16, 24, 32]).unwrap();
        assert!(matches!(a.len(), 16 | 24 | 32));
        assert_eq!(pkcs1_decrypt_implicit(&key, &bad, &[16, 24, 32]).unwrap(), a, "deterministic");
        assert_eq!(pkcs1_decrypt_implicit(&key, &ct[1..], &[16]), Err(Error::EncryptedDataLenRange));
        assert_eq!(pkcs1_decrypt_implicit(&key, &ct, &[0, 300]), Err(Error::DataLenRange));
    }

    #[test]
    fn pkcs1_unpadding_checks_every_rule() {
        let good = [&[0u8, 2][..], &[0x55; 8], &[0], b"msg"].concat();
        let (ok, start) = pkcs1_unpad(&good);
        assert!(bool::from(ok));
        assert_eq!(&good[start..], b"msg");
        let empty_message = [&[0u8, 2][..], &[0x55; 9], &[0]].concat();
        let (ok, start) = pkcs1_unpad(&empty_message);
        assert!(bool::from(ok) && start == empty_message.len());
        for bad in [
            [&[1u8, 2][..], &[0x55; 8], &[0], b"msg"].concat(),
            [&[0u8, 1][..], &[0x55; 8], &[0], b"msg"].concat(),
            [&[0u8, 2][..], &[0x55; 7], &[0], b"msg"].concat(),
            [&[0u8, 2][..], &[0x55; 12]].concat(),
        ] {
            assert!(!bool::from(pkcs1_unpad(&bad).0), "{bad:?}");
        }
    }
}
