//! The key hierarchy as token objects: one object per master key version, and one that
//! stands for "the current master key", so applications need not know version numbers.
//!
//! These objects carry no value; they name a version that the [`Hierarchy`] unseals
//! through the root when a wrap or unwrap needs it. They are private (visible to a
//! logged-in user), cannot be copied or destroyed through `C_DestroyObject`, and change
//! only through their lifecycle attribute: setting `CKA_CV_LIFECYCLE` retires or
//! destroys a version, under the hierarchy's rules.
//!
//! [`Hierarchy`]: crate::hierarchy::Hierarchy

use cryptoki_sys::*;

use super::Ctx;
use crate::error::{Error, Internal, Result};
use crate::object::{Attr, Object, Template};
use crate::store::{Lifecycle, MasterRecord, PinOwner};
use crate::vendor::*;

/// `CKA_LABEL` of the current-master object; versions are `collabvault-master-v<N>`.
pub const CURRENT_LABEL: &str = "collabvault-master";

fn label(version: Option<u32>) -> String {
    match version {
        None => CURRENT_LABEL.to_string(),
        Some(v) => format!("{CURRENT_LABEL}-v{v}"),
    }
}

/// The object for master key `m`; `current` for the object that follows rotation.
pub(super) fn object(workspace: &str, m: &MasterRecord, current: bool) -> Object {
    let version = if current { None } else { Some(m.version) };
    let created = CK_ULONG::try_from(m.created_at).unwrap_or(0);
    // An imported version's key was known outside the token: not local, not always
    // sensitive, not never-extractable, and made by no mechanism here.
    let local = m.origin.is_none();
    let unique = match version {
        None => format!("wmk:{workspace}:current"),
        Some(v) => format!("wmk:{workspace}:v{v}"),
    };
    Object::reference(vec![
        Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attr::ulong(CKA_KEY_TYPE, CKK_AES),
        Attr::ulong(CKA_VALUE_LEN, 32),
        Attr::new(CKA_LABEL, label(version)),
        Attr::new(CKA_ID, label(version)),
        Attr::new(CKA_UNIQUE_ID, unique),
        Attr::bool(CKA_TOKEN, true),
        Attr::bool(CKA_PRIVATE, true),
        Attr::bool(CKA_MODIFIABLE, true),
        Attr::bool(CKA_COPYABLE, false),
        Attr::bool(CKA_DESTROYABLE, false),
        Attr::bool(CKA_SENSITIVE, true),
        Attr::bool(CKA_EXTRACTABLE, false),
        Attr::bool(CKA_ALWAYS_SENSITIVE, local),
        Attr::bool(CKA_NEVER_EXTRACTABLE, local),
        Attr::bool(CKA_LOCAL, local),
        Attr::ulong(CKA_KEY_GEN_MECHANISM, if local { CKM_CV_ROTATE_MASTER } else { CK_UNAVAILABLE_INFORMATION }),
        Attr::bool(CKA_ENCRYPT, false),
        Attr::bool(CKA_DECRYPT, false),
        Attr::bool(CKA_SIGN, false),
        Attr::bool(CKA_VERIFY, false),
        Attr::bool(CKA_DERIVE, false),
        Attr::bool(CKA_WRAP, m.state == Lifecycle::Active),
        Attr::bool(CKA_UNWRAP, m.state.unwraps() && m.blocked.is_none()),
        Attr::ulong(CKA_CV_ROLE, CV_ROLE_MASTER),
        Attr::ulong(CKA_CV_KEY_VERSION, CK_ULONG::from(m.version)),
        Attr::ulong(CKA_CV_LIFECYCLE, m.state.code().unsigned_abs()),
        Attr::ulong(CKA_CV_CREATED, created),
        Attr::new(CKA_CV_CLASSIFICATION, m.classification.clone()),
        Attr::bool(CKA_CV_CURRENT, current),
        Attr::bool(CKA_CV_BLOCKED, m.blocked.is_some()),
        Attr::new(CKA_CV_ORIGIN, m.origin.as_deref().unwrap_or("generated")),
    ])
}

impl Ctx {
    /// The master key record a master handle names (`None`: the active version).
    pub(super) fn master_record(&self, version: Option<u32>) -> Result<(MasterRecord, bool)> {
        let versions = self.token.hierarchy()?.versions()?;
        let found = match version {
            None => versions.into_iter().rev().find(|m| m.state == Lifecycle::Active),
            Some(v) => versions.into_iter().find(|m| m.version == v),
        };
        found.map(|m| (m, version.is_none())).ok_or(Error::ObjectHandleInvalid)
    }

