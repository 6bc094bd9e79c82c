//! The command line: `cvault`'s arguments as clap types, grouped by what they act on
//! (`token`, `master`, `audit`), with the examples `--help` shows.
//!
//! Kept apart from the commands so that `cvault completions` and `cvault man` render
//! exactly the interface the parser accepts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

const ENVIRONMENT: &str = "\
Environment:
  COLLABVAULT_CONF     the module's config (the tool reads the same file)
  COLLABVAULT_MODULE   the module (default: libcollabvault_pkcs11.so beside cvault, else
                       in <prefix>/lib/<multiarch>/pkcs11/, where the package puts it)
  CV_SO_PIN, CV_USER_PIN
                       the token PINs; --pin-file wins over them, and on a terminal
                       cvault asks for a missing PIN without echoing it

Exit status: 0 on success, 1 when the module refuses or anything fails (one line on
stderr, with the module's CKR_ reason), 1 when `audit verify` finds the log broken,
2 on a usage error.";

const EXAMPLES: &str = "\
Examples:
  cvault token init --workspace eng --label Engineering
  cvault token status
  cvault master rotate --due
  cvault master rewrap --records /srv/docs/records
  cvault audit verify
  cvault backup create /srv/backups/cvault-2026-12-07
  cvault audit export --since 2026-11-01 | jq .";

/// The CollabVault admin tool: a PKCS#11 client of the CollabVault module.
///
/// Token and master key commands go through the module's C ABI, its policy checks and
/// its audit chain, like any application's calls; a refusal cvault prints is the
/// module's own. The audit commands only read the store and need no PIN.
#[derive(Debug, Parser)]
#[command(name = "cvault", version, after_help = format!("{EXAMPLES}\n\n{ENVIRONMENT}"))]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts, before or after its name.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// The PKCS#11 module to load.
    #[arg(long, global = true, value_name = "PATH", env = "COLLABVAULT_MODULE", hide_env_values = true)]
    pub(crate) module: Option<PathBuf>,
    /// A file of `CV_SO_PIN=...` / `CV_USER_PIN=...` lines (wins over the environment).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
    /// The workspace to act on (default: every configured one, or the only one).
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) workspace: Option<String>,
    /// Print JSON instead of text (same as `--format json`).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

impl Global {
    /// Whether the output is JSON.
    pub(crate) fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

/// How a command prints what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Lines for people to read.
    Text,
    /// One JSON document (field names are stable; see the README).
    Json,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// A workspace's token: initialize it, show its state.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Workspace master key versions: list, rotate, re-wrap records, retire, destroy.
    #[command(subcommand)]
    Master(MasterCommand),
    /// The signed, hash-chained audit log (read from the store; no PIN).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Online backups of the store: create, verify (restored into a scratch directory,
    /// stored DEKs opened), restore.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// The store itself: move it to another backend (SQLite <-> PostgreSQL).
    #[command(subcommand)]
    Store(StoreCommand),
    /// The custodians a workspace's key-encryption key is split among.
    #[command(subcommand)]
    Custodians(CustodiansCommand),
    /// Requests for the custodians' approval, and approving them.
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// Emergency access: a time-limited window in which versions an audit alert blocked
    /// unwrap for a named person, each use audited; the quorum approves it first.
    #[command(subcommand)]
    Emergency(EmergencyCommand),
    /// A legal hold on the master keys: set or lift (doc/quorum.md, "Legal hold").
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Recovery kits: export, check without secrets, drill, and the second factor's key.
    #[command(subcommand)]
    Kit(KitCommand),
    /// Restore a workspace from a recovery kit onto a new root token after the old one
    /// was lost (doc/recovery.md, "Restoration"): new PINs, every master key version
    /// re-sealed from the kit under the new root, a rotation, every stored DEK re-wrapped,
    /// every earlier session and login voided. Resumable: run it again after any failure.
    #[command(
        after_help = "Example:\n  CV_SO_PIN=... CV_USER_PIN=... cvault recover --workspace eng --kit /media/offline/eng.cvkit \\\n    \
                            --passphrase-file /root/kit.pass --factor-module /usr/lib/softhsm/libsofthsm2.so --factor-pin-file /root/factor.pin"
    )]
    Recover {
        /// The recovery kit file.
        #[arg(long, value_name = "FILE")]
        kit: PathBuf,
        #[command(flatten)]
        factor: FactorArgs,
        #[command(flatten)]
        secret: PassphraseArgs,
        /// Stored DEKs re-wrapped per transaction (a crash redoes at most one batch).
        #[arg(long, value_name = "N", default_value_t = 256)]
        batch: usize,
    },
    /// The root of trust in the underlying HSMs.
    #[command(subcommand)]
    Root(RootCommand),
    /// Lock the master keys now, in every process (revokes the unlock grant).
    #[command(after_help = "Example:\n  cvault lock --workspace eng")]
    Lock,
    /// Unlock the master keys: each named custodian approves the unlock.
    #[command(
        after_help = "Example:\n  CV_CUSTODIAN_ALICE=... CV_CUSTODIAN_BOB=... cvault unlock --custodian alice --custodian bob"
    )]
    Unlock {
        /// An approving custodian (repeat for each; passphrase from CV_CUSTODIAN_<NAME> or a prompt).
        #[arg(long = "custodian", value_name = "NAME")]
        custodians: Vec<String>,
        #[command(flatten)]
        tokens: CustodianTokens,
    },
    /// Print a shell completion script to stdout.
    #[command(after_help = "Examples:\n  cvault completions bash > /etc/bash_completion.d/cvault\n  \
                            cvault completions zsh > ~/.zfunc/_cvault\n  \
                            cvault completions fish > ~/.config/fish/completions/cvault.fish")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write man pages (cvault.1 and one per subcommand) into a directory.
    #[command(after_help = "Example:\n  cvault man /usr/share/man/man1")]
    Man {
        /// Where to write the pages (created if missing).
        dir: PathBuf,
    },
}

