#!/usr/bin/env python3
"""The audit checkpoints' signatures, checked by independent implementations from what
`cvault audit key --json` exports and the store holds: ML-DSA-65 by dilithium-py (pure
ML-DSA, empty context), ECDSA P-256 by pyca/cryptography (over SHA-256 of the message).

  mldsa   every checkpoint's ML-DSA-65 signature verifies under the exported key (a
          SubjectPublicKeyInfo with id-ml-dsa-65, 2.16.840.1.101.3.4.3.18), and a
          flipped bit does not
  ecdsa   every checkpoint's ECDSA P-256 signature verifies under the exported key

usage: audit_pq.py CVAULT STORE_FILE mldsa|ecdsa
"""
import base64
import json
import sqlite3
import struct
import subprocess
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from dilithium_py.ml_dsa import ML_DSA_65

# SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.3.18 } BIT STRING { 0 unused bits, pk } }
MLDSA65_SPKI_PREFIX = bytes.fromhex("308207b2300b0609608648016503040312038207a100")


def message(number, seq, entry_hash):
    return b"collabvault-checkpoint-v1" + struct.pack(">qq", number, seq) + entry_hash


def checkpoints(store, columns):
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = db.execute(f"SELECT number, entry_seq, entry_hash, {columns} FROM audit_checkpoints ORDER BY number")
    return rows.fetchall()


def main(cvault, store, case):
    keys = json.loads(subprocess.run([cvault, "audit", "key", "--json"], check=True, capture_output=True).stdout)
    if case == "mldsa":
        pem = keys["ml_dsa_65"]
        der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
        assert der.startswith(MLDSA65_SPKI_PREFIX) and len(der) == len(MLDSA65_SPKI_PREFIX) + 1952, der[:24].hex()
        pk = der[len(MLDSA65_SPKI_PREFIX):]
        rows = checkpoints(store, "mldsa_signature, mldsa_public_key")
        assert rows, "no checkpoint"
        for number, seq, h, sig, stored_pk in rows:
            assert stored_pk == pk, f"checkpoint {number} names another key"
            m = message(number, seq, h)
            assert ML_DSA_65.verify(pk, m, sig), f"dilithium-py refuses checkpoint {number}"
            bad = bytearray(sig)
            bad[5] ^= 1
            assert not ML_DSA_65.verify(pk, m, bytes(bad)), "dilithium-py accepts a flipped bit"
        print(f"{len(rows)} ML-DSA-65 checkpoint signature(s) verified by dilithium-py")
    elif case == "ecdsa":
        key = serialization.load_pem_public_key(keys["ecdsa_p256"].encode())
        rows = checkpoints(store, "signature")
        for number, seq, h, sig in rows:
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, message(number, seq, h), ec.ECDSA(hashes.SHA256()))
        print(f"{len(rows)} ECDSA P-256 checkpoint signature(s) verified by pyca/cryptography")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(*sys.argv[1:])
