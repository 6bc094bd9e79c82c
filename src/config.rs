//! The module's configuration: a TOML file named by `COLLABVAULT_CONF`, or the
//! out-of-the-box default when that variable is unset.
//!
//! A named file that is missing, unreadable or invalid is an error naming the file and
//! the problem; the module never falls back to defaults behind the user's back.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Environment variable naming the configuration file.
pub const CONF_ENV: &str = "COLLABVAULT_CONF";

/// Failed logins allowed before a PIN locks, unless the config says otherwise.
pub const DEFAULT_MAX_FAILED_LOGINS: u32 = 10;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory holding the SQLite store.
    pub store_dir: PathBuf,
    /// A PostgreSQL server instead of the SQLite file (`postgresql://user@host:port/db`,
    /// or `host=/socket/dir dbname=db user=u`); absent: SQLite in `store_dir`.
    #[serde(default)]
    pub store: Option<String>,
    /// The environment variable holding the PostgreSQL password.
    #[serde(default)]
    pub store_password_env: Option<String>,
    /// A file holding the PostgreSQL password (its first line).
    #[serde(default)]
    pub store_password_file: Option<PathBuf>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Log to this file instead of stderr.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// How long a store write waits for another process's lock before it fails
    /// (`CKR_DEVICE_ERROR`), in milliseconds.
    #[serde(default = "default_store_busy_timeout_ms")]
    pub store_busy_timeout_ms: u64,
    /// PIN policy shared by every token.
    #[serde(default)]
    pub pin_policy: PinPolicy,
    /// One slot and token per workspace, in slot order.
    #[serde(rename = "workspace")]
    pub workspaces: Vec<WorkspaceConfig>,
    /// The underlying PKCS#11 slot that holds the root keys; absent: a software root.
    #[serde(default)]
    pub root: Option<RootConfig>,
    /// How often master keys rotate, by data classification.
    #[serde(default)]
    pub rotation: RotationPolicy,
    /// Audit log settings.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Mechanisms that are off unless enabled.
    #[serde(default)]
    pub mechanisms: MechanismsConfig,
    /// How a quorum of custodians unlocks master keys (doc/quorum.md).
    #[serde(default)]
    pub quorum: QuorumConfig,
    /// Recovery kit drills and acknowledgements (doc/recovery.md).
    #[serde(default)]
    pub recovery: RecoveryConfig,
}

/// How often recovery kits are drilled and their holders confirm they still hold them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Days between drills (`cvault kit drill`) before one is overdue.
    #[serde(default = "default_drill_days")]
    pub drill_every_days: u64,
    /// Days between a holder's acknowledgements before one is overdue.
    #[serde(default = "default_ack_days")]
    pub ack_every_days: u64,
    /// How many stored DEKs a drill opens with the kit's keys.
    #[serde(default = "default_drill_sample")]
    pub drill_sample: usize,
    /// Failed kit unlocks (wrong passphrase or factor) in a row, per kit, before further
    /// attempts through `cvault` wait a growing back-off (0: no limit).
    #[serde(default = "default_max_failed_unlocks")]
    pub max_failed_unlocks: u32,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            drill_every_days: default_drill_days(),
            ack_every_days: default_ack_days(),
            drill_sample: default_drill_sample(),
            max_failed_unlocks: default_max_failed_unlocks(),
        }
    }
}

fn default_max_failed_unlocks() -> u32 {
    5
}

fn default_drill_days() -> u64 {
    30
}

fn default_ack_days() -> u64 {
    90
}

fn default_drill_sample() -> usize {
    16
}

