//! RSA signatures (RFC 8017): `CKM_RSA_PKCS` (the caller supplies the DigestInfo),
//! `CKM_SHA224/256/384/512_RSA_PKCS`, `CKM_RSA_PKCS_PSS` (the caller supplies the hash)
//! and `CKM_SHA224/256/384/512_RSA_PKCS_PSS`, with `CK_RSA_PKCS_PSS_PARAMS` (MGF1 over the
//! same hash, explicit salt length).
//!
//! Each call runs on the crypto backend's key when the backend serves its shape (aws-lc:
//! PKCS#1 v1.5 and PSS with `sLen = hLen` over SHA-256/384/512, and `CKM_RSA_PKCS` over
//! a DigestInfo of those hashes, see `backend_input`), else on the `rsa` crate's
//! blinded, constant-time path (see `rsa.rs`). A signature of the wrong length is
//! `CKR_SIGNATURE_LEN_RANGE`; input of the wrong length for the prehash mechanisms is
//! `CKR_DATA_LEN_RANGE`.

use cryptoki_sys::*;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use std::sync::Arc;

use super::backend::{self, Sha};
use super::hash::{self, HashAlg};
use super::registry::{build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::rsa as rsa_keys;
use super::rsa::{MAX_BITS, MIN_BITS};
use super::{Digester, Mechanism, PssParams, Signer, Verifier};
use crate::error::{Error, Internal, Result};

const fn row(ty: CK_MECHANISM_TYPE, param: ParamShape) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: MIN_BITS as CK_ULONG, max_key: MAX_BITS as CK_ULONG, flags: CKF_SIGN | CKF_VERIFY },
        key: KeyNeed::Pair(&[CKK_RSA]),
        param,
        build: if matches!(param, ParamShape::Pss) { build_pss } else { build_plain },
        ops: Ops { sign: Some(sign_op), verify: Some(verify_op), ..Ops::NONE },
    }
}

/// Registry rows (modulus sizes in bits). `CKM_RSA_PKCS` also encrypts and wraps: its row
/// is in `rsa_enc.rs`.
pub const ENTRIES: &[MechEntry] = &[
    row(CKM_SHA224_RSA_PKCS, ParamShape::None),
    row(CKM_SHA256_RSA_PKCS, ParamShape::None),
    row(CKM_SHA384_RSA_PKCS, ParamShape::None),
    row(CKM_SHA512_RSA_PKCS, ParamShape::None),
    row(CKM_RSA_PKCS_PSS, ParamShape::Pss),
    row(CKM_SHA224_RSA_PKCS_PSS, ParamShape::Pss),
    row(CKM_SHA256_RSA_PKCS_PSS, ParamShape::Pss),
    row(CKM_SHA384_RSA_PKCS_PSS, ParamShape::Pss),
    row(CKM_SHA512_RSA_PKCS_PSS, ParamShape::Pss),
];

/// The hash of RSA parameters: `hashAlg` known and MGF1 over the same hash.
pub fn param_hash(hash_alg: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE) -> Result<HashAlg> {
    let hash = HashAlg::from_digest_mech(hash_alg).ok_or(Error::MechanismParamInvalid)?;
    if mgf != hash.mgf1() {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(hash)
}

/// `CKM_RSA_PKCS_PSS` and `CKM_SHA*_RSA_PKCS_PSS`: the parameter's hash must be the one
/// the mechanism names, if it names one.
fn build_pss(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Pss { hash, mgf, salt_len } = p else { return Err(Error::MechanismParamInvalid) };
    let hash = param_hash(hash, mgf)?;
    let prehashed = ty == CKM_RSA_PKCS_PSS;
    if !prehashed && pss_mech(hash) != ty {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Mechanism::RsaPss { prehashed, params: PssParams { hash, salt_len } })
}

/// The signature scheme of a signing mechanism.
fn scheme(m: &Mechanism) -> Result<Scheme> {
    match m {
        Mechanism::RsaPkcs => Ok(Scheme::Pkcs1(None)),
        Mechanism::RsaPkcsHash(h) => Ok(Scheme::Pkcs1(Some(*h))),
        Mechanism::RsaPss { prehashed, params } => Ok(Scheme::Pss { params: params.clone(), prehashed: *prehashed }),
        _ => Err(Error::MechanismInvalid),
    }
}

/// [`super::registry::Ops::sign`] of every RSA signature row, `CKM_RSA_PKCS`'s included:
/// the backend's key where it serves the scheme, the RustCrypto key otherwise (and, for
/// `CKM_RSA_PKCS`, for a DigestInfo the backend has no hash for).
pub fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let scheme = scheme(m)?;
    let fast = match backend_may_serve(&scheme, backend::RsaPrivateKey::signs) {
        true => Some(rsa_keys::backend_private_of(key)?).filter(|k| k.is_some()),
        false => None,
    };
    let rust = match fast.is_none() || scheme == Scheme::Pkcs1(None) {
        true => Some(rsa_keys::private_of(key)?),
        false => None,
    };
    let k = match (&fast, &rust) {
        (Some(f), _) => f.as_ref().as_ref().map_or(0, backend::RsaPrivateKey::size),
        (None, Some(r)) => r.size(),
        (None, None) => return Err(Error::Internal(Internal::RsaOperation)),
    };
    let input = Input::new(&scheme);
    Ok(Box::new(RsaSigner { fast, rust, k, scheme, input }))
}

