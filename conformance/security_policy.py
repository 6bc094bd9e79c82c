#!/usr/bin/env python3
"""The token's security policy as a PKCS#11 client meets it (python-pkcs11): a user
cannot make a key trusted, a key that wraps cannot decrypt what it wrapped, HMAC refuses
AES keys, and RSA key transport is OAEP unless PKCS#1 v1.5 is configured.

Run by conformance/security.sh on an initialized token. Environment: CV_RESULTS, MODULE,
CV_TOKEN_LABEL, USER_PIN. Exits 0 when it could record its results.
"""

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from casekit import case, expect, run  # noqa: E402
import casekit  # noqa: E402

CLIENT = "security"

try:
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism, MGF, ObjectClass
    from pkcs11 import exceptions as ckr
except Exception:  # a missing package is a failure, never a skip
    casekit.record(CLIENT, "import-python-pkcs11", False, traceback.format_exc())
    sys.exit(0)


# python-pkcs11 has no exception class for this code: it raises PKCS11Error naming it.
CKR_KEY_FUNCTION_NOT_PERMITTED = 0x68


def refused(what, error, fn):
    """fn must fail with exactly `error`: a python-pkcs11 exception class, or a CKR_ code
    the binding leaves unmapped (then its message must name the code)."""
    try:
        fn()
    except pkcs11.PKCS11Error as e:
        casekit.NOTES.append(f"{what}: {type(e).__name__} {e}".rstrip())
        if isinstance(error, int):
            expect(type(e) is pkcs11.PKCS11Error and hex(error) in str(e), f"{what}: wanted {hex(error)}, got {e!r}")
        else:
            expect(type(e) is error, f"{what}: wanted {error.__name__}, got {type(e).__name__}")
        return
    raise AssertionError(f"{what}: the token accepted it")


def secret(session, key_type, label, **flags):
    attrs = {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: key_type,
        Attribute.VALUE: os.urandom(32),
        Attribute.LABEL: label,
        Attribute.TOKEN: False,
        Attribute.PRIVATE: True,
    }
    attrs.update({getattr(Attribute, k.upper()): v for k, v in flags.items()})
    return session.create_object(attrs)


@case
def open_session_and_login(ctx):
    ctx["session"] = casekit.user_session()


@case
def a_user_cannot_make_a_key_trusted(ctx):
    refused("create CKA_TRUSTED=true as the user", ckr.AttributeReadOnly,
            lambda: secret(ctx["session"], KeyType.AES, "trusted", trusted=True))


@case
def a_key_that_wraps_cannot_decrypt_what_it_wrapped(ctx):
    s = ctx["session"]
    kek = secret(s, KeyType.AES, "kek", wrap=True, unwrap=True, encrypt=True, decrypt=True)
    target = secret(s, KeyType.AES, "target", sensitive=True, extractable=True)
    wrapped = kek.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP)
    expect(len(wrapped) == 40, f"wrapped length {len(wrapped)}")
    refused("C_Decrypt(CKM_AES_KEY_WRAP) with the wrapping key", CKR_KEY_FUNCTION_NOT_PERMITTED,
            lambda: kek.decrypt(wrapped, mechanism=Mechanism.AES_KEY_WRAP))


@case
def hmac_refuses_an_aes_key(ctx):
    key = secret(ctx["session"], KeyType.AES, "aes-for-hmac", sign=True)
    refused("C_SignInit(CKM_SHA256_HMAC) with an AES key", ckr.KeyTypeInconsistent,
            lambda: key.sign(b"data", mechanism=Mechanism.SHA256_HMAC))


@case
def rsa_key_transport_is_oaep_unless_v15_is_configured(ctx):
    s = ctx["session"]
    pub, priv = s.generate_keypair(KeyType.RSA, 2048, store=False)
    target = secret(s, KeyType.AES, "transported", sensitive=True, extractable=True)
    refused("C_WrapKey(CKM_RSA_PKCS) without the setting", ckr.MechanismInvalid,
            lambda: pub.wrap_key(target, mechanism=Mechanism.RSA_PKCS))
    oaep = (Mechanism.SHA256, MGF.SHA256, None)
    wrapped = pub.wrap_key(target, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
    back = priv.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped,
                           mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep,
                           template={Attribute.TOKEN: False, Attribute.ENCRYPT: True})
    expect(back[Attribute.VALUE_LEN] == 32, "the OAEP-unwrapped key is not 32 bytes")


if __name__ == "__main__":
    run(CLIENT)
