//! `CKM_SHA256_HMAC` (RFC 2104 / FIPS 198-1) sign and verify; verification compares in
//! constant time.

use cryptoki_sys::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{MechEntry, Signer, Verifier};
use crate::error::{Error, Result};

/// Registry rows: key sizes in bytes.
pub const ENTRIES: &[MechEntry] =
    &[MechEntry { ty: CKM_SHA256_HMAC, min_key: 1, max_key: 512, flags: CKF_SIGN | CKF_VERIFY }];

const TAG_LEN: usize = 32;

struct HmacSha256(Option<Hmac<Sha256>>);

impl HmacSha256 {
    fn mac(&mut self) -> Result<&mut Hmac<Sha256>> {
        self.0.as_mut().ok_or(Error::OperationNotInitialized)
    }

    fn take(&mut self) -> Result<Hmac<Sha256>> {
        self.0.take().ok_or(Error::OperationNotInitialized)
    }
}

impl Signer for HmacSha256 {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac()?.update(data);
        Ok(())
    }

    fn signature_len(&self) -> usize {
        TAG_LEN
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        Ok(self.take()?.finalize().into_bytes().to_vec())
    }
}

impl Verifier for HmacSha256 {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac()?.update(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        if signature.len() != TAG_LEN {
            return Err(Error::SignatureLenRange);
        }
        self.take()?.verify_slice(signature).map_err(|_| Error::SignatureInvalid)
    }
}

fn start(key: &[u8]) -> Result<HmacSha256> {
    if key.is_empty() {
        return Err(Error::KeySizeRange);
    }
    let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| Error::KeySizeRange)?;
    Ok(HmacSha256(Some(mac)))
}

/// An HMAC-SHA256 signing operation.
pub fn signer(key: &[u8]) -> Result<Box<dyn Signer>> {
    Ok(Box::new(start(key)?))
}

/// An HMAC-SHA256 verification.
pub fn verifier(key: &[u8]) -> Result<Box<dyn Verifier>> {
    Ok(Box::new(start(key)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test cases 1 and 2.
    const VECTORS: &[(&str, &str, &str)] = &[
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "4869205468657265",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            "4a656665",
            "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ];

    #[test]
    fn rfc_4231_vectors_sign_and_verify() {
        for (i, (key, data, tag)) in VECTORS.iter().enumerate() {
            let (key, data, tag) = (hex::decode(key).unwrap(), hex::decode(data).unwrap(), hex::decode(tag).unwrap());
            let mut s = signer(&key).unwrap();
            s.update(&data).unwrap();
            assert_eq!(s.finish().unwrap(), tag, "vector {i}");
            let mut v = verifier(&key).unwrap();
            v.update(&data).unwrap();
            assert!(v.finish(&tag).is_ok(), "vector {i}");
        }
    }

    #[test]
    fn a_wrong_or_short_tag_is_refused() {
        let mut v = verifier(b"key").unwrap();
        v.update(b"data").unwrap();
        assert_eq!(v.finish(&[0; 32]).unwrap_err(), Error::SignatureInvalid);
        let mut v = verifier(b"key").unwrap();
        assert_eq!(v.finish(&[0; 31]).unwrap_err(), Error::SignatureLenRange);
    }
}
