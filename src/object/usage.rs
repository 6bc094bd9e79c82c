//! Rules on how a key may be used that the attribute table alone cannot state: who makes
//! a key trusted, the one wrap policy every wrap path applies, and the separation of
//! wrapping from enciphering.
//!
//! Why the separation: `CKM_AES_KEY_WRAP(_KWP)` through `C_Decrypt` is `C_UnwrapKey`
//! that hands the value to the caller, so a key with `CKA_WRAP` and `CKA_DECRYPT` (every
//! key, by the spec's defaults) turns any extractable key it wraps into plaintext; through
//! `C_Encrypt` with `CKA_UNWRAP` it forges a wrapped key of a value the caller chose. The
//! rule, applied when the operation starts (so no later `C_SetAttributeValue` gets around
//! it):
//!
//! - a key that has `CKA_WRAP` never decrypts with a key-wrap mechanism, and a key that
//!   has `CKA_UNWRAP` never encrypts with one (a key made with both flags false still
//!   uses KW/KWP as a cipher);
//! - a trusted key (`CKA_TRUSTED`, set by the SO only) is a key-encryption key and
//!   nothing else: no encrypt or decrypt with any mechanism, since AES-ECB or AES-CBC
//!   decryption inverts key wrap block by block; outside an SO session its policy
//!   attributes do not change and it is not copied.
//!
//! An untrusted key can still invert its own wraps through AES-ECB/CBC: that yields no
//! more than wrapping under a key whose value the caller imported, which the spec allows
//! for any extractable key without `CKA_WRAP_WITH_TRUSTED`. Keys that must not leave in
//! the clear are unextractable, or `CKA_WRAP_WITH_TRUSTED` and wrapped under trusted keys.

use cryptoki_sys::*;

use super::{Object, Template};
use crate::error::{Error, Result};

/// Mechanisms that are a key wrap when used through `C_WrapKey`/`C_UnwrapKey` and a
/// cipher over the same bytes through `C_Encrypt`/`C_Decrypt`.
const WRAP_AS_CIPHER: &[CK_MECHANISM_TYPE] = &[CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD];

/// Attributes that change nothing about what a trusted key may do: the user may still
/// rename it.
const COSMETIC: &[CK_ATTRIBUTE_TYPE] = &[CKA_LABEL, CKA_ID, CKA_START_DATE, CKA_END_DATE, CKA_SUBJECT];

/// Checks that `key` may start an encryption (`usage` is `CKA_ENCRYPT`) or decryption
/// (`CKA_DECRYPT`) with `mechanism`; other usages pass.
pub fn check_cipher_use(key: &Object, mechanism: CK_MECHANISM_TYPE, usage: CK_ATTRIBUTE_TYPE) -> Result<()> {
    let opposite = match usage {
        CKA_DECRYPT => CKA_WRAP,
        CKA_ENCRYPT => CKA_UNWRAP,
        _ => return Ok(()),
    };
    if key.class() == CKO_SECRET_KEY && key.flag(CKA_TRUSTED) {
        log::warn!("{}: refused: a trusted key wraps and unwraps only, never {}", key.describe(), verb(usage));
        return Err(Error::KeyFunctionNotPermitted);
    }
    if WRAP_AS_CIPHER.contains(&mechanism) && key.flag(opposite) {
        log::warn!(
            "{}: refused: key wrap through C_{}Init with a key that has {}",
            key.describe(),
            verb(usage),
            crate::names::attr_name(opposite)
        );
        return Err(Error::KeyFunctionNotPermitted);
    }
    Ok(())
}

fn verb(usage: CK_ATTRIBUTE_TYPE) -> &'static str {
    if usage == CKA_ENCRYPT {
        "Encrypt"
    } else {
        "Decrypt"
    }
}

/// The wrap policy, one function for every wrap path (`C_WrapKey` with AES key wrap or
/// RSA, the wrap record, `C_WrapKeyAuthenticated`): the wrapping key allows wrapping and
/// `mechanism`; the target is a secret key, extractable, wrapped under a trusted key if
/// it asks for one, and matches the wrapping key's `CKA_WRAP_TEMPLATE`.
pub fn check_wrap(kek: &Object, mechanism: CK_MECHANISM_TYPE, target: &Object) -> Result<()> {
    if !kek.flag(CKA_WRAP) {
        return Err(Error::KeyFunctionNotPermitted);
    }
    if !kek.allows(mechanism) {
        return Err(Error::MechanismInvalid);
    }
    if target.class() != CKO_SECRET_KEY {
        return Err(Error::KeyNotWrappable);
    }
    if !target.flag(CKA_EXTRACTABLE) {
        return Err(Error::KeyUnextractable);
    }
    if target.flag(CKA_WRAP_WITH_TRUSTED) && !kek.flag(CKA_TRUSTED) {
        log::warn!("{}: refused: CKA_WRAP_WITH_TRUSTED, and {} is not trusted", target.describe(), kek.describe());
        return Err(Error::KeyNotWrappable);
    }
    if let Some(required) = kek.nested(CKA_WRAP_TEMPLATE)? {
        if !target.matches(&required) {
            log::warn!("{}: refused: does not match {}'s CKA_WRAP_TEMPLATE", target.describe(), kek.describe());
            return Err(Error::KeyNotWrappable);
        }
    }
    Ok(())
}

/// Checks a new object (created, copied, generated, unwrapped, derived) against the trust
/// rule: only an SO session makes a trusted object (PKCS#11 3.2 §4.9 footnote: "can only
/// be set to CK_TRUE by the SO user"), and a copy of a trusted key is one.
pub fn check_new_trust(object: &Object, so: bool) -> Result<()> {
    if object.flag(CKA_TRUSTED) && !so {
        log::warn!("{}: refused: only the SO makes a key trusted", object.describe());
        return Err(Error::AttributeReadOnly(CKA_TRUSTED));
    }
    Ok(())
}

