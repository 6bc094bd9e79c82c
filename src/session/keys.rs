//! Key management through a session (spec §5.14–5.18): generate keys and key pairs,
//! wrap and unwrap, derive, encapsulate and decapsulate, and the checks an imported key
//! gets before it is stored.
//!
//! This is where objects meet mechanisms: the mechanism families work on bytes, and this
//! file turns their output into objects built under the attribute policy, with the
//! origin attributes (`CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`, ...) the spec prescribes.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::crypto::{secret, Output};
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::ec::{self, Curve};
use crate::mechanism::mlkem::{self, ParamSet};
use crate::mechanism::{aes_kw, ecdh, secret_key, Mechanism};
use crate::object::{Attr, Object, Origin, Template};

/// The curve of an EC key.
pub(super) fn ec_curve(key: &Object) -> Result<Curve> {
    ec::curve_from_params(key.bytes(CKA_EC_PARAMS).ok_or(Error::TemplateIncomplete(CKA_EC_PARAMS))?)
}

/// The uncompressed public point of an EC public key.
pub(super) fn ec_point(key: &Object, curve: Curve) -> Result<Vec<u8>> {
    ec::parse_point(curve, key.bytes(CKA_EC_POINT).ok_or(Error::TemplateIncomplete(CKA_EC_POINT))?)
}

fn parameter_set(key: &Object) -> Result<ParamSet> {
    ParamSet::from_ck(key.ulong(CKA_PARAMETER_SET).ok_or(Error::TemplateIncomplete(CKA_PARAMETER_SET))?)
}

/// Checks and normalizes the key material of an object made by `C_CreateObject`: EC
/// points are stored as the DER OCTET STRING clients read back, EC scalars at full
/// length, ML-KEM private keys always with their expanded form.
pub fn complete_import(mut object: Object) -> Result<Object> {
    match (object.class(), object.ulong(CKA_KEY_TYPE)) {
        (CKO_PUBLIC_KEY, Some(CKK_EC)) => {
            let point = ec_point(&object, ec_curve(&object)?)?;
            object.set_computed(Attr::new(CKA_EC_POINT, ec::point_to_der(&point)));
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC)) => {
            let curve = ec_curve(&object)?;
            let value = object.bytes(CKA_VALUE).ok_or(Error::TemplateIncomplete(CKA_VALUE))?;
            let scalar = ec::check_private(curve, value)?;
            object.set_computed(Attr::new(CKA_VALUE, scalar.to_vec()));
        }
        (CKO_PUBLIC_KEY, Some(CKK_ML_KEM)) => {
            let ps = parameter_set(&object)?;
            mlkem::check_public(ps, object.bytes(CKA_VALUE).ok_or(Error::TemplateIncomplete(CKA_VALUE))?)?;
        }
        (CKO_PRIVATE_KEY, Some(CKK_ML_KEM)) => {
            let ps = parameter_set(&object)?;
            let expanded = mlkem::check_private(ps, object.bytes(CKA_VALUE), object.bytes(CKA_SEED))?;
            object.set_computed(Attr::new(CKA_VALUE, expanded.to_vec()));
        }
        // Issue 5 (mechanism breadth): RSA and Ed25519 keys.
        _ => super::keys_breadth::complete_import(&mut object)?,
    }
    Ok(object)
}

pub(super) fn value_len(template: &Template) -> Result<Option<usize>> {
    template
        .ulong(CKA_VALUE_LEN)?
        .map(|v| usize::try_from(v).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE_LEN)))
        .transpose()
}

pub(super) fn secret_attrs(key_type: CK_KEY_TYPE, value: &[u8]) -> [Attr; 3] {
    [Attr::ulong(CKA_CLASS, CKO_SECRET_KEY), Attr::ulong(CKA_KEY_TYPE, key_type), Attr::new(CKA_VALUE, value.to_vec())]
}

/// `C_GenerateKey`.
pub fn generate_key(handle: CK_SESSION_HANDLE, m: &Mechanism, template: &Template) -> Result<CK_OBJECT_HANDLE> {
    let ctx = Ctx::of(handle)?;
    if *m == Mechanism::CvRotateMaster {
        return super::records::rotate(&ctx);
    }
    if *m == Mechanism::CvRewrapStored {
        let batch = value_len(template)?.unwrap_or(500);
        return super::records::rewrap_stored(&ctx, batch);
    }
    let key_type = secret_key::key_type(m.ty()).ok_or(Error::MechanismInvalid)?;
    let len = value_len(template)?.ok_or(Error::TemplateIncomplete(CKA_VALUE_LEN))?;
    let value = secret_key::generate(m.ty(), len)?;
    let key = Object::new(template, Origin::Generated(m.ty()), &secret_attrs(key_type, &value))?;
    ctx.add(key, "C_GenerateKey")
}

