//! A root of trust split m-of-n over several underlying slots (`[[root.slots]]` with
//! `threshold = m`; doc/root.md).
//!
//! The root is a random 256-bit secret that no slot holds: each slot holds one Shamir
//! share of it (`mechanism/shamir.rs`), sealed with AES-256-GCM inside that slot under
//! its own key `collabvault-split-seal` (sensitive, never extractable). At connect the
//! module unseals the share of every reachable slot and recombines any m of them in
//! memory; fewer than m reachable slots refuse, naming the missing ones. One slot
//! (stolen, with its PIN) yields one share, which says nothing about the root.
//!
//! Plain Shamir has no integrity, so every share carries the deployment's random id,
//! its x coordinate (the slot's position in the config), m, n and a check value, an
//! HMAC under the recombined secret: a share from another deployment, another position
//! or with a wrong value is found and named, and any m good shares still open.
//!
//! The recombined root then plays the single root token's part in memory: per-workspace
//! root keys, the PIN MAC keys and the audit checkpoint keys are derived from it (HMAC-
//! SHA256 with a label each). A master key version's key cannot be derived (deleting
//! something must shred it), so each version gets its own random key, split m-of-n the
//! same way under the name `wmk/<workspace>/v<N>`. Destroying the version deletes its
//! shares on every reachable slot and leaves a tombstone there (the destroyed key's
//! check value); a slot that was unreachable deletes its share when a later connect
//! finds the tombstone on another. The version is unrecoverable as soon as fewer than
//! m of its shares are left.
//!
//! A lost slot loses nothing, but a fresh token in its place holds no share until
//! `cvault root reshare` deals every secret again over all n slots (`reshare.rs`); a
//! reshare cut short is finished or undone at the next connect, before any share is read.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use zeroize::Zeroizing;

use super::slot::{seal_in, unseal_in, Head, Hsm, Signed};
use crate::config::{CheckpointSignature as CheckpointAlgorithms, RootConfig};
use crate::error::{Error, Result};
use crate::mechanism::primitives;
use crate::mechanism::shamir::{self, Share};
use crate::store::audit::CheckpointSignature;
use crate::store::sealed::SealingKey;

/// The AES key in each slot that seals that slot's shares.
pub(super) const SEAL_KEY_LABEL: &[u8] = b"collabvault-split-seal";
/// Label prefix of the data objects holding sealed shares.
pub(super) const SHARE_PREFIX: &str = "collabvault-split/";
/// Label prefix of the tombstones of destroyed version keys.
pub(super) const TOMBSTONE_PREFIX: &str = "collabvault-split-destroyed/";
/// The name of the root's own shares.
pub(super) const ROOT_NAME: &str = "root";
const MAGIC: &[u8; 4] = b"CVRS";
const RECORD_V1: u8 = 1;
pub(super) const SECRET_LEN: usize = 32;
pub(super) const ID_LEN: usize = 16;
const RECORD_LEN: usize = MAGIC.len() + 1 + ID_LEN + 3 + 32 + SECRET_LEN;

/// One reachable slot.
pub(super) struct Member {
    /// Its position in `[[root.slots]]` (1-based): the x coordinate of its shares.
    pub(super) position: u8,
    pub(super) hsm: Hsm,
}

/// One share as its slot holds it, unsealed.
pub(super) struct Record {
    pub(super) deployment: [u8; ID_LEN],
    pub(super) threshold: u8,
    pub(super) total: u8,
    pub(super) index: u8,
    pub(super) check: [u8; 32],
    pub(super) value: Zeroizing<Vec<u8>>,
}

impl Record {
    pub(super) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(RECORD_LEN));
        out.extend_from_slice(MAGIC);
        out.push(RECORD_V1);
        out.extend_from_slice(&self.deployment);
        out.extend_from_slice(&[self.threshold, self.total, self.index]);
        out.extend_from_slice(&self.check);
        out.extend_from_slice(&self.value);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Record> {
        if bytes.len() != RECORD_LEN || &bytes[..4] != MAGIC || bytes[4] != RECORD_V1 {
            return None;
        }
        let (id, rest) = bytes[5..].split_at(ID_LEN);
        Some(Record {
            deployment: id.try_into().ok()?,
            threshold: rest[0],
            total: rest[1],
            index: rest[2],
            check: rest[3..35].try_into().ok()?,
            value: Zeroizing::new(rest[35..].to_vec()),
        })
    }
}

