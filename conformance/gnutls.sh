#!/usr/bin/env bash
# GnuTLS (gnutls-bin): p11tool initializes the token and its user PIN, lists tokens and
# mechanisms, generates an ECDSA P-256 key, lists objects, exports the public key (which
# OpenSSL parses), signs and verifies with --test-sign, renames and deletes objects;
# certtool makes a self-signed certificate with the token's key that p11tool stores on
# the token and exports again. PINs come from GNUTLS_PIN / GNUTLS_SO_PIN; the module is
# given with --provider and objects are PKCS#11 URIs.
source "$(dirname "$0")/lib.sh"
CLIENT=gnutls
need_tool tools p11tool certtool openssl || exit 0
fresh_workspace
export GNUTLS_PIN=$USER_PIN GNUTLS_SO_PIN=$SO_PIN
LABEL=gnutls
TOKEN="pkcs11:token=$LABEL"
p11() { p11tool --provider "$MODULE" "$@"; }

expect_output list-tokens-uninitialized "Label: conformance" p11 --list-tokens
check initialize-token p11 --initialize --label "$LABEL" "pkcs11:token=conformance"
check initialize-user-pin p11 --initialize-pin "$TOKEN"
expect_output list-tokens "Label: $LABEL\$" p11 --list-tokens
expect_output list-tokens-flags "Flags: RNG, Requires login" p11 --list-tokens
expect_output list-token-urls "^pkcs11:model=soft%20root;manufacturer=CollabVault;serial=[0-9a-f]+;token=$LABEL\$" p11 --list-token-urls
expect_output list-mechanisms "CKM_ECDSA_KEY_PAIR_GEN" p11 --list-mechanisms "$TOKEN"

check generate-ecdsa-p256 p11 --login --generate-privkey=ECDSA --curve=secp256r1 --label gt-ec --outfile "$WORK/gen-pub.pem" "$TOKEN"
expect_output list-all-public "type=public" p11 --list-all "$TOKEN"
expect_output list-all-private "Type: Private key \(EC/ECDSA-SECP256R1\)" p11 --login --list-all "$TOKEN"
expect_output list-privkeys "object=gt-ec;type=private" p11 --login --list-privkeys "$TOKEN"
check export-pubkey p11 --login --export-pubkey "$TOKEN;object=gt-ec;type=private" --outfile "$WORK/pub.pem"
expect_output exported-pubkey-parses "(NIST CURVE: P-256|prime256v1)" openssl pkey -pubin -in "$WORK/pub.pem" -noout -text
check export-public-object p11 --export "$TOKEN;object=gt-ec;type=public" --outfile "$WORK/pub-obj.pem"
check exports-agree bash -c "cmp <(openssl pkey -pubin -in '$WORK/pub.pem' -outform DER) <(openssl pkey -pubin -in '$WORK/pub-obj.pem' -outform DER) && cmp <(openssl pkey -pubin -in '$WORK/pub.pem' -outform DER) <(openssl pkey -pubin -in '$WORK/gen-pub.pem' -outform DER)"
expect_output test-sign "Verifying against public key in the token\.\.\. ok" p11 --login --test-sign "$TOKEN;object=gt-ec;type=private"

# certtool signs a certificate with the token's key; p11tool stores it on the token.
printf 'cn = "CollabVault GnuTLS conformance"\ndns_name = "localhost"\nserial = 7\nexpiration_days = 30\nsigning_key\ntls_www_server\n' >"$WORK/cert.tmpl"
check certtool-self-signed-with-token-key certtool --provider "$MODULE" --generate-self-signed --load-privkey "$TOKEN;object=gt-ec;type=private" --load-pubkey "$TOKEN;object=gt-ec;type=public" --template "$WORK/cert.tmpl" --outfile "$WORK/cert.pem"
expect_output openssl-verifies-certificate "OK$" openssl verify -CAfile "$WORK/cert.pem" "$WORK/cert.pem"
check write-certificate p11 --login --write --load-certificate "$WORK/cert.pem" --label gt-cert "$TOKEN"
expect_output list-all-certs "Type: X.509 Certificate \(EC/ECDSA-SECP256R1\)" p11 --list-all-certs "$TOKEN"
check export-certificate bash -c "p11tool --provider '$MODULE' --export '$TOKEN;object=gt-cert;type=cert' --outfile '$WORK/back.pem' && cmp <(openssl x509 -in '$WORK/cert.pem' -outform DER) <(openssl x509 -in '$WORK/back.pem' -outform DER)"

# A TLS server whose key stays on the token: gnutls-serv signs each handshake through the
# module (TLS 1.3, ECDSA P-256); gnutls-cli verifies the chain and the echoed message.
tls_echo() {
    local port=$((20000 + RANDOM % 20000)) server out i
    gnutls-serv --provider "$MODULE" --port "$port" --echo --x509certfile "$WORK/cert.pem" \
        --x509keyfile "$TOKEN;object=gt-ec;type=private" >"$WORK/serv.log" 2>&1 &
    server=$!
    for i in $(seq 50); do
        grep -q "listening on IPv4" "$WORK/serv.log" && break
        sleep 0.1
    done
    out=$(echo "hello through the token" | timeout 20 gnutls-cli --x509cafile "$WORK/cert.pem" --verify-hostname localhost --port "$port" 127.0.0.1 2>&1)
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    printf '%s\n' "$out"
    grep -q "Handshake was completed" <<<"$out" && grep -q "^hello through the token" <<<"$out"
}
need_tool tls-tools gnutls-serv gnutls-cli && check tls-handshake-with-token-key tls_echo

# C_SetAttributeValue and C_DestroyObject.
check set-label p11 --login --set-label gt-ec-renamed "$TOKEN;object=gt-ec;type=private"
expect_output renamed "object=gt-ec-renamed;type=private" p11 --login --list-privkeys "$TOKEN"
expect_output delete-certificate "1 objects deleted" p11 --login --batch --delete "$TOKEN;object=gt-cert;type=cert"
check certificate-gone bash -c "! p11tool --provider '$MODULE' --list-all-certs '$TOKEN' | grep -q gt-cert"
