//! The exported `C_*` functions, one file per chapter of the spec's function list.

pub mod general;
pub mod object;
pub mod random;
pub mod session;
pub mod slot_token;
pub mod unsupported;

pub use general::*;
pub use object::*;
pub use random::*;
pub use session::*;
pub use slot_token::*;
pub use unsupported::*;
