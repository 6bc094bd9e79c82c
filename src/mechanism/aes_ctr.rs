//! `CKM_AES_CTR` (NIST SP 800-38A §6.5) with `CK_AES_CTR_PARAMS`: the low
//! `ulCounterBits` bits of the 16-byte counter block count, big-endian; the rest is a
//! fixed nonce.
//!
//! The counter is kept here rather than in the `ctr` crate because PKCS#11 allows any
//! counter width from 1 to 128 bits and the crate's flavors are 32, 64 or 128 bits wide.
//! A counter that would wrap (reuse a keystream block) is refused: `CKR_DATA_LEN_RANGE`
//! on encryption, `CKR_ENCRYPTED_DATA_LEN_RANGE` on decryption. CTR is a stream mode, so
//! every byte is output at once and fragments of any size are fine.

use cryptoki_sys::*;
use zeroize::{Zeroize, Zeroizing};

use super::aes_block::{AesKey, BLOCK};
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::{Cipher, CtrParams, Mechanism};
use crate::error::{Error, Result};

/// Registry rows (key sizes in bytes).
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_AES_CTR,
    info: MechInfo { min_key: 16, max_key: 32, flags: CKF_ENCRYPT | CKF_DECRYPT },
    key: KeyNeed::Secret(&[CKK_AES]),
    param: ParamShape::Ctr,
    build,
    ops: Ops { encrypt: Some(encrypt_op), decrypt: Some(decrypt_op), ..Ops::NONE },
}];

fn build(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Ctr(params) = p else { return Err(Error::MechanismParamInvalid) };
    check_params(&params)?;
    Ok(Mechanism::AesCtr(params))
}

fn encrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    let Mechanism::AesCtr(p) = m else { return Err(Error::MechanismInvalid) };
    ctr(&key.secret()?, p, true)
}

fn decrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    let Mechanism::AesCtr(p) = m else { return Err(Error::MechanismInvalid) };
    ctr(&key.secret()?, p, false)
}

/// Checks `ulCounterBits`: 1..=128, else `CKR_MECHANISM_PARAM_INVALID`.
pub fn check_params(p: &CtrParams) -> Result<()> {
    if (1..=128).contains(&p.counter_bits) {
        Ok(())
    } else {
        Err(Error::MechanismParamInvalid)
    }
}

struct CtrOp {
    key: AesKey,
    counter: [u8; BLOCK],
    bits: u32,
    /// Keystream blocks still available before the counter would wrap.
    blocks_left: u128,
    /// The current keystream block and how much of it is used (BLOCK = none left).
    stream: Zeroizing<[u8; BLOCK]>,
    used: usize,
    encrypt: bool,
}

impl Drop for CtrOp {
    fn drop(&mut self) {
        self.counter.zeroize();
    }
}

impl CtrOp {
    fn mask(&self) -> u128 {
        if self.bits >= 128 {
            u128::MAX
        } else {
            (1u128 << self.bits) - 1
        }
    }

    fn next_block(&mut self) {
        *self.stream = self.counter;
        self.key.encrypt(&mut self.stream);
        let c = u128::from_be_bytes(self.counter);
        let mask = self.mask();
        let next = (c & !mask) | (c.wrapping_add(1) & mask);
        self.counter = next.to_be_bytes();
        self.used = 0;
    }

    fn too_long(&self) -> Error {
        if self.encrypt {
            Error::DataLenRange
        } else {
            Error::EncryptedDataLenRange
        }
    }
}

impl Cipher for CtrOp {
    fn update_len(&self, input_len: usize) -> usize {
        input_len
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let buffered = BLOCK - self.used;
        let fresh = input.len().saturating_sub(buffered).div_ceil(BLOCK);
        if u128::try_from(fresh).map_or(true, |n| n > self.blocks_left) {
            return Err(self.too_long());
        }
        for &b in input {
            if self.used == BLOCK {
                self.next_block();
                self.blocks_left -= 1;
            }
            out.push(b ^ self.stream[self.used]);
            self.used += 1;
        }
        Ok(())
    }

