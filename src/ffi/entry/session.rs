//! Session management (PKCS#11 3.2 §5.6).

use std::os::raw::c_void;

use cryptoki_sys::*;

use crate::error::Error;
use crate::ffi::args::{bytes, out};
use crate::ffi::{guard, guard_session};
use crate::session;

/// `C_OpenSession` (§5.6.1). Notification callbacks are accepted and never called.
///
/// # Safety
/// `handle` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    handle: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        // SAFETY: the caller passes NULL or a writable handle.
        let handle = unsafe { out(handle) }?;
        *handle = session::open(&*crate::module::app()?, slot, flags)?;
        Ok(())
    })
}

/// `C_CloseSession` (§5.6.2).
#[no_mangle]
pub extern "C" fn C_CloseSession(handle: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_CloseSession", handle, session::close)
}

/// `C_CloseAllSessions` (§5.6.3).
#[no_mangle]
pub extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || session::close_all(&*crate::module::app()?, slot))
}

/// `C_GetSessionInfo` (§5.6.4).
///
/// # Safety
/// `info` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(handle: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard_session("C_GetSessionInfo", handle, |ctx| {
        let value = session::info(ctx)?;
        // SAFETY: the caller passes NULL or a writable CK_SESSION_INFO.
        *unsafe { out(info) }? = value;
        Ok(())
    })
}

/// `C_Login` (§5.6.9).
///
/// # Safety
/// `pin` points to `pin_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    handle: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_Login", handle, |ctx| {
        // SAFETY: the caller passes a PIN of `pin_len` bytes.
        let pin = unsafe { bytes(pin, pin_len) }?;
        session::login(ctx, user, pin)
    })
}

/// `C_LoginUser` (3.0 §5.6.10): `CKU_SO`/`CKU_USER` as `C_Login` (this token names no
/// users), and the vendor `CKU_CV_CUSTODIAN`, whose login approves a quorum request.
///
/// # Safety
/// `pin` points to `pin_len` bytes and `username` to `username_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_LoginUser(
    handle: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    username: *mut CK_UTF8CHAR,
    username_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_LoginUser", handle, |ctx| {
        // SAFETY: the caller passes a PIN of `pin_len` bytes.
        let pin = unsafe { bytes(pin, pin_len) }?;
        // SAFETY: the caller passes a username of `username_len` bytes.
        let username = unsafe { bytes(username, username_len) }?;
        session::quorum::login_user(ctx, user, pin, username)
    })
}

/// `C_Logout` (§5.6.11).
#[no_mangle]
pub extern "C" fn C_Logout(handle: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_Logout", handle, session::logout)
}

/// `C_GetFunctionStatus` (§5.20): a legacy function; the spec's answer is fixed.
#[no_mangle]
pub extern "C" fn C_GetFunctionStatus(handle: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_GetFunctionStatus", handle, |_| Err(Error::FunctionNotParallel))
}

/// `C_CancelFunction` (§5.20): a legacy function; the spec's answer is fixed.
#[no_mangle]
pub extern "C" fn C_CancelFunction(handle: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_CancelFunction", handle, |_| Err(Error::FunctionNotParallel))
}
