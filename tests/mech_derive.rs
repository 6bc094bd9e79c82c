//! The secret-key derivations through the C ABI: `CKM_CONCATENATE_BASE_AND_KEY`,
//! `CKM_CONCATENATE_BASE_AND_DATA`, `CKM_CONCATENATE_DATA_AND_BASE`,
//! `CKM_XOR_BASE_AND_DATA`, `CKM_EXTRACT_KEY_FROM_KEY` (the spec's §2.40 example),
//! `CKM_AES_ECB_ENCRYPT_DATA`/`CKM_AES_CBC_ENCRYPT_DATA` (NIST SP 800-38A F.1.1/F.2.1
//! blocks), `CKM_HKDF_DERIVE` (RFC 5869 Appendix A.1 and A.3) and `CKM_HKDF_KEY_GEN`:
//! the derived values, the lengths, the spec's sensitivity rules, the second key's checks
//! and the parameter errors.

#![allow(missing_docs)]

mod common;
mod raw_mech;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, h, name, ul, Mech, Raw};

type Tmpl = Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>;

/// A session secret key that derives; `readable`: not sensitive and extractable.
fn secret(raw: &Raw, key_type: CK_KEY_TYPE, value: &[u8], readable: bool) -> CK_OBJECT_HANDLE {
    raw.create(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(key_type)),
        (CKA_VALUE, value.to_vec()),
        (CKA_DERIVE, bool_attr(true)),
        (CKA_TOKEN, bool_attr(false)),
        (CKA_SENSITIVE, bool_attr(!readable)),
        (CKA_EXTRACTABLE, bool_attr(readable)),
    ])
    .unwrap_or_else(|rv| panic!("C_CreateObject: {}", name(rv)))
}

/// A template for a readable generic secret, of `len` bytes if given.
fn readable(len: Option<CK_ULONG>) -> Tmpl {
    let mut t = vec![
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)),
        (CKA_SENSITIVE, bool_attr(false)),
        (CKA_EXTRACTABLE, bool_attr(true)),
        (CKA_TOKEN, bool_attr(false)),
    ];
    if let Some(l) = len {
        t.push((CKA_VALUE_LEN, ul(l)));
    }
    t
}

fn string_data(data: &mut [u8]) -> CK_KEY_DERIVATION_STRING_DATA {
    CK_KEY_DERIVATION_STRING_DATA { pData: data.as_mut_ptr(), ulLen: data.len() as CK_ULONG }
}

fn value(raw: &Raw, k: CK_OBJECT_HANDLE) -> Vec<u8> {
    raw.attr(k, CKA_VALUE).unwrap_or_else(|rv| panic!("CKA_VALUE: {}", name(rv)))
}

fn setup() -> (Fixture, cryptoki::session::Session) {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    (f, s)
}

