//! PIN records: a salted Argon2id verifier, and the token's storage key (or, under a
//! delegated root, the root-sealed storage key) wrapped under a key derived from the same
//! PIN.
//!
//! One Argon2id run per login yields 64 bytes: the first half is the stored verifier, the
//! second half the key-encryption key (KEK), which is never stored. The current record
//! (version 3) names its own KDF cost, so records made under older, weaker parameters
//! still verify and are rewritten under the current ones at the next successful login:
//!
//! ```text
//! 3 || kind(1) || memory KiB(u32 BE) || passes(u32 BE) || salt(16) || verifier(32)
//!   || sealed(KEK, "pin:<workspace>:<owner>", payload)
//! ```
//!
//! `kind` 1: the payload is the storage key (software root: the PIN is the only secret).
//! `kind` 2: the payload is the storage key sealed by the delegated root, so opening it
//! needs both this PIN and the root key in the HSM.
//!
//! Older records, accepted for migration only: version 1 `1 || salt || verifier ||
//! sealed storage key` and version 2 `2 || salt || verifier` (authenticates only), both
//! at 19 MiB and two passes.

use zeroize::Zeroizing;

use crate::error::{Error, Internal, Result};
use crate::store::sealed::{self, SealingKey};
use crate::store::PinOwner;

const RECORD_V1: u8 = 1;
const RECORD_VERIFIER_ONLY: u8 = 2;
const RECORD_V3: u8 = 3;
const KIND_STORAGE_KEY: u8 = 1;
const KIND_ROOT_SEALED: u8 = 2;
const SALT_LEN: usize = 16;
const VERIFIER_LEN: usize = 32;
const V3_HEADER: usize = 1 + 1 + 4 + 4 + SALT_LEN + VERIFIER_LEN;

/// Shortest PIN the token accepts (reported in `CK_TOKEN_INFO`). With the software root a
/// copy of the store file can be attacked offline, so the PIN must carry real entropy.
pub const MIN_PIN_LEN: usize = 8;
/// Longest PIN the token accepts.
pub const MAX_PIN_LEN: usize = 255;

/// The KDF cost of new records: Argon2id, 64 MiB, three passes, one lane (RFC 9106's
/// second recommended option): about five times the work per guess of the old 19 MiB/t=2.
pub const KDF: Kdf = Kdf { memory_kib: 64 * 1024, passes: 3 };
/// What version 1 and 2 records were made with.
const LEGACY_KDF: Kdf = Kdf { memory_kib: 19 * 1024, passes: 2 };
/// Bounds on a record's declared cost: a record edited to ask for more would make every
/// login exhaust memory; one asking for less fails to verify anyway.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_PASSES: u32 = 16;

/// Argon2id parameters of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kdf {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes (time cost).
    pub passes: u32,
}

/// What a record carries besides its verifier.
pub enum Payload<'a> {
    /// The storage key itself (software root).
    StorageKey(&'a [u8; 32]),
    /// The storage key sealed by the delegated root.
    RootSealed(&'a [u8]),
}

/// What a verified record yielded.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// The storage key (version 1, or version 3 kind 1).
    StorageKey(SealingKey),
    /// The root-sealed storage key (version 3 kind 2): the root must still unseal it.
    RootSealed(Zeroizing<Vec<u8>>),
    /// Nothing: a version 2 record only authenticates.
    VerifierOnly,
}

/// A verified record's content, and whether it should be rewritten in the current format.
#[derive(Debug, PartialEq, Eq)]
pub struct Unlocked {
    /// What the record carried.
    pub opened: Opened,
    /// The record is an older version or was made under a weaker KDF than [`KDF`].
    pub outdated: bool,
    /// The record is version 1 or 2: the token predates MACed master key rows.
    pub legacy: bool,
}

/// Checks a PIN's length against the token's range.
pub fn check_len(pin: &[u8]) -> Result<()> {
    if pin.len() < MIN_PIN_LEN || pin.len() > MAX_PIN_LEN {
        log::warn!("PIN refused: its length is outside {MIN_PIN_LEN}..={MAX_PIN_LEN} bytes");
        return Err(Error::PinLenRange);
    }
    Ok(())
}

fn derive(pin: &[u8], salt: &[u8], kdf: Kdf) -> Result<Zeroizing<[u8; 64]>> {
    crate::mechanism::primitives::argon2id::<64>(pin, salt, kdf.memory_kib, kdf.passes)
}

fn context(workspace: &str, owner: PinOwner) -> Vec<u8> {
    format!("pin:{workspace}:{owner:?}").into_bytes()
}

fn kek_of(derived: &[u8; 64]) -> Result<&[u8; 32]> {
    derived[VERIFIER_LEN..].try_into().map_err(|_| Error::Internal(Internal::DerivedLength))
}

