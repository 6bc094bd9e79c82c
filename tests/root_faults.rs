//! The root of trust failing one call at a time: the module's `[root]` is a shim
//! (`tests/shim/failing_pkcs11.c`, built here with `cc`) that forwards every `C_` function
//! to SoftHSM2 but answers `CKR_DEVICE_ERROR` or `CKR_DEVICE_REMOVED` from its Nth call,
//! or makes that call slow. For each operation that reaches the root (rotation, a login,
//! and a wrap, an unwrap and a token key generation in a module that has not yet opened
//! the master key), N runs over the calls the operation makes there (every one for a
//! rotation, a wrap, an unwrap and a key generation; every fifth for a login, whose
//! reruns each need a restart, within the 90 s budget): the operation
//! answers `CKR_DEVICE_ERROR` (or succeeds, where the failed call was one it can do
//! without), changes nothing half-way (no master key version without its row, no row
//! without its key, the audit chain intact), the refusal is audited, and the same
//! operation succeeds at once when the fault is gone, without a restart.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used, reason = "in a test an unwrap is the assertion")]

mod common;

use common::vendor;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::hsm::{failing_shim, softhsm_module, Hsm, ROOT_LABEL, ROOT_PIN_ENV};
use common::{rv_of, Workspace};
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::CK_ULONG;

const CKM_CV_WRAP_RECORD: CK_ULONG = 0xC356_0001;
const CKM_CV_ROTATE_MASTER: CK_ULONG = 0xC356_0003;
const CKA_CV_KEY_VERSION: CK_ULONG = 0xC356_0002;

/// Which fault the shim injects.
#[derive(Clone, Copy, Debug)]
enum Kind {
    DeviceError,
    DeviceRemoved,
    Slow(u64),
}

/// A module whose root is SoftHSM2 behind the shim, over a fresh store and token.
struct Setup {
    pkcs11: Option<Pkcs11>,
    ws: Workspace,
    hsm: Hsm,
    trace: PathBuf,
    tag: u32,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.disarm();
        if let Some(p) = self.pkcs11.take() {
            drop(p.finalize());
        }
    }
}

impl Setup {
    fn new() -> Setup {
        let serial = common::lock();
        let hsm = Hsm::new();
        let section = format!(
            "[root]\nmodule = {:?}\ntoken_label = {ROOT_LABEL:?}\npin_env = {ROOT_PIN_ENV:?}\n",
            failing_shim()
        );
        let ws = Workspace::with_config_body(&format!("{section}[[workspace]]\nname = \"main\"\n"));
        std::env::set_var("CV_SHIM_MODULE", softhsm_module());
        let trace = ws.dir.path().join("shim.trace");
        std::env::set_var("CV_SHIM_TRACE", &trace);
        std::env::remove_var("CV_SHIM_FAULT");
        let s = Setup { pkcs11: Some(common::load()), ws, hsm, trace, tag: 0, _serial: serial };
        let slot = s.slot();
        common::init_token(s.p(), slot, "root-faults");
        s
    }

    fn p(&self) -> &Pkcs11 {
        self.pkcs11.as_ref().expect("loaded")
    }

    fn slot(&self) -> cryptoki::slot::Slot {
        self.p().get_all_slots().unwrap()[0]
    }

    fn user(&self) -> Session {
        common::user_session(self.p(), self.slot())
    }

    /// `C_Finalize` and `C_Initialize` again: a module that has opened nothing yet.
    fn restart(&mut self) {
        self.pkcs11.take().unwrap().finalize().unwrap();
        self.pkcs11 = Some(common::load());
    }

    /// The shim's next call number `n` (from now) fails as `kind`.
    fn arm(&mut self, n: usize, kind: Kind) {
        self.tag += 1;
        let spec = match kind {
            Kind::DeviceError => format!("t{} {n} device-error", self.tag),
            Kind::DeviceRemoved => format!("t{} {n} device-removed", self.tag),
            Kind::Slow(ms) => format!("t{} {n} slow {ms}", self.tag),
        };
        std::fs::write(&self.trace, "").unwrap();
        std::env::set_var("CV_SHIM_FAULT", spec);
    }

    fn disarm(&self) {
        std::env::remove_var("CV_SHIM_FAULT");
    }

