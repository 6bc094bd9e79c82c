//! Key wrapping through a session (spec §5.18 `C_WrapKey`, `C_UnwrapKey`): a secret key's
//! value under the mechanism's wrapping key, and a new secret key from a wrapped value.
//!
//! Every wrap path answers to the one wrap policy (`object::usage::check_wrap`); the
//! mechanism's registry row does the cryptography, and the vendor record mechanism runs
//! in the hierarchy. PKCS#1 v1.5 key transport is off unless configured, and its unwrap
//! uses implicit rejection: no answer depends on whether the padding was valid.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::key::{imposed, secret_attrs, value_len, KeyRole};
use super::output::{sized, Output};
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::registry::{self, UnwrapTarget};
use crate::mechanism::{KeyView, Mechanism};
use crate::object::{Object, Origin, Template};

/// PKCS#1 v1.5 key transport is refused unless the config allows it
/// (`[mechanisms] allow_rsa_pkcs1_v15_key_transport`): OAEP is the default.
fn check_transport_allowed(ctx: &Ctx, m: &Mechanism, call: &str) -> Result<()> {
    if *m == Mechanism::RsaPkcs && !ctx.app.mechanisms.allow_rsa_pkcs1_v15_key_transport {
        log::warn!(
            "{call} with CKM_RSA_PKCS refused: PKCS#1 v1.5 key transport is off \
             ([mechanisms] allow_rsa_pkcs1_v15_key_transport); use CKM_RSA_PKCS_OAEP"
        );
        return Err(Error::MechanismInvalid);
    }
    Ok(())
}

/// `C_WrapKey`.
pub fn wrap_key(
    ctx: &Ctx,
    m: &Mechanism,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    capacity: Option<usize>,
) -> Result<Output> {
    if *m == Mechanism::CvWrapRecord {
        return super::records::wrap(ctx, wrapping, key, &[], capacity);
    }
    if *m == Mechanism::CvShareRecord {
        return super::records::share(ctx, wrapping, key, &[], capacity);
    }
    if let Mechanism::CvExportKit(kit_id) = m {
        return super::kit::export(ctx, wrapping, key, kit_id, capacity);
    }
    let row = registry::row(m.ty())?;
    let wrap = row.op(|o| o.wrap)?;
    check_transport_allowed(ctx, m, "C_WrapKey")?;
    let kek = ctx.operation_key(wrapping, row, KeyRole::Wrap)?;
    let target = ctx.target_key(key)?;
    crate::object::usage::check_wrap(&kek, m.ty(), &target)?;
    let value = target.secret()?;
    let needed = (wrap.wrapped_len)(m, &*kek, value.len())?;
    if let Some(answer) = sized(needed, capacity) {
        return answer;
    }
    // A key the mechanism cannot carry is the key's fault, not the data's.
    let wrapped = (wrap.wrap)(m, &*kek, &value).map_err(|e| match e {
        Error::DataLenRange => Error::KeySizeRange,
        other => other,
    })?;
    ctx.audit("C_WrapKey", format!("{} under {}", target.describe(), kek.describe()))?;
    Ok(Output::Data(Zeroizing::new(wrapped)))
}

/// `C_UnwrapKey`: a new secret key from a wrapped value and `template`.
pub fn unwrap_key(
    ctx: &Ctx,
    m: &Mechanism,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &Template,
) -> Result<CK_OBJECT_HANDLE> {
    if *m == Mechanism::CvWrapRecord {
        return super::records::unwrap(ctx, unwrapping, wrapped, template, &[]);
    }
    if *m == Mechanism::CvShareRecord {
        return super::records::open_share(ctx, unwrapping, wrapped, template, &[]);
    }
    if *m == Mechanism::CvImportMaster {
        return super::byok::import(ctx, unwrapping, wrapped, template);
    }
    let row = registry::row(m.ty())?;
    let wrap = row.op(|o| o.wrap)?;
    check_transport_allowed(ctx, m, "C_UnwrapKey")?;
    let kek = ctx.operation_key(unwrapping, row, KeyRole::Unwrap)?;
    let template = imposed(&kek, CKA_UNWRAP_TEMPLATE, template)?;
    let class = template.ulong(CKA_CLASS)?.ok_or(Error::TemplateIncomplete(CKA_CLASS))?;
    if class != CKO_SECRET_KEY {
        return Err(Error::TemplateInconsistent(CKA_CLASS));
    }
    let key_type = template.ulong(CKA_KEY_TYPE)?.ok_or(Error::TemplateIncomplete(CKA_KEY_TYPE))?;
    let target = UnwrapTarget { key_type, value_len: value_len(&template)? };
    // One answer for every integrity failure: which check failed is nobody's business.
    let value = (wrap.unwrap)(m, &*kek, wrapped, target).map_err(|e| match e {
        Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
        e @ (Error::TemplateInconsistent(_) | Error::UserNotLoggedIn) => e,
        _ => Error::WrappedKeyInvalid,
    })?;
    let key = Object::made(template, Origin::Unwrapped, secret_attrs(key_type, &value))?;
    ctx.add_from(key, "C_UnwrapKey", "under", &kek)
}
