//! `CK_MECHANISM` in, typed [`Mechanism`] out: the only place mechanism parameters are
//! read from caller memory. A parameter of the wrong size or shape is
//! `CKR_MECHANISM_PARAM_INVALID`; an unknown mechanism `CKR_MECHANISM_INVALID`.

use std::mem::size_of;

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::ffi::args::{bytes, items};
use crate::mechanism::kbkdf::{CounterFormat, DataParam, DkmFormat, MAX_KEYS};
use crate::mechanism::registry::{self, Param, ParamShape};
use crate::mechanism::{CtrParams, EcdhParams, GcmParams, Mechanism};

/// `CK_GCM_PARAMS` as some clients still send it: the 2.40 header's layout without
/// `ulIvBits`. Told apart from the current layout by `ulParameterLen`.
#[repr(C)]
#[derive(Clone, Copy)]
struct GcmParamsV240 {
    p_iv: *mut CK_BYTE,
    ul_iv_len: CK_ULONG,
    p_aad: *mut CK_BYTE,
    ul_aad_len: CK_ULONG,
    ul_tag_bits: CK_ULONG,
}

/// Reads the parameter as a `T` if its length is exactly `T`'s size.
///
/// # Safety
/// `m.pParameter` must point to `m.ulParameterLen` readable bytes.
unsafe fn param_as<T: Copy>(m: &CK_MECHANISM) -> Option<T> {
    if m.pParameter.is_null() || m.ulParameterLen != size_of::<T>() as CK_ULONG {
        return None;
    }
    // SAFETY: non-NULL with exactly size_of::<T>() readable bytes (caller's contract);
    // read_unaligned because callers need not align mechanism parameters.
    Some(unsafe { std::ptr::read_unaligned(m.pParameter.cast::<T>()) })
}

/// # Safety
/// `m.pParameter` must point to `m.ulParameterLen` readable bytes, and the pointers
/// inside a GCM parameter to their stated lengths.
unsafe fn gcm(m: &CK_MECHANISM) -> Result<GcmParams> {
    // SAFETY: forwarded from this function's contract.
    let (iv, aad, tag_bits) = if let Some(p) = unsafe { param_as::<CK_GCM_PARAMS>(m) } {
        // SAFETY: as above, for the buffers the parameter points to.
        unsafe { (bytes(p.pIv, p.ulIvLen)?, bytes(p.pAAD, p.ulAADLen)?, p.ulTagBits) }
    } else if let Some(p) = unsafe { param_as::<GcmParamsV240>(m) } {
        // SAFETY: as above.
        unsafe { (bytes(p.p_iv, p.ul_iv_len)?, bytes(p.p_aad, p.ul_aad_len)?, p.ul_tag_bits) }
    } else {
        return Err(Error::MechanismParamInvalid);
    };
    if tag_bits % 8 != 0 {
        return Err(Error::MechanismParamInvalid);
    }
    let tag_len = usize::try_from(tag_bits / 8).map_err(|_| Error::MechanismParamInvalid)?;
    Ok(GcmParams { iv: iv.to_vec(), aad: aad.to_vec(), tag_len })
}

/// # Safety
/// As for [`gcm`], for `CK_ECDH1_DERIVE_PARAMS`.
unsafe fn ecdh(m: &CK_MECHANISM) -> Result<EcdhParams> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_ECDH1_DERIVE_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the parameter's buffers have the stated lengths (caller's contract).
    let (shared, public) =
        unsafe { (bytes(p.pSharedData, p.ulSharedDataLen)?, bytes(p.pPublicData, p.ulPublicDataLen)?) };
    Ok(EcdhParams { kdf: p.kdf, shared_data: shared.to_vec(), public_data: public.to_vec() })
}

/// # Safety
/// As for [`gcm`]: `m.pParameter` readable for `m.ulParameterLen` bytes.
unsafe fn mac_len(m: &CK_MECHANISM) -> Result<usize> {
    // SAFETY: forwarded from this function's contract.
    let len = unsafe { param_as::<CK_ULONG>(m) }.ok_or(Error::MechanismParamInvalid)?;
    usize::try_from(len).map_err(|_| Error::MechanismParamInvalid)
}

