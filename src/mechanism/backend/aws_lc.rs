//! The aws-lc backend (aws-lc-rs over AWS-LC, the default build): the same functions and
//! types as `rust_crypto.rs`, over AWS-LC's assembly AES-GCM, SHA and P-curve code.
//!
//! Each key type here is made once per key object (the callers keep it in the object's
//! `Prepared` cache), so a call pays for the operation only, not for parsing the key.
//! aws-lc-rs zeroizes the key material it holds when these values drop.
//!
//! Where aws-lc-rs has no direct form of what PKCS#11 asks, this file builds it from
//! aws-lc primitives and says how: GCM tags shorter than 16 bytes, AES-192 key wrap, and
//! `CKM_ECDSA`'s caller-supplied hash of any length.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use aws_lc_rs::cipher::{self, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use aws_lc_rs::hmac;
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap, KeyWrapPadded};
use aws_lc_rs::signature::{self, EcdsaKeyPair, ParsedPublicKey};
use zeroize::{Zeroize, Zeroizing};

use super::super::ec::Curve;
use super::super::{Digester, Signer, Verifier};
use super::Sha;
use crate::error::{Error, Internal, Result};

/// The backend's name, as `C_GetInfo` and `cvault token status` report it.
pub const NAME: &str = "aws-lc";

/// Fills `buf` from AWS-LC's CSPRNG (seeded from the OS, fork-safe).
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| {
        log::error!("the aws-lc random source failed");
        Error::Internal(Internal::RandomSource)
    })
}

// ---- AES-GCM (SP 800-38D) ----------------------------------------------------------

/// Full GCM tag length; shorter tags are its leftmost bytes.
const GCM_TAG: usize = 16;

/// An AES-GCM key (128, 192 or 256 bits) for tags of one length.
pub struct Gcm {
    key: LessSafeKey,
    /// For tags shorter than 16 bytes only: AES-CTR under the same key, which aws-lc's
    /// AEAD cannot open with a truncated tag (see [`Gcm::open`]).
    ctr: Option<EncryptingKey>,
    tag_len: usize,
}

impl Gcm {
    /// Prepares `key` for tags of `tag_len` bytes (12 to 16).
    pub fn new(key: &[u8], tag_len: usize) -> Result<Gcm> {
        let (aead_alg, block_alg) = match key.len() {
            16 => (&aead::AES_128_GCM, &cipher::AES_128),
            24 => (&aead::AES_192_GCM, &cipher::AES_192),
            32 => (&aead::AES_256_GCM, &cipher::AES_256),
            _ => return Err(Error::KeySizeRange),
        };
        if !(12..=GCM_TAG).contains(&tag_len) {
            return Err(Error::MechanismParamInvalid);
        }
        let unbound = UnboundKey::new(aead_alg, key).map_err(|_| Error::KeySizeRange)?;
        let ctr = if tag_len < GCM_TAG {
            let k = UnboundCipherKey::new(block_alg, key).map_err(|_| Error::KeySizeRange)?;
            Some(EncryptingKey::ctr(k).map_err(|_| Error::KeySizeRange)?)
        } else {
            None
        };
        Ok(Gcm { key: LessSafeKey::new(unbound), ctr, tag_len })
    }

    fn nonce(iv: &[u8]) -> Result<Nonce> {
        Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::MechanismParamInvalid)
    }

    /// Encrypts `buf` in place; returns the tag (`tag_len` bytes).
    pub fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>> {
        let tag = self
            .key
            .seal_in_place_separate_tag(Self::nonce(iv)?, Aad::from(aad), buf)
            .map_err(|_| Error::DataLenRange)?;
        Ok(tag.as_ref()[..self.tag_len].to_vec())
    }

    /// Decrypts `buf` in place if `tag` verifies; on failure `buf` holds no plaintext.
    ///
    /// aws-lc's AEAD verifies 16-byte tags only. For a shorter tag the ciphertext is
    /// decrypted with AES-CTR from GCM's first data counter (`IV || 00000002`; GCM's
    /// 32-bit increment and CTR's 128-bit one agree below 2^32 blocks, which SP 800-38D
    /// caps a message at), the plaintext sealed again to recompute the full tag, and its
    /// leftmost bytes compared in constant time. That is SP 800-38D's truncated-tag check,
    /// at twice the work, for a form applications rarely use.
    pub fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()> {
        if tag.len() != self.tag_len {
            return Err(Error::EncryptedDataInvalid);
        }
        let Some(ctr) = &self.ctr else {
            let opened = self.key.open_in_place_separate_tag(Self::nonce(iv)?, Aad::from(aad), tag, buf);
            if opened.is_err() {
                buf.zeroize();
                return Err(Error::EncryptedDataInvalid);
            }
            return Ok(());
        };
        let mut counter = [0u8; 16];
        counter[..12].copy_from_slice(iv.get(..12).ok_or(Error::MechanismParamInvalid)?);
        counter[15] = 2;
        ctr.less_safe_encrypt(buf, EncryptionContext::Iv128(counter.into()))
            .map_err(|_| Error::EncryptedDataInvalid)?;
        let mut again = Zeroizing::new(buf.to_vec());
        let full = self.seal(iv, aad, &mut again)?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(&full, tag).is_err() {
            buf.zeroize();
            return Err(Error::EncryptedDataInvalid);
        }
        Ok(())
    }
}

