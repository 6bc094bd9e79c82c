//! `cvault kit ack` and `cvault kit inventory`: which administrators hold which kit, when
//! they last confirmed it, which kits a newer master key version made stale, and which
//! acknowledgements and drills are overdue. Read from and written to the store directly
//! (no module, no PIN): the inventory holds no secret, and every change it makes is an
//! audit entry in the same transaction.

use std::path::Path;
use std::process::ExitCode;

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::mechanism::primitives::sha256;
use collabvault_pkcs11::quorum::notify;
use collabvault_pkcs11::recovery::format::{self, Header};
use collabvault_pkcs11::store::recovery::{IssuedKit, KitAck, KitRecord};
use collabvault_pkcs11::store::{AuditEvent, Backend};
use serde_json::{json, Value};

use crate::kit::{last_drill, open_store};
use crate::{fail, print_json, Failure, Res};

const DAY: i64 = 86_400;

fn store_failure(e: collabvault_pkcs11::error::Error) -> Failure {
    Failure(format!("store: {e}"))
}

fn config() -> Res<Config> {
    Config::from_env().map_err(|e| Failure(format!("config: {e}")))
}

fn date(secs: i64) -> String {
    collabvault_pkcs11::audit::time::date(u64::try_from(secs).unwrap_or(0))
}

/// Records a kit just written (called with the module finalized).
pub(crate) fn record_issue(header: &Header, fingerprint: [u8; 32], holder: &str) -> Res<()> {
    let store = open_store(&config()?)?;
    let kit = KitRecord {
        kit_id: header.kit_id.clone(),
        workspace: header.workspace.clone(),
        fingerprint,
        versions: header.versions.iter().map(|v| v.version).collect(),
        holder: holder.to_string(),
        issued_at: header.created,
    };
    let detail = format!(
        "recovery kit {} (v{}) issued to {holder}, fingerprint {}",
        kit.kit_id,
        kit.versions.iter().map(u32::to_string).collect::<Vec<_>>().join(",v"),
        hex::encode(fingerprint)
    );
    store.add_kit(&kit, &AuditEvent::ok(&kit.workspace, "cvault", "kit-issue", Some(detail))).map_err(store_failure)
}

/// Refuses a kit older than one a holder already acknowledged: presenting it would roll
/// the recovery back to fewer versions (a downgrade).
pub(crate) fn check_not_downgraded(config: &Config, ws: &str, header: &Header) -> Result<(), String> {
    let store = open_store(config).map_err(|Failure(why)| why)?;
    let kits = store.kits(ws).map_err(|e| e.to_string())?;
    let newest = header.newest().unwrap_or(0);
    let newer = kits.iter().filter(|k| !k.acks.is_empty() && k.kit.newest() > newest).max_by_key(|k| k.kit.newest());
    match newer {
        Some(k) => Err(format!(
            "recovery kit refused: downgraded: it covers up to v{newest}, older than kit {} (up to v{}) acknowledged on {}",
            k.kit.kit_id,
            k.kit.newest(),
            date(k.acks.last().map_or(0, |a| a.at))
        )),
        None => Ok(()),
    }
}

