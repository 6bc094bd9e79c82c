#!/usr/bin/env python3
"""ML-KEM-768 (CKM_ML_KEM, FIPS 203) between the token and kyber-py's ML_KEM_768, an
independent implementation:

  python-encapsulates  the token makes a key pair; kyber-py encapsulates to its public
                       key; the token decapsulates to the same secret
  token-encapsulates   kyber-py makes a key pair; the token imports the public key and
                       encapsulates, and imports the expanded private key and
                       decapsulates; kyber-py's and both of the token's secrets agree

usage: mlkem.py MODULE PIN python-encapsulates|token-encapsulates
"""
import ctypes as C
import os
import sys

from kyber_py.ml_kem import ML_KEM_768

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ck import (  # noqa: E402
    CKA_CLASS, CKA_KEY_TYPE, CKA_PARAMETER_SET, CKA_VALUE, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, ULONG, Token,
)

CKK_ML_KEM, CKM_ML_KEM_KEY_PAIR_GEN, CKM_ML_KEM, CKP_ML_KEM_768 = 0x49, 0xF, 0x17, 2
CKA_ENCAPSULATE, CKA_DECAPSULATE = 0x633, 0x634
CT_LEN = 1088


def decapsulate(token, private, ct):
    m, secret = token.mechanism(CKM_ML_KEM), ULONG(0)
    t = token.readable_secret()
    token.call("C_DecapsulateKey", token.session, C.byref(m), private, t, ULONG(len(t)), ct, ULONG(len(ct)),
               C.byref(secret))
    return token.value(secret)


def main():
    module, pin, mode = sys.argv[1:4]
    token = Token(module, pin)
    if mode == "python-encapsulates":
        pub, priv = token.generate_pair(CKM_ML_KEM_KEY_PAIR_GEN, [(CKA_PARAMETER_SET, CKP_ML_KEM_768)], [])
        ek = token.value(pub)
        assert len(ek) == 1184, len(ek)
        ss, ct = ML_KEM_768.encaps(ek)
        assert decapsulate(token, priv, ct) == ss, "the token's secret differs from kyber-py's"
    elif mode == "token-encapsulates":
        ek, dk = ML_KEM_768.keygen()
        base = [(CKA_KEY_TYPE, CKK_ML_KEM), (CKA_PARAMETER_SET, CKP_ML_KEM_768)]
        public = token.create([(CKA_CLASS, CKO_PUBLIC_KEY), *base, (CKA_VALUE, ek), (CKA_ENCAPSULATE, b"\x01")])
        private = token.create([(CKA_CLASS, CKO_PRIVATE_KEY), *base, (CKA_VALUE, dk), (CKA_DECAPSULATE, b"\x01")])
        m, secret = token.mechanism(CKM_ML_KEM), ULONG(0)
        t = token.readable_secret()
        ct, size = C.create_string_buffer(CT_LEN), ULONG(CT_LEN)
        token.call("C_EncapsulateKey", token.session, C.byref(m), public, t, ULONG(len(t)), ct, C.byref(size),
                   C.byref(secret))
        ct = ct.raw[: size.value]
        ss = token.value(secret)
        assert ML_KEM_768.decaps(dk, ct) == ss, "kyber-py's secret differs from the token's"
        assert decapsulate(token, private, ct) == ss, "the imported private key decapsulates otherwise"
    else:
        raise SystemExit(__doc__)
    token.finalize()
    print(f"ok: {mode}")


if __name__ == "__main__":
    main()
