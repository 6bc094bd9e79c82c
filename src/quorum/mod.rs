//! `quorum/`: threshold-unlocked master keys. Each workspace's master key versions are
//! sealed under a key-encryption key (KEK, `kek.rs`). Without a quorum the root seals the
//! KEK and nothing changes for users. With one, the KEK exists only as k-of-n Shamir
//! shares sealed to custodians (`custodian.rs`); the master keys stay locked until k
//! distinct custodians approve an unlock, which writes a grant (the KEK sealed by the HSM
//! root until an expiry) that every process on the store uses until it expires or a lock
//! revokes it. Other guarded operations (destroying a version, changing the quorum,
//! re-initializing the token) each need their own approved request, used once. A request
//! may be opened ahead of its operation and cancelled (`request.rs`).
//!
//! Approvals and grants are sealed by the HSM root key, so a quorum needs a `[root]`.
//! Every approval, unlock, expiry, lock and refusal is audited.

pub mod custodian;
pub mod kek;
pub mod notify;
pub mod request;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::config::QuorumConfig;
use crate::error::{Error, Result};
use crate::mechanism::shamir::{self, Share};
use crate::root::slot::SlotRoot;
use crate::root::Sealer;
use crate::store::quorum::{Approval, EmergencyWindow, Grant, Hold, KekRecord, NewRequest, Request, RequestState};
use crate::store::{AuditEvent, Backend, Caller};
pub use kek::Kek;

/// The action of the request that unlocks the master keys.
pub const UNLOCK: &str = "unlock";
/// The action that changes the quorum (a re-split).
pub const CHANGE_QUORUM: &str = "change-quorum";
/// The action that re-initializes the token (destroying every version).
pub const INIT_TOKEN: &str = "init-token";

/// The action that lifts a legal hold.
pub const LIFT_HOLD: &str = "lift-hold";

/// The action that opens an emergency access window for `name`: the custodians approve
/// access for that person, not for whoever asks next.
pub fn emergency_action(name: &str) -> String {
    format!("emergency-access:{name}")
}

/// The action that imports a customer's key as a new master key version (BYOK).
pub const IMPORT_KEY: &str = "import-key";

/// The action that exports a recovery kit (`CKM_CV_EXPORT_KIT`).
pub const EXPORT_KIT: &str = "export-kit";

/// The action that deals a split root's secrets again over its slots, a replacement
/// HSM included (`cvault root reshare`, doc/root.md).
pub const RESHARE_ROOT: &str = "reshare-root";

/// The action that destroys master key `version`.
pub fn destroy_action(version: u32) -> String {
    format!("destroy-v{version}")
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A KEK unlocked in this process.
struct Unlocked {
    generation: u32,
    /// The grant's expiry it was opened from; `None`: unlocked for this process only.
    grant_expires: Option<i64>,
    kek: Kek,
}

/// How long a read of the KEK row and the grant serves the per-call check before it is
/// read again: a lock or re-split in another process takes effect here within this time
/// (in this process, at once). Reading both at every wrap and unwrap halved their rate.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// The KEK row and the grant as last read, for the per-call check.
struct Snapshot {
    at: std::time::Instant,
    kek: Option<KekRecord>,
    grant: Option<Grant>,
}

/// What a custodian's approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// The request approved.
    pub request: i64,
    /// Its approvals now (a repeated custodian counts once).
    pub approvals: usize,
    /// The threshold.
    pub threshold: u8,
    /// Whether this approval completed an unlock.
    pub unlocked: bool,
}

/// One workspace's quorum state in this process.
pub struct Quorum {
    workspace: String,
    store: Arc<dyn Backend>,
    slot: Option<Arc<SlotRoot>>,
    config: QuorumConfig,
    local: Mutex<Option<Unlocked>>,
    snapshot: Mutex<Option<Snapshot>>,
}

