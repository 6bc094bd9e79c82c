//! The delegated root: an AES-256 key in a token of another PKCS#11 module (SoftHSM2
//! here, an HSM in production), used only inside that token.
//!
//! The module loads the underlying library at `C_Initialize`, logs into the configured
//! token with a PIN from the environment or a file, and seals with `CKM_AES_GCM` there,
//! the context as AAD. One root key per workspace, labelled `collabvault-root/<name>`:
//! created on first initialization of the workspace, never afterwards — a missing root
//! key for a workspace that has sealed state is an error, never a fresh key that would
//! orphan every master key. A sealed blob is `version(1) || iv(12) || ciphertext||tag`.
//!
//! The root token also holds the audit log's checkpoint keys and head: an ECDSA P-256
//! key pair it makes itself, and an ML-DSA-65 key whose seed the module makes and seals
//! there (tokens such as SoftHSM2 cannot make ML-DSA keys; see [`Hsm::sign_checkpoint`]).
//!
//! [`SlotRoot`] is what the rest of the module sees: this one token, or several over
//! which the root is split m-of-n (`split.rs`, doc/root.md).

use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use parking_lot::Mutex;
use zeroize::Zeroizing;

use std::path::Path;

use super::split::SplitRoot;
use super::Sealer;
use crate::config::{CheckpointSignature as CheckpointAlgorithms, RootConfig};
use crate::error::{Error, Internal, Result};
use crate::store::audit::CheckpointSignature;
use crate::store::sealed::{self, SealingKey};

const BLOB_V1: u8 = 1;
const IV_LEN: usize = 12;

/// Ends the message of a root error whose call found an operation already active in the
/// module's own session (see [`SlotRoot::with_session`]).
const LEFT_ACTIVE: &str = "(an operation was left active in the root session)";

fn pkcs11_err(what: &str) -> impl Fn(cryptoki::error::Error) -> Error + '_ {
    move |e| match e {
        cryptoki::error::Error::Pkcs11(RvError::OperationActive, _) => {
            Error::Root(format!("{what}: {e} {LEFT_ACTIVE}"))
        }
        e => Error::Root(format!("{what}: {e}")),
    }
}

/// One underlying module, logged into one token.
pub struct Hsm {
    pkcs11: Pkcs11,
    /// `None` only while dropping: the session must close before the library finalizes.
    session: Mutex<Option<Session>>,
    token_label: String,
    /// Kept to log a fresh session in after a failed call (see [`Hsm::with_session`]).
    pin: Zeroizing<String>,
    /// Whether this module initialized the library (and so finalizes it).
    owns_library: bool,
}

