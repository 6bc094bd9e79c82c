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
//! [`Config`]. PINs come from `--pin-file`, `CV_SO_PIN`/`CV_USER_PIN`, or a no-echo prompt
//! on a terminal, never from the command line, where other users could read them.
//!
//! The command line (`cli.rs`) is clap's: commands grouped as `token`, `master` and
//! `audit`, plus `completions` and `man` for packagers. The flat commands of earlier
//! versions (`cvault rotate`) are answered with the form to type now.
//!
//! Exit codes: 0 on success, 1 when the module refuses or anything fails (one line on
//! stderr saying what and why), 1 when `audit verify` finds the log broken, and 2 on a
//! usage error.

// The tool's modules live in `src/bin/cvault/` (a binary's root file does not look there
// on its own).
#[path = "cvault/audit.rs"]
mod audit;
#[path = "cvault/backup.rs"]
mod backup;
#[path = "cvault/byok.rs"]
mod byok;
#[path = "cvault/cli.rs"]
mod cli;
#[path = "cvault/custodian_token.rs"]
mod custodian_token;
#[path = "cvault/hold.rs"]
mod hold;
#[path = "cvault/inventory.rs"]
mod inventory;
#[path = "cvault/kit.rs"]
mod kit;
#[path = "cvault/masters.rs"]
mod masters;
#[path = "cvault/progress.rs"]
mod progress;
#[path = "cvault/quorum.rs"]
mod quorum;
#[path = "cvault/recover.rs"]
mod recover;
#[path = "cvault/root.rs"]
mod root;
#[path = "cvault/store.rs"]
mod store;
#[path = "cvault/time.rs"]
mod time;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use collabvault_pkcs11::config::{Config, WorkspaceConfig};
use collabvault_pkcs11::vendor::{CV_STATE_DESTROYED, CV_STATE_RETIRED};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use clap::{CommandFactory, Parser};
use cli::{
    Cli, Command, CustodiansCommand, EmergencyCommand, Global, HoldCommand, MasterCommand, QuorumCommand, RootCommand,
    StoreCommand, TokenCommand, MOVED,
};

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
    if let RvError::VendorDefined(code) = rv {
        return collabvault_pkcs11::names::rv_name(code);
    }
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
        RvError::UserPinNotInitialized => "the user PIN is not set: run `cvault token init`",
        RvError::TokenNotRecognized => "the token is not initialized: run `cvault token init`",
        RvError::TokenNotPresent => "the token or its root slot is not present",
        RvError::DeviceError => "the root of trust failed; the module log names the cause",
        RvError::GeneralError => "the module failed; its log names the cause",
        RvError::VendorDefined(collabvault_pkcs11::vendor::CKR_CV_LOCKED) => {
            "the master keys are locked until a quorum of custodians unlocks them (cvault unlock)"
        }
        RvError::VendorDefined(collabvault_pkcs11::vendor::CKR_CV_QUORUM_REQUIRED) => {
            "the custodians must approve this first (cvault quorum status)"
        }
        RvError::VendorDefined(collabvault_pkcs11::vendor::CKR_CV_QUORUM_FAILED) => {
            "the approved shares do not rebuild the key-encryption key"
        }
        RvError::VendorDefined(collabvault_pkcs11::vendor::CKR_CV_LEGAL_HOLD) => "the workspace is under a legal hold",
        _ => "",
    };
    if !short.is_empty() {
        return short.to_string();
    }
    let spec = rv.to_string();
    spec.split(". ").next().unwrap_or_default().trim_end_matches('.').to_string()
}

/// The SO and user PINs: from `--pin-file`, else the environment, else (on a terminal) a
/// prompt that does not echo. Never from argv, where other users could read them.
struct Pins {
    so: RefCell<Option<Zeroizing<String>>>,
    user: RefCell<Option<Zeroizing<String>>>,
    /// Whether a missing PIN may be asked for: stdin is a terminal.
    can_prompt: bool,
}

/// Which PIN, for prompts and messages.
#[derive(Clone, Copy)]
enum Who {
    So,
    User,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::So => "SO PIN",
            Who::User => "user PIN",
        }
    }

    fn variable(self) -> &'static str {
        match self {
            Who::So => "CV_SO_PIN",
            Who::User => "CV_USER_PIN",
        }
    }
}

