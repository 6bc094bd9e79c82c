//! The key hierarchy through the C ABI with a real SoftHSM2 token as the root of trust:
//! master key objects, wrap records across rotations, authenticated records, one-call
//! re-wrap, retirement, and the root's failure modes.

// The 3.2 authenticated wrap calls go through the raw function list.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs, clippy::cast_possible_truncation)]

mod common;

use common::vendor;

use std::ptr::null_mut;

use common::hsm::{Hsm, ROOT_LABEL};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::*;

const CKM_CV_WRAP_RECORD: CK_ULONG = 0xC356_0001;
const CKM_CV_REWRAP_RECORD: CK_ULONG = 0xC356_0002;
const CKM_CV_ROTATE_MASTER: CK_ULONG = 0xC356_0003;
const CKA_CV_KEY_VERSION: CK_ULONG = 0xC356_0002;
const CKA_CV_LIFECYCLE: CK_ULONG = 0xC356_0003;
const CKA_CV_STORED_RECORDS: CK_ULONG = 0xC356_0008;

/// A module over a fresh store whose root is a fresh SoftHSM2 token. Dropping it calls
/// `C_Finalize`, as applications must: that is what finalizes the underlying SoftHSM2
/// (the module loaded it), before its token directory goes away.
struct Setup {
    pkcs11: Option<Pkcs11>,
    ws: common::Workspace,
    hsm: Hsm,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.finalize();
    }
}

impl Setup {
    fn new() -> Setup {
        Setup::with_root_label(ROOT_LABEL)
    }

    fn with_root_label(label: &str) -> Setup {
        let serial = common::lock();
        let hsm = Hsm::new();
        let ws = common::Workspace::with_config_body(&format!(
            "{}[[workspace]]\nname = \"main\"\n",
            hsm.root_section(label)
        ));
        Setup { pkcs11: Some(common::load()), ws, hsm, _serial: serial }
    }

    fn p(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().expect("loaded")
    }

    fn finalize(&mut self) {
        if let Some(p) = self.pkcs11.take() {
            p.finalize().expect("C_Finalize");
        }
    }

    fn user(&self) -> Session {
        let slot = self.p().get_all_slots().expect("slots")[0];
        let s = self.p().open_rw_session(slot).expect("open");
        s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("login");
        s
    }

    fn init(&self) -> Session {
        let slot = self.p().get_all_slots().expect("slots")[0];
        self.p().init_token(slot, &AuthPin::new(common::SO_PIN.into()), "hsm-backed").expect("C_InitToken");
        let so = self.p().open_rw_session(slot).expect("open");
        so.login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into()))).expect("SO login");
        so.init_pin(&AuthPin::new(common::USER_PIN.into())).expect("C_InitPIN");
        drop(so);
        self.user()
    }
}

fn current_master(s: &Session) -> ObjectHandle {
    let found = s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find");
    assert_eq!(found.len(), 1, "one current master key object");
    found[0]
}

fn version_of(s: &Session, h: ObjectHandle) -> (u64, u64) {
    let attrs = s
        .get_attributes(
            h,
            &[AttributeType::VendorDefined(CKA_CV_KEY_VERSION), AttributeType::VendorDefined(CKA_CV_LIFECYCLE)],
        )
        .expect("vendor attributes");
    let num = |a: &Attribute| match a {
        Attribute::VendorDefined((_, bytes)) => u64::from_ne_bytes(bytes.as_slice().try_into().expect("CK_ULONG")),
        other => panic!("unexpected {other:?}"),
    };
    (num(&attrs[0]), num(&attrs[1]))
}

fn dek(s: &Session) -> ObjectHandle {
    common::session_dek(s)
}

fn seal(s: &Session, key: ObjectHandle, data: &[u8]) -> Vec<u8> {
    let mut iv = [7u8; 12];
    s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).expect("gcm")), key, data).expect("encrypt")
}

fn open(s: &Session, key: ObjectHandle, sealed: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = [7u8; 12];
    s.decrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).expect("gcm")), key, sealed)
}

