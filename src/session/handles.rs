//! Object handles: this application's names for objects.
//!
//! A token object gets a handle the first time this process sees it and keeps it while
//! the object exists; a session object lives here entirely, in memory, owned by the
//! session that made it. Handles are never reused within a process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE, CK_SLOT_ID};
use parking_lot::RwLock;

use super::ids::IdMap;
use crate::object::Object;
use crate::store::ObjectId;

/// A session object: the current version of it, replaced whole when it changes, so an
/// operation can hold a version cheaply (an `Arc`) while another thread changes it.
pub type SharedObject = Arc<RwLock<Arc<Object>>>;

/// Where a handle's object lives.
#[derive(Clone)]
pub enum Located {
    /// In the store.
    Token(ObjectId),
    /// A workspace master key version (`None`: "the current master key"), whose object
    /// is made from the store's view of the hierarchy each time it is used.
    Master(Option<u32>),
    /// In memory, until its owning session closes.
    Session {
        /// The session that created it.
        owner: CK_SESSION_HANDLE,
        /// The object.
        object: SharedObject,
    },
}

#[derive(Default)]
struct Tables {
    by_handle: IdMap<CK_OBJECT_HANDLE, (CK_SLOT_ID, Located)>,
    token_handles: IdMap<ObjectId, CK_OBJECT_HANDLE>,
    master_handles: IdMap<(CK_SLOT_ID, Option<u32>), CK_OBJECT_HANDLE>,
    /// The session objects apart, in handle order, with their slot and owner: a find
    /// and a session's close visit these, not every handle the process holds (a process
    /// that touched a million token objects holds a million handles).
    session_objects: std::collections::BTreeMap<CK_OBJECT_HANDLE, (CK_SLOT_ID, CK_SESSION_HANDLE)>,
}

/// The process's handle table.
#[derive(Default)]
pub struct HandleTable {
    last: AtomicU64,
    tables: RwLock<Tables>,
}

impl HandleTable {
    fn next(&self) -> CK_OBJECT_HANDLE {
        self.last.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The handle of a stored object, assigning one on first sight.
    pub fn token_handle(&self, slot: CK_SLOT_ID, id: ObjectId) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.tables.read().token_handles.get(&id) {
            return *h;
        }
        let mut t = self.tables.write();
        if let Some(h) = t.token_handles.get(&id) {
            return *h;
        }
        let h = self.next();
        t.token_handles.insert(id, h);
        t.by_handle.insert(h, (slot, Located::Token(id)));
        h
    }

    /// The handle of a master key version's object (`None`: the current one).
    pub fn master_handle(&self, slot: CK_SLOT_ID, version: Option<u32>) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.tables.read().master_handles.get(&(slot, version)) {
            return *h;
        }
        let mut t = self.tables.write();
        if let Some(h) = t.master_handles.get(&(slot, version)) {
            return *h;
        }
        let h = self.next();
        t.master_handles.insert((slot, version), h);
        t.by_handle.insert(h, (slot, Located::Master(version)));
        h
    }

    /// Registers a new session object.
    pub fn add_session_object(&self, slot: CK_SLOT_ID, owner: CK_SESSION_HANDLE, object: Object) -> CK_OBJECT_HANDLE {
        let h = self.next();
        let located = Located::Session { owner, object: Arc::new(RwLock::new(Arc::new(object))) };
        let mut t = self.tables.write();
        t.by_handle.insert(h, (slot, located));
        t.session_objects.insert(h, (slot, owner));
        h
    }

    /// Where `handle` points, if it is live.
    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<(CK_SLOT_ID, Located)> {
        self.tables.read().by_handle.get(&handle).cloned()
    }

    /// Drops a handle (its object was destroyed or has vanished from the store).
    pub fn remove(&self, handle: CK_OBJECT_HANDLE) {
        let mut t = self.tables.write();
        match t.by_handle.remove(&handle) {
            Some((_, Located::Token(id))) => drop(t.token_handles.remove(&id)),
            Some((_, Located::Session { .. })) => drop(t.session_objects.remove(&handle)),
            Some((_, Located::Master(_))) | None => {}
        }
    }

    /// The session objects of `slot` as (handle, object), in handle order.
    pub fn session_objects(&self, slot: CK_SLOT_ID) -> Vec<(CK_OBJECT_HANDLE, SharedObject)> {
        let t = self.tables.read();
        t.session_objects
            .iter()
            .filter(|(_, (s, _))| *s == slot)
            .filter_map(|(h, _)| match t.by_handle.get(h) {
                Some((_, Located::Session { object, .. })) => Some((*h, object.clone())),
                _ => None,
            })
            .collect()
    }

    /// Destroys the session objects owned by `session`.
    pub fn drop_owned_by(&self, session: CK_SESSION_HANDLE) {
        let mut t = self.tables.write();
        let owned: Vec<CK_OBJECT_HANDLE> =
            t.session_objects.iter().filter(|(_, (_, owner))| *owner == session).map(|(h, _)| *h).collect();
        for h in owned {
            t.session_objects.remove(&h);
            t.by_handle.remove(&h);
        }
    }

    /// Destroys the private session objects of `slot` (a logout); returns how many.
    pub fn drop_private_session_objects(&self, slot: CK_SLOT_ID) -> usize {
        let mut t = self.tables.write();
        let private: Vec<CK_OBJECT_HANDLE> = t
            .session_objects
            .iter()
            .filter(|(_, (s, _))| *s == slot)
            .filter(|(h, _)| match t.by_handle.get(h) {
                Some((_, Located::Session { object, .. })) => object.read().is_private(),
                _ => false,
            })
            .map(|(h, _)| *h)
            .collect();
        for h in &private {
            t.session_objects.remove(h);
            t.by_handle.remove(h);
        }
        private.len()
    }

    /// Forgets every handle of `slot` (its token was re-initialized).
    pub fn forget_slot(&self, slot: CK_SLOT_ID) {
        let mut t = self.tables.write();
        let gone: std::collections::HashSet<ObjectId> = t
            .by_handle
            .values()
            .filter_map(|(s, loc)| match loc {
                Located::Token(id) if *s == slot => Some(*id),
                _ => None,
            })
            .collect();
        t.by_handle.retain(|_, (s, _)| *s != slot);
        t.token_handles.retain(|id, _| !gone.contains(id));
        t.master_handles.retain(|(s, _), _| *s != slot);
        t.session_objects.retain(|_, (s, _)| *s != slot);
    }
}
