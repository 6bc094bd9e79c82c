//! The audit table's entry format and hash chain.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and a canonical,
//! length-prefixed encoding of the entry, so changing, deleting, inserting or reordering
//! a row breaks the chain from that row on. Entries name objects by `CKA_UNIQUE_ID` and
//! label, never by key bytes, PINs or plaintext.
//!
//! The encoding is versioned per entry (the `format` column, schema v5): format 1, which
//! every entry written before had, hashes an absent workspace or object like an empty
//! one; format 2 (written now) puts a presence byte before every optional field. Entries
//! keep the format they were written with, so existing chains still verify.

use crate::mechanism::primitives::{sha256, Sha256};

/// Hash that precedes the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The entry encoding written now (see the module docs).
pub const FORMAT: u8 = 2;

/// The encoding of entries written before formats were recorded.
pub const FORMAT_V1: u8 = 1;

/// Who causes an audited event, and in which session: the part of an entry the C call
/// decides. The session layer makes one per call (`session::Ctx::caller`) and passes it
/// down to the token and the hierarchy, so every entry a call causes names its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<'a> {
    /// `user`, `so`, `public`, or `module` for what the module does by itself.
    pub actor: &'a str,
    /// The session handle of the call, when it runs in one.
    pub session: Option<u64>,
}

impl Caller<'_> {
    /// The module itself, outside any session (upgrades, alerts, maintenance).
    pub const MODULE: Caller<'static> = Caller { actor: "module", session: None };
}

/// One audited event, as the layers above describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Workspace (token) the event concerns, if any.
    pub workspace: Option<String>,
    /// Who acted: `user`, `so`, `public`, or a named user.
    pub actor: String,
    /// What was done, e.g. `C_Login`, `C_CreateObject`.
    pub action: String,
    /// The object concerned (`CKA_UNIQUE_ID` and label), if any.
    pub object: Option<String>,
    /// `CKR_OK` or the refusal's `CKR_` name.
    pub outcome: String,
    /// The session handle the event happened in, if it happened in one.
    pub session: Option<u64>,
    /// For a counter entry: how many operations of this kind the entry stands for.
    pub count: Option<u64>,
    /// How its commit reaches the disk (not part of the entry or its hash).
    pub sync: Sync,
}

/// How an entry's commit reaches the disk.
///
/// Every change to stored state (the hierarchy, token objects, PINs), every export of key
/// material and every entry checkpointed at once commits `Full`: fsynced before the call
/// returns. Entries about what lives only in the process (a session object made, data
/// operations counted) may commit `Lazy`: written to the WAL at once (a crashed process
/// loses nothing) and fsynced with the next `Full` commit or WAL checkpoint, so a power
/// loss can cut a suffix of them from the chain, never one in the middle, and never the
/// entry of anything that outlives the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    /// fsynced before the call returns.
    #[default]
    Full,
    /// fsynced with the next full commit.
    Lazy,
    /// A session object's key-management entry: with `[audit] session_objects =
    /// "batched"` held in memory, in call order, and written as one `Lazy` transaction
    /// when the batch is full or old, at session close, logout and `C_Finalize`, and
    /// before any other entry (`store/batch.rs`); otherwise written like `Lazy`.
    Batched,
}

impl AuditEvent {
    /// An event with outcome `CKR_OK`, in no session.
    pub fn ok(workspace: &str, actor: &str, action: &str, object: Option<String>) -> AuditEvent {
        AuditEvent {
            workspace: Some(workspace.to_string()),
            actor: actor.to_string(),
            action: action.to_string(),
            object,
            outcome: "CKR_OK".to_string(),
            session: None,
            count: None,
            sync: Sync::Full,
        }
    }

    /// An event with outcome `CKR_OK`, caused by `by` (in its session, if any).
    pub fn by(workspace: &str, by: Caller<'_>, action: &str, object: Option<String>) -> AuditEvent {
        AuditEvent::ok(workspace, by.actor, action, object).in_session(by.session)
    }

