//! Custodians: enrolment (the public half of a passphrase-derived X-Wing key, which is
//! all the module needs to seal a share to someone who is not present), its encoding in
//! `CKA_CV_CUSTODIANS`, and opening a custodian's share with their passphrase.
//!
//! A stored share is sealed twice: to the custodian's key (so only their passphrase opens
//! it) and then by the HSM root key (so a copy of the store alone gives nothing to guess
//! passphrases against).

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::mechanism::sealed_box;
use crate::root::Sealer;
use crate::store::quorum::Custodian;

/// The Argon2id cost `cvault` enrols custodians with: the PIN records' (64 MiB, 3 passes).
pub const KDF_MEMORY_KIB: u32 = 64 * 1024;
/// See [`KDF_MEMORY_KIB`].
pub const KDF_PASSES: u32 = 3;
/// Bounds on an enrolment's declared cost, as for PIN records.
const MIN_MEMORY_KIB: u32 = 8;
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_PASSES: u32 = 16;
/// Longest custodian name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
const SALT_LEN: usize = 16;

/// What a custodian gives at enrolment: no secret, only what seals a share to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// Their name, the `C_LoginUser` username.
    pub name: String,
    /// Argon2id salt.
    pub salt: Vec<u8>,
    /// Argon2id memory, KiB.
    pub memory_kib: u32,
    /// Argon2id passes.
    pub passes: u32,
    /// The X-Wing public key of the passphrase-derived seed.
    pub public_key: Vec<u8>,
}

/// Enrols `name` with `passphrase` at the given Argon2id cost (a fresh salt).
pub fn enrol(name: &str, passphrase: &[u8], memory_kib: u32, passes: u32) -> Result<Enrolment> {
    let mut salt = vec![0u8; SALT_LEN];
    crate::mechanism::primitives::fill_random(&mut salt)?;
    let seed = sealed_box::seed_from_passphrase(passphrase, &salt, memory_kib, passes)?;
    let e = Enrolment { name: name.to_string(), salt, memory_kib, passes, public_key: sealed_box::public_key(&seed) };
    check(&e)?;
    Ok(e)
}

fn check(e: &Enrolment) -> Result<()> {
    let bad = |why| Err(Error::ArgumentsBad(why));
    if e.name.is_empty() || e.name.len() > MAX_NAME_LEN || e.name.contains(':') || e.name.chars().any(char::is_control)
    {
        return bad("a custodian name is 1 to 64 bytes with no ':' or control characters");
    }
    if e.salt.len() < 8 || e.salt.len() > 64 {
        return bad("a custodian's salt is 8 to 64 bytes");
    }
    if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&e.memory_kib) || !(1..=MAX_PASSES).contains(&e.passes) {
        return bad("a custodian's Argon2id cost is out of bounds");
    }
    if e.public_key.len() != sealed_box::PUBLIC_KEY_LEN {
        return bad("a custodian's public key is not an X-Wing public key");
    }
    Ok(())
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| Error::ArgumentsBad("an enrolment field is too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The `CKA_CV_CUSTODIANS` value of `custodians` (format in `include/collabvault.h`).
pub fn encode(custodians: &[Enrolment]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in custodians {
        put(&mut out, c.name.as_bytes())?;
        put(&mut out, &c.salt)?;
        out.extend_from_slice(&c.memory_kib.to_be_bytes());
        out.extend_from_slice(&c.passes.to_be_bytes());
        put(&mut out, &c.public_key)?;
    }
    Ok(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        self.take(usize::from(len))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn enrolment(&mut self) -> Option<Enrolment> {
        let name = String::from_utf8(self.field()?.to_vec()).ok()?;
        let salt = self.field()?.to_vec();
        let memory_kib = self.u32()?;
        let passes = self.u32()?;
        let public_key = self.field()?.to_vec();
        Some(Enrolment { name, salt, memory_kib, passes, public_key })
    }
}

/// Decodes and checks a `CKA_CV_CUSTODIANS` value: at least one, at most 255, distinct
/// names, every field within bounds.
pub fn decode(bytes: &[u8]) -> Result<Vec<Enrolment>> {
    let invalid = Error::AttributeValueInvalid(crate::vendor::CKA_CV_CUSTODIANS);
    let mut reader = Reader(bytes);
    let mut out: Vec<Enrolment> = Vec::new();
    while !reader.0.is_empty() {
        let e = reader.enrolment().ok_or_else(|| invalid.clone())?;
        check(&e).map_err(|e| {
            log::warn!("CKA_CV_CUSTODIANS: {e}");
            invalid.clone()
        })?;
        if out.iter().any(|o| o.name == e.name) {
            log::warn!("CKA_CV_CUSTODIANS names {:?} twice", e.name);
            return Err(invalid);
        }
        out.push(e);
    }
    if out.is_empty() || out.len() > crate::mechanism::shamir::MAX_SHARES {
        return Err(invalid);
    }
    Ok(out)
}

/// The context a share is sealed under: its workspace, KEK generation, custodian and index.
pub fn share_context(workspace: &str, generation: u32, name: &str, index: u8) -> Vec<u8> {
    format!("kek-share:{workspace}:g{generation}:{name}:{index}").into_bytes()
}

/// The stored form of custodian `e`'s share `value` at `index`.
pub fn seal_share(
    hsm: &dyn Sealer,
    workspace: &str,
    generation: u32,
    e: &Enrolment,
    index: u8,
    value: &[u8],
) -> Result<Custodian> {
    let context = share_context(workspace, generation, &e.name, index);
    let boxed = sealed_box::seal(&e.public_key, &context, value)?;
    Ok(Custodian {
        name: e.name.clone(),
        index,
        salt: e.salt.clone(),
        memory_kib: e.memory_kib,
        passes: e.passes,
        public_key: e.public_key.clone(),
        sealed_share: hsm.seal(&context, &boxed)?,
        failures: 0,
    })
}

/// Custodian `c`'s share, opened with `passphrase`; a wrong passphrase is
/// [`Error::PinIncorrect`].
pub fn open_share(
    hsm: &dyn Sealer,
    workspace: &str,
    generation: u32,
    c: &Custodian,
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let context = share_context(workspace, generation, &c.name, c.index);
    let boxed = hsm.unseal(&context, &c.sealed_share)?;
    let seed = sealed_box::seed_from_passphrase(passphrase, &c.salt, c.memory_kib, c.passes)?;
    sealed_box::open(&seed, &context, &boxed).map_err(|_| Error::PinIncorrect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Enrolment {
        enrol("alice", b"alice passphrase", 64, 1).unwrap()
    }

    #[test]
    fn enrolments_round_trip_through_their_encoding() {
        let list = vec![alice(), enrol("bob", b"bob passphrase", 64, 1).unwrap()];
        assert_eq!(decode(&encode(&list).unwrap()).unwrap(), list);
    }

    #[test]
    fn malformed_or_duplicate_enrolments_are_refused() {
        let a = alice();
        let twice = encode(&[a.clone(), a.clone()]).unwrap();
        assert!(decode(&twice).is_err());
        let bytes = encode(std::slice::from_ref(&a)).unwrap();
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
        let mut colon = a.clone();
        colon.name = "al:ice".into();
        assert!(decode(&encode(&[colon]).unwrap()).is_err());
        let mut short_key = a;
        short_key.public_key.truncate(10);
        assert!(decode(&encode(&[short_key]).unwrap()).is_err());
    }
}