/// The check value of the secret `name` of deployment `deployment`.
pub(super) fn check_value(secret: &[u8], deployment: &[u8; ID_LEN], name: &str) -> Result<[u8; 32]> {
    Ok(*primitives::hmac_sha256(secret, &[b"collabvault-split-check-v1", deployment, name.as_bytes()])?)
}

/// The AAD a share is sealed with in its slot: its name, so a share object relabelled
/// as another's does not open.
pub(super) fn share_aad(name: &str) -> Vec<u8> {
    format!("collabvault-split-share-v1:{name}").into_bytes()
}

fn version_name(workspace: &str, version: u32) -> String {
    format!("wmk/{workspace}/v{version}")
}

pub(super) fn pkcs11_err(what: &str) -> impl Fn(cryptoki::error::Error) -> Error + '_ {
    move |e| Error::Root(format!("split root: {what}: {e}"))
}

/// The root recombined from m of its slots.
pub struct SplitRoot {
    pub(super) members: Vec<Member>,
    pub(super) threshold: u8,
    pub(super) total: u8,
    /// Labels of the configured slots, by position - 1 (for log lines).
    pub(super) labels: Vec<String>,
    pub(super) deployment: [u8; ID_LEN],
    pub(super) secret: SealingKey,
}

impl Drop for SplitRoot {
    fn drop(&mut self) {
        // The first slot of a module initialized its library and finalizes it on drop:
        // the others close their sessions before.
        while let Some(member) = self.members.pop() {
            drop(member);
        }
    }
}

impl SplitRoot {
    /// Connects to every configured slot that answers and recombines the root; deals it
    /// when no slot holds a share yet and all of them answer.
    pub fn connect(cfg: &RootConfig) -> Result<SplitRoot> {
        let threshold = cfg.threshold.ok_or_else(|| Error::Config("[root] needs threshold".into()))?;
        let total = u8::try_from(cfg.slots.len()).map_err(|_| Error::Config("[root] has too many slots".into()))?;
        let mut root = SplitRoot {
            members: Vec::new(),
            threshold,
            total,
            labels: cfg.slots.iter().map(|s| s.token_label.clone()).collect(),
            deployment: [0; ID_LEN],
            secret: Zeroizing::new([0; SECRET_LEN]),
        };
        let mut missing = Vec::new();
        for (position, slot) in (1u8..).zip(&cfg.slots) {
            match slot.pin().and_then(|pin| Hsm::connect(&slot.module, &slot.token_label, &pin)) {
                Ok(hsm) => root.members.push(Member { position, hsm }),
                Err(e) => {
                    log::warn!("split root: slot {:?} is unavailable: {e}", slot.token_label);
                    missing.push(slot.token_label.clone());
                }
            }
        }
        if root.members.len() < usize::from(threshold) {
            return Err(root.refuse(&format!("only {} slot(s) answer", root.members.len()), &missing));
        }
        // A reshare cut short (`reshare.rs`) is finished or undone before any share is read.
        root.settle()?;
        let shares = root.read_shares(ROOT_NAME)?;
        if shares.is_empty() {
            if !missing.is_empty() {
                return Err(
                    root.refuse("no answering slot holds a share yet, and a new root needs every slot", &missing)
                );
            }
            root.deal_root()?;
        } else {
            let recovered = match root.recover(ROOT_NAME, shares, None)? {
                Some(found) => Some(found),
                None => root.recover_staged_root()?,
            };
            let (deployment, secret) = recovered.ok_or_else(|| {
                root.refuse("the shares of the answering slots do not recombine to the root", &missing)
            })?;
            root.deployment = deployment;
            root.secret = secret;
            log::info!(
                "split root: recombined {}-of-{} from slots {}",
                threshold,
                total,
                root.members.iter().map(|m| format!("{:?}", m.hsm.token_label())).collect::<Vec<_>>().join(", ")
            );
        }
        root.sweep_tombstones()?;
        Ok(root)
    }

