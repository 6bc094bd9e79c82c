//! `object/`: the attribute model and the spec's policy over it.
//!
//! An [`Object`] is a validated attribute set. Every way an object comes into being or
//! changes (create, copy, set) goes through the policy table in `policy.rs`, and every
//! read through [`Object::read`], which never reveals key material of a sensitive or
//! unextractable key. This layer knows nothing of sessions, handles or SQL.

pub mod codec;
pub mod import;
pub mod policy;
mod stored;
pub mod template;
pub mod usage;

use std::collections::BTreeMap;

use cryptoki_sys::*;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::mechanism::registry::{AttrSource, KeyView};
pub use crate::mechanism::Prepared;
use policy::{Classes, Kind, Row, Rules};
pub use stored::{binding, bound_in_record, AtRest, UnderStorageKey};
use template::{decode_bool, decode_ulong};
pub use template::{Attr, Template};

/// The attributes a record binds: what the key is and what it may do.
pub const BOUND: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
];

/// What a read of one attribute yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// The value.
    Value(&'a [u8]),
    /// The attribute exists but must not leave the token (`CKR_ATTRIBUTE_SENSITIVE`).
    Sensitive,
    /// The object has no such attribute (`CKR_ATTRIBUTE_TYPE_INVALID`).
    Invalid,
}

/// A validated object.
///
/// An object made in this process holds the attributes it was given or the token set,
/// and reads every other attribute of its class from the class's defaults
/// ([`policy::ClassView`]): it reads, compares, sizes and stores exactly as if each
/// default were in `attrs` (as they were once copied in), without an allocation per
/// default on every key made. An object read from a stored row has no `defaults`: it
/// holds what its row holds, so a row written before an attribute existed never gains
/// one on read.
#[derive(Clone)]
pub struct Object {
    class: Classes,
    attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>,
    /// The class's defaults, sorted by type, for what `attrs` lacks (empty: none).
    defaults: &'static [(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    /// Loaded without the storage key: its sealed attributes are absent and read as sensitive.
    locked: bool,
    /// Key material its mechanisms prepared from it (not an attribute).
    prepared: Prepared,
    /// The stored row's generation (0 for an object never stored).
    generation: u64,
    /// Loaded from a row whose sealed part carries the row binding.
    bound: bool,
}

impl PartialEq for Object {
    // The same attributes make the same object, whatever row generation they came from.
    fn eq(&self, other: &Self) -> bool {
        self.class == other.class && self.locked == other.locked && self.entries() == other.entries()
    }
}

impl Eq for Object {}

impl Drop for Object {
    fn drop(&mut self) {
        self.attrs.values_mut().for_each(Zeroize::zeroize);
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.entries().iter().map(|(t, _)| crate::names::attr_name(*t)).collect();
        f.debug_struct("Object").field("class", &self.class).field("attrs", &names).finish()
    }
}

fn check_kind(row: &Row, value: &[u8]) -> Result<()> {
    let ok = match row.kind {
        Kind::Bool => decode_bool(row.ty, value).is_ok(),
        Kind::Ulong => decode_ulong(row.ty, value).is_ok(),
        Kind::Bytes => true,
        Kind::Date => value.is_empty() || (value.len() == 8 && value.iter().all(u8::is_ascii_digit)),
        Kind::MechList => value.len() % std::mem::size_of::<CK_ULONG>() == 0,
        Kind::Template => Template::decode_nested(row.ty, value).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::AttributeValueInvalid(row.ty))
    }
}

/// A fresh `CKA_UNIQUE_ID`: 16 random bytes as 32 lowercase hex digits. Random rather
/// than counted: ids must stay unique across processes and hosts sharing one store (a
/// token object's row is `UNIQUE` on it and its sealed part is bound to it), and in a
/// forked child, without any state to coordinate.
fn unique_id() -> Result<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut raw = [0u8; 16];
    crate::mechanism::primitives::fill_random(&mut raw)?;
    let mut id = Vec::with_capacity(32);
    for b in raw {
        id.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    Ok(id)
}

/// How many attributes the token sets on a new object besides the given ones (origin,
/// `CKA_VALUE_LEN`, `CKA_UNIQUE_ID`): the capacity reserved for them up front.
const SET_BY_TOKEN: usize = 6;

