//! Time in the audit log's terms, without a date crate: Unix milliseconds to UTC dates
//! and RFC 3339 timestamps and back (H. Hinnant's civil-from-days algorithms), for the
//! export's fields and filters and the report.

const DAY_MS: i64 = 86_400_000;

/// (year, month, day) of a day number counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The day number (from 1970-01-01) of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` (UTC) for Unix seconds.
pub fn date(secs: u64) -> String {
    let (year, month, day) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, m, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// A time given on the command line: Unix milliseconds (all digits) or RFC 3339
/// (`2026-11-25T14:00:00Z`, `2026-11-25T15:00:00.5+01:00`; a bare date means its midnight
/// UTC). Returns Unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is neither RFC 3339 (like 2026-11-25T14:00:00Z) nor Unix milliseconds");
    if digits(text) {
        return text.parse().map_err(|_| bad());
    }
    parse_rfc3339(text).ok_or_else(bad)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn number(s: &str) -> Option<i64> {
    if digits(s) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut ymd = date.split('-');
    let (year, month, day) = (number(ymd.next()?)?, number(ymd.next()?)?, number(ymd.next()?)?);
    if ymd.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let midnight = days_from_civil(year, month, day) * DAY_MS;
    let Some(time) = time else { return Some(midnight) };
    let (clock, offset_ms) = match time.strip_suffix(['Z', 'z']) {
        Some(clock) => (clock, 0),
        None => {
            let (clock, offset) = time.split_at(time.rfind(['+', '-'])?);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (oh, om) = offset[1..].split_once(':')?;
            let (oh, om) = (number(oh)?, number(om)?);
            if oh > 23 || om > 59 {
                return None;
            }
            (clock, sign * (oh * 60 + om) * 60_000)
        }
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let (h, m, sec) = (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let milli = match fraction {
        None => 0,
        Some(f) if digits(f) => f.chars().chain("00".chars()).take(3).collect::<String>().parse().ok()?,
        Some(_) => return None,
    };
    Some(midnight + ((h * 60 + m) * 60 + sec) * 1000 + milli - offset_ms)
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
    }

    #[test]
    fn offsets_fractions_bare_dates_and_unix_ms_parse() {
        let utc = parse_time("2026-11-25T14:00:00Z").unwrap();
        assert_eq!(parse_time("2026-11-25T15:00:00+01:00"), Ok(utc));
        assert_eq!(parse_time("2026-11-25t09:30:00-04:30"), Ok(utc));
        assert_eq!(parse_time("2026-11-25T14:00:00.5Z"), Ok(utc + 500));
        assert_eq!(parse_time("2026-11-25"), Ok(utc - 14 * 3_600_000));
        assert_eq!(parse_time("1764079200000"), Ok(1_764_079_200_000));
        assert_eq!(date(1_764_079_200), "2025-11-25");
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in ["", "yesterday", "2026-13-01", "2026-02-30", "2026-11-25T25:00:00Z", "2026-11-25T14:00Z", "-5"] {
            assert!(parse_time(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
