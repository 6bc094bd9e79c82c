//! A battery of bad inputs through the module's raw C ABI, on an initialized token: NULL
//! pointers, NULL buffers with lengths, wrong handles and slots, short buffers, sensitive
//! and foreign attributes, bad templates and calls in the wrong session state. Each one
//! asserts the exact `CKR_` code the PKCS#11 3.2 specification gives.
//!
//! `unsafe` is allowed here because feeding bad pointers to a C ABI is the point of these
//! tests and can only be done through raw `extern "C"` calls (`cryptoki_sys::Pkcs11`); the
//! pointers passed are NULL or point to locals this file owns, so no call reads or writes
//! memory it should not. `undocumented_unsafe_blocks` is relaxed for the same reason: each
//! block is one C call whose contract is the specification itself.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]

mod common;

use std::os::raw::c_void;
use std::ptr::null_mut;
use std::sync::MutexGuard;

use common::raw::assert_rv;
use common::{SO_PIN, USER_PIN};
use cryptoki_sys::*;

const SLOT: CK_SLOT_ID = 0;
const NO_SLOT: CK_SLOT_ID = 7;
const BAD_HANDLES: [CK_ULONG; 2] = [0, 9999];

/// A PIN or other byte string as the `*mut CK_UTF8CHAR` the C ABI takes (never written).
fn ptr(s: &[u8]) -> *mut CK_UTF8CHAR {
    s.as_ptr().cast_mut()
}

fn len(s: &[u8]) -> CK_ULONG {
    s.len() as CK_ULONG
}

/// An attribute pointing at caller-owned bytes.
fn attr(ty: CK_ATTRIBUTE_TYPE, value: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: ty, pValue: value.as_ptr().cast_mut().cast::<c_void>(), ulValueLen: len(value) }
}

fn ulong(v: CK_ULONG) -> [u8; std::mem::size_of::<CK_ULONG>()] {
    v.to_ne_bytes()
}

const TRUE: [u8; 1] = [CK_TRUE];

/// The module loaded through its C ABI over a fresh, initialized token (SO and user PINs
/// set), with the test lock held. Dropping it finalizes the module (ignoring the result)
/// before the lock is released, so a failing test does not leave the next one an
/// initialized module.
struct Raw {
    lib: Pkcs11,
    _ws: common::Workspace,
    _serial: MutexGuard<'static, ()>,
}

impl Raw {
    fn new() -> Raw {
        let serial = common::lock();
        let ws = common::Workspace::new();
        let lib = unsafe { Pkcs11::new(common::module_path()) }.expect("load module");
        let raw = Raw { lib, _ws: ws, _serial: serial };
        assert_rv(unsafe { raw.lib.C_Initialize(null_mut()) }, CKR_OK, "C_Initialize");
        raw.init_token();
        raw
    }

    fn init_token(&self) {
        let mut label = [b' '; 32];
        label[..common::LABEL.len()].copy_from_slice(common::LABEL.as_bytes());
        let so = SO_PIN.as_bytes();
        assert_rv(unsafe { self.lib.C_InitToken(SLOT, ptr(so), len(so), label.as_mut_ptr()) }, CKR_OK, "C_InitToken");
        let s = self.open(CKF_SERIAL_SESSION | CKF_RW_SESSION);
        self.login(s, CKU_SO, SO_PIN);
        let user = USER_PIN.as_bytes();
        assert_rv(unsafe { self.lib.C_InitPIN(s, ptr(user), len(user)) }, CKR_OK, "C_InitPIN");
        assert_rv(unsafe { self.lib.C_Logout(s) }, CKR_OK, "C_Logout");
        self.close(s);
    }

    fn open(&self, flags: CK_FLAGS) -> CK_SESSION_HANDLE {
        let mut h: CK_SESSION_HANDLE = 0;
        assert_rv(unsafe { self.lib.C_OpenSession(SLOT, flags, null_mut(), None, &mut h) }, CKR_OK, "C_OpenSession");
        h
    }

    fn rw(&self) -> CK_SESSION_HANDLE {
        self.open(CKF_SERIAL_SESSION | CKF_RW_SESSION)
    }

    fn ro(&self) -> CK_SESSION_HANDLE {
        self.open(CKF_SERIAL_SESSION)
    }

