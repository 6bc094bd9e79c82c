//! PINs under attack through the C ABI: parallel guessing against the lockout, PIN
//! length and the KDF's strength, the store's file permissions, and PIN records tampered
//! with in the store file.

mod common;
#[path = "common/legacy.rs"]
mod legacy;

use std::sync::Barrier;

use common::{Fixture, MAX_FAILED, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

/// Runs `n` `C_Login`s with `guess` at once, each in its own session and thread; the
/// return codes (CKR_OK as `None`).
fn parallel_logins(f: &Fixture, slot: cryptoki::slot::Slot, n: usize, guess: &str) -> Vec<Option<RvError>> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let barrier = &barrier;
                let pkcs11 = f.pkcs11.clone();
                scope.spawn(move || {
                    let s = pkcs11.open_ro_session(slot).expect("open session");
                    barrier.wait();
                    let rv = match s.login(UserType::User, Some(&pin(guess))) {
                        Ok(()) => None,
                        Err(cryptoki::error::Error::Pkcs11(rv, _)) => Some(rv),
                        Err(e) => panic!("C_Login: {e}"),
                    };
                    // Keep the session (and so any login) until every thread has answered.
                    barrier.wait();
                    rv
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

#[test]
fn parallel_wrong_pins_get_no_more_verdicts_than_the_lockout_allows() {
    let f = Fixture::new();
    let slot = f.init_token();
    let results = parallel_logins(&f, slot, 8, "wrong-pin-0000");
    let incorrect = results.iter().filter(|r| **r == Some(RvError::PinIncorrect)).count();
    let locked = results.iter().filter(|r| **r == Some(RvError::PinLocked)).count();
    assert!(
        incorrect <= MAX_FAILED as usize,
        "{incorrect} parallel guesses were checked against a lockout of {MAX_FAILED}: {results:?}"
    );
    assert_eq!(incorrect + locked, results.len(), "unexpected codes: {results:?}");
    // The right PIN, in parallel, after the lockout: nobody gets in.
    let results = parallel_logins(&f, slot, 4, USER_PIN);
    assert!(results.iter().all(|r| *r == Some(RvError::PinLocked)), "a locked PIN let a login through: {results:?}");
}

#[test]
fn pins_shorter_than_eight_bytes_are_pin_len_range_and_the_minimum_is_reported() {
    let f = Fixture::new();
    let slot = f.slot();
    assert_eq!(f.pkcs11.get_token_info(slot).expect("info").min_pin_length(), 8, "ulMinPinLen");
    let rv = common::rv_of(f.pkcs11.init_token(slot, &pin("1234567"), common::LABEL));
    assert_eq!(rv, RvError::PinLenRange, "a 7-byte SO PIN was accepted");
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("rw");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
    assert_eq!(common::rv_of(s.set_pin(&pin(USER_PIN), &pin("abcdefg"))), RvError::PinLenRange);
    s.set_pin(&pin(USER_PIN), &pin("abcdefgh")).expect("an 8-byte PIN is accepted");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_store_directory_and_its_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new();
    let slot = f.init_token();
    drop(f.user_session(slot));
    let file = f.ws.store_file();
    let dir = file.parent().expect("store dir").to_path_buf();
    let wal = dir.join("collabvault.sqlite3-wal");
    let shm = dir.join("collabvault.sqlite3-shm");
    assert_eq!(mode(&dir), 0o700, "store directory");
    for p in [&file, &wal, &shm] {
        if p.exists() {
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
    }
    // A store left readable (an older version, a restored backup) is fixed on open.
    f.pkcs11.clone().finalize().expect("C_Finalize");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod file");
    f.pkcs11 = common::load();
    drop(f.user_session(slot));
    assert_eq!(mode(&dir), 0o700, "store directory after reopening");
    assert_eq!(mode(&file), 0o600, "store file after reopening");
    assert!(f.ws.log().contains("permissions"), "no log line about the fixed permissions");
}

/// The committed soft-root store of the previous release (0f68ed4) is upgraded in place
/// by the first logins (PIN records to the current format and KDF, master key rows MACed),
/// losing nothing: every key, master key version and wrap record still opens, twice.
#[test]
fn a_soft_root_store_of_the_previous_release_is_upgraded_by_its_logins() {
    let _serial = common::lock();
    let fixture = legacy::fixture_dir("soft");
    let m = legacy::read_manifest(&fixture);
    assert!(m.hsm.is_none(), "a soft-root fixture");
    let ws = common::Workspace::new();
    common::copy_tree(&fixture.join("store"), ws.store_file().parent().expect("store dir"));
    legacy::assert_legacy(&ws.store_file());
    for _ in 0..2 {
        let p = common::load();
        legacy::check_contents(&p, &m);
        p.finalize().expect("C_Finalize");
        legacy::assert_upgraded(&ws.store_file(), &m);
    }
}

/// Writes the soft-root fixture above through the previous release's module
/// (`CV_PREVIOUS_MODULE`) into [`legacy::fixture_dir`].
/// Run by scripts/make-legacy-fixtures.sh.
#[test]
#[ignore = "writes a fixture: run by scripts/make-legacy-fixtures.sh"]
fn write_legacy_fixture() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let _serial = common::lock();
    let previous = std::env::var_os("CV_PREVIOUS_MODULE").expect("CV_PREVIOUS_MODULE: the previous release's .so");
    let out = legacy::fixture_dir("soft");
    let ws = common::Workspace::new();
    let old = Pkcs11::new(previous).expect("load the previous module");
    old.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("init");
    let m = legacy::populate(&old, "soft", None);
    old.finalize().expect("finalize the previous module");
    legacy::write(&out, ws.store_file().parent().expect("store dir"), None, &m);
    legacy::assert_legacy(&out.join("store/collabvault.sqlite3"));
}