// ---- AES key wrap (RFC 3394 KW, RFC 5649 KWP) ----------------------------------------

/// Wraps `data` (lengths already checked by the caller) under `kek`.
pub fn kw_wrap(kek: &[u8], data: &[u8], pad: bool, out: &mut [u8]) -> Result<usize> {
    let n = match kek.len() {
        16 | 32 => {
            let alg = if kek.len() == 16 { &key_wrap::AES_128 } else { &key_wrap::AES_256 };
            let k = AesKek::new(alg, kek).map_err(|_| Error::KeySizeRange)?;
            let r = if pad { k.wrap_with_padding(data, out) } else { k.wrap(data, out) };
            r.map_err(|_| Error::DataLenRange)?.len()
        }
        24 => aes192_kw::wrap(kek, data, pad, out)?,
        _ => return Err(Error::KeySizeRange),
    };
    Ok(n)
}

/// Unwraps `wrapped` under `kek` into `out`; an integrity failure is
/// [`Error::EncryptedDataInvalid`].
pub fn kw_unwrap(kek: &[u8], wrapped: &[u8], pad: bool, out: &mut [u8]) -> Result<usize> {
    let n = match kek.len() {
        16 | 32 => {
            let alg = if kek.len() == 16 { &key_wrap::AES_128 } else { &key_wrap::AES_256 };
            let k = AesKek::new(alg, kek).map_err(|_| Error::KeySizeRange)?;
            let r = if pad { k.unwrap_with_padding(wrapped, out) } else { k.unwrap(wrapped, out) };
            r.map_err(|_| Error::EncryptedDataInvalid)?.len()
        }
        24 => aes192_kw::unwrap(kek, wrapped, pad, out)?,
        _ => return Err(Error::KeySizeRange),
    };
    Ok(n)
}

/// RFC 3394 / RFC 5649 over AES-192, which aws-lc-rs's `key_wrap` does not offer: the
/// wrapping function W and its inverse written out over aws-lc's AES block (ECB, one
/// block at a time).
mod aes192_kw {
    use aws_lc_rs::cipher::{self, DecryptingKey, EncryptingKey, UnboundCipherKey};
    use zeroize::{Zeroize, Zeroizing};

    use crate::error::{Error, Result};

    const IV: [u8; 8] = [0xa6; 8];
    const ICV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

    fn encrypting(kek: &[u8]) -> Result<EncryptingKey> {
        let k = UnboundCipherKey::new(&cipher::AES_192, kek).map_err(|_| Error::KeySizeRange)?;
        EncryptingKey::ecb(k).map_err(|_| Error::KeySizeRange)
    }

    fn decrypting(kek: &[u8]) -> Result<DecryptingKey> {
        let k = UnboundCipherKey::new(&cipher::AES_192, kek).map_err(|_| Error::KeySizeRange)?;
        DecryptingKey::ecb(k).map_err(|_| Error::KeySizeRange)
    }

