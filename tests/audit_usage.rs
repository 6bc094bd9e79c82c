//! What the audit log records of key use, through the C ABI: data operations as
//! per-session, per-key counters (or one entry per call, or none), every key-management
//! call on session objects as its own entry naming the session, and the alerts usage
//! analytics raise: an unwrap burst under a master key version (which, configured so,
//! blocks that version until the SO clears it) and a run of failed logins.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use common::vendor;

use collabvault_pkcs11::store::audit::AuditRow;
use common::{rv_of, Workspace, SO_PIN, USER_PIN};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
const CKA_CV_BLOCKED: u64 = 0xC356_0007;
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A module over a fresh store with `audit` as its `[audit]` section; the token is
/// initialized. Finalize before reading the store (see tests/audit.rs: two SQLite copies
/// in one process must not share a live file).
struct Audited {
    pkcs11: Option<Pkcs11>,
    ws: Workspace,
    slot: Slot,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Audited {
    fn new(audit: &str) -> Audited {
        let serial = common::lock();
        let ws = Workspace::with_config_body(&format!("[audit]\n{audit}\n[[workspace]]\nname = \"main\"\n"));
        let pkcs11 = common::load();
        let slot = pkcs11.get_all_slots().unwrap()[0];
        pkcs11.init_token(slot, &pin(SO_PIN), "usage").unwrap();
        let so = pkcs11.open_rw_session(slot).unwrap();
        so.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        so.init_pin(&pin(USER_PIN)).unwrap();
        drop(so);
        Audited { pkcs11: Some(pkcs11), ws, slot, _serial: serial }
    }

    fn p11(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().unwrap()
    }

    fn user(&self) -> Session {
        let s = self.p11().open_rw_session(self.slot).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        s
    }

    /// `C_Finalize`, then every entry after the token's set-up (init, SO login, PIN).
    fn finish(mut self) -> Vec<AuditRow> {
        self.pkcs11.take().unwrap().finalize().unwrap();
        let rows = self.ws.open_store().audit_rows().unwrap();
        rows.into_iter().skip_while(|r| r.event.action != "C_InitPIN").skip(1).collect()
    }
}

fn pin(p: &str) -> AuthPin {
    AuthPin::new(p.into())
}

fn aes_key(s: &Session, label: &str) -> ObjectHandle {
    let t = [
        Attribute::Token(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Extractable(true),
    ];
    s.generate_key(&Mechanism::AesKeyGen, &t).unwrap()
}

fn encrypt(s: &Session, key: ObjectHandle) {
    let mut iv = [7u8; 12];
    let params = GcmParams::new(&mut iv, b"", 128.into()).unwrap();
    s.encrypt(&Mechanism::AesGcm(params), key, b"some data").unwrap();
}

fn digest(s: &Session) {
    s.digest(&Mechanism::Sha256, b"data").unwrap();
}

/// (action, first label named, count, session) of an entry.
type Entry = (String, Option<String>, Option<u64>, Option<u64>);

fn entries(rows: &[AuditRow]) -> Vec<Entry> {
    rows.iter()
        .map(|r| {
            let label = r.event.object.as_deref().and_then(|o| o.split('"').nth(1)).map(str::to_string);
            (r.event.action.clone(), label, r.event.count, r.event.session)
        })
        .collect()
}

/// How many calendar minutes the entries of `action` fall in: an alert is raised at
/// most once a minute, so a test that crosses a minute boundary may see one more.
fn minutes_spanned(rows: &[AuditRow], action: &str) -> usize {
    let minutes: std::collections::BTreeSet<i64> =
        rows.iter().filter(|r| r.event.action == action).map(|r| r.at_ms / 60_000).collect();
    minutes.len()
}

fn only(rows: &[AuditRow], action: &str) -> Vec<AuditRow> {
    rows.iter().filter(|r| r.event.action == action).cloned().collect()
}

#[test]
fn data_operations_are_counted_per_key_and_session_and_written_when_the_session_closes() {
    let a = Audited::new("");
    let s = a.user();
    let (k1, k2) = (aes_key(&s, "k1"), aes_key(&s, "k2"));
    for _ in 0..3 {
        encrypt(&s, k1);
    }
    encrypt(&s, k2);
    digest(&s);
    digest(&s);
    let other = a.p11().open_rw_session(a.slot).unwrap();
    encrypt(&other, k1);
    drop(other);
    drop(s);
    let rows = a.finish();
    let counters: Vec<_> = entries(&rows).into_iter().filter(|e| e.2.is_some()).collect();
    let sessions: Vec<u64> = counters.iter().map(|e| e.3.unwrap()).collect();
    let (main, other) = (sessions[0].min(sessions[sessions.len() - 1]), sessions[0].max(sessions[sessions.len() - 1]));
    assert_ne!(main, other);
    let mut got: Vec<_> =
        counters.into_iter().map(|(action, label, count, session)| (session, action, label, count)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (Some(main), "C_DigestInit".into(), None, Some(2)),
            (Some(main), "C_EncryptInit".into(), Some("k1".into()), Some(3)),
            (Some(main), "C_EncryptInit".into(), Some("k2".into()), Some(1)),
            (Some(other), "C_EncryptInit".into(), Some("k1".into()), Some(1)),
        ]
    );
    // The other session's counter came out when it closed, before the main session's.
    let position = |session: u64| rows.iter().position(|r| r.event.count.is_some() && r.event.session == Some(session));
    assert!(position(other) < position(main));
}

#[test]
fn counters_are_flushed_on_the_timer_and_at_logout_by_the_user_who_used_the_key() {
    let a = Audited::new("flush_seconds = 1");
    let s = a.user();
    let k = aes_key(&s, "timed");
    encrypt(&s, k);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // This use finds the counters a second old: both go out now, with this session open.
    encrypt(&s, k);
    encrypt(&s, k);
    s.logout().unwrap();
    drop(s);
    let rows = a.finish();
    let counted: Vec<_> = rows.iter().filter(|r| r.event.count.is_some()).collect();
    let summary: Vec<_> = counted.iter().map(|r| (r.event.actor.as_str(), r.event.count)).collect();
    assert_eq!(summary, vec![("user", Some(2)), ("user", Some(1))], "{counted:#?}");
    let flushed = rows.iter().position(|r| r.event.count == Some(2)).unwrap();
    let logout = rows.iter().rposition(|r| r.event.action == "C_Logout").unwrap();
    assert!(flushed < logout && logout == flushed + 2, "the timer flush, then the logout's flush, then the logout");
}

#[test]
fn per_call_mode_writes_one_entry_per_operation_and_off_mode_none() {
    let a = Audited::new("data_operations = \"per-call\"");
    let s = a.user();
    let k = aes_key(&s, "each");
    encrypt(&s, k);
    encrypt(&s, k);
    digest(&s);
    drop(s);
    let rows = a.finish();
    let got: Vec<_> = entries(&rows).into_iter().filter(|e| e.0.ends_with("Init")).map(|e| (e.0, e.1, e.2)).collect();
    assert_eq!(
        got,
        vec![
            ("C_EncryptInit".to_string(), Some("each".to_string()), None),
            ("C_EncryptInit".to_string(), Some("each".to_string()), None),
            ("C_DigestInit".to_string(), None, None),
        ]
    );

    let a = Audited::new("data_operations = \"off\"");
    let s = a.user();
    let k = aes_key(&s, "quiet");
    encrypt(&s, k);
    digest(&s);
    drop(s);
    let rows = a.finish();
    assert!(rows.iter().all(|r| !r.event.action.ends_with("Init")), "{:#?}", entries(&rows));
    // Key management is recorded whatever the mode.
    assert_eq!(only(&rows, "C_GenerateKey").len(), 1);
}

#[test]
fn key_management_on_session_objects_is_one_entry_per_call_naming_the_session() {
    let a = Audited::new("");
    let s = a.user();
    {
        let k = aes_key(&s, "kek");
        let target = aes_key(&s, "target");
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, k, target).unwrap();
        let unwrap_template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Label(b"unwrapped".to_vec()),
        ];
        let back = s.unwrap_key(&Mechanism::AesKeyWrap, k, &wrapped, &unwrap_template).unwrap();
        s.update_attributes(back, &[Attribute::Label(b"renamed".to_vec())]).unwrap();
        s.destroy_object(back).unwrap();
        // ECDH between two session key pairs.
        let (public_t, private_t) = (
            [Attribute::EcParams(P256_OID.to_vec()), Attribute::Token(false)],
            [Attribute::Token(false), Attribute::Derive(true), Attribute::Label(b"ec".to_vec())],
        );
        let (public, private) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t).unwrap();
        let point = match s.get_attributes(public, &[AttributeType::EcPoint]).unwrap().remove(0) {
            Attribute::EcPoint(p) => p,
            other => panic!("{other:?}"),
        };
        let params = Ecdh1DeriveParams::new(EcKdf::null(), &point);
        let derived = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Label(b"shared".to_vec()),
            Attribute::ValueLen(32.into()),
        ];
        s.derive_key(&Mechanism::Ecdh1Derive(params), private, &derived).unwrap();
    }
    drop(s);
    let rows = a.finish();
    let km: Vec<_> = entries(&rows).into_iter().filter(|e| e.2.is_none() && e.0 != "C_Logout").collect();
    let shape: Vec<_> = km.iter().map(|e| (e.0.as_str(), e.1.as_deref())).collect();
    assert_eq!(
        shape,
        vec![
            ("C_Login", None),
            ("C_GenerateKey", Some("kek")),
            ("C_GenerateKey", Some("target")),
            ("C_WrapKey", Some("target")),
            ("C_UnwrapKey", Some("unwrapped")),
            ("C_SetAttributeValue", Some("renamed")),
            ("C_DestroyObject", Some("renamed")),
            ("C_GenerateKeyPair", Some("")),
            ("C_GenerateKeyPair", Some("ec")),
            ("C_DeriveKey", Some("shared")),
        ]
    );
    // Every one of them names the session it happened in: one session, one handle.
    let sessions: Vec<_> = km.iter().map(|e| e.3).collect();
    assert!(sessions[0].is_some() && sessions.iter().all(|s| *s == sessions[0]), "{sessions:?}");
    // The unwrap and derive name the key they came from.
    let object = |action: &str| only(&rows, action)[0].event.object.clone().unwrap();
    assert!(object("C_UnwrapKey").ends_with("\"kek\""), "{}", object("C_UnwrapKey"));
    assert!(object("C_DeriveKey").ends_with("\"ec\""), "{}", object("C_DeriveKey"));
}

