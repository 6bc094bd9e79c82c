//! Threshold-unlocked master keys through the C ABI, with a real SoftHSM2 token as the
//! root: a 2-of-3 custodian split, locked master keys, approvals by `C_LoginUser`, the
//! unlock grant across processes, lock, expiry, destroy guarded by a quorum, and the
//! refusals (k-1 custodians, a repeated custodian, a wrong passphrase, a lowered
//! threshold in the store file), each audited.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]

mod common;

use common::quorum::{rv_among, ulong_attr, vendor, Setup};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::*;

const CKM_CV_WRAP_RECORD: CK_ULONG = 0xC356_0001;
const CKM_CV_ROTATE_MASTER: CK_ULONG = 0xC356_0003;
const CKA_CV_LIFECYCLE: CK_ULONG = 0xC356_0003;
const CKA_CV_LOCKED: CK_ULONG = 0xC356_000B;
const CKA_CV_UNLOCK_EXPIRES: CK_ULONG = 0xC356_000C;
const CKR_CV_LOCKED: CK_RV = 0xC356_0001;
const CKR_CV_QUORUM_REQUIRED: CK_RV = 0xC356_0002;
const CKR_CV_QUORUM_FAILED: CK_RV = 0xC356_0003;

/// The return code of a call, as a `CK_RV` among those these tests expect.
fn rv_of<T>(r: cryptoki::error::Result<T>) -> CK_RV {
    rv_among(
        r,
        &[
            CKR_CV_LOCKED,
            CKR_CV_QUORUM_REQUIRED,
            CKR_CV_QUORUM_FAILED,
            CKR_ATTRIBUTE_VALUE_INVALID,
            CKR_DEVICE_ERROR,
            CKR_USER_ALREADY_LOGGED_IN,
            CKR_USER_NOT_LOGGED_IN,
            CKR_ACTION_PROHIBITED,
            CKR_ARGUMENTS_BAD,
            CKR_CV_LEGAL_HOLD,
            CKR_FUNCTION_FAILED,
            CKR_KEY_FUNCTION_NOT_PERMITTED,
        ],
    )
}

fn master(s: &Session) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find")[0]
}

/// Wraps a fresh session AES key under the current master key: the call a locked
/// workspace refuses.
fn wrap(s: &Session) -> CK_RV {
    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Token(false), Attribute::Extractable(true)],
        )
        .expect("keygen");
    rv_of(s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(s), key))
}

fn locked(s: &Session) -> bool {
    let attrs = s.get_attributes(master(s), &[AttributeType::VendorDefined(CKA_CV_LOCKED)]).expect("read");
    matches!(&attrs[0], Attribute::VendorDefined((_, v)) if v == &[1])
}

#[test]
fn without_a_quorum_nothing_changes_and_the_first_login_makes_a_kek() {
    let mut s = Setup::new("");
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_OK);
    assert!(!locked(&user));
    drop(user);
    let kek = s.store().kek("main").expect("read").expect("a KEK row");
    assert_eq!((kek.generation, kek.threshold), (1, 0));
    assert!(kek.sealed.is_some());
    let sealed = s.store().masters("main").expect("masters")[0].sealed.clone().expect("v1 sealed");
    // Root sealing around KEK sealing around the storage key's: longer than without.
    assert!(sealed.len() > 100, "v1 is not sealed under the KEK ({} bytes)", sealed.len());
    assert!(s.actions().iter().any(|a| a == "quorum-kek"));
}