impl Hsm {
    /// Loads the underlying module `module` and logs into its token `token_label` with
    /// `pin`. Each failure names its cause.
    pub fn connect(module: &Path, token_label: &str, pin: &str) -> Result<Hsm> {
        let pkcs11 = Pkcs11::new(module)
            .map_err(|e| Error::Root(format!("cannot load the underlying module {}: {e}", module.display())))?;
        let owns_library = match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => true,
            // The host application (or another slot of a split root) uses the same
            // library: share its initialization.
            Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(e) => return Err(Error::Root(format!("{}: C_Initialize failed: {e}", module.display()))),
        };
        let session = match Self::login(&pkcs11, token_label, pin) {
            Ok(session) => session,
            Err(e) => {
                // Leave the library as found: a later slot of a split root, or the next
                // attempt, initializes it again.
                if owns_library {
                    drop(pkcs11.finalize());
                }
                return Err(e);
            }
        };
        log::info!("root of trust: token {token_label:?} in {}", module.display());
        Ok(Hsm {
            pkcs11,
            session: Mutex::new(Some(session)),
            token_label: token_label.to_string(),
            pin: Zeroizing::new(pin.to_string()),
            owns_library,
        })
    }

    /// A logged-in session on the token labelled `token_label`.
    fn login(pkcs11: &Pkcs11, token_label: &str, pin: &str) -> Result<Session> {
        let slot = pkcs11
            .get_slots_with_initialized_token()
            .map_err(pkcs11_err("listing the underlying slots"))?
            .into_iter()
            .find(|s| pkcs11.get_token_info(*s).is_ok_and(|t| t.label() == token_label))
            .ok_or_else(|| Error::RootTokenNotPresent(token_label.to_string()))?;
        let session = pkcs11.open_rw_session(slot).map_err(pkcs11_err("opening a session on the root token"))?;
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(Error::Root(format!("the root token {token_label:?} refused the PIN: {e}"))),
        }
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    fn label(workspace: &str) -> Vec<u8> {
        format!("collabvault-root/{workspace}").into_bytes()
    }

    /// Runs `f` with the logged-in session. When a call of the underlying module failed in
    /// it, the session is replaced by a fresh one: the failed call may have left an
    /// operation active there (an encryption the token never ended; a search whose
    /// `C_FindObjectsFinal` failed, which cryptoki only logs), and that session would then
    /// answer `CKR_OPERATION_ACTIVE` to every later call until the application restarted.
    /// Every use of the session holds its lock, so an operation found active is always
    /// such a leftover: then `f` runs once more in the fresh session.
    pub(super) fn with_session<T>(&self, mut f: impl FnMut(&Session) -> Result<T>) -> Result<T> {
        let mut guard = self.session.lock();
        let session = guard.as_ref().ok_or_else(|| Error::Root("the root token session is closed".into()))?;
        let result = f(session);
        let Err(Error::Root(why)) = &result else { return result };
        let retry = why.ends_with(LEFT_ACTIVE);
        match Self::login(&self.pkcs11, &self.token_label, &self.pin) {
            // The new session is open (and the token logged in) before the old one
            // closes, so closing it does not log the token out.
            Ok(fresh) => {
                log::warn!("root of trust: a fresh session after a failed call: {why}");
                let fresh = guard.insert(fresh);
                if retry {
                    return f(fresh);
                }
            }
            Err(e) => log::warn!("root of trust: no fresh session after a failed call: {e}"),
        }
        result
    }

    /// The workspace's root key; created only when `create` (first initialization).
    fn root_key(&self, workspace: &str, create: bool) -> Result<ObjectHandle> {
        self.with_session(|session| self.find_or_create(session, workspace, create))
    }

    fn find_or_create(&self, session: &Session, workspace: &str, create: bool) -> Result<ObjectHandle> {
        let template = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(Self::label(workspace))];
        let found = session.find_objects(&template).map_err(pkcs11_err("finding the root key"))?;
        let key = match found.first() {
            Some(k) => {
                Self::check_key(session, *k, &Self::label(workspace))?;
                *k
            }
            None if create => self.create_key(session, workspace)?,
            None => {
                return Err(Error::Root(format!(
                    "the root key of workspace {workspace:?} is missing from token {:?}",
                    self.token_label
                )))
            }
        };
        Ok(key)
    }

    /// Refuses a key found by its label that is not what this module makes: an AES-256
    /// secret key, sensitive, never extractable, able to encrypt and decrypt. Someone
    /// with the root PIN could otherwise plant a key they can read back.
    pub(super) fn check_key(session: &Session, key: ObjectHandle, label: &[u8]) -> Result<()> {
        use cryptoki::object::AttributeType as T;
        let wanted = [T::Class, T::KeyType, T::ValueLen, T::Sensitive, T::Extractable, T::Encrypt, T::Decrypt];
        let attrs = session.get_attributes(key, &wanted).map_err(pkcs11_err("reading the root key's attributes"))?;
        let mut problems = Vec::new();
        let mut seen = 0;
        for a in &attrs {
            seen += 1;
            match a {
                Attribute::Class(c) if *c != ObjectClass::SECRET_KEY => {
                    problems.push("CKA_CLASS is not CKO_SECRET_KEY")
                }
                Attribute::KeyType(t) if *t != KeyType::AES => problems.push("CKA_KEY_TYPE is not CKK_AES"),
                Attribute::ValueLen(n) if u64::from(*n) != 32 => problems.push("CKA_VALUE_LEN is not 32"),
                Attribute::Sensitive(false) => problems.push("CKA_SENSITIVE is false"),
                Attribute::Extractable(true) => problems.push("CKA_EXTRACTABLE is true"),
                Attribute::Encrypt(false) => problems.push("CKA_ENCRYPT is false"),
                Attribute::Decrypt(false) => problems.push("CKA_DECRYPT is false"),
                _ => {}
            }
        }
        if seen < wanted.len() {
            problems.push("some of its attributes cannot be read");
        }
        if problems.is_empty() {
            return Ok(());
        }
        let what = problems.join(", ");
        let label = String::from_utf8_lossy(label);
        log::error!("refusing the key {label:?} in the root token: {what}");
        Err(Error::Root(format!("the key {label:?} in the root token is refused: {what}")))
    }

    /// HMAC-SHA256 of `data` under the workspace's PIN MAC key in the root token (a
    /// generic secret, sensitive, non-extractable, made on first use): what authenticates
    /// the PIN records and failure counters in the store.
    fn pins_mac(&self, workspace: &str, data: &[u8]) -> Result<Vec<u8>> {
        let label = format!("collabvault-pins/{workspace}").into_bytes();
        self.with_session(|session| {
            let found = session
                .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.clone())])
                .map_err(pkcs11_err("finding the PIN MAC key"))?;
            let key = match found.first() {
                Some(k) => *k,
                None => {
                    let template = [
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        Attribute::ValueLen(32.into()),
                        Attribute::Label(label.clone()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                        Attribute::Verify(true),
                    ];
                    let key = session
                        .generate_key(&Mechanism::GenericSecretKeyGen, &template)
                        .map_err(pkcs11_err("creating the PIN MAC key"))?;
                    log::info!("created the PIN MAC key of workspace {workspace:?} in token {:?}", self.token_label);
                    key
                }
            };
            session.sign(&Mechanism::Sha256Hmac, key, data).map_err(pkcs11_err("MACing the PIN records"))
        })
    }

    fn version_label(workspace: &str, version: u32) -> Vec<u8> {
        format!("collabvault-wmk/{workspace}/v{version}").into_bytes()
    }

    /// The key of one master key version (its sealed value opens only under it, so
    /// destroying it shreds every copy of that value, backups included); created only
    /// when `create`. `None`: there is no such key (destroyed, or never made).
    fn version_key(&self, workspace: &str, version: u32, create: bool) -> Result<Option<ObjectHandle>> {
        let label = Self::version_label(workspace, version);
        self.with_session(|session| {
            let found = session
                .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.clone())])
                .map_err(pkcs11_err("finding a master key version's key"))?;
            let key = match found.first() {
                Some(k) => {
                    Self::check_key(session, *k, &label)?;
                    *k
                }
                None if create => self.create_labelled(session, &label)?,
                None => return Ok(None),
            };
            Ok(Some(key))
        })
    }

    /// Destroys the keys of `workspace`'s master key versions: `Some(version)` one, `None`
    /// every one (re-initialization). Returns how many were destroyed.
    fn destroy_version_keys(&self, workspace: &str, version: Option<u32>) -> Result<usize> {
        let prefix = format!("collabvault-wmk/{workspace}/v");
        self.with_session(|session| {
            let mut template = vec![Attribute::Class(ObjectClass::SECRET_KEY)];
            if let Some(v) = version {
                template.push(Attribute::Label(Self::version_label(workspace, v)));
            }
            let found = session.find_objects(&template).map_err(pkcs11_err("finding master key version keys"))?;
            let mut destroyed = 0;
            for key in found {
                let label = session
                    .get_attributes(key, &[cryptoki::object::AttributeType::Label])
                    .map_err(pkcs11_err("reading a key label"))?;
                let Some(Attribute::Label(label)) = label.into_iter().next() else { continue };
                let ours = String::from_utf8(label).ok().and_then(|l| l.strip_prefix(&prefix).map(str::to_string));
                if !ours.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
                    continue;
                }
                session.destroy_object(key).map_err(pkcs11_err("destroying a master key version's key"))?;
                destroyed += 1;
            }
            Ok(destroyed)
        })
    }

    fn create_key(&self, session: &Session, workspace: &str) -> Result<ObjectHandle> {
        let key = self.create_labelled(session, &Self::label(workspace))?;
        log::info!("created the root key of workspace {workspace:?} in token {:?}", self.token_label);
        Ok(key)
    }

    /// A fresh AES-256 key in the root token that never leaves it.
    pub(super) fn create_labelled(&self, session: &Session, label: &[u8]) -> Result<ObjectHandle> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Label(label.to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ];
        session.generate_key(&Mechanism::AesKeyGen, &template).map_err(pkcs11_err("creating a key in the root token"))
    }
}

