//! What the audit log costs. AES-256-GCM 4 KiB and a DEK unwrap under the
//! master key (`CKM_CV_WRAP_RECORD`), with the module's data operations audited as
//! per-session counters (the default), as one durable entry per call, and not at all.
//!
//! One process holds one instance of the module, so the three modes cannot be loaded
//! side by side: each mode gets its own store and configuration and a fresh
//! `C_Initialize`, and the rounds alternate the modes (off, counters, per-call, off, ...)
//! so the machine's noise falls on all three alike. In these rows the third column is
//! the module with `data_operations = "off"`, not a raw crate: cv/raw is the mode's rate
//! against audit off. A DEK unwrap is key management, always one durable entry whatever
//! the mode, so its ratios show the cost of nothing but the mode's counters.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use tempfile::TempDir;

use super::{cfg, err, print_row, secret_template, Res, Row, Stats, Token};

const CKM_CV_WRAP_RECORD: u64 = 0xC356_0001;
const MASTER_LABEL: &[u8] = b"collabvault-master";
/// The modes, in column order of the rows: measured, measured, baseline.
const MODES: [&str; 3] = ["counters", "per-call", "off"];

/// The rows this file prints.
pub(super) fn names() -> [String; 4] {
    [
        "AES-256-GCM encrypt 4 KiB, audit counters (vs off)".into(),
        "AES-256-GCM encrypt 4 KiB, audit per-call (vs off)".into(),
        "CV_WRAP_RECORD unwrap DEK, audit counters (vs off)".into(),
        "CV_WRAP_RECORD unwrap DEK, audit per-call (vs off)".into(),
    ]
}

/// One mode's module: initialized on its own store, with a key and a record to use.
struct Moded {
    token: Token,
    key: ObjectHandle,
    master: ObjectHandle,
    record: Vec<u8>,
}

fn record_mechanism() -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(CKM_CV_WRAP_RECORD).map_err(|e| err(e.to_string()))?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

impl Moded {
    fn open(dir: &TempDir, cv_path: &Path, mode: &str) -> Res<Moded> {
        super::use_cv_config(
            dir,
            &format!("collabvault-audit-{mode}.toml"),
            &format!("cv-store-audit-{mode}"),
            &format!("[audit]\ndata_operations = {mode:?}\n"),
        )?;
        let token = Token::open("collabvault", cv_path, "cv-audit")?;
        let key = token.session.generate_key(
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
        let record = token.session.wrap_key(&record_mechanism()?, master, key)?;
        Ok(Moded { token, key, master, record })
    }

    /// Ops/s of `n` AES-256-GCM 4 KiB encryptions (init + length query + call each).
    fn encrypt(&self, n: u64) -> Res<f64> {
        let data = vec![0x5au8; 4096];
        let start = Instant::now();
        for i in 0..n {
            let mut iv = [0u8; 12];
            iv[4..].copy_from_slice(&i.to_be_bytes());
            let params = GcmParams::new(&mut iv, &[], 128.into())?;
            black_box(self.token.session.encrypt(&Mechanism::AesGcm(params), self.key, &data)?);
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }

    /// Ops/s of `n` DEK unwraps from a record, each with the destroy of the session key
    /// it made (timed together: the held audit batch is written in either).
    fn unwrap(&self, n: u64) -> Res<f64> {
        let mechanism = record_mechanism()?;
        let start = Instant::now();
        for _ in 0..n {
            let k = self.token.session.unwrap_key(&mechanism, self.master, &self.record, &[Attribute::Token(false)])?;
            self.token.session.destroy_object(k)?;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }
}

/// A count of operations taking about the configured batch time for `op` (which returns
/// ops/s for the count it is given).
fn batch_size(op: &dyn Fn(u64) -> Res<f64>) -> Res<u64> {
    let per_op = std::time::Duration::from_secs_f64(1.0 / op(64)?);
    let n = cfg().batch_target.as_nanos() / per_op.as_nanos().max(1);
    Ok(u64::try_from(n).unwrap_or(u64::MAX).max(16))
}

/// Runs the rows (if any is wanted).
pub(super) fn run(dir: &TempDir, cv_path: &Path, wanted: &dyn Fn(&str) -> bool) -> Res<()> {
    let names = names();
    if !names.iter().any(|n| wanted(n)) {
        return Ok(());
    }
    // rates[mode][0] encrypt, rates[mode][1] unwrap, one value per round.
    let mut rates: [[Vec<f64>; 2]; 3] = Default::default();
    let mut sizes: Option<(u64, u64)> = None;
    for _ in 0..cfg().batches {
        for (m, mode) in MODES.iter().enumerate() {
            let moded = Moded::open(dir, cv_path, mode)?;
            let (enc_n, unwrap_n) = match sizes {
                Some(s) => s,
                None => {
                    // Sized once, on the first mode, so every mode runs the same counts.
                    let s = (batch_size(&|n| moded.encrypt(n))?, batch_size(&|n| moded.unwrap(n))?);
                    sizes = Some(s);
                    s
                }
            };
            rates[m][0].push(moded.encrypt(enc_n)?);
            rates[m][1].push(moded.unwrap(unwrap_n)?);
            moded.token.close()?;
        }
    }
    let stats = |m: usize, op: usize| Stats::of(rates[m][op].clone());
    for (i, name) in names.iter().enumerate() {
        if !wanted(name) {
            continue;
        }
        let (op, mode) = (i / 2, i % 2);
        let mut row = Row::rates(name.clone(), &[stats(mode, op), None, stats(2, op)]);
        row.missing = ["-", "no audit log", "-", "-", "-"];
        print_row(&row);
    }
    println!("  (the audit rows' third column is this module with data_operations = \"off\", not a raw crate)");
    Ok(())
}
