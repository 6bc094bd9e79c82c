//! Requests opened ahead and cancelled. A guarded operation opens its own request when it
//! is first refused; an operator may instead open it beforehand (so the custodians can
//! approve before the operation is attempted), and whoever opened a request, or the SO,
//! may cancel it. A cancelled request takes no approvals and its approvals count for
//! nothing: the guarded operation looks for an *open* request of its action, and opens a
//! new one when there is none. Both are audited in the same transaction as the change.
//!
//! Only the actions the module guards can be requested: an unknown action would collect
//! approvals that no operation ever consumes.

use super::{custodian, destroy_action, emergency_action, hours, now, Quorum};
use super::{CHANGE_QUORUM, EXPORT_KIT, IMPORT_KEY, INIT_TOKEN, LIFT_HOLD, RESHARE_ROOT, UNLOCK};
use crate::error::{Error, Result};
use crate::store::quorum::{NewRequest, Request, RequestState};
use crate::store::Caller;
use crate::vendor::{CKA_CV_CANCEL_REQUEST, CKA_CV_QUORUM_REQUEST};

/// Whether `action` names an operation the quorum guards (the action names the guarded
/// calls themselves use).
pub fn is_guarded_action(action: &str) -> bool {
    if [UNLOCK, CHANGE_QUORUM, INIT_TOKEN, LIFT_HOLD, IMPORT_KEY, EXPORT_KIT, RESHARE_ROOT].contains(&action) {
        return true;
    }
    if let Some(v) = action.strip_prefix("destroy-v") {
        // The canonical spelling only ("destroy-v01" would never be consumed).
        return v.parse::<u32>().is_ok_and(|n| n > 0 && destroy_action(n) == action);
    }
    if let Some(name) = action.strip_prefix("emergency-access:") {
        return valid_person(name) && emergency_action(name) == action;
    }
    false
}

/// A person's name as an emergency window takes it.
pub(super) fn valid_person(name: &str) -> bool {
    !name.is_empty() && name.len() <= custodian::MAX_NAME_LEN && !name.chars().any(char::is_control)
}

impl Quorum {
    /// Opens the request for `action` ahead of the operation, collecting approvals for
    /// `lifetime_hours` (default and maximum: `[quorum] approval_hours`); an open request
    /// for the action is returned instead of a second one. Without a quorum there is
    /// nothing to approve: refused.
    pub fn request_ahead(&self, action: &str, lifetime_hours: Option<u64>, by: Caller<'_>) -> Result<Request> {
        if !is_guarded_action(action) {
            log::info!("{}: {action:?} is not an action the quorum guards", self.workspace);
            return Err(Error::AttributeValueInvalid(CKA_CV_QUORUM_REQUEST));
        }
        let max = self.config.approval_hours;
        let lifetime = lifetime_hours.unwrap_or(max);
        if lifetime == 0 || lifetime > max {
            log::info!(
                "{}: a request lives 1 to {max} hours ([quorum] approval_hours), not {lifetime}",
                self.workspace
            );
            return Err(Error::AttributeValueInvalid(CKA_CV_QUORUM_REQUEST));
        }
        let Some(rec) = self.record()?.filter(|r| r.threshold > 0) else {
            log::info!("{}: no quorum: {action} needs no request", self.workspace);
            return Err(Error::ActionProhibited);
        };
        let what = format!("request for {action} opened ahead by {} for {lifetime} hour(s)", by.actor);
        let event = self.event(by, "quorum-request", what);
        let new = NewRequest {
            action,
            requested_by: by.actor,
            generation: rec.generation,
            now: now(),
            expires_at: now().saturating_add(hours(lifetime)),
        };
        let req = self.store.open_request(&self.workspace, &new, &event)?;
        log::info!(
            "{}: request #{} ({action}) is open until {} (Unix seconds)",
            self.workspace,
            req.id,
            req.expires_at
        );
        Ok(req)
    }

    /// Cancels open request `id`: only whoever opened it, or the SO (`by_so`). Its
    /// approvals then count for nothing; the custodians' hook hears of it.
    pub fn cancel(&self, id: i64, by: Caller<'_>, by_so: bool) -> Result<Request> {
        let Some(req) = self.store.requests(&self.workspace)?.into_iter().find(|r| r.id == id) else {
            log::info!("{}: no request #{id} to cancel", self.workspace);
            return Err(Error::AttributeValueInvalid(CKA_CV_CANCEL_REQUEST));
        };
        if req.state != RequestState::Open {
            log::info!(
                "{}: request #{id} ({}) is {:?} already: nothing to cancel",
                self.workspace,
                req.action,
                req.state
            );
            return Err(Error::ActionProhibited);
        }
        if !by_so && by.actor != req.requested_by {
            log::info!(
                "{}: request #{id} ({}) was opened by {}: only they or the SO cancel it, not {}",
                self.workspace,
                req.action,
                req.requested_by,
                by.actor
            );
            return Err(Error::UserNotLoggedIn);
        }
        let what = format!("request #{id} ({}) cancelled by {}", req.action, by.actor);
        self.store.close_request(
            &self.workspace,
            id,
            RequestState::Cancelled,
            None,
            &self.event(by, "quorum-cancel", what.clone()),
        )?;
        log::info!("{}: {what}", self.workspace);
        // The cancel stands whatever its notification does; a failure is audited.
        if let Err(e) = self.notify(by, "request-cancelled", &what) {
            log::warn!("{}: the cancel stands; its notification failed: {e}", self.workspace);
        }
        Ok(Request { state: RequestState::Cancelled, ..req })
    }
}

#[cfg(test)]
mod tests {
    use super::is_guarded_action;

    #[test]
    fn only_the_actions_the_module_guards_can_be_requested() {
        for ok in [
            "unlock",
            "change-quorum",
            "init-token",
            "lift-hold",
            "import-key",
            "export-kit",
            "reshare-root",
            "destroy-v1",
            "destroy-v42",
            "emergency-access:dana",
        ] {
            assert!(is_guarded_action(ok), "{ok}");
        }
        for bad in
            ["", "Unlock", "destroy", "destroy-v0", "destroy-v01", "destroy-vx", "emergency-access:", "retire-v1"]
        {
            assert!(!is_guarded_action(bad), "{bad:?}");
        }
        assert!(!is_guarded_action("emergency-access:a\nb"), "a control character in the name");
    }
}
