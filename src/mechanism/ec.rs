//! Elliptic-curve keys (`CKK_EC`, `CKM_EC_KEY_PAIR_GEN`): curve parameters, key
//! generation, and the encodings PKCS#11 uses for points and scalars.
//!
//! NIST P-256, P-384 and P-521. The rest of the token
//! never touches an EC point or scalar except through this file, and everything handed
//! out is validated:
//!
//! - a public point leaving [`parse_point`], [`generate`] or [`public_from_private`] is
//!   the uncompressed SEC1 form `04 || X || Y` (65, 97 or 133 bytes), on the curve and
//!   not the identity;
//! - a private scalar leaving [`check_private`] or [`generate`] is exactly
//!   [`Curve::field_len`] bytes (32, 48, 66), big-endian, with `0 < d < n`, and lives in
//!   [`Zeroizing`] memory;
//! - `CKA_EC_POINT` is stored as PKCS#11 prescribes, a DER OCTET STRING around the point.
//!
//! Key generation comes from the crypto backend. The checks of imported encodings
//! (points on the curve, decompression, scalar range) use the RustCrypto curve crates in
//! every build: aws-lc-rs has no API that decompresses a point or range-checks a bare
//! scalar, and these run once per imported key, not per operation.

use cryptoki_sys::*;
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

use super::registry::{build_plain, AttrSource, KeyNeed, MechEntry, MechInfo, NewAttr, NewPair, Ops, ParamShape};
use super::Mechanism;
use crate::error::{Error, Result};

/// Smallest and largest field size in bits, for the registry rows of every EC mechanism.
pub const MIN_BITS: CK_ULONG = 256;
/// P-521.
pub const MAX_BITS: CK_ULONG = 521;

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_EC_KEY_PAIR_GEN,
    info: MechInfo {
        min_key: MIN_BITS,
        max_key: MAX_BITS,
        flags: CKF_GENERATE_KEY_PAIR | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
    },
    key: KeyNeed::None,
    param: ParamShape::None,
    build: build_plain,
    ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
}];

/// A new pair on the curve the public template's `CKA_EC_PARAMS` names.
fn generate_pair_op(_: &Mechanism, public: &dyn AttrSource, _: &dyn AttrSource) -> Result<NewPair> {
    let curve = key_curve(public)?;
    let (scalar, point) = generate(curve)?;
    let mut pair = NewPair::of_type(CKK_EC);
    pair.public.push(NewAttr::bytes(CKA_EC_POINT, point_to_der(&point)));
    pair.private.push(NewAttr::bytes(CKA_EC_PARAMS, curve.der_oid().to_vec()));
    pair.private.push(NewAttr { ty: CKA_VALUE, value: scalar });
    Ok(pair)
}

/// The curve of an EC key or template (`CKA_EC_PARAMS`).
pub fn key_curve(key: &dyn AttrSource) -> Result<Curve> {
    curve_from_params(key.required(CKA_EC_PARAMS)?)
}

/// The uncompressed public point of an EC public key.
pub fn key_point(key: &dyn AttrSource, curve: Curve) -> Result<Vec<u8>> {
    parse_point(curve, key.required(CKA_EC_POINT)?)
}

/// The attributes an imported EC key gets in normalized form: a public point as the
/// DER OCTET STRING clients read back, a private scalar at full field length.
pub fn imported(class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    let curve = key_curve(key)?;
    Ok(match class {
        CKO_PUBLIC_KEY => vec![NewAttr::bytes(CKA_EC_POINT, point_to_der(&key_point(key, curve)?))],
        CKO_PRIVATE_KEY => {
            vec![NewAttr { ty: CKA_VALUE, value: check_private(curve, key.required(CKA_VALUE)?)? }]
        }
        _ => Vec::new(),
    })
}

/// The curves the token implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

