#!/usr/bin/env bash
# OpenSSL 3 through the pkcs11 engine (Debian libengine-pkcs11-openssl, libp11) with RFC 7512
# `pkcs11:` URIs: a self-signed certificate and `openssl dgst -sign` with a token EC key
# (verified with the exported public key), then a TLS handshake on loopback whose server
# key never leaves the token. The OpenSSL config is examples/config/openssl/openssl-pkcs11.cnf
# with the module path filled in, so the example is exercised here.
# (OpenSSL's provider route, pkcs11-provider, is not packaged in Debian 12.)
source "$(dirname "$0")/lib.sh"
CLIENT=openssl-engine
need_tool tools openssl pkcs11-tool python3 timeout || exit 0
ENGINE_SO=$(dpkg -L libengine-pkcs11-openssl 2>/dev/null | grep -m1 '/engines-3/pkcs11\.so$' || true)
check engine-installed test -n "$ENGINE_SO" -a -f "$ENGINE_SO"
[ -n "$ENGINE_SO" ] || exit 0
fresh_workspace
lp11() { pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" "$@"; }

TOKEN=engine
export OPENSSL_CONF=$WORK/openssl.cnf
sed -e "s|^dynamic_path = .*|dynamic_path = $ENGINE_SO|" -e "s|^MODULE_PATH = .*|MODULE_PATH = $MODULE|" \
    "$CV_ROOT/examples/config/openssl/openssl-pkcs11.cnf" >"$OPENSSL_CONF"
expect_output engine-loads '\[ available \]' openssl engine -t pkcs11

check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label '$TOKEN' --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
check keypairgen-ec-p256 lp11 --keypairgen --key-type EC:prime256v1 --id 01 --label tls --usage-sign
expect_output private-key-not-extractable "never extractable" lp11 --list-objects --type privkey --id 01
KEY_URI="pkcs11:token=$TOKEN;object=tls;type=private;pin-value=$USER_PIN"
# The public key through the engine (CKA_EC_PARAMS + CKA_EC_POINT). Not `pkcs11-tool
# --read-object --type pubkey`: OpenSC 0.23 frees the EC parameters it then builds the key
# from (OpenSC issue #3200), so that export fails or not with the process's heap layout.
check export-public-key openssl pkey -engine pkcs11 -inform engine -pubin -in "pkcs11:token=$TOKEN;object=tls;type=public" -pubout -out "$WORK/pub.pem"
expect_output public-key-is-p256 "(NIST CURVE: P-256|prime256v1)" openssl pkey -pubin -in "$WORK/pub.pem" -noout -text
eng() { local cmd=$1; shift; openssl "$cmd" -engine pkcs11 -keyform engine "$@"; }

check req-self-signed-cert eng req -new -x509 -key "$KEY_URI" -subj /CN=localhost -days 1 -sha256 -out "$WORK/cert.pem"
expect_output cert-self-verifies "cert.pem: OK" openssl verify -CAfile "$WORK/cert.pem" "$WORK/cert.pem"
check cert-holds-token-public-key bash -c "openssl x509 -in '$WORK/cert.pem' -noout -pubkey | cmp - '$WORK/pub.pem'"

head -c 3000 /dev/urandom >"$WORK/file.bin"
check dgst-sign-sha256 eng dgst -sha256 -sign "$KEY_URI" -out "$WORK/sig.der" "$WORK/file.bin"
expect_output verify-with-exported-key "^Verified OK" openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig.der" "$WORK/file.bin"
check pkeyutl-sign-digest bash -c "openssl dgst -sha256 -binary -out '$WORK/file.sha256' '$WORK/file.bin' && openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey '$KEY_URI' -in '$WORK/file.sha256' -out '$WORK/sig2.der'"
expect_output pkeyutl-signature-verifies "^Verified OK" openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig2.der" "$WORK/file.bin"
expect_output wrong-pin-refused "." bash -c "! openssl dgst -sha256 -engine pkcs11 -keyform engine -sign 'pkcs11:token=$TOKEN;object=tls;type=private;pin-value=wrong' -out '$WORK/bad.der' '$WORK/file.bin' </dev/null"

# TLS on loopback: s_server signs its handshakes with the token key; s_client checks the
# chain against the self-signed cert and fetches a page. Every process is time-bounded.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tls_handshake() { # extra s_client options...
    local port pid out rc=0 i
    port=$(free_port)
    timeout 60 openssl s_server -engine pkcs11 -keyform engine -key "$KEY_URI" -cert "$WORK/cert.pem" \
        -accept "127.0.0.1:$port" -www >"$WORK/s_server.log" 2>&1 &
    pid=$!
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" \
        -CAfile "$WORK/cert.pem" -verify_return_error -servername localhost -ign_eof "$@" 2>&1) || rc=$?
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    printf '%s\n' "$out" | grep -E 'Protocol|Cipher is|Peer signature type|Verify return code|^HTTP/'
    [ "$rc" = 0 ] && grep -q 'Verify return code: 0 (ok)' <<<"$out" && grep -q '^HTTP/1.0 200' <<<"$out" \
        || { tail -n 5 "$WORK/s_server.log"; return 1; }
}
expect_output tls13-handshake-token-key "Peer signature type: ECDSA" tls_handshake -tls1_3
expect_output tls12-handshake-token-key "ECDHE-ECDSA" tls_handshake -tls1_2
rm -rf "$WORK"
