//! PIN records: a salted Argon2id verifier, plus (with the software root only) the
//! token's storage key wrapped under a key derived from the same PIN.
//!
//! One Argon2id run per login yields 64 bytes: the first half is the stored verifier, the
//! second half the key-encryption key, which is never stored. A record is
//! `version(1) || salt(16) || verifier(32) [|| sealed storage key]`: version 1 carries the
//! storage key (software root); version 2 only authenticates, because with a delegated
//! root the storage key is sealed by the HSM and a PIN alone must not open it.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::sealed::{self, SealingKey};
use crate::store::PinOwner;

const RECORD_V1: u8 = 1;
const RECORD_VERIFIER_ONLY: u8 = 2;
const SALT_LEN: usize = 16;
const VERIFIER_LEN: usize = 32;

/// Shortest PIN the token accepts (reported in `CK_TOKEN_INFO`).
pub const MIN_PIN_LEN: usize = 4;
/// Longest PIN the token accepts.
pub const MAX_PIN_LEN: usize = 255;

// OWASP's Argon2id baseline: 19 MiB, two passes, one lane.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;

/// Checks a PIN's length against the token's range.
pub fn check_len(pin: &[u8]) -> Result<()> {
    if pin.len() < MIN_PIN_LEN || pin.len() > MAX_PIN_LEN {
        return Err(Error::PinLenRange);
    }
    Ok(())
}

fn derive(pin: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 64]>> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(64))
        .map_err(|e| Error::General(format!("argon2 parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 64]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin, salt, out.as_mut())
        .map_err(|e| Error::General(format!("argon2: {e}")))?;
    Ok(out)
}

fn context(workspace: &str, owner: PinOwner) -> Vec<u8> {
    format!("pin:{workspace}:{owner:?}").into_bytes()
}

/// Makes a record that verifies `pin` and, given one, yields `storage_key`.
pub fn make(workspace: &str, owner: PinOwner, pin: &[u8], storage_key: Option<&[u8; 32]>) -> Result<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    crate::rng::fill(&mut salt)?;
    let derived = derive(pin, &salt)?;
    let (verifier, kek) = derived.split_at(VERIFIER_LEN);
    let kek: &[u8; 32] = kek.try_into().map_err(|_| Error::General("kek length".into()))?;
    let mut record = vec![if storage_key.is_some() { RECORD_V1 } else { RECORD_VERIFIER_ONLY }];
    record.extend_from_slice(&salt);
    record.extend_from_slice(verifier);
    if let Some(key) = storage_key {
        record.extend_from_slice(&sealed::seal(kek, &context(workspace, owner), key)?);
    }
    Ok(record)
}

/// Checks `pin` against a record: the storage key it carries (or `None` for a
/// verifier-only record) when it verifies, `PinIncorrect` when it does not, `Integrity`
/// when the record itself is damaged.
pub fn unlock(workspace: &str, owner: PinOwner, pin: &[u8], record: &[u8]) -> Result<Option<SealingKey>> {
    let header = 1 + SALT_LEN + VERIFIER_LEN;
    let well_formed = match record.first() {
        Some(&RECORD_V1) => record.len() >= header + sealed::OVERHEAD,
        Some(&RECORD_VERIFIER_ONLY) => record.len() == header,
        _ => false,
    };
    if !well_formed {
        return Err(Error::Integrity("PIN record is malformed"));
    }
    let salt = &record[1..1 + SALT_LEN];
    let stored = &record[1 + SALT_LEN..header];
    let derived = derive(pin, salt)?;
    let (verifier, kek) = derived.split_at(VERIFIER_LEN);
    if !constant_time_eq(verifier, stored) {
        return Err(Error::PinIncorrect);
    }
    if record[0] == RECORD_VERIFIER_ONLY {
        return Ok(None);
    }
    let kek: &[u8; 32] = kek.try_into().map_err(|_| Error::General("kek length".into()))?;
    let key = sealed::open(kek, &context(workspace, owner), &record[header..])?;
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| Error::Integrity("storage key length"))?;
    Ok(Some(Zeroizing::new(key)))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9; 32];

    #[test]
    fn the_right_pin_yields_the_storage_key() {
        let rec = make("ws", PinOwner::User, b"1234", Some(&KEY)).expect("make");
        assert_eq!(*unlock("ws", PinOwner::User, b"1234", &rec).expect("unlock").expect("key"), KEY);
    }

    #[test]
    fn a_wrong_pin_is_incorrect_not_a_wrong_key() {
        let rec = make("ws", PinOwner::User, b"1234", Some(&KEY)).expect("make");
        assert_eq!(unlock("ws", PinOwner::User, b"1235", &rec).unwrap_err(), Error::PinIncorrect);
    }

    #[test]
    fn a_record_moved_to_another_owner_does_not_unlock() {
        let rec = make("ws", PinOwner::User, b"1234", Some(&KEY)).expect("make");
        assert!(matches!(unlock("ws", PinOwner::So, b"1234", &rec), Err(Error::Integrity(_))));
        assert!(matches!(unlock("other", PinOwner::User, b"1234", &rec), Err(Error::Integrity(_))));
    }

    #[test]
    fn records_never_contain_the_pin_or_key() {
        let rec = make("ws", PinOwner::So, b"my-so-pin", Some(&KEY)).expect("make");
        assert!(!rec.windows(9).any(|w| w == b"my-so-pin"));
        assert!(!rec.windows(32).any(|w| w == KEY));
    }

    #[test]
    fn a_verifier_only_record_authenticates_without_yielding_a_key() {
        let rec = make("ws", PinOwner::User, b"1234", None).expect("make");
        assert_eq!(unlock("ws", PinOwner::User, b"1234", &rec).expect("unlock"), None);
        assert_eq!(unlock("ws", PinOwner::User, b"4321", &rec).unwrap_err(), Error::PinIncorrect);
    }

    #[test]
    fn pin_length_is_bounded() {
        assert_eq!(check_len(b"123"), Err(Error::PinLenRange));
        assert!(check_len(b"1234").is_ok());
        assert_eq!(check_len(&[b'1'; 256]), Err(Error::PinLenRange));
    }
}
