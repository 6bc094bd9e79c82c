//! The PKCS#11 3.0 message-based AEAD API with `CKM_AES_GCM`, through the 3.2 function
//! list: per-message parameters, the tag returned through `CK_GCM_MESSAGE_PARAMS`,
//! token-generated IVs, and messages in parts.

// Raw C ABI calls through the function list need `unsafe`; each call passes live locals.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
// Lengths here are small test buffers; CK_ULONG and usize are both 64-bit on the targets we build.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ptr::null_mut;

use common::raw::{decrypt_message, encrypt_message, message_init, message_params, Api, GCM_PARAM_LEN};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki_sys::*;

// McGrew & Viega GCM test case 16 (AES-256, 96-bit IV, AAD).
const KEY: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const IV: &str = "cafebabefacedbaddecaf888";
const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const CT: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
const TAG: &str = "76fc6ece0f4e1768cddf8853bb2d551b";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// A user session and an AES-256 key holding the vector's key bytes.
fn setup(fx: &common::Fixture) -> (cryptoki::session::Session, ObjectHandle) {
    let slot = fx.init_token();
    let s = fx.user_session(slot);
    let key = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(h(KEY)),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ])
        .expect("import key");
    (s, key)
}

#[test]
fn a_caller_iv_message_matches_the_gcm_known_answer_and_returns_the_tag_in_the_parameter() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OK);
    let (mut iv, mut tag) = (h(IV), vec![0u8; 16]);
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let (rv, ct) = encrypt_message(&api, s, &mut p, &mut h(AAD), &mut h(PT));
    assert_eq!((rv, ct), (CKR_OK, h(CT)));
    assert_eq!(tag, h(TAG), "the tag comes back through pTag");
    assert_eq!(unsafe { api.f.C_MessageEncryptFinal.expect("slot")(s) }, CKR_OK);

    assert_eq!(message_init(&api, s, key.handle(), false), CKR_OK);
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let (rv, pt) = decrypt_message(&api, s, &mut p, &mut h(AAD), &mut h(CT));
    assert_eq!((rv, pt), (CKR_OK, h(PT)));
}

#[test]
fn a_counter_generator_writes_fresh_ivs_after_the_fixed_prefix() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OK);
    let mut sent = Vec::new();
    for n in 1u64..=2 {
        let (mut iv, mut tag) = (vec![1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0], vec![0u8; 16]);
        let mut p = message_params(&mut iv, 32, CKG_GENERATE_COUNTER, &mut tag);
        let (rv, ct) = encrypt_message(&api, s, &mut p, &mut h(AAD), &mut b"message".to_vec());
        assert_eq!(rv, CKR_OK);
        assert_eq!(&iv[..4], &[1, 2, 3, 4], "prefix kept");
        assert_eq!(&iv[4..], &n.to_be_bytes(), "counter {n} written back");
        sent.push((iv, tag, ct));
    }
    assert_eq!(message_init(&api, s, key.handle(), false), CKR_OK);
    for (mut iv, mut tag, mut ct) in sent {
        let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
        let (rv, pt) = decrypt_message(&api, s, &mut p, &mut h(AAD), &mut ct);
        assert_eq!((rv, pt), (CKR_OK, b"message".to_vec()));
    }
}

#[test]
fn a_length_query_returns_the_size_and_consumes_no_iv() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OK);
    let (mut iv, mut tag) = (vec![9; 12], vec![0u8; 16]);
    let mut p = message_params(&mut iv, 32, CKG_GENERATE_COUNTER, &mut tag);
    let mut pt = b"twelve bytes".to_vec();
    let mut aad = Vec::new();
    let mut len: CK_ULONG = 0;
    let rv = unsafe {
        api.f.C_EncryptMessage.expect("slot")(
            s,
            std::ptr::from_mut(&mut p).cast(),
            GCM_PARAM_LEN,
            aad.as_mut_ptr(),
            0,
            pt.as_mut_ptr(),
            12,
            null_mut(),
            &mut len,
        )
    };
    assert_eq!((rv, len), (CKR_OK, 12));
    assert_eq!(iv, vec![9; 12], "no IV chosen for a query");
    let mut p = message_params(&mut iv, 32, CKG_GENERATE_COUNTER, &mut tag);
    assert_eq!(encrypt_message(&api, s, &mut p, &mut aad, &mut pt).0, CKR_OK);
    assert_eq!(&iv[4..], &1u64.to_be_bytes(), "the first real message still gets counter 1");
}

