//! Object management (PKCS#11 3.2 §5.7).

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::ffi::args::{out, template};
use crate::ffi::guard_session;
use crate::object::template::is_attribute_array;
use crate::object::Template;
use crate::session::objects::{self, Answer};
use crate::session::Ctx;

/// `C_CreateObject` (§5.7.1).
///
/// # Safety
/// `attrs` points to `count` attributes; `object` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    session: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_CreateObject", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, object) = unsafe { (super::new_object_template(ctx, attrs, count)?, out(object)?) };
        *object = objects::create(ctx, &t)?;
        Ok(())
    })
}

/// `C_CopyObject` (§5.7.2).
///
/// # Safety
/// `attrs` points to `count` attributes; `new_object` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    new_object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_CopyObject", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (t, new_object) = unsafe { (super::new_object_template(ctx, attrs, count)?, out(new_object)?) };
        *new_object = objects::copy(ctx, object, &t)?;
        Ok(())
    })
}

/// `C_DestroyObject` (§5.7.3).
#[no_mangle]
pub extern "C" fn C_DestroyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
    guard_session("C_DestroyObject", session, |ctx| objects::destroy(ctx, object))
}

/// `C_GetObjectSize` (§5.7.4).
///
/// # Safety
/// `size` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    guard_session("C_GetObjectSize", session, |ctx| {
        // SAFETY: the caller passes NULL or a writable CK_ULONG.
        let size = unsafe { out(size) }?;
        *size = objects::size(ctx, object)? as CK_ULONG;
        Ok(())
    })
}

/// Copies `value` into a caller attribute under the length-query rule; the error it
/// contributes, if any.
fn value_into(slot: &mut CK_ATTRIBUTE, value: &[u8]) -> Option<Error> {
    if slot.pValue.is_null() {
        slot.ulValueLen = value.len() as CK_ULONG;
        return None;
    }
    if slot.ulValueLen < value.len() as CK_ULONG {
        slot.ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return Some(Error::BufferTooSmall(value.len()));
    }
    // SAFETY: pValue is non-NULL with room for ulValueLen >= value.len() bytes (the
    // caller's contract for C_GetAttributeValue).
    unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), slot.pValue.cast::<u8>(), value.len()) };
    slot.ulValueLen = value.len() as CK_ULONG;
    None
}

/// Hands back a nested template: the outer length counts `CK_ATTRIBUTE`s; with a
/// buffer, each inner attribute is filled under the same length-query rule (§5.7.5).
fn nested_into(slot: &mut CK_ATTRIBUTE, stored: &[u8]) -> Option<Error> {
    let nested = match Template::decode_nested(slot.type_, stored) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let size = (nested.0.len() * std::mem::size_of::<CK_ATTRIBUTE>()) as CK_ULONG;
    if slot.pValue.is_null() {
        slot.ulValueLen = size;
        return None;
    }
    if slot.ulValueLen < size {
        slot.ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return Some(Error::BufferTooSmall(nested.0.len()));
    }
    // SAFETY: pValue has room for ulValueLen >= size bytes, i.e. nested.0.len()
    // CK_ATTRIBUTEs (the caller's contract).
    let inner = unsafe { std::slice::from_raw_parts_mut(slot.pValue.cast::<CK_ATTRIBUTE>(), nested.0.len()) };
    let mut first = None;
    for (dst, a) in inner.iter_mut().zip(&nested.0) {
        dst.type_ = a.ty;
        first = first.or(value_into(dst, &a.value));
    }
    slot.ulValueLen = size;
    first
}

/// Fills one caller attribute from its answer; the error it contributes, if any.
fn answer_into(slot: &mut CK_ATTRIBUTE, answer: Answer) -> Option<Error> {
    let (len, err) = match answer {
        Answer::Value(v) if is_attribute_array(slot.type_) => return nested_into(slot, &v),
        Answer::Value(v) => return value_into(slot, &v),
        Answer::Invalid => (CK_UNAVAILABLE_INFORMATION, Some(Error::AttributeTypeInvalid(slot.type_))),
        Answer::Sensitive => (CK_UNAVAILABLE_INFORMATION, Some(Error::AttributeSensitive(slot.type_))),
    };
    slot.ulValueLen = len;
    err
}

/// `C_GetAttributeValue` (§5.7.5): every attribute is answered; the return code reports
/// the first one that could not be (sensitive, invalid, or a short buffer).
///
/// # Safety
/// `attrs` points to `count` writable attributes whose non-NULL `pValue`s have room for
/// `ulValueLen` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard_session("C_GetAttributeValue", session, |ctx| {
        use crate::ffi::args::{disjoint, items_mut, region};
        // SAFETY: the caller promises `count` writable attributes.
        let slots = unsafe { items_mut(attrs, count) }?;
        // Values are written through pValue while the template is borrowed: no value
        // buffer may overlap another or the template itself (checked before any write).
        let mut regions = Vec::new();
        regions.try_reserve_exact(slots.len() + 1).map_err(|_| Error::HostMemory)?;
        regions.push(region(attrs.cast_const(), slots.len()));
        regions.extend(slots.iter().map(|a| (a.pValue as usize, usize::try_from(a.ulValueLen).unwrap_or(usize::MAX))));
        disjoint(&regions)?;
        let types: Vec<CK_ATTRIBUTE_TYPE> = slots.iter().map(|a| a.type_).collect();
        let wanted: Vec<bool> = slots.iter().map(|a| !a.pValue.is_null()).collect();
        let answers = objects::get_attributes(ctx, object, &types, &wanted)?;
        let mut first: Option<Error> = None;
        for (slot, answer) in slots.iter_mut().zip(answers) {
            let err = answer_into(slot, answer);
            first = first.or(err);
        }
        first.map_or(Ok(()), Err)
    })
}

/// `C_SetAttributeValue` (§5.7.6).
///
/// # Safety
/// `attrs` points to `count` attributes.
#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard_session("C_SetAttributeValue", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let t = unsafe { template(attrs, count) }?;
        objects::set_attributes(ctx, object, &t)
    })
}

/// `C_FindObjectsInit` (§5.7.7).
///
/// # Safety
/// `attrs` points to `count` attributes (NULL with 0 finds everything visible).
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard_session("C_FindObjectsInit", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let t = unsafe { template(attrs, count) }?;
        objects::find_init(ctx, &t)
    })
}

fn find_next(ctx: &Ctx, found: &mut [CK_OBJECT_HANDLE]) -> Result<usize> {
    let handles = objects::find_next(ctx, found.len())?;
    found[..handles.len()].copy_from_slice(&handles);
    Ok(handles.len())
}

/// `C_FindObjects` (§5.7.8).
///
/// # Safety
/// `found` has room for `max` handles; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    found: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard_session("C_FindObjects", session, |ctx| {
        use crate::ffi::args::{disjoint, items_mut, region};
        let room = usize::try_from(max).unwrap_or(usize::MAX);
        disjoint(&[region(found.cast_const(), room), region(count.cast_const(), 1)])?;
        // SAFETY: the caller passes NULL or a writable CK_ULONG, outside `found` (checked).
        let count = unsafe { out(count) }?;
        // SAFETY: room for `max` handles (caller's contract).
        let found = unsafe { items_mut(found, max) }?;
        *count = find_next(ctx, found)? as CK_ULONG;
        Ok(())
    })
}

/// `C_FindObjectsFinal` (§5.7.9).
#[no_mangle]
pub extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_FindObjectsFinal", session, objects::find_final)
}
