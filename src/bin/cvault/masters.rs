//! The master key commands: `init`, `status`, `list`, `rotate`, `rewrap`, `retire` and
//! `destroy`, each through the module's C ABI in a user (or SO) session.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::hierarchy::record;
use collabvault_pkcs11::vendor::{
    CKA_CV_BLOCKED, CKA_CV_CLASSIFICATION, CKA_CV_CREATED, CKA_CV_CURRENT, CKA_CV_KEY_VERSION, CKA_CV_LIFECYCLE,
    CKA_CV_ORIGIN, CKA_CV_ROLE, CKA_CV_STORED_RECORDS, CKM_CV_REWRAP_RECORD, CKM_CV_ROTATE_MASTER, CV_ROLE_MASTER,
    CV_STATE_RETIRED,
};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::CK_ULONG;
use serde_json::{json, Value};

use crate::time::{date, now, rotation_due, DAY};
use crate::{describe, fail, print_json, Failure, Res, Tool};

/// The label of the object that follows rotation (`src/session/master.rs`).
const CURRENT_LABEL: &str = "collabvault-master";

/// One master key version, as its token object describes it.
pub(crate) struct Version {
    pub(crate) number: u32,
    pub(crate) state: CK_ULONG,
    created: u64,
    classification: String,
    /// DEKs the module's own store keeps under this version.
    stored: CK_ULONG,
    blocked: bool,
    /// `generated`, or how a BYOK import brought the key (`CKA_CV_ORIGIN`).
    origin: String,
}

impl Version {
    fn state_name(&self) -> &'static str {
        match self.state {
            1 => "active",
            2 => "decrypt-only",
            3 => "retired",
            4 => "destroyed",
            _ => "unknown",
        }
    }

    fn age_days(&self, now: u64) -> u64 {
        now.saturating_sub(self.created) / DAY
    }

    /// The version's `--json` form (field names documented in the README).
    fn json(&self, now: u64) -> Value {
        json!({
            "version": self.number,
            "state": self.state_name(),
            "created": date(self.created),
            "created_unix": self.created,
            "age_days": self.age_days(now),
            "classification": self.classification,
            "stored_deks": self.stored,
            "blocked": self.blocked,
            "origin": self.origin,
        })
    }
}

fn vendor_mechanism(ty: CK_ULONG) -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty)?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

fn ulong_attr(ty: CK_ULONG, value: CK_ULONG) -> Attribute {
    Attribute::VendorDefined((AttributeType::VendorDefined(ty), value.to_ne_bytes().to_vec()))
}

fn as_ulong(bytes: &[u8]) -> Res<CK_ULONG> {
    let raw = bytes.try_into().map_err(|_| Failure("the module returned a malformed CK_ULONG attribute".into()))?;
    Ok(CK_ULONG::from_ne_bytes(raw))
}

/// Reads a master key object's version, lifecycle, creation time and classification.
fn read_version(s: &Session, h: ObjectHandle) -> Res<Version> {
    let wanted = [
        CKA_CV_KEY_VERSION,
        CKA_CV_LIFECYCLE,
        CKA_CV_CREATED,
        CKA_CV_CLASSIFICATION,
        CKA_CV_STORED_RECORDS,
        CKA_CV_BLOCKED,
        CKA_CV_ORIGIN,
    ];
    let types: Vec<AttributeType> = wanted.iter().map(|t| AttributeType::VendorDefined(*t)).collect();
    let mut v = Version {
        number: 0,
        state: 0,
        created: 0,
        classification: String::new(),
        stored: 0,
        blocked: false,
        origin: String::new(),
    };
    for attr in s.get_attributes(h, &types)? {
        let Attribute::VendorDefined((AttributeType::VendorDefined(ty), bytes)) = attr else { continue };
        match ty {
            CKA_CV_KEY_VERSION => {
                v.number = u32::try_from(as_ulong(&bytes)?).map_err(|_| Failure("version out of range".into()))?
            }
            CKA_CV_LIFECYCLE => v.state = as_ulong(&bytes)?,
            CKA_CV_CREATED => v.created = as_ulong(&bytes)?,
            CKA_CV_STORED_RECORDS => v.stored = as_ulong(&bytes)?,
            CKA_CV_BLOCKED => v.blocked = bytes.first().is_some_and(|b| *b != 0),
            CKA_CV_ORIGIN => v.origin = String::from_utf8_lossy(&bytes).into_owned(),
            _ => v.classification = String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
    Ok(v)
}

/// Every master key version of the session's workspace, oldest first.
pub(crate) fn versions(s: &Session) -> Res<Vec<(ObjectHandle, Version)>> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        ulong_attr(CKA_CV_ROLE, CV_ROLE_MASTER),
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_CURRENT), vec![0])),
    ];
    let mut out = Vec::new();
    for h in s.find_objects(&template)? {
        out.push((h, read_version(s, h)?));
    }
    out.sort_by_key(|(_, v)| v.number);
    Ok(out)
}