    fn login(&self, s: CK_SESSION_HANDLE, who: CK_USER_TYPE, pin: &str) {
        let pin = pin.as_bytes();
        assert_rv(unsafe { self.lib.C_Login(s, who, ptr(pin), len(pin)) }, CKR_OK, "C_Login");
    }

    /// A read-write session logged in as the user.
    fn user_session(&self) -> CK_SESSION_HANDLE {
        let s = self.rw();
        self.login(s, CKU_USER, USER_PIN);
        s
    }

    fn close(&self, s: CK_SESSION_HANDLE) {
        assert_rv(unsafe { self.lib.C_CloseSession(s) }, CKR_OK, "C_CloseSession");
    }

    fn create(&self, s: CK_SESSION_HANDLE, template: &mut [CK_ATTRIBUTE]) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut h: CK_OBJECT_HANDLE = 0;
        let rv = unsafe { self.lib.C_CreateObject(s, template.as_mut_ptr(), len_of(template), &mut h) };
        (rv, h)
    }

    /// A public session data object labelled "hello".
    fn data_object(&self, s: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
        let class = ulong(CKO_DATA);
        let mut t = [attr(CKA_CLASS, &class), attr(CKA_LABEL, b"hello"), attr(CKA_VALUE, b"payload")];
        let (rv, h) = self.create(s, &mut t);
        assert_rv(rv, CKR_OK, "C_CreateObject(data)");
        h
    }

    fn finalize(&self) {
        assert_rv(unsafe { self.lib.C_Finalize(null_mut()) }, CKR_OK, "C_Finalize");
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // Best effort: the happy path has already finalized and asserted CKR_OK.
        let _ = unsafe { self.lib.C_Finalize(null_mut()) };
    }
}

fn len_of<T>(items: &[T]) -> CK_ULONG {
    items.len() as CK_ULONG
}

#[test]
fn null_output_pointers_are_arguments_bad() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let s = raw.rw();
    let o = raw.data_object(s);

    assert_rv(unsafe { lib.C_GetInfo(null_mut()) }, CKR_ARGUMENTS_BAD, "C_GetInfo(NULL)");
    assert_rv(unsafe { lib.C_GetSlotInfo(SLOT, null_mut()) }, CKR_ARGUMENTS_BAD, "C_GetSlotInfo(0, NULL)");
    assert_rv(unsafe { lib.C_GetTokenInfo(SLOT, null_mut()) }, CKR_ARGUMENTS_BAD, "C_GetTokenInfo(0, NULL)");
    assert_rv(
        unsafe { lib.C_OpenSession(SLOT, CKF_SERIAL_SESSION, null_mut(), None, null_mut()) },
        CKR_ARGUMENTS_BAD,
        "C_OpenSession(.., NULL)",
    );
    assert_rv(unsafe { lib.C_GetSessionInfo(s, null_mut()) }, CKR_ARGUMENTS_BAD, "C_GetSessionInfo(h, NULL)");
    assert_rv(
        unsafe { lib.C_GetSlotList(CK_FALSE, null_mut(), null_mut()) },
        CKR_ARGUMENTS_BAD,
        "C_GetSlotList(FALSE, NULL, NULL)",
    );
    let class = ulong(CKO_DATA);
    let mut t = [attr(CKA_CLASS, &class)];
    assert_rv(
        unsafe { lib.C_CreateObject(s, t.as_mut_ptr(), 1, null_mut()) },
        CKR_ARGUMENTS_BAD,
        "C_CreateObject(.., phObject NULL)",
    );
    assert_rv(unsafe { lib.C_FindObjectsInit(s, null_mut(), 0) }, CKR_OK, "C_FindObjectsInit");
    let mut count: CK_ULONG = 0;
    assert_rv(
        unsafe { lib.C_FindObjects(s, null_mut(), 10, &mut count) },
        CKR_ARGUMENTS_BAD,
        "C_FindObjects(h, NULL, ..)",
    );
    let mut found: [CK_OBJECT_HANDLE; 4] = [0; 4];
    assert_rv(
        unsafe { lib.C_FindObjects(s, found.as_mut_ptr(), 4, null_mut()) },
        CKR_ARGUMENTS_BAD,
        "C_FindObjects(.., pulObjectCount NULL)",
    );
    assert_rv(unsafe { lib.C_FindObjectsFinal(s) }, CKR_OK, "C_FindObjectsFinal");
    assert_rv(unsafe { lib.C_GetObjectSize(s, o, null_mut()) }, CKR_ARGUMENTS_BAD, "C_GetObjectSize(h, o, NULL)");

    // None of that disturbed the session.
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetSessionInfo(s, &mut info) }, CKR_OK, "C_GetSessionInfo");
    assert_eq!(info.state, CKS_RW_PUBLIC_SESSION);
    raw.close(s);
    raw.finalize();
}

