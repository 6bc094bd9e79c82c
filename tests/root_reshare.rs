//! `cvault root reshare` (doc/root.md, "Replacing a lost HSM") over three SoftHSM2
//! tokens splitting the root 2-of-3: a lost token's place given to a fresh one, the
//! reshare deals every secret again over all three, and then, with a *different* token
//! deleted, the replacement and the third open every master key version and every wrap
//! record (the replacement's shares are good). A reshare cut short at its writes (the
//! failing shim, `tests/shim/failing_pkcs11.c`, answering `CKR_DEVICE_ERROR`, or the
//! process SIGKILLed while the shim holds a call) leaves a root that opens, with no
//! share that mismatches, and the rerun completes. Without every slot, or with fewer
//! than m, it refuses and changes nothing; with a quorum it needs an approved
//! `reshare-root` request.

#![allow(missing_docs)]

mod common;

use common::vendor;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cvault::Cvault;
use common::hsm::{failing_shim, softhsm_module};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::CK_ULONG;

const SLOTS: [&str; 3] = ["cv-split-1", "cv-split-2", "cv-split-3"];
const REPLACEMENT: &str = "cv-split-2-new";
const BODY: &str = "[[workspace]]\nname = \"eng\"\n";
const CKM_CV_WRAP_RECORD: CK_ULONG = 0xC356_0001;
const CKM_CV_ROTATE_MASTER: CK_ULONG = 0xC356_0003;

fn current_master(s: &Session) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find")[0]
}

/// The module loaded in this process over the test's config, `f` in a user session,
/// then `C_Finalize` (so the next cvault process has the store and the tokens).
fn with_module<T>(f: impl FnOnce(&Session) -> T) -> T {
    let p = common::load();
    let slot = p.get_all_slots().expect("slots")[0];
    let s = common::user_session(&p, slot);
    let out = f(&s);
    drop(s);
    p.finalize().expect("C_Finalize");
    out
}

/// A wrap record of a fresh DEK under the current master key version, and the block
/// that DEK encrypts.
fn record(s: &Session) -> (Vec<u8>, Vec<u8>) {
    let dek = common::session_dek(s);
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(s), dek).expect("C_WrapKey");
    (record, s.encrypt(&Mechanism::AesEcb, dek, &[0u8; 16]).expect("C_Encrypt"))
}

/// Every record unwraps to its DEK, and a rotation seals a new version.
fn everything_opens(s: &Session, records: &[(Vec<u8>, Vec<u8>)]) {
    for (i, (rec, block)) in records.iter().enumerate() {
        let dek = s
            .unwrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(s), rec, &[Attribute::Token(false)])
            .unwrap_or_else(|e| panic!("record {i} unwraps: {e}"));
        assert_eq!(&s.encrypt(&Mechanism::AesEcb, dek, &[0u8; 16]).expect("C_Encrypt"), block, "record {i}");
    }
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("a rotation under the root");
}

/// The lost token `old` deleted and its place in the config given to a fresh token `new`.
fn replace(cv: &Cvault, old: &str, new: &str) {
    cv.hsm.delete_token(old);
    swap_in(cv, old, new);
}

/// A fresh token `new` in the config where `old` (deleted) was.
fn swap_in(cv: &Cvault, old: &str, new: &str) {
    cv.hsm.add_token(new);
    let text = std::fs::read_to_string(&cv.ws.conf).expect("config");
    let from = format!("token_label = {old:?}");
    assert!(text.contains(&from), "{text}");
    std::fs::write(&cv.ws.conf, text.replace(&from, &format!("token_label = {new:?}"))).expect("config");
}

/// The text of every `root-reshare` audit entry, in order.
fn reshare_entries(cv: &Cvault) -> Vec<String> {
    let rows = cv.ws.open_store().audit_rows().expect("audit");
    rows.into_iter().filter(|r| r.event.action == "root-reshare").map(|r| r.event.object.unwrap_or_default()).collect()
}

fn audit_len(cv: &Cvault) -> usize {
    cv.ws.open_store().audit_rows().expect("audit").len()
}

