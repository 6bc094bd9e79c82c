//! Re-sharing a split root onto a replacement slot (`cvault root reshare`, doc/root.md,
//! "Replacing a lost HSM").
//!
//! A lost slot loses nothing (m of the n still open the root), but a fresh token put in
//! its place in `[[root.slots]]` holds no share, so the deployment would run on n-1
//! slots for good. The reshare recombines the root secret and every master key
//! version's secret from the slots, then deals each of them again over all n slots: a
//! fresh random polynomial with the same secret, m, n and deployment id, so nothing in
//! the store changes and old and new shares never combine (a mix fails the check value).
//!
//! Crash safety is two phases, so that m consistent shares of every secret exist at
//! every moment:
//!
//! 1. **Stage**: every slot gets its new shares as `collabvault-split-next/<name>`,
//!    sealed with the final name's associated data (so no rename is needed to open
//!    them); then every staged share is read back and compared with what was dealt.
//! 2. **Commit**: a marker `collabvault-split-next-commit` is written on every slot.
//!    Then each slot replaces its `collabvault-split/<name>` objects by the staged ones
//!    and deletes those; the markers go last, once every slot has rolled forward.
//!
//! At connect, before any share is read, [`SplitRoot::settle`] finishes or undoes a
//! reshare that was cut short: a marker on any slot means the staged set was complete
//! on every slot, so each reachable slot rolls forward; staged shares without a marker
//! are deleted, but only when every slot answers (a slot that does not answer might hold
//! a marker); otherwise they are left, harmless, for a later connect. A marker never
//! coexists with a rollback: the markers are written only after every slot was read back,
//! and removed only when no slot holds a staged share. Each step is logged with names and
//! slot positions, never share bytes.

use cryptoki::object::ObjectClass;
use cryptoki::session::Session;

use super::slot::{seal_in, Hsm};
use super::split::{
    check_value, find_all, labelled, pkcs11_err, seal_key, share_aad, value_of, Member, Record, SplitRoot, ID_LEN,
    ROOT_NAME, SHARE_PREFIX,
};
use crate::error::{Error, Result};
use crate::mechanism::shamir;
use crate::store::sealed::SealingKey;

/// Label prefix of a reshare's staged shares.
const STAGED_PREFIX: &str = "collabvault-split-next/";
/// Label of the commit marker: present on a slot once every slot held every staged share.
const COMMIT_LABEL: &[u8] = b"collabvault-split-next-commit";
/// The marker's value (its presence is what counts).
const COMMIT_VALUE: &[u8] = b"collabvault-split-reshare-v1";

/// One step of a reshare, for the caller's audit entries.
#[derive(Debug)]
pub enum Step<'a> {
    /// Every secret recombined; nothing written yet.
    Started {
        /// The secrets to be dealt again (`root`, `wmk/<workspace>/v<N>`).
        names: &'a [String],
        /// Secrets whose shares do not recombine: left as they are.
        skipped: &'a [String],
    },
    /// The slot at `position` holds its staged shares.
    Staged {
        /// Its position in `[[root.slots]]` (1-based).
        position: u8,
        /// Its token label.
        label: &'a str,
        /// How many shares were staged there.
        shares: usize,
    },
    /// Every staged share read back; the commit markers are written.
    Committed,
}

/// What a reshare did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshared {
    /// The secrets dealt again over every slot.
    pub names: Vec<String>,
    /// Secrets whose shares did not recombine, left as they were.
    pub skipped: Vec<String>,
    /// The slots' token labels, by position.
    pub slots: Vec<String>,
}

/// The secrets a reshare deals again: (name, secret).
type Secrets = Vec<(String, SealingKey)>;

/// What one slot holds of a reshare in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    marker: bool,
    staged: usize,
}

/// What [`SplitRoot::settle`] does about a reshare found at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// No reshare in progress.
    Nothing,
    /// Committed: roll every reachable slot forward (and drop the markers once all did).
    Forward,
    /// Not committed, every slot answers: delete the staged shares.
    Back,
    /// Not committed as far as the answering slots show, but a slot that does not
    /// answer might hold a marker: leave the staged shares for a later connect.
    Wait,
}

/// The decision of [`SplitRoot::settle`] from what each reachable slot holds (`None`:
/// it could not be read) and the number of configured slots.
fn decide(scan: &[Option<Pending>], total: usize) -> Settle {
    let marker = scan.iter().flatten().any(|p| p.marker);
    let staged = scan.iter().flatten().any(|p| p.staged > 0);
    let every_slot = scan.len() == total && scan.iter().all(Option::is_some);
    match (marker, staged) {
        (false, false) => Settle::Nothing,
        (true, _) => Settle::Forward,
        (false, true) if every_slot => Settle::Back,
        (false, true) => Settle::Wait,
    }
}

