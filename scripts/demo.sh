#!/usr/bin/env bash
# The main job (README): the CollabVault key hierarchy end to end on a fresh machine.
#
#   1. installs packages and builds the module, the `cvault` admin tool and the
#      `documents` example (a tiny document store written as an application would);
#   2. makes a SoftHSM2 token the root of trust (private SOFTHSM2_CONF and token directory
#      in a temp dir) and writes a module config whose [root] section names it;
#   3. `cvault token init`, then ingests documents: a DEK per document, AES-256-GCM, the DEK
#      kept only as a wrap record under master key v1, all in an "event store" directory;
#   4. rotates to v2, ingests one more document, reads every document back (old records
#      through v1), re-wraps every record to v2, retires v1, reads everything again;
#   5. shows what the root slot and the store hold: a sensitive, never-extractable root
#      key in SoftHSM2, no plaintext in the store;
#   6. verifies the audit log (hash chain and checkpoints signed in SoftHSM2), prints its
#      report and a few export lines, and shows verify naming an edited entry in a copy;
#   7. shows the security model at work: owner-only store files, a destroyed master key
#      version's own key gone from SoftHSM2, and an edited master key row refused;
#   8. signs with ML-DSA-65 on the token and verifies with dilithium-py, and the reverse;
#      agrees an X-Wing (hybrid ML-KEM-768 + X25519) secret with an independent client;
#   9. backs the store up online and verifies the copy (restored in a scratch directory);
#      then adds a second workspace and shares documents' DEKs with it as share records,
#      sealed to its X-Wing and MLKEM768-P256 inbox keys;
#  10. splits engineering's key-encryption key 2-of-3 among custodians: the master keys stay
#      locked until two approve, a destroy is refused until the quorum approves its own
#      request, a customer's own key (wrapped by openssl) is imported with the quorum's
#      approval, a legal hold stops a retirement until the quorum lifts it, an emergency
#      window requested ahead opens for one person once approved, a cancelled request's
#      approvals open nothing, and a lock stops every process at once;
#  11. exports a recovery kit (a passphrase plus a key on a second SoftHSM2 token) once
#      the custodians approve it, checks it without secrets, drills it against the live
#      keys, and shows a wrong passphrase refused;
#  12. deletes the root token for good and restores engineering from its kit onto a new
#      SoftHSM2 token (`cvault recover`): every document reads back with the new PINs.
#
# Every step says what happened in plain words; any failure stops the demo with a
# non-zero exit. Everything lives in a temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

say() { printf '\n== %s\n' "$*"; }
run() { echo "\$ $*"; "$@"; }

