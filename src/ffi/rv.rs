//! The one place an [`Error`] becomes a `CK_RV`.
//!
//! The match is exhaustive with no catch-all arm: a new error variant does not compile
//! until someone decides its return code here.

use cryptoki_sys::*;

use crate::error::{Error, Internal};

/// The return code for `e`.
pub fn rv(e: &Error) -> CK_RV {
    match e {
        Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
        Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
        Error::ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
        Error::CantLock => CKR_CANT_LOCK,
        Error::Config(_) => CKR_GENERAL_ERROR,
        Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
        Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
        Error::NoEvent => CKR_NO_EVENT,
        Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
        Error::TokenNotInitialized => CKR_TOKEN_NOT_RECOGNIZED,
        Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
        Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
        Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
        Error::SessionExists => CKR_SESSION_EXISTS,
        Error::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
        Error::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
        Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
        Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
        Error::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
        Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
        Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
        Error::PinIncorrect => CKR_PIN_INCORRECT,
        Error::PinLocked => CKR_PIN_LOCKED,
        Error::PinLenRange => CKR_PIN_LEN_RANGE,
        Error::PinInvalid => CKR_PIN_INVALID,
        Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
        Error::AttributeTypeInvalid(_) => CKR_ATTRIBUTE_TYPE_INVALID,
        Error::AttributeValueInvalid(_) => CKR_ATTRIBUTE_VALUE_INVALID,
        Error::AttributeReadOnly(_) => CKR_ATTRIBUTE_READ_ONLY,
        Error::AttributeSensitive(_) => CKR_ATTRIBUTE_SENSITIVE,
        Error::TemplateIncomplete(_) => CKR_TEMPLATE_INCOMPLETE,
        Error::TemplateInconsistent(_) => CKR_TEMPLATE_INCONSISTENT,
        Error::ActionProhibited => CKR_ACTION_PROHIBITED,
        Error::OperationActive => CKR_OPERATION_ACTIVE,
        Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
        Error::BufferTooSmall(_) => CKR_BUFFER_TOO_SMALL,
        Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
        Error::MechanismInvalid => CKR_MECHANISM_INVALID,
        Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
        Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
        Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
        Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
        Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
        Error::WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
        Error::WrappingKeyTypeInconsistent => CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
        Error::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
        Error::UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
        Error::UnwrappingKeySizeRange => CKR_UNWRAPPING_KEY_SIZE_RANGE,
        Error::WrappingKeySizeRange => CKR_WRAPPING_KEY_SIZE_RANGE,
        Error::KeyUnextractable => CKR_KEY_UNEXTRACTABLE,
        Error::KeyNotWrappable => CKR_KEY_NOT_WRAPPABLE,
        Error::KeyIndigestible => CKR_KEY_INDIGESTIBLE,
        Error::WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
        Error::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
        Error::DataInvalid => CKR_DATA_INVALID,
        Error::DataLenRange => CKR_DATA_LEN_RANGE,
        Error::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
        Error::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
        Error::AeadDecryptFailed => CKR_AEAD_DECRYPT_FAILED,
        Error::IvCounterExhausted => CKR_MECHANISM_PARAM_INVALID,
        Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
        Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
        Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
        Error::DomainParamsInvalid => CKR_DOMAIN_PARAMS_INVALID,
        Error::Store(_) => CKR_DEVICE_ERROR,
        Error::Root(_) => CKR_DEVICE_ERROR,
        Error::MasterKey(_) => CKR_ACTION_PROHIBITED,
        Error::Kit(_) => CKR_DATA_INVALID,
        Error::KeyBlocked(_) => CKR_KEY_FUNCTION_NOT_PERMITTED,
        Error::Locked(_) => crate::vendor::CKR_CV_LOCKED,
        Error::QuorumRequired(_) => crate::vendor::CKR_CV_QUORUM_REQUIRED,
        Error::QuorumFailed(_) => crate::vendor::CKR_CV_QUORUM_FAILED,
        Error::LegalHold(_) => crate::vendor::CKR_CV_LEGAL_HOLD,
        Error::NotifyFailed(_) => CKR_FUNCTION_FAILED,
        Error::RootTokenNotPresent(_) => CKR_TOKEN_NOT_PRESENT,
        Error::ObjectContended => CKR_FUNCTION_FAILED,
        Error::VersionTaken(_) => CKR_FUNCTION_FAILED,
        Error::Integrity(_) => CKR_DEVICE_ERROR,
        Error::HostMemory => CKR_HOST_MEMORY,
        Error::CheckpointsFailing(_) => CKR_DEVICE_ERROR,
        Error::AuditBatchUnwritten(_) => CKR_DEVICE_ERROR,
        Error::Internal(Internal::RandomSource) => CKR_FUNCTION_FAILED,
        Error::Internal(_) => CKR_GENERAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_is_pinned() {
        let table: &[(Error, CK_RV)] = &[
            (Error::NotInitialized, CKR_CRYPTOKI_NOT_INITIALIZED),
            (Error::AlreadyInitialized, CKR_CRYPTOKI_ALREADY_INITIALIZED),
            (Error::CantLock, CKR_CANT_LOCK),
            (Error::DataInvalid, CKR_DATA_INVALID),
            (Error::PinLocked, CKR_PIN_LOCKED),
            (Error::SessionReadOnlyExists, CKR_SESSION_READ_ONLY_EXISTS),
            (Error::AttributeSensitive(0), CKR_ATTRIBUTE_SENSITIVE),
            (Error::BufferTooSmall(9), CKR_BUFFER_TOO_SMALL),
            (Error::Store("x".into()), CKR_DEVICE_ERROR),
            (Error::ObjectContended, CKR_FUNCTION_FAILED),
            (Error::VersionTaken(2), CKR_FUNCTION_FAILED),
            (Error::Integrity("x"), CKR_DEVICE_ERROR),
            (Error::Internal(Internal::RandomSource), CKR_FUNCTION_FAILED),
            (Error::Internal(Internal::RsaOperation), CKR_GENERAL_ERROR),
            (Error::CheckpointsFailing(3), CKR_DEVICE_ERROR),
            (Error::AuditBatchUnwritten("x".into()), CKR_DEVICE_ERROR),
            (Error::KeyBlocked("x".into()), CKR_KEY_FUNCTION_NOT_PERMITTED),
            (Error::Locked("x".into()), 0xC356_0001),
            (Error::QuorumRequired("x".into()), 0xC356_0002),
            (Error::QuorumFailed("x"), 0xC356_0003),
            (Error::LegalHold("x".into()), 0xC356_0004),
            (Error::NotifyFailed("x".into()), CKR_FUNCTION_FAILED),
            (Error::Config("x".into()), CKR_GENERAL_ERROR),
            (Error::IvCounterExhausted, CKR_MECHANISM_PARAM_INVALID),
            (Error::HostMemory, CKR_HOST_MEMORY),
            (Error::Kit("x".into()), CKR_DATA_INVALID),
        ];
        for (e, want) in table {
            assert_eq!(rv(e), *want, "{e:?}");
        }
    }
}
