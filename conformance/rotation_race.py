"""One racer of the rotation race in conformance/postgres.sh: a ctypes client of the
module that logs in, says it is ready (creates READY), waits for GO to exist, rotates
the master key once through C_GenerateKey(CKM_CV_ROTATE_MASTER) and prints the version
the returned master key object names: `rotated to vN`. Any failure exits non-zero.

Usage: rotation_race.py MODULE USER_PIN READY GO
"""
import ctypes as C
import os
import sys
import time

import ck

CKM_CV_ROTATE_MASTER = 0xC3560003
CKA_CV_KEY_VERSION = 0xC3560002


def main():
    module, pin, ready, go = sys.argv[1:5]
    t = ck.Token(module, pin)
    open(ready, "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("no go after 120 s")
        time.sleep(0.01)
    m = t.mechanism(CKM_CV_ROTATE_MASTER)
    handle = ck.ULONG(0)
    t.call("C_GenerateKey", t.session, C.byref(m), None, ck.ULONG(0), C.byref(handle))
    version = ck.ULONG(0)
    a = ck.Attribute(CKA_CV_KEY_VERSION, C.cast(C.pointer(version), C.c_void_p), C.sizeof(version))
    t.call("C_GetAttributeValue", t.session, handle, C.byref(a), ck.ULONG(1))
    print(f"rotated to v{version.value}")
    t.finalize()


if __name__ == "__main__":
    main()
