//! Session-object key-management entries in batches (`[audit] session_objects`), through
//! the C ABI over a SoftHSM2 root: held entries reach the chain whole and in call order
//! when a session closes, at `C_Finalize`, when the batch fills and before any other
//! entry; `"each"` commits every entry at once; a batch the store refuses fails the calls
//! with `CKR_DEVICE_ERROR` and is written once the store takes it again.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use collabvault_pkcs11::audit::{verify, Verdict};
use collabvault_pkcs11::store::audit::AuditRow;
use common::hsm::{Hsm, ROOT_LABEL};
use common::rv_of;
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

/// A module over a fresh store and SoftHSM2 root with `audit` as its `[audit]` section;
/// the token is initialized with a user PIN.
struct Batching {
    pkcs11: Option<Pkcs11>,
    ws: common::Workspace,
    slot: Slot,
    _hsm: Hsm,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Batching {
    fn new(audit: &str) -> Batching {
        let serial = common::lock();
        let hsm = Hsm::new();
        let body = format!("{}[audit]\n{audit}\n[[workspace]]\nname = \"main\"\n", hsm.root_section(ROOT_LABEL));
        let ws = common::Workspace::with_config_body(&body);
        let pkcs11 = common::load();
        let slot = pkcs11.get_all_slots().unwrap()[0];
        if let Err(e) = pkcs11.init_token(slot, &cryptoki::types::AuthPin::new(common::SO_PIN.into()), "batching") {
            panic!("{e}: {}", ws.log());
        }
        common::init_token(&pkcs11, slot, "batching");
        Batching { pkcs11: Some(pkcs11), ws, slot, _hsm: hsm, _serial: serial }
    }

    fn user(&self) -> Session {
        common::user_session(self.pkcs11.as_ref().unwrap(), self.slot)
    }

    /// Runs `sql` from the `sqlite3` shell, a process of its own (safe while the module
    /// has the store open).
    fn live_sql(&self, sql: &str) -> String {
        self.ws.live_sql(sql)
    }

    /// How many entries for session keys (labelled `sk-…`) the store holds now.
    fn session_key_entries(&self) -> usize {
        self.live_sql("SELECT count(*) FROM audit_log WHERE object LIKE '%\"sk-%'").parse().unwrap()
    }

    /// `C_Finalize`, then the whole chain, which must verify intact.
    fn finish(mut self) -> Vec<AuditRow> {
        self.pkcs11.take().unwrap().finalize().unwrap();
        let rows = self.ws.open_store().audit_rows().unwrap();
        assert!(matches!(verify(&rows, None), Verdict::Intact { .. }), "{:?}", verify(&rows, None));
        rows
    }
}

fn session_key(s: &Session, label: &str) -> cryptoki::error::Result<ObjectHandle> {
    let t = [
        Attribute::Token(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
    ];
    s.generate_key(&Mechanism::AesKeyGen, &t)
}

/// The (action, label) of every session-key entry, in chain order.
fn session_key_events(rows: &[AuditRow]) -> Vec<(String, String)> {
    rows.iter()
        .filter_map(|r| {
            let object = r.event.object.as_deref()?;
            let label = object.split('"').nth(1)?;
            label.starts_with("sk-").then(|| (r.event.action.clone(), label.to_string()))
        })
        .collect()
}

fn made(label: &str) -> (String, String) {
    ("C_GenerateKey".into(), label.into())
}

fn destroyed(label: &str) -> (String, String) {
    ("C_DestroyObject".into(), label.into())
}

#[test]
fn batched_entries_appear_whole_and_in_call_order_when_the_session_closes() {
    let b = Batching::new("session_objects = \"batched\"\nbatch_entries = 256\nbatch_ms = 600000");
    let s = b.user();
    let keys: Vec<_> = (0..4).map(|i| session_key(&s, &format!("sk-{i}")).unwrap()).collect();
    s.destroy_object(keys[1]).unwrap();
    s.destroy_object(keys[3]).unwrap();
    assert_eq!(b.session_key_entries(), 0, "held in memory until the batch is written");
    drop(s);
    assert_eq!(b.session_key_entries(), 6, "C_CloseSession writes the batch");
    let rows = b.finish();
    let expected = vec![made("sk-0"), made("sk-1"), made("sk-2"), made("sk-3"), destroyed("sk-1"), destroyed("sk-3")];
    assert_eq!(session_key_events(&rows), expected);
}

#[test]
fn any_other_entry_is_written_after_the_held_ones() {
    let b = Batching::new("session_objects = \"batched\"\nbatch_ms = 600000");
    let s = b.user();
    session_key(&s, "sk-a").unwrap();
    session_key(&s, "sk-b").unwrap();
    let token_key = [Attribute::Token(true), Attribute::Label(b"durable".to_vec()), Attribute::ValueLen(32.into())];
    s.generate_key(&Mechanism::AesKeyGen, &token_key).unwrap();
    assert_eq!(b.session_key_entries(), 2, "the token key's durable commit carried the held entries");
    drop(s);
    let rows = b.finish();
    let order: Vec<_> = rows
        .iter()
        .filter(|r| r.event.action == "C_GenerateKey")
        .map(|r| r.event.object.clone().unwrap().split('"').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(order, ["sk-a", "sk-b", "durable"]);
}

#[test]
fn a_full_batch_is_written_by_the_call_that_fills_it() {
    let b = Batching::new("session_objects = \"batched\"\nbatch_entries = 3\nbatch_ms = 600000");
    let s = b.user();
    for i in 0..2 {
        session_key(&s, &format!("sk-{i}")).unwrap();
    }
    assert_eq!(b.session_key_entries(), 0);
    session_key(&s, "sk-2").unwrap();
    assert_eq!(b.session_key_entries(), 3);
    drop(s);
    b.finish();
}

#[test]
fn an_old_batch_is_written_by_the_next_batched_call() {
    let b = Batching::new("session_objects = \"batched\"\nbatch_ms = 0");
    let s = b.user();
    session_key(&s, "sk-0").unwrap();
    session_key(&s, "sk-1").unwrap();
    assert!(b.session_key_entries() >= 1, "batch_ms = 0: every batched call finds the batch old");
    drop(s);
    b.finish();
}

#[test]
fn each_mode_commits_every_session_key_at_once() {
    let b = Batching::new("session_objects = \"each\"");
    let s = b.user();
    let k = session_key(&s, "sk-0").unwrap();
    assert_eq!(b.session_key_entries(), 1);
    s.destroy_object(k).unwrap();
    assert_eq!(b.session_key_entries(), 2);
    drop(s);
    assert_eq!(session_key_events(&b.finish()), vec![made("sk-0"), destroyed("sk-0")]);
}

#[test]
fn finalize_writes_the_held_entries() {
    let b = Batching::new("session_objects = \"batched\"\nbatch_ms = 600000");
    let s = b.user();
    for i in 0..3 {
        session_key(&s, &format!("sk-{i}")).unwrap();
    }
    // The session stays open: C_Finalize alone must write the batch.
    std::mem::forget(s);
    let rows = b.finish();
    assert_eq!(session_key_events(&rows), vec![made("sk-0"), made("sk-1"), made("sk-2")]);
}

#[test]
fn a_batch_the_store_refuses_fails_the_calls_with_device_error_until_it_is_written() {
    let b = Batching::new("session_objects = \"batched\"\nbatch_entries = 2\nbatch_ms = 600000");
    let s = b.user();
    session_key(&s, "sk-held").unwrap();
    // Every insert into the chain now fails, as on a full or read-only disk.
    b.ws.refuse_inserts("audit_log", "refuse_audit", "store unwritable");
    assert_eq!(rv_of(session_key(&s, "sk-refused-1")), RvError::DeviceError, "the call that fills the batch");
    assert_eq!(rv_of(session_key(&s, "sk-refused-2")), RvError::DeviceError, "and every call after it");
    let log = b.ws.log();
    assert!(log.contains("could not be written") && log.contains("store unwritable"), "the log says why: {log}");
    b.ws.allow_inserts("audit_log", "refuse_audit");
    session_key(&s, "sk-after").unwrap();
    assert_eq!(b.session_key_entries(), 2, "the held entry went out with the next write");
    drop(s);
    let rows = b.finish();
    assert_eq!(session_key_events(&rows), vec![made("sk-held"), made("sk-after")], "refused keys never existed");
}
