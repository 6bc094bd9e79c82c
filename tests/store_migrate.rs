//! `cvault store migrate`: a SQLite store whose root of trust is a real SoftHSM2 token
//! moves into an empty PostgreSQL database (a real server, `common/postgres.rs`) and back
//! into a new SQLite directory; after each move the config points at the copy and every
//! wrap record made before (under two master key versions) still opens through the
//! module, the audit chain verifies, and a PostgreSQL store backs up and verifies like a
//! SQLite one. A move into a store that holds anything is refused.

#![allow(missing_docs)]

mod common;

use std::path::Path;

use common::cvault::Cvault;
use common::postgres as pg;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;

fn wrap_mechanism() -> Mechanism<'static> {
    let ty = MechanismType::new_vendor_defined(CKM_CV_WRAP_RECORD).expect("vendor");
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None))
}

/// Points `f`'s config at `store` (a `store = ...` line) or at `store_dir` alone.
fn point_at(f: &Cvault, store: Option<&str>, store_dir: &Path) {
    let text = std::fs::read_to_string(&f.ws.conf).expect("config");
    let kept: Vec<&str> =
        text.lines().filter(|l| !l.starts_with("store = ") && !l.starts_with("store_dir = ")).collect();
    let store = store.map(|s| format!("store = {s:?}\n")).unwrap_or_default();
    std::fs::write(&f.ws.conf, format!("store_dir = {store_dir:?}\n{store}{}\n", kept.join("\n")))
        .expect("write config");
}

/// A DEK wrapped under the current master key, through the module in this process.
fn make_record() -> Vec<u8> {
    with_master(|s, master| {
        let dek = s
            .generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(32.into()), Attribute::Token(false), Attribute::Extractable(true)],
            )
            .expect("DEK");
        s.wrap_key(&wrap_mechanism(), master, dek).expect("wrap")
    })
}

/// Whether `record` unwraps through the module under the config as it stands.
fn opens(record: &[u8]) -> bool {
    with_master(|s, master| s.unwrap_key(&wrap_mechanism(), master, record, &[Attribute::Token(false)]).is_ok())
}

fn with_master<T>(f: impl FnOnce(&cryptoki::session::Session, cryptoki::object::ObjectHandle) -> T) -> T {
    let pkcs11 = common::load();
    let slot = pkcs11.get_all_slots().expect("slots")[0];
    let s = pkcs11.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).expect("login");
    let master = s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find")[0];
    let out = f(&s, master);
    drop(s);
    pkcs11.finalize().expect("C_Finalize");
    out
}

#[test]
fn a_store_moves_to_postgresql_and_back_and_every_record_still_opens() {
    if pg::selected() {
        return; // the PostgreSQL stage's configs already name a server: this test moves its own
    }
    let f = Cvault::new("[[workspace]]\nname = \"eng\"\n");
    f.init();
    let first = make_record();
    f.ok(&["master", "rotate", "--workspace", "eng"]);
    let second = make_record();

    let server = pg::shared();
    let url = server.url(&server.new_database());
    let out = f.ok(&["store", "migrate", "--to", &url]);
    assert!(out.contains("audit entries (chain verified)"), "{out}");
    let again = f.run(&["store", "migrate", "--to", &url]);
    assert!(!again.status.success(), "a second move into the same database is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{again:?}");

    let sqlite_dir = f.ws.dir.path().join("store");
    point_at(&f, Some(&url), &sqlite_dir);
    assert!(opens(&first) && opens(&second), "both versions' records open on PostgreSQL");
    let verified = f.ok(&["audit", "verify"]);
    assert!(verified.contains("intact"), "{verified}");
    let backup = f.ws.dir.path().join("pg-backup");
    f.ok(&["backup", "create", backup.to_str().expect("utf-8")]);
    let checked = f.ok(&["backup", "verify", backup.to_str().expect("utf-8")]);
    assert!(checked.contains("verified"), "{checked}");

    let back = f.ws.dir.path().join("back");
    f.ok(&["store", "migrate", "--to", &format!("sqlite:{}", back.display())]);
    point_at(&f, None, &back);
    assert!(opens(&first) && opens(&second), "and again on the SQLite copy of the copy");
    let verified = f.ok(&["audit", "verify"]);
    assert!(verified.contains("intact"), "{verified}");
    let rows = f.ws.config();
    let store = collabvault_pkcs11::store::open(&rows).expect("open the copy");
    let moves = store.audit_rows().expect("rows").iter().filter(|r| r.event.action == "store-migrate").count();
    assert_eq!(moves, 2, "each move is in the chain it made");
}
