//! Key derivation through a session (spec §5.18): the mechanism's registry row derives the
//! bytes from the base key, and the new key gets the base key's `CKA_DERIVE_TEMPLATE` and
//! its sensitivity history.

use cryptoki_sys::*;

use super::key::{derived_origin, derived_type, imposed, secret_attrs, value_len, KeyRole};
use super::Ctx;
use crate::error::Result;
use crate::mechanism::{registry, Mechanism};
use crate::object::{Object, Template};

/// `C_DeriveKey`.
pub fn derive_key(ctx: &Ctx, m: &Mechanism, base: CK_OBJECT_HANDLE, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    let row = registry::row(m.ty())?;
    let derive = row.op(|o| o.derive)?;
    let base = ctx.operation_key(base, row, KeyRole::Derive)?;
    let template = &imposed(&base, CKA_DERIVE_TEMPLATE, template)?;
    let key_type = derived_type(template)?;
    let value = derive(m, &*base, value_len(template)?)?;
    let key = Object::new(template, derived_origin(&base), &secret_attrs(key_type, &value))?;
    ctx.add_from(key, "C_DeriveKey", "from", &base)
}
