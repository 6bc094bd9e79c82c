//! `audit/`: proof about the hash-chained audit log the store keeps.
//!
//! The store appends every entry in the same transaction as the change it records
//! (`store/audit.rs` defines the entry and its hash). This module walks the chain and
//! either proves it intact or names the first bad entry and what happened to it: its
//! contents changed, it was deleted, moved, or inserted. A chain anyone can recompute
//! proves nothing against someone who rewrites it whole; signed checkpoints answer that,
//! and the checkpoint head kept under the root of trust answers a dropped tail.

pub mod analytics;
pub mod checkpoint;
pub mod export;
pub mod succession;
pub mod time;

use std::collections::HashMap;
use std::fmt;

use crate::store::audit::{AuditRow, GENESIS};

/// What is wrong with the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    /// Its contents no longer give its stored hash.
    Changed,
    /// The entry with this sequence number is gone.
    Deleted,
    /// It belongs elsewhere in the chain (its predecessor is another entry).
    Reordered,
    /// It was never appended by the module (its link matches no entry).
    Inserted,
    /// Entries after this one, which a checkpoint proved existed, are gone.
    Truncated,
    /// The checkpoint at this entry carries a signature (named) that does not verify, or
    /// is by a key other than the root token's ("no": it carries none).
    Signature {
        /// The checkpoint's number.
        checkpoint: i64,
        /// `"ECDSA P-256"` or `"ML-DSA-65"`.
        algorithm: &'static str,
    },
    /// A root succession entry (`succession.rs`) that does not hold: it does not parse,
    /// no checkpoint by a trusted key covers it, or the checkpoints before it do not end
    /// where it says (the reason).
    Succession(&'static str),
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Defect::Changed => "changed: its contents no longer match its hash",
            Defect::Deleted => "deleted: the entry with this number is missing",
            Defect::Reordered => "reordered: it links to an entry other than the one before it",
            Defect::Inserted => "inserted: it links to no entry of the chain",
            Defect::Truncated => "truncated: the log ends before the last checkpoint",
            Defect::Succession(why) => return write!(f, "root succession entry: {why}"),
            Defect::Signature { checkpoint, algorithm: "no" } => {
                return write!(f, "checkpoint {checkpoint}: it carries no signature")
            }
            Defect::Signature { checkpoint, algorithm } => {
                return write!(
                f,
                "checkpoint {checkpoint}: its {algorithm} signature does not verify under the root token's audit key"
            )
            }
        })
    }
}

/// The verdict on a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry links to the one before it and matches its hash.
    Intact {
        /// Entries checked.
        entries: usize,
        /// The chain head's hash (hex), for comparison with a checkpoint.
        head: String,
    },
    /// The first bad entry.
    Broken {
        /// Its sequence number.
        seq: i64,
        /// What is wrong with it.
        defect: Defect,
    },
}

/// Walks `rows` (in sequence order). `expected_len`, when known from a checkpoint kept
/// outside the store, also catches a dropped tail.
pub fn verify(rows: &[AuditRow], expected_len: Option<i64>) -> Verdict {
    let stored: HashMap<&[u8], i64> = rows.iter().map(|r| (r.hash.as_slice(), r.seq)).collect();
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let mut expected_seq = 1;
    for row in rows {
        if row.seq != expected_seq {
            return Verdict::Broken { seq: expected_seq, defect: Defect::Deleted };
        }
        if row.prev_hash != prev {
            let defect = if stored.contains_key(row.prev_hash.as_slice()) || row.prev_hash == GENESIS {
                Defect::Reordered
            } else if row.computed_hash(&row.prev_hash).as_slice() == row.hash {
                Defect::Inserted
            } else {
                Defect::Changed
            };
            return Verdict::Broken { seq: row.seq, defect };
        }
        if row.computed_hash(&prev).as_slice() != row.hash {
            return Verdict::Broken { seq: row.seq, defect: Defect::Changed };
        }
        prev.clone_from(&row.hash);
        expected_seq += 1;
    }
    if let Some(len) = expected_len {
        if expected_seq - 1 < len {
            return Verdict::Broken { seq: expected_seq, defect: Defect::Truncated };
        }
    }
    Verdict::Intact { entries: rows.len(), head: hex::encode(&prev) }
}

/// A well-formed chain of `n` entries, for the tests of this module and its children.
#[cfg(test)]
pub(crate) fn test_chain(n: i64) -> Vec<AuditRow> {
    use crate::store::audit::{AuditEntry, AuditEvent};
    let mut prev = GENESIS.to_vec();
    (1..=n)
        .map(|seq| {
            let event = AuditEvent::ok("ws", "user", "C_Login", Some(format!("entry {seq}")));
            let hash = AuditEntry { seq, at_ms: seq * 1000, pid: 7, event: &event }.chain_hash(&prev).to_vec();
            let row = AuditRow {
                seq,
                at_ms: seq * 1000,
                pid: 7,
                event,
                prev_hash: prev.clone(),
                hash: hash.clone(),
                format: crate::store::audit::FORMAT,
            };
            prev = hash;
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::{AuditEntry, AuditEvent};

    fn chain(n: i64) -> Vec<AuditRow> {
        test_chain(n)
    }

    fn broken(rows: &[AuditRow], expected: Option<i64>) -> (i64, Defect) {
        match verify(rows, expected) {
            Verdict::Broken { seq, defect } => (seq, defect),
            Verdict::Intact { .. } => panic!("tampering went unnoticed"),
        }
    }

    #[test]
    fn an_untouched_chain_is_intact() {
        assert!(matches!(verify(&chain(5), Some(5)), Verdict::Intact { entries: 5, .. }));
    }

    #[test]
    fn a_changed_field_is_named() {
        let mut rows = chain(5);
        rows[2].event.outcome = "CKR_PIN_INCORRECT".into();
        assert_eq!(broken(&rows, None), (3, Defect::Changed));
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let mut rows = chain(5);
        rows.remove(1);
        assert_eq!(broken(&rows, None), (2, Defect::Deleted));
    }

    #[test]
    fn swapped_entries_are_reordered() {
        let mut rows = chain(5);
        let (a, b) = (rows[1].clone(), rows[3].clone());
        rows[1] = AuditRow { seq: 2, ..b };
        rows[3] = AuditRow { seq: 4, ..a };
        assert_eq!(broken(&rows, None), (2, Defect::Reordered));
    }

    #[test]
    fn an_inserted_entry_is_named() {
        let mut rows = chain(5);
        // A forged entry with a self-consistent hash but a made-up link, renumbering the rest.
        let forged_prev = vec![0xee; 32];
        let event = AuditEvent::ok("ws", "mallory", "C_DestroyObject", None);
        let hash = AuditEntry { seq: 3, at_ms: 0, pid: 1, event: &event }.chain_hash(&forged_prev).to_vec();
        let format = crate::store::audit::FORMAT;
        rows.insert(2, AuditRow { seq: 3, at_ms: 0, pid: 1, event, prev_hash: forged_prev, hash, format });
        for (i, r) in rows.iter_mut().enumerate().skip(3) {
            r.seq = i64::try_from(i).expect("small") + 1;
        }
        assert_eq!(broken(&rows, None), (3, Defect::Inserted));
    }

    #[test]
    fn a_dropped_tail_is_caught_by_the_checkpoint_count() {
        let mut rows = chain(5);
        rows.truncate(3);
        assert!(matches!(verify(&rows, None), Verdict::Intact { entries: 3, .. }), "the chain alone cannot tell");
        assert_eq!(broken(&rows, Some(5)), (4, Defect::Truncated));
    }
}
