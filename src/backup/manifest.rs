//! `manifest.json`: what a backup holds and the SHA-256 of every file in it.
//!
//! Format version 1 (doc/backup.md):
//!
//! ```json
//! { "format": 1, "created_at": "2026-12-07T00:12:03Z", "created_at_ms": 1796602323000,
//!   "backend": "sqlite", "root": "hsm",
//!   "workspaces": [{ "name": "eng", "initialized": true, "objects": 12,
//!                    "masters": [{ "version": 1, "state": "active", "created_at": 1796600000,
//!                                  "stored_records": 12 }],
//!                    "kek": { "generation": 1, "threshold": 0, "check": "9f…" } }],
//!   "audit_head": { "seq": 240, "hash": "5a…" }, "checkpoints": 9,
//!   "files": [{ "name": "collabvault.sqlite3", "size": 155648, "sha256": "c1…" }] }
//! ```
//!
//! The manifest does not protect itself: its own SHA-256 goes into the live store's audit
//! chain (`backup-create`), where a verification finds it again. Every claim in it is
//! also checked against the copy, so an edited count or head is caught either way.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use crate::error::{Error, Result};
use crate::mechanism::primitives::{self, Sha256};

/// The manifest format this module writes and reads.
pub const FORMAT: u32 = 1;

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Its name inside the backup directory (no directories).
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
}

impl FileSum {
    /// The size and SHA-256 of `dir/name`, read in 64 KiB pieces.
    pub fn of(dir: &Path, name: &str) -> Result<FileSum> {
        let path = dir.join(name);
        let cannot = |e: std::io::Error| Error::Store(format!("cannot read {}: {e}", path.display()));
        let mut file = std::fs::File::open(&path).map_err(cannot)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(cannot)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            size += n as u64;
        }
        Ok(FileSum { name: name.to_string(), size, sha256: hex::encode(hash.finalize()) })
    }
}

/// A backup's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The same, in Unix milliseconds.
    pub created_at_ms: i64,
    /// The store backend the copy is for (`sqlite`).
    pub backend: String,
    /// The root of trust the copy opens with: `hsm` (the config's `[root]`) or `soft`.
    pub root: String,
    /// What the copy holds.
    #[serde(flatten)]
    pub summary: Summary,
    /// Every file of the backup but the manifest.
    pub files: Vec<FileSum>,
}

impl Manifest {
    /// The manifest as written: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self).map_err(|e| Error::Store(format!("manifest: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }

    /// Parses a manifest, refusing a format this module does not know.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(FORMAT)) {
            return Err(format!("the manifest has format {format:?}; this cvault reads format {FORMAT}"));
        }
        serde_json::from_value(value).map_err(|e| format!("the manifest is malformed: {e}"))
    }

    /// The problems with the files in `dir` against the checksums: a missing file, a
    /// size or a SHA-256 that differs, each named. Empty when every file matches.
    pub fn check_files(&self, dir: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        if self.files.is_empty() {
            problems.push("the manifest lists no files".to_string());
        }
        for want in &self.files {
            if want.name.contains('/') || want.name.contains('\\') || want.name.starts_with('.') {
                problems.push(format!("the manifest names a file outside the backup: {:?}", want.name));
                continue;
            }
            if !dir.join(&want.name).is_file() {
                problems.push(format!("{} is missing", want.name));
                continue;
            }
            match FileSum::of(dir, &want.name) {
                Err(e) => problems.push(e.to_string()),
                Ok(got) if got.size != want.size => problems.push(format!(
                    "{} has {} bytes, the manifest says {} (changed or truncated)",
                    want.name, got.size, want.size
                )),
                Ok(got) if got.sha256 != want.sha256 => problems.push(format!(
                    "{} does not match its SHA-256 in the manifest (changed since the backup)",
                    want.name
                )),
                Ok(_) => {}
            }
        }
        problems
    }
}

/// The SHA-256 of a manifest's bytes as recorded in the audit chain (`sha256:<hex>`).
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(primitives::sha256(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::summary::{HeadSummary, MasterSummary, WorkspaceSummary};

    fn manifest(dir: &Path) -> Manifest {
        std::fs::write(dir.join("store.db"), b"sealed rows").expect("write");
        Manifest {
            format: FORMAT,
            created_at: "2026-12-07T00:00:00Z".into(),
            created_at_ms: 1,
            backend: "sqlite".into(),
            root: "hsm".into(),
            summary: Summary {
                workspaces: vec![WorkspaceSummary {
                    name: "eng".into(),
                    initialized: true,
                    objects: 3,
                    masters: vec![MasterSummary {
                        version: 1,
                        state: "active".into(),
                        created_at: 5,
                        stored_records: 3,
                        origin: None,
                    }],
                    kek: None,
                }],
                audit_head: Some(HeadSummary { seq: 9, hash: "ab".into() }),
                checkpoints: 2,
            },
            files: vec![FileSum::of(dir, "store.db").expect("sum")],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = manifest(dir.path());
        assert_eq!(Manifest::parse(&m.to_bytes().expect("bytes")).expect("parse"), m);
    }

    #[test]
    fn file_checksums_are_sha256_of_the_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sum = manifest(dir.path()).files[0].clone();
        assert_eq!(sum.size, 11);
        assert_eq!(sum.sha256, hex::encode(primitives::sha256(b"sealed rows")));
    }

    #[test]
    fn matching_files_have_no_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(manifest(dir.path()).check_files(dir.path()).is_empty());
    }

    #[test]
    fn a_flipped_byte_a_truncation_and_a_missing_file_are_each_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = manifest(dir.path());
        std::fs::write(dir.path().join("store.db"), b"sealed rowt").expect("flip");
        assert!(m.check_files(dir.path())[0].contains("does not match its SHA-256"), "{:?}", m.check_files(dir.path()));
        std::fs::write(dir.path().join("store.db"), b"sealed").expect("truncate");
        assert!(m.check_files(dir.path())[0].contains("has 6 bytes"));
        std::fs::remove_file(dir.path().join("store.db")).expect("remove");
        assert_eq!(m.check_files(dir.path()), ["store.db is missing"]);
    }

    #[test]
    fn a_file_name_that_leaves_the_backup_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = manifest(dir.path());
        m.files[0].name = "../store.db".into();
        assert!(m.check_files(dir.path())[0].contains("outside the backup"));
    }

    #[test]
    fn an_unknown_format_and_non_json_are_refused() {
        assert!(Manifest::parse(b"{\"format\": 2}").unwrap_err().contains("format Some(2)"));
        assert!(Manifest::parse(b"not json").unwrap_err().contains("not JSON"));
        assert!(Manifest::parse(b"{\"format\": 1}").unwrap_err().contains("malformed"));
    }

    #[test]
    fn a_changed_claim_is_a_named_difference() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = manifest(dir.path());
        let mut copy = m.summary.clone();
        assert!(m.summary.differences(&copy).is_empty());
        copy.workspaces[0].objects = 4;
        copy.audit_head = Some(HeadSummary { seq: 10, hash: "cd".into() });
        let diffs = m.summary.differences(&copy);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].starts_with("audit head"));
        assert!(diffs[1].starts_with("workspace eng"));
    }

    #[test]
    fn the_recorded_digest_names_its_algorithm() {
        assert_eq!(digest(b"abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
