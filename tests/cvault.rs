//! The `cvault` admin tool, run as a process against a workspace whose root of trust is a
//! real SoftHSM2 token: `token init|status`, `master list|rotate|rewrap|retire|destroy`,
//! the module's refusals surfacing as exit code 1 with one line on stderr, and the command
//! line itself (help, the moved flat commands, completions, man pages).

#![allow(missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use common::cvault::Cvault;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;

/// A SoftHSM2 root and a config naming it: workspace "eng" holds restricted data, which
/// rotates every 30 days.
fn cli() -> Cvault {
    Cvault::new("[rotation]\nrestricted = 30\n[[workspace]]\nname = \"eng\"\nclassification = \"restricted\"\n")
}

/// The version row of `list`/`status` output for `v<n>`, whitespace collapsed.
fn row(text: &str, n: u32) -> String {
    let prefix = format!("v{n} ");
    let line = text.lines().map(str::trim).find(|l| l.starts_with(&prefix)).unwrap_or_default();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A DEK wrapped under the current master key, made through the module in this process.
fn make_record(path: &Path) {
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    let s = pkcs11.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("login");
    let dek = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Token(false), Attribute::Extractable(true)],
        )
        .expect("DEK");
    let master = s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find")[0];
    let ty = MechanismType::new_vendor_defined(CKM_CV_WRAP_RECORD).expect("vendor");
    let mech = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None));
    std::fs::write(path, s.wrap_key(&mech, master, dek).expect("wrap")).expect("write record");
    drop(s);
    pkcs11.finalize().expect("C_Finalize");
}

fn record_version(path: &Path) -> u32 {
    let record = std::fs::read(path).expect("record");
    let ws_len = usize::from(record[6]);
    u32::from_be_bytes(record[7 + ws_len..11 + ws_len].try_into().expect("version"))
}

#[test]
fn init_then_status_shows_an_hsm_root_and_v1_active() {
    let cli = cli();
    let out = cli.init();
    assert!(out.contains("hsm root"), "{out}");
    let status = cli.ok(&["token", "status"]);
    assert!(status.contains("workspace eng") && status.contains("hsm root"), "{status}");
    let backend = if cfg!(feature = "aws-lc") { "aws-lc" } else { "rustcrypto" };
    assert!(status.contains(&format!("crypto backend {backend}")), "{status}");
    assert!(row(&status, 1).starts_with("v1 active"), "{status}");
    assert!(status.contains("1 version(s)") && status.contains("rotation not due"), "{status}");
    assert!(status.contains("rotation every 30 days"), "{status}");
}

#[test]
fn the_user_pin_can_come_from_a_pin_file() {
    let cli = cli();
    cli.init();
    let pins = cli.ws.dir.path().join("pins");
    std::fs::write(&pins, format!("CV_USER_PIN={}\n", common::USER_PIN)).expect("pin file");
    let out = cli
        .command(&["--pin-file", pins.to_str().expect("utf-8"), "master", "list"])
        .env_remove("CV_USER_PIN")
        .output();
    let out = out.expect("run cvault");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let no_pin = cli.command(&["master", "list"]).env_remove("CV_USER_PIN").output().expect("run cvault");
    assert_eq!(no_pin.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_pin.stderr).contains("no user PIN"));
}

#[test]
fn rotation_makes_v2_active_and_v1_decrypt_only_then_v1_retires_and_is_destroyed() {
    let cli = cli();
    cli.init();
    let not_due = cli.ok(&["master", "rotate", "--due"]);
    assert!(not_due.contains("nothing rotated"), "{not_due}");
    assert!(row(&cli.ok(&["master", "list"]), 2).is_empty(), "rotate --due rotated a fresh key");

    let rotated = cli.ok(&["master", "rotate"]);
    assert!(rotated.contains("v2 is now active"), "{rotated}");
    let list = cli.ok(&["master", "list"]);
    assert!(row(&list, 1).starts_with("v1 decrypt-only"), "{list}");
    assert!(row(&list, 2).starts_with("v2 active"), "{list}");
    // The last column counts the DEKs the module's store keeps under each version: none.
    assert!(list.contains("stored DEKs") && row(&list, 2).ends_with(" 0"), "{list}");

    assert!(cli.ok(&["master", "retire", "--version", "1"]).contains("v1 retired"));
    assert!(row(&cli.ok(&["master", "list"]), 1).starts_with("v1 retired"));
    assert!(cli.ok(&["master", "destroy", "--version", "1"]).contains("v1 destroyed"));
    let status = cli.ok(&["token", "status"]);
    assert!(row(&status, 1).starts_with("v1 destroyed"), "{status}");
    assert!(status.contains("2 version(s): 1 active, 0 decrypt-only, 0 retired, 1 destroyed"), "{status}");
}

