//! Random number generation (PKCS#11 3.2 §5.19).

use cryptoki_sys::*;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::ffi::args::bytes;
use crate::ffi::guard_session;
use crate::session;

/// `C_SeedRandom` (§5.19.1): the OS CSPRNG takes no seed, so `CKR_RANDOM_SEED_NOT_SUPPORTED`.
///
/// # Safety
/// `seed` points to `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_SeedRandom(handle: CK_SESSION_HANDLE, seed: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    guard_session("C_SeedRandom", handle, |ctx| {
        // SAFETY: the caller passes `len` readable bytes.
        let seed = unsafe { bytes(seed, len) }?;
        session::seed_random(ctx, seed)
    })
}

/// `C_GenerateRandom` (§5.19.2).
///
/// # Safety
/// `out` is valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(handle: CK_SESSION_HANDLE, out: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    guard_session("C_GenerateRandom", handle, |ctx| {
        if out.is_null() && len > 0 {
            return Err(Error::ArgumentsBad("NULL output buffer"));
        }
        let n = crate::ffi::args::checked_count(out, len)?;
        // The length is the caller's: reserve fallibly, so an impossible one is an error
        // and not an abort of the host on allocation failure.
        let mut buf = Zeroizing::new(Vec::new());
        buf.try_reserve_exact(n).map_err(|_| {
            log::warn!("C_GenerateRandom: {n} bytes cannot be allocated");
            Error::HostMemory
        })?;
        buf.resize(n, 0);
        session::generate_random(ctx, &mut buf)?;
        if n > 0 {
            // SAFETY: `out` is non-NULL and has room for `n` bytes (caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), out, n) };
        }
        Ok(())
    })
}
