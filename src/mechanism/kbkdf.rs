//! The SP 800-108 key-based KDFs (PKCS#11 3.0 §2.42, "SP 800-108 Key Derivation"):
//! `CKM_SP800_108_COUNTER_KDF`, `CKM_SP800_108_FEEDBACK_KDF` and
//! `CKM_SP800_108_DOUBLE_PIPELINE_KDF`, over the HMACs (SHA-1, SHA-2, SHA-3) and AES-CMAC
//! as their PRF, run through the same HMAC and CMAC code as `C_Sign`.
//!
//! The PRF input is the caller's `CK_PRF_DATA_PARAM` list in the caller's order: the
//! iteration variable (the counter in counter mode; the chaining value `K(i-1)` or `A(i)`
//! in the other two), an optional counter (not in counter mode), at most one DKM length
//! and any number of byte arrays. One call may make several keys (the primary key plus
//! `CK_DERIVED_KEY`s): each key starts on a fresh PRF output (no two keys share one PRF
//! invocation, §2.42.7), and the keys take the stream in order, primary first.
//!
//! Every parameter error is `CKR_MECHANISM_PARAM_INVALID`, checked before any key is
//! read; a stream the counter's width cannot number is refused the same way (SP 800-108
//! §5: n ≤ 2^r − 1).

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::hash::HashAlg;
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::secret_key::MAX_GENERIC_LEN;
use super::Mechanism;
use crate::error::{Error, Result};

/// The secret keys a KBKDF takes as its PRF key: any secret the PRF accepts (AES-CMAC
/// checks the length).
const BASE_TYPES: &[CK_KEY_TYPE] = &[
    CKK_GENERIC_SECRET,
    CKK_AES,
    CKK_SHA_1_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
];

const fn row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 1, max_key: MAX_GENERIC_LEN as CK_ULONG, flags: CKF_DERIVE },
        key: KeyNeed::Secret(BASE_TYPES),
        param: if ty == CKM_SP800_108_FEEDBACK_KDF { ParamShape::KbkdfFeedback } else { ParamShape::Kbkdf },
        build,
        ops: Ops { derive_keys: Some(derive_keys_op), ..Ops::NONE },
    }
}

/// Registry rows (key sizes in bytes).
pub const ENTRIES: &[MechEntry] =
    &[row(CKM_SP800_108_COUNTER_KDF), row(CKM_SP800_108_FEEDBACK_KDF), row(CKM_SP800_108_DOUBLE_PIPELINE_KDF)];

/// Most keys one call makes (the primary and the additional ones): a bound on what a
/// caller's count can make the token allocate.
pub const MAX_KEYS: usize = 64;

/// `CK_SP800_108_COUNTER_FORMAT` as the caller gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterFormat {
    /// `bLittleEndian` (must be `CK_TRUE` or `CK_FALSE`).
    pub little_endian: CK_BBOOL,
    /// `ulWidthInBits`.
    pub width_bits: CK_ULONG,
}

/// `CK_SP800_108_DKM_LENGTH_FORMAT` as the caller gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DkmFormat {
    /// `dkmLengthMethod`.
    pub method: CK_ULONG,
    /// `bLittleEndian`.
    pub little_endian: CK_BBOOL,
    /// `ulWidthInBits`.
    pub width_bits: CK_ULONG,
}

/// One `CK_PRF_DATA_PARAM`, its value read by its type but not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataParam {
    /// `CK_SP800_108_ITERATION_VARIABLE`: a counter format in counter mode, no value in
    /// the other modes.
    Iteration(Option<CounterFormat>),
    /// `CK_SP800_108_COUNTER` (the optional counter of feedback and double-pipeline mode).
    Counter(CounterFormat),
    /// `CK_SP800_108_DKM_LENGTH`.
    DkmLength(DkmFormat),
    /// `CK_SP800_108_BYTE_ARRAY`.
    Bytes(Vec<u8>),
}

/// An integer's encoding in the PRF input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    little_endian: bool,
    bytes: usize,
}

