//! A sealed box to an X-Wing public key: how a custodian's share is kept. The custodian's
//! key pair is derived from their passphrase (Argon2id into the 32-byte X-Wing seed), so
//! a share can be sealed to a custodian who is not present (enrolment gives only the
//! public key) and opened only with the passphrase.
//!
//! Box: `X-Wing ciphertext (1,120) || nonce (12) || AES-256-GCM(value) || tag (16)`, the
//! AES key HMAC-SHA256 of the X-Wing shared secret under a fixed label, and the caller's
//! context as associated data (which binds a box to its workspace, custodian and KEK
//! generation).

use x_wing::{Decapsulate, Encapsulate, EncapsulationKey};
use zeroize::Zeroizing;

use super::primitives;
use crate::error::{Error, Result};

const KEY_LABEL: &[u8] = b"CollabVault sealed box v1: AES-256-GCM key";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Length of an X-Wing public key.
pub const PUBLIC_KEY_LEN: usize = x_wing::ENCAPSULATION_KEY_SIZE;

/// An X-Wing seed derived from a passphrase; zeroized on drop.
pub type Seed = Zeroizing<[u8; 32]>;

/// Argon2id of `passphrase` with `salt` (`memory_kib`, `passes`) as an X-Wing seed.
pub fn seed_from_passphrase(passphrase: &[u8], salt: &[u8], memory_kib: u32, passes: u32) -> Result<Seed> {
    primitives::argon2id::<32>(passphrase, salt, memory_kib, passes)
}

/// The X-Wing public key of `seed`.
pub fn public_key(seed: &Seed) -> Vec<u8> {
    use x_wing::{Decapsulator as _, KeyExport as _};
    x_wing::DecapsulationKey::from(**seed).encapsulation_key().to_bytes().to_vec()
}

fn box_key(shared: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    primitives::hmac_sha256(shared, &[KEY_LABEL])
}

/// Seals `value` to `public_key`, bound to `context`.
pub fn seal(public_key: &[u8], context: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    let ek = EncapsulationKey::try_from(public_key).map_err(|_| Error::Integrity("not an X-Wing public key"))?;
    let (ct, shared) = ek.encapsulate();
    let key = box_key(shared.as_slice())?;
    let mut nonce = [0u8; NONCE_LEN];
    primitives::fill_random(&mut nonce)?;
    let sealed = primitives::aes256_gcm_seal(&key, &nonce, context, value)?;
    Ok([ct.as_slice(), &nonce, &sealed].concat())
}

/// Opens a box sealed to the public key of `seed` with the same context; a wrong seed, a
/// wrong context or a changed byte all fail alike.
pub fn open(seed: &Seed, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let ct_len = x_wing::CIPHERTEXT_SIZE;
    if sealed.len() < ct_len + NONCE_LEN + TAG_LEN {
        return Err(Error::Integrity("a sealed box is truncated"));
    }
    let (ct, rest) = sealed.split_at(ct_len);
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let ct = x_wing::Ciphertext::try_from(ct).map_err(|_| Error::Integrity("a sealed box is malformed"))?;
    let shared = x_wing::DecapsulationKey::from(**seed).decapsulate(&ct);
    let key = box_key(shared.as_slice())?;
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Integrity("a sealed box is malformed"))?;
    primitives::aes256_gcm_open(&key, nonce, context, body).map_err(|_| Error::Integrity("a sealed box does not open"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(pass: &[u8]) -> Seed {
        seed_from_passphrase(pass, b"salt-salt-salt-1", 64, 1).unwrap()
    }

    #[test]
    fn a_box_opens_with_the_passphrase_and_context_only() {
        let alice = seed(b"alice's passphrase");
        let sealed = seal(&public_key(&alice), b"ws:alice:1", b"share bytes").unwrap();
        assert_eq!(open(&alice, b"ws:alice:1", &sealed).unwrap().as_slice(), b"share bytes");
        assert!(open(&seed(b"wrong passphrase"), b"ws:alice:1", &sealed).is_err());
        assert!(open(&alice, b"ws:bob:1", &sealed).is_err());
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_refused() {
        let alice = seed(b"pw");
        let sealed = seal(&public_key(&alice), b"c", b"v").unwrap();
        for i in (0..sealed.len()).step_by(97).chain([sealed.len() - 1]) {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert!(open(&alice, b"c", &bad).is_err(), "flip at {i} opened");
        }
        assert!(open(&alice, b"c", &sealed[..sealed.len() - 1]).is_err());
        assert!(open(&alice, b"c", &sealed[..10]).is_err());
    }

    #[test]
    fn the_seed_follows_passphrase_and_salt() {
        let a = seed_from_passphrase(b"pw", b"salt-salt-salt-1", 64, 1).unwrap();
        let b = seed_from_passphrase(b"pw", b"salt-salt-salt-2", 64, 1).unwrap();
        assert_ne!(*a, *b);
        assert_eq!(public_key(&a).len(), PUBLIC_KEY_LEN);
    }
}