/// Runs `$body` with `$m` naming the curve's crate (`p256`, `p384` or `p521`).
macro_rules! with_curve {
    ($curve:expr, $m:ident => $body:expr) => {
        match $curve {
            Curve::P256 => {
                use p256 as $m;
                $body
            }
            Curve::P384 => {
                use p384 as $m;
                $body
            }
            Curve::P521 => {
                use p521 as $m;
                $body
            }
        }
    };
}
/// For the rustcrypto backend's curve operations.
#[cfg(not(feature = "aws-lc"))]
pub(super) use with_curve;

/// DER of OID 1.2.840.10045.3.1.7 (prime256v1).
const P256_OID_DER: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Names of P-256 that clients send as a DER PrintableString in `CKA_EC_PARAMS`.
const P256_NAMES: &[&[u8]] = &[b"prime256v1", b"P-256", b"secp256r1"];

/// DER of OID 1.3.132.0.34 (secp384r1).
const P384_OID_DER: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of OID 1.3.132.0.35 (secp521r1).
const P521_OID_DER: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const P384_NAMES: &[&[u8]] = &[b"secp384r1", b"P-384"];
const P521_NAMES: &[&[u8]] = &[b"secp521r1", b"P-521"];

/// A curve, the DER of its OID, and its printable names.
type CurveRow = (Curve, &'static [u8], &'static [&'static [u8]]);

/// Every curve with its OID and printable names.
const CURVES: &[CurveRow] = &[
    (Curve::P256, P256_OID_DER, P256_NAMES),
    (Curve::P384, P384_OID_DER, P384_NAMES),
    (Curve::P521, P521_OID_DER, P521_NAMES),
];

/// DER tags that `ECParameters` may start with.
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_SEQUENCE: u8 = 0x30;

/// SEC1 point tags.
const SEC1_UNCOMPRESSED: u8 = 0x04;
const SEC1_COMPRESSED_EVEN: u8 = 0x02;
const SEC1_COMPRESSED_ODD: u8 = 0x03;

impl Curve {
    /// Length of a field element (and of a scalar) in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The `CKA_EC_PARAMS` value naming the curve: the DER of its OID.
    pub fn der_oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => P256_OID_DER,
            Curve::P384 => P384_OID_DER,
            Curve::P521 => P521_OID_DER,
        }
    }

    /// Length of the uncompressed point `04 || X || Y`.
    fn uncompressed_len(self) -> usize {
        1 + 2 * self.field_len()
    }

    /// Length of the compressed point `02|03 || X`.
    fn compressed_len(self) -> usize {
        1 + self.field_len()
    }
}

/// Splits one DER TLV that spans all of `der` into (tag, contents). Definite lengths
/// only, minimally encoded, up to two length bytes; `None` for anything else.
pub(super) fn der_tlv(der: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, body) = match first {
        0x00..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&l, body) = rest.split_first()?;
            if l < 0x80 {
                return None;
            }
            (usize::from(l), body)
        }
        0x82 => {
            let (len_bytes, body) = rest.split_at_checked(2)?;
            let len = usize::from(len_bytes[0]) << 8 | usize::from(len_bytes[1]);
            if len < 0x100 {
                return None;
            }
            (len, body)
        }
        _ => return None,
    };
    (body.len() == len).then_some((tag, body))
}

/// True if `body` is a well-formed OID encoding: non-empty, every arc minimally encoded
/// and terminated.
fn oid_body_ok(body: &[u8]) -> bool {
    let mut arc_start = true;
    for &b in body {
        if arc_start && b == 0x80 {
            return false;
        }
        arc_start = b & 0x80 == 0;
    }
    !body.is_empty() && arc_start
}

