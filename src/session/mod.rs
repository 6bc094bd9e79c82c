//! `session/`: sessions, the login calls made through them, and the operations a session
//! runs, one file per kind of operation (cipher, sign, digest, keygen, wrap, derive, kem,
//! message), each looking up the mechanism's registry row, fetching the key the row
//! needs (`key.rs`) and calling the row's operation.
//!
//! Each session sits behind its own lock, so two threads with two sessions never wait on
//! each other; the table lock is held only to look a session up.

pub mod cipher;
pub mod derive;
pub mod digest;
pub mod handles;
mod ids;
pub mod kem;
mod key;
pub mod keygen;
pub mod master;
pub mod message;
pub mod objects;
pub mod output;
pub mod records;
pub mod sign;
pub mod usage;
pub mod wrap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::mechanism::{Cipher, Digester, Signer, Verifier};
use crate::module::{self, Module};
use crate::store::PinOwner;
use crate::token::Token;

/// An active `C_FindObjects` search: the handles still to hand out.
#[derive(Debug, Default)]
pub struct FindOp {
    remaining: std::collections::VecDeque<CK_OBJECT_HANDLE>,
}

/// The cryptographic operations active in a session: at most one of each kind (spec §5.2).
#[derive(Default)]
pub struct Ops {
    /// `C_EncryptInit` .. `C_EncryptFinal`.
    pub encrypt: Option<Box<dyn Cipher>>,
    /// `C_DecryptInit` .. `C_DecryptFinal`.
    pub decrypt: Option<Box<dyn Cipher>>,
    /// `C_DigestInit` .. `C_DigestFinal`.
    pub digest: Option<Box<dyn Digester>>,
    /// `C_SignInit` .. `C_SignFinal`.
    pub sign: Option<Box<dyn Signer>>,
    /// `C_VerifyInit` .. `C_VerifyFinal`.
    pub verify: Option<Box<dyn Verifier>>,
    /// `C_MessageEncryptInit` .. `C_MessageEncryptFinal`.
    pub message_encrypt: Option<message::MessageOp>,
    /// `C_MessageDecryptInit` .. `C_MessageDecryptFinal`.
    pub message_decrypt: Option<message::MessageOp>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("encrypt", &self.encrypt.is_some())
            .field("decrypt", &self.decrypt.is_some())
            .field("digest", &self.digest.is_some())
            .field("sign", &self.sign.is_some())
            .field("verify", &self.verify.is_some())
            .field("message_encrypt", &self.message_encrypt.is_some())
            .field("message_decrypt", &self.message_decrypt.is_some())
            .finish()
    }
}

/// One open session.
#[derive(Debug)]
pub struct Session {
    /// The slot it was opened on.
    pub slot_id: CK_SLOT_ID,
    /// Opened with `CKF_RW_SESSION`.
    pub rw: bool,
    /// The active find operation, if any.
    pub find: Option<FindOp>,
    /// The active cryptographic operations.
    pub ops: Ops,
    /// Data operations counted for the audit log since its last flush.
    pub usage: usage::Usage,
}

/// This application's sessions.
#[derive(Default)]
pub struct SessionTable {
    last: AtomicU64,
    map: RwLock<ids::IdMap<CK_SESSION_HANDLE, Arc<Mutex<Session>>>>,
}

impl SessionTable {
    /// The session behind `handle`.
    pub fn get(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.map.read().get(&handle).cloned().ok_or(Error::SessionHandleInvalid)
    }

    /// (all, read-write) sessions open on `slot`.
    pub fn counts(&self, slot: CK_SLOT_ID) -> (usize, usize) {
        let map = self.map.read();
        map.values()
            .map(|s| s.lock())
            .filter(|s| s.slot_id == slot)
            .fold((0, 0), |(a, rw), s| (a + 1, rw + usize::from(s.rw)))
    }

    fn insert(&self, session: Session) -> CK_SESSION_HANDLE {
        let h = self.last.fetch_add(1, Ordering::Relaxed) + 1;
        self.map.write().insert(h, Arc::new(Mutex::new(session)));
        h
    }

    /// Removes the sessions `pred` picks and returns them.
    fn remove_where(
        &self,
        pred: impl Fn(CK_SESSION_HANDLE, &Session) -> bool,
    ) -> Vec<(CK_SESSION_HANDLE, Arc<Mutex<Session>>)> {
        let mut map = self.map.write();
        let gone: Vec<_> = map.iter().filter(|(h, s)| pred(**h, &s.lock())).map(|(h, _)| *h).collect();
        gone.into_iter().filter_map(|h| map.remove(&h).map(|s| (h, s))).collect()
    }

    /// The sessions open on `slot`.
    pub fn of_slot(&self, slot: CK_SLOT_ID) -> Vec<(CK_SESSION_HANDLE, Arc<Mutex<Session>>)> {
        let map = self.map.read();
        map.iter().filter(|(_, s)| s.lock().slot_id == slot).map(|(h, s)| (*h, s.clone())).collect()
    }
}

