#!/usr/bin/env bash
# cvault's legal hold and BYOK commands with a real SoftHSM2 root and a 2-of-3 quorum
# (doc/quorum.md, doc/byok.md): `hold set` stops a retirement, `hold lift` needs the
# quorum's approval; `master import-key` writes an RSA-3072 import key's public half as
# PEM, openssl wraps a customer's key to it, and `master import` makes it the active
# version once the custodians approved; emergency access opens and closes.
source "$(dirname "$0")/lib.sh"
CLIENT=hold-byok
need_tool tools python3 softhsm2-util openssl || exit 0
fresh_workspace
hsm_root_workspace "$(printf '[quorum]\nunlock_hours = 1')"
export CV_CUSTODIAN_ALICE="alice passphrase 1" CV_CUSTODIAN_BOB="bob passphrase 22"
export CV_CUSTODIAN_CAROL="carol passphrase 333"
check token-init "$CVAULT" token init --workspace conformance --label conformance
check custodians-init "$CVAULT" custodians init --threshold 2 --custodian alice --custodian bob --custodian carol
check unlock "$CVAULT" unlock --custodian alice --custodian bob
check rotate "$CVAULT" master rotate
# request id of the open request whose action starts with $1
request() {
    "$CVAULT" quorum status --json | python3 -c \
        'import json,sys; print([r["id"] for r in json.load(sys.stdin)[0]["open_requests"] if r["action"].startswith(sys.argv[1])][0])' "$1"
}

expect_output hold-set 'legal hold set \(case 7731\)' "$CVAULT" hold set --reason "case 7731"
expect_output retire-refused-under-hold 'CKR_CV_LEGAL_HOLD' bash -c '! "$0" master retire --version 1 2>&1' "$CVAULT"
expect_output lift-needs-the-quorum 'needs the quorum' bash -c '! "$0" hold lift 2>&1' "$CVAULT"
check custodians-approve-the-lift bash -c '"$0" quorum approve --request "$1" --custodian alice --custodian carol' "$CVAULT" "$(request lift-hold)"
expect_output hold-lifted 'legal hold lifted' "$CVAULT" hold lift
check retire-after-the-lift "$CVAULT" master retire --version 1

expect_output import-key-pem 'BEGIN PUBLIC KEY' bash -c '"$0" master import-key --type rsa-3072 --out "$1" && cat "$1"' \
    "$CVAULT" "$WORK/import.pem"
openssl rand -out "$WORK/customer.key" 32
check openssl-wraps openssl pkeyutl -encrypt -pubin -inkey "$WORK/import.pem" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/customer.key" -out "$WORK/wrapped.bin"
expect_output import-needs-the-quorum 'needs the quorum' bash -c '! "$0" master import --wrapped "$1" 2>&1' \
    "$CVAULT" "$WORK/wrapped.bin"
check custodians-approve-the-import bash -c '"$0" quorum approve --request "$1" --custodian bob --custodian carol' "$CVAULT" "$(request import-key)"
expect_output imported 'v3 imported \(imported:rsa-oaep-sha256\)' "$CVAULT" master import --wrapped "$WORK/wrapped.bin"
expect_output opens-with-the-customer-key 'wmk v3 opens' python3 "$(dirname "$0")/byok.py" "$MODULE" "$USER_PIN" opens "$WORK/customer.key"

expect_output emergency-needs-the-quorum 'CKR_CV_QUORUM_REQUIRED' bash -c '! "$0" emergency open --name dana 2>&1' "$CVAULT"
check custodians-approve-the-window bash -c '"$0" quorum approve --request "$1" --custodian alice --custodian bob' "$CVAULT" "$(request emergency-access)"
expect_output emergency-open 'emergency access open for dana' "$CVAULT" emergency open --name dana
expect_output emergency-closed 'emergency access closed' "$CVAULT" emergency close
expect_output audit-verifies '^intact' "$CVAULT" audit verify
