//! `CKM_AES_ECB`, `CKM_AES_CBC` and `CKM_AES_CBC_PAD` (NIST SP 800-38A; PKCS#7 padding
//! for `_PAD`), streaming across `C_*Update` calls.
//!
//! The chaining is written here over the `aes` block cipher rather than through the
//! `ecb`/`cbc` wrapper crates: PKCS#11 streams arbitrary fragments, so the operation has to
//! own its partial-block buffer and its chaining value between calls anyway, and CBC is
//! one XOR per block. Whole blocks are output as soon as they are complete; a partial
//! block waits in a zeroized buffer. `CKM_AES_CBC_PAD` decryption always holds back the
//! last complete block, because only `C_DecryptFinal` knows whether it carries the
//! padding.
//!
//! Errors: input that does not end on a block boundary is `CKR_DATA_LEN_RANGE`
//! (encrypt) or `CKR_ENCRYPTED_DATA_LEN_RANGE` (decrypt) at final; bad padding is the one
//! opaque `CKR_ENCRYPTED_DATA_INVALID`, decided without a data-dependent branch per byte.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use cryptoki_sys::*;
use subtle::{ConstantTimeEq, ConstantTimeGreater};
use zeroize::{Zeroize, Zeroizing};

use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::{Cipher, Mechanism};
use crate::error::{Error, Internal, Result};

/// The AES block size (FIPS 197).
pub const BLOCK: usize = 16;

const FLAGS: CK_FLAGS = CKF_ENCRYPT | CKF_DECRYPT;

const fn row(ty: CK_MECHANISM_TYPE, param: ParamShape) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 16, max_key: 32, flags: FLAGS },
        key: KeyNeed::Secret(&[CKK_AES]),
        param,
        build,
        ops: Ops { encrypt: Some(encrypt_op), decrypt: Some(decrypt_op), ..Ops::NONE },
    }
}

/// Registry rows (key sizes in bytes).
pub const ENTRIES: &[MechEntry] =
    &[row(CKM_AES_ECB, ParamShape::None), row(CKM_AES_CBC, ParamShape::Iv16), row(CKM_AES_CBC_PAD, ParamShape::Iv16)];

fn build(ty: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    match (ty, p) {
        (CKM_AES_ECB, _) => Ok(Mechanism::AesEcb),
        (CKM_AES_CBC, Param::Iv16(iv)) => Ok(Mechanism::AesCbc(iv)),
        (CKM_AES_CBC_PAD, Param::Iv16(iv)) => Ok(Mechanism::AesCbcPad(iv)),
        _ => Err(Error::MechanismParamInvalid),
    }
}

fn start_op(m: &Mechanism, key: &dyn KeyView, encrypt: bool) -> Result<Box<dyn Cipher>> {
    let value = key.secret()?;
    match m {
        Mechanism::AesEcb => ecb(&value, encrypt),
        Mechanism::AesCbc(iv) => cbc(&value, *iv, false, encrypt),
        Mechanism::AesCbcPad(iv) => cbc(&value, *iv, true, encrypt),
        _ => Err(Error::MechanismInvalid),
    }
}

fn encrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    start_op(m, key, true)
}

fn decrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    start_op(m, key, false)
}

/// An expanded AES key of any of the three sizes (the `aes` crate zeroizes its round keys
/// on drop).
pub(super) enum AesKey {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl AesKey {
    /// A 16-, 24- or 32-byte key; any other length -> [`Error::KeySizeRange`].
    pub(super) fn new(key: &[u8]) -> Result<AesKey> {
        let bad = |_| Error::KeySizeRange;
        Ok(match key.len() {
            16 => AesKey::A128(Aes128::new_from_slice(key).map_err(bad)?),
            24 => AesKey::A192(Aes192::new_from_slice(key).map_err(bad)?),
            32 => AesKey::A256(Aes256::new_from_slice(key).map_err(bad)?),
            _ => return Err(Error::KeySizeRange),
        })
    }

    /// Encrypts one block in place.
    pub(super) fn encrypt(&self, block: &mut [u8; BLOCK]) {
        let b: &mut aes::Block = block.into();
        match self {
            AesKey::A128(k) => k.encrypt_block(b),
            AesKey::A192(k) => k.encrypt_block(b),
            AesKey::A256(k) => k.encrypt_block(b),
        }
    }

