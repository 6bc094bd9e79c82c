//! `store/`: everything the token keeps across processes and restarts.
//!
//! The rest of the crate speaks to the store only through [`Backend`], in domain types
//! (`TokenRecord`, `ObjectRecord`, `AuditEvent`), never SQL and never `CK_ATTRIBUTE`.
//! Every state change takes the [`AuditEvent`] that records it, and the backend commits
//! both in one transaction: neither exists without the other. Secret attribute values
//! arrive here already sealed (`sealed.rs`); the store never sees plaintext key bytes.
//!
//! SQLite (`sqlite.rs`) is the embedded default; PostgreSQL (`postgres.rs`) serves many
//! hosts from one server. The config's `store` line chooses ([`open`]).

pub mod audit;
pub mod batch;
pub mod copy;
pub mod postgres;
pub mod quorum;
pub mod recovery;
pub mod sealed;
pub mod sqlite;

pub use audit::{AuditEvent, Caller};

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};

/// Opens the store the config names: PostgreSQL when `store` names a server, else the
/// SQLite file in `store_dir`.
pub fn open(config: &Config) -> Result<Arc<dyn Backend>> {
    let busy = std::time::Duration::from_millis(config.store_busy_timeout_ms);
    match config.store.as_deref().filter(|s| postgres::is_postgres(s)) {
        None => Ok(Arc::new(sqlite::SqliteStore::open_with_busy_timeout(&config.store_dir, busy)?)),
        Some(url) => {
            let target = postgres::PgTarget::parse(url).map_err(Error::Config)?.with_timeout(busy);
            let target = match store_password(config)? {
                Some(pw) => target.with_password(pw.as_bytes()),
                None => target,
            };
            Ok(Arc::new(postgres::PgStore::open(target)?))
        }
    }
}

/// The database password from `store_password_env` or `store_password_file` (never the
/// config itself); `None` when neither is set (peer or trust authentication).
fn store_password(config: &Config) -> Result<Option<zeroize::Zeroizing<String>>> {
    if let Some(var) = &config.store_password_env {
        let pw = std::env::var(var)
            .map_err(|_| Error::Config(format!("store_password_env names {var:?}, which is not set")))?;
        return Ok(Some(zeroize::Zeroizing::new(pw)));
    }
    if let Some(file) = &config.store_password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("store_password_file {}: {e}", file.display())))?;
        let pw = zeroize::Zeroizing::new(text);
        return Ok(Some(zeroize::Zeroizing::new(pw.trim_end_matches(['\n', '\r']).to_string())));
    }
    Ok(None)
}

/// Told about every audit entry once it is committed (checkpointing), and asked before.
pub trait AppendHook: Send + Sync {
    /// Whether `events` may be written now; an error refuses the whole write (fail closed).
    fn admit(&self, _store: &dyn Backend, _events: &[AuditEvent]) -> Result<()> {
        Ok(())
    }
    /// Entry `seq`, recording `event`, is now in the chain of `store`.
    fn appended(&self, store: &dyn Backend, seq: i64, event: &AuditEvent);
}

/// Computes a master key row's MAC (under a key only a logged-in user holds), so the
/// store can recompute it in the transaction that changes the row.
pub type MasterMac<'a> = &'a dyn Fn(&MasterRecord) -> Result<Vec<u8>>;

/// Computes the MAC of a token's PIN records and failure counters (under a key in the
/// root token), so the store recomputes it in every transaction that changes them.
pub type PinsMac = std::sync::Arc<dyn Fn(&TokenRecord) -> Result<Vec<u8>> + Send + Sync>;

/// Turns one stored record's sealed part into its new sealed part (re-wrap).
pub type Reseal<'a> = &'a mut dyn FnMut(&ObjectRecord) -> Result<Vec<u8>>;

/// What [`Backend::find_with_hierarchy`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindRead {
    /// The matching objects, in id order.
    pub objects: Vec<(ObjectId, ObjectRecord)>,
    /// When asked for: the token's epoch and its master key rows (oldest first), as read
    /// with the objects.
    pub hierarchy: Option<(i64, Vec<MasterRecord>)>,
}

/// What one re-wrap batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrapBatch {
    /// Records moved (0: none are left after the cursor).
    pub moved: usize,
    /// The last record it moved: the next batch starts after it.
    pub last: Option<ObjectId>,
}

/// Primary key of a stored token object; stable for the object's life, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub i64);

/// Which PIN a record or counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOwner {
    /// The security officer.
    So,
    /// The normal user.
    User,
}

