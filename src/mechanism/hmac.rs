//! HMAC (RFC 2104 / FIPS 198-1) over every hash of [`HashAlg`]: `CKM_SHA_1_HMAC`,
//! `CKM_SHA224_HMAC`, `CKM_SHA256_HMAC`, `CKM_SHA384_HMAC`, `CKM_SHA512_HMAC`,
//! `CKM_SHA3_*_HMAC`, and each one's `_GENERAL` variant, whose `CK_MAC_GENERAL_PARAMS`
//! asks for the leftmost `1..=output_len` bytes of the tag.
//!
//! Verification compares in constant time (`Mac::verify_truncated_left`), and a tag of
//! the wrong length is `CKR_SIGNATURE_LEN_RANGE` before anything is compared.

use cryptoki_sys::*;
use hmac::digest::common::BlockSizeUser;
use hmac::{KeyInit, Mac, SimpleHmac};
use sha3::{Digest, Sha3_256, Sha3_384, Sha3_512};

use super::backend::{self, Sha};
use super::hash::{HashAlg, ALL};
use super::registry::{build_plain, KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::{Mechanism, Signer, Verifier};
use crate::error::{Error, Result};

const FLAGS: CK_FLAGS = CKF_SIGN | CKF_VERIFY;

/// The row of `hash`'s HMAC (`general`: its `_GENERAL` variant); key sizes in bytes.
const fn row(hash: HashAlg, general: bool) -> MechEntry {
    MechEntry {
        ty: if general { hash.hmac_general_mech() } else { hash.hmac_mech() },
        info: MechInfo { min_key: 1, max_key: 512, flags: FLAGS },
        key: KeyNeed::Secret(hash.hmac_key_types()),
        param: if general { ParamShape::MacLen } else { ParamShape::None },
        build: if general { build_general } else { build_plain },
        ops: Ops { sign: Some(sign_op), verify: Some(verify_op), ..Ops::NONE },
    }
}

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[
    row(HashAlg::Sha1, false),
    row(HashAlg::Sha1, true),
    row(HashAlg::Sha224, false),
    row(HashAlg::Sha224, true),
    row(HashAlg::Sha256, false),
    row(HashAlg::Sha256, true),
    row(HashAlg::Sha384, false),
    row(HashAlg::Sha384, true),
    row(HashAlg::Sha512, false),
    row(HashAlg::Sha512, true),
    row(HashAlg::Sha3_256, false),
    row(HashAlg::Sha3_256, true),
    row(HashAlg::Sha3_384, false),
    row(HashAlg::Sha3_384, true),
    row(HashAlg::Sha3_512, false),
    row(HashAlg::Sha3_512, true),
];

fn build_general(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let (Some((hash, true)), Param::MacLen(len)) = (from_mech(ty), p) else {
        return Err(Error::MechanismParamInvalid);
    };
    Ok(Mechanism::Hmac { hash, mac_len: Some(check_mac_len(hash, len)?) })
}

fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let Mechanism::Hmac { hash, mac_len } = m else { return Err(Error::MechanismInvalid) };
    signer(*hash, &key.secret()?, *mac_len)
}

fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let Mechanism::Hmac { hash, mac_len } = m else { return Err(Error::MechanismInvalid) };
    verifier(*hash, &key.secret()?, *mac_len)
}

/// The hash and whether the mechanism is a `_GENERAL` one, for an HMAC mechanism.
pub fn from_mech(ty: CK_MECHANISM_TYPE) -> Option<(HashAlg, bool)> {
    ALL.iter().find_map(|a| {
        if a.hmac_mech() == ty {
            Some((*a, false))
        } else if a.hmac_general_mech() == ty {
            Some((*a, true))
        } else {
            None
        }
    })
}

/// Checks a `_GENERAL` MAC length: `1..=output_len` bytes, else
/// `CKR_MECHANISM_PARAM_INVALID`.
pub fn check_mac_len(alg: HashAlg, len: usize) -> Result<usize> {
    if (1..=alg.output_len()).contains(&len) {
        Ok(len)
    } else {
        Err(Error::MechanismParamInvalid)
    }
}

/// A MAC operation truncating its tag to `tag_len` bytes; shared with `aes_cmac.rs`.
pub(super) struct MacOp<M> {
    mac: Option<M>,
    tag_len: usize,
}

