//! The key-encryption key (KEK): a random AES-256 key per workspace that seals every
//! master key version (inside the root's own sealing), and the check value that proves a
//! KEK rebuilt from shares right before any use.
//!
//! A master key row's sealed value is `root(wmk-context, kek-seal(wmk-context, wmk))`.
//! Rows from before the KEK are `root(wmk-context, wmk)`: their inner value is the bare
//! 32-byte key, which a KEK-sealed value (32 + [`sealed::OVERHEAD`] bytes) never is; the
//! first login re-seals them (`hierarchy::Hierarchy::ensure_kek`).

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::mechanism::primitives;
use crate::store::sealed::{self, SealingKey};

/// A plaintext KEK; zeroized when the last reference drops.
pub type Kek = Arc<SealingKey>;

/// Length of a master key, and of a KEK.
pub const KEY_LEN: usize = 32;

const CHECK_LABEL: &[u8] = b"CollabVault KEK check value v1";

/// A fresh random KEK.
pub fn generate() -> Result<Kek> {
    let mut key = SealingKey::default();
    primitives::fill_random(key.as_mut())?;
    Ok(Arc::new(key))
}

/// The KEK as a key from recombined bytes (length already checked by the caller).
pub fn from_bytes(bytes: &[u8]) -> Result<Kek> {
    let raw: [u8; KEY_LEN] =
        bytes.try_into().map_err(|_| Error::QuorumFailed("the rebuilt KEK has the wrong length"))?;
    Ok(Arc::new(Zeroizing::new(raw)))
}

/// The context a KEK is sealed under by the root (no quorum) or by the HSM (a grant).
pub fn context(workspace: &str, generation: u32) -> Vec<u8> {
    format!("kek:{workspace}:g{generation}").into_bytes()
}

/// The check value of `kek`: HMAC-SHA256 under the KEK itself of a fixed label, the
/// workspace and the generation. It reveals nothing about the key, and a KEK rebuilt
/// from a forged or foreign share does not reproduce it.
pub fn check_value(kek: &SealingKey, workspace: &str, generation: u32) -> Result<Vec<u8>> {
    let gen = generation.to_be_bytes();
    Ok(primitives::hmac_sha256(kek.as_ref(), &[CHECK_LABEL, workspace.as_bytes(), b":", &gen])?.to_vec())
}

/// Whether `kek` is the KEK whose check value is `check`.
pub fn verify(kek: &SealingKey, workspace: &str, generation: u32, check: &[u8]) -> Result<bool> {
    Ok(sealed::mac_eq(&check_value(kek, workspace, generation)?, check))
}

/// Seals master key bytes under the KEK, bound to the master key's context.
pub fn seal_master(kek: &SealingKey, context: &[u8], master: &[u8]) -> Result<Vec<u8>> {
    sealed::seal(kek, context, master)
}

/// Whether a root-opened inner value is a bare master key (a row from before the KEK).
pub fn is_bare(inner: &[u8]) -> bool {
    inner.len() == KEY_LEN
}

/// Opens a master key sealed by [`seal_master`].
pub fn open_master(kek: &SealingKey, context: &[u8], inner: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    sealed::open(kek, context, inner)
        .map_err(|_| Error::Integrity("a master key does not open under the workspace KEK"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_value_binds_key_workspace_and_generation() {
        let kek = generate().unwrap();
        let check = check_value(&kek, "eng", 1).unwrap();
        assert!(verify(&kek, "eng", 1, &check).unwrap());
        assert!(!verify(&kek, "eng", 2, &check).unwrap());
        assert!(!verify(&kek, "legal", 1, &check).unwrap());
        assert!(!verify(&generate().unwrap(), "eng", 1, &check).unwrap());
    }

    #[test]
    fn a_sealed_master_is_never_mistaken_for_a_bare_one() {
        let kek = generate().unwrap();
        let inner = seal_master(&kek, b"wmk:eng:v1", &[7; KEY_LEN]).unwrap();
        assert!(!is_bare(&inner));
        assert_eq!(open_master(&kek, b"wmk:eng:v1", &inner).unwrap().as_slice(), [7; KEY_LEN]);
        assert!(open_master(&kek, b"wmk:eng:v2", &inner).is_err());
    }
}