/// `cvault audit verify` says intact.
fn audit_intact(cv: &Cvault) {
    let out = cv.ok(&["audit", "verify"]);
    assert!(out.starts_with("intact"), "{out}");
}

#[test]
fn a_replacement_token_gets_good_shares_so_the_other_two_open_everything_afterwards() {
    let cv = Cvault::split(&softhsm_module(), &SLOTS, 2, BODY);
    cv.init();
    let mut records = vec![with_module(record)];
    cv.ok(&["master", "rotate"]);
    records.push(with_module(record));
    // Slot 2 lost for good: v3 is made while it is away, with shares on slots 1 and 3.
    cv.hsm.delete_token(SLOTS[1]);
    cv.ok(&["master", "rotate"]);
    records.push(with_module(record));
    swap_in(&cv, SLOTS[1], REPLACEMENT);
    assert!(!cv.hsm.data_labels(REPLACEMENT).contains("collabvault-split"), "a fresh token holds nothing");

    let out = cv.ok(&["root", "reshare"]);
    assert!(
        out.contains("root reshared 2-of-3: 4 secret(s) dealt again over slots cv-split-1, cv-split-2-new, cv-split-3"),
        "{out}"
    );
    let held = cv.hsm.data_labels(REPLACEMENT);
    for name in ["root", "wmk/eng/v1", "wmk/eng/v2", "wmk/eng/v3"] {
        assert!(held.contains(&format!("'collabvault-split/{name}'")), "{name} on the replacement: {held}");
    }
    assert!(!held.contains("collabvault-split-next"), "nothing staged is left: {held}");
    assert!(held.contains("collabvault-audit-head"), "the audit head is copied: {held}");
    let log = cv.ws.log();
    assert!(log.contains("4 share(s) staged on slot 2 (\"cv-split-2-new\")"), "{log}");
    assert!(log.contains("split root reshare: committed (a marker on every slot)"), "{log}");
    let entries = reshare_entries(&cv);
    assert_eq!(entries.len(), 6, "start, three slots, the commit, done: {entries:?}");
    assert!(entries[0].starts_with("start: 4 secret(s) (root, wmk/eng/v1, wmk/eng/v2, wmk/eng/v3)"), "{entries:?}");
    assert_eq!(entries[2], "slot 2 (cv-split-2-new): 4 new share(s) staged");
    assert!(entries[5].starts_with("done: 4 secret(s)"), "{entries:?}");
    audit_intact(&cv);

    // A *different* token lost: the replacement and slot 3 open every version and record.
    cv.hsm.delete_token(SLOTS[0]);
    with_module(|s| everything_opens(s, &records));
    let log = cv.ws.log();
    assert!(log.contains("recombined 2-of-3 from slots \"cv-split-2-new\", \"cv-split-3\""), "{log}");
    assert!(!log.contains("does not match the others"), "{log}");
    audit_intact(&cv);
}

#[test]
fn a_reshare_without_every_slot_or_with_fewer_than_m_refuses_and_changes_nothing() {
    let cv = Cvault::split(&softhsm_module(), &SLOTS, 2, BODY);
    cv.init();
    cv.hsm.delete_token(SLOTS[2]);
    let before: Vec<String> = SLOTS[..2].iter().map(|l| cv.hsm.data_labels(l)).collect();
    let entries = audit_len(&cv);
    let err = cv.refused(&["root", "reshare"]);
    assert!(err.contains("a reshare deals to every slot") && err.contains("missing slots: cv-split-3"), "{err}");
    assert!(err.contains("nothing changed"), "{err}");
    let after: Vec<String> = SLOTS[..2].iter().map(|l| cv.hsm.data_labels(l)).collect();
    assert_eq!(before, after, "no slot changed");
    assert_eq!(audit_len(&cv), entries, "nothing audited: no PIN was even checked");

    cv.hsm.delete_token(SLOTS[1]);
    let err = cv.refused(&["root", "reshare"]);
    assert!(err.contains("only 1 slot(s) answer; missing slots: cv-split-2, cv-split-3"), "{err}");
    assert_eq!(cv.hsm.data_labels(SLOTS[0]), before[0], "the last slot did not change");
    assert_eq!(audit_len(&cv), entries);

    // A single root token has no shares to deal (the fixture's lock is taken again).
    drop(cv);
    let single = Cvault::new(BODY);
    single.init();
    let err = single.refused(&["root", "reshare"]);
    assert!(err.contains("no split root in the config"), "{err}");
}

