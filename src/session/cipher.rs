//! Encrypt and decrypt through a session (spec §5.8–5.9).
//!
//! Each direction has one slot in the session: `*Init` fills it, `*Final` or the one-shot
//! call empties it. Any outcome of a one-shot or final call other than a length answer
//! ends its operation, and an error ends an update's. The mechanism's registry row
//! supplies the cipher; the vendor re-wrap mechanism runs in the hierarchy.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::key::KeyRole;
use super::output::{sized, Output};
use super::usage::DataOp;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{registry, Cipher, Mechanism};

/// Which cipher slot a call addresses.
#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

fn slot(ops: &mut super::Ops, d: Direction) -> &mut Option<Box<dyn Cipher>> {
    match d {
        Direction::Encrypt => &mut ops.encrypt,
        Direction::Decrypt => &mut ops.decrypt,
    }
}

/// Puts a started operation in its slot, unless another thread filled it meanwhile.
fn install_cipher(ctx: &Ctx, d: Direction, op: Box<dyn Cipher>) -> Result<()> {
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, d);
    if slot.is_some() {
        return Err(Error::OperationActive);
    }
    *slot = Some(op);
    Ok(())
}

fn cipher_init(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE, d: Direction) -> Result<()> {
    if slot(&mut ctx.session.lock().ops, d).is_some() {
        return Err(Error::OperationActive);
    }
    if let Mechanism::CvRewrapRecord(ad) = m {
        // Key management, audited as such when the record is re-wrapped.
        if !matches!(d, Direction::Encrypt) {
            return Err(Error::MechanismInvalid);
        }
        return install_cipher(ctx, d, super::records::rewrap_op(ctx, key, ad)?);
    }
    let op = cipher_op(ctx, m, key, d)?;
    let counted = match d {
        Direction::Encrypt => DataOp::Encrypt,
        Direction::Decrypt => DataOp::Decrypt,
    };
    ctx.note_use(counted, Some(key))?;
    install_cipher(ctx, d, op)
}

/// The cipher for `m` with `key`, its usage checked.
fn cipher_op(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE, d: Direction) -> Result<Box<dyn Cipher>> {
    let row = registry::row(m.ty())?;
    let (start, role) = match d {
        Direction::Encrypt => (row.op(|o| o.encrypt)?, KeyRole::Encrypt),
        Direction::Decrypt => (row.op(|o| o.decrypt)?, KeyRole::Decrypt),
    };
    let key = ctx.operation_key(key, row, role)?;
    start(m, &*key)
}

/// A one-shot call writing into the caller's buffer (`None`: a length query).
fn cipher_once_into(ctx: &Ctx, input: &[u8], out: Option<&mut [u8]>, d: Direction) -> Result<Output> {
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, d);
    let op = slot.as_ref().ok_or(Error::OperationNotInitialized)?;
    if let Err(e) = op.check_final_len(input.len()) {
        // A length the mechanism can never finish on ends the operation even on a
        // length query: no buffer size would make the call succeed.
        *slot = None;
        return Err(e);
    }
    let needed = op.update_len(input.len()) + op.final_len(input.len());
    let out = match out {
        None => return Ok(Output::Length(needed)),
        Some(buf) if buf.len() < needed => return Err(Error::BufferTooSmall(needed)),
        Some(buf) => buf,
    };
    let mut op = slot.take().ok_or(Error::OperationNotInitialized)?;
    drop(session);
    Ok(Output::Written(op.once_into(input, out)?))
}

fn cipher_update(ctx: &Ctx, input: &[u8], capacity: Option<usize>, d: Direction) -> Result<Output> {
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, d);
    let op = slot.as_ref().ok_or(Error::OperationNotInitialized)?;
    if let Some(answer) = sized(op.update_len(input.len()), capacity) {
        return answer;
    }
    let mut op = slot.take().ok_or(Error::OperationNotInitialized)?;
    let mut out = Zeroizing::new(Vec::new());
    op.update(input, &mut out)?;
    *slot = Some(op);
    Ok(Output::Data(out))
}

fn cipher_final(ctx: &Ctx, capacity: Option<usize>, d: Direction) -> Result<Output> {
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, d);
    let op = slot.as_ref().ok_or(Error::OperationNotInitialized)?;
    if let Err(e) = op.check_final_len(0) {
        // As in a one-shot call: no buffer size would make this final succeed.
        *slot = None;
        return Err(e);
    }
    if let Some(answer) = sized(op.final_len(0), capacity) {
        return answer;
    }
    let mut op = slot.take().ok_or(Error::OperationNotInitialized)?;
    let mut out = Zeroizing::new(Vec::new());
    op.finish(&mut out)?;
    Ok(Output::Data(out))
}

/// `C_EncryptInit`.
pub fn encrypt_init(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    cipher_init(ctx, m, key, Direction::Encrypt)
}

/// `C_Encrypt`, writing straight into the caller's buffer.
pub fn encrypt_into(ctx: &Ctx, input: &[u8], out: Option<&mut [u8]>) -> Result<Output> {
    cipher_once_into(ctx, input, out, Direction::Encrypt)
}

/// `C_Decrypt`, writing straight into the caller's buffer.
pub fn decrypt_into(ctx: &Ctx, input: &[u8], out: Option<&mut [u8]>) -> Result<Output> {
    cipher_once_into(ctx, input, out, Direction::Decrypt)
}

/// `C_EncryptUpdate`.
pub fn encrypt_update(ctx: &Ctx, input: &[u8], capacity: Option<usize>) -> Result<Output> {
    cipher_update(ctx, input, capacity, Direction::Encrypt)
}

/// `C_EncryptFinal`.
pub fn encrypt_final(ctx: &Ctx, capacity: Option<usize>) -> Result<Output> {
    cipher_final(ctx, capacity, Direction::Encrypt)
}

/// `C_DecryptInit`.
pub fn decrypt_init(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    cipher_init(ctx, m, key, Direction::Decrypt)
}

/// `C_DecryptUpdate`.
pub fn decrypt_update(ctx: &Ctx, input: &[u8], capacity: Option<usize>) -> Result<Output> {
    cipher_update(ctx, input, capacity, Direction::Decrypt)
}

/// `C_DecryptFinal`.
pub fn decrypt_final(ctx: &Ctx, capacity: Option<usize>) -> Result<Output> {
    cipher_final(ctx, capacity, Direction::Decrypt)
}