say "building the module, cvault and the documents example (release)"
cargo build --release --quiet
cargo build --release --quiet --examples
BIN=$(bash scripts/release-dir.sh) # where cargo built (CARGO_TARGET_DIR and the like)
export COLLABVAULT_MODULE=$BIN/libcollabvault_pkcs11.so
cvault() { echo "\$ cvault $*"; "$BIN/cvault" "$@"; }
documents() { echo "\$ documents $*"; "$BIN/examples/documents" "$@"; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SOFTHSM_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

say "the root of trust: a SoftHSM2 token of our own (SOFTHSM2_CONF=$WORK/softhsm2.conf)"
mkdir -p "$WORK/softhsm-tokens"
export SOFTHSM2_CONF=$WORK/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$WORK/softhsm-tokens" >"$SOFTHSM2_CONF"
export CV_ROOT_PIN=root-user-pin-2468
run softhsm2-util --init-token --free --label cv-root --so-pin root-so-pin-1357 --pin "$CV_ROOT_PIN" >/dev/null
echo "SoftHSM2 token 'cv-root' is ready; its user PIN reaches the module only through \$CV_ROOT_PIN"

say "the module's config: [root] names that token; one workspace, classification restricted"
export COLLABVAULT_CONF=$WORK/collabvault.toml
cat >"$COLLABVAULT_CONF" <<TOML
store_dir = "$WORK/store"
log_level = "info"
log_file = "$WORK/module.log"

[root]                                   # the root key lives in this slot, never leaves it
module = "$SOFTHSM_MODULE"
token_label = "cv-root"
pin_env = "CV_ROOT_PIN"                  # the PIN comes from the environment, never the config

[rotation]                               # maximum master key age, days, by classification
restricted = 30
internal = 365

[[workspace]]
name = "engineering"
label = "Engineering"
classification = "restricted"
TOML
cat "$COLLABVAULT_CONF"

say "cvault token init: initialize the workspace's token and set its user PIN"
export CV_SO_PIN=eng-so-pin-1234 CV_USER_PIN=eng-user-pin-1234
cvault token init --workspace engineering --label Engineering
cvault token status
echo "-> the token reports 'hsm root': its master key v1 is sealed by the root key in SoftHSM2"

STORE=$WORK/event-store
DOCS=$WORK/docs
mkdir -p "$DOCS"
echo "Q3 revenue grew 12 percent; margins held at 41 percent." >"$DOCS/q3-report.txt"
echo "Contract 7731: Acme Corp renews for three years at list price." >"$DOCS/acme-contract.txt"
echo "Roadmap: ship the hierarchy in March, custodians in April." >"$DOCS/roadmap.md"
echo "Salary bands 2027: L5 from 182000, L6 from 215000." >"$DOCS/salary-bands.csv"

say "ingest four documents: a fresh DEK each, AES-256-GCM, the DEK kept only as a wrap record"
documents ingest "$STORE" "$DOCS/q3-report.txt" "$DOCS/acme-contract.txt" "$DOCS/roadmap.md"
echo "-> each DEK was made by the token, used, wrapped under master key v1, and destroyed;"
echo "   the event store holds only ciphertext and wrap records:"
(cd "$STORE" && ls -1)

say "rotate the master key: v2 becomes active, v1 decrypt-only"
cvault master rotate --due
echo "-> not due yet: restricted keys rotate every 30 days; an operator can rotate at any time:"
cvault master rotate
documents ingest "$STORE" "$DOCS/salary-bands.csv"
echo "-> the new document's DEK went under v2, the newest version"
cvault master list

say "read every document back: the v1 records open through v1, the new one through v2"
documents read "$STORE"
# Keep a copy of one v1 record (and its document) to show what retiring v1 means later.
mkdir -p "$WORK/stale-copy"
cp "$STORE/q3-report.txt.wrap" "$STORE/q3-report.txt.doc" "$WORK/stale-copy/"

say "retiring: what the module can and cannot refuse"
echo "The module refuses to retire the active version (v2) or a version its own store still"
echo "needs. The records here are held by the application, unknown to the module: it is the"
echo "application's job to re-wrap them before v1 goes. First, the refusal:"
if cvault master retire --version 2; then
    echo "FAIL: retiring the active version was allowed" >&2
    exit 1
fi
echo "-> refused, exit code 1"

say "re-wrap every record to v2 (CKM_CV_REWRAP_RECORD: the DEK never leaves the module)"
cvault master rewrap --records "$STORE"
echo "-> each file was replaced atomically (temp file, fsync, rename); running it again is a no-op:"
cvault master rewrap --records "$STORE"

say "retire v1: no record needs it any more"
cvault master retire --version 1
documents read "$STORE"
echo "-> every document still reads: all records are at v2"
echo "a stale copy of a v1 record no longer opens (v1 is retired):"
if documents read "$WORK/stale-copy"; then
    echo "FAIL: a record under a retired version still opened" >&2
    exit 1
fi
echo "-> refused, as it must be"

say "cvault token status"
cvault token status

say "the root key in SoftHSM2: sensitive, never extractable"
run pkcs11-tool --module "$SOFTHSM_MODULE" --token-label cv-root --login --pin "$CV_ROOT_PIN" \
    --list-objects --type secrkey 2>/dev/null | tee "$WORK/root-objects.txt"
grep -q "never extractable" "$WORK/root-objects.txt" || { echo "FAIL: root key is extractable" >&2; exit 1; }
echo "-> the module asks SoftHSM2 to seal and unseal with it; its bytes never leave the slot"

say "what the module's store holds"
DB=$WORK/store/collabvault.sqlite3
sqlite3 "$DB" "SELECT 'master key versions: ' || count(*) FROM master_keys;" 2>/dev/null || true
echo "audit log (hash-chained; every state change, login, wrap, unwrap, rotation):"
sqlite3 -column -header "$DB" \
    "SELECT seq, actor, action, substr(coalesce(object, ''), 1, 44) AS object, outcome, substr(hex(hash), 1, 16) AS hash FROM audit_log ORDER BY seq;"
for needle in "Acme Corp renews" "Salary bands 2027"; do
    if grep -rqF "$needle" "$WORK/store" "$STORE"; then
        echo "FAIL: plaintext \"$needle\" found in the store" >&2
        exit 1
    fi
    echo "\"$needle\": not in the module's store files, not in the event store (only ciphertext)"
done

say "the audit log: verify the chain and the checkpoints signed in the root token"
cvault audit verify
echo "-> every entry is unchanged and in place, and the chain reaches the checkpoint SoftHSM2 remembers"
cvault audit report
echo "a SIEM reads JSON lines (the first three):"
"$BIN/cvault" audit export | head -n 3

say "tamper with a copy of the store: verify names the entry"
mkdir -p "$WORK/tampered/store"
sqlite3 "$DB" ".backup '$WORK/tampered/store/collabvault.sqlite3'"
sed "s#$WORK/store#$WORK/tampered/store#" "$COLLABVAULT_CONF" >"$WORK/tampered/collabvault.toml"
victim=$(sqlite3 "$WORK/tampered/store/collabvault.sqlite3" "SELECT min(seq) FROM audit_log WHERE action = 'C_UnwrapKey';")
run sqlite3 "$WORK/tampered/store/collabvault.sqlite3" "UPDATE audit_log SET actor = 'nobody' WHERE seq = $victim;"
if COLLABVAULT_CONF=$WORK/tampered/collabvault.toml "$BIN/cvault" audit verify; then
    echo "FAIL: an edited entry went unnoticed" >&2
    exit 1
fi
echo "-> refused with exit code 1, naming entry $victim"

say "the security model, shown: owner-only files, a destroyed version shredded, an edited row refused"
run stat -c '%a %n' "$WORK/store" "$WORK/store/collabvault.sqlite3"
echo "-> the store directory is 0700 and its files 0600: another local user reads nothing"
sqlite3 "$DB" ".backup '$WORK/before-destroy.sqlite3'"
hsm_keys() {
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label cv-root --login --pin "$CV_ROOT_PIN" \
        --list-objects --type secrkey 2>/dev/null | sed -n 's/^ *label: *//p' | sort
}
echo "the keys in SoftHSM2 before destroying v1 (the root key, one key per master key version, the PIN MAC key):"
hsm_keys | tee "$WORK/hsm-before.txt"
cvault master destroy --version 1
echo "after:"
hsm_keys | tee "$WORK/hsm-after.txt"
if grep -q 'collabvault-wmk/engineering/v1' "$WORK/hsm-after.txt"; then
    echo "FAIL: v1's key is still in SoftHSM2" >&2
    exit 1
fi
echo "-> v1's own key is gone from SoftHSM2, so the copy of the store taken a moment ago"
echo "   ($WORK/before-destroy.sqlite3) holds v1 sealed under a key that no longer exists;"
echo "   the live file keeps no copy either (secure_delete, WAL truncated)"
mkdir -p "$WORK/edited/store"
sqlite3 "$DB" ".backup '$WORK/edited/store/collabvault.sqlite3'"
sed "s#$WORK/store#$WORK/edited/store#" "$COLLABVAULT_CONF" >"$WORK/edited/collabvault.toml"
run sqlite3 "$WORK/edited/store/collabvault.sqlite3" "UPDATE master_keys SET state = 1 WHERE version = 1;"
echo "someone with write access to a copy of the store marks destroyed v1 active again:"
if COLLABVAULT_CONF=$WORK/edited/collabvault.toml "$BIN/cvault" master list; then
    echo "FAIL: an edited master key row was accepted" >&2
    exit 1
fi
echo "-> refused: every master key row carries a MAC the store's editor cannot compute"

say "post-quantum signatures: ML-DSA-65 (FIPS 204) on the workspace token"
echo "A ctypes client makes an ML-DSA-65 key pair on the token and signs with a context;"
echo "dilithium-py, an independent FIPS 204 implementation, verifies it. Then the reverse."
run python3 conformance/mldsa.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" token-signs
run python3 conformance/mldsa.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" token-verifies

say "post-quantum key exchange: X-Wing (ML-KEM-768 + X25519) on the workspace token"
echo "The token makes an X-Wing key pair; Python, with the draft's combiner over kyber-py's"
echo "ML-KEM-768 and X25519, encapsulates to it and the token decapsulates to the same secret."
run python3 conformance/xwing.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" python-encapsulates

say "backups: an online copy of the store, verified by opening it"
echo "The store is copied as one snapshot while the token stays in use; the copy holds sealed"
echo "rows and the audit chain, never the root key, which stays in SoftHSM2."
cvault backup create "$WORK/backups/nightly"
sed -n '1,12p' "$WORK/backups/nightly/manifest.json"
cvault backup verify "$WORK/backups/nightly"
echo "-> checksums, the copy restored into a scratch directory, its audit chain and"
echo "   checkpoints verified, its stored DEKs opened with the root slot and the user PIN"
cvault token status | grep -A2 '^backups'

say "sharing a document with another workspace: its DEK sealed to legal's X-Wing inbox key"
cat >>"$COLLABVAULT_CONF" <<TOML

[[workspace]]
name = "legal"
label = "Legal"
classification = "restricted"
TOML
echo "a second workspace, legal, joins the config; its token gets its own master key v1:"
CV_SO_PIN=legal-so-pin-1234 CV_USER_PIN=legal-user-pin-1234 cvault token init --workspace legal --label Legal
CV_WORKSPACE=legal CV_USER_PIN=legal-user-pin-1234 documents inbox "$WORK/legal-inbox.pub"
CV_WORKSPACE=engineering documents share "$STORE" acme-contract.txt "$WORK/legal-inbox.pub" "$WORK/to-legal"
CV_WORKSPACE=legal CV_USER_PIN=legal-user-pin-1234 documents read-shared "$WORK/to-legal"
echo "-> legal read the contract with its own token: the DEK crossed as a share record"
echo "   (CKM_CV_SHARE_RECORD, X-Wing + AES-256-GCM), no master key left either token"
if CV_WORKSPACE=engineering documents read-shared "$WORK/to-legal" 2>/dev/null; then
    echo "FAIL: a workspace without legal's inbox key opened the share record" >&2
    exit 1
fi
echo "-> engineering itself cannot open what it sent: only legal's private key does"
echo "legal adds a second inbox, MLKEM768-P256 (the CFRG hybrid KEM draft), and receives the roadmap:"
CV_WORKSPACE=legal CV_USER_PIN=legal-user-pin-1234 documents inbox "$WORK/legal-inbox-p256.pub" mlkem768-p256
CV_WORKSPACE=engineering documents share "$STORE" roadmap.md "$WORK/legal-inbox-p256.pub" "$WORK/to-legal"
CV_WORKSPACE=legal CV_USER_PIN=legal-user-pin-1234 documents read-shared "$WORK/to-legal"
echo "-> both share records open on legal's token, each with the inbox key it was sealed to"

say "a quorum of custodians: engineering's master keys unlock only when 2 of 3 approve"
export CV_CUSTODIAN_ALICE="alice's long passphrase" CV_CUSTODIAN_BOB="bob's long passphrase"
export CV_CUSTODIAN_CAROL="carol's long passphrase"
echo "Each custodian's passphrase becomes an X-Wing public key (Argon2id); the module gets only"
echo "that, makes a new key-encryption key (KEK), re-seals every master key version under it,"
echo "and keeps the KEK only as Shamir shares (blahaj), each sealed to one custodian and the HSM:"
cvault custodians init --workspace engineering --threshold 2 --custodian alice --custodian bob --custodian carol
cvault quorum status --workspace engineering
if CV_WORKSPACE=engineering documents read "$STORE" >/dev/null 2>&1; then
    echo "FAIL: documents opened while the master keys are locked" >&2
    exit 1
fi
echo "-> reading a document is refused: CKR_CV_LOCKED until a quorum unlocks"
cvault unlock --workspace engineering --custodian alice
cvault unlock --workspace engineering --custodian alice
if CV_WORKSPACE=engineering documents read "$STORE" >/dev/null 2>&1; then
    echo "FAIL: one custodian (approving twice) unlocked alone" >&2
    exit 1
fi
echo "-> alice twice still counts once: locked"
cvault unlock --workspace engineering --custodian bob
CV_WORKSPACE=engineering documents read "$STORE" >"$WORK/unlocked-read.txt"
head -2 "$WORK/unlocked-read.txt"
echo "-> two custodians approved: an unlock grant (the KEK sealed by the HSM until its expiry)"
echo "   serves every process on the store; documents read again"
cvault quorum status --workspace engineering

say "destroying a master key version needs its own quorum"
cvault master rotate --workspace engineering
cvault master rewrap --workspace engineering --records "$STORE" >/dev/null
old=$("$BIN/cvault" master list --workspace engineering --json |
    python3 -c 'import json,sys; ws=json.load(sys.stdin)["workspaces"][0]; print([v["version"] for v in ws["versions"] if v["state"]=="decrypt-only"][0])')
cvault master retire --workspace engineering --version "$old"
if "$BIN/cvault" master destroy --workspace engineering --version "$old"; then
    echo "FAIL: a version was destroyed without the quorum" >&2
    exit 1
fi
echo "-> refused with CKR_CV_QUORUM_REQUIRED; the refusal opened a request the custodians see:"
cvault quorum status --workspace engineering
request=$("$BIN/cvault" quorum status --workspace engineering --json |
    python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)[0]["open_requests"] if r["action"].startswith("destroy")][0])')
