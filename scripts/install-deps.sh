#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine: the PKCS#11 clients the
# tests and demo drive (OpenSC's pkcs11-tool, p11-kit, NSS's certutil/modutil, GnuTLS's
# p11tool, OpenSSL's pkcs11 engine, the JDK for Java SunPKCS11 and keytool), the Debian
# packaging tools (dpkg-dev, binutils' strip, lintian, man-db for `man cvault`), SoftHSM2
# (the underlying slot), libclang-dev, libssl-dev and libsqlite3-dev (bindgen, the OpenSSL
# headers and the system SQLite that scripts/build-kryoptic.sh needs to build Kryoptic,
# the benchmark's second peer), sqlite3 (to show the store), Python with `cryptography`
# and `python-pkcs11` (the conformance cross-checks against OpenSSL), and the crates
# (cargo fetch), and PostgreSQL's server (`postgresql`: initdb and pg_ctl under
# /usr/lib/postgresql/<major>/bin, which the tests start in a temporary directory for the
# PostgreSQL store backend; the packaged cluster is not used). Idempotent: fast when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(opensc softhsm2 sqlite3 gcc pkg-config openssl python3 python3-pip p11-kit p11-kit-modules libnss3-tools gnutls-bin libengine-pkcs11-openssl openjdk-17-jdk-headless
    dpkg-dev binutils lintian man-db libclang-dev libssl-dev libsqlite3-dev postgresql)
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

# Conformance clients from PyPI (python-pkcs11 builds with gcc when no wheel fits). Whichever
# python3 is first on PATH gets them; Debian's own python3 needs PIP_BREAK_SYSTEM_PACKAGES.
# dilithium-py and kyber-py are the independent ML-DSA and ML-KEM the conformance runner checks against.
if ! python3 -c 'import cryptography, pkcs11, dilithium_py, kyber_py' 2>/dev/null; then
    echo "install-deps: installing Python packages cryptography python-pkcs11 dilithium-py kyber-py"
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
        python3 -m pip install --quiet 'cryptography' 'python-pkcs11' 'dilithium-py==1.5.1' 'kyber-py==1.2.0'
fi

if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo is not on PATH; this project needs the Rust toolchain (rustup)" >&2
    exit 1
fi
cargo fetch --quiet
echo "install-deps: ready ($(cargo --version), $(pkcs11-tool --version 2>&1 | head -n1 || true))"