#[test]
fn with_a_quorum_a_reshare_needs_an_approved_reshare_root_request_used_once() {
    let body = format!("[quorum]\nunlock_hours = 1\napproval_hours = 6\n{BODY}");
    let cv = Cvault::split(&softhsm_module(), &SLOTS, 2, &body)
        .env("CV_CUSTODIAN_ALICE", "alice passphrase 1")
        .env("CV_CUSTODIAN_BOB", "bob passphrase 22")
        .env("CV_CUSTODIAN_CAROL", "carol passphrase 333");
    cv.init();
    let three = ["--custodian", "alice", "--custodian", "bob", "--custodian", "carol"];
    cv.ok(&[&["custodians", "init", "--threshold", "2"][..], &three].concat());
    replace(&cv, SLOTS[1], REPLACEMENT);

    let err = cv.refused(&["root", "reshare"]);
    assert!(err.contains("(reshare-root) has 0 of 2 approvals"), "{err}");
    assert!(!cv.hsm.data_labels(REPLACEMENT).contains("collabvault-split/"), "refused before any share moved");
    let out: serde_json::Value =
        serde_json::from_str(&cv.ok(&["quorum", "request", "--action", "reshare-root", "--json"])).expect("json");
    let id = out["request"].as_u64().expect("the open request's number").to_string();
    for name in ["alice", "bob"] {
        cv.ok(&["quorum", "approve", "--request", &id, "--custodian", name]);
    }
    cv.ok(&["root", "reshare"]);
    assert!(cv.hsm.data_labels(REPLACEMENT).contains("'collabvault-split/root'"));
    let rows = cv.ws.open_store().audit_rows().expect("audit");
    assert!(
        rows.iter().any(|r| r.event.action == "quorum-used"
            && r.event.object.as_deref().is_some_and(|o| o.contains("(reshare-root): quorum of 2 used"))),
        "the approval is used and audited"
    );
    // Used once: the next reshare needs a new approval.
    let err = cv.refused(&["root", "reshare"]);
    assert!(err.contains("(reshare-root) has 0 of 2 approvals"), "{err}");
    audit_intact(&cv);
}

/// The calls a traced run made: (call number, function), armed calls only.
fn traced(trace: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(n, f)| n.parse::<usize>().ok().filter(|n| *n > 0).map(|n| (n, f.to_string())))
        .collect()
}

/// The rerun with no fault completes; its connect found no share that mismatches, and
/// no staged share or marker is left on any slot. Returns the rerun's log lines.
fn rerun_completes(cv: &Cvault, slots: &[&str], what: &str) -> String {
    let from = cv.ws.log().len();
    let out = cv.run(&["root", "reshare"]);
    let log = cv.ws.log()[from..].to_string();
    assert!(out.status.success(), "{what}: the rerun: {}\n{log}", String::from_utf8_lossy(&out.stderr));
    assert!(!log.contains("does not match the others"), "{what}: a share mismatched: {log}");
    assert!(!log.contains("do not recombine"), "{what}: {log}");
    for label in slots {
        let held = cv.hsm.data_labels(label);
        assert!(!held.contains("collabvault-split-next"), "{what}: {label} keeps a staged share or marker: {held}");
    }
    log
}

