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
import sys

from dilithium_py.ml_dsa import ML_DSA_65

CKF_RW_SESSION, CKF_SERIAL_SESSION = 0x2, 0x4
CKU_USER = 1
CKO_PUBLIC_KEY = 2
CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE = 0x0, 0x100, 0x11
CKA_VERIFY, CKA_SIGN, CKA_PARAMETER_SET = 0x10A, 0x108, 0x61D
CKK_ML_DSA = 0x4A
CKP_ML_DSA_65 = 2
CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA = 0x1C, 0x1D
CKH_HEDGE_PREFERRED = 0
CKR_OK, CKR_SIGNATURE_INVALID = 0, 0xC0
ULONG = C.c_ulong


class Attribute(C.Structure):
    _fields_ = [("type", ULONG), ("pValue", C.c_void_p), ("ulValueLen", ULONG)]


class Mechanism(C.Structure):
    _fields_ = [("mechanism", ULONG), ("pParameter", C.c_void_p), ("ulParameterLen", ULONG)]


class SignContext(C.Structure):
    _fields_ = [("hedgeVariant", ULONG), ("pContext", C.c_void_p), ("ulContextLen", ULONG)]


class Token:
    def __init__(self, module, pin):
        self.lib = C.CDLL(module)
        self.keep = []
        self.call("C_Initialize", None)
        count = ULONG(0)
        self.call("C_GetSlotList", C.c_ubyte(1), None, C.byref(count))
        slots = (ULONG * count.value)()
        self.call("C_GetSlotList", C.c_ubyte(1), slots, C.byref(count))
        self.session = ULONG(0)
        self.call("C_OpenSession", slots[0], ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION), None, None, C.byref(self.session))
        self.call("C_Login", self.session, ULONG(CKU_USER), pin.encode(), ULONG(len(pin)))

    def rv(self, name, *args):
        return getattr(self.lib, name)(*args)

    def call(self, name, *args):
        rv = self.rv(name, *args)
        if rv != CKR_OK:
            raise SystemExit(f"{name}: CKR {rv:#x}")

    def template(self, items):
        attrs = (Attribute * len(items))()
        for a, (ty, value) in zip(attrs, items):
            buf = C.create_string_buffer(value, len(value)) if isinstance(value, bytes) else ULONG(value)
            self.keep.append(buf)
            a.type, a.pValue, a.ulValueLen = ty, C.cast(C.pointer(buf), C.c_void_p), C.sizeof(buf) if not isinstance(value, bytes) else len(value)
        return attrs

    def mechanism(self, ty, context=None):
        m = Mechanism(ty, None, 0)
        if context is not None:
            ctx = C.create_string_buffer(context, len(context))
            p = SignContext(CKH_HEDGE_PREFERRED, C.cast(ctx, C.c_void_p), len(context))
            self.keep += [ctx, p]
            m.pParameter, m.ulParameterLen = C.cast(C.pointer(p), C.c_void_p), C.sizeof(p)
        return m

    def value(self, handle):
        a = Attribute(CKA_VALUE, None, 0)
        self.call("C_GetAttributeValue", self.session, handle, C.byref(a), ULONG(1))
        buf = C.create_string_buffer(a.ulValueLen)
        a.pValue = C.cast(buf, C.c_void_p)
        self.call("C_GetAttributeValue", self.session, handle, C.byref(a), ULONG(1))
        return buf.raw[: a.ulValueLen]

    def generate(self):
        public = self.template([(CKA_PARAMETER_SET, CKP_ML_DSA_65), (CKA_VERIFY, b"\x01")])
        private = self.template([(CKA_SIGN, b"\x01")])
        pub, priv = ULONG(0), ULONG(0)
        m = self.mechanism(CKM_ML_DSA_KEY_PAIR_GEN)
        self.call("C_GenerateKeyPair", self.session, C.byref(m), public, ULONG(2), private, ULONG(1), C.byref(pub), C.byref(priv))
        return pub, priv

    def sign(self, key, message, context):
        m = self.mechanism(CKM_ML_DSA, context)
        self.call("C_SignInit", self.session, C.byref(m), key)
        size = ULONG(0)
        self.call("C_Sign", self.session, message, ULONG(len(message)), None, C.byref(size))
        sig = C.create_string_buffer(size.value)
        self.call("C_Sign", self.session, message, ULONG(len(message)), sig, C.byref(size))
        return sig.raw[: size.value]

    def import_public(self, pk):
        t = self.template([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_ML_DSA), (CKA_PARAMETER_SET, CKP_ML_DSA_65), (CKA_VERIFY, b"\x01"), (CKA_VALUE, pk)])
        handle = ULONG(0)
        self.call("C_CreateObject", self.session, t, ULONG(len(t)), C.byref(handle))
        return handle

    def verify(self, key, message, sig, context):
        m = self.mechanism(CKM_ML_DSA, context)
        self.call("C_VerifyInit", self.session, C.byref(m), key)
        return self.rv("C_Verify", self.session, message, ULONG(len(message)), sig, ULONG(len(sig)))


def main():
    module, pin, mode = sys.argv[1:4]
    token = Token(module, pin)
    message, context = b"CollabVault conformance: ML-DSA-65", b"cv-conformance"
    if mode == "token-signs":
        pub, priv = token.generate()
        pk = token.value(pub)
        sig = token.sign(priv, message, context)
        assert len(pk) == 1952 and len(sig) == 3309, (len(pk), len(sig))
        assert ML_DSA_65.verify(pk, message, sig, ctx=context), "dilithium-py refuses the token's signature"
        assert not ML_DSA_65.verify(pk, message, sig, ctx=b"other"), "dilithium-py accepts another context"
    elif mode == "token-verifies":
        pk, sk = ML_DSA_65.keygen()
        sig = ML_DSA_65.sign(sk, message, ctx=context)
        key = token.import_public(pk)
        rv = token.verify(key, message, sig, context)
        assert rv == CKR_OK, f"the token refuses dilithium-py's signature: {rv:#x}"
        flipped = bytes([sig[0] ^ 1]) + sig[1:]
        rv = token.verify(key, message, flipped, context)
        assert rv == CKR_SIGNATURE_INVALID, f"a flipped bit: {rv:#x}"
    else:
        raise SystemExit(__doc__)
    token.call("C_Finalize", None)
    print(f"ok: {mode}")


if __name__ == "__main__":
    main()
