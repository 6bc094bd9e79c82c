//! RSA keys (`CKK_RSA`, `CKM_RSA_PKCS_KEY_PAIR_GEN`): generation, the PKCS#11 component
//! attributes, and the conversion to the `rsa` crate's key types and to the crypto
//! backend's ([`backend_private_of`], [`backend_public_of`]: each object caches whichever
//! its calls need; the backend's answers `None` for a key it does not hold).
//!
//! The backend generates the sizes and exponent it makes (aws-lc: 2048/3072/4096 bits,
//! e = 65537) and validates what it imports; the rest, and the import checks, are the
//! `rsa` crate's 0.10 line. Its private-key operation runs on
//! `crypto-bigint`'s `BoxedUint` with constant-time modular exponentiation and per-call
//! blinding; the 0.9 line's `num-bigint-dig` arithmetic leaked timing (RUSTSEC-2023-0071,
//! the Marvin attack) and is not used. Key sizes are 2048 to 4096 bits ([`MIN_BITS`],
//! [`MAX_BITS`]).
//!
//! Components travel as PKCS#11 big-endian integers. Public ones (`CKA_MODULUS`,
//! `CKA_PUBLIC_EXPONENT`) are stored minimal; private ones at a fixed width (the modulus
//! length for `d`, half of it for the CRT values), so that no encoding step depends on
//! secret leading zeros. Private components live in [`Zeroizing`] buffers here and are
//! sealed at rest by the attribute policy.

use crypto_bigint::BoxedUint;
use cryptoki_sys::*;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use zeroize::Zeroizing;

use std::sync::Arc;

use super::backend;
use super::registry::{
    build_plain, AttrSource, KeyNeed, KeyView, MechEntry, MechInfo, NewAttr, NewPair, Ops, ParamShape,
};
use super::Mechanism;
use crate::error::{Error, Internal, Result};

/// Smallest modulus, in bits.
pub const MIN_BITS: usize = 2048;
/// Largest modulus, in bits.
pub const MAX_BITS: usize = 4096;

/// Registry rows (modulus sizes in bits).
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_RSA_PKCS_KEY_PAIR_GEN,
    info: MechInfo { min_key: MIN_BITS as CK_ULONG, max_key: MAX_BITS as CK_ULONG, flags: CKF_GENERATE_KEY_PAIR },
    key: KeyNeed::None,
    param: ParamShape::None,
    build: build_plain,
    ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
}];

/// Which prepared key a [`super::Prepared`] cache keeps for either half.
fn cache_tag(private: bool) -> u64 {
    (CKM_RSA_PKCS_KEY_PAIR_GEN << 8) | u64::from(private)
}

/// The public components of an RSA key object (either half).
fn public_parts(key: &dyn AttrSource) -> Result<PublicParts> {
    Ok(PublicParts { n: key.required(CKA_MODULUS)?.to_vec(), e: key.required(CKA_PUBLIC_EXPONENT)?.to_vec() })
}

/// The public key of an RSA key object, parsed once per object.
pub fn public_of(key: &dyn KeyView) -> Result<Arc<rsa::PublicKey>> {
    key.prepared().get_or_make(cache_tag(false), || public_key(&public_parts(key)?))
}

/// The private key of an RSA private-key object, parsed and validated once per object.
pub fn private_of(key: &dyn KeyView) -> Result<Arc<rsa::PrivateKey>> {
    key.prepared().get_or_make(cache_tag(true), || {
        // Sealed components are absent when the store is locked: a login is missing.
        let d = key.attr(CKA_PRIVATE_EXPONENT).ok_or(Error::UserNotLoggedIn)?;
        let primes = key.attr(CKA_PRIME_1).zip(key.attr(CKA_PRIME_2));
        private_key(&public_parts(key)?, d, primes)
    })
}

/// The crypto backend's hold of an RSA public key object, made once per object: `None`
/// inside when the backend has no engine for it (the rustcrypto build, or an exponent
/// aws-lc does not take), and the RustCrypto path ([`public_of`]) serves.
pub fn backend_public_of(key: &dyn KeyView) -> Result<Arc<Option<backend::RsaPublicKey>>> {
    key.prepared().get_or_make(cache_tag(false) | 2, || {
        let parts = public_parts(key)?;
        Ok(backend::RsaPublicKey::new(&parts.n, &parts.e))
    })
}

