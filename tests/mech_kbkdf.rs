//! The SP 800-108 KDFs through the C ABI (`CKM_SP800_108_COUNTER_KDF`, `_FEEDBACK_KDF`,
//! `_DOUBLE_PIPELINE_KDF`, PKCS#11 3.0 §2.42): the NIST CAVP counter-mode vectors
//! (tests/fixtures/kbkdf/counter.rsp names their source) with HMAC-SHA256 and AES-CMAC,
//! feedback and double-pipeline chaining checked against the token's own `C_Sign` PRF,
//! the additional derived keys (each on a fresh PRF output, handles written back, the
//! derive-template policy applied to each), and the parameter errors.

#![allow(missing_docs, unsafe_code, clippy::undocumented_unsafe_blocks, clippy::cast_possible_truncation)]

mod common;
mod raw_mech;

use std::ptr::null_mut;

use common::Fixture;
use cryptoki_sys::*;
use raw_mech::{bool_attr, h, name, ul, Mech, Raw};

type Tmpl = Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>;

fn setup() -> (Fixture, cryptoki::session::Session) {
    let f = Fixture::new();
    let s = f.user_session(f.init_token());
    (f, s)
}

/// A session secret key that derives and signs; `sensitive` as asked.
fn base(raw: &Raw, key_type: CK_KEY_TYPE, value: &[u8], sensitive: bool, extra: Tmpl) -> CK_OBJECT_HANDLE {
    let mut t = vec![
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(key_type)),
        (CKA_VALUE, value.to_vec()),
        (CKA_DERIVE, bool_attr(true)),
        (CKA_SIGN, bool_attr(true)),
        (CKA_TOKEN, bool_attr(false)),
        (CKA_SENSITIVE, bool_attr(sensitive)),
        (CKA_EXTRACTABLE, bool_attr(true)),
    ];
    t.extend(extra);
    raw.create(&t).unwrap_or_else(|rv| panic!("C_CreateObject: {}", name(rv)))
}

/// A readable generic secret of `len` bytes.
fn readable(len: usize) -> Tmpl {
    vec![
        (CKA_CLASS, ul(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ul(CKK_GENERIC_SECRET)),
        (CKA_SENSITIVE, bool_attr(false)),
        (CKA_EXTRACTABLE, bool_attr(true)),
        (CKA_TOKEN, bool_attr(false)),
        (CKA_VALUE_LEN, ul(len as CK_ULONG)),
    ]
}

fn value(raw: &Raw, k: CK_OBJECT_HANDLE) -> Vec<u8> {
    raw.attr(k, CKA_VALUE).unwrap_or_else(|rv| panic!("CKA_VALUE: {}", name(rv)))
}

/// A `CK_PRF_DATA_PARAM` list and the values it points to, kept alive together.
#[derive(Default)]
struct Data {
    values: Vec<Vec<u8>>,
    params: Vec<CK_PRF_DATA_PARAM>,
}

fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), size_of::<T>()).to_vec() }
}

impl Data {
    fn push(mut self, ty: CK_PRF_DATA_TYPE, mut value: Vec<u8>) -> Data {
        let p = if value.is_empty() { null_mut() } else { value.as_mut_ptr().cast() };
        self.params.push(CK_PRF_DATA_PARAM { type_: ty, pValue: p, ulValueLen: value.len() as CK_ULONG });
        self.values.push(value);
        self
    }

    fn counter_var(self, width: CK_ULONG) -> Data {
        let f = CK_SP800_108_COUNTER_FORMAT { bLittleEndian: CK_FALSE, ulWidthInBits: width };
        self.push(CK_SP800_108_ITERATION_VARIABLE, bytes_of(&f))
    }

    fn chain(self) -> Data {
        self.push(CK_SP800_108_ITERATION_VARIABLE, Vec::new())
    }

    fn counter(self, width: CK_ULONG, little_endian: bool) -> Data {
        let f = CK_SP800_108_COUNTER_FORMAT { bLittleEndian: little_endian.into(), ulWidthInBits: width };
        self.push(CK_SP800_108_COUNTER, bytes_of(&f))
    }

    fn dkm(self, method: CK_ULONG, width: CK_ULONG) -> Data {
        let f =
            CK_SP800_108_DKM_LENGTH_FORMAT { dkmLengthMethod: method, bLittleEndian: CK_FALSE, ulWidthInBits: width };
        self.push(CK_SP800_108_DKM_LENGTH, bytes_of(&f))
    }

