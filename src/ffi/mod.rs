//! `ffi/`: the C ABI, and the only place with `unsafe` code.
//!
//! Every exported `C_*` function is a short shim: a panic boundary ([`guard`]),
//! conversion of caller pointers into owned Rust values (`args.rs`), one call into the
//! safe core, and the mapping of its [`Error`] to a `CK_RV` (`rv.rs`). No panic crosses
//! this boundary and no pointer goes below it.

#![allow(unsafe_code)]

pub mod args;
pub mod client;
pub mod entry;
pub mod function_list;
pub mod params;
pub mod rv;
pub mod unload;

use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::{CKR_GENERAL_ERROR, CKR_OK, CK_RV, CK_SESSION_HANDLE};

use crate::error::{Error, Result};
use crate::session::Ctx;

/// Runs one entry point's body: panics become `CKR_GENERAL_ERROR`, errors their `CK_RV`,
/// each with a log line naming the function. An uninitialized module answers
/// `CKR_CRYPTOKI_NOT_INITIALIZED` before any argument is looked at, as the spec ranks it.
pub fn guard(function: &'static str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    guard_any(function, || {
        crate::module::check_initialized()?;
        body()
    })
}

/// [`guard`] for a function that runs in a session: the session handle is resolved
/// first, before any other argument is decoded or checked (the check order in
/// `doc/check-order.md`), and the call context it gives is what the body works with. A
/// refusal is audited against the session's token.
pub fn guard_session(
    function: &'static str,
    handle: CK_SESSION_HANDLE,
    body: impl FnOnce(&Ctx) -> Result<()>,
) -> CK_RV {
    guard(function, || {
        let ctx = Ctx::of(crate::module::app()?, handle)?;
        let result = body(&ctx);
        if let Err(e) = &result {
            // The length protocol's answer is not a refusal.
            if !matches!(e, Error::BufferTooSmall(_)) {
                ctx.audit_refusal(function, &crate::names::rv_name(rv::rv(e)));
            }
        }
        result
    })
}

/// [`guard`] for the four functions that work before `C_Initialize`
/// (`C_Initialize`, `C_GetFunctionList`, `C_GetInterfaceList`, `C_GetInterface`).
pub fn guard_any(function: &'static str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    boundary(function, body, refused)
}

/// The panic boundary itself. Everything an entry point runs is inside it: the per-call
/// set-up, the body, and the audit and log line of a refusal (each can panic: a store, a
/// logger, a formatter), since a panic unwinding out of an `extern "C"` function aborts
/// the host application.
fn boundary(
    function: &'static str,
    body: impl FnOnce() -> Result<()>,
    on_refusal: impl FnOnce(&'static str, Error) -> CK_RV,
) -> CK_RV {
    let run = AssertUnwindSafe(|| match body() {
        Ok(()) => CKR_OK,
        Err(e) => on_refusal(function, e),
    });
    match catch_unwind(run) {
        Ok(code) => code,
        Err(panic) => {
            // Logging the panic, and dropping its payload, run user-visible code too.
            let logged = catch_unwind(AssertUnwindSafe(move || {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                log::error!("{function}: internal panic caught at the C boundary: {what}");
                drop(panic);
            }));
            // A second panic's payload is not dropped: its destructor could panic again.
            if let Err(second) = logged {
                std::mem::forget(second);
            }
            CKR_GENERAL_ERROR
        }
    }
}

/// A refused call: its return code, logged (a call in a session was audited by
/// [`guard_session`]).
fn refused(function: &'static str, e: Error) -> CK_RV {
    let code = rv::rv(&e);
    match e {
        Error::Store(_)
        | Error::Integrity(_)
        | Error::Internal(_)
        | Error::AuditBatchUnwritten(_)
        | Error::Config(_)
        | Error::Root(_)
        | Error::RootTokenNotPresent(_) => {
            log::error!("{function}: {e} -> {}", crate::names::rv_name(code))
        }
        Error::ArgumentsBad(_)
        | Error::MasterKey(_)
        | Error::KeyBlocked(_)
        | Error::Locked(_)
        | Error::QuorumRequired(_)
        | Error::QuorumFailed(_)
        | Error::LegalHold(_)
        | Error::NotifyFailed(_)
        | Error::IvCounterExhausted
        | Error::HostMemory => {
            log::warn!("{function}: {e} -> {}", crate::names::rv_name(code))
        }
        _ => log::info!("{function}: {e} -> {}", crate::names::rv_name(code)),
    }
    code
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
    fn a_panic_while_refusing_a_call_stays_inside_the_boundary() {
        let rv = boundary("test", || Err(Error::PinLocked), |_, _| panic!("the audit store panicked"));
        assert_eq!(rv, CKR_GENERAL_ERROR);
    }

    #[test]
    fn a_panic_payload_that_panics_when_dropped_stays_inside_the_boundary() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("dropping the payload panicked");
            }
        }
        let rv = boundary("test", || std::panic::panic_any(Bomb), refused);
        assert_eq!(rv, CKR_GENERAL_ERROR);
    }

    #[test]
    fn an_uninitialized_module_answers_before_the_body_runs() {
        let rv = guard("test", || panic!("the body must not run"));
        assert_eq!(rv, cryptoki_sys::CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}
