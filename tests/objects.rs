//! Object management through the C ABI (PKCS#11 3.2 §5.7, §4): create, read, find, copy,
//! set, destroy; session versus token objects; private objects and login; sensitive key
//! material, which never leaves the token nor reaches the store in the clear.

#![allow(missing_docs)]

mod common;

use std::num::NonZeroUsize;

use common::{Fixture, Workspace, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

/// `C_Finalize`, then a fresh `C_Initialize` over the same workspace. Every session must
/// have been dropped before.
fn reload(f: &mut Fixture) {
    f.pkcs11.clone().finalize().expect("C_Finalize");
    f.pkcs11 = common::load();
}

fn data(label: &str, token: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(token),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(format!("value of {label}").into_bytes()),
    ]
}

fn by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).expect("find by label")
}

fn one(s: &Session, h: ObjectHandle, ty: AttributeType) -> Attribute {
    let mut got = s.get_attributes(h, &[ty]).expect("C_GetAttributeValue");
    assert_eq!(got.len(), 1, "{ty:?} missing");
    got.remove(0)
}

fn label_of(s: &Session, h: ObjectHandle) -> Vec<u8> {
    match one(s, h, AttributeType::Label) {
        Attribute::Label(l) => l,
        other => panic!("unexpected {other:?}"),
    }
}

fn value_of(s: &Session, h: ObjectHandle) -> Vec<u8> {
    match one(s, h, AttributeType::Value) {
        Attribute::Value(v) => v,
        other => panic!("unexpected {other:?}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The store's bytes at rest (the SQLite file and its WAL, or the server's files).
fn store_bytes(ws: &Workspace) -> Vec<u8> {
    ws.bytes_at_rest()
}

/// Direct calls for what `cryptoki` does not wrap (or wraps too kindly to see the exact
/// return value), through the module's own exports: the library is already loaded, so
/// this is the same module instance.
#[allow(unsafe_code)]
mod raw {
    use cryptoki_sys::{CK_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_ULONG};

    fn module() -> libloading::Library {
        // SAFETY: loading the module under test again only bumps its reference count; its
        // initializers have already run in this process.
        unsafe { libloading::Library::new(super::common::module_path()) }.expect("dlopen module")
    }

    /// `C_GetObjectSize`.
    pub(crate) fn object_size(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> (CK_RV, CK_ULONG) {
        type F = unsafe extern "C" fn(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ULONG) -> CK_RV;
        let lib = module();
        // SAFETY: C_GetObjectSize has exactly this signature in the PKCS#11 ABI.
        let f = unsafe { lib.get::<F>(b"C_GetObjectSize\0") }.expect("C_GetObjectSize symbol");
        let mut size: CK_ULONG = 0;
        // SAFETY: `size` is a valid, writable CK_ULONG for the duration of the call.
        let rv = unsafe { f(session, object, &mut size) };
        (rv, size)
    }

    /// `C_GetAttributeValue` for one attribute into a buffer of `room` bytes: the return
    /// value, the reported length and the bytes written.
    pub(crate) fn get_attribute(
        session: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        ty: CK_ATTRIBUTE_TYPE,
        room: usize,
    ) -> (CK_RV, CK_ULONG, Vec<u8>) {
        type F = unsafe extern "C" fn(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG) -> CK_RV;
        let lib = module();
        // SAFETY: C_GetAttributeValue has exactly this signature in the PKCS#11 ABI.
        let f = unsafe { lib.get::<F>(b"C_GetAttributeValue\0") }.expect("C_GetAttributeValue symbol");
        let mut buf = vec![0u8; room];
        let mut attr = CK_ATTRIBUTE { type_: ty, pValue: buf.as_mut_ptr().cast(), ulValueLen: room as CK_ULONG };
        // SAFETY: one valid CK_ATTRIBUTE whose buffer has `ulValueLen` writable bytes.
        let rv = unsafe { f(session, object, &mut attr, 1) };
        (rv, attr.ulValueLen, buf)
    }
}

#[test]
fn a_session_data_object_reads_back_its_label_value_and_application() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    let h = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(b"greeting".to_vec()),
            Attribute::Value(b"hello, token".to_vec()),
            Attribute::Application(b"collabvault tests".to_vec()),
        ])
        .expect("C_CreateObject");
    let got = s
        .get_attributes(
            h,
            &[
                AttributeType::Label,
                AttributeType::Value,
                AttributeType::Application,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Class,
            ],
        )
        .expect("C_GetAttributeValue");
    assert_eq!(
        got,
        vec![
            Attribute::Label(b"greeting".to_vec()),
            Attribute::Value(b"hello, token".to_vec()),
            Attribute::Application(b"collabvault tests".to_vec()),
            Attribute::Token(false),
            Attribute::Private(false),
            Attribute::Class(ObjectClass::DATA),
        ]
    );
}

#[test]
fn every_object_has_a_read_only_hex_unique_id() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    let a = s.create_object(&data("a", false)).expect("create a");
    let b = s.create_object(&data("b", true)).expect("create b");
    let uid = |h| match one(&s, h, AttributeType::UniqueId) {
        Attribute::UniqueId(v) => v,
        other => panic!("unexpected {other:?}"),
    };
    let (ua, ub) = (uid(a), uid(b));
    for u in [&ua, &ub] {
        assert_eq!(u.len(), 32, "CKA_UNIQUE_ID {:?}", String::from_utf8_lossy(u));
        assert!(u.iter().all(u8::is_ascii_hexdigit), "CKA_UNIQUE_ID {:?}", String::from_utf8_lossy(u));
    }
    assert_ne!(ua, ub, "two objects share a CKA_UNIQUE_ID");
    for h in [a, b] {
        let rv =
            common::rv_of(s.update_attributes(h, &[Attribute::UniqueId(b"0123456789abcdef0123456789abcdef".to_vec())]));
        assert_eq!(rv, RvError::AttributeReadOnly);
    }
    assert_eq!(uid(a), ua, "a refused set changed CKA_UNIQUE_ID");
    // Nor may a create template name it.
    let mut t = data("c", false);
    t.push(Attribute::UniqueId(b"0123456789abcdef0123456789abcdef".to_vec()));
    assert_eq!(common::rv_of(s.create_object(&t)), RvError::AttributeReadOnly);
}

