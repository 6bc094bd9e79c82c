#!/usr/bin/env python3
"""X-Wing (the vendor hybrid KEM CKM_CV_XWING) between the token and an independent
implementation written here from draft-connolly-cfrg-xwing-kem-06 over kyber-py's
ML-KEM-768, `cryptography`'s X25519 and hashlib's SHA3-256:

  ss = SHA3-256(ss_M || ss_X || ct_X || pk_X || "\\.//^\\")

  python-encapsulates  the token makes a key pair; Python encapsulates to its public key;
                       the token decapsulates to the same secret
  token-encapsulates   Python makes a key pair; the token imports the public key and
                       encapsulates; Python decapsulates to the same secret

usage: xwing.py MODULE PIN python-encapsulates|token-encapsulates
"""
import ctypes as C
import hashlib
import os
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kyber_py.ml_kem import ML_KEM_768

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ck import CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE, CKO_PUBLIC_KEY, ULONG, Token  # noqa: E402

CKK_CV_XWING = 0xC3560001
CKM_CV_XWING_KEY_PAIR_GEN, CKM_CV_XWING = 0xC3560010, 0xC3560011
LABEL = b"\\.//^\\"


def raw(public_key):
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def combine(ss_m, ss_x, ct_x, pk_x):
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + LABEL).digest()


def encapsulate(pk):
    pk_m, pk_x = pk[:1184], pk[1184:]
    ss_m, ct_m = ML_KEM_768.encaps(pk_m)
    ek_x = X25519PrivateKey.generate()
    ct_x = raw(ek_x.public_key())
    ss_x = ek_x.exchange(X25519PublicKey.from_public_bytes(pk_x))
    return ct_m + ct_x, combine(ss_m, ss_x, ct_x, pk_x)


def main():
    module, pin, mode = sys.argv[1:4]
    token = Token(module, pin)
    if mode == "python-encapsulates":
        pub, priv = token.generate_pair(CKM_CV_XWING_KEY_PAIR_GEN, [], [])
        pk = token.value(pub)
        assert len(pk) == 1216, len(pk)
        ct, ss = encapsulate(pk)
        m, secret = token.mechanism(CKM_CV_XWING), ULONG(0)
        t = token.readable_secret()
        token.call("C_DecapsulateKey", token.session, C.byref(m), priv, t, ULONG(len(t)), ct, ULONG(len(ct)), C.byref(secret))
        assert token.value(secret) == ss, "the token's secret differs from Python's"
    elif mode == "token-encapsulates":
        ek_m, dk_m = ML_KEM_768.keygen()
        sk_x = X25519PrivateKey.generate()
        pk_x = raw(sk_x.public_key())
        public = token.create([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_CV_XWING), (CKA_VALUE, ek_m + pk_x)])
        m, secret = token.mechanism(CKM_CV_XWING), ULONG(0)
        t = token.readable_secret()
        ct, size = C.create_string_buffer(1120), ULONG(1120)
        token.call("C_EncapsulateKey", token.session, C.byref(m), public, t, ULONG(len(t)), ct, C.byref(size), C.byref(secret))
        ct = ct.raw[: size.value]
        ct_m, ct_x = ct[:1088], ct[1088:]
        ss_m = ML_KEM_768.decaps(dk_m, ct_m)
        ss_x = sk_x.exchange(X25519PublicKey.from_public_bytes(ct_x))
        assert token.value(secret) == combine(ss_m, ss_x, ct_x, pk_x), "Python's secret differs from the token's"
    else:
        raise SystemExit(__doc__)
    token.finalize()
    print(f"ok: {mode}")


if __name__ == "__main__":
    main()
