//! Faults injected under the built module, through its C ABI: the store file turned
//! read-only, the store locked by another process past the busy timeout, a stored row
//! and a database page corrupted in the file, and the audit log made unwritable.
//!
//! Each fault must answer its documented `CKR_` code, change nothing half-way, leave a
//! log line, never serve wrong key material, and heal by itself once the fault goes.
//! This test binary links its own SQLite: the store file is edited in-process only while
//! the module is finalized (see `Faulty::offline`); while it runs, the `sqlite3` shell
//! (a process of its own) reads it, locks it, or installs a trigger.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use common::{rv_of, Workspace, LABEL, USER_PIN};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

/// A workspace whose config starts with `top` (top-level keys), the module loaded over
/// it, and the test binary's lock.
struct Faulty {
    pkcs11: Option<Pkcs11>,
    ws: Workspace,
    _serial: MutexGuard<'static, ()>,
}

impl Faulty {
    fn new(top: &str, body: &str) -> Faulty {
        let serial = common::lock();
        let ws = Workspace::with_config_body(&format!("{body}[[workspace]]\nname = \"main\"\n"));
        let conf = std::fs::read_to_string(&ws.conf).unwrap();
        std::fs::write(&ws.conf, format!("{top}{conf}")).unwrap();
        Faulty { pkcs11: Some(common::load()), ws, _serial: serial }
    }

    fn p11(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().expect("the module is initialized")
    }

    fn slot(&self) -> Slot {
        self.p11().get_all_slots().expect("slots")[0]
    }

    /// `C_Finalize`: the module lets go of the store, so the test may edit the file.
    fn offline(&mut self) {
        self.pkcs11.take().expect("the module is initialized").finalize().expect("C_Finalize");
    }

    fn online(&mut self) {
        assert!(self.pkcs11.is_none());
        self.pkcs11 = Some(common::load());
    }

    /// A user session on a token initialized with the test PINs.
    fn init(&self) -> Session {
        let slot = self.slot();
        common::init_token(self.p11(), slot, LABEL);
        common::user_session(self.p11(), slot)
    }

    fn store_dir(&self) -> PathBuf {
        self.ws.dir.path().join("store")
    }

    /// Runs `sql` in the store's own shell (a process of its own, safe while the module runs).
    fn shell(&self, sql: &str) -> String {
        self.ws.live_sql(sql)
    }

    fn count(&self, table: &str) -> usize {
        self.shell(&format!("SELECT count(*) FROM {table}")).parse().expect("a count")
    }

    /// `cvault audit verify` once the module is finalized: the chain must be intact.
    fn assert_chain_intact(&self) {
        assert!(self.pkcs11.is_none(), "verify after C_Finalize");
        let out = Command::new(env!("CARGO_BIN_EXE_cvault"))
            .args(["audit", "verify"])
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .output()
            .expect("cvault");
        let line = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{line}{}", String::from_utf8_lossy(&out.stderr));
        assert!(line.starts_with("intact: "), "{line}");
    }
}

fn key_template(label: &str, byte: u8) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(vec![byte; 32]),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Extractable(true),
    ]
}

fn generated(label: &str) -> Vec<Attribute> {
    vec![Attribute::Token(true), Attribute::Label(label.as_bytes().to_vec()), Attribute::ValueLen(32.into())]
}

/// One AES block of zeros under `k`: which key material the module used.
fn block(s: &Session, k: ObjectHandle) -> cryptoki::error::Result<Vec<u8>> {
    s.encrypt(&Mechanism::AesEcb, k, &[0u8; 16])
}

fn find(s: &Session, label: &str) -> cryptoki::error::Result<Vec<ObjectHandle>> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
}

/// Whether this process is root (then permission bits do not stop its writes).
fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// The store directory and its files made unwritable for as long as it lives: `chattr +i`
/// as root (which permission bits would not stop), mode 0400/0500 otherwise.
struct ReadOnly {
    paths: Vec<PathBuf>,
    immutable: bool,
}

