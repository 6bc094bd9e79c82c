//! `mechanism/`: the cryptography, one file per mechanism family, each contributing its
//! rows to the [`registry`].
//!
//! This layer speaks bytes and typed parameters only: it never sees a pointer (the C ABI
//! decodes `CK_MECHANISM` by the row's parameter shape into a [`Mechanism`]), an object
//! or a session (the session checks class, type and usage against the row's key needs
//! and hands the row's operation a [`KeyView`]). Crate calls stay inside this folder
//! behind narrow per-family functions, so a second backend can replace a family without
//! touching the layers above.

pub mod aes_block;
pub mod aes_cmac;
pub mod aes_ctr;
pub mod aes_derive;
pub mod aes_gcm;
pub mod aes_kw;
pub mod backend;
pub mod byok;
pub mod concat;
pub mod ec;
pub mod ecdh;
pub mod ecdsa;
pub mod eddsa;
pub mod hash;
pub mod hkdf;
pub mod hmac;
pub mod hybrid_kem;
pub mod kbkdf;
pub mod mldsa;
pub mod mlkem;
pub mod primitives;
pub mod records;
pub mod registry;
pub mod rsa;
pub mod rsa_enc;
pub mod rsa_sign;
pub mod sealed_box;
pub mod secret_key;
pub mod shamir;
pub mod xwing;

use cryptoki_sys::*;

use crate::error::Result;
pub use hash::HashAlg;
pub use hkdf::{HkdfParams, HkdfSalt};
pub use registry::{entry, registry, KeyView, MechEntry, Prepared};

/// `CK_GCM_PARAMS`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmParams {
    /// The IV (nonce).
    pub iv: Vec<u8>,
    /// Additional authenticated data.
    pub aad: Vec<u8>,
    /// Tag length in bytes.
    pub tag_len: usize,
}

/// `CK_ECDH1_DERIVE_PARAMS`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdhParams {
    /// `CKD_NULL` or `CKD_SHA256_KDF`.
    pub kdf: CK_EC_KDF_TYPE,
    /// KDF shared data (empty for `CKD_NULL`).
    pub shared_data: Vec<u8>,
    /// The peer's public point (raw uncompressed, or DER OCTET STRING).
    pub public_data: Vec<u8>,
}

/// `CK_AES_CTR_PARAMS`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrParams {
    /// How many low-order bits of the counter block count (1..=128).
    pub counter_bits: u32,
    /// The initial counter block.
    pub block: [u8; 16],
}

/// `CK_RSA_PKCS_PSS_PARAMS`, decoded: MGF1 always uses `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PssParams {
    /// `hashAlg` (and the MGF1 hash).
    pub hash: HashAlg,
    /// `sLen` in bytes.
    pub salt_len: usize,
}

/// `CK_RSA_PKCS_OAEP_PARAMS`, decoded: MGF1 always uses `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaepParams {
    /// `hashAlg` (and the MGF1 hash).
    pub hash: HashAlg,
    /// The label (`CKZ_DATA_SPECIFIED` source data), possibly empty.
    pub label: Vec<u8>,
}

