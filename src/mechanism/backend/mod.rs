//! The crypto backend, chosen at build time by a Cargo feature: `aws-lc` (aws-lc-rs, the
//! default) or `rustcrypto` (the RustCrypto crates, a pure-Rust build with no C crypto
//! code). If both features are on (`--all-features`), aws-lc serves; with neither the
//! build stops here, naming the choice.
//!
//! Both implementations export the same functions and types, so the family files above
//! (`aes_gcm.rs`, `aes_kw.rs`, `hash.rs`, `hmac.rs`, `ec.rs`, `ecdsa.rs`, `ecdh.rs`) and
//! `primitives.rs` call `backend::…` and never name a crate of either backend. What the
//! backend serves: AES-GCM, AES-KW/KWP, SHA-1/SHA-2 and their HMACs, P-256/P-384/P-521
//! key generation, ECDSA and ECDH, the OS random source, and the RSA shapes aws-lc-rs
//! has a form for (`aws_lc_rsa.rs`; its RSA types answer `None` for the rest, and the
//! rustcrypto build's are uninhabited, so `rsa_*.rs` take their RustCrypto path then).
//! ML-KEM encapsulation and decapsulation (`aws_lc_kem.rs`, the same pattern) too. The
//! rest (SHA-3, the other AES modes and CMAC, Ed25519, ML-KEM key generation, Argon2, EC
//! encoding checks) is RustCrypto's in every build; README's "Crypto backends" says why.

#[cfg(not(any(feature = "aws-lc", feature = "rustcrypto")))]
compile_error!("choose a crypto backend: the `aws-lc` feature (the default) or `rustcrypto`");

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "aws-lc")]
pub use aws_lc::*;
#[cfg(feature = "aws-lc")]
mod aws_lc_rsa;
#[cfg(feature = "aws-lc")]
pub use aws_lc_rsa::*;
#[cfg(feature = "aws-lc")]
mod aws_lc_kem;
#[cfg(feature = "aws-lc")]
pub use aws_lc_kem::*;

#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
mod rust_crypto;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
pub use rust_crypto::*;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
mod rust_crypto_rsa;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
pub use rust_crypto_rsa::*;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
mod rust_crypto_kem;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
pub use rust_crypto_kem::*;

/// The hashes the backend serves (FIPS 180-4): SHA-3 is not among them, since aws-lc-rs
/// has no SHA-3 digest or HMAC API; `hash.rs` and `hmac.rs` take it from the `sha3`
/// crate in every build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha {
    /// SHA-1 (legacy: HMAC and OAEP only).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}
