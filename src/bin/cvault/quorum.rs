//! The quorum commands: `custodians init|list`, `quorum status|request|approve|cancel`,
//! `lock` and `unlock`. Changes go through the module's C ABI like every other command
//! (the split is `C_GenerateKey(CKM_CV_QUORUM_SPLIT)` in an SO session, an approval is
//! `C_LoginUser(CKU_CV_CUSTODIAN)`, a lock sets `CKA_CV_LOCKED`, a request opened ahead
//! `CKA_CV_QUORUM_REQUEST` and a cancel `CKA_CV_CANCEL_REQUEST`); `list` and `status`
//! only read the store, as the audit commands do, so a custodian can see what they are
//! asked to approve without any PIN.

use collabvault_pkcs11::config::Config;
use collabvault_pkcs11::quorum::custodian::{self, Enrolment, KDF_MEMORY_KIB, KDF_PASSES};
use collabvault_pkcs11::quorum::now;
use collabvault_pkcs11::store::quorum::RequestState;
use collabvault_pkcs11::store::Backend;
use collabvault_pkcs11::vendor::{
    CKA_CV_CANCEL_REQUEST, CKA_CV_CUSTODIANS, CKA_CV_EMERGENCY_ACCESS, CKA_CV_LOCKED, CKA_CV_QUORUM_REQUEST,
    CKA_CV_THRESHOLD, CKM_CV_QUORUM_SPLIT, CKU_CV_CUSTODIAN,
};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::Session;
use cryptoki::session::UserType;
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::Global;
use crate::custodian_token::Secrets;
use crate::{fail, print_json, Failure, Res, Tool};

/// The environment variable that may hold custodian `name`'s passphrase:
/// `CV_CUSTODIAN_<NAME>`, upper case, other characters as `_`.
fn passphrase_variable(name: &str) -> String {
    let up: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("CV_CUSTODIAN_{up}")
}

/// Custodian `name`'s passphrase: from the environment, else asked on the terminal
/// (twice when it is being set).
fn passphrase(t: &Tool, name: &str, confirm: bool) -> Res<Zeroizing<String>> {
    let var = passphrase_variable(name);
    if let Some(p) = std::env::var(&var).ok().filter(|p| !p.is_empty()) {
        return Ok(Zeroizing::new(p));
    }
    if !t.pins.can_prompt {
        return fail(format!("no passphrase for custodian {name}: set {var} or run cvault on a terminal"));
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| Failure(format!("cannot read the passphrase from the terminal: {e}")))
    };
    let pass = ask(format!("passphrase of custodian {name}: "))?;
    if confirm && ask("again: ".into())? != pass {
        return fail("the two passphrases differ; nothing was changed");
    }
    if pass.len() < 8 {
        return fail("a custodian passphrase has at least 8 characters");
    }
    Ok(pass)
}

/// Custodian `name`'s secret: the one read from their token when `--custodian-token`
/// named one, else their passphrase (asked twice when `enrol`).
fn secret(t: &Tool, tokens: &Secrets, name: &str, enrol: bool) -> Res<Zeroizing<String>> {
    match tokens.iter().find(|(n, _)| n == name) {
        Some((_, secret)) => Ok(secret.clone()),
        None => passphrase(t, name, enrol),
    }
}

fn vendor_mechanism(ty: u64) -> Res<Mechanism<'static>> {
    let ty = MechanismType::new_vendor_defined(ty)?;
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(ty, None)))
}

/// `cvault custodians init --threshold K --custodian NAME...`: enrols each custodian (their
/// passphrase becomes a public key here; the module never sees it) and splits a new KEK.
pub(crate) fn cmd_init(t: &Tool, threshold: Option<u8>, names: &[String], tokens: &Secrets) -> Res<()> {
    let ws = t.workspace()?;
    let k = threshold.unwrap_or(t.config.quorum.threshold);
    if names.is_empty() || usize::from(k) > names.len() || k == 0 {
        return fail(format!("a {k}-of-{} quorum is impossible: name at least k custodians", names.len()));
    }
    let mut enrolled: Vec<Enrolment> = Vec::new();
    for name in names {
        let pass = secret(t, tokens, name, true)?;
        let e = custodian::enrol(name, pass.as_bytes(), KDF_MEMORY_KIB, KDF_PASSES)
            .map_err(|e| Failure(format!("custodian {name:?}: {e}")))?;
        enrolled.push(e);
    }
    split(t, &ws.name, k, &enrolled)?;
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "threshold": k, "custodians": names, "locked": true}));
    } else {
        println!(
            "{}: a new KEK is split {k}-of-{} among {}; the master keys are locked until {k} of them approve \
             (cvault unlock)",
            ws.name,
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// Splits a new KEK k-of-n among `enrolled` through the module (SO; a change of an
/// existing quorum needs its approval, which the module checks).
fn split(t: &Tool, ws: &str, k: u8, enrolled: &[Enrolment]) -> Res<()> {
    let blob = custodian::encode(enrolled).map_err(|e| Failure(e.to_string()))?;
    let session = t.pkcs11.open_rw_session(t.slot(ws)?)?;
    session.login(UserType::So, Some(&t.pins.so(ws)?))?;
    let template = [
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_THRESHOLD), u64::from(k).to_ne_bytes().to_vec())),
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_CUSTODIANS), blob)),
    ];
    session.generate_key(&vendor_mechanism(CKM_CV_QUORUM_SPLIT)?, &template)?;
    Ok(())
}

