//! The soak: two processes of eight threads each mix every operation on one store through
//! the built module's C ABI, with master key rotation and the stored-DEK re-wrap in the
//! background and logins and logouts in between, for `SOAK_SECONDS` (15 s by default,
//! for CI; `scripts/soak.sh` runs 600 s). It fails on any return code other than
//! `CKR_OK`, on a thread that makes no progress for `SOAK_STALL_SECONDS` (60 s; the
//! worker prints which thread stalled, doing what), on resident memory that grows
//! (below), and on an audit log that does not hold every operation.
//!
//! Each worker process is this test binary again (the ignored test `soak_worker`), so the
//! module's login state is per process as it is for applications. Its eight worker
//! threads each have their own session and pick at random: token key generation (a DEK
//! sealed under the current master key version, kept in a ring of four: the oldest is
//! opened again, checked against what it encrypted when new, and destroyed), a wrap
//! record of a session DEK (`CKM_CV_WRAP_RECORD` under `collabvault-master`) and its
//! unwrap later (under whichever version sealed it), AES-GCM on a stored DEK, ECDSA P-256
//! with a token key pair (now and then with a fresh session pair), ML-KEM-768
//! encapsulation and decapsulation with a token key pair, and finds. A ninth thread in
//! each process logs out and in again every 0.5-2 s: login state belongs to the process,
//! so a logout ends every session's login; the workers hold a read lock for each
//! operation and the logout takes the write lock, so no operation straddles a logout,
//! while the window itself is checked (private objects are not found while logged out).
//! In the first process a tenth thread rotates the master key (`CKM_CV_ROTATE_MASTER`,
//! every `max(2 s, SOAK_SECONDS / 60)` on average) and after each rotation runs three
//! batches of `CKM_CV_REWRAP_STORED`; the other process keeps using the keys meanwhile.
//!
//! Each process counts every successful call that the audit log records, by action (the
//! durable key-management entries one each, `C_GenerateKeyPair` one per half; the data
//! operations as the per-session counters, one count per `C_*Init`), and after both exit
//! the store's entries of that process id must match those counts exactly, with no
//! refusal among them, and the DEKs the re-wrap calls' entries say they moved must be
//! the sum of the store's own `rewrap batch` entries. Then `cvault audit verify` must
//! find the chain intact, a last re-wrap leaves no stored DEK under an older version, and
//! every DEK the threads left (token keys and wrap records) opens to the key that
//! encrypted its reference text.
//!
//! Memory: the parent reads each worker's `VmRSS` from `/proc/<pid>/status` every
//! `clamp(SOAK_SECONDS / 100, 1, 5)` seconds. The first tenth of the samples is the
//! start-up; of the rest, the lower quartile of the second half may exceed the lower
//! quartile of the first half by at most 25 % plus 8 MiB (the slack absorbs allocator
//! noise in short runs). A quartile, not the median: each login's Argon2id holds 64 MiB
//! while it runs, and on a loaded machine the login thread spends up to half its time
//! there, so a median flips between the two levels while a leak lifts the floor. The
//! medians are printed with the other figures either way.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use common::vendor;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use collabvault_pkcs11::vendor::{CKA_CV_KEY_VERSION, CKM_CV_REWRAP_STORED, CKM_CV_ROTATE_MASTER, CKM_CV_WRAP_RECORD};
use common::fuzz::Rng;
use common::Workspace;
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde_json::{json, Value};

/// Set in a worker process to the store's config file.
const WORKER: &str = "CV_SOAK_WORKER";
/// `0` in the process that also rotates, `1` in the other.
const ROLE: &str = "CV_SOAK_ROLE";
/// The run's length in seconds, passed to the workers.
const RUN_SECONDS: &str = "CV_SOAK_RUN_SECONDS";
const PROCESSES: usize = 2;
const THREADS: usize = 8;
/// `SOAK_SECONDS` when unset: the CI run (each backend runs it once).
const CI_SECONDS: u64 = 15;
/// Token DEKs and wrap records each thread keeps live at a time.
const KEEP: usize = 4;
/// The allowed growth of the second half's lower-quartile RSS over the first half's.
const RSS_MARGIN_PERCENT: u64 = 25;
const RSS_SLACK_KIB: u64 = 8 * 1024;
/// The line a worker prints its counts and survivors on.
const REPORT: &str = "SOAK-REPORT ";
/// The stored-DEK re-wrap batch after each rotation (three of them).
const REWRAP_BATCH: u64 = 20;
/// The config: the unwrap-burst alert is set out of reach, as the soak measures
/// stability, not the alert (which `tests/audit_usage.rs` covers).
const CONFIG: &str = "[audit]\nalert_unwraps_per_minute = 100000000\n[[workspace]]\nname = \"main\"\n";
const PLAIN: &[u8] = b"the reference text a DEK encrypted when it was new";

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} is a number of seconds")))
}

