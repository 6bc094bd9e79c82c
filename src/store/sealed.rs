//! Sealing: AES-256-GCM over secret values at rest, bound to the row they belong to.
//!
//! A sealed blob is `version(1) || nonce(12) || ciphertext || tag(16)`. The associated
//! data names the purpose and the owner (an object's `CKA_UNIQUE_ID`, a PIN record's
//! workspace), so a sealed value moved to another row does not open.

use zeroize::Zeroizing;

use crate::mechanism::primitives;

use crate::error::{Error, Result};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Bytes a sealed blob adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A 256-bit key that seals values at rest; zeroized on drop.
pub type SealingKey = Zeroizing<[u8; 32]>;

/// Seals `plaintext` under `key`, bound to `context`.
pub fn seal(key: &[u8; 32], context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::mechanism::primitives::fill_random(&mut nonce)?;
    let ct = primitives::aes256_gcm_seal(key, &nonce, &associated_data(context), plaintext)?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a blob made by [`seal`] with the same key and context.
pub fn open(key: &[u8; 32], context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if blob.len() < OVERHEAD || blob[0] != FORMAT_V1 {
        return Err(Error::Integrity("sealed value is malformed"));
    }
    let (nonce, ct) = blob[1..].split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Integrity("sealed value is malformed"))?;
    primitives::aes256_gcm_open(key, nonce, &associated_data(context), ct)
        .map_err(|_| Error::Integrity("sealed value does not open under this key"))
}

/// HMAC-SHA256 of `data` under `key`, bound to `purpose`: authenticates rows whose fields
/// must stay readable (a master key row's state) but not be edited in the file.
pub fn mac(key: &[u8; 32], purpose: &[u8], data: &[u8]) -> Result<[u8; 32]> {
    let len = (purpose.len() as u64).to_be_bytes();
    let mac = primitives::hmac_sha256(key, &[b"collabvault-mac-v1:", &len, purpose, data])?;
    Ok(*mac)
}

/// Compares two MACs in constant time.
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn associated_data(context: &[u8]) -> Vec<u8> {
    let mut aad = b"collabvault-sealed-v1:".to_vec();
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_context() {
        let blob = seal(&KEY, b"obj-1", b"secret").expect("seal");
        assert_eq!(open(&KEY, b"obj-1", &blob).expect("open").as_slice(), b"secret");
        assert_eq!(blob.len(), OVERHEAD + 6);
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let blob = seal(&KEY, b"obj-1", b"secret").expect("seal");
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(open(&KEY, b"obj-1", &bad).is_err(), "flip at byte {i} opened");
        }
    }

    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let blob = seal(&KEY, b"obj-1", b"secret").expect("seal");
        assert!(open(&KEY, b"obj-2", &blob).is_err());
        assert!(open(&[8; 32], b"obj-1", &blob).is_err());
    }

    #[test]
    fn truncated_blobs_are_refused() {
        assert!(open(&KEY, b"x", &[FORMAT_V1; 5]).is_err());
    }
}