#[test]
fn retiring_the_active_version_is_refused_with_exit_code_1() {
    let cli = cli();
    cli.init();
    let out = cli.run(&["master", "retire", "--version", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("CKR_ACTION_PROHIBITED"), "{stderr}");
    assert!(row(&cli.ok(&["master", "list"]), 1).starts_with("v1 active"), "the refusal changed nothing");
    let destroy = cli.run(&["master", "destroy", "--version", "1"]);
    assert_eq!(destroy.status.code(), Some(1), "destroy needs retire first");
    let missing = cli.run(&["master", "retire", "--version", "9"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no master key v9"));
}

#[test]
fn rewrap_moves_old_records_to_the_newest_version_and_skips_the_rest() {
    let cli = cli();
    cli.init();
    let dir = cli.ws.dir.path().join("records");
    std::fs::create_dir_all(&dir).expect("records dir");
    make_record(&dir.join("a.wrap"));
    make_record(&dir.join("b.wrap"));
    cli.ok(&["master", "rotate"]);
    make_record(&dir.join("c.wrap"));
    // A temp file left by an interrupted run is cleaned up, not taken for a record.
    std::fs::write(dir.join(".a.wrap.cvault-tmp"), b"half-written").expect("stale temp");
    let records = dir.to_str().expect("utf-8");
    let out = cli.ok(&["master", "rewrap", "--records", records]);
    assert!(out.contains("re-wrapped 2, already at v2: 1, total 3"), "{out}");
    for name in ["a.wrap", "b.wrap", "c.wrap"] {
        assert_eq!(record_version(&dir.join(name)), 2, "{name}");
    }
    assert!(!dir.join(".a.wrap.cvault-tmp").exists());
    let again = cli.ok(&["master", "rewrap", "--records", records]);
    assert!(again.contains("re-wrapped 0, already at v2: 3"), "{again}");
    // Every record is at v2, so v1 may go.
    cli.ok(&["master", "retire", "--version", "1"]);
}

#[test]
fn a_flat_command_of_old_answers_with_the_grouped_form_to_type() {
    let cli = cli();
    let out = cli.run(&["rotate", "--due"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("type `cvault master rotate --due`"), "{stderr}");
    let out = cli.run(&["--workspace", "eng", "init", "--label", "L"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("type `cvault --workspace eng token init --label L`"), "{stderr}");
}

#[test]
fn help_groups_the_commands_and_every_subcommand_shows_an_example() {
    let cli = cli();
    let top = cli.ok(&["--help"]);
    for group in ["token", "master", "audit", "completions", "man"] {
        assert!(top.contains(&format!("  {group} ")), "{group} missing from:\n{top}");
    }
    for sub in [
        &["token", "init"][..],
        &["token", "status"],
        &["master", "list"],
        &["master", "rotate"],
        &["master", "rewrap"],
        &["master", "retire"],
        &["master", "destroy"],
        &["audit", "verify"],
        &["audit", "export"],
        &["audit", "report"],
        &["audit", "key"],
    ] {
        let help = cli.ok(&[sub, &["--help"]].concat());
        assert!(help.contains(&format!("cvault {}", sub.join(" "))), "no example in {sub:?} help:\n{help}");
    }
}

#[test]
fn a_refusal_keeps_the_modules_ckr_reason() {
    let cli = cli();
    cli.init();
    let out = cli.run(&["master", "destroy", "--version", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("cvault: destroy v1 refused: C_SetAttributeValue returned CKR_"), "{stderr}");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let cli = cli();
    assert!(cli.ok(&["completions", "bash"]).contains("complete -F _cvault"));
    assert!(cli.ok(&["completions", "zsh"]).starts_with("#compdef cvault"));
    assert!(cli.ok(&["completions", "fish"]).contains("complete -c cvault"));
    assert_eq!(cli.run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_writes_a_page_for_cvault_and_each_subcommand() {
    let cli = cli();
    let dir = cli.ws.dir.path().join("man/man1");
    cli.ok(&["man", dir.to_str().expect("utf-8")]);
    for page in ["cvault.1", "cvault-token-init.1", "cvault-master-rotate.1", "cvault-audit-export.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
}

/// Runs cvault with `--json` (appended), asserts success, parses stdout.
fn json(cli: &Cvault, args: &[&str]) -> serde_json::Value {
    let out = cli.ok(&[args, &["--json"]].concat());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cvault {args:?} --json is not JSON ({e}):\n{out}"))
}

#[test]
fn token_init_and_status_print_json() {
    let cli = cli();
    let init = json(&cli, &["token", "init", "--workspace", "eng", "--label", "Engineering"]);
    assert_eq!(init["workspace"], "eng");
    assert_eq!(init["label"], "Engineering");
    assert_eq!(init["user_pin_set"], true);
    assert!(init["model"].as_str().is_some_and(|m| m.contains("hsm root")), "{init}");
    let status = json(&cli, &["token", "status"]);
    let backend = if cfg!(feature = "aws-lc") { "aws-lc" } else { "rustcrypto" };
    assert_eq!(status["crypto_backend"], backend, "the module names the backend it was built with");
    let ws = &status["workspaces"][0];
    assert_eq!(ws["workspace"], "eng");
    assert_eq!(ws["classification"], "restricted");
    assert_eq!(ws["rotation_days"], 30);
    assert_eq!(ws["initialized"], true);
    assert_eq!(ws["rotation_due"], false);
    assert_eq!(ws["versions"][0]["version"], 1);
    assert_eq!(ws["versions"][0]["state"], "active");
    // `--format json` is the same switch.
    let again: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--format", "json", "token", "status"])).expect("--format json");
    assert_eq!(again["workspaces"][0]["workspace"], "eng");
}

#[test]
fn master_list_rotate_retire_and_destroy_print_json() {
    let cli = cli();
    cli.init();
    let not_due = json(&cli, &["master", "rotate", "--due"]);
    assert_eq!(not_due["rotated"], false);
    assert_eq!(not_due["active"], 1);
    let rotated = json(&cli, &["master", "rotate"]);
    assert_eq!((rotated["rotated"].clone(), rotated["active"].clone()), (true.into(), 2.into()));
    assert_eq!(rotated["decrypt_only"], 1);
    let list = json(&cli, &["master", "list"]);
    let versions = list["workspaces"][0]["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["state"], "decrypt-only");
    assert_eq!(versions[1]["state"], "active");
    assert_eq!(versions[1]["stored_deks"], 0);
    assert_eq!(versions[1]["blocked"], false);
    assert!(versions[1]["created"].as_str().is_some_and(|d| d.len() == 10), "{list}");
    let retired = json(&cli, &["master", "retire", "--version", "1"]);
    assert_eq!((retired["version"].clone(), retired["state"].clone()), (1.into(), "retired".into()));
    let destroyed = json(&cli, &["master", "destroy", "--version", "1"]);
    assert_eq!(destroyed["state"], "destroyed");
}

#[test]
fn master_rewrap_prints_json() {
    let cli = cli();
    cli.init();
    let dir = cli.ws.dir.path().join("records");
    std::fs::create_dir_all(&dir).expect("records dir");
    make_record(&dir.join("a.wrap"));
    cli.ok(&["master", "rotate"]);
    make_record(&dir.join("b.wrap"));
    let out = json(&cli, &["master", "rewrap", "--records", dir.to_str().expect("utf-8")]);
    assert_eq!(out["version"], 2);
    assert_eq!(out["total"], 2);
    assert_eq!(out["rewrapped"], 1);
    assert_eq!(out["already_current"], 1);
    assert_eq!(out["records"][0]["file"], "a.wrap");
    assert_eq!(out["records"][0]["from"], 1);
}

#[test]
fn audit_verify_report_and_key_print_json() {
    let cli = cli();
    cli.init();
    cli.ok(&["master", "rotate"]);
    let verify = json(&cli, &["audit", "verify"]);
    assert_eq!(verify["intact"], true, "{verify}");
    assert!(verify["entries"].as_u64().is_some_and(|n| n > 0));
    assert!(verify["head"].as_str().is_some_and(|h| h.len() == 64), "{verify}");
    let report = json(&cli, &["audit", "report"]);
    assert_eq!(report["chain"]["intact"], true);
    assert_eq!(report["entries"], verify["entries"]);
    let ws = &report["workspaces"][0];
    assert_eq!(ws["workspace"], "eng");
    assert_eq!(ws["masters"]["rotation_days"], 30);
    assert_eq!(ws["masters"]["versions"][1]["state"], "active");
    assert_eq!(ws["masters"]["versions"][1]["rotation_due"], false);
    assert!(ws["objects"].is_array() && ws["failed_logins"].is_array() && ws["refusals"].is_object(), "{ws}");
    let key = json(&cli, &["audit", "key"]);
    for algorithm in ["ecdsa_p256", "ml_dsa_65"] {
        let pem = key[algorithm].as_str();
        assert!(pem.is_some_and(|p| p.starts_with("-----BEGIN PUBLIC KEY-----")), "{algorithm}: {key}");
    }
}

#[test]
fn audit_export_lines_parse_as_json() {
    let cli = cli();
    cli.init();
    let out = cli.ok(&["audit", "export"]);
    let first: serde_json::Value = serde_json::from_str(out.lines().next().expect("an entry")).expect("JSON line");
    assert_eq!(first["seq"], 1);
    for field in ["at_ms", "actor", "action", "outcome", "prev_hash", "hash"] {
        assert!(!first[field].is_null(), "{field} missing: {first}");
    }
}

#[test]
fn a_pin_is_never_taken_from_the_command_line() {
    let cli = cli();
    let out = cli.run(&["master", "list", "--pin", common::USER_PIN]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let no_pin = cli.command(&["master", "list"]).env_remove("CV_USER_PIN").output().expect("run cvault");
    let stderr = String::from_utf8_lossy(&no_pin.stderr);
    assert!(stderr.contains("set CV_USER_PIN or use --pin-file"), "{stderr}");
}

/// Reads `from` until `text` has appeared (or the stream ends), returning all read so far.
fn read_until(from: &mut impl std::io::Read, text: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains(text) {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_missing_pin_is_asked_for_on_a_terminal_without_echo() {
    use std::io::{Read, Write};
    use std::process::Stdio;

    // script(1) gives cvault a terminal; without it there is nothing to test here.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) is not installed");
        return;
    }
    let cli = cli();
    cli.init();
    let line = format!("{} master list", env!("CARGO_BIN_EXE_cvault"));
    let mut child = cli
        .environment(Command::new("script"))
        .args(["-qec", &line, "/dev/null"])
        .env_remove("CV_USER_PIN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdout = child.stdout.take().expect("stdout");
    let prompt = read_until(&mut stdout, "user PIN for workspace eng: ");
    assert!(prompt.contains("user PIN for workspace eng: "), "no prompt: {prompt}");
    // rpassword turns echo off just after printing the prompt; a person types later than
    // that, and so must the test (input already queued when echo goes off is echoed).
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.stdin.take().expect("stdin").write_all(format!("{}\n", common::USER_PIN).as_bytes()).expect("type PIN");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{prompt}{rest}");
    assert!(row(&rest, 1).starts_with("v1 active"), "{rest}");
    assert!(!rest.contains(common::USER_PIN), "the PIN was echoed: {rest}");
}

/// `cvault ARGS` under script(1), which gives it a terminal: everything it wrote there.
/// `None` when script(1) is not installed.
fn on_a_terminal(cli: &Cvault, args: &str) -> Option<String> {
    Command::new("script").arg("--version").output().ok()?;
    let line = format!("{} {args}", env!("CARGO_BIN_EXE_cvault"));
    let out = cli.environment(Command::new("script")).args(["-qec", &line, "/dev/null"]).output().expect("script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn rewrap_and_verify_show_progress_on_a_terminal_and_nothing_on_a_pipe() {
    let cli = cli();
    cli.init();
    let dir = cli.ws.dir.path().join("records");
    std::fs::create_dir_all(&dir).expect("records dir");
    for name in ["a.wrap", "b.wrap", "c.wrap"] {
        make_record(&dir.join(name));
    }
    cli.ok(&["master", "rotate"]);
    let records = dir.to_str().expect("utf-8");
    let Some(drawn) = on_a_terminal(&cli, &format!("master rewrap --records {records}")) else {
        eprintln!("skipped: script(1) is not installed");
        return;
    };
    assert!(drawn.contains("re-wrap [") && drawn.contains("3/3"), "no progress bar: {drawn:?}");
    assert!(drawn.contains("re-wrapped 3"), "{drawn}");
    // On a pipe: the results on stdout, nothing at all on stderr.
    make_record(&dir.join("d.wrap"));
    cli.ok(&["master", "rotate"]);
    let piped = cli.run(&["master", "rewrap", "--records", records]);
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty(), "{}", String::from_utf8_lossy(&piped.stderr));
    let verified = cli.run(&["audit", "verify"]);
    assert!(verified.status.success() && verified.stderr.is_empty());
}
