//! Message-based encryption and decryption (PKCS#11 3.0 §5.12.2, §5.13.2) with
//! `CKM_AES_GCM` and `CK_GCM_MESSAGE_PARAMS`: the tag (and a token-generated IV) go back
//! to the caller through the parameter structure.

use std::os::raw::c_void;

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::ffi::args::{apart, bytes, capacity, disjoint, emit, in_and_out, out, region};
use crate::ffi::guard_session;
use crate::session::message::{self, IvGenerator, MessageParams};
use crate::session::output::Output;
use crate::session::OpKind;

/// A decoded `CK_GCM_MESSAGE_PARAMS` and where its IV and tag live in caller memory, with
/// the room THIS call's parameter gives them (`ulIvLen`, `ulTagBits / 8`): what is written
/// back is checked against these, never against lengths another call gave.
struct Params {
    decoded: MessageParams,
    iv: *mut CK_BYTE,
    iv_room: usize,
    tag: *mut CK_BYTE,
    tag_room: usize,
}

/// # Safety
/// `param` points to `len` readable bytes; a well-sized parameter's `pIv` points to
/// `ulIvLen` bytes and `pTag` to `ulTagBits / 8` bytes.
unsafe fn gcm_message(param: *mut c_void, len: CK_ULONG) -> Result<Params> {
    if param.is_null() || len != std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL and exactly one CK_GCM_MESSAGE_PARAMS (checked above).
    let p = unsafe { std::ptr::read_unaligned(param.cast::<CK_GCM_MESSAGE_PARAMS>()) };
    let generator = match p.ivGenerator {
        CKG_NO_GENERATE => IvGenerator::Caller,
        CKG_GENERATE_COUNTER => IvGenerator::Counter,
        CKG_GENERATE_RANDOM => IvGenerator::Random,
        CKG_GENERATE => IvGenerator::Token,
        _ => return Err(Error::MechanismParamInvalid),
    };
    if p.pIv.is_null() || p.pTag.is_null() || p.ulTagBits % 8 != 0 {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: pIv points to ulIvLen bytes (caller's contract).
    let iv = unsafe { bytes(p.pIv, p.ulIvLen) }?.to_vec();
    let as_usize = |v: CK_ULONG| usize::try_from(v).map_err(|_| Error::MechanismParamInvalid);
    let decoded =
        MessageParams { iv, iv_fixed_bits: as_usize(p.ulIvFixedBits)?, generator, tag_len: as_usize(p.ulTagBits / 8)? };
    let (iv_room, tag_room) = (decoded.iv.len(), decoded.tag_len);
    Ok(Params { decoded, iv: p.pIv, iv_room, tag: p.pTag, tag_room })
}

impl Params {
    /// Refuses an IV, tag, output buffer and output length that overlap: the module
    /// writes all four, so each must be its own memory. Checked before anything runs.
    fn check_outputs(&self, output: *const CK_BYTE, room: Option<usize>, len_ptr: *const CK_ULONG) -> Result<()> {
        disjoint(&[
            region(self.iv.cast_const(), self.iv_room),
            region(self.tag.cast_const(), self.tag_room),
            region(output, room.unwrap_or(0)),
            region(len_ptr, 1),
        ])
    }

    /// The tag the caller supplied (decryption).
    ///
    /// # Safety
    /// `self.tag` points to `tag_len` readable bytes.
    unsafe fn tag(&self) -> Result<&[u8]> {
        // SAFETY: forwarded from this function's contract.
        unsafe { bytes(self.tag, self.decoded.tag_len as CK_ULONG) }
    }

    /// Hands the tag and the IV used back through the caller's parameter, after checking
    /// both fit the room this call's parameter gives (a mismatch is refused, not written).
    ///
    /// # Safety
    /// `self.tag` has room for `self.tag_room` bytes and `self.iv` for `self.iv_room`.
    unsafe fn write_back(&self, tag: &[u8], iv: &[u8]) -> Result<()> {
        if tag.len() > self.tag_room || iv.len() > self.iv_room {
            log::warn!(
                "message encryption: a {}-byte tag and {}-byte IV do not fit the parameter's {} and {} bytes",
                tag.len(),
                iv.len(),
                self.tag_room,
                self.iv_room
            );
            return Err(Error::MechanismParamInvalid);
        }
        // SAFETY: the tag buffer holds `tag_room >= tag.len()` bytes and the IV buffer
        // `iv_room >= iv.len()` bytes (checked above; the caller's contract for this call).
        unsafe {
            std::ptr::copy_nonoverlapping(tag.as_ptr(), self.tag, tag.len());
            std::ptr::copy_nonoverlapping(iv.as_ptr(), self.iv, iv.len());
        }
        Ok(())
    }
}

/// # Safety
/// `mechanism` is NULL or a valid `CK_MECHANISM`.
unsafe fn mechanism_type(mechanism: *mut CK_MECHANISM) -> Result<CK_MECHANISM_TYPE> {
    // SAFETY: NULL or valid (caller's contract).
    Ok(unsafe { out(mechanism) }?.mechanism)
}

/// `C_MessageEncryptInit` (§5.12.2.1).
///
/// # Safety
/// `mechanism` is NULL or a valid `CK_MECHANISM`.
#[no_mangle]
pub unsafe extern "C" fn C_MessageEncryptInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_MessageEncryptInit", session, |ctx| {
        ctx.check_idle(OpKind::MessageEncrypt)?;
        // SAFETY: forwarded from this function's contract.
        message::encrypt_init(ctx, unsafe { mechanism_type(mechanism) }?, key)
    })
}

