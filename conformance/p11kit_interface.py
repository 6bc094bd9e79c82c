"""The PKCS#11 3.x interface of p11-kit's proxy (or any library), driven with ctypes (no binding library
hides which entry point is called). Usage: p11kit_interface.py LIBRARY TOKEN_LABEL PIN KEY_ID_HEX

Asks the library for its interfaces (C_GetInterfaceList, C_GetInterface), takes the
"PKCS 11" interface and checks it is version 3.x, then uses that function list alone to
find the token, log in, sign with the EC key KEY_ID_HEX (CKM_ECDSA) and call
C_SessionCancel, a 3.0-only entry point. Prints one line per step.

A library that exports no C_GetInterface (p11-kit 0.24's proxy, Debian 12: its proxy
offers only the 2.40 list through C_GetFunctionList) gets the same walk through the list
C_GetFunctionList gives, without the 3.0 call, and the script exits with status 3: the
token works through it, but there is no 3.x interface to test.
"""

import ctypes
import sys

CK_ULONG = ctypes.c_ulong
CK_RV = CK_ULONG

# Positions in CK_FUNCTION_LIST_3_0 (PKCS#11 3.0, section 5.2): the 2.40 list, then the
# 3.0 additions.
FUNCTIONS = """Initialize Finalize GetInfo GetFunctionList GetSlotList GetSlotInfo GetTokenInfo
GetMechanismList GetMechanismInfo InitToken InitPIN SetPIN OpenSession CloseSession
CloseAllSessions GetSessionInfo GetOperationState SetOperationState Login Logout CreateObject
CopyObject DestroyObject GetObjectSize GetAttributeValue SetAttributeValue FindObjectsInit
FindObjects FindObjectsFinal EncryptInit Encrypt EncryptUpdate EncryptFinal DecryptInit
Decrypt DecryptUpdate DecryptFinal DigestInit Digest DigestUpdate DigestKey DigestFinal
SignInit Sign SignUpdate SignFinal SignRecoverInit SignRecover VerifyInit Verify
VerifyUpdate VerifyFinal VerifyRecoverInit VerifyRecover DigestEncryptUpdate
DecryptDigestUpdate SignEncryptUpdate DecryptVerifyUpdate GenerateKey GenerateKeyPair
WrapKey UnwrapKey DeriveKey SeedRandom GenerateRandom GetFunctionStatus CancelFunction
WaitForSlotEvent GetInterfaceList GetInterface LoginUser SessionCancel""".split()

CKR_OK = 0
CKR_FUNCTION_NOT_SUPPORTED = 0x54
CKF_SERIAL_SESSION, CKF_RW_SESSION = 0x4, 0x2
CKU_USER = 1
CKA_CLASS, CKA_ID = 0x0, 0x102
CKO_PRIVATE_KEY = 3
CKM_ECDSA = 0x1041
CKF_SIGN = 0x800


class Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class Interface(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("functions", ctypes.c_void_p), ("flags", CK_ULONG)]


class Info(ctypes.Structure):
    _fields_ = [
        ("cryptoki", Version),
        ("manufacturer", ctypes.c_char * 32),
        ("flags", CK_ULONG),
        ("description", ctypes.c_char * 32),
        ("library", Version),
    ]


class Attribute(ctypes.Structure):
    _fields_ = [("type", CK_ULONG), ("value", ctypes.c_void_p), ("len", CK_ULONG)]


class FunctionList:
    """Calls through a CK_FUNCTION_LIST_3_0 pointer; every call must return CKR_OK."""

    def __init__(self, ptr):
        self.ptr = ptr
        self.version = Version.from_address(ptr)

    def raw(self, name, *args):
        slot = ctypes.c_void_p.from_address(self.ptr + 8 * (1 + FUNCTIONS.index(name)))
        fn = ctypes.CFUNCTYPE(CK_RV, *([ctypes.c_void_p] * len(args)))(slot.value)
        return fn(*[a if isinstance(a, int) or a is None else ctypes.cast(a, ctypes.c_void_p) for a in args])

    def __call__(self, name, *args):
        rv = self.raw(name, *args)
        if rv != CKR_OK:
            sys.exit(f"C_{name} returned {rv:#x}")


