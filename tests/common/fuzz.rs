//! The seeded generator and the time-budget driver every fuzz target shares.
//!
//! Each target runs *cases*: one case is a pure function of one `u64` seed, so a failing
//! case is replayed exactly with `FUZZ_SEED=<seed>` (the failure message prints it). A
//! run draws case seeds from the clock until its budget is spent: `FUZZ_SECONDS` of wall
//! time per target, or the target's own short default for CI; or, when
//! `FUZZ_CPU_SECONDS` is set, that much CPU time (the process's and its children's, user
//! and system), so that a long run on a busy machine still buys the CPU it reports. The generator is SplitMix64: no
//! dependency, fast, and good enough to choose inputs (it is not a security RNG).

// Truncating random bits to narrower types is what a generator does.
#![allow(clippy::cast_possible_truncation)]

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// SplitMix64 over a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A length that favours the boundaries decoders get wrong: 0, 1, block and key
    /// sizes and their neighbours, then anything up to `max`.
    pub fn len(&mut self, max: usize) -> usize {
        const EDGES: &[usize] = &[0, 1, 2, 7, 8, 11, 12, 13, 15, 16, 17, 24, 31, 32, 33, 48, 64, 65, 96, 128];
        if self.chance(60) {
            self.pick(EDGES).min(max)
        } else {
            self.below(max + 1)
        }
    }

    /// A `CK_ULONG` that favours edges: 0, 1, small, powers of two, all ones.
    pub fn ulong(&mut self) -> u64 {
        match self.below(6) {
            0 => self.pick(&[0, 1, 2, 8, 12, 16, 24, 32, 64, 96, 128, 256, 2048]),
            1 => u64::MAX - self.below(3) as u64,
            2 => 1 << self.below(64),
            3 => u64::from(u32::MAX) + self.below(3) as u64 - 1,
            _ => self.next_u64() % 4096,
        }
    }
}

/// The budget of one target: `FUZZ_SECONDS`, else `default_secs`.
pub fn budget(default_secs: u64) -> Duration {
    let secs = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_secs);
    Duration::from_secs(secs)
}

/// `FUZZ_CPU_SECONDS`: a budget of CPU time instead of wall time.
fn cpu_budget() -> Option<Duration> {
    let secs: u64 = std::env::var("FUZZ_CPU_SECONDS").ok()?.parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// CPU time used so far by this process and the children it has waited for (user plus
/// system), from `/proc/self/stat`: fields 14 to 17, in ticks of Linux's fixed
/// `USER_HZ` (100 on every architecture the kernel's /proc ABI reports in).
pub fn cpu_used() -> Duration {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces: count from the ')' that ends it.
    let after_name = &stat[stat.rfind(')').expect("the comm field") + 1..];
    let ticks: u64 =
        after_name.split_whitespace().skip(11).take(4).map(|f| f.parse::<u64>().expect("a tick count")).sum();
    Duration::from_millis(ticks * 1000 / USER_HZ)
}

/// When a run stops: at a wall-clock deadline or after an amount of CPU time.
enum Deadline {
    Wall(Instant),
    Cpu { start: Duration, budget: Duration },
}

impl Deadline {
    fn new(default_secs: u64) -> Deadline {
        match cpu_budget() {
            Some(budget) => Deadline::Cpu { start: cpu_used(), budget },
            None => Deadline::Wall(Instant::now() + budget(default_secs)),
        }
    }

    fn passed(&self) -> bool {
        match self {
            Deadline::Wall(at) => Instant::now() >= *at,
            Deadline::Cpu { start, budget } => cpu_used().saturating_sub(*start) >= *budget,
        }
    }
}

/// `FUZZ_SEED`, parsed as decimal or `0x` hex: replay one case.
pub fn replay_seed() -> Option<u64> {
    let s = std::env::var("FUZZ_SEED").ok()?;
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("FUZZ_SEED={s} is not a number")))
}

