//! The recovery kit file format, version 1 (`doc/recovery.md` is its prose description):
//! what can be checked without a secret, and nothing more.
//!
//! ```text
//! magic "CVKIT\r\n\x1a" (8) || format version (u16 BE)
//! section HEADER: tag 1 || length (u32 BE) || JSON header || SHA-256(tag || length || body)
//! section KEYS:   tag 2 || length || nonce (12) || AES-256-GCM(kit key, keys) || SHA-256(...)
//! section MAC:    tag 3 || length || HMAC-SHA256(kit MAC key, every byte before this section) || SHA-256(...)
//! ```
//!
//! The per-section SHA-256 checksums are public: `cvault kit check` verifies them, the
//! order and presence of the sections, the format version and the header's fields, and
//! so proves the file is the file that was written unless someone recomputed the
//! checksums on purpose (they carry no key). Only the MAC proves the kit unaltered
//! against such an attacker, and only the holder of the passphrase and the second
//! factor can verify it (`kit.rs`). The parser never panics on any input: every offset
//! is checked, and every refusal names what is wrong.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mechanism::primitives::sha256;

/// The file's first bytes (the `\r\n\x1a` catch text-mode and transfer mangling, as PNG's).
pub const MAGIC: &[u8; 8] = b"CVKIT\r\n\x1a";
/// The format version this code writes and the only one it opens.
pub const FORMAT_VERSION: u16 = 1;
/// Length of a kit id.
pub const KIT_ID_LEN: usize = 16;
/// The largest section accepted (a kit is a few KiB): bounds what a hostile length costs.
const MAX_SECTION: usize = 1 << 20;
const CHECKSUM_LEN: usize = 32;

/// The sections, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The public header (JSON).
    Header = 1,
    /// The WMK versions, sealed under the kit key.
    Keys = 2,
    /// The MAC over the whole file before it.
    Mac = 3,
}

impl Section {
    const ORDER: [Section; 3] = [Section::Header, Section::Keys, Section::Mac];

    /// The name messages use.
    pub fn name(self) -> &'static str {
        match self {
            Section::Header => "header",
            Section::Keys => "keys",
            Section::Mac => "MAC",
        }
    }
}

/// One master key version as the header lists it (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The WMK version number.
    pub version: u32,
    /// Its lifecycle state when the kit was made (`active`, `decrypt-only`).
    pub state: String,
    /// Unix seconds it was made.
    pub created: i64,
    /// Its PKCS#11 AES key check value, hex (`CKA_CHECK_VALUE`).
    pub kcv: String,
}

/// The Argon2id parameters of the passphrase half of the kit key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `argon2id` (RFC 9106, version 0x13, one lane).
    pub alg: String,
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Salt, hex.
    pub salt: String,
}

/// The second factor a kit needs, and what to ask it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorInfo {
    /// `pkcs11-hmac-sha256`: a secret key on a separate PKCS#11 token computes
    /// HMAC-SHA256 (`CKM_SHA256_HMAC`) of the challenge.
    pub kind: String,
    /// The token's label.
    pub token: String,
    /// The key's label on it.
    pub key: String,
    /// The per-kit challenge, hex.
    pub challenge: String,
}

/// The public header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The format version again (bound by the checksum and the MAC, unlike the preamble's).
    pub format: u16,
    /// The workspace the kit restores.
    pub workspace: String,
    /// 16 random bytes, hex: names the kit in the inventory and salts its key.
    pub kit_id: String,
    /// Unix seconds it was made.
    pub created: i64,
    /// The versions it holds, oldest first.
    pub versions: Vec<VersionInfo>,
    /// The passphrase KDF.
    pub kdf: KdfParams,
    /// The second factor.
    pub factor: FactorInfo,
    /// Whether the workspace had a quorum (the export was approved by custodians).
    pub quorum: bool,
}

impl Header {
    /// The kit id as bytes.
    pub fn kit_id_bytes(&self) -> Result<[u8; KIT_ID_LEN]> {
        let bytes = hex::decode(&self.kit_id).map_err(|_| bad("the header's kit id is not hex"))?;
        bytes.try_into().map_err(|_| bad("the header's kit id is not 16 bytes"))
    }

    /// The newest version the kit holds.
    pub fn newest(&self) -> Option<u32> {
        self.versions.iter().map(|v| v.version).max()
    }

