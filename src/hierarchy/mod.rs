//! `hierarchy/`: the workspace master key (WMK) versions and the wrap records they seal.
//!
//! ```text
//! root key (underlying slot, or the software root)
//!   └─ KEK           sealed by the root, or split among custodians (`quorum/`)
//!        └─ WMK v1..vN    stored only sealed by the KEK, then the root (`master_keys`)
//!             └─ DEKs     held by applications (or the store) only as wrap records
//! ```
//!
//! The newest version is active: it alone makes new records. Older versions unwrap until
//! retired; a version may be retired only when no stored record needs it, and destroyed
//! (its sealed value deleted) only once retired. Plaintext WMKs exist only in a
//! [`Hierarchy`], which lives in a user's login state and is zeroized with it.

pub mod record;
pub mod share;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::mechanism::aes_gcm::GcmKey;
use crate::quorum::custodian::Enrolment;
use crate::quorum::{self, kek, Kek, Quorum};
use crate::root::Sealer;
use crate::store::quorum::KekRecord;
use crate::store::{AuditEvent, Backend, Caller, Lifecycle, MasterRecord, ObjectId};

/// A plaintext master key, prepared for sealing and opening records (its AES key
/// schedule made once per version and login); zeroized when the last reference drops.
pub type MasterKey = Arc<GcmKey>;

/// The context a master key version is sealed under: bound to workspace and version.
pub fn master_context(workspace: &str, version: u32) -> Vec<u8> {
    format!("wmk:{workspace}:v{version}").into_bytes()
}

/// The context the storage key is sealed under by a delegated root.
pub fn storage_key_context(workspace: &str) -> Vec<u8> {
    format!("storage-key:{workspace}").into_bytes()
}

/// The MAC of a master key row: every field and the workspace, under the sealer's MAC key
/// (derived from the storage key), so a state, block or sealed value edited in the store
/// file is refused.
pub fn master_mac(root: &dyn Sealer, workspace: &str, m: &MasterRecord) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut field = |bytes: &[u8]| {
        data.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        data.extend_from_slice(bytes);
    };
    field(workspace.as_bytes());
    field(&m.version.to_be_bytes());
    field(&m.state.code().to_be_bytes());
    field(&m.created_at.to_be_bytes());
    field(m.classification.as_bytes());
    match &m.sealed {
        Some(sealed) => field(&[&[1u8][..], sealed].concat()),
        None => field(&[0]),
    }
    match &m.blocked {
        Some(why) => field(&[&[1u8][..], why.as_bytes()].concat()),
        None => field(&[0]),
    }
    // Only an imported version has an origin: rows from before the column keep their MAC,
    // and the length prefixes keep the two encodings apart.
    if let Some(origin) = &m.origin {
        field(origin.as_bytes());
    }
    Ok(root.mac(b"master-key-row", &data)?.to_vec())
}

/// Checks every row's MAC; a row without one or with a wrong one is refused as corrupt.
fn verified(root: &dyn Sealer, workspace: &str, rows: Vec<MasterRecord>) -> Result<Vec<MasterRecord>> {
    for m in &rows {
        let ok = match &m.mac {
            Some(mac) => crate::store::sealed::mac_eq(mac, &master_mac(root, workspace, m)?),
            None => false,
        };
        if !ok {
            log::error!(
                "{workspace}: master key v{} row fails its MAC: edited in the store file, or read under another \
                 storage key (a planted PIN record?)",
                m.version
            );
            return Err(Error::Integrity("a master key row fails its MAC"));
        }
    }
    Ok(rows)
}

