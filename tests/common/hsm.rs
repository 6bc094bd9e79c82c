//! A real SoftHSM2 token as the module's root of trust: a private SoftHSM2 config and
//! token directory per test, the token made by `softhsm2-util`, and a module config whose
//! `[root]` section names it (PIN through an environment variable).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use tempfile::TempDir;

pub const ROOT_LABEL: &str = "cv-root";
pub const ROOT_PIN: &str = "root-pin-5678";
pub const ROOT_PIN_ENV: &str = "CV_TEST_ROOT_PIN";

/// `tests/shim/failing_pkcs11.c`, the PKCS#11 shim over SoftHSM2 that fails its Nth call,
/// compiled once per test binary into Cargo's scratch directory for tests (named after
/// the binary, so that binaries running at once do not build over each other).
pub fn failing_shim() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = std::env::current_exe().expect("test binary path");
        let stem = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("tests").to_owned();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("libcv_failing_pkcs11_{stem}.so"));
        let partial = out.with_extension(format!("so.{}", std::process::id()));
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let built = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root.join("include"))
            .arg(root.join("tests/shim/failing_pkcs11.c"))
            .arg("-o")
            .arg(&partial)
            .args(["-ldl", "-lpthread"])
            .output()
            .unwrap_or_else(|e| panic!("{cc} (gcc is a build dependency): {e}"));
        assert!(built.status.success(), "building the shim: {}", String::from_utf8_lossy(&built.stderr));
        std::fs::rename(&partial, &out).expect("shim in place");
        out
    })
}

/// SoftHSM2's module on Debian (package softhsm2, installed by scripts/install-deps.sh).
pub fn softhsm_module() -> PathBuf {
    let path = PathBuf::from(std::env::var("SOFTHSM2_MODULE").unwrap_or("/usr/lib/softhsm/libsofthsm2.so".into()));
    assert!(path.exists(), "{} missing: run scripts/install-deps.sh", path.display());
    path
}

/// A fresh SoftHSM2 token directory with one initialized token.
pub struct Hsm {
    pub dir: TempDir,
}

impl Hsm {
    /// A private config over an empty token directory, exported as `SOFTHSM2_CONF`.
    fn empty() -> Hsm {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
        )
        .expect("softhsm2.conf");
        std::env::set_var("SOFTHSM2_CONF", &conf);
        std::env::set_var(ROOT_PIN_ENV, ROOT_PIN);
        Hsm { dir }
    }

    /// A copy of the token directory `tokens` (a committed fixture's), in a private
    /// config exported as `SOFTHSM2_CONF`.
    pub fn from_tokens(tokens: &Path) -> Hsm {
        let hsm = Hsm::empty();
        super::copy_tree(tokens, &hsm.tokens());
        hsm
    }

    pub fn new() -> Hsm {
        Hsm::with_tokens(&[ROOT_LABEL])
    }

    /// A fresh token directory with one initialized token per label (PIN [`ROOT_PIN`]):
    /// the slots of a split root.
    pub fn with_tokens(labels: &[&str]) -> Hsm {
        let hsm = Hsm::empty();
        for label in labels {
            hsm.util(&["--init-token", "--free", "--label", label, "--so-pin", "root-so-1234", "--pin", ROOT_PIN]);
        }
        hsm
    }

    /// Initializes a fresh token labelled `label` (PIN [`ROOT_PIN`]): a replacement HSM.
    pub fn add_token(&self, label: &str) {
        self.util(&["--init-token", "--free", "--label", label, "--so-pin", "root-so-1234", "--pin", ROOT_PIN]);
    }

    /// The data object labels on token `label`, as `pkcs11-tool --list-objects` prints
    /// them (another process, its own SoftHSM2).
    pub fn data_labels(&self, label: &str) -> String {
        let out = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(softhsm_module())
            .args(["--token-label", label, "--login", "--pin", ROOT_PIN, "--list-objects", "--type", "data"])
            .env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"))
            .output()
            .expect("pkcs11-tool");
        assert!(out.status.success(), "pkcs11-tool on {label}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deletes the token labelled `label` (an HSM gone for good).
    pub fn delete_token(&self, label: &str) {
        self.util(&["--delete-token", "--token", label]);
    }

    /// Runs softhsm2-util over this token directory; it must succeed.
    fn util(&self, args: &[&str]) {
        let out = Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"))
            .output()
            .expect("softhsm2-util");
        assert!(out.status.success(), "softhsm2-util {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A `[root]` section splitting the root `threshold`-of-n over the tokens `labels`.
    pub fn split_section(&self, labels: &[&str], threshold: u8) -> String {
        self.split_section_over(&softhsm_module(), labels, threshold)
    }

    /// [`Hsm::split_section`] with every slot's module `module` (a shim in front of SoftHSM2).
    pub fn split_section_over(&self, module: &Path, labels: &[&str], threshold: u8) -> String {
        let mut s = format!("[root]\nthreshold = {threshold}\n");
        for label in labels {
            s.push_str(&format!(
                "[[root.slots]]\nmodule = {module:?}\ntoken_label = {label:?}\npin_env = {ROOT_PIN_ENV:?}\n"
            ));
        }
        s
    }

    /// The SoftHSM2 token directory.
    pub fn tokens(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// The `[root]` section naming this token.
    pub fn root_section(&self, label: &str) -> String {
        format!("[root]\nmodule = {:?}\ntoken_label = {label:?}\npin_env = {ROOT_PIN_ENV:?}\n", softhsm_module())
    }

    /// pkcs11-tool against the root token (as an operator would use it).
    pub fn tool(&self, args: &[&str]) -> std::process::Output {
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(softhsm_module())
            .args(["--token-label", ROOT_LABEL, "--login", "--pin", ROOT_PIN])
            .args(args)
            .env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"))
            .output()
            .expect("pkcs11-tool")
    }

    pub fn conf(&self) -> &Path {
        self.dir.path()
    }
}

/// What someone holding the root PIN has: SoftHSM2 loaded directly (not through the
/// module) and a logged-in session on the root token of the current `SOFTHSM2_CONF`.
pub fn root_token_session() -> (Pkcs11, Session) {
    token_session(ROOT_LABEL)
}

/// SoftHSM2 loaded directly and a session logged in (with the root's PIN) on token
/// `label` of the current `SOFTHSM2_CONF`.
pub fn token_session(label: &str) -> (Pkcs11, Session) {
    let p = Pkcs11::new(softhsm_module()).expect("load softhsm");
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("init softhsm");
    let slot = p
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| p.get_token_info(*s).is_ok_and(|t| t.label() == label))
        .unwrap_or_else(|| panic!("no token labelled {label:?}"));
    let s = p.open_rw_session(slot).expect("session");
    s.login(UserType::User, Some(&AuthPin::new(ROOT_PIN.into()))).expect("root login");
    (p, s)
}
