//! Encrypt, decrypt, digest, sign and verify through a session (spec §5.8–5.13).
//!
//! Each kind has one slot in the session: `*Init` fills it, `*Final` or the one-shot call
//! empties it. Every call that produces output follows the length-query rule (§5.2): a
//! query (no buffer) or a short buffer answers the size and leaves the operation as it
//! was; any other outcome, success or error, ends a one-shot or final call's operation,
//! and an error ends an update's.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::usage::DataOp;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{self, aes_gcm, aes_kw, ecdsa, hmac, Cipher, HashAlg, Mechanism};
use crate::object::Object;

/// What an output-producing call hands back to the C ABI.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The caller asked for the length only (or its buffer was absent).
    Length(usize),
    /// The output; zeroized on drop because it may be plaintext.
    Data(Zeroizing<Vec<u8>>),
    /// This many bytes were written straight into the caller's buffer.
    Written(usize),
}

/// Checks a caller's capacity against `needed`: `Some(answer)` when the call stops here.
fn sized(needed: usize, capacity: Option<usize>) -> Option<Result<Output>> {
    match capacity {
        None => Some(Ok(Output::Length(needed))),
        Some(c) if c < needed => Some(Err(Error::BufferTooSmall(needed))),
        Some(_) => None,
    }
}

impl Ctx {
    /// Resolves the key an operation runs with: visible, of the class and type the
    /// mechanism needs, allowing `usage` and the mechanism. `invalid` is the error for a
    /// bad handle (key, wrapping or unwrapping key).
    pub(super) fn key_for(
        &self,
        handle: CK_OBJECT_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        class: CK_OBJECT_CLASS,
        usage: CK_ATTRIBUTE_TYPE,
        invalid: Error,
        inconsistent: Error,
    ) -> Result<Arc<Object>> {
        let key = match self.resolve(handle) {
            Ok(r) => r.object(),
            Err(Error::ObjectHandleInvalid) => return Err(invalid),
            Err(e) => return Err(e),
        };
        let needs = mechanism::key_needs(mechanism, class).ok_or(Error::MechanismInvalid)?;
        let type_ok = key.ulong(CKA_KEY_TYPE).is_some_and(|t| needs.key_types.contains(&t));
        if key.class() != needs.class || !type_ok {
            return Err(inconsistent);
        }
        if !key.flag(usage) {
            return Err(Error::KeyFunctionNotPermitted);
        }
        if !key.allows(mechanism) {
            return Err(Error::MechanismInvalid);
        }
        crate::object::usage::check_cipher_use(&key, mechanism, usage)?;
        Ok(key)
    }

    pub(super) fn key(
        &self,
        handle: CK_OBJECT_HANDLE,
        m: &Mechanism,
        class: CK_OBJECT_CLASS,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<Arc<Object>> {
        self.key_for(handle, m.ty(), class, usage, Error::KeyHandleInvalid, Error::KeyTypeInconsistent)
    }
}

/// The secret bytes of a key the session may use.
pub(super) fn secret(key: &Object) -> Result<Zeroizing<Vec<u8>>> {
    key.secret_value().ok_or(Error::UserNotLoggedIn)
}

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

fn cipher_init(handle: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE, d: Direction) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if slot(&mut ctx.session.lock().ops, d).is_some() {
        return Err(Error::OperationActive);
    }
    if let Mechanism::CvRewrapRecord(ad) = m {
        // Key management, audited as such when the record is re-wrapped.
        if !matches!(d, Direction::Encrypt) {
            return Err(Error::MechanismInvalid);
        }
        return install_cipher(&ctx, d, super::records::rewrap_op(&ctx, key, ad)?);
    }
    let op = cipher_op(&ctx, m, key, d)?;
    let counted = match d {
        Direction::Encrypt => DataOp::Encrypt,
        Direction::Decrypt => DataOp::Decrypt,
    };
    ctx.note_use(counted, Some(key))?;
    install_cipher(&ctx, d, op)
}