#[test]
fn null_buffers_with_a_non_zero_length_are_arguments_bad() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let s = raw.rw();

    assert_rv(unsafe { lib.C_Login(s, CKU_USER, null_mut(), 4) }, CKR_ARGUMENTS_BAD, "C_Login(h, USER, NULL, 4)");
    assert_rv(unsafe { lib.C_GenerateRandom(s, null_mut(), 16) }, CKR_ARGUMENTS_BAD, "C_GenerateRandom(h, NULL, 16)");
    let mut h: CK_OBJECT_HANDLE = 0;
    assert_rv(
        unsafe { lib.C_CreateObject(s, null_mut(), 2, &mut h) },
        CKR_ARGUMENTS_BAD,
        "C_CreateObject with a NULL template and count 2",
    );
    let class = ulong(CKO_DATA);
    let mut t = [attr(CKA_CLASS, &class), CK_ATTRIBUTE { type_: CKA_LABEL, pValue: null_mut(), ulValueLen: 5 }];
    assert_rv(raw.create(s, &mut t).0, CKR_ARGUMENTS_BAD, "C_CreateObject with pValue NULL and ulValueLen 5");

    // C_InitToken with no session open, so only the label can be wrong.
    raw.close(s);
    let so = SO_PIN.as_bytes();
    assert_rv(
        unsafe { lib.C_InitToken(SLOT, ptr(so), len(so), null_mut()) },
        CKR_ARGUMENTS_BAD,
        "C_InitToken with a NULL label",
    );

    // The failed login did not log anyone in.
    let s = raw.rw();
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetSessionInfo(s, &mut info) }, CKR_OK, "C_GetSessionInfo");
    assert_eq!(info.state, CKS_RW_PUBLIC_SESSION);
    raw.close(s);
    raw.finalize();
}

#[test]
fn unknown_session_handles_are_session_handle_invalid() {
    let raw = Raw::new();
    let lib = &raw.lib;
    // A real session exists, so the bad handles are not refused merely for there being none.
    let real = raw.rw();
    let pin = USER_PIN.as_bytes();
    for h in BAD_HANDLES {
        let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
        assert_rv(
            unsafe { lib.C_GetSessionInfo(h, &mut info) },
            CKR_SESSION_HANDLE_INVALID,
            &format!("C_GetSessionInfo({h})"),
        );
        assert_rv(unsafe { lib.C_CloseSession(h) }, CKR_SESSION_HANDLE_INVALID, &format!("C_CloseSession({h})"));
        assert_rv(
            unsafe { lib.C_Login(h, CKU_USER, ptr(pin), len(pin)) },
            CKR_SESSION_HANDLE_INVALID,
            &format!("C_Login({h})"),
        );
        assert_rv(
            unsafe { lib.C_FindObjectsInit(h, null_mut(), 0) },
            CKR_SESSION_HANDLE_INVALID,
            &format!("C_FindObjectsInit({h})"),
        );
        let mut buf = [0u8; 16];
        assert_rv(
            unsafe { lib.C_GenerateRandom(h, buf.as_mut_ptr(), len_of(&buf)) },
            CKR_SESSION_HANDLE_INVALID,
            &format!("C_GenerateRandom({h})"),
        );
    }
    // The real session is still there and nobody logged in through a bad handle.
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetSessionInfo(real, &mut info) }, CKR_OK, "C_GetSessionInfo(real)");
    assert_eq!(info.state, CKS_RW_PUBLIC_SESSION);
    raw.close(real);
    raw.finalize();
}

