//! Custodians whose secret is on their own PKCS#11 token (doc/quorum.md, "Custodians with
//! a token"), through `cvault` and the module's C ABI: a SoftHSM2 token per custodian
//! beside the SoftHSM2 root. The custodian's HMAC key is made on their token at
//! enrolment, never leaves it, and only that token (with its PIN) approves for them.

#![allow(missing_docs)]

mod common;

use std::process::{Command, Output};

use common::hsm::{Hsm, ROOT_LABEL, ROOT_PIN, ROOT_PIN_ENV};

const ALICE_TOKEN: &str = "alice-token";
const MALLORY_TOKEN: &str = "mallory-token";

/// A SoftHSM2 root and two custodian tokens in one SoftHSM2 config, a workspace over the
/// root, and the test binary's lock.
struct Cli {
    ws: common::Workspace,
    hsm: Hsm,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Cli {
    fn new() -> Cli {
        let serial = common::lock();
        let hsm = Hsm::with_tokens(&[ROOT_LABEL, ALICE_TOKEN, MALLORY_TOKEN]);
        let body =
            format!("{}[quorum]\nunlock_hours = 1\n[[workspace]]\nname = \"eng\"\n", hsm.root_section(ROOT_LABEL));
        Cli { ws: common::Workspace::with_config_body(&body), hsm, _serial: serial }
    }

    /// cvault with the fixture's environment: config, module, SoftHSM2, PINs, Bob's
    /// passphrase and Alice's token PIN.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cvault"))
            .args(args)
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .env("COLLABVAULT_MODULE", common::module_path())
            .env("SOFTHSM2_CONF", self.hsm.conf().join("softhsm2.conf"))
            .env(ROOT_PIN_ENV, ROOT_PIN)
            .env("CV_SO_PIN", common::SO_PIN)
            .env("CV_USER_PIN", common::USER_PIN)
            .env("CV_CUSTODIAN_BOB", "bob passphrase 22")
            .env("CV_CUSTODIAN_TOKEN_PIN_ALICE", ROOT_PIN)
            .env_remove("CV_CUSTODIAN_ALICE")
            .output()
            .expect("run cvault")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "cvault {args:?} failed: {stderr}\n{stdout}");
        stdout.into_owned()
    }

    #[track_caller]
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "cvault {args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
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
    let cli = Cli::new();
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