thread_local! {
    /// The slot the current C_* call on this thread addresses, once its session resolved:
    /// lets the C boundary audit a refusal against the right workspace. A plain `Copy`
    /// value on purpose: a thread-local with a destructor would keep the library from
    /// unloading at `dlclose`.
    static CALL_SLOT: std::cell::Cell<Option<CK_SLOT_ID>> = const { std::cell::Cell::new(None) };
    /// Who a refusal of the current call is recorded as, when that is not who is logged
    /// in: a refused `C_Login` names the user type that tried.
    static CALL_ACTOR: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Forgets the previous call's slot, actor and session (the C boundary calls this as
/// each call starts).
pub fn begin_call() {
    CALL_SLOT.with(|t| t.set(None));
    CALL_ACTOR.with(|t| t.set(None));
    crate::store::audit::set_call_session(None);
}

/// A PIN refusal is audited where the failure count changes, in the same transaction;
/// the C boundary must not record it a second time.
fn audited_at_origin<T>(result: Result<T>) -> Result<T> {
    if matches!(result, Err(Error::PinIncorrect)) {
        CALL_SLOT.with(|t| t.set(None));
    }
    result
}

/// Audits a refused call with its return code, if it addressed a token; a failure to
/// write is logged (the call's own error is what the caller gets).
pub fn audit_refusal(function: &str, code: &str) {
    let Some(slot) = CALL_SLOT.with(|t| t.take()) else {
        return;
    };
    let Ok(module) = module::get() else {
        return;
    };
    let Ok(token) = module.token(slot) else {
        return;
    };
    let actor = CALL_ACTOR.with(|t| t.take()).unwrap_or_else(|| crate::token::actor(token.logged_in()));
    let event = crate::store::AuditEvent::ok(&token.workspace, actor, function, None).with_outcome(code);
    if let Err(e) = token.store().append_audit(&event) {
        log::error!("{function}: the refusal could not be audited: {e}");
    }
}

/// A session resolved for a call: the module, the session and its token.
pub struct Ctx {
    /// The module (kept alive for the call).
    pub module: Arc<Module>,
    /// The session's handle.
    pub handle: CK_SESSION_HANDLE,
    /// The session.
    pub session: Arc<Mutex<Session>>,
    /// The token the session is open on.
    pub token: Arc<Token>,
}

impl Ctx {
    /// Resolves `handle` in the initialized module.
    pub fn of(handle: CK_SESSION_HANDLE) -> Result<Ctx> {
        let module = module::get()?;
        let session = module.sessions.get(handle)?;
        let slot = session.lock().slot_id;
        let token = module.token(slot)?.clone();
        CALL_SLOT.with(|t| t.set(Some(slot)));
        crate::store::audit::set_call_session(Some(handle));
        Ok(Ctx { module, handle, session, token })
    }

    /// The session's slot.
    pub fn slot(&self) -> CK_SLOT_ID {
        self.token.slot_id
    }

    /// Whether the session may write token state.
    pub fn is_rw(&self) -> bool {
        self.session.lock().rw
    }
}

/// `C_OpenSession`.
pub fn open(slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
    let m = module::get()?;
    let token = m.token(slot)?;
    token.check_present()?;
    if flags & CKF_SERIAL_SESSION == 0 {
        return Err(Error::SessionParallelNotSupported);
    }
    let rw = flags & CKF_RW_SESSION != 0;
    if !rw && token.logged_in() == Some(PinOwner::So) {
        return Err(Error::SessionReadWriteSoExists);
    }
    Ok(m.sessions.insert(Session {
        slot_id: slot,
        rw,
        find: None,
        ops: Ops::default(),
        usage: usage::Usage::default(),
    }))
}

fn closed(m: &Module, slot: CK_SLOT_ID, gone: &[(CK_SESSION_HANDLE, Arc<Mutex<Session>>)]) {
    let Ok(token) = m.token(slot) else {
        return;
    };
    // The closing sessions' counters go out while their actor is still logged in.
    usage::flush_all(token, gone);
    for (h, _) in gone {
        m.handles.drop_owned_by(*h);
    }
    // The application's last session on the token closing logs it out (spec §5.6).
    if m.sessions.counts(slot).0 == 0 && token.logged_in().is_some() {
        match token.logout() {
            Ok(()) => logged_out(m, slot),
            Err(e) => log::warn!("implicit logout of slot {slot}: {e}"),
        }
    }
}

/// Flushes every session's operation counters (`C_Finalize`).
pub fn flush_usage(m: &Module) {
    for token in &m.tokens {
        usage::flush_all(token, &m.sessions.of_slot(token.slot_id));
    }
}

/// `C_CloseSession`.
pub fn close(handle: CK_SESSION_HANDLE) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let gone = ctx.module.sessions.remove_where(|h, _| h == handle);
    if gone.is_empty() {
        return Err(Error::SessionHandleInvalid);
    }
    closed(&ctx.module, ctx.slot(), &gone);
    ctx.token.store().flush_audit()
}