/// A failed call, named: `what` and the error.
fn named<T>(r: cryptoki::error::Result<T>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn gcm_encrypt(s: &Session, key: ObjectHandle, iv: &[u8], data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = iv.to_vec();
    s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"soak", 128.into()).unwrap()), key, data)
}

fn gcm_decrypt(s: &Session, key: ObjectHandle, iv: &[u8], data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = iv.to_vec();
    s.decrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"soak", 128.into()).unwrap()), key, data)
}

fn current_master(s: &Session) -> Result<ObjectHandle, String> {
    let found = named(s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]), "find collabvault-master")?;
    match found.as_slice() {
        [h] => Ok(*h),
        other => Err(format!("find collabvault-master: {} objects", other.len())),
    }
}

fn current_version(s: &Session) -> Result<u64, String> {
    let ty = AttributeType::VendorDefined(CKA_CV_KEY_VERSION);
    match named(s.get_attributes(current_master(s)?, &[ty]), "read the master key version")?.as_slice() {
        [Attribute::VendorDefined((_, bytes))] => Ok(u64::from_ne_bytes(bytes.as_slice().try_into().unwrap())),
        other => Err(format!("the master key version: {other:?}")),
    }
}

fn aes_template(token: bool, label: &str) -> Vec<Attribute> {
    vec![
        Attribute::ValueLen(32.into()),
        Attribute::Token(token),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Sensitive(true),
        Attribute::Extractable(!token),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

/// A DEK with the reference text it encrypted: a token key (by label) or a wrap record.
#[derive(Clone)]
struct Sealed {
    label: String,
    record: Vec<u8>,
    iv: Vec<u8>,
    ct: Vec<u8>,
}

impl Sealed {
    fn to_json(&self) -> Value {
        json!({"label": self.label, "record": hex::encode(&self.record), "iv": hex::encode(&self.iv), "ct": hex::encode(&self.ct)})
    }

    fn from_json(v: &Value) -> Sealed {
        let field = |k: &str| v[k].as_str().unwrap().to_string();
        Sealed {
            label: field("label"),
            record: hex::decode(field("record")).unwrap(),
            iv: hex::decode(field("iv")).unwrap(),
            ct: hex::decode(field("ct")).unwrap(),
        }
    }
}

/// What one thread did: operations by kind, audited calls by action.
#[derive(Default)]
struct Tally {
    ops: BTreeMap<String, u64>,
    audit: BTreeMap<String, u64>,
}

impl Tally {
    fn op(&mut self, kind: &str) {
        *self.ops.entry(kind.to_string()).or_default() += 1;
    }

    fn audited(&mut self, action: &str, n: u64) {
        *self.audit.entry(action.to_string()).or_default() += n;
    }

    fn merge(&mut self, other: &Tally) {
        for (k, v) in &other.ops {
            *self.ops.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.audit {
            *self.audit.entry(k.clone()).or_default() += v;
        }
    }
}

/// A thread's progress for the watchdog: operations done and what it is doing now.
struct Progress {
    name: String,
    done: AtomicU64,
    doing: Mutex<&'static str>,
    finished: AtomicBool,
}

impl Progress {
    fn new(name: String) -> Progress {
        Progress { name, done: AtomicU64::new(0), doing: Mutex::new("starting"), finished: AtomicBool::new(false) }
    }

    fn start(&self, what: &'static str) {
        *self.doing.lock().unwrap() = what;
    }

    fn step(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every thread of a worker process shares.
struct Shared<'a> {
    p: &'a Pkcs11,
    slot: Slot,
    /// Read for each operation, written by the logout/login thread.
    gate: RwLock<()>,
    until: Instant,
    errors: Mutex<Vec<String>>,
    seed: u64,
}

/// One worker thread's keys and rings.
struct Worker {
    s: Session,
    rng: Rng,
    tally: Tally,
    tag: String,
    made: usize,
    ec: (ObjectHandle, ObjectHandle),
    kem: (ObjectHandle, ObjectHandle),
    /// Token DEKs: their label, handle and reference ciphertext.
    deks: Vec<(Sealed, ObjectHandle)>,
    records: Vec<Sealed>,
}

const KINDS: [&str; 7] = ["keygen", "record", "unwrap", "aes-gcm", "ecdsa", "ml-kem", "find"];

impl Worker {
    fn new(sh: &Shared<'_>, t: usize) -> Result<Worker, String> {
        let s = named(sh.p.open_rw_session(sh.slot), "C_OpenSession")?;
        let tag = format!("soak-{}-t{t}", std::process::id());
        let ec = named(
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::Token(true), Attribute::EcParams(hex::decode("06082a8648ce3d030107").unwrap())],
                &[Attribute::Token(true), Attribute::Sign(true), Attribute::Label(format!("{tag}-ec").into_bytes())],
            ),
            "C_GenerateKeyPair (P-256)",
        )?;
        let kem = named(
            s.generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[Attribute::Token(true), Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into())],
                &[Attribute::Token(true), Attribute::Decapsulate(true)],
            ),
            "C_GenerateKeyPair (ML-KEM-768)",
        )?;
        let mut tally = Tally::default();
        tally.audited("C_GenerateKeyPair", 4);
        let rng = Rng::new(sh.seed ^ (t as u64).wrapping_mul(0x9e37_79b9));
        Ok(Worker { s, rng, tally, tag, made: 0, ec, kem, deks: Vec::new(), records: Vec::new() })
    }

    fn one(&mut self, kind: &str) -> Result<(), String> {
        match kind {
            "keygen" => self.keygen(),
            "record" => self.record(),
            "unwrap" => self.unwrap(),
            "aes-gcm" => self.aes_gcm(),
            "ecdsa" => self.ecdsa(),
            "ml-kem" => self.ml_kem(),
            "find" => self.find(),
            other => unreachable!("{other}"),
        }?;
        self.tally.op(kind);
        Ok(())
    }

    fn iv(&mut self) -> Vec<u8> {
        self.rng.bytes(12)
    }

    /// A token DEK, sealed under the current master key version; its reference kept. The
    /// ring's oldest is opened against its reference and destroyed. Now and then a
    /// session key too, made and destroyed.
    fn keygen(&mut self) -> Result<(), String> {
        self.made += 1;
        let label = format!("{}-dek{}", self.tag, self.made);
        let k =
            named(self.s.generate_key(&Mechanism::AesKeyGen, &aes_template(true, &label)), "C_GenerateKey (token)")?;
        self.tally.audited("C_GenerateKey", 1);
        let iv = self.iv();
        let ct = named(gcm_encrypt(&self.s, k, &iv, PLAIN), "AES-GCM encrypt under a new DEK")?;
        self.tally.audited("C_EncryptInit", 1);
        self.deks.push((Sealed { label, record: Vec::new(), iv, ct }, k));
        if self.deks.len() > KEEP {
            let (old, h) = self.deks.remove(0);
            self.open_dek(&old, h)?;
            named(self.s.destroy_object(h), "C_DestroyObject (token DEK)")?;
            self.tally.audited("C_DestroyObject", 1);
        }
        if self.rng.chance(30) {
            let k = named(
                self.s.generate_key(&Mechanism::AesKeyGen, &aes_template(false, "soak-session")),
                "C_GenerateKey (session)",
            )?;
            named(self.s.destroy_object(k), "C_DestroyObject (session key)")?;
            self.tally.audited("C_GenerateKey", 1);
            self.tally.audited("C_DestroyObject", 1);
        }
        Ok(())
    }

    /// `h` decrypts `d`'s reference to the reference text.
    fn open_dek(&mut self, d: &Sealed, h: ObjectHandle) -> Result<(), String> {
        let pt =
            named(gcm_decrypt(&self.s, h, &d.iv, &d.ct), &format!("AES-GCM decrypt the reference of {}", d.label))?;
        self.tally.audited("C_DecryptInit", 1);
        if pt != PLAIN {
            return Err(format!("{} opened to other key material", d.label));
        }
        Ok(())
    }

    /// A session DEK encrypts the reference text, leaves as a wrap record, is destroyed.
    fn record(&mut self) -> Result<(), String> {
        let dek =
            named(self.s.generate_key(&Mechanism::AesKeyGen, &aes_template(false, "soak-dek")), "C_GenerateKey (DEK)")?;
        self.tally.audited("C_GenerateKey", 1);
        let iv = self.iv();
        let ct = named(gcm_encrypt(&self.s, dek, &iv, PLAIN), "AES-GCM encrypt under a session DEK")?;
        self.tally.audited("C_EncryptInit", 1);
        let master = current_master(&self.s)?;
        let record = named(self.s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master, dek), "C_WrapKey (wrap record)")?;
        self.tally.audited("C_WrapKey", 1);
        named(self.s.destroy_object(dek), "C_DestroyObject (DEK)")?;
        self.tally.audited("C_DestroyObject", 1);
        self.made += 1;
        self.records.push(Sealed { label: format!("{}-rec{}", self.tag, self.made), record, iv, ct });
        if self.records.len() > KEEP {
            self.records.remove(0);
        }
        Ok(())
    }

    /// One of the thread's records unwraps (whichever version sealed it) to its DEK.
    fn unwrap(&mut self) -> Result<(), String> {
        if self.records.is_empty() {
            return self.record();
        }
        let r = self.records[self.rng.below(self.records.len())].clone();
        let master = current_master(&self.s)?;
        let dek = named(
            self.s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master, &r.record, &[Attribute::Token(false)]),
            &format!("C_UnwrapKey ({})", r.label),
        )?;
        self.tally.audited("C_UnwrapKey", 1);
        self.open_dek(&r, dek)?;
        named(self.s.destroy_object(dek), "C_DestroyObject (unwrapped DEK)")?;
        self.tally.audited("C_DestroyObject", 1);
        Ok(())
    }

    /// Random data through AES-GCM under one of the thread's token DEKs, and back.
    fn aes_gcm(&mut self) -> Result<(), String> {
        if self.deks.is_empty() {
            return self.keygen();
        }
        let k = self.deks[self.rng.below(self.deks.len())].1;
        let n = 1 + self.rng.below(4096);
        let data = self.rng.bytes(n);
        let iv = self.iv();
        let ct = named(gcm_encrypt(&self.s, k, &iv, &data), "AES-GCM encrypt")?;
        let pt = named(gcm_decrypt(&self.s, k, &iv, &ct), "AES-GCM decrypt")?;
        self.tally.audited("C_EncryptInit", 1);
        self.tally.audited("C_DecryptInit", 1);
        if pt != data {
            return Err("AES-GCM did not decrypt to what it encrypted".into());
        }
        Ok(())
    }

    /// ECDSA P-256 with the thread's token pair, or (one time in eight) a fresh session pair.
    fn ecdsa(&mut self) -> Result<(), String> {
        let fresh = self.rng.chance(12);
        let (public, private) = if fresh {
            let pair = named(
                self.s.generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[Attribute::EcParams(hex::decode("06082a8648ce3d030107").unwrap())],
                    &[Attribute::Sign(true)],
                ),
                "C_GenerateKeyPair (session P-256)",
            )?;
            self.tally.audited("C_GenerateKeyPair", 2);
            pair
        } else {
            self.ec
        };
        let n = 1 + self.rng.below(1024);
        let msg = self.rng.bytes(n);
        let sig = named(self.s.sign(&Mechanism::EcdsaSha256, private, &msg), "C_Sign (ECDSA)")?;
        named(self.s.verify(&Mechanism::EcdsaSha256, public, &msg, &sig), "C_Verify (ECDSA)")?;
        self.tally.audited("C_SignInit", 1);
        self.tally.audited("C_VerifyInit", 1);
        if fresh {
            named(self.s.destroy_object(private), "C_DestroyObject (private)")?;
            named(self.s.destroy_object(public), "C_DestroyObject (public)")?;
            self.tally.audited("C_DestroyObject", 2);
        }
        Ok(())
    }

    /// ML-KEM-768: both ends' AES keys agree (one encrypts, the other decrypts).
    fn ml_kem(&mut self) -> Result<(), String> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ];
        let (ct, sender) =
            named(self.s.encapsulate_key(&Mechanism::MlKem, self.kem.0, &template), "C_EncapsulateKey (ML-KEM-768)")?;
        self.tally.audited("C_EncapsulateKey", 1);
        let receiver = named(
            self.s.decapsulate_key(&Mechanism::MlKem, self.kem.1, &template, &ct),
            "C_DecapsulateKey (ML-KEM-768)",
        )?;
        self.tally.audited("C_DecapsulateKey", 1);
        let iv = self.iv();
        let sealed = named(gcm_encrypt(&self.s, sender, &iv, PLAIN), "AES-GCM under the encapsulated key")?;
        let opened = named(gcm_decrypt(&self.s, receiver, &iv, &sealed), "AES-GCM under the decapsulated key")?;
        self.tally.audited("C_EncryptInit", 1);
        self.tally.audited("C_DecryptInit", 1);
        if opened != PLAIN {
            return Err("the decapsulated key is not the encapsulated one".into());
        }
        named(self.s.destroy_object(sender), "C_DestroyObject (encapsulated key)")?;
        named(self.s.destroy_object(receiver), "C_DestroyObject (decapsulated key)")?;
        self.tally.audited("C_DestroyObject", 2);
        Ok(())
    }

    /// One of the thread's DEKs is found by its label, once; its key pair by class and label.
    fn find(&mut self) -> Result<(), String> {
        if let Some((d, h)) = self.deks.get(self.rng.below(self.deks.len().max(1))) {
            let found =
                named(self.s.find_objects(&[Attribute::Label(d.label.as_bytes().to_vec())]), "C_FindObjects (DEK)")?;
            if found != [*h] {
                return Err(format!("{} found as {found:?}, expected [{h}]", d.label));
            }
        }
        let label = format!("{}-ec", self.tag).into_bytes();
        let found = named(
            self.s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label)]),
            "C_FindObjects (key pair)",
        )?;
        if found != [self.ec.1] {
            return Err(format!("the thread's private key found as {found:?}"));
        }
        Ok(())
    }
}

