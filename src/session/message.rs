//! Message-based AEAD (PKCS#11 3.0 §5.12, §5.13 "Message-based encryption/decryption")
//! with `CKM_AES_GCM`: one key per operation, one IV, AAD and tag per message.
//!
//! The token can choose IVs (`CKG_GENERATE_COUNTER`, `CKG_GENERATE_RANDOM`,
//! `CKG_GENERATE`), so an application cannot reuse an IV under a key by mistake. The
//! token never issues the same IV twice under one key (SP 800-38D §8):
//!
//! - A counter IV is the caller's fixed prefix, then a counter right-aligned in the free
//!   bytes. The counter belongs to the KEY, not to an operation, session, process or
//!   object handle: it is kept in the store under a fingerprint of the key value (so a
//!   `C_CopyObject` or a second import of the same bytes continues it, and two processes
//!   never share a value). A process reserves [`RESERVATION`] values in one committed
//!   transaction before it hands out any of them and keeps the rest in
//!   [`IvCounters`], shared by all its sessions; a crash only skips values.
//! - The counter space is 1..=2^32-1 per key whatever the prefix length. Two counter IVs
//!   with different fixed lengths could otherwise collide (a longer prefix's extra bytes
//!   reading as the high bytes of another length's counter); with every value below 2^32
//!   and at least 32 free bits those high bytes are always zero, so distinct values give
//!   distinct IVs. 2^32 is also SP 800-38D's bound on invocations of one key. When the
//!   space is used up the token answers `CKR_MECHANISM_PARAM_INVALID`, never wraps.
//! - A random IV has all 96 bits random (`ulIvFixedBits` 0), the minimum SP 800-38D
//!   §8.2.2 asks for; `CKG_GENERATE` means random with no fixed bits and a counter after
//!   a fixed prefix.
//!
//! A message may also arrive in parts (`*MessageBegin`/`*MessageNext`); like multi-part
//! GCM, parts are buffered and the work is done on the last one, so decryption never
//! releases unverified plaintext.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use cryptoki_sys::*;
use parking_lot::Mutex;
use zeroize::Zeroizing;

use super::key::KeyRole;
use super::output::Output;
use super::usage::DataOp;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::aes_gcm::{self as gcm, GcmKey};
use crate::mechanism::hash::{self, HashAlg};
use crate::mechanism::GcmParams;
use crate::mechanism::KeyView;
use crate::object::Object;
use crate::store::Backend;

/// Counter values a process reserves from the store at a time: one store write per 2^16
/// messages, and at most 2^16 values lost to a crash.
pub const RESERVATION: u64 = 1 << 16;

/// The last counter value of a key (SP 800-38D §8.3 bounds a key's invocations to 2^32;
/// see the module docs for why the space does not grow with the free bytes).
pub const COUNTER_MAX: u64 = u32::MAX as u64;

/// Generated IV bits a random IV must have (SP 800-38D §8.2.2: at least 96).
const RANDOM_BITS_MIN: usize = 96;

/// Domain separation of the key fingerprint from any other hash of key bytes.
const FINGERPRINT_DOMAIN: &[u8] = b"CollabVault GCM IV counter key fingerprint v1\0";

/// The store's name for a key's IV counter: a domain-separated SHA-256 of the key value.
/// Not the key bytes, and not a handle or unique id, which a copy or a re-import changes.
fn fingerprint(value: &[u8]) -> [u8; 32] {
    let mut input = Zeroizing::new(Vec::with_capacity(FINGERPRINT_DOMAIN.len() + value.len()));
    input.extend_from_slice(FINGERPRINT_DOMAIN);
    input.extend_from_slice(value);
    let mut out = [0u8; 32];
    out.copy_from_slice(&hash::digest(HashAlg::Sha256, &input));
    out
}

/// The IV counter ranges this process has reserved, by key fingerprint, shared by all its
/// sessions (one per initialized module).
#[derive(Default)]
pub struct IvCounters(Mutex<HashMap<[u8; 32], Range<u64>>>);

