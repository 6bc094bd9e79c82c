//! Signed audit checkpoints with a SoftHSM2 root: every N entries the chain head is
//! signed (ECDSA P-256 inside the root token, ML-DSA-65 with a seed the root token seals,
//! or both, as `[audit] checkpoint_signature` says), and the root token keeps the newest
//! checkpoint, so a chain rewritten whole, a dropped tail and a tampered signature or
//! key are all caught.

#![allow(missing_docs)]

mod common;

use collabvault_pkcs11::audit::checkpoint::{verify_all, TrustedKeys};
use collabvault_pkcs11::audit::{Defect, Verdict};
use collabvault_pkcs11::root::slot::SlotRoot;
use collabvault_pkcs11::store::audit::{AuditEvent, AuditRow};
use common::hsm::Hsm;
use cryptoki::object::{Attribute, ObjectClass};

type Run = (common::Workspace, Hsm, std::sync::MutexGuard<'static, ()>);

/// Runs a workload through the module (default checkpoint signatures), finalizes it,
/// and returns the workspace and HSM.
fn audited_run(operations: usize) -> Run {
    audited_run_with(operations, "")
}

/// [`audited_run`] with more `[audit]` lines.
fn audited_run_with(operations: usize, audit: &str) -> Run {
    let serial = common::lock();
    let hsm = Hsm::new();
    let body = format!(
        "{}[audit]\ncheckpoint_every = 10\n{audit}[[workspace]]\nname = \"main\"\n",
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
    let ecdsa = root.audit_public_key().expect("audit key").expect("made by the first checkpoint");
    let mldsa = root.audit_mldsa_public_key().expect("ML-DSA audit key").expect("made by the first checkpoint");
    drop(root);
    verify_all(
        &store.audit_rows().expect("rows"),
        &store.checkpoints().expect("checkpoints"),
        head.as_ref(),
        &TrustedKeys { ecdsa: Some(&ecdsa), mldsa: Some(&mldsa) },
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
    assert!(checkpoints.iter().all(|c| c.ecdsa.is_some() && c.mldsa.is_some()), "both signatures by default");
    assert!(ws.log().contains("cannot make ML-DSA keys"), "the log says why the module made the ML-DSA key");
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
        "{n} signed checkpoint(s) ({n} ECDSA P-256, {n} ML-DSA-65) verified with the root token's audit keys, \
         whose head is at entry {}",
        head.entry_seq,
        n = checkpoints.len(),
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

/// The PEM blocks in `text`, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let end = "-----END PUBLIC KEY-----";
    text.split_inclusive(end).filter(|b| b.contains(end)).map(|b| b.trim().to_string()).collect()
}

#[test]
fn cvault_audit_key_exports_the_keys_that_verify_the_checkpoints() {
    use ml_dsa::signature::Verifier;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePublicKey;
    use sha2::Digest;

    let (ws, _hsm, _serial) = audited_run(5);
    let (code, out, err) = cvault(&ws, &["key"]);
    assert_eq!(code, Some(0), "{err}");
    let pems = pem_blocks(&out);
    assert_eq!(pems.len(), 2, "the ECDSA then the ML-DSA key: {out}");
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&pems[0]).expect("a P-256 public key");
    // Decoded by the ml-dsa crate itself: the SubjectPublicKeyInfo names id-ml-dsa-65.
    let pq = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::from_public_key_pem(&pems[1]).expect("an ML-DSA-65 key");
    let store = ws.open_store();
    let checkpoints = store.checkpoints().expect("checkpoints");
    assert!(!checkpoints.is_empty());
    for c in &checkpoints {
        let message = collabvault_pkcs11::store::audit::Checkpoint::message(c.number, c.entry_seq, &c.entry_hash);
        let ecdsa = c.ecdsa.as_ref().expect("ECDSA");
        let signature = p256::ecdsa::Signature::from_slice(&ecdsa.signature).expect("r||s");
        key.verify_prehash(&sha2::Sha256::digest(&message), &signature).expect("the exported key verifies it");
        let mldsa = c.mldsa.as_ref().expect("ML-DSA");
        let signature = ml_dsa::Signature::<ml_dsa::MlDsa65>::try_from(mldsa.signature.as_slice()).expect("sig");
        pq.verify(&message, &signature).expect("the exported ML-DSA key verifies it (pure, empty context)");
    }
    let (code, json, err) = cvault(&ws, &["key", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["ecdsa_p256"].as_str().map(str::trim), Some(pems[0].as_str()));
    assert_eq!(json["ml_dsa_65"].as_str().map(str::trim), Some(pems[1].as_str()));
}

#[test]
fn each_checkpoint_signature_setting_is_honoured() {
    for (setting, ecdsa, mldsa) in [("ecdsa-p256", true, false), ("ml-dsa-65", false, true), ("both", true, true)] {
        let (ws, _hsm, _serial) = audited_run_with(12, &format!("checkpoint_signature = {setting:?}\n"));
        let checkpoints = ws.open_store().checkpoints().expect("checkpoints");
        assert!(!checkpoints.is_empty(), "{setting}");
        for c in &checkpoints {
            assert_eq!((c.ecdsa.is_some(), c.mldsa.is_some()), (ecdsa, mldsa), "{setting}: checkpoint {}", c.number);
        }
        // Only the configured keys are made in the root token.
        let root = SlotRoot::connect(ws.config().root.as_ref().expect("root")).expect("root token");
        assert_eq!(root.audit_public_key().expect("read").is_some(), ecdsa, "{setting}");
        assert_eq!(root.audit_mldsa_public_key().expect("read").is_some(), mldsa, "{setting}");
        drop(root);
        let (code, line, err) = cvault(&ws, &["verify"]);
        assert_eq!(code, Some(0), "{setting}: {line}\n{err}");
        let (code, out, err) = cvault(&ws, &["key"]);
        assert_eq!((code, pem_blocks(&out).len()), (Some(0), usize::from(ecdsa) + usize::from(mldsa)), "{err}");
    }
}

#[test]
fn an_unknown_checkpoint_signature_is_refused() {
    let serial = common::lock();
    let hsm = Hsm::new();
    let body = format!(
        "{}[audit]\ncheckpoint_signature = \"rsa\"\n[[workspace]]\nname = \"main\"\n",
        hsm.root_section(common::hsm::ROOT_LABEL)
    );
    let ws = common::Workspace::with_config_body(&body);
    let (code, _, err) = cvault(&ws, &["verify"]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("unknown variant `rsa`") && err.contains("`ml-dsa-65`"), "{err}");
    drop(serial);
}

/// Runs `sql` on the finalized store.
fn edit_store(ws: &common::Workspace, sql: &str, value: &[u8]) {
    let db = rusqlite::Connection::open(ws.store_file()).expect("db");
    db.execute(sql, [value]).expect("edit");
}

#[test]
fn a_tampered_ml_dsa_signature_is_named_by_verify() {
    let (ws, _hsm, _serial) = audited_run(20);
    let c = ws.open_store().checkpoints().expect("checkpoints").remove(1);
    let mut signature = c.mldsa.expect("ML-DSA").signature;
    signature[7] ^= 1;
    edit_store(
        &ws,
        &format!("UPDATE audit_checkpoints SET mldsa_signature = ?1 WHERE number = {}", c.number),
        &signature,
    );
    let want = Defect::Signature { checkpoint: c.number, algorithm: "ML-DSA-65" };
    assert_eq!(verdict(&ws), Verdict::Broken { seq: c.entry_seq, defect: want });
    let (code, line, _) = cvault(&ws, &["verify"]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains(&format!("checkpoint {}: its ML-DSA-65 signature does not verify", c.number)), "{line}");
}

#[test]
fn a_tampered_or_replaced_ml_dsa_public_key_is_caught() {
    let (ws, _hsm, _serial) = audited_run(20);
    let c = ws.open_store().checkpoints().expect("checkpoints").remove(0);
    let original = c.mldsa.clone().expect("ML-DSA");
    let set = |key: &[u8], signature: &[u8]| {
        edit_store(
            &ws,
            &format!("UPDATE audit_checkpoints SET mldsa_public_key = ?1 WHERE number = {}", c.number),
            key,
        );
        let sql = format!("UPDATE audit_checkpoints SET mldsa_signature = ?1 WHERE number = {}", c.number);
        edit_store(&ws, &sql, signature);
    };
    let broken = || {
        let (code, line, _) = cvault(&ws, &["verify"]);
        assert_eq!(code, Some(1), "{line}");
        assert!(line.contains(&format!("checkpoint {}: its ML-DSA-65 signature", c.number)), "{line}");
    };
    // One byte of the key changed.
    let mut flipped = original.public_key.clone();
    flipped[3] ^= 1;
    set(&flipped, &original.signature);
    broken();
    // Another key, with a valid signature of the same checkpoint by it: a forgery only
    // the root token's key exposes.
    use ml_dsa::signature::{Keypair, SignatureEncoding, Signer};
    let other = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&[5u8; 32].into());
    let message = collabvault_pkcs11::store::audit::Checkpoint::message(c.number, c.entry_seq, &c.entry_hash);
    let forged: ml_dsa::Signature<ml_dsa::MlDsa65> = other.sign(&message);
    set(&other.verifying_key().encode(), &forged.to_bytes());
    broken();
    set(&original.public_key, &original.signature);
    assert!(matches!(verdict(&ws), Verdict::Intact { .. }), "restored");
}

#[test]
fn a_store_from_before_ml_dsa_checkpoints_still_verifies() {
    // Checkpoints made with ECDSA only, then the store put back to the schema before
    // ML-DSA (v9: NOT NULL signature columns, no master key origin): cvault migrates it
    // and it verifies.
    let (ws, _hsm, _serial) = audited_run_with(20, "checkpoint_signature = \"ecdsa-p256\"\n");
    let db = rusqlite::Connection::open(ws.store_file()).expect("db");
    db.execute_batch(
        "CREATE TABLE old (number INTEGER PRIMARY KEY, entry_seq INTEGER NOT NULL, entry_hash BLOB NOT NULL,
                           signature BLOB NOT NULL, public_key BLOB NOT NULL);
         INSERT INTO old SELECT number, entry_seq, entry_hash, signature, public_key FROM audit_checkpoints;
         DROP TABLE audit_checkpoints;
         ALTER TABLE old RENAME TO audit_checkpoints;
         ALTER TABLE master_keys DROP COLUMN origin;
         DROP TABLE recovery_kit_acks;
         DROP TABLE recovery_kits;
         UPDATE meta SET value = '9' WHERE key = 'schema_version';",
    )
    .expect("back to v9");
    drop(db);
    let (code, line, err) = cvault(&ws, &["verify"]);
    assert_eq!(code, Some(0), "{line}\n{err}");
    assert!(line.contains(" ECDSA P-256, 0 ML-DSA-65) verified"), "{line}");
    let checkpoints = ws.open_store().checkpoints().expect("migrated");
    assert!(!checkpoints.is_empty() && checkpoints.iter().all(|c| c.ecdsa.is_some() && c.mldsa.is_none()));
}
