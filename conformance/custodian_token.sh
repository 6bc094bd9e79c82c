#!/usr/bin/env bash
# A custodian whose secret is an HMAC key on their own PKCS#11 token (a second SoftHSM2
# token beside the root; doc/quorum.md, "Custodians with a token"): cvault enrols alice
# from her token and bob from his passphrase, another token does not approve for her,
# and her token with bob's passphrase unlocks the master keys.
source "$(dirname "$0")/lib.sh"
CLIENT=custodian-token
need_tool tools softhsm2-util pkcs11-tool || exit 0
fresh_workspace
hsm_root_workspace "$(printf '[quorum]\nunlock_hours = 1')"
SOFTHSM=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for t in alice-token other-token; do
    softhsm2-util --init-token --free --label "$t" --so-pin alice-so-1357 --pin alice-pin-2468 >/dev/null
done
export CV_CUSTODIAN_BOB="bob passphrase 22" CV_CUSTODIAN_TOKEN_PIN_ALICE=alice-pin-2468
token() { printf -- '--custodian-token\nalice=%s\n--custodian-module\n%s\n' "$1" "$SOFTHSM"; }
mapfile -t ALICE < <(token alice-token)
mapfile -t OTHER < <(token other-token)
check token-init "$CVAULT" token init --workspace conformance --label conformance
check custodians-init-with-a-token "$CVAULT" custodians init --threshold 2 --custodian alice --custodian bob "${ALICE[@]}"
expect_output key-on-her-token 'collabvault-custodian/alice' pkcs11-tool --module "$SOFTHSM" --token-label alice-token \
    --login --pin alice-pin-2468 --list-objects
expect_output key-never-extractable 'never extractable' pkcs11-tool --module "$SOFTHSM" --token-label alice-token \
    --login --pin alice-pin-2468 --list-objects
expect_output other-token-refused 'holds no key' bash -c '! "$0" quorum approve --custodian alice "${@}" 2>&1' "$CVAULT" "${OTHER[@]}"
check her-token-approves "$CVAULT" quorum approve --custodian alice "${ALICE[@]}"
check bob-approves "$CVAULT" quorum approve --custodian bob
expect_output unlocked 'unlocked until' "$CVAULT" quorum status
