//! Key management for the mechanism breadth of issue 5: `CKM_SHA*_KEY_DERIVATION`,
//! Ed25519 and RSA key pairs, RSA wrap/unwrap, and the import checks for RSA and Ed25519
//! keys. `keys.rs` calls in here through one-line hooks.

use cryptoki_sys::*;

use super::crypto::secret;
use super::keys::{derived_origin, derived_shape, secret_attrs, value_len};
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{eddsa, hash, HashAlg, Mechanism};
use crate::object::{Attr, Object, Template};

/// The public and private attributes of a new key pair.
type PairAttrs = (Vec<Attr>, Vec<Attr>);

/// A new key pair for `m`, or `None` if `m` is not a breadth mechanism.
pub(super) fn pair(
    m: &Mechanism,
    public_template: &Template,
    private_template: &Template,
) -> Result<Option<PairAttrs>> {
    Ok(Some(match m {
        Mechanism::EdwardsKeyPairGen => ed25519_pair(public_template)?,
        Mechanism::RsaKeyPairGen => super::keys_rsa::rsa_pair(public_template, private_template)?,
        _ => return Ok(None),
    }))
}

fn ed25519_pair(public_template: &Template) -> Result<PairAttrs> {
    let params = public_template.get(CKA_EC_PARAMS).ok_or(Error::TemplateIncomplete(CKA_EC_PARAMS))?;
    eddsa::check_params(params)?;
    let (seed, public) = eddsa::generate()?;
    let head = |class| vec![Attr::ulong(CKA_CLASS, class), Attr::ulong(CKA_KEY_TYPE, CKK_EC_EDWARDS)];
    let mut pub_attrs = head(CKO_PUBLIC_KEY);
    pub_attrs.push(Attr::new(CKA_EC_POINT, eddsa::point_to_der(&public)));
    let mut priv_attrs = head(CKO_PRIVATE_KEY);
    priv_attrs.push(Attr::new(CKA_EC_PARAMS, eddsa::ED25519_OID_DER.to_vec()));
    priv_attrs.push(Attr::new(CKA_VALUE, seed.to_vec()));
    Ok((pub_attrs, priv_attrs))
}

/// Import checks for the breadth key types: Ed25519 points stored DER-wrapped, seeds of
/// 32 bytes; RSA keys consistent and complete.
pub(super) fn complete_import(object: &mut Object) -> Result<()> {
    match (object.class(), object.ulong(CKA_KEY_TYPE)) {
        (CKO_PUBLIC_KEY, Some(CKK_EC_EDWARDS)) => {
            eddsa::check_params(object.bytes(CKA_EC_PARAMS).ok_or(Error::TemplateIncomplete(CKA_EC_PARAMS))?)?;
            let raw = eddsa::parse_point(object.bytes(CKA_EC_POINT).ok_or(Error::TemplateIncomplete(CKA_EC_POINT))?)?;
            object.set_computed(Attr::new(CKA_EC_POINT, eddsa::point_to_der(&raw)));
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC_EDWARDS)) => {
            eddsa::check_params(object.bytes(CKA_EC_PARAMS).ok_or(Error::TemplateIncomplete(CKA_EC_PARAMS))?)?;
            eddsa::public_from_seed(object.bytes(CKA_VALUE).ok_or(Error::TemplateIncomplete(CKA_VALUE))?)?;
        }
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_RSA)) => super::keys_rsa::complete_import(object)?,
        _ => {}
    }
    Ok(())
}

/// `C_DeriveKey` with `CKM_SHA*_KEY_DERIVATION`: the digest of the base key's value.
pub(super) fn hash_derive(
    ctx: &Ctx,
    m: &Mechanism,
    alg: HashAlg,
    base: CK_OBJECT_HANDLE,
    template: &Template,
) -> Result<CK_OBJECT_HANDLE> {
    let base =
        ctx.key_for(base, m.ty(), CKO_SECRET_KEY, CKA_DERIVE, Error::KeyHandleInvalid, Error::KeyTypeInconsistent)?;
    let template = &super::keys::imposed(&base, CKA_DERIVE_TEMPLATE, template)?;
    let (key_type, _) = derived_shape(template, 0)?;
    let value = hash::derive_key(alg, &secret(&base)?, value_len(template)?)?;
    let key = Object::new(template, derived_origin(&base), &secret_attrs(key_type, &value))?;
    ctx.add_from(key, "C_DeriveKey", "from", &base)
}
