/* A PKCS#11 module that fails on demand: it loads a real module (SoftHSM2 by default,
 * or the library CV_SHIM_MODULE names) and forwards every C_ function of the 2.40 list
 * to it, except that one call, chosen by the environment, answers an error or is slowed.
 * tests/root_faults.rs builds it (cc -shared) and names it as the module's [root].
 *
 * Control, read at every call (so a test arms it by setting the variable in its own
 * process, where the module and this shim run):
 *   CV_SHIM_FAULT = "<tag> <n> <kind> [<ms>]"
 *     tag   any word; a new tag starts the count again at zero
 *     n     the call (1-based, counted from the first call after the tag changed) to hit
 *     kind  device-error (CKR_DEVICE_ERROR), device-removed (CKR_DEVICE_REMOVED), or
 *           slow (the call sleeps <ms> milliseconds, then is forwarded)
 *   CV_SHIM_TRACE = a file to which every call appends "<count> <function>\n", the count
 *     being that of the current tag (0 when no fault is armed).
 * Unset or empty CV_SHIM_FAULT forwards everything. Only C_GetFunctionList is exported:
 * a caller then uses the 2.40 list (cryptoki falls back to it without C_GetInterface).
 *
 * The FORWARD lines are generated from include/pkcs11.h's declarations, one per member
 * of CK_FUNCTION_LIST after C_GetFunctionList, in the list's order. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkcs11.h"

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST shim;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char current_tag[128];
static unsigned long count;

/* Whether this call is the armed one; if it answers an error, *rv is set. The count and
 * the trace line are kept under the lock; the sleep of a slow call is not. */
static int fault(const char *name, CK_RV *rv) {
    const char *spec = getenv("CV_SHIM_FAULT");
    char tag[128] = "", kind[32] = "";
    unsigned long n = 0, ms = 0, now = 0;
    int armed = spec && *spec && sscanf(spec, "%127s %lu %31s %lu", tag, &n, kind, &ms) >= 3;
    pthread_mutex_lock(&lock);
    if (armed) {
        if (strcmp(tag, current_tag) != 0) {
            strcpy(current_tag, tag);
            count = 0;
        }
        now = ++count;
    }
    const char *trace = getenv("CV_SHIM_TRACE");
    if (trace && *trace) {
        FILE *f = fopen(trace, "a");
        if (f) {
            fprintf(f, "%lu %s\n", now, name);
            fclose(f);
        }
    }
    pthread_mutex_unlock(&lock);
    if (!armed || now != n) {
        return 0;
    }
    if (strcmp(kind, "slow") == 0) {
        struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        nanosleep(&t, NULL);
        return 0;
    }
    *rv = strcmp(kind, "device-removed") == 0 ? CKR_DEVICE_REMOVED : CKR_DEVICE_ERROR;
    return 1;
}

#define FORWARD(name, params, args)              \
    static CK_RV shim_##name params {            \
        CK_RV rv;                                \
        if (fault(#name, &rv)) {                 \
            return rv;                           \
        }                                        \
        return real->name args;                  \
    }
