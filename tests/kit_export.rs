//! `C_WrapKey(CKM_CV_EXPORT_KIT)` through the built module: the one way master keys leave
//! it, sealed under a recovery kit's key. Who may call it, with which keys and parameter,
//! and how a `[quorum]` guards it (locked: refused; unlocked: an approved `export-kit`
//! request, used once). The sealed section opens with the kit key to the versions whose
//! check values the module reports as `CKA_CHECK_VALUE`.

#![allow(missing_docs)]

mod common;

use collabvault_pkcs11::recovery::kit;
use collabvault_pkcs11::vendor::{CKM_CV_EXPORT_KIT, CKR_CV_LOCKED, CKR_CV_QUORUM_REQUIRED};
use common::quorum::{rv_among, Setup};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

const KIT_ID: [u8; 16] = [0x5a; 16];
const KIT_KEY: [u8; 32] = [0x42; 32];

fn rv_of<T>(r: cryptoki::error::Result<T>) -> CK_RV {
    rv_among(
        r,
        &[
            CKR_CV_LOCKED,
            CKR_CV_QUORUM_REQUIRED,
            CKR_KEY_NOT_WRAPPABLE,
            CKR_MECHANISM_PARAM_INVALID,
            CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            CKR_WRAPPING_KEY_SIZE_RANGE,
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            CKR_USER_NOT_LOGGED_IN,
            CKR_KEY_HANDLE_INVALID,
        ],
    )
}

fn export_mech<const N: usize>(id: &[u8; N]) -> Mechanism<'_> {
    let ty = MechanismType::new_vendor_defined(CKM_CV_EXPORT_KIT).expect("vendor range");
    Mechanism::VendorDefined(VendorDefinedMechanism::new(ty, Some(id)))
}

fn kit_key(s: &Session, value: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value.to_vec()),
        Attribute::Token(false),
        Attribute::Wrap(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ])
    .expect("kit key")
}

fn object(s: &Session, label: &str) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).expect("find")[0]
}

fn check_value(s: &Session, label: &str) -> Vec<u8> {
    match s.get_attributes(object(s, label), &[AttributeType::CheckValue]).expect("get").first() {
        Some(Attribute::CheckValue(v)) => v.clone(),
        other => panic!("{label}: {other:?}"),
    }
}

/// Seals the hierarchy under [`KIT_KEY`] and opens it back.
fn export(s: &Session) -> cryptoki::error::Result<Vec<kit::KitVersion>> {
    let key = kit_key(s, &KIT_KEY);
    let sealed = s.wrap_key(&export_mech(&KIT_ID), key, object(s, "collabvault-master"));
    s.destroy_object(key).expect("destroy kit key");
    Ok(kit::open_keys(&KIT_KEY, "main", &KIT_ID, &sealed?).expect("the section opens with the kit key"))
}

#[test]
fn an_export_seals_every_version_that_unwraps_and_opens_to_the_live_check_values() {
    let mut s = Setup::new("");
    let user = s.user();
    let ty = MechanismType::new_vendor_defined(collabvault_pkcs11::vendor::CKM_CV_ROTATE_MASTER).expect("vendor");
    user.generate_key(&Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)), &[]).expect("rotate");
    let versions = export(&user).expect("export");
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    for v in &versions {
        assert_eq!(v.kcv.to_vec(), check_value(&user, &format!("collabvault-master-v{}", v.version)));
    }
    assert_eq!(check_value(&user, "collabvault-master"), versions[1].kcv.to_vec(), "current = v2");
    assert!(kit::open_keys(&[0x43; 32], "main", &KIT_ID, &{
        let key = kit_key(&user, &KIT_KEY);
        user.wrap_key(&export_mech(&KIT_ID), key, object(&user, "collabvault-master")).expect("again")
    })
    .is_err());
    drop(user);
    let rows = s.audit();
    let exports =
        rows.iter().filter(|r| r.event.object.as_deref().is_some_and(|o| o.starts_with("recovery kit 5a5a"))).count();
    assert_eq!(exports, 2, "every export is audited with its kit id");
    assert!(!rows.iter().any(|r| r
        .event
        .object
        .as_deref()
        .is_some_and(|o| o.contains(&hex::encode(versions[0].key.as_ref())))));
}

#[test]
fn an_export_needs_the_whole_hierarchy_a_kit_id_and_an_aes_256_key() {
    let mut s = Setup::new("");
    let user = s.user();
    let key = kit_key(&user, &KIT_KEY);
    let version = object(&user, "collabvault-master-v1");
    assert_eq!(rv_of(user.wrap_key(&export_mech(&KIT_ID), key, version)), CKR_KEY_NOT_WRAPPABLE);
    let master = object(&user, "collabvault-master");
    assert_eq!(rv_of(user.wrap_key(&export_mech(&[1u8; 8]), key, master)), CKR_MECHANISM_PARAM_INVALID);
    let short = kit_key(&user, &[1u8; 16]);
    assert_eq!(rv_of(user.wrap_key(&export_mech(&KIT_ID), short, master)), CKR_WRAPPING_KEY_SIZE_RANGE);
    let no_wrap = user
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(KIT_KEY.to_vec()),
            Attribute::Token(false),
            Attribute::Wrap(false),
        ])
        .expect("key");
    assert_eq!(rv_of(user.wrap_key(&export_mech(&KIT_ID), no_wrap, master)), CKR_KEY_FUNCTION_NOT_PERMITTED);
}

#[test]
fn with_a_quorum_an_export_needs_an_unlock_and_its_approved_request_used_once() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    let user = s.user();
    assert_eq!(rv_of(export(&user)), CKR_CV_LOCKED, "locked: refused before any request is opened");
    drop(user);
    assert!(s.store().requests("main").unwrap().iter().all(|r| r.action != "export-kit"));
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let user = s.user();
    assert_eq!(rv_of(export(&user)), CKR_CV_QUORUM_REQUIRED);
    drop(user);
    let id = s.store().requests("main").unwrap().into_iter().find(|r| r.action == "export-kit").expect("request").id;
    assert_eq!(s.approve(&format!("alice:{id}"), "alice passphrase 1"), CKR_OK);
    let user = s.user();
    assert_eq!(rv_of(export(&user)), CKR_CV_QUORUM_REQUIRED, "one approval is not a quorum");
    drop(user);
    assert_eq!(s.approve(&format!("carol:{id}"), "carol passphrase 333"), CKR_OK);
    let user = s.user();
    let versions = export(&user).expect("approved: exported");
    assert_eq!(versions[0].kcv.to_vec(), check_value(&user, "collabvault-master-v1"));
    assert_eq!(rv_of(export(&user)), CKR_CV_QUORUM_REQUIRED, "the approval was used once");
}