    /// Decrypts one block in place.
    pub(super) fn decrypt(&self, block: &mut [u8; BLOCK]) {
        let b: &mut aes::Block = block.into();
        match self {
            AesKey::A128(k) => k.decrypt_block(b),
            AesKey::A192(k) => k.decrypt_block(b),
            AesKey::A256(k) => k.decrypt_block(b),
        }
    }
}

/// Which mode and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ecb,
    Cbc,
    CbcPad,
}

struct BlockOp {
    key: AesKey,
    mode: Mode,
    encrypt: bool,
    /// The chaining value: the IV, then the last ciphertext block.
    chain: [u8; BLOCK],
    /// Input not yet processed (less than a block, or a held-back block).
    pending: Zeroizing<Vec<u8>>,
}

impl Drop for BlockOp {
    fn drop(&mut self) {
        self.chain.zeroize();
    }
}

impl BlockOp {
    /// True when decryption must keep the last full block for `finish`.
    fn holds_back(&self) -> bool {
        self.mode == Mode::CbcPad && !self.encrypt
    }

    /// Bytes of complete blocks `update` releases when `total` bytes are pending.
    fn releasable(&self, total: usize) -> usize {
        if self.holds_back() {
            total.saturating_sub(1) / BLOCK * BLOCK
        } else {
            total / BLOCK * BLOCK
        }
    }

    fn process(&mut self, block: &mut [u8; BLOCK]) {
        match (self.mode, self.encrypt) {
            (Mode::Ecb, true) => self.key.encrypt(block),
            (Mode::Ecb, false) => self.key.decrypt(block),
            (_, true) => {
                block.iter_mut().zip(self.chain).for_each(|(b, c)| *b ^= c);
                self.key.encrypt(block);
                self.chain = *block;
            }
            (_, false) => {
                let next = *block;
                self.key.decrypt(block);
                block.iter_mut().zip(self.chain).for_each(|(b, c)| *b ^= c);
                self.chain = next;
            }
        }
    }

    /// Processes the first `n` pending bytes (whole blocks) into `out`.
    fn drain(&mut self, n: usize, out: &mut Vec<u8>) {
        let mut block = Zeroizing::new([0u8; BLOCK]);
        for start in (0..n).step_by(BLOCK) {
            block.copy_from_slice(&self.pending[start..start + BLOCK]);
            self.process(&mut block);
            out.extend_from_slice(&*block);
        }
        self.pending.drain(..n);
    }
}

impl Cipher for BlockOp {
    fn update_len(&self, input_len: usize) -> usize {
        self.releasable(self.pending.len().saturating_add(input_len))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.pending.extend_from_slice(input);
        let n = self.releasable(self.pending.len());
        self.drain(n, out);
        Ok(())
    }

    fn final_len(&self, more: usize) -> usize {
        match (self.mode, self.encrypt) {
            (Mode::CbcPad, true) => BLOCK,
            // At most the held-back block less at least one padding byte; the whole block
            // is a safe bound.
            (Mode::CbcPad, false) => BLOCK.min(self.pending.len().saturating_add(more)),
            _ => 0,
        }
    }

