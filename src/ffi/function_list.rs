//! The function lists and interfaces, generated from one list of names.
//!
//! Each version's names are written once below; `function_list!` builds the
//! `CK_FUNCTION_LIST*` struct from them, so the compiler checks every list against the
//! vendored 3.2 header: a missing, extra or misordered entry does not build.

use std::ffi::CStr;
use std::os::raw::c_void;

use cryptoki_sys::*;

use super::entry::*;

/// The interface name every PKCS#11 module offers.
pub const INTERFACE_NAME: &CStr = c"PKCS 11";

macro_rules! function_list {
    ($ty:ident, $major:expr, $minor:expr; $($f:ident),* $(,)?) => {
        $ty { version: CK_VERSION { major: $major, minor: $minor }, $($f: Some($f),)* }
    };
}

/// Calls `$cb!(args; <every 2.40 name>, <extra names>)`.
macro_rules! with_v2_40_names {
    ($cb:ident!($($pre:tt)*); $($extra:ident),* $(,)?) => {
        $cb!($($pre)*;
        C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,
        C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,
        C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,
        C_SetOperationState, C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject,
        C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit,
        C_FindObjects, C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate,
        C_EncryptFinal, C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit,
        C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate,
        C_SignFinal, C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate,
        C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate,
        C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey,
        C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom,
        C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent,
        $($extra),*)
    };
}

/// Calls `with_v2_40_names!` with the 3.0 additions, then `$($extra)*`.
macro_rules! with_v3_0_names {
    ($cb:ident!($($pre:tt)*); $($extra:ident),* $(,)?) => {
        with_v2_40_names!($cb!($($pre)*);
        C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel, C_MessageEncryptInit,
        C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext, C_MessageEncryptFinal,
        C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin, C_DecryptMessageNext,
        C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage, C_SignMessageBegin,
        C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit, C_VerifyMessage,
        C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal,
        $($extra),*)
    };
}

/// The version 2.40 list (`C_GetFunctionList`).
pub static FUNCTION_LIST_2_40: CK_FUNCTION_LIST = with_v2_40_names!(function_list!(CK_FUNCTION_LIST, 2, 40););

/// The version 3.0 list.
pub static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = with_v3_0_names!(function_list!(CK_FUNCTION_LIST_3_0, 3, 0););

/// The version 3.2 list.
pub static FUNCTION_LIST_3_2: CK_FUNCTION_LIST_3_2 = with_v3_0_names!(function_list!(CK_FUNCTION_LIST_3_2, 3, 2);
        C_EncapsulateKey, C_DecapsulateKey, C_VerifySignatureInit, C_VerifySignature,
        C_VerifySignatureUpdate, C_VerifySignatureFinal, C_GetSessionValidationFlags,
        C_AsyncComplete, C_AsyncGetID, C_AsyncJoin, C_WrapKeyAuthenticated,
        C_UnwrapKeyAuthenticated,
);

/// The interfaces `C_GetInterfaceList` offers, newest first (the default).
pub struct Interfaces([CK_INTERFACE; 3]);

// SAFETY: the interfaces point only at immutable statics (the name and the function
// lists), so sharing them between threads is sound.
unsafe impl Sync for Interfaces {}

const fn interface(list: *const c_void) -> CK_INTERFACE {
    CK_INTERFACE { pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut().cast(), pFunctionList: list.cast_mut(), flags: 0 }
}

/// The three interfaces, all named "PKCS 11".
pub static INTERFACES: Interfaces = Interfaces([
    interface(std::ptr::addr_of!(FUNCTION_LIST_3_2).cast()),
    interface(std::ptr::addr_of!(FUNCTION_LIST_3_0).cast()),
    interface(std::ptr::addr_of!(FUNCTION_LIST_2_40).cast()),
]);

fn version_of(i: &CK_INTERFACE) -> CK_VERSION {
    // SAFETY: every interface's list starts with its CK_VERSION, as all CK_FUNCTION_LIST
    // layouts do, and points at one of this module's statics.
    unsafe { *i.pFunctionList.cast::<CK_VERSION>() }
}

impl Interfaces {
    /// A copy of the array, for `C_GetInterfaceList`.
    pub fn get(&self) -> [CK_INTERFACE; 3] {
        self.0
    }

    /// The interface of `version` (the newest when `None`) whose flags include `flags`.
    pub fn find(&'static self, version: Option<CK_VERSION>, flags: CK_FLAGS) -> Option<*mut CK_INTERFACE> {
        self.0
            .iter()
            .filter(|i| i.flags & flags == flags)
            .find(|i| {
                version.is_none_or(|v| {
                    let have = version_of(i);
                    have.major == v.major && have.minor == v.minor
                })
            })
            .map(|i| std::ptr::from_ref(i).cast_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_list_reports_its_own_version() {
        let versions: Vec<(u8, u8)> = INTERFACES.0.iter().map(version_of).map(|v| (v.major, v.minor)).collect();
        assert_eq!(versions, [(3, 2), (3, 0), (2, 40)]);
    }

    #[test]
    fn every_slot_of_every_list_is_filled() {
        // The struct literal fills every field with Some(..); check the bytes agree, so a
        // layout change in the header cannot leave a NULL behind.
        fn all_set<T>(list: &T) -> bool {
            let words = std::mem::size_of::<T>() / std::mem::size_of::<usize>();
            // SAFETY: a function list is a CK_VERSION (padded to a word) followed by
            // function pointers; reading it as words stays within the struct.
            let raw = unsafe { std::slice::from_raw_parts(std::ptr::from_ref(list).cast::<usize>(), words) };
            raw[1..].iter().all(|w| *w != 0)
        }
        assert!(all_set(&FUNCTION_LIST_2_40));
        assert!(all_set(&FUNCTION_LIST_3_0));
        assert!(all_set(&FUNCTION_LIST_3_2));
    }

    #[test]
    fn a_missing_version_is_not_found() {
        assert!(INTERFACES.find(Some(CK_VERSION { major: 3, minor: 1 }), 0).is_none());
        assert!(INTERFACES.find(None, CKF_INTERFACE_FORK_SAFE).is_none());
        assert!(INTERFACES.find(Some(CK_VERSION { major: 2, minor: 40 }), 0).is_some());
    }
}
