//! `cvault hold set|lift`: a legal hold on a workspace's master keys (doc/quorum.md,
//! "Legal hold"), through the module's C ABI like every changing command: the SO sets
//! `CKA_CV_LEGAL_HOLD` on the current master key object (the reason as `CKA_LABEL`).
//! With a quorum, lifting needs an approved `lift-hold` request: the first attempt opens
//! it (`CKR_CV_QUORUM_REQUIRED`), the custodians approve it, and the same command then
//! lifts the hold.

use collabvault_pkcs11::vendor::{CKA_CV_LEGAL_HOLD, CKR_CV_QUORUM_REQUIRED};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use serde_json::json;

use crate::{fail, print_json, Res, Tool};

/// `cvault hold set --reason TEXT` (`on`) or `cvault hold lift`.
pub(crate) fn cmd_hold(t: &Tool, on: bool, reason: Option<&str>) -> Res<()> {
    let ws = t.workspace()?;
    let session = t.pkcs11.open_rw_session(t.slot(&ws.name)?)?;
    session.login(UserType::So, Some(&t.pins.so(&ws.name)?))?;
    let found = session.find_objects(&[Attribute::Label(b"collabvault-master".to_vec())])?;
    let Some(master) = found.first() else {
        return fail("the workspace has no current master key");
    };
    let mut template =
        vec![Attribute::VendorDefined((AttributeType::VendorDefined(CKA_CV_LEGAL_HOLD), vec![u8::from(on)]))];
    if let Some(reason) = reason {
        template.push(Attribute::Label(reason.as_bytes().to_vec()));
    }
    match session.update_attributes(*master, &template) {
        Ok(()) => {}
        Err(P11Error::Pkcs11(RvError::VendorDefined(CKR_CV_QUORUM_REQUIRED), _)) => {
            return fail(format!(
                "{}: lifting the legal hold needs the quorum: a lift-hold request is open (cvault quorum status); \
                 once the custodians approved it (cvault quorum approve --request N), run cvault hold lift again",
                ws.name
            ));
        }
        Err(e) => return Err(e.into()),
    }
    drop(session.logout());
    match (on, t.global.json()) {
        (_, true) => print_json(&json!({"workspace": ws.name, "legal_hold": on, "reason": reason})),
        (true, false) => println!(
            "{}: legal hold set{}: no master key version can be retired or destroyed, no stored DEK deleted",
            ws.name,
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ),
        (false, false) => println!("{}: legal hold lifted", ws.name),
    }
    Ok(())
}
