//! The audit table's entry format and hash chain.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and a canonical,
//! length-prefixed encoding of the entry, so changing, deleting, inserting or reordering
//! a row breaks the chain from that row on. Entries name objects by `CKA_UNIQUE_ID` and
//! label, never by key bytes, PINs or plaintext.

use sha2::{Digest, Sha256};

/// Hash that precedes the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

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
}

impl AuditEvent {
    /// An event with outcome `CKR_OK`.
    pub fn ok(workspace: &str, actor: &str, action: &str, object: Option<String>) -> AuditEvent {
        AuditEvent {
            workspace: Some(workspace.to_string()),
            actor: actor.to_string(),
            action: action.to_string(),
            object,
            outcome: "CKR_OK".to_string(),
        }
    }

    /// The same event with another outcome.
    pub fn with_outcome(mut self, outcome: impl Into<String>) -> AuditEvent {
        self.outcome = outcome.into();
        self
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
}

impl AuditRow {
    /// The hash this row's contents give after `prev`.
    pub fn computed_hash(&self, prev: &[u8]) -> [u8; 32] {
        AuditEntry { seq: self.seq, at_ms: self.at_ms, pid: self.pid, event: &self.event }.chain_hash(prev)
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
    /// The chain hash of this entry after `prev`.
    pub fn chain_hash(&self, prev: &[u8]) -> [u8; 32] {
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
        h.finalize().into()
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
    fn field_boundaries_are_unambiguous() {
        let mut a = AuditEvent::ok("ws", "ab", "C_Login", Some("c".into()));
        let h1 = entry(&a).chain_hash(&GENESIS);
        a.actor = "a".into();
        a.object = Some("bc".into());
        assert_ne!(h1, entry(&a).chain_hash(&GENESIS));
    }
}