#[test]
fn session_objects_are_shared_by_sessions_and_vanish_with_their_own() {
    let f = Fixture::new();
    let slot = f.init_token();
    let owner = f.pkcs11.open_rw_session(slot).expect("open owner");
    let other = f.pkcs11.open_ro_session(slot).expect("open other");
    let h = owner.create_object(&data("ephemeral", false)).expect("create");
    assert_eq!(by_label(&other, "ephemeral"), vec![h], "another session does not see the session object");
    assert_eq!(label_of(&other, h), b"ephemeral");
    owner.close().expect("close owner");
    assert_eq!(common::rv_of(other.get_attributes(h, &[AttributeType::Label])), RvError::ObjectHandleInvalid);
    assert!(by_label(&other, "ephemeral").is_empty(), "session object outlived its session");
}

#[test]
fn token_objects_persist_across_finalize_and_reload() {
    let mut f = Fixture::new();
    let slot = f.init_token();
    {
        let s = f.user_session(slot);
        s.create_object(&data("kept-public", true)).expect("create public");
        let mut private = data("kept-private", true);
        private.push(Attribute::Private(true));
        s.create_object(&private).expect("create private");
        s.create_object(&data("dropped", false)).expect("create session object");
    }
    reload(&mut f);
    let slot = f.slot();
    let s = f.pkcs11.open_ro_session(slot).expect("open");
    let h = by_label(&s, "kept-public");
    assert_eq!(h.len(), 1, "public token object lost on reload");
    assert_eq!(value_of(&s, h[0]), b"value of kept-public");
    assert!(by_label(&s, "dropped").is_empty(), "a session object survived finalize");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
    let h = by_label(&s, "kept-private");
    assert_eq!(h.len(), 1, "private token object lost on reload");
    assert_eq!(value_of(&s, h[0]), b"value of kept-private");
}

