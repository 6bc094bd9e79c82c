//! `cvault recover`: restoration from a recovery kit after the root token (SoftHSM2) is
//! lost, through the `cvault` binary and the built module: token DEKs and app-held wrap
//! records made before the loss open afterwards under a new root token and new PINs; a
//! session logged in before the recovery is refused (`CKR_USER_NOT_LOGGED_IN`); a store
//! restored from a backup file is recovered the same way; a recovery killed (SIGKILL) at
//! a random point is finished by the next run.

#![allow(missing_docs)]

mod common;

use common::vendor;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collabvault_pkcs11::store::sqlite::SqliteStore;
use collabvault_pkcs11::store::Backend;
use common::hsm::{softhsm_module, Hsm, ROOT_LABEL, ROOT_PIN, ROOT_PIN_ENV};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

const FACTOR_TOKEN: &str = "kit-factor";
const FACTOR_PIN: &str = "factor-pin-2468";
const PASSPHRASE: &str = "a long kit passphrase";
const NEW_ROOT: &str = "cv-root-new";
const NEW_USER_PIN: &str = "recovered-user-pin-77";
const NEW_SO_PIN: &str = "recovered-so-pin-77";
const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;

struct Disaster {
    ws: common::Workspace,
    hsm: Hsm,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn softhsm_util(hsm: &Hsm, args: &[&str]) {
    let out = Command::new("softhsm2-util")
        .args(args)
        .env("SOFTHSM2_CONF", hsm.conf().join("softhsm2.conf"))
        .output()
        .expect("softhsm2-util");
    assert!(out.status.success(), "softhsm2-util {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Disaster {
    fn new() -> Disaster {
        let serial = common::lock();
        let hsm = Hsm::new();
        softhsm_util(
            &hsm,
            &["--init-token", "--free", "--label", FACTOR_TOKEN, "--so-pin", "factor-so-1", "--pin", FACTOR_PIN],
        );
        let body = format!("{}[[workspace]]\nname = \"eng\"\n", hsm.root_section(ROOT_LABEL));
        let d = Disaster { ws: common::Workspace::with_config_body(&body), hsm, _serial: serial };
        d.ok(&["token", "init", "--workspace", "eng", "--label", "Engineering"], common::USER_PIN);
        d.ok(&["kit", "factor", "init"], common::USER_PIN);
        d
    }

    fn command(&self, args: &[&str], user_pin: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cvault"));
        c.args(args)
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .env("COLLABVAULT_MODULE", common::module_path())
            .env("SOFTHSM2_CONF", self.hsm.conf().join("softhsm2.conf"))
            .env(ROOT_PIN_ENV, ROOT_PIN)
            .env("CV_SO_PIN", if user_pin == common::USER_PIN { common::SO_PIN } else { NEW_SO_PIN })
            .env("CV_USER_PIN", user_pin)
            .env("CV_FACTOR_MODULE", softhsm_module())
            .env("CV_FACTOR_TOKEN", FACTOR_TOKEN)
            .env("CV_FACTOR_PIN", FACTOR_PIN)
            .env("CV_KIT_PASSPHRASE", PASSPHRASE);
        c
    }

    fn run(&self, args: &[&str], user_pin: &str) -> Output {
        self.command(args, user_pin).output().expect("run cvault")
    }

    fn ok(&self, args: &[&str], user_pin: &str) -> String {
        let out = self.run(args, user_pin);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "cvault {args:?} failed: {stderr}\n{stdout}");
        stdout.into_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ws.dir.path().join(name)
    }

    fn export_kit(&self) -> PathBuf {
        let out = self.path("eng.cvkit");
        let p = out.to_str().expect("utf-8");
        let args = ["kit", "export", "--workspace", "eng", "--out", p, "--holder", "alice"];
        self.ok(&[&args[..], &["--kdf-memory-kib", "19456", "--kdf-passes", "2"]].concat(), common::USER_PIN);
        out
    }

    /// The root token is gone for good; a new, empty one takes its place in `[root]`.
    fn lose_root(&self) {
        self.hsm.delete_token(ROOT_LABEL);
        softhsm_util(
            &self.hsm,
            &["--init-token", "--free", "--label", NEW_ROOT, "--so-pin", "root-so-9", "--pin", ROOT_PIN],
        );
        let text = std::fs::read_to_string(&self.ws.conf).expect("config");
        let moved = text.replace(&format!("token_label = {ROOT_LABEL:?}"), &format!("token_label = {NEW_ROOT:?}"));
        assert_ne!(text, moved, "the config names the root token");
        std::fs::write(&self.ws.conf, moved).expect("config");
    }

    fn recover(&self) -> Output {
        let kit = self.path("eng.cvkit");
        self.run(
            &["recover", "--workspace", "eng", "--kit", kit.to_str().expect("utf-8"), "--batch", "1"],
            NEW_USER_PIN,
        )
    }
}

fn user_session(pkcs11: &Pkcs11, pin: &str) -> Session {
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    let s = pkcs11.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&AuthPin::new(pin.into()))).expect("login");
    s
}