/// A worker thread: keys made, then random operations until the deadline.
fn work(sh: &Shared<'_>, t: usize, progress: &Progress) -> (Tally, Vec<Sealed>) {
    let result = (|| {
        let mut w = {
            let _g = sh.gate.read().unwrap();
            Worker::new(sh, t)?
        };
        while Instant::now() < sh.until {
            let kind = w.rng.pick(&KINDS);
            progress.start(kind);
            {
                let _g = sh.gate.read().unwrap();
                w.one(kind)?;
            }
            progress.step();
        }
        let mut left: Vec<Sealed> = w.deks.iter().map(|(d, _)| d.clone()).collect();
        left.extend(w.records.iter().cloned());
        Ok::<_, String>((std::mem::take(&mut w.tally), left))
    })();
    progress.finished.store(true, Ordering::Relaxed);
    result.unwrap_or_else(|e| {
        sh.errors.lock().unwrap().push(format!("{}: {e}", progress.name));
        (Tally::default(), Vec::new())
    })
}

/// Sleeps about `mean` (half to one and a half of it), in steps, ending at the deadline.
fn pause(sh: &Shared<'_>, rng: &mut Rng, mean: Duration) -> bool {
    let ms = u64::try_from(mean.as_millis()).unwrap();
    let end = Instant::now() + Duration::from_millis(ms / 2 + rng.below(usize::try_from(ms).unwrap() + 1) as u64);
    while Instant::now() < end {
        if Instant::now() >= sh.until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Instant::now() < sh.until
}

/// Logs out and in again, again and again; while logged out, private objects are not found.
fn login_cycles(sh: &Shared<'_>, progress: &Progress) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng::new(sh.seed ^ 0x006c_6f67_696e);
    let result = (|| {
        let s = named(sh.p.open_rw_session(sh.slot), "C_OpenSession")?;
        let pin = AuthPin::new(common::USER_PIN.into());
        while pause(sh, &mut rng, Duration::from_millis(1250)) {
            progress.start("logout/login");
            let _g = sh.gate.write().unwrap();
            named(s.logout(), "C_Logout")?;
            tally.audited("C_Logout", 1);
            let seen =
                named(s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]), "find while logged out")?;
            if !seen.is_empty() {
                return Err("the master key object is found while logged out".into());
            }
            named(s.login(UserType::User, Some(&pin)), "C_Login")?;
            tally.audited("C_Login", 1);
            tally.op("logout+login");
            progress.step();
        }
        Ok::<_, String>(())
    })();
    progress.finished.store(true, Ordering::Relaxed);
    if let Err(e) = result {
        sh.errors.lock().unwrap().push(format!("{}: {e}", progress.name));
    }
    tally
}

