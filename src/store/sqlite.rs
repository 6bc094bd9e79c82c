//! The SQLite backend: WAL synced at every commit, a busy timeout, a versioned schema with migrations, and a
//! small pool of connections so threads read concurrently.
//!
//! Several processes may open the same file; each write is an `IMMEDIATE` transaction, so
//! the audit chain stays linear across them. Lookups go through indexes on the columns a
//! find template names (`CKA_CLASS`, `CKA_KEY_TYPE`, `CKA_LABEL`, `CKA_ID`).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::audit::{AuditEntry, AuditEvent, AuditRow, Checkpoint, CheckpointSignature, Sync, GENESIS};
use super::batch::{BatchPolicy, Held};
use super::{
    AppendHook, Backend, IndexQuery, Lifecycle, MasterMac, MasterRecord, ObjectId, ObjectRecord, PinOwner, PinsMac,
    Reseal, RewrapBatch, TokenInit, TokenRecord, Updated,
};
use crate::error::{Error, Internal, Result};

mod copy;
mod quorum;
mod recovery;

pub use copy::write_file;

/// File name of the store inside the configured directory.
pub const STORE_FILE: &str = "collabvault.sqlite3";

/// How long a statement waits for another connection's lock unless the config says otherwise.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const POOL_MAX_IDLE: usize = 8;

/// Schema migrations, applied in order; index + 1 is the schema version they produce.
const MIGRATIONS: &[&str] = &[
    // v1: tokens, objects with their lookup indexes, and the audit chain.
    "CREATE TABLE tokens (
        workspace     TEXT PRIMARY KEY,
        label         TEXT NOT NULL,
        serial        TEXT NOT NULL,
        initialized   INTEGER NOT NULL DEFAULT 0,
        so_pin        BLOB,
        user_pin      BLOB,
        so_failures   INTEGER NOT NULL DEFAULT 0,
        user_failures INTEGER NOT NULL DEFAULT 0,
        epoch         INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE objects (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL REFERENCES tokens(workspace),
        class     INTEGER NOT NULL,
        key_type  INTEGER,
        label     BLOB NOT NULL,
        ckid      BLOB,
        private   INTEGER NOT NULL,
        unique_id TEXT NOT NULL UNIQUE,
        attrs     BLOB NOT NULL,
        sealed    BLOB
    );
    CREATE INDEX objects_by_class    ON objects(workspace, class);
    CREATE INDEX objects_by_key_type ON objects(workspace, key_type);
    CREATE INDEX objects_by_label    ON objects(workspace, label);
    CREATE INDEX objects_by_ckid     ON objects(workspace, ckid);
    CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY,
        at_ms     INTEGER NOT NULL,
        pid       INTEGER NOT NULL,
        workspace TEXT,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        object    TEXT,
        outcome   TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );",
    // v2: the key hierarchy: master key versions sealed by the root, the storage key
    // sealed by the root (delegated roots), and the master version of stored DEKs.
    "ALTER TABLE tokens ADD COLUMN sealed_storage_key BLOB;
    CREATE TABLE master_keys (
        workspace      TEXT NOT NULL REFERENCES tokens(workspace),
        version        INTEGER NOT NULL,
        state          INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        classification TEXT NOT NULL,
        sealed         BLOB,
        PRIMARY KEY (workspace, version)
    );
    ALTER TABLE objects ADD COLUMN master_version INTEGER;
    CREATE INDEX objects_by_master_version ON objects(workspace, master_version);",
    // v3: signed checkpoints of the audit chain.
    "CREATE TABLE audit_checkpoints (
        number     INTEGER PRIMARY KEY,
        entry_seq  INTEGER NOT NULL,
        entry_hash BLOB NOT NULL,
        signature  BLOB NOT NULL,
        public_key BLOB NOT NULL
    );",
    // v4: the session of each entry and the operation count of counter entries; an index
    // of refused logins for the analytics (partial: an ordinary append never writes it);
    // a master key version blocked by an alert.
    "ALTER TABLE audit_log ADD COLUMN session INTEGER;
    ALTER TABLE audit_log ADD COLUMN count INTEGER;
    CREATE INDEX audit_refused_logins ON audit_log(workspace, at_ms)
        WHERE action = 'C_Login' AND outcome <> 'CKR_OK';
    ALTER TABLE master_keys ADD COLUMN blocked TEXT;",
    // v5: the next unreserved GCM IV counter value of each key, by key fingerprint (never
    // the key bytes), so no process or session of any token restarts a key's counter.
    "CREATE TABLE gcm_iv_counters (
        fingerprint BLOB PRIMARY KEY,
        next        INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // v6: a generation per object row, for compare-and-swap updates; rows written
    // before it start at 0.
    "ALTER TABLE objects ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;",
    // v7: a MAC over each master key row (under a key derived from the storage key), so
    // its state, block and sealed value cannot be edited in the file; and, under a
    // delegated root, one over each token's PIN records and failure counters (under a
    // key in the root token).
    "ALTER TABLE master_keys ADD COLUMN mac BLOB;
    ALTER TABLE tokens ADD COLUMN pins_mac BLOB;",
    // v8: the encoding each audit entry was hashed in; entries before are format 1.
    "ALTER TABLE audit_log ADD COLUMN format INTEGER NOT NULL DEFAULT 1;",
    // v9: the quorum: each workspace's key-encryption key (sealed by the root, or split
    // among custodians), the custodians and their sealed shares, requests and their
    // approvals, and the unlock grant.
    "CREATE TABLE workspace_keks (
        workspace   TEXT PRIMARY KEY REFERENCES tokens(workspace),
        generation  INTEGER NOT NULL,
        threshold   INTEGER NOT NULL,
        sealed      BLOB,
        check_value BLOB NOT NULL
    );
    CREATE TABLE custodians (
        workspace    TEXT NOT NULL REFERENCES tokens(workspace),
        name         TEXT NOT NULL,
        share_index  INTEGER NOT NULL,
        salt         BLOB NOT NULL,
        memory_kib   INTEGER NOT NULL,
        passes       INTEGER NOT NULL,
        public_key   BLOB NOT NULL,
        sealed_share BLOB NOT NULL,
        failures     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (workspace, name),
        UNIQUE (workspace, share_index)
    );
    CREATE TABLE emergency_windows (
        workspace  TEXT PRIMARY KEY REFERENCES tokens(workspace),
        name       TEXT NOT NULL,
        opened_by  TEXT NOT NULL,
        opened_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE quorum_requests (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace    TEXT NOT NULL REFERENCES tokens(workspace),
        action       TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        generation   INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        state        INTEGER NOT NULL
    );
    CREATE INDEX quorum_requests_open ON quorum_requests(workspace, action, state);
    CREATE TABLE quorum_approvals (
        request      INTEGER NOT NULL REFERENCES quorum_requests(id),
        custodian    TEXT NOT NULL,
        share_index  INTEGER NOT NULL,
        sealed_share BLOB NOT NULL,
        at           INTEGER NOT NULL,
        PRIMARY KEY (request, custodian)
    );
    CREATE TABLE unlock_grants (
        workspace  TEXT PRIMARY KEY REFERENCES tokens(workspace),
        generation INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        sealed     BLOB NOT NULL
    );
    CREATE TABLE legal_holds (
        workspace TEXT PRIMARY KEY REFERENCES tokens(workspace),
        set_by    TEXT NOT NULL,
        reason    TEXT NOT NULL,
        set_at    INTEGER NOT NULL
    );",
    // v10: post-quantum checkpoints: an ML-DSA-65 signature and its public key beside
    // the ECDSA one, and either may be absent (`[audit] checkpoint_signature`), but not
    // both. SQLite cannot drop a NOT NULL, so the table is rebuilt; older rows keep
    // their ECDSA signatures and have no ML-DSA one.
    "CREATE TABLE audit_checkpoints_v10 (
        number           INTEGER PRIMARY KEY,
        entry_seq        INTEGER NOT NULL,
        entry_hash       BLOB NOT NULL,
        signature        BLOB,
        public_key       BLOB,
        mldsa_signature  BLOB,
        mldsa_public_key BLOB,
        CHECK ((signature IS NULL) = (public_key IS NULL)),
        CHECK ((mldsa_signature IS NULL) = (mldsa_public_key IS NULL)),
        CHECK (signature IS NOT NULL OR mldsa_signature IS NOT NULL)
    );
    INSERT INTO audit_checkpoints_v10 (number, entry_seq, entry_hash, signature, public_key)
        SELECT number, entry_seq, entry_hash, signature, public_key FROM audit_checkpoints;
    DROP TABLE audit_checkpoints;
    ALTER TABLE audit_checkpoints_v10 RENAME TO audit_checkpoints;",
    // v11: where a master key version came from (BYOK import); NULL: generated here.
    "ALTER TABLE master_keys ADD COLUMN origin TEXT;",
    // v12: the recovery kit inventory: each kit issued (by kit id and the SHA-256 of its
    // file, with the master key versions it covers and its holder), and each holder's
    // acknowledgement that they still hold it.
    "CREATE TABLE recovery_kits (
        kit_id      TEXT PRIMARY KEY,
        workspace   TEXT NOT NULL,
        fingerprint BLOB NOT NULL UNIQUE,
        versions    TEXT NOT NULL,
        holder      TEXT NOT NULL,
        issued_at   INTEGER NOT NULL
    );
    CREATE INDEX recovery_kits_by_workspace ON recovery_kits (workspace);
    CREATE TABLE recovery_kit_acks (
        kit_id TEXT NOT NULL REFERENCES recovery_kits (kit_id),
        holder TEXT NOT NULL,
        at     INTEGER NOT NULL
    );
    CREATE INDEX recovery_kit_acks_by_kit ON recovery_kit_acks (kit_id);",
];

