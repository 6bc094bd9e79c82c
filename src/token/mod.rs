//! `token/`: one workspace's token: its PINs, its login state in this process, and the
//! storage key that seals its key material at rest.
//!
//! Login state belongs to the application (this process), shared by all its sessions on
//! the token, as the spec says. The storage key exists in memory only while a user or SO
//! is logged in, and is zeroized on logout, finalize and drop. Failed-login counters live
//! in the store, so a lockout holds across processes and restarts.

pub mod pin;

use std::sync::Arc;

use cryptoki_sys::*;
use parking_lot::RwLock;

use crate::config::{PinPolicy, QuorumConfig, WorkspaceConfig};
use crate::error::{Error, Result};
use crate::hierarchy::{self, Hierarchy};
use crate::quorum::{self, Quorum};
use crate::root::slot::SlotRoot;
use crate::root::{BoundRoot, Sealer, SoftRoot};
use crate::store::sealed::SealingKey;
use crate::store::{AuditEvent, Backend, Caller, PinOwner, TokenInit, TokenRecord};

/// What `C_GetTokenInfo` reports as the model: the root of trust behind the token.
pub const MODEL_SOFT_ROOT: &str = "soft root";
/// The model of a token whose root key is in an underlying PKCS#11 slot.
pub const MODEL_HSM_ROOT: &str = "hsm root";

/// The root of trust behind a token.
#[derive(Clone)]
pub enum Root {
    /// Software: the storage key is sealed under the PINs, the master keys under it.
    Soft,
    /// A root key in an underlying slot seals the storage key and the master keys.
    Slot(Arc<SlotRoot>),
    /// The configured underlying slot could not be reached: the token is absent, and this
    /// is why (returned, and logged, by every call that needs the token).
    Unavailable(Error),
}
/// `manufacturerID` of slots and tokens.
pub const MANUFACTURER: &str = "CollabVault";

/// What a verified PIN yields: the storage key, and whether its record should be rewritten.
struct Verified {
    key: SealingKey,
    outdated: bool,
    legacy: bool,
}

#[derive(Default)]
struct LoginState {
    who: Option<PinOwner>,
    storage_key: Option<SealingKey>,
    hierarchy: Option<Arc<Hierarchy>>,
    /// The token epoch when this login was made: a recovery bumps it, voiding the login.
    epoch: i64,
}

/// One workspace token.
pub struct Token {
    /// The slot this token sits in.
    pub slot_id: CK_SLOT_ID,
    /// The workspace name; the store keys the token by it.
    pub workspace: String,
    /// The workspace's data classification.
    pub classification: String,
    store: Arc<dyn Backend>,
    policy: PinPolicy,
    root: Root,
    quorum: Arc<Quorum>,
    login: RwLock<LoginState>,
}

/// The name audit entries give a login state.
pub fn actor(who: Option<PinOwner>) -> &'static str {
    match who {
        Some(PinOwner::So) => "so",
        Some(PinOwner::User) => "user",
        None => "public",
    }
}

/// Space-padded fixed-width field, as `CK_TOKEN_INFO` and friends want.
pub fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

/// What the PIN MAC covers: everything about a token's PINs an attacker with write access
/// to the store would like to change (records, counters, the legacy root-only key copy).
pub(crate) fn pins_data(workspace: &str, rec: &TokenRecord) -> Vec<u8> {
    let mut data = Vec::new();
    let mut field = |bytes: &[u8]| {
        data.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        data.extend_from_slice(bytes);
    };
    field(workspace.as_bytes());
    field(&[u8::from(rec.initialized)]);
    field(&rec.epoch.to_be_bytes());
    field(&rec.so_failures.to_be_bytes());
    field(&rec.user_failures.to_be_bytes());
    for v in [&rec.so_pin, &rec.user_pin, &rec.sealed_storage_key] {
        match v {
            Some(bytes) => field(&[&[1u8][..], bytes].concat()),
            None => field(&[0]),
        }
    }
    data
}

fn pin_flags(failures: u32, max: u32, low: CK_FLAGS, final_try: CK_FLAGS, locked: CK_FLAGS) -> CK_FLAGS {
    match failures {
        0 => 0,
        f if f >= max => locked,
        f if f + 1 == max => low | final_try,
        _ => low,
    }
}

