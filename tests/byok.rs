//! BYOK import through the C ABI, with a real SoftHSM2 token as the root: a customer's
//! key made and RSA-OAEP-wrapped by the `openssl` command-line tool (and one wrapped to an
//! ML-KEM-768 import key with the `ml-kem` crate and `openssl enc -id-aes256-wrap-pad`)
//! becomes the active master key version, proved to hold exactly the customer's bytes by
//! opening a wrap record made under it with that key here (doc/wrap-record.md); then the
//! refusals (wrong length, bad padding, keys that are not import keys, no quorum
//! approval, a locked workspace) and the audit entries.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, clippy::unwrap_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use common::quorum::{rv_among, vendor, Setup};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::{AuthPin, Ulong};
use cryptoki_sys::*;

const CKM_CV_WRAP_RECORD: CK_ULONG = 0xC356_0001;
const CKM_CV_IMPORT_MASTER: CK_ULONG = 0xC356_0007;
const CKA_CV_KEY_VERSION: CK_ULONG = 0xC356_0002;
const CKA_CV_LIFECYCLE: CK_ULONG = 0xC356_0003;
const CKA_CV_LOCKED: CK_ULONG = 0xC356_000B;
const CKA_CV_ORIGIN: CK_ULONG = 0xC356_0010;
const CKR_CV_LOCKED: CK_RV = 0xC356_0001;
const CKR_CV_QUORUM_REQUIRED: CK_RV = 0xC356_0002;

/// The return code of a call, as a `CK_RV` among those these tests expect.
fn rv_of<T>(r: cryptoki::error::Result<T>) -> CK_RV {
    rv_among(
        r,
        &[
            CKR_CV_LOCKED,
            CKR_CV_QUORUM_REQUIRED,
            CKR_WRAPPED_KEY_LEN_RANGE,
            CKR_WRAPPED_KEY_INVALID,
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            CKR_UNWRAPPING_KEY_SIZE_RANGE,
            CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            CKR_TEMPLATE_INCONSISTENT,
            CKR_MECHANISM_INVALID,
            CKR_USER_NOT_LOGGED_IN,
            CKR_SESSION_READ_ONLY,
            CKR_DEVICE_ERROR,
            CKR_GENERAL_ERROR,
        ],
    )
}

/// The private-key template of an import key: usable for imports only, for good.
fn import_private() -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Unwrap(true),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::AllowedMechanisms(vec![MechanismType::new_vendor_defined(CKM_CV_IMPORT_MASTER).unwrap()]),
        Attribute::Label(b"byok import key".to_vec()),
    ]
}

/// An RSA import key pair of `bits` on the token, with `private` as its private template.
fn rsa_pair(s: &Session, bits: u64, private: &[Attribute]) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[Attribute::Token(true), Attribute::ModulusBits(Ulong::from(bits)), Attribute::Encrypt(true)],
        private,
    )
    .expect("C_GenerateKeyPair RSA")
}

fn bytes_of(s: &Session, h: ObjectHandle, ty: AttributeType) -> Vec<u8> {
    match s.get_attributes(h, &[ty]).expect("read").remove(0) {
        Attribute::Modulus(v) | Attribute::PublicExponent(v) | Attribute::Value(v) => v,
        Attribute::VendorDefined((_, v)) => v,
        other => panic!("unexpected {other:?}"),
    }
}

fn vendor_ulong(s: &Session, h: ObjectHandle, ty: CK_ULONG) -> CK_ULONG {
    let v = bytes_of(s, h, AttributeType::VendorDefined(ty));
    CK_ULONG::from_ne_bytes(v.as_slice().try_into().expect("CK_ULONG"))
}

fn origin(s: &Session, h: ObjectHandle) -> String {
    String::from_utf8(bytes_of(s, h, AttributeType::VendorDefined(CKA_CV_ORIGIN))).expect("UTF-8")
}

/// The import key's private half, found again (handles do not outlive a finalize).
fn import_key(s: &Session) -> ObjectHandle {
    let found = s
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"byok import key".to_vec())])
        .expect("find");
    assert_eq!(found.len(), 1);
    found[0]
}

fn master(s: &Session, label: &str) -> ObjectHandle {
    let found = s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]).expect("find");
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

// ---- DER for the exported public key (SubjectPublicKeyInfo, RFC 8017 A.1.1) ----

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(body.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let len: Vec<u8> = body.len().to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | u8::try_from(len.len()).expect("a length of lengths"));
            out.extend(len);
        }
    }
    out.extend_from_slice(body);
    out
}

