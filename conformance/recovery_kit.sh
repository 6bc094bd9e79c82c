#!/usr/bin/env bash
# Recovery kits (doc/recovery.md) with a real SoftHSM2 root and a second SoftHSM2 token as
# the second factor: cvault makes the factor key there (pkcs11-tool confirms it sensitive
# and never extractable), exports a kit, checks it without secrets (and an independent
# Python reader recomputes every section's SHA-256 from the documented layout), drills
# it (check values and stored DEKs), acknowledges it, finds it stale after a rotation,
# and refuses a damaged copy and a wrong passphrase; the audit chain stays intact.
source "$(dirname "$0")/lib.sh"
CLIENT=recovery_kit
need_tool tools python3 softhsm2-util pkcs11-tool || exit 0
fresh_workspace
hsm_root_workspace "$(printf '[recovery]\ndrill_sample = 4')"
softhsm2-util --init-token --free --label kit-factor --so-pin factor-so-1 --pin factor-pin-2468 >/dev/null
export CV_FACTOR_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so} CV_FACTOR_TOKEN=kit-factor
export CV_FACTOR_PIN=factor-pin-2468 CV_KIT_PASSPHRASE="conformance kit passphrase"
KIT=$WORK/conformance.cvkit
check token-init "$CVAULT" token init --workspace conformance --label conformance
check factor-key "$CVAULT" kit factor init
expect_output factor-key-never-extractable 'never extractable' \
    pkcs11-tool --module "$CV_FACTOR_MODULE" --token-label kit-factor --login --pin "$CV_FACTOR_PIN" --list-objects --type secrkey
expect_output export 'recovery kit [0-9a-f]{32} written' \
    "$CVAULT" kit export --workspace conformance --out "$KIT" --holder alice --kdf-memory-kib 19456 --kdf-passes 2
expect_output check 'sections and checksums: ok' "$CVAULT" kit check "$KIT"
reader() {
    python3 - "$KIT" <<'PY'
import hashlib, json, struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"CVKIT\r\n\x1a" and struct.unpack(">H", data[8:10])[0] == 1
at, sections = 10, []
for want in (1, 2, 3):
    tag, length = data[at], struct.unpack(">I", data[at + 1:at + 5])[0]
    end = at + 5 + length
    assert tag == want and hashlib.sha256(data[at:end]).digest() == data[end:end + 32], f"section {want}"
    sections.append(data[at + 5:end])
    at = end + 32
assert at == len(data)
header = json.loads(sections[0])
assert header["workspace"] == "conformance" and header["versions"][0]["version"] == 1
assert len(sections[2]) == 32, "HMAC-SHA256"
print("independent reader: ok", header["kit_id"])
PY
}
expect_output independent-reader 'independent reader: ok' reader
expect_output drill 'drill passed' "$CVAULT" kit drill --file "$KIT"
expect_output status-shows-drill 'recovery kit drill: last .* passed' "$CVAULT" token status
expect_output ack 'alice holds kit' "$CVAULT" kit ack --file "$KIT" --holder alice
check rotate "$CVAULT" master rotate
expect_output inventory-stale 'STALE' "$CVAULT" kit inventory
# refused CMD...: succeeds when CMD fails (its output still shown to expect_output).
refused() { ! "$@"; }
expect_output drill-finds-stale-kit 'stale: the kit lacks master key v2' refused "$CVAULT" kit drill --file "$KIT"
python3 -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[40] ^= 1; open(sys.argv[2], 'wb').write(b)" \
    "$KIT" "$WORK/damaged.cvkit"
expect_output damaged-refused 'the header section is corrupted' refused "$CVAULT" kit check "$WORK/damaged.cvkit"
expect_output wrong-passphrase-refused 'passphrase or the second factor is wrong' \
    refused env CV_KIT_PASSPHRASE="not the passphrase" "$CVAULT" kit drill --file "$KIT"
expect_output audit-verifies '^intact' "$CVAULT" audit verify