FORWARD(C_Initialize, (void * a0), (a0))
FORWARD(C_Finalize, (void * a0), (a0))
FORWARD(C_GetInfo, (CK_INFO * a0), (a0))
FORWARD(C_GetSlotList, (CK_BBOOL a0, CK_SLOT_ID * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_GetSlotInfo, (CK_SLOT_ID a0, CK_SLOT_INFO * a1), (a0, a1))
FORWARD(C_GetTokenInfo, (CK_SLOT_ID a0, CK_TOKEN_INFO * a1), (a0, a1))
FORWARD(C_GetMechanismList, (CK_SLOT_ID a0, CK_MECHANISM_TYPE * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_GetMechanismInfo, (CK_SLOT_ID a0, CK_MECHANISM_TYPE a1, CK_MECHANISM_INFO * a2), (a0, a1, a2))
FORWARD(C_InitToken, (CK_SLOT_ID a0, CK_UTF8CHAR * a1, CK_ULONG a2, CK_UTF8CHAR * a3), (a0, a1, a2, a3))
FORWARD(C_InitPIN, (CK_SESSION_HANDLE a0, CK_UTF8CHAR * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_SetPIN, (CK_SESSION_HANDLE a0, CK_UTF8CHAR * a1, CK_ULONG a2, CK_UTF8CHAR * a3, CK_ULONG a4), (a0, a1, a2, a3, a4))
FORWARD(C_OpenSession, (CK_SLOT_ID a0, CK_FLAGS a1, void * a2, CK_NOTIFY a3, CK_SESSION_HANDLE * a4), (a0, a1, a2, a3, a4))
FORWARD(C_CloseSession, (CK_SESSION_HANDLE a0), (a0))
FORWARD(C_CloseAllSessions, (CK_SLOT_ID a0), (a0))
FORWARD(C_GetSessionInfo, (CK_SESSION_HANDLE a0, CK_SESSION_INFO * a1), (a0, a1))
FORWARD(C_GetOperationState, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_SetOperationState, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_OBJECT_HANDLE a3, CK_OBJECT_HANDLE a4), (a0, a1, a2, a3, a4))
FORWARD(C_Login, (CK_SESSION_HANDLE a0, CK_USER_TYPE a1, CK_UTF8CHAR * a2, CK_ULONG a3), (a0, a1, a2, a3))
FORWARD(C_Logout, (CK_SESSION_HANDLE a0), (a0))
FORWARD(C_CreateObject, (CK_SESSION_HANDLE a0, CK_ATTRIBUTE * a1, CK_ULONG a2, CK_OBJECT_HANDLE * a3), (a0, a1, a2, a3))
FORWARD(C_CopyObject, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ATTRIBUTE * a2, CK_ULONG a3, CK_OBJECT_HANDLE * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DestroyObject, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1), (a0, a1))
FORWARD(C_GetObjectSize, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_GetAttributeValue, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ATTRIBUTE * a2, CK_ULONG a3), (a0, a1, a2, a3))
FORWARD(C_SetAttributeValue, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ATTRIBUTE * a2, CK_ULONG a3), (a0, a1, a2, a3))
FORWARD(C_FindObjectsInit, (CK_SESSION_HANDLE a0, CK_ATTRIBUTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_FindObjects, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE * a1, CK_ULONG a2, CK_ULONG * a3), (a0, a1, a2, a3))
FORWARD(C_FindObjectsFinal, (CK_SESSION_HANDLE a0), (a0))
FORWARD(C_EncryptInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
FORWARD(C_Encrypt, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_EncryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_EncryptFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_DecryptInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
FORWARD(C_Decrypt, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DecryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DecryptFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_DigestInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1), (a0, a1))
FORWARD(C_Digest, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DigestUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_DigestKey, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1), (a0, a1))
FORWARD(C_DigestFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_SignInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
FORWARD(C_Sign, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_SignUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_SignFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
FORWARD(C_SignRecoverInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
FORWARD(C_SignRecover, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_VerifyInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
FORWARD(C_Verify, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG a4), (a0, a1, a2, a3, a4))
FORWARD(C_VerifyUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_VerifyFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_VerifyRecoverInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
FORWARD(C_VerifyRecover, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_SignEncryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
FORWARD(C_GenerateKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_ATTRIBUTE * a2, CK_ULONG a3, CK_OBJECT_HANDLE * a4), (a0, a1, a2, a3, a4))
FORWARD(C_GenerateKeyPair, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_ATTRIBUTE * a2, CK_ULONG a3, CK_ATTRIBUTE * a4, CK_ULONG a5, CK_OBJECT_HANDLE * a6, CK_OBJECT_HANDLE * a7), (a0, a1, a2, a3, a4, a5, a6, a7))
FORWARD(C_WrapKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2, CK_OBJECT_HANDLE a3, CK_BYTE * a4, CK_ULONG * a5), (a0, a1, a2, a3, a4, a5))
FORWARD(C_UnwrapKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2, CK_BYTE * a3, CK_ULONG a4, CK_ATTRIBUTE * a5, CK_ULONG a6, CK_OBJECT_HANDLE * a7), (a0, a1, a2, a3, a4, a5, a6, a7))
FORWARD(C_DeriveKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2, CK_ATTRIBUTE * a3, CK_ULONG a4, CK_OBJECT_HANDLE * a5), (a0, a1, a2, a3, a4, a5))
FORWARD(C_SeedRandom, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_GenerateRandom, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
FORWARD(C_GetFunctionStatus, (CK_SESSION_HANDLE a0), (a0))
FORWARD(C_CancelFunction, (CK_SESSION_HANDLE a0), (a0))
FORWARD(C_WaitForSlotEvent, (CK_FLAGS a0, CK_SLOT_ID * a1, void * a2), (a0, a1, a2))
#undef FORWARD

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list) {
    if (list == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    pthread_mutex_lock(&lock);
    if (real == NULL) {
        const char *path = getenv("CV_SHIM_MODULE");
        void *lib = dlopen(path && *path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        CK_C_GetFunctionList get = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
        if (get == NULL || get(&real) != CKR_OK) {
            real = NULL;
            pthread_mutex_unlock(&lock);
            return CKR_GENERAL_ERROR;
        }
        shim.version = real->version;
        shim.C_GetFunctionList = C_GetFunctionList;
#define FORWARD(name, params, args) shim.name = shim_##name;
        FORWARD(C_Initialize, (void * a0), (a0))
        FORWARD(C_Finalize, (void * a0), (a0))
        FORWARD(C_GetInfo, (CK_INFO * a0), (a0))
        FORWARD(C_GetSlotList, (CK_BBOOL a0, CK_SLOT_ID * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_GetSlotInfo, (CK_SLOT_ID a0, CK_SLOT_INFO * a1), (a0, a1))
        FORWARD(C_GetTokenInfo, (CK_SLOT_ID a0, CK_TOKEN_INFO * a1), (a0, a1))
        FORWARD(C_GetMechanismList, (CK_SLOT_ID a0, CK_MECHANISM_TYPE * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_GetMechanismInfo, (CK_SLOT_ID a0, CK_MECHANISM_TYPE a1, CK_MECHANISM_INFO * a2), (a0, a1, a2))
        FORWARD(C_InitToken, (CK_SLOT_ID a0, CK_UTF8CHAR * a1, CK_ULONG a2, CK_UTF8CHAR * a3), (a0, a1, a2, a3))
        FORWARD(C_InitPIN, (CK_SESSION_HANDLE a0, CK_UTF8CHAR * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_SetPIN, (CK_SESSION_HANDLE a0, CK_UTF8CHAR * a1, CK_ULONG a2, CK_UTF8CHAR * a3, CK_ULONG a4), (a0, a1, a2, a3, a4))
        FORWARD(C_OpenSession, (CK_SLOT_ID a0, CK_FLAGS a1, void * a2, CK_NOTIFY a3, CK_SESSION_HANDLE * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_CloseSession, (CK_SESSION_HANDLE a0), (a0))
        FORWARD(C_CloseAllSessions, (CK_SLOT_ID a0), (a0))
        FORWARD(C_GetSessionInfo, (CK_SESSION_HANDLE a0, CK_SESSION_INFO * a1), (a0, a1))
        FORWARD(C_GetOperationState, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_SetOperationState, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_OBJECT_HANDLE a3, CK_OBJECT_HANDLE a4), (a0, a1, a2, a3, a4))
        FORWARD(C_Login, (CK_SESSION_HANDLE a0, CK_USER_TYPE a1, CK_UTF8CHAR * a2, CK_ULONG a3), (a0, a1, a2, a3))
        FORWARD(C_Logout, (CK_SESSION_HANDLE a0), (a0))
        FORWARD(C_CreateObject, (CK_SESSION_HANDLE a0, CK_ATTRIBUTE * a1, CK_ULONG a2, CK_OBJECT_HANDLE * a3), (a0, a1, a2, a3))
        FORWARD(C_CopyObject, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ATTRIBUTE * a2, CK_ULONG a3, CK_OBJECT_HANDLE * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DestroyObject, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1), (a0, a1))
        FORWARD(C_GetObjectSize, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_GetAttributeValue, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ATTRIBUTE * a2, CK_ULONG a3), (a0, a1, a2, a3))
        FORWARD(C_SetAttributeValue, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1, CK_ATTRIBUTE * a2, CK_ULONG a3), (a0, a1, a2, a3))
        FORWARD(C_FindObjectsInit, (CK_SESSION_HANDLE a0, CK_ATTRIBUTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_FindObjects, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE * a1, CK_ULONG a2, CK_ULONG * a3), (a0, a1, a2, a3))
        FORWARD(C_FindObjectsFinal, (CK_SESSION_HANDLE a0), (a0))
        FORWARD(C_EncryptInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
        FORWARD(C_Encrypt, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_EncryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_EncryptFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_DecryptInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
        FORWARD(C_Decrypt, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DecryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DecryptFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_DigestInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1), (a0, a1))
        FORWARD(C_Digest, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DigestUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_DigestKey, (CK_SESSION_HANDLE a0, CK_OBJECT_HANDLE a1), (a0, a1))
        FORWARD(C_DigestFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_SignInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
        FORWARD(C_Sign, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_SignUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_SignFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG * a2), (a0, a1, a2))
        FORWARD(C_SignRecoverInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
        FORWARD(C_SignRecover, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_VerifyInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
        FORWARD(C_Verify, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG a4), (a0, a1, a2, a3, a4))
        FORWARD(C_VerifyUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_VerifyFinal, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_VerifyRecoverInit, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2), (a0, a1, a2))
        FORWARD(C_VerifyRecover, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_SignEncryptUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2, CK_BYTE * a3, CK_ULONG * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_GenerateKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_ATTRIBUTE * a2, CK_ULONG a3, CK_OBJECT_HANDLE * a4), (a0, a1, a2, a3, a4))
        FORWARD(C_GenerateKeyPair, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_ATTRIBUTE * a2, CK_ULONG a3, CK_ATTRIBUTE * a4, CK_ULONG a5, CK_OBJECT_HANDLE * a6, CK_OBJECT_HANDLE * a7), (a0, a1, a2, a3, a4, a5, a6, a7))
        FORWARD(C_WrapKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2, CK_OBJECT_HANDLE a3, CK_BYTE * a4, CK_ULONG * a5), (a0, a1, a2, a3, a4, a5))
        FORWARD(C_UnwrapKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2, CK_BYTE * a3, CK_ULONG a4, CK_ATTRIBUTE * a5, CK_ULONG a6, CK_OBJECT_HANDLE * a7), (a0, a1, a2, a3, a4, a5, a6, a7))
        FORWARD(C_DeriveKey, (CK_SESSION_HANDLE a0, CK_MECHANISM * a1, CK_OBJECT_HANDLE a2, CK_ATTRIBUTE * a3, CK_ULONG a4, CK_OBJECT_HANDLE * a5), (a0, a1, a2, a3, a4, a5))
        FORWARD(C_SeedRandom, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_GenerateRandom, (CK_SESSION_HANDLE a0, CK_BYTE * a1, CK_ULONG a2), (a0, a1, a2))
        FORWARD(C_GetFunctionStatus, (CK_SESSION_HANDLE a0), (a0))
        FORWARD(C_CancelFunction, (CK_SESSION_HANDLE a0), (a0))
        FORWARD(C_WaitForSlotEvent, (CK_FLAGS a0, CK_SLOT_ID * a1, void * a2), (a0, a1, a2))
#undef FORWARD
    }
    pthread_mutex_unlock(&lock);
    *list = &shim;
    return CKR_OK;
}
