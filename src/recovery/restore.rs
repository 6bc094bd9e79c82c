//! Restoration from a recovery kit after the loss of the root token (`cvault recover`,
//! `doc/recovery.md`): the store survived (or was restored from a backup) but every value
//! the lost root sealed, the storage key, the KEK and each master key row, no longer opens.
//!
//! The steps, each idempotent so that a run killed at any point is finished by the next:
//!
//! 1. [`install`]: new PIN records (the SO and user PINs the new administrator sets) over a
//!    new storage key sealed by the new root, unless the records already open under the
//!    new root (a previous run wrote them); then every master key row re-sealed from the
//!    kit under a new KEK sealed by the new root (one transaction, with the KEK: custodian
//!    shares of the old KEK are dropped, a quorum is split again after recovery), unless
//!    the KEK already opens under the new root;
//! 2. [`invalidate_sessions`]: the token epoch is bumped ([`Backend::bump_epoch`]): every
//!    login made before the recovery, in any process, is refused at its next call that
//!    uses the master keys (`Token::hierarchy`); a rerun bumps it again, harmlessly;
//! 3. [`rotate`]: a new active version, unless one newer than the kit's exists;
//! 4. [`rewrap`]: every stored DEK moved to the active version in batches (the store's
//!    cursor job: what is at the active version is skipped, so a rerun resumes).
//!
//! [`check_kit_opens_store`] runs before any of them: a kit that does not open the
//! store's DEKs changes nothing. Then, still before any key is touched, [`carry_audit`]
//! carries the audit log across the root's loss: a succession entry naming the lost root's
//! checkpoint keys and its last checkpoint, covered at once by a checkpoint the new root
//! signs (`audit/succession.rs`); [`seal_audit`] signs one more over the last step, so
//! `cvault audit verify` vouches for the whole restoration.
//!
//! What the lost root alone protected is gone for good and stays unreadable: token objects
//! other than stored DEKs (sealed under the lost storage key) and the old PINs.

use std::sync::Arc;

use zeroize::Zeroizing;

use cryptoki_sys::CKO_SECRET_KEY;

use crate::audit::checkpoint::{self, Checkpointer, SuccessionDue, TrustedKeys};
use crate::audit::succession::{self, Succession};
use crate::config::{AuditConfig, QuorumConfig};
use crate::error::{Error, Result};
use crate::hierarchy::{self, record, Hierarchy};
use crate::mechanism::aes_gcm::GcmKey;
use crate::quorum::{kek, Quorum};
use crate::recovery::kit::KitContents;
use crate::root::slot::SlotRoot;
use crate::root::{BoundRoot, Sealer};
use crate::store::quorum::KekRecord;
use crate::store::sealed::SealingKey;
use crate::store::{AuditEvent, Backend, Caller, IndexQuery, Lifecycle, MasterRecord, PinOwner};
use crate::token::pin;

/// Who recovery's audit entries name.
pub const RECOVERY: Caller<'static> = Caller { actor: "recovery", session: None };

/// What [`install`] did: `false` fields were found done by an earlier run.
pub struct Installed {
    /// The hierarchy under the new root, as a logged-in user would hold it.
    pub hierarchy: Arc<Hierarchy>,
    /// The PIN records were (re)written.
    pub pins_written: bool,
    /// How many master key versions were re-sealed from the kit (`None`: already done).
    pub resealed: Option<usize>,
}

/// The workspace under the new root: the store, the root, and what the config says.
pub struct Target<'a> {
    /// The surviving (or restored) store.
    pub store: Arc<dyn Backend>,
    /// The new root token.
    pub slot: Arc<SlotRoot>,
    /// The workspace's name.
    pub workspace: &'a str,
    /// Its `[quorum]` section.
    pub quorum: QuorumConfig,
    /// The `[audit]` section (which signatures the new root's checkpoints carry).
    pub audit: AuditConfig,
}

