#!/usr/bin/env bash
# Python clients: python-pkcs11 drives the token; `cryptography` (OpenSSL's AES-GCM, key
# wrap, ECDSA, ECDH, X9.63 KDF), hashlib and hmac check it. The cases are in gcm_interop.py.
source "$(dirname "$0")/lib.sh"
CLIENT=python
need_tool tools python3 pkcs11-tool || exit 0
check python-packages python3 -c 'import cryptography, pkcs11'
fresh_workspace
export MODULE USER_PIN CV_TOKEN_LABEL=python
check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label '$CV_TOKEN_LABEL' --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
python3 "$(dirname "$0")/gcm_interop.py"
