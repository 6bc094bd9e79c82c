#!/usr/bin/env bash
# Valgrind memcheck over the C ABI (README, "Fuzzing"): the C example (examples/c/sign.c,
# built as conformance/examples.sh builds it) and C-ABI test binaries, each under
# `valgrind --error-exitcode=1`, so any invalid read or write, use of uninitialised
# memory in a branch, or bad free fails the script. Leaks are not counted: the module's
# process-wide state lives until exit by design. Not in CI (minutes under valgrind);
# run it after changes to src/ffi/.
#
#   bash scripts/valgrind.sh                      # the C example and tests/abi_memory.rs
#   VALGRIND_TESTS="abi_memory check_order" bash scripts/valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
cargo build --release --quiet
cargo test --release --no-run --quiet 2>/dev/null
MODULE=$(pwd)/target/release/libcollabvault_pkcs11.so
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
VG=(valgrind --error-exitcode=1 --leak-check=no --track-origins=yes --quiet)

echo "== the C example under memcheck"
cc -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I include -o "$WORK/sign" examples/c/sign.c -ldl
cat >"$WORK/collabvault.toml" <<CONF
store_dir = "$WORK/store"
log_file = "$WORK/module.log"
[[workspace]]
name = "main"
CONF
export COLLABVAULT_CONF=$WORK/collabvault.toml
SO_PIN=so-pin-valgrind USER_PIN=user-pin-valgrind
pkcs11-tool --module "$MODULE" --init-token --label valgrind --so-pin "$SO_PIN" >/dev/null
pkcs11-tool --module "$MODULE" --init-pin --so-pin "$SO_PIN" --pin "$USER_PIN" >/dev/null
"${VG[@]}" "$WORK/sign" "$MODULE" "$USER_PIN"
unset COLLABVAULT_CONF

for t in ${VALGRIND_TESTS:-abi_memory}; do
    bin=$(ls -t target/release/deps/"$t"-* | grep -v '\.d$' | head -1)
    echo "== tests/$t.rs under memcheck ($bin)"
    "${VG[@]}" "$bin" --test-threads=1 -q
done
echo "valgrind: no errors"