#[test]
fn unknown_object_handles_are_object_handle_invalid() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let s = raw.rw();
    // A real object exists, so the bad handles are not refused merely for there being none.
    let real = raw.data_object(s);
    for o in BAD_HANDLES {
        let mut buf = [0u8; 16];
        let mut t = [CK_ATTRIBUTE { type_: CKA_LABEL, pValue: buf.as_mut_ptr().cast(), ulValueLen: len_of(&buf) }];
        assert_rv(
            unsafe { lib.C_GetAttributeValue(s, o, t.as_mut_ptr(), 1) },
            CKR_OBJECT_HANDLE_INVALID,
            &format!("C_GetAttributeValue({o})"),
        );
        assert_rv(unsafe { lib.C_DestroyObject(s, o) }, CKR_OBJECT_HANDLE_INVALID, &format!("C_DestroyObject({o})"));
        let mut copy: CK_OBJECT_HANDLE = 0;
        assert_rv(
            unsafe { lib.C_CopyObject(s, o, null_mut(), 0, &mut copy) },
            CKR_OBJECT_HANDLE_INVALID,
            &format!("C_CopyObject({o})"),
        );
        let mut t = [attr(CKA_LABEL, b"renamed")];
        assert_rv(
            unsafe { lib.C_SetAttributeValue(s, o, t.as_mut_ptr(), 1) },
            CKR_OBJECT_HANDLE_INVALID,
            &format!("C_SetAttributeValue({o})"),
        );
        let mut size: CK_ULONG = 0;
        assert_rv(
            unsafe { lib.C_GetObjectSize(s, o, &mut size) },
            CKR_OBJECT_HANDLE_INVALID,
            &format!("C_GetObjectSize({o})"),
        );
    }
    let mut size: CK_ULONG = 0;
    assert_rv(unsafe { lib.C_GetObjectSize(s, real, &mut size) }, CKR_OK, "C_GetObjectSize(real)");
    assert!(size > 0);
    raw.close(s);
    raw.finalize();
}

#[test]
fn an_unknown_slot_is_slot_id_invalid() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let mut slot_info: CK_SLOT_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetSlotInfo(NO_SLOT, &mut slot_info) }, CKR_SLOT_ID_INVALID, "C_GetSlotInfo(7)");
    let mut token_info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { lib.C_GetTokenInfo(NO_SLOT, &mut token_info) }, CKR_SLOT_ID_INVALID, "C_GetTokenInfo(7)");
    let mut h: CK_SESSION_HANDLE = 0;
    assert_rv(
        unsafe { lib.C_OpenSession(NO_SLOT, CKF_SERIAL_SESSION | CKF_RW_SESSION, null_mut(), None, &mut h) },
        CKR_SLOT_ID_INVALID,
        "C_OpenSession(7)",
    );
    let mut count: CK_ULONG = 0;
    assert_rv(
        unsafe { lib.C_GetMechanismList(NO_SLOT, null_mut(), &mut count) },
        CKR_SLOT_ID_INVALID,
        "C_GetMechanismList(7)",
    );
    let so = SO_PIN.as_bytes();
    let mut label = [b' '; 32];
    assert_rv(
        unsafe { lib.C_InitToken(NO_SLOT, ptr(so), len(so), label.as_mut_ptr()) },
        CKR_SLOT_ID_INVALID,
        "C_InitToken(7)",
    );
    assert_rv(unsafe { lib.C_CloseAllSessions(NO_SLOT) }, CKR_SLOT_ID_INVALID, "C_CloseAllSessions(7)");
    raw.finalize();
}