    /// The error (and log line) of a root that cannot be opened: `why`, and the slots
    /// that did not answer.
    pub(super) fn refuse(&self, why: &str, missing: &[String]) -> Error {
        let msg = format!(
            "the root is split {}-of-{}: {why}; missing slots: {}",
            self.threshold,
            self.total,
            if missing.is_empty() { "none".to_string() } else { missing.join(", ") }
        );
        log::error!("split root refused: {msg}");
        Error::Root(msg)
    }

    /// A fresh root: a random secret and deployment id, one share in every slot.
    fn deal_root(&mut self) -> Result<()> {
        primitives::fill_random(&mut self.deployment)?;
        primitives::fill_random(&mut self.secret[..])?;
        let secret = self.secret.clone();
        self.deal(ROOT_NAME, &secret[..])?;
        log::info!(
            "split root: dealt a new root {}-of-{} over slots {}",
            self.threshold,
            self.total,
            self.labels.join(", ")
        );
        Ok(())
    }

    /// Splits `secret` m-of-n and stores the share of every reachable slot under `name`.
    /// A slot that does not answer gets none (logged): the secret then needs m of the others.
    fn deal(&self, name: &str, secret: &[u8]) -> Result<()> {
        let check = check_value(secret, &self.deployment, name)?;
        let shares = shamir::split(secret, self.threshold, usize::from(self.total))?;
        for member in &self.members {
            let share = shares
                .iter()
                .find(|s| s.index == member.position)
                .ok_or_else(|| Error::Root("split root: a share is missing from the split".into()))?;
            let record = Record {
                deployment: self.deployment,
                threshold: self.threshold,
                total: self.total,
                index: share.index,
                check,
                value: share.value.clone(),
            };
            member.hsm.with_session(|session| {
                let key = seal_key(&member.hsm, session)?;
                let sealed = seal_in(session, key, &share_aad(name), &record.encode())?;
                Hsm::create_data(session, format!("{SHARE_PREFIX}{name}").as_bytes(), sealed)
            })?;
        }
        if self.members.len() < usize::from(self.total) {
            log::warn!(
                "split root: {name} was split while {} of {} slots answered; the others hold no share of it",
                self.members.len(),
                self.total
            );
        }
        Ok(())
    }

    /// The unsealed shares named `name` of every reachable slot: (member, record). A
    /// share that does not open or decode is logged and left out.
    pub(super) fn read_shares(&self, name: &str) -> Result<Vec<(usize, Record)>> {
        self.read_shares_at(SHARE_PREFIX, name)
    }

    /// [`SplitRoot::read_shares`] of the objects labelled `prefix` + `name`: the
    /// committed shares, or a reshare's staged ones (`reshare.rs`), which are sealed with
    /// the same associated data.
    pub(super) fn read_shares_at(&self, prefix: &str, name: &str) -> Result<Vec<(usize, Record)>> {
        let label = format!("{prefix}{name}").into_bytes();
        let mut out = Vec::new();
        for (i, member) in self.members.iter().enumerate() {
            let found = member.hsm.with_session(|session| {
                let objects = find_all(session, ObjectClass::DATA, &label)?;
                if objects.is_empty() {
                    return Ok(Vec::new());
                }
                let key = Hsm::find(session, ObjectClass::SECRET_KEY, SEAL_KEY_LABEL)?
                    .ok_or_else(|| Error::Root(format!("split root: {SEAL_KEY_LABEL:?} is missing")))?;
                Hsm::check_key(session, key, SEAL_KEY_LABEL)?;
                let mut records = Vec::new();
                for object in objects {
                    let sealed = value_of(session, object)?;
                    match unseal_in(session, key, &share_aad(name), &sealed).ok().and_then(|r| Record::decode(&r)) {
                        Some(record) => records.push(record),
                        None => log::error!(
                            "split root: a share of {name} in slot {:?} does not open under its key (planted or \
                             from another token?); it is ignored",
                            member.hsm.token_label()
                        ),
                    }
                }
                Ok(records)
            });
            match found {
                Ok(records) => out.extend(records.into_iter().map(|r| (i, r))),
                Err(e) => log::error!("split root: cannot read slot {:?}: {e}", member.hsm.token_label()),
            }
        }
        Ok(out)
    }