fn unwrap_dek(s: &Session, master: ObjectHandle, record: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master, record, &[Attribute::Token(false)])
}

fn record_version(record: &[u8]) -> u32 {
    let ws_len = usize::from(record[6]);
    u32::from_be_bytes(record[7 + ws_len..11 + ws_len].try_into().expect("version"))
}

#[test]
fn an_hsm_rooted_token_shows_its_master_key_as_objects() {
    let setup = Setup::new();
    let s = setup.init();
    let slot = setup.p().get_all_slots().expect("slots")[0];
    assert_eq!(setup.p().get_token_info(slot).expect("info").model(), "hsm root");
    let current = current_master(&s);
    assert_eq!(version_of(&s, current), (1, 1), "v1, active");
    let v1 = s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("find v1");
    assert_eq!(v1.len(), 1);
    let sensitive = s.get_attributes(current, &[AttributeType::Sensitive, AttributeType::Extractable]).expect("attrs");
    assert_eq!(sensitive, vec![Attribute::Sensitive(true), Attribute::Extractable(false)]);
    assert!(matches!(common::rv_of(s.destroy_object(current)), RvError::ActionProhibited));
    // The root key really is in SoftHSM2, sensitive and never extractable.
    let listed = setup.hsm.tool(&["--list-objects", "--type", "secrkey"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("collabvault-root/main"), "{text}");
    assert!(text.contains("never extractable") || text.contains("sensitive"), "{text}");
}

#[test]
fn a_dek_wrapped_under_the_master_key_comes_back_after_a_rotation() {
    let setup = Setup::new();
    let s = setup.init();
    let key = dek(&s);
    let document = seal(&s, key, b"quarterly numbers");
    let master = current_master(&s);
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master, key).expect("wrap");
    assert_eq!((&record[..4], record_version(&record)), (&b"CVWR"[..], 1));
    s.destroy_object(key).expect("destroy DEK");

    let v2 = s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    assert_eq!(version_of(&s, v2), (2, 1), "v2 is active");
    let v1 = s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("v1")[0];
    assert_eq!(version_of(&s, v1), (1, 2), "v1 is decrypt-only");
    assert_eq!(version_of(&s, current_master(&s)).0, 2, "the current object follows the rotation");

    // The old record still unwraps through "the current master key".
    let back = unwrap_dek(&s, current_master(&s), &record).expect("unwrap v1 record");
    assert_eq!(open(&s, back, &document).expect("decrypt"), b"quarterly numbers");
    // New records use v2; v1 no longer makes records.
    let again = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(&s), back).expect("wrap again");
    assert_eq!(record_version(&again), 2);
    assert!(matches!(
        common::rv_of(s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), v1, back)),
        RvError::KeyFunctionNotPermitted
    ));
    // The record binds the key's policy: it cannot come back as non-sensitive.
    let weaker = s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(&s), &record, &[Attribute::Sensitive(false)]);
    assert!(matches!(common::rv_of(weaker), RvError::TemplateInconsistent));
}

#[test]
fn every_flipped_byte_of_a_record_is_wrapped_key_invalid() {
    let setup = Setup::new();
    let s = setup.init();
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(&s), dek(&s)).expect("wrap");
    let master = current_master(&s);
    for i in 0..record.len() {
        let mut bad = record.clone();
        bad[i] ^= 0x01;
        let rv = common::rv_of(unwrap_dek(&s, master, &bad));
        // A flipped version byte may name a version that does not exist: that is refused too.
        assert!(matches!(rv, RvError::WrappedKeyInvalid | RvError::ActionProhibited), "byte {i}: {rv:?}");
    }
    assert!(unwrap_dek(&s, master, &record).is_ok(), "the untouched record still unwraps");
}