cvault quorum approve --workspace engineering --request "$request" --custodian alice --custodian carol
cvault master destroy --workspace engineering --version "$old"
echo "-> approved by two custodians, used once: v$old is destroyed"

say "bring your own key: a customer's key, wrapped by openssl, becomes the active master key"
echo "The token makes an RSA-3072 import key (usable only for CKM_CV_IMPORT_MASTER, never"
echo "extractable); the customer wraps a key of their own to its public half with openssl:"
run python3 conformance/byok.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" keygen rsa "$WORK/import.pem"
run openssl rand -out "$WORK/customer.key" 32
run openssl pkeyutl -encrypt -pubin -inkey "$WORK/import.pem" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/customer.key" -out "$WORK/customer.wrapped"
run python3 conformance/byok.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" refuse rsa "$WORK/customer.wrapped" c3560002
echo "-> the import needs the quorum too (CKR_CV_QUORUM_REQUIRED opened the import-key request)"
request=$("$BIN/cvault" quorum status --workspace engineering --json |
    python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)[0]["open_requests"] if r["action"]=="import-key"][0])')
cvault quorum approve --workspace engineering --request "$request" --custodian bob --custodian carol
run python3 conformance/byok.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" import rsa "$WORK/customer.wrapped"
run python3 conformance/byok.py "$COLLABVAULT_MODULE" "$CV_USER_PIN" opens "$WORK/customer.key"
echo "-> a wrap record made under the imported version opens with the customer's own key:"
echo "   the module holds exactly the key the customer made, and its origin is recorded"