/// [`super::registry::Ops::verify`] of every RSA signature row, with the key chosen as
/// [`sign_op`] chooses it.
pub fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let scheme = scheme(m)?;
    let fast = match backend_may_serve(&scheme, backend::RsaPrivateKey::signs) {
        true => Some(rsa_keys::backend_public_of(key)?).filter(|k| k.is_some()),
        false => None,
    };
    let rust = match fast.is_none() || scheme == Scheme::Pkcs1(None) {
        true => Some(rsa_keys::public_of(key)?),
        false => None,
    };
    let k = match (&fast, &rust) {
        (Some(f), _) => f.as_ref().as_ref().map_or(0, backend::RsaPublicKey::size),
        (None, Some(r)) => r.size(),
        (None, None) => return Err(Error::Internal(Internal::RsaOperation)),
    };
    let input = Input::new(&scheme);
    Ok(Box::new(RsaVerifier { fast, rust, k, scheme, input }))
}

/// Whether the backend may serve `scheme` (by `serves(hash, salt)`); for `CKM_RSA_PKCS`
/// that depends on the DigestInfo, known only at the end ([`backend_input`]).
fn backend_may_serve(scheme: &Scheme, serves: fn(Sha, Option<usize>) -> bool) -> bool {
    match scheme {
        Scheme::Pkcs1(None) => true,
        Scheme::Pkcs1(Some(h)) => h.backend().is_some_and(|h| serves(h, None)),
        Scheme::Pss { params, .. } => params.hash.backend().is_some_and(|h| serves(h, Some(params.salt_len))),
    }
}

/// The DigestInfo prefixes (RFC 8017 §9.2, note 1) of the hashes the backend signs.
const DIGEST_INFOS: &[(Sha, &[u8])] = &[
    (
        Sha::Sha256,
        &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ],
    ),
    (
        Sha::Sha384,
        &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
            0x30,
        ],
    ),
    (
        Sha::Sha512,
        &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
            0x40,
        ],
    ),
];

/// The backend's form of a checked value: (hash, PSS salt, digest). `CKM_RSA_PKCS`'s
/// DigestInfo goes to the backend when it is exactly a known prefix and a hash of that
/// length: EMSA-PKCS1-v1_5 pads that DigestInfo the same either way, so the signature
/// (deterministic) and the verdict are the RustCrypto path's.
fn backend_input<'v>(scheme: &Scheme, value: &'v [u8]) -> Option<(Sha, Option<usize>, &'v [u8])> {
    match scheme {
        Scheme::Pkcs1(None) => DIGEST_INFOS.iter().find_map(|(h, prefix)| {
            let digest = value.strip_prefix(*prefix)?;
            (digest.len() == usize::from(prefix[prefix.len() - 1])).then_some((*h, None, digest))
        }),
        Scheme::Pkcs1(Some(h)) => Some((h.backend()?, None, value)),
        Scheme::Pss { params, .. } => Some((params.hash.backend()?, Some(params.salt_len), value)),
    }
}

/// `CKM_SHA*_RSA_PKCS` for a hash.
pub fn pkcs_mech(hash: HashAlg) -> CK_MECHANISM_TYPE {
    match hash {
        HashAlg::Sha1 => CKM_SHA1_RSA_PKCS,
        HashAlg::Sha224 => CKM_SHA224_RSA_PKCS,
        HashAlg::Sha256 => CKM_SHA256_RSA_PKCS,
        HashAlg::Sha384 => CKM_SHA384_RSA_PKCS,
        HashAlg::Sha512 => CKM_SHA512_RSA_PKCS,
        HashAlg::Sha3_256 => CKM_SHA3_256_RSA_PKCS,
        HashAlg::Sha3_384 => CKM_SHA3_384_RSA_PKCS,
        HashAlg::Sha3_512 => CKM_SHA3_512_RSA_PKCS,
    }
}

