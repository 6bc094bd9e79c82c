//! The order in which the module checks a call's arguments (doc/check-order.md):
//! session handle → session state → login → mechanism → key → template. Each test is a
//! table over every function the check applies to, called through the C ABI with
//! everything *after* the check under test also wrong, so a function that looks at a
//! later argument first answers the later code and fails its row.

// Raw C ABI calls through the function list need `unsafe`; each call passes live locals.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::ptr::null_mut;

use common::raw::{assert_rv, Api};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki_sys::*;

/// A mechanism no token knows.
const NO_SUCH_MECHANISM: CK_MECHANISM_TYPE = 0x7fff_fff0;
/// An object handle no token hands out.
const NO_SUCH_OBJECT: CK_OBJECT_HANDLE = 0xdead_beef;
/// A session handle no token hands out.
const NO_SUCH_SESSION: CK_SESSION_HANDLE = 99_999;

/// The arguments every row passes: wrong in every way the row's check does not test.
struct Args {
    mechanism: CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    template: Vec<CK_ATTRIBUTE>,
    buf: [u8; 64],
    len: CK_ULONG,
    out_handle: CK_OBJECT_HANDLE,
    out_handle2: CK_OBJECT_HANDLE,
}

/// A template whose validation fails (an attribute type no class has) after the
/// attributes the row's check reads: `flags` (`CKA_TOKEN`/`CKA_PRIVATE` true).
fn template(flags: &[CK_ATTRIBUTE_TYPE]) -> Vec<CK_ATTRIBUTE> {
    static TRUE: CK_BBOOL = CK_TRUE;
    static JUNK: [u8; 3] = [1, 2, 3];
    let mut t: Vec<CK_ATTRIBUTE> = flags
        .iter()
        .map(|ty| CK_ATTRIBUTE { type_: *ty, pValue: (&raw const TRUE).cast_mut().cast(), ulValueLen: 1 })
        .collect();
    t.push(CK_ATTRIBUTE { type_: 0x7fff_0001, pValue: JUNK.as_ptr().cast_mut().cast(), ulValueLen: 3 });
    t
}

impl Args {
    fn new(mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE, template: Vec<CK_ATTRIBUTE>) -> Args {
        Args {
            mechanism: CK_MECHANISM { mechanism, pParameter: null_mut(), ulParameterLen: 0 },
            key,
            template,
            buf: [0; 64],
            len: 64,
            out_handle: 0,
            out_handle2: 0,
        }
    }

    fn junk() -> Args {
        Args::new(NO_SUCH_MECHANISM, NO_SUCH_OBJECT, template(&[]))
    }
}

type Call = fn(&Api, CK_SESSION_HANDLE, &mut Args) -> CK_RV;

macro_rules! f {
    ($api:expr, $name:ident) => {
        $api.f.$name.expect(stringify!($name))
    };
}

/// The functions that start an operation, with the session slot each fills.
fn init_calls() -> Vec<(&'static str, Call)> {
    vec![
        ("C_EncryptInit", |api, s, a| unsafe { f!(api, C_EncryptInit)(s, &mut a.mechanism, a.key) }),
        ("C_DecryptInit", |api, s, a| unsafe { f!(api, C_DecryptInit)(s, &mut a.mechanism, a.key) }),
        ("C_DigestInit", |api, s, a| unsafe { f!(api, C_DigestInit)(s, &mut a.mechanism) }),
        ("C_SignInit", |api, s, a| unsafe { f!(api, C_SignInit)(s, &mut a.mechanism, a.key) }),
        ("C_VerifyInit", |api, s, a| unsafe { f!(api, C_VerifyInit)(s, &mut a.mechanism, a.key) }),
        ("C_MessageEncryptInit", |api, s, a| unsafe { f!(api, C_MessageEncryptInit)(s, &mut a.mechanism, a.key) }),
        ("C_MessageDecryptInit", |api, s, a| unsafe { f!(api, C_MessageDecryptInit)(s, &mut a.mechanism, a.key) }),
    ]
}

