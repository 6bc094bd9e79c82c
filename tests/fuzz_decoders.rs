//! Fuzz targets for the decoders, through the rlib's public API, in the seeded style of
//! `tests/fuzz_abi.rs` (`FUZZ_SECONDS` per target, default 5 s; `FUZZ_SEED` replays):
//!
//! - attribute templates as a caller passes them (`ffi::args::template`, nested arrays
//!   included) and as the store keeps them (`object::codec`);
//! - mechanism parameters (`ffi::params::mechanism`) for every registered mechanism and
//!   unknown ones, with parameters of the right shape, the wrong size and junk;
//! - wrap records (`hierarchy::record::parse`/`open`): random bytes and mutated real
//!   records;
//! - the config file (`Config::parse`): TOML from a grammar of the real keys, mutated.
//!
//! Each target checks what its decoder promises, not only that it returns: the error
//! codes it may give, and that what it accepts is what was given.

// The template and mechanism decoders read caller memory: the tests build that memory
// (live locals of the lengths stated) and call them as the C ABI does.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::mem::size_of;
use std::ptr::null_mut;

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::error::Error;
use collabvault_pkcs11::ffi::{args, params};
use collabvault_pkcs11::hierarchy::record;
use collabvault_pkcs11::mechanism::aes_gcm::GcmKey;
use collabvault_pkcs11::mechanism::registry::{self, ParamShape};
use collabvault_pkcs11::object::{codec, Attr, Template};
use common::fuzz::{run, Rng};
use cryptoki_sys::*;

const ARRAY_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE];

/// A caller's template in memory: the attributes and what they point to.
#[derive(Default)]
struct RawTemplate {
    attrs: Vec<CK_ATTRIBUTE>,
    values: Vec<Vec<u8>>,
    nested: Vec<RawTemplate>,
    /// What a correct decoder returns: (type, value or nested expectation).
    want: Vec<(CK_ATTRIBUTE_TYPE, Want)>,
}

enum Want {
    Bytes(Vec<u8>),
    Nested(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>),
    /// A value no decoder may accept (a nested array of the wrong size or depth).
    Refused,
}

fn raw_template(rng: &mut Rng, depth: usize) -> RawTemplate {
    let mut t = RawTemplate::default();
    for _ in 0..rng.below(6) {
        let ty = match rng.below(4) {
            0 => rng.pick(ARRAY_ATTRS),
            1 => rng.next_u64(),
            _ => rng.below(0x200) as CK_ATTRIBUTE_TYPE,
        };
        // An attribute-array type always gets a real array: the decoder follows its
        // pointers, so plain bytes there would be garbage pointers (a broken caller).
        if ARRAY_ATTRS.contains(&ty) {
            let mut inner = raw_template(rng, depth + 1);
            let size = size_of::<CK_ATTRIBUTE>();
            // Sometimes a length that is not a whole number of attributes.
            let ragged = rng.chance(15) && !inner.attrs.is_empty();
            let len = inner.attrs.len() * size - usize::from(ragged);
            let p = if inner.attrs.is_empty() { null_mut() } else { inner.attrs.as_mut_ptr().cast() };
            t.attrs.push(CK_ATTRIBUTE { type_: ty, pValue: p, ulValueLen: len as CK_ULONG });
            let nested_ok = depth == 0 && !ragged && inner.want.iter().all(|(_, w)| matches!(w, Want::Bytes(_)));
            let want = if nested_ok {
                Want::Nested(
                    inner
                        .want
                        .iter()
                        .map(|(t, w)| match w {
                            Want::Bytes(b) => (*t, b.clone()),
                            _ => unreachable!("checked above"),
                        })
                        .collect(),
                )
            } else {
                Want::Refused
            };
            t.want.push((ty, want));
            t.nested.push(inner);
            continue;
        }
        let n = rng.len(70);
        let mut v = rng.bytes(n);
        let p = if n == 0 && rng.chance(50) { null_mut() } else { v.as_mut_ptr().cast() };
        t.attrs.push(CK_ATTRIBUTE { type_: ty, pValue: p, ulValueLen: n as CK_ULONG });
        t.want.push((ty, Want::Bytes(v.clone())));
        t.values.push(v);
    }
    t
}

