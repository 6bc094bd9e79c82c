//! ML-KEM encapsulation and decapsulation on the aws-lc backend (`aws_lc_rs::kem`).
//!
//! aws-lc-rs imports exactly the encodings the token stores: the FIPS 203 `ek` of a
//! public key and the expanded `dk` of a private key (`CKA_VALUE`). It checks only their
//! lengths, so the keys handed here are the stored ones, which `mlkem.rs` validated with
//! FIPS 203's modulus and hash checks at import or made itself. Key pair generation stays
//! on `ml-kem`: aws-lc-rs's generator gives no seed, and the token keeps the 64-byte seed
//! `d || z` in `CKA_SEED`. AWS-LC decapsulates with FIPS 203's implicit rejection (a
//! wrong ciphertext of the right length yields a pseudorandom secret, never an error).

use aws_lc_rs::kem::{self, AlgorithmId, Ciphertext, DecapsulationKey, EncapsulationKey};
use zeroize::Zeroizing;

use super::super::mlkem::ParamSet;
use crate::error::{Error, Internal, Result};

fn algorithm(ps: ParamSet) -> &'static kem::Algorithm<AlgorithmId> {
    match ps {
        ParamSet::MlKem512 => &kem::ML_KEM_512,
        ParamSet::MlKem768 => &kem::ML_KEM_768,
        ParamSet::MlKem1024 => &kem::ML_KEM_1024,
    }
}

/// An ML-KEM encapsulation key held by AWS-LC.
pub struct MlKemPublic(EncapsulationKey<AlgorithmId>);

impl MlKemPublic {
    /// The key of a validated `ek`; `None` if AWS-LC will not hold it.
    pub fn new(ps: ParamSet, ek: &[u8]) -> Option<MlKemPublic> {
        EncapsulationKey::new(algorithm(ps), ek).ok().map(MlKemPublic)
    }

    /// `ML-KEM.Encaps`: the ciphertext and the shared secret (AWS-LC draws `m`).
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        let (ct, secret) = self.0.encapsulate().map_err(|_| Error::Internal(Internal::KemOperation))?;
        Ok((ct.as_ref().to_vec(), Zeroizing::new(secret.as_ref().to_vec())))
    }
}

/// An ML-KEM decapsulation key held by AWS-LC (zeroized by it on drop).
pub struct MlKemPrivate {
    key: DecapsulationKey<AlgorithmId>,
    ciphertext_len: usize,
}

impl MlKemPrivate {
    /// The key of a validated expanded `dk`; `None` if AWS-LC will not hold it.
    pub fn new(ps: ParamSet, dk: &[u8]) -> Option<MlKemPrivate> {
        let key = DecapsulationKey::new(algorithm(ps), dk).ok()?;
        Some(MlKemPrivate { key, ciphertext_len: ps.ciphertext_len() })
    }

    /// `ML-KEM.Decaps` of `ciphertext`: a wrong length is `CKR_ENCRYPTED_DATA_LEN_RANGE`;
    /// a wrong ciphertext of the right length yields the implicit-rejection secret.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() != self.ciphertext_len {
            return Err(Error::EncryptedDataLenRange);
        }
        let secret =
            self.key.decapsulate(Ciphertext::from(ciphertext)).map_err(|_| Error::Internal(Internal::KemOperation))?;
        Ok(Zeroizing::new(secret.as_ref().to_vec()))
    }
}