/// The quorum's timings and limits. Whether a workspace has a quorum is the store's
/// record (made by `CKM_CV_QUORUM_SPLIT`), never this file's: editing the config cannot
/// turn a quorum off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumConfig {
    /// The k that `cvault custodians init` proposes when not told.
    #[serde(default = "default_threshold")]
    pub threshold: u8,
    /// How long an unlock lasts, in hours, for every process on the store; 0: only in
    /// the process whose custodian logins completed the quorum, until it exits.
    #[serde(default = "default_unlock_hours")]
    pub unlock_hours: u64,
    /// How long a request collects approvals before they count for nothing.
    #[serde(default = "default_approval_hours")]
    pub approval_hours: u64,
    /// Consecutive wrong passphrases before a custodian is locked out.
    #[serde(default = "default_max_failed")]
    pub max_failed_approvals: u32,
    /// How long an emergency access window stays open, in minutes.
    #[serde(default = "default_emergency_minutes")]
    pub emergency_minutes: u64,
    /// A command (program and arguments) told of every unlock, lock, quorum change and
    /// legal hold, with one JSON document on its stdin (`quorum/notify.rs`).
    #[serde(default)]
    pub notify_command: Vec<String>,
    /// How long the command may take.
    #[serde(default = "default_notify_timeout")]
    pub notify_timeout_seconds: u64,
    /// Whether a failed notification refuses the operation (default: it is logged and
    /// audited, and the operation goes ahead).
    #[serde(default)]
    pub notify_required: bool,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            threshold: default_threshold(),
            unlock_hours: default_unlock_hours(),
            approval_hours: default_approval_hours(),
            max_failed_approvals: DEFAULT_MAX_FAILED_LOGINS,
            emergency_minutes: default_emergency_minutes(),
            notify_command: Vec::new(),
            notify_timeout_seconds: default_notify_timeout(),
            notify_required: false,
        }
    }
}

fn default_threshold() -> u8 {
    2
}

fn default_unlock_hours() -> u64 {
    24
}

fn default_approval_hours() -> u64 {
    24
}

fn default_emergency_minutes() -> u64 {
    60
}

fn default_notify_timeout() -> u64 {
    10
}

/// Opt-ins for mechanisms that are unsafe by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismsConfig {
    /// `CKM_RSA_PKCS` (PKCS#1 v1.5) for `C_WrapKey`/`C_UnwrapKey`. Off: key transport is
    /// OAEP only, since v1.5 unwrapping is the Bleichenbacher setting. When on, unwrap
    /// uses implicit rejection (no padding oracle). `C_Encrypt`/`C_Decrypt` are unaffected.
    #[serde(default)]
    pub allow_rsa_pkcs1_v15_key_transport: bool,
}

/// How the audit log records and proves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A signed checkpoint every this many entries (and at `C_Finalize`); needs a `[root]`.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Also a checkpoint at the first append once this many seconds have passed since the
    /// last one (0: no time rule), so a cuttable tail is at most this old. Key-management
    /// events (rotation, destruction, PIN changes, plaintext value reads, ...) are
    /// checkpointed at once whatever this says.
    #[serde(default = "default_checkpoint_seconds")]
    pub checkpoint_seconds: u64,
    /// After this many consecutive failed checkpoints, key-management calls fail closed
    /// (`CKR_DEVICE_ERROR`) until one succeeds; each such call retries first.
    #[serde(default = "default_max_checkpoint_failures")]
    pub max_checkpoint_failures: u32,
    /// Which signatures each checkpoint carries: `"ecdsa-p256"` (a key pair made in the
    /// root token), `"ml-dsa-65"` (FIPS 204; its seed sealed by a key in the root token,
    /// since PKCS#11 tokens such as SoftHSM2 cannot make ML-DSA keys) or `"both"`.
    #[serde(default)]
    pub checkpoint_signature: CheckpointSignature,
    /// How encrypt/decrypt/sign/verify/digest operations are recorded. Key management
    /// (generate, wrap, unwrap, derive, ...) is always one durable entry per call.
    #[serde(default)]
    pub data_operations: DataOperations,
    /// How key-management entries about session objects (made, unwrapped, derived,
    /// decapsulated or destroyed) reach the log: `"batched"` (default) holds them in
    /// memory, in call order, and writes them together; `"each"` commits every one at once.
    #[serde(default)]
    pub session_objects: SessionObjects,
    /// Batched: a batch is written when it would hold this many entries.
    #[serde(default = "default_batch_entries")]
    pub batch_entries: usize,
    /// Batched: the first batched call this many milliseconds after the oldest held entry
    /// writes the batch.
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
    /// With counters: a session's counts are flushed at least this often while it is in
    /// use (and always when it closes, at logout and at `C_Finalize`).
    #[serde(default = "default_flush_seconds")]
    pub flush_seconds: u64,
    /// Unwraps per minute under one master key version beyond which an alert is written.
    #[serde(default = "default_unwrap_burst")]
    pub alert_unwraps_per_minute: u64,
    /// Failed logins per hour on one token beyond which an alert is written.
    #[serde(default = "default_failed_logins")]
    pub alert_failed_logins_per_hour: u64,
    /// An unwrap-burst alert also blocks that master key version's unwraps until the SO
    /// clears it (`CKA_CV_BLOCKED` = false on `collabvault-master-v<N>`).
    #[serde(default)]
    pub block_on_alert: bool,
}

