#!/usr/bin/env bash
# OpenSC's pkcs11-tool against the module: token set-up, login, data objects, and the
# mechanisms (AES keygen and key wrap, EC P-256 keypairs and ECDSA, pkcs11-tool --test).
# OpenSC 0.23 (Debian 12) has no AES-GCM in --encrypt (no --aad/--tag-bits-len), so
# GCM interop lives in gcm_interop.py (client "python").
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

# Mechanisms.
lp11() { pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" "$@"; }
expect_output mechanisms-aes-gcm "^ +AES-GCM,.*encrypt, decrypt" p11 --list-mechanisms
expect_output mechanisms-ecdsa-sha256 "^ +ECDSA-SHA256,.*sign, verify" p11 --list-mechanisms
expect_output mechanisms-sha256-hmac "^ +SHA256-HMAC,.*sign, verify" p11 --list-mechanisms
expect_output mechanisms-aes-key-wrap "^ +AES-KEY-WRAP,.*wrap, unwrap" p11 --list-mechanisms
expect_output keygen-aes-256 "Secret Key Object; AES length 32" lp11 --keygen --key-type AES:32 --id a1 --label kek
expect_output keypairgen-ec-p256 "EC_PARAMS: +06082a8648ce3d030107" lp11 --keypairgen --key-type EC:prime256v1 --id e1 --label ec1
printf 'signed by the token\n' >"$WORK/msg.txt"
check sign-ecdsa-sha256 lp11 --sign -m ECDSA-SHA256 --id e1 -i "$WORK/msg.txt" -o "$WORK/msg.sig"
check ecdsa-signature-is-64-bytes test "$(stat -c %s "$WORK/msg.sig" 2>/dev/null)" = 64
expect_output verify-ecdsa-sha256 "^Signature is valid" lp11 --verify -m ECDSA-SHA256 --id e1 -i "$WORK/msg.txt" --signature-file "$WORK/msg.sig"
printf 'tampered\n' >"$WORK/bad.txt"
expect_output verify-ecdsa-sha256-tampered "^Invalid signature" lp11 --verify -m ECDSA-SHA256 --id e1 -i "$WORK/bad.txt" --signature-file "$WORK/msg.sig"
expect_output test-login "No errors" p11 --test --login --pin "$USER_PIN"

# AES key wrap: wrap an extractable key under the KEK, unwrap it, compare the values.
expect_output keygen-aes-extractable "Access: +extractable" lp11 --keygen --key-type AES:32 --id b1 --label payload --extractable
wrap_roundtrip() { # MECH WRAPPED_SIZE NEW_ID
    local mech=$1 size=$2 id=$3 orig back
    lp11 --wrap -m "$mech" --id a1 --application-id b1 -o "$WORK/wrapped-$id.bin" || return 1
    [ "$(stat -c %s "$WORK/wrapped-$id.bin")" = "$size" ] || { echo "wrapped size $(stat -c %s "$WORK/wrapped-$id.bin"), want $size"; return 1; }
    lp11 --unwrap -m "$mech" --id a1 -i "$WORK/wrapped-$id.bin" --key-type AES: --application-id "$id" --application-label "unwrapped-$id" --extractable || return 1
    lp11 --read-object --type secrkey --id b1 -o "$WORK/orig-$id.bin" || return 1
    lp11 --read-object --type secrkey --id "$id" -o "$WORK/back-$id.bin" || return 1
    orig=$(od -An -tx1 "$WORK/orig-$id.bin" | tr -d ' \n') back=$(od -An -tx1 "$WORK/back-$id.bin" | tr -d ' \n')
    echo "original $orig unwrapped $back"
    [ ${#orig} = 64 ] && [ "$orig" = "$back" ]
}
check wrap-unwrap-aes-key-wrap wrap_roundtrip AES-KEY-WRAP 40 c1
check wrap-unwrap-aes-key-wrap-kwp wrap_roundtrip 0x210B 40 c2
# CKM_AES_KEY_WRAP_PAD (0x210A), the older code point SoftHSM2 and OpenSC run as RFC 5649.
check wrap-unwrap-aes-key-wrap-pad-alias wrap_roundtrip 0x210A 40 c4
expect_output unwrap-tampered-refused CKR_WRAPPED_KEY_INVALID bash -c "cp '$WORK/wrapped-c1.bin' '$WORK/tampered.bin' && printf '\\xff' | dd of='$WORK/tampered.bin' bs=1 seek=5 conv=notrunc 2>/dev/null && ! pkcs11-tool --module '$MODULE' --login --pin '$USER_PIN' --unwrap -m AES-KEY-WRAP --id a1 -i '$WORK/tampered.bin' --key-type AES: --application-id c3"
rm -rf "$WORK"
