//! The audit log as its readers see it: a scripted session through the C ABI leaves
//! exactly the expected entries and no secret; `cvault audit verify` names the first bad
//! entry after each kind of direct edit of the SQLite file; a store whose audit table
//! cannot be written refuses key operations and changes nothing; and threads of two
//! processes writing at once leave one unbroken chain.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Barrier, MutexGuard};
use std::time::{Duration, Instant};

use collabvault_pkcs11::store::audit::{AuditEntry, AuditEvent, AuditRow};
use common::{rv_of, Workspace, LABEL, SO_PIN, USER_PIN};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

const WRONG_PIN: &str = "not-the-user-pin";
/// The value of the key the scripted session imports; it must appear in no entry.
const KEY_BYTES: &[u8; 32] = b"audit-test-key-bytes-0123456789!";

/// A fresh store and config, the module loaded over it, and the test binary's lock.
struct Audited {
    pkcs11: Option<Pkcs11>,
    ws: Workspace,
    _serial: MutexGuard<'static, ()>,
}

impl Audited {
    fn new() -> Audited {
        let serial = common::lock();
        let ws = Workspace::new();
        Audited { pkcs11: Some(common::load()), ws, _serial: serial }
    }

    fn p11(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().expect("the module is initialized")
    }

    fn slot(&self) -> Slot {
        self.p11().get_all_slots().expect("slots")[0]
    }

    /// `C_Finalize`: the module lets go of the store, so the test may edit the file.
    fn finalize(&mut self) {
        self.pkcs11.take().expect("the module is initialized").finalize().expect("C_Finalize");
    }

    /// The audit entries, read with the store's own backend. Only once the module is
    /// finalized: this test binary links its own copy of SQLite, and two copies in one
    /// process break each other's POSIX locks (closing one's file descriptor drops the
    /// other's locks, and the last connection of a copy removes a WAL the other still
    /// uses). While the module runs, [`Audited::live_sql`] goes through another process.
    fn rows(&self) -> Vec<AuditRow> {
        assert!(self.pkcs11.is_none(), "read the store in-process only after C_Finalize");
        self.ws.open_store().audit_rows().expect("audit rows")
    }

    /// Runs `sql` on the store from the `sqlite3` shell, a process of its own, so it is
    /// safe while the module has the store open; returns what it printed.
    fn live_sql(&self, sql: &str) -> String {
        self.ws.live_sql(sql)
    }

    fn live_count(&self, table: &str) -> usize {
        self.live_sql(&format!("SELECT count(*) FROM {table}")).parse().expect("a count")
    }

    fn cvault(&self, args: &[&str]) -> Output {
        cvault(&self.ws.conf, args)
    }
}

