//! A fuzzer over the whole C ABI, on the stable toolchain: random sequences of calls
//! (sessions, logins with right and wrong PINs, objects with random templates, every
//! mechanism the token lists with random parameters and buffer sizes, wrap/unwrap, the
//! message API, encapsulate/decapsulate, the vendor mechanisms, random, finalize and
//! re-initialize) over valid, stale and made-up handles, through the built `.so`'s raw
//! 3.2 function list.
//!
//! Every step is checked, not only for a crash:
//! - no panic reached the boundary (the module logs each one it catches);
//! - the return code is one the spec allows for that function ([`allowed`]);
//! - no output is written past the length the caller gave (canary bytes after it);
//! - no sensitive key value comes back: `C_GetAttributeValue` never returns key material
//!   of a sensitive or unextractable key, and no output of any call contains the value
//!   of a key imported sensitive and unextractable;
//!
//! and after each sequence the store still opens and its audit chain verifies
//! (`cvault audit verify`).
//!
//! Budget: `FUZZ_SECONDS` (default 20 s); replay a failure with the `FUZZ_SEED` it
//! prints. `scripts/fuzz.sh` runs the long budget.

// Raw C ABI calls through the function list need `unsafe`; each passes live locals or
// buffers of the lengths stated beside them.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::mem::size_of;
use std::ptr::null_mut;

use collabvault_pkcs11::names::rv_name;
use collabvault_pkcs11::vendor::*;
use common::fuzz::{run, Rng};
use common::raw::Api;
use common::{Workspace, SO_PIN, USER_PIN};
use cryptoki_sys::*;

/// `CK_UNAVAILABLE_INFORMATION`: the length of a value the token will not give.
const UNAVAILABLE: CK_ULONG = CK_ULONG::MAX;

/// How often each function answered each code over the run: printed at the end, so a
/// run shows how deep it got (a fuzzer that only ever hears CKR_SESSION_HANDLE_INVALID
/// tests little).
static STATS: std::sync::Mutex<BTreeMap<(&'static str, CK_RV), u64>> = std::sync::Mutex::new(BTreeMap::new());

/// The log line the panic boundary writes (src/ffi/mod.rs).
const PANIC_LINE: &str = "internal panic caught at the C boundary";
/// Canary bytes after every output buffer.
const CANARY: usize = 16;
const CANARY_BYTE: u8 = 0xa5;
/// Steps per case: long enough to build state, short enough that a case (and its
/// store's audit verification) finishes in about a second.
const STEPS: usize = 400;

macro_rules! f {
    ($fz:expr, $name:ident) => {
        $fz.api.f.$name.expect(stringify!($name))
    };
}

/// The codes PKCS#11 3.0/3.2 (§5, each function's "Return values", plus §5.1's
/// universal codes) lets `function` return. Written out per function family; a code
/// outside its set is a finding.
fn allowed(function: &str) -> Vec<CK_RV> {
    // §5.1.1 universal, §5.1.3 token codes, and CRYPTOKI_NOT_INITIALIZED (§5.1.5).
    let mut rv = vec![
        CKR_OK,
        CKR_GENERAL_ERROR,
        CKR_HOST_MEMORY,
        CKR_FUNCTION_FAILED,
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_TOKEN_NOT_PRESENT,
        CKR_CRYPTOKI_NOT_INITIALIZED,
        CKR_ARGUMENTS_BAD,
    ];
    // §5.1.2: every function that takes a session handle.
    let session = [CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_FUNCTION_CANCELED];
    let slot = [CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_RECOGNIZED];
    let template = [
        CKR_ATTRIBUTE_READ_ONLY,
        CKR_ATTRIBUTE_TYPE_INVALID,
        CKR_ATTRIBUTE_VALUE_INVALID,
        CKR_TEMPLATE_INCOMPLETE,
        CKR_TEMPLATE_INCONSISTENT,
        CKR_CURVE_NOT_SUPPORTED,
        CKR_DOMAIN_PARAMS_INVALID,
        CKR_SESSION_READ_ONLY,
        CKR_TOKEN_WRITE_PROTECTED,
        CKR_USER_NOT_LOGGED_IN,
        CKR_PIN_EXPIRED,
    ];
    let mechanism = [CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, CKR_OPERATION_ACTIVE];
    let key = [
        CKR_KEY_HANDLE_INVALID,
        CKR_KEY_SIZE_RANGE,
        CKR_KEY_TYPE_INCONSISTENT,
        CKR_KEY_FUNCTION_NOT_PERMITTED,
        CKR_USER_NOT_LOGGED_IN,
        CKR_PIN_EXPIRED,
    ];
    // Update/final/one-shot calls of an operation.
    let running = [CKR_OPERATION_NOT_INITIALIZED, CKR_USER_NOT_LOGGED_IN, CKR_BUFFER_TOO_SMALL];
    let data = [CKR_DATA_INVALID, CKR_DATA_LEN_RANGE];
    let encrypted = [CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_AEAD_DECRYPT_FAILED];
    match function {
        "C_Initialize" => {
            rv.retain(|c| *c != CKR_CRYPTOKI_NOT_INITIALIZED);
            rv.extend([CKR_CANT_LOCK, CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_NEED_TO_CREATE_THREADS]);
        }
        "C_Finalize" | "C_GetInfo" => {}
        "C_GetSlotList" => rv.push(CKR_BUFFER_TOO_SMALL),
        "C_GetSlotInfo" | "C_GetTokenInfo" => rv.extend(slot),
        "C_GetMechanismList" => rv.extend(slot.iter().copied().chain([CKR_BUFFER_TOO_SMALL])),
        "C_GetMechanismInfo" => rv.extend(slot.iter().copied().chain([CKR_MECHANISM_INVALID])),
        "C_InitToken" => rv.extend(slot.iter().copied().chain([
            CKR_PIN_INCORRECT,
            CKR_PIN_LOCKED,
            CKR_SESSION_EXISTS,
            CKR_TOKEN_WRITE_PROTECTED,
            CKR_FUNCTION_CANCELED,
        ])),
        "C_OpenSession" => rv.extend(slot.iter().copied().chain([
            CKR_SESSION_COUNT,
            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            CKR_SESSION_READ_WRITE_SO_EXISTS,
            CKR_TOKEN_WRITE_PROTECTED,
        ])),
        "C_CloseAllSessions" => rv.extend(slot),
        "C_CloseSession" | "C_GetSessionInfo" => rv.extend(session),
        "C_InitPIN" | "C_SetPIN" => rv.extend(session.iter().copied().chain([
            CKR_PIN_INCORRECT,
            CKR_PIN_INVALID,
            CKR_PIN_LEN_RANGE,
            CKR_PIN_LOCKED,
            CKR_SESSION_READ_ONLY,
            CKR_TOKEN_WRITE_PROTECTED,
            CKR_USER_NOT_LOGGED_IN,
        ])),
        "C_Login" => rv.extend(session.iter().copied().chain([
            CKR_OPERATION_NOT_INITIALIZED,
            CKR_PIN_INCORRECT,
            CKR_PIN_LOCKED,
            CKR_PIN_EXPIRED,
            CKR_SESSION_READ_ONLY_EXISTS,
            CKR_USER_ALREADY_LOGGED_IN,
            CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            CKR_USER_PIN_NOT_INITIALIZED,
            CKR_USER_TOO_MANY_TYPES,
            CKR_USER_TYPE_INVALID,
        ])),
        "C_Logout" => rv.extend(session.iter().copied().chain([CKR_USER_NOT_LOGGED_IN])),
        "C_CreateObject" => rv.extend(session.iter().chain(&template).copied()),
        "C_CopyObject" => rv
            .extend(session.iter().chain(&template).copied().chain([CKR_OBJECT_HANDLE_INVALID, CKR_ACTION_PROHIBITED])),
        "C_DestroyObject" => rv.extend(session.iter().copied().chain([
            CKR_OBJECT_HANDLE_INVALID,
            CKR_ACTION_PROHIBITED,
            CKR_SESSION_READ_ONLY,
            CKR_TOKEN_WRITE_PROTECTED,
            CKR_USER_NOT_LOGGED_IN,
            CKR_PIN_EXPIRED,
        ])),
        "C_GetObjectSize" => {
            rv.extend(session.iter().copied().chain([CKR_OBJECT_HANDLE_INVALID, CKR_INFORMATION_SENSITIVE]))
        }
        "C_GetAttributeValue" => rv.extend(session.iter().copied().chain([
            CKR_OBJECT_HANDLE_INVALID,
            CKR_ATTRIBUTE_SENSITIVE,
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_BUFFER_TOO_SMALL,
        ])),
        "C_SetAttributeValue" => rv
            .extend(session.iter().chain(&template).copied().chain([CKR_OBJECT_HANDLE_INVALID, CKR_ACTION_PROHIBITED])),
        "C_FindObjectsInit" => rv.extend(session.iter().copied().chain([
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_ATTRIBUTE_VALUE_INVALID,
            CKR_OPERATION_ACTIVE,
            CKR_PIN_EXPIRED,
        ])),
        "C_FindObjects" | "C_FindObjectsFinal" => {
            rv.extend(session.iter().copied().chain([CKR_OPERATION_NOT_INITIALIZED]))
        }
        "C_EncryptInit"
        | "C_DecryptInit"
        | "C_SignInit"
        | "C_VerifyInit"
        | "C_MessageEncryptInit"
        | "C_MessageDecryptInit" => rv.extend(session.iter().chain(&mechanism).chain(&key).copied()),
        "C_DigestInit" => rv.extend(session.iter().chain(&mechanism).copied().chain([CKR_USER_NOT_LOGGED_IN])),
        "C_Encrypt" | "C_EncryptUpdate" | "C_EncryptFinal" | "C_Digest" | "C_DigestUpdate" | "C_DigestFinal"
        | "C_Sign" | "C_SignUpdate" | "C_SignFinal" => {
            rv.extend(session.iter().chain(&running).chain(&data).copied().chain([CKR_FUNCTION_REJECTED]))
        }
        "C_Decrypt" | "C_DecryptUpdate" | "C_DecryptFinal" => {
            rv.extend(session.iter().chain(&running).chain(&encrypted).copied())
        }
        "C_DigestKey" => rv.extend(session.iter().chain(&running).copied().chain([
            CKR_KEY_HANDLE_INVALID,
            CKR_KEY_INDIGESTIBLE,
            CKR_KEY_SIZE_RANGE,
        ])),
        "C_Verify" | "C_VerifyUpdate" | "C_VerifyFinal" => rv.extend(
            session
                .iter()
                .chain(&running)
                .chain(&data)
                .copied()
                .chain([CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE]),
        ),
        // §5.19 (3.0): the per-message parameters are the mechanism's, so their
        // validation answers CKR_MECHANISM_PARAM_INVALID as an *Init would.
        "C_EncryptMessage" | "C_EncryptMessageBegin" | "C_EncryptMessageNext" | "C_MessageEncryptFinal" => rv.extend(
            session
                .iter()
                .chain(&running)
                .chain(&data)
                .copied()
                .chain([CKR_MECHANISM_PARAM_INVALID, CKR_OPERATION_ACTIVE]),
        ),
        "C_DecryptMessage" | "C_DecryptMessageBegin" | "C_DecryptMessageNext" | "C_MessageDecryptFinal" => rv.extend(
            session
                .iter()
                .chain(&running)
                .chain(&encrypted)
                .copied()
                .chain([CKR_MECHANISM_PARAM_INVALID, CKR_OPERATION_ACTIVE]),
        ),
        "C_GenerateKey" => rv.extend(session.iter().chain(&mechanism).chain(&template).copied()),
        // Seed 0xb0339af44e9b701b: an RSA modulus outside C_GetMechanismInfo's range is
        // CKR_KEY_SIZE_RANGE, a deliberate choice (README, "Mechanisms": what SoftHSM2 and
        // the clients that test for it answer) that the spec's list for this function omits.
        "C_GenerateKeyPair" => {
            rv.extend(session.iter().chain(&mechanism).chain(&template).copied().chain([CKR_KEY_SIZE_RANGE]))
        }
        "C_WrapKey" => rv.extend(session.iter().chain(&mechanism).chain(&key).copied().chain([
            CKR_BUFFER_TOO_SMALL,
            CKR_KEY_NOT_WRAPPABLE,
            CKR_KEY_UNEXTRACTABLE,
            CKR_WRAPPING_KEY_HANDLE_INVALID,
            CKR_WRAPPING_KEY_SIZE_RANGE,
            CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
        ])),
        "C_UnwrapKey" => rv.extend(session.iter().chain(&mechanism).chain(&template).copied().chain([
            CKR_KEY_FUNCTION_NOT_PERMITTED,
            CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            CKR_UNWRAPPING_KEY_SIZE_RANGE,
            CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            CKR_WRAPPED_KEY_INVALID,
            CKR_WRAPPED_KEY_LEN_RANGE,
        ])),
        "C_DeriveKey" => rv.extend(session.iter().chain(&mechanism).chain(&key).chain(&template).copied()),
        "C_EncapsulateKey" => rv.extend(
            session.iter().chain(&mechanism).chain(&key).chain(&template).copied().chain([CKR_BUFFER_TOO_SMALL]),
        ),
        "C_DecapsulateKey" => {
            rv.extend(session.iter().chain(&mechanism).chain(&key).chain(&template).chain(&encrypted).copied())
        }
        "C_GenerateRandom" | "C_SeedRandom" => rv.extend(session.iter().copied().chain([
            CKR_OPERATION_ACTIVE,
            CKR_RANDOM_NO_RNG,
            CKR_RANDOM_SEED_NOT_SUPPORTED,
            CKR_USER_NOT_LOGGED_IN,
        ])),
        other => panic!("no return-code list for {other}"),
    }
    rv
}

/// The key types a mechanism runs with (empty: any, or none).
fn key_type_for(m: CK_MECHANISM_TYPE) -> &'static [CK_KEY_TYPE] {
    match m {
        CKM_AES_ECB | CKM_AES_CBC | CKM_AES_CBC_PAD | CKM_AES_CTR | CKM_AES_GCM | CKM_AES_KEY_WRAP
        | CKM_AES_KEY_WRAP_KWP | CKM_AES_KEY_WRAP_PAD | CKM_AES_CMAC | CKM_AES_CMAC_GENERAL => &[CKK_AES],
        CKM_ECDSA | CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384 | CKM_ECDSA_SHA512 | CKM_ECDSA_SHA1 | CKM_ECDH1_DERIVE => {
            &[CKK_EC]
        }
        CKM_EDDSA => &[CKK_EC_EDWARDS],
        CKM_ML_KEM => &[CKK_ML_KEM],
        CKM_ML_DSA => &[CKK_ML_DSA],
        CKM_SHA256_HMAC
        | CKM_SHA256_HMAC_GENERAL
        | CKM_SHA_1_HMAC
        | CKM_SHA384_HMAC
        | CKM_SHA512_HMAC
        | CKM_SHA224_HMAC
        | CKM_SHA_1_HMAC_GENERAL
        | CKM_SHA384_HMAC_GENERAL
        | CKM_SHA512_HMAC_GENERAL => &[CKK_GENERIC_SECRET, CKK_SHA256_HMAC],
        CKM_RSA_PKCS
        | CKM_RSA_PKCS_OAEP
        | CKM_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS
        | CKM_SHA512_RSA_PKCS
        | CKM_RSA_X_509 => &[CKK_RSA],
        _ => &[],
    }
}

