//! `cvault kit ...`: recovery kits (`doc/recovery.md`).
//!
//! `export` derives the kit key from a passphrase and the second factor's response, asks
//! the module to seal every master key version under it (`CKM_CV_EXPORT_KIT`, through a
//! session AES key that exists only for that call), and writes the kit; `check` runs the
//! public checks, with no secret; `drill` opens a kit in memory and checks it against the
//! live hierarchy (check values, through the module) and a sample of the stored DEKs
//! (read from the store with the module finalized: two SQLite connections in one process
//! break each other's locks), records the outcome in the audit log, and on failure writes
//! an alert entry and runs the notification hook. `factor init` makes the factor key.
//!
//! The factor token is used before the CollabVault module is loaded, and its module
//! finalized after: both may be the same SoftHSM2 library, which one process initializes
//! once.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::mechanism::primitives::{fill_random, sha256};
use collabvault_pkcs11::quorum::notify;
use collabvault_pkcs11::recovery::attempts;
use collabvault_pkcs11::recovery::drill::{self, DrillReport, LiveVersion};
use collabvault_pkcs11::recovery::factor::FactorToken;
use collabvault_pkcs11::recovery::format::{self, FactorInfo, Header, KdfParams, VersionInfo, FACTOR_KIND};
use collabvault_pkcs11::recovery::kit::{self, KitContents};

use collabvault_pkcs11::store::{AuditEvent, Backend, Lifecycle};
use collabvault_pkcs11::vendor::{CKA_CV_THRESHOLD, CKM_CV_EXPORT_KIT};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{FactorArgs, FactorCommand, Global, KitCommand, PassphraseArgs};
use crate::{fail, print_json, Failure, Res, Tool};

/// The factor key's label when none is given.
pub(crate) const DEFAULT_FACTOR_KEY: &str = "collabvault-kit-factor";
/// The audit action of a drill's outcome.
pub(crate) const DRILL_ACTION: &str = "kit-drill";

pub(crate) fn kit_failure(e: collabvault_pkcs11::error::Error) -> Failure {
    Failure(e.to_string())
}

/// Runs a `kit` command (each loads the module itself, if it needs it).
pub(crate) fn run(global: Global, command: KitCommand) -> Res<ExitCode> {
    match command {
        KitCommand::Check { file } => cmd_check(&global, &file),
        KitCommand::Factor(FactorCommand::Init { factor }) => {
            let token = factor_token(&factor, None)?;
            token.init_key().map_err(kit_failure)?;
            println!(
                "second factor: key {:?} generated on token {:?} (sensitive, never extractable)",
                token.key, token.token
            );
            Ok(ExitCode::SUCCESS)
        }
        KitCommand::Export { out, factor, secret, holder, kdf_memory_kib, kdf_passes } => {
            let holder = holder.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
            cmd_export(global, &out, &factor, &secret, &holder, (kdf_memory_kib, kdf_passes))
        }
        KitCommand::Ack { file, kit_id, fingerprint, holder } => {
            crate::inventory::cmd_ack(&global, file.as_deref(), kit_id, fingerprint.as_deref(), &holder)
        }
        KitCommand::Inventory => crate::inventory::cmd_inventory(&global),
        KitCommand::Drill { file, factor, secret, sample } => cmd_drill(global, &file, &factor, &secret, sample),
    }
}

/// A secret from a file (first line), else an environment variable, else a no-echo
/// prompt on a terminal (asked twice when `confirm`).
fn secret(file: Option<&Path>, variable: &str, what: &str, confirm: bool) -> Res<Zeroizing<String>> {
    if let Some(path) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?,
        );
        return Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_string()));
    }
    if let Some(v) = std::env::var(variable).ok().filter(|v| !v.is_empty()) {
        return Ok(Zeroizing::new(v));
    }
    if !std::io::stdin().is_terminal() {
        return fail(format!("no {what}: set {variable} or give its file (or run cvault on a terminal to be asked)"));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| Failure(format!("cannot read the {what} from the terminal: {e}")))
    };
    let value = ask(&format!("{what}: "))?;
    if confirm && *ask(&format!("{what} again: "))? != *value {
        return fail(format!("the two {what}s differ; nothing was written"));
    }
    Ok(value)
}

