//! The CFRG hybrid KEMs `MLKEM768-P256` and `MLKEM1024-P384` (vendor mechanisms
//! `CKM_CV_MLKEM768_P256*` and `CKM_CV_MLKEM1024_P384*`, key types `CKK_CV_MLKEM768_P256`
//! and `CKK_CV_MLKEM1024_P384`), as draft-irtf-cfrg-concrete-hybrid-kems-04 instantiates
//! the CG framework of draft-irtf-cfrg-hybrid-kems-12 (the C2PRI combiner with a nominal
//! group, the construction earlier revisions called QSF), over RustCrypto's `ml-kem`,
//! `p256`/`p384`, `sha3` and `shake` in every build.
//!
//! A shared secret stays secret while either half holds: a later break of ML-KEM, or of
//! the elliptic curve, alone does not reveal it.
//!
//! - The private key is a 32-byte seed. `SHAKE256(seed)` gives 64 bytes for ML-KEM's
//!   `KeyGen_internal(d, z)`, then `Nseed` bytes (128 for P-256, 48 for P-384) from which
//!   `RandomScalar` takes the first `Nscalar`-byte block in `[1, n)`.
//! - The public key is `ek_PQ || ek_T` with `ek_T` an uncompressed SEC1 point: 1,249
//!   bytes (1184 + 65) and 1,665 bytes (1568 + 97).
//! - A ciphertext is `ct_PQ || ct_T`, `ct_T` the ephemeral point: 1,153 and 1,665 bytes.
//! - The shared secret is `SHA3-256(ss_PQ || ss_T || ct_T || ek_T || label)`, `ss_T` the
//!   x-coordinate of the Diffie-Hellman point and the labels `MLKEM768-P256` and
//!   `MLKEM1024-P384`.
//!
//! Bad input: a well-formed ciphertext whose ML-KEM half was altered is no error (ML-KEM's
//! implicit rejection gives an unrelated secret, which the draft keeps: its `Decaps`
//! never fails for that half). A `ct_T` that is not a point of the curve in uncompressed
//! form has no Diffie-Hellman value: the draft's groups decode elements with SEC1's
//! `Octet-String-to-Elliptic-Curve-Point`, which answers "invalid", so the token answers
//! `CKR_ENCRYPTED_DATA_INVALID`. A wrong length is `CKR_ENCRYPTED_DATA_LEN_RANGE` (the
//! framework's `split` is an error on it). A public key whose ML-KEM half fails FIPS 203's
//! modulus check, or whose point is off the curve, is refused when created.

use cryptoki_sys::*;
use ml_kem::{Decapsulate, DecapsulationKey, EncapsulationKey, KeyExport, Seed, TryKeyInit, B32};
use p256::elliptic_curve::sec1::ToSec1Point;
use sha3::{Digest, Sha3_256};
use shake::digest::{ExtendableOutput, Update, XofReader};
use zeroize::Zeroizing;

use super::registry::{
    build_plain, AttrSource, KemOps, KeyNeed, KeyView, MechEntry, MechInfo, NewAttr, NewPair, Ops, ParamShape,
};
use super::Mechanism;
use crate::error::{Error, Internal, Result};
use crate::vendor::{
    CKK_CV_MLKEM1024_P384, CKK_CV_MLKEM768_P256, CKM_CV_MLKEM1024_P384, CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN,
    CKM_CV_MLKEM768_P256, CKM_CV_MLKEM768_P256_KEY_PAIR_GEN,
};

/// The draft whose instances and test vectors this implements (also in
/// `include/collabvault.h` and the README).
pub const DRAFT: &str = "draft-irtf-cfrg-concrete-hybrid-kems-04";
/// The framework draft the instances cite.
pub const FRAMEWORK: &str = "draft-irtf-cfrg-hybrid-kems-12";

/// Decapsulation (private) key length: the seed, for both instances.
pub const PRIVATE_KEY_LEN: usize = 32;
/// Shared secret length, for both instances.
pub const SHARED_SECRET_LEN: usize = 32;
/// Tries at drawing a seed or randomness whose scalar block is in range (one fails with
/// probability below 2^-128 for P-256 and 2^-192 for P-384).
const DRAWS: usize = 4;

