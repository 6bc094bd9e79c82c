//! `cvault custodians add|remove` against a workspace whose root is a real SoftHSM2
//! token: changing who holds shares is itself quorum-guarded (a `change-quorum` request
//! the current custodians approve), the KEK is split anew among the custodians who stay
//! and the new ones (the others' passphrases are not asked again), and afterwards a
//! removed custodian approves nothing while the new ones count.

#![allow(missing_docs)]

mod common;

use common::cvault::Cvault;
use serde_json::Value;

fn cli() -> Cvault {
    let cli = Cvault::new("[quorum]\nunlock_hours = 1\n[[workspace]]\nname = \"eng\"\n")
        .env("CV_CUSTODIAN_ALICE", "alice passphrase 1")
        .env("CV_CUSTODIAN_BOB", "bob passphrase 22")
        .env("CV_CUSTODIAN_CAROL", "carol passphrase 333")
        .env("CV_CUSTODIAN_DAVE", "dave passphrase 4444");
    cli.init();
    cli.ok(&[
        "custodians",
        "init",
        "--threshold",
        "2",
        "--custodian",
        "alice",
        "--custodian",
        "bob",
        "--custodian",
        "carol",
    ]);
    cli
}

fn status(cli: &Cvault) -> Value {
    let out = cli.ok(&["quorum", "status", "--json"]);
    serde_json::from_str::<Value>(&out).expect("json")[0].clone()
}

fn custodians(cli: &Cvault) -> Vec<String> {
    let s = status(cli);
    s["custodians"].as_array().expect("custodians").iter().map(|c| c["name"].as_str().expect("name").into()).collect()
}

/// The open change-quorum request's number.
fn change_request(cli: &Cvault) -> String {
    let s = status(cli);
    let open = s["open_requests"].as_array().expect("requests");
    let r = open.iter().find(|r| r["action"] == "change-quorum").expect("a change-quorum request is open");
    r["id"].to_string()
}

#[test]
fn adding_and_removing_custodians_needs_the_quorum_and_re_splits_the_key() {
    let cli = cli();
    // A re-split re-seals the master keys under the new KEK: they must be unlocked.
    let err = cli.refused(&["custodians", "add", "--custodian", "dave"]);
    assert!(err.contains("CKR_CV_LOCKED"), "{err}");
    cli.ok(&["unlock", "--custodian", "alice", "--custodian", "bob"]);
    let err = cli.refused(&["custodians", "add", "--custodian", "dave", "--threshold", "3"]);
    assert!(err.contains("CKR_CV_QUORUM_REQUIRED"), "{err}");
    let n = change_request(&cli);
    cli.ok(&["quorum", "approve", "--request", &n, "--custodian", "alice", "--custodian", "bob"]);
    cli.ok(&["custodians", "add", "--custodian", "dave", "--threshold", "3"]);
    assert_eq!(custodians(&cli), ["alice", "bob", "carol", "dave"]);
    assert_eq!(status(&cli)["threshold"], 3);
    assert_eq!(status(&cli)["locked"], true, "a new split locks until the new quorum approves");

    // Three of the four unlock, dave among them.
    cli.ok(&["unlock", "--custodian", "alice", "--custodian", "carol", "--custodian", "dave"]);
    assert_eq!(status(&cli)["locked"], false);

    let err = cli.refused(&["custodians", "remove", "--custodian", "carol"]);
    assert!(err.contains("CKR_CV_QUORUM_REQUIRED"), "approved once, used once: {err}");
    let n = change_request(&cli);
    cli.ok(&[
        "quorum",
        "approve",
        "--request",
        &n,
        "--custodian",
        "bob",
        "--custodian",
        "carol",
        "--custodian",
        "dave",
    ]);
    cli.ok(&["custodians", "remove", "--custodian", "carol", "--threshold", "2"]);
    assert_eq!(custodians(&cli), ["alice", "bob", "dave"]);
    assert_eq!(status(&cli)["threshold"], 2);
    assert_eq!(status(&cli)["locked"], true);

    // Carol's passphrase opens nothing now; bob and dave unlock.
    let err = cli.refused(&["unlock", "--custodian", "carol"]);
    assert!(err.contains("carol"), "{err}");
    cli.ok(&["unlock", "--custodian", "bob", "--custodian", "dave"]);
    assert_eq!(status(&cli)["locked"], false);
}

#[test]
fn changes_that_make_no_sense_are_refused_before_anything_is_asked() {
    let cli = cli();
    let err = cli.refused(&["custodians", "remove", "--custodian", "mallory"]);
    assert!(err.contains("mallory is not a custodian"), "{err}");
    let err = cli.refused(&["custodians", "add", "--custodian", "bob"]);
    assert!(err.contains("bob is already a custodian"), "{err}");
    let err = cli.refused(&["custodians", "remove", "--custodian", "bob", "--custodian", "carol"]);
    assert!(err.contains("2-of-1 quorum is impossible"), "{err}");
    assert!(status(&cli)["open_requests"].as_array().expect("requests").is_empty(), "nothing reached the module");
}
