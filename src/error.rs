//! The one error type of the safe core.
//!
//! Every fallible function below `ffi/` returns [`Result`]. Each variant names a
//! condition in the core's own words; `ffi/rv.rs` maps every variant to exactly one
//! `CK_RV` in a single exhaustive match, so adding a variant forces a decision there.
//! Variants never carry key bytes or PINs: their text goes to the log.

use std::fmt;

/// Result of the safe core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong below the C ABI.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A call arrived before `C_Initialize` (or in a forked child that has not re-initialized).
    NotInitialized,
    /// `C_Initialize` was called twice.
    AlreadyInitialized,
    /// A pointer, length or argument combination the spec forbids; the text says which.
    ArgumentsBad(&'static str),
    /// The application asked for its own mutex callbacks without allowing OS locking.
    CantLock,
    /// The configuration file is missing, unreadable or invalid; the text names file and problem.
    Config(String),
    /// The function exists in the table but this token does not implement it.
    FunctionNotSupported,
    /// `C_GetFunctionStatus`/`C_CancelFunction`: legacy calls for parallel sessions.
    FunctionNotParallel,
    /// `C_WaitForSlotEvent` without blocking: nothing happened (slots never change).
    NoEvent,
    /// No slot with that id.
    SlotIdInvalid,
    /// The token has not been initialized with `C_InitToken`.
    TokenNotInitialized,
    /// No open session with that handle.
    SessionHandleInvalid,
    /// `C_OpenSession` without `CKF_SERIAL_SESSION`.
    SessionParallelNotSupported,
    /// A write to token state from a read-only session.
    SessionReadOnly,
    /// `C_InitToken` while sessions are open on the token.
    SessionExists,
    /// SO login while read-only sessions exist.
    SessionReadOnlyExists,
    /// A read-only session was requested while the SO is logged in.
    SessionReadWriteSoExists,
    /// The operation needs a logged-in user (or SO).
    UserNotLoggedIn,
    /// The same user type is already logged in.
    UserAlreadyLoggedIn,
    /// Another user type is logged in.
    UserAnotherAlreadyLoggedIn,
    /// The user PIN has never been set (`C_InitPIN`).
    UserPinNotInitialized,
    /// Unknown `CK_USER_TYPE`.
    UserTypeInvalid,
    /// The PIN did not verify.
    PinIncorrect,
    /// Too many failed attempts; the PIN is locked.
    PinLocked,
    /// The PIN is shorter or longer than the token allows.
    PinLenRange,
    /// The PIN contains bytes the token does not accept.
    PinInvalid,
    /// No object with that handle is visible to the session.
    ObjectHandleInvalid,
    /// The attribute does not belong to this object class.
    AttributeTypeInvalid(u64),
    /// The attribute value is malformed or not allowed.
    AttributeValueInvalid(u64),
    /// The attribute cannot be set or changed here.
    AttributeReadOnly(u64),
    /// The attribute's value must not leave the token.
    AttributeSensitive(u64),
    /// The template lacks a required attribute.
    TemplateIncomplete(u64),
    /// The template contradicts itself or the object.
    TemplateInconsistent(u64),
    /// The object forbids this action (`CKA_MODIFIABLE`, `CKA_COPYABLE`, `CKA_DESTROYABLE`).
    ActionProhibited,
    /// An operation of this kind is already active in the session.
    OperationActive,
    /// No operation of this kind is active in the session.
    OperationNotInitialized,
    /// The output buffer is too small; carries the size needed.
    BufferTooSmall(usize),
    /// The token accepts no seed for its RNG (it reads the OS CSPRNG).
    RandomSeedNotSupported,
    /// The mechanism is not supported, or not for this operation or key.
    MechanismInvalid,
    /// The mechanism's parameter is missing or malformed.
    MechanismParamInvalid,
    /// The key handle names no key this session may use.
    KeyHandleInvalid,
    /// The key's usage attributes forbid this operation (`CKA_ENCRYPT`, `CKA_SIGN`, ...).
    KeyFunctionNotPermitted,
    /// The key is of the wrong type for the mechanism.
    KeyTypeInconsistent,
    /// The key's length is outside the mechanism's range.
    KeySizeRange,
    /// The wrapping key handle is invalid.
    WrappingKeyHandleInvalid,
    /// The wrapping key is of the wrong type.
    WrappingKeyTypeInconsistent,
    /// The unwrapping key handle is invalid.
    UnwrappingKeyHandleInvalid,
    /// The unwrapping key is of the wrong type.
    UnwrappingKeyTypeInconsistent,
    /// The unwrapping key is too small for the mechanism (a BYOK import key under 3072
    /// bits, or ML-KEM-512).
    UnwrappingKeySizeRange,
    /// The wrapping key is not the size the mechanism needs (a recovery kit key that is
    /// not AES-256).
    WrappingKeySizeRange,
    /// The key to wrap may not be wrapped (`CKA_EXTRACTABLE` false).
    KeyUnextractable,
    /// The key to wrap cannot be wrapped with this mechanism (`CKA_WRAP_WITH_TRUSTED`, class).
    KeyNotWrappable,
    /// `C_DigestKey` on a key whose value cannot be digested.
    KeyIndigestible,
    /// The wrapped key does not unwrap (integrity check failed).
    WrappedKeyInvalid,
    /// The wrapped key has an impossible length.
    WrappedKeyLenRange,
    /// The input is not valid for the mechanism (`C_Encrypt` of something that is not a
    /// wrap record under `CKM_CV_REWRAP_RECORD`).
    DataInvalid,
    /// The input's length is wrong for the mechanism.
    DataLenRange,
    /// The ciphertext's length is wrong for the mechanism.
    EncryptedDataLenRange,
    /// The ciphertext failed its integrity check; one opaque error for every decrypt failure.
    EncryptedDataInvalid,
    /// A message-based (3.0) AEAD decryption's tag did not verify.
    AeadDecryptFailed,
    /// The key has used up its GCM IV counter space (SP 800-38D §8.3): a counter IV
    /// would repeat one already issued, so the token refuses instead of wrapping.
    IvCounterExhausted,
    /// The signature does not verify.
    SignatureInvalid,
    /// The signature has the wrong length.
    SignatureLenRange,
    /// The EC parameters name a curve this token does not support.
    CurveNotSupported,
    /// Domain parameters (curve, parameter set) are invalid.
    DomainParamsInvalid,
    /// The store failed (I/O, corruption, lock timeout); the text says what, never key bytes.
    Store(String),
    /// The root of trust (the underlying slot) failed; the text names the cause.
    Root(String),
    /// The configured root token is not in the underlying module.
    RootTokenNotPresent(String),
    /// A master key version cannot do what was asked (retired, still needed, ...); the
    /// text says which and why.
    MasterKey(String),
    /// An audit alert blocked this key until the SO clears it; the text says which.
    KeyBlocked(String),
    /// The workspace's master keys are locked until a quorum of custodians approves an
    /// unlock (`CKR_CV_LOCKED`); the text names the workspace.
    Locked(String),
    /// A quorum-guarded operation has no approved request yet (`CKR_CV_QUORUM_REQUIRED`);
    /// the text names the request the custodians must approve.
    QuorumRequired(String),
    /// The approved shares did not rebuild the key-encryption key its check value names
    /// (`CKR_CV_QUORUM_FAILED`): a forged, swapped or foreign share; the text says which
    /// check failed, never a key byte.
    QuorumFailed(&'static str),
    /// The workspace is under a legal hold: nothing may be retired, destroyed or deleted
    /// (`CKR_CV_LEGAL_HOLD`); the text names the hold and what was refused.
    LegalHold(String),
    /// The custodians' notification hook failed and `notify_required` is set: the
    /// operation did not happen (`CKR_FUNCTION_FAILED`); the text says why.
    NotifyFailed(String),
    /// A stored object kept changing under a compare-and-swap update, attempt after
    /// attempt (`CKR_FUNCTION_FAILED`: the caller may try again).
    ObjectContended,
    /// Another host (or process) committed master key version N first, by a concurrent
    /// rotation or import; nothing was written. A rotation that the concurrent one
    /// satisfies returns its version instead (`Hierarchy::rotate`); what escapes maps to
    /// `CKR_FUNCTION_FAILED` (the caller may try again), never a device error.
    VersionTaken(u32),
    /// Sealed data failed to open: wrong storage key or tampered row.
    Integrity(&'static str),
    /// Memory for a caller-sized request could not be allocated.
    HostMemory,
    /// Audit checkpoints failed this many times in a row: key management fails closed
    /// until one succeeds.
    CheckpointsFailing(u32),
    /// Session-object audit entries held for one batch could not be written (the text
    /// says why): every audited call fails until they are, so none is lost in silence.
    AuditBatchUnwritten(String),
    /// A recovery kit is refused (`recovery/`): the text names what is wrong with it
    /// (corrupted section, truncation, foreign workspace, downgrade), or says only that
    /// the passphrase or the second factor is wrong, never which.
    Kit(String),
    /// Something that should not happen; which one goes to the log.
    Internal(Internal),
}

/// The failures that should never happen, each answered `CKR_GENERAL_ERROR` (the OS
/// random source, `CKR_FUNCTION_FAILED`), named so the log says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Internal {
    /// The OS random source failed.
    RandomSource,
    /// The PIN KDF refused its own parameters or failed.
    Kdf,
    /// An RSA private-key or public-key operation failed after its inputs were checked.
    RsaOperation,
    /// An RSA key is not a two-prime key with CRT values.
    RsaKeyShape,
    /// EC key generation drew no valid scalar in its tries.
    EcKeyGeneration,
    /// The crypto backend failed an EC operation (key generation, a signature) on
    /// inputs already checked.
    EcOperation,
    /// The crypto backend failed an ML-KEM operation on a stored (validated) key.
    KemOperation,
    /// A cipher produced more than it said it would.
    CipherOutputLength,
    /// An operation produced data for a length query.
    DataForLengthQuery,
    /// An operation reports writing beyond the caller's buffer.
    OutputBeyondBuffer,
    /// A wrap record field does not fit its length prefix.
    RecordFieldTooLong,
    /// The bare root key was asked to MAC a row (only an HSM root keeps the MAC key).
    BareRootMac,
    /// A master key object was found without its version.
    MasterWithoutVersion,
    /// The IV counter limit is beyond the store's integer range.
    IvCounterRange,
    /// A derived value has the wrong length.
    DerivedLength,
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Internal::RandomSource => "the OS random source failed",
            Internal::Kdf => "the PIN KDF (Argon2id) failed",
            Internal::RsaOperation => "an RSA operation failed",
            Internal::RsaKeyShape => "an RSA key is not two-prime with CRT values",
            Internal::EcKeyGeneration => "EC key generation drew no valid scalar",
            Internal::EcOperation => "the crypto backend failed an EC operation on checked inputs",
            Internal::KemOperation => "the crypto backend failed an ML-KEM operation on a stored key",
            Internal::CipherOutputLength => "a cipher produced more than its stated length",
            Internal::DataForLengthQuery => "an operation produced data for a length query",
            Internal::OutputBeyondBuffer => "an operation reports output beyond the caller's buffer",
            Internal::RecordFieldTooLong => "a wrap record field is too long for its header",
            Internal::BareRootMac => "the bare root key does not MAC rows",
            Internal::MasterWithoutVersion => "a master key object without its version",
            Internal::IvCounterRange => "the IV counter limit is beyond the store's range",
            Internal::DerivedLength => "a derived value has the wrong length",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ArgumentsBad(why) => write!(f, "bad arguments: {why}"),
            Error::Config(why) => write!(f, "configuration: {why}"),
            Error::Store(why) => write!(f, "store: {why}"),
            Error::Root(why) => write!(f, "root of trust: {why}"),
            Error::MasterKey(why) => write!(f, "master key: {why}"),
            Error::Kit(why) => write!(f, "recovery kit refused: {why}"),
            Error::KeyBlocked(why) => write!(f, "blocked by an audit alert: {why}"),
            Error::Locked(why) => write!(f, "master keys locked until a quorum unlocks them: {why}"),
            Error::QuorumRequired(why) => write!(f, "needs a quorum of custodians: {why}"),
            Error::QuorumFailed(why) => write!(f, "the quorum failed: {why}"),
            Error::LegalHold(why) => write!(f, "under a legal hold: {why}"),
            Error::NotifyFailed(why) => write!(f, "the required notification failed: {why}"),
            Error::RootTokenNotPresent(label) => {
                write!(f, "root of trust: no token labelled {label:?} in the underlying module")
            }
            Error::Integrity(what) => write!(f, "integrity check failed: {what}"),
            Error::CheckpointsFailing(n) => {
                write!(f, "audit checkpoints failed {n} times in a row; key management is refused until one succeeds")
            }
            Error::AuditBatchUnwritten(why) => {
                write!(f, "held audit entries could not be written ({why}); audited calls fail until they are")
            }
            Error::Internal(why) => write!(f, "internal error: {why}"),
            Error::AttributeTypeInvalid(t)
            | Error::AttributeValueInvalid(t)
            | Error::AttributeReadOnly(t)
            | Error::AttributeSensitive(t)
            | Error::TemplateIncomplete(t)
            | Error::TemplateInconsistent(t) => {
                write!(f, "{self:?} ({})", crate::names::attr_name(*t))
            }
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    /// The faults an operator can act on are named with their likely cause, so the log
    /// line says what to fix (README, "Faults"); every one stays a store error.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let cause = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                "locked by another process past the busy timeout (store_busy_timeout_ms)"
            }
            Some(ErrorCode::ReadOnly) => "the store file or its directory is read-only",
            Some(ErrorCode::SystemIoFailure) => "a read or write of the store file failed (read-only or failing disk?)",
            Some(ErrorCode::DiskFull) => "the disk holding the store is full",
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                "the store file is corrupt: restore it from a backup (PRAGMA integrity_check names the damage)"
            }
            _ => return Error::Store(e.to_string()),
        };
        Error::Store(format!("{e}: {cause}"))
    }
}

