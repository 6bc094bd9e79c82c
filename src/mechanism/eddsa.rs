//! `CKM_EC_EDWARDS_KEY_PAIR_GEN` and `CKM_EDDSA` for Ed25519 (RFC 8032, PKCS#11 3.0
//! §6.3.13–6.3.15), over `ed25519-dalek`.
//!
//! Encodings, as the 3.0 spec and OpenSSL/pkcs11-tool use them:
//! - `CKA_EC_PARAMS`: the DER OID 1.3.101.112 (`06 03 2b 65 70`), or the PrintableString
//!   "edwards25519" / "ed25519" older clients send; Ed448 is `CKR_CURVE_NOT_SUPPORTED`.
//! - `CKA_EC_POINT`: a DER OCTET STRING around the 32-byte public key (a raw 32-byte key
//!   is accepted on import and stored wrapped).
//! - private `CKA_VALUE`: the 32-byte seed (RFC 8032's private key), never the expanded
//!   scalar; it lives in [`Zeroizing`] memory and `ed25519-dalek` zeroizes its copy.
//!
//! `CKM_EDDSA`'s parameter picks the RFC 8032 variant (PKCS#11 3.0 §2.3.14): none, or
//! `CK_EDDSA_PARAMS` with `phFlag` false and no context, is Ed25519; `phFlag` false with a
//! context of 1–255 bytes is Ed25519ctx; `phFlag` true is Ed25519ph (HashEdDSA over
//! SHA-512) with a context of 0–255 bytes. Ed25519 and Ed25519ph run on `ed25519-dalek`;
//! Ed25519ctx, which that crate does not offer, is RFC 8032 §5.1.6–5.1.7 with
//! dom2(0, context) written here over `curve25519-dalek`'s group arithmetic, verified as
//! strictly as `verify_strict` (canonical S, no small-order R or key).
//!
//! Ed25519 and Ed25519ctx hash the message twice, so a multi-part operation buffers the
//! data (up to [`MAX_MESSAGE_LEN`]); Ed25519ph hashes it as it comes.
//!
//! Ed448 is `CKR_CURVE_NOT_SUPPORTED`: `ed448-goldilocks` signs only in pre-releases
//! (0.14.0-pre.15 when checked; its one stable release, 0.9.0, has no EdDSA), and this
//! module takes no pre-release crypto.

use cryptoki_sys::*;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::{clamp_integer, Scalar};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::ec;
use super::registry::{
    build_plain, AttrSource, KeyNeed, KeyView, MechEntry, MechInfo, NewAttr, NewPair, Ops, Param, ParamShape,
};
use super::{Mechanism, Signer, Verifier};
use crate::error::{Error, Result};

/// Registry rows (key size in bits).
pub const ENTRIES: &[MechEntry] = &[
    MechEntry {
        ty: CKM_EC_EDWARDS_KEY_PAIR_GEN,
        info: MechInfo { min_key: 256, max_key: 256, flags: CKF_GENERATE_KEY_PAIR },
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
    },
    MechEntry {
        ty: CKM_EDDSA,
        info: MechInfo { min_key: 256, max_key: 256, flags: CKF_SIGN | CKF_VERIFY },
        key: KeyNeed::Pair(&[CKK_EC_EDWARDS]),
        param: ParamShape::Eddsa,
        build,
        ops: Ops { sign: Some(sign_op), verify: Some(verify_op), ..Ops::NONE },
    },
];

/// The RFC 8032 variant of a `CKM_EDDSA` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    /// Ed25519 (§5.1): no parameter, or `phFlag` false without a context.
    Pure,
    /// Ed25519ctx: `phFlag` false, this context (1–255 bytes).
    Ctx(Vec<u8>),
    /// Ed25519ph: `phFlag` true, this context (0–255 bytes).
    Ph(Vec<u8>),
}

/// Longest context RFC 8032 allows (its length is one octet of dom2).
pub const MAX_CONTEXT_LEN: usize = 255;

/// The variant the parameter names; a context over 255 bytes ->
/// `CKR_MECHANISM_PARAM_INVALID`.
fn build(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let variant = match p {
        Param::None => Variant::Pure,
        Param::Eddsa { context, .. } if context.len() > MAX_CONTEXT_LEN => return Err(Error::MechanismParamInvalid),
        Param::Eddsa { prehash: false, context } if context.is_empty() => Variant::Pure,
        Param::Eddsa { prehash: false, context } => Variant::Ctx(context),
        Param::Eddsa { prehash: true, context } => Variant::Ph(context),
        _ => return Err(Error::MechanismParamInvalid),
    };
    Ok(Mechanism::Eddsa(variant))
}

