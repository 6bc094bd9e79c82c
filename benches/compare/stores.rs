//! Issue 8's and 6's store rows. For each store size: a fresh collabvault store and a
//! fresh SoftHSM2 token, each filled with that many AES-256 token keys (for this module,
//! stored DEKs: wrap records under the workspace master key, software root), each with
//! its own `CKA_LABEL` and `CKA_ID`. Then: `C_FindObjects` of one key by label and by id;
//! cold start (`C_Initialize` + `C_OpenSession` + `C_Login`) and `C_Login` alone, each in
//! a fresh child process; resident memory of that child after login and one find; and,
//! on the largest store, the re-wrap of every stored DEK to a new master key version
//! (`CKM_CV_ROTATE_MASTER`, then `CKM_CV_REWRAP_STORED`).
//!
//! The stores are filled through the C ABI (`C_GenerateKey`, one token object per call,
//! two sessions on two threads), the way an application fills them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aes_gcm::aead::AeadInOut;
use aes_gcm::Nonce;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use tempfile::TempDir;

use super::{cfg, err, measure, print_row, random, timed, Batch, Raw, Res, Row, Stats, Token, Unit, SO_PIN, USER_PIN};

/// The first argument of a cold-start child process.
pub(super) const CHILD_ARG: &str = "--cold-start-child";

const CKM_CV_ROTATE_MASTER: u64 = 0xC356_0003;
const CKM_CV_REWRAP_STORED: u64 = 0xC356_0004;

fn vendor(ty: u64) -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty).map_err(|e| err(e.to_string()))?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

fn label(i: usize) -> Vec<u8> {
    format!("key-{i:07}").into_bytes()
}

fn id(i: usize) -> Vec<u8> {
    format!("id-{i:07}").into_bytes()
}

fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

/// Fills a token with `n` AES-256 token keys, `threads` sessions in parallel.
fn fill(token: &Token, n: usize) -> Res<()> {
    let started = Instant::now();
    let threads = 2;
    std::thread::scope(|scope| -> Res<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<(), String> {
                    let s = token.pkcs11.open_rw_session(token.slot).map_err(|e| e.to_string())?;
                    for i in (t..n).step_by(threads) {
                        s.generate_key(
                            &Mechanism::AesKeyGen,
                            &[
                                Attribute::Class(ObjectClass::SECRET_KEY),
                                Attribute::KeyType(KeyType::AES),
                                Attribute::ValueLen(32.into()),
                                Attribute::Token(true),
                                Attribute::Private(true),
                                Attribute::Encrypt(true),
                                Attribute::Decrypt(true),
                                Attribute::Label(label(i)),
                                Attribute::Id(id(i)),
                            ],
                        )
                        .map_err(|e| format!("key {i}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| err("filler panicked"))?.map_err(err)?;
        }
        Ok(())
    })?;
    let took = started.elapsed();
    eprintln!(
        "  {}: filled {} token keys in {took:.2?} ({:.0}/s)",
        token.name,
        count(n),
        n as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// Opens an uninitialized SoftHSM2 slot of an already loaded library as a new token.
fn softhsm_token(main: &Token, label: &str) -> Res<Token> {
    let pkcs11 = main.pkcs11.clone();
    let mut free = None;
    for s in pkcs11.get_slots_with_token()? {
        if !pkcs11.get_token_info(s)?.token_initialized() {
            free = Some(s);
        }
    }
    let slot = free.ok_or_else(|| err("softhsm2: no free slot"))?;
    pkcs11.init_token(slot, &AuthPin::new(SO_PIN.into()), label)?;
    let slot = find_slot(&pkcs11, label)?;
    {
        let so = pkcs11.open_rw_session(slot)?;
        so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))?;
        so.init_pin(&AuthPin::new(USER_PIN.into()))?;
        so.logout()?;
    }
    let session = pkcs11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
    Ok(Token { name: "softhsm2", session, slot, pkcs11 })
}

fn find_slot(pkcs11: &Pkcs11, label: &str) -> Res<cryptoki::slot::Slot> {
    for s in pkcs11.get_slots_with_token()? {
        let info = pkcs11.get_token_info(s)?;
        if info.token_initialized() && info.label().trim_end() == label {
            return Ok(s);
        }
    }
    Err(err(format!("token {label:?} not found")))
}

/// Loads the module with the configuration in the environment and logs the user in on
/// the token labelled `label` (already initialized).
fn reopen(path: &Path, label: &str) -> Res<Token> {
    let pkcs11 = Pkcs11::new(path)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = find_slot(&pkcs11, label)?;
    let session = pkcs11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
    Ok(Token { name: "collabvault", session, slot, pkcs11 })
}

/// A batch finding one key by `attr(i)` among `n`, each call a different key.
fn finder<'a>(s: &'a Session, n: usize, by_id: bool) -> Batch<'a> {
    Box::new(move |batch| {
        let mut i = 0usize;
        timed(batch, || {
            i = (i + 7919) % n;
            let a = if by_id { Attribute::Id(id(i)) } else { Attribute::Label(label(i)) };
            let found = s.find_objects(&[a])?;
            if found.len() != 1 {
                return Err(err(format!("found {} objects, not 1", found.len())));
            }
            Ok(())
        })
    })
}

