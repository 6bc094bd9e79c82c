//! Sealing and opening a recovery kit: the kit key, the sealed WMK versions, the MAC.
//!
//! The kit key comes from one combined derivation, so a wrong passphrase and a wrong
//! second factor fail at the same step with the same message:
//!
//! ```text
//! P   = Argon2id(passphrase, salt, memory, passes)            (32 bytes; parameters in the header)
//! F   = HMAC-SHA256 on the factor token (CKM_SHA256_HMAC) of factor_message(kit id, challenge)
//! K   = HKDF-SHA256(ikm = P || F, salt = kit id, info = KEY_INFO)   (64 bytes)
//! enc = K[..32] seals the KEYS section (AES-256-GCM, associated data keys_aad(workspace, kit id))
//! mac = K[32..] computes the MAC section (HMAC-SHA256 over the file before it)
//! ```
//!
//! The WMK versions are never in the clear in the file: the module seals them under
//! `enc` itself (`C_WrapKey` with `CKM_CV_EXPORT_KIT`, [`seal_keys`]); `cvault`, which
//! holds the kit key anyway, opens the section once to list the versions in the header
//! and to verify the kit before writing it. [`open`] is what a drill (and a restoration)
//! calls: every key comes back in a [`Zeroizing`] buffer, its check value recomputed.

use zeroize::Zeroizing;

use super::format::{self, Header, Parsed, KIT_ID_LEN};
use crate::error::{Error, Result};
use crate::mechanism::primitives;
use crate::store::Lifecycle;

/// HKDF info of the kit key.
const KEY_INFO: &[u8] = b"CollabVault recovery kit v1: key";
/// Prefix of the KEYS section's associated data.
const KEYS_AD: &[u8] = b"CollabVault recovery kit v1: keys";
/// Prefix of the message the second factor's token MACs.
const FACTOR_LABEL: &[u8] = b"CollabVault recovery kit v1: factor";
const NONCE_LEN: usize = 12;
const ENTRY_LEN: usize = 4 + 1 + 8 + 3 + 32;
/// The refusal for a wrong passphrase or second factor: the same whichever is wrong.
pub const WRONG_SECRET: &str =
    "the passphrase or the second factor is wrong (or the kit was altered and its checksums recomputed)";

/// The weakest Argon2id parameters an export accepts (OWASP's 19 MiB, 2 passes), and the
/// costliest an open accepts (so a hostile kit cannot make a drill exhaust memory).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// See [`MIN_MEMORY_KIB`].
pub const MIN_PASSES: u32 = 2;
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
const MAX_PASSES: u32 = 64;

/// The second factor as [`open`] asks it: the factor token's response (HMAC-SHA256) to
/// a message ([`factor_message`]).
pub type Factor<'a> = &'a mut dyn FnMut(&[u8]) -> Result<Zeroizing<[u8; 32]>>;

/// One WMK version as a kit carries it.
pub struct KitVersion {
    /// The version number.
    pub version: u32,
    /// Its state when the kit was made.
    pub state: Lifecycle,
    /// Unix seconds it was made.
    pub created: i64,
    /// Its AES key check value (`CKA_CHECK_VALUE`).
    pub kcv: [u8; 3],
    /// The key; zeroized on drop.
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for KitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KitVersion(v{}, {:?}, kcv {})", self.version, self.state, hex::encode(self.kcv))
    }
}

/// What an opened kit holds.
#[derive(Debug)]
pub struct KitContents {
    /// The public header.
    pub header: Header,
    /// The WMK versions, oldest first.
    pub versions: Vec<KitVersion>,
}