def main():
    library, label, pin, key_id = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode(), bytes.fromhex(sys.argv[4])
    lib = ctypes.CDLL(library)
    if not hasattr(lib, "C_GetInterface"):
        listp = ctypes.c_void_p()
        assert lib.C_GetFunctionList(ctypes.byref(listp)) == CKR_OK, "C_GetFunctionList"
        f = FunctionList(listp.value)
        print(f"no C_GetInterface; C_GetFunctionList gives version {f.version.major}.{f.version.minor}")
        walk(f, label, pin, key_id)
        sys.exit(3 if f.version.major < 3 else "a 3.x list without C_GetInterface")

    count = CK_ULONG()
    assert lib.C_GetInterfaceList(None, ctypes.byref(count)) == CKR_OK, "C_GetInterfaceList (count)"
    interfaces = (Interface * count.value)()
    assert lib.C_GetInterfaceList(interfaces, ctypes.byref(count)) == CKR_OK, "C_GetInterfaceList"
    for i in interfaces[: count.value]:
        v = Version.from_address(i.functions)
        print(f"offered: {i.name.decode()} {v.major}.{v.minor} flags={i.flags:#x}")

    iface = ctypes.POINTER(Interface)()
    lib.C_GetInterface.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, CK_ULONG]
    assert lib.C_GetInterface(b"PKCS 11", None, ctypes.byref(iface), 0) == CKR_OK, "C_GetInterface"
    f = FunctionList(iface.contents.functions)
    print(f"C_GetInterface: {iface.contents.name.decode()} {f.version.major}.{f.version.minor}")
    if f.version.major != 3:
        sys.exit("the default interface is not PKCS#11 3.x")
    walk(f, label, pin, key_id)
    print("3.x interface: OK")


def walk(f, label, pin, key_id):
    """Initialize, find the token, log in, sign; C_SessionCancel on a 3.x list."""
    f("Initialize", None)
    info = Info()
    f("GetInfo", ctypes.byref(info))
    print(f"C_GetInfo: cryptoki {info.cryptoki.major}.{info.cryptoki.minor}")

    n = CK_ULONG()
    f("GetSlotList", 1, None, ctypes.byref(n))
    slots = (CK_ULONG * n.value)()
    f("GetSlotList", 1, slots, ctypes.byref(n))
    slot = None
    for s in slots[: n.value]:
        token = (ctypes.c_ubyte * 208)()  # CK_TOKEN_INFO; the label is its first 32 bytes
        f("GetTokenInfo", s, token)
        if bytes(token[:32]).rstrip(b" ") == label:
            slot = s
    if slot is None:
        sys.exit(f"token {label!r} not found")
    print(f"token {label.decode()} in slot {slot:#x}")

    session = CK_ULONG()
    f("OpenSession", slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, None, None, ctypes.byref(session))
    h = session.value
    f("Login", h, CKU_USER, ctypes.c_char_p(pin), len(pin))

    cls = CK_ULONG(CKO_PRIVATE_KEY)
    kid = ctypes.create_string_buffer(key_id, len(key_id))
    template = (Attribute * 2)(
        Attribute(CKA_CLASS, ctypes.cast(ctypes.byref(cls), ctypes.c_void_p), ctypes.sizeof(cls)),
        Attribute(CKA_ID, ctypes.cast(kid, ctypes.c_void_p), len(key_id)),
    )
    f("FindObjectsInit", h, template, 2)
    key, found = CK_ULONG(), CK_ULONG()
    f("FindObjects", h, ctypes.byref(key), 1, ctypes.byref(found))
    f("FindObjectsFinal", h)
    if found.value != 1:
        sys.exit("private key not found")

    mech = (CK_ULONG * 3)(CKM_ECDSA, 0, 0)
    f("SignInit", h, mech, key.value)
    digest = bytes(range(32))
    sig, sig_len = (ctypes.c_ubyte * 128)(), CK_ULONG(128)
    f("Sign", h, ctypes.c_char_p(digest), len(digest), sig, ctypes.byref(sig_len))
    print(f"C_Sign (CKM_ECDSA): {sig_len.value} bytes")
    if sig_len.value != 64:
        sys.exit("an ECDSA P-256 signature is 64 bytes")

    if f.version.major >= 3:
        rv = f.raw("SessionCancel", h, CKF_SIGN)
        print(f"C_SessionCancel: {rv:#x}")
        if rv not in (CKR_OK, CKR_FUNCTION_NOT_SUPPORTED):
            sys.exit("C_SessionCancel must return CKR_OK or CKR_FUNCTION_NOT_SUPPORTED")

    f("Logout", h)
    f("CloseSession", h)
    f("Finalize", None)


if __name__ == "__main__":
    main()