impl Encoding {
    /// Checks a width (a whole number of bytes, 1..=`max_bits`) and endianness flag.
    fn new(little_endian: CK_BBOOL, width_bits: CK_ULONG, max_bits: CK_ULONG) -> Result<Encoding> {
        let little_endian = match little_endian {
            CK_TRUE => true,
            CK_FALSE => false,
            _ => return Err(Error::MechanismParamInvalid),
        };
        if width_bits == 0 || width_bits % 8 != 0 || width_bits > max_bits {
            return Err(Error::MechanismParamInvalid);
        }
        let bytes = usize::try_from(width_bits / 8).map_err(|_| Error::MechanismParamInvalid)?;
        Ok(Encoding { little_endian, bytes })
    }

    /// `value` in this width, or an error if it does not fit.
    fn encode(self, value: u64) -> Result<Vec<u8>> {
        if self.bytes < 8 && value >> (8 * self.bytes) != 0 {
            return Err(Error::MechanismParamInvalid);
        }
        let be = value.to_be_bytes();
        let mut out = be[8 - self.bytes..].to_vec();
        if self.little_endian {
            out.reverse();
        }
        Ok(out)
    }

    /// The largest count this width holds.
    fn max(self) -> u64 {
        if self.bytes >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.bytes)) - 1
        }
    }
}

/// A checked PRF input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The counter `i` (counter mode's iteration variable, or the optional counter).
    Counter(Encoding),
    /// The chaining value (feedback: `K(i-1)`, the IV first; double pipeline: `A(i)`).
    Chain,
    /// `[L]`: the derived keying material's length in bits.
    DkmLength {
        /// Its encoding.
        encoding: Encoding,
        /// `CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS` (else the sum of the keys).
        segments: bool,
    },
    /// Fixed bytes.
    Bytes(Vec<u8>),
}

/// The three SP 800-108 constructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// §5.1: `K(i) = PRF(K, [i] …)`.
    Counter,
    /// §5.2: `K(i) = PRF(K, K(i-1) …)`, `K(0)` the IV.
    Feedback(Vec<u8>),
    /// §5.3: `A(i) = PRF(K, A(i-1))`, `A(0)` the fixed input; `K(i) = PRF(K, A(i) …)`.
    DoublePipeline,
}

impl Mode {
    /// The `CKM_SP800_108_*` mechanism of this mode.
    pub fn mechanism(&self) -> CK_MECHANISM_TYPE {
        match self {
            Mode::Counter => CKM_SP800_108_COUNTER_KDF,
            Mode::Feedback(_) => CKM_SP800_108_FEEDBACK_KDF,
            Mode::DoublePipeline => CKM_SP800_108_DOUBLE_PIPELINE_KDF,
        }
    }
}

/// The PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// `CKM_<hash>_HMAC`.
    Hmac(HashAlg),
    /// `CKM_AES_CMAC`.
    AesCmac,
}

impl Prf {
    fn from_mech(ty: CK_MECHANISM_TYPE) -> Option<Prf> {
        match ty {
            CKM_AES_CMAC => Some(Prf::AesCmac),
            _ => match super::hmac::from_mech(ty) {
                Some((hash, false)) => Some(Prf::Hmac(hash)),
                _ => None,
            },
        }
    }

    /// `h`: bytes of one PRF output.
    fn output_len(self) -> usize {
        match self {
            Prf::Hmac(hash) => hash.output_len(),
            Prf::AesCmac => 16,
        }
    }

    /// One PRF invocation over the concatenation of `parts`.
    fn run(self, key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>> {
        let mut mac = match self {
            Prf::Hmac(hash) => super::hmac::signer(hash, key, None)?,
            Prf::AesCmac => super::aes_cmac::signer(key, None)?,
        };
        for part in parts {
            mac.update(part)?;
        }
        Ok(Zeroizing::new(mac.finish()?))
    }
}

/// A KBKDF's parameter, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbkdfParams {
    /// The construction.
    pub mode: Mode,
    /// The PRF.
    pub prf: Prf,
    /// The PRF input fields, in the caller's order.
    pub fields: Vec<Field>,
    /// How many `CK_DERIVED_KEY`s the parameter carries besides the primary key.
    pub additional_keys: usize,
}

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Kbkdf { prf, data, iv, additional_keys } = p else {
        return Err(Error::MechanismParamInvalid);
    };
    let mode = match (ty, iv) {
        (CKM_SP800_108_COUNTER_KDF, None) => Mode::Counter,
        (CKM_SP800_108_FEEDBACK_KDF, Some(iv)) => Mode::Feedback(iv),
        (CKM_SP800_108_DOUBLE_PIPELINE_KDF, None) => Mode::DoublePipeline,
        _ => return Err(Error::MechanismParamInvalid),
    };
    let prf = Prf::from_mech(prf).ok_or(Error::MechanismParamInvalid)?;
    if additional_keys >= MAX_KEYS {
        return Err(Error::MechanismParamInvalid);
    }
    let fields = check_fields(&mode, data)?;
    Ok(Mechanism::Kbkdf(KbkdfParams { mode, prf, fields, additional_keys }))
}