impl Quorum {
    /// The quorum of `workspace`; `slot` is the HSM root (none under a software root,
    /// where no quorum can be set up).
    pub fn new(workspace: &str, store: Arc<dyn Backend>, slot: Option<Arc<SlotRoot>>, config: QuorumConfig) -> Quorum {
        Quorum {
            workspace: workspace.to_string(),
            store,
            slot,
            config,
            local: Mutex::new(None),
            snapshot: Mutex::new(None),
        }
    }

    /// The HSM root key of the workspace, which seals shares, approvals and grants.
    pub fn hsm(&self) -> Result<Arc<dyn Sealer>> {
        let Some(slot) = &self.slot else {
            log::warn!("{}: a quorum needs a [root] HSM slot; this token has a software root", self.workspace);
            return Err(Error::MechanismInvalid);
        };
        Ok(Arc::new(slot.root_key(&self.workspace, false)?))
    }

    /// The workspace's KEK row, if the first login made it, fresh from the store.
    pub fn record(&self) -> Result<Option<KekRecord>> {
        self.store.kek(&self.workspace)
    }

    /// The KEK row and the grant for the per-call check: read again once [`RECHECK`] has
    /// passed since the last read, or after anything in this process changed them.
    fn snapshot(&self) -> Result<(Option<KekRecord>, Option<Grant>)> {
        let mut snap = self.snapshot.lock();
        if let Some(s) = snap.as_ref().filter(|s| s.at.elapsed() < RECHECK) {
            return Ok((s.kek.clone(), s.grant.clone()));
        }
        let kek = self.store.kek(&self.workspace)?;
        let grant = match &kek {
            Some(k) if k.threshold > 0 => self.store.grant(&self.workspace)?,
            _ => None,
        };
        *snap = Some(Snapshot { at: std::time::Instant::now(), kek: kek.clone(), grant: grant.clone() });
        Ok((kek, grant))
    }

    /// The KEK row as the per-call check sees it (at most [`RECHECK`] old).
    pub fn current(&self) -> Result<Option<KekRecord>> {
        Ok(self.snapshot()?.0)
    }

    /// Makes the next check read the store (this process changed the KEK or grant, or a
    /// sealed value did not open under what the snapshot said).
    pub fn refresh(&self) {
        *self.snapshot.lock() = None;
    }

    fn event(&self, by: Caller<'_>, action: &str, what: String) -> AuditEvent {
        AuditEvent::by(&self.workspace, by, action, Some(what))
    }

    /// The unlocked KEK of quorum-mode `rec`, or [`Error::Locked`]. The grant is checked
    /// at every call (as read at most [`RECHECK`] ago), so a lock or a re-split in
    /// another process takes effect here within that time.
    pub fn unlocked(&self, rec: &KekRecord) -> Result<Kek> {
        let grant = self.snapshot()?.1.filter(|g| g.generation == rec.generation);
        let mut local = self.local.lock();
        if let Some(u) = local.as_ref().filter(|u| u.generation == rec.generation) {
            match (u.grant_expires, &grant) {
                (None, _) => return Ok(u.kek.clone()),
                (Some(at), Some(g)) if g.expires_at == at && at > now() => return Ok(u.kek.clone()),
                _ => {}
            }
        }
        *local = None;
        let Some(grant) = grant else {
            return Err(Error::Locked(format!("workspace {:?}: no unlock grant", self.workspace)));
        };
        if grant.expires_at <= now() {
            let what = format!("unlock grant of KEK g{} expired", grant.generation);
            self.refresh();
            if self.store.drop_grant(
                &self.workspace,
                Some(grant.expires_at),
                &self.event(Caller::MODULE, "quorum-expiry", what),
            )? {
                log::info!("{}: the unlock grant expired; master keys are locked", self.workspace);
            }
            return Err(Error::Locked(format!("workspace {:?}: the unlock grant expired", self.workspace)));
        }
        let plain = self.hsm()?.unseal(&grant_context(&self.workspace, &grant), &grant.sealed)?;
        let kek = kek::from_bytes(&plain)?;
        if !kek::verify(&kek, &self.workspace, rec.generation, &rec.check)? {
            return Err(Error::QuorumFailed("the unlock grant does not hold the workspace's KEK"));
        }
        *local = Some(Unlocked { generation: rec.generation, grant_expires: Some(grant.expires_at), kek: kek.clone() });
        Ok(kek)
    }

