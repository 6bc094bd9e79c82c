//! What the HSM root protects, through the C ABI with a real SoftHSM2 token as the root:
//! someone holding the root PIN and the store file opens no key with the root alone, and
//! PIN records planted in the store file are refused.

#![allow(missing_docs)]

mod common;

use common::vendor;
#[path = "common/legacy.rs"]
mod legacy;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use common::hsm::{root_token_session, Hsm, ROOT_LABEL, ROOT_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

/// A module over a fresh store whose root is a fresh SoftHSM2 token.
struct Setup {
    pkcs11: Option<Pkcs11>,
    ws: common::Workspace,
    _hsm: Hsm,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.finalize();
    }
}

impl Setup {
    fn new() -> Setup {
        let mut setup = Setup::unloaded(None);
        setup.pkcs11 = Some(common::load());
        setup
    }

    /// A fresh root token (or a copy of `tokens`) and a config naming it; nothing loaded.
    fn unloaded(tokens: Option<&std::path::Path>) -> Setup {
        let serial = common::lock();
        let hsm = tokens.map_or_else(Hsm::new, Hsm::from_tokens);
        let ws = common::Workspace::with_config_body(&format!(
            "{}[[workspace]]\nname = \"main\"\n",
            hsm.root_section(ROOT_LABEL)
        ));
        Setup { pkcs11: None, ws, _hsm: hsm, _serial: serial }
    }

    /// A copy of a legacy fixture (its store and root token); nothing loaded.
    fn from_fixture(fixture: &std::path::Path) -> Setup {
        let setup = Setup::unloaded(Some(&fixture.join("tokens")));
        common::copy_tree(&fixture.join("store"), setup.ws.store_file().parent().expect("store dir"));
        legacy::assert_legacy(&setup.ws.store_file());
        setup
    }

    fn p(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().expect("loaded")
    }

    fn finalize(&mut self) {
        if let Some(p) = self.pkcs11.take() {
            p.finalize().expect("C_Finalize");
        }
    }

    fn reload(&mut self) {
        self.finalize();
        self.pkcs11 = Some(common::load());
    }

    fn slot(&self) -> cryptoki::slot::Slot {
        self.p().get_all_slots().expect("slots")[0]
    }

    fn init(&self) {
        let slot = self.slot();
        self.p().init_token(slot, &AuthPin::new(common::SO_PIN.into()), "hsm-backed").expect("C_InitToken");
        let so = self.p().open_rw_session(slot).expect("open");
        so.login(UserType::So, Some(&AuthPin::new(common::SO_PIN.into()))).expect("SO login");
        so.init_pin(&AuthPin::new(common::USER_PIN.into())).expect("C_InitPIN");
    }

    fn login(&self, owner: UserType, pin: &str) -> cryptoki::error::Result<cryptoki::session::Session> {
        let s = self.p().open_rw_session(self.slot()).expect("open");
        s.login(owner, Some(&AuthPin::new(pin.into())))?;
        Ok(s)
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.ws.store_file()).expect("open the store file")
    }
}

/// What an attacker with the root PIN does: opens the root token directly and decrypts a
/// root-sealed blob (`1 || iv(12) || ciphertext||tag`, the context as AAD) with the
/// workspace's root key or master key `version`'s key.
fn unseal_with_root_alone(context: &str, blob: &[u8], version: u32) -> Option<Vec<u8>> {
    ["collabvault-root/main".to_string(), format!("collabvault-wmk/main/v{version}")]
        .into_iter()
        .find_map(|label| unseal_with_root_key(&label, context, blob))
}

fn unseal_with_root_key(label: &str, context: &str, blob: &[u8]) -> Option<Vec<u8>> {
    let (p, s) = root_token_session();
    let key = *s
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())])
        .expect("find")
        .first()?;
    let mut iv: [u8; 12] = blob.get(1..13)?.try_into().ok()?;
    let params = GcmParams::new(&mut iv, context.as_bytes(), 128.into()).expect("gcm params");
    let out = s.decrypt(&Mechanism::AesGcm(params), key, &blob[13..]).ok();
    drop(s);
    p.finalize().expect("finalize softhsm");
    out
}

