//! `cargo bench --bench compare`: this module against SoftHSM2, Kryoptic and the raw crates.
//!
//! One process loads `libcollabvault_pkcs11.so`, SoftHSM2's `libsofthsm2.so`, when
//! `scripts/build-kryoptic.sh` has built it, Kryoptic's `libkryoptic_pkcs11.so`, and when
//! it is built, the module's `rustcrypto` build (`target/rustcrypto/release/`) through
//! the `cryptoki` crate and drives each with the same client code ([`Client`]); the raw
//! rows do the same cryptography with the RustCrypto crates the module is built on, with
//! no PKCS#11 in between. Each row's contenders run interleaved: after a warm-up that
//! sizes every batch to about [`BATCH_TARGET`], [`BATCHES`] rounds each time one batch of
//! every contender, and the table prints the median rate of each and the ratios of those
//! medians, all from this one run.
//!
//! Needs SoftHSM2 (`bash scripts/install-deps.sh`); without Kryoptic (or the rustcrypto
//! build) the run has no Kryoptic (rustcrypto) column. `SOFTHSM2_MODULE`,
//! `KRYOPTIC_MODULE`, `COLLABVAULT_MODULE` and `COLLABVAULT_RUSTCRYPTO_MODULE` override
//! the library paths.

// A measurement harness, not library code: no docs on its items.
#![allow(missing_docs)]

use std::error::Error;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_kw::AesKw;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn Error>>;

// RSA, P-384, Ed25519 rows and the RSA decryption timing row.
#[path = "compare/public_key.rs"]
mod public_key;
// The raw column of the RSA and ML-KEM rows: the backend the module was built with.
#[path = "compare/backend_raw.rs"]
mod backend_raw;
// The rows beyond the first set (message API, key generation, KWP, the master
// key, digests, random).
#[path = "compare/extra.rs"]
mod extra;
// ML-DSA-65 and X-Wing, beside the raw crates.
#[path = "compare/pq.rs"]
mod pq;
// AES key wrap with padding (RFC 5649) through the raw C ABI.
#[path = "compare/kwp.rs"]
mod kwp;
// Threads, each with its own session.
#[path = "compare/scaling.rs"]
mod scaling;
// Large stores (find, cold start, memory, login, re-wrap of stored DEKs).
#[path = "compare/stores.rs"]
mod stores;
// The audit log's cost, by how data operations are recorded.
#[path = "compare/audit.rs"]
mod audit;
// This module on a PostgreSQL store beside its SQLite store, 1 and 3 processes.
#[path = "compare/pg_store.rs"]
mod pg_store;
// The machine, the versions, the table as BENCHMARKS.md and the targets.
#[path = "compare/report.rs"]
mod report;
// The modules loaded (this one, SoftHSM2, Kryoptic) and a fresh token on each.
#[path = "compare/peers.rs"]
mod peers;
// The client code every module's rows share.
#[path = "compare/client.rs"]
mod client;
// The table's rows and columns, printed as they are measured.
#[path = "compare/table.rs"]
mod table;

use client::{secret_template, Client};
use peers::{use_cv_config, Token};
use table::{
    by_column, fmt_cell, fmt_per_op, fmt_ratio, kryoptic_column, measure_row, print_header, print_row,
    rustcrypto_column, unit_name, Row, Unit, KRYOPTIC_COLUMN, KY, RAW, RC, ROWS, RUSTCRYPTO_COLUMN,
};

/// How much a run does: the full run (the table in BENCHMARKS.md) or `--quick` (every
/// row briefly, small stores; CI runs it so the harness cannot rot, never for a speed).
struct Cfg {
    /// `--quick`.
    quick: bool,
    /// Timed batches per contender and row; the table shows their median and spread.
    batches: usize,
    /// Wall time one batch aims at.
    batch_target: Duration,
    /// A calibration batch at least this long sizes the timed ones.
    calibrate_min: Duration,
    /// Store sizes, ascending: one store per module grows through them; the find, cold
    /// start, login and memory rows run at each.
    store_sizes: Vec<usize>,
    /// The sizes at which every stored DEK is re-wrapped to a new master key version.
    rewrap_sizes: Vec<usize>,
    /// The largest store the peers (SoftHSM2, Kryoptic) get: each key is a durable
    /// commit or file for them, and SoftHSM2 reads every object on each find.
    peer_max: usize,
    /// Repeats of the one-shot rows (cold start, re-wrap).
    repeats: usize,
}