    /// Locks the master keys: revokes the grant (every process) and forgets the KEK here.
    pub fn lock(&self, by: Caller<'_>) -> Result<()> {
        let had_local = self.local.lock().take().is_some();
        self.refresh();
        let dropped = self.store.drop_grant(
            &self.workspace,
            None,
            &self.event(by, "quorum-lock", "master keys locked".into()),
        )?;
        if !dropped {
            self.store.append_audit(&self.event(by, "quorum-lock", "master keys locked (no grant was live)".into()))?;
        }
        log::info!(
            "{}: master keys locked (grant revoked: {dropped}, local unlock dropped: {had_local})",
            self.workspace
        );
        // A lock is never held back by its notification; a failure is audited.
        if let Err(e) = self.notify(by, "lock", "master keys locked") {
            log::warn!("{}: the lock stands; its notification failed: {e}", self.workspace);
        }
        Ok(())
    }

    /// When the live unlock grant expires, if there is one.
    pub fn grant_expiry(&self) -> Result<Option<i64>> {
        Ok(self.store.grant(&self.workspace)?.map(|g| g.expires_at).filter(|at| *at > now()))
    }

    /// Custodian `name` approves `request` (default: the workspace's unlock, opened if
    /// none is) with `passphrase`. A wrong passphrase counts toward their lockout.
    pub fn approve(
        &self,
        name: &str,
        passphrase: &[u8],
        request: Option<i64>,
        session: Option<u64>,
    ) -> Result<Approved> {
        let rec = self.record()?.filter(|r| r.threshold > 0).ok_or_else(|| {
            log::info!("{}: custodian login, but the workspace has no quorum", self.workspace);
            Error::UserTypeInvalid
        })?;
        let hsm = self.hsm()?;
        let actor = format!("custodian:{name}");
        let by = Caller { actor: &actor, session };
        let share = self.verify_custodian(hsm.as_ref(), &rec, name, passphrase)?;
        let req = match request {
            Some(id) => self.open_request_numbered(id, &rec)?,
            None => self.request(&rec, UNLOCK, by)?,
        };
        if req.action == UNLOCK && self.unlocked(&rec).is_ok() {
            log::info!("{}: {name} approved an unlock, but the master keys are already unlocked", self.workspace);
        }
        let approval = Approval {
            custodian: name.to_string(),
            index: share.index,
            sealed_share: hsm.seal(&approval_context(&self.workspace, &req, name, share.index), &share.value)?,
            at: now(),
        };
        let before = self.store.approvals(req.id)?.len();
        let what =
            format!("request #{} ({}): approved by {name}, {} of {}", req.id, req.action, before + 1, rec.threshold);
        if !self.store.add_approval(req.id, &approval, &self.event(by, "quorum-approve", what))? {
            let what = format!("request #{} ({}): {name} approved again, counted once", req.id, req.action);
            self.store.append_audit(&self.event(by, "quorum-approve", what))?;
        }
        let approvals = self.store.approvals(req.id)?.len();
        let mut unlocked = false;
        if req.action == UNLOCK && approvals >= usize::from(rec.threshold) {
            self.complete_unlock(hsm.as_ref(), &rec, &req, by)?;
            unlocked = true;
        }
        Ok(Approved { request: req.id, approvals, threshold: rec.threshold, unlocked })
    }

    /// Checks custodian `name`'s passphrase by opening their share.
    fn verify_custodian(&self, hsm: &dyn Sealer, rec: &KekRecord, name: &str, passphrase: &[u8]) -> Result<Share> {
        let Some(c) = self.store.custodians(&self.workspace)?.into_iter().find(|c| c.name == name) else {
            log::info!("{}: no custodian named {name:?}", self.workspace);
            return Err(Error::PinIncorrect);
        };
        if self.store.reserve_custodian_attempt(&self.workspace, name, self.config.max_failed_approvals)?.is_none() {
            return Err(Error::PinLocked);
        }
        let value = custodian::open_share(hsm, &self.workspace, rec.generation, &c, passphrase)?;
        self.store.custodian_verified(&self.workspace, name)?;
        Ok(Share { index: c.index, value })
    }