impl Token {
    /// Opens the workspace's token, creating its (uninitialized) state on first use.
    pub fn open(
        slot_id: CK_SLOT_ID,
        ws: &WorkspaceConfig,
        store: Arc<dyn Backend>,
        policy: PinPolicy,
        root: Root,
        quorum: QuorumConfig,
    ) -> Result<Token> {
        store.open_token(&ws.name, ws.label.as_deref().unwrap_or(""))?;
        let slot = match &root {
            Root::Slot(slot) => Some(slot.clone()),
            Root::Soft | Root::Unavailable(_) => None,
        };
        let quorum = Arc::new(Quorum::new(&ws.name, store.clone(), slot, quorum));
        if let Root::Slot(slot) = &root {
            let (slot, workspace) = (slot.clone(), ws.name.clone());
            store.set_pins_mac(&ws.name, Arc::new(move |rec| slot.pins_mac(&workspace, &pins_data(&workspace, rec))));
        }
        Ok(Token {
            slot_id,
            workspace: ws.name.clone(),
            classification: ws.classification.clone(),
            store,
            policy,
            root,
            quorum,
            login: RwLock::new(LoginState::default()),
        })
    }

    /// Fails with the reason when the token's root of trust is unreachable.
    pub fn check_present(&self) -> Result<()> {
        match &self.root {
            Root::Unavailable(e) => Err(e.clone()),
            Root::Soft | Root::Slot(_) => Ok(()),
        }
    }

    /// The sealer for this workspace: the slot's root key (created only when `create`),
    /// or the software root over `storage_key`.
    /// The master keys' sealer: the software root over `storage_key`, or the slot's root
    /// key (created only when `create`) bound to `storage_key`. `legacy_ok` accepts blobs
    /// the root sealed alone (only while a legacy token is upgraded).
    fn sealer(&self, storage_key: &SealingKey, create: bool, legacy_ok: bool) -> Result<Arc<dyn Sealer>> {
        match &self.root {
            Root::Soft => Ok(Arc::new(SoftRoot(storage_key.clone()))),
            Root::Slot(slot) => Ok(Arc::new(BoundRoot {
                root: slot.root_key(&self.workspace, create)?,
                workspace: self.workspace.clone(),
                storage_key: storage_key.clone(),
                legacy_ok,
            })),
            Root::Unavailable(e) => Err(e.clone()),
        }
    }

    /// Upgrades master key rows from before rows were MACed (and bound to `storage_key`
    /// under a delegated root), through a sealer that accepts the legacy blobs.
    fn upgrade_legacy_rows(&self, storage_key: &SealingKey) -> Result<()> {
        hierarchy::upgrade_legacy_rows(
            self.sealer(storage_key, false, true)?.as_ref(),
            self.store.as_ref(),
            &self.workspace,
        )?;
        Ok(())
    }

    /// The logged-in user's (or SO's) view of the master keys. Checked against the token
    /// epoch at every call: after a recovery (`cvault recover`) in any process, a login
    /// made before it is dropped here and the call refused with `CKR_USER_NOT_LOGGED_IN`.
    pub fn hierarchy(&self) -> Result<Arc<Hierarchy>> {
        // No login: refused before the store is read.
        if self.login.read().hierarchy.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        self.hierarchy_at(self.record()?.epoch)
    }

    /// [`Token::hierarchy`] checked against `epoch`, the token epoch the caller read from
    /// the store at this call together with the rows it judges (a find reads them in one
    /// statement): a login made before a recovery is dropped as there.
    pub fn hierarchy_at(&self, epoch: i64) -> Result<Arc<Hierarchy>> {
        let (hierarchy, login_epoch) = {
            let state = self.login.read();
            (state.hierarchy.clone().ok_or(Error::UserNotLoggedIn)?, state.epoch)
        };
        if epoch != login_epoch {
            self.void_login(login_epoch);
            return Err(Error::UserNotLoggedIn);
        }
        Ok(hierarchy)
    }