#[test]
fn concatenation_xor_and_extraction_give_the_spec_values() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let base = secret(&raw, CKK_GENERIC_SECRET, &[1, 2, 3, 4], true);
    let other = secret(&raw, CKK_AES, &[9; 16], true);
    let mut data = *b"\xa0\xb0\xc0";

    let sd = string_data(&mut data);
    let mut m = Mech::with(CKM_CONCATENATE_BASE_AND_DATA, &sd);
    let k = raw.derive(&mut m, base, &readable(None)).expect("base||data");
    assert_eq!(value(&raw, k), [1, 2, 3, 4, 0xa0, 0xb0, 0xc0]);
    let k = raw.derive(&mut m, base, &readable(Some(5))).expect("leading 5");
    assert_eq!(value(&raw, k), [1, 2, 3, 4, 0xa0]);
    assert_eq!(raw.derive(&mut m, base, &readable(Some(8))), Err(CKR_KEY_SIZE_RANGE), "longer than base||data");

    let mut m = Mech::with(CKM_CONCATENATE_DATA_AND_BASE, &sd);
    let k = raw.derive(&mut m, base, &readable(None)).expect("data||base");
    assert_eq!(value(&raw, k), [0xa0, 0xb0, 0xc0, 1, 2, 3, 4]);

    let mut m = Mech::with(CKM_XOR_BASE_AND_DATA, &sd);
    let k = raw.derive(&mut m, base, &readable(None)).expect("xor");
    assert_eq!(value(&raw, k), [0xa1, 0xb2, 0xc3], "the length of the shorter operand");

    let mut m = Mech::ulong(CKM_CONCATENATE_BASE_AND_KEY, other);
    let k = raw.derive(&mut m, base, &readable(None)).expect("base||key");
    assert_eq!(value(&raw, k), [&[1u8, 2, 3, 4][..], &[9; 16]].concat());
    // An AES key of 20 bytes does not exist: the template's key type is checked.
    let mut aes = readable(None);
    aes[1].1 = ul(CKK_AES);
    assert_eq!(raw.derive(&mut m, base, &aes), Err(CKR_ATTRIBUTE_VALUE_INVALID), "a 20-byte AES key");
    aes.push((CKA_VALUE_LEN, ul(16)));
    let k = raw.derive(&mut m, base, &aes).expect("a 16-byte AES key from the leading bytes");
    assert_eq!(raw.attr(k, CKA_KEY_TYPE), Ok(ul(CKK_AES)));

    // PKCS#11 §2.40.6's example: 0x329F84A9 from bit 21, two bytes -> 0x9526.
    let spec = secret(&raw, CKK_GENERIC_SECRET, &[0x32, 0x9f, 0x84, 0xa9], true);
    let mut m = Mech::ulong(CKM_EXTRACT_KEY_FROM_KEY, 21);
    let k = raw.derive(&mut m, spec, &readable(Some(2))).expect("extract");
    assert_eq!(value(&raw, k), [0x95, 0x26]);
    assert_eq!(raw.derive(&mut m, spec, &readable(None)), Err(CKR_TEMPLATE_INCOMPLETE), "extract needs a length");
    assert_eq!(
        raw.derive(&mut Mech::ulong(CKM_EXTRACT_KEY_FROM_KEY, 32), spec, &readable(Some(2))),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
}

#[test]
fn a_key_made_of_a_sensitive_or_unextractable_key_s_bits_stays_so() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let hidden = secret(&raw, CKK_GENERIC_SECRET, &[7; 16], false);
    let open = secret(&raw, CKK_GENERIC_SECRET, &[8; 16], true);
    let mut data = [0u8; 4];
    let sd = string_data(&mut data);
    for (what, mut m, base) in [
        ("base||data of a sensitive base", Mech::with(CKM_CONCATENATE_BASE_AND_DATA, &sd), hidden),
        ("xor of a sensitive base", Mech::with(CKM_XOR_BASE_AND_DATA, &sd), hidden),
        ("extract from a sensitive base", Mech::ulong(CKM_EXTRACT_KEY_FROM_KEY, 3), hidden),
        ("an open base || a sensitive key", Mech::ulong(CKM_CONCATENATE_BASE_AND_KEY, hidden), open),
    ] {
        let k = raw.derive(&mut m, base, &readable(Some(4))).unwrap_or_else(|rv| panic!("{what}: {}", name(rv)));
        assert_eq!(raw.attr(k, CKA_SENSITIVE), Ok(bool_attr(true)), "{what}: CKA_SENSITIVE");
        assert_eq!(raw.attr(k, CKA_EXTRACTABLE), Ok(bool_attr(false)), "{what}: CKA_EXTRACTABLE");
        assert_eq!(raw.attr(k, CKA_VALUE), Err(CKR_ATTRIBUTE_SENSITIVE), "{what}: the value cannot be read");
        // Created keys were never always sensitive, so neither is what they make.
        assert_eq!(raw.attr(k, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(false)), "{what}: CKA_ALWAYS_SENSITIVE");
        assert_eq!(raw.attr(k, CKA_LOCAL), Ok(bool_attr(false)), "{what}: CKA_LOCAL");
    }
    // A generated (always sensitive, never extractable) base passes both on.
    let generated = raw
        .generate(
            &mut Mech::plain(CKM_GENERIC_SECRET_KEY_GEN),
            &[(CKA_VALUE_LEN, ul(32)), (CKA_DERIVE, bool_attr(true)), (CKA_TOKEN, bool_attr(false))],
        )
        .expect("generate");
    let k = raw.derive(&mut Mech::with(CKM_CONCATENATE_BASE_AND_DATA, &sd), generated, &[]).expect("derive");
    assert_eq!(raw.attr(k, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(true)));
    assert_eq!(raw.attr(k, CKA_NEVER_EXTRACTABLE), Ok(bool_attr(true)));
    // With an open base and an open second key, the template decides.
    let k = raw.derive(&mut Mech::ulong(CKM_CONCATENATE_BASE_AND_KEY, open), open, &readable(None)).expect("open");
    assert_eq!(value(&raw, k), [8u8; 32]);
}