    fn open_request_numbered(&self, id: i64, rec: &KekRecord) -> Result<Request> {
        let found = self.store.requests(&self.workspace)?.into_iter().find(|r| r.id == id);
        match found {
            Some(r) if r.state == RequestState::Open && r.expires_at > now() && r.generation == rec.generation => Ok(r),
            Some(r) => {
                log::info!("{}: request #{id} is {:?} or expired: it takes no approvals", self.workspace, r.state);
                Err(Error::ArgumentsBad("the request is closed or expired"))
            }
            None => {
                log::info!("{}: no request #{id}", self.workspace);
                Err(Error::ArgumentsBad("no such request"))
            }
        }
    }

    /// The open request for `action`, or a new one.
    fn request(&self, rec: &KekRecord, action: &str, by: Caller<'_>) -> Result<Request> {
        let expires = now().saturating_add(hours(self.config.approval_hours));
        let what = format!("request for {action} opened by {}", by.actor);
        let event = self.event(by, "quorum-request", what);
        let new =
            NewRequest { action, requested_by: by.actor, generation: rec.generation, now: now(), expires_at: expires };
        self.store.open_request(&self.workspace, &new, &event)
    }

    /// The KEK the approvals of `req` rebuild, proved right by its check value. A failure
    /// cancels the request, so a forged approval cannot block the workspace for long.
    fn rebuild(&self, hsm: &dyn Sealer, rec: &KekRecord, req: &Request, by: Caller<'_>) -> Result<Kek> {
        let mut shares = Vec::new();
        for a in self.store.approvals(req.id)? {
            let context = approval_context(&self.workspace, req, &a.custodian, a.index);
            shares.push(Share { index: a.index, value: hsm.unseal(&context, &a.sealed_share)? });
        }
        let rebuilt = shamir::combine(&shares, rec.threshold, kek::KEY_LEN).and_then(|b| kek::from_bytes(&b));
        let checked = match rebuilt {
            Ok(k) if kek::verify(&k, &self.workspace, rec.generation, &rec.check)? => Ok(k),
            Ok(_) => Err(Error::QuorumFailed("the shares rebuild a key that fails the KEK's check value")),
            Err(e) => Err(e),
        };
        if let Err(e) = &checked {
            log::error!("{}: request #{} ({}): {e}; the request is cancelled", self.workspace, req.id, req.action);
            let what = format!("request #{} ({}) cancelled: {e}", req.id, req.action);
            self.store.close_request(
                &self.workspace,
                req.id,
                RequestState::Cancelled,
                None,
                &self.event(by, "quorum-failed", what),
            )?;
        }
        checked
    }

    fn complete_unlock(&self, hsm: &dyn Sealer, rec: &KekRecord, req: &Request, by: Caller<'_>) -> Result<()> {
        let kek = self.rebuild(hsm, rec, req, by)?;
        self.notify(by, "unlock", &format!("request #{}: the quorum unlocks the master keys", req.id))?;
        if self.config.unlock_hours == 0 {
            let what = format!("request #{}: master keys unlocked in process {} only", req.id, std::process::id());
            self.store.close_request(
                &self.workspace,
                req.id,
                RequestState::Used,
                None,
                &self.event(by, "quorum-unlock", what),
            )?;
            *self.local.lock() = Some(Unlocked { generation: rec.generation, grant_expires: None, kek });
        } else {
            let expires_at = now().saturating_add(hours(self.config.unlock_hours));
            let mut grant = Grant { generation: rec.generation, expires_at, sealed: Vec::new() };
            grant.sealed = hsm.seal(&grant_context(&self.workspace, &grant), kek.as_ref().as_ref())?;
            let what = format!("request #{}: master keys unlocked until {expires_at} (Unix seconds)", req.id);
            self.store.close_request(
                &self.workspace,
                req.id,
                RequestState::Used,
                Some(&grant),
                &self.event(by, "quorum-unlock", what),
            )?;
        }
        self.refresh();
        log::info!("{}: quorum reached on request #{}: master keys unlocked", self.workspace, req.id);
        Ok(())
    }