/// A token's persistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Label set by `C_InitToken` (or the configured one before that).
    pub label: String,
    /// Serial number, fixed when the token is first created.
    pub serial: String,
    /// Whether `C_InitToken` has run.
    pub initialized: bool,
    /// Encoded SO PIN record (`token/pin.rs`).
    pub so_pin: Option<Vec<u8>>,
    /// Encoded user PIN record, once `C_InitPIN` has run.
    pub user_pin: Option<Vec<u8>>,
    /// Consecutive failed SO logins.
    pub so_failures: u32,
    /// Consecutive failed user logins.
    pub user_failures: u32,
    /// Bumped by every re-initialization, so another process notices its keys are stale.
    pub epoch: i64,
    /// The storage key sealed by a delegated root alone: only in tokens from before PIN
    /// records carried it, until their upgrade.
    pub sealed_storage_key: Option<Vec<u8>>,
    /// Under a delegated root, the MAC of the PIN records and counters (`PinsMac`).
    pub pins_mac: Option<Vec<u8>>,
}

/// What `C_InitToken` writes.
#[derive(Debug, Clone, Copy)]
pub struct TokenInit<'a> {
    /// The new label.
    pub label: &'a str,
    /// The encoded SO PIN record.
    pub so_pin: &'a [u8],
    /// The storage key sealed by a delegated root, if there is one.
    pub sealed_storage_key: Option<&'a [u8]>,
    /// Master key version 1.
    pub first_master: &'a MasterRecord,
}

/// Where a master key version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// The newest version: wraps and unwraps.
    Active,
    /// Superseded: unwraps only.
    DecryptOnly,
    /// No longer unwraps; kept until destroyed.
    Retired,
    /// Its sealed value is gone.
    Destroyed,
}

impl Lifecycle {
    /// The stored (and `CKA_CV_LIFECYCLE`) code.
    pub fn code(self) -> i64 {
        match self {
            Lifecycle::Active => 1,
            Lifecycle::DecryptOnly => 2,
            Lifecycle::Retired => 3,
            Lifecycle::Destroyed => 4,
        }
    }

    /// The state for a stored code.
    pub fn from_code(code: i64) -> Option<Lifecycle> {
        [Lifecycle::Active, Lifecycle::DecryptOnly, Lifecycle::Retired, Lifecycle::Destroyed]
            .into_iter()
            .find(|l| l.code() == code)
    }

    /// Whether a key in this state may unwrap.
    pub fn unwraps(self) -> bool {
        matches!(self, Lifecycle::Active | Lifecycle::DecryptOnly)
    }
}

/// One workspace master key version as stored: sealed by the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterRecord {
    /// 1, 2, ...
    pub version: u32,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// Unix seconds.
    pub created_at: i64,
    /// The workspace's data classification when it was made.
    pub classification: String,
    /// The key sealed by the root; `None` once destroyed.
    pub sealed: Option<Vec<u8>>,
    /// Why an audit alert blocked this version's unwraps, until an SO clears it.
    pub blocked: Option<String>,
    /// MAC over every other field and the workspace (`hierarchy::master_mac`); `None`
    /// only in a row written before the MAC existed.
    pub mac: Option<Vec<u8>>,
    /// Where the key came from when not made by the module (`None`: generated): a BYOK
    /// import's `imported:<how>` (`CKA_CV_ORIGIN`).
    pub origin: Option<String>,
}

/// A token object as stored: index columns in the clear, other attributes encoded, and
/// the secret attributes sealed under the token's storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// `CKA_CLASS`.
    pub class: u64,
    /// `CKA_KEY_TYPE`, for keys.
    pub key_type: Option<u64>,
    /// `CKA_LABEL`.
    pub label: Vec<u8>,
    /// `CKA_ID`, for objects that have one.
    pub ckid: Option<Vec<u8>>,
    /// `CKA_PRIVATE`.
    pub private: bool,
    /// `CKA_UNIQUE_ID`; also the associated data that binds the sealed part to this row.
    pub unique_id: String,
    /// The non-secret attributes, encoded by `object::codec`.
    pub attrs: Vec<u8>,
    /// The secret attributes, sealed (`sealed.rs`); `None` when the object has none.
    pub sealed: Option<Vec<u8>>,
    /// For a stored DEK, the master key version whose wrap record `sealed` is.
    pub master_version: Option<u32>,
    /// Bumped by every change of the object's attributes: an update names the generation
    /// it read and fails when the row moved on, and the sealed part binds it.
    pub generation: u64,
}