    fn validate(&self) -> Result<()> {
        if self.format != FORMAT_VERSION {
            return Err(bad(&format!(
                "the header says format version {} but the file says {FORMAT_VERSION}",
                self.format
            )));
        }
        self.kit_id_bytes()?;
        if self.workspace.is_empty() || self.versions.is_empty() {
            return Err(bad("the header names no workspace or no master key version"));
        }
        if self.kdf.alg != "argon2id" || self.factor.kind != FACTOR_KIND {
            return Err(bad("the header names an unknown KDF or second factor"));
        }
        Ok(())
    }
}

/// [`FactorInfo::kind`] of a PKCS#11 HMAC factor.
pub const FACTOR_KIND: &str = "pkcs11-hmac-sha256";

fn bad(why: &str) -> Error {
    Error::Kit(why.to_string())
}

/// A kit file split into its parts, every public check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The decoded header.
    pub header: Header,
    /// The KEYS section's body (nonce || sealed keys).
    pub keys: Vec<u8>,
    /// The MAC section's body.
    pub mac: Vec<u8>,
    /// Every byte the MAC covers (the file up to the MAC section).
    pub mac_input: Vec<u8>,
}

fn section(tag: Section, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5 + CHECKSUM_LEN);
    out.push(tag as u8);
    // Sections are bounded by MAX_SECTION, far below u32::MAX.
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    let sum = sha256(&out);
    out.extend_from_slice(&sum);
    out
}

/// The file up to the MAC section: what the MAC is computed over.
pub fn encode_unsigned(header: &Header, keys: &[u8]) -> Result<Vec<u8>> {
    header.validate()?;
    let json = serde_json::to_vec_pretty(header).map_err(|e| bad(&format!("the header does not encode: {e}")))?;
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&section(Section::Header, &json));
    out.extend_from_slice(&section(Section::Keys, keys));
    Ok(out)
}

/// The whole file: `unsigned` (from [`encode_unsigned`]) and its MAC section.
pub fn finish(mut unsigned: Vec<u8>, mac: &[u8]) -> Vec<u8> {
    unsigned.extend_from_slice(&section(Section::Mac, mac));
    unsigned
}

/// Every check that needs no secret: magic, format version (an older one is a
/// downgrade), each section present, in order, whole and matching its checksum, nothing
/// after the last, and a well-formed header.
pub fn parse(file: &[u8]) -> Result<Parsed> {
    if file.len() < MAGIC.len() + 2 {
        return Err(bad("truncated: the file is shorter than a kit's preamble"));
    }
    if &file[..MAGIC.len()] != MAGIC {
        return Err(bad("not a CollabVault recovery kit (wrong magic)"));
    }
    let version = u16::from_be_bytes([file[MAGIC.len()], file[MAGIC.len() + 1]]);
    if version < FORMAT_VERSION {
        return Err(bad(&format!(
            "downgraded: format version {version} is older than {FORMAT_VERSION}, the only one accepted"
        )));
    }
    if version > FORMAT_VERSION {
        return Err(bad(&format!(
            "format version {version} is newer than this cvault reads ({FORMAT_VERSION}): upgrade cvault"
        )));
    }
    let mut at = MAGIC.len() + 2;
    let mut bodies: Vec<&[u8]> = Vec::with_capacity(3);
    let mut mac_start = 0;
    for want in Section::ORDER {
        if want == Section::Mac {
            mac_start = at;
        }
        let (body, next) = read_section(file, at, want)?;
        bodies.push(body);
        at = next;
    }
    if at != file.len() {
        return Err(bad(&format!("{} unexpected byte(s) after the MAC section", file.len() - at)));
    }
    let header: Header = serde_json::from_slice(bodies[0])
        .map_err(|e| bad(&format!("the header section does not decode ({e}), though its checksum matches")))?;
    header.validate()?;
    Ok(Parsed { header, keys: bodies[1].to_vec(), mac: bodies[2].to_vec(), mac_input: file[..mac_start].to_vec() })
}

