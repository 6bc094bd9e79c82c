//! `CKM_ECDSA` and `CKM_ECDSA_SHA224/256/384/512` over P-256, P-384 and P-521 (FIPS 186-5,
//! SEC1).
//!
//! - `CKM_ECDSA`: the data is the caller's hash, signed as a prehash. A hash longer than
//!   the field is truncated to its leftmost 256 bits and a shorter one is zero-extended
//!   on the left, as SEC1 §4.1.3 step 5 and the `ecdsa` crate's `bytes2scalar` do. The
//!   crate (0.17) sets no minimum length; this file refuses only empty input and input
//!   longer than [`MAX_PREHASH_LEN`] (no digest comes close), with `CKR_DATA_LEN_RANGE`.
//! - `CKM_ECDSA_SHA*`: the hash over all the data, then the same signature.
//!
//! Signatures are PKCS#11's `r || s`, each a field-length big-endian integer (not DER).
//! The nonce is RFC 6979 deterministic (HMAC DRBG keyed by the scalar and the hash, with
//! the curve's own hash: SHA-256, SHA-384, SHA-512), so signing needs no RNG and cannot
//! fail on one. S is not normalized to the
//! low half (P-256 ECDSA does not require it), and verification accepts both halves.
//!
//! `finish` does not consume the absorbed data, so a caller that retries after
//! `CKR_BUFFER_TOO_SMALL` gets the same signature.

use ::sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use cryptoki_sys::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use zeroize::Zeroizing;

use super::ec::{self, with_curve, Curve};
use super::registry::{build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, ParamShape};
use super::{HashAlg, Mechanism, Signer, Verifier};
use crate::error::{Error, Result};

const FLAGS: CK_FLAGS = CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;

const fn row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: ec::MIN_BITS, max_key: ec::MAX_BITS, flags: FLAGS },
        key: KeyNeed::Pair(&[CKK_EC]),
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { sign: Some(sign_op), verify: Some(verify_op), ..Ops::NONE },
    }
}

/// Registry rows.
pub const ENTRIES: &[MechEntry] =
    &[row(CKM_ECDSA), row(CKM_ECDSA_SHA224), row(CKM_ECDSA_SHA256), row(CKM_ECDSA_SHA384), row(CKM_ECDSA_SHA512)];

fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let Mechanism::Ecdsa(hash) = m else { return Err(Error::MechanismInvalid) };
    signer(ec::key_curve(key)?, &key.secret()?, *hash)
}

fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let Mechanism::Ecdsa(hash) = m else { return Err(Error::MechanismInvalid) };
    let curve = ec::key_curve(key)?;
    verifier(curve, &ec::key_point(key, curve)?, *hash)
}

/// `CKM_ECDSA_SHA*` for a hash.
pub fn hash_mech(hash: super::HashAlg) -> CK_MECHANISM_TYPE {
    use super::HashAlg as H;
    match hash {
        H::Sha224 => CKM_ECDSA_SHA224,
        H::Sha384 => CKM_ECDSA_SHA384,
        H::Sha512 => CKM_ECDSA_SHA512,
        H::Sha3_256 => CKM_ECDSA_SHA3_256,
        H::Sha3_384 => CKM_ECDSA_SHA3_384,
        H::Sha3_512 => CKM_ECDSA_SHA3_512,
        H::Sha256 => CKM_ECDSA_SHA256,
        H::Sha1 => CKM_ECDSA_SHA1,
    }
}

/// Most bytes `CKM_ECDSA` accepts as the hash: ample for any digest, and a bound on
/// what repeated updates can buffer.
pub const MAX_PREHASH_LEN: usize = 1024;

/// What the operation has absorbed so far.
enum Input {
    /// `CKM_ECDSA`: the caller's hash, buffered.
    Prehash(Zeroizing<Vec<u8>>),
    /// `CKM_ECDSA_SHA*`: the running hash.
    Sha224(Sha224),
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-384.
    Sha384(Sha384),
    /// SHA-512.
    Sha512(Sha512),
}