    fn bytes(self, b: &[u8]) -> Data {
        self.push(CK_SP800_108_BYTE_ARRAY, b.to_vec())
    }
}

/// Additional keys' templates in C form, with their handle slots.
struct Extra {
    values: Vec<Vec<Vec<u8>>>,
    attrs: Vec<Vec<CK_ATTRIBUTE>>,
    handles: Vec<CK_OBJECT_HANDLE>,
    keys: Vec<CK_DERIVED_KEY>,
}

impl Extra {
    fn new(templates: &[Tmpl]) -> Box<Extra> {
        let mut e = Box::new(Extra {
            values: templates.iter().map(|t| t.iter().map(|(_, v)| v.clone()).collect()).collect(),
            attrs: Vec::new(),
            handles: vec![0x5555; templates.len()],
            keys: Vec::new(),
        });
        let attrs: Vec<Vec<CK_ATTRIBUTE>> = templates
            .iter()
            .zip(e.values.iter_mut())
            .map(|(t, vals)| {
                t.iter()
                    .zip(vals.iter_mut())
                    .map(|((ty, _), v)| CK_ATTRIBUTE {
                        type_: *ty,
                        pValue: v.as_mut_ptr().cast(),
                        ulValueLen: v.len() as CK_ULONG,
                    })
                    .collect()
            })
            .collect();
        e.attrs = attrs;
        let handles = e.handles.as_mut_ptr();
        e.keys = e
            .attrs
            .iter_mut()
            .enumerate()
            .map(|(i, a)| CK_DERIVED_KEY {
                pTemplate: a.as_mut_ptr(),
                ulAttributeCount: a.len() as CK_ULONG,
                phKey: unsafe { handles.add(i) },
            })
            .collect();
        e
    }

    fn ptr(&mut self) -> (CK_ULONG, *mut CK_DERIVED_KEY) {
        if self.keys.is_empty() {
            (0, null_mut())
        } else {
            (self.keys.len() as CK_ULONG, self.keys.as_mut_ptr())
        }
    }
}

fn counter_mech(prf: CK_MECHANISM_TYPE, data: &mut Data, extra: Option<&mut Extra>) -> Mech {
    let (n, keys) = extra.map_or((0, null_mut()), Extra::ptr);
    Mech::with(
        CKM_SP800_108_COUNTER_KDF,
        &CK_SP800_108_KDF_PARAMS {
            prfType: prf,
            ulNumberOfDataParams: data.params.len() as CK_ULONG,
            pDataParams: data.params.as_mut_ptr(),
            ulAdditionalDerivedKeys: n,
            pAdditionalDerivedKeys: keys,
        },
    )
}

/// One CAVP case: (PRF, counter width in bits, KI, fixed input, KO).
type Case = (CK_MECHANISM_TYPE, CK_ULONG, Vec<u8>, Vec<u8>, Vec<u8>);

fn cavp_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kbkdf/counter.rsp"))
        .expect("fixture");
    let (mut prf, mut rlen, mut ki, mut fixed) = (0, 0, Vec::new(), Vec::new());
    let mut cases = Vec::new();
    for line in text.lines().map(str::trim) {
        match line {
            "[PRF=HMAC_SHA256]" => prf = CKM_SHA256_HMAC,
            "[PRF=CMAC_AES128]" => prf = CKM_AES_CMAC,
            "[RLEN=32_BITS]" => rlen = 32,
            "[RLEN=8_BITS]" => rlen = 8,
            _ => {
                if let Some(v) = line.strip_prefix("KI = ") {
                    ki = h(v);
                } else if let Some(v) = line.strip_prefix("FixedInputData = ") {
                    fixed = h(v);
                } else if let Some(v) = line.strip_prefix("KO = ") {
                    cases.push((prf, rlen, ki.clone(), fixed.clone(), h(v)));
                }
            }
        }
    }
    cases
}

#[test]
fn nist_cavp_counter_mode_vectors_derive_through_c_derive_key() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let cases = cavp_cases();
    assert_eq!(cases.len(), 8, "the fixture's cases");
    for (i, (prf, rlen, ki, fixed, ko)) in cases.into_iter().enumerate() {
        let key_type = if prf == CKM_AES_CMAC { CKK_AES } else { CKK_GENERIC_SECRET };
        let k = base(&raw, key_type, &ki, true, vec![]);
        let mut data = Data::default().counter_var(rlen).bytes(&fixed);
        let mut m = counter_mech(prf, &mut data, None);
        let out = raw.derive(&mut m, k, &readable(ko.len())).unwrap_or_else(|rv| panic!("case {i}: {}", name(rv)));
        assert_eq!(value(&raw, out), ko, "case {i}");
    }
}