/// The figures one cold-start child reports.
#[derive(Clone, Copy, Debug)]
struct Cold {
    /// `C_Initialize` + `C_OpenSession` + `C_Login`, ms.
    start_ms: f64,
    /// `C_Login` alone, ms.
    login_ms: f64,
    /// VmRSS after login and one find, KiB.
    rss_kb: f64,
}

/// Runs `repeats` cold-start children for one module and store.
fn cold_starts(module: &Path, label: &str, find_label: &[u8], env: &[(&str, &Path)]) -> Res<Vec<Cold>> {
    let exe = std::env::current_exe()?;
    let mut out = Vec::new();
    for _ in 0..cfg().repeats {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg(CHILD_ARG).arg(module).arg(label).arg(String::from_utf8_lossy(find_label).as_ref());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output()?;
        let text = String::from_utf8_lossy(&o.stdout);
        let line = text.lines().find(|l| l.starts_with("COLD ")).ok_or_else(|| {
            err(format!("cold-start child for {label} failed: {}", String::from_utf8_lossy(&o.stderr)))
        })?;
        let v: Vec<f64> = line[5..].split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 3 {
            return Err(err(format!("cold-start child said {line:?}")));
        }
        out.push(Cold { start_ms: v[0], login_ms: v[1], rss_kb: v[2] });
    }
    Ok(out)
}

/// The body of a cold-start child: `<module> <token label> <a label to find>`.
pub(super) fn child(args: &[String]) -> Res<()> {
    let [module, label, find_label, ..] = args else {
        return Err(err("cold-start child: arguments"));
    };
    let pkcs11 = Pkcs11::new(module)?;
    let t0 = Instant::now();
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let init = t0.elapsed();
    // Finding the slot by label is not part of the figure.
    let slot = find_slot(&pkcs11, label)?;
    let t1 = Instant::now();
    let session = pkcs11.open_rw_session(slot)?;
    let t2 = Instant::now();
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
    let login = t2.elapsed();
    let start = init + t1.elapsed();
    let found = session.find_objects(&[Attribute::Label(find_label.as_bytes().to_vec())])?;
    if found.len() != 1 {
        return Err(err(format!("cold-start child found {} objects", found.len())));
    }
    let rss = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches("kB").trim().to_string()))
        .unwrap_or_default();
    println!("COLD {} {} {rss}", start.as_secs_f64() * 1e3, login.as_secs_f64() * 1e3);
    drop(session);
    pkcs11.finalize()?;
    Ok(())
}

fn stats(v: impl Iterator<Item = f64>) -> Option<Stats> {
    Stats::of(v.collect())
}

fn one_shot_row(name: String, unit: Unit, cv: Option<Stats>, sh: Option<Stats>, sh_missing: &'static str) -> Row {
    Row { name, unit, vals: [cv, sh, None], missing: ["not run", sh_missing, "-"] }
}

/// Copies the SoftHSM2 token directories that appeared since `before` into `to`, so a
/// cold-start child sees that token alone.
fn copy_new_tokens(tokendir: &Path, before: &[PathBuf], to: &Path) -> Res<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(tokendir)? {
        let path = entry?.path();
        if before.contains(&path) {
            continue;
        }
        let dest = to.join(path.file_name().ok_or_else(|| err("token dir name"))?);
        std::fs::create_dir_all(&dest)?;
        for f in std::fs::read_dir(&path)? {
            let f = f?.path();
            std::fs::copy(&f, dest.join(f.file_name().ok_or_else(|| err("file name"))?))?;
        }
    }
    Ok(())
}

fn listing(dir: &Path) -> Res<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

