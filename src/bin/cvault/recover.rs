//! `cvault recover`: restoration from a recovery kit onto a new root token, after the
//! old root token was lost (`doc/recovery.md`, "Restoration"; the steps are
//! `collabvault_pkcs11::recovery::restore`).
//!
//! Runs with the module not loaded: the store (SQLite or PostgreSQL, as configured) is
//! opened directly (two SQLite connections in one process break each other's locks) and
//! the new root token through the library's root code. Every step detects what an earlier, interrupted run finished, so the whole
//! command is simply run again after a crash, a kill or any failure.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::recovery::restore::{self, Carried, Target, RECOVERY};
use collabvault_pkcs11::recovery::{format, kit};
use collabvault_pkcs11::root::slot::SlotRoot;
use collabvault_pkcs11::store::AuditEvent;
use serde_json::json;

use crate::cli::{FactorArgs, Global, PassphraseArgs};
use crate::kit::{factor_token, kit_failure, passphrase, read_kit, record_unlock, unlock_allowed};
use crate::{fail, print_json, Failure, Pins, Res, Who};

/// How many stored DEKs the kit must open before anything is written.
const PRECHECK_SAMPLE: usize = 16;

/// Runs the restoration of the kit's workspace (or `--workspace`).
pub(crate) fn run(
    global: &Global,
    file: &Path,
    factor: &FactorArgs,
    secret: &PassphraseArgs,
    batch: usize,
) -> Res<ExitCode> {
    let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
    let bytes = read_kit(file)?;
    let header = format::parse(&bytes).map_err(|e| Failure(format!("{}: {e}", file.display())))?.header;
    let ws_name = global.workspace.clone().unwrap_or_else(|| header.workspace.clone());
    let Some(ws) = config.workspaces.iter().find(|w| w.name == ws_name) else {
        return fail(format!("workspace {ws_name:?} is not in the config"));
    };
    let Some(root) = config.root.as_ref() else {
        return fail(
            "no [root] in the config: recovery installs the hierarchy under a new root token; configure it first",
        );
    };
    let text = !global.json();
    let say = |line: String| {
        if text {
            println!("{line}");
        }
    };
    let store = collabvault_pkcs11::store::open(&config).map_err(|e| Failure(format!("cannot open the store: {e}")))?;
    // 1. The kit, unless its failed unlocks call for a wait: the factor first, its module
    // finalized before the root token is used.
    let failed = unlock_allowed(store.as_ref(), &config, &ws.name, &header.kit_id)?;
    let token = factor_token(factor, Some(&header.factor))?;
    let pass = passphrase(secret, false)?;
    let opened = kit::open(&bytes, Some(&ws.name), pass.as_bytes(), &mut |m| token.respond(m));
    drop(pass);
    record_unlock(store.as_ref(), &ws.name, &header.kit_id, failed, &opened)?;
    let contents = opened.map_err(kit_failure)?;
    let listed: Vec<String> = contents.versions.iter().map(|v| format!("v{}", v.version)).collect();
    say(format!("kit {} opened: {} ({})", header.kit_id, ws.name, listed.join(", ")));
    let pins = Pins::load(global.pin_file.as_deref())?;
    let so_pin = pins.secret(Who::So, &ws.name, true)?;
    let user_pin = pins.secret(Who::User, &ws.name, true)?;
    let audit = |action: &str, what: String| {
        store.append_audit(&AuditEvent::by(&ws.name, RECOVERY, action, Some(what))).map_err(kit_failure)
    };
    audit("recover-kit", format!("kit {} opened ({}) for a restoration", header.kit_id, listed.join(", ")))?;
    let checked = restore::check_kit_opens_store(store.as_ref(), &ws.name, &contents, PRECHECK_SAMPLE)
        .map_err(|e| Failure(format!("nothing changed: {e}")))?;
    say(match checked {
        0 => "  no stored DEK under the kit's versions to sample (all re-wrapped already, or none stored)".into(),
        n => format!("  {n} stored DEK(s) sampled: they open with the kit's keys"),
    });
    let slot = Arc::new(SlotRoot::connect(root).map_err(|e| Failure(format!("the new root token: {e}")))?);
    let target = Target {
        store: store.clone(),
        slot,
        workspace: &ws.name,
        quorum: config.quorum.clone(),
        audit: config.audit.clone(),
    };

    // The audit log carried across the root's loss, before any key changes.
    let carried = restore::carry_audit(&target).map_err(|e| Failure(format!("nothing changed: {e}")))?;
    say(match &carried {
        Carried::Nothing => "  audit log: its newest checkpoint is already the new root's".into(),
        Carried::Appended { seq, succession } => format!(
            "  audit log: root succession recorded at entry {seq} (the lost root's checkpoint keys: {}; its last \
             checkpoint {} at entry {}), signed over by the new root",
            succession.keys_line(),
            succession.last_number,
            succession.last_seq
        ),
        Carried::Signed(seq) => {
            format!("  audit log: the root succession at entry {seq} (an earlier run) signed over by the new root")
        }
    });

    // 2. The hierarchy under the new root, new PINs.
    let installed =
        restore::install(&target, &contents, so_pin.as_bytes(), user_pin.as_bytes()).map_err(kit_failure)?;
    let h = installed.hierarchy;
    say(match installed.pins_written {
        true => "  SO and user PIN records re-made under the new root (new storage key)".into(),
        false => "  PIN records: already under the new root (an earlier run)".into(),
    });
    say(match installed.resealed {
        Some(n) => format!("  {n} master key version(s) re-sealed from the kit under the new root"),
        None => "  master key versions: already under the new root (an earlier run)".into(),
    });
    // 5 (done early, and again by every rerun): every earlier login and session is void.
    let epoch = restore::invalidate_sessions(&target).map_err(kit_failure)?;
    say(format!("  token epoch now {epoch}: every earlier login and session must log in again"));

    // 3. A new active version.
    let active = match restore::rotate(&h, &contents, &ws.classification).map_err(kit_failure)? {
        Some(v) => {
            say(format!("  rotated: v{v} is now active"));
            v
        }
        None => {
            let (v, _) = h.current().map_err(kit_failure)?;
            say(format!("  rotation: v{v} already active (an earlier run)"));
            v
        }
    };

    // 4. Every stored DEK to the active version.
    let total = restore::pending(store.as_ref(), &ws.name, &h, active).map_err(kit_failure)?;
    let bar = crate::progress::bar(usize::try_from(total).unwrap_or(usize::MAX), "re-wrap");
    let moved = restore::rewrap(&h, batch, &mut |done, _| bar.set_position(u64::try_from(done).unwrap_or(u64::MAX)));
    bar.finish_and_clear();
    let moved = moved.map_err(|e| Failure(format!("re-wrap stopped: {e}; run cvault recover again to resume")))?;
    say(format!("  {moved} stored DEK(s) re-wrapped to v{active}"));
    let left = restore::pending(store.as_ref(), &ws.name, &h, active).map_err(kit_failure)?;
    if left > 0 {
        return fail(format!("{left} stored DEK(s) are still under an older version; run cvault recover again"));
    }
    audit(
        "recover",
        format!("restored from kit {}: v{active} active, {moved} stored DEK(s) re-wrapped", header.kit_id),
    )?;
    // The restoration's own entries vouched for by the new root at once.
    restore::seal_audit(&target).map_err(kit_failure)?;
    if text {
        println!("workspace {}: restored from kit {}; v{active} active", ws.name, header.kit_id);
        println!("  next: applications log in again with the new user PIN; with a quorum, the custodians enroll");
        println!("  again (cvault custodians init); export a new kit (cvault kit export): the old one lacks v{active}");
    } else {
        print_json(&json!({
            "workspace": ws.name, "kit_id": header.kit_id, "versions": contents.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            "pins_written": installed.pins_written, "resealed": installed.resealed, "epoch": epoch,
            "active": active, "rewrapped": moved, "audit_succession": match &carried {
                Carried::Appended { seq, .. } | Carried::Signed(seq) => json!(seq),
                Carried::Nothing => json!(null),
            },
        }));
    }
    Ok(ExitCode::SUCCESS)
}