#[test]
fn private_objects_are_invisible_until_the_user_logs_in() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    let mut private_token = data("hidden-token", true);
    private_token.push(Attribute::Private(true));
    let mut private_session = data("hidden-session", false);
    private_session.push(Attribute::Private(true));
    assert_eq!(common::rv_of(s.create_object(&private_token)), RvError::UserNotLoggedIn);
    assert_eq!(common::rv_of(s.create_object(&private_session)), RvError::UserNotLoggedIn);

    s.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
    let ht = s.create_object(&private_token).expect("create private token object");
    let hs = s.create_object(&private_session).expect("create private session object");
    let public = s.create_object(&data("in-view", true)).expect("create public");
    s.logout().expect("logout");

    for label in ["hidden-token", "hidden-session"] {
        assert!(by_label(&s, label).is_empty(), "{label} found while logged out");
    }
    assert_eq!(s.find_objects(&[]).expect("find all"), vec![public], "find-all shows private objects");
    for h in [ht, hs] {
        assert_eq!(common::rv_of(s.get_attributes(h, &[AttributeType::Label])), RvError::ObjectHandleInvalid);
        assert_eq!(common::rv_of(s.destroy_object(h)), RvError::ObjectHandleInvalid);
    }

    s.login(UserType::User, Some(&pin(USER_PIN))).expect("login again");
    assert_eq!(by_label(&s, "hidden-token"), vec![ht]);
    assert_eq!(value_of(&s, ht), b"value of hidden-token");
    // The logout destroyed the private session object (spec §5.6.4, issue #12).
    assert!(by_label(&s, "hidden-session").is_empty(), "a private session object outlived the logout");
    assert_eq!(common::rv_of(s.get_attributes(hs, &[AttributeType::Label])), RvError::ObjectHandleInvalid);
}

#[test]
fn find_matches_by_label_id_class_and_an_empty_template_finds_everything_visible() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    let d1 = s.create_object(&data("alpha", true)).expect("d1");
    let d2 = s.create_object(&data("beta", false)).expect("d2");
    let d3 = s.create_object(&data("alpha", false)).expect("d3");
    let cert = s
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Subject(b"CN=find".to_vec()),
            Attribute::Value(b"\x30\x03\x02\x01\x01".to_vec()),
            Attribute::Id(b"id-1".to_vec()),
        ])
        .expect("cert");
    let key = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(vec![0x42; 16]),
            Attribute::Id(b"id-1".to_vec()),
            Attribute::Label(b"key".to_vec()),
        ])
        .expect("key");

    let sorted = |mut v: Vec<ObjectHandle>| {
        v.sort_by_key(ObjectHandle::handle);
        v
    };
    assert_eq!(sorted(by_label(&s, "alpha")), sorted(vec![d1, d3]));
    assert_eq!(by_label(&s, "beta"), vec![d2]);
    assert!(by_label(&s, "gamma").is_empty());
    assert_eq!(sorted(s.find_objects(&[Attribute::Id(b"id-1".to_vec())]).expect("by id")), sorted(vec![cert, key]));
    assert!(s.find_objects(&[Attribute::Id(b"id-2".to_vec())]).expect("by other id").is_empty());
    assert_eq!(
        sorted(s.find_objects(&[Attribute::Class(ObjectClass::DATA)]).expect("by class")),
        sorted(vec![d1, d2, d3])
    );
    // The workspace master key objects (current + v1) are secret keys too.
    let masters = sorted(s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("current master"))
        .into_iter()
        .chain(s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("master v1"))
        .collect::<Vec<_>>();
    assert_eq!(masters.len(), 2, "the current master key and its version 1");
    let mut keys = vec![key];
    keys.extend(masters.iter().copied());
    assert_eq!(sorted(s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).expect("keys")), sorted(keys));
    assert_eq!(
        s.find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"alpha".to_vec())
        ])
        .expect("combined"),
        vec![d1]
    );
    let mut all = vec![d1, d2, d3, cert, key];
    all.extend(masters);
    assert_eq!(sorted(s.find_objects(&[]).expect("all")), sorted(all));
    // Logged out, the (private by default) key drops out of find-all.
    s.logout().expect("logout");
    assert_eq!(sorted(s.find_objects(&[]).expect("all public")), sorted(vec![d1, d2, d3, cert]));
}

#[test]
fn find_hands_results_out_in_chunks() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    let mut made: Vec<ObjectHandle> =
        (0..5).map(|i| s.create_object(&data(&format!("chunk-{i}"), i % 2 == 0)).expect("create")).collect();
    let two = NonZeroUsize::new(2).expect("non-zero");
    let mut found: Vec<ObjectHandle> = s
        .iter_objects_with_cache_size(&[Attribute::Class(ObjectClass::DATA)], two)
        .expect("C_FindObjectsInit")
        .collect::<Result<_, _>>()
        .expect("C_FindObjects");
    assert_eq!(found.len(), 5, "chunked find returned {found:?}");
    found.sort_by_key(ObjectHandle::handle);
    made.sort_by_key(ObjectHandle::handle);
    assert_eq!(found, made);
    // One find at a time per session.
    let active = s.iter_objects(&[]).expect("first find");
    assert_eq!(common::rv_of(s.find_objects(&[])), RvError::OperationActive);
    drop(active);
    assert_eq!(s.find_objects(&[]).expect("find after final").len(), 5);
}