static CFG: std::sync::OnceLock<Cfg> = std::sync::OnceLock::new();

fn cfg() -> &'static Cfg {
    CFG.get_or_init(|| Cfg::new(false))
}

impl Cfg {
    fn new(quick: bool) -> Cfg {
        if quick {
            Cfg {
                quick,
                batches: 5,
                batch_target: Duration::from_millis(8),
                calibrate_min: Duration::from_millis(2),
                store_sizes: vec![500, 2000],
                rewrap_sizes: vec![500, 2000],
                peer_max: 500,
                repeats: 5,
            }
        } else {
            Cfg {
                quick,
                batches: 7,
                batch_target: Duration::from_millis(150),
                calibrate_min: Duration::from_millis(20),
                store_sizes: vec![1000, 10_000, 100_000, 1_000_000],
                rewrap_sizes: vec![100_000, 1_000_000],
                peer_max: 10_000,
                repeats: 5,
            }
        }
    }
}

const SO_PIN: &str = "bench-so-pin-1234";
const USER_PIN: &str = "bench-user-pin-1234";
/// DER OID of P-256 (prime256v1), as `CKA_EC_PARAMS`.
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn err(msg: impl Into<String>) -> Box<dyn Error> {
    msg.into().into()
}

// ---------------------------------------------------------------------------------------
// Measurement

/// Runs `n` operations and returns the time they took (callers may leave untimed
/// clean-up, such as destroying the key an operation made, out of the figure).
type Batch<'a> = Box<dyn FnMut(u64) -> Res<Duration> + 'a>;

/// Times `n` calls of `op`.
fn timed(n: u64, mut op: impl FnMut() -> Res<()>) -> Res<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        op()?;
    }
    Ok(start.elapsed())
}

/// Warm-up and calibration: grows the batch until it takes a measurable time, then
/// returns the size that takes about the configured batch time.
fn calibrate(batch: &mut Batch<'_>) -> Res<u64> {
    let mut n: u64 = 1;
    loop {
        let took = batch(n)?;
        if took >= cfg().calibrate_min || n >= 1 << 30 {
            let size = u128::from(n) * cfg().batch_target.as_nanos() / took.as_nanos().max(1);
            return Ok(u64::try_from(size).unwrap_or(u64::MAX).max(1));
        }
        n = n.saturating_mul(if took < Duration::from_millis(2) { 8 } else { 2 });
    }
}

/// A row's figure for one contender: the median of its repeats and their range.
#[derive(Clone, Copy, Debug)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(mut v: Vec<f64>) -> Option<Stats> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Stats { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] })
    }
}

/// Median ops/s (with min and max) of each contender (`None` where it has no batch),
/// batches interleaved.
fn measure(contenders: &mut [Option<Batch<'_>>]) -> Res<Vec<Option<Stats>>> {
    let mut sizes = Vec::new();
    for c in contenders.iter_mut() {
        sizes.push(match c {
            Some(b) => Some(calibrate(b)?),
            None => None,
        });
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for _ in 0..cfg().batches {
        for (i, c) in contenders.iter_mut().enumerate() {
            if let (Some(b), Some(n)) = (c, sizes[i]) {
                let took = b(n)?;
                rates[i].push(n as f64 / took.as_secs_f64().max(1e-12));
            }
        }
    }
    Ok(rates.into_iter().map(Stats::of).collect())
}

// ---------------------------------------------------------------------------------------
// The raw crates

struct Raw {
    gcm: Aes256Gcm,
    kek: AesKw<aes_kw::aes::Aes256>,
    target: [u8; 32],
    wrapped: Vec<u8>,
    signing: SigningKey,
    verifying: VerifyingKey,
    signature: Signature,
    ecdh_secret: SecretKey,
}

fn random<const N: usize>() -> Res<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| err(format!("getrandom: {e}")))?;
    Ok(b)
}

