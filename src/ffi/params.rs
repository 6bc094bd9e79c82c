//! `CK_MECHANISM` in, typed [`Mechanism`] out: the only place mechanism parameters are
//! read from caller memory. A parameter of the wrong size or shape is
//! `CKR_MECHANISM_PARAM_INVALID`; an unknown mechanism `CKR_MECHANISM_INVALID`.

use std::mem::size_of;

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::ffi::args::bytes;
use crate::mechanism::{aes_kw, EcdhParams, GcmParams, Mechanism};

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
    let params = GcmParams { iv: iv.to_vec(), aad: aad.to_vec(), tag_len };
    crate::mechanism::aes_gcm::check_params(&params)?;
    Ok(params)
}

/// # Safety
/// As for [`gcm`], for `CK_ECDH1_DERIVE_PARAMS`.
unsafe fn ecdh(m: &CK_MECHANISM) -> Result<EcdhParams> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_ECDH1_DERIVE_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    // SAFETY: the parameter's buffers have the stated lengths (caller's contract).
    let (shared, public) =
        unsafe { (bytes(p.pSharedData, p.ulSharedDataLen)?, bytes(p.pPublicData, p.ulPublicDataLen)?) };
    if public.is_empty() {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(EcdhParams { kdf: p.kdf, shared_data: shared.to_vec(), public_data: public.to_vec() })
}

/// Decodes the caller's mechanism.
///
/// # Safety
/// `ptr` is NULL or points to a `CK_MECHANISM` whose parameter (and the buffers it
/// points to) are readable for their stated lengths.
pub unsafe fn mechanism(ptr: *const CK_MECHANISM) -> Result<Mechanism> {
    // SAFETY: NULL or a valid CK_MECHANISM (caller's contract).
    let m = unsafe { ptr.as_ref() }.ok_or(Error::ArgumentsBad("NULL mechanism"))?;
    let raw_param = || {
        // SAFETY: the parameter is readable for its stated length (caller's contract).
        unsafe { bytes(m.pParameter.cast::<CK_BYTE>(), m.ulParameterLen) }
    };
    Ok(match m.mechanism {
        CKM_AES_KEY_GEN => Mechanism::AesKeyGen,
        CKM_GENERIC_SECRET_KEY_GEN => Mechanism::GenericSecretKeyGen,
        // SAFETY: forwarded from this function's contract.
        CKM_AES_GCM => Mechanism::AesGcm(unsafe { gcm(m) }?),
        CKM_AES_KEY_WRAP => {
            aes_kw::check_iv(raw_param()?, false)?;
            Mechanism::AesKeyWrap
        }
        CKM_AES_KEY_WRAP_KWP => {
            aes_kw::check_iv(raw_param()?, true)?;
            Mechanism::AesKeyWrapPad
        }
        CKM_SHA256 => Mechanism::Sha256,
        CKM_SHA256_HMAC => Mechanism::Sha256Hmac,
        CKM_EC_KEY_PAIR_GEN => Mechanism::EcKeyPairGen,
        CKM_ECDSA => Mechanism::Ecdsa,
        CKM_ECDSA_SHA256 => Mechanism::EcdsaSha256,
        // SAFETY: forwarded from this function's contract.
        CKM_ECDH1_DERIVE => Mechanism::Ecdh1Derive(unsafe { ecdh(m) }?),
        CKM_ML_KEM_KEY_PAIR_GEN => Mechanism::MlKemKeyPairGen,
        CKM_ML_KEM => Mechanism::MlKem,
        _ => return Err(Error::MechanismInvalid),
    })
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