fn der_int(be: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// The public key as an SPKI DER file, as a customer receives it.
fn export_rsa_public(s: &Session, public: ObjectHandle, path: &Path) {
    let n = bytes_of(s, public, AttributeType::Modulus);
    let e = bytes_of(s, public, AttributeType::PublicExponent);
    let rsa_public_key = der(0x30, &[der_int(&n), der_int(&e)].concat());
    let algorithm =
        der(0x30, &[der(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]), vec![5, 0]].concat());
    let spki = der(0x30, &[algorithm, der(0x03, &[&[0u8][..], &rsa_public_key].concat())].concat());
    std::fs::write(path, spki).expect("write SPKI");
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A fresh `len`-byte key made by `openssl rand`, and its RSA-OAEP-SHA256 wrapping under
/// the SPKI at `public` by `openssl pkeyutl`: (key, wrapped).
fn openssl_wrap(dir: &Path, public: &Path, len: usize) -> (Vec<u8>, Vec<u8>) {
    let key = dir.join(format!("key{len}.bin"));
    let wrapped = dir.join(format!("wrapped{len}.bin"));
    openssl(&["rand", "-out", key.to_str().unwrap(), &len.to_string()]);
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        public.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-in",
        key.to_str().unwrap(),
        "-out",
        wrapped.to_str().unwrap(),
    ]);
    (std::fs::read(key).unwrap(), std::fs::read(wrapped).unwrap())
}

fn aes_template() -> Vec<Attribute> {
    vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)]
}

fn import(s: &Session, key: ObjectHandle, wrapped: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.unwrap_key(&vendor(CKM_CV_IMPORT_MASTER), key, wrapped, &aes_template())
}

/// A known DEK wrapped under the current master key; the record's version and the DEK
/// opened from it with `master_key` here, following doc/wrap-record.md (format 1).
fn open_record_with(s: &Session, master_key: &[u8]) -> (u32, Vec<u8>, Vec<u8>, Vec<u8>) {
    let dek_value = vec![0x3c; 32];
    let dek = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(dek_value.clone()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ])
        .expect("DEK");
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master(s, "collabvault-master"), dek).expect("wrap record");
    assert_eq!(&record[..6], b"CVWR\x01\x01", "format 1, AES-256-GCM");
    let ws_len = record[6] as usize;
    let at = 7 + ws_len;
    let version = u32::from_be_bytes(record[at..at + 4].try_into().unwrap());
    let attrs_len = u16::from_be_bytes(record[at + 4..at + 6].try_into().unwrap()) as usize;
    let header_end = at + 6 + attrs_len;
    let (header, rest) = record.split_at(header_end);
    let nonce: [u8; 12] = rest[..12].try_into().unwrap();
    let cipher = Aes256Gcm::new(master_key.try_into().expect("32-byte key"));
    let opened = cipher.decrypt(&Nonce::from(nonce), Payload { msg: &rest[12..], aad: header });
    (version, opened.unwrap_or_default(), dek_value, record)
}