impl From<postgres::Error> for Error {
    /// A server that went away or does not answer in time is named as such, so the log
    /// line says what to fix; every one stays a store error (`CKR_DEVICE_ERROR`), and the
    /// transaction it interrupted wrote nothing.
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let cause = if e.is_closed() || io {
            "the connection to the PostgreSQL server broke (restart or failover?); the next call reconnects"
        } else {
            match e.code() {
                Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => {
                    "waited past store_busy_timeout_ms for another host's write"
                }
                Some(c) if *c == SqlState::QUERY_CANCELED => "the server answered slower than the statement timeout",
                Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
                    "the PostgreSQL server is shutting down or starting up"
                }
                Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => "the server is a read-only standby",
                _ => return Error::Store(format!("postgresql: {}", server_words(&e))),
            }
        };
        log::error!("store: postgresql: {e}: {cause}");
        Error::Store(format!("postgresql: {e}: {cause}"))
    }
}

/// The client's error with the server's own words when the server refused the
/// statement: the client's text alone is `db error`, which names no cause (a trigger's
/// exception, a constraint, a permission).
fn server_words(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {} {}: {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_code(code: std::ffi::c_int) -> String {
        Error::from(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)).to_string()
    }

    #[test]
    fn store_faults_name_their_cause() {
        assert!(from_code(rusqlite::ffi::SQLITE_BUSY).ends_with("busy timeout (store_busy_timeout_ms)"));
        assert!(from_code(rusqlite::ffi::SQLITE_READONLY).contains("read-only"));
        assert!(from_code(rusqlite::ffi::SQLITE_IOERR_WRITE).contains("write of the store file failed"));
        assert!(from_code(rusqlite::ffi::SQLITE_FULL).contains("disk holding the store is full"));
        assert!(from_code(rusqlite::ffi::SQLITE_CORRUPT).contains("store file is corrupt"));
        // Anything else keeps SQLite's own words.
        let plain = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT), None);
        assert_eq!(from_code(rusqlite::ffi::SQLITE_CONSTRAINT), format!("store: {plain}"));
    }
}