#[test]
fn the_second_key_answers_to_the_same_checks_as_the_base_key() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let base = secret(&raw, CKK_GENERIC_SECRET, &[1; 16], true);
    let no_derive = raw
        .create(&[
            (CKA_CLASS, ul(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)),
            (CKA_VALUE, vec![2; 16]),
            (CKA_TOKEN, bool_attr(false)),
        ])
        .expect("key");
    let t = readable(None);
    let mut m = Mech::ulong(CKM_CONCATENATE_BASE_AND_KEY, no_derive);
    assert_eq!(raw.derive(&mut m, base, &t), Err(CKR_KEY_FUNCTION_NOT_PERMITTED), "second key without CKA_DERIVE");
    let mut m = Mech::ulong(CKM_CONCATENATE_BASE_AND_KEY, 0x7fff_fff0);
    assert_eq!(raw.derive(&mut m, base, &t), Err(CKR_KEY_HANDLE_INVALID), "second key handle invalid");
    let data_object = raw
        .create(&[(CKA_CLASS, ul(CKO_DATA)), (CKA_VALUE, vec![3; 4]), (CKA_TOKEN, bool_attr(false))])
        .expect("data object");
    let mut m = Mech::ulong(CKM_CONCATENATE_BASE_AND_KEY, data_object);
    assert_eq!(raw.derive(&mut m, base, &t), Err(CKR_KEY_TYPE_INCONSISTENT), "a data object as the second key");
    for (ty, len) in
        [(CKM_CONCATENATE_BASE_AND_DATA, 3usize), (CKM_CONCATENATE_BASE_AND_KEY, 0), (CKM_XOR_BASE_AND_DATA, 7)]
    {
        let mut m = Mech::bytes(ty, &vec![0; len]);
        assert_eq!(raw.derive(&mut m, base, &t), Err(CKR_MECHANISM_PARAM_INVALID), "{ty:#x}: a {len}-byte parameter");
    }
}

