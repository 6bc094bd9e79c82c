//! The checks an imported key (`C_CreateObject`) gets before it is stored: its key
//! material must be usable by the mechanisms of its type, and is kept in the normalized
//! form the token hands out (EC points DER-wrapped, scalars at full length, RSA CRT
//! values and ML-KEM expanded keys computed).

use cryptoki_sys::*;

use super::{Attr, Object};
use crate::error::Result;

/// `object` with its key material checked and normalized.
pub fn complete(mut object: Object) -> Result<Object> {
    let Some(key_type) = object.ulong(CKA_KEY_TYPE) else {
        return Ok(object);
    };
    for attr in crate::mechanism::imported_attrs(object.class(), key_type, &object)? {
        object.set_computed(Attr::from(attr));
    }
    Ok(object)
}