/// The two halves of a new key pair, before either is stored.
struct Pair {
    public: Vec<Attr>,
    private: Vec<Attr>,
}

fn ec_pair(public_template: &Template) -> Result<Pair> {
    let params = public_template.get(CKA_EC_PARAMS).ok_or(Error::TemplateIncomplete(CKA_EC_PARAMS))?;
    let curve = ec::curve_from_params(params)?;
    let (scalar, point) = ec::generate(curve)?;
    let head = |class| vec![Attr::ulong(CKA_CLASS, class), Attr::ulong(CKA_KEY_TYPE, CKK_EC)];
    let mut public = head(CKO_PUBLIC_KEY);
    public.push(Attr::new(CKA_EC_POINT, ec::point_to_der(&point)));
    let mut private = head(CKO_PRIVATE_KEY);
    private.push(Attr::new(CKA_EC_PARAMS, curve.der_oid().to_vec()));
    private.push(Attr::new(CKA_VALUE, scalar.to_vec()));
    Ok(Pair { public, private })
}

fn mlkem_pair(public_template: &Template, private_template: &Template) -> Result<Pair> {
    let set = match (public_template.ulong(CKA_PARAMETER_SET)?, private_template.ulong(CKA_PARAMETER_SET)?) {
        (Some(a), Some(b)) if a != b => return Err(Error::TemplateInconsistent(CKA_PARAMETER_SET)),
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => return Err(Error::TemplateIncomplete(CKA_PARAMETER_SET)),
    };
    let ps = ParamSet::from_ck(set)?;
    let pair = mlkem::generate(ps)?;
    let head = |class| {
        vec![
            Attr::ulong(CKA_CLASS, class),
            Attr::ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            Attr::ulong(CKA_PARAMETER_SET, ps.to_ck()),
        ]
    };
    let mut public = head(CKO_PUBLIC_KEY);
    public.push(Attr::new(CKA_VALUE, pair.public.clone()));
    let mut private = head(CKO_PRIVATE_KEY);
    private.push(Attr::new(CKA_VALUE, pair.private.to_vec()));
    private.push(Attr::new(CKA_SEED, pair.seed.to_vec()));
    Ok(Pair { public, private })
}

/// `C_GenerateKeyPair`: both objects or neither.
pub fn generate_key_pair(
    handle: CK_SESSION_HANDLE,
    m: &Mechanism,
    public_template: &Template,
    private_template: &Template,
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    let ctx = Ctx::of(handle)?;
    let pair = match m {
        Mechanism::EcKeyPairGen => ec_pair(public_template)?,
        Mechanism::MlKemKeyPairGen => mlkem_pair(public_template, private_template)?,
        // Issue 5 (mechanism breadth): Ed25519 and RSA.
        other => match super::keys_breadth::pair(other, public_template, private_template)? {
            Some((public, private)) => Pair { public, private },
            None => return Err(Error::MechanismInvalid),
        },
    };
    let origin = Origin::Generated(m.ty());
    let public = Object::new(public_template, origin, &pair.public)?;
    let private = Object::new(private_template, origin, &pair.private)?;
    ctx.check_may_hold(&public)?;
    ctx.check_may_hold(&private)?;
    let public = ctx.add(public, "C_GenerateKeyPair")?;
    match ctx.add(private, "C_GenerateKeyPair") {
        Ok(private) => Ok((public, private)),
        Err(e) => {
            if let Err(undo) = super::objects::destroy(handle, public) {
                log::error!("C_GenerateKeyPair: could not remove the public half after a failure: {undo}");
            }
            Err(e)
        }
    }
}

fn wrap_mode(m: &Mechanism) -> Result<bool> {
    match m {
        Mechanism::AesKeyWrap => Ok(false),
        Mechanism::AesKeyWrapPad => Ok(true),
        _ => Err(Error::MechanismInvalid),
    }
}