    /// The root calls made since [`Setup::arm`], in order.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.trace)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(' ').filter(|(n, _)| *n != "0").map(|(_, f)| f.to_string()))
            .collect()
    }

    /// Runs `sql` in the store's own shell (a process of its own, safe while the module runs).
    fn shell(&self, sql: &str) -> String {
        self.ws.live_sql(sql)
    }

    fn count(&self, sql: &str) -> usize {
        self.shell(sql).parse().unwrap()
    }

    /// The labels of the root token's objects, read by `pkcs11-tool` (its own SoftHSM2).
    fn root_labels(&self) -> Vec<String> {
        let out = self.hsm.tool(&["--list-objects"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut labels: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("label:").map(|v| v.trim().to_string()))
            .collect();
        labels.sort();
        labels
    }

    /// The store and the root token agree: one version key per master key row, and
    /// versions numbered 1..=n without a gap.
    fn assert_consistent(&self) {
        let rows: Vec<String> = self
            .shell("SELECT version FROM master_keys WHERE workspace = 'main' ORDER BY version")
            .lines()
            .map(str::to_string)
            .collect();
        let want: Vec<String> = (1..=rows.len()).map(|v| v.to_string()).collect();
        assert_eq!(rows, want, "master key versions without a gap");
        let mut keys: Vec<String> = self
            .root_labels()
            .iter()
            .filter_map(|l| l.strip_prefix("collabvault-wmk/main/v").map(str::to_string))
            .collect();
        keys.sort_by_key(|v| v.parse::<u32>().unwrap());
        assert_eq!(keys, want, "one version key in the root token per master key row, no orphan");
    }

    /// The module log's last lines, for a failure's message.
    fn log_tail(&self) -> String {
        let log = self.ws.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }

    fn failures_audited(&self) -> usize {
        self.count("SELECT count(*) FROM audit_log WHERE outcome = 'CKR_DEVICE_ERROR'")
    }

    fn finish(mut self) {
        self.disarm();
        self.pkcs11.take().unwrap().finalize().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cvault"))
            .args(["audit", "verify"])
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .env("COLLABVAULT_MODULE", common::module_path())
            .output()
            .expect("cvault");
        let line = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{line}{}", String::from_utf8_lossy(&out.stderr));
        assert!(line.starts_with("intact: "), "{line}");
    }
}

fn rotate(s: &Session) -> cryptoki::error::Result<ObjectHandle> {
    s.generate_key(&vendor(CKM_CV_ROTATE_MASTER), &[])
}

fn current_master(s: &Session) -> ObjectHandle {
    s.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())]).unwrap()[0]
}

fn current_version(s: &Session) -> u64 {
    let ty = AttributeType::VendorDefined(CKA_CV_KEY_VERSION);
    match s.get_attributes(current_master(s), &[ty]).unwrap().as_slice() {
        [Attribute::VendorDefined((_, bytes))] => u64::from_ne_bytes(bytes.as_slice().try_into().unwrap()),
        other => panic!("{other:?}"),
    }
}

fn block(s: &Session, k: ObjectHandle) -> Vec<u8> {
    s.encrypt(&Mechanism::AesEcb, k, &[0u8; 16]).unwrap()
}

/// The code a root fault must come back as: `CKR_DEVICE_ERROR`, whichever fault it was
/// (README, "Faults").
fn assert_device_error<T: std::fmt::Debug>(r: cryptoki::error::Result<T>, what: &str) -> bool {
    match r {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(rv_of::<()>(Err(e)), RvError::DeviceError, "{what}");
            true
        }
    }
}

#[test]
fn a_rotation_whose_nth_root_call_fails_changes_nothing_and_the_next_one_works() {
    let mut f = Setup::new();
    let s = f.user();
    rotate(&s).expect("a first rotation");
    f.arm(usize::MAX, Kind::DeviceError);
    rotate(&s).expect("a probe rotation");
    let calls = f.calls();
    eprintln!("a rotation makes {} root calls: {calls:?}", calls.len());
    assert!(calls.len() >= 3, "a rotation seals in the root token: {calls:?}");
    // Every call fails once as a device error, every fourth as a removed device (the
    // module answers both alike; the test's budget is 90 s).
    for (kind, stride) in [(Kind::DeviceError, 1), (Kind::DeviceRemoved, 4)] {
        for n in (1..=calls.len()).step_by(stride) {
            let (version, audited) = (current_version(&s), f.failures_audited());
            f.arm(n, kind);
            let r = rotate(&s);
            let what = format!("{kind:?} at call {n} ({})", calls[n - 1]);
            f.disarm();
            if assert_device_error(r, &what) {
                assert_eq!(current_version(&s), version, "{what}: no version was made");
                // The next version's key may already be in the root token (made before
                // the failed call): the next rotation takes it rather than making another.
                let keys = f.root_labels().iter().filter(|l| l.starts_with("collabvault-wmk/main/v")).count();
                assert!(keys <= usize::try_from(version).unwrap() + 1, "{what}: {keys} version keys for v{version}");
                assert_eq!(f.failures_audited(), audited + 1, "{what}: the refusal is audited");
            } else {
                assert_eq!(current_version(&s), version + 1, "{what}: done in full");
            }
            let before = current_version(&s);
            rotate(&s).unwrap_or_else(|e| panic!("{what}: the next rotation, the fault gone: {e}\n{}", f.log_tail()));
            assert_eq!(current_version(&s), before + 1, "{what}");
            f.assert_consistent();
        }
    }
    drop(s);
    f.finish();
}

/// A wrap record of a fresh session DEK, and the block that DEK encrypts.
fn record(s: &Session) -> (Vec<u8>, Vec<u8>) {
    let dek = common::session_dek(s);
    let record = s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(s), dek).unwrap();
    (record, block(s, dek))
}