const AUDIT_KEY_LABEL: &[u8] = b"collabvault-audit";
/// The AES key that seals the ML-DSA audit key's seed.
const AUDIT_MLDSA_SEAL_LABEL: &[u8] = b"collabvault-audit-mldsa-seal";
/// The data object holding the sealed ML-DSA seed.
const AUDIT_MLDSA_SEED_LABEL: &[u8] = b"collabvault-audit-mldsa-seed";
/// The data object holding the ML-DSA public key.
const AUDIT_MLDSA_PUBLIC_LABEL: &[u8] = b"collabvault-audit-mldsa-public";
const AUDIT_HEAD_LABEL: &[u8] = b"collabvault-audit-head";
/// DER OID of P-256 (`CKA_EC_PARAMS`).
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The AAD of the sealed ML-DSA seed: its purpose and its public key, so neither the
/// blob nor the public key can be swapped for another.
fn mldsa_seal_context(public: &[u8]) -> Vec<u8> {
    let mut context = b"audit-mldsa-key".to_vec();
    context.extend_from_slice(public);
    context
}

/// A checkpoint's signatures: (ECDSA P-256, ML-DSA-65), each when configured.
pub type Signed = (Option<CheckpointSignature>, Option<CheckpointSignature>);

/// The latest checkpoint as the root token remembers it: (number, entry seq, entry hash).
pub type Head = (i64, i64, Vec<u8>);