#[test]
fn copy_object_applies_a_template_changing_label_and_token() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    let src = s.create_object(&data("original", false)).expect("create");
    let copy =
        s.copy_object(src, &[Attribute::Label(b"the copy".to_vec()), Attribute::Token(true)]).expect("C_CopyObject");
    assert_ne!(copy, src);
    assert_eq!(label_of(&s, copy), b"the copy");
    assert_eq!(one(&s, copy, AttributeType::Token), Attribute::Token(true));
    assert_eq!(value_of(&s, copy), b"value of original");
    assert_eq!(label_of(&s, src), b"original", "the source changed");
    assert_eq!(one(&s, src, AttributeType::Token), Attribute::Token(false));
    assert_ne!(one(&s, src, AttributeType::UniqueId), one(&s, copy, AttributeType::UniqueId));
    s.close().expect("close");
    // The copy is a token object: it outlives the session; the source does not.
    let s = f.pkcs11.open_ro_session(slot).expect("open again");
    assert_eq!(by_label(&s, "the copy"), vec![copy]);
    assert!(by_label(&s, "original").is_empty());
}

#[test]
fn copying_an_uncopyable_object_is_action_prohibited() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    let mut t = data("stay", true);
    t.push(Attribute::Copyable(false));
    let h = s.create_object(&t).expect("create");
    assert_eq!(common::rv_of(s.copy_object(h, &[])), RvError::ActionProhibited);
    assert_eq!(common::rv_of(s.copy_object(h, &[Attribute::Label(b"x".to_vec())])), RvError::ActionProhibited);
    assert_eq!(s.find_objects(&[]).expect("all").len(), 1);
}

#[test]
fn set_attributes_changes_a_token_object_label_persistently() {
    let mut f = Fixture::new();
    let slot = f.init_token();
    {
        let s = f.pkcs11.open_rw_session(slot).expect("open");
        let h = s.create_object(&data("before", true)).expect("create");
        s.update_attributes(h, &[Attribute::Label(b"after".to_vec())]).expect("C_SetAttributeValue");
        assert_eq!(label_of(&s, h), b"after");
        assert_eq!(by_label(&s, "after"), vec![h]);
        assert!(by_label(&s, "before").is_empty());
    }
    reload(&mut f);
    let s = f.pkcs11.open_ro_session(f.slot()).expect("open after reload");
    let h = by_label(&s, "after");
    assert_eq!(h.len(), 1, "the new label was not persisted");
    assert_eq!(value_of(&s, h[0]), b"value of before");
    assert!(by_label(&s, "before").is_empty());
}

#[test]
fn setting_an_attribute_of_an_unmodifiable_object_is_action_prohibited() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    for token in [false, true] {
        let mut t = data("frozen", token);
        t.push(Attribute::Modifiable(false));
        let h = s.create_object(&t).expect("create");
        let rv = common::rv_of(s.update_attributes(h, &[Attribute::Label(b"thawed".to_vec())]));
        assert_eq!(rv, RvError::ActionProhibited, "token={token}");
        assert_eq!(label_of(&s, h), b"frozen");
    }
}

#[test]
fn destroying_an_undestroyable_object_is_action_prohibited() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    for token in [false, true] {
        let mut t = data(&format!("permanent-{token}"), token);
        t.push(Attribute::Destroyable(false));
        let h = s.create_object(&t).expect("create");
        assert_eq!(common::rv_of(s.destroy_object(h)), RvError::ActionProhibited, "token={token}");
        assert_eq!(by_label(&s, &format!("permanent-{token}")), vec![h]);
    }
}

#[test]
fn destroying_a_token_object_from_a_read_only_session_is_session_read_only() {
    let f = Fixture::new();
    let slot = f.init_token();
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    let h = rw.create_object(&data("guarded", true)).expect("create");
    let ro = f.pkcs11.open_ro_session(slot).expect("open ro");
    assert_eq!(by_label(&ro, "guarded"), vec![h]);
    assert_eq!(common::rv_of(ro.destroy_object(h)), RvError::SessionReadOnly);
    assert_eq!(by_label(&ro, "guarded"), vec![h], "the object is gone after a refused destroy");
    // Creating or changing token objects from it is refused the same way.
    assert_eq!(common::rv_of(ro.create_object(&data("ro-made", true))), RvError::SessionReadOnly);
    assert_eq!(common::rv_of(ro.update_attributes(h, &[Attribute::Label(b"x".to_vec())])), RvError::SessionReadOnly);
    rw.destroy_object(h).expect("destroy from the rw session");
    assert!(by_label(&ro, "guarded").is_empty());
    assert_eq!(common::rv_of(ro.get_attributes(h, &[AttributeType::Label])), RvError::ObjectHandleInvalid);
}

