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

/// The first of a checkpoint's signatures that fails (forged, or not verifying), by
/// name; a checkpoint with no signature at all fails as a whole.
fn failed_signature(c: &Checkpoint, trusted: &TrustedKeys<'_>) -> Option<&'static str> {
    let bad = |s: &CheckpointSig, key: Option<&[u8]>, verifies: fn(&Checkpoint, &CheckpointSig) -> bool| {
        key.is_some_and(|k| k != s.public_key.as_slice()) || !verifies(c, s)
    };
    if c.ecdsa.is_none() && c.mldsa.is_none() {
        return Some("no");
    }
    if c.ecdsa.as_ref().is_some_and(|s| bad(s, trusted.ecdsa, ecdsa_verifies)) {
        return Some(ECDSA);
    }
    if c.mldsa.as_ref().is_some_and(|s| bad(s, trusted.mldsa, mldsa_verifies)) {
        return Some(MLDSA);
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
    for c in checkpoints {
        if let Some(algorithm) = failed_signature(c, trusted) {
            return Verdict::Broken { seq: c.entry_seq, defect: Defect::Signature { checkpoint: c.number, algorithm } };
        }
        // A chain rewritten after this checkpoint no longer has the hash it signed.
        let at = rows.iter().find(|r| r.seq == c.entry_seq);
        if at.is_none_or(|r| r.hash != c.entry_hash) {
            return Verdict::Broken { seq: c.entry_seq, defect: Defect::Changed };
        }
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
}