impl Hsm {
    pub(super) fn find(session: &Session, class: ObjectClass, label: &[u8]) -> Result<Option<ObjectHandle>> {
        let found = session
            .find_objects(&[Attribute::Class(class), Attribute::Label(label.to_vec())])
            .map_err(pkcs11_err("finding an audit object in the root token"))?;
        Ok(found.first().copied())
    }

    /// The audit signing key pair (private handle, uncompressed public point), made in
    /// the root token on first use: the private half never leaves it.
    fn audit_key(session: &Session) -> Result<(ObjectHandle, Vec<u8>)> {
        let private = Self::find(session, ObjectClass::PRIVATE_KEY, AUDIT_KEY_LABEL)?;
        let public = Self::find(session, ObjectClass::PUBLIC_KEY, AUDIT_KEY_LABEL)?;
        let (private, public) = match (private, public) {
            (Some(private), Some(public)) => (private, public),
            (None, Some(_)) => {
                // Never replace a key whose checkpoints may exist: they would all fail.
                return Err(Error::Root("the audit signing key's private half is missing from the root token".into()));
            }
            _ => {
                let common = [Attribute::Token(true), Attribute::Label(AUDIT_KEY_LABEL.to_vec())];
                let mut pub_t = vec![Attribute::EcParams(P256_OID.to_vec()), Attribute::Verify(true)];
                pub_t.extend(common.iter().cloned());
                let mut priv_t = vec![
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                ];
                priv_t.extend(common.iter().cloned());
                let (public, private) = session
                    .generate_key_pair(&Mechanism::EccKeyPairGen, &pub_t, &priv_t)
                    .map_err(pkcs11_err("creating the audit signing key"))?;
                log::info!("created the audit signing key in the root token");
                (private, public)
            }
        };
        Ok((private, Self::public_point(session, public)?))
    }

    /// Destroys an audit public key whose private half is missing (a process killed
    /// between the two objects of the key pair's generation), when `unused` says no
    /// checkpoint carries it: the next signature then makes a whole pair. A key some
    /// checkpoint carries is never touched (those checkpoints would all fail).
    pub fn drop_orphan_audit_key(&self, unused: &dyn Fn(&[u8]) -> bool) -> Result<bool> {
        self.with_session(|session| {
            let private = Self::find(session, ObjectClass::PRIVATE_KEY, AUDIT_KEY_LABEL)?;
            let Some(public) = Self::find(session, ObjectClass::PUBLIC_KEY, AUDIT_KEY_LABEL)? else {
                return Ok(false);
            };
            if private.is_some() || !unused(&Self::public_point(session, public)?) {
                return Ok(false);
            }
            session.destroy_object(public).map_err(pkcs11_err("dropping an orphan audit public key"))?;
            log::warn!("dropped an audit public key without its private half (an interrupted generation)");
            Ok(true)
        })
    }

    /// The uncompressed point of an EC public key object in the root token.
    fn public_point(session: &Session, public: ObjectHandle) -> Result<Vec<u8>> {
        let point = session
            .get_attributes(public, &[cryptoki::object::AttributeType::EcPoint])
            .map_err(pkcs11_err("reading the audit public key"))?;
        let Some(Attribute::EcPoint(der)) = point.into_iter().next() else {
            return Err(Error::Root("the audit public key has no CKA_EC_POINT".into()));
        };
        // A DER OCTET STRING around the 65-byte uncompressed point.
        Ok(if der.len() == 67 && der[0] == 0x04 && der[1] == 65 { der[2..].to_vec() } else { der })
    }

