/*
 * collabvault.h: CollabVault PKCS#11 vendor definitions.
 *
 * Include after the OASIS PKCS#11 3.2 headers (pkcs11.h). Every vendor constant the
 * module defines lives here and in src/vendor.rs, in the vendor ranges of the spec
 * (CKM_VENDOR_DEFINED, CKA_VENDOR_DEFINED, CKK_VENDOR_DEFINED, CKR_VENDOR_DEFINED) with
 * the CollabVault prefix below.
 *
 * src/vendor.rs holds the same values; a unit test checks the two agree.
 */
#ifndef COLLABVAULT_H
#define COLLABVAULT_H

/* The CollabVault block inside each vendor range: 0x80000000 | 0x43560000 ("CV"). */
#define CKV_COLLABVAULT_PREFIX 0x43560000UL

/* ---- Mechanisms (CKM_VENDOR_DEFINED | prefix | n) ---- */

/* Wraps a secret key under the workspace master key as a versioned wrap record
 * (C_WrapKey / C_UnwrapKey, C_WrapKeyAuthenticated / C_UnwrapKeyAuthenticated). The
 * wrapping key is a master key object. No parameter. Format: doc/wrap-record.md. */
#define CKM_CV_WRAP_RECORD 0xC3560001UL
/* Re-wraps a record under the newest master key version in one call: C_EncryptInit with
 * a master key object, then C_Encrypt(old record) -> new record. Parameter: the record's
 * associated data (may be empty). */
#define CKM_CV_REWRAP_RECORD 0xC3560002UL
/* Rotates the workspace master key: C_GenerateKey returns the new current version's
 * object. No parameter. */
#define CKM_CV_ROTATE_MASTER 0xC3560003UL
/* Re-wraps every DEK the token stores (token secret keys) to the active master key
 * version: C_GenerateKey; the template's CKA_VALUE_LEN, if given, is the batch size. One
 * transaction per batch: resumable after a crash. Returns the current master key object. */
#define CKM_CV_REWRAP_STORED 0xC3560004UL

/* ---- Attributes (CKA_VENDOR_DEFINED | prefix | n) ---- */

/* X-Wing, the hybrid KEM (ML-KEM-768 + X25519), as draft-connolly-cfrg-xwing-kem-06
 * specifies it. CKM_CV_XWING_KEY_PAIR_GEN makes a CKK_CV_XWING pair (no parameter);
 * CKM_CV_XWING encapsulates (C_EncapsulateKey, public key) and decapsulates
 * (C_DecapsulateKey, private key): ciphertext 1120 bytes, shared secret 32 bytes.
 * Public CKA_VALUE: the 1216-byte encapsulation key; private CKA_VALUE: the 32-byte
 * decapsulation key (seed). */
/* Wraps a secret key to a recipient's CKK_CV_XWING, CKK_CV_MLKEM768_P256 or
 * CKK_CV_MLKEM1024_P384 public key as a share record
 * (format 2, doc/wrap-record.md): C_WrapKey with the public key, C_UnwrapKey with the
 * private key on the recipient's token; C_WrapKeyAuthenticated/C_UnwrapKeyAuthenticated
 * bind associated data. No parameter. */
#define CKM_CV_SHARE_RECORD 0xC3560005UL
#define CKM_CV_XWING_KEY_PAIR_GEN 0xC3560010UL
#define CKM_CV_XWING 0xC3560011UL
#define CKK_CV_XWING 0xC3560001UL

/* The CFRG hybrid KEMs MLKEM768-P256 and MLKEM1024-P384, pinned to
 * draft-irtf-cfrg-concrete-hybrid-kems-04 (the CG framework, i.e. the C2PRI combiner
 * with a nominal group, of draft-irtf-cfrg-hybrid-kems-12): ss = SHA3-256(ss_PQ || ss_T
 * || ct_T || ek_T || label), the private key a 32-byte seed expanded with SHAKE256.
 * The _KEY_PAIR_GEN mechanisms make a pair of their key type (no parameter); the KEM
 * mechanisms encapsulate (C_EncapsulateKey, public key) and decapsulate
 * (C_DecapsulateKey, private key) into a secret key made from the caller's template.
 * Public CKA_VALUE: ek_PQ || ek_T (the point uncompressed, SEC1); private CKA_VALUE: the
 * seed. MLKEM768-P256: public key 1249 bytes, ciphertext 1153 bytes. MLKEM1024-P384:
 * public key 1665 bytes, ciphertext 1665 bytes. Shared secret 32 bytes. A ciphertext
 * whose point is not on the curve is CKR_ENCRYPTED_DATA_INVALID; a wrong length is
 * CKR_ENCRYPTED_DATA_LEN_RANGE; an altered ML-KEM half decapsulates to an unrelated
 * secret (implicit rejection). */