#[test]
fn aes_ecb_and_cbc_encrypt_data_derive_the_sp800_38a_blocks() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let base = secret(&raw, CKK_AES, &h("2b7e151628aed2a6abf7158809cf4f3c"), false);
    let mut pt = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
    let sd = string_data(&mut pt);
    let k = raw.derive(&mut Mech::with(CKM_AES_ECB_ENCRYPT_DATA, &sd), base, &readable(None)).expect("ECB");
    assert_eq!(hex::encode(value(&raw, k)), "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf");
    let cbc = CK_AES_CBC_ENCRYPT_DATA_PARAMS {
        iv: h("000102030405060708090a0b0c0d0e0f").try_into().expect("16"),
        pData: pt.as_mut_ptr(),
        length: pt.len() as CK_ULONG,
    };
    let k = raw.derive(&mut Mech::with(CKM_AES_CBC_ENCRYPT_DATA, &cbc), base, &readable(Some(16))).expect("CBC");
    assert_eq!(hex::encode(value(&raw, k)), "7649abac8119b246cee98e9b12e9197d");
    // The derived key is not readable when the template does not ask: secret keys default to sensitive.
    let aes_key = [(CKA_KEY_TYPE, ul(CKK_AES)), (CKA_TOKEN, bool_attr(false))];
    let k = raw.derive(&mut Mech::with(CKM_AES_ECB_ENCRYPT_DATA, &sd), base, &aes_key).expect("an AES-256 key");
    assert_eq!(raw.attr(k, CKA_VALUE_LEN), Ok(ul(32)));
    assert_eq!(raw.attr(k, CKA_VALUE), Err(CKR_ATTRIBUTE_SENSITIVE));
    let mut odd = [0u8; 20];
    let sd = string_data(&mut odd);
    let r = raw.derive(&mut Mech::with(CKM_AES_ECB_ENCRYPT_DATA, &sd), base, &readable(None));
    assert_eq!(r, Err(CKR_MECHANISM_PARAM_INVALID), "20 bytes are not whole blocks");
    let generic = secret(&raw, CKK_GENERIC_SECRET, &[0; 16], true);
    let sd = string_data(&mut pt);
    let r = raw.derive(&mut Mech::with(CKM_AES_ECB_ENCRYPT_DATA, &sd), generic, &readable(None));
    assert_eq!(r, Err(CKR_KEY_TYPE_INCONSISTENT), "a generic secret as the AES base key");
}

fn hkdf_params(
    extract: bool,
    expand: bool,
    salt_type: CK_ULONG,
    salt: &mut [u8],
    salt_key: CK_OBJECT_HANDLE,
    info: &mut [u8],
) -> CK_HKDF_PARAMS {
    CK_HKDF_PARAMS {
        bExtract: CK_BBOOL::from(extract),
        bExpand: CK_BBOOL::from(expand),
        prfHashMechanism: CKM_SHA256,
        ulSaltType: salt_type,
        pSalt: if salt.is_empty() { std::ptr::null_mut() } else { salt.as_mut_ptr() },
        ulSaltLen: salt.len() as CK_ULONG,
        hSaltKey: salt_key,
        pInfo: if info.is_empty() { std::ptr::null_mut() } else { info.as_mut_ptr() },
        ulInfoLen: info.len() as CK_ULONG,
    }
}

