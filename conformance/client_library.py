#!/usr/bin/env python3
"""Cases a general-purpose PKCS#11 client library tests (issue 19), through
python-pkcs11: each states the spec's answer and fails on any other.

Run by conformance/client_library.sh on an initialized token. Environment: CV_RESULTS,
MODULE, CV_TOKEN_LABEL, USER_PIN. Exits 0 when it could record its results.
"""

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from casekit import case, expect, run  # noqa: E402
import casekit  # noqa: E402

CLIENT = "client-library"

try:
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11 import exceptions as ckr
except Exception:  # a missing package is a failure, never a skip
    casekit.record(CLIENT, "import-python-pkcs11", False, traceback.format_exc())
    sys.exit(0)


def refused(what, error, fn):
    """fn must fail with exactly the python-pkcs11 exception class `error`."""
    try:
        fn()
    except pkcs11.PKCS11Error as e:
        casekit.NOTES.append(f"{what}: {type(e).__name__}")
        expect(type(e) is error, f"{what}: wanted {error.__name__}, got {type(e).__name__} {e}")
        return
    raise AssertionError(f"{what}: the token accepted it")


def secret(session, key_type, value, **flags):
    attrs = {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: key_type,
        Attribute.VALUE: value,
        Attribute.TOKEN: False,
        Attribute.PRIVATE: True,
    }
    attrs.update({getattr(Attribute, k.upper()): v for k, v in flags.items()})
    return session.create_object(attrs)


@case
def open_session_and_login(ctx):
    ctx["session"] = casekit.user_session()


@case
def aes_key_wrap_pad_0x210a_is_rfc_5649(ctx):
    s = ctx["session"]
    kek = secret(s, KeyType.AES, os.urandom(32), wrap=True, unwrap=True)
    target = secret(s, KeyType.GENERIC_SECRET, os.urandom(20), sensitive=True, extractable=True)
    wrapped = kek.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP_PAD)
    expect(len(wrapped) == 32, f"RFC 5649 wraps 20 bytes to 32, got {len(wrapped)}")
    back = kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, wrapped,
                          mechanism=Mechanism.AES_KEY_WRAP_KWP,
                          template={Attribute.TOKEN: False, Attribute.SENSITIVE: False,
                                    Attribute.EXTRACTABLE: True})
    expect(back[Attribute.VALUE_LEN] == 20, "KWP unwraps what 0x210A wrapped")


@case
def aes_ecb_with_a_partial_block_is_data_len_range(ctx):
    key = secret(ctx["session"], KeyType.AES, os.urandom(16), encrypt=True, decrypt=True)
    refused("C_Encrypt(CKM_AES_ECB) of 17 bytes", ckr.DataLenRange,
            lambda: key.encrypt(b"x" * 17, mechanism=Mechanism.AES_ECB))
    refused("C_Decrypt(CKM_AES_ECB) of 31 bytes", ckr.EncryptedDataLenRange,
            lambda: key.decrypt(b"x" * 31, mechanism=Mechanism.AES_ECB))
    expect(len(key.encrypt(b"x" * 32, mechanism=Mechanism.AES_ECB)) == 32, "whole blocks encrypt")


@case
def multi_part_aes_matches_one_shot(ctx):
    s = ctx["session"]
    key = secret(s, KeyType.AES, os.urandom(32), encrypt=True, decrypt=True)
    data = os.urandom(1000)
    iv = os.urandom(16)
    for mech, param, chunks in [
        (Mechanism.AES_CBC_PAD, iv, [data[:1], data[1:17], data[17:500], data[500:]]),
        (Mechanism.AES_ECB, None, [data[:15], data[15:992]]),
        (Mechanism.AES_CBC, iv, [data[:7], data[7:992]]),
    ]:
        whole = b"".join(chunks)
        one = key.encrypt(whole, mechanism=mech, mechanism_param=param)
        parts = b"".join(key.encrypt(iter(chunks), mechanism=mech, mechanism_param=param))
        expect(one == parts, f"{mech.name}: multi-part ciphertext differs from one shot")
        back = b"".join(key.decrypt(iter([one[:3], one[3:40], one[40:]]), mechanism=mech, mechanism_param=param))
        expect(back == whole, f"{mech.name}: multi-part decryption")