/// How session-object key-management entries reach the audit log (`store/batch.rs`).
///
/// Token objects and everything touching the hierarchy are one durable commit per event
/// whatever this says; a session object vanishes with the process, so its entries may
/// wait for a batch: a killed process loses at most the batch it held, and a batch that
/// cannot be written fails every audited call from then on (`CKR_DEVICE_ERROR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionObjects {
    /// Held in memory and written in one transaction per batch.
    #[default]
    Batched,
    /// One commit (written to the WAL, fsynced with the next full commit) per event.
    Each,
}

/// The signatures a checkpoint carries (`[audit] checkpoint_signature`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum CheckpointSignature {
    /// ECDSA P-256 only (checkpoints before ML-DSA was added are all of this kind).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ML-DSA-65 only.
    #[serde(rename = "ml-dsa-65")]
    MlDsa65,
    /// Both, so a checkpoint stands if either algorithm falls.
    #[default]
    #[serde(rename = "both")]
    Both,
}

impl CheckpointSignature {
    /// Whether checkpoints carry an ECDSA P-256 signature.
    pub fn ecdsa(self) -> bool {
        self != CheckpointSignature::MlDsa65
    }

    /// Whether checkpoints carry an ML-DSA-65 signature.
    pub fn mldsa(self) -> bool {
        self != CheckpointSignature::EcdsaP256
    }
}

/// How data operations reach the audit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataOperations {
    /// Per-key, per-session counters, flushed as entries (the hot path pays a counter).
    #[default]
    Counters,
    /// One durable entry per operation, written before it starts.
    PerCall,
    /// Not recorded (key management still is).
    Off,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every: default_checkpoint_every(),
            checkpoint_seconds: default_checkpoint_seconds(),
            max_checkpoint_failures: default_max_checkpoint_failures(),
            checkpoint_signature: CheckpointSignature::default(),
            data_operations: DataOperations::default(),
            session_objects: SessionObjects::default(),
            batch_entries: default_batch_entries(),
            batch_ms: default_batch_ms(),
            flush_seconds: default_flush_seconds(),
            alert_unwraps_per_minute: default_unwrap_burst(),
            alert_failed_logins_per_hour: default_failed_logins(),
            block_on_alert: false,
        }
    }
}

fn default_batch_entries() -> usize {
    256
}

fn default_batch_ms() -> u64 {
    1000
}

fn default_checkpoint_every() -> u64 {
    100
}

fn default_checkpoint_seconds() -> u64 {
    60
}

fn default_max_checkpoint_failures() -> u32 {
    3
}

fn default_flush_seconds() -> u64 {
    60
}

fn default_unwrap_burst() -> u64 {
    10_000
}

