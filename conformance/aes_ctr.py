#!/usr/bin/env python3
"""AES-CTR through the token (pkcs11-tool 0.23 has no CKM_AES_CTR): encrypts or decrypts a
file with the AES key found by CKA_ID, CK_AES_CTR_PARAMS = 128 counter bits and the IV.

usage: aes_ctr.py MODULE PIN ID_HEX IV_HEX encrypt|decrypt IN OUT
"""
import struct
import sys

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass

module, pin, key_id, iv, op, src, dst = sys.argv[1:8]
token = pkcs11.lib(module).get_slots(token_present=True)[0].get_token()
# CK_AES_CTR_PARAMS on LP64: CK_ULONG ulCounterBits, CK_BYTE cb[16].
param = struct.pack("=Q16s", 128, bytes.fromhex(iv))
with token.open(user_pin=pin) as session:
    key = next(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: bytes.fromhex(key_id)}))
    data = open(src, "rb").read()
    fn = key.encrypt if op == "encrypt" else key.decrypt
    out = fn(data, mechanism=Mechanism.AES_CTR, mechanism_param=param)
open(dst, "wb").write(out)
