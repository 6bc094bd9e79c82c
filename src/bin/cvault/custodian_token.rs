//! A custodian's secret on their own PKCS#11 token (doc/quorum.md, "Custodians with a
//! token"), instead of a passphrase.
//!
//! The custodian's token holds an HMAC key `collabvault-custodian/<name>` (generic secret,
//! 256 bits, sensitive, never extractable), made by `cvault custodians init`. Their
//! secret is HMAC-SHA256 under that key, computed inside the token, of
//! `collabvault-custodian-token-v1:<name>`, in hex. It then takes the passphrase's place
//! everywhere: it is enrolled through Argon2id into the X-Wing key the share is sealed
//! to, and given to `C_LoginUser(CKU_CV_CUSTODIAN)` to approve. Opening the share needs
//! that value, and the value needs the token and its PIN: the key never leaves the token,
//! and 256 bits of HMAC output cannot be guessed.
//!
//! The tokens are read before `cvault` loads the module ([`read_all`]), so a custodian's
//! token in the library the module's root also uses (SoftHSM2 in the tests) is logged
//! into and out of, and that library initialized and finalized, before the module
//! touches it: the two never share one initialization of it.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::cli::{Command, CustodianTokens, CustodiansCommand, QuorumCommand};
use crate::{fail, Failure, Res};

/// The secrets read from custodians' tokens: (name, secret).
pub(crate) type Secrets = Vec<(String, Zeroizing<String>)>;

/// The secrets of the custodians `command` names with `--custodian-token`, read from
/// their tokens (made there when the command enrols them).
pub(crate) fn read_all(command: &Command) -> Res<Secrets> {
    let (names, tokens, enrol) = match command {
        Command::Custodians(CustodiansCommand::Init { custodians, tokens, .. }) => (custodians, tokens, true),
        Command::Quorum(QuorumCommand::Approve { custodians, tokens, .. }) | Command::Unlock { custodians, tokens } => {
            (custodians, tokens, false)
        }
        _ => return Ok(Vec::new()),
    };
    tokens.check_names(names)?;
    let mut out = Vec::new();
    for name in names {
        if let Some(label) = tokens.label_of(name)? {
            out.push((name.clone(), tokens.secret(name, label, enrol)?));
        }
    }
    Ok(out)
}

/// What the HMAC key signs: the custodian's name under a fixed label.
fn challenge(name: &str) -> Vec<u8> {
    format!("collabvault-custodian-token-v1:{name}").into_bytes()
}

fn key_label(name: &str) -> Vec<u8> {
    format!("collabvault-custodian/{name}").into_bytes()
}

/// The environment variable that may hold the PIN of custodian `name`'s token:
/// `CV_CUSTODIAN_TOKEN_PIN_<NAME>`, upper case, other characters as `_`.
pub(crate) fn pin_variable(name: &str) -> String {
    let up: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("CV_CUSTODIAN_TOKEN_PIN_{up}")
}