/// `cvault token ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Initialize a workspace's token with the SO PIN and set its user PIN.
    #[command(
        after_help = "Example:\n  CV_SO_PIN=... CV_USER_PIN=... cvault token init --workspace eng --label Engineering"
    )]
    Init {
        /// The token label.
        #[arg(long, value_name = "L")]
        label: String,
    },
    /// Root of trust, master key versions, their ages, and whether rotation is due.
    #[command(after_help = "Examples:\n  cvault token status\n  cvault token status --workspace eng --json")]
    Status,
}

/// `cvault master ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MasterCommand {
    /// Master key versions: number, state, creation date, classification, stored DEKs.
    #[command(after_help = "Examples:\n  cvault master list\n  cvault master list --json")]
    List,
    /// Make a new master key version current; the old one becomes decrypt-only.
    #[command(
        after_help = "Examples:\n  cvault master rotate\n  cvault master rotate --due   # from a timer: only when the schedule says so"
    )]
    Rotate {
        /// Rotate only if the current version is older than the `[rotation]` schedule.
        #[arg(long)]
        due: bool,
    },
    /// Re-wrap every DIR/*.wrap record to the newest version (resumable).
    #[command(after_help = "Example:\n  cvault master rewrap --records /srv/docs/records")]
    Rewrap {
        /// The directory of wrap records.
        #[arg(long, value_name = "DIR")]
        records: PathBuf,
    },
    /// Version N stops unwrapping (only once superseded and no longer needed).
    #[command(after_help = "Example:\n  cvault master retire --version 1")]
    Retire {
        /// The version to retire.
        #[arg(long, value_name = "N")]
        version: u32,
    },
    /// Delete version N's sealed key (only once retired).
    #[command(after_help = "Example:\n  cvault master destroy --version 1")]
    Destroy {
        /// The version to destroy.
        #[arg(long, value_name = "N")]
        version: u32,
    },
    /// BYOK: make an import key pair and write its public half for the customer (doc/byok.md).
    #[command(
        name = "import-key",
        after_help = "Examples:\n  cvault master import-key --type rsa-3072 --out import.pem\n  \
                      cvault master import-key --type ml-kem-768 --out import.ek"
    )]
    ImportKey {
        /// The import key's type.
        #[arg(long = "type", value_enum)]
        kind: ImportKeyType,
        /// Where the public key goes (RSA: PEM; ML-KEM: the raw encapsulation key).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The import key's label on the token.
        #[arg(long, value_name = "LABEL", default_value = "byok import key")]
        label: String,
    },
    /// BYOK: import a customer's wrapped key as the new active version (quorum-guarded).
    #[command(after_help = "Example:\n  cvault master import --wrapped wrapped.bin")]
    Import {
        /// The customer's wrapped key (doc/byok.md, section 2).
        #[arg(long, value_name = "FILE")]
        wrapped: PathBuf,
        /// The label of the import key that unwraps it.
        #[arg(long = "import-key", value_name = "LABEL", default_value = "byok import key")]
        import_key: String,
    },
}

