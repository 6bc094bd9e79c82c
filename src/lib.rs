//! CollabVault PKCS#11: a PKCS#11 3.2 token with an enterprise key hierarchy behind it.
//!
//! Applications load `libcollabvault_pkcs11.so` like any token. The crate is layered, each
//! layer depending only on those below it:
//!
//! ```text
//! ffi/        the C ABI: exported C_* functions, function lists, pointer checks,
//!             panic boundary, Error -> CK_RV. The only unsafe code.
//! module      process-wide state: initialize/finalize, fork detection, slots
//! session/    sessions, login calls, object handles, and the operations, one file per
//!             kind (cipher, sign, digest, keygen, wrap, derive, kem, message)
//! token/      one workspace's token: PINs, login state, the storage key
//! object/     the attribute model and the spec's policy table
//! mechanism/  the registry (one row per mechanism: info, key needs, parameter shape,
//!             operations) and the cryptography, one file per family, over bytes
//! hierarchy/  workspace master key versions, wrap records, rotation and retirement
//! quorum/     the key-encryption key, custodians' shares, requests, approvals, unlocks
//! audit/      verification and export of the store's hash-chained audit log
//! recovery/   recovery kits (format, kit key, second factor) and drills
//! root/       the root of trust: the underlying slot's root key, or the software root
//! store/      SQLite behind a domain trait; sealing; the audit chain's row format
//! ```
//!
//! Below `ffi/` everything is safe Rust without raw pointers, testable without the C ABI.

#![deny(unsafe_code)]
// In unit tests an unwrap is the assertion; the lint guards the module's own paths.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod backup;
pub mod config;
pub mod error;
pub mod ffi;
pub mod hierarchy;
pub mod logging;
pub mod mechanism;
pub mod module;
pub mod names;
pub mod object;
pub mod quorum;
pub mod recovery;
pub mod root;
pub mod session;
pub mod store;
pub mod token;
pub mod vendor;

pub use error::{Error, Result};
