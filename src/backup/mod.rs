//! `backup/`: consistent online copies of the store, their manifest, and the proof that a
//! copy is usable (`cvault backup create|verify|restore`, doc/backup.md).
//!
//! A backup is a directory: the store copied as one snapshot ([`Backend::backup_to`],
//! taken while applications keep using the token) and `manifest.json`, which names what
//! the copy holds (workspaces, master key versions and states, object counts, the audit
//! head) and the SHA-256 of every file. It holds only what the store holds: sealed rows
//! and the audit chain. The root key stays in the root slot, so a backup opens only with
//! that slot and a PIN, and this module must never copy anything out of the root.
//!
//! Verifying a backup checks the manifest's checksums, restores the copy into a scratch
//! directory, checks that the copy holds what the manifest says, verifies the copied
//! audit chain and its signed checkpoints, and opens sample stored DEKs under every
//! master key version that has some ([`probe`]). Nothing here writes to the live store:
//! the admin tool records `backup-create`/`backup-verify`/`backup-restore` itself.
//!
//! Files: `manifest.rs` (the format and its checks), `summary.rs` (what a store holds),
//! `probe.rs` (the DEK proof), `kit.rs` (recovery kits that must not sit beside a
//! backup), `scratch.rs` (the private temporary directory a verification uses).
//!
//! [`Backend::backup_to`]: crate::store::Backend::backup_to

pub mod kit;
pub mod manifest;
pub mod probe;
pub mod scratch;
pub mod summary;

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