#[test]
fn short_buffers_are_buffer_too_small_and_report_the_length() {
    let raw = Raw::new();
    let lib = &raw.lib;

    let mut slots: [CK_SLOT_ID; 1] = [99];
    let mut count: CK_ULONG = 0;
    assert_rv(
        unsafe { lib.C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut count) },
        CKR_BUFFER_TOO_SMALL,
        "C_GetSlotList with count 0 and a buffer",
    );
    assert_eq!(count, 1, "the slot count is reported");
    assert_eq!(slots, [99], "nothing written into a buffer declared too small");

    let s = raw.rw();
    let o = raw.data_object(s); // CKA_LABEL is "hello", 5 bytes.
    let mut label = [0xAAu8; 4];
    let mut class = [0u8; std::mem::size_of::<CK_ULONG>()];
    let mut t = [
        CK_ATTRIBUTE { type_: CKA_LABEL, pValue: label.as_mut_ptr().cast(), ulValueLen: len_of(&label) },
        CK_ATTRIBUTE { type_: CKA_CLASS, pValue: class.as_mut_ptr().cast(), ulValueLen: len_of(&class) },
    ];
    assert_rv(
        unsafe { lib.C_GetAttributeValue(s, o, t.as_mut_ptr(), len_of(&t)) },
        CKR_BUFFER_TOO_SMALL,
        "C_GetAttributeValue with CKA_LABEL one byte short",
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION, "the short attribute's length");
    assert_eq!(label, [0xAA; 4], "the short buffer is left unchanged");
    assert_eq!(t[1].ulValueLen, len_of(&class), "the attribute that fit reports its length");
    assert_eq!(CK_ULONG::from_ne_bytes(class), CKO_DATA, "the attribute that fit is filled");

    let mut t = [CK_ATTRIBUTE { type_: CKA_LABEL, pValue: null_mut(), ulValueLen: 0 }];
    assert_rv(unsafe { lib.C_GetAttributeValue(s, o, t.as_mut_ptr(), 1) }, CKR_OK, "CKA_LABEL length query");
    assert_eq!(t[0].ulValueLen, 5);

    let mut exact = [0u8; 5];
    let mut t = [CK_ATTRIBUTE { type_: CKA_LABEL, pValue: exact.as_mut_ptr().cast(), ulValueLen: 5 }];
    assert_rv(unsafe { lib.C_GetAttributeValue(s, o, t.as_mut_ptr(), 1) }, CKR_OK, "CKA_LABEL into an exact buffer");
    assert_eq!((&exact, t[0].ulValueLen), (b"hello", 5));
    raw.close(s);
    raw.finalize();
}

