//! `cvault audit verify|export|report`: the audit log, read from the store itself.
//!
//! Unlike the master key commands, these do not go through the module: they only read,
//! need no PIN, and must work when the module cannot (a verifier that trusts the module
//! to show it the log proves nothing). They open the SQLite store the config names with
//! the crate's own backend and never write to it, beyond the schema migration any opener
//! of an older store performs.
//!
//! A verdict proves the hash chain (every entry unchanged and in its place) and, with a
//! `[root]`, the signed checkpoints and the head the root token keeps ([`verify_log`]);
//! that needs the root token's PIN, from where the config says, and nothing else.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use collabvault_pkcs11::audit::checkpoint::TrustedKeys;
use collabvault_pkcs11::audit::export::{json_line, Filter};
use collabvault_pkcs11::audit::{self, checkpoint, succession, Verdict};
use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::root::slot::SlotRoot;
use collabvault_pkcs11::store::audit::{AuditRow, Checkpoint};
use collabvault_pkcs11::store::sqlite::STORE_FILE;
use collabvault_pkcs11::store::{Backend, Lifecycle, MasterRecord};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::cli::{AuditCommand, Global};
use crate::time::{date, now, parse_time, rfc3339, rotation_due, DAY};
use crate::{fail, print_json, Failure, Res};

/// Outcomes that mean a PIN was tried and refused.
const FAILED_LOGIN_OUTCOMES: [&str; 2] = ["CKR_PIN_INCORRECT", "CKR_PIN_LOCKED"];

/// `cvault audit SUBCOMMAND`.
pub(crate) fn run(config: &Config, command: &AuditCommand, global: &Global) -> Res<ExitCode> {
    match command {
        AuditCommand::Verify => verify(config, global.json()),
        AuditCommand::Export { since, until, key } => export(config, since, until, key),
        AuditCommand::Report => report(config, global),
        AuditCommand::Key => self::key(config, global.json()),
    }
}

/// The store the config names, and every audit entry in it, in sequence order.
fn open(config: &Config) -> Res<(Arc<dyn Backend>, Vec<AuditRow>)> {
    let file = config.store_dir.join(STORE_FILE);
    if config.store.is_none() && !file.exists() {
        return fail(format!("no store at {}: the module has not run with this config", file.display()));
    }
    let store = collabvault_pkcs11::store::open(config).map_err(|e| Failure(format!("cannot open the store: {e}")))?;
    let rows = store.audit_rows().map_err(|e| Failure(format!("cannot read the audit log: {e}")))?;
    Ok((store, rows))
}

/// The store, its entries and their verdict, with a spinner on a terminal: a long chain
/// takes seconds to read and hash.
fn open_and_verify(config: &Config) -> Res<(Arc<dyn Backend>, Vec<AuditRow>, Checked)> {
    let spinner = crate::progress::spinner("reading the audit log".into());
    let opened = open(config);
    let result = opened.and_then(|(store, rows)| {
        spinner.set_message(format!("verifying {} entries", rows.len()));
        let checked = verify_log(config, store.as_ref(), &rows)?;
        Ok((store, rows, checked))
    });
    spinner.finish_and_clear();
    result
}

/// A verdict, and what it rests on beyond the chain itself (printed after it).
struct Checked {
    verdict: Verdict,
    basis: Option<String>,
}