/// Rotates the master key and re-wraps stored DEKs in batches; each rotation must take
/// the next version number (this is the only process that rotates).
fn rotations(sh: &Shared<'_>, progress: &Progress, every: Duration) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng::new(sh.seed ^ 0x726f_7461_7465);
    let result = (|| {
        let s = named(sh.p.open_rw_session(sh.slot), "C_OpenSession")?;
        while pause(sh, &mut rng, every) {
            progress.start("rotate + re-wrap");
            let _g = sh.gate.read().unwrap();
            let before = current_version(&s)?;
            named(s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[]), "CKM_CV_ROTATE_MASTER")?;
            tally.audited("CKM_CV_ROTATE_MASTER", 1);
            let after = current_version(&s)?;
            if after != before + 1 {
                return Err(format!("a rotation went from v{before} to v{after}"));
            }
            for _ in 0..3 {
                named(
                    s.generate_key(&vendor(CKM_CV_REWRAP_STORED), &[Attribute::ValueLen(REWRAP_BATCH.into())]),
                    "CKM_CV_REWRAP_STORED",
                )?;
                tally.audited("CKM_CV_REWRAP_STORED", 1);
            }
            tally.op("rotation");
            progress.step();
        }
        Ok::<_, String>(())
    })();
    progress.finished.store(true, Ordering::Relaxed);
    if let Err(e) = result {
        sh.errors.lock().unwrap().push(format!("{}: {e}", progress.name));
    }
    tally
}

