//! `module`: process-wide state: initialize and finalize, fork detection, slots.
//!
//! The state is one `Arc<Module>` behind a lock that is held only to clone or swap the
//! `Arc`, never across crypto or I/O, so threads run their calls concurrently. A forked
//! child treats the module as uninitialized; its `C_Initialize` starts afresh and leaks
//! (never touches) the parent's copy, whose SQLite handles and locks belong to the parent.
//!
//! A fork is noticed through a generation counter that a `pthread_atfork` child handler
//! (registered by the C boundary at `C_Initialize`) bumps in the child: one atomic load
//! per call. Comparing process ids would cost a `getpid` system call on every call; it
//! remains the check only if the handler could not be registered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cryptoki_sys::*;
use parking_lot::RwLock;

use crate::audit::checkpoint::Checkpointer;
use crate::config::{log_level_filter, Config};
use crate::error::{Error, Result};
use crate::mechanism;
use crate::root::slot::SlotRoot;
use crate::session::App;
use crate::store::Backend;
use crate::token::{padded, Root, Token, MANUFACTURER};

/// Bumped in a forked child (see the module docs).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// Whether the fork handler is registered, so the generation alone detects a fork.
static FORK_HANDLER: AtomicBool = AtomicBool::new(false);

/// Called in the child right after `fork()` (async-signal-safe: one atomic add).
pub fn forked() {
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The C boundary registered [`forked`] as a `pthread_atfork` child handler.
pub fn fork_handler_registered() {
    FORK_HANDLER.store(true, Ordering::Release);
}

/// The initialized module.
pub struct Module {
    pid: u32,
    /// [`FORK_GENERATION`] when it was made.
    generation: u64,
    /// What the application's sessions share: tokens, sessions, handles, settings.
    pub app: Arc<App>,
    /// The store, for the final checkpoint.
    store: Arc<dyn Backend>,
    /// Signs audit checkpoints (with a delegated root only).
    checkpoints: Option<Arc<Checkpointer>>,
}

static STATE: RwLock<Option<Arc<Module>>> = RwLock::new(None);

impl Module {
    /// Whether this state was made by this process (not inherited through `fork()`).
    fn is_ours(&self) -> bool {
        if self.generation != FORK_GENERATION.load(Ordering::Acquire) {
            return false;
        }
        FORK_HANDLER.load(Ordering::Acquire) || self.pid == std::process::id()
    }
}

/// Set (with the fork generation it was set in) while this process has initialized the
/// module: every C call checks it, and atomic loads leave the cache line shared between
/// cores where the state lock's reader count would bounce between them.
static INITIALIZED: AtomicBool = AtomicBool::new(false);
static INITIALIZED_IN: AtomicU64 = AtomicU64::new(0);

/// Fails unless the module is initialized in this process (without taking the lock).
pub fn check_initialized() -> Result<()> {
    let ours = INITIALIZED.load(Ordering::Acquire)
        && INITIALIZED_IN.load(Ordering::Acquire) == FORK_GENERATION.load(Ordering::Acquire);
    if ours && FORK_HANDLER.load(Ordering::Acquire) {
        return Ok(());
    }
    // No fork handler (or not initialized): the state itself decides, pid and all.
    match &*STATE.read() {
        Some(m) if m.is_ours() => Ok(()),
        _ => Err(Error::NotInitialized),
    }
}

/// The module, if initialized in this process.
pub fn get() -> Result<Arc<Module>> {
    match &*STATE.read() {
        Some(m) if m.is_ours() => Ok(m.clone()),
        _ => Err(Error::NotInitialized),
    }
}

/// The application state the session layer works with, if the module is initialized.
pub fn app() -> Result<Arc<App>> {
    get().map(|m| m.app.clone())
}

/// `C_Initialize` (after the C ABI has checked its arguments).
pub fn initialize() -> Result<()> {
    let mut state = STATE.write();
    if let Some(m) = state.as_ref() {
        if m.is_ours() {
            return Err(Error::AlreadyInitialized);
        }
        // A forked child: the parent's state is not ours to drop.
        std::mem::forget(state.take());
    }
    let module = Module::load().inspect_err(|e| log::error!("C_Initialize failed: {e}"))?;
    log::info!("initialized: {} slot(s)", module.app.tokens.len());
    INITIALIZED_IN.store(module.generation, Ordering::Release);
    *state = Some(Arc::new(module));
    INITIALIZED.store(true, Ordering::Release);
    Ok(())
}

/// `C_Finalize`: drops all sessions and login state (zeroizing keys).
pub fn finalize() -> Result<()> {
    let mut state = STATE.write();
    match state.as_ref() {
        Some(m) if m.is_ours() => {
            crate::session::flush_usage(&m.app);
            if let Err(e) = m.store.flush_audit() {
                log::error!("C_Finalize: held audit entries could not be written: {e}");
            }
            if let Some(c) = &m.checkpoints {
                if let Err(e) = c.checkpoint(m.store.as_ref()) {
                    log::error!("the final audit checkpoint failed: {e}");
                }
            }
            INITIALIZED.store(false, Ordering::Release);
            *state = None;
            log::info!("finalized");
            Ok(())
        }
        _ => Err(Error::NotInitialized),
    }
}

impl Module {
    fn load() -> Result<Module> {
        let config = Config::from_env().inspect_err(|e| {
            // The logger may not be configured yet: make sure this line is seen.
            drop(crate::logging::configure(log::LevelFilter::Error, None));
            log::error!("{e}");
        })?;
        let level = log_level_filter(&config.log_level).unwrap_or(log::LevelFilter::Warn);
        crate::logging::configure(level, config.log_file.as_deref()).inspect_err(|e| {
            // An unopenable log file (say, its directory is missing) must not fail silently.
            drop(crate::logging::configure(log::LevelFilter::Error, None));
            log::error!("{e}");
        })?;
        let store = crate::store::open(&config)?;
        if config.audit.session_objects == crate::config::SessionObjects::Batched {
            store.set_batching(crate::store::batch::BatchPolicy {
                entries: config.audit.batch_entries,
                max_age: std::time::Duration::from_millis(config.audit.batch_ms),
            });
        }
        let mut checkpoints = None;
        let root = match &config.root {
            None => {
                log::info!("store at {}; root of trust: software (sealed under the token PINs)", store.describe());
                Root::Soft
            }
            Some(cfg) => match SlotRoot::connect(cfg) {
                Ok(slot) => {
                    let slot = Arc::new(slot);
                    let checkpointer = Arc::new(Checkpointer::new(slot.clone(), &config.audit));
                    store.set_hook(checkpointer.clone());
                    checkpoints = Some(checkpointer);
                    Root::Slot(slot)
                }
                Err(e) => {
                    // The module stays usable for diagnosis, but no token appears without its root.
                    log::error!("root of trust unavailable, so every token is absent: {e}");
                    Root::Unavailable(e)
                }
            },
        };
        let tokens = config
            .workspaces
            .iter()
            .enumerate()
            .map(|(slot, ws)| {
                Token::open(
                    slot as CK_SLOT_ID,
                    ws,
                    store.clone(),
                    config.pin_policy.clone(),
                    root.clone(),
                    config.quorum.clone(),
                )
                .map(Arc::new)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Module {
            store,
            checkpoints,
            app: Arc::new(App::new(tokens, config.audit.clone(), config.mechanisms.clone())),
            pid: std::process::id(),
            generation: FORK_GENERATION.load(Ordering::Acquire),
        })
    }
}

/// `C_GetInfo`.
pub fn info() -> Result<CK_INFO> {
    get()?;
    Ok(CK_INFO {
        cryptokiVersion: CK_VERSION { major: 3, minor: 2 },
        manufacturerID: padded(MANUFACTURER),
        flags: 0,
        // 32 bytes at most: "CollabVault PKCS#11 (rustcrypto)" is exactly that.
        libraryDescription: padded(&format!("CollabVault PKCS#11 ({})", crate::mechanism::primitives::BACKEND)),
        libraryVersion: CK_VERSION { major: 0, minor: 1 },
    })
}

/// `C_GetSlotList`: all slots, or those whose token is present (its root reachable).
pub fn slot_list(token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
    let m = app()?;
    Ok(m.tokens.iter().filter(|t| !token_present || t.check_present().is_ok()).map(|t| t.slot_id).collect())
}

/// `C_GetSlotInfo`.
pub fn slot_info(slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
    let m = app()?;
    let token = m.token(slot)?;
    let version = CK_VERSION { major: 0, minor: 1 };
    let present = if token.check_present().is_ok() { CKF_TOKEN_PRESENT } else { 0 };
    Ok(CK_SLOT_INFO {
        slotDescription: padded(&format!("CollabVault workspace {}", token.workspace)),
        manufacturerID: padded(MANUFACTURER),
        flags: present,
        hardwareVersion: version,
        firmwareVersion: version,
    })
}

/// `C_GetTokenInfo`.
pub fn token_info(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
    let m = app()?;
    let (all, rw) = m.sessions.counts(slot);
    m.token(slot)?.info(all, rw)
}

/// `C_InitToken`: refused while this application has sessions on the token.
pub fn init_token(slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
    let m = app()?;
    let token = m.token(slot)?;
    if m.sessions.counts(slot).0 > 0 {
        return Err(Error::SessionExists);
    }
    let label = String::from_utf8_lossy(label);
    token.init(so_pin, label.trim_end_matches([' ', '\0']))?;
    m.handles.forget_slot(slot);
    Ok(())
}

/// `C_GetMechanismList`: exactly the registry.
pub fn mechanism_list(slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
    app()?.token(slot)?;
    Ok(mechanism::registry().map(|e| e.ty).collect())
}

/// `C_GetMechanismInfo`.
pub fn mechanism_info(slot: CK_SLOT_ID, ty: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
    app()?.token(slot)?;
    let e = mechanism::entry(ty).ok_or(Error::MechanismInvalid)?;
    Ok(CK_MECHANISM_INFO { ulMinKeySize: e.info.min_key, ulMaxKeySize: e.info.max_key, flags: e.info.flags })
}