/// The object that stands for the current master key, and its version.
pub(crate) fn current(s: &Session) -> Res<(ObjectHandle, Version)> {
    let found = s.find_objects(&[Attribute::Label(CURRENT_LABEL.as_bytes().to_vec())])?;
    let Some(h) = found.first() else {
        return fail("the workspace has no current master key");
    };
    Ok((*h, read_version(s, *h)?))
}

/// Whether the current version is older than the schedule, and a sentence saying so.
fn due(v: &Version, schedule: Option<u64>, now: u64) -> (bool, String) {
    rotation_due(v.number, v.created, schedule, now)
}

pub(crate) fn cmd_init(t: &Tool, label: &str) -> Res<()> {
    let Some(ws) = t.global.workspace.clone() else {
        return fail("token init needs a workspace: cvault token init --workspace NAME --label L");
    };
    let slot = t.slot(&ws)?;
    let so = t.pins.so(&ws)?;
    t.pkcs11.init_token(slot, &so, label)?;
    let session = t.pkcs11.open_rw_session(slot)?;
    session.login(UserType::So, Some(&so))?;
    session.init_pin(&t.pins.new_user(&ws)?)?;
    drop(session);
    let model = t.pkcs11.get_token_info(slot)?.model().trim_end().to_string();
    if t.global.json() {
        print_json(&json!({"workspace": ws, "label": label, "slot": slot.id(), "model": model, "user_pin_set": true}));
    } else {
        println!("workspace {ws}: token {label:?} initialized on slot {} ({model}), user PIN set", slot.id());
        // Provisioning is when a recovery kit should be made (doc/recovery.md).
        println!(
            "  next: a recovery kit, kept apart from backups: cvault kit export --workspace {ws} --out FILE \
             --factor-module PATH --factor-token LABEL"
        );
    }
    Ok(())
}

pub(crate) fn cmd_status(t: &Tool, drills: &[(String, Value)]) -> Res<()> {
    let now = now();
    let text = !t.global.json();
    let mut out = Vec::new();
    // C_GetInfo's description ends with the crypto backend in parentheses.
    let description = t.pkcs11.get_library_info()?.library_description().trim_end().to_string();
    let backend = description.rsplit_once('(').and_then(|(_, b)| b.strip_suffix(')')).unwrap_or("unknown").to_string();
    if text {
        println!("module: {description}; crypto backend {backend}");
    }
    for w in t.workspaces()? {
        let slot = t.slot(&w.name)?;
        let info = t.pkcs11.get_token_info(slot)?;
        let days = t.schedule(&w);
        let schedule = days.map_or("none".to_string(), |d| format!("every {d} days"));
        let mut entry = json!({
            "workspace": w.name,
            "slot": slot.id(),
            "model": info.model().trim_end(),
            "classification": w.classification,
            "rotation_days": days,
            "initialized": info.token_initialized() && info.user_pin_initialized(),
            "versions": null,
            "rotation_due": null,
            "rotation": null,
            "kit_drill": drills.iter().find(|(n, _)| *n == w.name).map(|(_, d)| d.clone()),
        });
        if text {
            println!(
                "workspace {} (slot {}): {}, classification {}, rotation {schedule}",
                w.name,
                slot.id(),
                info.model().trim_end(),
                w.classification
            );
            if let Some((_, d)) = drills.iter().find(|(n, _)| *n == w.name) {
                println!("  {}", drill_line(d));
            }
        }
        if !info.token_initialized() || !info.user_pin_initialized() {
            if text {
                println!("  not initialized: run `cvault token init --workspace {} --label ...`", w.name);
            }
            out.push(entry);
            continue;
        }
        if !t.pins.available(crate::Who::User) {
            if text {
                println!("  master key versions are visible to the user: set CV_USER_PIN, use --pin-file, or run on a terminal");
            }
            out.push(entry);
            continue;
        }
        let session = t.user_session(&w.name)?;
        let all = versions(&session)?;
        let (_, active) = current(&session)?;
        let (is_due, why) = due(&active, days, now);
        entry["versions"] = all.iter().map(|(_, v)| v.json(now)).collect();
        entry["rotation_due"] = json!(is_due);
        entry["rotation"] = json!(why);
        out.push(entry);
        if !text {
            continue;
        }
        for (_, v) in &all {
            println!(
                "  v{:<3} {:<12} created {}  age {:>4} days  classification {}",
                v.number,
                v.state_name(),
                date(v.created),
                v.age_days(now),
                v.classification
            );
        }
        let count = |s: CK_ULONG| all.iter().filter(|(_, v)| v.state == s).count();
        println!(
            "  {} version(s): {} active, {} decrypt-only, {} retired, {} destroyed; {why}",
            all.len(),
            count(1),
            count(2),
            count(3),
            count(4),
        );
    }
    let backups = crate::backup::status(&t.config);
    if text {
        crate::backup::print_status(&backups);
    } else {
        print_json(&json!({ "crypto_backend": backend, "workspaces": out, "backups": backups }));
    }
    Ok(())
}