const fn pair_gen_row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 0, max_key: 0, flags: CKF_GENERATE_KEY_PAIR },
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
    }
}

const fn kem_row(ty: CK_MECHANISM_TYPE, key_types: &'static [CK_KEY_TYPE]) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 0, max_key: 0, flags: CKF_ENCAPSULATE | CKF_DECAPSULATE },
        key: KeyNeed::Pair(key_types),
        param: ParamShape::None,
        build: build_plain,
        ops: Ops {
            kem: Some(KemOps {
                ciphertext_len: |key| Ok(Variant::of_key(key)?.ciphertext_len()),
                encapsulate: encapsulate_op,
                decapsulate: decapsulate_op,
            }),
            ..Ops::NONE
        },
    }
}

/// Registry rows (no key sizes: each instance has one parameter set).
pub const ENTRIES: &[MechEntry] = &[
    pair_gen_row(CKM_CV_MLKEM768_P256_KEY_PAIR_GEN),
    kem_row(CKM_CV_MLKEM768_P256, &[CKK_CV_MLKEM768_P256]),
    pair_gen_row(CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN),
    kem_row(CKM_CV_MLKEM1024_P384, &[CKK_CV_MLKEM1024_P384]),
];

/// One of the two instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// ML-KEM-768 with P-256.
    MlKem768P256,
    /// ML-KEM-1024 with P-384.
    MlKem1024P384,
}

impl Variant {
    /// The instance of a vendor key type.
    pub fn of_key_type(key_type: CK_KEY_TYPE) -> Option<Variant> {
        match key_type {
            CKK_CV_MLKEM768_P256 => Some(Variant::MlKem768P256),
            CKK_CV_MLKEM1024_P384 => Some(Variant::MlKem1024P384),
            _ => None,
        }
    }

    /// The instance of a key object (the session checked its type against the row).
    pub fn of_key(key: &dyn AttrSource) -> Result<Variant> {
        let ty = key.attr_ulong(CKA_KEY_TYPE)?.ok_or(Error::TemplateIncomplete(CKA_KEY_TYPE))?;
        Variant::of_key_type(ty).ok_or(Error::KeyTypeInconsistent)
    }

    /// The instance a key pair generation mechanism makes.
    pub fn of_pair_gen(m: &Mechanism) -> Result<Variant> {
        match m {
            Mechanism::HybridKemKeyPairGen(v) => Ok(*v),
            _ => Err(Error::MechanismInvalid),
        }
    }

    /// `CKK_CV_*`.
    pub fn key_type(self) -> CK_KEY_TYPE {
        match self {
            Variant::MlKem768P256 => CKK_CV_MLKEM768_P256,
            Variant::MlKem1024P384 => CKK_CV_MLKEM1024_P384,
        }
    }

    /// The key pair generation mechanism.
    pub fn pair_gen_mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            Variant::MlKem768P256 => CKM_CV_MLKEM768_P256_KEY_PAIR_GEN,
            Variant::MlKem1024P384 => CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN,
        }
    }

    /// The KEM mechanism.
    pub fn kem_mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            Variant::MlKem768P256 => CKM_CV_MLKEM768_P256,
            Variant::MlKem1024P384 => CKM_CV_MLKEM1024_P384,
        }
    }

    /// `Nek`: 1,249 or 1,665 bytes.
    pub fn public_len(self) -> usize {
        match self {
            Variant::MlKem768P256 => mlkem768_p256::NEK_PQ + mlkem768_p256::NELEM,
            Variant::MlKem1024P384 => mlkem1024_p384::NEK_PQ + mlkem1024_p384::NELEM,
        }
    }

    /// `Nct`: 1,153 or 1,665 bytes.
    pub fn ciphertext_len(self) -> usize {
        match self {
            Variant::MlKem768P256 => mlkem768_p256::NCT_PQ + mlkem768_p256::NELEM,
            Variant::MlKem1024P384 => mlkem1024_p384::NCT_PQ + mlkem1024_p384::NELEM,
        }
    }

    /// `Nrandom` of `EncapsDerand`: ML-KEM's 32 bytes, then the group's `Nseed`.
    pub fn randomness_len(self) -> usize {
        32 + match self {
            Variant::MlKem768P256 => mlkem768_p256::NSEED_T,
            Variant::MlKem1024P384 => mlkem1024_p384::NSEED_T,
        }
    }
}