fn master(s: &Session) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find")[0]
}

fn dek_value(i: usize) -> Vec<u8> {
    // Distinct per DEK: its index in the first 8 bytes.
    let mut v: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(7)).collect();
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

fn aes_template(value: Vec<u8>, token: bool, label: String) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(value),
        Attribute::Token(token),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Label(label.into_bytes()),
    ]
}

/// `n` token DEKs with known values (stored as wrap records under the active version),
/// and `apps` app-held wrap records, returned as (value, record).
fn ingest(n: usize, apps: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pkcs11 = common::load();
    let s = user_session(&pkcs11, common::USER_PIN);
    for i in 0..n {
        s.create_object(&aes_template(dek_value(i), true, format!("dek-{i}"))).expect("token DEK");
    }
    let mut held = Vec::new();
    for i in 0..apps {
        let value = dek_value(1000 + i);
        let dek = s.create_object(&aes_template(value.clone(), false, format!("app-{i}"))).expect("session DEK");
        let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), dek).expect("wrap record");
        held.push((value, record));
    }
    drop(s);
    pkcs11.finalize().expect("C_Finalize");
    held
}

fn value_of(s: &Session, h: ObjectHandle) -> Vec<u8> {
    match s.get_attributes(h, &[AttributeType::Value]).expect("CKA_VALUE").first() {
        Some(Attribute::Value(v)) => v.clone(),
        other => panic!("no value: {other:?}"),
    }
}

/// Every token DEK and app-held record opens with the new user PIN, to its old value;
/// the old user PIN is refused.
fn every_dek_opens(n: usize, held: &[(Vec<u8>, Vec<u8>)]) {
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    let s = pkcs11.open_rw_session(slot).expect("open");
    let old = s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())));
    assert!(matches!(old, Err(CkError::Pkcs11(RvError::PinIncorrect, _))), "the old PIN: {old:?}");
    s.login(UserType::User, Some(&AuthPin::new(NEW_USER_PIN.into()))).expect("login with the new PIN");
    for i in 0..n {
        let found = s.find_objects(&[Attribute::Label(format!("dek-{i}").into_bytes())]).expect("find");
        assert_eq!(found.len(), 1, "dek-{i}");
        assert_eq!(value_of(&s, found[0]), dek_value(i), "dek-{i}");
    }
    let template = [Attribute::Token(false), Attribute::Class(ObjectClass::SECRET_KEY)];
    for (value, record) in held {
        let h = s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s), record, &template).expect("app record opens");
        assert_eq!(&value_of(&s, h), value);
    }
    drop(s);
    pkcs11.finalize().expect("C_Finalize");
}

fn assert_ok(out: &Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cvault recover failed: {stderr}\n{stdout}");
    stdout.into_owned()
}