impl IvCounters {
    /// The next counter value of the key with `fingerprint`, reserving a new range in
    /// `store` (durably, before use) when this process's range is used up.
    pub fn next(&self, store: &dyn Backend, fingerprint: &[u8; 32]) -> Result<u64> {
        let mut map = self.0.lock();
        let range = map.entry(*fingerprint).or_insert(0..0);
        if range.is_empty() {
            *range = store.reserve_iv_counter(fingerprint, RESERVATION, COUNTER_MAX)?.ok_or_else(|| {
                log::warn!("a key's GCM IV counter space is used up; counter IVs are refused for it");
                Error::IvCounterExhausted
            })?;
        }
        let value = range.start;
        range.start += 1;
        Ok(value)
    }
}

/// How the IV of a message is chosen (`CK_GENERATOR_FUNCTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvGenerator {
    /// `CKG_NO_GENERATE`: the caller's IV as given.
    Caller,
    /// `CKG_GENERATE_COUNTER`: the caller's fixed prefix, then a per-operation counter.
    Counter,
    /// `CKG_GENERATE_RANDOM`: 96 random bits.
    Random,
    /// `CKG_GENERATE`: the token's choice: random with no fixed bits, else a counter.
    Token,
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

/// One message-based operation: its key, its counter's name and any message in progress.
pub struct MessageOp {
    key: Arc<Object>,
    fingerprint: [u8; 32],
    pending: Option<Pending>,
}

impl MessageOp {
    /// The key prepared for `tag_len`-byte tags: made once per key object, kept with it.
    fn gcm(&self, tag_len: usize) -> Result<Arc<GcmKey>> {
        gcm::prepared_key(&*self.key, tag_len)
    }