/// The store in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    /// How long a statement waits for another process's lock before failing with SQLITE_BUSY.
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    hook: std::sync::OnceLock<std::sync::Arc<dyn AppendHook>>,
    /// Per workspace, the MAC of its PIN records and counters (delegated roots only).
    pins_macs: Mutex<std::collections::HashMap<String, PinsMac>>,
    /// With a policy, session-object entries wait in `held` (see `store/batch.rs`).
    batching: std::sync::OnceLock<BatchPolicy>,
    /// Held session-object entries. Locked across every audit write, so entries reach the
    /// chain in the order the calls made them.
    held: Mutex<Held>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, migrating its schema.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        SqliteStore::open_with_busy_timeout(dir, BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] whose statements wait `busy_timeout` for another process's
    /// lock; past it a write fails (`Error::Store`) and changes nothing.
    pub fn open_with_busy_timeout(dir: &Path, busy_timeout: Duration) -> Result<SqliteStore> {
        create_private_dir(dir)?;
        let store = SqliteStore {
            path: dir.join(STORE_FILE),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            hook: std::sync::OnceLock::new(),
            pins_macs: Mutex::new(std::collections::HashMap::new()),
            batching: std::sync::OnceLock::new(),
            held: Mutex::new(Held::default()),
        };
        make_private_files(&store.path)?;
        let mut conn = store.connect()?;
        migrate(&mut conn)?;
        store.idle.lock().push(conn);
        Ok(store)
    }

    /// Sets the hook told about every committed audit entry (once; later calls are ignored).
    pub fn set_hook(&self, hook: std::sync::Arc<dyn AppendHook>) {
        drop(self.hook.set(hook));
    }

    /// Holds session-object entries in batches by `policy` (once; later calls are ignored).
    pub fn set_batching(&self, policy: BatchPolicy) {
        if self.batching.set(policy).is_err() {
            log::debug!("store: audit batching was already set; {policy:?} ignored");
        }
    }

    fn admit(&self, events: &[AuditEvent]) -> Result<()> {
        match self.hook.get() {
            Some(hook) => hook.admit(self, events),
            None => Ok(()),
        }
    }

    fn appended(&self, seq: i64, event: &AuditEvent) {
        if let Some(hook) = self.hook.get() {
            hook.appended(self, seq, event);
        }
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)
            .map_err(|e| Error::Store(format!("cannot open {}: {e}", self.path.display())))?;
        conn.busy_timeout(self.busy_timeout)?;
        // Plans are fixed once prepared: with STAT4 (which the bundled build enables)
        // SQLite would otherwise re-prepare a cached statement whenever a bound value
        // on an indexed column changes, which is every lookup (measured: an indexed find
        // 12-15 us instead of 3 us). Without ANALYZE data there is nothing to gain.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL, not NORMAL: in WAL mode NORMAL syncs only at checkpoints, so a committed
        // rotation or audit entry can roll back on power loss after applications acted
        // on it. FULL syncs the WAL at every commit (DESIGN: durable before success).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted content (a destroyed master key's sealed value, a replaced PIN record)
        // is overwritten with zeros, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection; threads never wait on each other for one.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        let mut idle = self.idle.lock();
        if idle.len() < POOL_MAX_IDLE {
            idle.push(conn);
        }
        out
    }

    /// Runs `f` in an immediate (write-locked) transaction and appends `event` to the audit
    /// chain inside it, so the change and its record commit together.
    fn write<T>(&self, event: &AuditEvent, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_many(std::slice::from_ref(event), f)
    }

    /// [`SqliteStore::write`] with several entries, appended in order after the change.
    fn write_many<T>(&self, events: &[AuditEvent], f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.commit(events, Sync::Full, f)
    }

    /// Entries alone: fsynced lazily only when every one of them allows it.
    fn append(&self, events: &[AuditEvent]) -> Result<()> {
        let lazy = !events.is_empty() && events.iter().all(|e| e.sync != Sync::Full);
        self.commit(events, if lazy { Sync::Lazy } else { Sync::Full }, |_| Ok(()))
    }

    /// A batched entry under `policy`: held, or written at once with the held ones.
    fn hold(&self, event: AuditEvent, policy: &BatchPolicy) -> Result<()> {
        self.admit(std::slice::from_ref(&event))?;
        let mut held = self.held.lock();
        if !held.must_write_with(policy) {
            held.hold(event);
            return Ok(());
        }
        let (_, written) = self.commit_held(&mut held, std::slice::from_ref(&event), Sync::Lazy, |_| Ok(()))?;
        drop(held);
        self.announce(written);
        Ok(())
    }

    /// Runs `f` and appends `events` in one immediate transaction; `sync` says whether
    /// the commit is fsynced before returning (a change to stored state always is).
    fn commit<T>(&self, events: &[AuditEvent], sync: Sync, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.admit(events)?;
        let mut held = self.held.lock();
        let (out, written) = self.commit_held(&mut held, events, sync, f)?;
        // The hooks run unlocked: a checkpoint they make reads the store.
        drop(held);
        self.announce(written);
        Ok(out)
    }

    /// [`SqliteStore::commit`] after the held entries, which go first in the same
    /// transaction; returns every entry written with its sequence number.
    fn commit_held<T>(
        &self,
        held: &mut Held,
        events: &[AuditEvent],
        sync: Sync,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<(T, Vec<(i64, AuditEvent)>)> {
        let lazy = sync == Sync::Lazy;
        // Whether the change itself refused (a lost rotation race, a stale generation):
        // the held entries were not at fault and stay held, not failed.
        let mut refused = false;
        let result = self.with_conn(|conn| {
            if lazy {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
            }
            let committed = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&tx).inspect_err(|_| refused = true)?;
                let mut seqs = append_entries(&tx, held.events())?;
                seqs.extend(append_entries(&tx, events)?);
                tx.commit()?;
                Ok((out, seqs))
            })();
            if lazy {
                // Back to FULL whatever happened: the pooled connection serves the
                // hierarchy's writes next.
                conn.pragma_update(None, "synchronous", "FULL")?;
            }
            committed
        });
        match result {
            Ok((out, seqs)) => {
                let written = held.written().into_iter().chain(events.iter().cloned());
                Ok((out, seqs.into_iter().zip(written).collect()))
            }
            Err(e) if !refused && !held.events().is_empty() => Err(held.failed(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Tells the hook about committed entries, in chain order.
    fn announce(&self, written: Vec<(i64, AuditEvent)>) {
        for (seq, event) in &written {
            self.appended(*seq, event);
        }
    }

    /// Writes the held entries, if any.
    fn flush_held(&self) -> Result<()> {
        let mut held = self.held.lock();
        if held.events().is_empty() {
            return Ok(());
        }
        let (_, written) = self.commit_held(&mut held, &[], Sync::Lazy, |_| Ok(()))?;
        drop(held);
        self.announce(written);
        Ok(())
    }
}

impl Drop for SqliteStore {
    /// A module dropped without `C_Finalize` (an unload) still writes what it holds.
    fn drop(&mut self) {
        if let Err(e) = self.flush_held() {
            log::error!("store: held audit entries lost at unload: {e}");
        }
    }
}

impl SqliteStore {
    fn pins_mac_of(&self, workspace: &str) -> Option<PinsMac> {
        self.pins_macs.lock().get(workspace).cloned()
    }

    /// Recomputes the token row's PIN MAC inside `tx`, after a change to it.
    fn refresh_pins_mac(&self, tx: &Transaction<'_>, workspace: &str) -> Result<()> {
        let Some(mac) = self.pins_mac_of(workspace) else {
            return Ok(());
        };
        let rec = read_token(tx, workspace)?.ok_or_else(|| Error::Store(format!("token {workspace:?} vanished")))?;
        tx.execute("UPDATE tokens SET pins_mac = ?2 WHERE workspace = ?1", params![workspace, mac(&rec)?])?;
        Ok(())
    }

    /// Moves the WAL into the database and empties it, so a destroyed value's old page
    /// images leave the WAL file too; a reader in another process may hold it back (logged).
    fn checkpoint_truncate(&self) {
        let result =
            self.with_conn(|conn| Ok(conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))?));
        match result {
            Ok(0) => {}
            Ok(_) => log::warn!("store: the WAL checkpoint after a destroy was blocked by a reader; it will follow"),
            Err(e) => log::warn!("store: the WAL checkpoint after a destroy failed: {e}"),
        }
    }
}