/// `CKA_EC_PARAMS` -> curve. Accepts the DER OIDs of P-256, P-384 and P-521 and the DER
/// PrintableString forms ("prime256v1", "P-256", "secp256r1", "secp384r1", "P-384",
/// "secp521r1", "P-521") some clients send. Any other
/// well-formed `ECParameters` (another OID or name, explicit parameters, implicitlyCA)
/// -> [`Error::CurveNotSupported`]; anything malformed -> [`Error::DomainParamsInvalid`].
pub fn curve_from_params(ec_params: &[u8]) -> Result<Curve> {
    let Some((tag, body)) = der_tlv(ec_params) else {
        return Err(Error::DomainParamsInvalid);
    };
    let by_oid = CURVES.iter().find(|(_, oid, _)| *oid == ec_params).map(|c| c.0);
    let by_name = CURVES.iter().find(|(_, _, names)| names.contains(&body)).map(|c| c.0);
    match tag {
        TAG_OID if by_oid.is_some() => by_oid.ok_or(Error::CurveNotSupported),
        TAG_OID if oid_body_ok(body) => Err(Error::CurveNotSupported),
        TAG_PRINTABLE_STRING if by_name.is_some() => by_name.ok_or(Error::CurveNotSupported),
        TAG_PRINTABLE_STRING if !body.is_empty() && body.iter().all(|&b| printable(b)) => Err(Error::CurveNotSupported),
        TAG_SEQUENCE if !body.is_empty() => Err(Error::CurveNotSupported),
        TAG_NULL if body.is_empty() => Err(Error::CurveNotSupported),
        _ => Err(Error::DomainParamsInvalid),
    }
}

/// The ASN.1 PrintableString character set.
fn printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// A fresh key pair from the crypto backend: (private scalar, field-length bytes
/// big-endian, uniform in `[1, n-1]`; uncompressed public point `04 || X || Y`).
pub fn generate(curve: Curve) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    super::backend::ec_generate(curve)
}

/// `CKA_EC_POINT` as PKCS#11 stores it: DER OCTET STRING of the uncompressed point
/// (`04 41 04 ...` for P-256).
pub fn point_to_der(point: &[u8]) -> Vec<u8> {
    let len = point.len();
    let mut der = Vec::with_capacity(len + 4);
    der.push(TAG_OCTET_STRING);
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(l), _) if l < 0x80 => der.push(l),
        (Ok(l), _) => der.extend_from_slice(&[0x81, l]),
        (_, Ok(l)) => {
            der.push(0x82);
            der.extend_from_slice(&l.to_be_bytes());
        }
        // No point is 64 KiB long; callers only pass points from this file.
        _ => return Vec::new(),
    }
    der.extend_from_slice(point);
    der
}

/// Accepts what clients put in `CKA_EC_POINT` or ECDH public data: the DER OCTET STRING
/// form, the raw uncompressed point, or a raw compressed point; returns the validated
/// uncompressed point (on the curve, not the identity). Malformed or off-curve ->
/// [`Error::AttributeValueInvalid`]`(CKA_EC_POINT)`.
///
/// Raw and wrapped forms never collide: a raw point is 65 or 33 bytes, its DER wrapping
/// 67 or 35, so the length decides which form was meant.
pub fn parse_point(curve: Curve, bytes: &[u8]) -> Result<Vec<u8>> {
    let invalid = Error::AttributeValueInvalid(CKA_EC_POINT);
    let raw = if is_raw_point(curve, bytes) {
        bytes
    } else {
        match der_tlv(bytes) {
            Some((TAG_OCTET_STRING, inner)) if is_raw_point(curve, inner) => inner,
            _ => return Err(invalid),
        }
    };
    with_curve!(curve, m => {
        let key = m::PublicKey::from_sec1_bytes(raw).map_err(|_| invalid)?;
        Ok(key.to_sec1_point(false).as_bytes().to_vec())
    })
}

/// True if `bytes` has the length and tag of a raw compressed or uncompressed point.
/// (Identity, hybrid and compact encodings are not accepted.)
fn is_raw_point(curve: Curve, bytes: &[u8]) -> bool {
    match bytes.first() {
        Some(&SEC1_UNCOMPRESSED) => bytes.len() == curve.uncompressed_len(),
        Some(&SEC1_COMPRESSED_EVEN | &SEC1_COMPRESSED_ODD) => bytes.len() == curve.compressed_len(),
        _ => false,
    }
}

