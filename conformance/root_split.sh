#!/usr/bin/env bash
# The root of trust split 2-of-3 over three SoftHSM2 tokens (doc/root.md): cvault and the
# module work with all three, then with two once a token is deleted for good (a new
# process recombines the root from the other two), a fresh token put in the lost one's
# place gets shares (`cvault root reshare`) good enough to open everything once another
# token is lost, and one slot is refused, the module's log naming the missing slots.
source "$(dirname "$0")/lib.sh"
CLIENT=root-split
need_tool tools softhsm2-util pkcs11-tool || exit 0
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

# A fresh token in the lost one's place (position 3), and every secret dealt again over
# all three (cvault root reshare); then a different token lost: the replacement and
# cv-split-2 open the root, and every version, on their own.
softhsm2-util --init-token --free --label cv-split-3b --so-pin root-so-1357 --pin "$CV_ROOT_PIN" >/dev/null
sed -i 's/token_label = "cv-split-3"/token_label = "cv-split-3b"/' "$COLLABVAULT_CONF"
expect_output reshare-onto-replacement \
    'root reshared 2-of-3: 4 secret\(s\) dealt again over slots cv-split-1, cv-split-2, cv-split-3b' \
    "$CVAULT" root reshare
expect_output replacement-holds-shares 'collabvault-split/wmk/conformance/v3' \
    pkcs11-tool --module "${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" --token-label cv-split-3b \
    --login --pin "$CV_ROOT_PIN" --list-objects --type data
softhsm2-util --delete-token --token cv-split-1 >/dev/null
check rotate-with-replacement "$CVAULT" master rotate
expect_output versions-with-replacement 'v4' "$CVAULT" master list
expect_output audit-verifies-with-replacement '^intact' "$CVAULT" audit verify
expect_output recombined-with-replacement 'recombined 2-of-3 from slots "cv-split-2", "cv-split-3b"' \
    cat "$WORK/module.log"
expect_output reshare-refused-without-every-slot 'a reshare deals to every slot.*missing slots: cv-split-1' \
    bash -c '! "$0" root reshare' "$CVAULT"

softhsm2-util --delete-token --token cv-split-2 >/dev/null
expect_output one-slot-refused 'CKR_DEVICE_ERROR|device error|DeviceError' bash -c '! "$0" master list' "$CVAULT"
expect_output log-names-missing-slots 'missing slots: cv-split-1, cv-split-2' cat "$WORK/module.log"
expect_output reshare-refused-with-one 'only 1 slot\(s\) answer' bash -c '! "$0" root reshare' "$CVAULT"
