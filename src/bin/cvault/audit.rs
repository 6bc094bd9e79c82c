//! `cvault audit verify|export|report`: the audit log, read from the store itself.
//!
//! Unlike the master key commands, these do not go through the module: they only read,
//! need no PIN, and must work when the module cannot (a verifier that trusts the module
//! to show it the log proves nothing). They open the SQLite store the config names with
//! the crate's own backend and never write to it, beyond the schema migration any opener
//! of an older store performs.
//!
//! What a verdict can prove today is the hash chain's: every entry unchanged and in its
//! place. [`verify_log`] is where signed checkpoints and the head kept in the root token
//! join it.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use collabvault_pkcs11::audit::export::{json_line, Filter};
use collabvault_pkcs11::audit::{self, Verdict};
use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::store::audit::AuditRow;
use collabvault_pkcs11::store::sqlite::{SqliteStore, STORE_FILE};
use collabvault_pkcs11::store::{Backend, Lifecycle, MasterRecord};

use crate::time::{date, now, parse_time, rfc3339, rotation_due, DAY};
use crate::{fail, Args, Failure, Res};

/// Outcomes that mean a PIN was tried and refused.
const FAILED_LOGIN_OUTCOMES: [&str; 2] = ["CKR_PIN_INCORRECT", "CKR_PIN_LOCKED"];

/// `cvault audit SUBCOMMAND`.
pub(crate) fn run(config: &Config, args: &Args) -> Res<ExitCode> {
    let sub = args.subcommand.as_deref().unwrap_or_default();
    if sub != "export" && (args.since.is_some() || args.until.is_some() || args.key.is_some()) {
        return fail("--since, --until and --key apply to `audit export` only");
    }
    match sub {
        "verify" => verify(config),
        "export" => export(config, args),
        "report" => report(config, args),
        "" => fail("audit needs a subcommand: verify, export or report"),
        other => fail(format!("unknown audit subcommand {other:?}: verify, export or report")),
    }
}

/// The store the config names, and every audit entry in it, in sequence order.
fn open(config: &Config) -> Res<(SqliteStore, Vec<AuditRow>)> {
    let file = config.store_dir.join(STORE_FILE);
    if !file.exists() {
        return fail(format!("no store at {}: the module has not run with this config", file.display()));
    }
    let store = SqliteStore::open(&config.store_dir)
        .map_err(|e| Failure(format!("cannot open the store {}: {e}", file.display())))?;
    let rows = store.audit_rows().map_err(|e| Failure(format!("cannot read the audit log: {e}")))?;
    Ok((store, rows))
}

/// The verification hook: every verdict `cvault` prints comes from here.
///
/// Today it walks the hash chain alone, which proves each entry unchanged and in its
/// place but cannot see a dropped tail (the shorter chain is just as consistent). The lead
/// extends it to check the signed checkpoints (every N entries and at finalize) and to
/// pass the checkpoint count kept under the root of trust as `expected_len`, which turns
/// a dropped tail into [`audit::Defect::Truncated`]; `config` names that root and `store`
/// holds the checkpoints.
fn verify_log(_config: &Config, _store: &SqliteStore, rows: &[AuditRow]) -> Verdict {
    audit::verify(rows, None)
}

/// `intact: N entries, head H` or `broken at entry S: DEFECT`.
fn verdict_line(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Intact { entries, head } => format!("intact: {entries} entries, head {head}"),
        Verdict::Broken { seq, defect } => format!("broken at entry {seq}: {defect}"),
    }
}

/// `cvault audit verify`: exit 0 when intact, 1 naming the first bad entry.
fn verify(config: &Config) -> Res<ExitCode> {
    let (store, rows) = open(config)?;
    let verdict = verify_log(config, &store, &rows);
    println!("{}", verdict_line(&verdict));
    Ok(match verdict {
        Verdict::Intact { .. } => ExitCode::SUCCESS,
        Verdict::Broken { .. } => ExitCode::FAILURE,
    })
}