/// `C_EncryptMessage` (§5.12.2.2).
///
/// # Safety
/// `param` is a `CK_GCM_MESSAGE_PARAMS` of `param_len` bytes with writable IV and tag
/// buffers; `aad` and `plaintext` point to their lengths; `ciphertext_len` is readable and
/// writable; a non-NULL `ciphertext` has room for `*ciphertext_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptMessage(
    session: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    plaintext: *mut CK_BYTE,
    plaintext_len: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: *mut CK_ULONG,
) -> CK_RV {
    guard_session("C_EncryptMessage", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let p = gcm_message(param, param_len)?;
            let cap = capacity(ciphertext, ciphertext_len)?;
            p.check_outputs(ciphertext, cap, ciphertext_len)?;
            let aad = apart(bytes(aad, aad_len)?, ciphertext, cap);
            let (plaintext, out) = in_and_out(plaintext, plaintext_len, ciphertext, cap)?;
            let sealed = match message::encrypt(ctx, &p.decoded, &aad, &plaintext, out) {
                Ok(s) => s,
                Err(e) => return emit(ciphertext, ciphertext_len, Err(e)),
            };
            if matches!(sealed.output, Output::Written(_)) {
                p.write_back(&sealed.tag, &sealed.iv)?;
            }
            emit(ciphertext, ciphertext_len, Ok(sealed.output))
        }
    })
}

/// `C_EncryptMessageBegin` (§5.12.2.3).
///
/// # Safety
/// `param` is a `CK_GCM_MESSAGE_PARAMS` of `param_len` bytes; `aad` points to `aad_len`.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptMessageBegin(
    session: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_EncryptMessageBegin", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (p, aad) = unsafe { (gcm_message(param, param_len)?, bytes(aad, aad_len)?) };
        message::begin(ctx, true, &p.decoded, aad)
    })
}

/// `C_EncryptMessageNext` (§5.12.2.4): parts are buffered; the part flagged
/// `CKF_END_OF_MESSAGE` returns the whole ciphertext and fills the parameter's tag and IV.
///
/// # Safety
/// As for `C_EncryptMessage`, with `part` of `part_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptMessageNext(
    session: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    guard_session("C_EncryptMessageNext", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let p = gcm_message(param, param_len)?;
            let part = bytes(part, part_len)?;
            let cap = capacity(ciphertext, ciphertext_len)?;
            p.check_outputs(ciphertext, cap, ciphertext_len)?;
            let last = flags & CKF_END_OF_MESSAGE != 0;
            match message::encrypt_next(ctx, &p.decoded, part, last, cap) {
                Ok((output, finished)) => {
                    if let Some((tag, iv)) = finished {
                        p.write_back(&tag, &iv)?;
                    }
                    emit(ciphertext, ciphertext_len, Ok(output))
                }
                Err(e) => emit(ciphertext, ciphertext_len, Err(e)),
            }
        }
    })
}

