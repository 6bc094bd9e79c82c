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
//! Only pure Ed25519 is implemented: `CK_EDDSA_PARAMS` asking for Ed25519ph or a context
//! is refused when the mechanism is decoded. Pure EdDSA hashes the message twice, so a
//! multi-part signature buffers the data (up to [`MAX_MESSAGE_LEN`]).

use cryptoki_sys::*;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
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

/// Pure Ed25519 only: no parameter, or `CK_EDDSA_PARAMS` without prehash and context
/// (Ed25519ph and Ed25519ctx are not implemented).
fn build(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    match p {
        Param::None | Param::Eddsa { prehash: false, context_len: 0 } => Ok(Mechanism::Eddsa),
        _ => Err(Error::MechanismParamInvalid),
    }
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

fn sign_op(_: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    signer(&key.secret()?)
}

fn verify_op(_: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    verifier(key.required(CKA_EC_POINT)?)
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

/// The buffered message of a pure EdDSA operation.
#[derive(Default)]
struct Message(Zeroizing<Vec<u8>>);

impl Message {
    fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.0.len().saturating_add(data.len()) > MAX_MESSAGE_LEN {
            return Err(Error::DataLenRange);
        }
        self.0.extend_from_slice(data);
        Ok(())
    }
}

struct EdSigner {
    key: SigningKey,
    message: Message,
}

impl Signer for EdSigner {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.push(data)
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(&self.message.0).to_bytes().to_vec())
    }
}

struct EdVerifier {
    key: VerifyingKey,
    message: Message,
}

impl Verifier for EdVerifier {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.push(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let sig: &[u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| Error::SignatureLenRange)?;
        let sig = Signature::from_bytes(sig);
        // Strict: canonical S, and no small-order R or key (RFC 8032 §5.1.7 plus the
        // checks that stop signature malleability).
        self.key.verify_strict(&self.message.0, &sig).map_err(|_| Error::SignatureInvalid)
    }
}

/// A `CKM_EDDSA` signature with a 32-byte seed.
pub fn signer(seed: &[u8]) -> Result<Box<dyn Signer>> {
    Ok(Box::new(EdSigner { key: signing_key(seed)?, message: Message::default() }))
}

/// A `CKM_EDDSA` check against a public key (raw or DER-wrapped).
pub fn verifier(public: &[u8]) -> Result<Box<dyn Verifier>> {
    let raw = parse_point(public)?;
    let key: &[u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
    let key = VerifyingKey::from_bytes(key).map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
    Ok(Box::new(EdVerifier { key, message: Message::default() }))
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