/// `cvault audit export`: the entries the filters pass, one JSON object per line.
fn export(config: &Config, args: &Args) -> Res<ExitCode> {
    let time = |option: &str, value: &Option<String>| {
        value.as_deref().map(parse_time).transpose().map_err(|why| Failure(format!("{option}: {why}")))
    };
    let filter = Filter {
        since_ms: time("--since", &args.since)?,
        until_ms: time("--until", &args.until)?,
        key: args.key.clone(),
    };
    let (_, rows) = open(config)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let written = rows.iter().filter(|r| filter.accepts(r)).try_for_each(|r| writeln!(out, "{}", json_line(r)));
    written.and_then(|()| out.flush()).map_err(|e| Failure(format!("cannot write the export: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// How one object (or the token itself) was used: successful operations by action.
#[derive(Default)]
struct Usage {
    ops: BTreeMap<String, u64>,
    last_ms: i64,
}

impl Usage {
    fn add(&mut self, action: &str, at_ms: i64) {
        *self.ops.entry(action.to_string()).or_default() += 1;
        self.last_ms = self.last_ms.max(at_ms);
    }

    fn line(&self) -> String {
        let ops: Vec<String> = self.ops.iter().map(|(action, n)| format!("{action} {n}")).collect();
        format!("{}; last {}", ops.join(", "), rfc3339(self.last_ms))
    }
}

/// One workspace's share of the log.
#[derive(Default)]
struct WorkspaceSummary {
    entries: u64,
    /// Entries without an object (logins, token init, PIN changes).
    token: Usage,
    /// By the entry's `object` field.
    objects: BTreeMap<String, Usage>,
    /// Entries naming master key version N (`wmk vN`): count and last time.
    versions: BTreeMap<u32, (u64, i64)>,
    /// Refused PINs, by actor and outcome.
    failed_logins: BTreeMap<(String, String), u64>,
    /// Every refusal, by `CKR_` code.
    refusals: BTreeMap<String, u64>,
}

impl WorkspaceSummary {
    fn add(&mut self, row: &AuditRow) {
        let e = &row.event;
        self.entries += 1;
        if FAILED_LOGIN_OUTCOMES.contains(&e.outcome.as_str()) {
            *self.failed_logins.entry((e.actor.clone(), e.outcome.clone())).or_default() += 1;
        }
        if e.outcome != "CKR_OK" {
            *self.refusals.entry(e.outcome.clone()).or_default() += 1;
            return;
        }
        match &e.object {
            None => self.token.add(&e.action, row.at_ms),
            Some(object) => {
                self.objects.entry(object.clone()).or_default().add(&e.action, row.at_ms);
                for v in wmk_versions(object) {
                    let used = self.versions.entry(v).or_default();
                    *used = (used.0 + 1, used.1.max(row.at_ms));
                }
            }
        }
    }
}

/// The master key versions an entry's object names (`... under wmk v2`, `wmk v3 -> Retired`).
fn wmk_versions(object: &str) -> Vec<u32> {
    object
        .match_indices("wmk v")
        .filter_map(|(i, m)| {
            let rest = &object[i + m.len()..];
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

fn state_name(state: Lifecycle) -> &'static str {
    match state {
        Lifecycle::Active => "active",
        Lifecycle::DecryptOnly => "decrypt-only",
        Lifecycle::Retired => "retired",
        Lifecycle::Destroyed => "destroyed",
    }
}

/// `cvault audit report`: a compliance summary per workspace, in a stable order.
fn report(config: &Config, args: &Args) -> Res<ExitCode> {
    let (store, rows) = open(config)?;
    let verdict = verify_log(config, &store, &rows);
    let mut by_workspace: BTreeMap<String, WorkspaceSummary> = BTreeMap::new();
    for row in &rows {
        let ws = row.event.workspace.clone().unwrap_or_else(|| "(none)".into());
        by_workspace.entry(ws).or_default().add(row);
    }
    // Configured workspaces first, in slot order, then any others the log names.
    let mut names: Vec<String> = config.workspaces.iter().map(|w| w.name.clone()).collect();
    names.extend(by_workspace.keys().filter(|n| !names.contains(n)).cloned().collect::<Vec<_>>());
    if let Some(only) = &args.workspace {
        if !names.contains(only) {
            return fail(format!("workspace {only:?} is neither in the config nor in the audit log"));
        }
        names.retain(|n| n == only);
    }

    let span = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => format!(", {} to {}", rfc3339(first.at_ms), rfc3339(last.at_ms)),
        _ => String::new(),
    };
    println!("audit log {}: {} entries{span}", store.path().display(), rows.len());
    match &verdict {
        Verdict::Intact { .. } => println!("chain: {}", verdict_line(&verdict)),
        Verdict::Broken { .. } => {
            println!("chain: {} (the figures below include entries it cannot vouch for)", verdict_line(&verdict))
        }
    }
    let empty = WorkspaceSummary::default();
    for name in &names {
        let summary = by_workspace.get(name).unwrap_or(&empty);
        print_workspace(config, &store, name, summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_workspace(config: &Config, store: &SqliteStore, name: &str, s: &WorkspaceSummary) {
    println!();
    println!("workspace {name}: {} entries", s.entries);
    if !s.token.ops.is_empty() {
        println!("  token: {}", s.token.line());
    }
    println!("  objects: {}", s.objects.len());
    for (object, usage) in &s.objects {
        println!("    {object}: {}", usage.line());
    }
    print_masters(config, store, name, s);
    let failed: u64 = s.failed_logins.values().sum();
    let detail: Vec<String> = s.failed_logins.iter().map(|((actor, code), n)| format!("{actor} {code} {n}")).collect();
    match failed {
        0 => println!("  failed logins: 0"),
        n => println!("  failed logins: {n} ({})", detail.join(", ")),
    }
    let refusals: Vec<String> = s.refusals.iter().map(|(code, n)| format!("{code} {n}")).collect();
    match refusals.is_empty() {
        true => println!("  refusals: none"),
        false => println!("  refusals: {}", refusals.join(", ")),
    }
}

/// The workspace's master key versions from the store, their age against the rotation
/// schedule, and how often the log names each.
fn print_masters(config: &Config, store: &SqliteStore, name: &str, s: &WorkspaceSummary) {
    let masters: Vec<MasterRecord> = match store.masters(name) {
        Ok(m) => m,
        Err(e) => {
            println!("  master keys: cannot be read: {e}");
            return;
        }
    };
    let classification = config
        .workspaces
        .iter()
        .find(|w| w.name == name)
        .map(|w| w.classification.clone())
        .or_else(|| masters.last().map(|m| m.classification.clone()));
    let schedule = classification.as_ref().and_then(|c| config.rotation.max_age_days.get(c)).map(|d| u64::from(*d));
    let rotation = schedule.map_or("no rotation schedule".to_string(), |d| format!("rotation every {d} days"));
    let class = classification.as_deref().unwrap_or("unknown");
    let in_use = masters.iter().filter(|m| m.state.unwraps()).count();
    println!("  master keys: {} version(s), {in_use} in use; classification {class}, {rotation}", masters.len());
    let now = now();
    for m in &masters {
        let created = u64::try_from(m.created_at).unwrap_or(0);
        let (uses, last) = s.versions.get(&m.version).copied().unwrap_or_default();
        let last = if uses == 0 { String::new() } else { format!(", last {}", rfc3339(last)) };
        let due = match m.state {
            Lifecycle::Active => format!("; {}", rotation_due(m.version, created, schedule, now).1),
            _ => String::new(),
        };
        println!(
            "    v{:<3} {:<12} created {}  age {:>4} days  named by {uses} entries{last}{due}",
            m.version,
            state_name(m.state),
            date(created),
            now.saturating_sub(created) / DAY,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_versions_are_read_from_entry_objects() {
        assert_eq!(wmk_versions("abc \"dek\" under wmk v12"), vec![12]);
        assert_eq!(wmk_versions("3 stored record(s) to wmk v2"), vec![2]);
        assert_eq!(wmk_versions("wmk v1 -> Retired"), vec![1]);
        assert!(wmk_versions("key \"wmk vx\"").is_empty());
    }
}
