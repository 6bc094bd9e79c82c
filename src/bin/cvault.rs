//! `cvault`: the CollabVault admin tool.
//!
//! It is itself a PKCS#11 client of `libcollabvault_pkcs11.so`, loaded through the
//! `cryptoki` crate, and never opens the store: every admin action goes through the same
//! C ABI, policy checks and audit chain as an application's calls, so the tool cannot do
//! anything an application could not, and a refusal it prints is the module's own.
//!
//! The module reads its config from `COLLABVAULT_CONF`; the tool reads the same file (for
//! the workspaces and the `[rotation]` schedule) with the crate's [`Config`]. PINs come
//! from `CV_SO_PIN`/`CV_USER_PIN` or `--pin-file`, never from the command line, where
//! other users could read them.
//!
//! Exit codes: 0 on success, 1 when the module refuses or anything fails (one line on
//! stderr saying what and why).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use collabvault_pkcs11::config::{Config, WorkspaceConfig};
use collabvault_pkcs11::hierarchy::record;
use collabvault_pkcs11::vendor::{
    CKA_CV_CLASSIFICATION, CKA_CV_CREATED, CKA_CV_CURRENT, CKA_CV_KEY_VERSION, CKA_CV_LIFECYCLE, CKA_CV_ROLE,
    CKM_CV_REWRAP_RECORD, CKM_CV_ROTATE_MASTER, CV_ROLE_MASTER, CV_STATE_DESTROYED, CV_STATE_RETIRED,
};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::CK_ULONG;

