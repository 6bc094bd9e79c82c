//! The rustcrypto backend (the `rustcrypto` feature): the same functions and types as
//! `aws_lc.rs`, over the RustCrypto crates (`aes-gcm`, `aes-kw`, `sha1`, `sha2`, `hmac`,
//! `p256`/`p384`/`p521`, `ecdsa`, `getrandom`). Pure Rust: this build links no C crypto
//! code. The crates zeroize the key schedules and scalars they hold on drop.

use aes_gcm::aead::consts::{U12, U13, U14, U15, U16};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AesGcm, Nonce};
use aes_kw::{AesKw, AesKwp};
use cryptoki_sys::{CKA_EC_POINT, CKA_VALUE};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::elliptic_curve::sec1::ToSec1Point;
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use super::super::ec::{with_curve, Curve};
use super::super::hmac::MacOp;
use super::super::{Digester, Signer, Verifier};
use super::Sha;
use crate::error::{Error, Internal, Result};

/// The backend's name, as `C_GetInfo` and `cvault token status` report it.
pub const NAME: &str = "rustcrypto";

/// Fills `buf` from the OS CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        log::error!("the OS random source failed: {e}");
        Error::Internal(Internal::RandomSource)
    })
}

// ---- AES-GCM (SP 800-38D) ----------------------------------------------------------

/// One key and tag length, behind a uniform interface over the crate's generic types.
trait GcmImpl: Send + Sync {
    fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>>;
    fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()>;
}

impl<C: AeadInOut<NonceSize = U12> + Send + Sync> GcmImpl for C {
    fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>> {
        let nonce = Nonce::<U12>::try_from(iv).map_err(|_| Error::MechanismParamInvalid)?;
        let tag = self.encrypt_inout_detached(&nonce, aad, buf.into()).map_err(|_| Error::DataLenRange)?;
        Ok(tag.to_vec())
    }

    fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()> {
        let nonce = Nonce::<U12>::try_from(iv).map_err(|_| Error::MechanismParamInvalid)?;
        let tag = tag.try_into().map_err(|_| Error::EncryptedDataInvalid)?;
        self.decrypt_inout_detached(&nonce, aad, buf.into(), tag).map_err(|_| Error::EncryptedDataInvalid)
    }
}

fn boxed<C: AeadInOut<NonceSize = U12> + KeyInit + Send + Sync + 'static>(key: &[u8]) -> Result<Box<dyn GcmImpl>> {
    Ok(Box::new(C::new_from_slice(key).map_err(|_| Error::KeySizeRange)?))
}

/// An AES-GCM key (128, 192 or 256 bits) for tags of one length: the crate's type is
/// generic over both, so each pair is its own type behind a box.
pub struct Gcm(Box<dyn GcmImpl>);

impl Gcm {
    /// Prepares `key` for tags of `tag_len` bytes (12 to 16).
    pub fn new(key: &[u8], tag_len: usize) -> Result<Gcm> {
        macro_rules! by_tag {
            ($aes:ty) => {
                match tag_len {
                    12 => boxed::<AesGcm<$aes, U12, U12>>(key),
                    13 => boxed::<AesGcm<$aes, U12, U13>>(key),
                    14 => boxed::<AesGcm<$aes, U12, U14>>(key),
                    15 => boxed::<AesGcm<$aes, U12, U15>>(key),
                    16 => boxed::<AesGcm<$aes, U12, U16>>(key),
                    _ => Err(Error::MechanismParamInvalid),
                }
            };
        }
        Ok(Gcm(match key.len() {
            16 => by_tag!(Aes128)?,
            24 => by_tag!(Aes192)?,
            32 => by_tag!(Aes256)?,
            _ => return Err(Error::KeySizeRange),
        }))
    }

    /// Encrypts `buf` in place; returns the tag.
    pub fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>> {
        self.0.seal(iv, aad, buf)
    }

    /// Decrypts `buf` in place if `tag` verifies (the crate checks the tag before it
    /// decrypts, so a failure leaves the ciphertext).
    pub fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()> {
        self.0.open(iv, aad, buf, tag)
    }
}

// ---- AES key wrap (RFC 3394 KW, RFC 5649 KWP) ----------------------------------------

macro_rules! with_kek {
    ($kek:expr, $mode:ident, |$c:ident| $body:expr) => {
        match $kek.len() {
            16 => {
                let $c = $mode::<aes_kw::aes::Aes128>::new_from_slice($kek).map_err(|_| Error::KeySizeRange)?;
                $body
            }
            24 => {
                let $c = $mode::<aes_kw::aes::Aes192>::new_from_slice($kek).map_err(|_| Error::KeySizeRange)?;
                $body
            }
            32 => {
                let $c = $mode::<aes_kw::aes::Aes256>::new_from_slice($kek).map_err(|_| Error::KeySizeRange)?;
                $body
            }
            _ => return Err(Error::KeySizeRange),
        }
    };
}