/// The crypto backend's hold of an RSA private key object, made (and validated by the
/// backend) once per object; `None` inside as for [`backend_public_of`], or when the
/// object lacks the CRT components the backend needs.
pub fn backend_private_of(key: &dyn KeyView) -> Result<Arc<Option<backend::RsaPrivateKey>>> {
    key.prepared().get_or_make(cache_tag(true) | 2, || {
        // Sealed components are absent when the store is locked: a login is missing.
        let d = key.attr(CKA_PRIVATE_EXPONENT).ok_or(Error::UserNotLoggedIn)?;
        let public = public_parts(key)?;
        let crt = [CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT].map(|t| key.attr(t));
        let [Some(p), Some(q), Some(dp), Some(dq), Some(qinv)] = crt else { return Ok(None) };
        let components = backend::RsaComponents { n: &public.n, e: &public.e, d, p, q, dp, dq, qinv };
        Ok(backend::RsaPrivateKey::new(&components))
    })
}

/// The PKCS#11 attributes of both halves of `key`.
fn pair_attrs(key: &rsa::PrivateKey) -> Result<NewPair> {
    let (public, private) = parts(key)?;
    Ok(pair_of(public, private))
}

/// The PKCS#11 attributes of both halves of a key's components.
fn pair_of(public: PublicParts, private: PrivateParts) -> NewPair {
    let bits = public.n.first().map_or(0, |b| public.n.len() * 8 - b.leading_zeros() as usize);
    let mut pair = NewPair::of_type(CKK_RSA);
    pair.public.extend([
        NewAttr::bytes(CKA_MODULUS, public.n.clone()),
        NewAttr::bytes(CKA_PUBLIC_EXPONENT, public.e.clone()),
        NewAttr::ulong(CKA_MODULUS_BITS, CK_ULONG::try_from(bits).unwrap_or(CK_ULONG::MAX)),
    ]);
    pair.private.extend([
        NewAttr::bytes(CKA_MODULUS, public.n),
        NewAttr::bytes(CKA_PUBLIC_EXPONENT, public.e),
        NewAttr { ty: CKA_PRIVATE_EXPONENT, value: private.d },
        NewAttr { ty: CKA_PRIME_1, value: private.p },
        NewAttr { ty: CKA_PRIME_2, value: private.q },
        NewAttr { ty: CKA_EXPONENT_1, value: private.dp },
        NewAttr { ty: CKA_EXPONENT_2, value: private.dq },
        NewAttr { ty: CKA_COEFFICIENT, value: private.qinv },
    ]);
    pair
}

/// A new key pair: `CKA_MODULUS_BITS` (required) and `CKA_PUBLIC_EXPONENT` (optional,
/// 65537 by default) from the public template. The backend generates the sizes and
/// exponent it makes (aws-lc: 2048/3072/4096 bits, e = 65537); the `rsa` crate the rest.
fn generate_pair_op(_: &Mechanism, public: &dyn AttrSource, _: &dyn AttrSource) -> Result<NewPair> {
    let bits = public.attr_ulong(CKA_MODULUS_BITS)?.ok_or(Error::TemplateIncomplete(CKA_MODULUS_BITS))?;
    let bits = usize::try_from(bits).map_err(|_| Error::KeySizeRange)?;
    let e = public.attr(CKA_PUBLIC_EXPONENT);
    if let Some(made) = backend::rsa_generate(bits, e.unwrap_or(&[1, 0, 1])) {
        let (public, private) = generated_parts(made?)?;
        return Ok(pair_of(public, private));
    }
    pair_attrs(&generate(bits, e)?)
}

/// The stored forms (minimal public, fixed-width private) of a backend-made key.
fn generated_parts(made: backend::RsaGenerated) -> Result<(PublicParts, PrivateParts)> {
    let [n, e, d, p, q, dp, dq, qinv] = made.parts;
    let k = n.len();
    let half = k.div_ceil(2);
    let fit = |v: Zeroizing<Vec<u8>>, width: usize| -> Result<Zeroizing<Vec<u8>>> {
        let extra = width.checked_sub(v.len()).ok_or(Error::Internal(Internal::RsaKeyShape))?;
        let mut out = Zeroizing::new(vec![0u8; extra]);
        out.extend_from_slice(&v);
        Ok(out)
    };
    let public = PublicParts { n: minimal(&n), e: minimal(&e) };
    let private = PrivateParts {
        d: fit(d, k)?,
        p: fit(p, half)?,
        q: fit(q, half)?,
        dp: fit(dp, half)?,
        dq: fit(dq, half)?,
        qinv: fit(qinv, half)?,
    };
    Ok((public, private))
}

