//! Crash consistency: a process doing key management through the built module's C ABI
//! is killed with SIGKILL at a random instant, and what it leaves behind is checked.
//!
//! Three kinds of work are killed: (a) master key rotation (`CKM_CV_ROTATE_MASTER`, with
//! a token key made under each new version), (b) the stored-DEK re-wrap job
//! (`CKM_CV_REWRAP_STORED` in batches of 7, after a rotation), (c) `cvault master rewrap`
//! over a directory of wrap records. After every kill: the store opens (a fresh
//! `C_Initialize` and user login), SQLite's `integrity_check` passes, every DEK opens with
//! its own key material (token keys through the hierarchy, records through
//! `C_UnwrapKey`), `cvault audit verify` finds the chain intact, the versions never go
//! back, and a rerun completes the interrupted work (a rotation gets the next number, the
//! re-wrap job leaves no stale row, `cvault master rewrap` leaves every record current).
//! (d) is a power-loss analogue: the rotating process is stopped (SIGSTOP) at a random
//! instant, the store file and its WAL copied, the WAL cut at a random byte past the
//! frames already checkpointed into the file (an unsynced or torn tail), and the copy
//! must open consistently (same checks, and a rotation works on it).
//!
//! The kill instant is uniform in [0, D], D the duration of one uninterrupted run, so
//! start-up (load, login) is hit as well as the work. `CRASH_SEED` replays a run (the
//! seed is printed), `CRASH_KILLS` sets the kills per scenario (default 6, so 24 in
//! all for CI); `scripts/crash.sh` runs 1,000 per scenario. The workers are this test
//! binary again (the ignored test `worker`) or the `cvault` binary.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use common::vendor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use collabvault_pkcs11::vendor::{CKA_CV_KEY_VERSION, CKM_CV_REWRAP_STORED, CKM_CV_ROTATE_MASTER, CKM_CV_WRAP_RECORD};
use common::fuzz::Rng;
use common::Workspace;
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// The config path of a worker's store (set only in a worker).
const WORKER: &str = "CV_CRASH_WORKER";
/// The worker's scenario: `rotate` or `rewrap`.
const SCENARIO: &str = "CV_CRASH_SCENARIO";
/// Rotations one worker run makes.
const STEPS: usize = 3;
/// Token keys made before the kills.
const KEYS: usize = 40;
/// Wrap records in the directory `cvault master rewrap` works on.
const RECORDS: usize = 40;
/// A fresh store every so many kills, so the version count (and the run's time) stays bounded.
const FRESH_EVERY: usize = 100;
const CONFIG: &str = "[[workspace]]\nname = \"main\"\n";

/// The key bytes of the token key labelled `label`: derived from the label, so a checker
/// knows every key a killed worker may have made.
fn value_of(label: &str) -> Vec<u8> {
    let seed = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Rng::new(seed).bytes(32)
}

fn token_key(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value_of(label)),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]
}

/// One AES block of zeros under `k`: which key material the module used.
fn block(s: &Session, k: ObjectHandle) -> Vec<u8> {
    s.encrypt(&Mechanism::AesEcb, k, &[0u8; 16]).expect("encrypt a block")
}

fn rotate(s: &Session) -> cryptoki::error::Result<ObjectHandle> {
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[])
}

fn rewrap_stored(s: &Session, batch: u64) -> cryptoki::error::Result<ObjectHandle> {
    s.generate_key(&vendor(CKM_CV_REWRAP_STORED), &[Attribute::ValueLen(batch.into())])
}

fn current_master(s: &Session) -> ObjectHandle {
    let found = s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).expect("find");
    assert_eq!(found.len(), 1, "one current master key object");
    found[0]
}

fn current_version(s: &Session) -> u64 {
    let ty = AttributeType::VendorDefined(CKA_CV_KEY_VERSION);
    match s.get_attributes(current_master(s), &[ty]).expect("version").as_slice() {
        [Attribute::VendorDefined((_, bytes))] => u64::from_ne_bytes(bytes.as_slice().try_into().unwrap()),
        other => panic!("{other:?}"),
    }
}

/// What one worker run does, in a child process, until it is killed (or done).
#[test]
#[ignore = "a crash worker: the scenarios below run it as a child process and kill it"]
fn worker() {
    let Some((_serial, p, slot)) = common::child_module(WORKER) else { return };
    let s = common::user_session(&p, slot);
    let scenario = std::env::var(SCENARIO).expect("scenario");
    let pid = std::process::id();
    for i in 0..STEPS {
        rotate(&s).expect("rotate");
        match scenario.as_str() {
            "rotate" => {
                s.create_object(&token_key(&format!("w-{pid}-{i}"))).expect("create a token key");
            }
            "rewrap" => {
                rewrap_stored(&s, 7).expect("re-wrap stored DEKs");
            }
            other => panic!("scenario {other:?}"),
        }
    }
    drop(s);
    p.finalize().expect("C_Finalize");
}