/// The functions that create an object from a template (and, but for two, a mechanism).
fn creating_calls() -> Vec<(&'static str, Call)> {
    vec![
        ("C_CreateObject", |api, s, a| unsafe {
            f!(api, C_CreateObject)(s, a.template.as_mut_ptr(), a.template.len() as CK_ULONG, &mut a.out_handle)
        }),
        ("C_CopyObject", |api, s, a| unsafe {
            f!(api, C_CopyObject)(s, a.key, a.template.as_mut_ptr(), a.template.len() as CK_ULONG, &mut a.out_handle)
        }),
        ("C_GenerateKey", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            f!(api, C_GenerateKey)(s, &mut a.mechanism, a.template.as_mut_ptr(), n, &mut a.out_handle)
        }),
        ("C_GenerateKeyPair", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            let t = a.template.as_mut_ptr();
            f!(api, C_GenerateKeyPair)(s, &mut a.mechanism, t, n, t, n, &mut a.out_handle, &mut a.out_handle2)
        }),
        ("C_UnwrapKey", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            let (b, t) = (a.buf.as_mut_ptr(), a.template.as_mut_ptr());
            f!(api, C_UnwrapKey)(s, &mut a.mechanism, a.key, b, 40, t, n, &mut a.out_handle)
        }),
        ("C_DeriveKey", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            f!(api, C_DeriveKey)(s, &mut a.mechanism, a.key, a.template.as_mut_ptr(), n, &mut a.out_handle)
        }),
        ("C_UnwrapKeyAuthenticated", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            let (b, t) = (a.buf.as_mut_ptr(), a.template.as_mut_ptr());
            f!(api, C_UnwrapKeyAuthenticated)(s, &mut a.mechanism, a.key, b, 40, t, n, b, 4, &mut a.out_handle)
        }),
        ("C_EncapsulateKey", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            let (b, t) = (a.buf.as_mut_ptr(), a.template.as_mut_ptr());
            f!(api, C_EncapsulateKey)(s, &mut a.mechanism, a.key, t, n, b, &mut a.len, &mut a.out_handle)
        }),
        ("C_DecapsulateKey", |api, s, a| unsafe {
            let n = a.template.len() as CK_ULONG;
            let (b, t) = (a.buf.as_mut_ptr(), a.template.as_mut_ptr());
            f!(api, C_DecapsulateKey)(s, &mut a.mechanism, a.key, t, n, b, 40, &mut a.out_handle)
        }),
    ]
}

