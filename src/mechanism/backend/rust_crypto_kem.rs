//! ML-KEM on the rustcrypto backend: no engine of its own; `mlkem.rs`'s `ml-kem` path
//! serves every call in this build, so these types are uninhabited and their
//! constructors answer `None` (read by `mlkem.rs` as "take the `ml-kem` path").

use zeroize::Zeroizing;

use super::super::mlkem::ParamSet;
use crate::error::Result;

/// No backend encapsulation key in this build.
pub enum MlKemPublic {}

impl MlKemPublic {
    /// Always `None`: `ml-kem` holds the key.
    pub fn new(_: ParamSet, _: &[u8]) -> Option<MlKemPublic> {
        None
    }

    /// Unreachable (no value exists).
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        match *self {}
    }
}

/// No backend decapsulation key in this build.
pub enum MlKemPrivate {}

impl MlKemPrivate {
    /// Always `None`: `ml-kem` holds the key.
    pub fn new(_: ParamSet, _: &[u8]) -> Option<MlKemPrivate> {
        None
    }

    /// Unreachable (no value exists).
    pub fn decapsulate(&self, _: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match *self {}
    }
}
