//! Signed checkpoints: every N entries, at the first entry once `checkpoint_seconds`
//! have passed, after every key-management event, and at `C_Finalize`, the chain head is
//! signed inside the root token, and the root token remembers the newest checkpoint.
//!
//! Only entries after the newest checkpoint can be cut from the store undetected, so the
//! events that matter most (see [`checkpoints_at_once`]) never wait in that tail. A
//! checkpoint that fails is counted; after `max_checkpoint_failures` in a row, every
//! key-management write is refused (fail closed) until a retry succeeds.
//!
//! A hash chain alone proves nothing against someone who rewrites the whole store: they
//! can recompute every hash. A checkpoint's signatures cannot be recomputed without the
//! audit keys, kept in the root token (ECDSA P-256 made there; ML-DSA-65 with its seed
//! sealed there, `[audit] checkpoint_signature` choosing either or both), and the head
//! the root token keeps cannot be rolled back by editing the store, so a rewritten chain
//! fails its checkpoints and a dropped tail (or dropped checkpoints) falls short of the
//! head. Each checkpoint is verified with whichever signatures it carries, so checkpoints
//! from before ML-DSA (ECDSA only) still verify.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mechanism::primitives;
use parking_lot::Mutex;

use super::succession::{successions, Succession};
use super::{verify, Defect, Verdict};
use crate::config::{AuditConfig, CheckpointSignature};
use crate::error::{Error, Result};
use crate::root::slot::{Head, SlotRoot};
use crate::store::audit::{AuditEvent, AuditRow, Checkpoint, CheckpointSignature as CheckpointSig};
use crate::store::{AppendHook, Backend};

/// Actions checkpointed as soon as their entry commits: changes to the hierarchy, to
/// who may log in, destruction, and plaintext leaving the token. Each costs one signature
/// in the root token, so the frequent key-making calls (generate, unwrap, derive) are
/// left to the count and time rules.
const AT_ONCE: &[&str] = &[
    "CKM_CV_ROTATE_MASTER",
    "CKM_CV_IMPORT_MASTER",
    "CKA_CV_LIFECYCLE",
    "CKA_CV_BLOCKED",
    "CKM_CV_REWRAP_STORED",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_DestroyObject",
    "C_SetAttributeValue",
    "C_GetAttributeValue",
    "ALERT unwrap burst",
    "ALERT failed logins",
    super::succession::ACTION,
];

/// Key-management actions: refused while checkpoints keep failing.
const KEY_MANAGEMENT: &[&str] = &[
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_CreateObject",
    "C_CopyObject",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_EncapsulateKey",
    "C_DecapsulateKey",
    "CKM_CV_REWRAP_RECORD",
    "rewrap batch",
];

/// Whether an entry with this action is checkpointed as soon as it commits.
pub fn checkpoints_at_once(action: &str) -> bool {
    AT_ONCE.contains(&action)
}

/// Whether this action is key management (refused while checkpoints keep failing).
pub fn is_key_management(action: &str) -> bool {
    checkpoints_at_once(action) || KEY_MANAGEMENT.contains(&action)
}

/// Makes checkpoints with the root token's audit keys.
pub struct Checkpointer {
    root: Arc<SlotRoot>,
    every: u64,
    interval: Option<Duration>,
    max_failures: u32,
    /// Which signatures each checkpoint carries.
    algorithms: CheckpointSignature,
    /// When the last checkpoint succeeded (`None`: not yet in this process).
    last: Mutex<Option<Instant>>,
    /// Checkpoints failed in a row.
    failures: AtomicU32,
    busy: Mutex<()>,
}

impl Checkpointer {
    /// A checkpointer with the `[audit]` settings (`checkpoint_every` 0: no count rule;
    /// `checkpoint_seconds` 0: no time rule).
    pub fn new(root: Arc<SlotRoot>, config: &AuditConfig) -> Checkpointer {
        Checkpointer {
            root,
            every: config.checkpoint_every,
            interval: (config.checkpoint_seconds > 0).then(|| Duration::from_secs(config.checkpoint_seconds)),
            max_failures: config.max_checkpoint_failures.max(1),
            algorithms: config.checkpoint_signature,
            last: Mutex::new(None),
            failures: AtomicU32::new(0),
            busy: Mutex::new(()),
        }
    }

    /// Whether a checkpoint is due after entry `seq` recording `action`.
    fn due(&self, seq: i64, action: &str) -> bool {
        let by_count = self.every != 0 && u64::try_from(seq).is_ok_and(|s| s % self.every == 0);
        let by_time = self.interval.is_some_and(|i| self.last.lock().is_none_or(|at| at.elapsed() >= i));
        by_count || by_time || checkpoints_at_once(action) || self.failures.load(Ordering::Acquire) > 0
    }

