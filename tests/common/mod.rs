//! Shared fixture for the integration tests: every test loads the built
//! `libcollabvault_pkcs11.so` through its C ABI, as applications do.
//!
//! The module's state is process-wide, so tests in one binary take [`lock`] and run one
//! at a time; each gets its own store directory and `COLLABVAULT_CONF`.

#![allow(dead_code, missing_docs, unreachable_pub)]

pub mod cvault;
pub mod fuzz;
pub mod hsm;
pub mod postgres;
pub mod quorum;
pub mod raw;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::store::Backend;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tempfile::TempDir;

pub const SO_PIN: &str = "so-pin-1234";
pub const USER_PIN: &str = "user-pin-1234";
pub const LABEL: &str = "test token";
/// Failed logins before lockout in the default test config.
pub const MAX_FAILED: u32 = 3;

/// Path of the built module, or `COLLABVAULT_MODULE` when set. `cargo test` rebuilds the
/// cdylib beside the test binary (`target/<profile>/deps/`) but does not copy it up to
/// `target/<profile>/`, so that copy can be stale: the one in `deps/` is what this test
/// binary was built with.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("COLLABVAULT_MODULE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    let so = deps.join("libcollabvault_pkcs11.so");
    if so.exists() {
        return so;
    }
    let uplifted = deps.parent().map(|p| p.join("libcollabvault_pkcs11.so")).expect("profile dir");
    assert!(uplifted.exists(), "{} not built", uplifted.display());
    uplifted
}

/// A vendor mechanism without a parameter (`CKM_CV_*`, include/collabvault.h).
pub fn vendor(ty: cryptoki_sys::CK_ULONG) -> Mechanism<'static> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(ty).expect("vendor range"),
        None,
    ))
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Serializes use of the (process-global) module within a test binary.
pub fn lock() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A store directory and a config naming it, exported as `COLLABVAULT_CONF`.
pub struct Workspace {
    pub dir: TempDir,
    pub conf: PathBuf,
}

impl Workspace {
    /// One workspace named "main", lockout after [`MAX_FAILED`] failures.
    pub fn new() -> Workspace {
        Workspace::with_workspaces(&[("main", None)])
    }

    pub fn with_workspaces(workspaces: &[(&str, Option<&str>)]) -> Workspace {
        let mut body = String::new();
        for (name, label) in workspaces {
            body.push_str(&format!("[[workspace]]\nname = {name:?}\n"));
            if let Some(l) = label {
                body.push_str(&format!("label = {l:?}\n"));
            }
        }
        Workspace::with_config_body(&body)
    }

    /// `body` is appended after the store directory, log file and PIN policy. With
    /// `CV_TEST_STORE=postgres` the config also names a fresh database on the test
    /// server (`common/postgres.rs`), so the same test runs against PostgreSQL.
    pub fn with_config_body(body: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("collabvault.toml");
        let store = if postgres::selected() {
            let server = postgres::shared();
            format!("store = {:?}\n", server.url(&server.new_database()))
        } else {
            String::new()
        };
        let text = format!(
            "store_dir = {:?}\n{store}log_level = \"debug\"\nlog_file = {:?}\n[pin_policy]\nmax_failed_logins = {MAX_FAILED}\n{body}",
            dir.path().join("store"),
            dir.path().join("module.log"),
        );
        std::fs::write(&conf, text).expect("write config");
        std::env::set_var("COLLABVAULT_CONF", &conf);
        Workspace { dir, conf }
    }

