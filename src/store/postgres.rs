//! The PostgreSQL backend: many hosts share one store (README, "Scale-out";
//! doc/postgresql.md).
//!
//! The same domain as the SQLite backend, on a server every host reaches. What SQLite's
//! single writer gives for free is made explicit here:
//!
//! - Every write that appends to the audit chain (which is every state change, with its
//!   entry, in one transaction) first takes one transaction-scoped advisory lock
//!   (`pg_advisory_xact_lock`). Writers on all hosts queue on it, as SQLite's `IMMEDIATE`
//!   transactions queue on the file lock, so the chain never forks (the unique `prev_hash`
//!   would refuse a fork anyway), two rotations make two ordered versions (each demotes
//!   the active one it reads under the lock), and a compare-and-swap reads the row it swaps.
//!   Under `READ COMMITTED` each statement after the lock sees every earlier writer's commit.
//! - Login failure counters and refused logins are rows, so lockout counts across hosts.
//! - GCM IV counter ranges are reserved under the row's lock (`SELECT ... FOR UPDATE`),
//!   committed before they are handed out; they need no audit entry and no global lock.
//!
//! Connections: a small pool. A connection that broke (the server restarted, failed over,
//! or the network dropped) is dropped instead of pooled; the next call connects anew, so
//! applications recover without a restart. A server that cannot be reached fails the call
//! with [`Error::Store`] (`CKR_DEVICE_ERROR`) and one log line naming the server; the
//! password never appears (it comes from an environment variable or a file).

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};

use super::audit::{AuditEntry, AuditEvent, AuditRow, Checkpoint, CheckpointSignature, Sync, GENESIS};
use super::batch::{BatchPolicy, Held};
use super::{
    AppendHook, Backend, FindRead, IndexQuery, Lifecycle, MasterMac, MasterRecord, ObjectId, ObjectRecord, PinOwner,
    PinsMac, Reseal, RewrapBatch, TokenInit, TokenRecord, Updated,
};
use crate::error::{Error, Internal, Result};

mod copy;
mod quorum;
mod recovery;
mod schema;

/// Idle connections kept per process.
const POOL_MAX_IDLE: usize = 4;

/// The advisory lock every audited write holds until its transaction ends ("CVSTORE").
const WRITE_LOCK: i64 = 0x4356_5354_4f52_4500;

/// Where the PostgreSQL store is and how to log in: the connection string and the
/// password read from where the config points.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    /// The server as the log names it: host(s), port and database, never the password.
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Whether a `store` setting names a PostgreSQL server (`postgresql://`, `postgres://`, or
/// a `host=... dbname=...` key-value string).
pub fn is_postgres(store: &str) -> bool {
    crate::config::names_postgres(store)
}

impl PgTarget {
    /// Parses a connection string; a password inside it is refused (it would sit in the
    /// config file).
    pub fn parse(store: &str) -> std::result::Result<PgTarget, String> {
        let config = crate::config::postgres_settings(store)?;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        let shown = format!(
            "postgresql host {} port {} database {}",
            if hosts.is_empty() { "(default)".into() } else { hosts.join(",") },
            if ports.is_empty() { "5432".into() } else { ports.join(",") },
            config.get_dbname().unwrap_or("(user's)")
        );
        Ok(PgTarget { config, shown })
    }

    /// Sets the password (from the environment or a file, by the caller).
    pub fn with_password(mut self, password: &[u8]) -> PgTarget {
        self.config.password(password);
        self
    }

    /// Bounds connecting and every statement by `timeout`: a server that does not answer
    /// in time fails the call instead of hanging the application.
    pub fn with_timeout(mut self, timeout: Duration) -> PgTarget {
        let ms = timeout.as_millis().max(1);
        self.config.connect_timeout(timeout);
        self.config.tcp_user_timeout(timeout);
        self.config.keepalives(true);
        self.config.options(&format!("-c lock_timeout={ms} -c statement_timeout={}", ms.saturating_mul(3)));
        self
    }
}

/// One pooled connection and the statements prepared on it.
struct Conn {
    client: Client,
    cache: HashMap<String, Statement>,
}

/// A client or transaction with its connection's statement cache: each SQL text is
/// prepared once per connection, then every call is one round trip.
pub(super) struct Db<'a, C: GenericClient> {
    c: &'a mut C,
    cache: &'a mut HashMap<String, Statement>,
}

/// Parameters of one statement.
type Params<'a> = [&'a (dyn ToSql + std::marker::Sync)];

impl<C: GenericClient> Db<'_, C> {
    fn stmt(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(super) fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let s = self.stmt(sql)?;
        Ok(self.c.query(&s, params)?)
    }

    pub(super) fn opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let s = self.stmt(sql)?;
        Ok(self.c.query_opt(&s, params)?)
    }

    pub(super) fn one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row> {
        let s = self.stmt(sql)?;
        Ok(self.c.query_one(&s, params)?)
    }

    pub(super) fn exec(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let s = self.stmt(sql)?;
        Ok(self.c.execute(&s, params)?)
    }
}

/// A column, typed; a mismatch is a store error, never a panic.
pub(super) fn col<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(|e| Error::Store(format!("column {i}: {e}")))
}

/// A stored integer that must fit `T`.
pub(super) fn small<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| Error::Store(format!("{what} {v} is out of range")))
}

/// The write transaction every audited change runs in.
pub(super) type Tx<'a, 'b> = Db<'a, Transaction<'b>>;

/// The store on a PostgreSQL server.
pub struct PgStore {
    target: PgTarget,
    idle: Mutex<Vec<Conn>>,
    hook: std::sync::OnceLock<std::sync::Arc<dyn AppendHook>>,
    /// Per workspace, the MAC of its PIN records and counters (delegated roots only).
    pins_macs: Mutex<HashMap<String, PinsMac>>,
    /// With a policy, session-object entries wait in `held` (see `store/batch.rs`).
    batching: std::sync::OnceLock<BatchPolicy>,
    /// Held session-object entries, locked across every audit write of this process.
    held: Mutex<Held>,
}

