//! Usage analytics: per-key rate baselines and burst detection.
//!
//! Each watched key (today: a master key version's unwraps) has a [`RateWindow`]: the
//! count of the current minute and of the one before, which together estimate the rate
//! over the last sixty seconds (the previous minute weighted by how much of it is still
//! inside the window), and a baseline, an exponentially weighted mean of completed
//! minutes. A rate beyond the configured threshold is a [`Burst`], reported once per
//! minute; the caller writes the alert entry and, if configured, blocks the key.
//!
//! The windows live in this process's memory: they cost a lock and a few additions per
//! unwrap, where a count in the store would cost a query. Failed logins, which are rare
//! and matter across processes, are counted from the store instead (`session/usage.rs`).

use std::collections::HashMap;

use parking_lot::Mutex;

/// Milliseconds in the window.
const MINUTE_MS: i64 = 60_000;
/// Weight of the newest completed minute in the baseline.
const BASELINE_WEIGHT: f64 = 0.1;

/// A rate beyond its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    /// Operations in the last sixty seconds (estimated across the minute boundary).
    pub rate: u64,
    /// The key's usual rate per minute before this one.
    pub baseline: f64,
    /// The configured threshold it crossed.
    pub threshold: u64,
}

/// One key's recent use.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    /// The minute (Unix ms / 60,000) `current` counts.
    minute: i64,
    current: u64,
    previous: u64,
    baseline: f64,
    /// The minute a burst was last reported in, so one burst is one alert.
    reported: Option<i64>,
}

impl RateWindow {
    /// Counts one use at `now_ms`; a [`Burst`] when the rate first exceeds `threshold`
    /// this minute.
    pub fn note(&mut self, now_ms: i64, threshold: u64) -> Option<Burst> {
        self.advance(now_ms.div_euclid(MINUTE_MS));
        self.current += 1;
        let rate = self.rate(now_ms);
        if rate <= threshold || self.reported == Some(self.minute) {
            return None;
        }
        self.reported = Some(self.minute);
        Some(Burst { rate, baseline: self.baseline, threshold })
    }

    /// Moves the window to `minute`, folding completed minutes into the baseline.
    fn advance(&mut self, minute: i64) {
        if minute <= self.minute {
            return;
        }
        let gap = minute - self.minute;
        self.fold(self.current);
        // Minutes without any use count as zeros (at most an hour's worth matters).
        for _ in 1..gap.min(60) {
            self.fold(0);
        }
        self.previous = if gap == 1 { self.current } else { 0 };
        self.current = 0;
        self.minute = minute;
    }

    fn fold(&mut self, count: u64) {
        self.baseline += BASELINE_WEIGHT * (count as f64 - self.baseline);
    }

    /// Uses in the sixty seconds before `now_ms`.
    fn rate(&self, now_ms: i64) -> u64 {
        let minute = MINUTE_MS.unsigned_abs();
        let left = minute - now_ms.rem_euclid(MINUTE_MS).unsigned_abs();
        // The previous minute's share still inside the window, rounded to nearest.
        self.current + (self.previous * left + minute / 2) / minute
    }

    /// The baseline: the usual uses per minute.
    pub fn baseline(&self) -> f64 {
        self.baseline
    }
}

/// The windows of every watched key in this process, by a caller-chosen name.
#[derive(Debug, Default)]
pub struct Analytics {
    windows: Mutex<HashMap<String, RateWindow>>,
    /// When each hourly alert was last raised (Unix ms).
    hourly: Mutex<HashMap<String, i64>>,
}

impl Analytics {
    /// Counts one use of `key` at `now_ms`; a burst beyond `threshold` once per minute.
    pub fn note(&self, key: &str, now_ms: i64, threshold: u64) -> Option<Burst> {
        let mut windows = self.windows.lock();
        if let Some(w) = windows.get_mut(key) {
            return w.note(now_ms, threshold);
        }
        // The first use of a key starts its window in the current minute.
        let mut w = RateWindow { minute: now_ms.div_euclid(MINUTE_MS), ..RateWindow::default() };
        let burst = w.note(now_ms, threshold);
        windows.insert(key.to_string(), w);
        burst
    }

    /// Whether an hourly alert named `key` may be raised at `now_ms` (none was in the
    /// hour before); if so, it counts as raised. A clock set back before the last one
    /// raises it again rather than silencing it until the clock catches up: a missed
    /// alert is the worse failure.
    pub fn once_per_hour(&self, key: &str, now_ms: i64) -> bool {
        let mut hourly = self.hourly.lock();
        if hourly.get(key).is_some_and(|last| (0..60 * MINUTE_MS).contains(&(now_ms - last))) {
            return false;
        }
        hourly.insert(key.to_string(), now_ms);
        true
    }

