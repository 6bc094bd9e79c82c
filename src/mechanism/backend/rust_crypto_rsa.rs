//! RSA on the rustcrypto backend: no engine of its own. The RustCrypto path in
//! `rsa.rs`, `rsa_sign.rs` and `rsa_enc.rs` serves every RSA call in this build (the
//! default build uses it too, for the shapes aws-lc-rs lacks), so the backend's RSA key
//! types here are uninhabited: [`RsaPrivateKey::new`] and friends answer `None`, which
//! the family files read as "take the RustCrypto path", and no method can ever run.

use zeroize::Zeroizing;

use super::Sha;
use crate::error::Result;

/// An RSA key's components, big-endian (the same shape as the aws-lc backend's).
pub struct RsaComponents<'a> {
    /// Modulus.
    pub n: &'a [u8],
    /// Public exponent.
    pub e: &'a [u8],
    /// Private exponent.
    pub d: &'a [u8],
    /// First prime.
    pub p: &'a [u8],
    /// Second prime.
    pub q: &'a [u8],
    /// d mod (p-1).
    pub dp: &'a [u8],
    /// d mod (q-1).
    pub dq: &'a [u8],
    /// q^-1 mod p.
    pub qinv: &'a [u8],
}

/// A fresh key's components (never made in this build: [`rsa_generate`] answers `None`).
pub struct RsaGenerated {
    /// n, e, d, p, q, dp, dq, qinv in that order.
    pub parts: [Zeroizing<Vec<u8>>; 8],
}

/// No backend RSA private key in this build.
pub enum RsaPrivateKey {}

impl RsaPrivateKey {
    /// Always `None`: the RustCrypto path holds the key.
    pub fn new(_: &RsaComponents<'_>) -> Option<RsaPrivateKey> {
        None
    }

    /// Unreachable (no value exists).
    pub fn size(&self) -> usize {
        match *self {}
    }

    /// No scheme is served here.
    pub fn signs(_: Sha, _: Option<usize>) -> bool {
        false
    }

    /// Unreachable (no value exists).
    pub fn sign(&self, _: Sha, _: Option<usize>, _: &[u8]) -> Result<Vec<u8>> {
        match *self {}
    }

    /// Unreachable (no value exists).
    pub fn decrypt_pkcs1(&self, _: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match *self {}
    }

    /// No OAEP hash is served here.
    pub fn oaep_serves(_: Sha) -> bool {
        false
    }

    /// Unreachable (no value exists).
    pub fn decrypt_oaep(&self, _: Sha, _: &[u8], _: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match *self {}
    }
}

/// No backend RSA public key in this build.
pub enum RsaPublicKey {}

impl RsaPublicKey {
    /// Always `None`: the RustCrypto path holds the key.
    pub fn new(_: &[u8], _: &[u8]) -> Option<RsaPublicKey> {
        None
    }

    /// Unreachable (no value exists).
    pub fn size(&self) -> usize {
        match *self {}
    }

    /// Unreachable (no value exists).
    pub fn verify(&self, _: Sha, _: Option<usize>, _: &[u8], _: &[u8]) -> Result<()> {
        match *self {}
    }

    /// Unreachable (no value exists).
    pub fn encrypt_pkcs1(&self, _: &[u8]) -> Result<Vec<u8>> {
        match *self {}
    }

    /// Unreachable (no value exists).
    pub fn encrypt_oaep(&self, _: Sha, _: &[u8], _: &[u8]) -> Result<Vec<u8>> {
        match *self {}
    }
}

/// Always `None`: the RustCrypto path generates keys in this build.
pub fn rsa_generate(_: usize, _: &[u8]) -> Option<Result<RsaGenerated>> {
    None
}