#[test]
fn an_authenticated_record_opens_only_with_its_associated_data() {
    let setup = Setup::new();
    let s = setup.init();
    let key = dek(&s);
    let master = current_master(&s);
    let lib = unsafe { cryptoki_sys::Pkcs11::new(common::module_path()) }.expect("load");
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_eq!(unsafe { lib.C_GetInterface(null_mut(), null_mut(), &mut iface, 0) }, CKR_OK);
    let f = unsafe { *(*iface).pFunctionList.cast::<CK_FUNCTION_LIST_3_2>() };
    let mut m = CK_MECHANISM { mechanism: CKM_CV_WRAP_RECORD, pParameter: null_mut(), ulParameterLen: 0 };
    let mut ad = b"document-42".to_vec();
    let mut record = vec![0u8; 512];
    let mut len = record.len() as CK_ULONG;
    let rv = unsafe {
        f.C_WrapKeyAuthenticated.expect("slot")(
            s.handle(),
            &mut m,
            master.handle(),
            key.handle(),
            ad.as_mut_ptr(),
            ad.len() as CK_ULONG,
            record.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(rv, CKR_OK);
    record.truncate(len as usize);
    let unwrap = |ad: &mut Vec<u8>| {
        let mut out: CK_OBJECT_HANDLE = 0;
        let mut token = CK_FALSE;
        let mut t = [CK_ATTRIBUTE { type_: CKA_TOKEN, pValue: std::ptr::from_mut(&mut token).cast(), ulValueLen: 1 }];
        let mut m = CK_MECHANISM { mechanism: CKM_CV_WRAP_RECORD, pParameter: null_mut(), ulParameterLen: 0 };
        let mut r = record.clone();
        unsafe {
            f.C_UnwrapKeyAuthenticated.expect("slot")(
                s.handle(),
                &mut m,
                master.handle(),
                r.as_mut_ptr(),
                r.len() as CK_ULONG,
                t.as_mut_ptr(),
                1,
                ad.as_mut_ptr(),
                ad.len() as CK_ULONG,
                &mut out,
            )
        }
    };
    assert_eq!(unwrap(&mut b"document-42".to_vec()), CKR_OK);
    assert_eq!(unwrap(&mut b"document-43".to_vec()), CKR_WRAPPED_KEY_INVALID);
    assert!(matches!(common::rv_of(unwrap_dek(&s, master, &record)), RvError::WrappedKeyInvalid), "no AD is wrong AD");
}

#[test]
fn a_record_is_rewrapped_to_the_newest_version_in_one_call() {
    let setup = Setup::new();
    let s = setup.init();
    let key = dek(&s);
    let document = seal(&s, key, b"contract");
    let old = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(&s), key).expect("wrap");
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    let new = s.encrypt(&vendor(CKM_CV_REWRAP_RECORD), current_master(&s), &old).expect("rewrap");
    assert_eq!((record_version(&old), record_version(&new)), (1, 2));
    let back = unwrap_dek(&s, current_master(&s), &new).expect("unwrap");
    assert_eq!(open(&s, back, &document).expect("decrypt"), b"contract");
}

#[test]
fn a_version_retires_only_when_superseded_and_then_no_longer_unwraps() {
    let setup = Setup::new();
    let s = setup.init();
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(&s), dek(&s)).expect("wrap");
    let v1 = s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("v1")[0];
    let set_state = |h, state: u64| {
        s.update_attributes(
            h,
            &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LIFECYCLE), state.to_ne_bytes().to_vec()))],
        )
    };
    assert!(matches!(common::rv_of(set_state(v1, 3)), RvError::ActionProhibited), "the active version cannot retire");
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    assert!(matches!(common::rv_of(set_state(v1, 4)), RvError::ActionProhibited), "destroy needs retire first");
    set_state(v1, 3).expect("retire v1");
    assert_eq!(version_of(&s, v1), (1, 3));
    assert!(matches!(common::rv_of(unwrap_dek(&s, current_master(&s), &record)), RvError::ActionProhibited));
    set_state(v1, 4).expect("destroy v1");
    assert_eq!(version_of(&s, v1), (1, 4));
}

