//! Multi-part AES through the C ABI as a careful client library drives it: every
//! `C_EncryptUpdate`/`C_DecryptUpdate`/`_Final` and one-shot call first asks for the size
//! with a NULL buffer, then tries a buffer one byte short (`CKR_BUFFER_TOO_SMALL` with
//! the needed size, the operation still alive), then the exact size; the pieces must
//! equal the one-shot answer. Also: `CKM_AES_ECB`/`CKM_AES_CBC` input that does not end
//! on a block boundary answers `CKR_DATA_LEN_RANGE` (or `CKR_ENCRYPTED_DATA_LEN_RANGE`)
//! already at the length query, and ends the operation.

#![allow(missing_docs, unsafe_code, clippy::undocumented_unsafe_blocks)]

mod common;
mod raw_mech;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, name, ul, Mech, Raw};

fn aes(raw: &Raw, value: &[u8]) -> CK_OBJECT_HANDLE {
    raw.create(&[
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_AES)),
        (CKA_VALUE, value.to_vec()),
        (CKA_ENCRYPT, bool_attr(true)),
        (CKA_DECRYPT, bool_attr(true)),
        (CKA_WRAP, bool_attr(false)),
        (CKA_UNWRAP, bool_attr(false)),
    ])
    .unwrap_or_else(|rv| panic!("C_CreateObject (AES key): {}", name(rv)))
}

/// Which call of a cipher operation.
#[derive(Clone, Copy, Debug)]
enum Call<'a> {
    Once(&'a [u8]),
    Update(&'a [u8]),
    Final,
}

fn init(raw: &Raw, encrypt: bool, m: &mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    unsafe {
        if encrypt {
            raw.p.C_EncryptInit(raw.sh, m, key)
        } else {
            raw.p.C_DecryptInit(raw.sh, m, key)
        }
    }
}

/// One call with `out` (NULL when `None`) and `*len` as the capacity.
fn call(raw: &Raw, encrypt: bool, c: Call<'_>, out: Option<&mut [u8]>, len: &mut CK_ULONG) -> CK_RV {
    let out = out.map_or(std::ptr::null_mut(), <[u8]>::as_mut_ptr);
    let (p, sh) = (&raw.p, raw.sh);
    unsafe {
        match (c, encrypt) {
            (Call::Once(d), true) => p.C_Encrypt(sh, d.as_ptr().cast_mut(), d.len() as CK_ULONG, out, len),
            (Call::Once(d), false) => p.C_Decrypt(sh, d.as_ptr().cast_mut(), d.len() as CK_ULONG, out, len),
            (Call::Update(d), true) => p.C_EncryptUpdate(sh, d.as_ptr().cast_mut(), d.len() as CK_ULONG, out, len),
            (Call::Update(d), false) => p.C_DecryptUpdate(sh, d.as_ptr().cast_mut(), d.len() as CK_ULONG, out, len),
            (Call::Final, true) => p.C_EncryptFinal(sh, out, len),
            (Call::Final, false) => p.C_DecryptFinal(sh, out, len),
        }
    }
}

/// The careful client's three steps for one call: size query, one byte short, exact.
fn careful(raw: &Raw, encrypt: bool, c: Call<'_>, what: &str) -> Vec<u8> {
    let mut len: CK_ULONG = 0;
    assert_eq!(call(raw, encrypt, c, None, &mut len), CKR_OK, "{what} {c:?}: length query");
    let needed = usize::try_from(len).expect("fits");
    if needed > 0 {
        let mut short = vec![0xeeu8; needed - 1];
        let mut len = CK_ULONG::try_from(needed - 1).expect("fits");
        let rv = call(raw, encrypt, c, Some(&mut short), &mut len);
        assert_eq!(rv, CKR_BUFFER_TOO_SMALL, "{what} {c:?}: a buffer one byte short: {}", name(rv));
        assert_eq!(len, needed as CK_ULONG, "{what} {c:?}: the size CKR_BUFFER_TOO_SMALL reports");
        assert!(short.iter().all(|&b| b == 0xee), "{what} {c:?}: a short buffer was written to");
    }
    let mut buf = vec![0u8; needed];
    let mut len = CK_ULONG::try_from(needed).expect("fits");
    let rv = call(raw, encrypt, c, Some(&mut buf), &mut len);
    assert_eq!(rv, CKR_OK, "{what} {c:?}: the call with the size it asked for: {}", name(rv));
    let got = usize::try_from(len).expect("fits");
    assert!(got <= needed, "{what} {c:?}: wrote {got} bytes, more than the {needed} it asked for");
    buf.truncate(got);
    buf
}

/// One-shot, then multi-part in `parts`, both the careful way; the outputs must agree.
fn one_shot_and_parts(
    raw: &Raw,
    encrypt: bool,
    m: &mut Mech,
    key: CK_OBJECT_HANDLE,
    input: &[u8],
    what: &str,
) -> Vec<u8> {
    let mut cm = CK_MECHANISM {
        mechanism: m.ty,
        pParameter: m.param.as_mut_ptr().cast(),
        ulParameterLen: m.param.len() as CK_ULONG,
    };
    assert_eq!(init(raw, encrypt, &mut cm, key), CKR_OK, "{what}: init");
    let whole = careful(raw, encrypt, Call::Once(input), what);
    for cuts in [[1usize, 17, 40], [15, 16, 33], [0, 0, input.len()]] {
        assert_eq!(init(raw, encrypt, &mut cm, key), CKR_OK, "{what}: init");
        let mut got = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            let to = cut.clamp(from, input.len());
            got.extend(careful(raw, encrypt, Call::Update(&input[from..to]), what));
            from = to;
        }
        got.extend(careful(raw, encrypt, Call::Final, what));
        assert_eq!(hex::encode(&got), hex::encode(&whole), "{what}: parts cut at {cuts:?} against one shot");
    }
    whole
}