impl Raw {
    fn setup(hash: &[u8]) -> Res<Raw> {
        let gcm = Aes256Gcm::new_from_slice(&random::<32>()?).map_err(|e| err(e.to_string()))?;
        let kek = AesKw::<aes_kw::aes::Aes256>::new_from_slice(&random::<32>()?).map_err(|e| err(e.to_string()))?;
        let target = random::<32>()?;
        let mut wrapped = vec![0u8; 40];
        kek.wrap_key(&target, &mut wrapped).map_err(|e| err(e.to_string()))?;
        let signing = loop {
            if let Ok(k) = SigningKey::from_slice(&random::<32>()?) {
                break k;
            }
        };
        let verifying = *signing.verifying_key();
        let signature: Signature = signing.sign_prehash(hash).map_err(|e| err(e.to_string()))?;
        let ecdh_secret = SecretKey::from_slice(&signing.to_bytes()).map_err(|e| err(e.to_string()))?;
        Ok(Raw { gcm, kek, target, wrapped, signing, verifying, signature, ecdh_secret })
    }

    /// Copy in, encrypt in place, append the tag: what a `C_Encrypt` returns.
    fn gcm_encrypt(&self, iv_counter: &mut u64, data: &[u8], buf: &mut Vec<u8>) -> Res<()> {
        *iv_counter += 1;
        let mut iv = [0u8; 12];
        iv[4..].copy_from_slice(&iv_counter.to_be_bytes());
        buf.clear();
        buf.extend_from_slice(data);
        let tag = self
            .gcm
            .encrypt_inout_detached(&Nonce::from(iv), &[], buf.as_mut_slice().into())
            .map_err(|e| err(e.to_string()))?;
        buf.extend_from_slice(&tag);
        black_box(&buf);
        Ok(())
    }

