//! `CKM_AES_CMAC` and `CKM_AES_CMAC_GENERAL` (NIST SP 800-38B, RFC 4493) sign and
//! verify, over the `cmac` crate. `_GENERAL` takes the leftmost `1..=16` bytes of the
//! tag (`CK_MAC_GENERAL_PARAMS`); verification compares in constant time.

use aes::{Aes128, Aes192, Aes256};
use cmac::Cmac;
use cryptoki_sys::*;
use hmac::{KeyInit, Mac};

use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::{Mechanism, Signer, Verifier};
use crate::error::{Error, Result};

/// The full CMAC tag: one AES block.
pub const TAG_LEN: usize = 16;

const FLAGS: CK_FLAGS = CKF_SIGN | CKF_VERIFY;

const fn row(ty: CK_MECHANISM_TYPE, param: ParamShape) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 16, max_key: 32, flags: FLAGS },
        key: KeyNeed::Secret(&[CKK_AES]),
        param,
        build,
        ops: Ops { sign: Some(sign_op), verify: Some(verify_op), ..Ops::NONE },
    }
}

/// Registry rows (key sizes in bytes).
pub const ENTRIES: &[MechEntry] = &[row(CKM_AES_CMAC, ParamShape::None), row(CKM_AES_CMAC_GENERAL, ParamShape::MacLen)];

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    match (ty, p) {
        (CKM_AES_CMAC, _) => Ok(Mechanism::AesCmac(None)),
        (CKM_AES_CMAC_GENERAL, Param::MacLen(len)) => Ok(Mechanism::AesCmac(Some(check_mac_len(len)?))),
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn sign_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Signer>> {
    let Mechanism::AesCmac(len) = m else { return Err(Error::MechanismInvalid) };
    signer(&key.secret()?, *len)
}

fn verify_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Verifier>> {
    let Mechanism::AesCmac(len) = m else { return Err(Error::MechanismInvalid) };
    verifier(&key.secret()?, *len)
}

/// Checks a `_GENERAL` tag length: `1..=16`, else `CKR_MECHANISM_PARAM_INVALID`.
pub fn check_mac_len(len: usize) -> Result<usize> {
    if (1..=TAG_LEN).contains(&len) {
        Ok(len)
    } else {
        Err(Error::MechanismParamInvalid)
    }
}

fn start<M: Mac + KeyInit + Send + 'static>(key: &[u8], tag_len: usize) -> Result<Box<super::hmac::MacOp<M>>> {
    let mac = <M as KeyInit>::new_from_slice(key).map_err(|_| Error::KeySizeRange)?;
    Ok(Box::new(super::hmac::MacOp::new(mac, tag_len)))
}

macro_rules! dispatch {
    ($key:expr, $len:expr) => {
        match $key.len() {
            16 => start::<Cmac<Aes128>>($key, $len)?,
            24 => start::<Cmac<Aes192>>($key, $len)?,
            32 => start::<Cmac<Aes256>>($key, $len)?,
            _ => return Err(Error::KeySizeRange),
        }
    };
}

/// An AES-CMAC signing operation (`mac_len` for `_GENERAL`).
pub fn signer(key: &[u8], mac_len: Option<usize>) -> Result<Box<dyn Signer>> {
    let len = mac_len.map_or(Ok(TAG_LEN), check_mac_len)?;
    Ok(dispatch!(key, len))
}

/// An AES-CMAC verification (`mac_len` for `_GENERAL`).
pub fn verifier(key: &[u8], mac_len: Option<usize>) -> Result<Box<dyn Verifier>> {
    let len = mac_len.map_or(Ok(TAG_LEN), check_mac_len)?;
    Ok(dispatch!(key, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // NIST SP 800-38B D.1 (AES-128, = RFC 4493 §4) and D.3 (AES-256): messages of 0, 16,
    // 40 and 64 bytes.
    const MSG: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                       30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    const VECTORS: &[(&str, usize, &str)] = &[
        ("2b7e151628aed2a6abf7158809cf4f3c", 0, "bb1d6929e95937287fa37d129b756746"),
        ("2b7e151628aed2a6abf7158809cf4f3c", 16, "070a16b46b4d4144f79bdd9dd04a287c"),
        ("2b7e151628aed2a6abf7158809cf4f3c", 40, "dfa66747de9ae63030ca32611497c827"),
        ("2b7e151628aed2a6abf7158809cf4f3c", 64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 0, "028962f61b7bf89efc6b551f4667d983"),
        ("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 64, "e1992190549f6ed5696a2c056c315410"),
    ];

    #[test]
    fn sp800_38b_vectors_sign_and_verify_in_parts() {
        let msg = h(MSG);
        for (i, (key, len, tag)) in VECTORS.iter().enumerate() {
            let (key, tag, data) = (h(key), h(tag), &msg[..*len]);
            let mut s = signer(&key, None).unwrap();
            for part in data.chunks(7) {
                s.update(part).unwrap();
            }
            assert_eq!(s.finish().unwrap(), tag, "vector {i}");
            let mut v = verifier(&key, Some(8)).unwrap();
            v.update(data).unwrap();
            assert_eq!(v.finish(&tag[..8]), Ok(()), "vector {i} general");
            let mut v = verifier(&key, None).unwrap();
            v.update(data).unwrap();
            let mut bad = tag.clone();
            bad[15] ^= 1;
            assert_eq!(v.finish(&bad), Err(Error::SignatureInvalid), "vector {i} tampered");
        }
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert!(matches!(signer(&[0; 20], None), Err(Error::KeySizeRange)));
        assert!(matches!(signer(&[0; 16], Some(17)), Err(Error::MechanismParamInvalid)));
        let mut v = verifier(&[0; 16], Some(4)).unwrap();
        assert_eq!(v.finish(&[0; 5]), Err(Error::SignatureLenRange));
    }
}
