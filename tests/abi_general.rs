//! The general-purpose functions (PKCS#11 3.2 §5.4) driven through the module's raw C ABI:
//! initialize and finalize with every shape of `CK_C_INITIALIZE_ARGS`, the function lists
//! and interfaces, configuration failures, the out-of-the-box default, and fork.
//!
//! `unsafe` is allowed here because calling a C ABI is unsafe by definition: every call
//! goes through `cryptoki_sys::Pkcs11` (raw `extern "C"` function pointers) with pointers
//! to locals this file owns, exactly as a C application would make them. The crate's
//! `undocumented_unsafe_blocks` lint is relaxed for the same reason: each block is one C
//! call whose contract is the PKCS#11 specification itself.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]

mod common;

use std::ffi::CStr;
use std::os::raw::c_void;
use std::ptr::null_mut;
use std::sync::MutexGuard;

use common::raw::assert_rv;
use cryptoki_sys::*;

/// The module loaded through its C ABI, with the test lock held. Dropping it finalizes
/// the module (ignoring the result) before the lock is released, so a failing test does
/// not leave the next one an initialized module.
struct Raw {
    lib: Pkcs11,
    _serial: MutexGuard<'static, ()>,
}

impl Raw {
    fn load(serial: MutexGuard<'static, ()>) -> Raw {
        let lib = unsafe { Pkcs11::new(common::module_path()) }.expect("load module");
        Raw { lib, _serial: serial }
    }

    fn init(&self) {
        assert_rv(unsafe { self.lib.C_Initialize(null_mut()) }, CKR_OK, "C_Initialize(NULL)");
    }

    fn finalize(&self) {
        assert_rv(unsafe { self.lib.C_Finalize(null_mut()) }, CKR_OK, "C_Finalize(NULL)");
    }

    fn init_with(&self, args: &mut CK_C_INITIALIZE_ARGS) -> CK_RV {
        unsafe { self.lib.C_Initialize(std::ptr::from_mut(args).cast()) }
    }

    fn slot_count(&self) -> (CK_RV, CK_ULONG) {
        let mut count: CK_ULONG = 0;
        let rv = unsafe { self.lib.C_GetSlotList(CK_FALSE, null_mut(), &mut count) };
        (rv, count)
    }

    /// The default interface ("PKCS 11", newest version).
    fn default_interface(&self) -> CK_INTERFACE {
        let mut iface: *mut CK_INTERFACE = null_mut();
        assert_rv(unsafe { self.lib.C_GetInterface(null_mut(), null_mut(), &mut iface, 0) }, CKR_OK, "C_GetInterface");
        assert!(!iface.is_null(), "C_GetInterface returned CKR_OK and a NULL interface");
        unsafe { *iface }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // Best effort: the happy path has already finalized and asserted CKR_OK.
        let _ = unsafe { self.lib.C_Finalize(null_mut()) };
    }
}

/// The version every function list starts with.
fn version_of(list: *const c_void) -> (u8, u8) {
    assert!(!list.is_null(), "NULL function list");
    let v = unsafe { *list.cast::<CK_VERSION>() };
    (v.major, v.minor)
}

fn no_init_args() -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: 0,
        pReserved: null_mut(),
    }
}

// Dummy application mutex callbacks: the module must refuse or ignore them, never call them.
extern "C" fn create_mutex(_mutex: *mut *mut c_void) -> CK_RV {
    CKR_GENERAL_ERROR
}
extern "C" fn destroy_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_GENERAL_ERROR
}
extern "C" fn lock_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_GENERAL_ERROR
}
extern "C" fn unlock_mutex(_mutex: *mut c_void) -> CK_RV {
    CKR_GENERAL_ERROR
}

fn all_mutex_callbacks(flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create_mutex),
        DestroyMutex: Some(destroy_mutex),
        LockMutex: Some(lock_mutex),
        UnlockMutex: Some(unlock_mutex),
        flags,
        pReserved: null_mut(),
    }
}

#[test]
fn every_call_before_initialize_is_cryptoki_not_initialized() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let lib = &raw.lib;

    let mut count: CK_ULONG = 0;
    assert_rv(
        unsafe { lib.C_GetSlotList(CK_FALSE, null_mut(), &mut count) },
        CKR_CRYPTOKI_NOT_INITIALIZED,
        "C_GetSlotList",
    );
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetInfo(&mut info) }, CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetInfo");
    let mut session: CK_SESSION_HANDLE = 0;
    assert_rv(
        unsafe { lib.C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut session) },
        CKR_CRYPTOKI_NOT_INITIALIZED,
        "C_OpenSession",
    );
    let mut token: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetTokenInfo(0, &mut token) }, CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetTokenInfo");
    let mut mechanism = CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: null_mut(), ulParameterLen: 0 };
    assert_rv(unsafe { lib.C_EncryptInit(1, &mut mechanism, 1) }, CKR_CRYPTOKI_NOT_INITIALIZED, "C_EncryptInit");

    // And initializing afterwards still works.
    raw.init();
    raw.finalize();
}

