//! `CKM_AES_KEY_GEN` and `CKM_GENERIC_SECRET_KEY_GEN`: secret key values from the OS
//! CSPRNG, of the length the template's `CKA_VALUE_LEN` asks for.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::registry::{build_plain, KeyNeed, MechEntry, MechInfo, Ops, ParamShape};
use super::Mechanism;
use crate::error::{Error, Result};

const fn row(ty: CK_MECHANISM_TYPE, min_key: usize, max_key: usize) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: min_key as CK_ULONG, max_key: max_key as CK_ULONG, flags: CKF_GENERATE },
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { generate: Some(generate_op), ..Ops::NONE },
    }
}

/// Registry rows (key sizes in bytes, as the spec counts them for these mechanisms).
pub const ENTRIES: &[MechEntry] = &[row(CKM_AES_KEY_GEN, 16, 32), row(CKM_GENERIC_SECRET_KEY_GEN, 1, MAX_GENERIC_LEN)];

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
        _ => None,
    }
}

/// A fresh key value of `len` bytes for `mechanism`; a length it cannot make is
/// `CKR_ATTRIBUTE_VALUE_INVALID` on `CKA_VALUE_LEN` (the template's fault, not the key's).
pub fn generate(mechanism: CK_MECHANISM_TYPE, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let ok = match mechanism {
        CKM_AES_KEY_GEN => matches!(len, 16 | 24 | 32),
        CKM_GENERIC_SECRET_KEY_GEN => (1..=MAX_GENERIC_LEN).contains(&len),
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
    fn two_generated_keys_differ() {
        assert_ne!(
            generate(CKM_GENERIC_SECRET_KEY_GEN, 32).expect("a"),
            generate(CKM_GENERIC_SECRET_KEY_GEN, 32).expect("b")
        );
    }
}
