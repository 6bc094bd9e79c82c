//! The mechanism registry: one row per mechanism, holding everything the layers above
//! need to run it — what `C_GetMechanismInfo` reports, which keys it takes, the shape of
//! its parameter, how to build the typed [`Mechanism`] from that parameter, and its
//! operations as plain functions over a [`KeyView`].
//!
//! Adding a mechanism is adding a row to its family file: the C ABI decodes the
//! parameter by the row's [`ParamShape`], and the session runs the row's operation after
//! fetching the key the row names. Nothing here sees an object, a session or a pointer.

use std::any::Any;
use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{Cipher, CtrParams, Digester, EcdhParams, GcmParams, Mechanism, Signer, Verifier};
use crate::error::{Error, Result};

/// What `C_GetMechanismInfo` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechInfo {
    /// Smallest key, in the unit the spec uses for the family (bytes or bits).
    pub min_key: CK_ULONG,
    /// Largest key.
    pub max_key: CK_ULONG,
    /// `CKF_*` operation flags.
    pub flags: CK_FLAGS,
}

/// The keys a mechanism runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNeed {
    /// No key (digests, key generation).
    None,
    /// A secret key of one of these types.
    Secret(&'static [CK_KEY_TYPE]),
    /// A key pair of one of these types: the public half encrypts, verifies, wraps and
    /// encapsulates; the private half does the rest.
    Pair(&'static [CK_KEY_TYPE]),
    /// A master key version of the workspace hierarchy (the vendor record mechanisms).
    Master,
    /// A key pair of one of these types whose public half receives share records and
    /// whose private half opens them (`CKM_CV_SHARE_RECORD`, run by the session's record
    /// paths like the master key rows).
    Recipient(&'static [CK_KEY_TYPE]),
}

/// The layout of a mechanism's `pParameter`, which the C ABI decodes into a [`Param`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamShape {
    /// No parameter (any given one is ignored, as the spec's mechanisms without
    /// parameters are commonly called with stray ones).
    None,
    /// Raw bytes, passed on as they are.
    Bytes,
    /// `CK_GCM_PARAMS` (either header layout).
    Gcm,
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh,
    /// A 16-byte IV.
    Iv16,
    /// `CK_AES_CTR_PARAMS`.
    Ctr,
    /// `CK_MAC_GENERAL_PARAMS` (a `CK_ULONG`).
    MacLen,
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss,
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep,
    /// Nothing, or `CK_EDDSA_PARAMS`.
    Eddsa,
    /// `CK_KEY_DERIVATION_STRING_DATA`, decoded to its bytes.
    StringData,
    /// A `CK_ULONG` (`CK_EXTRACT_PARAMS`) or a `CK_OBJECT_HANDLE`.
    Ulong,
    /// `CK_AES_CBC_ENCRYPT_DATA_PARAMS`.
    AesCbcData,
    /// `CK_HKDF_PARAMS`.
    Hkdf,
    /// Nothing, or `CK_SIGN_ADDITIONAL_CONTEXT`.
    SignContext,
    /// `CK_HASH_SIGN_ADDITIONAL_CONTEXT`.
    HashSignContext,
    /// `CK_SP800_108_KDF_PARAMS` (counter and double-pipeline KBKDF).
    Kbkdf,
    /// `CK_SP800_108_FEEDBACK_KDF_PARAMS`.
    KbkdfFeedback,
}

/// A mechanism parameter decoded by its [`ParamShape`], before the row checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// No parameter.
    None,
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// `CK_GCM_PARAMS`.
    Gcm(GcmParams),
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh(EcdhParams),
    /// A 16-byte IV.
    Iv16([u8; 16]),
    /// `CK_AES_CTR_PARAMS`.
    Ctr(CtrParams),
    /// A MAC length in bytes.
    MacLen(usize),
    /// `CK_RSA_PKCS_PSS_PARAMS`: hash and MGF as given, salt length.
    Pss {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `sLen`.
        salt_len: usize,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS`, its source checked.
    Oaep {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// The label.
        label: Vec<u8>,
    },
    /// A `CK_ULONG` parameter.
    Ulong(CK_ULONG),
    /// `CK_AES_CBC_ENCRYPT_DATA_PARAMS`.
    AesCbcData {
        /// `iv`.
        iv: [u8; 16],
        /// The data.
        data: Vec<u8>,
    },
    /// `CK_HKDF_PARAMS`, its pointers read.
    Hkdf {
        /// `bExtract`.
        extract: bool,
        /// `bExpand`.
        expand: bool,
        /// `prfHashMechanism`.
        prf: CK_MECHANISM_TYPE,
        /// `ulSaltType`.
        salt_type: CK_ULONG,
        /// The salt bytes (`CKF_HKDF_SALT_DATA`).
        salt: Vec<u8>,
        /// `hSaltKey` (`CKF_HKDF_SALT_KEY`).
        salt_key: CK_OBJECT_HANDLE,
        /// The info bytes.
        info: Vec<u8>,
    },
    /// `CK_EDDSA_PARAMS`: pre-hash flag and context.
    Eddsa {
        /// `phFlag`.
        prehash: bool,
        /// The context (`pContextData`, `ulContextDataLen` bytes).
        context: Vec<u8>,
    },
    /// `CK_SIGN_ADDITIONAL_CONTEXT` (`hash: None`) or `CK_HASH_SIGN_ADDITIONAL_CONTEXT`.
    SignContext {
        /// `hedgeVariant`.
        hedge: CK_HEDGE_TYPE,
        /// The context string.
        context: Vec<u8>,
        /// `hash`, of the pre-hash form.
        hash: Option<CK_MECHANISM_TYPE>,
    },
    /// `CK_SP800_108_KDF_PARAMS` or `CK_SP800_108_FEEDBACK_KDF_PARAMS`, its data
    /// parameters read (the additional keys' templates stay with the C ABI, which makes
    /// and reports those keys).
    Kbkdf {
        /// `prfType`.
        prf: CK_MECHANISM_TYPE,
        /// `pDataParams`, each read by its type.
        data: Vec<super::kbkdf::DataParam>,
        /// The feedback IV (`None` for the other layout).
        iv: Option<Vec<u8>>,
        /// `ulAdditionalDerivedKeys`.
        additional_keys: usize,
    },
}

/// The attributes of a key, as a mechanism reads them: bytes only. Implemented by the
/// object layer's objects and templates.
pub trait AttrSource {
    /// The raw value of attribute `ty`.
    fn attr(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]>;
    /// Attribute `ty` as a `CK_ULONG`; an error if it has the wrong size.
    fn attr_ulong(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>>;

    /// Attribute `ty`, which the mechanism cannot do without.
    fn required(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
        self.attr(ty).ok_or(Error::TemplateIncomplete(ty))
    }
}

/// A key a mechanism runs with.
pub trait KeyView: AttrSource {
    /// The secret value (`CKA_VALUE` of a secret or private key); absent while the
    /// store is locked.
    fn secret(&self) -> Result<Zeroizing<Vec<u8>>>;
    /// What mechanisms prepared from this key before.
    fn prepared(&self) -> &Prepared;
}

/// Key material a mechanism prepared from a key's value (an expanded AES key schedule, a
/// parsed RSA or EC key), kept with the key so repeated operations skip the preparation.
/// It lives exactly as long as the key object holding it (a destroyed key, a closed
/// session, a logout drop it, and the prepared values zeroize themselves); a copied or
/// changed object starts without, so it never outlives or misdescribes its value.
#[derive(Default)]
pub struct Prepared(parking_lot::RwLock<Vec<(u64, Arc<dyn Any + Send + Sync>)>>);

impl Prepared {
    /// The prepared value named `tag` (the mechanism and its variant), made by `make`
    /// on first use.
    pub fn get_or_make<T: Any + Send + Sync>(&self, tag: u64, make: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        if let Some(found) = self.find::<T>(tag) {
            return Ok(found);
        }
        let made = Arc::new(make()?);
        self.0.write().push((tag, made.clone()));
        Ok(made)
    }

    fn find<T: Any + Send + Sync>(&self, tag: u64) -> Option<Arc<T>> {
        // Read-mostly: threads using one key share it without waiting for each other.
        let entries = self.0.read();
        let (_, value) = entries.iter().find(|(t, _)| *t == tag)?;
        value.clone().downcast::<T>().ok()
    }
}

impl Clone for Prepared {
    fn clone(&self) -> Self {
        Prepared::default()
    }
}

impl PartialEq for Prepared {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Prepared {}

/// One attribute of a key a mechanism made, zeroized on drop.
#[derive(Debug)]
pub struct NewAttr {
    /// The attribute type.
    pub ty: CK_ATTRIBUTE_TYPE,
    /// Its value.
    pub value: Zeroizing<Vec<u8>>,
}

impl NewAttr {
    /// An attribute with a byte value.
    pub fn bytes(ty: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) -> NewAttr {
        NewAttr { ty, value: Zeroizing::new(value.into()) }
    }

    /// A `CK_ULONG` attribute, in the platform's encoding as the C ABI carries it.
    pub fn ulong(ty: CK_ATTRIBUTE_TYPE, value: CK_ULONG) -> NewAttr {
        NewAttr::bytes(ty, value.to_ne_bytes().to_vec())
    }
}

/// The key-specific attributes of a new key pair, class and key type included.
#[derive(Debug)]
pub struct NewPair {
    /// The public half.
    pub public: Vec<NewAttr>,
    /// The private half.
    pub private: Vec<NewAttr>,
}

impl NewPair {
    /// A pair whose halves both start with their class and `key_type`.
    pub fn of_type(key_type: CK_KEY_TYPE) -> NewPair {
        let head = |class| vec![NewAttr::ulong(CKA_CLASS, class), NewAttr::ulong(CKA_KEY_TYPE, key_type)];
        NewPair { public: head(CKO_PUBLIC_KEY), private: head(CKO_PRIVATE_KEY) }
    }
}

/// The secret key an unwrap must produce, as far as the template says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnwrapTarget {
    /// `CKA_KEY_TYPE`.
    pub key_type: CK_KEY_TYPE,
    /// `CKA_VALUE_LEN`, if given.
    pub value_len: Option<usize>,
}

/// A cipher started with a key.
pub type CipherFn = fn(&Mechanism, &dyn KeyView) -> Result<Box<dyn Cipher>>;
/// A signer (or MAC) started with a key.
pub type SignFn = fn(&Mechanism, &dyn KeyView) -> Result<Box<dyn Signer>>;
/// A verifier started with a key.
pub type VerifyFn = fn(&Mechanism, &dyn KeyView) -> Result<Box<dyn Verifier>>;
/// A digest.
pub type DigestFn = fn(&Mechanism) -> Result<Box<dyn Digester>>;
/// A new secret key of the given length: its key type and value.
pub type GenerateFn = fn(&Mechanism, Option<usize>) -> Result<(CK_KEY_TYPE, Zeroizing<Vec<u8>>)>;
/// A new key pair from the public and private templates.
pub type PairFn = fn(&Mechanism, &dyn AttrSource, &dyn AttrSource) -> Result<NewPair>;
/// Derives `len` bytes (or the mechanism's natural length) from a base key.
pub type DeriveFn = fn(&Mechanism, &dyn KeyView, Option<usize>) -> Result<Zeroizing<Vec<u8>>>;
/// Derives `len` bytes from a base key and the second key its parameter names
/// ([`Mechanism::second_key`]).
pub type DeriveWithFn = fn(&Mechanism, &dyn KeyView, &dyn KeyView, Option<usize>) -> Result<Zeroizing<Vec<u8>>>;
/// Derives several keys at once, of these lengths (the primary key first).
pub type DeriveKeysFn = fn(&Mechanism, &dyn KeyView, &[usize]) -> Result<Vec<Zeroizing<Vec<u8>>>>;
/// Wraps a key value under the wrapping key.
pub type WrapFn = fn(&Mechanism, &dyn KeyView, &[u8]) -> Result<Vec<u8>>;
/// Unwraps a key value for the target the template describes.
pub type UnwrapFn = fn(&Mechanism, &dyn KeyView, &[u8], UnwrapTarget) -> Result<Zeroizing<Vec<u8>>>;
/// A ciphertext and the shared secret, for a public key.
pub type EncapsulateFn = fn(&dyn KeyView) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)>;
/// The shared secret of a ciphertext, with the private key.
pub type DecapsulateFn = fn(&dyn KeyView, &[u8]) -> Result<Zeroizing<Vec<u8>>>;

/// Key wrapping under a row's key.
#[derive(Debug, Clone, Copy)]
pub struct WrapOps {
    /// The wrapped length of a `len`-byte key under the wrapping key.
    pub wrapped_len: fn(&Mechanism, &dyn KeyView, usize) -> Result<usize>,
    /// Wraps a key value.
    pub wrap: WrapFn,
    /// Unwraps a key value for the target the template describes.
    pub unwrap: UnwrapFn,
}

/// Key encapsulation with a row's key pair.
#[derive(Debug, Clone, Copy)]
pub struct KemOps {
    /// The ciphertext length for a public key.
    pub ciphertext_len: fn(&dyn KeyView) -> Result<usize>,
    /// A ciphertext and the shared secret, for a public key.
    pub encapsulate: EncapsulateFn,
    /// The shared secret of a ciphertext, with the private key.
    pub decapsulate: DecapsulateFn,
}

/// What a mechanism does; `None` where it does not.
#[derive(Debug, Clone, Copy)]
pub struct Ops {
    /// `C_EncryptInit`.
    pub encrypt: Option<CipherFn>,
    /// `C_DecryptInit`.
    pub decrypt: Option<CipherFn>,
    /// `C_SignInit`.
    pub sign: Option<SignFn>,
    /// `C_VerifyInit`.
    pub verify: Option<VerifyFn>,
    /// `C_DigestInit`.
    pub digest: Option<DigestFn>,
    /// `C_GenerateKey`.
    pub generate: Option<GenerateFn>,
    /// `C_GenerateKeyPair`.
    pub generate_pair: Option<PairFn>,
    /// `C_WrapKey` / `C_UnwrapKey`.
    pub wrap: Option<WrapOps>,
    /// `C_DeriveKey`.
    pub derive: Option<DeriveFn>,
    /// `C_DeriveKey` when the parameter names a second key.
    pub derive_with: Option<DeriveWithFn>,
    /// `C_DeriveKey` for mechanisms that make several keys in one call (the SP 800-108
    /// KDFs' additional derived keys).
    pub derive_keys: Option<DeriveKeysFn>,
    /// `C_EncapsulateKey` / `C_DecapsulateKey`.
    pub kem: Option<KemOps>,
}

impl Ops {
    /// No operations: the start of every row's `Ops { .., ..Ops::NONE }`.
    pub const NONE: Ops = Ops {
        encrypt: None,
        decrypt: None,
        sign: None,
        verify: None,
        digest: None,
        generate: None,
        generate_pair: None,
        wrap: None,
        derive: None,
        derive_with: None,
        derive_keys: None,
        kem: None,
    };
}

/// One row of the registry.
#[derive(Debug, Clone, Copy)]
pub struct MechEntry {
    /// The mechanism.
    pub ty: CK_MECHANISM_TYPE,
    /// What `C_GetMechanismInfo` reports.
    pub info: MechInfo,
    /// The keys it runs with.
    pub key: KeyNeed,
    /// The layout of its parameter.
    pub param: ParamShape,
    /// The typed mechanism from its decoded parameter (checks the parameter).
    pub build: fn(CK_MECHANISM_TYPE, Param) -> Result<Mechanism>,
    /// What it does.
    pub ops: Ops,
}

impl MechEntry {
    /// The row's operation, or `CKR_MECHANISM_INVALID` for a mechanism that does not
    /// offer it (a digest given to `C_EncryptInit`, say).
    pub fn op<T>(&self, pick: impl FnOnce(&Ops) -> Option<T>) -> Result<T> {
        pick(&self.ops).ok_or(Error::MechanismInvalid)
    }
}

/// Every mechanism the token implements, family by family.
pub fn registry() -> impl Iterator<Item = &'static MechEntry> {
    use super::*;
    [
        secret_key::ENTRIES,
        aes_gcm::ENTRIES,
        aes_kw::ENTRIES,
        aes_block::ENTRIES,
        aes_ctr::ENTRIES,
        aes_cmac::ENTRIES,
        hash::ENTRIES,
        hmac::ENTRIES,
        concat::ENTRIES,
        aes_derive::ENTRIES,
        hkdf::ENTRIES,
        kbkdf::ENTRIES,
        ec::ENTRIES,
        ecdsa::ENTRIES,
        ecdh::ENTRIES,
        eddsa::ENTRIES,
        rsa::ENTRIES,
        rsa_sign::ENTRIES,
        rsa_enc::ENTRIES,
        mlkem::ENTRIES,
        mldsa::ENTRIES,
        xwing::ENTRIES,
        hybrid_kem::ENTRIES,
        records::ENTRIES,
        byok::ENTRIES,
    ]
    .into_iter()
    .flatten()
}

/// The registry row for `ty`.
pub fn entry(ty: CK_MECHANISM_TYPE) -> Option<&'static MechEntry> {
    registry().find(|e| e.ty == ty)
}

/// The row of a mechanism the caller named, or `CKR_MECHANISM_INVALID`.
pub fn row(ty: CK_MECHANISM_TYPE) -> Result<&'static MechEntry> {
    entry(ty).ok_or(Error::MechanismInvalid)
}

/// The `CKA_PARAMETER_SET` a key pair's templates name (either, or both alike), for the
/// ML-KEM and ML-DSA generators.
pub fn pair_parameter_set(public: &dyn AttrSource, private: &dyn AttrSource) -> Result<CK_ULONG> {
    match (public.attr_ulong(CKA_PARAMETER_SET)?, private.attr_ulong(CKA_PARAMETER_SET)?) {
        (Some(a), Some(b)) if a != b => Err(Error::TemplateInconsistent(CKA_PARAMETER_SET)),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(Error::TemplateIncomplete(CKA_PARAMETER_SET)),
    }
}

/// [`MechEntry::build`] for mechanisms whose only form is their type: the parameter
/// carries nothing they use.
pub fn build_plain(ty: CK_MECHANISM_TYPE, _: Param) -> Result<Mechanism> {
    Mechanism::plain(ty).ok_or(Error::MechanismInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mechanism_is_registered_once() {
        let mut types: Vec<_> = registry().map(|e| e.ty).collect();
        let n = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), n);
    }

    /// The flags `C_GetMechanismInfo` reports are the operations the row really has, so
    /// a client is never told of an operation that answers `CKR_MECHANISM_INVALID`.
    #[test]
    fn reported_flags_match_the_operations() {
        for e in registry() {
            let o = &e.ops;
            let vendor = session_runs(e);
            let has = |flag: CK_FLAGS| e.info.flags & flag != 0;
            let name = format!("{:#x}", e.ty);
            if vendor {
                continue;
            }
            assert_eq!(has(CKF_ENCRYPT), o.encrypt.is_some(), "{name} encrypt");
            assert_eq!(has(CKF_DECRYPT), o.decrypt.is_some(), "{name} decrypt");
            assert_eq!(has(CKF_SIGN), o.sign.is_some(), "{name} sign");
            assert_eq!(has(CKF_VERIFY), o.verify.is_some(), "{name} verify");
            assert_eq!(has(CKF_DIGEST), o.digest.is_some(), "{name} digest");
            assert_eq!(has(CKF_GENERATE), o.generate.is_some(), "{name} generate");
            assert_eq!(has(CKF_GENERATE_KEY_PAIR), o.generate_pair.is_some(), "{name} pair");
            assert_eq!(has(CKF_WRAP) || has(CKF_UNWRAP), o.wrap.is_some(), "{name} wrap");
            let derives = o.derive.is_some() || o.derive_with.is_some() || o.derive_keys.is_some();
            assert_eq!(has(CKF_DERIVE), derives, "{name} derive");
            assert_eq!(has(CKF_ENCAPSULATE), o.kem.is_some(), "{name} kem");
        }
    }

    /// Rows whose work the session runs itself, not through `ops`: the hierarchy's record
    /// mechanisms, share records, and the recovery kit export (an AES wrapping key, but
    /// the master keys are what it wraps).
    fn session_runs(e: &MechEntry) -> bool {
        matches!(e.key, KeyNeed::Master | KeyNeed::Recipient(_)) || e.ty == crate::vendor::CKM_CV_EXPORT_KIT
    }

    /// Every keyed operation names the keys it takes.
    #[test]
    fn keyed_operations_name_their_key() {
        for e in registry().filter(|e| !session_runs(e)) {
            let o = &e.ops;
            let keyed = o.encrypt.is_some() || o.sign.is_some() || o.wrap.is_some() || o.derive.is_some();
            let keyed = keyed || o.derive_with.is_some() || o.derive_keys.is_some();
            let keyed = keyed || o.kem.is_some();
            assert_eq!(keyed, !matches!(e.key, KeyNeed::None), "{:#x}", e.ty);
        }
    }

    /// A mechanism without a parameter builds from its type alone.
    #[test]
    fn plain_rows_build_from_their_type() {
        for e in registry().filter(|e| e.param == ParamShape::None) {
            let m = (e.build)(e.ty, Param::None).expect("builds");
            assert_eq!(m.ty(), e.ty);
        }
    }
}