#[test]
fn a_message_in_parts_equals_the_one_shot_message_both_ways() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    let pt = h(PT);
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OK);
    let (mut iv, mut tag) = (h(IV), vec![0u8; 16]);
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let pp = std::ptr::from_mut(&mut p).cast();
    let mut aad = h(AAD);
    assert_eq!(
        unsafe {
            api.f.C_EncryptMessageBegin.expect("slot")(s, pp, GCM_PARAM_LEN, aad.as_mut_ptr(), aad.len() as CK_ULONG)
        },
        CKR_OK
    );
    let mut ct = Vec::new();
    let chunks: Vec<&[u8]> = pt.chunks(25).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let mut part = chunk.to_vec();
        let mut out = vec![0u8; pt.len()];
        let mut len = out.len() as CK_ULONG;
        let flags = if last { CKF_END_OF_MESSAGE } else { 0 };
        let next = api.f.C_EncryptMessageNext.expect("slot");
        let rv = unsafe {
            next(s, pp, GCM_PARAM_LEN, part.as_mut_ptr(), part.len() as CK_ULONG, out.as_mut_ptr(), &mut len, flags)
        };
        assert_eq!(rv, CKR_OK, "part {i}");
        ct.extend_from_slice(&out[..len as usize]);
    }
    assert_eq!(ct, h(CT));
    assert_eq!(tag, h(TAG));

    assert_eq!(message_init(&api, s, key.handle(), false), CKR_OK);
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let pp = std::ptr::from_mut(&mut p).cast();
    assert_eq!(
        unsafe {
            api.f.C_DecryptMessageBegin.expect("slot")(s, pp, GCM_PARAM_LEN, aad.as_mut_ptr(), aad.len() as CK_ULONG)
        },
        CKR_OK
    );
    let (first, rest) = ct.split_at(30);
    let mut got = Vec::new();
    for (part, flags) in [(first, 0), (rest, CKF_END_OF_MESSAGE)] {
        let mut part = part.to_vec();
        let mut out = vec![0u8; pt.len()];
        let mut len = out.len() as CK_ULONG;
        let next = api.f.C_DecryptMessageNext.expect("slot");
        let rv = unsafe {
            next(s, pp, GCM_PARAM_LEN, part.as_mut_ptr(), part.len() as CK_ULONG, out.as_mut_ptr(), &mut len, flags)
        };
        assert_eq!(rv, CKR_OK);
        assert!(flags != 0 || len == 0, "no plaintext before the tag is checked");
        got.extend_from_slice(&out[..len as usize]);
    }
    assert_eq!(got, pt);
}

#[test]
fn a_wrong_tag_or_a_generated_iv_on_decrypt_is_refused() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    assert_eq!(message_init(&api, s, key.handle(), false), CKR_OK);
    let (mut iv, mut tag) = (h(IV), h(TAG));
    tag[0] ^= 1;
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let (rv, _) = decrypt_message(&api, s, &mut p, &mut h(AAD), &mut h(CT));
    assert_eq!(rv, CKR_AEAD_DECRYPT_FAILED, "the 3.0 API's own code for a tag that does not verify");
    let mut p = message_params(&mut iv, 32, CKG_GENERATE_COUNTER, &mut tag);
    let (rv, _) = decrypt_message(&api, s, &mut p, &mut h(AAD), &mut h(CT));
    assert_eq!(rv, CKR_MECHANISM_PARAM_INVALID);
}

#[test]
fn the_operation_lifecycle_follows_the_spec() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    let (mut iv, mut tag) = (h(IV), vec![0u8; 16]);
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    assert_eq!(encrypt_message(&api, s, &mut p, &mut h(AAD), &mut h(PT)).0, CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OK);
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OPERATION_ACTIVE);
    assert_eq!(unsafe { api.f.C_MessageEncryptFinal.expect("slot")(s) }, CKR_OK);
    assert_eq!(unsafe { api.f.C_MessageEncryptFinal.expect("slot")(s) }, CKR_OPERATION_NOT_INITIALIZED);
    let mut sha = CK_MECHANISM { mechanism: CKM_SHA256, pParameter: null_mut(), ulParameterLen: 0 };
    assert_eq!(unsafe { api.f.C_MessageEncryptInit.expect("slot")(s, &mut sha, key.handle()) }, CKR_MECHANISM_INVALID);
}

