//! `CKM_HKDF_DERIVE` and `CKM_HKDF_DATA` (PKCS#11 3.0 §2.43, RFC 5869; the second makes a
//! data object instead of a key, see `session/derive.rs`) over the SHA-1, SHA-2 and SHA-3 HMACs,
//! with its salt absent (`CKF_HKDF_SALT_NULL`: RFC 5869's zero salt), given as data, or
//! taken from a second key (`CKF_HKDF_SALT_KEY`, fetched by the session under the same
//! checks as the base key). Extract and expand may each be skipped: extract alone yields
//! the PRK (one hash length); expand alone treats the base key as the PRK.
//!
//! Every parameter error is `CKR_MECHANISM_PARAM_INVALID`; a length HKDF cannot produce
//! (none, zero, over 255 hash lengths, a PRK shorter than the hash) `CKR_KEY_SIZE_RANGE`,
//! or `CKR_TEMPLATE_INCOMPLETE` when expanding with no `CKA_VALUE_LEN`.

use cryptoki_sys::*;
use hkdf::{GenericHkdf, HmacImpl};
use hmac::{Hmac, SimpleHmac};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use sha3::{Sha3_256, Sha3_384, Sha3_512};
use zeroize::Zeroizing;

use super::hash::HashAlg;
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::secret_key::MAX_GENERIC_LEN;
use super::Mechanism;
use crate::error::{Error, Result};

/// Where HKDF-Extract's salt comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HkdfSalt {
    /// `CKF_HKDF_SALT_NULL`: a hash length of zeros (RFC 5869 §2.2).
    Null,
    /// `CKF_HKDF_SALT_DATA`: these bytes.
    Data(Vec<u8>),
    /// `CKF_HKDF_SALT_KEY`: the value of this secret key.
    Key(CK_OBJECT_HANDLE),
}

/// `CK_HKDF_PARAMS`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HkdfParams {
    /// Run HKDF-Extract.
    pub extract: bool,
    /// Run HKDF-Expand.
    pub expand: bool,
    /// The HMAC's hash (`prfHashMechanism`).
    pub hash: HashAlg,
    /// The salt (only with `extract`).
    pub salt: HkdfSalt,
    /// The expand step's info.
    pub info: Vec<u8>,
}

const fn row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 1, max_key: MAX_GENERIC_LEN as CK_ULONG, flags: CKF_DERIVE },
        key: KeyNeed::Secret(&[CKK_HKDF, CKK_GENERIC_SECRET]),
        param: ParamShape::Hkdf,
        build,
        ops: Ops { derive: Some(derive_op), derive_with: Some(derive_with_op), ..Ops::NONE },
    }
}

/// Registry rows (key sizes in bytes).
pub const ENTRIES: &[MechEntry] = &[row(CKM_HKDF_DERIVE), row(CKM_HKDF_DATA)];

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Hkdf { extract, expand, prf, salt_type, salt, salt_key, info } = p else {
        return Err(Error::MechanismParamInvalid);
    };
    if !extract && !expand {
        return Err(Error::MechanismParamInvalid);
    }
    let hash = HashAlg::from_digest_mech(prf).ok_or(Error::MechanismParamInvalid)?;
    let salt = match (extract, salt_type) {
        (false, _) => HkdfSalt::Null,
        (true, CKF_HKDF_SALT_NULL) => HkdfSalt::Null,
        (true, CKF_HKDF_SALT_DATA) if !salt.is_empty() => HkdfSalt::Data(salt),
        (true, CKF_HKDF_SALT_KEY) => HkdfSalt::Key(salt_key),
        _ => return Err(Error::MechanismParamInvalid),
    };
    let p = HkdfParams { extract, expand, hash, salt, info };
    Ok(if ty == CKM_HKDF_DATA { Mechanism::HkdfData(p) } else { Mechanism::HkdfDerive(p) })
}

fn params(m: &Mechanism) -> Result<&HkdfParams> {
    match m {
        Mechanism::HkdfDerive(p) | Mechanism::HkdfData(p) => Ok(p),
        _ => Err(Error::MechanismInvalid),
    }
}

fn derive_op(m: &Mechanism, base: &dyn KeyView, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let p = params(m)?;
    let salt = match &p.salt {
        HkdfSalt::Null => None,
        HkdfSalt::Data(d) => Some(d.as_slice()),
        // The session calls `derive_with` whenever the parameter names a key.
        HkdfSalt::Key(_) => return Err(Error::MechanismParamInvalid),
    };
    hkdf(p, &base.secret()?, salt, len)
}