    /// [`Checkpointer::checkpoint`], counting failures in a row.
    fn attempt(&self, store: &dyn Backend, why: &str) -> Result<()> {
        match self.checkpoint(store) {
            Ok(()) => {
                *self.last.lock() = Some(Instant::now());
                let before = self.failures.swap(0, Ordering::AcqRel);
                if before > 0 {
                    log::warn!("audit checkpoint succeeded after {before} failure(s) ({why})");
                }
                Ok(())
            }
            Err(e) => {
                let n = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                log::error!("audit checkpoint failed ({why}), {n} in a row: {e}");
                if n >= self.max_failures {
                    log::error!(
                        "audit checkpoints failed {n} times in a row: key management is refused until one succeeds"
                    );
                }
                Err(e)
            }
        }
    }

    /// Signs the current chain head, unless the newest checkpoint already covers it.
    pub fn checkpoint(&self, store: &dyn Backend) -> Result<()> {
        let _one_at_a_time = self.busy.lock();
        let Some((seq, hash)) = store.audit_head()? else {
            return Ok(());
        };
        let last = store.checkpoints()?.pop();
        if last.as_ref().is_some_and(|c| c.entry_seq >= seq) {
            return Ok(());
        }
        let number = last.map_or(1, |c| c.number + 1);
        let message = Checkpoint::message(number, seq, &hash);
        let (ecdsa, mldsa) = self.root.sign_checkpoint(&message, self.algorithms)?;
        store.add_checkpoint(&Checkpoint { number, entry_seq: seq, entry_hash: hash.clone(), ecdsa, mldsa })?;
        self.root.set_head(number, seq, &hash)?;
        log::info!("audit checkpoint {number} signed at entry {seq}");
        Ok(())
    }
}

impl AppendHook for Checkpointer {
    fn admit(&self, store: &dyn Backend, events: &[AuditEvent]) -> Result<()> {
        if self.failures.load(Ordering::Acquire) < self.max_failures {
            return Ok(());
        }
        // Refusals are still recorded: only successful key management is held back.
        let Some(e) = events.iter().find(|e| e.outcome == "CKR_OK" && is_key_management(&e.action)) else {
            return Ok(());
        };
        // Retry first: a root token that came back lets the call through.
        if self.attempt(store, &format!("retry before {}", e.action)).is_ok() {
            return Ok(());
        }
        let n = self.failures.load(Ordering::Acquire);
        log::error!("{} refused: audit checkpoints failed {n} times in a row (fail closed)", e.action);
        Err(Error::CheckpointsFailing(n))
    }

    fn appended(&self, store: &dyn Backend, seq: i64, event: &AuditEvent) {
        if self.due(seq, &event.action) {
            // Counted and logged by `attempt`; the entry itself is committed either way.
            drop(self.attempt(store, &format!("after entry {seq}, {}", event.action)));
        }
    }
}

/// The audit public keys a verifier trusts (those the root token holds). A checkpoint
/// signature by any other key is a forgery; `None` trusts the key a checkpoint names
/// (self-consistency only).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustedKeys<'a> {
    /// The ECDSA P-256 key's uncompressed point.
    pub ecdsa: Option<&'a [u8]>,
    /// The ML-DSA-65 key's encoding.
    pub mldsa: Option<&'a [u8]>,
}

/// Whether a checkpoint's ECDSA P-256 signature verifies under the public key it names.
pub fn ecdsa_verifies(c: &Checkpoint, s: &CheckpointSig) -> bool {
    let digest = primitives::sha256(&Checkpoint::message(c.number, c.entry_seq, &c.entry_hash));
    primitives::p256_verify_prehash(&s.public_key, &digest, &s.signature)
}

/// Whether a checkpoint's ML-DSA-65 signature verifies under the public key it names.
pub fn mldsa_verifies(c: &Checkpoint, s: &CheckpointSig) -> bool {
    primitives::mldsa65_verify(&s.public_key, &Checkpoint::message(c.number, c.entry_seq, &c.entry_hash), &s.signature)
}

/// The keys a checkpoint must be signed by: the trusted ones (the root token's), or,
/// before a root succession, the predecessor's keys the succession entry names, or the
/// trusted ones still (the new root may sign before the entry is written: a module run
/// between the loss and the recovery; a trusted signature is good evidence anywhere).
#[derive(Clone, Copy)]
enum Signers<'a> {
    Trusted(&'a TrustedKeys<'a>),
    Predecessor(&'a Succession, &'a TrustedKeys<'a>),
}

impl Signers<'_> {
    /// Whether `public_key` may sign by `algorithm` (`ECDSA` or `MLDSA`).
    fn accept(&self, algorithm: &str, public_key: &[u8]) -> bool {
        match self {
            Signers::Trusted(t) => {
                let key = if algorithm == ECDSA { t.ecdsa } else { t.mldsa };
                key.is_none_or(|k| k == public_key)
            }
            Signers::Predecessor(s, trusted) => {
                s.names(algorithm, public_key) || Signers::Trusted(trusted).accept(algorithm, public_key)
            }
        }
    }
}

