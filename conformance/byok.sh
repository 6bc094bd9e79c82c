#!/usr/bin/env bash
# BYOK import (doc/byok.md): an import key made on the token through a ctypes client
# (byok.py), its public half exported; a customer key made and RSA-OAEP-wrapped by the
# openssl command-line tool, and one ML-KEM-768 + AES-KWP wrapped with kyber-py and
# `cryptography`; each imported with C_UnwrapKey(CKM_CV_IMPORT_MASTER) as the active master
# key version, proved by opening a wrap record under it with the customer's key; a
# tampered and a short key refused; the audit chain intact.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=byok
need_tool tools python3 openssl || exit 0
fresh_workspace
CVAULT=$(dirname "$MODULE")/cvault
export COLLABVAULT_MODULE=$MODULE CV_SO_PIN=$SO_PIN CV_USER_PIN=$USER_PIN
byok() { python3 "$HERE/byok.py" "$MODULE" "$USER_PIN" "$@"; }
check token-init "$CVAULT" token init --workspace conformance --label conformance

# RSA-OAEP-SHA256, wrapped by openssl.
check rsa-import-key byok keygen rsa "$WORK/import.pem"
openssl rand -out "$WORK/key.bin" 32
openssl rand -out "$WORK/short.bin" 16
oaep() {
    openssl pkeyutl -encrypt -pubin -inkey "$WORK/import.pem" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$1" -out "$2"
}
check openssl-wraps oaep "$WORK/key.bin" "$WORK/wrapped.bin"
oaep "$WORK/short.bin" "$WORK/short-wrapped.bin"
check short-key-refused byok refuse rsa "$WORK/short-wrapped.bin" 0x112
python3 -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[100] ^= 1; open(sys.argv[2], 'wb').write(b)" \
    "$WORK/wrapped.bin" "$WORK/tampered.bin"
check bad-padding-refused byok refuse rsa "$WORK/tampered.bin" 0x110
expect_output rsa-import 'wmk v2 imported:rsa-oaep-sha256' byok import rsa "$WORK/wrapped.bin"
expect_output record-opens-with-openssl-key 'wmk v2 opens' byok opens "$WORK/key.bin"

# ML-KEM-768 + AES-256-KWP, wrapped with kyber-py and cryptography.
check mlkem-import-key byok keygen mlkem "$WORK/ek.bin"
openssl rand -out "$WORK/key3.bin" 32
check kyber-py-wraps byok mlkem-wrap "$WORK/ek.bin" "$WORK/key3.bin" "$WORK/mlkem-wrapped.bin"
expect_output mlkem-import 'wmk v3 imported:ml-kem-768\+aes-kwp' byok import mlkem "$WORK/mlkem-wrapped.bin"
expect_output record-opens-with-kyber-key 'wmk v3 opens' byok opens "$WORK/key3.bin"

expect_output master-list-shows-origin 'v3 .*imported:ml-kem-768' "$CVAULT" master list
expect_output audit-verifies '^intact' "$CVAULT" audit verify
