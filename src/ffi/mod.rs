//! `ffi/`: the C ABI, and the only place with `unsafe` code.
//!
//! Every exported `C_*` function is a short shim: a panic boundary ([`guard`]),
//! conversion of caller pointers into owned Rust values (`args.rs`), one call into the
//! safe core, and the mapping of its [`Error`] to a `CK_RV` (`rv.rs`). No panic crosses
//! this boundary and no pointer goes below it.

#![allow(unsafe_code)]

pub mod args;
pub mod entry;
pub mod function_list;
pub mod params;
pub mod rv;

use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::{CKR_GENERAL_ERROR, CKR_OK, CK_RV};

use crate::error::{Error, Result};

/// Runs one entry point's body: panics become `CKR_GENERAL_ERROR`, errors their `CK_RV`,
/// each with a log line naming the function. An uninitialized module answers
/// `CKR_CRYPTOKI_NOT_INITIALIZED` before any argument is looked at, as the spec ranks it.
pub fn guard(function: &'static str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    guard_any(function, || {
        crate::module::check_initialized()?;
        body()
    })
}

/// [`guard`] for the four functions that work before `C_Initialize`
/// (`C_Initialize`, `C_GetFunctionList`, `C_GetInterfaceList`, `C_GetInterface`).
pub fn guard_any(function: &'static str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    crate::session::begin_call();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            let code = rv::rv(&e);
            // Every refusal is audited, except the length protocol's answer and calls
            // the token never saw.
            if !matches!(e, Error::BufferTooSmall(_)) {
                crate::session::audit_refusal(function, &crate::names::rv_name(code));
            }
            match e {
                Error::Store(_)
                | Error::Integrity(_)
                | Error::General(_)
                | Error::Config(_)
                | Error::Root(_)
                | Error::RootTokenNotPresent(_) => {
                    log::error!("{function}: {e} -> {}", crate::names::rv_name(code))
                }
                Error::ArgumentsBad(_) | Error::MasterKey(_) | Error::KeyBlocked(_) | Error::IvCounterExhausted => {
                    log::warn!("{function}: {e} -> {}", crate::names::rv_name(code))
                }
                _ => log::info!("{function}: {e} -> {}", crate::names::rv_name(code)),
            }
            code
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("{function}: internal panic caught at the C boundary: {what}");
            CKR_GENERAL_ERROR
        }
    }
}

/// The body of every function this token does not implement.
pub fn not_supported(function: &'static str) -> CK_RV {
    guard(function, || Err(Error::FunctionNotSupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_general_error() {
        assert_eq!(guard_any("test", || panic!("boom")), CKR_GENERAL_ERROR);
    }

    #[test]
    fn an_error_becomes_its_return_code() {
        assert_eq!(guard_any("test", || Err(Error::PinLocked)), cryptoki_sys::CKR_PIN_LOCKED);
        assert_eq!(guard_any("test", || Ok(())), CKR_OK);
    }

    #[test]
    fn an_uninitialized_module_answers_before_the_body_runs() {
        let rv = guard("test", || panic!("the body must not run"));
        assert_eq!(rv, cryptoki_sys::CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}
