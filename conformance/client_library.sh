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
python3 "$(dirname "$0")/client_library.py"