    /// Signs a checkpoint message with the configured checkpoint keys: ECDSA P-256 over
    /// its SHA-256 inside the root token, ML-DSA-65 (pure, empty context) with the seed
    /// the root token unseals. Each is the signature and the public key that verifies it.
    pub fn sign_checkpoint(&self, message: &[u8], which: CheckpointAlgorithms) -> Result<Signed> {
        let digest = crate::mechanism::primitives::sha256(message);
        self.with_session(|session| {
            let ecdsa = match which.ecdsa() {
                false => None,
                true => {
                    let (private, public_key) = Self::audit_key(session)?;
                    let signature = session
                        .sign(&Mechanism::Ecdsa, private, &digest)
                        .map_err(pkcs11_err("signing a checkpoint"))?;
                    Some(CheckpointSignature { signature, public_key })
                }
            };
            let mldsa = match which.mldsa() {
                false => None,
                true => {
                    let (seed, public_key) = self.mldsa_key(session)?;
                    let signature = crate::mechanism::primitives::mldsa65_sign(&seed, message)?;
                    Some(CheckpointSignature { signature, public_key })
                }
            };
            Ok((ecdsa, mldsa))
        })
    }

    /// The audit public key (uncompressed point) the root token holds: what verifiers
    /// trust checkpoints against. `None` before the first checkpoint made it; a verifier
    /// never creates it.
    pub fn audit_public_key(&self) -> Result<Option<Vec<u8>>> {
        self.with_session(|session| match Self::find(session, ObjectClass::PUBLIC_KEY, AUDIT_KEY_LABEL)? {
            Some(public) => Self::public_point(session, public).map(Some),
            None => Ok(None),
        })
    }

    /// The ML-DSA-65 audit public key (FIPS 204 `pkEncode`) the root token holds, the
    /// trust anchor of checkpoints' ML-DSA signatures. `None` before the first
    /// checkpoint signed with ML-DSA made it.
    pub fn audit_mldsa_public_key(&self) -> Result<Option<Vec<u8>>> {
        self.with_session(|session| Self::data_value(session, AUDIT_MLDSA_PUBLIC_LABEL))
    }

    /// The value of the data object labelled `label`, if there is one.
    pub(super) fn data_value(session: &Session, label: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(object) = Self::find(session, ObjectClass::DATA, label)? else {
            return Ok(None);
        };
        let value = session
            .get_attributes(object, &[cryptoki::object::AttributeType::Value])
            .map_err(pkcs11_err("reading an audit object in the root token"))?;
        match value.into_iter().next() {
            Some(Attribute::Value(v)) => Ok(Some(v)),
            _ => Err(Error::Root(format!("{:?} in the root token has no value", String::from_utf8_lossy(label)))),
        }
    }

