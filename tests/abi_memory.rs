//! Memory safety of the C ABI (issue #12, item 2 and its low items): the module writes
//! only within the lengths the caller gave in the same call, refuses lengths no buffer
//! can have and aliased output pointers before writing anything, and never aborts the
//! host on a huge length.
//!
//! Every test hands the module buffers with guard bytes after them and checks the guard
//! bytes are untouched.

// Raw C ABI calls through the function list need `unsafe`; each call passes live locals
// (or deliberately wrong lengths the module must refuse before it reads or writes).
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
// Lengths here are small test buffers; CK_ULONG and usize are both 64-bit on the targets we build.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ptr::null_mut;

use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki_sys::*;

const PARAM_LEN: CK_ULONG = std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;
const GUARD: u8 = 0xee;

/// The 3.2 function list of the module the fixture loaded.
struct Api {
    _lib: cryptoki_sys::Pkcs11,
    f: CK_FUNCTION_LIST_3_2,
}

impl Api {
    fn load() -> Api {
        let lib = unsafe { cryptoki_sys::Pkcs11::new(common::module_path()) }.expect("load module");
        let mut iface: *mut CK_INTERFACE = null_mut();
        assert_eq!(unsafe { lib.C_GetInterface(null_mut(), null_mut(), &mut iface, 0) }, CKR_OK);
        let f = unsafe { *(*iface).pFunctionList.cast::<CK_FUNCTION_LIST_3_2>() };
        Api { _lib: lib, f }
    }
}

#[track_caller]
fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert_eq!(
        got,
        want,
        "{what}: got {} ({got:#x}), want {} ({want:#x})",
        collabvault_pkcs11::names::rv_name(got),
        collabvault_pkcs11::names::rv_name(want),
    );
}

fn aes_key(s: &cryptoki::session::Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(vec![0x11; 32]),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ])
    .expect("import key")
}

fn gcm_params(
    iv: *mut u8,
    iv_len: usize,
    generator: CK_GENERATOR_FUNCTION,
    tag: *mut u8,
    tag_len: usize,
) -> CK_GCM_MESSAGE_PARAMS {
    CK_GCM_MESSAGE_PARAMS {
        pIv: iv,
        ulIvLen: iv_len as CK_ULONG,
        ulIvFixedBits: if generator == CKG_NO_GENERATE { 0 } else { 32 },
        ivGenerator: generator,
        pTag: tag,
        ulTagBits: (tag_len * 8) as CK_ULONG,
    }
}

/// `C_EncryptMessageNext` with `p`, as the last part of a message.
fn next_last(api: &Api, s: CK_SESSION_HANDLE, p: &mut CK_GCM_MESSAGE_PARAMS, out: &mut [u8]) -> CK_RV {
    let mut part = b"part".to_vec();
    let mut len = out.len() as CK_ULONG;
    unsafe {
        api.f.C_EncryptMessageNext.expect("slot")(
            s,
            std::ptr::from_mut(p).cast(),
            PARAM_LEN,
            part.as_mut_ptr(),
            part.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
            CKF_END_OF_MESSAGE,
        )
    }
}

#[test]
fn encrypt_message_next_never_writes_past_a_smaller_tag_or_iv_than_begin_gave() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let key = aes_key(&session);
    let (api, s) = (Api::load(), session.handle());
    let mut m = CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: null_mut(), ulParameterLen: 0 };
    assert_rv(unsafe { api.f.C_MessageEncryptInit.expect("slot")(s, &mut m, key.handle()) }, CKR_OK, "init");
    let (mut iv, mut tag) = ([7u8; 12], [0u8; 16]);
    let mut begin = gcm_params(iv.as_mut_ptr(), 12, CKG_GENERATE_COUNTER, tag.as_mut_ptr(), 16);
    let rv = unsafe {
        api.f.C_EncryptMessageBegin.expect("slot")(s, std::ptr::from_mut(&mut begin).cast(), PARAM_LEN, null_mut(), 0)
    };
    assert_rv(rv, CKR_OK, "C_EncryptMessageBegin");

    // The Next call names a 4-byte tag (32 bits) in a 4-byte buffer followed by guards.
    let mut small_tag = [GUARD; 4 + 16];
    let mut out = [0u8; 16];
    let mut p = gcm_params(iv.as_mut_ptr(), 12, CKG_GENERATE_COUNTER, small_tag.as_mut_ptr(), 4);
    assert_rv(next_last(&api, s, &mut p, &mut out), CKR_MECHANISM_PARAM_INVALID, "Next with a 32-bit tag");
    assert_eq!(small_tag, [GUARD; 20], "nothing written through the short tag buffer");

    // The Next call names a 4-byte IV in a 4-byte buffer followed by guards.
    let mut small_iv = [GUARD; 4 + 12];
    let mut p = gcm_params(small_iv.as_mut_ptr(), 4, CKG_GENERATE_COUNTER, tag.as_mut_ptr(), 16);
    assert_rv(next_last(&api, s, &mut p, &mut out), CKR_MECHANISM_PARAM_INVALID, "Next with a 4-byte IV");
    assert_eq!(small_iv, [GUARD; 16], "nothing written through the short IV buffer");

    // The message is still whole: the Begin call's parameters finish it.
    let mut p = gcm_params(iv.as_mut_ptr(), 12, CKG_GENERATE_COUNTER, tag.as_mut_ptr(), 16);
    assert_rv(next_last(&api, s, &mut p, &mut out), CKR_OK, "Next with the Begin call's parameters");
    assert_ne!(tag, [0u8; 16], "the tag came back");
}