    /// W (RFC 3394 §2.2.1) of the semiblocks in `r` with initial value `a`.
    fn w(key: &EncryptingKey, mut a: [u8; 8], r: &mut [u8]) -> Result<[u8; 8]> {
        let n = r.len() / 8;
        let mut block = Zeroizing::new([0u8; 16]);
        for j in 0..6u64 {
            for i in 0..n {
                block[..8].copy_from_slice(&a);
                block[8..].copy_from_slice(&r[8 * i..8 * i + 8]);
                key.encrypt(&mut block[..]).map_err(|_| Error::DataLenRange)?;
                let t = (n as u64) * j + (i as u64) + 1;
                a.copy_from_slice(&block[..8]);
                for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                    *x ^= y;
                }
                r[8 * i..8 * i + 8].copy_from_slice(&block[8..]);
            }
        }
        Ok(a)
    }

    /// W⁻¹ (RFC 3394 §2.2.2): returns the recovered initial value; `r` is unwrapped.
    fn w_inverse(key: &DecryptingKey, mut a: [u8; 8], r: &mut [u8]) -> Result<[u8; 8]> {
        let n = r.len() / 8;
        let mut block = Zeroizing::new([0u8; 16]);
        for j in (0..6u64).rev() {
            for i in (0..n).rev() {
                let t = (n as u64) * j + (i as u64) + 1;
                for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                    *x ^= y;
                }
                block[..8].copy_from_slice(&a);
                block[8..].copy_from_slice(&r[8 * i..8 * i + 8]);
                key.decrypt(&mut block[..], cipher::DecryptionContext::None)
                    .map_err(|_| Error::EncryptedDataInvalid)?;
                a.copy_from_slice(&block[..8]);
                r[8 * i..8 * i + 8].copy_from_slice(&block[8..]);
            }
        }
        Ok(a)
    }

    /// Wraps into `out` (room for the wrapping); returns its length.
    pub(super) fn wrap(kek: &[u8], data: &[u8], pad: bool, out: &mut [u8]) -> Result<usize> {
        let key = encrypting(kek)?;
        let (a, plen) = if pad {
            let mut a = [0u8; 8];
            a[..4].copy_from_slice(&ICV);
            a[4..].copy_from_slice(&u32::try_from(data.len()).map_err(|_| Error::DataLenRange)?.to_be_bytes());
            (a, data.len().div_ceil(8) * 8)
        } else {
            (IV, data.len())
        };
        let out = out.get_mut(..plen + 8).ok_or(Error::DataLenRange)?;
        out.fill(0);
        out[8..8 + data.len()].copy_from_slice(data);
        if pad && plen == 8 {
            // RFC 5649 §4.1: one semiblock is encrypted as a single AES block.
            out[..8].copy_from_slice(&a);
            key.encrypt(out).map_err(|_| Error::DataLenRange)?;
            return Ok(16);
        }
        let a = w(&key, a, &mut out[8..])?;
        out[..8].copy_from_slice(&a);
        Ok(plen + 8)
    }

    /// Unwraps into `out`; returns the key's length. Integrity failures are one error.
    pub(super) fn unwrap(kek: &[u8], wrapped: &[u8], pad: bool, out: &mut [u8]) -> Result<usize> {
        let key = decrypting(kek)?;
        let n = wrapped.len() - 8;
        let out = out.get_mut(..n).ok_or(Error::EncryptedDataInvalid)?;
        let mut a = [0u8; 8];
        if pad && n == 8 {
            let mut block = Zeroizing::new([0u8; 16]);
            block.copy_from_slice(wrapped);
            key.decrypt(&mut block[..], cipher::DecryptionContext::None).map_err(|_| Error::EncryptedDataInvalid)?;
            a.copy_from_slice(&block[..8]);
            out.copy_from_slice(&block[8..]);
        } else {
            out.copy_from_slice(&wrapped[8..]);
            let mut a0 = [0u8; 8];
            a0.copy_from_slice(&wrapped[..8]);
            a = w_inverse(&key, a0, out)?;
        }
        let fail = |out: &mut [u8]| {
            out.zeroize();
            Err(Error::EncryptedDataInvalid)
        };
        if !pad {
            return if aws_lc_rs::constant_time::verify_slices_are_equal(&a, &IV).is_ok() { Ok(n) } else { fail(out) };
        }
        // RFC 5649 §3: the ICV, a length in (n-8, n], and zero padding.
        let mli = usize::try_from(u32::from_be_bytes([a[4], a[5], a[6], a[7]])).unwrap_or(usize::MAX);
        let ok = a[..4] == ICV && mli <= n && mli + 8 > n && out[mli..].iter().all(|b| *b == 0);
        if ok {
            Ok(mli)
        } else {
            fail(out)
        }
    }
}

// ---- SHA-1 / SHA-2 (FIPS 180-4) and HMAC (FIPS 198-1) --------------------------------

fn digest_alg(alg: Sha) -> &'static digest::Algorithm {
    match alg {
        Sha::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        Sha::Sha224 => &digest::SHA224,
        Sha::Sha256 => &digest::SHA256,
        Sha::Sha384 => &digest::SHA384,
        Sha::Sha512 => &digest::SHA512,
    }
}

/// A running digest; `finish` leaves a fresh one behind, as the RustCrypto `Digest`
/// types do.
struct Hasher(digest::Context);

