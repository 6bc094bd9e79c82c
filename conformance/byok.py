"""BYOK import from a ctypes client, as a customer and an operator see it (doc/byok.md):
the operator makes an import key on the token and exports its public half; the customer
wraps a key made outside (openssl for RSA-OAEP; kyber-py and `cryptography` for
ML-KEM-768 + AES-KWP); C_UnwrapKey(CKM_CV_IMPORT_MASTER) makes it the active master key
version; a wrap record made under it opens with the customer's key here.

Usage: byok.py MODULE USER_PIN CASE ARGS...
  keygen rsa|mlkem OUT          make the import key pair, write its public key (PEM or raw ek)
  mlkem-wrap EK KEY OUT         the customer's ML-KEM-768 wrapping of KEY to EK
  import rsa|mlkem WRAPPED      import; prints the new version and its CKA_CV_ORIGIN
  refuse rsa|mlkem WRAPPED RV   the import must fail with RV (hex)
  opens KEY                     a record under the current version opens with KEY
"""
import ctypes as C
import sys

import ck

CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_ML_KEM_KEY_PAIR_GEN = 0x0, 0xF
CKM_CV_WRAP_RECORD, CKM_CV_IMPORT_MASTER = 0xC3560001, 0xC3560007
CKK_RSA, CKK_AES, CKK_ML_KEM = 0x0, 0x1F, 0x49
CKP_ML_KEM_768 = 0x2
CKA_TOKEN, CKA_PRIVATE, CKA_LABEL = 0x1, 0x2, 0x3
CKA_ENCRYPT, CKA_UNWRAP, CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT = 0x104, 0x107, 0x120, 0x121, 0x122
CKA_MODIFIABLE, CKA_COPYABLE, CKA_ALLOWED_MECHANISMS = 0x170, 0x171, 0x40000600
CKA_CV_KEY_VERSION, CKA_CV_ORIGIN = 0xC3560002, 0xC3560010
TRUE, FALSE = b"\x01", b"\x00"


def attr(t, handle, ty):
    a = ck.Attribute(ty, None, 0)
    t.call("C_GetAttributeValue", t.session, handle, C.byref(a), ck.ULONG(1))
    buf = C.create_string_buffer(a.ulValueLen)
    a.pValue = C.cast(buf, C.c_void_p)
    t.call("C_GetAttributeValue", t.session, handle, C.byref(a), ck.ULONG(1))
    return buf.raw[: a.ulValueLen]


def find(t, items):
    tmpl = t.template(items)
    t.call("C_FindObjectsInit", t.session, tmpl, ck.ULONG(len(items)))
    handle, count = ck.ULONG(0), ck.ULONG(0)
    t.call("C_FindObjects", t.session, C.byref(handle), ck.ULONG(1), C.byref(count))
    t.call("C_FindObjectsFinal", t.session)
    if count.value != 1:
        raise SystemExit(f"not found: {items}")
    return handle


def label(kind):
    return b"byok-import-" + kind.encode()


def keygen(t, kind, out):
    """An import key: its private half does imports only, for good."""
    allowed = bytes(ck.ULONG(CKM_CV_IMPORT_MASTER))
    private = [(CKA_TOKEN, TRUE), (CKA_PRIVATE, TRUE), (ck.CKA_SENSITIVE, TRUE), (ck.CKA_EXTRACTABLE, FALSE),
               (CKA_UNWRAP, TRUE), (CKA_MODIFIABLE, FALSE), (CKA_COPYABLE, FALSE),
               (CKA_ALLOWED_MECHANISMS, allowed), (CKA_LABEL, label(kind))]
    public = [(CKA_TOKEN, TRUE), (CKA_LABEL, label(kind))]
    if kind == "rsa":
        public += [(CKA_MODULUS_BITS, 3072), (CKA_ENCRYPT, TRUE)]
        pub, _ = t.generate_pair(CKM_RSA_PKCS_KEY_PAIR_GEN, public, private)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        n = int.from_bytes(attr(t, pub, CKA_MODULUS), "big")
        e = int.from_bytes(attr(t, pub, CKA_PUBLIC_EXPONENT), "big")
        pem = rsa.RSAPublicNumbers(e, n).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        open(out, "wb").write(pem)
    else:
        public.append((ck.CKA_PARAMETER_SET, CKP_ML_KEM_768))
        private.append((ck.CKA_PARAMETER_SET, CKP_ML_KEM_768))
        pub, _ = t.generate_pair(CKM_ML_KEM_KEY_PAIR_GEN, public, private)
        open(out, "wb").write(t.value(pub))