/// The functions that take a mechanism and a key handle, with the code an unknown key
/// handle gets.
fn keyed_calls() -> Vec<(&'static str, CK_RV, Call)> {
    let mut calls: Vec<(&'static str, CK_RV, Call)> = init_calls()
        .into_iter()
        .filter(|(name, _)| *name != "C_DigestInit")
        .map(|(name, call)| (name, CKR_KEY_HANDLE_INVALID, call))
        .collect();
    calls.extend([
        (
            "C_WrapKey",
            CKR_WRAPPING_KEY_HANDLE_INVALID,
            (|api, s, a| unsafe {
                f!(api, C_WrapKey)(s, &mut a.mechanism, a.key, a.key, a.buf.as_mut_ptr(), &mut a.len)
            }) as Call,
        ),
        ("C_UnwrapKey", CKR_UNWRAPPING_KEY_HANDLE_INVALID, creating_calls()[4].1),
        ("C_DeriveKey", CKR_KEY_HANDLE_INVALID, creating_calls()[5].1),
        ("C_EncapsulateKey", CKR_KEY_HANDLE_INVALID, creating_calls()[7].1),
        ("C_DecapsulateKey", CKR_KEY_HANDLE_INVALID, creating_calls()[8].1),
    ]);
    calls
}

/// Every function of the 3.2 list this token implements that takes a session handle.
fn session_calls() -> Vec<(&'static str, Call)> {
    let mut calls = init_calls();
    calls.extend(creating_calls());
    calls.extend(keyed_calls().into_iter().map(|(name, _, call)| (name, call)));
    calls.extend([
        ("C_CloseSession", (|api, s, _| unsafe { f!(api, C_CloseSession)(s) }) as Call),
        ("C_GetSessionInfo", |api, s, _| unsafe { f!(api, C_GetSessionInfo)(s, null_mut()) }),
        ("C_Login", |api, s, _| unsafe { f!(api, C_Login)(s, 0x7777, null_mut(), 4) }),
        ("C_LoginUser", |api, s, _| unsafe { f!(api, C_LoginUser)(s, 0x7777, null_mut(), 4, null_mut(), 4) }),
        ("C_Logout", |api, s, _| unsafe { f!(api, C_Logout)(s) }),
        ("C_InitPIN", |api, s, _| unsafe { f!(api, C_InitPIN)(s, null_mut(), 4) }),
        ("C_SetPIN", |api, s, _| unsafe { f!(api, C_SetPIN)(s, null_mut(), 4, null_mut(), 4) }),
        ("C_GetFunctionStatus", |api, s, _| unsafe { f!(api, C_GetFunctionStatus)(s) }),
        ("C_CancelFunction", |api, s, _| unsafe { f!(api, C_CancelFunction)(s) }),
        ("C_DestroyObject", |api, s, a| unsafe { f!(api, C_DestroyObject)(s, a.key) }),
        ("C_GetObjectSize", |api, s, a| unsafe { f!(api, C_GetObjectSize)(s, a.key, null_mut()) }),
        ("C_GetAttributeValue", |api, s, a| unsafe {
            f!(api, C_GetAttributeValue)(s, a.key, a.template.as_mut_ptr(), a.template.len() as CK_ULONG)
        }),
        ("C_SetAttributeValue", |api, s, a| unsafe {
            f!(api, C_SetAttributeValue)(s, a.key, a.template.as_mut_ptr(), a.template.len() as CK_ULONG)
        }),
        ("C_FindObjectsInit", |api, s, _| unsafe { f!(api, C_FindObjectsInit)(s, null_mut(), 3) }),
        ("C_FindObjects", |api, s, _| unsafe { f!(api, C_FindObjects)(s, null_mut(), 3, null_mut()) }),
        ("C_FindObjectsFinal", |api, s, _| unsafe { f!(api, C_FindObjectsFinal)(s) }),
        ("C_Encrypt", |api, s, a| unsafe { f!(api, C_Encrypt)(s, null_mut(), 3, a.buf.as_mut_ptr(), null_mut()) }),
        ("C_EncryptUpdate", |api, s, a| unsafe {
            f!(api, C_EncryptUpdate)(s, null_mut(), 3, a.buf.as_mut_ptr(), null_mut())
        }),
        ("C_EncryptFinal", |api, s, _| unsafe { f!(api, C_EncryptFinal)(s, null_mut(), null_mut()) }),
        ("C_Decrypt", |api, s, a| unsafe { f!(api, C_Decrypt)(s, null_mut(), 3, a.buf.as_mut_ptr(), null_mut()) }),
        ("C_DecryptUpdate", |api, s, a| unsafe {
            f!(api, C_DecryptUpdate)(s, null_mut(), 3, a.buf.as_mut_ptr(), null_mut())
        }),
        ("C_DecryptFinal", |api, s, _| unsafe { f!(api, C_DecryptFinal)(s, null_mut(), null_mut()) }),
        ("C_Digest", |api, s, _| unsafe { f!(api, C_Digest)(s, null_mut(), 3, null_mut(), null_mut()) }),
        ("C_DigestUpdate", |api, s, _| unsafe { f!(api, C_DigestUpdate)(s, null_mut(), 3) }),
        ("C_DigestKey", |api, s, a| unsafe { f!(api, C_DigestKey)(s, a.key) }),
        ("C_DigestFinal", |api, s, _| unsafe { f!(api, C_DigestFinal)(s, null_mut(), null_mut()) }),
        ("C_Sign", |api, s, _| unsafe { f!(api, C_Sign)(s, null_mut(), 3, null_mut(), null_mut()) }),
        ("C_SignUpdate", |api, s, _| unsafe { f!(api, C_SignUpdate)(s, null_mut(), 3) }),
        ("C_SignFinal", |api, s, _| unsafe { f!(api, C_SignFinal)(s, null_mut(), null_mut()) }),
        ("C_Verify", |api, s, _| unsafe { f!(api, C_Verify)(s, null_mut(), 3, null_mut(), 3) }),
        ("C_VerifyUpdate", |api, s, _| unsafe { f!(api, C_VerifyUpdate)(s, null_mut(), 3) }),
        ("C_VerifyFinal", |api, s, _| unsafe { f!(api, C_VerifyFinal)(s, null_mut(), 3) }),
        ("C_WrapKeyAuthenticated", |api, s, a| unsafe {
            let b = a.buf.as_mut_ptr();
            f!(api, C_WrapKeyAuthenticated)(s, &mut a.mechanism, a.key, a.key, b, 4, b, &mut a.len)
        }),
        ("C_SeedRandom", |api, s, _| unsafe { f!(api, C_SeedRandom)(s, null_mut(), 3) }),
        ("C_GenerateRandom", |api, s, _| unsafe { f!(api, C_GenerateRandom)(s, null_mut(), 3) }),
        ("C_EncryptMessage", |api, s, a| unsafe {
            f!(api, C_EncryptMessage)(s, null_mut(), 3, null_mut(), 3, null_mut(), 3, a.buf.as_mut_ptr(), null_mut())
        }),
        ("C_EncryptMessageBegin", |api, s, _| unsafe {
            f!(api, C_EncryptMessageBegin)(s, null_mut(), 3, null_mut(), 3)
        }),
        ("C_EncryptMessageNext", |api, s, _| unsafe {
            f!(api, C_EncryptMessageNext)(s, null_mut(), 3, null_mut(), 3, null_mut(), null_mut(), 0)
        }),
        ("C_MessageEncryptFinal", |api, s, _| unsafe { f!(api, C_MessageEncryptFinal)(s) }),
        ("C_DecryptMessage", |api, s, a| unsafe {
            f!(api, C_DecryptMessage)(s, null_mut(), 3, null_mut(), 3, null_mut(), 3, a.buf.as_mut_ptr(), null_mut())
        }),
        ("C_DecryptMessageBegin", |api, s, _| unsafe {
            f!(api, C_DecryptMessageBegin)(s, null_mut(), 3, null_mut(), 3)
        }),
        ("C_DecryptMessageNext", |api, s, _| unsafe {
            f!(api, C_DecryptMessageNext)(s, null_mut(), 3, null_mut(), 3, null_mut(), null_mut(), 0)
        }),
        ("C_MessageDecryptFinal", |api, s, _| unsafe { f!(api, C_MessageDecryptFinal)(s) }),
    ]);
    calls.sort_by_key(|(name, _)| *name);
    calls.dedup_by_key(|(name, _)| *name);
    calls
}

/// The exported functions that take a session handle, read from the C ABI's source
/// (`src/ffi/entry/`, the unsupported ones aside): the table must name each.
fn implemented_session_functions() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/entry");
    let mut names = BTreeSet::new();
    for file in std::fs::read_dir(dir).expect("src/ffi/entry") {
        let path = file.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "unsupported.rs" || n == "shims.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // `extern "C" fn C_X( session: CK_SESSION_HANDLE`, and the shim macros' `shape!(C_X, ...)`.
        for part in flat.split("extern \"C\" fn ").skip(1) {
            let (name, rest) = part.split_once('(').expect("fn name");
            if rest.trim_start().split_once(':').is_some_and(|(_, ty)| ty.trim_start().starts_with("CK_SESSION_HANDLE"))
            {
                names.insert(name.to_string());
            }
        }
        for part in flat.split("!(C_").skip(1) {
            let name = part.split(',').next().expect("macro argument");
            names.insert(format!("C_{name}"));
        }
    }
    assert!(names.len() > 50, "the entry files were read ({} session functions)", names.len());
    names
}

