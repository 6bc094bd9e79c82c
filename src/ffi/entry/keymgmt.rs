//! Key management (PKCS#11 3.2 §5.14–5.18): generate, wrap, unwrap, derive.

use cryptoki_sys::*;

use crate::error::Error;
use crate::ffi::args::{bytes, capacity, emit, out};
use crate::ffi::{guard_session, params};
use crate::session::{derive, keygen, records, wrap};

/// `C_GenerateKey` (§5.14.1).
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `attrs` points to `count` attributes; `key`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_GenerateKey", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, m, key) = unsafe {
            let t = super::new_object_template(ctx, attrs, count)?;
            (t, params::mechanism(mechanism)?, out(key)?)
        };
        *key = keygen::generate_key(ctx, &m, t)?;
        Ok(())
    })
}

/// `C_GenerateKeyPair` (§5.14.2).
///
/// # Safety
/// As for `C_GenerateKey`, for both templates and both output handles.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public_attrs: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private_attrs: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_GenerateKeyPair", session, |ctx| {
        // One pointer for both handles would get the public one overwritten.
        if public_key == private_key && !public_key.is_null() {
            return Err(Error::ArgumentsBad("phPublicKey and phPrivateKey are the same pointer"));
        }
        // SAFETY: forwarded from this function's contract.
        let (public_t, private_t, m, public_key, private_key) = unsafe {
            let public_t = super::new_object_template(ctx, public_attrs, public_count)?;
            let private_t = super::new_object_template(ctx, private_attrs, private_count)?;
            (public_t, private_t, params::mechanism(mechanism)?, out(public_key)?, out(private_key)?)
        };
        (*public_key, *private_key) = keygen::generate_key_pair(ctx, &m, public_t, private_t)?;
        Ok(())
    })
}

/// `C_WrapKey` (§5.14.3).
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `wrapped_len` is valid for reads and writes; a
/// non-NULL `wrapped` has room for `*wrapped_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    guard_session("C_WrapKey", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let m = params::mechanism(mechanism)?;
            let cap = capacity(wrapped, wrapped_len)?;
            emit(wrapped, wrapped_len, wrap::wrap_key(ctx, &m, wrapping_key, key, cap))
        }
    })
}

/// `C_UnwrapKey` (§5.14.4).
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `wrapped` points to `wrapped_len` bytes;
/// `attrs` to `count` attributes; `key` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_UnwrapKey", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, m, wrapped, key) = unsafe {
            let t = super::new_object_template(ctx, attrs, count)?;
            (t, params::mechanism(mechanism)?, bytes(wrapped, wrapped_len)?, out(key)?)
        };
        *key = wrap::unwrap_key(ctx, &m, unwrapping_key, wrapped, &t)?;
        Ok(())
    })
}

/// `C_DeriveKey` (§5.14.5). An SP 800-108 mechanism's additional keys
/// (`CK_DERIVED_KEY`) get their handles written where their parameter says; when the
/// call fails, every one of those handles is set to `CK_INVALID_HANDLE` (PKCS#11 3.0
/// §2.42.7 asks that of the failing key's; none of the others was made either).
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `attrs` points to `count` attributes; `key`
/// is NULL or writable, as is each additional key's handle pointer.
#[no_mangle]
pub unsafe extern "C" fn C_DeriveKey(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    base_key: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_DeriveKey", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, m, key) = unsafe {
            let t = super::new_object_template(ctx, attrs, count)?;
            (t, params::mechanism(mechanism)?, out(key)?)
        };
        // SAFETY: the mechanism was accepted above (forwarded contract).
        let extra = unsafe { params::additional_keys(mechanism) }?;
        // SAFETY: the templates are the caller's (forwarded contract).
        let made = unsafe { derive_all(ctx, &m, base_key, &t, &extra) };
        for (i, d) in extra.iter().enumerate() {
            let handle = match &made {
                Ok(handles) => handles.get(i + 1).copied().unwrap_or(CK_INVALID_HANDLE),
                Err(_) => CK_INVALID_HANDLE,
            };
            // SAFETY: `additional_keys` refused NULL handle pointers, and the caller
            // promises each is writable; unaligned, as callers need not align it.
            unsafe { d.phKey.write_unaligned(handle) };
        }
        *key = *made?.first().ok_or(Error::MechanismParamInvalid)?;
        Ok(())
    })
}

/// The additional keys' templates read (under the same checks as the primary one), then
/// every key derived.
///
/// # Safety
/// Each of `extra`'s templates points to its stated number of attributes.
unsafe fn derive_all(
    ctx: &crate::session::Ctx,
    m: &crate::mechanism::Mechanism,
    base_key: CK_OBJECT_HANDLE,
    template: &crate::object::Template,
    extra: &[CK_DERIVED_KEY],
) -> crate::error::Result<Vec<CK_OBJECT_HANDLE>> {
    let templates = extra
        .iter()
        // SAFETY: forwarded from this function's contract.
        .map(|d| unsafe { super::new_object_template(ctx, d.pTemplate, d.ulAttributeCount) })
        .collect::<crate::error::Result<Vec<_>>>()?;
    derive::derive_keys(ctx, m, base_key, template, &templates)
}

/// `C_WrapKeyAuthenticated` (PKCS#11 3.2): a wrap that also binds associated data.
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `ad` points to `ad_len` bytes; `wrapped_len` is
/// valid for reads and writes; a non-NULL `wrapped` has room for `*wrapped_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_WrapKeyAuthenticated(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    ad: *mut CK_BYTE,
    ad_len: CK_ULONG,
    wrapped: *mut CK_BYTE,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    guard_session("C_WrapKeyAuthenticated", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let m = params::mechanism(mechanism)?;
            let ad = bytes(ad, ad_len)?;
            let cap = capacity(wrapped, wrapped_len)?;
            emit(wrapped, wrapped_len, records::wrap_authenticated(ctx, &m, wrapping_key, key, ad, cap))
        }
    })
}

/// `C_UnwrapKeyAuthenticated` (PKCS#11 3.2): unwraps only with the bound associated data.
///
/// # Safety
/// `mechanism` is a valid `CK_MECHANISM`; `wrapped`, `attrs` and `ad` point to their
/// stated lengths; `key` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKeyAuthenticated(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    ad: *mut CK_BYTE,
    ad_len: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_UnwrapKeyAuthenticated", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, m, wrapped, ad, key) = unsafe {
            let t = super::new_object_template(ctx, attrs, count)?;
            (t, params::mechanism(mechanism)?, bytes(wrapped, wrapped_len)?, bytes(ad, ad_len)?, out(key)?)
        };
        *key = records::unwrap_authenticated(ctx, &m, unwrapping_key, wrapped, &t, ad)?;
        Ok(())
    })
}