say "a legal hold: nothing is retired, destroyed or deleted until the quorum lifts it"
cvault hold set --workspace engineering --reason "case 7731"
cvault master rotate --workspace engineering
held=$("$BIN/cvault" master list --workspace engineering --json |
    python3 -c 'import json,sys; ws=json.load(sys.stdin)["workspaces"][0]; print([v["version"] for v in ws["versions"] if v["state"]=="decrypt-only"][0])')
echo "\$ cvault master retire --workspace engineering --version $held"
if out=$("$BIN/cvault" master retire --workspace engineering --version "$held" 2>&1) ||
    ! grep -q CKR_CV_LEGAL_HOLD <<<"$out"; then
    echo "FAIL: a version was retired under a legal hold: $out" >&2
    exit 1
fi
echo "$out"
echo "-> refused with CKR_CV_LEGAL_HOLD; the SO alone cannot lift it either:"
if "$BIN/cvault" hold lift --workspace engineering; then
    echo "FAIL: the hold was lifted without the quorum" >&2
    exit 1
fi
request=$("$BIN/cvault" quorum status --workspace engineering --json |
    python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)[0]["open_requests"] if r["action"]=="lift-hold"][0])')
cvault quorum approve --workspace engineering --request "$request" --custodian alice --custodian bob
cvault hold lift --workspace engineering
echo "-> lifted once two custodians approved; the hold and its lift are in the audit log"

