//! What the fuzzers found (tests/fuzz_abi.rs, tests/fuzz_decoders.rs), one test per
//! finding, each naming the seed that found it (`FUZZ_SEED=<seed>` replays the case with
//! the fuzzer of that time) and holding the fix with the smallest input that shows it.

// Raw C ABI calls through the function list need `unsafe`; each call passes live locals.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ptr::null_mut;

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::vendor::{CKM_CV_REWRAP_RECORD, CKM_CV_ROTATE_MASTER};
use common::raw::{assert_rv, Api};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use cryptoki_sys::*;

macro_rules! f {
    ($api:expr, $name:ident) => {
        $api.f.$name.expect(stringify!($name))
    };
}

/// Seed 0xc4244a20324e171d: `C_Login(CKU_CONTEXT_SPECIFIC)` with nobody logged in
/// answered CKR_USER_NOT_LOGGED_IN, which is not among C_Login's codes; §5.6 calls any
/// use of it without an operation that needs it improper: CKR_OPERATION_NOT_INITIALIZED.
#[test]
fn a_context_specific_login_without_an_operation_is_operation_not_initialized() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.pkcs11.open_rw_session(slot).expect("open");
    let api = Api::load();
    let mut pin = common::USER_PIN.as_bytes().to_vec();
    let login = |pin: &mut Vec<u8>| unsafe {
        f!(api, C_Login)(session.handle(), CKU_CONTEXT_SPECIFIC, pin.as_mut_ptr(), pin.len() as CK_ULONG)
    };
    assert_rv(login(&mut pin), CKR_OPERATION_NOT_INITIALIZED, "nobody logged in");
    session.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("user login");
    assert_rv(login(&mut pin), CKR_OPERATION_NOT_INITIALIZED, "the user logged in");
}

/// Seed 0x46ab84c37c6408fa: `C_Encrypt` under `CKM_CV_REWRAP_RECORD` of bytes that are
/// not a wrap record answered CKR_WRAPPED_KEY_INVALID, which C_Encrypt may not return:
/// the record is the call's input data, so it is CKR_DATA_INVALID.
#[test]
fn rewrapping_bytes_that_are_not_a_record_is_data_invalid() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let api = Api::load();
    let s = session.handle();
    let mut rotate = CK_MECHANISM { mechanism: CKM_CV_ROTATE_MASTER, pParameter: null_mut(), ulParameterLen: 0 };
    let mut master = 0;
    assert_rv(unsafe { f!(api, C_GenerateKey)(s, &mut rotate, null_mut(), 0, &mut master) }, CKR_OK, "rotate");
    let mut m = CK_MECHANISM { mechanism: CKM_CV_REWRAP_RECORD, pParameter: null_mut(), ulParameterLen: 0 };
    for input in [&b"x"[..], &[0u8; 48][..], b"CVWR\x01\x01\x04main"] {
        assert_rv(unsafe { f!(api, C_EncryptInit)(s, &mut m, master) }, CKR_OK, "C_EncryptInit");
        let mut data = input.to_vec();
        let mut out = [0u8; 256];
        let mut len = out.len() as CK_ULONG;
        let rv =
            unsafe { f!(api, C_Encrypt)(s, data.as_mut_ptr(), data.len() as CK_ULONG, out.as_mut_ptr(), &mut len) };
        assert_rv(rv, CKR_DATA_INVALID, "C_Encrypt of a non-record");
    }
    // The multi-part form, the fuzzer's path: the record arrives at C_EncryptFinal.
    assert_rv(unsafe { f!(api, C_EncryptInit)(s, &mut m, master) }, CKR_OK, "C_EncryptInit");
    let mut out = [0u8; 48];
    let mut len = out.len() as CK_ULONG;
    assert_rv(unsafe { f!(api, C_EncryptFinal)(s, out.as_mut_ptr(), &mut len) }, CKR_DATA_INVALID, "C_EncryptFinal");
}

/// Seed 0xa5f1e2493cc6bc12 (fuzz_config_file): a workspace name of 256 bytes parsed,
/// but a wrap record holds its workspace's name in a one-byte length, so every wrap in
/// that workspace failed at run time with CKR_GENERAL_ERROR. The config now refuses it.
#[test]
fn a_workspace_name_no_wrap_record_can_hold_is_refused_by_the_config() {
    let text = |n: usize| format!("store_dir = \"/tmp/x\"\n[[workspace]]\nname = \"{}\"\n", "x".repeat(n));
    assert!(Config::parse(&text(255)).is_ok(), "255 bytes fit");
    let why = Config::parse(&text(256)).expect_err("256 bytes do not");
    assert!(why.contains("longer than 255 bytes"), "{why}");
}
