//! A tiny document store over the CollabVault token, as an application would write it:
//! each document gets its own data-encryption key (DEK), made by the token; the document
//! is encrypted with AES-256-GCM under it, and the DEK is kept only as a wrap record
//! sealed by the workspace master key (`CKM_CV_WRAP_RECORD`). The store is a directory:
//!
//! ```text
//! NAME.doc    12-byte IV, then the AES-256-GCM ciphertext and tag (AAD: NAME)
//! NAME.wrap   the DEK's wrap record (doc/wrap-record.md); its header names the WMK version
//! events.log  one line per ingest
//! ```
//!
//! The DEK never leaves the token in the clear: the application holds only the record,
//! and to read a document it asks the token to unwrap the record back into a session key.
//! Records made before a rotation open through the same "current master key" object.
//!
//! Sharing a document with another workspace (`CKM_CV_SHARE_RECORD`, format 2 of the
//! wrap record): the recipient workspace makes a hybrid KEM key pair (`inbox`: X-Wing by
//! default, or MLKEM768-P256 / MLKEM1024-P384 of the CFRG hybrid KEM draft), the sender
//! unwraps the document's DEK and seals it to that public key (`share`, writing
//! `NAME.share` beside a copy of `NAME.doc`), and the recipient opens it on its own token
//! (`read-shared`). Neither workspace's master key leaves its token.
//!
//! Run: `documents ingest DIR FILE...`, `documents read DIR`, `documents inbox PUBFILE [KEM]`,
//! `documents share DIR NAME PUBFILE OUTDIR` or `documents read-shared DIR`, with
//! `COLLABVAULT_MODULE` (default `target/release/libcollabvault_pkcs11.so`),
//! `COLLABVAULT_CONF`, `CV_USER_PIN`, and optionally `CV_WORKSPACE` (default: the first slot).

use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// `CKM_CV_WRAP_RECORD` from include/collabvault.h.
const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
/// `CKM_CV_SHARE_RECORD`, likewise.
const CKM_CV_SHARE_RECORD: u64 = 0xC356_0005;
/// `CKA_LABEL` of the object that stands for the current master key.
const CURRENT_MASTER: &[u8] = b"collabvault-master";
/// `CKA_LABEL` of the key pairs a workspace receives shared documents with.
const INBOX: &[u8] = b"documents-inbox";

/// A hybrid KEM a recipient can receive with (include/collabvault.h).
struct Kem {
    name: &'static str,
    key_pair_gen: u64,
    key_type: u64,
    /// Its encapsulation key's length: how `share` tells which KEM a public key file is for.
    public_len: usize,
}

const KEMS: [Kem; 3] = [
    Kem { name: "xwing", key_pair_gen: 0xC356_0010, key_type: 0xC356_0001, public_len: 1216 },
    Kem { name: "mlkem768-p256", key_pair_gen: 0xC356_0012, key_type: 0xC356_0002, public_len: 1249 },
    Kem { name: "mlkem1024-p384", key_pair_gen: 0xC356_0014, key_type: 0xC356_0003, public_len: 1665 },
];

fn kem_named(name: &str) -> Result<&'static Kem> {
    KEMS.iter()
        .find(|k| k.name == name)
        .ok_or_else(|| format!("unknown KEM {name:?} (xwing, mlkem768-p256, mlkem1024-p384)").into())
}

fn kem_of_public(public: &[u8]) -> Result<&'static Kem> {
    let kem = KEMS.iter().find(|k| k.public_len == public.len());
    kem.ok_or_else(|| {
        format!("a {}-byte public key is none of the hybrid KEMs' encapsulation keys", public.len()).into()
    })
}

/// A vendor mechanism without a parameter.
fn vendor(ty: u64) -> Result<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty)?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

fn wrap_mechanism() -> Result<Mechanism<'static>> {
    vendor(CKM_CV_WRAP_RECORD)
}

/// The WMK version in a record's header (magic, format, algorithm, workspace, version).
fn record_version(record: &[u8]) -> Result<u32> {
    let ws_len = usize::from(*record.get(6).ok_or("record too short")?);
    let bytes = record.get(7 + ws_len..11 + ws_len).ok_or("record too short")?;
    Ok(u32::from_be_bytes(bytes.try_into()?))
}

