//! `recovery/`: recovery kits and the drills that prove them.
//!
//! A kit is a file that holds a workspace's master key (WMK) versions sealed under a key
//! only two things together give: an administrator's passphrase (Argon2id) and a second
//! factor, a secret key on a separate PKCS#11 token. Its format (`format.rs`) carries
//! public checksums that `cvault kit check` verifies without either, and a MAC only the
//! kit key verifies (`kit.rs`); the factor token is driven by `factor.rs`; a drill
//! (`drill.rs`) opens a kit in memory and checks it against the live hierarchy and the
//! stored DEKs, changing nothing.
//!
//! Invariants: no WMK byte is ever written in the clear (the module seals the versions
//! under the kit key itself, `CKM_CV_EXPORT_KIT`); a wrong passphrase and a wrong factor
//! are one refusal ([`kit::WRONG_SECRET`]); every other refusal names what is wrong. What
//! each piece gives an attacker is the table in `doc/recovery.md`.
//!
//! A restoration (`cvault recover --kit FILE`) opens a kit with [`kit::open`], which
//! returns the versions with their keys in zeroizing buffers, each checked against its
//! check value.

pub mod attempts;
pub mod drill;
pub mod factor;
pub mod format;
pub mod kit;
pub mod restore;

pub use kit::{open, KitContents, KitVersion};
