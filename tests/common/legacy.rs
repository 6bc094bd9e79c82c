//! Stores made by the previous release (commit 0f68ed4, before the PIN and root fixes),
//! committed under `tests/fixtures/legacy-0f68ed4/`, and what the upgrade tests check on
//! them. `scripts/make-legacy-fixtures.sh` regenerates them: it builds that release and
//! runs the ignored `write_legacy_fixture` tests with `CV_PREVIOUS_MODULE` set, which call
//! [`populate`] through the previous module and [`write`].
//!
//! Each fixture directory holds `manifest.toml` (a [`Manifest`]), `store/` (the store
//! directory as the previous release left it) and, for the HSM root, `tokens/` (the
//! SoftHSM2 token directory holding the root key).

#![allow(dead_code, missing_docs, unreachable_pub)]

use std::path::{Path, PathBuf};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};

/// The previous release the fixtures were made with.
pub const PREVIOUS_RELEASE: &str = "0f68ed4";

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
const CKM_CV_ROTATE_MASTER: u64 = 0xC356_0003;

/// What a fixture holds, and the values that must still come out of it after an upgrade.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub previous_release: String,
    /// "soft" or "hsm".
    pub root: String,
    pub token_label: String,
    pub so_pin: String,
    pub user_pin: String,
    /// The root token in `tokens/` (HSM root only).
    pub hsm: Option<HsmRoot>,
    /// Master key versions in the store (v1 rotated to v2).
    pub master_versions: u32,
    /// A stored AES-256 token key and a ciphertext it made.
    pub key: StoredKey,
    /// Wrap records, one per master key version, each with a ciphertext its DEK made.
    pub records: Vec<WrapRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HsmRoot {
    pub token_label: String,
    pub pin: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredKey {
    pub label: String,
    /// AES-GCM, hex.
    pub iv: String,
    pub plaintext: String,
    pub ciphertext: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WrapRecord {
    pub master_version: u32,
    /// The `CKM_CV_WRAP_RECORD` output, hex.
    pub record: String,
    /// AES-GCM under the wrapped DEK, hex.
    pub iv: String,
    pub plaintext: String,
    pub ciphertext: String,
}

/// The fixture for `root` ("soft" or "hsm"): the committed one, or under
/// `CV_LEGACY_FIXTURES` when set (where the script writes fresh ones to check them).
pub fn fixture_dir(root: &str) -> PathBuf {
    match std::env::var_os("CV_LEGACY_FIXTURES") {
        Some(dir) => PathBuf::from(dir).join(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("legacy-{PREVIOUS_RELEASE}"))
            .join(root),
    }
}

pub fn read_manifest(dir: &Path) -> Manifest {
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

fn vendor(ty: u64) -> Mechanism<'static> {
    use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
    use cryptoki::mechanism::MechanismType;
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(ty as _).expect("vendor range"),
        None,
    ))
}

fn gcm_encrypt(s: &Session, key: ObjectHandle, iv: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let mut iv = *iv;
    let params = GcmParams::new(&mut iv, b"legacy fixture", 128.into()).expect("gcm");
    s.encrypt(&Mechanism::AesGcm(params), key, plaintext).expect("encrypt")
}

fn gcm_decrypt(s: &Session, key: ObjectHandle, iv: &str, ciphertext: &str) -> Vec<u8> {
    let mut iv: [u8; 12] = hex::decode(iv).expect("iv hex").try_into().expect("12-byte iv");
    let params = GcmParams::new(&mut iv, b"legacy fixture", 128.into()).expect("gcm");
    s.decrypt(&Mechanism::AesGcm(params), key, &hex::decode(ciphertext).expect("hex")).expect("decrypt")
}

fn one(s: &Session, label: &str) -> ObjectHandle {
    let found = s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).expect("find");
    assert_eq!(found.len(), 1, "objects labelled {label:?}");
    found[0]
}

/// Through the previous release's module `old` (over an empty store): initializes the
/// token, sets the user PIN, stores an AES key, makes a wrap record under master key v1,
/// rotates to v2 and makes one under v2. What it made, for the manifest.
pub fn populate(old: &Pkcs11, root: &str, hsm: Option<HsmRoot>) -> Manifest {
    let (so_pin, user_pin) = (crate::common::SO_PIN, crate::common::USER_PIN);
    let token_label = format!("legacy {root}");
    let slot = old.get_all_slots().expect("slots")[0];
    old.init_token(slot, &pin(so_pin), &token_label).expect("C_InitToken");
    let so = old.open_rw_session(slot).expect("open");
    so.login(UserType::So, Some(&pin(so_pin))).expect("SO login");
    so.init_pin(&pin(user_pin)).expect("C_InitPIN");
    drop(so);
    let s = old.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&pin(user_pin))).expect("login");

    let label = "kept".to_string();
    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .expect("a stored key");
    let iv = [0x11u8; 12];
    let plaintext = format!("kept by {PREVIOUS_RELEASE} ({root} root)");
    let ciphertext = gcm_encrypt(&s, key, &iv, plaintext.as_bytes());
    let key = StoredKey { label, iv: hex::encode(iv), plaintext, ciphertext: hex::encode(ciphertext) };

    let master_versions = 2;
    let mut records = Vec::new();
    for version in 1..=master_versions {
        let dek = crate::common::session_dek(&s);
        let iv = [0x20 + u8::try_from(version).expect("a small version"); 12];
        let plaintext = format!("a document under master key v{version}");
        let ciphertext = gcm_encrypt(&s, dek, &iv, plaintext.as_bytes());
        let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), one(&s, "collabvault-master"), dek).expect("wrap record");
        s.destroy_object(dek).expect("destroy the DEK");
        records.push(WrapRecord {
            master_version: version,
            record: hex::encode(record),
            iv: hex::encode(iv),
            plaintext,
            ciphertext: hex::encode(ciphertext),
        });
        if version < master_versions {
            s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]).expect("rotate the master key");
        }
    }
    drop(s);
    Manifest {
        previous_release: PREVIOUS_RELEASE.into(),
        root: root.into(),
        token_label,
        so_pin: so_pin.into(),
        user_pin: user_pin.into(),
        hsm,
        master_versions,
        key,
        records,
    }
}