/// Makes a current (version 3) record that verifies `pin` and carries `payload`.
pub fn make(workspace: &str, owner: PinOwner, pin: &[u8], payload: Payload<'_>) -> Result<Vec<u8>> {
    make_with(workspace, owner, pin, payload, KDF)
}

fn make_with(workspace: &str, owner: PinOwner, pin: &[u8], payload: Payload<'_>, kdf: Kdf) -> Result<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    crate::mechanism::primitives::fill_random(&mut salt)?;
    let derived = derive(pin, &salt, kdf)?;
    let (kind, inner): (u8, &[u8]) = match payload {
        Payload::StorageKey(key) => (KIND_STORAGE_KEY, key),
        Payload::RootSealed(blob) => (KIND_ROOT_SEALED, blob),
    };
    let mut record = vec![RECORD_V3, kind];
    record.extend_from_slice(&kdf.memory_kib.to_be_bytes());
    record.extend_from_slice(&kdf.passes.to_be_bytes());
    record.extend_from_slice(&salt);
    record.extend_from_slice(&derived[..VERIFIER_LEN]);
    record.extend_from_slice(&sealed::seal(kek_of(&derived)?, &context(workspace, owner), inner)?);
    Ok(record)
}

/// The parts of a record, whatever its version.
struct Parsed<'r> {
    version: u8,
    kind: u8,
    kdf: Kdf,
    salt: &'r [u8],
    verifier: &'r [u8],
    sealed: &'r [u8],
}

fn parse(record: &[u8]) -> Result<Parsed<'_>> {
    let malformed = Error::Integrity("PIN record is malformed");
    let legacy = 1 + SALT_LEN + VERIFIER_LEN;
    match record.first() {
        Some(&RECORD_V1) if record.len() >= legacy + sealed::OVERHEAD => Ok(Parsed {
            version: RECORD_V1,
            kind: KIND_STORAGE_KEY,
            kdf: LEGACY_KDF,
            salt: &record[1..1 + SALT_LEN],
            verifier: &record[1 + SALT_LEN..legacy],
            sealed: &record[legacy..],
        }),
        Some(&RECORD_VERIFIER_ONLY) if record.len() == legacy => Ok(Parsed {
            version: RECORD_VERIFIER_ONLY,
            kind: 0,
            kdf: LEGACY_KDF,
            salt: &record[1..1 + SALT_LEN],
            verifier: &record[1 + SALT_LEN..legacy],
            sealed: &[],
        }),
        Some(&RECORD_V3) if record.len() >= V3_HEADER + sealed::OVERHEAD => {
            let word = |at: usize| record[at..at + 4].try_into().map(u32::from_be_bytes);
            let kdf = Kdf {
                memory_kib: word(2).map_err(|_| Error::Integrity("PIN record is malformed"))?,
                passes: word(6).map_err(|_| Error::Integrity("PIN record is malformed"))?,
            };
            let kind = record[1];
            if !matches!(kind, KIND_STORAGE_KEY | KIND_ROOT_SEALED)
                || kdf.memory_kib > MAX_MEMORY_KIB
                || kdf.passes == 0
                || kdf.passes > MAX_PASSES
            {
                return Err(malformed);
            }
            Ok(Parsed {
                version: RECORD_V3,
                kind,
                kdf,
                salt: &record[10..10 + SALT_LEN],
                verifier: &record[10 + SALT_LEN..V3_HEADER],
                sealed: &record[V3_HEADER..],
            })
        }
        _ => Err(malformed),
    }
}

/// Checks `pin` against a record: what it carries when it verifies, `PinIncorrect` when it
/// does not, `Integrity` when the record itself is damaged.
pub fn unlock(workspace: &str, owner: PinOwner, pin: &[u8], record: &[u8]) -> Result<Unlocked> {
    let p = parse(record)?;
    let derived = derive(pin, p.salt, p.kdf)?;
    if !constant_time_eq(&derived[..VERIFIER_LEN], p.verifier) {
        return Err(Error::PinIncorrect);
    }
    let outdated = p.version != RECORD_V3 || p.kdf.memory_kib < KDF.memory_kib || p.kdf.passes < KDF.passes;
    let legacy = p.version != RECORD_V3;
    if p.version == RECORD_VERIFIER_ONLY {
        return Ok(Unlocked { opened: Opened::VerifierOnly, outdated, legacy });
    }
    let inner = sealed::open(kek_of(&derived)?, &context(workspace, owner), p.sealed)?;
    let opened = match p.kind {
        KIND_STORAGE_KEY => {
            let key: [u8; 32] = inner.as_slice().try_into().map_err(|_| Error::Integrity("storage key length"))?;
            Opened::StorageKey(Zeroizing::new(key))
        }
        _ => Opened::RootSealed(inner),
    };
    Ok(Unlocked { opened, outdated, legacy })
}

