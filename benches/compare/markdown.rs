//! `BENCHMARKS.md`: the report a full run writes (or `--markdown=PATH` for any run), from
//! this run's rows, notes and machine; nothing in it is typed in. With Kryoptic in the
//! run, the results table gets its column and the cv/kryoptic ratio; with the module's
//! rustcrypto build, its column and its ratio to SoftHSM2.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::super::{
    cfg, fmt_cell, fmt_per_op, fmt_ratio, kryoptic_column, rustcrypto_column, unit_name, Res, Unit, KY, RAW, RC,
};
use super::{rows, verdicts, Library, Machine, MAIN_BUILD, NOTES};

/// How `scripts/build-kryoptic.sh` builds the Kryoptic peer (keep in step with it).
const KRYOPTIC_BUILD: &str = "kryoptic 1.5.4 from crates.io as a cdylib, features `dynamic` (the system \
     OpenSSL 3.0) and kryoptic-lib's `standard` set without `eddsa`, `ec_montgomery` and `pqc` (sqlitedb, \
     ecc_min, ffdh, hash_all, kdf_all, rsa, hotp, chacha20, ike)";

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Writes the report (`BENCHMARKS.md` at the repository root for a full run) to `path`
/// from this run's rows and notes.
pub(crate) fn write_markdown(machine: &Machine, total: Duration, path: &Path) -> Res<()> {
    let rows = rows();
    let notes = NOTES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let mut md = String::new();
    let c = cfg();
    let w = &mut md;
    writeln!(w, "# Benchmarks")?;
    writeln!(w)?;
    writeln!(
        w,
        "Written by `cargo bench --bench compare` ({}) on {}; the run took {}. Do not edit the \
         figures by hand: run the benchmark again, it rewrites this file.",
        if c.quick { "a `--quick` run: small stores and short batches, not figures to quote" } else { "the full run" },
        machine.date,
        human(total)
    )?;
    writeln!(w)?;
    writeln!(w, "## Machine and versions")?;
    writeln!(w)?;
    writeln!(w, "- CPU: {}", machine.cpu_line())?;
    writeln!(w, "- CPU flags (of those the crypto backends care about): {}", machine.flags_line())?;
    writeln!(w, "- Kernel: {}", machine.kernel)?;
    writeln!(w, "- Toolchain: {}", machine.rustc)?;
    writeln!(w, "- collabvault (`C_GetInfo`): {}", Library::line(&machine.collabvault))?;
    writeln!(w, "- SoftHSM2 (`C_GetInfo`): {}", Library::line(&machine.softhsm))?;
    match &machine.kryoptic {
        Some(k) => writeln!(
            w,
            "- Kryoptic (`C_GetInfo`): {}; built by `scripts/build-kryoptic.sh`: {KRYOPTIC_BUILD}",
            Library::line(k)
        )?,
        None => writeln!(w, "- Kryoptic: not in this run (`scripts/build-kryoptic.sh` had not built it)")?,
    }
    match &machine.rustcrypto {
        Some(k) => writeln!(
            w,
            "- collabvault, rustcrypto build (`C_GetInfo`): {}; `--no-default-features --features rustcrypto`",
            Library::line(k)
        )?,
        None => writeln!(w, "- collabvault, rustcrypto build: not in this run (not built)")?,
    }
    let crates: Vec<String> = machine.crates.iter().map(|(n, v)| format!("{n} {v}")).collect();
    writeln!(w, "- Crates (Cargo.lock): {}", crates.join(", "))?;
    writeln!(w)?;

    writeln!(w, "## How to run it")?;
    writeln!(w)?;
    writeln!(w, "    bash scripts/install-deps.sh            # once: SoftHSM2 (Debian softhsm2) and the crates")?;
    writeln!(
        w,
        "    bash scripts/build-kryoptic.sh          # once: Kryoptic from crates.io (cached in target/peers)"
    )?;
    writeln!(w, "    cargo bench --bench compare             # the full run; rewrites this file")?;
    writeln!(w, "    cargo bench --bench compare -- --quick  # every row briefly, small stores; writes nothing")?;
    writeln!(w, "    cargo bench --bench compare -- ECDSA    # only the rows whose name contains ECDSA")?;
    writeln!(w)?;
    writeln!(
        w,
        "`SOFTHSM2_MODULE`, `KRYOPTIC_MODULE`, `COLLABVAULT_MODULE` and `COLLABVAULT_RUSTCRYPTO_MODULE` \
         override the library paths; without a built Kryoptic (or rustcrypto build) the run says why and has \
         no such column. `scripts/test.sh` builds the rustcrypto target and Kryoptic, then runs the quick \
         mode as its last stage, so the harness cannot rot; it checks that every row runs, never a speed."
    )?;
    writeln!(w)?;

    writeln!(w, "## How to read it")?;
    writeln!(w)?;
    writeln!(
        w,
        "- One process loads the modules (this one, SoftHSM2 and Kryoptic) through the `cryptoki` crate \
         and runs the same client code on each; the **raw** column does the same cryptography with the crates the module is built on, \
         called directly with pre-built keys (no PKCS#11, no object store); for RSA and ML-KEM, the backend this build chose ({}).",
        crate::backend_raw::NAME
    )?;
    writeln!(
        w,
        "- Each cell is the **median [min–max]** of {} interleaved batches of about {} ms per contender \
         after a warm-up that sizes the batches (one-shot rows — cold start, memory, re-wrap — are the \
         median of {} repeats). The machine is shared and noisy: read the medians and ratios, and treat \
         the spread as the noise of this run.",
        c.batches,
        c.batch_target.as_millis(),
        c.repeats
    )?;
    writeln!(
        w,
        "- The `audit ... (vs off)` rows compare the module with itself: the first column \
         records data operations as per-session counters (the default) or one durable entry per call, \
         the third column is the same module with `data_operations = \"off\"`, each mode on its own \
         store, the modes alternating round by round. A DEK unwrap is key management, one durable \
         entry in every mode, so its ratios sit near 1."
    )?;
    writeln!(
        w,
        "- **rustcrypto** is this module built with `--no-default-features --features rustcrypto` (the \
         pure-Rust backend: no C crypto), loaded beside the default (aws-lc) build on a store of its own and \
         driven by the same client code, so both backends are measured in the same run. **rc/softhsm** is its \
         ratio to SoftHSM2, read like cv/softhsm: the two side by side show each build against the same \
         baseline, and cv/softhsm divided by rc/softhsm is how much faster the default build is on that row. \
         The store, audit and hierarchy rows run on the default build only (`-` or `not run` in its column). \
         The targets below are checked on the collabvault column: {MAIN_BUILD}."
    )?;
    writeln!(
        w,
        "- **cv/softhsm**, **cv/raw** and **cv/kryoptic** are ratios of medians, oriented so that **above 1 the module is \
         better** (faster, or less time or memory for `ms` and `MiB` rows); `cv per op` is the module's \
         time per operation."
    )?;
    writeln!(
        w,
        "- `not offered`: the module lacks the mechanism or function (SoftHSM2 2.6 has no ML-KEM, no \
         message-based API and no master-key hierarchy); `n/a` says the same of Kryoptic (built \
         without the features that need OpenSSL 3.2 or 3.5, so no Ed25519 or ML-KEM, and no hierarchy). \
         `not run`: the peers (SoftHSM2, Kryoptic) were not given stores beyond {} objects, where \
         filling them and repeating their finds and cold starts takes too long (SoftHSM2 reads every \
         object on each `C_FindObjects`). `-`: there is no raw-crate counterpart (object store work), \
         or, in the Kryoptic column of the audit rows, nothing to compare.",
        c.peer_max
    )?;
    writeln!(
        w,
        "- Operations as applications call them: `C_EncryptInit` + `C_Encrypt` (cryptoki's length query, \
         then the call) per message with a fresh IV; the message API rows do one `C_MessageEncryptInit` \
         per batch and one `C_EncryptMessage` per message. Operations that make a session key time the \
         call and the `C_DestroyObject` after it together, for every module alike: this module holds a \
         session object's audit entries and writes them as a batch (256 by default) inside whichever call \
         fills it, often a destroy, so timing the make alone would leave its share of the batch write out \
         (the raw crates have no object to destroy). Durable token-object key generation times the call \
         only: each key commits on its own, and its destroy is a durable commit of its own. Thread rows \
         report the total rate over all threads, each thread with its own session."
    )?;
    writeln!(
        w,
        "- Find rows run twice: in the process that filled the store (it holds an object handle for \
         every key) and in a fresh child process that only logs in and looks keys up; each call finds \
         a different key."
    )?;
    writeln!(
        w,
        "- \"Durable\" token objects: this module commits each one in its own SQLite transaction (WAL, \
         `synchronous=FULL`: the WAL is fsynced at every commit, so a commit survives an OS crash or power \
         loss; the fsync dominates the row); SoftHSM2 writes one file per object."
    )?;
    writeln!(w)?;

    writeln!(w, "## How the stores were populated")?;
    writeln!(w)?;
    writeln!(
        w,
        "The store rows use one store per module that grows through the sizes: each step adds the \
         missing AES-256 token keys (each with its own `CKA_LABEL` and `CKA_ID`) through the C ABI, \
         `C_GenerateKey` one token object per call, two sessions on two threads, the way an application \
         fills a token. In this module every such key is a stored DEK: a wrap record under the workspace \
         master key (software root). Cold start, memory and the fresh-process finds are measured in \
         child processes; a SoftHSM2 child gets a copy of that token's directory alone. Re-wrap rotates the master \
         key, then \
         times one `CKM_CV_REWRAP_STORED` call that moves every stored DEK to the new version."
    )?;
    writeln!(w)?;
    for n in &notes {
        writeln!(w, "- {n}")?;
    }
    writeln!(w)?;

    writeln!(w, "## Results")?;
    writeln!(w)?;
    let ky = kryoptic_column();
    let rc = rustcrypto_column();
    let (ky_head, ky_rule) = if ky { (" kryoptic | cv/kryoptic |", "--:|--:|") } else { ("", "") };
    let (rc_head, rc_rule) = if rc { (" rustcrypto | rc/softhsm |", "--:|--:|") } else { ("", "") };
    writeln!(
        w,
        "| operation | unit | collabvault | softhsm2 | raw | cv/softhsm | cv/raw | cv per op |{ky_head}{rc_head}"
    )?;
    writeln!(w, "|---|---|--:|--:|--:|--:|--:|--:|{ky_rule}{rc_rule}")?;
    for r in &rows {
        let ky_cells = if ky { format!(" {} | {} |", fmt_cell(r, KY), fmt_ratio(r.ratio(KY))) } else { String::new() };
        let rc_cells =
            if rc { format!(" {} | {} |", fmt_cell(r, RC), fmt_ratio(r.ratio_of(RC, 1))) } else { String::new() };
        writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |{ky_cells}{rc_cells}",
            md_escape(&r.name),
            unit_name(r.unit),
            fmt_cell(r, 0),
            fmt_cell(r, 1),
            fmt_cell(r, RAW),
            fmt_ratio(r.ratio(1)),
            fmt_ratio(r.ratio(RAW)),
            if r.unit == Unit::Rate { fmt_per_op(r) } else { String::new() }
        )?;
    }
    writeln!(w)?;

    writeln!(w, "## The targets, against this run")?;
    writeln!(w)?;
    writeln!(w, "Checked on the collabvault column ({MAIN_BUILD}).")?;
    writeln!(w)?;
    writeln!(w, "| target | measured | |")?;
    writeln!(w, "|---|---|---|")?;
    let v = verdicts(&rows);
    for (what, measured, verdict, _) in &v {
        writeln!(w, "| {} | {} | {verdict} |", md_escape(what), md_escape(measured))?;
    }
    writeln!(w)?;
    let missed: Vec<_> = v.iter().filter_map(|(what, _, _, limit)| limit.map(|l| (what, l))).collect();
    if !missed.is_empty() {
        writeln!(w, "Where a target is missed:")?;
        writeln!(w)?;
        for (what, limit) in missed {
            writeln!(w, "- *{what}*: {limit}")?;
        }
        writeln!(w)?;
    }

    std::fs::write(path, md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
