//! The PKCS#11 key-combining derivations (spec §2.40, "Miscellaneous simple key
//! derivation mechanisms"): `CKM_CONCATENATE_BASE_AND_KEY`,
//! `CKM_CONCATENATE_BASE_AND_DATA`, `CKM_CONCATENATE_DATA_AND_BASE`,
//! `CKM_XOR_BASE_AND_DATA` and `CKM_EXTRACT_KEY_FROM_KEY`.
//!
//! Their output is the source keys' own bits, so the session makes the new key sensitive
//! when a source key is, and unextractable when a source key is
//! ([`Mechanism::copies_key_bits`]): otherwise concatenating a sensitive key with known
//! data would read it back. A `CKA_VALUE_LEN` takes the leading bytes; one longer than the
//! combination is `CKR_KEY_SIZE_RANGE`.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::secret_key::MAX_GENERIC_LEN;
use super::Mechanism;
use crate::error::{Error, Result};

/// Secret keys whose values these mechanisms combine.
pub const SOURCE_TYPES: &[CK_KEY_TYPE] = &[
    CKK_GENERIC_SECRET,
    CKK_AES,
    CKK_HKDF,
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

const fn row(ty: CK_MECHANISM_TYPE, param: ParamShape, ops: Ops) -> MechEntry {
    MechEntry {
        ty,
        // Sizes in bytes: the keys they read are generic secrets (and AES, HMAC keys inside that range).
        info: MechInfo { min_key: 1, max_key: MAX_GENERIC_LEN as CK_ULONG, flags: CKF_DERIVE },
        key: KeyNeed::Secret(SOURCE_TYPES),
        param,
        build,
        ops,
    }
}

const DERIVE: Ops = Ops { derive: Some(derive_op), ..Ops::NONE };

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[
    row(CKM_CONCATENATE_BASE_AND_KEY, ParamShape::Ulong, Ops { derive_with: Some(derive_with_op), ..Ops::NONE }),
    row(CKM_CONCATENATE_BASE_AND_DATA, ParamShape::StringData, DERIVE),
    row(CKM_CONCATENATE_DATA_AND_BASE, ParamShape::StringData, DERIVE),
    row(CKM_XOR_BASE_AND_DATA, ParamShape::StringData, DERIVE),
    row(CKM_EXTRACT_KEY_FROM_KEY, ParamShape::Ulong, DERIVE),
];

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    Ok(match (ty, p) {
        (CKM_CONCATENATE_BASE_AND_KEY, Param::Ulong(h)) => Mechanism::ConcatBaseAndKey(h),
        (CKM_CONCATENATE_BASE_AND_DATA, Param::Bytes(d)) => Mechanism::ConcatBaseAndData(d),
        (CKM_CONCATENATE_DATA_AND_BASE, Param::Bytes(d)) => Mechanism::ConcatDataAndBase(d),
        (CKM_XOR_BASE_AND_DATA, Param::Bytes(d)) if !d.is_empty() => Mechanism::XorBaseAndData(d),
        (CKM_EXTRACT_KEY_FROM_KEY, Param::Ulong(bit)) => Mechanism::ExtractKeyFromKey(bit),
        _ => return Err(Error::MechanismParamInvalid),
    })
}

fn derive_op(m: &Mechanism, base: &dyn KeyView, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let base = base.secret()?;
    let whole = match m {
        Mechanism::ConcatBaseAndData(d) => concat(&base, d),
        Mechanism::ConcatDataAndBase(d) => concat(d, &base),
        Mechanism::XorBaseAndData(d) => xor(&base, d),
        Mechanism::ExtractKeyFromKey(bit) => return extract(&base, *bit, len),
        _ => return Err(Error::MechanismInvalid),
    };
    leading(whole, len)
}

fn derive_with_op(
    m: &Mechanism,
    base: &dyn KeyView,
    other: &dyn KeyView,
    len: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>> {
    match m {
        Mechanism::ConcatBaseAndKey(_) => leading(concat(&base.secret()?, &other.secret()?), len),
        _ => Err(Error::MechanismInvalid),
    }
}

fn concat(a: &[u8], b: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(a.len() + b.len()));
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// Byte-wise XOR over the shorter of the two (the spec's length).
fn xor(a: &[u8], b: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(a.iter().zip(b).map(|(x, y)| x ^ y).collect())
}

/// The first `len` bytes (all without a length); more than there are is `KeySizeRange`.
fn leading(mut whole: Zeroizing<Vec<u8>>, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let len = len.unwrap_or(whole.len());
    if len == 0 || len > whole.len() {
        return Err(Error::KeySizeRange);
    }
    whole.truncate(len);
    Ok(whole)
}

/// `len` bytes of the base key's bit string read from bit `first` (bit 0 is the most
/// significant bit of the first byte), wrapping around to its start: spec §2.40.6.
/// The length comes from the template and may not exceed the base key's.
fn extract(base: &[u8], first: CK_ULONG, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let len = len.ok_or(Error::TemplateIncomplete(CKA_VALUE_LEN))?;
    let bits = base.len() * 8;
    let first = usize::try_from(first).map_err(|_| Error::MechanismParamInvalid)?;
    if first >= bits {
        return Err(Error::MechanismParamInvalid);
    }
    if len == 0 || len > base.len() {
        return Err(Error::KeySizeRange);
    }
    let bit = |i: usize| (base[(i % bits) / 8] >> (7 - (i % 8))) & 1;
    let mut out = Zeroizing::new(vec![0u8; len]);
    for (n, byte) in out.iter_mut().enumerate() {
        for k in 0..8 {
            *byte = (*byte << 1) | bit(first + n * 8 + k);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_follows_the_spec_example() {
        // PKCS#11 3.0 §2.40.6: base 0x329F84A9, bit 21, two bytes -> 0x9526 (bits 21-36,
        // wrapping around the 32-bit key).
        let got = extract(&[0x32, 0x9f, 0x84, 0xa9], 21, Some(2)).expect("extract");
        assert_eq!(got.as_slice(), [0x95, 0x26]);
        assert_eq!(extract(&[1, 2, 3, 4], 0, Some(4)).expect("whole").as_slice(), [1, 2, 3, 4]);
        assert_eq!(extract(&[1, 2], 16, Some(1)).unwrap_err(), Error::MechanismParamInvalid);
        assert_eq!(extract(&[1, 2], 0, Some(3)).unwrap_err(), Error::KeySizeRange);
        assert_eq!(extract(&[1, 2], 0, None).unwrap_err(), Error::TemplateIncomplete(CKA_VALUE_LEN));
    }

    #[test]
    fn concatenation_and_xor_take_leading_bytes() {
        assert_eq!(leading(concat(&[1, 2], &[3]), None).expect("all").as_slice(), [1, 2, 3]);
        assert_eq!(leading(concat(&[1, 2], &[3]), Some(2)).expect("two").as_slice(), [1, 2]);
        assert_eq!(leading(concat(&[1, 2], &[3]), Some(4)).unwrap_err(), Error::KeySizeRange);
        assert_eq!(xor(&[0xff, 0x0f, 0xaa], &[0x0f, 0xff]).as_slice(), [0xf0, 0xf0]);
    }

    #[test]
    fn an_empty_xor_operand_is_a_parameter_error() {
        assert_eq!(build(CKM_XOR_BASE_AND_DATA, Param::Bytes(vec![])).unwrap_err(), Error::MechanismParamInvalid);
        assert_eq!(build(CKM_CONCATENATE_BASE_AND_KEY, Param::None).unwrap_err(), Error::MechanismParamInvalid);
    }
}