impl PgStore {
    /// Connects to the server, creating or migrating the schema.
    pub fn open(target: PgTarget) -> Result<PgStore> {
        let store = PgStore {
            target,
            idle: Mutex::new(Vec::new()),
            hook: std::sync::OnceLock::new(),
            pins_macs: Mutex::new(HashMap::new()),
            batching: std::sync::OnceLock::new(),
            held: Mutex::new(Held::default()),
        };
        let mut conn = store.connect()?;
        schema::migrate(&mut conn.client)?;
        store.idle.lock().push(conn);
        log::info!("store: {}", store.target.shown);
        Ok(store)
    }

    /// The server as log lines name it.
    pub fn describe(&self) -> &str {
        &self.target.shown
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

    fn connect(&self) -> Result<Conn> {
        match self.target.config.connect(NoTls) {
            Ok(client) => Ok(Conn { client, cache: HashMap::new() }),
            Err(e) => {
                log::error!("store: cannot connect to {}: {e}", self.target.shown);
                Err(Error::Store(format!("the PostgreSQL store ({}) is unreachable: {e}", self.target.shown)))
            }
        }
    }

    /// Runs `f` on a pooled connection; one that broke is dropped, so the next call
    /// connects again.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let pooled = {
            let mut idle = self.idle.lock();
            loop {
                match idle.pop() {
                    Some(c) if c.client.is_closed() => continue,
                    other => break other,
                }
            }
        };
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        if conn.client.is_closed() {
            log::warn!("store: the connection to {} broke; the next call reconnects", self.target.shown);
            return out;
        }
        let mut idle = self.idle.lock();
        if idle.len() < POOL_MAX_IDLE {
            idle.push(conn);
        }
        out
    }

    /// Reads outside a transaction.
    fn read<T>(&self, f: impl FnOnce(&mut Db<'_, Client>) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| f(&mut Db { c: &mut conn.client, cache: &mut conn.cache }))
    }

    /// Runs `f` in a transaction holding the write lock, without an audit entry.
    fn locked<T>(&self, f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| {
            let Conn { client, cache } = conn;
            let mut tx = client.transaction()?;
            let out = {
                let mut db = Db { c: &mut tx, cache };
                db.exec("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                f(&mut db)?
            };
            tx.commit()?;
            Ok(out)
        })
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

    /// Runs `f` and appends `event` to the chain in one locked transaction.
    pub(super) fn write<T>(&self, event: &AuditEvent, f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T>) -> Result<T> {
        self.commit(std::slice::from_ref(event), Sync::Full, f)
    }

    /// Entries alone: committed without waiting for the server's flush only when every
    /// one of them allows it.
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

    fn commit<T>(&self, events: &[AuditEvent], sync: Sync, f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T>) -> Result<T> {
        self.admit(events)?;
        let mut held = self.held.lock();
        let (out, written) = self.commit_held(&mut held, events, sync, f)?;
        // The hooks run unlocked: a checkpoint they make reads the store.
        drop(held);
        self.announce(written);
        Ok(out)
    }

    /// [`PgStore::commit`] after the held entries, which go first in the same transaction.
    fn commit_held<T>(
        &self,
        held: &mut Held,
        events: &[AuditEvent],
        sync: Sync,
        f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T>,
    ) -> Result<(T, Vec<(i64, AuditEvent)>)> {
        // Whether the change itself refused (a lost rotation race, a stale generation):
        // the held entries were not at fault and stay held, not failed.
        let mut refused = false;
        let result = self.locked(|tx| {
            if sync == Sync::Lazy {
                // This transaction only: the server acknowledges before its WAL flush,
                // as SQLite's NORMAL does for the same entries.
                tx.exec("SET LOCAL synchronous_commit = off", &[])?;
            }
            let out = f(tx).inspect_err(|_| refused = true)?;
            let mut seqs = append_entries(tx, held.events())?;
            seqs.extend(append_entries(tx, events)?);
            Ok((out, seqs))
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

    fn announce(&self, written: Vec<(i64, AuditEvent)>) {
        for (seq, event) in &written {
            self.appended(*seq, event);
        }
    }

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

    fn pins_mac_of(&self, workspace: &str) -> Option<PinsMac> {
        self.pins_macs.lock().get(workspace).cloned()
    }

    /// Recomputes the token row's PIN MAC inside `tx`, after a change to it.
    fn refresh_pins_mac(&self, tx: &mut Tx<'_, '_>, workspace: &str) -> Result<()> {
        let Some(mac) = self.pins_mac_of(workspace) else {
            return Ok(());
        };
        let rec = read_token(tx, workspace)?.ok_or_else(|| Error::Store(format!("token {workspace:?} vanished")))?;
        tx.exec("UPDATE tokens SET pins_mac = $2 WHERE workspace = $1", &[&workspace, &mac(&rec)?])?;
        Ok(())
    }

    /// Vacuums the master key table after a destroy, so the destroyed value's dead row
    /// version is reclaimed now rather than at the next autovacuum (best effort, logged).
    fn vacuum_masters(&self) {
        let result = self.with_conn(|conn| Ok(conn.client.batch_execute("VACUUM master_keys")?));
        if let Err(e) = result {
            log::warn!("store: the VACUUM after a destroy failed (autovacuum will follow): {e}");
        }
    }
}

impl Drop for PgStore {
    /// A module dropped without `C_Finalize` (an unload) still writes what it holds.
    fn drop(&mut self) {
        if let Err(e) = self.flush_held() {
            log::error!("store: held audit entries lost at unload: {e}");
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Appends one entry after the chain's head; the caller holds the write lock.
fn append_entry(tx: &mut Tx<'_, '_>, event: &AuditEvent) -> Result<i64> {
    let seqs = append_entries(tx, std::slice::from_ref(event))?;
    seqs.first().copied().ok_or_else(|| Error::Store("no audit entry written".into()))
}

/// Appends `events` in order after the chain's head and returns their sequence numbers;
/// the caller holds the write lock, so the head is read once and carried from one entry
/// to the next (a batch of held entries costs one query round trip, not one per entry).
fn append_entries(tx: &mut Tx<'_, '_>, events: &[AuditEvent]) -> Result<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let last = tx.opt("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])?;
    let (mut seq, mut prev) = match last {
        Some(row) => (col::<i64>(&row, 0)?, col::<Vec<u8>>(&row, 1)?),
        None => (0, GENESIS.to_vec()),
    };
    let pid = std::process::id();
    let mut seqs = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let entry = AuditEntry { seq, at_ms: now_ms(), pid, event };
        let hash = entry.chain_hash(&prev).to_vec();
        tx.exec(
            "INSERT INTO audit_log (seq, at_ms, pid, workspace, actor, action, object, outcome, prev_hash, hash,
             session, count, format) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &seq,
                &entry.at_ms,
                &i64::from(entry.pid),
                &event.workspace,
                &event.actor,
                &event.action,
                &event.object,
                &event.outcome,
                &prev,
                &hash,
                &event.session.map(|s| s as i64),
                &event.count.map(|c| c as i64),
                &i64::from(super::audit::FORMAT),
            ],
        )?;
        prev = hash;
        seqs.push(seq);
    }
    Ok(seqs)
}

fn insert_master(tx: &mut Tx<'_, '_>, workspace: &str, m: &MasterRecord) -> Result<()> {
    tx.exec(
        "INSERT INTO master_keys (workspace, version, state, created_at, classification, sealed, blocked, mac, origin)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &workspace,
            &i64::from(m.version),
            &m.state.code(),
            &m.created_at,
            &m.classification,
            &m.sealed,
            &m.blocked,
            &m.mac,
            &m.origin,
        ],
    )?;
    Ok(())
}

fn master_from_row(r: &Row) -> Result<MasterRecord> {
    master_record(MasterColumns {
        version: col(r, 0)?,
        state: col(r, 1)?,
        created_at: col(r, 2)?,
        classification: col(r, 3)?,
        sealed: col(r, 4)?,
        blocked: col(r, 5)?,
        mac: col(r, 6)?,
        origin: col(r, 7)?,
    })
}

/// A master key row's columns as stored ([`MASTER_COLUMNS`]).
struct MasterColumns {
    version: i64,
    state: i64,
    created_at: i64,
    classification: String,
    sealed: Option<Vec<u8>>,
    blocked: Option<String>,
    mac: Option<Vec<u8>>,
    origin: Option<String>,
}

/// The record of a stored master key row; a version or state out of range is a store error.
fn master_record(c: MasterColumns) -> Result<MasterRecord> {
    let version: u32 = small(c.version, "master key version")?;
    let state = Lifecycle::from_code(c.state)
        .ok_or_else(|| Error::Store(format!("master key v{version} has unknown state {}", c.state)))?;
    Ok(MasterRecord {
        version,
        state,
        created_at: c.created_at,
        classification: c.classification,
        sealed: c.sealed,
        blocked: c.blocked,
        mac: c.mac,
        origin: c.origin,
    })
}

/// One column of the master key rows, aggregated in version order (`array_agg`): NULL
/// when the workspace has no rows.
fn column<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<Vec<T>> {
    Ok(col::<Option<Vec<T>>>(row, i)?.unwrap_or_default())
}

/// The header row of [`find_with_hierarchy_sql`]: the token's epoch and its master key
/// rows, from one array per column.
fn hierarchy_from_row(r: &Row, workspace: &str) -> Result<(i64, Vec<MasterRecord>)> {
    let epoch =
        col::<Option<i64>>(r, 1)?.ok_or_else(|| Error::Store(format!("token {workspace:?} is not in the store")))?;
    let versions: Vec<i64> = column(r, 2)?;
    let states: Vec<i64> = column(r, 3)?;
    let created: Vec<i64> = column(r, 4)?;
    let classifications: Vec<String> = column(r, 5)?;
    let sealed: Vec<Option<Vec<u8>>> = column(r, 6)?;
    let blocked: Vec<Option<String>> = column(r, 7)?;
    let macs: Vec<Option<Vec<u8>>> = column(r, 8)?;
    let origins: Vec<Option<String>> = column(r, 9)?;
    let n = versions.len();
    let lengths =
        [states.len(), created.len(), classifications.len(), sealed.len(), blocked.len(), macs.len(), origins.len()];
    if lengths.iter().any(|&l| l != n) {
        return Err(Error::Store("master key columns of unequal length".into()));
    }
    let mut rows = Vec::with_capacity(n);
    let columns = versions.into_iter().zip(states).zip(created).zip(classifications);
    let sealed_columns = sealed.into_iter().zip(blocked).zip(macs).zip(origins);
    for ((((version, state), created_at), classification), (((sealed, blocked), mac), origin)) in
        columns.zip(sealed_columns)
    {
        rows.push(master_record(MasterColumns {
            version,
            state,
            created_at,
            classification,
            sealed,
            blocked,
            mac,
            origin,
        })?);
    }
    Ok((epoch, rows))
}

const MASTER_COLUMNS: &str = "version, state, created_at, classification, sealed, blocked, mac, origin";

fn read_masters<C: GenericClient>(
    db: &mut Db<'_, C>,
    workspace: &str,
    version: Option<u32>,
) -> Result<Vec<MasterRecord>> {
    let rows = db.query(
        &format!(
            "SELECT {MASTER_COLUMNS} FROM master_keys WHERE workspace = $1 AND ($2::BIGINT IS NULL OR version = $2)
             ORDER BY version"
        ),
        &[&workspace, &version.map(i64::from)],
    )?;
    rows.iter().map(master_from_row).collect()
}

/// Rewrites one master key row as `change` makes it, with its MAC recomputed.
fn update_master(
    tx: &mut Tx<'_, '_>,
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
    tx.exec(
        "UPDATE master_keys SET state = $3, sealed = $4, blocked = $5, mac = $6 WHERE workspace = $1 AND version = $2",
        &[&workspace, &i64::from(version), &row.state.code(), &row.sealed, &row.blocked, &row.mac],
    )?;
    Ok(true)
}

fn pin_columns(owner: PinOwner) -> (&'static str, &'static str) {
    match owner {
        PinOwner::So => ("so_pin", "so_failures"),
        PinOwner::User => ("user_pin", "user_failures"),
    }
}

fn read_token<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Option<TokenRecord>> {
    let Some(r) = db.opt(
        "SELECT label, serial, initialized, so_pin, user_pin, so_failures, user_failures, epoch,
         sealed_storage_key, pins_mac FROM tokens WHERE workspace = $1",
        &[&workspace],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(TokenRecord {
        label: col(&r, 0)?,
        serial: col(&r, 1)?,
        initialized: col(&r, 2)?,
        so_pin: col(&r, 3)?,
        user_pin: col(&r, 4)?,
        so_failures: small(col(&r, 5)?, "failure count")?,
        user_failures: small(col(&r, 6)?, "failure count")?,
        epoch: col(&r, 7)?,
        sealed_storage_key: col(&r, 8)?,
        pins_mac: col(&r, 9)?,
    }))
}

const OBJECT_COLUMNS: &str =
    "id, class, key_type, label, ckid, private, unique_id, attrs, sealed, master_version, generation";

fn object_from_row(r: &Row) -> Result<(ObjectId, ObjectRecord)> {
    object_at(r, 0)
}

/// The object whose [`OBJECT_COLUMNS`] start at column `at` of `r`.
fn object_at(r: &Row, at: usize) -> Result<(ObjectId, ObjectRecord)> {
    Ok((
        ObjectId(col(r, at)?),
        ObjectRecord {
            class: col::<i64>(r, at + 1)? as u64,
            key_type: col::<Option<i64>>(r, at + 2)?.map(|v| v as u64),
            label: col(r, at + 3)?,
            ckid: col(r, at + 4)?,
            private: col(r, at + 5)?,
            unique_id: col(r, at + 6)?,
            attrs: col(r, at + 7)?,
            sealed: col(r, at + 8)?,
            master_version: col::<Option<i64>>(r, at + 9)?.map(|v| small(v, "master version")).transpose()?,
            generation: col::<i64>(r, at + 10)? as u64,
        },
    ))
}

/// A find's parameters: owned values of the types their columns have.
enum Arg {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl Arg {
    fn as_sql(&self) -> &(dyn ToSql + std::marker::Sync) {
        match self {
            Arg::Text(s) => s,
            Arg::Int(i) => i,
            Arg::Bytes(b) => b,
        }
    }
}

/// The find query for `q`: only the columns it names appear, so the planner picks the
/// matching index.
fn find_sql(workspace: &str, q: &IndexQuery) -> (String, Vec<Arg>) {
    let (filter, args) = find_filter(workspace, q);
    (format!("SELECT {OBJECT_COLUMNS} FROM objects {filter} ORDER BY id"), args)
}

/// The columns of the header row of [`find_with_hierarchy_sql`] before the object's:
/// the part (0: header, 1: object), the epoch, eight arrays of master key columns.
const HEADER_COLUMNS: usize = 10;

/// [`find_sql`] with the token's epoch and its master key rows in the same statement (one
/// round trip, one snapshot): a header row (part 0) with the epoch and one array per
/// master key column, in version order, then the objects (part 1) in id order.
fn find_with_hierarchy_sql(workspace: &str, q: &IndexQuery) -> (String, Vec<Arg>) {
    let (filter, args) = find_filter(workspace, q);
    let sql = format!(
        "SELECT 0 AS part, t.epoch, m.versions, m.states, m.created, m.classifications, m.sealed, m.blocked,
                m.macs, m.origins, NULL::BIGINT AS id, NULL::BIGINT, NULL::BIGINT, NULL::BYTEA, NULL::BYTEA,
                NULL::BOOLEAN, NULL::TEXT, NULL::BYTEA, NULL::BYTEA, NULL::BIGINT, NULL::BIGINT
         FROM tokens t, LATERAL (
             SELECT array_agg(version ORDER BY version) AS versions, array_agg(state ORDER BY version) AS states,
                    array_agg(created_at ORDER BY version) AS created,
                    array_agg(classification ORDER BY version) AS classifications,
                    array_agg(sealed ORDER BY version) AS sealed, array_agg(blocked ORDER BY version) AS blocked,
                    array_agg(mac ORDER BY version) AS macs, array_agg(origin ORDER BY version) AS origins
             FROM master_keys WHERE workspace = t.workspace) m
         WHERE t.workspace = $1
         UNION ALL
         SELECT 1, NULL::BIGINT, NULL::BIGINT[], NULL::BIGINT[], NULL::BIGINT[], NULL::TEXT[], NULL::BYTEA[],
                NULL::TEXT[], NULL::BYTEA[], NULL::TEXT[], {OBJECT_COLUMNS}
         FROM objects {filter}
         ORDER BY part, id"
    );
    (sql, args)
}

/// The WHERE clause of a find and its parameters (`$1` is the workspace).
fn find_filter(workspace: &str, q: &IndexQuery) -> (String, Vec<Arg>) {
    let mut sql = "WHERE workspace = $1".to_string();
    let mut args = vec![Arg::Text(workspace.to_string())];
    let mut add = |column: &str, value: Arg| {
        args.push(value);
        sql.push_str(&format!(" AND {column} = ${}", args.len()));
    };
    if let Some(c) = q.class {
        add("class", Arg::Int(c as i64));
    }
    if let Some(k) = q.key_type {
        add("key_type", Arg::Int(k as i64));
    }
    if let Some(l) = &q.label {
        add("label", Arg::Bytes(l.clone()));
    }
    if let Some(id) = &q.ckid {
        add("ckid", Arg::Bytes(id.clone()));
    }
    if q.public_only {
        sql.push_str(" AND NOT private");
    }
    (sql, args)
}

/// The record's columns as `$2` to `$11`, after the row key in `$1`.
fn record_params<'a>(
    first: &'a (dyn ToSql + std::marker::Sync),
    rec: &'a ObjectRecord,
    ints: &'a [Option<i64>; 4],
) -> [&'a (dyn ToSql + std::marker::Sync); 11] {
    [
        first,
        &ints[0],
        &ints[1],
        &rec.label,
        &rec.ckid,
        &rec.private,
        &rec.unique_id,
        &rec.attrs,
        &rec.sealed,
        &ints[2],
        &ints[3],
    ]
}

/// The integer columns of a record as stored: class, key type, master version, generation.
fn record_ints(rec: &ObjectRecord) -> [Option<i64>; 4] {
    [
        Some(rec.class as i64),
        rec.key_type.map(|v| v as i64),
        rec.master_version.map(i64::from),
        Some(i64::try_from(rec.generation).unwrap_or(i64::MAX)),
    ]
}

/// Refused logins since a time, by any host: the WHERE clause repeats the partial index's.
const FAILED_LOGINS_SQL: &str = "SELECT count(*) FROM audit_log WHERE action = 'C_Login' AND outcome <> 'CKR_OK'
     AND workspace = $1 AND at_ms >= $2 AND outcome IN ('CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED')";

fn audit_row(r: &Row) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: col(r, 0)?,
        at_ms: col(r, 1)?,
        pid: small(col(r, 2)?, "pid")?,
        event: AuditEvent {
            workspace: col(r, 3)?,
            actor: col(r, 4)?,
            action: col(r, 5)?,
            object: col(r, 6)?,
            outcome: col(r, 7)?,
            session: col::<Option<i64>>(r, 10)?.map(|s| s as u64),
            count: col::<Option<i64>>(r, 11)?.map(|c| c as u64),
            sync: Sync::Full,
        },
        prev_hash: col(r, 8)?,
        hash: col(r, 9)?,
        // Out of range: no format, so the row cannot verify.
        format: u8::try_from(col::<i64>(r, 12)?).unwrap_or(0),
    })
}