say "emergency access: a time-limited, quorum-approved window for one named person"
echo "A request can be opened ahead, before anyone tries the operation (cvault quorum request):"
echo "\$ cvault quorum request --workspace engineering --action emergency-access --user dana --json"
request=$("$BIN/cvault" quorum request --workspace engineering --action emergency-access --user dana --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps(r), file=sys.stderr); print(r["request"])')
cvault quorum approve --workspace engineering --request "$request" --custodian bob --custodian carol
cvault emergency open --workspace engineering --name dana
echo "-> approved ahead, so it opened at the first try: for [quorum] emergency_minutes, dana may"
echo "   unwrap under versions an audit alert blocked, each use its own audit entry; closing it early:"
cvault emergency close --workspace engineering
echo "A request the requester thinks better of is cancelled; its approvals then count for nothing:"
echo "\$ cvault quorum request --workspace engineering --action emergency-access --user erin --json"
request=$("$BIN/cvault" quorum request --workspace engineering --action emergency-access --user erin --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["request"])')
cvault quorum approve --workspace engineering --request "$request" --custodian alice --custodian bob
cvault quorum cancel --workspace engineering "$request"
if "$BIN/cvault" emergency open --workspace engineering --name erin; then
    echo "FAIL: an emergency window opened on a cancelled request's approvals" >&2
    exit 1
