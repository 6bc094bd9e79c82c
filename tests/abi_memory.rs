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

use common::raw::{assert_rv, message_init, Api, GCM_PARAM_LEN};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki_sys::*;

const GUARD: u8 = 0xee;

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
            GCM_PARAM_LEN,
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
    assert_rv(message_init(&api, s, key.handle(), true), CKR_OK, "init");
    let (mut iv, mut tag) = ([7u8; 12], [0u8; 16]);
    let mut begin = gcm_params(iv.as_mut_ptr(), 12, CKG_GENERATE_COUNTER, tag.as_mut_ptr(), 16);
    let rv = unsafe {
        api.f.C_EncryptMessageBegin.expect("slot")(
            s,
            std::ptr::from_mut(&mut begin).cast(),
            GCM_PARAM_LEN,
            null_mut(),
            0,
        )
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

#[test]
fn lengths_no_buffer_can_have_are_arguments_bad() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let (api, s) = (Api::load(), session.handle());
    let mut buf = [GUARD; 16];
    let beyond = (isize::MAX as CK_ULONG) + 1;
    assert_rv(
        unsafe { api.f.C_SeedRandom.expect("slot")(s, buf.as_mut_ptr(), beyond) },
        CKR_ARGUMENTS_BAD,
        "C_SeedRandom with 2^63 bytes",
    );
    let mut sha = CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 };
    assert_rv(unsafe { api.f.C_DigestInit.expect("slot")(s, &mut sha) }, CKR_OK, "C_DigestInit");
    assert_rv(
        unsafe { api.f.C_DigestUpdate.expect("slot")(s, buf.as_mut_ptr(), beyond) },
        CKR_ARGUMENTS_BAD,
        "C_DigestUpdate with 2^63 bytes",
    );
    let mut attr = CK_ATTRIBUTE { type_: CKA_CLASS, pValue: null_mut(), ulValueLen: 0 };
    let count = (isize::MAX as CK_ULONG) / (std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG) + 1;
    assert_rv(
        unsafe { api.f.C_FindObjectsInit.expect("slot")(s, &mut attr, count) },
        CKR_ARGUMENTS_BAD,
        "C_FindObjectsInit with a template beyond isize::MAX bytes",
    );
    assert_eq!(buf, [GUARD; 16]);
}

#[test]
fn a_huge_random_request_is_an_error_not_an_abort() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let (api, s) = (Api::load(), session.handle());
    let mut buf = [GUARD; 16];
    assert_rv(
        unsafe { api.f.C_GenerateRandom.expect("slot")(s, buf.as_mut_ptr(), 1 << 62) },
        CKR_HOST_MEMORY,
        "C_GenerateRandom with 2^62 bytes",
    );
    assert_rv(
        unsafe { api.f.C_GenerateRandom.expect("slot")(s, buf.as_mut_ptr(), 1 << 63) },
        CKR_ARGUMENTS_BAD,
        "C_GenerateRandom with 2^63 bytes",
    );
    assert_eq!(buf, [GUARD; 16], "nothing written on a refusal");
    assert_rv(unsafe { api.f.C_GenerateRandom.expect("slot")(s, buf.as_mut_ptr(), 16) }, CKR_OK, "16 bytes");
    assert_ne!(buf, [GUARD; 16]);
}

