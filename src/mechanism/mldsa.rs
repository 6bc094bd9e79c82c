//! `CKM_ML_DSA_KEY_PAIR_GEN`, `CKM_ML_DSA` and the HashML-DSA mechanisms
//! (`CKM_HASH_ML_DSA`, `CKM_HASH_ML_DSA_SHA224` … `CKM_HASH_ML_DSA_SHAKE256`):
//! ML-DSA-44/65/87 signatures (FIPS 204), over the RustCrypto `ml-dsa` crate.
//!
//! PKCS#11 3.2 encodings for `CKK_ML_DSA`: `CKA_PARAMETER_SET` is `CKP_ML_DSA_44/65/87`;
//! a public key's `CKA_VALUE` is the FIPS 204 `pkEncode` output; a private key's
//! `CKA_VALUE` is the *expanded* `skEncode` output and its optional `CKA_SEED` the 32-byte
//! `ξ` of `ML-DSA.KeyGen_internal`. The crate deprecates the expanded form (its decoder
//! does not validate and may panic on a malformed key), so an imported expanded key is
//! decoded inside `catch_unwind` and must re-encode to the same bytes; a key made here or
//! imported with its seed is expanded from the seed.
//!
//! Parameters (`CK_SIGN_ADDITIONAL_CONTEXT`, `CK_HASH_SIGN_ADDITIONAL_CONTEXT`): a context
//! of at most 255 bytes, and the hedge variant: `CKH_HEDGE_PREFERRED` (the default) and
//! `CKH_HEDGE_REQUIRED` sign with 32 fresh random bytes, `CKH_DETERMINISTIC_REQUIRED` with
//! the zero string (FIPS 204's deterministic variant). `CKM_ML_DSA` signs the message
//! itself (`M' = 0 || |ctx| || ctx || M`, buffered in multi-part calls, up to
//! [`MAX_MESSAGE_LEN`]); `CKM_HASH_ML_DSA` signs a digest the caller computed with the
//! parameter's hash, and `CKM_HASH_ML_DSA_<hash>` hashes the data itself
//! (`M' = 1 || |ctx| || ctx || OID(hash) || hash(M)`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cryptoki_sys::*;
use ml_dsa::{
    EncodedSignature, EncodedVerifyingKey, ExpandedSigningKey, ExpandedSigningKeyBytes, MlDsa44, MlDsa65, MlDsa87,
    MlDsaParams, Signature, SigningKey, VerifyingKey, B32,
};
use sha2::Digest as _;
use shake::digest::{ExtendableOutput, Update, XofReader};
use zeroize::Zeroizing;

use super::registry::{
    build_plain, AttrSource, KeyNeed, KeyView, MechEntry, MechInfo, NewAttr, NewPair, Ops, Param, ParamShape,
};
use super::{Mechanism, Signer, Verifier};
use crate::error::{Error, Result};

/// Registry rows (key sizes are the parameter-set names: 44 to 87).
pub const ENTRIES: &[MechEntry] = &[
    MechEntry {
        ty: CKM_ML_DSA_KEY_PAIR_GEN,
        info: INFO_KEYGEN,
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
    },
    signing_row(CKM_ML_DSA, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA, ParamShape::HashSignContext),
    signing_row(CKM_HASH_ML_DSA_SHA224, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA256, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA384, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA512, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA3_224, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA3_256, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA3_384, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHA3_512, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHAKE128, ParamShape::SignContext),
    signing_row(CKM_HASH_ML_DSA_SHAKE256, ParamShape::SignContext),
];

const INFO_KEYGEN: MechInfo = MechInfo { min_key: 44, max_key: 87, flags: CKF_GENERATE_KEY_PAIR };

const fn signing_row(ty: CK_MECHANISM_TYPE, param: ParamShape) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 44, max_key: 87, flags: CKF_SIGN | CKF_VERIFY },
        key: KeyNeed::Pair(&[CKK_ML_DSA]),
        param,
        build,
        ops: Ops { sign: Some(sign_op), verify: Some(verify_op), ..Ops::NONE },
    }
}