/// A mechanism with its parameter decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// `CKM_AES_KEY_GEN`.
    AesKeyGen,
    /// `CKM_GENERIC_SECRET_KEY_GEN`.
    GenericSecretKeyGen,
    /// An HMAC key generator (`CKM_SHA_1_KEY_GEN` … `CKM_SHA3_512_KEY_GEN`), by its type.
    HmacKeyGen(CK_MECHANISM_TYPE),
    /// `CKM_AES_GCM`.
    AesGcm(GcmParams),
    /// `CKM_AES_KEY_WRAP` (RFC 3394, default IV).
    AesKeyWrap,
    /// `CKM_AES_KEY_WRAP_KWP` (RFC 5649, default ICV).
    AesKeyWrapPad,
    /// `CKM_AES_KEY_WRAP_PAD` (0x210A): the same RFC 5649 wrap as
    /// [`Mechanism::AesKeyWrapPad`], kept apart only so its type is the one the caller
    /// sent (SoftHSM2 and OpenSC run this code point as KWP, and clients still send it).
    AesKeyWrapPadLegacy,
    /// `CKM_AES_ECB`.
    AesEcb,
    /// `CKM_AES_CBC` with its IV.
    AesCbc([u8; 16]),
    /// `CKM_AES_CBC_PAD` with its IV.
    AesCbcPad([u8; 16]),
    /// `CKM_AES_CTR`.
    AesCtr(CtrParams),
    /// `CKM_AES_CMAC` (`None`) and `CKM_AES_CMAC_GENERAL` (the tag length).
    AesCmac(Option<usize>),
    /// `CKM_SHA_1`, `CKM_SHA224` … `CKM_SHA512`, `CKM_SHA3_*`.
    Digest(HashAlg),
    /// `CKM_*_HMAC` (`mac_len: None`) and `CKM_*_HMAC_GENERAL`.
    Hmac {
        /// The hash.
        hash: HashAlg,
        /// The `_GENERAL` tag length.
        mac_len: Option<usize>,
    },
    /// `CKM_SHA*_KEY_DERIVATION`.
    HashKeyDerivation(HashAlg),
    /// `CKM_CONCATENATE_BASE_AND_KEY`: the base key's value, then the value of this key.
    ConcatBaseAndKey(CK_OBJECT_HANDLE),
    /// `CKM_CONCATENATE_BASE_AND_DATA`: the base key's value, then the data.
    ConcatBaseAndData(Vec<u8>),
    /// `CKM_CONCATENATE_DATA_AND_BASE`: the data, then the base key's value.
    ConcatDataAndBase(Vec<u8>),
    /// `CKM_XOR_BASE_AND_DATA`: the base key's value XOR the data.
    XorBaseAndData(Vec<u8>),
    /// `CKM_EXTRACT_KEY_FROM_KEY`: bits of the base key from this bit position on.
    ExtractKeyFromKey(CK_ULONG),
    /// `CKM_AES_ECB_ENCRYPT_DATA`: the data encrypted under the base AES key.
    AesEcbEncryptData(Vec<u8>),
    /// `CKM_AES_CBC_ENCRYPT_DATA`: the data CBC-encrypted under the base AES key.
    AesCbcEncryptData {
        /// The IV.
        iv: [u8; 16],
        /// The data (whole blocks).
        data: Vec<u8>,
    },
    /// `CKM_HKDF_DERIVE` (RFC 5869).
    HkdfDerive(HkdfParams),
    /// `CKM_HKDF_DATA`: RFC 5869 into a data object's `CKA_VALUE`.
    HkdfData(HkdfParams),
    /// `CKM_HKDF_KEY_GEN`: a `CKK_HKDF` key.
    HkdfKeyGen,
    /// `CKM_SP800_108_COUNTER_KDF`, `_FEEDBACK_KDF` and `_DOUBLE_PIPELINE_KDF`.
    Kbkdf(kbkdf::KbkdfParams),
    /// `CKM_EC_KEY_PAIR_GEN`.
    EcKeyPairGen,
    /// `CKM_ECDSA` (`None`: the caller hashes) and `CKM_ECDSA_SHA*`.
    Ecdsa(Option<HashAlg>),
    /// `CKM_ECDH1_DERIVE`.
    Ecdh1Derive(EcdhParams),
    /// `CKM_EC_EDWARDS_KEY_PAIR_GEN`.
    EdwardsKeyPairGen,
    /// `CKM_EDDSA`: Ed25519, Ed25519ctx or Ed25519ph, as its parameter says.
    Eddsa(eddsa::Variant),
    /// `CKM_RSA_PKCS_KEY_PAIR_GEN`.
    RsaKeyPairGen,
    /// `CKM_RSA_PKCS`.
    RsaPkcs,
    /// `CKM_SHA*_RSA_PKCS`.
    RsaPkcsHash(HashAlg),
    /// `CKM_RSA_PKCS_PSS` (`prehashed`) or `CKM_SHA*_RSA_PKCS_PSS`.
    RsaPss {
        /// True for `CKM_RSA_PKCS_PSS`, where the caller hashes.
        prehashed: bool,
        /// The parameters.
        params: PssParams,
    },
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep(OaepParams),
    /// `CKM_ML_KEM_KEY_PAIR_GEN`.
    MlKemKeyPairGen,
    /// `CKM_ML_KEM`.
    MlKem,
    /// `CKM_CV_XWING_KEY_PAIR_GEN`.
    XWingKeyPairGen,
    /// `CKM_CV_XWING`.
    XWing,
    /// `CKM_CV_MLKEM768_P256_KEY_PAIR_GEN` or `CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN`.
    HybridKemKeyPairGen(hybrid_kem::Variant),
    /// `CKM_CV_MLKEM768_P256` or `CKM_CV_MLKEM1024_P384`.
    HybridKem(hybrid_kem::Variant),
    /// `CKM_ML_DSA_KEY_PAIR_GEN`.
    MlDsaKeyPairGen,
    /// `CKM_ML_DSA`, `CKM_HASH_ML_DSA` and `CKM_HASH_ML_DSA_<hash>`.
    MlDsa(mldsa::SignParams),
    /// `CKM_CV_WRAP_RECORD`: a wrap record under the workspace master key.
    CvWrapRecord,
    /// `CKM_CV_REWRAP_RECORD`: re-wraps a record (with its associated data) under the
    /// newest master key version.
    CvRewrapRecord(Vec<u8>),
    /// `CKM_CV_ROTATE_MASTER`: makes a new master key version current.
    CvRotateMaster,
    /// `CKM_CV_REWRAP_STORED`: re-wraps the stored DEKs to the active version.
    CvRewrapStored,
    /// `CKM_CV_QUORUM_SPLIT`: a new KEK, split among custodians (or sealed by the root).
    CvQuorumSplit,
    /// `CKM_CV_SHARE_RECORD`: a share record to a recipient's X-Wing public key.
    CvShareRecord,
    /// `CKM_CV_IMPORT_MASTER`: a customer's key, wrapped under an import key, becomes a
    /// new master key version (BYOK).
    CvImportMaster,
    /// `CKM_CV_EXPORT_KIT`: the master key versions sealed under a recovery kit's key;
    /// the parameter is the kit id.
    CvExportKit(Vec<u8>),
}

