//! Object management through a session: create, copy, destroy, attributes, find.
//!
//! Visibility and write rules live here (spec §5.7, §6.7): private objects exist for a
//! session only while the user is logged in; token objects change only through read-write
//! sessions; session objects belong to the application and die with their session.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::handles::{Located, SharedObject};
use super::{Ctx, FindOp};
use crate::error::{Error, Result};
use crate::object::{Object, Read, Template};
use crate::store::{AuditEvent, IndexQuery, ObjectId, PinOwner, Updated};

/// About how long an object's description is (a 32-digit unique id, a space, a short
/// quoted label): the capacity reserved for it.
const DESCRIBED_LEN: usize = 48;

/// What `C_GetAttributeValue` learns about one requested attribute.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The value (key bytes, for an extractable, non-sensitive key: zeroized on drop).
    Value(Zeroizing<Vec<u8>>),
    /// Sensitive: not revealed.
    Sensitive,
    /// Not an attribute of this object.
    Invalid,
}

/// An object resolved from a handle.
pub(super) enum Resolved {
    Token(ObjectId, Arc<Object>),
    Session(SharedObject),
    Master(Option<u32>, Arc<Object>),
}

impl Resolved {
    /// The object as it is now (shared, not copied).
    pub(super) fn object(&self) -> Arc<Object> {
        match self {
            Resolved::Token(_, o) | Resolved::Master(_, o) => o.clone(),
            Resolved::Session(o) => o.read().clone(),
        }
    }
}

impl Ctx {
    pub(super) fn user_logged_in(&self) -> bool {
        self.token.logged_in() == Some(PinOwner::User)
    }

    /// An SO session (R/W SO functions: the SO is never logged in through a read-only one).
    pub(super) fn so_logged_in(&self) -> bool {
        self.token.logged_in() == Some(PinOwner::So)
    }

    /// An entry about `object`, by this call.
    pub(super) fn object_event(&self, action: &'static str, object: &Object) -> AuditEvent {
        self.event(action, Some(object.describe()))
    }

    /// Appends an entry that changes no stored state (a wrap, a session object's change),
    /// durable before the call returns.
    pub(super) fn audit(&self, action: &'static str, what: String) -> Result<()> {
        let event = self.event(action, Some(what));
        self.token.store().append_audit(&event)
    }

    /// Adds a key made from `source` (derived, unwrapped, encapsulated); the entry names
    /// both: `NEW <relation> SOURCE`.
    pub(super) fn add_from(
        &self,
        key: Object,
        action: &'static str,
        relation: &str,
        source: &Object,
    ) -> Result<CK_OBJECT_HANDLE> {
        let mut what = String::with_capacity(2 * DESCRIBED_LEN + relation.len() + 2);
        key.describe_into(&mut what);
        what.push(' ');
        what.push_str(relation);
        what.push(' ');
        source.describe_into(&mut what);
        self.add_described(key, action, what)
    }

    /// Resolves an object handle, enforcing visibility.
    pub(super) fn resolve(&self, handle: CK_OBJECT_HANDLE) -> Result<Resolved> {
        let (slot, located) = self.app.handles.get(handle).ok_or(Error::ObjectHandleInvalid)?;
        if slot != self.slot() {
            return Err(Error::ObjectHandleInvalid);
        }
        let resolved = match located {
            Located::Token(id) => {
                let Some(record) = self.token.store().object(&self.token.workspace, id)? else {
                    // Destroyed by another process (or a re-initialization).
                    self.app.handles.remove(handle);
                    return Err(Error::ObjectHandleInvalid);
                };
                if record.private && !self.user_logged_in() {
                    return Err(Error::ObjectHandleInvalid);
                }
                let object = Object::from_record(&record, &self.at_rest()).inspect_err(|e| {
                    // The handle says nothing to an operator; the row's unique id does.
                    log::error!("{}: stored object {} is unreadable: {e}", self.token.workspace, record.unique_id);
                })?;
                let object = if object.needs_binding() { self.bind_row(id, object) } else { object };
                Resolved::Token(id, Arc::new(object))
            }
            Located::Master(version) => {
                // The user works with them; the SO sees them to clear an alert's block.
                if self.token.logged_in().is_none() {
                    return Err(Error::ObjectHandleInvalid);
                }
                let (record, current) = self.master_record(version)?;
                Resolved::Master(version, Arc::new(super::master::object(&self.token.workspace, &record, current)))
            }
            Located::Session { object, .. } => {
                if object.read().is_private() && !self.user_logged_in() {
                    return Err(Error::ObjectHandleInvalid);
                }
                Resolved::Session(object)
            }
        };
        Ok(resolved)
    }

