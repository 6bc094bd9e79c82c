//! Wrap records through the C ABI: `CKM_CV_WRAP_RECORD` with a master key object in
//! `C_WrapKey`/`C_UnwrapKey` (and the 3.2 authenticated forms, which bind the caller's
//! associated data), `CKM_CV_REWRAP_RECORD` as a one-call re-wrap through `C_Encrypt`,
//! and `CKM_CV_ROTATE_MASTER` through `C_GenerateKey`.
//!
//! New records always use the active version; unwrap reads the version from the record,
//! so a record made before a rotation still opens through "the current master key". A
//! key comes back with the attributes the record binds; a template asking otherwise is
//! inconsistent. Every wrap, unwrap and rotation is audited with the version it used.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::handles::Located;
use super::key::KeyRole;
use super::output::{sized, Output};
use super::Ctx;
use crate::error::{Error, Result};
use crate::hierarchy::{record, share, Hierarchy};
use crate::mechanism::{Cipher, KeyView};
use crate::object::{Attr, Object, Origin, Template};
use crate::store::{Caller, MasterRecord, PinOwner};
use crate::token::actor;

impl Ctx {
    /// The master key version a handle names (`None`: the current one); `wrong` for a
    /// handle that is not a master key object.
    pub(super) fn master_handle(&self, handle: CK_OBJECT_HANDLE, invalid: Error, wrong: Error) -> Result<Option<u32>> {
        match self.app.handles.get(handle) {
            Some((slot, Located::Master(version))) if slot == self.slot() => {
                if self.token.logged_in() != Some(PinOwner::User) {
                    return Err(invalid);
                }
                Ok(version)
            }
            Some((slot, _)) if slot == self.slot() => Err(wrong),
            _ => Err(invalid),
        }
    }
}

/// `C_WrapKey`/`C_WrapKeyAuthenticated` with `CKM_CV_WRAP_RECORD`.
pub fn wrap(
    ctx: &Ctx,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    ad: &[u8],
    capacity: Option<usize>,
) -> Result<Output> {
    let version = ctx.master_handle(wrapping, Error::WrappingKeyHandleInvalid, Error::WrappingKeyTypeInconsistent)?;
    let hierarchy = ctx.token.hierarchy()?;
    let (active, master) = hierarchy.current()?;
    if version.is_some_and(|v| v != active) {
        // Only the newest version makes records.
        return Err(Error::KeyFunctionNotPermitted);
    }
    let target = ctx.target_key(key)?;
    // The master key object is not trusted: a record comes back through C_UnwrapKey
    // without CKA_WRAP_WITH_TRUSTED (the record does not bind it), so such a key must not
    // become one.
    let master_object = ctx.resolve(wrapping)?.object();
    crate::object::usage::check_wrap(&master_object, crate::vendor::CKM_CV_WRAP_RECORD, &target)?;
    let value = target.secret()?;
    let bound = target.bound_attributes();
    let needed = record::sealed_len(&ctx.token.workspace, &bound, value.len())?;
    if let Some(answer) = sized(needed, capacity) {
        return answer;
    }
    let sealed = record::seal(&master, &ctx.token.workspace, active, &bound, &value, ad)?;
    ctx.audit("C_WrapKey", format!("{} under wmk v{active}", target.describe()))?;
    Ok(Output::Data(Zeroizing::new(sealed)))
}

/// Opens `wrapped` with the version its header names.
fn open(
    hierarchy: &Hierarchy,
    workspace: &str,
    wrapped: &[u8],
    ad: &[u8],
) -> Result<(record::Header, Zeroizing<Vec<u8>>)> {
    open_in(hierarchy, None, workspace, wrapped, ad)
}

