//! `cvault backup create|verify|restore`: online copies of the store, proven usable, and
//! put back (doc/backup.md).
//!
//! Like the audit commands these open the store directly rather than going through the
//! module: a backup is of the store file, taken while applications keep using the token
//! (`Backend::backup_to`), and a verification must work on a machine where the module
//! cannot run yet. Each one records itself in the LIVE store's audit chain
//! (`backup-create`, `backup-verify`, `backup-restore`), its object a small JSON document
//! (the backup directory, the manifest's SHA-256, the result), which `token status` reads
//! back to show the last backup and its last verification.
//!
//! Verification needs the user PIN of each workspace with stored DEKs: under a delegated
//! root a master key version opens only with the root key and the storage key a PIN
//! record holds, and proving that the copy's DEKs open is the point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use collabvault_pkcs11::audit::checkpoint::{self, Checkpointer, TrustedKeys};
use collabvault_pkcs11::audit::{self, Verdict};
use collabvault_pkcs11::backup::manifest::{self, FileSum, Manifest, FORMAT};
use collabvault_pkcs11::backup::scratch::Scratch;
use collabvault_pkcs11::backup::summary::Summary;
use collabvault_pkcs11::backup::{kit, probe, MANIFEST_FILE};
use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::store::audit::{AuditEvent, AuditRow, Sync};
use collabvault_pkcs11::store::sqlite::{self, SqliteStore, STORE_FILE};
use collabvault_pkcs11::store::{self, postgres, Backend};
use collabvault_pkcs11::token::Root;
use serde_json::{json, Value};

use crate::cli::{BackupCommand, Global};
use crate::time::rfc3339;
use crate::{fail, print_json, Failure, Pins, Res};

/// The audit actions this tool writes.
const CREATE: &str = "backup-create";
const VERIFY: &str = "backup-verify";
const RESTORE: &str = "backup-restore";