/// Length of `CKA_SEED` (`ξ`).
pub const SEED_LEN: usize = 32;
/// Most bytes a multi-part pure ML-DSA operation buffers.
pub const MAX_MESSAGE_LEN: usize = 16 << 20;
/// Longest context string (FIPS 204 §5.2).
pub const MAX_CONTEXT_LEN: usize = 255;

/// An ML-DSA parameter set (FIPS 204 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSet {
    /// ML-DSA-44, security category 2.
    MlDsa44,
    /// ML-DSA-65, security category 3.
    MlDsa65,
    /// ML-DSA-87, security category 5.
    MlDsa87,
}

impl ParamSet {
    /// From `CKA_PARAMETER_SET`; an unknown value is the template's fault.
    pub fn from_ck(v: CK_ULONG) -> Result<ParamSet> {
        match v {
            CKP_ML_DSA_44 => Ok(ParamSet::MlDsa44),
            CKP_ML_DSA_65 => Ok(ParamSet::MlDsa65),
            CKP_ML_DSA_87 => Ok(ParamSet::MlDsa87),
            _ => Err(Error::AttributeValueInvalid(CKA_PARAMETER_SET)),
        }
    }

    /// The `CKP_ML_DSA_*` value.
    pub fn to_ck(self) -> CK_ULONG {
        match self {
            ParamSet::MlDsa44 => CKP_ML_DSA_44,
            ParamSet::MlDsa65 => CKP_ML_DSA_65,
            ParamSet::MlDsa87 => CKP_ML_DSA_87,
        }
    }

    /// (public key, expanded private key, signature) lengths in bytes.
    pub fn lengths(self) -> (usize, usize, usize) {
        match self {
            ParamSet::MlDsa44 => (1312, 2560, 2420),
            ParamSet::MlDsa65 => (1952, 4032, 3309),
            ParamSet::MlDsa87 => (2592, 4896, 4627),
        }
    }
}

/// The hash of HashML-DSA (FIPS 204 §5.4), with the DER OID that goes into `M'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreHash {
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
    /// SHAKE128 with 256 bits of output.
    Shake128,
    /// SHAKE256 with 512 bits of output.
    Shake256,
}

impl PreHash {
    /// The hash a `CKM_HASH_ML_DSA_<hash>` mechanism computes.
    fn of_mechanism(ty: CK_MECHANISM_TYPE) -> Option<PreHash> {
        Some(match ty {
            CKM_HASH_ML_DSA_SHA224 => PreHash::Sha224,
            CKM_HASH_ML_DSA_SHA256 => PreHash::Sha256,
            CKM_HASH_ML_DSA_SHA384 => PreHash::Sha384,
            CKM_HASH_ML_DSA_SHA512 => PreHash::Sha512,
            CKM_HASH_ML_DSA_SHA3_224 => PreHash::Sha3_224,
            CKM_HASH_ML_DSA_SHA3_256 => PreHash::Sha3_256,
            CKM_HASH_ML_DSA_SHA3_384 => PreHash::Sha3_384,
            CKM_HASH_ML_DSA_SHA3_512 => PreHash::Sha3_512,
            CKM_HASH_ML_DSA_SHAKE128 => PreHash::Shake128,
            CKM_HASH_ML_DSA_SHAKE256 => PreHash::Shake256,
            _ => return None,
        })
    }

    /// The hash `CK_HASH_SIGN_ADDITIONAL_CONTEXT.hash` names for `CKM_HASH_ML_DSA`.
    fn of_digest(ty: CK_MECHANISM_TYPE) -> Option<PreHash> {
        Some(match ty {
            CKM_SHA224 => PreHash::Sha224,
            CKM_SHA256 => PreHash::Sha256,
            CKM_SHA384 => PreHash::Sha384,
            CKM_SHA512 => PreHash::Sha512,
            CKM_SHA3_224 => PreHash::Sha3_224,
            CKM_SHA3_256 => PreHash::Sha3_256,
            CKM_SHA3_384 => PreHash::Sha3_384,
            CKM_SHA3_512 => PreHash::Sha3_512,
            _ => return None,
        })
    }