/// # Safety
/// As for [`gcm`].
unsafe fn ctr(m: &CK_MECHANISM) -> Result<CtrParams> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_AES_CTR_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    let counter_bits = u32::try_from(p.ulCounterBits).map_err(|_| Error::MechanismParamInvalid)?;
    Ok(CtrParams { counter_bits, block: p.cb })
}

/// # Safety
/// As for [`gcm`].
unsafe fn pss(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_RSA_PKCS_PSS_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    let salt_len = usize::try_from(p.sLen).map_err(|_| Error::MechanismParamInvalid)?;
    Ok(Param::Pss { hash: p.hashAlg, mgf: p.mgf, salt_len })
}

/// # Safety
/// As for [`gcm`], including the label buffer.
unsafe fn oaep(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_RSA_PKCS_OAEP_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the label buffer has its stated length (caller's contract).
    let label = unsafe { bytes(p.pSourceData.cast::<CK_BYTE>(), p.ulSourceDataLen) }?;
    // Some clients send source 0 when there is no label.
    if p.source != CKZ_DATA_SPECIFIED && !(p.source == 0 && label.is_empty()) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Param::Oaep { hash: p.hashAlg, mgf: p.mgf, label: label.to_vec() })
}

/// # Safety
/// As for [`gcm`]: no parameter, or `CK_EDDSA_PARAMS`.
unsafe fn eddsa(m: &CK_MECHANISM) -> Result<Param> {
    if m.pParameter.is_null() && m.ulParameterLen == 0 {
        return Ok(Param::None);
    }
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_EDDSA_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the context buffer has its stated length (caller's contract); NULL with a
    // length is the parameter's fault.
    let context = unsafe { bytes(p.pContextData, p.ulContextDataLen) }.map_err(|_| Error::MechanismParamInvalid)?;
    Ok(Param::Eddsa { prehash: p.phFlag != CK_FALSE, context: context.to_vec() })
}

/// # Safety
/// As for [`gcm`]: `CK_KEY_DERIVATION_STRING_DATA` and the bytes it points to.
unsafe fn string_data(m: &CK_MECHANISM) -> Result<Vec<u8>> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_KEY_DERIVATION_STRING_DATA>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the data buffer has its stated length (caller's contract); a NULL one with a
    // length is the parameter's fault, not the call's.
    let data = unsafe { bytes(p.pData, p.ulLen) }.map_err(|_| Error::MechanismParamInvalid)?;
    Ok(data.to_vec())
}

/// # Safety
/// As for [`gcm`]: `CK_AES_CBC_ENCRYPT_DATA_PARAMS` and its data.
unsafe fn aes_cbc_data(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the data buffer has its stated length (caller's contract).
    let data = unsafe { bytes(p.pData, p.length) }.map_err(|_| Error::MechanismParamInvalid)?;
    Ok(Param::AesCbcData { iv: p.iv, data: data.to_vec() })
}

/// # Safety
/// As for [`gcm`]: `CK_HKDF_PARAMS`, its salt and info buffers.
unsafe fn hkdf(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_HKDF_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the salt and info buffers have their stated lengths (caller's contract).
    let (salt, info) = unsafe { (bytes(p.pSalt, p.ulSaltLen), bytes(p.pInfo, p.ulInfoLen)) };
    let (salt, info) =
        (salt.map_err(|_| Error::MechanismParamInvalid)?, info.map_err(|_| Error::MechanismParamInvalid)?);
    Ok(Param::Hkdf {
        extract: p.bExtract != CK_FALSE,
        expand: p.bExpand != CK_FALSE,
        prf: p.prfHashMechanism,
        salt_type: p.ulSaltType,
        salt: salt.to_vec(),
        salt_key: p.hSaltKey,
        info: info.to_vec(),
    })
}

/// # Safety
/// As for [`gcm`]: no parameter, or `CK_SIGN_ADDITIONAL_CONTEXT`.
unsafe fn sign_context(m: &CK_MECHANISM) -> Result<Param> {
    if m.pParameter.is_null() && m.ulParameterLen == 0 {
        return Ok(Param::None);
    }
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_SIGN_ADDITIONAL_CONTEXT>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the context buffer has its stated length (caller's contract).
    let context = unsafe { bytes(p.pContext, p.ulContextLen) }?.to_vec();
    Ok(Param::SignContext { hedge: p.hedgeVariant, context, hash: None })
}

/// # Safety
/// As for [`gcm`]: a `CK_HASH_SIGN_ADDITIONAL_CONTEXT`.
unsafe fn hash_sign_context(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the context buffer has its stated length (caller's contract).
    let context = unsafe { bytes(p.pContext, p.ulContextLen) }?.to_vec();
    Ok(Param::SignContext { hedge: p.hedgeVariant, context, hash: Some(p.hash) })
}

/// Most `CK_PRF_DATA_PARAM`s one KBKDF parameter may carry: a bound on what a caller's
/// count can make the token read and allocate.
const MAX_PRF_DATA: usize = 64;

/// Reads a `CK_PRF_DATA_PARAM`'s value as a `T`, which must be exactly its length.
///
/// # Safety
/// `d.pValue` is NULL or readable for `d.ulValueLen` bytes.
unsafe fn prf_value<T: Copy>(d: &CK_PRF_DATA_PARAM) -> Result<T> {
    if d.pValue.is_null() || d.ulValueLen != size_of::<T>() as CK_ULONG {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL with exactly size_of::<T>() readable bytes (caller's contract);
    // unaligned, as callers need not align it.
    Ok(unsafe { std::ptr::read_unaligned(d.pValue.cast::<T>()) })
}

/// # Safety
/// `d.pValue` is NULL or readable for `d.ulValueLen` bytes.
unsafe fn prf_data_param(d: &CK_PRF_DATA_PARAM) -> Result<DataParam> {
    let counter =
        |f: CK_SP800_108_COUNTER_FORMAT| CounterFormat { little_endian: f.bLittleEndian, width_bits: f.ulWidthInBits };
    Ok(match d.type_ {
        // Outside counter mode the iteration variable is the chaining value: no value.
        CK_SP800_108_ITERATION_VARIABLE if d.pValue.is_null() && d.ulValueLen == 0 => DataParam::Iteration(None),
        // SAFETY: forwarded from this function's contract.
        CK_SP800_108_ITERATION_VARIABLE => DataParam::Iteration(Some(counter(unsafe { prf_value(d) }?))),
        // SAFETY: forwarded from this function's contract.
        CK_SP800_108_COUNTER => DataParam::Counter(counter(unsafe { prf_value(d) }?)),
        CK_SP800_108_DKM_LENGTH => {
            // SAFETY: forwarded from this function's contract.
            let f: CK_SP800_108_DKM_LENGTH_FORMAT = unsafe { prf_value(d) }?;
            DataParam::DkmLength(DkmFormat {
                method: f.dkmLengthMethod,
                little_endian: f.bLittleEndian,
                width_bits: f.ulWidthInBits,
            })
        }
        CK_SP800_108_BYTE_ARRAY => {
            // SAFETY: forwarded from this function's contract.
            let b = unsafe { bytes(d.pValue.cast::<CK_BYTE>(), d.ulValueLen) };
            DataParam::Bytes(b.map_err(|_| Error::MechanismParamInvalid)?.to_vec())
        }
        // CK_SP800_108_KEY_HANDLE (3.1) and unknown types.
        _ => return Err(Error::MechanismParamInvalid),
    })
}

/// The fields both KBKDF layouts share, read: `prfType`, the data parameters and the
/// number of additional keys (whose array must be there exactly when it is not empty).
///
/// # Safety
/// `data` points to `n` readable `CK_PRF_DATA_PARAM`s whose values are readable for their
/// stated lengths; a NULL `keys` or any other is not read.
unsafe fn kbkdf_common(
    prf: CK_MECHANISM_TYPE,
    data: *const CK_PRF_DATA_PARAM,
    n: CK_ULONG,
    keys: *const CK_DERIVED_KEY,
    key_count: CK_ULONG,
    iv: Option<Vec<u8>>,
) -> Result<Param> {
    if n == 0 || n > MAX_PRF_DATA as CK_ULONG || (key_count == 0) != keys.is_null() {
        return Err(Error::MechanismParamInvalid);
    }
    let additional_keys = usize::try_from(key_count).map_err(|_| Error::MechanismParamInvalid)?;
    if additional_keys >= MAX_KEYS {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: forwarded from this function's contract.
    let params = unsafe { items(data, n) }.map_err(|_| Error::MechanismParamInvalid)?;
    // SAFETY: as above, for each parameter's value.
    let data = params.iter().map(|d| unsafe { prf_data_param(d) }).collect::<Result<Vec<_>>>()?;
    Ok(Param::Kbkdf { prf, data, iv, additional_keys })
}

/// # Safety
/// As for [`gcm`]: `CK_SP800_108_KDF_PARAMS` and the data parameters it points to.
unsafe fn kbkdf(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_SP800_108_KDF_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: as above, for the buffers the parameter points to.
    unsafe {
        kbkdf_common(
            p.prfType,
            p.pDataParams,
            p.ulNumberOfDataParams,
            p.pAdditionalDerivedKeys,
            p.ulAdditionalDerivedKeys,
            None,
        )
    }
}

/// # Safety
/// As for [`gcm`]: `CK_SP800_108_FEEDBACK_KDF_PARAMS`, its IV and data parameters.
unsafe fn kbkdf_feedback(m: &CK_MECHANISM) -> Result<Param> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_SP800_108_FEEDBACK_KDF_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the IV has its stated length (caller's contract).
    let iv = unsafe { bytes(p.pIV, p.ulIVLen) }.map_err(|_| Error::MechanismParamInvalid)?.to_vec();
    // SAFETY: as above, for the data parameters.
    unsafe {
        kbkdf_common(
            p.prfType,
            p.pDataParams,
            p.ulNumberOfDataParams,
            p.pAdditionalDerivedKeys,
            p.ulAdditionalDerivedKeys,
            Some(iv),
        )
    }
}

/// The additional keys an SP 800-108 mechanism's parameter asks for (`CK_DERIVED_KEY`s:
/// template and where to write the handle), empty for every other mechanism. Each
/// handle pointer must be there (`CKR_MECHANISM_PARAM_INVALID` if not); the templates
/// are read by the caller of this function.
///
/// # Safety
/// As for [`mechanism`], which has already accepted `ptr`.
pub unsafe fn additional_keys(ptr: *const CK_MECHANISM) -> Result<Vec<CK_DERIVED_KEY>> {
    // SAFETY: NULL or a valid CK_MECHANISM (caller's contract).
    let m = unsafe { ptr.as_ref() }.ok_or(Error::ArgumentsBad("NULL mechanism"))?;
    let (keys, n) = match registry::row(m.mechanism)?.param {
        // SAFETY: forwarded from this function's contract.
        ParamShape::Kbkdf => unsafe { param_as::<CK_SP800_108_KDF_PARAMS>(m) }
            .map(|p| (p.pAdditionalDerivedKeys, p.ulAdditionalDerivedKeys)),
        // SAFETY: forwarded from this function's contract.
        ParamShape::KbkdfFeedback => unsafe { param_as::<CK_SP800_108_FEEDBACK_KDF_PARAMS>(m) }
            .map(|p| (p.pAdditionalDerivedKeys, p.ulAdditionalDerivedKeys)),
        _ => return Ok(Vec::new()),
    }
    .ok_or(Error::MechanismParamInvalid)?;
    if usize::try_from(n).map_or(true, |n| n >= MAX_KEYS) {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: the array holds `n` entries (caller's contract; its size was bounded above).
    let keys = unsafe { items(keys.cast_const(), n) }.map_err(|_| Error::MechanismParamInvalid)?;
    if keys.iter().any(|k| k.phKey.is_null() || (k.ulAttributeCount == 0) != k.pTemplate.is_null()) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(keys.to_vec())
}

/// Reads the parameter in the layout `shape` names.
///
/// # Safety
/// As for [`mechanism`].
unsafe fn decode(m: &CK_MECHANISM, shape: ParamShape) -> Result<Param> {
    let raw = || {
        // SAFETY: the parameter is readable for its stated length (caller's contract).
        unsafe { bytes(m.pParameter.cast::<CK_BYTE>(), m.ulParameterLen) }
    };
    Ok(match shape {
        ParamShape::None => Param::None,
        ParamShape::Bytes => Param::Bytes(raw()?.to_vec()),
        // SAFETY: forwarded from this function's contract.
        ParamShape::Gcm => Param::Gcm(unsafe { gcm(m) }?),
        // SAFETY: forwarded from this function's contract.
        ParamShape::Ecdh => Param::Ecdh(unsafe { ecdh(m) }?),
        ParamShape::Iv16 => Param::Iv16(raw()?.try_into().map_err(|_| Error::MechanismParamInvalid)?),
        // SAFETY: forwarded from this function's contract.
        ParamShape::Ctr => Param::Ctr(unsafe { ctr(m) }?),
        // SAFETY: forwarded from this function's contract.
        ParamShape::MacLen => Param::MacLen(unsafe { mac_len(m) }?),
        // SAFETY: forwarded from this function's contract.
        ParamShape::Pss => unsafe { pss(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::Oaep => unsafe { oaep(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::Eddsa => unsafe { eddsa(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::StringData => Param::Bytes(unsafe { string_data(m) }?),
        // SAFETY: forwarded from this function's contract.
        ParamShape::Ulong => Param::Ulong(unsafe { param_as::<CK_ULONG>(m) }.ok_or(Error::MechanismParamInvalid)?),
        // SAFETY: forwarded from this function's contract.
        ParamShape::AesCbcData => unsafe { aes_cbc_data(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::Hkdf => unsafe { hkdf(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::SignContext => unsafe { sign_context(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::HashSignContext => unsafe { hash_sign_context(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::Kbkdf => unsafe { kbkdf(m) }?,
        // SAFETY: forwarded from this function's contract.
        ParamShape::KbkdfFeedback => unsafe { kbkdf_feedback(m) }?,
    })
}

/// Decodes the caller's mechanism: its registry row says how to read the parameter and
/// builds the typed mechanism from it.
///
/// # Safety
/// `ptr` is NULL or points to a `CK_MECHANISM` whose parameter (and the buffers it
/// points to) are readable for their stated lengths.
pub unsafe fn mechanism(ptr: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: NULL or a valid CK_MECHANISM (caller's contract).
    let m = unsafe { ptr.as_ref() }.ok_or(Error::ArgumentsBad("NULL mechanism"))?;
    let row = registry::row(m.mechanism)?;
    // SAFETY: forwarded from this function's contract.
    let param = unsafe { decode(m, row.param) }?;
    (row.build)(m.mechanism, param)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mech(ty: CK_MECHANISM_TYPE, param: *mut std::ffi::c_void, len: usize) -> CK_MECHANISM {
        CK_MECHANISM { mechanism: ty, pParameter: param, ulParameterLen: len as CK_ULONG }
    }

    #[test]
    fn both_gcm_parameter_layouts_decode() {
        let mut iv = [7u8; 12];
        let mut aad = *b"aad";
        let mut p = CK_GCM_PARAMS {
            pIv: iv.as_mut_ptr(),
            ulIvLen: 12,
            ulIvBits: 96,
            pAAD: aad.as_mut_ptr(),
            ulAADLen: 3,
            ulTagBits: 128,
        };
        let m = mech(CKM_AES_GCM, std::ptr::from_mut(&mut p).cast(), size_of::<CK_GCM_PARAMS>());
        let want = Mechanism::AesGcm(GcmParams { iv: iv.to_vec(), aad: aad.to_vec(), tag_len: 16 });
        // SAFETY: `m` points at live locals of the stated sizes.
        assert_eq!(unsafe { mechanism(&m) }, Ok(want.clone()));
        let mut old = GcmParamsV240 {
            p_iv: iv.as_mut_ptr(),
            ul_iv_len: 12,
            p_aad: aad.as_mut_ptr(),
            ul_aad_len: 3,
            ul_tag_bits: 128,
        };
        let m = mech(CKM_AES_GCM, std::ptr::from_mut(&mut old).cast(), size_of::<GcmParamsV240>());
        // SAFETY: as above.
        assert_eq!(unsafe { mechanism(&m) }, Ok(want));
    }

    #[test]
    fn derivation_parameters_that_are_null_short_or_point_nowhere_are_param_invalid() {
        let mut junk = [0u8; 3];
        for ty in [
            CKM_CONCATENATE_BASE_AND_DATA,
            CKM_XOR_BASE_AND_DATA,
            CKM_CONCATENATE_BASE_AND_KEY,
            CKM_EXTRACT_KEY_FROM_KEY,
            CKM_AES_ECB_ENCRYPT_DATA,
            CKM_AES_CBC_ENCRYPT_DATA,
            CKM_HKDF_DERIVE,
        ] {
            let m = mech(ty, std::ptr::null_mut(), 0);
            // SAFETY: NULL parameter with length 0.
            assert_eq!(unsafe { mechanism(&m) }, Err(Error::MechanismParamInvalid), "{ty:#x}: NULL");
            let m = mech(ty, junk.as_mut_ptr().cast(), 3);
            // SAFETY: `junk` is 3 readable bytes.
            assert_eq!(unsafe { mechanism(&m) }, Err(Error::MechanismParamInvalid), "{ty:#x}: 3 bytes");
        }
        // A string-data parameter whose pointer is NULL but whose length is not.
        let mut p = CK_KEY_DERIVATION_STRING_DATA { pData: std::ptr::null_mut(), ulLen: 8 };
        let m = mech(
            CKM_CONCATENATE_BASE_AND_DATA,
            std::ptr::from_mut(&mut p).cast(),
            size_of::<CK_KEY_DERIVATION_STRING_DATA>(),
        );
        // SAFETY: `p` is live; its NULL data pointer is refused before any read.
        assert_eq!(unsafe { mechanism(&m) }, Err(Error::MechanismParamInvalid));
        let mut data = *b"0123456789abcdef";
        let mut p = CK_KEY_DERIVATION_STRING_DATA { pData: data.as_mut_ptr(), ulLen: 16 };
        let m = mech(
            CKM_AES_ECB_ENCRYPT_DATA,
            std::ptr::from_mut(&mut p).cast(),
            size_of::<CK_KEY_DERIVATION_STRING_DATA>(),
        );
        // SAFETY: `p` and `data` are live locals of the stated sizes.
        assert_eq!(unsafe { mechanism(&m) }, Ok(Mechanism::AesEcbEncryptData(data.to_vec())));
        let mut h: CK_ULONG = 7;
        let m = mech(CKM_CONCATENATE_BASE_AND_KEY, std::ptr::from_mut(&mut h).cast(), size_of::<CK_ULONG>());
        // SAFETY: as above.
        assert_eq!(unsafe { mechanism(&m) }, Ok(Mechanism::ConcatBaseAndKey(7)));
    }

    #[test]
    fn malformed_parameters_are_param_invalid() {
        let mut junk = [0u8; 7];
        let m = mech(CKM_AES_GCM, junk.as_mut_ptr().cast(), 7);
        // SAFETY: `junk` is 7 readable bytes.
        assert_eq!(unsafe { mechanism(&m) }, Err(Error::MechanismParamInvalid));
        let m = mech(CKM_AES_GCM, std::ptr::null_mut(), 0);
        // SAFETY: NULL parameter with length 0.
        assert_eq!(unsafe { mechanism(&m) }, Err(Error::MechanismParamInvalid));
        let m = mech(0x7fff_0000, std::ptr::null_mut(), 0);
        // SAFETY: as above.
        assert_eq!(unsafe { mechanism(&m) }, Err(Error::MechanismInvalid));
        // SAFETY: NULL is refused before any read.
        assert!(matches!(unsafe { mechanism(std::ptr::null()) }, Err(Error::ArgumentsBad(_))));
    }
}
