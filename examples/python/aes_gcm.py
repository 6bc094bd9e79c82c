#!/usr/bin/env python3
"""AES-256-GCM on a CollabVault token with python-pkcs11 (pip install python-pkcs11).

    python3 examples/python/aes_gcm.py target/release/libcollabvault_pkcs11.so <token-label> <user-pin>

Generates an AES key on the token (a session object: gone when the session closes),
encrypts with a fresh 96-bit IV and associated data, decrypts, and shows that a flipped
ciphertext bit is refused. The key's bytes never leave the token.
"""

import os
import sys

import pkcs11
from pkcs11 import GCMParams, KeyType, Mechanism
from pkcs11.exceptions import EncryptedDataInvalid


def main(module, token_label, user_pin):
    lib = pkcs11.lib(module)
    token = lib.get_token(token_label=token_label)
    with token.open(user_pin=user_pin, rw=True) as session:
        key = session.generate_key(KeyType.AES, 256, label="python example")
        print(f"generated {key.key_length}-bit AES key {key.label!r} on token {token.label!r}")

        plaintext = b"the quarterly numbers"
        aad = b"report-2026-q4"
        iv = os.urandom(12)  # never reuse an IV with the same key
        params = GCMParams(iv, aad, 128)
        ciphertext = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        print(f"encrypted {len(plaintext)} bytes -> {len(ciphertext)} bytes (ciphertext || 16-byte tag)")

        back = key.decrypt(ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        assert back == plaintext, "round trip differs"
        print(f"decrypted: {back.decode()}")

        tampered = bytearray(ciphertext)
        tampered[0] ^= 1
        try:
            key.decrypt(bytes(tampered), mechanism=Mechanism.AES_GCM, mechanism_param=params)
        except EncryptedDataInvalid:
            print("tampered ciphertext refused (CKR_ENCRYPTED_DATA_INVALID)")
        else:
            raise AssertionError("tampered ciphertext was accepted")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} <module.so> <token-label> <user-pin>")
    main(*sys.argv[1:])