impl ReadOnly {
    /// `None` (with the reason printed) where the fault cannot be made here.
    fn set(dir: &Path) -> Option<ReadOnly> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        paths.push(dir.to_path_buf());
        let immutable = is_root();
        let mut made = ReadOnly { paths: Vec::new(), immutable };
        for p in paths {
            if immutable {
                let out = Command::new("chattr").arg("+i").arg(&p).output();
                if !out.as_ref().is_ok_and(|o| o.status.success()) {
                    eprintln!("SKIPPED: as root only chattr +i makes the store read-only, and it failed: {out:?}");
                    return None;
                }
            } else {
                let mode = if p.is_dir() { 0o500 } else { 0o400 };
                std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
            }
            made.paths.push(p);
        }
        Some(made)
    }
}

impl Drop for ReadOnly {
    /// Writable again (directory first), also when an assertion failed.
    fn drop(&mut self) {
        for p in self.paths.iter().rev() {
            if self.immutable {
                drop(Command::new("chattr").arg("-i").arg(p).status());
            } else {
                let mode = if p.is_dir() { 0o700 } else { 0o600 };
                drop(std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)));
            }
        }
    }
}

#[test]
fn a_read_only_store_refuses_key_management_serves_stored_keys_and_recovers() {
    let mut f = Faulty::new("", "");
    let s = f.init();
    let kept = s.create_object(&key_template("kept", 0x11)).expect("C_CreateObject");
    let before = block(&s, kept).expect("encrypt");
    let objects = f.count("objects");

    let Some(frozen) = ReadOnly::set(&f.store_dir()) else { return };
    assert_eq!(rv_of(s.create_object(&key_template("during", 0x22))), RvError::DeviceError);
    assert_eq!(rv_of(s.generate_key(&Mechanism::AesKeyGen, &generated("generated during"))), RvError::DeviceError);
    assert_eq!(rv_of(s.update_attributes(kept, &[Attribute::Label(b"renamed".to_vec())])), RvError::DeviceError);
    assert_eq!(rv_of(s.destroy_object(kept)), RvError::DeviceError);
    // Reading and using a stored key needs no write.
    assert_eq!(find(&s, "kept").expect("C_FindObjects"), vec![kept]);
    assert_eq!(block(&s, kept).expect("encrypt under a read-only store"), before);
    let log = f.ws.log();
    assert!(log.contains("C_CreateObject: store: disk I/O error: a read or write of the store file failed"), "{log}");
    drop(frozen);

    // Nothing was half-written, and the same calls work once the store is writable.
    assert!(find(&s, "during").unwrap().is_empty() && find(&s, "generated during").unwrap().is_empty());
    assert!(find(&s, "renamed").unwrap().is_empty());
    assert_eq!(f.count("objects"), objects);
    s.create_object(&key_template("during", 0x22)).expect("C_CreateObject once writable");
    s.update_attributes(kept, &[Attribute::Label(b"renamed".to_vec())]).expect("C_SetAttributeValue once writable");
    assert_eq!(block(&s, kept).unwrap(), before);
    s.destroy_object(kept).expect("C_DestroyObject once writable");
    assert_eq!(f.count("objects"), objects);
    drop(s);
    f.offline();
    f.assert_chain_intact();
}

/// `sqlite3` holding `BEGIN EXCLUSIVE` on the store until [`Locker::release`].
struct Locker {
    child: Child,
}

impl Locker {
    fn hold(db: &Path) -> Locker {
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sqlite3 shell");
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b".timeout 10000\nBEGIN EXCLUSIVE;\n.print locked\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked", "the shell took the lock");
        Locker { child }
    }

    fn release(mut self) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"ROLLBACK;\n").unwrap();
        drop(stdin);
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            drop(self.child.kill());
            drop(self.child.wait());
        }
    }
}

