#!/usr/bin/env python3
"""MLKEM768-P256 and MLKEM1024-P384 (the vendor hybrid KEMs CKM_CV_MLKEM768_P256 and
CKM_CV_MLKEM1024_P384) between the token and an independent implementation written here
from draft-irtf-cfrg-concrete-hybrid-kems-04 (the CG framework of
draft-irtf-cfrg-hybrid-kems-12) over kyber-py's ML-KEM, `cryptography`'s P-256/P-384 and
hashlib's SHAKE256 and SHA3-256:

  (ss_PQ, ss_T) from ML-KEM and ECDH;  ss = SHA3-256(ss_PQ || ss_T || ct_T || ek_T || label)
  private key: a 32-byte seed; SHAKE256(seed) = ML-KEM d || z, then the group's seed,
  whose first in-range 32/48-byte block is the scalar

No installable package implements this draft (pyhpke and `cryptography` have no hybrid
KEM of it), so this second implementation is ours, sharing no code with the token's.

  python-encapsulates  the token makes a key pair; Python encapsulates to its public key;
                       the token decapsulates to the same secret
  token-encapsulates   Python makes a key pair; the token imports the public key and
                       encapsulates; Python decapsulates to the same secret
  seed-import          Python derives a key pair from a seed; the token imports the seed
                       as the private key and decapsulates Python's ciphertext to
                       Python's secret (so both derive the same key from the seed)

usage: hybrid_kem.py MODULE PIN mlkem768-p256|mlkem1024-p384 MODE
"""
import ctypes as C
import hashlib
import os
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kyber_py.ml_kem import ML_KEM_768, ML_KEM_1024

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ck import CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, ULONG, Token  # noqa: E402

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
                 "581a0db248b0a77aecec196accc52973", 16)

KEMS = {
    "mlkem768-p256": dict(key_type=0xC3560002, gen=0xC3560012, kem=0xC3560013, label=b"MLKEM768-P256",
                          mlkem=ML_KEM_768, nek_pq=1184, nct_pq=1088, curve=ec.SECP256R1(), nseed=128,
                          nscalar=32, order=P256_ORDER, nek=1249, nct=1153),
    "mlkem1024-p384": dict(key_type=0xC3560003, gen=0xC3560014, kem=0xC3560015, label=b"MLKEM1024-P384",
                           mlkem=ML_KEM_1024, nek_pq=1568, nct_pq=1568, curve=ec.SECP384R1(), nseed=48,
                           nscalar=48, order=P384_ORDER, nek=1665, nct=1665),
}


def random_scalar(k, seed):
    for start in range(0, len(seed) - k["nscalar"] + 1, k["nscalar"]):
        x = int.from_bytes(seed[start:start + k["nscalar"]], "big")
        if 0 < x < k["order"]:
            return ec.derive_private_key(x, k["curve"])
    raise ValueError("rejection sampling failed")


def element(key):
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def derive(k, seed):
    """DeriveKeyPair: (ML-KEM dk, EC private key, ek)."""
    full = hashlib.shake_256(seed).digest(64 + k["nseed"])
    ek_pq, dk_pq = k["mlkem"].key_derive(full[:64])
    dk_t = random_scalar(k, full[64:])
    return dk_pq, dk_t, ek_pq + element(dk_t)


def combine(k, ss_pq, ss_t, ct_t, ek_t):
    return hashlib.sha3_256(ss_pq + ss_t + ct_t + ek_t + k["label"]).digest()


def encapsulate(k, ek):
    ek_pq, ek_t = ek[:k["nek_pq"]], ek[k["nek_pq"]:]
    ss_pq, ct_pq = k["mlkem"].encaps(ek_pq)
    sk_e = random_scalar(k, os.urandom(k["nseed"]))
    ct_t = element(sk_e)
    ss_t = sk_e.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(k["curve"], ek_t))
    return ct_pq + ct_t, combine(k, ss_pq, ss_t, ct_t, ek_t)


def decapsulate(k, dk_pq, dk_t, ek, ct):
    ct_pq, ct_t = ct[:k["nct_pq"]], ct[k["nct_pq"]:]
    ss_pq = k["mlkem"].decaps(dk_pq, ct_pq)
    ss_t = dk_t.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(k["curve"], ct_t))
    return combine(k, ss_pq, ss_t, ct_t, ek[k["nek_pq"]:])


def token_decapsulates(token, k, private, ct):
    m, secret = token.mechanism(k["kem"]), ULONG(0)
    t = token.readable_secret()
    token.call("C_DecapsulateKey", token.session, C.byref(m), private, t, ULONG(len(t)), ct, ULONG(len(ct)),
               C.byref(secret))
    return token.value(secret)


def main():
    module, pin, name, mode = sys.argv[1:5]
    k = KEMS[name]
    token = Token(module, pin)
    if mode == "python-encapsulates":
        pub, priv = token.generate_pair(k["gen"], [], [])
        ek = token.value(pub)
        assert len(ek) == k["nek"], len(ek)
        ct, ss = encapsulate(k, ek)
        assert token_decapsulates(token, k, priv, ct) == ss, "the token's secret differs from Python's"
    elif mode == "token-encapsulates":
        dk_pq, dk_t, ek = derive(k, os.urandom(32))
        public = token.create([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, k["key_type"]), (CKA_VALUE, ek)])
        m, secret = token.mechanism(k["kem"]), ULONG(0)
        t = token.readable_secret()
        ct, size = C.create_string_buffer(k["nct"]), ULONG(k["nct"])
        token.call("C_EncapsulateKey", token.session, C.byref(m), public, t, ULONG(len(t)), ct, C.byref(size),
                   C.byref(secret))
        assert size.value == k["nct"], size.value
        got = decapsulate(k, dk_pq, dk_t, ek, ct.raw[: size.value])
        assert token.value(secret) == got, "Python's secret differs from the token's"
    elif mode == "seed-import":
        seed = os.urandom(32)
        _, _, ek = derive(k, seed)
        private = token.create([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, k["key_type"]), (CKA_VALUE, seed)])
        ct, ss = encapsulate(k, ek)
        assert token_decapsulates(token, k, private, ct) == ss, "the token derived another key from the seed"
    else:
        raise SystemExit(__doc__)
    token.finalize()
    print(f"ok: {name} {mode}")


if __name__ == "__main__":
    main()
