//! The module's raw C ABI for tests that must pass what `cryptoki` will not (bad
//! pointers, lengths, parameters) or call functions it does not wrap: the 3.2 function
//! list and exact return-code assertions.

// Loading the function list is a raw C ABI call; each block below says why it is sound.
#![allow(unsafe_code)]

use std::ptr::null_mut;

use cryptoki_sys::*;

/// `ulParameterLen` of a `CK_GCM_MESSAGE_PARAMS` passed by pointer.
pub const GCM_PARAM_LEN: CK_ULONG = std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;

/// The 3.2 function list of the module the fixture loaded.
pub struct Api {
    _lib: cryptoki_sys::Pkcs11,
    pub f: CK_FUNCTION_LIST_3_2,
}

impl Api {
    pub fn load() -> Api {
        // SAFETY: loads the module this test binary was built with; it runs no code of ours.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(super::module_path()) }.expect("load module");
        let mut iface: *mut CK_INTERFACE = null_mut();
        // SAFETY: NULL name and version ask for the default interface; `iface` is a live local.
        assert_eq!(unsafe { lib.C_GetInterface(null_mut(), null_mut(), &mut iface, 0) }, CKR_OK);
        // SAFETY: on CKR_OK `iface` points to the module's static interface, whose default
        // is the 3.2 function list; the list is copied out while `lib` keeps it loaded.
        let f = unsafe { *(*iface).pFunctionList.cast::<CK_FUNCTION_LIST_3_2>() };
        Api { _lib: lib, f }
    }
}

/// Asserts an exact return code, naming both codes on failure.
#[track_caller]
pub fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert_eq!(
        got,
        want,
        "{what}: got {} ({got:#x}), want {} ({want:#x})",
        collabvault_pkcs11::names::rv_name(got),
        collabvault_pkcs11::names::rv_name(want),
    );
}