/// Wraps `data` (lengths already checked by the caller) under `kek` into `out`.
pub fn kw_wrap(kek: &[u8], data: &[u8], pad: bool, out: &mut [u8]) -> Result<usize> {
    use aes_kw::KeyInit as _;
    if pad {
        with_kek!(kek, AesKwp, |c| c.wrap_key(data, out).map(<[u8]>::len))
    } else {
        with_kek!(kek, AesKw, |c| c.wrap_key(data, out).map(<[u8]>::len))
    }
    .map_err(|_| Error::DataLenRange)
}

/// Unwraps `wrapped` under `kek` into `out`; an integrity failure is
/// [`Error::EncryptedDataInvalid`].
pub fn kw_unwrap(kek: &[u8], wrapped: &[u8], pad: bool, out: &mut [u8]) -> Result<usize> {
    use aes_kw::KeyInit as _;
    if pad {
        with_kek!(kek, AesKwp, |c| c.unwrap_key(wrapped, out).map(<[u8]>::len))
    } else {
        with_kek!(kek, AesKw, |c| c.unwrap_key(wrapped, out).map(<[u8]>::len))
    }
    .map_err(|_| Error::EncryptedDataInvalid)
}

// ---- SHA-1 / SHA-2 (FIPS 180-4) and HMAC (FIPS 198-1) --------------------------------

/// A streaming SHA-1/SHA-2 digest.
pub fn digester(alg: Sha) -> Box<dyn Digester> {
    match alg {
        Sha::Sha1 => crate::mechanism::hash::boxed::<Sha1>(),
        Sha::Sha224 => crate::mechanism::hash::boxed::<Sha224>(),
        Sha::Sha256 => crate::mechanism::hash::boxed::<Sha256>(),
        Sha::Sha384 => crate::mechanism::hash::boxed::<Sha384>(),
        Sha::Sha512 => crate::mechanism::hash::boxed::<Sha512>(),
    }
}

fn hmac_start<D>(key: &[u8], tag_len: usize) -> Result<MacOp<Hmac<D>>>
where
    D: hmac::EagerHash + Send + 'static,
    Hmac<D>: Mac + hmac::KeyInit + Send,
{
    if key.is_empty() {
        return Err(Error::KeySizeRange);
    }
    let mac = <Hmac<D> as hmac::KeyInit>::new_from_slice(key).map_err(|_| Error::KeySizeRange)?;
    Ok(MacOp::new(mac, tag_len))
}

macro_rules! hmac_dispatch {
    ($alg:expr, $key:expr, $len:expr, $tr:ident) => {
        match $alg {
            Sha::Sha1 => hmac_start::<Sha1>($key, $len).map(|m| Box::new(m) as Box<dyn $tr>),
            Sha::Sha224 => hmac_start::<Sha224>($key, $len).map(|m| Box::new(m) as Box<dyn $tr>),
            Sha::Sha256 => hmac_start::<Sha256>($key, $len).map(|m| Box::new(m) as Box<dyn $tr>),
            Sha::Sha384 => hmac_start::<Sha384>($key, $len).map(|m| Box::new(m) as Box<dyn $tr>),
            Sha::Sha512 => hmac_start::<Sha512>($key, $len).map(|m| Box::new(m) as Box<dyn $tr>),
        }
    };
}

/// An HMAC-SHA-1/SHA-2 signature of `tag_len` bytes.
pub fn hmac_signer(alg: Sha, key: &[u8], tag_len: usize) -> Result<Box<dyn Signer>> {
    hmac_dispatch!(alg, key, tag_len, Signer)
}

/// An HMAC-SHA-1/SHA-2 check of a `tag_len`-byte tag (constant time).
pub fn hmac_verifier(alg: Sha, key: &[u8], tag_len: usize) -> Result<Box<dyn Verifier>> {
    hmac_dispatch!(alg, key, tag_len, Verifier)
}

/// HMAC-SHA256 of the concatenated `parts` under `key` (any length).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).map_err(|_| Error::KeySizeRange)?;
    for p in parts {
        mac.update(p);
    }
    Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
}

// ---- NIST P-curves: key generation, ECDSA, ECDH --------------------------------------

/// Whether ECDSA signatures are deterministic. ECDSA nonces are RFC 6979's: one key and hash give one signature.
pub const ECDSA_DETERMINISTIC: bool = true;

/// Attempts at drawing a valid scalar before giving up. A random 32-byte string is
/// out of range with probability about 2^-32, so a second attempt is already rare.
const KEYGEN_ATTEMPTS: usize = 16;