pub(crate) fn cmd_ack(
    global: &crate::cli::Global,
    file: Option<&Path>,
    kit_id: Option<String>,
    fingerprint: Option<&str>,
    holder: &str,
) -> Res<ExitCode> {
    let (kit_id, fingerprint) = match (file, kit_id, fingerprint) {
        (Some(path), _, _) => {
            let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
            let header = format::parse(&bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))?.header;
            (header.kit_id, sha256(&bytes))
        }
        (None, Some(id), Some(hex_fp)) => {
            let fp = hex::decode(hex_fp.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            let Some(fp) = fp else {
                return fail("--fingerprint must be the 64 hex digits of the kit file's SHA-256");
            };
            (id, fp)
        }
        _ => return fail("name the kit: --file FILE, or --kit-id ID --fingerprint HEX"),
    };
    let config = config()?;
    let store = open_store(&config)?;
    let ws = workspace_of(&*store, &config, &kit_id)?;
    let now = collabvault_pkcs11::quorum::now();
    let ack = KitAck { kit_id: kit_id.clone(), holder: holder.to_string(), at: now };
    let event =
        AuditEvent::ok(&ws, "cvault", "kit-ack", Some(format!("recovery kit {kit_id} acknowledged by {holder}")));
    if !store.ack_kit(&ack, &fingerprint, &event).map_err(store_failure)? {
        return fail(format!(
            "kit {kit_id}: the fingerprint does not match the issued kit's (a different or altered file); nothing recorded"
        ));
    }
    let due = now + i64::try_from(config.recovery.ack_every_days).unwrap_or(0) * DAY;
    if global.json() {
        print_json(&json!({"workspace": ws, "kit_id": kit_id, "holder": holder, "at": now, "next_due": due}));
    } else {
        println!("workspace {ws}: {holder} holds kit {kit_id}; next acknowledgement due {}", date(due));
    }
    Ok(ExitCode::SUCCESS)
}

/// The workspace whose inventory lists `kit_id`.
fn workspace_of(store: &dyn Backend, config: &Config, kit_id: &str) -> Res<String> {
    for w in &config.workspaces {
        if store.kits(&w.name).map_err(store_failure)?.iter().any(|k| k.kit.kit_id == kit_id) {
            return Ok(w.name.clone());
        }
    }
    fail(format!("no kit {kit_id} in the inventory of any configured workspace"))
}

/// Each holder of a kit with the time of their last confirmation (issue counts as one).
fn holders(k: &IssuedKit) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = vec![(k.kit.holder.clone(), k.kit.issued_at)];
    for a in &k.acks {
        match out.iter_mut().find(|(h, _)| *h == a.holder) {
            Some(entry) => entry.1 = entry.1.max(a.at),
            None => out.push((a.holder.clone(), a.at)),
        }
    }
    out
}

/// The inventory of one workspace as JSON, and the sentences of what is wrong.
fn workspace_inventory(store: &dyn Backend, config: &Config, ws: &str, now: i64) -> Res<(Value, Vec<String>)> {
    let live: Vec<u32> =
        store.masters(ws).map_err(store_failure)?.iter().filter(|m| m.state.unwraps()).map(|m| m.version).collect();
    let every = i64::try_from(config.recovery.ack_every_days).unwrap_or(0) * DAY;
    let mut problems = Vec::new();
    let mut kits = Vec::new();
    for k in store.kits(ws).map_err(store_failure)? {
        let missing: Vec<u32> = live.iter().copied().filter(|v| !k.kit.versions.contains(v)).collect();
        let stale = !missing.is_empty();
        if stale {
            problems.push(format!("kit {} is stale: it lacks v{:?}; issue a new one", k.kit.kit_id, missing));
        }
        let mut list = Vec::new();
        for (holder, last) in holders(&k) {
            let due = last + every;
            let overdue = due < now;
            if overdue && !stale {
                problems.push(format!(
                    "{holder}'s acknowledgement of kit {} is overdue since {}",
                    k.kit.kit_id,
                    date(due)
                ));
            }
            list.push(json!({"holder": holder, "last_confirmed": last, "next_due": due, "overdue": overdue}));
        }
        kits.push(json!({
            "kit_id": k.kit.kit_id, "fingerprint": hex::encode(k.kit.fingerprint), "versions": k.kit.versions,
            "issued_at": k.kit.issued_at, "issued_to": k.kit.holder, "stale": stale, "holders": list,
        }));
    }
    if kits.is_empty() {
        problems.push("no recovery kit issued: cvault kit export".into());
    }
    let drill = last_drill(store, ws)?;
    let drill_every = i64::try_from(config.recovery.drill_every_days).unwrap_or(0) * DAY;
    let drill_json = match &drill {
        None => {
            problems.push("no drill ever ran: cvault kit drill".into());
            json!({"last": null, "overdue": true})
        }
        Some((at, ok, _)) => {
            let due = at + drill_every;
            if !ok {
                problems.push(format!("the last drill ({}) failed", date(*at)));
            } else if due < now {
                problems.push(format!("the drill is overdue since {}", date(due)));
            }
            json!({"last": at, "result": if *ok { "passed" } else { "failed" }, "next_due": due, "overdue": !ok || due < now})
        }
    };
    let doc = json!({"workspace": ws, "live_versions": live, "kits": kits, "drill": drill_json, "problems": problems});
    Ok((doc, problems))
}