#[test]
fn k_minus_one_custodians_cannot_unlock_k_can_and_a_repeat_counts_once() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split 2-of-3");
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_CV_LOCKED, "a fresh quorum starts locked");
    assert!(locked(&user));
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK, "a repeat is accepted");
    assert_eq!(wrap(&user), CKR_CV_LOCKED, "alice twice is one custodian");
    assert_eq!(s.approve("bob", "not bob's passphrase"), CKR_PIN_INCORRECT);
    assert_eq!(s.approve("mallory", "anything at all"), CKR_PIN_INCORRECT);
    assert_eq!(wrap(&user), CKR_CV_LOCKED);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    assert_eq!(wrap(&user), CKR_OK, "two distinct custodians unlock");
    assert!(!locked(&user));
    let attrs = user.get_attributes(master(&user), &[AttributeType::VendorDefined(CKA_CV_UNLOCK_EXPIRES)]).unwrap();
    let Attribute::VendorDefined((_, v)) = &attrs[0] else { panic!("expiry") };
    let expires = CK_ULONG::from_ne_bytes(v.as_slice().try_into().unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as CK_ULONG;
    assert!((now + 3500..=now + 3700).contains(&expires), "expires {expires}, now {now}");
    drop(user);
    let actions = s.actions();
    for want in ["quorum-split", "quorum-request", "quorum-approve", "quorum-unlock"] {
        assert!(actions.iter().any(|a| a == want), "no {want} entry in {actions:?}");
    }
    let rows = s.store().audit_rows().unwrap();
    let repeats = rows.iter().filter(|r| r.event.object.as_deref().is_some_and(|o| o.contains("counted once")));
    assert_eq!(repeats.count(), 1);
    let verdict = collabvault_pkcs11::audit::verify(&rows, None);
    assert!(matches!(verdict, collabvault_pkcs11::audit::Verdict::Intact { .. }), "{verdict:?}");
}

#[test]
fn a_grant_serves_another_process_until_a_lock_or_its_expiry() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    assert_eq!(s.approve("carol", "carol passphrase 333"), CKR_OK);
    s.offline();
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_OK, "the grant unlocks a process no custodian touched");
    let lock = |v: u8| {
        user.update_attributes(
            master(&user),
            &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LOCKED), vec![v]))],
        )
    };
    lock(1).expect("lock");
    assert_eq!(wrap(&user), CKR_CV_LOCKED);
    assert_eq!(rv_of(lock(0)), CKR_ATTRIBUTE_VALUE_INVALID, "only custodians unlock");
    drop(user);
    assert!(s.actions().iter().any(|a| a == "quorum-lock"));
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("carol", "carol passphrase 333"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_OK);
    drop(user);
    // The grant's row says it expired (its sealed KEK is bound to the expiry, so the row
    // cannot be edited to last longer: the next test).
    let edited = s.sql("UPDATE unlock_grants SET expires_at = expires_at - 7200 RETURNING 1");
    assert_eq!(edited, "1", "one grant edited");
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_CV_LOCKED, "an expired grant opens nothing");
    drop(user);
    assert!(s.actions().iter().any(|a| a == "quorum-expiry"));
    assert!(s.store().grant("main").unwrap().is_none());
}

#[test]
fn a_grant_extended_in_the_store_file_does_not_open() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    assert_eq!(s.sql("UPDATE unlock_grants SET expires_at = expires_at + 86400 RETURNING 1"), "1");
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_DEVICE_ERROR, "the HSM refuses a grant whose expiry was edited");
}

#[test]
fn destroying_a_version_needs_its_own_approved_request_used_once() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    user.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    let set = |user: &Session, h: ObjectHandle, state: CK_ULONG| {
        rv_of(user.update_attributes(h, &[ulong_attr(CKA_CV_LIFECYCLE, state)]))
    };
    let h = user.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).unwrap()[0];
    assert_eq!(set(&user, h, 3), CKR_OK, "retiring is not guarded");
    assert_eq!(set(&user, h, 4), CKR_CV_QUORUM_REQUIRED);
    assert_eq!(set(&user, h, 4), CKR_CV_QUORUM_REQUIRED, "asking again finds the same request");
    drop(user);
    let requests = s.store().requests("main").unwrap();
    let destroys: Vec<_> = requests.iter().filter(|r| r.action == "destroy-v1").collect();
    assert_eq!(destroys.len(), 1, "one request, however often asked");
    let id = destroys[0].id;
    assert_eq!(s.approve(&format!("alice:{id}"), "alice passphrase 1"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    let h = user.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).unwrap()[0];
    assert_eq!(set(&user, h, 4), CKR_CV_QUORUM_REQUIRED, "one approval is not a quorum");
    assert_eq!(s.approve(&format!("carol:{id}"), "carol passphrase 333"), CKR_OK);
    assert_eq!(set(&user, h, 4), CKR_OK, "approved: destroyed");
    assert_eq!(s.approve(&format!("bob:{id}"), "bob passphrase 22"), CKR_ARGUMENTS_BAD, "used once");
    assert_eq!(s.approve("bob:99999", "bob passphrase 22"), CKR_ARGUMENTS_BAD);
    drop(user);
    assert!(s.actions().iter().any(|a| a == "quorum-used"));
}

