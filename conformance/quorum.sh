#!/usr/bin/env bash
# The quorum with a real SoftHSM2 root: cvault splits the workspace's key-encryption key
# 2-of-3 among custodians, then a ctypes client (quorum.py) finds the master keys locked,
# approves as custodians through C_LoginUser, wraps once two approved, and locks again.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=quorum
need_tool tools python3 softhsm2-util || exit 0
fresh_workspace
hsm_root_workspace "$(printf '[quorum]\nunlock_hours = 1')"
export CV_CUSTODIAN_ALICE="alice passphrase 1" CV_CUSTODIAN_BOB="bob passphrase 22"
export CV_CUSTODIAN_CAROL="carol passphrase 333"
check token-init "$CVAULT" token init --workspace conformance --label conformance
check custodians-init "$CVAULT" custodians init --threshold 2 --custodian alice --custodian bob --custodian carol
expect_output status-locked 'locked' "$CVAULT" quorum status
quorum() { python3 "$HERE/quorum.py" "$MODULE" "$USER_PIN" "$1"; }
check wrap-refused-while-locked quorum locked
check one-custodian-twice-is-not-enough quorum one-is-not-enough
check two-custodians-unlock quorum unlock
expect_output status-unlocked 'unlocked until' "$CVAULT" quorum status
check lock-stops-wraps quorum lock
expect_output audit-verifies '^intact' "$CVAULT" audit verify
# A request opened ahead (cvault quorum request, CKA_CV_QUORUM_REQUEST), approved by two
# custodians, is what the destroy then uses; a cancelled one's approvals count for nothing.
check unlock-again "$CVAULT" unlock --custodian alice --custodian bob
check rotate-to-v2 "$CVAULT" master rotate
check rotate-to-v3 "$CVAULT" master rotate
check retire-v1 "$CVAULT" master retire --version 1
check retire-v2 "$CVAULT" master retire --version 2
req=$("$CVAULT" --json quorum request --action destroy --version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["request"])')
check request-ahead-approved "$CVAULT" quorum approve --request "$req" --custodian alice --custodian carol
check destroy-uses-request-made-ahead "$CVAULT" master destroy --version 1
req=$("$CVAULT" --json quorum request --action destroy --version 2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["request"])')
check cancelled-request-approved "$CVAULT" quorum approve --request "$req" --custodian alice --custodian bob
check cancel "$CVAULT" quorum cancel "$req"
expect_output cancel-twice-refused 'no longer open' bash -c '! "$0" quorum cancel "$1"' "$CVAULT" "$req"
expect_output destroy-after-cancel-refused 'CKR_CV_QUORUM_REQUIRED' bash -c '! "$0" master destroy --version 2' "$CVAULT"
expect_output audit-names-the-cancel "quorum-cancel.*request #$req" "$CVAULT" audit export
expect_output audit-still-verifies '^intact' "$CVAULT" audit verify