/// A fresh key pair: (private scalar, field-length bytes big-endian; uncompressed public
/// point). The scalar is drawn from the OS CSPRNG and redrawn in the rare case it is not
/// in `[1, n-1]`, so it is uniform in that range. (For P-521 the top byte is masked to
/// the 521st bit first: 66 random bytes would almost never be below n.)
pub fn ec_generate(curve: Curve) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    for _ in 0..KEYGEN_ATTEMPTS {
        let mut candidate = Zeroizing::new(vec![0u8; curve.field_len()]);
        fill_random(&mut candidate)?;
        if curve == Curve::P521 {
            candidate[0] &= 0x01;
        }
        let point = with_curve!(curve, m => m::SecretKey::from_slice(&candidate)
            .map(|s| s.public_key().to_sec1_point(false).as_bytes().to_vec()));
        if let Ok(point) = point {
            return Ok((candidate, point));
        }
    }
    Err(Error::Internal(Internal::EcKeyGeneration))
}

/// The scalar as the crate's non-zero scalar (zeroized on drop by the crate).
macro_rules! nonzero {
    ($m:ident, $d:expr) => {{
        let bytes = $m::FieldBytes::try_from($d).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
        Option::<$m::NonZeroScalar>::from($m::NonZeroScalar::from_repr(bytes))
            .ok_or(Error::AttributeValueInvalid(CKA_VALUE))?
    }};
}

/// An ECDSA private key: the normalized scalar.
pub struct EcdsaSigningKey {
    d: Zeroizing<Vec<u8>>,
    curve: Curve,
}

impl EcdsaSigningKey {
    /// The key of a normalized (field-length, in range) scalar.
    pub fn new(curve: Curve, d: &[u8]) -> Result<EcdsaSigningKey> {
        Ok(EcdsaSigningKey { d: Zeroizing::new(d.to_vec()), curve })
    }

    /// `r || s` over the hash `z`, with an RFC 6979 nonce over the curve's own hash
    /// (SHA-256, SHA-384, SHA-512): deterministic, no RNG. Exactly what
    /// `SigningKey::sign_prehash` does, without deriving the public key first.
    pub fn sign_prehash(&self, z: &[u8]) -> Result<Vec<u8>> {
        let d = self.d.as_slice();
        Ok(match self.curve {
            Curve::P256 => {
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, Sha256>(&nonzero!(p256, d), z, &[]);
                sig.to_bytes().to_vec()
            }
            Curve::P384 => {
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p384::NistP384, Sha384>(&nonzero!(p384, d), z, &[]);
                sig.to_bytes().to_vec()
            }
            Curve::P521 => {
                let (sig, _) =
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p521::NistP521, Sha512>(&nonzero!(p521, d), z, &[]);
                sig.to_bytes().to_vec()
            }
        })
    }
}

/// An ECDSA public key: the validated uncompressed point.
pub struct EcdsaVerifyingKey {
    point: Vec<u8>,
    curve: Curve,
}

impl EcdsaVerifyingKey {
    /// The key of a validated uncompressed point.
    pub fn new(curve: Curve, point: &[u8]) -> Result<EcdsaVerifyingKey> {
        Ok(EcdsaVerifyingKey { point: point.to_vec(), curve })
    }

    /// Checks `r || s` (length already checked) over the hash `z`.
    pub fn verify_prehash(&self, z: &[u8], signature: &[u8]) -> Result<()> {
        with_curve!(self.curve, m => {
            let key = m::ecdsa::VerifyingKey::from_sec1_bytes(&self.point)
                .map_err(|_| Error::AttributeValueInvalid(CKA_EC_POINT))?;
            // `from_slice` refuses r or s that is zero or not below n.
            let sig = m::ecdsa::Signature::from_slice(signature).map_err(|_| Error::SignatureInvalid)?;
            key.verify_prehash(z, &sig).map_err(|_| Error::SignatureInvalid)
        })
    }
}

/// An ECDH private key: the normalized scalar.
pub struct EcdhKey {
    d: Zeroizing<Vec<u8>>,
    curve: Curve,
}

impl EcdhKey {
    /// The key of a normalized scalar.
    pub fn new(curve: Curve, d: &[u8]) -> Result<EcdhKey> {
        Ok(EcdhKey { d: Zeroizing::new(d.to_vec()), curve })
    }

    /// Z, the x-coordinate of `d · peer` (`peer` a validated uncompressed point).
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        with_curve!(self.curve, m => {
            let secret = m::SecretKey::from_slice(&self.d).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
            let peer = m::PublicKey::from_sec1_bytes(peer).map_err(|_| Error::MechanismParamInvalid)?;
            let shared = m::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
            Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
        })
    }
}