/// The quorum as the store holds it, read before the module is loaded (one process
/// never has the store open twice): the threshold and the enrolled custodians' public
/// halves, which a re-split reuses (their passphrases are not needed again).
pub(crate) struct CurrentQuorum {
    threshold: u8,
    custodians: Vec<Enrolment>,
}

impl CurrentQuorum {
    pub(crate) fn read(config: &Config, global: &Global) -> Res<CurrentQuorum> {
        let ws = match &global.workspace {
            Some(name) => name.clone(),
            None if config.workspaces.len() == 1 => config.workspaces[0].name.clone(),
            None => return fail("several workspaces are configured: name one with --workspace"),
        };
        let store = open_store(config)?;
        let kek = store.kek(&ws).map_err(|e| Failure(format!("store: {e}")))?;
        let threshold = kek.map_or(0, |k| k.threshold);
        if threshold == 0 {
            return fail(format!("{ws}: no quorum yet: enrol custodians with `cvault custodians init`"));
        }
        let custodians = store
            .custodians(&ws)
            .map_err(|e| Failure(format!("store: {e}")))?
            .into_iter()
            .map(|c| Enrolment {
                name: c.name,
                salt: c.salt,
                memory_kib: c.memory_kib,
                passes: c.passes,
                public_key: c.public_key,
            })
            .collect();
        Ok(CurrentQuorum { threshold, custodians })
    }
}

/// `cvault custodians add|remove`: the current custodians with `added` enrolled and
/// `removed` left out, split anew at `threshold` (default: the current k).
pub(crate) fn cmd_change(
    t: &Tool,
    current: &CurrentQuorum,
    added: &[String],
    removed: &[String],
    threshold: Option<u8>,
    tokens: &Secrets,
) -> Res<()> {
    let ws = t.workspace()?;
    let known = |name: &String| current.custodians.iter().any(|c| &c.name == name);
    if let Some(name) = removed.iter().find(|n| !known(n)) {
        return fail(format!("{name} is not a custodian of {}", ws.name));
    }
    if let Some(name) = added.iter().find(|n| known(n)) {
        return fail(format!("{name} is already a custodian of {}", ws.name));
    }
    let mut enrolled: Vec<Enrolment> =
        current.custodians.iter().filter(|c| !removed.contains(&c.name)).cloned().collect();
    for name in added {
        let pass = secret(t, tokens, name, true)?;
        let e = custodian::enrol(name, pass.as_bytes(), KDF_MEMORY_KIB, KDF_PASSES)
            .map_err(|e| Failure(format!("custodian {name:?}: {e}")))?;
        enrolled.push(e);
    }
    let k = threshold.unwrap_or(current.threshold);
    if k == 0 || usize::from(k) > enrolled.len() {
        return fail(format!("a {k}-of-{} quorum is impossible: lower --threshold", enrolled.len()));
    }
    split(t, &ws.name, k, &enrolled)?;
    let names: Vec<&str> = enrolled.iter().map(|e| e.name.as_str()).collect();
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "threshold": k, "custodians": names, "locked": true}));
    } else {
        println!(
            "{}: the KEK is split anew {k}-of-{} among {}; earlier shares open nothing, and the master keys are \
             locked until {k} of them approve (cvault unlock)",
            ws.name,
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// `cvault quorum approve [--request N] --custodian NAME` (and `cvault unlock`): one
/// `C_LoginUser` per custodian.
pub(crate) fn cmd_approve(t: &Tool, request: Option<i64>, names: &[String], tokens: &Secrets) -> Res<()> {
    let ws = t.workspace()?;
    if names.is_empty() {
        return fail("name the approving custodian(s) with --custodian");
    }
    let module = crate::module_path(&t.global)?;
    for name in names {
        let pass = secret(t, tokens, name, false)?;
        let session = t.pkcs11.open_rw_session(t.slot(&ws.name)?)?;
        let username = match request {
            Some(n) => format!("{name}:{n}"),
            None => name.clone(),
        };
        let rv = collabvault_pkcs11::ffi::client::login_user(
            &module,
            session.handle(),
            CKU_CV_CUSTODIAN,
            pass.as_bytes(),
            username.as_bytes(),
        )
        .map_err(Failure)?;
        if rv != cryptoki_sys::CKR_OK {
            return fail(format!(
                "custodian {name}: C_LoginUser returned {} ({})",
                collabvault_pkcs11::names::rv_name(rv),
                explain(rv)
            ));
        }
        if !t.global.json() {
            println!("{}: {name} approved{}", ws.name, request.map(|n| format!(" request #{n}")).unwrap_or_default());
        }
    }
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "approved_by": names, "request": request}));
    }
    Ok(())
}

