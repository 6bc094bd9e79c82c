#!/usr/bin/env bash
# RSA, P-384, Ed25519 and the AES modes cross-checked with real clients: pkcs11-tool signs with RSA,
# P-384 and Ed25519 keys made on the token and `openssl` verifies with the exported public
# keys (PKCS#1 v1.5, PSS, ECDSA-SHA384, Ed25519); AES-ECB/CBC/CTR ciphertext equals
# `openssl enc` byte for byte in both directions; RSA-OAEP ciphertext made by
# `openssl pkeyutl` decrypts on the token; ML-DSA-65 signatures cross-check with
# dilithium-py, and X-Wing, MLKEM768-P256 and MLKEM1024-P384 shared secrets with each draft's
# combiner written in Python over kyber-py and `cryptography`, and ML-KEM-768 secrets with
# kyber-py, both ways; Ed25519ctx/ph against RFC 8032 in Python; the SP 800-108 KDFs against
# Python's.
source "$(dirname "$0")/lib.sh"
CLIENT=mechanisms
need_tool tools openssl pkcs11-tool python3 || exit 0
fresh_workspace
lp11() { pkcs11-tool --module "$MODULE" --login --pin "$USER_PIN" "$@"; }
export_pub() { python3 "$(dirname "$0")/export_pub.py" "$MODULE" "$1" "$2"; }

check init-token bash -c "pkcs11-tool --module '$MODULE' --init-token --label mechanisms --so-pin '$SO_PIN' && pkcs11-tool --module '$MODULE' --init-pin --so-pin '$SO_PIN' --pin '$USER_PIN'"
head -c 3000 /dev/urandom >"$WORK/file.bin"

# RSA-2048: PKCS#1 v1.5 and PSS signatures, OAEP decryption of OpenSSL's ciphertext.
check keypairgen-rsa-2048 lp11 --keypairgen --key-type rsa:2048 --id 21 --label rsa --usage-sign --usage-decrypt
check export-rsa-public-key export_pub 21 "$WORK/rsa.pem"
expect_output rsa-public-key-is-2048-bit "(Public-Key: \(2048 bit\))" openssl pkey -pubin -in "$WORK/rsa.pem" -noout -text
check sign-sha256-rsa-pkcs lp11 --sign -m SHA256-RSA-PKCS --id 21 -i "$WORK/file.bin" -o "$WORK/rsa.sig"
expect_output openssl-verifies-rsa-pkcs1 "^Verified OK" openssl dgst -sha256 -verify "$WORK/rsa.pem" -signature "$WORK/rsa.sig" "$WORK/file.bin"
check sign-sha256-rsa-pss lp11 --sign -m SHA256-RSA-PKCS-PSS --mgf MGF1-SHA256 --salt-len 32 --id 21 -i "$WORK/file.bin" -o "$WORK/pss.sig"
expect_output openssl-verifies-rsa-pss "^Verified OK" openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -verify "$WORK/rsa.pem" -signature "$WORK/pss.sig" "$WORK/file.bin"
printf 'the oaep secret' >"$WORK/oaep.txt"
check openssl-oaep-encrypt openssl pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/oaep.txt" -out "$WORK/oaep.bin"
oaep_decrypts() {
    lp11 --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 21 -i "$WORK/oaep.bin" -o "$WORK/oaep.out" || return 1
    cmp "$WORK/oaep.txt" "$WORK/oaep.out"
}
check token-decrypts-openssl-oaep-sha256 oaep_decrypts
check openssl-oaep-sha1-encrypt openssl pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:oaep -in "$WORK/oaep.txt" -out "$WORK/oaep1.bin"
check token-decrypts-openssl-oaep-sha1 bash -c "pkcs11-tool --module '$MODULE' --login --pin '$USER_PIN' --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 --id 21 -i '$WORK/oaep1.bin' -o '$WORK/oaep1.out' && cmp '$WORK/oaep.txt' '$WORK/oaep1.out'"
# CKM_RSA_PKCS over a caller's SHA-256 DigestInfo (the aws-lc build signs it with AWS-LC,
# other DigestInfos with the rsa crate) verifies in OpenSSL as an ordinary PKCS#1 v1.5
# signature; OpenSSL's PKCS#1 v1.5 ciphertext decrypts on the token (C_Decrypt).
digest_info_signs() {
    { printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
      openssl dgst -sha256 -binary "$WORK/file.bin"; } >"$WORK/digestinfo.bin" || return 1
    lp11 --sign -m RSA-PKCS --id 21 -i "$WORK/digestinfo.bin" -o "$WORK/raw.sig" || return 1
    openssl dgst -sha256 -verify "$WORK/rsa.pem" -signature "$WORK/raw.sig" "$WORK/file.bin" | grep -q "^Verified OK" || return 1
    cmp "$WORK/raw.sig" "$WORK/rsa.sig"
}
check rsa-pkcs-digestinfo-signature-matches-sha256-rsa-pkcs digest_info_signs
pkcs1_decrypts() {
    openssl pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pem" -pkeyopt rsa_padding_mode:pkcs1 -in "$WORK/oaep.txt" -out "$WORK/v15.bin" || return 1
    lp11 --decrypt -m RSA-PKCS --id 21 -i "$WORK/v15.bin" -o "$WORK/v15.out" || return 1
    cmp "$WORK/oaep.txt" "$WORK/v15.out"
}
check token-decrypts-openssl-pkcs1-v15 pkcs1_decrypts

