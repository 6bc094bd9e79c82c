//! The PostgreSQL rows: this module on a PostgreSQL store beside the same module on its
//! SQLite store, in the same run, with 1 process and with 3 processes at once on one
//! store (three hosts of a fleet, on one machine here). Each row prints both backends'
//! median ops/s and the ratio PostgreSQL / SQLite (>1: PostgreSQL is faster).
//!
//! The server is started the way the tests start theirs (tests/common/postgres.rs,
//! included as it is): `initdb` into a temporary directory, a Unix socket only, `fsync`
//! on, so both backends flush every commit. No server (no binaries, `initdb` failing):
//! the rows are skipped with the reason, the rest of the run goes on.
//!
//! Every timed call runs in a child process of this benchmark (`CHILD_ARG`) over the
//! backend's config: the children log in, say they are ready, and start together on a
//! go file, so the three-process rows time real overlap. Rows: durable token key
//! generation, `C_FindObjects` by label among the filled objects, a DEK unwrap from a
//! wrap record (a key-management call: one durable audit entry each), and the re-wrap of
//! every stored DEK after a rotation (the three processes then share one re-wrap).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use tempfile::TempDir;

use super::{cfg, err, report, secret_template, Res, Stats, Token};

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/common/postgres.rs"]
mod server;

/// The first argument of a child process of these rows.
pub(super) const CHILD_ARG: &str = "--pg-child";

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
const CKM_CV_ROTATE_MASTER: u64 = 0xC356_0003;
const CKM_CV_REWRAP_STORED: u64 = 0xC356_0004;
const MASTER_LABEL: &[u8] = b"collabvault-master";
const LABEL: &str = "cv-pg";
/// The process counts of every row.
const PROCS: [usize; 2] = [1, 3];

/// The operations, as named on a child's command line.
const OPS: [&str; 4] = ["keygen", "find", "unwrap", "rewrap"];

fn row_name(op: &str, objects: usize) -> String {
    match op {
        "keygen" => "durable token key generation (C_GenerateKey AES-256, CKA_TOKEN)".into(),
        "find" => format!("C_FindObjects by CKA_LABEL among {objects} objects"),
        "unwrap" => "CV_WRAP_RECORD unwrap DEK (one durable audit entry)".into(),
        _ => format!("re-wrap {objects} stored DEKs (CKM_CV_REWRAP_STORED, per DEK)"),
    }
}

/// The rows' names, for the filter.
pub(super) fn names(objects: usize) -> Vec<String> {
    OPS.iter().map(|op| format!("{} (PostgreSQL vs SQLite)", row_name(op, objects))).collect()
}

fn vendor(ty: u64) -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty).map_err(|e| err(e.to_string()))?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

/// How many objects the stores hold for the find and re-wrap rows (`--pg-objects=N`).
fn objects() -> usize {
    let given = std::env::args().find_map(|a| a.strip_prefix("--pg-objects=").and_then(|n| n.parse().ok()));
    given.unwrap_or(if cfg().quick { 500 } else { 100_000 })
}

/// Rounds per row (each starts fresh child processes): fewer in quick mode.
fn rounds() -> usize {
    if cfg().quick {
        3
    } else {
        cfg().repeats
    }
}

/// Calls per child process and round for `op`.
fn calls(op: &str) -> usize {
    match (op, cfg().quick) {
        ("find", true) => 100,
        (_, true) => 10,
        ("find", false) => 2000,
        (_, false) => 100,
    }
}

/// One backend: its config file and a wrap record made on it.
struct Backend {
    name: &'static str,
    conf: PathBuf,
    record: PathBuf,
}

