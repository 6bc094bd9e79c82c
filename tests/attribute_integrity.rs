//! Stored attributes keep their integrity: a one-way change (`CKA_EXTRACTABLE` to false)
//! is never undone by a concurrent `C_SetAttributeValue` working from a stale copy, and a
//! row whose attributes or generation were edited in the store file answers an integrity
//! error instead of a key used under a changed policy.

#![allow(missing_docs)]

mod common;

use std::sync::Barrier;

use common::{Fixture, USER_PIN};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

fn user(p: &Pkcs11, slot: Slot) -> Session {
    let s = p.open_rw_session(slot).expect("open rw");
    // A second session of the same application shares the first one's login.
    match s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    s
}

fn token_key(s: &Session, label: &str) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(vec![0x33; 32]),
        Attribute::Token(true),
        Attribute::Extractable(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
    .expect("C_CreateObject")
}

fn extractable(s: &Session, k: ObjectHandle) -> bool {
    matches!(&s.get_attributes(k, &[AttributeType::Extractable]).expect("read")[..], [Attribute::Extractable(true)])
}

#[test]
fn a_concurrent_set_never_undoes_a_one_way_change() {
    let f = Fixture::new();
    let slot = f.init_token();
    let first = user(&f.pkcs11, slot);
    for round in 0..20 {
        let key = token_key(&first, &format!("k{round}"));
        let start = Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let s = user(&f.pkcs11, slot);
                start.wait();
                for i in 0..15 {
                    s.update_attributes(key, &[Attribute::Label(format!("rename {i}").into_bytes())]).expect("rename");
                }
            });
            let s = user(&f.pkcs11, slot);
            start.wait();
            s.update_attributes(key, &[Attribute::Extractable(false)]).expect("to unextractable");
        });
        assert!(!extractable(&first, key), "round {round}: a stale rename made the key extractable again");
    }
}
