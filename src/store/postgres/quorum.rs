//! The quorum's tables in PostgreSQL (`store/quorum.rs` says what each row is): the KEK
//! row, custodians, requests, approvals, the unlock grant, emergency windows and legal
//! holds. Each change commits with its audit entry under the write lock, so quorum
//! approvals and holds are serialised across hosts as every other change is.

use postgres::{GenericClient, Row};

use super::{col, small, Db, PgStore};
use crate::error::{Error, Result};
use crate::store::quorum::{
    Approval, Custodian, EmergencyWindow, Grant, Hold, KekRecord, NewRequest, Request, RequestState,
};
use crate::store::{AuditEvent, MasterRecord};

pub(super) fn kek<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Option<KekRecord>> {
    let row = db.opt(
        "SELECT generation, threshold, sealed, check_value FROM workspace_keks WHERE workspace = $1",
        &[&workspace],
    )?;
    row.map(|r| {
        Ok(KekRecord {
            generation: small(col(&r, 0)?, "KEK generation")?,
            threshold: small(col(&r, 1)?, "quorum threshold")?,
            sealed: col(&r, 2)?,
            check: col(&r, 3)?,
        })
    })
    .transpose()
}

pub(super) fn custodians<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Vec<Custodian>> {
    db.query(
        "SELECT name, share_index, salt, memory_kib, passes, public_key, sealed_share, failures
         FROM custodians WHERE workspace = $1 ORDER BY share_index",
        &[&workspace],
    )?
    .iter()
    .map(|r| {
        Ok(Custodian {
            name: col(r, 0)?,
            index: small(col(r, 1)?, "share index")?,
            salt: col(r, 2)?,
            memory_kib: small(col(r, 3)?, "Argon2id memory")?,
            passes: small(col(r, 4)?, "Argon2id passes")?,
            public_key: col(r, 5)?,
            sealed_share: col(r, 6)?,
            failures: small(col(r, 7)?, "failure count")?,
        })
    })
    .collect()
}

const REQUEST_COLUMNS: &str = "id, action, requested_by, generation, created_at, expires_at, state";

fn request(r: &Row) -> Result<Request> {
    Ok(Request {
        id: col(r, 0)?,
        action: col(r, 1)?,
        requested_by: col(r, 2)?,
        generation: small(col(r, 3)?, "request generation")?,
        created_at: col(r, 4)?,
        expires_at: col(r, 5)?,
        state: RequestState::from_code(col(r, 6)?),
    })
}

pub(super) fn requests<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Vec<Request>> {
    db.query(
        &format!("SELECT {REQUEST_COLUMNS} FROM quorum_requests WHERE workspace = $1 ORDER BY id DESC"),
        &[&workspace],
    )?
    .iter()
    .map(request)
    .collect()
}

pub(super) fn approvals<C: GenericClient>(db: &mut Db<'_, C>, request: i64) -> Result<Vec<Approval>> {
    db.query(
        "SELECT custodian, share_index, sealed_share, at FROM quorum_approvals WHERE request = $1 ORDER BY at",
        &[&request],
    )?
    .iter()
    .map(|r| {
        Ok(Approval {
            custodian: col(r, 0)?,
            index: small(col(r, 1)?, "share index")?,
            sealed_share: col(r, 2)?,
            at: col(r, 3)?,
        })
    })
    .collect()
}

pub(super) fn grant<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Option<Grant>> {
    let row = db.opt("SELECT generation, expires_at, sealed FROM unlock_grants WHERE workspace = $1", &[&workspace])?;
    row.map(|r| {
        Ok(Grant { generation: small(col(&r, 0)?, "grant generation")?, expires_at: col(&r, 1)?, sealed: col(&r, 2)? })
    })
    .transpose()
}

pub(super) fn hold<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Option<Hold>> {
    let row = db.opt("SELECT set_by, reason, set_at FROM legal_holds WHERE workspace = $1", &[&workspace])?;
    row.map(|r| Ok(Hold { set_by: col(&r, 0)?, reason: col(&r, 1)?, set_at: col(&r, 2)? })).transpose()
}

pub(super) fn emergency<C: GenericClient>(db: &mut Db<'_, C>, workspace: &str) -> Result<Option<EmergencyWindow>> {
    let row = db.opt(
        "SELECT name, opened_by, opened_at, expires_at FROM emergency_windows WHERE workspace = $1",
        &[&workspace],
    )?;
    row.map(|r| {
        Ok(EmergencyWindow {
            name: col(&r, 0)?,
            opened_by: col(&r, 1)?,
            opened_at: col(&r, 2)?,
            expires_at: col(&r, 3)?,
        })
    })
    .transpose()
}

impl PgStore {
    pub(super) fn quorum_set_emergency(
        &self,
        workspace: &str,
        window: Option<&EmergencyWindow>,
        event: &AuditEvent,
    ) -> Result<()> {
        self.write(event, |tx| {
            match window {
                Some(w) => tx.exec(
                    "INSERT INTO emergency_windows (workspace, name, opened_by, opened_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (workspace) DO UPDATE SET name = excluded.name, opened_by = excluded.opened_by,
                     opened_at = excluded.opened_at, expires_at = excluded.expires_at",
                    &[&workspace, &w.name, &w.opened_by, &w.opened_at, &w.expires_at],
                )?,
                None => tx.exec("DELETE FROM emergency_windows WHERE workspace = $1", &[&workspace])?,
            };
            Ok(())
        })
    }