    /// The DER encoding of the hash's OID (NIST's 2.16.840.1.101.3.4.2.x arc).
    fn oid(self) -> [u8; 11] {
        let last = match self {
            PreHash::Sha256 => 0x01,
            PreHash::Sha384 => 0x02,
            PreHash::Sha512 => 0x03,
            PreHash::Sha224 => 0x04,
            PreHash::Sha3_224 => 0x07,
            PreHash::Sha3_256 => 0x08,
            PreHash::Sha3_384 => 0x09,
            PreHash::Sha3_512 => 0x0a,
            PreHash::Shake128 => 0x0b,
            PreHash::Shake256 => 0x0c,
        };
        [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last]
    }

    /// The digest length, which a caller-computed digest must have.
    fn output_len(self) -> usize {
        match self {
            PreHash::Sha224 | PreHash::Sha3_224 => 28,
            PreHash::Sha256 | PreHash::Sha3_256 | PreHash::Shake128 => 32,
            PreHash::Sha384 | PreHash::Sha3_384 => 48,
            PreHash::Sha512 | PreHash::Sha3_512 | PreHash::Shake256 => 64,
        }
    }

    fn hasher(self) -> Hasher {
        match self {
            PreHash::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            PreHash::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            PreHash::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            PreHash::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            PreHash::Sha3_224 => Hasher::Sha3_224(sha3::Sha3_224::new()),
            PreHash::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            PreHash::Sha3_384 => Hasher::Sha3_384(sha3::Sha3_384::new()),
            PreHash::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
            PreHash::Shake128 => Hasher::Shake128(shake::Shake128::default()),
            PreHash::Shake256 => Hasher::Shake256(shake::Shake256::default()),
        }
    }
}

/// A streaming pre-hash.
#[derive(Clone)]
enum Hasher {
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha3_224(sha3::Sha3_224),
    Sha3_256(sha3::Sha3_256),
    Sha3_384(sha3::Sha3_384),
    Sha3_512(sha3::Sha3_512),
    Shake128(shake::Shake128),
    Shake256(shake::Shake256),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha224(h) => sha2::Digest::update(h, data),
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
            Hasher::Sha384(h) => sha2::Digest::update(h, data),
            Hasher::Sha512(h) => sha2::Digest::update(h, data),
            Hasher::Sha3_224(h) => sha2::Digest::update(h, data),
            Hasher::Sha3_256(h) => sha2::Digest::update(h, data),
            Hasher::Sha3_384(h) => sha2::Digest::update(h, data),
            Hasher::Sha3_512(h) => sha2::Digest::update(h, data),
            Hasher::Shake128(h) => Update::update(h, data),
            Hasher::Shake256(h) => Update::update(h, data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Sha3_224(h) => h.finalize().to_vec(),
            Hasher::Sha3_256(h) => h.finalize().to_vec(),
            Hasher::Sha3_384(h) => h.finalize().to_vec(),
            Hasher::Sha3_512(h) => h.finalize().to_vec(),
            Hasher::Shake128(h) => squeeze(h.finalize_xof(), 32),
            Hasher::Shake256(h) => squeeze(h.finalize_xof(), 64),
        }
    }
}

/// The first `len` bytes of an extendable output.
fn squeeze(mut reader: impl XofReader, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    reader.read(&mut out);
    out
}

/// How a signature's randomness is chosen (`CK_HEDGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hedge {
    /// 32 fresh random bytes (`CKH_HEDGE_PREFERRED`, `CKH_HEDGE_REQUIRED`).
    Hedged,
    /// The zero string (`CKH_DETERMINISTIC_REQUIRED`).
    Deterministic,
}