#[test]
fn an_rsa_wrapped_key_made_by_openssl_becomes_the_active_version() {
    let mut s = Setup::new("");
    let user = s.user();
    let (public, private) = rsa_pair(&user, 3072, &import_private());
    let dir = tempfile::tempdir().unwrap();
    let spki = dir.path().join("import.der");
    export_rsa_public(&user, public, &spki);
    // A record under v1 before the import, to open afterwards.
    let (v, _, _, old_record) = open_record_with(&user, &[0; 32]);
    assert_eq!(v, 1);

    let (key, wrapped) = openssl_wrap(dir.path(), &spki, 32);
    assert_eq!(wrapped.len(), 384);
    let v2 = import(&user, private, &wrapped).expect("C_UnwrapKey(CKM_CV_IMPORT_MASTER)");
    assert_eq!(vendor_ulong(&user, v2, CKA_CV_KEY_VERSION), 2);
    assert_eq!(vendor_ulong(&user, v2, CKA_CV_LIFECYCLE), 1, "the imported version is active");
    assert_eq!(origin(&user, v2), "imported:rsa-oaep-sha256");
    let local = user.get_attributes(v2, &[AttributeType::Local, AttributeType::NeverExtractable]).unwrap();
    assert_eq!(local, [Attribute::Local(false), Attribute::NeverExtractable(false)], "known outside the token");
    let v1 = master(&user, "collabvault-master-v1");
    assert_eq!(vendor_ulong(&user, v1, CKA_CV_LIFECYCLE), 2, "the previous version is decrypt-only");
    assert_eq!(origin(&user, v1), "generated");
    assert_eq!(origin(&user, master(&user, "collabvault-master")), "imported:rsa-oaep-sha256");

    // The new version holds exactly the customer's key: a record made under it opens with
    // those bytes here, and unwraps through the token.
    let (version, opened, dek, record) = open_record_with(&user, &key);
    assert_eq!(version, 2);
    assert_eq!(opened, dek, "the record opens with the key openssl made");
    let (_, wrong, _, _) = open_record_with(&user, &[0u8; 32]);
    assert!(wrong.is_empty(), "and with no other");
    let back = user.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&user, "collabvault-master"), &record, &[]);
    assert!(back.is_ok(), "the record unwraps under the imported version");
    let older = user.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master(&user, "collabvault-master"), &old_record, &[]);
    assert!(older.is_ok(), "a record from before the import still unwraps under v1");
    drop(user);

    // Another process sees the origin (the row's MAC covers it) ...
    s.offline();
    let user = s.user();
    assert_eq!(origin(&user, master(&user, "collabvault-master-v2")), "imported:rsa-oaep-sha256");
    drop(user);
    let rows = s.audit();
    let imported: Vec<_> = rows.iter().filter(|r| r.event.action == "CKM_CV_IMPORT_MASTER").collect();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].event.object.as_deref(), Some("wmk v2 imported (imported:rsa-oaep-sha256)"));
    assert_eq!(imported[0].event.outcome, "CKR_OK");
    let verdict = collabvault_pkcs11::audit::verify(&rows, None);
    assert!(matches!(verdict, collabvault_pkcs11::audit::Verdict::Intact { .. }), "{verdict:?}");

    // ... and an origin edited in the store file fails the row's MAC.
    let db = rusqlite::Connection::open(s.ws.store_file()).unwrap();
    assert_eq!(db.execute("UPDATE master_keys SET origin = NULL WHERE version = 2", []).unwrap(), 1);
    drop(db);
    let slot = s.slot();
    let session = s.p().open_rw_session(slot).unwrap();
    let login = session.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())));
    let refused = login.is_err()
        || session.find_objects(&[Attribute::Label(b"collabvault-master-v2".to_vec())]).map_or(true, |f| f.is_empty());
    assert!(refused, "a row whose origin was edited is refused");
}

#[test]
fn an_ml_kem_768_wrapped_key_imports() {
    use ml_kem::{Encapsulate, EncapsulationKey, MlKem768, TryKeyInit};
    let mut s = Setup::new("");
    let user = s.user();
    let (public, private) = user
        .generate_key_pair(
            &Mechanism::MlKemKeyPairGen,
            &[Attribute::Token(true), Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into())],
            &import_private(),
        )
        .expect("C_GenerateKeyPair ML-KEM-768");
    let ek = bytes_of(&user, public, AttributeType::Value);
    let dir = tempfile::tempdir().unwrap();
    let wrap = |len: usize| -> (Vec<u8>, Vec<u8>) {
        // The customer: an ML-KEM-768 encapsulation to the exported key (the RustCrypto
        // crate), then the key under RFC 5649 keyed by the shared secret (openssl).
        let (ct, ss) = EncapsulationKey::<MlKem768>::new_from_slice(&ek).expect("ek").encapsulate();
        let key_file = dir.path().join(format!("mlkem-key{len}.bin"));
        let kwp_file = dir.path().join(format!("mlkem-kwp{len}.bin"));
        openssl(&["rand", "-out", key_file.to_str().unwrap(), &len.to_string()]);
        openssl(&[
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            &hex::encode(ss.as_slice()),
            "-iv",
            "A65959A6",
            "-in",
            key_file.to_str().unwrap(),
            "-out",
            kwp_file.to_str().unwrap(),
        ]);
        let kwp = std::fs::read(&kwp_file).unwrap();
        (std::fs::read(&key_file).unwrap(), [ct.as_slice(), &kwp].concat())
    };

    let (_, short) = wrap(16);
    assert_eq!(rv_of(import(&user, private, &short)), CKR_WRAPPED_KEY_LEN_RANGE, "a 16-byte key");
    let (_, mut tampered) = wrap(32);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(rv_of(import(&user, private, &tampered)), CKR_WRAPPED_KEY_INVALID, "a key wrap that fails");
    let (_, mut bad_ct) = wrap(32);
    bad_ct[0] ^= 1;
    assert_eq!(rv_of(import(&user, private, &bad_ct)), CKR_WRAPPED_KEY_INVALID, "another KEM ciphertext");
    assert_eq!(rv_of(import(&user, private, &bad_ct[..1088])), CKR_WRAPPED_KEY_LEN_RANGE, "no key wrap at all");

    let (key, wrapped) = wrap(32);
    assert_eq!(wrapped.len(), 1088 + 40);
    let v2 = import(&user, private, &wrapped).expect("import");
    assert_eq!(vendor_ulong(&user, v2, CKA_CV_KEY_VERSION), 2, "no refused attempt made a version");
    assert_eq!(origin(&user, v2), "imported:ml-kem-768+aes-kwp");
    let (version, opened, dek, _) = open_record_with(&user, &key);
    assert_eq!((version, opened), (2, dek));
}