/// Checks a `C_CopyObject` of `source`: outside an SO session a trusted object is not
/// copied at all, neither as a trusted copy (only the SO makes one) nor as an untrusted
/// one, which would hold the trusted key's value under a policy the user controls.
pub fn check_copy_trust(source: &Object, so: bool) -> Result<()> {
    if source.flag(CKA_TRUSTED) && !so {
        log::warn!("{}: refused: only the SO copies a trusted key", source.describe());
        return Err(Error::AttributeReadOnly(CKA_TRUSTED));
    }
    Ok(())
}

/// Checks a `C_SetAttributeValue` of `template` on `before` against the trust rule:
/// outside an SO session `CKA_TRUSTED` does not change, and a trusted object's
/// attributes change only in name.
pub fn check_set_trust(before: &Object, template: &Template, so: bool) -> Result<()> {
    if so {
        return Ok(());
    }
    let trusted = before.flag(CKA_TRUSTED);
    for a in &template.0 {
        let changes_trust = a.ty == CKA_TRUSTED && a.value.as_slice() != [CK_BBOOL::from(trusted)];
        if changes_trust || (trusted && !COSMETIC.contains(&a.ty)) {
            log::warn!(
                "{}: refused: {} of a trusted key is the SO's",
                before.describe(),
                crate::names::attr_name(a.ty)
            );
            return Err(Error::AttributeReadOnly(a.ty));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Attr;

    fn key(extra: Vec<Attr>) -> Object {
        let mut t = vec![
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attr::ulong(CKA_KEY_TYPE, CKK_AES),
            Attr::new(CKA_VALUE, vec![1; 16]),
        ];
        t.extend(extra);
        Object::create(&Template(t)).expect("key")
    }

    #[test]
    fn a_default_key_wraps_but_does_not_undo_its_wraps_through_decrypt() {
        let k = key(vec![]);
        assert_eq!(check_cipher_use(&k, CKM_AES_KEY_WRAP, CKA_DECRYPT), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_cipher_use(&k, CKM_AES_KEY_WRAP_KWP, CKA_ENCRYPT), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_cipher_use(&k, CKM_AES_KEY_WRAP_PAD, CKA_DECRYPT), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_cipher_use(&k, CKM_AES_GCM, CKA_DECRYPT), Ok(()));
        let cipher = key(vec![Attr::bool(CKA_WRAP, false), Attr::bool(CKA_UNWRAP, false)]);
        assert_eq!(check_cipher_use(&cipher, CKM_AES_KEY_WRAP, CKA_DECRYPT), Ok(()));
    }

    #[test]
    fn a_trusted_key_never_enciphers() {
        let mut k = key(vec![]);
        k.set_computed(Attr::bool(CKA_TRUSTED, true));
        assert_eq!(check_cipher_use(&k, CKM_AES_ECB, CKA_DECRYPT), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_cipher_use(&k, CKM_AES_GCM, CKA_ENCRYPT), Err(Error::KeyFunctionNotPermitted));
        assert_eq!(check_cipher_use(&k, CKM_AES_GCM, CKA_SIGN), Ok(()));
    }

    #[test]
    fn trust_is_the_sos_to_give_and_to_take() {
        let mut k = key(vec![]);
        let trust = Template(vec![Attr::bool(CKA_TRUSTED, true)]);
        assert_eq!(check_set_trust(&k, &trust, false), Err(Error::AttributeReadOnly(CKA_TRUSTED)));
        assert_eq!(check_set_trust(&k, &trust, true), Ok(()));
        k.set_computed(Attr::bool(CKA_TRUSTED, true));
        assert_eq!(check_new_trust(&k, false), Err(Error::AttributeReadOnly(CKA_TRUSTED)));
        let rename = Template(vec![Attr::new(CKA_LABEL, "kek")]);
        assert_eq!(check_set_trust(&k, &rename, false), Ok(()));
        let widen = Template(vec![Attr::bool(CKA_DECRYPT, true)]);
        assert_eq!(check_set_trust(&k, &widen, false), Err(Error::AttributeReadOnly(CKA_DECRYPT)));
    }

    #[test]
    fn the_wrap_policy_reads_trust_and_the_wrap_template() {
        let kek = key(vec![Attr::new(
            CKA_WRAP_TEMPLATE,
            Template(vec![Attr::ulong(CKA_KEY_TYPE, CKK_AES)]).encode_nested().expect("nested"),
        )]);
        let target = key(vec![Attr::bool(CKA_EXTRACTABLE, true)]);
        assert_eq!(check_wrap(&kek, CKM_AES_KEY_WRAP, &target), Ok(()));
        let guarded = key(vec![Attr::bool(CKA_EXTRACTABLE, true), Attr::bool(CKA_WRAP_WITH_TRUSTED, true)]);
        assert_eq!(check_wrap(&kek, CKM_AES_KEY_WRAP, &guarded), Err(Error::KeyNotWrappable));
        let other = Object::create(&Template(vec![
            Attr::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attr::ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
            Attr::new(CKA_VALUE, vec![1; 16]),
            Attr::bool(CKA_EXTRACTABLE, true),
        ]))
        .expect("generic");
        assert_eq!(check_wrap(&kek, CKM_AES_KEY_WRAP, &other), Err(Error::KeyNotWrappable));
        let unextractable = key(vec![]);
        assert_eq!(check_wrap(&kek, CKM_AES_KEY_WRAP, &unextractable), Err(Error::KeyUnextractable));
    }
}