/// Creates `path` empty and owner-only (it must not exist): `VACUUM INTO` fills an empty
/// file, and a backup is as secret as the store.
fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| Error::Store(format!("cannot create {}: {e}", path.display())))?;
    Ok(())
}

/// What [`replace_store`] did with the store it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where the replaced database file now is (`None`: there was no store).
    pub file: Option<PathBuf>,
}

/// Replaces the store in `dir` with the database file `replacement` (moved, so it must be
/// on the same file system), keeping the old file as `<store>.before-restore-<stamp>`.
///
/// Refused, with nothing changed, while any other connection has the store open (another
/// process using the token, or this one): leaving WAL mode (`journal_mode=DELETE`) needs
/// every other connection closed, since each holds a shared lock on the WAL index while
/// it is open; once left, an EXCLUSIVE transaction holds the old file locked while the
/// files are swapped, so no connection writes to it in between. A process that opens the
/// store after the swap opens the restored file.
pub fn replace_store(dir: &Path, replacement: &Path, stamp: &str) -> Result<SetAside> {
    let live = dir.join(STORE_FILE);
    if !live.exists() {
        std::fs::rename(replacement, &live)
            .map_err(|e| Error::Store(format!("cannot move {} into place: {e}", replacement.display())))?;
        return Ok(SetAside { file: None });
    }
    let in_use = |e: &dyn std::fmt::Display| {
        Error::Store(format!(
            "the store {} is in use by another process (close the applications using the token first): {e}",
            live.display()
        ))
    };
    let mut conn = Connection::open(&live)?;
    conn.busy_timeout(Duration::from_millis(200))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0)).map_err(|e| in_use(&e))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(in_use(&format!("journal mode stays {mode}")));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(|e| in_use(&e))?;
    let aside = dir.join(format!("{STORE_FILE}.before-restore-{stamp}"));
    let moved = |from: &Path, to: &Path| {
        std::fs::rename(from, to)
            .map_err(|e| Error::Store(format!("cannot move {} to {}: {e}", from.display(), to.display())))
    };
    moved(&live, &aside)?;
    // A WAL or index left beside the old name would be applied to the new file.
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = PathBuf::from(format!("{}{suffix}", live.display()));
        if stale.exists() {
            moved(&stale, &PathBuf::from(format!("{}{suffix}", aside.display())))?;
        }
    }
    moved(replacement, &live)?;
    if let Ok(d) = std::fs::File::open(dir) {
        drop(d.sync_all());
    }
    drop(tx);
    Ok(SetAside { file: Some(aside) })
}

/// Owner-only permissions for the store directory (files are covered separately).
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |e: std::io::Error| Error::Store(format!("cannot create store directory {}: {e}", dir.display()));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(failed)?;
    // An existing directory keeps its own mode: narrow it.
    restrict(dir, 0o700)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Store(format!("cannot create store directory {}: {e}", dir.display())))
}

/// Creates the database file owner-only before SQLite opens it (SQLite gives its `-wal`
/// and `-shm` files the database file's permissions), and narrows an existing database,
/// WAL or shared-memory file left readable by others (an older release, a restored
/// backup), with a log line.
#[cfg(unix)]
fn make_private_files(db: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(|e| Error::Store(format!("cannot create {}: {e}", db.display())))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            restrict(&path, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private_files(_db: &Path) -> Result<()> {
    Ok(())
}

/// Sets `path` to `mode` when its permissions allow more, logging the change.
#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: std::io::Error| Error::Store(format!("cannot restrict {}: {e}", path.display()));
    let now = std::fs::metadata(path).map_err(failed)?.permissions().mode() & 0o777;
    if now & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed)?;
        log::warn!("store: {} had permissions {now:o}, now {mode:o} (owner only)", path.display());
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", [])?;
    let version: usize = tx
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get::<_, String>(0))
        .optional()?
        .map(|v| v.parse().map_err(|_| Error::Store(format!("schema_version {v:?} is not a number"))))
        .transpose()?
        .unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(Error::Store(format!(
            "store schema version {version} is newer than this module understands ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        log::info!("store schema migrated to version {}", i + 1);
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [MIGRATIONS.len().to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

fn append_entry(tx: &Transaction<'_>, event: &AuditEvent) -> Result<i64> {
    let seqs = append_entries(tx, std::slice::from_ref(event))?;
    seqs.first().copied().ok_or_else(|| Error::Store("no audit entry written".into()))
}

/// Appends `events` to the chain in order, in `tx`, and returns their sequence numbers.
/// The chain's last entry is read once per call and carried from one entry to the next
/// (the transaction is immediate: nothing else writes the chain meanwhile), so a batch
/// of held entries costs one query and one prepared insert, not one of each per entry.
fn append_entries(tx: &Transaction<'_>, events: &[AuditEvent]) -> Result<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (mut seq, mut prev) = match last {
        Some((seq, hash)) => (seq, hash),
        None => (0, GENESIS.to_vec()),
    };
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit_log (seq, at_ms, pid, workspace, actor, action, object, outcome, prev_hash, hash,
         session, count, format) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let pid = std::process::id();
    let mut seqs = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let entry = AuditEntry { seq, at_ms, pid, event };
        let hash = entry.chain_hash(&prev);
        insert.execute(params![
            seq,
            at_ms,
            pid,
            event.workspace,
            event.actor,
            event.action,
            event.object,
            event.outcome,
            prev,
            &hash[..],
            event.session.map(|s| s as i64),
            event.count.map(|c| c as i64),
            super::audit::FORMAT,
        ])?;
        prev.clear();
        prev.extend_from_slice(&hash);
        seqs.push(seq);
    }
    Ok(seqs)
}

fn insert_master(tx: &Transaction<'_>, workspace: &str, m: &MasterRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO master_keys (workspace, version, state, created_at, classification, sealed, blocked, mac, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            workspace,
            m.version,
            m.state.code(),
            m.created_at,
            m.classification,
            m.sealed,
            m.blocked,
            m.mac,
            m.origin
        ],
    )?;
    Ok(())
}

const MASTER_COLUMNS: &str = "version, state, created_at, classification, sealed, blocked, mac, origin";

fn read_masters(conn: &Connection, workspace: &str, version: Option<u32>) -> Result<Vec<MasterRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MASTER_COLUMNS} FROM master_keys WHERE workspace = ?1 AND (?2 IS NULL OR version = ?2)
         ORDER BY version"
    ))?;
    let rows = stmt.query_map(params![workspace, version], |r| {
        Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
    })?;
    rows.map(|row| {
        let (version, state, created_at, classification, sealed, blocked, mac, origin) = row?;
        let state = Lifecycle::from_code(state)
            .ok_or_else(|| Error::Store(format!("master key v{version} has unknown state {state}")))?;
        Ok(MasterRecord { version, state, created_at, classification, sealed, blocked, mac, origin })
    })
    .collect()
}

/// Rewrites one master key row as `change` makes it, with its MAC recomputed, inside `tx`;
/// false when there is no such version.
fn update_master(
    tx: &Transaction<'_>,
    workspace: &str,
    version: u32,
    mac: MasterMac<'_>,
    change: impl FnOnce(&mut MasterRecord),
) -> Result<bool> {
    let Some(mut row) = read_masters(tx, workspace, Some(version))?.pop() else {
        return Ok(false);
    };
    change(&mut row);
    row.mac = Some(mac(&row)?);
    tx.execute(
        "UPDATE master_keys SET state = ?3, sealed = ?4, blocked = ?5, mac = ?6 WHERE workspace = ?1 AND version = ?2",
        params![workspace, version, row.state.code(), row.sealed, row.blocked, row.mac],
    )?;
    Ok(true)
}

fn pin_columns(owner: PinOwner) -> (&'static str, &'static str) {
    match owner {
        PinOwner::So => ("so_pin", "so_failures"),
        PinOwner::User => ("user_pin", "user_failures"),
    }
}

fn read_token(conn: &Connection, workspace: &str) -> Result<Option<TokenRecord>> {
    Ok(conn
        .query_row(
            "SELECT label, serial, initialized, so_pin, user_pin, so_failures, user_failures, epoch,
             sealed_storage_key, pins_mac FROM tokens WHERE workspace = ?1",
            [workspace],
            |r| {
                Ok(TokenRecord {
                    label: r.get(0)?,
                    serial: r.get(1)?,
                    initialized: r.get(2)?,
                    so_pin: r.get(3)?,
                    user_pin: r.get(4)?,
                    so_failures: r.get(5)?,
                    user_failures: r.get(6)?,
                    epoch: r.get(7)?,
                    sealed_storage_key: r.get(8)?,
                    pins_mac: r.get(9)?,
                })
            },
        )
        .optional()?)
}

/// The find query for `q`: only the columns it names appear in the WHERE clause, so
/// SQLite picks the matching index (an `OR ? IS NULL` form would defeat every index).
fn find_sql(workspace: &str, q: &IndexQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE workspace = ?1");
    let mut args = vec![Value::Text(workspace.to_string())];
    let mut add = |column: &str, value: Value| {
        args.push(value);
        sql.push_str(&format!(" AND {column} = ?{}", args.len()));
    };
    if let Some(c) = q.class {
        add("class", Value::Integer(c as i64));
    }
    if let Some(k) = q.key_type {
        add("key_type", Value::Integer(k as i64));
    }
    if let Some(l) = &q.label {
        add("label", Value::Blob(l.clone()));
    }
    if let Some(id) = &q.ckid {
        add("ckid", Value::Blob(id.clone()));
    }
    if q.public_only {
        sql.push_str(" AND private = 0");
    }
    sql.push_str(" ORDER BY id");
    (sql, args)
}

