//! `CKM_AES_GCM` (NIST SP 800-38D): AES-128/192/256, 96-bit IVs, 96- to 128-bit tags.
//!
//! GCM is an AEAD: decryption releases plaintext only after the tag verifies, so the
//! multi-part forms buffer their input and do the work in `finish`. Every decryption
//! failure is the same opaque `CKR_ENCRYPTED_DATA_INVALID`.

use aes_gcm::aead::consts::{U12, U13, U14, U15, U16};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AesGcm, Nonce};
use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{Cipher, GcmParams, MechEntry};
use crate::error::{Error, Result};

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_AES_GCM,
    min_key: 16,
    max_key: 32,
    flags: CKF_ENCRYPT | CKF_DECRYPT | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT,
}];

/// The only IV length supported: 96 bits, the length SP 800-38D recommends.
pub const IV_LEN: usize = 12;

/// Checks decoded parameters: 12-byte IV, tag of 12 to 16 bytes.
pub fn check_params(p: &GcmParams) -> Result<()> {
    if p.iv.len() != IV_LEN || !(12..=16).contains(&p.tag_len) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(())
}

/// One key and tag length, behind a uniform interface over the crate's generic types.
trait Gcm {
    fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<Vec<u8>>;
    fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<()>;
}

impl<C: AeadInOut<NonceSize = U12>> Gcm for C {
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

fn boxed<C: AeadInOut<NonceSize = U12> + KeyInit + 'static>(key: &[u8]) -> Result<Box<dyn Gcm>> {
    Ok(Box::new(C::new_from_slice(key).map_err(|_| Error::KeySizeRange)?))
}

fn cipher(key: &[u8], tag_len: usize) -> Result<Box<dyn Gcm>> {
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
    match key.len() {
        16 => by_tag!(Aes128),
        24 => by_tag!(Aes192),
        32 => by_tag!(Aes256),
        _ => Err(Error::KeySizeRange),
    }
}

/// Encrypts `plaintext`: returns ciphertext followed by the tag, as PKCS#11 lays it out.
pub fn seal(key: &[u8], p: &GcmParams, plaintext: &[u8]) -> Result<Vec<u8>> {
    check_params(p)?;
    let mut out = plaintext.to_vec();
    let tag = cipher(key, p.tag_len)?.seal(&p.iv, &p.aad, &mut out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts ciphertext followed by its tag; nothing is released unless the tag verifies.
pub fn open(key: &[u8], p: &GcmParams, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    check_params(p)?;
    let Some(split) = sealed.len().checked_sub(p.tag_len) else {
        return Err(Error::EncryptedDataLenRange);
    };
    let (ct, tag) = sealed.split_at(split);
    let mut out = Zeroizing::new(ct.to_vec());
    cipher(key, p.tag_len)?.open(&p.iv, &p.aad, &mut out, tag)?;
    Ok(out)
}

/// A GCM operation: buffers everything, works in `finish`.
struct Buffered {
    key: Zeroizing<Vec<u8>>,
    params: GcmParams,
    input: Zeroizing<Vec<u8>>,
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
            self.input.len() + more + self.params.tag_len
        } else {
            (self.input.len() + more).saturating_sub(self.params.tag_len)
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.encrypt {
            out.extend_from_slice(&seal(&self.key, &self.params, &self.input)?);
        } else {
            out.extend_from_slice(&open(&self.key, &self.params, &self.input)?);
        }
        Ok(())
    }
}

/// An encryption under `key` with `params`.
pub fn encryptor(key: &[u8], params: &GcmParams) -> Result<Box<dyn Cipher>> {
    start(key, params, true)
}

/// A decryption under `key` with `params`.
pub fn decryptor(key: &[u8], params: &GcmParams) -> Result<Box<dyn Cipher>> {
    start(key, params, false)
}

fn start(key: &[u8], params: &GcmParams, encrypt: bool) -> Result<Box<dyn Cipher>> {
    check_params(params)?;
    cipher(key, params.tag_len)?;
    let key = Zeroizing::new(key.to_vec());
    Ok(Box::new(Buffered { key, params: params.clone(), input: Zeroizing::default(), encrypt }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    // McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 2, 4 and 16.
    const VECTORS: &[(&str, &str, &str, &str, &str, &str)] = &[
        (
            "00000000000000000000000000000000",
            "000000000000000000000000",
            "",
            "00000000000000000000000000000000",
            "0388dace60b6a392f328c2b971b2fe78",
            "ab6e47d42cec13bdf53a67b21257bddf",
        ),
        (
            "feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            "5bc94fbc3221a5db94fae95ae7121a47",
        ),
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ];

    #[test]
    fn known_answers_seal_and_open() {
        for (i, (k, iv, aad, pt, ct, tag)) in VECTORS.iter().enumerate() {
            let p = GcmParams { iv: h(iv), aad: h(aad), tag_len: 16 };
            let mut want = h(ct);
            want.extend(h(tag));
            assert_eq!(seal(&h(k), &p, &h(pt)).expect("seal"), want, "vector {i}");
            assert_eq!(open(&h(k), &p, &want).expect("open").as_slice(), h(pt).as_slice(), "vector {i}");
        }
    }

    #[test]
    fn a_truncated_tag_is_the_full_tags_prefix() {
        let (k, iv, aad, pt, _, tag) = VECTORS[1];
        let p = GcmParams { iv: h(iv), aad: h(aad), tag_len: 12 };
        let sealed = seal(&h(k), &p, &h(pt)).expect("seal");
        assert_eq!(&sealed[sealed.len() - 12..], &h(tag)[..12]);
        assert!(open(&h(k), &p, &sealed).is_ok());
    }

    #[test]
    fn every_flipped_byte_fails_the_same_way() {
        let (k, iv, aad, pt, _, _) = VECTORS[1];
        let p = GcmParams { iv: h(iv), aad: h(aad), tag_len: 16 };
        let sealed = seal(&h(k), &p, &h(pt)).expect("seal");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert_eq!(open(&h(k), &p, &bad).unwrap_err(), Error::EncryptedDataInvalid, "byte {i}");
        }
        let wrong_aad = GcmParams { aad: b"other".to_vec(), ..p };
        assert_eq!(open(&h(k), &wrong_aad, &sealed).unwrap_err(), Error::EncryptedDataInvalid);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let key = [0u8; 16];
        for p in [
            GcmParams { iv: vec![0; 8], aad: vec![], tag_len: 16 },
            GcmParams { iv: vec![0; 12], aad: vec![], tag_len: 8 },
            GcmParams { iv: vec![0; 12], aad: vec![], tag_len: 17 },
        ] {
            assert_eq!(encryptor(&key, &p).err(), Some(Error::MechanismParamInvalid), "{p:?}");
        }
        let p = GcmParams { iv: vec![0; 12], aad: vec![], tag_len: 16 };
        assert_eq!(encryptor(&[0; 20], &p).err(), Some(Error::KeySizeRange));
        assert_eq!(open(&key, &p, &[0; 15]).unwrap_err(), Error::EncryptedDataLenRange);
    }
}