/// A fresh m-of-n split of every secret, as the records each slot gets: entry `i` is
/// the slot at position `i + 1`. Same deployment id and check values as before, new
/// random polynomials.
fn deal_plan(
    secrets: &[(String, SealingKey)],
    deployment: &[u8; ID_LEN],
    threshold: u8,
    total: u8,
) -> Result<Vec<Vec<(String, Record)>>> {
    let mut plan: Vec<Vec<(String, Record)>> = (0..total).map(|_| Vec::new()).collect();
    for (name, secret) in secrets {
        let check = check_value(&secret[..], deployment, name)?;
        for share in shamir::split(&secret[..], threshold, usize::from(total))? {
            let slot = usize::from(share.index)
                .checked_sub(1)
                .and_then(|i| plan.get_mut(i))
                .ok_or_else(|| Error::Root("split root reshare: a share's x is out of range".into()))?;
            let record =
                Record { deployment: *deployment, threshold, total, index: share.index, check, value: share.value };
            slot.push((name.clone(), record));
        }
    }
    Ok(plan)
}

/// What this slot holds of a reshare in progress.
fn pending_in(session: &Session) -> Result<Pending> {
    let marker = !find_all(session, ObjectClass::DATA, COMMIT_LABEL)?.is_empty();
    let staged = labelled(session, ObjectClass::DATA, STAGED_PREFIX.as_bytes())?.len();
    Ok(Pending { marker, staged })
}

/// Stores `shares` in this slot as staged shares (replacing any left by an earlier run).
fn stage_in(hsm: &Hsm, session: &Session, shares: &[(String, Record)]) -> Result<()> {
    let key = seal_key(hsm, session)?;
    for (name, record) in shares {
        let label = format!("{STAGED_PREFIX}{name}").into_bytes();
        for old in find_all(session, ObjectClass::DATA, &label)? {
            session.destroy_object(old).map_err(pkcs11_err("replacing a leftover staged share"))?;
        }
        let sealed = seal_in(session, key, &share_aad(name), &record.encode())?;
        Hsm::create_data(session, &label, sealed)?;
    }
    Ok(())
}

/// Writes this slot's commit marker, unless it has one.
fn mark_in(session: &Session) -> Result<()> {
    if find_all(session, ObjectClass::DATA, COMMIT_LABEL)?.is_empty() {
        Hsm::create_data(session, COMMIT_LABEL, COMMIT_VALUE.to_vec())?;
    }
    Ok(())
}

/// Replaces, in this slot, each `collabvault-split/<name>` by its staged share: the
/// staged bytes are stored under the final label first (they open there, being sealed
/// with its associated data), then the old objects and the staged one are deleted, so
/// the slot never lacks a share of `name`. Idempotent: a rerun after a crash finds the
/// copy made and deletes what is left. Returns how many names moved.
fn roll_forward_in(session: &Session) -> Result<usize> {
    let staged = labelled(session, ObjectClass::DATA, STAGED_PREFIX.as_bytes())?;
    for (object, label) in &staged {
        let name = &label[STAGED_PREFIX.len()..];
        let value = value_of(session, *object)?;
        let committed = format!("{SHARE_PREFIX}{name}").into_bytes();
        let old = find_all(session, ObjectClass::DATA, &committed)?;
        let mut present = false;
        for object in &old {
            present |= value_of(session, *object)? == value;
        }
        if !present {
            Hsm::create_data(session, &committed, value.clone())?;
        }
        for object in old {
            if value_of(session, object)? != value {
                session.destroy_object(object).map_err(pkcs11_err("deleting a share the reshare replaced"))?;
            }
        }
        session.destroy_object(*object).map_err(pkcs11_err("deleting a staged share"))?;
    }
    Ok(staged.len())
}

/// Deletes this slot's staged shares; how many went.
fn discard_in(session: &Session) -> Result<usize> {
    let staged = labelled(session, ObjectClass::DATA, STAGED_PREFIX.as_bytes())?;
    for (object, _) in &staged {
        session.destroy_object(*object).map_err(pkcs11_err("deleting a staged share"))?;
    }
    Ok(staged.len())
}