/// Runs an INSERT or UPDATE of the objects table: `first` binds `?1` (the workspace, or
/// the row id), the record's columns `?2` to `?11`.
fn execute_with_record(
    stmt: &mut rusqlite::CachedStatement<'_>,
    first: &dyn rusqlite::ToSql,
    rec: &ObjectRecord,
) -> rusqlite::Result<usize> {
    stmt.execute(params![
        first,
        rec.class as i64,
        rec.key_type.map(|v| v as i64),
        rec.label,
        rec.ckid,
        rec.private,
        rec.unique_id,
        rec.attrs,
        rec.sealed,
        rec.master_version,
        i64::try_from(rec.generation).unwrap_or(i64::MAX)
    ])
}

/// The next batch of a re-wrap job: records after a cursor (`?4`) in row order.
fn rewrap_next_sql() -> String {
    format!(
        "SELECT {OBJECT_COLUMNS} FROM objects NOT INDEXED WHERE id > ?4 AND workspace = ?1
         AND master_version IS NOT NULL AND master_version <> ?2 ORDER BY id LIMIT ?3"
    )
}

/// Refused logins since a time. The WHERE clause repeats the partial index's
/// (`audit_refused_logins`), so the planner uses it.
const FAILED_LOGINS_SQL: &str = "SELECT count(*) FROM audit_log WHERE action = 'C_Login' AND outcome <> 'CKR_OK'
     AND workspace = ?1 AND at_ms >= ?2 AND outcome IN ('CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED')";

const OBJECT_COLUMNS: &str =
    "id, class, key_type, label, ckid, private, unique_id, attrs, sealed, master_version, generation";

fn object_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ObjectId, ObjectRecord)> {
    Ok((
        ObjectId(r.get(0)?),
        ObjectRecord {
            class: r.get::<_, i64>(1)? as u64,
            key_type: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
            label: r.get(3)?,
            ckid: r.get(4)?,
            private: r.get(5)?,
            unique_id: r.get(6)?,
            attrs: r.get(7)?,
            sealed: r.get(8)?,
            master_version: r.get(9)?,
            generation: r.get::<_, i64>(10)? as u64,
        },
    ))
}

impl Backend for SqliteStore {
    fn set_hook(&self, hook: std::sync::Arc<dyn AppendHook>) {
        SqliteStore::set_hook(self, hook);
    }

