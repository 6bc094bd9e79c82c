//! The backend seam holds: every cryptographic crate is called from `src/mechanism/`
//! only, so a second backend replaces the crypto of the whole module by implementing that
//! folder. A new dependency must be classified here, as crypto or not, before it builds.
//!
//! Unit tests inside `src/` (after a file's `#[cfg(test)]`) may use crates directly to
//! make independent test data; the module's own code may not.

use std::path::{Path, PathBuf};

/// Dependencies that implement cryptography (crate names as Rust spells them).
const CRYPTO: &[&str] = &[
    "aes_gcm",
    "aes",
    "aes_kw",
    "argon2",
    "sha1",
    "sha2",
    "sha3",
    "hmac",
    "hkdf",
    "cmac",
    "p256",
    "p384",
    "p521",
    "ecdsa",
    "ed25519_dalek",
    "curve25519_dalek",
    "rsa",
    "ml_kem",
    "ml_dsa",
    "shake",
    "x_wing",
    "blahaj",
    "crypto_bigint",
    "crypto_common",
    "subtle",
    "getrandom",
    "aws_lc_rs",
    "aws_lc_sys",
];

/// Dependencies that do not: the PKCS#11 types and client, storage, memory hygiene,
/// logging, configuration, and the admin tool's command line and output.
const OTHER: &[&str] = &[
    "cryptoki_sys",
    "cryptoki",
    "rusqlite",
    "postgres",
    "zeroize",
    "log",
    "parking_lot",
    "serde",
    "toml",
    "libc",
    "clap",
    "clap_complete",
    "clap_mangen",
    "serde_json",
    "jiff",
    "hex",
    "rpassword",
    "indicatif",
];

/// The one exception to the rule below: `src/ffi/unload.rs` calls AWS-LC's two
/// thread-local release functions from the library's unload finalizer. Unsafe code may
/// live in `src/ffi/` only, so that call cannot sit in `src/mechanism/backend/`; it names
/// exactly these functions and nothing else of the crate.
const UNLOAD_EXCEPTION: (&str, &[&str]) =
    ("unload.rs", &["aws_lc_sys::AWSLC_thread_local_clear();", "aws_lc_sys::AWSLC_thread_local_shutdown();"]);

fn is_unload_exception(file: &Path, line: &str) -> bool {
    let (name, lines) = UNLOAD_EXCEPTION;
    file.ends_with(Path::new("src").join("ffi").join(name)) && lines.contains(&line.trim())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `[dependencies]` of Cargo.toml, with `-` spelled `_`.
fn dependencies() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let table = manifest.split("\n[dependencies]\n").nth(1).expect("a [dependencies] table");
    let table = table.split("\n[").next().unwrap_or(table);
    table
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(|name| name.replace('-', "_"))
        .collect()
}

#[test]
fn every_dependency_is_classified_as_crypto_or_not() {
    for dep in dependencies() {
        assert!(
            CRYPTO.contains(&dep.as_str()) || OTHER.contains(&dep.as_str()),
            "Cargo.toml's `{dep}` is in neither list of tests/crypto_seam.rs: say whether it is cryptography"
        );
    }
}

#[test]
fn no_crypto_crate_is_named_outside_src_mechanism() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mechanism = root().join("src").join("mechanism");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&mechanism)) {
        let text = std::fs::read_to_string(file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or(line);
            for krate in CRYPTO {
                let used = line.contains(&format!("{krate}::")) && !line.contains(&format!("_{krate}::"));
                let used = used || line.trim_start().starts_with(&format!("use {krate}"));
                if used && !line.contains(&format!("mechanism::{krate}")) && !is_unload_exception(file, line) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "crypto crates called outside src/mechanism/:\n{}", found.join("\n"));
}

#[test]
fn the_unload_exception_admits_only_its_two_calls_in_its_one_file() {
    let unload = root().join("src").join("ffi").join("unload.rs");
    assert!(is_unload_exception(&unload, "        aws_lc_sys::AWSLC_thread_local_shutdown();"));
    assert!(!is_unload_exception(&unload, "        aws_lc_sys::EVP_sha256();"));
    let other = root().join("src").join("ffi").join("args.rs");
    assert!(!is_unload_exception(&other, "aws_lc_sys::AWSLC_thread_local_shutdown();"));
}

#[test]
fn the_scan_would_see_a_crate_call() {
    // The check above must be able to fail: a line of the shape it looks for.
    let line = "    let d = sha2::Sha256::digest(b\"x\");";
    assert!(CRYPTO.iter().any(|k| line.contains(&format!("{k}::"))));
}