/// Attribute types the generator draws from: every standard one the token deals in,
/// the vendor ones, and a few no token knows.
const ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_KEY_TYPE,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_DERIVE,
    CKA_ENCAPSULATE,
    CKA_DECAPSULATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_TRUSTED,
    CKA_WRAP_WITH_TRUSTED,
    CKA_WRAP_TEMPLATE,
    CKA_UNWRAP_TEMPLATE,
    CKA_DERIVE_TEMPLATE,
    CKA_ALLOWED_MECHANISMS,
    CKA_UNIQUE_ID,
    CKA_CHECK_VALUE,
    CKA_KEY_GEN_MECHANISM,
    CKA_START_DATE,
    CKA_PARAMETER_SET,
    CKA_SEED,
    CKA_CERTIFICATE_TYPE,
    CKA_SUBJECT,
    CKA_CV_ROLE,
    CKA_CV_KEY_VERSION,
    CKA_CV_LIFECYCLE,
    CKA_CV_CREATED,
    CKA_CV_CLASSIFICATION,
    CKA_CV_CURRENT,
    CKA_CV_BLOCKED,
    CKA_CV_STORED_RECORDS,
    0x7fff_0001,
    CKA_VENDOR_DEFINED | 0x1234,
];

/// Attributes that hold key material: never readable from a sensitive or unextractable key.
const KEY_MATERIAL: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_VALUE,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_SEED,
];

const BOOL_ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_DERIVE,
    CKA_ENCAPSULATE,
    CKA_DECAPSULATE,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_TRUSTED,
    CKA_WRAP_WITH_TRUSTED,
    CKA_CV_CURRENT,
    CKA_CV_BLOCKED,
];