impl Mechanism {
    /// The `CKM_*` value.
    pub fn ty(&self) -> CK_MECHANISM_TYPE {
        match self {
            Mechanism::AesKeyGen => CKM_AES_KEY_GEN,
            Mechanism::GenericSecretKeyGen => CKM_GENERIC_SECRET_KEY_GEN,
            Mechanism::HmacKeyGen(ty) => *ty,
            Mechanism::AesGcm(_) => CKM_AES_GCM,
            Mechanism::AesKeyWrap => CKM_AES_KEY_WRAP,
            Mechanism::AesKeyWrapPad => CKM_AES_KEY_WRAP_KWP,
            Mechanism::AesKeyWrapPadLegacy => CKM_AES_KEY_WRAP_PAD,
            Mechanism::AesEcb => CKM_AES_ECB,
            Mechanism::AesCbc(_) => CKM_AES_CBC,
            Mechanism::AesCbcPad(_) => CKM_AES_CBC_PAD,
            Mechanism::AesCtr(_) => CKM_AES_CTR,
            Mechanism::AesCmac(None) => CKM_AES_CMAC,
            Mechanism::AesCmac(Some(_)) => CKM_AES_CMAC_GENERAL,
            Mechanism::Digest(h) => h.digest_mech(),
            Mechanism::Hmac { hash, mac_len: None } => hash.hmac_mech(),
            Mechanism::Hmac { hash, mac_len: Some(_) } => hash.hmac_general_mech(),
            Mechanism::HashKeyDerivation(h) => h.key_derivation_mech(),
            Mechanism::ConcatBaseAndKey(_) => CKM_CONCATENATE_BASE_AND_KEY,
            Mechanism::ConcatBaseAndData(_) => CKM_CONCATENATE_BASE_AND_DATA,
            Mechanism::ConcatDataAndBase(_) => CKM_CONCATENATE_DATA_AND_BASE,
            Mechanism::XorBaseAndData(_) => CKM_XOR_BASE_AND_DATA,
            Mechanism::ExtractKeyFromKey(_) => CKM_EXTRACT_KEY_FROM_KEY,
            Mechanism::AesEcbEncryptData(_) => CKM_AES_ECB_ENCRYPT_DATA,
            Mechanism::AesCbcEncryptData { .. } => CKM_AES_CBC_ENCRYPT_DATA,
            Mechanism::HkdfDerive(_) => CKM_HKDF_DERIVE,
            Mechanism::HkdfData(_) => CKM_HKDF_DATA,
            Mechanism::HkdfKeyGen => CKM_HKDF_KEY_GEN,
            Mechanism::Kbkdf(p) => p.mode.mechanism(),
            Mechanism::EcKeyPairGen => CKM_EC_KEY_PAIR_GEN,
            Mechanism::Ecdsa(None) => CKM_ECDSA,
            Mechanism::Ecdsa(Some(h)) => ecdsa::hash_mech(*h),
            Mechanism::Ecdh1Derive(_) => CKM_ECDH1_DERIVE,
            Mechanism::EdwardsKeyPairGen => CKM_EC_EDWARDS_KEY_PAIR_GEN,
            Mechanism::Eddsa(_) => CKM_EDDSA,
            Mechanism::RsaKeyPairGen => CKM_RSA_PKCS_KEY_PAIR_GEN,
            Mechanism::RsaPkcs => CKM_RSA_PKCS,
            Mechanism::RsaPkcsHash(h) => rsa_sign::pkcs_mech(*h),
            Mechanism::RsaPss { prehashed: true, .. } => CKM_RSA_PKCS_PSS,
            Mechanism::RsaPss { prehashed: false, params } => rsa_sign::pss_mech(params.hash),
            Mechanism::RsaOaep(_) => CKM_RSA_PKCS_OAEP,
            Mechanism::MlKemKeyPairGen => CKM_ML_KEM_KEY_PAIR_GEN,
            Mechanism::MlKem => CKM_ML_KEM,
            Mechanism::XWingKeyPairGen => crate::vendor::CKM_CV_XWING_KEY_PAIR_GEN,
            Mechanism::XWing => crate::vendor::CKM_CV_XWING,
            Mechanism::HybridKemKeyPairGen(v) => v.pair_gen_mechanism(),
            Mechanism::HybridKem(v) => v.kem_mechanism(),
            Mechanism::MlDsaKeyPairGen => CKM_ML_DSA_KEY_PAIR_GEN,
            Mechanism::MlDsa(p) => p.ty,
            Mechanism::CvWrapRecord => crate::vendor::CKM_CV_WRAP_RECORD,
            Mechanism::CvRewrapRecord(_) => crate::vendor::CKM_CV_REWRAP_RECORD,
            Mechanism::CvRotateMaster => crate::vendor::CKM_CV_ROTATE_MASTER,
            Mechanism::CvRewrapStored => crate::vendor::CKM_CV_REWRAP_STORED,
            Mechanism::CvQuorumSplit => crate::vendor::CKM_CV_QUORUM_SPLIT,
            Mechanism::CvShareRecord => crate::vendor::CKM_CV_SHARE_RECORD,
            Mechanism::CvImportMaster => crate::vendor::CKM_CV_IMPORT_MASTER,
            Mechanism::CvExportKit(_) => crate::vendor::CKM_CV_EXPORT_KIT,
        }
    }