    fn check_final_len(&self, more: usize) -> Result<()> {
        let left = self.pending.len().saturating_add(more);
        match (self.mode, self.encrypt) {
            (Mode::CbcPad, true) => Ok(()),
            // Decryption with padding ends on one or more whole blocks.
            (Mode::CbcPad, false) if left == 0 || left % BLOCK != 0 => Err(Error::EncryptedDataLenRange),
            (Mode::CbcPad, false) => Ok(()),
            (_, true) if left % BLOCK != 0 => Err(Error::DataLenRange),
            (_, false) if left % BLOCK != 0 => Err(Error::EncryptedDataLenRange),
            _ => Ok(()),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let left = self.pending.len();
        match (self.mode, self.encrypt) {
            (Mode::CbcPad, true) => {
                let pad = u8::try_from(BLOCK - left).map_err(|_| Error::Internal(Internal::DerivedLength))?;
                self.pending.resize(BLOCK, pad);
                self.drain(BLOCK, out);
                Ok(())
            }
            (Mode::CbcPad, false) => {
                if left != BLOCK {
                    return Err(Error::EncryptedDataLenRange);
                }
                let mut last = Zeroizing::new(Vec::with_capacity(BLOCK));
                self.drain(BLOCK, &mut last);
                let len = unpad_len(&last).ok_or(Error::EncryptedDataInvalid)?;
                out.extend_from_slice(&last[..len]);
                Ok(())
            }
            (_, true) if left != 0 => Err(Error::DataLenRange),
            (_, false) if left != 0 => Err(Error::EncryptedDataLenRange),
            _ => Ok(()),
        }
    }
}

/// The plaintext length of a final PKCS#7-padded block, or `None` for bad padding. Every
/// byte is examined whatever the padding value, and validity is accumulated in a
/// constant-time `Choice`; only the final verdict branches.
fn unpad_len(block: &[u8]) -> Option<usize> {
    let pad = *block.last()?;
    let mut ok = pad.ct_gt(&0) & !pad.ct_gt(&16);
    for (i, &b) in block.iter().rev().enumerate() {
        // Positions inside the padding (i < pad) must equal pad.
        let inside = u8::try_from(i).map_or(subtle::Choice::from(0), |i| pad.ct_gt(&i));
        ok &= !inside | b.ct_eq(&pad);
    }
    bool::from(ok).then(|| block.len() - usize::from(pad))
}

fn op(key: &[u8], mode: Mode, iv: [u8; BLOCK], encrypt: bool) -> Result<Box<dyn Cipher>> {
    Ok(Box::new(BlockOp { key: AesKey::new(key)?, mode, encrypt, chain: iv, pending: Zeroizing::default() }))
}

/// `CKM_AES_ECB` in either direction.
pub fn ecb(key: &[u8], encrypt: bool) -> Result<Box<dyn Cipher>> {
    op(key, Mode::Ecb, [0; BLOCK], encrypt)
}

/// `CKM_AES_CBC` (`pad == false`) or `CKM_AES_CBC_PAD`, in either direction.
pub fn cbc(key: &[u8], iv: [u8; BLOCK], pad: bool, encrypt: bool) -> Result<Box<dyn Cipher>> {
    op(key, if pad { Mode::CbcPad } else { Mode::Cbc }, iv, encrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn run(mut c: Box<dyn Cipher>, input: &[u8], split: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for part in input.chunks(split.max(1)) {
            let before = out.len();
            let bound = c.update_len(part.len());
            c.update(part, &mut out)?;
            assert!(out.len() - before <= bound);
        }
        c.finish(&mut out)?;
        Ok(out)
    }

    // NIST SP 800-38A F.1.1/F.1.5 (ECB-AES128/256) and F.2.1/F.2.5 (CBC-AES128/256).
    const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
                      30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const K256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const ECB128: &str = "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf\
                          43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4";
    const ECB256: &str = "f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870\
                          b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7";
    const CBC128: &str = "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2\
                          73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7";
    const CBC256: &str = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
                          39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";
    // F.2.3 (CBC-AES192).
    const K192: &str = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b";
    const CBC192: &str = "4f021db243bc633d7178183a9fa071e8b4d9ada9ad7dedf4e5e738763f69145a\
                          571b242012fb7ae07fa9baac3df102e008b0e27988598881d920a9e64f5615cd";

    #[test]
    fn sp800_38a_ecb_and_cbc_vectors_in_any_fragmentation() {
        let iv: [u8; 16] = h(IV).try_into().unwrap();
        let cases: [(&str, Option<[u8; 16]>, &str); 5] = [
            (K128, None, ECB128),
            (K256, None, ECB256),
            (K128, Some(iv), CBC128),
            (K192, Some(iv), CBC192),
            (K256, Some(iv), CBC256),
        ];
        for (i, (key, iv, ct)) in cases.iter().enumerate() {
            let (key, ct) = (h(key), h(ct));
            for split in [64, 16, 1, 5, 17, 33] {
                let enc = match iv {
                    None => ecb(&key, true).unwrap(),
                    Some(iv) => cbc(&key, *iv, false, true).unwrap(),
                };
                assert_eq!(run(enc, &h(PT), split).unwrap(), ct, "case {i} split {split}");
                let dec = match iv {
                    None => ecb(&key, false).unwrap(),
                    Some(iv) => cbc(&key, *iv, false, false).unwrap(),
                };
                assert_eq!(run(dec, &ct, split).unwrap(), h(PT), "case {i} split {split}");
            }
        }
    }

    #[test]
    fn a_partial_last_block_is_a_length_error() {
        let e = ecb(&h(K128), true).unwrap();
        assert_eq!(e.check_final_len(17), Err(Error::DataLenRange));
        assert_eq!(e.check_final_len(32), Ok(()));
        let d = cbc(&h(K128), [0; 16], false, false).unwrap();
        assert_eq!(d.check_final_len(15), Err(Error::EncryptedDataLenRange));
        let padded = cbc(&h(K128), [0; 16], true, false).unwrap();
        assert_eq!(padded.check_final_len(0), Err(Error::EncryptedDataLenRange));
        assert_eq!(padded.check_final_len(20), Err(Error::EncryptedDataLenRange));
        assert_eq!(padded.check_final_len(32), Ok(()));
        assert_eq!(cbc(&h(K128), [0; 16], true, true).unwrap().check_final_len(3), Ok(()));
        assert_eq!(run(ecb(&h(K128), true).unwrap(), &[0; 17], 17), Err(Error::DataLenRange));
        assert_eq!(run(cbc(&h(K128), [0; 16], false, false).unwrap(), &[0; 15], 15), Err(Error::EncryptedDataLenRange));
    }

    #[test]
    fn cbc_pad_round_trips_every_length_and_adds_a_block_on_a_boundary() {
        let key = h(K256);
        for len in 0..50 {
            let pt: Vec<u8> = (0..len).map(|i| u8::try_from(i).unwrap()).collect();
            let ct = run(cbc(&key, [9; 16], true, true).unwrap(), &pt, 7).unwrap();
            assert_eq!(ct.len(), (len / 16 + 1) * 16, "len {len}");
            for split in [1, 16, 100] {
                assert_eq!(run(cbc(&key, [9; 16], true, false).unwrap(), &ct, split).unwrap(), pt, "len {len}");
            }
        }
        // The padded form of SP 800-38A's first block matches plain CBC over pt || 16×0x10.
        let pt = h(&PT[..32]);
        let padded = [pt.clone(), vec![16; 16]].concat();
        let iv: [u8; 16] = h(IV).try_into().unwrap();
        assert_eq!(
            run(cbc(&h(K128), iv, true, true).unwrap(), &pt, 16).unwrap(),
            run(cbc(&h(K128), iv, false, true).unwrap(), &padded, 16).unwrap()
        );
    }

    #[test]
    fn cbc_pad_decryption_holds_back_the_last_block() {
        let key = h(K128);
        let ct = run(cbc(&key, [0; 16], true, true).unwrap(), &[1; 32], 32).unwrap();
        let mut d = cbc(&key, [0; 16], true, false).unwrap();
        let mut out = Vec::new();
        assert_eq!(d.update_len(48), 32);
        d.update(&ct, &mut out).unwrap();
        assert_eq!(out, vec![1; 32], "two blocks out, the padding block held back");
        d.finish(&mut out).unwrap();
        assert_eq!(out, vec![1; 32]);
    }

    #[test]
    fn bad_padding_is_one_opaque_error() {
        let key = h(K128);
        let mut ecb_enc = ecb(&key, true).unwrap();
        for last in [
            [0u8; 16].to_vec(),
            [[0u8; 15].as_slice(), &[17]].concat(),
            [[0u8; 14].as_slice(), &[1, 2]].concat(),
            [[5u8; 13].as_slice(), &[4, 3, 3]].concat(),
        ] {
            // CBC with a zero IV over one block is ECB.
            let mut ct = Vec::new();
            ecb_enc.update(&last, &mut ct).unwrap();
            assert_eq!(
                run(cbc(&key, [0; 16], true, false).unwrap(), &ct, 16),
                Err(Error::EncryptedDataInvalid),
                "{last:?}"
            );
        }
        assert_eq!(run(cbc(&key, [0; 16], true, false).unwrap(), &[], 1), Err(Error::EncryptedDataLenRange));
        assert_eq!(run(cbc(&key, [0; 16], true, false).unwrap(), &[0; 20], 1), Err(Error::EncryptedDataLenRange));
    }

    #[test]
    fn unpadding_accepts_exactly_the_pkcs7_forms() {
        for pad in 1..=16u8 {
            let mut block = vec![0xaa; 16];
            block[16 - usize::from(pad)..].fill(pad);
            assert_eq!(unpad_len(&block), Some(16 - usize::from(pad)));
        }
        assert_eq!(unpad_len(&[0xaa; 16]), None);
    }

    #[test]
    fn wrong_key_sizes_are_refused() {
        assert!(matches!(ecb(&[0; 15], true), Err(Error::KeySizeRange)));
        assert!(matches!(cbc(&[0; 33], [0; 16], false, true), Err(Error::KeySizeRange)));
    }
}
