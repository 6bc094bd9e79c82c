//! Signed audit checkpoints with a SoftHSM2 root: every N entries the chain head is
//! signed inside the root token, which also keeps the newest checkpoint, so a chain
//! rewritten whole and a dropped tail are both caught.

#![allow(missing_docs)]

mod common;

use collabvault_pkcs11::audit::checkpoint::verify_all;
use collabvault_pkcs11::audit::{Defect, Verdict};
use collabvault_pkcs11::root::slot::SlotRoot;
use collabvault_pkcs11::store::audit::{AuditEvent, AuditRow};
use collabvault_pkcs11::store::Backend;
use common::hsm::Hsm;
use cryptoki::object::{Attribute, ObjectClass};

/// Runs a workload through the module, finalizes it, and returns the workspace and HSM.
fn audited_run(operations: usize) -> (common::Workspace, Hsm, std::sync::MutexGuard<'static, ()>) {
    let serial = common::lock();
    let hsm = Hsm::new();
    let body = format!(
        "{}[audit]\ncheckpoint_every = 10\n[[workspace]]\nname = \"main\"\n",
        hsm.root_section(common::hsm::ROOT_LABEL)
    );
    let ws = common::Workspace::with_config_body(&body);
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    common::init_token(&pkcs11, slot, "audited");
    let s = common::user_session(&pkcs11, slot);
    for i in 0..operations {
        let h = s
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Label(format!("entry-{i}").into_bytes()),
            ])
            .expect("create");
        s.destroy_object(h).expect("destroy");
    }
    drop(s);
    pkcs11.finalize().expect("C_Finalize signs the last checkpoint");
    (ws, hsm, serial)
}

fn verdict(ws: &common::Workspace) -> Verdict {
    let config = ws.config();
    let store = ws.open_store();
    let root = SlotRoot::connect(config.root.as_ref().expect("root")).expect("root token");
    let head = root.head().expect("head");
    let trusted = root.audit_public_key().expect("audit key").expect("made by the first checkpoint");
    drop(root);
    verify_all(
        &store.audit_rows().expect("rows"),
        &store.checkpoints().expect("checkpoints"),
        head.as_ref(),
        Some(&trusted),
    )
}

/// Edits entry `index` (0-based) of the finalized store with `edit`, then recomputes and
/// rewrites every hash from there on, as someone who can write the file would: the chain
/// alone stays self-consistent. Returns the rewritten rows.
fn rewrite_whole(ws: &common::Workspace, index: usize, edit: impl FnOnce(&mut AuditEvent)) -> Vec<AuditRow> {
    let store = ws.open_store();
    let mut rows = store.audit_rows().expect("rows");
    drop(store);
    edit(&mut rows[index].event);
    let db = rusqlite::Connection::open(ws.store_file()).expect("db");
    let mut prev = rows[index - 1].hash.clone();
    for r in rows.iter_mut().skip(index) {
        r.prev_hash = prev.clone();
        r.hash = r.computed_hash(&prev).to_vec();
        prev = r.hash.clone();
        db.execute(
            "UPDATE audit_log SET actor = ?2, outcome = ?3, prev_hash = ?4, hash = ?5 WHERE seq = ?1",
            rusqlite::params![r.seq, r.event.actor, r.event.outcome, r.prev_hash, r.hash],
        )
        .expect("rewrite");
    }
    rows
}

