//! X-Wing (the vendor hybrid KEM `CKM_CV_XWING`, ML-KEM-768 + X25519) through the C ABI:
//! key pairs, `C_EncapsulateKey`/`C_DecapsulateKey` into secret key objects, the
//! draft's own test vectors (draft-connolly-cfrg-xwing-kem-06, spec/test-vectors.json,
//! copied to tests/fixtures/xwing/ from the RustCrypto `x-wing` 0.1.1 crate, which ships
//! the draft's file), and the exact codes for bad keys and ciphertexts.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ptr::null_mut;

use collabvault_pkcs11::vendor::{CKK_CV_XWING, CKM_CV_XWING, CKM_CV_XWING_KEY_PAIR_GEN};
use common::raw::{assert_rv, Api, Template};
use cryptoki_sys::*;

/// A generic secret the test may read.
fn readable_secret() -> Template {
    Template::default()
        .ulong(CKA_CLASS, CKO_SECRET_KEY)
        .ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        .bytes(CKA_SENSITIVE, &[CK_FALSE])
        .bytes(CKA_EXTRACTABLE, &[CK_TRUE])
}

fn key(class: CK_OBJECT_CLASS, value: &[u8]) -> Template {
    Template::default().ulong(CKA_CLASS, class).ulong(CKA_KEY_TYPE, CKK_CV_XWING).bytes(CKA_VALUE, value)
}

struct Kem {
    api: Api,
    s: CK_SESSION_HANDLE,
}

impl Kem {
    fn mech(ty: CK_MECHANISM_TYPE) -> CK_MECHANISM {
        CK_MECHANISM { mechanism: ty, pParameter: null_mut(), ulParameterLen: 0 }
    }

    fn create(&self, t: Template) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        common::raw::create(&self.api, self.s, t)
    }

    fn value(&self, h: CK_OBJECT_HANDLE) -> Vec<u8> {
        common::raw::value(&self.api, self.s, h)
    }

    fn pair(&self) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut m = Kem::mech(CKM_CV_XWING_KEY_PAIR_GEN);
        let (mut ph, mut sh) = (0, 0);
        let f = self.api.f.C_GenerateKeyPair.expect("fn");
        let rv = unsafe { f(self.s, &mut m, null_mut(), 0, null_mut(), 0, &mut ph, &mut sh) };
        assert_rv(rv, CKR_OK, "C_GenerateKeyPair(X-Wing)");
        (ph, sh)
    }

    /// Encapsulates to `public`: the ciphertext and the shared secret's bytes.
    fn encapsulate(&self, public: CK_OBJECT_HANDLE) -> Result<(Vec<u8>, Vec<u8>), CK_RV> {
        let mut m = Kem::mech(CKM_CV_XWING);
        let mut t = readable_secret();
        let mut raw = t.raw();
        let (mut ct, mut len, mut h) = (vec![0u8; 2000], 2000 as CK_ULONG, 0);
        let f = self.api.f.C_EncapsulateKey.expect("fn");
        let rv =
            unsafe { f(self.s, &mut m, public, raw.as_mut_ptr(), raw.len() as _, ct.as_mut_ptr(), &mut len, &mut h) };
        if rv != CKR_OK {
            return Err(rv);
        }
        ct.truncate(len as usize);
        Ok((ct, self.value(h)))
    }

    /// Decapsulates `ct` with `private`: the shared secret's bytes.
    fn decapsulate(&self, private: CK_OBJECT_HANDLE, ct: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut m = Kem::mech(CKM_CV_XWING);
        let mut t = readable_secret();
        let mut raw = t.raw();
        let (mut ct, mut h) = (ct.to_vec(), 0);
        let f = self.api.f.C_DecapsulateKey.expect("fn");
        let rv = unsafe {
            f(self.s, &mut m, private, raw.as_mut_ptr(), raw.len() as _, ct.as_mut_ptr(), ct.len() as _, &mut h)
        };
        if rv != CKR_OK {
            return Err(rv);
        }
        Ok(self.value(h))
    }
}