    /// The IV for the next message under `p`; `counter` hands out the key's next counter
    /// value (only called for a counter IV, after the parameters are checked).
    fn next_iv(&self, p: &MessageParams, counter: &mut dyn FnMut(&[u8; 32]) -> Result<u64>) -> Result<Vec<u8>> {
        if p.iv.len() != gcm::IV_LEN {
            return Err(Error::MechanismParamInvalid);
        }
        let generator = match p.generator {
            IvGenerator::Caller => return Ok(p.iv.clone()),
            IvGenerator::Token if p.iv_fixed_bits == 0 => IvGenerator::Random,
            IvGenerator::Token => IvGenerator::Counter,
            g => g,
        };
        if p.iv_fixed_bits % 8 != 0 {
            return Err(Error::MechanismParamInvalid);
        }
        let fixed = p.iv_fixed_bits / 8;
        let free = gcm::IV_LEN.checked_sub(fixed).ok_or(Error::MechanismParamInvalid)?;
        let mut iv = p.iv[..fixed].to_vec();
        if generator == IvGenerator::Random {
            if free * 8 < RANDOM_BITS_MIN {
                log::info!("a random GCM IV with {} random bits is refused (96 needed)", free * 8);
                return Err(Error::MechanismParamInvalid);
            }
            let mut tail = vec![0u8; free];
            crate::mechanism::primitives::fill_random(&mut tail)?;
            iv.extend_from_slice(&tail);
            return Ok(iv);
        }
        // At least 32 free bits: room for every value up to COUNTER_MAX.
        if free < 4 {
            return Err(Error::MechanismParamInvalid);
        }
        let value = counter(&self.fingerprint)?;
        if value == 0 || value > COUNTER_MAX {
            return Err(Error::IvCounterExhausted);
        }
        // The counter, big-endian, right-aligned in the free bytes.
        let mut tail = vec![0u8; free];
        let n = free.min(8);
        tail[free - n..].copy_from_slice(&value.to_be_bytes()[8 - n..]);
        iv.extend_from_slice(&tail);
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

fn init(ctx: &Ctx, mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE, encrypt: bool) -> Result<()> {
    if mechanism != CKM_AES_GCM {
        return Err(Error::MechanismInvalid);
    }
    if slot(&mut ctx.session.lock().ops, encrypt).is_some() {
        return Err(Error::OperationActive);
    }
    let role = if encrypt { KeyRole::Encrypt } else { KeyRole::Decrypt };
    let handle_of_key = key;
    let key = ctx.operation_key(key, crate::mechanism::registry::row(mechanism)?, role)?;
    let value = key.secret()?;
    if !matches!(value.len(), 16 | 24 | 32) {
        return Err(Error::KeySizeRange);
    }
    ctx.note_use(if encrypt { DataOp::MessageEncrypt } else { DataOp::MessageDecrypt }, Some(handle_of_key))?;
    let mut session = ctx.session.lock();
    let slot = slot(&mut session.ops, encrypt);
    if slot.is_some() {
        return Err(Error::OperationActive);
    }
    let fingerprint = fingerprint(&value);
    *slot = Some(MessageOp { key, fingerprint, pending: None });
    Ok(())
}

fn with_op<T>(ctx: &Ctx, encrypt: bool, f: impl FnOnce(&mut MessageOp, &Ctx) -> Result<T>) -> Result<T> {
    let mut session = ctx.session.lock();
    let op = slot(&mut session.ops, encrypt).as_mut().ok_or(Error::OperationNotInitialized)?;
    f(op, ctx)
}

/// Hands out the key's next counter value from this process's reserved range.
fn counter_of(ctx: &Ctx) -> impl FnMut(&[u8; 32]) -> Result<u64> + '_ {
    |fingerprint| ctx.app.iv_counters.next(ctx.token.store(), fingerprint)
}

fn gcm(iv: Vec<u8>, aad: &[u8], tag_len: usize) -> Result<GcmParams> {
    let params = GcmParams { iv, aad: aad.to_vec(), tag_len };
    gcm::check_params(&params)?;
    Ok(params)
}

/// `C_MessageEncryptInit`: the mechanism carries no parameter; each message has its own.
pub fn encrypt_init(ctx: &Ctx, mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE) -> Result<()> {
    init(ctx, mechanism, key, true)
}

/// `C_MessageDecryptInit`.
pub fn decrypt_init(ctx: &Ctx, mechanism: CK_MECHANISM_TYPE, key: CK_OBJECT_HANDLE) -> Result<()> {
    init(ctx, mechanism, key, false)
}

/// `C_EncryptMessage`: one whole message, encrypted straight into the caller's buffer
/// (`None`: a length query, which chooses no IV).
pub fn encrypt(ctx: &Ctx, p: &MessageParams, aad: &[u8], plaintext: &[u8], out: Option<&mut [u8]>) -> Result<Sealed> {
    with_op(ctx, true, |op, ctx| {
        if op.pending.is_some() {
            return Err(Error::OperationActive);
        }
        let out = match out {
            None => return Ok(Sealed { output: Output::Length(plaintext.len()), tag: Vec::new(), iv: p.iv.clone() }),
            Some(buf) if buf.len() < plaintext.len() => return Err(Error::BufferTooSmall(plaintext.len())),
            Some(buf) => buf,
        };
        let params = gcm(op.next_iv(p, &mut counter_of(ctx))?, aad, p.tag_len)?;
        let tag = op.gcm(params.tag_len)?.seal_detached(&params, plaintext, out)?;
        Ok(Sealed { output: Output::Written(plaintext.len()), tag, iv: params.iv })
    })
}

/// The last part of a message sent in parts, from the buffered data.
fn seal(op: &MessageOp, params: GcmParams, plaintext: &[u8]) -> Result<Sealed> {
    let mut out = Vec::with_capacity(plaintext.len() + params.tag_len);
    op.gcm(params.tag_len)?.seal_into(&params, plaintext, &mut out)?;
    let tag = out.split_off(plaintext.len());
    Ok(Sealed { output: Output::Data(Zeroizing::new(out)), tag, iv: params.iv })
}

/// `C_DecryptMessage`: one whole message, decrypted straight into the caller's buffer
/// (`None`: a length query); `tag` comes from the caller's parameter. A tag that does not
/// verify leaves the buffer wiped.
pub fn decrypt(
    ctx: &Ctx,
    p: &MessageParams,
    tag: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    out: Option<&mut [u8]>,
) -> Result<Output> {
    with_op(ctx, false, |op, _| {
        if op.pending.is_some() {
            return Err(Error::OperationActive);
        }
        if p.generator != IvGenerator::Caller {
            return Err(Error::MechanismParamInvalid);
        }
        let out = match out {
            None => return Ok(Output::Length(ciphertext.len())),
            Some(buf) if buf.len() < ciphertext.len() => return Err(Error::BufferTooSmall(ciphertext.len())),
            Some(buf) => buf,
        };
        let params = gcm(p.iv.clone(), aad, p.tag_len)?;
        check_tag(&params, tag)?;
        let opened = op.gcm(params.tag_len)?.open_detached(&params, ciphertext, tag, out);
        opened.map_err(aead_failure)?;
        Ok(Output::Written(ciphertext.len()))
    })
}

fn check_tag(params: &GcmParams, tag: &[u8]) -> Result<()> {
    if tag.len() != params.tag_len {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(())
}

/// A tag that does not verify is the 3.0 API's own `CKR_AEAD_DECRYPT_FAILED` (single-part
/// `C_Decrypt` keeps `CKR_ENCRYPTED_DATA_INVALID`).
fn aead_failure(e: Error) -> Error {
    match e {
        Error::EncryptedDataInvalid => Error::AeadDecryptFailed,
        e => e,
    }
}

/// Opens the last part of a message sent in parts, from the buffered data.
fn open(op: &MessageOp, params: GcmParams, ciphertext: &[u8], tag: &[u8]) -> Result<Output> {
    check_tag(&params, tag)?;
    let mut sealed = Vec::with_capacity(ciphertext.len() + tag.len());
    sealed.extend_from_slice(ciphertext);
    sealed.extend_from_slice(tag);
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    op.gcm(params.tag_len)?.open_into(&params, &sealed, &mut plaintext).map_err(aead_failure)?;
    Ok(Output::Data(plaintext))
}

/// `C_EncryptMessageBegin`/`C_DecryptMessageBegin`: starts a message in parts.
pub fn begin(ctx: &Ctx, encrypt: bool, p: &MessageParams, aad: &[u8]) -> Result<()> {
    with_op(ctx, encrypt, |op, ctx| {
        if op.pending.is_some() {
            return Err(Error::OperationActive);
        }
        if !encrypt && p.generator != IvGenerator::Caller {
            return Err(Error::MechanismParamInvalid);
        }
        let iv = if encrypt { op.next_iv(p, &mut counter_of(ctx))? } else { p.iv.clone() };
        op.pending = Some(Pending { params: gcm(iv, aad, p.tag_len)?, data: Zeroizing::default() });
        Ok(())
    })
}

/// What the last part of an encrypted message returns.
pub type Part = (Output, Option<(Vec<u8>, Vec<u8>)>);

/// The parameter of a `*MessageNext` call must describe the message its `*MessageBegin`
/// started: the tag and IV go back through THIS call's buffers, so a shorter tag or IV
/// here than at Begin would be written past them.
fn same_message(p: &MessageParams, pending: &Pending) -> Result<()> {
    if p.tag_len != pending.params.tag_len || p.iv.len() != pending.params.iv.len() {
        log::warn!(
            "message part: a {}-byte tag and {}-byte IV, but the message began with {} and {}",
            p.tag_len,
            p.iv.len(),
            pending.params.tag_len,
            pending.params.iv.len()
        );
        return Err(Error::MechanismParamInvalid);
    }
    Ok(())
}

/// `C_EncryptMessageNext`: buffers `part`; on the last one returns the whole ciphertext
/// and `(tag, iv)` for the caller's parameter `p` (which must match the Begin call's).
pub fn encrypt_next(ctx: &Ctx, p: &MessageParams, part: &[u8], last: bool, capacity: Option<usize>) -> Result<Part> {
    with_op(ctx, true, |op, _| {
        let pending = op.pending.as_mut().ok_or(Error::OperationNotInitialized)?;
        same_message(p, pending)?;
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
    ctx: &Ctx,
    p: &MessageParams,
    tag: &[u8],
    part: &[u8],
    last: bool,
    capacity: Option<usize>,
) -> Result<Output> {
    with_op(ctx, false, |op, _| {
        let pending = op.pending.as_mut().ok_or(Error::OperationNotInitialized)?;
        same_message(p, pending)?;
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
pub fn finish(ctx: &Ctx, encrypt: bool) -> Result<()> {
    let ended = slot(&mut ctx.session.lock().ops, encrypt).take();
    ended.map(drop).ok_or(Error::OperationNotInitialized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> MessageOp {
        MessageOp { key: Arc::new(Object::reference(Vec::new())), fingerprint: [0; 32], pending: None }
    }

    fn params(generator: IvGenerator, fixed_bits: usize) -> MessageParams {
        MessageParams { iv: vec![0xaa; 12], iv_fixed_bits: fixed_bits, generator, tag_len: 16 }
    }

    /// A counter source starting after `last`.
    fn from(mut last: u64) -> impl FnMut(&[u8; 32]) -> Result<u64> {
        move |_| {
            last += 1;
            Ok(last)
        }
    }

    #[test]
    fn a_counter_iv_keeps_the_fixed_prefix_and_counts_up() {
        let (op, mut counter) = (op(), from(0));
        let p = params(IvGenerator::Counter, 32);
        let first = op.next_iv(&p, &mut counter).expect("iv");
        let second = op.next_iv(&p, &mut counter).expect("iv");
        assert_eq!(&first[..4], &[0xaa; 4]);
        assert_eq!(&first[4..], &1u64.to_be_bytes());
        assert_eq!(&second[4..], &2u64.to_be_bytes());
    }

    #[test]
    fn a_counter_refuses_to_go_past_its_space() {
        let op = op();
        let p = params(IvGenerator::Counter, 64);
        let last = op.next_iv(&p, &mut from(COUNTER_MAX - 1)).expect("last value");
        assert_eq!(&last[8..], &u32::MAX.to_be_bytes());
        assert_eq!(op.next_iv(&p, &mut from(COUNTER_MAX)).unwrap_err(), Error::IvCounterExhausted);
    }

    #[test]
    fn random_ivs_are_96_random_bits() {
        let op = op();
        let mut never = |_: &[u8; 32]| -> Result<u64> { panic!("a random IV takes no counter value") };
        let p = params(IvGenerator::Random, 0);
        let (a, b) = (op.next_iv(&p, &mut never).expect("a"), op.next_iv(&p, &mut never).expect("b"));
        assert_ne!(a, b);
        assert_ne!(a, vec![0xaa; 12]);
        for fixed in [8, 16, 32, 64] {
            let err = op.next_iv(&params(IvGenerator::Random, fixed), &mut never).unwrap_err();
            assert_eq!(err, Error::MechanismParamInvalid, "{fixed} fixed bits");
        }
    }

    #[test]
    fn the_token_generator_is_random_without_a_prefix_and_a_counter_after_one() {
        let op = op();
        let mut counter = from(6);
        let counted = op.next_iv(&params(IvGenerator::Token, 32), &mut counter).expect("counter");
        assert_eq!(&counted[4..], &7u64.to_be_bytes());
        let random = op.next_iv(&params(IvGenerator::Token, 0), &mut counter).expect("random");
        assert_eq!(counter(&[0; 32]).expect("next"), 8, "the random IV took no counter value");
        assert_ne!(random, vec![0xaa; 12]);
    }

    #[test]
    fn unusable_generator_settings_are_refused_before_a_counter_value_is_taken() {
        let op = op();
        let mut never = |_: &[u8; 32]| -> Result<u64> { panic!("no value may be taken") };
        assert!(op.next_iv(&params(IvGenerator::Counter, 12), &mut never).is_err(), "fixed bits not whole bytes");
        assert!(op.next_iv(&params(IvGenerator::Counter, 72), &mut never).is_err(), "fewer than 32 free bits");
        let short = MessageParams { iv: vec![0; 8], ..params(IvGenerator::Caller, 0) };
        assert!(op.next_iv(&short, &mut never).is_err(), "IV not 96 bits");
    }

    #[test]
    fn the_fingerprint_names_the_key_value_not_its_bytes() {
        let (a, b) = (fingerprint(&[1; 32]), fingerprint(&[1; 32]));
        assert_eq!(a, b, "the same key bytes share one counter");
        assert_ne!(a, fingerprint(&[2; 32]));
        assert_ne!(a.to_vec(), hash::digest(HashAlg::Sha256, &[1; 32]), "domain separated");
    }
}