/// `SHAKE256(seed)`, `n` bytes: the draft's PRG.
fn prg(seed: &[u8], n: usize) -> Zeroizing<Vec<u8>> {
    let mut h = shake::Shake256::default();
    Update::update(&mut h, seed);
    let mut out = Zeroizing::new(vec![0u8; n]);
    h.finalize_xof().read(&mut out);
    out
}

/// `C2PRICombiner` with SHA3-256.
fn combine(ss_pq: &[u8], ss_t: &[u8], ct_t: &[u8], ek_t: &[u8], label: &[u8]) -> Zeroizing<Vec<u8>> {
    let digest = Sha3_256::new().chain_update(ss_pq).chain_update(ss_t).chain_update(ct_t).chain_update(ek_t);
    Zeroizing::new(digest.chain_update(label).finalize().to_vec())
}

/// One instance's key expansion, encapsulation and decapsulation: the same code for both,
/// over that instance's ML-KEM parameter set and curve crate.
macro_rules! instance {
    ($name:ident, $kem:ty, $curve:ident, $label:literal, nek_pq: $nek:literal, nct_pq: $nct:literal,
     nseed_t: $nseed:literal, nscalar: $nscalar:literal) => {
        mod $name {
            use super::*;

            pub(super) const LABEL: &[u8] = $label;
            pub(super) const NEK_PQ: usize = $nek;
            pub(super) const NCT_PQ: usize = $nct;
            pub(super) const NSEED_T: usize = $nseed;
            pub(super) const NSCALAR: usize = $nscalar;
            pub(super) const NELEM: usize = 2 * NSCALAR + 1;

            /// An expanded decapsulation key (the crates zeroize both halves on drop).
            pub(super) struct Private {
                dk_pq: Box<DecapsulationKey<$kem>>,
                dk_t: $curve::SecretKey,
                ek_t: Vec<u8>,
            }

            /// A parsed encapsulation key.
            pub(super) struct Public {
                ek_pq: Box<EncapsulationKey<$kem>>,
                point: $curve::PublicKey,
                ek_t: Vec<u8>,
            }

            /// `RandomScalar`: the first `Nscalar`-byte block that is a scalar in `[1, n)`.
            fn random_scalar(seed: &[u8]) -> Option<$curve::SecretKey> {
                seed.chunks_exact(NSCALAR).find_map(|block| $curve::SecretKey::from_slice(block).ok())
            }

            fn encode(point: &$curve::PublicKey) -> Vec<u8> {
                point.to_sec1_point(false).as_bytes().to_vec()
            }

            /// An element: exactly an uncompressed point on the curve (not the identity).
            fn decode(bytes: &[u8]) -> Option<$curve::PublicKey> {
                if bytes.len() != NELEM || bytes[0] != 0x04 {
                    return None;
                }
                $curve::PublicKey::from_sec1_bytes(bytes).ok()
            }

            /// `expandDecapsKeyG`; `None` if `RandomScalar` found no block in range.
            pub(super) fn expand(seed: &[u8]) -> Option<(Private, Vec<u8>)> {
                let full = prg(seed, 64 + NSEED_T);
                let pq_seed = Zeroizing::new(Seed::try_from(&full[..64]).ok()?);
                let dk_pq = Box::new(DecapsulationKey::<$kem>::from_seed(*pq_seed));
                let dk_t = random_scalar(&full[64..])?;
                let ek_t = encode(&dk_t.public_key());
                let ek = [dk_pq.encapsulation_key().to_bytes().as_slice(), &ek_t].concat();
                Some((Private { dk_pq, dk_t, ek_t }, ek))
            }

            /// The draft's split of `ek`, with FIPS 203's modulus check and the point
            /// decoded.
            pub(super) fn parse_public(ek: &[u8]) -> Option<Public> {
                if ek.len() != NEK_PQ + NELEM {
                    return None;
                }
                let (pq, t) = ek.split_at(NEK_PQ);
                let ek_pq = Box::new(EncapsulationKey::<$kem>::new_from_slice(pq).ok()?);
                Some(Public { ek_pq, point: decode(t)?, ek_t: t.to_vec() })
            }

            /// `EncapsDerand`: ML-KEM takes the first 32 bytes of `randomness`, the group
            /// the rest. `None` if the group's block is out of range.
            pub(super) fn encapsulate(pk: &Public, randomness: &[u8]) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
                let (m, seed_e) = randomness.split_at(32);
                let m = Zeroizing::new(B32::try_from(m).ok()?);
                let (ct_pq, ss_pq) = pk.ek_pq.encapsulate_deterministic(&m);
                let ss_pq = Zeroizing::new(ss_pq);
                let sk_e = random_scalar(seed_e)?;
                let ct_t = encode(&sk_e.public_key());
                let ss_t = sk_e.diffie_hellman(&pk.point);
                let ss = combine(&ss_pq, ss_t.raw_secret_bytes(), &ct_t, &pk.ek_t, LABEL);
                Some(([ct_pq.as_slice(), &ct_t].concat(), ss))
            }

            /// `Decaps`, for a ciphertext of the right length.
            pub(super) fn decapsulate(sk: &Private, ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
                let (ct_pq, ct_t) = ct.split_at(NCT_PQ);
                let point = decode(ct_t).ok_or(Error::EncryptedDataInvalid)?;
                let ss_pq = sk.dk_pq.decapsulate_slice(ct_pq).map_err(|_| Error::EncryptedDataLenRange)?;
                let ss_pq = Zeroizing::new(ss_pq);
                let ss_t = sk.dk_t.diffie_hellman(&point);
                Ok(combine(&ss_pq, ss_t.raw_secret_bytes(), ct_t, &sk.ek_t, LABEL))
            }
        }
    };
}

