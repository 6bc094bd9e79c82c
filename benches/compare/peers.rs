//! The PKCS#11 modules the benchmark loads and the tokens it opens on them: where each
//! library is, its configuration in the run's temporary directory, and [`Token`], a
//! loaded module with a fresh token and a logged-in user session.
//!
//! The peers beside this module are SoftHSM2 (required: `scripts/install-deps.sh`
//! installs it) and Kryoptic, the Rust soft token, built from crates.io by
//! `scripts/build-kryoptic.sh`. Kryoptic is optional: when its library is missing or
//! does not open, [`open_kryoptic`] says why and the run goes on without its column,
//! so a machine that cannot build it still runs every other row.
//!
//! The module's own `rustcrypto` build (the pure-Rust backend, built by `cargo build
//! --release --no-default-features --features rustcrypto --target-dir target/rustcrypto`)
//! is loaded the same way beside the default build, on a store of its own: its column
//! shows both backends in one run. It is optional like Kryoptic ([`open_rustcrypto`]).

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tempfile::TempDir;

use super::{err, Res, SO_PIN, USER_PIN};

/// Where `scripts/build-kryoptic.sh` caches the Kryoptic library.
const KRYOPTIC_CACHED: &str = "target/peers/kryoptic/libkryoptic_pkcs11.so";
/// Where the module's `rustcrypto` build puts its library (scripts/test.sh builds it).
const RUSTCRYPTO_BUILT: &str = "target/rustcrypto/release/libcollabvault_pkcs11.so";

/// A loaded module with an initialized token and a user session on it.
pub(super) struct Token {
    pub(super) name: &'static str,
    pub(super) session: Session,
    pub(super) slot: Slot,
    pub(super) pkcs11: Pkcs11,
}

impl Token {
    /// Loads `path`, initializes the first token with `label`, sets the user PIN and
    /// logs the user in. The module's configuration (env var) must be set already.
    pub(super) fn open(name: &'static str, path: &Path, label: &str) -> Res<Token> {
        let pkcs11 = Pkcs11::new(path).map_err(|e| err(format!("{name}: loading {}: {e}", path.display())))?;
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let slot = *pkcs11.get_slots_with_token()?.first().ok_or_else(|| err(format!("{name}: no slot")))?;
        pkcs11.init_token(slot, &AuthPin::new(SO_PIN.into()), label)?;
        // SoftHSM2 gives the initialized token another slot id: look it up by label.
        let mut found = None;
        for s in pkcs11.get_slots_with_token()? {
            let info = pkcs11.get_token_info(s)?;
            if info.label().trim_end() == label && info.token_initialized() {
                found = Some(s);
            }
        }
        let slot = found.ok_or_else(|| err(format!("{name}: initialized token not found")))?;
        {
            let so = pkcs11.open_rw_session(slot)?;
            so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))?;
            so.init_pin(&AuthPin::new(USER_PIN.into()))?;
            so.logout()?;
        }
        let session = pkcs11.open_rw_session(slot)?;
        session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
        Ok(Token { name, session, slot, pkcs11 })
    }

    /// Closes the session and finalizes the module (dropping a `Pkcs11` does not call
    /// `C_Finalize`, and the module must be re-initialized on another store later).
    pub(super) fn close(self) -> Res<()> {
        let Token { session, pkcs11, .. } = self;
        drop(session);
        pkcs11.finalize()?;
        Ok(())
    }

    /// The token's label, as `C_GetTokenInfo` gives it (without the padding).
    pub(super) fn label(&self) -> Res<String> {
        Ok(self.pkcs11.get_token_info(self.slot)?.label().trim_end().to_string())
    }

    pub(super) fn has(&self, m: MechanismType) -> Res<bool> {
        Ok(self.pkcs11.get_mechanism_list(self.slot)?.contains(&m))
    }
}

pub(super) fn collabvault_module() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("COLLABVAULT_MODULE") {
        return Ok(PathBuf::from(p));
    }
    // `cargo bench` builds the cdylib into target/release/deps beside this binary.
    let exe = std::env::current_exe()?;
    let deps = exe.parent().ok_or_else(|| err("no bench binary dir"))?;
    let candidates = [deps.join("libcollabvault_pkcs11.so"), deps.join("../libcollabvault_pkcs11.so")];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| err("libcollabvault_pkcs11.so not built (cargo build --release)"))
}

pub(super) fn softhsm_module() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("SOFTHSM2_MODULE") {
        return Ok(PathBuf::from(p));
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .ok_or_else(|| err("SoftHSM2 not found: run `bash scripts/install-deps.sh` or set SOFTHSM2_MODULE"))
}