impl Target<'_> {
    fn event(&self, action: &str, what: String) -> AuditEvent {
        AuditEvent::by(self.workspace, RECOVERY, action, Some(what))
    }

    /// Registers the PIN MAC under the new root, as the module does when it opens the token.
    fn register_pins_mac(&self) {
        let (slot, ws) = (self.slot.clone(), self.workspace.to_string());
        self.store
            .set_pins_mac(self.workspace, Arc::new(move |rec| slot.pins_mac(&ws, &crate::token::pins_data(&ws, rec))));
    }

    /// The storage key both PIN records open under the new root to, with the PINs given
    /// (an earlier run wrote them both), or `None`: they are the lost root's, only one of
    /// them was written before a crash, or these are not the PINs that run set.
    fn pins_installed(&self, so_pin: &[u8], user_pin: &[u8]) -> Result<Option<SealingKey>> {
        let rec = self.store.token(self.workspace)?;
        let expected = self.slot.pins_mac(self.workspace, &crate::token::pins_data(self.workspace, &rec))?;
        if !rec.pins_mac.as_deref().is_some_and(|mac| crate::store::sealed::mac_eq(mac, &expected)) {
            return Ok(None);
        }
        let so = rec.so_pin.as_deref().and_then(|r| self.storage_key_from_pin(PinOwner::So, so_pin, r).ok());
        let user = rec.user_pin.as_deref().and_then(|r| self.storage_key_from_pin(PinOwner::User, user_pin, r).ok());
        Ok(match (so, user) {
            (Some(a), Some(b)) if *a == *b => Some(b),
            _ => None,
        })
    }

    /// The storage key a PIN record opens under the new root.
    fn storage_key_from_pin(&self, owner: PinOwner, pin_value: &[u8], record: &[u8]) -> Result<SealingKey> {
        let pin::Opened::RootSealed(blob) = pin::unlock(self.workspace, owner, pin_value, record)?.opened else {
            return Err(Error::Integrity("the PIN record is not sealed by a root"));
        };
        let plain = self
            .slot
            .root_key(self.workspace, false)?
            .unseal(&hierarchy::storage_key_context(self.workspace), &blob)?;
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| Error::Integrity("storage key length"))?;
        Ok(Zeroizing::new(key))
    }

    /// Refuses, before anything is written, a kit that does not cover every version that
    /// still unwraps: a stale kit, or a store an earlier recovery already rotated (then
    /// only the PINs that recovery set continue it).
    fn check_covered(&self, kit: &KitContents) -> Result<()> {
        for m in self.store.masters(self.workspace)? {
            if m.sealed.is_some() && m.state.unwraps() && !kit.versions.iter().any(|v| v.version == m.version) {
                return Err(Error::MasterKey(format!(
                    "master key v{} ({:?}) is not in the kit: the kit is stale, or an earlier recovery finished \
                     and rotated (then give the SO and user PINs it set); nothing changed",
                    m.version, m.state
                )));
            }
        }
        Ok(())
    }

    fn sealer(&self, key: &SealingKey) -> Result<BoundRoot> {
        Ok(BoundRoot {
            root: self.slot.root_key(self.workspace, false)?,
            workspace: self.workspace.to_string(),
            storage_key: key.clone(),
            legacy_ok: false,
        })
    }

    /// Writes SO and user PIN records over a fresh storage key sealed by the new root.
    fn write_pins(&self, so_pin: &[u8], user_pin: &[u8]) -> Result<SealingKey> {
        let mut key = SealingKey::default();
        crate::mechanism::primitives::fill_random(key.as_mut())?;
        let blob = self
            .slot
            .root_key(self.workspace, false)?
            .seal(&hierarchy::storage_key_context(self.workspace), key.as_ref())?;
        for (owner, pin_value, name) in [(PinOwner::So, so_pin, "SO"), (PinOwner::User, user_pin, "user")] {
            let record = pin::make(self.workspace, owner, pin_value, pin::Payload::RootSealed(&blob))?;
            let what = format!("{name} PIN record re-made under the new root (the storage key is new)");
            self.store.set_pin(self.workspace, owner, &record, &self.event("recover-pins", what))?;
        }
        Ok(key)
    }

    /// Whether the current KEK opens under `sealer` (a previous run installed it).
    fn kek_installed(&self, sealer: &dyn Sealer) -> Result<bool> {
        let Some(rec) = self.store.kek(self.workspace)? else {
            return Ok(false);
        };
        let Some(sealed) = rec.sealed.as_deref().filter(|_| rec.threshold == 0) else {
            return Ok(false);
        };
        let Ok(bytes) = sealer.unseal(&kek::context(self.workspace, rec.generation), sealed) else {
            return Ok(false);
        };
        let k = kek::from_bytes(&bytes)?;
        kek::verify(&k, self.workspace, rec.generation, &rec.check)
    }

    /// Every master key row re-sealed from the kit under a new KEK, in one transaction.
    fn reseal_from_kit(&self, sealer: &dyn Sealer, kit: &KitContents) -> Result<usize> {
        let old = self.store.kek(self.workspace)?;
        let generation = old.as_ref().map_or(1, |k| k.generation + 1);
        let new = kek::generate()?;
        let mut rows = Vec::new();
        for m in self.store.masters(self.workspace)? {
            rows.push(resealed_row(sealer, &new, self.workspace, kit, m)?);
        }
        let rec = KekRecord {
            generation,
            threshold: 0,
            sealed: Some(sealer.seal(&kek::context(self.workspace, generation), new.as_ref().as_ref())?),
            check: kek::check_value(&new, self.workspace, generation)?,
        };
        let sealed = rows.iter().filter(|m| m.sealed.is_some()).count();
        let what = format!(
            "KEK g{generation} sealed by the new root; {sealed} master key version(s) re-sealed from kit {}, \
             {} row(s) MACed anew",
            kit.header.kit_id,
            rows.len()
        );
        let event = self.event("recover-hierarchy", what);
        if !self.store.replace_kek(self.workspace, old.map(|k| k.generation), &rec, &[], &rows, &event)? {
            return Err(Error::ObjectContended);
        }
        Ok(sealed)
    }
}