pub(crate) fn cmd_list(t: &Tool) -> Res<()> {
    let now = now();
    let mut out = Vec::new();
    for w in t.workspaces()? {
        let session = t.user_session(&w.name)?;
        let all = versions(&session)?;
        if t.global.json() {
            let list: Vec<Value> = all.iter().map(|(_, v)| v.json(now)).collect();
            out.push(json!({"workspace": w.name, "versions": list}));
            continue;
        }
        println!("workspace {}:", w.name);
        println!("  {:<8} {:<13} {:<11} {:<14} {:>11}", "version", "state", "created", "classification", "stored DEKs");
        for (_, v) in all {
            let blocked = if v.blocked { "  BLOCKED by an audit alert" } else { "" };
            let imported = if v.origin == "generated" { String::new() } else { format!("  {}", v.origin) };
            println!(
                "  v{:<7} {:<13} {:<11} {:<14} {:>11}{blocked}{imported}",
                v.number,
                v.state_name(),
                date(v.created),
                v.classification,
                v.stored
            );
        }
        println!("  (records applications keep beside their documents are unknown to the module: not counted)");
    }
    if t.global.json() {
        print_json(&json!({ "workspaces": out }));
    }
    Ok(())
}

pub(crate) fn cmd_rotate(t: &Tool, only_if_due: bool) -> Res<()> {
    let w = t.workspace()?;
    let session = t.user_session(&w.name)?;
    let (_, before) = current(&session)?;
    if only_if_due {
        let (is_due, why) = due(&before, t.schedule(&w), now());
        if !is_due {
            if t.global.json() {
                print_json(&json!({"workspace": w.name, "rotated": false, "active": before.number, "reason": why}));
            } else {
                println!("workspace {}: {why}; nothing rotated", w.name);
            }
            return Ok(());
        }
    }
    let h = session.generate_key(&vendor_mechanism(CKM_CV_ROTATE_MASTER)?, &[])?;
    let after = read_version(&session, h)?;
    if t.global.json() {
        print_json(&json!({
            "workspace": w.name, "rotated": true, "active": after.number, "decrypt_only": before.number,
        }));
        return Ok(());
    }
    println!(
        "workspace {}: rotated: v{} is now active, v{} decrypt-only (new records use v{})",
        w.name, after.number, before.number, after.number
    );
    Ok(())
}

/// Writes `bytes` over `path` so a crash leaves either the old or the new file: a temp
/// file beside it, fsync, rename, fsync of the directory.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.cvault-tmp"))
}

