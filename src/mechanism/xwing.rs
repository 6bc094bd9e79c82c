//! `CKM_CV_XWING_KEY_PAIR_GEN` and `CKM_CV_XWING`: the X-Wing hybrid KEM (ML-KEM-768 and
//! X25519 under a SHA3-256 combiner, draft-connolly-cfrg-xwing-kem-06), over RustCrypto's
//! `x-wing` crate (which shares the module's `ml-kem`), as vendor key type `CKK_CV_XWING`.
//!
//! A shared secret stays secret while either half holds: a later break of ML-KEM, or of
//! X25519, alone does not reveal it. Encodings are the draft's: a public key's
//! `CKA_VALUE` is the 1,216-byte encapsulation key (`pk_M || pk_X`); a private key's
//! `CKA_VALUE` is the 32-byte decapsulation key (the seed every component is expanded
//! from). A ciphertext is 1,120 bytes and the shared secret 32. A well-formed but wrong
//! ciphertext is not an error: ML-KEM's implicit rejection yields an unrelated secret, as
//! the draft keeps it.

use cryptoki_sys::*;
use x_wing::{Decapsulate, Encapsulate, EncapsulationKey, KeyExport};
use zeroize::Zeroizing;

use super::registry::{
    build_plain, AttrSource, KemOps, KeyNeed, KeyView, MechEntry, MechInfo, NewAttr, NewPair, Ops, ParamShape,
};
use super::Mechanism;
use crate::error::{Error, Result};
use crate::vendor::{CKK_CV_XWING, CKM_CV_XWING, CKM_CV_XWING_KEY_PAIR_GEN};

/// The draft this implements (also in `include/collabvault.h` and the README).
pub const DRAFT: &str = "draft-connolly-cfrg-xwing-kem-06";

/// Registry rows (no key sizes: X-Wing has one parameter set).
pub const ENTRIES: &[MechEntry] = &[
    MechEntry {
        ty: CKM_CV_XWING_KEY_PAIR_GEN,
        info: MechInfo { min_key: 0, max_key: 0, flags: CKF_GENERATE_KEY_PAIR },
        key: KeyNeed::None,
        param: ParamShape::None,
        build: build_plain,
        ops: Ops { generate_pair: Some(generate_pair_op), ..Ops::NONE },
    },
    MechEntry {
        ty: CKM_CV_XWING,
        info: MechInfo { min_key: 0, max_key: 0, flags: CKF_ENCAPSULATE | CKF_DECAPSULATE },
        key: KeyNeed::Pair(&[CKK_CV_XWING]),
        param: ParamShape::None,
        build: build_plain,
        ops: Ops {
            kem: Some(KemOps {
                ciphertext_len: |_| Ok(CIPHERTEXT_LEN),
                encapsulate: encapsulate_op,
                decapsulate: decapsulate_op,
            }),
            ..Ops::NONE
        },
    },
];

/// Encapsulation (public) key length.
pub const PUBLIC_KEY_LEN: usize = x_wing::ENCAPSULATION_KEY_SIZE;
/// Decapsulation (private) key length.
pub const PRIVATE_KEY_LEN: usize = x_wing::DECAPSULATION_KEY_SIZE;
/// Ciphertext length.
pub const CIPHERTEXT_LEN: usize = x_wing::CIPHERTEXT_SIZE;

fn generate_pair_op(_: &Mechanism, _: &dyn AttrSource, _: &dyn AttrSource) -> Result<NewPair> {
    let mut seed = Zeroizing::new([0u8; PRIVATE_KEY_LEN]);
    super::primitives::fill_random(seed.as_mut())?;
    let public = public_of(&seed);
    let mut pair = NewPair::of_type(CKK_CV_XWING);
    pair.public.push(NewAttr::bytes(CKA_VALUE, public));
    pair.private.push(NewAttr::bytes(CKA_VALUE, seed.to_vec()));
    Ok(pair)
}

/// The encapsulation key of decapsulation key `seed`.
fn public_of(seed: &[u8; PRIVATE_KEY_LEN]) -> Vec<u8> {
    use x_wing::Decapsulator as _;
    let dk = x_wing::DecapsulationKey::from(*seed);
    dk.encapsulation_key().to_bytes().to_vec()
}

fn parse_public(bytes: &[u8]) -> Result<EncapsulationKey> {
    EncapsulationKey::try_from(bytes).map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))
}

fn parse_private(bytes: &[u8]) -> Result<x_wing::DecapsulationKey> {
    let seed: [u8; PRIVATE_KEY_LEN] = bytes.try_into().map_err(|_| Error::AttributeValueInvalid(CKA_VALUE))?;
    Ok(x_wing::DecapsulationKey::from(seed))
}

/// Which decoded key a key object's cache holds.
fn cache_tag(private: bool) -> u64 {
    (CKM_CV_XWING << 8) | u64::from(private)
}

/// A ciphertext and a fresh shared secret for X-Wing public key `key`.
pub fn encapsulate_op(key: &dyn KeyView) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let ek = key.prepared().get_or_make(cache_tag(false), || parse_public(key.required(CKA_VALUE)?))?;
    let (ct, secret) = ek.encapsulate();
    Ok((ct.to_vec(), Zeroizing::new(secret.to_vec())))
}

/// The shared secret of `ciphertext` under X-Wing private key `key`.
pub fn decapsulate_op(key: &dyn KeyView, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() != CIPHERTEXT_LEN {
        return Err(Error::EncryptedDataLenRange);
    }
    let dk = key.prepared().get_or_make(cache_tag(true), || parse_private(&key.secret()?))?;
    let ct = x_wing::Ciphertext::try_from(ciphertext).map_err(|_| Error::EncryptedDataLenRange)?;
    Ok(Zeroizing::new(dk.decapsulate(&ct).to_vec()))
}

/// Import checks: a public key decodes (its ML-KEM half passes FIPS 203's modulus check);
/// a private key is a 32-byte seed.
pub fn imported(class: CK_OBJECT_CLASS, key: &dyn AttrSource) -> Result<Vec<NewAttr>> {
    match class {
        CKO_PUBLIC_KEY => parse_public(key.required(CKA_VALUE)?).map(|_| Vec::new()),
        CKO_PRIVATE_KEY => parse_private(key.required(CKA_VALUE)?).map(|_| Vec::new()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first vector of the draft's test-vectors.json (draft-connolly-cfrg-xwing-kem,
    /// spec/test-vectors.json, as published with draft 06): the public key made from `sk`.
    #[test]
    fn a_public_key_is_made_from_the_seed_as_the_draft_says() {
        let sk: [u8; 32] = hex::decode("7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26")
            .expect("hex")
            .try_into()
            .expect("32");
        let pk = public_of(&sk);
        assert_eq!(pk.len(), PUBLIC_KEY_LEN);
        assert_eq!(hex::encode(&pk[..16]), "e2236b35a8c24b39b10aa1323a96a919");
    }
}
