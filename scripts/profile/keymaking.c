/*
 * keymaking.c: the callgrind driver of scripts/callgrind-keymaking.sh. Logs in to the
 * token in the first slot and makes N session keys through the C ABI, each destroyed
 * again: `aes` (C_GenerateKey, AES-256), `encaps` (C_EncapsulateKey, ML-KEM-768, under a
 * key pair made first), `decaps` (C_DecapsulateKey of one ciphertext made first) or
 * `kpgen` (C_GenerateKeyPair, ML-KEM-768: both halves made and destroyed). Three warm-up
 * calls run before `measured`, the one function callgrind collects
 * (--toggle-collect=measured), so its count divided by N is the cost of one make +
 * destroy, the batched audit writes included.
 *
 *   keymaking <module.so> <user-pin> aes|encaps|decaps|kpgen <N>
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pkcs11.h"

#define SYM(name) CK_##name name = (CK_##name)dlsym(lib, #name); if (!name) { fprintf(stderr, "no %s\n", #name); exit(1); }
static void check(CK_RV rv, const char *w) { if (rv != CKR_OK) { fprintf(stderr, "%s: 0x%lx\n", w, rv); exit(1); } }

static void *lib;
static CK_SESSION_HANDLE s;
static CK_OBJECT_HANDLE pub_key, priv_key;

__attribute__((noinline)) void run_aes(int n) {
    SYM(C_GenerateKey) SYM(C_DestroyObject)
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY; CK_KEY_TYPE kt = CKK_AES; CK_ULONG len = 32;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE tpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &f, 1}, {CKA_PRIVATE, &f, 1}, {CKA_ENCRYPT, &t, 1}};
    for (int i = 0; i < n; i++) { CK_OBJECT_HANDLE h; check(C_GenerateKey(s, &m, tpl, 6, &h), "genkey"); check(C_DestroyObject(s, h), "destroy"); }
}

/* The template of the secret an ML-KEM encapsulation or decapsulation makes. */
static CK_OBJECT_CLASS kem_cls = CKO_SECRET_KEY;
static CK_KEY_TYPE kem_kt = CKK_GENERIC_SECRET;
static CK_BBOOL kem_false = CK_FALSE;
static CK_ATTRIBUTE kem_tpl[] = {{CKA_CLASS, &kem_cls, sizeof kem_cls}, {CKA_KEY_TYPE, &kem_kt, sizeof kem_kt},
    {CKA_TOKEN, &kem_false, 1}, {CKA_PRIVATE, &kem_false, 1}};
static CK_MECHANISM kem_mech = {CKM_ML_KEM, NULL, 0};

__attribute__((noinline)) void run_encaps(int n) {
    SYM(C_EncapsulateKey) SYM(C_DestroyObject)
    CK_BYTE ct[2000];
    for (int i = 0; i < n; i++) { CK_ULONG ctlen = sizeof ct; CK_OBJECT_HANDLE h;
        check(C_EncapsulateKey(s, &kem_mech, pub_key, kem_tpl, 4, ct, &ctlen, &h), "encaps"); check(C_DestroyObject(s, h), "destroy"); }
}

static CK_BYTE ciphertext[2000];
static CK_ULONG ciphertext_len;

__attribute__((noinline)) void run_decaps(int n) {
    SYM(C_DecapsulateKey) SYM(C_DestroyObject)
    for (int i = 0; i < n; i++) { CK_OBJECT_HANDLE h;
        check(C_DecapsulateKey(s, &kem_mech, priv_key, kem_tpl, 4, ciphertext, ciphertext_len, &h), "decaps"); check(C_DestroyObject(s, h), "destroy"); }
}

__attribute__((noinline)) void run_kpgen(int n) {
    SYM(C_GenerateKeyPair) SYM(C_DestroyObject)
    CK_MECHANISM g = {CKM_ML_KEM_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG ps = CKP_ML_KEM_768; CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE pt[] = {{CKA_PARAMETER_SET, &ps, sizeof ps}, {CKA_TOKEN, &f, 1}, {CKA_ENCAPSULATE, &t, 1}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &f, 1}, {CKA_DECAPSULATE, &t, 1}};
    for (int i = 0; i < n; i++) { CK_OBJECT_HANDLE p, v;
        check(C_GenerateKeyPair(s, &g, pt, 3, vt, 2, &p, &v), "kpgen");
        check(C_DestroyObject(s, p), "destroy"); check(C_DestroyObject(s, v), "destroy"); }
}

enum op { AES, ENCAPS, DECAPS, KPGEN };

__attribute__((noinline)) void measured(enum op op, int n) {
    switch (op) {
    case AES: run_aes(n); break;
    case ENCAPS: run_encaps(n); break;
    case DECAPS: run_decaps(n); break;
    case KPGEN: run_kpgen(n); break;
    }
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: drv module pin aes|encaps|decaps|kpgen N\n"); return 2; }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL); if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    SYM(C_Initialize) SYM(C_GetSlotList) SYM(C_OpenSession) SYM(C_Login) SYM(C_GenerateKeyPair)
    check(C_Initialize(NULL), "init");
    CK_SLOT_ID slots[8]; CK_ULONG ns = 8; check(C_GetSlotList(CK_TRUE, slots, &ns), "slots");
    check(C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), "open");
    check(C_Login(s, CKU_USER, (CK_UTF8CHAR *)argv[2], strlen(argv[2])), "login");
    int n = atoi(argv[4]);
    if (!strcmp(argv[3], "aes")) { run_aes(3); measured(AES, n); return 0; }
    if (!strcmp(argv[3], "kpgen")) { run_kpgen(3); measured(KPGEN, n); return 0; }
    CK_MECHANISM g = {CKM_ML_KEM_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG ps = CKP_ML_KEM_768; CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ATTRIBUTE pt[] = {{CKA_PARAMETER_SET, &ps, sizeof ps}, {CKA_TOKEN, &f, 1}, {CKA_ENCAPSULATE, &t, 1}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &f, 1}, {CKA_DECAPSULATE, &t, 1}};
    check(C_GenerateKeyPair(s, &g, pt, 3, vt, 2, &pub_key, &priv_key), "kpgen");
    if (!strcmp(argv[3], "encaps")) { run_encaps(3); measured(ENCAPS, n); return 0; }
    if (strcmp(argv[3], "decaps")) { fprintf(stderr, "unknown operation %s\n", argv[3]); return 2; }
    SYM(C_EncapsulateKey) SYM(C_DestroyObject)
    CK_MECHANISM m = {CKM_ML_KEM, NULL, 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY; CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE tpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_TOKEN, &f, 1}};
    CK_OBJECT_HANDLE h; ciphertext_len = sizeof ciphertext;
    check(C_EncapsulateKey(s, &m, pub_key, tpl, 3, ciphertext, &ciphertext_len, &h), "encaps");
    check(C_DestroyObject(s, h), "destroy");
    run_decaps(3); measured(DECAPS, n);
    return 0;
}