pub(crate) fn passphrase(args: &PassphraseArgs, confirm: bool) -> Res<Zeroizing<String>> {
    let p = secret(args.passphrase_file.as_deref(), "CV_KIT_PASSPHRASE", "kit passphrase", confirm)?;
    if confirm && p.chars().count() < 12 {
        return fail("the kit passphrase must be at least 12 characters");
    }
    Ok(p)
}

/// The factor token from the options, the kit's header filling in the labels.
pub(crate) fn factor_token(args: &FactorArgs, header: Option<&FactorInfo>) -> Res<FactorToken> {
    let Some(module) = args.factor_module.clone() else {
        return fail("no second-factor module: use --factor-module PATH or set CV_FACTOR_MODULE");
    };
    let token = match (&args.factor_token, header) {
        (Some(t), _) => t.clone(),
        (None, Some(h)) => h.token.clone(),
        (None, None) => return fail("no second-factor token: use --factor-token LABEL or set CV_FACTOR_TOKEN"),
    };
    let key = match (&args.factor_key, header) {
        (Some(k), _) => k.clone(),
        (None, Some(h)) => h.key.clone(),
        (None, None) => DEFAULT_FACTOR_KEY.to_string(),
    };
    let pin = secret(args.factor_pin_file.as_deref(), "CV_FACTOR_PIN", "second-factor token PIN", false)?;
    Ok(FactorToken { module, token, key, pin })
}

fn random<const N: usize>() -> Res<[u8; N]> {
    let mut b = [0u8; N];
    fill_random(&mut b).map_err(kit_failure)?;
    Ok(b)
}

fn now() -> i64 {
    collabvault_pkcs11::quorum::now()
}

fn state_name(s: Lifecycle) -> &'static str {
    match s {
        Lifecycle::Active => "active",
        Lifecycle::DecryptOnly => "decrypt-only",
        Lifecycle::Retired => "retired",
        Lifecycle::Destroyed => "destroyed",
    }
}

/// A vendor mechanism whose parameter is a kit id (cryptoki sizes it by its type).
fn vendor_mechanism(ty: u64, param: Option<&[u8; 16]>) -> Res<Mechanism<'_>> {
    let ty = MechanismType::new_vendor_defined(ty).map_err(|e| Failure(e.to_string()))?;
    Ok(Mechanism::VendorDefined(match param {
        Some(p) => VendorDefinedMechanism::new(ty, Some(p)),
        None => VendorDefinedMechanism::new::<()>(ty, None),
    }))
}

/// Writes a new file readable by its owner only, durably; refuses to replace one.
fn write_new(path: &Path, bytes: &[u8]) -> Res<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| Failure(format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(cannot)?;
    f.write_all(bytes).map_err(cannot)?;
    f.sync_all().map_err(cannot)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(cannot)?;
    }
    Ok(())
}