#[test]
fn feedback_and_double_pipeline_chain_as_sp_800_108_says() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let key = [0x0b; 32];
    let k = base(&raw, CKK_GENERIC_SECRET, &key, false, vec![]);
    let prf = |parts: &[&[u8]]| raw.sign(&mut Mech::plain(CKM_SHA256_HMAC), k, &parts.concat()).expect("C_Sign");

    // Feedback, with the optional counter (16 bits, little-endian) after K(i-1).
    let mut iv = *b"an initial value";
    let mut data = Data::default().chain().counter(16, true).bytes(b"label\0context");
    let mut m = Mech::with(
        CKM_SP800_108_FEEDBACK_KDF,
        &CK_SP800_108_FEEDBACK_KDF_PARAMS {
            prfType: CKM_SHA256_HMAC,
            ulNumberOfDataParams: data.params.len() as CK_ULONG,
            pDataParams: data.params.as_mut_ptr(),
            ulIVLen: iv.len() as CK_ULONG,
            pIV: iv.as_mut_ptr(),
            ulAdditionalDerivedKeys: 0,
            pAdditionalDerivedKeys: null_mut(),
        },
    );
    let out = raw.derive(&mut m, k, &readable(40)).expect("feedback");
    let k1 = prf(&[&iv, &[1, 0], b"label\0context"]);
    let k2 = prf(&[&k1, &[2, 0], b"label\0context"]);
    assert_eq!(value(&raw, out), [k1, k2].concat()[..40]);

    // Double pipeline: A(0) is the fixed input without the counter.
    let mut data =
        Data::default().chain().counter(8, false).bytes(b"fixed").dkm(CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, 16);
    let mut m = Mech::with(
        CKM_SP800_108_DOUBLE_PIPELINE_KDF,
        &CK_SP800_108_KDF_PARAMS {
            prfType: CKM_SHA256_HMAC,
            ulNumberOfDataParams: data.params.len() as CK_ULONG,
            pDataParams: data.params.as_mut_ptr(),
            ulAdditionalDerivedKeys: 0,
            pAdditionalDerivedKeys: null_mut(),
        },
    );
    let out = raw.derive(&mut m, k, &readable(48)).expect("double pipeline");
    let l = [0x01, 0x80]; // 48 bytes = 384 bits
    let a1 = prf(&[b"fixed", &l]);
    let k1 = prf(&[&a1, &[1], b"fixed", &l]);
    let a2 = prf(&[&a1]);
    let k2 = prf(&[&a2, &[2], b"fixed", &l]);
    assert_eq!(value(&raw, out), [k1, k2].concat()[..48]);
}

#[test]
fn additional_keys_get_handles_and_each_starts_on_a_fresh_prf_output() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let k = base(&raw, CKK_GENERIC_SECRET, &[0x42; 32], false, vec![]);
    let mut aes = readable(32);
    aes[1].1 = ul(CKK_AES);
    let mut extra = Extra::new(&[readable(20), aes]);
    let mut data = Data::default().counter_var(32).bytes(b"ctx");
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    let primary = raw.derive(&mut m, k, &readable(16)).expect("three keys");
    // Without a DKM length the PRF input does not depend on the lengths: one long key
    // from the same parameter is the same stream.
    let mut data = Data::default().counter_var(32).bytes(b"ctx");
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, None);
    let stream = value(&raw, raw.derive(&mut m, k, &readable(96)).expect("the stream"));
    assert_eq!(value(&raw, primary), stream[..16]);
    assert_eq!(value(&raw, extra.handles[0]), stream[32..52], "the second key starts on block 2");
    assert_eq!(value(&raw, extra.handles[1]), stream[64..96], "the third on block 3");
    assert_eq!(raw.attr(extra.handles[1], CKA_KEY_TYPE), Ok(ul(CKK_AES)));

    // With a DKM length, L covers every key: sum of keys = (16+20+32)*8 = 544 bits;
    // sum of segments = 3 blocks = 768 bits.
    for (method, l) in [(CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, 544u32), (CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS, 768)] {
        let mut extra = Extra::new(&[readable(20), readable(32)]);
        let mut data = Data::default().counter_var(32).bytes(b"ctx").dkm(method, 32);
        let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
        let primary = raw.derive(&mut m, k, &readable(16)).expect("with [L]");
        let prf = |i: u32| {
            let input = [&i.to_be_bytes()[..], b"ctx", &l.to_be_bytes()].concat();
            raw.sign(&mut Mech::plain(CKM_SHA256_HMAC), k, &input).expect("C_Sign")
        };
        assert_eq!(value(&raw, primary), prf(1)[..16], "method {method}");
        assert_eq!(value(&raw, extra.handles[0]), prf(2)[..20], "method {method}");
        assert_eq!(value(&raw, extra.handles[1]), prf(3), "method {method}");
    }
}

