//! Token management through the C ABI: initialization, labels and flags, PIN handling,
//! failed-login lockout and its persistence, several workspaces, and PINs at rest.

#![allow(missing_docs)]

mod common;

use common::{Fixture, Workspace, LABEL, MAX_FAILED, SO_PIN, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;

fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

fn info(f: &Fixture, slot: Slot) -> TokenInfo {
    f.pkcs11.get_token_info(slot).expect("C_GetTokenInfo")
}

/// `C_Finalize`, then a fresh `C_Initialize` over the same workspace (`COLLABVAULT_CONF`
/// still names it). Every session must have been dropped before.
fn reload(f: &mut Fixture) {
    f.pkcs11.clone().finalize().expect("C_Finalize");
    f.pkcs11 = common::load();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The store's bytes at rest (the SQLite file and its WAL, or the server's files).
fn store_bytes(ws: &Workspace) -> Vec<u8> {
    ws.bytes_at_rest()
}

#[test]
fn a_fresh_token_is_reported_uninitialized_with_a_soft_root_model() {
    let f = Fixture::new();
    let ti = info(&f, f.slot());
    assert!(!ti.token_initialized(), "fresh token claims to be initialized");
    assert!(!ti.user_pin_initialized(), "fresh token claims a user PIN");
    assert!(ti.rng(), "CKF_RNG missing");
    assert!(ti.login_required(), "CKF_LOGIN_REQUIRED missing");
    assert_eq!(ti.model(), "soft root");
    assert!(!ti.user_pin_locked() && !ti.user_pin_count_low() && !ti.user_pin_final_try());
}

#[test]
fn an_initialized_token_reports_its_label_and_flags() {
    let f = Fixture::new();
    let slot = f.init_token();
    let ti = info(&f, slot);
    assert_eq!(ti.label(), LABEL);
    assert!(ti.token_initialized(), "CKF_TOKEN_INITIALIZED missing");
    assert!(ti.user_pin_initialized(), "CKF_USER_PIN_INITIALIZED missing");
    assert!(ti.rng() && ti.login_required());
    assert_eq!(ti.model(), "soft root");
    assert!(!ti.user_pin_locked() && !ti.user_pin_count_low() && !ti.user_pin_final_try());
}

#[test]
fn reinitializing_with_the_right_so_pin_wipes_token_objects() {
    let f = Fixture::new();
    let slot = f.init_token();
    {
        let s = f.user_session(slot);
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"doomed".to_vec()),
            Attribute::Value(b"payload".to_vec()),
        ])
        .expect("create token object");
        assert_eq!(s.find_objects(&[Attribute::Label(b"doomed".to_vec())]).expect("find").len(), 1);
    }
    f.pkcs11.init_token(slot, &pin(SO_PIN), "relabelled").expect("re-init with the right SO PIN");
    assert_eq!(info(&f, slot).label(), "relabelled");
    assert!(!info(&f, slot).user_pin_initialized(), "re-init must clear the user PIN");
    let s = f.pkcs11.open_ro_session(slot).expect("open");
    assert!(s.find_objects(&[]).expect("find all").is_empty(), "token objects survived C_InitToken");
}

#[test]
fn reinitializing_with_a_wrong_so_pin_is_pin_incorrect() {
    let f = Fixture::new();
    let slot = f.init_token();
    let rv = common::rv_of(f.pkcs11.init_token(slot, &pin("wrong-so-pin"), "other"));
    assert_eq!(rv, RvError::PinIncorrect);
    assert_eq!(info(&f, slot).label(), LABEL, "a refused re-init changed the label");
    assert!(info(&f, slot).user_pin_initialized(), "a refused re-init cleared the user PIN");
}

#[test]
fn init_token_while_a_session_is_open_is_session_exists() {
    let f = Fixture::new();
    let slot = f.init_token();
    let _s = f.pkcs11.open_ro_session(slot).expect("open");
    let rv = common::rv_of(f.pkcs11.init_token(slot, &pin(SO_PIN), LABEL));
    assert_eq!(rv, RvError::SessionExists);
}

#[test]
fn wrong_user_pins_lower_the_count_then_lock_the_pin() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    for attempt in 1..=MAX_FAILED {
        let rv = common::rv_of(s.login(UserType::User, Some(&pin("wrong-user-pin"))));
        assert_eq!(rv, RvError::PinIncorrect, "attempt {attempt}");
        let ti = info(&f, slot);
        match MAX_FAILED - attempt {
            0 => {
                assert!(ti.user_pin_locked(), "CKF_USER_PIN_LOCKED missing after {attempt} failures");
            }
            1 => {
                assert!(ti.user_pin_count_low(), "CKF_USER_PIN_COUNT_LOW missing after {attempt} failures");
                assert!(ti.user_pin_final_try(), "CKF_USER_PIN_FINAL_TRY missing after {attempt} failures");
                assert!(!ti.user_pin_locked());
            }
            _ => {
                assert!(ti.user_pin_count_low(), "CKF_USER_PIN_COUNT_LOW missing after {attempt} failures");
                assert!(!ti.user_pin_final_try(), "CKF_USER_PIN_FINAL_TRY too early (attempt {attempt})");
                assert!(!ti.user_pin_locked());
            }
        }
    }
    let rv = common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN))));
    assert_eq!(rv, RvError::PinLocked, "the right PIN must not open a locked token");
    assert!(info(&f, slot).user_pin_locked());
}

