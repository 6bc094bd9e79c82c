//! Caller memory in, caller memory out: every pointer the C ABI receives is checked and
//! copied here, once, into owned Rust values; every output goes through [`write_bytes`]
//! or [`write_list`], which implement the spec's length-query protocol (§5.2) in one place.

use cryptoki_sys::*;

use crate::error::{Error, Internal, Result};
use crate::object::template::is_attribute_array;
use crate::object::{Attr, Template};
use crate::session::output::Output;

fn len(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::ArgumentsBad("length does not fit in memory"))
}

/// `count` as a `usize` once `count` `T`s at `ptr` could be one allocation: at most
/// `isize::MAX` bytes, not wrapping the address space. `from_raw_parts` has that as a
/// precondition; a length beyond it is a caller error no buffer can satisfy, so it is
/// refused here rather than turned into undefined behaviour.
pub fn checked_count<T>(ptr: *const T, count: CK_ULONG) -> Result<usize> {
    let n = len(count)?;
    let fits = n
        .checked_mul(std::mem::size_of::<T>())
        .filter(|bytes| isize::try_from(*bytes).is_ok())
        .and_then(|bytes| (ptr as usize).checked_add(bytes));
    match fits {
        Some(_) => Ok(n),
        None => {
            log::warn!("a length of {count} elements of {} bytes is beyond any buffer", std::mem::size_of::<T>());
            Err(Error::ArgumentsBad("length beyond isize::MAX bytes"))
        }
    }
}

/// The address range `(start, len in bytes)` of `count` `T`s at `ptr`, for overlap checks.
pub fn region<T>(ptr: *const T, count: usize) -> (usize, usize) {
    (ptr as usize, count.saturating_mul(std::mem::size_of::<T>()))
}

/// Refuses output regions that overlap each other (empty ones and NULL never overlap):
/// the module would otherwise write one output through another, or hold two Rust
/// references to one byte. Checked before anything is written.
///
/// Sorted by start, each region must end before the next begins: O(n log n), since a
/// caller's template may be long.
pub fn disjoint(regions: &[(usize, usize)]) -> Result<()> {
    let mut live: Vec<_> = regions.iter().copied().filter(|(start, len)| *start != 0 && *len != 0).collect();
    live.sort_unstable();
    if live.windows(2).any(|w| w[0].0.saturating_add(w[0].1) > w[1].0) {
        return Err(Error::ArgumentsBad("output pointers overlap"));
    }
    Ok(())
}

/// Borrows `(ptr, len)` as a slice; NULL is accepted only with length 0.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that outlive the returned slice.
pub unsafe fn bytes<'a>(ptr: *const CK_BYTE, n: CK_ULONG) -> Result<&'a [u8]> {
    // SAFETY: forwarded from this function's contract.
    unsafe { items(ptr, n) }
}