#[test]
fn sensitive_and_foreign_attributes_are_refused_but_the_rest_are_answered() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let s = raw.user_session();

    let class = ulong(CKO_SECRET_KEY);
    let key_type = ulong(CKK_AES);
    let value = [0x42u8; 32];
    let mut t = [attr(CKA_CLASS, &class), attr(CKA_KEY_TYPE, &key_type), attr(CKA_VALUE, &value)];
    let (rv, key) = raw.create(s, &mut t);
    assert_rv(rv, CKR_OK, "C_CreateObject(AES key)");

    let mut out = [0u8; 32];
    let mut kt = [0u8; std::mem::size_of::<CK_ULONG>()];
    let mut t = [
        CK_ATTRIBUTE { type_: CKA_VALUE, pValue: out.as_mut_ptr().cast(), ulValueLen: len_of(&out) },
        CK_ATTRIBUTE { type_: CKA_KEY_TYPE, pValue: kt.as_mut_ptr().cast(), ulValueLen: len_of(&kt) },
    ];
    assert_rv(
        unsafe { lib.C_GetAttributeValue(s, key, t.as_mut_ptr(), len_of(&t)) },
        CKR_ATTRIBUTE_SENSITIVE,
        "CKA_VALUE of a sensitive AES key",
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(out, [0u8; 32], "no key byte leaves the token");
    assert_eq!(CK_ULONG::from_ne_bytes(kt), CKK_AES, "the readable attribute is still answered");

    let mut t = [CK_ATTRIBUTE { type_: CKA_VALUE, pValue: null_mut(), ulValueLen: 0 }];
    assert_rv(
        unsafe { lib.C_GetAttributeValue(s, key, t.as_mut_ptr(), 1) },
        CKR_ATTRIBUTE_SENSITIVE,
        "length query of CKA_VALUE of a sensitive AES key",
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);

    let data = raw.data_object(s);
    let mut kt = [0u8; std::mem::size_of::<CK_ULONG>()];
    let mut t = [CK_ATTRIBUTE { type_: CKA_KEY_TYPE, pValue: kt.as_mut_ptr().cast(), ulValueLen: len_of(&kt) }];
    assert_rv(
        unsafe { lib.C_GetAttributeValue(s, data, t.as_mut_ptr(), 1) },
        CKR_ATTRIBUTE_TYPE_INVALID,
        "CKA_KEY_TYPE of a data object",
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    raw.close(s);
    raw.finalize();
}

#[test]
fn bad_create_templates_get_their_exact_codes() {
    let raw = Raw::new();
    let s = raw.user_session();
    let data = ulong(CKO_DATA);
    let secret = ulong(CKO_SECRET_KEY);
    let aes = ulong(CKK_AES);
    let value32 = [7u8; 32];
    let value17 = [7u8; 17];
    let bad_class = ulong(0x1234);
    let ulong_true = ulong(1);

    let cases: Vec<(&str, Vec<CK_ATTRIBUTE>, CK_RV)> = vec![
        ("no CKA_CLASS", vec![attr(CKA_LABEL, b"x"), attr(CKA_VALUE, b"v")], CKR_TEMPLATE_INCOMPLETE),
        ("CKA_TOKEN of 2 bytes", vec![attr(CKA_CLASS, &data), attr(CKA_TOKEN, &[1, 0])], CKR_ATTRIBUTE_VALUE_INVALID),
        ("CKA_TOKEN of value 7", vec![attr(CKA_CLASS, &data), attr(CKA_TOKEN, &[7])], CKR_ATTRIBUTE_VALUE_INVALID),
        (
            "CKA_TOKEN as a CK_ULONG",
            vec![attr(CKA_CLASS, &data), attr(CKA_TOKEN, &ulong_true)],
            CKR_ATTRIBUTE_VALUE_INVALID,
        ),
        ("CKA_CLASS 0x1234", vec![attr(CKA_CLASS, &bad_class)], CKR_ATTRIBUTE_VALUE_INVALID),
        ("CKA_CLASS of 1 byte", vec![attr(CKA_CLASS, &[0])], CKR_ATTRIBUTE_VALUE_INVALID),
        (
            "CKA_KEY_TYPE on a data object",
            vec![attr(CKA_CLASS, &data), attr(CKA_KEY_TYPE, &aes)],
            CKR_ATTRIBUTE_TYPE_INVALID,
        ),
        (
            "CKA_LOCAL in a key template",
            vec![attr(CKA_CLASS, &secret), attr(CKA_KEY_TYPE, &aes), attr(CKA_VALUE, &value32), attr(CKA_LOCAL, &TRUE)],
            CKR_ATTRIBUTE_READ_ONLY,
        ),
        (
            "CKA_LABEL twice",
            vec![attr(CKA_CLASS, &data), attr(CKA_LABEL, b"a"), attr(CKA_LABEL, b"b")],
            CKR_TEMPLATE_INCONSISTENT,
        ),
        (
            "AES key with a 17-byte value",
            vec![attr(CKA_CLASS, &secret), attr(CKA_KEY_TYPE, &aes), attr(CKA_VALUE, &value17)],
            CKR_ATTRIBUTE_VALUE_INVALID,
        ),
        (
            "AES key without CKA_VALUE",
            vec![attr(CKA_CLASS, &secret), attr(CKA_KEY_TYPE, &aes)],
            CKR_TEMPLATE_INCOMPLETE,
        ),
    ];
    for (what, mut template, want) in cases {
        let (rv, h) = raw.create(s, &mut template);
        assert_rv(rv, want, &format!("C_CreateObject: {what}"));
        assert_eq!(h, 0, "{what}: a refused create wrote a handle");
    }

    // Nothing was created by any of them.
    assert_rv(unsafe { raw.lib.C_FindObjectsInit(s, null_mut(), 0) }, CKR_OK, "C_FindObjectsInit");
    let mut found: [CK_OBJECT_HANDLE; 8] = [0; 8];
    let mut count: CK_ULONG = 99;
    assert_rv(
        unsafe { raw.lib.C_FindObjects(s, found.as_mut_ptr(), len_of(&found), &mut count) },
        CKR_OK,
        "C_FindObjects",
    );
    // What a logged-in user always sees: the current master key object and version 1.
    assert_eq!(count, 2, "a refused template left an object behind");
    assert_rv(unsafe { raw.lib.C_FindObjectsFinal(s) }, CKR_OK, "C_FindObjectsFinal");
    raw.close(s);
    raw.finalize();
}

#[test]
fn objects_in_the_wrong_session_state_are_refused() {
    let raw = Raw::new();
    let data = ulong(CKO_DATA);

    let ro = raw.ro();
    let mut t = [attr(CKA_CLASS, &data), attr(CKA_TOKEN, &TRUE)];
    assert_rv(raw.create(ro, &mut t).0, CKR_SESSION_READ_ONLY, "token object in a read-only session");
    raw.close(ro);

    let rw = raw.rw();
    let mut t = [attr(CKA_CLASS, &data), attr(CKA_PRIVATE, &TRUE)];
    assert_rv(raw.create(rw, &mut t).0, CKR_USER_NOT_LOGGED_IN, "private object without login");
    raw.close(rw);
    raw.finalize();
}

#[test]
fn pin_calls_in_the_wrong_session_state_are_refused() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let new_pin = b"another-pin";

    let rw = raw.rw();
    assert_rv(
        unsafe { lib.C_InitPIN(rw, ptr(new_pin), len(new_pin)) },
        CKR_USER_NOT_LOGGED_IN,
        "C_InitPIN in a public read-write session",
    );
    let user = USER_PIN.as_bytes();
    assert_rv(unsafe { lib.C_Login(rw, 5, ptr(user), len(user)) }, CKR_USER_TYPE_INVALID, "C_Login with user type 5");
    raw.close(rw);

    let ro = raw.ro();
    assert_rv(
        unsafe { lib.C_SetPIN(ro, ptr(user), len(user), ptr(new_pin), len(new_pin)) },
        CKR_SESSION_READ_ONLY,
        "C_SetPIN in a read-only session",
    );
    raw.close(ro);

    let so = raw.rw();
    raw.login(so, CKU_SO, SO_PIN);
    assert_rv(unsafe { lib.C_InitPIN(so, ptr(b"123"), 3) }, CKR_PIN_LEN_RANGE, "C_InitPIN with a 3-byte PIN");
    raw.close(so);

    // The refused C_SetPIN and C_InitPIN left the user PIN as it was.
    let s = raw.user_session();
    raw.close(s);
    raw.finalize();
}