#[test]
fn every_aes_mode_answers_size_queries_and_short_buffers_without_losing_the_operation() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let key = aes(&raw, &[0x42; 32]);
    let mut iv = [7u8; 12];
    let mut aad = *b"header";
    let gcm = CK_GCM_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: 12,
        ulIvBits: 96,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: aad.len() as CK_ULONG,
        ulTagBits: 128,
    };
    let ctr = CK_AES_CTR_PARAMS { ulCounterBits: 32, cb: [9; 16] };
    let blocks: Vec<u8> = (0..64u8).collect();
    let odd: Vec<u8> = (0..53u8).collect();
    let cases: Vec<(&str, Mech, &[u8])> = vec![
        ("CKM_AES_ECB", Mech::plain(CKM_AES_ECB), &blocks),
        ("CKM_AES_CBC", Mech::bytes(CKM_AES_CBC, &[3; 16]), &blocks),
        ("CKM_AES_CBC_PAD", Mech::bytes(CKM_AES_CBC_PAD, &[3; 16]), &odd),
        ("CKM_AES_CBC_PAD on whole blocks", Mech::bytes(CKM_AES_CBC_PAD, &[3; 16]), &blocks),
        ("CKM_AES_CTR", Mech::with(CKM_AES_CTR, &ctr), &odd),
        ("CKM_AES_GCM", Mech::with(CKM_AES_GCM, &gcm), &odd),
    ];
    for (what, mut m, pt) in cases {
        let ct = one_shot_and_parts(&raw, true, &mut m, key, pt, what);
        assert_ne!(ct.as_slice(), pt, "{what}: ciphertext differs from the plaintext");
        let back = one_shot_and_parts(&raw, false, &mut m, key, &ct, what);
        assert_eq!(back, pt, "{what}: decrypts to the plaintext");
    }
    // `iv` and `aad` are read through `gcm`'s pointers up to here.
    let _ = (&iv, &aad);
}

