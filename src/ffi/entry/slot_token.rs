//! Slot and token management (PKCS#11 3.2 §5.5).

use cryptoki_sys::*;

use crate::error::Error;
use crate::ffi::args::{bytes, out, write_list};
use crate::ffi::{guard, guard_session};
use crate::{module, session};

/// `C_GetSlotList` (§5.5.1).
///
/// # Safety
/// `count` is NULL or valid for reads and writes; a non-NULL `list` has room for `*count`.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(token_present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) -> CK_RV {
    guard("C_GetSlotList", || {
        let slots = module::slot_list(token_present != CK_FALSE)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { write_list(list, count, &slots) }
    })
}

/// `C_GetSlotInfo` (§5.5.2).
///
/// # Safety
/// `info` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || {
        let value = module::slot_info(slot)?;
        // SAFETY: the caller passes NULL or a writable CK_SLOT_INFO.
        *unsafe { out(info) }? = value;
        Ok(())
    })
}

/// `C_GetTokenInfo` (§5.5.3).
///
/// # Safety
/// `info` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || {
        let value = module::token_info(slot)?;
        // SAFETY: the caller passes NULL or a writable CK_TOKEN_INFO.
        *unsafe { out(info) }? = value;
        Ok(())
    })
}

/// `C_WaitForSlotEvent` (§5.5.4): slots never change, so there is never an event.
#[no_mangle]
pub extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    _slot: *mut CK_SLOT_ID,
    _reserved: *mut std::os::raw::c_void,
) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        module::get()?;
        if flags & CKF_DONT_BLOCK != 0 {
            return Err(Error::NoEvent);
        }
        Err(Error::FunctionNotSupported)
    })
}

/// `C_GetMechanismList` (§5.5.5).
///
/// # Safety
/// `count` is NULL or valid for reads and writes; a non-NULL `list` has room for `*count`.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        let mechanisms = module::mechanism_list(slot)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { write_list(list, count, &mechanisms) }
    })
}

/// `C_GetMechanismInfo` (§5.5.6).
///
/// # Safety
/// `info` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    ty: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        let value = module::mechanism_info(slot, ty)?;
        // SAFETY: the caller passes NULL or a writable CK_MECHANISM_INFO.
        *unsafe { out(info) }? = value;
        Ok(())
    })
}

/// `C_InitToken` (§5.5.7): `label` is 32 space-padded bytes.
///
/// # Safety
/// `pin` points to `pin_len` bytes; `label` is NULL or points to 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    slot: CK_SLOT_ID,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard("C_InitToken", || {
        // SAFETY: the caller passes a PIN of `pin_len` bytes.
        let pin = unsafe { bytes(pin, pin_len) }?;
        // SAFETY: the caller passes NULL or 32 readable bytes.
        let label = unsafe { label.cast::<[u8; 32]>().as_ref() }.ok_or(Error::ArgumentsBad("NULL label"))?;
        if pin.is_empty() {
            return Err(Error::ArgumentsBad("no PIN (there is no protected authentication path)"));
        }
        module::init_token(slot, pin, label)
    })
}

/// `C_InitPIN` (§5.5.8).
///
/// # Safety
/// `pin` points to `pin_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(session: CK_SESSION_HANDLE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG) -> CK_RV {
    guard_session("C_InitPIN", session, |ctx| {
        // SAFETY: the caller passes a PIN of `pin_len` bytes.
        let pin = unsafe { bytes(pin, pin_len) }?;
        session::init_pin(ctx, pin)
    })
}

/// `C_SetPIN` (§5.5.9).
///
/// # Safety
/// `old` and `new` point to `old_len` and `new_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    session: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_SetPIN", session, |ctx| {
        // SAFETY: the caller passes PINs of the given lengths.
        let (old, new) = unsafe { (bytes(old, old_len)?, bytes(new, new_len)?) };
        session::set_pin(ctx, old, new)
    })
}
