//! `cvault`: the CollabVault admin tool.
//!
//! The master key commands (`masters.rs`) make it a PKCS#11 client of
//! `libcollabvault_pkcs11.so`, loaded through the `cryptoki` crate: every admin action
//! goes through the same C ABI, policy checks and audit chain as an application's calls,
//! so the tool cannot do anything an application could not, and a refusal it prints is
//! the module's own. The audit commands (`audit.rs`) are the one exception, by design:
//! they only read, and they open the store directly, so a verifier needs neither PINs
//! nor a working module (nor can a broken module hide its log from them).
//!
//! The module reads its config from `COLLABVAULT_CONF`; the tool reads the same file (for
//! the workspaces, the store directory and the `[rotation]` schedule) with the crate's
//! [`Config`]. PINs come from `CV_SO_PIN`/`CV_USER_PIN` or `--pin-file`, never from the
//! command line, where other users could read them.
//!
//! Exit codes: 0 on success, 1 when the module refuses or anything fails (one line on
//! stderr saying what and why), and 1 when `audit verify` finds the log broken.

// The tool's modules live in `src/bin/cvault/` (a binary's root file does not look there
// on its own).
#[path = "cvault/audit.rs"]
mod audit;
#[path = "cvault/masters.rs"]
mod masters;
#[path = "cvault/time.rs"]
mod time;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use collabvault_pkcs11::config::{Config, WorkspaceConfig};
use collabvault_pkcs11::vendor::{CV_STATE_DESTROYED, CV_STATE_RETIRED};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

const USAGE: &str = "\
usage: cvault [--module PATH] [--pin-file FILE] [--workspace NAME] COMMAND
  init --workspace NAME --label L   initialize the workspace's token and set the user PIN
  status                            root, master key versions, ages, rotations due
  list                              master key versions (number, state, created, classification)
  rotate [--due]                    make a new master key version current (--due: only if due)
  rewrap --records DIR              re-wrap every DIR/*.wrap record to the newest version
  retire --version N                version N stops unwrapping (only once superseded)
  destroy --version N               version N's sealed key is deleted (only once retired)
  audit verify                      prove the audit log intact, or name its first bad entry (exit 1)
  audit export [--since T] [--until T] [--key TEXT]
                                    entries as JSON lines; T: RFC 3339 or Unix ms; TEXT: part of the
                                    entry's object (a CKA_UNIQUE_ID, a label, wmk v2)
  audit report                      per workspace: operations per object and last use, master key
                                    versions and rotation age, failed logins, alerts, refusals
  audit key                         the audit public key that verifies the signed checkpoints (PEM)
  (the audit commands read the store named by the config and need no token PIN; with a [root]
   they read the checkpoint head and audit key from the root token, with its configured PIN)
environment: COLLABVAULT_CONF (the module's config), COLLABVAULT_MODULE (the module; default:
  libcollabvault_pkcs11.so beside cvault), CV_SO_PIN, CV_USER_PIN; --pin-file holds
  CV_SO_PIN=... / CV_USER_PIN=... lines and wins over the environment";

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

/// Command-line arguments, parsed by hand: a command (with a subcommand for `audit`) and a
/// few named options.
#[derive(Default)]
struct Args {
    command: String,
    subcommand: Option<String>,
    module: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    workspace: Option<String>,
    label: Option<String>,
    version: Option<u32>,
    records: Option<PathBuf>,
    due: bool,
    since: Option<String>,
    until: Option<String>,
    key: Option<String>,
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
                "--since" => a.since = Some(value()?),
                "--until" => a.until = Some(value()?),
                "--key" => a.key = Some(value()?),
                "-h" | "--help" => a.command = "help".into(),
                s if s.starts_with('-') => return fail(format!("unknown option {s}\n{USAGE}")),
                s if a.command.is_empty() => a.command = s.to_string(),
                s if a.command == "audit" && a.subcommand.is_none() => a.subcommand = Some(s.to_string()),
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

/// The loaded module, the config it reads, and the PINs.
struct Tool {
    pkcs11: Pkcs11,
    config: Config,
    args: Args,
    pins: Pins,
}

const MODULE_FILE: &str = "libcollabvault_pkcs11.so";

/// The module: `--module`, else `COLLABVAULT_MODULE`, else beside `cvault` (a build tree),
/// else the multiarch PKCS#11 directory of the prefix `cvault` is installed in, where the
/// Debian package puts it (`/usr/bin/cvault`, `/usr/lib/x86_64-linux-gnu/pkcs11/`).
fn module_path(args: &Args) -> Res<PathBuf> {
    if let Some(m) = args.module.clone().or_else(|| std::env::var_os("COLLABVAULT_MODULE").map(PathBuf::from)) {
        return Ok(m);
    }
    let exe = std::env::current_exe().map_err(|e| Failure(format!("cannot locate cvault itself: {e}")))?;
    let beside = exe.with_file_name(MODULE_FILE);
    let installed = exe.parent().and_then(Path::parent).map(|prefix| {
        prefix.join("lib").join(format!("{}-linux-gnu", std::env::consts::ARCH)).join("pkcs11").join(MODULE_FILE)
    });
    match installed {
        Some(path) if !beside.exists() && path.exists() => Ok(path),
        Some(path) if !beside.exists() => fail(format!(
            "no module at {} or {}: set COLLABVAULT_MODULE or use --module",
            beside.display(),
            path.display()
        )),
        _ => Ok(beside),
    }
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

fn dispatch(t: &Tool) -> Res<()> {
    match t.args.command.as_str() {
        "init" => masters::cmd_init(t),
        "status" => masters::cmd_status(t),
        "list" => masters::cmd_list(t),
        "rotate" => masters::cmd_rotate(t),
        "rewrap" => masters::cmd_rewrap(t),
        "retire" => masters::cmd_lifecycle(t, CV_STATE_RETIRED, "retire", "retired: it no longer unwraps"),
        "destroy" => masters::cmd_lifecycle(t, CV_STATE_DESTROYED, "destroy", "destroyed: its sealed key is deleted"),
        other => fail(format!("unknown command {other:?}\n{USAGE}")),
    }
}

fn run() -> Res<ExitCode> {
    let args = Args::parse(std::env::args().skip(1))?;
    match args.command.as_str() {
        "help" => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        // Read-only, from the store itself: no module, no PIN.
        "audit" => {
            let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
            return audit::run(&config, &args);
        }
        _ => {}
    }
    let tool = Tool::open(args)?;
    let result = dispatch(&tool);
    // Finalizing lets the module finalize the root's module (SoftHSM2) cleanly.
    let finalized = tool.pkcs11.finalize();
    result?;
    finalized?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(Failure(why)) => {
            eprintln!("cvault: {why}");
            ExitCode::FAILURE
        }
    }
}
