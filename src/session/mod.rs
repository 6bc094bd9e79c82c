//! `session/`: sessions, the login calls made through them, and the operations a session
//! runs, one file per kind of operation (cipher, sign, digest, keygen, wrap, derive, kem,
//! message), each looking up the mechanism's registry row, fetching the key the row
//! needs (`key.rs`) and calling the row's operation.
//!
//! Each session sits behind its own lock, so two threads with two sessions never wait on
//! each other; the table lock is held only to look a session up.

pub mod byok;
pub mod cipher;
pub mod derive;
pub mod digest;
pub mod handles;
mod ids;
pub mod kem;
mod key;
pub mod keygen;
pub mod kit;
pub mod master;
pub mod message;
pub mod objects;
pub mod output;
pub mod quorum;
pub mod records;
pub mod sign;
pub mod usage;
pub mod wrap;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cryptoki_sys::*;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::mechanism::{Cipher, Digester, Signer, Verifier};
use crate::store::{AuditEvent, Caller, PinOwner};
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

/// The kinds of operation a session holds at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `C_EncryptInit`.
    Encrypt,
    /// `C_DecryptInit`.
    Decrypt,
    /// `C_DigestInit`.
    Digest,
    /// `C_SignInit`.
    Sign,
    /// `C_VerifyInit`.
    Verify,
    /// `C_MessageEncryptInit`.
    MessageEncrypt,
    /// `C_MessageDecryptInit`.
    MessageDecrypt,
}

impl OpKind {
    /// Every kind.
    pub const ALL: [OpKind; 7] = [
        OpKind::Encrypt,
        OpKind::Decrypt,
        OpKind::Digest,
        OpKind::Sign,
        OpKind::Verify,
        OpKind::MessageEncrypt,
        OpKind::MessageDecrypt,
    ];
}

impl Ops {
    /// Whether an operation of `kind` is active.
    pub fn active(&self, kind: OpKind) -> bool {
        match kind {
            OpKind::Encrypt => self.encrypt.is_some(),
            OpKind::Decrypt => self.decrypt.is_some(),
            OpKind::Digest => self.digest.is_some(),
            OpKind::Sign => self.sign.is_some(),
            OpKind::Verify => self.verify.is_some(),
            OpKind::MessageEncrypt => self.message_encrypt.is_some(),
            OpKind::MessageDecrypt => self.message_decrypt.is_some(),
        }
    }
}

/// What one application's sessions share: the tokens, the session and object-handle
/// tables, and the settings the operations read. The module layer (process state,
/// initialize, finalize, fork) owns one and hands it to each call; nothing here reaches
/// up for it.
pub struct App {
    /// One token per configured workspace; the slot id is the index.
    pub tokens: Vec<Arc<Token>>,
    /// This application's open sessions.
    pub sessions: SessionTable,
    /// This application's object handles.
    pub handles: handles::HandleTable,
    /// Audit settings.
    pub audit: crate::config::AuditConfig,
    /// Mechanism opt-ins.
    pub mechanisms: crate::config::MechanismsConfig,
    /// Per-key rate windows for the audit alerts.
    pub analytics: crate::audit::analytics::Analytics,
    /// The GCM IV counter ranges this process reserved, shared by all its sessions.
    pub iv_counters: message::IvCounters,
}

impl App {
    /// The state over `tokens`, with no session open.
    pub fn new(
        tokens: Vec<Arc<Token>>,
        audit: crate::config::AuditConfig,
        mechanisms: crate::config::MechanismsConfig,
    ) -> App {
        App {
            tokens,
            sessions: SessionTable::default(),
            handles: handles::HandleTable::default(),
            audit,
            mechanisms,
            analytics: Default::default(),
            iv_counters: Default::default(),
        }
    }