    /// Recombines `name` from `shares`, any m that prove right by their check value.
    /// Shares of another position, threshold or deployment (`deployment`, when known)
    /// are named in the log and left out, as is any share that does not lie on the
    /// recombined secret. `None`: no m shares recombine.
    pub(super) fn recover(
        &self,
        name: &str,
        shares: Vec<(usize, Record)>,
        deployment: Option<&[u8; ID_LEN]>,
    ) -> Result<Option<([u8; ID_LEN], SealingKey)>> {
        let mut good = Vec::new();
        for (i, record) in shares {
            let member = &self.members[i];
            let slot = member.hsm.token_label();
            if record.index != member.position || record.total != self.total || record.threshold != self.threshold {
                log::error!(
                    "split root: the share of {name} in slot {slot:?} was dealt to position {} of a {}-of-{} split, \
                     not position {} of this {}-of-{} one (wrong slot, or the slots were reordered); it is ignored",
                    record.index,
                    record.threshold,
                    record.total,
                    member.position,
                    self.threshold,
                    self.total
                );
            } else if deployment.is_some_and(|d| *d != record.deployment) {
                log::error!(
                    "split root: the share of {name} in slot {slot:?} belongs to another deployment; it is ignored"
                );
            } else {
                good.push((i, record));
            }
        }
        let k = usize::from(self.threshold);
        for combo in combinations(good.len(), k) {
            let picked: Vec<&(usize, Record)> = combo.iter().map(|&j| &good[j]).collect();
            let first = &picked[0].1;
            if picked.iter().any(|(_, r)| r.deployment != first.deployment || r.check != first.check) {
                continue;
            }
            let Some(secret) = self.combine(&picked, name, first)? else { continue };
            for (j, (i, record)) in good.iter().enumerate() {
                if combo.contains(&j) {
                    continue;
                }
                let mut again: Vec<&(usize, Record)> = picked[..k - 1].to_vec();
                again.push(&good[j]);
                let fits = record.deployment == first.deployment
                    && record.check == first.check
                    && self.combine(&again, name, first)?.is_some_and(|s| s[..] == secret[..]);
                if !fits {
                    log::error!(
                        "split root: the share of {name} in slot {:?} does not match the others (wrong value, or \
                         from another deployment); it is ignored",
                        self.members[*i].hsm.token_label()
                    );
                }
            }
            return Ok(Some((first.deployment, secret)));
        }
        let slots: Vec<String> =
            good.iter().map(|(i, _)| format!("{:?}", self.members[*i].hsm.token_label())).collect();
        log::error!(
            "split root: no {k} of the shares of {name} in slots {} recombine to a secret their check value \
             confirms (a share is wrong: from another slot or deployment)",
            slots.join(", ")
        );
        Ok(None)
    }

    /// The secret `picked` recombine to, if it matches `like`'s check value.
    fn combine(&self, picked: &[&(usize, Record)], name: &str, like: &Record) -> Result<Option<SealingKey>> {
        let shares: Vec<Share> = picked.iter().map(|(_, r)| Share { index: r.index, value: r.value.clone() }).collect();
        let Ok(secret) = shamir::combine(&shares, self.threshold, SECRET_LEN) else { return Ok(None) };
        let check = check_value(&secret, &like.deployment, name)?;
        if !crate::store::sealed::mac_eq(&check, &like.check) {
            return Ok(None);
        }
        let mut key = Zeroizing::new([0u8; SECRET_LEN]);
        key.copy_from_slice(&secret);
        Ok(Some(key))
    }

    /// A key derived from the root for `purpose`.
    fn derive(&self, purpose: &[&[u8]]) -> Result<SealingKey> {
        let mut parts: Vec<&[u8]> = vec![b"collabvault-split-derive-v1"];
        parts.extend_from_slice(purpose);
        Ok(Zeroizing::new(*primitives::hmac_sha256(&self.secret[..], &parts)?))
    }

    /// The workspace's root key, derived from the root.
    pub fn workspace_key(&self, workspace: &str) -> Result<SealingKey> {
        self.derive(&[b"workspace-root", workspace.as_bytes()])
    }

    /// HMAC-SHA256 of `data` under the workspace's PIN MAC key, derived from the root.
    pub fn pins_mac(&self, workspace: &str, data: &[u8]) -> Result<Vec<u8>> {
        let key = self.derive(&[b"pins-mac", workspace.as_bytes()])?;
        Ok(primitives::hmac_sha256(&key[..], &[data])?.to_vec())
    }