    fn set_batching(&self, policy: BatchPolicy) {
        SqliteStore::set_batching(self, policy);
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn reserve_iv_counter(&self, fingerprint: &[u8; 32], count: u64, max: u64) -> Result<Option<Range<u64>>> {
        let max = i64::try_from(max).map_err(|_| Error::Internal(Internal::IvCounterRange))?;
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        // No audit entry: a reservation changes no key, object or login, and one every
        // `count` messages would only add noise to the chain.
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let next: i64 = tx
                .prepare_cached("SELECT next FROM gcm_iv_counters WHERE fingerprint = ?1")?
                .query_row([&fingerprint[..]], |r| r.get(0))
                .optional()?
                .unwrap_or(1);
            if next > max || next < 1 {
                return Ok(None);
            }
            let end = next.saturating_add(count).min(max.saturating_add(1));
            tx.prepare_cached(
                "INSERT INTO gcm_iv_counters (fingerprint, next) VALUES (?1, ?2)
                 ON CONFLICT(fingerprint) DO UPDATE SET next = excluded.next",
            )?
            .execute(params![&fingerprint[..], end])?;
            // Committed before any value of the range is handed out: a crash only skips them.
            tx.commit()?;
            let range = u64::try_from(next).unwrap_or(0)..u64::try_from(end).unwrap_or(0);
            Ok(Some(range))
        })
    }

    fn kek(&self, workspace: &str) -> Result<Option<super::quorum::KekRecord>> {
        self.with_conn(|conn| quorum::kek(conn, workspace))
    }

    fn replace_kek(
        &self,
        workspace: &str,
        expected: Option<u32>,
        kek: &super::quorum::KekRecord,
        custodians: &[super::quorum::Custodian],
        masters: &[MasterRecord],
        event: &AuditEvent,
    ) -> Result<bool> {
        self.quorum_replace_kek(workspace, expected, kek, custodians, masters, event)
    }

    fn custodians(&self, workspace: &str) -> Result<Vec<super::quorum::Custodian>> {
        self.with_conn(|conn| quorum::custodians(conn, workspace))
    }

    fn reserve_custodian_attempt(&self, workspace: &str, name: &str, max: u32) -> Result<Option<u32>> {
        self.quorum_reserve_attempt(workspace, name, max)
    }

    fn custodian_verified(&self, workspace: &str, name: &str) -> Result<()> {
        self.quorum_verified(workspace, name)
    }

    fn open_request(
        &self,
        workspace: &str,
        request: &super::quorum::NewRequest<'_>,
        event: &AuditEvent,
    ) -> Result<super::quorum::Request> {
        self.quorum_open_request(workspace, request, event)
    }

    fn requests(&self, workspace: &str) -> Result<Vec<super::quorum::Request>> {
        self.with_conn(|conn| quorum::requests(conn, workspace))
    }

    fn add_approval(&self, request: i64, approval: &super::quorum::Approval, event: &AuditEvent) -> Result<bool> {
        self.quorum_add_approval(request, approval, event)
    }

    fn approvals(&self, request: i64) -> Result<Vec<super::quorum::Approval>> {
        self.with_conn(|conn| quorum::approvals(conn, request))
    }

    fn close_request(
        &self,
        workspace: &str,
        request: i64,
        state: super::quorum::RequestState,
        grant: Option<&super::quorum::Grant>,
        event: &AuditEvent,
    ) -> Result<()> {
        self.quorum_close_request(workspace, request, state, grant, event)
    }

    fn grant(&self, workspace: &str) -> Result<Option<super::quorum::Grant>> {
        self.with_conn(|conn| quorum::grant(conn, workspace))
    }

    fn drop_grant(&self, workspace: &str, expiring: Option<i64>, event: &AuditEvent) -> Result<bool> {
        self.quorum_drop_grant(workspace, expiring, event)
    }

    fn emergency(&self, workspace: &str) -> Result<Option<super::quorum::EmergencyWindow>> {
        self.with_conn(|conn| quorum::emergency(conn, workspace))
    }

    fn set_emergency(
        &self,
        workspace: &str,
        window: Option<&super::quorum::EmergencyWindow>,
        event: &AuditEvent,
    ) -> Result<()> {
        self.quorum_set_emergency(workspace, window, event)
    }

    fn hold(&self, workspace: &str) -> Result<Option<super::quorum::Hold>> {
        self.with_conn(|conn| quorum::hold(conn, workspace))
    }

    fn set_hold(&self, workspace: &str, hold: Option<&super::quorum::Hold>, event: &AuditEvent) -> Result<()> {
        self.quorum_set_hold(workspace, hold, event)
    }

    fn add_kit(&self, kit: &super::recovery::KitRecord, event: &AuditEvent) -> Result<()> {
        self.recovery_add_kit(kit, event)
    }

    fn ack_kit(&self, ack: &super::recovery::KitAck, fingerprint: &[u8; 32], event: &AuditEvent) -> Result<bool> {
        self.recovery_ack_kit(ack, fingerprint, event)
    }

    fn kits(&self, workspace: &str) -> Result<Vec<super::recovery::IssuedKit>> {
        self.with_conn(|conn| recovery::kits(conn, workspace))
    }

    fn open_token(&self, workspace: &str, default_label: &str) -> Result<TokenRecord> {
        self.with_conn(|conn| {
            if let Some(t) = read_token(conn, workspace)? {
                return Ok(t);
            }
            let mut serial = [0u8; 8];
            crate::mechanism::primitives::fill_random(&mut serial)?;
            let serial = hex::encode(serial);
            conn.execute(
                "INSERT OR IGNORE INTO tokens (workspace, label, serial) VALUES (?1, ?2, ?3)",
                params![workspace, default_label, serial],
            )?;
            read_token(conn, workspace)?.ok_or_else(|| Error::Store(format!("token {workspace:?} vanished")))
        })
    }

    fn token(&self, workspace: &str) -> Result<TokenRecord> {
        self.with_conn(|conn| {
            read_token(conn, workspace)?.ok_or_else(|| Error::Store(format!("token {workspace:?} is not in the store")))
        })
    }

    fn init_token(&self, workspace: &str, init: &TokenInit<'_>, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            let wiped = tx.execute("DELETE FROM objects WHERE workspace = ?1", [workspace])?;
            tx.execute("DELETE FROM master_keys WHERE workspace = ?1", [workspace])?;
            // A new token starts without a KEK: the first login makes one (as it does
            // for a store from before the KEK existed).
            tx.execute(
                "DELETE FROM quorum_approvals WHERE request IN (SELECT id FROM quorum_requests WHERE workspace = ?1)",
                [workspace],
            )?;
            for table in ["workspace_keks", "custodians", "quorum_requests", "unlock_grants", "emergency_windows"] {
                tx.execute(&format!("DELETE FROM {table} WHERE workspace = ?1"), [workspace])?;
            }
            tx.execute(
                "UPDATE tokens SET label = ?2, initialized = 1, so_pin = ?3, user_pin = NULL,
                 so_failures = 0, user_failures = 0, epoch = epoch + 1, sealed_storage_key = ?4
                 WHERE workspace = ?1",
                params![workspace, init.label, init.so_pin, init.sealed_storage_key],
            )?;
            insert_master(tx, workspace, init.first_master)?;
            self.refresh_pins_mac(tx, workspace)?;
            log::info!("token {workspace:?} initialized; {wiped} objects wiped");
            Ok(())
        })
    }

    fn masters(&self, workspace: &str) -> Result<Vec<MasterRecord>> {
        self.with_conn(|conn| read_masters(conn, workspace, None))
    }

    fn add_master(&self, workspace: &str, master: &MasterRecord, mac: MasterMac<'_>, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            // Read under the write lock: another process's rotation from the same version
            // committed first; this one is refused with nothing written (as on PostgreSQL).
            let rows = read_masters(tx, workspace, None)?;
            if rows.iter().any(|m| m.version == master.version) {
                log::warn!("{workspace}: another process made wmk v{} first; nothing written", master.version);
                return Err(Error::VersionTaken(master.version));
            }
            // The newest version alone wraps; the one it replaces only unwraps.
            let active: Vec<u32> =
                rows.into_iter().filter(|m| m.state == Lifecycle::Active).map(|m| m.version).collect();
            for version in active {
                update_master(tx, workspace, version, mac, |m| m.state = Lifecycle::DecryptOnly)?;
            }
            insert_master(tx, workspace, master)
        })
    }

    fn set_master_state(
        &self,
        workspace: &str,
        version: u32,
        state: Lifecycle,
        mac: MasterMac<'_>,
        event: &AuditEvent,
    ) -> Result<bool> {
        let found = self.write(event, |tx| {
            update_master(tx, workspace, version, mac, |m| {
                m.state = state;
                if state == Lifecycle::Destroyed {
                    m.sealed = None;
                }
            })
        })?;
        if state == Lifecycle::Destroyed {
            self.checkpoint_truncate();
        }
        Ok(found)
    }

    fn reseal_masters(&self, workspace: &str, rows: &[MasterRecord], event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            for m in rows {
                tx.execute(
                    "UPDATE master_keys SET sealed = ?3, mac = ?4 WHERE workspace = ?1 AND version = ?2",
                    params![workspace, m.version, m.sealed, m.mac],
                )?;
            }
            Ok(())
        })
    }

    fn records_under(&self, workspace: &str, version: u32) -> Result<u64> {
        self.with_conn(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM objects WHERE workspace = ?1 AND master_version = ?2",
                params![workspace, version],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn set_pin(&self, workspace: &str, owner: PinOwner, record: &[u8], event: &AuditEvent) -> Result<()> {
        let (pin, failures) = pin_columns(owner);
        self.write(event, |tx| {
            tx.execute(
                &format!("UPDATE tokens SET {pin} = ?2, {failures} = 0 WHERE workspace = ?1"),
                params![workspace, record],
            )?;
            self.refresh_pins_mac(tx, workspace)
        })
    }

    fn set_pins_mac(&self, workspace: &str, mac: PinsMac) {
        self.pins_macs.lock().insert(workspace.to_string(), mac);
    }

    fn bump_epoch(&self, workspace: &str, event: &AuditEvent) -> Result<i64> {
        self.write(event, |tx| {
            tx.execute("UPDATE tokens SET epoch = epoch + 1 WHERE workspace = ?1", [workspace])?;
            // The epoch is under the PIN MAC: recomputed with it.
            self.refresh_pins_mac(tx, workspace)?;
            let epoch: i64 =
                tx.query_row("SELECT epoch FROM tokens WHERE workspace = ?1", [workspace], |r| r.get(0))?;
            Ok(epoch)
        })
    }

    fn forget_sealed_storage_key(&self, workspace: &str, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            tx.execute("UPDATE tokens SET sealed_storage_key = NULL WHERE workspace = ?1", [workspace])?;
            self.refresh_pins_mac(tx, workspace)
        })
    }

    fn reserve_login(&self, workspace: &str, owner: PinOwner, max: u32) -> Result<Option<u32>> {
        let (_, failures) = pin_columns(owner);
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The caller checked the row; check again under the write lock, so a counter
            // reset in the file between the two is refused too.
            if let Some(mac) = self.pins_mac_of(workspace) {
                let rec = read_token(&tx, workspace)?.ok_or_else(|| Error::Store(format!("no token {workspace:?}")))?;
                let expected = mac(&rec)?;
                if rec.pins_mac.as_deref().is_some_and(|m| !super::sealed::mac_eq(m, &expected)) {
                    log::error!(
                        "{workspace}: the PIN records or failure counters fail their MAC (edited in the file?)"
                    );
                    return Err(Error::Integrity("the PIN records fail their MAC"));
                }
            }
            let now: Option<u32> = tx
                .query_row(
                    &format!(
                        "UPDATE tokens SET {failures} = {failures} + 1 WHERE workspace = ?1 AND {failures} < ?2
                         RETURNING {failures}"
                    ),
                    params![workspace, max],
                    |r| r.get(0),
                )
                .optional()?;
            if now.is_some() {
                self.refresh_pins_mac(&tx, workspace)?;
            }
            tx.commit()?;
            Ok(now)
        })
    }

    fn record_login(&self, workspace: &str, owner: PinOwner, ok: bool, event: &AuditEvent) -> Result<u32> {
        let (_, failures) = pin_columns(owner);
        let update = if ok { "0" } else { &format!("{failures} + 1") };
        self.write(event, |tx| {
            let now = tx.query_row(
                &format!("UPDATE tokens SET {failures} = {update} WHERE workspace = ?1 RETURNING {failures}"),
                [workspace],
                |r| r.get(0),
            )?;
            self.refresh_pins_mac(tx, workspace)?;
            Ok(now)
        })
    }

    fn insert_object(&self, workspace: &str, rec: &ObjectRecord, event: &AuditEvent) -> Result<ObjectId> {
        self.write(event, |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO objects (workspace, class, key_type, label, ckid, private, unique_id, attrs, sealed,
                 master_version, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            execute_with_record(&mut insert, &workspace, rec)?;
            Ok(ObjectId(tx.last_insert_rowid()))
        })
    }

    fn update_object(&self, id: ObjectId, expected: u64, rec: &ObjectRecord, event: &AuditEvent) -> Result<Updated> {
        let expected = i64::try_from(expected).map_err(|_| Error::Integrity("object generation out of range"))?;
        self.admit(std::slice::from_ref(event))?;
        let (outcome, seq) = self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<i64> = tx
                .prepare_cached("SELECT generation FROM objects WHERE id = ?1")?
                .query_row([id.0], |r| r.get(0))
                .optional()?;
            match found {
                None => return Ok((Updated::Gone, None)),
                Some(g) if g != expected => return Ok((Updated::Moved, None)),
                Some(_) => {}
            }
            let mut update = tx.prepare_cached(
                "UPDATE objects SET class = ?2, key_type = ?3, label = ?4, ckid = ?5, private = ?6,
                 unique_id = ?7, attrs = ?8, sealed = ?9, master_version = ?10, generation = ?11 WHERE id = ?1",
            )?;
            execute_with_record(&mut update, &id.0, rec)?;
            drop(update);
            let seq = append_entry(&tx, event)?;
            tx.commit()?;
            Ok((Updated::Done, Some(seq)))
        })?;
        if let Some(seq) = seq {
            self.appended(seq, event);
        }
        Ok(outcome)
    }

    fn delete_object(&self, id: ObjectId, event: &AuditEvent) -> Result<bool> {
        self.write(event, |tx| Ok(tx.prepare_cached("DELETE FROM objects WHERE id = ?1")?.execute([id.0])? == 1))
    }

    fn object(&self, workspace: &str, id: ObjectId) -> Result<Option<ObjectRecord>> {
        self.with_conn(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ?1 AND workspace = ?2"))?;
            Ok(stmt.query_row(params![id.0, workspace], object_from_row).optional()?.map(|(_, rec)| rec))
        })
    }

    fn find_objects(&self, workspace: &str, q: &IndexQuery) -> Result<Vec<(ObjectId, ObjectRecord)>> {
        let (sql, args) = find_sql(workspace, q);
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), object_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn rewrap_batch(
        &self,
        workspace: &str,
        target: u32,
        after: ObjectId,
        limit: usize,
        reseal: Reseal<'_>,
    ) -> Result<RewrapBatch> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let event = |what: String| AuditEvent::ok(workspace, "module", "rewrap batch", Some(what));
        self.admit(&[event(String::new())])?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let batch = {
                // Forward from the cursor in row order (the primary key), so each batch
                // reads only rows after the last one: a job is one pass over the table,
                // where sorting every remaining match per batch made it quadratic.
                let mut stmt = tx.prepare_cached(&rewrap_next_sql())?;
                let rows = stmt.query_map(params![workspace, target, limit, after.0], object_from_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut update = tx.prepare_cached("UPDATE objects SET sealed = ?2, master_version = ?3 WHERE id = ?1")?;
            for (id, record) in &batch {
                let sealed = reseal(record)?;
                update.execute(params![id.0, sealed, target])?;
            }
            drop(update);
            let mut appended = None;
            if !batch.is_empty() {
                let e = event(format!("{} stored record(s) to wmk v{target}", batch.len()));
                appended = Some((append_entry(&tx, &e)?, e));
            }
            tx.commit()?;
            Ok((RewrapBatch { moved: batch.len(), last: batch.last().map(|(id, _)| *id) }, appended))
        })
        .map(|(done, appended)| {
            if let Some((seq, e)) = appended {
                self.appended(seq, &e);
            }
            done
        })
    }

    fn audit_rows(&self) -> Result<Vec<AuditRow>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, at_ms, pid, workspace, actor, action, object, outcome, prev_hash, hash,
                 session, count, format FROM audit_log ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AuditRow {
                    seq: r.get(0)?,
                    at_ms: r.get(1)?,
                    pid: r.get(2)?,
                    event: AuditEvent {
                        workspace: r.get(3)?,
                        actor: r.get(4)?,
                        action: r.get(5)?,
                        object: r.get(6)?,
                        outcome: r.get(7)?,
                        session: r.get::<_, Option<i64>>(10)?.map(|s| s as u64),
                        count: r.get::<_, Option<i64>>(11)?.map(|c| c as u64),
                        sync: Sync::Full,
                    },
                    prev_hash: r.get(8)?,
                    hash: r.get(9)?,
                    // Out of range: no format, so the row cannot verify.
                    format: u8::try_from(r.get::<_, i64>(12)?).unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT number, entry_seq, entry_hash, signature, public_key, mldsa_signature, mldsa_public_key
                 FROM audit_checkpoints ORDER BY number",
            )?;
            let signed = |signature: Option<Vec<u8>>, public_key: Option<Vec<u8>>| {
                signature.zip(public_key).map(|(signature, public_key)| CheckpointSignature { signature, public_key })
            };
            let rows = stmt.query_map([], |r| {
                Ok(Checkpoint {
                    number: r.get(0)?,
                    entry_seq: r.get(1)?,
                    entry_hash: r.get(2)?,
                    ecdsa: signed(r.get(3)?, r.get(4)?),
                    mldsa: signed(r.get(5)?, r.get(6)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>> {
        self.with_conn(|conn| {
            Ok(conn
                .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?)
        })
    }

    fn add_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO audit_checkpoints
                 (number, entry_seq, entry_hash, signature, public_key, mldsa_signature, mldsa_public_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    c.number,
                    c.entry_seq,
                    c.entry_hash,
                    c.ecdsa.as_ref().map(|s| &s.signature),
                    c.ecdsa.as_ref().map(|s| &s.public_key),
                    c.mldsa.as_ref().map(|s| &s.signature),
                    c.mldsa.as_ref().map(|s| &s.public_key),
                ],
            )?;
            Ok(())
        })
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        match self.batching.get() {
            Some(policy) if event.sync == Sync::Batched => self.hold(event.clone(), policy),
            _ => self.append(std::slice::from_ref(event)),
        }
    }

    fn append_audit_owned(&self, event: AuditEvent) -> Result<()> {
        match self.batching.get() {
            Some(policy) if event.sync == Sync::Batched => self.hold(event, policy),
            _ => self.append(std::slice::from_ref(&event)),
        }
    }

    fn flush_audit(&self) -> Result<()> {
        self.flush_held()
    }

    fn append_audit_batch(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.append(events)
    }

    fn failed_logins_since(&self, workspace: &str, since_ms: i64) -> Result<u64> {
        self.with_conn(|conn| {
            let n: i64 =
                conn.prepare_cached(FAILED_LOGINS_SQL)?.query_row(params![workspace, since_ms], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn backup_to(&self, dest: &Path) -> Result<()> {
        // `VACUUM INTO`, not the online backup API (rusqlite's `backup` feature): it reads
        // the source in ONE read transaction, so under WAL the copy is the snapshot of one
        // commit while writers go on (the backup API copies in steps and restarts whenever
        // another connection writes between them, so a busy token could starve it, and in
        // one step it is the same single transaction with more code). It also writes a
        // compacted file without free pages, so nothing `secure_delete` would have zeroed
        // (a destroyed master key's old pages) can reach the copy. Cost: it rebuilds the
        // indexes, O(store size), which is what a copy costs anyway.
        let target = dest.to_str().ok_or_else(|| Error::Store(format!("{} is not UTF-8", dest.display())))?;
        create_private_file(dest)?;
        self.with_conn(|conn| {
            conn.execute("VACUUM INTO ?1", [target])
                .map_err(|e| Error::Store(format!("cannot copy the store into {}: {e}", dest.display())))?;
            Ok(())
        })
    }

    fn set_master_blocked(
        &self,
        workspace: &str,
        version: u32,
        reason: Option<&str>,
        mac: MasterMac<'_>,
        event: &AuditEvent,
    ) -> Result<bool> {
        self.write(event, |tx| update_master(tx, workspace, version, mac, |m| m.blocked = reason.map(str::to_string)))
    }

    fn snapshot(&self) -> Result<super::copy::Snapshot> {
        self.copy_snapshot()
    }

    fn load_snapshot(&self, snapshot: &super::copy::Snapshot) -> Result<()> {
        self.copy_load(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open store");
        (dir, store)
    }

    fn event() -> AuditEvent {
        AuditEvent::ok("ws", "so", "test", None)
    }

    fn record(label: &str, class: u64) -> ObjectRecord {
        ObjectRecord {
            class,
            key_type: None,
            label: label.as_bytes().to_vec(),
            ckid: None,
            private: false,
            unique_id: format!("uid-{label}-{class}"),
            attrs: vec![1, 2, 3],
            sealed: None,
            master_version: None,
            generation: 0,
        }
    }

    #[test]
    fn iv_counter_ranges_never_overlap_and_survive_reopening() {
        let (dir, store) = store();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(store.reserve_iv_counter(&a, 10, 100).expect("reserve"), Some(1..11));
        assert_eq!(store.reserve_iv_counter(&a, 10, 100).expect("reserve"), Some(11..21));
        assert_eq!(store.reserve_iv_counter(&b, 10, 100).expect("reserve"), Some(1..11), "per key");
        drop(store);
        let store = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(store.reserve_iv_counter(&a, 90, 100).expect("reserve"), Some(21..101), "clipped at the limit");
        assert_eq!(store.reserve_iv_counter(&a, 1, 100).expect("reserve"), None, "exhausted, never wrapped");
    }

    #[test]
    fn reopening_a_store_keeps_its_schema_and_rows() {
        let (dir, store) = store();
        store.open_token("ws", "label").expect("token");
        store.insert_object("ws", &record("a", 0), &event()).expect("insert");
        drop(store);
        let again = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(again.find_objects("ws", &IndexQuery::default()).expect("find").len(), 1);
    }

    #[test]
    fn a_store_from_before_generations_migrates_keeping_its_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Connection::open(dir.path().join(STORE_FILE)).expect("open");
            db.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)").expect("meta");
            for sql in &MIGRATIONS[..4] {
                db.execute_batch(sql).expect("old schema");
            }
            db.execute_batch(
                "INSERT INTO meta VALUES ('schema_version', '4');
                 INSERT INTO tokens (workspace, label, serial) VALUES ('ws', 't', 's');
                 INSERT INTO objects (workspace, class, label, private, unique_id, attrs, sealed)
                 VALUES ('ws', 4, x'6b', 1, 'uid-old', x'010203', x'0405');",
            )
            .expect("old row");
        }
        let store = SqliteStore::open(dir.path()).expect("migrate");
        let found = store.find_objects("ws", &IndexQuery::default()).expect("find");
        assert_eq!(found.len(), 1);
        let (id, old) = &found[0];
        assert_eq!((old.unique_id.as_str(), old.attrs.as_slice(), old.generation), ("uid-old", &[1u8, 2, 3][..], 0));
        assert_eq!(old.sealed.as_deref(), Some(&[4u8, 5][..]));
        let next = ObjectRecord { generation: 1, ..old.clone() };
        assert_eq!(store.update_object(*id, 0, &next, &event()).expect("update"), Updated::Done);
    }

    #[test]
    fn checkpoints_from_before_ml_dsa_migrate_with_their_ecdsa_signature_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Connection::open(dir.path().join(STORE_FILE)).expect("open");
            db.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)").expect("meta");
            for sql in &MIGRATIONS[..9] {
                db.execute_batch(sql).expect("old schema");
            }
            db.execute_batch(
                "INSERT INTO meta VALUES ('schema_version', '9');
                 INSERT INTO audit_checkpoints VALUES (1, 3, x'aa', x'0102', x'04ff');",
            )
            .expect("old checkpoint");
        }
        let store = SqliteStore::open(dir.path()).expect("migrate");
        let ecdsa = CheckpointSignature { signature: vec![1, 2], public_key: vec![4, 0xff] };
        let old = Checkpoint { number: 1, entry_seq: 3, entry_hash: vec![0xaa], ecdsa: Some(ecdsa), mldsa: None };
        assert_eq!(store.checkpoints().expect("read"), vec![old.clone()]);
        let mldsa = CheckpointSignature { signature: vec![5], public_key: vec![6] };
        let pq = Checkpoint { number: 2, entry_seq: 4, ecdsa: None, mldsa: Some(mldsa), ..old.clone() };
        store.add_checkpoint(&pq).expect("ML-DSA only");
        let unsigned = Checkpoint { number: 3, ecdsa: None, mldsa: None, ..old.clone() };
        assert!(store.add_checkpoint(&unsigned).is_err(), "a checkpoint without a signature is refused");
        assert_eq!(store.checkpoints().expect("read"), vec![old, pq]);
    }

    #[test]
    fn an_update_from_a_stale_generation_writes_nothing() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        let id = store.insert_object("ws", &record("a", 0), &event()).expect("insert");
        let entries = || store.audit_rows().expect("rows").len();
        let before = entries();
        let next = ObjectRecord { generation: 1, label: b"b".to_vec(), ..record("a", 0) };
        assert_eq!(store.update_object(id, 0, &next, &event()).expect("update"), Updated::Done);
        let stale = ObjectRecord { generation: 1, label: b"c".to_vec(), ..record("a", 0) };
        assert_eq!(store.update_object(id, 0, &stale, &event()).expect("update"), Updated::Moved);
        let now = store.object("ws", id).expect("read").expect("row");
        assert_eq!((now.label.as_slice(), now.generation), (&b"b"[..], 1));
        assert_eq!(entries(), before + 1, "only the change that landed is audited");
        store.delete_object(id, &event()).expect("delete");
        assert_eq!(store.update_object(id, 1, &stale, &event()).expect("update"), Updated::Gone);
    }

    #[test]
    fn indexed_find_matches_only_the_named_columns() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        store.insert_object("ws", &record("a", 0), &event()).expect("insert");
        store.insert_object("ws", &record("b", 0), &event()).expect("insert");
        store.insert_object("ws", &record("a", 3), &event()).expect("insert");
        let q = IndexQuery { label: Some(b"a".to_vec()), ..Default::default() };
        assert_eq!(store.find_objects("ws", &q).expect("find").len(), 2);
        let q = IndexQuery { label: Some(b"a".to_vec()), class: Some(3), ..Default::default() };
        assert_eq!(store.find_objects("ws", &q).expect("find").len(), 1);
        assert!(store.find_objects("other", &IndexQuery::default()).expect("find").is_empty());
    }

    fn plan(store: &SqliteStore, q: &IndexQuery) -> String {
        let (sql, args) = find_sql("ws", q);
        store
            .with_conn(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
            })
            .expect("plan")
    }

    #[test]
    fn a_rewrap_job_reads_forward_from_its_cursor_in_batches() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        let mut ids = Vec::new();
        for i in 0..7 {
            let mut r = record(&format!("dek{i}"), 4);
            r.master_version = Some(1);
            r.sealed = Some(vec![1]);
            ids.push(store.insert_object("ws", &r, &event()).expect("insert"));
        }
        let mut after = ObjectId(0);
        let mut batches = Vec::new();
        loop {
            let step = store.rewrap_batch("ws", 2, after, 3, &mut |_| Ok(vec![2])).expect("batch");
            let Some(last) = step.last else { break };
            batches.push(step.moved);
            after = last;
        }
        assert_eq!(batches, [3, 3, 1]);
        assert_eq!(store.records_under("ws", 1).expect("count"), 0);
        assert_eq!(store.records_under("ws", 2).expect("count"), 7);
        let sql = format!("EXPLAIN QUERY PLAN {}", rewrap_next_sql());
        let plan = store
            .with_conn(|c| Ok(c.query_row(&sql, params!["ws", 2, 3, 0], |r| r.get::<_, String>(3))?))
            .expect("plan");
        assert!(plan.contains("INTEGER PRIMARY KEY (rowid>?)"), "{plan}");
    }

    #[test]
    fn refused_logins_are_counted_through_their_partial_index() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        let refused = AuditEvent::ok("ws", "user", "C_Login", None).with_outcome("CKR_PIN_INCORRECT");
        store.append_audit(&refused).expect("append");
        store.append_audit(&AuditEvent::ok("ws", "user", "C_Login", None)).expect("append");
        store.append_audit(&refused.clone().with_outcome("CKR_PIN_LOCKED")).expect("append");
        assert_eq!(store.failed_logins_since("ws", 0).expect("count"), 2);
        assert_eq!(store.failed_logins_since("other", 0).expect("count"), 0);
        assert_eq!(store.failed_logins_since("ws", i64::MAX).expect("count"), 0);
        let plan = store
            .with_conn(|c| {
                Ok(c.query_row(&format!("EXPLAIN QUERY PLAN {FAILED_LOGINS_SQL}"), ["ws", "0"], |r| {
                    r.get::<_, String>(3)
                })?)
            })
            .expect("plan");
        assert!(plan.contains("audit_refused_logins"), "{plan}");
    }

    #[test]
    fn finds_by_label_id_class_and_key_type_use_their_indexes() {
        let (_dir, store) = store();
        let label = IndexQuery { label: Some(b"a".to_vec()), ..Default::default() };
        assert!(plan(&store, &label).contains("INDEX objects_by_label"), "{}", plan(&store, &label));
        let id = IndexQuery { ckid: Some(b"k".to_vec()), public_only: true, ..Default::default() };
        assert!(plan(&store, &id).contains("INDEX objects_by_ckid"), "{}", plan(&store, &id));
        let class = IndexQuery { class: Some(4), ..Default::default() };
        assert!(plan(&store, &class).contains("INDEX objects_by_class"), "{}", plan(&store, &class));
        let key_type = IndexQuery { key_type: Some(31), ..Default::default() };
        assert!(plan(&store, &key_type).contains("INDEX objects_by_key_type"), "{}", plan(&store, &key_type));
        for q in [label, id, class, key_type] {
            assert!(!plan(&store, &q).starts_with("SCAN objects"), "{}", plan(&store, &q));
        }
    }

    #[test]
    fn init_token_wipes_objects_and_resets_pins() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        store.insert_object("ws", &record("a", 0), &event()).expect("insert");
        store.set_pin("ws", PinOwner::User, b"rec", &event()).expect("pin");
        let master = MasterRecord {
            version: 1,
            state: Lifecycle::Active,
            created_at: 0,
            classification: "internal".into(),
            sealed: Some(vec![1]),
            blocked: None,
            mac: Some(vec![2]),
            origin: None,
        };
        let init = TokenInit { label: "new", so_pin: b"so", sealed_storage_key: None, first_master: &master };
        store.init_token("ws", &init, &event()).expect("init");
        assert_eq!(store.masters("ws").expect("masters"), vec![master]);
        let t = store.token("ws").expect("token");
        assert!(t.initialized && t.user_pin.is_none() && t.epoch == 1);
        assert!(store.find_objects("ws", &IndexQuery::default()).expect("find").is_empty());
    }

    #[test]
    fn a_new_master_version_demotes_the_active_one() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        let v = |version, state| MasterRecord {
            version,
            state,
            created_at: 0,
            classification: "c".into(),
            sealed: Some(version.to_be_bytes().to_vec()),
            blocked: None,
            mac: None,
            origin: None,
        };
        // A stand-in MAC that shows what it covered.
        let mac = |m: &MasterRecord| Ok(vec![m.state.code().to_be_bytes()[7], u8::from(m.sealed.is_some())]);
        let init =
            TokenInit { label: "l", so_pin: b"so", sealed_storage_key: None, first_master: &v(1, Lifecycle::Active) };
        store.init_token("ws", &init, &event()).expect("init");
        store.add_master("ws", &v(2, Lifecycle::Active), &mac, &event()).expect("rotate");
        let states: Vec<_> = store.masters("ws").expect("masters").iter().map(|m| m.state).collect();
        assert_eq!(states, [Lifecycle::DecryptOnly, Lifecycle::Active]);
        assert_eq!(store.masters("ws").expect("masters")[0].mac, Some(vec![2, 1]), "the demotion recomputed the MAC");
        store.set_master_state("ws", 1, Lifecycle::Destroyed, &mac, &event()).expect("destroy");
        let first = &store.masters("ws").expect("masters")[0];
        assert_eq!((first.state, first.sealed.is_none()), (Lifecycle::Destroyed, true), "destroying forgets the blob");
        assert_eq!(first.mac, Some(vec![4, 0]), "the state change recomputed the MAC");
    }

    #[test]
    fn a_destroyed_master_value_leaves_no_copy_in_the_file_or_wal() {
        let (dir, store) = store();
        store.open_token("ws", "").expect("token");
        let secret = vec![0xA5; 48];
        let master = MasterRecord {
            version: 1,
            state: Lifecycle::Retired,
            created_at: 0,
            classification: "c".into(),
            sealed: Some(secret.clone()),
            blocked: None,
            mac: None,
            origin: None,
        };
        let init = TokenInit { label: "l", so_pin: b"so", sealed_storage_key: None, first_master: &master };
        store.init_token("ws", &init, &event()).expect("init");
        let mac = |_: &MasterRecord| Ok(vec![0]);
        store.set_master_state("ws", 1, Lifecycle::Destroyed, &mac, &event()).expect("destroy");
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "the destroyed value is still on disk"
            );
        }
    }

    #[test]
    fn failed_logins_count_up_and_success_resets() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        assert_eq!(store.record_login("ws", PinOwner::User, false, &event()).expect("fail"), 1);
        assert_eq!(store.record_login("ws", PinOwner::User, false, &event()).expect("fail"), 2);
        assert_eq!(store.token("ws").expect("token").user_failures, 2);
        assert_eq!(store.record_login("ws", PinOwner::User, true, &event()).expect("ok"), 0);
    }

    #[test]
    fn login_reservations_stop_at_the_limit_and_touch_only_their_counter() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        let reserve = || store.reserve_login("ws", PinOwner::User, 2).expect("reserve");
        assert_eq!((reserve(), reserve(), reserve()), (Some(1), Some(2), None));
        let t = store.token("ws").expect("token");
        assert_eq!((t.user_failures, t.so_failures), (2, 0));
        assert_eq!(store.reserve_login("ws", PinOwner::So, 2).expect("so"), Some(1));
    }

    #[test]
    fn a_registered_pin_mac_follows_every_change_and_refuses_an_edited_counter() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        store.set_pins_mac("ws", std::sync::Arc::new(|r: &TokenRecord| Ok(vec![r.user_failures.to_be_bytes()[3]])));
        assert_eq!(store.reserve_login("ws", PinOwner::User, 3).expect("reserve"), Some(1));
        assert_eq!(store.token("ws").expect("token").pins_mac, Some(vec![1]));
        store.with_conn(|c| Ok(c.execute("UPDATE tokens SET user_failures = 0", [])?)).expect("edit");
        assert!(matches!(store.reserve_login("ws", PinOwner::User, 3), Err(Error::Integrity(_))));
    }

    #[test]
    fn every_write_appends_one_chained_audit_entry() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        store.insert_object("ws", &record("a", 0), &event()).expect("insert");
        store.append_audit(&event()).expect("audit");
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = store
            .with_conn(|c| {
                let mut s = c.prepare("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")?;
                let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, GENESIS.to_vec());
        assert_eq!(rows[1].1, rows[0].2, "entry 2 chains to entry 1");
    }

    #[test]
    fn every_connection_syncs_commits_fully() {
        let (_dir, store) = store();
        // Two connections at once: the pooled one and a fresh one.
        let (first, second) = store
            .with_conn(|a| {
                let fresh = store.connect()?;
                let level = |c: &Connection| c.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0));
                Ok((level(a)?, level(&fresh)?))
            })
            .expect("pragma");
        // 2 = FULL: in WAL mode, NORMAL (1) lets a committed transaction roll back on
        // power loss; FULL syncs the WAL at every commit.
        assert_eq!((first, second), (2, 2));
    }

    #[test]
    fn lazily_synced_entries_chain_like_any_and_leave_the_connection_at_full() {
        let (_dir, store) = store();
        store.open_token("ws", "").expect("token");
        let lazy = AuditEvent::ok("ws", "user", "C_GenerateKey", Some("session key".into())).synced_lazily();
        store.append_audit(&lazy).expect("lazy entry");
        store.append_audit_batch(&[lazy.clone(), event()]).expect("mixed batch");
        let level = store.with_conn(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?));
        assert_eq!(level.expect("pragma"), 2, "the pooled connection is back at FULL");
        let rows = store.audit_rows().expect("rows");
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.event.sync == Sync::Full), "the durability is not stored");
        assert_eq!(rows[0].prev_hash, GENESIS.to_vec());
        assert!(rows.windows(2).all(|w| w[1].prev_hash == w[0].hash), "one unbroken chain");
    }

    #[test]
    fn held_entries_go_into_the_chain_before_the_next_entry_in_call_order() {
        let (_dir, store) = store();
        store.set_batching(BatchPolicy { entries: 256, max_age: Duration::from_secs(600) });
        let session_key = |n: u32| AuditEvent::ok("ws", "user", "C_GenerateKey", Some(format!("k{n}"))).batched();
        store.append_audit(&session_key(1)).expect("held");
        store.append_audit(&session_key(2)).expect("held");
        assert!(store.audit_rows().expect("rows").is_empty(), "held, not written");
        store.append_audit(&event()).expect("a durable entry");
        store.append_audit(&session_key(3)).expect("held");
        store.flush_audit().expect("flush");
        let objects: Vec<_> = store.audit_rows().expect("rows").into_iter().map(|r| r.event.object).collect();
        assert_eq!(objects, [Some("k1".into()), Some("k2".into()), event().object, Some("k3".into())]);
    }

    #[test]
    fn a_v4_store_migrates_and_its_format_1_chain_still_verifies() {
        use crate::store::audit::FORMAT_V1;
        let dir = tempfile::tempdir().expect("tempdir");
        // A store as schema v4 left it: entries hashed in format 1, no format column.
        {
            let mut conn = Connection::open(dir.path().join(STORE_FILE)).expect("db");
            let tx = conn.transaction().expect("tx");
            tx.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", []).expect("meta");
            for sql in &MIGRATIONS[..4] {
                tx.execute_batch(sql).expect("migration");
            }
            tx.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '4')", []).expect("version");
            let mut prev = GENESIS.to_vec();
            for (seq, object) in [(1, None), (2, Some("k")), (3, Some(""))] {
                let event = AuditEvent::ok("ws", "user", "C_Login", object.map(str::to_string)).in_session(None);
                let hash = AuditEntry { seq, at_ms: 5, pid: 7, event: &event }.chain_hash_as(FORMAT_V1, &prev).to_vec();
                tx.execute(
                    "INSERT INTO audit_log (seq, at_ms, pid, workspace, actor, action, object, outcome, prev_hash, hash)
                     VALUES (?1, 5, 7, 'ws', 'user', 'C_Login', ?2, 'CKR_OK', ?3, ?4)",
                    params![seq, object, prev, hash],
                )
                .expect("v1 row");
                prev = hash;
            }
            tx.commit().expect("commit");
        }
        let store = SqliteStore::open(dir.path()).expect("migrate");
        store.append_audit(&AuditEvent::ok("ws", "so", "after", None)).expect("append");
        let rows = store.audit_rows().expect("rows");
        assert_eq!(rows.iter().map(|r| r.format).collect::<Vec<_>>(), [1, 1, 1, 2]);
        assert!(matches!(crate::audit::verify(&rows, Some(4)), crate::audit::Verdict::Intact { entries: 4, .. }));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (dir, store) = store();
        store
            .with_conn(|c| Ok(c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", [])?))
            .expect("bump");
        drop(store);
        assert!(matches!(SqliteStore::open(dir.path()), Err(Error::Store(m)) if m.contains("99")));
    }

    #[test]
    fn a_backup_is_a_snapshot_holding_the_rows_and_the_chain() {
        let (_dir, store) = store();
        store.open_token("ws", "l").expect("token");
        store.insert_object("ws", &record("a", 4), &event()).expect("insert");
        let out = tempfile::tempdir().expect("tempdir");
        store.backup_to(&out.path().join(STORE_FILE)).expect("backup");
        // A write after the snapshot is not in it.
        store.insert_object("ws", &record("b", 4), &event()).expect("insert");
        assert!(store.backup_to(&out.path().join(STORE_FILE)).is_err(), "an existing file is never overwritten");
        let copy = SqliteStore::open(out.path()).expect("open copy");
        assert_eq!(copy.find_objects("ws", &IndexQuery::default()).expect("find").len(), 1);
        let (rows, live) = (copy.audit_rows().expect("rows"), store.audit_rows().expect("rows"));
        assert_eq!(rows[..], live[..rows.len()], "the copy's chain is a prefix of the live one");
        assert_eq!(rows.len() + 1, live.len());
    }

    #[test]
    fn replacing_a_store_is_refused_while_another_connection_has_it_open() {
        let (dir, store) = store();
        store.open_token("ws", "l").expect("token");
        let incoming = dir.path().join("incoming");
        store.backup_to(&incoming).expect("backup");
        let refused = replace_store(dir.path(), &incoming, "t1");
        assert!(matches!(&refused, Err(Error::Store(m)) if m.contains("in use")), "{refused:?}");
        assert!(incoming.exists(), "nothing moved");
        drop(store);
        let aside = replace_store(dir.path(), &incoming, "t1").expect("replace once closed");
        let aside = aside.file.expect("the old store is kept");
        assert!(aside.ends_with(format!("{STORE_FILE}.before-restore-t1")) && aside.exists());
        assert!(!incoming.exists() && dir.path().join(STORE_FILE).exists());
    }
}
