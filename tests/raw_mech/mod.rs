//! Raw C ABI helpers for the mechanism tests: mechanisms the `cryptoki`
//! crate has no variant for (SHA-3, `_GENERAL` MACs, AES-CTR, CMAC, key derivation) are
//! driven through `cryptoki_sys` with a hand-built `CK_MECHANISM`.
//!
//! Every `unsafe` block is one C call whose pointers are NULL or point to live locals of
//! the stated length; `undocumented_unsafe_blocks` is relaxed for that reason.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, dead_code, missing_docs, unreachable_pub)]

use cryptoki_sys::*;

/// A mechanism with an owned parameter blob.
pub struct Mech {
    pub ty: CK_MECHANISM_TYPE,
    pub param: Vec<u8>,
}

impl Mech {
    pub fn plain(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech { ty, param: Vec::new() }
    }

    /// A parameter struct, copied byte for byte (it must not hold pointers that outlive it).
    pub fn with<T: Copy>(ty: CK_MECHANISM_TYPE, p: &T) -> Mech {
        let bytes = unsafe { std::slice::from_raw_parts(std::ptr::from_ref(p).cast::<u8>(), std::mem::size_of::<T>()) };
        Mech { ty, param: bytes.to_vec() }
    }

    pub fn bytes(ty: CK_MECHANISM_TYPE, param: &[u8]) -> Mech {
        Mech { ty, param: param.to_vec() }
    }

    pub fn ulong(ty: CK_MECHANISM_TYPE, v: CK_ULONG) -> Mech {
        Mech::with(ty, &v)
    }

    fn raw(&mut self) -> CK_MECHANISM {
        let ptr = if self.param.is_empty() { std::ptr::null_mut() } else { self.param.as_mut_ptr().cast() };
        CK_MECHANISM { mechanism: self.ty, pParameter: ptr, ulParameterLen: self.param.len() as CK_ULONG }
    }
}

/// The loaded module's raw function table and one session.
pub struct Raw {
    pub p: Pkcs11,
    pub sh: CK_SESSION_HANDLE,
}

fn check(rv: CK_RV) -> Result<(), CK_RV> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(rv)
    }
}

/// Output of a call with the length-query protocol: query, then the call.
fn out(mut f: impl FnMut(*mut CK_BYTE, *mut CK_ULONG) -> CK_RV) -> Result<Vec<u8>, CK_RV> {
    let mut len: CK_ULONG = 0;
    check(f(std::ptr::null_mut(), &mut len))?;
    let mut buf = vec![0u8; usize::try_from(len).expect("fits")];
    check(f(buf.as_mut_ptr(), &mut len))?;
    buf.truncate(usize::try_from(len).expect("fits"));
    Ok(buf)
}

impl Raw {
    pub fn new(sh: CK_SESSION_HANDLE) -> Raw {
        let p = unsafe { Pkcs11::new(crate::common::module_path()) }.expect("load module");
        Raw { p, sh }
    }