#[test]
fn a_threshold_lowered_in_the_store_file_fails_the_quorum_and_uses_no_wrong_key() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.sql("UPDATE workspace_keks SET threshold = 1 RETURNING 1"), "1");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_CV_QUORUM_FAILED);
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_CV_LOCKED);
    drop(user);
    assert!(s.actions().iter().any(|a| a == "quorum-failed"));
    assert!(s.store().grant("main").unwrap().is_none());
}

#[test]
fn approvals_past_their_request_expiry_count_for_nothing() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert!(!s.sql("UPDATE quorum_requests SET expires_at = expires_at - 100000 RETURNING 1").is_empty());
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_CV_LOCKED, "alice's approval expired with its request");
    assert_eq!(s.approve("carol", "carol passphrase 333"), CKR_OK);
    assert_eq!(wrap(&user), CKR_OK);
}

#[test]
fn wrong_passphrases_lock_a_custodian_out() {
    let mut s = Setup::new("unlock_hours = 1\nmax_failed_approvals = 2");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "wrong one"), CKR_PIN_INCORRECT);
    assert_eq!(s.approve("alice", "wrong two"), CKR_PIN_INCORRECT);
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_PIN_LOCKED);
}

#[test]
fn changing_the_quorum_needs_the_quorum_and_makes_old_shares_useless() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    assert_eq!(rv_of(s.split(3)), CKR_CV_QUORUM_REQUIRED);
    let share = |s: &mut Setup| -> Vec<u8> {
        let custodians = s.store().custodians("main").expect("custodians");
        custodians.into_iter().find(|c| c.name == "alice").expect("alice").sealed_share
    };
    let before = share(&mut s);
    let change = s.store().requests("main").unwrap().into_iter().find(|r| r.action == "change-quorum").unwrap();
    assert_eq!(s.approve(&format!("alice:{}", change.id), "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve(&format!("bob:{}", change.id), "bob passphrase 22"), CKR_OK);
    s.split(3).expect("re-split 3-of-3 with the quorum's approval");
    assert_ne!(before, share(&mut s));
    let kek = s.store().kek("main").unwrap().unwrap();
    assert_eq!((kek.generation, kek.threshold), (3, 3));
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_CV_LOCKED, "a new KEK starts locked");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    assert_eq!(wrap(&user), CKR_CV_LOCKED, "3-of-3 now");
    assert_eq!(s.approve("carol", "carol passphrase 333"), CKR_OK);
    assert_eq!(wrap(&user), CKR_OK);
}

#[test]
fn a_custodian_login_without_a_quorum_or_name_is_refused() {
    let mut s = Setup::new("");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_USER_TYPE_INVALID);
    assert_eq!(s.approve("", "alice passphrase 1"), CKR_ARGUMENTS_BAD);
    // CKU_USER through C_LoginUser is C_Login's (the username is not looked at).
    let slot = s.slot();
    let session = s.p().open_rw_session(slot).unwrap();
    let login_user = s.api.f.C_LoginUser.unwrap();
    let mut pin = common::USER_PIN.as_bytes().to_vec();
    let mut name = b"anyone".to_vec();
    let rv = unsafe {
        login_user(session.handle(), CKU_USER, pin.as_mut_ptr(), pin.len() as CK_ULONG, name.as_mut_ptr(), 6)
    };
    assert_eq!(rv, CKR_OK);
    let again = session.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())));
    assert_eq!(rv_of(again), CKR_USER_ALREADY_LOGGED_IN);
}

#[test]
fn reinitializing_a_quorum_token_needs_the_quorum() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    let slot = s.slot();
    let rv = rv_of(s.p().init_token(slot, &AuthPin::new(common::SO_PIN.into()), "again"));
    assert_eq!(rv, CKR_CV_QUORUM_REQUIRED);
    assert!(s.store().requests("main").unwrap().iter().any(|r| r.action == "init-token"));
}

const CKA_CV_LEGAL_HOLD: CK_ULONG = 0xC356_000D;
const CKR_CV_LEGAL_HOLD: CK_RV = 0xC356_0004;

