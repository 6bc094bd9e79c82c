#!/usr/bin/env bash
# The PostgreSQL store backend with real clients: a server from Debian's packages started
# in this workspace (initdb into a temporary directory, pg_ctl on a Unix socket there, no
# TCP; as `nobody` in a user namespace of its own when we are root, since initdb refuses
# root), the module configured with `store = "host=... dbname=..."`, then pkcs11-tool and
# python-pkcs11 drive the token, psql sees their rows in the database, a second client
# process sees the first one's key, and `cvault audit verify` verifies the chain there.
source "$(dirname "$0")/lib.sh"
CLIENT=postgres
need_tool tools pkcs11-tool python3 unshare || exit 0
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "$CLIENT / server / FAIL (no /usr/lib/postgresql/*/bin/initdb: run scripts/install-deps.sh)" | tee -a "$CV_RESULTS"
    exit 0
fi
fresh_workspace
as_server=()
[ "$(id -u)" -eq 0 ] && as_server=(unshare --user --map-user=65534 --map-group=65534 --)
PGDIR=$WORK/pg
mkdir -p "$PGDIR"
stop_server() { "${as_server[@]}" "$PG_BIN/pg_ctl" stop -m immediate -D "$PGDIR/data" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap stop_server EXIT
check server bash -c "$(printf '%q ' "${as_server[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U cvault --auth=trust --no-sync -E UTF8) >/dev/null &&
    $(printf '%q ' "${as_server[@]}" "$PG_BIN/pg_ctl" start -w -D "$PGDIR/data" -l "$PGDIR/server.log" -o "-k $PGDIR -c listen_addresses=''") >/dev/null &&
    $(printf '%q ' "$PG_BIN/psql" -X -q -h "$PGDIR" -U cvault -d postgres -c 'CREATE DATABASE cv')"
psql_cv() { "$PG_BIN/psql" -X -A -t -q -h "$PGDIR" -U cvault -d cv -c "$1"; }
# The one config line that switches the backend; store_dir stays (unused by PostgreSQL).
sed -i "1a store = \"host=$PGDIR user=cvault dbname=cv\"" "$COLLABVAULT_CONF"

check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label pg --so-pin '$SO_PIN' &&
    pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
# The schema version this build writes (src/store/postgres/schema.rs, numbered as SQLite's).
expect_output schema-in-database '^12$' psql_cv 'SELECT version FROM schema_version'
check token-key pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" --keygen --key-type aes:32 --label pg-key --id 01
expect_output key-row-in-database '^1$' psql_cv "SELECT count(*) FROM objects WHERE label = 'pg-key'::bytea"
expect_output other-process-lists-it 'pg-key' pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" --list-objects --type secrkey
export MODULE USER_PIN
expect_output python-encrypts-with-it '^ok$' python3 - <<'PY'
import os, pkcs11
from pkcs11 import Mechanism, ObjectClass
lib = pkcs11.lib(os.environ["MODULE"])
token = lib.get_token(token_label="pg")
with token.open(user_pin=os.environ["USER_PIN"], rw=True) as s:
    key = s.get_key(object_class=ObjectClass.SECRET_KEY, label="pg-key")
    iv = bytes(16)
    sealed = key.encrypt(b"shared through postgresql", mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv)
    assert key.decrypt(sealed, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv) == b"shared through postgresql"
    new = s.generate_key(pkcs11.KeyType.AES, 256, label="py-key", store=True)
print("ok")
PY
expect_output both-keys-in-database '^2$' psql_cv "SELECT count(*) FROM objects WHERE class = 4"
expect_output chain-in-database '^t$' psql_cv "SELECT count(*) > 4 FROM audit_log"
CVAULT=$(dirname "$MODULE")/cvault
expect_output cvault-audit-verify 'intact|verified|OK' "$CVAULT" audit verify

# Two processes rotate the master key at once through the module, lined up on the
# server's write lock as tests/multihost.rs does: both log in and say so, psql takes the
# lock, both rotate (each reads v1 as the newest, seals a v2 and queues on the lock), the
# lock is let go once both wait. Both must succeed and be told v2, exactly one new
# version must exist, the chain must hold one entry that made v2 and one that joined it
# (doc/postgresql.md, "Two hosts rotating at once"), and it must verify.
WRITE_LOCK=$((0x435653544f524500)) # "CVSTORE", src/store/postgres.rs
racers=()
for i in 1 2; do
    python3 "$(dirname "$0")/rotation_race.py" "$MODULE" "$USER_PIN" "$PGDIR/ready$i" "$PGDIR/go" \
        >"$PGDIR/racer$i.out" 2>&1 &
    racers+=($!)
done
for _ in $(seq 1200); do [ -e "$PGDIR/ready1" ] && [ -e "$PGDIR/ready2" ] && break; sleep 0.1; done
# Run by psql while it holds the lock: the go, then until both rotations wait on it.
cat >"$PGDIR/line-up.sh" <<SH
touch "$PGDIR/go"
for _ in \$(seq 1200); do
    n=\$("$PG_BIN/psql" -X -A -t -q -h "$PGDIR" -U cvault -d cv \
        -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    [ "\$n" = 2 ] && { echo queued >"$PGDIR/queued"; exit 0; }
    sleep 0.1
done
SH
line_up() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDIR" -U cvault -d cv -c "SELECT pg_advisory_lock($WRITE_LOCK)" \
        -c "\\! sh $PGDIR/line-up.sh" -c "SELECT pg_advisory_unlock($WRITE_LOCK)" >/dev/null && test -e "$PGDIR/queued"
}
check rotation-race-lined-up line_up
racer_status=()
for pid in "${racers[@]}"; do
    if wait "$pid"; then racer_status+=(0); else racer_status+=($?); fi
done
# Both racers' answers on one line (a racer that failed shows what it said instead).
racer_results() {
    local i said=()
    for i in 0 1; do
        said+=("$(tr '\n' ' ' <"$PGDIR/racer$((i + 1)).out")")
        [ "${racer_status[$i]}" -eq 0 ] || said[i]+="(exit ${racer_status[$i]}) "
    done
    echo "results: ${said[0]}/ ${said[1]}"
}
expect_output rotation-race-both-succeed-with-v2 '^results: rotated to v2 / rotated to v2 $' racer_results
expect_output rotation-race-one-new-version '^1,2$' psql_cv \
    "SELECT string_agg(version::text, ',' ORDER BY version) FROM master_keys WHERE workspace = 'conformance'"
expect_output rotation-race-made-once-joined-once '^wmk v2\|wmk v2 \(made by a concurrent rotation; no new version\)$' psql_cv \
    "SELECT string_agg(object, '|' ORDER BY object) FROM audit_log WHERE action = 'CKM_CV_ROTATE_MASTER' AND outcome = 'CKR_OK'"
expect_output rotation-race-audit-verify 'intact|verified|OK' "$CVAULT" audit verify
