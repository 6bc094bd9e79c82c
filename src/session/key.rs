//! The keys a session operation runs with, fetched as the mechanism's registry row says,
//! and the pieces every key-making call shares: the template a key imposes on what it
//! makes, the origin of a derived key, the attributes of a new secret key.

use std::sync::Arc;

use cryptoki_sys::*;

use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::registry::{KeyNeed, MechEntry};
use crate::object::{Attr, Object, Origin, Template};

/// What an operation does with its key: the usage attribute it needs, which half of a
/// pair it takes, and the errors a bad handle or key type get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyRole {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Derive,
    Encapsulate,
    Decapsulate,
}

impl KeyRole {
    /// The `CKA_*` usage flag the key must carry.
    fn usage(self) -> CK_ATTRIBUTE_TYPE {
        match self {
            KeyRole::Encrypt => CKA_ENCRYPT,
            KeyRole::Decrypt => CKA_DECRYPT,
            KeyRole::Sign => CKA_SIGN,
            KeyRole::Verify => CKA_VERIFY,
            KeyRole::Wrap => CKA_WRAP,
            KeyRole::Unwrap => CKA_UNWRAP,
            KeyRole::Derive => CKA_DERIVE,
            KeyRole::Encapsulate => CKA_ENCAPSULATE,
            KeyRole::Decapsulate => CKA_DECAPSULATE,
        }
    }

    /// Whether a key pair's public half plays this role.
    fn takes_public_half(self) -> bool {
        matches!(self, KeyRole::Encrypt | KeyRole::Verify | KeyRole::Wrap | KeyRole::Encapsulate)
    }

    /// The errors for a handle that names no key, and for a key of the wrong class or type.
    fn errors(self) -> (Error, Error) {
        match self {
            KeyRole::Wrap => (Error::WrappingKeyHandleInvalid, Error::WrappingKeyTypeInconsistent),
            KeyRole::Unwrap => (Error::UnwrappingKeyHandleInvalid, Error::UnwrappingKeyTypeInconsistent),
            _ => (Error::KeyHandleInvalid, Error::KeyTypeInconsistent),
        }
    }
}

impl Ctx {
    /// The key `handle` names, checked for `row`'s mechanism in `role`: visible, of the
    /// class and type the row needs, carrying the role's usage flag, allowing the
    /// mechanism, and within its usage limits.
    pub(super) fn operation_key(
        &self,
        handle: CK_OBJECT_HANDLE,
        row: &MechEntry,
        role: KeyRole,
    ) -> Result<Arc<Object>> {
        let (invalid, inconsistent) = role.errors();
        let (class, key_types) = match row.key {
            KeyNeed::Secret(types) => (CKO_SECRET_KEY, types),
            KeyNeed::Pair(types) | KeyNeed::Recipient(types) if role.takes_public_half() => (CKO_PUBLIC_KEY, types),
            KeyNeed::Pair(types) | KeyNeed::Recipient(types) => (CKO_PRIVATE_KEY, types),
            KeyNeed::None | KeyNeed::Master => return Err(Error::MechanismInvalid),
        };
        let key = match self.resolve(handle) {
            Ok(r) => r.object(),
            Err(Error::ObjectHandleInvalid) => return Err(invalid),
            Err(e) => return Err(e),
        };
        let type_ok = key.ulong(CKA_KEY_TYPE).is_some_and(|t| key_types.contains(&t));
        if key.class() != class || !type_ok {
            return Err(inconsistent);
        }
        let usage = role.usage();
        if !key.flag(usage) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        if !key.allows(row.ty) {
            return Err(Error::MechanismInvalid);
        }
        crate::object::usage::check_cipher_use(&key, row.ty, usage)?;
        Ok(key)
    }

    /// The key a wrap or digest call takes as its subject (not its mechanism's key).
    pub(super) fn target_key(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        match self.resolve(handle) {
            Ok(r) => Ok(r.object()),
            Err(Error::ObjectHandleInvalid) => Err(Error::KeyHandleInvalid),
            Err(e) => Err(e),
        }
    }
}

/// `CKA_VALUE_LEN` of a template, as a length.
pub(super) fn value_len(template: &Template) -> Result<Option<usize>> {
    template
        .ulong(CKA_VALUE_LEN)?
        .map(|v| usize::try_from(v).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE_LEN)))
        .transpose()
}

/// The attributes the token supplies for a new secret key.
pub(super) fn secret_attrs(key_type: CK_KEY_TYPE, value: &[u8]) -> [Attr; 3] {
    [Attr::ulong(CKA_CLASS, CKO_SECRET_KEY), Attr::ulong(CKA_KEY_TYPE, key_type), Attr::new(CKA_VALUE, value.to_vec())]
}

/// The caller's `template` with the nested template `ty` of `key` imposed: a key that
/// `key` unwraps (`CKA_UNWRAP_TEMPLATE`) or derives, decapsulates or encapsulates
/// (`CKA_DERIVE_TEMPLATE`) gets those attributes, and a caller asking otherwise is
/// refused with `CKR_TEMPLATE_INCONSISTENT`.
pub(super) fn imposed(key: &Object, ty: CK_ATTRIBUTE_TYPE, template: &Template) -> Result<Template> {
    imposed_on(key, ty, template.clone())
}

/// [`imposed`] on a template the caller is done with: returned as it is (not copied)
/// when `key` imposes nothing.
pub(super) fn imposed_on(key: &Object, ty: CK_ATTRIBUTE_TYPE, template: Template) -> Result<Template> {
    let Some(required) = key.nested(ty)? else {
        return Ok(template);
    };
    template.with_required(&required).inspect_err(|e| {
        log::warn!(
            "{}: refused: the new key's template contradicts its {} ({e})",
            key.describe(),
            crate::names::attr_name(ty)
        );
    })
}

/// The origin of a key made from `base`: as sensitive as `base` always was.
pub(super) fn derived_origin(base: &Object) -> Origin {
    Origin::Derived {
        always_sensitive: base.flag(CKA_ALWAYS_SENSITIVE),
        never_extractable: base.flag(CKA_NEVER_EXTRACTABLE),
    }
}

/// The key type a derive or encapsulate template asks for (a generic secret if none).
pub(super) fn derived_type(template: &Template) -> Result<CK_KEY_TYPE> {
    Ok(template.ulong(CKA_KEY_TYPE)?.unwrap_or(CKK_GENERIC_SECRET))
}