/// [`open`], the version judged by `versions` when the call already read the master key
/// rows (else by a read of the hierarchy's own).
fn open_in(
    hierarchy: &Hierarchy,
    versions: Option<&[MasterRecord]>,
    workspace: &str,
    wrapped: &[u8],
    ad: &[u8],
) -> Result<(record::Header, Zeroizing<Vec<u8>>)> {
    let header = record::parse(wrapped)?;
    if header.workspace != workspace {
        return Err(Error::WrappedKeyInvalid);
    }
    let master = match versions {
        Some(rows) => hierarchy.key_in(rows, header.version)?,
        None => hierarchy.key(header.version)?,
    };
    let value = record::open(&master, wrapped, &header, ad)?;
    Ok((header, value))
}

/// `C_UnwrapKey`/`C_UnwrapKeyAuthenticated` with `CKM_CV_WRAP_RECORD`.
pub fn unwrap(
    ctx: &Ctx,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &Template,
    ad: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    let version =
        ctx.master_handle(unwrapping, Error::UnwrappingKeyHandleInvalid, Error::UnwrappingKeyTypeInconsistent)?;
    let hierarchy = ctx.token.hierarchy()?;
    let (header, value) = open(&hierarchy, &ctx.token.workspace, wrapped, ad)?;
    if version.is_some_and(|v| v != header.version) {
        return Err(Error::WrappedKeyInvalid);
    }
    let template = template.with_required(&header.attrs)?;
    let key = Object::new(&template, Origin::Unwrapped, &[Attr::new(CKA_VALUE, value.to_vec())])?;
    let what = format!("{} from wmk v{}", key.describe(), header.version);
    let handle = ctx.add_described(key, "C_UnwrapKey", what)?;
    ctx.note_unwrap(header.version)?;
    Ok(handle)
}