fn with_kem(test: impl FnOnce(&Kem)) {
    let fx = common::Fixture::new();
    let session = fx.user_session(fx.init_token());
    test(&Kem { api: Api::load(), s: session.handle() });
}

fn vectors() -> Vec<serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xwing/draft-connolly-cfrg-xwing-kem-06.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json")
}

fn hex_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().expect(name)).expect("hex")
}

#[test]
fn a_key_pair_encapsulates_and_decapsulates_to_the_same_secret() {
    with_kem(|kem| {
        let (public, private) = kem.pair();
        assert_eq!(kem.value(public).len(), 1216, "the draft's encapsulation key length");
        let (ct, sent) = kem.encapsulate(public).expect("encapsulate");
        assert_eq!((ct.len(), sent.len()), (1120, 32));
        assert_eq!(kem.decapsulate(private, &ct).expect("decapsulate"), sent);
        let (ct2, sent2) = kem.encapsulate(public).expect("encapsulate");
        assert_ne!((ct2, sent2), (ct, sent.clone()), "encapsulation is randomized");
        let mut a = CK_ATTRIBUTE { type_: CKA_VALUE, pValue: null_mut(), ulValueLen: 0 };
        let rv = unsafe { kem.api.f.C_GetAttributeValue.expect("fn")(kem.s, private, &mut a, 1) };
        assert_rv(rv, CKR_ATTRIBUTE_SENSITIVE, "the private key is sensitive");
    });
}

#[test]
fn the_drafts_vectors_decapsulate_to_their_shared_secrets() {
    with_kem(|kem| {
        let all = vectors();
        assert_eq!(all.len(), 3);
        for v in &all {
            let private = kem.create(key(CKO_PRIVATE_KEY, &hex_field(v, "sk"))).expect("import sk");
            let ct = hex_field(v, "ct");
            assert_eq!(kem.decapsulate(private, &ct).expect("decapsulate"), hex_field(v, "ss"), "the vector's ss");
            // Encapsulating to the vector's public key reaches the vector's private key.
            let public = kem.create(key(CKO_PUBLIC_KEY, &hex_field(v, "pk"))).expect("import pk");
            let (ct, sent) = kem.encapsulate(public).expect("encapsulate");
            assert_eq!(kem.decapsulate(private, &ct).expect("decapsulate"), sent);
        }
    });
}

#[test]
fn bad_ciphertexts_and_keys_get_their_exact_codes() {
    with_kem(|kem| {
        let (public, private) = kem.pair();
        let (ct, sent) = kem.encapsulate(public).expect("encapsulate");
        assert_eq!(kem.decapsulate(private, &ct[..1119]), Err(CKR_ENCRYPTED_DATA_LEN_RANGE), "short ciphertext");
        let mut long = ct.clone();
        long.push(0);
        assert_eq!(kem.decapsulate(private, &long), Err(CKR_ENCRYPTED_DATA_LEN_RANGE), "long ciphertext");
        // A flipped bit is answered with an unrelated secret (implicit rejection), not an error.
        let mut flipped = ct.clone();
        flipped[7] ^= 1;
        let other = kem.decapsulate(private, &flipped).expect("implicit rejection");
        assert_ne!(other, sent);
        // Keys: wrong lengths, and the wrong direction or type for the mechanism.
        assert_eq!(kem.create(key(CKO_PUBLIC_KEY, &[1u8; 1215])), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        assert_eq!(kem.create(key(CKO_PRIVATE_KEY, &[1u8; 31])), Err(CKR_ATTRIBUTE_VALUE_INVALID));
        assert_eq!(kem.encapsulate(private).map(|_| ()), Err(CKR_KEY_TYPE_INCONSISTENT), "a private key encapsulates");
        let aes = Template::default()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_AES)
            .bytes(CKA_VALUE, &[7u8; 32]);
        let aes = kem.create(aes).expect("AES key");
        assert_eq!(kem.decapsulate(aes, &ct), Err(CKR_KEY_TYPE_INCONSISTENT), "an AES key decapsulates");
    });
}
