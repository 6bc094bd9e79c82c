#!/usr/bin/env python3
"""The SP 800-108 KDFs (CKM_SP800_108_*_KDF, PKCS#11 3.0 §2.42) against independent
implementations: `cryptography`'s KBKDFHMAC and KBKDFCMAC for counter mode, and for the
feedback and double-pipeline modes (which `cryptography` does not offer) SP 800-108 §5.2
and §5.3 written here over hashlib's HMAC-SHA-384.

  counter-hmac     HMAC-SHA256, 32-bit counter before Label || 00 || Context || [L]_32
  counter-cmac     AES-128-CMAC, 8-bit counter after the fixed input
  feedback         HMAC-SHA384, K(0) = IV, 32-bit counter after K(i-1)
  double-pipeline  HMAC-SHA384, A(0) = the fixed input, 16-bit counter
  additional-keys  counter mode, a primary key and two CK_DERIVED_KEYs: each starts on a
                   fresh PRF output and [L] sums all three
  hkdf-data        CKM_HKDF_DATA (the other PKCS#11 3.0 KDF that general clients try):
                   a CKO_DATA object holding what `cryptography`'s HKDF derives

usage: kbkdf.py MODULE PIN MODE
"""
import ctypes as C
import hashlib
import hmac
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.kbkdf import CounterLocation, KBKDFCMAC, KBKDFHMAC, Mode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ck import CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKO_SECRET_KEY, ULONG, Token  # noqa: E402

CKM_SP800_108_COUNTER_KDF, CKM_SP800_108_FEEDBACK_KDF, CKM_SP800_108_DOUBLE_PIPELINE_KDF = 0x3AC, 0x3AD, 0x3AE
CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_AES_CMAC = 0x251, 0x261, 0x108A
CKK_GENERIC_SECRET, CKK_AES = 0x10, 0x1F
CKA_DERIVE, CKA_VALUE_LEN, CKA_TOKEN = 0x10C, 0x161, 0x1
ITERATION, COUNTER, DKM_LENGTH, BYTE_ARRAY = 1, 2, 3, 4
SUM_OF_KEYS = 1
LABEL, CONTEXT = b"conformance label", b"context of the derivation"


class PrfData(C.Structure):
    _fields_ = [("type", ULONG), ("pValue", C.c_void_p), ("ulValueLen", ULONG)]


class CounterFormat(C.Structure):
    _fields_ = [("bLittleEndian", C.c_ubyte), ("ulWidthInBits", ULONG)]


class DkmFormat(C.Structure):
    _fields_ = [("dkmLengthMethod", ULONG), ("bLittleEndian", C.c_ubyte), ("ulWidthInBits", ULONG)]


class DerivedKey(C.Structure):
    _fields_ = [("pTemplate", C.c_void_p), ("ulAttributeCount", ULONG), ("phKey", C.POINTER(ULONG))]


class KdfParams(C.Structure):
    _fields_ = [("prfType", ULONG), ("ulNumberOfDataParams", ULONG), ("pDataParams", C.POINTER(PrfData)),
                ("ulAdditionalDerivedKeys", ULONG), ("pAdditionalDerivedKeys", C.POINTER(DerivedKey))]


class FeedbackParams(C.Structure):
    _fields_ = [("prfType", ULONG), ("ulNumberOfDataParams", ULONG), ("pDataParams", C.POINTER(PrfData)),
                ("ulIVLen", ULONG), ("pIV", C.c_void_p),
                ("ulAdditionalDerivedKeys", ULONG), ("pAdditionalDerivedKeys", C.POINTER(DerivedKey))]


def data_params(token, items):
    """CK_PRF_DATA_PARAMs from (type, ctypes value or bytes or None)."""
    arr = (PrfData * len(items))()
    for d, (ty, value) in zip(arr, items):
        if value is None:
            d.type, d.pValue, d.ulValueLen = ty, None, 0
            continue
        if isinstance(value, bytes):
            value = C.create_string_buffer(value, len(value))
        token.keep.append(value)
        d.type, d.pValue, d.ulValueLen = ty, C.cast(C.pointer(value), C.c_void_p), C.sizeof(value)
    token.keep.append(arr)
    return arr


