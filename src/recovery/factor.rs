//! The second factor: a secret key on a separate PKCS#11 token (a second SoftHSM2 token
//! in tests, a smart card or an HSM partition in practice) that computes HMAC-SHA256
//! (`CKM_SHA256_HMAC`) of a per-kit message. The key is generated on that token
//! sensitive and never extractable, so the response exists only where the token is:
//! a kit and its passphrase without the token derive a different key and are refused.
//!
//! This file talks to the token through the `cryptoki` crate, as `root/slot.rs` talks to
//! the root slot; the HMAC runs inside the token, so no crypto crate is involved. It
//! initializes the token's module only for the call and finalizes it after, unless the
//! module was already initialized by someone else in the process (then it leaves it be).

use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Where the factor key is: module, token label, key label, and the token's user PIN.
pub struct FactorToken {
    /// The PKCS#11 module of the factor token.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The factor key's label on it.
    pub key: String,
    /// The token's user PIN; zeroized on drop.
    pub pin: Zeroizing<String>,
}

fn p11(what: &str, e: &P11Error) -> Error {
    Error::Kit(format!("second-factor token: {what}: {e}"))
}

/// A loaded module, finalized on drop if this code initialized it.
struct Loaded {
    pkcs11: Option<Pkcs11>,
    ours: bool,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        if let (Some(p), true) = (self.pkcs11.take(), self.ours) {
            let _ = p.finalize();
        }
    }
}

impl FactorToken {
    fn load(&self) -> Result<Loaded> {
        let pkcs11 = Pkcs11::new(&self.module)
            .map_err(|e| Error::Kit(format!("cannot load the factor module {}: {e}", self.module.display())))?;
        let ours = match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => true,
            Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(e) => return Err(p11("C_Initialize", &e)),
        };
        Ok(Loaded { pkcs11: Some(pkcs11), ours })
    }

    fn session(&self, loaded: &Loaded) -> Result<Session> {
        let pkcs11 = loaded.pkcs11.as_ref().ok_or_else(|| Error::Kit("second-factor token: not loaded".into()))?;
        let slots = pkcs11.get_slots_with_initialized_token().map_err(|e| p11("C_GetSlotList", &e))?;
        for slot in slots {
            let info = pkcs11.get_token_info(slot).map_err(|e| p11("C_GetTokenInfo", &e))?;
            if info.label().trim_end() == self.token {
                let s = pkcs11.open_rw_session(slot).map_err(|e| p11("C_OpenSession", &e))?;
                s.login(UserType::User, Some(&AuthPin::new(self.pin.as_str().into())))
                    .map_err(|e| p11("C_Login", &e))?;
                return Ok(s);
            }
        }
        Err(Error::Kit(format!("no second-factor token labelled {:?} in {}", self.token, self.module.display())))
    }

    fn find(&self, s: &Session) -> Result<Vec<cryptoki::object::ObjectHandle>> {
        let template = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(self.key.as_bytes().to_vec())];
        s.find_objects(&template).map_err(|e| p11("C_FindObjects", &e))
    }

    /// Generates the factor key on the token: a 256-bit generic secret, sensitive,
    /// never extractable, sign only. Refuses to make a second key with the same label.
    pub fn init_key(&self) -> Result<()> {
        let loaded = self.load()?;
        let s = self.session(&loaded)?;
        if !self.find(&s)?.is_empty() {
            return Err(Error::Kit(format!("the token already has a key labelled {:?}", self.key)));
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Verify(false),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(self.key.as_bytes().to_vec()),
        ];
        s.generate_key(&Mechanism::GenericSecretKeyGen, &template).map_err(|e| p11("C_GenerateKey", &e))?;
        Ok(())
    }

    /// The token's HMAC-SHA256 of `message` under the factor key. A missing key, a
    /// wrong PIN or a wrong token are errors here, told apart: they are about the token,
    /// not the kit (a wrong key on the right token is refused later, as a wrong factor).
    pub fn respond(&self, message: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let loaded = self.load()?;
        let s = self.session(&loaded)?;
        let found = self.find(&s)?;
        let [key] = found.as_slice() else {
            return Err(Error::Kit(format!(
                "the factor token has {} keys labelled {:?} (want exactly one: `cvault kit factor init`)",
                found.len(),
                self.key
            )));
        };
        let mac = s.sign(&Mechanism::Sha256Hmac, *key, message).map_err(|e| p11("C_Sign", &e))?;
        let mac = Zeroizing::new(mac);
        let mut out = Zeroizing::new([0u8; 32]);
        if mac.len() != 32 {
            return Err(Error::Kit("the factor token's HMAC-SHA256 is not 32 bytes".into()));
        }
        out.copy_from_slice(&mac);
        Ok(out)
    }
}