/// Runs the rows (if any is wanted).
pub(super) fn run(dir: &TempDir, cv_path: &Path, wanted: &dyn Fn(&str) -> bool) -> Res<()> {
    let n = objects();
    let names = names(n);
    if !names.iter().any(|name| wanted(name)) {
        return Ok(());
    }
    println!();
    let pg = match server::Server::try_start(true) {
        Ok(s) => s,
        Err(e) => {
            let why = e.lines().next().unwrap_or("").to_string();
            println!("PostgreSQL rows skipped: no PostgreSQL server could be started here ({why})");
            return Ok(());
        }
    };
    let url = pg.url(&pg.new_database());
    let backends = [
        Backend::set_up(dir, cv_path, "sqlite", "", n)?,
        Backend::set_up(dir, cv_path, "postgresql", &format!("store = {url:?}\n"), n)?,
    ];
    println!(
        "PostgreSQL beside SQLite: this module on each store, fsync on for both (the server on this host, \
         a Unix socket), {} objects; each cell is the median [min–max] of {} rounds, ops/s summed over the \
         processes; ratio = PostgreSQL / SQLite",
        n,
        rounds()
    );
    for (op, name) in OPS.iter().zip(&names) {
        if !wanted(name) {
            continue;
        }
        for procs in PROCS {
            // rates[backend]: one aggregate ops/s per round, the backends alternating.
            let mut rates: [Vec<f64>; 2] = Default::default();
            for _ in 0..rounds() {
                for (b, backend) in backends.iter().enumerate() {
                    rates[b].push(backend.round(cv_path, dir, op, procs, n)?);
                }
            }
            let [sq, pq] = rates.map(Stats::of);
            let (sq, pq) = (sq.ok_or_else(|| err("no rounds"))?, pq.ok_or_else(|| err("no rounds"))?);
            let line = format!(
                "{:<72} {procs} proc{}  SQLite {:>9.1} [{:.1}–{:.1}]  PostgreSQL {:>9.1} [{:.1}–{:.1}] ops/s  PG/SQLite {:.2}",
                row_name(op, n),
                if procs == 1 { " " } else { "s" },
                sq.median,
                sq.min,
                sq.max,
                pq.median,
                pq.min,
                pq.max,
                pq.median / sq.median
            );
            println!("  {line}");
            report::note(format!("PostgreSQL vs SQLite: {line}"));
        }
    }
    drop(backends);
    drop(pg);
    Ok(())
}

impl Backend {
    /// A store on `name`'s backend with its token initialized, `n` stored DEKs (token
    /// AES keys with labels) and one wrap record saved for the unwrap row.
    fn set_up(dir: &TempDir, cv_path: &Path, name: &'static str, store: &str, n: usize) -> Res<Backend> {
        let conf = super::use_cv_config(dir, &format!("collabvault-pg-{name}.toml"), &format!("cv-pg-{name}"), store)?;
        let token = Token::open("collabvault", cv_path, LABEL)?;
        let started = Instant::now();
        super::stores::fill(&token, 0, n)?;
        eprintln!("  {name}: {n} token keys in {:.1} s", started.elapsed().as_secs_f64());
        let dek = token.session.generate_key(
            &Mechanism::AesKeyGen,
            &secret_template(&[
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Extractable(true),
            ]),
        )?;
        let found = token.session.find_objects(&[Attribute::Label(MASTER_LABEL.to_vec())])?;
        let master = *found.first().ok_or_else(|| err("no current master key object"))?;
        let record = dir.path().join(format!("pg-{name}.record"));
        std::fs::write(&record, token.session.wrap_key(&vendor(CKM_CV_WRAP_RECORD)?, master, dek)?)?;
        token.close()?;
        Ok(Backend { name, conf, record })
    }

    /// One round of `op` on `procs` processes at once: their summed ops/s. For the
    /// re-wrap, a rotation first (one process), then `procs` processes share the re-wrap
    /// of all `n` stored DEKs: `n` / the time until the last one finished.
    fn round(&self, cv_path: &Path, dir: &TempDir, op: &str, procs: usize, n: usize) -> Res<f64> {
        if op == "rewrap" {
            self.children(cv_path, dir, "rotate", 1, n)?;
            let results = self.children(cv_path, dir, op, procs, n)?;
            let slowest = results.iter().map(|(_, t)| *t).fold(Duration::ZERO, Duration::max);
            return Ok(n as f64 / slowest.as_secs_f64());
        }
        let results = self.children(cv_path, dir, op, procs, n)?;
        Ok(results.iter().map(|(calls, t)| *calls as f64 / t.as_secs_f64()).sum())
    }