def counter(width, little=False):
    return CounterFormat(1 if little else 0, width)


def dkm(width):
    return DkmFormat(SUM_OF_KEYS, 0, width)


def readable(token, length):
    return [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET), (CKA_TOKEN, b"\x00"),
            (CKA_SENSITIVE, b"\x00"), (CKA_EXTRACTABLE, b"\x01"), (CKA_VALUE_LEN, length)]


def derive(token, mechanism, param, base, length):
    items = readable(token, length)
    t, out = token.template(items), ULONG(0)
    m = token.mechanism(mechanism, param)
    token.call("C_DeriveKey", token.session, C.byref(m), base, t, ULONG(len(items)), C.byref(out))
    return out


def base_key(token, key_type, value):
    return token.create([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, key_type), (CKA_VALUE, value),
                         (CKA_DERIVE, b"\x01"), (CKA_TOKEN, b"\x00")])


def fixed_input(length):
    return LABEL + b"\x00" + CONTEXT + (8 * length).to_bytes(4, "big")


def counter_hmac(token):
    key, length = os.urandom(32), 42
    data = data_params(token, [(ITERATION, counter(32)), (BYTE_ARRAY, LABEL + b"\x00" + CONTEXT),
                               (DKM_LENGTH, dkm(32))])
    p = KdfParams(CKM_SHA256_HMAC, len(data), data, 0, None)
    got = token.value(derive(token, CKM_SP800_108_COUNTER_KDF, p, base_key(token, CKK_GENERIC_SECRET, key), length))
    want = KBKDFHMAC(hashes.SHA256(), Mode.CounterMode, length, 4, 4, CounterLocation.BeforeFixed,
                     LABEL, CONTEXT, None).derive(key)
    assert got == want, f"token {got.hex()} != cryptography {want.hex()}"


def counter_cmac(token):
    key, length = os.urandom(16), 40
    data = data_params(token, [(BYTE_ARRAY, fixed_input(length)), (ITERATION, counter(8))])
    p = KdfParams(CKM_AES_CMAC, len(data), data, 0, None)
    got = token.value(derive(token, CKM_SP800_108_COUNTER_KDF, p, base_key(token, CKK_AES, key), length))
    want = KBKDFCMAC(algorithms.AES, Mode.CounterMode, length, 1, None, CounterLocation.AfterFixed,
                     None, None, fixed_input(length)).derive(key)
    assert got == want, f"token {got.hex()} != cryptography {want.hex()}"


def prf384(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha384).digest()


def feedback(token):
    key, iv, length = os.urandom(48), os.urandom(48), 100
    fixed = fixed_input(length)
    data = data_params(token, [(ITERATION, None), (COUNTER, counter(32)), (BYTE_ARRAY, fixed)])
    ivbuf = C.create_string_buffer(iv, len(iv))
    token.keep.append(ivbuf)
    p = FeedbackParams(CKM_SHA384_HMAC, len(data), data, len(iv), C.cast(ivbuf, C.c_void_p), 0, None)
    got = token.value(derive(token, CKM_SP800_108_FEEDBACK_KDF, p, base_key(token, CKK_GENERIC_SECRET, key), length))
    out, k = b"", iv
    for i in range(1, 4):
        k = prf384(key, k, i.to_bytes(4, "big"), fixed)
        out += k
    assert got == out[:length], f"token {got.hex()} != SP 800-108 §5.2 {out[:length].hex()}"


