//! `cvault root reshare`: deals a split root's secrets again over all its slots after a
//! lost HSM's place in `[[root.slots]]` was given to a fresh token (doc/root.md,
//! "Replacing a lost HSM"; the steps are `collabvault_pkcs11::root::reshare`).
//!
//! Runs with the module not loaded, like `cvault recover`: the slots through the
//! library's root code, the store directly. Before anything is written it proves the SO
//! PIN of every initialized workspace (the root serves them all) and, where a workspace
//! has a quorum, uses up an approved `reshare-root` request. The reshare is audited in
//! the store's chain (start, each slot, the commit, done) without key bytes, and a
//! checkpoint signed at the end records the audit head in every slot, the new one too.

use std::process::ExitCode;
use std::sync::Arc;

use collabvault_pkcs11::audit::checkpoint::Checkpointer;
use collabvault_pkcs11::config::{Config, WorkspaceConfig};
use collabvault_pkcs11::quorum::RESHARE_ROOT;
use collabvault_pkcs11::root::reshare::{Reshared, Step};
use collabvault_pkcs11::root::slot::SlotRoot;
use collabvault_pkcs11::store::{AuditEvent, Backend, Caller, PinOwner};
use collabvault_pkcs11::token::{Root, Token};
use serde_json::json;

use crate::cli::Global;
use crate::{fail, print_json, Failure, Pins, Res, Who};

/// Who the reshare's audit entries name.
const SO: Caller<'static> = Caller { actor: "so", session: None };

/// `cvault root reshare`.
pub(crate) fn reshare(global: &Global) -> Res<ExitCode> {
    let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
    // The root code's steps go where the module's own log lines go.
    let level = config.log_level.parse().unwrap_or(log::LevelFilter::Warn);
    collabvault_pkcs11::logging::configure(level, config.log_file.as_deref())
        .map_err(|e| Failure(format!("config: {e}")))?;
    let Some(root) = config.root.as_ref().filter(|r| !r.slots.is_empty()) else {
        return fail("no split root in the config ([root] threshold with [[root.slots]]): there are no shares to deal");
    };
    let store = collabvault_pkcs11::store::open(&config).map_err(|e| Failure(format!("cannot open the store: {e}")))?;
    let slot = Arc::new(SlotRoot::connect(root).map_err(|e| Failure(format!("nothing changed: {e}")))?);
    // Before any PIN is checked (a login is audited): with a slot missing nothing is written.
    slot.check_reshare().map_err(|e| Failure(format!("nothing changed: {e}")))?;
    let pins = Pins::load(global.pin_file.as_deref())?;
    for ws in &config.workspaces {
        authorize(&config, &store, &slot, ws, &pins)?;
    }
    let audit = |what: String| {
        let event = AuditEvent { workspace: None, ..AuditEvent::by("", SO, "root-reshare", Some(what)) };
        store.append_audit(&event)
    };
    let text = !global.json();
    let mut progress = |step: Step<'_>| {
        let line = match step {
            Step::Started { names, skipped } => format!(
                "start: {} secret(s) ({}) to deal again over every slot{}",
                names.len(),
                names.join(", "),
                match skipped.is_empty() {
                    true => String::new(),
                    false => format!("; left as they are (their shares do not recombine): {}", skipped.join(", ")),
                }
            ),
            Step::Staged { position, label, shares } => {
                format!("slot {position} ({label}): {shares} new share(s) staged")
            }
            Step::Committed => "committed: every slot holds every new share".into(),
        };
        if text {
            println!("  {line}");
        }
        audit(line)
    };
    let done = slot.reshare(&mut progress).map_err(|e| Failure(format!("reshare: {e}")))?;
    audit(format!("done: {} secret(s) dealt again over slots {}", done.names.len(), done.slots.join(", ")))
        .map_err(|e| Failure(format!("the reshare is done, but its last audit entry failed: {e}")))?;
    Checkpointer::new(slot.clone(), &config.audit)
        .checkpoint(store.as_ref())
        .map_err(|e| Failure(format!("the reshare is done, but the audit checkpoint failed: {e}")))?;
    report(&done, root.threshold.unwrap_or_default(), text);
    Ok(ExitCode::SUCCESS)
}

/// Proves the SO PIN of `ws` (when initialized) and, with a quorum, uses up its approved
/// `reshare-root` request; refuses (nothing changed) otherwise.
fn authorize(
    config: &Config,
    store: &Arc<dyn Backend>,
    slot: &Arc<SlotRoot>,
    ws: &WorkspaceConfig,
    pins: &Pins,
) -> Res<()> {
    let refused = |e: collabvault_pkcs11::Error| Failure(format!("workspace {}: {e}; nothing changed", ws.name));
    let token =
        Token::open(0, ws, store.clone(), config.pin_policy.clone(), Root::Slot(slot.clone()), config.quorum.clone())
            .map_err(refused)?;
    if !token.record().map_err(refused)?.initialized {
        return Ok(());
    }
    let pin = pins.secret(Who::So, &ws.name, false)?;
    token.login(PinOwner::So, pin.as_bytes(), false, None).map_err(refused)?;
    let approved = token.quorum().require(RESHARE_ROOT, SO);
    drop(token.logout(None));
    approved.map_err(refused)
}

fn report(done: &Reshared, threshold: u8, text: bool) {
    if text {
        println!(
            "root reshared {threshold}-of-{}: {} secret(s) dealt again over slots {}",
            done.slots.len(),
            done.names.len(),
            done.slots.join(", ")
        );
        if !done.skipped.is_empty() {
            println!("  left as they were (their shares do not recombine): {}", done.skipped.join(", "));
        }
        return;
    }
    print_json(&json!({
        "threshold": threshold,
        "slots": done.slots,
        "reshared": done.names,
        "skipped": done.skipped,
    }));
}