#[test]
fn a_lost_root_is_recovered_from_the_kit_and_an_earlier_session_is_refused() {
    let d = Disaster::new();
    let held = ingest(12, 3);
    d.ok(&["master", "rotate"], common::USER_PIN);
    let held2 = ingest(0, 2);
    d.export_kit();
    // An application logged in before the disaster, still running.
    let pkcs11 = common::load();
    let old = user_session(&pkcs11, common::USER_PIN);
    let dek0 = old.find_objects(&[Attribute::Label(b"dek-0".to_vec())]).expect("find")[0];
    assert_eq!(value_of(&old, dek0), dek_value(0));
    let old_master = master(&old);
    // The audit key fingerprint kept from before the loss (`cvault audit key --json`).
    let key: serde_json::Value =
        serde_json::from_str(&d.ok(&["audit", "key", "--json"], common::USER_PIN)).expect("audit key JSON");
    let old_ecdsa = key["ecdsa_p256_sha256"].as_str().expect("ECDSA fingerprint").to_string();

    d.lose_root();
    let out = assert_ok(&d.recover());
    assert!(
        out.contains("2 master key version(s) re-sealed from the kit") && out.contains("v3 is now active"),
        "{out}"
    );
    assert!(out.contains("12 stored DEK(s) re-wrapped to v3"), "{out}");

    // The earlier login is void in the running application: refused, then gone.
    let template = [Attribute::Token(false), Attribute::Class(ObjectClass::SECRET_KEY)];
    let refused = old.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), old_master, &held[0].1, &template);
    assert!(matches!(refused, Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _))), "{refused:?}");
    let value = old.get_attributes(dek0, &[AttributeType::Value]);
    assert!(!matches!(value.as_deref(), Ok([Attribute::Value(_)])), "no DEK value after recovery: {value:?}");
    let found = old.find_objects(&[Attribute::Label(b"dek-1".to_vec())]).expect("find");
    assert!(found.is_empty(), "the voided login sees no private object");
    drop(old);
    pkcs11.finalize().expect("C_Finalize");

    let all: Vec<_> = held.into_iter().chain(held2).collect();
    every_dek_opens(12, &all);
    // A rerun finds every step done and changes nothing it need not.
    let rerun = assert_ok(&d.recover());
    assert!(rerun.contains("already under the new root") && rerun.contains("0 stored DEK(s) re-wrapped"), "{rerun}");
    every_dek_opens(12, &all);
    let audit = d.ok(&["audit", "export"], NEW_USER_PIN);
    for action in ["recover-kit", "recover-pins", "recover-hierarchy", "recover-epoch", "\"recover\"", "ROOT REPLACED"]
    {
        assert!(audit.contains(action), "{action} audited");
    }
    // The chain spans the root's replacement: the lost root's checkpoints verify under the
    // keys the succession entry names, vouched for by the new root's checkpoint.
    assert_eq!(audit.matches("ROOT REPLACED").count(), 1, "the rerun appended no second succession");
    let verdict = d.ok(&["audit", "verify"], NEW_USER_PIN);
    assert!(verdict.starts_with("intact:") && verdict.contains("spans 1 root replacement(s): at entry"), "{verdict}");
    let named = format!("by the replaced root's keys (ECDSA P-256 sha256:{}…", &old_ecdsa[..16]);
    assert!(verdict.contains(&named), "{named}: {verdict}");
}

/// Half an audit key pair in the new root token (its public key only), as a process
/// killed between the pair's two objects leaves it.
fn plant_orphan_audit_key() {
    let (p, s) = common::hsm::token_session(NEW_ROOT);
    let label = Attribute::Label(b"collabvault-audit".to_vec());
    let p256_oid = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let public = [Attribute::Token(true), Attribute::EcParams(p256_oid), Attribute::Verify(true), label.clone()];
    let private = [Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true), label];
    let (_, private) = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).expect("key pair");
    s.destroy_object(private).expect("drop the private half");
    drop(s);
    p.finalize().expect("C_Finalize");
}

