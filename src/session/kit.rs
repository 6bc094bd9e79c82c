//! Recovery kit export through the C ABI: `C_WrapKey(CKM_CV_EXPORT_KIT)` seals every
//! master key version that still unwraps under the caller's kit key (`doc/recovery.md`).
//!
//! Master keys are never extractable; this is the one door through which they leave the
//! module, and only sealed: under an AES-256 key the caller holds (derived by `cvault`
//! from an administrator's passphrase and a second factor), bound to the workspace and
//! the kit id, as the KEYS section of a kit. Only the user may use it, and with a quorum
//! only while unlocked and with an approved `export-kit` request; every export is a
//! durable audit entry naming the kit id and the versions, never a key byte.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::key::KeyRole;
use super::output::{sized, Output};
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::KeyView;
use crate::recovery::kit;
use crate::store::PinOwner;
use crate::vendor::CKM_CV_EXPORT_KIT;

/// Length of the KEYS section for `versions` versions: nonce, count, entries, tag.
fn sealed_len(versions: usize) -> usize {
    12 + 2 + versions * 48 + 16
}

/// `C_WrapKey` with `CKM_CV_EXPORT_KIT`: `wrapping` is the kit key, `key` the current
/// master key object, `kit_id` the parameter.
pub fn export(
    ctx: &Ctx,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    kit_id: &[u8],
    capacity: Option<usize>,
) -> Result<Output> {
    if ctx.token.logged_in() != Some(PinOwner::User) {
        return Err(Error::UserNotLoggedIn);
    }
    // The whole hierarchy, named by the current master key object, not one version.
    if ctx.master_handle(key, Error::KeyHandleInvalid, Error::KeyNotWrappable)?.is_some() {
        return Err(Error::KeyNotWrappable);
    }
    let row = crate::mechanism::registry::row(CKM_CV_EXPORT_KIT)?;
    let kit_key = ctx.operation_key(wrapping, row, KeyRole::Wrap)?;
    let value = kit_key.secret()?;
    let enc: &[u8; 32] = value.as_slice().try_into().map_err(|_| Error::WrappingKeySizeRange)?;
    let hierarchy = ctx.token.hierarchy()?;
    if let Some(answer) = sized(sealed_len(hierarchy.exportable()?), capacity) {
        return answer;
    }
    let entries = hierarchy
        .export_keys(ctx.caller())?
        .into_iter()
        .map(|(m, key)| {
            let kcv = crate::mechanism::primitives::aes_check_value(key.as_ref())?;
            Ok(kit::KitVersion { version: m.version, state: m.state, created: m.created_at, kcv, key })
        })
        .collect::<Result<Vec<_>>>()?;
    let sealed = kit::seal_keys(enc, &ctx.token.workspace, kit_id, &entries)?;
    let versions: Vec<String> = entries.iter().map(|e| format!("v{}", e.version)).collect();
    ctx.audit(
        "C_WrapKey",
        format!("recovery kit {}: wmk {} sealed under {}", hex::encode(kit_id), versions.join(","), kit_key.describe()),
    )?;
    log::info!("{}: recovery kit {} exported ({})", ctx.token.workspace, hex::encode(kit_id), versions.join(","));
    Ok(Output::Data(Zeroizing::new(sealed)))
}
