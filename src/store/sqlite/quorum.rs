//! The quorum's tables in SQLite (`store/quorum.rs` says what each row is): the KEK row,
//! custodians, requests, approvals and the unlock grant. Each change commits with its
//! audit entry, as everywhere in the store.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::SqliteStore;
use crate::error::{Error, Result};
use crate::store::quorum::{
    Approval, Custodian, EmergencyWindow, Grant, Hold, KekRecord, NewRequest, Request, RequestState,
};
use crate::store::{AuditEvent, MasterRecord};

fn small<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| Error::Store(format!("{what} {v} is out of range")))
}

pub(super) fn kek(conn: &Connection, workspace: &str) -> Result<Option<KekRecord>> {
    let row = conn
        .prepare_cached("SELECT generation, threshold, sealed, check_value FROM workspace_keks WHERE workspace = ?1")?
        .query_row([workspace], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<Vec<u8>>>(2)?, r.get::<_, Vec<u8>>(3)?))
        })
        .optional()?;
    row.map(|(generation, threshold, sealed, check)| {
        Ok(KekRecord {
            generation: small(generation, "KEK generation")?,
            threshold: small(threshold, "quorum threshold")?,
            sealed,
            check,
        })
    })
    .transpose()
}

/// A custodian row as SQLite types: name, index, salt, memory, passes, key, share, failures.
type CustodianRow = (String, i64, Vec<u8>, i64, i64, Vec<u8>, Vec<u8>, i64);

fn custodian(r: &Row<'_>) -> rusqlite::Result<CustodianRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

pub(super) fn custodians(conn: &Connection, workspace: &str) -> Result<Vec<Custodian>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, share_index, salt, memory_kib, passes, public_key, sealed_share, failures
         FROM custodians WHERE workspace = ?1 ORDER BY share_index",
    )?;
    let rows = stmt.query_map([workspace], custodian)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(name, index, salt, memory_kib, passes, public_key, sealed_share, failures)| {
            Ok(Custodian {
                name,
                index: small(index, "share index")?,
                salt,
                memory_kib: small(memory_kib, "Argon2id memory")?,
                passes: small(passes, "Argon2id passes")?,
                public_key,
                sealed_share,
                failures: small(failures, "failure count")?,
            })
        })
        .collect()
}

fn request(r: &Row<'_>) -> rusqlite::Result<(i64, String, String, i64, i64, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_request(row: (i64, String, String, i64, i64, i64, i64)) -> Result<Request> {
    let (id, action, requested_by, generation, created_at, expires_at, state) = row;
    Ok(Request {
        id,
        action,
        requested_by,
        generation: small(generation, "request generation")?,
        created_at,
        expires_at,
        state: RequestState::from_code(state),
    })
}

const REQUEST_COLUMNS: &str = "id, action, requested_by, generation, created_at, expires_at, state";

pub(super) fn requests(conn: &Connection, workspace: &str) -> Result<Vec<Request>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM quorum_requests WHERE workspace = ?1 ORDER BY id DESC"
    ))?;
    let rows = stmt.query_map([workspace], request)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(to_request).collect()
}

pub(super) fn approvals(conn: &Connection, request: i64) -> Result<Vec<Approval>> {
    let mut stmt = conn.prepare_cached(
        "SELECT custodian, share_index, sealed_share, at FROM quorum_approvals WHERE request = ?1 ORDER BY at",
    )?;
    let rows = stmt
        .query_map([request], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(custodian, index, sealed_share, at)| {
            Ok(Approval { custodian, index: small(index, "share index")?, sealed_share, at })
        })
        .collect()
}

pub(super) fn grant(conn: &Connection, workspace: &str) -> Result<Option<Grant>> {
    let row = conn
        .prepare_cached("SELECT generation, expires_at, sealed FROM unlock_grants WHERE workspace = ?1")?
        .query_row([workspace], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)))
        .optional()?;
    row.map(|(generation, expires_at, sealed)| {
        Ok(Grant { generation: small(generation, "grant generation")?, expires_at, sealed })
    })
    .transpose()
}

pub(super) fn hold(conn: &Connection, workspace: &str) -> Result<Option<Hold>> {
    Ok(conn
        .prepare_cached("SELECT set_by, reason, set_at FROM legal_holds WHERE workspace = ?1")?
        .query_row([workspace], |r| Ok(Hold { set_by: r.get(0)?, reason: r.get(1)?, set_at: r.get(2)? }))
        .optional()?)
}