fn unwrap(s: &Session, record: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.unwrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(s), record, &[Attribute::Token(false)])
}

fn token_key(s: &Session, label: &str) -> cryptoki::error::Result<ObjectHandle> {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[Attribute::Token(true), Attribute::Label(label.as_bytes().to_vec()), Attribute::ValueLen(32.into())],
    )
}

/// One operation of a module that has just started and logged in (so the master key is
/// not yet open and the operation's first use opens it through the root).
type Op = fn(&Session, &[u8], usize) -> cryptoki::error::Result<()>;

fn wrap_op(s: &Session, _: &[u8], _: usize) -> cryptoki::error::Result<()> {
    let dek = common::session_dek(s);
    s.wrap_key(&vendor(CKM_CV_WRAP_RECORD), current_master(s), dek).map(drop)
}

fn unwrap_op(s: &Session, record: &[u8], _: usize) -> cryptoki::error::Result<()> {
    unwrap(s, record).map(drop)
}

fn keygen_op(s: &Session, _: &[u8], n: usize) -> cryptoki::error::Result<()> {
    token_key(s, &format!("made-{n}")).map(drop)
}

#[test]
fn a_login_wrap_unwrap_or_token_keygen_whose_nth_root_call_fails_is_a_device_error_and_recovers() {
    let mut f = Setup::new();
    let s = f.user();
    rotate(&s).unwrap();
    let (rec, want) = record(&s);
    drop(s);
    let ops: [(&str, Op); 3] = [("C_WrapKey", wrap_op), ("C_UnwrapKey", unwrap_op), ("C_GenerateKey", keygen_op)];

    // The login itself: it opens the storage key and checks the PIN records' MAC there.
    f.restart();
    let so = f.p().open_rw_session(f.slot()).unwrap();
    f.arm(usize::MAX, Kind::DeviceError);
    so.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into()))).unwrap();
    let login_calls = f.calls();
    f.disarm();
    eprintln!("a first login makes {} root calls: {login_calls:?}", login_calls.len());
    drop(so);
    // Every fifth call, and the last (a restart and a login each: the budget is 90 s).
    let len = login_calls.len();
    for n in (1..=len).step_by(5).chain((len % 5 != 1).then_some(len)) {
        f.restart();
        let s = f.p().open_rw_session(f.slot()).unwrap();
        let what = format!("C_Login, call {n} ({}) failing", login_calls[n - 1]);
        f.arm(n, Kind::DeviceError);
        let r = s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())));
        f.disarm();
        if assert_device_error(r, &what) {
            s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())))
                .unwrap_or_else(|e| panic!("{what}: the next login: {e}"));
        }
        let dek = unwrap(&s, &rec).unwrap_or_else(|e| panic!("{what}: unwrap after the login: {e}\n{}", f.log_tail()));
        assert_eq!(block(&s, dek), want, "{what}");
    }

    for (name, op) in ops {
        f.restart();
        let s = f.user();
        f.arm(usize::MAX, Kind::DeviceError);
        op(&s, &rec, 0).unwrap();
        let calls = f.calls();
        f.disarm();
        eprintln!("{name} in a fresh module makes {} root calls: {calls:?}", calls.len());
        for n in 1..=calls.len() {
            f.restart();
            let s = f.user();
            let what = format!("{name}, call {n} ({}) failing", calls[n - 1]);
            let (objects, audited) = (f.count("SELECT count(*) FROM objects"), f.failures_audited());
            f.arm(n, Kind::DeviceError);
            let r = op(&s, &rec, n);
            f.disarm();
            if assert_device_error(r, &what) {
                assert_eq!(f.count("SELECT count(*) FROM objects"), objects, "{what}: nothing stored half-way");
                assert_eq!(f.failures_audited(), audited + 1, "{what}: the refusal is audited");
            }
            op(&s, &rec, n + 1000)
                .unwrap_or_else(|e| panic!("{what}: the same call once the fault is gone: {e}\n{}", f.log_tail()));
            assert_eq!(block(&s, unwrap(&s, &rec).unwrap()), want, "{what}");
        }
    }
    f.assert_consistent();
    f.finish();
}

#[test]
fn a_slow_root_slows_a_rotation_and_nothing_fails() {
    let mut f = Setup::new();
    let s = f.user();
    rotate(&s).unwrap();
    f.arm(usize::MAX, Kind::DeviceError);
    rotate(&s).unwrap();
    let n = f.calls().len();
    for at in [1, n / 2 + 1, n] {
        let version = current_version(&s);
        f.arm(at, Kind::Slow(300));
        let start = Instant::now();
        rotate(&s).expect("a rotation with one slow root call");
        let took = start.elapsed();
        f.disarm();
        assert!(took >= Duration::from_millis(300), "call {at} was slowed: {took:?}");
        assert_eq!(current_version(&s), version + 1);
    }
    f.assert_consistent();
    drop(s);
    f.finish();
}