/// The data parameters, checked against the mode: exactly one iteration variable (a
/// counter format in counter mode, no value otherwise), no optional counter in counter
/// mode and at most one elsewhere, at most one DKM length; counters 8 to 32 bits, DKM
/// lengths 8 to 64, whole bytes.
fn check_fields(mode: &Mode, data: Vec<DataParam>) -> Result<Vec<Field>> {
    let counter_mode = *mode == Mode::Counter;
    let (mut iterations, mut counters, mut dkms) = (0, 0, 0);
    let mut fields = Vec::with_capacity(data.len());
    for d in data {
        fields.push(match d {
            DataParam::Iteration(format) => {
                iterations += 1;
                match (counter_mode, format) {
                    (true, Some(f)) => Field::Counter(Encoding::new(f.little_endian, f.width_bits, 32)?),
                    (false, None) => Field::Chain,
                    _ => return Err(Error::MechanismParamInvalid),
                }
            }
            DataParam::Counter(f) if !counter_mode => {
                counters += 1;
                Field::Counter(Encoding::new(f.little_endian, f.width_bits, 32)?)
            }
            DataParam::Counter(_) => return Err(Error::MechanismParamInvalid),
            DataParam::DkmLength(f) => {
                dkms += 1;
                let segments = match f.method {
                    CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS => false,
                    CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS => true,
                    _ => return Err(Error::MechanismParamInvalid),
                };
                Field::DkmLength { encoding: Encoding::new(f.little_endian, f.width_bits, 64)?, segments }
            }
            DataParam::Bytes(b) => Field::Bytes(b),
        });
    }
    if iterations != 1 || counters > 1 || dkms > 1 {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(fields)
}

fn derive_keys_op(m: &Mechanism, base: &dyn KeyView, lens: &[usize]) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let Mechanism::Kbkdf(p) = m else { return Err(Error::MechanismInvalid) };
    derive(p, &base.secret()?, lens)
}

/// The keys of lengths `lens` (primary first) from the PRF key `key`.
pub fn derive(p: &KbkdfParams, key: &[u8], lens: &[usize]) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let h = p.prf.output_len();
    // No secret key of this token is longer than a generic secret may be; the bound also
    // keeps a caller's length from sizing the stream.
    if lens.is_empty() || lens.iter().any(|l| *l == 0 || *l > MAX_GENERIC_LEN) {
        return Err(Error::KeySizeRange);
    }
    // Each key takes whole PRF outputs; the last one's tail is discarded.
    let blocks: Vec<usize> = lens.iter().map(|l| l.div_ceil(h)).collect();
    let n: usize = blocks.iter().sum();
    let bits = |bytes: usize| u64::try_from(bytes).ok().and_then(|b| b.checked_mul(8)).ok_or(Error::KeySizeRange);
    let sum_of_keys = bits(lens.iter().sum())?;
    let sum_of_segments = bits(n.checked_mul(h).ok_or(Error::KeySizeRange)?)?;
    let fixed = Fixed { p, sum_of_keys, sum_of_segments };
    let limit = p.fields.iter().find_map(|f| if let Field::Counter(e) = f { Some(e.max()) } else { None });
    if u64::try_from(n).map_err(|_| Error::KeySizeRange)? > limit.unwrap_or(u64::from(u32::MAX)) {
        return Err(Error::MechanismParamInvalid);
    }
    let stream = stream(&fixed, key, n)?;
    let mut keys = Vec::with_capacity(lens.len());
    let mut at = 0;
    for (len, count) in lens.iter().zip(blocks) {
        keys.push(Zeroizing::new(stream[at..at + len].to_vec()));
        at += count * h;
    }
    Ok(keys)
}

/// What every PRF input shares.
struct Fixed<'a> {
    p: &'a KbkdfParams,
    sum_of_keys: u64,
    sum_of_segments: u64,
}