impl Backend for PgStore {
    fn set_hook(&self, hook: std::sync::Arc<dyn AppendHook>) {
        PgStore::set_hook(self, hook);
    }

    fn set_batching(&self, policy: BatchPolicy) {
        PgStore::set_batching(self, policy);
    }

    fn describe(&self) -> String {
        self.target.shown.clone()
    }

    fn reserve_iv_counter(&self, fingerprint: &[u8; 32], count: u64, max: u64) -> Result<Option<Range<u64>>> {
        let max = i64::try_from(max).map_err(|_| Error::Internal(Internal::IvCounterRange))?;
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let fingerprint = &fingerprint[..];
        self.with_conn(|conn| {
            let Conn { client, cache } = conn;
            let mut tx = client.transaction()?;
            let range = {
                let mut db = Db { c: &mut tx, cache };
                db.exec(
                    "INSERT INTO gcm_iv_counters (fingerprint, next) VALUES ($1, 1) ON CONFLICT DO NOTHING",
                    &[&fingerprint],
                )?;
                // The row's lock: reservations of one key queue here, on every host.
                let row =
                    db.one("SELECT next FROM gcm_iv_counters WHERE fingerprint = $1 FOR UPDATE", &[&fingerprint])?;
                let next: i64 = col(&row, 0)?;
                if next > max || next < 1 {
                    None
                } else {
                    let end = next.saturating_add(count).min(max.saturating_add(1));
                    db.exec("UPDATE gcm_iv_counters SET next = $2 WHERE fingerprint = $1", &[&fingerprint, &end])?;
                    Some(u64::try_from(next).unwrap_or(0)..u64::try_from(end).unwrap_or(0))
                }
            };
            // Committed before any value of the range is handed out: a crash only skips them.
            tx.commit()?;
            Ok(range)
        })
    }