/// The types of BYOK import keys.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ImportKeyType {
    /// RSA-3072 (the wrapped key: RSA-OAEP with SHA-256).
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA-4096.
    #[value(name = "rsa-4096")]
    Rsa4096,
    /// ML-KEM-768 (the wrapped key: ciphertext || AES-256-KWP).
    #[value(name = "ml-kem-768")]
    MlKem768,
    /// ML-KEM-1024.
    #[value(name = "ml-kem-1024")]
    MlKem1024,
}

impl ImportKeyType {
    /// The name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ImportKeyType::Rsa3072 => "rsa-3072",
            ImportKeyType::Rsa4096 => "rsa-4096",
            ImportKeyType::MlKem768 => "ml-kem-768",
            ImportKeyType::MlKem1024 => "ml-kem-1024",
        }
    }
}

/// `cvault hold ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum HoldCommand {
    /// Set a legal hold: no version retired or destroyed, no stored DEK deleted (SO PIN).
    #[command(after_help = "Example:\n  cvault hold set --reason \"case 7731\"")]
    Set {
        /// Why (a case number), recorded with the hold.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lift the legal hold (SO PIN; with a quorum, once the custodians approved it).
    #[command(after_help = "Example:\n  cvault hold lift")]
    Lift,
}

/// `cvault store ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Move the whole store (objects, master key versions, quorum state, kit inventory,
    /// the audit chain and its checkpoints) into an EMPTY store on another backend, then
    /// prove the copy (same rows, the chain verifies). The source is left as it was; stop
    /// the applications first (a change during the move fails it).
    #[command(
        after_help = "Examples:\n  CV_PG_PASSWORD=... cvault store migrate --to postgresql://cvault@db1/cvault \\\n      --password-env CV_PG_PASSWORD\n  \
                            cvault store migrate --to sqlite:/var/lib/collabvault-copy"
    )]
    Migrate {
        /// `sqlite:DIR` or a PostgreSQL connection string (without a password).
        #[arg(long, value_name = "TARGET")]
        to: String,
        /// An environment variable holding the destination database's password.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// A file holding the destination database's password.
        #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
        password_file: Option<PathBuf>,
    },
}

/// `cvault root ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RootCommand {
    /// Deal a split root again over all its slots, after a lost HSM's place in
    /// `[[root.slots]]` was given to a fresh token (doc/root.md, "Replacing a lost HSM"):
    /// the same secrets, m, n and deployment, new shares on every slot. Needs every slot,
    /// the SO PIN of each initialized workspace, and with a quorum an approved
    /// reshare-root request. A run cut short is finished or undone by the next connect.
    #[command(after_help = "Example:
  CV_SO_PIN=... cvault root reshare

                            With a quorum the first run opens the reshare-root request and is refused;
                            once the custodians approve it (cvault quorum approve --request N ...), run it again.")]
    Reshare,
}

/// `cvault backup ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Copy the store (every workspace, the audit chain) into DIR while applications keep
    /// using the token, with a manifest of what it holds and the SHA-256 of each file.
    #[command(after_help = "Example:\n  cvault backup create /srv/backups/cvault-2026-12-07\n\n\
                            The copy holds sealed rows only: it opens with the root slot of the\n\
                            config's [root] and a PIN, never alone. Keep recovery kits elsewhere.")]
    Create {
        /// A new (or empty) directory for the backup.
        dest: PathBuf,
    },
    /// Check a backup: its checksums, then restored into a scratch directory: what the
    /// manifest says, the copied audit chain, and sample stored DEKs opened under every
    /// master key version (user PIN; with --workspace, that workspace's only). Exit 1
    /// names what is wrong.
    #[command(after_help = "Examples:\n  CV_USER_PIN=... cvault backup verify /srv/backups/cvault-2026-12-07\n  \
                            CV_USER_PIN=... cvault backup verify --workspace legal /srv/backups/cvault-2026-12-07")]
    Verify {
        /// The backup directory.
        dest: PathBuf,
    },
    /// Replace the live store with a verified backup; the previous store file is kept
    /// beside it (`*.before-restore-<time>`). Refused while another process has the store open.
    #[command(after_help = "Example:\n  CV_USER_PIN=... cvault backup restore /srv/backups/cvault-2026-12-07")]
    Restore {
        /// The backup directory.
        dest: PathBuf,
        /// Restore even when the backup is not of this store (its audit head is not in
        /// the live chain), or the live store is unreadable.
        #[arg(long)]
        force: bool,
    },
}

