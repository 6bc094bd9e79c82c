//! `CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE` and `CKA_DERIVE_TEMPLATE`: nested templates
//! set through the C ABI, read back with the spec's nested length-query protocol, and
//! enforced by `C_WrapKey` and `C_UnwrapKey`.

// Nested templates are arrays of CK_ATTRIBUTE with pointers: only the raw ABI can build
// them, so these calls are `unsafe`, each passing live locals.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs, clippy::cast_possible_truncation)]

mod common;

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;

fn attr<T>(ty: CK_ATTRIBUTE_TYPE, v: &mut T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: ty,
        pValue: std::ptr::from_mut(v).cast::<c_void>(),
        ulValueLen: std::mem::size_of::<T>() as CK_ULONG,
    }
}

fn bytes_attr(ty: CK_ATTRIBUTE_TYPE, v: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: ty, pValue: v.as_mut_ptr().cast(), ulValueLen: v.len() as CK_ULONG }
}

fn array_attr(ty: CK_ATTRIBUTE_TYPE, inner: &mut [CK_ATTRIBUTE]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE { type_: ty, pValue: inner.as_mut_ptr().cast(), ulValueLen: std::mem::size_of_val(inner) as CK_ULONG }
}

struct Raw {
    lib: cryptoki_sys::Pkcs11,
    s: CK_SESSION_HANDLE,
}

impl Raw {
    fn create(&self, t: &mut [CK_ATTRIBUTE]) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut h = 0;
        let rv = unsafe { self.lib.C_CreateObject(self.s, t.as_mut_ptr(), t.len() as CK_ULONG, &mut h) };
        (rv, h)
    }

    /// An AES-256 key with `extra` attributes.
    fn aes_key(&self, value: u8, extra: &mut Vec<CK_ATTRIBUTE>) -> CK_OBJECT_HANDLE {
        let (mut class, mut kt, mut val, mut tru) = (CKO_SECRET_KEY, CKK_AES, [value; 32], CK_TRUE);
        let mut t = vec![
            attr(CKA_CLASS, &mut class),
            attr(CKA_KEY_TYPE, &mut kt),
            bytes_attr(CKA_VALUE, &mut val),
            attr(CKA_EXTRACTABLE, &mut tru),
        ];
        t.append(extra);
        let (rv, h) = self.create(&mut t);
        assert_eq!(rv, CKR_OK, "create key");
        h
    }

    fn wrap(&self, kek: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE) -> (CK_RV, Vec<u8>) {
        let mut m = CK_MECHANISM { mechanism: CKM_AES_KEY_WRAP, pParameter: null_mut(), ulParameterLen: 0 };
        let mut out = vec![0u8; 64];
        let mut len = out.len() as CK_ULONG;
        let rv = unsafe { self.lib.C_WrapKey(self.s, &mut m, kek, key, out.as_mut_ptr(), &mut len) };
        out.truncate(len as usize);
        (rv, out)
    }

    fn unwrap(&self, kek: CK_OBJECT_HANDLE, wrapped: &mut [u8], t: &mut [CK_ATTRIBUTE]) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut m = CK_MECHANISM { mechanism: CKM_AES_KEY_WRAP, pParameter: null_mut(), ulParameterLen: 0 };
        let mut h = 0;
        let rv = unsafe {
            self.lib.C_UnwrapKey(
                self.s,
                &mut m,
                kek,
                wrapped.as_mut_ptr(),
                wrapped.len() as CK_ULONG,
                t.as_mut_ptr(),
                t.len() as CK_ULONG,
                &mut h,
            )
        };
        (rv, h)
    }

    fn flag(&self, h: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
        let mut v: CK_BBOOL = 0;
        let mut t = [attr(ty, &mut v)];
        assert_eq!(unsafe { self.lib.C_GetAttributeValue(self.s, h, t.as_mut_ptr(), 1) }, CKR_OK);
        v == CK_TRUE
    }
}

