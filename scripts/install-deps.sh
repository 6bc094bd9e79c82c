#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine: the PKCS#11 clients the
# tests and demo drive (OpenSC's pkcs11-tool), SoftHSM2 (the underlying slot), sqlite3 (to
# show the store), and the crates (cargo fetch). Idempotent: fast when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(opensc softhsm2 sqlite3 gcc pkg-config)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo is not on PATH; this project needs the Rust toolchain (rustup)" >&2
    exit 1
fi
cargo fetch --quiet
echo "install-deps: ready ($(cargo --version), $(pkcs11-tool --version 2>&1 | head -n1 || true))"