    fn gcm_decrypt(&self, sealed: &[u8], buf: &mut Vec<u8>) -> Res<()> {
        let split = sealed.len() - 16;
        buf.clear();
        buf.extend_from_slice(&sealed[..split]);
        let tag = sealed[split..].try_into().map_err(|_| err("tag length"))?;
        self.gcm
            .decrypt_inout_detached(&Nonce::from([7u8; 12]), &[], buf.as_mut_slice().into(), tag)
            .map_err(|e| err(e.to_string()))?;
        black_box(&buf);
        Ok(())
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut config = Cfg::new(quick);
    // `--stores=1000,10000`: other store sizes (and re-wrap at each), for profiling runs.
    if let Some(list) = args.iter().find_map(|a| a.strip_prefix("--stores=")) {
        let sizes = list.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?;
        config.store_sizes.clone_from(&sizes);
        config.rewrap_sizes = sizes;
    }
    // `--peer-max=N`: the largest store SoftHSM2 and Kryoptic get.
    if let Some(n) = args.iter().find_map(|a| a.strip_prefix("--peer-max=")) {
        config.peer_max = n.parse()?;
    }
    let custom = args.iter().any(|a| a.starts_with("--stores=") || a.starts_with("--peer-max="));
    CFG.get_or_init(|| config);
    // Child processes of the store rows (stores.rs): cold start and memory, fresh-process finds.
    match args.first().map(String::as_str) {
        Some(stores::CHILD_ARG) => return stores::child(&args[1..]),
        Some(stores::FIND_CHILD_ARG) => return stores::find_child(&args[1..]),
        Some(pg_store::CHILD_ARG) => return pg_store::child(&args[1..]),
        _ => {}
    }
    // `cargo bench` passes `--bench`; any other argument filters rows by substring.
    let filter: Vec<String> = args.iter().filter(|a| !a.starts_with("--")).cloned().collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));

    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    peers::configure(&dir)?;
    let cv_path = peers::collabvault_module()?;
    let sh_path = peers::softhsm_module()?;
    eprintln!("collabvault: {}\nsofthsm2:    {}", cv_path.display(), sh_path.display());

    let cv = Token::open("collabvault", &cv_path, "cv-bench")?;
    let sh = Token::open("softhsm2", &sh_path, "softhsm-bench")?;
    let (ky, ky_path) = peers::open_kryoptic(&dir).unzip();
    if let Some(path) = &ky_path {
        eprintln!("kryoptic:    {}", path.display());
    }
    KRYOPTIC_COLUMN.store(ky.is_some(), Ordering::Relaxed);
    let (rc, rc_path) = peers::open_rustcrypto(&dir).unzip();
    if let Some(path) = &rc_path {
        eprintln!("rustcrypto:  {}", path.display());
    }
    RUSTCRYPTO_COLUMN.store(rc.is_some(), Ordering::Relaxed);
    let machine = report::Machine::probe(&cv, &sh, ky.as_ref(), rc.as_ref());
    // The PKCS#11 modules in peer order (the order of their batches in every row, see
    // table::peer_columns).
    let mut tokens = vec![&cv, &sh];
    tokens.extend(ky.as_ref());
    tokens.extend(rc.as_ref());
    let mut paths = vec![cv_path.as_path(), sh_path.as_path()];
    paths.extend(ky_path.as_deref());
    paths.extend(rc_path.as_deref());

    let hash = Sha256::digest(b"benchmark message").to_vec();
    eprintln!("setting up keys per module...");
    let setups = tokens.iter().map(|t| Client::setup(t, &hash)).collect::<Res<Vec<_>>>()?;
    let raw = Raw::setup(&hash)?;
    let raw_kem = backend_raw::MlKem::new()?;
    let clients: Vec<&Client<'_>> = setups.iter().collect();
    let supports = |m: MechanismType| tokens.iter().map(|t| t.has(m).unwrap_or(false)).collect::<Vec<bool>>();

    let peer = SecretKey::from_slice(&random::<32>()?).map_err(|e| err(e.to_string()))?.public_key();
    let peer_point = peer.to_sec1_point(false).as_bytes().to_vec();

    println!();
    println!("{}", machine.summary());
    println!(
        "{} mode: each cell is the median [min–max] of {} interleaved batches of ~{} ms after a warm-up; \
         ratios are of medians, >1 means collabvault is better",
        if quick { "quick" } else { "full" },
        cfg().batches,
        cfg().batch_target.as_millis()
    );
    println!();
    print_header();

    let run = |name: String, contenders: Vec<Option<Batch<'_>>>| -> Res<()> {
        if wanted(&name) {
            measure_row(&name, contenders)?;
        }
        Ok(())
    };

    // AES-GCM encrypt and decrypt.
    let gcm_ok = supports(MechanismType::AES_GCM);
    for size in [64usize, 4096, 1 << 20] {
        let data = vec![0x5au8; size];
        let label = match size {
            64 => "64 B".to_string(),
            4096 => "4 KiB".to_string(),
            _ => "1 MiB".to_string(),
        };
        let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
        for (c, ok) in clients.iter().zip(gcm_ok.iter().copied()) {
            let data = &data;
            contenders.push(ok.then(|| -> Batch<'_> {
                let mut ctr = 0u64;
                Box::new(move |n| timed(n, || c.gcm_encrypt(&mut ctr, data)))
            }));
        }
        let (raw_ref, data_ref) = (&raw, &data);
        let mut ctr = 0u64;
        let mut buf = Vec::with_capacity(size + 16);
        contenders.push(Some(Box::new(move |n| timed(n, || raw_ref.gcm_encrypt(&mut ctr, data_ref, &mut buf)))));
        run(format!("AES-256-GCM encrypt {label}"), contenders)?;

        let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
        for (c, ok) in clients.iter().zip(gcm_ok.iter().copied()) {
            let sealed = if ok { c.gcm_seal_once(&data)? } else { Vec::new() };
            contenders.push(ok.then(|| -> Batch<'_> { Box::new(move |n| timed(n, || c.gcm_decrypt(&sealed))) }));
        }
        let mut sealed = data.clone();
        let tag = raw
            .gcm
            .encrypt_inout_detached(&Nonce::from([7u8; 12]), &[], sealed.as_mut_slice().into())
            .map_err(|e| err(e.to_string()))?;
        sealed.extend_from_slice(&tag);
        let mut buf = Vec::with_capacity(size);
        contenders.push(Some(Box::new(move |n| timed(n, || raw_ref.gcm_decrypt(&sealed, &mut buf)))));
        run(format!("AES-256-GCM decrypt {label}"), contenders)?;
    }

    // AES key wrap (RFC 3394) of an AES-256 key under an AES-256 KEK.
    let kw_ok = supports(MechanismType::AES_KEY_WRAP);
    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for (c, ok) in clients.iter().zip(kw_ok.iter().copied()) {
        if !ok {
            contenders.push(None);
            continue;
        }
        let t = secret_template(&[
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
        ]);
        let target = c.s.generate_key(&Mechanism::AesKeyGen, &t)?;
        contenders.push(Some(Box::new(move |n| timed(n, || c.wrap(target)))));
    }
    let raw_ref = &raw;
    contenders.push(Some(Box::new(move |n| {
        let mut out = [0u8; 40];
        timed(n, || {
            black_box(raw_ref.kek.wrap_key(&raw_ref.target, &mut out).map_err(|e| err(e.to_string()))?);
            Ok(())
        })
    })));
    run("AES-KW wrap AES-256 key".into(), contenders)?;

    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for (c, ok) in clients.iter().zip(kw_ok.iter().copied()) {
        contenders.push(ok.then(|| c.making_keys(Client::unwrap)));
    }
    contenders.push(Some(Box::new(move |n| {
        let mut out = [0u8; 32];
        timed(n, || {
            black_box(raw_ref.kek.unwrap_key(&raw_ref.wrapped, &mut out).map_err(|e| err(e.to_string()))?);
            Ok(())
        })
    })));
    run("AES-KW unwrap AES-256 key".into(), contenders)?;

    // ECDSA P-256 over a SHA-256 hash.
    let ecdsa_ok = supports(MechanismType::ECDSA);
    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for (c, ok) in clients.iter().zip(ecdsa_ok.iter().copied()) {
        let hash = &hash;
        contenders.push(ok.then(|| -> Batch<'_> { Box::new(move |n| timed(n, || c.sign(hash))) }));
    }
    let hash_ref = &hash;
    contenders.push(Some(Box::new(move |n| {
        timed(n, || {
            let sig: Signature = raw_ref.signing.sign_prehash(hash_ref).map_err(|e| err(e.to_string()))?;
            black_box(sig);
            Ok(())
        })
    })));
    run("ECDSA P-256 sign".into(), contenders)?;

    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for (c, ok) in clients.iter().zip(ecdsa_ok.iter().copied()) {
        let hash = &hash;
        contenders.push(ok.then(|| -> Batch<'_> { Box::new(move |n| timed(n, || c.verify(hash))) }));
    }
    contenders.push(Some(Box::new(move |n| {
        timed(n, || {
            raw_ref.verifying.verify_prehash(hash_ref, &raw_ref.signature).map_err(|e| err(e.to_string()))?;
            Ok(())
        })
    })));
    run("ECDSA P-256 verify".into(), contenders)?;

    // ECDH P-256, CKD_NULL, a 32-byte generic secret (the raw row parses the peer point too).
    let ecdh_ok = supports(MechanismType::ECDH1_DERIVE);
    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for (c, ok) in clients.iter().zip(ecdh_ok.iter().copied()) {
        let point = &peer_point;
        contenders.push(ok.then(|| -> Batch<'_> {
            // The derive and the destroy timed together (see `Client::making_keys`).
            Box::new(move |n| {
                let start = Instant::now();
                for _ in 0..n {
                    c.s.destroy_object(c.ecdh(point)?)?;
                }
                Ok(start.elapsed())
            })
        }));
    }
    let point_ref = &peer_point;
    contenders.push(Some(Box::new(move |n| {
        timed(n, || {
            let peer = PublicKey::from_sec1_bytes(point_ref).map_err(|e| err(e.to_string()))?;
            black_box(raw_ref.ecdh_secret.diffie_hellman(&peer));
            Ok(())
        })
    })));
    run("ECDH P-256 derive (CKD_NULL)".into(), contenders)?;

    // ML-KEM-768.
    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for c in &clients {
        contenders.push(c.mlkem.is_some().then(|| c.making_keys(Client::encapsulate)));
    }
    let raw_kem = &raw_kem;
    contenders.push(Some(Box::new(move |n| {
        timed(n, || {
            black_box(raw_kem.encapsulate()?);
            Ok(())
        })
    })));
    run("ML-KEM-768 encapsulate".into(), contenders)?;

    let mut contenders: Vec<Option<Batch<'_>>> = Vec::new();
    for c in &clients {
        contenders.push(c.mlkem.is_some().then(|| c.making_keys(Client::decapsulate)));
    }
    contenders.push(Some(Box::new(move |n| timed(n, || raw_kem.decapsulate()))));
    run("ML-KEM-768 decapsulate".into(), contenders)?;

    public_key::run(&tokens, &wanted)?;

    // The further rows, threads, then the large stores (which re-initialize the
    // module with other stores: its main token closes first; the peers' store rows grow
    // their main tokens). The audit rows compare this module with itself.
    extra::run(&tokens, &paths, &clients, &raw, &wanted)?;
    pq::run(&tokens, &clients, &wanted)?;
    scaling::run(&tokens, &clients, &raw, &hash, &wanted)?;
    drop(clients);
    drop(setups);
    drop(tokens);
    cv.close()?;
    if let Some(rc) = rc {
        rc.close()?;
    }
    audit::run(&dir, &cv_path, &wanted)?;
    pg_store::run(&dir, &cv_path, &wanted)?;
    let ky_peer = ky.as_ref().zip(ky_path.as_deref());
    stores::run(&dir, &cv_path, (&sh, &sh_path), ky_peer, &raw, &wanted)?;
    sh.close()?;
    if let Some(ky) = ky {
        ky.close()?;
    }

    println!();
    println!(
        "raw: the same crates (aes-gcm, aes-kw, p256; RSA and ML-KEM: {}) called directly with pre-built keys; \
         ops that make a session key time the call and the C_DestroyObject after it together \
         (the raw crates have no object to destroy), durable token keys the call only.{}",
        backend_raw::NAME,
        if kryoptic_column() { " kryoptic: n/a where it does not offer the mechanism or function." } else { "" }
    );
    if rustcrypto_column() {
        println!(
            "rustcrypto: this module built with --no-default-features --features rustcrypto (the pure-Rust \
             backend) on a store of its own; rc/sh is its ratio to SoftHSM2 as cv/sh is the default build's \
             (cv/sh over rc/sh: how much faster the default build is). The store, audit and hierarchy rows \
             run on the default build only (\"-\" or \"not run\" there)."
        );
    }
    report::print_targets();
    let total = started.elapsed();
    eprintln!("total {total:.1?}");
    // A full, unfiltered run rewrites BENCHMARKS.md; `--markdown=PATH` writes any run's
    // report to PATH instead (to look at the format without a full run).
    let markdown = args.iter().find_map(|a| a.strip_prefix("--markdown=")).map(PathBuf::from);
    if let Some(path) = markdown {
        report::write_markdown(&machine, total, &path)?;
    } else if !quick && !custom && filter.is_empty() {
        report::write_markdown(&machine, total, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"))?;
    }
    drop(dir);
    Ok(())
}
