//! `CKM_AES_GCM` (NIST SP 800-38D): AES-128/192/256, 96-bit IVs, 96- to 128-bit tags.
//!
//! GCM is an AEAD: decryption releases plaintext only after the tag verifies, so the
//! multi-part forms buffer their input and do the work in `finish`. Every decryption
//! failure is the same opaque `CKR_ENCRYPTED_DATA_INVALID`.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::{Zeroize, Zeroizing};

use super::backend;
use super::registry::{KeyNeed, KeyView, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::{Cipher, GcmParams, Mechanism};
use crate::error::{Error, Result};

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[MechEntry {
    ty: CKM_AES_GCM,
    info: MechInfo {
        min_key: 16,
        max_key: 32,
        flags: CKF_ENCRYPT | CKF_DECRYPT | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT,
    },
    key: KeyNeed::Secret(&[CKK_AES]),
    param: ParamShape::Gcm,
    build,
    ops: Ops { encrypt: Some(encrypt_op), decrypt: Some(decrypt_op), ..Ops::NONE },
}];

fn build(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    let Param::Gcm(params) = p else { return Err(Error::MechanismParamInvalid) };
    check_params(&params)?;
    Ok(Mechanism::AesGcm(params))
}

/// The key schedule of `key` for tags of `tag_len` bytes, made once per key object and
/// kept with it.
pub fn prepared_key(key: &dyn KeyView, tag_len: usize) -> Result<Arc<GcmKey>> {
    key.prepared().get_or_make(GcmKey::cache_tag(tag_len), || GcmKey::new(&key.secret()?, tag_len))
}

fn encrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    let Mechanism::AesGcm(p) = m else { return Err(Error::MechanismInvalid) };
    encryptor(prepared_key(key, p.tag_len)?, p)
}

fn decrypt_op(m: &Mechanism, key: &dyn KeyView) -> Result<Box<dyn Cipher>> {
    let Mechanism::AesGcm(p) = m else { return Err(Error::MechanismInvalid) };
    decryptor(prepared_key(key, p.tag_len)?, p)
}

/// The only IV length supported: 96 bits, the length SP 800-38D recommends.
pub const IV_LEN: usize = 12;

/// Checks decoded parameters: 12-byte IV, tag of 12 to 16 bytes.
pub fn check_params(p: &GcmParams) -> Result<()> {
    if p.iv.len() != IV_LEN || !(12..=16).contains(&p.tag_len) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(())
}

/// An AES-GCM key ready for use with one tag length: its AES key schedule and GHASH key
/// computed once, so a key used again and again (one per call, as applications call
/// PKCS#11) pays for them once. The backend zeroizes both when it is dropped.
pub struct GcmKey {
    gcm: backend::Gcm,
    tag_len: usize,
}