/// Every verdict `cvault` prints comes from here.
///
/// The hash chain proves each entry unchanged and in its place. With a `[root]`, the
/// signed checkpoints in the store must verify under the audit keys the root token holds,
/// each signature a checkpoint carries (ECDSA P-256, ML-DSA-65) under its own (a rewritten chain no longer has the hashes they signed), and the newest checkpoint
/// the root token remembers must still be in the store and the chain (a dropped tail or
/// dropped checkpoints fall short of it). Without a root nothing outside the store vouches
/// for its length, and the verdict says so by saying nothing more.
fn verify_log(config: &Config, store: &dyn Backend, rows: &[AuditRow]) -> Res<Checked> {
    let Some(root_config) = &config.root else {
        return Ok(Checked { verdict: audit::verify(rows, None), basis: None });
    };
    let unreachable = |e: collabvault_pkcs11::Error| {
        Failure(format!("cannot check the signed checkpoints: the root token is unreachable: {e}"))
    };
    let root = SlotRoot::connect(root_config).map_err(unreachable)?;
    let head = root.head().map_err(unreachable)?;
    let ecdsa = root.audit_public_key().map_err(unreachable)?;
    let mldsa = root.audit_mldsa_public_key().map_err(unreachable)?;
    drop(root);
    let checkpoints = store.checkpoints().map_err(|e| Failure(format!("cannot read the checkpoints: {e}")))?;
    // Without an audit key in the root token no signature by that algorithm is genuine:
    // an empty key matches none.
    let trusted = TrustedKeys {
        ecdsa: Some(ecdsa.as_deref().unwrap_or_default()),
        mldsa: Some(mldsa.as_deref().unwrap_or_default()),
    };
    let verdict = checkpoint::verify_all(rows, &checkpoints, head.as_ref(), &trusted);
    let count = |f: fn(&Checkpoint) -> bool| checkpoints.iter().filter(|c| f(c)).count();
    let (with_ecdsa, with_mldsa) = (count(|c| c.ecdsa.is_some()), count(|c| c.mldsa.is_some()));
    let basis = match &head {
        Some((_, seq, _)) => format!(
            "{} signed checkpoint(s) ({with_ecdsa} {}, {with_mldsa} {}) verified with the root token's audit keys, \
             whose head is at entry {seq}",
            checkpoints.len(),
            checkpoint::ECDSA,
            checkpoint::MLDSA,
        ),
        None => "no checkpoint signed yet".to_string(),
    };
    Ok(Checked { verdict, basis: Some(basis + &spans(rows)) })
}

/// `; spans N root replacement(s): at entry S, checkpoints up to K by the lost root's
/// keys (…)`, for a chain carried across the loss of a root token (`audit/succession.rs`);
/// empty otherwise. Printed only with a verdict that checked them.
fn spans(rows: &[AuditRow]) -> String {
    let Ok(found) = succession::successions(rows) else {
        return String::new();
    };
    if found.is_empty() {
        return String::new();
    }
    let each: Vec<String> = found
        .iter()
        .map(|(seq, s)| {
            format!(
                "at entry {seq}, checkpoints up to {} (entry {}) by the replaced root's keys ({})",
                s.last_number,
                s.last_seq,
                s.keys_line()
            )
        })
        .collect();
    format!("; the chain spans {} root replacement(s): {}", found.len(), each.join("; "))
}

/// `intact: N entries, head H[; basis]` or `broken at entry S: DEFECT`.
fn verdict_line(checked: &Checked) -> String {
    match &checked.verdict {
        Verdict::Intact { entries, head } => match &checked.basis {
            Some(basis) => format!("intact: {entries} entries, head {head}; {basis}"),
            None => format!("intact: {entries} entries, head {head}"),
        },
        Verdict::Broken { seq, defect } => format!("broken at entry {seq}: {defect}"),
    }
}

/// A verdict's `--json` form.
fn verdict_json(checked: &Checked) -> Value {
    match &checked.verdict {
        Verdict::Intact { entries, head } => {
            json!({"intact": true, "entries": entries, "head": head, "basis": checked.basis})
        }
        Verdict::Broken { seq, defect } => json!({"intact": false, "broken_at": seq, "defect": defect.to_string()}),
    }
}

/// `cvault audit verify`: exit 0 when intact, 1 naming the first bad entry.
fn verify(config: &Config, as_json: bool) -> Res<ExitCode> {
    let (_, _, checked) = open_and_verify(config)?;
    if as_json {
        print_json(&verdict_json(&checked));
    } else {
        println!("{}", verdict_line(&checked));
    }
    Ok(match checked.verdict {
        Verdict::Intact { .. } => ExitCode::SUCCESS,
        Verdict::Broken { .. } => ExitCode::FAILURE,
    })
}

