//! The wrap policy through the C ABI (PKCS#11 3.2 §4.9–4.10, §5.18): only the SO makes a
//! key trusted, a key that wraps never hands the wrapped bytes back through `C_Decrypt`,
//! a trusted key is a key-encryption key only, and every wrap path (AES key wrap, RSA,
//! the CollabVault wrap record) applies `CKA_WRAP_WITH_TRUSTED` and `CKA_WRAP_TEMPLATE`.

#![allow(missing_docs)]

mod common;

use common::{Fixture, SO_PIN};
use cryptoki::error::RvError;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;

fn aes_key(s: &Session, value: &[u8], extra: &[Attribute]) -> cryptoki::error::Result<ObjectHandle> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t)
}

/// A key an application may move out wrapped, but never read.
fn sensitive_extractable(s: &Session, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![Attribute::Sensitive(true), Attribute::Extractable(true)];
    t.extend_from_slice(extra);
    aes_key(s, &[0x42; 32], &t).expect("C_CreateObject (target)")
}

/// A trusted, public, token KEK made in an SO session (the SO sees public objects only).
fn trusted_kek(f: &Fixture, slot: Slot, label: &str) -> ObjectHandle {
    let so = f.pkcs11.open_rw_session(slot).expect("open rw");
    so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).expect("SO login");
    let kek = aes_key(
        &so,
        &[0x17; 32],
        &[
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Trusted(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
    .expect("the SO makes a trusted key");
    so.logout().expect("SO logout");
    drop(so);
    kek
}

fn by_label(s: &Session, label: &str) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).expect("find")[0]
}

#[test]
fn only_the_so_makes_a_key_trusted() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    assert_eq!(common::rv_of(aes_key(&s, &[1; 16], &[Attribute::Trusted(true)])), RvError::AttributeReadOnly);
    let plain = aes_key(&s, &[1; 16], &[]).expect("an untrusted key");
    assert_eq!(common::rv_of(s.update_attributes(plain, &[Attribute::Trusted(true)])), RvError::AttributeReadOnly);
    assert_eq!(common::rv_of(s.copy_object(plain, &[Attribute::Trusted(true)])), RvError::AttributeReadOnly);
    let generated = s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into()), Attribute::Trusted(true)]);
    assert_eq!(common::rv_of(generated), RvError::AttributeReadOnly);
    s.logout().expect("logout");
    drop(s);

    trusted_kek(&f, slot, "so-kek");
    let s = f.user_session(slot);
    let kek = by_label(&s, "so-kek");
    // The user may neither take the trust away nor copy it to a key of its own.
    assert_eq!(common::rv_of(s.update_attributes(kek, &[Attribute::Trusted(false)])), RvError::AttributeReadOnly);
    assert_eq!(common::rv_of(s.copy_object(kek, &[])), RvError::AttributeReadOnly);
    // Nor copy its value to an untrusted key it could then decrypt with.
    assert_eq!(common::rv_of(s.copy_object(kek, &[Attribute::Trusted(false)])), RvError::AttributeReadOnly);
}

#[test]
fn wrap_then_decrypt_under_one_default_key_is_refused() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kek = aes_key(&s, &[7; 32], &[]).expect("a key with every usage flag at its default");
    let target = sensitive_extractable(&s, &[]);
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, target).expect("C_WrapKey");
    // C_Decrypt with the same mechanism would hand back the target's value in the clear.
    assert_eq!(common::rv_of(s.decrypt(&Mechanism::AesKeyWrap, kek, &wrapped)), RvError::KeyFunctionNotPermitted);
    // And C_Encrypt would forge a wrapped key of a value the caller chose.
    assert_eq!(common::rv_of(s.encrypt(&Mechanism::AesKeyWrap, kek, &[9; 32])), RvError::KeyFunctionNotPermitted);

    // A key made for key wrap as a cipher only (no CKA_WRAP/CKA_UNWRAP) still does both.
    let cipher = aes_key(&s, &[7; 32], &[Attribute::Wrap(false), Attribute::Unwrap(false)]).expect("cipher key");
    let out = s.encrypt(&Mechanism::AesKeyWrap, cipher, &[9; 32]).expect("C_Encrypt with KW");
    assert_eq!(s.decrypt(&Mechanism::AesKeyWrap, cipher, &out).expect("C_Decrypt with KW"), vec![9; 32]);
}

#[test]
fn a_trusted_key_wraps_but_never_encrypts_or_decrypts() {
    let f = Fixture::new();
    let slot = f.init_token();
    trusted_kek(&f, slot, "so-kek");
    let s = f.user_session(slot);
    let kek = by_label(&s, "so-kek");
    let target = sensitive_extractable(&s, &[Attribute::WrapWithTrusted(true)]);
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, target).expect("a trusted key wraps");
    // AES-ECB decryption inverts key wrap block by block: a trusted key never decrypts.
    let block = wrapped[..16].to_vec();
    assert_eq!(common::rv_of(s.decrypt(&Mechanism::AesEcb, kek, &block)), RvError::KeyFunctionNotPermitted);
    assert_eq!(common::rv_of(s.encrypt(&Mechanism::AesEcb, kek, &block)), RvError::KeyFunctionNotPermitted);
    // Turning the wrap flag off does not open the way either.
    s.update_attributes(kek, &[Attribute::Wrap(false)]).expect_err("a trusted key's policy is the SO's");
    assert_eq!(common::rv_of(s.decrypt(&Mechanism::AesEcb, kek, &block)), RvError::KeyFunctionNotPermitted);
}

#[test]
fn a_wrap_with_trusted_key_does_not_leave_through_a_wrap_record() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let master = by_label(&s, "collabvault-master");
    let record = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(CKM_CV_WRAP_RECORD).expect("vendor range"),
        None,
    ));
    // A record comes back through C_UnwrapKey without CKA_WRAP_WITH_TRUSTED (the record
    // does not bind it), so the master key, which is not trusted, must refuse it.
    let guarded = sensitive_extractable(&s, &[Attribute::WrapWithTrusted(true)]);
    assert_eq!(common::rv_of(s.wrap_key(&record, master, guarded)), RvError::KeyNotWrappable);
    let plain = sensitive_extractable(&s, &[]);
    s.wrap_key(&record, master, plain).expect("an ordinary extractable key makes a record");
}