#[test]
fn get_object_size_is_positive() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    for token in [false, true] {
        let h = s.create_object(&data("sized", token)).expect("create");
        let (rv, size) = raw::object_size(s.handle(), h.handle());
        assert_eq!(rv, cryptoki_sys::CKR_OK, "token={token}");
        assert!(size > 0, "token={token}: size {size}");
    }
}

#[test]
fn a_sensitive_aes_key_never_reveals_its_value_nor_stores_it_in_the_clear() {
    let f = Fixture::new();
    let slot = f.init_token();
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(0xa5)).collect();
    {
        let s = f.user_session(slot);
        let h = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Sensitive(true),
                Attribute::Label(b"aes-256".to_vec()),
                Attribute::Value(key.clone()),
            ])
            .expect("create AES key");
        let (rv, len, buf) = raw::get_attribute(s.handle(), h.handle(), cryptoki_sys::CKA_VALUE, 64);
        assert_eq!(rv, cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE, "CKA_VALUE of a sensitive key");
        assert_eq!(len, cryptoki_sys::CK_UNAVAILABLE_INFORMATION);
        assert!(!contains(&buf, &key));
        let info = s.get_attribute_info(h, &[AttributeType::Value]).expect("info");
        assert!(matches!(info.as_slice(), [AttributeInfo::Sensitive]), "{info:?}");
        assert_eq!(one(&s, h, AttributeType::ValueLen), Attribute::ValueLen(32.into()));
        assert_eq!(one(&s, h, AttributeType::Sensitive), Attribute::Sensitive(true));
        assert_eq!(one(&s, h, AttributeType::Private), Attribute::Private(true), "keys default to private");
        let rv = common::rv_of(s.update_attributes(h, &[Attribute::Sensitive(false)]));
        assert_eq!(rv, RvError::AttributeReadOnly);
        assert_eq!(one(&s, h, AttributeType::Sensitive), Attribute::Sensitive(true));
        // A find naming the secret value is no oracle.
        assert!(s.find_objects(&[Attribute::Value(key.clone())]).expect("find by value").is_empty());
        let copy = s.copy_object(h, &[Attribute::Label(b"aes copy".to_vec())]).expect("copy");
        let (rv, _, _) = raw::get_attribute(s.handle(), copy.handle(), cryptoki_sys::CKA_VALUE, 64);
        assert_eq!(rv, cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE, "CKA_VALUE of the copy");
    }
    let bytes = store_bytes(&f.ws);
    assert!(bytes.len() > 1024, "store file unexpectedly small");
    assert!(!contains(&bytes, &key), "the key bytes are in the store in the clear");
    assert!(!contains(&bytes, &key[..16]), "half the key bytes are in the store in the clear");
    let hex = hex::encode(&key);
    assert!(!f.ws.log().contains(&hex), "the key was logged");
}

#[test]
fn an_extractable_non_sensitive_secret_key_reveals_its_value() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    let key = vec![0x3c; 16];
    for token in [false, true] {
        let h = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(token),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Value(key.clone()),
            ])
            .expect("create key");
        assert_eq!(value_of(&s, h), key, "token={token}");
        assert_eq!(one(&s, h, AttributeType::ValueLen), Attribute::ValueLen(16.into()));
    }
}