    /// Forgets a login made at `epoch` (the token was recovered since): its storage key
    /// and master keys are zeroized as on logout.
    fn void_login(&self, epoch: i64) {
        let mut state = self.login.write();
        if state.who.is_some() && state.epoch == epoch {
            *state = LoginState::default();
            log::warn!(
                "{}: the token was recovered since this login (epoch {epoch}): logged out; log in again",
                self.workspace
            );
        }
    }

    /// The workspace's quorum (custodians, requests, unlocks).
    pub fn quorum(&self) -> &Arc<Quorum> {
        &self.quorum
    }

    /// The store this token keeps its state in.
    pub fn store(&self) -> &dyn Backend {
        self.store.as_ref()
    }

    /// The token's persistent state, fresh from the store (another process may have changed it).
    pub fn record(&self) -> Result<TokenRecord> {
        self.store.token(&self.workspace)
    }

    /// Who is logged in from this process.
    pub fn logged_in(&self) -> Option<PinOwner> {
        self.login.read().who
    }

    /// The storage key, while someone is logged in.
    pub fn storage_key(&self) -> Option<SealingKey> {
        self.login.read().storage_key.clone()
    }

    /// `C_GetTokenInfo`, given this process's session counts.
    pub fn info(&self, sessions: usize, rw_sessions: usize) -> Result<CK_TOKEN_INFO> {
        self.check_present()?;
        let rec = self.record()?;
        let max = self.policy.max_failed_logins;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        if rec.initialized {
            flags |= CKF_TOKEN_INITIALIZED;
        }
        if rec.user_pin.is_some() {
            flags |= CKF_USER_PIN_INITIALIZED;
        }
        flags |= pin_flags(rec.user_failures, max, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED);
        flags |= pin_flags(rec.so_failures, max, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
        let version = CK_VERSION { major: 0, minor: 1 };
        let model = match self.root {
            Root::Slot(_) => MODEL_HSM_ROOT,
            Root::Soft | Root::Unavailable(_) => MODEL_SOFT_ROOT,
        };
        Ok(CK_TOKEN_INFO {
            label: padded(&rec.label),
            manufacturerID: padded(MANUFACTURER),
            model: padded(model),
            serialNumber: padded(&rec.serial),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: sessions as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw_sessions as CK_ULONG,
            ulMaxPinLen: pin::MAX_PIN_LEN as CK_ULONG,
            ulMinPinLen: pin::MIN_PIN_LEN as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: version,
            firmwareVersion: version,
            utcTime: [b' '; 16],
        })
    }

    /// An entry by whoever is logged in, in `session` (none for `C_InitToken`).
    fn event(&self, action: &'static str, session: Option<u64>) -> AuditEvent {
        AuditEvent::by(&self.workspace, Caller { actor: actor(self.logged_in()), session }, action, None)
    }

    /// `owner` acting in `session`.
    fn caller(owner: PinOwner, session: Option<u64>) -> Caller<'static> {
        Caller { actor: actor(Some(owner)), session }
    }

    /// Verifies `pin` for `owner` and returns the storage key it opens.
    ///
    /// The attempt is counted as a failure in the store *before* Argon2 runs (one
    /// transaction that also refuses a locked PIN), so parallel guesses from any number of
    /// threads or processes get at most `max_failed_logins` verdicts. A wrong PIN keeps
    /// the count and is audited with it; a success writes nothing here: the caller's own
    /// write (login, PIN change, re-initialization) resets the count with its entry.
    fn verify(&self, owner: PinOwner, pin: &[u8], action: &'static str, session: Option<u64>) -> Result<Verified> {
        let rec = self.record()?;
        let record = match owner {
            PinOwner::So => rec.so_pin.clone(),
            PinOwner::User => rec.user_pin.clone(),
        };
        let record = record.ok_or(match owner {
            PinOwner::User => Error::UserPinNotInitialized,
            PinOwner::So => Error::TokenNotInitialized,
        })?;
        self.check_pins_mac(owner, &rec, &record)?;
        let max = self.policy.max_failed_logins;
        let Some(n) = self.store.reserve_login(&self.workspace, owner, max)? else {
            log::warn!("{}: {owner:?} PIN is locked ({max} consecutive failures): attempt refused", self.workspace);
            return Err(Error::PinLocked);
        };
        match pin::unlock(&self.workspace, owner, pin, &record) {
            Ok(unlocked) => {
                let key = self.storage_key_from(owner, unlocked.opened, rec.sealed_storage_key.as_deref())?;
                Ok(Verified { key, outdated: unlocked.outdated, legacy: unlocked.legacy })
            }
            Err(Error::PinIncorrect) => {
                // The entry says how far the count got, so a lockout is in the log as such.
                let what = match n >= max {
                    true => format!("failure {n} of {max}: the PIN is now locked"),
                    false => format!("failure {n} of {max}"),
                };
                let event = AuditEvent::by(&self.workspace, Self::caller(owner, session), action, Some(what))
                    .with_outcome("CKR_PIN_INCORRECT");
                self.store.append_audit(&event)?;
                log::warn!("{}: wrong {owner:?} PIN ({n} of {max} attempts)", self.workspace);
                Err(Error::PinIncorrect)
            }
            Err(e) => Err(e),
        }
    }

