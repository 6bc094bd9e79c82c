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

/// The template of an object the call creates, decoded, with the session-state and login
/// checks it decides made at once: before the mechanism is decoded (the order in
/// `doc/check-order.md`).
///
/// # Safety
/// As for [`crate::ffi::args::template`].
unsafe fn new_object_template(
    ctx: &crate::session::Ctx,
    attrs: *const cryptoki_sys::CK_ATTRIBUTE,
    count: cryptoki_sys::CK_ULONG,
) -> crate::error::Result<crate::object::Template> {
    // SAFETY: forwarded from this function's contract.
    let template = unsafe { crate::ffi::args::template(attrs, count) }?;
    ctx.check_may_create(&template)?;
    Ok(template)
}
