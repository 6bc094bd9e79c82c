//! Failed kit unlocks, counted per kit id in the audit log, and the growing back-off
//! after `[recovery] max_failed_unlocks` of them in a row (`doc/recovery.md`).
//!
//! Wherever a store is at hand (`cvault kit drill`, `cvault recover`), each unlock that
//! fails for a wrong passphrase or factor appends an `ALERT` entry ([`FAILED`]) naming the
//! kit, and each that succeeds an entry ([`OPENED`]) that resets the count. No table is
//! needed: the count is read back from the chain, which the failures cannot be cut from
//! unnoticed once checkpointed. The refusal never says which secret was wrong.
//!
//! This limits guessing through the tools only. Someone holding a copy of the kit file
//! guesses offline, limited by Argon2id's cost per guess and by the factor token (its PIN
//! lockout, its key that never leaves it), never by this count.

use std::time::Duration;

use crate::store::audit::{AuditEvent, AuditRow};

/// The action of an entry recording a failed unlock (outcome `ALERT`).
pub const FAILED: &str = "kit-unlock-failed";
/// The action of an entry recording a successful unlock (outcome `CKR_OK`).
pub const OPENED: &str = "kit-unlock";
/// The action of an entry recording an attempt refused during the back-off.
pub const REFUSED: &str = "kit-unlock-refused";

/// The first back-off, doubled by each further failure.
const FIRST_WAIT: Duration = Duration::from_secs(60);
/// The longest back-off.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The object text naming a kit in these entries.
fn object(kit_id: &str) -> String {
    format!("recovery kit {kit_id}")
}

/// Failed unlocks of `kit_id` since its last successful one, and when the last failed
/// (milliseconds since the epoch).
pub fn failures(rows: &[AuditRow], kit_id: &str) -> (u32, Option<i64>) {
    let named = object(kit_id);
    let mut count = 0u32;
    let mut last = None;
    for r in rows.iter().filter(|r| r.event.object.as_deref().is_some_and(|o| o.starts_with(&named))) {
        match r.event.action.as_str() {
            FAILED => {
                count = count.saturating_add(1);
                last = Some(r.at_ms);
            }
            OPENED => {
                count = 0;
                last = None;
            }
            _ => {}
        }
    }
    (count, last)
}

/// How long the next attempt must still wait after `failed` failures in a row, the last
/// at `last_ms`, with `max` allowed before a back-off (0: no limit): 1 minute after the
/// `max`th, doubling with each further one, at most a day. `None`: it may go ahead.
pub fn wait(failed: u32, last_ms: Option<i64>, max: u32, now_ms: i64) -> Option<Duration> {
    if max == 0 || failed < max {
        return None;
    }
    let doublings = (failed - max).min(16);
    let backoff = FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT);
    let since = Duration::from_millis(u64::try_from(now_ms - last_ms?).unwrap_or(0));
    backoff.checked_sub(since).filter(|left| !left.is_zero())
}

/// The entry for a failed unlock, the `n`th in a row.
pub fn failed_event(workspace: &str, kit_id: &str, n: u32) -> AuditEvent {
    let what = format!("{}: unlock failed ({n} in a row): wrong passphrase or factor", object(kit_id));
    AuditEvent::ok(workspace, "cvault", FAILED, Some(what)).with_outcome("ALERT")
}

/// The entry for a successful unlock (the count starts again).
pub fn opened_event(workspace: &str, kit_id: &str) -> AuditEvent {
    AuditEvent::ok(workspace, "cvault", OPENED, Some(format!("{}: unlocked", object(kit_id))))
}

/// The entry for an attempt refused during the back-off.
pub fn refused_event(workspace: &str, kit_id: &str, left: Duration) -> AuditEvent {
    let what = format!("{}: unlock refused for {}s more after repeated failures", object(kit_id), left.as_secs());
    AuditEvent::ok(workspace, "cvault", REFUSED, Some(what)).with_outcome("CKR_FUNCTION_REJECTED")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(events: &[(&str, &str, i64)]) -> Vec<AuditRow> {
        let mut rows = crate::audit::test_chain(i64::try_from(events.len()).expect("small"));
        for (r, (action, kit, at)) in rows.iter_mut().zip(events) {
            r.event.action = (*action).into();
            r.event.object = Some(format!("{}: x", object(kit)));
            r.at_ms = *at;
        }
        rows
    }

    #[test]
    fn failures_count_per_kit_until_a_success() {
        let log = rows(&[(FAILED, "a", 1), (FAILED, "b", 2), (FAILED, "a", 3), (OPENED, "b", 4), (FAILED, "a", 5)]);
        assert_eq!(failures(&log, "a"), (3, Some(5)));
        assert_eq!(failures(&log, "b"), (0, None));
        assert_eq!(failures(&log, "c"), (0, None));
        let reset = rows(&[(FAILED, "a", 1), (FAILED, "a", 2), (OPENED, "a", 3), (FAILED, "a", 4)]);
        assert_eq!(failures(&reset, "a"), (1, Some(4)));
    }

    #[test]
    fn the_back_off_starts_at_max_and_doubles_to_a_day() {
        let minute = 60_000;
        assert_eq!(wait(4, Some(0), 5, 0), None);
        assert_eq!(wait(5, Some(0), 5, 0), Some(FIRST_WAIT));
        assert_eq!(wait(5, Some(0), 5, 59_000), Some(Duration::from_secs(1)));
        assert_eq!(wait(5, Some(0), 5, minute), None);
        assert_eq!(wait(6, Some(0), 5, minute), Some(FIRST_WAIT));
        assert_eq!(wait(7, Some(0), 5, 0), Some(Duration::from_secs(240)));
        assert_eq!(wait(40, Some(0), 5, 0), Some(LONGEST_WAIT));
        assert_eq!(wait(40, Some(0), 0, 0), None, "0: no limit");
    }
}
