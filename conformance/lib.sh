# Shared by the conformance scripts: a fresh store and config per client, and `check`,
# which runs one case and records `client / case / PASS|FAIL` in $CV_RESULTS.
set -euo pipefail

CV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=${COLLABVAULT_MODULE:-$CV_ROOT/target/release/libcollabvault_pkcs11.so}
[ -f "$MODULE" ] || { echo "module not built: $MODULE (run: cargo build --release)" >&2; exit 1; }
: "${CV_RESULTS:?run through conformance/run.sh}"

SO_PIN=so-pin-1234
USER_PIN=user-pin-1234

# A fresh workspace for this client: its own store directory and config.
fresh_workspace() {
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    export COLLABVAULT_CONF=$WORK/collabvault.toml
    cat >"$COLLABVAULT_CONF" <<TOML
store_dir = "$WORK/store"
log_level = "info"
log_file = "$WORK/module.log"
[[workspace]]
name = "conformance"
label = "conformance"
TOML
}

# check CASE CMD...: runs CMD quietly; its output is shown only when it fails.
check() {
    local case=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        echo "$CLIENT / $case / PASS" | tee -a "$CV_RESULTS"
    else
        echo "$CLIENT / $case / FAIL" | tee -a "$CV_RESULTS"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
    fi
}

# expect_output CASE PATTERN CMD...: like check, and the output must match PATTERN.
expect_output() {
    local case=$1 pattern=$2
    shift 2
    local out
    if out=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$out"; then
        echo "$CLIENT / $case / PASS" | tee -a "$CV_RESULTS"
    else
        echo "$CLIENT / $case / FAIL (wanted /$pattern/)" | tee -a "$CV_RESULTS"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
    fi
}

# need_tool CASE TOOL...: records CASE as FAIL when a tool is missing (a missing client is
# a failure, never a skip: CI installs every tool through scripts/install-deps.sh).
need_tool() {
    local case=$1 t missing=()
    shift
    for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
    if ((${#missing[@]})); then
        echo "$CLIENT / $case / FAIL" | tee -a "$CV_RESULTS"
        echo "    | missing: ${missing[*]} (run scripts/install-deps.sh)"
        return 1
    fi
    echo "$CLIENT / $case / PASS" | tee -a "$CV_RESULTS"
}