fn open(api: &Api, slot: CK_SLOT_ID, rw: bool) -> CK_SESSION_HANDLE {
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    let mut h = 0;
    assert_rv(unsafe { f!(api, C_OpenSession)(slot, flags, null_mut(), None, &mut h) }, CKR_OK, "C_OpenSession");
    h
}

#[test]
fn an_unknown_session_handle_is_answered_before_any_other_argument() {
    let fx = common::Fixture::new();
    let slot = fx.init_token().id();
    let api = Api::load();
    // A real session exists, so the handle is refused for being unknown, not for there being none.
    let real = open(&api, slot, true);
    let calls = session_calls();
    let names: BTreeSet<String> = calls.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(names, implemented_session_functions(), "the table covers every implemented session function");
    for (name, call) in &calls {
        let rv = call(&api, NO_SUCH_SESSION, &mut Args::junk());
        assert_rv(rv, CKR_SESSION_HANDLE_INVALID, name);
    }
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_rv(unsafe { f!(api, C_GetSessionInfo)(real, &mut info) }, CKR_OK, "the real session is untouched");
}

#[test]
fn an_active_operation_is_answered_before_the_mechanism() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let key = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![7; 32]),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
            Attribute::Verify(true),
        ])
        .expect("AES key");
    let api = Api::load();
    let s = session.handle();
    let starts: [(CK_MECHANISM_TYPE, &str); 7] = [
        (CKM_AES_CBC_PAD, "C_EncryptInit"),
        (CKM_AES_CBC_PAD, "C_DecryptInit"),
        (CKM_SHA256, "C_DigestInit"),
        (CKM_AES_CMAC, "C_SignInit"),
        (CKM_AES_CMAC, "C_VerifyInit"),
        (CKM_AES_GCM, "C_MessageEncryptInit"),
        (CKM_AES_GCM, "C_MessageDecryptInit"),
    ];
    let mut iv = [0u8; 16];
    for ((mechanism, name), (row, call)) in starts.iter().zip(init_calls()) {
        assert_eq!(*name, row);
        let mut start = Args::new(*mechanism, key.handle(), vec![]);
        if *mechanism == CKM_AES_CBC_PAD {
            start.mechanism.pParameter = iv.as_mut_ptr().cast();
            start.mechanism.ulParameterLen = 16;
        }
        assert_rv(call(&api, s, &mut start), CKR_OK, &format!("{name} (the operation starts)"));
        // Again, with an unknown mechanism and key: the session's state answers first.
        assert_rv(call(&api, s, &mut Args::junk()), CKR_OPERATION_ACTIVE, name);
    }
}