    /// The token in `slot`.
    pub fn token(&self, slot: CK_SLOT_ID) -> Result<&Arc<Token>> {
        usize::try_from(slot).ok().and_then(|i| self.tokens.get(i)).ok_or(Error::SlotIdInvalid)
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
    /// The quorum request this session last opened ahead (`CKA_CV_QUORUM_REQUEST`), so
    /// the caller can read back its number.
    pub last_request: Option<i64>,
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

/// What a refusal of the current call is recorded as.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// An entry naming `actor`, or whoever is logged in.
    Audit { actor: Option<&'static str> },
    /// Nothing more: the refusal was audited where it happened (a wrong PIN is audited
    /// with the failure count it changed, in the same transaction).
    AuditedAtOrigin,
}

/// The call context: one C call inside one session, resolved before any other argument
/// of the call is looked at (the check order in `doc/check-order.md`). The C boundary
/// makes it (`ffi::guard_session`) and passes it down: every layer below learns the
/// session, token and actor from it, never from per-thread state.
pub struct Ctx {
    /// The application's shared state (kept alive for the call).
    pub app: Arc<App>,
    /// The session's handle.
    pub handle: CK_SESSION_HANDLE,
    /// The session.
    pub session: Arc<Mutex<Session>>,
    /// The token the session is open on.
    pub token: Arc<Token>,
    refusal: Cell<Refusal>,
}

impl Ctx {
    /// Resolves `handle` among `app`'s sessions.
    pub fn of(app: Arc<App>, handle: CK_SESSION_HANDLE) -> Result<Ctx> {
        let session = app.sessions.get(handle)?;
        let slot = session.lock().slot_id;
        let token = app.token(slot)?.clone();
        Ok(Ctx { app, handle, session, token, refusal: Cell::new(Refusal::Audit { actor: None }) })
    }

    /// The session's slot.
    pub fn slot(&self) -> CK_SLOT_ID {
        self.token.slot_id
    }

    /// Whether the session may write token state.
    pub fn is_rw(&self) -> bool {
        self.session.lock().rw
    }

    /// Refuses with `CKR_OPERATION_ACTIVE` while an operation of `kind` is active: the
    /// session's state is checked before the mechanism is looked at. (Each `*Init` checks
    /// again as it installs the operation, for a racing thread.)
    pub fn check_idle(&self, kind: OpKind) -> Result<()> {
        match self.session.lock().ops.active(kind) {
            true => Err(Error::OperationActive),
            false => Ok(()),
        }
    }

    /// Who this call acts as, in this session: what its audit entries name.
    pub fn caller(&self) -> Caller<'static> {
        Caller { actor: crate::token::actor(self.token.logged_in()), session: Some(self.handle) }
    }

    /// An entry about this call's work, in its session, by whoever is logged in.
    pub(crate) fn event(&self, action: &str, what: Option<String>) -> AuditEvent {
        AuditEvent::by(&self.token.workspace, self.caller(), action, what)
    }

    /// An entry about what the module does by itself during this call (an alert, a
    /// repair), in its session.
    pub(crate) fn module_event(&self, action: &str, what: Option<String>) -> AuditEvent {
        AuditEvent::by(&self.token.workspace, Caller { session: Some(self.handle), ..Caller::MODULE }, action, what)
    }

    /// Audits the refusal of this call with return code `code`; a failure to write is
    /// logged (the call's own error is what the caller gets).
    pub fn audit_refusal(&self, function: &str, code: &str) {
        let Refusal::Audit { actor } = self.refusal.get() else {
            return;
        };
        let by = Caller { actor: actor.unwrap_or(self.caller().actor), session: Some(self.handle) };
        let event = AuditEvent::by(&self.token.workspace, by, function, None).with_outcome(code);
        if let Err(e) = self.token.store().append_audit(&event) {
            log::error!("{function}: the refusal could not be audited: {e}");
        }
    }

    /// A PIN refusal is audited where the failure count changes, in the same
    /// transaction: the C boundary must not record it a second time.
    fn audited_at_origin<T>(&self, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::PinIncorrect)) {
            self.refusal.set(Refusal::AuditedAtOrigin);
        }
        result
    }
}

/// `C_OpenSession`.
pub fn open(m: &App, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
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
        last_request: None,
    }))
}

/// After sessions closed: `by` is the session whose call closed them (none for
/// `C_CloseAllSessions`).
fn closed(m: &App, slot: CK_SLOT_ID, gone: &[(CK_SESSION_HANDLE, Arc<Mutex<Session>>)], by: Option<u64>) {
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
        match token.logout(by) {
            Ok(()) => logged_out(m, slot),
            Err(e) => log::warn!("implicit logout of slot {slot}: {e}"),
        }
    }
}

/// Flushes every session's operation counters (`C_Finalize`).
pub fn flush_usage(m: &App) {
    for token in &m.tokens {
        usage::flush_all(token, &m.sessions.of_slot(token.slot_id));
    }
}