/// The workspace's slot (`CV_WORKSPACE`), else the first one.
fn slot(pkcs11: &Pkcs11) -> Result<Slot> {
    let slots = pkcs11.get_all_slots()?;
    let Ok(ws) = std::env::var("CV_WORKSPACE") else {
        return slots.first().copied().ok_or_else(|| "the module has no slot".into());
    };
    let wanted = format!("CollabVault workspace {ws}");
    for s in slots {
        if pkcs11.get_slot_info(s)?.slot_description().trim_end() == wanted {
            return Ok(s);
        }
    }
    Err(format!("no slot for workspace {ws:?}").into())
}

fn current_master(s: &Session) -> Result<ObjectHandle> {
    let found = s.find_objects(&[Attribute::Label(CURRENT_MASTER.to_vec())])?;
    found.first().copied().ok_or_else(|| "no current master key (is the user logged in?)".into())
}

/// A return code by name (`ActionProhibited`) rather than the spec's paragraph about it.
fn short(e: &cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    }
}

fn gcm<'a>(iv: &'a mut [u8], name: &'a [u8]) -> Result<Mechanism<'a>> {
    Ok(Mechanism::AesGcm(GcmParams::new(iv, name, 128.into())?))
}

/// Encrypts one document under a fresh DEK and stores ciphertext and wrap record.
fn ingest_one(s: &Session, master: ObjectHandle, dir: &Path, file: &Path) -> Result<()> {
    let name = file.file_name().ok_or("a file name is needed")?.to_string_lossy().into_owned();
    let plain = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let dek = s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )?;
    let mut iv = s.generate_random_vec(12)?;
    let sealed = s.encrypt(&gcm(&mut iv.clone(), name.as_bytes())?, dek, &plain)?;
    let record = s.wrap_key(&wrap_mechanism()?, master, dek)?;
    s.destroy_object(dek)?;
    iv.extend_from_slice(&sealed);
    std::fs::write(dir.join(format!("{name}.doc")), &iv)?;
    std::fs::write(dir.join(format!("{name}.wrap")), &record)?;
    let version = record_version(&record)?;
    let mut log = OpenOptions::new().create(true).append(true).open(dir.join("events.log"))?;
    writeln!(log, "ingest {name} bytes={} wmk=v{version}", plain.len())?;
    println!(
        "ingested {name}: {} bytes -> {name}.doc (AES-256-GCM), its DEK -> {name}.wrap ({} bytes, wmk v{version})",
        plain.len(),
        record.len()
    );
    Ok(())
}

/// Unwraps one record into a session DEK and decrypts its document.
fn read_one(s: &Session, master: ObjectHandle, wrap: &Path) -> Result<()> {
    let file = wrap.file_name().ok_or("no file name")?.to_string_lossy().into_owned();
    let name = file.trim_end_matches(".wrap");
    let record = std::fs::read(wrap)?;
    let stored = std::fs::read(wrap.with_file_name(format!("{name}.doc")))?;
    let (iv, sealed) = stored.split_at_checked(12).ok_or("document too short")?;
    let version = record_version(&record)?;
    let dek = s
        .unwrap_key(&wrap_mechanism()?, master, &record, &[Attribute::Token(false)])
        .map_err(|e| format!("{name}: the token refused to unwrap its wmk v{version} record: {}", short(&e)))?;
    let plain = s.decrypt(&gcm(&mut iv.to_vec(), name.as_bytes())?, dek, sealed)?;
    s.destroy_object(dek)?;
    let text = String::from_utf8_lossy(&plain);
    println!("{name} (record wmk v{version}): {}", text.trim_end());
    Ok(())
}

/// Makes this workspace's inbox key pair of `kem` (token objects) and writes its public key.
fn make_inbox(s: &Session, out: &Path, kem: &Kem) -> Result<()> {
    let label = Attribute::Label(INBOX.to_vec());
    let public = [Attribute::Token(true), label.clone(), Attribute::Wrap(true)];
    let private = [Attribute::Token(true), label, Attribute::Unwrap(true), Attribute::Sensitive(true)];
    let (public, _) = s.generate_key_pair(&vendor(kem.key_pair_gen)?, &public, &private)?;
    let value = s.get_attributes(public, &[cryptoki::object::AttributeType::Value])?;
    let Some(Attribute::Value(bytes)) = value.into_iter().next() else {
        return Err("the inbox public key has no value".into());
    };
    std::fs::write(out, &bytes)?;
    println!(
        "inbox: a {} key pair on this workspace's token; its public key ({} bytes) -> {}",
        kem.name,
        bytes.len(),
        out.display()
    );
    Ok(())
}