    fn kek(&self, workspace: &str) -> Result<Option<super::quorum::KekRecord>> {
        self.read(|db| quorum::kek(db, workspace))
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
        self.read(|db| quorum::custodians(db, workspace))
    }

    fn reserve_custodian_attempt(&self, workspace: &str, name: &str, max: u32) -> Result<Option<u32>> {
        self.read(|db| {
            let row = db.opt(
                "UPDATE custodians SET failures = failures + 1
                 WHERE workspace = $1 AND name = $2 AND failures < $3 RETURNING failures",
                &[&workspace, &name, &i64::from(max)],
            )?;
            row.map(|r| small(col(&r, 0)?, "failure count")).transpose()
        })
    }

    fn custodian_verified(&self, workspace: &str, name: &str) -> Result<()> {
        self.read(|db| {
            db.exec("UPDATE custodians SET failures = 0 WHERE workspace = $1 AND name = $2", &[&workspace, &name])?;
            Ok(())
        })
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
        self.read(|db| quorum::requests(db, workspace))
    }

    fn add_approval(&self, request: i64, approval: &super::quorum::Approval, event: &AuditEvent) -> Result<bool> {
        self.quorum_add_approval(request, approval, event)
    }

    fn approvals(&self, request: i64) -> Result<Vec<super::quorum::Approval>> {
        self.read(|db| quorum::approvals(db, request))
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
        self.read(|db| quorum::grant(db, workspace))
    }

