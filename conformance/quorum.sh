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
