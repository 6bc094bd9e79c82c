//! `store/`: everything the token keeps across processes and restarts.
//!
//! The rest of the crate speaks to the store only through [`Backend`], in domain types
//! (`TokenRecord`, `ObjectRecord`, `AuditEvent`), never SQL and never `CK_ATTRIBUTE`.
//! Every state change takes the [`AuditEvent`] that records it, and the backend commits
//! both in one transaction: neither exists without the other. Secret attribute values
//! arrive here already sealed (`sealed.rs`); the store never sees plaintext key bytes.
//!
//! SQLite (`sqlite.rs`) is the first backend; a shared network database can be a second
//! one behind the same trait.

pub mod audit;
pub mod sealed;
pub mod sqlite;

pub use audit::AuditEvent;

use crate::error::Result;

/// Primary key of a stored token object; stable for the object's life, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub i64);

/// Which PIN a record or counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOwner {
    /// The security officer.
    So,
    /// The normal user.
    User,
}

/// A token's persistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Label set by `C_InitToken` (or the configured one before that).
    pub label: String,
    /// Serial number, fixed when the token is first created.
    pub serial: String,
    /// Whether `C_InitToken` has run.
    pub initialized: bool,
    /// Encoded SO PIN record (`token/pin.rs`).
    pub so_pin: Option<Vec<u8>>,
    /// Encoded user PIN record, once `C_InitPIN` has run.
    pub user_pin: Option<Vec<u8>>,
    /// Consecutive failed SO logins.
    pub so_failures: u32,
    /// Consecutive failed user logins.
    pub user_failures: u32,
    /// Bumped by every re-initialization, so another process notices its keys are stale.
    pub epoch: i64,
}

/// A token object as stored: index columns in the clear, other attributes encoded, and
/// the secret attributes sealed under the token's storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// `CKA_CLASS`.
    pub class: u64,
    /// `CKA_KEY_TYPE`, for keys.
    pub key_type: Option<u64>,
    /// `CKA_LABEL`.
    pub label: Vec<u8>,
    /// `CKA_ID`, for objects that have one.
    pub ckid: Option<Vec<u8>>,
    /// `CKA_PRIVATE`.
    pub private: bool,
    /// `CKA_UNIQUE_ID`; also the associated data that binds the sealed part to this row.
    pub unique_id: String,
    /// The non-secret attributes, encoded by `object::codec`.
    pub attrs: Vec<u8>,
    /// The secret attributes, sealed (`sealed.rs`); `None` when the object has none.
    pub sealed: Option<Vec<u8>>,
}

/// An indexed lookup: every `Some` field must match. Anything else in a find template is
/// filtered above the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexQuery {
    /// Match `CKA_CLASS`.
    pub class: Option<u64>,
    /// Match `CKA_KEY_TYPE`.
    pub key_type: Option<u64>,
    /// Match `CKA_LABEL`.
    pub label: Option<Vec<u8>>,
    /// Match `CKA_ID`.
    pub ckid: Option<Vec<u8>>,
    /// Leave private objects out.
    pub public_only: bool,
}

/// The narrow interface the token keeps its state through.
pub trait Backend: Send + Sync {
    /// The token's state, creating its row (uninitialized) on first sight.
    fn open_token(&self, workspace: &str, default_label: &str) -> Result<TokenRecord>;
    /// The token's current state.
    fn token(&self, workspace: &str) -> Result<TokenRecord>;
    /// `C_InitToken`: wipes the token's objects, sets label and SO PIN, clears the user PIN.
    fn init_token(&self, workspace: &str, label: &str, so_pin: &[u8], event: &AuditEvent) -> Result<()>;
    /// Replaces one PIN record and resets its failure counter.
    fn set_pin(&self, workspace: &str, owner: PinOwner, record: &[u8], event: &AuditEvent) -> Result<()>;
    /// Records a login attempt; returns the consecutive failure count after it.
    fn record_login(&self, workspace: &str, owner: PinOwner, ok: bool, event: &AuditEvent) -> Result<u32>;
    /// Stores a new token object.
    fn insert_object(&self, workspace: &str, record: &ObjectRecord, event: &AuditEvent) -> Result<ObjectId>;
    /// Replaces a stored object's attributes; false when it no longer exists.
    fn update_object(&self, id: ObjectId, record: &ObjectRecord, event: &AuditEvent) -> Result<bool>;
    /// Deletes a token object; false when it no longer exists.
    fn delete_object(&self, id: ObjectId, event: &AuditEvent) -> Result<bool>;
    /// One stored object, if it still exists and belongs to `workspace`.
    fn object(&self, workspace: &str, id: ObjectId) -> Result<Option<ObjectRecord>>;
    /// The objects matching an indexed query, in id order.
    fn find_objects(&self, workspace: &str, query: &IndexQuery) -> Result<Vec<(ObjectId, ObjectRecord)>>;
    /// Appends an event that changes no other state (a refused operation, a logout).
    fn append_audit(&self, event: &AuditEvent) -> Result<()>;
}