    /// A private token data object labelled `label` holding `value`.
    pub(super) fn create_data(session: &Session, label: &[u8], value: Vec<u8>) -> Result<()> {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Modifiable(false),
                Attribute::Label(label.to_vec()),
                Attribute::Value(value),
            ])
            .map_err(pkcs11_err("storing the ML-DSA audit key in the root token"))?;
        Ok(())
    }

    /// The ML-DSA-65 audit key: (seed, public key). PKCS#11 tokens before 3.2, SoftHSM2
    /// among them, cannot make ML-DSA keys, so on first use the module draws the 32-byte
    /// seed and seals it (AES-256-GCM, the public key in the AAD) under an AES key made
    /// in the root token; the sealed seed and the public key are kept as data objects
    /// beside the ECDSA key pair, out of the store's reach. The seed is only ever in
    /// memory unsealed, for one signature.
    fn mldsa_key(&self, session: &Session) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
        let sealed = Self::data_value(session, AUDIT_MLDSA_SEED_LABEL)?;
        let public = Self::data_value(session, AUDIT_MLDSA_PUBLIC_LABEL)?;
        let seal_key = Self::find(session, ObjectClass::SECRET_KEY, AUDIT_MLDSA_SEAL_LABEL)?;
        if let Some(key) = seal_key {
            Self::check_key(session, key, AUDIT_MLDSA_SEAL_LABEL)?;
        }
        match (sealed, public, seal_key) {
            (Some(sealed), Some(public), Some(key)) => {
                let seed = unseal_in(session, key, &mldsa_seal_context(&public), &sealed)?;
                if crate::mechanism::primitives::mldsa65_public_key(&seed)? != public {
                    return Err(Error::Integrity("the ML-DSA audit public key does not match its sealed seed"));
                }
                Ok((seed, public))
            }
            (orphan, None, key) => {
                if orphan.is_some() {
                    // A seed sealed by a run that crashed before storing its public key
                    // signed nothing (signing needs both): it is replaced.
                    if let Some(object) = Self::find(session, ObjectClass::DATA, AUDIT_MLDSA_SEED_LABEL)? {
                        session.destroy_object(object).map_err(pkcs11_err("replacing an orphaned ML-DSA seed"))?;
                    }
                }
                let key = match key {
                    Some(key) => key,
                    None => self.create_labelled(session, AUDIT_MLDSA_SEAL_LABEL)?,
                };
                let mut seed = Zeroizing::new(vec![0u8; crate::mechanism::primitives::MLDSA65_SEED_LEN]);
                crate::mechanism::primitives::fill_random(&mut seed)?;
                let public = crate::mechanism::primitives::mldsa65_public_key(&seed)?;
                let sealed = seal_in(session, key, &mldsa_seal_context(&public), &seed)?;
                // The public key last: a crash before it leaves a sealed seed that
                // signed nothing, which the next attempt replaces.
                Self::create_data(session, AUDIT_MLDSA_SEED_LABEL, sealed)?;
                Self::create_data(session, AUDIT_MLDSA_PUBLIC_LABEL, public.clone())?;
                log::info!(
                    "created the ML-DSA-65 audit signing key: the root token {:?} cannot make ML-DSA keys, so \
                     the module made its seed and sealed it under a key in that token",
                    self.token_label
                );
                Ok((seed, public))
            }
            // Never replace a key whose checkpoints may exist: they would all fail.
            _ => Err(Error::Root("the ML-DSA audit signing key is incomplete in the root token".into())),
        }
    }

    /// Every head object in the root token with its decoded value.
    fn heads(session: &Session) -> Result<Vec<(ObjectHandle, Head)>> {
        let found = session
            .find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Label(AUDIT_HEAD_LABEL.to_vec())])
            .map_err(pkcs11_err("finding the audit head"))?;
        let mut heads = Vec::with_capacity(found.len());
        for object in found {
            let value = session
                .get_attributes(object, &[cryptoki::object::AttributeType::Value])
                .map_err(pkcs11_err("reading the audit head"))?;
            let Some(Attribute::Value(v)) = value.into_iter().next() else {
                return Err(Error::Root("the audit head has no value".into()));
            };
            let (Some(number), Some(seq), Some(hash)) = (v.get(..8), v.get(8..16), v.get(16..)) else {
                return Err(Error::Integrity("the audit head in the root token is malformed"));
            };
            let number = i64::from_be_bytes(number.try_into().map_err(|_| Error::Integrity("audit head"))?);
            let seq = i64::from_be_bytes(seq.try_into().map_err(|_| Error::Integrity("audit head"))?);
            heads.push((object, (number, seq, hash.to_vec())));
        }
        Ok(heads)
    }

    /// The latest checkpoint as the root token remembers it, if any.
    pub(super) fn head(&self) -> Result<Option<Head>> {
        self.with_session(|session| Ok(Self::heads(session)?.into_iter().map(|(_, h)| h).max_by_key(|h| h.0)))
    }

    /// Records the latest checkpoint in the root token, out of reach of the store. Tokens
    /// need not allow changing a data object's value, so the new head is created first
    /// and the old ones destroyed after: a crash in between leaves two, and the newest wins.
    pub(super) fn set_head(&self, number: i64, seq: i64, hash: &[u8]) -> Result<()> {
        let mut value = number.to_be_bytes().to_vec();
        value.extend_from_slice(&seq.to_be_bytes());
        value.extend_from_slice(hash);
        self.with_session(|session| {
            let old = Self::heads(session)?;
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Label(AUDIT_HEAD_LABEL.to_vec()),
                    Attribute::Value(value.clone()),
                ])
                .map_err(pkcs11_err("recording the audit head"))?;
            for (object, _) in old {
                session.destroy_object(object).map_err(pkcs11_err("replacing the audit head"))?;
            }
            Ok(())
        })
    }
}

impl Drop for Hsm {
    fn drop(&mut self) {
        // Close our session before finalizing the library it belongs to.
        if let Some(session) = self.session.lock().take() {
            drop(session.logout());
            drop(session);
        }
        if self.owns_library {
            if let Err(e) = self.pkcs11.clone().finalize() {
                log::warn!("finalizing the underlying module: {e}");
            }
        }
    }
}

/// One workspace's root key (or one of its master key versions' keys): a key in the
/// underlying token, or, under a split root, a key the recombined shares give
/// (`split.rs`), which is only ever in memory.
pub struct WorkspaceRoot {
    slot: Arc<SlotRoot>,
    key: RootKey,
}

/// Where a [`WorkspaceRoot`]'s key is.
enum RootKey {
    /// In the single root token.
    Hsm(ObjectHandle),
    /// In memory, from a split root's shares; zeroized on drop.
    Soft(SealingKey),
}

impl WorkspaceRoot {
    /// The root this key belongs to.
    pub fn slot(&self) -> &Arc<SlotRoot> {
        &self.slot
    }
}