/// The succession entry vouches for nothing by itself: with its covering checkpoint (the
/// new root's) dropped from the store, or an old checkpoint re-signed under another key,
/// `cvault audit verify` fails.
#[test]
fn audit_verify_after_a_recovery_still_catches_tampering() {
    let d = Disaster::new();
    ingest(3, 0);
    d.ok(&["master", "rotate"], common::USER_PIN);
    d.export_kit();
    d.lose_root();
    // A first run killed inside the new root's audit key pair generation left its public
    // half only: nothing was signed with it, so the rerun makes a whole pair.
    plant_orphan_audit_key();
    assert_ok(&d.recover());
    d.ok(&["audit", "verify"], NEW_USER_PIN);
    let file = d.ws.dir.path().join("store").join("collabvault.sqlite3");
    let copy = d.path("intact.sqlite3");
    std::fs::copy(&file, &copy).expect("copy");
    let sql = |statement: &str| {
        let db = rusqlite::Connection::open(&file).expect("open store");
        db.execute_batch(statement).expect(statement);
    };
    // Every checkpoint from the succession on dropped: the entry is uncovered (and the
    // new root's head is gone from the store).
    let succession_seq = {
        let db = rusqlite::Connection::open(&file).expect("open store");
        db.query_row("SELECT seq FROM audit_log WHERE action = 'ROOT REPLACED'", [], |r| r.get::<_, i64>(0))
            .expect("the succession entry")
    };
    sql(&format!("DELETE FROM audit_checkpoints WHERE entry_seq >= {succession_seq}"));
    let out = d.run(&["audit", "verify"], NEW_USER_PIN);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    std::fs::copy(&copy, &file).expect("put back");
    d.ok(&["audit", "verify"], NEW_USER_PIN);
    // A pre-loss checkpoint's signature altered: it no longer verifies under the named key.
    sql("UPDATE audit_checkpoints SET signature = zeroblob(64) WHERE number = 1");
    let out = d.run(&["audit", "verify"], NEW_USER_PIN);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("checkpoint 1"), "{stdout}");
}

/// Stored DEKs under v1 (the kit's) and v2 (recovery's), read from the store file.
fn under(store: &std::path::Path) -> (u64, u64) {
    let s = SqliteStore::open(store).expect("store");
    (s.records_under("eng", 1).expect("count"), s.records_under("eng", 2).expect("count"))
}

#[test]
fn a_backup_file_is_recovered_onto_a_new_root_and_a_killed_recovery_resumes() {
    let d = Disaster::new();
    let n = 400;
    let held = ingest(n, 2);
    d.export_kit();
    let backup = d.path("backup");
    d.ok(&["backup", "create", backup.to_str().expect("utf-8")], common::USER_PIN);
    // The server is lost with its root token: the store comes back from the backup file.
    d.lose_root();
    let store = d.ws.dir.path().join("store");
    std::fs::remove_dir_all(&store).expect("store gone");
    std::fs::create_dir_all(&store).expect("store dir");
    std::fs::copy(backup.join("collabvault.sqlite3"), store.join("collabvault.sqlite3")).expect("restore");

    // Killed at random points: first early (opening the kit, the PINs, the re-seal), then
    // once the rotation is printed and the re-wrap has begun, until a kill lands inside the
    // re-wrap (some DEKs moved to v2, some still under v1); then run to the end.
    let (mut kills, mut mid_rewrap) = (0, false);
    for attempt in 0..8 {
        let kit = d.path("eng.cvkit");
        let args = ["recover", "--workspace", "eng", "--kit", kit.to_str().expect("utf-8"), "--batch", "1"];
        let mut child = d
            .command(&args, NEW_USER_PIN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let jitter = u64::from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").subsec_nanos() % 40);
        let mut printed = String::new();
        if attempt == 0 {
            std::thread::sleep(Duration::from_millis(20 + jitter * 3));
        } else {
            let stdout = child.stdout.take().expect("stdout");
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("line");
                printed.push_str(&line);
                printed.push('\n');
                if line.contains("is now active") || line.contains("already active") {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(jitter));
        }
        let killed = child.try_wait().expect("wait").is_none();
        if killed {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let done = child.wait_with_output().expect("reaped");
        assert!(
            killed,
            "a run ended by itself ({}) before its kill: {}{printed}{}",
            done.status,
            String::from_utf8_lossy(&done.stderr),
            String::from_utf8_lossy(&done.stdout)
        );
        let (old, new) = under(&store);
        if old > 0 && new > 0 {
            mid_rewrap = true;
            eprintln!("killed in the re-wrap (attempt {attempt}): {new} moved, {old} left");
            break;
        }
    }
    assert!(kills > 0 && mid_rewrap, "no kill landed in the re-wrap ({kills} kills)");
    let out = assert_ok(&d.recover());
    assert!(out.contains("restored from kit"), "{out}");
    every_dek_opens(n, &held);
    // However the kills fell (before or after the succession entry, before its checkpoint),
    // the chain verifies across the replacement with one succession entry.
    let verdict = d.ok(&["audit", "verify"], NEW_USER_PIN);
    assert!(verdict.contains("spans 1 root replacement(s)"), "{verdict}");
}