#[test]
fn a_store_locked_past_the_busy_timeout_is_a_device_error_and_changes_nothing() {
    let mut f = Faulty::new("store_busy_timeout_ms = 300\n", "");
    let s = f.init();
    let kept = s.create_object(&key_template("kept", 0x11)).expect("C_CreateObject");
    let before = block(&s, kept).expect("encrypt");
    let objects = f.count("objects");

    let lock = Locker::hold(&f.ws.store_file());
    let start = Instant::now();
    assert_eq!(rv_of(s.create_object(&key_template("during", 0x22))), RvError::DeviceError);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "it waited the configured timeout first: {waited:?}");
    assert!(waited < Duration::from_secs(5), "not the default 10 s: {waited:?}");
    assert_eq!(rv_of(s.generate_key(&Mechanism::AesKeyGen, &generated("generated during"))), RvError::DeviceError);
    assert_eq!(rv_of(s.destroy_object(kept)), RvError::DeviceError);
    // In WAL mode readers are not blocked by a writer: stored keys keep working.
    assert_eq!(find(&s, "kept").unwrap(), vec![kept]);
    assert_eq!(block(&s, kept).expect("encrypt while the store is locked"), before);
    let log = f.ws.log();
    assert!(log.contains("C_CreateObject: store: database is locked: locked by another process"), "{log}");
    lock.release();

    assert!(find(&s, "during").unwrap().is_empty() && find(&s, "generated during").unwrap().is_empty());
    assert_eq!(f.count("objects"), objects);
    s.create_object(&key_template("during", 0x22)).expect("C_CreateObject after the lock is released");
    s.destroy_object(kept).expect("C_DestroyObject after the lock is released");
    drop(s);
    f.offline();
    f.assert_chain_intact();
}

fn unique_id(db: &rusqlite::Connection, label: &str) -> String {
    db.query_row("SELECT unique_id FROM objects WHERE label = ?1", [label.as_bytes()], |r| r.get(0)).unwrap()
}

fn column(db: &rusqlite::Connection, col: &str, label: &str) -> Vec<u8> {
    db.query_row(&format!("SELECT {col} FROM objects WHERE label = ?1"), [label.as_bytes()], |r| r.get(0)).unwrap()
}