#[test]
fn wrong_lengths_bad_padding_and_keys_that_are_not_import_keys_are_refused() {
    let mut s = Setup::new("");
    let user = s.user();
    let (public, private) = rsa_pair(&user, 3072, &import_private());
    let dir = tempfile::tempdir().unwrap();
    let spki = dir.path().join("import.der");
    export_rsa_public(&user, public, &spki);
    let (_, short_key) = openssl_wrap(dir.path(), &spki, 16);
    assert_eq!(rv_of(import(&user, private, &short_key)), CKR_WRAPPED_KEY_LEN_RANGE, "a 16-byte key");
    let (_, long_key) = openssl_wrap(dir.path(), &spki, 48);
    assert_eq!(rv_of(import(&user, private, &long_key)), CKR_WRAPPED_KEY_LEN_RANGE, "a 48-byte key");
    let (_, good) = openssl_wrap(dir.path(), &spki, 32);
    let mut bad = good.clone();
    bad[200] ^= 0x40;
    assert_eq!(rv_of(import(&user, private, &bad)), CKR_WRAPPED_KEY_INVALID, "bad OAEP padding");
    assert_eq!(rv_of(import(&user, private, &good[..383])), CKR_WRAPPED_KEY_LEN_RANGE, "not the modulus length");
    let labelled = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(b"mine".to_vec())];
    let rv = rv_of(user.unwrap_key(&vendor(CKM_CV_IMPORT_MASTER), private, &good, &labelled));
    assert_eq!(rv, CKR_TEMPLATE_INCONSISTENT, "the version's label is the token's");
    let generic = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::GENERIC_SECRET)];
    let rv = rv_of(user.unwrap_key(&vendor(CKM_CV_IMPORT_MASTER), private, &good, &generic));
    assert_eq!(rv, CKR_TEMPLATE_INCONSISTENT);

    // Keys that could do more than imports, or are too small.
    let mut any_mechanism = import_private();
    any_mechanism.retain(|a| !matches!(a, Attribute::AllowedMechanisms(_)));
    let (_, plain) = rsa_pair(&user, 3072, &any_mechanism);
    assert_eq!(rv_of(import(&user, plain, &good)), CKR_KEY_FUNCTION_NOT_PERMITTED, "no CKA_ALLOWED_MECHANISMS");
    let mut modifiable = import_private();
    modifiable.retain(|a| !matches!(a, Attribute::Modifiable(_)));
    let (_, changeable) = rsa_pair(&user, 3072, &modifiable);
    assert_eq!(rv_of(import(&user, changeable, &good)), CKR_KEY_FUNCTION_NOT_PERMITTED, "modifiable");
    let mut oaep_too = import_private();
    oaep_too.retain(|a| !matches!(a, Attribute::AllowedMechanisms(_)));
    oaep_too.push(Attribute::AllowedMechanisms(vec![
        MechanismType::new_vendor_defined(CKM_CV_IMPORT_MASTER).unwrap(),
        MechanismType::RSA_PKCS_OAEP,
    ]));
    let (_, two_ways) = rsa_pair(&user, 3072, &oaep_too);
    assert_eq!(rv_of(import(&user, two_ways, &good)), CKR_KEY_FUNCTION_NOT_PERMITTED, "also OAEP");
    let (_, small) = rsa_pair(&user, 2048, &import_private());
    assert_eq!(rv_of(import(&user, small, &good)), CKR_UNWRAPPING_KEY_SIZE_RANGE, "RSA-2048");
    let v1 = master(&user, "collabvault-master-v1");
    assert_eq!(rv_of(import(&user, v1, &good)), CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "a master key is no import key");

    // Not in a read-only session, and not by the SO.
    let slot = s.slot();
    let ro = s.p().open_ro_session(slot).unwrap();
    assert_eq!(rv_of(import(&ro, private, &good)), CKR_SESSION_READ_ONLY);
    drop(ro);
    assert_eq!(vendor_ulong(&user, master(&user, "collabvault-master"), CKA_CV_KEY_VERSION), 1, "nothing imported");
    drop(user);
    let rows = s.audit();
    let refused: Vec<_> =
        rows.iter().filter(|r| r.event.action == "C_UnwrapKey" && r.event.outcome != "CKR_OK").collect();
    assert!(refused.len() >= 11, "every refusal is audited: {}", refused.len());
    assert!(refused.iter().any(|r| r.event.outcome == "CKR_WRAPPED_KEY_INVALID"));
    assert!(refused.iter().any(|r| r.event.outcome == "CKR_WRAPPED_KEY_LEN_RANGE"));
    assert!(!rows.iter().any(|r| r.event.action == "CKM_CV_IMPORT_MASTER"));
}