/// One master key row under the new root: its key from the kit, or (a version the kit
/// does not cover) refused while it still unwraps, its dead sealed value dropped once
/// retired; MACed anew under the new storage key either way.
fn resealed_row(
    sealer: &dyn Sealer,
    new: &kek::Kek,
    workspace: &str,
    kit: &KitContents,
    mut m: MasterRecord,
) -> Result<MasterRecord> {
    match kit.versions.iter().find(|v| v.version == m.version) {
        Some(v) => {
            m.sealed = Some(hierarchy::seal_master(sealer, Some(new), workspace, m.version, v.key.as_ref())?);
        }
        None if m.sealed.is_some() && m.state.unwraps() => {
            return Err(Error::MasterKey(format!(
                "the kit does not cover master key v{} ({:?}): it is stale; use a kit exported after v{} was made",
                m.version, m.state, m.version
            )));
        }
        None => {
            if m.sealed.take().is_some() {
                log::warn!("{workspace}: retired master key v{} is not in the kit: its value is gone", m.version);
            }
        }
    }
    m.mac = Some(hierarchy::master_mac(sealer, workspace, &m)?);
    Ok(m)
}

/// Step 1: installs the hierarchy from `kit` under the new root, with new SO and user PINs.
pub fn install(t: &Target<'_>, kit: &KitContents, so_pin: &[u8], user_pin: &[u8]) -> Result<Installed> {
    pin::check_len(so_pin)?;
    pin::check_len(user_pin)?;
    if kit.header.workspace != t.workspace {
        return Err(Error::MasterKey(format!("the kit is for {:?}, not {:?}", kit.header.workspace, t.workspace)));
    }
    // The workspace's root key in the new token; made by the first run.
    t.slot.root_key(t.workspace, true)?;
    t.register_pins_mac();
    let (key, pins_written) = match t.pins_installed(so_pin, user_pin)? {
        Some(key) => (key, false),
        None => {
            // New PINs mean a new storage key, so every row is re-sealed from the kit next:
            // only if the kit covers them all.
            t.check_covered(kit)?;
            (t.write_pins(so_pin, user_pin)?, true)
        }
    };
    let sealer = t.sealer(&key)?;
    let resealed = match t.kek_installed(&sealer)? {
        true => None,
        false => Some(t.reseal_from_kit(&sealer, kit)?),
    };
    let quorum = Arc::new(Quorum::new(t.workspace, t.store.clone(), Some(t.slot.clone()), t.quorum.clone()));
    let hierarchy = Arc::new(Hierarchy::new(t.workspace, t.store.clone(), Arc::new(sealer), quorum));
    // Every row must now verify and every kit version open, or the install is not done.
    hierarchy.versions()?;
    for v in &kit.versions {
        if hierarchy.versions()?.iter().any(|m| m.version == v.version && m.state.unwraps()) {
            hierarchy.key(v.version)?;
        }
    }
    Ok(Installed { hierarchy, pins_written, resealed })
}

/// What [`carry_audit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// No checkpoint needed carrying: none yet, or the newest is the new root's.
    Nothing,
    /// A succession entry was appended (now at `seq`) and the new root signed over it.
    Appended {
        /// The entry's sequence number.
        seq: i64,
        /// What it names.
        succession: Succession,
    },
    /// An earlier run's entry (at this seq) was found unsigned; the new root signed it.
    Signed(i64),
}