#[test]
fn aliased_output_pointers_are_refused_before_anything_is_written() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let key = aes_key(&session);
    let (api, s) = (Api::load(), session.handle());

    // C_GenerateKeyPair with one handle pointer for both keys.
    let mut ec = CK_MECHANISM { mechanism: CKM_EC_KEY_PAIR_GEN, pParameter: null_mut(), ulParameterLen: 0 };
    let mut p256 = [0x06u8, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut public = [CK_ATTRIBUTE { type_: CKA_EC_PARAMS, pValue: p256.as_mut_ptr().cast(), ulValueLen: 10 }];
    let objects_before = session.find_objects(&[]).expect("find").len();
    let mut handle: CK_OBJECT_HANDLE = 0x5eed;
    let rv = unsafe {
        api.f.C_GenerateKeyPair.expect("slot")(
            s,
            &mut ec,
            public.as_mut_ptr(),
            1,
            null_mut(),
            0,
            &mut handle,
            &mut handle,
        )
    };
    assert_rv(rv, CKR_ARGUMENTS_BAD, "C_GenerateKeyPair with phPublicKey == phPrivateKey");
    assert_eq!(handle, 0x5eed, "no handle written");
    assert_eq!(session.find_objects(&[]).expect("find").len(), objects_before, "no key pair was generated");

    // C_Encrypt whose pulEncryptedDataLen lies inside pEncryptedData.
    let mut ecb = CK_MECHANISM { mechanism: CKM_AES_ECB, pParameter: null_mut(), ulParameterLen: 0 };
    assert_rv(unsafe { api.f.C_EncryptInit.expect("slot")(s, &mut ecb, key.handle()) }, CKR_OK, "C_EncryptInit");
    let mut words: [CK_ULONG; 8] = [0xeeee_eeee_eeee_eeee; 8];
    words[1] = 64;
    let out = words.as_mut_ptr().cast::<u8>();
    let mut input = [1u8; 16];
    let rv = unsafe { api.f.C_Encrypt.expect("slot")(s, input.as_mut_ptr(), 16, out, &mut words[1]) };
    assert_rv(rv, CKR_ARGUMENTS_BAD, "C_Encrypt with the length inside the output buffer");
    assert_eq!(words[0], 0xeeee_eeee_eeee_eeee, "no output written");
    assert_eq!(words[1], 64, "no length written");

    // C_EncryptMessage with pTag overlapping pIv, then pTag inside the ciphertext buffer.
    assert_rv(message_init(&api, s, key.handle(), true), CKR_OK, "init");
    let mut pt = *b"sixteen byte msg";
    // (what, tag offset, output offset) in one 64-byte region whose IV is at 0..12.
    for (what, tag_at, out_at) in [("pTag overlapping pIv", 8usize, 40usize), ("pTag inside the output", 20, 12)] {
        let mut shared = [GUARD; 64];
        shared[..12].copy_from_slice(&[3; 12]);
        let before = shared;
        let base = shared.as_mut_ptr();
        let mut p = gcm_params(base, 12, CKG_NO_GENERATE, unsafe { base.add(tag_at) }, 16);
        let mut len: CK_ULONG = 16;
        let rv = unsafe {
            api.f.C_EncryptMessage.expect("slot")(
                s,
                std::ptr::from_mut(&mut p).cast(),
                GCM_PARAM_LEN,
                null_mut(),
                0,
                pt.as_mut_ptr(),
                16,
                base.add(out_at),
                &mut len,
            )
        };
        assert_rv(rv, CKR_ARGUMENTS_BAD, what);
        assert_eq!(shared, before, "{what}: nothing written");
        assert_eq!(len, 16, "{what}: no length written");
    }
}

#[test]
fn get_attribute_value_refuses_value_buffers_that_overlap_each_other_or_the_template() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let key = aes_key(&session);
    let (api, s) = (Api::load(), session.handle());
    let get = api.f.C_GetAttributeValue.expect("slot");

    // CKA_CLASS and CKA_KEY_TYPE answered into one 8-byte buffer.
    let mut shared = [GUARD; 8];
    let mut template = [
        CK_ATTRIBUTE { type_: CKA_CLASS, pValue: shared.as_mut_ptr().cast(), ulValueLen: 8 },
        CK_ATTRIBUTE { type_: CKA_KEY_TYPE, pValue: shared.as_mut_ptr().cast(), ulValueLen: 8 },
    ];
    assert_rv(unsafe { get(s, key.handle(), template.as_mut_ptr(), 2) }, CKR_ARGUMENTS_BAD, "shared value buffer");
    assert_eq!(shared, [GUARD; 8], "nothing written");
    assert_eq!((template[0].ulValueLen, template[1].ulValueLen), (8, 8), "no length written");

    // CKA_CLASS answered into the template array itself.
    let mut template = [
        CK_ATTRIBUTE { type_: CKA_KEY_TYPE, pValue: null_mut(), ulValueLen: 0 },
        CK_ATTRIBUTE { type_: CKA_CLASS, pValue: null_mut(), ulValueLen: 8 },
    ];
    template[1].pValue = std::ptr::from_mut(&mut template[0]).cast();
    assert_rv(unsafe { get(s, key.handle(), template.as_mut_ptr(), 2) }, CKR_ARGUMENTS_BAD, "value in the template");
    assert_eq!(template[0].type_, CKA_KEY_TYPE, "the template is untouched");
    assert_eq!(template[0].ulValueLen, 0);
}