    /// Under a delegated root, refuses PIN records and counters whose MAC (under a key in
    /// the root token) fails: a record planted, or a counter reset, in the store file. A
    /// row without a MAC is accepted only while `record` is a legacy one (the next write
    /// adds the MAC).
    fn check_pins_mac(&self, owner: PinOwner, rec: &TokenRecord, record: &[u8]) -> Result<()> {
        let Root::Slot(slot) = &self.root else {
            return Ok(());
        };
        let ws = &self.workspace;
        match &rec.pins_mac {
            Some(mac) if crate::store::sealed::mac_eq(mac, &slot.pins_mac(ws, &pins_data(ws, rec))?) => Ok(()),
            None if pin::is_legacy(record) => Ok(()),
            _ => {
                log::error!(
                    "{ws}: refused the {owner:?} login: the PIN records or failure counters fail their MAC \
                     (edited in the store file: a planted record or a reset counter?)"
                );
                Err(Error::Integrity("the PIN records fail their MAC"))
            }
        }
    }

    /// The storage key from what a verified PIN record carried. Under a delegated root the
    /// key must need both the PIN and the root: a record carrying the key under the PIN
    /// alone is refused there (planted, or a downgrade), and a legacy verifier-only record
    /// is accepted (with the token's root-sealed copy) only until the login upgrades it.
    fn storage_key_from(&self, owner: PinOwner, opened: pin::Opened, legacy: Option<&[u8]>) -> Result<SealingKey> {
        let ws = &self.workspace;
        match (&self.root, opened) {
            (Root::Unavailable(e), _) => Err(e.clone()),
            (Root::Soft, pin::Opened::StorageKey(key)) => Ok(key),
            (Root::Soft, _) => {
                log::error!("{ws}: the {owner:?} PIN record needs a delegated root, and none is configured");
                Err(Error::Integrity("a root-sealed PIN record needs a delegated root"))
            }
            (Root::Slot(_), pin::Opened::RootSealed(blob)) => self.unseal_storage_key(&blob),
            (Root::Slot(_), pin::Opened::VerifierOnly) => {
                let blob = legacy.ok_or(Error::Integrity("the token has no root-sealed storage key"))?;
                log::info!("{ws}: accepting a legacy verifier-only {owner:?} PIN record once; upgrading it now");
                self.unseal_storage_key(blob)
            }
            (Root::Slot(_), pin::Opened::StorageKey(_)) => {
                log::error!(
                    "{ws}: refused the {owner:?} PIN record: it carries the storage key under the PIN alone, \
                     which a token with an HSM root never writes (planted or downgraded record?)"
                );
                Err(Error::Integrity("a PIN-only storage key record is refused under a slot root"))
            }
        }
    }

