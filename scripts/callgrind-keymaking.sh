#!/usr/bin/env bash
# Instructions per session key made through the C ABI, counted by callgrind (README,
# "Benchmark": how the cost of making a session key object was measured). Builds the C
# driver scripts/profile/keymaking.c, gives the module a fresh token in a temporary
# store, and prints the instructions of one make + destroy for an AES-256 C_GenerateKey,
# an ML-KEM-768 C_EncapsulateKey, C_DecapsulateKey and C_GenerateKeyPair (OPS picks some),
# averaged over N (default 512) so the batched audit writes are spread over the calls
# that cause them. Instruction counts do not depend on
# the machine's load, unlike the benchmark's rates.
#
#   bash scripts/callgrind-keymaking.sh                         # target/release build
#   MODULE=/path/to/libcollabvault_pkcs11.so N=200 bash scripts/callgrind-keymaking.sh
#   OPS="aes encaps" KEEP=/tmp/cg bash scripts/callgrind-keymaking.sh  # keep the profiles
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
MODULE=${MODULE:-$(pwd)/target/release/libcollabvault_pkcs11.so}
# 512: a multiple of the 256-entry audit batch, so the entries of the measured calls are
# all written inside `measured` (with N=500 about 240 were still held when it ended).
N=${N:-512}
OPS=${OPS:-aes encaps decaps kpgen}
KEEP=${KEEP:-}
[ -f "$MODULE" ] || { echo "$MODULE not built (cargo build --release)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cc -O2 -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I include -o "$WORK/keymaking" scripts/profile/keymaking.c -ldl
cat >"$WORK/collabvault.toml" <<CONF
store_dir = "$WORK/store"
log_file = "$WORK/module.log"
log_level = "error"
[[workspace]]
name = "main"
CONF
export COLLABVAULT_CONF=$WORK/collabvault.toml
SO_PIN=so-pin-callgrind USER_PIN=user-pin-callgrind
pkcs11-tool --module "$MODULE" --init-token --label callgrind --so-pin "$SO_PIN" >/dev/null 2>&1
pkcs11-tool --module "$MODULE" --init-pin --so-pin "$SO_PIN" --pin "$USER_PIN" >/dev/null 2>&1
for op in $OPS; do
    out="$WORK/callgrind.$op"
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measured --callgrind-out-file="$out" \
        "$WORK/keymaking" "$MODULE" "$USER_PIN" "$op" "$N" >/dev/null 2>&1
    total=$(grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}')
    echo "$op: $((total / N)) instructions per make + destroy (N=$N, $MODULE)"
    if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp "$out" "$KEEP/callgrind.$op"; fi
done