/// Caller templates decode to exactly what they hold, or are refused with the codes the
/// decoder may give; the store's encoding of any result decodes back to it.
#[test]
fn fuzz_attribute_templates() {
    run("fuzz_attribute_templates", 5, |seed| {
        let mut rng = Rng::new(seed);
        let mut t = raw_template(&mut rng, 0);
        // Sometimes NULL with a count, which is refused before anything is read.
        let null_with_count = rng.chance(5);
        let (ptr, count) = if null_with_count {
            (null_mut(), 1 + rng.below(4) as CK_ULONG)
        } else {
            (if t.attrs.is_empty() { null_mut() } else { t.attrs.as_mut_ptr() }, t.attrs.len() as CK_ULONG)
        };
        let got = unsafe { args::template(ptr, count) };
        let refused = null_with_count || t.want.iter().any(|(_, w)| matches!(w, Want::Refused));
        match got {
            Err(Error::ArgumentsBad(_)) if null_with_count => {}
            Err(Error::AttributeValueInvalid(ty)) if refused && ARRAY_ATTRS.contains(&ty) => {}
            Err(e) => panic!("seed {seed:#x}: template refused with {e:?}"),
            Ok(_) if refused => panic!("seed {seed:#x}: a malformed nested template was accepted"),
            Ok(got) => {
                assert_eq!(got.0.len(), t.want.len(), "seed {seed:#x}: attribute count");
                for (a, (ty, want)) in got.0.iter().zip(&t.want) {
                    assert_eq!(a.ty, *ty, "seed {seed:#x}");
                    match want {
                        Want::Bytes(b) => assert_eq!(&a.value, b, "seed {seed:#x}: value of {ty:#x}"),
                        Want::Nested(inner) => {
                            let decoded = Template::decode_nested(*ty, &a.value).expect("nested decodes");
                            let pairs: Vec<_> = decoded.0.iter().map(|a| (a.ty, a.value.clone())).collect();
                            assert_eq!(&pairs, inner, "seed {seed:#x}: nested {ty:#x}");
                        }
                        Want::Refused => unreachable!("refused handled above"),
                    }
                }
                // The stored encoding round-trips.
                let stored = codec::encode(got.0.iter().map(|a| (a.ty, a.value.as_slice()))).expect("encode");
                let back = codec::decode(&stored).expect("decode");
                assert_eq!(back.len(), got.0.len(), "seed {seed:#x}: stored round trip");
            }
        }
        drop(t.values);
        // The stored decoder over damaged rows: an integrity error, never a panic, and a
        // row it accepts re-encodes to the same bytes.
        let n = rng.len(200);
        let mut junk = rng.bytes(n);
        if rng.chance(50) {
            let good =
                codec::encode([(CKA_LABEL, b"x".as_slice()), (CKA_VALUE, &[7u8; 32][..])].into_iter()).expect("encode");
            junk = good.to_vec();
            let cut = rng.below(junk.len() + 1);
            junk.truncate(cut);
            if !junk.is_empty() && rng.chance(50) {
                let i = rng.below(junk.len());
                junk[i] = rng.next_u64() as u8;
            }
        }
        match codec::decode(&junk) {
            Ok(attrs) => {
                let again = codec::encode(attrs.iter().map(|(t, v)| (*t, v.as_slice()))).expect("encode");
                assert_eq!(again.as_slice(), junk.as_slice(), "seed {seed:#x}: stored row does not round-trip");
            }
            Err(Error::Integrity(_)) => {}
            Err(e) => panic!("seed {seed:#x}: stored row refused with {e:?}"),
        }
    });
}

/// What a fuzzed KBKDF parameter points to, kept alive while it is decoded.
#[derive(Default)]
struct Keep {
    bytes: Vec<Vec<u8>>,
    params: Vec<Vec<CK_PRF_DATA_PARAM>>,
}

