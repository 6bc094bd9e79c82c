//! `CKM_AES_ECB_ENCRYPT_DATA` and `CKM_AES_CBC_ENCRYPT_DATA` (spec §2.15.x, "key
//! derivation by data encryption"): the new key's value is the parameter's data
//! encrypted under the base AES key, without padding, its leading `CKA_VALUE_LEN` bytes.
//!
//! The data must be whole blocks (and not empty); anything else is
//! `CKR_MECHANISM_PARAM_INVALID`, as in SoftHSM2, since no padding is defined for it.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::aes_block::{AesKey, BLOCK};
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::Mechanism;
use crate::error::{Error, Result};

const fn row(ty: CK_MECHANISM_TYPE, param: ParamShape) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 16, max_key: 32, flags: CKF_DERIVE },
        key: KeyNeed::Secret(&[CKK_AES]),
        param,
        build,
        ops: Ops { derive: Some(derive_op), ..Ops::NONE },
    }
}

/// Registry rows (key sizes in bytes).
pub const ENTRIES: &[MechEntry] =
    &[row(CKM_AES_ECB_ENCRYPT_DATA, ParamShape::StringData), row(CKM_AES_CBC_ENCRYPT_DATA, ParamShape::AesCbcData)];

fn whole_blocks(data: &[u8]) -> Result<()> {
    if data.is_empty() || data.len() % BLOCK != 0 {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(())
}

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    match (ty, p) {
        (CKM_AES_ECB_ENCRYPT_DATA, Param::Bytes(data)) => {
            whole_blocks(&data)?;
            Ok(Mechanism::AesEcbEncryptData(data))
        }
        (CKM_AES_CBC_ENCRYPT_DATA, Param::AesCbcData { iv, data }) => {
            whole_blocks(&data)?;
            Ok(Mechanism::AesCbcEncryptData { iv, data })
        }
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn derive_op(m: &Mechanism, base: &dyn KeyView, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
    let key = AesKey::new(&base.secret()?)?;
    let (iv, data) = match m {
        Mechanism::AesEcbEncryptData(data) => (None, data),
        Mechanism::AesCbcEncryptData { iv, data } => (Some(*iv), data),
        _ => return Err(Error::MechanismInvalid),
    };
    let mut out = encrypt(&key, iv, data);
    let len = len.unwrap_or(out.len());
    if len == 0 || len > out.len() {
        return Err(Error::KeySizeRange);
    }
    out.truncate(len);
    Ok(out)
}

/// ECB (`iv` absent) or CBC encryption of whole blocks.
fn encrypt(key: &AesKey, iv: Option<[u8; BLOCK]>, data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut chain = Zeroizing::new(iv.unwrap_or([0; BLOCK]));
    let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
    let mut block = Zeroizing::new([0u8; BLOCK]);
    for chunk in data.chunks_exact(BLOCK) {
        block.copy_from_slice(chunk);
        if iv.is_some() {
            block.iter_mut().zip(chain.iter()).for_each(|(b, c)| *b ^= c);
        }
        key.encrypt(&mut block);
        *chain = *block;
        out.extend_from_slice(&*block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // NIST SP 800-38A F.1.1 (ECB-AES128) and F.2.1 (CBC-AES128), first two blocks.
    const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51";

    #[test]
    fn sp800_38a_blocks_are_the_derived_value() {
        let key = AesKey::new(&hex::decode(K128).expect("hex")).expect("key");
        let pt = hex::decode(PT).expect("hex");
        let ecb = encrypt(&key, None, &pt);
        assert_eq!(hex::encode(&*ecb), "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf");
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f").expect("hex").try_into().expect("16");
        let cbc = encrypt(&key, Some(iv), &pt);
        assert_eq!(hex::encode(&*cbc), "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2");
    }

    #[test]
    fn data_that_is_not_whole_blocks_is_a_parameter_error() {
        for n in [0, 1, 15, 17] {
            let p = Param::Bytes(vec![0; n]);
            assert_eq!(build(CKM_AES_ECB_ENCRYPT_DATA, p).unwrap_err(), Error::MechanismParamInvalid, "{n}");
        }
        let p = Param::AesCbcData { iv: [0; 16], data: vec![0; 20] };
        assert_eq!(build(CKM_AES_CBC_ENCRYPT_DATA, p).unwrap_err(), Error::MechanismParamInvalid);
    }
}
