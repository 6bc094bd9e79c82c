/*
 * collabvault.h: CollabVault PKCS#11 vendor definitions.
 *
 * Include after the OASIS PKCS#11 3.2 headers (pkcs11.h). Every vendor constant the
 * module defines lives here and in src/names.rs, in the vendor ranges of the spec
 * (CKM_VENDOR_DEFINED, CKA_VENDOR_DEFINED, CKK_VENDOR_DEFINED, CKR_VENDOR_DEFINED) with
 * the CollabVault prefix below.
 *
 * The foundation token defines no vendor mechanism, attribute or return code yet; the
 * key hierarchy (workspace master keys, wrap records, rotation) adds them here.
 */
#ifndef COLLABVAULT_H
#define COLLABVAULT_H

/* The CollabVault block inside each vendor range: 0x80000000 | 0x43560000 ("CV"). */
#define CKV_COLLABVAULT_PREFIX 0x43560000UL

/* Model string C_GetTokenInfo reports for a token whose root of trust is software
 * (its storage key sealed under the token PINs). */
#define COLLABVAULT_MODEL_SOFT_ROOT "soft root"

#endif /* COLLABVAULT_H */
