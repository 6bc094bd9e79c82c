//! NIST ACVP ML-DSA known-answer tests of the safe core, for what the C ABI cannot
//! express: these ACVP files use FIPS 204's *internal* interface (the `message` is `M'`
//! itself, which `CKM_ML_DSA` always builds as `0 || |ctx| || ctx || M`), so signing
//! with a given `rnd` or deterministically, and verifying, run here on
//! `ML-DSA.Sign_internal` / `Verify_internal`. Key generation from the seed is driven
//! through the C ABI as well (`tests/mech_mldsa.rs`).
//!
//! Source: usnistgov/ACVP-Server, `gen-val/json-files/ML-DSA-{keyGen,sigGen,sigVer}-FIPS204/
//! internalProjection.json` at commit 65370b8, as copied into RustCrypto/signatures
//! `ml-dsa/tests/{key-gen,sig-gen,sig-ver}.json` (commit
//! 5595c3b1bfa14022b46ec3cc662a87e49b954266); the first 4 keyGen, 2 sigGen and 6 sigVer
//! cases of each test group are kept in `tests/fixtures/acvp-mldsa/` (see its README).

use serde_json::Value;

use super::*;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/acvp-mldsa/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

fn set(group: &Value) -> ParamSet {
    match group["parameterSet"].as_str() {
        Some("ML-DSA-44") => ParamSet::MlDsa44,
        Some("ML-DSA-65") => ParamSet::MlDsa65,
        Some("ML-DSA-87") => ParamSet::MlDsa87,
        other => panic!("unknown parameter set {other:?}"),
    }
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap_or_else(|| panic!("{field} missing"))).expect("hex")
}

/// Every test case of a file with its group, and how many there were per set.
fn cases(file: &Value) -> Vec<(&Value, &Value)> {
    let groups = file["testGroups"].as_array().expect("groups");
    groups.iter().flat_map(|g| g["tests"].as_array().expect("tests").iter().map(move |t| (g, t))).collect()
}

#[test]
fn acvp_key_generation_from_the_seed_gives_the_public_and_expanded_keys() {
    let file = load("keyGen");
    let all = cases(&file);
    assert_eq!(all.len(), 12);
    for (g, t) in all {
        let (expanded, public) = from_seed(set(g), &bytes(t, "seed")).expect("keys");
        assert_eq!(public, bytes(t, "pk"), "tc {}", t["tcId"]);
        assert_eq!(expanded.as_slice(), bytes(t, "sk").as_slice(), "tc {}", t["tcId"]);
        assert_eq!(public_key_of_seed(set(g), &bytes(t, "seed")).expect("pk"), bytes(t, "pk"));
    }
}

#[test]
fn acvp_signatures_deterministic_and_with_the_given_rnd_match() {
    let file = load("sigGen");
    let all = cases(&file);
    assert_eq!(all.len(), 12);
    let mut with_rnd = 0;
    for (g, t) in all {
        let ps = set(g);
        let key = AnySigningKey::decode(ps, &bytes(t, "sk")).expect("the ACVP key decodes");
        let rnd = match g["deterministic"].as_bool().expect("deterministic") {
            true => B32::default(),
            false => {
                with_rnd += 1;
                B32::try_from(bytes(t, "rnd").as_slice()).expect("32 bytes")
            }
        };
        let signature = key.sign(&[&bytes(t, "message")], &rnd);
        assert_eq!(signature, bytes(t, "signature"), "tc {}", t["tcId"]);
        assert_eq!(signature.len(), ps.lengths().2);
    }
    assert_eq!(with_rnd, 6, "half the groups give rnd");
}

#[test]
fn acvp_verification_accepts_exactly_the_passing_cases() {
    let file = load("sigVer");
    let all = cases(&file);
    assert_eq!(all.len(), 18);
    let (mut passed, mut failed) = (0, 0);
    for (g, t) in all {
        let key = AnyVerifyingKey::decode(set(g), &bytes(g, "pk")).expect("the ACVP key decodes");
        let got = key.verify(&bytes(t, "message"), &bytes(t, "signature"));
        let want = t["testPassed"].as_bool().expect("testPassed");
        assert_eq!(got.is_ok(), want, "tc {} ({})", t["tcId"], t["reason"]);
        if want {
            passed += 1;
        } else {
            // A malformed signature (too many hints, z too large) and a wrong one are
            // the same opaque refusal.
            assert_eq!(got, Err(Error::SignatureInvalid), "tc {}", t["tcId"]);
            failed += 1;
        }
    }
    assert!(passed >= 4 && failed >= 10, "{passed} passing, {failed} failing cases");
}
