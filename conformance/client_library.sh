#!/usr/bin/env bash
# What a general-purpose client library's own test suite exercises beyond the everyday
# tools (issue 19), driven by python-pkcs11: legacy code points, block-length errors and
# the length-query protocol of multi-part AES, and the key sizes the token advertises.
# The cases are in client_library.py.
source "$(dirname "$0")/lib.sh"
CLIENT=client-library
need_tool tools python3 pkcs11-tool || exit 0
fresh_workspace
export MODULE USER_PIN CV_TOKEN_LABEL=clientlib
check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label '$CV_TOKEN_LABEL' --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
refused_with() { # refused_with CKR_NAME CMD...: CMD must fail and name CKR_NAME
    local want=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "accepted: $out"
        return 1
    fi
    grep -q "$want" <<<"$out" || { echo "refused, but not with $want: $out"; return 1; }
}
check rsa-1024-keygen-is-key-size-range refused_with CKR_KEY_SIZE_RANGE \
    pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" --keypairgen --key-type rsa:1024 --label small
python3 "$(dirname "$0")/client_library.py"
