#!/usr/bin/env python3
"""Exports a token's EC public key (found by CKA_ID) as PEM, built from CKA_EC_POINT.

pkcs11-tool 0.23's --read-object --type pubkey has a use-after-free for EC keys (OpenSC
issue #3200) that makes it fail depending on memory layout, so the conformance scripts
export through python-pkcs11 and `cryptography` instead.

usage: export_ec_pub.py MODULE ID_HEX OUT.pem
"""
import sys

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, ObjectClass

module, key_id, out = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
token = pkcs11.lib(module).get_slots(token_present=True)[0].get_token()
with token.open() as session:
    key = next(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id}))
    point = key[Attribute.EC_POINT]
# CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
if point[0] == 0x04 and len(point) == point[1] + 2:
    point = point[2:]
public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
with open(out, "wb") as f:
    f.write(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