    /// `key`'s baseline, if it has been used.
    pub fn baseline(&self, key: &str) -> Option<f64> {
        self.windows.lock().get(key).map(RateWindow::baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS;

    #[test]
    fn a_clock_set_back_does_not_silence_the_hourly_alert() {
        let a = Analytics::default();
        assert!(a.once_per_hour("logins", T0));
        assert!(!a.once_per_hour("logins", T0 + 59 * MINUTE_MS), "once per hour");
        // Set back a day: the alert is raised again, then once per hour from there.
        assert!(a.once_per_hour("logins", T0 - 24 * 60 * MINUTE_MS));
        assert!(!a.once_per_hour("logins", T0 - 24 * 60 * MINUTE_MS + MINUTE_MS));
    }

    #[test]
    fn a_clock_set_back_keeps_counting_in_the_latest_minute_and_still_reports_a_burst() {
        let mut w = RateWindow { minute: T0 / MINUTE_MS, ..RateWindow::default() };
        assert_eq!(w.note(T0 + 1_000, 3), None);
        // An hour back: the uses still count (never lost, never an overflow), so a burst
        // is still seen; the window moves on once the clock passes its minute again.
        let back = T0 - 60 * MINUTE_MS;
        assert_eq!(w.note(back, 3), None);
        assert_eq!(w.note(back + 10, 3), None);
        assert!(w.note(back + 20, 3).is_some(), "the fourth use in the window is a burst");
        assert_eq!(w.note(T0 + MINUTE_MS + 5, 100), None);
        assert_eq!(w.current, 1, "a new minute once the clock is past the old one");
    }

    #[test]
    fn a_rate_under_the_threshold_never_alerts() {
        let mut w = RateWindow { minute: T0 / MINUTE_MS, ..RateWindow::default() };
        for i in 0..100 {
            assert_eq!(w.note(T0 + i * 100, 100), None);
        }
    }

    #[test]
    fn crossing_the_threshold_alerts_once_per_minute() {
        let mut w = RateWindow { minute: T0 / MINUTE_MS, ..RateWindow::default() };
        let bursts: Vec<_> = (0..50).filter_map(|i| w.note(T0 + i, 10)).collect();
        assert_eq!(bursts.len(), 1);
        assert_eq!(bursts[0].rate, 11);
        assert_eq!(bursts[0].threshold, 10);
        // The next minute may alert again.
        assert!((0..50).filter_map(|i| w.note(T0 + MINUTE_MS + i, 10)).count() == 1);
    }

    #[test]
    fn the_window_spans_the_minute_boundary() {
        let mut w = RateWindow { minute: T0 / MINUTE_MS, ..RateWindow::default() };
        // 8 uses late in one minute, 4 early in the next: 12 within sixty seconds.
        for i in 0..8 {
            assert_eq!(w.note(T0 + 59_000 + i, 10), None);
        }
        let bursts: Vec<_> = (0..4).filter_map(|i| w.note(T0 + MINUTE_MS + 1_000 + i, 10)).collect();
        assert_eq!(bursts.len(), 1, "{bursts:?}");
    }

    #[test]
    fn the_baseline_follows_the_usual_rate_and_decays_over_quiet_minutes() {
        let mut w = RateWindow { minute: T0 / MINUTE_MS, ..RateWindow::default() };
        for minute in 0..60 {
            for i in 0..20 {
                w.note(T0 + minute * MINUTE_MS + i, 1_000);
            }
        }
        let busy = w.baseline();
        assert!((19.0..=20.0).contains(&busy), "{busy}");
        w.note(T0 + 90 * MINUTE_MS, 1_000);
        assert!(w.baseline() < busy / 10.0, "{}", w.baseline());
    }

    #[test]
    fn analytics_keep_one_window_per_key() {
        let a = Analytics::default();
        assert!(a.note("wmk v1", T0, 1).is_none());
        assert!(a.note("wmk v2", T0, 1).is_none());
        assert!(a.note("wmk v1", T0 + 1, 1).is_some());
        assert_eq!(a.baseline("wmk v2"), Some(0.0));
        assert_eq!(a.baseline("wmk v3"), None);
    }

    #[test]
    fn an_hourly_alert_is_raised_once_an_hour() {
        let a = Analytics::default();
        assert!(a.once_per_hour("logins", T0));
        assert!(!a.once_per_hour("logins", T0 + 59 * MINUTE_MS));
        assert!(a.once_per_hour("other", T0));
        assert!(a.once_per_hour("logins", T0 + 60 * MINUTE_MS));
    }
}
