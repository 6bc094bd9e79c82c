#!/usr/bin/env bash
# Post-quantum audit checkpoints with a real SoftHSM2 root: with the default
# `checkpoint_signature = "both"`, each checkpoint carries ECDSA P-256 (made in the root
# token) and ML-DSA-65 (its seed sealed by a key in the root token, which cannot make
# ML-DSA keys); dilithium-py and pyca/cryptography verify them from what `cvault audit key`
# exports (audit_pq.py), and `cvault audit verify` counts both.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=audit-pq
need_tool tools python3 softhsm2-util || exit 0
fresh_workspace
hsm_root_workspace
check token-init "$CVAULT" token init --workspace conformance --label conformance
expect_output module-log-says-why 'cannot make ML-DSA keys' cat "$WORK/module.log"
expect_output verify-counts-both '^intact: .*\(([1-9][0-9]*) ECDSA P-256, \1 ML-DSA-65\) verified' "$CVAULT" audit verify
expect_output key-exports-both '^2$' bash -c '"$0" audit key | grep -c "BEGIN PUBLIC KEY"' "$CVAULT"
pq() { python3 "$HERE/audit_pq.py" "$CVAULT" "$WORK/store/collabvault.sqlite3" "$1"; }
check mldsa-checkpoints-dilithium-py-verifies pq mldsa
check ecdsa-checkpoints-cryptography-verifies pq ecdsa