# P-384: ECDSA-SHA384, DER-converted by pkcs11-tool (-f openssl).
check keypairgen-ec-p384 lp11 --keypairgen --key-type EC:secp384r1 --id 22 --label p384 --usage-sign
check export-p384-public-key export_pub 22 "$WORK/p384.pem"
expect_output p384-public-key-is-p384 "(NIST CURVE: P-384|secp384r1)" openssl pkey -pubin -in "$WORK/p384.pem" -noout -text
check sign-ecdsa-sha384 lp11 --sign -m ECDSA-SHA384 --id 22 -i "$WORK/file.bin" -f openssl -o "$WORK/p384.sig"
expect_output openssl-verifies-ecdsa-p384 "^Verified OK" openssl dgst -sha384 -verify "$WORK/p384.pem" -signature "$WORK/p384.sig" "$WORK/file.bin"

# Ed25519.
check keypairgen-ed25519 lp11 --keypairgen --key-type EC:edwards25519 --id 23 --label ed --usage-sign
check export-ed25519-public-key export_pub 23 "$WORK/ed.pem"
check sign-eddsa lp11 --sign -m EDDSA --id 23 -i "$WORK/file.bin" -o "$WORK/ed.sig"
expect_output openssl-verifies-ed25519 "Signature Verified Successfully" openssl pkeyutl -verify -pubin -inkey "$WORK/ed.pem" -rawin -in "$WORK/file.bin" -sigfile "$WORK/ed.sig"

# AES-256 ECB/CBC/CTR against `openssl enc`, both directions.
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
IV=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
head -c 4096 /dev/urandom >"$WORK/blocks.bin"
printf '%s' "$KEY" | xxd -r -p >"$WORK/aes.key" 2>/dev/null || python3 -c "import sys;open('$WORK/aes.key','wb').write(bytes.fromhex('$KEY'))"
check import-aes-key lp11 --write-object "$WORK/aes.key" --type secrkey --key-type AES:32 --id 24 --label aes --usage-decrypt
aes_matches() { # MECH OPENSSL_CIPHER [IV]
    local mech=$1 cipher=$2 iv=${3:-}
    local ivopt=() osslopt=()
    [ -n "$iv" ] && ivopt=(--iv "$iv") && osslopt=(-iv "$iv")
    lp11 --encrypt -m "$mech" "${ivopt[@]}" --id 24 -i "$WORK/blocks.bin" -o "$WORK/tok.ct" || return 1
    openssl enc "-$cipher" -K "$KEY" "${osslopt[@]}" -nopad -in "$WORK/blocks.bin" -out "$WORK/ossl.ct" || return 1
    cmp "$WORK/tok.ct" "$WORK/ossl.ct" || return 1
    lp11 --decrypt -m "$mech" "${ivopt[@]}" --id 24 -i "$WORK/ossl.ct" -o "$WORK/tok.pt" || return 1
    cmp "$WORK/tok.pt" "$WORK/blocks.bin"
}
check aes-ecb-matches-openssl aes_matches AES-ECB aes-256-ecb
check aes-cbc-matches-openssl aes_matches AES-CBC aes-256-cbc "$IV"
# pkcs11-tool 0.23 has no AES-CTR: python-pkcs11 drives CKM_AES_CTR (128 counter bits).
ctr_matches() {
    local ctr=(python3 "$(dirname "$0")/aes_ctr.py" "$MODULE" "$USER_PIN" 24 "$IV")
    head -c 1000 /dev/urandom >"$WORK/ctr.bin"
    "${ctr[@]}" encrypt "$WORK/ctr.bin" "$WORK/ctr.tok" || return 1
    openssl enc -aes-256-ctr -K "$KEY" -iv "$IV" -in "$WORK/ctr.bin" -out "$WORK/ctr.ossl" || return 1
    cmp "$WORK/ctr.tok" "$WORK/ctr.ossl" || return 1
    "${ctr[@]}" decrypt "$WORK/ctr.ossl" "$WORK/ctr.back" || return 1
    cmp "$WORK/ctr.back" "$WORK/ctr.bin"
}
check aes-ctr-matches-openssl ctr_matches
cbc_pad_matches() {
    head -c 1000 /dev/urandom >"$WORK/odd.bin"
    lp11 --encrypt -m AES-CBC-PAD --iv "$IV" --id 24 -i "$WORK/odd.bin" -o "$WORK/pad.ct" || return 1
    openssl enc -aes-256-cbc -K "$KEY" -iv "$IV" -in "$WORK/odd.bin" -out "$WORK/pad.ossl" || return 1
    cmp "$WORK/pad.ct" "$WORK/pad.ossl"
}
check aes-cbc-pad-matches-openssl cbc_pad_matches