/// Whether `record` is a legacy verifier-only record (which needs the token's root-only
/// copy of the storage key until it is upgraded).
pub fn is_verifier_only(record: &[u8]) -> bool {
    record.first() == Some(&RECORD_VERIFIER_ONLY)
}

/// Whether `record` is a version 1 or 2 record (made before records named their KDF).
pub fn is_legacy(record: &[u8]) -> bool {
    matches!(record.first(), Some(&RECORD_V1) | Some(&RECORD_VERIFIER_ONLY))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9; 32];
    const PIN: &[u8] = b"12345678";
    // Unit tests run the KDF at its cheapest sensible cost; the format is what they check.
    const CHEAP: Kdf = Kdf { memory_kib: 1024, passes: 1 };

    fn make_cheap(ws: &str, owner: PinOwner, pin: &[u8], payload: Payload<'_>) -> Vec<u8> {
        make_with(ws, owner, pin, payload, CHEAP).expect("make")
    }

    /// A version 1 record as older releases wrote it.
    fn legacy_v1(ws: &str, owner: PinOwner, pin: &[u8], key: &[u8; 32]) -> Vec<u8> {
        let salt = [3u8; SALT_LEN];
        let derived = derive(pin, &salt, LEGACY_KDF).expect("derive");
        let mut rec = vec![RECORD_V1];
        rec.extend_from_slice(&salt);
        rec.extend_from_slice(&derived[..VERIFIER_LEN]);
        rec.extend_from_slice(&sealed::seal(kek_of(&derived).expect("kek"), &context(ws, owner), key).expect("seal"));
        rec
    }

    #[test]
    fn the_right_pin_yields_the_storage_key() {
        let rec = make_cheap("ws", PinOwner::User, PIN, Payload::StorageKey(&KEY));
        let got = unlock("ws", PinOwner::User, PIN, &rec).expect("unlock");
        assert_eq!(got.opened, Opened::StorageKey(Zeroizing::new(KEY)));
        assert!(got.outdated, "a record under less than the current KDF is outdated");
    }

    #[test]
    fn new_records_name_the_current_kdf_and_are_not_outdated() {
        let rec = make("ws", PinOwner::User, PIN, Payload::RootSealed(b"blob")).expect("make");
        let p = parse(&rec).expect("parse");
        assert_eq!(p.kdf, KDF);
        const { assert!(KDF.memory_kib >= 64 * 1024 && KDF.passes >= 3) };
        let got = unlock("ws", PinOwner::User, PIN, &rec).expect("unlock");
        let opened = Opened::RootSealed(Zeroizing::new(b"blob".to_vec()));
        assert_eq!(got, Unlocked { opened, outdated: false, legacy: false });
    }

    #[test]
    fn a_legacy_record_still_verifies_and_is_outdated() {
        let rec = legacy_v1("ws", PinOwner::So, PIN, &KEY);
        let got = unlock("ws", PinOwner::So, PIN, &rec).expect("unlock");
        assert_eq!(got, Unlocked { opened: Opened::StorageKey(Zeroizing::new(KEY)), outdated: true, legacy: true });
        assert_eq!(unlock("ws", PinOwner::So, b"87654321", &rec).unwrap_err(), Error::PinIncorrect);
    }

    #[test]
    fn a_wrong_pin_is_incorrect_not_a_wrong_key() {
        let rec = make_cheap("ws", PinOwner::User, PIN, Payload::StorageKey(&KEY));
        assert_eq!(unlock("ws", PinOwner::User, b"12345679", &rec).unwrap_err(), Error::PinIncorrect);
    }

    #[test]
    fn a_record_moved_to_another_owner_does_not_unlock() {
        let rec = make_cheap("ws", PinOwner::User, PIN, Payload::StorageKey(&KEY));
        assert!(matches!(unlock("ws", PinOwner::So, PIN, &rec), Err(Error::Integrity(_))));
        assert!(matches!(unlock("other", PinOwner::User, PIN, &rec), Err(Error::Integrity(_))));
    }

    #[test]
    fn a_record_asking_for_an_absurd_cost_is_refused_before_the_kdf_runs() {
        let mut rec = make_cheap("ws", PinOwner::User, PIN, Payload::StorageKey(&KEY));
        rec[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(unlock("ws", PinOwner::User, PIN, &rec), Err(Error::Integrity(_))));
    }

    #[test]
    fn records_never_contain_the_pin_or_key() {
        let rec = make_cheap("ws", PinOwner::So, b"my-so-pin", Payload::StorageKey(&KEY));
        assert!(!rec.windows(9).any(|w| w == b"my-so-pin"));
        assert!(!rec.windows(32).any(|w| w == KEY));
    }

    #[test]
    fn pin_length_is_bounded() {
        assert_eq!(check_len(b"1234567"), Err(Error::PinLenRange));
        assert!(check_len(b"12345678").is_ok());
        assert_eq!(check_len(&[b'1'; 256]), Err(Error::PinLenRange));
    }
}
