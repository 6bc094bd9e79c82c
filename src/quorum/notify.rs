//! The custodians' notification hook: a command from the config, run with one JSON
//! document on its stdin for every unlock, lock, quorum change and legal hold, and given
//! `notify_timeout_seconds` to exit 0. A failure is logged and audited; it blocks the
//! operation only when `notify_required = true` (then the operation does not happen).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::QuorumConfig;
use crate::error::{Error, Result};

/// What the hook is told.
pub struct Notice<'a> {
    /// `unlock`, `lock`, `quorum-split`, `legal-hold`, `legal-hold-lifted`.
    pub event: &'a str,
    /// The workspace.
    pub workspace: &'a str,
    /// Who acted (an audit actor name).
    pub by: &'a str,
    /// A sentence with the details (never key material).
    pub detail: &'a str,
}

/// Runs the configured hook for `notice`: `Ok(None)` when no hook is configured, or
/// `Ok(Some(why))` when it failed and is not required.
pub fn run(config: &QuorumConfig, notice: &Notice<'_>) -> Result<Option<String>> {
    let Some((program, args)) = config.notify_command.split_first() else {
        return Ok(None);
    };
    let document = json!({
        "event": notice.event,
        "workspace": notice.workspace,
        "by": notice.by,
        "detail": notice.detail,
        "at_unix": super::now(),
    });
    let outcome =
        spawn_and_wait(program, args, &document.to_string(), Duration::from_secs(config.notify_timeout_seconds));
    match outcome {
        Ok(()) => Ok(None),
        Err(why) if config.notify_required => {
            log::error!(
                "{}: notification hook failed ({why}); notify_required refuses the {}",
                notice.workspace,
                notice.event
            );
            Err(Error::NotifyFailed(why))
        }
        Err(why) => {
            log::warn!("{}: notification hook failed ({why}); the {} goes ahead", notice.workspace, notice.event);
            Ok(Some(why))
        }
    }
}

fn spawn_and_wait(program: &str, args: &[String], stdin: &str, timeout: Duration) -> std::result::Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut pipe) = child.stdin.take() {
        // A hook that exits without reading gets EPIPE here; its exit status decides.
        let _ = pipe.write_all(stdin.as_bytes());
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{program} exited with {status}")),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not finish within {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command: &[&str], required: bool) -> QuorumConfig {
        QuorumConfig {
            notify_command: command.iter().map(|s| s.to_string()).collect(),
            notify_timeout_seconds: 1,
            notify_required: required,
            ..QuorumConfig::default()
        }
    }

    fn notice() -> Notice<'static> {
        Notice { event: "unlock", workspace: "eng", by: "custodian:alice", detail: "request #1" }
    }

    #[test]
    fn the_hook_reads_one_json_document() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen.json");
        let script = format!("cat > {}", out.display());
        assert_eq!(run(&config(&["sh", "-c", &script], true), &notice()).unwrap(), None);
        let seen: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        assert_eq!(seen["event"], "unlock");
        assert_eq!(seen["workspace"], "eng");
    }

    #[test]
    fn a_failing_or_slow_hook_blocks_only_when_required() {
        assert!(run(&config(&["false"], false), &notice()).unwrap().is_some());
        assert!(matches!(run(&config(&["false"], true), &notice()), Err(Error::NotifyFailed(_))));
        let slow = run(&config(&["sleep", "5"], true), &notice());
        assert!(matches!(slow, Err(Error::NotifyFailed(why)) if why.contains("within")));
        assert!(run(&config(&["/nonexistent/hook"], false), &notice()).unwrap().is_some());
        assert_eq!(run(&config(&[], true), &notice()).unwrap(), None);
    }
}