/// Deletes this slot's commit markers.
fn unmark_in(session: &Session) -> Result<()> {
    for object in find_all(session, ObjectClass::DATA, COMMIT_LABEL)? {
        session.destroy_object(object).map_err(pkcs11_err("deleting the reshare's commit marker"))?;
    }
    Ok(())
}

impl Member {
    /// `slot 2 ("hsm-b")`, for log lines.
    fn describe(&self) -> String {
        format!("slot {} ({:?})", self.position, self.hsm.token_label())
    }
}

impl SplitRoot {
    /// Deals the root and every master key version's secret again over all n slots (a
    /// replacement slot included): see the module docs. Needs every slot; `progress`
    /// hears of each step (an error from it before the commit undoes the reshare).
    pub fn reshare(&self, progress: &mut dyn FnMut(Step<'_>) -> Result<()>) -> Result<Reshared> {
        self.require_every_slot()?;
        let (secrets, skipped) = self.secrets()?;
        let names: Vec<String> = secrets.iter().map(|(n, _)| n.clone()).collect();
        log::info!(
            "split root reshare: {} secret(s) recombined ({}); dealing a fresh {}-of-{} split over slots {}",
            names.len(),
            names.join(", "),
            self.threshold,
            self.total,
            self.labels.join(", ")
        );
        let plan = deal_plan(&secrets, &self.deployment, self.threshold, self.total)?;
        drop(secrets);
        let staged = progress(Step::Started { names: &names, skipped: &skipped })
            .and_then(|()| self.stage_all(&plan, &mut *progress))
            .and_then(|()| self.verify_staged(&names, &plan));
        if let Err(e) = staged {
            log::error!("split root reshare: stopped before its commit: {e}; the staged shares are deleted");
            self.discard_all();
            return Err(e);
        }
        self.commit()?;
        // The commit stands whatever the caller does with this step.
        let heard = progress(Step::Committed);
        self.sweep_tombstones()?;
        if let Some((number, seq, hash)) = self.head()? {
            self.set_head(number, seq, &hash)?;
        }
        log::info!("split root reshare: done; every slot holds a share of the same {} secret(s)", names.len());
        heard?;
        Ok(Reshared { names, skipped, slots: self.labels.clone() })
    }

    /// Refuses a reshare while a slot does not answer: it would keep its old shares.
    pub fn require_every_slot(&self) -> Result<()> {
        if self.members.len() == usize::from(self.total) {
            return Ok(());
        }
        let missing: Vec<String> = (1..=self.total)
            .filter(|p| !self.members.iter().any(|m| m.position == *p))
            .map(|p| self.labels[usize::from(p) - 1].clone())
            .collect();
        Err(self.refuse("a reshare deals to every slot, and some do not answer (nothing was changed)", &missing))
    }

    /// The names of every committed share on any reachable slot, sorted, root first.
    fn share_names(&self) -> Result<Vec<String>> {
        let mut names = vec![ROOT_NAME.to_string()];
        for member in &self.members {
            let labels = member.hsm.with_session(|s| labelled(s, ObjectClass::DATA, SHARE_PREFIX.as_bytes()))?;
            names.extend(
                labels.into_iter().map(|(_, l)| l[SHARE_PREFIX.len()..].to_string()).filter(|n| n != ROOT_NAME),
            );
        }
        names[1..].sort();
        names.dedup();
        Ok(names)
    }

    /// Every secret to deal again, recombined: (secrets, names left out because their
    /// shares do not recombine).
    fn secrets(&self) -> Result<(Secrets, Vec<String>)> {
        let mut secrets = Vec::new();
        let mut skipped = Vec::new();
        for name in self.share_names()? {
            if name == ROOT_NAME {
                secrets.push((name, self.secret.clone()));
                continue;
            }
            match self.recover(&name, self.read_shares(&name)?, Some(&self.deployment))? {
                Some((_, secret)) => secrets.push((name, secret)),
                None => {
                    log::warn!("split root reshare: the shares of {name} do not recombine; they are left as they are");
                    skipped.push(name);
                }
            }
        }
        Ok((secrets, skipped))
    }

    /// Phase 1: every slot's new shares, staged.
    fn stage_all(
        &self,
        plan: &[Vec<(String, Record)>],
        progress: &mut dyn FnMut(Step<'_>) -> Result<()>,
    ) -> Result<()> {
        for member in &self.members {
            let shares = &plan[usize::from(member.position) - 1];
            member.hsm.with_session(|session| stage_in(&member.hsm, session, shares))?;
            log::info!("split root reshare: {} share(s) staged on {}", shares.len(), member.describe());
            progress(Step::Staged {
                position: member.position,
                label: member.hsm.token_label(),
                shares: shares.len(),
            })?;
        }
        Ok(())
    }

    /// Reads every staged share back: each slot must hold exactly what it was dealt.
    fn verify_staged(&self, names: &[String], plan: &[Vec<(String, Record)>]) -> Result<()> {
        for name in names {
            let held = self.read_shares_at(STAGED_PREFIX, name)?;
            for (i, member) in self.members.iter().enumerate() {
                let dealt = plan[usize::from(member.position) - 1]
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| r)
                    .ok_or_else(|| Error::Root("split root reshare: a share is missing from the plan".into()))?;
                let mine: Vec<&Record> = held.iter().filter(|(m, _)| *m == i).map(|(_, r)| r).collect();
                let right = matches!(mine.as_slice(), [r] if r.encode()[..] == dealt.encode()[..]);
                if !right {
                    return Err(Error::Root(format!(
                        "split root reshare: {} does not hold its staged share of {name} as dealt",
                        member.describe()
                    )));
                }
            }
        }
        log::info!("split root reshare: every slot holds every staged share ({} name(s))", names.len());
        Ok(())
    }

    /// Phase 2: the markers, then every slot rolled forward, then the markers removed.
    /// A failure leaves what the next connect finishes ([`SplitRoot::settle`]).
    fn commit(&self) -> Result<()> {
        for member in &self.members {
            member.hsm.with_session(mark_in)?;
        }
        log::info!("split root reshare: committed (a marker on every slot)");
        for member in &self.members {
            let moved = member.hsm.with_session(roll_forward_in)?;
            log::info!("split root reshare: {moved} share(s) replaced by the staged ones on {}", member.describe());
        }
        for member in &self.members {
            member.hsm.with_session(unmark_in)?;
        }
        Ok(())
    }

    /// Deletes every reachable slot's staged shares; failures are logged (the next
    /// connect that reaches every slot deletes what is left).
    fn discard_all(&self) {
        for member in &self.members {
            match member.hsm.with_session(discard_in) {
                Ok(0) => {}
                Ok(n) => log::info!("split root: {n} staged share(s) deleted on {}", member.describe()),
                Err(e) => log::error!("split root: cannot delete the staged shares on {}: {e}", member.describe()),
            }
        }
    }

    /// Finishes or undoes a reshare cut short, before the shares are read at connect.
    /// Failures are logged: the committed shares still open the root, and the next
    /// connect tries again.
    pub(super) fn settle(&self) -> Result<()> {
        let scan: Vec<Option<Pending>> = self
            .members
            .iter()
            .map(|m| match m.hsm.with_session(pending_in) {
                Ok(p) => Some(p),
                Err(e) => {
                    log::error!("split root: cannot look for a reshare in progress on {}: {e}", m.describe());
                    None
                }
            })
            .collect();
        match decide(&scan, usize::from(self.total)) {
            Settle::Nothing => {}
            Settle::Forward => self.finish_commit(&scan),
            Settle::Back => {
                log::warn!("split root: a reshare stopped before its commit; rolling it back");
                self.discard_all();
            }
            Settle::Wait => log::warn!(
                "split root: staged shares of a reshare that did not commit are left until every slot answers \
                 (a slot that does not answer might hold its commit marker)"
            ),
        }
        Ok(())
    }

    /// Rolls every reachable slot that holds staged shares forward (writing its marker
    /// first, so that a slot reached later still sees the commit), and removes the
    /// markers once no slot holds a staged share.
    fn finish_commit(&self, scan: &[Option<Pending>]) {
        log::warn!("split root: a committed reshare was cut short; rolling its staged shares forward");
        let mut clean = scan.len() == usize::from(self.total);
        for (member, state) in self.members.iter().zip(scan) {
            let Some(state) = state else {
                clean = false;
                continue;
            };
            if state.staged == 0 {
                continue;
            }
            match member.hsm.with_session(|s| mark_in(s).and_then(|()| roll_forward_in(s))) {
                Ok(n) => log::info!("split root: {n} staged share(s) rolled forward on {}", member.describe()),
                Err(e) => {
                    log::error!("split root: rolling forward on {} failed: {e}", member.describe());
                    clean = false;
                }
            }
        }
        if !clean {
            log::warn!("split root: the reshare's commit markers stay until every slot has rolled forward");
            return;
        }
        for member in &self.members {
            if let Err(e) = member.hsm.with_session(unmark_in) {
                log::error!("split root: cannot delete the commit marker on {}: {e}", member.describe());
            }
        }
        log::info!("split root: the reshare is complete on every slot");
    }

    /// The root from a reshare's staged shares, when the committed ones do not
    /// recombine but every reachable slot holds a staged share of the root that does:
    /// the staged set is then committed and rolled forward.
    pub(super) fn recover_staged_root(&self) -> Result<Option<([u8; ID_LEN], SealingKey)>> {
        let staged = self.read_shares_at(STAGED_PREFIX, ROOT_NAME)?;
        if staged.is_empty() || (0..self.members.len()).any(|i| !staged.iter().any(|(m, _)| *m == i)) {
            return Ok(None);
        }
        let Some(found) = self.recover(ROOT_NAME, staged, None)? else { return Ok(None) };
        log::warn!(
            "split root: the committed shares of root do not recombine but a reshare's staged ones do; \
             committing the staged set"
        );
        let scan: Vec<Option<Pending>> = self.members.iter().map(|m| m.hsm.with_session(pending_in).ok()).collect();
        self.finish_commit(&scan);
        Ok(Some(found))
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    /// The secret the records `picked` recombine to.
    fn combine(picked: &[&Record], threshold: u8) -> Zeroizing<Vec<u8>> {
        let shares: Vec<shamir::Share> =
            picked.iter().map(|r| shamir::Share { index: r.index, value: r.value.clone() }).collect();
        shamir::combine(&shares, threshold, crate::root::split::SECRET_LEN).expect("combine")
    }

    fn p(marker: bool, staged: usize) -> Option<Pending> {
        Some(Pending { marker, staged })
    }

    #[test]
    fn a_marker_anywhere_rolls_forward_and_no_marker_rolls_back_only_with_every_slot() {
        assert_eq!(decide(&[p(false, 0), p(false, 0), p(false, 0)], 3), Settle::Nothing);
        assert_eq!(decide(&[p(false, 0), p(false, 0)], 3), Settle::Nothing);
        // Staged, uncommitted: undone only when every slot answers.
        assert_eq!(decide(&[p(false, 2), p(false, 2), p(false, 0)], 3), Settle::Back);
        assert_eq!(decide(&[p(false, 2), p(false, 2)], 3), Settle::Wait);
        assert_eq!(decide(&[p(false, 2), None, p(false, 2)], 3), Settle::Wait);
        // One marker (the markers' writing cut short) commits, with or without staged
        // shares left, whoever answers.
        assert_eq!(decide(&[p(true, 2), p(false, 2), p(false, 2)], 3), Settle::Forward);
        assert_eq!(decide(&[p(false, 2), p(true, 0)], 3), Settle::Forward);
        assert_eq!(decide(&[p(true, 0), p(true, 0), p(true, 0)], 3), Settle::Forward);
    }

    #[test]
    fn the_plan_keeps_the_secrets_and_draws_new_polynomials() {
        let secrets = vec![
            ("root".to_string(), Zeroizing::new([1u8; 32])),
            ("wmk/eng/v1".to_string(), Zeroizing::new([2u8; 32])),
        ];
        let deployment = [9u8; ID_LEN];
        let plan = deal_plan(&secrets, &deployment, 2, 3).expect("plan");
        let again = deal_plan(&secrets, &deployment, 2, 3).expect("plan");
        assert_eq!(plan.len(), 3);
        for (position, slot) in (1u8..).zip(&plan) {
            assert_eq!(slot.len(), 2, "every slot gets a share of every secret");
            for (name, r) in slot {
                assert_eq!((r.index, r.threshold, r.total, r.deployment), (position, 2, 3, deployment));
                let secret = &secrets.iter().find(|(n, _)| n == name).expect("named").1;
                assert_eq!(r.check, check_value(&secret[..], &deployment, name).expect("check"), "same check value");
            }
        }
        for (k, (name, secret)) in secrets.iter().enumerate() {
            // Any two shares of the fresh split give the secret back.
            for (a, b) in [(0, 1), (0, 2), (1, 2)] {
                assert_eq!(combine(&[&plan[a][k].1, &plan[b][k].1], 2)[..], secret[..], "{name}");
            }
            // A new polynomial: the shares differ from another split's, and an old share
            // mixed with a new one gives something else.
            assert_ne!(plan[0][k].1.value[..], again[0][k].1.value[..]);
            assert_ne!(combine(&[&plan[0][k].1, &again[1][k].1], 2)[..], secret[..], "{name}: a mix");
        }
    }
}
