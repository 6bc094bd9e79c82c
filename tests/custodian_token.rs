//! Custodians whose secret is on their own PKCS#11 token (doc/quorum.md, "Custodians with
//! a token"), through `cvault` and the module's C ABI: a SoftHSM2 token per custodian
//! beside the SoftHSM2 root. The custodian's HMAC key is made on their token at
//! enrolment, never leaves it, and only that token (with its PIN) approves for them.

#![allow(missing_docs)]

mod common;

use std::process::Command;

use common::cvault::Cvault;
use common::hsm::{ROOT_LABEL, ROOT_PIN};

const ALICE_TOKEN: &str = "alice-token";
const MALLORY_TOKEN: &str = "mallory-token";

/// A SoftHSM2 root and two custodian tokens in one SoftHSM2 config, a workspace over the
/// root; cvault gets Bob's passphrase and Alice's token PIN.
fn cli() -> Cvault {
    let body = "[quorum]\nunlock_hours = 1\n[[workspace]]\nname = \"eng\"\n";
    Cvault::with_tokens(&[ROOT_LABEL, ALICE_TOKEN, MALLORY_TOKEN], body)
        .env("CV_CUSTODIAN_BOB", "bob passphrase 22")
        .env("CV_CUSTODIAN_TOKEN_PIN_ALICE", ROOT_PIN)
}

fn token_args(label: &str) -> Vec<String> {
    vec![
        "--custodian-token".into(),
        format!("alice={label}"),
        "--custodian-module".into(),
        common::hsm::softhsm_module().display().to_string(),
    ]
}

fn with(base: &[&str], extra: &[String]) -> Vec<String> {
    base.iter().map(|s| s.to_string()).chain(extra.iter().cloned()).collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_custodian_on_a_token_approves_only_with_that_token() {
    let cli = cli();
    cli.ok(&["token", "init", "--workspace", "eng", "--label", "Engineering"]);
    let init = with(
        &["custodians", "init", "--threshold", "2", "--custodian", "alice", "--custodian", "bob"],
        &token_args(ALICE_TOKEN),
    );
    cli.ok(&args(&init));
    assert!(cli.ok(&["quorum", "status"]).contains("locked"));

    // Alice's key is on her token, sensitive and not extractable.
    let listed = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(common::hsm::softhsm_module())
        .args(["--token-label", ALICE_TOKEN, "--login", "--pin", ROOT_PIN, "--list-objects"])
        .env("SOFTHSM2_CONF", cli.hsm.conf().join("softhsm2.conf"))
        .output()
        .expect("pkcs11-tool");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("collabvault-custodian/alice"), "{listed}");
    assert!(listed.contains("sensitive") && listed.contains("never extractable"), "{listed}");

    // Another token (with the same PIN, a key of the same name made for the occasion)
    // does not approve for her.
    let wrong = with(&["quorum", "approve", "--custodian", "alice"], &token_args(MALLORY_TOKEN));
    assert!(cli.refused(&args(&wrong)).contains("holds no key"), "approval never makes a key");
    let enrol_mallory = with(
        &["custodians", "init", "--threshold", "2", "--custodian", "alice", "--custodian", "bob"],
        &token_args(MALLORY_TOKEN),
    );
    let err = cli.refused(&args(&enrol_mallory));
    assert!(err.contains("CKR_"), "re-enrolling needs the quorum: {err}");
    // That attempt made a key of her name on the other token: it still does not approve.
    let err = cli.refused(&args(&wrong));
    assert!(err.contains("CKR_PIN_INCORRECT"), "{err}");
    // Without the token there is nothing to type: no passphrase was ever set.
    let err = cli.refused(&["quorum", "approve", "--custodian", "alice"]);
    assert!(err.contains("CV_CUSTODIAN_ALICE"), "{err}");

    // Her token and Bob's passphrase unlock.
    let right = with(&["quorum", "approve", "--custodian", "alice"], &token_args(ALICE_TOKEN));
    assert!(cli.ok(&args(&right)).contains("alice approved"));
    cli.ok(&["quorum", "approve", "--custodian", "bob"]);
    assert!(cli.ok(&["quorum", "status"]).contains("unlocked until"));

    // The token's PIN from a file, and a wrong one refused by the token.
    cli.ok(&["lock"]);
    let pin_file = cli.ws.dir.path().join("alice.pin");
    std::fs::write(&pin_file, "not the pin\n").expect("pin file");
    let mut bad = right.clone();
    bad.extend(["--custodian-pin-file".to_string(), format!("alice={}", pin_file.display())]);
    assert!(cli.refused(&args(&bad)).contains("refused the PIN"));
    std::fs::write(&pin_file, format!("{ROOT_PIN}\n")).expect("pin file");
    let unlock = with(&["unlock", "--custodian", "alice", "--custodian", "bob"], &bad[4..]);
    cli.ok(&args(&unlock));
    assert!(cli.ok(&["quorum", "status"]).contains("unlocked until"));
}