fn set_hold(s: &Session, on: bool, reason: &str) -> CK_RV {
    let mut template =
        vec![Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LEGAL_HOLD), vec![u8::from(on)]))];
    if !reason.is_empty() {
        template.push(Attribute::Label(reason.as_bytes().to_vec()));
    }
    rv_of(s.update_attributes(master(s), &template))
}

fn held(s: &Session) -> bool {
    let attrs = s.get_attributes(master(s), &[AttributeType::VendorDefined(CKA_CV_LEGAL_HOLD)]).expect("read");
    matches!(&attrs[0], Attribute::VendorDefined((_, v)) if v == &[1])
}

#[test]
fn a_legal_hold_blocks_retiring_destroying_and_deleting_until_the_quorum_lifts_it() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    let stored = user
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Token(true), Attribute::Label(b"case file key".to_vec())],
        )
        .expect("a stored DEK");
    user.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    user.generate_key(&vendor(0xC356_0004), &[]).expect("re-wrap the stored DEK to v2");
    assert_eq!(set_hold(&user, true, "case 7731"), CKR_USER_NOT_LOGGED_IN, "only the SO sets a hold");
    user.logout().unwrap();
    drop(user);
    let so = s.session(UserType::So, common::SO_PIN);
    assert_eq!(set_hold(&so, true, "case 7731"), CKR_OK);
    assert!(held(&so));
    so.logout().unwrap();
    let user = s.session(UserType::User, common::USER_PIN);
    let v1 = user.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).unwrap()[0];
    let retire = rv_of(user.update_attributes(v1, &[ulong_attr(CKA_CV_LIFECYCLE, 3)]));
    assert_eq!(retire, CKR_CV_LEGAL_HOLD);
    assert_eq!(rv_of(user.destroy_object(stored)), CKR_CV_LEGAL_HOLD, "no stored DEK is deleted");
    user.logout().unwrap();
    drop(user);
    let so = s.session(UserType::So, common::SO_PIN);
    assert_eq!(set_hold(&so, false, ""), CKR_CV_QUORUM_REQUIRED, "lifting needs the quorum");
    drop(so);
    let lift = s.store().requests("main").unwrap().into_iter().find(|r| r.action == "lift-hold").unwrap();
    assert_eq!(s.approve(&format!("bob:{}", lift.id), "bob passphrase 22"), CKR_OK);
    assert_eq!(s.approve(&format!("carol:{}", lift.id), "carol passphrase 333"), CKR_OK);
    let so = s.session(UserType::So, common::SO_PIN);
    assert_eq!(set_hold(&so, false, ""), CKR_OK);
    assert!(!held(&so));
    so.logout().unwrap();
    let user = s.session(UserType::User, common::USER_PIN);
    let v1 = user.find_objects(&[Attribute::Label(b"collabvault-master-v1".to_vec())]).unwrap()[0];
    assert_eq!(rv_of(user.update_attributes(v1, &[ulong_attr(CKA_CV_LIFECYCLE, 3)])), CKR_OK, "retired once lifted");
    drop(user);
    let rows = s.store().audit_rows().unwrap();
    let holds: Vec<_> = rows.iter().filter(|r| r.event.action == "legal-hold").collect();
    assert_eq!(holds.len(), 2, "set and lift are audited");
    assert!(holds[0].event.object.as_deref().unwrap_or_default().contains("case 7731"));
}

#[test]
fn without_a_quorum_the_so_lifts_a_hold_alone() {
    let mut s = Setup::new("");
    let so = s.session(UserType::So, common::SO_PIN);
    assert_eq!(set_hold(&so, true, "audit season"), CKR_OK);
    drop(so);
    let slot = s.slot();
    let wipe = rv_of(s.p().init_token(slot, &AuthPin::new(common::SO_PIN.into()), "wipe"));
    assert_eq!(wipe, CKR_CV_LEGAL_HOLD, "re-initializing would destroy every version");
    let so = s.session(UserType::So, common::SO_PIN);
    assert_eq!(set_hold(&so, false, ""), CKR_OK);
    assert!(!held(&so));
}