    fn drop_grant(&self, workspace: &str, expiring: Option<i64>, event: &AuditEvent) -> Result<bool> {
        self.quorum_drop_grant(workspace, expiring, event)
    }

    fn emergency(&self, workspace: &str) -> Result<Option<super::quorum::EmergencyWindow>> {
        self.read(|db| quorum::emergency(db, workspace))
    }

    fn set_emergency(
        &self,
        workspace: &str,
        window: Option<&super::quorum::EmergencyWindow>,
        event: &AuditEvent,
    ) -> Result<()> {
        self.quorum_set_emergency(workspace, window, event)
    }

    fn add_kit(&self, kit: &super::recovery::KitRecord, event: &AuditEvent) -> Result<()> {
        self.recovery_add_kit(kit, event)
    }

    fn ack_kit(&self, ack: &super::recovery::KitAck, fingerprint: &[u8; 32], event: &AuditEvent) -> Result<bool> {
        self.recovery_ack_kit(ack, fingerprint, event)
    }

    fn kits(&self, workspace: &str) -> Result<Vec<super::recovery::IssuedKit>> {
        self.read(|db| recovery::kits(db, workspace))
    }

    /// A PostgreSQL store is backed up into the same SQLite file a SQLite store's backup
    /// holds: one snapshot transaction read from the server, written as a new store file,
    /// so `cvault backup verify` and `restore` treat both alike.
    fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        super::sqlite::write_file(&self.copy_snapshot()?, dest)
    }

    fn snapshot(&self) -> Result<super::copy::Snapshot> {
        self.copy_snapshot()
    }

    fn load_snapshot(&self, snapshot: &super::copy::Snapshot) -> Result<()> {
        self.copy_load(snapshot)
    }

    fn hold(&self, workspace: &str) -> Result<Option<super::quorum::Hold>> {
        self.read(|db| quorum::hold(db, workspace))
    }

    fn set_hold(&self, workspace: &str, hold: Option<&super::quorum::Hold>, event: &AuditEvent) -> Result<()> {
        self.quorum_set_hold(workspace, hold, event)
    }

    fn open_token(&self, workspace: &str, default_label: &str) -> Result<TokenRecord> {
        self.read(|db| {
            if let Some(t) = read_token(db, workspace)? {
                return Ok(t);
            }
            let mut serial = [0u8; 8];
            crate::mechanism::primitives::fill_random(&mut serial)?;
            let serial = hex::encode(serial);
            // Two hosts opening a new token at once: one row, the other's insert is ignored.
            db.exec(
                "INSERT INTO tokens (workspace, label, serial) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&workspace, &default_label, &serial],
            )?;
            read_token(db, workspace)?.ok_or_else(|| Error::Store(format!("token {workspace:?} vanished")))
        })
    }

    fn token(&self, workspace: &str) -> Result<TokenRecord> {
        self.read(|db| {
            read_token(db, workspace)?.ok_or_else(|| Error::Store(format!("token {workspace:?} is not in the store")))
        })
    }

    fn init_token(&self, workspace: &str, init: &TokenInit<'_>, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            let wiped = tx.exec("DELETE FROM objects WHERE workspace = $1", &[&workspace])?;
            tx.exec("DELETE FROM master_keys WHERE workspace = $1", &[&workspace])?;
            tx.exec(
                "DELETE FROM quorum_approvals WHERE request IN (SELECT id FROM quorum_requests WHERE workspace = $1)",
                &[&workspace],
            )?;
            for table in ["workspace_keks", "custodians", "quorum_requests", "unlock_grants", "emergency_windows"] {
                tx.exec(&format!("DELETE FROM {table} WHERE workspace = $1"), &[&workspace])?;
            }
            tx.exec(
                "UPDATE tokens SET label = $2, initialized = TRUE, so_pin = $3, user_pin = NULL,
                 so_failures = 0, user_failures = 0, epoch = epoch + 1, sealed_storage_key = $4
                 WHERE workspace = $1",
                &[&workspace, &init.label, &init.so_pin, &init.sealed_storage_key],
            )?;
            insert_master(tx, workspace, init.first_master)?;
            self.refresh_pins_mac(tx, workspace)?;
            log::info!("token {workspace:?} initialized; {wiped} objects wiped");
            Ok(())
        })
    }

    fn masters(&self, workspace: &str) -> Result<Vec<MasterRecord>> {
        self.read(|db| read_masters(db, workspace, None))
    }

    fn add_master(&self, workspace: &str, master: &MasterRecord, mac: MasterMac<'_>, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            // Read under the write lock: a rotation another host committed first is seen,
            // and this one, made from the same version, is refused with nothing written.
            let rows = read_masters(tx, workspace, None)?;
            if rows.iter().any(|m| m.version == master.version) {
                log::warn!(
                    "{workspace}: another host made wmk v{} first; nothing written by this host",
                    master.version
                );
                return Err(Error::VersionTaken(master.version));
            }
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
            self.vacuum_masters();
        }
        Ok(found)
    }

    fn reseal_masters(&self, workspace: &str, rows: &[MasterRecord], event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            for m in rows {
                tx.exec(
                    "UPDATE master_keys SET sealed = $3, mac = $4 WHERE workspace = $1 AND version = $2",
                    &[&workspace, &i64::from(m.version), &m.sealed, &m.mac],
                )?;
            }
            Ok(())
        })
    }

    fn records_under(&self, workspace: &str, version: u32) -> Result<u64> {
        self.read(|db| {
            let row = db.one(
                "SELECT count(*) FROM objects WHERE workspace = $1 AND master_version = $2",
                &[&workspace, &i64::from(version)],
            )?;
            Ok(u64::try_from(col::<i64>(&row, 0)?).unwrap_or(0))
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
        let target64 = i64::from(target);
        let event = |what: String| AuditEvent::ok(workspace, "module", "rewrap batch", Some(what));
        self.admit(&[event(String::new())])?;
        // One batch, whatever its size: the lock, one SELECT of the batch, one UPDATE of
        // all its rows, the audit entry (head and insert), the commit. Every write to
        // `objects` takes the write lock first, so the rows read under it stay as read until
        // the commit without a row lock (`FOR UPDATE` would only add a write per row).
        let (done, appended) = self.locked(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects WHERE id > $4 AND workspace = $1
                     AND master_version IS NOT NULL AND master_version <> $2 ORDER BY id LIMIT $3"
                ),
                &[&workspace, &target64, &limit, &after.0],
            )?;
            let batch = rows.iter().map(object_from_row).collect::<Result<Vec<_>>>()?;
            // Every record re-sealed first (a failure rolls the whole batch back), then
            // written in one statement: a batch costs the same few round trips at any size,
            // where one UPDATE per row made the re-wrap a round trip per record.
            let ids: Vec<i64> = batch.iter().map(|(id, _)| id.0).collect();
            let sealed = batch.iter().map(|(_, record)| reseal(record)).collect::<Result<Vec<Vec<u8>>>>()?;
            if !batch.is_empty() {
                let written = tx.exec(
                    "UPDATE objects AS o SET sealed = n.sealed, master_version = $3
                     FROM UNNEST($1::BIGINT[], $2::BYTEA[]) AS n(id, sealed) WHERE o.id = n.id",
                    &[&ids, &sealed, &target64],
                )?;
                // The rows were read under the write lock, which every object write takes:
                // none can have gone since. A mismatch is a store fault, not a partial batch.
                if usize::try_from(written).ok() != Some(ids.len()) {
                    return Err(Error::Store(format!("re-wrap batch: {written} of {} rows written", ids.len())));
                }
            }
            let mut appended = None;
            if !batch.is_empty() {
                let e = event(format!("{} stored record(s) to wmk v{target}", batch.len()));
                appended = Some((append_entry(tx, &e)?, e));
            }
            Ok((RewrapBatch { moved: batch.len(), last: batch.last().map(|(id, _)| *id) }, appended))
        })?;
        if let Some((seq, e)) = appended {
            self.appended(seq, &e);
        }
        Ok(done)
    }

    fn set_pin(&self, workspace: &str, owner: PinOwner, record: &[u8], event: &AuditEvent) -> Result<()> {
        let (pin, failures) = pin_columns(owner);
        self.write(event, |tx| {
            tx.exec(
                &format!("UPDATE tokens SET {pin} = $2, {failures} = 0 WHERE workspace = $1"),
                &[&workspace, &record],
            )?;
            self.refresh_pins_mac(tx, workspace)
        })
    }

    fn reserve_login(&self, workspace: &str, owner: PinOwner, max: u32) -> Result<Option<u32>> {
        let (_, failures) = pin_columns(owner);
        self.locked(|tx| {
            // Checked again under the write lock, so a counter reset in the database
            // between the caller's read and this reservation is refused too.
            if let Some(mac) = self.pins_mac_of(workspace) {
                let rec = read_token(tx, workspace)?.ok_or_else(|| Error::Store(format!("no token {workspace:?}")))?;
                let expected = mac(&rec)?;
                if rec.pins_mac.as_deref().is_some_and(|m| !super::sealed::mac_eq(m, &expected)) {
                    log::error!(
                        "{workspace}: the PIN records or failure counters fail their MAC (edited in the database?)"
                    );
                    return Err(Error::Integrity("the PIN records fail their MAC"));
                }
            }
            let row = tx.opt(
                &format!(
                    "UPDATE tokens SET {failures} = {failures} + 1 WHERE workspace = $1 AND {failures} < $2
                     RETURNING {failures}"
                ),
                &[&workspace, &i64::from(max)],
            )?;
            let now: Option<u32> = row.map(|r| small(col(&r, 0)?, "failure count")).transpose()?;
            if now.is_some() {
                self.refresh_pins_mac(tx, workspace)?;
            }
            Ok(now)
        })
    }

    fn set_pins_mac(&self, workspace: &str, mac: PinsMac) {
        self.pins_macs.lock().insert(workspace.to_string(), mac);
    }

    fn bump_epoch(&self, workspace: &str, event: &AuditEvent) -> Result<i64> {
        self.write(event, |tx| {
            tx.exec("UPDATE tokens SET epoch = epoch + 1 WHERE workspace = $1", &[&workspace])?;
            // The epoch is under the PIN MAC: recomputed with it.
            self.refresh_pins_mac(tx, workspace)?;
            let row = tx.one("SELECT epoch FROM tokens WHERE workspace = $1", &[&workspace])?;
            col(&row, 0)
        })
    }

    fn forget_sealed_storage_key(&self, workspace: &str, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            tx.exec("UPDATE tokens SET sealed_storage_key = NULL WHERE workspace = $1", &[&workspace])?;
            self.refresh_pins_mac(tx, workspace)
        })
    }

    fn record_login(&self, workspace: &str, owner: PinOwner, ok: bool, event: &AuditEvent) -> Result<u32> {
        let (_, failures) = pin_columns(owner);
        let update = if ok { "0".to_string() } else { format!("{failures} + 1") };
        self.write(event, |tx| {
            let row = tx.one(
                &format!("UPDATE tokens SET {failures} = {update} WHERE workspace = $1 RETURNING {failures}"),
                &[&workspace],
            )?;
            let now = small(col(&row, 0)?, "failure count")?;
            self.refresh_pins_mac(tx, workspace)?;
            Ok(now)
        })
    }

    fn insert_object(&self, workspace: &str, rec: &ObjectRecord, event: &AuditEvent) -> Result<ObjectId> {
        let ints = record_ints(rec);
        self.write(event, |tx| {
            let row = tx.one(
                "INSERT INTO objects (workspace, class, key_type, label, ckid, private, unique_id, attrs, sealed,
                 master_version, generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &record_params(&workspace, rec, &ints),
            )?;
            Ok(ObjectId(col(&row, 0)?))
        })
    }

    fn update_object(&self, id: ObjectId, expected: u64, rec: &ObjectRecord, event: &AuditEvent) -> Result<Updated> {
        let expected = i64::try_from(expected).map_err(|_| Error::Integrity("object generation out of range"))?;
        let ints = record_ints(rec);
        self.admit(std::slice::from_ref(event))?;
        let (outcome, seq) = self.locked(|tx| {
            let found = tx.opt("SELECT generation FROM objects WHERE id = $1", &[&id.0])?;
            match found.map(|r| col::<i64>(&r, 0)).transpose()? {
                None => return Ok((Updated::Gone, None)),
                Some(g) if g != expected => return Ok((Updated::Moved, None)),
                Some(_) => {}
            }
            tx.exec(
                "UPDATE objects SET class = $2, key_type = $3, label = $4, ckid = $5, private = $6,
                 unique_id = $7, attrs = $8, sealed = $9, master_version = $10, generation = $11 WHERE id = $1",
                &record_params(&id.0, rec, &ints),
            )?;
            Ok((Updated::Done, Some(append_entry(tx, event)?)))
        })?;
        if let Some(seq) = seq {
            self.appended(seq, event);
        }
        Ok(outcome)
    }

    fn delete_object(&self, id: ObjectId, event: &AuditEvent) -> Result<bool> {
        self.write(event, |tx| Ok(tx.exec("DELETE FROM objects WHERE id = $1", &[&id.0])? == 1))
    }

    fn object(&self, workspace: &str, id: ObjectId) -> Result<Option<ObjectRecord>> {
        self.read(|db| {
            let row = db.opt(
                &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE id = $1 AND workspace = $2"),
                &[&id.0, &workspace],
            )?;
            row.map(|r| object_from_row(&r).map(|(_, rec)| rec)).transpose()
        })
    }

    fn find_objects(&self, workspace: &str, q: &IndexQuery) -> Result<Vec<(ObjectId, ObjectRecord)>> {
        let (sql, args) = find_sql(workspace, q);
        let params: Vec<&(dyn ToSql + std::marker::Sync)> = args.iter().map(Arg::as_sql).collect();
        self.read(|db| db.query(&sql, &params)?.iter().map(object_from_row).collect())
    }

    fn find_with_hierarchy(&self, workspace: &str, q: &IndexQuery, with_hierarchy: bool) -> Result<FindRead> {
        if !with_hierarchy {
            return Ok(FindRead { objects: self.find_objects(workspace, q)?, hierarchy: None });
        }
        let (sql, args) = find_with_hierarchy_sql(workspace, q);
        let params: Vec<&(dyn ToSql + std::marker::Sync)> = args.iter().map(Arg::as_sql).collect();
        self.read(|db| {
            let rows = db.query(&sql, &params)?;
            let mut hierarchy = None;
            let mut objects = Vec::with_capacity(rows.len().saturating_sub(1));
            for r in &rows {
                match col::<i32>(r, 0)? {
                    0 => hierarchy = Some(hierarchy_from_row(r, workspace)?),
                    _ => objects.push(object_at(r, HEADER_COLUMNS)?),
                }
            }
            let hierarchy =
                hierarchy.ok_or_else(|| Error::Store(format!("token {workspace:?} is not in the store")))?;
            Ok(FindRead { objects, hierarchy: Some(hierarchy) })
        })
    }

    fn audit_rows(&self) -> Result<Vec<AuditRow>> {
        self.read(|db| {
            db.query(
                "SELECT seq, at_ms, pid, workspace, actor, action, object, outcome, prev_hash, hash,
                 session, count, format FROM audit_log ORDER BY seq",
                &[],
            )?
            .iter()
            .map(audit_row)
            .collect()
        })
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let signed = |signature: Option<Vec<u8>>, public_key: Option<Vec<u8>>| {
            signature.zip(public_key).map(|(signature, public_key)| CheckpointSignature { signature, public_key })
        };
        self.read(|db| {
            db.query(
                "SELECT number, entry_seq, entry_hash, signature, public_key, mldsa_signature, mldsa_public_key
                 FROM audit_checkpoints ORDER BY number",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(Checkpoint {
                    number: col(r, 0)?,
                    entry_seq: col(r, 1)?,
                    entry_hash: col(r, 2)?,
                    ecdsa: signed(col(r, 3)?, col(r, 4)?),
                    mldsa: signed(col(r, 5)?, col(r, 6)?),
                })
            })
            .collect()
        })
    }

    fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>> {
        self.read(|db| {
            let row = db.opt("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])?;
            row.map(|r| Ok((col(&r, 0)?, col(&r, 1)?))).transpose()
        })
    }

    fn add_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        self.read(|db| {
            db.exec(
                "INSERT INTO audit_checkpoints
                 (number, entry_seq, entry_hash, signature, public_key, mldsa_signature, mldsa_public_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &c.number,
                    &c.entry_seq,
                    &c.entry_hash,
                    &c.ecdsa.as_ref().map(|s| &s.signature),
                    &c.ecdsa.as_ref().map(|s| &s.public_key),
                    &c.mldsa.as_ref().map(|s| &s.signature),
                    &c.mldsa.as_ref().map(|s| &s.public_key),
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
        self.read(|db| {
            let row = db.one(FAILED_LOGINS_SQL, &[&workspace, &since_ms])?;
            Ok(u64::try_from(col::<i64>(&row, 0)?).unwrap_or(0))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_string_with_a_password_is_refused_without_echoing_it() {
        for s in ["postgresql://u:hunter2@db/cv", "host=/run/pg dbname=cv password=hunter2"] {
            let err = PgTarget::parse(s).expect_err("a password in the config");
            assert!(err.contains("store_password_env") && !err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn the_server_is_named_by_host_port_and_database_only() {
        let t = PgTarget::parse("postgresql://cv@db.internal:6543/vault").expect("url");
        assert_eq!(format!("{t:?}"), "postgresql host db.internal port 6543 database vault");
        let t = PgTarget::parse("host=/run/postgresql dbname=cv user=cv").expect("key-value");
        assert_eq!(t.shown, "postgresql host /run/postgresql port 5432 database cv");
        let t = t.with_password(b"secret");
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn only_postgres_strings_select_the_backend_and_bad_ones_are_not_echoed_with_secrets() {
        assert!(
            is_postgres("postgresql://h/db") && is_postgres("postgres://h/db") && is_postgres("host=/tmp dbname=x")
        );
        assert!(!is_postgres("sqlite:/var/lib/cv") && !is_postgres("/var/lib/cv"));
        assert_eq!(crate::config::redact("postgresql://u:pw@h/db"), "postgresql://...@h/db");
        assert_eq!(crate::config::redact("host=h password=pw dbname=d"), "host=h dbname=d");
    }

    #[test]
    fn finds_name_only_the_columns_the_query_sets() {
        let (sql, args) =
            find_sql("ws", &IndexQuery { class: Some(4), label: Some(b"k".to_vec()), ..Default::default() });
        assert!(sql.ends_with("WHERE workspace = $1 AND class = $2 AND label = $3 ORDER BY id"), "{sql}");
        assert_eq!(args.len(), 3);
        let (sql, _) = find_sql("ws", &IndexQuery { public_only: true, ..Default::default() });
        assert!(sql.contains("AND NOT private"), "{sql}");
    }

    #[test]
    fn a_find_with_the_hierarchy_filters_its_objects_as_the_find_alone() {
        let q = IndexQuery { class: Some(4), label: Some(b"k".to_vec()), public_only: true, ..Default::default() };
        let (alone, alone_args) = find_sql("ws", &q);
        let (with, with_args) = find_with_hierarchy_sql("ws", &q);
        let (filter, _) = find_filter("ws", &q);
        assert!(alone.contains(&filter) && with.contains(&format!("FROM objects {filter}\n")), "{with}");
        assert_eq!(alone_args.len(), with_args.len());
        // The header's columns before the object's, as the decoder reads them.
        let header = with.split("UNION ALL").nth(1).expect("objects part");
        let before_objects = header.split(OBJECT_COLUMNS).next().expect("object columns");
        assert_eq!(before_objects.matches(',').count(), HEADER_COLUMNS, "{before_objects}");
    }
}