    /// The second key a derivation's parameter names (`CKM_CONCATENATE_BASE_AND_KEY`'s
    /// other key, HKDF's salt key): the session fetches it under the same checks as the
    /// base key.
    pub fn second_key(&self) -> Option<CK_OBJECT_HANDLE> {
        match self {
            Mechanism::ConcatBaseAndKey(h) => Some(*h),
            Mechanism::HkdfDerive(HkdfParams { salt: HkdfSalt::Key(h), .. })
            | Mechanism::HkdfData(HkdfParams { salt: HkdfSalt::Key(h), .. }) => Some(*h),
            _ => None,
        }
    }

    /// True for derivations whose output is the base key's own bits (concatenation, XOR,
    /// extraction): the spec makes such a key sensitive if a source key is, and
    /// unextractable if a source key is, so they cannot read a protected key back.
    pub fn copies_key_bits(&self) -> bool {
        matches!(
            self,
            Mechanism::ConcatBaseAndKey(_)
                | Mechanism::ConcatBaseAndData(_)
                | Mechanism::ConcatDataAndBase(_)
                | Mechanism::XorBaseAndData(_)
                | Mechanism::ExtractKeyFromKey(_)
        )
    }

    /// True for derivations that make a data object (`CKO_DATA`) rather than a key.
    pub fn makes_data(&self) -> bool {
        matches!(self, Mechanism::HkdfData(_))
    }

