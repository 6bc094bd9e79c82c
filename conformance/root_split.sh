#!/usr/bin/env bash
# The root of trust split 2-of-3 over three SoftHSM2 tokens (doc/root.md): cvault and the
# module work with all three, then with two once a token is deleted for good (a new
# process recombines the root from the other two), and refuse with one, the module's
# log naming the missing slots.
source "$(dirname "$0")/lib.sh"
CLIENT=root-split
need_tool tools softhsm2-util || exit 0
fresh_workspace
hsm_split_root_workspace 3 2
check token-init "$CVAULT" token init --workspace conformance --label conformance
expect_output dealt-2-of-3 'dealt a new root 2-of-3 over slots cv-split-1, cv-split-2, cv-split-3' cat "$WORK/module.log"
check rotate-with-three "$CVAULT" master rotate
expect_output audit-verifies-with-three '^intact' "$CVAULT" audit verify

softhsm2-util --delete-token --token cv-split-3 >/dev/null
check rotate-with-two "$CVAULT" master rotate
expect_output versions-with-two 'v3' "$CVAULT" master list
expect_output audit-verifies-with-two '^intact' "$CVAULT" audit verify
expect_output recombined-from-two 'recombined 2-of-3 from slots "cv-split-1", "cv-split-2"' cat "$WORK/module.log"

softhsm2-util --delete-token --token cv-split-2 >/dev/null
expect_output one-slot-refused 'CKR_DEVICE_ERROR|device error|DeviceError' bash -c '! "$0" master list' "$CVAULT"
expect_output log-names-missing-slots 'missing slots: cv-split-2, cv-split-3' cat "$WORK/module.log"
