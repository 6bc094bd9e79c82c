//! PINs under attack through the C ABI: parallel guessing against the lockout, PIN
//! length and the KDF's strength, the store's file permissions, and PIN records tampered
//! with in the store file.

mod common;

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