#[test]
fn a_wrong_root_pin_leaves_the_token_absent_with_a_clear_error() {
    let mut setup = Setup::new();
    setup.finalize();
    std::env::set_var(common::hsm::ROOT_PIN_ENV, "wrong-pin");
    setup.pkcs11 = Some(common::load());
    let pkcs11 = setup.p();
    let slots = pkcs11.get_all_slots().expect("slots");
    assert!(pkcs11.get_slots_with_token().expect("present").is_empty(), "no token without its root");
    assert!(matches!(common::rv_of(pkcs11.get_token_info(slots[0])), RvError::DeviceError));
    assert!(matches!(common::rv_of(pkcs11.open_rw_session(slots[0])), RvError::DeviceError));
    assert!(setup.ws.log().contains("refused the PIN"), "the log names the cause");
}

#[test]
fn a_missing_root_token_is_token_not_present() {
    let setup = Setup::with_root_label("no-such-token");
    let slot = setup.p().get_all_slots().expect("slots")[0];
    assert!(matches!(common::rv_of(setup.p().open_rw_session(slot)), RvError::TokenNotPresent));
    assert!(setup.ws.log().contains("no-such-token"));
}

#[test]
fn a_deleted_root_key_is_a_device_error_not_a_new_key() {
    let setup = Setup::new();
    drop(setup.init());
    let deleted = setup.hsm.tool(&["--delete-object", "--type", "secrkey", "--label", "collabvault-root/main"]);
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    let slot = setup.p().get_all_slots().expect("slots")[0];
    let s = setup.p().open_rw_session(slot).expect("open");
    let login = s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())));
    assert!(matches!(common::rv_of(login), RvError::DeviceError));
    assert!(setup.ws.log().contains("root key of workspace \"main\" is missing"));
}

#[test]
fn no_key_bytes_reach_the_store_file() {
    let setup = Setup::new();
    let s = setup.init();
    let known = vec![0x5a; 32];
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Value(known.clone()),
    ])
    .expect("token key");
    drop(s);
    let bytes = setup.ws.bytes_at_rest();
    assert!(!bytes.windows(32).any(|w| w == known.as_slice()), "key bytes in the store");
}

const CKM_CV_REWRAP_STORED: CK_ULONG = 0xC356_0004;

fn stored_dek(s: &Session, id: &str) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Id(id.as_bytes().to_vec()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )
    .expect("stored DEK")
}

fn find_one(s: &Session, id: &str) -> ObjectHandle {
    let found = s.find_objects(&[Attribute::Id(id.as_bytes().to_vec())]).expect("find by CKA_ID");
    assert_eq!(found.len(), 1, "one DEK with id {id}");
    found[0]
}

fn set_lifecycle(s: &Session, h: ObjectHandle, state: u64) -> cryptoki::error::Result<()> {
    s.update_attributes(
        h,
        &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LIFECYCLE), state.to_ne_bytes().to_vec()))],
    )
}

#[test]
fn stored_deks_hold_a_version_until_they_are_rewrapped() {
    let setup = Setup::new();
    let s = setup.init();
    let document = seal(&s, stored_dek(&s, "doc-1"), b"board minutes");
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    let v1 = s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("v1")[0];
    let v2 = s.find_objects(&[Attribute::Label(b"collabvault-master-v2".to_vec())]).expect("v2")[0];
    assert_eq!((stored_records(&s, v1), stored_records(&s, v2)), (1, 0), "the DEK is still under v1");
    assert!(matches!(common::rv_of(set_lifecycle(&s, v1, 3)), RvError::ActionProhibited), "v1 still seals a DEK");
    assert!(setup.ws.log().contains("still seals 1 stored record"), "the refusal says why");
    s.generate_key(&vendor(CKM_CV_REWRAP_STORED), &[]).expect("rewrap stored DEKs");
    assert_eq!((stored_records(&s, v1), stored_records(&s, v2)), (0, 1), "re-wrapped to v2");
    set_lifecycle(&s, v1, 3).expect("retire v1 once nothing needs it");
    assert_eq!(open(&s, find_one(&s, "doc-1"), &document).expect("decrypt"), b"board minutes");
}