/// `CKM_SHA*_RSA_PKCS_PSS` for a hash.
pub fn pss_mech(hash: HashAlg) -> CK_MECHANISM_TYPE {
    match hash {
        HashAlg::Sha1 => CKM_SHA1_RSA_PKCS_PSS,
        HashAlg::Sha224 => CKM_SHA224_RSA_PKCS_PSS,
        HashAlg::Sha256 => CKM_SHA256_RSA_PKCS_PSS,
        HashAlg::Sha384 => CKM_SHA384_RSA_PKCS_PSS,
        HashAlg::Sha512 => CKM_SHA512_RSA_PKCS_PSS,
        HashAlg::Sha3_256 => CKM_SHA3_256_RSA_PKCS_PSS,
        HashAlg::Sha3_384 => CKM_SHA3_384_RSA_PKCS_PSS,
        HashAlg::Sha3_512 => CKM_SHA3_512_RSA_PKCS_PSS,
    }
}

/// Which RSA signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// PKCS#1 v1.5; `Some(hash)`: the token hashes and adds the DigestInfo; `None`: the
    /// caller's data is the DigestInfo (`CKM_RSA_PKCS`).
    Pkcs1(Option<HashAlg>),
    /// PSS; `prehashed`: the caller's data is the hash (`CKM_RSA_PKCS_PSS`).
    Pss {
        /// The parameters.
        params: PssParams,
        /// True for `CKM_RSA_PKCS_PSS`.
        prehashed: bool,
    },
}

/// PKCS#1 v1.5 padding for a hash (DigestInfo prefix).
fn pkcs1_padding(hash: HashAlg) -> Result<Pkcs1v15Sign> {
    Ok(match hash {
        HashAlg::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
        HashAlg::Sha224 => Pkcs1v15Sign::new::<Sha224>(),
        HashAlg::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        HashAlg::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
        HashAlg::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        _ => return Err(Error::MechanismParamInvalid),
    })
}

macro_rules! with_pss {
    ($hash:expr, $salt:expr, $pss:ident => $body:expr) => {
        match $hash {
            HashAlg::Sha1 => {
                let $pss = Pss::<Sha1>::new_with_salt($salt);
                $body
            }
            HashAlg::Sha224 => {
                let $pss = Pss::<Sha224>::new_with_salt($salt);
                $body
            }
            HashAlg::Sha256 => {
                let $pss = Pss::<Sha256>::new_with_salt($salt);
                $body
            }
            HashAlg::Sha384 => {
                let $pss = Pss::<Sha384>::new_with_salt($salt);
                $body
            }
            HashAlg::Sha512 => {
                let $pss = Pss::<Sha512>::new_with_salt($salt);
                $body
            }
            _ => return Err(Error::MechanismParamInvalid),
        }
    };
}

/// The data absorbed: raw (prehashed mechanisms) or a running hash.
enum Input {
    Raw(Zeroizing<Vec<u8>>),
    Hash(Box<dyn Digester>),
}

impl Input {
    fn new(scheme: &Scheme) -> Input {
        match scheme {
            Scheme::Pkcs1(Some(h)) | Scheme::Pss { params: PssParams { hash: h, .. }, prehashed: false } => {
                Input::Hash(hash::digester(*h))
            }
            _ => Input::Raw(Zeroizing::default()),
        }
    }

    fn update(&mut self, data: &[u8], limit: usize) -> Result<()> {
        match self {
            Input::Raw(buf) if buf.len().saturating_add(data.len()) > limit => Err(Error::DataLenRange),
            Input::Raw(buf) => {
                buf.extend_from_slice(data);
                Ok(())
            }
            Input::Hash(h) => {
                h.update(data);
                Ok(())
            }
        }
    }

    fn value(&mut self) -> Zeroizing<Vec<u8>> {
        match self {
            Input::Raw(buf) => std::mem::take(buf),
            Input::Hash(h) => Zeroizing::new(h.finish()),
        }
    }
}

/// Checks the value to be signed or verified against the scheme: a PSS prehash must be
/// exactly the hash length; raw PKCS#1 input at most `k - 11` bytes.
fn check_value(scheme: &Scheme, value: &[u8], k: usize) -> Result<()> {
    let ok = match scheme {
        Scheme::Pss { params, prehashed: true } => value.len() == params.hash.output_len(),
        Scheme::Pkcs1(None) => !value.is_empty() && value.len() + 11 <= k,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::DataLenRange)
    }
}