/// `C_WrapKey`: a secret key's value under an AES key-wrapping key.
pub fn wrap_key(
    handle: CK_SESSION_HANDLE,
    m: &Mechanism,
    wrapping: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    capacity: Option<usize>,
) -> Result<Output> {
    let ctx = Ctx::of(handle)?;
    if *m == Mechanism::CvWrapRecord {
        return super::records::wrap(&ctx, wrapping, key, &[], capacity);
    }
    // Issue 5 (mechanism breadth): RSA key transport (CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP).
    if let Some(padding) = super::keys_rsa::wrap_padding(m) {
        return super::keys_rsa::wrap_key(&ctx, m, padding, wrapping, key, capacity);
    }
    let pad = wrap_mode(m)?;
    let kek = ctx.key_for(
        wrapping,
        m.ty(),
        CKO_SECRET_KEY,
        CKA_WRAP,
        Error::WrappingKeyHandleInvalid,
        Error::WrappingKeyTypeInconsistent,
    )?;
    let target = match ctx.resolve(key) {
        Ok(r) => r.object(),
        Err(Error::ObjectHandleInvalid) => return Err(Error::KeyHandleInvalid),
        Err(e) => return Err(e),
    };
    crate::object::usage::check_wrap(&kek, m.ty(), &target)?;
    let value = secret(&target)?;
    let needed = aes_kw::wrapped_len(value.len(), pad);
    match capacity {
        None => return Ok(Output::Length(needed)),
        Some(c) if c < needed => return Err(Error::BufferTooSmall(needed)),
        Some(_) => {}
    }
    let wrapped = aes_kw::wrap(&secret(&kek)?, &value, pad).map_err(|e| match e {
        Error::DataLenRange => Error::KeySizeRange,
        other => other,
    })?;
    ctx.audit("C_WrapKey", format!("{} under {}", target.describe(), kek.describe()))?;
    Ok(Output::Data(Zeroizing::new(wrapped)))
}

/// `C_UnwrapKey`: a new secret key from a wrapped value and `template`.
pub fn unwrap_key(
    handle: CK_SESSION_HANDLE,
    m: &Mechanism,
    unwrapping: CK_OBJECT_HANDLE,
    wrapped: &[u8],
    template: &Template,
) -> Result<CK_OBJECT_HANDLE> {
    let ctx = Ctx::of(handle)?;
    if *m == Mechanism::CvWrapRecord {
        return super::records::unwrap(&ctx, unwrapping, wrapped, template, &[]);
    }
    // Issue 5 (mechanism breadth): RSA key transport.
    if let Some(padding) = super::keys_rsa::wrap_padding(m) {
        return super::keys_rsa::unwrap_key(&ctx, m, padding, unwrapping, wrapped, template);
    }
    let pad = wrap_mode(m)?;
    let kek = ctx.key_for(
        unwrapping,
        m.ty(),
        CKO_SECRET_KEY,
        CKA_UNWRAP,
        Error::UnwrappingKeyHandleInvalid,
        Error::UnwrappingKeyTypeInconsistent,
    )?;
    let template = imposed(&kek, CKA_UNWRAP_TEMPLATE, template)?;
    let class = template.ulong(CKA_CLASS)?.ok_or(Error::TemplateIncomplete(CKA_CLASS))?;
    if class != CKO_SECRET_KEY {
        return Err(Error::TemplateInconsistent(CKA_CLASS));
    }
    let key_type = template.ulong(CKA_KEY_TYPE)?.ok_or(Error::TemplateIncomplete(CKA_KEY_TYPE))?;
    let value = aes_kw::unwrap(&secret(&kek)?, wrapped, pad).map_err(|e| match e {
        Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
        _ => Error::WrappedKeyInvalid,
    })?;
    let key = Object::new(&template, Origin::Unwrapped, &secret_attrs(key_type, &value))?;
    ctx.add_from(key, "C_UnwrapKey", "under", &kek)
}

/// The caller's `template` with the nested template `ty` of `key` imposed: a key that
/// `key` unwraps (`CKA_UNWRAP_TEMPLATE`) or derives, decapsulates or encapsulates
/// (`CKA_DERIVE_TEMPLATE`) gets those attributes, and a caller asking otherwise is
/// refused with `CKR_TEMPLATE_INCONSISTENT`.
pub(super) fn imposed(key: &Object, ty: CK_ATTRIBUTE_TYPE, template: &Template) -> Result<Template> {
    let Some(required) = key.nested(ty)? else {
        return Ok(template.clone());
    };
    template.with_required(&required).inspect_err(|e| {
        log::warn!(
            "{}: refused: the new key's template contradicts its {} ({e})",
            key.describe(),
            crate::names::attr_name(ty)
        );
    })
}

pub(super) fn derived_origin(base: &Object) -> Origin {
    Origin::Derived {
        always_sensitive: base.flag(CKA_ALWAYS_SENSITIVE),
        never_extractable: base.flag(CKA_NEVER_EXTRACTABLE),
    }
}

/// The key type and length a derive or encapsulate template asks for.
pub(super) fn derived_shape(template: &Template, default_len: usize) -> Result<(CK_KEY_TYPE, usize)> {
    let key_type = template.ulong(CKA_KEY_TYPE)?.unwrap_or(CKK_GENERIC_SECRET);
    let len = value_len(template)?.unwrap_or(default_len);
    Ok((key_type, len))
}