    /// Master key `version`'s key: recombined from its shares, or (`create`, the caller
    /// sealing a value it holds) a fresh random key split over the slots, also in place
    /// of shares that do not recombine. `None`: no slot holds a share of it.
    pub fn version_key(&self, workspace: &str, version: u32, create: bool) -> Result<Option<SealingKey>> {
        let name = version_name(workspace, version);
        let shares = self.read_shares(&name)?;
        if shares.is_empty() {
            if !create {
                return Ok(None);
            }
            let mut key = Zeroizing::new([0u8; SECRET_LEN]);
            primitives::fill_random(&mut key[..])?;
            self.deal(&name, &key[..])?;
            return Ok(Some(key));
        }
        match self.recover(&name, shares, Some(&self.deployment))? {
            Some((_, key)) => Ok(Some(key)),
            // The caller is about to seal the version's value, which it holds: shares
            // that do not recombine (a deal cut short by a crash, a slot lost mid-deal)
            // protect nothing that is stored, so they are replaced by a fresh key.
            None if create => {
                let n = self.delete_shares(&name)?;
                log::warn!("split root: {n} partial share(s) of {name} that do not recombine deleted; dealing it anew");
                let mut key = Zeroizing::new([0u8; SECRET_LEN]);
                primitives::fill_random(&mut key[..])?;
                self.deal(&name, &key[..])?;
                Ok(Some(key))
            }
            None => Err(Error::Root(format!("split root: the shares of {name} do not recombine (see the log)"))),
        }
    }

    /// Deletes the shares named `name` on every reachable slot; how many went.
    fn delete_shares(&self, name: &str) -> Result<usize> {
        let label = format!("{SHARE_PREFIX}{name}").into_bytes();
        let mut deleted = 0;
        for member in &self.members {
            member.hsm.with_session(|session| {
                for object in find_all(session, ObjectClass::DATA, &label)? {
                    session.destroy_object(object).map_err(pkcs11_err("deleting a partial share"))?;
                    deleted += 1;
                }
                Ok(())
            })?;
        }
        Ok(deleted)
    }

    /// Deletes the shares of `workspace`'s master key versions (`Some`: one) on every
    /// reachable slot and leaves a tombstone on each. Returns how many shares went.
    pub fn destroy_version_keys(&self, workspace: &str, version: Option<u32>) -> Result<usize> {
        let prefix = format!("{SHARE_PREFIX}wmk/{workspace}/v");
        let mut destroyed = 0;
        let mut checks: Vec<(String, [u8; 32])> = Vec::new();
        for member in &self.members {
            member.hsm.with_session(|session| {
                for (object, label) in labelled(session, ObjectClass::DATA, SHARE_PREFIX.as_bytes())? {
                    let Some(n) = label.strip_prefix(&prefix) else { continue };
                    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    if version.is_some_and(|v| n != v.to_string()) {
                        continue;
                    }
                    let name = label[SHARE_PREFIX.len()..].to_string();
                    if let Some(record) = unseal_share(session, &name, object)? {
                        if !checks.iter().any(|(n, c)| *n == name && *c == record.check) {
                            checks.push((name, record.check));
                        }
                    }
                    session.destroy_object(object).map_err(pkcs11_err("destroying a version key's share"))?;
                    destroyed += 1;
                }
                Ok(())
            })?;
        }
        for member in &self.members {
            member.hsm.with_session(|session| {
                for (name, check) in &checks {
                    add_tombstone(session, name, check)?;
                }
                Ok(())
            })?;
        }
        Ok(destroyed)
    }

