//! The quorum's state as the store keeps it: each workspace's key-encryption key (KEK)
//! row, its custodians with their sealed shares, the requests custodians approve, their
//! approvals, and the unlock grant. Nothing here is a plaintext key: the KEK is sealed by
//! the root (or not stored at all under a quorum), each share is sealed to its custodian's
//! passphrase-derived key, and approvals and grants are sealed by the HSM root key.

/// A workspace's key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRecord {
    /// Bumped by every new KEK (a split or re-split): shares, approvals and grants name
    /// the generation they belong to.
    pub generation: u32,
    /// k of the k-of-n split; 0: no quorum, the KEK is sealed by the root in `sealed`.
    pub threshold: u8,
    /// The KEK sealed by the root (HSM key and storage key), without a quorum only.
    pub sealed: Option<Vec<u8>>,
    /// HMAC of the KEK under a fixed label: proves a recombined KEK right before use.
    pub check: Vec<u8>,
}

/// One enrolled custodian and their share of the KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custodian {
    /// The custodian's name (the `C_LoginUser` username).
    pub name: String,
    /// The share's x coordinate (1..=255).
    pub index: u8,
    /// Argon2id salt of the passphrase-derived key.
    pub salt: Vec<u8>,
    /// Argon2id memory, KiB.
    pub memory_kib: u32,
    /// Argon2id passes.
    pub passes: u32,
    /// The X-Wing public key derived from the passphrase.
    pub public_key: Vec<u8>,
    /// The share, sealed to `public_key` (`mechanism/sealed_box.rs`).
    pub sealed_share: Vec<u8>,
    /// Consecutive wrong passphrases.
    pub failures: u32,
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Collecting approvals.
    Open,
    /// Its approvals were used (once).
    Used,
    /// Cancelled, or dropped by a re-split or a failed quorum.
    Cancelled,
}

impl RequestState {
    /// The stored code.
    pub fn code(self) -> i64 {
        match self {
            RequestState::Open => 0,
            RequestState::Used => 1,
            RequestState::Cancelled => 2,
        }
    }

    /// The state of a stored code (unknown codes read as cancelled: they grant nothing).
    pub fn from_code(code: i64) -> RequestState {
        match code {
            0 => RequestState::Open,
            1 => RequestState::Used,
            _ => RequestState::Cancelled,
        }
    }
}

/// A request for the quorum's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its number (what `name:N` approves).
    pub id: i64,
    /// What it would allow: `unlock`, `destroy-v3`, `change-quorum`, `init-token`.
    pub action: String,
    /// Who asked (an audit actor name).
    pub requested_by: String,
    /// The KEK generation whose custodians may approve it.
    pub generation: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; approvals after it count for nothing.
    pub expires_at: i64,
    /// Open, used or cancelled.
    pub state: RequestState,
}

/// A request to open: what, by whom, for which KEK generation, when, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRequest<'a> {
    /// See [`Request::action`].
    pub action: &'a str,
    /// See [`Request::requested_by`].
    pub requested_by: &'a str,
    /// See [`Request::generation`].
    pub generation: u32,
    /// Unix seconds now: an open request of the same action still valid then is reused.
    pub now: i64,
    /// See [`Request::expires_at`].
    pub expires_at: i64,
}

/// One custodian's approval of a request, holding their share sealed by the HSM root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approved.
    pub custodian: String,
    /// Their share's index.
    pub index: u8,
    /// Their share, sealed by the HSM root key, bound to the request.
    pub sealed_share: Vec<u8>,
    /// Unix seconds.
    pub at: i64,
}

/// A legal hold on a workspace: while it stands no master key version is retired or
/// destroyed, no stored DEK deleted and the token not re-initialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Who set it (an audit actor name).
    pub set_by: String,
    /// Why (a case reference), as the SO gave it.
    pub reason: String,
    /// Unix seconds.
    pub set_at: i64,
}

/// An emergency access window: until `expires_at`, the named person may unwrap under
/// master key versions an audit alert blocked, each unwrap audited on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyWindow {
    /// Who the quorum granted it to (as the request named them).
    pub name: String,
    /// Who opened it (an audit actor name).
    pub opened_by: String,
    /// Unix seconds.
    pub opened_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The KEK sealed by the HSM root until `expires_at`: lets every process on the store
/// open the master keys until then (or until a lock revokes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The KEK generation it opens.
    pub generation: u32,
    /// Unix seconds; bound into the sealing context, so it cannot be extended in the file.
    pub expires_at: i64,
    /// The KEK, sealed by the HSM root key.
    pub sealed: Vec<u8>,
}
