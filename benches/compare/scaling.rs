//! The scaling rows: AES-256-GCM encrypt 4 KiB and ECDSA P-256 sign with one and
//! with two threads, each thread in its own session (the keys are session objects of
//! the main session, which every session of the application sees). A row's rate is the
//! total over its threads; the report compares two threads with one.

use std::hint::black_box;
use std::time::Instant;

use aes_gcm::aead::AeadInOut;
use aes_gcm::Nonce;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::session::Session;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::Signature;

use super::{err, measure_row, Batch, Client, Raw, Res, Token};

/// A batch of `n` operations split over `threads` threads, each with its own session
/// (opened per batch, so the wall time includes it: microseconds against ~150 ms).
fn threaded<'a>(token: &'a Token, threads: usize, op: &'a (dyn Fn(&Session, u64) -> Res<()> + Sync)) -> Batch<'a> {
    // A `Session` is not `Sync`, so the threads get the library and the slot.
    let (pkcs11, slot) = (&token.pkcs11, token.slot);
    Box::new(move |n| {
        let per = (n / threads as u64).max(1);
        let start = Instant::now();
        std::thread::scope(|scope| -> Res<()> {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || -> Result<(), String> {
                        let s = pkcs11.open_rw_session(slot).map_err(|e| e.to_string())?;
                        for i in 0..per {
                            op(&s, (t as u64) << 40 | i).map_err(|e| e.to_string())?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join().map_err(|_| err("worker panicked"))?.map_err(err)?;
            }
            Ok(())
        })?;
        // The rate is per * threads operations over the wall time.
        let took = start.elapsed();
        Ok(took.mul_f64(n as f64 / (per * threads as u64) as f64))
    })
}

/// The raw crate on `threads` threads.
fn raw_threaded<'a>(threads: usize, op: &'a (dyn Fn(u64) -> Res<()> + Sync)) -> Batch<'a> {
    Box::new(move |n| {
        let per = (n / threads as u64).max(1);
        let start = Instant::now();
        std::thread::scope(|scope| -> Res<()> {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || -> Result<(), String> {
                        for i in 0..per {
                            op((t as u64) << 40 | i).map_err(|e| e.to_string())?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join().map_err(|_| err("worker panicked"))?.map_err(err)?;
            }
            Ok(())
        })?;
        let took = start.elapsed();
        Ok(took.mul_f64(n as f64 / (per * threads as u64) as f64))
    })
}

fn iv_of(i: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[4..].copy_from_slice(&i.to_be_bytes());
    iv
}

/// Runs the rows; `wanted` filters by row name. `tokens` and `clients` are in peer
/// order: collabvault, SoftHSM2, Kryoptic (when in the run).
pub(super) fn run(
    tokens: &[&Token],
    clients: &[&Client<'_>],
    raw: &Raw,
    hash: &[u8],
    wanted: &dyn Fn(&str) -> bool,
) -> Res<()> {
    let data = vec![0x42u8; 4096];
    let data = &data;
    // One closure per module: each names that module's key.
    let gcm: Vec<_> = clients
        .iter()
        .map(|c| {
            let key = c.gcm_key;
            move |s: &Session, i: u64| -> Res<()> {
                let mut iv = iv_of(i);
                black_box(s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, &[], 128.into())?), key, data)?);
                Ok(())
            }
        })
        .collect();
    let raw_gcm = move |i: u64| -> Res<()> {
        let mut buf = data.clone();
        let tag = raw
            .gcm
            .encrypt_inout_detached(&Nonce::from(iv_of(i)), &[], buf.as_mut_slice().into())
            .map_err(|e| err(e.to_string()))?;
        black_box((buf, tag));
        Ok(())
    };
    let sign: Vec<_> = clients
        .iter()
        .map(|c| {
            let key = c.ec_private;
            move |s: &Session, _| -> Res<()> {
                black_box(s.sign(&Mechanism::Ecdsa, key, hash)?);
                Ok(())
            }
        })
        .collect();
    let raw_sign = move |_| -> Res<()> {
        let sig: Signature = raw.signing.sign_prehash(hash).map_err(|e| err(e.to_string()))?;
        black_box(sig);
        Ok(())
    };
    for threads in [1usize, 2] {
        let name = format!("AES-256-GCM encrypt 4 KiB, {threads} thread(s)");
        if wanted(&name) {
            let mut c: Vec<_> = tokens.iter().zip(&gcm).map(|(t, op)| Some(threaded(t, threads, op))).collect();
            c.push(Some(raw_threaded(threads, &raw_gcm)));
            measure_row(&name, c)?;
        }
    }
    for threads in [1usize, 2] {
        let name = format!("ECDSA P-256 sign, {threads} thread(s)");
        if wanted(&name) {
            let mut c: Vec<_> = tokens.iter().zip(&sign).map(|(t, op)| Some(threaded(t, threads, op))).collect();
            c.push(Some(raw_threaded(threads, &raw_sign)));
            measure_row(&name, c)?;
        }
    }
    Ok(())
}