/// `cvault custodians ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CustodiansCommand {
    /// Enrol custodians and split a new key-encryption key k-of-n among them (SO PIN).
    #[command(
        after_help = "Example:\n  cvault custodians init --threshold 2 --custodian alice --custodian bob --custodian carol\n  \
                            cvault custodians init --threshold 2 --custodian alice --custodian bob \\\n      \
                            --custodian-token alice=alice-token --custodian-module /usr/lib/softhsm/libsofthsm2.so\n\n\
                            Each custodian's passphrase comes from CV_CUSTODIAN_<NAME> or is asked twice on the\n\
                            terminal; a custodian with --custodian-token uses an HMAC key on their own token instead\n\
                            (PIN from CV_CUSTODIAN_TOKEN_PIN_<NAME> or --custodian-pin-file). Only a public key\n\
                            derived from either reaches the module. Changing an existing\n\
                            quorum needs the current quorum's approval of a change-quorum request."
    )]
    Init {
        /// k: how many custodians must approve (default: `[quorum] threshold`).
        #[arg(long, value_name = "K")]
        threshold: Option<u8>,
        /// A custodian (repeat for each).
        #[arg(long = "custodian", value_name = "NAME", required = true)]
        custodians: Vec<String>,
        #[command(flatten)]
        tokens: CustodianTokens,
    },
    /// Add custodians: the KEK is split anew among the current custodians and the new
    /// ones (SO PIN; the master keys unlocked, and a change-quorum request approved by the
    /// current quorum). Old shares open nothing afterwards.
    #[command(
        after_help = "Example:\n  CV_CUSTODIAN_DAVE=... cvault custodians add --custodian dave --threshold 3\n\n\
                            The first run opens the change-quorum request and is refused; once the\n\
                            custodians approve it (cvault quorum approve --request N ...), run it again."
    )]
    Add {
        /// The new k (default: the current threshold).
        #[arg(long, value_name = "K")]
        threshold: Option<u8>,
        /// A new custodian (repeat for each).
        #[arg(long = "custodian", value_name = "NAME", required = true)]
        custodians: Vec<String>,
        #[command(flatten)]
        tokens: CustodianTokens,
    },
    /// Remove custodians: the KEK is split anew among those who stay (SO PIN; the master
    /// keys unlocked, and a change-quorum request approved). The removed shares open nothing.
    #[command(after_help = "Example:\n  cvault custodians remove --custodian carol --threshold 2")]
    Remove {
        /// The new k (default: the current threshold, which must not exceed who stays).
        #[arg(long, value_name = "K")]
        threshold: Option<u8>,
        /// A custodian to remove (repeat for each).
        #[arg(long = "custodian", value_name = "NAME", required = true)]
        custodians: Vec<String>,
    },
    /// The custodians and the threshold (read from the store; no PIN).
    #[command(after_help = "Examples:\n  cvault custodians list\n  cvault custodians list --json")]
    List,
}

/// `cvault quorum ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum QuorumCommand {
    /// Locked or unlocked, and the open requests with their approvals (no PIN).
    #[command(after_help = "Examples:\n  cvault quorum status\n  cvault quorum status --json")]
    Status,
    /// Approve a request (default: the unlock) as each named custodian.
    #[command(after_help = "Example:\n  cvault quorum approve --request 7 --custodian alice")]
    Approve {
        /// The request number (`cvault quorum status`); without it, the unlock.
        #[arg(long, value_name = "N")]
        request: Option<i64>,
        /// An approving custodian (repeat for each).
        #[arg(long = "custodian", value_name = "NAME", required = true)]
        custodians: Vec<String>,
        #[command(flatten)]
        tokens: CustodianTokens,
    },
    /// Open a request ahead of the operation it guards, so the custodians can approve it
    /// before the operation is attempted (an open request for the same action is reused).
    #[command(after_help = "Examples:\n  cvault quorum request --action unlock\n  \
                            cvault quorum request --action destroy --version 3 --expires-hours 4\n  \
                            cvault quorum request --action emergency-access --user dana\n  \
                            cvault quorum request --action lift-hold --json")]
    Request {
        /// What the request allows: unlock, destroy (with --version), emergency-access
        /// (with --user), change-quorum, init-token, lift-hold, import-key, export-kit,
        /// reshare-root.
        #[arg(long, value_name = "ACTION")]
        action: String,
        /// The master key version a `destroy` request is for.
        #[arg(long, value_name = "N")]
        version: Option<u32>,
        /// The person an `emergency-access` request is for.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// How long the request collects approvals (default and maximum: [quorum]
        /// approval_hours).
        #[arg(long = "expires-hours", value_name = "H")]
        expires_hours: Option<u64>,
        /// Open it as the SO (the default for change-quorum, init-token, lift-hold and
        /// reshare-root, which the SO performs; otherwise as the user).
        #[arg(long)]
        so: bool,
    },
    /// Cancel an open request: its approvals count for nothing afterwards. Only whoever
    /// opened it (the user, or the SO with --so) or the SO may.
    #[command(after_help = "Examples:\n  cvault quorum cancel 7\n  cvault quorum cancel 7 --so")]
    Cancel {
        /// The request number (`cvault quorum status`).
        #[arg(value_name = "N")]
        request: i64,
        /// Cancel as the SO (who may cancel any request).
        #[arg(long)]
        so: bool,
    },
}