instance!(mlkem768_p256, ml_kem::MlKem768, p256, b"MLKEM768-P256", nek_pq: 1184, nct_pq: 1088, nseed_t: 128, nscalar: 32);
instance!(mlkem1024_p384, ml_kem::MlKem1024, p384, b"MLKEM1024-P384", nek_pq: 1568, nct_pq: 1568, nseed_t: 48, nscalar: 48);

/// A decapsulation key expanded from its seed, kept with its key object.
pub struct ExpandedPrivate(PrivateOf);

enum PrivateOf {
    P256(mlkem768_p256::Private),
    P384(mlkem1024_p384::Private),
}

/// A parsed encapsulation key, kept with its key object.
pub struct ParsedPublic(PublicOf);

enum PublicOf {
    P256(mlkem768_p256::Public),
    P384(mlkem1024_p384::Public),
}

/// The expanded private key and the public key of seed `seed`; `None` in the
/// negligible case that no scalar block of the expansion is in range.
pub fn derive(v: Variant, seed: &[u8]) -> Result<Option<(ExpandedPrivate, Vec<u8>)>> {
    if seed.len() != PRIVATE_KEY_LEN {
        return Err(Error::AttributeValueInvalid(CKA_VALUE));
    }
    Ok(match v {
        Variant::MlKem768P256 => mlkem768_p256::expand(seed).map(|(sk, ek)| (ExpandedPrivate(PrivateOf::P256(sk)), ek)),
        Variant::MlKem1024P384 => {
            mlkem1024_p384::expand(seed).map(|(sk, ek)| (ExpandedPrivate(PrivateOf::P384(sk)), ek))
        }
    })
}

fn expand_private(v: Variant, seed: &[u8]) -> Result<ExpandedPrivate> {
    derive(v, seed)?.map(|(sk, _)| sk).ok_or(Error::AttributeValueInvalid(CKA_VALUE))
}

/// Parses an encapsulation key (FIPS 203 modulus check, point on the curve).
pub fn parse_public(v: Variant, ek: &[u8]) -> Result<ParsedPublic> {
    let parsed = match v {
        Variant::MlKem768P256 => mlkem768_p256::parse_public(ek).map(PublicOf::P256),
        Variant::MlKem1024P384 => mlkem1024_p384::parse_public(ek).map(PublicOf::P384),
    };
    parsed.map(ParsedPublic).ok_or(Error::AttributeValueInvalid(CKA_VALUE))
}