/// Import checks: a public key must have a usable modulus (2048–4096 bits) and exponent,
/// and gets `CKA_MODULUS_BITS`; a private key must be consistent (the crate validates
/// `p·q = n` and `e·d ≡ 1`), and gets every CRT component, any given one having to match.
pub fn imported(class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    if class == CKO_PUBLIC_KEY {
        let public = public_key(&public_parts(key)?)?;
        let bits = CK_ULONG::from(public.n().as_ref().bit_width_vartime());
        return Ok(vec![NewAttr::ulong(CKA_MODULUS_BITS, bits)]);
    }
    let d = key.required(CKA_PRIVATE_EXPONENT)?;
    let primes = key.attr(CKA_PRIME_1).zip(key.attr(CKA_PRIME_2));
    let private = private_key(&public_parts(key)?, d, primes)?;
    let computed: Vec<NewAttr> =
        pair_attrs(&private)?.private.into_iter().filter(|a| a.ty != CKA_CLASS && a.ty != CKA_KEY_TYPE).collect();
    for a in &computed {
        // Constant-time is not needed: the caller supplied both values.
        if key.attr(a.ty).is_some_and(|given| minimal(given) != minimal(&a.value)) {
            return Err(Error::AttributeValueInvalid(a.ty));
        }
    }
    Ok(computed)
}

/// The public half: modulus and exponent, minimal big-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicParts {
    /// `CKA_MODULUS`.
    pub n: Vec<u8>,
    /// `CKA_PUBLIC_EXPONENT`.
    pub e: Vec<u8>,
}

/// The private half's components, fixed-width big-endian, zeroized on drop.
pub struct PrivateParts {
    /// `CKA_PRIVATE_EXPONENT`.
    pub d: Zeroizing<Vec<u8>>,
    /// `CKA_PRIME_1`.
    pub p: Zeroizing<Vec<u8>>,
    /// `CKA_PRIME_2`.
    pub q: Zeroizing<Vec<u8>>,
    /// `CKA_EXPONENT_1` (d mod p-1).
    pub dp: Zeroizing<Vec<u8>>,
    /// `CKA_EXPONENT_2` (d mod q-1).
    pub dq: Zeroizing<Vec<u8>>,
    /// `CKA_COEFFICIENT` (q^-1 mod p).
    pub qinv: Zeroizing<Vec<u8>>,
}

fn minimal(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len().saturating_sub(1));
    bytes[first..].to_vec()
}

