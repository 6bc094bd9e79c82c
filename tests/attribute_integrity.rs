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

/// Rewrites one attribute's value in a stored row's clear attribute list (the codec:
/// type u64 LE, length u32 LE, value), as someone with write access to the file could.
fn edit_stored_attribute(store: &std::path::Path, label: &str, ty: u64, value: &[u8]) {
    let db = rusqlite::Connection::open(store).expect("open store file");
    let mut attrs: Vec<u8> =
        db.query_row("SELECT attrs FROM objects WHERE label = ?1", [label.as_bytes()], |r| r.get(0)).expect("row");
    let mut i = 0;
    loop {
        assert!(i < attrs.len(), "attribute {ty:#x} not in the row");
        let t = u64::from_le_bytes(attrs[i..i + 8].try_into().expect("type"));
        let len = u32::from_le_bytes(attrs[i + 8..i + 12].try_into().expect("len")) as usize;
        if t == ty {
            attrs[i + 12..i + 12 + len].copy_from_slice(value);
            break;
        }
        i += 12 + len;
    }
    db.execute("UPDATE objects SET attrs = ?1 WHERE label = ?2", rusqlite::params![attrs, label.as_bytes()])
        .expect("edit");
}

fn wrap_under_new_kek(s: &Session, key: ObjectHandle) -> cryptoki::error::Result<Vec<u8>> {
    let kek = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![0x44; 32]),
        ])
        .expect("kek");
    s.wrap_key(&cryptoki::mechanism::Mechanism::AesKeyWrap, kek, key)
}

#[test]
fn a_policy_attribute_edited_in_the_store_file_is_an_integrity_error() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = user(&f.pkcs11, slot);
    let guarded = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![0x33; 32]),
            Attribute::Token(true),
            Attribute::Extractable(true),
            Attribute::WrapWithTrusted(true),
            Attribute::Label(b"guarded".to_vec()),
        ])
        .expect("C_CreateObject");
    assert_eq!(common::rv_of(wrap_under_new_kek(&s, guarded)), RvError::KeyNotWrappable);
    // CKA_WRAP_WITH_TRUSTED (0x210) to false in the file: the key must not now wrap.
    edit_stored_attribute(&f.ws.store_file(), "guarded", 0x210, &[0]);
    assert_eq!(common::rv_of(wrap_under_new_kek(&s, guarded)), RvError::DeviceError);
    assert_eq!(
        common::rv_of(s.get_attributes(guarded, &[AttributeType::WrapWithTrusted])),
        RvError::DeviceError,
        "the row does not open at all"
    );
}

#[test]
fn a_generation_edited_in_the_store_file_is_an_integrity_error() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = user(&f.pkcs11, slot);
    let key = token_key(&s, "counted");
    s.update_attributes(key, &[Attribute::Label(b"counted".to_vec())]).expect("a set moves the generation");
    let db = rusqlite::Connection::open(f.ws.store_file()).expect("open store file");
    db.execute("UPDATE objects SET generation = generation + 7 WHERE label = ?1", [&b"counted"[..]]).expect("edit");
    assert_eq!(common::rv_of(s.get_attributes(key, &[AttributeType::Extractable])), RvError::DeviceError);
}