#[test]
fn checkpoints_are_signed_in_the_root_token_and_the_chain_verifies() {
    let (ws, _hsm, _serial) = audited_run(20);
    let store = ws.open_store();
    let (rows, checkpoints) = (store.audit_rows().expect("rows"), store.checkpoints().expect("checkpoints"));
    assert!(checkpoints.len() >= 4, "a checkpoint every 10 of {} entries, plus one at finalize", rows.len());
    assert_eq!(checkpoints.last().expect("last").entry_seq, rows.last().expect("rows").seq, "finalize covers the tail");
    let v = verdict(&ws);
    assert!(
        matches!(v, Verdict::Intact { .. }),
        "{v:?}\n{}",
        ws.log().lines().filter(|l| l.contains("checkpoint") || l.contains("ERROR")).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn a_chain_rewritten_whole_fails_its_signed_checkpoints() {
    let (ws, _hsm, _serial) = audited_run(20);
    // Change entry 5 and recompute every later hash: the chain alone would not notice.
    let rows = rewrite_whole(&ws, 4, |e| e.outcome = "CKR_OK (edited)".into());
    assert!(
        matches!(collabvault_pkcs11::audit::verify(&rows, None), Verdict::Intact { .. }),
        "the chain is self-consistent"
    );
    assert!(matches!(verdict(&ws), Verdict::Broken { defect: Defect::Changed, .. }));
}

#[test]
fn a_dropped_tail_is_caught_by_the_head_in_the_root_token() {
    let (ws, _hsm, _serial) = audited_run(20);
    let db = rusqlite::Connection::open(ws.store_file()).expect("db");
    let last: i64 = db.query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0)).expect("max");
    db.execute("DELETE FROM audit_log WHERE seq > ?1", [last - 7]).expect("drop tail");
    db.execute("DELETE FROM audit_checkpoints WHERE entry_seq > ?1", [last - 7]).expect("drop its checkpoints");
    assert!(matches!(verdict(&ws), Verdict::Broken { defect: Defect::Truncated, .. }));
}

/// `cvault audit ARGS` over the workspace's config: (exit code, stdout, stderr).
fn cvault(ws: &common::Workspace, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cvault"))
        .arg("audit")
        .args(args)
        .env("COLLABVAULT_CONF", &ws.conf)
        .output()
        .expect("run cvault");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_string();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn cvault_verify_checks_the_checkpoints_against_the_root_token() {
    let (ws, _hsm, _serial) = audited_run(20);
    let (code, line, err) = cvault(&ws, &["verify"]);
    assert_eq!(code, Some(0), "{line}\n{err}");
    let store = ws.open_store();
    let (rows, checkpoints) = (store.audit_rows().expect("rows"), store.checkpoints().expect("checkpoints"));
    let head = checkpoints.last().expect("a checkpoint");
    let want = format!(
        "{} signed checkpoint(s) verified with the root token's audit key, whose head is at entry {}",
        checkpoints.len(),
        head.entry_seq
    );
    assert!(line.starts_with(&format!("intact: {} entries, head ", rows.len())) && line.ends_with(&want), "{line}");
}

#[test]
fn cvault_verify_names_a_dropped_tail_as_truncation() {
    let (ws, _hsm, _serial) = audited_run(20);
    let db = rusqlite::Connection::open(ws.store_file()).expect("db");
    let last: i64 = db.query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0)).expect("max");
    db.execute("DELETE FROM audit_log WHERE seq > ?1", [last - 7]).expect("drop tail");
    db.execute("DELETE FROM audit_checkpoints WHERE entry_seq > ?1", [last - 7]).expect("drop its checkpoints");
    let (code, line, _) = cvault(&ws, &["verify"]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains(": truncated: "), "{line}");
}

#[test]
fn cvault_verify_names_a_chain_rewritten_whole() {
    let (ws, _hsm, _serial) = audited_run(20);
    rewrite_whole(&ws, 2, |e| e.actor = "mallory".into());
    let (code, line, _) = cvault(&ws, &["verify"]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains(": changed: "), "{line}");
}

#[test]
fn cvault_audit_key_exports_the_key_that_verifies_the_checkpoints() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePublicKey;
    use sha2::Digest;

    let (ws, _hsm, _serial) = audited_run(5);
    let (code, pem, err) = cvault(&ws, &["key"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).expect("a P-256 public key");
    let store = ws.open_store();
    let checkpoints = store.checkpoints().expect("checkpoints");
    assert!(!checkpoints.is_empty());
    for c in &checkpoints {
        let message = collabvault_pkcs11::store::audit::Checkpoint::message(c.number, c.entry_seq, &c.entry_hash);
        let signature = p256::ecdsa::Signature::from_slice(&c.signature).expect("r||s");
        key.verify_prehash(&sha2::Sha256::digest(&message), &signature).expect("the exported key verifies it");
    }
}