impl Sealer for WorkspaceRoot {
    fn describe(&self) -> &'static str {
        "hsm root"
    }

    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            RootKey::Hsm(key) => self.slot.single()?.with_session(|s| seal_in(s, *key, context, plaintext)),
            RootKey::Soft(key) => sealed::seal(key, context, plaintext),
        }
    }

    fn unseal(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match &self.key {
            RootKey::Hsm(key) => self.slot.single()?.with_session(|s| unseal_in(s, *key, context, blob)),
            RootKey::Soft(key) => sealed::open(key, context, blob),
        }
    }

    fn mac(&self, _purpose: &[u8], _data: &[u8]) -> Result<[u8; 32]> {
        // The bare root key seals only the storage key; rows are MACed under the storage
        // key (`BoundRoot`), which someone holding only the root PIN does not have.
        Err(Error::Internal(Internal::BareRootMac))
    }
}

/// The root of trust in underlying PKCS#11 slots: one token (`[root]` with
/// `token_label`), or several over which the root is split m-of-n (`[[root.slots]]`,
/// `split.rs`, doc/root.md). Everything else in the module sees only this.
pub struct SlotRoot(Kind);

enum Kind {
    One(Hsm),
    Split(SplitRoot),
}

impl SlotRoot {
    /// Connects to the configured slot, or to the slots of a split root and recombines
    /// it. Each failure names its cause (for a split root: the slots missing).
    pub fn connect(cfg: &RootConfig) -> Result<SlotRoot> {
        if cfg.slots.is_empty() {
            let pin = cfg.pin()?;
            return Ok(SlotRoot(Kind::One(Hsm::connect(&cfg.module, &cfg.token_label, &pin)?)));
        }
        Ok(SlotRoot(Kind::Split(SplitRoot::connect(cfg)?)))
    }

