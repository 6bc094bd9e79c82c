//! `CKM_SHA256` (FIPS 180-4).

use cryptoki_sys::*;
use sha2::{Digest, Sha256};

use super::{Digester, MechEntry};

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[MechEntry { ty: CKM_SHA256, min_key: 0, max_key: 0, flags: CKF_DIGEST }];

struct Sha256Digest(Sha256);

impl Digester for Sha256Digest {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn output_len(&self) -> usize {
        32
    }

    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).finalize().to_vec()
    }
}

/// A SHA-256 digest operation.
pub fn sha256() -> Box<dyn Digester> {
    Box::new(Sha256Digest(Sha256::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): "abc" and the 448-bit message.
    #[test]
    fn nist_examples_match_in_one_or_many_parts() {
        let mut d = sha256();
        d.update(b"abc");
        assert_eq!(hex::encode(d.finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let mut d = sha256();
        for part in ["abcdbcdecdefdefgefghfghighijhijk", "ijkljklmklmnlmnomnopnopq"] {
            d.update(part.as_bytes());
        }
        assert_eq!(hex::encode(d.finish()), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
}