/// Upgrades the master key rows written before rows were MACed and (with a delegated
/// root) before the root sealed them bound to the storage key: `root` must accept the
/// legacy blobs. Only the login through a legacy PIN record calls this: a token whose
/// PIN records are current has every row MACed, so a row stripped of its MAC is refused.
pub fn upgrade_legacy_rows(root: &dyn Sealer, store: &dyn Backend, workspace: &str) -> Result<usize> {
    let mut upgraded = Vec::new();
    for mut m in store.masters(workspace)? {
        if m.mac.is_some() {
            continue;
        }
        if let Some(sealed) = &m.sealed {
            let context = master_context(workspace, m.version);
            let plain = root.unseal_version(m.version, &context, sealed)?;
            m.sealed = Some(root.seal_version(m.version, &context, &plain)?);
        }
        m.mac = Some(master_mac(root, workspace, &m)?);
        upgraded.push(m);
    }
    if !upgraded.is_empty() {
        let what = format!("{} master key row(s) bound to the storage key and MACed", upgraded.len());
        store.reseal_masters(
            workspace,
            &upgraded,
            &AuditEvent::by(workspace, Caller::MODULE, "upgrade", Some(what)),
        )?;
        log::info!("{workspace}: {} legacy master key row(s) upgraded", upgraded.len());
    }
    Ok(upgraded.len())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What the root seals for master key bytes `key`: under the KEK when there is one
/// (a token's first version has none until its first login makes it).
pub(crate) fn seal_master(
    root: &dyn Sealer,
    kek: Option<&Kek>,
    workspace: &str,
    version: u32,
    key: &[u8],
) -> Result<Vec<u8>> {
    let context = master_context(workspace, version);
    match kek {
        Some(k) => root.seal_version(version, &context, &kek::seal_master(k, &context, key)?),
        None => root.seal_version(version, &context, key),
    }
}

/// Opens a master key row's sealed value through the root and, if it has one, the KEK.
fn open_master(
    root: &dyn Sealer,
    kek: Option<&Kek>,
    workspace: &str,
    version: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let context = master_context(workspace, version);
    let inner = root.unseal_version(version, &context, sealed)?;
    match (kek, kek::is_bare(&inner)) {
        (None, true) => Ok(inner),
        (Some(k), false) => kek::open_master(k, &context, &inner),
        (Some(_), true) => {
            log::error!("{workspace}: master key v{version} is not sealed under the workspace KEK (a planted row?)");
            Err(Error::Integrity("a master key row is not sealed under the workspace KEK"))
        }
        (None, false) => Err(Error::Integrity("a master key row is sealed under a KEK the store does not hold")),
    }
}

/// A fresh master key version, sealed by `root` (under `kek`, once the workspace has
/// one): the record to store and the key.
pub fn new_master(
    root: &dyn Sealer,
    kek: Option<&Kek>,
    workspace: &str,
    version: u32,
    classification: &str,
) -> Result<(MasterRecord, MasterKey)> {
    let mut key = Zeroizing::new([0u8; 32]);
    crate::mechanism::primitives::fill_random(key.as_mut())?;
    let sealed = seal_master(root, kek, workspace, version, key.as_ref())?;
    let prepared = Arc::new(GcmKey::new(key.as_ref(), record::TAG_LEN)?);
    let mut record = MasterRecord {
        version,
        state: Lifecycle::Active,
        created_at: now(),
        classification: classification.to_string(),
        sealed: Some(sealed),
        blocked: None,
        mac: None,
        origin: None,
    };
    record.mac = Some(master_mac(root, workspace, &record)?);
    Ok((record, prepared))
}

/// A workspace's master keys as a logged-in user holds them.
pub struct Hierarchy {
    workspace: String,
    store: Arc<dyn Backend>,
    root: Arc<dyn Sealer>,
    quorum: Arc<Quorum>,
    unsealed: Mutex<BTreeMap<u32, MasterKey>>,
    /// The KEK of a workspace without a quorum, by generation, once unsealed.
    root_kek: Mutex<Option<(u32, Kek)>>,
}

impl Hierarchy {
    /// The hierarchy of `workspace` under `root` and `quorum`; keys unseal on first use.
    pub fn new(workspace: &str, store: Arc<dyn Backend>, root: Arc<dyn Sealer>, quorum: Arc<Quorum>) -> Hierarchy {
        Hierarchy {
            workspace: workspace.to_string(),
            store,
            root,
            quorum,
            unsealed: Mutex::new(BTreeMap::new()),
            root_kek: Mutex::new(None),
        }
    }

    /// The workspace's quorum.
    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// The KEK the master keys are sealed under now (`None`: the workspace has none yet),
    /// or [`Error::Locked`] while a quorum has not unlocked them: then every key unsealed
    /// in this hierarchy is forgotten too.
    fn kek(&self) -> Result<Option<(KekRecord, Kek)>> {
        let Some(rec) = self.quorum.current()? else {
            return Ok(None);
        };
        if rec.threshold > 0 {
            return match self.quorum.unlocked(&rec) {
                Ok(k) => Ok(Some((rec, k))),
                Err(e) => {
                    self.unsealed.lock().clear();
                    Err(e)
                }
            };
        }
        if let Some((gen, k)) = self.root_kek.lock().as_ref() {
            if *gen == rec.generation {
                return Ok(Some((rec, k.clone())));
            }
        }
        let sealed = rec.sealed.as_deref().ok_or(Error::Integrity("a KEK row without a quorum has no sealed KEK"))?;
        let k = kek::from_bytes(&self.root.unseal(&kek::context(&self.workspace, rec.generation), sealed)?)
            .map_err(|_| Error::Integrity("the sealed KEK has the wrong length"))?;
        if !kek::verify(&k, &self.workspace, rec.generation, &rec.check)? {
            return Err(Error::Integrity("the KEK fails its check value"));
        }
        *self.root_kek.lock() = Some((rec.generation, k.clone()));
        Ok(Some((rec, k)))
    }

    /// Every master key row with a sealed value, re-sealed from `old` (none: bare rows)
    /// to `new`, with new MACs.
    fn resealed(&self, old: Option<&Kek>, new: &Kek) -> Result<Vec<MasterRecord>> {
        let mut rows = Vec::new();
        for mut m in self.versions()? {
            let Some(sealed) = &m.sealed else { continue };
            let plain = open_master(self.root.as_ref(), old, &self.workspace, m.version, sealed)?;
            m.sealed = Some(seal_master(self.root.as_ref(), Some(new), &self.workspace, m.version, &plain)?);
            m.mac = Some(master_mac(self.root.as_ref(), &self.workspace, &m)?);
            rows.push(m);
        }
        Ok(rows)
    }

    /// Makes the workspace's KEK if it has none (a new token, or a store from before the
    /// KEK), sealed by the root, and re-seals every master key row under it in the same
    /// transaction. Nothing changes for users: the root alone still opens the KEK.
    pub fn ensure_kek(&self, by: Caller<'_>) -> Result<()> {
        if self.quorum.record()?.is_some() {
            return Ok(());
        }
        let new = kek::generate()?;
        let rows = self.resealed(None, &new)?;
        let rec = KekRecord {
            generation: 1,
            threshold: 0,
            sealed: Some(self.root.seal(&kek::context(&self.workspace, 1), new.as_ref().as_ref())?),
            check: kek::check_value(&new, &self.workspace, 1)?,
        };
        let what = format!("KEK g1 made; {} master key row(s) sealed under it", rows.len());
        let event = AuditEvent::by(&self.workspace, by, "quorum-kek", Some(what));
        if self.store.replace_kek(&self.workspace, None, &rec, &[], &rows, &event)? {
            log::info!("{}: KEK made; {} master key row(s) re-sealed under it", self.workspace, rows.len());
        }
        self.quorum.refresh();
        Ok(())
    }

    /// A new KEK, split `k`-of-n among `enrolled` (k = 0: sealed by the root), with every
    /// master key row re-sealed under it and old shares made useless. Changing an
    /// existing quorum needs its approval. Returns the new KEK generation.
    pub fn split(&self, by: Caller<'_>, k: u8, enrolled: &[Enrolment]) -> Result<u32> {
        self.ensure_kek(by)?;
        self.quorum.refresh();
        let (rec, old) = self.kek()?.ok_or(Error::Integrity("the workspace has no KEK"))?;
        if rec.threshold > 0 {
            self.quorum.require(quorum::CHANGE_QUORUM, by)?;
        }
        let generation = rec.generation + 1;
        let new = kek::generate()?;
        let custodians = self.quorum.shares(&new, generation, k, enrolled)?;
        let rows = self.resealed(Some(&old), &new)?;
        let sealed = match k {
            0 => Some(self.root.seal(&kek::context(&self.workspace, generation), new.as_ref().as_ref())?),
            _ => None,
        };
        let next =
            KekRecord { generation, threshold: k, sealed, check: kek::check_value(&new, &self.workspace, generation)? };
        let names: Vec<&str> = custodians.iter().map(|c| c.name.as_str()).collect();
        let what = match k {
            0 => format!("KEK g{generation} sealed by the root (no quorum)"),
            _ => format!("KEK g{generation} split {k}-of-{} among {}", custodians.len(), names.join(", ")),
        };
        self.quorum.notify(by, "quorum-split", &what)?;
        let event = AuditEvent::by(&self.workspace, by, "quorum-split", Some(what.clone()));
        if !self.store.replace_kek(&self.workspace, Some(rec.generation), &next, &custodians, &rows, &event)? {
            return Err(Error::ObjectContended);
        }
        self.quorum.forget();
        *self.root_kek.lock() = None;
        log::info!("{}: {what}", self.workspace);
        Ok(generation)
    }

    /// Appends an audit entry about this workspace's keys.
    pub fn audit(&self, by: Caller<'_>, action: &str, what: String) -> Result<()> {
        self.store.append_audit(&AuditEvent::by(&self.workspace, by, action, Some(what)))
    }

    /// What protects the master keys (`C_GetTokenInfo`'s model).
    pub fn root_name(&self) -> &'static str {
        self.root.describe()
    }

    /// Every version, oldest first, fresh from the store (another process may have
    /// rotated), each row's MAC checked.
    pub fn versions(&self) -> Result<Vec<MasterRecord>> {
        self.verified(self.store.masters(&self.workspace)?)
    }

    /// Master key rows the caller read from the store at this call (with other state, in
    /// one read), each row's MAC checked as [`Hierarchy::versions`] checks them.
    pub fn verified(&self, rows: Vec<MasterRecord>) -> Result<Vec<MasterRecord>> {
        verified(self.root.as_ref(), &self.workspace, rows)
    }

    fn mac_of(&self) -> impl Fn(&MasterRecord) -> Result<Vec<u8>> + '_ {
        |m| master_mac(self.root.as_ref(), &self.workspace, m)
    }

    fn record(&self, version: u32) -> Result<MasterRecord> {
        self.pick(&self.versions()?, version)
    }

    /// `version`'s row among `versions`.
    fn pick(&self, versions: &[MasterRecord], version: u32) -> Result<MasterRecord> {
        versions
            .iter()
            .find(|m| m.version == version)
            .cloned()
            .ok_or_else(|| Error::MasterKey(format!("workspace {:?} has no master key v{version}", self.workspace)))
    }

    /// The key of `version`, if that version may still unwrap.
    pub fn key(&self, version: u32) -> Result<MasterKey> {
        self.key_of(self.record(version)?)
    }

    /// [`Hierarchy::key`] judged by `versions`, the rows this call read and checked
    /// ([`Hierarchy::verified`]) instead of a read of its own: a find opening many stored
    /// DEKs reads the rows once, not once per record.
    pub fn key_in(&self, versions: &[MasterRecord], version: u32) -> Result<MasterKey> {
        self.key_of(self.pick(versions, version)?)
    }

    /// The key of the version `record` describes (as read at this call), if it may still
    /// unwrap.
    fn key_of(&self, record: MasterRecord) -> Result<MasterKey> {
        let version = record.version;
        if !record.state.unwraps() {
            return Err(Error::MasterKey(format!("master key v{version} is {:?}: it no longer unwraps", record.state)));
        }
        if let Some(why) = &record.blocked {
            // Only an emergency window the quorum opened lets a blocked version work, and
            // every such use is its own durable audit entry.
            let Some(window) = self.quorum.emergency()? else {
                return Err(Error::KeyBlocked(format!("master key v{version} ({why})")));
            };
            self.quorum.audit_emergency_use(&window, version, why)?;
        }
        // Checked at every call: a lock or expiry elsewhere stops this process at once.
        let kek = self.kek()?;
        if let Some(key) = self.unsealed.lock().get(&version) {
            return Ok(key.clone());
        }
        let sealed =
            record.sealed.as_deref().ok_or_else(|| Error::MasterKey(format!("master key v{version} is gone")))?;
        let kek = kek.map(|(_, k)| k);
        let plain = match open_master(self.root.as_ref(), kek.as_ref(), &self.workspace, version, sealed) {
            // Another process may have re-sealed the rows under a new KEK since the
            // per-call check last read it: read it now and try once more.
            Err(Error::Integrity(_)) => {
                self.quorum.refresh();
                *self.root_kek.lock() = None;
                let fresh = self.kek()?.map(|(_, k)| k);
                open_master(self.root.as_ref(), fresh.as_ref(), &self.workspace, version, sealed)?
            }
            other => other?,
        };
        if plain.len() != 32 {
            return Err(Error::Integrity("master key length"));
        }
        let key = Arc::new(GcmKey::new(&plain, record::TAG_LEN)?);
        self.unsealed.lock().insert(version, key.clone());
        Ok(key)
    }

    /// The active version and its key: what new records are sealed under.
    pub fn current(&self) -> Result<(u32, MasterKey)> {
        let active = self
            .versions()?
            .into_iter()
            .rev()
            .find(|m| m.state == Lifecycle::Active)
            .ok_or_else(|| Error::MasterKey(format!("workspace {:?} has no active master key", self.workspace)))?;
        Ok((active.version, self.key(active.version)?))
    }

    /// Makes a new version current; the previous one becomes decrypt-only.
    pub fn rotate(&self, by: Caller<'_>, classification: &str) -> Result<u32> {
        // A new version must be sealed under the KEK as it is now, not as last checked.
        self.quorum.refresh();
        let kek = self.kek()?.map(|(_, k)| k);
        let next = self.versions()?.last().map_or(1, |m| m.version + 1);
        let (record, key) = new_master(self.root.as_ref(), kek.as_ref(), &self.workspace, next, classification)?;
        let event = AuditEvent::by(&self.workspace, by, "CKM_CV_ROTATE_MASTER", Some(format!("wmk v{next}")));
        match self.store.add_master(&self.workspace, &record, &self.mac_of(), &event) {
            Ok(()) => {}
            Err(Error::VersionTaken(taken)) => return self.joined_rotation(by, classification, taken),
            Err(e) => return Err(e),
        }
        self.unsealed.lock().insert(next, key);
        log::info!("{}: master key rotated to v{next}", self.workspace);
        Ok(next)
    }

    /// A rotation that lost the race for version `taken` to another host's (or
    /// process's) rotation or import, nothing of it written. What the caller asked for,
    /// that the version it saw stop wrapping and a new one of `classification` be current,
    /// has happened once: it gets that version (and an audit entry saying it made none),
    /// so two hosts rotating at once make one version and both succeed. A current version
    /// of another classification does not satisfy it: [`Error::VersionTaken`]
    /// (`CKR_FUNCTION_FAILED`, try again), never a second version made behind its back.
    fn joined_rotation(&self, by: Caller<'_>, classification: &str, taken: u32) -> Result<u32> {
        let current = self.versions()?.into_iter().rev().find(|m| m.state == Lifecycle::Active);
        let Some(current) = current.filter(|m| m.version >= taken && m.classification == classification) else {
            log::warn!("{}: a concurrent change took wmk v{taken} and does not satisfy this rotation", self.workspace);
            return Err(Error::VersionTaken(taken));
        };
        let what = format!("wmk v{} (made by a concurrent rotation; no new version)", current.version);
        self.store.append_audit(&AuditEvent::by(&self.workspace, by, "CKM_CV_ROTATE_MASTER", Some(what)))?;
        log::info!(
            "{}: a concurrent rotation made wmk v{} first; this rotation returns it and makes none",
            self.workspace,
            current.version
        );
        Ok(current.version)
    }

    /// BYOK: makes the customer's `key` (32 bytes, unwrapped from an import key by the
    /// caller) a new version, current as after a rotation, sealed as every version is
    /// (under the KEK, then the root) with its `origin` in the row. A locked workspace is
    /// refused before the quorum is asked, so a lock never uses up an approval; with a
    /// quorum, an approved `import-key` request is used. Returns the new version.
    pub fn import(&self, by: Caller<'_>, classification: &str, key: &[u8], origin: &str) -> Result<u32> {
        if key.len() != 32 {
            return Err(Error::WrappedKeyLenRange);
        }
        let kek = self.kek()?.map(|(_, k)| k);
        self.quorum.require(quorum::IMPORT_KEY, by)?;
        // A concurrent rotation does not make the customer's key current: on losing the
        // version to one, the import is sealed again for the next version, once.
        match self.import_as(by, classification, kek.as_ref(), key, origin) {
            Err(Error::VersionTaken(taken)) => {
                log::info!("{}: wmk v{taken} was taken by a concurrent change; importing again", self.workspace);
                self.import_as(by, classification, kek.as_ref(), key, origin)
            }
            other => other,
        }
    }

    /// One attempt of [`Hierarchy::import`] as the version after the newest stored one.
    fn import_as(
        &self,
        by: Caller<'_>,
        classification: &str,
        kek: Option<&Kek>,
        key: &[u8],
        origin: &str,
    ) -> Result<u32> {
        let next = self.versions()?.last().map_or(1, |m| m.version + 1);
        let sealed = seal_master(self.root.as_ref(), kek, &self.workspace, next, key)?;
        let prepared = Arc::new(GcmKey::new(key, record::TAG_LEN)?);
        let mut row = MasterRecord {
            version: next,
            state: Lifecycle::Active,
            created_at: now(),
            classification: classification.to_string(),
            sealed: Some(sealed),
            blocked: None,
            mac: None,
            origin: Some(origin.to_string()),
        };
        row.mac = Some(master_mac(self.root.as_ref(), &self.workspace, &row)?);
        let what = format!("wmk v{next} imported ({origin})");
        let event = AuditEvent::by(&self.workspace, by, "CKM_CV_IMPORT_MASTER", Some(what));
        self.store.add_master(&self.workspace, &row, &self.mac_of(), &event)?;
        self.unsealed.lock().insert(next, prepared);
        log::info!("{}: master key v{next} imported ({origin}); it is now the active version", self.workspace);
        Ok(next)
    }

    /// The 32 bytes of version `m`, opened through the root and `kek`.
    fn raw_key(&self, kek: Option<&Kek>, m: &MasterRecord) -> Result<Zeroizing<[u8; 32]>> {
        let sealed =
            m.sealed.as_deref().ok_or_else(|| Error::MasterKey(format!("master key v{} is gone", m.version)))?;
        let plain = open_master(self.root.as_ref(), kek, &self.workspace, m.version, sealed)?;
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != key.len() {
            return Err(Error::Integrity("master key length"));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }

    /// The key check value (`CKA_CHECK_VALUE`) of `version`, or `None` once its key is
    /// destroyed. It names the key without revealing it: drills compare a kit with it.
    pub fn check_value(&self, version: u32) -> Result<Option<[u8; 3]>> {
        let record = self.record(version)?;
        if record.sealed.is_none() {
            return Ok(None);
        }
        let kek = self.kek()?.map(|(_, k)| k);
        let key = self.raw_key(kek.as_ref(), &record)?;
        Ok(Some(crate::mechanism::primitives::aes_check_value(key.as_ref())?))
    }

    /// Every version that still unwraps, with its key, for a recovery kit
    /// (`CKM_CV_EXPORT_KIT`). A locked workspace is refused before the quorum is asked;
    /// with a quorum, an approved `export-kit` request is used. The caller seals the keys
    /// under the kit key at once and audits the export.
    pub fn export_keys(&self, by: Caller<'_>) -> Result<Vec<(MasterRecord, Zeroizing<[u8; 32]>)>> {
        self.quorum.refresh();
        let kek = self.kek()?.map(|(_, k)| k);
        self.quorum.require(quorum::EXPORT_KIT, by)?;
        let mut out = Vec::new();
        for m in self.versions()?.into_iter().filter(|m| m.state.unwraps()) {
            let key = self.raw_key(kek.as_ref(), &m)?;
            out.push((m, key));
        }
        if out.is_empty() {
            return Err(Error::MasterKey(format!(
                "workspace {:?} has no master key version to export",
                self.workspace
            )));
        }
        Ok(out)
    }

    /// How many versions [`Hierarchy::export_keys`] would export (a length query uses no
    /// approval).
    pub fn exportable(&self) -> Result<usize> {
        Ok(self.versions()?.iter().filter(|m| m.state.unwraps()).count())
    }

    /// Moves every stored record to the active version, `batch` per transaction, calling
    /// `progress(done so far, target version)` after each; returns how many moved.
    pub fn rewrap_stored(&self, batch: usize, progress: &mut dyn FnMut(usize, u32)) -> Result<usize> {
        let (target, master) = self.current()?;
        // The old versions' keys, looked up (a store read each) once per job, not per record.
        let mut old_keys: BTreeMap<u32, MasterKey> = BTreeMap::new();
        let mut done = 0;
        let mut after = ObjectId(0);
        loop {
            let step = self.store.rewrap_batch(&self.workspace, target, after, batch, &mut |stored| {
                let blob = stored.sealed.as_deref().ok_or(Error::Integrity("stored record without a body"))?;
                let header = record::parse(blob)?;
                let old = match old_keys.get(&header.version) {
                    Some(key) => key.clone(),
                    None => {
                        let key = self.key(header.version)?;
                        old_keys.insert(header.version, key.clone());
                        key
                    }
                };
                let secret = record::open(&old, blob, &header, stored.unique_id.as_bytes())?;
                record::seal(&master, &self.workspace, target, &header.attrs, &secret, stored.unique_id.as_bytes())
            })?;
            let Some(last) = step.last else {
                return Ok(done);
            };
            after = last;
            done += step.moved;
            progress(done, target);
        }
    }

    /// Blocks `version`'s unwraps after an audit alert (`event` records it).
    pub fn block(&self, version: u32, reason: &str, event: &AuditEvent) -> Result<bool> {
        self.store.set_master_blocked(&self.workspace, version, Some(reason), &self.mac_of(), event)
    }

    /// Lifts an audit alert's block on `version` (the SO's call).
    pub fn unblock(&self, by: Caller<'_>, version: u32) -> Result<()> {
        let event = AuditEvent::by(&self.workspace, by, "CKA_CV_BLOCKED", Some(format!("wmk v{version} unblocked")));
        if !self.store.set_master_blocked(&self.workspace, version, None, &self.mac_of(), &event)? {
            return Err(Error::ObjectHandleInvalid);
        }
        log::info!("{}: master key v{version} unblocked", self.workspace);
        Ok(())
    }

    /// Moves `version` to `state`: retire (only when nothing stored needs it and it is not
    /// the active version) or destroy (only once retired).
    pub fn set_state(&self, by: Caller<'_>, version: u32, state: Lifecycle) -> Result<()> {
        let record = self.record(version)?;
        let allowed = match (record.state, state) {
            (Lifecycle::DecryptOnly, Lifecycle::Retired) => true,
            (Lifecycle::Retired, Lifecycle::Destroyed) => true,
            (from, to) => from == to,
        };
        if !allowed {
            return Err(Error::MasterKey(format!(
                "master key v{version} cannot go from {:?} to {state:?}",
                record.state
            )));
        }
        if matches!(state, Lifecycle::Retired | Lifecycle::Destroyed) && record.state != state {
            self.quorum.check_not_held(&format!("moving master key v{version} to {state:?}"))?;
        }
        if state == Lifecycle::Retired {
            let needed = self.store.records_under(&self.workspace, version)?;
            if needed > 0 {
                return Err(Error::MasterKey(format!(
                    "master key v{version} still seals {needed} stored record(s): re-wrap them before retiring it"
                )));
            }
        }
        if state == Lifecycle::Destroyed && record.state != Lifecycle::Destroyed {
            self.quorum.require(&quorum::destroy_action(version), by)?;
            // First the key in the HSM: once it is gone no copy of the sealed value (free
            // pages, WAL, backups) opens, whatever happens to the store write below.
            self.root.destroy_version(version)?;
        }
        let event =
            AuditEvent::by(&self.workspace, by, "CKA_CV_LIFECYCLE", Some(format!("wmk v{version} -> {state:?}")));
        self.store.set_master_state(&self.workspace, version, state, &self.mac_of(), &event)?;
        self.unsealed.lock().remove(&version);
        log::info!("{}: master key v{version} is now {state:?}", self.workspace);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::SoftRoot;

    fn row(origin: Option<&str>) -> MasterRecord {
        MasterRecord {
            version: 2,
            state: Lifecycle::Active,
            created_at: 1_700_000_000,
            classification: "internal".into(),
            sealed: Some(vec![7; 40]),
            blocked: None,
            mac: None,
            origin: origin.map(str::to_string),
        }
    }

    /// A BYOK origin is covered by the row's MAC: removed, added or changed in the store
    /// file, the row no longer verifies.
    #[test]
    fn the_origin_is_part_of_the_row_mac() {
        let root = SoftRoot(Zeroizing::new([9; 32]));
        let generated = master_mac(&root, "main", &row(None)).unwrap();
        let rsa = master_mac(&root, "main", &row(Some("imported:rsa-oaep-sha256"))).unwrap();
        let kem = master_mac(&root, "main", &row(Some("imported:ml-kem-768+aes-kwp"))).unwrap();
        assert_ne!(generated, rsa);
        assert_ne!(rsa, kem);
        let mut stripped = row(Some("imported:rsa-oaep-sha256"));
        stripped.mac = Some(rsa.clone());
        assert!(verified(&root, "main", vec![stripped.clone()]).is_ok());
        stripped.origin = None;
        assert!(verified(&root, "main", vec![stripped]).is_err(), "an origin removed in the file");
    }
}
