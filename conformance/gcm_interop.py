#!/usr/bin/env python3
"""Interop between the token (through python-pkcs11, a PKCS#11 client) and OpenSSL's
implementations (through PyPI's `cryptography`, whose AESGCM, key wrap, ECDSA, ECDH and
X9.63 KDF are OpenSSL's) and Python's hashlib/hmac.

Run by conformance/python.sh on an initialized token. Environment: CV_RESULTS (the
scoreboard file), MODULE (the .so), CV_TOKEN_LABEL, USER_PIN. Prints and appends
`python / case / PASS|FAIL` lines; a failing case shows the last lines of its traceback.
Exits 0 when it could record its results, so run.sh counts cases, not scripts.
"""

import hashlib
import hmac
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import casekit  # noqa: E402
from casekit import NOTES, case, expect  # noqa: E402,F401

CLIENT = "python"


def record(case_name, ok, detail=""):
    casekit.record(CLIENT, case_name, ok, detail)


try:
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11 import KDF, GCMParams
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
    from cryptography.hazmat.primitives import keywrap
except Exception:  # a missing package is a failure, never a skip
    record("import-cryptography-and-python-pkcs11", False,
           traceback.format_exc() + "\nrun scripts/install-deps.sh")
    sys.exit(0)

# Not every python-pkcs11 release names CKM_AES_KEY_WRAP_KWP (0x210B).
AES_KEY_WRAP_KWP = getattr(Mechanism, "AES_KEY_WRAP_KWP", None)


def run():
    casekit.run(CLIENT)


def expect_refused(what, fn):
    """fn must fail with a PKCS#11 error; returns that error's class name."""
    return casekit.expect_refused(what, fn, pkcs11.PKCS11Error)


def aes_key(session, value, label, extra=None):
    attrs = {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: KeyType.AES,
        Attribute.VALUE: value,
        Attribute.LABEL: label,
        Attribute.TOKEN: False,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
    }
    attrs.update(extra or {})
    return session.create_object(attrs)


# --- session --------------------------------------------------------------------------

@case
def open_session_and_login(ctx):
    ctx["session"] = casekit.user_session()


# --- AES-GCM --------------------------------------------------------------------------

KEY_BYTES = bytes(range(0x40, 0x60))  # 32 known bytes
IV = bytes.fromhex("cafebabefacedbaddecaf888")
AAD = b"collabvault conformance aad"
PLAINTEXT = b"The token and OpenSSL must agree on every byte of this message. " * 5


@case
def create_aes256_key_with_known_bytes(ctx):
    ctx["gcm_key"] = aes_key(ctx["session"], KEY_BYTES, "gcm-known")
    expect(ctx["gcm_key"][Attribute.VALUE_LEN] == 32, "CKA_VALUE_LEN is not 32")


def gcm(iv=IV, aad=AAD, tag_bits=128):
    return GCMParams(iv, aad, tag_bits)


@case
def gcm_token_encrypts_openssl_decrypts(ctx):
    ct = ctx["gcm_key"].encrypt(PLAINTEXT, mechanism=Mechanism.AES_GCM, mechanism_param=gcm())
    expect(len(ct) == len(PLAINTEXT) + 16, f"ciphertext||tag is {len(ct)} bytes")
    expect(AESGCM(KEY_BYTES).decrypt(IV, ct, AAD) == PLAINTEXT, "OpenSSL got other plaintext")
    ctx["gcm_ct"] = ct


@case
def gcm_token_matches_openssl_ciphertext(ctx):
    expect(ctx["gcm_ct"] == AESGCM(KEY_BYTES).encrypt(IV, PLAINTEXT, AAD),
           "token and OpenSSL ciphertexts differ")


@case
def gcm_openssl_encrypts_token_decrypts(ctx):
    iv = os.urandom(12)
    ct = AESGCM(KEY_BYTES).encrypt(iv, PLAINTEXT, AAD)
    pt = ctx["gcm_key"].decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=gcm(iv=iv))
    expect(pt == PLAINTEXT, "token got other plaintext")
    ctx["gcm_ossl"] = (iv, ct)


