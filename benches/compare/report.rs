//! The machine and versions a run records, the speed targets checked against the rows
//! of this run, and `BENCHMARKS.md` (written by a full run, never by `--quick`; its
//! writer is in the child module `markdown`).
//!
//! Every figure in the file comes from the rows [`print_row`](super::print_row) kept in
//! [`ROWS`](super::ROWS) and the notes [`note`] kept during this run; nothing is typed in.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Row, Token, ROWS};

// BENCHMARKS.md from this run's rows, notes and machine.
#[path = "markdown.rs"]
mod markdown;
pub(super) use markdown::write_markdown;

/// Which build the collabvault column (the one the targets are checked on) is.
pub(super) const MAIN_BUILD: &str =
    if cfg!(feature = "aws-lc") { "the default aws-lc build" } else { "the rustcrypto build" };

/// The CPU flags that decide which backends the crates (and SoftHSM2's OpenSSL) pick.
const FLAGS: &[&str] = &["aes", "vaes", "pclmulqdq", "vpclmulqdq", "avx2", "avx512f", "sha_ni", "bmi2", "adx"];

/// The crates whose versions the raw column depends on (read from Cargo.lock).
const CRATES: &[&str] = &[
    "aes", "aes-gcm", "ghash", "polyval", "aes-kw", "p256", "ecdsa", "ml-kem", "sha2", "hmac", "rusqlite", "cryptoki",
];

/// The lock file this benchmark was built against.
const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// Things the run learned besides the rows (how the stores were filled), for the report.
static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps a line for the report's "how the stores were populated" section.
pub(super) fn note(line: String) {
    NOTES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
}

/// One module's `C_GetInfo`.
struct Library {
    manufacturer: String,
    description: String,
    version: String,
    cryptoki: String,
}

impl Library {
    fn probe(token: &Token) -> Option<Library> {
        let info = token.pkcs11.get_library_info().ok()?;
        Some(Library {
            manufacturer: info.manufacturer_id().trim().to_string(),
            description: info.library_description().trim().to_string(),
            version: info.library_version().to_string(),
            cryptoki: info.cryptoki_version().to_string(),
        })
    }

    fn line(lib: &Option<Library>) -> String {
        match lib {
            Some(l) => format!(
                "{} ({}), library version {}, Cryptoki {}",
                l.description, l.manufacturer, l.version, l.cryptoki
            ),
            None => "C_GetInfo failed".into(),
        }
    }

    fn short(lib: &Option<Library>) -> String {
        lib.as_ref().map_or_else(|| "?".into(), |l| l.version.clone())
    }
}

/// What the run ran on.
pub(super) struct Machine {
    cores: usize,
    cpu: String,
    virtualized: bool,
    flags: Vec<(&'static str, bool)>,
    kernel: String,
    rustc: String,
    collabvault: Option<Library>,
    softhsm: Option<Library>,
    /// `None` when the run has no Kryoptic; `Some(None)` when its `C_GetInfo` failed.
    kryoptic: Option<Option<Library>>,
    /// The module's `rustcrypto` build, likewise.
    rustcrypto: Option<Option<Library>>,
    crates: Vec<(&'static str, String)>,
    date: String,
}

fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `name version` pairs from Cargo.lock (the first version of each named crate).
fn locked_versions() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for &want in CRATES {
        let mut name = None;
        let mut found = None;
        for line in CARGO_LOCK.lines() {
            if let Some(v) = line.strip_prefix("name = ") {
                name = Some(v.trim_matches('"'));
            } else if let Some(v) = line.strip_prefix("version = ") {
                if name == Some(want) {
                    found = Some(v.trim_matches('"').to_string());
                    break;
                }
            }
        }
        if let Some(v) = found {
            out.push((want, v));
        }
    }
    out
}

/// UTC date and time of `t` as `YYYY-MM-DD HH:MM UTC` (from the audit log's RFC 3339).
fn utc(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let stamp = collabvault_pkcs11::audit::time::rfc3339(ms);
    format!("{} {} UTC", &stamp[..10], &stamp[11..16])
}

impl Machine {
    /// Reads /proc/cpuinfo, the kernel release, `rustc --version` and every loaded
    /// module's `C_GetInfo`. Never fails: what cannot be read says so.
    pub(super) fn probe(cv: &Token, sh: &Token, ky: Option<&Token>, rc: Option<&Token>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let present: Vec<&str> = cpuinfo_field(&cpuinfo, "flags").unwrap_or("").split_whitespace().collect();
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let rustc = std::process::Command::new(rustc)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(
                || "unknown (rustc not on PATH)".into(),
                |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
            );
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpuinfo_field(&cpuinfo, "model name").unwrap_or(std::env::consts::ARCH).to_string(),
            virtualized: present.contains(&"hypervisor"),
            flags: FLAGS.iter().map(|&f| (f, present.contains(&f))).collect(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
            rustc,
            collabvault: Library::probe(cv),
            softhsm: Library::probe(sh),
            kryoptic: ky.map(Library::probe),
            rustcrypto: rc.map(Library::probe),
            crates: locked_versions(),
            date: utc(SystemTime::now()),
        }
    }