/// `C_GenerateKey` with `CKM_CV_ROTATE_MASTER`: the new version's object.
pub fn rotate(ctx: &Ctx) -> Result<CK_OBJECT_HANDLE> {
    if ctx.token.logged_in() != Some(PinOwner::User) {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    let version = ctx.token.hierarchy()?.rotate(ctx.caller(), &ctx.token.classification)?;
    Ok(ctx.app.handles.master_handle(ctx.slot(), Some(version)))
}

/// `C_EncryptInit` with `CKM_CV_REWRAP_RECORD`: `C_Encrypt(old record)` returns the
/// record re-sealed under the active version, the key never leaving the module.
pub fn rewrap_op(ctx: &Ctx, master: CK_OBJECT_HANDLE, ad: &[u8]) -> Result<Box<dyn Cipher>> {
    ctx.master_handle(master, Error::KeyHandleInvalid, Error::KeyTypeInconsistent)?;
    Ok(Box::new(Rewrap {
        hierarchy: ctx.token.hierarchy()?,
        actor: actor(ctx.token.logged_in()),
        session: ctx.handle,
        workspace: ctx.token.workspace.clone(),
        ad: ad.to_vec(),
        input: Vec::new(),
    }))
}

struct Rewrap {
    hierarchy: Arc<Hierarchy>,
    actor: &'static str,
    session: CK_SESSION_HANDLE,
    workspace: String,
    ad: Vec<u8>,
    input: Vec<u8>,
}

impl Cipher for Rewrap {
    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn update(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        self.input.extend_from_slice(input);
        Ok(())
    }

    fn final_len(&self, more: usize) -> usize {
        // A re-wrapped record differs from the old one only in the version field.
        self.input.len() + more
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        // The record is C_Encrypt's input data here: one that does not open is
        // CKR_DATA_INVALID, since CKR_WRAPPED_KEY_INVALID is not among C_Encrypt's codes.
        let (header, value) = open(&self.hierarchy, &self.workspace, &self.input, &self.ad).map_err(|e| {
            if e == Error::WrappedKeyInvalid {
                Error::DataInvalid
            } else {
                e
            }
        })?;
        let (active, master) = self.hierarchy.current()?;
        out.extend_from_slice(&record::seal(&master, &self.workspace, active, &header.attrs, &value, &self.ad)?);
        let what = format!("record from wmk v{} to wmk v{active}", header.version);
        self.hierarchy.audit(Caller { actor: self.actor, session: Some(self.session) }, "CKM_CV_REWRAP_RECORD", what)
    }
}

/// `C_WrapKey`/`C_WrapKeyAuthenticated` with `CKM_CV_SHARE_RECORD`: `key` sealed to the
/// recipient's hybrid KEM public key `wrapping`, under the one wrap policy.
pub fn share(
    ctx: &Ctx,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    ad: &[u8],
    capacity: Option<usize>,
) -> Result<Output> {
    let row = crate::mechanism::registry::row(crate::vendor::CKM_CV_SHARE_RECORD)?;
    let recipient = ctx.operation_key(wrapping, row, KeyRole::Wrap)?;
    let target = ctx.target_key(key)?;
    crate::object::usage::check_wrap(&recipient, crate::vendor::CKM_CV_SHARE_RECORD, &target)?;
    let value = target.secret()?;
    let bound = target.bound_attributes();
    let needed = share::sealed_len(&*recipient, &bound, value.len())?;
    if let Some(answer) = sized(needed, capacity) {
        return answer;
    }
    let sealed = share::seal(&*recipient, &bound, &value, ad)?;
    ctx.audit("C_WrapKey", format!("{} shared to {}", target.describe(), recipient.describe()))?;
    Ok(Output::Data(Zeroizing::new(sealed)))
}

/// `C_UnwrapKey`/`C_UnwrapKeyAuthenticated` with `CKM_CV_SHARE_RECORD`: a new secret key
/// with exactly the record's bound attributes, opened with the private key `unwrapping`.
pub fn open_share(
    ctx: &Ctx,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &Template,
    ad: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    let row = crate::mechanism::registry::row(crate::vendor::CKM_CV_SHARE_RECORD)?;
    let recipient = ctx.operation_key(unwrapping, row, KeyRole::Unwrap)?;
    let (bound, value) = share::open(&*recipient, wrapped, ad)?;
    let template = template.with_required(&bound)?;
    let key = Object::new(&template, Origin::Unwrapped, &[Attr::new(CKA_VALUE, value.to_vec())])?;
    ctx.add_from(key, "C_UnwrapKey", "shared to", &recipient)
}

/// `C_WrapKeyAuthenticated`: a wrap record bound to `ad` as well.
pub fn wrap_authenticated(
    ctx: &Ctx,
    m: &crate::mechanism::Mechanism,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    ad: &[u8],
    capacity: Option<usize>,
) -> Result<Output> {
    match m {
        crate::mechanism::Mechanism::CvWrapRecord => wrap(ctx, wrapping, key, ad, capacity),
        crate::mechanism::Mechanism::CvShareRecord => share(ctx, wrapping, key, ad, capacity),
        _ => Err(Error::MechanismInvalid),
    }
}

/// `C_UnwrapKeyAuthenticated`: opens a record only with the `ad` it was bound to.
pub fn unwrap_authenticated(
    ctx: &Ctx,
    m: &crate::mechanism::Mechanism,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &Template,
    ad: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    match m {
        crate::mechanism::Mechanism::CvWrapRecord => unwrap(ctx, unwrapping, wrapped, template, ad),
        crate::mechanism::Mechanism::CvShareRecord => open_share(ctx, unwrapping, wrapped, template, ad),
        _ => Err(Error::MechanismInvalid),
    }
}

/// How this session's token objects are sealed at rest: token secret keys (stored DEKs)
/// as wrap records under the active master key version, bound to the object's unique id;
/// everything else under the storage key.
pub(super) struct SessionAtRest {
    storage_key: Option<crate::store::sealed::SealingKey>,
    hierarchy: Option<Arc<Hierarchy>>,
    /// The master key rows this call already read and checked, if it did: records open
    /// by them instead of a store read per record.
    versions: Option<Vec<MasterRecord>>,
    workspace: String,
}

impl Ctx {
    /// The sealing this session uses for token objects.
    pub(super) fn at_rest(&self) -> SessionAtRest {
        self.at_rest_with(self.token.hierarchy().ok(), None)
    }

    /// [`Ctx::at_rest`] with the login's hierarchy and master key rows this call read
    /// itself (checked against the epoch and verified: `Token::hierarchy_at`,
    /// `Hierarchy::verified`), so opening records reads nothing more.
    pub(super) fn at_rest_with(
        &self,
        hierarchy: Option<Arc<Hierarchy>>,
        versions: Option<Vec<MasterRecord>>,
    ) -> SessionAtRest {
        SessionAtRest {
            storage_key: self.token.storage_key(),
            hierarchy,
            versions,
            workspace: self.token.workspace.clone(),
        }
    }
}

/// A stored DEK is a token secret key.
fn is_stored_dek(object: &Object) -> bool {
    object.class() == CKO_SECRET_KEY && object.is_token()
}

/// Opens a stored DEK's record: the version from its header, the object's unique id as
/// associated data, and the row's clear policy checked against what the record binds.
pub(crate) fn open_stored(
    hierarchy: &Hierarchy,
    workspace: &str,
    stored: &crate::store::ObjectRecord,
) -> Result<Zeroizing<Vec<u8>>> {
    open_stored_in(hierarchy, None, workspace, stored)
}

/// [`open_stored`] with the master key rows this call read ([`open_in`]).
fn open_stored_in(
    hierarchy: &Hierarchy,
    versions: Option<&[MasterRecord]>,
    workspace: &str,
    stored: &crate::store::ObjectRecord,
) -> Result<Zeroizing<Vec<u8>>> {
    let blob = stored.sealed.as_deref().ok_or(Error::Integrity("stored DEK without a record"))?;
    let (header, secret) = open_in(hierarchy, versions, workspace, blob, stored.unique_id.as_bytes())
        .map_err(|_| Error::Integrity("stored DEK record does not open"))?;
    if header.attrs != crate::object::bound_in_record(stored)? {
        return Err(Error::Integrity("stored DEK's policy attributes were changed outside the token"));
    }
    Ok(secret)
}

impl crate::object::AtRest for SessionAtRest {
    fn seal(&self, object: &Object, secret: &[u8]) -> Result<(Vec<u8>, Option<u32>)> {
        if !is_stored_dek(object) {
            return crate::object::UnderStorageKey(self.storage_key.as_deref()).seal(object, secret);
        }
        let hierarchy = self.hierarchy.as_ref().ok_or(Error::UserNotLoggedIn)?;
        let (version, master) = hierarchy.current()?;
        let bound = object.bound_attributes();
        let sealed = record::seal(&master, &self.workspace, version, &bound, secret, object.unique_id().as_bytes())?;
        Ok((sealed, Some(version)))
    }

    fn open(&self, stored: &crate::store::ObjectRecord) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if stored.master_version.is_none() {
            return crate::object::UnderStorageKey(self.storage_key.as_deref()).open(stored);
        }
        match &self.hierarchy {
            Some(h) => open_stored_in(h, self.versions.as_deref(), &self.workspace, stored).map(Some),
            None => Ok(None),
        }
    }
}

/// `C_GenerateKey` with `CKM_CV_REWRAP_STORED`: moves every stored DEK to the active
/// master key version, `batch` records per transaction (so a crash loses at most the
/// batch in flight, which is redone on the next run); returns the current master object.
pub fn rewrap_stored(ctx: &Ctx, batch: usize) -> Result<CK_OBJECT_HANDLE> {
    if ctx.token.logged_in() != Some(PinOwner::User) {
        return Err(Error::UserNotLoggedIn);
    }
    if !ctx.is_rw() {
        return Err(Error::SessionReadOnly);
    }
    let hierarchy = ctx.token.hierarchy()?;
    let moved = hierarchy.rewrap_stored(batch.max(1), &mut |done, target| {
        log::info!("{}: re-wrapped {done} stored DEK(s) to wmk v{target}", ctx.token.workspace);
    })?;
    ctx.audit("CKM_CV_REWRAP_STORED", format!("{moved} stored DEK(s) re-wrapped"))?;
    Ok(ctx.app.handles.master_handle(ctx.slot(), None))
}
