//! `CKM_CV_IMPORT_MASTER`: the cryptography of a BYOK import (`doc/byok.md`). A customer
//! wraps their 32-byte key outside the token under the public half of an import key;
//! this file opens the wrapped key with the private half. The hierarchy seals the result
//! as a new master key version (the session's `byok.rs` runs the whole call).
//!
//! Two formats, chosen by the import key's type:
//! - RSA (3072 bits or more): RSAES-OAEP with SHA-256, MGF1-SHA-256 and an empty label,
//!   exactly what `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt
//!   rsa_oaep_md:sha256` makes. The decryption is `CKM_RSA_PKCS_OAEP`'s own (backend
//!   where it serves, else the `rsa` crate, blinded).
//! - ML-KEM-768 or -1024: the KEM ciphertext, then the key under AES-256 key wrap with
//!   padding (RFC 5649, default ICV) keyed by the 32-byte shared secret. The shared secret
//!   is fresh for each encapsulation, so each wrapped key has its own wrapping key; a bad
//!   ciphertext decapsulates (implicit rejection) to a secret under which the key wrap
//!   fails its integrity check.
//!
//! Weaker import keys (RSA under 3072 bits, ML-KEM-512) are refused: the imported key is
//! an AES-256 master key and should not travel under less.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::mlkem::ParamSet;
use super::registry::{build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, ParamShape, UnwrapTarget};
use super::{HashAlg, Mechanism, OaepParams};
use crate::error::{Error, Result};
use crate::vendor::CKM_CV_IMPORT_MASTER;

/// The smallest RSA import key, in bits.
pub const MIN_RSA_BITS: usize = 3072;
/// The length of a key an import makes: an AES-256 master key.
pub const KEY_LEN: usize = 32;
/// The length of AES key wrap with padding of a [`KEY_LEN`]-byte key.
const KWP_LEN: usize = KEY_LEN + 8;

/// Registry row: the unwrapping key is an import key pair's private half (RSA modulus
/// bits; ML-KEM-768/1024 import keys are accepted too, see the module doc).
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_CV_IMPORT_MASTER,
    info: MechInfo { min_key: MIN_RSA_BITS as CK_ULONG, max_key: super::rsa::MAX_BITS as CK_ULONG, flags: CKF_UNWRAP },
    key: KeyNeed::Recipient(&[CKK_RSA, CKK_ML_KEM]),
    param: ParamShape::None,
    build: build_plain,
    ops: Ops::NONE,
}];

/// How an import key's wrapped keys are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label).
    RsaOaep,
    /// ML-KEM ciphertext || AES-256-KWP(key) under the shared secret.
    MlKemKwp(ParamSet),
}

impl Scheme {
    /// The scheme of import key `key` (its private half), or why it cannot import:
    /// `CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT` for another type, `_SIZE_RANGE` for a
    /// weak key.
    pub fn of(key: &dyn KeyView) -> Result<Scheme> {
        match key.attr_ulong(CKA_KEY_TYPE)? {
            Some(CKK_RSA) => {
                let modulus = key.attr(CKA_MODULUS).ok_or(Error::UnwrappingKeyTypeInconsistent)?;
                if bits(modulus) < MIN_RSA_BITS {
                    return Err(Error::UnwrappingKeySizeRange);
                }
                Ok(Scheme::RsaOaep)
            }
            Some(CKK_ML_KEM) => {
                let set = key.attr_ulong(CKA_PARAMETER_SET)?.ok_or(Error::UnwrappingKeyTypeInconsistent)?;
                match ParamSet::from_ck(set).map_err(|_| Error::UnwrappingKeyTypeInconsistent)? {
                    ParamSet::MlKem512 => Err(Error::UnwrappingKeySizeRange),
                    ps => Ok(Scheme::MlKemKwp(ps)),
                }
            }
            _ => Err(Error::UnwrappingKeyTypeInconsistent),
        }
    }