#[test]
fn hkdf_derive_gives_the_rfc_5869_answers_with_salt_data_key_or_none() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    // RFC 5869 Appendix A.1 and A.3 (SHA-256).
    let ikm = h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    let mut salt = h("000102030405060708090a0b0c");
    let mut info = h("f0f1f2f3f4f5f6f7f8f9");
    let a1 = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    let a1_prk = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";
    let a3 = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
    let base = secret(&raw, CKK_HKDF, &ikm, false);
    let salt_key = secret(&raw, CKK_GENERIC_SECRET, &salt, false);

    let p = hkdf_params(true, true, CKF_HKDF_SALT_DATA, &mut salt, 0, &mut info);
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(42))).expect("A.1");
    assert_eq!(hex::encode(value(&raw, k)), a1, "A.1 with the salt as data");
    let p = hkdf_params(true, true, CKF_HKDF_SALT_KEY, &mut [], salt_key, &mut info);
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(42))).expect("A.1 salt key");
    assert_eq!(hex::encode(value(&raw, k)), a1, "A.1 with the salt as a key");
    let p = hkdf_params(true, false, CKF_HKDF_SALT_DATA, &mut salt, 0, &mut []);
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(None)).expect("A.1 PRK");
    assert_eq!(hex::encode(value(&raw, k)), a1_prk, "extract alone is the PRK");
    let prk = secret(&raw, CKK_GENERIC_SECRET, &h(a1_prk), false);
    let p = hkdf_params(false, true, 0, &mut [], 0, &mut info);
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), prk, &readable(Some(42))).expect("A.1 expand");
    assert_eq!(hex::encode(value(&raw, k)), a1, "expand alone from the PRK");
    let p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut []);
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(42))).expect("A.3");
    assert_eq!(hex::encode(value(&raw, k)), a3, "A.3, no salt, no info");
    // HKDF output carries no base key bits, so the template decides readability; a base
    // that was once in the clear (created, not generated) makes no always-sensitive key.
    assert_eq!(raw.attr(k, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(false)));

    let bad = [
        ("neither extract nor expand", hkdf_params(false, false, CKF_HKDF_SALT_NULL, &mut [], 0, &mut [])),
        ("salt data without bytes", hkdf_params(true, true, CKF_HKDF_SALT_DATA, &mut [], 0, &mut [])),
        ("no salt type", hkdf_params(true, true, 0, &mut [], 0, &mut [])),
    ];
    for (what, p) in bad {
        assert_eq!(
            raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(16))),
            Err(CKR_MECHANISM_PARAM_INVALID),
            "{what}"
        );
    }
    let mut p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut []);
    p.prfHashMechanism = CKM_AES_ECB;
    assert_eq!(
        raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(16))),
        Err(CKR_MECHANISM_PARAM_INVALID),
        "a PRF that is no hash"
    );
    let p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut []);
    assert_eq!(
        raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(None)),
        Err(CKR_TEMPLATE_INCOMPLETE),
        "expand with no length"
    );
    assert_eq!(
        raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(255 * 32 + 1))),
        Err(CKR_KEY_SIZE_RANGE)
    );
    let p = hkdf_params(true, true, CKF_HKDF_SALT_KEY, &mut [], 0x7fff_fff0, &mut []);
    assert_eq!(
        raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(16))),
        Err(CKR_KEY_HANDLE_INVALID),
        "a salt key that does not exist"
    );
    let aes = secret(&raw, CKK_AES, &[0; 16], false);
    assert_eq!(
        raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), aes, &readable(Some(16))),
        Err(CKR_KEY_TYPE_INCONSISTENT),
        "an AES base key"
    );
}

#[test]
fn hkdf_key_generation_makes_a_local_hkdf_key_that_derives() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let key = raw
        .generate(
            &mut Mech::plain(CKM_HKDF_KEY_GEN),
            &[(CKA_VALUE_LEN, ul(32)), (CKA_DERIVE, bool_attr(true)), (CKA_TOKEN, bool_attr(false))],
        )
        .unwrap_or_else(|rv| panic!("CKM_HKDF_KEY_GEN: {}", name(rv)));
    assert_eq!(raw.attr(key, CKA_KEY_TYPE), Ok(ul(CKK_HKDF)));
    assert_eq!(raw.attr(key, CKA_LOCAL), Ok(bool_attr(true)));
    let p = hkdf_params(true, true, CKF_HKDF_SALT_NULL, &mut [], 0, &mut []);
    let t = [(CKA_KEY_TYPE, ul(CKK_AES)), (CKA_VALUE_LEN, ul(32)), (CKA_TOKEN, bool_attr(false))];
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), key, &t).expect("an AES key from an HKDF key");
    assert_eq!(raw.attr(k, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(true)), "from a generated key, sensitive");
    assert_eq!(raw.attr(k, CKA_NEVER_EXTRACTABLE), Ok(bool_attr(true)));
    // The derived AES key encrypts (secret keys encrypt by default).
    let ct = raw.encrypt(&mut Mech::plain(CKM_AES_ECB), k, &[0; 16]);
    assert_eq!(ct.map(|c| c.len()), Ok(16), "the derived AES key encrypts a block");
}

