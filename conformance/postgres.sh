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