/// Exits the process (the parent sees it fail) when a thread that has not finished made no
/// progress for `stall`, naming it and what each thread was doing.
fn watchdog(threads: &[Progress], stall: Duration, done: &AtomicBool) {
    let mut last: Vec<(u64, Instant)> =
        threads.iter().map(|p| (p.done.load(Ordering::Relaxed), Instant::now())).collect();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(500));
        for (p, (seen, at)) in threads.iter().zip(last.iter_mut()) {
            let now = p.done.load(Ordering::Relaxed);
            if now != *seen || p.finished.load(Ordering::Relaxed) {
                *seen = now;
                *at = Instant::now();
            } else if at.elapsed() > stall {
                eprintln!("SOAK-STALL: {} made no progress for {:?}; every thread:", p.name, at.elapsed());
                for q in threads {
                    eprintln!(
                        "  {}: {} done, {} ({})",
                        q.name,
                        q.done.load(Ordering::Relaxed),
                        q.doing.lock().map_or("?", |d| *d),
                        if q.finished.load(Ordering::Relaxed) { "finished" } else { "running" }
                    );
                }
                std::process::exit(3);
            }
        }
    }
}

/// One worker process: 8 worker threads, the login cycles, and (role 0) the rotations.
#[test]
#[ignore = "a soak worker: the soak test runs it as a child process"]
fn soak_worker() {
    let Some((_serial, p, slot)) = common::child_module(WORKER) else { return };
    let role: usize = std::env::var(ROLE).unwrap().parse().unwrap();
    let secs = env_secs(RUN_SECONDS, CI_SECONDS);
    let stall = Duration::from_secs(env_secs("SOAK_STALL_SECONDS", 60));
    let login = common::user_session(&p, slot);
    let started = Instant::now();
    let sh = Shared {
        p: &p,
        slot,
        gate: RwLock::new(()),
        until: started + Duration::from_secs(secs),
        errors: Mutex::new(Vec::new()),
        seed: u64::from(std::process::id()).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ secs,
    };
    let mut names: Vec<String> = (0..THREADS).map(|t| format!("worker {t}")).collect();
    names.push("login cycles".into());
    if role == 0 {
        names.push("rotations".into());
    }
    let progress: Vec<Progress> = names.into_iter().map(Progress::new).collect();
    let done = AtomicBool::new(false);
    let rotate_every = Duration::from_secs((secs / 60).max(2));
    let mut total = Tally::default();
    total.audited("C_Login", 1);
    let mut left = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| watchdog(&progress, stall, &done));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn({
                    let (sh, progress) = (&sh, &progress[t]);
                    move || work(sh, t, progress)
                })
            })
            .collect();
        let cycles = scope.spawn(|| login_cycles(&sh, &progress[THREADS]));
        let rotator = (role == 0).then(|| scope.spawn(|| rotations(&sh, &progress[THREADS + 1], rotate_every)));
        for w in workers {
            let (tally, sealed) = w.join().unwrap();
            total.merge(&tally);
            left.extend(sealed);
        }
        total.merge(&cycles.join().unwrap());
        if let Some(r) = rotator {
            total.merge(&r.join().unwrap());
        }
        done.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed();
    login.logout().expect("the last C_Logout");
    total.audited("C_Logout", 1);
    drop(login);
    let errors = sh.errors.into_inner().unwrap();
    p.finalize().expect("C_Finalize");
    let report = json!({
        "pid": std::process::id(),
        "role": role,
        "seconds": elapsed.as_secs_f64(),
        "ops": total.ops,
        "audit": total.audit,
        "errors": errors,
        "left": left.iter().map(Sealed::to_json).collect::<Vec<_>>(),
    });
    println!("{REPORT}{report}");
    assert!(errors.is_empty(), "errors: {errors:#?}");
}

