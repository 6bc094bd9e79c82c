//! Spec names for constants, so logs and audit entries read like the spec.
//!
//! Only the constants this token deals with are named; anything else prints as hex,
//! vendor values included.

use cryptoki_sys::*;

use crate::vendor::{CKR_CV_LEGAL_HOLD, CKR_CV_LOCKED, CKR_CV_QUORUM_FAILED, CKR_CV_QUORUM_REQUIRED};

macro_rules! name_table {
    ($fn_name:ident, $($c:ident),* $(,)?) => {
        /// The spec name of the constant, or its value in hex.
        pub fn $fn_name(v: CK_ULONG) -> String {
            match v {
                $(x if x == $c => stringify!($c).to_string(),)*
                other => format!("{other:#x}"),
            }
        }
    };
}

name_table!(
    attr_name,
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_UNIQUE_ID,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CHECK_VALUE,
    CKA_KEY_TYPE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_KEY_GEN_MECHANISM,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALLOWED_MECHANISMS,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_NAME_HASH_ALGORITHM,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_PUBLIC_KEY_INFO,
);

name_table!(
    rv_name,
    CKR_OK,
    CKR_CANCEL,
    CKR_HOST_MEMORY,
    CKR_SLOT_ID_INVALID,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_CANT_LOCK,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_ACTION_PROHIBITED,
    CKR_DEVICE_ERROR,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_MECHANISM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_PIN_INCORRECT,
    CKR_PIN_INVALID,
    CKR_PIN_LEN_RANGE,
    CKR_PIN_LOCKED,
    CKR_SESSION_COUNT,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    CKR_SESSION_READ_ONLY,
    CKR_SESSION_EXISTS,
    CKR_SESSION_READ_ONLY_EXISTS,
    CKR_SESSION_READ_WRITE_SO_EXISTS,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TOKEN_NOT_PRESENT,
    CKR_TOKEN_NOT_RECOGNIZED,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_PIN_NOT_INITIALIZED,
    CKR_USER_TYPE_INVALID,
    CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    CKR_RANDOM_SEED_NOT_SUPPORTED,
    CKR_BUFFER_TOO_SMALL,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_CRYPTOKI_ALREADY_INITIALIZED,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_AEAD_DECRYPT_FAILED,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_FUNCTION_NOT_PARALLEL,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_INDIGESTIBLE,
    CKR_KEY_NOT_WRAPPABLE,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_KEY_UNEXTRACTABLE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_NO_EVENT,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_UNWRAPPING_KEY_HANDLE_INVALID,
    CKR_UNWRAPPING_KEY_SIZE_RANGE,
    CKR_WRAPPING_KEY_SIZE_RANGE,
    CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
    CKR_WRAPPED_KEY_INVALID,
    CKR_WRAPPED_KEY_LEN_RANGE,
    CKR_WRAPPING_KEY_HANDLE_INVALID,
    CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
    CKR_CV_LOCKED,
    CKR_CV_QUORUM_REQUIRED,
    CKR_CV_QUORUM_FAILED,
    CKR_CV_LEGAL_HOLD,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_constants_print_their_spec_names() {
        assert_eq!(attr_name(CKA_LABEL), "CKA_LABEL");
        assert_eq!(rv_name(CKR_PIN_LOCKED), "CKR_PIN_LOCKED");
    }

    /// Audit entries record refusals by name: every code the C boundary can return
    /// (`ffi/`) must have one, or its entries would read as bare hex.
    #[test]
    fn every_return_code_the_module_uses_has_its_name() {
        let sources = [
            include_str!("ffi/rv.rs"),
            include_str!("ffi/mod.rs"),
            include_str!("ffi/entry/general.rs"),
            include_str!("ffi/entry/slot_token.rs"),
            include_str!("ffi/entry/unsupported.rs"),
        ];
        let table = include_str!("names.rs");
        let table = &table[table.find("rv_name,").expect("the rv_name table")..];
        for source in sources {
            for word in source.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("CKR_") && word.len() > 4 {
                    assert!(table.contains(&format!("    {word},")), "{word} has no entry in rv_name");
                }
            }
        }
    }

    #[test]
    fn vendor_values_print_as_hex() {
        assert_eq!(attr_name(CKA_VENDOR_DEFINED | 1), "0x80000001");
    }
}
