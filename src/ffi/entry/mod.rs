//! The exported `C_*` functions, one file per chapter of the spec's function list.

pub mod digest;
pub mod encrypt;
pub mod general;
pub mod kem;
pub mod keymgmt;
pub mod message;
pub mod object;
pub mod random;
pub mod session;
mod shims;
pub mod sign;
pub mod slot_token;
pub mod unsupported;

pub use digest::*;
pub use encrypt::*;
pub use general::*;
pub use kem::*;
pub use keymgmt::*;
pub use message::*;
pub use object::*;
pub use random::*;
pub use session::*;
pub use sign::*;
pub use slot_token::*;
pub use unsupported::*;