@case
def gcm_token_refuses_flipped_ciphertext_byte(ctx):
    iv, ct = ctx["gcm_ossl"]
    bad = bytearray(ct)
    bad[7] ^= 0x01
    expect_refused("flipped ciphertext", lambda: ctx["gcm_key"].decrypt(
        bytes(bad), mechanism=Mechanism.AES_GCM, mechanism_param=gcm(iv=iv)))


@case
def gcm_token_refuses_flipped_tag_byte(ctx):
    iv, ct = ctx["gcm_ossl"]
    bad = bytearray(ct)
    bad[-1] ^= 0x80
    expect_refused("flipped tag", lambda: ctx["gcm_key"].decrypt(
        bytes(bad), mechanism=Mechanism.AES_GCM, mechanism_param=gcm(iv=iv)))


@case
def gcm_token_refuses_wrong_aad(ctx):
    iv, ct = ctx["gcm_ossl"]
    expect_refused("wrong AAD", lambda: ctx["gcm_key"].decrypt(
        ct, mechanism=Mechanism.AES_GCM, mechanism_param=gcm(iv=iv, aad=AAD + b"!")))


@case
def gcm_openssl_refuses_flipped_token_ciphertext(ctx):
    bad = bytearray(ctx["gcm_ct"])
    bad[0] ^= 0x01
    try:
        AESGCM(KEY_BYTES).decrypt(IV, bytes(bad), AAD)
    except Exception:  # cryptography.exceptions.InvalidTag
        return
    raise AssertionError("OpenSSL accepted a flipped byte")


@case
def gcm_multipart_token_encrypts_openssl_decrypts(ctx):
    # An iterator makes python-pkcs11 use C_EncryptUpdate/C_EncryptFinal.
    chunks = [PLAINTEXT[:17], PLAINTEXT[17:200], PLAINTEXT[200:]]
    ct = b"".join(ctx["gcm_key"].encrypt(iter(chunks), mechanism=Mechanism.AES_GCM,
                                         mechanism_param=gcm()))
    expect(AESGCM(KEY_BYTES).decrypt(IV, ct, AAD) == PLAINTEXT, "OpenSSL got other plaintext")


@case
def gcm_multipart_openssl_encrypts_token_decrypts(ctx):
    iv, ct = ctx["gcm_ossl"]
    pt = b"".join(ctx["gcm_key"].decrypt(iter([ct[:33], ct[33:-5], ct[-5:]]),
                                         mechanism=Mechanism.AES_GCM, mechanism_param=gcm(iv=iv)))
    expect(pt == PLAINTEXT, "token got other plaintext")


@case
def gcm_empty_plaintext_no_aad(ctx):
    ct = ctx["gcm_key"].encrypt(b"", mechanism=Mechanism.AES_GCM,
                                mechanism_param=gcm(aad=None))
    expect(ct == AESGCM(KEY_BYTES).encrypt(IV, b"", None), "tag-only output differs from OpenSSL")


@case
def gcm_aes128_key_96bit_tag(ctx):
    k = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    key = aes_key(ctx["session"], k, "gcm-128")
    ct = key.encrypt(PLAINTEXT, mechanism=Mechanism.AES_GCM, mechanism_param=gcm(tag_bits=96))
    full = AESGCM(k).encrypt(IV, PLAINTEXT, AAD)
    expect(ct == full[:-4], "token's 96-bit-tag output is not OpenSSL's truncated to 12 bytes")


# --- SHA-256 and HMAC -------------------------------------------------------------------

MESSAGE = b"digest me " * 100


@case
def sha256_digest_matches_hashlib(ctx):
    d = ctx["session"].digest(MESSAGE, mechanism=Mechanism.SHA256)
    expect(d == hashlib.sha256(MESSAGE).digest(), f"token {d.hex()}")


@case
def sha256_multipart_digest_matches_hashlib(ctx):
    d = ctx["session"].digest(iter([MESSAGE[:3], b"", MESSAGE[3:]]), mechanism=Mechanism.SHA256)
    expect(d == hashlib.sha256(MESSAGE).digest(), f"token {d.hex()}")


