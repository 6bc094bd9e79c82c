//! `cvault backup create|verify|restore` as processes, over a workspace whose root of
//! trust is a real SoftHSM2 token, with token objects made and used through the built
//! module's C ABI: a round trip, a backup taken under a concurrent write load, every kind
//! of tampering refused by name, and a restore that brings deleted objects back, keeps
//! the replaced store aside and leaves an audit chain that verifies.

#![allow(missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use collabvault_pkcs11::store::sqlite::SqliteStore;
use collabvault_pkcs11::store::{Backend, IndexQuery};
use common::cvault::Cvault;
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

/// A SoftHSM2 root and a config naming it, with workspace "eng" initialized.
fn fixture() -> Cvault {
    with_more("")
}

/// `more` (further workspaces) after the first workspace, "eng".
fn with_more(more: &str) -> Cvault {
    let f = Cvault::new(&format!("[[workspace]]\nname = \"eng\"\nclassification = \"restricted\"\n{more}"));
    f.init();
    f
}

/// A backup directory under the fixture's temporary directory.
fn backup_dir(f: &Cvault, name: &str) -> PathBuf {
    f.ws.dir.path().join(name)
}

/// The live store's directory.
fn store_dir(f: &Cvault) -> PathBuf {
    f.ws.dir.path().join("store")
}

/// The module loaded in this process and a logged-in user session.
fn module() -> (Pkcs11, Slot, Session) {
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    let s = common::user_session(&pkcs11, slot);
    (pkcs11, slot, s)
}

/// A stored DEK (a token AES key, sealed under the active master key version).
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

fn find(s: &Session, id: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Id(id.as_bytes().to_vec())]).expect("find by CKA_ID")
}

fn seal(s: &Session, key: ObjectHandle, data: &[u8]) -> Vec<u8> {
    let mut iv = [7u8; 12];
    s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).expect("gcm")), key, data).expect("encrypt")
}

fn open(s: &Session, key: ObjectHandle, sealed: &[u8]) -> Vec<u8> {
    let mut iv = [7u8; 12];
    s.decrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).expect("gcm")), key, sealed).expect("decrypt")
}

/// The store file in `dir` opened from a private copy (opening writes to a SQLite file).
fn open_copy(file: &Path) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(file, dir.path().join("collabvault.sqlite3")).expect("copy");
    let store = SqliteStore::open(dir.path()).expect("open copy");
    (dir, store)
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

/// v1 with two stored DEKs, then v2 (rotated) with one more: every version has records.
fn populate(f: &Cvault) -> Vec<u8> {
    let (pkcs11, _, s) = module();
    let doc = seal(&s, stored_dek(&s, "doc-1"), b"board minutes");
    stored_dek(&s, "doc-2");
    drop(s);
    pkcs11.finalize().expect("C_Finalize");
    f.ok(&["master", "rotate", "--workspace", "eng"]);
    let (pkcs11, _, s) = module();
    stored_dek(&s, "doc-3");
    drop(s);
    pkcs11.finalize().expect("C_Finalize");
    doc
}

