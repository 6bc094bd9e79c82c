"""The disaster demo's client (conformance/recover.sh), through the module's C ABI (ck.py):
`ingest N` stores N documents' DEKs as token keys; `readback N` logs in and reads every
one back; `old-session READY GO` logs in, keeps the session, creates the file READY and
waits for the file GO (the recovery done elsewhere meanwhile), then proves that session's
login refused (CKR_USER_NOT_LOGGED_IN) at its next master-key call.
"""
import ctypes as C
import os
import sys
import time

import ck

CKA_TOKEN, CKA_LABEL, CKK_AES = 0x1, 0x3, 0x1F
CKM_CV_WRAP_RECORD = 0xC3560001
CKR_USER_NOT_LOGGED_IN = 0x101


def value(i):
    return i.to_bytes(8, "big") + bytes((7 * b) % 256 for b in range(24))


def secret(t, label, token, data):
    return t.create([(ck.CKA_CLASS, ck.CKO_SECRET_KEY), (ck.CKA_KEY_TYPE, CKK_AES), (ck.CKA_VALUE, data),
                     (CKA_TOKEN, b"\x01" if token else b"\x00"), (ck.CKA_SENSITIVE, b"\x00"),
                     (ck.CKA_EXTRACTABLE, b"\x01"), (CKA_LABEL, label.encode())])


def find(t, label):
    attrs = t.template([(CKA_LABEL, label.encode())])
    t.call("C_FindObjectsInit", t.session, attrs, ck.ULONG(1))
    found, count = (ck.ULONG * 4)(), ck.ULONG(0)
    t.call("C_FindObjects", t.session, found, ck.ULONG(4), C.byref(count))
    t.call("C_FindObjectsFinal", t.session)
    return list(found[: count.value])


def main():
    module, pin, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    t = ck.Token(module, pin)
    if mode == "ingest":
        for i in range(int(sys.argv[4])):
            secret(t, f"doc-{i}", True, value(i))
        print(f"ingested {sys.argv[4]} documents")
    elif mode == "readback":
        n = int(sys.argv[4])
        for i in range(n):
            handles = find(t, f"doc-{i}")
            assert len(handles) == 1 and t.value(handles[0]) == value(i), f"doc-{i}"
        print(f"read back {n} documents")
    elif mode == "old-session":
        master = find(t, "collabvault-master")[0]
        dek = secret(t, "app", False, value(9999))
        m = t.mechanism(CKM_CV_WRAP_RECORD)
        size = ck.ULONG(0)
        t.call("C_WrapKey", t.session, C.byref(m), master, dek, None, C.byref(size))
        record = C.create_string_buffer(size.value)
        t.call("C_WrapKey", t.session, C.byref(m), master, dek, record, C.byref(size))
        open(sys.argv[4], "w").close()
        for _ in range(1200):
            if os.path.exists(sys.argv[5]):
                break
            time.sleep(0.1)
        out, tmpl = ck.ULONG(0), t.template([(ck.CKA_CLASS, ck.CKO_SECRET_KEY)])
        rv = t.rv("C_UnwrapKey", t.session, C.byref(m), master, record, size, tmpl, ck.ULONG(1), C.byref(out))
        assert rv == CKR_USER_NOT_LOGGED_IN, f"old session: CKR {rv:#x}"
        assert find(t, "doc-0") == [], "the voided login sees no private object"
        print("old session refused: CKR_USER_NOT_LOGGED_IN")
    t.finalize()


main()