    pub fn store_file(&self) -> PathBuf {
        self.dir.path().join("store").join("collabvault.sqlite3")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("module.log")).unwrap_or_default()
    }

    /// The module's config as it reads it.
    pub fn config(&self) -> Config {
        Config::from_file(&self.conf).expect("config")
    }

    /// Runs `sql` on the store from its backend's shell (`sqlite3`, or `psql` for
    /// PostgreSQL), a process of its own, so it is safe while the module has the store
    /// open; returns what it printed.
    pub fn live_sql(&self, sql: &str) -> String {
        self.try_live_sql(sql).unwrap_or_else(|e| panic!("{sql:?}: {e}"))
    }

    /// [`Workspace::live_sql`], or what the shell said when the store refused the SQL.
    pub fn try_live_sql(&self, sql: &str) -> Result<String, String> {
        let out = match self.config().store {
            Some(conninfo) => Command::new(postgres::bin_dir().join("psql"))
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", &conninfo, "-c", sql])
                .output()
                .expect("run psql"),
            None => Command::new("sqlite3")
                .arg("-cmd")
                .arg(".timeout 10000")
                .arg(self.store_file())
                .arg(sql)
                .output()
                .expect("run the sqlite3 shell (Debian package sqlite3)"),
        };
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Every byte the store keeps at rest, to search for what must never be there in the
    /// clear. SQLite: the file and its write-ahead log. PostgreSQL: after a `CHECKPOINT`,
    /// the files of this store's database (`base/<oid>`) and the server's WAL; a positive
    /// control checks that they hold this store's newest audit hash, so a read of the
    /// wrong files fails rather than passes.
    pub fn bytes_at_rest(&self) -> Vec<u8> {
        if self.config().store.is_none() {
            let mut bytes = std::fs::read(self.store_file()).expect("read store file");
            let mut wal = self.store_file().into_os_string();
            wal.push("-wal");
            bytes.extend(std::fs::read(wal).unwrap_or_default());
            return bytes;
        }
        self.live_sql("CHECKPOINT");
        let oid = self.live_sql("SELECT oid FROM pg_database WHERE datname = current_database()");
        let head = self.live_sql("SELECT encode(hash, 'hex') FROM audit_log ORDER BY seq DESC LIMIT 1");
        let head: Vec<u8> =
            (0..head.len()).step_by(2).map(|i| u8::from_str_radix(&head[i..i + 2], 16).expect("hex")).collect();
        let data = postgres::shared().data_dir().to_path_buf();
        let mut bytes = Vec::new();
        for dir in [data.join("base").join(oid), data.join("pg_wal")] {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.expect("entry").path();
                if path.is_file() {
                    bytes.extend(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
                }
            }
        }
        assert!(!head.is_empty() && bytes.windows(head.len()).any(|w| w == head), "the server's files hold this store");
        bytes
    }

    /// Makes every insert into `table` fail with `message` (trigger `name`), as a full or
    /// read-only store would: an SQLite `RAISE(ABORT)` trigger, or a PL/pgSQL one raising
    /// an exception on PostgreSQL. [`Workspace::allow_inserts`] takes it away.
    pub fn refuse_inserts(&self, table: &str, name: &str, message: &str) {
        let sql = if self.config().store.is_some() {
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$;
                 CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();"
            )
        } else {
            format!("CREATE TRIGGER {name} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END;")
        };
        self.live_sql(&sql);
    }

    /// Takes away the trigger [`Workspace::refuse_inserts`] made.
    pub fn allow_inserts(&self, table: &str, name: &str) {
        let sql = if self.config().store.is_some() {
            format!("DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}();")
        } else {
            format!("DROP TRIGGER {name};")
        };
        self.live_sql(&sql);
    }

    /// The store the config names (SQLite or PostgreSQL), opened by the test itself (not
    /// through the module).
    pub fn open_store(&self) -> std::sync::Arc<dyn Backend> {
        collabvault_pkcs11::store::open(&self.config()).expect("store")
    }
}

/// The module loaded through `cryptoki` and initialized with OS locking.
///
/// Tests end without `C_Finalize` (cryptoki does not finalize on drop) and rely on the
/// library being unloaded when its last handle goes. A test thread that once waited on
/// one of the module's locks keeps it mapped, though: parking_lot registers a thread-local
/// destructor in the module for a parked thread, which pins the shared object. Then the
/// earlier test's state is still there; it is finalized here, so every test starts from
/// `C_Initialize` over its own workspace.
pub fn load() -> Pkcs11 {
    let p = Pkcs11::new(module_path()).expect("load module");
    let args = || CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
    match p.initialize(args()) {
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {
            p.clone().finalize().expect("C_Finalize of an earlier test's module state");
            p.initialize(args()).expect("C_Initialize");
        }
        other => other.expect("C_Initialize"),
    }
    p
}

/// A loaded module over a fresh workspace, with [`lock`] held for the test's duration.
pub struct Fixture {
    pub pkcs11: Pkcs11,
    pub ws: Workspace,
    _serial: MutexGuard<'static, ()>,
}

impl Fixture {
    /// Whether the loaded module's ECDSA is deterministic (RFC 6979): true for its
    /// rustcrypto build; the aws-lc build hedges its nonces, so its signatures of one
    /// message differ (and all verify). Read from `C_GetInfo`, which names the backend.
    pub fn ecdsa_is_deterministic(&self) -> bool {
        let info = self.pkcs11.get_library_info().expect("C_GetInfo");
        let description = info.library_description().trim_end().to_string();
        assert!(
            description.ends_with("(rustcrypto)") || description.ends_with("(aws-lc)"),
            "C_GetInfo names the crypto backend: {description:?}"
        );
        description.ends_with("(rustcrypto)")
    }

