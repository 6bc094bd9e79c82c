//! The store rows. One collabvault store, one SoftHSM2 token and (when in
//! the run) the Kryoptic token grow through
//! the configured sizes ([`Cfg::store_sizes`](super::Cfg)): each step adds the missing
//! AES-256 token keys (for this module, stored DEKs: wrap records under the workspace
//! master key, software root), each with its own `CKA_LABEL` and `CKA_ID`. At each size:
//! `C_FindObjects` of one key by label and by id, in the process that filled the store
//! and in a fresh child process; cold start (`C_Initialize` + `C_OpenSession` +
//! `C_Login`) and `C_Login` alone, each in a fresh child process; the resident memory of
//! that child after login and one find; and, at the re-wrap sizes, the re-wrap of every
//! stored DEK to a new master key version (`CKM_CV_ROTATE_MASTER`, then one timed
//! `CKM_CV_REWRAP_STORED`).
//!
//! The stores are filled through the C ABI (`C_GenerateKey`, one token object per call,
//! two sessions on two threads), the way an application fills them. The peers grow only
//! up to [`Cfg::peer_max`](super::Cfg): SoftHSM2 reads every object on each find, and
//! each key is a durable commit in Kryoptic's SQLite store.

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

use super::{
    cfg, err, measure, print_row, random, report, timed, Batch, Raw, Res, Row, Stats, Token, Unit, SO_PIN, USER_PIN,
};

/// The first argument of a cold-start child process.
pub(super) const CHILD_ARG: &str = "--cold-start-child";
/// The first argument of a fresh-process find child.
pub(super) const FIND_CHILD_ARG: &str = "--find-child";

const CKM_CV_ROTATE_MASTER: u64 = 0xC356_0003;
const CKM_CV_REWRAP_STORED: u64 = 0xC356_0004;

/// Labels of the two grown tokens.
const CV_LABEL: &str = "cv-store";
const SH_LABEL: &str = "sh-store";

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

