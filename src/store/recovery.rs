//! The recovery kit inventory as the store keeps it: which kits were issued (by kit id
//! and the SHA-256 fingerprint of the file), for which master key versions, and who
//! acknowledged holding each one when. No key material: a kit's contents never reach the
//! store, only the facts an auditor asks about.

use crate::error::{Error, Result};

/// The versions a kit covers as both backends store them: ascending, comma-separated.
pub(crate) fn versions_text(versions: &[u32]) -> String {
    versions.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The stored version list back; anything but numbers and commas is a store error.
pub(crate) fn parse_versions(text: &str) -> Result<Vec<u32>> {
    text.split(',')
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|_| Error::Store(format!("kit version list {text:?} is malformed"))))
        .collect()
}

/// One issued kit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitRecord {
    /// The kit id (hex), from the kit's header.
    pub kit_id: String,
    /// The workspace it restores.
    pub workspace: String,
    /// SHA-256 of the whole kit file: proves possession when a holder acknowledges.
    pub fingerprint: [u8; 32],
    /// The master key versions it covers, ascending.
    pub versions: Vec<u32>,
    /// Who it was issued to.
    pub holder: String,
    /// Unix seconds.
    pub issued_at: i64,
}

impl KitRecord {
    /// The newest version the kit covers.
    pub fn newest(&self) -> u32 {
        self.versions.iter().copied().max().unwrap_or(0)
    }
}

/// A holder's confirmation that they still hold a kit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitAck {
    /// The kit.
    pub kit_id: String,
    /// Who confirmed.
    pub holder: String,
    /// Unix seconds.
    pub at: i64,
}

/// An issued kit with its acknowledgements, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKit {
    /// The kit.
    pub kit: KitRecord,
    /// Its acknowledgements.
    pub acks: Vec<KitAck>,
}