fn set_column(db: &rusqlite::Connection, col: &str, label: &str, value: &[u8]) {
    let n = db
        .execute(&format!("UPDATE objects SET {col} = ?1 WHERE label = ?2"), rusqlite::params![value, label.as_bytes()])
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_corrupted_row_is_not_served_the_log_names_it_and_other_keys_work() {
    let mut f = Faulty::new("", "");
    let s = f.init();
    let mut refs = Vec::new();
    for (label, byte) in [("sealed-flipped", 0x11), ("attrs-cut", 0x22), ("intact", 0x33)] {
        let k = s.create_object(&key_template(label, byte)).expect("C_CreateObject");
        refs.push((label, block(&s, k).unwrap()));
    }
    drop(s);
    f.offline();
    let db = rusqlite::Connection::open(f.ws.store_file()).unwrap();
    let (sealed, attrs) = (column(&db, "sealed", "sealed-flipped"), column(&db, "attrs", "attrs-cut"));
    let mut flipped = sealed.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    set_column(&db, "sealed", "sealed-flipped", &flipped);
    set_column(&db, "attrs", "attrs-cut", &attrs[..attrs.len() - 5]);
    let ids = [unique_id(&db, "sealed-flipped"), unique_id(&db, "attrs-cut")];
    drop(db);

    f.online();
    let s = common::user_session(f.p11(), f.slot());
    assert!(find(&s, "sealed-flipped").unwrap().is_empty(), "a row whose sealed value fails to open is not served");
    assert!(find(&s, "attrs-cut").unwrap().is_empty(), "a row whose attributes do not decode is not served");
    let intact = find(&s, "intact").unwrap();
    assert_eq!(block(&s, intact[0]).unwrap(), refs[2].1, "the other keys work");
    let log = f.ws.log();
    for id in &ids {
        assert!(log.contains(&format!("stored object {id} is unreadable: integrity check failed")), "{id}: {log}");
    }
    drop(s);

    // The fault gone (the rows restored, as from a backup), the objects are back.
    f.offline();
    let db = rusqlite::Connection::open(f.ws.store_file()).unwrap();
    set_column(&db, "sealed", "sealed-flipped", &sealed);
    set_column(&db, "attrs", "attrs-cut", &attrs);
    drop(db);
    f.online();
    let s = common::user_session(f.p11(), f.slot());
    for (label, want) in &refs {
        let k = find(&s, label).unwrap();
        assert_eq!(block(&s, k[0]).unwrap(), *want, "{label}");
    }
}

const KEYS: u8 = 60;

fn key_label(i: u8) -> String {
    // Long labels spread the rows over several pages.
    format!("key-{i:03}-{}", "x".repeat(200))
}

/// Key `i` answers its own block, or fails with CKR_DEVICE_ERROR: `Some(true)` served,
/// `Some(false)` refused, and never another key's material.
fn served(s: &Session, i: u8, want: &[u8]) -> bool {
    let handles = match find(s, &key_label(i)) {
        Ok(h) => h,
        Err(e) => {
            assert_eq!(rv_of::<()>(Err(e)), RvError::DeviceError, "key {i}");
            return false;
        }
    };
    match handles.as_slice() {
        [] => false,
        [k] => match block(s, *k) {
            Ok(out) => {
                assert_eq!(out, want, "key {i} served wrong key material");
                true
            }
            Err(e) => {
                assert_eq!(rv_of::<()>(Err(e)), RvError::DeviceError, "key {i}");
                false
            }
        },
        more => panic!("key {i}: {} objects under one label", more.len()),
    }
}

#[test]
fn a_corrupted_page_fails_what_is_on_it_and_never_serves_wrong_key_material() {
    let mut f = Faulty::new("", "");
    let s = f.init();
    let refs: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| {
            let k = s.create_object(&key_template(&key_label(i), i)).expect("C_CreateObject");
            block(&s, k).unwrap()
        })
        .collect();
    drop(s);
    f.offline();
    // A leaf page of the objects table in the middle of the file, found by the shell's
    // dbstat table (the module is finalized, so the main file holds every page).
    let pages: Vec<usize> = f
        .shell("SELECT pageno FROM dbstat WHERE name = 'objects' AND pagetype = 'leaf' ORDER BY pageno")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(pages.len() >= 3, "the objects span several pages: {pages:?}");
    let page_size: usize = f.shell("PRAGMA page_size").parse().unwrap();
    let victim = pages[pages.len() / 2];
    let file = f.ws.store_file();
    let pristine = std::fs::read(&file).unwrap();
    let mut bytes = pristine.clone();
    let at = (victim - 1) * page_size;
    bytes[at..at + page_size].fill(0xa5);
    std::fs::write(&file, &bytes).unwrap();

    f.online();
    let s = common::user_session(f.p11(), f.slot());
    let ok: Vec<bool> = (0..KEYS).map(|i| served(&s, i, &refs[usize::from(i)])).collect();
    let refused = ok.iter().filter(|o| !**o).count();
    eprintln!("page {victim} of {:?} corrupted: {refused} of {KEYS} keys refused", pages);
    assert!(refused > 0, "the rows on page {victim} are refused");
    assert!(refused < usize::from(KEYS), "the rows on other pages are served");
    assert!(f.ws.log().contains("malformed: the store file is corrupt"), "the log says the store is corrupt");
    if let Err(e) = s.create_object(&key_template("new", 0x44)) {
        assert_eq!(rv_of::<()>(Err(e)), RvError::DeviceError, "a write to a corrupt store");
    }
    drop(s);

    // The page restored (from a backup), every key is served again.
    f.offline();
    std::fs::write(&file, &pristine).unwrap();
    f.online();
    let s = common::user_session(f.p11(), f.slot());
    assert!((0..KEYS).all(|i| served(&s, i, &refs[usize::from(i)])));
}

const FAIL_AUDIT: &str =
    "CREATE TRIGGER audit_unavailable BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END;";

