#!/usr/bin/env bash
# Backups with a real SoftHSM2 root: OpenSC's pkcs11-tool makes a stored DEK and a data
# object, cvault backs the store up online and verifies the copy (its DEKs opened in a
# scratch directory), a tampered copy is refused by name, the objects are deleted, the
# backup is restored, and pkcs11-tool reads them back; the restored audit chain verifies.
source "$(dirname "$0")/lib.sh"
CLIENT=backup
need_tool tools pkcs11-tool softhsm2-util || exit 0
fresh_workspace
hsm_root_workspace
lp11() { pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" "$@"; }
check token-init "$CVAULT" token init --workspace conformance --label conformance
expect_output keygen-stored-dek "Secret Key Object; AES length 32" lp11 --keygen --key-type AES:32 --id d1 --label dek1
echo "kept across a restore" >"$WORK/doc.txt"
check write-data-object lp11 --write-object "$WORK/doc.txt" --type data --label doc1
B=$WORK/backups/b1
expect_output backup-create 'backup of 1 workspace\(s\), 2 object\(s\)' "$CVAULT" backup create "$B"
expect_output manifest-names-the-copy '"name": "collabvault.sqlite3"' cat "$B/manifest.json"
expect_output backup-verify 'sample stored DEK\(s\) open \(v1 1/1\)' "$CVAULT" backup verify "$B"
expect_output status-shows-last-verify 'last verify: ok' "$CVAULT" token status
# A flipped byte in a copy of the backup is refused, naming the file.
cp -r "$B" "$WORK/backups/tampered"
printf '\x5a' | dd of="$WORK/backups/tampered/collabvault.sqlite3" bs=1 seek=3000 conv=notrunc 2>/dev/null
expect_output tampered-copy-refused 'collabvault.sqlite3 does not match its SHA-256' \
    bash -c "! '$CVAULT' backup verify '$WORK/backups/tampered'"
check delete-dek lp11 --delete-object --type secrkey --label dek1
check delete-doc lp11 --delete-object --type data --label doc1
expect_output restore 'previous store is kept at' "$CVAULT" backup restore "$B"
expect_output dek-back "label: +dek1" lp11 --list-objects
check doc-back bash -c "pkcs11-tool --module '$MODULE' --login --pin '$USER_PIN' --read-object --type data --label doc1 -o '$WORK/back.txt' && cmp '$WORK/doc.txt' '$WORK/back.txt'"
expect_output old-store-set-aside 'before-restore-' ls "$WORK/store"
expect_output audit-verifies '^intact' "$CVAULT" audit verify
# A recovery kit in the backup directory is warned about.
printf 'CVKIT\001' >"$B/alice.cvkit"
expect_output status-warns-kit 'WARNING: recovery kit' "$CVAULT" token status
