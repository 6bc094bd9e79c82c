//! Recovery kits through the `cvault` binary and the built module, with a second
//! SoftHSM2 token as the second factor: export, the public check, drills, and every way a
//! kit is refused (corruption in each section, truncation, a downgraded format, a foreign
//! workspace, a wrong passphrase or factor, a stale or foreign hierarchy).

#![allow(missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use collabvault_pkcs11::recovery::factor::FactorToken;
use collabvault_pkcs11::recovery::{format, kit};
use common::cvault::Cvault;
use common::hsm::{softhsm_module, Hsm};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

const FACTOR_TOKEN: &str = "kit-factor";
const FACTOR_PIN: &str = "factor-pin-2468";
const PASSPHRASE: &str = "a long kit passphrase";

/// A SoftHSM2 root and a second SoftHSM2 token for the factor, a workspace `eng`, and
/// a notification hook that appends what it is told to a file.
struct Kit(Cvault);

impl std::ops::Deref for Kit {
    type Target = Cvault;
    fn deref(&self) -> &Cvault {
        &self.0
    }
}

impl Kit {
    fn new() -> Kit {
        let serial = common::lock();
        let hsm = Hsm::new();
        let status = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", FACTOR_TOKEN, "--so-pin", "factor-so-1", "--pin", FACTOR_PIN])
            .env("SOFTHSM2_CONF", hsm.conf().join("softhsm2.conf"))
            .output()
            .expect("softhsm2-util");
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        let notified = hsm.conf().join("notified.jsonl");
        let body = format!(
            "[quorum]\nnotify_command = [\"sh\", \"-c\", \"cat >> {}; echo >> {}\"]\n\
             [recovery]\ndrill_every_days = 30\ndrill_sample = 8\n[[workspace]]\nname = \"eng\"\n",
            notified.display(),
            notified.display()
        );
        let cli = Cvault::over(serial, hsm, &body)
            .env("CV_FACTOR_MODULE", softhsm_module())
            .env("CV_FACTOR_TOKEN", FACTOR_TOKEN)
            .env("CV_FACTOR_PIN", FACTOR_PIN)
            .env("CV_KIT_PASSPHRASE", PASSPHRASE);
        cli.init();
        cli.ok(&["kit", "factor", "init"]);
        Kit(cli)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ws.dir.path().join(name)
    }

    /// Exports a kit of the workspace into `name` (fast Argon2id parameters for tests).
    fn export(&self, name: &str) -> PathBuf {
        let out = self.path(name);
        let p = out.to_str().expect("utf-8 path");
        self.ok(&[
            "kit",
            "export",
            "--workspace",
            "eng",
            "--out",
            p,
            "--holder",
            "alice",
            "--kdf-memory-kib",
            "19456",
            "--kdf-passes",
            "2",
        ]);
        out
    }

    /// Token DEKs the module stores (each a wrap record under the active version).
    fn store_deks(&self, n: usize) {
        let pkcs11 = common::load();
        let slot = pkcs11.get_all_slots().expect("slots")[0];
        let s = pkcs11.open_rw_session(slot).expect("open");
        s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("login");
        for i in 0..n {
            let label = format!("dek-{i}").into_bytes();
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Token(true), Attribute::Label(label)],
            )
            .expect("token DEK");
        }
        drop(s);
        pkcs11.finalize().expect("C_Finalize");
    }

    /// The live check value of master key `version`, through the module.
    fn live_kcv(&self, version: u32) -> Vec<u8> {
        let pkcs11 = common::load();
        let slot = pkcs11.get_all_slots().expect("slots")[0];
        let s = pkcs11.open_rw_session(slot).expect("open");
        s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("login");
        let label = format!("collabvault-master-v{version}").into_bytes();
        let h = s.find_objects(&[Attribute::Label(label)]).expect("find")[0];
        let attrs = s.get_attributes(h, &[AttributeType::CheckValue]).expect("CKA_CHECK_VALUE");
        drop(s);
        pkcs11.finalize().expect("C_Finalize");
        match attrs.first() {
            Some(Attribute::CheckValue(v)) => v.clone(),
            other => panic!("no check value: {other:?}"),
        }
    }

    fn factor(&self, key: &str) -> FactorToken {
        std::env::set_var("SOFTHSM2_CONF", self.hsm.conf().join("softhsm2.conf"));
        FactorToken {
            module: softhsm_module(),
            token: FACTOR_TOKEN.into(),
            key: key.into(),
            pin: Zeroizing::new(FACTOR_PIN.into()),
        }
    }

    fn notified(&self) -> String {
        std::fs::read_to_string(self.hsm.conf().join("notified.jsonl")).unwrap_or_default()
    }

    fn audit(&self) -> String {
        self.ok(&["audit", "export"])
    }
}