#[test]
fn every_derived_key_answers_to_the_derive_template_and_keeps_the_base_key_s_history() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let mut nested = [CK_ATTRIBUTE { type_: CKA_SENSITIVE, pValue: null_mut(), ulValueLen: 1 }];
    let mut yes = [CK_TRUE];
    nested[0].pValue = yes.as_mut_ptr().cast();
    let nested_bytes: Vec<u8> = bytes_of(&nested);
    let k = base(&raw, CKK_GENERIC_SECRET, &[0x17; 32], true, vec![(CKA_DERIVE_TEMPLATE, nested_bytes)]);
    let hidden = |len: usize| {
        let mut t = readable(len);
        t[2].1 = bool_attr(true);
        t
    };

    // An additional key asking to be readable contradicts the base key's template: the
    // call fails, that handle (and every other) reads CK_INVALID_HANDLE, no key is made.
    let mut extra = Extra::new(&[hidden(16), readable(16)]);
    let mut data = Data::default().counter_var(32);
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    assert_eq!(raw.derive(&mut m, k, &hidden(16)), Err(CKR_TEMPLATE_INCONSISTENT));
    assert_eq!(extra.handles, [CK_INVALID_HANDLE, CK_INVALID_HANDLE]);

    let mut extra = Extra::new(&[hidden(16), hidden(24)]);
    let mut data = Data::default().counter_var(32);
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    let primary = raw.derive(&mut m, k, &hidden(16)).expect("all sensitive");
    // The base key was imported, so it was not always sensitive, and neither are they.
    assert_eq!(raw.attr(k, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(false)));
    for (i, key) in [primary, extra.handles[0], extra.handles[1]].into_iter().enumerate() {
        assert_eq!(raw.attr(key, CKA_SENSITIVE), Ok(bool_attr(true)), "key {i}");
        assert_eq!(raw.attr(key, CKA_ALWAYS_SENSITIVE), Ok(bool_attr(false)), "key {i}: as the base key");
        assert_eq!(raw.attr(key, CKA_LOCAL), Ok(bool_attr(false)), "key {i}");
        assert_eq!(raw.attr(key, CKA_VALUE), Err(CKR_ATTRIBUTE_SENSITIVE), "key {i}");
    }
    assert_eq!(raw.attr(extra.handles[1], CKA_VALUE_LEN), Ok(ul(24)));

    // An additional key without a length cannot be made.
    let mut no_len = hidden(16);
    no_len.retain(|(t, _)| *t != CKA_VALUE_LEN);
    let mut extra = Extra::new(&[no_len]);
    let mut data = Data::default().counter_var(32);
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    assert_eq!(raw.derive(&mut m, k, &hidden(16)), Err(CKR_TEMPLATE_INCOMPLETE));
    assert_eq!(extra.handles, [CK_INVALID_HANDLE]);
}