#[test]
fn a_read_only_session_refuses_a_token_object_before_the_mechanism_or_the_template() {
    let fx = common::Fixture::new();
    let slot = fx.init_token().id();
    let api = Api::load();
    let ro = open(&api, slot, false);
    for (name, call) in creating_calls() {
        let mut a = Args::new(NO_SUCH_MECHANISM, NO_SUCH_OBJECT, template(&[CKA_TOKEN]));
        assert_rv(call(&api, ro, &mut a), CKR_SESSION_READ_ONLY, name);
    }
}

#[test]
fn a_private_object_needs_a_login_before_the_mechanism_or_the_template_is_looked_at() {
    let fx = common::Fixture::new();
    let slot = fx.init_token().id();
    let api = Api::load();
    let public = open(&api, slot, true);
    for (name, call) in creating_calls() {
        let mut a = Args::new(NO_SUCH_MECHANISM, NO_SUCH_OBJECT, template(&[CKA_PRIVATE]));
        assert_rv(call(&api, public, &mut a), CKR_USER_NOT_LOGGED_IN, name);
    }
}

#[test]
fn the_mechanism_is_answered_before_the_key_and_the_key_before_the_template() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let api = Api::load();
    let s = session.handle();
    for (name, key_code, call) in keyed_calls() {
        assert_rv(call(&api, s, &mut Args::junk()), CKR_MECHANISM_INVALID, name);
        // A mechanism the token offers (its parameter aside) and an unknown key.
        let known = match name {
            "C_WrapKey" | "C_UnwrapKey" => CKM_AES_KEY_WRAP,
            "C_DeriveKey" => CKM_ECDH1_DERIVE,
            "C_EncapsulateKey" | "C_DecapsulateKey" => CKM_ML_KEM,
            "C_SignInit" | "C_VerifyInit" => CKM_SHA256_HMAC,
            "C_MessageEncryptInit" | "C_MessageDecryptInit" => CKM_AES_GCM,
            _ => CKM_AES_ECB,
        };
        let mut a = Args::new(known, NO_SUCH_OBJECT, template(&[]));
        if known == CKM_ECDH1_DERIVE {
            // CKM_ECDH1_DERIVE takes a parameter; a well-formed one over a junk point.
            static POINT: [u8; 65] = [4; 65];
            let params = Box::leak(Box::new(CK_ECDH1_DERIVE_PARAMS {
                kdf: CKD_NULL,
                ulSharedDataLen: 0,
                pSharedData: null_mut(),
                ulPublicDataLen: 65,
                pPublicData: POINT.as_ptr().cast_mut(),
            }));
            a.mechanism.pParameter = (params as *mut CK_ECDH1_DERIVE_PARAMS).cast();
            a.mechanism.ulParameterLen = std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG;
        }
        assert_rv(call(&api, s, &mut a), key_code, &format!("{name} with a known mechanism"));
    }
}