    /// Deletes, on every reachable slot, the shares that a tombstone on any of them
    /// says were destroyed (the slot was unreachable at the time), and copies the
    /// tombstones over.
    pub(super) fn sweep_tombstones(&self) -> Result<()> {
        let mut tombstones: Vec<(String, Vec<u8>)> = Vec::new();
        for member in &self.members {
            member.hsm.with_session(|session| {
                for (object, label) in labelled(session, ObjectClass::DATA, TOMBSTONE_PREFIX.as_bytes())? {
                    let entry = (label[TOMBSTONE_PREFIX.len()..].to_string(), value_of(session, object)?);
                    if !tombstones.contains(&entry) {
                        tombstones.push(entry);
                    }
                }
                Ok(())
            })?;
        }
        for member in &self.members {
            member.hsm.with_session(|session| {
                for (name, check) in &tombstones {
                    add_tombstone(session, name, check)?;
                    let label = format!("{SHARE_PREFIX}{name}").into_bytes();
                    for object in find_all(session, ObjectClass::DATA, &label)? {
                        if unseal_share(session, name, object)?.is_some_and(|r| r.check[..] == check[..]) {
                            session.destroy_object(object).map_err(pkcs11_err("destroying a destroyed share"))?;
                            log::info!(
                                "split root: slot {:?} held a share of destroyed {name}; deleted",
                                member.hsm.token_label()
                            );
                        }
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The ECDSA P-256 checkpoint key derived from the root: (scalar, public point).
    /// A derived value out of the scalar range (probability about 2^-32) moves on to
    /// the next counter.
    fn ecdsa_key(&self) -> Result<(SealingKey, Vec<u8>)> {
        for counter in 0u8..=255 {
            let scalar = self.derive(&[b"audit-ecdsa-p256", &[counter]])?;
            if let Ok(public) = primitives::p256_public_key(&scalar[..]) {
                return Ok((scalar, public));
            }
        }
        Err(Error::Root("split root: no P-256 scalar derives from the root".into()))
    }

    /// The ML-DSA-65 checkpoint key derived from the root: (seed, public key).
    fn mldsa_key(&self) -> Result<(SealingKey, Vec<u8>)> {
        let seed = self.derive(&[b"audit-mldsa-65"])?;
        let public = primitives::mldsa65_public_key(&seed[..])?;
        Ok((seed, public))
    }

    /// Signs a checkpoint message with the configured keys, both derived from the root.
    pub fn sign_checkpoint(&self, message: &[u8], which: CheckpointAlgorithms) -> Result<Signed> {
        let ecdsa = match which.ecdsa() {
            false => None,
            true => {
                let (scalar, public_key) = self.ecdsa_key()?;
                let digest = primitives::sha256(message);
                Some(CheckpointSignature {
                    signature: primitives::p256_sign_prehash(&scalar[..], &digest)?,
                    public_key,
                })
            }
        };
        let mldsa = match which.mldsa() {
            false => None,
            true => {
                let (seed, public_key) = self.mldsa_key()?;
                Some(CheckpointSignature { signature: primitives::mldsa65_sign(&seed[..], message)?, public_key })
            }
        };
        Ok((ecdsa, mldsa))
    }

    /// The ECDSA checkpoint public key.
    pub fn audit_public_key(&self) -> Result<Vec<u8>> {
        Ok(self.ecdsa_key()?.1)
    }

    /// The ML-DSA-65 checkpoint public key.
    pub fn audit_mldsa_public_key(&self) -> Result<Vec<u8>> {
        Ok(self.mldsa_key()?.1)
    }

    /// The latest checkpoint any reachable slot remembers.
    pub fn head(&self) -> Result<Option<Head>> {
        let mut latest: Option<Head> = None;
        for member in &self.members {
            if let Some(head) = member.hsm.head()? {
                if latest.as_ref().is_none_or(|l| head.0 > l.0) {
                    latest = Some(head);
                }
            }
        }
        Ok(latest)
    }

    /// Records the latest checkpoint in every reachable slot.
    pub fn set_head(&self, number: i64, seq: i64, hash: &[u8]) -> Result<()> {
        for member in &self.members {
            member.hsm.set_head(number, seq, hash)?;
        }
        Ok(())
    }
}

/// The slot's sealing key, made on first use (a replacement slot's first share).
pub(super) fn seal_key(hsm: &Hsm, session: &Session) -> Result<ObjectHandle> {
    match Hsm::find(session, ObjectClass::SECRET_KEY, SEAL_KEY_LABEL)? {
        Some(key) => {
            Hsm::check_key(session, key, SEAL_KEY_LABEL)?;
            Ok(key)
        }
        None => hsm.create_labelled(session, SEAL_KEY_LABEL),
    }
}

/// Every object of `class` labelled `label`.
pub(super) fn find_all(session: &Session, class: ObjectClass, label: &[u8]) -> Result<Vec<ObjectHandle>> {
    session
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.to_vec())])
        .map_err(pkcs11_err("finding objects"))
}

/// Every private object of `class` whose label starts with `prefix`, with its label.
pub(super) fn labelled(session: &Session, class: ObjectClass, prefix: &[u8]) -> Result<Vec<(ObjectHandle, String)>> {
    let mut out = Vec::new();
    for object in session.find_objects(&[Attribute::Class(class)]).map_err(pkcs11_err("listing objects"))? {
        let attrs = session.get_attributes(object, &[AttributeType::Label]).map_err(pkcs11_err("reading a label"))?;
        if let Some(Attribute::Label(label)) = attrs.into_iter().next() {
            if label.starts_with(prefix) {
                if let Ok(label) = String::from_utf8(label) {
                    out.push((object, label));
                }
            }
        }
    }
    Ok(out)
}

/// A data object's value.
pub(super) fn value_of(session: &Session, object: ObjectHandle) -> Result<Vec<u8>> {
    let attrs = session.get_attributes(object, &[AttributeType::Value]).map_err(pkcs11_err("reading a share"))?;
    match attrs.into_iter().next() {
        Some(Attribute::Value(v)) => Ok(v),
        _ => Err(Error::Root("split root: a share object has no value".into())),
    }
}

/// The share `object` named `name`, unsealed under this slot's key; `None` when it does
/// not open (it is then nobody's share to act on).
fn unseal_share(session: &Session, name: &str, object: ObjectHandle) -> Result<Option<Record>> {
    let Some(key) = Hsm::find(session, ObjectClass::SECRET_KEY, SEAL_KEY_LABEL)? else { return Ok(None) };
    let sealed = value_of(session, object)?;
    Ok(unseal_in(session, key, &share_aad(name), &sealed).ok().and_then(|r| Record::decode(&r)))
}

/// Records in this slot that the key `name` with check value `check` was destroyed
/// (once).
fn add_tombstone(session: &Session, name: &str, check: &[u8]) -> Result<()> {
    let label = format!("{TOMBSTONE_PREFIX}{name}").into_bytes();
    for object in find_all(session, ObjectClass::DATA, &label)? {
        if value_of(session, object)? == check {
            return Ok(());
        }
    }
    Hsm::create_data(session, &label, check.to_vec())
}

/// Every `k`-subset of `0..n`, in lexicographic order.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn walk(start: usize, n: usize, k: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            current.push(i);
            walk(i + 1, n, k, current, out);
            current.pop();
        }
    }
    let mut out = Vec::new();
    if k > 0 && k <= n {
        walk(0, n, k, &mut Vec::new(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_anything_else_does_not_decode() {
        let r = Record {
            deployment: [7; ID_LEN],
            threshold: 2,
            total: 3,
            index: 2,
            check: [9; 32],
            value: Zeroizing::new(vec![5; SECRET_LEN]),
        };
        let bytes = r.encode();
        let back = Record::decode(&bytes).expect("decodes");
        assert_eq!((back.deployment, back.threshold, back.total, back.index), ([7; ID_LEN], 2, 3, 2));
        assert_eq!((back.check, back.value.to_vec()), ([9; 32], vec![5; SECRET_LEN]));
        assert!(Record::decode(&bytes[..RECORD_LEN - 1]).is_none());
        let mut bad = bytes.to_vec();
        bad[0] ^= 1;
        assert!(Record::decode(&bad).is_none());
        bad[0] ^= 1;
        bad[4] = 2;
        assert!(Record::decode(&bad).is_none());
    }

    #[test]
    fn combinations_are_every_k_subset() {
        assert_eq!(combinations(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(combinations(4, 4).len(), 1);
        assert_eq!(combinations(5, 3).len(), 10);
        assert!(combinations(2, 3).is_empty());
        assert!(combinations(2, 0).is_empty());
    }

    #[test]
    fn the_check_value_depends_on_secret_deployment_and_name() {
        let c = check_value(&[1; 32], &[2; ID_LEN], "root").unwrap();
        assert_ne!(c, check_value(&[3; 32], &[2; ID_LEN], "root").unwrap());
        assert_ne!(c, check_value(&[1; 32], &[4; ID_LEN], "root").unwrap());
        assert_ne!(c, check_value(&[1; 32], &[2; ID_LEN], "wmk/a/v1").unwrap());
    }
}
