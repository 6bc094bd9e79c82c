#!/usr/bin/env bash
# The main job (README): builds the module, sets up a workspace in a temporary store, and
# drives it with real clients: OpenSC's pkcs11-tool for token set-up and data objects,
# then the Rust `cryptoki` example for keys; finally it shows what the store holds: the
# hash-chained audit log, and no key bytes in the clear.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "== building the module"
cargo build --release --quiet
MODULE=$PWD/target/release/libcollabvault_pkcs11.so
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export COLLABVAULT_CONF=$WORK/collabvault.toml COLLABVAULT_MODULE=$MODULE
cat >"$COLLABVAULT_CONF" <<TOML
store_dir = "$WORK/store"
log_level = "info"
log_file = "$WORK/module.log"
[pin_policy]
max_failed_logins = 5
[[workspace]]
name = "engineering"
label = "Engineering"
[[workspace]]
name = "legal"
label = "Legal"
TOML
echo "== config ($COLLABVAULT_CONF)"
cat "$COLLABVAULT_CONF"

p11() { echo "\$ pkcs11-tool $*"; pkcs11-tool --module "$MODULE" "$@"; }
echo "== pkcs11-tool: slots, token set-up, a data object"
p11 --list-slots
p11 --slot 1 --init-token --label Legal --so-pin legal-so-pin
p11 --slot 1 --init-pin --so-pin legal-so-pin --pin legal-user-pin
echo "contract draft v3" >"$WORK/contract.txt"
p11 --slot 1 --login --pin legal-user-pin --write-object "$WORK/contract.txt" --type data --label contract --private
p11 --slot 1 --login --pin legal-user-pin --list-objects
echo "\$ pkcs11-tool --login --pin WRONG (refused, and counted)"
pkcs11-tool --module "$MODULE" --slot 1 --login --pin wrong-pin --list-objects 2>&1 | tail -n1 || true
p11 --slot 1 --list-token-slots | grep -E "label|flags"

echo "== the cryptoki example (slot 0): keys stay inside the token"
cargo run --release --quiet --example token_tour

echo "== what the store holds"
DB=$WORK/store/collabvault.sqlite3
sqlite3 "$DB" "SELECT 'objects: ' || count(*) FROM objects;"
echo "audit log (hash-chained; every state change and login):"
sqlite3 -column -header "$DB" \
    "SELECT seq, workspace, actor, action, outcome, substr(hex(hash),1,16) AS hash FROM audit_log ORDER BY seq;"
broken=$(sqlite3 "$DB" "SELECT count(*) FROM audit_log a JOIN audit_log b ON b.seq = a.seq + 1 WHERE b.prev_hash != a.hash;")
echo "chain links that do not match: $broken"
if grep -c "$(printf 'Z%.0s' {1..32})" "$DB"* >/dev/null; then
    echo "FAIL: the AES key's bytes are in the store file" >&2
    exit 1
fi
echo "the AES key's 32 bytes (0x5a...) appear nowhere in the store files: sealed under the token's storage key"
echo "== demo complete"
