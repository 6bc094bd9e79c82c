//! What a store holds, as a backup's manifest records it and a verification compares it:
//! per workspace its master key versions (number, state, stored records under each), its
//! key-encryption key's generation and check value, and its object count; the audit
//! chain's head and checkpoint count.
//!
//! Everything here is read without unsealing anything: the KEK's check value is stored
//! beside it (an HMAC under a fixed label, `quorum/kek.rs`), while master key versions
//! have none, so they are recorded by number and state only.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{Backend, IndexQuery, Lifecycle};

/// One master key version, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterSummary {
    /// 1, 2, ...
    pub version: u32,
    /// `active`, `decrypt-only`, `retired` or `destroyed`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Stored DEKs sealed under this version.
    pub stored_records: u64,
    /// `imported:<how>` for a BYOK import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// The workspace's key-encryption key, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KekSummary {
    /// Bumped by every new KEK.
    pub generation: u32,
    /// k of a k-of-n split; 0 without a quorum.
    pub threshold: u8,
    /// The stored check value (hex), which proves a recombined KEK.
    pub check: String,
}

/// One workspace in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSummary {
    /// The workspace name.
    pub name: String,
    /// Whether `C_InitToken` has run.
    pub initialized: bool,
    /// Token objects stored.
    pub objects: u64,
    /// Master key versions, oldest first.
    pub masters: Vec<MasterSummary>,
    /// The KEK, once one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kek: Option<KekSummary>,
}

/// The audit chain's last entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadSummary {
    /// Its sequence number.
    pub seq: i64,
    /// Its hash (hex).
    pub hash: String,
}

/// What a store holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The workspaces, in the order asked for.
    pub workspaces: Vec<WorkspaceSummary>,
    /// The audit chain's head (`None`: no entry yet).
    pub audit_head: Option<HeadSummary>,
    /// Signed checkpoints stored.
    pub checkpoints: usize,
}

/// A lifecycle state's manifest name.
pub fn state_name(state: Lifecycle) -> &'static str {
    match state {
        Lifecycle::Active => "active",
        Lifecycle::DecryptOnly => "decrypt-only",
        Lifecycle::Retired => "retired",
        Lifecycle::Destroyed => "destroyed",
    }
}

impl Summary {
    /// What `store` holds for `workspaces` (each token's row is created if missing, as
    /// any opener does).
    pub fn of(store: &dyn Backend, workspaces: &[String]) -> Result<Summary> {
        let mut out = Vec::with_capacity(workspaces.len());
        for name in workspaces {
            out.push(workspace(store, name)?);
        }
        let audit_head = store.audit_head()?.map(|(seq, hash)| HeadSummary { seq, hash: hex::encode(hash) });
        Ok(Summary { workspaces: out, audit_head, checkpoints: store.checkpoints()?.len() })
    }

    /// Every token object in the store.
    pub fn objects(&self) -> u64 {
        self.workspaces.iter().map(|w| w.objects).sum()
    }

    /// How `other` (what a copy holds) differs from this (what the manifest says), one
    /// line per difference.
    pub fn differences(&self, other: &Summary) -> Vec<String> {
        let mut out = Vec::new();
        if self.audit_head != other.audit_head {
            out.push(format!("audit head: manifest {:?}, copy {:?}", self.audit_head, other.audit_head));
        }
        if self.checkpoints != other.checkpoints {
            out.push(format!("checkpoints: manifest {}, copy {}", self.checkpoints, other.checkpoints));
        }
        for want in &self.workspaces {
            match other.workspaces.iter().find(|w| w.name == want.name) {
                None => out.push(format!("workspace {}: in the manifest, not in the copy", want.name)),
                Some(got) if got != want => {
                    out.push(format!("workspace {}: manifest {want:?}, copy {got:?}", want.name))
                }
                Some(_) => {}
            }
        }
        out
    }
}

fn workspace(store: &dyn Backend, name: &str) -> Result<WorkspaceSummary> {
    let token = store.open_token(name, "")?;
    let mut masters = Vec::new();
    for m in store.masters(name)? {
        masters.push(MasterSummary {
            version: m.version,
            state: state_name(m.state).to_string(),
            created_at: m.created_at,
            stored_records: store.records_under(name, m.version)?,
            origin: m.origin,
        });
    }
    let kek = store.kek(name)?.map(|k| KekSummary {
        generation: k.generation,
        threshold: k.threshold,
        check: hex::encode(k.check),
    });
    let objects = store.find_objects(name, &IndexQuery::default())?.len() as u64;
    Ok(WorkspaceSummary { name: name.to_string(), initialized: token.initialized, objects, masters, kek })
}