/// Runs the rows; `wanted` filters by row name (a store is only built when one of its
/// rows is wanted).
pub(super) fn run(dir: &TempDir, cv_path: &Path, sh: &Token, sh_path: &Path, raw: &Raw, wanted: &dyn Fn(&str) -> bool) -> Res<()> {
    let sizes = cfg().find_sizes.clone();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let sh_tokens = dir.path().join("softhsm-tokens");
    for &n in &sizes {
        let tag = count(n);
        let names = [
            format!("C_FindObjects by CKA_LABEL, {tag} token objs"),
            format!("C_FindObjects by CKA_ID, {tag} token objs"),
            format!("cold start (Initialize+OpenSession+Login), {tag} objs"),
            format!("C_Login with {tag} stored DEKs"),
            format!("resident memory after login + find, {tag} objs"),
            format!("re-wrap {tag} stored DEKs (CKM_CV_REWRAP_STORED)"),
        ];
        if !names.iter().any(|name| wanted(name)) {
            continue;
        }
        eprintln!("store of {tag} token keys...");
        // This module: its own store and configuration, the module re-initialized on it.
        let conf = dir.path().join(format!("collabvault-{tag}.toml"));
        std::fs::write(
            &conf,
            format!(
                "store_dir = {:?}\nlog_level = \"error\"\nlog_file = {:?}\n[[workspace]]\nname = \"bench\"\n",
                dir.path().join(format!("cv-store-{tag}")),
                dir.path().join("collabvault.log"),
            ),
        )?;
        std::env::set_var("COLLABVAULT_CONF", &conf);
        let cv_label = format!("cv-{tag}");
        let cv = Token::open("collabvault", cv_path, &cv_label)?;
        fill(&cv, n)?;
        // SoftHSM2: a new token in the loaded library, up to the size where it still
        // finds in measurable time.
        let before = listing(&sh_tokens)?;
        let sh_label = format!("sh-{tag}");
        let shn = if n <= cfg().softhsm_max { Some(softhsm_token(sh, &sh_label)?) } else { None };
        if let Some(t) = &shn {
            fill(t, n)?;
        }
        let sh_missing = "not run";
        for (by_id, name) in [(false, &names[0]), (true, &names[1])] {
            if wanted(name) {
                let mut c = vec![Some(finder(&cv.session, n, by_id)), shn.as_ref().map(|t| finder(&t.session, n, by_id)), None];
                let mut row = Row::rates(name.clone(), &measure(&mut c)?);
                row.missing = ["not run", sh_missing, "-"];
                print_row(&row);
            }
        }
        cv.close()?;

        // Cold start in fresh processes: this module on its store, SoftHSM2 on a copy of
        // its token directory holding this token alone.
        let probe = label(n / 2);
        let cv_cold = cold_starts(cv_path, &cv_label, &probe, &[("COLLABVAULT_CONF", &conf)])?;
        let sh_cold = match &shn {
            Some(_) => {
                let alone = dir.path().join(format!("softhsm-alone-{tag}"));
                copy_new_tokens(&sh_tokens, &before, &alone.join("tokens"))?;
                let sh_conf = alone.join("softhsm2.conf");
                std::fs::write(
                    &sh_conf,
                    format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", alone.join("tokens").display()),
                )?;
                Some(cold_starts(sh_path, &sh_label, &probe, &[("SOFTHSM2_CONF", &sh_conf)])?)
            }
            None => None,
        };
        drop(shn);
        let pick = |v: &Option<Vec<Cold>>, f: fn(&Cold) -> f64| v.as_ref().and_then(|v| stats(v.iter().map(f)));
        let cv_cold = Some(cv_cold);
        print_row(&one_shot_row(names[2].clone(), Unit::Ms, pick(&cv_cold, |c| c.start_ms), pick(&sh_cold, |c| c.start_ms), sh_missing));
        print_row(&one_shot_row(names[3].clone(), Unit::Ms, pick(&cv_cold, |c| c.login_ms), pick(&sh_cold, |c| c.login_ms), sh_missing));
        if n == largest {
            let mib = |c: &Cold| c.rss_kb / 1024.0;
            print_row(&one_shot_row(names[4].clone(), Unit::Mib, pick(&cv_cold, mib), pick(&sh_cold, mib), sh_missing));
        }

        // Re-wrap of every stored DEK to a new master key version, on the largest store.
        if n == largest && wanted(&names[5]) {
            let cv = reopen(cv_path, &cv_label)?;
            let rotate = vendor(CKM_CV_ROTATE_MASTER)?;
            let rewrap = vendor(CKM_CV_REWRAP_STORED)?;
            let mut rates = Vec::new();
            for _ in 0..cfg().repeats {
                cv.session.generate_key(&rotate, &[])?;
                let started = Instant::now();
                cv.session.generate_key(&rewrap, &[])?;
                rates.push(n as f64 / started.elapsed().as_secs_f64());
            }
            cv.close()?;
            // Raw: what each DEK costs cryptographically: open under the old master key,
            // seal under the new one (AES-256-GCM over 32 bytes), no store.
            let mut c: Vec<Option<Batch<'_>>> = vec![Some(Box::new(move |batch| {
                let mut buf = [0u8; 32];
                let header = [0x11u8; 40];
                let mut sealed = [0u8; 32];
                let tag = raw
                    .gcm
                    .encrypt_inout_detached(&Nonce::from([3u8; 12]), &header, sealed.as_mut_slice().into())
                    .map_err(|e| err(e.to_string()))?;
                timed(batch, || {
                    buf.copy_from_slice(&sealed);
                    raw.gcm
                        .decrypt_inout_detached(&Nonce::from([3u8; 12]), &header, buf.as_mut_slice().into(), &tag)
                        .map_err(|e| err(e.to_string()))?;
                    let t = raw
                        .gcm
                        .encrypt_inout_detached(&Nonce::from(random::<12>()?), &header, buf.as_mut_slice().into())
                        .map_err(|e| err(e.to_string()))?;
                    std::hint::black_box((&buf, t));
                    Ok(())
                })
            }))];
            let raw_rate = measure(&mut c)?[0];
            let row = Row {
                name: names[5].clone(),
                unit: Unit::Rate,
                vals: [Stats::of(rates), None, raw_rate],
                missing: ["not run", "not offered", "-"],
            };
            print_row(&row);
        }
    }
    let _ = Duration::ZERO;
    Ok(())
}
