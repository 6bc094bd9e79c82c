//! `root/`: the root of trust, which seals what must never be stored in the clear (the
//! token's storage key, every workspace master key version).
//!
//! Two roots implement [`Sealer`]: the delegated slot (`slot.rs`), whose AES-256 root key
//! lives in an underlying PKCS#11 token and never leaves it (or, split m-of-n over several
//! tokens, `split.rs`, is recombined in memory from shares each token seals under its own
//! key, and dealt again over a replacement token by `reshare.rs`); and the software root, which
//! seals under the token's storage key (itself sealed under the PINs) when no underlying
//! slot is configured. Everything sealed is bound to a context string naming what it is,
//! so a blob moved to another purpose or workspace does not open.

pub mod reshare;
pub mod slot;
pub mod split;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::sealed::{self, SealingKey};

/// Seals and unseals blobs under a root key.
pub trait Sealer: Send + Sync {
    /// What this root is, for logs and `C_GetTokenInfo`'s model field.
    fn describe(&self) -> &'static str;
    /// Seals `plaintext`, bound to `context`.
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>;
    /// Opens a blob sealed with the same context; a wrong root or a tampered blob fails.
    fn unseal(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// A MAC of `data` for `purpose` under a key only a logged-in user holds (derived
    /// from the storage key), for rows that must not be edited in the store file.
    fn mac(&self, purpose: &[u8], data: &[u8]) -> Result<[u8; 32]>;
    /// Seals master key `version` (under its own key where the root has per-version keys).
    fn seal_version(&self, _version: u32, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.seal(context, plaintext)
    }
    /// Opens master key `version`'s sealed value.
    fn unseal_version(&self, _version: u32, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.unseal(context, blob)
    }
    /// Destroys what opens master key `version` beyond the store (its per-version key in
    /// the HSM); nothing for a root without per-version keys.
    fn destroy_version(&self, _version: u32) -> Result<()> {
        Ok(())
    }
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

    fn mac(&self, purpose: &[u8], data: &[u8]) -> Result<[u8; 32]> {
        sealed::mac(&self.0, purpose, data)
    }
}

/// A delegated root bound to the token's storage key: a blob is sealed under the storage
/// key, then by the root key in the HSM, so opening it needs both the HSM and a PIN
/// (which alone opens the storage key). Someone holding the root PIN and a copy of the
/// store opens nothing with the root alone.
pub struct BoundRoot {
    /// The workspace's root key in the underlying token.
    pub root: slot::WorkspaceRoot,
    /// The workspace, which names its master key versions' keys in the root token.
    pub workspace: String,
    /// The storage key, from a verified PIN record.
    pub storage_key: SealingKey,
    /// Whether a blob sealed by the root alone (written before this binding existed) is
    /// still accepted: only during the login that upgrades a legacy token.
    pub legacy_ok: bool,
}

/// Length of what the root seals for a bound blob of `n` plaintext bytes.
const fn bound_len(n: usize) -> usize {
    n + sealed::OVERHEAD
}

impl Sealer for BoundRoot {
    fn describe(&self) -> &'static str {
        self.root.describe()
    }

    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.root.seal(context, &sealed::seal(&self.storage_key, context, plaintext)?)
    }

    fn unseal(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let inner = self.root.unseal(context, blob)?;
        match sealed::open(&self.storage_key, context, &inner) {
            Ok(plain) => Ok(plain),
            // Every bound blob is longer than the 32-byte keys a legacy blob holds.
            Err(_) if self.legacy_ok && inner.len() < bound_len(32) => {
                log::info!("accepting a root-only sealed blob once, for its upgrade");
                Ok(inner)
            }
            Err(e) => {
                log::error!("a root-sealed blob does not open under the storage key (legacy or planted?)");
                Err(e)
            }
        }
    }

    fn mac(&self, purpose: &[u8], data: &[u8]) -> Result<[u8; 32]> {
        sealed::mac(&self.storage_key, purpose, data)
    }

    /// A master key version is sealed under the storage key, then by its own key in the
    /// HSM (not the workspace root key), so destroying that key shreds the version.
    fn seal_version(&self, version: u32, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = self
            .root
            .slot()
            .version_key(&self.workspace, version, true)?
            .ok_or_else(|| Error::Root(format!("master key v{version}'s key could not be made")))?;
        key.seal(context, &sealed::seal(&self.storage_key, context, plaintext)?)
    }

    fn unseal_version(&self, version: u32, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self.root.slot().version_key(&self.workspace, version, false)? {
            Some(key) => {
                let inner = key.unseal(context, blob)?;
                sealed::open(&self.storage_key, context, &inner)
            }
            // A legacy row is sealed by the workspace root key; its upgrade moves it.
            None if self.legacy_ok => self.unseal(context, blob),
            None => {
                log::error!(
                    "{}: master key v{version}'s key is not in the root token: the version was destroyed \
                     (this row comes from an older copy of the store) or the key was deleted",
                    self.workspace
                );
                Err(Error::MasterKey(format!("master key v{version} was destroyed in the root token")))
            }
        }
    }

    fn destroy_version(&self, version: u32) -> Result<()> {
        let n = self.root.slot().destroy_version_keys(&self.workspace, Some(version))?;
        log::info!("{}: master key v{version}'s key destroyed in the root token ({n} object(s))", self.workspace);
        Ok(())
    }
}