@case
def sha256_empty_digest_matches_hashlib(ctx):
    d = ctx["session"].digest(b"", mechanism=Mechanism.SHA256)
    expect(d == hashlib.sha256(b"").digest(), f"token {d.hex()}")


HMAC_KEY = b"a generic secret for hmac, 41 bytes long"


@case
def hmac_sha256_sign_matches_python_hmac(ctx):
    key = ctx["session"].create_object({
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
        Attribute.VALUE: HMAC_KEY,
        Attribute.TOKEN: False,
        Attribute.SIGN: True,
        Attribute.VERIFY: True,
    })
    ctx["hmac_key"] = key
    mac = key.sign(MESSAGE, mechanism=Mechanism.SHA256_HMAC)
    expect(mac == hmac.new(HMAC_KEY, MESSAGE, hashlib.sha256).digest(), f"token {mac.hex()}")


@case
def hmac_sha256_multipart_sign_matches_python_hmac(ctx):
    mac = ctx["hmac_key"].sign(iter([MESSAGE[:10], MESSAGE[10:]]), mechanism=Mechanism.SHA256_HMAC)
    expect(mac == hmac.new(HMAC_KEY, MESSAGE, hashlib.sha256).digest(), f"token {mac.hex()}")


@case
def hmac_sha256_token_verifies_python_hmac(ctx):
    mac = hmac.new(HMAC_KEY, MESSAGE, hashlib.sha256).digest()
    expect(ctx["hmac_key"].verify(MESSAGE, mac, mechanism=Mechanism.SHA256_HMAC),
           "token refused Python's HMAC")
    bad = bytes([mac[0] ^ 1]) + mac[1:]
    expect(not ctx["hmac_key"].verify(MESSAGE, bad, mechanism=Mechanism.SHA256_HMAC),
           "token accepted a wrong HMAC")


# --- AES key wrap (RFC 3394) and KWP (RFC 5649) --------------------------------------------

KEK_BYTES = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")


@case
def create_kek_with_known_bytes(ctx):
    ctx["kek"] = aes_key(ctx["session"], KEK_BYTES, "kek", {Attribute.WRAP: True,
                                                              Attribute.UNWRAP: True})


@case
def rfc3394_test_vector_wrap(ctx):
    # RFC 3394 section 4.6: 256-bit key data with a 256-bit KEK.
    data = bytes.fromhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
    target = aes_key(ctx["session"], data, "rfc3394", {Attribute.SENSITIVE: False,
                                                         Attribute.EXTRACTABLE: True})
    wrapped = ctx["kek"].wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP)
    want = bytes.fromhex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326"
                         "CBC7F0E71A99F43BFB988B9B7A02DD21")
    expect(wrapped == want, f"wrapped {wrapped.hex()}")


@case
def token_wraps_generated_key_openssl_unwraps(ctx):
    target = ctx["session"].generate_key(KeyType.AES, 256, label="wrap-me", template={
        Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True, Attribute.TOKEN: False})
    wrapped = ctx["kek"].wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP)
    expect(len(wrapped) == 40, f"wrapped key is {len(wrapped)} bytes")
    raw = keywrap.aes_key_unwrap(KEK_BYTES, wrapped)
    expect(raw == target[Attribute.VALUE], "unwrapped bytes differ from CKA_VALUE")


@case
def token_wraps_sensitive_key_openssl_unwraps_and_uses_it(ctx):
    # Sensitive but extractable: CKA_VALUE is unreadable, so prove the bytes by using them.
    target = ctx["session"].generate_key(KeyType.AES, 256, label="sensitive", template={
        Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True, Attribute.TOKEN: False})
    raw = keywrap.aes_key_unwrap(KEK_BYTES, ctx["kek"].wrap_key(
        target, mechanism=Mechanism.AES_KEY_WRAP))
    ct = target.encrypt(PLAINTEXT, mechanism=Mechanism.AES_GCM, mechanism_param=gcm())
    expect(AESGCM(raw).decrypt(IV, ct, AAD) == PLAINTEXT, "recovered key does not decrypt")