/// The first of a checkpoint's signatures that fails (forged, by a key `signers` does
/// not accept, or not verifying), by name; a checkpoint with no signature at all fails as
/// a whole.
fn failed_signature(c: &Checkpoint, signers: Signers<'_>) -> Option<&'static str> {
    let bad = |s: &CheckpointSig, algorithm: &str, verifies: fn(&Checkpoint, &CheckpointSig) -> bool| {
        !signers.accept(algorithm, &s.public_key) || !verifies(c, s)
    };
    if c.ecdsa.is_none() && c.mldsa.is_none() {
        return Some("no");
    }
    if c.ecdsa.as_ref().is_some_and(|s| bad(s, ECDSA, ecdsa_verifies)) {
        return Some(ECDSA);
    }
    if c.mldsa.as_ref().is_some_and(|s| bad(s, MLDSA, mldsa_verifies)) {
        return Some(MLDSA);
    }
    None
}

/// Whether `c` is signed by keys `trusted` accepts (a root token's own checkpoint).
pub fn signed_by(c: &Checkpoint, trusted: &TrustedKeys<'_>) -> bool {
    failed_signature(c, Signers::Trusted(trusted)).is_none()
}

/// Who must have signed a checkpoint at entry `seq`: the keys named by the first
/// succession after it, or (after the last one) the trusted keys.
fn signers_at<'a>(seq: i64, successions: &'a [(i64, Succession)], trusted: &'a TrustedKeys<'a>) -> Signers<'a> {
    successions
        .iter()
        .find(|(at, _)| seq < *at)
        .map_or(Signers::Trusted(trusted), |(_, s)| Signers::Predecessor(s, trusted))
}

/// Each succession entry holds: the last checkpoint it names is in the store, before it,
/// with the hash it names (the lost root's head, so dropped checkpoints are caught), and
/// no checkpoint before it but one the trusted keys signed is numbered after that one.
fn check_successions(
    successions: &[(i64, Succession)],
    checkpoints: &[Checkpoint],
    trusted: &TrustedKeys<'_>,
) -> Option<Verdict> {
    for (seq, s) in successions {
        let named = checkpoints.iter().find(|c| c.number == s.last_number);
        if !named.is_some_and(|c| c.entry_seq == s.last_seq && c.entry_hash == s.last_hash && c.entry_seq < *seq) {
            return Some(Verdict::Broken { seq: s.last_seq, defect: Defect::Truncated });
        }
        if let Some(c) =
            checkpoints.iter().find(|c| c.entry_seq < *seq && c.number > s.last_number && !signed_by(c, trusted))
        {
            let why = "a checkpoint before it is newer than the last one it names";
            return Some(Verdict::Broken { seq: c.entry_seq, defect: Defect::Succession(why) });
        }
    }
    None
}

/// The name a verdict gives a checkpoint's ECDSA signature.
pub const ECDSA: &str = "ECDSA P-256";
/// The name a verdict gives a checkpoint's ML-DSA signature.
pub const MLDSA: &str = "ML-DSA-65";

/// The ECDSA audit public key (an uncompressed P-256 point) as a PEM `PUBLIC KEY`
/// (SubjectPublicKeyInfo), for verifiers outside this tool.
pub fn public_key_pem(point: &[u8]) -> Result<String> {
    primitives::p256_public_key_pem(point)
}

/// The ML-DSA-65 audit public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, OID
/// 2.16.840.1.101.3.4.3.18), for verifiers outside this tool.
pub fn mldsa_public_key_pem(public: &[u8]) -> Result<String> {
    primitives::mldsa65_public_key_pem(public)
}