/// `cvault audit key`: the audit public keys the root token holds, as PEM
/// (SubjectPublicKeyInfo: P-256, and ML-DSA-65 with OID 2.16.840.1.101.3.4.3.18), for
/// verifiers who check the checkpoints' signatures themselves.
fn key(config: &Config, as_json: bool) -> Res<ExitCode> {
    let Some(root_config) = &config.root else {
        return fail("there is no audit key: checkpoints are signed only with a [root] (an underlying token)");
    };
    let root = SlotRoot::connect(root_config).map_err(|e| Failure(format!("the root token is unreachable: {e}")))?;
    let read = |e| Failure(format!("cannot read the audit key: {e}"));
    let point = root.audit_public_key().map_err(read)?;
    let mldsa = root.audit_mldsa_public_key().map_err(read)?;
    drop(root);
    if point.is_none() && mldsa.is_none() {
        return fail("the root token holds no audit key yet: the first checkpoint makes it");
    }
    let malformed = |e| Failure(format!("the audit key is malformed: {e}"));
    let ecdsa_pem = point.as_deref().map(checkpoint::public_key_pem).transpose().map_err(malformed)?;
    let mldsa_pem = mldsa.as_deref().map(checkpoint::mldsa_public_key_pem).transpose().map_err(malformed)?;
    if as_json {
        // The fingerprints a root succession entry names the keys by (`doc/recovery.md`).
        let fingerprint = |k: &Option<Vec<u8>>| k.as_deref().map(|k| hex::encode(succession::fingerprint(k)));
        print_json(&json!({
            "ecdsa_p256": ecdsa_pem, "ml_dsa_65": mldsa_pem,
            "ecdsa_p256_sha256": fingerprint(&point), "ml_dsa_65_sha256": fingerprint(&mldsa),
        }));
    } else {
        for pem in [ecdsa_pem, mldsa_pem].into_iter().flatten() {
            print!("{pem}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cvault audit export`: the entries the filters pass, one JSON object per line.
fn export(config: &Config, since: &Option<String>, until: &Option<String>, key: &Option<String>) -> Res<ExitCode> {
    let time = |option: &str, value: &Option<String>| {
        value.as_deref().map(parse_time).transpose().map_err(|why| Failure(format!("{option}: {why}")))
    };
    let filter = Filter { since_ms: time("--since", since)?, until_ms: time("--until", until)?, key: key.clone() };
    let (_, rows) = open(config)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let written = rows.iter().filter(|r| filter.accepts(r)).try_for_each(|r| writeln!(out, "{}", json_line(r)));
    match written.and_then(|()| out.flush()) {
        // A reader that has seen enough (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => fail(format!("cannot write the export: {e}")),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// How one object (or the token itself) was used: successful operations by action.
#[derive(Default)]
struct Usage {
    ops: BTreeMap<String, u64>,
    last_ms: i64,
}

impl Usage {
    /// `n` operations: 1 for an entry of its own, the count for a counter entry.
    fn add(&mut self, action: &str, n: u64, at_ms: i64) {
        *self.ops.entry(action.to_string()).or_default() += n;
        self.last_ms = self.last_ms.max(at_ms);
    }

    fn json(&self) -> Value {
        json!({ "ops": self.ops, "last": rfc3339(self.last_ms) })
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
    /// The quorum's and legal holds' entries (`quorum-*`, `legal-hold`).
    quorum: Usage,
    /// By the entry's `object` field.
    objects: BTreeMap<String, Usage>,
    /// Entries naming master key version N (`wmk vN`): count and last time.
    versions: BTreeMap<u32, (u64, i64)>,
    /// Refused PINs, by actor and outcome.
    failed_logins: BTreeMap<(String, String), u64>,
    /// Every refusal, by `CKR_` code.
    refusals: BTreeMap<String, u64>,
    /// Alerts the analytics raised, in order: (time, kind, what).
    alerts: Vec<(i64, String, String)>,
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
        if let Some(kind) = e.action.strip_prefix("ALERT ") {
            self.alerts.push((row.at_ms, kind.to_string(), e.object.clone().unwrap_or_default()));
            return;
        }
        let n = e.count.unwrap_or(1);
        if e.action.starts_with("quorum-") || e.action == "legal-hold" {
            self.quorum.add(&e.action, n, row.at_ms);
            return;
        }
        match &e.object {
            None => self.token.add(&e.action, n, row.at_ms),
            Some(object) => {
                let (primary, secondary) = objects_named(object);
                self.objects.entry(primary.to_string()).or_default().add(&e.action, n, row.at_ms);
                if let Some((role, key)) = secondary {
                    self.objects.entry(key.to_string()).or_default().add(
                        &format!("{} ({role})", e.action),
                        n,
                        row.at_ms,
                    );
                }
                for v in wmk_versions(object) {
                    let used = self.versions.entry(v).or_default();
                    *used = (used.0 + 1, used.1.max(row.at_ms));
                }
            }
        }
    }
}

/// The keys an entry's object names: the one acted on, and the one it was made from or
/// wrapped under, with that key's role (`<id> "dek" under <id> "kek"`: the kek is the
/// wrapping key). Text of another shape (`wmk v2 -> Retired`) is one object.
fn objects_named(object: &str) -> (&str, Option<(&'static str, &str)>) {
    for (relation, role) in [(" under ", "as wrapping key"), (" from ", "as base key"), (" to ", "as public key")] {
        let Some((first, second)) = object.split_once(relation) else { continue };
        // Only after `<id> "label"`: a label may itself contain the word.
        if !first.ends_with('"') {
            continue;
        }
        // A wrap record names its master key version, which the report counts apart.
        if second.starts_with("wmk v") {
            return (first, None);
        }
        if second.ends_with('"') {
            return (first, Some((role, second)));
        }
    }
    (object, None)
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
fn report(config: &Config, global: &Global) -> Res<ExitCode> {
    let (store, rows, checked) = open_and_verify(config)?;
    let mut by_workspace: BTreeMap<String, WorkspaceSummary> = BTreeMap::new();
    for row in &rows {
        let ws = row.event.workspace.clone().unwrap_or_else(|| "(none)".into());
        by_workspace.entry(ws).or_default().add(row);
    }
    // Configured workspaces first, in slot order, then any others the log names.
    let mut names: Vec<String> = config.workspaces.iter().map(|w| w.name.clone()).collect();
    names.extend(by_workspace.keys().filter(|n| !names.contains(n)).cloned().collect::<Vec<_>>());
    if let Some(only) = &global.workspace {
        if !names.contains(only) {
            return fail(format!("workspace {only:?} is neither in the config nor in the audit log"));
        }
        names.retain(|n| n == only);
    }

    if global.json() {
        let workspaces: Vec<Value> = names
            .iter()
            .map(|name| {
                workspace_json(
                    config,
                    store.as_ref(),
                    name,
                    by_workspace.get(name).unwrap_or(&WorkspaceSummary::default()),
                )
            })
            .collect();
        print_json(&json!({
            "store": store.describe(),
            "entries": rows.len(),
            "first": rows.first().map(|r| rfc3339(r.at_ms)),
            "last": rows.last().map(|r| rfc3339(r.at_ms)),
            "chain": verdict_json(&checked),
            "workspaces": workspaces,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let span = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => format!(", {} to {}", rfc3339(first.at_ms), rfc3339(last.at_ms)),
        _ => String::new(),
    };
    println!("audit log {}: {} entries{span}", store.describe(), rows.len());
    match &checked.verdict {
        Verdict::Intact { .. } => println!("chain: {}", verdict_line(&checked)),
        Verdict::Broken { .. } => {
            println!("chain: {} (the figures below include entries it cannot vouch for)", verdict_line(&checked))
        }
    }
    let empty = WorkspaceSummary::default();
    for name in &names {
        let summary = by_workspace.get(name).unwrap_or(&empty);
        print_workspace(config, store.as_ref(), name, summary);
    }
    Ok(ExitCode::SUCCESS)
}

/// One workspace's report as `--json` (field names documented in the README).
fn workspace_json(config: &Config, store: &dyn Backend, name: &str, s: &WorkspaceSummary) -> Value {
    let objects: Vec<Value> = s
        .objects
        .iter()
        .map(|(object, usage)| {
            let mut v = usage.json();
            v["object"] = json!(object);
            v
        })
        .collect();
    let failed: Vec<Value> = s
        .failed_logins
        .iter()
        .map(|((actor, outcome), n)| json!({"actor": actor, "outcome": outcome, "count": n}))
        .collect();
    let alerts: Vec<Value> =
        s.alerts.iter().map(|(at, kind, what)| json!({"at": rfc3339(*at), "kind": kind, "object": what})).collect();
    json!({
        "workspace": name,
        "entries": s.entries,
        "token": if s.token.ops.is_empty() { Value::Null } else { s.token.json() },
        "quorum": if s.quorum.ops.is_empty() { Value::Null } else { s.quorum.json() },
        "objects": objects,
        "masters": masters_json(config, store, name, s),
        "failed_logins": failed,
        "alerts": alerts,
        "refusals": s.refusals,
    })
}

/// The master key versions of `print_masters`, as `--json`.
fn masters_json(config: &Config, store: &dyn Backend, name: &str, s: &WorkspaceSummary) -> Value {
    let Ok(masters) = store.masters(name) else { return Value::Null };
    let (_, schedule) = classification_and_schedule(config, name, &masters);
    let now = now();
    let versions: Vec<Value> = masters
        .iter()
        .map(|m| {
            let created = u64::try_from(m.created_at).unwrap_or(0);
            let (uses, last) = s.versions.get(&m.version).copied().unwrap_or_default();
            let due = matches!(m.state, Lifecycle::Active).then(|| rotation_due(m.version, created, schedule, now).0);
            json!({
                "version": m.version,
                "state": state_name(m.state),
                "created": date(created),
                "age_days": now.saturating_sub(created) / DAY,
                "named_by_entries": uses,
                "last_named": (uses > 0).then(|| rfc3339(last)),
                "rotation_due": due,
            })
        })
        .collect();
    json!({ "rotation_days": schedule, "versions": versions })
}

/// The workspace's classification (from the config, else its newest master key) and the
/// rotation schedule in days that `[rotation]` sets for it.
fn classification_and_schedule(config: &Config, name: &str, masters: &[MasterRecord]) -> (Option<String>, Option<u64>) {
    let classification = config
        .workspaces
        .iter()
        .find(|w| w.name == name)
        .map(|w| w.classification.clone())
        .or_else(|| masters.last().map(|m| m.classification.clone()));
    let schedule = classification.as_ref().and_then(|c| config.rotation.max_age_days.get(c)).map(|d| u64::from(*d));
    (classification, schedule)
}

fn print_workspace(config: &Config, store: &dyn Backend, name: &str, s: &WorkspaceSummary) {
    println!();
    println!("workspace {name}: {} entries", s.entries);
    if !s.token.ops.is_empty() {
        println!("  token: {}", s.token.line());
    }
    if !s.quorum.ops.is_empty() {
        println!("  quorum: {}", s.quorum.line());
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
    match s.alerts.last() {
        None => println!("  alerts: none"),
        Some((at, kind, what)) => {
            println!("  alerts: {} (last: {kind} at {}: {what})", s.alerts.len(), rfc3339(*at));
        }
    }
    let refusals: Vec<String> = s.refusals.iter().map(|(code, n)| format!("{code} {n}")).collect();
    match refusals.is_empty() {
        true => println!("  refusals: none"),
        false => println!("  refusals: {}", refusals.join(", ")),
    }
}

/// The workspace's master key versions from the store, their age against the rotation
/// schedule, and how often the log names each.
fn print_masters(config: &Config, store: &dyn Backend, name: &str, s: &WorkspaceSummary) {
    let masters: Vec<MasterRecord> = match store.masters(name) {
        Ok(m) => m,
        Err(e) => {
            println!("  master keys: cannot be read: {e}");
            return;
        }
    };
    let (classification, schedule) = classification_and_schedule(config, name, &masters);
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
    fn an_entry_names_the_key_acted_on_and_the_key_it_came_from() {
        assert_eq!(
            objects_named(r#"a1 "dek" under b2 "kek""#),
            (r#"a1 "dek""#, Some(("as wrapping key", r#"b2 "kek""#)))
        );
        assert_eq!(
            objects_named(r#"c3 "secret" from d4 "ec""#),
            (r#"c3 "secret""#, Some(("as base key", r#"d4 "ec""#)))
        );
        assert_eq!(objects_named(r#"a1 "dek" from wmk v2"#), (r#"a1 "dek""#, None));
        assert_eq!(objects_named(r#"a1 "dek" under wmk v3"#), (r#"a1 "dek""#, None));
        assert_eq!(objects_named(r#"a1 "keys under lock""#), (r#"a1 "keys under lock""#, None));
        assert_eq!(objects_named("wmk v3 -> Retired"), ("wmk v3 -> Retired", None));
    }

    #[test]
    fn master_key_versions_are_read_from_entry_objects() {
        assert_eq!(wmk_versions("abc \"dek\" under wmk v12"), vec![12]);
        assert_eq!(wmk_versions("3 stored record(s) to wmk v2"), vec![2]);
        assert_eq!(wmk_versions("wmk v1 -> Retired"), vec![1]);
        assert!(wmk_versions("key \"wmk vx\"").is_empty());
    }
}