impl GcmKey {
    /// Prepares `key` (16, 24 or 32 bytes) for tags of `tag_len` bytes (12 to 16).
    pub fn new(key: &[u8], tag_len: usize) -> Result<GcmKey> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::KeySizeRange);
        }
        if !(12..=16).contains(&tag_len) {
            return Err(Error::MechanismParamInvalid);
        }
        let gcm = backend::Gcm::new(key, tag_len)?;
        Ok(GcmKey { gcm, tag_len })
    }

    /// Which prepared key a [`Prepared`](super::registry::Prepared) cache keeps for `tag_len`.
    pub fn cache_tag(tag_len: usize) -> u64 {
        (CKM_AES_GCM << 8) | tag_len as u64
    }

    fn check(&self, p: &GcmParams) -> Result<()> {
        check_params(p)?;
        if p.tag_len != self.tag_len {
            return Err(Error::MechanismParamInvalid);
        }
        Ok(())
    }

    /// Encrypts `plaintext`, appending ciphertext then tag to `out`: one copy of the data,
    /// encrypted in place there.
    pub fn seal_into(&self, p: &GcmParams, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.check(p)?;
        let start = out.len();
        out.reserve(plaintext.len() + self.tag_len);
        out.extend_from_slice(plaintext);
        let tag = self.gcm.seal(&p.iv, &p.aad, &mut out[start..])?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// [`GcmKey::seal_into`] into a buffer of the caller's (at least the input plus the
    /// tag long): the data is copied there once and encrypted in place. Returns the length.
    pub fn seal_in_place(&self, p: &GcmParams, plaintext: &[u8], out: &mut [u8]) -> Result<usize> {
        let n = plaintext.len();
        let whole = n + self.tag_len;
        let (body, rest) = out.split_at_mut_checked(n).ok_or(Error::BufferTooSmall(whole))?;
        let tag_out = rest.get_mut(..self.tag_len).ok_or(Error::BufferTooSmall(whole))?;
        tag_out.copy_from_slice(&self.seal_detached(p, plaintext, body)?);
        Ok(whole)
    }

    /// Encrypts `plaintext` into the first `plaintext.len()` bytes of `out` (copied there
    /// once, encrypted in place) and returns the tag apart, as the message API lays it out.
    pub fn seal_detached(&self, p: &GcmParams, plaintext: &[u8], out: &mut [u8]) -> Result<Vec<u8>> {
        self.check(p)?;
        let body = out.get_mut(..plaintext.len()).ok_or(Error::BufferTooSmall(plaintext.len()))?;
        body.copy_from_slice(plaintext);
        self.gcm.seal(&p.iv, &p.aad, body)
    }

    /// [`GcmKey::open_into`] into a buffer of the caller's: on failure the buffer is
    /// wiped, so no unverified plaintext stays there. Returns the plaintext length.
    pub fn open_in_place(&self, p: &GcmParams, sealed: &[u8], out: &mut [u8]) -> Result<usize> {
        let Some(split) = sealed.len().checked_sub(p.tag_len) else {
            self.check(p)?;
            return Err(Error::EncryptedDataLenRange);
        };
        let (ct, tag) = sealed.split_at(split);
        self.open_detached(p, ct, tag, out)?;
        Ok(split)
    }

    /// Decrypts `ciphertext` with its separate `tag` into the first `ciphertext.len()`
    /// bytes of `out`, wiped there if the tag does not verify (no unverified plaintext
    /// stays in the caller's memory).
    pub fn open_detached(&self, p: &GcmParams, ciphertext: &[u8], tag: &[u8], out: &mut [u8]) -> Result<()> {
        self.check(p)?;
        let body = out.get_mut(..ciphertext.len()).ok_or(Error::BufferTooSmall(ciphertext.len()))?;
        body.copy_from_slice(ciphertext);
        if let Err(e) = self.gcm.open(&p.iv, &p.aad, body, tag) {
            body.zeroize();
            return Err(e);
        }
        Ok(())
    }

    /// Decrypts ciphertext followed by its tag, appending the plaintext to `out` only if
    /// the tag verifies (the bytes decrypted in place are wiped otherwise).
    pub fn open_into(&self, p: &GcmParams, sealed: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.check(p)?;
        let Some(split) = sealed.len().checked_sub(p.tag_len) else {
            return Err(Error::EncryptedDataLenRange);
        };
        let (ct, tag) = sealed.split_at(split);
        let start = out.len();
        out.extend_from_slice(ct);
        if let Err(e) = self.gcm.open(&p.iv, &p.aad, &mut out[start..], tag) {
            out[start..].zeroize();
            out.truncate(start);
            return Err(e);
        }
        Ok(())
    }
}

/// Encrypts `plaintext`: returns ciphertext followed by the tag, as PKCS#11 lays it out.
pub fn seal(key: &[u8], p: &GcmParams, plaintext: &[u8]) -> Result<Vec<u8>> {
    check_params(p)?;
    let mut out = Vec::new();
    GcmKey::new(key, p.tag_len)?.seal_into(p, plaintext, &mut out)?;
    Ok(out)
}

/// Decrypts ciphertext followed by its tag; nothing is released unless the tag verifies.
pub fn open(key: &[u8], p: &GcmParams, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    check_params(p)?;
    let mut out = Zeroizing::new(Vec::new());
    GcmKey::new(key, p.tag_len)?.open_into(p, sealed, &mut out)?;
    Ok(out)
}

/// A GCM operation: a one-shot call works on the caller's data directly; the multi-part
/// form buffers everything and works in `finish`.
struct Buffered {
    key: Arc<GcmKey>,
    params: GcmParams,
    input: Zeroizing<Vec<u8>>,
    encrypt: bool,
}

impl Buffered {
    fn run(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self.encrypt {
            true => self.key.seal_into(&self.params, input, out),
            false => self.key.open_into(&self.params, input, out),
        }
    }
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
        let input = std::mem::take(&mut self.input);
        self.run(&input, out)
    }

    fn once(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.input.is_empty() {
            return self.run(input, out);
        }
        self.update(input, out)?;
        self.finish(out)
    }

    fn once_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if !self.input.is_empty() {
            self.update(input, &mut Vec::new())?;
            let all = std::mem::take(&mut self.input);
            return self.once_into(&all, out);
        }
        match self.encrypt {
            true => self.key.seal_in_place(&self.params, input, out),
            false => self.key.open_in_place(&self.params, input, out),
        }
    }
}

/// An encryption under `key` with `params`.
pub fn encryptor(key: Arc<GcmKey>, params: &GcmParams) -> Result<Box<dyn Cipher>> {
    start(key, params, true)
}

/// A decryption under `key` with `params`.
pub fn decryptor(key: Arc<GcmKey>, params: &GcmParams) -> Result<Box<dyn Cipher>> {
    start(key, params, false)
}

