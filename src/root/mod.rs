//! `root/`: the root of trust, which seals what must never be stored in the clear (the
//! token's storage key, every workspace master key version).
//!
//! Two roots implement [`Sealer`]: the delegated slot (`slot.rs`), whose AES-256 root key
//! lives in an underlying PKCS#11 token and never leaves it; and the software root, which
//! seals under the token's storage key (itself sealed under the PINs) when no underlying
//! slot is configured. Everything sealed is bound to a context string naming what it is,
//! so a blob moved to another purpose or workspace does not open.

pub mod slot;

use zeroize::Zeroizing;

use crate::error::Result;
use crate::store::sealed::{self, SealingKey};

/// Seals and unseals blobs under a root key.
pub trait Sealer: Send + Sync {
    /// What this root is, for logs and `C_GetTokenInfo`'s model field.
    fn describe(&self) -> &'static str;
    /// Seals `plaintext`, bound to `context`.
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>;
    /// Opens a blob sealed with the same context; a wrong root or a tampered blob fails.
    fn unseal(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

/// The software root: seals under the token's storage key. Only as strong as the PINs
/// that protect the storage key; reported as such.
pub struct SoftRoot(pub SealingKey);

impl Sealer for SoftRoot {
    fn describe(&self) -> &'static str {
        "soft root"
    }

    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        sealed::seal(&self.0, context, plaintext)
    }

    fn unseal(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        sealed::open(&self.0, context, blob)
    }
}