/// Runs `case` for every seed of the run: the one `FUZZ_SEED` names, else fresh seeds
/// until `default_secs` (or `FUZZ_SECONDS`, or `FUZZ_CPU_SECONDS` of CPU) is spent, at
/// least one. A failing case's
/// panic is passed on after printing the line that replays it. Returns the number of
/// cases run.
pub fn run(target: &str, default_secs: u64, mut case: impl FnMut(u64)) -> u64 {
    let mut one = |seed: u64| {
        // Printed before the case runs: an abort (which no unwind survives) still leaves
        // the seed to replay in the output of a --nocapture run.
        eprintln!("{target}: case FUZZ_SEED={seed:#x}");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| case(seed))) {
            eprintln!("{target}: case failed; replay with FUZZ_SEED={seed:#x} cargo test --release --test <this file> {target}");
            resume_unwind(panic);
        }
    };
    if let Some(seed) = replay_seed() {
        one(seed);
        return 1;
    }
    let started = (Instant::now(), cpu_used());
    let deadline = Deadline::new(default_secs);
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut seeds = Rng::new(clock.as_nanos() as u64 ^ u64::from(std::process::id()));
    let mut cases = 0;
    loop {
        one(seeds.next_u64());
        cases += 1;
        if deadline.passed() {
            break;
        }
    }
    let (wall, cpu) = (started.0.elapsed(), cpu_used().saturating_sub(started.1));
    eprintln!("{target}: {cases} cases in {:.0} s wall, {:.0} s CPU", wall.as_secs_f64(), cpu.as_secs_f64());
    cases
}

/// The sizes of a parameter shape's layouts that hold pointers. Junk parameter bytes are
/// never one of these sizes: a caller passing such a struct with garbage pointers breaks
/// the C contract, and no token can tell (a crash in the harness, not a finding). The
/// match is exhaustive so that a new shape must say here whether it holds pointers.
pub fn pointer_layouts(shape: collabvault_pkcs11::mechanism::registry::ParamShape) -> &'static [usize] {
    use collabvault_pkcs11::mechanism::registry::ParamShape as S;
    use cryptoki_sys::*;
    const STRING_DATA: usize = size_of::<CK_KEY_DERIVATION_STRING_DATA>();
    const CBC_DATA: usize = size_of::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>();
    const HKDF: usize = size_of::<CK_HKDF_PARAMS>();
    const SIGN_CONTEXT: usize = size_of::<CK_SIGN_ADDITIONAL_CONTEXT>();
    const HASH_SIGN_CONTEXT: usize = size_of::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>();
    const EDDSA: usize = size_of::<CK_EDDSA_PARAMS>();
    const ECDH: usize = size_of::<CK_ECDH1_DERIVE_PARAMS>();
    const OAEP: usize = size_of::<CK_RSA_PKCS_OAEP_PARAMS>();
    const KBKDF: usize = size_of::<CK_SP800_108_KDF_PARAMS>();
    const KBKDF_FEEDBACK: usize = size_of::<CK_SP800_108_FEEDBACK_KDF_PARAMS>();
    // Both CK_GCM_PARAMS layouts (with and without ulIvBits).
    const GCM: usize = size_of::<CK_GCM_PARAMS>();
    const GCM_240: usize = GCM - size_of::<CK_ULONG>();
    match shape {
        S::None | S::Bytes | S::Iv16 | S::Ctr | S::MacLen | S::Pss | S::Ulong => &[],
        S::Gcm => &[GCM_240, GCM],
        S::Ecdh => &[ECDH],
        S::Oaep => &[OAEP],
        S::Eddsa => &[EDDSA],
        S::StringData => &[STRING_DATA],
        S::AesCbcData => &[CBC_DATA],
        S::Hkdf => &[HKDF],
        S::SignContext => &[SIGN_CONTEXT],
        S::HashSignContext => &[HASH_SIGN_CONTEXT],
        S::Kbkdf => &[KBKDF],
        S::KbkdfFeedback => &[KBKDF_FEEDBACK],
    }
}

/// Every size [`pointer_layouts`] names for some registered mechanism, and the 3.0
/// message API's `CK_GCM_MESSAGE_PARAMS`: junk bytes avoid them all, whatever mechanism
/// (or function) they end up with.
pub fn all_pointer_layouts() -> Vec<usize> {
    let mut sizes: Vec<usize> = collabvault_pkcs11::mechanism::registry::registry()
        .flat_map(|e| pointer_layouts(e.param).iter().copied())
        .chain([size_of::<cryptoki_sys::CK_GCM_MESSAGE_PARAMS>()])
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}
