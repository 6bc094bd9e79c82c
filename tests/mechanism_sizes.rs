//! `C_GetMechanismInfo` advertises exactly the key sizes the token accepts. The test walks
//! `C_GetMechanismList`: every key-generating mechanism makes keys at its advertised
//! minimum and maximum and refuses one step outside them (RSA with `CKR_KEY_SIZE_RANGE`,
//! a secret key's `CKA_VALUE_LEN` with `CKR_ATTRIBUTE_VALUE_INVALID`); every mechanism
//! that runs with a key advertises the same range as the generator of that key type;
//! digests advertise none. A mechanism this test does not classify fails it, so a new
//! row cannot arrive without its sizes being checked.

#![allow(missing_docs)]

mod common;
mod raw_mech;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, name, ul, Mech, Raw};

/// How a mechanism's sizes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Makes a secret key of `CKA_VALUE_LEN` bytes.
    SecretGen,
    /// Makes a key pair; the sizes are named by the template (see [`pair_template`]).
    PairGen,
    /// Runs with keys made by this generator, and advertises its range.
    KeyedBy(CK_MECHANISM_TYPE),
    /// Takes no key: sizes 0.
    Keyless,
}

const AES: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_ECB,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CTR,
    CKM_AES_GCM,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_AES_ECB_ENCRYPT_DATA,
    CKM_AES_CBC_ENCRYPT_DATA,
];
const DIGESTS: &[CK_MECHANISM_TYPE] = &[
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
];
const SECRET_GENS: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_KEY_GEN,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_SHA_1_KEY_GEN,
    CKM_SHA224_KEY_GEN,
    CKM_SHA256_KEY_GEN,
    CKM_SHA384_KEY_GEN,
    CKM_SHA512_KEY_GEN,
    CKM_SHA3_224_KEY_GEN,
    CKM_SHA3_256_KEY_GEN,
    CKM_SHA3_384_KEY_GEN,
    CKM_SHA3_512_KEY_GEN,
    CKM_HKDF_KEY_GEN,
];
const PAIR_GENS: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_ML_KEM_KEY_PAIR_GEN,
    CKM_ML_DSA_KEY_PAIR_GEN,
];
/// ML-DSA signing, pure and pre-hashed: the ML-DSA generator's parameter sets.
const ML_DSA: &[CK_MECHANISM_TYPE] = &[
    CKM_ML_DSA,
    CKM_HASH_ML_DSA,
    CKM_HASH_ML_DSA_SHA224,
    CKM_HASH_ML_DSA_SHA256,
    CKM_HASH_ML_DSA_SHA384,
    CKM_HASH_ML_DSA_SHA512,
    CKM_HASH_ML_DSA_SHA3_224,
    CKM_HASH_ML_DSA_SHA3_256,
    CKM_HASH_ML_DSA_SHA3_384,
    CKM_HASH_ML_DSA_SHA3_512,
    CKM_HASH_ML_DSA_SHAKE128,
    CKM_HASH_ML_DSA_SHAKE256,
];
/// Mechanisms over generic secrets (HMAC, the key derivations): the generic generator's range.
const GENERIC: &[CK_MECHANISM_TYPE] = &[
    CKM_SHA_1_HMAC,
    CKM_SHA_1_HMAC_GENERAL,
    CKM_SHA224_HMAC,
    CKM_SHA224_HMAC_GENERAL,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA512_HMAC,
    CKM_SHA512_HMAC_GENERAL,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_224_HMAC_GENERAL,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_256_HMAC_GENERAL,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_384_HMAC_GENERAL,
    CKM_SHA3_512_HMAC,
    CKM_SHA3_512_HMAC_GENERAL,
    CKM_SHA1_KEY_DERIVATION,
    CKM_SHA224_KEY_DERIVATION,
    CKM_SHA256_KEY_DERIVATION,
    CKM_SHA384_KEY_DERIVATION,
    CKM_SHA512_KEY_DERIVATION,
    CKM_SHA3_224_KEY_DERIVATION,
    CKM_SHA3_256_KEY_DERIVATION,
    CKM_SHA3_384_KEY_DERIVATION,
    CKM_SHA3_512_KEY_DERIVATION,
    CKM_CONCATENATE_BASE_AND_KEY,
    CKM_CONCATENATE_BASE_AND_DATA,
    CKM_CONCATENATE_DATA_AND_BASE,
    CKM_XOR_BASE_AND_DATA,
    CKM_EXTRACT_KEY_FROM_KEY,
    CKM_SP800_108_COUNTER_KDF,
    CKM_SP800_108_FEEDBACK_KDF,
    CKM_SP800_108_DOUBLE_PIPELINE_KDF,
    CKM_HKDF_DERIVE,
    CKM_HKDF_DATA,
];
const RSA: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];
const EC: &[CK_MECHANISM_TYPE] = &[
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_ECDH1_DERIVE,
];