/// A `CK_PRF_DATA_PARAM` array of random types and values: counter and DKM formats with
/// edge widths and flags, byte arrays, NULL values, wrong lengths and unknown types.
fn prf_data(rng: &mut Rng, keep: &mut Keep) -> (*mut CK_PRF_DATA_PARAM, CK_ULONG) {
    let n = rng.below(6);
    let mut params = Vec::with_capacity(n);
    for _ in 0..n {
        let ty = if rng.chance(90) { 1 + rng.below(5) as CK_ULONG } else { rng.ulong() };
        let width = rng.pick(&[0, 8, 12, 16, 24, 32, 40, 64, 72]);
        let flag = rng.pick(&[CK_FALSE, CK_TRUE, 2]);
        let mut value = match rng.below(4) {
            0 => counter_bytes(flag, width),
            1 => {
                let f = CK_SP800_108_DKM_LENGTH_FORMAT {
                    dkmLengthMethod: rng.pick(&[1, 2, 3]),
                    bLittleEndian: flag,
                    ulWidthInBits: width,
                };
                unsafe { std::slice::from_raw_parts(std::ptr::from_ref(&f).cast::<u8>(), size_of_val(&f)).to_vec() }
            }
            2 => Vec::new(),
            _ => {
                let len = rng.len(40);
                rng.bytes(len)
            }
        };
        let p = if value.is_empty() { null_mut() } else { value.as_mut_ptr().cast() };
        params.push(CK_PRF_DATA_PARAM { type_: ty, pValue: p, ulValueLen: value.len() as CK_ULONG });
        keep.bytes.push(value);
    }
    let ptr = if params.is_empty() && rng.chance(50) { null_mut() } else { params.as_mut_ptr() };
    let n = params.len() as CK_ULONG;
    keep.params.push(params);
    (ptr, n)
}

fn counter_bytes(flag: CK_BBOOL, width: CK_ULONG) -> Vec<u8> {
    let f = CK_SP800_108_COUNTER_FORMAT { bLittleEndian: flag, ulWidthInBits: width };
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(&f).cast::<u8>(), size_of_val(&f)).to_vec() }
}