#[test]
fn hkdf_data_makes_a_private_data_object_holding_the_rfc_5869_bytes() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    // RFC 5869 Appendix A.1 (SHA-256), into a CKO_DATA object.
    let ikm = h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    let mut salt = h("000102030405060708090a0b0c");
    let mut info = h("f0f1f2f3f4f5f6f7f8f9");
    let a1 = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    let base = secret(&raw, CKK_HKDF, &ikm, false);
    let p = hkdf_params(true, true, CKF_HKDF_SALT_DATA, &mut salt, 0, &mut info);
    let mut m = Mech::with(CKM_HKDF_DATA, &p);
    let data: Tmpl = vec![
        (CKA_CLASS, ul(CKO_DATA)),
        (CKA_TOKEN, bool_attr(false)),
        (CKA_LABEL, b"okm".to_vec()),
        (CKA_VALUE_LEN, ul(42)),
    ];
    let d = raw.derive(&mut m, base, &data).expect("C_DeriveKey(CKM_HKDF_DATA)");
    assert_eq!(raw.attr(d, CKA_CLASS), Ok(ul(CKO_DATA)));
    assert_eq!(hex::encode(value(&raw, d)), a1, "A.1 as the data object's value");
    assert_eq!(raw.attr(d, CKA_LABEL), Ok(b"okm".to_vec()));
    assert_eq!(raw.attr(d, CKA_PRIVATE), Ok(bool_attr(true)), "derived material is private by default");
    assert_eq!(raw.attr(d, CKA_VALUE_LEN), Err(CKR_ATTRIBUTE_TYPE_INVALID), "a data object keeps no length");

    // No class: still data; CKA_PRIVATE as the template says.
    let open: Tmpl = vec![(CKA_TOKEN, bool_attr(false)), (CKA_PRIVATE, bool_attr(false)), (CKA_VALUE_LEN, ul(8))];
    let d = raw.derive(&mut m, base, &open).expect("no class");
    assert_eq!(raw.attr(d, CKA_CLASS), Ok(ul(CKO_DATA)));
    assert_eq!(raw.attr(d, CKA_PRIVATE), Ok(bool_attr(false)));
    assert_eq!(hex::encode(value(&raw, d)), a1[..16]);

    let with = |extra: (CK_ATTRIBUTE_TYPE, Vec<u8>)| {
        let mut t = data.clone();
        t.retain(|(ty, _)| *ty != extra.0);
        t.push(extra);
        t
    };
    assert_eq!(raw.derive(&mut m, base, &with((CKA_CLASS, ul(CKO_SECRET_KEY)))), Err(CKR_TEMPLATE_INCONSISTENT));
    assert_eq!(raw.derive(&mut m, base, &with((CKA_SENSITIVE, bool_attr(true)))), Err(CKR_ATTRIBUTE_TYPE_INVALID));
    let mut no_len = data.clone();
    no_len.pop();
    assert_eq!(raw.derive(&mut m, base, &no_len), Err(CKR_TEMPLATE_INCOMPLETE), "the length is needed");
    // The same parameter with CKM_HKDF_DERIVE still makes a key of the same bytes.
    let k = raw.derive(&mut Mech::with(CKM_HKDF_DERIVE, &p), base, &readable(Some(42))).expect("key");
    assert_eq!(hex::encode(value(&raw, k)), a1);

    // A base key whose CKA_DERIVE_TEMPLATE constrains what it derives derives no data.
    let mut yes = [CK_TRUE];
    let nested = [CK_ATTRIBUTE { type_: CKA_SENSITIVE, pValue: yes.as_mut_ptr().cast(), ulValueLen: 1 }];
    // The nested template's bytes, as a caller passes the array (copied by `Mech::with`).
    let nested_bytes = Mech::with(0, &nested).param;
    let constrained = raw
        .create(&[
            (CKA_CLASS, ul(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ul(CKK_HKDF)),
            (CKA_VALUE, ikm.clone()),
            (CKA_DERIVE, bool_attr(true)),
            (CKA_TOKEN, bool_attr(false)),
            (CKA_DERIVE_TEMPLATE, nested_bytes),
        ])
        .expect("a key with a derive template");
    assert_eq!(raw.derive(&mut m, constrained, &data), Err(CKR_TEMPLATE_INCONSISTENT));
}