/// The two halves of the kit key; zeroized on drop.
pub struct KitKey {
    /// Seals the KEYS section.
    pub enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

/// The message the factor token MACs for a kit: bound to the kit id, so one response
/// opens one kit only.
pub fn factor_message(kit_id: &[u8; KIT_ID_LEN], challenge: &[u8]) -> Vec<u8> {
    [FACTOR_LABEL, kit_id.as_slice(), challenge].concat()
}

/// The associated data the KEYS section is sealed with.
pub fn keys_aad(workspace: &str, kit_id: &[u8]) -> Vec<u8> {
    let mut ad = KEYS_AD.to_vec();
    ad.extend_from_slice(&format::FORMAT_VERSION.to_be_bytes());
    ad.extend_from_slice(&(workspace.len() as u64).to_be_bytes());
    ad.extend_from_slice(workspace.as_bytes());
    ad.extend_from_slice(kit_id);
    ad
}

fn check_params(h: &Header, exporting: bool) -> Result<()> {
    let (m, p) = (h.kdf.memory_kib, h.kdf.passes);
    let too_weak = m < MIN_MEMORY_KIB || p < MIN_PASSES;
    if (exporting && too_weak) || m > MAX_MEMORY_KIB || p > MAX_PASSES || m == 0 || p == 0 {
        return Err(Error::Kit(format!("Argon2id parameters out of range ({m} KiB, {p} passes)")));
    }
    Ok(())
}

/// The kit key of `header`'s kit from the passphrase and the factor's response.
pub fn derive_key(header: &Header, passphrase: &[u8], factor: &[u8; 32], exporting: bool) -> Result<KitKey> {
    check_params(header, exporting)?;
    let salt = hex::decode(&header.kdf.salt).map_err(|_| Error::Kit("the header's KDF salt is not hex".into()))?;
    let p = primitives::argon2id::<32>(passphrase, &salt, header.kdf.memory_kib, header.kdf.passes)?;
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(p.as_ref());
    ikm[32..].copy_from_slice(factor);
    let okm = primitives::hkdf_sha256::<64>(ikm.as_ref(), &header.kit_id_bytes()?, KEY_INFO)?;
    let (mut enc, mut mac) = (Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
    enc.copy_from_slice(&okm[..32]);
    mac.copy_from_slice(&okm[32..]);
    Ok(KitKey { enc, mac })
}

/// The plaintext of a KEYS section: `count (u16) || entries`, each `version (u32) ||
/// state (u8) || created (i64) || kcv (3) || key (32)`, all big-endian.
fn encode_entries(entries: &[KitVersion]) -> Result<Zeroizing<Vec<u8>>> {
    let count = u16::try_from(entries.len()).map_err(|_| Error::Kit("too many versions for one kit".into()))?;
    let mut out = Zeroizing::new(Vec::with_capacity(2 + entries.len() * ENTRY_LEN));
    out.extend_from_slice(&count.to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.version.to_be_bytes());
        out.push(u8::try_from(e.state.code()).unwrap_or(0));
        out.extend_from_slice(&e.created.to_be_bytes());
        out.extend_from_slice(&e.kcv);
        out.extend_from_slice(e.key.as_ref());
    }
    Ok(out)
}

fn decode_entries(plain: &[u8]) -> Result<Vec<KitVersion>> {
    let malformed = || Error::Kit("the keys section is malformed".into());
    let count =
        usize::from(u16::from_be_bytes(plain.get(..2).ok_or_else(malformed)?.try_into().map_err(|_| malformed())?));
    if plain.len() != 2 + count * ENTRY_LEN {
        return Err(malformed());
    }
    let mut out = Vec::with_capacity(count);
    for e in plain[2..].chunks_exact(ENTRY_LEN) {
        let version = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let state = Lifecycle::from_code(i64::from(e[4])).ok_or_else(malformed)?;
        let created = i64::from_be_bytes(e[5..13].try_into().map_err(|_| malformed())?);
        let kcv = [e[13], e[14], e[15]];
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&e[16..48]);
        out.push(KitVersion { version, state, created, kcv, key });
    }
    Ok(out)
}

