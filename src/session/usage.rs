//! Data operations in the audit log, and the alerts usage analytics raise.
//!
//! Encrypt, decrypt, sign, verify and digest are the hot path, so by default each
//! session keeps a counter per (operation, key), bumped when an operation starts, and
//! writes the counters as entries (one per key and kind, with the count) when the session
//! closes, at logout, at `C_Finalize`, and whenever it is used again after
//! `[audit] flush_seconds`. `data_operations = "per-call"` writes one durable entry per
//! operation instead, before the operation starts; `"off"` records none. Key management
//! is never counted: each call is its own entry (see `objects.rs`, `keys.rs`).
//!
//! Alerts: every unwrap under a master key version feeds that version's rate window
//! (`audit/analytics.rs`); a burst beyond `alert_unwraps_per_minute` writes an `ALERT`
//! entry and a warning, and with `block_on_alert` blocks the version until the SO clears
//! it. Failed logins are counted from the store over the last hour, so every process's
//! attempts add up.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cryptoki_sys::*;
use parking_lot::Mutex;

use super::ids::IdMap;
use super::{Ctx, Session};
use crate::config::DataOperations;
use crate::error::Result;
use crate::store::AuditEvent;
use crate::token::{actor, Token};

/// The kinds of data operation the audit log counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataOp {
    /// `C_EncryptInit`.
    Encrypt,
    /// `C_DecryptInit`.
    Decrypt,
    /// `C_SignInit`.
    Sign,
    /// `C_VerifyInit`.
    Verify,
    /// `C_DigestInit`.
    Digest,
    /// `C_MessageEncryptInit` (one operation, however many messages it carries).
    MessageEncrypt,
    /// `C_MessageDecryptInit`.
    MessageDecrypt,
}

impl DataOp {
    /// The entry's action: the call that starts such an operation.
    pub fn action(self) -> &'static str {
        match self {
            DataOp::Encrypt => "C_EncryptInit",
            DataOp::Decrypt => "C_DecryptInit",
            DataOp::Sign => "C_SignInit",
            DataOp::Verify => "C_VerifyInit",
            DataOp::Digest => "C_DigestInit",
            DataOp::MessageEncrypt => "C_MessageEncryptInit",
            DataOp::MessageDecrypt => "C_MessageDecryptInit",
        }
    }
}

/// One counter: the key as the entry names it, and the operations since the last flush.
#[derive(Debug)]
struct Count {
    object: Option<String>,
    n: u64,
}

/// A session's counters since its last flush.
#[derive(Debug, Default)]
pub struct Usage {
    counts: IdMap<(DataOp, CK_OBJECT_HANDLE), Count>,
    since: Option<Instant>,
}

impl Usage {
    /// Counts one operation; `describe` names the key the first time it is counted.
    fn bump(&mut self, op: DataOp, key: CK_OBJECT_HANDLE, describe: impl FnOnce() -> Option<String>) {
        self.since.get_or_insert_with(Instant::now);
        self.counts.entry((op, key)).or_insert_with(|| Count { object: describe(), n: 0 }).n += 1;
    }

    fn due(&self, every: Duration) -> bool {
        self.since.is_some_and(|t| t.elapsed() >= every)
    }

    fn take(&mut self) -> Vec<((DataOp, CK_OBJECT_HANDLE), Count)> {
        self.since = None;
        let mut counts: Vec<_> = self.counts.drain().collect();
        // A stable order, so the same use gives the same entries.
        counts.sort_by_key(|((op, key), _)| (*key, op.action()));
        counts
    }

    fn restore(&mut self, counts: Vec<((DataOp, CK_OBJECT_HANDLE), Count)>) {
        self.since.get_or_insert_with(Instant::now);
        for (k, c) in counts {
            self.counts.entry(k).or_insert(Count { object: c.object, n: 0 }).n += c.n;
        }
    }
}

