//! Key encapsulation (PKCS#11 3.2 §5.18.8, §5.18.9), new in the 3.2 function list.

use cryptoki_sys::*;

use crate::ffi::args::{bytes, capacity, disjoint, emit, out, region};
use crate::ffi::{guard_session, params};
use crate::session::kem;

/// `C_EncapsulateKey`: the ciphertext under the length-query protocol, and a new secret
/// key object holding the shared secret (made only when the ciphertext is delivered).
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `attrs` points to `count` attributes;
/// `ciphertext_len` is valid for reads and writes; a non-NULL `ciphertext` has room for
/// `*ciphertext_len` bytes; `key` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_EncapsulateKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public_key: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: *mut CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_EncapsulateKey", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let t = super::new_object_template(ctx, attrs, count)?;
            let m = params::mechanism(mechanism)?;
            let cap = capacity(ciphertext, ciphertext_len)?;
            disjoint(&[
                region(ciphertext.cast_const(), cap.unwrap_or(0)),
                region(ciphertext_len.cast_const(), 1),
                region(key.cast_const(), 1),
            ])?;
            let key = out(key)?;
            let result = kem::encapsulate(ctx, &m, public_key, t, cap);
            let (output, new_key) = match result {
                Ok((output, new_key)) => (Ok(output), new_key),
                Err(e) => (Err(e), None),
            };
            emit(ciphertext, ciphertext_len, output)?;
            if let Some(h) = new_key {
                *key = h;
            }
            Ok(())
        }
    })
}

/// `C_DecapsulateKey`: a new secret key object from a ciphertext.
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `attrs` points to `count` attributes;
/// `ciphertext` to `ciphertext_len` bytes; `key` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_DecapsulateKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    private_key: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_DecapsulateKey", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, m, ct, key) = unsafe {
            let t = super::new_object_template(ctx, attrs, count)?;
            (t, params::mechanism(mechanism)?, bytes(ciphertext, ciphertext_len)?, out(key)?)
        };
        *key = kem::decapsulate(ctx, &m, private_key, t, ct)?;
        Ok(())
    })
}