/// The KEYS section for `entries` under `enc` (what the module's `CKM_CV_EXPORT_KIT`
/// returns): `nonce || AES-256-GCM(entries) || tag`.
pub fn seal_keys(enc: &[u8; 32], workspace: &str, kit_id: &[u8], entries: &[KitVersion]) -> Result<Vec<u8>> {
    let plain = encode_entries(entries)?;
    let mut nonce = [0u8; NONCE_LEN];
    primitives::fill_random(&mut nonce)?;
    let sealed = primitives::aes256_gcm_seal(enc, &nonce, &keys_aad(workspace, kit_id), &plain)?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// Opens a KEYS section (any failure is [`WRONG_SECRET`]).
pub fn open_keys(enc: &[u8; 32], workspace: &str, kit_id: &[u8], section: &[u8]) -> Result<Vec<KitVersion>> {
    let wrong = || Error::Kit(WRONG_SECRET.into());
    if section.len() < NONCE_LEN {
        return Err(wrong());
    }
    let (nonce, body) = section.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| wrong())?;
    let plain = primitives::aes256_gcm_open(enc, nonce, &keys_aad(workspace, kit_id), body).map_err(|_| wrong())?;
    decode_entries(&plain)
}

/// The finished kit file: `header`, the module's KEYS section, and the MAC under `key`.
/// The KEYS section is opened first and checked against the header, so a kit is never
/// written that its own key cannot open.
pub fn build(header: &Header, key: &KitKey, keys: &[u8]) -> Result<Vec<u8>> {
    check_params(header, true)?;
    let opened = open_keys(&key.enc, &header.workspace, &header.kit_id_bytes()?, keys)?;
    check_against_header(header, &opened)?;
    let unsigned = format::encode_unsigned(header, keys)?;
    let mac = primitives::hmac_sha256(key.mac.as_ref(), &[&unsigned])?;
    Ok(format::finish(unsigned, mac.as_ref()))
}

/// Every key's check value recomputed, and the versions exactly the header's.
fn check_against_header(header: &Header, versions: &[KitVersion]) -> Result<()> {
    let listed: Vec<(u32, String)> = header.versions.iter().map(|v| (v.version, v.kcv.clone())).collect();
    let mut held = Vec::with_capacity(versions.len());
    for v in versions {
        if primitives::aes_check_value(v.key.as_ref())? != v.kcv {
            return Err(Error::Kit(format!("the key of v{} does not match its check value", v.version)));
        }
        held.push((v.version, hex::encode(v.kcv)));
    }
    if listed != held {
        return Err(Error::Kit("the keys section does not hold the versions its header lists".into()));
    }
    Ok(())
}