    /// Starts `procs` children of `op`, lets them go together once all are logged in,
    /// and returns each one's (calls, time).
    fn children(&self, cv_path: &Path, dir: &TempDir, op: &str, procs: usize, n: usize) -> Res<Vec<(usize, Duration)>> {
        let go = dir.path().join(format!("pg-go-{}", std::process::id()));
        let _ = std::fs::remove_file(&go);
        let exe = std::env::current_exe()?;
        let mut running = Vec::new();
        for i in 0..procs {
            let ready = dir.path().join(format!("pg-ready-{i}"));
            let _ = std::fs::remove_file(&ready);
            let child = Command::new(&exe)
                .arg(CHILD_ARG)
                .args([op, &n.to_string(), &calls(op).to_string()])
                .args([&self.record, &ready, &go])
                .env("COLLABVAULT_CONF", &self.conf)
                .env("CV_PG_MODULE", cv_path)
                .stdout(Stdio::piped())
                .spawn()?;
            running.push((ready, child));
        }
        let started = Instant::now();
        while !running.iter().all(|(ready, _)| ready.exists()) {
            if started.elapsed() > Duration::from_secs(120) {
                return Err(err(format!("{}: {op} children not ready after 120 s", self.name)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::write(&go, b"")?;
        let mut results = Vec::new();
        for (_, child) in running {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(err(format!("{}: {op} child failed: {text}", self.name)));
            }
            let parse = || -> Option<(usize, Duration)> {
                let mut words = text.split_whitespace();
                Some((words.next()?.parse().ok()?, Duration::from_nanos(words.next()?.parse().ok()?)))
            };
            results.push(parse().ok_or_else(|| err(format!("{}: {op} child said {text:?}", self.name)))?);
        }
        Ok(results)
    }
}

/// A child process: `OP N CALLS RECORD READY GO`. Logs in on the config's token, writes
/// READY, waits for GO, makes CALLS calls of OP (the re-wrap and rotation: one) and
/// prints "calls nanoseconds".
pub(super) fn child(args: &[String]) -> Res<()> {
    let [op, n, count, record, ready, go] = args else {
        return Err(err(format!("{CHILD_ARG}: OP N CALLS RECORD READY GO, got {args:?}")));
    };
    let (n, count): (usize, usize) = (n.parse()?, count.parse()?);
    let module = std::env::var_os("CV_PG_MODULE").ok_or_else(|| err("CV_PG_MODULE unset"))?;
    let token = super::stores::reopen(Path::new(&module), LABEL)?;
    let s = &token.session;
    let record = std::fs::read(record)?;
    let master = *s.find_objects(&[Attribute::Label(MASTER_LABEL.to_vec())])?.first().ok_or_else(|| err("master"))?;
    std::fs::write(ready, b"")?;
    while !Path::new(go).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = std::process::id();
    let mut timed = Duration::ZERO;
    let mut done = 0usize;
    match op.as_str() {
        "rotate" | "rewrap" => {
            let mechanism = vendor(if op == "rotate" { CKM_CV_ROTATE_MASTER } else { CKM_CV_REWRAP_STORED })?;
            let started = Instant::now();
            s.generate_key(&mechanism, &[])?;
            timed = started.elapsed();
            done = 1;
        }
        "keygen" => {
            for i in 0..count {
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Encrypt(true),
                    Attribute::Label(format!("gen-{pid}-{i}").into_bytes()),
                ];
                let started = Instant::now();
                s.generate_key(&Mechanism::AesKeyGen, &template)?;
                timed += started.elapsed();
                done += 1;
            }
        }
        "find" => {
            let mut i = usize::try_from(pid).unwrap_or(0) % n.max(1);
            let started = Instant::now();
            for _ in 0..count {
                i = (i + 7919) % n.max(1);
                let found = s.find_objects(&[Attribute::Label(format!("key-{i:07}").into_bytes())])?;
                if found.len() != 1 {
                    return Err(err(format!("key-{i:07}: {} found", found.len())));
                }
                done += 1;
            }
            timed = started.elapsed();
        }
        "unwrap" => {
            let mechanism = vendor(CKM_CV_WRAP_RECORD)?;
            // Each unwrap and the destroy of its session key timed together (the held
            // audit batch is written in either).
            let started = Instant::now();
            for _ in 0..count {
                s.destroy_object(s.unwrap_key(&mechanism, master, &record, &[Attribute::Token(false)])?)?;
                done += 1;
            }
            timed = started.elapsed();
        }
        other => return Err(err(format!("{CHILD_ARG}: unknown op {other:?}"))),
    }
    token.close()?;
    println!("{done} {}", timed.as_nanos());
    Ok(())
}