#[test]
fn double_initialize_is_already_initialized() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    raw.init();
    assert_rv(unsafe { raw.lib.C_Initialize(null_mut()) }, CKR_CRYPTOKI_ALREADY_INITIALIZED, "second C_Initialize");
    // The failed second call left the first initialization intact.
    assert_rv(raw.slot_count().0, CKR_OK, "C_GetSlotList after the refused C_Initialize");
    raw.finalize();
}

#[test]
fn finalize_then_initialize_works_again_in_the_same_process() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    for round in 0..3 {
        raw.init();
        let (rv, count) = raw.slot_count();
        assert_rv(rv, CKR_OK, &format!("C_GetSlotList in round {round}"));
        assert_eq!(count, 1);
        raw.finalize();
        assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetSlotList after C_Finalize");
    }
}

#[test]
fn finalize_with_a_non_null_argument_is_arguments_bad() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    raw.init();
    let mut junk: u64 = 0;
    assert_rv(
        unsafe { raw.lib.C_Finalize(std::ptr::from_mut(&mut junk).cast()) },
        CKR_ARGUMENTS_BAD,
        "C_Finalize(non-NULL)",
    );
    // The refused call did not finalize.
    assert_rv(raw.slot_count().0, CKR_OK, "C_GetSlotList after the refused C_Finalize");
    raw.finalize();
}

#[test]
fn finalize_when_not_initialized_is_cryptoki_not_initialized() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    assert_rv(unsafe { raw.lib.C_Finalize(null_mut()) }, CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize before init");
    raw.init();
    raw.finalize();
    assert_rv(unsafe { raw.lib.C_Finalize(null_mut()) }, CKR_CRYPTOKI_NOT_INITIALIZED, "second C_Finalize");
}

#[test]
fn initialize_args_with_reserved_set_is_arguments_bad() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let mut junk: u64 = 0;
    let mut args = no_init_args();
    args.pReserved = std::ptr::from_mut(&mut junk).cast();
    assert_rv(raw.init_with(&mut args), CKR_ARGUMENTS_BAD, "C_Initialize with pReserved set");
    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "the refused C_Initialize initialized");
    raw.init();
    raw.finalize();
}

#[test]
fn initialize_args_with_mutex_callbacks_but_no_os_locking_is_cant_lock() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let mut args = all_mutex_callbacks(0);
    assert_rv(raw.init_with(&mut args), CKR_CANT_LOCK, "C_Initialize with app mutexes only");
    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "the refused C_Initialize initialized");
    raw.init();
    raw.finalize();
}

#[test]
fn initialize_args_with_mutex_callbacks_and_os_locking_is_ok() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let mut args = all_mutex_callbacks(CKF_OS_LOCKING_OK);
    assert_rv(raw.init_with(&mut args), CKR_OK, "C_Initialize with app mutexes and CKF_OS_LOCKING_OK");
    // The module locks with the OS's primitives; the (failing) callbacks are never called.
    let (rv, count) = raw.slot_count();
    assert_rv(rv, CKR_OK, "C_GetSlotList");
    assert_eq!(count, 1);
    raw.finalize();
}

#[test]
fn initialize_args_with_only_some_mutex_callbacks_is_arguments_bad() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    for flags in [0, CKF_OS_LOCKING_OK] {
        let mut args = no_init_args();
        args.flags = flags;
        args.CreateMutex = Some(create_mutex);
        args.DestroyMutex = Some(destroy_mutex);
        assert_rv(raw.init_with(&mut args), CKR_ARGUMENTS_BAD, &format!("two of four callbacks, flags {flags}"));
        let mut args = all_mutex_callbacks(flags);
        args.UnlockMutex = None;
        assert_rv(raw.init_with(&mut args), CKR_ARGUMENTS_BAD, &format!("three of four callbacks, flags {flags}"));
    }
    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "a refused C_Initialize initialized");
    raw.init();
    raw.finalize();
}

