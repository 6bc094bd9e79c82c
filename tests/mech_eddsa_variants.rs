//! `CKM_EDDSA` with `CK_EDDSA_PARAMS` through the C ABI: Ed25519ctx (`phFlag` false with a
//! context) and Ed25519ph (`phFlag` true, SHA-512 pre-hash) on the RFC 8032 §7.2 and §7.3
//! vectors (tests/fixtures/rfc8032/ed25519_variants.txt), one-shot and multi-part, both
//! through the `cryptoki` crate's `EddsaSignatureScheme` and a hand-built parameter; the
//! variants keep their signatures apart, and a malformed parameter is refused.

#![allow(missing_docs, clippy::cast_possible_truncation)]

mod common;
mod raw_mech;

use common::{rv_of, Fixture};
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use raw_mech::{h, Mech, Raw};

const ED25519_OID: &str = "06032b6570";

struct Vector {
    ph: bool,
    secret: Vec<u8>,
    public: Vec<u8>,
    message: Vec<u8>,
    context: Vec<u8>,
    signature: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rfc8032/ed25519_variants.txt"))
            .expect("fixture");
    let field = |s: &str| if s == "-" { Vec::new() } else { h(s) };
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Vector {
                ph: f[0] == "ph",
                secret: h(f[1]),
                public: h(f[2]),
                message: field(f[3]),
                context: field(f[4]),
                signature: h(f[5]),
            }
        })
        .collect()
}

fn import(s: &Session, v: &Vector) -> (ObjectHandle, ObjectHandle) {
    let common = |class| {
        vec![
            Attribute::Class(class),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::EcParams(h(ED25519_OID)),
            Attribute::Token(false),
        ]
    };
    let mut private = common(ObjectClass::PRIVATE_KEY);
    private.extend([Attribute::Value(v.secret.clone()), Attribute::Sign(true)]);
    let mut public = common(ObjectClass::PUBLIC_KEY);
    public.extend([Attribute::EcPoint(v.public.clone()), Attribute::Verify(true)]);
    (s.create_object(&public).expect("public key"), s.create_object(&private).expect("private key"))
}

fn scheme(v: &Vector) -> EddsaSignatureScheme<'_> {
    if v.ph {
        EddsaSignatureScheme::Ed25519ph(&v.context)
    } else {
        EddsaSignatureScheme::Ed25519ctx(&v.context)
    }
}

fn setup() -> (Fixture, Session) {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    (f, s)
}

#[test]
fn rfc_8032_ctx_and_ph_vectors_sign_and_verify_one_shot_and_in_parts() {
    let (_f, s) = setup();
    let all = vectors();
    assert_eq!(all.len(), 5, "four Ed25519ctx vectors and one Ed25519ph");
    for (i, v) in all.iter().enumerate() {
        let (public, private) = import(&s, v);
        let m = Mechanism::Eddsa(EddsaParams::new(scheme(v)));
        assert_eq!(s.sign(&m, private, &v.message).expect("C_Sign"), v.signature, "vector {i}");
        s.verify(&m, public, &v.message, &v.signature).unwrap_or_else(|e| panic!("vector {i}: C_Verify: {e}"));
        s.sign_init(&m, private).expect("C_SignInit");
        for part in v.message.chunks(3) {
            s.sign_update(part).expect("C_SignUpdate");
        }
        assert_eq!(s.sign_final().expect("C_SignFinal"), v.signature, "vector {i}: in parts");
        s.verify_init(&m, public).expect("C_VerifyInit");
        for part in v.message.chunks(7) {
            s.verify_update(part).expect("C_VerifyUpdate");
        }
        s.verify_final(&v.signature).unwrap_or_else(|e| panic!("vector {i}: C_VerifyFinal: {e}"));
        let mut bad = v.signature.clone();
        bad[5] ^= 0x40;
        assert_eq!(rv_of(s.verify(&m, public, &v.message, &bad)), RvError::SignatureInvalid, "vector {i}: tampered");
    }
}

#[test]
fn a_signature_of_one_variant_or_context_is_no_signature_of_another() {
    let (_f, s) = setup();
    let v = &vectors()[0];
    let (public, private) = import(&s, v);
    let msg = b"the same message";
    let sig_of = |scheme| s.sign(&Mechanism::Eddsa(EddsaParams::new(scheme)), private, msg).expect("C_Sign");
    let sigs = [
        sig_of(EddsaSignatureScheme::Pure),
        sig_of(EddsaSignatureScheme::Ed25519ctx(b"foo")),
        sig_of(EddsaSignatureScheme::Ed25519ctx(b"bar")),
        sig_of(EddsaSignatureScheme::Ed25519ph(b"")),
        sig_of(EddsaSignatureScheme::Ed25519ph(b"foo")),
    ];
    let schemes = || {
        [
            EddsaSignatureScheme::Pure,
            EddsaSignatureScheme::Ed25519ctx(b"foo"),
            EddsaSignatureScheme::Ed25519ctx(b"bar"),
            EddsaSignatureScheme::Ed25519ph(b""),
            EddsaSignatureScheme::Ed25519ph(b"foo"),
        ]
    };
    for (i, scheme) in schemes().into_iter().enumerate() {
        let m = Mechanism::Eddsa(EddsaParams::new(scheme));
        for (j, sig) in sigs.iter().enumerate() {
            let got = s.verify(&m, public, msg, sig);
            if i == j {
                got.unwrap_or_else(|e| panic!("scheme {i} verifies its own signature: {e}"));
            } else {
                assert_eq!(rv_of(got), RvError::SignatureInvalid, "scheme {i} refuses scheme {j}'s signature");
            }
        }
    }
    // The public key's attributes are what RFC 8032 says for this seed.
    let point = s.get_attributes(public, &[AttributeType::EcPoint]).expect("point");
    assert!(matches!(&point[0], Attribute::EcPoint(p) if p[2..] == v.public[..]));
}

#[test]
fn malformed_eddsa_parameters_are_param_invalid() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let (_, private) = import(&s, &vectors()[0]);
    let key = private.handle();
    let mut long = [7u8; 256];
    let params = |ph, ctx: &mut [u8]| CK_EDDSA_PARAMS {
        phFlag: ph,
        ulContextDataLen: ctx.len() as CK_ULONG,
        pContextData: ctx.as_mut_ptr(),
    };
    for ph in [CK_FALSE, CK_TRUE] {
        let mut m = Mech::with(CKM_EDDSA, &params(ph, &mut long));
        assert_eq!(raw.sign(&mut m, key, b"m"), Err(CKR_MECHANISM_PARAM_INVALID), "a 256-byte context, phFlag {ph}");
        let mut ok = Mech::with(CKM_EDDSA, &params(ph, &mut long[..255]));
        assert!(raw.sign(&mut ok, key, b"m").is_ok(), "a 255-byte context, phFlag {ph}");
    }
    let null_ctx = CK_EDDSA_PARAMS { phFlag: CK_FALSE, ulContextDataLen: 3, pContextData: std::ptr::null_mut() };
    assert_eq!(
        raw.sign(&mut Mech::with(CKM_EDDSA, &null_ctx), key, b"m"),
        Err(CKR_MECHANISM_PARAM_INVALID),
        "a NULL context with a length"
    );
    assert_eq!(raw.sign(&mut Mech::bytes(CKM_EDDSA, &[0; 5]), key, b"m"), Err(CKR_MECHANISM_PARAM_INVALID), "5 bytes");
}
