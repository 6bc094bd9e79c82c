//! RSA keys (`CKK_RSA`, `CKM_RSA_PKCS_KEY_PAIR_GEN`): generation, the PKCS#11 component
//! attributes, and the conversion to the `rsa` crate's key types.
//!
//! Implementation choice: the `rsa` crate's 0.10 line. Its private-key operation runs on
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

use super::MechEntry;
use crate::error::{Error, Result};

/// Smallest modulus, in bits.
pub const MIN_BITS: usize = 2048;
/// Largest modulus, in bits.
pub const MAX_BITS: usize = 4096;

/// Registry rows (modulus sizes in bits).
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_RSA_PKCS_KEY_PAIR_GEN,
    min_key: MIN_BITS as CK_ULONG,
    max_key: MAX_BITS as CK_ULONG,
    flags: CKF_GENERATE_KEY_PAIR,
}];

/// Whether `ty` runs with an RSA key.
pub fn uses_rsa_key(ty: CK_MECHANISM_TYPE) -> bool {
    super::rsa_sign::ENTRIES.iter().chain(super::rsa_enc::ENTRIES).any(|e| e.ty == ty)
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
    let missing = || Error::General("RSA key without CRT values".into());
    let [p, q] = key.primes() else {
        return Err(Error::General("RSA key is not two-prime".into()));
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
/// (default 65537). A size or exponent the token will not make ->
/// `CKR_ATTRIBUTE_VALUE_INVALID` on the attribute at fault (`CKA_MODULUS_BITS`,
/// `CKA_PUBLIC_EXPONENT`).
pub fn generate(bits: usize, e: Option<&[u8]>) -> Result<rsa::PrivateKey> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) || bits % 8 != 0 {
        return Err(Error::AttributeValueInvalid(CKA_MODULUS_BITS));
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
    fn sizes_and_exponents_out_of_range_are_refused() {
        assert_eq!(generate(1024, None).unwrap_err(), Error::AttributeValueInvalid(CKA_MODULUS_BITS));
        assert_eq!(generate(4104, None).unwrap_err(), Error::AttributeValueInvalid(CKA_MODULUS_BITS));
        assert_eq!(generate(2048, Some(&[1, 0, 0])).unwrap_err(), Error::AttributeValueInvalid(CKA_PUBLIC_EXPONENT));
        let small = PublicParts { n: vec![0xc5; 128], e: vec![1, 0, 1] };
        assert_eq!(public_key(&small).unwrap_err(), Error::AttributeValueInvalid(CKA_MODULUS));
    }
}
