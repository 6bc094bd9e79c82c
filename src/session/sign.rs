//! Sign and verify (MACs included) through a session (spec §5.13–5.14): the mechanism's
//! registry row starts the operation with the key it names.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::key::KeyRole;
use super::output::{sized, Output};
use super::usage::DataOp;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{registry, Mechanism};

/// `C_SignInit`.
pub fn sign_init(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    if ctx.session.lock().ops.sign.is_some() {
        return Err(Error::OperationActive);
    }
    let row = registry::row(m.ty())?;
    let start = row.op(|o| o.sign)?;
    let op = start(m, &*ctx.operation_key(key, row, KeyRole::Sign)?)?;
    ctx.note_use(DataOp::Sign, Some(key))?;
    let mut session = ctx.session.lock();
    if session.ops.sign.is_some() {
        return Err(Error::OperationActive);
    }
    session.ops.sign = Some(op);
    Ok(())
}

/// `C_Sign`.
pub fn sign(ctx: &Ctx, data: &[u8], capacity: Option<usize>) -> Result<Output> {
    let mut session = ctx.session.lock();
    let op = session.ops.sign.as_ref().ok_or(Error::OperationNotInitialized)?;
    if let Some(answer) = sized(op.signature_len(), capacity) {
        return answer;
    }
    let mut op = session.ops.sign.take().ok_or(Error::OperationNotInitialized)?;
    op.update(data)?;
    Ok(Output::Data(Zeroizing::new(op.finish()?)))
}

/// `C_SignUpdate`.
pub fn sign_update(ctx: &Ctx, data: &[u8]) -> Result<()> {
    let mut session = ctx.session.lock();
    let op = session.ops.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
    let result = op.update(data);
    if result.is_err() {
        session.ops.sign = None;
    }
    result
}

/// `C_SignFinal`.
pub fn sign_final(ctx: &Ctx, capacity: Option<usize>) -> Result<Output> {
    sign(ctx, &[], capacity)
}

/// `C_VerifyInit`.
pub fn verify_init(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    if ctx.session.lock().ops.verify.is_some() {
        return Err(Error::OperationActive);
    }
    let row = registry::row(m.ty())?;
    let start = row.op(|o| o.verify)?;
    let op = start(m, &*ctx.operation_key(key, row, KeyRole::Verify)?)?;
    ctx.note_use(DataOp::Verify, Some(key))?;
    let mut session = ctx.session.lock();
    if session.ops.verify.is_some() {
        return Err(Error::OperationActive);
    }
    session.ops.verify = Some(op);
    Ok(())
}

/// `C_Verify`: always ends the operation.
pub fn verify(ctx: &Ctx, data: &[u8], signature: &[u8]) -> Result<()> {
    let mut op = ctx.session.lock().ops.verify.take().ok_or(Error::OperationNotInitialized)?;
    op.update(data)?;
    op.finish(signature)
}

/// `C_VerifyUpdate`.
pub fn verify_update(ctx: &Ctx, data: &[u8]) -> Result<()> {
    let mut session = ctx.session.lock();
    let op = session.ops.verify.as_mut().ok_or(Error::OperationNotInitialized)?;
    let result = op.update(data);
    if result.is_err() {
        session.ops.verify = None;
    }
    result
}

/// `C_VerifyFinal`.
pub fn verify_final(ctx: &Ctx, signature: &[u8]) -> Result<()> {
    verify(ctx, &[], signature)
}