/// The section `want` at `at`: its body and where the next one starts.
fn read_section(file: &[u8], at: usize, want: Section) -> Result<(&[u8], usize)> {
    let name = want.name();
    let Some(head) = file.get(at..at + 5) else {
        return Err(bad(&format!("truncated: the {name} section is missing")));
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_SECTION {
        return Err(bad(&format!("the {name} section is corrupted (its length, {len}, is implausible)")));
    }
    let end = at + 5 + len;
    let Some(sum) = file.get(end..end + CHECKSUM_LEN) else {
        return Err(bad(&format!("truncated: the {name} section ends before its {len} byte(s) and checksum")));
    };
    if sha256(&file[at..end]) != sum {
        return Err(bad(&format!("the {name} section is corrupted (its SHA-256 checksum does not match)")));
    }
    if head[0] != want as u8 {
        return Err(bad(&format!("the {name} section is missing (found section tag {} in its place)", head[0])));
    }
    Ok((&file[at + 5..end], end + CHECKSUM_LEN))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn header() -> Header {
        Header {
            format: FORMAT_VERSION,
            workspace: "eng".into(),
            kit_id: "00112233445566778899aabbccddeeff".into(),
            created: 1_800_000_000,
            versions: vec![VersionInfo { version: 1, state: "active".into(), created: 1, kcv: "dc95c0".into() }],
            kdf: KdfParams { alg: "argon2id".into(), memory_kib: 64, passes: 1, salt: "00".repeat(16) },
            factor: FactorInfo {
                kind: FACTOR_KIND.into(),
                token: "t".into(),
                key: "k".into(),
                challenge: "11".repeat(32),
            },
            quorum: false,
        }
    }

    fn file() -> Vec<u8> {
        finish(encode_unsigned(&header(), &[7u8; 60]).unwrap(), &[9u8; 32])
    }

    fn refused(bytes: &[u8]) -> String {
        match parse(bytes) {
            Err(Error::Kit(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    /// The module's parameter check restates [`KIT_ID_LEN`] (it sits below this folder).
    #[test]
    fn the_export_mechanism_takes_exactly_a_kit_id() {
        use crate::mechanism::registry::{row, Param};
        let r = row(crate::vendor::CKM_CV_EXPORT_KIT).unwrap();
        assert!((r.build)(r.ty, Param::Bytes(vec![0; KIT_ID_LEN])).is_ok());
        assert!((r.build)(r.ty, Param::Bytes(vec![0; KIT_ID_LEN - 1])).is_err());
        assert!((r.build)(r.ty, Param::None).is_err());
    }

    #[test]
    fn a_kit_parses_back_into_its_parts() {
        let f = file();
        let p = parse(&f).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.keys, vec![7u8; 60]);
        assert_eq!(p.mac, vec![9u8; 32]);
        assert_eq!(p.mac_input, encode_unsigned(&header(), &[7u8; 60]).unwrap());
    }

    #[test]
    fn a_flipped_byte_in_any_section_names_that_section() {
        let f = file();
        let header_len = serde_json::to_vec_pretty(&header()).unwrap().len();
        let keys_at = 10 + 5 + header_len + 32;
        let mac_at = keys_at + 5 + 60 + 32;
        for (at, name) in [(20, "header"), (keys_at + 10, "keys"), (mac_at + 7, "MAC"), (mac_at + 5 + 32 + 3, "MAC")] {
            let mut bad = f.clone();
            bad[at] ^= 0x01;
            let why = refused(&bad);
            assert!(why.contains(&format!("the {name} section is corrupted")), "byte {at}: {why}");
        }
    }

    #[test]
    fn every_truncation_is_refused_as_truncated() {
        let f = file();
        for cut in (0..f.len()).step_by(7) {
            let why = refused(&f[..cut]);
            assert!(why.contains("truncated"), "cut at {cut}: {why}");
        }
    }

    #[test]
    fn an_older_or_newer_format_version_is_refused_by_name() {
        let mut f = file();
        f[9] = 0;
        assert!(refused(&f).contains("downgraded: format version 0"));
        f[9] = 2;
        assert!(refused(&f).contains("newer"));
        f[0] = b'X';
        assert!(refused(&f).contains("not a CollabVault recovery kit"));
    }

    #[test]
    fn bytes_after_the_mac_and_sections_out_of_order_are_refused() {
        let mut f = file();
        f.push(0);
        assert!(refused(&f).contains("after the MAC section"));
        let unsigned = encode_unsigned(&header(), &[7u8; 60]).unwrap();
        let mut swapped = unsigned[..10].to_vec();
        swapped.extend_from_slice(&section(Section::Keys, &[1]));
        swapped.extend_from_slice(&section(Section::Header, b"{}"));
        swapped.extend_from_slice(&section(Section::Mac, &[2]));
        assert!(refused(&swapped).contains("the header section is missing"));
    }
}