/// Writes a fixture: the store directory `store`, the SoftHSM2 token directory `tokens`
/// (HSM root) and the manifest, into `out` (replaced).
pub fn write(out: &Path, store: &Path, tokens: Option<&Path>, manifest: &Manifest) {
    if out.exists() {
        std::fs::remove_dir_all(out).expect("remove the old fixture");
    }
    crate::common::copy_tree(store, &out.join("store"));
    if let Some(tokens) = tokens {
        crate::common::copy_tree(tokens, &out.join("tokens"));
    }
    std::fs::write(out.join("manifest.toml"), toml::to_string(manifest).expect("manifest")).expect("write manifest");
    eprintln!("wrote {}", out.display());
}

/// Asserts that `store_file` is still in the previous release's format (so the test below
/// exercises an upgrade, not a store that is already current).
pub fn assert_legacy(store_file: &Path) {
    let db = rusqlite::Connection::open(store_file).expect("open the store file");
    let macs: i64 = db
        .query_row("SELECT COUNT(*) FROM pragma_table_info('master_keys') WHERE name = 'mac'", [], |r| r.get(0))
        .expect("table info");
    assert_eq!(macs, 0, "the fixture's master_keys already has a mac column: not a previous-release store");
    let (so, user): (Vec<u8>, Vec<u8>) = db
        .query_row("SELECT so_pin, user_pin FROM tokens WHERE workspace = 'main'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("row");
    for record in [&so, &user] {
        assert!(matches!(record.first(), Some(1) | Some(2)), "the fixture's PIN record is not a legacy one");
    }
}

/// A nullable column's bytes.
type Blob = Vec<u8>;

/// Asserts that `store_file` has been upgraded: both PIN records in the current format
/// (`kind` 1 with a software root, 2 with an HSM root) and every master key row MACed; with
/// an HSM root also the PIN MAC set and the root-only storage key copy gone.
pub fn assert_upgraded(store_file: &Path, m: &Manifest) {
    let db = rusqlite::Connection::open(store_file).expect("open the store file");
    let (so, user, copy, pins_mac): (Vec<u8>, Vec<u8>, Option<Blob>, Option<Blob>) = db
        .query_row(
            "SELECT so_pin, user_pin, sealed_storage_key, pins_mac FROM tokens WHERE workspace = 'main'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("row");
    let kind = if m.hsm.is_some() { 2 } else { 1 };
    for (who, record) in [("SO", &so), ("User", &user)] {
        assert_eq!(
            record.get(..2),
            Some(&[3, kind][..]),
            "the {who} PIN record was not rewritten in the current format"
        );
    }
    let (rows, maced): (u32, u32) = db
        .query_row("SELECT COUNT(*), COUNT(mac) FROM master_keys WHERE workspace = 'main'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("master rows");
    assert_eq!(rows, m.master_versions, "master key versions lost");
    assert_eq!(maced, rows, "master key rows left without a MAC");
    if m.hsm.is_some() {
        assert!(copy.is_none(), "the root-only copy of the storage key is still there after both logins");
        assert!(pins_mac.is_some(), "the PIN records carry no MAC");
    }
}

/// Logs in as the user and the SO (the logins that upgrade a legacy store) and checks that
/// everything in the manifest still opens: the stored key decrypts its ciphertext, every
/// master key version is there, every wrap record unwraps to a DEK that decrypts its own.
pub fn check_contents(p: &Pkcs11, m: &Manifest) {
    let slot = p.get_all_slots().expect("slots")[0];
    let info = p.get_token_info(slot).expect("token info");
    assert_eq!(info.label(), m.token_label, "token label");
    let s = p.open_rw_session(slot).expect("open");
    s.login(UserType::User, Some(&pin(&m.user_pin))).expect("the user's old PIN logs in");
    let key = one(&s, &m.key.label);
    let plain = gcm_decrypt(&s, key, &m.key.iv, &m.key.ciphertext);
    assert_eq!(plain, m.key.plaintext.as_bytes(), "the stored key decrypts what it encrypted");
    for version in 1..=m.master_versions {
        one(&s, &format!("collabvault-master-v{version}"));
    }
    for r in &m.records {
        let dek = s
            .unwrap_key(
                &vendor(CKM_CV_WRAP_RECORD),
                one(&s, "collabvault-master"),
                &hex::decode(&r.record).expect("hex"),
                &[Attribute::Token(false)],
            )
            .unwrap_or_else(|e| panic!("the wmk v{} record no longer unwraps: {e}", r.master_version));
        let plain = gcm_decrypt(&s, dek, &r.iv, &r.ciphertext);
        assert_eq!(plain, r.plaintext.as_bytes(), "the wmk v{} record's DEK", r.master_version);
    }
    drop(s);
    let so = p.open_rw_session(slot).expect("open");
    so.login(UserType::So, Some(&pin(&m.so_pin))).expect("the SO's old PIN logs in");
    drop(so);
}