    pub(super) fn quorum_set_hold(&self, workspace: &str, hold: Option<&Hold>, event: &AuditEvent) -> Result<()> {
        self.write(event, |tx| {
            match hold {
                Some(h) => tx.exec(
                    "INSERT INTO legal_holds (workspace, set_by, reason, set_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (workspace) DO UPDATE SET set_by = excluded.set_by, reason = excluded.reason,
                     set_at = excluded.set_at",
                    &[&workspace, &h.set_by, &h.reason, &h.set_at],
                )?,
                None => tx.exec("DELETE FROM legal_holds WHERE workspace = $1", &[&workspace])?,
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
        if self.read(|db| self::kek(db, workspace))?.map(|k| k.generation) != expected {
            return Ok(false);
        }
        self.write(event, |tx| {
            if self::kek(tx, workspace)?.map(|k| k.generation) != expected {
                return Err(Error::Store("the KEK moved during its replacement; try again".into()));
            }
            tx.exec(
                "INSERT INTO workspace_keks (workspace, generation, threshold, sealed, check_value)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workspace) DO UPDATE SET generation = excluded.generation,
                 threshold = excluded.threshold, sealed = excluded.sealed, check_value = excluded.check_value",
                &[&workspace, &i64::from(kek.generation), &i64::from(kek.threshold), &kek.sealed, &kek.check],
            )?;
            tx.exec("DELETE FROM custodians WHERE workspace = $1", &[&workspace])?;
            for c in custodians {
                tx.exec(
                    "INSERT INTO custodians (workspace, name, share_index, salt, memory_kib, passes, public_key,
                     sealed_share, failures) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
                    &[
                        &workspace,
                        &c.name,
                        &i64::from(c.index),
                        &c.salt,
                        &i64::from(c.memory_kib),
                        &i64::from(c.passes),
                        &c.public_key,
                        &c.sealed_share,
                    ],
                )?;
            }
            for m in masters {
                tx.exec(
                    "UPDATE master_keys SET sealed = $3, mac = $4 WHERE workspace = $1 AND version = $2",
                    &[&workspace, &i64::from(m.version), &m.sealed, &m.mac],
                )?;
            }
            tx.exec("DELETE FROM unlock_grants WHERE workspace = $1", &[&workspace])?;
            tx.exec(
                "UPDATE quorum_requests SET state = $2 WHERE workspace = $1 AND state = $3",
                &[&workspace, &RequestState::Cancelled.code(), &RequestState::Open.code()],
            )?;
            Ok(true)
        })
    }

    pub(super) fn quorum_open_request(
        &self,
        workspace: &str,
        new: &NewRequest<'_>,
        event: &AuditEvent,
    ) -> Result<Request> {
        let NewRequest { action, requested_by, generation, now, expires_at } = *new;
        let generation64 = i64::from(generation);
        let open = self.read(|db| {
            db.opt(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM quorum_requests WHERE workspace = $1 AND action = $2
                     AND generation = $3 AND state = $4 AND expires_at > $5 ORDER BY id LIMIT 1"
                ),
                &[&workspace, &action, &generation64, &RequestState::Open.code(), &now],
            )?
            .map(|r| request(&r))
            .transpose()
        })?;
        if let Some(open) = open {
            return Ok(open);
        }
        self.write(event, |tx| {
            let row = tx.one(
                "INSERT INTO quorum_requests (workspace, action, requested_by, generation, created_at, expires_at,
                 state) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[&workspace, &action, &requested_by, &generation64, &now, &expires_at, &RequestState::Open.code()],
            )?;
            Ok(Request {
                id: col(&row, 0)?,
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
        let already = self.read(|db| {
            Ok(db
                .opt(
                    "SELECT 1 FROM quorum_approvals WHERE request = $1 AND custodian = $2",
                    &[&request, &approval.custodian],
                )?
                .is_some())
        })?;
        if already {
            return Ok(false);
        }
        self.write(event, |tx| {
            tx.exec(
                "INSERT INTO quorum_approvals (request, custodian, share_index, sealed_share, at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&request, &approval.custodian, &i64::from(approval.index), &approval.sealed_share, &approval.at],
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
            let closed = tx.exec(
                "UPDATE quorum_requests SET state = $3 WHERE workspace = $1 AND id = $2 AND state = $4",
                &[&workspace, &request, &state.code(), &RequestState::Open.code()],
            )?;
            if closed == 0 {
                return Err(Error::QuorumRequired(format!("request #{request} is no longer open")));
            }
            if let Some(g) = grant {
                tx.exec(
                    "INSERT INTO unlock_grants (workspace, generation, expires_at, sealed) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (workspace) DO UPDATE SET generation = excluded.generation,
                     expires_at = excluded.expires_at, sealed = excluded.sealed",
                    &[&workspace, &i64::from(g.generation), &g.expires_at, &g.sealed],
                )?;
            }
            Ok(())
        })
    }

    pub(super) fn quorum_drop_grant(&self, workspace: &str, expiring: Option<i64>, event: &AuditEvent) -> Result<bool> {
        let present = self.read(|db| grant(db, workspace))?;
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
                None => tx.exec("DELETE FROM unlock_grants WHERE workspace = $1", &[&workspace])?,
                Some(at) => {
                    tx.exec("DELETE FROM unlock_grants WHERE workspace = $1 AND expires_at = $2", &[&workspace, &at])?
                }
            };
            Ok(n > 0)
        })
    }
}
