//! Failures that real clients (OpenSSL's pkcs11 engine, Java SunPKCS11, NSS, p11-kit, the
//! programs in `examples/`) revealed in the module, each pinned through the raw C ABI so
//! it cannot come back. `conformance/` drives the clients themselves.
//!
//! `unsafe` is allowed here because calling a C ABI is unsafe by definition: every call
//! goes through `cryptoki_sys::Pkcs11` (raw `extern "C"` function pointers) with pointers
//! to locals this file owns, as a C application would make them.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]

mod common;

use std::os::fd::AsRawFd;
use std::ptr::null_mut;

use cryptoki_sys::*;

/// Runs `f` with this process's stderr (fd 2) sent to a file, and returns what was written.
fn capture_stderr<T>(dir: &std::path::Path, f: impl FnOnce() -> T) -> (T, String) {
    let path = dir.join("stderr.txt");
    let file = std::fs::File::create(&path).expect("create stderr file");
    let saved = unsafe { libc::dup(2) };
    assert!(saved >= 0, "dup(2)");
    assert!(unsafe { libc::dup2(file.as_raw_fd(), 2) } >= 0, "dup2 onto stderr");
    let out = f();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    (out, std::fs::read_to_string(&path).unwrap_or_default())
}

/// Found by `examples/config/collabvault.toml`: with `log_file` in a directory that does not
/// exist, `C_Initialize` failed with CKR_GENERAL_ERROR and said nothing anywhere.
#[test]
fn an_unopenable_log_file_fails_initialize_with_a_line_on_stderr() {
    let _serial = common::lock();
    let ws = common::Workspace::new();
    let log = ws.dir.path().join("no-such-dir").join("module.log");
    let conf = ws.dir.path().join("bad-log.toml");
    let text =
        format!("store_dir = {:?}\nlog_file = {log:?}\n[[workspace]]\nname = \"main\"\n", ws.dir.path().join("store"));
    std::fs::write(&conf, text).expect("write config");
    std::env::set_var("COLLABVAULT_CONF", &conf);
    let lib = unsafe { Pkcs11::new(common::module_path()) }.expect("load module");

    let (rv, stderr) = capture_stderr(ws.dir.path(), || unsafe { lib.C_Initialize(null_mut()) });
    assert_eq!(rv, CKR_GENERAL_ERROR, "C_Initialize with an unopenable log file");
    assert!(
        stderr.contains("cannot open log file") && stderr.contains("no-such-dir"),
        "stderr does not name the problem: {stderr:?}"
    );

    std::env::set_var("COLLABVAULT_CONF", &ws.conf);
    assert_eq!(unsafe { lib.C_Initialize(null_mut()) }, CKR_OK, "C_Initialize with a good config");
    assert_eq!(unsafe { lib.C_Finalize(null_mut()) }, CKR_OK, "C_Finalize");
}
