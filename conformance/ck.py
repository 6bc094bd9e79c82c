"""A small ctypes client of the module's C ABI for the conformance scripts that need
PKCS#11 3.2 types python-pkcs11 does not know yet (ML-DSA, the vendor X-Wing KEM): the
exported C_* symbols called directly, one logged-in read-write session on the first slot.
"""
import ctypes as C

ULONG = C.c_ulong
CKF_RW_SESSION, CKF_SERIAL_SESSION = 0x2, 0x4
CKU_USER = 1
CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY = 2, 3, 4
CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE = 0x0, 0x100, 0x11
CKA_SENSITIVE, CKA_EXTRACTABLE = 0x103, 0x162
CKA_SIGN, CKA_VERIFY, CKA_PARAMETER_SET = 0x108, 0x10A, 0x61D
CKK_GENERIC_SECRET = 0x10
CKR_OK = 0


class Attribute(C.Structure):
    _fields_ = [("type", ULONG), ("pValue", C.c_void_p), ("ulValueLen", ULONG)]


class Mechanism(C.Structure):
    _fields_ = [("mechanism", ULONG), ("pParameter", C.c_void_p), ("ulParameterLen", ULONG)]


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
        flags = ULONG(CKF_SERIAL_SESSION | CKF_RW_SESSION)
        self.call("C_OpenSession", slots[0], flags, None, None, C.byref(self.session))
        self.call("C_Login", self.session, ULONG(CKU_USER), pin.encode(), ULONG(len(pin)))

    def rv(self, name, *args):
        f = getattr(self.lib, name)
        f.restype = ULONG  # CK_RV is unsigned: vendor codes have the top bit set
        return f(*args)

    def call(self, name, *args):
        rv = self.rv(name, *args)
        if rv != CKR_OK:
            raise SystemExit(f"{name}: CKR {rv:#x}")

    def finalize(self):
        self.call("C_Finalize", None)

    def template(self, items):
        """A CK_ATTRIBUTE array of (type, value): bytes as they are, ints as CK_ULONG."""
        attrs = (Attribute * len(items))()
        for a, (ty, value) in zip(attrs, items):
            if isinstance(value, bytes):
                buf, size = C.create_string_buffer(value, len(value)), len(value)
            else:
                buf = ULONG(value)
                size = C.sizeof(buf)
            self.keep.append(buf)
            a.type, a.pValue, a.ulValueLen = ty, C.cast(C.pointer(buf), C.c_void_p), size
        return attrs

    def mechanism(self, ty, param=None):
        m = Mechanism(ty, None, 0)
        if param is not None:
            self.keep.append(param)
            m.pParameter, m.ulParameterLen = C.cast(C.pointer(param), C.c_void_p), C.sizeof(param)
        return m

    def value(self, handle):
        a = Attribute(CKA_VALUE, None, 0)
        self.call("C_GetAttributeValue", self.session, handle, C.byref(a), ULONG(1))
        buf = C.create_string_buffer(a.ulValueLen)
        a.pValue = C.cast(buf, C.c_void_p)
        self.call("C_GetAttributeValue", self.session, handle, C.byref(a), ULONG(1))
        return buf.raw[: a.ulValueLen]

    def create(self, items):
        t = self.template(items)
        handle = ULONG(0)
        self.call("C_CreateObject", self.session, t, ULONG(len(t)), C.byref(handle))
        return handle

    def generate_pair(self, mechanism, public_items, private_items):
        public, private = self.template(public_items), self.template(private_items)
        pub, priv = ULONG(0), ULONG(0)
        m = self.mechanism(mechanism)
        self.call("C_GenerateKeyPair", self.session, C.byref(m), public, ULONG(len(public_items)),
                  private, ULONG(len(private_items)), C.byref(pub), C.byref(priv))
        return pub, priv

    def readable_secret(self):
        return self.template([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
                              (CKA_SENSITIVE, b"\x00"), (CKA_EXTRACTABLE, b"\x01")])