/// `C_CloseAllSessions`.
pub fn close_all(slot: CK_SLOT_ID) -> Result<()> {
    let m = module::get()?;
    let token = m.token(slot)?;
    let gone = m.sessions.remove_where(|_, s| s.slot_id == slot);
    closed(&m, slot, &gone);
    token.store().flush_audit()
}

/// `C_GetSessionInfo`.
pub fn info(handle: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
    let ctx = Ctx::of(handle)?;
    let rw = ctx.is_rw();
    let state = match (rw, ctx.token.logged_in()) {
        (false, None) => CKS_RO_PUBLIC_SESSION,
        (false, Some(_)) => CKS_RO_USER_FUNCTIONS,
        (true, None) => CKS_RW_PUBLIC_SESSION,
        (true, Some(PinOwner::User)) => CKS_RW_USER_FUNCTIONS,
        (true, Some(PinOwner::So)) => CKS_RW_SO_FUNCTIONS,
    };
    let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
    Ok(CK_SESSION_INFO { slotID: ctx.slot(), state, flags, ulDeviceError: 0 })
}

/// `C_Login`.
pub fn login(handle: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let owner = match user_type {
        CKU_SO => PinOwner::So,
        CKU_USER => PinOwner::User,
        // No operation here needs re-authentication (no CKA_ALWAYS_AUTHENTICATE keys yet).
        CKU_CONTEXT_SPECIFIC if ctx.token.logged_in().is_none() => return Err(Error::UserNotLoggedIn),
        CKU_CONTEXT_SPECIFIC => return Err(Error::OperationNotInitialized),
        _ => return Err(Error::UserTypeInvalid),
    };
    let slot = ctx.slot();
    let (all, rw) = ctx.module.sessions.counts(slot);
    CALL_ACTOR.with(|t| t.set(Some(crate::token::actor(Some(owner)))));
    let result = audited_at_origin(ctx.token.login(owner, pin, all > rw));
    if matches!(result, Err(Error::PinIncorrect | Error::PinLocked)) {
        ctx.check_failed_logins();
    }
    result
}

/// `C_Logout`.
pub fn logout(handle: CK_SESSION_HANDLE) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    ctx.token.store().flush_audit()?;
    if ctx.token.logged_in().is_some() {
        // Counters are the logged-in actor's: they go out before the actor changes.
        usage::flush_all(&ctx.token, &ctx.module.sessions.of_slot(ctx.slot()));
    }
    ctx.token.logout()?;
    logged_out(&ctx.module, ctx.slot());
    Ok(())
}

/// What a logout takes away from the application (spec §5.6.4): its private session
/// objects are destroyed (their handles stay invalid after a new login), and every
/// operation active in its sessions on the slot ends, dropping the key material it holds.
/// Ending them all, not only those that used a private object, is what the spec allows
/// ("may or may not be active") and leaves no key behind the login.
fn logged_out(m: &Module, slot: CK_SLOT_ID) {
    let destroyed = m.handles.drop_private_session_objects(slot);
    let mut ended = 0;
    for (_, session) in m.sessions.of_slot(slot) {
        let mut s = session.lock();
        let ops = std::mem::take(&mut s.ops);
        ended += [
            ops.encrypt.is_some(),
            ops.decrypt.is_some(),
            ops.digest.is_some(),
            ops.sign.is_some(),
            ops.verify.is_some(),
            ops.message_encrypt.is_some(),
            ops.message_decrypt.is_some(),
        ]
        .into_iter()
        .filter(|active| *active)
        .count();
        s.find = None;
    }
    if destroyed + ended > 0 {
        log::info!(
            "logout of slot {slot}: {destroyed} private session object(s) destroyed, {ended} operation(s) ended"
        );
    }
}

/// `C_InitPIN`: only in a read-write SO session.
pub fn init_pin(handle: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if ctx.token.logged_in() != Some(PinOwner::So) {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    ctx.token.init_pin(pin)
}

/// `C_SetPIN`: only in a read-write session.
pub fn set_pin(handle: CK_SESSION_HANDLE, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    audited_at_origin(ctx.token.set_pin(old_pin, new_pin))
}

/// `C_GenerateRandom`.
pub fn generate_random(handle: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    Ctx::of(handle)?;
    crate::rng::fill(out)
}

/// `C_SeedRandom`: the token reads the OS CSPRNG and takes no seed.
pub fn seed_random(handle: CK_SESSION_HANDLE, _seed: &[u8]) -> Result<()> {
    Ctx::of(handle)?;
    Err(Error::RandomSeedNotSupported)
}

/// Checks that `handle` names an open session (for functions this token does not support,
/// which still validate their session first).
pub fn check(handle: CK_SESSION_HANDLE) -> Result<()> {
    Ctx::of(handle).map(drop)
}