#define CKM_CV_MLKEM768_P256_KEY_PAIR_GEN 0xC3560012UL
#define CKM_CV_MLKEM768_P256 0xC3560013UL
#define CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN 0xC3560014UL
#define CKM_CV_MLKEM1024_P384 0xC3560015UL
#define CKK_CV_MLKEM768_P256 0xC3560002UL
#define CKK_CV_MLKEM1024_P384 0xC3560003UL

/* CK_ULONG: the key's role, one of CV_ROLE_*. */
#define CKA_CV_ROLE 0xC3560001UL
/* CK_ULONG: a master key's version number. */
#define CKA_CV_KEY_VERSION 0xC3560002UL
/* CK_ULONG: a master key version's lifecycle, one of CV_STATE_*; setting it to
 * CV_STATE_RETIRED or CV_STATE_DESTROYED retires or destroys the version. */
#define CKA_CV_LIFECYCLE 0xC3560003UL
/* CK_ULONG: creation time, Unix seconds. */
#define CKA_CV_CREATED 0xC3560004UL
/* UTF-8: data classification, which sets the rotation schedule. */
#define CKA_CV_CLASSIFICATION 0xC3560005UL
/* CK_BBOOL: true on the object that stands for "the current master key". */
#define CKA_CV_CURRENT 0xC3560006UL
/* CK_BBOOL: true while an audit alert (an unwrap burst, with [audit] block_on_alert)
 * blocks this master key version: its unwraps fail with CKR_KEY_FUNCTION_NOT_PERMITTED
 * until the SO sets it to CK_FALSE with C_SetAttributeValue. */
#define CKA_CV_BLOCKED 0xC3560007UL
/* CK_ULONG, read-only: how many DEKs the module's own store keeps sealed under this master
 * key version (counted when read; records held by applications are not counted). */
#define CKA_CV_STORED_RECORDS 0xC3560008UL

/* ---- The quorum (doc/quorum.md) ---- */

/* Makes a new key-encryption key (KEK) for the workspace, re-seals every master key
 * version under it and splits it k-of-n among custodians (Shamir over GF(256)):
 * C_GenerateKey in an SO session. Template: CKA_CV_THRESHOLD (k; 0 or absent: the KEK is
 * sealed by the root alone) and CKA_CV_CUSTODIANS. Once a quorum exists, needs an approved
 * "change-quorum" request. Returns the current master key object. No parameter. */
#define CKM_CV_QUORUM_SPLIT 0xC3560006UL
/* The threshold k (CK_ULONG); readable on master key objects (0: no quorum). */
#define CKA_CV_THRESHOLD 0xC3560009UL
/* The custodians of a split, each: u16 name length, name, u16 salt length, salt, u32
 * Argon2id memory (KiB), u32 passes, u16 key length, X-Wing public key derived from the
 * custodian's passphrase (big-endian integers). */
#define CKA_CV_CUSTODIANS 0xC356000AUL
/* CK_BBOOL on master key objects: the master keys are locked. Set to CK_TRUE to lock
 * (revokes the unlock grant in every process); only a quorum unlocks. */
#define CKA_CV_LOCKED 0xC356000BUL
/* CK_ULONG on master key objects: when the unlock grant expires (Unix seconds; 0: none). */
#define CKA_CV_UNLOCK_EXPIRES 0xC356000CUL

/* C_LoginUser user type of a custodian: username "name" approves the workspace's unlock,
 * "name:N" approves request N; the PIN is the custodian's passphrase. The session's login
 * state does not change. */
#define CKU_CV_CUSTODIAN 0xC3560001UL

/* Return codes (CKR_VENDOR_DEFINED | prefix | n). */
/* The workspace's master keys are locked until a quorum unlocks them. */
#define CKR_CV_LOCKED 0xC3560001UL
/* The operation needs a quorum's approval; the module opened (or found) the request. */
#define CKR_CV_QUORUM_REQUIRED 0xC3560002UL
/* The approved shares do not rebuild the KEK (forged, swapped or foreign share). */
#define CKR_CV_QUORUM_FAILED 0xC3560003UL
/* The workspace is under a legal hold: no version retired or destroyed, no stored DEK
 * deleted, the token not re-initialized. */