    /// Passes when the quorum approved `action` (using the approval up), and otherwise
    /// opens (or finds) its request and refuses with [`Error::QuorumRequired`] naming it.
    /// Without a quorum every action passes.
    pub fn require(&self, action: &str, by: Caller<'_>) -> Result<()> {
        let Some(rec) = self.record()?.filter(|r| r.threshold > 0) else {
            return Ok(());
        };
        let req = self.request(&rec, action, by)?;
        let have = self.store.approvals(req.id)?.len();
        if have < usize::from(rec.threshold) {
            let why = format!(
                "request #{} ({action}) has {have} of {} approvals: custodians approve it with C_LoginUser \
                 (username \"NAME:{}\") or `cvault quorum approve --request {}`",
                req.id, rec.threshold, req.id, req.id
            );
            return Err(Error::QuorumRequired(why));
        }
        let hsm = self.hsm()?;
        self.rebuild(hsm.as_ref(), &rec, &req, by)?;
        let what = format!("request #{} ({action}): quorum of {have} used", req.id);
        self.store.close_request(
            &self.workspace,
            req.id,
            RequestState::Used,
            None,
            &self.event(by, "quorum-used", what),
        )
    }

    /// The shares of a new KEK at `generation`, split `k`-of-n among `enrolled` (k = 0:
    /// none, the KEK is sealed by the root instead).
    pub fn shares(
        &self,
        kek: &Kek,
        generation: u32,
        k: u8,
        enrolled: &[custodian::Enrolment],
    ) -> Result<Vec<crate::store::quorum::Custodian>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        if usize::from(k) > enrolled.len() {
            return Err(Error::TemplateInconsistent(crate::vendor::CKA_CV_THRESHOLD));
        }
        let hsm = self.hsm()?;
        let shares = shamir::split(kek.as_ref().as_ref(), k, enrolled.len())?;
        enrolled
            .iter()
            .zip(&shares)
            .map(|(e, s)| custodian::seal_share(hsm.as_ref(), &self.workspace, generation, e, s.index, &s.value))
            .collect()
    }

    /// Tells the custodians' hook about `event`; a failure is audited, and refuses the
    /// operation (before it happens) only with `notify_required`.
    pub fn notify(&self, by: Caller<'_>, event: &str, detail: &str) -> Result<()> {
        let notice = notify::Notice { event, workspace: &self.workspace, by: by.actor, detail };
        let failed = match notify::run(&self.config, &notice) {
            Ok(None) => return Ok(()),
            Ok(Some(why)) => Ok(why),
            Err(e) => Err(e),
        };
        let why = match &failed {
            Ok(why) => why.clone(),
            Err(e) => e.to_string(),
        };
        let what = format!("notification of {event} failed: {why}");
        let event = self.event(by, "quorum-notify", what).with_outcome("CKR_FUNCTION_FAILED");
        self.store.append_audit(&event)?;
        failed.map(|_| ())
    }

    /// The emergency access window, if one is open now.
    pub fn emergency(&self) -> Result<Option<EmergencyWindow>> {
        Ok(self.store.emergency(&self.workspace)?.filter(|w| w.expires_at > now()))
    }

    /// Opens an emergency access window for `name` once the quorum approved it (the
    /// first call opens the request and answers [`Error::QuorumRequired`]); returns its
    /// expiry. The window lets master key versions an audit alert blocked unwrap.
    pub fn open_emergency(&self, by: Caller<'_>, name: &str) -> Result<i64> {
        if !request::valid_person(name) {
            return Err(Error::AttributeValueInvalid(crate::vendor::CKA_CV_EMERGENCY_ACCESS));
        }
        self.require(&emergency_action(name), by)?;
        let expires_at =
            now().saturating_add(i64::try_from(self.config.emergency_minutes.saturating_mul(60)).unwrap_or(i64::MAX));
        let window =
            EmergencyWindow { name: name.to_string(), opened_by: by.actor.to_string(), opened_at: now(), expires_at };
        let what = format!("emergency access for {name} until {expires_at} (Unix seconds)");
        self.notify(by, "emergency-access", &what)?;
        self.store.set_emergency(&self.workspace, Some(&window), &self.event(by, "emergency-access", what))?;
        log::warn!("{}: emergency access open for {name} until {expires_at}", self.workspace);
        Ok(expires_at)
    }

    /// Closes the emergency access window early.
    pub fn close_emergency(&self, by: Caller<'_>) -> Result<()> {
        if self.store.emergency(&self.workspace)?.is_none() {
            return Ok(());
        }
        let event = self.event(by, "emergency-access", "emergency access closed".into());
        self.store.set_emergency(&self.workspace, None, &event)
    }

    /// Audits one use of a blocked master key version inside the emergency window; the
    /// entry is durable before the key is used.
    pub fn audit_emergency_use(&self, window: &EmergencyWindow, version: u32, blocked: &str) -> Result<()> {
        let what = format!("wmk v{version} opened for {}'s emergency access (blocked: {blocked})", window.name);
        let by = Caller { actor: "module", session: None };
        self.store.append_audit(&self.event(by, "emergency-unwrap", what))
    }

    /// The workspace's legal hold, if one stands.
    pub fn hold(&self) -> Result<Option<Hold>> {
        self.store.hold(&self.workspace)
    }

    /// Refuses `what` while a legal hold stands.
    pub fn check_not_held(&self, what: &str) -> Result<()> {
        match self.hold()? {
            None => Ok(()),
            Some(h) => Err(Error::LegalHold(format!(
                "workspace {:?} is held since {} by {} ({}): {what} refused",
                self.workspace, h.set_at, h.set_by, h.reason
            ))),
        }
    }

    /// Sets a legal hold (the caller checked it is the SO).
    pub fn set_hold(&self, by: Caller<'_>, reason: &str) -> Result<()> {
        let hold = Hold { set_by: by.actor.to_string(), reason: reason.to_string(), set_at: now() };
        let what = format!("legal hold set: {reason}");
        self.notify(by, "legal-hold", &what)?;
        self.store.set_hold(&self.workspace, Some(&hold), &self.event(by, "legal-hold", what))?;
        log::info!("{}: legal hold set ({reason})", self.workspace);
        Ok(())
    }

    /// Lifts the legal hold: with a quorum, only with an approved `lift-hold` request.
    pub fn lift_hold(&self, by: Caller<'_>) -> Result<()> {
        if self.hold()?.is_none() {
            return Ok(());
        }
        self.require(LIFT_HOLD, by)?;
        self.notify(by, "legal-hold-lifted", "legal hold lifted")?;
        self.store.set_hold(&self.workspace, None, &self.event(by, "legal-hold", "legal hold lifted".into()))?;
        log::info!("{}: legal hold lifted", self.workspace);
        Ok(())
    }

    /// Forgets any KEK unlocked in this process (a re-split made it stale).
    pub fn forget(&self) {
        *self.local.lock() = None;
        self.refresh();
    }
}

fn hours(h: u64) -> i64 {
    i64::try_from(h.saturating_mul(3600)).unwrap_or(i64::MAX)
}

/// A grant's sealing context binds its workspace, generation and expiry.
fn grant_context(workspace: &str, grant: &Grant) -> Vec<u8> {
    format!("kek-grant:{workspace}:g{}:until:{}", grant.generation, grant.expires_at).into_bytes()
}

/// An approval's sealing context binds the request, its action and the custodian.
fn approval_context(workspace: &str, req: &Request, custodian: &str, index: u8) -> Vec<u8> {
    format!("kek-approval:{workspace}:g{}:r{}:{}:{custodian}:{index}", req.generation, req.id, req.action).into_bytes()
}