/// The operation is over after a length error: the next call is not initialized.
fn ended(raw: &Raw, encrypt: bool, what: &str) {
    let mut len: CK_ULONG = 0;
    let rv = call(raw, encrypt, Call::Final, None, &mut len);
    assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED, "{what}: the operation ended: {}", name(rv));
}

#[test]
fn ecb_and_cbc_with_a_partial_block_answer_data_len_range_at_the_length_query_and_end() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let key = aes(&raw, &[0x42; 16]);
    let modes = [("CKM_AES_ECB", Mech::plain(CKM_AES_ECB)), ("CKM_AES_CBC", Mech::bytes(CKM_AES_CBC, &[1; 16]))];
    for (what, mut m) in modes {
        let mut cm = CK_MECHANISM {
            mechanism: m.ty,
            pParameter: m.param.as_mut_ptr().cast(),
            ulParameterLen: m.param.len() as CK_ULONG,
        };
        for (encrypt, want) in [(true, CKR_DATA_LEN_RANGE), (false, CKR_ENCRYPTED_DATA_LEN_RANGE)] {
            let what = format!("{what} encrypt={encrypt}");
            for n in [1usize, 15, 17, 31] {
                let data = vec![5u8; n];
                // One shot: the length query already fails, and so does a real buffer.
                assert_eq!(init(&raw, encrypt, &mut cm, key), CKR_OK);
                let mut len: CK_ULONG = 0;
                let rv = call(&raw, encrypt, Call::Once(&data), None, &mut len);
                assert_eq!(rv, want, "{what}: {n}-byte one-shot length query: {}", name(rv));
                ended(&raw, encrypt, &what);
                assert_eq!(init(&raw, encrypt, &mut cm, key), CKR_OK);
                let mut buf = [0u8; 64];
                let mut len = 64;
                let rv = call(&raw, encrypt, Call::Once(&data), Some(&mut buf), &mut len);
                assert_eq!(rv, want, "{what}: {n}-byte one-shot: {}", name(rv));
                ended(&raw, encrypt, &what);
                // Multi-part: the update keeps the partial block; the final refuses it.
                assert_eq!(init(&raw, encrypt, &mut cm, key), CKR_OK);
                let _ = careful(&raw, encrypt, Call::Update(&data), &what);
                let mut len: CK_ULONG = 0;
                let rv = call(&raw, encrypt, Call::Final, None, &mut len);
                assert_eq!(rv, want, "{what}: final after {n} bytes, length query: {}", name(rv));
                ended(&raw, encrypt, &what);
                assert_eq!(init(&raw, encrypt, &mut cm, key), CKR_OK);
                let _ = careful(&raw, encrypt, Call::Update(&data), &what);
                let mut len = 64;
                let rv = call(&raw, encrypt, Call::Final, Some(&mut buf), &mut len);
                assert_eq!(rv, want, "{what}: final after {n} bytes: {}", name(rv));
                ended(&raw, encrypt, &what);
            }
        }
    }
    // CBC_PAD decryption needs whole blocks too; its encryption takes any length.
    let mut m = Mech::bytes(CKM_AES_CBC_PAD, &[1; 16]);
    let mut cm = CK_MECHANISM {
        mechanism: m.ty,
        pParameter: m.param.as_mut_ptr().cast(),
        ulParameterLen: m.param.len() as CK_ULONG,
    };
    for n in [0usize, 15, 17] {
        assert_eq!(init(&raw, false, &mut cm, key), CKR_OK);
        let mut len: CK_ULONG = 0;
        let rv = call(&raw, false, Call::Once(&vec![0u8; n]), None, &mut len);
        assert_eq!(rv, CKR_ENCRYPTED_DATA_LEN_RANGE, "CBC_PAD decrypt of {n} bytes: {}", name(rv));
        ended(&raw, false, "CBC_PAD");
    }
}