    /// Every master key object a find may return: the current one, then each version.
    /// `versions` are the master key rows this call read and checked (a find reads them
    /// with the objects, in one store read).
    pub(super) fn master_objects_of(&self, versions: &[MasterRecord]) -> Vec<(Option<u32>, Object)> {
        let ws = &self.token.workspace;
        let mut out = Vec::with_capacity(versions.len() + 1);
        if let Some(active) = versions.iter().rev().find(|m| m.state == Lifecycle::Active) {
            out.push((None, object(ws, active, true)));
        }
        out.extend(versions.iter().map(|m| (Some(m.version), object(ws, m, false))));
        out
    }
}

/// `CKA_CV_STORED_RECORDS` of a master key object: the stored DEKs its version seals.
pub(super) fn stored_records(ctx: &Ctx, version: Option<u32>, object: &Object) -> Result<CK_ULONG> {
    let version = match version {
        Some(v) => v,
        None => object
            .ulong(CKA_CV_KEY_VERSION)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(Error::Internal(Internal::MasterWithoutVersion))?,
    };
    let n = ctx.token.store().records_under(&ctx.token.workspace, version)?;
    Ok(CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX))
}

/// `CKA_CHECK_VALUE` of a master key object (PKCS#11's AES check value); `None` once the
/// version is destroyed.
pub(super) fn check_value(ctx: &Ctx, version: Option<u32>, object: &Object) -> Result<Option<[u8; 3]>> {
    let version = match version {
        Some(v) => v,
        None => object
            .ulong(CKA_CV_KEY_VERSION)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(Error::Internal(Internal::MasterWithoutVersion))?,
    };
    ctx.token.hierarchy()?.check_value(version)
}

/// `C_SetAttributeValue` on a master key object: only on a specific version, and only
/// `CKA_CV_LIFECYCLE` (the user: retire, then destroy, under the hierarchy's rules) or
/// `CKA_CV_BLOCKED` = false (the SO: clears an audit alert's block).
pub(super) fn set_attributes(ctx: &Ctx, version: Option<u32>, template: &Template) -> Result<()> {
    if template.get(CKA_CV_EMERGENCY_ACCESS).is_some() {
        return super::quorum::set_emergency(ctx, template);
    }
    if template.get(CKA_CV_QUORUM_REQUEST).is_some() {
        return super::quorum::set_request(ctx, template);
    }
    if template.get(CKA_CV_CANCEL_REQUEST).is_some() {
        return super::quorum::set_cancel(ctx, template);
    }
    if template.get(CKA_CV_LEGAL_HOLD).is_some() {
        return super::quorum::set_hold(ctx, template);
    }
    if template.get(CKA_CV_LOCKED).is_some() {
        if template.0.len() > 1 {
            return Err(Error::TemplateInconsistent(CKA_CV_LOCKED));
        }
        return super::quorum::set_locked(ctx, template);
    }
    let Some(version) = version else {
        return Err(Error::ActionProhibited);
    };
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    let mut state = None;
    let mut unblock = false;
    for a in &template.0 {
        match a.ty {
            CKA_CV_LIFECYCLE => {
                let code = template.ulong(CKA_CV_LIFECYCLE)?.and_then(|c| i64::try_from(c).ok());
                let parsed = code.and_then(Lifecycle::from_code);
                state = Some(parsed.ok_or(Error::AttributeValueInvalid(CKA_CV_LIFECYCLE))?);
            }
            // Only an alert sets a block; the SO can only lift it.
            CKA_CV_BLOCKED if template.bool(CKA_CV_BLOCKED)? == Some(false) => unblock = true,
            CKA_CV_BLOCKED => return Err(Error::AttributeValueInvalid(CKA_CV_BLOCKED)),
            other => return Err(Error::AttributeReadOnly(other)),
        }
    }
    let who = ctx.token.logged_in();
    let hierarchy = ctx.token.hierarchy()?;
    if unblock {
        if who != Some(PinOwner::So) {
            return Err(Error::MasterKey(format!("only the SO clears the block on master key v{version}")));
        }
        hierarchy.unblock(ctx.caller(), version)?;
    }
    if let Some(state) = state {
        if who != Some(PinOwner::User) {
            return Err(Error::MasterKey(format!("only the user changes the lifecycle of master key v{version}")));
        }
        hierarchy.set_state(ctx.caller(), version, state)?;
    }
    Ok(())
}