#[test]
fn the_custodians_hook_hears_of_unlocks_and_a_required_one_that_fails_blocks_them() {
    let seen = tempfile::tempdir().unwrap();
    let file = seen.path().join("notices.jsonl");
    let hook = format!("notify_command = [\"sh\", \"-c\", \"cat >> {}; echo >> {}\"]", file.display(), file.display());
    let mut s = Setup::new(&format!("unlock_hours = 1\n{hook}"));
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let notices = std::fs::read_to_string(&file).expect("the hook ran");
    let events: Vec<String> = notices
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON document")["event"].to_string())
        .collect();
    assert_eq!(events, ["\"quorum-split\"", "\"unlock\""]);
    drop(s);

    let mut s = Setup::new("unlock_hours = 1\nnotify_command = [\"false\"]\nnotify_required = true");
    assert_eq!(rv_of(s.split(2)), CKR_FUNCTION_FAILED, "a required notification that fails refuses the split");
    let mut s2 = {
        drop(s);
        Setup::new("unlock_hours = 1\nnotify_command = [\"false\"]")
    };
    s2.split(2).expect("a failing hook that is not required lets the split go ahead");
    assert_eq!(s2.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s2.approve("carol", "carol passphrase 333"), CKR_OK);
    let user = s2.session(UserType::User, common::USER_PIN);
    assert_eq!(wrap(&user), CKR_OK);
    drop(user);
    let failed = s2.store().audit_rows().unwrap().into_iter().filter(|r| r.event.action == "quorum-notify").count();
    assert_eq!(failed, 2, "the split's and the unlock's failed notifications are audited");
}

const CKA_CV_EMERGENCY_ACCESS: CK_ULONG = 0xC356_000E;

fn ask_emergency(s: &Session, name: &str) -> CK_RV {
    let attr =
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_EMERGENCY_ACCESS), name.as_bytes().to_vec()));
    rv_of(s.update_attributes(master(s), &[attr]))
}

#[test]
fn an_emergency_window_lets_a_blocked_version_unwrap_each_use_audited_until_it_closes() {
    let mut s = Setup::new(
        "unlock_hours = 1\nemergency_minutes = 30\n[audit]\nalert_unwraps_per_minute = 3\nblock_on_alert = true",
    );
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    let dek = user
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Token(false), Attribute::Extractable(true)],
        )
        .expect("a DEK");
    let record = user.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&user), dek).expect("wrap");
    let unwrap =
        |u: &Session| rv_of(u.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(u), &record, &[Attribute::Token(false)]));
    // The burst blocks v1.
    let mut refused = CKR_OK;
    for _ in 0..10 {
        refused = unwrap(&user);
        if refused != CKR_OK {
            break;
        }
    }
    assert_eq!(refused, CKR_KEY_FUNCTION_NOT_PERMITTED, "the alert blocked the version");
    assert_eq!(ask_emergency(&user, "dana"), CKR_CV_QUORUM_REQUIRED);
    assert_eq!(unwrap(&user), CKR_KEY_FUNCTION_NOT_PERMITTED, "asking opens nothing by itself");
    user.logout().unwrap();
    drop(user);
    let request =
        s.store().requests("main").unwrap().into_iter().find(|r| r.action == "emergency-access:dana").unwrap();
    assert_eq!(s.approve(&format!("alice:{}", request.id), "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve(&format!("carol:{}", request.id), "carol passphrase 333"), CKR_OK);
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(ask_emergency(&user, "erin"), CKR_CV_QUORUM_REQUIRED, "approval for dana is not approval for erin");
    assert_eq!(ask_emergency(&user, "dana"), CKR_OK, "approved: the window opens");
    assert_eq!(unwrap(&user), CKR_OK);
    assert_eq!(unwrap(&user), CKR_OK);
    user.logout().unwrap();
    drop(user);
    let uses = s.store().audit_rows().unwrap().into_iter().filter(|r| r.event.action == "emergency-unwrap").count();
    assert!(uses >= 2, "each use in the window is its own entry ({uses})");
    assert!(!s.sql("UPDATE emergency_windows SET expires_at = 1 RETURNING 1").is_empty());
    let user = s.session(UserType::User, common::USER_PIN);
    assert_eq!(unwrap(&user), CKR_KEY_FUNCTION_NOT_PERMITTED, "the window closed at its expiry");
}
