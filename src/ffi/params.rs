//! `CK_MECHANISM` in, typed [`Mechanism`] out: the only place mechanism parameters are
//! read from caller memory. A parameter of the wrong size or shape is
//! `CKR_MECHANISM_PARAM_INVALID`; an unknown mechanism `CKR_MECHANISM_INVALID`.

use std::mem::size_of;

use cryptoki_sys::*;

use crate::error::{Error, Result};
use crate::ffi::args::bytes;
use crate::mechanism::{aes_kw, rsa_sign, CtrParams, EcdhParams, GcmParams, HashAlg, Mechanism, OaepParams, PssParams};
use crate::vendor;

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

// Issue 5 (mechanism breadth): AES-CTR, MAC lengths, RSA-PSS/OAEP and EdDSA parameters.

/// # Safety
/// As for [`gcm`]: `m.pParameter` readable for `m.ulParameterLen` bytes.
unsafe fn mac_len(m: &CK_MECHANISM) -> Result<usize> {
    // SAFETY: forwarded from this function's contract.
    let len = unsafe { param_as::<CK_ULONG>(m) }.ok_or(Error::MechanismParamInvalid)?;
    usize::try_from(len).map_err(|_| Error::MechanismParamInvalid)
}

/// # Safety
/// As for [`gcm`].
unsafe fn iv16(m: &CK_MECHANISM) -> Result<[u8; 16]> {
    // SAFETY: forwarded from this function's contract.
    let raw = unsafe { bytes(m.pParameter.cast::<CK_BYTE>(), m.ulParameterLen) }?;
    raw.try_into().map_err(|_| Error::MechanismParamInvalid)
}

/// # Safety
/// As for [`gcm`].
unsafe fn ctr(m: &CK_MECHANISM) -> Result<CtrParams> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_AES_CTR_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    let counter_bits = u32::try_from(p.ulCounterBits).map_err(|_| Error::MechanismParamInvalid)?;
    let params = CtrParams { counter_bits, block: p.cb };
    crate::mechanism::aes_ctr::check_params(&params)?;
    Ok(params)
}

/// The hash of RSA parameters: `hashAlg` known and MGF1 over the same hash.
fn rsa_hash(hash_alg: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE) -> Result<HashAlg> {
    let hash = HashAlg::from_digest_mech(hash_alg).ok_or(Error::MechanismParamInvalid)?;
    if mgf != hash.mgf1() {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(hash)
}

/// # Safety
/// As for [`gcm`]. `fixed`: the hash a `CKM_SHA*_RSA_PKCS_PSS` mechanism implies.
unsafe fn pss(m: &CK_MECHANISM, fixed: Option<HashAlg>) -> Result<PssParams> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_RSA_PKCS_PSS_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    let hash = rsa_hash(p.hashAlg, p.mgf)?;
    if fixed.is_some_and(|f| f != hash) {
        return Err(Error::MechanismParamInvalid);
    }
    let salt_len = usize::try_from(p.sLen).map_err(|_| Error::MechanismParamInvalid)?;
    Ok(PssParams { hash, salt_len })
}

/// # Safety
/// As for [`gcm`], including the label buffer.
unsafe fn oaep(m: &CK_MECHANISM) -> Result<OaepParams> {
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_RSA_PKCS_OAEP_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    let hash = rsa_hash(p.hashAlg, p.mgf)?;
    // SAFETY: the label buffer has its stated length (caller's contract).
    let label = unsafe { bytes(p.pSourceData.cast::<CK_BYTE>(), p.ulSourceDataLen) }?;
    // Some clients send source 0 when there is no label.
    if p.source != CKZ_DATA_SPECIFIED && !(p.source == 0 && label.is_empty()) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(OaepParams { hash, label: label.to_vec() })
}

/// # Safety
/// As for [`gcm`]. Pure Ed25519 only: no parameter, or `CK_EDDSA_PARAMS` without
/// prehash and context (Ed25519ph/ctx are not implemented).
unsafe fn eddsa(m: &CK_MECHANISM) -> Result<Mechanism> {
    if m.pParameter.is_null() && m.ulParameterLen == 0 {
        return Ok(Mechanism::Eddsa);
    }
    // SAFETY: forwarded from this function's contract.
    let p = unsafe { param_as::<CK_EDDSA_PARAMS>(m) }.ok_or(Error::MechanismParamInvalid)?;
    if p.phFlag != CK_FALSE || p.ulContextDataLen != 0 {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Mechanism::Eddsa)
}