#[test]
fn a_user_pin_lockout_persists_across_finalize_and_reload() {
    let mut f = Fixture::new();
    let slot = f.init_token();
    {
        let s = f.pkcs11.open_rw_session(slot).expect("open");
        for _ in 0..MAX_FAILED {
            assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin("nope-nope")))), RvError::PinIncorrect);
        }
    }
    reload(&mut f);
    let slot = f.slot();
    assert!(info(&f, slot).user_pin_locked(), "lockout forgotten after reload");
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::PinLocked);
}

#[test]
fn a_successful_login_before_lockout_resets_the_failure_counter() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    for _ in 0..MAX_FAILED - 1 {
        assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin("nope-nope")))), RvError::PinIncorrect);
    }
    assert!(info(&f, slot).user_pin_final_try());
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("right PIN before lockout");
    let ti = info(&f, slot);
    assert!(!ti.user_pin_count_low() && !ti.user_pin_final_try() && !ti.user_pin_locked(), "counter not reset");
    s.logout().expect("logout");
    // A full allowance again: MAX_FAILED - 1 more failures do not lock.
    for _ in 0..MAX_FAILED - 1 {
        assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin("nope-nope")))), RvError::PinIncorrect);
    }
    assert!(!info(&f, slot).user_pin_locked());
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("right PIN after the reset");
}

#[test]
fn set_pin_changes_the_user_pin() {
    let mut f = Fixture::new();
    let slot = f.init_token();
    {
        let s = f.user_session(slot);
        s.set_pin(&pin(USER_PIN), &pin("new-user-pin")).expect("C_SetPIN");
        s.logout().expect("logout");
        assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::PinIncorrect);
        s.login(UserType::User, Some(&pin("new-user-pin"))).expect("login with the new PIN");
    }
    // Also after a reload: the new PIN is what the store keeps.
    reload(&mut f);
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::PinIncorrect);
    s.login(UserType::User, Some(&pin("new-user-pin"))).expect("login with the new PIN again");
}

#[test]
fn set_pin_with_a_wrong_old_pin_is_pin_incorrect() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    let rv = common::rv_of(s.set_pin(&pin("not-the-pin"), &pin("new-user-pin")));
    assert_eq!(rv, RvError::PinIncorrect);
    s.logout().expect("logout");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("old PIN still works");
}

#[test]
fn set_pin_in_a_read_only_session_is_session_read_only() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_ro_session(slot).expect("open ro");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    let rv = common::rv_of(s.set_pin(&pin(USER_PIN), &pin("new-user-pin")));
    assert_eq!(rv, RvError::SessionReadOnly);
    s.logout().expect("logout");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("PIN unchanged");
}

#[test]
fn pins_shorter_than_the_minimum_are_pin_len_range() {
    let f = Fixture::new();
    let slot = f.slot();
    assert_eq!(common::rv_of(f.pkcs11.init_token(slot, &pin("123"), LABEL)), RvError::PinLenRange);
    assert!(!info(&f, slot).token_initialized(), "a refused C_InitToken initialized the token");
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    assert_eq!(common::rv_of(s.init_pin(&pin("abc"))), RvError::PinLenRange);
    s.logout().expect("logout");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("user login");
    assert_eq!(common::rv_of(s.set_pin(&pin(USER_PIN), &pin("xyz"))), RvError::PinLenRange);
    s.logout().expect("logout");
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("PIN unchanged");
}

#[test]
fn two_configured_workspaces_show_two_slots_with_their_labels() {
    let _serial = common::lock();
    let _ws = Workspace::with_workspaces(&[("eng", Some("Engineering")), ("legal", None)]);
    let p = common::load();
    let slots = p.get_all_slots().expect("slots");
    assert_eq!(slots.len(), 2);
    assert_eq!(p.get_slots_with_token().expect("slots with token").len(), 2);
    let first = p.get_token_info(slots[0]).expect("token info 0");
    assert_eq!(first.label(), "Engineering");
    assert!(!first.token_initialized());
    let second = p.get_token_info(slots[1]).expect("token info 1");
    assert_eq!(second.label(), "");
    assert_ne!(first.serial_number(), second.serial_number(), "two tokens share a serial number");
    // The tokens are independent: initializing one leaves the other alone.
    p.init_token(slots[1], &pin(SO_PIN), "Legal").expect("init second");
    assert!(p.get_token_info(slots[1]).expect("info").token_initialized());
    assert!(!p.get_token_info(slots[0]).expect("info").token_initialized());
    assert_eq!(p.get_token_info(slots[0]).expect("info").label(), "Engineering");
    p.finalize().expect("C_Finalize");
}

#[test]
fn pins_are_not_stored_in_the_clear() {
    let f = Fixture::new();
    let slot = f.init_token();
    // Exercise every PIN path once more so any leak would reach the file.
    {
        let s = f.user_session(slot);
        s.set_pin(&pin(USER_PIN), &pin(USER_PIN)).expect("C_SetPIN to the same PIN");
    }
    let bytes = store_bytes(&f.ws);
    assert!(bytes.len() > 1024, "store file unexpectedly small");
    assert!(!contains(&bytes, SO_PIN.as_bytes()), "SO PIN found in the store");
    assert!(!contains(&bytes, USER_PIN.as_bytes()), "user PIN found in the store");
    // Nor in the log.
    let log = f.ws.log();
    assert!(!log.contains(SO_PIN) && !log.contains(USER_PIN), "a PIN was logged");
}
