//! `CKM_AES_KEY_WRAP` (RFC 3394 / SP 800-38F KW) and `CKM_AES_KEY_WRAP_KWP` (RFC 5649 /
//! KWP), for `C_WrapKey`/`C_UnwrapKey` and as single-shot encrypt/decrypt.
//! `CKM_AES_KEY_WRAP_PAD` (0x210A, the code point before KWP had its own) runs as KWP,
//! as SoftHSM2 and OpenSC run it, under its own type so `CKA_ALLOWED_MECHANISMS` and the
//! audit name what the caller asked for.
//!
//! Only the default IV (KW: A6A6A6A6A6A6A6A6) and ICV (KWP: A65959A6) are accepted as
//! parameters; an integrity failure on unwrap is one opaque error.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::backend;
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape, UnwrapTarget, WrapOps};
use super::{Cipher, Mechanism};
use crate::error::{Error, Result};

const FLAGS: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;

const fn row(ty: CK_MECHANISM_TYPE) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 16, max_key: 32, flags: FLAGS },
        key: KeyNeed::Secret(&[CKK_AES]),
        param: ParamShape::Bytes,
        build,
        ops: Ops {
            encrypt: Some(encrypt_op),
            decrypt: Some(decrypt_op),
            wrap: Some(WrapOps { wrapped_len: wrapped_len_op, wrap: wrap_op, unwrap: unwrap_op }),
            ..Ops::NONE
        },
    }
}

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[row(CKM_AES_KEY_WRAP), row(CKM_AES_KEY_WRAP_KWP), row(CKM_AES_KEY_WRAP_PAD)];

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let pad = ty != CKM_AES_KEY_WRAP;
    match p {
        Param::Bytes(iv) => check_iv(&iv, pad)?,
        Param::None => {}
        _ => return Err(Error::MechanismParamInvalid),
    }
    Ok(match ty {
        CKM_AES_KEY_WRAP => Mechanism::AesKeyWrap,
        CKM_AES_KEY_WRAP_PAD => Mechanism::AesKeyWrapPadLegacy,
        _ => Mechanism::AesKeyWrapPad,
    })
}

fn padded(m: &Mechanism) -> Result<bool> {
    match m {
        Mechanism::AesKeyWrap => Ok(false),
        Mechanism::AesKeyWrapPad | Mechanism::AesKeyWrapPadLegacy => Ok(true),
        _ => Err(Error::MechanismInvalid),
    }
}

fn encrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    encryptor(&key.secret()?, padded(m)?)
}

fn decrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    decryptor(&key.secret()?, padded(m)?)
}

fn wrapped_len_op(m: &Mechanism, _: &dyn KeyView, len: usize) -> Result<usize> {
    Ok(wrapped_len(len, padded(m)?))
}

fn wrap_op(m: &Mechanism, kek: &dyn KeyView, value: &[u8]) -> Result<Vec<u8>> {
    wrap(&kek.secret()?, value, padded(m)?)
}

fn unwrap_op(m: &Mechanism, kek: &dyn KeyView, wrapped: &[u8], _: UnwrapTarget) -> Result<Zeroizing<Vec<u8>>> {
    unwrap(&kek.secret()?, wrapped, padded(m)?)
}

const SEMIBLOCK: usize = 8;
const DEFAULT_IV: [u8; 8] = [0xa6; 8];
const DEFAULT_ICV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// Checks the mechanism parameter: absent, or the default IV/ICV spelled out.
pub fn check_iv(param: &[u8], pad: bool) -> Result<()> {
    let ok = param.is_empty() || (!pad && param == DEFAULT_IV) || (pad && param == DEFAULT_ICV);
    if ok {
        Ok(())
    } else {
        Err(Error::MechanismParamInvalid)
    }
}

/// Length of the wrapping of `len` bytes.
pub fn wrapped_len(len: usize, pad: bool) -> usize {
    if pad {
        len.div_ceil(SEMIBLOCK) * SEMIBLOCK + SEMIBLOCK
    } else {
        len + SEMIBLOCK
    }
}