/// What is signed: the message, a digest the caller computed, or a digest the token
/// computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `CKM_ML_DSA`: the message.
    Message,
    /// `CKM_HASH_ML_DSA`: the caller's digest with this hash.
    Digest(PreHash),
    /// `CKM_HASH_ML_DSA_<hash>`: the message, hashed here.
    Hashed(PreHash),
}

/// A typed `CKM_ML_DSA` / HashML-DSA mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignParams {
    /// The `CKM_*` value.
    pub ty: CK_MECHANISM_TYPE,
    /// What the data is.
    pub input: Input,
    /// The context string (at most 255 bytes).
    pub context: Vec<u8>,
    /// Hedged or deterministic.
    pub hedge: Hedge,
}

/// Checks the decoded parameter against the mechanism.
fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let (hedge, context, hash) = match p {
        Param::None => (CKH_HEDGE_PREFERRED, Vec::new(), None),
        Param::SignContext { hedge, context, hash } => (hedge, context, hash),
        _ => return Err(Error::MechanismParamInvalid),
    };
    let hedge = match hedge {
        CKH_HEDGE_PREFERRED | CKH_HEDGE_REQUIRED => Hedge::Hedged,
        CKH_DETERMINISTIC_REQUIRED => Hedge::Deterministic,
        _ => return Err(Error::MechanismParamInvalid),
    };
    if context.len() > MAX_CONTEXT_LEN {
        return Err(Error::MechanismParamInvalid);
    }
    let input = match (ty, hash) {
        (CKM_ML_DSA, None) => Input::Message,
        (CKM_HASH_ML_DSA, Some(h)) => Input::Digest(PreHash::of_digest(h).ok_or(Error::MechanismParamInvalid)?),
        (_, None) => Input::Hashed(PreHash::of_mechanism(ty).ok_or(Error::MechanismInvalid)?),
        _ => return Err(Error::MechanismParamInvalid),
    };
    Ok(Mechanism::MlDsa(SignParams { ty, input, context, hedge }))
}

/// The parameter set of a key or template.
fn key_set(key: &dyn AttrSource) -> Result<ParamSet> {
    ParamSet::from_ck(key.attr_ulong(CKA_PARAMETER_SET)?.ok_or(Error::TemplateIncomplete(CKA_PARAMETER_SET))?)
}

/// A new pair of the parameter set either template names (both: the same one).
fn generate_pair_op(_: &Mechanism, public: &dyn AttrSource, private: &dyn AttrSource) -> Result<NewPair> {
    let set = super::registry::pair_parameter_set(public, private)?;
    let ps = ParamSet::from_ck(set)?;
    let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
    super::primitives::fill_random(&mut seed)?;
    let (expanded, public_key) = from_seed(ps, &seed)?;
    let mut pair = NewPair::of_type(CKK_ML_DSA);
    pair.public.push(NewAttr::ulong(CKA_PARAMETER_SET, ps.to_ck()));
    pair.public.push(NewAttr::bytes(CKA_VALUE, public_key));
    pair.private.push(NewAttr::ulong(CKA_PARAMETER_SET, ps.to_ck()));
    pair.private.push(NewAttr { ty: CKA_VALUE, value: expanded });
    pair.private.push(NewAttr { ty: CKA_SEED, value: seed });
    Ok(pair)
}

/// Import checks: a public key has its set's length; a private key's expanded form is
/// made from the seed when one is given (and must then equal a given `CKA_VALUE`), or
/// decoded and re-encoded to the same bytes when only the expanded form is given.
pub fn imported(class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    let ps = key_set(key)?;
    match class {
        CKO_PUBLIC_KEY => {
            if key.required(CKA_VALUE)?.len() != ps.lengths().0 {
                return Err(Error::AttributeValueInvalid(CKA_VALUE));
            }
            Ok(Vec::new())
        }
        CKO_PRIVATE_KEY => match (key.attr(CKA_SEED), key.attr(CKA_VALUE)) {
            (Some(seed), value) => {
                let (expanded, _) = from_seed(ps, seed)?;
                if value.is_some_and(|v| v != expanded.as_slice()) {
                    return Err(Error::TemplateInconsistent(CKA_VALUE));
                }
                Ok(vec![NewAttr { ty: CKA_VALUE, value: expanded }])
            }
            (None, Some(value)) => {
                AnySigningKey::decode(ps, value)?;
                Ok(Vec::new())
            }
            (None, None) => Err(Error::TemplateIncomplete(CKA_VALUE)),
        },
        _ => Ok(Vec::new()),
    }
}

