//! A private temporary directory, removed with everything in it when dropped: where a
//! verification restores a backup before opening it, so the backup itself is never
//! opened (opening a SQLite file can write to it) and the live store is never touched.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A directory under the system's temporary directory, owner-only.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Makes a new, empty directory named after `purpose`.
    pub fn new(purpose: &str) -> Result<Scratch> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("cvault-{purpose}-{}-{nanos}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(|e| Error::Store(format!("cannot create {}: {e}", path.display())))?;
        Ok(Scratch(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            log::warn!("cannot remove the scratch directory {}: {e}", self.0.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_directory_is_private_and_gone_after_use() {
        let scratch = Scratch::new("test").expect("scratch");
        let path = scratch.path().to_path_buf();
        std::fs::write(path.join("f"), b"x").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o700);
        }
        drop(scratch);
        assert!(!path.exists());
    }
}