impl Pins {
    fn load(pin_file: Option<&Path>) -> Res<Pins> {
        let env = |name: &str| std::env::var(name).ok().filter(|p| !p.is_empty()).map(Zeroizing::new);
        let pins = Pins {
            so: RefCell::new(env("CV_SO_PIN")),
            user: RefCell::new(env("CV_USER_PIN")),
            can_prompt: std::io::stdin().is_terminal(),
        };
        let Some(path) = pin_file else {
            return Ok(pins);
        };
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| Failure(format!("cannot read PIN file {}: {e}", path.display())))?,
        );
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            match line.split_once('=') {
                Some(("CV_SO_PIN", pin)) => *pins.so.borrow_mut() = Some(Zeroizing::new(pin.to_string())),
                Some(("CV_USER_PIN", pin)) => *pins.user.borrow_mut() = Some(Zeroizing::new(pin.to_string())),
                _ => return fail(format!("{}: lines must be CV_SO_PIN=... or CV_USER_PIN=...", path.display())),
            }
        }
        Ok(pins)
    }

    fn slot(&self, who: Who) -> &RefCell<Option<Zeroizing<String>>> {
        match who {
            Who::So => &self.so,
            Who::User => &self.user,
        }
    }

    /// Whether the PIN is known or can be asked for.
    fn available(&self, who: Who) -> bool {
        self.can_prompt || self.slot(who).borrow().is_some()
    }

    /// The PIN, asked for once on the terminal if neither the file nor the environment
    /// gave it. `confirm` asks twice (a PIN being set, where a typo would lock one out).
    fn get(&self, who: Who, workspace: &str, confirm: bool) -> Res<AuthPin> {
        if let Some(pin) = self.slot(who).borrow().as_ref() {
            return Ok(AuthPin::new(pin.as_str().into()));
        }
        if !self.can_prompt {
            return fail(format!(
                "no {}: set {} or use --pin-file (or run cvault on a terminal to be asked)",
                who.name(),
                who.variable()
            ));
        }
        let ask = |prompt: String| {
            rpassword::prompt_password(prompt)
                .map(Zeroizing::new)
                .map_err(|e| Failure(format!("cannot read the {} from the terminal: {e}", who.name())))
        };
        let pin = ask(format!("{} for workspace {workspace}: ", who.name()))?;
        if confirm && ask(format!("{} again: ", who.name()))? != pin {
            return fail(format!("the two {}s differ; nothing was changed", who.name()));
        }
        if pin.is_empty() {
            return fail(format!("empty {}", who.name()));
        }
        let auth = AuthPin::new(pin.as_str().into());
        *self.slot(who).borrow_mut() = Some(pin);
        Ok(auth)
    }

    /// The user PIN itself, for the library code that logs in to a restored copy without
    /// the module (`backup verify`).
    fn user_secret(&self, workspace: &str) -> Res<Zeroizing<String>> {
        self.get(Who::User, workspace, false)?;
        Ok(self.user.borrow().clone().unwrap_or_default())
    }

    /// A PIN itself, for library code run without the module (`recover` sets both PINs:
    /// `confirm` asks twice when prompted).
    fn secret(&self, who: Who, workspace: &str, confirm: bool) -> Res<Zeroizing<String>> {
        self.get(who, workspace, confirm)?;
        Ok(self.slot(who).borrow().clone().unwrap_or_default())
    }

    fn user(&self, workspace: &str) -> Res<AuthPin> {
        self.get(Who::User, workspace, false)
    }

    fn so(&self, workspace: &str) -> Res<AuthPin> {
        self.get(Who::So, workspace, false)
    }

    /// A user PIN about to be set (`token init`): asked twice when prompted.
    fn new_user(&self, workspace: &str) -> Res<AuthPin> {
        self.get(Who::User, workspace, true)
    }
}

/// The loaded module, the config it reads, and the PINs.
struct Tool {
    pkcs11: Pkcs11,
    config: Config,
    global: Global,
    pins: Pins,
}

const MODULE_FILE: &str = "libcollabvault_pkcs11.so";