/// What [`Backend::update_object`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// The row had the expected generation and now holds the new record.
    Done,
    /// The object no longer exists.
    Gone,
    /// Another change committed since the caller read the row; nothing was written.
    Moved,
}

/// An indexed lookup: every `Some` field must match. Anything else in a find template is
/// filtered above the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexQuery {
    /// Match `CKA_CLASS`.
    pub class: Option<u64>,
    /// Match `CKA_KEY_TYPE`.
    pub key_type: Option<u64>,
    /// Match `CKA_LABEL`.
    pub label: Option<Vec<u8>>,
    /// Match `CKA_ID`.
    pub ckid: Option<Vec<u8>>,
    /// Leave private objects out.
    pub public_only: bool,
}

/// The narrow interface the token keeps its state through.
pub trait Backend: Send + Sync {
    /// Sets the hook told about every committed audit entry (once; later calls are ignored).
    fn set_hook(&self, hook: Arc<dyn AppendHook>);
    /// Holds session-object entries in batches by `policy` (once; later calls are ignored).
    fn set_batching(&self, policy: batch::BatchPolicy);
    /// Where the store is, for log lines and reports (a path, or a server; no secret).
    fn describe(&self) -> String;
    /// The token's state, creating its row (uninitialized) on first sight.
    fn open_token(&self, workspace: &str, default_label: &str) -> Result<TokenRecord>;
    /// The token's current state.
    fn token(&self, workspace: &str) -> Result<TokenRecord>;
    /// `C_InitToken`: wipes the token's objects and master keys, sets label and SO PIN,
    /// clears the user PIN, and stores master key version 1.
    fn init_token(&self, workspace: &str, init: &TokenInit<'_>, event: &AuditEvent) -> Result<()>;
    /// The workspace's master key versions, oldest first.
    fn masters(&self, workspace: &str) -> Result<Vec<MasterRecord>>;
    /// Adds a master key version (rotation); the previously active one becomes decrypt-only.
    /// A version that already exists (another host or process made it first, from the
    /// same read) is refused with [`Error::VersionTaken`] and nothing written.
    fn add_master(&self, workspace: &str, master: &MasterRecord, mac: MasterMac<'_>, event: &AuditEvent) -> Result<()>;
    /// Moves a version to `state` (destroying forgets its sealed value); false if no such version.
    fn set_master_state(
        &self,
        workspace: &str,
        version: u32,
        state: Lifecycle,
        mac: MasterMac<'_>,
        event: &AuditEvent,
    ) -> Result<bool>;
    /// Rewrites master key rows' sealed value and MAC (the upgrade of rows written before
    /// either bound them to the storage key), matched by version.
    fn reseal_masters(&self, workspace: &str, rows: &[MasterRecord], event: &AuditEvent) -> Result<()>;
    /// How many stored records are still sealed under a master key version.
    fn records_under(&self, workspace: &str, version: u32) -> Result<u64>;
    /// Re-seals up to `limit` stored records after `after` (in id order) not yet under
    /// master key `target`, in one transaction with one audit entry.
    fn rewrap_batch(
        &self,
        workspace: &str,
        target: u32,
        after: ObjectId,
        limit: usize,
        reseal: Reseal<'_>,
    ) -> Result<RewrapBatch>;
    /// Replaces one PIN record and resets its failure counter.
    fn set_pin(&self, workspace: &str, owner: PinOwner, record: &[u8], event: &AuditEvent) -> Result<()>;
    /// Reserves one login attempt before the PIN is checked: in one transaction, refuses
    /// (`None`) when `max` consecutive failures are already counted, else counts this
    /// attempt as a failure until a success resets it, and returns the count with it.
    /// Parallel guesses thus never get more verdicts than the lockout allows.
    fn reserve_login(&self, workspace: &str, owner: PinOwner, max: u32) -> Result<Option<u32>>;
    /// From now on, every change to `workspace`'s PIN records or counters recomputes their
    /// MAC with `mac`, and a login reservation checks it.
    fn set_pins_mac(&self, workspace: &str, mac: PinsMac);
    /// Bumps the token epoch (a recovery): every session and login made before it, in any
    /// process, is refused from its next call. Returns the new epoch.
    fn bump_epoch(&self, workspace: &str, event: &AuditEvent) -> Result<i64>;
    /// Forgets the token's root-sealed storage key (once no PIN record needs it).
    fn forget_sealed_storage_key(&self, workspace: &str, event: &AuditEvent) -> Result<()>;
    /// Records a login attempt; returns the consecutive failure count after it.
    fn record_login(&self, workspace: &str, owner: PinOwner, ok: bool, event: &AuditEvent) -> Result<u32>;
    /// Stores a new token object.
    fn insert_object(&self, workspace: &str, record: &ObjectRecord, event: &AuditEvent) -> Result<ObjectId>;
    /// Replaces a stored object's attributes if its row is still at generation
    /// `expected` (compare-and-swap: a change made from a stale read never lands); the
    /// audit entry is written only with the change.
    fn update_object(&self, id: ObjectId, expected: u64, record: &ObjectRecord, event: &AuditEvent) -> Result<Updated>;
    /// Deletes a token object; false when it no longer exists.
    fn delete_object(&self, id: ObjectId, event: &AuditEvent) -> Result<bool>;
    /// One stored object, if it still exists and belongs to `workspace`.
    fn object(&self, workspace: &str, id: ObjectId) -> Result<Option<ObjectRecord>>;
    /// The objects matching an indexed query, in id order.
    fn find_objects(&self, workspace: &str, query: &IndexQuery) -> Result<Vec<(ObjectId, ObjectRecord)>>;
    /// A find with the state a logged-in find is judged against: the objects matching
    /// `query` and, with `with_hierarchy`, the token's epoch and master key rows, as one
    /// read. `C_FindObjectsInit` needs all three at every call (a login voided by a
    /// recovery elsewhere, a version rotated, blocked or destroyed elsewhere), so a server
    /// reads them in one statement (one round trip, one snapshot); an embedded store reads
    /// them one after the other, as this default does.
    fn find_with_hierarchy(&self, workspace: &str, query: &IndexQuery, with_hierarchy: bool) -> Result<FindRead> {
        let objects = self.find_objects(workspace, query)?;
        if !with_hierarchy {
            return Ok(FindRead { objects, hierarchy: None });
        }
        let epoch = self.token(workspace)?.epoch;
        Ok(FindRead { objects, hierarchy: Some((epoch, self.masters(workspace)?)) })
    }
    /// Every audit entry, in sequence order (verification, export).
    fn audit_rows(&self) -> Result<Vec<audit::AuditRow>>;
    /// The signed checkpoints, oldest first.
    fn checkpoints(&self) -> Result<Vec<audit::Checkpoint>>;
    /// The last entry's sequence number and hash.
    fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>>;
    /// Stores a signed checkpoint.
    fn add_checkpoint(&self, checkpoint: &audit::Checkpoint) -> Result<()>;
    /// Appends an event that changes no other state (a refused operation, a logout). A
    /// [`audit::Sync::Batched`] event may be held for the next batch write instead; an
    /// error means the event (and any held before it) is not in the chain.
    fn append_audit(&self, event: &AuditEvent) -> Result<()>;
    /// [`Backend::append_audit`] of an event the caller is done with: one held for a
    /// batch is kept as it is rather than copied (a session key's entry, on every key made).
    fn append_audit_owned(&self, event: AuditEvent) -> Result<()> {
        self.append_audit(&event)
    }
    /// Writes every held batched event now (session close, logout, `C_Finalize`).
    fn flush_audit(&self) -> Result<()>;
    /// Appends several events in one transaction (flushed operation counters).
    fn append_audit_batch(&self, events: &[AuditEvent]) -> Result<()>;
    /// How many logins to `workspace` were refused for a wrong or locked PIN at or after
    /// `since_ms` (Unix ms), by any process (the failed-login alert).
    fn failed_logins_since(&self, workspace: &str, since_ms: i64) -> Result<u64>;
    /// Blocks (`Some(reason)`) or unblocks a master key version's unwraps; false if no
    /// such version.
    fn set_master_blocked(
        &self,
        workspace: &str,
        version: u32,
        reason: Option<&str>,
        mac: MasterMac<'_>,
        event: &AuditEvent,
    ) -> Result<bool>;
    /// Reserves, durably (committed before it returns), the next `count` values of the
    /// GCM IV counter of the key with `fingerprint`, clipped at `max` (inclusive); `None`
    /// once the key's counter space is used up. Values start at 1; no range is ever
    /// handed out twice, by any process.
    fn reserve_iv_counter(&self, fingerprint: &[u8; 32], count: u64, max: u64) -> Result<Option<std::ops::Range<u64>>>;

    /// The workspace's key-encryption key row, if one was made.
    fn kek(&self, workspace: &str) -> Result<Option<quorum::KekRecord>>;
    /// In one transaction, if the KEK row is still at `expected` (`None`: no row yet):
    /// writes `kek`, replaces the custodians, rewrites the master rows' sealed values and
    /// MACs (matched by version), drops the unlock grant and cancels open requests.
    /// False (nothing written) when another process moved the KEK first.
    fn replace_kek(
        &self,
        workspace: &str,
        expected: Option<u32>,
        kek: &quorum::KekRecord,
        custodians: &[quorum::Custodian],
        masters: &[MasterRecord],
        event: &AuditEvent,
    ) -> Result<bool>;
    /// The workspace's custodians, by share index.
    fn custodians(&self, workspace: &str) -> Result<Vec<quorum::Custodian>>;
    /// Reserves one passphrase attempt of custodian `name` as [`Backend::reserve_login`]
    /// does for PINs: `None` when `max` failures are counted, else the count with this one.
    fn reserve_custodian_attempt(&self, workspace: &str, name: &str, max: u32) -> Result<Option<u32>>;
    /// A verified passphrase: resets the custodian's failure count.
    fn custodian_verified(&self, workspace: &str, name: &str) -> Result<()>;
    /// The open request for the same action and KEK generation not expired at
    /// `request.now`, or a new one (recorded by `event`).
    fn open_request(
        &self,
        workspace: &str,
        request: &quorum::NewRequest<'_>,
        event: &AuditEvent,
    ) -> Result<quorum::Request>;
    /// Every request of the workspace, newest first.
    fn requests(&self, workspace: &str) -> Result<Vec<quorum::Request>>;
    /// Records an approval; false (and nothing written) when that custodian already
    /// approved the request.
    fn add_approval(&self, request: i64, approval: &quorum::Approval, event: &AuditEvent) -> Result<bool>;
    /// A request's approvals.
    fn approvals(&self, request: i64) -> Result<Vec<quorum::Approval>>;
    /// Closes an open request as `state` and, in the same transaction, sets the unlock
    /// grant when one is given; refused (nothing written) when the request is no longer
    /// open, so its approvals are used once.
    fn close_request(
        &self,
        workspace: &str,
        request: i64,
        state: quorum::RequestState,
        grant: Option<&quorum::Grant>,
        event: &AuditEvent,
    ) -> Result<()>;
    /// The workspace's unlock grant, if any.
    fn grant(&self, workspace: &str) -> Result<Option<quorum::Grant>>;
    /// Deletes the unlock grant (a lock, or the expiry of the grant that expires at
    /// `expiring`); false when there was none (or another one).
    fn drop_grant(&self, workspace: &str, expiring: Option<i64>, event: &AuditEvent) -> Result<bool>;
    /// The workspace's emergency access window, if one was opened (live or expired).
    fn emergency(&self, workspace: &str) -> Result<Option<quorum::EmergencyWindow>>;
    /// Opens (`Some`) or closes (`None`) the emergency access window.
    fn set_emergency(
        &self,
        workspace: &str,
        window: Option<&quorum::EmergencyWindow>,
        event: &AuditEvent,
    ) -> Result<()>;
    /// Copies the whole store (every workspace, the audit chain and its checkpoints) into
    /// the new file `dest` as one consistent snapshot, while other connections and
    /// processes keep reading and writing (`cvault backup create`, doc/backup.md). The
    /// copy holds only what the store holds: sealed rows, never a root key.
    fn backup_to(&self, dest: &std::path::Path) -> Result<()>;
    /// Every row of every table as one consistent snapshot (`store/copy.rs`): what
    /// `cvault store migrate` moves to another backend.
    fn snapshot(&self) -> Result<copy::Snapshot>;
    /// Writes `snapshot` into this store, which must hold nothing yet, in one transaction.
    fn load_snapshot(&self, snapshot: &copy::Snapshot) -> Result<()>;
    /// The workspace's legal hold, if one stands.
    fn hold(&self, workspace: &str) -> Result<Option<quorum::Hold>>;
    /// Sets (`Some`) or lifts (`None`) the legal hold.
    fn set_hold(&self, workspace: &str, hold: Option<&quorum::Hold>, event: &AuditEvent) -> Result<()>;

    /// Records an issued recovery kit (its id and fingerprint are unique).
    fn add_kit(&self, kit: &recovery::KitRecord, event: &AuditEvent) -> Result<()>;
    /// Records a holder's acknowledgement of a kit, if `fingerprint` is that kit's (the
    /// holder proves possession); false (nothing written) for an unknown kit or another
    /// fingerprint.
    fn ack_kit(&self, ack: &recovery::KitAck, fingerprint: &[u8; 32], event: &AuditEvent) -> Result<bool>;
    /// The workspace's issued kits with their acknowledgements, oldest first.
    fn kits(&self, workspace: &str) -> Result<Vec<recovery::IssuedKit>>;
}