/// (expanded private key, public key) of `seed` in set `ps`.
fn from_seed(ps: ParamSet, seed: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let seed = B32::try_from(seed).map_err(|_| Error::AttributeValueInvalid(CKA_SEED))?;
    Ok(match ps {
        ParamSet::MlDsa44 => keys_from_seed::<MlDsa44>(&seed),
        ParamSet::MlDsa65 => keys_from_seed::<MlDsa65>(&seed),
        ParamSet::MlDsa87 => keys_from_seed::<MlDsa87>(&seed),
    })
}

fn keys_from_seed<P: MlDsaParams>(seed: &B32) -> (Zeroizing<Vec<u8>>, Vec<u8>) {
    let key = SigningKey::<P>::from_seed(seed);
    let expanded = key.expanded_key();
    #[allow(deprecated)] // the expanded key is the PKCS#11 3.2 CKA_VALUE encoding; see the module doc
    let bytes = Zeroizing::new(expanded.to_expanded().to_vec());
    // The key made from the seed already holds its public key: asking the expanded key
    // for it would recompute A·s1 + s2, doubling the cost of a key pair.
    let public: &VerifyingKey<P> = key.as_ref();
    (bytes, public.encode().to_vec())
}

/// The public key (`pkEncode`) of `seed` in set `ps` (`ML-DSA.KeyGen_internal`).
pub fn public_key_of_seed(ps: ParamSet, seed: &[u8]) -> Result<Vec<u8>> {
    Ok(from_seed(ps, seed)?.1)
}

/// The length byte of a pure ML-DSA context (FIPS 204 §5.2: at most 255 bytes).
fn pure_context_len(context: &[u8]) -> Result<u8> {
    u8::try_from(context.len()).map_err(|_| Error::MechanismParamInvalid)
}

/// Pure ML-DSA (FIPS 204 Algorithm 2, hedged) of `message` with `context` under the key
/// of `seed`: what the module signs with for itself, outside any PKCS#11 object.
pub fn sign_with_seed(ps: ParamSet, seed: &[u8], context: &[u8], message: &[u8]) -> Result<Vec<u8>> {
    let head = [0, pure_context_len(context)?];
    let (expanded, _) = from_seed(ps, seed)?;
    let key = AnySigningKey::decode(ps, &expanded)?;
    let mut rnd = B32::default();
    super::primitives::fill_random(&mut rnd)?;
    Ok(key.sign(&[&head, context, message], &rnd))
}

/// Pure ML-DSA verification (FIPS 204 Algorithm 3) of `signature` over `message` with
/// `context` under the encoded public key `public`.
pub fn verify_pure(ps: ParamSet, public: &[u8], context: &[u8], message: &[u8], signature: &[u8]) -> Result<()> {
    let key = AnyVerifyingKey::decode(ps, public)?;
    let mut m_prime = Vec::with_capacity(2 + context.len() + message.len());
    m_prime.extend_from_slice(&[0, pure_context_len(context)?]);
    m_prime.extend_from_slice(context);
    m_prime.extend_from_slice(message);
    key.verify(&m_prime, signature)
}

/// A decoded private key of any set.
enum AnySigningKey {
    MlDsa44(Box<ExpandedSigningKey<MlDsa44>>),
    MlDsa65(Box<ExpandedSigningKey<MlDsa65>>),
    MlDsa87(Box<ExpandedSigningKey<MlDsa87>>),
}