    pub fn digest(&self, m: &mut Mech, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_DigestInit(self.sh, &mut cm) })?;
        let mut d = data.to_vec();
        out(|o, l| unsafe { self.p.C_Digest(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG, o, l) })
    }

    pub fn digest_parts(&self, m: &mut Mech, parts: &[&[u8]]) -> Result<Vec<u8>, CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_DigestInit(self.sh, &mut cm) })?;
        for part in parts {
            let mut d = part.to_vec();
            check(unsafe { self.p.C_DigestUpdate(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG) })?;
        }
        out(|o, l| unsafe { self.p.C_DigestFinal(self.sh, o, l) })
    }

    pub fn sign(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_SignInit(self.sh, &mut cm, key) })?;
        let mut d = data.to_vec();
        out(|o, l| unsafe { self.p.C_Sign(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG, o, l) })
    }

    pub fn sign_parts(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, parts: &[&[u8]]) -> Result<Vec<u8>, CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_SignInit(self.sh, &mut cm, key) })?;
        for part in parts {
            let mut d = part.to_vec();
            check(unsafe { self.p.C_SignUpdate(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG) })?;
        }
        out(|o, l| unsafe { self.p.C_SignFinal(self.sh, o, l) })
    }

    pub fn verify(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, data: &[u8], sig: &[u8]) -> Result<(), CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_VerifyInit(self.sh, &mut cm, key) })?;
        let (mut d, mut s) = (data.to_vec(), sig.to_vec());
        check(unsafe {
            self.p.C_Verify(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG, s.as_mut_ptr(), s.len() as CK_ULONG)
        })
    }

    pub fn encrypt(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_EncryptInit(self.sh, &mut cm, key) })?;
        let mut d = data.to_vec();
        out(|o, l| unsafe { self.p.C_Encrypt(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG, o, l) })
    }

    pub fn decrypt(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut cm = m.raw();
        check(unsafe { self.p.C_DecryptInit(self.sh, &mut cm, key) })?;
        let mut d = data.to_vec();
        out(|o, l| unsafe { self.p.C_Decrypt(self.sh, d.as_mut_ptr(), d.len() as CK_ULONG, o, l) })
    }

    /// Multi-part: each update's output is returned separately, then the final's.
    pub fn crypt_parts(
        &self,
        encrypt: bool,
        m: &mut Mech,
        key: CK_OBJECT_HANDLE,
        parts: &[&[u8]],
    ) -> Result<(Vec<Vec<u8>>, Vec<u8>), CK_RV> {
        let mut cm = m.raw();
        if encrypt {
            check(unsafe { self.p.C_EncryptInit(self.sh, &mut cm, key) })?;
        } else {
            check(unsafe { self.p.C_DecryptInit(self.sh, &mut cm, key) })?;
        }
        let mut outs = Vec::new();
        for part in parts {
            let mut d = part.to_vec();
            let n = d.len() as CK_ULONG;
            outs.push(out(|o, l| unsafe {
                if encrypt {
                    self.p.C_EncryptUpdate(self.sh, d.as_mut_ptr(), n, o, l)
                } else {
                    self.p.C_DecryptUpdate(self.sh, d.as_mut_ptr(), n, o, l)
                }
            })?);
        }
        let last = out(|o, l| unsafe {
            if encrypt {
                self.p.C_EncryptFinal(self.sh, o, l)
            } else {
                self.p.C_DecryptFinal(self.sh, o, l)
            }
        })?;
        Ok((outs, last))
    }

    /// `C_DeriveKey` with a template of (type, value bytes).
    pub fn derive(
        &self,
        m: &mut Mech,
        base: CK_OBJECT_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut cm = m.raw();
        let mut values: Vec<Vec<u8>> = template.iter().map(|(_, v)| v.clone()).collect();
        let mut attrs: Vec<CK_ATTRIBUTE> = template
            .iter()
            .zip(values.iter_mut())
            .map(|((t, _), v)| CK_ATTRIBUTE {
                type_: *t,
                pValue: v.as_mut_ptr().cast(),
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect();
        let mut handle: CK_OBJECT_HANDLE = 0;
        check(unsafe {
            self.p.C_DeriveKey(self.sh, &mut cm, base, attrs.as_mut_ptr(), attrs.len() as CK_ULONG, &mut handle)
        })?;
        Ok(handle)
    }
}

/// A template of (type, value bytes) pairs as the C ABI takes it; the values must outlive
/// the returned attributes.
fn attrs(values: &mut [(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<CK_ATTRIBUTE> {
    values
        .iter_mut()
        .map(|(t, v)| CK_ATTRIBUTE { type_: *t, pValue: v.as_mut_ptr().cast(), ulValueLen: v.len() as CK_ULONG })
        .collect()
}

impl Raw {
    /// `C_GenerateKey` with a template of (type, value bytes).
    pub fn generate(&self, m: &mut Mech, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut cm = m.raw();
        let mut values = template.to_vec();
        let mut t = attrs(&mut values);
        let mut handle: CK_OBJECT_HANDLE = 0;
        check(unsafe { self.p.C_GenerateKey(self.sh, &mut cm, t.as_mut_ptr(), t.len() as CK_ULONG, &mut handle) })?;
        Ok(handle)
    }

    /// `C_GenerateKeyPair` with public and private templates: (public, private) handles.
    pub fn generate_pair(
        &self,
        m: &mut Mech,
        public: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
        private: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
        let mut cm = m.raw();
        let (mut pv, mut sv) = (public.to_vec(), private.to_vec());
        let (mut pt, mut st) = (attrs(&mut pv), attrs(&mut sv));
        let (mut pk, mut sk): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
        check(unsafe {
            self.p.C_GenerateKeyPair(
                self.sh,
                &mut cm,
                pt.as_mut_ptr(),
                pt.len() as CK_ULONG,
                st.as_mut_ptr(),
                st.len() as CK_ULONG,
                &mut pk,
                &mut sk,
            )
        })?;
        Ok((pk, sk))
    }
}

impl Raw {
    /// One attribute's bytes (length query, then the read).
    pub fn attr(&self, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<Vec<u8>, CK_RV> {
        let mut a = CK_ATTRIBUTE { type_: ty, pValue: std::ptr::null_mut(), ulValueLen: 0 };
        check(unsafe { self.p.C_GetAttributeValue(self.sh, obj, &mut a, 1) })?;
        let mut buf = vec![0u8; usize::try_from(a.ulValueLen).expect("fits")];
        a.pValue = buf.as_mut_ptr().cast();
        check(unsafe { self.p.C_GetAttributeValue(self.sh, obj, &mut a, 1) })?;
        Ok(buf)
    }

    /// `C_CreateObject` from (type, value bytes) pairs.
    pub fn create(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut values: Vec<Vec<u8>> = template.iter().map(|(_, v)| v.clone()).collect();
        let mut attrs: Vec<CK_ATTRIBUTE> = template
            .iter()
            .zip(values.iter_mut())
            .map(|((t, _), v)| CK_ATTRIBUTE {
                type_: *t,
                pValue: v.as_mut_ptr().cast(),
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect();
        let mut handle: CK_OBJECT_HANDLE = 0;
        check(unsafe { self.p.C_CreateObject(self.sh, attrs.as_mut_ptr(), attrs.len() as CK_ULONG, &mut handle) })?;
        Ok(handle)
    }

    /// `C_GetMechanismList`, unfiltered (the `cryptoki` crate drops types it does not know).
    pub fn mechanisms(&self, slot: CK_SLOT_ID) -> Vec<CK_MECHANISM_TYPE> {
        let mut n: CK_ULONG = 0;
        check(unsafe { self.p.C_GetMechanismList(slot, std::ptr::null_mut(), &mut n) }).expect("count");
        let mut list = vec![0; usize::try_from(n).expect("fits")];
        check(unsafe { self.p.C_GetMechanismList(slot, list.as_mut_ptr(), &mut n) }).expect("list");
        list
    }

    /// `C_GetMechanismInfo`.
    pub fn info(&self, slot: CK_SLOT_ID, ty: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO, CK_RV> {
        let mut info = CK_MECHANISM_INFO { ulMinKeySize: 0, ulMaxKeySize: 0, flags: 0 };
        check(unsafe { self.p.C_GetMechanismInfo(slot, ty, &mut info) })?;
        Ok(info)
    }

    pub fn destroy(&self, obj: CK_OBJECT_HANDLE) {
        check(unsafe { self.p.C_DestroyObject(self.sh, obj) }).expect("C_DestroyObject");
    }
}

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// A CK_ULONG attribute value.
pub fn ul(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A CK_BBOOL attribute value.
pub fn bool_attr(b: bool) -> Vec<u8> {
    vec![CK_BBOOL::from(b)]
}

/// The return code's spec name, for messages.
pub fn name(rv: CK_RV) -> String {
    format!("{:?} ({rv:#x})", cryptoki::error::Rv::from(rv))
}