/// The audit keys the new root already holds (an empty key where it has none yet: it then
/// matches no signature).
fn new_root_keys(slot: &SlotRoot) -> Result<(Vec<u8>, Vec<u8>)> {
    Ok((slot.audit_public_key()?.unwrap_or_default(), slot.audit_mldsa_public_key()?.unwrap_or_default()))
}

/// Before any key is touched: carries the audit log across the loss of the root. When the
/// store's newest checkpoint is not the new root's, a succession entry names the lost
/// root's checkpoint keys and last checkpoint, and the new root signs a checkpoint over it
/// at once, so `cvault audit verify` accepts the old checkpoints under the named keys.
/// Refused, with nothing written, when the log does not verify on its own under those
/// keys: recovery would vouch for a forgery. A rerun finds the entry and only signs.
pub fn carry_audit(t: &Target<'_>) -> Result<Carried> {
    let rows = t.store.audit_rows()?;
    let checkpoints = t.store.checkpoints()?;
    // A run killed inside the new root's first key pair generation left half a pair;
    // nothing was signed with it, so it is made again rather than refused for ever.
    let carried_by_none =
        |k: &[u8]| !checkpoints.iter().any(|c| c.ecdsa.as_ref().is_some_and(|s| s.public_key.as_slice() == k));
    t.slot.drop_orphan_audit_key(&carried_by_none)?;
    let (ecdsa, mldsa) = new_root_keys(&t.slot)?;
    let trusted = TrustedKeys { ecdsa: Some(&ecdsa), mldsa: Some(&mldsa) };
    let due = checkpoint::succession_due(&rows, &checkpoints, &trusted).map_err(|verdict| {
        Error::Store(format!(
            "the audit log does not verify under the lost root's checkpoint keys ({}); recovery will not \
             vouch for it: restore the store from a backup first",
            verdict_text(&verdict)
        ))
    })?;
    let carried = match due {
        SuccessionDue::Nothing => return Ok(Carried::Nothing),
        SuccessionDue::Sign(seq) => Carried::Signed(seq),
        SuccessionDue::Append(succession) => {
            let what = succession.to_text();
            t.store.append_audit(&AuditEvent::by(t.workspace, RECOVERY, succession::ACTION, Some(what)))?;
            let seq = t.store.audit_head()?.map_or(0, |(seq, _)| seq);
            Carried::Appended { seq, succession }
        }
    };
    seal_audit(t)?;
    Ok(carried)
}

/// A checkpoint by the new root over the chain's head (nothing when the newest already
/// covers it), so the entries recovery wrote are vouched for without waiting for the
/// module's next checkpoint.
pub fn seal_audit(t: &Target<'_>) -> Result<()> {
    Checkpointer::new(t.slot.clone(), &t.audit).checkpoint(t.store.as_ref())
}

fn verdict_text(v: &crate::audit::Verdict) -> String {
    match v {
        crate::audit::Verdict::Broken { seq, defect } => format!("entry {seq}: {defect}"),
        crate::audit::Verdict::Intact { .. } => "intact".into(),
    }
}

/// Step 2: a new active version, unless a version newer than the kit's newest exists
/// (an earlier run made it). Returns the new version, or `None`.
pub fn rotate(h: &Hierarchy, kit: &KitContents, classification: &str) -> Result<Option<u32>> {
    let newest_in_kit = kit.versions.iter().map(|v| v.version).max().unwrap_or(0);
    if h.versions()?.iter().any(|m| m.version > newest_in_kit && m.state == Lifecycle::Active) {
        return Ok(None);
    }
    h.rotate(RECOVERY, classification).map(Some)
}

/// How many stored DEKs are under a version older than `target`.
pub fn pending(store: &dyn Backend, workspace: &str, h: &Hierarchy, target: u32) -> Result<u64> {
    let mut n = 0;
    for m in h.versions()?.iter().filter(|m| m.version < target) {
        n += store.records_under(workspace, m.version)?;
    }
    Ok(n)
}

/// Step 3: moves every stored DEK to the active version, `batch` per transaction.
pub fn rewrap(h: &Hierarchy, batch: usize, progress: &mut dyn FnMut(usize, u32)) -> Result<usize> {
    h.rewrap_stored(batch.max(1), progress)
}

/// Step 4: bumps the token epoch so every earlier session and login is refused.
pub fn invalidate_sessions(t: &Target<'_>) -> Result<i64> {
    let event = t.event("recover-epoch", "token epoch bumped: every earlier session and login is void".into());
    t.store.bump_epoch(t.workspace, &event)
}