/// Whether the `s1` and `s2` coefficients of expanded key `sk` are in `[-η, η]`, i.e. each
/// packed value is at most 2η (FIPS 204 Algorithm 25, `skDecode`): the crate's decoder
/// asserts this, so a malformed key is refused here before it is decoded.
fn secret_vectors_in_range(ps: ParamSet, sk: &[u8]) -> bool {
    let (k, l, eta) = match ps {
        ParamSet::MlDsa44 => (4, 4, 2u32),
        ParamSet::MlDsa65 => (6, 5, 4),
        ParamSet::MlDsa87 => (8, 7, 2),
    };
    let bits = if eta == 2 { 3 } else { 4 };
    let packed = (k + l) * 256 * bits / 8;
    let Some(s1_s2) = sk.get(128..128 + packed) else {
        return false;
    };
    (0..(k + l) * 256).all(|i| {
        let (bit, byte) = (i * bits % 8, i * bits / 8);
        let window = u32::from(s1_s2[byte]) | s1_s2.get(byte + 1).map_or(0, |b| u32::from(*b) << 8);
        (window >> bit) & ((1 << bits) - 1) <= 2 * eta
    })
}

/// Decodes an expanded private key: its secret vectors are range-checked first, the
/// crate's (unvalidating) decoder runs under `catch_unwind` all the same, and the key
/// must encode back to the same bytes.
fn decode_expanded<P: MlDsaParams>(ps: ParamSet, bytes: &[u8]) -> Result<Box<ExpandedSigningKey<P>>> {
    let invalid = Error::AttributeValueInvalid(CKA_VALUE);
    if !secret_vectors_in_range(ps, bytes) {
        return Err(invalid);
    }
    let encoded = ExpandedSigningKeyBytes::<P>::try_from(bytes).map_err(|_| invalid.clone())?;
    #[allow(deprecated)] // see the module doc
    let decoded = catch_unwind(AssertUnwindSafe(|| ExpandedSigningKey::<P>::from_expanded(&encoded)));
    let key = decoded.map_err(|_| invalid.clone())?;
    #[allow(deprecated)] // see the module doc
    let same = Zeroizing::new(key.to_expanded().to_vec()) == Zeroizing::new(bytes.to_vec());
    if !same {
        return Err(invalid);
    }
    Ok(Box::new(key))
}

impl AnySigningKey {
    fn decode(ps: ParamSet, bytes: &[u8]) -> Result<AnySigningKey> {
        Ok(match ps {
            ParamSet::MlDsa44 => AnySigningKey::MlDsa44(decode_expanded(ps, bytes)?),
            ParamSet::MlDsa65 => AnySigningKey::MlDsa65(decode_expanded(ps, bytes)?),
            ParamSet::MlDsa87 => AnySigningKey::MlDsa87(decode_expanded(ps, bytes)?),
        })
    }

    /// `ML-DSA.Sign_internal` over the parts of `M'`.
    fn sign(&self, parts: &[&[u8]], rnd: &B32) -> Vec<u8> {
        match self {
            AnySigningKey::MlDsa44(k) => k.sign_internal(parts, rnd).encode().to_vec(),
            AnySigningKey::MlDsa65(k) => k.sign_internal(parts, rnd).encode().to_vec(),
            AnySigningKey::MlDsa87(k) => k.sign_internal(parts, rnd).encode().to_vec(),
        }
    }
}

/// A decoded public key of any set.
enum AnyVerifyingKey {
    MlDsa44(Box<VerifyingKey<MlDsa44>>),
    MlDsa65(Box<VerifyingKey<MlDsa65>>),
    MlDsa87(Box<VerifyingKey<MlDsa87>>),
}

fn decode_public<P: MlDsaParams>(bytes: &[u8]) -> Result<Box<VerifyingKey<P>>> {
    let encoded = EncodedVerifyingKey::<P>::try_from(bytes).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
    Ok(Box::new(VerifyingKey::decode(&encoded)))
}