#[test]
fn find_operations_out_of_order_are_refused() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let s = raw.rw();
    let mut found: [CK_OBJECT_HANDLE; 4] = [0; 4];
    let mut count: CK_ULONG = 0;
    assert_rv(
        unsafe { lib.C_FindObjects(s, found.as_mut_ptr(), len_of(&found), &mut count) },
        CKR_OPERATION_NOT_INITIALIZED,
        "C_FindObjects without C_FindObjectsInit",
    );
    assert_rv(unsafe { lib.C_FindObjectsFinal(s) }, CKR_OPERATION_NOT_INITIALIZED, "C_FindObjectsFinal without init");
    assert_rv(unsafe { lib.C_FindObjectsInit(s, null_mut(), 0) }, CKR_OK, "C_FindObjectsInit");
    assert_rv(unsafe { lib.C_FindObjectsInit(s, null_mut(), 0) }, CKR_OPERATION_ACTIVE, "second C_FindObjectsInit");
    assert_rv(unsafe { lib.C_FindObjectsFinal(s) }, CKR_OK, "C_FindObjectsFinal");
    assert_rv(unsafe { lib.C_FindObjectsFinal(s) }, CKR_OPERATION_NOT_INITIALIZED, "second C_FindObjectsFinal");
    raw.close(s);
    raw.finalize();
}

#[test]
fn unsupported_session_modes_seeds_and_mechanisms_are_refused() {
    let raw = Raw::new();
    let lib = &raw.lib;
    let mut h: CK_SESSION_HANDLE = 0;
    assert_rv(
        unsafe { lib.C_OpenSession(SLOT, CKF_RW_SESSION, null_mut(), None, &mut h) },
        CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        "C_OpenSession without CKF_SERIAL_SESSION",
    );
    assert_rv(
        unsafe { lib.C_OpenSession(SLOT, 0, null_mut(), None, &mut h) },
        CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        "C_OpenSession with no flags",
    );

    let s = raw.rw();
    let mut seed = [1u8; 16];
    assert_rv(
        unsafe { lib.C_SeedRandom(s, seed.as_mut_ptr(), len_of(&seed)) },
        CKR_RANDOM_SEED_NOT_SUPPORTED,
        "C_SeedRandom",
    );
    raw.close(s);

    let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
    assert_rv(
        // Single DES: a mechanism this token will never offer.
        unsafe { lib.C_GetMechanismInfo(SLOT, CKM_DES_ECB, &mut info) },
        CKR_MECHANISM_INVALID,
        "C_GetMechanismInfo(0, CKM_DES_ECB)",
    );
    raw.finalize();
}
