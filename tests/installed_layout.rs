//! `cvault` where a package installs it: `/usr/bin/cvault` beside no module, the module in
//! the multiarch PKCS#11 directory of the same prefix (`/usr/lib/<multiarch>/pkcs11/`).
//! Run from a copy of that layout in a temp dir, without `COLLABVAULT_MODULE`.

#![allow(missing_docs)]

mod common;

use std::path::PathBuf;
use std::process::Command;

/// `<prefix>/bin/cvault` and `<prefix>/lib/<arch>-linux-gnu/pkcs11/libcollabvault_pkcs11.so`.
fn installed_prefix(dir: &std::path::Path) -> PathBuf {
    let bin = dir.join("usr/bin");
    let pkcs11 = dir.join(format!("usr/lib/{}-linux-gnu/pkcs11", std::env::consts::ARCH));
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::create_dir_all(&pkcs11).expect("pkcs11 dir");
    std::fs::copy(env!("CARGO_BIN_EXE_cvault"), bin.join("cvault")).expect("copy cvault");
    std::fs::copy(common::module_path(), pkcs11.join("libcollabvault_pkcs11.so")).expect("copy module");
    bin.join("cvault")
}

#[test]
fn cvault_in_usr_bin_finds_the_module_in_the_multiarch_pkcs11_dir() {
    let _serial = common::lock();
    let ws = common::Workspace::new();
    let cvault = installed_prefix(ws.dir.path());
    let out = Command::new(&cvault)
        .args(["token", "status"])
        .env("COLLABVAULT_CONF", &ws.conf)
        .env_remove("COLLABVAULT_MODULE")
        .output()
        .expect("run cvault");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stderr.contains("cannot load"), "cvault did not find the module: {stderr}");
    assert!(stdout.contains("workspace main"), "{stdout}\n{stderr}");
}

#[test]
fn cvault_names_the_missing_module_and_the_variable_that_points_to_it() {
    let _serial = common::lock();
    let ws = common::Workspace::new();
    let bin = ws.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy(env!("CARGO_BIN_EXE_cvault"), bin.join("cvault")).expect("copy cvault");
    let out = Command::new(bin.join("cvault"))
        .args(["token", "status"])
        .env("COLLABVAULT_CONF", &ws.conf)
        .env_remove("COLLABVAULT_MODULE")
        .output()
        .expect("run cvault");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("COLLABVAULT_MODULE"), "{stderr}");
}
