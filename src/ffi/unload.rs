//! What runs when this library is unloaded (`dlclose`) or the process exits: releasing
//! AWS-LC's thread-local state under the default `aws-lc` backend.
//!
//! AWS-LC keeps per-thread data behind a pthread key whose destructor lives in this
//! library. A host that `dlclose`s the module and then ends a thread that once called
//! into it would run that destructor from unmapped code and crash (the C-ABI tests load
//! and unload the `.so` many times). At unload this clears the unloading thread's data
//! and deletes the key, so no destructor of ours is left for another thread's exit: their
//! few bytes of thread-local data leak instead, which is AWS-LC's documented remedy. The
//! `rustcrypto` build has no such state and registers nothing.

/// Called by the dynamic loader from `.fini_array`.
#[cfg(feature = "aws-lc")]
extern "C" fn release_aws_lc_thread_state() {
    // SAFETY: both functions take no arguments and only touch AWS-LC's own thread-local
    // bookkeeping. They run from the loader's finalizer, after the host's last call into
    // the module (it is unloading us); AWS-LC requires no concurrent use of the key while
    // `AWSLC_thread_local_shutdown` runs, and a host unloading a module it still calls
    // from another thread is already outside the PKCS#11 contract.
    unsafe {
        // Narrow exception in tests/crypto_seam.rs: these two calls are the only use of
        // the backend's crate outside src/mechanism/, since unsafe code lives here only.
        aws_lc_sys::AWSLC_thread_local_clear();
        aws_lc_sys::AWSLC_thread_local_shutdown();
    }
}

/// The finalizer entry: the loader calls it once, at `dlclose` or at exit.
#[cfg(feature = "aws-lc")]
#[used]
#[link_section = ".fini_array"]
static RELEASE_AWS_LC_THREAD_STATE: extern "C" fn() = release_aws_lc_thread_state;