/// An overdue drill's alert and hook, at most once a day per workspace.
fn alert_overdue_drill(store: &dyn Backend, config: &Config, ws: &str, now: i64) -> Res<()> {
    const WHAT: &str = "recovery kit drill overdue";
    let rows = store.audit_rows().map_err(store_failure)?;
    let recent = rows.iter().rev().take_while(|r| r.at_ms / 1000 > now - DAY).any(|r| {
        r.event.action == "alert"
            && r.event.workspace.as_deref() == Some(ws)
            && r.event.object.as_deref().is_some_and(|o| o.starts_with(WHAT))
    });
    if recent {
        return Ok(());
    }
    let detail = format!("{WHAT}: no passing drill within {} days", config.recovery.drill_every_days);
    let event = AuditEvent::ok(ws, "cvault", "alert", Some(detail.clone())).with_outcome("ALERT");
    store.append_audit(&event).map_err(store_failure)?;
    let notice = notify::Notice { event: "kit-drill-overdue", workspace: ws, by: "cvault", detail: &detail };
    notify::run(&config.quorum, &notice).map_err(store_failure)?;
    Ok(())
}

pub(crate) fn cmd_inventory(global: &crate::cli::Global) -> Res<ExitCode> {
    let config = config()?;
    let store = open_store(&config)?;
    let now = collabvault_pkcs11::quorum::now();
    let mut docs = Vec::new();
    for w in config.workspaces.iter().filter(|w| global.workspace.as_ref().is_none_or(|n| *n == w.name)) {
        let (doc, problems) = workspace_inventory(&*store, &config, &w.name, now)?;
        if doc["drill"]["overdue"].as_bool() == Some(true) {
            alert_overdue_drill(&*store, &config, &w.name, now)?;
        }
        if !global.json() {
            print_text(&doc, &problems);
        }
        docs.push(doc);
    }
    if global.json() {
        print_json(&json!({ "workspaces": docs }));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(doc: &Value, problems: &[String]) {
    println!("workspace {}: live versions {}", doc["workspace"].as_str().unwrap_or("?"), doc["live_versions"]);
    for k in doc["kits"].as_array().into_iter().flatten() {
        let stale = if k["stale"].as_bool() == Some(true) { "  STALE" } else { "" };
        println!(
            "  kit {}  versions {}  issued {} to {}{stale}",
            k["kit_id"].as_str().unwrap_or("?"),
            k["versions"],
            date(k["issued_at"].as_i64().unwrap_or(0)),
            k["issued_to"].as_str().unwrap_or("?")
        );
        for h in k["holders"].as_array().into_iter().flatten() {
            let overdue = if h["overdue"].as_bool() == Some(true) { "  OVERDUE" } else { "" };
            println!(
                "    {:<16} confirmed {}  next due {}{overdue}",
                h["holder"].as_str().unwrap_or("?"),
                date(h["last_confirmed"].as_i64().unwrap_or(0)),
                date(h["next_due"].as_i64().unwrap_or(0))
            );
        }
    }
    if problems.is_empty() {
        println!("  nothing overdue");
    }
    for p in problems {
        println!("  ! {p}");
    }
}