/// `1000000` as `1,000,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Adds token keys `from..to` to a token, two sessions on two threads; returns the time.
pub(super) fn fill(token: &Token, from: usize, to: usize) -> Res<Duration> {
    let started = Instant::now();
    let threads = 2;
    // A `Session` is not `Sync`, so the threads get the library and the slot.
    let (pkcs11, slot) = (&token.pkcs11, token.slot);
    std::thread::scope(|scope| -> Res<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<(), String> {
                    let s = pkcs11.open_rw_session(slot).map_err(|e| e.to_string())?;
                    for i in (from + t..to).step_by(threads) {
                        s.generate_key(
                            &Mechanism::AesKeyGen,
                            &[
                                Attribute::Class(ObjectClass::SECRET_KEY),
                                Attribute::KeyType(KeyType::AES),
                                Attribute::ValueLen(32.into()),
                                Attribute::Token(true),
                                Attribute::Private(true),
                                Attribute::Sensitive(true),
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
    let line = format!(
        "{}: {} → {} token keys: {} added in {:.1} s ({:.0} keys/s)",
        token.name,
        thousands(from),
        thousands(to),
        thousands(to - from),
        took.as_secs_f64(),
        (to - from) as f64 / took.as_secs_f64()
    );
    eprintln!("  {line}");
    report::note(line);
    Ok(took)
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
pub(super) fn reopen(path: &Path, label: &str) -> Res<Token> {
    let pkcs11 = Pkcs11::new(path)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = find_slot(&pkcs11, label)?;
    let session = pkcs11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
    Ok(Token { name: "collabvault", session, slot, pkcs11 })
}

/// A batch finding one key by label or id among `n`, each call a different key.
fn finder(s: &Session, n: usize, by_id: bool) -> Batch<'_> {
    let mut i = 0usize;
    Box::new(move |batch| {
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

/// The body of a fresh-process find child: `<module> <token label> <store size>`. Logs
/// in, then measures finds by label and by id as the parent does, and prints
/// `FIND <by_id> <median> <min> <max>` for each.
pub(super) fn find_child(args: &[String]) -> Res<()> {
    let [module, label, n, ..] = args else {
        return Err(err("find child: arguments"));
    };
    let n: usize = n.parse()?;
    let pkcs11 = Pkcs11::new(module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = find_slot(&pkcs11, label)?;
    let session = pkcs11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))?;
    for by_id in [false, true] {
        let s = measure(&mut [Some(finder(&session, n, by_id))])?[0].ok_or_else(|| err("find child: no figure"))?;
        println!("FIND {} {} {} {}", u8::from(by_id), s.median, s.min, s.max);
    }
    drop(session);
    pkcs11.finalize()?;
    Ok(())
}

/// Finds by label and by id among `n` objects in a fresh child process (no object
/// handles assigned yet, as in an application that starts and looks its keys up).
fn fresh_finds(module: &Path, label: &str, n: usize, env: &[(&str, &Path)]) -> Res<[Option<Stats>; 2]> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg(FIND_CHILD_ARG).arg(module).arg(label).arg(n.to_string());
    if cfg().quick {
        cmd.arg("--quick");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output()?;
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = [None, None];
    for line in text.lines().filter_map(|l| l.strip_prefix("FIND ")) {
        let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if let [by_id, median, min, max] = v[..] {
            out[usize::from(by_id > 0.5)] = Some(Stats { median, min, max });
        }
    }
    if out.iter().any(Option::is_none) {
        return Err(err(format!("find child for {label} failed: {}", String::from_utf8_lossy(&o.stderr))));
    }
    Ok(out)
}

fn stats(v: impl Iterator<Item = f64>) -> Option<Stats> {
    Stats::of(v.collect())
}

/// A row of figures from child processes: collabvault, SoftHSM2, Kryoptic.
fn one_shot_row(name: String, unit: Unit, [cv, sh, ky]: [Option<Stats>; 3]) -> Row {
    Row { name, unit, vals: [cv, sh, None, ky, None], missing: ["not run", "not run", "-", "not run", "not run"] }
}

/// Copies the SoftHSM2 token directories that appeared since `before` into `to` (emptied
/// first), so a cold-start child sees that token alone.
fn copy_new_tokens(tokendir: &Path, before: &[PathBuf], to: &Path) -> Res<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
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

/// The re-wrap row at store size `n`: `repeats` times a rotation (untimed) and one timed
/// `CKM_CV_REWRAP_STORED` call that moves all `n` stored DEKs; the raw column is what
/// each DEK costs cryptographically (open under the old key, seal under the new one).
fn rewrap_row(cv_path: &Path, raw: &Raw, n: usize, name: String) -> Res<Row> {
    let cv = reopen(cv_path, CV_LABEL)?;
    let rotate = vendor(CKM_CV_ROTATE_MASTER)?;
    let rewrap = vendor(CKM_CV_REWRAP_STORED)?;
    let mut rates = Vec::new();
    for _ in 0..cfg().repeats {
        cv.session.generate_key(&rotate, &[])?;
        let started = Instant::now();
        cv.session.generate_key(&rewrap, &[])?;
        let took = started.elapsed();
        eprintln!("  collabvault: re-wrapped {} stored DEKs in {:.2} s", thousands(n), took.as_secs_f64());
        rates.push(n as f64 / took.as_secs_f64());
    }
    cv.close()?;
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
    Ok(Row {
        name,
        unit: Unit::Rate,
        vals: [Stats::of(rates), None, raw_rate, None, None],
        missing: ["not run", "not offered", "-", "n/a", "not run"],
    })
}

/// Runs the rows; `wanted` filters by row name (the stores are only built when one of
/// their rows is wanted).
///
/// `sh` and `ky` are the peers' main tokens with their library paths: SoftHSM2 gets a new
/// token in its loaded library, Kryoptic's one token grows (its configuration, inherited
/// by the child processes through `KRYOPTIC_CONF`, has that slot alone).
pub(super) fn run(
    dir: &TempDir,
    cv_path: &Path,
    (sh, sh_path): (&Token, &Path),
    ky: Option<(&Token, &Path)>,
    raw: &Raw,
    wanted: &dyn Fn(&str) -> bool,
) -> Res<()> {
    let sizes = cfg().store_sizes.clone();
    let names = |n: usize| {
        let tag = count(n);
        [
            format!("C_FindObjects by CKA_LABEL, {tag} objs, filling process"),
            format!("C_FindObjects by CKA_ID, {tag} objs, filling process"),
            format!("cold start (Initialize+OpenSession+Login), {tag} objs"),
            format!("C_Login alone (fresh process), {tag} objs"),
            format!("resident memory after login + find, {tag} objs"),
            format!("re-wrap {tag} stored DEKs (CKM_CV_REWRAP_STORED)"),
            format!("C_FindObjects by CKA_LABEL, {tag} objs, fresh process"),
            format!("C_FindObjects by CKA_ID, {tag} objs, fresh process"),
        ]
    };
    // The largest size any wanted row needs: the stores grow no further.
    let Some(last) = sizes.iter().copied().filter(|&n| names(n).iter().any(|name| wanted(name))).max() else {
        return Ok(());
    };

    // This module: its own store and configuration, the module re-initialized on it.
    let conf = super::use_cv_config(dir, "collabvault-store.toml", "cv-store-grown", "")?;
    let mut cv = Some(Token::open("collabvault", cv_path, CV_LABEL)?);

    // SoftHSM2: a new token in the loaded library (its directory is the one that appears).
    let sh_tokens = dir.path().join("softhsm-tokens");
    let before = listing(&sh_tokens)?;
    let shn = softhsm_token(sh, SH_LABEL)?;
    let sh_alone = dir.path().join("softhsm-alone");
    let sh_conf = sh_alone.join("softhsm2.conf");

    let mut have = 0usize;
    for &n in sizes.iter().filter(|&&n| n <= last) {
        let names = names(n);
        eprintln!("store of {} token keys...", thousands(n));
        let token = match cv.take() {
            Some(t) => t,
            None => reopen(cv_path, CV_LABEL)?,
        };
        fill(&token, have, n)?;
        let sh_here = n <= cfg().peer_max;
        if sh_here {
            fill(&shn, have, n)?;
        }
        // Kryoptic at this size: its token and library, when in the run and not too large.
        let ky_here = ky.filter(|_| sh_here);
        if let Some((kyt, _)) = ky_here {
            fill(kyt, have, n)?;
        }
        have = n;

        for (by_id, name) in [(false, &names[0]), (true, &names[1])] {
            if wanted(name) {
                let mut c = vec![
                    Some(finder(&token.session, n, by_id)),
                    sh_here.then(|| finder(&shn.session, n, by_id)),
                    None,
                    ky_here.map(|(kyt, _)| finder(&kyt.session, n, by_id)),
                ];
                let mut row = Row::rates(name.clone(), &measure(&mut c)?);
                row.missing = ["not run", "not run", "-", "not run", "not run"];
                print_row(&row);
            }
        }
        token.close()?;

        // Fresh processes: this module on its store, SoftHSM2 on a copy of its token
        // directory holding this token alone. Finds first, then cold start and memory.
        let cv_env = [("COLLABVAULT_CONF", conf.as_path())];
        let sh_env = [("SOFTHSM2_CONF", sh_conf.as_path())];
        let children = [&names[2], &names[3], &names[4], &names[6], &names[7]];
        if sh_here && children.iter().any(|name| wanted(name)) {
            copy_new_tokens(&sh_tokens, &before, &sh_alone.join("tokens"))?;
            std::fs::write(
                &sh_conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    sh_alone.join("tokens").display()
                ),
            )?;
        }
        if wanted(&names[6]) || wanted(&names[7]) {
            let cv_find = fresh_finds(cv_path, CV_LABEL, n, &cv_env)?;
            let sh_find = if sh_here { fresh_finds(sh_path, SH_LABEL, n, &sh_env)? } else { [None, None] };
            let ky_find = match ky_here {
                Some((kyt, path)) => fresh_finds(path, &kyt.label()?, n, &[])?,
                None => [None, None],
            };
            for (i, name) in [(0, &names[6]), (1, &names[7])] {
                if wanted(name) {
                    let mut row = Row::rates(name.clone(), &[cv_find[i], sh_find[i], None, ky_find[i]]);
                    row.missing = ["not run", "not run", "-", "not run", "not run"];
                    print_row(&row);
                }
            }
        }
        if names[2..5].iter().any(|name| wanted(name)) {
            let probe = label(n / 2);
            let cv_cold = Some(cold_starts(cv_path, CV_LABEL, &probe, &cv_env)?);
            let sh_cold = if sh_here { Some(cold_starts(sh_path, SH_LABEL, &probe, &sh_env)?) } else { None };
            let ky_cold = match ky_here {
                Some((kyt, path)) => Some(cold_starts(path, &kyt.label()?, &probe, &[])?),
                None => None,
            };
            let pick = |v: &Option<Vec<Cold>>, f: fn(&Cold) -> f64| v.as_ref().and_then(|v| stats(v.iter().map(f)));
            let mib = |c: &Cold| c.rss_kb / 1024.0;
            for (name, unit, f) in [
                (&names[2], Unit::Ms, (|c: &Cold| c.start_ms) as fn(&Cold) -> f64),
                (&names[3], Unit::Ms, |c: &Cold| c.login_ms),
                (&names[4], Unit::Mib, mib),
            ] {
                if wanted(name) {
                    let figures = [pick(&cv_cold, f), pick(&sh_cold, f), pick(&ky_cold, f)];
                    print_row(&one_shot_row(name.clone(), unit, figures));
                }
            }
        }

        // Re-wrap of every stored DEK to a new master key version.
        if cfg().rewrap_sizes.contains(&n) && wanted(&names[5]) {
            print_row(&rewrap_row(cv_path, raw, n, names[5].clone())?);
        }
    }
    drop(shn);
    Ok(())
}
