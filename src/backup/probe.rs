//! The proof that a restored copy is usable, not just intact: sample stored DEKs open
//! under the master key versions the copy holds, with the root of trust the config names.
//!
//! The copy (in a scratch directory, never the live store) is opened as the module opens
//! a store: a [`Token`] per workspace over the config's `[root]` slot, logged in with the
//! user PIN, since under a delegated root a master key version opens only with the root
//! key AND the storage key a PIN record holds (`root::BoundRoot`): the root alone opens
//! nothing, by design. Then, for every master key version with stored records, up to
//! [`SAMPLES`] of them are opened exactly as a session opens one (`open_stored`: the
//! version's key unsealed, the record's AES-GCM tag, the policy it binds). No checkpoint
//! hook is installed on the copy, so the root token's audit head (which belongs to the
//! live chain) is never moved; the login's own entries land in the scratch copy and go
//! with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::root::slot::SlotRoot;
use crate::store::{Backend, IndexQuery, PinOwner};
use crate::token::{Root, Token};

/// Stored DEKs opened per master key version (spread over the version's records).
pub const SAMPLES: usize = 3;

/// What the proof found in one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    /// Per master key version: (stored records sampled, opened).
    pub by_version: BTreeMap<u32, (usize, usize)>,
    /// The first failure, naming the record and why.
    pub failures: Vec<String>,
}

impl Opened {
    /// DEKs opened in all.
    pub fn opened(&self) -> usize {
        self.by_version.values().map(|(_, ok)| ok).sum()
    }
}

/// The root the copy is opened with: the config's `[root]` slot, else the software root.
pub fn root(config: &Config) -> Result<Root> {
    match &config.root {
        None => Ok(Root::Soft),
        Some(cfg) => Ok(Root::Slot(Arc::new(SlotRoot::connect(cfg)?))),
    }
}

/// Logs in to `workspace` of `store` (a restored copy) with `user_pin` and opens sample
/// stored DEKs under every master key version that has some.
pub fn open_samples(
    config: &Config,
    root: &Root,
    store: Arc<dyn Backend>,
    workspace: &str,
    user_pin: &[u8],
) -> Result<Opened> {
    let ws = config
        .workspaces
        .iter()
        .find(|w| w.name == workspace)
        .ok_or_else(|| Error::Store(format!("workspace {workspace:?} is not in the config")))?;
    let token = Token::open(0, ws, store.clone(), config.pin_policy.clone(), root.clone(), config.quorum.clone())?;
    token.login(PinOwner::User, user_pin, false, None)?;
    let hierarchy = token.hierarchy()?;
    let mut by_version: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for (_, record) in store.find_objects(workspace, &IndexQuery::default())? {
        if let Some(v) = record.master_version {
            by_version.entry(v).or_default().push(record);
        }
    }
    let mut out = Opened::default();
    for (version, records) in by_version {
        let step = records.len().div_ceil(SAMPLES).max(1);
        let sample: Vec<_> = records.iter().step_by(step).take(SAMPLES).collect();
        let mut ok = 0;
        for record in &sample {
            match crate::session::records::open_stored(&hierarchy, workspace, record) {
                Ok(_secret) => ok += 1,
                Err(e) => out.failures.push(format!(
                    "workspace {workspace}: stored DEK {} under master key v{version} does not open: {e}",
                    record.unique_id
                )),
            }
        }
        out.by_version.insert(version, (sample.len(), ok));
    }
    drop(token.logout(None));
    Ok(out)
}