/// Borrows `(ptr, count)` as a slice of `T`; NULL is accepted only with count 0.
///
/// # Safety
/// A non-NULL `ptr` must point to `count` readable, initialized `T`.
pub unsafe fn items<'a, T>(ptr: *const T, count: CK_ULONG) -> Result<&'a [T]> {
    let n = checked_count(ptr, count)?;
    if ptr.is_null() {
        return if n == 0 { Ok(&[]) } else { Err(Error::ArgumentsBad("NULL array with a non-zero count")) };
    }
    // SAFETY: non-NULL, at most isize::MAX bytes without wrapping (checked above), and
    // the caller promises `n` initialized elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Borrows `(ptr, count)` as a mutable slice of `T`; NULL is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `ptr` must point to `count` initialized `T`, valid for reads and writes
/// and aliased by nothing else for the returned lifetime.
pub unsafe fn items_mut<'a, T>(ptr: *mut T, count: CK_ULONG) -> Result<&'a mut [T]> {
    let n = checked_count(ptr.cast_const(), count)?;
    if ptr.is_null() {
        return Err(Error::ArgumentsBad("NULL array"));
    }
    // SAFETY: non-NULL, at most isize::MAX bytes without wrapping (checked above), and
    // valid for reads and writes of `n` elements (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, n) })
}

/// Copies a caller's template into an owned [`Template`].
///
/// # Safety
/// `ptr` must point to `count` `CK_ATTRIBUTE`s whose non-NULL `pValue`s point to
/// `ulValueLen` readable bytes.
pub unsafe fn template(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Template> {
    // SAFETY: forwarded from this function's contract.
    unsafe { template_at_depth(ptr, count, 0) }
}

/// # Safety
/// As for [`template`]; an attribute-array value points to `CK_ATTRIBUTE`s of its own.
unsafe fn template_at_depth(ptr: *const CK_ATTRIBUTE, count: CK_ULONG, depth: usize) -> Result<Template> {
    // SAFETY: forwarded from this function's contract.
    let attrs = unsafe { items(ptr, count) }?;
    let mut out = Vec::with_capacity(attrs.len());
    for a in attrs {
        if is_attribute_array(a.type_) {
            // SAFETY: an attribute-array value points to CK_ATTRIBUTEs (caller's contract).
            let value = unsafe { nested(a, depth) }?;
            out.push(Attr::new(a.type_, value));
            continue;
        }
        // SAFETY: forwarded from this function's contract.
        let value = unsafe { bytes(a.pValue as *const CK_BYTE, a.ulValueLen) }?;
        out.push(Attr::new(a.type_, value));
    }
    Ok(Template(out))
}

/// Copies a nested template (one level deep, as the spec uses them).
///
/// # Safety
/// `a.pValue` points to `a.ulValueLen` bytes of `CK_ATTRIBUTE`s.
unsafe fn nested(a: &CK_ATTRIBUTE, depth: usize) -> Result<Vec<u8>> {
    let size = std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG;
    if depth > 0 || a.ulValueLen % size != 0 {
        return Err(Error::AttributeValueInvalid(a.type_));
    }
    // SAFETY: forwarded from this function's contract.
    let inner = unsafe { template_at_depth(a.pValue.cast::<CK_ATTRIBUTE>(), a.ulValueLen / size, depth + 1) }?;
    inner.encode_nested()
}

/// A mutable reference to an output parameter; NULL is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of a `T` for the returned lifetime.
pub unsafe fn out<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller promises a non-NULL `ptr` is valid for writes.
    unsafe { ptr.as_mut() }.ok_or(Error::ArgumentsBad("NULL output pointer"))
}

/// Writes `data` under the length-query protocol: a NULL `buf` reports the length; a
/// short one reports it too and fails with `CKR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `len_ptr` must be valid for reads and writes; a non-NULL `buf` must be valid for
/// writes of `*len_ptr` bytes.
pub unsafe fn write_bytes(buf: *mut CK_BYTE, len_ptr: *mut CK_ULONG, data: &[u8]) -> Result<()> {
    // SAFETY: forwarded from this function's contract.
    unsafe { write_list(buf, len_ptr, data) }
}

/// [`write_bytes`] for arrays of `T` (slot ids, mechanism types, handles).
///
/// # Safety
/// `count_ptr` must be valid for reads and writes; a non-NULL `buf` must be valid for
/// writes of `*count_ptr` elements.
pub unsafe fn write_list<T: Copy>(buf: *mut T, count_ptr: *mut CK_ULONG, data: &[T]) -> Result<()> {
    if !buf.is_null() && !count_ptr.is_null() {
        // SAFETY: `count_ptr` is non-NULL and readable (this function's contract).
        let room = len(unsafe { *count_ptr })?;
        disjoint(&[region(buf.cast_const(), room), region(count_ptr.cast_const(), 1)])?;
    }
    // SAFETY: forwarded from this function's contract.
    let count = unsafe { out(count_ptr) }?;
    let room = *count;
    *count = data.len() as CK_ULONG;
    if buf.is_null() {
        return Ok(());
    }
    if room < data.len() as CK_ULONG {
        return Err(Error::BufferTooSmall(data.len()));
    }
    // SAFETY: `buf` has room for `room >= data.len()` elements (caller's contract) and
    // cannot overlap `data`, which the module owns.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    Ok(())
}

/// The caller's output capacity: `None` for a length query (NULL buffer).
///
/// # Safety
/// `len_ptr` is NULL or valid for reads.
pub unsafe fn capacity(buf: *const CK_BYTE, len_ptr: *const CK_ULONG) -> Result<Option<usize>> {
    // SAFETY: NULL or readable (caller's contract).
    let len = *unsafe { len_ptr.as_ref() }.ok_or(Error::ArgumentsBad("NULL length pointer"))?;
    if buf.is_null() {
        return Ok(None);
    }
    let room = checked_count(buf, len)?;
    // The length is written after the output: inside the buffer, one would clobber the other.
    disjoint(&[region(buf, room), region(len_ptr, 1)])?;
    Ok(Some(room))
}

/// Delivers an operation's result under the length-query protocol: a length, the data,
/// or (for a short buffer) the needed length with `CKR_BUFFER_TOO_SMALL`.
///
/// The core checks its output against the capacity it was given; this re-checks it
/// against `*len_ptr` itself before copying, so a wrong length anywhere in a mechanism
/// can never become a write past the caller's buffer.
///
/// # Safety
/// `len_ptr` is valid for reads and writes; a non-NULL `buf` has room for `*len_ptr` bytes.
pub unsafe fn emit(buf: *mut CK_BYTE, len_ptr: *mut CK_ULONG, result: Result<Output>) -> Result<()> {
    // SAFETY: forwarded from this function's contract.
    let len = unsafe { out(len_ptr) }?;
    let room = if buf.is_null() { 0 } else { usize::try_from(*len).unwrap_or(usize::MAX) };
    match result {
        Ok(Output::Length(n)) => {
            *len = n as CK_ULONG;
            Ok(())
        }
        Ok(Output::Data(data)) => {
            if data.len() > room {
                log::error!("an operation produced {} bytes for a {room}-byte buffer; refused", data.len());
                *len = data.len() as CK_ULONG;
                return Err(if buf.is_null() {
                    Error::Internal(Internal::DataForLengthQuery)
                } else {
                    Error::BufferTooSmall(data.len())
                });
            }
            if !data.is_empty() {
                // SAFETY: `buf` is non-NULL (room is 0 for NULL, and data is not empty) with
                // room for `*len_ptr >= data.len()` bytes (checked above; caller's contract).
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
            }
            *len = data.len() as CK_ULONG;
            Ok(())
        }
        Ok(Output::Written(n)) => {
            if n > room {
                log::error!("an operation reports {n} bytes written to a {room}-byte buffer");
                return Err(Error::Internal(Internal::OutputBeyondBuffer));
            }
            *len = n as CK_ULONG;
            Ok(())
        }
        Err(Error::BufferTooSmall(n)) => {
            *len = n as CK_ULONG;
            Err(Error::BufferTooSmall(n))
        }
        Err(e) => Err(e),
    }
}

/// A call's input (borrowed, or copied when it overlaps the output) and the caller's
/// output buffer, if it gave one.
pub type InAndOut<'a> = (std::borrow::Cow<'a, [u8]>, Option<&'a mut [u8]>);

/// The caller's output buffer as a slice the core writes into directly, and its input:
/// borrowed as is, or copied first when the two overlap (an in-place call), since a
/// slice may not alias a mutable one. `None` for the output: a length query.
///
/// # Safety
/// `input` points to `input_len` readable bytes; a non-NULL `output` is valid for writes
/// of `capacity` bytes; both outlive the returned slices.
pub unsafe fn in_and_out<'a>(
    input: *const CK_BYTE,
    input_len: CK_ULONG,
    output: *mut CK_BYTE,
    capacity: Option<usize>,
) -> Result<InAndOut<'a>> {
    // SAFETY: forwarded from this function's contract.
    let data = unsafe { bytes(input, input_len) }?;
    let Some(cap) = capacity.filter(|_| !output.is_null()) else {
        return Ok((std::borrow::Cow::Borrowed(data), None));
    };
    let cap = checked_count(output.cast_const(), cap as CK_ULONG)?;
    let data = apart(data, output, Some(cap));
    // SAFETY: non-NULL, writable for `cap` bytes (the caller's contract), at most
    // isize::MAX bytes (checked above), and the input no longer aliases it (copied above
    // if it did).
    let out = unsafe { std::slice::from_raw_parts_mut(output, cap) };
    Ok((data, Some(out)))
}