impl Fixed<'_> {
    /// The PRF input for iteration `i` with chaining value `chain`; `with_counter: false`
    /// leaves the counter out (double pipeline's `A(0)`).
    /// Zeroized: in feedback mode it holds the previous output, key material.
    fn input(&self, i: u64, chain: &[u8], with_counter: bool) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::new());
        for f in &self.p.fields {
            match f {
                Field::Counter(e) if with_counter => out.extend(e.encode(i)?),
                Field::Counter(_) => {}
                Field::Chain => out.extend_from_slice(chain),
                Field::DkmLength { encoding, segments } => {
                    out.extend(encoding.encode(if *segments { self.sum_of_segments } else { self.sum_of_keys })?)
                }
                Field::Bytes(b) => out.extend_from_slice(b),
            }
        }
        Ok(out)
    }
}

/// `n` PRF outputs, concatenated.
fn stream(f: &Fixed<'_>, key: &[u8], n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let prf = f.p.prf;
    let mut out = Zeroizing::new(Vec::with_capacity(n * prf.output_len()));
    let mut chain: Zeroizing<Vec<u8>> = match &f.p.mode {
        Mode::Feedback(iv) => Zeroizing::new(iv.clone()),
        // A(0): the fixed input without the counter, the chaining value empty.
        Mode::DoublePipeline => f.input(0, &[], false)?,
        Mode::Counter => Zeroizing::new(Vec::new()),
    };
    for i in 1..=n as u64 {
        let block = match &f.p.mode {
            Mode::Counter => prf.run(key, &[&f.input(i, &[], true)?])?,
            Mode::Feedback(_) => {
                let k = prf.run(key, &[&f.input(i, &chain, true)?])?;
                chain = k.clone();
                k
            }
            Mode::DoublePipeline => {
                chain = prf.run(key, &[&chain])?;
                prf.run(key, &[&f.input(i, &chain, true)?])?
            }
        };
        out.extend_from_slice(&block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    fn counter(width: CK_ULONG) -> DataParam {
        DataParam::Iteration(Some(CounterFormat { little_endian: CK_FALSE, width_bits: width }))
    }

    fn dkm(method: CK_ULONG, width: CK_ULONG) -> DataParam {
        DataParam::DkmLength(DkmFormat { method, little_endian: CK_FALSE, width_bits: width })
    }

    fn params(ty: CK_MECHANISM_TYPE, prf: CK_MECHANISM_TYPE, data: Vec<DataParam>, iv: Option<Vec<u8>>) -> KbkdfParams {
        match build(ty, Param::Kbkdf { prf, data, iv, additional_keys: 0 }) {
            Ok(Mechanism::Kbkdf(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    // NIST CAVP KBKDF (SP 800-108) counter mode, "KDFCTR_gen.txt" as carried by
    // pyca/cryptography, vectors/cryptography_vectors/KDF/nist-800-108-KBKDF-CTR.txt:
    // [PRF=HMAC_SHA256] [CTRLOCATION=BEFORE_FIXED] [RLEN=32_BITS] COUNT=0, L=128.
    #[test]
    fn cavp_counter_hmac_sha256_before_fixed() {
        let ki = h("dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0");
        let fixed = h("01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b864a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac");
        let p = params(CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(32), DataParam::Bytes(fixed)], None);
        let keys = derive(&p, &ki, &[16]).expect("derive");
        assert_eq!(hex::encode(&*keys[0]), "10621342bfb0fd40046c0e29f2cfdbf0");
    }

    #[test]
    fn keys_start_on_fresh_prf_outputs_and_share_one_length() {
        let p = params(
            CKM_SP800_108_COUNTER_KDF,
            CKM_SHA256_HMAC,
            vec![counter(8), DataParam::Bytes(b"label".to_vec()), dkm(CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, 16)],
            None,
        );
        let keys = derive(&p, &[7; 32], &[16, 40]).expect("derive");
        // [L] = (16 + 40) * 8 = 448 = 0x01c0; blocks 1, then 2 and 3.
        let block =
            |i: u8| Prf::Hmac(HashAlg::Sha256).run(&[7; 32], &[&[i], b"label", &[0x01, 0xc0]]).expect("prf").to_vec();
        assert_eq!(&*keys[0], &block(1)[..16]);
        assert_eq!(&*keys[1], &[block(2), block(3)].concat()[..40]);
    }

    #[test]
    fn feedback_chains_from_the_iv_and_pipeline_from_the_fixed_input() {
        let key = [9u8; 16];
        let cmac = |parts: &[&[u8]]| Prf::AesCmac.run(&key, parts).expect("prf").to_vec();
        let p = params(
            CKM_SP800_108_FEEDBACK_KDF,
            CKM_AES_CMAC,
            vec![DataParam::Iteration(None), DataParam::Bytes(b"ctx".to_vec())],
            Some(vec![1; 16]),
        );
        let k1 = cmac(&[&[1; 16], b"ctx"]);
        let k2 = cmac(&[&k1, b"ctx"]);
        assert_eq!(&*derive(&p, &key, &[20]).expect("feedback")[0], &[k1, k2].concat()[..20]);

        let counter16 = DataParam::Counter(CounterFormat { little_endian: CK_TRUE, width_bits: 16 });
        let data = vec![DataParam::Iteration(None), counter16, DataParam::Bytes(b"fx".to_vec())];
        let p = params(CKM_SP800_108_DOUBLE_PIPELINE_KDF, CKM_AES_CMAC, data, None);
        let a1 = cmac(&[b"fx"]);
        let k1 = cmac(&[&a1, &[1, 0], b"fx"]);
        let a2 = cmac(&[&a1]);
        let k2 = cmac(&[&a2, &[2, 0], b"fx"]);
        assert_eq!(&*derive(&p, &key, &[32]).expect("pipeline")[0], &[k1, k2].concat()[..]);
    }

    #[test]
    fn malformed_parameters_are_param_invalid() {
        let bad_counter = |le, w| DataParam::Iteration(Some(CounterFormat { little_endian: le, width_bits: w }));
        // (mechanism, PRF, data parameters, feedback IV)
        type Case = (CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, Vec<DataParam>, Option<Vec<u8>>);
        let cases: Vec<Case> = vec![
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![DataParam::Iteration(None)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(32), counter(32)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![bad_counter(CK_FALSE, 12)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![bad_counter(CK_FALSE, 40)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![bad_counter(2, 32)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(32), dkm(3, 32)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(32), dkm(1, 72)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(32), dkm(1, 32), dkm(2, 32)], None),
            (
                CKM_SP800_108_COUNTER_KDF,
                CKM_SHA256_HMAC,
                vec![counter(32), DataParam::Counter(CounterFormat { little_endian: 0, width_bits: 8 })],
                None,
            ),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC_GENERAL, vec![counter(32)], None),
            (CKM_SP800_108_COUNTER_KDF, CKM_SHA256, vec![counter(32)], None),
            (CKM_SP800_108_FEEDBACK_KDF, CKM_SHA256_HMAC, vec![counter(32)], Some(vec![])),
            (CKM_SP800_108_FEEDBACK_KDF, CKM_SHA256_HMAC, vec![DataParam::Iteration(None)], None),
            (CKM_SP800_108_DOUBLE_PIPELINE_KDF, CKM_SHA256_HMAC, vec![], None),
        ];
        for (i, (ty, prf, data, iv)) in cases.into_iter().enumerate() {
            let got = build(ty, Param::Kbkdf { prf, data, iv, additional_keys: 0 });
            assert_eq!(got.unwrap_err(), Error::MechanismParamInvalid, "case {i}");
        }
    }

    #[test]
    fn a_counter_too_narrow_for_the_output_is_refused() {
        let p = params(CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(8)], None);
        assert!(derive(&p, &[1; 32], &[MAX_GENERIC_LEN; 15]).is_ok(), "15 keys of 16 blocks: 240 blocks");
        let too_many = [MAX_GENERIC_LEN; 16];
        assert_eq!(derive(&p, &[1; 32], &too_many).unwrap_err(), Error::MechanismParamInvalid, "256 blocks");
        assert_eq!(derive(&p, &[1; 32], &[MAX_GENERIC_LEN + 1]).unwrap_err(), Error::KeySizeRange);
        assert_eq!(derive(&p, &[1; 32], &[0]).unwrap_err(), Error::KeySizeRange);
        let p = params(CKM_SP800_108_COUNTER_KDF, CKM_SHA256_HMAC, vec![counter(8), dkm(1, 8)], None);
        assert_eq!(derive(&p, &[1; 32], &[32]).unwrap_err(), Error::MechanismParamInvalid, "[L] = 256 in 8 bits");
    }
}