    /// Seals a row stored before row bindings existed again, with its binding, on its
    /// first use by a logged-in session; the object as read serves the call either way
    /// (a failure is logged, and the next use tries again).
    fn bind_row(&self, id: ObjectId, object: Object) -> Object {
        let mut bound = object.clone();
        bound.next_generation();
        let event = self.module_event("object row bound", Some(object.describe()));
        let outcome = bound
            .to_record(&self.at_rest())
            .and_then(|record| self.token.store().update_object(id, object.generation(), &record, &event));
        match outcome {
            Ok(Updated::Done) => {
                log::info!("{}: {} sealed again with its row binding", self.token.workspace, object.describe());
                bound
            }
            Ok(_) => object,
            Err(e) => {
                log::warn!("{}: {} could not be bound: {e}", self.token.workspace, object.describe());
                object
            }
        }
    }

    /// Checks that this session may hold `object` (a new or changed one).
    /// The checks a new object's template decides before anything else of the call is
    /// looked at (the order in `doc/check-order.md`: session state and login come before
    /// the mechanism and the template's validation): a token object needs a read-write
    /// session, an explicitly private one a logged-in user. A value that does not decode
    /// is left to the template's validation. [`Ctx::check_may_hold`] checks the finished
    /// object again, with its class's defaults.
    pub fn check_may_create(&self, template: &Template) -> Result<()> {
        let says = |ty| template.bool(ty).ok().flatten() == Some(true);
        if says(CKA_TOKEN) && !self.is_rw() {
            return Err(Error::SessionReadOnly);
        }
        if says(CKA_PRIVATE) && !self.user_logged_in() {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    pub(super) fn check_may_hold(&self, object: &Object) -> Result<()> {
        if object.is_token() && !self.is_rw() {
            return Err(Error::SessionReadOnly);
        }
        if object.is_private() && !self.user_logged_in() {
            return Err(Error::UserNotLoggedIn);
        }
        Ok(())
    }

    /// Stores a new object and returns its handle; its audit entry names the object.
    pub(super) fn add(&self, object: Object, action: &'static str) -> Result<CK_OBJECT_HANDLE> {
        let what = object.describe();
        self.add_described(object, action, what)
    }

    /// [`Ctx::add`] with the audit entry's object text given (`NEW from BASE`, `... under
    /// wmk v2`). A session object is audited too, before its handle exists: a key made
    /// without its entry never reaches the caller.
    pub(super) fn add_described(&self, object: Object, action: &'static str, what: String) -> Result<CK_OBJECT_HANDLE> {
        self.check_may_hold(&object)?;
        crate::object::usage::check_new_trust(&object, self.so_logged_in())?;
        let event = self.event(action, Some(what));
        if !object.is_token() {
            // Made in this process and gone with it: its entry may wait for a batch
            // (see store::audit::Sync::Batched).
            self.token.store().append_audit_owned(event.batched())?;
            return Ok(self.app.handles.add_session_object(self.slot(), self.handle, object));
        }
        let record = object.to_record(&self.at_rest())?;
        let id = self.token.store().insert_object(&self.token.workspace, &record, &event)?;
        log::debug!("{}: {action} stored {}", self.token.workspace, object.describe());
        Ok(self.app.handles.token_handle(self.slot(), id))
    }
}

/// `C_CreateObject`.
pub fn create(ctx: &Ctx, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    let object = crate::object::import::complete(Object::create(template)?)?;
    ctx.add(object, "C_CreateObject")
}

/// `C_CopyObject`.
pub fn copy(ctx: &Ctx, source: CK_OBJECT_HANDLE, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    let source = ctx.resolve(source)?.object();
    crate::object::usage::check_copy_trust(&source, ctx.so_logged_in())?;
    let copy = source.copy(template)?;
    ctx.add(copy, "C_CopyObject")
}

/// `C_DestroyObject`.
pub fn destroy(ctx: &Ctx, object: CK_OBJECT_HANDLE) -> Result<()> {
    let resolved = ctx.resolve(object)?;
    let current = resolved.object();
    if !current.flag(CKA_DESTROYABLE) {
        return Err(Error::ActionProhibited);
    }
    match &resolved {
        Resolved::Token(id, o) => {
            if !ctx.is_rw() {
                return Err(Error::SessionReadOnly);
            }
            if current.ulong(CKA_CLASS) == Some(CKO_SECRET_KEY) {
                ctx.token.quorum().check_not_held("deleting a stored DEK")?;
            }
            ctx.token.store().delete_object(*id, &ctx.object_event("C_DestroyObject", o))?;
        }
        Resolved::Session(o) => {
            ctx.token.store().append_audit_owned(ctx.object_event("C_DestroyObject", &o.read()).batched())?
        }
        // Master key objects are never destroyable (checked above).
        Resolved::Master(..) => return Err(Error::ActionProhibited),
    }
    ctx.app.handles.remove(object);
    Ok(())
}

/// `C_GetAttributeValue`: one answer per requested type, in order.
///
/// `wanted[i]` says whether the caller gave a buffer for `types[i]` (not a length query):
/// returning key material in plaintext writes a durable audit entry first, or nothing is
/// returned.
pub fn get_attributes(
    ctx: &Ctx,
    object: CK_OBJECT_HANDLE,
    types: &[CK_ATTRIBUTE_TYPE],
    wanted: &[bool],
) -> Result<Vec<Answer>> {
    let resolved = ctx.resolve(object)?;
    let o = resolved.object();
    let answers = types
        .iter()
        .map(|ty| match (&resolved, *ty) {
            // Counted when asked for: a master key object is built on every find.
            (Resolved::Master(version, m), crate::vendor::CKA_CV_STORED_RECORDS) => {
                super::master::stored_records(ctx, *version, m)
                    .map(|n| Answer::Value(Zeroizing::new(n.to_ne_bytes().to_vec())))
            }
            // A version's key check value: computed when asked (a root unseal).
            (Resolved::Master(version, m), CKA_CHECK_VALUE) => super::master::check_value(ctx, *version, m)
                .map(|kcv| kcv.map_or(Answer::Invalid, |v| Answer::Value(Zeroizing::new(v.to_vec())))),
            (Resolved::Master(..), ty) if super::quorum::is_master_attribute(ty) => {
                super::quorum::attribute(ctx, ty).map(|v| Answer::Value(Zeroizing::new(v)))
            }
            _ => Ok(match o.read(*ty) {
                Read::Value(v) => Answer::Value(Zeroizing::new(v.to_vec())),
                Read::Sensitive => Answer::Sensitive,
                Read::Invalid => Answer::Invalid,
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    let revealed: Vec<String> = types
        .iter()
        .zip(&answers)
        .zip(wanted.iter().chain(std::iter::repeat(&true)))
        .filter(|((ty, answer), wanted)| **wanted && matches!(answer, Answer::Value(_)) && o.is_key_material(**ty))
        .map(|((ty, _), _)| crate::names::attr_name(*ty))
        .collect();
    if !revealed.is_empty() {
        // Names only: the entry never holds the value.
        ctx.audit("C_GetAttributeValue", format!("{} plaintext read: {}", o.describe(), revealed.join(", ")))?;
    }
    Ok(answers)
}

/// `C_SetAttributeValue`: all or nothing.
pub fn set_attributes(ctx: &Ctx, object: CK_OBJECT_HANDLE, template: &Template) -> Result<()> {
    let resolved = ctx.resolve(object)?;
    if !matches!(resolved, Resolved::Master(..)) {
        crate::object::usage::check_set_trust(&resolved.object(), template, ctx.so_logged_in())?;
    }
    match resolved {
        Resolved::Token(id, o) => {
            if !ctx.is_rw() {
                return Err(Error::SessionReadOnly);
            }
            set_stored(ctx, object, id, o, template)
        }
        Resolved::Session(o) => {
            // Checked on a copy first, so the change and its entry happen together or not
            // at all; under the write lock, so a concurrent set cannot start from the
            // value this one replaces and undo a one-way change.
            let mut slot = o.write();
            let mut changed = (**slot).clone();
            changed.set(template)?;
            ctx.audit("C_SetAttributeValue", changed.describe())?;
            *slot = Arc::new(changed);
            Ok(())
        }
        Resolved::Master(version, _) => super::master::set_attributes(ctx, version, template),
    }
}

/// How often a set re-reads a row another change moved on before giving up.
const SET_RETRIES: usize = 16;

/// A stored object's `C_SetAttributeValue`: a compare-and-swap on the row's generation.
/// When another session or process changed the object since it was read, the change is
/// checked again against the object as it is now, so a one-way change made meanwhile
/// (`CKA_EXTRACTABLE` to false) is never undone by a set from a stale copy.
fn set_stored(
    ctx: &Ctx,
    handle: CK_OBJECT_HANDLE,
    id: ObjectId,
    mut current: Arc<Object>,
    template: &Template,
) -> Result<()> {
    for _ in 0..SET_RETRIES {
        let read_at = current.generation();
        let mut changed = (*current).clone();
        changed.set(template)?;
        changed.next_generation();
        let record = changed.to_record(&ctx.at_rest())?;
        match ctx.token.store().update_object(
            id,
            read_at,
            &record,
            &ctx.object_event("C_SetAttributeValue", &changed),
        )? {
            Updated::Done => return Ok(()),
            Updated::Gone => {
                ctx.app.handles.remove(handle);
                return Err(Error::ObjectHandleInvalid);
            }
            Updated::Moved => {
                log::debug!("{}: changed meanwhile; the set is checked again", changed.describe());
                current = match ctx.resolve(handle)? {
                    Resolved::Token(_, o) => o,
                    _ => return Err(Error::ObjectHandleInvalid),
                };
                crate::object::usage::check_set_trust(&current, template, ctx.so_logged_in())?;
            }
        }
    }
    log::warn!("C_SetAttributeValue: object {} kept changing under {SET_RETRIES} attempts", current.describe());
    Err(Error::ObjectContended)
}

/// `C_GetObjectSize`.
pub fn size(ctx: &Ctx, object: CK_OBJECT_HANDLE) -> Result<usize> {
    Ok(ctx.resolve(object)?.object().size())
}

fn index_query(template: &Template, public_only: bool) -> Option<IndexQuery> {
    // A malformed class or key type in a find template matches nothing.
    let class = template.ulong(CKA_CLASS).ok()?;
    let key_type = template.ulong(CKA_KEY_TYPE).ok()?;
    Some(IndexQuery {
        class,
        key_type,
        label: template.get(CKA_LABEL).map(<[u8]>::to_vec),
        ckid: template.get(CKA_ID).map(<[u8]>::to_vec),
        public_only,
    })
}

/// `C_FindObjectsInit`: takes a snapshot of the matching handles.
pub fn find_init(ctx: &Ctx, template: &Template) -> Result<()> {
    if ctx.session.lock().find.is_some() {
        return Err(Error::OperationActive);
    }
    let user = ctx.user_logged_in();
    let mut found = Vec::new();
    if let Some(query) = index_query(template, !user) {
        // Logged in, the find is judged against the token's epoch (a recovery in another
        // process voids this login) and the master key rows as they are now (a version
        // rotated, blocked or destroyed elsewhere), read with the objects in one store
        // read: on PostgreSQL one round trip instead of one per read.
        let logged_in = ctx.token.logged_in().is_some();
        let read = ctx.token.store().find_with_hierarchy(&ctx.token.workspace, &query, logged_in)?;
        let hierarchy = read.hierarchy.and_then(|(epoch, rows)| Some((ctx.token.hierarchy_at(epoch).ok()?, rows)));
        let (hierarchy, versions) = match hierarchy {
            Some((h, rows)) => {
                let versions = h.verified(rows)?;
                (Some(h), Some(versions))
            }
            None => (None, None),
        };
        let at_rest = ctx.at_rest_with(hierarchy, versions.clone());
        for (id, record) in read.objects {
            match Object::from_record(&record, &at_rest) {
                Ok(o) if o.matches(template) => found.push(ctx.app.handles.token_handle(ctx.slot(), id)),
                Ok(_) => {}
                Err(e) => log::error!("{}: stored object {} is unreadable: {e}", ctx.token.workspace, record.unique_id),
            }
        }
        if let (Some(versions), Some(_)) = (&versions, ctx.token.logged_in()) {
            for (version, o) in ctx.master_objects_of(versions) {
                if o.matches(template) {
                    found.push(ctx.app.handles.master_handle(ctx.slot(), version));
                }
            }
        }
        for (h, o) in ctx.app.handles.session_objects(ctx.slot()) {
            let o = o.read();
            if (user || !o.is_private()) && o.matches(template) {
                found.push(h);
            }
        }
    }
    let mut session = ctx.session.lock();
    if session.find.is_some() {
        return Err(Error::OperationActive);
    }
    session.find = Some(FindOp { remaining: found.into() });
    Ok(())
}

/// `C_FindObjects`: up to `max` more handles.
pub fn find_next(ctx: &Ctx, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
    let mut session = ctx.session.lock();
    let find = session.find.as_mut().ok_or(Error::OperationNotInitialized)?;
    let n = max.min(find.remaining.len());
    Ok(find.remaining.drain(..n).collect())
}

/// `C_FindObjectsFinal`.
pub fn find_final(ctx: &Ctx) -> Result<()> {
    let found = ctx.session.lock().find.take();
    found.map(drop).ok_or(Error::OperationNotInitialized)
}
