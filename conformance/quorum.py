"""The quorum through the C ABI from a ctypes client, as an application and its custodians
see it: a wrap under the master key is refused with CKR_CV_LOCKED; custodians approve with
C_LoginUser(CKU_CV_CUSTODIAN); two of them unlock; CKA_CV_LOCKED locks again.

Usage: quorum.py MODULE USER_PIN CASE, CASE one of locked, one-is-not-enough, unlock, lock.
The passphrases come from CV_CUSTODIAN_ALICE / _BOB.
"""
import ctypes as C
import os
import sys

import ck

CKM_AES_KEY_GEN = 0x1080
CKM_CV_WRAP_RECORD = 0xC3560001
CKU_CV_CUSTODIAN = 0xC3560001
CKR_CV_LOCKED = 0xC3560001
CKA_LABEL, CKA_TOKEN, CKA_VALUE_LEN = 0x3, 0x1, 0x161
CKA_CV_LOCKED = 0xC356000B


def master(t):
    label = b"collabvault-master"
    tmpl = t.template([(CKA_LABEL, label)])
    t.call("C_FindObjectsInit", t.session, tmpl, ck.ULONG(1))
    handle, count = ck.ULONG(0), ck.ULONG(0)
    t.call("C_FindObjects", t.session, C.byref(handle), ck.ULONG(1), C.byref(count))
    t.call("C_FindObjectsFinal", t.session)
    if count.value != 1:
        raise SystemExit("no current master key object")
    return handle


def wrap_rv(t):
    """The return code of wrapping a fresh session AES key under the current master key."""
    key = ck.ULONG(0)
    tmpl = t.template([(CKA_VALUE_LEN, 32), (CKA_TOKEN, b"\x00"), (ck.CKA_EXTRACTABLE, b"\x01")])
    m = t.mechanism(CKM_AES_KEY_GEN)
    t.call("C_GenerateKey", t.session, C.byref(m), tmpl, ck.ULONG(3), C.byref(key))
    length = ck.ULONG(0)
    w = t.mechanism(CKM_CV_WRAP_RECORD)
    return t.rv("C_WrapKey", t.session, C.byref(w), master(t), key, None, C.byref(length))


def approve(t, name):
    """C_LoginUser as custodian `name` in a fresh session of the same token."""
    session = ck.ULONG(0)
    slot = ck.ULONG(0)
    info = (ck.ULONG * 8)()
    t.call("C_GetSessionInfo", t.session, info)
    slot = ck.ULONG(info[0])
    t.call("C_OpenSession", slot, ck.ULONG(ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION), None, None, C.byref(session))
    passphrase = os.environ[f"CV_CUSTODIAN_{name.upper()}"].encode()
    rv = t.rv("C_LoginUser", session, ck.ULONG(CKU_CV_CUSTODIAN), passphrase, ck.ULONG(len(passphrase)),
              name.encode(), ck.ULONG(len(name)))
    t.call("C_CloseSession", session)
    if rv != ck.CKR_OK:
        raise SystemExit(f"C_LoginUser as {name}: CKR {rv:#x}")


def expect(got, want, what):
    if got != want:
        raise SystemExit(f"{what}: got {got:#x}, wanted {want:#x}")
    print(f"{what}: {got:#x} as expected")


def main():
    module, pin, case = sys.argv[1:4]
    t = ck.Token(module, pin)
    if case == "locked":
        expect(wrap_rv(t), CKR_CV_LOCKED, "wrap before any approval")
    elif case == "one-is-not-enough":
        approve(t, "alice")
        approve(t, "alice")
        expect(wrap_rv(t), CKR_CV_LOCKED, "wrap after alice approved twice")
    elif case == "unlock":
        approve(t, "bob")
        expect(wrap_rv(t), ck.CKR_OK, "wrap after alice and bob approved")
    elif case == "lock":
        tmpl = t.template([(CKA_CV_LOCKED, b"\x01")])
        t.call("C_SetAttributeValue", t.session, master(t), tmpl, ck.ULONG(1))
        expect(wrap_rv(t), CKR_CV_LOCKED, "wrap after CKA_CV_LOCKED")
    else:
        raise SystemExit(f"unknown case {case}")
    t.finalize()


main()