impl Digester for Hasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn output_len(&self) -> usize {
        self.0.algorithm().output_len()
    }
    fn finish(&mut self) -> Vec<u8> {
        let fresh = digest::Context::new(self.0.algorithm());
        std::mem::replace(&mut self.0, fresh).finish().as_ref().to_vec()
    }
}

/// A streaming SHA-1/SHA-2 digest.
pub fn digester(alg: Sha) -> Box<dyn Digester> {
    Box::new(Hasher(digest::Context::new(digest_alg(alg))))
}

fn hmac_alg(alg: Sha) -> hmac::Algorithm {
    match alg {
        Sha::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Sha::Sha224 => hmac::HMAC_SHA224,
        Sha::Sha256 => hmac::HMAC_SHA256,
        Sha::Sha384 => hmac::HMAC_SHA384,
        Sha::Sha512 => hmac::HMAC_SHA512,
    }
}

/// An HMAC computation truncating its tag to `tag_len` bytes.
struct HmacOp {
    ctx: Option<hmac::Context>,
    tag_len: usize,
}

impl HmacOp {
    fn tag(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let ctx = self.ctx.take().ok_or(Error::OperationNotInitialized)?;
        let mut tag = Zeroizing::new(ctx.sign().as_ref().to_vec());
        tag.truncate(self.tag_len);
        Ok(tag)
    }
}

impl Signer for HmacOp {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.ctx.as_mut().ok_or(Error::OperationNotInitialized)?.update(data);
        Ok(())
    }
    fn signature_len(&self) -> usize {
        self.tag_len
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        Ok(self.tag()?.to_vec())
    }
}

impl Verifier for HmacOp {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        Signer::update(self, data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.tag_len {
            return Err(Error::SignatureLenRange);
        }
        let tag = self.tag()?;
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag, signature).map_err(|_| Error::SignatureInvalid)
    }
}

fn hmac_op(alg: Sha, key: &[u8], tag_len: usize) -> Result<Box<HmacOp>> {
    if key.is_empty() {
        return Err(Error::KeySizeRange);
    }
    Ok(Box::new(HmacOp { ctx: Some(hmac::Context::with_key(&hmac::Key::new(hmac_alg(alg), key))), tag_len }))
}

/// An HMAC-SHA-1/SHA-2 signature of `tag_len` bytes.
pub fn hmac_signer(alg: Sha, key: &[u8], tag_len: usize) -> Result<Box<dyn Signer>> {
    Ok(hmac_op(alg, key, tag_len)?)
}

/// An HMAC-SHA-1/SHA-2 check of a `tag_len`-byte tag (constant time).
pub fn hmac_verifier(alg: Sha, key: &[u8], tag_len: usize) -> Result<Box<dyn Verifier>> {
    Ok(hmac_op(alg, key, tag_len)?)
}

/// HMAC-SHA256 of the concatenated `parts` under `key` (any length).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for p in parts {
        ctx.update(p);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(ctx.sign().as_ref());
    Ok(out)
}

// ---- NIST P-curves: key generation, ECDSA, ECDH --------------------------------------

/// Whether ECDSA signatures are deterministic. AWS-LC hedges its ECDSA nonces (CSPRNG output mixed with the key and hash), so
/// two signatures of one hash differ; both verify.
pub const ECDSA_DETERMINISTIC: bool = false;

fn ecdh_alg(curve: Curve) -> &'static agreement::Algorithm {
    match curve {
        Curve::P256 => &agreement::ECDH_P256,
        Curve::P384 => &agreement::ECDH_P384,
        Curve::P521 => &agreement::ECDH_P521,
    }
}

/// The digest aws-lc's ECDSA is paired with on each curve (`CKM_ECDSA`'s hash is
/// imported as one of these).
fn ecdsa_digest(curve: Curve) -> &'static digest::Algorithm {
    match curve {
        Curve::P256 => &digest::SHA256,
        Curve::P384 => &digest::SHA384,
        Curve::P521 => &digest::SHA512,
    }
}

/// The public point (uncompressed) of a validated private key.
fn public_of(key: &agreement::PrivateKey) -> Result<Vec<u8>> {
    Ok(key.compute_public_key().map_err(|_| Error::AttributeValueInvalid(cryptoki_sys::CKA_VALUE))?.as_ref().to_vec())
}