    fn flags_line(&self) -> String {
        let has: Vec<&str> = self.flags.iter().filter(|f| f.1).map(|f| f.0).collect();
        let lacks: Vec<&str> = self.flags.iter().filter(|f| !f.1).map(|f| f.0).collect();
        let mut s = has.join(" ");
        if !lacks.is_empty() {
            let _ = write!(s, " (not: {})", lacks.join(" "));
        }
        s
    }

    fn cpu_line(&self) -> String {
        format!(
            "{} cores (available parallelism), {}{}",
            self.cores,
            self.cpu,
            if self.virtualized { ", virtual machine" } else { "" }
        )
    }

    /// One or two lines for the top of the console table.
    pub(super) fn summary(&self) -> String {
        format!(
            "machine: {}; flags: {}\nversions: {}; collabvault {}, SoftHSM2 {}{}{} (C_GetInfo library versions); {}",
            self.cpu_line(),
            self.flags_line(),
            self.rustc,
            Library::short(&self.collabvault),
            Library::short(&self.softhsm),
            self.kryoptic.as_ref().map_or_else(String::new, |k| format!(", Kryoptic {}", Library::short(k))),
            self.rustcrypto
                .as_ref()
                .map_or_else(String::new, |k| format!(", collabvault rustcrypto {}", Library::short(k))),
            self.date
        )
    }
}

// ---------------------------------------------------------------------------------------
// The speed targets, checked against this run's rows

fn rows() -> Vec<Row> {
    ROWS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

fn find<'a>(rows: &'a [Row], name: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.name == name)
}

fn median(rows: &[Row], name: &str, col: usize) -> Option<f64> {
    Some(find(rows, name)?.vals[col]?.median)
}

/// A check's verdict: what was measured (text) and whether the target holds; `None`
/// when this run did not measure it (a filter, or `--quick`'s small stores).
type Verdict = Option<(String, bool)>;

struct Target {
    what: &'static str,
    check: fn(&[Row]) -> Verdict,
    /// One sentence on what limits the module here, printed only when the target is missed.
    limit: &'static str,
}

/// Every row in `names` must hold `pred` on its figure; the text lists the figures.
fn all_of(
    rows: &[Row],
    names: &[&str],
    figure: impl Fn(&Row) -> Option<f64>,
    show: impl Fn(f64) -> String,
    pred: impl Fn(f64) -> bool,
) -> Verdict {
    let mut parts = Vec::new();
    let mut ok = true;
    for name in names {
        let v = figure(find(rows, name)?)?;
        ok &= pred(v);
        parts.push(format!("{name}: {}", show(v)));
    }
    Some((parts.join("; "), ok))
}

fn ratio_of(col: usize) -> impl Fn(&Row) -> Option<f64> {
    move |r| r.ratio(col)
}

fn per_op_us(r: &Row) -> Option<f64> {
    Some(1e6 / r.vals[0]?.median)
}

fn times(v: f64) -> String {
    format!("{v:.2}x")
}

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