/// `NAME=VALUE` pairs of an option, for `name`.
fn lookup<'a>(pairs: &'a [String], option: &str, name: &str) -> Res<Option<&'a str>> {
    for pair in pairs {
        let Some((n, v)) = pair.split_once('=') else {
            return fail(format!("{option} takes NAME=VALUE, not {pair:?}"));
        };
        if n == name {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

impl CustodianTokens {
    /// The label of custodian `name`'s token, when they use one.
    fn label_of(&self, name: &str) -> Res<Option<&str>> {
        lookup(&self.tokens, "--custodian-token", name)
    }

    /// Refuses a `--custodian-token` or `--custodian-pin-file` for someone not named.
    fn check_names(&self, names: &[String]) -> Res<()> {
        for pair in self.tokens.iter().chain(&self.pin_files) {
            let n = pair.split_once('=').map_or(pair.as_str(), |(n, _)| n);
            if !names.iter().any(|m| m == n) {
                return fail(format!("{pair:?} names {n:?}, who is not among the --custodian names"));
            }
        }
        Ok(())
    }

    /// The PIN of custodian `name`'s token: `--custodian-pin-file NAME=PATH`, else
    /// `CV_CUSTODIAN_TOKEN_PIN_<NAME>`.
    fn pin(&self, name: &str) -> Res<Zeroizing<String>> {
        if let Some(path) = lookup(&self.pin_files, "--custodian-pin-file", name)? {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure(format!("custodian {name}: cannot read the token PIN file {path}: {e}")))?;
            return Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_string()));
        }
        let var = pin_variable(name);
        match std::env::var(&var) {
            Ok(pin) if !pin.is_empty() => Ok(Zeroizing::new(pin)),
            _ => fail(format!("custodian {name}: no PIN for their token: set {var} or --custodian-pin-file")),
        }
    }

    fn module(&self) -> Res<&PathBuf> {
        self.module.as_ref().ok_or_else(|| Failure("--custodian-token needs --custodian-module PATH".into()))
    }

    /// Custodian `name`'s secret from their token `label`; `enrol` makes the HMAC key
    /// when the token has none (enrolment), otherwise it must be there (approval).
    fn secret(&self, name: &str, label: &str, enrol: bool) -> Res<Zeroizing<String>> {
        let pin = self.pin(name)?;
        let module = self.module()?;
        with_token(module, label, &pin, |session| {
            let key = match find_key(session, name)? {
                Some(key) => key,
                None if enrol => make_key(session, name)?,
                None => {
                    return fail(format!(
                        "custodian {name}: their token {label:?} holds no key {:?}",
                        String::from_utf8_lossy(&key_label(name))
                    ))
                }
            };
            let mac = Zeroizing::new(session.sign(&Mechanism::Sha256Hmac, key, &challenge(name))?);
            Ok(Zeroizing::new(hex::encode(&mac[..])))
        })
    }
}

/// Runs `f` in a user session on the token labelled `label` of `module`, then logs out
/// (and finalizes the library when this call initialized it).
fn with_token<T>(module: &Path, label: &str, pin: &str, f: impl FnOnce(&Session) -> Res<T>) -> Res<T> {
    let pkcs11 = Pkcs11::new(module)
        .map_err(|e| Failure(format!("cannot load the custodian token module {}: {e}", module.display())))?;
    let owns = match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => true,
        // The collabvault module's root uses the same library in this process.
        Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
        Err(e) => return Err(e.into()),
    };
    let result = (|| {
        let slot = pkcs11
            .get_slots_with_initialized_token()?
            .into_iter()
            .find(|s| pkcs11.get_token_info(*s).is_ok_and(|t| t.label() == label))
            .ok_or_else(|| Failure(format!("no token labelled {label:?} in {}", module.display())))?;
        let session = pkcs11.open_rw_session(slot)?;
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return fail(format!("the custodian token {label:?} refused the PIN: {e}")),
        }
        let out = f(&session);
        drop(session.logout());
        out
    })();
    if owns {
        drop(pkcs11.finalize());
    }
    result
}

/// The custodian's HMAC key on their token, checked to be what [`make_key`] makes.
fn find_key(session: &Session, name: &str) -> Res<Option<ObjectHandle>> {
    let found =
        session.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(key_label(name))])?;
    let Some(&key) = found.first() else { return Ok(None) };
    let attrs = session.get_attributes(key, &[AttributeType::Sensitive, AttributeType::Extractable])?;
    let readable = attrs.iter().any(|a| matches!(a, Attribute::Sensitive(false) | Attribute::Extractable(true)));
    if readable || attrs.len() < 2 {
        return fail(format!(
            "the custodian key of {name} on their token is refused: it is not sensitive and non-extractable"
        ));
    }
    Ok(Some(key))
}

/// A new HMAC key on the custodian's token that never leaves it.
fn make_key(session: &Session, name: &str) -> Res<ObjectHandle> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(32.into()),
        Attribute::Label(key_label(name)),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ];
    Ok(session.generate_key(&Mechanism::GenericSecretKeyGen, &template)?)
}
