//! The raw column of the rows whose module path runs on the crypto backend the build
//! chose: RSA-2048 PKCS#1 v1.5 sign and verify over SHA-256 and ML-KEM-768 encapsulation
//! and decapsulation. The default build compares the module with aws-lc-rs called
//! directly (what it runs on); the `rustcrypto` build with the `rsa` and `ml-kem` crates.
//! Either way the raw call holds a pre-built key, as the module holds one per key object.

use super::{err, Res};

const MESSAGE: &[u8] = b"benchmark message for the public-key rows";

/// The raw column's name for these rows.
pub(super) const NAME: &str = if cfg!(feature = "aws-lc") { "aws-lc-rs" } else { "rsa, ml-kem" };

#[cfg(feature = "aws-lc")]
mod imp {
    use aws_lc_rs::kem::{AlgorithmId, Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};

    use super::{err, Res, MESSAGE};

    /// An RSA-2048 key pair and one signature of [`MESSAGE`].
    pub(in super::super) struct Rsa {
        pair: KeyPair,
        public: ParsedPublicKey,
        signature: Vec<u8>,
    }

    impl Rsa {
        pub(in super::super) fn new() -> Res<Rsa> {
            let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| err(e.to_string()))?;
            let public = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref())
                .map_err(|e| err(e.to_string()))?;
            let mut rsa = Rsa { pair, public, signature: Vec::new() };
            rsa.signature = rsa.sign()?;
            Ok(rsa)
        }

        pub(in super::super) fn sign(&self) -> Res<Vec<u8>> {
            let mut sig = vec![0u8; self.pair.public_modulus_len()];
            self.pair
                .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), MESSAGE, &mut sig)
                .map_err(|e| err(e.to_string()))?;
            Ok(sig)
        }

        pub(in super::super) fn verify(&self) -> Res<()> {
            self.public.verify_sig(MESSAGE, &self.signature).map_err(|e| err(e.to_string()))
        }
    }

    /// An ML-KEM-768 key pair and one ciphertext for it.
    pub(in super::super) struct MlKem {
        dk: DecapsulationKey<AlgorithmId>,
        ek: EncapsulationKey<AlgorithmId>,
        ct: Vec<u8>,
    }

    impl MlKem {
        pub(in super::super) fn new() -> Res<MlKem> {
            let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(|e| err(e.to_string()))?;
            let ek = dk.encapsulation_key().map_err(|e| err(e.to_string()))?;
            let (ct, _) = ek.encapsulate().map_err(|e| err(e.to_string()))?;
            Ok(MlKem { dk, ek, ct: ct.as_ref().to_vec() })
        }

        pub(in super::super) fn encapsulate(&self) -> Res<Vec<u8>> {
            let (ct, secret) = self.ek.encapsulate().map_err(|e| err(e.to_string()))?;
            std::hint::black_box(secret);
            Ok(ct.as_ref().to_vec())
        }

        pub(in super::super) fn decapsulate(&self) -> Res<()> {
            let secret = self.dk.decapsulate(Ciphertext::from(&self.ct[..])).map_err(|e| err(e.to_string()))?;
            std::hint::black_box(secret);
            Ok(())
        }
    }
}

#[cfg(not(feature = "aws-lc"))]
mod imp {
    use ml_kem::{Decapsulate, DecapsulationKey, Encapsulate, MlKem768};

    use super::{err, Res, MESSAGE};

    /// An RSA-2048 key pair and one signature of [`MESSAGE`].
    pub(in super::super) struct Rsa {
        key: rsa::PrivateKey,
        public: rsa::PublicKey,
        signature: Vec<u8>,
    }

    impl Rsa {
        pub(in super::super) fn new() -> Res<Rsa> {
            let key =
                rsa::PrivateKey::new(&mut crypto_common::getrandom::SysRng, 2048).map_err(|e| err(e.to_string()))?;
            let signature = key.pkcs1v15_sign::<sha2::Sha256>(MESSAGE).map_err(|e| err(e.to_string()))?;
            Ok(Rsa { public: key.to_public_key(), key, signature })
        }

        pub(in super::super) fn sign(&self) -> Res<Vec<u8>> {
            self.key.pkcs1v15_sign::<sha2::Sha256>(MESSAGE).map_err(|e| err(e.to_string()))
        }

        pub(in super::super) fn verify(&self) -> Res<()> {
            self.public.pkcs1v15_verify::<sha2::Sha256>(MESSAGE, &self.signature).map_err(|e| err(e.to_string()))
        }
    }

    /// An ML-KEM-768 key pair and one ciphertext for it.
    pub(in super::super) struct MlKem {
        dk: DecapsulationKey<MlKem768>,
        ct: ml_kem::Ciphertext<MlKem768>,
    }

    impl MlKem {
        pub(in super::super) fn new() -> Res<MlKem> {
            let dk = DecapsulationKey::<MlKem768>::from_seed(super::super::random::<64>()?.into());
            let (ct, _) = dk.encapsulation_key().encapsulate();
            Ok(MlKem { dk, ct })
        }

        pub(in super::super) fn encapsulate(&self) -> Res<Vec<u8>> {
            let (ct, secret) = self.dk.encapsulation_key().encapsulate();
            std::hint::black_box(secret);
            Ok(ct.to_vec())
        }

        pub(in super::super) fn decapsulate(&self) -> Res<()> {
            std::hint::black_box(self.dk.decapsulate(&self.ct));
            Ok(())
        }
    }
}

pub(super) use imp::{MlKem, Rsa};
