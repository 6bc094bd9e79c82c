//! The client side of one call the `cryptoki` crate does not wrap: `C_LoginUser` (PKCS#11
//! 3.0), which `cvault` needs to log a custodian in. It finds the function in the 3.0
//! function list of a module the caller has already loaded (loading the same path again
//! yields the same library, so the session handles of the caller's `cryptoki` context
//! are valid here).

use std::path::Path;
use std::ptr::null_mut;

use cryptoki_sys::*;

/// Calls `C_LoginUser(session, user, pin, username)` in the module at `module`; returns
/// its `CK_RV`, or why the function could not be reached.
pub fn login_user(
    module: &Path,
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: &[u8],
    username: &[u8],
) -> Result<CK_RV, String> {
    // SAFETY: loads a PKCS#11 module the caller already loaded and initialized; loading
    // runs no initializer of ours, and the handle keeps the library mapped for this call.
    let lib =
        unsafe { cryptoki_sys::Pkcs11::new(module) }.map_err(|e| format!("cannot load {}: {e}", module.display()))?;
    let mut iface: *mut CK_INTERFACE = null_mut();
    // SAFETY: NULL name and version ask for the default interface; `iface` is a live local.
    let rv = unsafe { lib.C_GetInterface(null_mut(), null_mut(), &mut iface, 0) };
    if rv != CKR_OK || iface.is_null() {
        return Err(format!("C_GetInterface returned {rv:#x}: the module has no PKCS#11 3.x interface"));
    }
    // SAFETY: on CKR_OK `iface` points to the module's static interface record.
    let list = unsafe { (*iface).pFunctionList }.cast::<CK_FUNCTION_LIST_3_0>();
    if list.is_null() {
        return Err("the default interface has no function list".into());
    }
    // SAFETY: the list is static in the loaded module; its version says which layout it has.
    let version = unsafe { (*list).version };
    if version.major < 3 {
        return Err(format!("the module's default interface is PKCS#11 {}.{}", version.major, version.minor));
    }
    // SAFETY: a 3.x list starts with the 3.0 layout, which has `C_LoginUser`.
    let Some(login) = (unsafe { (*list).C_LoginUser }) else {
        return Err("the module's function list has no C_LoginUser".into());
    };
    let mut pin = pin.to_vec();
    let mut name = username.to_vec();
    let len = |b: &[u8]| CK_ULONG::try_from(b.len()).map_err(|_| "a PIN or username too long".to_string());
    let (pin_len, name_len) = (len(&pin)?, len(&name)?);
    // SAFETY: both buffers are live locals of the lengths passed; the module only reads them.
    let rv = unsafe { login(session, user, pin.as_mut_ptr(), pin_len, name.as_mut_ptr(), name_len) };
    zeroize::Zeroize::zeroize(&mut pin);
    Ok(rv)
}