fn kind(m: CK_MECHANISM_TYPE) -> Option<Kind> {
    Some(if SECRET_GENS.contains(&m) {
        Kind::SecretGen
    } else if PAIR_GENS.contains(&m) {
        Kind::PairGen
    } else if DIGESTS.contains(&m) {
        Kind::Keyless
    } else if AES.contains(&m) {
        Kind::KeyedBy(CKM_AES_KEY_GEN)
    } else if GENERIC.contains(&m) {
        Kind::KeyedBy(CKM_GENERIC_SECRET_KEY_GEN)
    } else if RSA.contains(&m) {
        Kind::KeyedBy(CKM_RSA_PKCS_KEY_PAIR_GEN)
    } else if EC.contains(&m) {
        Kind::KeyedBy(CKM_EC_KEY_PAIR_GEN)
    } else if m == CKM_EDDSA {
        Kind::KeyedBy(CKM_EC_EDWARDS_KEY_PAIR_GEN)
    } else if m == CKM_ML_KEM {
        Kind::KeyedBy(CKM_ML_KEM_KEY_PAIR_GEN)
    } else if ML_DSA.contains(&m) {
        Kind::KeyedBy(CKM_ML_DSA_KEY_PAIR_GEN)
    } else {
        return None;
    })
}

/// The public template that asks `gen` for a key of `size` (in the mechanism's unit),
/// or `None` when no key of that size exists to ask for (an EC size between curves).
fn pair_template(gen: CK_MECHANISM_TYPE, size: CK_ULONG) -> Option<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    let mut t = vec![(CKA_TOKEN, bool_attr(false))];
    match gen {
        CKM_RSA_PKCS_KEY_PAIR_GEN => t.push((CKA_MODULUS_BITS, ul(size))),
        CKM_EC_KEY_PAIR_GEN | CKM_EC_EDWARDS_KEY_PAIR_GEN => {
            // DER OIDs: P-256, P-384, P-521 (SEC 2), Ed25519 and Ed448 (RFC 8410).
            let oid = match (gen, size) {
                (CKM_EC_KEY_PAIR_GEN, 256) => "06082a8648ce3d030107",
                (CKM_EC_KEY_PAIR_GEN, 384) => "06052b81040022",
                (CKM_EC_KEY_PAIR_GEN, 521) => "06052b81040023",
                (CKM_EC_EDWARDS_KEY_PAIR_GEN, 256) => "06032b6570",
                (CKM_EC_EDWARDS_KEY_PAIR_GEN, 448) => "06032b6571",
                _ => return None,
            };
            t.push((CKA_EC_PARAMS, hex::decode(oid).expect("hex")));
        }
        CKM_ML_KEM_KEY_PAIR_GEN => {
            let set = match size {
                512 => CKP_ML_KEM_512,
                768 => CKP_ML_KEM_768,
                1024 => CKP_ML_KEM_1024,
                _ => return None,
            };
            t.push((CKA_PARAMETER_SET, ul(set)));
        }
        CKM_ML_DSA_KEY_PAIR_GEN => {
            let set = match size {
                44 => CKP_ML_DSA_44,
                65 => CKP_ML_DSA_65,
                87 => CKP_ML_DSA_87,
                _ => return None,
            };
            t.push((CKA_PARAMETER_SET, ul(set)));
        }
        _ => panic!("{gen:#x}: no template for this generator"),
    }
    Some(t)
}