/// Attribute values gathered for a new object, zeroized if construction stops early.
struct Pending(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

impl Pending {
    /// The value of `ty` among the first `n` entries (the supplied ones), if there.
    fn first(&self, n: usize, ty: CK_ATTRIBUTE_TYPE) -> Option<&Vec<u8>> {
        self.0[..n].iter().find(|(t, _)| *t == ty).map(|(_, v)| v)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|(_, v)| v.zeroize());
    }
}

/// Refuses a new object of `class` that lacks an attribute the class requires
/// (`CKR_TEMPLATE_INCOMPLETE`, the first missing in table order). Every other attribute
/// left out reads as its class's default.
fn check_required(class: &policy::ClassView, pending: &Pending) -> Result<()> {
    match class.required().iter().find(|ty| !pending.0.iter().any(|(t, _)| t == *ty)) {
        Some(ty) => Err(Error::TemplateIncomplete(*ty)),
        None => Ok(()),
    }
}

/// How an object came to be: decides the attributes only the token sets (spec §4.9–4.10:
/// `CKA_LOCAL`, `CKA_KEY_GEN_MECHANISM`, `CKA_ALWAYS_SENSITIVE`, `CKA_NEVER_EXTRACTABLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `C_CreateObject`: the application supplied every value.
    Created,
    /// Generated on the token by this mechanism.
    Generated(CK_MECHANISM_TYPE),
    /// `C_UnwrapKey` (or decapsulation): the value came from outside in protected form.
    Unwrapped,
    /// `C_DeriveKey` from a base key with these properties.
    Derived {
        /// The base key's `CKA_ALWAYS_SENSITIVE`.
        always_sensitive: bool,
        /// The base key's `CKA_NEVER_EXTRACTABLE`.
        never_extractable: bool,
    },
}

impl Object {
    /// `C_CreateObject`: validates `template` against the policy and fills defaults.
    pub fn create(template: &Template) -> Result<Object> {
        Object::new(template, Origin::Created, &[])
    }

    /// An object from the application's `template` plus the attributes the token
    /// `supplied` (a generated value, the class and key type a mechanism implies). The
    /// template may repeat a supplied class or key type with the same value; any other
    /// overlap is inconsistent (`CKA_VALUE` in a key generation template, say).
    pub fn new(template: &Template, origin: Origin, supplied: &[Attr]) -> Result<Object> {
        Object::made(template.clone(), origin, supplied.iter().cloned())
    }

    /// [`Object::new`] from a template and supplied attributes the caller is done with:
    /// their values move into the object instead of being copied (a key made on every
    /// `C_GenerateKey`, `C_EncapsulateKey`, ...).
    pub fn made(mut template: Template, origin: Origin, supplied: impl IntoIterator<Item = Attr>) -> Result<Object> {
        template.check_unique()?;
        // Gathered in a list that zeroizes its values on every early return (the supplied
        // attributes may be a new key's value), then built into the map in one go: one
        // sort and a bulk build instead of a search and an insert per attribute.
        let supplied = supplied.into_iter();
        let mut pending = Pending(Vec::with_capacity(supplied.size_hint().0 + template.0.len() + SET_BY_TOKEN));
        pending.0.extend(supplied.map(|mut a| (a.ty, std::mem::take(&mut a.value))));
        let n_supplied = pending.0.len();
        let class_value = match pending.first(n_supplied, CKA_CLASS) {
            Some(v) => decode_ulong(CKA_CLASS, v)?,
            None => template.ulong(CKA_CLASS)?.ok_or(Error::TemplateIncomplete(CKA_CLASS))?,
        };
        let class = Classes::of(class_value).ok_or(Error::AttributeValueInvalid(CKA_CLASS))?;
        for a in &mut template.0 {
            // The template's types are unique (checked above): only a supplied one can clash.
            if let Some(given) = pending.first(n_supplied, a.ty) {
                if *given == a.value {
                    continue;
                }
                return Err(Error::TemplateInconsistent(a.ty));
            }
            let row = policy::lookup(class, a.ty).ok_or(Error::AttributeTypeInvalid(a.ty))?;
            if row.rules.has(Rules::TOKEN_SET) {
                return Err(Error::AttributeReadOnly(a.ty));
            }
            if row.rules.has(Rules::DERIVED) {
                // An imported key's length is its value's; a made key's is recomputed below.
                if origin == Origin::Created {
                    return Err(Error::TemplateInconsistent(a.ty));
                }
                continue;
            }
            check_kind(row, &a.value)?;
            pending.0.push((a.ty, std::mem::take(&mut a.value)));
        }
        let view = policy::view(class).ok_or(Error::AttributeValueInvalid(CKA_CLASS))?;
        check_required(view, &pending)?;
        let mut object = Object::holding(std::mem::take(&mut pending.0).into_iter().collect());
        object.class = class;
        object.defaults = view.defaults();
        object.check_class_rules()?;
        object.set_origin(origin);
        object.attrs.insert(CKA_UNIQUE_ID, unique_id()?);
        Ok(object)
    }