/// `data` as borrowed, or a copy of it when it overlaps the `capacity` bytes at `output`
/// that the core is about to write through a mutable slice (which may alias nothing).
pub fn apart<'a>(data: &'a [u8], output: *const CK_BYTE, capacity: Option<usize>) -> std::borrow::Cow<'a, [u8]> {
    let (in_start, out_start, cap) = (data.as_ptr() as usize, output as usize, capacity.unwrap_or(0));
    let overlaps = !output.is_null()
        && in_start < out_start.saturating_add(cap)
        && out_start < in_start.saturating_add(data.len());
    if overlaps {
        std::borrow::Cow::Owned(data.to_vec())
    } else {
        std::borrow::Cow::Borrowed(data)
    }
}

/// Reads a NUL-terminated string (interface names).
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string.
pub unsafe fn c_str<'a>(ptr: *const CK_UTF8CHAR) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    Some(unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }.to_bytes())
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    #[test]
    fn null_with_zero_length_is_an_empty_slice() {
        // SAFETY: NULL with length 0 is never dereferenced.
        assert_eq!(unsafe { bytes(std::ptr::null(), 0) }, Ok(&[][..]));
        // SAFETY: as above; the non-zero length must be refused before any read.
        assert!(unsafe { bytes(std::ptr::null(), 3) }.is_err());
    }

    #[test]
    fn lengths_beyond_isize_max_or_wrapping_are_refused_before_any_read() {
        let byte = 0u8;
        let beyond = isize::MAX as CK_ULONG + 1;
        // SAFETY: refused before `from_raw_parts`; nothing is read.
        assert!(unsafe { bytes(&byte, beyond) }.is_err());
        // SAFETY: as above: 2^62 u16s are 2^63 bytes.
        assert!(unsafe { items(std::ptr::from_ref(&0u16), 1 << 62) }.is_err());
        // SAFETY: as above: the range would wrap the address space.
        assert!(unsafe { bytes(usize::MAX as *const u8, 2) }.is_err());
        // SAFETY: `byte` is one readable byte.
        assert_eq!(unsafe { bytes(&byte, 1) }, Ok(&[0u8][..]));
    }

    #[test]
    fn overlapping_regions_are_refused_and_touching_ones_are_not() {
        assert!(disjoint(&[(100, 8), (104, 8)]).is_err());
        assert!(disjoint(&[(100, 8), (50, 8), (99, 2)]).is_err());
        assert_eq!(disjoint(&[(100, 8), (108, 8), (0, 8), (104, 0)]), Ok(()));
    }

    #[test]
    fn emit_never_copies_more_than_the_callers_length_says() {
        let data = Zeroizing::new(vec![7u8; 8]);
        let mut buf = [0u8; 12];
        let mut n: CK_ULONG = 4;
        // SAFETY: `buf` has room for 12 >= `n` bytes; `n` is a valid local.
        let err = unsafe { emit(buf.as_mut_ptr(), &mut n, Ok(Output::Data(data.clone()))) }.unwrap_err();
        assert_eq!((err, n, buf), (Error::BufferTooSmall(8), 8, [0; 12]), "a core bug is refused, not copied");
        n = 0;
        // SAFETY: NULL buffer: nothing may be written through it.
        let err = unsafe { emit(std::ptr::null_mut(), &mut n, Ok(Output::Data(data))) }.unwrap_err();
        assert!(matches!(err, Error::Internal(_)));
        n = 4;
        // SAFETY: as above.
        let err = unsafe { emit(buf.as_mut_ptr(), &mut n, Ok(Output::Written(5))) }.unwrap_err();
        assert!(matches!(err, Error::Internal(_)));
    }

    #[test]
    fn the_length_query_reports_the_size_and_a_short_buffer_fails() {
        let data = [1u8, 2, 3];
        let mut n: CK_ULONG = 0;
        // SAFETY: `n` is a valid local; NULL buffer asks for the length only.
        unsafe { write_bytes(std::ptr::null_mut(), &mut n, &data) }.expect("query");
        assert_eq!(n, 3);
        let mut buf = [0u8; 2];
        n = 2;
        // SAFETY: `buf` has room for `n` bytes.
        let err = unsafe { write_bytes(buf.as_mut_ptr(), &mut n, &data) }.unwrap_err();
        assert_eq!((err, n, buf), (Error::BufferTooSmall(3), 3, [0, 0]), "short buffer left unchanged");
        let mut buf = [0u8; 4];
        n = 4;
        // SAFETY: `buf` has room for `n` bytes.
        unsafe { write_bytes(buf.as_mut_ptr(), &mut n, &data) }.expect("write");
        assert_eq!((n, buf), (3, [1, 2, 3, 0]));
    }
}
