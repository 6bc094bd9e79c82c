//! Templates: the attribute lists applications pass in, as owned Rust values.
//!
//! The C ABI layer copies each `CK_ATTRIBUTE` into an [`Attr`] once; nothing below it
//! touches caller memory. Values may carry key bytes, so they are zeroized on drop.

use cryptoki_sys::{
    CKA_DERIVE_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_WRAP_TEMPLATE, CK_ATTRIBUTE_TYPE, CK_BBOOL, CK_ULONG,
};
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

/// Whether `ty` holds a nested template (an array of `CK_ATTRIBUTE`), stored inside the
/// token in `codec`'s encoding rather than as caller pointers.
pub fn is_attribute_array(ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(ty, CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE)
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

    /// This template with `required` added: a key made under a wrapping or base key's
    /// `CKA_UNWRAP_TEMPLATE`/`CKA_DERIVE_TEMPLATE` gets those attributes, and a caller
    /// asking for a different value is inconsistent.
    pub fn with_required(&self, required: &Template) -> Result<Template> {
        let mut out = self.clone();
        for r in &required.0 {
            match self.get(r.ty) {
                Some(v) if v != r.value.as_slice() => return Err(Error::TemplateInconsistent(r.ty)),
                Some(_) => {}
                None => out.0.push(r.clone()),
            }
        }
        Ok(out)
    }

    /// The nested template stored in an attribute-array value.
    pub fn decode_nested(ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> Result<Template> {
        let attrs = super::codec::decode(value).map_err(|_| Error::AttributeValueInvalid(ty))?;
        Ok(Template(attrs.into_iter().map(|(t, v)| Attr::new(t, v)).collect()))
    }

    /// The stored encoding of this template as an attribute-array value.
    pub fn encode_nested(&self) -> Result<Vec<u8>> {
        Ok(super::codec::encode(self.0.iter().map(|a| (a.ty, a.value.as_slice())))?.to_vec())
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
    fn required_attributes_are_added_and_conflicts_refused() {
        let caller = Template(vec![Attr::new(CKA_LABEL, "k")]);
        let required = Template(vec![Attr::bool(CKA_TOKEN, true)]);
        assert_eq!(caller.with_required(&required).expect("merge").0.len(), 2);
        let conflicting = Template(vec![Attr::new(CKA_LABEL, "other")]);
        assert_eq!(caller.with_required(&conflicting).unwrap_err(), Error::TemplateInconsistent(CKA_LABEL));
    }

    #[test]
    fn nested_templates_round_trip() {
        let t = Template(vec![Attr::bool(CKA_TOKEN, true), Attr::new(CKA_LABEL, "x")]);
        let back = Template::decode_nested(CKA_WRAP_TEMPLATE, &t.encode_nested().expect("encode")).expect("decode");
        assert_eq!(back, t);
    }

    #[test]
    fn debug_output_never_shows_values() {
        let a = Attr::new(CKA_LABEL, "secret-bytes");
        assert!(!format!("{a:?}").contains("secret"));
    }
}