/// `EncapsDerand`: the ciphertext and shared secret for `randomness`
/// ([`Variant::randomness_len`] bytes); `None` if its group block is out of range.
pub fn encapsulate_derand(pk: &ParsedPublic, randomness: &[u8]) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    match &pk.0 {
        PublicOf::P256(pk) if randomness.len() == Variant::MlKem768P256.randomness_len() => {
            mlkem768_p256::encapsulate(pk, randomness)
        }
        PublicOf::P384(pk) if randomness.len() == Variant::MlKem1024P384.randomness_len() => {
            mlkem1024_p384::encapsulate(pk, randomness)
        }
        _ => None,
    }
}

/// `Encaps`: [`encapsulate_derand`] with randomness from the OS CSPRNG.
pub fn encapsulate(v: Variant, pk: &ParsedPublic) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    for _ in 0..DRAWS {
        let mut randomness = Zeroizing::new(vec![0u8; v.randomness_len()]);
        super::primitives::fill_random(&mut randomness)?;
        if let Some(out) = encapsulate_derand(pk, &randomness) {
            return Ok(out);
        }
    }
    Err(Error::Internal(Internal::EcKeyGeneration))
}

/// `Decaps`: the shared secret of `ct`.
pub fn decapsulate(v: Variant, sk: &ExpandedPrivate, ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ct.len() != v.ciphertext_len() {
        return Err(Error::EncryptedDataLenRange);
    }
    match &sk.0 {
        PrivateOf::P256(sk) => mlkem768_p256::decapsulate(sk, ct),
        PrivateOf::P384(sk) => mlkem1024_p384::decapsulate(sk, ct),
    }
}

/// `GenerateKeyPair`: a fresh seed and its public key.
pub fn generate(v: Variant) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    for _ in 0..DRAWS {
        let mut seed = Zeroizing::new(vec![0u8; PRIVATE_KEY_LEN]);
        super::primitives::fill_random(&mut seed)?;
        if let Some((_, ek)) = derive(v, &seed)? {
            return Ok((seed, ek));
        }
    }
    Err(Error::Internal(Internal::EcKeyGeneration))
}

fn generate_pair_op(m: &Mechanism, _: &dyn AttrSource, _: &dyn AttrSource) -> Result<NewPair> {
    let v = Variant::of_pair_gen(m)?;
    let (seed, public) = generate(v)?;
    let mut pair = NewPair::of_type(v.key_type());
    pair.public.push(NewAttr::bytes(CKA_VALUE, public));
    pair.private.push(NewAttr::bytes(CKA_VALUE, seed.to_vec()));
    Ok(pair)
}

/// Which decoded key a key object's cache holds.
fn cache_tag(v: Variant, private: bool) -> u64 {
    (v.kem_mechanism() << 8) | u64::from(private)
}

/// A ciphertext and a fresh shared secret for hybrid public key `key`.
pub fn encapsulate_op(key: &dyn KeyView) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let v = Variant::of_key(key)?;
    let pk = key.prepared().get_or_make(cache_tag(v, false), || parse_public(v, key.required(CKA_VALUE)?))?;
    encapsulate(v, &pk)
}

/// The shared secret of `ciphertext` under hybrid private key `key`.
pub fn decapsulate_op(key: &dyn KeyView, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let v = Variant::of_key(key)?;
    if ciphertext.len() != v.ciphertext_len() {
        return Err(Error::EncryptedDataLenRange);
    }
    let sk = key.prepared().get_or_make(cache_tag(v, true), || expand_private(v, &key.secret()?))?;
    decapsulate(v, &sk, ciphertext)
}