const TARGETS: &[Target] = &[
    Target {
        what: "AES-GCM 64 B encrypt: at least 8x SoftHSM2",
        check: |rows| all_of(rows, &["AES-256-GCM encrypt 64 B"], ratio_of(1), times, |v| v >= 8.0),
        limit: "Most of each small call is outside the cipher: three C calls through cryptoki, \
                each looking up the module, the session and the key (the key schedule itself is \
                prepared once per key object).",
    },
    Target {
        what: "AES-GCM 1 MiB: at least 90% of the raw aes-gcm crate",
        check: |rows| {
            all_of(rows, &["AES-256-GCM encrypt 1 MiB", "AES-256-GCM decrypt 1 MiB"], ratio_of(2), percent, |v| {
                v >= 0.9
            })
        },
        limit: "The one-shot call copies the input into the caller's buffer once and works in \
                place there; what is left over the raw crate is that copy.",
    },
    Target {
        what: "AES-256 token-object key generation (durable): at least 5x SoftHSM2",
        check: |rows| {
            all_of(rows, &["AES-256 key generation (token object, durable)"], ratio_of(1), times, |v| v >= 5.0)
        },
        limit: "Each token object is one SQLite transaction (the object and its audit entry) \
                plus a query of the master-key table for the seal.",
    },
    Target {
        what: "C_FindObjects by label or id: under 200 µs at 100,000 objects",
        check: |rows| {
            all_of(
                rows,
                &[
                    "C_FindObjects by CKA_LABEL, 100k objs, filling process",
                    "C_FindObjects by CKA_ID, 100k objs, filling process",
                    "C_FindObjects by CKA_LABEL, 100k objs, fresh process",
                    "C_FindObjects by CKA_ID, 100k objs, fresh process",
                ],
                per_op_us,
                |v| format!("{v:.0} µs"),
                |v| v < 200.0,
            )
        },
        limit: "The lookup is indexed and a find visits only the session objects beside it; \
                each match's sealed attributes are decrypted and the master key objects listed.",
    },
    Target {
        what: "C_FindObjects by label or id: under 400 µs (2x the 100k target) at 1,000,000 objects",
        check: |rows| {
            all_of(
                rows,
                &[
                    "C_FindObjects by CKA_LABEL, 1M objs, filling process",
                    "C_FindObjects by CKA_ID, 1M objs, filling process",
                    "C_FindObjects by CKA_LABEL, 1M objs, fresh process",
                    "C_FindObjects by CKA_ID, 1M objs, fresh process",
                ],
                per_op_us,
                |v| format!("{v:.0} µs"),
                |v| v < 400.0,
            )
        },
        limit: "The lookup is indexed and a find visits only the session objects beside it; what grows with \
                the store is SQLite's B-tree depth and the decrypting of each match's sealed attributes.",
    },
    Target {
        what: "cold start (C_Initialize + C_OpenSession + C_Login) with 100,000 objects: under 400 ms",
        check: |rows| {
            all_of(
                rows,
                &["cold start (Initialize+OpenSession+Login), 100k objs"],
                |r| Some(r.vals[0]?.median),
                |v| format!("{v:.1} ms"),
                |v| v < 400.0,
            )
        },
        limit: "Nearly all of it is C_Login's Argon2id PIN derivation (64 MiB, 3 passes since issue #12: \
                the cost of every offline guess against a copied store), which does not depend on the \
                store's size; the `C_Login` row alone shows it.",
    },
    Target {
        what: "resident memory with 1,000,000 objects: under 200 MB",
        check: |rows| {
            all_of(
                rows,
                &["resident memory after login + find, 1M objs"],
                |r| Some(r.vals[0]?.median),
                |v| format!("{v:.1} MiB"),
                |v| v * 1.048_576 < 200.0,
            )
        },
        limit: "Memory grows with the store.",
    },
    Target {
        what: "two threads: at least 1.8x one thread (AES-GCM 4 KiB, ECDSA sign)",
        check: |rows| {
            let mut parts = Vec::new();
            let mut ok = true;
            for what in ["AES-256-GCM encrypt 4 KiB", "ECDSA P-256 sign"] {
                let one = median(rows, &format!("{what}, 1 thread(s)"), 0)?;
                let two = median(rows, &format!("{what}, 2 thread(s)"), 0)?;
                ok &= two / one >= 1.8;
                parts.push(format!("{what}: {:.2}x", two / one));
            }
            Some((parts.join("; "), ok))
        },
        limit: "Each call still takes the module-state lock and the session and handle tables' \
                read locks and clones the module's and the key object's reference counts, shared \
                cache lines the two cores pass back and forth; on this shared 2-core machine the raw \
                crate's own two-thread figure shows how much of a second core the run got.",
    },
    Target {
        what: "ECDSA, ECDH, ML-KEM, SHA-256, HMAC: at least 85% of the raw crate",
        check: |rows| {
            all_of(
                rows,
                &[
                    "ECDSA P-256 sign",
                    "ECDSA P-256 verify",
                    "ECDH P-256 derive (CKD_NULL)",
                    "ML-KEM-768 key pair generation",
                    "ML-KEM-768 encapsulate",
                    "ML-KEM-768 decapsulate",
                    "SHA-256 digest 4 KiB",
                    "HMAC-SHA256 4 KiB",
                ],
                ratio_of(2),
                percent,
                |v| v >= 0.85,
            )
        },
        limit: "Operations that make a key (ECDH, ML-KEM encapsulation, decapsulation and key \
                generation) make a session object and, as the audit log requires of key management, \
                a hash-chained entry for it and another for its C_DestroyObject, both in the timed \
                part (a SHA-256 chain hash and an SQLite insert each, written in batches; two of each \
                for a key pair), where the raw crate makes no object. SHA-256 and HMAC over 4 KiB: \
                the hash itself (the CPU's SHA extensions, as in the raw crate) is about 2.3 µs of a \
                2.8 µs call; the rest is the three C calls through cryptoki (init, the length query, \
                the call) that the raw crate does not make.",
    },
    Target {
        what: "session-object key management (keygen, unwrap, ECDH): at least 1.5x SoftHSM2 and 1.0x Kryoptic",
        check: |rows| {
            let mut parts = Vec::new();
            let mut ok = true;
            for name in [
                "AES-256 key generation (session object)",
                "AES-KW unwrap AES-256 key",
                "AES-KWP unwrap AES-256 key",
                "ECDH P-256 derive (CKD_NULL)",
            ] {
                let row = find(rows, name)?;
                let sh = row.ratio(1)?;
                ok &= sh >= 1.5;
                // Kryoptic only when the run has it.
                let ky = row.ratio(super::KY);
                ok &= ky.is_none_or(|v| v >= 1.0);
                let ky = ky.map_or_else(String::new, |v| format!(", {v:.2}x Kryoptic"));
                parts.push(format!("{name}: {sh:.2}x SoftHSM2{ky}"));
            }
            Some((parts.join("; "), ok))
        },
        limit: "Each key made and destroyed is an object (the attributes given or set by the token; \
                its class's defaults are read from one shared table) and two hash-chained audit \
                entries, held and written with their batch (a SHA-256 chain hash and an SQLite insert \
                each, about 19k instructions under callgrind, where valgrind hides SHA-NI): the audit \
                log SoftHSM2 and Kryoptic do not keep.",
    },
    Target {
        what: "re-wrap of stored DEKs: at least 100,000 per second (1,000,000 in under 10 s)",
        check: |rows| {
            all_of(
                rows,
                &["re-wrap 100k stored DEKs (CKM_CV_REWRAP_STORED)", "re-wrap 1M stored DEKs (CKM_CV_REWRAP_STORED)"],
                |r| Some(r.vals[0]?.median),
                |v| format!("{:.1}k/s", v / 1e3),
                |v| v >= 100_000.0,
            )
        },
        limit: "Each record costs a row read, an AES-GCM open and seal, a fresh nonce from the \
                OS and an UPDATE inside its batch's transaction, about 12 µs; the job reads forward \
                from a cursor, so the rate falls only with the B-tree's depth.",
    },
];

/// The targets as text lines: `(target, measured, verdict, limit if missed)`.
fn verdicts(rows: &[Row]) -> Vec<(&'static str, String, &'static str, Option<&'static str>)> {
    TARGETS
        .iter()
        .map(|t| match (t.check)(rows) {
            Some((text, true)) => (t.what, text, "met", None),
            Some((text, false)) => (t.what, text, "missed", Some(t.limit)),
            None => (t.what, "not measured in this run".into(), "-", None),
        })
        .collect()
}

/// Prints the target check under the console table (information, never a failure).
pub(super) fn print_targets() {
    let rows = rows();
    println!();
    println!(
        "targets against this run, on the collabvault column ({}; information only, the harness never fails on a speed):",
        MAIN_BUILD
    );
    for (what, measured, verdict, _) in verdicts(&rows) {
        println!("  [{verdict:>6}] {what}: {measured}");
    }
}
