//! Root succession: the audit entry that carries the chain across the loss of the root
//! token (`cvault recover`, `doc/recovery.md`).
//!
//! Checkpoints made before the loss are signed by the lost root token's audit keys, which
//! the new root token neither holds nor trusts, and the head the lost root kept is gone.
//! Recovery therefore appends one entry ([`ACTION`]) naming, by SHA-256 fingerprint, the
//! predecessor's checkpoint public keys (ECDSA P-256 and, if it had one, ML-DSA-65) and the
//! last checkpoint they signed, and has the new root sign a checkpoint over it at once.
//! A verifier then accepts the checkpoints before that entry under the keys it names, and
//! only because a checkpoint signed by a key it trusts commits to the entry
//! (`checkpoint::verify_all`). The entry itself vouches for nothing: anyone who can edit
//! the store can write one, and one no trusted checkpoint covers is refused.

use std::fmt::Write as _;

use crate::mechanism::primitives;
use crate::store::audit::{AuditRow, Checkpoint};

/// The action of a succession entry.
pub const ACTION: &str = "ROOT REPLACED";

/// A fingerprint: the SHA-256 of a public key's encoding (the uncompressed P-256 point,
/// the FIPS 204 `pkEncode` of the ML-DSA-65 key), as checkpoints carry them.
pub type Fingerprint = [u8; 32];

/// The fingerprint of a public key.
pub fn fingerprint(public_key: &[u8]) -> Fingerprint {
    primitives::sha256(public_key)
}

/// What a succession entry names: the keys that signed the checkpoints before it, and the
/// last of those checkpoints (it stands in for the head the lost root token kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Succession {
    /// The predecessor's ECDSA P-256 checkpoint key (`None`: it signed none with ECDSA).
    pub ecdsa: Option<Fingerprint>,
    /// The predecessor's ML-DSA-65 checkpoint key (`None`: it signed none with ML-DSA).
    pub mldsa: Option<Fingerprint>,
    /// The last checkpoint the predecessor signed: its number.
    pub last_number: i64,
    /// The entry that checkpoint covers.
    pub last_seq: i64,
    /// That entry's hash.
    pub last_hash: Vec<u8>,
}

const ECDSA_FIELD: &str = "ecdsa";
const MLDSA_FIELD: &str = "ml-dsa";
const NUMBER_FIELD: &str = "last-checkpoint";
const SEQ_FIELD: &str = "at-entry";
const HASH_FIELD: &str = "hash";
const NONE: &str = "none";

impl Succession {
    /// The predecessor named from its last checkpoint `last` and the checkpoints it
    /// signed (`signed`, which must include `last`): the newest key of each algorithm.
    pub fn of(last: &Checkpoint, signed: &[Checkpoint]) -> Succession {
        let newest =
            |pick: fn(&Checkpoint) -> Option<&[u8]>| signed.iter().rev().find_map(|c| pick(c)).map(fingerprint);
        Succession {
            ecdsa: newest(|c| c.ecdsa.as_ref().map(|s| s.public_key.as_slice())),
            mldsa: newest(|c| c.mldsa.as_ref().map(|s| s.public_key.as_slice())),
            last_number: last.number,
            last_seq: last.entry_seq,
            last_hash: last.entry_hash.clone(),
        }
    }

    /// Whether `public_key` is the predecessor's key for `algorithm` (a
    /// `checkpoint::ECDSA` or `checkpoint::MLDSA` name).
    pub fn names(&self, algorithm: &str, public_key: &[u8]) -> bool {
        let named = if algorithm == super::checkpoint::ECDSA { self.ecdsa } else { self.mldsa };
        named.is_some_and(|f| f == fingerprint(public_key))
    }

    /// The entry's object text: `key=value` fields, one space apart.
    pub fn to_text(&self) -> String {
        let key = |f: Option<Fingerprint>| f.map_or_else(|| NONE.to_string(), |f| format!("sha256:{}", hex::encode(f)));
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "{ECDSA_FIELD}={} {MLDSA_FIELD}={} {NUMBER_FIELD}={} {SEQ_FIELD}={} {HASH_FIELD}={}",
            key(self.ecdsa),
            key(self.mldsa),
            self.last_number,
            self.last_seq,
            hex::encode(&self.last_hash)
        );
        s
    }

    /// Parses [`Succession::to_text`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<Succession> {
        let mut fields = std::collections::HashMap::new();
        for part in text.split(' ') {
            let (k, v) = part.split_once('=')?;
            if fields.insert(k, v).is_some() {
                return None;
            }
        }
        let key = |name: &str| -> Option<Option<Fingerprint>> {
            match *fields.get(name)? {
                NONE => Some(None),
                v => hex::decode(v.strip_prefix("sha256:")?).ok()?.try_into().ok().map(Some),
            }
        };
        let s = Succession {
            ecdsa: key(ECDSA_FIELD)?,
            mldsa: key(MLDSA_FIELD)?,
            last_number: fields.get(NUMBER_FIELD)?.parse().ok()?,
            last_seq: fields.get(SEQ_FIELD)?.parse().ok()?,
            last_hash: hex::decode(fields.get(HASH_FIELD)?).ok()?,
        };
        (fields.len() == 5 && (s.ecdsa.is_some() || s.mldsa.is_some())).then_some(s)
    }

    /// A short description for people: `ECDSA P-256 sha256:ab12cd34…, ML-DSA-65 none`.
    pub fn keys_line(&self) -> String {
        let short = |f: Option<Fingerprint>| {
            f.map_or_else(|| NONE.to_string(), |f| format!("sha256:{}…", hex::encode(&f[..8])))
        };
        format!(
            "{} {}, {} {}",
            super::checkpoint::ECDSA,
            short(self.ecdsa),
            super::checkpoint::MLDSA,
            short(self.mldsa)
        )
    }
}

/// Every succession entry of the chain (action [`ACTION`], outcome `CKR_OK`), with its
/// sequence number, in order; `Err(seq)`: the entry at `seq` has that action but does not
/// parse.
pub fn successions(rows: &[AuditRow]) -> std::result::Result<Vec<(i64, Succession)>, i64> {
    rows.iter()
        .filter(|r| r.event.action == ACTION && r.event.outcome == "CKR_OK")
        .map(|r| r.event.object.as_deref().and_then(Succession::parse).map(|s| (r.seq, s)).ok_or(r.seq))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Succession {
        Succession { ecdsa: Some([1; 32]), mldsa: None, last_number: 4, last_seq: 57, last_hash: vec![0xab; 32] }
    }

    #[test]
    fn the_text_round_trips() {
        let s = sample();
        assert_eq!(Succession::parse(&s.to_text()), Some(s.clone()));
        let both = Succession { mldsa: Some([2; 32]), ..s };
        assert_eq!(Succession::parse(&both.to_text()), Some(both));
    }

    #[test]
    fn malformed_text_is_refused() {
        let good = sample().to_text();
        for bad in [
            String::new(),
            good.replace("last-checkpoint=4", "last-checkpoint=four"),
            good.replace("ecdsa=sha256:", "ecdsa=sha1:"),
            format!("{good} hash=00"),
            good.replace(" at-entry=57", ""),
            good.replace(&format!("sha256:{}", hex::encode([1u8; 32])), "none"),
        ] {
            assert_eq!(Succession::parse(&bad), None, "{bad}");
        }
    }
}