fn default_failed_logins() -> u64 {
    20
}

/// The root of trust: a token in another PKCS#11 module (an HSM, or SoftHSM2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// Path of the underlying module (e.g. `/usr/lib/softhsm/libsofthsm2.so`); empty
    /// when the root is split over `slots`.
    #[serde(default)]
    pub module: PathBuf,
    /// Label of the token there; empty when the root is split over `slots`.
    #[serde(default)]
    pub token_label: String,
    /// Environment variable holding that token's user PIN.
    #[serde(default)]
    pub pin_env: Option<String>,
    /// File holding that token's user PIN (first line).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// With `slots`: how many of them open the root (m of n; doc/root.md).
    #[serde(default)]
    pub threshold: Option<u8>,
    /// The underlying slots the root is split over (`[[root.slots]]`), each holding one
    /// share sealed by its own key; empty: the single slot above.
    #[serde(default)]
    pub slots: Vec<RootSlotConfig>,
}

/// One underlying slot of a split root.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootSlotConfig {
    /// Path of the underlying module.
    pub module: PathBuf,
    /// Label of the token there.
    pub token_label: String,
    /// Environment variable holding that token's user PIN.
    #[serde(default)]
    pub pin_env: Option<String>,
    /// File holding that token's user PIN (first line).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
}

/// The most slots a root may be split over: recombination tries every m-subset of the
/// shares to find a wrong one, which stays cheap up to here.
pub const MAX_ROOT_SLOTS: usize = 16;

impl RootConfig {
    /// The underlying token's PIN, from the environment or the PIN file; never the config.
    pub fn pin(&self) -> Result<zeroize::Zeroizing<String>> {
        read_pin("root", self.pin_env.as_deref(), self.pin_file.as_deref())
    }

    /// What is wrong with this section, if anything.
    fn check(&self) -> std::result::Result<(), String> {
        let no_pin = "needs pin_env or pin_file (the PIN never goes in the config)";
        if self.slots.is_empty() {
            if self.threshold.is_some() {
                return Err("[root] threshold needs [[root.slots]]".into());
            }
            if self.module.as_os_str().is_empty() || self.token_label.is_empty() {
                return Err("[root] needs module and token_label, or [[root.slots]] with a threshold".into());
            }
            if self.pin_env.is_none() && self.pin_file.is_none() {
                return Err(format!("[root] {no_pin}"));
            }
            return Ok(());
        }
        if !self.module.as_os_str().is_empty()
            || !self.token_label.is_empty()
            || self.pin_env.is_some()
            || self.pin_file.is_some()
        {
            return Err("[root] with [[root.slots]] takes module, token_label and the PIN in each slot".into());
        }
        let n = self.slots.len();
        match self.threshold {
            None => return Err("[root] with [[root.slots]] needs threshold = m".into()),
            Some(m) if m < 2 || usize::from(m) > n => {
                return Err(format!(
                    "[root] threshold {m} must be 2..={n} (1 would let any one slot open the root alone)"
                ))
            }
            Some(_) if n > MAX_ROOT_SLOTS => return Err(format!("[root] lists more than {MAX_ROOT_SLOTS} slots")),
            Some(_) => {}
        }
        for (i, s) in self.slots.iter().enumerate() {
            if s.pin_env.is_none() && s.pin_file.is_none() {
                return Err(format!("[[root.slots]] {:?} {no_pin}", s.token_label));
            }
            if self.slots[..i].iter().any(|o| o.token_label == s.token_label && o.module == s.module) {
                return Err(format!("[[root.slots]] lists token {:?} twice", s.token_label));
            }
        }
        Ok(())
    }
}

impl RootSlotConfig {
    /// The slot's token PIN, from the environment or the PIN file.
    pub fn pin(&self) -> Result<zeroize::Zeroizing<String>> {
        read_pin(&format!("root slot {:?}", self.token_label), self.pin_env.as_deref(), self.pin_file.as_deref())
    }
}

