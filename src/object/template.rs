//! Templates: the attribute lists applications pass in, as owned Rust values.
//!
//! The C ABI layer copies each `CK_ATTRIBUTE` into an [`Attr`] once; nothing below it
//! touches caller memory. Values may carry key bytes, so they are zeroized on drop.

use cryptoki_sys::{CK_ATTRIBUTE_TYPE, CK_BBOOL, CK_ULONG};
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// One attribute: its type and value bytes, in the C ABI's native layout.
#[derive(Clone, PartialEq, Eq)]
pub struct Attr {
    /// `CKA_*`.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// The value bytes.
    pub value: Vec<u8>,
}

impl Drop for Attr {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl std::fmt::Debug for Attr {
    // Values may be key bytes: print only the type and length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({} bytes)", crate::names::attr_name(self.ty), self.value.len())
    }
}

impl Attr {
    /// An attribute from raw bytes.
    pub fn new(ty: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) -> Attr {
        Attr { ty, value: value.into() }
    }

    /// A `CK_BBOOL` attribute.
    pub fn bool(ty: CK_ATTRIBUTE_TYPE, v: bool) -> Attr {
        Attr::new(ty, vec![CK_BBOOL::from(v)])
    }

    /// A `CK_ULONG` attribute.
    pub fn ulong(ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attr {
        Attr::new(ty, v.to_ne_bytes().to_vec())
    }
}

/// Decodes a `CK_BBOOL` value.
pub fn decode_bool(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Result<bool> {
    match v {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(Error::AttributeValueInvalid(ty)),
    }
}

/// Decodes a `CK_ULONG` value.
pub fn decode_ulong(ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Result<CK_ULONG> {
    let bytes: [u8; std::mem::size_of::<CK_ULONG>()] = v.try_into().map_err(|_| Error::AttributeValueInvalid(ty))?;
    Ok(CK_ULONG::from_ne_bytes(bytes))
}

/// A template: the attributes of one call, in the caller's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template(pub Vec<Attr>);

impl Template {
    /// The value of `ty`, if present.
    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0.iter().find(|a| a.ty == ty).map(|a| a.value.as_slice())
    }

    /// The `CK_BBOOL` value of `ty`, if present.
    pub fn bool(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
        self.get(ty).map(|v| decode_bool(ty, v)).transpose()
    }

    /// The `CK_ULONG` value of `ty`, if present.
    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        self.get(ty).map(|v| decode_ulong(ty, v)).transpose()
    }

    /// Refuses a template that names one attribute twice.
    pub fn check_unique(&self) -> Result<()> {
        for (i, a) in self.0.iter().enumerate() {
            if self.0[..i].iter().any(|b| b.ty == a.ty) {
                return Err(Error::TemplateInconsistent(a.ty));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::{CKA_LABEL, CKA_TOKEN};

    #[test]
    fn booleans_must_be_one_byte_zero_or_one() {
        assert_eq!(decode_bool(CKA_TOKEN, &[1]), Ok(true));
        assert_eq!(decode_bool(CKA_TOKEN, &[2]), Err(Error::AttributeValueInvalid(CKA_TOKEN)));
        assert_eq!(decode_bool(CKA_TOKEN, &[0, 0]), Err(Error::AttributeValueInvalid(CKA_TOKEN)));
    }

    #[test]
    fn ulongs_must_be_native_width() {
        assert_eq!(decode_ulong(CKA_TOKEN, &5u64.to_ne_bytes()), Ok(5));
        assert!(decode_ulong(CKA_TOKEN, &[5, 0, 0, 0]).is_err());
    }

    #[test]
    fn a_repeated_attribute_is_inconsistent() {
        let t = Template(vec![Attr::new(CKA_LABEL, "a"), Attr::new(CKA_LABEL, "b")]);
        assert_eq!(t.check_unique(), Err(Error::TemplateInconsistent(CKA_LABEL)));
    }

    #[test]
    fn debug_output_never_shows_values() {
        let a = Attr::new(CKA_LABEL, "secret-bytes");
        assert!(!format!("{a:?}").contains("secret"));
    }
}