/// `C_CloseSession`.
pub fn close(ctx: &Ctx) -> Result<()> {
    let gone = ctx.app.sessions.remove_where(|h, _| h == ctx.handle);
    if gone.is_empty() {
        return Err(Error::SessionHandleInvalid);
    }
    closed(&ctx.app, ctx.slot(), &gone, Some(ctx.handle));
    ctx.token.store().flush_audit()
}

/// `C_CloseAllSessions`.
pub fn close_all(m: &App, slot: CK_SLOT_ID) -> Result<()> {
    let token = m.token(slot)?;
    let gone = m.sessions.remove_where(|_, s| s.slot_id == slot);
    closed(m, slot, &gone, None);
    token.store().flush_audit()
}

/// `C_GetSessionInfo`.
pub fn info(ctx: &Ctx) -> Result<CK_SESSION_INFO> {
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
pub fn login(ctx: &Ctx, user_type: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
    let owner = match user_type {
        CKU_SO => PinOwner::So,
        CKU_USER => PinOwner::User,
        // No operation here needs re-authentication (no CKA_ALWAYS_AUTHENTICATE keys yet),
        // so every use of it is what §5.6 calls improper: CKR_OPERATION_NOT_INITIALIZED,
        // logged in or not (CKR_USER_NOT_LOGGED_IN is not among C_Login's codes).
        CKU_CONTEXT_SPECIFIC => return Err(Error::OperationNotInitialized),
        _ => return Err(Error::UserTypeInvalid),
    };
    let slot = ctx.slot();
    let (all, rw) = ctx.app.sessions.counts(slot);
    // A refusal names who tried, not who (nobody) is logged in.
    ctx.refusal.set(Refusal::Audit { actor: Some(crate::token::actor(Some(owner))) });
    let result = ctx.audited_at_origin(ctx.token.login(owner, pin, all > rw, Some(ctx.handle)));
    if matches!(result, Err(Error::PinIncorrect | Error::PinLocked)) {
        ctx.check_failed_logins();
    }
    result
}

/// `C_Logout`.
pub fn logout(ctx: &Ctx) -> Result<()> {
    ctx.token.store().flush_audit()?;
    if ctx.token.logged_in().is_some() {
        // Counters are the logged-in actor's: they go out before the actor changes.
        usage::flush_all(&ctx.token, &ctx.app.sessions.of_slot(ctx.slot()));
    }
    ctx.token.logout(Some(ctx.handle))?;
    logged_out(&ctx.app, ctx.slot());
    Ok(())
}

/// What a logout takes away from the application (spec §5.6.4): its private session
/// objects are destroyed (their handles stay invalid after a new login), and every
/// operation active in its sessions on the slot ends, dropping the key material it holds.
/// Ending them all, not only those that used a private object, is what the spec allows
/// ("may or may not be active") and leaves no key behind the login.
fn logged_out(m: &App, slot: CK_SLOT_ID) {
    let destroyed = m.handles.drop_private_session_objects(slot);
    let mut ended = 0;
    for (_, session) in m.sessions.of_slot(slot) {
        let mut s = session.lock();
        let ops = std::mem::take(&mut s.ops);
        ended += OpKind::ALL.into_iter().filter(|kind| ops.active(*kind)).count();
        s.find = None;
    }
    if destroyed + ended > 0 {
        log::info!(
            "logout of slot {slot}: {destroyed} private session object(s) destroyed, {ended} operation(s) ended"
        );
    }
}

/// `C_InitPIN`: only in a read-write SO session.
pub fn init_pin(ctx: &Ctx, pin: &[u8]) -> Result<()> {
    if ctx.token.logged_in() != Some(PinOwner::So) {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    ctx.token.init_pin(pin, Some(ctx.handle))
}

/// `C_SetPIN`: only in a read-write session.
pub fn set_pin(ctx: &Ctx, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    ctx.audited_at_origin(ctx.token.set_pin(old_pin, new_pin, Some(ctx.handle)))
}

/// `C_GenerateRandom`.
pub fn generate_random(_ctx: &Ctx, out: &mut [u8]) -> Result<()> {
    crate::mechanism::primitives::fill_random(out)
}

/// `C_SeedRandom`: the token reads the OS CSPRNG and takes no seed.
pub fn seed_random(_ctx: &Ctx, _seed: &[u8]) -> Result<()> {
    Err(Error::RandomSeedNotSupported)
}