fn start(key: Arc<GcmKey>, params: &GcmParams, encrypt: bool) -> Result<Box<dyn Cipher>> {
    key.check(params)?;
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
    fn a_prepared_key_in_one_call_or_in_parts_gives_the_known_answers() {
        for (i, (k, iv, aad, pt, ct, tag)) in VECTORS.iter().enumerate() {
            let p = GcmParams { iv: h(iv), aad: h(aad), tag_len: 16 };
            let key = Arc::new(GcmKey::new(&h(k), 16).expect("key"));
            let mut want = h(ct);
            want.extend(h(tag));
            let mut once = Vec::new();
            encryptor(key.clone(), &p).expect("op").once(&h(pt), &mut once).expect("once");
            assert_eq!(once, want, "vector {i}");
            let mut parts = Vec::new();
            let mut op = encryptor(key.clone(), &p).expect("op");
            let pt = h(pt);
            let (a, b) = pt.split_at(pt.len() / 2);
            op.update(a, &mut parts).expect("update");
            op.once(b, &mut parts).expect("the rest in one call");
            assert_eq!(parts, want, "vector {i}");
            let mut opened = Vec::new();
            decryptor(key, &p).expect("op").once(&want, &mut opened).expect("open");
            assert_eq!(opened, pt, "vector {i}");
        }
    }

    #[test]
    fn in_place_into_a_callers_buffer_matches_and_a_bad_tag_leaves_it_wiped() {
        let (k, iv, aad, pt, ct, tag) = VECTORS[1];
        let p = GcmParams { iv: h(iv), aad: h(aad), tag_len: 16 };
        let key = Arc::new(GcmKey::new(&h(k), 16).expect("key"));
        let mut want = h(ct);
        want.extend(h(tag));
        let mut buf = vec![0xaa; want.len() + 3];
        let n = encryptor(key.clone(), &p).expect("op").once_into(&h(pt), &mut buf).expect("seal");
        assert_eq!(&buf[..n], want.as_slice());
        let mut plain = vec![0; want.len()];
        let n = decryptor(key.clone(), &p).expect("op").once_into(&want, &mut plain).expect("open");
        assert_eq!(&plain[..n], h(pt).as_slice());
        let mut bad = want.clone();
        bad[3] ^= 1;
        let mut out = vec![0x55; want.len()];
        let err = decryptor(key, &p).expect("op").once_into(&bad, &mut out).unwrap_err();
        assert_eq!(err, Error::EncryptedDataInvalid);
        assert!(out[..bad.len() - 16].iter().all(|b| *b == 0), "nothing of the ciphertext's decryption is left");
    }

    #[test]
    fn a_truncated_tag_fails_on_every_flipped_byte_and_leaves_no_plaintext() {
        let (k, iv, aad, pt, _, _) = VECTORS[1];
        for tag_len in 12..16 {
            let p = GcmParams { iv: h(iv), aad: h(aad), tag_len };
            let key = GcmKey::new(&h(k), tag_len).expect("key");
            let sealed = seal(&h(k), &p, &h(pt)).expect("seal");
            assert_eq!(open(&h(k), &p, &sealed).expect("open").as_slice(), h(pt).as_slice(), "tag {tag_len}");
            for i in 0..sealed.len() {
                let mut bad = sealed.clone();
                bad[i] ^= 0x04;
                let mut out = vec![0x55; sealed.len()];
                let err = key.open_in_place(&p, &bad, &mut out).unwrap_err();
                assert_eq!(err, Error::EncryptedDataInvalid, "tag {tag_len} byte {i}");
                assert!(out[..sealed.len() - tag_len].iter().all(|b| *b == 0), "tag {tag_len} byte {i}: wiped");
            }
        }
    }

    #[test]
    fn a_failed_open_appends_nothing() {
        let (k, iv, aad, pt, _, _) = VECTORS[1];
        let p = GcmParams { iv: h(iv), aad: h(aad), tag_len: 16 };
        let key = GcmKey::new(&h(k), 16).expect("key");
        let mut sealed = Vec::new();
        key.seal_into(&p, &h(pt), &mut sealed).expect("seal");
        sealed[0] ^= 1;
        let mut out = b"kept".to_vec();
        assert_eq!(key.open_into(&p, &sealed, &mut out).unwrap_err(), Error::EncryptedDataInvalid);
        assert_eq!(out, b"kept");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let key = [0u8; 16];
        for p in [
            GcmParams { iv: vec![0; 8], aad: vec![], tag_len: 16 },
            GcmParams { iv: vec![0; 12], aad: vec![], tag_len: 8 },
            GcmParams { iv: vec![0; 12], aad: vec![], tag_len: 17 },
        ] {
            assert_eq!(seal(&key, &p, b"").err(), Some(Error::MechanismParamInvalid), "{p:?}");
        }
        let p = GcmParams { iv: vec![0; 12], aad: vec![], tag_len: 16 };
        assert_eq!(GcmKey::new(&[0; 20], 16).err(), Some(Error::KeySizeRange));
        let prepared = Arc::new(GcmKey::new(&key, 16).expect("key"));
        let other_tag = GcmParams { tag_len: 12, ..p.clone() };
        assert_eq!(encryptor(prepared, &other_tag).err(), Some(Error::MechanismParamInvalid), "tag length fixed");
        assert_eq!(open(&key, &p, &[0; 15]).unwrap_err(), Error::EncryptedDataLenRange);
    }
}
