//! A drill: proof, without changing anything, that a kit would restore the workspace.
//!
//! Two checks, both against the live workspace: every master key version that still
//! unwraps must be in the kit with the same key check value (a version the kit lacks
//! makes it stale; a different check value means it is another hierarchy's kit), and a
//! sample of the stored DEKs (wrap records in the store, under those versions) must open
//! with the kit's keys. The kit's keys stay in this process's memory, zeroized on drop;
//! the store is only read. Recording the outcome (audit entry, alert, hook) is the
//! caller's, so a drill run from a scheduler and one run by hand are recorded alike.

use cryptoki_sys::CKO_SECRET_KEY;
use serde::Serialize;

use super::kit::KitContents;
use crate::error::Result;
use crate::hierarchy::record;
use crate::mechanism::aes_gcm::GcmKey;
use crate::store::{Backend, IndexQuery, Lifecycle};

/// A live master key version as the module reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveVersion {
    /// The version number.
    pub version: u32,
    /// Its state.
    pub state: Lifecycle,
    /// Its key check value, if the module could compute it (not for a destroyed one).
    pub kcv: Option<[u8; 3]>,
}

/// What a drill found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    /// Versions whose key check values match.
    pub matched: Vec<u32>,
    /// Every problem, one sentence each; empty when the drill passed.
    pub problems: Vec<String>,
    /// Stored DEKs tried.
    pub sampled: usize,
    /// Of those, the ones the kit's keys opened.
    pub opened: usize,
}

impl DrillReport {
    /// Whether the kit would restore the workspace.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compares the kit's versions with the live ones by key check value.
pub fn compare_versions(kit: &KitContents, live: &[LiveVersion], report: &mut DrillReport) {
    for l in live.iter().filter(|l| l.state.unwraps()) {
        let Some(k) = kit.versions.iter().find(|k| k.version == l.version) else {
            report
                .problems
                .push(format!("stale: the kit lacks master key v{} (made after it); issue a new kit", l.version));
            continue;
        };
        match l.kcv {
            Some(kcv) if kcv == k.kcv => report.matched.push(l.version),
            Some(kcv) => report.problems.push(format!(
                "master key v{} does not match: the kit's check value is {}, the live one {} (another \
                 workspace's or hierarchy's kit?)",
                l.version,
                hex::encode(k.kcv),
                hex::encode(kcv)
            )),
            None => report.problems.push(format!("the module gave no check value for live v{}", l.version)),
        }
    }
    if report.matched.is_empty() && report.problems.is_empty() {
        report.problems.push("the workspace has no live master key version to compare".into());
    }
}

/// Tries to open up to `sample` stored DEKs (spread over the store) with the kit's keys.
pub fn sample_stored(
    store: &dyn Backend,
    workspace: &str,
    kit: &KitContents,
    sample: usize,
    report: &mut DrillReport,
) -> Result<()> {
    let query = IndexQuery { class: Some(CKO_SECRET_KEY), ..IndexQuery::default() };
    let stored: Vec<_> = store
        .find_objects(workspace, &query)?
        .into_iter()
        .filter(|(_, r)| r.master_version.is_some() && r.sealed.is_some())
        .collect();
    if stored.is_empty() || sample == 0 {
        return Ok(());
    }
    let step = stored.len().div_ceil(sample).max(1);
    for (id, r) in stored.iter().step_by(step) {
        report.sampled += 1;
        let blob = r.sealed.as_deref().unwrap_or_default();
        let opened = record::parse(blob).ok().and_then(|h| {
            let k = kit.versions.iter().find(|k| k.version == h.version)?;
            let key = GcmKey::new(k.key.as_ref(), record::TAG_LEN).ok()?;
            record::open(&key, blob, &h, r.unique_id.as_bytes()).ok().map(|_| ())
        });
        match opened {
            Some(()) => report.opened += 1,
            None => report.problems.push(format!(
                "stored DEK #{} (under v{}) does not open with the kit's keys",
                id.0,
                r.master_version.unwrap_or(0)
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::mechanism::primitives::aes_check_value;
    use crate::recovery::kit::KitVersion;

    fn kit(versions: &[(u32, u8)]) -> KitContents {
        let mut header = crate::recovery::format::tests::header();
        header.versions.clear();
        let versions = versions
            .iter()
            .map(|(n, b)| {
                let key = Zeroizing::new([*b; 32]);
                KitVersion {
                    version: *n,
                    state: Lifecycle::Active,
                    created: 0,
                    kcv: aes_check_value(key.as_ref()).unwrap(),
                    key,
                }
            })
            .collect();
        KitContents { header, versions }
    }

    fn live(n: u32, state: Lifecycle, b: u8) -> LiveVersion {
        LiveVersion { version: n, state, kcv: Some(aes_check_value(&[b; 32]).unwrap()) }
    }

    #[test]
    fn matching_versions_pass_and_destroyed_ones_are_not_needed() {
        let mut r = DrillReport::default();
        let live = [live(1, Lifecycle::Destroyed, 9), live(2, Lifecycle::Active, 2)];
        compare_versions(&kit(&[(2, 2)]), &live, &mut r);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.matched, vec![2]);
    }

    #[test]
    fn a_missing_version_is_stale_and_a_different_key_is_named() {
        let mut r = DrillReport::default();
        compare_versions(&kit(&[(1, 1)]), &[live(1, Lifecycle::DecryptOnly, 1), live(2, Lifecycle::Active, 2)], &mut r);
        assert!(r.problems.iter().any(|p| p.starts_with("stale: the kit lacks master key v2")), "{r:?}");
        let mut r = DrillReport::default();
        compare_versions(&kit(&[(1, 7)]), &[live(1, Lifecycle::Active, 1)], &mut r);
        assert!(r.problems[0].contains("does not match"), "{r:?}");
    }
}