@case
def token_refuses_to_wrap_unextractable_key(ctx):
    expect_refused("wrap CKA_EXTRACTABLE=false", lambda: ctx["kek"].wrap_key(
        ctx["gcm_key"], mechanism=Mechanism.AES_KEY_WRAP))


@case
def openssl_wraps_token_unwraps(ctx):
    raw = os.urandom(32)
    wrapped = keywrap.aes_key_wrap(KEK_BYTES, raw)
    key = ctx["kek"].unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped,
                                mechanism=Mechanism.AES_KEY_WRAP, label="unwrapped",
                                template={Attribute.TOKEN: False, Attribute.ENCRYPT: True})
    ct = key.encrypt(PLAINTEXT, mechanism=Mechanism.AES_GCM, mechanism_param=gcm())
    expect(AESGCM(raw).decrypt(IV, ct, AAD) == PLAINTEXT, "unwrapped key is not OpenSSL's")
    expect(key[Attribute.VALUE_LEN] == 32, "CKA_VALUE_LEN is not 32")


@case
def token_refuses_tampered_wrapped_key(ctx):
    wrapped = bytearray(keywrap.aes_key_wrap(KEK_BYTES, os.urandom(32)))
    wrapped[3] ^= 0x10
    expect_refused("tampered wrapped key", lambda: ctx["kek"].unwrap_key(
        ObjectClass.SECRET_KEY, KeyType.AES, bytes(wrapped), mechanism=Mechanism.AES_KEY_WRAP,
        template={Attribute.TOKEN: False}))


def kwp():
    expect(AES_KEY_WRAP_KWP is not None, "this python-pkcs11 has no Mechanism.AES_KEY_WRAP_KWP")
    return AES_KEY_WRAP_KWP


@case
def kwp_token_wraps_odd_length_secret_openssl_unwraps(ctx):
    raw = bytes(range(1, 21))  # 20 bytes: not a multiple of 8, so RFC 5649 pads
    target = ctx["session"].create_object({
        Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
        Attribute.VALUE: raw, Attribute.TOKEN: False, Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: True})
    wrapped = ctx["kek"].wrap_key(target, mechanism=kwp())
    expect(len(wrapped) == 32, f"wrapped is {len(wrapped)} bytes, want 32")
    expect(keywrap.aes_key_unwrap_with_padding(KEK_BYTES, wrapped) == raw, "bytes differ")


@case
def kwp_token_wraps_aes_key_openssl_unwraps(ctx):
    target = ctx["session"].generate_key(KeyType.AES, 256, template={
        Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True, Attribute.TOKEN: False})
    wrapped = ctx["kek"].wrap_key(target, mechanism=kwp())
    raw = keywrap.aes_key_unwrap_with_padding(KEK_BYTES, wrapped)
    expect(raw == target[Attribute.VALUE], "unwrapped bytes differ from CKA_VALUE")


@case
def kwp_openssl_wraps_token_unwraps(ctx):
    raw = os.urandom(27)
    wrapped = keywrap.aes_key_wrap_with_padding(KEK_BYTES, raw)
    key = ctx["kek"].unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, wrapped,
                                mechanism=kwp(), template={
                                    Attribute.TOKEN: False, Attribute.SENSITIVE: False,
                                    Attribute.EXTRACTABLE: True, Attribute.SIGN: True})
    expect(key[Attribute.VALUE] == raw, "unwrapped CKA_VALUE differs")
    expect(key[Attribute.VALUE_LEN] == 27, f"CKA_VALUE_LEN {key[Attribute.VALUE_LEN]}")