struct RsaSigner {
    /// The backend's key, when it holds this one and may serve the scheme.
    fast: Option<Arc<Option<backend::RsaPrivateKey>>>,
    /// The RustCrypto key, when the backend may not serve every input.
    rust: Option<Arc<rsa::PrivateKey>>,
    k: usize,
    scheme: Scheme,
    input: Input,
}

impl Signer for RsaSigner {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data, self.k)
    }

    fn signature_len(&self) -> usize {
        self.k
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let value = self.input.value();
        check_value(&self.scheme, &value, self.k)?;
        let fast = self.fast.as_deref().and_then(Option::as_ref);
        if let (Some(key), Some((hash, salt, digest))) = (fast, backend_input(&self.scheme, &value)) {
            if backend::RsaPrivateKey::signs(hash, salt) {
                return key.sign(hash, salt, digest);
            }
        }
        let key = self.rust.as_deref().ok_or(Error::Internal(Internal::RsaOperation))?;
        rust_sign(key, &self.scheme, &value)
    }
}

/// The RustCrypto signature of a checked value.
fn rust_sign(key: &rsa::PrivateKey, scheme: &Scheme, value: &[u8]) -> Result<Vec<u8>> {
    let k = key.size();
    let rng = &mut crypto_common::getrandom::SysRng;
    let failed = |_| Error::Internal(Internal::RsaOperation);
    match scheme {
        Scheme::Pkcs1(None) => key.sign_with_rng(rng, Pkcs1v15Sign::new_unprefixed(), value).map_err(failed),
        Scheme::Pkcs1(Some(h)) => key.sign_with_rng(rng, pkcs1_padding(*h)?, value).map_err(failed),
        Scheme::Pss { params, .. } => {
            if params.salt_len + params.hash.output_len() + 2 > k {
                return Err(Error::MechanismParamInvalid);
            }
            with_pss!(params.hash, params.salt_len, pss => key.sign_with_rng(rng, pss, value).map_err(failed))
        }
    }
}

struct RsaVerifier {
    fast: Option<Arc<Option<backend::RsaPublicKey>>>,
    rust: Option<Arc<rsa::PublicKey>>,
    k: usize,
    scheme: Scheme,
    input: Input,
}

impl Verifier for RsaVerifier {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data, self.k)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.k {
            return Err(Error::SignatureLenRange);
        }
        let value = self.input.value();
        check_value(&self.scheme, &value, self.k)?;
        let fast = self.fast.as_deref().and_then(Option::as_ref);
        if let (Some(key), Some((hash, salt, digest))) = (fast, backend_input(&self.scheme, &value)) {
            if backend::RsaPrivateKey::signs(hash, salt) {
                return key.verify(hash, salt, digest, signature);
            }
        }
        let key = self.rust.as_deref().ok_or(Error::Internal(Internal::RsaOperation))?;
        let invalid = |_| Error::SignatureInvalid;
        match &self.scheme {
            Scheme::Pkcs1(None) => key.verify(Pkcs1v15Sign::new_unprefixed(), &value, signature).map_err(invalid),
            Scheme::Pkcs1(Some(h)) => key.verify(pkcs1_padding(*h)?, &value, signature).map_err(invalid),
            Scheme::Pss { params, .. } => {
                with_pss!(params.hash, params.salt_len, pss => key.verify(pss, &value, signature).map_err(invalid))
            }
        }
    }
}

/// A signing operation with `key` on the RustCrypto path.
pub fn signer(key: rsa::PrivateKey, scheme: Scheme) -> Result<Box<dyn Signer>> {
    let input = Input::new(&scheme);
    let k = key.size();
    Ok(Box::new(RsaSigner { fast: None, rust: Some(Arc::new(key)), k, scheme, input }))
}