fn master(s: &Session) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).unwrap()[0]
}

fn master_v1(s: &Session) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).unwrap()[0]
}

fn record_template() -> [Attribute; 2] {
    [Attribute::Token(false), Attribute::Class(ObjectClass::SECRET_KEY)]
}

fn blocked(s: &Session, h: ObjectHandle) -> bool {
    let attrs = s.get_attributes(h, &[AttributeType::VendorDefined(CKA_CV_BLOCKED)]).unwrap();
    matches!(&attrs[..], [Attribute::VendorDefined((_, v))] if v == &[1])
}

#[test]
fn an_unwrap_burst_writes_an_alert_and_blocks_the_version_until_the_so_clears_it() {
    let a = Audited::new("alert_unwraps_per_minute = 5\nblock_on_alert = true");
    let s = a.user();
    let dek = aes_key(&s, "dek");
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), dek).unwrap();
    for i in 0..5 {
        let k = s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), &record, &record_template());
        assert!(k.is_ok(), "unwrap {i}: {k:?}");
    }
    // The sixth crosses the threshold: it is the burst, and the version is blocked after it.
    s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), &record, &record_template()).unwrap();
    let refused = s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), &record, &record_template());
    assert_eq!(rv_of(refused), RvError::KeyFunctionNotPermitted);
    assert!(blocked(&s, master_v1(&s)));
    // The user cannot lift it.
    let lift = [Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_BLOCKED), vec![0]))];
    assert_eq!(rv_of(s.update_attributes(master_v1(&s), &lift)), RvError::ActionProhibited);
    s.logout().unwrap();
    // The SO sees the master key objects and lifts the block; a block cannot be set by hand.
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    let set = [Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_BLOCKED), vec![1]))];
    assert_eq!(rv_of(s.update_attributes(master_v1(&s), &set)), RvError::AttributeValueInvalid);
    s.update_attributes(master_v1(&s), &lift).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(!blocked(&s, master_v1(&s)));
    s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), &record, &record_template()).unwrap();
    drop(s);

    let rows = a.finish();
    let alerts = only(&rows, "ALERT unwrap burst");
    assert!((1..=minutes_spanned(&rows, "C_UnwrapKey")).contains(&alerts.len()), "{:#?}", entries(&rows));
    let what = alerts[0].event.object.clone().unwrap();
    assert!(what.starts_with("wmk v1: 6 unwraps in the last minute (threshold 5, baseline 0.0/min)"), "{what}");
    assert_eq!(alerts[0].event.actor, "module");
    let refusal = rows
        .iter()
        .find(|r| r.event.outcome == "CKR_KEY_FUNCTION_NOT_PERMITTED")
        .unwrap_or_else(|| panic!("{:#?}", entries(&rows)));
    assert_eq!(refusal.event.action, "C_UnwrapKey");
    let cleared = only(&rows, "CKA_CV_BLOCKED");
    assert_eq!((cleared.len(), cleared[0].event.actor.as_str()), (1, "so"));
}

