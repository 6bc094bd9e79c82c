# Shared by the conformance scripts: the module where cargo built it, a caller's environment
# that cannot reach any client, a fresh store and config per client, and `check`, which
# runs one case and records `client / case / PASS|FAIL` in $CV_RESULTS.
set -euo pipefail

CV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Run alone, a script prints its scoreboard lines only; run.sh collects them.
export CV_RESULTS=${CV_RESULTS:-/dev/null}

# The build is wherever cargo put it (CARGO_TARGET_DIR, build.target-dir, CARGO_BUILD_TARGET),
# never an assumed target/: a stale target/release would be tested in its place.
# COLLABVAULT_MODULE names another module (an installed one) explicitly.
if [ -n "${COLLABVAULT_MODULE:-}" ]; then
    MODULE=$COLLABVAULT_MODULE
else
    CV_RELEASE_DIR=$(bash "$CV_ROOT/scripts/release-dir.sh") || { echo "cannot ask cargo where it builds" >&2; exit 1; }
    MODULE=$CV_RELEASE_DIR/libcollabvault_pkcs11.so
fi
[ -f "$MODULE" ] || { echo "module not built: $MODULE (run: cargo build --release)" >&2; exit 1; }

# Ordinary settings in the caller's environment redirect the clients' configuration: a
# p11-kit user config under XDG_CONFIG_HOME, an OPENSSL_CONF with other engines, JVM
# options, PINs a tool would pick up, a language that translates the messages the cases
# match. None of them reaches a client; each script sets what its client needs.
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_STATE_HOME XDG_CONFIG_DIRS XDG_RUNTIME_DIR \
    P11_KIT_SERVER_ADDRESS P11_KIT_SERVER_PID \
    OPENSSL_CONF OPENSSL_CONF_INCLUDE OPENSSL_ENGINES OPENSSL_MODULES \
    GNUTLS_PIN GNUTLS_SO_PIN GNUTLS_SYSTEM_PRIORITY_FILE GNUTLS_FORCE_FIPS_MODE \
    NSS_DEFAULT_DB_TYPE NSS_FIPS OPENSC_CONF OPENSC_DRIVER SOFTHSM2_CONF \
    PKCS11_PROVIDER_MODULE PKCS11_MODULE_PATH \
    JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS CLASSPATH \
    COLLABVAULT_CONF COLLABVAULT_LOG CV_SO_PIN CV_USER_PIN LANGUAGE
export LC_ALL=C.UTF-8
# Scripts give their clients a private HOME; the toolchains (rustup, pyenv) keep the caller's.
if [ -n "${HOME:-}" ]; then
    export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
    if [ -z "${PYENV_ROOT:-}" ] && [ -d "$HOME/.pyenv" ]; then export PYENV_ROOT=$HOME/.pyenv; fi
fi

SO_PIN=so-pin-1234
USER_PIN=user-pin-1234

# A fresh workspace for this client: its own store directory and config, and a private
# home ($CV_HOME) that the XDG directories point into. `fresh_workspace nobody`: the
# clients run as `nobody` when we are root (p11-kit ignores user configs in a root
# process), so the workspace is made where nobody can reach it ($TMPDIR may be a private
# directory) and MODULE is copied in when nobody cannot read the build (a target dir
# under /root).
fresh_workspace() {
    if [ "${1:-}" = nobody ] && [ "$(id -u)" -eq 0 ]; then
        WORK=$(mktemp -d -p /tmp)
    else
        WORK=$(mktemp -d)
    fi
    trap 'rm -rf "$WORK"' EXIT
    CV_HOME=$WORK/home
    mkdir -p "$CV_HOME/.config" "$CV_HOME/.local/share" "$CV_HOME/.cache"
    export XDG_CONFIG_HOME=$CV_HOME/.config XDG_DATA_HOME=$CV_HOME/.local/share XDG_CACHE_HOME=$CV_HOME/.cache
    if [ "${1:-}" = nobody ] && [ "$(id -u)" -eq 0 ] &&
        ! setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$MODULE"; then
        cp "$MODULE" "$WORK/libcollabvault_pkcs11.so"
        MODULE=$WORK/libcollabvault_pkcs11.so
    fi
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

# hsm_root_workspace [TOML]: after fresh_workspace, a SoftHSM2 token of this client's own
# (private SOFTHSM2_CONF in $WORK) as the module's [root], TOML appended before the
# workspace; the cvault beside the module in $CVAULT, and the PINs it reads exported.
hsm_root_workspace() {
    export SOFTHSM2_CONF=$WORK/softhsm2.conf CV_ROOT_PIN=root-pin-2468
    mkdir -p "$WORK/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" >"$SOFTHSM2_CONF"
    softhsm2-util --init-token --free --label cv-root --so-pin root-so-1357 --pin "$CV_ROOT_PIN" >/dev/null
    cat >"$COLLABVAULT_CONF" <<TOML
store_dir = "$WORK/store"
log_level = "info"
log_file = "$WORK/module.log"
[root]
module = "${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
token_label = "cv-root"
pin_env = "CV_ROOT_PIN"
${1:-}
[[workspace]]
name = "conformance"
TOML
    CVAULT=$(dirname "$MODULE")/cvault
    export COLLABVAULT_MODULE=$MODULE CV_SO_PIN=$SO_PIN CV_USER_PIN=$USER_PIN
}

# hsm_split_root_workspace N M: after fresh_workspace, N SoftHSM2 tokens cv-split-1..N (a
# private SOFTHSM2_CONF in $WORK) over which the module's root is split M-of-N
# ([[root.slots]], doc/root.md); cvault in $CVAULT and the PINs exported as above.
hsm_split_root_workspace() {
    export SOFTHSM2_CONF=$WORK/softhsm2.conf CV_ROOT_PIN=root-pin-2468
    mkdir -p "$WORK/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" >"$SOFTHSM2_CONF"
    local i slots=""
    for ((i = 1; i <= $1; i++)); do
        softhsm2-util --init-token --free --label "cv-split-$i" --so-pin root-so-1357 --pin "$CV_ROOT_PIN" >/dev/null
        slots+=$(printf '[[root.slots]]\nmodule = "%s"\ntoken_label = "cv-split-%s"\npin_env = "CV_ROOT_PIN"\n\n' \
            "${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" "$i")
        slots+=$'\n'
    done
    cat >"$COLLABVAULT_CONF" <<TOML
store_dir = "$WORK/store"
log_level = "info"
log_file = "$WORK/module.log"
[root]
threshold = $2
$slots
[[workspace]]
name = "conformance"
TOML
    CVAULT=$(dirname "$MODULE")/cvault
    export COLLABVAULT_MODULE=$MODULE CV_SO_PIN=$SO_PIN CV_USER_PIN=$USER_PIN
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
