//! `cvault hold set|lift` and `cvault master import-key|import` as processes against a
//! workspace whose root is a real SoftHSM2 token (doc/quorum.md "Legal hold",
//! doc/byok.md). Without a quorum the SO lifts a hold alone; the quorum-guarded paths
//! run in conformance/hold_byok.sh. The import keys' public halves are read by
//! independent code: the RSA PEM by openssl, the ML-KEM key by the RustCrypto crate.

#![allow(missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use common::cvault::Cvault;

/// A SoftHSM2 root and workspace "eng", initialized.
fn cli() -> Cvault {
    let cli = Cvault::new("[[workspace]]\nname = \"eng\"\n");
    cli.init();
    cli
}

#[track_caller]
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn a_hold_stops_a_retirement_until_the_so_lifts_it() {
    let cli = cli();
    cli.ok(&["master", "rotate"]);
    assert!(cli.ok(&["hold", "set", "--reason", "case 7731"]).contains("legal hold set (case 7731)"));
    let err = cli.refused(&["master", "retire", "--version", "1"]);
    assert!(err.contains("CKR_CV_LEGAL_HOLD"), "{err}");
    let json = cli.ok(&["--json", "hold", "lift"]);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("--json");
    assert_eq!(doc["legal_hold"], false);
    cli.ok(&["master", "retire", "--version", "1"]);
    let log = cli.ws.log();
    assert!(log.contains("case 7731"), "the reason is recorded: {log}");
}

#[test]
fn an_rsa_import_key_is_pem_that_openssl_reads_and_wraps_to() {
    let cli = cli();
    let dir = tempfile::tempdir().expect("tempdir");
    let (pem, key, wrapped) = (dir.path().join("import.pem"), dir.path().join("key.bin"), dir.path().join("w.bin"));
    cli.ok(&["master", "import-key", "--type", "rsa-3072", "--out", path(&pem)]);
    let text = openssl(&["pkey", "-pubin", "-in", path(&pem), "-noout", "-text"]);
    assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
    openssl(&["rand", "-out", path(&key), "32"]);
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        path(&pem),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-in",
        path(&key),
        "-out",
        path(&wrapped),
    ]);
    let out = cli.ok(&["master", "import", "--wrapped", path(&wrapped)]);
    assert!(out.contains("v2 imported (imported:rsa-oaep-sha256)"), "{out}");
    // A tampered wrapped key is refused, and so is an import key that is not there.
    let mut bad = std::fs::read(&wrapped).expect("wrapped");
    bad[10] ^= 1;
    std::fs::write(&wrapped, bad).expect("tampered");
    let err = cli.refused(&["master", "import", "--wrapped", path(&wrapped)]);
    assert!(err.contains("CKR_WRAPPED_KEY_INVALID"), "{err}");
    let err = cli.refused(&["master", "import", "--wrapped", path(&wrapped), "--import-key", "nope"]);
    assert!(err.contains("no import key \"nope\""), "{err}");
}

#[test]
fn an_ml_kem_import_key_is_the_raw_encapsulation_key() {
    use ml_kem::{Encapsulate, EncapsulationKey, MlKem768, TryKeyInit};
    let cli = cli();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ek_file, key, kwp) = (dir.path().join("import.ek"), dir.path().join("key.bin"), dir.path().join("kwp.bin"));
    cli.ok(&["master", "import-key", "--type", "ml-kem-768", "--out", path(&ek_file), "--label", "mlkem import"]);
    let ek = std::fs::read(&ek_file).expect("ek");
    assert_eq!(ek.len(), 1184, "an ML-KEM-768 encapsulation key");
    let (ct, ss) = EncapsulationKey::<MlKem768>::new_from_slice(&ek).expect("ek").encapsulate();
    openssl(&["rand", "-out", path(&key), "32"]);
    let ss = hex::encode(ss.as_slice());
    openssl(&["enc", "-id-aes256-wrap-pad", "-K", &ss, "-iv", "A65959A6", "-in", path(&key), "-out", path(&kwp)]);
    let wrapped = dir.path().join("wrapped.bin");
    std::fs::write(&wrapped, [ct.as_slice(), &std::fs::read(&kwp).expect("kwp")].concat()).expect("wrapped");
    let out = cli.ok(&["master", "import", "--wrapped", path(&wrapped), "--import-key", "mlkem import"]);
    assert!(out.contains("v2 imported (imported:ml-kem-768+aes-kwp)"), "{out}");
    assert!(cli.ok(&["master", "list"]).contains("imported:ml-kem-768"));
}
