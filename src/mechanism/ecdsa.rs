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
//! The nonce depends on the backend: RFC 6979 deterministic under `rustcrypto` (HMAC
//! DRBG keyed by the scalar and the hash, with the curve's own hash), AWS-LC's hedged
//! nonce (its CSPRNG mixed with the key and hash) under `aws-lc`. S is not normalized to
//! the low half (ECDSA does not require it), and verification accepts both halves.
//!
//! The backend's parsed keys are kept in the key object's `Prepared` cache, so a sign or
//! verify parses nothing. `finish` keeps the hash it computed, so a caller that retries
//! after `CKR_BUFFER_TOO_SMALL` signs the same hash.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::backend::{EcdsaSigningKey, EcdsaVerifyingKey};
use super::ec::{self, Curve};
use super::registry::{build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, ParamShape};
use super::{hash, Digester, HashAlg, Mechanism, Signer, Verifier};
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

/// Which prepared keys a [`super::Prepared`] cache keeps: one per operation kind.
const SIGNING_KEY_TAG: u64 = CKM_ECDSA << 8;
const VERIFYING_KEY_TAG: u64 = (CKM_ECDSA << 8) | 1;

fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let Mechanism::Ecdsa(hash) = m else { return Err(Error::MechanismInvalid) };
    let curve = ec::key_curve(key)?;
    let prepared = key.prepared().get_or_make(SIGNING_KEY_TAG, || {
        let d = ec::check_private(curve, &key.secret()?)?;
        EcdsaSigningKey::new(curve, &d)
    })?;
    Ok(Box::new(EcdsaSigner { key: prepared, curve, input: Input::new(*hash)? }))
}

fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let Mechanism::Ecdsa(hash) = m else { return Err(Error::MechanismInvalid) };
    let curve = ec::key_curve(key)?;
    let prepared =
        key.prepared().get_or_make(VERIFYING_KEY_TAG, || EcdsaVerifyingKey::new(curve, &ec::key_point(key, curve)?))?;
    Ok(Box::new(EcdsaVerifier { key: prepared, curve, input: Input::new(*hash)? }))
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
    /// `CKM_ECDSA`: the caller's hash, buffered (and, after `finish`, the computed one).
    Prehash(Zeroizing<Vec<u8>>),
    /// `CKM_ECDSA_SHA*`: the running hash.
    Hashing(Box<dyn Digester>),
}

impl Input {
    fn new(hash: Option<HashAlg>) -> Result<Self> {
        Ok(match hash {
            None => Input::Prehash(Zeroizing::default()),
            Some(h @ (HashAlg::Sha224 | HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512)) => {
                Input::Hashing(hash::digester(h))
            }
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
            Input::Hashing(h) => h.update(data),
        }
        Ok(())
    }

    /// The value to sign or verify. A running hash is finished once and kept, so a
    /// second call gives the same value.
    fn digest(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        if let Input::Hashing(h) = self {
            *self = Input::Prehash(Zeroizing::new(h.finish()));
        }
        match self {
            Input::Prehash(buf) if buf.is_empty() => Err(Error::DataLenRange),
            Input::Prehash(buf) => Ok(buf.clone()),
            Input::Hashing(_) => Err(Error::OperationNotInitialized),
        }
    }
}

/// Length of `r || s`.
fn signature_len(curve: Curve) -> usize {
    2 * curve.field_len()
}

struct EcdsaSigner {
    key: Arc<EcdsaSigningKey>,
    curve: Curve,
    input: Input,
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
        self.key.sign_prehash(&z)
    }
}

struct EcdsaVerifier {
    key: Arc<EcdsaVerifyingKey>,
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
        self.key.verify_prehash(&z, signature)
    }
}

/// A signature with the private `scalar` (left-padded if short, see
/// [`ec::check_private`]). `hash == None`: `CKM_ECDSA`; otherwise `CKM_ECDSA_SHA*`.
pub fn signer(curve: Curve, scalar: &[u8], hash: Option<HashAlg>) -> Result<Box<dyn Signer>> {
    let d = ec::check_private(curve, scalar)?;
    let key = Arc::new(EcdsaSigningKey::new(curve, &d)?);
    Ok(Box::new(EcdsaSigner { key, curve, input: Input::new(hash)? }))
}

/// A check of `r || s` against the public `point` (uncompressed, or any form
/// [`ec::parse_point`] takes). A signature of the wrong length ->
/// [`Error::SignatureLenRange`]; any other failure, including r or s zero or out of
/// range -> [`Error::SignatureInvalid`].
pub fn verifier(curve: Curve, point: &[u8], hash: Option<HashAlg>) -> Result<Box<dyn Verifier>> {
    let point = ec::parse_point(curve, point)?;
    let key = Arc::new(EcdsaVerifyingKey::new(curve, &point)?);
    Ok(Box::new(EcdsaVerifier { key, curve, input: Input::new(hash)? }))
}

#[cfg(test)]
mod tests {
    use super::super::backend;
    use super::*;
    use sha2::{Digest, Sha256};

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

    /// Under a deterministic backend the signature is RFC 6979's exactly; under aws-lc
    /// (hedged nonces) it must verify under the vector's public key.
    fn assert_signs(msg: &[u8], sig: &[u8], want: &str) {
        if backend::ECDSA_DETERMINISTIC {
            assert_eq!(sig, h(want).as_slice(), "{msg:?}");
        } else {
            assert_eq!(verify(true, msg, sig), Ok(()), "{msg:?}");
            assert_ne!(sig, h(want).as_slice(), "a hedged nonce is not RFC 6979's");
        }
    }

    #[test]
    fn rfc6979_signatures_match_exactly() {
        for (msg, want) in VECTORS {
            assert_signs(msg, &sign(true, &[msg]).expect("sign"), want);
            let split = msg.len() / 2;
            assert_signs(msg, &sign(true, &[&msg[..split], &msg[split..]]).expect("sign"), want);
            let digest = Sha256::digest(msg);
            assert_signs(msg, &sign(false, &[&digest]).expect("sign"), want);
            assert_eq!(verify(true, msg, &h(want)), Ok(()));
            assert_eq!(verify(false, &digest, &h(want)), Ok(()));
        }
    }

    #[test]
    fn finish_twice_gives_the_same_signature() {
        let mut s = signer(Curve::P256, &h(D), Some(HashAlg::Sha256)).expect("signer");
        s.update(b"sample").expect("update");
        assert_eq!(s.signature_len(), 64);
        let (first, second) = (s.finish().expect("first"), s.finish().expect("second"));
        if backend::ECDSA_DETERMINISTIC {
            assert_eq!(first, second);
        }
        // Either way the second signature is over the same hash, not an empty one.
        assert_eq!(verify(true, b"sample", &second), Ok(()));
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