/// Writes a session's counters as entries (one transaction); on failure they are kept
/// for the next flush, and the failure logged.
pub(crate) fn flush(token: &Token, handle: CK_SESSION_HANDLE, session: &Mutex<Session>) {
    let counts = session.lock().usage.take();
    if counts.is_empty() {
        return;
    }
    let who = actor(token.logged_in());
    let events: Vec<AuditEvent> = counts
        .iter()
        .map(|((op, _), c)| {
            AuditEvent::ok(&token.workspace, who, op.action(), c.object.clone())
                .in_session(Some(handle))
                .counted(c.n)
                .synced_lazily()
        })
        .collect();
    if let Err(e) = token.store().append_audit_batch(&events) {
        log::error!(
            "{}: session {handle}'s operation counters could not be audited (kept in the session for its next flush, if it has one): {e}",
            token.workspace
        );
        session.lock().usage.restore(counts);
    }
}

/// Flushes every session of `token` in `sessions` (before a logout changes the actor,
/// and at `C_Finalize`).
pub(crate) fn flush_all(token: &Token, sessions: &[(CK_SESSION_HANDLE, Arc<Mutex<Session>>)]) {
    for (handle, session) in sessions {
        flush(token, *handle, session);
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Ctx {
    /// Records that a data operation with `key` (none for a digest) starts.
    pub(super) fn note_use(&self, op: DataOp, key: Option<CK_OBJECT_HANDLE>) -> Result<()> {
        let config = &self.app.audit;
        let describe = || key.and_then(|k| self.resolve(k).ok()).map(|r| r.object().describe());
        match config.data_operations {
            DataOperations::Off => Ok(()),
            DataOperations::PerCall => {
                let event = self.event(op.action(), describe());
                self.token.store().append_audit(&event.synced_lazily())
            }
            DataOperations::Counters => {
                let due = {
                    let mut session = self.session.lock();
                    session.usage.bump(op, key.unwrap_or(CK_INVALID_HANDLE), describe);
                    session.usage.due(Duration::from_secs(config.flush_seconds))
                };
                if due {
                    flush(&self.token, self.handle, &self.session);
                }
                Ok(())
            }
        }
    }

    /// Feeds an unwrap under master key `version` to its rate window; a burst writes an
    /// alert (and, with `block_on_alert`, blocks the version in the same transaction).
    pub(super) fn note_unwrap(&self, version: u32) -> Result<()> {
        let config = &self.app.audit;
        let key = format!("{}/wmk v{version}", self.token.workspace);
        let Some(burst) = self.app.analytics.note(&key, now_ms(), config.alert_unwraps_per_minute) else {
            return Ok(());
        };
        let what = format!(
            "wmk v{version}: {} unwraps in the last minute (threshold {}, baseline {:.1}/min)",
            burst.rate, burst.threshold, burst.baseline
        );
        log::warn!("{}: audit alert: {what}", self.token.workspace);
        let event = self.module_event("ALERT unwrap burst", Some(what.clone()));
        if config.block_on_alert {
            self.token.hierarchy()?.block(version, &what, &event)?;
            log::warn!("{}: master key v{version} blocked until the SO clears it", self.token.workspace);
            return Ok(());
        }
        self.token.store().append_audit(&event)
    }

    /// After a refused PIN: an alert when the token's failed logins over the last hour,
    /// across every process, pass the threshold (once per hour and process).
    pub(super) fn check_failed_logins(&self) {
        let config = &self.app.audit;
        let hour_ago = now_ms() - 3_600_000;
        let failed = match self.token.store().failed_logins_since(&self.token.workspace, hour_ago) {
            Ok(n) => n,
            Err(e) => return log::error!("{}: failed logins could not be counted: {e}", self.token.workspace),
        };
        if failed <= config.alert_failed_logins_per_hour {
            return;
        }
        let key = format!("{}/failed logins", self.token.workspace);
        if !self.app.analytics.once_per_hour(&key, now_ms()) {
            return;
        }
        let what =
            format!("{failed} failed logins in the last hour (threshold {})", config.alert_failed_logins_per_hour);
        log::warn!("{}: audit alert: {what}", self.token.workspace);
        let event = self.module_event("ALERT failed logins", Some(what));
        if let Err(e) = self.token.store().append_audit(&event) {
            log::error!("{}: the failed-login alert could not be audited: {e}", self.token.workspace);
        }
    }
}
