//! Progress on stderr for work that can outlast a second (re-wrapping a directory of
//! records, verifying a long audit chain), drawn only when stderr is a terminal: a pipe,
//! a log file or a timer's journal gets the results and nothing else.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items, `what` naming them; hidden off a terminal.
pub(crate) fn bar(len: usize, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX)).with_style(style).with_prefix(what)
}

/// A spinner saying what runs, for work whose length is not known in steps; hidden off a
/// terminal.
pub(crate) fn spinner(message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let spinner = ProgressBar::new_spinner().with_style(style).with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}
