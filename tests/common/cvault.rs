//! `cvault` run as a process against a workspace whose root of trust is a real SoftHSM2
//! token: the environment every such test gives it (config, module, SoftHSM2 config,
//! root and workspace PINs, plus the test's own variables), with `ok` and `refused` that
//! name the command and its output when it does not do what the test expects.

use std::ffi::OsString;
use std::process::{Command, Output};

use super::hsm::{Hsm, ROOT_LABEL, ROOT_PIN, ROOT_PIN_ENV};
use super::Workspace;

/// A SoftHSM2 root, a config naming it, and the test binary's lock (the fixture sets
/// process-wide environment variables).
pub struct Cvault {
    pub ws: Workspace,
    pub hsm: Hsm,
    env: Vec<(String, OsString)>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Cvault {
    /// One SoftHSM2 root token; the config is its `[root]` section, then `body`.
    pub fn new(body: &str) -> Cvault {
        let serial = super::lock();
        Cvault::over(serial, Hsm::new(), body)
    }

    /// SoftHSM2 tokens `labels` (the first is the root), each with the root's PIN.
    pub fn with_tokens(labels: &[&str], body: &str) -> Cvault {
        let serial = super::lock();
        Cvault::over(serial, Hsm::with_tokens(labels), body)
    }

    /// SoftHSM2 tokens `labels` (through `module`, SoftHSM2 itself or a shim in front of
    /// it) over which the root is split `threshold`-of-n; the config is that `[root]`,
    /// then `body`.
    pub fn split(module: &std::path::Path, labels: &[&str], threshold: u8, body: &str) -> Cvault {
        let serial = super::lock();
        let hsm = Hsm::with_tokens(labels);
        let body = format!("{}{body}", hsm.split_section_over(module, labels, threshold));
        Cvault { ws: Workspace::with_config_body(&body), hsm, env: Vec::new(), _serial: serial }
    }

    /// `hsm` (made while holding `serial`) as the root.
    pub fn over(serial: std::sync::MutexGuard<'static, ()>, hsm: Hsm, body: &str) -> Cvault {
        let body = format!("{}{body}", hsm.root_section(ROOT_LABEL));
        Cvault { ws: Workspace::with_config_body(&body), hsm, env: Vec::new(), _serial: serial }
    }

    /// Sets `key` in every later run's environment.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Cvault {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// `cvault token init` of workspace "eng".
    pub fn init(&self) -> String {
        self.ok(&["token", "init", "--workspace", "eng", "--label", "Engineering"])
    }

    /// cvault `args` with the fixture's environment, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cvault"));
        c.args(args);
        self.environment(c)
    }

    /// `c` (cvault or any program) with the fixture's environment.
    pub fn environment(&self, mut c: Command) -> Command {
        c.env("COLLABVAULT_CONF", &self.ws.conf)
            .env("COLLABVAULT_MODULE", super::module_path())
            .env("SOFTHSM2_CONF", self.hsm.conf().join("softhsm2.conf"))
            .env(ROOT_PIN_ENV, ROOT_PIN)
            .env("CV_SO_PIN", super::SO_PIN)
            .env("CV_USER_PIN", super::USER_PIN);
        for (key, value) in &self.env {
            c.env(key, value);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run cvault")
    }

    /// Runs cvault, asserts success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "cvault {args:?} failed: {stderr}\n{stdout}");
        stdout.into_owned()
    }

    /// Runs cvault, asserts exit status 1 (a refusal, not a usage error), returns stderr.
    #[track_caller]
    pub fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "cvault {args:?} should be refused: {stderr}\n{stdout}");
        stderr.into_owned()
    }
}