/// Validates a private scalar (`0 < d < n`) and returns it normalized to 32 bytes.
/// Shorter input is left-padded with zeros (some clients strip leading zeros) and longer
/// input is accepted if the extra leading bytes are zero; anything else ->
/// [`Error::AttributeValueInvalid`]`(CKA_VALUE)`.
pub fn check_private(curve: Curve, scalar: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let invalid = Error::AttributeValueInvalid(CKA_VALUE);
    let n = curve.field_len();
    let significant = match scalar.iter().position(|&b| b != 0) {
        Some(first) => &scalar[first..],
        None => return Err(invalid),
    };
    if significant.len() > n {
        return Err(invalid);
    }
    let mut padded = Zeroizing::new(vec![0u8; n]);
    padded[n - significant.len()..].copy_from_slice(significant);
    // Range check only: deriving the public point would cost a scalar multiplication on
    // every signing operation.
    let in_range = with_curve!(curve, m => m::SecretKey::from_slice(&padded).is_ok());
    if !in_range {
        return Err(invalid);
    }
    Ok(padded)
}

/// The public point (uncompressed) of a private scalar. A scalar that
/// [`check_private`] refuses -> [`Error::AttributeValueInvalid`]`(CKA_VALUE)`.
pub fn public_from_private(curve: Curve, scalar: &[u8]) -> Result<Vec<u8>> {
    let normalized = check_private(curve, scalar)?;
    public_point(curve, &normalized)
}