/// A PIN from the environment variable `var` or the first line of `file`.
fn read_pin(what: &str, var: Option<&str>, file: Option<&Path>) -> Result<zeroize::Zeroizing<String>> {
    if let Some(var) = var {
        return std::env::var(var)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| Error::Config(format!("{what}: pin_env: environment variable {var} is not set")));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{what}: pin_file: cannot read {}: {e}", path.display())))?;
        return Ok(zeroize::Zeroizing::new(text.lines().next().unwrap_or_default().to_string()));
    }
    Err(Error::Config(format!("{what}: neither pin_env nor pin_file is set")))
}

/// Rotation schedules: maximum age in days of the current master key, per classification.
/// (Any key is a classification name, so there is no unknown field to refuse.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RotationPolicy {
    /// Classification name -> days (e.g. `restricted = 30`).
    #[serde(flatten)]
    pub max_age_days: std::collections::BTreeMap<String, u32>,
}

/// How PINs are guarded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinPolicy {
    /// Consecutive failed logins before the PIN locks (`CKR_PIN_LOCKED`).
    #[serde(default = "default_max_failed")]
    pub max_failed_logins: u32,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy { max_failed_logins: DEFAULT_MAX_FAILED_LOGINS }
    }
}

/// One workspace: one slot with one token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// Stable name; the store keys the token's state by it.
    pub name: String,
    /// Token label shown until `C_InitToken` sets one.
    #[serde(default)]
    pub label: Option<String>,
    /// Data classification of the workspace's keys (drives the rotation schedule).
    #[serde(default = "default_classification")]
    pub classification: String,
}

fn default_classification() -> String {
    "internal".to_string()
}

fn default_log_level() -> String {
    "warn".to_string()
}

fn default_max_failed() -> u32 {
    DEFAULT_MAX_FAILED_LOGINS
}

/// Whether a `store` setting names a PostgreSQL server (`postgresql://`, `postgres://`, or
/// a `host=... dbname=...` key-value string); anything else is refused by the config.
pub fn names_postgres(store: &str) -> bool {
    store.starts_with("postgresql://") || store.starts_with("postgres://") || store.contains("host=")
}

/// The PostgreSQL settings of a `store` connection string; one holding a password is
/// refused (the password would sit in the config file: it comes from
/// `store_password_env` or `store_password_file`), and no error repeats it.
pub fn postgres_settings(store: &str) -> std::result::Result<postgres::Config, String> {
    let settings: postgres::Config =
        store.parse().map_err(|e| format!("store {:?} is not a PostgreSQL connection string: {e}", redact(store)))?;
    if settings.get_password().is_some() {
        return Err("the store connection string holds a password: use store_password_env or \
                    store_password_file (the password never goes in the config)"
            .into());
    }
    Ok(settings)
}

/// A connection string with anything after `password=` or a `user:pass@` cut out.
pub fn redact(store: &str) -> String {
    match (store.find("://"), store.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://...@{}", &store[..scheme], &store[at + 1..]),
        _ => store.split_whitespace().filter(|kv| !kv.starts_with("password=")).collect::<Vec<_>>().join(" "),
    }
}

impl Config {
    /// Reads the configuration named by `COLLABVAULT_CONF`, or the default when unset.
    pub fn from_env() -> Result<Config> {
        match std::env::var_os(CONF_ENV) {
            Some(path) if !path.is_empty() => Config::from_file(Path::new(&path)),
            _ => Ok(Config::out_of_the_box()),
        }
    }