/// `C_DeriveKey` with `CKM_ECDH1_DERIVE`.
pub fn derive_key(
    handle: CK_SESSION_HANDLE,
    m: &Mechanism,
    base: CK_OBJECT_HANDLE,
    template: &Template,
) -> Result<CK_OBJECT_HANDLE> {
    let ctx = Ctx::of(handle)?;
    // Issue 5 (mechanism breadth): CKM_SHA*_KEY_DERIVATION.
    if let Mechanism::HashKeyDerivation(alg) = m {
        return super::keys_breadth::hash_derive(&ctx, m, *alg, base, template);
    }
    let Mechanism::Ecdh1Derive(params) = m else {
        return Err(Error::MechanismInvalid);
    };
    let base =
        ctx.key_for(base, m.ty(), CKO_PRIVATE_KEY, CKA_DERIVE, Error::KeyHandleInvalid, Error::KeyTypeInconsistent)?;
    let template = &imposed(&base, CKA_DERIVE_TEMPLATE, template)?;
    let (key_type, _) = derived_shape(template, 0)?;
    let value = ecdh::derive(ec_curve(&base)?, &secret(&base)?, params, value_len(template)?)?;
    let key = Object::new(template, derived_origin(&base), &secret_attrs(key_type, &value))?;
    ctx.add_from(key, "C_DeriveKey", "from", &base)
}

/// The shared secret as the new key's value: its first `len` bytes (at most all 32).
fn shared_key(template: &Template, shared: &[u8]) -> Result<(CK_KEY_TYPE, Zeroizing<Vec<u8>>)> {
    let (key_type, len) = derived_shape(template, shared.len())?;
    if len == 0 || len > shared.len() {
        // As for ECDH: the mechanism cannot make a key of that length.
        return Err(Error::KeySizeRange);
    }
    Ok((key_type, Zeroizing::new(shared[..len].to_vec())))
}

/// `C_EncapsulateKey` with `CKM_ML_KEM`: the ciphertext for the caller, and (unless this
/// is a length query) a new secret key holding the shared secret.
pub fn encapsulate(
    handle: CK_SESSION_HANDLE,
    m: &Mechanism,
    public: CK_OBJECT_HANDLE,
    template: &Template,
    capacity: Option<usize>,
) -> Result<(Output, Option<CK_OBJECT_HANDLE>)> {
    let ctx = Ctx::of(handle)?;
    if *m != Mechanism::MlKem {
        return Err(Error::MechanismInvalid);
    }
    let key = ctx.key_for(
        public,
        m.ty(),
        CKO_PUBLIC_KEY,
        CKA_ENCAPSULATE,
        Error::KeyHandleInvalid,
        Error::KeyTypeInconsistent,
    )?;
    let template = &imposed(&key, CKA_DERIVE_TEMPLATE, template)?;
    let ps = parameter_set(&key)?;
    let needed = ps.ciphertext_len();
    match capacity {
        None => return Ok((Output::Length(needed), None)),
        Some(c) if c < needed => return Err(Error::BufferTooSmall(needed)),
        Some(_) => {}
    }
    let decoded = key.prepared().get_or_make(mlkem::DecodedKey::cache_tag(false), || {
        mlkem::DecodedKey::public(ps, key.bytes(CKA_VALUE).ok_or(Error::TemplateIncomplete(CKA_VALUE))?)
    })?;
    let (ciphertext, shared) = decoded.encapsulate()?;
    let (key_type, value) = shared_key(template, &shared)?;
    // The secret never existed outside the token, so its sensitivity is the template's.
    let origin = Origin::Derived { always_sensitive: true, never_extractable: true };
    let object = Object::new(template, origin, &secret_attrs(key_type, &value))?;
    let new_key = ctx.add_from(object, "C_EncapsulateKey", "to", &key)?;
    Ok((Output::Data(Zeroizing::new(ciphertext)), Some(new_key)))
}

/// `C_DecapsulateKey` with `CKM_ML_KEM`.
pub fn decapsulate(
    handle: CK_SESSION_HANDLE,
    m: &Mechanism,
    private: CK_OBJECT_HANDLE,
    template: &Template,
    ciphertext: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    let ctx = Ctx::of(handle)?;
    if *m != Mechanism::MlKem {
        return Err(Error::MechanismInvalid);
    }
    let key = ctx.key_for(
        private,
        m.ty(),
        CKO_PRIVATE_KEY,
        CKA_DECAPSULATE,
        Error::KeyHandleInvalid,
        Error::KeyTypeInconsistent,
    )?;
    let template = &imposed(&key, CKA_DERIVE_TEMPLATE, template)?;
    let ps = parameter_set(&key)?;
    let decoded = key
        .prepared()
        .get_or_make(mlkem::DecodedKey::cache_tag(true), || mlkem::DecodedKey::private(ps, &secret(&key)?))?;
    let shared = decoded.decapsulate(ciphertext)?;
    let (key_type, value) = shared_key(template, &shared)?;
    let object = Object::new(template, derived_origin(&key), &secret_attrs(key_type, &value))?;
    ctx.add_from(object, "C_DecapsulateKey", "from", &key)
}