/// Extends `tests/audit.rs` (create, generate, destroy, login) to the other audited calls.
#[test]
fn with_the_audit_log_unwritable_every_audited_call_fails_closed_and_recovers() {
    let mut f = Faulty::new("", "[audit]\ndata_operations = \"per-call\"\n");
    let s = f.init();
    let key = s.create_object(&key_template("key", 0x11)).expect("C_CreateObject");
    let kek = s.create_object(&key_template("kek", 0x22)).expect("C_CreateObject");
    let before = block(&s, key).expect("encrypt");
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).expect("C_WrapKey");
    let (entries, objects) = (f.count("audit_log"), f.count("objects"));

    f.shell(FAIL_AUDIT);
    let unwrap_template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(b"unwrapped".to_vec()),
    ];
    assert_eq!(rv_of(block(&s, key)), RvError::DeviceError, "a per-call data operation");
    assert_eq!(rv_of(s.wrap_key(&Mechanism::AesKeyWrap, kek, key)), RvError::DeviceError);
    assert_eq!(rv_of(s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &unwrap_template)), RvError::DeviceError);
    assert_eq!(rv_of(s.update_attributes(key, &[Attribute::Label(b"renamed".to_vec())])), RvError::DeviceError);
    assert_eq!(rv_of(s.copy_object(key, &[Attribute::Label(b"copy".to_vec())])), RvError::DeviceError);
    let (user, new) = (AuthPin::new(USER_PIN.into()), AuthPin::new("user-pin-5678".into()));
    assert_eq!(rv_of(s.set_pin(&user, &new)), RvError::DeviceError);
    f.shell("DROP TRIGGER audit_unavailable");

    assert_eq!(f.count("audit_log"), entries, "the refusals could not be audited either");
    assert_eq!(f.count("objects"), objects);
    for label in ["unwrapped", "renamed", "copy"] {
        assert!(find(&s, label).unwrap().is_empty(), "{label} appeared without its audit entry");
    }
    drop(s);
    // The PIN did not change half-way: the old one still logs in, and every call works.
    let s = common::user_session(f.p11(), f.slot());
    let (key, kek) = (find(&s, "key").unwrap()[0], find(&s, "kek").unwrap()[0]);
    assert_eq!(block(&s, key).unwrap(), before);
    s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &unwrap_template).expect("C_UnwrapKey once the log works");
    s.set_pin(&user, &new).expect("C_SetPIN once the log works");
    drop(s);
    f.offline();
    f.assert_chain_intact();
}

const CKM_CV_ROTATE_MASTER: cryptoki_sys::CK_ULONG = 0xC356_0003;
const CKA_CV_KEY_VERSION: cryptoki_sys::CK_ULONG = 0xC356_0002;

fn rotate(s: &Session) -> cryptoki::error::Result<ObjectHandle> {
    let mechanism = cryptoki::mechanism::MechanismType::new_vendor_defined(CKM_CV_ROTATE_MASTER).unwrap();
    s.generate_key(
        &Mechanism::VendorDefined(cryptoki::mechanism::vendor_defined::VendorDefinedMechanism::new::<()>(
            mechanism, None,
        )),
        &[],
    )
}

/// The version of the current master key object.
fn current_version(s: &Session) -> u64 {
    let found = s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find");
    let ty = cryptoki::object::AttributeType::VendorDefined(CKA_CV_KEY_VERSION);
    match s.get_attributes(found[0], &[ty]).expect("version").as_slice() {
        [Attribute::VendorDefined((_, bytes))] => u64::from_ne_bytes(bytes.as_slice().try_into().unwrap()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_root_token_gone_mid_run_is_a_device_error_and_comes_back_with_its_files_at_restart() {
    let hsm = common::hsm::Hsm::new();
    let mut f = Faulty::new("", &hsm.root_section(common::hsm::ROOT_LABEL));
    let s = f.init();
    rotate(&s).expect("a rotation seals a new master key under the root");
    assert_eq!(current_version(&s), 2);
    let masters = f.count("master_keys");

    // The token's files go (a pulled HSM, a lost mount), the module still running.
    let (tokens, away) = (hsm.tokens(), hsm.dir.path().join("away"));
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    assert_eq!(rv_of(rotate(&s)), RvError::DeviceError, "a rotation needs the root");
    assert_eq!(f.count("master_keys"), masters, "no master key version was half-made");
    assert_eq!(current_version(&s), 2);
    let log = f.ws.log();
    assert!(log.contains("C_GenerateKey: root of trust: "), "{log}");

    // The files back and the module restarted (SoftHSM2 marks a token whose directory
    // went invalid until it is initialized again, and the module keeps the root key's
    // handles: README, "Faults"), the same call works and the versions run on.
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    drop(s);
    f.offline();
    f.online();
    let s = common::user_session(f.p11(), f.slot());
    assert_eq!(current_version(&s), 2);
    rotate(&s).expect("a rotation once the root token is back");
    assert_eq!(current_version(&s), 3);
    drop(s);
    f.offline();
    f.assert_chain_intact();
}
