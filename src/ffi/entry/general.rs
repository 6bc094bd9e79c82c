//! General-purpose functions (PKCS#11 3.2 §5.4): initialize, finalize, info, and the
//! function lists and interfaces.

use std::os::raw::c_void;

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::ffi::args::{c_str, out};
use crate::ffi::function_list::{FUNCTION_LIST_2_40, INTERFACES, INTERFACE_NAME};
use crate::ffi::{guard, guard_any};
use crate::module;

fn check_init_args(a: &CK_C_INITIALIZE_ARGS) -> Result<()> {
    if !a.pReserved.is_null() {
        return Err(Error::ArgumentsBad("CK_C_INITIALIZE_ARGS.pReserved must be NULL"));
    }
    let given = [a.CreateMutex.is_some(), a.DestroyMutex.is_some(), a.LockMutex.is_some(), a.UnlockMutex.is_some()];
    match given.iter().filter(|g| **g).count() {
        0 => Ok(()),
        4 if a.flags & CKF_OS_LOCKING_OK != 0 => Ok(()),
        // The application insists on its own mutexes; this module locks with the OS's only.
        4 => Err(Error::CantLock),
        _ => Err(Error::ArgumentsBad("mutex callbacks must be all set or all NULL")),
    }
}

/// `C_Initialize` (§5.4.1).
///
/// # Safety
/// `init_args` is NULL or points to a `CK_C_INITIALIZE_ARGS`.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    guard_any("C_Initialize", || {
        // SAFETY: the caller passes NULL or a valid CK_C_INITIALIZE_ARGS.
        if let Some(args) = unsafe { init_args.cast::<CK_C_INITIALIZE_ARGS>().as_ref() } {
            check_init_args(args)?;
        }
        register_fork_handler();
        module::initialize()
    })
}

/// Runs in a forked child before `fork()` returns there: only an atomic add.
extern "C" fn child_after_fork() {
    module::forked();
}

/// Registers [`child_after_fork`] once per process image. glibc drops the registration
/// when this library is unloaded (it is tied to the library's `__dso_handle`).
fn register_fork_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a plain function of this library, with no prepare or parent
        // handler; the handler only bumps an atomic, which is async-signal-safe.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(child_after_fork)) };
        if rc == 0 {
            module::fork_handler_registered();
        } else {
            log::warn!("pthread_atfork failed ({rc}): fork detection falls back to comparing process ids");
        }
    });
}

/// `C_Finalize` (§5.4.2).
#[no_mangle]
pub extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || {
        if !reserved.is_null() {
            return Err(Error::ArgumentsBad("C_Finalize's argument must be NULL"));
        }
        module::finalize()
    })
}

/// `C_GetInfo` (§5.4.3).
///
/// # Safety
/// `info` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard("C_GetInfo", || {
        let value = module::info()?;
        // SAFETY: the caller passes NULL or a writable CK_INFO.
        *unsafe { out(info) }? = value;
        Ok(())
    })
}

/// `C_GetFunctionList` (§5.4.4): the version 2.40 list.
///
/// # Safety
/// `list` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut CK_FUNCTION_LIST_PTR) -> CK_RV {
    guard_any("C_GetFunctionList", || {
        // SAFETY: the caller passes NULL or a writable pointer slot.
        *unsafe { out(list) }? = std::ptr::addr_of!(FUNCTION_LIST_2_40).cast_mut();
        Ok(())
    })
}

/// `C_GetInterfaceList` (§5.4.5): "PKCS 11" at 3.2, 3.0 and 2.40.
///
/// # Safety
/// `count` is NULL or valid for reads and writes; a non-NULL `list` has room for `*count`.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(list: *mut CK_INTERFACE, count: *mut CK_ULONG) -> CK_RV {
    guard_any("C_GetInterfaceList", || {
        // SAFETY: forwarded from this function's contract.
        unsafe { crate::ffi::args::write_list(list, count, &INTERFACES.get()) }
    })
}

/// `C_GetInterface` (§5.4.6): by name, version and flags; NULL name or version means
/// the default ("PKCS 11" 3.2).
///
/// # Safety
/// `name` is NULL or NUL-terminated; `version` is NULL or readable; `interface` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut CK_INTERFACE_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    guard_any("C_GetInterface", || {
        // SAFETY: the caller passes NULL or a writable pointer slot.
        let slot = unsafe { out(interface) }?;
        // SAFETY: the caller passes NULL or a NUL-terminated name.
        let name = unsafe { c_str(name) };
        // SAFETY: the caller passes NULL or a readable CK_VERSION.
        let version = unsafe { version.as_ref() }.copied();
        if name.is_some_and(|n| n != INTERFACE_NAME.to_bytes()) {
            return Err(Error::ArgumentsBad("no interface of that name"));
        }
        let found =
            INTERFACES.find(version, flags).ok_or(Error::ArgumentsBad("no interface of that version and flags"))?;
        *slot = found;
        Ok(())
    })
}