#[test]
fn with_a_quorum_an_import_needs_its_approved_request_used_once_and_an_unlock() {
    let mut s = Setup::new("unlock_hours = 1");
    s.split(2).expect("split");
    assert_eq!(s.approve("alice", "alice passphrase 1"), CKR_OK);
    assert_eq!(s.approve("bob", "bob passphrase 22"), CKR_OK);
    let user = s.user();
    let (public, private) = rsa_pair(&user, 3072, &import_private());
    let dir = tempfile::tempdir().unwrap();
    let spki = dir.path().join("import.der");
    export_rsa_public(&user, public, &spki);
    let (key, wrapped) = openssl_wrap(dir.path(), &spki, 32);
    assert_eq!(rv_of(import(&user, private, &wrapped)), CKR_CV_QUORUM_REQUIRED);
    assert_eq!(rv_of(import(&user, private, &wrapped)), CKR_CV_QUORUM_REQUIRED, "the same request again");
    drop(user);
    let requests = s.store().requests("main").unwrap();
    let imports: Vec<_> = requests.iter().filter(|r| r.action == "import-key").collect();
    assert_eq!(imports.len(), 1, "one request, however often asked");
    let id = imports[0].id;
    assert_eq!(s.approve(&format!("alice:{id}"), "alice passphrase 1"), CKR_OK);
    let user = s.user();
    let private = import_key(&user);
    assert_eq!(rv_of(import(&user, private, &wrapped)), CKR_CV_QUORUM_REQUIRED, "one approval is not a quorum");
    assert_eq!(s.approve(&format!("carol:{id}"), "carol passphrase 333"), CKR_OK);
    let v2 = import(&user, private, &wrapped).expect("approved: imported");
    assert_eq!(vendor_ulong(&user, v2, CKA_CV_KEY_VERSION), 2);
    let (version, opened, dek, _) = open_record_with(&user, &key);
    assert_eq!((version, opened), (2, dek), "sealed under the KEK like every version, and it opens");
    assert_eq!(rv_of(import(&user, private, &wrapped)), CKR_CV_QUORUM_REQUIRED, "the approval was used once");

    // Locked: refused before the quorum is asked, so no approval is spent on it.
    user.update_attributes(
        master(&user, "collabvault-master"),
        &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LOCKED), vec![1]))],
    )
    .expect("lock");
    drop(user);
    let open_before = s.store().requests("main").unwrap().into_iter().filter(|r| r.action == "import-key").count();
    let user = s.user();
    assert_eq!(rv_of(import(&user, import_key(&user), &wrapped)), CKR_CV_LOCKED);
    drop(user);
    let after = s.store().requests("main").unwrap().into_iter().filter(|r| r.action == "import-key").count();
    assert_eq!(open_before, after, "a locked import opens no request");

    let rows = s.audit();
    let actions: Vec<&str> = rows.iter().map(|r| r.event.action.as_str()).collect();
    assert!(actions.contains(&"quorum-used"));
    assert_eq!(actions.iter().filter(|a| **a == "CKM_CV_IMPORT_MASTER").count(), 1);
    let outcomes: Vec<&str> =
        rows.iter().filter(|r| r.event.action == "C_UnwrapKey").map(|r| r.event.outcome.as_str()).collect();
    assert!(outcomes.contains(&"CKR_CV_QUORUM_REQUIRED") && outcomes.contains(&"CKR_CV_LOCKED"), "{outcomes:?}");
}