@case
def rfc5649_test_vector_wrap(ctx):
    # RFC 5649 section 6: 20-octet key data with a 192-bit KEK.
    kek = aes_key(ctx["session"], bytes.fromhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"),
                  "kek192", {Attribute.WRAP: True})
    target = ctx["session"].create_object({
        Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
        Attribute.VALUE: bytes.fromhex("c37b7e6492584340bed12207808941155068f738"),
        Attribute.TOKEN: False, Attribute.EXTRACTABLE: True})
    wrapped = kek.wrap_key(target, mechanism=kwp())
    want = bytes.fromhex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")
    expect(wrapped == want, f"wrapped {wrapped.hex()}")


# --- EC P-256: ECDSA and ECDH against OpenSSL ---------------------------------------------

P256_OID_DER = bytes.fromhex("06082a8648ce3d030107")


def ec_point(pub):
    """The raw uncompressed point from CKA_EC_POINT (DER OCTET STRING, or raw)."""
    v = pub[Attribute.EC_POINT]
    if len(v) == 67 and v[0] == 0x04 and v[1] == 0x41:
        return v[2:]
    return v


@case
def ec_p256_keypair_generate(ctx):
    s = ctx["session"]
    pub, priv = s.generate_keypair(KeyType.EC, mechanism=Mechanism.EC_KEY_PAIR_GEN,
                                   public_template={Attribute.EC_PARAMS: P256_OID_DER,
                                                    Attribute.TOKEN: False,
                                                    Attribute.VERIFY: True},
                                   private_template={Attribute.TOKEN: False,
                                                     Attribute.SIGN: True,
                                                     Attribute.DERIVE: True})
    point = ec_point(pub)
    expect(len(point) == 65 and point[0] == 4, f"EC point {point.hex()}")
    ctx["ec"] = (pub, priv, ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))


@case
def ecdsa_sha256_token_signs_openssl_verifies(ctx):
    _, priv, ossl_pub = ctx["ec"]
    sig = priv.sign(MESSAGE, mechanism=Mechanism.ECDSA_SHA256)
    expect(len(sig) == 64, f"signature is {len(sig)} bytes, want r||s = 64")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    ossl_pub.verify(der, MESSAGE, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature


@case
def ecdsa_openssl_signs_token_verifies(ctx):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    ossl_priv = ec.generate_private_key(ec.SECP256R1())
    point = ossl_priv.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
    pub = ctx["session"].create_object({
        Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
        Attribute.EC_PARAMS: P256_OID_DER, Attribute.EC_POINT: b"\x04\x41" + point,
        Attribute.TOKEN: False, Attribute.VERIFY: True})
    r, s = decode_dss_signature(ossl_priv.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    expect(pub.verify(MESSAGE, sig, mechanism=Mechanism.ECDSA_SHA256), "token refused it")
    expect(not pub.verify(MESSAGE + b"x", sig, mechanism=Mechanism.ECDSA_SHA256),
           "token accepted a signature over other data")


def ecdh_peer():
    peer = ec.generate_private_key(ec.SECP256R1())
    point = peer.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return peer, point


def readable_secret():
    return {Attribute.TOKEN: False, Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}


@case
def ecdh_null_kdf_matches_openssl(ctx):
    _, priv, ossl_pub = ctx["ec"]
    peer, point = ecdh_peer()
    z = priv.derive_key(KeyType.GENERIC_SECRET, 256, mechanism=Mechanism.ECDH1_DERIVE,
                        mechanism_param=(KDF.NULL, None, point), template=readable_secret())
    expect(z[Attribute.VALUE] == peer.exchange(ec.ECDH(), ossl_pub), "shared secrets differ")


@case
def ecdh_sha256_kdf_matches_openssl_x963(ctx):
    _, priv, ossl_pub = ctx["ec"]
    peer, point = ecdh_peer()
    info = b"collabvault shared info"
    k = priv.derive_key(KeyType.AES, 256, mechanism=Mechanism.ECDH1_DERIVE,
                        mechanism_param=(KDF.SHA256, info, point), template=readable_secret())
    want = X963KDF(hashes.SHA256(), 32, info).derive(peer.exchange(ec.ECDH(), ossl_pub))
    expect(k[Attribute.VALUE] == want, "X9.63 KDF output differs")


if __name__ == "__main__":
    run()