#[test]
fn a_reshare_cut_short_at_its_writes_leaves_a_root_that_opens_and_the_rerun_completes() {
    let cv = Cvault::split(failing_shim(), &SLOTS, 2, BODY).env("CV_SHIM_MODULE", softhsm_module());
    std::env::set_var("CV_SHIM_MODULE", softhsm_module());
    std::env::remove_var("CV_SHIM_FAULT");
    cv.init();
    cv.ok(&["master", "rotate"]);
    let records = vec![with_module(record)];
    replace(&cv, SLOTS[1], REPLACEMENT);
    let slots = [SLOTS[0], REPLACEMENT, SLOTS[2]];
    let trace = cv.ws.dir.path().join("shim.trace");
    // The first reshare gives the replacement its seal key and shares; every later one
    // (each rerun below too) starts from the same state, so makes the same calls.
    cv.ok(&["root", "reshare"]);

    // A whole reshare, traced: where its writes are.
    let out = cv
        .command(&["root", "reshare"])
        .env("CV_SHIM_FAULT", "probe 999999999 device-error")
        .env("CV_SHIM_TRACE", &trace)
        .output()
        .expect("cvault");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let calls = traced(&trace);
    let writes: Vec<(usize, String)> = calls
        .into_iter()
        .filter(|(_, f)| ["C_CreateObject", "C_DestroyObject", "C_GenerateKey"].contains(&f.as_str()))
        .collect();
    eprintln!("a reshare of 3 secrets over 3 slots makes {} writes", writes.len());
    assert!(writes.len() >= 3 * 3 * 3, "staged, copied and deleted on every slot: {writes:?}");

    // Each write failing in turn (every third, for time).
    let (mut refused, mut tried) = (0, 0);
    for (i, (n, f)) in writes.iter().enumerate().step_by(3) {
        let what = format!("CKR_DEVICE_ERROR at call {n} ({f})");
        let out = cv
            .command(&["root", "reshare"])
            .env("CV_SHIM_FAULT", format!("fail{i} {n} device-error"))
            .env("CV_SHIM_TRACE", &trace)
            .output()
            .expect("cvault");
        assert!(out.status.code().is_some_and(|c| c <= 1), "{what}: {out:?}");
        tried += 1;
        refused += usize::from(out.status.code() == Some(1));
        rerun_completes(&cv, &slots, &what);
    }
    // A write a reshare cannot do without fails it (one in the tombstone sweep or the
    // checkpoint after the commit may be retried by a fresh session).
    assert!(refused * 4 >= tried * 3, "{refused} of {tried} faulted reshares failed");

    // The process killed while one write is held. The writes are: 9 staged shares (three
    // secrets on three slots), 3 markers, the roll-forward, 3 markers deleted, and the
    // audit heads (two rounds of a create and a delete per slot).
    let staged = 3 * 3;
    let unmark = writes.len() - 12 - 3;
    assert_eq!(writes[unmark].1, "C_DestroyObject", "{writes:?}");
    let kills = [
        (staged / 2, "rolling it back"),        // mid-staging
        (staged, "rolling it back"),            // staged in full, no marker yet
        (staged + 1, "rolled forward"),         // one marker: committed
        (staged + 3 + 13, "rolled forward"),    // mid roll-forward
        (unmark + 1, "complete on every slot"), // one marker deleted, two left
    ];
    for (at, settled) in kills {
        let (n, f) = &writes[at];
        let what = format!("SIGKILL at call {n} ({f})");
        std::fs::write(&trace, "").expect("trace");
        let mut child = cv
            .command(&["root", "reshare"])
            .env("CV_SHIM_FAULT", format!("kill{at} {n} slow 60000"))
            .env("CV_SHIM_TRACE", &trace)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cvault");
        let start = Instant::now();
        while !traced(&trace).iter().any(|(m, _)| m == n) {
            assert!(start.elapsed() < Duration::from_secs(60), "{what}: the call was never reached");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let log = rerun_completes(&cv, &slots, &what);
        assert!(log.contains(settled), "{what}: the rerun's connect should say {settled:?}: {log}");
    }

    // The replacement's shares are good: the first slot lost, the other two open it all.
    cv.hsm.delete_token(SLOTS[0]);
    with_module(|s| everything_opens(s, &records));
    audit_intact(&cv);
}
