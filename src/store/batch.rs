//! Session-object audit entries held in memory and written together (`[audit]
//! session_objects = "batched"`).
//!
//! A session object lives only in this process, so the entry of its making or
//! destruction need not cost a commit of its own. Each such event is still a full entry
//! of the one hash chain; it only waits here, in call order, until the batch is full,
//! until a batched call comes `batch_ms` after the oldest held one, until a session
//! closes, a user logs out or the module finalizes, or until any other entry is written:
//! the held entries always go first, in the same transaction, so the chain's order is
//! the order of the calls. What a killed process can lose is at most one batch of
//! session-object entries, never the entry of anything that outlives it.
//!
//! Fail closed: a batch that cannot be written stays held and the failure is recorded;
//! every audited write from then on tries the held entries first and fails with
//! [`Error::AuditBatchUnwritten`] (`CKR_DEVICE_ERROR`) until they are in the chain, and
//! a batched call that fails never hands out its key.

use std::time::{Duration, Instant};

use super::audit::AuditEvent;
use crate::error::Error;

/// When held entries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// A batch is written when it would hold this many entries (at least 1).
    pub entries: usize,
    /// A batched call this long after the oldest held entry writes the batch with it.
    pub max_age: Duration,
}

/// The entries held for the next batch write, and why the last write failed, if it did.
#[derive(Debug, Default)]
pub struct Held {
    events: Vec<AuditEvent>,
    since: Option<Instant>,
    failure: Option<String>,
}

impl Held {
    /// The held entries, oldest first.
    pub fn events(&self) -> &[AuditEvent] {
        &self.events
    }

    /// Whether `event`, arriving now, must be written at once with the held entries
    /// rather than join them: the batch would be full, is old, or its last write failed.
    pub fn must_write_with(&self, policy: &BatchPolicy) -> bool {
        let stale = self.since.is_some_and(|t| t.elapsed() >= policy.max_age);
        self.failure.is_some() || stale || self.events.len() + 1 >= policy.entries.max(1)
    }

    /// Holds `event` after the others.
    pub fn hold(&mut self, event: AuditEvent) {
        self.since.get_or_insert_with(Instant::now);
        self.events.push(event);
    }

    /// The held entries are in the chain: hands them over (for the append hooks).
    pub fn written(&mut self) -> Vec<AuditEvent> {
        if let Some(why) = self.failure.take() {
            log::warn!("audit: the held session-object entries are written now, after an earlier failure ({why})");
        }
        self.since = None;
        std::mem::take(&mut self.events)
    }

    /// A write of the held entries failed with `why`: they stay held, and the error every
    /// audited call returns until they are written.
    pub fn failed(&mut self, why: String) -> Error {
        log::error!(
            "audit: {} held session-object entr(ies) could not be written ({why}); audited calls fail with CKR_DEVICE_ERROR until they are",
            self.events.len()
        );
        self.failure = Some(why.clone());
        Error::AuditBatchUnwritten(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: usize, ms: u64) -> BatchPolicy {
        BatchPolicy { entries, max_age: Duration::from_millis(ms) }
    }

    fn event(n: usize) -> AuditEvent {
        AuditEvent::ok("ws", "user", "C_GenerateKey", Some(format!("key {n}"))).batched()
    }

    #[test]
    fn a_batch_is_written_with_the_entry_that_fills_it() {
        let mut held = Held::default();
        let p = policy(3, 60_000);
        for n in 0..2 {
            assert!(!held.must_write_with(&p), "entry {n} joins the batch");
            held.hold(event(n));
        }
        assert!(held.must_write_with(&p), "the third entry fills it");
        assert_eq!(held.written().len(), 2);
        assert!(!held.must_write_with(&p), "an empty batch waits again");
    }

    #[test]
    fn an_old_batch_is_written_with_the_next_entry() {
        let mut held = Held::default();
        let p = policy(256, 0);
        assert!(!held.must_write_with(&p), "nothing held is never old");
        held.hold(event(0));
        assert!(held.must_write_with(&p));
    }

    #[test]
    fn a_failed_write_keeps_the_entries_and_forces_every_next_write() {
        let mut held = Held::default();
        let p = policy(256, 60_000);
        held.hold(event(0));
        let e = held.failed("disk I/O error".into());
        assert!(matches!(e, Error::AuditBatchUnwritten(ref why) if why == "disk I/O error"));
        assert_eq!(held.events(), &[event(0)]);
        assert!(held.must_write_with(&p));
        assert_eq!(held.written(), vec![event(0)]);
        assert!(!held.must_write_with(&p), "written: the failure is over");
    }

    #[test]
    fn a_batch_of_one_writes_every_entry() {
        assert!(Held::default().must_write_with(&policy(1, 60_000)));
        assert!(Held::default().must_write_with(&policy(0, 60_000)), "0 counts as 1");
    }
}