/// Custodians whose secret is on their own PKCS#11 token instead of a passphrase
/// (doc/quorum.md, "Custodians with a token").
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CustodianTokens {
    /// A custodian whose secret is an HMAC key on their own token: NAME=TOKEN_LABEL (repeat).
    #[arg(long = "custodian-token", id = "custodian_token", value_name = "NAME=LABEL")]
    pub(crate) tokens: Vec<String>,
    /// The PKCS#11 module of the custodians' tokens.
    #[arg(long = "custodian-module", id = "custodian_module", value_name = "PATH")]
    pub(crate) module: Option<std::path::PathBuf>,
    /// A file whose first line is a custodian token's user PIN: NAME=PATH (else the
    /// environment variable CV_CUSTODIAN_TOKEN_PIN_<NAME>).
    #[arg(long = "custodian-pin-file", id = "custodian_pin_file", value_name = "NAME=PATH")]
    pub(crate) pin_files: Vec<String>,
}

/// `cvault emergency ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EmergencyCommand {
    /// Ask for (and, once the custodians approved the request, open) a window for NAME.
    #[command(
        after_help = "Example:\n  cvault emergency open --name dana   # then: cvault quorum approve --request N ..."
    )]
    Open {
        /// The person the window is for.
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// Close the window now.
    #[command(after_help = "Example:\n  cvault emergency close")]
    Close,
}

/// `cvault audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Prove the log intact, or name its first bad entry (exit 1).
    #[command(after_help = "Examples:\n  cvault audit verify\n  cvault audit verify --json")]
    Verify,
    /// Entries as JSON lines, filtered by time and object.
    #[command(after_help = "Examples:\n  cvault audit export --since 2026-11-01T00:00:00Z --until 2026-12-01\n  \
                            cvault audit export --key 'wmk v2' | jq .action")]
    Export {
        /// Only entries at or after T (RFC 3339, a date, or Unix ms).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only entries before T (RFC 3339, a date, or Unix ms).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Only entries whose object contains TEXT (a CKA_UNIQUE_ID, a label, `wmk v2`).
        #[arg(long, value_name = "TEXT")]
        key: Option<String>,
    },
    /// Per workspace: use per object, master key versions and rotation age, failed
    /// logins, alerts, refusals.
    #[command(after_help = "Examples:\n  cvault audit report --workspace eng\n  cvault audit report --json")]
    Report,
    /// The audit public keys (PEM: ECDSA P-256, then ML-DSA-65) that verify the signed
    /// checkpoints.
    #[command(after_help = "Examples:\n  cvault audit key > audit-keys.pem\n  cvault audit key --json")]
    Key,
}

/// Commands of the flat form cvault had before the groups, and what to type now.
pub(crate) const MOVED: [(&str, &str); 7] = [
    ("init", "token init"),
    ("status", "token status"),
    ("list", "master list"),
    ("rotate", "master rotate"),
    ("rewrap", "master rewrap"),
    ("retire", "master retire"),
    ("destroy", "master destroy"),
];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

