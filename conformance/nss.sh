#!/usr/bin/env bash
# NSS (libnss3-tools): the module added to a fresh NSS database with modutil, certutil
# makes an EC P-256 key pair and a self-signed certificate on the token, lists them, and
# finds the certificate again from new processes and from a second, fresh database (it
# lives on the token, not in NSS's files); cmsutil signs with the token's key and OpenSSL
# verifies; certificates and a PKCS#12 key are imported onto the token and deleted.
source "$(dirname "$0")/lib.sh"
CLIENT=nss
need_tool tools certutil modutil cmsutil pk12util openssl pkcs11-tool || exit 0
fresh_workspace
LABEL=nss
DB=sql:$WORK/nssdb
printf '%s\n' "$USER_PIN" >"$WORK/pin.txt"
cu() { certutil -d "$DB" -f "$WORK/pin.txt" "$@"; }

check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label '$LABEL' --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
check create-database bash -c "mkdir '$WORK/nssdb' && certutil -N -d '$DB' --empty-password"
expect_output modutil-add "added to database" modutil -dbdir "$DB" -add collabvault -libfile "$MODULE" -force </dev/null
expect_output modutil-list-module "library name: $MODULE" modutil -dbdir "$DB" -list </dev/null
expect_output modutil-list-token "Token Name: $LABEL +\$" modutil -dbdir "$DB" -list collabvault </dev/null

head -c 64 /dev/urandom >"$WORK/noise"
check certutil-self-signed-ec-on-token cu -S -h "$LABEL" -n nss-ec -s "CN=CollabVault NSS conformance,O=CollabVault" -x -t "CTu,Cu,Cu" -k ec -q nistp256 -Z SHA256 -z "$WORK/noise" -v 12 -m 4242
expect_output certutil-list-certs "^$LABEL:nss-ec +CTu" cu -L -h "$LABEL"
expect_output certutil-list-keys "<[ 0-9]+> ec +[0-9a-f]{40} +$LABEL:nss-ec" cu -K -h "$LABEL"
expect_output certificate-is-a-token-object "Certificate Object; type = X.509 cert" pkcs11-tool --module "$MODULE" --list-objects --type cert
check certificate-exports cu -L -h "$LABEL" -n "$LABEL:nss-ec" -a -o "$WORK/nss-ec.pem"
expect_output certificate-verifies-openssl "OK$" openssl verify -CAfile "$WORK/nss-ec.pem" "$WORK/nss-ec.pem"
expect_output certificate-is-p256-ecdsa-sha256 "ecdsa-with-SHA256" openssl x509 -in "$WORK/nss-ec.pem" -noout -text

# Restart: a new certutil process finds the certificate by nickname; so does a second,
# fresh NSS database with the module added anew (nothing of it lives in NSS's files).
same_cert() { # DB: exports nss-ec from DB's view of the token and compares
    certutil -d "$1" -f "$WORK/pin.txt" -L -h "$LABEL" -n "$LABEL:nss-ec" -a -o "$WORK/again.pem" &&
        cmp "$WORK/nss-ec.pem" "$WORK/again.pem"
}
check restart-finds-certificate same_cert "$DB"
expect_output restart-finds-key "<[ 0-9]+> ec +[0-9a-f]{40} +$LABEL:nss-ec" cu -K -h "$LABEL"
fresh_db() {
    mkdir "$WORK/nssdb2" && certutil -N -d "sql:$WORK/nssdb2" --empty-password &&
        modutil -dbdir "sql:$WORK/nssdb2" -add collabvault -libfile "$MODULE" -force </dev/null >/dev/null &&
        same_cert "sql:$WORK/nssdb2"
}
check fresh-database-finds-certificate fresh_db

# Signing with the token's key: a CMS signature OpenSSL verifies.
printf 'signed by NSS through the token\n' >"$WORK/msg.txt"
check cmsutil-sign cmsutil -S -d "$DB" -f "$WORK/pin.txt" -N "$LABEL:nss-ec" -i "$WORK/msg.txt" -o "$WORK/msg.p7s"
expect_output openssl-verifies-cms "Verification successful" openssl cms -verify -inform DER -in "$WORK/msg.p7s" -CAfile "$WORK/nss-ec.pem" -purpose any -out "$WORK/msg.out"
check cms-content-intact cmp "$WORK/msg.txt" "$WORK/msg.out"

# A certificate from elsewhere, onto the token and off again.
check openssl-makes-certificate openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ext.key" -subj /CN=external -days 2 -out "$WORK/ext.pem"
check certutil-import-certificate cu -A -h "$LABEL" -n ext -t ",," -a -i "$WORK/ext.pem"
expect_output certutil-lists-imported "^$LABEL:ext " cu -L -h "$LABEL"
check certutil-delete-certificate cu -D -n "$LABEL:ext"
check certificate-deleted bash -c "! certutil -d '$DB' -f '$WORK/pin.txt' -L -h '$LABEL' | grep -q '^$LABEL:ext '"
# A PKCS#12 file (OpenSSL's key and certificate) imported onto the token; the imported
# key signs.
p12_sign() {
    certutil -d "$DB" -f "$WORK/pin.txt" -M -n "$LABEL:p12key" -t "CTu,CTu,CTu" &&
        cmsutil -S -d "$DB" -f "$WORK/pin.txt" -N "$LABEL:p12key" -i "$WORK/msg.txt" -o "$WORK/p12.p7s" &&
        openssl cms -verify -inform DER -in "$WORK/p12.p7s" -CAfile "$WORK/ext.pem" -purpose any -out /dev/null
}
check openssl-makes-pkcs12 openssl pkcs12 -export -inkey "$WORK/ext.key" -in "$WORK/ext.pem" -name p12key -passout pass:p12-pass -out "$WORK/ext.p12"
expect_output pk12util-import-to-token "PKCS12 IMPORT SUCCESSFUL" pk12util -d "$DB" -h "$LABEL" -k "$WORK/pin.txt" -i "$WORK/ext.p12" -W p12-pass
expect_output pk12util-key-on-token "<[ 0-9]+> ec +[0-9a-f]{40} +p12key" cu -K -h "$LABEL"
expect_output imported-key-signs-cms "Verification successful" p12_sign
check certutil-delete-imported-key cu -F -h "$LABEL" -n "$LABEL:p12key"
check certutil-delete-key-and-certificate cu -F -h "$LABEL" -n "$LABEL:nss-ec"
# certutil -K exits non-zero when it finds no key.
expect_output key-deleted "no keys found" bash -c "! certutil -d '$DB' -f '$WORK/pin.txt' -K -h '$LABEL'"
