//! Randomness: every random byte the module uses comes from the OS CSPRNG.

use crate::error::Result;

/// Fills `buf` from the OS CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    crate::mechanism::primitives::fill_random(buf)
}