fn explain(rv: u64) -> &'static str {
    match rv {
        collabvault_pkcs11::vendor::CKR_CV_QUORUM_FAILED => {
            "the approved shares do not rebuild the KEK: the request is cancelled"
        }
        cryptoki_sys::CKR_PIN_INCORRECT => "wrong passphrase, or no such custodian",
        cryptoki_sys::CKR_PIN_LOCKED => "this custodian is locked out after too many wrong passphrases",
        cryptoki_sys::CKR_USER_TYPE_INVALID => "the workspace has no quorum",
        cryptoki_sys::CKR_ARGUMENTS_BAD => "no such open request (see cvault quorum status)",
        _ => "see the module log",
    }
}

/// The action a `cvault quorum request` names, in the module's spelling.
pub(crate) struct RequestedAction {
    action: String,
    /// Whether the SO performs the operation (so opens its request by default).
    by_so: bool,
}

impl RequestedAction {
    /// `--action` with its `--version` or `--user`, checked before the module is asked.
    pub(crate) fn parse(action: &str, version: Option<u32>, user: Option<&str>) -> Res<RequestedAction> {
        let needs = |what: &str| fail(format!("--action {action} takes no {what}"));
        let action = match action {
            "destroy" => match version {
                Some(v) if v > 0 => collabvault_pkcs11::quorum::destroy_action(v),
                _ => return fail("--action destroy needs --version N (the master key version to destroy)"),
            },
            "emergency-access" => match user {
                Some(u) if !u.is_empty() => collabvault_pkcs11::quorum::emergency_action(u),
                _ => return fail("--action emergency-access needs --user NAME (who the window is for)"),
            },
            other => other.to_string(),
        };
        if !action.starts_with("destroy-v") && version.is_some() {
            return needs("--version");
        }
        if !action.starts_with("emergency-access:") && user.is_some() {
            return needs("--user");
        }
        if !collabvault_pkcs11::quorum::request::is_guarded_action(&action) {
            return fail(format!(
                "{action:?} is not an action the quorum guards: unlock, destroy --version N, emergency-access --user \
                 NAME, change-quorum, init-token, lift-hold, import-key, export-kit, reshare-root"
            ));
        }
        use collabvault_pkcs11::quorum::{CHANGE_QUORUM, INIT_TOKEN, LIFT_HOLD, RESHARE_ROOT};
        let by_so = [CHANGE_QUORUM, INIT_TOKEN, LIFT_HOLD, RESHARE_ROOT].contains(&action.as_str());
        Ok(RequestedAction { action, by_so })
    }
}

/// A read-write session on `ws`, logged in as the SO or the user, and the current master
/// key object (which takes the quorum's attributes).
fn master_session(t: &Tool, ws: &str, so: bool) -> Res<(Session, cryptoki::object::ObjectHandle)> {
    let session = match so {
        true => {
            let s = t.pkcs11.open_rw_session(t.slot(ws)?)?;
            s.login(UserType::So, Some(&t.pins.so(ws)?))?;
            s
        }
        false => t.user_session(ws)?,
    };
    let found = session.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())])?;
    let Some(master) = found.first().copied() else {
        return fail("the workspace has no current master key");
    };
    Ok((session, master))
}

