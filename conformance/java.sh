#!/usr/bin/env bash
# Java SunPKCS11 (the JDK's PKCS#11 provider) against the module: the provider config in
# examples/config/java, `keytool` on the PKCS11 keystore (generate a key entry with its
# certificate on the token, list it), and conformance/java/TokenSign.java, which generates
# an EC P-256 key pair on the token, signs with SHA256withECDSA there, verifies with the
# JDK's SunEC, signs with the keytool entry, runs ECDH against a SunEC key and AES-GCM on
# the token.
source "$(dirname "$0")/lib.sh"
CLIENT=java
need_tool tools java javac keytool pkcs11-tool || exit 0
fresh_workspace

check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label java --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
CFG=$WORK/sunpkcs11.cfg
# The provider config is examples/config/java/sunpkcs11.cfg with the module path filled in.
sed "s|^library = .*|library = $MODULE|" "$CV_ROOT/examples/config/java/sunpkcs11.cfg" >"$CFG"
keytool_p11() {
    keytool -keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11 \
        -providerArg "$CFG" -storepass "$USER_PIN" "$@"
}
expect_output keytool-list "Your keystore contains [0-9]+ entr" keytool_p11 -list
check keytool-genkeypair-ec keytool_p11 -genkeypair -alias javakey -keyalg EC -groupname secp256r1 -dname CN=java -validity 2
expect_output keytool-list-entry "^javakey, .*PrivateKeyEntry" keytool_p11 -list
expect_output keytool-list-verbose "Signature algorithm name: SHA256withECDSA" keytool_p11 -list -v -alias javakey
expect_output keytool-key-generated-on-token "never extractable, local" pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" --list-objects --type privkey
check keytool-wrong-pin-refused bash -c "! keytool -list -keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11 -providerArg '$CFG' -storepass wrong-pin"

mkdir -p "$WORK/classes"
check javac javac -d "$WORK/classes" "$(dirname "$0")/java/TokenSign.java"
java -cp "$WORK/classes" TokenSign "$CFG" "$USER_PIN" javakey >"$WORK/java.out" 2>&1
java_case() { # CASE: the program's `CASE: ok` line
    expect_output "$1" "^$1: ok" cat "$WORK/java.out"
}
for c in login ec-keygen sign verify-sunec verify-token ecdh aes-gcm keystore-entry-sign; do java_case "$c"; done
rm -rf "$WORK"