pub(super) fn emergency(conn: &Connection, workspace: &str) -> Result<Option<EmergencyWindow>> {
    Ok(conn
        .prepare_cached("SELECT name, opened_by, opened_at, expires_at FROM emergency_windows WHERE workspace = ?1")?
        .query_row([workspace], |r| {
            Ok(EmergencyWindow { name: r.get(0)?, opened_by: r.get(1)?, opened_at: r.get(2)?, expires_at: r.get(3)? })
        })
        .optional()?)
}

impl SqliteStore {
    pub(super) fn quorum_set_emergency(
        &self,
        workspace: &str,
        window: Option<&EmergencyWindow>,
        event: &AuditEvent,
    ) -> Result<()> {
        self.write(event, |tx| {
            match window {
                Some(w) => tx.execute(
                    "INSERT INTO emergency_windows (workspace, name, opened_by, opened_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(workspace) DO UPDATE SET name = excluded.name, opened_by = excluded.opened_by,
                     opened_at = excluded.opened_at, expires_at = excluded.expires_at",
                    params![workspace, w.name, w.opened_by, w.opened_at, w.expires_at],
                )?,
                None => tx.execute("DELETE FROM emergency_windows WHERE workspace = ?1", [workspace])?,
            };
            Ok(())
        })
    }