#[test]
fn the_root_alone_opens_no_key_from_the_store() {
    let mut setup = Setup::new();
    setup.init();
    drop(setup.login(UserType::User, common::USER_PIN).expect("user login"));
    setup.finalize();
    let db = setup.db();
    let storage: Option<Vec<u8>> =
        db.query_row("SELECT sealed_storage_key FROM tokens WHERE workspace = 'main'", [], |r| r.get(0)).expect("row");
    let master: Vec<u8> = db
        .query_row("SELECT sealed FROM master_keys WHERE workspace = 'main' AND version = 1", [], |r| r.get(0))
        .expect("row");
    drop(db);
    if let Some(blob) = storage {
        let opened = unseal_with_root_alone("storage-key:main", &blob, 1);
        assert!(opened.is_none_or(|k| k.len() != 32), "the root alone opened the storage key");
    }
    let opened = unseal_with_root_alone("wmk:main:v1", &master, 1);
    assert!(opened.is_none_or(|k| k.len() != 32), "the root alone opened master key v1");
}

/// A version 1 PIN record (the software root's old format) carrying `key` under `pin`.
fn v1_record(pin: &str, key: &[u8; 32]) -> Vec<u8> {
    let salt = [5u8; 16];
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(64)).expect("params");
    let mut derived = [0u8; 64];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(pin.as_bytes(), &salt, &mut derived)
        .expect("argon2");
    let cipher = Aes256Gcm::new((&derived[32..]).try_into().expect("kek"));
    let nonce = [1u8; 12];
    let aad = b"collabvault-sealed-v1:pin:main:User".to_vec();
    let ct = cipher.encrypt(&Nonce::from(nonce), Payload { msg: key, aad: &aad }).expect("seal");
    let mut rec = vec![1u8];
    rec.extend_from_slice(&salt);
    rec.extend_from_slice(&derived[..32]);
    rec.push(1);
    rec.extend_from_slice(&nonce);
    rec.extend_from_slice(&ct);
    rec
}

#[test]
fn a_pin_record_carrying_the_storage_key_is_refused_under_an_hsm_root() {
    let mut setup = Setup::new();
    setup.init();
    setup.finalize();
    let planted = v1_record("attacker-pin-1", &[7u8; 32]);
    setup
        .db()
        .execute("UPDATE tokens SET user_pin = ?1, pins_mac = NULL WHERE workspace = 'main'", [&planted])
        .expect("plant a record, and drop the MAC that would refuse it first");
    setup.reload();
    let rv = common::rv_of(setup.login(UserType::User, "attacker-pin-1"));
    assert_eq!(rv, RvError::DeviceError, "a planted PIN-only record logged in");
    assert!(setup.ws.log().contains("refused the User PIN record"), "no log line names the refusal");
}

#[test]
fn a_failure_counter_reset_in_the_store_file_is_refused() {
    let mut setup = Setup::new();
    setup.init();
    for _ in 0..common::MAX_FAILED {
        let rv = common::rv_of(setup.login(UserType::User, "wrong-pin-0000"));
        assert_eq!(rv, RvError::PinIncorrect);
    }
    setup.finalize();
    setup.db().execute("UPDATE tokens SET user_failures = 0 WHERE workspace = 'main'", []).expect("reset the counter");
    setup.reload();
    let rv = common::rv_of(setup.login(UserType::User, common::USER_PIN));
    assert_eq!(rv, RvError::DeviceError, "a counter reset in the file bought more guesses");
    assert!(setup.ws.log().contains("fail their MAC"), "no log line names the edited counters");
}

#[test]
fn a_master_key_row_edited_in_the_store_file_is_refused() {
    let mut setup = Setup::new();
    setup.init();
    drop(setup.login(UserType::User, common::USER_PIN).expect("user login"));
    setup.finalize();
    // An alert's block lifted, or a version's state moved, by editing the file.
    setup
        .db()
        .execute("UPDATE master_keys SET state = 2, blocked = NULL WHERE workspace = 'main' AND version = 1", [])
        .expect("edit the row");
    setup.reload();
    let rv = common::rv_of(setup.login(UserType::User, common::USER_PIN));
    assert_eq!(rv, RvError::DeviceError, "an edited master key row was accepted");
    assert!(setup.ws.log().contains("fails its MAC"), "no log line names the edited row");
}

/// The committed store of the previous release (0f68ed4) with an HSM root, and a copy of
/// its SoftHSM2 token, are upgraded in place by the first logins: every key, master key
/// version and wrap record still opens, the rows are in the new format, and afterwards the
/// root alone opens no master key version.
#[test]
fn a_store_of_the_previous_release_is_upgraded_in_place_by_its_logins() {
    let fixture = legacy::fixture_dir("hsm");
    let m = legacy::read_manifest(&fixture);
    let root = m.hsm.as_ref().expect("an HSM-root fixture");
    assert_eq!((root.token_label.as_str(), root.pin.as_str()), (ROOT_LABEL, ROOT_PIN), "the fixture's root token");
    let mut setup = Setup::from_fixture(&fixture);
    for _ in 0..2 {
        setup.reload();
        legacy::check_contents(setup.p(), &m);
        setup.finalize();
        legacy::assert_upgraded(&setup.ws.store_file(), &m);
    }
    let db = setup.db();
    for version in 1..=m.master_versions {
        let master: Vec<u8> = db
            .query_row("SELECT sealed FROM master_keys WHERE workspace = 'main' AND version = ?1", [version], |r| {
                r.get(0)
            })
            .expect("row");
        let opened = unseal_with_root_alone(&format!("wmk:main:v{version}"), &master, version);
        assert!(opened.is_none_or(|k| k.len() != 32), "the root alone still opens master key v{version}");
    }
}