/// Import checks: a public key parses (modulus check, point on the curve); a private key
/// is a 32-byte seed whose expansion succeeds.
pub fn imported(v: Variant, class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    match class {
        CKO_PUBLIC_KEY => parse_public(v, key.required(CKA_VALUE)?).map(|_| Vec::new()),
        CKO_PRIVATE_KEY => expand_private(v, key.required(CKA_VALUE)?).map(|_| Vec::new()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draft's vectors (tests/fixtures/hybrid_kem/, draft -04 Appendix B).
    fn vectors(file: &str) -> Vec<serde_json::Value> {
        let path = format!("{}/tests/fixtures/hybrid_kem/{file}", env!("CARGO_MANIFEST_DIR"));
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("file")).expect("json");
        doc["vectors"].as_array().expect("vectors").clone()
    }

    fn field(v: &serde_json::Value, name: &str) -> Vec<u8> {
        hex::decode(v[name].as_str().expect(name)).expect("hex")
    }

    fn check(v: Variant, file: &str) {
        let all = vectors(file);
        assert_eq!(all.len(), 10);
        for (i, t) in all.iter().enumerate() {
            let (sk, ek) = derive(v, &field(t, "seed")).expect("seed").expect("expands");
            assert_eq!(ek, field(t, "encapsulation_key"), "vector {i}: encapsulation key");
            let pk = parse_public(v, &ek).expect("parses");
            let (ct, ss) = encapsulate_derand(&pk, &field(t, "randomness")).expect("encapsulates");
            assert_eq!(ct, field(t, "ciphertext"), "vector {i}: ciphertext");
            assert_eq!(*ss, field(t, "shared_secret"), "vector {i}: shared secret");
            assert_eq!(*decapsulate(v, &sk, &ct).expect("decapsulates"), field(t, "shared_secret"), "vector {i}");
        }
    }

    #[test]
    fn mlkem768_p256_matches_the_drafts_vectors() {
        check(Variant::MlKem768P256, "mlkem768-p256.json");
    }

    #[test]
    fn mlkem1024_p384_matches_the_drafts_vectors() {
        check(Variant::MlKem1024P384, "mlkem1024-p384.json");
    }

    #[test]
    fn the_sizes_are_the_drafts() {
        let v = Variant::MlKem768P256;
        assert_eq!((v.public_len(), v.ciphertext_len(), v.randomness_len()), (1249, 1153, 160));
        let v = Variant::MlKem1024P384;
        assert_eq!((v.public_len(), v.ciphertext_len(), v.randomness_len()), (1665, 1665, 80));
    }

    /// `RandomScalar` skips a block that is zero or not below the order.
    #[test]
    fn random_scalar_skips_blocks_out_of_range() {
        let mut seed = vec![0xffu8; 32];
        seed.extend_from_slice(&[0u8; 32]);
        seed.extend_from_slice(&[0u8; 31]);
        seed.push(7);
        let (_, ek) = mlkem768_p256::expand(&[0u8; 32]).expect("expands");
        let pk = mlkem768_p256::parse_public(&ek).expect("parses");
        let mut randomness = vec![1u8; 32];
        randomness.extend_from_slice(&seed);
        randomness.extend_from_slice(&[9u8; 32]);
        let (ct, _) = mlkem768_p256::encapsulate(&pk, &randomness).expect("third block");
        // The ephemeral point is 7·G: the first two blocks (n-1 < 0xff..ff, and 0) were skipped.
        let seven = p256::SecretKey::from_slice(&[[0u8; 31].as_slice(), &[7]].concat()).expect("7");
        assert_eq!(&ct[1088..], seven.public_key().to_sec1_point(false).as_bytes());
        let all_bad = [vec![1u8; 32], vec![0xffu8; 128]].concat();
        assert!(mlkem768_p256::encapsulate(&pk, &all_bad).is_none(), "no block in range");
    }

    #[test]
    fn a_point_off_the_curve_in_the_ciphertext_is_invalid_data() {
        let v = Variant::MlKem768P256;
        let (sk, ek) = derive(v, &[3u8; 32]).expect("seed").expect("expands");
        let (mut ct, _) = encapsulate(v, &parse_public(v, &ek).expect("parses")).expect("encapsulates");
        let last = ct.len() - 1;
        ct[last] ^= 1;
        assert_eq!(decapsulate(v, &sk, &ct).err(), Some(Error::EncryptedDataInvalid));
        ct[last] ^= 1;
        ct[1088] = 0x02;
        assert_eq!(decapsulate(v, &sk, &ct).err(), Some(Error::EncryptedDataInvalid), "a compressed tag");
        assert_eq!(decapsulate(v, &sk, &ct[..1152]).err(), Some(Error::EncryptedDataLenRange));
    }
}
