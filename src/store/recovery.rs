//! The recovery kit inventory as the store keeps it: which kits were issued (by kit id
//! and the SHA-256 fingerprint of the file), for which master key versions, and who
//! acknowledged holding each one when. No key material: a kit's contents never reach the
//! store, only the facts an auditor asks about.

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
