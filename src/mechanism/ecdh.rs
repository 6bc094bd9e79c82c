//! `CKM_ECDH1_DERIVE` over P-256, P-384 and P-521 (SEC1 §3.3.1 ECDH primitive, ANSI X9.63
//! KDF).
//!
//! The shared secret Z is the x-coordinate of `d · Q_peer`, field-length bytes big-endian.
//! The peer point is fully validated (on the curve, not the identity) before use, so no
//! invalid-curve or small-subgroup point reaches the multiplication; the NIST curves have
//! cofactor 1, so plain and cofactor ECDH agree. Z and every derived key live in [`Zeroizing`] memory.
//!
//! Key derivation functions:
//! - `CKD_NULL`: the key is Z itself, or its leftmost `key_len` bytes when the template
//!   asks for a shorter key. PKCS#11 does not say which end to keep; the leftmost bytes
//!   are what OpenSSL's `ECDH_compute_key` returns for a short output buffer, and so what
//!   OpenSSL-backed tokens (kryoptic, opencryptoki's soft token) give. SoftHSM v2 is
//!   believed to keep the rightmost bytes instead; interoperating with it on truncated
//!   `CKD_NULL` keys needs care (better: use a KDF).
//! - `CKD_SHA256_KDF`: ANSI X9.63 (SEC1 §3.6.1) with SHA-256:
//!   `SHA256(Z || counter_be32 || shared_data)` for counter = 1, 2, ... until `key_len`.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::backend::EcdhKey;
use super::ec::{self, Curve};
use super::hash::{self, HashAlg};
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::secret_key::MAX_GENERIC_LEN;
use super::{EcdhParams, Mechanism};
use crate::error::{Error, Result};

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_ECDH1_DERIVE,
    info: MechInfo {
        min_key: ec::MIN_BITS,
        max_key: ec::MAX_BITS,
        flags: CKF_DERIVE | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
    },
    key: KeyNeed::Pair(&[CKK_EC]),
    param: ParamShape::Ecdh,
    build,
    ops: Ops { derive: Some(derive_op), ..Ops::NONE },
}];

fn build(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Ecdh(params) = p else { return Err(Error::MechanismParamInvalid) };
    if params.public_data.is_empty() {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Mechanism::Ecdh1Derive(params))
}

fn derive_op(m: &Mechanism, base: &dyn KeyView, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let Mechanism::Ecdh1Derive(params) = m else { return Err(Error::MechanismInvalid) };
    let curve = ec::key_curve(base)?;
    // The backend's parsed key, kept with the key object: a derive parses only the peer.
    let key = base
        .prepared()
        .get_or_make(CKM_ECDH1_DERIVE << 8, || EcdhKey::new(curve, &ec::check_private(curve, &base.secret()?)?))?;
    derive_with(curve, &key, params, len)
}

/// Longest key the X9.63 KDF produces here: the generic secret key maximum.
pub const MAX_KDF_LEN: usize = MAX_GENERIC_LEN;

/// ECDH with our `scalar` and the peer's public data (raw or DER-wrapped point; a bad
/// point -> [`Error::MechanismParamInvalid`]), then the KDF `params.kdf` names.
///
/// `key_len` is the derived key length the template asks for (`CKA_VALUE_LEN`), or
/// `None` for all of Z (`CKD_NULL`) / 32 bytes (`CKD_SHA256_KDF`). A zero length, more
/// than Z with `CKD_NULL`, or more than [`MAX_KDF_LEN`] -> [`Error::KeySizeRange`].
/// Shared data with `CKD_NULL`, or any other KDF -> [`Error::MechanismParamInvalid`].
pub fn derive(curve: Curve, scalar: &[u8], params: &EcdhParams, key_len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let key = EcdhKey::new(curve, &ec::check_private(curve, scalar)?)?;
    derive_with(curve, &key, params, key_len)
}

/// [`derive`] with a prepared private key.
fn derive_with(curve: Curve, key: &EcdhKey, params: &EcdhParams, key_len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    match params.kdf {
        CKD_NULL if !params.shared_data.is_empty() => return Err(Error::MechanismParamInvalid),
        CKD_NULL | CKD_SHA256_KDF => {}
        _ => return Err(Error::MechanismParamInvalid),
    }
    let peer = ec::parse_point(curve, &params.public_data).map_err(|_| Error::MechanismParamInvalid)?;
    let z = key.agree(&peer)?;
    if params.kdf == CKD_NULL {
        let len = key_len.unwrap_or(z.len());
        if len == 0 || len > z.len() {
            return Err(Error::KeySizeRange);
        }
        Ok(Zeroizing::new(z[..len].to_vec()))
    } else {
        let len = key_len.unwrap_or(32);
        if len == 0 || len > MAX_KDF_LEN {
            return Err(Error::KeySizeRange);
        }
        x963_sha256(&z, &params.shared_data, len)
    }
}