#[test]
fn a_backup_verifies_with_deks_under_every_version_and_both_are_recorded() {
    let f = fixture();
    populate(&f);
    let dest = backup_dir(&f, "b1");
    let created = f.ok(&["backup", "create", dest.to_str().expect("utf-8")]);
    assert!(created.contains("3 object(s)") && created.contains("manifest sha256:"), "{created}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["format"], 1);
    let masters = &manifest["workspaces"][0]["masters"];
    assert_eq!((masters[0]["state"].as_str(), masters[0]["stored_records"].as_u64()), (Some("decrypt-only"), Some(2)));
    assert_eq!((masters[1]["state"].as_str(), masters[1]["stored_records"].as_u64()), (Some("active"), Some(1)));
    assert_eq!(manifest["files"][0]["name"], "collabvault.sqlite3");
    // The copy holds sealed rows and the chain; the root key stays in the root slot.
    assert!(std::fs::read_dir(&dest).expect("dir").count() == 2, "only the store copy and the manifest");

    let verified = f.ok(&["backup", "verify", dest.to_str().expect("utf-8")]);
    assert!(verified.contains("sample stored DEK(s) open (v1 2/2, v2 1/1)"), "{verified}");
    assert!(verified.contains("copied audit chain is intact"), "{verified}");
    assert!(verified.contains("recorded at entry"), "{verified}");
    assert!(verified.contains("verified"), "{verified}");

    let status = f.ok(&["token", "status"]);
    assert!(status.contains("last verify: ok of"), "{status}");
    let rows = f.ws.open_store().audit_rows().expect("rows");
    let actions: Vec<(&str, &str)> = rows.iter().map(|r| (r.event.action.as_str(), r.event.outcome.as_str())).collect();
    assert!(actions.contains(&("backup-create", "CKR_OK")) && actions.contains(&("backup-verify", "CKR_OK")));
    f.ok(&["audit", "verify"]);
}

#[test]
fn a_backup_without_the_user_pin_cannot_prove_its_deks() {
    let f = fixture();
    populate(&f);
    let dest = backup_dir(&f, "b1");
    f.ok(&["backup", "create", dest.to_str().expect("utf-8")]);
    let out = f.command(&["backup", "verify", dest.to_str().expect("utf-8")]).env_remove("CV_USER_PIN").output();
    let out = out.expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user PIN"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_kind_of_tampering_is_refused_naming_what() {
    let f = fixture();
    populate(&f);
    let dest = backup_dir(&f, "b1");
    let d = dest.to_str().expect("utf-8");
    f.ok(&["backup", "create", d]);
    let db = dest.join("collabvault.sqlite3");
    let manifest = dest.join("manifest.json");
    let (db_bytes, manifest_bytes) = (std::fs::read(&db).expect("db"), std::fs::read(&manifest).expect("manifest"));

    // A flipped byte in the middle of the database file.
    flip_byte(&db, db_bytes.len() / 2);
    let why = f.refused(&["backup", "verify", d]);
    assert!(why.contains("collabvault.sqlite3 does not match its SHA-256"), "{why}");
    std::fs::write(&db, &db_bytes).expect("put back");

    // The manifest edited (one more object claimed).
    let edited = String::from_utf8(manifest_bytes.clone()).expect("utf-8").replace("\"objects\": 3", "\"objects\": 4");
    assert_ne!(edited.as_bytes(), manifest_bytes.as_slice(), "the edit changed something");
    std::fs::write(&manifest, edited).expect("edit");
    let why = f.refused(&["backup", "verify", d]);
    assert!(why.contains("manifest.json was changed"), "{why}");
    assert!(why.contains("does not match the copy: workspace eng"), "{why}");

    // The database edited and its checksum in the manifest recomputed to match.
    flip_byte(&db, db_bytes.len() / 2);
    let sum = hex_sha256(&std::fs::read(&db).expect("db"));
    let forged = String::from_utf8(manifest_bytes.clone()).expect("utf-8");
    let old_sum = serde_json::from_slice::<serde_json::Value>(&manifest_bytes).expect("json")["files"][0]["sha256"]
        .as_str()
        .expect("sum")
        .to_string();
    std::fs::write(&manifest, forged.replace(&old_sum, &sum)).expect("forge");
    let why = f.refused(&["backup", "verify", d]);
    assert!(why.contains("manifest.json was changed"), "{why}");
    std::fs::write(&db, &db_bytes).expect("put back");
    std::fs::write(&manifest, &manifest_bytes).expect("put back");

    // A missing file, then a missing manifest.
    std::fs::remove_file(&db).expect("remove");
    let why = f.refused(&["backup", "verify", d]);
    assert!(why.contains("collabvault.sqlite3 is missing"), "{why}");
    std::fs::write(&db, &db_bytes).expect("put back");
    std::fs::remove_file(&manifest).expect("remove");
    let why = f.refused(&["backup", "verify", d]);
    assert!(why.contains("manifest.json is missing"), "{why}");
    std::fs::write(&manifest, &manifest_bytes).expect("put back");

    // Untouched again, it verifies; every failure was recorded, and status shows the last.
    f.ok(&["backup", "verify", d]);
    let rows = f.ws.open_store().audit_rows().expect("rows");
    let failed = rows.iter().filter(|r| r.event.action == "backup-verify" && r.event.outcome == "FAILED").count();
    assert_eq!(failed, 5, "flipped, edited, forged, missing file, missing manifest");
    // A refused restore changes nothing.
    flip_byte(&db, db_bytes.len() / 2);
    let why = f.refused(&["backup", "restore", d]);
    assert!(why.contains("not restored") && why.contains("does not match its SHA-256"), "{why}");
}

fn hex_sha256(bytes: &[u8]) -> String {
    collabvault_pkcs11::backup::manifest::digest(bytes).trim_start_matches("sha256:").to_string()
}

#[test]
fn a_backup_under_concurrent_writes_is_one_consistent_snapshot() {
    let f = fixture();
    // The login lasts while a session stays open: this one, for the whole test.
    let (pkcs11, slot, _login) = module();
    let made = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (pkcs11, made, stop) = (pkcs11.clone(), made.clone(), stop.clone());
        std::thread::spawn(move || {
            let s = pkcs11.open_rw_session(slot).expect("session");
            while !stop.load(Ordering::Acquire) {
                stored_dek(&s, &format!("load-{}", made.load(Ordering::Acquire)));
                made.fetch_add(1, Ordering::AcqRel);
            }
        })
    };
    while made.load(Ordering::Acquire) < 20 {
        assert!(!writer.is_finished(), "the writer stopped early");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before = made.load(Ordering::Acquire);
    let dest = backup_dir(&f, "busy");
    f.ok(&["backup", "create", dest.to_str().expect("utf-8")]);
    let during = made.load(Ordering::Acquire);
    while made.load(Ordering::Acquire) < during + 10 {
        assert!(!writer.is_finished(), "the writer stopped early");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, Ordering::Release);
    writer.join().expect("writer");
    let after = made.load(Ordering::Acquire);

    // The snapshot is of one commit: its objects are exactly those its chain created.
    let (_tmp, copy) = open_copy(&dest.join("collabvault.sqlite3"));
    let objects = copy.find_objects("eng", &IndexQuery::default()).expect("objects").len();
    let rows = copy.audit_rows().expect("rows");
    let generated = rows.iter().filter(|r| r.event.action == "C_GenerateKey" && r.event.outcome == "CKR_OK").count();
    assert_eq!(objects, generated, "every object in the copy has its entry, and every entry its object");
    assert!(before <= objects && objects <= after, "taken during the load: {before} <= {objects} <= {after}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["workspaces"][0]["objects"].as_u64(), Some(objects as u64));
    assert_eq!(manifest["audit_head"]["seq"].as_i64(), rows.last().map(|r| r.seq));
    let verified = f.ok(&["backup", "verify", dest.to_str().expect("utf-8")]);
    assert!(verified.contains("backup") && verified.contains("verified"), "{verified}");
    drop(_login);
    pkcs11.finalize().expect("C_Finalize");
}

#[test]
fn restore_brings_back_deleted_objects_and_keeps_the_replaced_store_aside() {
    let f = fixture();
    let document = populate(&f);
    let dest = backup_dir(&f, "b1");
    let d = dest.to_str().expect("utf-8");
    f.ok(&["backup", "create", d]);
    let (pkcs11, _, s) = module();
    s.destroy_object(find(&s, "doc-1")[0]).expect("destroy doc-1");
    stored_dek(&s, "after-backup");
    assert!(find(&s, "doc-1").is_empty());

    // While this process has the token open, the restore is refused and changes nothing.
    let why = f.refused(&["backup", "restore", d]);
    assert!(why.contains("in use by another process"), "{why}");
    assert!(find(&s, "doc-1").is_empty() && find(&s, "after-backup").len() == 1, "nothing changed");
    drop(s);
    pkcs11.finalize().expect("C_Finalize");

    let restored = f.ok(&["backup", "restore", d]);
    assert!(restored.contains("previous store is kept at"), "{restored}");
    let aside: Vec<PathBuf> = std::fs::read_dir(store_dir(&f))
        .expect("store dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    // The entries after the backup live on in the set-aside file.
    let (_tmp, old) = open_copy(&aside[0]);
    let old_rows = old.audit_rows().expect("old rows");
    assert!(old_rows.iter().any(|r| r.event.action == "C_DestroyObject"), "the destroy is in the set-aside chain");

    let (pkcs11, _, s) = module();
    let doc1 = find(&s, "doc-1");
    assert_eq!(doc1.len(), 1, "the deleted DEK is back");
    assert_eq!(open(&s, doc1[0], &document), b"board minutes", "and it still opens what it sealed");
    assert!(find(&s, "after-backup").is_empty(), "objects made after the backup are not in it");
    drop(s);
    pkcs11.finalize().expect("C_Finalize");

    let verified = f.ok(&["audit", "verify"]);
    assert!(verified.contains("intact"), "{verified}");
    let rows = f.ws.open_store().audit_rows().expect("rows");
    assert!(rows.iter().any(|r| r.event.action == "backup-restore"), "the restore is in the restored chain");
    let status = f.ok(&["token", "status"]);
    assert!(status.contains(&format!("restored from {d}")), "{status}");
    // The restored chain names the backup it came from, so it verifies as this store's.
    let again = f.ok(&["backup", "verify", d]);
    assert!(again.contains("recorded at entry"), "{again}");
}

#[test]
fn a_backup_of_another_store_is_restored_only_with_force() {
    let f = fixture();
    populate(&f);
    let dest = backup_dir(&f, "b1");
    let d = dest.to_str().expect("utf-8");
    f.ok(&["backup", "create", d]);
    // The live store diverges from the backup's lineage: its chain is replaced by one
    // made from scratch (a new store, as on a rebuilt machine with the same root).
    let store = store_dir(&f).join("collabvault.sqlite3");
    let fresh = tempfile::tempdir().expect("tempdir");
    drop(SqliteStore::open(fresh.path()).expect("fresh store"));
    std::fs::copy(fresh.path().join("collabvault.sqlite3"), &store).expect("replace");
    for side in ["-wal", "-shm"] {
        drop(std::fs::remove_file(format!("{}{side}", store.display())));
    }
    let why = f.refused(&["backup", "restore", d]);
    assert!(why.contains("is not in the live chain") && why.contains("--force"), "{why}");
    f.ok(&["backup", "restore", "--force", d]);
}

#[test]
fn status_warns_about_a_recovery_kit_in_a_backup_directory() {
    let f = fixture();
    let dest = backup_dir(&f, "b1");
    f.ok(&["backup", "create", dest.to_str().expect("utf-8")]);
    assert!(!f.ok(&["token", "status"]).contains("WARNING"));
    std::fs::write(dest.join("renamed-kit.bin"), b"CVKIT\x01...").expect("kit");
    let status = f.ok(&["token", "status"]);
    assert!(status.contains("WARNING: recovery kit") && status.contains("renamed-kit.bin"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&f.ok(&["token", "status", "--json"])).expect("json");
    assert_eq!(json["backups"]["kits_beside_backups"].as_array().map(Vec::len), Some(1));
}

#[test]
fn verify_with_a_workspace_opens_only_that_workspaces_deks_and_says_so() {
    let f = with_more("[[workspace]]\nname = \"legal\"\n");
    populate(&f);
    let dest = backup_dir(&f, "b1");
    let d = dest.to_str().expect("utf-8");
    f.ok(&["backup", "create", d]);
    // legal's user PIN differs from eng's: each workspace's DEKs are proven in its own run.
    let out = f.command(&["backup", "verify", "--workspace", "legal", d]).env_remove("CV_USER_PIN").output();
    let out = out.expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("workspace eng: stored DEKs not opened"), "{stdout}");
    let eng = f.ok(&["backup", "verify", "--workspace", "eng", d]);
    assert!(eng.contains("workspace eng: 3 sample stored DEK(s) open"), "{eng}");
    let why = f.refused(&["backup", "verify", "--workspace", "nosuch", d]);
    assert!(why.contains("\"nosuch\" is not in the config"), "{why}");
}