    /// The same event, committed without its own fsync (see [`Sync::Lazy`]).
    pub fn synced_lazily(mut self) -> AuditEvent {
        self.sync = Sync::Lazy;
        self
    }

    /// The same event, a session object's, which may wait in a batch (see [`Sync::Batched`]).
    pub fn batched(mut self) -> AuditEvent {
        self.sync = Sync::Batched;
        self
    }

    /// The same event in another session (or none).
    pub fn in_session(mut self, session: Option<u64>) -> AuditEvent {
        self.session = session;
        self
    }

    /// The same event standing for `count` operations.
    pub fn counted(mut self, count: u64) -> AuditEvent {
        self.count = Some(count);
        self
    }

    /// The same event with another outcome.
    pub fn with_outcome(mut self, outcome: impl Into<String>) -> AuditEvent {
        self.outcome = outcome.into();
        self
    }
}

/// A signed statement that the chain reached entry `entry_seq` with hash `entry_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// 1, 2, ...
    pub number: i64,
    /// The entry it covers.
    pub entry_seq: i64,
    /// That entry's hash.
    pub entry_hash: Vec<u8>,
    /// ECDSA P-256 over the SHA-256 of [`Checkpoint::message`] (r||s), made inside the
    /// root token, with the key's uncompressed point; `None` when not configured.
    pub ecdsa: Option<CheckpointSignature>,
    /// Pure ML-DSA-65 (FIPS 204, empty context) over [`Checkpoint::message`], with the
    /// encoded public key; `None` when not configured, and in checkpoints made before it.
    pub mldsa: Option<CheckpointSignature>,
}

/// One signature of a checkpoint and the public key that verifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSignature {
    /// The signature.
    pub signature: Vec<u8>,
    /// The public key, for verifiers (who compare it with the one the root token holds).
    pub public_key: Vec<u8>,
}

impl Checkpoint {
    /// The bytes a checkpoint signature covers.
    pub fn message(number: i64, entry_seq: i64, entry_hash: &[u8]) -> Vec<u8> {
        let mut m = b"collabvault-checkpoint-v1".to_vec();
        m.extend_from_slice(&number.to_be_bytes());
        m.extend_from_slice(&entry_seq.to_be_bytes());
        m.extend_from_slice(entry_hash);
        m
    }
}

/// An entry as read back from the store, for verification and export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain.
    pub seq: i64,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// The appending process.
    pub pid: u32,
    /// The event.
    pub event: AuditEvent,
    /// The previous entry's hash, as stored.
    pub prev_hash: Vec<u8>,
    /// This entry's hash, as stored.
    pub hash: Vec<u8>,
    /// The encoding its hash was computed over ([`FORMAT_V1`] or [`FORMAT`]).
    pub format: u8,
}

impl AuditRow {
    /// The hash this row's contents give after `prev`, in the row's own format.
    pub fn computed_hash(&self, prev: &[u8]) -> [u8; 32] {
        AuditEntry { seq: self.seq, at_ms: self.at_ms, pid: self.pid, event: &self.event }
            .chain_hash_as(self.format, prev)
    }
}

/// The stored form of an entry: the event plus where and when it was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry<'a> {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// The appending process.
    pub pid: u32,
    /// The event.
    pub event: &'a AuditEvent,
}