    /// An unvalidated object holding `attrs` (class to be set by the caller), so that
    /// they are zeroized if construction stops early.
    fn holding(attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>) -> Object {
        Object {
            class: Classes::DATA,
            attrs,
            defaults: &[],
            locked: false,
            prepared: Prepared::default(),
            generation: 0,
            bound: false,
        }
    }

    /// Replaces (or adds) one attribute's value, zeroizing the value it replaces.
    fn put(&mut self, ty: CK_ATTRIBUTE_TYPE, value: Vec<u8>) {
        if let Some(mut old) = self.attrs.insert(ty, value) {
            old.zeroize();
        }
    }

    /// An object that stands for a key held elsewhere (a master key version): the token
    /// supplies every attribute, and no value is present or revealed.
    pub fn reference(attrs: Vec<Attr>) -> Object {
        let attrs = attrs.iter().map(|a| (a.ty, a.value.clone())).collect();
        Object {
            class: Classes::SECRET,
            attrs,
            defaults: &[],
            locked: true,
            prepared: Prepared::default(),
            generation: 0,
            bound: false,
        }
    }

    fn set_origin(&mut self, origin: Origin) {
        if !Classes::KEYS.contains(self.class) {
            return;
        }
        let (local, mechanism) = match origin {
            Origin::Generated(m) => (true, m),
            _ => (false, CK_UNAVAILABLE_INFORMATION),
        };
        let (always_sensitive, never_extractable) = match origin {
            Origin::Generated(_) => (self.flag(CKA_SENSITIVE), !self.flag(CKA_EXTRACTABLE)),
            Origin::Derived { always_sensitive, never_extractable } => {
                (always_sensitive && self.flag(CKA_SENSITIVE), never_extractable && !self.flag(CKA_EXTRACTABLE))
            }
            Origin::Created | Origin::Unwrapped => (false, false),
        };
        self.attrs.insert(CKA_LOCAL, vec![CK_BBOOL::from(local)]);
        self.attrs.insert(CKA_KEY_GEN_MECHANISM, mechanism.to_ne_bytes().to_vec());
        if self.row(CKA_ALWAYS_SENSITIVE).is_some() {
            self.attrs.insert(CKA_ALWAYS_SENSITIVE, vec![CK_BBOOL::from(always_sensitive)]);
            self.attrs.insert(CKA_NEVER_EXTRACTABLE, vec![CK_BBOOL::from(never_extractable)]);
        }
    }

    fn check_class_rules(&mut self) -> Result<()> {
        match self.class() {
            CKO_CERTIFICATE if self.ulong(CKA_CERTIFICATE_TYPE) != Some(CKC_X_509) => {
                Err(Error::AttributeValueInvalid(CKA_CERTIFICATE_TYPE))
            }
            CKO_SECRET_KEY => {
                let len = self.bytes(CKA_VALUE).map_or(0, <[u8]>::len);
                let len_ok = match self.ulong(CKA_KEY_TYPE) {
                    Some(CKK_GENERIC_SECRET | CKK_HKDF) => len > 0,
                    // Keys typed for one HMAC hash.
                    Some(t) if crate::mechanism::hash::HMAC_KEY_TYPES.contains(&t) => len > 0,
                    Some(CKK_AES) => matches!(len, 16 | 24 | 32),
                    _ => return Err(Error::AttributeValueInvalid(CKA_KEY_TYPE)),
                };
                if !len_ok {
                    return Err(Error::AttributeValueInvalid(CKA_VALUE));
                }
                self.attrs.insert(CKA_VALUE_LEN, (len as CK_ULONG).to_ne_bytes().to_vec());
                Ok(())
            }
            CKO_PUBLIC_KEY | CKO_PRIVATE_KEY => match self.ulong(CKA_KEY_TYPE) {
                Some(
                    CKK_EC
                    | CKK_ML_KEM
                    | CKK_ML_DSA
                    | CKK_RSA
                    | CKK_EC_EDWARDS
                    | crate::vendor::CKK_CV_XWING
                    | crate::vendor::CKK_CV_MLKEM768_P256
                    | crate::vendor::CKK_CV_MLKEM1024_P384,
                ) => Ok(()),
                _ => Err(Error::AttributeValueInvalid(CKA_KEY_TYPE)),
            },
            _ => Ok(()),
        }
    }