/// The cipher for `m` with `key`, its usage checked.
fn cipher_op(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE, d: Direction) -> Result<Box<dyn Cipher>> {
    // Issue 5 (mechanism breadth): AES modes and RSA set up in `breadth.rs`.
    if let Some(op) = super::breadth::cipher_op(ctx, m, key, matches!(d, Direction::Encrypt))? {
        return Ok(op);
    }
    let usage = match d {
        Direction::Encrypt => CKA_ENCRYPT,
        Direction::Decrypt => CKA_DECRYPT,
    };
    let key = ctx.key(key, m, CKO_SECRET_KEY, usage)?;
    if let Mechanism::AesGcm(p) = m {
        // The key schedule is made once per key object and kept with it.
        let tag = aes_gcm::GcmKey::cache_tag(p.tag_len);
        let prepared = key.prepared().get_or_make(tag, || aes_gcm::GcmKey::new(&secret(&key)?, p.tag_len))?;
        return match d {
            Direction::Encrypt => aes_gcm::encryptor(prepared, p),
            Direction::Decrypt => aes_gcm::decryptor(prepared, p),
        };
    }
    let value = secret(&key)?;
    Ok(match (m, d) {
        (Mechanism::AesKeyWrap, Direction::Encrypt) => aes_kw::encryptor(&value, false)?,
        (Mechanism::AesKeyWrap, Direction::Decrypt) => aes_kw::decryptor(&value, false)?,
        (Mechanism::AesKeyWrapPad, Direction::Encrypt) => aes_kw::encryptor(&value, true)?,
        (Mechanism::AesKeyWrapPad, Direction::Decrypt) => aes_kw::decryptor(&value, true)?,
        _ => return Err(Error::MechanismInvalid),
    })
}

/// A one-shot call writing into the caller's buffer (`None`: a length query).
fn cipher_once_into(handle: CK_SESSION_HANDLE, input: &[u8], out: Option<&mut [u8]>, d: Direction) -> Result<Output> {
    let ctx = Ctx::of(handle)?;
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, d);
    let op = slot.as_ref().ok_or(Error::OperationNotInitialized)?;
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

fn cipher_update(handle: CK_SESSION_HANDLE, input: &[u8], capacity: Option<usize>, d: Direction) -> Result<Output> {
    let ctx = Ctx::of(handle)?;
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

fn cipher_final(handle: CK_SESSION_HANDLE, capacity: Option<usize>, d: Direction) -> Result<Output> {
    let ctx = Ctx::of(handle)?;
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, d);
    let op = slot.as_ref().ok_or(Error::OperationNotInitialized)?;
    if let Some(answer) = sized(op.final_len(0), capacity) {
        return answer;
    }
    let mut op = slot.take().ok_or(Error::OperationNotInitialized)?;
    let mut out = Zeroizing::new(Vec::new());
    op.finish(&mut out)?;
    Ok(Output::Data(out))
}

/// `C_EncryptInit`.
pub fn encrypt_init(handle: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    cipher_init(handle, m, key, Direction::Encrypt)
}

/// `C_Encrypt`, writing straight into the caller's buffer.
pub fn encrypt_into(handle: CK_SESSION_HANDLE, input: &[u8], out: Option<&mut [u8]>) -> Result<Output> {
    cipher_once_into(handle, input, out, Direction::Encrypt)
}

/// `C_Decrypt`, writing straight into the caller's buffer.
pub fn decrypt_into(handle: CK_SESSION_HANDLE, input: &[u8], out: Option<&mut [u8]>) -> Result<Output> {
    cipher_once_into(handle, input, out, Direction::Decrypt)
}

/// `C_EncryptUpdate`.
pub fn encrypt_update(handle: CK_SESSION_HANDLE, input: &[u8], capacity: Option<usize>) -> Result<Output> {
    cipher_update(handle, input, capacity, Direction::Encrypt)
}

/// `C_EncryptFinal`.
pub fn encrypt_final(handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
    cipher_final(handle, capacity, Direction::Encrypt)
}

/// `C_DecryptInit`.
pub fn decrypt_init(handle: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    cipher_init(handle, m, key, Direction::Decrypt)
}

/// `C_DecryptUpdate`.
pub fn decrypt_update(handle: CK_SESSION_HANDLE, input: &[u8], capacity: Option<usize>) -> Result<Output> {
    cipher_update(handle, input, capacity, Direction::Decrypt)
}

/// `C_DecryptFinal`.
pub fn decrypt_final(handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
    cipher_final(handle, capacity, Direction::Decrypt)
}