/// The module: `--module` (or `COLLABVAULT_MODULE`), else beside `cvault` (a build tree),
/// else the multiarch PKCS#11 directory of the prefix `cvault` is installed in, where the
/// Debian package puts it (`/usr/bin/cvault`, `/usr/lib/x86_64-linux-gnu/pkcs11/`).
fn module_path(global: &Global) -> Res<PathBuf> {
    // clap already read COLLABVAULT_MODULE into --module.
    if let Some(m) = global.module.clone() {
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
    fn open(global: Global) -> Res<Tool> {
        let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
        let pins = Pins::load(global.pin_file.as_deref())?;
        let path = module_path(&global)?;
        let pkcs11 = Pkcs11::new(&path).map_err(|e| Failure(format!("cannot load {}: {e}", path.display())))?;
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        Ok(Tool { pkcs11, config, global, pins })
    }

    /// The workspaces a command applies to: `--workspace`, else all of them.
    fn workspaces(&self) -> Res<Vec<WorkspaceConfig>> {
        match &self.global.workspace {
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
        session.login(UserType::User, Some(&self.pins.user(workspace)?))?;
        Ok(session)
    }

    /// Finalizes the module (so it finalizes the root's), before the store is opened
    /// directly in this process.
    fn close(self) {
        if let Err(e) = self.pkcs11.finalize() {
            eprintln!("cvault: C_Finalize: {}", describe(&e));
        }
    }

    /// The rotation schedule for a workspace, in days, if `[rotation]` sets one.
    fn schedule(&self, w: &WorkspaceConfig) -> Option<u64> {
        self.config.rotation.max_age_days.get(&w.classification).map(|d| u64::from(*d))
    }
}

fn dispatch(t: &Tool, command: Command, token_secrets: &custodian_token::Secrets) -> Res<()> {
    match command {
        Command::Token(TokenCommand::Init { label }) => masters::cmd_init(t, &label),
        Command::Token(TokenCommand::Status) => fail("internal: status reads the store first"),
        Command::Master(MasterCommand::List) => masters::cmd_list(t),
        Command::Master(MasterCommand::Rotate { due }) => masters::cmd_rotate(t, due),
        Command::Master(MasterCommand::Rewrap { records }) => masters::cmd_rewrap(t, &records),
        Command::Master(MasterCommand::Retire { version }) => {
            masters::cmd_lifecycle(t, version, CV_STATE_RETIRED, "retire", "retired: it no longer unwraps")
        }
        Command::Master(MasterCommand::Destroy { version }) => {
            masters::cmd_lifecycle(t, version, CV_STATE_DESTROYED, "destroy", "destroyed: its sealed key is deleted")
        }
        Command::Custodians(CustodiansCommand::Init { threshold, custodians, .. }) => {
            quorum::cmd_init(t, threshold, &custodians, token_secrets)
        }
        Command::Custodians(CustodiansCommand::Add { .. } | CustodiansCommand::Remove { .. }) => {
            fail("internal: a change of custodians reads the store first")
        }
        Command::Quorum(QuorumCommand::Approve { request, custodians, .. }) => {
            quorum::cmd_approve(t, request, &custodians, token_secrets)
        }
        Command::Unlock { custodians, .. } => quorum::cmd_approve(t, None, &custodians, token_secrets),
        Command::Quorum(QuorumCommand::Request { action, version, user, expires_hours, so }) => {
            let action = quorum::RequestedAction::parse(&action, version, user.as_deref())?;
            quorum::cmd_request(t, &action, expires_hours, so)
        }
        Command::Quorum(QuorumCommand::Cancel { request, so }) => quorum::cmd_cancel(t, request, so),
        Command::Master(MasterCommand::ImportKey { kind, out, label }) => byok::cmd_import_key(t, kind, &out, &label),
        Command::Master(MasterCommand::Import { wrapped, import_key }) => byok::cmd_import(t, &wrapped, &import_key),
        Command::Hold(HoldCommand::Set { reason }) => hold::cmd_hold(t, true, reason.as_deref()),
        Command::Hold(HoldCommand::Lift) => hold::cmd_hold(t, false, None),
        Command::Lock => quorum::cmd_lock(t),
        Command::Emergency(EmergencyCommand::Open { name }) => quorum::cmd_emergency(t, Some(&name)),
        Command::Emergency(EmergencyCommand::Close) => quorum::cmd_emergency(t, None),
        Command::Audit(_)
        | Command::Backup(_)
        | Command::Store(_)
        | Command::Kit(_)
        | Command::Recover { .. }
        | Command::Root(_)
        | Command::Custodians(CustodiansCommand::List)
        | Command::Quorum(QuorumCommand::Status)
        | Command::Completions { .. }
        | Command::Man { .. } => fail("internal: this command does not use the module"),
    }
}

/// Prints a `--json` document on stdout.
fn print_json(value: &serde_json::Value) {
    // Serializing a Value cannot fail; an empty line would still be noticed by a parser.
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// `cvault man DIR`: cvault.1 and one page per subcommand (cvault-master-rotate.1, ...).
fn write_man_pages(dir: &Path) -> Res<ExitCode> {
    let cannot = |e: std::io::Error| Failure(format!("cannot write man pages to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(cannot)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(cannot)?;
    Ok(ExitCode::SUCCESS)
}

/// The command line to type now for one of the flat commands cvault had before the
/// groups (`cvault rotate --due` -> `cvault master rotate --due`), if `argv` uses one.
fn moved_command(argv: &[String]) -> Option<String> {
    let (at, new) = argv
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(i, a)| MOVED.iter().find(|(old, _)| old == a).map(|(_, new)| (i, *new)))?;
    // Only if it stands where a command would: every argument before it is an option or
    // an option's value.
    if !argv[1..at].iter().enumerate().all(|(i, a)| a.starts_with('-') || argv[i].starts_with("--")) {
        return None;
    }
    let mut words: Vec<&str> = vec!["cvault"];
    words.extend(argv[1..at].iter().map(String::as_str));
    words.push(new);
    words.extend(argv[at + 1..].iter().map(String::as_str));
    Some(words.join(" "))
}

fn parse() -> Result<Cli, ExitCode> {
    let argv: Vec<String> = std::env::args().collect();
    match Cli::try_parse_from(&argv) {
        Ok(cli) => Ok(cli),
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => match moved_command(&argv) {
            Some(now) => {
                eprintln!("cvault: the command moved into a group: type `{now}` (see `cvault --help`)");
                Err(ExitCode::from(2))
            }
            None => Err(exit_for(&e)),
        },
        Err(e) => Err(exit_for(&e)),
    }
}

/// Prints clap's message (help, version or a usage error) and returns its exit code.
fn exit_for(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

fn run(cli: Cli) -> Res<ExitCode> {
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cvault", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man { dir } => return write_man_pages(&dir),
        // Read-only, from the store itself: no module, no PIN.
        Command::Audit(command) => {
            let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
            return audit::run(&config, &command, &cli.global);
        }
        // Of the store file itself, with the module's root slot: no module loaded.
        Command::Backup(command) => {
            let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
            return backup::run(&config, &command, &cli.global);
        }
        // Between stores, with no module loaded.
        Command::Store(StoreCommand::Migrate { to, password_env, password_file }) => {
            let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
            let pw = store::TargetPassword { env: password_env, file: password_file };
            return store::migrate(&config, &to, &pw, cli.global.json());
        }
        Command::Custodians(CustodiansCommand::List) | Command::Quorum(QuorumCommand::Status) => {
            let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
            let only = matches!(cli.command, Command::Custodians(_));
            quorum::cmd_status(&config, &cli.global, only)?;
            return Ok(ExitCode::SUCCESS);
        }
        // Each loads the module itself, after the second-factor token's module is done.
        Command::Kit(command) => return kit::run(cli.global, command),
        // The store and the new root token directly, with no module loaded.
        Command::Recover { kit, factor, secret, batch } => {
            return recover::run(&cli.global, &kit, &factor, &secret, batch)
        }
        // The root's slots and the store directly, with no module loaded.
        Command::Root(RootCommand::Reshare) => return root::reshare(&cli.global),
        _ => {}
    }
    if matches!(cli.command, Command::Token(TokenCommand::Status)) {
        let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
        let drills = kit::drill_status(&config);
        let tool = Tool::open(cli.global)?;
        let result = masters::cmd_status(&tool, &drills);
        let finalized = tool.pkcs11.finalize();
        result?;
        finalized?;
        return Ok(ExitCode::SUCCESS);
    }
    // Custodians' tokens are read before the module is loaded (custodian_token.rs).
    let token_secrets = custodian_token::read_all(&cli.command)?;
    let change = match &cli.command {
        Command::Custodians(CustodiansCommand::Add { custodians, threshold, .. }) => {
            Some((custodians.clone(), Vec::new(), *threshold))
        }
        Command::Custodians(CustodiansCommand::Remove { custodians, threshold }) => {
            Some((Vec::new(), custodians.clone(), *threshold))
        }
        _ => None,
    };
    if let Some((added, removed, threshold)) = change {
        let config = Config::from_env().map_err(|e| Failure(format!("config: {e}")))?;
        let current = quorum::CurrentQuorum::read(&config, &cli.global)?;
        let tool = Tool::open(cli.global)?;
        let result = quorum::cmd_change(&tool, &current, &added, &removed, threshold, &token_secrets);
        let finalized = tool.pkcs11.finalize();
        result?;
        finalized?;
        return Ok(ExitCode::SUCCESS);
    }
    let tool = Tool::open(cli.global)?;
    let result = dispatch(&tool, cli.command, &token_secrets);
    // Finalizing lets the module finalize the root's module (SoftHSM2) cleanly.
    let finalized = tool.pkcs11.finalize();
    result?;
    finalized?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        Err(Failure(why)) => {
            eprintln!("cvault: {why}");
            ExitCode::FAILURE
        }
    }
}