#[test]
fn without_block_on_alert_a_burst_is_only_recorded() {
    let a = Audited::new("alert_unwraps_per_minute = 2");
    let s = a.user();
    let dek = aes_key(&s, "dek");
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), dek).unwrap();
    for _ in 0..10 {
        s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), &record, &record_template()).unwrap();
    }
    drop(s);
    let rows = a.finish();
    let alerts = only(&rows, "ALERT unwrap burst").len();
    assert!((1..=minutes_spanned(&rows, "C_UnwrapKey")).contains(&alerts), "one burst, one alert a minute: {alerts}");
    assert_eq!(only(&rows, "C_UnwrapKey").len(), 10);
}

#[test]
fn failed_logins_beyond_the_hourly_threshold_raise_one_alert() {
    let a = Audited::new("alert_failed_logins_per_hour = 1");
    let s = a.p11().open_rw_session(a.slot).unwrap();
    for _ in 0..2 {
        assert_eq!(rv_of(s.login(UserType::User, Some(&pin("wrong-pin")))), RvError::PinIncorrect);
    }
    // The third wrong PIN locks it (max 3 in the test config); the locked attempt counts.
    assert_eq!(rv_of(s.login(UserType::User, Some(&pin("wrong-pin")))), RvError::PinIncorrect);
    assert_eq!(rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::PinLocked);
    drop(s);
    let rows = a.finish();
    let alerts = only(&rows, "ALERT failed logins");
    assert_eq!(alerts.len(), 1, "{:#?}", entries(&rows));
    assert_eq!(alerts[0].event.object.as_deref(), Some("2 failed logins in the last hour (threshold 1)"));
    let logins: Vec<_> = only(&rows, "C_Login")
        .iter()
        .map(|r| (r.event.actor.clone(), r.event.object.clone().unwrap_or_default(), r.event.outcome.clone()))
        .collect();
    let entry = |what: &str, outcome: &str| ("user".to_string(), what.to_string(), outcome.to_string());
    assert_eq!(
        logins,
        vec![
            entry("failure 1 of 3", "CKR_PIN_INCORRECT"),
            entry("failure 2 of 3", "CKR_PIN_INCORRECT"),
            entry("failure 3 of 3: the PIN is now locked", "CKR_PIN_INCORRECT"),
            entry("", "CKR_PIN_LOCKED"),
        ],
        "each attempt once, as the user type that tried"
    );
}
