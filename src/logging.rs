//! The module's log backend: one line per record to stderr or to the configured file.
//!
//! `log` allows one logger per process, but `C_Initialize` may run many times (after
//! `C_Finalize`, or in a forked child); so the logger is installed once and each
//! initialize re-points its level and destination.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use parking_lot::Mutex;

use crate::error::{Error, Result};

struct Logger {
    file: Mutex<Option<File>>,
}

static LOGGER: Logger = Logger { file: Mutex::new(None) };

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "collabvault[{}] {:5} {}: {}\n",
            std::process::id(),
            record.level(),
            record.target(),
            record.args()
        );
        // A failing log write must never fail the PKCS#11 call that logged.
        let mut file = self.file.lock();
        match file.as_mut() {
            Some(f) => drop(f.write_all(line.as_bytes())),
            None => drop(std::io::stderr().write_all(line.as_bytes())),
        }
    }

    fn flush(&self) {
        if let Some(f) = self.file.lock().as_mut() {
            drop(f.flush());
        }
    }
}

/// Points the log at `file` (or stderr) at `level`; installs the logger on first use.
pub fn configure(level: log::LevelFilter, file: Option<&Path>) -> Result<()> {
    let handle = match file {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::Config(format!("cannot open log file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    *LOGGER.file.lock() = handle;
    // Fails only when another logger is already installed in this process (say, by a
    // host application using `log` itself); our records then go to that logger.
    drop(log::set_logger(&LOGGER));
    log::set_max_level(level);
    Ok(())
}