/// `C_DigestInit`.
pub fn digest_init(handle: CK_SESSION_HANDLE, m: &Mechanism) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let op = match m {
        Mechanism::Sha256 => mechanism::sha2::sha256(),
        // Issue 5 (mechanism breadth).
        other => super::breadth::digest_op(other).ok_or(Error::MechanismInvalid)?,
    };
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
pub fn digest(handle: CK_SESSION_HANDLE, data: &[u8], capacity: Option<usize>) -> Result<Output> {
    let ctx = Ctx::of(handle)?;
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
pub fn digest_update(handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let mut session = ctx.session.lock();
    session.ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?.update(data);
    Ok(())
}

/// `C_DigestKey`: digests a secret key's value without revealing it.
pub fn digest_key(handle: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if ctx.session.lock().ops.digest.is_none() {
        return Err(Error::OperationNotInitialized);
    }
    let key = match ctx.resolve(key) {
        Ok(r) => r.object(),
        Err(Error::ObjectHandleInvalid) => return Err(Error::KeyHandleInvalid),
        Err(e) => return Err(e),
    };
    if key.class() != CKO_SECRET_KEY {
        return Err(Error::KeyIndigestible);
    }
    let value = secret(&key)?;
    let mut session = ctx.session.lock();
    session.ops.digest.as_mut().ok_or(Error::OperationNotInitialized)?.update(&value);
    Ok(())
}

/// `C_DigestFinal`.
pub fn digest_final(handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
    digest(handle, &[], capacity)
}

/// `C_SignInit`.
pub fn sign_init(handle: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if ctx.session.lock().ops.sign.is_some() {
        return Err(Error::OperationActive);
    }
    let op = match m {
        Mechanism::Sha256Hmac => {
            hmac::signer(HashAlg::Sha256, &secret(&*ctx.key(key, m, CKO_SECRET_KEY, CKA_SIGN)?)?, None)?
        }
        Mechanism::Ecdsa | Mechanism::EcdsaSha256 => {
            let key = ctx.key(key, m, CKO_PRIVATE_KEY, CKA_SIGN)?;
            let curve = super::keys::ec_curve(&key)?;
            ecdsa::signer(curve, &secret(&key)?, (*m == Mechanism::EcdsaSha256).then_some(HashAlg::Sha256))?
        }
        // Issue 5 (mechanism breadth).
        other => super::breadth::sign_op(&ctx, other, key)?.ok_or(Error::MechanismInvalid)?,
    };
    ctx.note_use(DataOp::Sign, Some(key))?;
    let mut session = ctx.session.lock();
    if session.ops.sign.is_some() {
        return Err(Error::OperationActive);
    }
    session.ops.sign = Some(op);
    Ok(())
}

/// `C_Sign`.
pub fn sign(handle: CK_SESSION_HANDLE, data: &[u8], capacity: Option<usize>) -> Result<Output> {
    let ctx = Ctx::of(handle)?;
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
pub fn sign_update(handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let mut session = ctx.session.lock();
    let op = session.ops.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
    let result = op.update(data);
    if result.is_err() {
        session.ops.sign = None;
    }
    result
}

/// `C_SignFinal`.
pub fn sign_final(handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
    sign(handle, &[], capacity)
}

/// `C_VerifyInit`.
pub fn verify_init(handle: CK_SESSION_HANDLE, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if ctx.session.lock().ops.verify.is_some() {
        return Err(Error::OperationActive);
    }
    let op = match m {
        Mechanism::Sha256Hmac => {
            hmac::verifier(HashAlg::Sha256, &secret(&*ctx.key(key, m, CKO_SECRET_KEY, CKA_VERIFY)?)?, None)?
        }
        Mechanism::Ecdsa | Mechanism::EcdsaSha256 => {
            let key = ctx.key(key, m, CKO_PUBLIC_KEY, CKA_VERIFY)?;
            let curve = super::keys::ec_curve(&key)?;
            let hash = (*m == Mechanism::EcdsaSha256).then_some(HashAlg::Sha256);
            ecdsa::verifier(curve, &super::keys::ec_point(&key, curve)?, hash)?
        }
        // Issue 5 (mechanism breadth).
        other => super::breadth::verify_op(&ctx, other, key)?.ok_or(Error::MechanismInvalid)?,
    };
    ctx.note_use(DataOp::Verify, Some(key))?;
    let mut session = ctx.session.lock();
    if session.ops.verify.is_some() {
        return Err(Error::OperationActive);
    }
    session.ops.verify = Some(op);
    Ok(())
}

/// `C_Verify`: always ends the operation.
pub fn verify(handle: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let mut op = ctx.session.lock().ops.verify.take().ok_or(Error::OperationNotInitialized)?;
    op.update(data)?;
    op.finish(signature)
}

/// `C_VerifyUpdate`.
pub fn verify_update(handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let mut session = ctx.session.lock();
    let op = session.ops.verify.as_mut().ok_or(Error::OperationNotInitialized)?;
    let result = op.update(data);
    if result.is_err() {
        session.ops.verify = None;
    }
    result
}

/// `C_VerifyFinal`.
pub fn verify_final(handle: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
    verify(handle, &[], signature)
}