pub(super) fn configure(dir: &TempDir) -> Res<()> {
    let tokens = dir.path().join("softhsm-tokens");
    std::fs::create_dir_all(&tokens)?;
    let softhsm_conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &softhsm_conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )?;
    std::env::set_var("SOFTHSM2_CONF", &softhsm_conf);

    use_cv_config(dir, "collabvault.toml", "cv-store", "").map(drop)
}

/// Writes a config for this module (one workspace "bench", errors only, logging to
/// `collabvault.log`) with its store in `dir/store`, `extra` sections before the
/// workspace, and points `COLLABVAULT_CONF` at it for the next `C_Initialize`.
pub(super) fn use_cv_config(dir: &TempDir, name: &str, store: &str, extra: &str) -> Res<PathBuf> {
    let conf = dir.path().join(name);
    std::fs::write(
        &conf,
        format!(
            "store_dir = {:?}\nlog_level = \"error\"\nlog_file = {:?}\n{extra}[[workspace]]\nname = \"bench\"\n",
            dir.path().join(store),
            dir.path().join("collabvault.log"),
        ),
    )?;
    std::env::set_var("COLLABVAULT_CONF", &conf);
    Ok(conf)
}

/// The Kryoptic library: `KRYOPTIC_MODULE`, or the one `scripts/build-kryoptic.sh` cached.
fn kryoptic_module() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("KRYOPTIC_MODULE") {
        return Ok(PathBuf::from(p));
    }
    let cached = Path::new(env!("CARGO_MANIFEST_DIR")).join(KRYOPTIC_CACHED);
    if cached.exists() {
        Ok(cached)
    } else {
        Err(err(format!("{} not built (run `bash scripts/build-kryoptic.sh`)", cached.display())))
    }
}

/// Writes Kryoptic's configuration (one slot, its SQLite store in `dir`) and points
/// `KRYOPTIC_CONF` at it for the next `C_Initialize`.
fn configure_kryoptic(dir: &TempDir) -> Res<()> {
    let conf = dir.path().join("kryoptic.conf");
    let store = dir.path().join("kryoptic.sql");
    std::fs::write(&conf, format!("[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = {:?}\n", store))?;
    std::env::set_var("KRYOPTIC_CONF", &conf);
    Ok(())
}

/// Kryoptic with a fresh token in `dir`, or `None` after printing why it is not in this
/// run (its library was not built, or it did not load or initialize).
pub(super) fn open_kryoptic(dir: &TempDir) -> Option<(Token, PathBuf)> {
    let opened = kryoptic_module().and_then(|path| {
        configure_kryoptic(dir)?;
        Ok((Token::open("kryoptic", &path, "kryoptic-bench")?, path))
    });
    match opened {
        Ok(peer) => Some(peer),
        Err(e) => {
            println!("kryoptic: not in this run, the table has no Kryoptic column: {e}");
            None
        }
    }
}

/// The module's `rustcrypto` build: `COLLABVAULT_RUSTCRYPTO_MODULE`, or the library
/// `cargo build --release --no-default-features --features rustcrypto --target-dir
/// target/rustcrypto` writes.
fn rustcrypto_module() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("COLLABVAULT_RUSTCRYPTO_MODULE") {
        return Ok(PathBuf::from(p));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(RUSTCRYPTO_BUILT);
    if built.exists() {
        Ok(built)
    } else {
        Err(err(format!(
            "{} not built (cargo build --release --no-default-features --features rustcrypto \
             --target-dir target/rustcrypto)",
            built.display()
        )))
    }
}

/// The module's `rustcrypto` build with a fresh token on a store of its own in `dir`, or
/// `None` after printing why it is not in this run (not built, did not load, or this
/// benchmark is itself built with `rustcrypto`, so the main column is that build already).
/// `COLLABVAULT_CONF` names the default build's configuration again afterwards.
pub(super) fn open_rustcrypto(dir: &TempDir) -> Option<(Token, PathBuf)> {
    if !cfg!(feature = "aws-lc") {
        println!("rustcrypto: the collabvault column is the rustcrypto build in this run: no second column");
        return None;
    }
    let previous = std::env::var_os("COLLABVAULT_CONF");
    let opened = rustcrypto_module().and_then(|path| {
        use_cv_config(dir, "collabvault-rustcrypto.toml", "cv-rustcrypto-store", "")?;
        Ok((Token::open("collabvault (rustcrypto)", &path, "cv-rc-bench")?, path))
    });
    if let Some(conf) = previous {
        std::env::set_var("COLLABVAULT_CONF", conf);
    }
    match opened {
        Ok(module) => Some(module),
        Err(e) => {
            println!("rustcrypto: not in this run, the table has no rustcrypto column: {e}");
            None
        }
    }
}
