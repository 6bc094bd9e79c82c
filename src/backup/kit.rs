//! Recovery kits (`*.cvkit`, written by `cvault` recovery commands) found where backups
//! are kept.
//!
//! A kit and a backup in one place defeat the split they exist for: whoever copies the
//! directory holds both the sealed store and what recovers it. `cvault token status`
//! warns about every kit this finds in a backup directory. A kit is a file named
//! `*.cvkit` or one that starts with the kit format's magic bytes, so a renamed kit is
//! found too.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The first bytes of every recovery kit file.
pub const MAGIC: &[u8] = b"CVKIT";

/// The extension kit files are written with.
pub const EXTENSION: &str = "cvkit";

/// Whether the file at `path` is a recovery kit: by name or by its first bytes.
pub fn is_kit(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case(EXTENSION)) {
        return true;
    }
    let mut head = [0u8; MAGIC.len()];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == MAGIC
}

/// The recovery kits directly inside `dir` (none when it cannot be read), sorted.
pub fn kits_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut kits: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && is_kit(p)).collect();
    kits.sort();
    kits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kit_is_found_by_extension_or_by_magic_and_nothing_else_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("alice.cvkit"), b"anything").expect("write");
        std::fs::write(dir.path().join("renamed.bin"), b"CVKIT\x01rest").expect("write");
        std::fs::write(dir.path().join("manifest.json"), b"{}").expect("write");
        std::fs::write(dir.path().join("short"), b"CV").expect("write");
        let names: Vec<String> =
            kits_in(dir.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["alice.cvkit", "renamed.bin"]);
    }

    #[test]
    fn a_missing_directory_has_no_kits() {
        assert!(kits_in(Path::new("/nonexistent/cvault-backup")).is_empty());
    }
}