impl Input {
    fn new(hash: Option<HashAlg>) -> Result<Self> {
        Ok(match hash {
            None => Input::Prehash(Zeroizing::default()),
            Some(HashAlg::Sha224) => Input::Sha224(Sha224::new()),
            Some(HashAlg::Sha256) => Input::Sha256(Sha256::new()),
            Some(HashAlg::Sha384) => Input::Sha384(Sha384::new()),
            Some(HashAlg::Sha512) => Input::Sha512(Sha512::new()),
            Some(_) => return Err(Error::MechanismInvalid),
        })
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Prehash(buf) => {
                if buf.len().saturating_add(data.len()) > MAX_PREHASH_LEN {
                    return Err(Error::DataLenRange);
                }
                buf.extend_from_slice(data);
            }
            Input::Sha224(h) => Digest::update(h, data),
            Input::Sha256(h) => Digest::update(h, data),
            Input::Sha384(h) => Digest::update(h, data),
            Input::Sha512(h) => Digest::update(h, data),
        }
        Ok(())
    }

    /// The value to sign or verify, leaving the state as it was.
    fn digest(&self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Prehash(buf) if buf.is_empty() => Err(Error::DataLenRange),
            Input::Prehash(buf) => Ok(buf.clone()),
            Input::Sha224(h) => Ok(Zeroizing::new(h.clone().finalize().to_vec())),
            Input::Sha256(h) => Ok(Zeroizing::new(h.clone().finalize().to_vec())),
            Input::Sha384(h) => Ok(Zeroizing::new(h.clone().finalize().to_vec())),
            Input::Sha512(h) => Ok(Zeroizing::new(h.clone().finalize().to_vec())),
        }
    }
}

/// Length of `r || s`.
fn signature_len(curve: Curve) -> usize {
    2 * curve.field_len()
}

struct EcdsaSigner {
    /// The normalized private scalar.
    d: Zeroizing<Vec<u8>>,
    curve: Curve,
    input: Input,
}

/// The scalar as the crate's non-zero scalar (zeroized on drop by the crate).
macro_rules! nonzero {
    ($m:ident, $d:expr) => {{
        let bytes = $m::FieldBytes::try_from($d).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
        Option::<$m::NonZeroScalar>::from($m::NonZeroScalar::from_repr(bytes))
            .ok_or(Error::AttributeValueInvalid(CKA_VALUE))?
    }};
}

impl Signer for EcdsaSigner {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn signature_len(&self) -> usize {
        signature_len(self.curve)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let z = self.input.digest()?;
        let d = self.d.as_slice();
        // Exactly what `SigningKey::sign_prehash` does (RFC 6979, no added entropy),
        // without deriving the public key first.
        Ok(match self.curve {
            Curve::P256 => {
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, Sha256>(&nonzero!(p256, d), &z, &[]);
                sig.to_bytes().to_vec()
            }
            Curve::P384 => {
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p384::NistP384, Sha384>(&nonzero!(p384, d), &z, &[]);
                sig.to_bytes().to_vec()
            }
            Curve::P521 => {
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p521::NistP521, Sha512>(&nonzero!(p521, d), &z, &[]);
                sig.to_bytes().to_vec()
            }
        })
    }
}

struct EcdsaVerifier {
    /// The validated uncompressed public point.
    point: Vec<u8>,
    curve: Curve,
    input: Input,
}

impl Verifier for EcdsaVerifier {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != signature_len(self.curve) {
            return Err(Error::SignatureLenRange);
        }
        let z = self.input.digest()?;
        with_curve!(self.curve, m => {
            let key = m::ecdsa::VerifyingKey::from_sec1_bytes(&self.point)
                .map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
            // `from_slice` refuses r or s that is zero or not below n.
            let sig = m::ecdsa::Signature::from_slice(signature).map_err(|_| Error::SignatureInvalid)?;
            key.verify_prehash(&z, &sig).map_err(|_| Error::SignatureInvalid)
        })
    }
}

/// A signature with the private `scalar` (left-padded if short, see
/// [`ec::check_private`]). `hash == None`: `CKM_ECDSA`; otherwise `CKM_ECDSA_SHA*`.
pub fn signer(curve: Curve, scalar: &[u8], hash: Option<HashAlg>) -> Result<Box<dyn Signer>> {
    let d = ec::check_private(curve, scalar)?;
    Ok(Box::new(EcdsaSigner { d, curve, input: Input::new(hash)? }))
}