# ML-DSA-65 against dilithium-py, an independent FIPS 204 implementation, both ways
# (a ctypes client: python-pkcs11 does not know the 3.2 ML-DSA types).
mldsa() { python3 "$(dirname "$0")/mldsa.py" "$MODULE" "$USER_PIN" "$1"; }
check mldsa-token-signs-dilithium-py-verifies mldsa token-signs
check mldsa-dilithium-py-signs-token-verifies mldsa token-verifies

# X-Wing (vendor hybrid KEM) against the draft's combiner written in Python over kyber-py's
# ML-KEM-768 and cryptography's X25519, both ways.
xwing() { python3 "$(dirname "$0")/xwing.py" "$MODULE" "$USER_PIN" "$1"; }
check xwing-python-encapsulates-token-decapsulates xwing python-encapsulates
check xwing-token-encapsulates-python-decapsulates xwing token-encapsulates

# MLKEM768-P256 and MLKEM1024-P384 (vendor hybrid KEMs, draft-irtf-cfrg-concrete-hybrid-kems-04)
# against the CG framework written in Python over kyber-py's ML-KEM and cryptography's
# P-256/P-384: both directions, and the token deriving Python's key from the same seed.
hybrid_kem() { python3 "$(dirname "$0")/hybrid_kem.py" "$MODULE" "$USER_PIN" "$@"; }
for kem in mlkem768-p256 mlkem1024-p384; do
    check "$kem-python-encapsulates-token-decapsulates" hybrid_kem "$kem" python-encapsulates
    check "$kem-token-encapsulates-python-decapsulates" hybrid_kem "$kem" token-encapsulates
    check "$kem-token-derives-the-same-key-from-a-seed" hybrid_kem "$kem" seed-import
done

# Ed25519ctx and Ed25519ph (CKM_EDDSA with CK_EDDSA_PARAMS) against RFC 8032 §5.1 written
# in Python (checked on the RFC's vectors first), both ways.
eddsa_variants() { python3 "$(dirname "$0")/eddsa_variants.py" "$MODULE" "$USER_PIN" "$1"; }
check ed25519ctx-ph-token-signs-python-verifies eddsa_variants token-signs
check ed25519ctx-ph-python-signs-token-verifies eddsa_variants python-signs

# The SP 800-108 KDFs against cryptography's KBKDFHMAC/KBKDFCMAC (counter mode) and
# SP 800-108 §5.2/§5.3 written in Python over hashlib's HMAC (feedback, double pipeline);
# CKM_HKDF_DATA against cryptography's HKDF.
kbkdf() { python3 "$(dirname "$0")/kbkdf.py" "$MODULE" "$USER_PIN" "$1"; }
for mode in counter-hmac counter-cmac feedback double-pipeline additional-keys; do
    check "kbkdf-$mode-matches-python" kbkdf "$mode"
done
check hkdf-data-matches-cryptography kbkdf hkdf-data

mlkem() { python3 "$(dirname "$0")/mlkem.py" "$MODULE" "$USER_PIN" "$1"; }
check mlkem-python-encapsulates-token-decapsulates mlkem python-encapsulates
check mlkem-token-encapsulates-python-decapsulates mlkem token-encapsulates