/// Mechanism parameters: every registered mechanism and unknown ones, with parameters of
/// each shape the decoder knows (pointing at buffers of random sizes), of the wrong size,
/// NULL with a length, and junk. Only the three codes a decoder may give come back, an
/// unknown type is always CKR_MECHANISM_INVALID, and decoding is deterministic.
#[test]
fn fuzz_mechanism_parameters() {
    let rows: Vec<(CK_MECHANISM_TYPE, ParamShape)> = registry::registry().map(|e| (e.ty, e.param)).collect();
    let types: Vec<CK_MECHANISM_TYPE> = rows.iter().map(|r| r.0).collect();
    let avoid = common::fuzz::all_pointer_layouts();
    run("fuzz_mechanism_parameters", 5, |seed| {
        let mut rng = Rng::new(seed);
        for _ in 0..64 {
            let (ty, shape) = if rng.chance(90) { rng.pick(&rows) } else { (rng.next_u64(), ParamShape::Bytes) };
            let mut keep = Keep::default();
            let mut derived: Vec<Vec<CK_DERIVED_KEY>> = Vec::new();
            let mut bufs: Vec<Vec<u8>> = Vec::new();
            let mut buf = |rng: &mut Rng| -> (*mut u8, CK_ULONG) {
                let n = rng.len(64);
                let mut v = rng.bytes(n);
                let p = if n == 0 && rng.chance(50) { null_mut() } else { v.as_mut_ptr() };
                bufs.push(v);
                (p, n as CK_ULONG)
            };
            fn raw<T>(v: &T) -> Vec<u8> {
                unsafe { std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), size_of::<T>()).to_vec() }
            }
            // The mechanism's own shape, with its pointers at real buffers of random
            // sizes; or junk. Junk never has the size of a layout that holds pointers
            // (a caller who passes such a struct with garbage pointers has broken the
            // C contract: no token can tell, so that is not a finding).
            let own = rng.chance(70);
            let mut param: Vec<u8> = match shape {
                ParamShape::Gcm if own => {
                    let (iv, ivl) = buf(&mut rng);
                    let (aad, al) = buf(&mut rng);
                    let tag = rng.ulong();
                    raw(&CK_GCM_PARAMS {
                        pIv: iv,
                        ulIvLen: ivl,
                        ulIvBits: rng.ulong(),
                        pAAD: aad,
                        ulAADLen: al,
                        ulTagBits: tag,
                    })
                }
                ParamShape::Ecdh if own => {
                    let (shared, sl) = buf(&mut rng);
                    let (public, pl) = buf(&mut rng);
                    raw(&CK_ECDH1_DERIVE_PARAMS {
                        kdf: rng.ulong(),
                        ulSharedDataLen: sl,
                        pSharedData: shared,
                        ulPublicDataLen: pl,
                        pPublicData: public,
                    })
                }
                ParamShape::Ctr if own => {
                    let mut cb = [0u8; 16];
                    cb.copy_from_slice(&rng.bytes(16));
                    raw(&CK_AES_CTR_PARAMS { ulCounterBits: rng.ulong(), cb })
                }
                ParamShape::MacLen if own => rng.ulong().to_ne_bytes().to_vec(),
                ParamShape::Pss if own => {
                    raw(&CK_RSA_PKCS_PSS_PARAMS { hashAlg: rng.ulong(), mgf: rng.ulong(), sLen: rng.ulong() })
                }
                ParamShape::Oaep if own => {
                    let (label, ll) = buf(&mut rng);
                    raw(&CK_RSA_PKCS_OAEP_PARAMS {
                        hashAlg: rng.ulong(),
                        mgf: rng.ulong(),
                        source: rng.ulong(),
                        pSourceData: label.cast(),
                        ulSourceDataLen: ll,
                    })
                }
                ParamShape::Eddsa if own => {
                    let (ctx, cl) = buf(&mut rng);
                    raw(&CK_EDDSA_PARAMS { phFlag: rng.next_u64() as u8, ulContextDataLen: cl, pContextData: ctx })
                }
                ParamShape::SignContext if own => {
                    let (ctx, cl) = buf(&mut rng);
                    raw(&CK_SIGN_ADDITIONAL_CONTEXT { hedgeVariant: rng.ulong(), pContext: ctx, ulContextLen: cl })
                }
                ParamShape::HashSignContext if own => {
                    let (ctx, cl) = buf(&mut rng);
                    let hash =
                        if rng.chance(50) { rng.pick(&[CKM_SHA256, CKM_SHA3_512, CKM_MD5]) } else { rng.ulong() };
                    raw(&CK_HASH_SIGN_ADDITIONAL_CONTEXT {
                        hedgeVariant: rng.ulong(),
                        pContext: ctx,
                        ulContextLen: cl,
                        hash,
                    })
                }
                ParamShape::Kbkdf | ParamShape::KbkdfFeedback if own => {
                    let (data, n) = prf_data(&mut rng, &mut keep);
                    let keys: Vec<CK_DERIVED_KEY> = (0..rng.below(3))
                        .map(|_| CK_DERIVED_KEY { pTemplate: null_mut(), ulAttributeCount: 0, phKey: null_mut() })
                        .collect();
                    let (kp, kn) = if keys.is_empty() && rng.chance(80) {
                        (null_mut(), 0)
                    } else {
                        (keys.as_ptr().cast_mut(), keys.len() as CK_ULONG)
                    };
                    derived.push(keys);
                    let prf = rng.pick(&[CKM_SHA256_HMAC, CKM_AES_CMAC, CKM_SHA_1_HMAC, CKM_SHA256]);
                    if shape == ParamShape::Kbkdf {
                        raw(&CK_SP800_108_KDF_PARAMS {
                            prfType: prf,
                            ulNumberOfDataParams: n,
                            pDataParams: data,
                            ulAdditionalDerivedKeys: kn,
                            pAdditionalDerivedKeys: kp,
                        })
                    } else {
                        let (iv, ivl) = buf(&mut rng);
                        raw(&CK_SP800_108_FEEDBACK_KDF_PARAMS {
                            prfType: prf,
                            ulNumberOfDataParams: n,
                            pDataParams: data,
                            ulIVLen: ivl,
                            pIV: iv,
                            ulAdditionalDerivedKeys: kn,
                            pAdditionalDerivedKeys: kp,
                        })
                    }
                }
                ParamShape::StringData if own => {
                    let (data, dl) = buf(&mut rng);
                    raw(&CK_KEY_DERIVATION_STRING_DATA { pData: data, ulLen: dl })
                }
                _ => {
                    let mut n = rng.len(100);
                    while avoid.contains(&n) {
                        n = rng.len(100);
                    }
                    rng.bytes(n)
                }
            };
            let null_with_len = rng.chance(5);
            let m = CK_MECHANISM {
                mechanism: ty,
                pParameter: if param.is_empty() || null_with_len { null_mut() } else { param.as_mut_ptr().cast() },
                ulParameterLen: if null_with_len { 1 + rng.below(64) as CK_ULONG } else { param.len() as CK_ULONG },
            };
            let got = unsafe { params::mechanism(&m) };
            let again = unsafe { params::mechanism(&m) };
            assert_eq!(got, again, "seed {seed:#x}: decoding {ty:#x} twice differs");
            match &got {
                Ok(_) | Err(Error::MechanismParamInvalid | Error::ArgumentsBad(_)) if types.contains(&ty) => {}
                Err(Error::MechanismInvalid) if !types.contains(&ty) => {}
                other => {
                    panic!("seed {seed:#x}: mechanism {ty:#x} with {} parameter bytes: {other:?}", m.ulParameterLen)
                }
            }
            drop(bufs);
            drop(keep);
            drop(derived);
        }
    });
}