fn cmd_export(
    global: Global,
    out: &Path,
    factor: &FactorArgs,
    secret: &PassphraseArgs,
    holder: &str,
    (memory, passes): (u32, u32),
) -> Res<ExitCode> {
    if out.exists() {
        return fail(format!("{} exists: a kit is never overwritten", out.display()));
    }
    let token = factor_token(factor, None)?;
    let pass = passphrase(secret, true)?;
    let (kit_id, salt, challenge) = (random::<16>()?, random::<16>()?, random::<32>()?);
    let mut header = Header {
        format: format::FORMAT_VERSION,
        workspace: String::new(),
        kit_id: hex::encode(kit_id),
        created: now(),
        versions: Vec::new(),
        kdf: KdfParams { alg: "argon2id".into(), memory_kib: memory, passes, salt: hex::encode(salt) },
        factor: FactorInfo {
            kind: FACTOR_KIND.into(),
            token: token.token.clone(),
            key: token.key.clone(),
            challenge: hex::encode(challenge),
        },
        quorum: false,
    };
    // The factor first, its module finalized before the CollabVault module loads.
    let response = token.respond(&kit::factor_message(&kit_id, &challenge)).map_err(kit_failure)?;
    let key = kit::derive_key(&header, pass.as_bytes(), &response, true).map_err(kit_failure)?;
    let t = Tool::open(global)?;
    let w = t.workspace()?;
    header.workspace = w.name.clone();
    let session = t.user_session(&w.name)?;
    let (master, _) = crate::masters::current(&session)?;
    header.quorum = threshold(&session, master)? > 0;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(key.enc.to_vec()),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Wrap(true),
        Attribute::Label(b"collabvault-kit-key".to_vec()),
    ];
    let kit_key = session.create_object(&template)?;
    let sealed = session.wrap_key(&vendor_mechanism(CKM_CV_EXPORT_KIT, Some(&kit_id))?, kit_key, master);
    session.destroy_object(kit_key)?;
    let sealed = sealed?;
    let versions = kit::open_keys(&key.enc, &w.name, &kit_id, &sealed).map_err(kit_failure)?;
    header.versions = versions
        .iter()
        .map(|v| VersionInfo {
            version: v.version,
            state: state_name(v.state).into(),
            created: v.created,
            kcv: hex::encode(v.kcv),
        })
        .collect();
    drop(versions);
    let file = kit::build(&header, &key, &sealed).map_err(kit_failure)?;
    write_new(out, &file)?;
    let json_out = t.global.json();
    drop(session);
    t.close();
    let fingerprint = hex::encode(sha256(&file));
    crate::inventory::record_issue(&header, sha256(&file), holder)?;
    let listed: Vec<String> = header.versions.iter().map(|v| format!("v{} (kcv {})", v.version, v.kcv)).collect();
    if json_out {
        print_json(&json!({
            "workspace": w.name, "kit_id": header.kit_id, "holder": holder, "file": out.display().to_string(),
            "fingerprint": fingerprint, "versions": header.versions, "quorum": header.quorum,
        }));
    } else {
        println!(
            "workspace {}: recovery kit {} written to {} ({}); fingerprint sha256:{fingerprint}",
            w.name,
            header.kit_id,
            out.display(),
            listed.join(", ")
        );
        println!("  store it apart from the store's backups; it opens only with the passphrase and the factor token");
    }
    Ok(ExitCode::SUCCESS)
}

/// `CKA_CV_THRESHOLD` of the current master key object: the quorum's k (0: none).
fn threshold(session: &cryptoki::session::Session, master: cryptoki::object::ObjectHandle) -> Res<u64> {
    let ty = AttributeType::VendorDefined(CKA_CV_THRESHOLD);
    for a in session.get_attributes(master, &[ty])? {
        if let Attribute::VendorDefined((_, bytes)) = a {
            let mut b = [0u8; 8];
            let n = bytes.len().min(8);
            b[..n].copy_from_slice(&bytes[..n]);
            return Ok(u64::from_ne_bytes(b));
        }
    }
    Ok(0)
}

pub(crate) fn read_kit(file: &Path) -> Res<Vec<u8>> {
    std::fs::read(file).map_err(|e| Failure(format!("cannot read {}: {e}", file.display())))
}