/// The seed of this run: `CRASH_SEED`, else the clock (printed either way).
fn seed(scenario: &str) -> u64 {
    let seed = std::env::var("CRASH_SEED").ok().map_or_else(
        || {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            now.as_secs().wrapping_mul(1_000_000_007) ^ u64::from(now.subsec_nanos())
        },
        |s| s.parse().expect("CRASH_SEED is a number"),
    );
    eprintln!("crashes::{scenario}: seed {seed} (replay with CRASH_SEED={seed})");
    seed
}

fn kills() -> usize {
    std::env::var("CRASH_KILLS").map_or(6, |k| k.parse().expect("CRASH_KILLS is a number"))
}

/// A store under crash test: its workspace, records directory and the records' blocks.
struct Bench {
    ws: Workspace,
    records: PathBuf,
    /// Record file name -> the block its DEK encrypts.
    refs: BTreeMap<String, Vec<u8>>,
}

impl Bench {
    /// A fresh store: token initialized, [`KEYS`] token keys, and with `records` that many
    /// wrap records of session DEKs in a directory.
    fn new(records: usize) -> Bench {
        let ws = Workspace::with_config_body(CONFIG);
        let dir = ws.dir.path().join("records");
        std::fs::create_dir(&dir).unwrap();
        let mut bench = Bench { ws, records: dir, refs: BTreeMap::new() };
        let p = bench.load();
        let slot = p.get_all_slots().unwrap()[0];
        common::init_token(&p, slot, common::LABEL);
        let s = common::user_session(&p, slot);
        for i in 0..KEYS {
            s.create_object(&token_key(&format!("k-{i}"))).expect("C_CreateObject");
        }
        let master = current_master(&s);
        for i in 0..records {
            let dek = common::session_dek(&s);
            let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), master, dek).expect("wrap record");
            let name = format!("r-{i:03}.wrap");
            std::fs::write(bench.records.join(&name), record).unwrap();
            bench.refs.insert(name, block(&s, dek));
        }
        drop(s);
        p.finalize().unwrap();
        bench
    }

    fn load(&self) -> Pkcs11 {
        std::env::set_var("COLLABVAULT_CONF", &self.ws.conf);
        common::load()
    }

    /// The checks after a kill, with `then` run in the same user session (the rerun);
    /// returns the current version after `then`.
    fn check(&self, then: impl FnOnce(&Session)) -> u64 {
        let p = self.load();
        let slot = p.get_all_slots().unwrap()[0];
        let s = common::user_session(&p, slot);
        check_token_keys(&s);
        self.check_records(&s);
        then(&s);
        let version = current_version(&s);
        drop(s);
        p.finalize().expect("C_Finalize");
        assert_eq!(integrity(&self.ws.store_file()), "ok");
        audit_verify(&self.ws.conf);
        version
    }

    /// Every record file still unwraps to its own DEK (whatever version sealed it).
    fn check_records(&self, s: &Session) {
        let names: Vec<String> = record_names(&self.records);
        assert_eq!(names, self.refs.keys().cloned().collect::<Vec<_>>(), "no record file lost or added");
        let master = current_master(s);
        for name in names {
            let record = std::fs::read(self.records.join(&name)).unwrap();
            let dek = s
                .unwrap_key(&vendor(CKM_CV_WRAP_RECORD), master, &record, &[Attribute::Token(false)])
                .unwrap_or_else(|e| panic!("{name} does not unwrap: {e}"));
            assert_eq!(block(s, dek), self.refs[&name], "{name} unwraps to another key");
            s.destroy_object(dek).unwrap();
        }
    }

    /// The stored rows still under an older version than the newest.
    fn stale_rows(&self) -> i64 {
        let db = rusqlite::Connection::open(self.ws.store_file()).unwrap();
        db.query_row(
            "SELECT count(*) FROM objects WHERE master_version IS NOT NULL
             AND master_version <> (SELECT max(version) FROM master_keys)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn worker(&self, scenario: &str) -> Command {
        let mut cmd = common::child_test("worker");
        cmd.env(WORKER, &self.ws.conf)
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .env(SCENARIO, scenario)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    fn cvault_rewrap(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cvault"));
        cmd.args(["master", "rewrap", "--records"])
            .arg(&self.records)
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .env("COLLABVAULT_MODULE", common::module_path())
            .env("CV_USER_PIN", common::USER_PIN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }
}

/// Every token key a test or worker made (`k-*`, `w-*`) encrypts as a session key made
/// from its known bytes does: it opened, under whichever version sealed it.
fn check_token_keys(s: &Session) {
    let found = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Token(true)]).unwrap();
    let mut seen = 0;
    for k in found {
        let label = match s.get_attributes(k, &[AttributeType::Label]).unwrap().as_slice() {
            [Attribute::Label(l)] => String::from_utf8(l.clone()).unwrap(),
            other => panic!("{other:?}"),
        };
        if !(label.starts_with("k-") || label.starts_with("w-")) {
            continue;
        }
        let mut template = token_key(&label);
        template[2] = Attribute::Token(false);
        let reference = s.create_object(&template).unwrap();
        assert_eq!(block(s, k), block(s, reference), "token key {label} opened to other key material");
        s.destroy_object(reference).unwrap();
        seen += 1;
    }
    assert!(seen >= KEYS, "the {KEYS} token keys made before the kills are all there ({seen} keys)");
}

fn record_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wrap"))
        .collect();
    names.sort();
    names
}