/// Wrap records: random bytes, and real records with a byte flipped, cut or extended.
/// `parse` refuses anything malformed with CKR_WRAPPED_KEY_INVALID; `open` never gives
/// back a key from a record that is not the one sealed, and gives back exactly the key
/// from the one that is.
#[test]
fn fuzz_wrap_records() {
    let master = GcmKey::new(&[0x42; 32], record::TAG_LEN).expect("master");
    let other = GcmKey::new(&[0x43; 32], record::TAG_LEN).expect("other master");
    run("fuzz_wrap_records", 5, |seed| {
        let mut rng = Rng::new(seed);
        for _ in 0..64 {
            let ws_len = rng.len(40);
            let workspace: String = (0..ws_len).map(|_| char::from(b'a' + rng.below(26) as u8)).collect();
            let attrs = Template(
                (0..rng.below(5))
                    .map(|_| {
                        let n = rng.len(20);
                        Attr::new(rng.below(0x200) as CK_ATTRIBUTE_TYPE, rng.bytes(n))
                    })
                    .collect(),
            );
            let key_len = rng.pick(&[16, 24, 32]);
            let value = rng.bytes(key_len);
            let ad_len = rng.len(16);
            let ad = rng.bytes(ad_len);
            let version = rng.next_u64() as u32;
            let sealed = record::seal(&master, &workspace, version, &attrs, &value, &ad).expect("seal");
            assert_eq!(sealed.len(), record::sealed_len(&workspace, &attrs, key_len).expect("len"), "seed {seed:#x}");
            let mut r = sealed.clone();
            match rng.below(5) {
                0 => {
                    let n = rng.len(120);
                    r = rng.bytes(n);
                }
                1 => {
                    let i = rng.below(r.len());
                    r[i] ^= 1 << rng.below(8);
                }
                2 => r.truncate(rng.below(r.len())),
                3 => {
                    let n = 1 + rng.below(8);
                    r.extend(rng.bytes(n));
                }
                _ => {}
            }
            let intact = r == sealed;
            match record::parse(&r) {
                Err(Error::WrappedKeyInvalid) => assert!(!intact, "seed {seed:#x}: a sealed record does not parse"),
                Err(e) => panic!("seed {seed:#x}: parse refused with {e:?}"),
                Ok(h) => {
                    let opened = record::open(&master, &r, &h, &ad);
                    if intact {
                        assert_eq!(h.workspace, workspace);
                        assert_eq!(h.version, version);
                        assert_eq!(h.attrs, attrs);
                        assert_eq!(opened.as_deref().map(|v| v.as_slice()), Ok(value.as_slice()), "seed {seed:#x}");
                        let wrong_ad = [ad.as_slice(), b"x"].concat();
                        assert_eq!(record::open(&master, &r, &h, &wrong_ad), Err(Error::WrappedKeyInvalid));
                        assert_eq!(record::open(&other, &r, &h, &ad), Err(Error::WrappedKeyInvalid));
                    } else {
                        assert_eq!(opened, Err(Error::WrappedKeyInvalid), "seed {seed:#x}: a damaged record opened");
                    }
                }
            }
        }
    });
}

/// Values for config keys: right types, wrong types, edges.
fn toml_value(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => rng.ulong().min(i64::MAX as u64).to_string(),
        1 => format!("-{}", rng.below(1000)),
        2 => rng.pick(&["true", "false"]).into(),
        3 => rng.pick(&["\"error\"", "\"warn\"", "\"info\"", "\"debug\"", "\"trace\"", "\"loud\""]).into(),
        4 => rng.pick(&["\"per-call\"", "\"batched\"", "\"per-batch\"", "\"off\"", "\"none\""]).into(),
        5 => format!("{:?}", "x".repeat(rng.pick(&[0, 1, 32, 33, 255, 256, 300]))),
        6 => "[1, 2]".into(),
        7 => "1.5".into(),
        _ => {
            let n = rng.len(20);
            let s: String = (0..n).map(|_| char::from(32 + rng.below(95) as u8)).collect();
            format!("{s:?}")
        }
    }
}