fn drill(kit: &Kit, file: &Path) -> Output {
    kit.run(&["kit", "drill", "--file", file.to_str().expect("utf-8")])
}

#[test]
fn an_exported_kit_checks_opens_to_the_live_keys_and_drills_clean() {
    let kit = Kit::new();
    kit.store_deks(3);
    kit.ok(&["master", "rotate"]);
    kit.store_deks(2);
    let file = kit.export("eng.cvkit");
    let check = kit.ok(&["kit", "check", file.to_str().expect("utf-8")]);
    assert!(check.contains("workspace eng") && check.contains("sections and checksums: ok"), "{check}");
    let bytes = std::fs::read(&file).expect("kit");
    let header = format::parse(&bytes).expect("parses").header;
    assert_eq!(header.versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
    assert!(!String::from_utf8_lossy(&bytes).contains("collabvault-master"), "no object names leak");

    // The library function a restoration calls: the right versions, by check value.
    let factor = kit.factor("collabvault-kit-factor");
    let opened = kit::open(&bytes, Some("eng"), PASSPHRASE.as_bytes(), &mut |m| factor.respond(m)).expect("opens");
    for v in &opened.versions {
        assert_eq!(v.kcv.to_vec(), kit.live_kcv(v.version), "v{}", v.version);
    }

    let out = drill(&kit, &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("drill passed")
            && stdout.contains("2 version(s) matched")
            && stdout.contains("5/5 stored DEK(s) opened"),
        "{stdout}"
    );
    let status = kit.ok(&["token", "status"]);
    assert!(status.contains("recovery kit drill: last") && status.contains("passed, next due"), "{status}");
    assert!(kit.audit().contains("kit-drill"));
    assert!(kit.notified().is_empty(), "a passing drill notifies no one");
}

#[test]
fn every_kind_of_damage_is_refused_by_name_without_secrets() {
    let kit = Kit::new();
    let file = kit.export("eng.cvkit");
    let good = std::fs::read(&file).expect("kit");
    let header_len = u32::from_be_bytes(good[11..15].try_into().expect("len")) as usize;
    let keys_at = 10 + 5 + header_len + 32;
    let keys_len = u32::from_be_bytes(good[keys_at + 1..keys_at + 5].try_into().expect("len")) as usize;
    let mac_at = keys_at + 5 + keys_len + 32;
    let bad = kit.path("bad.cvkit");
    let check = |bytes: &[u8]| {
        std::fs::write(&bad, bytes).expect("write");
        kit.refused(&["kit", "check", bad.to_str().expect("utf-8")])
    };
    for (at, name) in [(30, "header"), (keys_at + 20, "keys"), (mac_at + 10, "MAC")] {
        let mut b = good.clone();
        b[at] ^= 0x04;
        let why = check(&b);
        assert!(why.contains(&format!("the {name} section is corrupted")), "{name}: {why}");
    }
    assert!(check(&good[..good.len() - 40]).contains("truncated"));
    assert!(check(&good[..keys_at + 3]).contains("truncated"));
    let mut old = good.clone();
    old[9] = 0;
    assert!(check(&old).contains("downgraded: format version 0"));
    let foreign = kit.refused(&["--workspace", "sales", "kit", "check", file.to_str().expect("utf-8")]);
    assert!(foreign.contains("foreign workspace"), "{foreign}");
    let foreign = kit.refused(&["--workspace", "sales", "kit", "drill", "--file", file.to_str().expect("utf-8")]);
    assert!(foreign.contains("not in the config") || foreign.contains("foreign workspace"), "{foreign}");
}

#[test]
fn a_wrong_passphrase_and_a_wrong_factor_are_one_refusal_and_an_alert() {
    let kit = Kit::new();
    let file = kit.export("eng.cvkit");
    let p = file.to_str().expect("utf-8");
    let wrong_pass = kit
        .command(&["kit", "drill", "--file", p])
        .env("CV_KIT_PASSPHRASE", "not the passphrase")
        .output()
        .expect("run");
    kit.ok(&["kit", "factor", "init", "--factor-key", "another-factor"]);
    let wrong_factor =
        kit.command(&["kit", "drill", "--file", p, "--factor-key", "another-factor"]).output().expect("run");
    assert_eq!(wrong_pass.status.code(), Some(1));
    assert_eq!(wrong_factor.status.code(), Some(1));
    let (a, b) = (String::from_utf8_lossy(&wrong_pass.stderr), String::from_utf8_lossy(&wrong_factor.stderr));
    assert_eq!(a, b, "the two refusals must not tell which secret was wrong");
    assert!(a.contains(kit::WRONG_SECRET), "{a}");
    let audit = kit.audit();
    assert!(audit.contains("recovery kit drill failed"), "{audit}");
    assert!(kit.notified().contains("kit-drill-failed"), "{}", kit.notified());
    let status = kit.ok(&["token", "status"]);
    assert!(status.contains("failed") && status.contains("OVERDUE"), "{status}");
}

/// Failed unlocks through `cvault` are counted per kit in the audit log (an `ALERT` entry
/// each): after `[recovery] max_failed_unlocks` in a row, the next attempt, even with the
/// right secrets, is refused before any secret is asked for, by drill and recover alike,
/// without saying which secret was wrong; another kit is not held back.
#[test]
fn failed_unlocks_are_counted_per_kit_and_then_refused_for_a_while() {
    let kit = Kit::new();
    let conf = std::fs::read_to_string(&kit.ws.conf).expect("config");
    let limited = conf.replace("drill_sample = 8", "drill_sample = 8\nmax_failed_unlocks = 2");
    assert_ne!(conf, limited);
    std::fs::write(&kit.ws.conf, limited).expect("config");
    let file = kit.export("eng.cvkit");
    let other = kit.export("other.cvkit");
    let p = file.to_str().expect("utf-8");
    // A success first: the count starts at zero whatever came before.
    assert!(drill(&kit, &file).status.success());
    let wrong_pass = kit
        .command(&["kit", "drill", "--file", p])
        .env("CV_KIT_PASSPHRASE", "not the passphrase")
        .output()
        .expect("run");
    kit.ok(&["kit", "factor", "init", "--factor-key", "another-factor"]);
    let wrong_factor =
        kit.command(&["kit", "drill", "--file", p, "--factor-key", "another-factor"]).output().expect("run");
    let (a, b) = (String::from_utf8_lossy(&wrong_pass.stderr), String::from_utf8_lossy(&wrong_factor.stderr));
    assert_eq!(a, b, "the two refusals must not tell which secret was wrong");
    assert!(a.contains(kit::WRONG_SECRET), "{a}");

    // The right secrets now: refused, by the drill and by a recovery.
    let held = drill(&kit, &file);
    let why = String::from_utf8_lossy(&held.stderr);
    assert!(!held.status.success() && why.contains("2 failed unlocks in a row; further attempts are refused"), "{why}");
    assert!(!why.contains("passphrase is") && !why.contains("factor is"), "{why}");
    let recover = kit.command(&["recover", "--workspace", "eng", "--kit", p]).output().expect("run");
    let why = String::from_utf8_lossy(&recover.stderr);
    assert!(!recover.status.success() && why.contains("failed unlocks in a row"), "{why}");
    // Another kit is counted apart.
    assert!(drill(&kit, &other).status.success(), "{}", String::from_utf8_lossy(&drill(&kit, &other).stderr));

    let audit = kit.audit();
    assert_eq!(audit.matches("\"kit-unlock-failed\"").count(), 2, "{audit}");
    assert!(audit.contains("(2 in a row): wrong passphrase or factor") && audit.contains("\"ALERT\""), "{audit}");
    assert_eq!(audit.matches("\"kit-unlock-refused\"").count(), 2, "{audit}");
}

#[test]
fn a_drill_finds_a_kit_stale_after_rotation_and_foreign_after_reinitialization() {
    let kit = Kit::new();
    let file = kit.export("eng.cvkit");
    kit.ok(&["master", "rotate"]);
    let stale = drill(&kit, &file);
    assert_eq!(stale.status.code(), Some(1));
    let out = String::from_utf8_lossy(&stale.stdout);
    assert!(out.contains("stale: the kit lacks master key v2"), "{out}");
    // A new hierarchy under the same workspace name: v1 is another key now.
    kit.ok(&["token", "init", "--workspace", "eng", "--label", "Engineering"]);
    let foreign = drill(&kit, &file);
    let out = String::from_utf8_lossy(&foreign.stdout);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(out.contains("master key v1 does not match"), "{out}");
}

fn header(file: &Path) -> format::Header {
    format::parse(&std::fs::read(file).expect("kit")).expect("parses").header
}

#[test]
fn the_inventory_tracks_holders_staleness_downgrades_and_overdue_drills() {
    let kit = Kit::new();
    let old = kit.export("old.cvkit");
    let old_id = header(&old).kit_id;
    let acked = kit.ok(&["kit", "ack", "--file", old.to_str().expect("utf-8"), "--holder", "bob"]);
    assert!(acked.contains("bob holds kit"), "{acked}");
    let wrong =
        kit.refused(&["kit", "ack", "--kit-id", &old_id, "--fingerprint", &"00".repeat(32), "--holder", "mallory"]);
    assert!(wrong.contains("fingerprint does not match"), "{wrong}");
    let inventory = kit.ok(&["kit", "inventory"]);
    assert!(
        inventory.contains(&format!("kit {old_id}")) && inventory.contains("alice") && inventory.contains("bob"),
        "{inventory}"
    );
    assert!(!inventory.contains("STALE") && !inventory.contains("mallory"), "{inventory}");
    assert!(inventory.contains("no drill ever ran"), "{inventory}");
    kit.ok(&["kit", "inventory"]);
    assert_eq!(kit.notified().matches("kit-drill-overdue").count(), 1, "alerted once a day: {}", kit.notified());

    kit.ok(&["master", "rotate"]);
    let inventory = kit.ok(&["kit", "inventory"]);
    assert!(inventory.contains("STALE") && inventory.contains("is stale: it lacks v[2]"), "{inventory}");
    let new = kit.export("new.cvkit");
    kit.ok(&["kit", "ack", "--file", new.to_str().expect("utf-8"), "--holder", "alice"]);
    let json: serde_json::Value = serde_json::from_str(&kit.ok(&["kit", "inventory", "--json"])).expect("json");
    let kits = json["workspaces"][0]["kits"].as_array().expect("kits").clone();
    // Both may be issued in the same second: each is found by its id, not its place.
    let stale = |id: &str| kits.iter().find(|k| k["kit_id"] == id).and_then(|k| k["stale"].as_bool());
    assert_eq!((stale(&old_id), stale(&header(&new).kit_id)), (Some(true), Some(false)), "{json}");
    let downgraded = drill(&kit, &old);
    assert_eq!(downgraded.status.code(), Some(1));
    let why = String::from_utf8_lossy(&downgraded.stderr);
    assert!(why.contains("downgraded: it covers up to v1"), "{why}");
    assert!(drill(&kit, &new).status.success());
    let audit = kit.audit();
    assert!(audit.contains("kit-issue") && audit.contains("kit-ack"), "{audit}");
}