#define CKR_CV_LEGAL_HOLD 0xC3560004UL
/* CK_BBOOL on master key objects: the workspace is under a legal hold. The SO sets it
 * to CK_TRUE (a CKA_LABEL in the same template is recorded as the reason); CK_FALSE lifts
 * it, which needs an approved "lift-hold" request when the workspace has a quorum. */
#define CKA_CV_LEGAL_HOLD 0xC356000DUL
/* Bytes on master key objects: set to a person's name to ask for an emergency access
 * window for them (CKR_CV_QUORUM_REQUIRED until the custodians approve the
 * "emergency-access:NAME" request; then it opens for [quorum] emergency_minutes); set
 * empty to close it. While open, versions an audit alert blocked unwrap, each use
 * audited. Reads the open window's name (empty: none). */
#define CKA_CV_EMERGENCY_ACCESS 0xC356000EUL
/* CK_ULONG on master key objects: when the emergency window closes (Unix seconds; 0: none). */
#define CKA_CV_EMERGENCY_EXPIRES 0xC356000FUL

/* BYOK: imports a customer's 32-byte key as a new master key version (C_UnwrapKey). The
 * unwrapping key is an import key: the private half of an RSA (3072 bits or more) or
 * ML-KEM-768/1024 key pair made on the token (CKA_LOCAL, always sensitive, never
 * extractable) whose CKA_ALLOWED_MECHANISMS is exactly { CKM_CV_IMPORT_MASTER }. The
 * wrapped key: RSA-OAEP (SHA-256, MGF1-SHA-256, no label) of the key; or for ML-KEM the
 * ciphertext followed by AES-256 key wrap with padding (RFC 5649) of the key under the
 * shared secret. Needs an approved "import-key" request when the workspace has a quorum.
 * Returns the new version's master key object; the previous version becomes
 * decrypt-only. No parameter. */
#define CKM_CV_IMPORT_MASTER 0xC3560007UL
/* Recovery kit export (C_WrapKey; doc/recovery.md): every master key version that still
 * unwraps, sealed (AES-256-GCM) under the wrapping key, an AES-256 secret key with
 * CKA_WRAP (the kit key). The key to wrap is the current master key object; the
 * parameter is the 16-byte kit id. Output: the kit's KEYS section. Only the user; with a
 * quorum, only unlocked and with an approved "export-kit" request. Audited. */
#define CKM_CV_EXPORT_KIT 0xC3560020UL
/* UTF-8 on master key objects: where the version's key came from: "generated", or
 * "imported:rsa-oaep-sha256" / "imported:ml-kem-768+aes-kwp" / "imported:ml-kem-1024+aes-kwp". */
#define CKA_CV_ORIGIN 0xC3560010UL
/* UTF-8 on master key objects (user or SO, read-write session): opens a quorum request
 * ahead of the operation it guards. The value is the action ("unlock", "destroy-vN",
 * "emergency-access:NAME", "change-quorum", "init-token", "lift-hold", "import-key",
 * "export-kit"), optionally followed by '\n' and the request's lifetime in hours (at most
 * [quorum] approval_hours). An open request for the same action is reused. Read as a
 * CK_ULONG: the number of the request this session last opened or found (0: none). */
#define CKA_CV_QUORUM_REQUEST 0xC3560011UL
/* CK_ULONG on master key objects (read-write session): cancels open quorum request N;
 * only whoever opened it or the SO. Its approvals count for nothing after that. Unknown N:
 * CKR_ATTRIBUTE_VALUE_INVALID; a request already used or cancelled: CKR_ACTION_PROHIBITED. */
#define CKA_CV_CANCEL_REQUEST 0xC3560012UL

/* ---- Values ---- */

#define CV_ROLE_MASTER 1UL        /* workspace master key */
#define CV_ROLE_KEK 2UL           /* key-encryption key */
#define CV_ROLE_DEK 3UL           /* data-encryption key */

#define CV_STATE_ACTIVE 1UL       /* wraps and unwraps */
#define CV_STATE_DECRYPT_ONLY 2UL /* unwraps only */
#define CV_STATE_RETIRED 3UL      /* no longer unwraps */
#define CV_STATE_DESTROYED 4UL    /* its sealed value is gone */

/* Model strings C_GetTokenInfo reports: the root of trust behind the token. */
#define COLLABVAULT_MODEL_SOFT_ROOT "soft root" /* storage key sealed under the PINs */
#define COLLABVAULT_MODEL_HSM_ROOT "hsm root"   /* root key in an underlying PKCS#11 slot */

#endif /* COLLABVAULT_H */