/// `v` as exactly `width` big-endian bytes (left-padded), without branching on its value.
fn fixed(v: &BoxedUint, width: usize) -> Zeroizing<Vec<u8>> {
    let bytes = Zeroizing::new(v.to_be_bytes().to_vec());
    let mut out = Zeroizing::new(vec![0u8; width]);
    let take = bytes.len().min(width);
    out[width - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    out
}

fn uint(bytes: &[u8], bits: u32, attr: CK_ATTRIBUTE_TYPE) -> Result<BoxedUint> {
    BoxedUint::from_be_slice(bytes, bits).map_err(|_| Error::AttributeValueInvalid(attr))
}

fn precision(n: &[u8]) -> Result<u32> {
    u32::try_from(minimal(n).len() * 8).map_err(|_| Error::AttributeValueInvalid(CKA_MODULUS))
}

/// The public key; a modulus outside [`MIN_BITS`]..=[`MAX_BITS`] or an unusable exponent
/// -> `CKR_ATTRIBUTE_VALUE_INVALID` on the attribute at fault.
pub fn public_key(parts: &PublicParts) -> Result<rsa::PublicKey> {
    let n = minimal(&parts.n);
    let bits = precision(&n)?;
    let n = uint(&n, bits, CKA_MODULUS)?;
    if !(MIN_BITS..=MAX_BITS).contains(&(n.bit_width_vartime() as usize)) {
        return Err(Error::AttributeValueInvalid(CKA_MODULUS));
    }
    let e = minimal(&parts.e);
    let e = uint(&e, precision(&e)?, CKA_PUBLIC_EXPONENT)?;
    rsa::PublicKey::new(n, e).map_err(|_| Error::AttributeValueInvalid(CKA_PUBLIC_EXPONENT))
}

/// The private key from its components. `p` and `q` are optional (the crate recovers
/// them from `n`, `e`, `d`); the key is validated (`p·q = n`, `e·d ≡ 1`) before use.
pub fn private_key(public: &PublicParts, d: &[u8], primes: Option<(&[u8], &[u8])>) -> Result<rsa::PrivateKey> {
    let pk = public_key(public)?;
    let bits = pk.n().as_ref().bits_precision();
    let d = uint(d, bits, CKA_PRIVATE_EXPONENT)?;
    let primes = match primes {
        Some((p, q)) => vec![uint(p, bits, CKA_PRIME_1)?, uint(q, bits, CKA_PRIME_2)?],
        None => Vec::new(),
    };
    rsa::PrivateKey::from_components(pk.n().as_ref().clone(), pk.e().clone(), d, primes)
        .map_err(|_| Error::AttributeValueInvalid(CKA_PRIVATE_EXPONENT))
}

/// The PKCS#11 components of a private key.
pub fn parts(key: &rsa::PrivateKey) -> Result<(PublicParts, PrivateParts)> {
    let k = key.size();
    let half = k.div_ceil(2);
    let public = PublicParts { n: minimal(&key.n_bytes()), e: minimal(&key.e_bytes()) };
    let missing = || Error::Internal(Internal::RsaKeyShape);
    let [p, q] = key.primes() else {
        return Err(Error::Internal(Internal::RsaKeyShape));
    };
    let qinv = key.crt_coefficient().ok_or_else(missing)?;
    let private = PrivateParts {
        d: fixed(key.d(), k),
        p: fixed(p.as_ref(), half),
        q: fixed(q.as_ref(), half),
        dp: fixed(key.dp().ok_or_else(missing)?, half),
        dq: fixed(key.dq().ok_or_else(missing)?, half),
        qinv: fixed(&qinv, half),
    };
    Ok((public, private))
}

/// A fresh key pair of `bits` (2048..=4096, a multiple of 8) with public exponent `e`
/// (default 65537). A modulus size the token will not make is `CKR_KEY_SIZE_RANGE`
/// (the spec's code for a size outside what `C_GetMechanismInfo` reports); an exponent
/// it will not use is `CKR_ATTRIBUTE_VALUE_INVALID` on `CKA_PUBLIC_EXPONENT`.
pub fn generate(bits: usize, e: Option<&[u8]>) -> Result<rsa::PrivateKey> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) || bits % 8 != 0 {
        return Err(Error::KeySizeRange);
    }
    let e = match e {
        None => BoxedUint::from(65537u64),
        Some(e) => {
            let e = minimal(e);
            // Odd, at least 3, at most 64 bits: what the crate's checks accept and what
            // every client sends (almost always 65537).
            if e.len() > 8 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
                return Err(Error::AttributeValueInvalid(CKA_PUBLIC_EXPONENT));
            }
            uint(&e, 64, CKA_PUBLIC_EXPONENT)?
        }
    };
    rsa::PrivateKey::new_with_exp(&mut crypto_common::getrandom::SysRng, bits, e)
        .map_err(|_| Error::AttributeValueInvalid(CKA_PUBLIC_EXPONENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_survives_the_component_round_trip() {
        let key = generate(2048, None).unwrap();
        let (public, private) = parts(&key).unwrap();
        assert_eq!(public.e, vec![1, 0, 1]);
        assert_eq!(public.n.len(), 256);
        assert_eq!((private.d.len(), private.p.len(), private.qinv.len()), (256, 128, 128));
        let again = private_key(&public, &private.d, Some((&private.p, &private.q))).unwrap();
        assert_eq!(again, key);
        let recovered = private_key(&public, &private.d, None).unwrap();
        assert_eq!(recovered.n(), key.n());
        let mut wrong = private.d.to_vec();
        wrong[255] ^= 2;
        assert!(private_key(&public, &wrong, Some((&private.p, &private.q))).is_err());
    }

    #[test]
    fn a_backend_generated_key_is_stored_at_fixed_widths_and_validates() {
        let Some(made) = backend::rsa_generate(3072, &[1, 0, 1]) else {
            assert_eq!(backend::NAME, "rustcrypto");
            return;
        };
        let (public, private) = generated_parts(made.unwrap()).unwrap();
        assert_eq!((public.n.len(), public.e.as_slice()), (384, &[1u8, 0, 1][..]));
        assert_eq!((private.d.len(), private.p.len(), private.qinv.len()), (384, 192, 192));
        let key = private_key(&public, &private.d, Some((&private.p, &private.q))).unwrap();
        let (_, again) = parts(&key).unwrap();
        assert_eq!((again.dp, again.dq, again.qinv), (private.dp, private.dq, private.qinv), "CRT values match");
        assert!(backend::rsa_generate(2056, &[1, 0, 1]).is_none(), "other sizes: the rsa crate");
        assert!(backend::rsa_generate(2048, &[3]).is_none(), "other exponents: the rsa crate");
    }

    #[test]
    fn sizes_and_exponents_out_of_range_are_refused() {
        assert_eq!(generate(1024, None).unwrap_err(), Error::KeySizeRange);
        assert_eq!(generate(4104, None).unwrap_err(), Error::KeySizeRange);
        assert_eq!(generate(2049, None).unwrap_err(), Error::KeySizeRange);
        assert_eq!(generate(2048, Some(&[1, 0, 0])).unwrap_err(), Error::AttributeValueInvalid(CKA_PUBLIC_EXPONENT));
        let small = PublicParts { n: vec![0xc5; 128], e: vec![1, 0, 1] };
        assert_eq!(public_key(&small).unwrap_err(), Error::AttributeValueInvalid(CKA_MODULUS));
    }
}