/// The uncompressed public point of an already normalized field-length scalar; a scalar
/// out of range -> [`Error::AttributeValueInvalid`]`(CKA_VALUE)`. (The crate's secret key
/// zeroizes itself on drop.)
fn public_point(curve: Curve, scalar: &[u8]) -> Result<Vec<u8>> {
    let invalid = || Error::AttributeValueInvalid(CKA_VALUE);
    if scalar.len() != curve.field_len() {
        return Err(invalid());
    }
    with_curve!(curve, m => {
        let secret = m::SecretKey::from_slice(scalar).map_err(|_| invalid())?;
        Ok(secret.public_key().to_sec1_point(false).as_bytes().to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    // RFC 6979 A.2.5: the P-256 key pair.
    const D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
    const UX: &str = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6";
    const UY: &str = "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

    fn rfc_point() -> Vec<u8> {
        h(&format!("04{UX}{UY}"))
    }

    #[test]
    fn a_published_key_pair_matches() {
        assert_eq!(public_from_private(Curve::P256, &h(D)).expect("public"), rfc_point());
    }

    #[test]
    fn a_generated_pair_is_consistent() {
        let (d, q) = generate(Curve::P256).expect("generate");
        assert_eq!(d.len(), 32);
        assert_eq!(q.len(), 65);
        assert_eq!(public_from_private(Curve::P256, &d).expect("public"), q);
        assert_eq!(parse_point(Curve::P256, &q).expect("parse"), q);
        let (d2, _) = generate(Curve::P256).expect("generate");
        assert_ne!(d.as_slice(), d2.as_slice());
    }

    #[test]
    fn a_point_survives_the_der_round_trip() {
        let q = rfc_point();
        let der = point_to_der(&q);
        assert_eq!(&der[..3], &[0x04, 0x41, 0x04]);
        assert_eq!(der.len(), 67);
        assert_eq!(parse_point(Curve::P256, &der).expect("der"), q);
    }

    #[test]
    fn a_compressed_point_is_expanded() {
        // Y ends in 0x99, odd: tag 03. Also inside a DER OCTET STRING.
        let compressed = h(&format!("03{UX}"));
        assert_eq!(parse_point(Curve::P256, &compressed).expect("raw"), rfc_point());
        assert_eq!(parse_point(Curve::P256, &point_to_der(&compressed)).expect("der"), rfc_point());
    }

    #[test]
    fn bad_points_are_refused() {
        let invalid = Err(Error::AttributeValueInvalid(CKA_EC_POINT));
        let mut off_curve = rfc_point();
        off_curve[64] ^= 1;
        assert_eq!(parse_point(Curve::P256, &off_curve), invalid);
        assert_eq!(parse_point(Curve::P256, &point_to_der(&off_curve)), invalid);
        for junk in [&[][..], &[0x00], &[0x04], &rfc_point()[..64], &[0x04, 0x41], &[0x05; 65]] {
            assert_eq!(parse_point(Curve::P256, junk), invalid, "{junk:?}");
        }
        let mut wrong_len = point_to_der(&rfc_point());
        wrong_len[1] = 0x40;
        assert_eq!(parse_point(Curve::P256, &wrong_len), invalid);
    }

    #[test]
    fn curve_params_accept_the_oid_and_the_printable_names() {
        assert_eq!(curve_from_params(&h("06082a8648ce3d030107")), Ok(Curve::P256));
        assert_eq!(curve_from_params(Curve::P256.der_oid()), Ok(Curve::P256));
        for name in ["prime256v1", "P-256"] {
            let mut der = vec![0x13, u8::try_from(name.len()).expect("short")];
            der.extend_from_slice(name.as_bytes());
            assert_eq!(curve_from_params(&der), Ok(Curve::P256), "{name}");
        }
    }

    #[test]
    fn curve_params_refuse_other_curves_and_garbage() {
        // secp256k1: 1.3.132.0.10, by OID and by name.
        assert_eq!(curve_from_params(&h("06052b8104000a")), Err(Error::CurveNotSupported));
        assert_eq!(curve_from_params(&h("1309736563703235366b31")), Err(Error::CurveNotSupported));
        for garbage in ["", "06", "06082a8648ce3d0301", "06082a8648ce3d03010700", "0600", "0401ff", "ff"] {
            assert_eq!(curve_from_params(&h(garbage)), Err(Error::DomainParamsInvalid), "{garbage}");
        }
    }

    #[test]
    fn p384_and_p521_are_named_by_oid_and_name_and_generate_consistent_pairs() {
        assert_eq!(curve_from_params(&h("06052b81040022")), Ok(Curve::P384));
        assert_eq!(curve_from_params(&h("06052b81040023")), Ok(Curve::P521));
        assert_eq!(curve_from_params(&h("1309736563703338347231")), Ok(Curve::P384));
        assert_eq!(curve_from_params(&[&[0x13, 5][..], b"P-521"].concat()), Ok(Curve::P521));
        for (curve, point_len) in [(Curve::P384, 97), (Curve::P521, 133)] {
            let (d, q) = generate(curve).expect("generate");
            assert_eq!((d.len(), q.len()), (curve.field_len(), point_len));
            assert_eq!(public_from_private(curve, &d).expect("public"), q);
            assert_eq!(parse_point(curve, &point_to_der(&q)).expect("der"), q);
            assert!(parse_point(Curve::P256, &q).is_err(), "a {curve:?} point is no P-256 point");
        }
        // RFC 5903 §8.3/§8.2 style: P-521's order bounds the scalar.
        let n521 = h("01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
                      fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409");
        assert_eq!(check_private(Curve::P521, &n521), Err(Error::AttributeValueInvalid(CKA_VALUE)));
    }

    #[test]
    fn private_scalars_are_range_checked_and_padded() {
        let invalid = Err(Error::AttributeValueInvalid(CKA_VALUE));
        let n = h("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        assert_eq!(check_private(Curve::P256, &n), invalid);
        assert_eq!(check_private(Curve::P256, &[0; 32]), invalid);
        assert_eq!(check_private(Curve::P256, &[]), invalid);
        assert_eq!(check_private(Curve::P256, &[0xff; 33]), invalid);
        let mut n_minus_1 = n.clone();
        n_minus_1[31] -= 1;
        assert!(check_private(Curve::P256, &n_minus_1).is_ok());
        let one = check_private(Curve::P256, &[1]).expect("one");
        assert_eq!(one.len(), 32);
        assert_eq!(one[31], 1);
        let mut long = vec![0u8];
        long.extend(h(D));
        assert_eq!(check_private(Curve::P256, &long).expect("33 bytes").as_slice(), h(D).as_slice());
    }
}
