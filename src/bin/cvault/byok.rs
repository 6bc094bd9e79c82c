//! `cvault master import-key` and `cvault master import`: BYOK through the module's C ABI
//! (doc/byok.md). `import-key` makes an import key pair on the token whose private half
//! can do nothing but `CKM_CV_IMPORT_MASTER`, for good, and writes its public half for the
//! customer: RSA as a PEM SubjectPublicKeyInfo (what `openssl pkeyutl -pubin` reads),
//! ML-KEM as the raw FIPS 203 encapsulation key. `import` unwraps the customer's wrapped
//! key with it into the new active master key version; with a quorum the first attempt
//! opens an `import-key` request and the same command, once it is approved, imports.

use std::path::Path;

use collabvault_pkcs11::vendor::{CKA_CV_KEY_VERSION, CKA_CV_ORIGIN, CKM_CV_IMPORT_MASTER, CKR_CV_QUORUM_REQUIRED};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, MlKemParameterSetType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use serde_json::json;

use crate::cli::ImportKeyType;
use crate::{fail, print_json, Failure, Res, Tool};

/// The private template of an import key (doc/byok.md, section 1).
fn private_template(label: &str) -> Res<Vec<Attribute>> {
    Ok(vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Unwrap(true),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::AllowedMechanisms(vec![MechanismType::new_vendor_defined(CKM_CV_IMPORT_MASTER)?]),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
}

/// `cvault master import-key --type T --out FILE [--label L]`.
pub(crate) fn cmd_import_key(t: &Tool, kind: ImportKeyType, out: &Path, label: &str) -> Res<()> {
    let ws = t.workspace()?;
    let session = t.user_session(&ws.name)?;
    let common = [Attribute::Token(true), Attribute::Label(label.as_bytes().to_vec())];
    let (mechanism, mut public) = match kind {
        ImportKeyType::Rsa3072 | ImportKeyType::Rsa4096 => {
            let bits: u64 = if matches!(kind, ImportKeyType::Rsa3072) { 3072 } else { 4096 };
            (Mechanism::RsaPkcsKeyPairGen, vec![Attribute::ModulusBits(Ulong::from(bits)), Attribute::Encrypt(true)])
        }
        ImportKeyType::MlKem768 | ImportKeyType::MlKem1024 => {
            let set = match kind {
                ImportKeyType::MlKem768 => MlKemParameterSetType::ML_KEM_768,
                _ => MlKemParameterSetType::ML_KEM_1024,
            };
            (Mechanism::MlKemKeyPairGen, vec![Attribute::ParameterSet(set.into())])
        }
    };
    public.extend(common);
    let (public, _) = session.generate_key_pair(&mechanism, &public, &private_template(label)?)?;
    let (bytes, what) = match kind {
        ImportKeyType::Rsa3072 | ImportKeyType::Rsa4096 => {
            let n = value(&session, public, AttributeType::Modulus)?;
            let e = value(&session, public, AttributeType::PublicExponent)?;
            (pem("PUBLIC KEY", &rsa_spki(&n, &e)).into_bytes(), "a PEM RSA public key (openssl pkeyutl -pubin)")
        }
        _ => (value(&session, public, AttributeType::Value)?, "the raw ML-KEM encapsulation key (FIPS 203)"),
    };
    std::fs::write(out, bytes).map_err(|e| Failure(format!("cannot write {}: {e}", out.display())))?;
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "import_key": label, "type": kind.name(), "public_key": out}));
    } else {
        println!("{}: import key {label:?} ({}) made; {} is in {}", ws.name, kind.name(), what, out.display());
    }
    Ok(())
}

/// `cvault master import --wrapped FILE [--import-key LABEL]`.
pub(crate) fn cmd_import(t: &Tool, wrapped: &Path, label: &str) -> Res<()> {
    let ws = t.workspace()?;
    let wrapped = std::fs::read(wrapped).map_err(|e| Failure(format!("cannot read {}: {e}", wrapped.display())))?;
    let session = t.user_session(&ws.name)?;
    let found = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label.as_bytes().to_vec())])?;
    let Some(key) = found.first() else {
        return fail(format!("no import key {label:?} on the token (cvault master import-key)"));
    };
    let mechanism = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(CKM_CV_IMPORT_MASTER)?,
        None,
    ));
    let master = match session.unwrap_key(&mechanism, *key, &wrapped, &[]) {
        Ok(master) => master,
        Err(P11Error::Pkcs11(RvError::VendorDefined(CKR_CV_QUORUM_REQUIRED), _)) => {
            return fail(format!(
                "{}: importing a key needs the quorum: an import-key request is open (cvault quorum status); once \
                 the custodians approved it (cvault quorum approve --request N), run the same import again",
                ws.name
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let version = value(&session, master, AttributeType::VendorDefined(CKA_CV_KEY_VERSION))?;
    let version = u64::from_ne_bytes(version.as_slice().try_into().map_err(|_| Failure("CKA_CV_KEY_VERSION".into()))?);
    let origin =
        String::from_utf8_lossy(&value(&session, master, AttributeType::VendorDefined(CKA_CV_ORIGIN))?).into_owned();
    if t.global.json() {
        print_json(&json!({"workspace": ws.name, "version": version, "origin": origin}));
    } else {
        println!("{}: v{version} imported ({origin}); it is the active version", ws.name);
    }
    Ok(())
}

/// One attribute's bytes.
fn value(session: &Session, object: ObjectHandle, ty: AttributeType) -> Res<Vec<u8>> {
    match session.get_attributes(object, &[ty])?.into_iter().next() {
        Some(
            Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Value(v)
            | Attribute::VendorDefined((_, v)),
        ) => Ok(v),
        _ => fail(format!("the token did not return {ty:?}")),
    }
}

/// A DER length.
fn der_len(len: usize, out: &mut Vec<u8>) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            // At most size_of::<usize>() bytes.
            out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(8));
            out.extend(bytes);
        }
    }
}

/// A DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

/// The SubjectPublicKeyInfo (RFC 5280, RFC 8017 A.1.1) of the RSA key (`n`, `e`).
fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    // rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
    const ALGORITHM: &[u8] =
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let key = der(0x30, &[der_uint(n), der_uint(e)].concat());
    let bits = der(0x03, &[&[0u8][..], &key].concat());
    der(0x30, &[ALGORITHM, &bits].concat())
}

/// PEM (RFC 7468) of `der` under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_is_rfc4648_base64_in_64_character_lines() {
        // RFC 4648 section 10 vectors.
        for (input, want) in
            [("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(pem("X", input.as_bytes()), format!("-----BEGIN X-----\n{want}\n-----END X-----\n"));
        }
        let long = pem("X", &[0u8; 60]);
        assert_eq!(long.lines().nth(1).map(str::len), Some(64));
    }

    #[test]
    fn der_integers_and_lengths() {
        assert_eq!(der_uint(&[0x00, 0x01, 0x00, 0x01]), vec![0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        let mut out = Vec::new();
        der_len(384, &mut out);
        assert_eq!(out, vec![0x82, 0x01, 0x80]);
    }
}