/// `ML-DSA.Verify_internal` of `signature` over `m_prime`.
fn verify_as<P: MlDsaParams>(key: &VerifyingKey<P>, m_prime: &[u8], signature: &[u8]) -> Result<()> {
    let encoded = EncodedSignature::<P>::try_from(signature).map_err(|_| Error::SignatureLenRange)?;
    let signature = Signature::<P>::decode(&encoded).ok_or(Error::SignatureInvalid)?;
    match key.verify_internal(m_prime, &signature) {
        true => Ok(()),
        false => Err(Error::SignatureInvalid),
    }
}

impl AnyVerifyingKey {
    fn decode(ps: ParamSet, bytes: &[u8]) -> Result<AnyVerifyingKey> {
        Ok(match ps {
            ParamSet::MlDsa44 => AnyVerifyingKey::MlDsa44(decode_public(bytes)?),
            ParamSet::MlDsa65 => AnyVerifyingKey::MlDsa65(decode_public(bytes)?),
            ParamSet::MlDsa87 => AnyVerifyingKey::MlDsa87(decode_public(bytes)?),
        })
    }

    fn verify(&self, m_prime: &[u8], signature: &[u8]) -> Result<()> {
        match self {
            AnyVerifyingKey::MlDsa44(k) => verify_as(k, m_prime, signature),
            AnyVerifyingKey::MlDsa65(k) => verify_as(k, m_prime, signature),
            AnyVerifyingKey::MlDsa87(k) => verify_as(k, m_prime, signature),
        }
    }
}

/// Which decoded key a key object's cache holds.
fn cache_tag(private: bool) -> u64 {
    (CKM_ML_DSA << 8) | u64::from(private)
}

fn params(m: &Mechanism) -> Result<&SignParams> {
    match m {
        Mechanism::MlDsa(p) => Ok(p),
        _ => Err(Error::MechanismInvalid),
    }
}

fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let ps = key_set(key)?;
    let decoded = key.prepared().get_or_make(cache_tag(true), || AnySigningKey::decode(ps, &key.secret()?))?;
    let p = params(m)?.clone();
    Ok(Box::new(MlDsaSigner { key: decoded, signature_len: ps.lengths().2, data: Some(Data::new(p.input)), params: p }))
}

fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let ps = key_set(key)?;
    let decoded =
        key.prepared().get_or_make(cache_tag(false), || AnyVerifyingKey::decode(ps, key.required(CKA_VALUE)?))?;
    let p = params(m)?.clone();
    Ok(Box::new(MlDsaVerifier { key: decoded, data: Some(Data::new(p.input)), params: p }))
}

/// The data of an operation: buffered (the message, or the caller's digest) or hashed
/// as it comes.
enum Data {
    Message(Zeroizing<Vec<u8>>),
    Digest(PreHash, Zeroizing<Vec<u8>>),
    Hashing(PreHash, Hasher),
}

impl Data {
    fn new(input: Input) -> Data {
        match input {
            Input::Message => Data::Message(Zeroizing::new(Vec::new())),
            Input::Digest(h) => Data::Digest(h, Zeroizing::new(Vec::new())),
            Input::Hashed(h) => Data::Hashing(h, h.hasher()),
        }
    }

    fn push(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Data::Hashing(_, h) => h.update(data),
            Data::Message(b) | Data::Digest(_, b) if b.len() + data.len() > MAX_MESSAGE_LEN => {
                return Err(Error::DataLenRange)
            }
            Data::Message(b) | Data::Digest(_, b) => b.extend_from_slice(data),
        }
        Ok(())
    }

    /// What `M'` holds besides the context (FIPS 204 Algorithms 2 and 4). Ends the
    /// operation's data.
    fn finish(self) -> Result<MessageParts> {
        let pre_hashed = |h: PreHash, digest| MessageParts { domain: 1, oid: h.oid().to_vec(), data: digest };
        match self {
            Data::Message(m) => Ok(MessageParts { domain: 0, oid: Vec::new(), data: m }),
            Data::Digest(h, d) if d.len() == h.output_len() => Ok(pre_hashed(h, d)),
            Data::Digest(..) => Err(Error::DataLenRange),
            Data::Hashing(h, hasher) => Ok(pre_hashed(h, Zeroizing::new(hasher.finish()))),
        }
    }
}