/// The record files of a directory (`*.wrap`), sorted; removes temp files a crash left
/// (saying so on stderr, which `--json` leaves to people).
fn record_files(dir: &Path) -> Res<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Failure(format!("cannot read {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Failure(format!("cannot read {}: {e}", dir.display())))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".cvault-tmp") {
            eprintln!("removing {name}, left by an interrupted run");
            std::fs::remove_file(&path).map_err(|e| Failure(format!("cannot remove {}: {e}", path.display())))?;
        } else if name.ends_with(".wrap") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Re-wraps one record if it is older than `newest`: its old version, or `None` if it was
/// already there.
fn rewrap_one(session: &Session, master: ObjectHandle, ws: &str, newest: u32, path: &Path) -> Res<Option<u32>> {
    let old = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let header = record::parse(&old).map_err(|e| Failure(format!("{} is not a wrap record: {e}", path.display())))?;
    if header.workspace != ws {
        return fail(format!("{} belongs to workspace {:?}, not {ws:?}", path.display(), header.workspace));
    }
    if header.version >= newest {
        return Ok(None);
    }
    let new = session.encrypt(&vendor_mechanism(CKM_CV_REWRAP_RECORD)?, master, &old)?;
    match record::parse(&new) {
        Ok(h) if h.version == newest => {}
        _ => return fail(format!("the module's re-wrap of {} is not a v{newest} record", path.display())),
    }
    replace_file(path, &new).map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    Ok(Some(header.version))
}

pub(crate) fn cmd_rewrap(t: &Tool, dir: &Path) -> Res<()> {
    let w = t.workspace()?;
    let session = t.user_session(&w.name)?;
    let (master, newest) = current(&session)?;
    let files = record_files(dir)?;
    let text = !t.global.json();
    if text {
        println!("re-wrapping {} record(s) in {} to v{}", files.len(), dir.display(), newest.number);
    }
    let (mut moved, mut skipped) = (Vec::new(), 0);
    let bar = crate::progress::bar(files.len(), "re-wrap");
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        match rewrap_one(&session, master, &w.name, newest.number, path) {
            Ok(Some(from)) => {
                if text {
                    bar.suspend(|| println!("  {name}: v{from} -> v{}", newest.number));
                }
                moved.push(json!({"file": name, "from": from}));
            }
            Ok(None) => skipped += 1,
            Err(Failure(why)) => {
                bar.finish_and_clear();
                return fail(format!(
                    "rewrap stopped after {i} of {} record(s): {why}; run it again to resume",
                    files.len()
                ));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if text {
        println!("re-wrapped {}, already at v{}: {skipped}, total {}", moved.len(), newest.number, files.len());
    } else {
        print_json(&json!({
            "workspace": w.name,
            "directory": dir.display().to_string(),
            "version": newest.number,
            "total": files.len(),
            "rewrapped": moved.len(),
            "already_current": skipped,
            "records": moved,
        }));
    }
    Ok(())
}

/// The reason the module logged for this process's last refusal of `function`, if it logs
/// to a file (`C_SetAttributeValue: master key: ... -> CKR_...`).
fn logged_reason(config: &Config, function: &str) -> Option<String> {
    let text = std::fs::read_to_string(config.log_file.as_ref()?).ok()?;
    let ours = format!("collabvault[{}]", std::process::id());
    let line = text.lines().rev().find(|l| l.starts_with(&ours) && l.contains(function))?;
    let (_, after) = line.split_once(&format!("{function}: "))?;
    Some(after.split(" -> ").next().unwrap_or(after).to_string())
}

pub(crate) fn cmd_lifecycle(t: &Tool, n: u32, state: CK_ULONG, verb: &str, done: &str) -> Res<()> {
    let w = t.workspace()?;
    let session = t.user_session(&w.name)?;
    let label = format!("{CURRENT_LABEL}-v{n}");
    let Some(h) = session.find_objects(&[Attribute::Label(label.into_bytes())])?.first().copied() else {
        return fail(format!("workspace {} has no master key v{n}", w.name));
    };
    match session.update_attributes(h, &[ulong_attr(CKA_CV_LIFECYCLE, state)]) {
        Ok(()) => {
            if t.global.json() {
                let state = if state == CV_STATE_RETIRED { "retired" } else { "destroyed" };
                print_json(&json!({"workspace": w.name, "version": n, "state": state}));
            } else {
                println!("workspace {}: master key v{n} {done}", w.name);
            }
            Ok(())
        }
        Err(e) => {
            let why = logged_reason(&t.config, "C_SetAttributeValue").map_or(String::new(), |r| format!(": {r}"));
            fail(format!("{verb} v{n} refused: {}{why}", describe(&e)))
        }
    }
}

/// `recovery kit drill: last <date>, passed, next due <date>` (or overdue, or never).
fn drill_line(d: &Value) -> String {
    let Some(last) = d["last"].as_i64() else {
        return "recovery kit drill: never run (overdue: cvault kit drill --file KIT)".to_string();
    };
    let due = d["next_due"].as_i64().unwrap_or(0);
    let overdue = if d["overdue"].as_bool() == Some(true) { " (OVERDUE)" } else { "" };
    format!(
        "recovery kit drill: last {}, {}, next due {}{overdue}",
        date(u64::try_from(last).unwrap_or(0)),
        d["result"].as_str().unwrap_or("?"),
        date(u64::try_from(due).unwrap_or(0))
    )
}