    /// `CKA_CLASS`.
    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    /// An attribute's value: held, or else its class's default.
    fn value(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        match self.attrs.get(&ty) {
            Some(v) => Some(v.as_slice()),
            None => policy::default_in(self.defaults, ty),
        }
    }

    /// Every attribute and its value, in type order: the held ones and the defaults they
    /// do not replace (what the object would hold with its defaults copied in).
    fn entries(&self) -> Vec<(CK_ATTRIBUTE_TYPE, &[u8])> {
        let mut all: Vec<(CK_ATTRIBUTE_TYPE, &[u8])> = self.attrs.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        let held = all.len();
        all.extend(self.defaults.iter().filter(|(t, _)| !self.attrs.contains_key(t)).map(|(t, v)| (*t, v.as_slice())));
        if all.len() > held {
            all.sort_unstable_by_key(|(t, _)| *t);
        }
        all
    }

    /// Every attribute type the object has (held or a default), in no particular order.
    fn types(&self) -> impl Iterator<Item = CK_ATTRIBUTE_TYPE> + '_ {
        let defaults = self.defaults.iter().map(|(t, _)| *t).filter(|t| !self.attrs.contains_key(t));
        self.attrs.keys().copied().chain(defaults)
    }

    /// A boolean attribute; false when absent.
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.value(ty) == Some(&[CK_TRUE][..])
    }

    /// A `CK_ULONG` attribute, if present and well formed.
    pub fn ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.value(ty).and_then(|v| decode_ulong(ty, v).ok())
    }

    /// Raw attribute bytes, if present. Inside the token only: API reads go through [`Object::read`].
    pub fn bytes(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.value(ty)
    }

    /// Whether `CKA_ALLOWED_MECHANISMS` (absent or empty: any) lets the key run `mechanism`.
    pub fn allows(&self, mechanism: CK_MECHANISM_TYPE) -> bool {
        self.bytes(CKA_ALLOWED_MECHANISMS)
            .filter(|a| !a.is_empty())
            .is_none_or(|a| a.chunks_exact(8).any(|m| m == mechanism.to_ne_bytes()))
    }

    /// `CKA_TOKEN`.
    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN)
    }

    /// `CKA_PRIVATE`.
    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    fn row(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&'static Row> {
        policy::lookup(self.class, ty)
    }

    /// Whether the attribute is kept sealed at rest: key material, and the value of a
    /// private data object.
    fn is_sealed(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.row(ty).is_some_and(|r| r.rules.has(Rules::SECRET)) || (ty == CKA_VALUE && self.is_private())
    }

    /// Whether the attribute is key material (a secret key's value, a private key's
    /// components): reading its plaintext is audited.
    pub fn is_key_material(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.row(ty).is_some_and(|r| r.rules.has(Rules::SECRET))
    }

    fn reveals(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        let secret = self.row(ty).is_some_and(|r| r.rules.has(Rules::SECRET));
        let guarded = secret && (self.flag(CKA_SENSITIVE) || !self.flag(CKA_EXTRACTABLE));
        let closed = self.locked && self.is_sealed(ty);
        !(guarded || closed)
    }

    /// `C_GetAttributeValue` for one attribute, under the spec's sensitivity rules.
    pub fn read(&self, ty: CK_ATTRIBUTE_TYPE) -> Read<'_> {
        match self.value(ty) {
            None if self.locked && self.is_sealed(ty) => Read::Sensitive,
            None => Read::Invalid,
            Some(_) if !self.reveals(ty) => Read::Sensitive,
            Some(v) => Read::Value(v),
        }
    }

    /// Whether the object matches every attribute of a find template. Attributes the
    /// caller could not read never match, so a find is no oracle for secret values.
    pub fn matches(&self, template: &Template) -> bool {
        template.0.iter().all(|a| matches!(self.read(a.ty), Read::Value(v) if v == a.value.as_slice()))
    }

    /// `C_GetObjectSize`: the bytes the object's attributes take.
    pub fn size(&self) -> usize {
        self.entries().iter().map(|(_, v)| v.len() + 12).sum()
    }

    /// Checks one attribute change against the policy. `copying` allows the attributes
    /// the spec lets `C_CopyObject` change.
    fn check_change(&self, a: &Attr, copying: bool) -> Result<()> {
        let row = self.row(a.ty).ok_or(Error::AttributeTypeInvalid(a.ty))?;
        check_kind(row, &a.value)?;
        let r = row.rules;
        let fixed = r.has(Rules::FIXED) && !(copying && r.has(Rules::CHANGE_ON_COPY));
        if r.has(Rules::TOKEN_SET) || r.has(Rules::DERIVED) || fixed {
            return Err(Error::AttributeReadOnly(a.ty));
        }
        let now = self.flag(a.ty);
        let new = a.value.as_slice() == [CK_TRUE];
        if (r.has(Rules::ONLY_TO_TRUE) && now && !new) || (r.has(Rules::ONLY_TO_FALSE) && !now && new) {
            return Err(Error::AttributeReadOnly(a.ty));
        }
        Ok(())
    }

    fn apply(&mut self, template: &Template, copying: bool) -> Result<()> {
        template.check_unique()?;
        for a in &template.0 {
            self.check_change(a, copying)?;
        }
        for a in &template.0 {
            self.put(a.ty, a.value.clone());
        }
        Ok(())
    }

    /// `C_SetAttributeValue`: all changes or none.
    pub fn set(&mut self, template: &Template) -> Result<()> {
        if !self.flag(CKA_MODIFIABLE) {
            return Err(Error::ActionProhibited);
        }
        let mut changed = self.clone();
        changed.apply(template, false)?;
        *self = changed;
        Ok(())
    }

    /// `C_CopyObject`: a new object with a fresh `CKA_UNIQUE_ID` and the template applied.
    pub fn copy(&self, template: &Template) -> Result<Object> {
        if !self.flag(CKA_COPYABLE) {
            return Err(Error::ActionProhibited);
        }
        if self.locked {
            return Err(Error::UserNotLoggedIn);
        }
        let mut copy = self.clone();
        copy.apply(template, true)?;
        copy.attrs.insert(CKA_UNIQUE_ID, unique_id()?);
        Ok(copy)
    }

    /// The stored row's generation this object was read at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Moves a changed object to its row's next generation, before it is stored.
    pub fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// `CKA_UNIQUE_ID` as text.
    pub fn unique_id(&self) -> String {
        String::from_utf8_lossy(self.bytes(CKA_UNIQUE_ID).unwrap_or_default()).into_owned()
    }

    /// The nested template an attribute-array attribute holds, if the object has one.
    pub fn nested(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<Template>> {
        self.bytes(ty).filter(|v| !v.is_empty()).map(|v| Template::decode_nested(ty, v)).transpose()
    }

    /// A short name for logs and audit entries: unique id and label, never values.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.describe_into(&mut out);
        out
    }

    /// [`Object::describe`] appended to `out` (one buffer for an entry naming two objects).
    pub fn describe_into(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(&String::from_utf8_lossy(self.bytes(CKA_UNIQUE_ID).unwrap_or_default()));
        out.push(' ');
        let label = String::from_utf8_lossy(self.bytes(CKA_LABEL).unwrap_or_default());
        if label.bytes().all(|b| b == b' ' || (b.is_ascii_graphic() && b != b'"' && b != b'\\')) {
            // What `{:?}` writes for such a label, without the formatting machinery
            // (every session key made and destroyed is described).
            out.push('"');
            out.push_str(&label);
            out.push('"');
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "{label:?}");
        }
    }

    /// Sets an attribute the token computes (a normalized key encoding on import, say),
    /// bypassing the template rules; inside the token only.
    pub fn set_computed(&mut self, attr: Attr) {
        self.prepared = Prepared::default();
        self.put(attr.ty, attr.value.clone());
    }

    /// The attributes of this key that a wrap record or a sealed row binds ([`BOUND`]).
    pub fn bound_attributes(&self) -> Template {
        Template(BOUND.iter().filter_map(|ty| self.bytes(*ty).map(|v| Attr::new(*ty, v.to_vec()))).collect())
    }

    /// What mechanisms prepared from this object's value.
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// Key material for use inside the token (mechanisms), zeroized when dropped.
    pub fn secret_value(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.bytes(CKA_VALUE).filter(|_| self.is_sealed(CKA_VALUE)).map(|v| Zeroizing::new(v.to_vec()))
    }
}

