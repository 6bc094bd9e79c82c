//! Signing, MACing and verification (PKCS#11 3.2 §5.11, §5.13).

use cryptoki_sys::*;

use super::shims::{in_only, in_out, init_with_key, out_only};
use crate::ffi::args::bytes;
use crate::ffi::guard_session;
use crate::session::sign;
use crate::session::OpKind;

init_with_key!(C_SignInit, OpKind::Sign, sign::sign_init);
in_out!(C_Sign, sign::sign);
in_only!(C_SignUpdate, sign::sign_update);
out_only!(C_SignFinal, sign::sign_final);
init_with_key!(C_VerifyInit, OpKind::Verify, sign::verify_init);
in_only!(C_VerifyUpdate, sign::verify_update);

/// `C_Verify` (§5.13.2).
///
/// # Safety
/// `data` and `signature` point to `data_len` and `signature_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_Verify", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (data, signature) = unsafe { (bytes(data, data_len)?, bytes(signature, signature_len)?) };
        sign::verify(ctx, data, signature)
    })
}

/// `C_VerifyFinal` (§5.13.4).
///
/// # Safety
/// `signature` points to `signature_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_VerifyFinal", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let signature = unsafe { bytes(signature, signature_len) }?;
        sign::verify_final(ctx, signature)
    })
}