#[test]
fn an_x509_certificate_can_be_created_and_found_by_id() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    // A DER SEQUENCE standing in for a certificate: the token stores it as opaque bytes.
    let der = b"\x30\x0b\x06\x03\x55\x04\x03\x0c\x04test".to_vec();
    let subject = b"\x30\x0f\x31\x0d\x30\x0b\x06\x03\x55\x04\x03\x0c\x04test".to_vec();
    let h = s
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Subject(subject.clone()),
            Attribute::Value(der.clone()),
            Attribute::Id(b"cert-7".to_vec()),
            Attribute::Label(b"my cert".to_vec()),
        ])
        .expect("create certificate");
    s.close().expect("close");
    let s = f.pkcs11.open_ro_session(slot).expect("open ro");
    assert_eq!(s.find_objects(&[Attribute::Id(b"cert-7".to_vec())]).expect("find by id"), vec![h]);
    assert_eq!(
        s.find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Id(b"cert-7".to_vec()),
        ])
        .expect("find by class, type and id"),
        vec![h]
    );
    let got = s
        .get_attributes(h, &[AttributeType::Subject, AttributeType::Value, AttributeType::Private])
        .expect("read cert");
    assert_eq!(got, vec![Attribute::Subject(subject), Attribute::Value(der), Attribute::Private(false)]);
    // A certificate without its required CKA_SUBJECT is incomplete.
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    let rv = common::rv_of(rw.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Value(b"\x30\x00".to_vec()),
    ]));
    assert_eq!(rv, RvError::TemplateIncomplete);
}

#[test]
fn a_private_data_object_value_is_sealed_at_rest() {
    let f = Fixture::new();
    let slot = f.init_token();
    let secret = b"private-data-object-value-7f3a91".to_vec();
    {
        let s = f.user_session(slot);
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(b"private data".to_vec()),
            Attribute::Value(secret.clone()),
        ])
        .expect("create private data object");
        let h = by_label(&s, "private data");
        assert_eq!(h.len(), 1);
        assert_eq!(value_of(&s, h[0]), secret);
    }
    assert!(!contains(&store_bytes(&f.ws), &secret), "a private data object's value is in the store in the clear");
}

/// The statements the server ran for this test's database since `from` (bytes into the
/// server log): one line each, with `log_statement = 'all'` set on the database.
fn statements_since(from: u64) -> Vec<String> {
    let log = std::fs::read(common::postgres::shared().log_file()).expect("server log");
    let tail = String::from_utf8_lossy(&log[usize::try_from(from).expect("offset")..]).into_owned();
    // A record starts with its timestamp (`log_line_prefix` '%m [%p] '); a statement's
    // further lines follow it unprefixed.
    let mut records: Vec<String> = Vec::new();
    for line in tail.lines() {
        let b = line.as_bytes();
        let starts = b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
        match records.last_mut() {
            Some(last) if !starts => {
                last.push('\n');
                last.push_str(line);
            }
            _ => records.push(line.to_string()),
        }
    }
    records.retain(|r| r.contains("LOG:  execute ") || r.contains("LOG:  statement: "));
    records
}

fn log_len() -> u64 {
    std::fs::metadata(common::postgres::shared().log_file()).expect("server log").len()
}

/// A logged-in `C_FindObjectsInit` + `C_FindObjects` + `C_FindObjectsFinal` on
/// PostgreSQL is one statement, one round trip over the socket: the objects, the token
/// epoch and the master key rows it is judged against in one read (it was five: the
/// epoch twice, the master key rows once per stored DEK it opened and once for the master
/// key objects, and the objects). Counted from the server's own statement log; the KEK
/// row the per-call check re-reads at most every 250 ms is left out of the count.
#[test]
fn a_logged_in_find_is_one_statement_on_postgresql() {
    if !common::postgres::selected() {
        eprintln!("skipped: counts the statements a PostgreSQL server runs (CV_TEST_STORE=postgres)");
        return;
    }
    let mut f = Fixture::new();
    let slot = f.init_token();
    let db = f.ws.live_sql("SELECT current_database()");
    f.ws.live_sql(&format!("ALTER DATABASE {db} SET log_statement = 'all'"));
    // New connections see the setting: the module connects again after a reload.
    reload(&mut f);
    let s = f.user_session(slot);
    let dek = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Encrypt(true),
        Attribute::Label(b"counted".to_vec()),
    ];
    s.generate_key(&cryptoki::mechanism::Mechanism::AesKeyGen, &dek).expect("token key");
    // The first find on a connection prepares its statement; later ones reuse it.
    assert_eq!(by_label(&s, "counted").len(), 1);
    for label in ["counted", "collabvault-master", "no such label"] {
        let from = log_len();
        let found = by_label(&s, label).len();
        let statements: Vec<String> = statements_since(from)
            .into_iter()
            .filter(|l| !l.contains("workspace_keks") && !l.contains("unlock_grants"))
            .collect();
        assert_eq!(found, usize::from(label != "no such label"), "{label}");
        assert_eq!(statements.len(), 1, "{label}: one statement per find, the server ran {statements:#?}");
        assert!(statements[0].contains("FROM objects"), "{}", statements[0]);
    }
}