/// `cvault backup SUBCOMMAND`.
pub(crate) fn run(config: &Config, command: &BackupCommand, global: &Global) -> Res<ExitCode> {
    match command {
        BackupCommand::Create { dest } => create(config, dest, global.json()),
        BackupCommand::Verify { dest } => {
            let pins = Pins::load(global.pin_file.as_deref())?;
            let checked = verify(config, dest, &pins, global.workspace.as_deref())?;
            report(&checked, global.json());
            Ok(if checked.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        BackupCommand::Restore { dest, force } => {
            let pins = Pins::load(global.pin_file.as_deref())?;
            restore(config, dest, *force, &pins, global)
        }
    }
}

fn store_err(what: &str) -> impl Fn(collabvault_pkcs11::Error) -> Failure + '_ {
    move |e| Failure(format!("{what}: {e}"))
}

/// Whether the config's store is on a PostgreSQL server.
fn on_postgres(config: &Config) -> bool {
    config.store.as_deref().is_some_and(postgres::is_postgres)
}

/// Whether the config's store exists (a PostgreSQL one is reached, not looked for).
fn live_exists(config: &Config) -> bool {
    on_postgres(config) || config.store_dir.join(STORE_FILE).exists()
}

/// The live store, which must exist: the SQLite file, or the PostgreSQL server the config
/// names (whose backup is written as the same SQLite file, `Backend::backup_to`).
fn live(config: &Config) -> Res<Arc<dyn Backend>> {
    if on_postgres(config) {
        return store::open(config).map_err(store_err("cannot open the store"));
    }
    let file = config.store_dir.join(STORE_FILE);
    if !file.exists() {
        return fail(format!("no store at {}: the module has not run with this config", file.display()));
    }
    Ok(Arc::new(SqliteStore::open(&config.store_dir).map_err(store_err("cannot open the store"))?))
}

/// `dest`, absolute (what the audit entries and `token status` name).
fn absolute(dest: &Path) -> Res<PathBuf> {
    std::path::absolute(dest).map_err(|e| Failure(format!("{}: {e}", dest.display())))
}

/// Appends a `backup-*` entry to `store`'s chain; `ok` picks the outcome.
fn record(store: &dyn Backend, action: &str, ok: bool, object: &Value) -> Res<()> {
    let event = AuditEvent {
        workspace: None,
        actor: "cvault".into(),
        action: action.into(),
        object: Some(object.to_string()),
        outcome: if ok { "CKR_OK" } else { "FAILED" }.into(),
        session: None,
        count: None,
        sync: Sync::Full,
    };
    store.append_audit(&event).map_err(store_err("cannot record the backup in the audit log"))
}

fn workspace_names(config: &Config) -> Vec<String> {
    config.workspaces.iter().map(|w| w.name.clone()).collect()
}

/// `cvault backup create DEST`.
fn create(config: &Config, dest: &Path, json: bool) -> Res<ExitCode> {
    let dest = absolute(dest)?;
    let store = live(config)?;
    if dest.join(MANIFEST_FILE).exists() || dest.join(STORE_FILE).exists() {
        return fail(format!("{} already holds a backup: name a new directory", dest.display()));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dest).map_err(|e| Failure(format!("cannot create {}: {e}", dest.display())))?;
    let created_at_ms = jiff::Timestamp::now().as_millisecond();
    store.backup_to(&dest.join(STORE_FILE)).map_err(store_err("backup failed"))?;
    let summary = summarize_copy(&dest, &workspace_names(config))?;
    let manifest = Manifest {
        format: FORMAT,
        created_at: rfc3339(created_at_ms),
        created_at_ms,
        backend: if on_postgres(config) { "postgresql" } else { "sqlite" }.into(),
        root: if config.root.is_some() { "hsm" } else { "soft" }.into(),
        summary,
        files: vec![FileSum::of(&dest, STORE_FILE).map_err(store_err("cannot checksum the copy"))?],
    };
    let bytes = manifest.to_bytes().map_err(store_err("manifest"))?;
    write_private(&dest.join(MANIFEST_FILE), &bytes)?;
    let digest = manifest::digest(&bytes);
    let head = manifest.summary.audit_head.as_ref().map(|h| h.seq);
    let object = json!({"dir": dest, "manifest": digest, "head": head, "objects": manifest.summary.objects()});
    record(store.as_ref(), CREATE, true, &object)?;
    if json {
        print_json(&json!({"backup": dest, "manifest": digest, "summary": manifest.summary}));
    } else {
        println!(
            "backup of {} workspace(s), {} object(s), audit head {} written to {} (manifest {digest})",
            manifest.summary.workspaces.len(),
            manifest.summary.objects(),
            head.map_or("none".into(), |s| format!("entry {s}")),
            dest.display()
        );
    }
    for k in kit::kits_in(&dest) {
        eprintln!("cvault: warning: recovery kit {} sits beside the backup; keep kits elsewhere", k.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What the copy in `dir` holds. Opening it (migration bookkeeping, WAL mode in its
/// header) writes to it, so this runs before the checksums are taken, and the copy is
/// closed (its WAL folded back and removed) before they are.
fn summarize_copy(dir: &Path, workspaces: &[String]) -> Res<Summary> {
    let copy = SqliteStore::open(dir).map_err(store_err("cannot open the copy"))?;
    let summary = Summary::of(&copy, workspaces).map_err(store_err("cannot read the copy"));
    drop(copy);
    for suffix in ["-wal", "-shm"] {
        let side = dir.join(format!("{STORE_FILE}{suffix}"));
        if side.exists() {
            std::fs::remove_file(&side).map_err(|e| Failure(format!("cannot remove {}: {e}", side.display())))?;
        }
    }
    summary
}

fn write_private(path: &Path, bytes: &[u8]) -> Res<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let cannot = |e: std::io::Error| Failure(format!("cannot write {}: {e}", path.display()));
    let mut file = options.open(path).map_err(cannot)?;
    file.write_all(bytes).map_err(cannot)?;
    file.sync_all().map_err(cannot)
}

/// A verification's findings.
struct Checked {
    dest: PathBuf,
    digest: Option<String>,
    manifest: Option<Manifest>,
    /// What is wrong, each naming the file, claim, entry or record (empty: verified).
    problems: Vec<String>,
    /// What was proven, for the report.
    proven: Vec<String>,
}

/// `cvault backup verify DEST`: every check, then the result recorded in the live store
/// (when there is one: a backup may be verified on a machine whose store is gone).
///
/// `only` (`--workspace`) limits the DEK proof to one workspace, for configs whose
/// workspaces have different user PINs; the others are named as not proven.
fn verify(config: &Config, dest: &Path, pins: &Pins, only: Option<&str>) -> Res<Checked> {
    if let Some(name) = only.filter(|o| !config.workspaces.iter().any(|w| w.name == *o)) {
        return fail(format!("workspace {name:?} is not in the config"));
    }
    let dest = absolute(dest)?;
    let mut checked = Checked { dest: dest.clone(), digest: None, manifest: None, problems: vec![], proven: vec![] };
    let live = if live_exists(config) { Some(live(config)?) } else { None };
    check(config, &dest, (pins, only), live.as_ref(), &mut checked)?;
    if let Some(store) = &live {
        let result = match checked.problems.first() {
            None => "ok".to_string(),
            Some(first) => format!("failed: {first}"),
        };
        let object = json!({"dir": dest, "manifest": checked.digest, "result": result});
        record(store.as_ref(), VERIFY, checked.problems.is_empty(), &object)?;
    }
    Ok(checked)
}

fn check(
    config: &Config,
    dest: &Path,
    pins: (&Pins, Option<&str>),
    live: Option<&Arc<dyn Backend>>,
    out: &mut Checked,
) -> Res<()> {
    let bytes = match std::fs::read(dest.join(MANIFEST_FILE)) {
        Ok(b) => b,
        Err(e) => {
            out.problems.push(format!("{MANIFEST_FILE} is missing or unreadable in {}: {e}", dest.display()));
            return Ok(());
        }
    };
    let digest = manifest::digest(&bytes);
    out.digest = Some(digest.clone());
    if let Some(store) = live {
        check_recorded(store.as_ref(), dest, &digest, out)?;
    }
    let manifest = match Manifest::parse(&bytes) {
        Ok(m) => m,
        Err(why) => {
            out.problems.push(format!("{MANIFEST_FILE}: {why}"));
            return Ok(());
        }
    };
    let file_problems = manifest.check_files(dest);
    out.manifest = Some(manifest.clone());
    if !file_problems.is_empty() {
        // A file that fails its checksum is not opened.
        out.problems.extend(file_problems);
        return Ok(());
    }
    out.proven.push(format!("{} file(s) match their SHA-256", manifest.files.len()));
    let scratch = Scratch::new("verify").map_err(store_err("scratch directory"))?;
    std::fs::copy(dest.join(STORE_FILE), scratch.path().join(STORE_FILE))
        .map_err(|e| Failure(format!("cannot restore into {}: {e}", scratch.path().display())))?;
    // A copy that does not open or read is a finding like the others (reported with what
    // was found before it, such as an edited manifest), not a failure of the check.
    let copy = match SqliteStore::open(scratch.path()) {
        Ok(copy) => Arc::new(copy),
        Err(e) => {
            out.problems.push(format!("the restored copy does not open: {e}"));
            return Ok(());
        }
    };
    let names: Vec<String> = manifest.summary.workspaces.iter().map(|w| w.name.clone()).collect();
    let summary = match Summary::of(copy.as_ref(), &names) {
        Ok(summary) => summary,
        Err(e) => {
            out.problems.push(format!("cannot read the restored copy: {e}"));
            return Ok(());
        }
    };
    let differences = manifest.summary.differences(&summary);
    if differences.is_empty() {
        out.proven.push(format!(
            "the restored copy holds what the manifest says ({} workspace(s), {} object(s))",
            summary.workspaces.len(),
            summary.objects()
        ));
    }
    out.problems.extend(differences.into_iter().map(|d| format!("{MANIFEST_FILE} does not match the copy: {d}")));
    let root = probe::root(config).map_err(store_err("the root of trust is unreachable"))?;
    check_chain(copy.as_ref(), &root, out)?;
    check_deks(config, &root, copy, &summary, pins, out)
}

/// The manifest's digest against the `backup-create` entries of the live chain: one for
/// this directory with another digest means the manifest was edited.
fn check_recorded(store: &dyn Backend, dest: &Path, digest: &str, out: &mut Checked) -> Res<()> {
    let rows = store.audit_rows().map_err(store_err("cannot read the audit log"))?;
    // A restored chain holds no `backup-create` of the backup it came from (that entry
    // followed the snapshot), but its `backup-restore` names the manifest.
    let mut created: Vec<(i64, Value)> = [CREATE, RESTORE].iter().flat_map(|a| backup_entries(&rows, a)).collect();
    created.retain(|(_, o)| o["dir"].as_str() == dest.to_str());
    created.sort_by_key(|(seq, _)| *seq);
    match created.iter().find(|(_, o)| o["manifest"].as_str() == Some(digest)) {
        Some((seq, _)) => out.proven.push(format!("{MANIFEST_FILE} is the one the audit log recorded at entry {seq}")),
        None => match created.last() {
            Some((seq, o)) => out.problems.push(format!(
                "{MANIFEST_FILE} was changed: the audit log recorded {} for this backup at entry {seq}, the file is {digest}",
                o["manifest"].as_str().unwrap_or("?")
            )),
            None => out.proven.push("(this backup was not made from this store: no backup-create entry names it)".into()),
        },
    }
    Ok(())
}

/// The copy's audit chain, and with a root its signed checkpoints under the root
/// token's audit keys (the root's head belongs to the live chain, which may be longer).
fn check_chain(copy: &SqliteStore, root: &Root, out: &mut Checked) -> Res<()> {
    let rows = copy.audit_rows().map_err(store_err("cannot read the copy's audit log"))?;
    let verdict = match root {
        Root::Slot(slot) => {
            let ecdsa = slot.audit_public_key().map_err(store_err("root token"))?;
            let mldsa = slot.audit_mldsa_public_key().map_err(store_err("root token"))?;
            let checkpoints = copy.checkpoints().map_err(store_err("cannot read the copy's checkpoints"))?;
            let trusted = TrustedKeys {
                ecdsa: Some(ecdsa.as_deref().unwrap_or_default()),
                mldsa: Some(mldsa.as_deref().unwrap_or_default()),
            };
            checkpoint::verify_all(&rows, &checkpoints, None, &trusted)
        }
        Root::Soft | Root::Unavailable(_) => audit::verify(&rows, None),
    };
    match verdict {
        Verdict::Intact { entries, .. } => {
            out.proven.push(format!("the copied audit chain is intact ({entries} entries)"))
        }
        Verdict::Broken { seq, defect } => {
            out.problems.push(format!("the copied audit chain is broken at entry {seq}: {defect}"))
        }
    }
    Ok(())
}

/// Sample stored DEKs under every master key version of every workspace open.
fn check_deks(
    config: &Config,
    root: &Root,
    copy: Arc<SqliteStore>,
    summary: &Summary,
    (pins, only): (&Pins, Option<&str>),
    out: &mut Checked,
) -> Res<()> {
    for w in &summary.workspaces {
        if !w.initialized || w.masters.iter().all(|m| m.stored_records == 0) {
            continue;
        }
        if only.is_some_and(|o| o != w.name) {
            out.proven.push(format!("(workspace {}: stored DEKs not opened: --workspace names another)", w.name));
            continue;
        }
        let pin = pins.user_secret(&w.name)?;
        match probe::open_samples(config, root, copy.clone(), &w.name, pin.as_bytes()) {
            Err(e) => out.problems.push(format!("workspace {}: the copy's master keys do not open: {e}", w.name)),
            Ok(opened) => {
                let versions: Vec<String> =
                    opened.by_version.iter().map(|(v, (n, ok))| format!("v{v} {ok}/{n}")).collect();
                if opened.failures.is_empty() {
                    out.proven.push(format!(
                        "workspace {}: {} sample stored DEK(s) open ({})",
                        w.name,
                        opened.opened(),
                        versions.join(", ")
                    ));
                }
                out.problems.extend(opened.failures);
            }
        }
    }
    Ok(())
}

fn report(checked: &Checked, json: bool) {
    if json {
        print_json(&json!({
            "backup": checked.dest,
            "manifest": checked.digest,
            "verified": checked.problems.is_empty(),
            "problems": checked.problems,
            "proven": checked.proven,
        }));
        return;
    }
    for p in &checked.proven {
        println!("  {p}");
    }
    if checked.problems.is_empty() {
        println!("backup {} verified", checked.dest.display());
    } else {
        for p in &checked.problems {
            eprintln!("cvault: {p}");
        }
        eprintln!("cvault: backup {} FAILS verification", checked.dest.display());
    }
}

/// `cvault backup restore DEST [--force]`.
fn restore(config: &Config, dest: &Path, force: bool, pins: &Pins, global: &Global) -> Res<ExitCode> {
    let json = global.json();
    if on_postgres(config) {
        // The live store is a shared database: replacing it is the database's own
        // operation, never a file swap under other hosts.
        return fail(
            "not restored: the store is on PostgreSQL. Verify the backup here, then move its \
             collabvault.sqlite3 into an empty database with `cvault store migrate --to postgresql://...` \
             (run with a config whose store_dir holds that file) and point the hosts at it",
        );
    }
    let checked = verify(config, dest, pins, global.workspace.as_deref())?;
    if !checked.problems.is_empty() {
        report(&checked, json);
        return fail(format!("not restored: {} fails verification", checked.dest.display()));
    }
    let manifest = checked.manifest.as_ref().ok_or_else(|| Failure("internal: no manifest".into()))?;
    let backup_head = manifest.summary.audit_head.clone();
    let store_dir = &config.store_dir;
    let replaced_head = match live_head_and_lineage(config, backup_head.as_ref()) {
        Ok(head) => head,
        Err(Failure(why)) if force => {
            eprintln!("cvault: --force: restoring although {why}");
            None
        }
        Err(Failure(why)) => return fail(format!("not restored: {why} (--force restores it anyway)")),
    };
    let incoming = store_dir.join(format!("{STORE_FILE}.restoring"));
    if incoming.exists() {
        std::fs::remove_file(&incoming).map_err(|e| Failure(format!("cannot remove {}: {e}", incoming.display())))?;
    }
    std::fs::create_dir_all(store_dir).map_err(|e| Failure(format!("cannot create {}: {e}", store_dir.display())))?;
    copy_private(&checked.dest.join(STORE_FILE), &incoming)?;
    // What is put in place is checked again: the backup could have changed since verified.
    let want = manifest.files.iter().find(|f| f.name == STORE_FILE);
    let got = FileSum::of(store_dir, &format!("{STORE_FILE}.restoring")).map_err(store_err("checksum"))?;
    if want.is_none_or(|w| w.sha256 != got.sha256) {
        drop(std::fs::remove_file(&incoming));
        return fail(format!("not restored: {STORE_FILE} changed after it was verified"));
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let aside = match sqlite::replace_store(store_dir, &incoming, &stamp) {
        Ok(aside) => aside,
        Err(e) => {
            drop(std::fs::remove_file(&incoming));
            return fail(format!("not restored: {e}"));
        }
    };
    let restored = SqliteStore::open(store_dir).map_err(store_err("the restored store does not open"))?;
    let object = json!({
        "dir": checked.dest,
        "manifest": checked.digest,
        "backup_head": backup_head.as_ref().map(|h| h.seq),
        "replaced_head": replaced_head,
        "set_aside": aside.file,
    });
    record(&restored, RESTORE, true, &object)?;
    // The root token remembers the newest checkpoint of the chain it saw; the restored
    // chain is shorter, so it gets a checkpoint of its own at the restore entry and the
    // root's head moves to it (the replaced head stays named in that entry).
    if let Root::Slot(slot) = probe::root(config).map_err(store_err("the root of trust is unreachable"))? {
        Checkpointer::new(slot, &config.audit)
            .checkpoint(&restored)
            .map_err(store_err("restored, but the restore could not be checkpointed in the root token"))?;
    }
    let head = restored.audit_head().map_err(store_err("audit head"))?.map(|(s, _)| s);
    if json {
        print_json(&json!({"restored": checked.dest, "set_aside": aside.file, "audit_head": head}));
    } else {
        println!("restored {} into {}", checked.dest.display(), store_dir.display());
        match (&aside.file, &replaced_head) {
            (Some(file), Some(h)) => println!(
                "  the previous store is kept at {} (its chain ran to entry {}; entries after the backup are there)",
                file.display(),
                h["seq"]
            ),
            (Some(file), None) => println!("  the previous store is kept at {}", file.display()),
            (None, _) => println!("  there was no previous store"),
        }
        println!("  the audit chain continues at entry {} (backup-restore)", head.unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// The live chain's head, after checking that it contains the backup's head (the backup
/// is of this store); `None` when there is no live store.
fn live_head_and_lineage(
    config: &Config,
    backup: Option<&collabvault_pkcs11::backup::summary::HeadSummary>,
) -> Res<Option<Value>> {
    if !config.store_dir.join(STORE_FILE).exists() {
        return Ok(None);
    }
    let store = live(config)?;
    let rows = store.audit_rows().map_err(|e| Failure(format!("the live store's audit log is unreadable ({e})")))?;
    if let Some(b) = backup {
        let found = rows.iter().find(|r| r.seq == b.seq);
        if found.is_none_or(|r| hex::encode(&r.hash) != b.hash) {
            return fail(format!("the backup's audit head (entry {}) is not in the live chain: it is not a backup of this store, or the store diverged", b.seq));
        }
    }
    Ok(rows.last().map(|r| json!({"seq": r.seq, "hash": hex::encode(&r.hash)})))
}

fn copy_private(from: &Path, to: &Path) -> Res<()> {
    let bytes = std::fs::read(from).map_err(|e| Failure(format!("cannot read {}: {e}", from.display())))?;
    write_private(to, &bytes)
}

/// The `backup-*` entries of a chain with their objects parsed, oldest first.
fn backup_entries(rows: &[AuditRow], action: &str) -> Vec<(i64, Value)> {
    rows.iter()
        .filter(|r| r.event.action == action)
        .filter_map(|r| {
            let object = serde_json::from_str::<Value>(r.event.object.as_deref()?).ok()?;
            Some((r.seq, object))
        })
        .collect()
}

/// For `token status`: the last backup, its last verification, and any recovery kit in
/// a backup directory the log names. Empty without a store.
pub(crate) fn status(config: &Config) -> Value {
    let Ok(store) = live(config) else {
        return Value::Null;
    };
    let Ok(rows) = store.audit_rows() else {
        return Value::Null;
    };
    let at = |seq: i64| rows.iter().find(|r| r.seq == seq).map(|r| rfc3339(r.at_ms));
    let last = |action: &str| {
        backup_entries(&rows, action).pop().map(|(seq, mut o)| {
            o["entry"] = json!(seq);
            o["at"] = json!(at(seq));
            o
        })
    };
    let mut dirs: Vec<String> = [CREATE, VERIFY, RESTORE]
        .iter()
        .flat_map(|a| backup_entries(&rows, a))
        .filter_map(|(_, o)| o["dir"].as_str().map(str::to_string))
        .collect();
    dirs.sort();
    dirs.dedup();
    let kits: Vec<String> =
        dirs.iter().flat_map(|d| kit::kits_in(Path::new(d))).map(|p| p.display().to_string()).collect();
    json!({"last_backup": last(CREATE), "last_verify": last(VERIFY), "last_restore": last(RESTORE), "kits_beside_backups": kits})
}

/// `status`'s lines for people.
pub(crate) fn print_status(status: &Value) {
    if status.is_null() {
        return;
    }
    match &status["last_backup"] {
        Value::Null => println!("backups: none recorded (cvault backup create DIR)"),
        b => println!("backups: last {} at {}", b["dir"].as_str().unwrap_or("?"), b["at"].as_str().unwrap_or("?")),
    }
    match &status["last_verify"] {
        Value::Null => println!("  never verified (cvault backup verify DIR)"),
        v => println!(
            "  last verify: {} of {} at {}",
            v["result"].as_str().unwrap_or("?"),
            v["dir"].as_str().unwrap_or("?"),
            v["at"].as_str().unwrap_or("?")
        ),
    }
    if let Some(r) = status["last_restore"].as_object() {
        println!(
            "  restored from {} at {}",
            r.get("dir").and_then(Value::as_str).unwrap_or("?"),
            r.get("at").and_then(Value::as_str).unwrap_or("?")
        );
    }
    for k in status["kits_beside_backups"].as_array().into_iter().flatten() {
        println!(
            "  WARNING: recovery kit {} sits in a backup directory: keep kits apart from backups",
            k.as_str().unwrap_or("?")
        );
    }
}