impl<M: Mac> MacOp<M> {
    /// A fresh operation.
    pub(super) fn new(mac: M, tag_len: usize) -> Self {
        MacOp { mac: Some(mac), tag_len }
    }

    fn mac(&mut self) -> Result<&mut M> {
        self.mac.as_mut().ok_or(Error::OperationNotInitialized)
    }

    fn take(&mut self) -> Result<M> {
        self.mac.take().ok_or(Error::OperationNotInitialized)
    }
}

impl<M: Mac + Send> Signer for MacOp<M> {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac()?.update(data);
        Ok(())
    }

    fn signature_len(&self) -> usize {
        self.tag_len
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let mut tag = self.take()?.finalize().into_bytes().to_vec();
        tag.truncate(self.tag_len);
        Ok(tag)
    }
}

impl<M: Mac + Send> Verifier for MacOp<M> {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac()?.update(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.tag_len {
            return Err(Error::SignatureLenRange);
        }
        self.take()?.verify_truncated_left(signature).map_err(|_| Error::SignatureInvalid)
    }
}

/// SHA-3 has no block-level core for `Hmac`'s precomputed pads; `SimpleHmac` computes
/// the same RFC 2104 function over the plain hash.
fn start_simple<D: Digest + BlockSizeUser + Send + 'static>(
    key: &[u8],
    tag_len: usize,
) -> Result<Box<MacOp<SimpleHmac<D>>>>
where
    SimpleHmac<D>: Mac + KeyInit + Send,
{
    if key.is_empty() {
        return Err(Error::KeySizeRange);
    }
    let mac = <SimpleHmac<D> as KeyInit>::new_from_slice(key).map_err(|_| Error::KeySizeRange)?;
    Ok(Box::new(MacOp::new(mac, tag_len)))
}

/// HMAC-SHA256 of the concatenated `parts` under `key` (any length), for the module's
/// own derivations (RSA implicit rejection, the store).
pub(super) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    backend::hmac_sha256(key, parts)
}

/// An HMAC signing operation; `mac_len` for the `_GENERAL` variants (checked by
/// [`check_mac_len`]), `None` for the full tag. SHA-1/SHA-2 from the crypto backend,
/// SHA-3 from the `hmac` and `sha3` crates in every build.
pub fn signer(alg: HashAlg, key: &[u8], mac_len: Option<usize>) -> Result<Box<dyn Signer>> {
    let len = mac_len.map_or(Ok(alg.output_len()), |l| check_mac_len(alg, l))?;
    Ok(match alg {
        HashAlg::Sha1 => backend::hmac_signer(Sha::Sha1, key, len)?,
        HashAlg::Sha224 => backend::hmac_signer(Sha::Sha224, key, len)?,
        HashAlg::Sha256 => backend::hmac_signer(Sha::Sha256, key, len)?,
        HashAlg::Sha384 => backend::hmac_signer(Sha::Sha384, key, len)?,
        HashAlg::Sha512 => backend::hmac_signer(Sha::Sha512, key, len)?,
        HashAlg::Sha3_256 => start_simple::<Sha3_256>(key, len)?,
        HashAlg::Sha3_384 => start_simple::<Sha3_384>(key, len)?,
        HashAlg::Sha3_512 => start_simple::<Sha3_512>(key, len)?,
    })
}