/// Seals document `name`'s DEK to the recipient's inbox public key.
fn share_one(s: &Session, master: ObjectHandle, dir: &Path, name: &str, inbox: &Path, out: &Path) -> Result<()> {
    let record = std::fs::read(dir.join(format!("{name}.wrap")))?;
    let dek = s.unwrap_key(&wrap_mechanism()?, master, &record, &[Attribute::Token(false)])?;
    let public = std::fs::read(inbox)?;
    let kem = kem_of_public(&public)?;
    let recipient = s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::new_vendor_defined(kem.key_type)?),
        Attribute::Value(public),
        Attribute::Token(false),
        Attribute::Wrap(true),
    ])?;
    let shared = s.wrap_key(&vendor(CKM_CV_SHARE_RECORD)?, recipient, dek)?;
    s.destroy_object(dek)?;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(format!("{name}.share")), &shared)?;
    std::fs::copy(dir.join(format!("{name}.doc")), out.join(format!("{name}.doc")))?;
    println!(
        "shared {name}: its DEK sealed to the recipient's {} inbox key -> {name}.share ({} bytes)",
        kem.name,
        shared.len()
    );
    Ok(())
}

/// Opens every `.share` in `dir` with one of this workspace's inbox private keys (the
/// record does not say which: each is tried, and only the right one opens it).
fn read_shared(s: &Session, dir: &Path) -> Result<()> {
    let inboxes = s.find_objects(&[Attribute::Label(INBOX.to_vec()), Attribute::Class(ObjectClass::PRIVATE_KEY)])?;
    if inboxes.is_empty() {
        return Err("this workspace has no inbox key (run `documents inbox` first)".into());
    }
    for share in files_with(dir, "share")? {
        let name = share.file_stem().ok_or("no file name")?.to_string_lossy().into_owned();
        let stored = std::fs::read(share.with_extension("doc"))?;
        let (iv, sealed) = stored.split_at_checked(12).ok_or("document too short")?;
        let record = std::fs::read(&share)?;
        let mut refusal = String::new();
        let dek = inboxes.iter().find_map(|&inbox| {
            let opened = s.unwrap_key(&vendor(CKM_CV_SHARE_RECORD).ok()?, inbox, &record, &[Attribute::Token(false)]);
            opened.map_err(|e| refusal = short(&e)).ok()
        });
        let dek = dek.ok_or_else(|| format!("{name}: the token refused the share record: {refusal}"))?;
        let plain = s.decrypt(&gcm(&mut iv.to_vec(), name.as_bytes())?, dek, sealed)?;
        s.destroy_object(dek)?;
        println!("{name} (shared with this workspace): {}", String::from_utf8_lossy(&plain).trim_end());
    }
    Ok(())
}

fn files_with(dir: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    Ok(files)
}

fn run(pkcs11: &Pkcs11, args: &[String]) -> Result<()> {
    let pin = std::env::var("CV_USER_PIN").map_err(|_| "CV_USER_PIN is not set")?;
    let session = pkcs11.open_rw_session(slot(pkcs11)?)?;
    session.login(UserType::User, Some(&AuthPin::new(pin.into())))?;
    let master = current_master(&session)?;
    match args {
        [cmd, dir, files @ ..] if cmd == "ingest" && !files.is_empty() => {
            let dir = Path::new(dir);
            std::fs::create_dir_all(dir)?;
            files.iter().try_for_each(|f| ingest_one(&session, master, dir, Path::new(f)))
        }
        [cmd, dir] if cmd == "read" => {
            files_with(Path::new(dir), "wrap")?.iter().try_for_each(|w| read_one(&session, master, w))
        }
        [cmd, out] if cmd == "inbox" => make_inbox(&session, Path::new(out), &KEMS[0]),
        [cmd, out, kem] if cmd == "inbox" => make_inbox(&session, Path::new(out), kem_named(kem)?),
        [cmd, dir, name, inbox, out] if cmd == "share" => {
            share_one(&session, master, Path::new(dir), name, Path::new(inbox), Path::new(out))
        }
        [cmd, dir] if cmd == "read-shared" => read_shared(&session, Path::new(dir)),
        _ => {
            Err("usage: documents ingest DIR FILE... | read DIR | inbox PUBFILE [KEM] | share DIR NAME PUBFILE OUTDIR \
                  | read-shared DIR"
                .into())
        }
    }
}

fn load_and_run() -> Result<()> {
    let module =
        std::env::var("COLLABVAULT_MODULE").unwrap_or_else(|_| "target/release/libcollabvault_pkcs11.so".into());
    let pkcs11 = Pkcs11::new(&module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = run(&pkcs11, &args);
    pkcs11.finalize()?;
    result
}

fn main() -> std::process::ExitCode {
    match load_and_run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("documents: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
