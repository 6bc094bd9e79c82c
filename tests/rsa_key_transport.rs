//! RSA key transport through the C ABI (issue #12 item 10): `CKM_RSA_PKCS` for
//! `C_WrapKey`/`C_UnwrapKey` is off unless the config allows it, and when allowed, a
//! PKCS#1 v1.5 unwrap gives no padding oracle: bad padding and a well-padded value of the
//! wrong length both yield a (pseudo-random) key, exactly as a good ciphertext does.

#![allow(missing_docs)]

mod common;

use common::{load, lock, rv_of, Workspace, SO_PIN, USER_PIN};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};

const ALLOW: &str = "[[workspace]]\nname = \"main\"\n[mechanisms]\nallow_rsa_pkcs1_v15_key_transport = true\n";
const DEFAULT: &str = "[[workspace]]\nname = \"main\"\n";

fn session(p: &Pkcs11) -> Session {
    let slot = p.get_all_slots().expect("slots")[0];
    p.init_token(slot, &AuthPin::new(SO_PIN.into()), "rsa").expect("C_InitToken");
    let so = p.open_rw_session(slot).expect("open");
    so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).expect("SO login");
    so.init_pin(&AuthPin::new(USER_PIN.into())).expect("C_InitPIN");
    drop(so);
    let s = p.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).expect("login");
    s
}

fn pair(s: &Session) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[Attribute::ModulusBits(Ulong::from(2048u64)), Attribute::Wrap(true), Attribute::Encrypt(true)],
        &[Attribute::Unwrap(true), Attribute::Decrypt(true)],
    )
    .expect("C_GenerateKeyPair")
}

fn aes(s: &Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(vec![0x5a; 32]),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
    ])
    .expect("AES key")
}

fn aes_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

fn value(s: &Session, key: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(key, &[AttributeType::Value]).expect("CKA_VALUE").as_slice() {
        [Attribute::Value(v)] => v.clone(),
        other => panic!("CKA_VALUE: {other:?}"),
    }
}

#[test]
fn pkcs1_v15_key_transport_is_refused_unless_the_config_allows_it() {
    let _serial = lock();
    let _ws = Workspace::with_config_body(DEFAULT);
    let p = load();
    let s = session(&p);
    let (pk, sk) = pair(&s);
    let target = aes(&s);
    assert_eq!(rv_of(s.wrap_key(&Mechanism::RsaPkcs, pk, target)), RvError::MechanismInvalid, "wrap");
    // A v1.5 ciphertext made through C_Encrypt (data encryption stays available).
    let ct = s.encrypt(&Mechanism::RsaPkcs, pk, &[0x5a; 32]).expect("C_Encrypt");
    assert_eq!(rv_of(s.unwrap_key(&Mechanism::RsaPkcs, sk, &ct, &aes_template())), RvError::MechanismInvalid, "unwrap");
    // OAEP key transport is unaffected.
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    let wrapped = s.wrap_key(&oaep, pk, target).expect("C_WrapKey (OAEP)");
    let back = s.unwrap_key(&oaep, sk, &wrapped, &aes_template()).expect("C_UnwrapKey (OAEP)");
    assert_eq!(value(&s, back), vec![0x5a; 32]);
    drop(s);
    p.finalize().expect("C_Finalize");
}

#[test]
fn pkcs1_v15_unwrap_answers_bad_padding_and_wrong_length_like_a_good_ciphertext() {
    let _serial = lock();
    let _ws = Workspace::with_config_body(ALLOW);
    let p = load();
    let s = session(&p);
    let (pk, sk) = pair(&s);
    let template = aes_template();

    let good = s.wrap_key(&Mechanism::RsaPkcs, pk, aes(&s)).expect("C_WrapKey (allowed)");
    let back = s.unwrap_key(&Mechanism::RsaPkcs, sk, &good, &template).expect("good ciphertext");
    assert_eq!(value(&s, back), vec![0x5a; 32]);

    // Bad padding: one flipped byte (the decryption is then random, so the padding is
    // wrong with overwhelming probability).
    let mut bad_padding = good.clone();
    bad_padding[10] ^= 1;
    // Valid padding around 17 bytes: no AES key has that length.
    let wrong_length = s.encrypt(&Mechanism::RsaPkcs, pk, &[7; 17]).expect("C_Encrypt");

    let mut synthetic = Vec::new();
    for (what, ct) in [("bad padding", &bad_padding), ("wrong length", &wrong_length)] {
        let got = s.unwrap_key(&Mechanism::RsaPkcs, sk, ct, &template);
        let key = got.unwrap_or_else(|e| panic!("{what}: answered {e:?}, unlike a good ciphertext"));
        let v = value(&s, key);
        assert!(matches!(v.len(), 16 | 24 | 32), "{what}: a usable AES key length, got {}", v.len());
        assert_ne!(v, vec![0x5a; 32], "{what}");
        // Deterministic per ciphertext: a retry cannot tell a synthetic key from a real one.
        let again = s.unwrap_key(&Mechanism::RsaPkcs, sk, ct, &template).expect("again");
        assert_eq!(value(&s, again), v, "{what}: same ciphertext, same key");
        synthetic.push(v);
    }
    assert_ne!(synthetic[0], synthetic[1], "different ciphertexts, different keys");

    // A length the template fixes is honoured by the synthetic key too.
    let mut fixed = template.clone();
    fixed.push(Attribute::ValueLen(Ulong::from(16u64)));
    let key = s.unwrap_key(&Mechanism::RsaPkcs, sk, &bad_padding, &fixed).expect("CKA_VALUE_LEN 16");
    assert_eq!(value(&s, key).len(), 16);
    // The ciphertext length is public: still its own error.
    assert_eq!(rv_of(s.unwrap_key(&Mechanism::RsaPkcs, sk, &good[1..], &template)), RvError::WrappedKeyLenRange);
    drop(s);
    p.finalize().expect("C_Finalize");
}
