//! Randomness: every random byte the module uses comes from the OS CSPRNG.

use crate::error::{Error, Result};

/// Fills `buf` from the OS CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::General(format!("OS random source failed: {e}")))
}