impl AttrSource for Object {
    fn attr(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.bytes(ty)
    }

    fn attr_ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        self.bytes(ty).map(|v| decode_ulong(ty, v)).transpose()
    }
}

impl KeyView for Object {
    fn secret(&self) -> Result<Zeroizing<Vec<u8>>> {
        // Absent while the store is locked: a login is missing.
        self.secret_value().ok_or(Error::UserNotLoggedIn)
    }

    fn prepared(&self) -> &Prepared {
        &self.prepared
    }
}

impl AttrSource for Template {
    fn attr(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.get(ty)
    }

    fn attr_ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        self.ulong(ty)
    }
}

impl From<crate::mechanism::registry::NewAttr> for Attr {
    fn from(a: crate::mechanism::registry::NewAttr) -> Attr {
        Attr::new(a.ty, a.value.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AES-256 key template (value 0x11 bytes) with `extra` attributes after it.
    pub(super) fn aes_key(extra: Vec<Attr>) -> Template {
        let mut t = vec![
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attr::ulong(CKA_KEY_TYPE, CKK_AES),
            Attr::new(CKA_VALUE, vec![0x11; 32]),
        ];
        t.extend(extra);
        Template(t)
    }

    fn data(extra: Vec<Attr>) -> Template {
        let mut t = vec![Attr::ulong(CKA_CLASS, CKO_DATA), Attr::new(CKA_VALUE, "hello")];
        t.extend(extra);
        Template(t)
    }

    #[test]
    fn a_data_object_gets_the_spec_defaults() {
        let o = Object::create(&data(vec![])).expect("create");
        assert!(!o.is_token() && !o.is_private() && o.flag(CKA_MODIFIABLE));
        assert_eq!(o.read(CKA_LABEL), Read::Value(b""));
        assert_eq!(o.read(CKA_VALUE), Read::Value(b"hello"));
        assert!(matches!(o.read(CKA_UNIQUE_ID), Read::Value(v) if v.len() == 32));
    }

    #[test]
    fn a_description_quotes_the_label_as_debug_does() {
        for label in ["", "plain label", "quote\"d", "back\\slash", "tab\there", "é", "new\nline"] {
            let o = Object::create(&data(vec![Attr::new(CKA_LABEL, label)])).expect("create");
            assert_eq!(o.describe(), format!("{} {:?}", o.unique_id(), label));
        }
        let o = Object::create(&data(vec![Attr::new(CKA_LABEL, vec![0xff, b'a'])])).expect("create");
        assert_eq!(o.describe(), format!("{} {:?}", o.unique_id(), "\u{fffd}a"));
    }

    #[test]
    fn a_template_without_class_is_incomplete() {
        let t = Template(vec![Attr::new(CKA_LABEL, "x")]);
        assert_eq!(Object::create(&t).unwrap_err(), Error::TemplateIncomplete(CKA_CLASS));
    }

    #[test]
    fn attributes_of_another_class_are_invalid() {
        let t = data(vec![Attr::ulong(CKA_KEY_TYPE, CKK_AES)]);
        assert_eq!(Object::create(&t).unwrap_err(), Error::AttributeTypeInvalid(CKA_KEY_TYPE));
    }

    #[test]
    fn token_set_attributes_are_read_only_in_a_template() {
        let t = aes_key(vec![Attr::bool(CKA_LOCAL, true)]);
        assert_eq!(Object::create(&t).unwrap_err(), Error::AttributeReadOnly(CKA_LOCAL));
    }

    #[test]
    fn value_len_on_import_is_inconsistent() {
        let t = aes_key(vec![Attr::ulong(CKA_VALUE_LEN, 32)]);
        assert_eq!(Object::create(&t).unwrap_err(), Error::TemplateInconsistent(CKA_VALUE_LEN));
    }

    #[test]
    fn an_aes_key_of_a_wrong_length_is_refused() {
        let t = Template(vec![
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attr::ulong(CKA_KEY_TYPE, CKK_AES),
            Attr::new(CKA_VALUE, vec![1; 17]),
        ]);
        assert_eq!(Object::create(&t).unwrap_err(), Error::AttributeValueInvalid(CKA_VALUE));
    }

    #[test]
    fn a_sensitive_key_value_is_never_read() {
        let o = Object::create(&aes_key(vec![])).expect("create");
        assert!(o.is_private(), "keys default to private");
        assert_eq!(o.read(CKA_VALUE), Read::Sensitive);
        assert_eq!(o.read(CKA_VALUE_LEN), Read::Value(&32u64.to_ne_bytes()));
    }

    #[test]
    fn an_unextractable_key_value_is_never_read_even_if_not_sensitive() {
        let o = Object::create(&aes_key(vec![Attr::bool(CKA_SENSITIVE, false)])).expect("create");
        assert_eq!(o.read(CKA_VALUE), Read::Sensitive);
        let o = Object::create(&aes_key(vec![Attr::bool(CKA_SENSITIVE, false), Attr::bool(CKA_EXTRACTABLE, true)]))
            .expect("create");
        assert_eq!(o.read(CKA_VALUE), Read::Value(&[0x11; 32]));
    }

    #[test]
    fn sensitive_only_turns_on_and_extractable_only_turns_off() {
        let mut o = Object::create(&aes_key(vec![Attr::bool(CKA_EXTRACTABLE, true)])).expect("create");
        let err = o.set(&Template(vec![Attr::bool(CKA_SENSITIVE, false)])).unwrap_err();
        assert_eq!(err, Error::AttributeReadOnly(CKA_SENSITIVE));
        o.set(&Template(vec![Attr::bool(CKA_EXTRACTABLE, false)])).expect("to false");
        let err = o.set(&Template(vec![Attr::bool(CKA_EXTRACTABLE, true)])).unwrap_err();
        assert_eq!(err, Error::AttributeReadOnly(CKA_EXTRACTABLE));
    }

    #[test]
    fn a_set_is_all_or_nothing() {
        let mut o = Object::create(&data(vec![])).expect("create");
        let t = Template(vec![Attr::new(CKA_LABEL, "new"), Attr::bool(CKA_TOKEN, true)]);
        assert_eq!(o.set(&t).unwrap_err(), Error::AttributeReadOnly(CKA_TOKEN));
        assert_eq!(o.read(CKA_LABEL), Read::Value(b""));
    }

    #[test]
    fn an_unmodifiable_object_refuses_set_but_copy_may_change_token() {
        let o = Object::create(&data(vec![Attr::bool(CKA_MODIFIABLE, false)])).expect("create");
        assert_eq!(o.clone().set(&Template(vec![Attr::new(CKA_LABEL, "x")])).unwrap_err(), Error::ActionProhibited);
        let c = o.copy(&Template(vec![Attr::bool(CKA_TOKEN, true)])).expect("copy");
        assert!(c.is_token());
        assert_ne!(c.read(CKA_UNIQUE_ID), o.read(CKA_UNIQUE_ID));
    }

    #[test]
    fn an_uncopyable_object_refuses_copy() {
        let o = Object::create(&data(vec![Attr::bool(CKA_COPYABLE, false)])).expect("create");
        assert_eq!(o.copy(&Template::default()).unwrap_err(), Error::ActionProhibited);
    }

    #[test]
    fn find_never_matches_on_a_secret_value() {
        let o = Object::create(&aes_key(vec![])).expect("create");
        assert!(!o.matches(&Template(vec![Attr::new(CKA_VALUE, vec![0x11; 32])])));
        assert!(o.matches(&Template(vec![Attr::ulong(CKA_KEY_TYPE, CKK_AES)])));
    }
}
