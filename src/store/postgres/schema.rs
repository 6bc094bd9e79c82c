//! The PostgreSQL schema: the tables of SQLite's schema version 11 in PostgreSQL's types
//! (`BYTEA`, `BIGINT`, `BOOLEAN`, identity keys), created on first connect, and the
//! migrations after it. The version is kept in `schema_version`, numbered as SQLite's,
//! so both backends name the same schema by the same number.

use postgres::Client;

use super::{col, small, WRITE_LOCK};
use crate::error::{Error, Result};

/// Schema migrations by the version they produce; the first makes version 11 at once.
const MIGRATIONS: &[(u32, &str)] = &[
    (
        11,
        "CREATE TABLE tokens (
        workspace          TEXT PRIMARY KEY,
        label              TEXT NOT NULL,
        serial             TEXT NOT NULL,
        initialized        BOOLEAN NOT NULL DEFAULT FALSE,
        so_pin             BYTEA,
        user_pin           BYTEA,
        so_failures        BIGINT NOT NULL DEFAULT 0,
        user_failures      BIGINT NOT NULL DEFAULT 0,
        epoch              BIGINT NOT NULL DEFAULT 0,
        sealed_storage_key BYTEA,
        pins_mac           BYTEA
    );
    CREATE TABLE objects (
        id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace      TEXT NOT NULL REFERENCES tokens(workspace),
        class          BIGINT NOT NULL,
        key_type       BIGINT,
        label          BYTEA NOT NULL,
        ckid           BYTEA,
        private        BOOLEAN NOT NULL,
        unique_id      TEXT NOT NULL UNIQUE,
        attrs          BYTEA NOT NULL,
        sealed         BYTEA,
        master_version BIGINT,
        generation     BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX objects_by_class          ON objects(workspace, class);
    CREATE INDEX objects_by_key_type       ON objects(workspace, key_type);
    CREATE INDEX objects_by_label          ON objects(workspace, label);
    CREATE INDEX objects_by_ckid           ON objects(workspace, ckid);
    CREATE INDEX objects_by_master_version ON objects(workspace, master_version);
    CREATE TABLE master_keys (
        workspace      TEXT NOT NULL REFERENCES tokens(workspace),
        version        BIGINT NOT NULL,
        state          BIGINT NOT NULL,
        created_at     BIGINT NOT NULL,
        classification TEXT NOT NULL,
        sealed         BYTEA,
        blocked        TEXT,
        mac            BYTEA,
        origin         TEXT,
        PRIMARY KEY (workspace, version)
    );
    -- prev_hash is unique: two entries can never follow the same one (no fork), even
    -- if a writer ever appended without the advisory lock.
    CREATE TABLE audit_log (
        seq       BIGINT PRIMARY KEY,
        at_ms     BIGINT NOT NULL,
        pid       BIGINT NOT NULL,
        workspace TEXT,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        object    TEXT,
        outcome   TEXT NOT NULL,
        prev_hash BYTEA NOT NULL UNIQUE,
        hash      BYTEA NOT NULL,
        session   BIGINT,
        count     BIGINT,
        format    BIGINT NOT NULL
    );
    CREATE INDEX audit_refused_logins ON audit_log(workspace, at_ms)
        WHERE action = 'C_Login' AND outcome <> 'CKR_OK';
    CREATE TABLE audit_checkpoints (
        number           BIGINT PRIMARY KEY,
        entry_seq        BIGINT NOT NULL,
        entry_hash       BYTEA NOT NULL,
        signature        BYTEA,
        public_key       BYTEA,
        mldsa_signature  BYTEA,
        mldsa_public_key BYTEA,
        CHECK ((signature IS NULL) = (public_key IS NULL)),
        CHECK ((mldsa_signature IS NULL) = (mldsa_public_key IS NULL)),
        CHECK (signature IS NOT NULL OR mldsa_signature IS NOT NULL)
    );
    CREATE TABLE gcm_iv_counters (
        fingerprint BYTEA PRIMARY KEY,
        next        BIGINT NOT NULL
    );
    CREATE TABLE workspace_keks (
        workspace   TEXT PRIMARY KEY REFERENCES tokens(workspace),
        generation  BIGINT NOT NULL,
        threshold   BIGINT NOT NULL,
        sealed      BYTEA,
        check_value BYTEA NOT NULL
    );
    CREATE TABLE custodians (
        workspace    TEXT NOT NULL REFERENCES tokens(workspace),
        name         TEXT NOT NULL,
        share_index  BIGINT NOT NULL,
        salt         BYTEA NOT NULL,
        memory_kib   BIGINT NOT NULL,
        passes       BIGINT NOT NULL,
        public_key   BYTEA NOT NULL,
        sealed_share BYTEA NOT NULL,
        failures     BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (workspace, name),
        UNIQUE (workspace, share_index)
    );
    CREATE TABLE emergency_windows (
        workspace  TEXT PRIMARY KEY REFERENCES tokens(workspace),
        name       TEXT NOT NULL,
        opened_by  TEXT NOT NULL,
        opened_at  BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE quorum_requests (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace    TEXT NOT NULL REFERENCES tokens(workspace),
        action       TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        generation   BIGINT NOT NULL,
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL,
        state        BIGINT NOT NULL
    );
    CREATE INDEX quorum_requests_open ON quorum_requests(workspace, action, state);
    CREATE TABLE quorum_approvals (
        request      BIGINT NOT NULL REFERENCES quorum_requests(id),
        custodian    TEXT NOT NULL,
        share_index  BIGINT NOT NULL,
        sealed_share BYTEA NOT NULL,
        at           BIGINT NOT NULL,
        PRIMARY KEY (request, custodian)
    );
    CREATE TABLE unlock_grants (
        workspace  TEXT PRIMARY KEY REFERENCES tokens(workspace),
        generation BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        sealed     BYTEA NOT NULL
    );
    CREATE TABLE legal_holds (
        workspace TEXT PRIMARY KEY REFERENCES tokens(workspace),
        set_by    TEXT NOT NULL,
        reason    TEXT NOT NULL,
        set_at    BIGINT NOT NULL
    );",
    ),
    (
        12,
        // The recovery kit inventory, as SQLite's v12 (store/recovery.rs).
        "CREATE TABLE recovery_kits (
        kit_id      TEXT PRIMARY KEY,
        workspace   TEXT NOT NULL,
        fingerprint BYTEA NOT NULL UNIQUE,
        versions    TEXT NOT NULL,
        holder      TEXT NOT NULL,
        issued_at   BIGINT NOT NULL
    );
    CREATE INDEX recovery_kits_by_workspace ON recovery_kits (workspace);
    CREATE TABLE recovery_kit_acks (
        kit_id TEXT NOT NULL REFERENCES recovery_kits (kit_id),
        holder TEXT NOT NULL,
        at     BIGINT NOT NULL
    );
    CREATE INDEX recovery_kit_acks_by_kit ON recovery_kit_acks (kit_id);",
    ),
];

/// The schema version this module writes.
pub(crate) fn current() -> u32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Creates or migrates the schema, under the write lock: hosts starting at once migrate
/// once, the others wait and find it done.
pub(super) fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let row = tx.query_opt("SELECT version FROM schema_version", &[])?;
    let version: u32 = match &row {
        Some(r) => small(col(r, 0)?, "schema version")?,
        None => 0,
    };
    if version > current() {
        return Err(Error::Store(format!(
            "store schema version {version} is newer than this module understands ({})",
            current()
        )));
    }
    for (to, sql) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
        tx.batch_execute(sql)?;
        log::info!("store schema migrated to version {to}");
    }
    let now = i64::from(current());
    if row.is_some() {
        tx.execute("UPDATE schema_version SET version = $1", &[&now])?;
    } else {
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&now])?;
    }
    tx.commit()?;
    Ok(())
}
