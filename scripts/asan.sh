#!/usr/bin/env bash
# AddressSanitizer over the C ABI (README, "Fuzzing"): the module, the test binaries and
# `cvault` built with `-Zsanitizer=address` into target/asan, then C-ABI test files run
# against that instrumented module, so a heap or stack overflow, a use after free or a
# double free anywhere in the module's Rust (or in a test) aborts the run with ASan's
# report. Not in CI (a second full build, and the tests run 2-3x slower).
#
# The sanitizers are an unstable rustc flag. This machine has only the stable toolchain
# (no nightly can be fetched here), whose standard library ships the sanitizer runtimes;
# RUSTC_BOOTSTRAP=1 lets stable rustc take the flag. std itself is not instrumented
# (that needs -Zbuild-std and the rust-src component, absent here), nor is the C of
# aws-lc or SQLite (built by cc without -fsanitize), so errors inside those go unseen.
# ThreadSanitizer is not run for the same reason: without an instrumented std it reports
# races on std's own synchronisation that are not races.
#
#   bash scripts/asan.sh                                  # the default C-ABI files
#   ASAN_TESTS="abi_memory fuzz_abi" bash scripts/asan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | awk '/^host:/ {print $2}')
# --target: RUSTFLAGS then reach only the target's crates, not build scripts or
# proc-macros (which would need the runtime too).
export RUSTC_BOOTSTRAP=1
# The ASan runtime is linked into the executables; the module, loaded with dlopen as
# applications load it, finds the runtime's symbols only if they export them. Only those:
# a test binary exporting everything would export its own copy of the module's C_*
# functions, which would then interpose on SoftHSM2's (ELF symbol interposition) and turn
# the module's call into its root slot into a call into itself.
mkdir -p target/asan
printf '{ __asan_*; __sanitizer_*; __lsan_*; };\n' >target/asan/runtime.dynlist
export RUSTFLAGS="-Zsanitizer=address -Clink-arg=-Wl,--dynamic-list=$(pwd)/target/asan/runtime.dynlist"
# Leaks are not counted: the module's process-wide state lives until exit by design (as
# in scripts/valgrind.sh). allocator_may_return_null: a failed allocation returns null, as
# the system allocator does, instead of ASan aborting the process; the module must answer
# an impossible size with CKR_HOST_MEMORY (tests/abi_memory.rs asks for 2^62 bytes).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:allocator_may_return_null=1}
tests=${ASAN_TESTS:-abi_general abi_memory bad_input check_order multipart_buffers mechanism_sizes objects
    mech_aes mech_message mech_ec mech_rsa mech_mlkem mech_hybrid_kem mech_mldsa wrap_policy hierarchy fuzz_abi
    fuzz_regressions}
args=()
for t in $tests; do args+=(--test "$t"); done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --target "$target" --target-dir target/asan --no-fail-fast "${args[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo 'test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
if grep -q "ERROR: AddressSanitizer" "$log"; then
    echo "asan.sh: AddressSanitizer reported an error (above)" >&2
    exit 1
fi
if [ "$passed" -eq 0 ]; then
    echo "asan.sh: no tests ran: treating as a failure" >&2
    exit 1
fi
echo "asan.sh: $passed tests passed under AddressSanitizer; status $status"
exit "$status"
