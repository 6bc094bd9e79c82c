//! `cargo bench --bench quorum`: what the quorum costs, measured, not asserted.
//!
//! One module over a real SoftHSM2 root holds two workspaces: `plain` (no quorum, the KEK
//! sealed by the root) and `held` (its KEK split 2-of-3 among custodians enrolled at the
//! production Argon2id cost, 64 MiB and 3 passes). The rows:
//!
//! - **unlock latency**: a lock, then two custodians' `C_LoginUser` approvals (two
//!   Argon2id derivations, share opening in the HSM, recombination, the grant written):
//!   the median over the rounds, in milliseconds;
//! - **wrap and unwrap under an unlock grant**: `CKM_CV_WRAP_RECORD` on `held` (unlocked)
//!   against the same on `plain`, interleaved round by round so the machine's noise falls
//!   on both alike; the ratio of the medians says what the grant check per call costs.
//!
//! `--quick` runs every row briefly (CI); the full run is what the README reports.

// A measurement harness: rates become counts by a float-to-int cast, clamped after.
#![allow(missing_docs, clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use collabvault_pkcs11::quorum::custodian::{self, KDF_MEMORY_KIB, KDF_PASSES};
use collabvault_pkcs11::vendor::{
    CKA_CV_CUSTODIANS, CKA_CV_LOCKED, CKA_CV_THRESHOLD, CKM_CV_QUORUM_SPLIT, CKM_CV_WRAP_RECORD, CKU_CV_CUSTODIAN,
};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

type Res<T> = Result<T, Box<dyn Error>>;

const SO_PIN: &str = "bench-so-pin-1234";
const USER_PIN: &str = "bench-user-pin-1234";
const ROOT_PIN: &str = "bench-root-pin-1234";
const CUSTODIANS: [(&str, &str); 3] =
    [("alice", "alice's bench passphrase"), ("bob", "bob's bench passphrase"), ("carol", "carol's bench passphrase")];

struct Cfg {
    unlock_rounds: usize,
    rounds: usize,
    batch: Duration,
}

fn module_path() -> Res<PathBuf> {
    if let Some(p) = std::env::var_os("COLLABVAULT_MODULE") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let deps = exe.parent().ok_or("no bench directory")?;
    for dir in [deps, deps.parent().ok_or("no profile directory")?] {
        let so = dir.join("libcollabvault_pkcs11.so");
        if so.exists() {
            return Ok(so);
        }
    }
    Err("libcollabvault_pkcs11.so not built (cargo build --release)".into())
}

fn vendor(ty: u64) -> Res<Mechanism<'static>> {
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(MechanismType::new_vendor_defined(ty)?, None)))
}

/// A SoftHSM2 root token and a module config with the two workspaces, in `dir`.
fn configure(dir: &Path) -> Res<()> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let softhsm_conf = dir.join("softhsm2.conf");
    std::fs::write(
        &softhsm_conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )?;
    std::env::set_var("SOFTHSM2_CONF", &softhsm_conf);
    std::env::set_var("CV_BENCH_ROOT_PIN", ROOT_PIN);
    let made = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "cv-bench-root", "--so-pin", "root-so-1234", "--pin", ROOT_PIN])
        .output()?;
    if !made.status.success() {
        return Err(format!("softhsm2-util: {}", String::from_utf8_lossy(&made.stderr)).into());
    }
    let softhsm = std::env::var("SOFTHSM2_MODULE").unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into());
    let conf = dir.join("collabvault.toml");
    std::fs::write(
        &conf,
        format!(
            "store_dir = {:?}\nlog_level = \"error\"\nlog_file = {:?}\n\
             [root]\nmodule = {softhsm:?}\ntoken_label = \"cv-bench-root\"\npin_env = \"CV_BENCH_ROOT_PIN\"\n\
             [quorum]\nunlock_hours = 1\n\
             [[workspace]]\nname = \"plain\"\n[[workspace]]\nname = \"held\"\n",
            dir.join("store"),
            dir.join("module.log"),
        ),
    )?;
    std::env::set_var("COLLABVAULT_CONF", &conf);
    Ok(())
}

fn session(p: &Pkcs11, slot: Slot, who: UserType, pin: &str) -> Res<Session> {
    let s = p.open_rw_session(slot)?;
    s.login(who, Some(&AuthPin::new(pin.into())))?;
    Ok(s)
}

fn init(p: &Pkcs11, slot: Slot) -> Res<()> {
    p.init_token(slot, &AuthPin::new(SO_PIN.into()), "bench")?;
    let so = session(p, slot, UserType::So, SO_PIN)?;
    so.init_pin(&AuthPin::new(USER_PIN.into()))?;
    so.logout()?;
    Ok(())
}

fn split(p: &Pkcs11, slot: Slot) -> Res<()> {
    let mut enrolled = Vec::new();
    for (name, pass) in CUSTODIANS {
        enrolled.push(custodian::enrol(name, pass.as_bytes(), KDF_MEMORY_KIB, KDF_PASSES)?);
    }
    let so = session(p, slot, UserType::So, SO_PIN)?;
    let template = [
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_THRESHOLD), 2u64.to_ne_bytes().to_vec())),
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_CUSTODIANS), custodian::encode(&enrolled)?)),
    ];
    so.generate_key(&vendor(CKM_CV_QUORUM_SPLIT)?, &template)?;
    so.logout()?;
    Ok(())
}