    fn final_len(&self, _more: usize) -> usize {
        0
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
}

/// An AES-CTR operation (the same in both directions; `encrypt` picks the error codes).
pub fn ctr(key: &[u8], p: &CtrParams, encrypt: bool) -> Result<Box<dyn Cipher>> {
    check_params(p)?;
    let key = AesKey::new(key)?;
    let mut op = CtrOp {
        key,
        counter: p.block,
        bits: p.counter_bits,
        blocks_left: 0,
        stream: Zeroizing::new([0; BLOCK]),
        used: BLOCK,
        encrypt,
    };
    let start = u128::from_be_bytes(p.block) & op.mask();
    // Blocks from the start value up to and including the all-ones counter.
    op.blocks_left = (op.mask() - start).saturating_add(1);
    Ok(Box::new(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn params(bits: u32, block: &str) -> CtrParams {
        CtrParams { counter_bits: bits, block: h(block).try_into().unwrap() }
    }

    fn run(key: &[u8], p: &CtrParams, input: &[u8], split: usize, encrypt: bool) -> Result<Vec<u8>> {
        let mut c = ctr(key, p, encrypt)?;
        let mut out = Vec::new();
        for part in input.chunks(split) {
            c.update(part, &mut out)?;
        }
        c.finish(&mut out)?;
        Ok(out)
    }

    // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt) and F.5.5 (CTR-AES256.Encrypt).
    const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                      30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    const CB: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    const VECTORS: &[(&str, &str)] = &[
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff\
             5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
        ),
        (
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5\
             2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
        ),
    ];

    #[test]
    fn sp800_38a_ctr_vectors_in_any_fragmentation() {
        for (key, ct) in VECTORS {
            for bits in [128, 64, 32, 16] {
                for split in [64, 16, 1, 7, 33] {
                    let p = params(bits, CB);
                    assert_eq!(hex::encode(run(&h(key), &p, &h(PT), split, true).unwrap()), hex::encode(h(ct)));
                    assert_eq!(run(&h(key), &p, &h(ct), split, false).unwrap(), h(PT));
                }
            }
        }
    }

    #[test]
    fn the_counter_wraps_only_within_its_bits_and_never_reuses_a_block() {
        let key = h(VECTORS[0].0);
        // Two blocks left in an 8-bit counter at 0xfe: 32 bytes fit, 33 do not.
        let p = params(8, "000000000000000000000000000000fe");
        assert_eq!(run(&key, &p, &[0; 32], 32, true).unwrap().len(), 32);
        assert_eq!(run(&key, &p, &[0; 33], 33, true), Err(Error::DataLenRange));
        assert_eq!(run(&key, &p, &[0; 33], 33, false), Err(Error::EncryptedDataLenRange));
        // The bits above the counter never change: block 2 of a 1-bit counter from ...ff
        // would be ...fe, a wrap, so it is refused.
        let p = params(1, "ffffffffffffffffffffffffffffffff");
        assert_eq!(run(&key, &p, &[0; 16], 16, true).unwrap().len(), 16);
        assert_eq!(run(&key, &p, &[0; 17], 17, true), Err(Error::DataLenRange));
        // Across updates too.
        let mut c = ctr(&key, &params(8, "000000000000000000000000000000ff"), true).unwrap();
        let mut out = Vec::new();
        c.update(&[0; 10], &mut out).unwrap();
        c.update(&[0; 6], &mut out).unwrap();
        assert_eq!(c.update(&[0; 1], &mut out), Err(Error::DataLenRange));
    }

    #[test]
    fn counter_widths_outside_1_to_128_are_refused() {
        for bits in [0, 129] {
            assert!(matches!(ctr(&[0; 16], &params(bits, CB), true), Err(Error::MechanismParamInvalid)));
        }
    }
}