    /// The mechanism `ty` when it takes no parameter, else `None`.
    pub fn plain(ty: CK_MECHANISM_TYPE) -> Option<Mechanism> {
        Some(match ty {
            CKM_AES_KEY_GEN => Mechanism::AesKeyGen,
            CKM_GENERIC_SECRET_KEY_GEN => Mechanism::GenericSecretKeyGen,
            CKM_AES_KEY_WRAP => Mechanism::AesKeyWrap,
            CKM_AES_KEY_WRAP_KWP => Mechanism::AesKeyWrapPad,
            CKM_AES_KEY_WRAP_PAD => Mechanism::AesKeyWrapPadLegacy,
            CKM_AES_ECB => Mechanism::AesEcb,
            CKM_AES_CMAC => Mechanism::AesCmac(None),
            CKM_EC_KEY_PAIR_GEN => Mechanism::EcKeyPairGen,
            CKM_ECDSA => Mechanism::Ecdsa(None),
            CKM_EC_EDWARDS_KEY_PAIR_GEN => Mechanism::EdwardsKeyPairGen,
            CKM_EDDSA => Mechanism::Eddsa(eddsa::Variant::Pure),
            CKM_RSA_PKCS_KEY_PAIR_GEN => Mechanism::RsaKeyPairGen,
            CKM_RSA_PKCS => Mechanism::RsaPkcs,
            CKM_ML_KEM_KEY_PAIR_GEN => Mechanism::MlKemKeyPairGen,
            CKM_ML_KEM => Mechanism::MlKem,
            CKM_ML_DSA_KEY_PAIR_GEN => Mechanism::MlDsaKeyPairGen,
            crate::vendor::CKM_CV_XWING_KEY_PAIR_GEN => Mechanism::XWingKeyPairGen,
            crate::vendor::CKM_CV_XWING => Mechanism::XWing,
            crate::vendor::CKM_CV_MLKEM768_P256_KEY_PAIR_GEN => {
                Mechanism::HybridKemKeyPairGen(hybrid_kem::Variant::MlKem768P256)
            }
            crate::vendor::CKM_CV_MLKEM768_P256 => Mechanism::HybridKem(hybrid_kem::Variant::MlKem768P256),
            crate::vendor::CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN => {
                Mechanism::HybridKemKeyPairGen(hybrid_kem::Variant::MlKem1024P384)
            }
            crate::vendor::CKM_CV_MLKEM1024_P384 => Mechanism::HybridKem(hybrid_kem::Variant::MlKem1024P384),
            crate::vendor::CKM_CV_WRAP_RECORD => Mechanism::CvWrapRecord,
            crate::vendor::CKM_CV_ROTATE_MASTER => Mechanism::CvRotateMaster,
            crate::vendor::CKM_CV_REWRAP_STORED => Mechanism::CvRewrapStored,
            crate::vendor::CKM_CV_QUORUM_SPLIT => Mechanism::CvQuorumSplit,
            crate::vendor::CKM_CV_SHARE_RECORD => Mechanism::CvShareRecord,
            crate::vendor::CKM_CV_IMPORT_MASTER => Mechanism::CvImportMaster,
            _ => {
                if let Some(h) = HashAlg::from_digest_mech(ty) {
                    Mechanism::Digest(h)
                } else if let Some((hash, false)) = hmac::from_mech(ty) {
                    Mechanism::Hmac { hash, mac_len: None }
                } else if let Some(h) = hash::ALL.iter().copied().find(|h| h.key_derivation_mech() == ty) {
                    Mechanism::HashKeyDerivation(h)
                } else if let Some(h) = hash::ALL.iter().copied().find(|h| ecdsa::hash_mech(*h) == ty) {
                    Mechanism::Ecdsa(Some(h))
                } else if let Some(h) = hash::ALL.iter().copied().find(|h| rsa_sign::pkcs_mech(*h) == ty) {
                    Mechanism::RsaPkcsHash(h)
                } else {
                    return None;
                }
            }
        })
    }
}

