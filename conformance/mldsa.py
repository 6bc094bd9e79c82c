#!/usr/bin/env python3
"""ML-DSA-65 (FIPS 204) between the token and an independent implementation, dilithium-py:
a ctypes client of the module's C ABI (python-pkcs11 does not know the 3.2 ML-DSA
types yet).

  token-signs    the token makes a key pair and signs with a context; dilithium-py
                 verifies with the exported public key (and refuses another context)
  token-verifies dilithium-py makes a key pair and signs; the token imports the public
                 key and verifies (and refuses a flipped bit)

usage: mldsa.py MODULE PIN token-signs|token-verifies
"""
import ctypes as C
import os
import sys

from dilithium_py.ml_dsa import ML_DSA_65

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ck import CKA_CLASS, CKA_KEY_TYPE, CKA_PARAMETER_SET, CKA_SIGN, CKA_VALUE, CKA_VERIFY, CKO_PUBLIC_KEY, CKR_OK, ULONG, Token

CKK_ML_DSA = 0x4A
CKP_ML_DSA_65 = 2
CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA = 0x1C, 0x1D
CKH_HEDGE_PREFERRED = 0
CKR_SIGNATURE_INVALID = 0xC0


class SignContext(C.Structure):
    _fields_ = [("hedgeVariant", ULONG), ("pContext", C.c_void_p), ("ulContextLen", ULONG)]


def context(token, ctx):
    buf = C.create_string_buffer(ctx, len(ctx))
    token.keep.append(buf)
    return SignContext(CKH_HEDGE_PREFERRED, C.cast(buf, C.c_void_p), len(ctx))


def sign(token, key, message, ctx):
    m = token.mechanism(CKM_ML_DSA, context(token, ctx))
    token.call("C_SignInit", token.session, C.byref(m), key)
    size = ULONG(0)
    token.call("C_Sign", token.session, message, ULONG(len(message)), None, C.byref(size))
    sig = C.create_string_buffer(size.value)
    token.call("C_Sign", token.session, message, ULONG(len(message)), sig, C.byref(size))
    return sig.raw[: size.value]


def verify(token, key, message, sig, ctx):
    m = token.mechanism(CKM_ML_DSA, context(token, ctx))
    token.call("C_VerifyInit", token.session, C.byref(m), key)
    return token.rv("C_Verify", token.session, message, ULONG(len(message)), sig, ULONG(len(sig)))


def main():
    module, pin, mode = sys.argv[1:4]
    token = Token(module, pin)
    message, context = b"CollabVault conformance: ML-DSA-65", b"cv-conformance"
    if mode == "token-signs":
        pub, priv = token.generate_pair(CKM_ML_DSA_KEY_PAIR_GEN, [(CKA_PARAMETER_SET, CKP_ML_DSA_65), (CKA_VERIFY, b"\x01")], [(CKA_SIGN, b"\x01")])
        pk = token.value(pub)
        sig = sign(token, priv, message, context)
        assert len(pk) == 1952 and len(sig) == 3309, (len(pk), len(sig))
        assert ML_DSA_65.verify(pk, message, sig, ctx=context), "dilithium-py refuses the token's signature"
        assert not ML_DSA_65.verify(pk, message, sig, ctx=b"other"), "dilithium-py accepts another context"
    elif mode == "token-verifies":
        pk, sk = ML_DSA_65.keygen()
        sig = ML_DSA_65.sign(sk, message, ctx=context)
        key = token.create([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_ML_DSA), (CKA_PARAMETER_SET, CKP_ML_DSA_65), (CKA_VERIFY, b"\x01"), (CKA_VALUE, pk)])
        rv = verify(token, key, message, sig, context)
        assert rv == CKR_OK, f"the token refuses dilithium-py's signature: {rv:#x}"
        flipped = bytes([sig[0] ^ 1]) + sig[1:]
        rv = verify(token, key, message, flipped, context)
        assert rv == CKR_SIGNATURE_INVALID, f"a flipped bit: {rv:#x}"
    else:
        raise SystemExit(__doc__)
    token.finalize()
    print(f"ok: {mode}")


if __name__ == "__main__":
    main()