    fn unseal_storage_key(&self, sealed: &[u8]) -> Result<SealingKey> {
        let Root::Slot(slot) = &self.root else {
            return Err(Error::Integrity("a root-sealed storage key needs a delegated root"));
        };
        let plain =
            slot.root_key(&self.workspace, false)?.unseal(&hierarchy::storage_key_context(&self.workspace), sealed)?;
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| Error::Integrity("storage key length"))?;
        Ok(SealingKey::new(key))
    }

    /// A current PIN record for `pin` that opens `key`: the key itself with the software
    /// root; under a delegated root the key sealed by the root, so that opening it needs
    /// both the PIN and the root key.
    fn pin_record(&self, owner: PinOwner, pin: &[u8], key: &SealingKey) -> Result<Vec<u8>> {
        match &self.root {
            Root::Soft => pin::make(&self.workspace, owner, pin, pin::Payload::StorageKey(key)),
            Root::Slot(slot) => {
                let blob = slot
                    .root_key(&self.workspace, false)?
                    .seal(&hierarchy::storage_key_context(&self.workspace), key.as_ref())?;
                pin::make(&self.workspace, owner, pin, pin::Payload::RootSealed(&blob))
            }
            Root::Unavailable(e) => Err(e.clone()),
        }
    }

    /// Writes `owner`'s new PIN record; then, once no legacy verifier-only record needs
    /// it, forgets the token's root-sealed storage key, which the root alone could open.
    fn write_pin(&self, owner: PinOwner, record: &[u8], event: &AuditEvent) -> Result<()> {
        self.store.set_pin(&self.workspace, owner, record, event)?;
        let rec = self.record()?;
        let legacy_left = [&rec.so_pin, &rec.user_pin].into_iter().flatten().any(|r| pin::is_verifier_only(r));
        if rec.sealed_storage_key.is_some() && !legacy_left {
            let event = AuditEvent::ok(
                &self.workspace,
                actor(self.logged_in().or(Some(owner))),
                event.action.as_str(),
                Some("the root-only copy of the storage key is forgotten".into()),
            )
            .in_session(event.session);
            self.store.forget_sealed_storage_key(&self.workspace, &event)?;
            log::info!("{}: every PIN record is current; the root-only storage key copy is gone", self.workspace);
        }
        Ok(())
    }

    /// `C_InitToken`: (re)initializes the token: wipes its objects and master keys, makes
    /// a new storage key and master key v1, both sealed by the root.
    pub fn init(&self, so_pin: &[u8], label: &str) -> Result<()> {
        self.check_present()?;
        pin::check_len(so_pin)?;
        if self.record()?.initialized {
            self.verify(PinOwner::So, so_pin, "C_InitToken", None)?;
            // Re-initializing destroys every master key version: never under a legal hold,
            // and a quorum must agree.
            self.quorum.check_not_held("C_InitToken")?;
            self.quorum.require(quorum::INIT_TOKEN, Self::caller(PinOwner::So, None))?;
        }
        let mut key = SealingKey::default();
        crate::mechanism::primitives::fill_random(key.as_mut())?;
        let sealer = self.sealer(&key, true, false)?;
        if let Root::Slot(slot) = &self.root {
            // The previous incarnation's master key versions are shredded with it.
            let n = slot.destroy_version_keys(&self.workspace, None)?;
            if n > 0 {
                log::info!(
                    "{}: {n} master key version key(s) of the previous initialization destroyed",
                    self.workspace
                );
            }
        }
        // The storage key is kept only inside the PIN records: under a delegated root no
        // copy is sealed by the root alone.
        let so_record = self.pin_record(PinOwner::So, so_pin, &key)?;
        let (master, _) = hierarchy::new_master(sealer.as_ref(), None, &self.workspace, 1, &self.classification)?;
        let init = TokenInit { label, so_pin: &so_record, sealed_storage_key: None, first_master: &master };
        self.store.init_token(&self.workspace, &init, &self.event("C_InitToken", None))?;
        *self.login.write() = LoginState::default();
        log::info!("{}: token initialized with label {label:?} ({})", self.workspace, sealer.describe());
        Ok(())
    }

    /// `C_Login` for `owner`. `ro_sessions` says whether read-only sessions exist (the SO
    /// may not log in then).
    pub fn login(&self, owner: PinOwner, pin: &[u8], ro_sessions: bool, session: Option<u64>) -> Result<()> {
        match self.logged_in() {
            Some(who) if who == owner => return Err(Error::UserAlreadyLoggedIn),
            Some(_) => return Err(Error::UserAnotherAlreadyLoggedIn),
            None => {}
        }
        if owner == PinOwner::So && ro_sessions {
            return Err(Error::SessionReadOnlyExists);
        }
        let Verified { key, outdated, legacy } = self.verify(owner, pin, "C_Login", session)?;
        let epoch = self.record()?.epoch;
        if legacy {
            // A token from before master key rows were MACed (and bound to the storage
            // key under a delegated root): upgraded once, by the login that can.
            self.upgrade_legacy_rows(&key)?;
        }
        if outdated {
            // Rewritten under the current KDF and format while the PIN is at hand.
            let record = self.pin_record(owner, pin, &key)?;
            let event = AuditEvent::by(
                &self.workspace,
                Self::caller(owner, session),
                "C_Login",
                Some("PIN record upgraded".into()),
            );
            self.write_pin(owner, &record, &event)?;
            log::info!("{}: {owner:?} PIN record upgraded to the current format and KDF", self.workspace);
        }
        let sealer = self.sealer(&key, false, false)?;
        let hierarchy = Arc::new(Hierarchy::new(&self.workspace, self.store.clone(), sealer, self.quorum.clone()));
        // Every row's MAC is checked now: a PIN record planted with a storage key of the
        // attacker's making logs in to nothing, and is refused here with a log line.
        hierarchy.versions()?;
        hierarchy.ensure_kek(Self::caller(owner, session))?;
        // The login takes effect only once its entry (with the reset failure count) is
        // committed: a login that cannot be audited never happens. The state lock is held
        // across that one write so a racing thread's login cannot slip in between.
        let mut state = self.login.write();
        if state.who.is_some() {
            // Another thread of this application logged in meanwhile.
            return Err(if state.who == Some(owner) {
                Error::UserAlreadyLoggedIn
            } else {
                Error::UserAnotherAlreadyLoggedIn
            });
        }
        let event = AuditEvent::by(&self.workspace, Self::caller(owner, session), "C_Login", None);
        self.store.record_login(&self.workspace, owner, true, &event)?;
        *state = LoginState { who: Some(owner), storage_key: Some(key), hierarchy: Some(hierarchy), epoch };
        Ok(())
    }

    /// `C_Logout`, or the implicit logout when the last session closes.
    pub fn logout(&self, session: Option<u64>) -> Result<()> {
        let event = self.event("C_Logout", session);
        let was = std::mem::take(&mut *self.login.write());
        if was.who.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        self.store.append_audit(&event)
    }

    /// `C_InitPIN`: the SO (logged in) sets the user PIN.
    pub fn init_pin(&self, new_pin: &[u8], session: Option<u64>) -> Result<()> {
        pin::check_len(new_pin)?;
        let key = match &*self.login.read() {
            LoginState { who: Some(PinOwner::So), storage_key: Some(key), .. } => key.clone(),
            _ => return Err(Error::UserNotLoggedIn),
        };
        let record = self.pin_record(PinOwner::User, new_pin, &key)?;
        self.write_pin(PinOwner::User, &record, &self.event("C_InitPIN", session))
    }

    /// `C_SetPIN`: changes the logged-in user's PIN, or the user PIN when nobody is.
    pub fn set_pin(&self, old_pin: &[u8], new_pin: &[u8], session: Option<u64>) -> Result<()> {
        pin::check_len(new_pin)?;
        let owner = self.logged_in().unwrap_or(PinOwner::User);
        let Verified { key, legacy, .. } = self.verify(owner, old_pin, "C_SetPIN", session)?;
        if legacy {
            // The new record is current: the rows must be too before it is written.
            self.upgrade_legacy_rows(&key)?;
        }
        let record = self.pin_record(owner, new_pin, &key)?;
        self.write_pin(owner, &record, &self.event("C_SetPIN", session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_fields_are_space_filled_and_cut_on_char_boundaries() {
        assert_eq!(&padded::<6>("ab"), b"ab    ");
        assert_eq!(&padded::<3>("abcdef"), b"abc");
        assert_eq!(&padded::<2>("é!"), b"\xc3\xa9");
        assert_eq!(&padded::<2>("aé"), b"a ");
    }

    #[test]
    fn pin_flags_follow_the_failure_count() {
        let f = |n| pin_flags(n, 3, 1, 2, 4);
        assert_eq!((f(0), f(1), f(2), f(3), f(9)), (0, 1, 3, 4, 4));
    }
}