/// Wraps `data` under `kek`. KW needs a multiple of 8 bytes, at least 16; KWP any non-empty input.
pub fn wrap(kek: &[u8], data: &[u8], pad: bool) -> Result<Vec<u8>> {
    let len_ok = if pad { !data.is_empty() } else { data.len() >= 16 && data.len() % SEMIBLOCK == 0 };
    if !len_ok {
        return Err(Error::DataLenRange);
    }
    let mut out = vec![0u8; wrapped_len(data.len(), pad)];
    let n = backend::kw_wrap(kek, data, pad, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Unwraps `wrapped` under `kek`: `EncryptedDataLenRange` for an impossible length,
/// `EncryptedDataInvalid` when the integrity check fails.
pub fn unwrap(kek: &[u8], wrapped: &[u8], pad: bool) -> Result<Zeroizing<Vec<u8>>> {
    let min = if pad { 2 * SEMIBLOCK } else { 3 * SEMIBLOCK };
    if wrapped.len() < min || wrapped.len() % SEMIBLOCK != 0 {
        return Err(Error::EncryptedDataLenRange);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - SEMIBLOCK]);
    let n = backend::kw_unwrap(kek, wrapped, pad, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Key wrap through `C_Encrypt`/`C_Decrypt`: the whole input is one wrapping, so
/// updates buffer and `finish` does the work.
struct Buffered {
    kek: Zeroizing<Vec<u8>>,
    input: Zeroizing<Vec<u8>>,
    pad: bool,
    encrypt: bool,
}

impl Cipher for Buffered {
    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn update(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        self.input.extend_from_slice(input);
        Ok(())
    }

    fn final_len(&self, more: usize) -> usize {
        if self.encrypt {
            wrapped_len(self.input.len() + more, self.pad)
        } else {
            (self.input.len() + more).saturating_sub(SEMIBLOCK)
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.encrypt {
            out.extend_from_slice(&wrap(&self.kek, &self.input, self.pad)?);
        } else {
            out.extend_from_slice(&unwrap(&self.kek, &self.input, self.pad)?);
        }
        Ok(())
    }
}

/// `C_EncryptInit` with a key-wrap mechanism.
pub fn encryptor(kek: &[u8], pad: bool) -> Result<Box<dyn Cipher>> {
    start(kek, pad, true)
}

/// `C_DecryptInit` with a key-wrap mechanism.
pub fn decryptor(kek: &[u8], pad: bool) -> Result<Box<dyn Cipher>> {
    start(kek, pad, false)
}

fn start(kek: &[u8], pad: bool, encrypt: bool) -> Result<Box<dyn Cipher>> {
    if !matches!(kek.len(), 16 | 24 | 32) {
        return Err(Error::KeySizeRange);
    }
    Ok(Box::new(Buffered { kek: Zeroizing::new(kek.to_vec()), input: Zeroizing::default(), pad, encrypt }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    // RFC 3394 §4.1 (128-bit KEK, 128-bit key), §4.2 (192-bit KEK, 128-bit key) and §4.6
    // (256-bit KEK, 256-bit key).
    const KW: &[(&str, &str, &str)] = &[
        (
            "000102030405060708090A0B0C0D0E0F",
            "00112233445566778899AABBCCDDEEFF",
            "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
        ),
        (
            "000102030405060708090A0B0C0D0E0F1011121314151617",
            "00112233445566778899AABBCCDDEEFF",
            "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
        ),
        (
            "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
            "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
        ),
    ];

    // RFC 5649 §6 (192-bit KEK; 20-byte and 7-byte keys).
    const KWP: &[(&str, &str, &str)] = &[
        (
            "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
            "c37b7e6492584340bed12207808941155068f738",
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
        ),
        ("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
    ];

    #[test]
    fn rfc_3394_and_5649_vectors_wrap_and_unwrap() {
        for (pad, table) in [(false, KW), (true, KWP)] {
            for (i, (kek, key, wrapped)) in table.iter().enumerate() {
                assert_eq!(wrap(&h(kek), &h(key), pad).expect("wrap"), h(wrapped), "pad={pad} vector {i}");
                assert_eq!(unwrap(&h(kek), &h(wrapped), pad).expect("unwrap").as_slice(), h(key).as_slice());
            }
        }
    }

    #[test]
    fn every_flipped_byte_fails_the_integrity_check() {
        for (pad, (kek, _, wrapped)) in [(false, KW[0]), (false, KW[1]), (true, KWP[0]), (true, KWP[1])] {
            let wrapped = h(wrapped);
            for i in 0..wrapped.len() {
                let mut bad = wrapped.clone();
                bad[i] ^= 1;
                assert_eq!(unwrap(&h(kek), &bad, pad).unwrap_err(), Error::EncryptedDataInvalid, "pad={pad} byte {i}");
            }
        }
    }

    #[test]
    fn impossible_lengths_are_refused() {
        let kek = [0u8; 16];
        assert_eq!(wrap(&kek, &[0; 12], false).unwrap_err(), Error::DataLenRange);
        assert_eq!(wrap(&kek, &[0; 8], false).unwrap_err(), Error::DataLenRange);
        assert_eq!(wrap(&kek, &[], true).unwrap_err(), Error::DataLenRange);
        assert_eq!(unwrap(&kek, &[0; 20], false).unwrap_err(), Error::EncryptedDataLenRange);
        assert_eq!(unwrap(&kek, &[0; 16], false).unwrap_err(), Error::EncryptedDataLenRange);
        assert_eq!(wrap(&[0; 15], &[0; 16], false).unwrap_err(), Error::KeySizeRange);
    }

    #[test]
    fn only_the_default_iv_is_accepted() {
        assert!(check_iv(&[], false).is_ok() && check_iv(&DEFAULT_IV, false).is_ok());
        assert!(check_iv(&DEFAULT_ICV, true).is_ok());
        assert_eq!(check_iv(&[0; 8], false).unwrap_err(), Error::MechanismParamInvalid);
        assert_eq!(check_iv(&DEFAULT_IV, true).unwrap_err(), Error::MechanismParamInvalid);
    }
}
