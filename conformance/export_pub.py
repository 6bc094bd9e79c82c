#!/usr/bin/env python3
"""Exports a token public key (found by CKA_ID) as PEM: RSA from CKA_MODULUS and
CKA_PUBLIC_EXPONENT, EC (P-256/384/521) and Ed25519 from CKA_EC_POINT.

Built with python-pkcs11 and `cryptography` rather than `pkcs11-tool --read-object`,
whose 0.23 EC export has a use-after-free (OpenSC #3200).

usage: export_pub.py MODULE ID_HEX OUT.pem
"""
import sys

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pkcs11 import Attribute, KeyType, ObjectClass

module, key_id, out = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
token = pkcs11.lib(module).get_slots(token_present=True)[0].get_token()
with token.open() as session:
    key = next(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id}))
    key_type = key[Attribute.KEY_TYPE]
    if key_type == KeyType.RSA:
        n = int.from_bytes(key[Attribute.MODULUS], "big")
        e = int.from_bytes(key[Attribute.PUBLIC_EXPONENT], "big")
        public = rsa.RSAPublicNumbers(e, n).public_key()
    else:
        point = key[Attribute.EC_POINT]
        # CKA_EC_POINT is a DER OCTET STRING (one or two length bytes).
        if point[0] == 0x04 and point[1] < 0x80 and len(point) == point[1] + 2:
            point = point[2:]
        elif point[0] == 0x04 and point[1] == 0x81 and len(point) == point[2] + 3:
            point = point[3:]
        if len(point) == 32:
            public = ed25519.Ed25519PublicKey.from_public_bytes(point)
        else:
            curve = {65: ec.SECP256R1(), 97: ec.SECP384R1(), 133: ec.SECP521R1()}[len(point)]
            public = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
with open(out, "wb") as f:
    f.write(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
