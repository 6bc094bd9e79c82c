//! Message digesting (PKCS#11 3.2 §5.10).

use cryptoki_sys::*;

use super::shims::{in_only, in_out, out_only};
use crate::ffi::{guard_session, params};
use crate::session::{digest, OpKind};

/// `C_DigestInit` (§5.10.1).
///
/// # Safety
/// `mechanism` is NULL or a valid `CK_MECHANISM`.
#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(session: CK_SESSION_HANDLE, mechanism: *mut CK_MECHANISM) -> CK_RV {
    guard_session("C_DigestInit", session, |ctx| {
        ctx.check_idle(OpKind::Digest)?;
        // SAFETY: forwarded from this function's contract.
        let m = unsafe { params::mechanism(mechanism) }?;
        digest::digest_init(ctx, &m)
    })
}

in_out!(C_Digest, digest::digest);
in_only!(C_DigestUpdate, digest::digest_update);
out_only!(C_DigestFinal, digest::digest_final);

/// `C_DigestKey` (§5.10.4).
#[no_mangle]
pub extern "C" fn C_DigestKey(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> CK_RV {
    guard_session("C_DigestKey", session, |ctx| digest::digest_key(ctx, key))
}