/// The newest version any record file in `dir` is sealed under, and the oldest.
fn record_versions(dir: &Path) -> (u32, u32) {
    let versions: Vec<u32> = record_names(dir)
        .iter()
        .map(|n| collabvault_pkcs11::hierarchy::record::parse(&std::fs::read(dir.join(n)).unwrap()).unwrap().version)
        .collect();
    (*versions.iter().min().unwrap(), *versions.iter().max().unwrap())
}

/// SQLite's own check of the file, with the module finalized (see `tests/faults.rs` on
/// why the test's SQLite never opens the file while the module's is using it).
fn integrity(db: &Path) -> String {
    let db = rusqlite::Connection::open(db).unwrap();
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

fn audit_verify(conf: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_cvault"))
        .args(["audit", "verify"])
        .env("COLLABVAULT_CONF", conf)
        .env("COLLABVAULT_MODULE", common::module_path())
        .output()
        .expect("cvault");
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{line}{}", String::from_utf8_lossy(&out.stderr));
    assert!(line.starts_with("intact: "), "{line}");
}

/// The duration of the last run that finished before its kill (0: none since read).
static FINISHED_IN: std::sync::Mutex<Duration> = std::sync::Mutex::new(Duration::ZERO);

/// Waits for `child` until `delay` has passed, then kills it. `true` if it was killed,
/// `false` if it had finished (then it must have succeeded; its time is kept for
/// [`campaign`], as the machine's load changes how long a run takes).
fn kill_after(mut child: Child, delay: Duration) -> bool {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            *FINISHED_IN.lock().unwrap() = start.elapsed();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "the worker failed: {}", String::from_utf8_lossy(&out.stderr));
            return false;
        }
        if start.elapsed() >= delay {
            child.kill().unwrap();
            let status = child.wait().unwrap();
            // It may have finished between the last poll and the kill.
            return !status.success();
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// How long one run of `cmd` takes, uninterrupted (it must succeed).
fn full_run(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    start.elapsed()
}

fn random_delay(rng: &mut Rng, max: Duration) -> Duration {
    let micros = usize::try_from(max.as_micros()).unwrap();
    Duration::from_micros(rng.below(micros + 1) as u64)
}

/// Runs `kills` kills of `scenario`: `one(bench, rng, max delay)` does one kill and its
/// checks and says whether the child was killed (rather than done first).
fn campaign(
    name: &str,
    records: usize,
    measure: impl Fn(&Bench) -> Duration,
    mut one: impl FnMut(&Bench, &mut Rng, Duration) -> bool,
) {
    let _serial = common::lock();
    let mut rng = Rng::new(seed(name));
    let started = Instant::now();
    let (mut killed, mut finished) = (0, 0);
    let mut bench = Bench::new(records);
    // The shorter of two uninterrupted runs: the first one pays for cold caches.
    let mut max = measure(&bench).min(measure(&bench));
    for i in 0..kills() {
        if i > 0 && i % FRESH_EVERY == 0 {
            bench = Bench::new(records);
        }
        if one(&bench, &mut rng, max) {
            killed += 1;
        } else {
            finished += 1;
            // A run faster than the window (the load went down): the window follows it.
            let took = std::mem::take(&mut *FINISHED_IN.lock().unwrap());
            if took > Duration::ZERO {
                max = max.min(took);
            }
        }
    }
    eprintln!(
        "crashes::{name}: {killed} killed, {finished} finished before the kill, in {:.1} s (runs of {} ms)",
        started.elapsed().as_secs_f64(),
        max.as_millis()
    );
}

#[test]
fn a_rotation_killed_at_any_instant_leaves_every_key_open_and_the_next_rotation_works() {
    campaign(
        "rotate",
        0,
        |b| full_run(b.worker("rotate")),
        |b, rng, max| {
            let before = b.check(|_| {});
            let killed = kill_after(b.worker("rotate").spawn().unwrap(), random_delay(rng, max));
            let mut after = 0;
            let next = b.check(|s| {
                after = current_version(s);
                rotate(s).expect("the next rotation");
            });
            assert!((before..=before + STEPS as u64).contains(&after), "v{before} went to v{after}");
            assert_eq!(next, after + 1, "the next rotation takes the next number");
            killed
        },
    );
}

#[test]
fn a_stored_dek_rewrap_killed_at_any_instant_loses_nothing_and_a_rerun_completes_it() {
    campaign(
        "rewrap",
        0,
        |b| full_run(b.worker("rewrap")),
        |b, rng, max| {
            let killed = kill_after(b.worker("rewrap").spawn().unwrap(), random_delay(rng, max));
            b.check(|s| {
                rewrap_stored(s, 500).expect("the rerun of the re-wrap job");
            });
            assert_eq!(b.stale_rows(), 0, "the rerun left rows under an older version");
            killed
        },
    );
}

#[test]
fn cvault_rewrap_killed_at_any_instant_loses_no_record_and_a_rerun_completes_it() {
    campaign(
        "cvault-rewrap",
        RECORDS,
        |b| {
            b.check(|s| {
                rotate(s).unwrap();
            });
            full_run(b.cvault_rewrap())
        },
        |b, rng, max| {
            let newest = b.check(|s| {
                rotate(s).expect("rotate");
            });
            let killed = kill_after(b.cvault_rewrap().spawn().unwrap(), random_delay(rng, max));
            b.check(|_| {});
            let out = b.cvault_rewrap().output().unwrap();
            assert!(out.status.success(), "the rerun: {}", String::from_utf8_lossy(&out.stderr));
            let newest = u32::try_from(newest).unwrap();
            assert_eq!(record_versions(&b.records), (newest, newest), "every record is current");
            let left: Vec<_> = std::fs::read_dir(&b.records).unwrap().filter_map(|e| e.ok()).collect();
            assert_eq!(left.len(), RECORDS, "no temp file left behind");
            killed
        },
    );
}

/// The WAL's frame count already copied into the database file (`nBackfill` in the
/// shared-memory index), read from a copy of the `-shm` file; 0 without one.
fn backfilled_frames(shm: &[u8]) -> u64 {
    // Two 48-byte copies of the index header, then the checkpoint info, which starts
    // with nBackfill (a u32 in the host's byte order).
    shm.get(96..100).map_or(0, |b| u64::from(u32::from_ne_bytes(b.try_into().unwrap())))
}

/// The database page size from the file header (bytes 16-17, big-endian; 1 means 65536).
fn page_size(db: &[u8]) -> u64 {
    match u16::from_be_bytes([db[16], db[17]]) {
        1 => 65536,
        n => u64::from(n),
    }
}

/// `kill -<signal> <pid>` (the test has no libc binding of its own).
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().unwrap().success();
    assert!(ok || sig == "KILL", "kill -{sig} {pid}");
}