/// Writes the HSM-root fixture above through the previous release's module
/// (`CV_PREVIOUS_MODULE`) into [`legacy::fixture_dir`].
/// Run by scripts/make-legacy-fixtures.sh.
#[test]
#[ignore = "writes a fixture: run by scripts/make-legacy-fixtures.sh"]
fn write_legacy_fixture() {
    let previous = std::env::var_os("CV_PREVIOUS_MODULE").expect("CV_PREVIOUS_MODULE: the previous release's .so");
    let out = legacy::fixture_dir("hsm");
    let setup = Setup::unloaded(None);
    let old = Pkcs11::new(previous).expect("load the previous module");
    old.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("init");
    let root = legacy::HsmRoot { token_label: ROOT_LABEL.into(), pin: ROOT_PIN.into() };
    let m = legacy::populate(&old, "hsm", Some(root));
    old.finalize().expect("finalize the previous module");
    let store = setup.ws.store_file().parent().expect("store dir").to_path_buf();
    legacy::write(&out, &store, Some(&setup._hsm.tokens()), &m);
    legacy::assert_legacy(&out.join("store/collabvault.sqlite3"));
}

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
const CKM_CV_ROTATE_MASTER: u64 = 0xC356_0003;
const CKA_CV_LIFECYCLE: u64 = 0xC356_0003;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_version_destroyed_after_a_backup_does_not_open_from_that_backup() {
    use cryptoki::object::AttributeType;
    let mut setup = Setup::new();
    setup.init();
    let s = setup.login(UserType::User, common::USER_PIN).expect("login");
    let dek = common::session_dek(&s);
    let master = |s: &cryptoki::session::Session, label: &[u8]| {
        s.find_objects(&[Attribute::Label(label.to_vec())]).expect("find")[0]
    };
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&s, b"collabvault-master"), dek).expect("wrap");
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate");
    drop(s);
    setup.finalize();
    let store = setup.ws.store_file().parent().expect("store dir").to_path_buf();
    let backup = setup.ws.dir.path().join("backup");
    copy_dir(&store, &backup);

    setup.reload();
    let s = setup.login(UserType::User, common::USER_PIN).expect("login");
    let v1 = master(&s, b"collabvault-master-v1");
    for state in [3u64, 4] {
        s.update_attributes(
            v1,
            &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LIFECYCLE), state.to_ne_bytes().to_vec()))],
        )
        .expect("retire, then destroy v1");
    }
    drop(s);
    setup.finalize();
    // The backup comes back: v1 is decrypt-only there, its sealed value intact.
    std::fs::remove_dir_all(&store).expect("remove store");
    copy_dir(&backup, &store);
    setup.reload();
    let s = setup.login(UserType::User, common::USER_PIN).expect("login on the restored backup");
    let back = s.unwrap_key(
        &vendor(CKM_CV_WRAP_RECORD),
        master(&s, b"collabvault-master"),
        &record,
        &[Attribute::Token(false)],
    );
    assert!(back.is_err(), "a destroyed master key version came back from a backup made before its destruction");
    assert!(setup.ws.log().contains("destroyed"), "no log line says the version's key was destroyed");
}

#[test]
fn an_exportable_key_under_the_root_label_is_refused() {
    let mut setup = Setup::new();
    setup.finalize();
    // Someone with the root PIN plants a key they can read back under the root's label.
    let (p, s) = root_token_session();
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Label(b"collabvault-root/main".to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )
    .expect("plant an exportable key");
    drop(s);
    p.finalize().expect("finalize softhsm");

    setup.reload();
    let rv = common::rv_of(setup.p().init_token(setup.slot(), &AuthPin::new(common::SO_PIN.into()), "hsm-backed"));
    assert_eq!(rv, RvError::DeviceError, "an exportable root key was used");
    let log = setup.ws.log();
    assert!(log.contains("CKA_EXTRACTABLE") || log.contains("CKA_SENSITIVE"), "no log line names the problem: {log}");
}
