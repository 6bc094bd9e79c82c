#!/usr/bin/env bash
# OpenSC's pkcs11-tool against the module: token set-up, login and data objects.
source "$(dirname "$0")/lib.sh"
CLIENT=pkcs11-tool
fresh_workspace
p11() { pkcs11-tool --module "$MODULE" "$@"; }

expect_output list-slots-uninitialized "token state: +uninitialized" p11 --list-slots
check init-token p11 --init-token --label conformance --so-pin "$SO_PIN"
check init-pin p11 --init-pin --so-pin "$SO_PIN" --pin "$USER_PIN"
expect_output token-flags "PIN initialized" p11 --list-slots
check change-pin p11 --change-pin --pin "$USER_PIN" --new-pin "$USER_PIN-2"
check change-pin-back p11 --change-pin --pin "$USER_PIN-2" --new-pin "$USER_PIN"
check login-wrong-pin-refused bash -c "! pkcs11-tool --module '$MODULE' --login --pin wrong-pin --list-objects"
check login p11 --login --pin "$USER_PIN" --list-objects
echo "conformance document" >"$WORK/data.txt"
check write-data-object p11 --login --pin "$USER_PIN" --write-object "$WORK/data.txt" --type data --label doc1
expect_output list-objects "label: +'doc1'" p11 --login --pin "$USER_PIN" --list-objects
check read-data-object bash -c "pkcs11-tool --module '$MODULE' --login --pin '$USER_PIN' --read-object --type data --label doc1 -o '$WORK/back.txt' && cmp '$WORK/data.txt' '$WORK/back.txt'"
check delete-data-object p11 --login --pin "$USER_PIN" --delete-object --type data --label doc1
check object-gone bash -c "! pkcs11-tool --module '$MODULE' --login --pin '$USER_PIN' --list-objects 2>&1 | grep -q doc1"
expect_output random "." p11 --generate-random 32
rm -rf "$WORK"