/// `C_MessageEncryptFinal` (§5.12.2.5).
#[no_mangle]
pub extern "C" fn C_MessageEncryptFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_MessageEncryptFinal", session, |ctx| message::finish(ctx, true))
}

/// `C_MessageDecryptInit` (§5.13.2.1).
///
/// # Safety
/// `mechanism` is NULL or a valid `CK_MECHANISM`.
#[no_mangle]
pub unsafe extern "C" fn C_MessageDecryptInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard_session("C_MessageDecryptInit", session, |ctx| {
        ctx.check_idle(OpKind::MessageDecrypt)?;
        // SAFETY: forwarded from this function's contract.
        message::decrypt_init(ctx, unsafe { mechanism_type(mechanism) }?, key)
    })
}

/// `C_DecryptMessage` (§5.13.2.2): the tag comes from the parameter.
///
/// # Safety
/// `param` is a `CK_GCM_MESSAGE_PARAMS` of `param_len` bytes with readable IV and tag;
/// `aad` and `ciphertext` point to their lengths; `plaintext_len` is readable and
/// writable; a non-NULL `plaintext` has room for `*plaintext_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptMessage(
    session: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
    ciphertext: *mut CK_BYTE,
    ciphertext_len: CK_ULONG,
    plaintext: *mut CK_BYTE,
    plaintext_len: *mut CK_ULONG,
) -> CK_RV {
    guard_session("C_DecryptMessage", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let p = gcm_message(param, param_len)?;
            let cap = capacity(plaintext, plaintext_len)?;
            let tag = p.tag()?.to_vec();
            let aad = apart(bytes(aad, aad_len)?, plaintext, cap);
            let (ciphertext, out) = in_and_out(ciphertext, ciphertext_len, plaintext, cap)?;
            emit(plaintext, plaintext_len, message::decrypt(ctx, &p.decoded, &tag, &aad, &ciphertext, out))
        }
    })
}

/// `C_DecryptMessageBegin` (§5.13.2.3).
///
/// # Safety
/// `param` is a `CK_GCM_MESSAGE_PARAMS` of `param_len` bytes; `aad` points to `aad_len`.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptMessageBegin(
    session: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    aad: *mut CK_BYTE,
    aad_len: CK_ULONG,
) -> CK_RV {
    guard_session("C_DecryptMessageBegin", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        let (p, aad) = unsafe { (gcm_message(param, param_len)?, bytes(aad, aad_len)?) };
        message::begin(ctx, false, &p.decoded, aad)
    })
}

/// `C_DecryptMessageNext` (§5.13.2.4): parts are buffered; the last one checks the tag
/// and releases the whole plaintext.
///
/// # Safety
/// As for `C_DecryptMessage`, with `part` of `part_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptMessageNext(
    session: CK_SESSION_HANDLE,
    param: *mut c_void,
    param_len: CK_ULONG,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
    plaintext: *mut CK_BYTE,
    plaintext_len: *mut CK_ULONG,
    flags: CK_FLAGS,
) -> CK_RV {
    guard_session("C_DecryptMessageNext", session, |ctx| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            let p = gcm_message(param, param_len)?;
            let (part, tag) = (bytes(part, part_len)?, p.tag()?);
            let cap = capacity(plaintext, plaintext_len)?;
            let last = flags & CKF_END_OF_MESSAGE != 0;
            emit(plaintext, plaintext_len, message::decrypt_next(ctx, &p.decoded, tag, part, last, cap))
        }
    })
}

/// `C_MessageDecryptFinal` (§5.13.2.5).
#[no_mangle]
pub extern "C" fn C_MessageDecryptFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard_session("C_MessageDecryptFinal", session, |ctx| message::finish(ctx, false))
}
