//! Quorum requests opened ahead and cancelled, through `cvault` (which reaches the
//! module's C ABI: `CKA_CV_QUORUM_REQUEST` and `CKA_CV_CANCEL_REQUEST` on the master key
//! object) against a workspace whose root is a real SoftHSM2 token and whose KEK is split
//! 2-of-3: a request made ahead and approved k-of-n is what the guarded operation then
//! uses; a cancelled request's approvals are worth nothing; only its requester or the SO
//! cancels it; an expired one takes no approvals; every step is audited.

#![allow(missing_docs)]

mod common;

use common::cvault::Cvault;
use serde_json::Value;

fn cli() -> Cvault {
    let cli = Cvault::new("[quorum]\nunlock_hours = 1\napproval_hours = 6\n[[workspace]]\nname = \"eng\"\n")
        .env("CV_CUSTODIAN_ALICE", "alice passphrase 1")
        .env("CV_CUSTODIAN_BOB", "bob passphrase 22")
        .env("CV_CUSTODIAN_CAROL", "carol passphrase 333");
    cli.init();
    let three = ["--custodian", "alice", "--custodian", "bob", "--custodian", "carol"];
    cli.ok(&[&["custodians", "init", "--threshold", "2"][..], &three].concat());
    cli
}

/// A 2-of-3 workspace, unlocked, with v1 retired behind a rotation: ready for a destroy.
fn with_retired_v1() -> Cvault {
    let cli = cli();
    cli.ok(&["unlock", "--custodian", "alice", "--custodian", "bob"]);
    cli.ok(&["master", "rotate"]);
    cli.ok(&["master", "retire", "--version", "1"]);
    cli
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `cvault quorum request ... --json`'s request number.
fn request(cli: &Cvault, args: &[&str]) -> String {
    let out = json(&cli.ok(&[&["quorum", "request"][..], args, &["--json"]].concat()));
    let id = out["request"].as_u64().expect("a request number");
    assert!(id > 0, "{out}");
    id.to_string()
}

fn approve(cli: &Cvault, id: &str, who: &[&str]) {
    for name in who {
        cli.ok(&["quorum", "approve", "--request", id, "--custodian", name]);
    }
}

fn status(cli: &Cvault) -> Value {
    json(&cli.ok(&["quorum", "status", "--json"]))[0].clone()
}

fn open_ids(cli: &Cvault) -> Vec<String> {
    let s = status(cli);
    s["open_requests"].as_array().expect("requests").iter().map(|r| r["id"].to_string()).collect()
}

fn version_state(cli: &Cvault, v: u64) -> String {
    let list = json(&cli.ok(&["master", "list", "--json"]));
    let versions = list["workspaces"][0]["versions"].as_array().expect("versions").clone();
    let found = versions.iter().find(|x| x["version"] == v).expect("version listed");
    found["state"].as_str().expect("state").to_string()
}

/// (action, actor, outcome, text) of every audit entry.
fn audit(cli: &Cvault) -> Vec<(String, String, String, String)> {
    let rows = cli.ws.open_store().audit_rows().expect("audit");
    rows.into_iter()
        .map(|r| (r.event.action, r.event.actor, r.event.outcome, r.event.object.unwrap_or_default()))
        .collect()
}

fn audited(cli: &Cvault, action: &str, outcome: &str, text: &str) -> bool {
    audit(cli).iter().any(|(a, _, o, t)| a == action && o == outcome && t.contains(text))
}

#[test]
fn a_request_made_ahead_and_approved_is_what_the_guarded_operation_uses() {
    let cli = with_retired_v1();
    let id = request(&cli, &["--action", "destroy", "--version", "1", "--expires-hours", "2"]);
    assert_eq!(open_ids(&cli), vec![id.clone()], "opened before any destroy was tried");
    let again = request(&cli, &["--action", "destroy", "--version", "1"]);
    assert_eq!(again, id, "an open request for the same action is reused");
    approve(&cli, &id, &["alice"]);
    let err = cli.refused(&["master", "destroy", "--version", "1"]);
    assert!(err.contains("CKR_CV_QUORUM_REQUIRED"), "1 of 2 is no quorum: {err}");
    approve(&cli, &id, &["carol"]);
    cli.ok(&["master", "destroy", "--version", "1"]);
    assert_eq!(version_state(&cli, 1), "destroyed");
    assert!(open_ids(&cli).is_empty(), "used once");
    let err = cli.refused(&["quorum", "approve", "--request", &id, "--custodian", "bob"]);
    assert!(err.contains("CKR_ARGUMENTS_BAD"), "a used request takes no approvals: {err}");

    // The unlock too: requested ahead, the k-th approval unlocks.
    cli.ok(&["lock"]);
    let unlock = request(&cli, &["--action", "unlock"]);
    approve(&cli, &unlock, &["bob", "carol"]);
    assert_eq!(status(&cli)["locked"], false);

    assert!(audited(&cli, "quorum-request", "CKR_OK", "destroy-v1 opened ahead by user for 2 hour(s)"));
    assert!(audited(
        &cli,
        "quorum-approve",
        "CKR_OK",
        &format!("request #{id} (destroy-v1): approved by carol, 2 of 2")
    ));
    assert!(audited(&cli, "quorum-used", "CKR_OK", &format!("request #{id} (destroy-v1): quorum of 2 used")));
    assert!(audited(&cli, "quorum-unlock", "CKR_OK", &format!("request #{unlock}")));
}

#[test]
fn a_cancelled_request_s_approvals_count_for_nothing() {
    let cli = with_retired_v1();
    let id = request(&cli, &["--action", "destroy", "--version", "1"]);
    approve(&cli, &id, &["alice", "bob"]);
    let out = json(&cli.ok(&["quorum", "cancel", &id, "--json"]));
    assert_eq!(out["cancelled"], true);
    assert!(open_ids(&cli).is_empty());

    let err = cli.refused(&["master", "destroy", "--version", "1"]);
    assert!(err.contains("CKR_CV_QUORUM_REQUIRED"), "the cancelled approvals are worth nothing: {err}");
    assert_eq!(version_state(&cli, 1), "retired");
    let fresh = open_ids(&cli);
    assert_eq!(fresh.len(), 1, "the refusal opened a new request");
    assert_ne!(fresh[0], id);
    let err = cli.refused(&["quorum", "approve", "--request", &id, "--custodian", "carol"]);
    assert!(err.contains("CKR_ARGUMENTS_BAD"), "a cancelled request takes no approvals: {err}");

    let err = cli.refused(&["quorum", "cancel", &id]);
    assert!(err.contains("no longer open"), "cancelling twice: {err}");
    let err = cli.refused(&["quorum", "cancel", "99999"]);
    assert!(err.contains("no such request"), "{err}");

    // The new request, approved, destroys.
    approve(&cli, &fresh[0], &["bob", "carol"]);
    cli.ok(&["master", "destroy", "--version", "1"]);
    assert!(audited(&cli, "quorum-cancel", "CKR_OK", &format!("request #{id} (destroy-v1) cancelled by user")));
    assert!(audited(&cli, "C_SetAttributeValue", "CKR_ACTION_PROHIBITED", ""), "the second cancel is audited");
    assert!(audited(&cli, "C_SetAttributeValue", "CKR_ATTRIBUTE_VALUE_INVALID", ""), "the unknown id too");
}

#[test]
fn only_the_requester_or_the_so_cancels() {
    let cli = cli();
    // lift-hold is the SO's operation: its request is opened as the SO.
    let so_request = request(&cli, &["--action", "lift-hold"]);
    let err = cli.refused(&["quorum", "cancel", &so_request]);
    assert!(err.contains("opened by someone else"), "the user cannot cancel the SO's request: {err}");
    assert_eq!(open_ids(&cli), vec![so_request.clone()]);
    cli.ok(&["quorum", "cancel", &so_request, "--so"]);

    // The user's request, cancelled by the SO.
    let user_request = request(&cli, &["--action", "emergency-access", "--user", "dana"]);
    let s = status(&cli);
    assert_eq!(s["open_requests"][0]["action"], "emergency-access:dana");
    assert_eq!(s["open_requests"][0]["requested_by"], "user");
    cli.ok(&["quorum", "cancel", &user_request, "--so"]);
    assert!(open_ids(&cli).is_empty());

    // A request a custodian's approval opened (the unlock) is the SO's to cancel.
    cli.ok(&["quorum", "approve", "--custodian", "alice"]);
    let unlock = open_ids(&cli).pop().expect("alice's approval opened the unlock");
    let err = cli.refused(&["quorum", "cancel", &unlock]);
    assert!(err.contains("opened by someone else"), "{err}");
    cli.ok(&["quorum", "cancel", &unlock, "--so"]);
    cli.ok(&["quorum", "approve", "--custodian", "bob"]);
    assert_eq!(status(&cli)["locked"], true, "alice's approval went with the cancelled request");

    assert!(audited(&cli, "C_SetAttributeValue", "CKR_USER_NOT_LOGGED_IN", ""), "the refused cancel is audited");
    assert!(audited(&cli, "quorum-cancel", "CKR_OK", &format!("request #{so_request} (lift-hold) cancelled by so")));
    assert!(audited(&cli, "quorum-cancel", "CKR_OK", &format!("request #{unlock} (unlock) cancelled by so")));
}

#[test]
fn an_expired_request_takes_no_approvals_and_opens_nothing() {
    let cli = with_retired_v1();
    let err = cli.refused(&["quorum", "request", "--action", "destroy", "--version", "1", "--expires-hours", "7"]);
    assert!(err.contains("approval_hours (6)"), "longer than [quorum] approval_hours: {err}");
    let err = cli.refused(&["quorum", "request", "--action", "destroy", "--version", "1", "--expires-hours", "0"]);
    assert!(err.contains("approval_hours"), "{err}");
    let id = request(&cli, &["--action", "destroy", "--version", "1", "--expires-hours", "1"]);
    approve(&cli, &id, &["alice"]);
    // Two hours on: the request has expired.
    cli.ws.live_sql(&format!("UPDATE quorum_requests SET expires_at = expires_at - 7200 WHERE id = {id}"));
    let err = cli.refused(&["quorum", "approve", "--request", &id, "--custodian", "bob"]);
    assert!(err.contains("CKR_ARGUMENTS_BAD"), "an expired request takes no approvals: {err}");
    let err = cli.refused(&["master", "destroy", "--version", "1"]);
    assert!(err.contains("CKR_CV_QUORUM_REQUIRED"), "{err}");
    assert_eq!(version_state(&cli, 1), "retired");
    assert!(!open_ids(&cli).contains(&id), "an expired request is not listed as open");
}

#[test]
fn actions_the_quorum_does_not_guard_and_workspaces_without_one_are_refused() {
    let cli = cli();
    for (args, says) in [
        (&["--action", "retire"][..], "not an action the quorum guards"),
        (&["--action", "destroy"][..], "needs --version"),
        (&["--action", "emergency-access"][..], "needs --user"),
        (&["--action", "unlock", "--version", "2"][..], "takes no --version"),
    ] {
        let err = cli.refused(&[&["quorum", "request"][..], args].concat());
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(open_ids(&cli).is_empty(), "nothing reached the module");

    drop(cli);
    let plain = Cvault::new("[[workspace]]\nname = \"eng\"\n");
    plain.init();
    let err = plain.refused(&["quorum", "request", "--action", "unlock"]);
    assert!(err.contains("no quorum"), "{err}");
}

/// The two attributes straight through the C ABI: the number read back, the session and
/// template rules, and the refusal codes.
mod c_abi {
    use super::common::quorum::{rv_among, ulong_attr, Setup};
    use super::common::SO_PIN;
    use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
    use cryptoki::session::{Session, UserType};
    use cryptoki_sys::*;

    const CKA_CV_QUORUM_REQUEST: CK_ULONG = 0xC356_0011;
    const CKA_CV_CANCEL_REQUEST: CK_ULONG = 0xC356_0012;

    fn rv<T>(r: cryptoki::error::Result<T>) -> CK_RV {
        rv_among(
            r,
            &[
                CKR_ATTRIBUTE_VALUE_INVALID,
                CKR_ACTION_PROHIBITED,
                CKR_USER_NOT_LOGGED_IN,
                CKR_SESSION_READ_ONLY,
                CKR_TEMPLATE_INCONSISTENT,
            ],
        )
    }

    fn master(s: &Session) -> ObjectHandle {
        s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find")[0]
    }

    fn ask(s: &Session, value: &str) -> CK_RV {
        let attr = Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_QUORUM_REQUEST), value.into()));
        rv(s.update_attributes(master(s), &[attr]))
    }

    fn last(s: &Session) -> CK_ULONG {
        let got = s.get_attributes(master(s), &[AttributeType::VendorDefined(CKA_CV_QUORUM_REQUEST)]).expect("read");
        match &got[0] {
            Attribute::VendorDefined((_, v)) => CK_ULONG::from_ne_bytes(v.as_slice().try_into().expect("CK_ULONG")),
            other => panic!("{other:?}"),
        }
    }

    fn cancel(s: &Session, id: CK_ULONG) -> CK_RV {
        rv(s.update_attributes(master(s), &[ulong_attr(CKA_CV_CANCEL_REQUEST, id)]))
    }

    #[test]
    fn a_request_opened_through_the_attribute_reads_back_its_number_and_cancels() {
        let mut s = Setup::new("unlock_hours = 1\napproval_hours = 4");
        s.split(2).expect("split");
        let user = s.user();
        assert_eq!(last(&user), 0, "nothing opened in this session yet");
        assert_eq!(ask(&user, "destroy-v1\n2"), CKR_OK);
        let id = last(&user);
        assert!(id > 0);
        assert_eq!(ask(&user, "destroy-v1"), CKR_OK);
        assert_eq!(last(&user), id, "the open request is found, not doubled");
        assert_eq!(ask(&user, "destroy-v1\n5"), CKR_ATTRIBUTE_VALUE_INVALID, "past approval_hours");
        assert_eq!(ask(&user, "destroy-v1\nsoon"), CKR_ATTRIBUTE_VALUE_INVALID);
        assert_eq!(ask(&user, "rotate"), CKR_ATTRIBUTE_VALUE_INVALID, "not guarded");
        let two = [
            Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_QUORUM_REQUEST), b"unlock".to_vec())),
            Attribute::Label(b"x".to_vec()),
        ];
        assert_eq!(rv(user.update_attributes(master(&user), &two)), CKR_TEMPLATE_INCONSISTENT);
        let slot = s.slot();
        let ro = s.p().open_ro_session(slot).expect("ro session");
        assert_eq!(ask(&ro, "unlock"), CKR_SESSION_READ_ONLY, "logged in (the user), but read-only");
        drop(ro);

        user.logout().expect("logout");
        // One login per token at a time: the SO's turn.
        let so = s.session(UserType::So, SO_PIN);
        assert_eq!(ask(&so, "lift-hold"), CKR_OK);
        let so_request = last(&so);
        assert_ne!(so_request, id);
        assert_eq!(cancel(&so, id), CKR_OK, "the SO cancels the user's request");
        assert_eq!(cancel(&so, id), CKR_ACTION_PROHIBITED, "twice");
        so.logout().expect("logout");
        let user = s.user();
        assert_eq!(cancel(&user, so_request), CKR_USER_NOT_LOGGED_IN, "the SO's request, not the user's");
        assert_eq!(cancel(&user, 424_242), CKR_ATTRIBUTE_VALUE_INVALID, "unknown");
        user.logout().expect("logout");
        let so = s.session(UserType::So, SO_PIN);
        assert_eq!(cancel(&so, so_request), CKR_OK);
        drop((user, so));
        let requests = s.store().requests("main").expect("requests");
        assert!(requests.iter().all(|r| r.state == collabvault_pkcs11::store::quorum::RequestState::Cancelled));
        assert_eq!(requests.len(), 2);
    }

    #[test]
    fn without_a_quorum_there_is_nothing_to_request() {
        let mut s = Setup::new("unlock_hours = 1");
        let user = s.user();
        assert_eq!(ask(&user, "unlock"), CKR_ACTION_PROHIBITED, "no quorum: nothing needs approving");
        assert_eq!(last(&user), 0);
    }
}