const USAGE: &str = "\
usage: cvault [--module PATH] [--pin-file FILE] [--workspace NAME] COMMAND
  init --workspace NAME --label L   initialize the workspace's token and set the user PIN
  status                            root, master key versions, ages, rotations due
  list                              master key versions (number, state, created, classification)
  rotate [--due]                    make a new master key version current (--due: only if due)
  rewrap --records DIR              re-wrap every DIR/*.wrap record to the newest version
  retire --version N                version N stops unwrapping (only once superseded)
  destroy --version N               version N's sealed key is deleted (only once retired)
environment: COLLABVAULT_CONF (the module's config), COLLABVAULT_MODULE (the module; default:
  libcollabvault_pkcs11.so beside cvault), CV_SO_PIN, CV_USER_PIN; --pin-file holds
  CV_SO_PIN=... / CV_USER_PIN=... lines and wins over the environment";

/// The label of the object that follows rotation (`src/session/master.rs`).
const CURRENT_LABEL: &str = "collabvault-master";
const DAY: u64 = 86_400;

/// A failure, as the one line `cvault` prints on stderr.
struct Failure(String);

type Res<T> = Result<T, Failure>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(Failure(msg.into()))
}

impl From<P11Error> for Failure {
    fn from(e: P11Error) -> Failure {
        Failure(describe(&e))
    }
}

/// `CKR_ACTION_PROHIBITED (the module's policy refuses this action)` for a PKCS#11 error.
fn describe(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("C_{function:?} returned {} ({})", ckr_name(*rv), meaning(*rv)),
        other => other.to_string(),
    }
}

/// The spec name of a return code (`ActionProhibited` -> `CKR_ACTION_PROHIBITED`).
fn ckr_name(rv: RvError) -> String {
    let mut name = String::from("CKR");
    for c in format!("{rv:?}").chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// What a return code means here, in a few words (the spec's first sentence otherwise).
fn meaning(rv: RvError) -> String {
    let short = match rv {
        RvError::ActionProhibited => "the module's policy refuses this action",
        RvError::PinIncorrect => "wrong PIN",
        RvError::PinLocked => "the PIN is locked after too many failures",
        RvError::UserPinNotInitialized => "the user PIN is not set: run `cvault init`",
        RvError::TokenNotRecognized => "the token is not initialized: run `cvault init`",
        RvError::TokenNotPresent => "the token or its root slot is not present",
        RvError::DeviceError => "the root of trust failed; the module log names the cause",
        RvError::GeneralError => "the module failed; its log names the cause",
        _ => "",
    };
    if !short.is_empty() {
        return short.to_string();
    }
    let spec = rv.to_string();
    spec.split(". ").next().unwrap_or_default().trim_end_matches('.').to_string()
}

/// Command-line arguments, parsed by hand: a command and a few named options.
#[derive(Default)]
struct Args {
    command: String,
    module: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    workspace: Option<String>,
    label: Option<String>,
    version: Option<u32>,
    records: Option<PathBuf>,
    due: bool,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> Res<Args> {
        let mut a = Args::default();
        while let Some(arg) = argv.next() {
            let mut value = || argv.next().ok_or_else(|| Failure(format!("{arg} needs a value")));
            match arg.as_str() {
                "--module" => a.module = Some(value()?.into()),
                "--pin-file" => a.pin_file = Some(value()?.into()),
                "--workspace" => a.workspace = Some(value()?),
                "--label" => a.label = Some(value()?),
                "--records" => a.records = Some(value()?.into()),
                "--version" => {
                    let v = value()?;
                    a.version = Some(v.parse().map_err(|_| Failure(format!("--version {v:?} is not a number")))?);
                }
                "--due" => a.due = true,
                "-h" | "--help" => a.command = "help".into(),
                s if s.starts_with('-') => return fail(format!("unknown option {s}\n{USAGE}")),
                s if a.command.is_empty() => a.command = s.to_string(),
                s => return fail(format!("unexpected argument {s:?}")),
            }
        }
        if a.command.is_empty() {
            return fail(format!("no command\n{USAGE}"));
        }
        Ok(a)
    }
}

/// The SO and user PINs: from the environment, overridden by `--pin-file`.
struct Pins {
    so: Option<String>,
    user: Option<String>,
}

impl Pins {
    fn load(pin_file: Option<&Path>) -> Res<Pins> {
        let mut pins = Pins { so: std::env::var("CV_SO_PIN").ok(), user: std::env::var("CV_USER_PIN").ok() };
        let Some(path) = pin_file else {
            return Ok(pins);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure(format!("cannot read PIN file {}: {e}", path.display())))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            match line.split_once('=') {
                Some(("CV_SO_PIN", pin)) => pins.so = Some(pin.to_string()),
                Some(("CV_USER_PIN", pin)) => pins.user = Some(pin.to_string()),
                _ => return fail(format!("{}: lines must be CV_SO_PIN=... or CV_USER_PIN=...", path.display())),
            }
        }
        Ok(pins)
    }

    fn user(&self) -> Res<AuthPin> {
        let pin = self.user.clone().ok_or_else(|| Failure("no user PIN: set CV_USER_PIN or use --pin-file".into()))?;
        Ok(AuthPin::new(pin.into()))
    }

    fn so(&self) -> Res<AuthPin> {
        let pin = self.so.clone().ok_or_else(|| Failure("no SO PIN: set CV_SO_PIN or use --pin-file".into()))?;
        Ok(AuthPin::new(pin.into()))
    }
}

/// One master key version, as its token object describes it.
struct Version {
    number: u32,
    state: CK_ULONG,
    created: u64,
    classification: String,
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
}

/// The loaded module, the config it reads, and the PINs.
struct Tool {
    pkcs11: Pkcs11,
    config: Config,
    args: Args,
    pins: Pins,
}

fn module_path(args: &Args) -> Res<PathBuf> {
    if let Some(m) = args.module.clone().or_else(|| std::env::var_os("COLLABVAULT_MODULE").map(PathBuf::from)) {
        return Ok(m);
    }
    let exe = std::env::current_exe().map_err(|e| Failure(format!("cannot locate cvault itself: {e}")))?;
    Ok(exe.with_file_name("libcollabvault_pkcs11.so"))
}

impl Tool {
    fn open(args: Args) -> Res<Tool> {
        let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
        let pins = Pins::load(args.pin_file.as_deref())?;
        let path = module_path(&args)?;
        let pkcs11 = Pkcs11::new(&path).map_err(|e| Failure(format!("cannot load {}: {e}", path.display())))?;
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        Ok(Tool { pkcs11, config, args, pins })
    }

    /// The workspaces a command applies to: `--workspace`, else all of them.
    fn workspaces(&self) -> Res<Vec<WorkspaceConfig>> {
        match &self.args.workspace {
            None => Ok(self.config.workspaces.clone()),
            Some(name) => match self.config.workspaces.iter().find(|w| &w.name == name) {
                Some(w) => Ok(vec![w.clone()]),
                None => fail(format!("workspace {name:?} is not in the config")),
            },
        }
    }

    /// The one workspace a changing command applies to.
    fn workspace(&self) -> Res<WorkspaceConfig> {
        let mut all = self.workspaces()?;
        match all.len() {
            1 => Ok(all.remove(0)),
            _ => fail("several workspaces are configured: name one with --workspace"),
        }
    }

    /// The slot whose description is "CollabVault workspace NAME".
    fn slot(&self, workspace: &str) -> Res<Slot> {
        let wanted = format!("CollabVault workspace {workspace}");
        for slot in self.pkcs11.get_all_slots()? {
            if self.pkcs11.get_slot_info(slot)?.slot_description().trim_end() == wanted {
                return Ok(slot);
            }
        }
        fail(format!("the module has no slot for workspace {workspace:?}"))
    }

    fn user_session(&self, workspace: &str) -> Res<Session> {
        let session = self.pkcs11.open_rw_session(self.slot(workspace)?)?;
        session.login(UserType::User, Some(&self.pins.user()?))?;
        Ok(session)
    }

    /// The rotation schedule for a workspace, in days, if `[rotation]` sets one.
    fn schedule(&self, w: &WorkspaceConfig) -> Option<u64> {
        self.config.rotation.max_age_days.get(&w.classification).map(|d| u64::from(*d))
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
    let wanted = [CKA_CV_KEY_VERSION, CKA_CV_LIFECYCLE, CKA_CV_CREATED, CKA_CV_CLASSIFICATION];
    let types: Vec<AttributeType> = wanted.iter().map(|t| AttributeType::VendorDefined(*t)).collect();
    let mut v = Version { number: 0, state: 0, created: 0, classification: String::new() };
    for attr in s.get_attributes(h, &types)? {
        let Attribute::VendorDefined((AttributeType::VendorDefined(ty), bytes)) = attr else { continue };
        match ty {
            CKA_CV_KEY_VERSION => {
                v.number = u32::try_from(as_ulong(&bytes)?).map_err(|_| Failure("version out of range".into()))?
            }
            CKA_CV_LIFECYCLE => v.state = as_ulong(&bytes)?,
            CKA_CV_CREATED => v.created = as_ulong(&bytes)?,
            _ => v.classification = String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
    Ok(v)
}

/// Every master key version of the session's workspace, oldest first.
fn versions(s: &Session) -> Res<Vec<(ObjectHandle, Version)>> {
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
fn current(s: &Session) -> Res<(ObjectHandle, Version)> {
    let found = s.find_objects(&[Attribute::Label(CURRENT_LABEL.as_bytes().to_vec())])?;
    let Some(h) = found.first() else {
        return fail("the workspace has no current master key");
    };
    Ok((*h, read_version(s, *h)?))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DD` (UTC) for Unix seconds: the civil-from-days algorithm (H. Hinnant).
fn date(secs: u64) -> String {
    let days = i64::try_from(secs / DAY).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Whether the current version is older than the schedule, and a sentence saying so.
fn due(v: &Version, schedule: Option<u64>, now: u64) -> (bool, String) {
    let age = v.age_days(now);
    match schedule {
        None => (false, "no rotation schedule for its classification".into()),
        Some(days) if now.saturating_sub(v.created) >= days * DAY => {
            (true, format!("rotation DUE (v{} is {age} days old, schedule {days} days)", v.number))
        }
        Some(days) => {
            (false, format!("rotation not due (v{} is {age} days old, due in {} days)", v.number, days - age))
        }
    }
}

fn cmd_init(t: &Tool) -> Res<()> {
    let Some(ws) = t.args.workspace.clone() else { return fail("init needs --workspace NAME") };
    let Some(label) = t.args.label.clone() else { return fail("init needs --label L") };
    let slot = t.slot(&ws)?;
    let so = t.pins.so()?;
    t.pkcs11.init_token(slot, &so, &label)?;
    let session = t.pkcs11.open_rw_session(slot)?;
    session.login(UserType::So, Some(&so))?;
    session.init_pin(&t.pins.user()?)?;
    drop(session);
    let model = t.pkcs11.get_token_info(slot)?.model().trim_end().to_string();
    println!("workspace {ws}: token {label:?} initialized on slot {} ({model}), user PIN set", slot.id());
    Ok(())
}

fn cmd_status(t: &Tool) -> Res<()> {
    let now = now();
    for w in t.workspaces()? {
        let slot = t.slot(&w.name)?;
        let info = t.pkcs11.get_token_info(slot)?;
        let schedule = t.schedule(&w).map_or("none".to_string(), |d| format!("every {d} days"));
        println!(
            "workspace {} (slot {}): {}, classification {}, rotation {schedule}",
            w.name,
            slot.id(),
            info.model().trim_end(),
            w.classification
        );
        if !info.token_initialized() || !info.user_pin_initialized() {
            println!("  not initialized: run `cvault init --workspace {} --label ...`", w.name);
            continue;
        }
        if t.pins.user.is_none() {
            println!("  master key versions are visible to the user: set CV_USER_PIN or use --pin-file");
            continue;
        }
        let session = t.user_session(&w.name)?;
        let all = versions(&session)?;
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
        let (_, active) = current(&session)?;
        let count = |s: CK_ULONG| all.iter().filter(|(_, v)| v.state == s).count();
        println!(
            "  {} version(s): {} active, {} decrypt-only, {} retired, {} destroyed; {}",
            all.len(),
            count(1),
            count(2),
            count(3),
            count(4),
            due(&active, t.schedule(&w), now).1
        );
    }
    Ok(())
}

fn cmd_list(t: &Tool) -> Res<()> {
    for w in t.workspaces()? {
        let session = t.user_session(&w.name)?;
        println!("workspace {}:", w.name);
        println!("  {:<8} {:<13} {:<11} classification", "version", "state", "created");
        for (_, v) in versions(&session)? {
            println!("  v{:<7} {:<13} {:<11} {}", v.number, v.state_name(), date(v.created), v.classification);
        }
        println!("  records: held by applications beside their documents; the module keeps no count of them");
    }
    Ok(())
}

fn cmd_rotate(t: &Tool) -> Res<()> {
    let w = t.workspace()?;
    let session = t.user_session(&w.name)?;
    let (_, before) = current(&session)?;
    if t.args.due {
        let (is_due, why) = due(&before, t.schedule(&w), now());
        if !is_due {
            println!("workspace {}: {why}; nothing rotated", w.name);
            return Ok(());
        }
    }
    let h = session.generate_key(&vendor_mechanism(CKM_CV_ROTATE_MASTER)?, &[])?;
    let after = read_version(&session, h)?;
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

/// The record files of a directory (`*.wrap`), sorted; removes temp files a crash left.
fn record_files(dir: &Path) -> Res<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Failure(format!("cannot read {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Failure(format!("cannot read {}: {e}", dir.display())))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".cvault-tmp") {
            println!("removing {name}, left by an interrupted run");
            std::fs::remove_file(&path).map_err(|e| Failure(format!("cannot remove {}: {e}", path.display())))?;
        } else if name.ends_with(".wrap") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Re-wraps one record if it is older than `newest`; `Ok(false)` if it was already there.
fn rewrap_one(session: &Session, master: ObjectHandle, ws: &str, newest: u32, path: &Path) -> Res<bool> {
    let old = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let header = record::parse(&old).map_err(|e| Failure(format!("{} is not a wrap record: {e}", path.display())))?;
    if header.workspace != ws {
        return fail(format!("{} belongs to workspace {:?}, not {ws:?}", path.display(), header.workspace));
    }
    if header.version >= newest {
        return Ok(false);
    }
    let new = session.encrypt(&vendor_mechanism(CKM_CV_REWRAP_RECORD)?, master, &old)?;
    match record::parse(&new) {
        Ok(h) if h.version == newest => {}
        _ => return fail(format!("the module's re-wrap of {} is not a v{newest} record", path.display())),
    }
    replace_file(path, &new).map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    println!("  {}: v{} -> v{newest}", path.file_name().unwrap_or_default().to_string_lossy(), header.version);
    Ok(true)
}

fn cmd_rewrap(t: &Tool) -> Res<()> {
    let Some(dir) = t.args.records.clone() else { return fail("rewrap needs --records DIR") };
    let w = t.workspace()?;
    let session = t.user_session(&w.name)?;
    let (master, newest) = current(&session)?;
    let files = record_files(&dir)?;
    println!("re-wrapping {} record(s) in {} to v{}", files.len(), dir.display(), newest.number);
    let (mut moved, mut skipped) = (0, 0);
    for (i, path) in files.iter().enumerate() {
        match rewrap_one(&session, master, &w.name, newest.number, path) {
            Ok(true) => moved += 1,
            Ok(false) => skipped += 1,
            Err(Failure(why)) => {
                return fail(format!(
                    "rewrap stopped after {i} of {} record(s): {why}; run it again to resume",
                    files.len()
                ))
            }
        }
    }
    println!("re-wrapped {moved}, already at v{}: {skipped}, total {}", newest.number, files.len());
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

fn cmd_lifecycle(t: &Tool, state: CK_ULONG, verb: &str, done: &str) -> Res<()> {
    let Some(n) = t.args.version else { return fail(format!("{verb} needs --version N")) };
    let w = t.workspace()?;
    let session = t.user_session(&w.name)?;
    let label = format!("{CURRENT_LABEL}-v{n}");
    let Some(h) = session.find_objects(&[Attribute::Label(label.into_bytes())])?.first().copied() else {
        return fail(format!("workspace {} has no master key v{n}", w.name));
    };
    match session.update_attributes(h, &[ulong_attr(CKA_CV_LIFECYCLE, state)]) {
        Ok(()) => {
            println!("workspace {}: master key v{n} {done}", w.name);
            Ok(())
        }
        Err(e) => {
            let why = logged_reason(&t.config, "C_SetAttributeValue").map_or(String::new(), |r| format!(": {r}"));
            fail(format!("{verb} v{n} refused: {}{why}", describe(&e)))
        }
    }
}

fn dispatch(t: &Tool) -> Res<()> {
    match t.args.command.as_str() {
        "init" => cmd_init(t),
        "status" => cmd_status(t),
        "list" => cmd_list(t),
        "rotate" => cmd_rotate(t),
        "rewrap" => cmd_rewrap(t),
        "retire" => cmd_lifecycle(t, CV_STATE_RETIRED, "retire", "retired: it no longer unwraps"),
        "destroy" => cmd_lifecycle(t, CV_STATE_DESTROYED, "destroy", "destroyed: its sealed key is deleted"),
        other => fail(format!("unknown command {other:?}\n{USAGE}")),
    }
}

fn run() -> Res<()> {
    let args = Args::parse(std::env::args().skip(1))?;
    if args.command == "help" {
        println!("{USAGE}");
        return Ok(());
    }
    let tool = Tool::open(args)?;
    let result = dispatch(&tool);
    // Finalizing lets the module finalize the root's module (SoftHSM2) cleanly.
    let finalized = tool.pkcs11.finalize();
    result?;
    Ok(finalized?)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(why)) => {
            eprintln!("cvault: {why}");
            ExitCode::FAILURE
        }
    }
}
