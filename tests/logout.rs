//! `C_Logout` (PKCS#11 3.2 §5.6.4, issue #12): the application's private session objects
//! are destroyed, so their handles stay invalid even after a new login; the operations
//! active in its sessions end (the spec leaves them undefined; here they are gone, with
//! their keys); and the same happens at the implicit logout when the last session closes.

//!
//! `unsafe` is allowed: an operation left active between calls needs the raw function list.

#![allow(unsafe_code, missing_docs)]

mod common;
mod raw_mech;

use common::{rv_of, Fixture, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::*;
use raw_mech::Raw;

fn private_aes(s: &Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(vec![9; 16]),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Encrypt(true),
        Attribute::Label(b"private session key".to_vec()),
    ])
    .expect("private session object")
}

fn public_data(s: &Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(false),
        Attribute::Private(false),
        Attribute::Label(b"public session data".to_vec()),
    ])
    .expect("public session object")
}

/// `C_EncryptInit` with AES-ECB, leaving the operation active.
fn encrypt_init(raw: &Raw, key: ObjectHandle) -> CK_RV {
    let mut cm = CK_MECHANISM { mechanism: CKM_AES_ECB, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
    // SAFETY: a valid mechanism struct and session; the module checks the handles.
    unsafe { raw.p.C_EncryptInit(raw.sh, &mut cm, key.handle()) }
}

fn encrypt_update(raw: &Raw) -> CK_RV {
    let mut data = [0u8; 16];
    let mut out = [0u8; 32];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: 16 readable input bytes, an output buffer of `len` bytes.
    unsafe { raw.p.C_EncryptUpdate(raw.sh, data.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len) }
}

#[test]
fn logout_destroys_private_session_objects_and_ends_active_operations() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    let other = f.pkcs11.open_rw_session(slot).expect("second session");
    let key = private_aes(&s);
    let key_of_other = private_aes(&other);
    let public = public_data(&s);
    let raw = Raw::new(s.handle());
    assert_eq!(encrypt_init(&raw, key), CKR_OK);
    assert_eq!(encrypt_update(&raw), CKR_OK, "the operation runs while logged in");

    s.logout().expect("C_Logout");
    assert_eq!(encrypt_update(&raw), CKR_OPERATION_NOT_INITIALIZED, "the operation ended with the login");
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).expect("login again");
    for (what, h) in [("own", key), ("other session's", key_of_other)] {
        assert_eq!(
            rv_of(s.get_attributes(h, &[AttributeType::Label])),
            RvError::ObjectHandleInvalid,
            "{what} private session object, after a new login"
        );
    }
    assert_eq!(encrypt_init(&raw, key), CKR_KEY_HANDLE_INVALID, "the destroyed key cannot start an operation");
    assert!(s.get_attributes(public, &[AttributeType::Label]).is_ok(), "public session objects stay");
}

#[test]
fn the_implicit_logout_of_the_last_session_ends_other_logins_state() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    let key = private_aes(&s);
    drop(s);
    // The last session closed: logged out; a new session and login do not bring the key back.
    let s = f.user_session(slot);
    assert_eq!(rv_of(s.get_attributes(key, &[AttributeType::Label])), RvError::ObjectHandleInvalid);
}
