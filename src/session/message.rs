//! Message-based AEAD (PKCS#11 3.0 §5.12, §5.13 "Message-based encryption/decryption")
//! with `CKM_AES_GCM`: one key per operation, one IV, AAD and tag per message.
//!
//! The token can choose IVs (`CKG_GENERATE_COUNTER`, `CKG_GENERATE_RANDOM`,
//! `CKG_GENERATE`) after the caller's fixed prefix, so an application cannot reuse an IV
//! under a key by mistake; a counter that would wrap ends the operation's usefulness
//! with `CKR_MECHANISM_PARAM_INVALID` rather than repeat. A message may also arrive in
//! parts (`*MessageBegin`/`*MessageNext`); like multi-part GCM, parts are buffered and
//! the work is done on the last one, so decryption never releases unverified plaintext.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::crypto::{secret, Output};
use super::usage::DataOp;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::aes_gcm::{self, GcmKey};
use crate::mechanism::GcmParams;
use crate::object::Object;

/// How the IV of a message is chosen (`CK_GENERATOR_FUNCTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvGenerator {
    /// `CKG_NO_GENERATE`: the caller's IV as given.
    Caller,
    /// `CKG_GENERATE_COUNTER`: the caller's fixed prefix, then a per-operation counter.
    Counter,
    /// `CKG_GENERATE_RANDOM` (and `CKG_GENERATE`): the fixed prefix, then random bytes.
    Random,
}

/// `CK_GCM_MESSAGE_PARAMS`, decoded (the tag travels separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageParams {
    /// The caller's IV buffer: the whole IV, or its fixed prefix.
    pub iv: Vec<u8>,
    /// Leading bits of `iv` the token keeps when it generates the rest.
    pub iv_fixed_bits: usize,
    /// Who chooses the IV.
    pub generator: IvGenerator,
    /// Tag length in bytes.
    pub tag_len: usize,
}

/// An encrypted message: what goes back to the caller's buffers.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext (or just its length, for a query).
    pub output: Output,
    /// The tag, for `pTag`.
    pub tag: Vec<u8>,
    /// The IV used, for `pIv` (changed only when the token generated it).
    pub iv: Vec<u8>,
}

/// A message arriving in parts.
struct Pending {
    params: GcmParams,
    data: Zeroizing<Vec<u8>>,
}

/// One message-based operation: its key, its IV counter and any message in progress.
pub struct MessageOp {
    key: Arc<Object>,
    counter: u64,
    pending: Option<Pending>,
}

impl MessageOp {
    /// The key prepared for `tag_len`-byte tags: made once per key object, kept with it.
    fn gcm(&self, tag_len: usize) -> Result<Arc<GcmKey>> {
        self.key.prepared().get_or_make(GcmKey::cache_tag(tag_len), || GcmKey::new(&secret(&self.key)?, tag_len))
    }

    /// The IV for the next message under `p`.
    fn next_iv(&mut self, p: &MessageParams) -> Result<Vec<u8>> {
        if p.iv.len() != aes_gcm::IV_LEN {
            return Err(Error::MechanismParamInvalid);
        }
        if p.generator == IvGenerator::Caller {
            return Ok(p.iv.clone());
        }
        if p.iv_fixed_bits % 8 != 0 {
            return Err(Error::MechanismParamInvalid);
        }
        let fixed = p.iv_fixed_bits / 8;
        // At least 32 generated bits, so neither a counter nor random bytes run short.
        let free = aes_gcm::IV_LEN.checked_sub(fixed).filter(|f| *f >= 4).ok_or(Error::MechanismParamInvalid)?;
        let mut iv = p.iv[..fixed].to_vec();
        match p.generator {
            IvGenerator::Counter => {
                let limit = if free >= 8 { u64::MAX } else { (1u64 << (8 * free)) - 1 };
                if self.counter >= limit {
                    return Err(Error::MechanismParamInvalid);
                }
                self.counter += 1;
                // The counter, big-endian, right-aligned in the free bytes.
                let mut tail = vec![0u8; free];
                let n = free.min(8);
                tail[free - n..].copy_from_slice(&self.counter.to_be_bytes()[8 - n..]);
                iv.extend_from_slice(&tail);
            }
            IvGenerator::Random => {
                let mut tail = vec![0u8; free];
                crate::rng::fill(&mut tail)?;
                iv.extend_from_slice(&tail);
            }
            IvGenerator::Caller => {}
        }
        Ok(iv)
    }
}

fn slot(ops: &mut super::Ops, encrypt: bool) -> &mut Option<MessageOp> {
    if encrypt {
        &mut ops.message_encrypt
    } else {
        &mut ops.message_decrypt
    }
}