/// Issue 5's mechanisms, or `None` for any other type.
///
/// # Safety
/// As for [`mechanism`].
unsafe fn breadth(m: &CK_MECHANISM) -> Result<Option<Mechanism>> {
    use crate::mechanism::{aes_cmac, hash, hmac};
    let ty = m.mechanism;
    let signing = [HashAlg::Sha224, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];
    Ok(Some(match ty {
        CKM_AES_ECB => Mechanism::AesEcb,
        // SAFETY: forwarded from this function's contract.
        CKM_AES_CBC => Mechanism::AesCbc(unsafe { iv16(m) }?),
        // SAFETY: forwarded from this function's contract.
        CKM_AES_CBC_PAD => Mechanism::AesCbcPad(unsafe { iv16(m) }?),
        // SAFETY: forwarded from this function's contract.
        CKM_AES_CTR => Mechanism::AesCtr(unsafe { ctr(m) }?),
        CKM_AES_CMAC => Mechanism::AesCmac(None),
        // SAFETY: forwarded from this function's contract.
        CKM_AES_CMAC_GENERAL => Mechanism::AesCmac(Some(aes_cmac::check_mac_len(unsafe { mac_len(m) }?)?)),
        CKM_ECDSA_SHA224 => Mechanism::EcdsaHash(HashAlg::Sha224),
        CKM_ECDSA_SHA384 => Mechanism::EcdsaHash(HashAlg::Sha384),
        CKM_ECDSA_SHA512 => Mechanism::EcdsaHash(HashAlg::Sha512),
        CKM_EC_EDWARDS_KEY_PAIR_GEN => Mechanism::EdwardsKeyPairGen,
        // SAFETY: forwarded from this function's contract.
        CKM_EDDSA => unsafe { eddsa(m) }?,
        CKM_RSA_PKCS_KEY_PAIR_GEN => Mechanism::RsaKeyPairGen,
        CKM_RSA_PKCS => Mechanism::RsaPkcs,
        // SAFETY: forwarded from this function's contract.
        CKM_RSA_PKCS_PSS => Mechanism::RsaPss { prehashed: true, params: unsafe { pss(m, None) }? },
        // SAFETY: forwarded from this function's contract.
        CKM_RSA_PKCS_OAEP => Mechanism::RsaOaep(unsafe { oaep(m) }?),
        _ if signing.iter().any(|h| rsa_sign::pkcs_mech(*h) == ty) => {
            let h = signing.iter().copied().find(|h| rsa_sign::pkcs_mech(*h) == ty);
            Mechanism::RsaPkcsHash(h.ok_or(Error::MechanismInvalid)?)
        }
        _ if signing.iter().any(|h| rsa_sign::pss_mech(*h) == ty) => {
            let h = signing.iter().copied().find(|h| rsa_sign::pss_mech(*h) == ty);
            // SAFETY: forwarded from this function's contract.
            let params = unsafe { pss(m, h) }?;
            Mechanism::RsaPss { prehashed: false, params }
        }
        _ => {
            if let Some(h) = HashAlg::from_digest_mech(ty) {
                Mechanism::Digest(h)
            } else if let Some((hash, general)) = hmac::from_mech(ty) {
                let mac_len = if general {
                    // SAFETY: forwarded from this function's contract.
                    let len = unsafe { mac_len(m) }?;
                    Some(hmac::check_mac_len(hash, len)?)
                } else {
                    None
                };
                Mechanism::Hmac { hash, mac_len }
            } else if let Some(h) = hash::ALL.iter().find(|h| h.key_derivation_mech() == ty) {
                Mechanism::HashKeyDerivation(*h)
            } else {
                return Ok(None);
            }
        }
    }))
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
        vendor::CKM_CV_WRAP_RECORD => Mechanism::CvWrapRecord,
        vendor::CKM_CV_REWRAP_RECORD => Mechanism::CvRewrapRecord(raw_param()?.to_vec()),
        vendor::CKM_CV_ROTATE_MASTER => Mechanism::CvRotateMaster,
        vendor::CKM_CV_REWRAP_STORED => Mechanism::CvRewrapStored,
        // Issue 5 (mechanism breadth).
        // SAFETY: forwarded from this function's contract.
        _ => unsafe { breadth(m) }?.ok_or(Error::MechanismInvalid)?,
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
