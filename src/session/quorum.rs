//! The quorum through PKCS#11: custodians approve with `C_LoginUser` (vendor user type
//! `CKU_CV_CUSTODIAN`), the SO splits a new KEK among custodians with
//! `C_GenerateKey(CKM_CV_QUORUM_SPLIT)`, and master key objects show and take the lock
//! (`CKA_CV_LOCKED`, `CKA_CV_THRESHOLD`, `CKA_CV_UNLOCK_EXPIRES`); requests are opened
//! ahead and cancelled through `CKA_CV_QUORUM_REQUEST` and `CKA_CV_CANCEL_REQUEST` on them.

use cryptoki_sys::*;

use super::{Ctx, Refusal};
use crate::error::{Error, Result};
use crate::object::Template;
use crate::quorum::custodian;
use crate::store::PinOwner;
use crate::vendor::{
    CKA_CV_CANCEL_REQUEST, CKA_CV_CUSTODIANS, CKA_CV_EMERGENCY_ACCESS, CKA_CV_EMERGENCY_EXPIRES, CKA_CV_LEGAL_HOLD,
    CKA_CV_LOCKED, CKA_CV_QUORUM_REQUEST, CKA_CV_THRESHOLD, CKA_CV_UNLOCK_EXPIRES, CKU_CV_CUSTODIAN,
};

/// `C_LoginUser`. `CKU_SO` and `CKU_USER` name no users on this token, so the username
/// is not looked at and the call is `C_Login`'s. A custodian's login approves (the
/// unlock, or request N with username `name:N`) and leaves the login state as it was.
pub fn login_user(ctx: &Ctx, user_type: CK_USER_TYPE, pin: &[u8], username: &[u8]) -> Result<()> {
    if user_type != CKU_CV_CUSTODIAN {
        return super::login(ctx, user_type, pin);
    }
    ctx.refusal.set(Refusal::Audit { actor: Some("custodian") });
    let username = std::str::from_utf8(username).map_err(|_| Error::ArgumentsBad("the username is not UTF-8"))?;
    let (name, request) = match username.split_once(':') {
        Some((name, n)) => (name, Some(n.parse::<i64>().map_err(|_| Error::ArgumentsBad("REQUEST in name:REQUEST"))?)),
        None => (username, None),
    };
    if name.is_empty() {
        return Err(Error::ArgumentsBad("a custodian login needs the custodian's name as its username"));
    }
    let result = ctx.token.quorum().approve(name, pin, request, Some(ctx.handle));
    if matches!(result, Err(Error::PinIncorrect | Error::PinLocked)) {
        ctx.check_failed_logins();
    }
    let approved = result?;
    log::info!(
        "{}: custodian {name:?} approved request #{} ({} of {}{})",
        ctx.token.workspace,
        approved.request,
        approved.approvals,
        approved.threshold,
        if approved.unlocked { "; master keys unlocked" } else { "" }
    );
    Ok(())
}

/// `C_GenerateKey(CKM_CV_QUORUM_SPLIT)`: SO only, read-write; returns the current
/// master key object.
pub fn split(ctx: &Ctx, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    if ctx.token.logged_in() != Some(PinOwner::So) {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    let k = template.ulong(CKA_CV_THRESHOLD)?.unwrap_or(0);
    let k = u8::try_from(k).map_err(|_| Error::AttributeValueInvalid(CKA_CV_THRESHOLD))?;
    let enrolled = match template.get(CKA_CV_CUSTODIANS) {
        Some(bytes) => custodian::decode(bytes)?,
        None if k == 0 => Vec::new(),
        None => return Err(Error::TemplateIncomplete(CKA_CV_CUSTODIANS)),
    };
    ctx.token.hierarchy()?.split(ctx.caller(), k, &enrolled)?;
    Ok(ctx.app.handles.master_handle(ctx.slot(), None))
}

/// Whether `ty` is a quorum attribute master key objects answer when read.
pub(super) fn is_master_attribute(ty: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        ty,
        CKA_CV_THRESHOLD
            | CKA_CV_LOCKED
            | CKA_CV_UNLOCK_EXPIRES
            | CKA_CV_LEGAL_HOLD
            | CKA_CV_EMERGENCY_ACCESS
            | CKA_CV_EMERGENCY_EXPIRES
            | CKA_CV_QUORUM_REQUEST
    )
}

/// A quorum attribute of a master key object, read now.
pub(super) fn attribute(ctx: &Ctx, ty: CK_ATTRIBUTE_TYPE) -> Result<Vec<u8>> {
    let quorum = ctx.token.quorum();
    match ty {
        CKA_CV_THRESHOLD => quorum.record().map(|r| {
            let k = r.map_or(0, |r| CK_ULONG::from(r.threshold));
            k.to_ne_bytes().to_vec()
        }),
        CKA_CV_LOCKED => quorum.record().map(|r| {
            let locked = match r.filter(|r| r.threshold > 0) {
                None => false,
                Some(rec) => quorum.unlocked(&rec).is_err(),
            };
            vec![CK_BBOOL::from(locked)]
        }),
        CKA_CV_LEGAL_HOLD => quorum.hold().map(|h| vec![CK_BBOOL::from(h.is_some())]),
        CKA_CV_EMERGENCY_ACCESS => quorum.emergency().map(|w| w.map(|w| w.name.into_bytes()).unwrap_or_default()),
        CKA_CV_EMERGENCY_EXPIRES => quorum.emergency().map(|w| {
            let at = w.and_then(|w| CK_ULONG::try_from(w.expires_at).ok()).unwrap_or(0);
            at.to_ne_bytes().to_vec()
        }),
        CKA_CV_UNLOCK_EXPIRES => quorum.grant_expiry().map(|at| {
            let at = at.and_then(|t| CK_ULONG::try_from(t).ok()).unwrap_or(0);
            at.to_ne_bytes().to_vec()
        }),
        CKA_CV_QUORUM_REQUEST => {
            let id = ctx.session.lock().last_request.and_then(|id| CK_ULONG::try_from(id).ok()).unwrap_or(0);
            Ok(id.to_ne_bytes().to_vec())
        }
        _ => Err(Error::AttributeTypeInvalid(ty)),
    }
}