#[test]
fn initialize_args_with_os_locking_and_no_callbacks_is_ok() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let mut args = no_init_args();
    args.flags = CKF_OS_LOCKING_OK;
    assert_rv(raw.init_with(&mut args), CKR_OK, "C_Initialize with CKF_OS_LOCKING_OK");
    raw.finalize();
    // No flags and no callbacks (the application is single-threaded) is fine too.
    let mut args = no_init_args();
    assert_rv(raw.init_with(&mut args), CKR_OK, "C_Initialize with zeroed args");
    raw.finalize();
}

#[test]
fn the_interface_list_offers_pkcs_11_at_3_2_3_0_and_2_40_before_initialize() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let lib = &raw.lib;

    let mut count: CK_ULONG = 0;
    assert_rv(unsafe { lib.C_GetInterfaceList(null_mut(), &mut count) }, CKR_OK, "C_GetInterfaceList(NULL)");
    assert_eq!(count, 3);

    let empty = CK_INTERFACE { pInterfaceName: null_mut(), pFunctionList: null_mut(), flags: 0 };
    let mut short = [empty; 1];
    let mut count: CK_ULONG = 1;
    assert_rv(
        unsafe { lib.C_GetInterfaceList(short.as_mut_ptr(), &mut count) },
        CKR_BUFFER_TOO_SMALL,
        "C_GetInterfaceList with room for 1",
    );
    assert_eq!(count, 3, "a short buffer still reports the count");

    let mut list = [empty; 3];
    let mut count: CK_ULONG = 3;
    assert_rv(unsafe { lib.C_GetInterfaceList(list.as_mut_ptr(), &mut count) }, CKR_OK, "C_GetInterfaceList");
    assert_eq!(count, 3);
    let mut versions = Vec::new();
    for iface in &list {
        assert!(!iface.pInterfaceName.is_null(), "an interface without a name");
        let name = unsafe { CStr::from_ptr(iface.pInterfaceName.cast()) };
        assert_eq!(name.to_bytes(), b"PKCS 11");
        versions.push(version_of(iface.pFunctionList));
    }
    assert_eq!(versions, [(3, 2), (3, 0), (2, 40)]);

    // All of that without C_Initialize.
    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetSlotList");
}

#[test]
fn get_interface_picks_by_name_and_version_before_initialize() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let lib = &raw.lib;

    let default = raw.default_interface();
    assert_eq!(version_of(default.pFunctionList), (3, 2), "the default interface is the newest");
    assert_eq!(unsafe { CStr::from_ptr(default.pInterfaceName.cast()) }.to_bytes(), b"PKCS 11");

    let mut iface: *mut CK_INTERFACE = null_mut();
    let mut v30 = CK_VERSION { major: 3, minor: 0 };
    let mut name = *b"PKCS 11\0";
    assert_rv(
        unsafe { lib.C_GetInterface(name.as_mut_ptr(), &mut v30, &mut iface, 0) },
        CKR_OK,
        "C_GetInterface(\"PKCS 11\", 3.0)",
    );
    assert!(!iface.is_null());
    assert_eq!(version_of(unsafe { (*iface).pFunctionList }), (3, 0));

    let mut v240 = CK_VERSION { major: 2, minor: 40 };
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_rv(unsafe { lib.C_GetInterface(null_mut(), &mut v240, &mut iface, 0) }, CKR_OK, "C_GetInterface(2.40)");
    assert_eq!(version_of(unsafe { (*iface).pFunctionList }), (2, 40));

    let mut nope = *b"nope\0";
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_rv(
        unsafe { lib.C_GetInterface(nope.as_mut_ptr(), null_mut(), &mut iface, 0) },
        CKR_ARGUMENTS_BAD,
        "C_GetInterface(\"nope\")",
    );
    assert_rv(
        unsafe { lib.C_GetInterface(null_mut(), null_mut(), null_mut(), 0) },
        CKR_ARGUMENTS_BAD,
        "C_GetInterface with a NULL output pointer",
    );

    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetSlotList");
}

#[test]
fn get_function_list_is_the_2_40_list() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    assert_rv(unsafe { raw.lib.C_GetFunctionList(&mut list) }, CKR_OK, "C_GetFunctionList before C_Initialize");
    assert_eq!(version_of(list.cast_const().cast()), (2, 40));
    assert_rv(unsafe { raw.lib.C_GetFunctionList(null_mut()) }, CKR_ARGUMENTS_BAD, "C_GetFunctionList(NULL)");

    // The list's own entries are the module's functions.
    let initialize = unsafe { (*list).C_Initialize }.expect("C_Initialize in the 2.40 list");
    assert_rv(unsafe { initialize(null_mut()) }, CKR_OK, "C_Initialize through the 2.40 list");
    let finalize = unsafe { (*list).C_Finalize }.expect("C_Finalize in the 2.40 list");
    assert_rv(unsafe { finalize(null_mut()) }, CKR_OK, "C_Finalize through the 2.40 list");
}

