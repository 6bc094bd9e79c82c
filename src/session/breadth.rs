//! Operation set-up for the mechanism breadth of issue 5: SHA-1/SHA-2/SHA-3 digests and
//! HMACs, AES ECB/CBC/CBC_PAD/CTR/CMAC, ECDSA with SHA-2 over P-256/384/521, Ed25519 and
//! RSA (PKCS#1 v1.5, PSS, OAEP).
//!
//! `crypto.rs` asks here first; `None` means "not one of these mechanisms" and the core
//! dispatch goes on. Keys are resolved through [`Ctx::key_for`], so class, type, usage
//! and `CKA_ALLOWED_MECHANISMS` checks are the same as for the core mechanisms.

use cryptoki_sys::*;

use super::crypto::secret;
use super::Ctx;
use crate::error::{Error, Result};
use crate::mechanism::{
    aes_block, aes_cmac, aes_ctr, ecdsa, eddsa, hash, hmac, rsa_enc, rsa_sign, Cipher, Digester, Mechanism, Signer,
    Verifier,
};
use rsa_sign::Scheme;

/// A cipher for `m`, or `None` if `m` is not a breadth mechanism.
pub(super) fn cipher_op(
    ctx: &Ctx,
    m: &Mechanism,
    key: CK_OBJECT_HANDLE,
    encrypt: bool,
) -> Result<Option<Box<dyn Cipher>>> {
    let usage = if encrypt { CKA_ENCRYPT } else { CKA_DECRYPT };
    let aes = || -> Result<_> { secret(&*ctx.key(key, m, CKO_SECRET_KEY, usage)?) };
    Ok(Some(match m {
        Mechanism::AesEcb => aes_block::ecb(&aes()?, encrypt)?,
        Mechanism::AesCbc(iv) => aes_block::cbc(&aes()?, *iv, false, encrypt)?,
        Mechanism::AesCbcPad(iv) => aes_block::cbc(&aes()?, *iv, true, encrypt)?,
        Mechanism::AesCtr(p) => aes_ctr::ctr(&aes()?, p, encrypt)?,
        Mechanism::RsaPkcs | Mechanism::RsaOaep(_) => {
            let padding = super::keys_rsa::wrap_padding(m).ok_or(Error::MechanismInvalid)?;
            if encrypt {
                let key = ctx.key(key, m, CKO_PUBLIC_KEY, usage)?;
                rsa_enc::encryptor(super::keys_rsa::public_key(&key)?, padding)
            } else {
                let key = ctx.key(key, m, CKO_PRIVATE_KEY, usage)?;
                rsa_enc::decryptor(super::keys_rsa::private_key(&key)?, padding)
            }
        }
        _ => return Ok(None),
    }))
}

/// The RSA signature scheme of a signing mechanism.
fn rsa_scheme(m: &Mechanism) -> Option<Scheme> {
    match m {
        Mechanism::RsaPkcs => Some(Scheme::Pkcs1(None)),
        Mechanism::RsaPkcsHash(h) => Some(Scheme::Pkcs1(Some(*h))),
        Mechanism::RsaPss { prehashed, params } => Some(Scheme::Pss { params: params.clone(), prehashed: *prehashed }),
        _ => None,
    }
}

/// A digest for `m`, or `None`.
pub(super) fn digest_op(m: &Mechanism) -> Option<Box<dyn Digester>> {
    match m {
        Mechanism::Digest(h) => Some(hash::digester(*h)),
        _ => None,
    }
}

/// A signer for `m`, or `None`.
pub(super) fn sign_op(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<Option<Box<dyn Signer>>> {
    let secret_key = || -> Result<_> { secret(&*ctx.key(key, m, CKO_SECRET_KEY, CKA_SIGN)?) };
    Ok(Some(match m {
        Mechanism::Hmac { hash, mac_len } => hmac::signer(*hash, &secret_key()?, *mac_len)?,
        Mechanism::AesCmac(len) => aes_cmac::signer(&secret_key()?, *len)?,
        Mechanism::EcdsaHash(h) => {
            let key = ctx.key(key, m, CKO_PRIVATE_KEY, CKA_SIGN)?;
            ecdsa::signer(super::keys::ec_curve(&key)?, &secret(&key)?, Some(*h))?
        }
        Mechanism::Eddsa => eddsa::signer(&secret(&*ctx.key(key, m, CKO_PRIVATE_KEY, CKA_SIGN)?)?)?,
        m if rsa_scheme(m).is_some() => {
            let scheme = rsa_scheme(m).ok_or(Error::MechanismInvalid)?;
            let key = ctx.key(key, m, CKO_PRIVATE_KEY, CKA_SIGN)?;
            rsa_sign::signer(super::keys_rsa::private_key(&key)?, scheme)?
        }
        _ => return Ok(None),
    }))
}

/// A verifier for `m`, or `None`.
pub(super) fn verify_op(ctx: &Ctx, m: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<Option<Box<dyn Verifier>>> {
    let secret_key = || -> Result<_> { secret(&*ctx.key(key, m, CKO_SECRET_KEY, CKA_VERIFY)?) };
    Ok(Some(match m {
        Mechanism::Hmac { hash, mac_len } => hmac::verifier(*hash, &secret_key()?, *mac_len)?,
        Mechanism::AesCmac(len) => aes_cmac::verifier(&secret_key()?, *len)?,
        Mechanism::EcdsaHash(h) => {
            let key = ctx.key(key, m, CKO_PUBLIC_KEY, CKA_VERIFY)?;
            let curve = super::keys::ec_curve(&key)?;
            ecdsa::verifier(curve, &super::keys::ec_point(&key, curve)?, Some(*h))?
        }
        Mechanism::Eddsa => {
            let key = ctx.key(key, m, CKO_PUBLIC_KEY, CKA_VERIFY)?;
            eddsa::verifier(key.bytes(CKA_EC_POINT).ok_or(Error::TemplateIncomplete(CKA_EC_POINT))?)?
        }
        m if rsa_scheme(m).is_some() => {
            let scheme = rsa_scheme(m).ok_or(Error::MechanismInvalid)?;
            let key = ctx.key(key, m, CKO_PUBLIC_KEY, CKA_VERIFY)?;
            rsa_sign::verifier(super::keys_rsa::public_key(&key)?, scheme)?
        }
        _ => return Ok(None),
    }))
}