/// Verifies the chain, its checkpoints' signatures (whichever each carries), and (when
/// the root token is at hand) the head it keeps. `trusted` names the audit keys the
/// root token holds.
///
/// Across a root succession (`succession.rs`), the checkpoints before the entry must be
/// signed by the predecessor keys it names, and the entry is believed only when a
/// checkpoint at or after it is signed by a trusted key (that checkpoint's hash commits
/// to the whole chain before it, the entry included).
pub fn verify_all(
    rows: &[AuditRow],
    checkpoints: &[Checkpoint],
    head: Option<&Head>,
    trusted: &TrustedKeys<'_>,
) -> Verdict {
    let expected_len = head.map(|(_, seq, _)| *seq);
    let chain = verify(rows, expected_len);
    if let Verdict::Broken { .. } = chain {
        return chain;
    }
    let successions = match successions(rows) {
        Ok(s) => s,
        Err(seq) => return Verdict::Broken { seq, defect: Defect::Succession("it does not parse") },
    };
    if let Some((seq, _)) = successions.last() {
        if !checkpoints.iter().any(|c| c.entry_seq >= *seq) {
            let why = "no checkpoint signed by a trusted key covers it";
            return Verdict::Broken { seq: *seq, defect: Defect::Succession(why) };
        }
    }
    for c in checkpoints {
        if let Some(algorithm) = failed_signature(c, signers_at(c.entry_seq, &successions, trusted)) {
            return Verdict::Broken { seq: c.entry_seq, defect: Defect::Signature { checkpoint: c.number, algorithm } };
        }
        // A chain rewritten after this checkpoint no longer has the hash it signed.
        let at = rows.iter().find(|r| r.seq == c.entry_seq);
        if at.is_none_or(|r| r.hash != c.entry_hash) {
            return Verdict::Broken { seq: c.entry_seq, defect: Defect::Changed };
        }
    }
    if let Some(broken) = check_successions(&successions, checkpoints, trusted) {
        return broken;
    }
    if let Some((number, seq, hash)) = head {
        // The store must still hold the checkpoint the root remembers (it may hold newer
        // ones, if the root was not updated before a crash).
        let remembered = checkpoints.iter().find(|c| c.number == *number);
        if !remembered.is_some_and(|c| c.entry_seq == *seq && c.entry_hash == *hash) {
            let after = checkpoints.last().map_or(1, |c| c.entry_seq + 1);
            return Verdict::Broken { seq: after, defect: Defect::Truncated };
        }
    }
    chain
}

/// What a recovery must do so that the chain carries across the loss of the root token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuccessionDue {
    /// Nothing: no checkpoint yet, or the newest is already signed by the trusted keys.
    Nothing,
    /// Append this succession entry, then sign a checkpoint over it.
    Append(Succession),
    /// An earlier, interrupted run appended the entry (at this seq): sign a checkpoint.
    Sign(i64),
}

/// Decides [`SuccessionDue`] for a store about to be recovered onto a root whose keys are
/// `new`. Before naming the predecessor's keys, the log must verify on its own under them
/// (chain, every checkpoint, and earlier successions), with its newest checkpoint as the
/// head: recovery vouches for what it finds, so it must not find a forgery. Entries after
/// that checkpoint are vouched for as found (the lost root's head is gone with it).
pub fn succession_due(
    rows: &[AuditRow],
    checkpoints: &[Checkpoint],
    new: &TrustedKeys<'_>,
) -> std::result::Result<SuccessionDue, Verdict> {
    let unparsed = |seq| Verdict::Broken { seq, defect: Defect::Succession("it does not parse") };
    let known = successions(rows).map_err(unparsed)?;
    // The lost root's newest checkpoint: the newest the new root did not sign (it may have
    // signed some already, if the module ran on it before this recovery).
    let Some(last) = checkpoints.iter().rev().find(|c| !signed_by(c, new)) else {
        return Ok(SuccessionDue::Nothing);
    };
    // Its checkpoints: those since the last succession it signed over.
    let since = known.iter().rev().find(|(seq, _)| *seq <= last.entry_seq).map_or(0, |(seq, _)| *seq);
    let signed: Vec<Checkpoint> =
        checkpoints.iter().filter(|c| c.entry_seq >= since && c.number <= last.number).cloned().collect();
    let candidate = Succession::of(last, &signed);
    // An entry for this predecessor after its last checkpoint: an earlier run wrote it.
    let pending = known.iter().find(|(seq, s)| *seq > last.entry_seq && *s == candidate).map(|(seq, _)| *seq);
    if let Some(seq) = pending {
        if checkpoints.iter().any(|c| c.entry_seq >= seq && signed_by(c, new)) {
            return Ok(SuccessionDue::Nothing);
        }
    }
    // The log up to that entry (or all of it) is what the entry vouches for.
    let before = pending.map_or(rows.len(), |seq| rows.iter().take_while(|r| r.seq < seq).count());
    let theirs: Vec<Checkpoint> = checkpoints.iter().filter(|c| c.number <= last.number).cloned().collect();
    match self_check(&rows[..before], &theirs, &candidate, last) {
        Verdict::Intact { .. } => Ok(pending.map_or(SuccessionDue::Append(candidate), SuccessionDue::Sign)),
        broken => Err(broken),
    }
}