    /// Reads and validates one configuration file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|why| Error::Config(format!("{}: {why}", path.display())))
    }

    /// Parses and validates configuration text; the error says what is wrong.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.message().to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.workspaces.is_empty() {
            return Err("no [[workspace]] is configured".into());
        }
        if log_level_filter(&self.log_level).is_none() {
            return Err(format!("log_level {:?} is not one of error, warn, info, debug, trace", self.log_level));
        }
        if self.pin_policy.max_failed_logins == 0 {
            return Err("pin_policy.max_failed_logins must be at least 1".into());
        }
        let mut names: Vec<&str> = self.workspaces.iter().map(|w| w.name.as_str()).collect();
        names.sort_unstable();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("workspace {:?} is configured twice", dup[0]));
        }
        if let Some(w) = self.workspaces.iter().find(|w| w.name.is_empty()) {
            return Err(format!("a workspace has an empty name (label {:?})", w.label));
        }
        // A wrap record names its workspace in a one-byte length field (record.rs): a
        // longer name would make every wrap under it fail at run time instead of here.
        if let Some(w) = self.workspaces.iter().find(|w| w.name.len() > 255) {
            let start: String = w.name.chars().take(16).collect();
            return Err(format!("workspace name {start:?}... is longer than 255 bytes"));
        }
        if let Some(w) = self.workspaces.iter().find(|w| w.label.as_ref().is_some_and(|l| l.len() > 32)) {
            return Err(format!("workspace {:?}: label is longer than 32 bytes", w.name));
        }
        if let Some(store) = &self.store {
            if !names_postgres(store) {
                return Err("store must be a PostgreSQL connection string (postgresql://user@host:port/db); \
                            leave it out for SQLite in store_dir"
                    .into());
            }
            postgres_settings(store)?;
        }
        if self.store_password_env.is_some() && self.store_password_file.is_some() {
            return Err("store_password_env and store_password_file are both set: choose one".into());
        }
        if let Some(root) = &self.root {
            root.check()?;
        }
        Ok(())
    }

    /// No config at all: a per-user store under the XDG data directory, one token.
    pub fn out_of_the_box() -> Config {
        Config {
            store_dir: default_store_dir(),
            store: None,
            store_password_env: None,
            store_password_file: None,
            log_level: std::env::var("COLLABVAULT_LOG").unwrap_or_else(|_| default_log_level()),
            log_file: None,
            store_busy_timeout_ms: default_store_busy_timeout_ms(),
            pin_policy: PinPolicy::default(),
            workspaces: vec![WorkspaceConfig {
                name: "default".into(),
                label: None,
                classification: default_classification(),
            }],
            root: None,
            rotation: RotationPolicy::default(),
            audit: AuditConfig::default(),
            mechanisms: MechanismsConfig::default(),
            quorum: QuorumConfig::default(),
            recovery: RecoveryConfig::default(),
        }
    }
}

/// Ten seconds: long enough for another process's longest write (a rotation rewrapping a
/// batch, a checkpoint), short enough that a stuck lock surfaces as an error.
fn default_store_busy_timeout_ms() -> u64 {
    10_000
}

/// `$XDG_DATA_HOME/collabvault`, else `~/.local/share/collabvault`.
fn default_store_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("collabvault");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".local/share/collabvault")
}

