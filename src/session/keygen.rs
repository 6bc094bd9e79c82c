//! Key and key-pair generation through a session (spec §5.16): the mechanism's registry
//! row makes the key material, and the new objects are built under the attribute policy
//! with the origin attributes (`CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`, ...) the spec
//! prescribes. The vendor rotation and re-wrap mechanisms run in the hierarchy.

use cryptoki_sys::*;

use super::key::{secret_attrs, value_len};
use super::Ctx;
use crate::error::Result;
use crate::mechanism::{registry, Mechanism};
use crate::object::{Attr, Object, Origin, Template};

/// How many stored DEKs a `CKM_CV_REWRAP_STORED` call moves when the template does not
/// say (`CKA_VALUE_LEN`).
const DEFAULT_REWRAP_BATCH: usize = 500;

/// `C_GenerateKey`; the template's values move into the new key.
pub fn generate_key(ctx: &Ctx, m: &Mechanism, template: Template) -> Result<CK_OBJECT_HANDLE> {
    match m {
        Mechanism::CvRotateMaster => return super::records::rotate(ctx),
        Mechanism::CvQuorumSplit => return super::quorum::split(ctx, &template),
        Mechanism::CvRewrapStored => {
            let batch = value_len(&template)?.unwrap_or(DEFAULT_REWRAP_BATCH);
            return super::records::rewrap_stored(ctx, batch);
        }
        _ => {}
    }
    let generate = registry::row(m.ty())?.op(|o| o.generate)?;
    let (key_type, value) = generate(m, value_len(&template)?)?;
    let key = Object::made(template, Origin::Generated(m.ty()), secret_attrs(key_type, &value))?;
    ctx.add(key, "C_GenerateKey")
}

/// `C_GenerateKeyPair`: both objects or neither; the templates' values move into them.
pub fn generate_key_pair(
    ctx: &Ctx,
    m: &Mechanism,
    public_template: Template,
    private_template: Template,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    let generate = registry::row(m.ty())?.op(|o| o.generate_pair)?;
    let pair = generate(m, &public_template, &private_template)?;
    let origin = Origin::Generated(m.ty());
    let public = Object::made(public_template, origin, pair.public.into_iter().map(Attr::from))?;
    let private = Object::made(private_template, origin, pair.private.into_iter().map(Attr::from))?;
    ctx.check_may_hold(&public)?;
    ctx.check_may_hold(&private)?;
    let public = ctx.add(public, "C_GenerateKeyPair")?;
    match ctx.add(private, "C_GenerateKeyPair") {
        Ok(private) => Ok((public, private)),
        Err(e) => {
            if let Err(undo) = super::objects::destroy(ctx, public) {
                log::error!("C_GenerateKeyPair: could not remove the public half after a failure: {undo}");
            }
            Err(e)
        }
    }
}