@case
def mechanism_info_key_sizes_are_what_keygen_accepts(ctx):
    s = ctx["session"]
    slot = s.token.slot
    rsa = slot.get_mechanism_info(Mechanism.RSA_PKCS_KEY_PAIR_GEN)
    expect((rsa.min_key_length, rsa.max_key_length) == (2048, 4096), f"RSA sizes {rsa}")
    refused("RSA key pair of 2040 bits", ckr.KeySizeRange,
            lambda: s.generate_keypair(KeyType.RSA, 2040, store=False))
    aes = slot.get_mechanism_info(Mechanism.AES_KEY_GEN)
    expect((aes.min_key_length, aes.max_key_length) == (16, 32), f"AES sizes {aes}")
    for n in (aes.min_key_length, aes.max_key_length):
        key = s.generate_key(KeyType.AES, n * 8, store=False)
        expect(key[Attribute.VALUE_LEN] == n, f"AES key of {n} bytes")
    mechs = set(slot.get_mechanisms())
    for legacy in ("MD5", "DES_KEY_GEN", "DES3_KEY_GEN", "DES3_ECB", "MD5_HMAC"):
        m = getattr(Mechanism, legacy, None) or getattr(Mechanism, "_" + legacy, None)
        expect(m is None or m not in mechs, f"{legacy} is offered")


# PKCS#11 3.0 HMAC key generators python-pkcs11 can name (it has no CKM_SHA*_KEY_GEN for
# SHA-1/SHA-2, and takes only its own Mechanism members; tests/hmac_keygen.rs covers those).
HMAC_KEY_GENS = [
    (Mechanism.SHA3_256_KEY_GEN, KeyType.SHA3_256_HMAC, Mechanism.SHA3_256_HMAC, "sha3_256"),
    (Mechanism.SHA3_384_KEY_GEN, KeyType.SHA3_384_HMAC, Mechanism.SHA3_384_HMAC, "sha3_384"),
    (Mechanism.SHA3_512_KEY_GEN, KeyType.SHA3_512_HMAC, Mechanism.SHA3_512_HMAC, "sha3_512"),
]


@case
def hmac_key_generators_make_keys_their_hmac_uses(ctx):
    s = ctx["session"]
    import hmac as pyhmac
    import hashlib
    for gen, key_type, mac, hash_name in HMAC_KEY_GENS:
        key = s.generate_key(key_type, 256, mechanism=gen, store=False, capabilities=0,
                             template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True,
                                       Attribute.SIGN: True, Attribute.VERIFY: True})
        expect(key.key_type == key_type, f"{gen.name} made {key.key_type}")
        value = key[Attribute.VALUE]
        want = pyhmac.new(value, b"message", getattr(hashlib, hash_name)).digest()
        expect(key.sign(b"message", mechanism=mac) == want, f"{gen.name}: HMAC differs from Python's hmac")
        other = Mechanism.SHA384_HMAC
        refused(f"{gen.name} key under SHA384-HMAC", ckr.KeyTypeInconsistent,
                lambda: key.sign(b"message", mechanism=other))


@case
def aes_encrypt_data_derivation_matches_openssl(ctx):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    s = ctx["session"]
    base_value = os.urandom(32)
    base = secret(s, KeyType.AES, base_value, derive=True)
    data, iv = os.urandom(32), os.urandom(16)
    readable = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}
    ecb = base.derive_key(KeyType.GENERIC_SECRET, 256, mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
                          mechanism_param=data, store=False, template=readable)
    enc = Cipher(algorithms.AES(base_value), modes.ECB()).encryptor()
    expect(ecb[Attribute.VALUE] == enc.update(data) + enc.finalize(), "ECB_ENCRYPT_DATA differs from AES-ECB")
    cbc = base.derive_key(KeyType.GENERIC_SECRET, 256, mechanism=Mechanism.AES_CBC_ENCRYPT_DATA,
                          mechanism_param=(iv, data), store=False, template=readable)
    enc = Cipher(algorithms.AES(base_value), modes.CBC(iv)).encryptor()
    expect(cbc[Attribute.VALUE] == enc.update(data) + enc.finalize(), "CBC_ENCRYPT_DATA differs from AES-CBC")
    refused("ECB_ENCRYPT_DATA of 20 bytes", ckr.MechanismParamInvalid,
            lambda: base.derive_key(KeyType.GENERIC_SECRET, 128, mechanism=Mechanism.AES_ECB_ENCRYPT_DATA,
                                    mechanism_param=os.urandom(20), store=False))


@case
def extract_key_from_key_follows_the_spec_example(ctx):
    import struct
    s = ctx["session"]
    base = secret(s, KeyType.GENERIC_SECRET, bytes.fromhex("329f84a9"), derive=True,
                  sensitive=False, extractable=True)
    # CK_EXTRACT_PARAMS is a CK_ULONG: passed raw (python-pkcs11 has no encoder for it).
    k = base.derive_key(KeyType.GENERIC_SECRET, 16, mechanism=Mechanism.EXTRACT_KEY_FROM_KEY,
                        mechanism_param=struct.pack("@L", 21),  # native unsigned long, as CK_ULONG
                        store=False, template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    expect(k[Attribute.VALUE] == bytes.fromhex("9526"), f"extract gave {k[Attribute.VALUE].hex()}")


if __name__ == "__main__":
    run(CLIENT)