/// A verification with `key` on the RustCrypto path.
pub fn verifier(key: rsa::PublicKey, scheme: Scheme) -> Result<Box<dyn Verifier>> {
    let input = Input::new(&scheme);
    let k = key.size();
    Ok(Box::new(RsaVerifier { fast: None, rust: Some(Arc::new(key)), k, scheme, input }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::rsa as keys;

    fn sign(key: &rsa::PrivateKey, scheme: &Scheme, parts: &[&[u8]]) -> Result<Vec<u8>> {
        let mut s = signer(key.clone(), scheme.clone())?;
        for p in parts {
            s.update(p)?;
        }
        s.finish()
    }

    fn verify(key: &rsa::PrivateKey, scheme: &Scheme, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut v = verifier(key.to_public_key(), scheme.clone())?;
        v.update(data)?;
        v.finish(sig)
    }

    /// The backend's keys of a RustCrypto key, or `None` in the rustcrypto build.
    fn backend_keys(key: &rsa::PrivateKey) -> Option<(backend::RsaPrivateKey, backend::RsaPublicKey)> {
        let (public, p) = keys::parts(key).unwrap();
        let c = backend::RsaComponents {
            n: &public.n,
            e: &public.e,
            d: &p.d,
            p: &p.p,
            q: &p.q,
            dp: &p.dp,
            dq: &p.dq,
            qinv: &p.qinv,
        };
        let private = backend::RsaPrivateKey::new(&c);
        assert_eq!(private.is_some(), backend::NAME == "aws-lc", "the aws-lc backend holds every 65537 key");
        Some((private?, backend::RsaPublicKey::new(&public.n, &public.e)?))
    }

    #[test]
    fn backend_and_rustcrypto_signatures_check_each_other() {
        let key = keys::generate(2048, None).unwrap();
        let Some((fast, fast_public)) = backend_keys(&key) else { return };
        for (h, sha) in [(HashAlg::Sha256, Sha::Sha256), (HashAlg::Sha384, Sha::Sha384), (HashAlg::Sha512, Sha::Sha512)]
        {
            let digest = hash::digest(h, b"message");
            // PKCS#1 v1.5 is deterministic: both engines give the same bytes.
            let sig = fast.sign(sha, None, &digest).unwrap();
            assert_eq!(sig, sign(&key, &Scheme::Pkcs1(Some(h)), &[b"message"]).unwrap(), "{h:?}");
            let salt = h.output_len();
            let pss = |prehashed| Scheme::Pss { params: PssParams { hash: h, salt_len: salt }, prehashed };
            let sig = fast.sign(sha, Some(salt), &digest).unwrap();
            assert_eq!(verify(&key, &pss(false), b"message", &sig), Ok(()), "{h:?}");
            let sig = sign(&key, &pss(true), &[&digest]).unwrap();
            assert_eq!(fast_public.verify(sha, Some(salt), &digest, &sig), Ok(()), "{h:?}");
            let mut bad = sig.clone();
            bad[0] ^= 1;
            assert_eq!(fast_public.verify(sha, Some(salt), &digest, &bad), Err(Error::SignatureInvalid), "{h:?}");
        }
        assert!(
            !backend::RsaPrivateKey::signs(Sha::Sha224, None) && !backend::RsaPrivateKey::signs(Sha::Sha256, Some(20))
        );
        assert_eq!(fast.sign(Sha::Sha224, None, &[0; 28]), Err(Error::MechanismParamInvalid));
    }

    #[test]
    fn every_scheme_round_trips_and_rejects_tampering() {
        let key = keys::generate(2048, None).unwrap();
        let digest_info = [
            &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ][..],
            &hash::digest(HashAlg::Sha256, b"message"),
        ]
        .concat();
        let pss = |prehashed| Scheme::Pss { params: PssParams { hash: HashAlg::Sha256, salt_len: 32 }, prehashed };
        let cases: Vec<(Scheme, Vec<u8>)> = vec![
            (Scheme::Pkcs1(None), digest_info.clone()),
            (Scheme::Pkcs1(Some(HashAlg::Sha256)), b"message".to_vec()),
            (pss(true), hash::digest(HashAlg::Sha256, b"message")),
            (pss(false), b"message".to_vec()),
        ];
        for (i, (scheme, data)) in cases.iter().enumerate() {
            let sig = sign(&key, scheme, &[&data[..3], &data[3..]]).unwrap();
            assert_eq!(sig.len(), 256, "case {i}");
            assert_eq!(verify(&key, scheme, data, &sig), Ok(()), "case {i}");
            let mut bad = sig.clone();
            bad[100] ^= 1;
            assert_eq!(verify(&key, scheme, data, &bad), Err(Error::SignatureInvalid), "case {i}");
            assert_eq!(verify(&key, scheme, data, &sig[1..]), Err(Error::SignatureLenRange), "case {i}");
        }
        // Raw PKCS#1 over the DigestInfo equals the hashing mechanism.
        assert_eq!(
            sign(&key, &Scheme::Pkcs1(None), &[&digest_info]).unwrap(),
            sign(&key, &Scheme::Pkcs1(Some(HashAlg::Sha256)), &[b"message"]).unwrap()
        );
        assert_eq!(sign(&key, &pss(true), &[&[0; 31]]), Err(Error::DataLenRange));
        assert_eq!(sign(&key, &Scheme::Pkcs1(None), &[&[1; 246]]), Err(Error::DataLenRange));
    }
}