/// `cvault quorum request --action ACTION ...`: opens the request in the module
/// (`CKA_CV_QUORUM_REQUEST`) and prints its number, read back from the same attribute.
pub(crate) fn cmd_request(t: &Tool, requested: &RequestedAction, hours: Option<u64>, so: bool) -> Res<()> {
    let ws = t.workspace()?;
    let as_so = so || requested.by_so;
    let (session, master) = master_session(t, &ws.name, as_so)?;
    let mut value = requested.action.clone().into_bytes();
    if let Some(h) = hours {
        value.extend_from_slice(format!("\n{h}").as_bytes());
    }
    let attr = AttributeType::VendorDefined(CKA_CV_QUORUM_REQUEST);
    match session.update_attributes(master, &[Attribute::VendorDefined((attr, value))]) {
        Ok(()) => {}
        Err(P11Error::Pkcs11(RvError::ActionProhibited, _)) => {
            return fail(format!("{}: the workspace has no quorum: {} needs no request", ws.name, requested.action));
        }
        Err(P11Error::Pkcs11(RvError::AttributeValueInvalid, _)) => {
            return fail(format!(
                "{}: request refused: --expires-hours must be 1 to [quorum] approval_hours ({})",
                ws.name, t.config.quorum.approval_hours
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let read = session.get_attributes(master, &[attr])?;
    let id = match read.first() {
        Some(Attribute::VendorDefined((_, v))) => v.as_slice().try_into().map(u64::from_ne_bytes).unwrap_or(0),
        _ => 0,
    };
    drop(session.logout());
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "request": id, "action": requested.action,
                           "requested_by": if as_so { "so" } else { "user" }}));
    } else {
        println!(
            "{}: request #{id} ({}) is open: custodians approve it with cvault quorum approve --request {id} \
             --custodian NAME",
            ws.name, requested.action
        );
    }
    Ok(())
}

/// `cvault quorum cancel N [--so]`: cancels the request in the module
/// (`CKA_CV_CANCEL_REQUEST`), as the user or the SO.
pub(crate) fn cmd_cancel(t: &Tool, id: i64, so: bool) -> Res<()> {
    let ws = t.workspace()?;
    let Ok(n) = u64::try_from(id) else {
        return fail(format!("{id} is not a request number"));
    };
    let (session, master) = master_session(t, &ws.name, so)?;
    let attr =
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_CANCEL_REQUEST), n.to_ne_bytes().to_vec()));
    let refused = |why: String| fail(format!("{}: cancel of request #{id} refused: {why}", ws.name));
    match session.update_attributes(master, &[attr]) {
        Ok(()) => {}
        Err(P11Error::Pkcs11(RvError::AttributeValueInvalid, _)) => {
            return refused("no such request (cvault quorum status lists the open ones)".into());
        }
        Err(P11Error::Pkcs11(RvError::ActionProhibited, _)) => {
            return refused("it is no longer open (already used or cancelled)".into());
        }
        Err(P11Error::Pkcs11(RvError::UserNotLoggedIn, _)) => {
            return refused(format!(
                "it was opened by someone else: only they or the SO{} cancel it",
                if so { "" } else { " (--so)" }
            ));
        }
        Err(e) => return Err(e.into()),
    }
    drop(session.logout());
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "request": id, "cancelled": true}));
    } else {
        println!("{}: request #{id} cancelled; its approvals count for nothing", ws.name);
    }
    Ok(())
}

/// `cvault lock`: revokes the unlock grant (every process) in a user session.
pub(crate) fn cmd_lock(t: &Tool) -> Res<()> {
    let ws = t.workspace()?;
    let session = t.user_session(&ws.name)?;
    let found = session.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())])?;
    let Some(master) = found.first() else {
        return fail("the workspace has no current master key");
    };
    session.update_attributes(
        *master,
        &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LOCKED), vec![1]))],
    )?;
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "locked": true}));
    } else {
        println!("{}: master keys locked; a quorum of custodians unlocks them (cvault unlock)", ws.name);
    }
    Ok(())
}

/// `cvault emergency open --name NAME` / `close`: sets `CKA_CV_EMERGENCY_ACCESS` in a user
/// session. The first `open` is refused with the request the custodians must approve.
pub(crate) fn cmd_emergency(t: &Tool, name: Option<&str>) -> Res<()> {
    let ws = t.workspace()?;
    let session = t.user_session(&ws.name)?;
    let found = session.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())])?;
    let Some(master) = found.first() else {
        return fail("the workspace has no current master key");
    };
    let value = name.unwrap_or_default().as_bytes().to_vec();
    session.update_attributes(
        *master,
        &[Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_EMERGENCY_ACCESS), value))],
    )?;
    match (name, t.global.json()) {
        (Some(n), true) => print_json(&json!({"workspace": ws.name, "emergency_access": n, "open": true})),
        (None, true) => print_json(&json!({"workspace": ws.name, "open": false})),
        (Some(n), false) => println!("{}: emergency access open for {n}; every use is audited", ws.name),
        (None, false) => println!("{}: emergency access closed", ws.name),
    }
    Ok(())
}