/// An HMAC verification; `mac_len` as for [`signer`].
pub fn verifier(alg: HashAlg, key: &[u8], mac_len: Option<usize>) -> Result<Box<dyn Verifier>> {
    let len = mac_len.map_or(Ok(alg.output_len()), |l| check_mac_len(alg, l))?;
    Ok(match alg {
        HashAlg::Sha1 => backend::hmac_verifier(Sha::Sha1, key, len)?,
        HashAlg::Sha224 => backend::hmac_verifier(Sha::Sha224, key, len)?,
        HashAlg::Sha256 => backend::hmac_verifier(Sha::Sha256, key, len)?,
        HashAlg::Sha384 => backend::hmac_verifier(Sha::Sha384, key, len)?,
        HashAlg::Sha512 => backend::hmac_verifier(Sha::Sha512, key, len)?,
        HashAlg::Sha3_256 => start_simple::<Sha3_256>(key, len)?,
        HashAlg::Sha3_384 => start_simple::<Sha3_384>(key, len)?,
        HashAlg::Sha3_512 => start_simple::<Sha3_512>(key, len)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(alg: HashAlg, key: &[u8], data: &[u8], len: Option<usize>) -> Vec<u8> {
        let mut s = signer(alg, key, len).unwrap();
        s.update(data).unwrap();
        s.finish().unwrap()
    }

    fn check(alg: HashAlg, key: &[u8], data: &[u8], tag: &[u8], len: Option<usize>) -> Result<()> {
        let mut v = verifier(alg, key, len).unwrap();
        v.update(data).unwrap();
        v.finish(tag)
    }

    // RFC 4231 test cases 1, 2 and 6 (key longer than a block), for SHA-224/256/384/512.
    const KEY1: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
    const DATA1: &str = "4869205468657265";
    const KEY2: &str = "4a656665";
    const DATA2: &str = "7768617420646f2079612077616e7420666f72206e6f7468696e673f";
    const DATA6: &str = "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a\
                         65204b6579202d2048617368204b6579204669727374";
    /// Test case 6's key: 131 bytes of 0xaa, longer than a SHA-512 block.
    const KEY6: &str = "aa";
    const VECTORS: &[(HashAlg, &str, &str, &str)] = &[
        (HashAlg::Sha224, KEY1, DATA1, "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"),
        (HashAlg::Sha256, KEY1, DATA1, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (
            HashAlg::Sha384,
            KEY1,
            DATA1,
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
        ),
        (
            HashAlg::Sha512,
            KEY1,
            DATA1,
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ),
        (HashAlg::Sha256, KEY2, DATA2, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (
            HashAlg::Sha384,
            KEY2,
            DATA2,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            HashAlg::Sha512,
            KEY2,
            DATA2,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
        (
            HashAlg::Sha512,
            KEY6,
            DATA6,
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
             6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        ),
        // RFC 2202 test case 2 (HMAC-SHA-1).
        (HashAlg::Sha1, KEY2, DATA2, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    ];

    #[test]
    fn rfc_4231_and_2202_vectors_sign_and_verify() {
        for (i, (alg, key, data, want)) in VECTORS.iter().enumerate() {
            let key = if *key == KEY6 { vec![0xaa; 131] } else { hex::decode(key).unwrap() };
            let (data, want) = (hex::decode(data).unwrap(), hex::decode(want).unwrap());
            assert_eq!(tag(*alg, &key, &data, None), want, "vector {i}");
            assert_eq!(check(*alg, &key, &data, &want, None), Ok(()), "vector {i}");
            // RFC 4231 test case 5 style truncation through the _GENERAL length.
            assert_eq!(tag(*alg, &key, &data, Some(16)), want[..16], "vector {i} truncated");
            assert_eq!(check(*alg, &key, &data, &want[..16], Some(16)), Ok(()), "vector {i} truncated");
        }
    }

    #[test]
    fn sha3_hmac_is_keyed_and_full_length() {
        for alg in [HashAlg::Sha3_256, HashAlg::Sha3_384, HashAlg::Sha3_512] {
            let t = tag(alg, b"key", b"data", None);
            assert_eq!(t.len(), alg.output_len());
            assert_ne!(t, tag(alg, b"kez", b"data", None));
            assert_eq!(check(alg, b"key", b"data", &t, None), Ok(()));
        }
    }

    #[test]
    fn a_wrong_or_short_tag_is_refused() {
        let mut v = verifier(HashAlg::Sha256, b"key", None).unwrap();
        v.update(b"data").unwrap();
        assert_eq!(v.finish(&[0; 32]).unwrap_err(), Error::SignatureInvalid);
        let mut v = verifier(HashAlg::Sha256, b"key", None).unwrap();
        assert_eq!(v.finish(&[0; 31]).unwrap_err(), Error::SignatureLenRange);
        assert_eq!(check(HashAlg::Sha384, b"k", b"d", &[0; 10], Some(12)), Err(Error::SignatureLenRange));
        assert!(matches!(signer(HashAlg::Sha1, b"k", Some(21)), Err(Error::MechanismParamInvalid)));
        assert!(matches!(signer(HashAlg::Sha1, b"k", Some(0)), Err(Error::MechanismParamInvalid)));
    }
}