/// Before anything is written: opens up to `sample` stored DEKs still under a version the
/// kit covers with the kit's keys, so a kit from another hierarchy (or a store from
/// another workspace) is refused while the store is untouched. Returns how many opened.
pub fn check_kit_opens_store(store: &dyn Backend, workspace: &str, kit: &KitContents, sample: usize) -> Result<usize> {
    let query = IndexQuery { class: Some(CKO_SECRET_KEY), ..IndexQuery::default() };
    let covered: Vec<_> = store
        .find_objects(workspace, &query)?
        .into_iter()
        .filter(|(_, r)| {
            r.sealed.is_some() && r.master_version.is_some_and(|v| kit.versions.iter().any(|k| k.version == v))
        })
        .collect();
    if covered.is_empty() || sample == 0 {
        return Ok(0);
    }
    let step = covered.len().div_ceil(sample).max(1);
    let mut opened = 0;
    for (id, r) in covered.iter().step_by(step) {
        let blob = r.sealed.as_deref().unwrap_or_default();
        let header = record::parse(blob)?;
        let ok = kit.versions.iter().find(|k| k.version == header.version).is_some_and(|k| {
            GcmKey::new(k.key.as_ref(), record::TAG_LEN)
                .and_then(|key| record::open(&key, blob, &header, r.unique_id.as_bytes()))
                .is_ok()
        });
        if !ok {
            return Err(Error::MasterKey(format!(
                "stored DEK #{} (under v{}) does not open with the kit's key: the kit is not this store's hierarchy",
                id.0, header.version
            )));
        }
        opened += 1;
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::primitives::aes_check_value;
    use crate::recovery::kit::KitVersion;
    use crate::root::SoftRoot;

    fn kit(versions: &[(u32, u8)]) -> KitContents {
        let mut header = crate::recovery::format::tests::header();
        header.versions.clear();
        let versions = versions
            .iter()
            .map(|(n, b)| {
                let key = Zeroizing::new([*b; 32]);
                let kcv = aes_check_value(key.as_ref()).expect("kcv");
                KitVersion { version: *n, state: Lifecycle::DecryptOnly, created: 0, kcv, key }
            })
            .collect();
        KitContents { header, versions }
    }

    fn row(version: u32, state: Lifecycle) -> MasterRecord {
        MasterRecord {
            version,
            state,
            created_at: 1_700_000_000,
            classification: "internal".into(),
            sealed: Some(vec![0xAA; 80]),
            blocked: None,
            mac: Some(vec![0; 32]),
            origin: None,
        }
    }

    /// A covered row is sealed under the new KEK and root so that it opens to the kit's
    /// key, with a MAC the new storage key verifies.
    #[test]
    fn a_covered_row_opens_to_the_kit_key_under_the_new_root() {
        let root = SoftRoot(Zeroizing::new([3; 32]));
        let new = kek::generate().expect("kek");
        let m = resealed_row(&root, &new, "eng", &kit(&[(1, 7)]), row(1, Lifecycle::DecryptOnly)).expect("resealed");
        let context = hierarchy::master_context("eng", 1);
        let inner = root.unseal_version(1, &context, m.sealed.as_deref().expect("sealed")).expect("root opens");
        assert_eq!(kek::open_master(&new, &context, &inner).expect("kek opens").as_slice(), &[7; 32]);
        assert_eq!(m.mac, Some(hierarchy::master_mac(&root, "eng", &m).expect("mac")));
    }

    /// A version the kit lacks: refused while it unwraps (a stale kit), its unopenable
    /// value dropped once retired (the row stays, MACed anew).
    #[test]
    fn an_uncovered_row_is_refused_while_it_unwraps_and_emptied_once_retired() {
        let root = SoftRoot(Zeroizing::new([3; 32]));
        let new = kek::generate().expect("kek");
        let stale = resealed_row(&root, &new, "eng", &kit(&[(1, 7)]), row(2, Lifecycle::Active));
        assert!(matches!(stale, Err(Error::MasterKey(ref why)) if why.contains("stale")), "{:?}", stale.err());
        let m = resealed_row(&root, &new, "eng", &kit(&[(2, 7)]), row(1, Lifecycle::Retired)).expect("retired");
        assert!(m.sealed.is_none());
        assert_eq!(m.mac, Some(hierarchy::master_mac(&root, "eng", &m).expect("mac")));
    }
}