/// `CKA_CV_STORED_RECORDS` of a master key object.
fn stored_records(s: &Session, master: ObjectHandle) -> CK_ULONG {
    let attrs = s.get_attributes(master, &[AttributeType::VendorDefined(CKA_CV_STORED_RECORDS)]).expect("read");
    match &attrs[..] {
        [Attribute::VendorDefined((_, v))] => CK_ULONG::from_ne_bytes(v[..].try_into().expect("a CK_ULONG")),
        other => panic!("{other:?}"),
    }
}

const CRASH_DEKS: usize = 2000;

/// Runs in a child process: re-wraps the stored DEKs in small batches until killed.
#[test]
#[ignore = "run by stored_dek_rewrap_survives_sigkill_at_any_point in a child process"]
fn child_rewraps_stored_deks() {
    if std::env::var_os("CV_CRASH_CHILD").is_none() {
        return;
    }
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    let s = pkcs11.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("login");
    s.generate_key(&vendor(CKM_CV_REWRAP_STORED), &[Attribute::ValueLen(25.into())]).expect("rewrap");
    drop(s);
    pkcs11.finalize().expect("finalize");
}

#[test]
fn stored_dek_rewrap_survives_sigkill_at_any_point() {
    let mut setup = Setup::new();
    let mut sealed = Vec::with_capacity(CRASH_DEKS);
    {
        let s = setup.init();
        for i in 0..CRASH_DEKS {
            let id = format!("dek-{i}");
            sealed.push(seal(&s, stored_dek(&s, &id), id.as_bytes()));
        }
        s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    }
    setup.finalize();

    let exe = std::env::current_exe().expect("test binary");
    let run_child = || {
        std::process::Command::new(&exe)
            .args(["--exact", "child_rewraps_stored_deks", "--ignored", "--nocapture"])
            .env("CV_CRASH_CHILD", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child")
    };
    // How many stored DEKs are already under v2, read straight from the store by its own
    // shell (a process of its own: SQLite or PostgreSQL alike).
    let ws = &setup.ws;
    let moved =
        || -> usize { ws.live_sql("SELECT count(*) FROM objects WHERE master_version = 2").parse().expect("a count") };
    // Kill the job as soon as it has made progress, again and again: each kill lands
    // mid-way through the re-wrap, between or inside batch transactions.
    let mut mid_way_kills = 0;
    let mut last = moved();
    while last < CRASH_DEKS && mid_way_kills < 5 {
        let mut child = run_child();
        let started = std::time::Instant::now();
        while moved() <= last && started.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(child.kill()); // SIGKILL
        drop(child.wait());
        let now = moved();
        if now > last && now < CRASH_DEKS {
            mid_way_kills += 1;
        }
        last = now;
    }
    assert!(mid_way_kills >= 3, "only {mid_way_kills} kills landed mid-way through the job");
    assert!(run_child().wait().expect("last run").success(), "the job completes after the crashes");

    setup.pkcs11 = Some(common::load());
    let s = setup.user();
    for (i, ct) in sealed.iter().enumerate() {
        let id = format!("dek-{i}");
        assert_eq!(open(&s, find_one(&s, &id), ct).expect("every DEK still decrypts"), id.as_bytes(), "{id}");
    }
    let v1 = s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).expect("v1")[0];
    set_lifecycle(&s, v1, 3).expect("no stored DEK needs v1 any more");
}

#[test]
fn a_missing_underlying_module_leaves_the_token_absent_and_says_which() {
    let _serial = common::lock();
    let body = format!(
        "[root]\nmodule = \"/nonexistent/libhsm.so\"\ntoken_label = \"x\"\npin_env = {:?}\n[[workspace]]\nname = \"main\"\n",
        common::hsm::ROOT_PIN_ENV
    );
    let ws = common::Workspace::with_config_body(&body);
    std::env::set_var(common::hsm::ROOT_PIN_ENV, common::hsm::ROOT_PIN);
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    assert!(matches!(common::rv_of(pkcs11.open_rw_session(slot)), RvError::DeviceError));
    assert!(ws.log().contains("cannot load the underlying module /nonexistent/libhsm.so"), "{}", ws.log());
    pkcs11.finalize().expect("finalize");
}
