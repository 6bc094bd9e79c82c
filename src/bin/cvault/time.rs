//! Time for the admin tool: now, the rotation schedule check that `status`,
//! `rotate --due` and `audit report` share, and the library's date formats
//! (`collabvault_pkcs11::audit::time`).

/// Seconds in a day.
pub(crate) const DAY: u64 = 86_400;

pub(crate) use collabvault_pkcs11::audit::time::{date, parse_time, rfc3339};

/// Now, in Unix seconds.
pub(crate) fn now() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0)
}

/// Whether a master key version made at `created` (Unix seconds) is due for rotation
/// under a schedule of `schedule` days, and a sentence saying so.
pub(crate) fn rotation_due(version: u32, created: u64, schedule: Option<u64>, now: u64) -> (bool, String) {
    let age = now.saturating_sub(created) / DAY;
    match schedule {
        None => (false, "no rotation schedule for its classification".into()),
        Some(days) if now.saturating_sub(created) >= days * DAY => {
            (true, format!("rotation DUE (v{version} is {age} days old, schedule {days} days)"))
        }
        Some(days) => (false, format!("rotation not due (v{version} is {age} days old, due in {} days)", days - age)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_due_once_the_schedule_has_passed() {
        assert!(rotation_due(2, 0, Some(30), 30 * DAY).0);
        assert!(!rotation_due(2, 0, Some(30), 29 * DAY).0);
        assert!(!rotation_due(2, 0, None, 1000 * DAY).0);
    }
}
