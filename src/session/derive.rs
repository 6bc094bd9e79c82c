//! Key derivation through a session (spec §5.18): the mechanism's registry row derives the
//! bytes from the base key (and, for `CKM_CONCATENATE_BASE_AND_KEY` or an HKDF salt key,
//! a second key fetched under the same checks), and the new key gets the base key's
//! `CKA_DERIVE_TEMPLATE` and the sensitivity history of every key it came from.

use cryptoki_sys::*;

use super::key::{derived_type, imposed, secret_attrs, value_len, KeyRole};
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{registry, Mechanism};
use crate::object::{Attr, Object, Origin, Template};

/// `C_DeriveKey`.
pub fn derive_key(ctx: &Ctx, m: &Mechanism, base: CK_OBJECT_HANDLE, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    let row = registry::row(m.ty())?;
    // The mechanism is checked before any key (the module's order of checks).
    if row.ops.derive.is_none() && row.ops.derive_with.is_none() {
        return Err(Error::MechanismInvalid);
    }
    let base = ctx.operation_key(base, row, KeyRole::Derive)?;
    // The second key's bits go into the new key as the base key's do, so it answers to
    // the same class, type, CKA_DERIVE and allowed-mechanism checks.
    let other = m.second_key().map(|h| ctx.operation_key(h, row, KeyRole::Derive)).transpose()?;
    let template = &imposed(&base, CKA_DERIVE_TEMPLATE, template)?;
    let sources: Vec<&Object> = std::iter::once(&*base).chain(other.as_deref()).collect();
    let template = &if m.copies_key_bits() { inherit_protection(template, &sources) } else { template.clone() };
    let key_type = derived_type(template)?;
    let len = value_len(template)?;
    let value = match &other {
        Some(other) => row.op(|o| o.derive_with)?(m, &*base, &**other, len)?,
        None => row.op(|o| o.derive)?(m, &*base, len)?,
    };
    let origin = Origin::Derived {
        always_sensitive: sources.iter().all(|k| k.flag(CKA_ALWAYS_SENSITIVE)),
        never_extractable: sources.iter().all(|k| k.flag(CKA_NEVER_EXTRACTABLE)),
    };
    let key = Object::new(template, origin, &secret_attrs(key_type, &value))?;
    ctx.add_from(key, "C_DeriveKey", "from", &base)
}

/// For a derivation whose output is its sources' own bits: the new key is sensitive if a
/// source is, and unextractable if a source is (spec §2.40: "if the original key has its
/// CKA_SENSITIVE attribute set to CK_TRUE, so does the derived key", and likewise for
/// CKA_EXTRACTABLE), whatever the template asks.
fn inherit_protection(template: &Template, sources: &[&Object]) -> Template {
    let mut out = template.clone();
    let mut force = |ty: CK_ATTRIBUTE_TYPE, value: bool| {
        out.0.retain(|a| a.ty != ty);
        out.0.push(Attr::bool(ty, value));
    };
    if sources.iter().any(|k| k.flag(CKA_SENSITIVE)) {
        force(CKA_SENSITIVE, true);
    }
    if sources.iter().any(|k| !k.flag(CKA_EXTRACTABLE)) {
        force(CKA_EXTRACTABLE, false);
    }
    out
}
