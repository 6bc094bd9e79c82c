//! BYOK through the C ABI: `C_UnwrapKey(CKM_CV_IMPORT_MASTER)` with an import key makes
//! a customer's key a new master key version (`doc/byok.md`).
//!
//! An import key is an ordinary key pair made on the token (`C_GenerateKeyPair`, RSA of
//! 3072 bits or more, or ML-KEM-768/1024) whose private half can never do anything but
//! imports: `CKA_ALLOWED_MECHANISMS` exactly `{ CKM_CV_IMPORT_MASTER }`, not modifiable
//! and not copyable (so neither can be changed later), and local, always sensitive and
//! never extractable (it was made here and never left). Were the private half able to run
//! `CKM_RSA_PKCS_OAEP`, a user could unwrap a customer's wrapped key into an extractable
//! secret and read a master key past the quorum; the marking is what prevents that.

use cryptoki_sys::*;

use super::key::KeyRole;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::byok::{self, Scheme};
use crate::object::{Object, Template};
use crate::store::PinOwner;
use crate::vendor::CKM_CV_IMPORT_MASTER;

/// `C_UnwrapKey` with `CKM_CV_IMPORT_MASTER`: the new version's master key object.
pub fn import(
    ctx: &Ctx,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &Template,
) -> Result<CK_OBJECT_HANDLE> {
    if ctx.token.logged_in() != Some(PinOwner::User) {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    let row = crate::mechanism::registry::row(CKM_CV_IMPORT_MASTER)?;
    let key = ctx.operation_key(unwrapping, row, KeyRole::Unwrap)?;
    check_import_key(&key)?;
    check_template(template)?;
    let scheme = Scheme::of(&*key)?;
    let value = byok::open(&*key, wrapped)?;
    let hierarchy = ctx.token.hierarchy()?;
    let version = hierarchy.import(ctx.caller(), &ctx.token.classification, &value, scheme.origin())?;
    log::info!(
        "{}: {} imported a key as master key v{version} with {}",
        ctx.token.workspace,
        key.describe(),
        scheme.origin()
    );
    Ok(ctx.app.handles.master_handle(ctx.slot(), Some(version)))
}

/// Refuses a private key that could do more than imports, or that was not made here.
fn check_import_key(key: &Object) -> Result<()> {
    let only_imports = key
        .bytes(CKA_ALLOWED_MECHANISMS)
        .is_some_and(|a| a.len() == 8 && a == CKM_CV_IMPORT_MASTER.to_ne_bytes().as_slice());
    let fixed = !key.flag(CKA_MODIFIABLE) && !key.flag(CKA_COPYABLE);
    let kept = key.flag(CKA_LOCAL) && key.flag(CKA_ALWAYS_SENSITIVE) && key.flag(CKA_NEVER_EXTRACTABLE);
    if only_imports && fixed && kept {
        return Ok(());
    }
    log::warn!(
        "{}: not an import key (CKA_ALLOWED_MECHANISMS exactly CKM_CV_IMPORT_MASTER: {only_imports}; \
         not modifiable or copyable: {fixed}; made here, always sensitive, never extractable: {kept})",
        key.describe()
    );
    Err(Error::KeyFunctionNotPermitted)
}

/// The template may only restate what the new version is: an AES-256 secret token key.
fn check_template(template: &Template) -> Result<()> {
    for a in &template.0 {
        let ok = match a.ty {
            CKA_CLASS => template.ulong(CKA_CLASS)? == Some(CKO_SECRET_KEY),
            CKA_KEY_TYPE => template.ulong(CKA_KEY_TYPE)? == Some(CKK_AES),
            CKA_VALUE_LEN => template.ulong(CKA_VALUE_LEN)? == Some(byok::KEY_LEN as CK_ULONG),
            CKA_TOKEN => template.bool(CKA_TOKEN)? == Some(true),
            _ => false,
        };
        if !ok {
            return Err(Error::TemplateInconsistent(a.ty));
        }
    }
    Ok(())
}
