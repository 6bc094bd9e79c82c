//! The module's raw C ABI for tests that must pass what `cryptoki` will not (bad
//! pointers, lengths, parameters) or call functions it does not wrap: the 3.2 function
//! list and exact return-code assertions.

// Loading the function list is a raw C ABI call; each block below says why it is sound.
#![allow(unsafe_code)]

use std::ptr::null_mut;

use cryptoki_sys::*;

/// `ulParameterLen` of a `CK_GCM_MESSAGE_PARAMS` passed by pointer.
pub const GCM_PARAM_LEN: CK_ULONG = std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG;

/// The 3.2 function list of the module the fixture loaded.
pub struct Api {
    _lib: cryptoki_sys::Pkcs11,
    pub f: CK_FUNCTION_LIST_3_2,
}

impl Api {
    pub fn load() -> Api {
        // SAFETY: loads the module this test binary was built with; it runs no code of ours.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(super::module_path()) }.expect("load module");
        let mut iface: *mut CK_INTERFACE = null_mut();
        // SAFETY: NULL name and version ask for the default interface; `iface` is a live local.
        assert_eq!(unsafe { lib.C_GetInterface(null_mut(), null_mut(), &mut iface, 0) }, CKR_OK);
        // SAFETY: on CKR_OK `iface` points to the module's static interface, whose default
        // is the 3.2 function list; the list is copied out while `lib` keeps it loaded.
        let f = unsafe { *(*iface).pFunctionList.cast::<CK_FUNCTION_LIST_3_2>() };
        Api { _lib: lib, f }
    }
}

/// Asserts an exact return code, naming both codes on failure.
#[track_caller]
pub fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert_eq!(
        got,
        want,
        "{what}: got {} ({got:#x}), want {} ({want:#x})",
        collabvault_pkcs11::names::rv_name(got),
        collabvault_pkcs11::names::rv_name(want),
    );
}

/// `C_MessageEncryptInit` (or `C_MessageDecryptInit`) with `CKM_AES_GCM` and no parameter.
pub fn message_init(api: &Api, s: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE, encrypt: bool) -> CK_RV {
    let mut m = CK_MECHANISM { mechanism: CKM_AES_GCM, pParameter: null_mut(), ulParameterLen: 0 };
    let f = if encrypt { api.f.C_MessageEncryptInit } else { api.f.C_MessageDecryptInit };
    // SAFETY: `m` is a live local mechanism without a parameter.
    unsafe { f.expect("slot")(s, &mut m, key) }
}

/// Per-message GCM parameters over `iv` and `tag` (the tag's length in bits).
pub fn message_params(
    iv: &mut [u8],
    fixed_bits: CK_ULONG,
    generator: CK_GENERATOR_FUNCTION,
    tag: &mut [u8],
) -> CK_GCM_MESSAGE_PARAMS {
    CK_GCM_MESSAGE_PARAMS {
        pIv: iv.as_mut_ptr(),
        ulIvLen: iv.len() as CK_ULONG,
        ulIvFixedBits: fixed_bits,
        ivGenerator: generator,
        pTag: tag.as_mut_ptr(),
        ulTagBits: (tag.len() * 8) as CK_ULONG,
    }
}

/// One-shot `C_EncryptMessage` of `pt` into a buffer of its length; the bytes written.
pub fn encrypt_message(
    api: &Api,
    s: CK_SESSION_HANDLE,
    p: &mut CK_GCM_MESSAGE_PARAMS,
    aad: &mut [u8],
    pt: &mut [u8],
) -> (CK_RV, Vec<u8>) {
    one_shot_message(api.f.C_EncryptMessage, s, p, aad, pt)
}

/// One-shot `C_DecryptMessage` of `ct` into a buffer of its length; the bytes written.
pub fn decrypt_message(
    api: &Api,
    s: CK_SESSION_HANDLE,
    p: &mut CK_GCM_MESSAGE_PARAMS,
    aad: &mut [u8],
    ct: &mut [u8],
) -> (CK_RV, Vec<u8>) {
    one_shot_message(api.f.C_DecryptMessage, s, p, aad, ct)
}

/// `C_EncryptMessage` or `C_DecryptMessage` (`f`, same signature) of `input` into a
/// buffer of its length; the bytes written.
fn one_shot_message(
    f: CK_C_EncryptMessage,
    s: CK_SESSION_HANDLE,
    p: &mut CK_GCM_MESSAGE_PARAMS,
    aad: &mut [u8],
    input: &mut [u8],
) -> (CK_RV, Vec<u8>) {
    let mut out = vec![0u8; input.len()];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: every pointer is to a live local or argument with the length given beside it.
    let rv = unsafe {
        f.expect("slot")(
            s,
            std::ptr::from_mut(p).cast(),
            GCM_PARAM_LEN,
            aad.as_mut_ptr(),
            aad.len() as CK_ULONG,
            input.as_mut_ptr(),
            input.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    out.truncate(usize::try_from(len).expect("length"));
    (rv, out)
}

/// An owned attribute template for raw calls; [`Template::raw`] points into it.
#[derive(Default, Clone)]
pub struct Template(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

impl Template {
    pub fn new() -> Template {
        Template::default()
    }

    pub fn ulong(mut self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Template {
        self.0.push((ty, v.to_ne_bytes().to_vec()));
        self
    }

    pub fn flag(mut self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> Template {
        self.0.push((ty, vec![if v { CK_TRUE } else { CK_FALSE }]));
        self
    }

    pub fn bytes(mut self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Template {
        self.0.push((ty, v.to_vec()));
        self
    }

    /// The `CK_ATTRIBUTE`s, valid while `self` is neither moved nor changed.
    pub fn raw(&mut self) -> Vec<CK_ATTRIBUTE> {
        self.0
            .iter_mut()
            .map(|(ty, v)| CK_ATTRIBUTE { type_: *ty, pValue: v.as_mut_ptr().cast(), ulValueLen: v.len() as CK_ULONG })
            .collect()
    }
}

/// `C_CreateObject` from `t`: the handle, or the code.
pub fn create(api: &Api, s: CK_SESSION_HANDLE, mut t: Template) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut raw = t.raw();
    let mut h = 0;
    // SAFETY: `raw` points into `t`, alive for the call; `h` is a live local.
    let rv =
        unsafe { api.f.C_CreateObject.expect("C_CreateObject")(s, raw.as_mut_ptr(), raw.len() as CK_ULONG, &mut h) };
    if rv == CKR_OK {
        Ok(h)
    } else {
        Err(rv)
    }
}

/// An object's `CKA_VALUE`, which must be readable.
pub fn value(api: &Api, s: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) -> Vec<u8> {
    let f = api.f.C_GetAttributeValue.expect("C_GetAttributeValue");
    let mut a = CK_ATTRIBUTE { type_: CKA_VALUE, pValue: null_mut(), ulValueLen: 0 };
    // SAFETY: `a` is a live local asking for the length only.
    assert_rv(unsafe { f(s, h, &mut a, 1) }, CKR_OK, "CKA_VALUE length");
    let mut v = vec![0u8; usize::try_from(a.ulValueLen).expect("length")];
    a.pValue = v.as_mut_ptr().cast();
    // SAFETY: `a` points at `v`, of the length the module reported.
    assert_rv(unsafe { f(s, h, &mut a, 1) }, CKR_OK, "CKA_VALUE");
    v
}