fn init(handle: CK_SESSION_HANDLE, mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE, encrypt: bool) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    if mechanism != CKM_AES_GCM {
        return Err(Error::MechanismInvalid);
    }
    if slot(&mut ctx.session.lock().ops, encrypt).is_some() {
        return Err(Error::OperationActive);
    }
    let usage = if encrypt { CKA_ENCRYPT } else { CKA_DECRYPT };
    let handle_of_key = key;
    let key =
        ctx.key_for(key, mechanism, CKO_SECRET_KEY, usage, Error::KeyHandleInvalid, Error::KeyTypeInconsistent)?;
    let value = secret(&key)?;
    if !matches!(value.len(), 16 | 24 | 32) {
        return Err(Error::KeySizeRange);
    }
    ctx.note_use(if encrypt { DataOp::MessageEncrypt } else { DataOp::MessageDecrypt }, Some(handle_of_key))?;
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, encrypt);
    if slot.is_some() {
        return Err(Error::OperationActive);
    }
    *slot = Some(MessageOp { key, counter: 0, pending: None });
    Ok(())
}

fn with_op<T>(handle: CK_SESSION_HANDLE, encrypt: bool, f: impl FnOnce(&mut MessageOp) -> Result<T>) -> Result<T> {
    let ctx = Ctx::of(handle)?;
    let mut session = ctx.session.lock();
    let op = slot(&mut session.ops, encrypt).as_mut().ok_or(Error::OperationNotInitialized)?;
    f(op)
}

fn gcm(iv: Vec<u8>, aad: &[u8], tag_len: usize) -> Result<GcmParams> {
    let params = GcmParams { iv, aad: aad.to_vec(), tag_len };
    aes_gcm::check_params(&params)?;
    Ok(params)
}

/// `C_MessageEncryptInit`: the mechanism carries no parameter; each message has its own.
pub fn encrypt_init(handle: CK_SESSION_HANDLE, mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE) -> Result<()> {
    init(handle, mechanism, key, true)
}

/// `C_MessageDecryptInit`.
pub fn decrypt_init(handle: CK_SESSION_HANDLE, mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE) -> Result<()> {
    init(handle, mechanism, key, false)
}

/// `C_EncryptMessage`: one whole message. A length query chooses no IV.
pub fn encrypt(
    handle: CK_SESSION_HANDLE,
    p: &MessageParams,
    aad: &[u8],
    plaintext: &[u8],
    capacity: Option<usize>,
) -> Result<Sealed> {
    with_op(handle, true, |op| {
        if op.pending.is_some() {
            return Err(Error::OperationActive);
        }
        match capacity {
            None => return Ok(Sealed { output: Output::Length(plaintext.len()), tag: Vec::new(), iv: p.iv.clone() }),
            Some(c) if c < plaintext.len() => return Err(Error::BufferTooSmall(plaintext.len())),
            Some(_) => {}
        }
        let params = gcm(op.next_iv(p)?, aad, p.tag_len)?;
        seal(op, params, plaintext)
    })
}

fn seal(op: &MessageOp, params: GcmParams, plaintext: &[u8]) -> Result<Sealed> {
    let mut out = Vec::with_capacity(plaintext.len() + params.tag_len);
    op.gcm(params.tag_len)?.seal_into(&params, plaintext, &mut out)?;
    let tag = out.split_off(plaintext.len());
    Ok(Sealed { output: Output::Data(Zeroizing::new(out)), tag, iv: params.iv })
}

/// `C_DecryptMessage`: one whole message; `tag` comes from the caller's parameter.
pub fn decrypt(
    handle: CK_SESSION_HANDLE,
    p: &MessageParams,
    tag: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    capacity: Option<usize>,
) -> Result<Output> {
    with_op(handle, false, |op| {
        if op.pending.is_some() {
            return Err(Error::OperationActive);
        }
        if p.generator != IvGenerator::Caller {
            return Err(Error::MechanismParamInvalid);
        }
        match capacity {
            None => return Ok(Output::Length(ciphertext.len())),
            Some(c) if c < ciphertext.len() => return Err(Error::BufferTooSmall(ciphertext.len())),
            Some(_) => {}
        }
        open(op, gcm(p.iv.clone(), aad, p.tag_len)?, ciphertext, tag)
    })
}

/// Opens one message. A tag that does not verify is the 3.0 API's own
/// `CKR_AEAD_DECRYPT_FAILED` (single-part `C_Decrypt` keeps `CKR_ENCRYPTED_DATA_INVALID`).
fn open(op: &MessageOp, params: GcmParams, ciphertext: &[u8], tag: &[u8]) -> Result<Output> {
    if tag.len() != params.tag_len {
        return Err(Error::MechanismParamInvalid);
    }
    let mut sealed = ciphertext.to_vec();
    sealed.extend_from_slice(tag);
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    match op.gcm(params.tag_len)?.open_into(&params, &sealed, &mut plaintext) {
        Ok(()) => Ok(Output::Data(plaintext)),
        Err(Error::EncryptedDataInvalid) => Err(Error::AeadDecryptFailed),
        Err(e) => Err(e),
    }
}

