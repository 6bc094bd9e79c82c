//! The PKCS#11 3.0 HMAC key generators through the C ABI: `CKM_SHA_1_KEY_GEN` …
//! `CKM_SHA512_KEY_GEN` and `CKM_SHA3_256/384/512_KEY_GEN` make local keys of their
//! hash's key type (`CKK_SHA256_HMAC` …) that sign and verify with that hash's HMAC (and
//! its `_GENERAL` form), give the same MAC as a generic secret of the same value, and are
//! refused by every other HMAC with `CKR_KEY_TYPE_INCONSISTENT`. Generic secrets keep
//! working with every HMAC.

#![allow(missing_docs)]

mod common;
mod raw_mech;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, name, ul, Mech, Raw};

/// (generator, key type, HMAC, HMAC_GENERAL).
const GENS: &[(CK_MECHANISM_TYPE, CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_MECHANISM_TYPE)] = &[
    (CKM_SHA_1_KEY_GEN, CKK_SHA_1_HMAC, CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL),
    (CKM_SHA224_KEY_GEN, CKK_SHA224_HMAC, CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL),
    (CKM_SHA256_KEY_GEN, CKK_SHA256_HMAC, CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL),
    (CKM_SHA384_KEY_GEN, CKK_SHA384_HMAC, CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL),
    (CKM_SHA512_KEY_GEN, CKK_SHA512_HMAC, CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL),
    (CKM_SHA3_256_KEY_GEN, CKK_SHA3_256_HMAC, CKM_SHA3_256_HMAC, CKM_SHA3_256_HMAC_GENERAL),
    (CKM_SHA3_384_KEY_GEN, CKK_SHA3_384_HMAC, CKM_SHA3_384_HMAC, CKM_SHA3_384_HMAC_GENERAL),
    (CKM_SHA3_512_KEY_GEN, CKK_SHA3_512_HMAC, CKM_SHA3_512_HMAC, CKM_SHA3_512_HMAC_GENERAL),
];

fn template(len: CK_ULONG) -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
    vec![
        (CKA_TOKEN, bool_attr(false)),
        (CKA_VALUE_LEN, ul(len)),
        (CKA_SIGN, bool_attr(true)),
        (CKA_VERIFY, bool_attr(true)),
        (CKA_SENSITIVE, bool_attr(false)),
        (CKA_EXTRACTABLE, bool_attr(true)),
    ]
}

#[test]
fn each_hmac_key_generator_makes_a_local_key_its_hmac_uses_and_no_other_hmac_does() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let slot = f.slot().id();
    let offered = raw.mechanisms(slot);
    let data = b"the quick brown fox".to_vec();
    for &(gen, key_type, hmac, general) in GENS {
        let what = format!("generator {gen:#x}");
        assert!(offered.contains(&gen), "{what} is not in C_GetMechanismList");
        let info = raw.info(slot, gen).expect("C_GetMechanismInfo");
        assert_eq!(info.flags & CKF_GENERATE, CKF_GENERATE, "{what}: CKF_GENERATE");
        let key =
            raw.generate(&mut Mech::plain(gen), &template(32)).unwrap_or_else(|rv| panic!("{what}: {}", name(rv)));
        assert_eq!(raw.attr(key, CKA_KEY_TYPE), Ok(ul(key_type)), "{what}: CKA_KEY_TYPE");
        assert_eq!(raw.attr(key, CKA_CLASS), Ok(ul(CKO_SECRET_KEY)), "{what}: CKA_CLASS");
        assert_eq!(raw.attr(key, CKA_LOCAL), Ok(bool_attr(true)), "{what}: CKA_LOCAL");
        assert_eq!(raw.attr(key, CKA_KEY_GEN_MECHANISM), Ok(ul(gen)), "{what}: CKA_KEY_GEN_MECHANISM");
        assert_eq!(raw.attr(key, CKA_VALUE_LEN), Ok(ul(32)), "{what}: CKA_VALUE_LEN");
        let value = raw.attr(key, CKA_VALUE).expect("CKA_VALUE");
        assert_eq!(value.len(), 32, "{what}: value length");

        let mac = raw.sign(&mut Mech::plain(hmac), key, &data).unwrap_or_else(|rv| panic!("{what}: sign {}", name(rv)));
        raw.verify(&mut Mech::plain(hmac), key, &data, &mac).expect("verify");
        let short = raw.sign(&mut Mech::ulong(general, 10), key, &data).expect("HMAC_GENERAL");
        assert_eq!(short, mac[..10], "{what}: the _GENERAL MAC is the truncated MAC");
        // The same value as a generic secret gives the same MAC: the key type restricts use only.
        let generic = raw
            .create(&[
                (CKA_CLASS, ul(CKO_SECRET_KEY)),
                (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)),
                (CKA_VALUE, value.clone()),
                (CKA_SIGN, bool_attr(true)),
                (CKA_TOKEN, bool_attr(false)),
            ])
            .expect("generic secret");
        assert_eq!(raw.sign(&mut Mech::plain(hmac), generic, &data), Ok(mac.clone()), "{what}: generic secret");
        for &(_, _, other, _) in GENS.iter().filter(|g| g.2 != hmac) {
            assert_eq!(
                raw.sign(&mut Mech::plain(other), key, &data),
                Err(CKR_KEY_TYPE_INCONSISTENT),
                "{what}: its key under HMAC {other:#x}"
            );
            raw.sign(&mut Mech::plain(other), generic, &data)
                .unwrap_or_else(|rv| panic!("{what}: a generic secret under {other:#x}: {}", name(rv)));
        }
        raw.destroy(generic);
        raw.destroy(key);
    }
}

#[test]
fn hmac_key_generation_needs_a_value_len_in_range_and_keeps_its_key_type() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let mut m = Mech::plain(CKM_SHA256_KEY_GEN);
    let no_len: Vec<_> = template(32).into_iter().filter(|(t, _)| *t != CKA_VALUE_LEN).collect();
    assert_eq!(raw.generate(&mut m, &no_len), Err(CKR_TEMPLATE_INCOMPLETE), "no CKA_VALUE_LEN");
    assert_eq!(raw.generate(&mut m, &template(0)), Err(CKR_ATTRIBUTE_VALUE_INVALID), "0 bytes");
    assert_eq!(raw.generate(&mut m, &template(513)), Err(CKR_ATTRIBUTE_VALUE_INVALID), "513 bytes");
    let mut typed = template(32);
    typed.push((CKA_KEY_TYPE, ul(CKK_SHA256_HMAC)));
    let key = raw.generate(&mut m, &typed).expect("the key type the generator makes is accepted");
    raw.destroy(key);
    let mut other = template(32);
    other.push((CKA_KEY_TYPE, ul(CKK_AES)));
    assert_eq!(raw.generate(&mut m, &other), Err(CKR_TEMPLATE_INCONSISTENT), "a template naming another key type");
    // The default key is sensitive and unextractable, like every generated secret.
    let key = raw.generate(&mut m, &[(CKA_TOKEN, bool_attr(false)), (CKA_VALUE_LEN, ul(64))]).expect("defaults");
    assert_eq!(raw.attr(key, CKA_SENSITIVE), Ok(bool_attr(true)));
    assert_eq!(raw.attr(key, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(true)));
    assert_eq!(raw.attr(key, CKA_NEVER_EXTRACTABLE), Ok(bool_attr(true)));
    assert_eq!(raw.attr(key, CKA_VALUE), Err(CKR_ATTRIBUTE_SENSITIVE));
}