/// Opens a kit: the public checks ([`format::parse`]), the workspace it must belong to
/// (`expect_workspace`: a foreign kit is refused before any secret is used), the kit key
/// from `passphrase` and the factor's response to [`factor_message`] (`factor`), the MAC,
/// then the keys, each checked against its check value and the header.
pub fn open(file: &[u8], expect_workspace: Option<&str>, passphrase: &[u8], factor: Factor<'_>) -> Result<KitContents> {
    let Parsed { header, keys, mac, mac_input } = format::parse(file)?;
    if let Some(ws) = expect_workspace {
        if header.workspace != ws {
            return Err(Error::Kit(format!("foreign workspace: the kit is for {:?}, not {ws:?}", header.workspace)));
        }
    }
    let kit_id = header.kit_id_bytes()?;
    let challenge = hex::decode(&header.factor.challenge)
        .map_err(|_| Error::Kit("the header's factor challenge is not hex".into()))?;
    let response = factor(&factor_message(&kit_id, &challenge))?;
    let key = derive_key(&header, passphrase, &response, false)?;
    let want = primitives::hmac_sha256(key.mac.as_ref(), &[&mac_input])?;
    if !crate::store::sealed::mac_eq(&mac, want.as_ref()) {
        return Err(Error::Kit(WRONG_SECRET.into()));
    }
    let versions = open_keys(&key.enc, &header.workspace, &kit_id, &keys)?;
    check_against_header(&header, &versions)?;
    Ok(KitContents { header, versions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::format::{FactorInfo, KdfParams, VersionInfo, FACTOR_KIND, FORMAT_VERSION};

    fn version(n: u32, byte: u8) -> KitVersion {
        let key = Zeroizing::new([byte; 32]);
        let kcv = primitives::aes_check_value(key.as_ref()).unwrap();
        KitVersion { version: n, state: Lifecycle::DecryptOnly, created: 100, kcv, key }
    }

    fn header(versions: &[KitVersion]) -> Header {
        Header {
            format: FORMAT_VERSION,
            workspace: "eng".into(),
            kit_id: "0f".repeat(16),
            created: 1,
            versions: versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.version,
                    state: "decrypt-only".into(),
                    created: v.created,
                    kcv: hex::encode(v.kcv),
                })
                .collect(),
            kdf: KdfParams {
                alg: "argon2id".into(),
                memory_kib: MIN_MEMORY_KIB,
                passes: MIN_PASSES,
                salt: "ab".repeat(16),
            },
            factor: FactorInfo {
                kind: FACTOR_KIND.into(),
                token: "t".into(),
                key: "k".into(),
                challenge: "cd".repeat(32),
            },
            quorum: false,
        }
    }

    /// A stand-in factor token: HMAC under a fixed secret.
    fn token(secret: u8) -> impl FnMut(&[u8]) -> Result<Zeroizing<[u8; 32]>> {
        move |m| primitives::hmac_sha256(&[secret; 32], &[m])
    }

    fn kit(pass: &[u8]) -> Vec<u8> {
        let entries = [version(1, 1), version(2, 2)];
        let h = header(&entries);
        let mut factor = token(7);
        let response = factor(&factor_message(&h.kit_id_bytes().unwrap(), &[0xcd; 32])).unwrap();
        let key = derive_key(&h, pass, &response, true).unwrap();
        let keys = seal_keys(&key.enc, "eng", &h.kit_id_bytes().unwrap(), &entries).unwrap();
        build(&h, &key, &keys).unwrap()
    }

    #[test]
    fn a_kit_opens_with_its_passphrase_and_factor_and_gives_back_the_keys() {
        let file = kit(b"correct horse");
        let opened = open(&file, Some("eng"), b"correct horse", &mut token(7)).unwrap();
        assert_eq!(opened.versions.len(), 2);
        assert_eq!(*opened.versions[1].key, [2u8; 32]);
        assert_eq!(opened.versions[0].kcv, primitives::aes_check_value(&[1u8; 32]).unwrap());
    }

    #[test]
    fn a_wrong_passphrase_and_a_wrong_factor_get_the_same_refusal() {
        let file = kit(b"correct horse");
        let e1 = open(&file, Some("eng"), b"wrong horse", &mut token(7)).unwrap_err().to_string();
        let e2 = open(&file, Some("eng"), b"correct horse", &mut token(8)).unwrap_err().to_string();
        assert_eq!(e1, e2);
        assert!(e1.contains(WRONG_SECRET), "{e1}");
    }

    #[test]
    fn a_foreign_workspace_is_refused_by_name_before_any_secret_is_used() {
        let file = kit(b"pw-pw-pw");
        let mut asked = false;
        let mut factor = |_: &[u8]| {
            asked = true;
            Ok(Zeroizing::new([0u8; 32]))
        };
        let e = open(&file, Some("sales"), b"pw-pw-pw", &mut factor).unwrap_err().to_string();
        assert!(e.contains("foreign workspace"), "{e}");
        assert!(!asked);
    }

    #[test]
    fn weak_kdf_parameters_are_refused_at_export() {
        let entries = [version(1, 1)];
        let mut h = header(&entries);
        h.kdf.memory_kib = 1024;
        assert!(derive_key(&h, b"pw", &[0; 32], true).is_err());
        h.kdf.memory_kib = MAX_MEMORY_KIB + 1;
        assert!(derive_key(&h, b"pw", &[0; 32], false).is_err());
    }

    #[test]
    fn keys_that_do_not_match_the_header_are_never_written() {
        let entries = [version(1, 1)];
        let mut h = header(&entries);
        let key = derive_key(&h, b"pw", &[0; 32], true).unwrap();
        let keys = seal_keys(&key.enc, "eng", &h.kit_id_bytes().unwrap(), &entries).unwrap();
        h.versions[0].kcv = "000000".into();
        assert!(build(&h, &key, &keys).unwrap_err().to_string().contains("does not hold the versions"));
    }
}
