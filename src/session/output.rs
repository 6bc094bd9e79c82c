//! What an output-producing call hands back to the C ABI, and the length-query rule
//! (spec §5.2) every such call follows: a query (no buffer) or a short buffer answers the
//! size and leaves the operation as it was.

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// What an output-producing call hands back to the C ABI.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller asked for the length only (or its buffer was absent).
    Length(usize),
    /// The output; zeroized on drop because it may be plaintext.
    Data(Zeroizing<Vec<u8>>),
    /// This many bytes were written straight into the caller's buffer.
    Written(usize),
}

/// Checks a caller's capacity against `needed`: `Some(answer)` when the call stops here.
pub(super) fn sized(needed: usize, capacity: Option<usize>) -> Option<Result<Output>> {
    match capacity {
        None => Some(Ok(Output::Length(needed))),
        Some(c) if c < needed => Some(Err(Error::BufferTooSmall(needed))),
        Some(_) => None,
    }
}