/// The `log` filter for a configured level name.
pub fn log_level_filter(level: &str) -> Option<log::LevelFilter> {
    match level.to_ascii_lowercase().as_str() {
        "off" => Some(log::LevelFilter::Off),
        "error" => Some(log::LevelFilter::Error),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "info" => Some(log::LevelFilter::Info),
        "debug" => Some(log::LevelFilter::Debug),
        "trace" => Some(log::LevelFilter::Trace),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        store_dir = "/tmp/cv"
        log_level = "info"
        [pin_policy]
        max_failed_logins = 3
        [[workspace]]
        name = "eng"
        label = "Engineering"
        [[workspace]]
        name = "legal"
    "#;
    #[test]
    fn the_store_busy_timeout_defaults_to_ten_seconds_and_is_configurable() {
        assert_eq!(Config::parse(GOOD).expect("parse").store_busy_timeout_ms, 10_000);
        let short = format!("store_busy_timeout_ms = 250\n{GOOD}");
        assert_eq!(Config::parse(&short).expect("parse").store_busy_timeout_ms, 250);
        assert_eq!(Config::out_of_the_box().store_busy_timeout_ms, 10_000);
    }

    #[test]
    fn a_full_config_parses() {
        let c = Config::parse(GOOD).expect("valid config");
        assert_eq!(c.workspaces.len(), 2);
        assert_eq!(c.pin_policy.max_failed_logins, 3);
        assert_eq!(c.workspaces[0].label.as_deref(), Some("Engineering"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Config::parse("store_dir='/x'\nbogus=1\n[[workspace]]\nname='a'\n").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn duplicate_workspaces_are_refused() {
        let err = Config::parse("store_dir='/x'\n[[workspace]]\nname='a'\n[[workspace]]\nname='a'\n").unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn a_config_without_workspaces_is_refused() {
        assert!(Config::parse("store_dir='/x'\nworkspace=[]\n").is_err());
    }

    #[test]
    fn a_bad_log_level_is_refused() {
        let err = Config::parse("store_dir='/x'\nlog_level='loud'\n[[workspace]]\nname='a'\n").unwrap_err();
        assert!(err.contains("loud"), "{err}");
    }

    #[test]
    fn a_root_section_names_the_module_and_where_the_pin_comes_from() {
        let text = "store_dir='/x'\n[root]\nmodule='/usr/lib/softhsm/libsofthsm2.so'\ntoken_label='r'\npin_env='P'\n[rotation]\nrestricted=30\n[[workspace]]\nname='a'\nclassification='restricted'\n";
        let c = Config::parse(text).expect("valid");
        assert_eq!(c.root.expect("root").token_label, "r");
        assert_eq!(c.rotation.max_age_days.get("restricted"), Some(&30));
        let no_pin = "store_dir='/x'\n[root]\nmodule='/m.so'\ntoken_label='r'\n[[workspace]]\nname='a'\n";
        assert!(Config::parse(no_pin).unwrap_err().contains("pin"));
    }

    #[test]
    fn a_split_root_lists_its_slots_and_a_threshold() {
        let slot = |l: &str| format!("[[root.slots]]\nmodule='/m.so'\ntoken_label='{l}'\npin_env='P'\n");
        let ws = "[[workspace]]\nname='a'\n";
        let text = format!("store_dir='/x'\n[root]\nthreshold=2\n{}{}{}{ws}", slot("a"), slot("b"), slot("c"));
        let root = Config::parse(&text).expect("valid").root.expect("root");
        assert_eq!((root.threshold, root.slots.len()), (Some(2), 3));
        assert_eq!(root.slots[1].token_label, "b");
        for (bad, why) in [
            (format!("[root]\n{}{}{ws}", slot("a"), slot("b")), "threshold"),
            (format!("[root]\nthreshold=1\n{}{}{ws}", slot("a"), slot("b")), "2..=2"),
            (format!("[root]\nthreshold=3\n{}{}{ws}", slot("a"), slot("b")), "2..=2"),
            (format!("[root]\nthreshold=2\n{}{}{ws}", slot("a"), slot("a")), "twice"),
            (format!("[root]\nthreshold=2\npin_env='P'\n{}{}{ws}", slot("a"), slot("b")), "each slot"),
            (format!("[root]\nthreshold=2\nmodule='/m.so'\ntoken_label='r'\npin_env='P'\n{ws}"), "threshold needs"),
            (format!("[root]\nthreshold=2\n[[root.slots]]\nmodule='/m.so'\ntoken_label='a'\n{}{ws}", slot("b")), "pin"),
        ] {
            let err = Config::parse(&format!("store_dir='/x'\n{bad}")).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let err = Config::from_file(Path::new("/nonexistent/cv.toml")).unwrap_err();
        assert!(matches!(&err, Error::Config(m) if m.contains("/nonexistent/cv.toml")), "{err}");
    }
}
