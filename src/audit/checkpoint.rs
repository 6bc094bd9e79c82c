//! Signed checkpoints: every N entries (and at `C_Finalize`) the chain head is signed
//! inside the root token, and the root token remembers the newest checkpoint.
//!
//! A hash chain alone proves nothing against someone who rewrites the whole store: they
//! can recompute every hash. A checkpoint's signature cannot be recomputed without the
//! audit key, which never leaves the root token, and the head the root token keeps
//! cannot be rolled back by editing the store, so a rewritten chain fails its checkpoints
//! and a dropped tail (or dropped checkpoints) falls short of the head.

use std::sync::Arc;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::{verify, Defect, Verdict};
use crate::error::Result;
use crate::root::slot::{Head, SlotRoot};
use crate::store::audit::{AuditRow, Checkpoint};
use crate::store::{AppendHook, Backend};

/// Makes checkpoints with the root token's audit key.
pub struct Checkpointer {
    root: Arc<SlotRoot>,
    every: u64,
    busy: Mutex<()>,
}

impl Checkpointer {
    /// A checkpoint every `every` entries (0: only when asked, e.g. at finalize).
    pub fn new(root: Arc<SlotRoot>, every: u64) -> Checkpointer {
        Checkpointer { root, every, busy: Mutex::new(()) }
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
        let (signature, public_key) = self.root.sign_checkpoint(&Checkpoint::message(number, seq, &hash))?;
        store.add_checkpoint(&Checkpoint {
            number,
            entry_seq: seq,
            entry_hash: hash.clone(),
            signature,
            public_key,
        })?;
        self.root.set_head(number, seq, &hash)?;
        log::info!("audit checkpoint {number} signed at entry {seq}");
        Ok(())
    }
}

impl AppendHook for Checkpointer {
    fn appended(&self, store: &dyn Backend, seq: i64) {
        if self.every == 0 || u64::try_from(seq).map_or(true, |s| s % self.every != 0) {
            return;
        }
        if let Err(e) = self.checkpoint(store) {
            log::error!("audit checkpoint at entry {seq} failed: {e}");
        }
    }
}

/// Whether a checkpoint's signature verifies under the public key it names.
pub fn signature_verifies(c: &Checkpoint) -> bool {
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&c.public_key) else {
        return false;
    };
    let Ok(signature) = p256::ecdsa::Signature::from_slice(&c.signature) else {
        return false;
    };
    let digest = Sha256::digest(Checkpoint::message(c.number, c.entry_seq, &c.entry_hash));
    key.verify_prehash(&digest, &signature).is_ok()
}

/// The audit public key (an uncompressed P-256 point) as a PEM `PUBLIC KEY`
/// (SubjectPublicKeyInfo), for verifiers outside this tool.
pub fn public_key_pem(point: &[u8]) -> Result<String> {
    use p256::pkcs8::EncodePublicKey;
    let key = p256::PublicKey::from_sec1_bytes(point)
        .map_err(|_| crate::error::Error::Integrity("the audit public key is not a P-256 point"))?;
    key.to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .map_err(|_| crate::error::Error::Integrity("the audit public key does not encode"))
}

/// Verifies the chain, its checkpoints, and (when the root token is at hand) the head it
/// keeps. `trusted_key`, when given, is the audit key the root token holds: checkpoints
/// signed by any other key are forgeries.
pub fn verify_all(
    rows: &[AuditRow],
    checkpoints: &[Checkpoint],
    head: Option<&Head>,
    trusted_key: Option<&[u8]>,
) -> Verdict {
    let expected_len = head.map(|(_, seq, _)| *seq);
    let chain = verify(rows, expected_len);
    if let Verdict::Broken { .. } = chain {
        return chain;
    }
    for c in checkpoints {
        let forged = trusted_key.is_some_and(|k| k != c.public_key.as_slice());
        if forged || !signature_verifies(c) {
            return Verdict::Broken { seq: c.entry_seq, defect: Defect::Changed };
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
        let digest = Sha256::digest(Checkpoint::message(number, row.seq, &row.hash));
        let sig: p256::ecdsa::Signature = key.sign_prehash(&digest).expect("sign");
        Checkpoint {
            number,
            entry_seq: row.seq,
            entry_hash: row.hash.clone(),
            signature: sig.to_bytes().to_vec(),
            public_key: key.verifying_key().to_sec1_bytes().to_vec(),
        }
    }

    fn key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key")
    }

    #[test]
    fn a_chain_with_good_checkpoints_and_head_is_intact() {
        let rows = chain(6);
        let cps = vec![signed(&key(), 1, &rows[2]), signed(&key(), 2, &rows[5])];
        let head = (2, 6, rows[5].hash.clone());
        let public = key().verifying_key().to_sec1_bytes().to_vec();
        assert!(matches!(verify_all(&rows, &cps, Some(&head), Some(&public)), Verdict::Intact { .. }));
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
        assert_eq!(verify_all(&forged, &cps, None, None), Verdict::Broken { seq: 4, defect: Defect::Changed });
    }

    #[test]
    fn a_dropped_tail_or_checkpoint_is_truncation() {
        let rows = chain(6);
        let cps = [signed(&key(), 1, &rows[2]), signed(&key(), 2, &rows[5])];
        let head = (2, 6, rows[5].hash.clone());
        let verdict = verify_all(&rows[..4], &cps[..1], Some(&head), None);
        assert_eq!(verdict, Verdict::Broken { seq: 5, defect: Defect::Truncated });
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused() {
        let rows = chain(3);
        let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("key");
        let cps = vec![signed(&other, 1, &rows[2])];
        let trusted = key().verifying_key().to_sec1_bytes().to_vec();
        assert!(matches!(verify_all(&rows, &cps, None, Some(&trusted)), Verdict::Broken { .. }));
        assert!(
            matches!(verify_all(&rows, &cps, None, None), Verdict::Intact { .. }),
            "self-consistent without a trusted key"
        );
    }
}