fn cmd_check(global: &Global, file: &Path) -> Res<ExitCode> {
    let bytes = read_kit(file)?;
    let parsed = format::parse(&bytes).map_err(|e| Failure(format!("{}: {e}", file.display())))?;
    let h = &parsed.header;
    if let Some(ws) = global.workspace.as_deref().filter(|ws| *ws != h.workspace) {
        return fail(format!(
            "{}: recovery kit refused: foreign workspace: the kit is for {:?}, not {ws:?}",
            file.display(),
            h.workspace
        ));
    }
    let fingerprint = hex::encode(sha256(&bytes));
    if global.json() {
        print_json(&json!({
            "file": file.display().to_string(), "format": h.format, "workspace": h.workspace, "kit_id": h.kit_id,
            "created": h.created, "versions": h.versions, "fingerprint": fingerprint, "quorum": h.quorum,
            "factor": h.factor, "kdf": {"alg": h.kdf.alg, "memory_kib": h.kdf.memory_kib, "passes": h.kdf.passes},
            "checksums": "ok", "mac": "present; verified only with the passphrase and the second factor (cvault kit drill)",
        }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: recovery kit, format {}, workspace {}, kit {}", file.display(), h.format, h.workspace, h.kit_id);
    println!("  created {} ({})", crate::time::date(u64::try_from(h.created).unwrap_or(0)), h.created);
    for v in &h.versions {
        println!("  v{:<4} {:<13} kcv {}", v.version, v.state, v.kcv);
    }
    println!(
        "  second factor: key {:?} on PKCS#11 token {:?}; passphrase: Argon2id {} KiB, {} passes",
        h.factor.key, h.factor.token, h.kdf.memory_kib, h.kdf.passes
    );
    println!("  fingerprint sha256:{fingerprint}");
    println!("  sections and checksums: ok; MAC: present, verified only with the passphrase and the second factor (cvault kit drill)");
    Ok(ExitCode::SUCCESS)
}

/// The live versions and their check values, through the module.
fn live_versions(t: &Tool, ws: &str) -> Res<Vec<LiveVersion>> {
    let session = t.user_session(ws)?;
    let mut out = Vec::new();
    for (h, v) in crate::masters::versions(&session)? {
        let state = Lifecycle::from_code(i64::try_from(v.state).unwrap_or(0))
            .ok_or_else(|| Failure(format!("v{}: unknown lifecycle {}", v.number, v.state)))?;
        let mut kcv = None;
        if state != Lifecycle::Destroyed {
            for a in session.get_attributes(h, &[AttributeType::CheckValue])? {
                if let Attribute::CheckValue(bytes) = a {
                    kcv = <[u8; 3]>::try_from(bytes.as_slice()).ok();
                }
            }
        }
        out.push(LiveVersion { version: v.number, state, kcv });
    }
    Ok(out)
}

fn cmd_drill(
    global: Global,
    file: &Path,
    factor: &FactorArgs,
    secret: &PassphraseArgs,
    sample: Option<usize>,
) -> Res<ExitCode> {
    let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
    let bytes = read_kit(file)?;
    // The public checks first: a damaged file is a failed drill too, recorded as one.
    let header = match format::parse(&bytes) {
        Ok(p) => p.header,
        Err(e) => return drill_failed(&config, global.workspace.as_deref(), "unknown", &e.to_string(), &global),
    };
    let ws = global.workspace.clone().unwrap_or_else(|| header.workspace.clone());
    if !config.workspaces.iter().any(|w| w.name == ws) {
        return fail(format!("workspace {ws:?} is not in the config"));
    }
    if let Err(why) = crate::inventory::check_not_downgraded(&config, &ws, &header) {
        return drill_failed(&config, Some(&ws), &header.kit_id, &why, &global);
    }
    let failed = {
        let store = open_store(&config)?;
        unlock_allowed(&*store, &config, &ws, &header.kit_id)?
    };
    let token = factor_token(factor, Some(&header.factor))?;
    let pass = passphrase(secret, false)?;
    let opened = kit::open(&bytes, Some(&ws), pass.as_bytes(), &mut |m| token.respond(m));
    drop(pass);
    record_unlock(&*open_store(&config)?, &ws, &header.kit_id, failed, &opened)?;
    let contents = match opened {
        Ok(c) => c,
        Err(e) => return drill_failed(&config, Some(&ws), &header.kit_id, &e.to_string(), &global),
    };
    let mut report = DrillReport::default();
    let t = Tool::open(global.clone())?;
    let live = live_versions(&t, &ws);
    t.close();
    // A drill that cannot see the live hierarchy (locked, wrong PIN) has failed too.
    let live = match live {
        Ok(live) => live,
        Err(Failure(why)) => {
            return drill_failed(&config, Some(&ws), &header.kit_id, &format!("the live hierarchy: {why}"), &global)
        }
    };
    drill::compare_versions(&contents, &live, &mut report);
    let store = open_store(&config)?;
    let sample = sample.unwrap_or(config.recovery.drill_sample);
    drill::sample_stored(&*store, &ws, &contents, sample, &mut report).map_err(kit_failure)?;
    record(&*store, &config, &ws, &contents, &report, &global)
}

/// The live store, on whichever backend the config names (SQLite or PostgreSQL).
pub(crate) fn open_store(config: &Config) -> Res<Arc<dyn Backend>> {
    collabvault_pkcs11::store::open(config).map_err(|e| Failure(format!("cannot open the store: {e}")))
}

/// Refuses an unlock of `kit_id` during the back-off after `[recovery]
/// max_failed_unlocks` failures in a row (audited), before any secret is asked for.
/// Returns the failures so far, for [`record_unlock`].
pub(crate) fn unlock_allowed(store: &dyn Backend, config: &Config, ws: &str, kit_id: &str) -> Res<u32> {
    let rows = store.audit_rows().map_err(kit_failure)?;
    let (failed, last) = attempts::failures(&rows, kit_id);
    let now_ms = now().saturating_mul(1000);
    if let Some(left) = attempts::wait(failed, last, config.recovery.max_failed_unlocks, now_ms) {
        store.append_audit(&attempts::refused_event(ws, kit_id, left)).map_err(kit_failure)?;
        return fail(format!(
            "kit {kit_id}: {failed} failed unlocks in a row; further attempts are refused for {}s more \
             ([recovery] max_failed_unlocks)",
            left.as_secs()
        ));
    }
    Ok(failed)
}

/// Records an unlock's outcome: a wrong passphrase or factor is an alert entry (the
/// count goes on), a success resets the count; other failures (a damaged file) count not.
pub(crate) fn record_unlock(
    store: &dyn Backend,
    ws: &str,
    kit_id: &str,
    failed_before: u32,
    opened: &collabvault_pkcs11::error::Result<KitContents>,
) -> Res<()> {
    let event = match opened {
        Ok(_) => attempts::opened_event(ws, kit_id),
        Err(collabvault_pkcs11::error::Error::Kit(why)) if why == kit::WRONG_SECRET => {
            attempts::failed_event(ws, kit_id, failed_before.saturating_add(1))
        }
        Err(_) => return Ok(()),
    };
    store.append_audit(&event).map_err(kit_failure)
}

/// The alert entry and the hook for a failed drill.
fn alert(store: &dyn Backend, config: &Config, ws: &str, detail: &str) -> Res<Option<String>> {
    let event = AuditEvent::ok(ws, "cvault", "alert", Some(format!("recovery kit drill failed: {detail}")))
        .with_outcome("ALERT");
    store.append_audit(&event).map_err(kit_failure)?;
    let notice = notify::Notice { event: "kit-drill-failed", workspace: ws, by: "cvault", detail };
    notify::run(&config.quorum, &notice).map_err(kit_failure)
}

/// A drill that could not open the kit: recorded as failed, with its alert.
fn drill_failed(config: &Config, ws: Option<&str>, kit_id: &str, why: &str, global: &Global) -> Res<ExitCode> {
    let Some(ws) = ws.or_else(|| config.workspaces.first().map(|w| w.name.as_str())) else {
        return fail(why.to_string());
    };
    let store = open_store(config)?;
    let detail = format!("kit {kit_id}: {why}");
    let event = AuditEvent::ok(ws, "cvault", DRILL_ACTION, Some(detail.clone())).with_outcome("FAILED");
    store.append_audit(&event).map_err(kit_failure)?;
    let hook = alert(&*store, config, ws, &detail)?;
    if global.json() {
        print_json(
            &json!({"workspace": ws, "kit_id": kit_id, "passed": false, "problems": [why], "hook_failed": hook}),
        );
    }
    fail(format!("drill failed: {why}"))
}

fn record(
    store: &dyn Backend,
    config: &Config,
    ws: &str,
    kit: &KitContents,
    report: &DrillReport,
    global: &Global,
) -> Res<ExitCode> {
    let h = &kit.header;
    let versions: Vec<String> = report.matched.iter().map(|v| format!("v{v}")).collect();
    let summary = format!(
        "kit {}: {} version(s) matched by check value ({}), {}/{} stored DEK(s) opened",
        h.kit_id,
        report.matched.len(),
        versions.join(","),
        report.opened,
        report.sampled
    );
    let passed = report.passed();
    let detail = if passed { summary.clone() } else { format!("{summary}; {}", report.problems.join("; ")) };
    let event = AuditEvent::ok(ws, "cvault", DRILL_ACTION, Some(detail.clone())).with_outcome(if passed {
        "CKR_OK"
    } else {
        "FAILED"
    });
    store.append_audit(&event).map_err(kit_failure)?;
    let hook = if passed { None } else { alert(store, config, ws, &detail)? };
    if global.json() {
        print_json(&json!({
            "workspace": ws, "kit_id": h.kit_id, "passed": passed, "matched": report.matched,
            "sampled": report.sampled, "opened": report.opened, "problems": report.problems, "hook_failed": hook,
        }));
    } else {
        println!("workspace {ws}: drill {}: {summary}", if passed { "passed" } else { "FAILED" });
        for p in &report.problems {
            println!("  {p}");
        }
        println!("  nothing was changed; the outcome is in the audit log");
    }
    if passed {
        Ok(ExitCode::SUCCESS)
    } else {
        fail(format!("drill failed: {}", report.problems.join("; ")))
    }
}

/// The last drill of `ws` in the audit log: (unix seconds, passed, detail).
pub(crate) fn last_drill(store: &dyn Backend, ws: &str) -> Res<Option<(i64, bool, String)>> {
    let rows = store.audit_rows().map_err(kit_failure)?;
    Ok(rows
        .iter()
        .rev()
        .find(|r| r.event.action == DRILL_ACTION && r.event.workspace.as_deref() == Some(ws))
        .map(|r| (r.at_ms / 1000, r.event.outcome == "CKR_OK", r.event.object.clone().unwrap_or_default())))
}

/// Kept for `cvault token status`: the drill line of each workspace, read before the
/// module loads.
pub(crate) fn drill_status(config: &Config) -> Vec<(String, serde_json::Value)> {
    let Ok(store) = collabvault_pkcs11::store::open(config) else {
        return Vec::new();
    };
    let every = config.recovery.drill_every_days;
    let now = now();
    config
        .workspaces
        .iter()
        .map(|w| {
            let last = last_drill(&*store, &w.name).ok().flatten();
            let value = match last {
                None => json!({"last": null, "result": null, "next_due": null, "overdue": true}),
                Some((at, ok, detail)) => {
                    let due = at + i64::try_from(every * 86_400).unwrap_or(i64::MAX);
                    json!({"last": at, "result": if ok { "passed" } else { "failed" }, "detail": detail,
                           "next_due": due, "overdue": !ok || due < now})
                }
            };
            (w.name.clone(), value)
        })
        .collect()
}