    pub fn new() -> Fixture {
        let serial = lock();
        let ws = Workspace::new();
        Fixture { pkcs11: load(), ws, _serial: serial }
    }

    /// A fixture whose config has `body` (workspaces and sections) after the defaults.
    pub fn with_config_body(body: &str) -> Fixture {
        let serial = lock();
        let ws = Workspace::with_config_body(body);
        Fixture { pkcs11: load(), ws, _serial: serial }
    }

    pub fn slot(&self) -> Slot {
        self.pkcs11.get_all_slots().expect("slots")[0]
    }

    /// Initializes the token with [`SO_PIN`] and [`LABEL`] and sets [`USER_PIN`].
    pub fn init_token(&self) -> Slot {
        let slot = self.slot();
        init_token(&self.pkcs11, slot, LABEL);
        slot
    }

    /// A read-write session logged in as the user.
    pub fn user_session(&self, slot: Slot) -> Session {
        user_session(&self.pkcs11, slot)
    }
}

/// Initializes the token in `slot` with [`SO_PIN`] and `label` and sets [`USER_PIN`].
pub fn init_token(pkcs11: &Pkcs11, slot: Slot, label: &str) {
    pkcs11.init_token(slot, &AuthPin::new(SO_PIN.into()), label).expect("C_InitToken");
    let s = pkcs11.open_rw_session(slot).expect("open rw");
    s.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).expect("SO login");
    s.init_pin(&AuthPin::new(USER_PIN.into())).expect("C_InitPIN");
}

/// A read-write session in `slot` logged in as the user with [`USER_PIN`].
pub fn user_session(pkcs11: &Pkcs11, slot: Slot) -> Session {
    let s = pkcs11.open_rw_session(slot).expect("open rw");
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).expect("user login");
    s
}

/// This test binary again, as a child process that runs only the ignored test `name`.
pub fn child_test(name: &str) -> Command {
    let mut child = Command::new(std::env::current_exe().expect("test binary"));
    child.args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"]);
    child
}

/// [`child_test`] over the config `conf`, which `env` also carries to tell the child it
/// is one (see [`child_module`]); its output piped.
pub fn child_over(name: &str, env: &str, conf: &Path) -> Command {
    let mut child = child_test(name);
    child.env(env, conf).env("COLLABVAULT_CONF", conf).stdout(Stdio::piped()).stderr(Stdio::piped());
    child
}

/// The finished child's stdout, once it is known to have passed its one test.
#[track_caller]
pub fn child_passed(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("1 passed"), "the child test did not run:\n{stdout}\n{stderr}");
    stdout
}

/// In a child started by [`child_over`]: [`lock`] held, the module loaded over the config
/// `env` names, and its first slot. `None` (the test is then a no-op) when `env` is unset.
pub fn child_module(env: &str) -> Option<(MutexGuard<'static, ()>, Pkcs11, Slot)> {
    let conf = std::env::var_os(env)?;
    let serial = lock();
    std::env::set_var("COLLABVAULT_CONF", &conf);
    let pkcs11 = load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    Some((serial, pkcs11, slot))
}

/// The `CKR_` value inside a cryptoki error, for exact assertions.
pub fn rv_of<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> cryptoki::error::RvError {
    match r {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Copies the files of `from` (recursively) into `to`; SQLite's shared-memory index is
/// left behind (it is rebuilt on open).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&src, &dst);
        } else if !src.to_string_lossy().ends_with("-shm") {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{} -> {}: {e}", src.display(), dst.display()));
        }
    }
}

/// A data-encryption key as the hierarchy's users make one: an AES-256 session key,
/// sensitive but extractable (so it can become a wrap record), for encrypt and decrypt.
pub fn session_dek(s: &Session) -> cryptoki::object::ObjectHandle {
    s.generate_key(
        &cryptoki::mechanism::Mechanism::AesKeyGen,
        &[
            cryptoki::object::Attribute::ValueLen(32.into()),
            cryptoki::object::Attribute::Token(false),
            cryptoki::object::Attribute::Sensitive(true),
            cryptoki::object::Attribute::Extractable(true),
            cryptoki::object::Attribute::Encrypt(true),
            cryptoki::object::Attribute::Decrypt(true),
        ],
    )
    .expect("DEK")
}