def double_pipeline(token):
    key, length = os.urandom(48), 60
    fixed = fixed_input(length)
    data = data_params(token, [(ITERATION, None), (COUNTER, counter(16)), (BYTE_ARRAY, fixed)])
    p = KdfParams(CKM_SHA384_HMAC, len(data), data, 0, None)
    got = token.value(derive(token, CKM_SP800_108_DOUBLE_PIPELINE_KDF, p,
                             base_key(token, CKK_GENERIC_SECRET, key), length))
    out, a = b"", fixed
    for i in range(1, 3):
        a = prf384(key, a)
        out += prf384(key, a, i.to_bytes(2, "big"), fixed)
    assert got == out[:length], f"token {got.hex()} != SP 800-108 §5.3 {out[:length].hex()}"


def additional_keys(token):
    key, lengths = os.urandom(32), [16, 40, 24]
    total = sum(lengths)
    handles = [ULONG(0), ULONG(0)]
    templates = [token.template(readable(token, n)) for n in lengths[1:]]
    keys = (DerivedKey * 2)()
    for d, t, h in zip(keys, templates, handles):
        d.pTemplate, d.ulAttributeCount, d.phKey = C.cast(t, C.c_void_p), len(t), C.pointer(h)
    token.keep.extend([handles, keys])
    data = data_params(token, [(ITERATION, counter(32)), (BYTE_ARRAY, LABEL), (DKM_LENGTH, dkm(32))])
    p = KdfParams(CKM_SHA256_HMAC, len(data), data, 2, keys)
    primary = derive(token, CKM_SP800_108_COUNTER_KDF, p, base_key(token, CKK_GENERIC_SECRET, key), lengths[0])
    got = [token.value(primary), token.value(handles[0]), token.value(handles[1])]

    def block(i):
        return hmac.new(key, i.to_bytes(4, "big") + LABEL + (8 * total).to_bytes(4, "big"), hashlib.sha256).digest()
    want = [block(1)[:16], (block(2) + block(3))[:40], block(4)[:24]]
    assert got == want, f"token {[g.hex() for g in got]} != {[w.hex() for w in want]}"


class HkdfParams(C.Structure):
    _fields_ = [("bExtract", C.c_ubyte), ("bExpand", C.c_ubyte), ("prfHashMechanism", ULONG),
                ("ulSaltType", ULONG), ("pSalt", C.c_void_p), ("ulSaltLen", ULONG), ("hSaltKey", ULONG),
                ("pInfo", C.c_void_p), ("ulInfoLen", ULONG)]


def hkdf_data(token):
    CKM_HKDF_DATA, CKM_SHA256, CKF_HKDF_SALT_DATA, CKO_DATA = 0x402B, 0x250, 2, 0
    key, salt, info, length = os.urandom(32), os.urandom(16), b"conformance info", 50
    bufs = [C.create_string_buffer(b, len(b)) for b in (salt, info)]
    token.keep.extend(bufs)
    p = HkdfParams(1, 1, CKM_SHA256, CKF_HKDF_SALT_DATA, C.cast(bufs[0], C.c_void_p), len(salt), 0,
                   C.cast(bufs[1], C.c_void_p), len(info))
    items = [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, b"\x00"), (CKA_VALUE_LEN, length)]
    t, out = token.template(items), ULONG(0)
    m = token.mechanism(CKM_HKDF_DATA, p)
    base = base_key(token, CKK_GENERIC_SECRET, key)
    token.call("C_DeriveKey", token.session, C.byref(m), base, t, ULONG(len(items)), C.byref(out))
    got = token.value(out)
    want = HKDF(hashes.SHA256(), length, salt, info).derive(key)
    assert got == want, f"token {got.hex()} != cryptography {want.hex()}"


def main():
    module, pin, mode = sys.argv[1:4]
    token = Token(module, pin)
    {"counter-hmac": counter_hmac, "counter-cmac": counter_cmac, "feedback": feedback,
     "double-pipeline": double_pipeline, "additional-keys": additional_keys, "hkdf-data": hkdf_data}[mode](token)
    token.finalize()


if __name__ == "__main__":
    main()