fn setup(fx: &common::Fixture) -> (cryptoki::session::Session, Raw) {
    let slot = fx.init_token();
    let session = fx.user_session(slot);
    let lib = unsafe { cryptoki_sys::Pkcs11::new(common::module_path()) }.expect("load");
    let s = session.handle();
    (session, Raw { lib, s })
}

#[test]
fn a_wrap_template_limits_what_the_key_wraps() {
    let fx = common::Fixture::new();
    let (_session, raw) = setup(&fx);
    let mut ok_id = *b"ok";
    let mut required = [bytes_attr(CKA_ID, &mut ok_id)];
    let kek = raw.aes_key(1, &mut vec![array_attr(CKA_WRAP_TEMPLATE, &mut required)]);
    let mut id = *b"ok";
    let allowed = raw.aes_key(2, &mut vec![bytes_attr(CKA_ID, &mut id)]);
    let mut other = *b"no";
    let refused = raw.aes_key(3, &mut vec![bytes_attr(CKA_ID, &mut other)]);
    assert_eq!(raw.wrap(kek, allowed).0, CKR_OK);
    assert_eq!(raw.wrap(kek, refused).0, CKR_KEY_NOT_WRAPPABLE);
}

#[test]
fn an_unwrap_template_is_imposed_on_unwrapped_keys() {
    let fx = common::Fixture::new();
    let (_session, raw) = setup(&fx);
    let mut tru = CK_TRUE;
    let mut required = [attr(CKA_SENSITIVE, &mut tru)];
    let kek = raw.aes_key(1, &mut vec![array_attr(CKA_UNWRAP_TEMPLATE, &mut required)]);
    let mut fls = CK_FALSE;
    let key = raw.aes_key(2, &mut vec![attr(CKA_SENSITIVE, &mut fls)]);
    let (rv, mut wrapped) = raw.wrap(kek, key);
    assert_eq!(rv, CKR_OK);

    let (mut class, mut kt) = (CKO_SECRET_KEY, CKK_AES);
    let mut t = [attr(CKA_CLASS, &mut class), attr(CKA_KEY_TYPE, &mut kt)];
    let (rv, unwrapped) = raw.unwrap(kek, &mut wrapped, &mut t);
    assert_eq!(rv, CKR_OK);
    assert!(raw.flag(unwrapped, CKA_SENSITIVE), "the unwrap template made it sensitive");
    assert!(!raw.flag(unwrapped, CKA_LOCAL) && !raw.flag(unwrapped, CKA_ALWAYS_SENSITIVE));

    let mut fls = CK_FALSE;
    let mut t = [attr(CKA_CLASS, &mut class), attr(CKA_KEY_TYPE, &mut kt), attr(CKA_SENSITIVE, &mut fls)];
    assert_eq!(raw.unwrap(kek, &mut wrapped, &mut t).0, CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn a_nested_template_reads_back_in_three_steps() {
    let fx = common::Fixture::new();
    let (_session, raw) = setup(&fx);
    let (mut tru, mut label) = (CK_TRUE, *b"wrapped-only");
    let mut required = [attr(CKA_EXTRACTABLE, &mut tru), bytes_attr(CKA_LABEL, &mut label)];
    let kek = raw.aes_key(1, &mut vec![array_attr(CKA_WRAP_TEMPLATE, &mut required)]);

    // 1. The outer length: two CK_ATTRIBUTEs.
    let mut outer = [CK_ATTRIBUTE { type_: CKA_WRAP_TEMPLATE, pValue: null_mut(), ulValueLen: 0 }];
    assert_eq!(unsafe { raw.lib.C_GetAttributeValue(raw.s, kek, outer.as_mut_ptr(), 1) }, CKR_OK);
    assert_eq!(outer[0].ulValueLen as usize, 2 * std::mem::size_of::<CK_ATTRIBUTE>());
    // 2. Each inner type and length.
    let mut inner = [CK_ATTRIBUTE { type_: 0, pValue: null_mut(), ulValueLen: 0 }; 2];
    outer[0].pValue = inner.as_mut_ptr().cast();
    assert_eq!(unsafe { raw.lib.C_GetAttributeValue(raw.s, kek, outer.as_mut_ptr(), 1) }, CKR_OK);
    assert_eq!((inner[0].type_, inner[0].ulValueLen), (CKA_EXTRACTABLE, 1));
    assert_eq!((inner[1].type_, inner[1].ulValueLen), (CKA_LABEL, 12));
    // 3. The values.
    let (mut b, mut l) = ([0u8; 1], [0u8; 12]);
    inner[0].pValue = b.as_mut_ptr().cast();
    inner[1].pValue = l.as_mut_ptr().cast();
    assert_eq!(unsafe { raw.lib.C_GetAttributeValue(raw.s, kek, outer.as_mut_ptr(), 1) }, CKR_OK);
    assert_eq!((b, &l), ([CK_TRUE], b"wrapped-only"));
    assert_eq!((inner[0].ulValueLen, inner[1].ulValueLen), (1, 12), "inner lengths say what was written");
    // Too small an outer buffer is refused and reported.
    outer[0].ulValueLen = std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG;
    assert_eq!(unsafe { raw.lib.C_GetAttributeValue(raw.s, kek, outer.as_mut_ptr(), 1) }, CKR_BUFFER_TOO_SMALL);
    assert_eq!(outer[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
}

#[test]
fn a_malformed_nested_template_is_refused() {
    let fx = common::Fixture::new();
    let (_session, raw) = setup(&fx);
    let mut junk = [0u8; 10];
    let (mut class, mut kt, mut val) = (CKO_SECRET_KEY, CKK_AES, [1u8; 32]);
    let mut t = [
        attr(CKA_CLASS, &mut class),
        attr(CKA_KEY_TYPE, &mut kt),
        bytes_attr(CKA_VALUE, &mut val),
        bytes_attr(CKA_WRAP_TEMPLATE, &mut junk),
    ];
    assert_eq!(raw.create(&mut t).0, CKR_ATTRIBUTE_VALUE_INVALID);
}

impl Raw {
    fn derive(
        &self,
        m: &mut CK_MECHANISM,
        base: CK_OBJECT_HANDLE,
        t: &mut [CK_ATTRIBUTE],
    ) -> (CK_RV, CK_OBJECT_HANDLE) {
        let mut h = 0;
        let rv = unsafe { self.lib.C_DeriveKey(self.s, m, base, t.as_mut_ptr(), t.len() as CK_ULONG, &mut h) };
        (rv, h)
    }

    fn id(&self, h: CK_OBJECT_HANDLE) -> Vec<u8> {
        let mut v = [0u8; 32];
        let mut t = [bytes_attr(CKA_ID, &mut v)];
        assert_eq!(unsafe { self.lib.C_GetAttributeValue(self.s, h, t.as_mut_ptr(), 1) }, CKR_OK);
        let n = t[0].ulValueLen as usize;
        v[..n].to_vec()
    }
}

/// Derives a generic secret under `m` with the caller asking for `sensitive` (or leaving
/// it out) and returns the answer.
fn derive_generic(
    raw: &Raw,
    m: &mut CK_MECHANISM,
    base: CK_OBJECT_HANDLE,
    sensitive: Option<bool>,
) -> (CK_RV, CK_OBJECT_HANDLE) {
    let (mut class, mut kt, mut len) = (CKO_SECRET_KEY, CKK_GENERIC_SECRET, 32 as CK_ULONG);
    let mut s = CK_BBOOL::from(sensitive.unwrap_or(false));
    let mut t = vec![attr(CKA_CLASS, &mut class), attr(CKA_KEY_TYPE, &mut kt), attr(CKA_VALUE_LEN, &mut len)];
    if sensitive.is_some() {
        t.push(attr(CKA_SENSITIVE, &mut s));
    }
    raw.derive(m, base, &mut t)
}

#[test]
fn a_derive_template_is_imposed_on_hash_derived_keys() {
    let fx = common::Fixture::new();
    let (_session, raw) = setup(&fx);
    let (mut tru, mut id) = (CK_TRUE, *b"derived");
    let mut required = [attr(CKA_SENSITIVE, &mut tru), bytes_attr(CKA_ID, &mut id)];
    let mut derive = CK_TRUE;
    let (mut class, mut kt, mut val) = (CKO_SECRET_KEY, CKK_GENERIC_SECRET, [5u8; 32]);
    let mut t = [
        attr(CKA_CLASS, &mut class),
        attr(CKA_KEY_TYPE, &mut kt),
        bytes_attr(CKA_VALUE, &mut val),
        attr(CKA_DERIVE, &mut derive),
        array_attr(CKA_DERIVE_TEMPLATE, &mut required),
    ];
    let (rv, base) = raw.create(&mut t);
    assert_eq!(rv, CKR_OK);
    let mut m = CK_MECHANISM { mechanism: CKM_SHA256_KEY_DERIVATION, pParameter: null_mut(), ulParameterLen: 0 };
    assert_eq!(derive_generic(&raw, &mut m, base, Some(false)).0, CKR_TEMPLATE_INCONSISTENT);
    let (rv, key) = derive_generic(&raw, &mut m, base, None);
    assert_eq!(rv, CKR_OK);
    assert!(raw.flag(key, CKA_SENSITIVE));
    assert_eq!(raw.id(key), b"derived", "the derive template's CKA_ID");
}

#[test]
fn a_derive_template_is_imposed_on_ecdh_derived_keys() {
    let fx = common::Fixture::new();
    let (_session, raw) = setup(&fx);
    // P-256: the DER OID 1.2.840.10045.3.1.7.
    let mut params = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut pub_t = [bytes_attr(CKA_EC_PARAMS, &mut params)];
    let (mut tru, mut derive) = (CK_TRUE, CK_TRUE);
    let mut required = [attr(CKA_SENSITIVE, &mut tru)];
    let mut priv_t = [attr(CKA_DERIVE, &mut derive), array_attr(CKA_DERIVE_TEMPLATE, &mut required)];
    let mut gen = CK_MECHANISM { mechanism: CKM_EC_KEY_PAIR_GEN, pParameter: null_mut(), ulParameterLen: 0 };
    let (mut public, mut private) = (0, 0);
    let rv = unsafe {
        raw.lib.C_GenerateKeyPair(
            raw.s,
            &mut gen,
            pub_t.as_mut_ptr(),
            1,
            priv_t.as_mut_ptr(),
            2,
            &mut public,
            &mut private,
        )
    };
    assert_eq!(rv, CKR_OK);
    let mut point = [0u8; 80];
    let mut t = [bytes_attr(CKA_EC_POINT, &mut point)];
    assert_eq!(unsafe { raw.lib.C_GetAttributeValue(raw.s, public, t.as_mut_ptr(), 1) }, CKR_OK);
    let n = t[0].ulValueLen as usize;
    let mut ecdh = CK_ECDH1_DERIVE_PARAMS {
        kdf: CKD_NULL,
        ulSharedDataLen: 0,
        pSharedData: null_mut(),
        ulPublicDataLen: n as CK_ULONG,
        pPublicData: point.as_mut_ptr(),
    };
    let mut m = CK_MECHANISM {
        mechanism: CKM_ECDH1_DERIVE,
        pParameter: std::ptr::from_mut(&mut ecdh).cast(),
        ulParameterLen: std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() as CK_ULONG,
    };
    assert_eq!(derive_generic(&raw, &mut m, private, Some(false)).0, CKR_TEMPLATE_INCONSISTENT);
    let (rv, key) = derive_generic(&raw, &mut m, private, None);
    assert_eq!(rv, CKR_OK);
    assert!(raw.flag(key, CKA_SENSITIVE));
}
