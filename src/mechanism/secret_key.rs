//! `CKM_AES_KEY_GEN`, `CKM_GENERIC_SECRET_KEY_GEN` and the PKCS#11 3.0 HMAC key
//! generators (`CKM_SHA_1_KEY_GEN` … `CKM_SHA512_KEY_GEN`, `CKM_SHA3_256/384/512_KEY_GEN`,
//! making `CKK_SHA_1_HMAC` … keys that only their hash's HMAC accepts): secret key values
//! from the OS CSPRNG, of the length the template's `CKA_VALUE_LEN` asks for.
//!
//! `CKM_HKDF_KEY_GEN` makes `CKK_HKDF` keys for `CKM_HKDF_DERIVE` (PKCS#11 3.0 §2.43).
//!
//! `CKM_SHA3_224_KEY_GEN` is not offered: the token has no SHA3-224 HMAC to use its keys.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::registry::{build_plain, KeyNeed, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::Mechanism;
use crate::error::{Error, Result};

const fn row(ty: CK_MECHANISM_TYPE, min_key: usize, max_key: usize) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: min_key as CK_ULONG, max_key: max_key as CK_ULONG, flags: CKF_GENERATE },
        key: KeyNeed::None,
        param: ParamShape::None,
        build,
        ops: Ops { generate: Some(generate_op), ..Ops::NONE },
    }
}

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    if HMAC_KEY_GENS.iter().any(|(g, _)| *g == ty) {
        Ok(Mechanism::HmacKeyGen(ty))
    } else if ty == CKM_HKDF_KEY_GEN {
        Ok(Mechanism::HkdfKeyGen)
    } else {
        build_plain(ty, p)
    }
}

/// Registry rows (key sizes in bytes, as the spec counts them for these mechanisms). An
/// HMAC key has the generic secret's range: HMAC takes any key length (RFC 2104 hashes
/// one longer than a block), so the hash sets no bound of its own.
pub const ENTRIES: &[MechEntry] = &[
    row(CKM_AES_KEY_GEN, 16, 32),
    row(CKM_GENERIC_SECRET_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA_1_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA224_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA256_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA384_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA512_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA3_256_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA3_384_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_SHA3_512_KEY_GEN, 1, MAX_GENERIC_LEN),
    row(CKM_HKDF_KEY_GEN, 1, MAX_GENERIC_LEN),
];

/// The HMAC key generators and the key type each makes (PKCS#11 3.0 §2.20-2.27).
const HMAC_KEY_GENS: &[(CK_MECHANISM_TYPE, CK_KEY_TYPE)] = &[
    (CKM_SHA_1_KEY_GEN, CKK_SHA_1_HMAC),
    (CKM_SHA224_KEY_GEN, CKK_SHA224_HMAC),
    (CKM_SHA256_KEY_GEN, CKK_SHA256_HMAC),
    (CKM_SHA384_KEY_GEN, CKK_SHA384_HMAC),
    (CKM_SHA512_KEY_GEN, CKK_SHA512_HMAC),
    (CKM_SHA3_256_KEY_GEN, CKK_SHA3_256_HMAC),
    (CKM_SHA3_384_KEY_GEN, CKK_SHA3_384_HMAC),
    (CKM_SHA3_512_KEY_GEN, CKK_SHA3_512_HMAC),
];

fn generate_op(m: &Mechanism, len: Option<usize>) -> Result<(CK_KEY_TYPE, Zeroizing<Vec<u8>>)> {
    let key_type = key_type(m.ty()).ok_or(Error::MechanismInvalid)?;
    let len = len.ok_or(Error::TemplateIncomplete(CKA_VALUE_LEN))?;
    Ok((key_type, generate(m.ty(), len)?))
}

/// Longest generic secret the token makes (an HMAC key longer than a block is hashed anyway).
pub const MAX_GENERIC_LEN: usize = 512;

/// The key type a generation mechanism makes.
pub fn key_type(mechanism: CK_MECHANISM_TYPE) -> Option<CK_KEY_TYPE> {
    match mechanism {
        CKM_AES_KEY_GEN => Some(CKK_AES),
        CKM_GENERIC_SECRET_KEY_GEN => Some(CKK_GENERIC_SECRET),
        CKM_HKDF_KEY_GEN => Some(CKK_HKDF),
        _ => HMAC_KEY_GENS.iter().find(|(m, _)| *m == mechanism).map(|(_, t)| *t),
    }
}

/// A fresh key value of `len` bytes for `mechanism`; a length it cannot make is
/// `CKR_ATTRIBUTE_VALUE_INVALID` on `CKA_VALUE_LEN` (the template's fault, not the key's).
pub fn generate(mechanism: CK_MECHANISM_TYPE, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let ok = match mechanism {
        CKM_AES_KEY_GEN => matches!(len, 16 | 24 | 32),
        m if m == CKM_GENERIC_SECRET_KEY_GEN || m == CKM_HKDF_KEY_GEN || HMAC_KEY_GENS.iter().any(|(g, _)| *g == m) => {
            (1..=MAX_GENERIC_LEN).contains(&len)
        }
        _ => return Err(Error::MechanismInvalid),
    };
    if !ok {
        return Err(Error::AttributeValueInvalid(CKA_VALUE_LEN));
    }
    let mut value = Zeroizing::new(vec![0u8; len]);
    super::primitives::fill_random(&mut value)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_keys_come_in_three_sizes_only() {
        for len in [16, 24, 32] {
            assert_eq!(generate(CKM_AES_KEY_GEN, len).expect("gen").len(), len);
        }
        assert_eq!(generate(CKM_AES_KEY_GEN, 20).unwrap_err(), Error::AttributeValueInvalid(CKA_VALUE_LEN));
    }

    #[test]
    fn each_hmac_key_generator_makes_its_hash_s_key_type_and_the_hmac_accepts_it() {
        use super::super::hash::{HashAlg, ALL};
        for (mech, made) in HMAC_KEY_GENS {
            assert_eq!(key_type(*mech), Some(*made), "{mech:#x}");
            let hash: Vec<HashAlg> = ALL.iter().copied().filter(|h| h.hmac_key_types().contains(made)).collect();
            assert_eq!(hash.len(), 1, "{mech:#x}: exactly one HMAC takes {made:#x} keys");
            assert_eq!(generate(*mech, 64).expect("gen").len(), 64);
            assert_eq!(generate(*mech, 0).unwrap_err(), Error::AttributeValueInvalid(CKA_VALUE_LEN));
            assert_eq!(generate(*mech, MAX_GENERIC_LEN + 1).unwrap_err(), Error::AttributeValueInvalid(CKA_VALUE_LEN));
        }
        assert!(ENTRIES.iter().all(|e| key_type(e.ty).is_some()), "every row names the key type it makes");
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(
            generate(CKM_GENERIC_SECRET_KEY_GEN, 32).expect("a"),
            generate(CKM_GENERIC_SECRET_KEY_GEN, 32).expect("b")
        );
    }
}