impl AuditEntry<'_> {
    /// The chain hash of this entry after `prev`, in the current [`FORMAT`].
    pub fn chain_hash(&self, prev: &[u8]) -> [u8; 32] {
        self.chain_hash_as(FORMAT, prev)
    }

    /// The chain hash in `format`; an unknown format gives a hash no entry has.
    pub fn chain_hash_as(&self, format: u8, prev: &[u8]) -> [u8; 32] {
        match format {
            FORMAT_V1 => self.chain_hash_v1(prev),
            FORMAT => self.chain_hash_v2(prev),
            _ => [0xff; 32],
        }
    }

    /// Format 2: a presence byte before every optional field, so `None` and `""` differ.
    /// The hashed bytes are laid out in one buffer and hashed in one call: the same
    /// digest as absorbing them field by field, without a hash-state call per field.
    fn chain_hash_v2(&self, prev: &[u8]) -> [u8; 32] {
        let e = self.event;
        let texts = [e.workspace.as_deref(), Some(&e.actor), Some(&e.action), e.object.as_deref(), Some(&e.outcome)];
        let text_len: usize = texts.iter().map(|t| 9 + t.map_or(0, str::len)).sum();
        let mut m = Vec::with_capacity(20 + prev.len() + 20 + text_len + 18);
        m.extend_from_slice(b"collabvault-audit-v2");
        m.extend_from_slice(prev);
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(&self.at_ms.to_be_bytes());
        m.extend_from_slice(&self.pid.to_be_bytes());
        for field in texts {
            m.push(u8::from(field.is_some()));
            let field = field.unwrap_or("");
            m.extend_from_slice(&(field.len() as u64).to_be_bytes());
            m.extend_from_slice(field.as_bytes());
        }
        for field in [e.session, e.count] {
            m.push(u8::from(field.is_some()));
            m.extend_from_slice(&field.unwrap_or(0).to_be_bytes());
        }
        sha256(&m)
    }

    /// Format 1, for entries written before format 2.
    fn chain_hash_v1(&self, prev: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"collabvault-audit-v1");
        h.update(prev);
        h.update(self.seq.to_be_bytes());
        h.update(self.at_ms.to_be_bytes());
        h.update(self.pid.to_be_bytes());
        let e = self.event;
        for field in
            [e.workspace.as_deref().unwrap_or(""), &e.actor, &e.action, e.object.as_deref().unwrap_or(""), &e.outcome]
        {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        // Session and count came with schema v4. An entry without either hashes as before,
        // so chains written earlier still verify; with either, a tag and both fields (each
        // with a presence byte) follow, which no earlier entry's input can end with.
        if e.session.is_some() || e.count.is_some() {
            h.update(b"session+count");
            for field in [e.session, e.count] {
                h.update([u8::from(field.is_some())]);
                h.update(field.unwrap_or(0).to_be_bytes());
            }
        }
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event: &AuditEvent) -> AuditEntry<'_> {
        AuditEntry { seq: 1, at_ms: 1_700_000_000_000, pid: 42, event }
    }

    #[test]
    fn the_hash_depends_on_every_field_and_the_previous_hash() {
        let base = AuditEvent::ok("ws", "user", "C_Login", None);
        let h = entry(&base).chain_hash(&GENESIS);
        assert_ne!(h, entry(&base).chain_hash(&[1; 32]));
        let changed = base.clone().with_outcome("CKR_PIN_INCORRECT");
        assert_ne!(h, entry(&changed).chain_hash(&GENESIS));
        let mut other_actor = base.clone();
        other_actor.actor = "so".into();
        assert_ne!(h, entry(&other_actor).chain_hash(&GENESIS));
    }

    #[test]
    fn session_and_count_are_hashed_and_their_absence_keeps_the_old_hash() {
        let base = AuditEvent::ok("ws", "user", "C_Encrypt", None).in_session(None);
        let v1 = |e| entry(e).chain_hash_as(FORMAT_V1, &GENESIS);
        let h = v1(&base);
        let in_session = base.clone().in_session(Some(3));
        let counted = base.clone().counted(3);
        let hashes = [h, v1(&in_session), v1(&counted)];
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[1], hashes[2], "a session and a count of the same value differ");
        // The v1 encoding, written out: what entries before schema v4 hashed.
        let mut v1 = Sha256::new();
        v1.update(b"collabvault-audit-v1");
        v1.update(GENESIS);
        v1.update(1i64.to_be_bytes());
        v1.update(1_700_000_000_000i64.to_be_bytes());
        v1.update(42u32.to_be_bytes());
        for f in ["ws", "user", "C_Encrypt", "", "CKR_OK"] {
            v1.update((f.len() as u64).to_be_bytes());
            v1.update(f.as_bytes());
        }
        assert_eq!(h, v1.finalize());
    }

    #[test]
    fn the_format_2_hash_is_its_fields_absorbed_one_by_one() {
        // Written out field by field, as format 2 was defined: the one-buffer hash must
        // give every stored entry's hash unchanged.
        let e = AuditEvent::ok("ws", "user", "C_EncapsulateKey", Some("id \"k\" to id \"p\"".into()))
            .in_session(Some(7))
            .counted(3);
        let mut v2 = Sha256::new();
        v2.update(b"collabvault-audit-v2");
        v2.update([9u8; 32]);
        v2.update(1i64.to_be_bytes());
        v2.update(1_700_000_000_000i64.to_be_bytes());
        v2.update(42u32.to_be_bytes());
        for f in [Some("ws"), Some("user"), Some("C_EncapsulateKey"), Some("id \"k\" to id \"p\""), Some("CKR_OK")] {
            v2.update([u8::from(f.is_some())]);
            v2.update((f.unwrap_or("").len() as u64).to_be_bytes());
            v2.update(f.unwrap_or("").as_bytes());
        }
        for f in [Some(7u64), Some(3)] {
            v2.update([1u8]);
            v2.update(f.unwrap_or(0).to_be_bytes());
        }
        assert_eq!(entry(&e).chain_hash(&[9u8; 32]), v2.finalize());
        let mut bare = AuditEvent::ok("ws", "user", "C_Login", None);
        bare.workspace = None;
        let mut v2 = Sha256::new();
        v2.update(b"collabvault-audit-v2");
        v2.update(GENESIS);
        v2.update(1i64.to_be_bytes());
        v2.update(1_700_000_000_000i64.to_be_bytes());
        v2.update(42u32.to_be_bytes());
        for f in [None, Some("user"), Some("C_Login"), None, Some("CKR_OK")] {
            v2.update([u8::from(f.is_some())]);
            v2.update((f.unwrap_or("").len() as u64).to_be_bytes());
            v2.update(f.unwrap_or("").as_bytes());
        }
        v2.update([0u8]);
        v2.update(0u64.to_be_bytes());
        v2.update([0u8]);
        v2.update(0u64.to_be_bytes());
        assert_eq!(entry(&bare).chain_hash(&GENESIS), v2.finalize());
    }

    #[test]
    fn absent_and_empty_fields_differ_in_format_2_and_not_in_format_1() {
        let absent = AuditEvent::ok("ws", "user", "C_Login", None);
        let empty = AuditEvent::ok("ws", "user", "C_Login", Some(String::new()));
        assert_ne!(entry(&absent).chain_hash(&GENESIS), entry(&empty).chain_hash(&GENESIS));
        let v1 = |e| entry(e).chain_hash_as(FORMAT_V1, &GENESIS);
        assert_eq!(v1(&absent), v1(&empty), "the old format, kept for old entries");
        let mut no_ws = absent.clone();
        no_ws.workspace = None;
        let mut empty_ws = absent.clone();
        empty_ws.workspace = Some(String::new());
        assert_ne!(entry(&no_ws).chain_hash(&GENESIS), entry(&empty_ws).chain_hash(&GENESIS));
        assert_ne!(entry(&absent).chain_hash(&GENESIS), v1(&absent), "the formats never collide");
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = AuditEvent::ok("ws", "ab", "C_Login", Some("c".into()));
        let h1 = entry(&a).chain_hash(&GENESIS);
        a.actor = "a".into();
        a.object = Some("bc".into());
        assert_ne!(h1, entry(&a).chain_hash(&GENESIS));
    }
}