/// `C_EncryptMessageBegin`/`C_DecryptMessageBegin`: starts a message in parts.
pub fn begin(handle: CK_SESSION_HANDLE, encrypt: bool, p: &MessageParams, aad: &[u8]) -> Result<()> {
    with_op(handle, encrypt, |op| {
        if op.pending.is_some() {
            return Err(Error::OperationActive);
        }
        if !encrypt && p.generator != IvGenerator::Caller {
            return Err(Error::MechanismParamInvalid);
        }
        let iv = if encrypt { op.next_iv(p)? } else { p.iv.clone() };
        op.pending = Some(Pending { params: gcm(iv, aad, p.tag_len)?, data: Zeroizing::default() });
        Ok(())
    })
}

/// What the last part of an encrypted message returns.
pub type Part = (Output, Option<(Vec<u8>, Vec<u8>)>);

/// `C_EncryptMessageNext`: buffers `part`; on the last one returns the whole ciphertext
/// and `(tag, iv)` for the caller's parameter.
pub fn encrypt_next(handle: CK_SESSION_HANDLE, part: &[u8], last: bool, capacity: Option<usize>) -> Result<Part> {
    with_op(handle, true, |op| {
        let pending = op.pending.as_mut().ok_or(Error::OperationNotInitialized)?;
        let needed = if last { pending.data.len() + part.len() } else { 0 };
        match capacity {
            None => return Ok((Output::Length(needed), None)),
            Some(c) if c < needed => return Err(Error::BufferTooSmall(needed)),
            Some(_) => {}
        }
        pending.data.extend_from_slice(part);
        if !last {
            return Ok((Output::Data(Zeroizing::default()), None));
        }
        let Pending { params, data } = op.pending.take().ok_or(Error::OperationNotInitialized)?;
        let sealed = seal(op, params, &data)?;
        Ok((sealed.output, Some((sealed.tag, sealed.iv))))
    })
}

/// `C_DecryptMessageNext`: buffers `part`; on the last one checks `tag` and returns the
/// whole plaintext.
pub fn decrypt_next(
    handle: CK_SESSION_HANDLE,
    tag: &[u8],
    part: &[u8],
    last: bool,
    capacity: Option<usize>,
) -> Result<Output> {
    with_op(handle, false, |op| {
        let pending = op.pending.as_mut().ok_or(Error::OperationNotInitialized)?;
        let needed = if last { pending.data.len() + part.len() } else { 0 };
        match capacity {
            None => return Ok(Output::Length(needed)),
            Some(c) if c < needed => return Err(Error::BufferTooSmall(needed)),
            Some(_) => {}
        }
        pending.data.extend_from_slice(part);
        if !last {
            return Ok(Output::Data(Zeroizing::default()));
        }
        let Pending { params, data } = op.pending.take().ok_or(Error::OperationNotInitialized)?;
        open(op, params, &data, tag)
    })
}

/// `C_MessageEncryptFinal`/`C_MessageDecryptFinal`: ends the operation.
pub fn finish(handle: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
    let ctx = Ctx::of(handle)?;
    let ended = slot(&mut ctx.session.lock().ops, encrypt).take();
    ended.map(drop).ok_or(Error::OperationNotInitialized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> MessageOp {
        MessageOp { key: Arc::new(Object::reference(Vec::new())), counter: 0, pending: None }
    }

    fn params(generator: IvGenerator, fixed_bits: usize) -> MessageParams {
        MessageParams { iv: vec![0xaa; 12], iv_fixed_bits: fixed_bits, generator, tag_len: 16 }
    }

    #[test]
    fn a_counter_iv_keeps_the_fixed_prefix_and_counts_up() {
        let mut op = op();
        let p = params(IvGenerator::Counter, 32);
        let first = op.next_iv(&p).expect("iv");
        let second = op.next_iv(&p).expect("iv");
        assert_eq!(&first[..4], &[0xaa; 4]);
        assert_eq!(&first[4..], &1u64.to_be_bytes());
        assert_eq!(&second[4..], &2u64.to_be_bytes());
    }

    #[test]
    fn a_short_counter_refuses_to_wrap() {
        let mut op = op();
        let p = params(IvGenerator::Counter, 64);
        op.counter = u64::from(u32::MAX) - 1;
        let last = op.next_iv(&p).expect("last value");
        assert_eq!(&last[8..], &u32::MAX.to_be_bytes());
        assert_eq!(op.next_iv(&p).unwrap_err(), Error::MechanismParamInvalid);
    }

    #[test]
    fn random_ivs_differ_and_keep_the_prefix() {
        let mut op = op();
        let p = params(IvGenerator::Random, 16);
        let (a, b) = (op.next_iv(&p).expect("a"), op.next_iv(&p).expect("b"));
        assert_ne!(a, b);
        assert_eq!(&a[..2], &[0xaa; 2]);
    }

    #[test]
    fn unusable_generator_settings_are_refused() {
        let mut op = op();
        assert!(op.next_iv(&params(IvGenerator::Counter, 12)).is_err(), "fixed bits not whole bytes");
        assert!(op.next_iv(&params(IvGenerator::Counter, 72)).is_err(), "fewer than 32 free bits");
        let short = MessageParams { iv: vec![0; 8], ..params(IvGenerator::Caller, 0) };
        assert!(op.next_iv(&short).is_err(), "IV not 96 bits");
    }
}