fn generate(raw: &Raw, gen: CK_MECHANISM_TYPE, kind: Kind, size: CK_ULONG) -> Option<Result<(), CK_RV>> {
    let mut m = Mech::plain(gen);
    Some(match kind {
        Kind::SecretGen => {
            raw.generate(&mut m, &[(CKA_TOKEN, bool_attr(false)), (CKA_VALUE_LEN, ul(size))]).map(|k| raw.destroy(k))
        }
        Kind::PairGen => {
            let public = pair_template(gen, size)?;
            raw.generate_pair(&mut m, &public, &[(CKA_TOKEN, bool_attr(false))]).map(|(p, s)| {
                raw.destroy(p);
                raw.destroy(s);
            })
        }
        _ => unreachable!("only generators generate"),
    })
}

#[test]
fn every_advertised_key_size_range_is_exactly_what_the_token_accepts() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let slot = f.slot().id();
    let list = raw.mechanisms(slot);
    let (mut checked, mut made) = (0, 0);
    for &m in &list {
        if m >= CKM_VENDOR_DEFINED {
            continue; // the hierarchy's own mechanisms run on master keys, not made keys
        }
        let info = raw.info(slot, m).unwrap_or_else(|rv| panic!("C_GetMechanismInfo({m:#x}): {}", name(rv)));
        let kind = kind(m).unwrap_or_else(|| panic!("{m:#x} is advertised but this test does not classify it"));
        let (min, max) = (info.ulMinKeySize, info.ulMaxKeySize);
        match kind {
            Kind::Keyless => assert_eq!((min, max), (0, 0), "{m:#x}: a keyless mechanism advertises key sizes"),
            Kind::KeyedBy(gen) => {
                assert!(list.contains(&gen), "{m:#x}: its key generator {gen:#x} is not offered");
                let g = raw.info(slot, gen).expect("generator info");
                assert_eq!((min, max), (g.ulMinKeySize, g.ulMaxKeySize), "{m:#x}: range differs from {gen:#x}'s");
            }
            Kind::SecretGen | Kind::PairGen => {
                assert!(min > 0 && min <= max, "{m:#x}: range {min}..={max}");
                for size in [min, max] {
                    if let Some(r) = generate(&raw, m, kind, size) {
                        r.unwrap_or_else(|rv| panic!("{m:#x}: advertised size {size} refused: {}", name(rv)));
                        made += 1;
                    }
                }
                // One step outside: a byte for secrets, the modulus granularity for RSA.
                let step = if m == CKM_RSA_PKCS_KEY_PAIR_GEN { 8 } else { 1 };
                let want = if kind == Kind::SecretGen { CKR_ATTRIBUTE_VALUE_INVALID } else { CKR_KEY_SIZE_RANGE };
                for size in [min - step, max + step] {
                    if let Some(r) = generate(&raw, m, kind, size) {
                        assert_eq!(r, Err(want), "{m:#x}: size {size} outside {min}..={max}");
                    }
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} mechanisms were checked");
    // Two keys (minimum and maximum) per generator: AES, generic, RSA, EC, Edwards, ML-KEM, ML-DSA.
    assert!(made >= 14, "only {made} keys were made at the advertised bounds");
}

#[test]
fn rsa_sizes_between_the_bounds_that_are_not_whole_bytes_are_key_size_range() {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    let raw = Raw::new(s.handle());
    let public = pair_template(CKM_RSA_PKCS_KEY_PAIR_GEN, 2049).expect("template");
    let r = raw.generate_pair(&mut Mech::plain(CKM_RSA_PKCS_KEY_PAIR_GEN), &public, &[]);
    assert_eq!(r, Err(CKR_KEY_SIZE_RANGE));
}
