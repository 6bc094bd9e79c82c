#!/usr/bin/env bash
# OpenSSL cross-checks: keys generated on the token sign data that `openssl` verifies with
# the exported public key (ECDSA-SHA256 and raw ECDSA over an OpenSSL-made digest),
# OpenSSL signatures verify on the token, and ECDH on the token agrees with OpenSSL's.
# pkcs11-tool drives the token; it converts r||s signatures to DER (-f openssl).
source "$(dirname "$0")/lib.sh"
CLIENT=openssl
need_tool tools openssl pkcs11-tool || exit 0
fresh_workspace
p11() { pkcs11-tool --module "$MODULE" "$@"; }
lp11() { pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" "$@"; }

check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label openssl --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
check keypairgen-ec-p256 lp11 --keypairgen --key-type EC:prime256v1 --id 0e --label ossl-ec --usage-sign --usage-derive
# Built from CKA_EC_POINT: pkcs11-tool 0.23's pubkey export has a use-after-free for EC
# keys (OpenSC #3200), see export_ec_pub.py.
check export-public-key python3 "$(dirname "$0")/export_ec_pub.py" "$MODULE" 0e "$WORK/pub.pem"
expect_output public-key-is-p256 "(NIST CURVE: P-256|prime256v1)" openssl pkey -pubin -in "$WORK/pub.pem" -noout -text

head -c 3000 /dev/urandom >"$WORK/file.bin"
check sign-ecdsa-sha256 lp11 --sign -m ECDSA-SHA256 --id 0e -i "$WORK/file.bin" -f openssl -o "$WORK/sig.der"
expect_output openssl-verifies-ecdsa-sha256 "^Verified OK" openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig.der" "$WORK/file.bin"
cp "$WORK/file.bin" "$WORK/tampered.bin"
printf '\x5a' | dd of="$WORK/tampered.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_output openssl-rejects-tampered-file "Verification failure" bash -c "! openssl dgst -sha256 -verify '$WORK/pub.pem' -signature '$WORK/sig.der' '$WORK/tampered.bin'"

# Raw CKM_ECDSA over a digest OpenSSL computed.
check openssl-digest openssl dgst -sha256 -binary -out "$WORK/file.sha256" "$WORK/file.bin"
check sign-raw-ecdsa-over-openssl-digest lp11 --sign -m ECDSA --id 0e -i "$WORK/file.sha256" -f openssl -o "$WORK/raw.der"
expect_output openssl-verifies-raw-ecdsa "^Verified OK" openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/raw.der" "$WORK/file.bin"
expect_output openssl-pkeyutl-verifies-raw-ecdsa "Signature Verified Successfully" openssl pkeyutl -verify -pubin -inkey "$WORK/pub.pem" -in "$WORK/file.sha256" -sigfile "$WORK/raw.der"

# The reverse: OpenSSL signs, the token verifies with the imported public key.
check openssl-genkey openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/peer.pem"
check import-openssl-public-key bash -c "openssl pkey -in '$WORK/peer.pem' -pubout -outform DER -out '$WORK/peer.der' && pkcs11-tool --module '$MODULE' --login --pin '$USER_PIN' --write-object '$WORK/peer.der' --type pubkey --id 0f --label peer"
check openssl-sign openssl dgst -sha256 -sign "$WORK/peer.pem" -out "$WORK/osig.der" "$WORK/file.bin"
expect_output token-verifies-openssl-signature "^Signature is valid" lp11 --verify -m ECDSA-SHA256 --id 0f -i "$WORK/file.bin" --signature-file "$WORK/osig.der" -f openssl
expect_output token-rejects-openssl-signature-on-tampered-file "^Invalid signature" lp11 --verify -m ECDSA-SHA256 --id 0f -i "$WORK/tampered.bin" --signature-file "$WORK/osig.der" -f openssl

# ECDH (CKD_NULL): the token's shared secret equals OpenSSL's.
ecdh_agrees() {
    lp11 --derive -m ECDH1-DERIVE --id 0e -i "$WORK/peer.der" -o "$WORK/z-token.bin" || return 1
    openssl pkeyutl -derive -inkey "$WORK/peer.pem" -peerkey "$WORK/pub.pem" -out "$WORK/z-openssl.bin" || return 1
    od -An -tx1 "$WORK/z-token.bin"
    od -An -tx1 "$WORK/z-openssl.bin"
    [ "$(stat -c %s "$WORK/z-token.bin")" = 32 ] && cmp "$WORK/z-token.bin" "$WORK/z-openssl.bin"
}
check ecdh-matches-openssl ecdh_agrees