/// A check of `r || s` against the public `point` (uncompressed, or any form
/// [`ec::parse_point`] takes). A signature of the wrong length ->
/// [`Error::SignatureLenRange`]; any other failure, including r or s zero or out of
/// range -> [`Error::SignatureInvalid`].
pub fn verifier(curve: Curve, point: &[u8], hash: Option<HashAlg>) -> Result<Box<dyn Verifier>> {
    let point = ec::parse_point(curve, point)?;
    Ok(Box::new(EcdsaVerifier { point, curve, input: Input::new(hash)? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    // RFC 6979 A.2.5, P-256: key pair, and the SHA-256 signatures of "sample" and "test".
    const D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
    const Q: &str = "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
                     7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
    const VECTORS: &[(&[u8], &str)] = &[
        (
            b"sample",
            "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716\
             f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
        ),
        (
            b"test",
            "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367\
             019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
        ),
    ];

    fn sign(hash: bool, parts: &[&[u8]]) -> Result<Vec<u8>> {
        let mut s = signer(Curve::P256, &h(D), hash.then_some(HashAlg::Sha256))?;
        for p in parts {
            s.update(p)?;
        }
        s.finish()
    }

    fn verify(hash: bool, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut v = verifier(Curve::P256, &h(Q), hash.then_some(HashAlg::Sha256))?;
        v.update(data)?;
        v.finish(sig)
    }

    #[test]
    fn rfc6979_signatures_match_exactly() {
        for (msg, want) in VECTORS {
            assert_eq!(sign(true, &[msg]).expect("sign"), h(want), "{msg:?}");
            let split = msg.len() / 2;
            assert_eq!(sign(true, &[&msg[..split], &msg[split..]]).expect("sign"), h(want));
            let digest = Sha256::digest(msg);
            assert_eq!(sign(false, &[&digest]).expect("sign"), h(want));
            assert_eq!(verify(true, msg, &h(want)), Ok(()));
            assert_eq!(verify(false, &digest, &h(want)), Ok(()));
        }
    }

    #[test]
    fn finish_twice_gives_the_same_signature() {
        let mut s = signer(Curve::P256, &h(D), Some(HashAlg::Sha256)).expect("signer");
        s.update(b"sample").expect("update");
        assert_eq!(s.signature_len(), 64);
        assert_eq!(s.finish().expect("first"), s.finish().expect("second"));
    }

    #[test]
    fn a_flipped_byte_of_signature_or_message_fails() {
        let (msg, sig) = VECTORS[0];
        let sig = h(sig);
        for i in 0..sig.len() {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(verify(true, msg, &bad), Err(Error::SignatureInvalid), "byte {i}");
        }
        let mut bad_msg = msg.to_vec();
        bad_msg[0] ^= 0x01;
        assert_eq!(verify(true, &bad_msg, &sig), Err(Error::SignatureInvalid));
    }

    #[test]
    fn out_of_range_r_or_s_is_invalid_not_a_panic() {
        let (msg, _) = VECTORS[0];
        let n = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
        let one = "0000000000000000000000000000000000000000000000000000000000000001";
        let zero = "0000000000000000000000000000000000000000000000000000000000000000";
        let ff = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        for (r, s) in [(zero, one), (one, zero), (n, one), (one, n), (ff, ff), (zero, zero)] {
            assert_eq!(verify(true, msg, &h(&format!("{r}{s}"))), Err(Error::SignatureInvalid));
        }
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_out_of_range() {
        let (msg, sig) = VECTORS[0];
        let sig = h(sig);
        assert_eq!(verify(true, msg, &sig[..63]), Err(Error::SignatureLenRange));
        assert_eq!(verify(true, msg, &[sig.as_slice(), &[0]].concat()), Err(Error::SignatureLenRange));
        assert_eq!(verify(true, msg, &[]), Err(Error::SignatureLenRange));
    }

    #[test]
    fn a_random_key_round_trips_and_long_hashes_are_truncated() {
        let (d, q) = ec::generate(Curve::P256).expect("generate");
        let sha512_like = [0x5au8; 64];
        let mut s = signer(Curve::P256, &d, None).expect("signer");
        s.update(&sha512_like).expect("update");
        let sig = s.finish().expect("sign");
        let mut v = verifier(Curve::P256, &q, None).expect("verifier");
        v.update(&sha512_like).expect("update");
        assert_eq!(v.finish(&sig), Ok(()));
        // Only the leftmost 32 bytes count.
        let mut v = verifier(Curve::P256, &q, None).expect("verifier");
        v.update(&sha512_like[..32]).expect("update");
        assert_eq!(v.finish(&sig), Ok(()));
    }

    #[test]
    fn empty_or_oversized_prehash_is_refused() {
        assert_eq!(sign(false, &[]), Err(Error::DataLenRange));
        let mut s = signer(Curve::P256, &h(D), None).expect("signer");
        assert_eq!(s.update(&[0; MAX_PREHASH_LEN + 1]), Err(Error::DataLenRange));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(signer(Curve::P256, &[0; 32], Some(HashAlg::Sha256)).is_err());
        assert_eq!(
            verifier(Curve::P256, &[0x04; 65], Some(HashAlg::Sha256)).err(),
            Some(Error::AttributeValueInvalid(CKA_EC_POINT))
        );
    }
}