fn approve(p: &Pkcs11, module: &Path, slot: Slot, name: &str, pass: &str) -> Res<()> {
    let s = p.open_rw_session(slot)?;
    let rv = collabvault_pkcs11::ffi::client::login_user(
        module,
        s.handle(),
        CKU_CV_CUSTODIAN,
        pass.as_bytes(),
        name.as_bytes(),
    )?;
    if rv != cryptoki_sys::CKR_OK {
        return Err(format!("C_LoginUser as {name}: {rv:#x}").into());
    }
    Ok(())
}

fn master(s: &Session) -> Res<ObjectHandle> {
    let found = s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())])?;
    Ok(*found.first().ok_or("no current master key object")?)
}

/// One workspace's user session, a DEK and a record of it, for the wrap rows.
struct Bench {
    session: Session,
    master: ObjectHandle,
    dek: ObjectHandle,
    record: Vec<u8>,
}

impl Bench {
    fn open(p: &Pkcs11, slot: Slot) -> Res<Bench> {
        let session = session(p, slot, UserType::User, USER_PIN)?;
        let dek = session.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(32.into()), Attribute::Token(false), Attribute::Extractable(true)],
        )?;
        let master = master(&session)?;
        let record = session.wrap_key(&vendor(CKM_CV_WRAP_RECORD)?, master, dek)?;
        Ok(Bench { session, master, dek, record })
    }

    fn wraps(&self, n: u64) -> Res<f64> {
        let m = vendor(CKM_CV_WRAP_RECORD)?;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(self.session.wrap_key(&m, self.master, self.dek)?);
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }

    fn unwraps(&self, n: u64) -> Res<f64> {
        let m = vendor(CKM_CV_WRAP_RECORD)?;
        let mut timed = Duration::ZERO;
        for _ in 0..n {
            let start = Instant::now();
            let k = self.session.unwrap_key(&m, self.master, &self.record, &[Attribute::Token(false)])?;
            timed += start.elapsed();
            self.session.destroy_object(k)?;
        }
        Ok(n as f64 / timed.as_secs_f64())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A count of operations taking about `target` (from a 64-operation probe), at most
/// 2,000: every unwrap adds audit entries, and a store grown by hundreds of thousands of
/// them would measure the store's growth rather than the grant.
fn sized(target: Duration, probe: &dyn Fn(u64) -> Res<f64>) -> Res<u64> {
    let rate = probe(64)?;
    Ok(((rate * target.as_secs_f64()) as u64).clamp(16, 2000))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let cfg = if quick {
        Cfg { unlock_rounds: 2, rounds: 3, batch: Duration::from_millis(50) }
    } else {
        Cfg { unlock_rounds: 9, rounds: 11, batch: Duration::from_millis(200) }
    };
    let dir = tempfile::tempdir()?;
    configure(dir.path())?;
    let module = module_path()?;
    let p = Pkcs11::new(&module)?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slots = p.get_slots_with_token()?;
    let (plain, held) = (slots[0], slots[1]);
    init(&p, plain)?;
    init(&p, held)?;
    split(&p, held)?;

    let mut unlock_ms = Vec::new();
    for _ in 0..cfg.unlock_rounds {
        let user = session(&p, held, UserType::User, USER_PIN)?;
        user.update_attributes(
            master(&user)?,
            &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LOCKED), vec![1]))],
        )?;
        user.logout()?;
        drop(user);
        let start = Instant::now();
        approve(&p, &module, held, CUSTODIANS[0].0, CUSTODIANS[0].1)?;
        approve(&p, &module, held, CUSTODIANS[1].0, CUSTODIANS[1].1)?;
        unlock_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }

    // The two workspaces share the application's login state per token, not across
    // tokens: both user sessions stay open for the interleaved rounds.
    let with_grant = Bench::open(&p, held)?;
    let without = Bench::open(&p, plain)?;
    let wrap_n = sized(cfg.batch, &|n| without.wraps(n))?;
    let unwrap_n = sized(cfg.batch, &|n| without.unwraps(n))?;
    let (mut w_held, mut w_plain, mut u_held, mut u_plain) = (vec![], vec![], vec![], vec![]);
    for _ in 0..cfg.rounds {
        w_plain.push(without.wraps(wrap_n)?);
        w_held.push(with_grant.wraps(wrap_n)?);
        u_plain.push(without.unwraps(unwrap_n)?);
        u_held.push(with_grant.unwraps(unwrap_n)?);
    }
    let (wh, wp, uh, up) = (median(w_held), median(w_plain), median(u_held), median(u_plain));
    println!(
        "quorum benchmark ({} run; medians of {} rounds; one process, SoftHSM2 root)",
        if quick { "quick" } else { "full" },
        cfg.rounds
    );
    println!();
    println!("| operation | unit | quorum, unlocked by a grant | no quorum | ratio |");
    println!("|---|---|--:|--:|--:|");
    println!(
        "| unlock: lock, then 2 custodians approve (2 Argon2id at 64 MiB/3 passes, HSM, grant) | ms | {:.0} | - | - |",
        median(unlock_ms)
    );
    println!("| CV_WRAP_RECORD wrap DEK | ops/s | {wh:.0} | {wp:.0} | {:.2}x |", wh / wp);
    println!("| CV_WRAP_RECORD unwrap DEK | ops/s | {uh:.0} | {up:.0} | {:.2}x |", uh / up);
    drop(with_grant);
    drop(without);
    p.finalize()?;
    Ok(())
}