/// A streaming encryption or decryption.
pub trait Cipher: Send {
    /// Most bytes `update` can write for `input_len` input bytes.
    fn update_len(&self, input_len: usize) -> usize;
    /// Processes more input, appending any output.
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()>;
    /// Most bytes `finish` can write if `more` input bytes were processed first (0 for a
    /// plain `C_*Final`; the whole input for a one-shot `C_Encrypt`/`C_Decrypt`).
    fn final_len(&self, more: usize) -> usize;
    /// Completes the operation, appending the last output.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()>;
    /// Whether finishing after `more` further input bytes can succeed on length alone
    /// (`CKR_DATA_LEN_RANGE` / `CKR_ENCRYPTED_DATA_LEN_RANGE` if not). Checked before a
    /// one-shot or final call answers a length query, so a client that asks for the size
    /// of an impossible output learns the real error at once, as SoftHSM2 answers.
    fn check_final_len(&self, _more: usize) -> Result<()> {
        Ok(())
    }
    /// The whole operation in one call (`C_Encrypt`/`C_Decrypt`): `update` then `finish`,
    /// unless the mechanism can do it without buffering the input first.
    fn once(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.update(input, out)?;
        self.finish(out)
    }
    /// [`Cipher::once`] into the caller's buffer, which holds at least
    /// `update_len(input.len()) + final_len(input.len())` bytes; returns the length
    /// written. Mechanisms that can work in place there override it to skip a copy.
    fn once_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        let mut made = zeroize::Zeroizing::new(Vec::new());
        self.once(input, &mut made)?;
        let dest =
            out.get_mut(..made.len()).ok_or(crate::Error::Internal(crate::error::Internal::CipherOutputLength))?;
        dest.copy_from_slice(&made);
        Ok(made.len())
    }
}

/// A streaming message digest.
pub trait Digester: Send {
    /// Absorbs more data.
    fn update(&mut self, data: &[u8]);
    /// Length of the digest.
    fn output_len(&self) -> usize;
    /// The digest of everything absorbed.
    fn finish(&mut self) -> Vec<u8>;
}

/// A streaming signature (or MAC) computation.
pub trait Signer: Send {
    /// Absorbs more data.
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// Length of the signature.
    fn signature_len(&self) -> usize;
    /// The signature over everything absorbed.
    fn finish(&mut self) -> Result<Vec<u8>>;
}

/// A streaming signature (or MAC) check.
pub trait Verifier: Send {
    /// Absorbs more data.
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// Checks `signature` over everything absorbed.
    fn finish(&mut self, signature: &[u8]) -> Result<()>;
}

/// Checks an imported key's material and returns the attributes the token computes for
/// it: normalized encodings (EC points DER-wrapped, scalars at full length), derived
/// components (RSA CRT values, ML-KEM expanded keys). Other keys need nothing.
pub fn imported_attrs(
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
    key: &dyn registry::AttrSource,
) -> Result<Vec<registry::NewAttr>> {
    if class != CKO_PUBLIC_KEY && class != CKO_PRIVATE_KEY {
        return Ok(Vec::new());
    }
    match key_type {
        CKK_EC => ec::imported(class, key),
        CKK_EC_EDWARDS => eddsa::imported(class, key),
        CKK_RSA => rsa::imported(class, key),
        CKK_ML_KEM => mlkem::imported(class, key),
        CKK_ML_DSA => mldsa::imported(class, key),
        crate::vendor::CKK_CV_XWING => xwing::imported(class, key),
        t => match hybrid_kem::Variant::of_key_type(t) {
            Some(v) => hybrid_kem::imported(v, class, key),
            None => Ok(Vec::new()),
        },
    }
}