/// The second-factor token: a separate PKCS#11 token holding the kit factor key.
#[derive(Debug, Clone, Args)]
pub(crate) struct FactorArgs {
    /// The factor token's PKCS#11 module.
    #[arg(long, value_name = "PATH", env = "CV_FACTOR_MODULE", hide_env_values = true)]
    pub(crate) factor_module: Option<PathBuf>,
    /// The factor token's label (default for a drill: the one the kit names).
    #[arg(long, value_name = "LABEL", env = "CV_FACTOR_TOKEN", hide_env_values = true)]
    pub(crate) factor_token: Option<String>,
    /// The factor key's label (default: collabvault-kit-factor, or the one the kit names).
    #[arg(long, value_name = "LABEL", env = "CV_FACTOR_KEY", hide_env_values = true)]
    pub(crate) factor_key: Option<String>,
    /// A file whose first line is the factor token's user PIN (else CV_FACTOR_PIN, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub(crate) factor_pin_file: Option<PathBuf>,
}

/// The kit passphrase.
#[derive(Debug, Clone, Args)]
pub(crate) struct PassphraseArgs {
    /// A file whose first line is the kit passphrase (else CV_KIT_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
}

/// `cvault kit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KitCommand {
    /// Write a recovery kit: every master key version that still unwraps, sealed under a
    /// key from the passphrase and the second factor (quorum-approved when configured).
    #[command(
        after_help = "Example:\n  CV_KIT_PASSPHRASE=... CV_FACTOR_PIN=... cvault kit export --workspace eng \\\n    \
                            --out /media/offline/eng.cvkit --factor-module /usr/lib/softhsm/libsofthsm2.so \\\n    \
                            --factor-token kit-factor"
    )]
    Export {
        /// The kit file to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        factor: FactorArgs,
        #[command(flatten)]
        secret: PassphraseArgs,
        /// Who holds the kit, for the inventory (default: $USER).
        #[arg(long, value_name = "NAME")]
        holder: Option<String>,
        /// Argon2id memory, KiB (at least 19456).
        #[arg(long, value_name = "KIB", default_value_t = 65536)]
        kdf_memory_kib: u32,
        /// Argon2id passes (at least 2).
        #[arg(long, value_name = "N", default_value_t = 3)]
        kdf_passes: u32,
    },
    /// Verify a kit's structure and checksums without any secret, and show its header.
    #[command(after_help = "Example:\n  cvault kit check eng.cvkit")]
    Check {
        /// The kit file.
        file: PathBuf,
    },
    /// Open a kit in memory and prove it restores the live workspace (check values and a
    /// sample of stored DEKs); changes nothing; records the outcome in the audit log.
    #[command(after_help = "Example (from a timer):\n  cvault kit drill --file /media/offline/eng.cvkit \\\n    \
                            --passphrase-file /etc/cvault/kit.pass --factor-pin-file /etc/cvault/factor.pin")]
    Drill {
        /// The kit file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        factor: FactorArgs,
        #[command(flatten)]
        secret: PassphraseArgs,
        /// How many stored DEKs to open (default: `[recovery] drill_sample`).
        #[arg(long, value_name = "N")]
        sample: Option<usize>,
    },
    /// Confirm holding a kit: proves possession by the kit's fingerprint (SHA-256 of the file).
    #[command(after_help = "Examples:\n  cvault kit ack --file eng.cvkit --holder alice\n  \
                            cvault kit ack --kit-id 0f1e... --fingerprint 9a8b... --holder alice")]
    Ack {
        /// The kit file (its id and fingerprint are read from it).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["kit_id", "fingerprint"])]
        file: Option<PathBuf>,
        /// The kit id, with --fingerprint, when the file is not at hand here.
        #[arg(long, value_name = "ID", requires = "fingerprint")]
        kit_id: Option<String>,
        /// The kit file's SHA-256, hex (`sha256sum FILE`).
        #[arg(long, value_name = "HEX", requires = "kit_id")]
        fingerprint: Option<String>,
        /// Who confirms.
        #[arg(long, value_name = "NAME")]
        holder: String,
    },
    /// Kits issued, their holders and acknowledgements, stale kits, overdue
    /// acknowledgements and drills (read from the store; no PIN). An overdue drill writes
    /// an alert entry and runs the notification hook (at most once a day).
    #[command(after_help = "Examples:\n  cvault kit inventory\n  cvault kit inventory --json")]
    Inventory,
    /// The second factor's key on its token.
    #[command(subcommand)]
    Factor(FactorCommand),
}

/// `cvault kit factor ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FactorCommand {
    /// Generate the factor key on the factor token (sensitive, never extractable).
    #[command(
        after_help = "Example:\n  CV_FACTOR_PIN=... cvault kit factor init --factor-module /usr/lib/softhsm/libsofthsm2.so \\\n    \
                            --factor-token kit-factor"
    )]
    Init {
        #[command(flatten)]
        factor: FactorArgs,
    },
}