/// ANSI X9.63 KDF with SHA-256: `len` bytes of
/// `SHA256(Z || 00000001 || shared) || SHA256(Z || 00000002 || shared) || ...`.
fn x963_sha256(z: &[u8], shared_data: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut h = hash::digester(HashAlg::Sha256);
        h.update(z);
        h.update(&counter.to_be_bytes());
        h.update(shared_data);
        out.extend_from_slice(&h.finish());
        counter = counter.checked_add(1).ok_or(Error::KeySizeRange)?;
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    fn params(kdf: CK_EC_KDF_TYPE, shared: &[u8], public: Vec<u8>) -> EcdhParams {
        EcdhParams { kdf, shared_data: shared.to_vec(), public_data: public }
    }

    // RFC 5903 §8.1 (256-bit random ECP group): initiator i, responder public gr, and
    // the shared x-coordinate girx.
    const I: &str = "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433";
    const GR: &str = "04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63\
                      56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab";
    const GIRX: &str = "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de";

    // NIST CAVS 14.1, KAS ECC CDH primitive (ecccdhtestvectors.zip), P-256 COUNT = 0.
    const CAVS_QX: &str = "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287";
    const CAVS_QY: &str = "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac";
    const CAVS_D: &str = "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534";
    const CAVS_Z: &str = "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b";

    #[test]
    fn known_answers_with_the_null_kdf() {
        let z = derive(Curve::P256, &h(I), &params(CKD_NULL, &[], h(GR)), None).expect("rfc 5903");
        assert_eq!(z.as_slice(), h(GIRX).as_slice());
        let q = h(&format!("04{CAVS_QX}{CAVS_QY}"));
        let z = derive(Curve::P256, &h(CAVS_D), &params(CKD_NULL, &[], q.clone()), None).expect("cavs");
        assert_eq!(z.as_slice(), h(CAVS_Z).as_slice());
        // The DER-wrapped point gives the same Z.
        let z = derive(Curve::P256, &h(CAVS_D), &params(CKD_NULL, &[], ec::point_to_der(&q)), None).expect("der");
        assert_eq!(z.as_slice(), h(CAVS_Z).as_slice());
    }

    #[test]
    fn a_short_null_kdf_key_is_the_leftmost_bytes() {
        let p = params(CKD_NULL, &[], h(GR));
        let k = derive(Curve::P256, &h(I), &p, Some(16)).expect("derive");
        assert_eq!(k.as_slice(), &h(GIRX)[..16]);
        assert_eq!(derive(Curve::P256, &h(I), &p, Some(33)), Err(Error::KeySizeRange));
        assert_eq!(derive(Curve::P256, &h(I), &p, Some(0)), Err(Error::KeySizeRange));
    }

    #[test]
    fn the_two_sides_agree() {
        let (da, qa) = ec::generate(Curve::P256).expect("a");
        let (db, qb) = ec::generate(Curve::P256).expect("b");
        for (kdf, shared) in [(CKD_NULL, &b""[..]), (CKD_SHA256_KDF, &b"context"[..])] {
            let ka = derive(Curve::P256, &da, &params(kdf, shared, qb.clone()), None).expect("a side");
            let kb = derive(Curve::P256, &db, &params(kdf, shared, qa.clone()), None).expect("b side");
            assert_eq!(ka.as_slice(), kb.as_slice());
            assert_eq!(ka.len(), 32);
        }
    }

    #[test]
    fn the_sha256_kdf_is_x963() {
        let shared = b"shared info";
        let p = params(CKD_SHA256_KDF, shared, h(GR));
        let one = derive(Curve::P256, &h(I), &p, Some(32)).expect("32");
        let want = Sha256::digest([h(GIRX).as_slice(), &[0, 0, 0, 1], shared].concat());
        assert_eq!(one.as_slice(), want.as_slice());
        assert_eq!(derive(Curve::P256, &h(I), &p, None).expect("default"), one);
        let long = derive(Curve::P256, &h(I), &p, Some(48)).expect("48");
        let second = Sha256::digest([h(GIRX).as_slice(), &[0, 0, 0, 2], shared].concat());
        assert_eq!(&long[..32], one.as_slice());
        assert_eq!(&long[32..], &second[..16]);
        assert_eq!(derive(Curve::P256, &h(I), &p, Some(MAX_KDF_LEN + 1)), Err(Error::KeySizeRange));
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = Err(Error::MechanismParamInvalid);
        assert_eq!(derive(Curve::P256, &h(I), &params(CKD_NULL, b"x", h(GR)), None), bad);
        assert_eq!(derive(Curve::P256, &h(I), &params(CKD_SHA1_KDF, &[], h(GR)), None), bad);
        let mut off_curve = h(GR);
        off_curve[64] ^= 1;
        assert_eq!(derive(Curve::P256, &h(I), &params(CKD_NULL, &[], off_curve), None), bad);
        assert_eq!(derive(Curve::P256, &h(I), &params(CKD_NULL, &[], vec![]), None), bad);
        assert_eq!(derive(Curve::P256, &h(I), &params(CKD_NULL, &[], vec![0]), None), bad);
    }
}
