//! Key derivation through a session (spec §5.18): the mechanism's registry row derives the
//! bytes (of one key, or of several for the SP 800-108 KDFs) from the base key (and, for `CKM_CONCATENATE_BASE_AND_KEY` or an HKDF salt key,
//! a second key fetched under the same checks), and the new key gets the base key's
//! `CKA_DERIVE_TEMPLATE` and the sensitivity history of every key it came from.

use cryptoki_sys::*;

use super::key::{derived_type, imposed, secret_attrs, value_len, KeyRole};
use super::Ctx;
use crate::error::{Error, Internal, Result};
use crate::mechanism::{registry, Mechanism};
use crate::object::{Attr, Object, Origin, Template};

/// `C_DeriveKey`.
pub fn derive_key(ctx: &Ctx, m: &Mechanism, base: CK_OBJECT_HANDLE, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    let handles = derive_keys(ctx, m, base, template, &[])?;
    handles.first().copied().ok_or(Error::Internal(Internal::DerivedLength))
}

/// `C_DeriveKey` with the additional keys an SP 800-108 parameter asks for: the handles
/// of the primary key and then of each additional key, in order. Either every key is
/// made or none is (a key already added when a later one fails is destroyed again).
pub fn derive_keys(
    ctx: &Ctx,
    m: &Mechanism,
    base: CK_OBJECT_HANDLE,
    template: &Template,
    additional: &[Template],
) -> Result<Vec<CK_OBJECT_HANDLE>> {
    let row = registry::row(m.ty())?;
    // The mechanism is checked before any key (the module's order of checks).
    if row.ops.derive.is_none() && row.ops.derive_with.is_none() && row.ops.derive_keys.is_none() {
        return Err(Error::MechanismInvalid);
    }
    if !additional.is_empty() && row.ops.derive_keys.is_none() {
        return Err(Error::MechanismParamInvalid);
    }
    let base = ctx.operation_key(base, row, KeyRole::Derive)?;
    // The second key's bits go into the new key as the base key's do, so it answers to
    // the same class, type, CKA_DERIVE and allowed-mechanism checks.
    let other = m.second_key().map(|h| ctx.operation_key(h, row, KeyRole::Derive)).transpose()?;
    if m.makes_data() {
        return derive_data(ctx, m, row, &base, other.as_deref(), template).map(|h| vec![h]);
    }
    let sources: Vec<&Object> = std::iter::once(&*base).chain(other.as_deref()).collect();
    // Every new key answers to the base key's CKA_DERIVE_TEMPLATE.
    let templates = std::iter::once(template)
        .chain(additional)
        .map(|t| {
            let t = imposed(&base, CKA_DERIVE_TEMPLATE, t)?;
            Ok(if m.copies_key_bits() { inherit_protection(&t, &sources) } else { t })
        })
        .collect::<Result<Vec<Template>>>()?;
    let values = match (row.ops.derive_keys, &other) {
        (Some(many), _) => many(m, &*base, &lengths(&templates)?)?,
        (None, Some(other)) => vec![row.op(|o| o.derive_with)?(m, &*base, &**other, value_len(template)?)?],
        (None, None) => vec![row.op(|o| o.derive)?(m, &*base, value_len(template)?)?],
    };
    if values.len() != templates.len() {
        return Err(Error::Internal(Internal::DerivedLength));
    }
    let origin = Origin::Derived {
        always_sensitive: sources.iter().all(|k| k.flag(CKA_ALWAYS_SENSITIVE)),
        never_extractable: sources.iter().all(|k| k.flag(CKA_NEVER_EXTRACTABLE)),
    };
    // Every object is checked before any is added.
    let keys = templates
        .into_iter()
        .zip(&values)
        .map(|(t, v)| {
            let key_type = derived_type(&t)?;
            Object::made(t, origin, secret_attrs(key_type, v))
        })
        .collect::<Result<Vec<Object>>>()?;
    let mut handles = Vec::with_capacity(keys.len());
    for key in keys {
        match ctx.add_from(key, "C_DeriveKey", "from", &base) {
            Ok(h) => handles.push(h),
            Err(e) => {
                for h in handles {
                    // Best effort: the call fails with the first error either way.
                    let _ = super::objects::destroy(ctx, h);
                }
                return Err(e);
            }
        }
    }
    Ok(handles)
}

/// A derivation into a data object (`CKM_HKDF_DATA`, PKCS#11 3.0 §2.43): the bytes become
/// its `CKA_VALUE`; `CKA_VALUE_LEN` says how many and is not kept (a data object has
/// none). The object is private unless the template says otherwise, as it holds derived
/// material. A base key that carries a `CKA_DERIVE_TEMPLATE` derives no data
/// (`CKR_TEMPLATE_INCONSISTENT`): what it derives must answer to that template, which a
/// data object cannot.
fn derive_data(
    ctx: &Ctx,
    m: &Mechanism,
    row: &registry::MechEntry,
    base: &Object,
    other: Option<&Object>,
    template: &Template,
) -> Result<CK_OBJECT_HANDLE> {
    if base.nested(CKA_DERIVE_TEMPLATE)?.is_some() {
        return Err(Error::TemplateInconsistent(CKA_DERIVE_TEMPLATE));
    }
    if template.ulong(CKA_CLASS)?.is_some_and(|c| c != CKO_DATA) {
        return Err(Error::TemplateInconsistent(CKA_CLASS));
    }
    let len = value_len(template)?.ok_or(Error::TemplateIncomplete(CKA_VALUE_LEN))?;
    let mut t = template.clone();
    t.0.retain(|a| a.ty != CKA_VALUE_LEN && a.ty != CKA_CLASS);
    if t.0.iter().all(|a| a.ty != CKA_PRIVATE) {
        t.0.push(Attr::bool(CKA_PRIVATE, true));
    }
    let value = match other {
        Some(other) => row.op(|o| o.derive_with)?(m, base, other, Some(len))?,
        None => row.op(|o| o.derive)?(m, base, Some(len))?,
    };
    let origin = Origin::Derived {
        always_sensitive: base.flag(CKA_ALWAYS_SENSITIVE),
        never_extractable: base.flag(CKA_NEVER_EXTRACTABLE),
    };
    let object = Object::new(&t, origin, &[Attr::ulong(CKA_CLASS, CKO_DATA), Attr::new(CKA_VALUE, value.to_vec())])?;
    ctx.add_from(object, "C_DeriveKey", "from", base)
}

/// The length of each key a multi-key derivation makes: its `CKA_VALUE_LEN`, which
/// these mechanisms cannot guess (`CKR_TEMPLATE_INCOMPLETE` without it).
fn lengths(templates: &[Template]) -> Result<Vec<usize>> {
    templates.iter().map(|t| value_len(t)?.ok_or(Error::TemplateIncomplete(CKA_VALUE_LEN))).collect()
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
