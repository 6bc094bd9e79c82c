//! IV uniqueness of the message-based AES-GCM API (issue #12, item 1): a token-generated
//! IV never repeats under one key, whatever sessions, processes, object copies or
//! duplicate imports the key goes through (SP 800-38D §8), and a random IV has at least
//! 96 random bits.

// Raw C ABI calls through the function list need `unsafe`; each call passes live locals.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
// Lengths here are small test buffers; CK_ULONG and usize are both 64-bit on the targets we build.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::raw::{encrypt_message, message_init, message_params, Api};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

const KEY: [u8; 32] = [0x42; 32];
const KEY_LABEL: &str = "iv-counter-key";
const CHILD_ENV: &str = "CV_IV_CHILD_CONF";
const CHILD_TEST: &str = "child_process_encrypts_one_counter_message";

fn import_key(s: &Session, token: bool) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(token),
        Attribute::Label(KEY_LABEL.into()),
        Attribute::Value(KEY.to_vec()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ])
    .expect("import key")
}

/// One `C_EncryptMessage` with `generator` and `fixed_bits`; the IV the token wrote back.
fn encrypt_one(
    api: &Api,
    s: CK_SESSION_HANDLE,
    prefix: [u8; 12],
    fixed_bits: CK_ULONG,
    generator: CK_GENERATOR_FUNCTION,
) -> (CK_RV, Vec<u8>) {
    let (mut iv, mut tag) = (prefix.to_vec(), vec![0u8; 16]);
    let mut p = message_params(&mut iv, fixed_bits, generator, &mut tag);
    let (rv, _) = encrypt_message(api, s, &mut p, &mut [], &mut b"message".to_vec());
    (rv, iv)
}

/// A counter IV under `key` in a fresh operation of `s`.
fn counter_iv(api: &Api, s: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Vec<u8> {
    assert_eq!(message_init(api, s, key, true), CKR_OK);
    let (rv, iv) = encrypt_one(api, s, [7; 12], 32, CKG_GENERATE_COUNTER);
    assert_eq!(rv, CKR_OK);
    assert_eq!(unsafe { api.f.C_MessageEncryptFinal.expect("slot")(s) }, CKR_OK);
    iv
}

#[test]
fn counter_ivs_never_repeat_across_sessions() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let (a, b) = (fx.user_session(slot), fx.pkcs11.open_rw_session(slot).expect("second session"));
    let key = import_key(&a, true);
    let api = Api::load();
    let first = counter_iv(&api, a.handle(), key.handle());
    let second = counter_iv(&api, b.handle(), key.handle());
    let again = counter_iv(&api, a.handle(), key.handle());
    assert_ne!(first, second, "a second session restarted the counter");
    assert_ne!(first, again, "a second operation in one session restarted the counter");
    assert_ne!(second, again);
}

#[test]
fn a_copied_key_or_the_same_key_bytes_imported_twice_continue_the_counter() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let s = fx.user_session(slot);
    let key = import_key(&s, false);
    let api = Api::load();
    let mut seen = vec![counter_iv(&api, s.handle(), key.handle())];
    let copy = s.copy_object(key, &[Attribute::Label(b"copy".to_vec())]).expect("copy key");
    seen.push(counter_iv(&api, s.handle(), copy.handle()));
    let twin = import_key(&s, true);
    seen.push(counter_iv(&api, s.handle(), twin.handle()));
    seen.push(counter_iv(&api, s.handle(), key.handle()));
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "an IV repeated under one key: {seen:02x?}");
}

#[test]
fn counter_ivs_never_repeat_across_processes() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let s = fx.user_session(slot);
    let key = import_key(&s, true);
    let api = Api::load();
    let before = counter_iv(&api, s.handle(), key.handle());

    let out = common::child_over(CHILD_TEST, CHILD_ENV, &fx.ws.conf).output().expect("run the child process");
    let stdout = common::child_passed(&out);
    let child: Vec<u8> = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD_IV=").map(|(_, iv)| iv))
        .map(|h| hex::decode(h.trim()).expect("hex"))
        .expect("the child printed its IV");

    let after = counter_iv(&api, s.handle(), key.handle());
    assert_ne!(before, child, "the child process restarted the counter");
    assert_ne!(after, child, "this process reissued the child's IV");
    assert_ne!(before, after);
}

/// The second process of [`counter_ivs_never_repeat_across_processes`]; a no-op unless
/// that test started it.
#[test]
#[ignore = "started as a child process by counter_ivs_never_repeat_across_processes"]
fn child_process_encrypts_one_counter_message() {
    let Some((_serial, p, slot)) = common::child_module(CHILD_ENV) else { return };
    {
        let s = common::user_session(&p, slot);
        let keys = s.find_objects(&[Attribute::Label(KEY_LABEL.into())]).expect("find key");
        assert_eq!(keys.len(), 1);
        let api = Api::load();
        let iv = counter_iv(&api, s.handle(), keys[0].handle());
        println!("\nCHILD_IV={}", hex::encode(iv));
    }
    p.finalize().expect("C_Finalize");
}

#[test]
fn random_ivs_with_fewer_than_96_generated_bits_are_refused() {
    let fx = common::Fixture::new();
    let slot = fx.init_token();
    let s = fx.user_session(slot);
    let key = import_key(&s, false);
    let api = Api::load();
    assert_eq!(message_init(&api, s.handle(), key.handle(), true), CKR_OK);
    for fixed in [8, 32, 64] {
        let (rv, iv) = encrypt_one(&api, s.handle(), [7; 12], fixed, CKG_GENERATE_RANDOM);
        assert_eq!(rv, CKR_MECHANISM_PARAM_INVALID, "{fixed} fixed bits leave fewer than 96 random ones");
        assert_eq!(iv, [7; 12], "nothing written back on a refusal");
    }
    let (rv, a) = encrypt_one(&api, s.handle(), [7; 12], 0, CKG_GENERATE_RANDOM);
    assert_eq!(rv, CKR_OK);
    let (rv, b) = encrypt_one(&api, s.handle(), [7; 12], 0, CKG_GENERATE_RANDOM);
    assert_eq!(rv, CKR_OK);
    assert_ne!(a, b);
    assert_ne!(a, [7; 12]);
}