#[test]
fn the_3_2_only_functions_are_callable_through_the_3_2_list() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    let iface = raw.default_interface();
    assert_eq!(version_of(iface.pFunctionList), (3, 2));
    let list = iface.pFunctionList.cast::<CK_FUNCTION_LIST_3_2>();

    // Before initialization even these say so.
    let encapsulate = unsafe { (*list).C_EncapsulateKey }.expect("C_EncapsulateKey slot filled");
    assert_rv(
        unsafe { encapsulate(1, null_mut(), 1, null_mut(), 0, null_mut(), null_mut(), null_mut()) },
        CKR_CRYPTOKI_NOT_INITIALIZED,
        "C_EncapsulateKey before C_Initialize",
    );

    let initialize = unsafe { (*list).C_Initialize }.expect("C_Initialize slot filled");
    assert_rv(unsafe { initialize(null_mut()) }, CKR_OK, "C_Initialize through the 3.2 list");

    let mut session: CK_SESSION_HANDLE = 0;
    let open = unsafe { (*list).C_OpenSession }.expect("C_OpenSession slot filled");
    assert_rv(unsafe { open(0, CKF_SERIAL_SESSION, null_mut(), None, &mut session) }, CKR_OK, "C_OpenSession");

    // C_EncapsulateKey is implemented: a digest mechanism is not a KEM.
    let mut mechanism = CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 };
    let mut ciphertext_len: CK_ULONG = 0;
    let mut key: CK_OBJECT_HANDLE = 0;
    assert_rv(
        unsafe { encapsulate(session, &mut mechanism, 1, null_mut(), 0, null_mut(), &mut ciphertext_len, &mut key) },
        CKR_MECHANISM_INVALID,
        "C_EncapsulateKey",
    );
    // A 3.2 function the token does not implement answers through its filled slot.
    let verify_signature_init = unsafe { (*list).C_VerifySignatureInit }.expect("C_VerifySignatureInit slot filled");
    assert_rv(
        unsafe { verify_signature_init(session, &mut mechanism, 1, null_mut(), 0) },
        CKR_FUNCTION_NOT_SUPPORTED,
        "C_VerifySignatureInit",
    );

    let finalize = unsafe { (*list).C_Finalize }.expect("C_Finalize slot filled");
    assert_rv(unsafe { finalize(null_mut()) }, CKR_OK, "C_Finalize through the 3.2 list");
}

#[test]
fn a_config_naming_a_missing_file_fails_initialize_and_a_good_one_then_works() {
    let raw = Raw::load(common::lock());
    let ws = common::Workspace::new();
    let missing = ws.dir.path().join("no-such-config.toml");
    std::env::set_var("COLLABVAULT_CONF", &missing);
    assert_rv(unsafe { raw.lib.C_Initialize(null_mut()) }, CKR_GENERAL_ERROR, "C_Initialize with a missing config");
    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "the failed C_Initialize initialized");

    std::env::set_var("COLLABVAULT_CONF", &ws.conf);
    raw.init();
    let (rv, count) = raw.slot_count();
    assert_rv(rv, CKR_OK, "C_GetSlotList");
    assert_eq!(count, 1);
    raw.finalize();
}

#[test]
fn an_invalid_toml_config_fails_initialize_with_general_error() {
    let raw = Raw::load(common::lock());
    let ws = common::Workspace::new();
    let bad = ws.dir.path().join("bad.toml");
    std::fs::write(&bad, "store_dir = 5\n[[workspace]]\nname = \"main\"\n").expect("write config");
    std::env::set_var("COLLABVAULT_CONF", &bad);
    assert_rv(unsafe { raw.lib.C_Initialize(null_mut()) }, CKR_GENERAL_ERROR, "C_Initialize with store_dir = 5");
    assert_rv(raw.slot_count().0, CKR_CRYPTOKI_NOT_INITIALIZED, "the failed C_Initialize initialized");

    std::fs::write(&bad, "this is not toml [[[").expect("write config");
    assert_rv(unsafe { raw.lib.C_Initialize(null_mut()) }, CKR_GENERAL_ERROR, "C_Initialize with garbage");

    std::env::set_var("COLLABVAULT_CONF", &ws.conf);
    raw.init();
    raw.finalize();
}

