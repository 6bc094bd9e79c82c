//! Digests through a session (spec §5.12), `C_DigestKey` included: a secret key's value
//! is digested inside the token and never returned.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::output::{sized, Output};
use super::usage::DataOp;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{registry, KeyView, Mechanism};

/// `C_DigestInit`.
pub fn digest_init(ctx: &Ctx, m: &Mechanism) -> Result<()> {
    let op = registry::row(m.ty())?.op(|o| o.digest)?(m)?;
    if ctx.session.lock().ops.digest.is_some() {
        return Err(Error::OperationActive);
    }
    ctx.note_use(DataOp::Digest, None)?;
    let mut session = ctx.session.lock();
    if session.ops.digest.is_some() {
        return Err(Error::OperationActive);
    }
    session.ops.digest = Some(op);
    Ok(())
}

/// `C_Digest`.
pub fn digest(ctx: &Ctx, data: &[u8], capacity: Option<usize>) -> Result<Output> {
    let mut session = ctx.session.lock();
    let op = session.ops.digest.as_ref().ok_or(Error::OperationNotInitialized)?;
    if let Some(answer) = sized(op.output_len(), capacity) {
        return answer;
    }
    let mut op = session.ops.digest.take().ok_or(Error::OperationNotInitialized)?;
    op.update(data);
    Ok(Output::Data(Zeroizing::new(op.finish())))
}

/// `C_DigestUpdate`.
pub fn digest_update(ctx: &Ctx, data: &[u8]) -> Result<()> {
    let mut session = ctx.session.lock();
    session.ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?.update(data);
    Ok(())
}

/// `C_DigestKey`: digests a secret key's value without revealing it.
pub fn digest_key(ctx: &Ctx, key: CK_OBJECT_HANDLE) -> Result<()> {
    if ctx.session.lock().ops.digest.is_none() {
        return Err(Error::OperationNotInitialized);
    }
    let key = ctx.target_key(key)?;
    if key.class() != CKO_SECRET_KEY {
        return Err(Error::KeyIndigestible);
    }
    let value = key.secret()?;
    let mut session = ctx.session.lock();
    session.ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?.update(&value);
    Ok(())
}

/// `C_DigestFinal`.
pub fn digest_final(ctx: &Ctx, capacity: Option<usize>) -> Result<Output> {
    digest(ctx, &[], capacity)
}