/// `C_EncryptMessage`/`C_DecryptMessage` with `n` bytes of `buf` at `input` in and the
/// output at `output` (offsets into the one buffer), the AAD at `aad` in it too.
fn message_in_buffer(
    f: CK_C_EncryptMessage,
    s: CK_SESSION_HANDLE,
    p: &mut CK_GCM_MESSAGE_PARAMS,
    buf: &mut [u8],
    (aad, aad_len): (usize, usize),
    (input, n): (usize, usize),
    output: usize,
) -> (CK_RV, usize) {
    let base = buf.as_mut_ptr();
    let mut len = (buf.len() - output) as CK_ULONG;
    let rv = unsafe {
        f.expect("slot")(
            s,
            std::ptr::from_mut(p).cast(),
            GCM_PARAM_LEN,
            base.add(aad),
            aad_len as CK_ULONG,
            base.add(input),
            n as CK_ULONG,
            base.add(output),
            &mut len,
        )
    };
    (rv, len as usize)
}

/// One-shot messages work straight in the caller's output buffer, so C callers' habits
/// must hold there: input and output in one buffer (or overlapping by a byte), the AAD
/// inside the output buffer, and a tag that does not verify leaves no plaintext behind.
#[test]
fn one_shot_messages_work_in_place_and_a_failed_tag_leaves_the_output_wiped() {
    let fx = common::Fixture::new();
    let (session, key) = setup(&fx);
    let (api, s) = (Api::load(), session.handle());
    let (pt, ct) = (h(PT), h(CT));
    let (mut iv, mut tag) = (h(IV), vec![0u8; 16]);

    // Encrypt in place, the AAD at the end of the same buffer, which the output (the
    // buffer's whole length from 0) covers.
    assert_eq!(message_init(&api, s, key.handle(), true), CKR_OK);
    let mut buf = [pt.clone(), h(AAD)].concat();
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let aad = (pt.len(), h(AAD).len());
    let (rv, n) = message_in_buffer(api.f.C_EncryptMessage, s, &mut p, &mut buf, aad, (0, pt.len()), 0);
    assert_eq!((rv, &buf[..n]), (CKR_OK, ct.as_slice()), "in place, AAD inside the output buffer");
    assert_eq!(tag, h(TAG));
    assert_eq!(unsafe { api.f.C_MessageEncryptFinal.expect("slot")(s) }, CKR_OK);

    // Decrypt with the output starting one byte before the input.
    assert_eq!(message_init(&api, s, key.handle(), false), CKR_OK);
    let mut buf = [vec![0u8], ct.clone(), h(AAD)].concat();
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut tag);
    let aad = (1 + ct.len(), h(AAD).len());
    let (rv, n) = message_in_buffer(api.f.C_DecryptMessage, s, &mut p, &mut buf, aad, (1, ct.len()), 0);
    assert_eq!((rv, &buf[..n]), (CKR_OK, pt.as_slice()), "output overlapping the input by a byte");

    // A flipped tag: refused, and the output buffer holds zeros, not unverified plaintext.
    let mut bad_tag = h(TAG);
    bad_tag[15] ^= 0x80;
    let mut p = message_params(&mut iv, 0, CKG_NO_GENERATE, &mut bad_tag);
    let mut out = vec![0x5au8; ct.len()];
    let mut len = out.len() as CK_ULONG;
    let rv = unsafe {
        api.f.C_DecryptMessage.expect("slot")(
            s,
            std::ptr::from_mut(&mut p).cast(),
            GCM_PARAM_LEN,
            h(AAD).as_mut_ptr(),
            h(AAD).len() as CK_ULONG,
            ct.clone().as_mut_ptr(),
            ct.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(rv, CKR_AEAD_DECRYPT_FAILED);
    assert!(out.iter().all(|&b| b == 0), "a refused message leaves the output wiped");
}