fn generate_pair_op(_: &Mechanism, public: &dyn AttrSource, _: &dyn AttrSource) -> Result<NewPair> {
    check_params(public.required(CKA_EC_PARAMS)?)?;
    let (seed, point) = generate()?;
    let mut pair = NewPair::of_type(CKK_EC_EDWARDS);
    pair.public.push(NewAttr::bytes(CKA_EC_POINT, point_to_der(&point)));
    pair.private.push(NewAttr::bytes(CKA_EC_PARAMS, ED25519_OID_DER.to_vec()));
    pair.private.push(NewAttr { ty: CKA_VALUE, value: seed });
    Ok(pair)
}

fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let Mechanism::Eddsa(v) = m else { return Err(Error::MechanismInvalid) };
    signer_for(v.clone(), &key.secret()?)
}

fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let Mechanism::Eddsa(v) = m else { return Err(Error::MechanismInvalid) };
    verifier_for(v.clone(), key.required(CKA_EC_POINT)?)
}

/// The attributes an imported Ed25519 key gets: a public point stored DER-wrapped; a
/// private seed checked (32 bytes).
pub fn imported(class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    check_params(key.required(CKA_EC_PARAMS)?)?;
    match class {
        CKO_PUBLIC_KEY => {
            let raw = parse_point(key.required(CKA_EC_POINT)?)?;
            Ok(vec![NewAttr::bytes(CKA_EC_POINT, point_to_der(&raw))])
        }
        CKO_PRIVATE_KEY => {
            public_from_seed(key.required(CKA_VALUE)?)?;
            Ok(Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

/// DER of OID 1.3.101.112 (id-Ed25519, RFC 8410).
pub const ED25519_OID_DER: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of OID 1.3.101.113 (id-Ed448).
const ED448_OID_DER: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
const NAMES: &[&[u8]] = &[b"edwards25519", b"ed25519", b"Ed25519"];

/// Key, seed and public key length.
pub const KEY_LEN: usize = 32;
/// Signature length (`R || S`).
pub const SIGNATURE_LEN: usize = 64;
/// Most bytes a multi-part EdDSA operation buffers.
pub const MAX_MESSAGE_LEN: usize = 16 << 20;

/// Checks that `CKA_EC_PARAMS` names Ed25519. Another well-formed curve ->
/// [`Error::CurveNotSupported`]; garbage -> [`Error::DomainParamsInvalid`].
pub fn check_params(ec_params: &[u8]) -> Result<()> {
    if ec_params == ED25519_OID_DER {
        return Ok(());
    }
    match ec::der_tlv(ec_params) {
        Some((0x13, body)) if NAMES.contains(&body) => Ok(()),
        Some((0x13 | 0x06, body)) if !body.is_empty() => Err(Error::CurveNotSupported),
        _ if ec_params == ED448_OID_DER => Err(Error::CurveNotSupported),
        _ => Err(Error::DomainParamsInvalid),
    }
}

/// A fresh key pair: (32-byte seed, 32-byte public key), the seed from the OS CSPRNG.
pub fn generate() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let mut seed = Zeroizing::new(vec![0u8; KEY_LEN]);
    super::primitives::fill_random(&mut seed)?;
    let public = public_from_seed(&seed)?;
    Ok((seed, public))
}

fn signing_key(seed: &[u8]) -> Result<SigningKey> {
    let seed: &[u8; KEY_LEN] = seed.try_into().map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
    Ok(SigningKey::from_bytes(seed))
}

/// The public key of a 32-byte seed; any other length ->
/// [`Error::AttributeValueInvalid`]`(CKA_VALUE)`.
pub fn public_from_seed(seed: &[u8]) -> Result<Vec<u8>> {
    Ok(signing_key(seed)?.verifying_key().to_bytes().to_vec())
}

/// `CKA_EC_POINT` as stored: DER OCTET STRING of the 32-byte key.
pub fn point_to_der(public: &[u8]) -> Vec<u8> {
    ec::point_to_der(public)
}

/// Accepts a raw 32-byte public key or its DER OCTET STRING; returns the raw key, which
/// must decode to a curve point. Anything else -> `CKR_ATTRIBUTE_VALUE_INVALID` on
/// `CKA_EC_POINT`.
pub fn parse_point(bytes: &[u8]) -> Result<Vec<u8>> {
    let invalid = Error::AttributeValueInvalid(CKA_EC_POINT);
    let raw = match (bytes.len(), ec::der_tlv(bytes)) {
        (KEY_LEN, _) => bytes,
        (_, Some((0x04, inner))) if inner.len() == KEY_LEN => inner,
        _ => return Err(invalid),
    };
    let key: &[u8; KEY_LEN] = raw.try_into().map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
    VerifyingKey::from_bytes(key).map_err(|_| invalid)?;
    Ok(raw.to_vec())
}

/// What a multi-part operation has absorbed: the message itself (Ed25519, Ed25519ctx),
/// or its running SHA-512 (Ed25519ph).
enum Absorbed {
    Message(Zeroizing<Vec<u8>>),
    Hash(Sha512),
}

impl Absorbed {
    fn for_variant(v: &Variant) -> Absorbed {
        match v {
            Variant::Ph(_) => Absorbed::Hash(Sha512::new()),
            Variant::Pure | Variant::Ctx(_) => Absorbed::Message(Zeroizing::new(Vec::new())),
        }
    }

    fn push(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Absorbed::Hash(h) => h.update(data),
            Absorbed::Message(m) => {
                if m.len().saturating_add(data.len()) > MAX_MESSAGE_LEN {
                    return Err(Error::DataLenRange);
                }
                m.extend_from_slice(data);
            }
        }
        Ok(())
    }

    fn message(&self) -> &[u8] {
        match self {
            Absorbed::Message(m) => m,
            Absorbed::Hash(_) => &[],
        }
    }

    fn hash(&mut self) -> Sha512 {
        match self {
            Absorbed::Hash(h) => std::mem::take(h),
            Absorbed::Message(m) => Sha512::new_with_prefix(&**m),
        }
    }
}

struct EdSigner {
    key: SigningKey,
    variant: Variant,
    absorbed: Absorbed,
}

impl Signer for EdSigner {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.absorbed.push(data)
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        use ed25519_dalek::Signer as _;
        let sig = match &self.variant {
            Variant::Pure => self.key.sign(self.absorbed.message()).to_bytes(),
            Variant::Ctx(ctx) => sign_ctx(&Zeroizing::new(self.key.to_bytes()), ctx, self.absorbed.message()),
            Variant::Ph(ctx) => {
                let hash = self.absorbed.hash();
                self.key.sign_prehashed(hash, Some(ctx)).map_err(|_| Error::MechanismParamInvalid)?.to_bytes()
            }
        };
        Ok(sig.to_vec())
    }
}

struct EdVerifier {
    key: VerifyingKey,
    variant: Variant,
    absorbed: Absorbed,
}

impl Verifier for EdVerifier {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.absorbed.push(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let sig: &[u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| Error::SignatureLenRange)?;
        // Strict: canonical S, and no small-order R or key (RFC 8032 §5.1.7 plus the
        // checks that stop signature malleability).
        let ok = match &self.variant {
            Variant::Pure => self.key.verify_strict(self.absorbed.message(), &Signature::from_bytes(sig)).is_ok(),
            Variant::Ctx(ctx) => verify_ctx(&self.key, ctx, self.absorbed.message(), sig),
            Variant::Ph(ctx) => {
                let hash = self.absorbed.hash();
                self.key.verify_prehashed_strict(hash, Some(ctx), &Signature::from_bytes(sig)).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

/// dom2(0, context) (RFC 8032 §5.1): the prefix that makes an Ed25519ctx signature
/// useless as an Ed25519 or Ed25519ph one.
fn dom2_ctx(context: &[u8]) -> Vec<u8> {
    let len = u8::try_from(context.len()).unwrap_or(u8::MAX);
    [b"SigEd25519 no Ed25519 collisions".as_slice(), &[0, len], context].concat()
}

/// SHA-512 of `parts` as a scalar mod L.
fn hash_scalar(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    let mut wide = Zeroizing::new([0u8; 64]);
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Ed25519ctx signing (RFC 8032 §5.1.6 with dom2(0, context)).
fn sign_ctx(seed: &[u8; KEY_LEN], context: &[u8], message: &[u8]) -> [u8; SIGNATURE_LEN] {
    let h = Zeroizing::new(Sha512::digest(seed));
    let mut lower = Zeroizing::new([0u8; 32]);
    lower.copy_from_slice(&h[..32]);
    let s = Zeroizing::new(Scalar::from_bytes_mod_order(clamp_integer(*lower)));
    let public = EdwardsPoint::mul_base(&s).compress();
    let dom = dom2_ctx(context);
    let r = Zeroizing::new(hash_scalar(&[&dom, &h[32..], message]));
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = hash_scalar(&[&dom, big_r.as_bytes(), public.as_bytes(), message]);
    let big_s = *r + k * *s;
    let mut sig = [0u8; SIGNATURE_LEN];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(big_s.as_bytes());
    sig
}

/// Ed25519ctx verification (RFC 8032 §5.1.7), as strict as `verify_strict`.
fn verify_ctx(key: &VerifyingKey, context: &[u8], message: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else { return false };
    let Some(r) = CompressedEdwardsY(r_bytes).decompress() else { return false };
    let Some(a) = CompressedEdwardsY(key.to_bytes()).decompress() else { return false };
    if r.is_small_order() || a.is_small_order() {
        return false;
    }
    let k = hash_scalar(&[&dom2_ctx(context), &r_bytes, key.as_bytes(), message]);
    // [S]B - [k]A must be R, compared by encoding as RFC 8032 does.
    EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s).compress().to_bytes() == r_bytes
}

/// A pure Ed25519 `CKM_EDDSA` signature with a 32-byte seed.
pub fn signer(seed: &[u8]) -> Result<Box<dyn Signer>> {
    signer_for(Variant::Pure, seed)
}

/// A `CKM_EDDSA` signature of `variant` with a 32-byte seed.
pub fn signer_for(variant: Variant, seed: &[u8]) -> Result<Box<dyn Signer>> {
    let absorbed = Absorbed::for_variant(&variant);
    Ok(Box::new(EdSigner { key: signing_key(seed)?, variant, absorbed }))
}

/// A pure Ed25519 `CKM_EDDSA` check against a public key (raw or DER-wrapped).
pub fn verifier(public: &[u8]) -> Result<Box<dyn Verifier>> {
    verifier_for(Variant::Pure, public)
}

/// A `CKM_EDDSA` check of `variant` against a public key (raw or DER-wrapped).
pub fn verifier_for(variant: Variant, public: &[u8]) -> Result<Box<dyn Verifier>> {
    let raw = parse_point(public)?;
    let key: &[u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
    let key = VerifyingKey::from_bytes(key).map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
    let absorbed = Absorbed::for_variant(&variant);
    Ok(Box::new(EdVerifier { key, variant, absorbed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 8032 §7.1 TEST 1, 2, 3 and TEST SHA(abc): secret key, public key, message, signature.
    const VECTORS: &[(&str, &str, &str, &str)] = &[
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];

    #[test]
    fn rfc_8032_vectors_sign_and_verify_in_parts() {
        for (i, (sk, pk, msg, sig)) in VECTORS.iter().enumerate() {
            let (sk, pk, msg, sig) = (h(sk), h(pk), h(msg), h(sig));
            assert_eq!(public_from_seed(&sk).unwrap(), pk, "vector {i}");
            let mut s = signer(&sk).unwrap();
            for part in msg.chunks(3) {
                s.update(part).unwrap();
            }
            assert_eq!(s.finish().unwrap(), sig, "vector {i}");
            let mut v = verifier(&point_to_der(&pk)).unwrap();
            v.update(&msg).unwrap();
            assert_eq!(v.finish(&sig), Ok(()), "vector {i}");
            let mut v = verifier(&pk).unwrap();
            v.update(&msg).unwrap();
            let mut bad = sig.clone();
            bad[10] ^= 1;
            assert_eq!(v.finish(&bad), Err(Error::SignatureInvalid), "vector {i}");
        }
    }

    // RFC 8032 §7.2 (Ed25519ctx: foo, bar, foo2, foo3) and §7.3 (Ed25519ph: abc):
    // secret key, public key, message, context, signature, prehash.
    const VARIANT_VECTORS: &[(&str, &str, &str, &str, &str, bool)] = &[
        (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
            "f726936d19c800494e3fdaff20b276a8",
            "666f6f",
            "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
            false,
        ),
        (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
            "f726936d19c800494e3fdaff20b276a8",
            "626172",
            "fc60d5872fc46b3aa69f8b5b4351d5808f92bcc044606db097abab6dbcb1aee3216c48e8b3b66431b5b186d1d28f8ee15a5ca2df6668346291c2043d4eb3e90d",
            false,
        ),
        (
            "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
            "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
            "508e9e6882b979fea900f62adceaca35",
            "666f6f",
            "8b70c1cc8310e1de20ac53ce28ae6e7207f33c3295e03bb5c0732a1d20dc64908922a8b052cf99b7c4fe107a5abb5b2c4085ae75890d02df26269d8945f84b0b",
            false,
        ),
        (
            "ab9c2853ce297ddab85c993b3ae14bcad39b2c682beabc27d6d4eb20711d6560",
            "0f1d1274943b91415889152e893d80e93275a1fc0b65fd71b4b0dda10ad7d772",
            "f726936d19c800494e3fdaff20b276a8",
            "666f6f",
            "21655b5f1aa965996b3f97b3c849eafba922a0a62992f73b3d1b73106a84ad85e9b86a7b6005ea868337ff2d20a7f5fbd4cd10b0be49a68da2b2e0dc0ad8960f",
            false,
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "616263",
            "",
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
            true,
        ),
    ];

    #[test]
    fn rfc_8032_ctx_and_ph_vectors_sign_and_verify_in_parts() {
        for (i, (sk, pk, msg, ctx, sig, ph)) in VARIANT_VECTORS.iter().enumerate() {
            let (sk, pk, msg, ctx, sig) = (h(sk), h(pk), h(msg), h(ctx), h(sig));
            let variant = if *ph { Variant::Ph(ctx.clone()) } else { Variant::Ctx(ctx.clone()) };
            assert_eq!(public_from_seed(&sk).unwrap(), pk, "vector {i}");
            let mut s = signer_for(variant.clone(), &sk).unwrap();
            for part in msg.chunks(5) {
                s.update(part).unwrap();
            }
            assert_eq!(s.finish().unwrap(), sig, "vector {i}");
            let mut v = verifier_for(variant.clone(), &pk).unwrap();
            v.update(&msg).unwrap();
            assert_eq!(v.finish(&sig), Ok(()), "vector {i}");
            // Another context, pure Ed25519, or a flipped byte: each refuses it.
            let other = if *ph { Variant::Ph(b"x".to_vec()) } else { Variant::Ctx(b"x".to_vec()) };
            for (what, v2) in [("other context", other), ("pure", Variant::Pure)] {
                let mut v = verifier_for(v2, &pk).unwrap();
                v.update(&msg).unwrap();
                assert_eq!(v.finish(&sig), Err(Error::SignatureInvalid), "vector {i}: {what}");
            }
            let mut bad = sig.clone();
            bad[40] ^= 1;
            let mut v = verifier_for(variant, &pk).unwrap();
            v.update(&msg).unwrap();
            assert_eq!(v.finish(&bad), Err(Error::SignatureInvalid), "vector {i}: tampered");
        }
    }

    #[test]
    fn the_parameter_picks_the_variant() {
        let p = |prehash, context: &[u8]| Param::Eddsa { prehash, context: context.to_vec() };
        assert_eq!(build(CKM_EDDSA, Param::None), Ok(Mechanism::Eddsa(Variant::Pure)));
        assert_eq!(build(CKM_EDDSA, p(false, b"")), Ok(Mechanism::Eddsa(Variant::Pure)));
        assert_eq!(build(CKM_EDDSA, p(false, b"c")), Ok(Mechanism::Eddsa(Variant::Ctx(b"c".to_vec()))));
        assert_eq!(build(CKM_EDDSA, p(true, b"")), Ok(Mechanism::Eddsa(Variant::Ph(Vec::new()))));
        assert_eq!(build(CKM_EDDSA, p(true, &[7; 255])), Ok(Mechanism::Eddsa(Variant::Ph(vec![7; 255]))));
        assert_eq!(build(CKM_EDDSA, p(false, &[7; 256])), Err(Error::MechanismParamInvalid));
        assert_eq!(build(CKM_EDDSA, p(true, &[7; 256])), Err(Error::MechanismParamInvalid));
    }

    #[test]
    fn params_accept_the_oid_and_the_names_only() {
        assert_eq!(check_params(ED25519_OID_DER), Ok(()));
        for name in ["edwards25519", "ed25519"] {
            let der = [&[0x13, u8::try_from(name.len()).unwrap()][..], name.as_bytes()].concat();
            assert_eq!(check_params(&der), Ok(()), "{name}");
        }
        assert_eq!(check_params(ED448_OID_DER), Err(Error::CurveNotSupported));
        assert_eq!(check_params(&h("06082a8648ce3d030107")), Err(Error::CurveNotSupported));
        assert_eq!(check_params(&[0x06]), Err(Error::DomainParamsInvalid));
    }

    #[test]
    fn bad_lengths_are_refused() {
        let mut v = verifier(&h(VECTORS[0].1)).unwrap();
        assert_eq!(v.finish(&[0; 63]), Err(Error::SignatureLenRange));
        assert!(matches!(signer(&[0; 31]), Err(Error::AttributeValueInvalid(_))));
        assert!(matches!(parse_point(&[0; 33]), Err(Error::AttributeValueInvalid(_))));
        let (seed, public) = generate().unwrap();
        assert_eq!(public_from_seed(&seed).unwrap(), public);
    }
}
