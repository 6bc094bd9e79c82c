//! `cvault store migrate --to TARGET`: moves the whole store (every workspace's objects,
//! master key versions, quorum state, kit inventory, and the audit chain with its signed
//! checkpoints) into an empty store on another backend, as one snapshot of the source
//! (`store/copy.rs`), then proves the copy: the same rows in every table and the same
//! chain, which verifies. Nothing is deleted from the source: the operator points the
//! config at the new store once the move is proven, and the old one stays as it was.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use collabvault_pkcs11::audit::{self, Verdict};
use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::store::audit::{AuditEvent, Sync};
use collabvault_pkcs11::store::postgres::{self, PgStore, PgTarget};
use collabvault_pkcs11::store::sqlite::SqliteStore;
use collabvault_pkcs11::store::{self, Backend};
use serde_json::json;
use zeroize::Zeroizing;

use crate::{fail, print_json, Failure, Res};

/// Where the destination's database password comes from (never the command line).
pub(crate) struct TargetPassword {
    pub(crate) env: Option<String>,
    pub(crate) file: Option<PathBuf>,
}

fn store_err(what: &str) -> impl Fn(collabvault_pkcs11::Error) -> Failure + '_ {
    move |e| Failure(format!("{what}: {e}"))
}

fn password(from: &TargetPassword) -> Res<Option<Zeroizing<String>>> {
    if let Some(var) = &from.env {
        let pw = std::env::var(var).map_err(|_| Failure(format!("--password-env names {var:?}, which is not set")))?;
        return Ok(Some(Zeroizing::new(pw)));
    }
    if let Some(file) = &from.file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file).map_err(|e| Failure(format!("--password-file {}: {e}", file.display())))?,
        );
        return Ok(Some(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())));
    }
    Ok(None)
}

/// The destination store: `sqlite:DIR` (a store directory) or a PostgreSQL connection string.
fn open_target(config: &Config, to: &str, pw: &TargetPassword) -> Res<Arc<dyn Backend>> {
    if let Some(dir) = to.strip_prefix("sqlite:") {
        let dir = PathBuf::from(dir);
        if config.store.is_none() && std::path::absolute(&dir).ok() == std::path::absolute(&config.store_dir).ok() {
            return fail("the destination is the source store");
        }
        return Ok(Arc::new(SqliteStore::open(&dir).map_err(store_err("cannot open the destination"))?));
    }
    if !postgres::is_postgres(to) {
        return fail(format!("--to {to:?}: name `sqlite:DIR` or a PostgreSQL connection string (postgresql://...)"));
    }
    let target =
        PgTarget::parse(to).map_err(Failure)?.with_timeout(Duration::from_millis(config.store_busy_timeout_ms));
    let target = match password(pw)? {
        Some(p) => target.with_password(p.as_bytes()),
        None => target,
    };
    Ok(Arc::new(PgStore::open(target).map_err(store_err("cannot open the destination"))?))
}

/// `cvault store migrate --to TARGET`.
pub(crate) fn migrate(config: &Config, to: &str, pw: &TargetPassword, json_out: bool) -> Res<ExitCode> {
    let source = store::open(config).map_err(store_err("cannot open the source store"))?;
    let dest = open_target(config, to, pw)?;
    let snapshot = source.snapshot().map_err(store_err("cannot read the source store"))?;
    dest.load_snapshot(&snapshot).map_err(store_err("not moved"))?;
    let copied = dest.snapshot().map_err(store_err("cannot read the destination back"))?;
    if copied.counts() != snapshot.counts() || copied.rows != snapshot.rows {
        return fail("the destination does not hold the rows written to it: do not use it");
    }
    let rows = dest.audit_rows().map_err(store_err("cannot read the destination's audit log"))?;
    let entries = match audit::verify(&rows, None) {
        Verdict::Intact { entries, .. } => entries,
        Verdict::Broken { seq, defect } => {
            return fail(format!("the moved audit chain breaks at entry {seq} ({defect:?}): do not use it"))
        }
    };
    // Whatever the source took after the snapshot is not in the copy: say so, never drop it silently.
    let head_then = snapshot.audit_head().map(|(seq, _)| seq);
    let head_now = source.audit_head().map_err(store_err("cannot read the source store"))?.map(|(seq, _)| seq);
    if head_now != head_then {
        return fail(format!(
            "the source changed during the move (audit head {head_then:?} -> {head_now:?}): stop every \
             application using it and move again into a new, empty store"
        ));
    }
    let object = json!({"from": source_name(config), "to": shown(to), "entries": entries});
    let event = AuditEvent {
        workspace: None,
        actor: "cvault".into(),
        action: "store-migrate".into(),
        object: Some(object.to_string()),
        outcome: "CKR_OK".into(),
        session: None,
        count: None,
        sync: Sync::Full,
    };
    dest.append_audit(&event).map_err(store_err("cannot record the move in the destination's audit log"))?;
    let counts: serde_json::Map<String, serde_json::Value> =
        snapshot.counts().into_iter().map(|(t, n)| (t.to_string(), json!(n))).collect();
    if json_out {
        print_json(&json!({"from": source_name(config), "to": shown(to), "rows": counts, "audit_entries": entries}));
    } else {
        let n = |t: &str| snapshot.table(t).len();
        println!(
            "moved {} workspace(s), {} object(s), {} master key version(s) and {entries} audit entries (chain verified) \
             from {} to {}",
            n("tokens"),
            n("objects"),
            n("master_keys"),
            source_name(config),
            shown(to)
        );
        println!("{}", next_step(to));
    }
    Ok(ExitCode::SUCCESS)
}

fn source_name(config: &Config) -> String {
    match &config.store {
        Some(s) if postgres::is_postgres(s) => shown(s),
        _ => format!("sqlite:{}", config.store_dir.display()),
    }
}

/// A connection string as it may be printed: user and host, never a password.
fn shown(to: &str) -> String {
    match PgTarget::parse(to) {
        Ok(t) if postgres::is_postgres(to) => format!("{t:?}"),
        _ => to.to_string(),
    }
}

fn next_step(to: &str) -> String {
    match to.strip_prefix("sqlite:") {
        Some(dir) => {
            format!("the source is unchanged; to use the copy, set `store_dir = \"{dir}\"` and remove `store`")
        }
        None => "the source is unchanged; to use the copy, set `store = \"...\"` (and store_password_env or \
                 store_password_file) in every host's config"
            .into(),
    }
}