/// The log verified as if `candidate` were appended and then vouched for: the
/// predecessor's keys are those `last` and its segment carry, and `last` is the head.
fn self_check(rows: &[AuditRow], checkpoints: &[Checkpoint], candidate: &Succession, last: &Checkpoint) -> Verdict {
    let ecdsa = checkpoints.iter().rev().find_map(|c| c.ecdsa.as_ref()).map(|s| s.public_key.as_slice());
    let mldsa = checkpoints.iter().rev().find_map(|c| c.mldsa.as_ref()).map(|s| s.public_key.as_slice());
    let (ecdsa, mldsa) = (
        ecdsa.filter(|k| candidate.names(ECDSA, k)).unwrap_or_default(),
        mldsa.filter(|k| candidate.names(MLDSA, k)).unwrap_or_default(),
    );
    let as_trusted = TrustedKeys { ecdsa: Some(ecdsa), mldsa: Some(mldsa) };
    verify_all(rows, checkpoints, Some(&(last.number, last.entry_seq, last.entry_hash.clone())), &as_trusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    fn chain(n: i64) -> Vec<AuditRow> {
        crate::audit::test_chain(n)
    }

    fn signed(key: &p256::ecdsa::SigningKey, number: i64, row: &AuditRow) -> Checkpoint {
        let digest = primitives::sha256(&Checkpoint::message(number, row.seq, &row.hash));
        let sig: p256::ecdsa::Signature = key.sign_prehash(&digest).expect("sign");
        let ecdsa = CheckpointSig {
            signature: sig.to_bytes().to_vec(),
            public_key: key.verifying_key().to_sec1_bytes().to_vec(),
        };
        Checkpoint { number, entry_seq: row.seq, entry_hash: row.hash.clone(), ecdsa: Some(ecdsa), mldsa: None }
    }

    const SEED: [u8; 32] = [3u8; 32];

    /// `signed` plus an ML-DSA-65 signature under the key of `SEED`.
    fn signed_both(key: &p256::ecdsa::SigningKey, number: i64, row: &AuditRow) -> Checkpoint {
        let mut c = signed(key, number, row);
        let message = Checkpoint::message(number, row.seq, &row.hash);
        let signature = primitives::mldsa65_sign(&SEED, &message).expect("ML-DSA");
        c.mldsa = Some(CheckpointSig { signature, public_key: primitives::mldsa65_public_key(&SEED).expect("pk") });
        c
    }

    fn trust(ecdsa: Option<&[u8]>) -> TrustedKeys<'_> {
        TrustedKeys { ecdsa, mldsa: None }
    }

    fn key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key")
    }

    #[test]
    fn hierarchy_changes_and_value_reads_are_checkpointed_at_once() {
        for action in ["CKM_CV_ROTATE_MASTER", "CKA_CV_LIFECYCLE", "C_DestroyObject", "C_GetAttributeValue"] {
            assert!(checkpoints_at_once(action) && is_key_management(action), "{action}");
        }
        for action in ["C_GenerateKey", "C_UnwrapKey", "rewrap batch"] {
            assert!(!checkpoints_at_once(action) && is_key_management(action), "{action}");
        }
        for action in ["C_Encrypt", "C_Login", "C_Logout"] {
            assert!(!is_key_management(action), "{action}");
        }
    }

    #[test]
    fn a_chain_with_good_checkpoints_and_head_is_intact() {
        let rows = chain(6);
        let cps = vec![signed(&key(), 1, &rows[2]), signed(&key(), 2, &rows[5])];
        let head = (2, 6, rows[5].hash.clone());
        let public = key().verifying_key().to_sec1_bytes().to_vec();
        assert!(matches!(verify_all(&rows, &cps, Some(&head), &trust(Some(&public))), Verdict::Intact { .. }));
    }

    #[test]
    fn a_chain_rewritten_whole_fails_its_checkpoint() {
        let rows = chain(6);
        let cps = vec![signed(&key(), 1, &rows[3])];
        // Rewrite entry 2 and recompute every hash after it: the chain itself is consistent.
        let mut forged = rows.clone();
        forged[1].event.outcome = "CKR_PIN_INCORRECT".into();
        let mut prev = forged[0].hash.clone();
        for r in forged.iter_mut().skip(1) {
            r.prev_hash = prev.clone();
            r.hash = r.computed_hash(&prev).to_vec();
            prev = r.hash.clone();
        }
        assert!(matches!(verify(&forged, None), Verdict::Intact { .. }), "the chain alone is fooled");
        assert_eq!(verify_all(&forged, &cps, None, &trust(None)), Verdict::Broken { seq: 4, defect: Defect::Changed });
    }

    #[test]
    fn a_dropped_tail_or_checkpoint_is_truncation() {
        let rows = chain(6);
        let cps = [signed(&key(), 1, &rows[2]), signed(&key(), 2, &rows[5])];
        let head = (2, 6, rows[5].hash.clone());
        let verdict = verify_all(&rows[..4], &cps[..1], Some(&head), &trust(None));
        assert_eq!(verdict, Verdict::Broken { seq: 5, defect: Defect::Truncated });
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused() {
        let rows = chain(3);
        let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("key");
        let cps = vec![signed(&other, 1, &rows[2])];
        let trusted = key().verifying_key().to_sec1_bytes().to_vec();
        assert!(matches!(verify_all(&rows, &cps, None, &trust(Some(&trusted))), Verdict::Broken { .. }));
        assert!(
            matches!(verify_all(&rows, &cps, None, &trust(None)), Verdict::Intact { .. }),
            "self-consistent without a trusted key"
        );
    }

    #[test]
    fn an_ml_dsa_signature_or_key_that_fails_names_the_checkpoint() {
        let rows = chain(4);
        let good = vec![signed_both(&key(), 1, &rows[1]), signed_both(&key(), 2, &rows[3])];
        let ecdsa = key().verifying_key().to_sec1_bytes().to_vec();
        let mldsa = primitives::mldsa65_public_key(&SEED).expect("pk");
        let trusted = TrustedKeys { ecdsa: Some(&ecdsa), mldsa: Some(&mldsa) };
        assert!(matches!(verify_all(&rows, &good, None, &trusted), Verdict::Intact { .. }));
        let ml_dsa_failed = Verdict::Broken { seq: 4, defect: Defect::Signature { checkpoint: 2, algorithm: MLDSA } };

        let mut tampered = good.clone();
        tampered[1].mldsa.as_mut().expect("ML-DSA").signature[100] ^= 1;
        assert_eq!(verify_all(&rows, &tampered, None, &trusted), ml_dsa_failed);

        // Another ML-DSA key, self-consistent: refused against the trusted key only.
        let other = [9u8; 32];
        let mut forged = good.clone();
        let message = Checkpoint::message(2, rows[3].seq, &rows[3].hash);
        forged[1].mldsa = Some(CheckpointSig {
            signature: primitives::mldsa65_sign(&other, &message).expect("sign"),
            public_key: primitives::mldsa65_public_key(&other).expect("pk"),
        });
        assert_eq!(verify_all(&rows, &forged, None, &trusted), ml_dsa_failed);
        assert!(matches!(verify_all(&rows, &forged, None, &TrustedKeys::default()), Verdict::Intact { .. }));

        let mut bare = good;
        bare[0].ecdsa = None;
        bare[0].mldsa = None;
        let none = Defect::Signature { checkpoint: 1, algorithm: "no" };
        assert_eq!(verify_all(&rows, &bare, None, &trusted), Verdict::Broken { seq: 2, defect: none });
    }

    #[test]
    fn checkpoints_with_either_signature_alone_verify() {
        let rows = chain(4);
        let mut cps = vec![signed(&key(), 1, &rows[1]), signed_both(&key(), 2, &rows[3])];
        cps[1].ecdsa = None;
        let ecdsa = key().verifying_key().to_sec1_bytes().to_vec();
        let mldsa = primitives::mldsa65_public_key(&SEED).expect("pk");
        let trusted = TrustedKeys { ecdsa: Some(&ecdsa), mldsa: Some(&mldsa) };
        assert!(matches!(verify_all(&rows, &cps, None, &trusted), Verdict::Intact { .. }));
    }

    /// Recomputes every hash and link, as someone rewriting the store would.
    fn relink(rows: &mut [AuditRow]) {
        let mut prev = crate::store::audit::GENESIS.to_vec();
        for r in rows.iter_mut() {
            r.prev_hash = prev.clone();
            r.hash = r.computed_hash(&prev).to_vec();
            prev = r.hash.clone();
        }
    }

    fn new_key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[11u8; 32]).expect("key")
    }

    fn public(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
        key.verifying_key().to_sec1_bytes().to_vec()
    }

    /// A chain of `n` entries whose entry `at` is a succession naming `succession`.
    fn chain_with_succession(n: i64, at: i64, succession: &Succession) -> Vec<AuditRow> {
        let mut rows = chain(n);
        let event = &mut rows[usize::try_from(at - 1).expect("small")].event;
        event.action = crate::audit::succession::ACTION.into();
        event.object = Some(succession.to_text());
        relink(&mut rows);
        rows
    }

    /// The lost root (`key()`, ECDSA and ML-DSA) signed checkpoints 1 and 2 at entries 3
    /// and 5; recovery appended the succession at 7 and the new root (`new_key()`, ECDSA
    /// only) signed checkpoint 3 at 8. Returns the rows, checkpoints and the new head.
    fn recovered() -> (Vec<AuditRow>, Vec<Checkpoint>, Head) {
        let pre = chain(6);
        let old = vec![signed(&key(), 1, &pre[2]), signed_both(&key(), 2, &pre[4])];
        let s = Succession::of(&old[1], &old);
        let rows = chain_with_succession(9, 7, &s);
        let mut cps = vec![signed(&key(), 1, &rows[2]), signed_both(&key(), 2, &rows[4])];
        cps.push(signed(&new_key(), 3, &rows[7]));
        let head = (3, 8, rows[7].hash.clone());
        (rows, cps, head)
    }

    fn new_trust(key: &[u8]) -> TrustedKeys<'_> {
        TrustedKeys { ecdsa: Some(key), mldsa: Some(&[]) }
    }

    #[test]
    fn a_chain_across_a_root_succession_is_intact() {
        let (rows, cps, head) = recovered();
        let new_pk = public(&new_key());
        let verdict = verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk));
        assert!(matches!(verdict, Verdict::Intact { entries: 9, .. }), "{verdict:?}");
        // Without the succession entry the old checkpoints fail, as before this existed.
        let bare = chain(9);
        let mut plain = vec![signed(&key(), 1, &bare[2]), signed_both(&key(), 2, &bare[4])];
        plain.push(signed(&new_key(), 3, &bare[7]));
        let failed = Defect::Signature { checkpoint: 1, algorithm: ECDSA };
        assert_eq!(verify_all(&bare, &plain, None, &new_trust(&new_pk)), Verdict::Broken { seq: 3, defect: failed });
    }

    #[test]
    fn a_pre_loss_checkpoint_under_a_key_the_succession_does_not_name_is_forged() {
        let (rows, mut cps, head) = recovered();
        let new_pk = public(&new_key());
        let mallory = p256::ecdsa::SigningKey::from_slice(&[13u8; 32]).expect("key");
        cps[0] = signed(&mallory, 1, &rows[2]);
        let forged = Defect::Signature { checkpoint: 1, algorithm: ECDSA };
        assert_eq!(
            verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk)),
            Verdict::Broken { seq: 3, defect: forged }
        );
    }

    #[test]
    fn a_succession_no_trusted_checkpoint_covers_is_refused() {
        let (rows, cps, _) = recovered();
        let new_pk = public(&new_key());
        // Only the old checkpoints: nothing trusted vouches for the entry.
        let uncovered = Defect::Succession("no checkpoint signed by a trusted key covers it");
        assert_eq!(
            verify_all(&rows, &cps[..2], None, &new_trust(&new_pk)),
            Verdict::Broken { seq: 7, defect: uncovered }
        );
        // Covered by a checkpoint under a key nobody trusts: that checkpoint fails.
        let mut cps = cps;
        let mallory = p256::ecdsa::SigningKey::from_slice(&[13u8; 32]).expect("key");
        cps[2] = signed(&mallory, 3, &rows[7]);
        let forged = Defect::Signature { checkpoint: 3, algorithm: ECDSA };
        assert_eq!(verify_all(&rows, &cps, None, &new_trust(&new_pk)), Verdict::Broken { seq: 8, defect: forged });
        // A second, forged succession appended after the trusted checkpoint, naming
        // another key: uncovered, and the checkpoint before it is not under that key.
        let mallory_cp = signed(&mallory, 9, &rows[8]);
        let fake = Succession::of(&mallory_cp, std::slice::from_ref(&mallory_cp));
        let mut more = recovered();
        more.0.push(more.0[8].clone());
        more.0[9].seq = 10;
        more.0[9].event.action = crate::audit::succession::ACTION.into();
        more.0[9].event.object = Some(fake.to_text());
        relink(&mut more.0);
        let verdict = verify_all(&more.0, &more.1, None, &new_trust(&new_pk));
        assert!(matches!(verdict, Verdict::Broken { seq: 10, defect: Defect::Succession(_) }), "{verdict:?}");
    }

    #[test]
    fn a_chain_rewritten_before_or_after_the_succession_fails() {
        let new_pk = public(&new_key());
        for at in [1, 6, 8] {
            let (mut rows, cps, head) = recovered();
            rows[at - 1].event.outcome = "CKR_PIN_INCORRECT".into();
            relink(&mut rows);
            let verdict = verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk));
            assert!(matches!(verdict, Verdict::Broken { defect: Defect::Changed, .. }), "entry {at}: {verdict:?}");
        }
        // The succession itself rewritten to name another predecessor key.
        let (mut rows, cps, head) = recovered();
        let mut s = Succession::parse(rows[6].event.object.as_deref().expect("text")).expect("parses");
        s.ecdsa = Some([0x42; 32]);
        rows[6].event.object = Some(s.to_text());
        relink(&mut rows);
        assert!(matches!(verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk)), Verdict::Broken { .. }));
    }

    #[test]
    fn truncation_across_a_succession_is_caught() {
        let (rows, cps, head) = recovered();
        let new_pk = public(&new_key());
        // The tail after the new root's checkpoint: short of the head it keeps.
        let verdict = verify_all(&rows[..7], &cps[..2], Some(&head), &new_trust(&new_pk));
        assert!(matches!(verdict, Verdict::Broken { defect: Defect::Truncated, .. }), "{verdict:?}");
        // The last pre-loss checkpoint dropped: the succession names it.
        let dropped = [cps[0].clone(), cps[2].clone()];
        assert_eq!(
            verify_all(&rows, &dropped, Some(&head), &new_trust(&new_pk)),
            Verdict::Broken { seq: 5, defect: Defect::Truncated }
        );
        // A checkpoint slipped in before the entry, newer than the one it names.
        let mut extra = cps.clone();
        extra.insert(2, signed(&key(), 3, &rows[5]));
        extra[3] = signed(&new_key(), 4, &rows[7]);
        let head4 = (4, 8, rows[7].hash.clone());
        let verdict = verify_all(&rows, &extra, Some(&head4), &new_trust(&new_pk));
        assert!(matches!(verdict, Verdict::Broken { seq: 6, defect: Defect::Succession(_) }), "{verdict:?}");
    }

    #[test]
    fn an_unparseable_succession_entry_breaks_the_chain() {
        let (mut rows, cps, head) = recovered();
        rows[6].event.object = Some("ecdsa=whatever".into());
        relink(&mut rows);
        let new_pk = public(&new_key());
        let verdict = verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk));
        assert_eq!(verdict, Verdict::Broken { seq: 7, defect: Defect::Succession("it does not parse") });
    }

    #[test]
    fn recovery_names_the_predecessor_once_and_refuses_a_forged_log() {
        let new_pk = public(&new_key());
        let pre = chain(6);
        let old = vec![signed(&key(), 1, &pre[2]), signed_both(&key(), 2, &pre[4])];
        assert_eq!(succession_due(&pre, &[], &new_trust(&new_pk)), Ok(SuccessionDue::Nothing));
        let Ok(SuccessionDue::Append(s)) = succession_due(&pre, &old, &new_trust(&new_pk)) else {
            panic!("a succession is due");
        };
        let mldsa = primitives::mldsa65_public_key(&SEED).expect("pk");
        assert!(s.names(ECDSA, &public(&key())) && s.names(MLDSA, &mldsa) && !s.names(ECDSA, &new_pk));
        assert_eq!((s.last_number, s.last_seq), (2, 5));
        // A run killed after appending the entry: the rerun signs, appending nothing.
        let rows = chain_with_succession(7, 7, &s);
        let cps = vec![signed(&key(), 1, &rows[2]), signed_both(&key(), 2, &rows[4])];
        assert_eq!(succession_due(&rows, &cps, &new_trust(&new_pk)), Ok(SuccessionDue::Sign(7)));
        // Once the new root signed over it: nothing more.
        let (rows, cps, _) = recovered();
        assert_eq!(succession_due(&rows, &cps, &new_trust(&new_pk)), Ok(SuccessionDue::Nothing));
        // A log whose checkpoints disagree (one under another key): not vouched for.
        let mallory = p256::ecdsa::SigningKey::from_slice(&[13u8; 32]).expect("key");
        let mixed = vec![signed(&mallory, 1, &pre[2]), signed_both(&key(), 2, &pre[4])];
        assert!(succession_due(&pre, &mixed, &new_trust(&new_pk)).is_err());
        // Nor one rewritten whole (its checkpoint no longer matches).
        let mut rewritten = pre.clone();
        rewritten[0].event.actor = "mallory".into();
        relink(&mut rewritten);
        assert!(succession_due(&rewritten, &old, &new_trust(&new_pk)).is_err());
    }

    /// The module ran on the new, empty root before the recovery (a login attempt after
    /// the loss) and signed a checkpoint with the new key: the succession still names the
    /// lost root's last checkpoint, and the new root's earlier checkpoint stands.
    #[test]
    fn a_checkpoint_the_new_root_signed_before_the_recovery_stands() {
        let new_pk = public(&new_key());
        let pre = chain(7);
        let cps = vec![signed(&key(), 1, &pre[2]), signed(&key(), 2, &pre[4]), signed(&new_key(), 3, &pre[5])];
        let Ok(SuccessionDue::Append(s)) = succession_due(&pre, &cps, &new_trust(&new_pk)) else {
            panic!("a succession is due");
        };
        assert_eq!((s.last_number, s.last_seq), (2, 5));
        let rows = chain_with_succession(8, 8, &s);
        let mut cps = vec![signed(&key(), 1, &rows[2]), signed(&key(), 2, &rows[4]), signed(&new_key(), 3, &rows[5])];
        assert_eq!(succession_due(&rows, &cps, &new_trust(&new_pk)), Ok(SuccessionDue::Sign(8)));
        cps.push(signed(&new_key(), 4, &rows[7]));
        let head = (4, 8, rows[7].hash.clone());
        let verdict = verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk));
        assert!(matches!(verdict, Verdict::Intact { .. }), "{verdict:?}");
        assert_eq!(succession_due(&rows, &cps, &new_trust(&new_pk)), Ok(SuccessionDue::Nothing));
        // But an untrusted key there is still a forgery.
        let mallory = p256::ecdsa::SigningKey::from_slice(&[13u8; 32]).expect("key");
        cps[2] = signed(&mallory, 3, &rows[5]);
        assert!(matches!(verify_all(&rows, &cps, Some(&head), &new_trust(&new_pk)), Verdict::Broken { seq: 6, .. }));
    }
}
