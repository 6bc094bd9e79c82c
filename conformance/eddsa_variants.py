#!/usr/bin/env python3
"""CKM_EDDSA's Ed25519ctx and Ed25519ph (CK_EDDSA_PARAMS) against an independent Ed25519
written here from RFC 8032 §5.1 (integer arithmetic mod 2^255-19, dom2 prefix, SHA-512
pre-hash), which first proves itself on the RFC's §7.2 and §7.3 vectors.
`cryptography` offers only pure Ed25519, so it cannot be the other side here.

  token-signs   the token makes a key pair and signs random messages under each variant
                and random contexts; Python verifies (and refuses them under another
                variant or context)
  python-signs  Python signs with a random seed; the token verifies with the imported
                public key, and refuses a signature of another variant

usage: eddsa_variants.py MODULE PIN MODE
"""
import ctypes as C
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ck import CKA_CLASS, CKA_KEY_TYPE, CKA_SIGN, CKA_VERIFY, CKO_PUBLIC_KEY, ULONG, Token  # noqa: E402

CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA = 0x1055, 0x1057
CKK_EC_EDWARDS = 0x40
CKA_TOKEN, CKA_EC_PARAMS, CKA_EC_POINT = 0x1, 0x180, 0x181
CKR_SIGNATURE_INVALID = 0xC0
ED25519_OID = bytes.fromhex("06032b6570")

# --- RFC 8032 §5.1 over Python integers -------------------------------------------------
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    cc, dd = 2 * t1 * t2 * D % P, 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(s, pt):
    acc = (0, 1, 1, 0)
    while s:
        if s & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        s >>= 1
    return acc


def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if (x & 1) != sign else x


GY = 4 * pow(5, P - 2, P) % P
GX = recover_x(GY, 0)
G = (GX, GY, 1, GX * GY % P)


def compress(pt):
    zi = pow(pt[2], P - 2, P)
    x, y = pt[0] * zi % P, pt[1] * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def decompress(b):
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def same(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def hq(*parts):
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % L


def dom2(ph, ctx):
    return b"SigEd25519 no Ed25519 collisions" + bytes([ph, len(ctx)]) + ctx


def prepare(variant, ctx, msg):
    """(dom, message as signed) for 'pure', 'ctx' or 'ph'."""
    if variant == "ph":
        return dom2(1, ctx), hashlib.sha512(msg).digest()
    return (dom2(0, ctx) if variant == "ctx" else b""), msg


def public_of(seed):
    h = hashlib.sha512(seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    return a, h[32:], compress(mul(a, G))


def sign(seed, variant, ctx, msg):
    a, prefix, pub = public_of(seed)
    dom, m = prepare(variant, ctx, msg)
    r = hq(dom, prefix, m)
    rs = compress(mul(r, G))
    return rs + ((r + hq(dom, rs, pub, m) * a) % L).to_bytes(32, "little")


def verify(pub, variant, ctx, msg, sig):
    a, r = decompress(pub), decompress(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= L:
        return False
    dom, m = prepare(variant, ctx, msg)
    return same(mul(s, G), add(r, mul(hq(dom, sig[:32], pub, m), a)))


def self_test():
    """RFC 8032 §7.2 (foo) and §7.3 (abc): this implementation is the RFC's."""
    seed = bytes.fromhex("0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6")
    want = ("55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a"
            "8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d")
    assert sign(seed, "ctx", b"foo", bytes.fromhex("f726936d19c800494e3fdaff20b276a8")).hex() == want
    seed = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    want = ("98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
            "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406")
    assert sign(seed, "ph", b"", b"abc").hex() == want


# --- the token ----------------------------------------------------------------------------
class EddsaParams(C.Structure):
    _fields_ = [("phFlag", C.c_ubyte), ("ulContextDataLen", ULONG), ("pContextData", C.c_void_p)]


def mechanism(token, variant, ctx):
    if variant == "pure":
        return token.mechanism(CKM_EDDSA)
    buf = C.create_string_buffer(ctx, max(len(ctx), 1))
    token.keep.append(buf)
    return token.mechanism(CKM_EDDSA, EddsaParams(1 if variant == "ph" else 0, len(ctx), C.cast(buf, C.c_void_p)))


def token_sign(token, key, variant, ctx, msg):
    m, sig, n = mechanism(token, variant, ctx), C.create_string_buffer(64), ULONG(64)
    token.call("C_SignInit", token.session, C.byref(m), key)
    token.call("C_Sign", token.session, msg, ULONG(len(msg)), sig, C.byref(n))
    return sig.raw[: n.value]


def token_verify_rv(token, key, variant, ctx, msg, sig):
    m = mechanism(token, variant, ctx)
    token.call("C_VerifyInit", token.session, C.byref(m), key)
    return token.rv("C_Verify", token.session, msg, ULONG(len(msg)), sig, ULONG(len(sig)))


def ec_point(token, handle):
    from ck import Attribute
    a = Attribute(CKA_EC_POINT, None, 0)
    token.call("C_GetAttributeValue", token.session, handle, C.byref(a), ULONG(1))
    buf = C.create_string_buffer(a.ulValueLen)
    a.pValue = C.cast(buf, C.c_void_p)
    token.call("C_GetAttributeValue", token.session, handle, C.byref(a), ULONG(1))
    der = buf.raw[: a.ulValueLen]
    assert der[:2] == b"\x04\x20", der.hex()
    return der[2:]


CASES = [("ctx", b"foo"), ("ctx", os.urandom(255)), ("ph", b""), ("ph", os.urandom(17))]


def token_signs(token):
    pub_h, priv_h = token.generate_pair(
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        [(CKA_EC_PARAMS, ED25519_OID), (CKA_VERIFY, b"\x01"), (CKA_TOKEN, b"\x00")],
        [(CKA_SIGN, b"\x01"), (CKA_TOKEN, b"\x00")])
    pub = ec_point(token, pub_h)
    for variant, ctx in CASES:
        msg = os.urandom(100)
        sig = token_sign(token, priv_h, variant, ctx, msg)
        assert verify(pub, variant, ctx, msg, sig), f"{variant} ctx={ctx[:8].hex()}: Python refuses the token's"
        other = "ph" if variant == "ctx" else "ctx"
        assert not verify(pub, other, ctx or b"x", msg, sig), f"{variant}: verifies as {other}"
        changed = ctx[:-1] + bytes([ctx[-1] ^ 1]) if ctx else b"!"
        assert not verify(pub, variant, changed, msg, sig), f"{variant}: verifies under another context"


def python_signs(token):
    seed = os.urandom(32)
    pub = public_of(seed)[2]
    key = token.create([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_EC_EDWARDS), (CKA_EC_PARAMS, ED25519_OID),
                        (CKA_EC_POINT, b"\x04\x20" + pub), (CKA_VERIFY, b"\x01"), (CKA_TOKEN, b"\x00")])
    for variant, ctx in CASES:
        msg = os.urandom(64)
        sig = sign(seed, variant, ctx, msg)
        rv = token_verify_rv(token, key, variant, ctx, msg, sig)
        assert rv == 0, f"{variant}: the token refuses Python's signature: CKR {rv:#x}"
        rv = token_verify_rv(token, key, "pure", b"", msg, sig)
        assert rv == CKR_SIGNATURE_INVALID, f"{variant}: pure Ed25519 answered CKR {rv:#x}"


def main():
    module, pin, mode = sys.argv[1:4]
    self_test()
    token = Token(module, pin)
    {"token-signs": token_signs, "python-signs": python_signs}[mode](token)
    token.finalize()


if __name__ == "__main__":
    main()