#[test]
fn a_store_copied_at_a_random_instant_with_its_wal_cut_opens_consistently() {
    campaign(
        "power-loss",
        0,
        |b| full_run(b.worker("rotate")),
        |b, rng, max| {
            let mut child = b.worker("rotate").spawn().unwrap();
            std::thread::sleep(random_delay(rng, max));
            signal(child.id(), "STOP");
            let store = b.ws.store_file();
            let read = |suffix: &str| std::fs::read(format!("{}{suffix}", store.display())).unwrap_or_default();
            let (db, mut wal, shm) = (read(""), read("-wal"), read("-shm"));
            signal(child.id(), "KILL");
            let done = child.wait().unwrap().success();
            // The original is checked too: it is what the kill left, and a successful login
            // clears a failure the killed worker's login may have left counted (the count is
            // committed before the PIN check, so a login killed half-way counts as a failure).
            b.check(|_| {});
            // A torn or lost tail: anywhere past what is already in the main file.
            let frame = usize::try_from(24 + page_size(&db)).unwrap();
            let backfilled = usize::try_from(backfilled_frames(&shm)).unwrap();
            let keep_at_least = (32 + backfilled * frame).min(wal.len());
            let cut = keep_at_least + rng.below(wal.len() - keep_at_least + 1);
            wal.truncate(cut);

            let copy = Workspace::with_config_body(CONFIG);
            let dir = copy.dir.path().join("store");
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
            std::fs::write(copy.store_file(), &db).unwrap();
            if !wal.is_empty() {
                std::fs::write(format!("{}-wal", copy.store_file().display()), &wal).unwrap();
            }
            let copied = Bench { ws: copy, records: b.records.clone(), refs: BTreeMap::new() };
            let before = copied.check(|_| {});
            let after = copied.check(|s| {
                rotate(s).expect("a rotation on the copy");
            });
            assert_eq!(after, before + 1);
            !done
        },
    );
}
