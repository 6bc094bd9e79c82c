//! Sessions and login state through the C ABI (PKCS#11 3.2 §5.6, §6.7): session states,
//! the login rules between users and session kinds, implicit logout, closing sessions,
//! and the random number generator.

#![allow(missing_docs)]

mod common;

use common::{Fixture, SO_PIN, USER_PIN};
use cryptoki::error::RvError;
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

fn state(s: &Session) -> SessionState {
    s.get_session_info().expect("C_GetSessionInfo").session_state()
}

/// `C_CloseAllSessions`, which `cryptoki` does not wrap: called through the module's own
/// export (the library is already loaded, so this is the same module instance).
#[allow(unsafe_code)]
fn close_all_sessions(slot: Slot) -> cryptoki_sys::CK_RV {
    type CloseAll = unsafe extern "C" fn(cryptoki_sys::CK_SLOT_ID) -> cryptoki_sys::CK_RV;
    // SAFETY: loading the module under test again only bumps its reference count; its
    // initializers have already run in this process.
    let lib = unsafe { libloading::Library::new(common::module_path()) }.expect("dlopen module");
    // SAFETY: C_CloseAllSessions has exactly this signature in the PKCS#11 ABI.
    let f = unsafe { lib.get::<CloseAll>(b"C_CloseAllSessions\0") }.expect("C_CloseAllSessions symbol");
    // SAFETY: the function takes a slot id by value and touches no caller memory.
    unsafe { f(slot.id()) }
}

#[test]
fn sessions_report_public_states_before_login() {
    let f = Fixture::new();
    let slot = f.init_token();
    let ro = f.pkcs11.open_ro_session(slot).expect("open ro");
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    let ro_info = ro.get_session_info().expect("info ro");
    let rw_info = rw.get_session_info().expect("info rw");
    assert_eq!(ro_info.session_state(), SessionState::RoPublic);
    assert!(!ro_info.read_write());
    assert_eq!(rw_info.session_state(), SessionState::RwPublic);
    assert!(rw_info.read_write());
    assert_eq!(ro_info.slot_id(), slot);
    let ti = f.pkcs11.get_token_info(slot).expect("token info");
    assert_eq!(ti.session_count(), Some(2));
    assert_eq!(ti.rw_session_count(), Some(1));
}

#[test]
fn a_user_login_in_one_session_applies_to_every_session_of_the_application() {
    let f = Fixture::new();
    let slot = f.init_token();
    let ro = f.pkcs11.open_ro_session(slot).expect("open ro");
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    ro.login(UserType::User, Some(&pin(USER_PIN))).expect("user login in the RO session");
    assert_eq!(state(&ro), SessionState::RoUser);
    assert_eq!(state(&rw), SessionState::RwUser);
    let later_rw = f.pkcs11.open_rw_session(slot).expect("open rw after login");
    let later_ro = f.pkcs11.open_ro_session(slot).expect("open ro after login");
    assert_eq!(state(&later_rw), SessionState::RwUser);
    assert_eq!(state(&later_ro), SessionState::RoUser);
    later_rw.logout().expect("logout from another session");
    for s in [&ro, &rw, &later_rw, &later_ro] {
        let st = state(s);
        assert!(matches!(st, SessionState::RoPublic | SessionState::RwPublic), "still logged in: {st:?}");
    }
}

#[test]
fn an_so_login_gives_rw_so_functions() {
    let f = Fixture::new();
    let slot = f.init_token();
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    rw.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    assert_eq!(state(&rw), SessionState::RwSecurityOfficer);
    let other = f.pkcs11.open_rw_session(slot).expect("open another rw");
    assert_eq!(state(&other), SessionState::RwSecurityOfficer);
}

#[test]
fn an_so_login_while_a_read_only_session_exists_is_session_read_only_exists() {
    let f = Fixture::new();
    let slot = f.init_token();
    let _ro = f.pkcs11.open_ro_session(slot).expect("open ro");
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    let rv = common::rv_of(rw.login(UserType::So, Some(&pin(SO_PIN))));
    assert_eq!(rv, RvError::SessionReadOnlyExists);
    assert_eq!(state(&rw), SessionState::RwPublic);
}