    /// What the version's `CKA_CV_ORIGIN` records.
    pub fn origin(self) -> &'static str {
        match self {
            Scheme::RsaOaep => "imported:rsa-oaep-sha256",
            Scheme::MlKemKwp(ParamSet::MlKem1024) => "imported:ml-kem-1024+aes-kwp",
            Scheme::MlKemKwp(_) => "imported:ml-kem-768+aes-kwp",
        }
    }
}

/// The bit length of a big-endian unsigned integer.
fn bits(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => &[],
    };
    match trimmed.first() {
        Some(first) => trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Opens `wrapped` with import key `key` (its private half): the customer's key, exactly
/// [`KEY_LEN`] bytes. A wrapped value of a length the scheme cannot have, or holding a
/// key of another length, is `CKR_WRAPPED_KEY_LEN_RANGE`; any integrity failure (bad
/// OAEP padding, a key wrap that does not verify) is `CKR_WRAPPED_KEY_INVALID`.
pub fn open(key: &dyn KeyView, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let value = match Scheme::of(key)? {
        Scheme::RsaOaep => open_oaep(key, wrapped)?,
        Scheme::MlKemKwp(ps) => open_kem(key, ps, wrapped)?,
    };
    if value.len() != KEY_LEN {
        return Err(Error::WrappedKeyLenRange);
    }
    Ok(value)
}

/// RSA-OAEP-SHA256 through `CKM_RSA_PKCS_OAEP`'s unwrap (the target is not looked at for
/// OAEP).
fn open_oaep(key: &dyn KeyView, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let oaep = Mechanism::RsaOaep(OaepParams { hash: HashAlg::Sha256, label: Vec::new() });
    let unwrap = super::registry::row(CKM_RSA_PKCS_OAEP)?.op(|o| o.wrap)?.unwrap;
    let target = UnwrapTarget { key_type: CKK_AES, value_len: Some(KEY_LEN) };
    unwrap(&oaep, key, wrapped, target).map_err(|e| match e {
        Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
        _ => Error::WrappedKeyInvalid,
    })
}

/// ML-KEM decapsulation (`CKM_ML_KEM`'s own), then RFC 5649 unwrap under the secret.
fn open_kem(key: &dyn KeyView, ps: ParamSet, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let ct_len = ps.ciphertext_len();
    // At least one KWP block pair after the ciphertext, in whole 8-byte semiblocks.
    if wrapped.len() < ct_len + 16 || (wrapped.len() - ct_len) % 8 != 0 {
        return Err(Error::WrappedKeyLenRange);
    }
    let (ct, kwp) = wrapped.split_at(ct_len);
    if kwp.len() != KWP_LEN {
        // A key of another length: refused before any private-key operation.
        return Err(Error::WrappedKeyLenRange);
    }
    let decapsulate = super::registry::row(CKM_ML_KEM)?.op(|o| o.kem)?.decapsulate;
    let secret = decapsulate(key, ct).map_err(|_| Error::WrappedKeyInvalid)?;
    super::aes_kw::unwrap(&secret, kwp, true).map_err(|_| Error::WrappedKeyInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths_ignore_leading_zero_bytes_and_bits() {
        assert_eq!(bits(&[]), 0);
        assert_eq!(bits(&[0, 0]), 0);
        assert_eq!(bits(&[0, 1]), 1);
        assert_eq!(bits(&[0x80, 0]), 16);
        assert_eq!(bits(&[0, 0x7f, 0xff]), 15);
        let mut modulus = vec![0u8; 385];
        modulus[1] = 0xc1;
        assert_eq!(bits(&modulus), 3072);
    }

    #[test]
    fn origins_name_the_scheme() {
        assert_eq!(Scheme::RsaOaep.origin(), "imported:rsa-oaep-sha256");
        assert_eq!(Scheme::MlKemKwp(ParamSet::MlKem768).origin(), "imported:ml-kem-768+aes-kwp");
        assert_eq!(Scheme::MlKemKwp(ParamSet::MlKem1024).origin(), "imported:ml-kem-1024+aes-kwp");
    }
}