/// A config text from the real grammar (sections and keys), with random values, keys
/// dropped and duplicated, and byte-level damage on top.
fn config_text(rng: &mut Rng) -> String {
    let mut out = String::new();
    if rng.chance(90) {
        out.push_str("store_dir = \"/tmp/cv-fuzz-store\"\n");
    }
    for key in ["log_level", "log_file"] {
        if rng.chance(40) {
            out.push_str(&format!("{key} = {}\n", toml_value(rng)));
        }
    }
    let sections: &[(&str, &[&str])] = &[
        ("[pin_policy]", &["max_failed_logins"]),
        ("[root]", &["module", "token_label", "pin_env", "pin_file"]),
        ("[rotation]", &["confidential", "public", "secret"]),
        (
            "[audit]",
            &[
                "checkpoint_every",
                "checkpoint_seconds",
                "max_checkpoint_failures",
                "data_operations",
                "session_objects",
                "batch_entries",
                "batch_ms",
                "flush_seconds",
                "alert_unwraps_per_minute",
                "alert_failed_logins_per_hour",
                "block_on_alert",
            ],
        ),
        ("[mechanisms]", &["allow_rsa_pkcs1_v15_key_transport"]),
    ];
    for _ in 0..rng.below(4) {
        let (section, keys) = rng.pick(sections);
        out.push_str(section);
        out.push('\n');
        for _ in 0..rng.below(4) {
            out.push_str(&format!("{} = {}\n", rng.pick(keys), toml_value(rng)));
        }
    }
    for _ in 0..rng.below(4) {
        out.push_str("[[workspace]]\n");
        if rng.chance(90) {
            let name =
                if rng.chance(60) { rng.pick(&["\"main\"", "\"other\"", "\"\""]).to_string() } else { toml_value(rng) };
            out.push_str(&format!("name = {name}\n"));
        }
        for key in ["label", "classification"] {
            if rng.chance(40) {
                out.push_str(&format!("{key} = {}\n", toml_value(rng)));
            }
        }
    }
    if rng.chance(20) {
        let mut bytes = out.into_bytes();
        for _ in 0..1 + rng.below(3) {
            if bytes.is_empty() {
                break;
            }
            let i = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[i] = 32 + rng.below(95) as u8,
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, rng.pick(b"[]=\"\n#.'{}")),
            }
        }
        out = String::from_utf8_lossy(&bytes).into_owned();
    }
    out
}

/// The config parser: never a panic, one line naming the problem when it refuses, and a
/// config it accepts is one the module can run: workspaces named, distinct, labels that
/// fit a token label, names that fit a wrap record's header.
#[test]
fn fuzz_config_file() {
    run("fuzz_config_file", 5, |seed| {
        let mut rng = Rng::new(seed);
        for _ in 0..64 {
            let text = config_text(&mut rng);
            match Config::parse(&text) {
                Err(why) => assert!(!why.trim().is_empty(), "seed {seed:#x}: an empty reason for refusing:\n{text}"),
                Ok(c) => {
                    assert!(!c.workspaces.is_empty(), "seed {seed:#x}");
                    for w in &c.workspaces {
                        assert!(!w.name.is_empty(), "seed {seed:#x}: an empty workspace name was accepted");
                        assert!(w.label.as_ref().is_none_or(|l| l.len() <= 32), "seed {seed:#x}");
                        let attrs = Template(Vec::new());
                        assert!(
                            record::sealed_len(&w.name, &attrs, 32).is_ok(),
                            "seed {seed:#x}: workspace name of {} bytes accepted, but no wrap record can name it:\n{text}",
                            w.name.len()
                        );
                    }
                    assert!(c.pin_policy.max_failed_logins >= 1, "seed {seed:#x}");
                    assert_eq!(Config::parse(&text).as_ref(), Ok(&c), "seed {seed:#x}: parsing twice differs");
                }
            }
        }
    });
}