fn open_store(config: &Config) -> Res<std::sync::Arc<dyn Backend>> {
    collabvault_pkcs11::store::open(config).map_err(|e| Failure(format!("store: {e}")))
}

/// `cvault custodians list` and `cvault quorum status`, from the store (no PIN).
pub(crate) fn cmd_status(config: &Config, global: &Global, custodians_only: bool) -> Res<()> {
    let store = open_store(config)?;
    let mut out = Vec::new();
    for ws in &config.workspaces {
        if global.workspace.as_ref().is_some_and(|w| w != &ws.name) {
            continue;
        }
        let st = |e: collabvault_pkcs11::Error| Failure(format!("store: {e}"));
        let kek = store.kek(&ws.name).map_err(st)?;
        let custodians = store.custodians(&ws.name).map_err(st)?;
        let grant = store.grant(&ws.name).map_err(st)?.filter(|g| g.expires_at > now());
        let emergency = store.emergency(&ws.name).map_err(st)?.filter(|w| w.expires_at > now());
        let hold = store.hold(&ws.name).map_err(st)?;
        let threshold = kek.as_ref().map_or(0, |k| k.threshold);
        let mut requests = Vec::new();
        for r in store.requests(&ws.name).map_err(st)? {
            if r.state != RequestState::Open || r.expires_at <= now() {
                continue;
            }
            let approvals: Vec<String> = store.approvals(r.id).map_err(st)?.into_iter().map(|a| a.custodian).collect();
            requests.push(json!({
                "id": r.id, "action": r.action, "requested_by": r.requested_by,
                "expires_unix": r.expires_at, "approved_by": approvals,
            }));
        }
        out.push(json!({
            "workspace": ws.name,
            "threshold": threshold,
            "kek_generation": kek.as_ref().map(|k| k.generation),
            "locked": threshold > 0 && grant.is_none(),
            "unlock_expires_unix": grant.map(|g| g.expires_at),
            "emergency_access": emergency.map(|w| json!({"name": w.name, "expires_unix": w.expires_at})),
            "legal_hold": hold.map(|h| json!({"reason": h.reason, "set_by": h.set_by, "set_unix": h.set_at})),
            "custodians": custodians.iter().map(|c| json!({
                "name": c.name, "share_index": c.index, "failed_attempts": c.failures,
            })).collect::<Vec<_>>(),
            "open_requests": requests,
        }));
    }
    if global.json() {
        print_json(&json!(out));
        return Ok(());
    }
    for w in &out {
        let name = w["workspace"].as_str().unwrap_or_default();
        let k = w["threshold"].as_u64().unwrap_or(0);
        let list: Vec<&str> =
            w["custodians"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
        if k == 0 {
            println!("{name}: no quorum (the root seals the KEK)");
            continue;
        }
        println!("{name}: {k}-of-{} quorum: {}", list.len(), list.join(", "));
        if custodians_only {
            continue;
        }
        match w["unlock_expires_unix"].as_i64() {
            Some(at) => println!("  unlocked until {} (Unix {at})", crate::time::date(u64::try_from(at).unwrap_or(0))),
            None => println!("  locked"),
        }
        if let Some(w) = w["emergency_access"].as_object() {
            println!(
                "  emergency access open for {} until Unix {}",
                w["name"].as_str().unwrap_or_default(),
                w["expires_unix"]
            );
        }
        if let Some(h) = w["legal_hold"].as_object() {
            println!(
                "  legal hold: {} (set by {})",
                h["reason"].as_str().unwrap_or_default(),
                h["set_by"].as_str().unwrap_or_default()
            );
        }
        for r in w["open_requests"].as_array().into_iter().flatten() {
            let by: Vec<&str> = r["approved_by"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).collect();
            println!(
                "  request #{} {} (requested by {}): {} of {k} approval(s){}",
                r["id"],
                r["action"].as_str().unwrap_or_default(),
                r["requested_by"].as_str().unwrap_or_default(),
                by.len(),
                if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) }
            );
        }
    }
    Ok(())
}