fn cvault(conf: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cvault"))
        .args(args)
        .env("COLLABVAULT_CONF", conf)
        .env_remove("CV_SO_PIN")
        .env_remove("CV_USER_PIN")
        .output()
        .expect("run cvault")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cvault audit verify`'s one line, with its exit code.
fn verify(conf: &Path) -> (Option<i32>, String) {
    let out = cvault(conf, &["audit", "verify"]);
    assert!(out.stderr.is_empty(), "verify wrote to stderr: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), stdout(&out).trim_end().to_string())
}

fn pin(p: &str) -> AuthPin {
    AuthPin::new(p.into())
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn aes_key(label: &str) -> Vec<Attribute> {
    vec![Attribute::Token(true), Attribute::Label(label.as_bytes().to_vec()), Attribute::ValueLen(32.into())]
}

fn imported_key(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(KEY_BYTES.to_vec()),
        Attribute::Extractable(true),
    ]
}

/// The scripted session: returns the wrapped key's bytes.
fn scripted_session(a: &Audited) -> Vec<u8> {
    let slot = a.slot();
    a.p11().init_token(slot, &pin(SO_PIN), LABEL).expect("C_InitToken");
    let s = a.p11().open_rw_session(slot).expect("open rw");
    s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    s.logout().expect("SO logout");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    let key = s.create_object(&imported_key("payload key")).expect("C_CreateObject");
    let kek = s.generate_key(&Mechanism::AesKeyGen, &aes_key("kek")).expect("C_GenerateKey");
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).expect("C_WrapKey");
    s.logout().expect("user logout");
    assert_eq!(rv_of(s.login(UserType::User, Some(&pin(WRONG_PIN)))), RvError::PinIncorrect);
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("user login again");
    s.destroy_object(key).expect("destroy the key");
    s.destroy_object(kek).expect("destroy the kek");
    s.logout().expect("user logout");
    wrapped
}

type Entry = (&'static str, &'static str, Option<&'static str>, &'static str);

/// What the scripted session must leave, entry by entry: (actor, action, the label of the
/// object the entry names, outcome).
const SCRIPTED: &[Entry] = &[
    ("public", "C_InitToken", None, "CKR_OK"),
    // The first login makes the workspace's key-encryption key (src/quorum/kek.rs).
    ("so", "quorum-kek", Some("KEK g1 made; 1 master key row(s) sealed under it"), "CKR_OK"),
    ("so", "C_Login", None, "CKR_OK"),
    ("so", "C_InitPIN", None, "CKR_OK"),
    ("so", "C_Logout", None, "CKR_OK"),
    ("user", "C_Login", None, "CKR_OK"),
    ("user", "C_CreateObject", Some("payload key"), "CKR_OK"),
    ("user", "C_GenerateKey", Some("kek"), "CKR_OK"),
    // Names the wrapped key, then the wrapping key: `<id> "payload key" under <id> "kek"`.
    ("user", "C_WrapKey", Some("payload key"), "CKR_OK"),
    ("user", "C_Logout", None, "CKR_OK"),
    // The failed attempt, with the failure counter, in one transaction (token::verify).
    ("user", "C_Login", Some("failure 1 of 3"), "CKR_PIN_INCORRECT"),
    // The login after it resets the counter in its own entry's transaction.
    ("user", "C_Login", None, "CKR_OK"),
    ("user", "C_DestroyObject", Some("payload key"), "CKR_OK"),
    ("user", "C_DestroyObject", Some("kek"), "CKR_OK"),
    ("user", "C_Logout", None, "CKR_OK"),
];

/// The first label an entry's object names: objects read `<CKA_UNIQUE_ID> "<label>"`,
/// and may go on (`... under <id> "<label>"`).
fn first_label(object: &str) -> String {
    object.split('"').nth(1).unwrap_or(object).to_string()
}

/// (actor, action, label the object names, outcome) of each entry.
fn summary(rows: &[AuditRow]) -> Vec<(String, String, Option<String>, String)> {
    rows.iter()
        .map(|r| {
            let e = &r.event;
            (e.actor.clone(), e.action.clone(), e.object.as_deref().map(first_label), e.outcome.clone())
        })
        .collect()
}

fn owned(entries: &[Entry]) -> Vec<(String, String, Option<String>, String)> {
    entries.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.map(str::to_string), d.to_string())).collect()
}

#[test]
fn a_scripted_session_leaves_exactly_the_expected_entries() {
    let mut a = Audited::new();
    scripted_session(&a);
    a.finalize();
    let rows = a.rows();
    let got = summary(&rows);
    let want = owned(SCRIPTED);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "entries: {got:#?}");
    // Every entry is this process's, numbered from 1, in the workspace it concerns.
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, i64::try_from(i).unwrap() + 1);
        assert_eq!(r.pid, std::process::id(), "entry {}", r.seq);
        assert_eq!(r.event.workspace.as_deref(), Some("main"), "entry {}", r.seq);
    }
    // The entries that name an object name it by CKA_UNIQUE_ID: the same id from its
    // creation to its destruction.
    let ids = |action: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.event.action == action)
            .map(|r| r.event.object.as_deref().unwrap().split_once(' ').unwrap().0.to_string())
            .collect()
    };
    let (created, destroyed) = ([ids("C_CreateObject"), ids("C_GenerateKey")].concat(), ids("C_DestroyObject"));
    assert_eq!(created, destroyed, "payload key then kek, each under one id from creation to destruction");
    assert_ne!(created[0], created[1]);
}

#[test]
fn no_entry_holds_a_pin_or_key_bytes() {
    let a = Audited::new();
    let wrapped = scripted_session(&a);
    let out = a.cvault(&["audit", "export"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let export = stdout(&out);
    assert_eq!(export.lines().count(), SCRIPTED.len(), "{export}");
    for secret in [SO_PIN, USER_PIN, WRONG_PIN] {
        for form in [secret.to_string(), hex(secret.as_bytes())] {
            assert!(!export.to_lowercase().contains(&form.to_lowercase()), "the export holds {form:?}");
        }
    }
    let key_text = String::from_utf8_lossy(KEY_BYTES).into_owned();
    for form in [key_text, hex(KEY_BYTES), hex(&wrapped)] {
        assert!(!export.to_lowercase().contains(&form.to_lowercase()), "the export holds {form:?}");
    }
}

#[test]
fn export_filters_by_time_and_object() {
    let mut a = Audited::new();
    scripted_session(&a);
    a.finalize();
    let rows = a.rows();
    let lines = |args: &[&str]| {
        let out = a.cvault(&[&["audit", "export"], args].concat());
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        stdout(&out).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let all = lines(&[]);
    assert_eq!(all.len(), rows.len());
    assert!(all[0].starts_with(r#"{"seq":1,"#) && all[0].contains(r#""action":"C_InitToken""#), "{}", all[0]);
    // --key matches part of the object: the payload key's create, wrap and destroy, by
    // label or id.
    let by_label = lines(&["--key", "payload key"]);
    assert_eq!(by_label.len(), 3, "{by_label:#?}");
    let created = rows.iter().find(|r| r.event.action == "C_CreateObject").expect("the payload key's entry");
    let id = created.event.object.as_deref().unwrap().split_once(' ').unwrap().0.to_string();
    assert_eq!(lines(&["--key", &id]), by_label);
    // --since is inclusive, --until exclusive, in Unix ms or RFC 3339.
    let (first, last) = (rows[0].at_ms, rows[rows.len() - 1].at_ms);
    assert_eq!(lines(&["--since", &first.to_string()]).len(), rows.len());
    assert_eq!(lines(&["--until", &first.to_string()]).len(), 0);
    assert_eq!(lines(&["--since", &(last + 1).to_string()]).len(), 0);
    assert_eq!(lines(&["--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00+01:00"]).len(), rows.len());
    let bad = a.cvault(&["audit", "export", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn report_summarizes_objects_keys_failed_logins_and_refusals_per_workspace() {
    let a = Audited::new();
    scripted_session(&a);
    let out = a.cvault(&["audit", "report"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = stdout(&out);
    assert!(report.contains(&format!("{} entries", SCRIPTED.len())), "{report}");
    assert!(report.contains("chain: intact"), "{report}");
    assert!(report.contains(&format!("workspace main: {} entries", SCRIPTED.len())), "{report}");
    let line = |needle: &str| report.lines().find(|l| l.contains(needle)).unwrap_or_default().trim().to_string();
    assert!(line("\"payload key\":").contains("C_CreateObject 1, C_DestroyObject 1, C_WrapKey 1; last "), "{report}");
    assert!(
        line("\"kek\":").contains("C_DestroyObject 1, C_GenerateKey 1, C_WrapKey (as wrapping key) 1; last "),
        "{report}"
    );
    assert!(line("token:").contains("C_InitPIN 1, C_InitToken 1"), "{report}");
    assert!(line("objects:").ends_with("objects: 2"), "{report}");
    assert!(line("master keys:").contains("1 version(s), 1 in use; classification internal"), "{report}");
    assert!(line("v1 ").contains("active") && line("v1 ").contains("age    0 days"), "{report}");
    assert_eq!(line("failed logins:"), "failed logins: 1 (user CKR_PIN_INCORRECT 1)", "{report}");
    assert_eq!(line("refusals:"), "refusals: CKR_PIN_INCORRECT 1", "{report}");
    // Stable: the same log gives the same report.
    assert_eq!(stdout(&a.cvault(&["audit", "report"])), report);
}

/// A finalized module over a store holding the scripted session's entries: `edit` says
/// what SQL changes the store, run through its own shell (`Workspace::live_sql`), so the
/// same forgery runs on SQLite and on PostgreSQL; returns `cvault audit verify`'s exit
/// code and line.
fn verify_after(edit: impl FnOnce(&Audited) -> String) -> (Option<i32>, String) {
    let mut a = Audited::new();
    scripted_session(&a);
    a.finalize();
    let (code, line) = verify(&a.ws.conf);
    assert_eq!(code, Some(0), "{line}");
    let head = hex(&a.rows().last().unwrap().hash);
    assert_eq!(line, format!("intact: {} entries, head {head}", SCRIPTED.len()));
    let sql = edit(&a);
    if let Err(refused) = a.ws.try_live_sql(&sql) {
        // The store's schema refused the forgery (nothing of it written, one transaction).
        return (None, format!("refused: {refused}"));
    }
    verify(&a.ws.conf)
}

/// [`verify_after`] with fixed SQL.
fn verify_after_sql(sql: &str) -> (Option<i32>, String) {
    verify_after(|_| sql.to_string())
}

#[test]
fn verify_names_a_changed_entry() {
    // Entry 6 (C_CreateObject of the payload key) now claims the SO made it.
    let (code, line) = verify_after_sql("UPDATE audit_log SET actor = 'so' WHERE seq = 6");
    assert_eq!((code, line.as_str()), (Some(1), "broken at entry 6: changed: its contents no longer match its hash"));
}

#[test]
fn verify_tells_an_absent_object_from_an_empty_one() {
    // An entry without an object (the SO's C_Login) given an empty object column: before
    // issue #12 both hashed alike, so the edit went unnoticed.
    let (code, line) =
        verify_after_sql("UPDATE audit_log SET object = '' WHERE seq = 3 AND object IS NULL RETURNING 'edited'");
    assert_eq!(code, Some(1), "{line}");
    assert!(line.starts_with("broken at entry 3: changed"), "{line}");
}

#[test]
fn verify_names_a_deleted_entry() {
    // Entry 9: the wrong-PIN attempt.
    let (code, line) = verify_after_sql("DELETE FROM audit_log WHERE seq = 9");
    assert_eq!(code, Some(1));
    assert!(line.starts_with("broken at entry 9: deleted"), "{line}");
}

#[test]
fn verify_names_swapped_entries_as_reordered() {
    // Entries 5 and 8 trade places (their numbers swapped, through a free one).
    let (code, line) = verify_after_sql(
        "UPDATE audit_log SET seq = -5 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = 8; \
         UPDATE audit_log SET seq = 8 WHERE seq = -5",
    );
    assert_eq!(code, Some(1));
    assert!(line.starts_with("broken at entry 5: reordered"), "{line}");
}

/// SQL that moves entries `from..` one place up, making room for a forged entry at `from`.
fn renumber_from(from: i64) -> String {
    format!("UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= {from}; UPDATE audit_log SET seq = -seq WHERE seq < 0;")
}

/// `bytes` as a blob literal of the store's SQL (SQLite `X'..'`, PostgreSQL `'\x..'::bytea`).
fn blob(a: &Audited, bytes: &[u8]) -> String {
    if a.ws.config().store.is_some() {
        format!("'\\x{}'::bytea", hex(bytes))
    } else {
        format!("X'{}'", hex(bytes))
    }
}

/// SQL inserting a forged entry `seq` for `event`, self-consistent and linked to `prev`.
fn insert_row(a: &Audited, seq: i64, event: &AuditEvent, prev: &[u8]) -> String {
    let (at_ms, pid) = (1_700_000_000_000, 4242);
    let hash = AuditEntry { seq, at_ms, pid, event }.chain_hash(prev);
    let text = |t: &str| format!("'{}'", t.replace('\'', "''"));
    format!(
        "INSERT INTO audit_log (seq, at_ms, pid, workspace, actor, action, object, outcome, prev_hash, hash, format)
         VALUES ({seq}, {at_ms}, {pid}, {}, {}, {}, {}, {}, {}, {}, 2);",
        event.workspace.as_deref().map_or("NULL".to_string(), text),
        text(&event.actor),
        text(&event.action),
        event.object.as_deref().map_or("NULL".to_string(), text),
        text(&event.outcome),
        blob(a, prev),
        blob(a, &hash)
    )
}

#[test]
fn verify_names_an_inserted_entry() {
    let (code, line) = verify_after(|a| {
        // A self-consistent entry at 7 (its hash matches its contents) that links to no
        // entry of the chain, the rest renumbered after it.
        let event = AuditEvent::ok("main", "so", "C_DestroyObject", Some("forged \"evidence\"".into()));
        renumber_from(7) + &insert_row(a, 7, &event, &[0xee; 32])
    });
    assert_eq!(code, Some(1));
    assert!(line.starts_with("broken at entry 7: inserted"), "{line}");
}

#[test]
fn an_entry_inserted_with_a_valid_link_breaks_the_chain_at_the_next_entry() {
    let (code, line) = verify_after(|a| {
        // A forger who links the entry properly to entry 6 still cannot fit the next one:
        // its stored link names entry 6, not the forgery.
        let prev = a.rows().into_iter().find(|r| r.seq == 6).expect("entry 6").hash;
        renumber_from(7) + &insert_row(a, 7, &AuditEvent::ok("main", "user", "C_Logout", None), &prev)
    });
    if common::postgres::selected() {
        // PostgreSQL's schema holds `prev_hash` unique: a second entry linking to entry 6
        // cannot even be written.
        assert_eq!(code, None, "{line}");
        assert!(line.contains("audit_log_prev_hash_key"), "{line}");
    } else {
        assert_eq!(code, Some(1));
        assert!(line.starts_with("broken at entry 8: "), "{line}");
    }
}

#[test]
fn a_dropped_tail_is_not_seen_by_the_chain_alone() {
    let kept = SCRIPTED.len() - 3;
    let (code, line) = verify_after_sql(&format!("DELETE FROM audit_log WHERE seq > {kept}"));
    // With the software root nothing outside the store remembers how long the chain was:
    // the entries left are exactly as the module wrote them, and verify says that it can
    // vouch for no more (tests/audit_checkpoints.rs: the root token's head catches it).
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with(&format!("intact: {kept} entries, head ")), "{line}");
}

#[test]
fn verify_without_a_store_fails_with_one_line() {
    let _serial = common::lock();
    let ws = Workspace::new();
    let out = cvault(&ws.conf, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("cvault: no store at "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}

/// The trigger that makes every audit insert fail (`Workspace::refuse_inserts`).
const FAIL_AUDIT: &str = "audit_unavailable";

fn init_token(a: &Audited) -> Slot {
    let slot = a.slot();
    a.p11().init_token(slot, &pin(SO_PIN), LABEL).expect("C_InitToken");
    let s = a.p11().open_rw_session(slot).expect("open rw");
    s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    drop(s);
    slot
}

fn find(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).expect("find")
}

#[test]
fn without_a_writable_audit_log_key_operations_fail_and_change_nothing() {
    let a = Audited::new();
    let slot = init_token(&a);
    let s = a.p11().open_rw_session(slot).expect("open rw");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    let kept = s.create_object(&imported_key("kept")).expect("create a key while the audit log works");
    let (entries, objects) = (a.live_count("audit_log"), a.live_count("objects"));

    // The trigger goes in while the module runs (SQLite sees a schema change from another
    // connection at its next statement, PostgreSQL at its next insert): logging in needs an audit entry too, see
    // `a_login_that_cannot_be_audited_is_refused`.
    a.ws.refuse_inserts("audit_log", FAIL_AUDIT, "audit unavailable");
    assert_eq!(rv_of(s.create_object(&imported_key("unaudited import"))), RvError::DeviceError);
    assert_eq!(rv_of(s.generate_key(&Mechanism::AesKeyGen, &aes_key("unaudited key"))), RvError::DeviceError);
    assert_eq!(rv_of(s.destroy_object(kept)), RvError::DeviceError);
    a.ws.allow_inserts("audit_log", FAIL_AUDIT);

    assert!(find(&s, "unaudited import").is_empty(), "an object appeared without its audit entry");
    assert!(find(&s, "unaudited key").is_empty(), "a key appeared without its audit entry");
    assert_eq!(find(&s, "kept"), vec![kept], "a destroy went through without its audit entry");
    assert_eq!(a.live_count("objects"), objects);
    assert_eq!(a.live_count("audit_log"), entries, "the refusals could not be audited either");
    // The module works again once the log does, and the chain goes on unbroken.
    s.generate_key(&Mechanism::AesKeyGen, &aes_key("audited key")).expect("C_GenerateKey once the log works");
    let (code, line) = verify(&a.ws.conf);
    assert_eq!((code, line.starts_with(&format!("intact: {} entries", entries + 1))), (Some(0), true), "{line}");
}

#[test]
fn a_login_that_cannot_be_audited_is_refused_and_leaves_the_session_public() {
    let a = Audited::new();
    let slot = init_token(&a);
    let entries = a.live_count("audit_log");
    a.ws.refuse_inserts("audit_log", FAIL_AUDIT, "audit unavailable");
    let s = a.p11().open_rw_session(slot).expect("open rw");
    assert_eq!(rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::DeviceError);
    assert_eq!(s.get_session_info().expect("session info").session_state(), SessionState::RwPublic);
    a.ws.allow_inserts("audit_log", FAIL_AUDIT);
    assert_eq!(a.live_count("audit_log"), entries);
    // Once the log works the same PIN logs in: the refused attempt counted as no failure.
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("login once the log works");
    assert_eq!(s.get_session_info().expect("session info").session_state(), SessionState::RwUser);
}

const THREADS: usize = 4;
const PER_THREAD: usize = 25;
/// Set in the child process to the parent's config file; the child test does nothing
/// without it.
const CHILD_ENV: &str = "CV_AUDIT_CHILD_CONF";
const CHILD_TEST: &str = "child_process_writes_the_shared_audit_log";
const WAIT_LIMIT: Duration = Duration::from_secs(60);
/// Created by the parent just before its threads start; the child starts on seeing it.
const PARENT_GO: &str = "parent-go";
/// Created by the child once it runs; the parent's threads destroy nothing before it exists.
const CHILD_STARTED: &str = "child-started";

fn data(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(label.as_bytes().to_vec()),
    ]
}

fn wait_for(s: &Session, label: &str) -> Result<(), String> {
    let deadline = Instant::now() + WAIT_LIMIT;
    while find(s, label).is_empty() {
        if Instant::now() > deadline {
            return Err(format!("{label:?} did not appear within {WAIT_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// One thread: its own session (the process's one login applies to it), `PER_THREAD`
/// token objects created, then (once `before_destroying` exists) destroyed.
fn worker(pkcs11: &Pkcs11, slot: Slot, name: &str, start: &Barrier, before_destroying: &str) -> Result<(), String> {
    let s = pkcs11.open_rw_session(slot).map_err(|e| format!("{name}: open: {e}"))?;
    start.wait();
    let mut made = Vec::new();
    for i in 0..PER_THREAD {
        made.push(s.create_object(&data(&format!("{name}-o{i}"))).map_err(|e| format!("{name}-o{i}: create: {e}"))?);
    }
    wait_for(&s, before_destroying)?;
    for (i, h) in made.into_iter().enumerate() {
        s.destroy_object(h).map_err(|e| format!("{name}-o{i}: destroy: {e}"))?;
    }
    Ok(())
}

fn run_workers(pkcs11: &Pkcs11, slot: Slot, prefix: &str, before_destroying: &str) {
    let start = Barrier::new(THREADS);
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let start = &start;
                scope.spawn(move || worker(pkcs11, slot, &format!("{prefix}{t}"), start, before_destroying))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a worker thread panicked".into()))).collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "failures: {failures:#?}");
}

#[test]
fn threads_of_two_processes_writing_at_once_leave_one_unbroken_chain() {
    let mut a = Audited::new();
    let slot = init_token(&a);
    // One login, in a session that stays open, serves every thread's session.
    let main = a.p11().open_rw_session(slot).expect("open rw");
    main.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    let before = a.live_count("audit_log");

    let child = common::child_over(CHILD_TEST, CHILD_ENV, &a.ws.conf).spawn().expect("spawn the child process");
    main.create_object(&data(PARENT_GO)).expect("create the start marker");
    // The parent's threads create their objects while the child starts, and destroy them
    // only after the child has written: the two processes' entries interleave for sure.
    run_workers(a.p11(), slot, "p", CHILD_STARTED);
    common::child_passed(&child.wait_with_output().expect("wait for the child"));

    drop(main);
    a.finalize();
    let (code, line) = verify(&a.ws.conf);
    assert_eq!(code, Some(0), "{line}");
    let rows = a.rows();
    assert!(line.starts_with(&format!("intact: {} entries, head ", rows.len())), "{line}");
    let ops = THREADS * PER_THREAD;
    // Parent: the marker, its threads' creates and destroys, and the logout as its last
    // session closed at C_Finalize. Child: its login, marker, creates, destroys and logout.
    let parent = 1 + 2 * ops + 1;
    let child = 1 + 1 + 2 * ops + 1;
    assert_eq!(rows.len(), before + parent + child, "entries after setup: {}", rows.len() - before);
    let count = |action: &str| rows.iter().filter(|r| r.event.action == action && r.event.outcome == "CKR_OK").count();
    assert_eq!(count("C_CreateObject"), 2 + 2 * ops);
    assert_eq!(count("C_DestroyObject"), 2 * ops);
    let pids: Vec<u32> = rows[before..].iter().map(|r| r.pid).collect();
    let child_pid = *pids.iter().find(|p| **p != std::process::id()).expect("the child's entries");
    assert_eq!(pids.iter().filter(|p| **p == child_pid).count(), child);
    let switches = pids.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 2, "the processes' entries did not interleave ({switches} switches)");
    eprintln!("the two processes' entries switched {switches} times");
}

/// The second process of [`threads_of_two_processes_writing_at_once_leave_one_unbroken_chain`];
/// a no-op unless that test started it.
#[test]
#[ignore = "started as a child process by threads_of_two_processes_writing_at_once_leave_one_unbroken_chain"]
fn child_process_writes_the_shared_audit_log() {
    let Some((_serial, p, slot)) = common::child_module(CHILD_ENV) else { return };
    let main = common::user_session(&p, slot);
    wait_for(&main, PARENT_GO).expect("the parent's start marker");
    main.create_object(&data(CHILD_STARTED)).expect("create the child's marker");
    run_workers(&p, slot, "c", CHILD_STARTED);
    main.logout().expect("child logout");
    drop(main);
    p.finalize().expect("C_Finalize");
}