/// `CKA_CV_LOCKED` set on a master key object: true locks (user or SO, read-write).
pub(super) fn set_locked(ctx: &Ctx, template: &Template) -> Result<()> {
    if ctx.token.logged_in().is_none() {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    match template.bool(CKA_CV_LOCKED)? {
        Some(true) => ctx.token.quorum().lock(ctx.caller()),
        _ => {
            log::info!("{}: CKA_CV_LOCKED = false: only a quorum of custodians unlocks", ctx.token.workspace);
            Err(Error::AttributeValueInvalid(CKA_CV_LOCKED))
        }
    }
}

/// `CKA_CV_LEGAL_HOLD` set on a master key object, in an SO read-write session: true sets
/// the hold (a `CKA_LABEL` beside it is the reason), false lifts it (with a quorum, only
/// once the custodians approved the `lift-hold` request).
pub(super) fn set_hold(ctx: &Ctx, template: &Template) -> Result<()> {
    if ctx.token.logged_in() != Some(PinOwner::So) {
        log::info!("{}: only the SO sets or lifts a legal hold", ctx.token.workspace);
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    if template.0.iter().any(|a| !matches!(a.ty, CKA_CV_LEGAL_HOLD | CKA_LABEL)) {
        return Err(Error::TemplateInconsistent(CKA_CV_LEGAL_HOLD));
    }
    let reason = template.get(CKA_LABEL).map(|l| String::from_utf8_lossy(l).into_owned());
    match template.bool(CKA_CV_LEGAL_HOLD)? {
        Some(true) => ctx.token.quorum().set_hold(ctx.caller(), reason.as_deref().unwrap_or("no reason given")),
        _ => ctx.token.quorum().lift_hold(ctx.caller()),
    }
}

/// `CKA_CV_EMERGENCY_ACCESS` set on a master key object (user or SO, read-write): a name
/// asks for (and, once approved, opens) an emergency window for that person; empty closes
/// the window.
pub(super) fn set_emergency(ctx: &Ctx, template: &Template) -> Result<()> {
    if ctx.token.logged_in().is_none() {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    if template.0.len() > 1 {
        return Err(Error::TemplateInconsistent(CKA_CV_EMERGENCY_ACCESS));
    }
    let name = template.get(CKA_CV_EMERGENCY_ACCESS).unwrap_or_default();
    if name.is_empty() {
        return ctx.token.quorum().close_emergency(ctx.caller());
    }
    let name = std::str::from_utf8(name).map_err(|_| Error::AttributeValueInvalid(CKA_CV_EMERGENCY_ACCESS))?;
    ctx.token.quorum().open_emergency(ctx.caller(), name).map(|_| ())
}

/// The checks every quorum request change shares: someone logged in, a read-write
/// session, and `ty` alone in the template.
fn request_change_allowed(ctx: &Ctx, template: &Template, ty: CK_ATTRIBUTE_TYPE) -> Result<()> {
    if ctx.token.logged_in().is_none() {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    if template.0.len() > 1 {
        return Err(Error::TemplateInconsistent(ty));
    }
    Ok(())
}

/// `CKA_CV_QUORUM_REQUEST` set on a master key object (user or SO, read-write): opens the
/// request for the action named (`ACTION` or `ACTION\nHOURS`) ahead of its operation;
/// reading the attribute afterwards gives its number.
pub(super) fn set_request(ctx: &Ctx, template: &Template) -> Result<()> {
    request_change_allowed(ctx, template, CKA_CV_QUORUM_REQUEST)?;
    let value = template.get(CKA_CV_QUORUM_REQUEST).unwrap_or_default();
    let value = std::str::from_utf8(value).map_err(|_| Error::AttributeValueInvalid(CKA_CV_QUORUM_REQUEST))?;
    let (action, lifetime) = match value.split_once('\n') {
        Some((action, h)) => {
            let h = h.parse::<u64>().map_err(|_| Error::AttributeValueInvalid(CKA_CV_QUORUM_REQUEST))?;
            (action, Some(h))
        }
        None => (value, None),
    };
    let req = ctx.token.quorum().request_ahead(action, lifetime, ctx.caller())?;
    ctx.session.lock().last_request = Some(req.id);
    Ok(())
}

/// `CKA_CV_CANCEL_REQUEST` set on a master key object (read-write): cancels open request
/// N, if this caller opened it or is the SO.
pub(super) fn set_cancel(ctx: &Ctx, template: &Template) -> Result<()> {
    request_change_allowed(ctx, template, CKA_CV_CANCEL_REQUEST)?;
    let id = template.ulong(CKA_CV_CANCEL_REQUEST)?.ok_or(Error::AttributeValueInvalid(CKA_CV_CANCEL_REQUEST))?;
    let id = i64::try_from(id).map_err(|_| Error::AttributeValueInvalid(CKA_CV_CANCEL_REQUEST))?;
    let by_so = ctx.token.logged_in() == Some(PinOwner::So);
    ctx.token.quorum().cancel(id, ctx.caller(), by_so).map(|_| ())
}