fi
echo "-> refused with CKR_CV_QUORUM_REQUIRED: the cancelled request's two approvals opened nothing,"
echo "   and the refusal opened a fresh request; both steps are in the audit log:"
"$BIN/cvault" audit export --workspace engineering | grep -E '"quorum-(request|cancel)"' | tail -3

say "a recovery kit: the master keys sealed under a passphrase and a key on a second token"
run softhsm2-util --init-token --free --label kit-factor --so-pin kit-so-1357 --pin kit-pin-2468 >/dev/null
export CV_FACTOR_MODULE=$SOFTHSM_MODULE CV_FACTOR_TOKEN=kit-factor CV_FACTOR_PIN=kit-pin-2468
export CV_KIT_PASSPHRASE="the recovery officer's long passphrase"
cvault kit factor init
KIT=$WORK/engineering.cvkit
if "$BIN/cvault" kit export --workspace engineering --out "$KIT" >/dev/null 2>&1; then
    echo "FAIL: a kit was exported without the quorum" >&2
    exit 1
fi
request=$("$BIN/cvault" quorum status --workspace engineering --json |
    python3 -c 'import json,sys; print([r["id"] for r in json.load(sys.stdin)[0]["open_requests"] if r["action"]=="export-kit"][0])')
echo "-> refused with CKR_CV_QUORUM_REQUIRED; request #$request (export-kit) waits for the custodians"
cvault quorum approve --workspace engineering --request "$request" --custodian alice --custodian carol
cvault kit export --workspace engineering --out "$KIT" --holder alice
cvault kit check "$KIT"
echo "-> checked with no secret; a drill opens it in memory and compares it with the live keys:"
cvault kit drill --workspace engineering --file "$KIT"
if CV_KIT_PASSPHRASE="a guessed passphrase" "$BIN/cvault" kit drill --workspace engineering --file "$KIT" 2>"$WORK/guess.txt"; then
    echo "FAIL: a kit opened with a wrong passphrase" >&2
    exit 1
fi
sed 's/^/   /' "$WORK/guess.txt"

say "lock: every process loses the master keys at once"
cvault lock --workspace engineering
if CV_WORKSPACE=engineering documents read "$STORE" >/dev/null 2>&1; then
    echo "FAIL: documents opened after the lock" >&2
    exit 1
fi
echo "-> locked again; the audit log holds every request, approval, unlock, use and lock:"
"$BIN/cvault" audit export | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["action"].startswith("quorum-"):
        print("  ", e["action"], "-", e.get("object") or "")' | tail -8
cvault audit verify

say "disaster: the root token is lost for good; engineering comes back from its kit on a new one"
run softhsm2-util --delete-token --token cv-root >/dev/null
run softhsm2-util --init-token --free --label cv-root-2 --so-pin root-so-pin-9753 --pin "$CV_ROOT_PIN" >/dev/null
sed -i 's/token_label = "cv-root"/token_label = "cv-root-2"/' "$COLLABVAULT_CONF"
if CV_WORKSPACE=engineering documents read "$STORE" >/dev/null 2>&1; then
    echo "FAIL: documents opened with the root token gone" >&2
    exit 1
fi
echo "-> nothing opens: the storage key, the KEK and every master key row were sealed by the lost token"
export CV_SO_PIN=eng-so-pin-recovered CV_USER_PIN=eng-user-pin-recovered
cvault recover --workspace engineering --kit "$KIT"
CV_WORKSPACE=engineering documents read "$STORE"
# The audit chain spans the replacement: the lost root's checkpoints verify under the keys
# the ROOT REPLACED entry names, which the new root's checkpoint vouches for.
cvault audit verify
echo "-> every document reads back with the new user PIN; the old PINs and every earlier login are void;"
echo "   the custodians enroll again (cvault custodians init) and a new kit is exported"

say "demo complete"