/// A fresh key pair: (private scalar, field-length big-endian; uncompressed public
/// point), from AWS-LC's key generation (a uniform scalar in `[1, n-1]`).
pub fn ec_generate(curve: Curve) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let key = agreement::PrivateKey::generate(ecdh_alg(curve)).map_err(|_| Error::Internal(Internal::EcOperation))?;
    let scalar: EcPrivateKeyBin<'static> = key.as_be_bytes().map_err(|_| Error::Internal(Internal::EcOperation))?;
    Ok((Zeroizing::new(scalar.as_ref().to_vec()), public_of(&key)?))
}

/// `CKM_ECDSA`'s input as the digest aws-lc signs: SEC1 §4.1.3 step 5 takes the leftmost
/// bits of a longer hash and a shorter one as a smaller integer, so a short hash is
/// zero-extended on the left and a long one cut to the curve's digest length (256 or 384
/// bits, the order's size). P-521 pairs with SHA-512, shorter than its 521-bit order: a
/// hash longer than 64 bytes there would need its leftmost 521 bits, which aws-lc's
/// interface cannot take, and is refused with `CKR_DATA_LEN_RANGE`.
fn prehash(curve: Curve, z: &[u8]) -> Result<digest::Digest> {
    let alg = ecdsa_digest(curve);
    let len = alg.output_len();
    let mut buf = Zeroizing::new(vec![0u8; len]);
    if z.len() <= len {
        buf[len - z.len()..].copy_from_slice(z);
    } else if curve == Curve::P521 {
        return Err(Error::DataLenRange);
    } else {
        buf.copy_from_slice(&z[..len]);
    }
    digest::Digest::import_less_safe(&buf, alg).map_err(|_| Error::DataLenRange)
}

/// An ECDSA private key, parsed once.
pub struct EcdsaSigningKey {
    pair: EcdsaKeyPair,
    curve: Curve,
}

impl EcdsaSigningKey {
    /// The key of a normalized (field-length, in range) scalar.
    pub fn new(curve: Curve, d: &[u8]) -> Result<EcdsaSigningKey> {
        let invalid = || Error::AttributeValueInvalid(cryptoki_sys::CKA_VALUE);
        let ecdh = agreement::PrivateKey::from_private_key(ecdh_alg(curve), d).map_err(|_| invalid())?;
        let alg = match curve {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        };
        let pair = EcdsaKeyPair::from_private_key_and_public_key(alg, d, &public_of(&ecdh)?).map_err(|_| invalid())?;
        Ok(EcdsaSigningKey { pair, curve })
    }

    /// `r || s` over the hash `z` (see [`prehash`]). AWS-LC draws the nonce from its
    /// CSPRNG mixed with the key and the hash, so signatures are not RFC 6979's.
    pub fn sign_prehash(&self, z: &[u8]) -> Result<Vec<u8>> {
        let sig =
            self.pair.sign_digest(&prehash(self.curve, z)?).map_err(|_| Error::Internal(Internal::EcOperation))?;
        Ok(sig.as_ref().to_vec())
    }
}

/// An ECDSA public key, parsed once.
pub struct EcdsaVerifyingKey {
    key: ParsedPublicKey,
    curve: Curve,
}

impl EcdsaVerifyingKey {
    /// The key of a validated uncompressed point.
    pub fn new(curve: Curve, point: &[u8]) -> Result<EcdsaVerifyingKey> {
        let alg = match curve {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        };
        let key =
            ParsedPublicKey::new(alg, point).map_err(|_| Error::AttributeValueInvalid(cryptoki_sys::CKA_EC_POINT))?;
        Ok(EcdsaVerifyingKey { key, curve })
    }

    /// Checks `r || s` (length already checked) over the hash `z`.
    pub fn verify_prehash(&self, z: &[u8], sig: &[u8]) -> Result<()> {
        self.key.verify_digest_sig(&prehash(self.curve, z)?, sig).map_err(|_| Error::SignatureInvalid)
    }
}

/// An ECDH private key, parsed once.
pub struct EcdhKey {
    key: agreement::PrivateKey,
    curve: Curve,
}

impl EcdhKey {
    /// The key of a normalized scalar.
    pub fn new(curve: Curve, d: &[u8]) -> Result<EcdhKey> {
        let key = agreement::PrivateKey::from_private_key(ecdh_alg(curve), d)
            .map_err(|_| Error::AttributeValueInvalid(cryptoki_sys::CKA_VALUE))?;
        Ok(EcdhKey { key, curve })
    }

    /// Z, the x-coordinate of `d · peer` (`peer` a validated uncompressed point).
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let peer = UnparsedPublicKey::new(ecdh_alg(self.curve), peer);
        agreement::agree(&self.key, peer, Error::MechanismParamInvalid, |z| Ok(Zeroizing::new(z.to_vec())))
    }
}