/// `VmRSS` of `pid` in KiB, or `None` once it has gone.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `q`-th quantile (0..=1) of `v`.
fn quantile(v: &[u64], q: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

/// The RSS samples of one worker, judged: after the start-up, the second half's lower
/// quartile may exceed the first half's by [`RSS_MARGIN_PERCENT`] % plus [`RSS_SLACK_KIB`]
/// (the module doc says why a quartile).
fn judge_rss(pid: u32, samples: &[u64]) -> Result<String, String> {
    if samples.len() < 5 {
        return Err(format!("pid {pid}: only {} RSS samples", samples.len()));
    }
    // The first tenth (at least one sample) is the start-up: the module not yet loaded.
    let run = &samples[(samples.len() / 10).max(1)..];
    let (first, second) = run.split_at(run.len() / 2);
    let (q1, q2) = (quantile(first, 0.25), quantile(second, 0.25));
    let line = format!(
        "pid {pid}: RSS {} samples, first {} KiB, last {} KiB, max {} KiB; lower quartile first half {q1} KiB, second half {q2} KiB; median {} KiB, {} KiB",
        samples.len(),
        samples[0],
        samples[samples.len() - 1],
        samples.iter().max().unwrap(),
        quantile(first, 0.5),
        quantile(second, 0.5),
    );
    if q2 > q1 + q1 * RSS_MARGIN_PERCENT / 100 + RSS_SLACK_KIB {
        return Err(format!("{line}: memory grew"));
    }
    Ok(line)
}

/// What the audit log holds of one process.
struct Audited {
    /// Successful entries by action, counter entries by their count.
    ok: BTreeMap<String, u64>,
    /// Entries with any other outcome.
    refused: Vec<String>,
    /// Stored DEKs moved, as the `CKM_CV_REWRAP_STORED` entries say (`N stored DEK(s)
    /// re-wrapped`) and as the store's own `rewrap batch` entries say (`N stored
    /// record(s) to wmk vT`; a call may take several of those, so they are not counted
    /// as calls): the two must agree.
    moved_by_calls: u64,
    moved_by_batches: u64,
}

/// The leading number of an entry's object text.
fn leading_number(object: &str) -> u64 {
    object.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count in {object:?}"))
}

fn audited(ws: &Workspace, pid: u64) -> Audited {
    let db = rusqlite::Connection::open(ws.store_file()).unwrap();
    let mut q = db.prepare("SELECT action, outcome, count, object FROM audit_log WHERE pid = ?1").unwrap();
    let rows = q
        .query_map([i64::try_from(pid).unwrap()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .unwrap();
    let mut a = Audited { ok: BTreeMap::new(), refused: Vec::new(), moved_by_calls: 0, moved_by_batches: 0 };
    for row in rows {
        let (action, outcome, count, object) = row.unwrap();
        if outcome != "CKR_OK" {
            a.refused.push(format!("{action} {outcome}"));
            continue;
        }
        let object = object.unwrap_or_default();
        match action.as_str() {
            "rewrap batch" => {
                a.moved_by_batches += leading_number(&object);
                continue;
            }
            "CKM_CV_REWRAP_STORED" => a.moved_by_calls += leading_number(&object),
            _ => {}
        }
        *a.ok.entry(action).or_default() += count.map_or(1, |c| u64::try_from(c).unwrap());
    }
    a
}

fn audit_verify(ws: &Workspace) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cvault"))
        .args(["audit", "verify"])
        .env("COLLABVAULT_CONF", &ws.conf)
        .env("COLLABVAULT_MODULE", common::module_path())
        .output()
        .expect("cvault");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(out.status.code(), Some(0), "{line}{}", String::from_utf8_lossy(&out.stderr));
    assert!(line.starts_with("intact: "), "{line}");
    line
}

/// After the run: a last re-wrap of every stored DEK, then each DEK the workers left opens
/// to the key that encrypted its reference (token keys by label, records by unwrap).
fn every_dek_opens(ws: &Workspace, left: &[Sealed]) -> usize {
    std::env::set_var("COLLABVAULT_CONF", &ws.conf);
    let p = common::load();
    let slot = p.get_all_slots().unwrap()[0];
    let s = common::user_session(&p, slot);
    s.generate_key(&vendor(CKM_CV_REWRAP_STORED), &[Attribute::ValueLen(1_000_000.into())]).expect("the last re-wrap");
    let master = current_master(&s).unwrap();
    for d in left {
        let k = if d.record.is_empty() {
            let found = s.find_objects(&[Attribute::Label(d.label.as_bytes().to_vec())]).unwrap();
            assert_eq!(found.len(), 1, "{} is in the store once", d.label);
            found[0]
        } else {
            s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master, &d.record, &[Attribute::Token(false)])
                .unwrap_or_else(|e| panic!("{} does not unwrap: {e}", d.label))
        };
        let pt = gcm_decrypt(&s, k, &d.iv, &d.ct).unwrap_or_else(|e| panic!("{} does not decrypt: {e}", d.label));
        assert_eq!(pt, PLAIN, "{} opened to other key material", d.label);
    }
    drop(s);
    p.finalize().unwrap();
    let db = rusqlite::Connection::open(ws.store_file()).unwrap();
    let stale: i64 = db
        .query_row(
            "SELECT count(*) FROM objects WHERE master_version IS NOT NULL
             AND master_version <> (SELECT max(version) FROM master_keys)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stale, 0, "the last re-wrap left stored DEKs under an older version");
    left.len()
}

/// A store with its token initialized; the config's log level lowered to warnings (a
/// debug log of a ten-minute run would be gigabytes).
fn store() -> Workspace {
    let ws = Workspace::with_config_body(CONFIG);
    let text = std::fs::read_to_string(&ws.conf).unwrap().replace("log_level = \"debug\"", "log_level = \"warn\"");
    std::fs::write(&ws.conf, text).unwrap();
    let p = common::load();
    common::init_token(&p, p.get_all_slots().unwrap()[0], common::LABEL);
    p.finalize().unwrap();
    ws
}

/// Samples every worker's RSS until all have exited (or the deadline passed: then they
/// are killed and the test fails); returns each one's output and samples.
fn run_workers(children: Vec<std::process::Child>, every: Duration, deadline: Instant) -> Vec<(u32, Output, Vec<u64>)> {
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let waits: Vec<_> = children.into_iter().map(|c| std::thread::spawn(move || c.wait_with_output())).collect();
    let mut samples = vec![Vec::new(); pids.len()];
    while waits.iter().any(|w| !w.is_finished()) {
        if Instant::now() > deadline {
            for pid in &pids {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            panic!("the workers did not exit by the deadline: killed");
        }
        for (pid, s) in pids.iter().zip(samples.iter_mut()) {
            if let Some(kib) = rss_kib(*pid) {
                s.push(kib);
            }
        }
        let next = Instant::now() + every;
        while Instant::now() < next && waits.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    pids.into_iter().zip(waits).zip(samples).map(|((pid, w), s)| (pid, w.join().unwrap().unwrap(), s)).collect()
}

#[test]
fn two_processes_of_eight_threads_mix_every_operation_with_no_error_stall_growth_or_missing_audit_entry() {
    let _serial = common::lock();
    let secs = env_secs("SOAK_SECONDS", CI_SECONDS);
    let stall = env_secs("SOAK_STALL_SECONDS", 60);
    let ws = store();
    let started = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|role| {
            common::child_over("soak_worker", WORKER, &ws.conf)
                .env(ROLE, role.to_string())
                .env(RUN_SECONDS, secs.to_string())
                .spawn()
                .expect("spawn a worker")
        })
        .collect();
    let every = Duration::from_secs((secs / 100).clamp(1, 5));
    let finished = run_workers(children, every, started + Duration::from_secs(secs + stall + 120));
    let wall = started.elapsed();

    let mut failures = Vec::new();
    let mut left = Vec::new();
    let mut summary = vec![format!(
        "soak: {PROCESSES} processes x {THREADS} threads, {secs} s asked, {:.1} s wall",
        wall.as_secs_f64()
    )];
    for (pid, out, samples) in &finished {
        let stdout = common::child_passed(out);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once(REPORT).map(|(_, r)| r))
            .unwrap_or_else(|| panic!("no report from {pid}"));
        let report: Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["pid"].as_u64(), Some(u64::from(*pid)));
        let ops: BTreeMap<String, u64> = serde_json::from_value(report["ops"].clone()).unwrap();
        let expected: BTreeMap<String, u64> = serde_json::from_value(report["audit"].clone()).unwrap();
        let Audited { ok: found, refused, moved_by_calls, moved_by_batches } = audited(&ws, u64::from(*pid));
        summary.push(format!(
            "pid {pid} (role {}): {:.1} s, {} operations {ops:?}, errors 0",
            report["role"],
            report["seconds"].as_f64().unwrap(),
            ops.values().sum::<u64>()
        ));
        summary.push(format!("pid {pid}: audited {found:?}; {moved_by_calls} stored DEKs re-wrapped"));
        if moved_by_calls != moved_by_batches {
            failures.push(format!(
                "pid {pid}: the re-wrap calls' entries moved {moved_by_calls} DEKs, the store's batch entries {moved_by_batches}"
            ));
        }
        if found != expected {
            failures.push(format!("pid {pid}: the audit log holds {found:?}, the process counted {expected:?}"));
        }
        if !refused.is_empty() {
            failures.push(format!("pid {pid}: refusals in the audit log: {refused:?}"));
        }
        match judge_rss(*pid, samples) {
            Ok(line) => summary.push(line),
            Err(e) => failures.push(e),
        }
        left.extend(report["left"].as_array().unwrap().iter().map(Sealed::from_json));
    }
    summary.push(audit_verify(&ws));
    summary.push(format!("{} DEKs left by the workers open after a last re-wrap", every_dek_opens(&ws, &left)));
    let log = ws.log();
    if log.contains("panic") {
        failures.push(format!("the module log names a panic:\n{log}"));
    }
    eprintln!("{}", summary.join("\n"));
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The memory judge: a floor that rises fails, Argon2 spikes on half the samples do not.
#[test]
fn the_rss_judge_fails_a_rising_floor_and_passes_login_spikes() {
    let spiky: Vec<u64> = (0..40).map(|i| if i % 2 == 0 { 18_000 } else { 84_000 }).collect();
    assert!(judge_rss(1, &spiky).is_ok(), "{:?}", judge_rss(1, &spiky));
    let leaking: Vec<u64> = (0..40).map(|i| 18_000 + i * 1_000).collect();
    assert!(judge_rss(1, &leaking).unwrap_err().ends_with("memory grew"));
    assert!(judge_rss(1, &[18_000; 4]).is_err(), "too few samples to judge");
}
