/*
 * sign.c: sign and verify with an EC P-256 key pair generated on a CollabVault token,
 * from C, loading the module at run time as any PKCS#11 application does.
 *
 *   cc -I include -o sign examples/c/sign.c -ldl
 *   ./sign target/release/libcollabvault_pkcs11.so <user-pin>
 *
 * The token in the first slot must be initialized with a user PIN (pkcs11-tool
 * --init-token / --init-pin). The key pair is made of session objects: it disappears when
 * the session closes. Exit status 0 when the signature verifies and a tampered message
 * does not.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11.h"
#include "collabvault.h"

static CK_FUNCTION_LIST *p11;

/* Prints the failing call and its CK_RV, then exits. */
static void check(CK_RV rv, const char *what)
{
    if (rv != CKR_OK) {
        fprintf(stderr, "%s failed: CK_RV 0x%08lx\n", what, (unsigned long)rv);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <module.so> <user-pin>\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    CK_C_GetFunctionList get_function_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (get_function_list == NULL) {
        fprintf(stderr, "C_GetFunctionList not exported\n");
        return 1;
    }
    check(get_function_list(&p11), "C_GetFunctionList");
    check(p11->C_Initialize(NULL), "C_Initialize");

    CK_INFO info;
    check(p11->C_GetInfo(&info), "C_GetInfo");
    printf("module: %.32s, Cryptoki %u.%u\n", (const char *)info.libraryDescription,
           info.cryptokiVersion.major, info.cryptokiVersion.minor);

    CK_SLOT_ID slots[16];
    CK_ULONG n_slots = sizeof slots / sizeof slots[0];
    check(p11->C_GetSlotList(CK_TRUE, slots, &n_slots), "C_GetSlotList");
    if (n_slots == 0) {
        fprintf(stderr, "no token present\n");
        return 1;
    }
    CK_TOKEN_INFO token;
    check(p11->C_GetTokenInfo(slots[0], &token), "C_GetTokenInfo");
    printf("token: %.32s (model %.16s; soft root: %s)\n", (const char *)token.label,
           (const char *)token.model,
           strncmp((const char *)token.model, COLLABVAULT_MODEL_SOFT_ROOT,
                   strlen(COLLABVAULT_MODEL_SOFT_ROOT)) == 0 ? "yes" : "no");

    CK_SESSION_HANDLE session;
    check(p11->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session),
          "C_OpenSession");
    check(p11->C_Login(session, CKU_USER, (CK_UTF8CHAR *)argv[2], (CK_ULONG)strlen(argv[2])),
          "C_Login");

    /* An EC P-256 key pair: CKA_EC_PARAMS is the DER of the curve's OID 1.2.840.10045.3.1.7. */
    CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE;
    CK_UTF8CHAR label[] = "c example";
    CK_ATTRIBUTE pub_tmpl[] = {
        {CKA_EC_PARAMS, p256, sizeof p256},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_LABEL, label, sizeof label - 1},
    };
    CK_ATTRIBUTE priv_tmpl[] = {
        {CKA_SIGN, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_LABEL, label, sizeof label - 1},
    };
    CK_MECHANISM keygen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub, priv;
    check(p11->C_GenerateKeyPair(session, &keygen, pub_tmpl, 3, priv_tmpl, 3, &pub, &priv),
          "C_GenerateKeyPair");

    /* The public point (a DER OCTET STRING around 04||X||Y): length query, then the value. */
    CK_ATTRIBUTE point = {CKA_EC_POINT, NULL, 0};
    check(p11->C_GetAttributeValue(session, pub, &point, 1), "C_GetAttributeValue (length)");
    point.pValue = malloc(point.ulValueLen);
    check(p11->C_GetAttributeValue(session, pub, &point, 1), "C_GetAttributeValue");
    printf("generated EC P-256 key pair; CKA_EC_POINT is %lu bytes\n", (unsigned long)point.ulValueLen);
    free(point.pValue);

    /* Sign with CKM_ECDSA_SHA256 (the token hashes): the signature is r||s, 64 bytes. */
    CK_BYTE message[] = "pay 100 to alice";
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CK_BYTE sig[128];
    CK_ULONG sig_len = 0;
    check(p11->C_SignInit(session, &ecdsa, priv), "C_SignInit");
    check(p11->C_Sign(session, message, sizeof message - 1, NULL, &sig_len), "C_Sign (length)");
    if (sig_len > sizeof sig) {
        fprintf(stderr, "unexpected signature length %lu\n", (unsigned long)sig_len);
        return 1;
    }
    check(p11->C_Sign(session, message, sizeof message - 1, sig, &sig_len), "C_Sign");
    printf("signed %lu-byte message: %lu-byte signature\n", (unsigned long)(sizeof message - 1),
           (unsigned long)sig_len);

    check(p11->C_VerifyInit(session, &ecdsa, pub), "C_VerifyInit");
    check(p11->C_Verify(session, message, sizeof message - 1, sig, sig_len), "C_Verify");
    printf("signature verifies\n");

    message[4] = '9'; /* "pay 900 to alice" */
    check(p11->C_VerifyInit(session, &ecdsa, pub), "C_VerifyInit");
    CK_RV rv = p11->C_Verify(session, message, sizeof message - 1, sig, sig_len);
    if (rv != CKR_SIGNATURE_INVALID) {
        fprintf(stderr, "tampered message: want CKR_SIGNATURE_INVALID, got 0x%08lx\n", (unsigned long)rv);
        return 1;
    }
    printf("tampered message rejected (CKR_SIGNATURE_INVALID)\n");

    check(p11->C_Logout(session), "C_Logout");
    check(p11->C_CloseSession(session), "C_CloseSession");
    check(p11->C_Finalize(NULL), "C_Finalize");
    dlclose(lib);
    return 0;
}