    /// Deals a split root's secrets again over all its slots, a replacement slot
    /// included (`reshare.rs`); refused for a single root token, which has no shares.
    pub fn reshare(
        &self,
        progress: &mut dyn FnMut(super::reshare::Step<'_>) -> Result<()>,
    ) -> Result<super::reshare::Reshared> {
        match &self.0 {
            Kind::Split(split) => split.reshare(progress),
            Kind::One(_) => Err(Error::Root(
                "the root is one token, not split over [[root.slots]]: there are no shares to deal again".into(),
            )),
        }
    }

    /// Whether a reshare could start: a split root whose every slot answered at connect.
    pub fn check_reshare(&self) -> Result<()> {
        match &self.0 {
            Kind::Split(split) => split.require_every_slot(),
            Kind::One(_) => Err(Error::Root("the root is one token, not split over [[root.slots]]".into())),
        }
    }

    /// The single root token; an internal error under a split root (whose keys are
    /// never handles).
    fn single(&self) -> Result<&Hsm> {
        match &self.0 {
            Kind::One(hsm) => Ok(hsm),
            Kind::Split(_) => Err(Error::Root("a split root has no single root token".into())),
        }
    }

    /// The workspace's root key; created only when `create` (first initialization).
    /// Under a split root it is derived from the recombined root, so always there.
    pub fn root_key(self: &Arc<Self>, workspace: &str, create: bool) -> Result<WorkspaceRoot> {
        let key = match &self.0 {
            Kind::One(hsm) => RootKey::Hsm(hsm.root_key(workspace, create)?),
            Kind::Split(split) => RootKey::Soft(split.workspace_key(workspace)?),
        };
        Ok(WorkspaceRoot { slot: self.clone(), key })
    }

    /// HMAC-SHA256 of `data` under the workspace's PIN MAC key: what authenticates the
    /// PIN records and failure counters in the store.
    pub fn pins_mac(&self, workspace: &str, data: &[u8]) -> Result<Vec<u8>> {
        match &self.0 {
            Kind::One(hsm) => hsm.pins_mac(workspace, data),
            Kind::Split(split) => split.pins_mac(workspace, data),
        }
    }

    /// The key of one master key version (its sealed value opens only under it, so
    /// destroying it shreds every copy of that value, backups included); created only
    /// when `create`. `None`: there is no such key (destroyed, or never made).
    pub fn version_key(self: &Arc<Self>, workspace: &str, version: u32, create: bool) -> Result<Option<WorkspaceRoot>> {
        let key = match &self.0 {
            Kind::One(hsm) => hsm.version_key(workspace, version, create)?.map(RootKey::Hsm),
            Kind::Split(split) => split.version_key(workspace, version, create)?.map(RootKey::Soft),
        };
        Ok(key.map(|key| WorkspaceRoot { slot: self.clone(), key }))
    }

    /// Destroys the keys of `workspace`'s master key versions: `Some(version)` one, `None`
    /// every one (re-initialization). Returns how many objects were destroyed.
    pub fn destroy_version_keys(&self, workspace: &str, version: Option<u32>) -> Result<usize> {
        match &self.0 {
            Kind::One(hsm) => hsm.destroy_version_keys(workspace, version),
            Kind::Split(split) => split.destroy_version_keys(workspace, version),
        }
    }

    /// Signs a checkpoint message with the configured checkpoint keys (see
    /// [`Hsm::sign_checkpoint`]; a split root's are derived from it, `split.rs`).
    pub fn sign_checkpoint(&self, message: &[u8], which: CheckpointAlgorithms) -> Result<Signed> {
        match &self.0 {
            Kind::One(hsm) => hsm.sign_checkpoint(message, which),
            Kind::Split(split) => split.sign_checkpoint(message, which),
        }
    }

    /// The ECDSA audit public key (uncompressed point) checkpoints verify against.
    pub fn audit_public_key(&self) -> Result<Option<Vec<u8>>> {
        match &self.0 {
            Kind::One(hsm) => hsm.audit_public_key(),
            Kind::Split(split) => split.audit_public_key().map(Some),
        }
    }

    /// See [`Hsm::drop_orphan_audit_key`]; a split root's keys are derived, never orphaned.
    pub fn drop_orphan_audit_key(&self, unused: &dyn Fn(&[u8]) -> bool) -> Result<bool> {
        match &self.0 {
            Kind::One(hsm) => hsm.drop_orphan_audit_key(unused),
            Kind::Split(_) => Ok(false),
        }
    }

    /// The ML-DSA-65 audit public key checkpoints verify against.
    pub fn audit_mldsa_public_key(&self) -> Result<Option<Vec<u8>>> {
        match &self.0 {
            Kind::One(hsm) => hsm.audit_mldsa_public_key(),
            Kind::Split(split) => split.audit_mldsa_public_key().map(Some),
        }
    }

    /// The latest checkpoint as the root token(s) remember it, if any.
    pub fn head(&self) -> Result<Option<Head>> {
        match &self.0 {
            Kind::One(hsm) => hsm.head(),
            Kind::Split(split) => split.head(),
        }
    }

    /// Records the latest checkpoint in the root token(s), out of reach of the store.
    pub fn set_head(&self, number: i64, seq: i64, hash: &[u8]) -> Result<()> {
        match &self.0 {
            Kind::One(hsm) => hsm.set_head(number, seq, hash),
            Kind::Split(split) => split.set_head(number, seq, hash),
        }
    }
}

/// Seals `plaintext` with AES-256-GCM under `key` in the root token, `context` as AAD:
/// `version(1) || iv(12) || ciphertext||tag`.
pub(super) fn seal_in(session: &Session, key: ObjectHandle, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut iv = [0u8; IV_LEN];
    crate::mechanism::primitives::fill_random(&mut iv)?;
    let mut iv_param = iv;
    let params = GcmParams::new(&mut iv_param, context, 128.into()).map_err(pkcs11_err("GCM parameters"))?;
    let ct =
        session.encrypt(&Mechanism::AesGcm(params), key, plaintext).map_err(pkcs11_err("sealing in the root token"))?;
    let mut blob = vec![BLOB_V1];
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&ct);
    Ok(blob)
}

/// Opens [`seal_in`]'s blob; one that does not open is an integrity failure.
pub(super) fn unseal_in(
    session: &Session,
    key: ObjectHandle,
    context: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if blob.len() < 1 + IV_LEN + 16 || blob[0] != BLOB_V1 {
        return Err(Error::Integrity("root-sealed blob is malformed"));
    }
    let mut iv: [u8; IV_LEN] = blob[1..1 + IV_LEN].try_into().map_err(|_| Error::Integrity("root-sealed blob"))?;
    let params = GcmParams::new(&mut iv, context, 128.into()).map_err(pkcs11_err("GCM parameters"))?;
    match session.decrypt(&Mechanism::AesGcm(params), key, &blob[1 + IV_LEN..]) {
        Ok(pt) => Ok(Zeroizing::new(pt)),
        Err(cryptoki::error::Error::Pkcs11(RvError::EncryptedDataInvalid, _)) => {
            Err(Error::Integrity("root-sealed blob does not open under the root key"))
        }
        Err(e) => Err(pkcs11_err("unsealing in the root token")(e)),
    }
}
