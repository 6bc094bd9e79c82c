//! The vendor mechanisms of the workspace hierarchy (`include/collabvault.h`): wrap
//! records, re-wrap, rotation, the stored-DEK re-wrap job, and share records to a
//! recipient's hybrid public key ([`KeyNeed::Recipient`]).
//!
//! Their rows live here so that `C_GetMechanismInfo` and the registry see every mechanism
//! in one place; their work is the hierarchy's, which the session runs for rows whose key
//! need is [`KeyNeed::Master`]. Key sizes are the master key's, 256 bits, in bytes.

use cryptoki_sys::*;

use super::registry::{build_plain, KeyNeed, MechEntry, MechInfo, Ops, Param, ParamShape};
use super::Mechanism;
use crate::error::{Error, Result};
use crate::vendor::{
    CKK_CV_MLKEM1024_P384, CKK_CV_MLKEM768_P256, CKK_CV_XWING, CKM_CV_EXPORT_KIT, CKM_CV_REWRAP_RECORD,
    CKM_CV_REWRAP_STORED, CKM_CV_ROTATE_MASTER, CKM_CV_SHARE_RECORD, CKM_CV_WRAP_RECORD,
};

const fn row(ty: CK_MECHANISM_TYPE, flags: CK_FLAGS, param: ParamShape) -> MechEntry {
    MechEntry {
        ty,
        info: MechInfo { min_key: 32, max_key: 32, flags },
        key: KeyNeed::Master,
        param,
        build: if matches!(param, ParamShape::Bytes) { build_rewrap } else { build_plain },
        ops: Ops::NONE,
    }
}

/// Registry rows.
pub const ENTRIES: &[MechEntry] = &[
    row(CKM_CV_WRAP_RECORD, CKF_WRAP | CKF_UNWRAP, ParamShape::None),
    row(CKM_CV_REWRAP_RECORD, CKF_ENCRYPT, ParamShape::Bytes),
    row(CKM_CV_ROTATE_MASTER, CKF_GENERATE, ParamShape::None),
    row(CKM_CV_REWRAP_STORED, CKF_GENERATE, ParamShape::None),
    row(crate::vendor::CKM_CV_QUORUM_SPLIT, CKF_GENERATE, ParamShape::None),
    MechEntry {
        ty: CKM_CV_EXPORT_KIT,
        info: MechInfo { min_key: 32, max_key: 32, flags: CKF_WRAP },
        key: KeyNeed::Secret(&[CKK_AES]),
        param: ParamShape::Bytes,
        build: build_export_kit,
        ops: Ops::NONE,
    },
    MechEntry {
        ty: CKM_CV_SHARE_RECORD,
        info: MechInfo { min_key: 0, max_key: 0, flags: CKF_WRAP | CKF_UNWRAP },
        key: KeyNeed::Recipient(&[CKK_CV_XWING, CKK_CV_MLKEM768_P256, CKK_CV_MLKEM1024_P384]),
        param: ParamShape::None,
        build: build_plain,
        ops: Ops::NONE,
    },
];

/// `CKM_CV_REWRAP_RECORD`'s parameter is the record's associated data.
fn build_rewrap(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    match p {
        Param::Bytes(ad) => Ok(Mechanism::CvRewrapRecord(ad)),
        Param::None => Ok(Mechanism::CvRewrapRecord(Vec::new())),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// Length of a recovery kit id (`recovery::format::KIT_ID_LEN`; `recovery/` sits above
/// this folder, so the number is restated rather than imported).
const KIT_ID_LEN: usize = 16;

/// `CKM_CV_EXPORT_KIT`'s parameter is the 16-byte kit id.
fn build_export_kit(_: CK_MECHANISM_TYPE, p: Param) -> Result<Mechanism> {
    match p {
        Param::Bytes(id) if id.len() == KIT_ID_LEN => Ok(Mechanism::CvExportKit(id)),
        _ => Err(Error::MechanismParamInvalid),
    }
}
