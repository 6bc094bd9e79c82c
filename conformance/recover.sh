#!/usr/bin/env bash
# The disaster demo (doc/recovery.md, "Restoration"): documents ingested, a recovery kit
# exported, a backup taken; the root token (SoftHSM2) is deleted for good; a new root
# token is made; `cvault recover` restores the surviving store from the kit with new PINs,
# every document reads back, a session logged in before the disaster is refused, and
# `cvault audit verify` passes across the root's replacement. Then the backup's store
# file is put back and recovered the same way.
source "$(dirname "$0")/lib.sh"
CLIENT=recover
need_tool tools python3 softhsm2-util sha256sum || exit 0
fresh_workspace
hsm_root_workspace
softhsm2-util --init-token --free --label kit-factor --so-pin factor-so-1 --pin factor-pin-2468 >/dev/null
export CV_FACTOR_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so} CV_FACTOR_TOKEN=kit-factor
export CV_FACTOR_PIN=factor-pin-2468 CV_KIT_PASSPHRASE="conformance kit passphrase"
KIT=$WORK/conformance.cvkit
CLIENT_PY=$(dirname "$0")/recover.py
NEW_SO=recovered-so-2468 NEW_USER=recovered-user-2468
check token-init "$CVAULT" token init --workspace conformance --label conformance
check factor-key "$CVAULT" kit factor init
expect_output ingest 'ingested 40 documents' python3 "$CLIENT_PY" "$MODULE" "$USER_PIN" ingest 40
expect_output export 'recovery kit [0-9a-f]{32} written' \
    "$CVAULT" kit export --workspace conformance --out "$KIT" --holder alice --kdf-memory-kib 19456 --kdf-passes 2
check backup "$CVAULT" backup create "$WORK/backup"
# An application logged in before the disaster, still running through it.
python3 "$CLIENT_PY" "$MODULE" "$USER_PIN" old-session "$WORK/ready" "$WORK/go" >"$WORK/old-session.out" 2>&1 &
OLD=$!
for _ in $(seq 300); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
# The disaster: the root token is gone; a new, empty one is named in [root].
softhsm2-util --delete-token --token cv-root >/dev/null
softhsm2-util --init-token --free --label cv-root-new --so-pin root-so-9753 --pin "$CV_ROOT_PIN" >/dev/null
sed -i 's/token_label = "cv-root"/token_label = "cv-root-new"/' "$COLLABVAULT_CONF"
# refused CMD...: succeeds when CMD fails (its output still shown to expect_output).
refused() { ! "$@"; }
expect_output nothing-opens-after-the-loss 'C_Login: CKR' refused python3 "$CLIENT_PY" "$MODULE" "$USER_PIN" readback 1
recover() { env CV_SO_PIN=$NEW_SO CV_USER_PIN=$NEW_USER "$CVAULT" recover --workspace conformance --kit "$KIT" --batch 8; }
expect_output recover 'restored from kit [0-9a-f]{32}; v2 active' recover
touch "$WORK/go"
old_session() { while kill -0 "$OLD" 2>/dev/null; do sleep 0.1; done; cat "$WORK/old-session.out"; }
expect_output recover-voids-old-session 'old session refused: CKR_USER_NOT_LOGGED_IN' old_session
expect_output recover-rerun-resumes 'already under the new root' recover
expect_output every-document-reads-back 'read back 40 documents' python3 "$CLIENT_PY" "$MODULE" "$NEW_USER" readback 40
# The audit chain verifies across the replacement: the lost root's checkpoints under the
# keys the succession entry names, vouched for by the new root's checkpoint.
expect_output audit-verify-spans-replacement '^intact: .*spans 1 root replacement\(s\)' "$CVAULT" audit verify
# The backup's store file, checked against its manifest, put back and recovered as well.
restore_backup() {
    (cd "$WORK/backup" && python3 -c "import json,sys; m=json.load(open('manifest.json')); \
        [print(f['sha256'] + '  ' + f['name']) for f in m['files']]" | sha256sum -c -) &&
        rm -rf "$WORK/store" && mkdir -m 700 "$WORK/store" && cp "$WORK/backup/collabvault.sqlite3" "$WORK/store/"
}
check restore-backup-file restore_backup
expect_output recover-backup 'restored from kit' recover
expect_output backup-documents-read-back 'read back 40 documents' python3 "$CLIENT_PY" "$MODULE" "$NEW_USER" readback 40
expect_output audit-records-recovery 'recover-hierarchy' "$CVAULT" audit export
expect_output backup-audit-verify-spans-replacement '^intact: .*spans 1 root replacement\(s\)' "$CVAULT" audit verify