fn derive_with_op(
    m: &Mechanism,
    base: &dyn KeyView,
    salt: &dyn KeyView,
    len: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>> {
    hkdf(params(m)?, &base.secret()?, Some(&salt.secret()?), len)
}

/// RFC 5869 over `p.hash`: extract from `ikm` with `salt`, expand to `len` bytes, or one
/// of the two as `p` says.
pub fn hkdf(p: &HkdfParams, ikm: &[u8], salt: Option<&[u8]>, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    match p.hash {
        HashAlg::Sha1 => run::<Hmac<Sha1>>(p, ikm, salt, len),
        HashAlg::Sha224 => run::<Hmac<Sha224>>(p, ikm, salt, len),
        HashAlg::Sha256 => run::<Hmac<Sha256>>(p, ikm, salt, len),
        HashAlg::Sha384 => run::<Hmac<Sha384>>(p, ikm, salt, len),
        HashAlg::Sha512 => run::<Hmac<Sha512>>(p, ikm, salt, len),
        // SHA-3 has no block-level core for `Hmac`'s precomputed pads (as in hmac.rs).
        HashAlg::Sha3_256 => run::<SimpleHmac<Sha3_256>>(p, ikm, salt, len),
        HashAlg::Sha3_384 => run::<SimpleHmac<Sha3_384>>(p, ikm, salt, len),
        HashAlg::Sha3_512 => run::<SimpleHmac<Sha3_512>>(p, ikm, salt, len),
    }
}

fn run<H: HmacImpl>(p: &HkdfParams, ikm: &[u8], salt: Option<&[u8]>, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let hash_len = p.hash.output_len();
    if !p.expand {
        // Extract alone: the PRK is the key, exactly one hash long.
        if len.is_some_and(|l| l != hash_len) {
            return Err(Error::KeySizeRange);
        }
        let (prk, _) = GenericHkdf::<H>::extract(salt, ikm);
        return Ok(Zeroizing::new(prk.to_vec()));
    }
    let len = len.ok_or(Error::TemplateIncomplete(CKA_VALUE_LEN))?;
    if len == 0 || len > 255 * hash_len {
        return Err(Error::KeySizeRange);
    }
    let kdf = if p.extract {
        GenericHkdf::<H>::new(salt, ikm)
    } else {
        GenericHkdf::<H>::from_prk(ikm).map_err(|_| Error::KeySizeRange)?
    };
    let mut okm = Zeroizing::new(vec![0u8; len]);
    kdf.expand(&p.info, &mut okm).map_err(|_| Error::KeySizeRange)?;
    Ok(okm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    fn params(extract: bool, expand: bool, hash: HashAlg, info: &str) -> HkdfParams {
        HkdfParams { extract, expand, hash, salt: HkdfSalt::Null, info: h(info) }
    }

    // RFC 5869 Appendix A.1 (SHA-256), A.3 (SHA-256, no salt, no info) and A.4 (SHA-1).
    #[test]
    fn rfc_5869_test_cases() {
        let ikm = h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = h("000102030405060708090a0b0c");
        let prk = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";
        let okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
        let p = params(true, true, HashAlg::Sha256, "f0f1f2f3f4f5f6f7f8f9");
        assert_eq!(hex::encode(&*hkdf(&p, &ikm, Some(&salt), Some(42)).expect("A.1")), okm);
        let only_extract = params(true, false, HashAlg::Sha256, "");
        assert_eq!(hex::encode(&*hkdf(&only_extract, &ikm, Some(&salt), None).expect("A.1 PRK")), prk);
        let only_expand = params(false, true, HashAlg::Sha256, "f0f1f2f3f4f5f6f7f8f9");
        assert_eq!(hex::encode(&*hkdf(&only_expand, &h(prk), None, Some(42)).expect("A.1 OKM from PRK")), okm);

        let p = params(true, true, HashAlg::Sha256, "");
        let a3 = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
        assert_eq!(hex::encode(&*hkdf(&p, &ikm, None, Some(42)).expect("A.3")), a3);

        let p = params(true, true, HashAlg::Sha1, "f0f1f2f3f4f5f6f7f8f9");
        let a4 = "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896";
        let ikm4 = h("0b0b0b0b0b0b0b0b0b0b0b");
        assert_eq!(hex::encode(&*hkdf(&p, &ikm4, Some(&salt), Some(42)).expect("A.4")), a4);
    }

    #[test]
    fn lengths_hkdf_cannot_make_are_refused() {
        let p = params(true, true, HashAlg::Sha256, "");
        assert_eq!(hkdf(&p, &[1; 32], None, None).unwrap_err(), Error::TemplateIncomplete(CKA_VALUE_LEN));
        assert_eq!(hkdf(&p, &[1; 32], None, Some(255 * 32 + 1)).unwrap_err(), Error::KeySizeRange);
        let extract = params(true, false, HashAlg::Sha256, "");
        assert_eq!(hkdf(&extract, &[1; 32], None, Some(16)).unwrap_err(), Error::KeySizeRange);
        let expand = params(false, true, HashAlg::Sha256, "");
        assert_eq!(
            hkdf(&expand, &[1; 16], None, Some(16)).unwrap_err(),
            Error::KeySizeRange,
            "PRK shorter than the hash"
        );
    }

    #[test]
    fn malformed_parameters_are_param_invalid() {
        let p = |extract, expand, prf, salt_type, salt: Vec<u8>| Param::Hkdf {
            extract,
            expand,
            prf,
            salt_type,
            salt,
            salt_key: 0,
            info: vec![],
        };
        let bad = [
            p(false, false, CKM_SHA256, CKF_HKDF_SALT_NULL, vec![]),
            p(true, true, CKM_AES_ECB, CKF_HKDF_SALT_NULL, vec![]),
            p(true, true, CKM_SHA256, CKF_HKDF_SALT_DATA, vec![]),
            p(true, true, CKM_SHA256, 0, vec![]),
            p(true, true, CKM_SHA256, CKF_HKDF_SALT_NULL | CKF_HKDF_SALT_DATA, vec![1]),
        ];
        for (i, b) in bad.into_iter().enumerate() {
            assert_eq!(build(CKM_HKDF_DERIVE, b).unwrap_err(), Error::MechanismParamInvalid, "case {i}");
        }
        assert!(build(CKM_HKDF_DERIVE, p(true, true, CKM_SHA3_256, CKF_HKDF_SALT_KEY, vec![])).is_ok());
    }
}