/// Restores an environment variable when dropped.
struct EnvRestore(&'static str, Option<std::ffi::OsString>);

impl Drop for EnvRestore {
    fn drop(&mut self) {
        match &self.1 {
            Some(v) => std::env::set_var(self.0, v),
            None => std::env::remove_var(self.0),
        }
    }
}

#[test]
fn without_any_config_the_module_makes_one_uninitialized_token_under_xdg_data_home() {
    let raw = Raw::load(common::lock());
    let ws = common::Workspace::new();
    let _conf = EnvRestore("COLLABVAULT_CONF", std::env::var_os("COLLABVAULT_CONF"));
    let _xdg = EnvRestore("XDG_DATA_HOME", std::env::var_os("XDG_DATA_HOME"));
    let data_home = ws.dir.path().join("xdg-data");
    std::env::remove_var("COLLABVAULT_CONF");
    std::env::set_var("XDG_DATA_HOME", &data_home);

    raw.init();
    let mut slots: [CK_SLOT_ID; 4] = [99; 4];
    let mut count: CK_ULONG = 4;
    assert_rv(unsafe { raw.lib.C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count) }, CKR_OK, "C_GetSlotList");
    assert_eq!(count, 1, "one slot out of the box");
    let mut token: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { raw.lib.C_GetTokenInfo(slots[0], &mut token) }, CKR_OK, "C_GetTokenInfo");
    assert_eq!(token.flags & CKF_TOKEN_INITIALIZED, 0, "a fresh default token is not initialized");
    assert!(
        data_home.join("collabvault").join("collabvault.sqlite3").is_file(),
        "no store under {}",
        data_home.join("collabvault").display()
    );
    raw.finalize();
}

/// Exit codes of the forked child, one per step that can fail.
const CHILD_OK: i32 = 0;
const CHILD_SLOTS_BEFORE_INIT: i32 = 10;
const CHILD_INIT: i32 = 11;
const CHILD_SLOTS: i32 = 12;
const CHILD_SLOT_COUNT: i32 = 13;
const CHILD_FINALIZE: i32 = 14;
const CHILD_PANIC: i32 = 15;

/// The child's side of the fork test: only async-signal-tolerant work, no unwinding into
/// the test harness; the answer is the exit status.
fn child_steps(lib: &Pkcs11) -> i32 {
    let mut count: CK_ULONG = 0;
    if unsafe { lib.C_GetSlotList(CK_FALSE, null_mut(), &mut count) } != CKR_CRYPTOKI_NOT_INITIALIZED {
        return CHILD_SLOTS_BEFORE_INIT;
    }
    if unsafe { lib.C_Initialize(null_mut()) } != CKR_OK {
        return CHILD_INIT;
    }
    let mut count: CK_ULONG = 0;
    if unsafe { lib.C_GetSlotList(CK_FALSE, null_mut(), &mut count) } != CKR_OK {
        return CHILD_SLOTS;
    }
    if count != 1 {
        return CHILD_SLOT_COUNT;
    }
    if unsafe { lib.C_Finalize(null_mut()) } != CKR_OK {
        return CHILD_FINALIZE;
    }
    CHILD_OK
}

#[test]
fn a_forked_child_is_uninitialized_and_can_initialize_its_own_module() {
    let raw = Raw::load(common::lock());
    let _ws = common::Workspace::new();
    raw.init();
    let (rv, count) = raw.slot_count();
    assert_rv(rv, CKR_OK, "C_GetSlotList in the parent");
    assert_eq!(count, 1);

    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child_steps(&raw.lib))).unwrap_or(CHILD_PANIC);
        // Never return into the test harness: leave without destructors or atexit handlers.
        unsafe { libc::_exit(code) };
    }

    let mut status: libc::c_int = 0;
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child did not exit normally (status {status:#x})");
    let code = libc::WEXITSTATUS(status);
    let step = match code {
        CHILD_OK => "none",
        CHILD_SLOTS_BEFORE_INIT => "C_GetSlotList before C_Initialize was not CKR_CRYPTOKI_NOT_INITIALIZED",
        CHILD_INIT => "C_Initialize was not CKR_OK",
        CHILD_SLOTS => "C_GetSlotList after C_Initialize was not CKR_OK",
        CHILD_SLOT_COUNT => "C_GetSlotList did not report 1 slot",
        CHILD_FINALIZE => "C_Finalize was not CKR_OK",
        CHILD_PANIC => "the child panicked",
        _ => "unknown exit code",
    };
    assert_eq!(code, CHILD_OK, "the forked child failed at: {step}");

    // The parent's module is untouched by the child's initialize and finalize.
    let (rv, count) = raw.slot_count();
    assert_rv(rv, CKR_OK, "C_GetSlotList in the parent after the child");
    assert_eq!(count, 1);
    raw.finalize();
}
