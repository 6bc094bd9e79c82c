//! The client every PKCS#11 module's rows share: [`Client`] holds one token's keys and
//! inputs and makes each operation with plain `cryptoki` calls, the same for this module,
//! SoftHSM2 and Kryoptic, so a row's columns differ only in the module behind them.

use std::hint::black_box;
use std::time::Instant;

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::{err, Batch, Res, Token, P256_OID};

/// The keys and inputs one token's rows use; every method is plain `cryptoki` calls.
pub(super) struct Client<'a> {
    pub(super) s: &'a Session,
    pub(super) gcm_key: ObjectHandle,
    pub(super) kek: ObjectHandle,
    pub(super) wrapped: Vec<u8>,
    pub(super) ec_private: ObjectHandle,
    pub(super) ec_public: ObjectHandle,
    pub(super) signature: Vec<u8>,
    pub(super) mlkem: Option<(ObjectHandle, ObjectHandle, Vec<u8>)>,
}

pub(super) fn secret_template(extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Token(false)];
    t.extend_from_slice(extra);
    t
}

/// Template for the generic secret an ECDH derivation or ML-KEM operation makes.
pub(super) fn shared_secret_template() -> Vec<Attribute> {
    secret_template(&[Attribute::KeyType(KeyType::GENERIC_SECRET), Attribute::ValueLen(32.into())])
}

impl<'a> Client<'a> {
    pub(super) fn setup(token: &'a Token, hash: &[u8]) -> Res<Client<'a>> {
        let s = &token.session;
        let aes = |extra: &[Attribute]| -> Res<ObjectHandle> {
            let mut t = secret_template(&[Attribute::KeyType(KeyType::AES), Attribute::ValueLen(32.into())]);
            t.extend_from_slice(extra);
            Ok(s.generate_key(&Mechanism::AesKeyGen, &t)?)
        };
        let gcm_key = aes(&[Attribute::Encrypt(true), Attribute::Decrypt(true)])?;
        let kek = aes(&[Attribute::Wrap(true), Attribute::Unwrap(true)])?;
        let target = aes(&[Attribute::Extractable(true), Attribute::Encrypt(true)])?;
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, target)?;

        let (ec_public, ec_private) = s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(false), Attribute::EcParams(P256_OID.to_vec()), Attribute::Verify(true)],
            &[Attribute::Token(false), Attribute::Sign(true), Attribute::Derive(true), Attribute::Sensitive(true)],
        )?;
        let signature = s.sign(&Mechanism::Ecdsa, ec_private, hash)?;
        s.verify(&Mechanism::Ecdsa, ec_public, hash, &signature)?;

        let mlkem = if token.has(MechanismType::ML_KEM)? && token.has(MechanismType::ML_KEM_KEY_PAIR_GEN)? {
            let (public, private) = s.generate_key_pair(
                &Mechanism::MlKemKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                    Attribute::Encapsulate(true),
                ],
                &[Attribute::Token(false), Attribute::Decapsulate(true)],
            )?;
            let (ciphertext, k) = s.encapsulate_key(&Mechanism::MlKem, public, &shared_secret_template())?;
            s.destroy_object(k)?;
            Some((public, private, ciphertext))
        } else {
            None
        };

        Ok(Client { s, gcm_key, kek, wrapped, ec_private, ec_public, signature, mlkem })
    }

    /// `C_EncryptInit` + `C_Encrypt` (length query, then the call) with a fresh IV.
    pub(super) fn gcm_encrypt(&self, iv_counter: &mut u64, data: &[u8]) -> Res<()> {
        *iv_counter += 1;
        let mut iv = [0u8; 12];
        iv[4..].copy_from_slice(&iv_counter.to_be_bytes());
        let params = GcmParams::new(&mut iv, &[], 128.into())?;
        let out = self.s.encrypt(&Mechanism::AesGcm(params), self.gcm_key, data)?;
        black_box(out);
        Ok(())
    }

    pub(super) fn gcm_seal_once(&self, data: &[u8]) -> Res<Vec<u8>> {
        let mut iv = [7u8; 12];
        let params = GcmParams::new(&mut iv, &[], 128.into())?;
        Ok(self.s.encrypt(&Mechanism::AesGcm(params), self.gcm_key, data)?)
    }

    pub(super) fn gcm_decrypt(&self, sealed: &[u8]) -> Res<()> {
        let mut iv = [7u8; 12];
        let params = GcmParams::new(&mut iv, &[], 128.into())?;
        black_box(self.s.decrypt(&Mechanism::AesGcm(params), self.gcm_key, sealed)?);
        Ok(())
    }

    pub(super) fn wrap(&self, target: ObjectHandle) -> Res<()> {
        black_box(self.s.wrap_key(&Mechanism::AesKeyWrap, self.kek, target)?);
        Ok(())
    }

    pub(super) fn unwrap(&self) -> Res<ObjectHandle> {
        let t = secret_template(&[Attribute::KeyType(KeyType::AES), Attribute::Encrypt(true)]);
        Ok(self.s.unwrap_key(&Mechanism::AesKeyWrap, self.kek, &self.wrapped, &t)?)
    }

    pub(super) fn sign(&self, hash: &[u8]) -> Res<()> {
        black_box(self.s.sign(&Mechanism::Ecdsa, self.ec_private, hash)?);
        Ok(())
    }

    pub(super) fn verify(&self, hash: &[u8]) -> Res<()> {
        self.s.verify(&Mechanism::Ecdsa, self.ec_public, hash, &self.signature)?;
        Ok(())
    }

    pub(super) fn ecdh(&self, peer_point: &[u8]) -> Res<ObjectHandle> {
        let params = Ecdh1DeriveParams::new(EcKdf::null(), peer_point);
        Ok(self.s.derive_key(&Mechanism::Ecdh1Derive(params), self.ec_private, &shared_secret_template())?)
    }

    pub(super) fn encapsulate(&self) -> Res<ObjectHandle> {
        let (public, _, _) = self.mlkem.as_ref().ok_or_else(|| err("no ML-KEM key"))?;
        let (ct, k) = self.s.encapsulate_key(&Mechanism::MlKem, *public, &shared_secret_template())?;
        black_box(ct);
        Ok(k)
    }

    pub(super) fn decapsulate(&self) -> Res<ObjectHandle> {
        let (_, private, ct) = self.mlkem.as_ref().ok_or_else(|| err("no ML-KEM key"))?;
        Ok(self.s.decapsulate_key(&Mechanism::MlKem, *private, &shared_secret_template(), ct)?)
    }

    /// A batch of an operation that makes a session key: the operation and the
    /// `C_DestroyObject` after it are timed together, for every module alike, so the
    /// work a module defers from the make to a later call (this module's held audit
    /// batch, written whenever it fills, often inside a destroy) is in the timed part.
    pub(super) fn making_keys(&'a self, op: fn(&Client<'a>) -> Res<ObjectHandle>) -> Batch<'a> {
        Box::new(move |n| {
            let start = Instant::now();
            for _ in 0..n {
                let k = op(self)?;
                self.s.destroy_object(k)?;
            }
            Ok(start.elapsed())
        })
    }
}