#[test]
fn opening_a_read_only_session_while_the_so_is_logged_in_is_session_read_write_so_exists() {
    let f = Fixture::new();
    let slot = f.init_token();
    let rw = f.pkcs11.open_rw_session(slot).expect("open rw");
    rw.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    let rv = common::rv_of(f.pkcs11.open_ro_session(slot));
    assert_eq!(rv, RvError::SessionReadWriteSoExists);
    // A read-write one is fine.
    f.pkcs11.open_rw_session(slot).expect("open rw while SO is logged in");
}

#[test]
fn a_second_user_login_is_user_already_logged_in() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::UserAlreadyLoggedIn);
    let other = f.pkcs11.open_rw_session(slot).expect("open another");
    assert_eq!(common::rv_of(other.login(UserType::User, Some(&pin(USER_PIN)))), RvError::UserAlreadyLoggedIn);
}

#[test]
fn an_so_login_while_the_user_is_logged_in_is_user_another_already_logged_in() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.user_session(slot);
    assert_eq!(common::rv_of(s.login(UserType::So, Some(&pin(SO_PIN)))), RvError::UserAnotherAlreadyLoggedIn);
    assert_eq!(state(&s), SessionState::RwUser);
}

#[test]
fn a_user_login_while_the_so_is_logged_in_is_user_another_already_logged_in() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_rw_session(slot).expect("open rw");
    s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::UserAnotherAlreadyLoggedIn);
}

#[test]
fn logout_when_nobody_is_logged_in_is_user_not_logged_in() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_ro_session(slot).expect("open");
    assert_eq!(common::rv_of(s.logout()), RvError::UserNotLoggedIn);
    s.login(UserType::User, Some(&pin(USER_PIN))).expect("login");
    s.logout().expect("logout");
    assert_eq!(common::rv_of(s.logout()), RvError::UserNotLoggedIn);
}

#[test]
fn closing_the_last_session_logs_the_user_out() {
    let f = Fixture::new();
    let slot = f.init_token();
    let a = f.user_session(slot);
    let b = f.pkcs11.open_rw_session(slot).expect("open second");
    a.close().expect("close first");
    assert_eq!(state(&b), SessionState::RwUser, "closing a session that is not the last logged out");
    b.close().expect("close last");
    let c = f.pkcs11.open_rw_session(slot).expect("open new");
    assert_eq!(state(&c), SessionState::RwPublic, "user still logged in after the last session closed");
    c.login(UserType::User, Some(&pin(USER_PIN))).expect("login again");
}

#[test]
fn close_all_sessions_closes_every_session_of_the_slot() {
    let f = Fixture::new();
    let slot = f.init_token();
    let sessions = [
        f.user_session(slot),
        f.pkcs11.open_ro_session(slot).expect("open ro"),
        f.pkcs11.open_rw_session(slot).expect("open rw"),
    ];
    assert_eq!(close_all_sessions(slot), cryptoki_sys::CKR_OK);
    for s in &sessions {
        assert_eq!(common::rv_of(s.get_session_info()), RvError::SessionHandleInvalid);
    }
    assert_eq!(f.pkcs11.get_token_info(slot).expect("token info").session_count(), Some(0));
    let s = f.pkcs11.open_rw_session(slot).expect("open after close all");
    assert_eq!(state(&s), SessionState::RwPublic, "close all left the user logged in");
}

#[test]
fn a_user_login_before_the_user_pin_is_set_is_user_pin_not_initialized() {
    let f = Fixture::new();
    let slot = f.slot();
    f.pkcs11.init_token(slot, &pin(SO_PIN), common::LABEL).expect("C_InitToken");
    let s = f.pkcs11.open_rw_session(slot).expect("open");
    assert_eq!(common::rv_of(s.login(UserType::User, Some(&pin(USER_PIN)))), RvError::UserPinNotInitialized);
    assert_eq!(state(&s), SessionState::RwPublic);
}

#[test]
fn generate_random_returns_the_requested_length_and_differs_between_calls() {
    let f = Fixture::new();
    let slot = f.init_token();
    let s = f.pkcs11.open_ro_session(slot).expect("open");
    let a = s.generate_random_vec(32).expect("random a");
    let b = s.generate_random_vec(32).expect("random b");
    assert_eq!(a.len(), 32);
    assert_eq!(b.len(), 32);
    assert_ne!(a, b);
    assert_ne!(a, vec![0u8; 32]);
    let big = s.generate_random_vec(4096).expect("random big");
    assert_eq!(big.len(), 4096);
    let mut buf = [0u8; 7];
    s.generate_random_slice(&mut buf).expect("random slice");
    assert_ne!(buf, [0u8; 7]);
}
