//! AES key wrap with padding (RFC 5649) through the raw C ABI, the same calls for every
//! module. `cryptoki` 0.12 cannot name `CKM_AES_KEY_WRAP_KWP` (0x210B): its
//! `AesKeyWrapPad` is `CKM_AES_KEY_WRAP_PAD` (0x210A), which this module does not offer
//! and which SoftHSM2 2.6 implements as RFC 5649 under the older name. So each module
//! gets the mechanism number it offers for RFC 5649 (`_KWP` if listed, else `_PAD`), and
//! setup proves the three columns do the same thing: a known KEK wraps a known key to
//! the same bytes in every module and in the raw `aes-kw` crate.
//!
//! The calls go through the module's `C_GetFunctionList` table, as applications make
//! them: Kryoptic exports only `C_GetFunctionList` and `C_GetInterface*`, not each `C_*`.
//!
//! `unsafe` because these are `extern "C"` calls (`cryptoki_sys`) on the library the
//! `cryptoki` context already loaded and initialized (dlopen of the same path returns the
//! same instance); every pointer passed is NULL or points to a live local of the stated
//! length, as each SAFETY note says.

#![allow(unsafe_code)]

use std::path::Path;
use std::ptr;

use aes_kw::KwpAes256;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki_sys::{
    CKA_CLASS, CKA_ENCRYPT, CKA_KEY_TYPE, CKA_TOKEN, CKK_AES, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD,
    CKO_SECRET_KEY, CKR_OK, CK_ATTRIBUTE, CK_BBOOL, CK_BYTE, CK_FUNCTION_LIST, CK_MECHANISM, CK_MECHANISM_INFO,
    CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_ULONG, CK_VOID_PTR,
};

use super::{err, Res, Token};

/// One module's RFC 5649 wrap and unwrap, through its function list.
pub(super) struct Kwp {
    /// Holds the library open while `f` points into it.
    _lib: cryptoki_sys::Pkcs11,
    /// A copy of the module's `CK_FUNCTION_LIST` (plain function pointers).
    f: CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    mechanism: CK_ULONG,
    kek: CK_OBJECT_HANDLE,
    target: CK_OBJECT_HANDLE,
    wrapped: Vec<u8>,
}

fn check(rv: CK_RV, what: &str) -> Res<()> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(err(format!("{what}: CK_RV 0x{rv:08x}")))
    }
}