def mlkem_wrap(ek_file, key_file, out):
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
    from kyber_py.ml_kem import ML_KEM_768
    ss, ct = ML_KEM_768.encaps(open(ek_file, "rb").read())
    open(out, "wb").write(ct + aes_key_wrap_with_padding(ss, open(key_file, "rb").read()))


def import_rv(t, kind, wrapped_file):
    wrapped = open(wrapped_file, "rb").read()
    key = find(t, [(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), (CKA_LABEL, label(kind))])
    m = t.mechanism(CKM_CV_IMPORT_MASTER)
    tmpl = t.template([(ck.CKA_CLASS, ck.CKO_SECRET_KEY), (ck.CKA_KEY_TYPE, CKK_AES)])
    handle = ck.ULONG(0)
    rv = t.rv("C_UnwrapKey", t.session, C.byref(m), key, wrapped, ck.ULONG(len(wrapped)), tmpl, ck.ULONG(2),
              C.byref(handle))
    return rv, handle


def opens(t, key_file):
    """A known DEK in a wrap record under the current version (doc/wrap-record.md, format 1),
    opened here with the customer's key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    dek_value = bytes(range(32))
    dek = t.create([(ck.CKA_CLASS, ck.CKO_SECRET_KEY), (ck.CKA_KEY_TYPE, CKK_AES), (ck.CKA_VALUE, dek_value),
                    (CKA_TOKEN, FALSE), (ck.CKA_SENSITIVE, FALSE), (ck.CKA_EXTRACTABLE, TRUE)])
    master = find(t, [(CKA_LABEL, b"collabvault-master")])
    m = t.mechanism(CKM_CV_WRAP_RECORD)
    length = ck.ULONG(0)
    t.call("C_WrapKey", t.session, C.byref(m), master, dek, None, C.byref(length))
    buf = C.create_string_buffer(length.value)
    t.call("C_WrapKey", t.session, C.byref(m), master, dek, buf, C.byref(length))
    record = buf.raw[: length.value]
    assert record[:6] == b"CVWR\x01\x01", "format 1, AES-256-GCM"
    at = 7 + record[6]
    header_end = at + 6 + int.from_bytes(record[at + 4:at + 6], "big")
    nonce, body = record[header_end:header_end + 12], record[header_end + 12:]
    opened = AESGCM(open(key_file, "rb").read()).decrypt(nonce, body, record[:header_end])
    if opened != dek_value:
        raise SystemExit("the record holds another key")
    print(f"a record under wmk v{int.from_bytes(record[at:at + 4], 'big')} opens with the customer's key")


def main():
    module, pin, case, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    if case == "mlkem-wrap":
        return mlkem_wrap(*args)
    t = ck.Token(module, pin)
    if case == "keygen":
        keygen(t, *args)
    elif case == "import":
        rv, handle = import_rv(t, *args)
        if rv != ck.CKR_OK:
            raise SystemExit(f"C_UnwrapKey(CKM_CV_IMPORT_MASTER): CKR {rv:#x}")
        version = int.from_bytes(attr(t, handle, CKA_CV_KEY_VERSION), sys.byteorder)
        print(f"wmk v{version} {attr(t, handle, CKA_CV_ORIGIN).decode()}")
    elif case == "refuse":
        rv, _ = import_rv(t, args[0], args[1])
        if rv != int(args[2], 16):
            raise SystemExit(f"wanted CKR {args[2]}, got {rv:#x}")
    elif case == "opens":
        opens(t, *args)
    t.finalize()


main()
