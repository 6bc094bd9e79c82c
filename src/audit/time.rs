//! Time in the audit log's terms, by `jiff`: Unix milliseconds to UTC dates and RFC 3339
//! timestamps and back, for the export's fields and filters, the report and `cvault`.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `YYYY-MM-DD` (UTC) for Unix seconds.
pub fn date(secs: u64) -> String {
    match i64::try_from(secs).ok().and_then(|s| Timestamp::from_second(s).ok()) {
        Some(t) => TimeZone::UTC.to_datetime(t).date().to_string(),
        // Past jiff's range (year 9999): say what was stored rather than invent a date.
        None => format!("@{secs}"),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => format!("@{ms}ms"),
    }
}

/// A time given on the command line: Unix milliseconds (all digits) or RFC 3339
/// (`2026-11-25T14:00:00Z`, `2026-11-25T15:00:00.5+01:00`; a bare date means its midnight
/// UTC). Returns Unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is neither RFC 3339 (like 2026-11-25T14:00:00Z) nor Unix milliseconds");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t.as_millisecond());
    }
    // A date alone (no time, no offset): its midnight in UTC. Anything longer must carry
    // an offset, which the Timestamp parse above demands: a local time is ambiguous.
    if text.len() == 10 {
        if let Ok(d) = text.parse::<Date>() {
            return TimeZone::UTC
                .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                .map(|t| t.as_millisecond())
                .map_err(|_| bad());
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        for ms in [0, 1_764_080_523_123, 951_782_400_000, -86_400_000] {
            assert_eq!(parse_time(&rfc3339(ms)), Ok(ms), "{ms}");
        }
        assert_eq!(rfc3339(1_764_080_523_123), "2025-11-25T14:22:03.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn offsets_fractions_bare_dates_and_unix_ms_parse() {
        let utc = parse_time("2026-11-25T14:00:00Z").unwrap();
        assert_eq!(parse_time("2026-11-25T15:00:00+01:00"), Ok(utc));
        assert_eq!(parse_time("2026-11-25t09:30:00-04:30"), Ok(utc));
        assert_eq!(parse_time("2026-11-25T14:00:00.5Z"), Ok(utc + 500));
        // jiff takes ISO 8601's minutes-only form too: unambiguous, so accepted.
        assert_eq!(parse_time("2026-11-25T14:00Z"), Ok(utc));
        assert_eq!(parse_time("2026-11-25"), Ok(utc - 14 * 3_600_000));
        assert_eq!(parse_time("1764079200000"), Ok(1_764_079_200_000));
        assert_eq!(date(1_764_079_200), "2025-11-25");
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in ["", "yesterday", "2026-13-01", "2026-02-30", "2026-11-25T25:00:00Z", "2026-11-25T14:00:00", "-5"] {
            assert!(parse_time(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