impl Kwp {
    /// `None` when the module offers neither RFC 5649 mechanism number. `kek` and
    /// `target` are the key values; the module's wrap must equal `expected`.
    pub(super) fn setup(
        token: &Token,
        path: &Path,
        kek: &[u8; 32],
        target: &[u8; 32],
        expected: &[u8],
    ) -> Res<Option<Kwp>> {
        // SAFETY: loads a PKCS#11 library that is already loaded in this process; its
        // initializers have run and it is initialized through the `cryptoki` context.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(path) }.map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: `list` is a live pointer the call sets to the module's static table.
        check(unsafe { lib.C_GetFunctionList(&mut list) }, "C_GetFunctionList")?;
        // SAFETY: on CKR_OK `list` points to the module's function list, which lives as
        // long as the library stays loaded (`_lib` holds it); NULL is refused by `as_ref`.
        let f = *unsafe { list.as_ref() }.ok_or_else(|| err("C_GetFunctionList gave NULL"))?;
        let get_info = f.C_GetMechanismInfo.ok_or_else(|| err("no C_GetMechanismInfo"))?;
        let offers = |m: CK_ULONG| {
            let mut info = CK_MECHANISM_INFO::default();
            // SAFETY: `info` is a live CK_MECHANISM_INFO the call fills.
            unsafe { get_info(token.slot.id(), m, &mut info) == CKR_OK }
        };
        let Some(mechanism) = [CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD].into_iter().find(|&m| offers(m)) else {
            return Ok(None);
        };
        let s = &token.session;
        let secret = |value: &[u8; 32], extra: &[Attribute]| -> Res<ObjectHandle> {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Value(value.to_vec()),
            ];
            t.extend_from_slice(extra);
            Ok(s.create_object(&t)?)
        };
        let kek = secret(kek, &[Attribute::Wrap(true), Attribute::Unwrap(true)])?.handle();
        let target = secret(target, &[Attribute::Extractable(true), Attribute::Encrypt(true)])?.handle();
        let mut kwp = Kwp { _lib: lib, f, session: s.handle(), mechanism, kek, target, wrapped: Vec::new() };
        kwp.wrapped = kwp.wrap()?;
        if kwp.wrapped != expected {
            return Err(err(format!(
                "{}: mechanism 0x{mechanism:x} does not wrap as RFC 5649 (the raw aes-kw crate) does",
                token.name
            )));
        }
        Ok(Some(kwp))
    }

    fn mech(&self) -> CK_MECHANISM {
        CK_MECHANISM { mechanism: self.mechanism, pParameter: ptr::null_mut(), ulParameterLen: 0 }
    }

    /// `C_WrapKey` as `cryptoki` calls it: a length query, then the call.
    pub(super) fn wrap(&self) -> Res<Vec<u8>> {
        let mut m = self.mech();
        let mut len: CK_ULONG = 0;
        let wrap_key = self.f.C_WrapKey.ok_or_else(|| err("no C_WrapKey"))?;
        // SAFETY: `m` is a live mechanism without parameter; a NULL output asks the length into `len`.
        let rv = unsafe { wrap_key(self.session, &mut m, self.kek, self.target, ptr::null_mut(), &mut len) };
        check(rv, "C_WrapKey (length)")?;
        let mut out = vec![0u8; usize::try_from(len)?];
        // SAFETY: `out` has room for `len` bytes, the length the module just gave.
        let rv = unsafe { wrap_key(self.session, &mut m, self.kek, self.target, out.as_mut_ptr(), &mut len) };
        check(rv, "C_WrapKey")?;
        out.truncate(usize::try_from(len)?);
        Ok(out)
    }

    /// `C_UnwrapKey` of the wrapped key as an AES session key; returns its handle.
    pub(super) fn unwrap(&self) -> Res<CK_OBJECT_HANDLE> {
        let mut m = self.mech();
        let (mut class, mut key_type): (CK_ULONG, CK_ULONG) = (CKO_SECRET_KEY, CKK_AES);
        let (mut no, mut yes): (CK_BBOOL, CK_BBOOL) = (0, 1);
        let attr =
            |ty, value: CK_VOID_PTR, len: usize| CK_ATTRIBUTE { type_: ty, pValue: value, ulValueLen: len as CK_ULONG };
        let ulong = std::mem::size_of::<CK_ULONG>();
        let mut template = [
            attr(CKA_CLASS, ptr::from_mut(&mut class).cast(), ulong),
            attr(CKA_KEY_TYPE, ptr::from_mut(&mut key_type).cast(), ulong),
            attr(CKA_TOKEN, ptr::from_mut(&mut no).cast(), 1),
            attr(CKA_ENCRYPT, ptr::from_mut(&mut yes).cast(), 1),
        ];
        let mut wrapped: Vec<CK_BYTE> = self.wrapped.clone();
        let mut handle: CK_OBJECT_HANDLE = 0;
        let unwrap_key = self.f.C_UnwrapKey.ok_or_else(|| err("no C_UnwrapKey"))?;
        // SAFETY: every template value points to a live local of the stated length;
        // `wrapped` holds `len` bytes; `handle` receives the new object's handle.
        let rv = unsafe {
            unwrap_key(
                self.session,
                &mut m,
                self.kek,
                wrapped.as_mut_ptr(),
                wrapped.len() as CK_ULONG,
                template.as_mut_ptr(),
                template.len() as CK_ULONG,
                &mut handle,
            )
        };
        check(rv, "C_UnwrapKey")?;
        Ok(handle)
    }

    /// `C_DestroyObject` of a key [`unwrap`](Self::unwrap) made.
    pub(super) fn destroy(&self, handle: CK_OBJECT_HANDLE) -> Res<()> {
        let destroy = self.f.C_DestroyObject.ok_or_else(|| err("no C_DestroyObject"))?;
        // SAFETY: a plain call with two handles.
        check(unsafe { destroy(self.session, handle) }, "C_DestroyObject")
    }
}

/// The raw crate's RFC 5649 wrap of `target` under `kek` (the value both modules must match).
pub(super) fn raw_wrap(kek: &KwpAes256, target: &[u8; 32]) -> Res<Vec<u8>> {
    let mut out = [0u8; 40];
    Ok(kek.wrap_key(target, &mut out).map_err(|e| err(e.to_string()))?.to_vec())
}