/// DER `ecParameters`: the named curves the token knows, and one it does not.
const EC_PARAMS: &[&[u8]] = &[
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
    &[0x06, 0x03, 0x2b, 0x65, 0x70],
    &[0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9'],
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
];

/// An owned template: the `CK_ATTRIBUTE`s and the buffers their pointers name.
#[derive(Default)]
struct Tmpl {
    attrs: Vec<CK_ATTRIBUTE>,
    bufs: Vec<Vec<u8>>,
    nested: Vec<Vec<CK_ATTRIBUTE>>,
}

impl Tmpl {
    fn push(&mut self, ty: CK_ATTRIBUTE_TYPE, value: Vec<u8>) {
        self.bufs.push(value);
        let v = self.bufs.last_mut().expect("pushed");
        let p = if v.is_empty() { null_mut() } else { v.as_mut_ptr().cast() };
        self.attrs.push(CK_ATTRIBUTE { type_: ty, pValue: p, ulValueLen: v.len() as CK_ULONG });
    }

    fn ulong(&mut self, ty: CK_ATTRIBUTE_TYPE, v: CK_ULONG) {
        self.push(ty, v.to_ne_bytes().to_vec());
    }

    fn bool(&mut self, ty: CK_ATTRIBUTE_TYPE, v: bool) {
        self.push(ty, vec![u8::from(v)]);
    }

    fn ptr(&mut self) -> *mut CK_ATTRIBUTE {
        if self.attrs.is_empty() {
            null_mut()
        } else {
            self.attrs.as_mut_ptr()
        }
    }

    fn len(&self) -> CK_ULONG {
        self.attrs.len() as CK_ULONG
    }

    fn get_bool(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        self.attrs.iter().rev().find(|a| a.type_ == ty && a.ulValueLen == 1).map(|a| {
            // SAFETY: a one-byte value this template owns.
            unsafe { *a.pValue.cast::<u8>() != 0 }
        })
    }
}

/// An owned mechanism: the `CK_MECHANISM` and whatever its parameter points into.
struct Mech {
    m: CK_MECHANISM,
    _param: Vec<u8>,
    _bufs: Vec<Vec<u8>>,
}

/// Output buffer modes: the length query (NULL), short, exact or large.
struct Out {
    buf: Vec<u8>,
    cap: usize,
    null: bool,
    len: CK_ULONG,
}

impl Out {
    fn ptr(&mut self) -> *mut u8 {
        if self.null {
            null_mut()
        } else {
            self.buf.as_mut_ptr()
        }
    }
}

/// The state one case builds up and the properties it checks.
struct Fuzz {
    api: Api,
    rng: Rng,
    seed: u64,
    ws: Workspace,
    slot: CK_SLOT_ID,
    initialized: bool,
    sessions: Vec<CK_SESSION_HANDLE>,
    stale_sessions: Vec<CK_SESSION_HANDLE>,
    objects: Vec<CK_OBJECT_HANDLE>,
    stale_objects: Vec<CK_OBJECT_HANDLE>,
    mechs: Vec<(CK_MECHANISM_TYPE, CK_FLAGS)>,
    /// Values of keys imported sensitive and unextractable: no output may hold them.
    secrets: Vec<Vec<u8>>,
    /// Outputs worth feeding back (ciphertexts, signatures, wrapped keys, points).
    blobs: Vec<Vec<u8>>,
    so_pin: Vec<u8>,
    user_pin: Vec<u8>,
    log_offset: u64,
    trace: Vec<String>,
    /// `FUZZ_TRACE` set: every call printed as it returns (for a replayed abort).
    print_trace: bool,
}

impl Fuzz {
    fn fail(&self, what: &str) -> ! {
        let tail: Vec<_> = self.trace.iter().rev().take(25).rev().cloned().collect();
        panic!(
            "property broken: {what}\nseed {:#x} (FUZZ_SEED={:#x}); last calls:\n  {}",
            self.seed,
            self.seed,
            tail.join("\n  ")
        );
    }

    /// New log lines since the last step: a caught panic is a failure.
    fn check_log(&mut self) {
        let path = self.ws.dir.path().join("module.log");
        let Ok(mut file) = std::fs::File::open(&path) else { return };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.log_offset {
            self.log_offset = 0;
        }
        let mut fresh = String::new();
        if file.seek(SeekFrom::Start(self.log_offset)).is_ok() && file.read_to_string(&mut fresh).is_ok() {
            self.log_offset += fresh.len() as u64;
            if let Some(line) = fresh.lines().find(|l| l.contains(PANIC_LINE)) {
                let line = line.to_string();
                self.fail(&format!("a panic reached the boundary: {line}"));
            }
        }
    }

    /// Records and checks one call's return code.
    fn check(&mut self, function: &'static str, rv: CK_RV, note: String) -> CK_RV {
        self.trace.push(format!("{function}({note}) -> {}", rv_name(rv)));
        if self.print_trace {
            eprintln!("  {}", self.trace.last().expect("pushed"));
        }
        *STATS.lock().unwrap_or_else(|e| e.into_inner()).entry((function, rv)).or_default() += 1;
        self.check_log();
        if !allowed(function).contains(&rv) {
            self.fail(&format!("{function} returned {} ({rv:#x}), which the spec does not allow", rv_name(rv)));
        }
        if rv == CKR_GENERAL_ERROR {
            self.fail(&format!("{function} returned CKR_GENERAL_ERROR (an internal error)"));
        }
        rv
    }

    /// Checks an output after the call: nothing written past its length, and no
    /// sensitive value in it. Keeps it as a blob to feed back.
    fn check_out(&mut self, function: &'static str, rv: CK_RV, out: &Out) {
        if out.buf[out.cap..].iter().any(|b| *b != CANARY_BYTE) {
            self.fail(&format!("{function} wrote past the {}-byte output", out.cap));
        }
        if rv == CKR_OK && !out.null {
            if out.len as usize > out.cap {
                self.fail(&format!("{function} said it wrote {} bytes into {}", out.len, out.cap));
            }
            let written = out.buf[..out.len as usize].to_vec();
            self.check_secret(function, &written);
            self.keep(written);
        }
    }

    fn check_secret(&self, function: &str, bytes: &[u8]) {
        for s in &self.secrets {
            if bytes.windows(16).any(|w| w == &s[..16]) {
                self.fail(&format!("{function} returned the value of a sensitive, unextractable key"));
            }
        }
    }

    fn keep(&mut self, blob: Vec<u8>) {
        if blob.is_empty() {
            return;
        }
        if self.blobs.len() >= 32 {
            let i = self.rng.below(self.blobs.len());
            self.blobs[i] = blob;
        } else {
            self.blobs.push(blob);
        }
    }

    // ---- generated arguments ----

    fn session(&mut self) -> CK_SESSION_HANDLE {
        match self.rng.below(20) {
            0 if !self.stale_sessions.is_empty() => self.rng.pick(&self.stale_sessions),
            1 => self.rng.ulong(),
            2 => 0,
            _ if !self.sessions.is_empty() => self.rng.pick(&self.sessions),
            _ => self.rng.below(8) as CK_ULONG,
        }
    }

    fn object(&mut self) -> CK_OBJECT_HANDLE {
        match self.rng.below(20) {
            0 if !self.stale_objects.is_empty() => self.rng.pick(&self.stale_objects),
            1 => self.rng.ulong(),
            2 => 0,
            _ if !self.objects.is_empty() => self.rng.pick(&self.objects),
            _ => self.rng.below(64) as CK_ULONG,
        }
    }

    /// A key for `mechanism`: half the time one whose CKA_KEY_TYPE fits it (so the
    /// operation itself runs, not only its refusals), else any handle.
    fn key_for(&mut self, s: CK_SESSION_HANDLE, mechanism: CK_MECHANISM_TYPE) -> CK_OBJECT_HANDLE {
        let want = key_type_for(mechanism);
        if want.is_empty() || self.rng.chance(50) {
            return self.object();
        }
        let fits: Vec<_> = self.objects.clone().into_iter().filter(|o| want.contains(&self.key_type(s, *o))).collect();
        if fits.is_empty() {
            self.object()
        } else {
            self.rng.pick(&fits)
        }
    }

    /// An object's CKA_KEY_TYPE, or an impossible value (not a checked call).
    fn key_type(&self, s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_KEY_TYPE {
        let mut kt: CK_KEY_TYPE = CK_ULONG::MAX;
        let mut a = CK_ATTRIBUTE { type_: CKA_KEY_TYPE, pValue: (&raw mut kt).cast(), ulValueLen: 8 };
        let rv = unsafe { f!(self, C_GetAttributeValue)(s, o, &mut a, 1) };
        if rv == CKR_OK {
            kt
        } else {
            CK_ULONG::MAX
        }
    }

    fn data(&mut self) -> Vec<u8> {
        if !self.blobs.is_empty() && self.rng.chance(30) {
            let mut b = self.blobs[self.rng.below(self.blobs.len())].clone();
            if self.rng.chance(30) && !b.is_empty() {
                let i = self.rng.below(b.len());
                b[i] ^= 1 << self.rng.below(8);
            }
            if self.rng.chance(15) {
                let n = self.rng.below(b.len() + 1);
                b.truncate(n);
            }
            return b;
        }
        let n = self.rng.len(300);
        self.rng.bytes(n)
    }

    /// An output buffer: NULL (the length query), or 0, short, exact-ish or large.
    fn out(&mut self) -> Out {
        let null = self.rng.chance(20);
        let cap = if null { 0 } else { self.rng.len(9000) };
        let mut buf = vec![0u8; cap + CANARY];
        buf[cap..].fill(CANARY_BYTE);
        let len = if null { self.rng.ulong() } else { cap as CK_ULONG };
        Out { buf, cap, null, len }
    }

    /// A template: a few attributes of the shape the type wants (mostly), or junk.
    fn template(&mut self, size: usize) -> Tmpl {
        self.template_at(size, 0)
    }

    /// `depth` 1 is a nested template (an attribute-array value), which holds no more.
    fn template_at(&mut self, size: usize, depth: usize) -> Tmpl {
        let mut t = Tmpl::default();
        let n = self.rng.below(size + 1);
        for _ in 0..n {
            let ty = if self.rng.chance(60) { self.rng.pick(BOOL_ATTRS) } else { self.rng.pick(ATTRS) };
            self.attribute(&mut t, ty, depth);
        }
        t
    }

    fn attribute(&mut self, t: &mut Tmpl, ty: CK_ATTRIBUTE_TYPE, depth: usize) {
        // One value in ten has a length no type wants; never an attribute array's, whose
        // value the token follows as pointers (random bytes there would be garbage
        // pointers: a broken caller, not a finding; an early run aborted on exactly that).
        let array = matches!(ty, CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE);
        if self.rng.chance(10) && !array {
            let n = self.rng.len(40);
            let v = self.rng.bytes(n);
            return t.push(ty, v);
        }
        match ty {
            CKA_WRAP_TEMPLATE | CKA_UNWRAP_TEMPLATE | CKA_DERIVE_TEMPLATE if depth == 0 => {
                let mut inner = self.template_at(3, 1);
                // The nested array is kept alive by the outer template.
                let n = inner.attrs.len();
                t.bufs.append(&mut inner.bufs);
                t.nested.push(std::mem::take(&mut inner.attrs));
                let v = t.nested.last_mut().expect("pushed");
                let p = if n == 0 { null_mut() } else { v.as_mut_ptr().cast() };
                t.attrs.push(CK_ATTRIBUTE {
                    type_: ty,
                    pValue: p,
                    ulValueLen: (n * size_of::<CK_ATTRIBUTE>()) as CK_ULONG,
                });
            }
            _ if BOOL_ATTRS.contains(&ty) => {
                let v = self.rng.chance(70);
                t.bool(ty, v);
            }
            CKA_CLASS => {
                let v =
                    self.rng.pick(&[CKO_DATA, CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY, 77]);
                t.ulong(ty, v);
            }
            CKA_KEY_TYPE => {
                let v = self.rng.pick(&[
                    CKK_AES,
                    CKK_GENERIC_SECRET,
                    CKK_EC,
                    CKK_RSA,
                    CKK_EC_EDWARDS,
                    CKK_ML_KEM,
                    CKK_ML_DSA,
                    CKK_SHA256_HMAC,
                    0x7777,
                ]);
                t.ulong(ty, v);
            }
            CKA_EC_PARAMS => {
                let v = self.rng.pick(EC_PARAMS).to_vec();
                t.push(ty, v);
            }
            CKA_VALUE_LEN => {
                let v = if self.rng.chance(70) { self.rng.pick(&[16, 24, 32]) } else { self.rng.ulong() };
                t.ulong(ty, v);
            }
            CKA_MODULUS_BITS => {
                let v = if self.rng.chance(70) { 2048 } else { self.rng.ulong() };
                t.ulong(ty, v);
            }
            CKA_PARAMETER_SET => {
                let v = self.rng.pick(&[CKP_ML_KEM_512, CKP_ML_KEM_768, CKP_ML_KEM_1024, CKP_ML_DSA_65, 0, 99]);
                t.ulong(ty, v);
            }
            CKA_PUBLIC_EXPONENT => t.push(ty, vec![1, 0, 1]),
            CKA_ALLOWED_MECHANISMS => {
                let n = self.rng.below(4);
                let mut v = Vec::new();
                for _ in 0..n {
                    let m = if self.mechs.is_empty() { self.rng.ulong() } else { self.rng.pick(&self.mechs).0 };
                    v.extend_from_slice(&m.to_ne_bytes());
                }
                t.push(ty, v);
            }
            CKA_CERTIFICATE_TYPE
            | CKA_KEY_GEN_MECHANISM
            | CKA_CV_ROLE
            | CKA_CV_KEY_VERSION
            | CKA_CV_LIFECYCLE
            | CKA_CV_CREATED
            | CKA_CV_STORED_RECORDS => {
                let v = if self.rng.chance(50) { self.rng.below(6) as CK_ULONG } else { self.rng.ulong() };
                t.ulong(ty, v);
            }
            _ => {
                let n = if ty == CKA_VALUE && self.rng.chance(60) {
                    self.rng.pick(&[16, 24, 32])
                } else {
                    self.rng.len(64)
                };
                let v = self.rng.bytes(n);
                t.push(ty, v);
            }
        }
    }

    fn mechanism_type(&mut self) -> CK_MECHANISM_TYPE {
        if self.mechs.is_empty() || self.rng.chance(5) {
            let any = self.rng.ulong();
            return self.rng.pick(&[any, 0x7fff_fff0, CKM_VENDOR_DEFINED | 0x4356_00ff]);
        }
        self.rng.pick(&self.mechs).0
    }

    /// A mechanism with flag `flag` (mostly), with a parameter of its shape (mostly).
    fn mechanism(&mut self, flag: CK_FLAGS) -> Mech {
        let with: Vec<_> = self.mechs.iter().filter(|(_, f)| f & flag != 0).map(|(m, _)| *m).collect();
        let ty = if !with.is_empty() && self.rng.chance(85) { self.rng.pick(&with) } else { self.mechanism_type() };
        self.mech_of(ty)
    }

    fn mech_of(&mut self, ty: CK_MECHANISM_TYPE) -> Mech {
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        let mut buf = |rng: &mut Rng, max: usize| -> (*mut u8, CK_ULONG) {
            let n = rng.len(max);
            let mut v = rng.bytes(n);
            let p = if n == 0 && rng.chance(50) { null_mut() } else { v.as_mut_ptr() };
            let r = (p, n as CK_ULONG);
            bufs.push(v);
            r
        };
        fn raw<T>(v: &T) -> Vec<u8> {
            // SAFETY: viewing a plain C struct as its bytes.
            unsafe { std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), size_of::<T>()).to_vec() }
        }
        let junk = self.rng.chance(10);
        let param: Vec<u8> = if junk {
            self.junk_param()
        } else {
            match ty {
                CKM_AES_GCM => {
                    let (iv, ivl) = buf(&mut self.rng, 64);
                    let (aad, aadl) = buf(&mut self.rng, 64);
                    let any = self.rng.ulong();
                    let tag = self.rng.pick(&[128, 96, 64, 120, 0, 7, 136, any]);
                    raw(&CK_GCM_PARAMS {
                        pIv: iv,
                        ulIvLen: ivl,
                        ulIvBits: ivl * 8,
                        pAAD: aad,
                        ulAADLen: aadl,
                        ulTagBits: tag,
                    })
                }
                CKM_AES_CBC | CKM_AES_CBC_PAD => {
                    let n = if self.rng.chance(80) { 16 } else { self.rng.len(32) };
                    self.rng.bytes(n)
                }
                CKM_AES_CTR => {
                    let any = self.rng.ulong();
                    let bits = self.rng.pick(&[128, 32, 64, 0, 129, any]);
                    let mut cb = [0u8; 16];
                    cb.copy_from_slice(&self.rng.bytes(16));
                    if self.rng.chance(30) {
                        cb[8..].fill(0xff);
                    }
                    raw(&CK_AES_CTR_PARAMS { ulCounterBits: bits, cb })
                }
                CKM_ECDH1_DERIVE => {
                    let mut point = self.data();
                    let (shared, sl) = buf(&mut self.rng, 32);
                    let kdf = self.rng.pick(&[CKD_NULL, CKD_SHA256_KDF, 0, 99]);
                    let p = CK_ECDH1_DERIVE_PARAMS {
                        kdf,
                        ulSharedDataLen: sl,
                        pSharedData: shared,
                        ulPublicDataLen: point.len() as CK_ULONG,
                        pPublicData: if point.is_empty() { null_mut() } else { point.as_mut_ptr() },
                    };
                    bufs.push(point);
                    raw(&p)
                }
                CKM_SHA256_HMAC_GENERAL
                | CKM_SHA_1_HMAC_GENERAL
                | CKM_SHA384_HMAC_GENERAL
                | CKM_SHA512_HMAC_GENERAL
                | CKM_AES_CMAC_GENERAL => {
                    let any = self.rng.ulong();
                    self.rng.pick(&[0u64, 1, 4, 16, 32, 33, 64, 65, any]).to_ne_bytes().to_vec()
                }
                CKM_RSA_PKCS_PSS
                | CKM_SHA256_RSA_PKCS_PSS
                | CKM_SHA384_RSA_PKCS_PSS
                | CKM_SHA512_RSA_PKCS_PSS
                | CKM_SHA1_RSA_PKCS_PSS => {
                    let any = self.rng.ulong();
                    raw(&CK_RSA_PKCS_PSS_PARAMS {
                        hashAlg: self.rng.pick(&[CKM_SHA256, CKM_SHA384, CKM_SHA512, CKM_SHA_1, 0x999]),
                        mgf: self.rng.pick(&[CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA1, 0, 77]),
                        sLen: self.rng.pick(&[32, 0, 20, 64, 1000, any]),
                    })
                }
                CKM_RSA_PKCS_OAEP => {
                    let (label, ll) = buf(&mut self.rng, 32);
                    raw(&CK_RSA_PKCS_OAEP_PARAMS {
                        hashAlg: self.rng.pick(&[CKM_SHA256, CKM_SHA384, CKM_SHA_1, 0x999]),
                        mgf: self.rng.pick(&[CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA1, 77]),
                        source: self.rng.pick(&[CKZ_DATA_SPECIFIED, 0, 5]),
                        pSourceData: label.cast(),
                        ulSourceDataLen: ll,
                    })
                }
                CKM_EDDSA if self.rng.chance(50) => {
                    let (ctx, cl) = buf(&mut self.rng, 300);
                    raw(&CK_EDDSA_PARAMS { phFlag: self.rng.pick(&[0, 1, 2]), ulContextDataLen: cl, pContextData: ctx })
                }
                CKM_CV_REWRAP_RECORD => self.data(),
                _ if self.rng.chance(85) => Vec::new(),
                _ => self.junk_param(),
            }
        };
        let mut param = param;
        let p = if param.is_empty() { null_mut() } else { param.as_mut_ptr().cast() };
        Mech {
            m: CK_MECHANISM { mechanism: ty, pParameter: p, ulParameterLen: param.len() as CK_ULONG },
            _param: param,
            _bufs: bufs,
        }
    }

    /// Junk parameter bytes. Never the size of a layout that holds pointers: a caller
    /// passing such a struct with garbage pointers breaks the C contract, and no token
    /// can tell (that would be a crash in the harness, not a finding).
    fn junk_param(&mut self) -> Vec<u8> {
        let avoid = common::fuzz::all_pointer_layouts();
        let mut n = self.rng.len(80);
        while avoid.contains(&n) {
            n = self.rng.len(80);
        }
        self.rng.bytes(n)
    }

    fn new_object(&mut self, rv: CK_RV, h: CK_OBJECT_HANDLE) {
        if rv == CKR_OK {
            self.objects.push(h);
        }
    }

    // ---- the steps ----

    fn step(&mut self) {
        if !self.initialized {
            // Mostly re-initialize; sometimes call into the finalized module first.
            if self.rng.chance(70) {
                self.initialize();
                if self.initialized {
                    self.restart();
                }
                return;
            }
        }
        // Sessions run out (closed, finalized): open one more often then.
        if self.sessions.is_empty() && self.rng.chance(50) {
            return self.open_session();
        }
        match self.rng.below(100) {
            // Finalize drops every session and session object: rarely, or nothing deep runs.
            0 if self.rng.chance(20) => self.finalize(),
            1 => self.initialize(),
            2..=4 => self.open_session(),
            5 => self.close_session(),
            6 => self.general(),
            7..=9 => self.login(),
            10 => self.logout(),
            11 => self.pins(),
            12..=17 => self.generate_key(),
            18..=21 => self.generate_key_pair(),
            22..=26 => self.create_object(),
            27..=28 => self.copy_object(),
            29..=30 => self.destroy_object(),
            31..=35 => self.get_attributes(),
            36..=38 => self.set_attributes(),
            39..=41 => self.find(),
            42..=51 => self.cipher(true),
            52..=58 => self.cipher(false),
            59..=63 => self.digest(),
            64..=71 => self.sign(),
            72..=77 => self.wrap(),
            78..=82 => self.unwrap(),
            83..=85 => self.derive(),
            86..=90 => self.message(),
            91..=95 => self.kem(),
            96..=97 => self.random(),
            _ => self.session_info(),
        }
    }

    fn initialize(&mut self) {
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: self.rng.pick(&[CKF_OS_LOCKING_OK, 0, CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS]),
            pReserved: null_mut(),
        };
        let p: *mut CK_C_INITIALIZE_ARGS = if self.rng.chance(50) { null_mut() } else { &mut args };
        let rv = unsafe { f!(self, C_Initialize)(p.cast()) };
        self.check("C_Initialize", rv, String::new());
        if rv == CKR_OK {
            self.initialized = true;
        }
    }

    fn finalize(&mut self) {
        let rv = unsafe { f!(self, C_Finalize)(null_mut()) };
        self.check("C_Finalize", rv, String::new());
        if rv == CKR_OK {
            self.initialized = false;
            self.stale_sessions.append(&mut self.sessions);
            // Session objects are gone; token objects come back through C_FindObjects.
            self.stale_objects.append(&mut self.objects);
        }
    }

    fn general(&mut self) {
        let slot = if self.rng.chance(85) { self.slot } else { self.rng.ulong() };
        match self.rng.below(6) {
            0 => {
                let mut info: CK_INFO = unsafe { std::mem::zeroed() };
                let rv = unsafe { f!(self, C_GetInfo)(&mut info) };
                self.check("C_GetInfo", rv, String::new());
            }
            1 => {
                let mut ids = [0 as CK_SLOT_ID; 4];
                let mut n = self.rng.below(5) as CK_ULONG;
                let p = if self.rng.chance(30) { null_mut() } else { ids.as_mut_ptr() };
                let rv = unsafe { f!(self, C_GetSlotList)(self.rng.pick(&[0, 1]), p, &mut n) };
                self.check("C_GetSlotList", rv, format!("n {n}"));
            }
            2 => {
                let mut info: CK_SLOT_INFO = unsafe { std::mem::zeroed() };
                let rv = unsafe { f!(self, C_GetSlotInfo)(slot, &mut info) };
                self.check("C_GetSlotInfo", rv, format!("slot {slot}"));
            }
            3 => {
                let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
                let rv = unsafe { f!(self, C_GetTokenInfo)(slot, &mut info) };
                self.check("C_GetTokenInfo", rv, format!("slot {slot}"));
            }
            4 => {
                let mut list = vec![0 as CK_MECHANISM_TYPE; 8];
                let mut n = self.rng.below(9) as CK_ULONG;
                let p = if self.rng.chance(30) { null_mut() } else { list.as_mut_ptr() };
                let rv = unsafe { f!(self, C_GetMechanismList)(slot, p, &mut n) };
                self.check("C_GetMechanismList", rv, format!("n {n}"));
            }
            _ => {
                let m = self.mechanism_type();
                let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
                let rv = unsafe { f!(self, C_GetMechanismInfo)(slot, m, &mut info) };
                self.check("C_GetMechanismInfo", rv, format!("{m:#x}"));
            }
        }
    }

    fn open_session(&mut self) {
        let slot = if self.rng.chance(90) { self.slot } else { self.rng.ulong() };
        let flags = match self.rng.below(10) {
            0 => self.rng.pick(&[CKF_RW_SESSION, 0]),
            1..=2 => CKF_SERIAL_SESSION,
            _ => CKF_SERIAL_SESSION | CKF_RW_SESSION,
        };
        let mut h = 0;
        let rv = unsafe { f!(self, C_OpenSession)(slot, flags, null_mut(), None, &mut h) };
        self.check("C_OpenSession", rv, format!("flags {flags:#x}"));
        if rv == CKR_OK {
            self.sessions.push(h);
        }
    }

    fn close_session(&mut self) {
        if self.rng.chance(10) {
            let rv = unsafe { f!(self, C_CloseAllSessions)(self.slot) };
            self.check("C_CloseAllSessions", rv, String::new());
            if rv == CKR_OK {
                self.stale_sessions.append(&mut self.sessions);
                self.stale_objects.append(&mut self.objects);
            }
            return;
        }
        let s = self.session();
        let rv = unsafe { f!(self, C_CloseSession)(s) };
        self.check("C_CloseSession", rv, format!("s {s}"));
        if rv == CKR_OK {
            self.sessions.retain(|x| *x != s);
            self.stale_sessions.push(s);
        }
    }

    fn session_info(&mut self) {
        let s = self.session();
        let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
        let p: *mut CK_SESSION_INFO = if self.rng.chance(10) { null_mut() } else { &mut info };
        let rv = unsafe { f!(self, C_GetSessionInfo)(s, p) };
        self.check("C_GetSessionInfo", rv, format!("s {s}"));
    }

    fn pin(&mut self, so: bool) -> Vec<u8> {
        // Mostly right; wrong ones count toward the lockout, which is part of the game.
        match self.rng.below(10) {
            0 => b"wrong-pin-0000".to_vec(),
            1 => {
                let n = self.rng.len(40);
                self.rng.bytes(n)
            }
            _ if so => self.so_pin.clone(),
            _ => self.user_pin.clone(),
        }
    }

    fn login(&mut self) {
        let s = self.session();
        let user = self.rng.pick(&[CKU_USER, CKU_USER, CKU_SO, CKU_CONTEXT_SPECIFIC, 7]);
        let mut pin = self.pin(user == CKU_SO);
        let p = if pin.is_empty() { null_mut() } else { pin.as_mut_ptr() };
        let rv = unsafe { f!(self, C_Login)(s, user, p, pin.len() as CK_ULONG) };
        self.check("C_Login", rv, format!("s {s} user {user}"));
    }

    fn logout(&mut self) {
        let s = self.session();
        let rv = unsafe { f!(self, C_Logout)(s) };
        self.check("C_Logout", rv, format!("s {s}"));
    }

    fn pins(&mut self) {
        let s = self.session();
        if self.rng.chance(50) {
            let mut pin = self.pin(false);
            let rv = unsafe { f!(self, C_InitPIN)(s, pin.as_mut_ptr(), pin.len() as CK_ULONG) };
            self.check("C_InitPIN", rv, format!("s {s}"));
            if rv == CKR_OK {
                self.user_pin = pin;
            }
        } else {
            // Which PIN C_SetPIN changes depends on who is logged in: try both as old.
            let so = self.rng.chance(30);
            let mut old = self.pin(so);
            let mut new = if self.rng.chance(50) { old.clone() } else { self.pin(so) };
            let rv = unsafe {
                f!(self, C_SetPIN)(s, old.as_mut_ptr(), old.len() as CK_ULONG, new.as_mut_ptr(), new.len() as CK_ULONG)
            };
            self.check("C_SetPIN", rv, format!("s {s}"));
            if rv == CKR_OK {
                let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
                unsafe { f!(self, C_GetSessionInfo)(s, &mut info) };
                if info.state == CKS_RW_SO_FUNCTIONS {
                    self.so_pin = new;
                } else {
                    self.user_pin = new;
                }
            }
        }
    }

    fn generate_key(&mut self) {
        let s = self.session();
        let mut m = self.mechanism(CKF_GENERATE);
        let mut t = self.template(8);
        if m.m.mechanism == CKM_AES_KEY_GEN && self.rng.chance(70) {
            t.ulong(CKA_VALUE_LEN, self.rng.pick(&[16, 24, 32]));
        }
        if m.m.mechanism == CKM_GENERIC_SECRET_KEY_GEN && self.rng.chance(70) {
            t.ulong(CKA_VALUE_LEN, self.rng.pick(&[16, 32, 64]));
        }
        let mut h = 0;
        let rv = unsafe { f!(self, C_GenerateKey)(s, &mut m.m, t.ptr(), t.len(), &mut h) };
        self.check("C_GenerateKey", rv, format!("s {s} {:#x}", m.m.mechanism));
        self.new_object(rv, h);
    }

    fn generate_key_pair(&mut self) {
        let s = self.session();
        let mut m = self.mechanism(CKF_GENERATE_KEY_PAIR);
        // RSA key generation takes a second: keep it rare so cases stay short.
        if m.m.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN && self.rng.chance(85) {
            return;
        }
        let mut public = self.template(5);
        let mut private = self.template(5);
        match m.m.mechanism {
            CKM_EC_KEY_PAIR_GEN | CKM_EC_EDWARDS_KEY_PAIR_GEN if self.rng.chance(80) => {
                let v = self.rng.pick(EC_PARAMS).to_vec();
                public.push(CKA_EC_PARAMS, v);
            }
            CKM_RSA_PKCS_KEY_PAIR_GEN if self.rng.chance(80) => public.ulong(CKA_MODULUS_BITS, 2048),
            CKM_ML_KEM_KEY_PAIR_GEN | CKM_ML_DSA_KEY_PAIR_GEN if self.rng.chance(80) => {
                let v = self.rng.pick(&[CKP_ML_KEM_512, CKP_ML_KEM_768, CKP_ML_KEM_1024, CKP_ML_DSA_44, CKP_ML_DSA_65]);
                public.ulong(CKA_PARAMETER_SET, v);
            }
            _ => {}
        }
        let (mut a, mut b) = (0, 0);
        let rv = unsafe {
            f!(self, C_GenerateKeyPair)(
                s,
                &mut m.m,
                public.ptr(),
                public.len(),
                private.ptr(),
                private.len(),
                &mut a,
                &mut b,
            )
        };
        self.check("C_GenerateKeyPair", rv, format!("s {s} {:#x}", m.m.mechanism));
        if rv == CKR_OK {
            self.objects.extend([a, b]);
        }
    }

    fn create_object(&mut self) {
        let s = self.session();
        let mut t = self.template(6);
        // Mostly a secret key with a value, so the leak property has values to watch.
        let mut watched = None;
        if self.rng.chance(60) {
            let n = self.rng.pick(&[16, 24, 32]);
            let value = self.rng.bytes(n);
            t.ulong(CKA_CLASS, CKO_SECRET_KEY);
            let kt = self.rng.pick(&[CKK_AES, CKK_GENERIC_SECRET]);
            t.ulong(CKA_KEY_TYPE, kt);
            let sensitive = self.rng.chance(60);
            let extractable = self.rng.chance(40);
            t.bool(CKA_SENSITIVE, sensitive);
            t.bool(CKA_EXTRACTABLE, extractable);
            t.push(CKA_VALUE, value.clone());
            if sensitive && !extractable {
                watched = Some(value);
            }
        } else if self.rng.chance(30) {
            t.ulong(CKA_CLASS, CKO_DATA);
        }
        let mut h = 0;
        let rv = unsafe { f!(self, C_CreateObject)(s, t.ptr(), t.len(), &mut h) };
        self.check("C_CreateObject", rv, format!("s {s} {} attrs", t.attrs.len()));
        if rv == CKR_OK {
            // A later attribute in the template may have overridden ours: watch only what
            // the template's last word says is sensitive and unextractable.
            if let Some(v) = watched {
                if t.get_bool(CKA_SENSITIVE) == Some(true) && t.get_bool(CKA_EXTRACTABLE) == Some(false) {
                    self.secrets.push(v);
                }
            }
        }
        self.new_object(rv, h);
    }

    fn copy_object(&mut self) {
        let s = self.session();
        let o = self.object();
        let mut t = self.template(4);
        let mut h = 0;
        let rv = unsafe { f!(self, C_CopyObject)(s, o, t.ptr(), t.len(), &mut h) };
        self.check("C_CopyObject", rv, format!("s {s} o {o}"));
        self.new_object(rv, h);
    }

    fn destroy_object(&mut self) {
        let s = self.session();
        let o = self.object();
        let rv = unsafe { f!(self, C_DestroyObject)(s, o) };
        self.check("C_DestroyObject", rv, format!("s {s} o {o}"));
        if rv == CKR_OK {
            self.objects.retain(|x| *x != o);
            self.stale_objects.push(o);
        }
    }

    fn get_attributes(&mut self) {
        let s = self.session();
        let o = self.object();
        if self.rng.chance(15) {
            let mut size = 0;
            let rv = unsafe { f!(self, C_GetObjectSize)(s, o, &mut size) };
            self.check("C_GetObjectSize", rv, format!("s {s} o {o}"));
            return;
        }
        let n = 1 + self.rng.below(5);
        let mut types: Vec<CK_ATTRIBUTE_TYPE> = Vec::new();
        for _ in 0..n {
            let ty = if self.rng.chance(40) { self.rng.pick(KEY_MATERIAL) } else { self.rng.pick(ATTRS) };
            types.push(ty);
        }
        let mut bufs: Vec<Vec<u8>> = types
            .iter()
            .map(|_| {
                let cap = self.rng.pick(&[0, 1, 8, 16, 32, 100, 600, 5000]);
                let mut b = vec![0u8; cap + CANARY];
                b[cap..].fill(CANARY_BYTE);
                b
            })
            .collect();
        let query = self.rng.chance(25);
        let mut attrs: Vec<CK_ATTRIBUTE> = types
            .iter()
            .zip(bufs.iter_mut())
            .map(|(ty, b)| {
                let cap = b.len() - CANARY;
                CK_ATTRIBUTE {
                    type_: *ty,
                    pValue: if query { null_mut() } else { b.as_mut_ptr().cast() },
                    ulValueLen: cap as CK_ULONG,
                }
            })
            .collect();
        let rv = unsafe { f!(self, C_GetAttributeValue)(s, o, attrs.as_mut_ptr(), attrs.len() as CK_ULONG) };
        self.check("C_GetAttributeValue", rv, format!("s {s} o {o} {types:x?}"));
        for (a, b) in attrs.iter().zip(&bufs) {
            let cap = b.len() - CANARY;
            if b[cap..].iter().any(|x| *x != CANARY_BYTE) {
                self.fail("C_GetAttributeValue wrote past an attribute's buffer");
            }
            if query || a.ulValueLen == UNAVAILABLE {
                continue;
            }
            if a.ulValueLen as usize > cap {
                self.fail("C_GetAttributeValue reported more bytes than it could have written");
            }
            let value = b[..a.ulValueLen as usize].to_vec();
            self.check_secret("C_GetAttributeValue", &value);
            if KEY_MATERIAL.contains(&a.type_) && self.is_secret_key_material(s, o) {
                self.fail(&format!(
                    "C_GetAttributeValue returned {} of a sensitive or unextractable key",
                    collabvault_pkcs11::names::attr_name(a.type_)
                ));
            }
            if a.type_ == CKA_EC_POINT || a.type_ == CKA_VALUE {
                self.keep(value);
            }
        }
    }

    /// Whether `o` is a private or secret key that is sensitive or unextractable.
    fn is_secret_key_material(&mut self, s: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> bool {
        let (mut class, mut sensitive, mut extractable): (CK_ULONG, u8, u8) = (0, 0, 1);
        let mut attrs = [
            CK_ATTRIBUTE { type_: CKA_CLASS, pValue: (&raw mut class).cast(), ulValueLen: 8 },
            CK_ATTRIBUTE { type_: CKA_SENSITIVE, pValue: (&raw mut sensitive).cast(), ulValueLen: 1 },
            CK_ATTRIBUTE { type_: CKA_EXTRACTABLE, pValue: (&raw mut extractable).cast(), ulValueLen: 1 },
        ];
        let rv = unsafe { f!(self, C_GetAttributeValue)(s, o, attrs.as_mut_ptr(), 3) };
        if rv != CKR_OK {
            return false;
        }
        (class == CKO_SECRET_KEY || class == CKO_PRIVATE_KEY) && (sensitive != 0 || extractable == 0)
    }

    fn set_attributes(&mut self) {
        let s = self.session();
        let o = self.object();
        let mut t = self.template(3);
        let rv = unsafe { f!(self, C_SetAttributeValue)(s, o, t.ptr(), t.len()) };
        self.check("C_SetAttributeValue", rv, format!("s {s} o {o}"));
    }

    fn find(&mut self) {
        let s = self.session();
        let mut t = self.template(2);
        if self.rng.chance(30) {
            t.ulong(CKA_CV_ROLE, CV_ROLE_MASTER);
        }
        let rv = unsafe { f!(self, C_FindObjectsInit)(s, t.ptr(), t.len()) };
        self.check("C_FindObjectsInit", rv, format!("s {s}"));
        let mut found = [0 as CK_OBJECT_HANDLE; 16];
        let max = self.rng.below(17) as CK_ULONG;
        let mut n = 0;
        let rv = unsafe { f!(self, C_FindObjects)(s, found.as_mut_ptr(), max, &mut n) };
        self.check("C_FindObjects", rv, format!("s {s} max {max}"));
        if rv == CKR_OK {
            if n > max {
                self.fail("C_FindObjects returned more handles than asked for");
            }
            for h in &found[..n as usize] {
                if !self.objects.contains(h) {
                    self.objects.push(*h);
                }
            }
        }
        if self.rng.chance(80) {
            let rv = unsafe { f!(self, C_FindObjectsFinal)(s) };
            self.check("C_FindObjectsFinal", rv, format!("s {s}"));
        }
    }

    /// An operation's init, then a few of its calls in a random order and shape.
    fn cipher(&mut self, encrypt: bool) {
        let s = self.session();
        let mut m = self.mechanism(if encrypt { CKF_ENCRYPT } else { CKF_DECRYPT });
        // The vendor re-wrap runs through C_EncryptInit with a master key handle.
        if encrypt && self.rng.chance(5) {
            m = self.mech_of(CKM_CV_REWRAP_RECORD);
        }
        let key = self.key_for(s, m.m.mechanism);
        let (init, name) = if encrypt {
            (unsafe { f!(self, C_EncryptInit)(s, &mut m.m, key) }, "C_EncryptInit")
        } else {
            (unsafe { f!(self, C_DecryptInit)(s, &mut m.m, key) }, "C_DecryptInit")
        };
        self.check(name, init, format!("s {s} {:#x} key {key}", m.m.mechanism));
        for _ in 0..self.rng.below(4) {
            let mut input = self.data();
            let mut out = self.out();
            let (ip, il) = (input.as_mut_ptr(), input.len() as CK_ULONG);
            let (rv, name) = match (self.rng.below(3), encrypt) {
                (0, true) => (unsafe { f!(self, C_Encrypt)(s, ip, il, out.ptr(), &mut out.len) }, "C_Encrypt"),
                (1, true) => {
                    (unsafe { f!(self, C_EncryptUpdate)(s, ip, il, out.ptr(), &mut out.len) }, "C_EncryptUpdate")
                }
                (_, true) => (unsafe { f!(self, C_EncryptFinal)(s, out.ptr(), &mut out.len) }, "C_EncryptFinal"),
                (0, false) => (unsafe { f!(self, C_Decrypt)(s, ip, il, out.ptr(), &mut out.len) }, "C_Decrypt"),
                (1, false) => {
                    (unsafe { f!(self, C_DecryptUpdate)(s, ip, il, out.ptr(), &mut out.len) }, "C_DecryptUpdate")
                }
                (_, false) => (unsafe { f!(self, C_DecryptFinal)(s, out.ptr(), &mut out.len) }, "C_DecryptFinal"),
            };
            self.check(name, rv, format!("s {s} in {il} out {}{}", out.cap, if out.null { " NULL" } else { "" }));
            self.check_out(name, rv, &out);
        }
    }

    fn digest(&mut self) {
        let s = self.session();
        let mut m = self.mechanism(CKF_DIGEST);
        let rv = unsafe { f!(self, C_DigestInit)(s, &mut m.m) };
        self.check("C_DigestInit", rv, format!("s {s} {:#x}", m.m.mechanism));
        for _ in 0..self.rng.below(4) {
            let mut input = self.data();
            let mut out = self.out();
            let (ip, il) = (input.as_mut_ptr(), input.len() as CK_ULONG);
            let (rv, name) = match self.rng.below(4) {
                0 => (unsafe { f!(self, C_Digest)(s, ip, il, out.ptr(), &mut out.len) }, "C_Digest"),
                1 => (unsafe { f!(self, C_DigestUpdate)(s, ip, il) }, "C_DigestUpdate"),
                2 => {
                    let k = self.object();
                    (unsafe { f!(self, C_DigestKey)(s, k) }, "C_DigestKey")
                }
                _ => (unsafe { f!(self, C_DigestFinal)(s, out.ptr(), &mut out.len) }, "C_DigestFinal"),
            };
            self.check(name, rv, format!("s {s} in {il}"));
            self.check_out(name, rv, &out);
        }
    }

    fn sign(&mut self) {
        let s = self.session();
        let sign = self.rng.chance(55);
        let mut m = self.mechanism(if sign { CKF_SIGN } else { CKF_VERIFY });
        let key = self.key_for(s, m.m.mechanism);
        let (rv, name) = if sign {
            (unsafe { f!(self, C_SignInit)(s, &mut m.m, key) }, "C_SignInit")
        } else {
            (unsafe { f!(self, C_VerifyInit)(s, &mut m.m, key) }, "C_VerifyInit")
        };
        self.check(name, rv, format!("s {s} {:#x} key {key}", m.m.mechanism));
        for _ in 0..self.rng.below(4) {
            let mut input = self.data();
            let mut sig = self.data();
            let mut out = self.out();
            let (ip, il) = (input.as_mut_ptr(), input.len() as CK_ULONG);
            let (sp, sl) = (sig.as_mut_ptr(), sig.len() as CK_ULONG);
            let (rv, name) = match (self.rng.below(3), sign) {
                (0, true) => (unsafe { f!(self, C_Sign)(s, ip, il, out.ptr(), &mut out.len) }, "C_Sign"),
                (1, true) => (unsafe { f!(self, C_SignUpdate)(s, ip, il) }, "C_SignUpdate"),
                (_, true) => (unsafe { f!(self, C_SignFinal)(s, out.ptr(), &mut out.len) }, "C_SignFinal"),
                (0, false) => (unsafe { f!(self, C_Verify)(s, ip, il, sp, sl) }, "C_Verify"),
                (1, false) => (unsafe { f!(self, C_VerifyUpdate)(s, ip, il) }, "C_VerifyUpdate"),
                (_, false) => (unsafe { f!(self, C_VerifyFinal)(s, sp, sl) }, "C_VerifyFinal"),
            };
            self.check(name, rv, format!("s {s} in {il} sig {sl}"));
            if sign {
                self.check_out(name, rv, &out);
            }
        }
    }

    fn wrap(&mut self) {
        let s = self.session();
        let mut m = if self.rng.chance(25) { self.mech_of(CKM_CV_WRAP_RECORD) } else { self.mechanism(CKF_WRAP) };
        let (wrapping, key) = (self.key_for(s, m.m.mechanism), self.object());
        let mut out = self.out();
        let rv = unsafe { f!(self, C_WrapKey)(s, &mut m.m, wrapping, key, out.ptr(), &mut out.len) };
        self.check("C_WrapKey", rv, format!("s {s} {:#x} {wrapping} {key} out {}", m.m.mechanism, out.cap));
        self.check_out("C_WrapKey", rv, &out);
    }

    fn unwrap(&mut self) {
        let s = self.session();
        let mut m = if self.rng.chance(25) { self.mech_of(CKM_CV_WRAP_RECORD) } else { self.mechanism(CKF_UNWRAP) };
        let key = self.key_for(s, m.m.mechanism);
        let mut wrapped = self.data();
        let mut t = self.template(5);
        if self.rng.chance(60) {
            t.ulong(CKA_CLASS, CKO_SECRET_KEY);
            t.ulong(CKA_KEY_TYPE, CKK_AES);
        }
        let mut h = 0;
        let wp = if wrapped.is_empty() { null_mut() } else { wrapped.as_mut_ptr() };
        let rv =
            unsafe { f!(self, C_UnwrapKey)(s, &mut m.m, key, wp, wrapped.len() as CK_ULONG, t.ptr(), t.len(), &mut h) };
        self.check("C_UnwrapKey", rv, format!("s {s} {:#x} key {key} {} bytes", m.m.mechanism, wrapped.len()));
        self.new_object(rv, h);
    }

    fn derive(&mut self) {
        let s = self.session();
        let mut m = self.mechanism(CKF_DERIVE);
        let key = self.key_for(s, m.m.mechanism);
        let mut t = self.template(5);
        if self.rng.chance(50) {
            t.ulong(CKA_CLASS, CKO_SECRET_KEY);
            t.ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET);
            t.ulong(CKA_VALUE_LEN, 32);
        }
        let mut h = 0;
        let rv = unsafe { f!(self, C_DeriveKey)(s, &mut m.m, key, t.ptr(), t.len(), &mut h) };
        self.check("C_DeriveKey", rv, format!("s {s} {:#x} key {key}", m.m.mechanism));
        self.new_object(rv, h);
    }

    /// The message API: init, then one-shot or begin/next messages, then final.
    fn message(&mut self) {
        let s = self.session();
        let encrypt = self.rng.chance(60);
        let mut m = self.mechanism(if encrypt { CKF_MESSAGE_ENCRYPT } else { CKF_MESSAGE_DECRYPT });
        let key = self.key_for(s, m.m.mechanism);
        if self.rng.chance(70) {
            // The message form takes no parameter at init.
            m.m.pParameter = null_mut();
            m.m.ulParameterLen = 0;
        }
        let rv = if encrypt {
            unsafe { f!(self, C_MessageEncryptInit)(s, &mut m.m, key) }
        } else {
            unsafe { f!(self, C_MessageDecryptInit)(s, &mut m.m, key) }
        };
        let init = if encrypt { "C_MessageEncryptInit" } else { "C_MessageDecryptInit" };
        self.check(init, rv, format!("s {s} {:#x} key {key}", m.m.mechanism));
        for _ in 0..self.rng.below(5) {
            let iv_len = if self.rng.chance(70) { 12 } else { self.rng.len(32) };
            let mut iv = self.rng.bytes(iv_len);
            let tag_len = if self.rng.chance(70) { 16 } else { self.rng.len(20) };
            let mut tag = self.rng.bytes(tag_len);
            let generator =
                self.rng.pick(&[CKG_NO_GENERATE, CKG_GENERATE, CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM, 9]);
            let fixed = self.rng.pick(&[0, 32, 64, 96, 100]);
            let mut p = CK_GCM_MESSAGE_PARAMS {
                pIv: if iv.is_empty() { null_mut() } else { iv.as_mut_ptr() },
                ulIvLen: iv.len() as CK_ULONG,
                ulIvFixedBits: fixed,
                ivGenerator: generator,
                pTag: if tag.is_empty() { null_mut() } else { tag.as_mut_ptr() },
                ulTagBits: (tag.len() * 8) as CK_ULONG,
            };
            let mut plen = size_of::<CK_GCM_MESSAGE_PARAMS>();
            if self.rng.chance(15) {
                let avoid = common::fuzz::all_pointer_layouts();
                plen = self.rng.len(64);
                while avoid.contains(&plen) {
                    plen = self.rng.len(64);
                }
            }
            let pp: *mut std::ffi::c_void = if plen > size_of::<CK_GCM_MESSAGE_PARAMS>() {
                // A length beyond the struct would read past it: keep the pointer honest.
                null_mut()
            } else {
                (&raw mut p).cast()
            };
            let mut aad = self.data();
            let mut input = self.data();
            let mut out = self.out();
            let (ap, al) = (aad.as_mut_ptr(), aad.len() as CK_ULONG);
            let (ip, il) = (input.as_mut_ptr(), input.len() as CK_ULONG);
            let pl = plen as CK_ULONG;
            let flags = if self.rng.chance(50) { CKF_END_OF_MESSAGE } else { 0 };
            let (rv, name) = match (self.rng.below(4), encrypt) {
                (0 | 1, true) => (
                    unsafe { f!(self, C_EncryptMessage)(s, pp, pl, ap, al, ip, il, out.ptr(), &mut out.len) },
                    "C_EncryptMessage",
                ),
                (2, true) => (unsafe { f!(self, C_EncryptMessageBegin)(s, pp, pl, ap, al) }, "C_EncryptMessageBegin"),
                (_, true) => (
                    unsafe { f!(self, C_EncryptMessageNext)(s, pp, pl, ip, il, out.ptr(), &mut out.len, flags) },
                    "C_EncryptMessageNext",
                ),
                (0 | 1, false) => (
                    unsafe { f!(self, C_DecryptMessage)(s, pp, pl, ap, al, ip, il, out.ptr(), &mut out.len) },
                    "C_DecryptMessage",
                ),
                (2, false) => (unsafe { f!(self, C_DecryptMessageBegin)(s, pp, pl, ap, al) }, "C_DecryptMessageBegin"),
                (_, false) => (
                    unsafe { f!(self, C_DecryptMessageNext)(s, pp, pl, ip, il, out.ptr(), &mut out.len, flags) },
                    "C_DecryptMessageNext",
                ),
            };
            self.check(name, rv, format!("s {s} iv {iv_len} tag {tag_len} gen {generator} plen {plen}"));
            self.check_out(name, rv, &out);
        }
        if self.rng.chance(70) {
            let (rv, name) = if encrypt {
                (unsafe { f!(self, C_MessageEncryptFinal)(s) }, "C_MessageEncryptFinal")
            } else {
                (unsafe { f!(self, C_MessageDecryptFinal)(s) }, "C_MessageDecryptFinal")
            };
            self.check(name, rv, format!("s {s}"));
        }
    }

    fn kem(&mut self) {
        let s = self.session();
        let mut m = self.mechanism(CKF_ENCAPSULATE | CKF_DECAPSULATE);
        let key = self.key_for(s, m.m.mechanism);
        let mut t = self.template(4);
        if self.rng.chance(60) {
            t.ulong(CKA_CLASS, CKO_SECRET_KEY);
            t.ulong(CKA_KEY_TYPE, self.rng.pick(&[CKK_GENERIC_SECRET, CKK_AES]));
        }
        let mut h = 0;
        if self.rng.chance(50) {
            let mut out = self.out();
            let rv = unsafe {
                f!(self, C_EncapsulateKey)(s, &mut m.m, key, t.ptr(), t.len(), out.ptr(), &mut out.len, &mut h)
            };
            self.check("C_EncapsulateKey", rv, format!("s {s} {:#x} key {key} out {}", m.m.mechanism, out.cap));
            self.check_out("C_EncapsulateKey", rv, &out);
        } else {
            let mut ct = self.data();
            let cp = if ct.is_empty() { null_mut() } else { ct.as_mut_ptr() };
            let rv = unsafe {
                f!(self, C_DecapsulateKey)(s, &mut m.m, key, t.ptr(), t.len(), cp, ct.len() as CK_ULONG, &mut h)
            };
            self.check("C_DecapsulateKey", rv, format!("s {s} {:#x} key {key} ct {}", m.m.mechanism, ct.len()));
        }
        // Either call makes an object when it succeeds; its code was checked above.
        if h != 0 {
            self.objects.push(h);
        }
    }

    fn random(&mut self) {
        let s = self.session();
        if self.rng.chance(30) {
            let mut seed = self.data();
            let rv = unsafe { f!(self, C_SeedRandom)(s, seed.as_mut_ptr(), seed.len() as CK_ULONG) };
            self.check("C_SeedRandom", rv, format!("s {s}"));
            return;
        }
        let mut out = self.out();
        // C_GenerateRandom's length is the buffer's: a NULL buffer with a length is bad.
        let n = if out.null { self.rng.below(64) as CK_ULONG } else { out.cap as CK_ULONG };
        let rv = unsafe { f!(self, C_GenerateRandom)(s, out.ptr(), n) };
        self.check("C_GenerateRandom", rv, format!("s {s} n {n}"));
        if out.buf[out.cap..].iter().any(|b| *b != CANARY_BYTE) {
            self.fail("C_GenerateRandom wrote past the buffer");
        }
    }

    // ---- the case ----

    /// A fresh store: the token initialized, the user PIN set, the mechanism list read.
    fn setup(&mut self) {
        self.initialize();
        assert!(self.initialized, "C_Initialize failed");
        let mut n: CK_ULONG = 1;
        let mut slots = [0 as CK_SLOT_ID; 1];
        let rv = unsafe { f!(self, C_GetSlotList)(CK_TRUE, slots.as_mut_ptr(), &mut n) };
        assert_eq!(rv, CKR_OK, "C_GetSlotList");
        self.slot = slots[0];
        let mut label = [b' '; 32];
        label[..4].copy_from_slice(b"fuzz");
        let mut so = self.so_pin.clone();
        let rv = unsafe { f!(self, C_InitToken)(self.slot, so.as_mut_ptr(), so.len() as CK_ULONG, label.as_mut_ptr()) };
        assert_eq!(rv, CKR_OK, "C_InitToken");
        let mut s = 0;
        let rv = unsafe {
            f!(self, C_OpenSession)(self.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, null_mut(), None, &mut s)
        };
        assert_eq!(rv, CKR_OK, "C_OpenSession");
        let rv = unsafe { f!(self, C_Login)(s, CKU_SO, so.as_mut_ptr(), so.len() as CK_ULONG) };
        assert_eq!(rv, CKR_OK, "SO login");
        let mut user = self.user_pin.clone();
        let rv = unsafe { f!(self, C_InitPIN)(s, user.as_mut_ptr(), user.len() as CK_ULONG) };
        assert_eq!(rv, CKR_OK, "C_InitPIN");
        unsafe { f!(self, C_Logout)(s) };
        let rv = unsafe { f!(self, C_Login)(s, CKU_USER, user.as_mut_ptr(), user.len() as CK_ULONG) };
        assert_eq!(rv, CKR_OK, "user login");
        let mut count: CK_ULONG = 0;
        unsafe { f!(self, C_GetMechanismList)(self.slot, null_mut(), &mut count) };
        let mut types = vec![0 as CK_MECHANISM_TYPE; count as usize];
        let rv = unsafe { f!(self, C_GetMechanismList)(self.slot, types.as_mut_ptr(), &mut count) };
        assert_eq!(rv, CKR_OK, "C_GetMechanismList");
        for ty in types {
            let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
            unsafe { f!(self, C_GetMechanismInfo)(self.slot, ty, &mut info) };
            self.mechs.push((ty, info.flags));
        }
        // The vendor mechanisms, whether or not the list shows them.
        for ty in [CKM_CV_WRAP_RECORD, CKM_CV_REWRAP_RECORD, CKM_CV_ROTATE_MASTER, CKM_CV_REWRAP_STORED] {
            if !self.mechs.iter().any(|(m, _)| *m == ty) {
                self.mechs.push((ty, CKF_GENERATE | CKF_WRAP | CKF_UNWRAP | CKF_ENCRYPT));
            }
        }
        self.sessions.push(s);
        // Well-formed keys of each kind to start from, public (a logout keeps them) and
        // usable for everything their type allows, so operations run from the first
        // step; then random ones. The sequence makes (and breaks) more.
        self.good_keys(s);
        for _ in 0..6 {
            self.generate_key();
            self.generate_key_pair();
        }
        for _ in 0..4 {
            self.create_object();
        }
    }

    /// After a re-initialize: a logged-in session and fresh keys, as after [`Fuzz::setup`].
    fn restart(&mut self) {
        let mut s = 0;
        let rv = unsafe {
            f!(self, C_OpenSession)(self.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, null_mut(), None, &mut s)
        };
        self.check("C_OpenSession", rv, "restart".into());
        if rv != CKR_OK {
            return;
        }
        self.sessions.push(s);
        let mut pin = self.user_pin.clone();
        let rv = unsafe { f!(self, C_Login)(s, CKU_USER, pin.as_mut_ptr(), pin.len() as CK_ULONG) };
        self.check("C_Login", rv, "restart".into());
        self.good_keys(s);
    }

    fn good_keys(&mut self, s: CK_SESSION_HANDLE) {
        let usage = |t: &mut Tmpl, flags: &[CK_ATTRIBUTE_TYPE]| {
            t.bool(CKA_PRIVATE, false);
            for f in flags {
                t.bool(*f, true);
            }
        };
        let secret =
            [CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_SIGN, CKA_VERIFY, CKA_DERIVE, CKA_EXTRACTABLE];
        for (mech, len) in [(CKM_AES_KEY_GEN, 32), (CKM_AES_KEY_GEN, 16), (CKM_GENERIC_SECRET_KEY_GEN, 32)] {
            let mut t = Tmpl::default();
            usage(&mut t, &secret);
            t.ulong(CKA_VALUE_LEN, len);
            let mut m = CK_MECHANISM { mechanism: mech, pParameter: null_mut(), ulParameterLen: 0 };
            let mut h = 0;
            let rv = unsafe { f!(self, C_GenerateKey)(s, &mut m, t.ptr(), t.len(), &mut h) };
            self.check("C_GenerateKey", rv, format!("setup {mech:#x}"));
            self.new_object(rv, h);
        }
        let pairs: [(CK_MECHANISM_TYPE, CK_ATTRIBUTE_TYPE, Vec<u8>); 4] = [
            (CKM_EC_KEY_PAIR_GEN, CKA_EC_PARAMS, EC_PARAMS[0].to_vec()),
            (CKM_EC_KEY_PAIR_GEN, CKA_EC_PARAMS, EC_PARAMS[1].to_vec()),
            (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKA_EC_PARAMS, EC_PARAMS[3].to_vec()),
            (CKM_ML_KEM_KEY_PAIR_GEN, CKA_PARAMETER_SET, CKP_ML_KEM_768.to_ne_bytes().to_vec()),
        ];
        for (mech, ty, value) in pairs {
            let (mut public, mut private) = (Tmpl::default(), Tmpl::default());
            usage(&mut public, &[CKA_VERIFY, CKA_ENCAPSULATE, CKA_DERIVE]);
            usage(&mut private, &[CKA_SIGN, CKA_DECAPSULATE, CKA_DERIVE]);
            public.push(ty, value);
            let mut m = CK_MECHANISM { mechanism: mech, pParameter: null_mut(), ulParameterLen: 0 };
            let (mut a, mut b) = (0, 0);
            let rv = unsafe {
                f!(self, C_GenerateKeyPair)(
                    s,
                    &mut m,
                    public.ptr(),
                    public.len(),
                    private.ptr(),
                    private.len(),
                    &mut a,
                    &mut b,
                )
            };
            self.check("C_GenerateKeyPair", rv, format!("setup {mech:#x}"));
            if rv == CKR_OK {
                self.objects.extend([a, b]);
            }
        }
    }

    /// After the sequence: finalize, then the store must open and its chain verify.
    fn teardown(&mut self) {
        if self.initialized {
            let rv = unsafe { f!(self, C_Finalize)(null_mut()) };
            self.check("C_Finalize", rv, String::new());
        }
        self.check_log();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cvault"))
            .args(["audit", "verify"])
            .env("COLLABVAULT_CONF", &self.ws.conf)
            .env_remove("CV_SO_PIN")
            .env_remove("CV_USER_PIN")
            .output()
            .expect("run cvault");
        if !out.status.success() {
            self.fail(&format!(
                "the audit chain does not verify after the sequence: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
}

fn case(api: Api, seed: u64) {
    let ws = Workspace::new();
    let mut fz = Fuzz {
        api,
        rng: Rng::new(seed),
        seed,
        ws,
        slot: 0,
        initialized: false,
        sessions: Vec::new(),
        stale_sessions: Vec::new(),
        objects: Vec::new(),
        stale_objects: Vec::new(),
        mechs: Vec::new(),
        secrets: Vec::new(),
        blobs: Vec::new(),
        so_pin: SO_PIN.as_bytes().to_vec(),
        user_pin: USER_PIN.as_bytes().to_vec(),
        log_offset: 0,
        trace: Vec::new(),
        print_trace: std::env::var_os("FUZZ_TRACE").is_some(),
    };
    fz.setup();
    for _ in 0..STEPS {
        fz.step();
    }
    fz.teardown();
}

#[test]
fn random_call_sequences_keep_every_property() {
    let _serial = common::lock();
    run("random_call_sequences_keep_every_property", 20, |seed| case(Api::load(), seed));
    let stats = STATS.lock().unwrap_or_else(|e| e.into_inner());
    let calls: u64 = stats.values().sum();
    let ok: u64 = stats.iter().filter(|((_, rv), _)| *rv == CKR_OK).map(|(_, n)| n).sum();
    eprintln!("{calls} calls, {ok} CKR_OK; per function and code:");
    for ((function, rv), n) in stats.iter() {
        eprintln!("  {function:<24} {:<36} {n}", rv_name(*rv));
    }
}
