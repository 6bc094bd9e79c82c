//! Shim shapes shared by several chapters: many `C_*` functions differ only in the core
//! function they call, so each shape is written once here.

/// `C_XInit(session, mechanism, key)` starting an operation of `$kind`: the session's
/// state is checked before the mechanism is decoded.
macro_rules! init_with_key {
    ($name:ident, $kind:expr, $core:path) => {
        #[doc = concat!("`", stringify!($name), "`: starts the operation with a mechanism and key.")]
        ///
        /// # Safety
        /// `mechanism` is NULL or a valid `CK_MECHANISM` with readable parameters.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            session: CK_SESSION_HANDLE,
            mechanism: *mut CK_MECHANISM,
            key: CK_OBJECT_HANDLE,
        ) -> CK_RV {
            crate::ffi::guard_session(stringify!($name), session, |ctx| {
                ctx.check_idle($kind)?;
                // SAFETY: forwarded from this function's contract.
                let m = unsafe { crate::ffi::params::mechanism(mechanism) }?;
                $core(ctx, &m, key)
            })
        }
    };
}

/// `C_X(session, input, input_len, output, output_len)` with the length-query protocol.
macro_rules! in_out {
    ($name:ident, $core:path) => {
        #[doc = concat!("`", stringify!($name), "`: input in, output under the length-query protocol.")]
        ///
        /// # Safety
        /// `input` points to `input_len` bytes; `output_len` is valid for reads and writes;
        /// a non-NULL `output` has room for `*output_len` bytes.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            session: CK_SESSION_HANDLE,
            input: *mut CK_BYTE,
            input_len: CK_ULONG,
            output: *mut CK_BYTE,
            output_len: *mut CK_ULONG,
        ) -> CK_RV {
            crate::ffi::guard_session(stringify!($name), session, |ctx| {
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    let input = crate::ffi::args::bytes(input, input_len)?;
                    let capacity = crate::ffi::args::capacity(output, output_len)?;
                    crate::ffi::args::emit(output, output_len, $core(ctx, input, capacity))
                }
            })
        }
    };
}

/// `C_X(session, input, input_len, output, output_len)` whose core writes straight into
/// the caller's output buffer (one-shot `C_Encrypt`/`C_Decrypt`: no copy through a
/// buffer of ours).
macro_rules! in_out_direct {
    ($name:ident, $core:path) => {
        #[doc = concat!("`", stringify!($name), "`: input in, output written in place under the length-query protocol.")]
        ///
        /// # Safety
        /// `input` points to `input_len` bytes; `output_len` is valid for reads and writes;
        /// a non-NULL `output` has room for `*output_len` bytes.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            session: CK_SESSION_HANDLE,
            input: *mut CK_BYTE,
            input_len: CK_ULONG,
            output: *mut CK_BYTE,
            output_len: *mut CK_ULONG,
        ) -> CK_RV {
            crate::ffi::guard_session(stringify!($name), session, |ctx| {
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    let capacity = crate::ffi::args::capacity(output, output_len)?;
                    let (input, out) = crate::ffi::args::in_and_out(input, input_len, output, capacity)?;
                    crate::ffi::args::emit(output, output_len, $core(ctx, &input, out))
                }
            })
        }
    };
}

/// `C_XFinal(session, output, output_len)` with the length-query protocol.
macro_rules! out_only {
    ($name:ident, $core:path) => {
        #[doc = concat!("`", stringify!($name), "`: output under the length-query protocol.")]
        ///
        /// # Safety
        /// `output_len` is valid for reads and writes; a non-NULL `output` has room for
        /// `*output_len` bytes.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            session: CK_SESSION_HANDLE,
            output: *mut CK_BYTE,
            output_len: *mut CK_ULONG,
        ) -> CK_RV {
            crate::ffi::guard_session(stringify!($name), session, |ctx| {
                // SAFETY: forwarded from this function's contract.
                unsafe {
                    let capacity = crate::ffi::args::capacity(output, output_len)?;
                    crate::ffi::args::emit(output, output_len, $core(ctx, capacity))
                }
            })
        }
    };
}

/// `C_XUpdate(session, data, data_len)` with no output.
macro_rules! in_only {
    ($name:ident, $core:path) => {
        #[doc = concat!("`", stringify!($name), "`: more input, no output.")]
        ///
        /// # Safety
        /// `data` points to `data_len` bytes.
        #[no_mangle]
        pub unsafe extern "C" fn $name(session: CK_SESSION_HANDLE, data: *mut CK_BYTE, data_len: CK_ULONG) -> CK_RV {
            crate::ffi::guard_session(stringify!($name), session, |ctx| {
                // SAFETY: forwarded from this function's contract.
                let data = unsafe { crate::ffi::args::bytes(data, data_len) }?;
                $core(ctx, data)
            })
        }
    };
}

pub(crate) use {in_only, in_out, in_out_direct, init_with_key, out_only};