/// `M'` but its context: the domain byte (0 pure, 1 pre-hash), the hash's OID (empty
/// for pure ML-DSA) and the message or digest.
struct MessageParts {
    domain: u8,
    oid: Vec<u8>,
    data: Zeroizing<Vec<u8>>,
}

/// The context's length byte (the mechanism's build checked it fits).
fn context_len(params: &SignParams) -> Result<u8> {
    u8::try_from(params.context.len()).map_err(|_| Error::MechanismParamInvalid)
}

struct MlDsaSigner {
    key: Arc<AnySigningKey>,
    signature_len: usize,
    data: Option<Data>,
    params: SignParams,
}

impl Signer for MlDsaSigner {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.data.as_mut().ok_or(Error::OperationNotInitialized)?.push(data)
    }

    fn signature_len(&self) -> usize {
        self.signature_len
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let data = self.data.take().ok_or(Error::OperationNotInitialized)?;
        let m = data.finish()?;
        let head = [m.domain, context_len(&self.params)?];
        let mut rnd = B32::default();
        if self.params.hedge == Hedge::Hedged {
            super::primitives::fill_random(&mut rnd)?;
        }
        Ok(self.key.sign(&[&head, &self.params.context, &m.oid, &m.data], &rnd))
    }
}

struct MlDsaVerifier {
    key: Arc<AnyVerifyingKey>,
    data: Option<Data>,
    params: SignParams,
}

impl Verifier for MlDsaVerifier {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.data.as_mut().ok_or(Error::OperationNotInitialized)?.push(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let data = self.data.take().ok_or(Error::OperationNotInitialized)?;
        let m = data.finish()?;
        let mut m_prime = Zeroizing::new(Vec::with_capacity(2 + self.params.context.len() + 11 + m.data.len()));
        m_prime.extend_from_slice(&[m.domain, context_len(&self.params)?]);
        m_prime.extend_from_slice(&self.params.context);
        m_prime.extend_from_slice(&m.oid);
        m_prime.extend_from_slice(&m.data);
        self.key.verify(&m_prime, signature)
    }
}

#[cfg(test)]
#[path = "mldsa_acvp.rs"]
mod acvp;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_made_from_a_seed_pass_the_range_check_and_a_coefficient_past_it_fails() {
        for ps in [ParamSet::MlDsa44, ParamSet::MlDsa65, ParamSet::MlDsa87] {
            let (sk, pk) = from_seed(ps, &[7u8; SEED_LEN]).expect("keys");
            assert_eq!((pk.len(), sk.len()), (ps.lengths().0, ps.lengths().1));
            assert!(secret_vectors_in_range(ps, &sk), "{ps:?}");
            assert!(AnySigningKey::decode(ps, &sk).is_ok(), "{ps:?} decodes");
            let mut bad = sk.to_vec();
            bad[128] = 0xff; // the first coefficients of s1 all ones: past 2η
            assert!(!secret_vectors_in_range(ps, &bad), "{ps:?}");
            assert!(matches!(AnySigningKey::decode(ps, &bad), Err(Error::AttributeValueInvalid(CKA_VALUE))));
        }
    }

    #[test]
    fn the_pre_hash_oids_and_lengths_are_fips_204s() {
        // FIPS 204 §5.4.1: SHA-256 is 2.16.840.1.101.3.4.2.1, SHAKE256 ...2.12 with 64 bytes.
        assert_eq!(PreHash::Sha256.oid(), [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
        assert_eq!(PreHash::Shake256.oid()[10], 0x0c);
        assert_eq!(PreHash::Shake128.hasher().finish().len(), PreHash::Shake128.output_len());
        assert_eq!(PreHash::Sha3_224.hasher().finish().len(), 28);
    }
}
