//! Key encapsulation through a session (PKCS#11 3.2 `C_EncapsulateKey`,
//! `C_DecapsulateKey`): the mechanism's registry row makes the ciphertext and the shared
//! secret, which becomes a new secret key from the caller's template.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::key::{derived_origin, derived_type, imposed_on, secret_attrs, value_len, KeyRole};
use super::output::Output;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{registry, Mechanism};
use crate::object::{Object, Origin, Template};

/// The shared secret as the new key's value: its first `len` bytes (at most all of it).
fn shared_key(template: &Template, shared: &[u8]) -> Result<(CK_KEY_TYPE, Zeroizing<Vec<u8>>)> {
    let key_type = derived_type(template)?;
    let len = value_len(template)?.unwrap_or(shared.len());
    if len == 0 || len > shared.len() {
        // As for ECDH: the mechanism cannot make a key of that length.
        return Err(Error::KeySizeRange);
    }
    Ok((key_type, Zeroizing::new(shared[..len].to_vec())))
}

/// `C_EncapsulateKey`: the ciphertext for the caller, and (unless this is a length
/// query) a new secret key holding the shared secret; the template's values move into it.
pub fn encapsulate(
    ctx: &Ctx,
    m: &Mechanism,
    public: CK_OBJECT_HANDLE,
    template: Template,
    capacity: Option<usize>,
) -> Result<(Output, Option<CK_OBJECT_HANDLE>)> {
    let row = registry::row(m.ty())?;
    let kem = row.op(|o| o.kem)?;
    let key = ctx.operation_key(public, row, KeyRole::Encapsulate)?;
    let template = imposed_on(&key, CKA_DERIVE_TEMPLATE, template)?;
    let needed = (kem.ciphertext_len)(&*key)?;
    match capacity {
        None => return Ok((Output::Length(needed), None)),
        Some(c) if c < needed => return Err(Error::BufferTooSmall(needed)),
        Some(_) => {}
    }
    let (ciphertext, shared) = (kem.encapsulate)(&*key)?;
    let (key_type, value) = shared_key(&template, &shared)?;
    // The secret never existed outside the token, so its sensitivity is the template's.
    let origin = Origin::Derived { always_sensitive: true, never_extractable: true };
    let object = Object::made(template, origin, secret_attrs(key_type, &value))?;
    let new_key = ctx.add_from(object, "C_EncapsulateKey", "to", &key)?;
    Ok((Output::Data(Zeroizing::new(ciphertext)), Some(new_key)))
}

/// `C_DecapsulateKey`; the template's values move into the new key.
pub fn decapsulate(
    ctx: &Ctx,
    m: &Mechanism,
    private: CK_OBJECT_HANDLE,
    template: Template,
    ciphertext: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    let row = registry::row(m.ty())?;
    let kem = row.op(|o| o.kem)?;
    let key = ctx.operation_key(private, row, KeyRole::Decapsulate)?;
    let template = imposed_on(&key, CKA_DERIVE_TEMPLATE, template)?;
    let shared = (kem.decapsulate)(&*key, ciphertext)?;
    let (key_type, value) = shared_key(&template, &shared)?;
    let object = Object::made(template, derived_origin(&key), secret_attrs(key_type, &value))?;
    ctx.add_from(object, "C_DecapsulateKey", "from", &key)
}