    pub(super) fn quorum_set_hold(&self, workspace: &str, hold: Option<&Hold>, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            match hold {
                Some(h) => tx.execute(
                    "INSERT INTO legal_holds (workspace, set_by, reason, set_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(workspace) DO UPDATE SET set_by = excluded.set_by, reason = excluded.reason,
                     set_at = excluded.set_at",
                    params![workspace, h.set_by, h.reason, h.set_at],
                )?,
                None => tx.execute("DELETE FROM legal_holds WHERE workspace = ?1", [workspace])?,
            };
            Ok(())
        })
    }

    pub(super) fn quorum_replace_kek(
        &self,
        workspace: &str,
        expected: Option<u32>,
        kek: &KekRecord,
        custodians: &[Custodian],
        masters: &[MasterRecord],
        event: &AuditEvent,
    ) -> Result<bool> {
        // Checked before the write (which always appends its event), and again inside it.
        if self.with_conn(|c| self::kek(c, workspace))?.map(|k| k.generation) != expected {
            return Ok(false);
        }
        self.write(event, |tx| {
            if self::kek(tx, workspace)?.map(|k| k.generation) != expected {
                return Err(Error::Store("the KEK moved during its replacement; try again".into()));
            }
            tx.execute(
                "INSERT INTO workspace_keks (workspace, generation, threshold, sealed, check_value)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(workspace) DO UPDATE SET generation = excluded.generation,
                 threshold = excluded.threshold, sealed = excluded.sealed, check_value = excluded.check_value",
                params![workspace, kek.generation, kek.threshold, kek.sealed, kek.check],
            )?;
            tx.execute("DELETE FROM custodians WHERE workspace = ?1", [workspace])?;
            for c in custodians {
                tx.execute(
                    "INSERT INTO custodians (workspace, name, share_index, salt, memory_kib, passes, public_key,
                     sealed_share, failures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
                    params![workspace, c.name, c.index, c.salt, c.memory_kib, c.passes, c.public_key, c.sealed_share],
                )?;
            }
            for m in masters {
                tx.execute(
                    "UPDATE master_keys SET sealed = ?3, mac = ?4 WHERE workspace = ?1 AND version = ?2",
                    params![workspace, m.version, m.sealed, m.mac],
                )?;
            }
            tx.execute("DELETE FROM unlock_grants WHERE workspace = ?1", [workspace])?;
            tx.execute(
                "UPDATE quorum_requests SET state = ?2 WHERE workspace = ?1 AND state = ?3",
                params![workspace, RequestState::Cancelled.code(), RequestState::Open.code()],
            )?;
            Ok(true)
        })
    }

    pub(super) fn quorum_reserve_attempt(&self, workspace: &str, name: &str, max: u32) -> Result<Option<u32>> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now: Option<u32> = tx
                .query_row(
                    "UPDATE custodians SET failures = failures + 1
                     WHERE workspace = ?1 AND name = ?2 AND failures < ?3 RETURNING failures",
                    params![workspace, name, max],
                    |r| r.get(0),
                )
                .optional()?;
            tx.commit()?;
            Ok(now)
        })
    }

    pub(super) fn quorum_verified(&self, workspace: &str, name: &str) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE custodians SET failures = 0 WHERE workspace = ?1 AND name = ?2",
                params![workspace, name],
            )?;
            Ok(())
        })
    }

    pub(super) fn quorum_open_request(
        &self,
        workspace: &str,
        new: &NewRequest<'_>,
        event: &AuditEvent,
    ) -> Result<Request> {
        let NewRequest { action, requested_by, generation, now, expires_at } = *new;
        let find = |conn: &Connection| -> Result<Option<Request>> {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM quorum_requests WHERE workspace = ?1 AND action = ?2
                     AND generation = ?3 AND state = ?4 AND expires_at > ?5 ORDER BY id LIMIT 1"
                ))?
                .query_row(params![workspace, action, generation, RequestState::Open.code(), now], request)
                .optional()?;
            row.map(to_request).transpose()
        };
        if let Some(open) = self.with_conn(|c| find(c))? {
            return Ok(open);
        }
        self.write(event, |tx| {
            tx.execute(
                "INSERT INTO quorum_requests (workspace, action, requested_by, generation, created_at, expires_at,
                 state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![workspace, action, requested_by, generation, now, expires_at, RequestState::Open.code()],
            )?;
            Ok(Request {
                id: tx.last_insert_rowid(),
                action: action.to_string(),
                requested_by: requested_by.to_string(),
                generation,
                created_at: now,
                expires_at,
                state: RequestState::Open,
            })
        })
    }

    pub(super) fn quorum_add_approval(&self, request: i64, approval: &Approval, event: &AuditEvent) -> Result<bool> {
        let already = |conn: &Connection| -> Result<bool> {
            Ok(conn
                .prepare_cached("SELECT 1 FROM quorum_approvals WHERE request = ?1 AND custodian = ?2")?
                .query_row(params![request, approval.custodian], |_| Ok(()))
                .optional()?
                .is_some())
        };
        if self.with_conn(|c| already(c))? {
            return Ok(false);
        }
        self.write(event, |tx| {
            tx.execute(
                "INSERT INTO quorum_approvals (request, custodian, share_index, sealed_share, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![request, approval.custodian, approval.index, approval.sealed_share, approval.at],
            )?;
            Ok(true)
        })
    }

    pub(super) fn quorum_close_request(
        &self,
        workspace: &str,
        request: i64,
        state: RequestState,
        grant: Option<&Grant>,
        event: &AuditEvent,
    ) -> Result<()> {
        self.write(event, |tx| {
            let closed = tx.execute(
                "UPDATE quorum_requests SET state = ?3 WHERE workspace = ?1 AND id = ?2 AND state = ?4",
                params![workspace, request, state.code(), RequestState::Open.code()],
            )?;
            if closed == 0 {
                return Err(Error::QuorumRequired(format!("request #{request} is no longer open")));
            }
            if let Some(g) = grant {
                tx.execute(
                    "INSERT INTO unlock_grants (workspace, generation, expires_at, sealed) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(workspace) DO UPDATE SET generation = excluded.generation,
                     expires_at = excluded.expires_at, sealed = excluded.sealed",
                    params![workspace, g.generation, g.expires_at, g.sealed],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn quorum_drop_grant(&self, workspace: &str, expiring: Option<i64>, event: &AuditEvent) -> Result<bool> {
        let present = self.with_conn(|c| grant(c, workspace))?;
        let matches = match (&present, expiring) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(g), Some(at)) => g.expires_at == at,
        };
        if !matches {
            return Ok(false);
        }
        self.write(event, |tx| {
            let n = match expiring {
                None => tx.execute("DELETE FROM unlock_grants WHERE workspace = ?1", [workspace])?,
                Some(at) => tx.execute(
                    "DELETE FROM unlock_grants WHERE workspace = ?1 AND expires_at = ?2",
                    params![workspace, at],
                )?,
            };
            Ok(n > 0)
        })
    }
}
