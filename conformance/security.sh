#!/usr/bin/env bash
# The security model as real clients meet it: pkcs11-tool sees the 8-byte PIN minimum and
# a short PIN refused, the store is owner-only, and python-pkcs11 runs the policy cases
# in security_policy.py (trust, wrap-then-decrypt, HMAC key types, RSA key transport);
# a store locked by another process past store_busy_timeout_ms is CKR_DEVICE_ERROR, and
# the same call works once the lock goes (README, "Faults").
source "$(dirname "$0")/lib.sh"
CLIENT=security
need_tool tools pkcs11-tool python3 stat sqlite3 || exit 0
fresh_workspace
export MODULE USER_PIN CV_TOKEN_LABEL=security
p11() { pkcs11-tool --module "$MODULE" "$@"; }

check init-token p11 --init-token --label "$CV_TOKEN_LABEL" --so-pin "$SO_PIN"
refused_with() { # refused_with CKR_NAME CMD...: CMD must fail and name CKR_NAME
    local want=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "accepted: $out"
        return 1
    fi
    grep -q "$want" <<<"$out" || { echo "refused, but not with $want: $out"; return 1; }
}
check a-seven-byte-user-pin-is-pin-len-range refused_with CKR_PIN_LEN_RANGE \
    p11 --init-pin --so-pin "$SO_PIN" --pin 1234567
check init-pin p11 --init-pin --so-pin "$SO_PIN" --pin "$USER_PIN"
expect_output token-reports-pin-length-8-to-255 'pin min/max *: *8/255' p11 --list-token-slots
expect_output store-directory-is-owner-only '^700$' stat -c %a "$WORK/store"
expect_output store-files-are-owner-only '^600$' bash -c "stat -c %a '$WORK'/store/collabvault.sqlite3* | sort -u"

# The lock: the sqlite3 shell holds BEGIN EXCLUSIVE until told to roll back.
sed -i '1i store_busy_timeout_ms = 300' "$COLLABVAULT_CONF"
coproc LOCKER { sqlite3 "$WORK/store/collabvault.sqlite3"; }
printf 'BEGIN EXCLUSIVE;\n.print locked\n' >&"${LOCKER[1]}"
read -r locked <&"${LOCKER[0]}"
keygen() { p11 --login --pin "$USER_PIN" --keygen --key-type AES:32 --label "$1"; }
check a-store-locked-past-the-busy-timeout-is-device-error refused_with CKR_DEVICE_ERROR keygen while-locked
printf 'ROLLBACK;\n' >&"${LOCKER[1]}"
exec {LOCKER[1]}>&-
wait "$LOCKER_PID" || true
check the-same-call-works-once-the-lock-goes keygen after-the-lock
labelled() { sqlite3 "$WORK/store/collabvault.sqlite3" "SELECT count(*) FROM objects WHERE label = CAST('$1' AS BLOB)"; }
expect_output nothing-was-written-while-locked '^0$' labelled while-locked
expect_output the-key-made-after-is-stored '^1$' labelled after-the-lock
[ "$locked" = locked ] || echo "security / the-lock-was-taken / FAIL" | tee -a "$CV_RESULTS"

python3 "$(dirname "$0")/security_policy.py"