#[test]
fn malformed_kbkdf_parameters_are_param_invalid() {
    let (_f, s) = setup();
    let raw = Raw::new(s.handle());
    let k = base(&raw, CKK_GENERIC_SECRET, &[1; 32], false, vec![]);
    let bad_width = {
        let f = CK_SP800_108_COUNTER_FORMAT { bLittleEndian: CK_FALSE, ulWidthInBits: 12 };
        Data::default().push(CK_SP800_108_ITERATION_VARIABLE, bytes_of(&f))
    };
    let cases: Vec<(&str, CK_MECHANISM_TYPE, Data)> = vec![
        ("no iteration variable", CKM_SHA256_HMAC, Data::default().bytes(b"x")),
        ("a chaining value in counter mode", CKM_SHA256_HMAC, Data::default().chain()),
        ("a 12-bit counter", CKM_SHA256_HMAC, bad_width),
        ("two iteration variables", CKM_SHA256_HMAC, Data::default().counter_var(32).counter_var(32)),
        ("an optional counter in counter mode", CKM_SHA256_HMAC, Data::default().counter_var(32).counter(8, false)),
        ("an unknown DKM method", CKM_SHA256_HMAC, Data::default().counter_var(32).dkm(7, 32)),
        ("an unknown data type", CKM_SHA256_HMAC, Data::default().counter_var(32).push(99, vec![1])),
        ("a digest as the PRF", CKM_SHA256, Data::default().counter_var(32)),
        ("no data parameters", CKM_SHA256_HMAC, Data::default()),
    ];
    for (what, prf, mut data) in cases {
        let mut m = counter_mech(prf, &mut data, None);
        assert_eq!(raw.derive(&mut m, k, &readable(16)), Err(CKR_MECHANISM_PARAM_INVALID), "{what}");
    }
    // An 8-bit counter numbers at most 255 blocks: 64 keys of 512 bytes need 1,024.
    let mut extra = Extra::new(&vec![readable(512); 63]);
    let mut data = Data::default().counter_var(8);
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    assert_eq!(raw.derive(&mut m, k, &readable(512)), Err(CKR_MECHANISM_PARAM_INVALID), "1,024 blocks");
    assert!(extra.handles.iter().all(|h| *h == CK_INVALID_HANDLE));
    let mut data = Data::default().counter_var(32);
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    raw.derive(&mut m, k, &readable(512)).expect("64 keys under a 32-bit counter");
    assert!(extra.handles.iter().all(|h| *h != CK_INVALID_HANDLE));
    // No key is longer than a generic secret may be (512 bytes).
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, None);
    assert_eq!(raw.derive(&mut m, k, &readable(513)), Err(CKR_KEY_SIZE_RANGE));
    // Additional keys: a NULL handle pointer, a count without an array.
    let mut extra = Extra::new(&[readable(16)]);
    extra.keys[0].phKey = null_mut();
    let mut data = Data::default().counter_var(32);
    let mut m = counter_mech(CKM_SHA256_HMAC, &mut data, Some(&mut extra));
    assert_eq!(raw.derive(&mut m, k, &readable(16)), Err(CKR_MECHANISM_PARAM_INVALID), "NULL phKey");
    let mut data = Data::default().counter_var(32);
    let mut p = CK_SP800_108_KDF_PARAMS {
        prfType: CKM_SHA256_HMAC,
        ulNumberOfDataParams: 1,
        pDataParams: data.params.as_mut_ptr(),
        ulAdditionalDerivedKeys: 2,
        pAdditionalDerivedKeys: null_mut(),
    };
    let mut m = Mech::with(CKM_SP800_108_COUNTER_KDF, &p);
    assert_eq!(raw.derive(&mut m, k, &readable(16)), Err(CKR_MECHANISM_PARAM_INVALID), "count, no array");
    // The primary key needs a length too.
    p.ulAdditionalDerivedKeys = 0;
    let mut m = Mech::with(CKM_SP800_108_COUNTER_KDF, &p);
    let mut t = readable(16);
    t.pop();
    assert_eq!(raw.derive(&mut m, k, &t), Err(CKR_TEMPLATE_INCOMPLETE));
    // The wrong layout for the mechanism.
    let mut m = Mech::with(CKM_SP800_108_FEEDBACK_KDF, &p);
    assert_eq!(raw.derive(&mut m, k, &readable(16)), Err(CKR_MECHANISM_PARAM_INVALID), "counter layout to feedback");
}

#[test]
fn the_three_kdfs_are_listed_as_derive_mechanisms() {
    let (f, s) = setup();
    let raw = Raw::new(s.handle());
    let slot = f.slot().id();
    let listed = raw.mechanisms(slot);
    for ty in [CKM_SP800_108_COUNTER_KDF, CKM_SP800_108_FEEDBACK_KDF, CKM_SP800_108_DOUBLE_PIPELINE_KDF] {
        assert!(listed.contains(&ty), "{ty:#x} listed");
        let info = raw.info(slot, ty).expect("info");
        assert_eq!(info.flags, CKF_DERIVE, "{ty:#x}");
    }
}
