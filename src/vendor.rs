//! CollabVault's vendor-defined constants: every one is in the spec's vendor range with
//! the CollabVault prefix, and declared with the same value in `include/collabvault.h`.

use cryptoki_sys::{
    CKA_VENDOR_DEFINED, CKK_VENDOR_DEFINED, CKM_VENDOR_DEFINED, CKR_VENDOR_DEFINED, CK_ATTRIBUTE_TYPE, CK_KEY_TYPE,
    CK_MECHANISM_TYPE, CK_RV, CK_ULONG, CK_USER_TYPE,
};

/// The CollabVault block inside each vendor range ("CV").
pub const PREFIX: CK_ULONG = 0x4356_0000;

/// Wraps a secret key under the workspace master key as a versioned wrap record
/// (`C_WrapKey`/`C_UnwrapKey` and their 3.2 authenticated forms). No parameter.
pub const CKM_CV_WRAP_RECORD: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x01;
/// Turns a wrap record into one under the newest master key version in one call
/// (`C_EncryptInit` with a master key handle, then `C_Encrypt` of the old record). The
/// parameter, if any, is the record's associated data.
pub const CKM_CV_REWRAP_RECORD: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x02;
/// Rotates the workspace master key (`C_GenerateKey`): makes a new version current and
/// returns its object. No parameter.
pub const CKM_CV_ROTATE_MASTER: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x03;
/// Re-wraps every stored DEK to the active master key version (`C_GenerateKey`; the
/// template's `CKA_VALUE_LEN`, if given, is the batch size), one transaction per batch,
/// resumable after a crash; returns the current master key object. No parameter.
pub const CKM_CV_REWRAP_STORED: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x04;

/// Wraps a secret key to a recipient's hybrid public key (X-Wing, MLKEM768-P256 or
/// MLKEM1024-P384) as a share record (format 2,
/// `doc/wrap-record.md`): `C_WrapKey` with the recipient's public key, `C_UnwrapKey` with
/// the private key on the recipient's token; the authenticated 3.2 forms bind associated
/// data. No parameter.
pub const CKM_CV_SHARE_RECORD: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x05;

/// Makes an X-Wing key pair (`C_GenerateKeyPair`, key type [`CKK_CV_XWING`]). No
/// parameter.
pub const CKM_CV_XWING_KEY_PAIR_GEN: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x10;
/// X-Wing encapsulation and decapsulation (`C_EncapsulateKey`/`C_DecapsulateKey`): a
/// 1,120-byte ciphertext and a 32-byte shared secret. No parameter.
pub const CKM_CV_XWING: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x11;

/// Makes an MLKEM768-P256 key pair (`C_GenerateKeyPair`, key type
/// [`CKK_CV_MLKEM768_P256`]). No parameter.
pub const CKM_CV_MLKEM768_P256_KEY_PAIR_GEN: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x12;
/// MLKEM768-P256 encapsulation and decapsulation (`C_EncapsulateKey`/`C_DecapsulateKey`):
/// a 1,153-byte ciphertext and a 32-byte shared secret. No parameter.
pub const CKM_CV_MLKEM768_P256: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x13;
/// Makes an MLKEM1024-P384 key pair (`C_GenerateKeyPair`, key type
/// [`CKK_CV_MLKEM1024_P384`]). No parameter.
pub const CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x14;
/// MLKEM1024-P384 encapsulation and decapsulation: a 1,665-byte ciphertext and a 32-byte
/// shared secret. No parameter.
pub const CKM_CV_MLKEM1024_P384: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x15;

/// X-Wing keys (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem-06): public
/// `CKA_VALUE` the 1,216-byte encapsulation key, private `CKA_VALUE` the 32-byte seed.
pub const CKK_CV_XWING: CK_KEY_TYPE = CKK_VENDOR_DEFINED | PREFIX | 0x01;
/// MLKEM768-P256 keys (draft-irtf-cfrg-concrete-hybrid-kems-04): public `CKA_VALUE` the
/// 1,249-byte encapsulation key (`ek_PQ || ek_T`, the point uncompressed), private
/// `CKA_VALUE` the 32-byte seed.
pub const CKK_CV_MLKEM768_P256: CK_KEY_TYPE = CKK_VENDOR_DEFINED | PREFIX | 0x02;
/// MLKEM1024-P384 keys (draft-irtf-cfrg-concrete-hybrid-kems-04): public `CKA_VALUE` the
/// 1,665-byte encapsulation key, private `CKA_VALUE` the 32-byte seed.
pub const CKK_CV_MLKEM1024_P384: CK_KEY_TYPE = CKK_VENDOR_DEFINED | PREFIX | 0x03;

/// The key's role in the hierarchy (`CK_ULONG`: one of the `CV_ROLE_*` values).
pub const CKA_CV_ROLE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x01;
/// A master key's version number (`CK_ULONG`).
pub const CKA_CV_KEY_VERSION: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x02;
/// A master key version's lifecycle state (`CK_ULONG`: one of the `CV_STATE_*` values);
/// setting it to retired or destroyed retires or destroys the version.
pub const CKA_CV_LIFECYCLE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x03;
/// Creation time, Unix seconds (`CK_ULONG`).
pub const CKA_CV_CREATED: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x04;
/// Data classification (UTF-8), which sets the rotation schedule.
pub const CKA_CV_CLASSIFICATION: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x05;
/// Whether this object stands for "the current master key" (`CK_BBOOL`).
pub const CKA_CV_CURRENT: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x06;
/// Whether an audit alert blocked this master key version (`CK_BBOOL`); its unwraps are
/// refused until the SO sets it to false (`C_SetAttributeValue` in an SO session).
pub const CKA_CV_BLOCKED: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x07;
/// How many DEKs the module's own store keeps sealed under this master key version
/// (`CK_ULONG`, read-only, counted when read); records held by applications are unknown
/// to the module and not counted.
pub const CKA_CV_STORED_RECORDS: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x08;

/// A workspace's key-encryption key: the quorum (`C_GenerateKey`). The template's
/// [`CKA_CV_THRESHOLD`] is k and [`CKA_CV_CUSTODIANS`] the enrolled custodians (absent or
/// k = 0: a KEK sealed by the root alone, as without a quorum). Makes a new KEK, re-seals
/// every master key version under it, and splits it k-of-n among the custodians, so old
/// shares open nothing. SO only; once a quorum exists, only with a `change-quorum`
/// request the quorum approved. Returns the current master key object.
pub const CKM_CV_QUORUM_SPLIT: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x06;

/// The quorum's threshold k (`CK_ULONG`): in [`CKM_CV_QUORUM_SPLIT`]'s template, and
/// readable on master key objects (0: no quorum).
pub const CKA_CV_THRESHOLD: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x09;
/// The custodians of a [`CKM_CV_QUORUM_SPLIT`]: for each, `u16 name length || name ||
/// u16 salt length || salt || u32 Argon2id memory KiB || u32 passes || u16 key length ||
/// X-Wing public key` (big-endian), the key derived from the custodian's passphrase
/// (`cvault custodians init` derives it; the module never sees the passphrase here).
pub const CKA_CV_CUSTODIANS: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x0A;
/// Whether the workspace's master keys are locked (`CK_BBOOL`, on master key objects).
/// Setting it to true (user or SO) locks them at once in every process: the unlock grant
/// is revoked. Only a quorum unlocks.
pub const CKA_CV_LOCKED: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x0B;
/// When the current unlock grant expires, Unix seconds (`CK_ULONG`; 0: none).
pub const CKA_CV_UNLOCK_EXPIRES: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x0C;

/// `C_LoginUser` user type of a custodian: the username is the custodian's name (or
/// `name:REQUEST` to approve request number REQUEST), the PIN their passphrase. The
/// login approves (the workspace's unlock by default) and leaves the session's login
/// state unchanged.
pub const CKU_CV_CUSTODIAN: CK_USER_TYPE = 0x8000_0000 | PREFIX | 0x01;

/// The workspace's master keys are locked until a quorum of custodians unlocks them.
pub const CKR_CV_LOCKED: CK_RV = CKR_VENDOR_DEFINED | PREFIX | 0x01;
/// The operation needs a quorum's approval; the log names the request that was opened.
pub const CKR_CV_QUORUM_REQUIRED: CK_RV = CKR_VENDOR_DEFINED | PREFIX | 0x02;
/// The approved shares do not rebuild the key-encryption key (a forged, swapped or
/// foreign share): nothing was done with the result.
pub const CKR_CV_QUORUM_FAILED: CK_RV = CKR_VENDOR_DEFINED | PREFIX | 0x03;

/// The workspace is under a legal hold: no version is retired or destroyed, no stored
/// DEK deleted, the token not re-initialized.
pub const CKR_CV_LEGAL_HOLD: CK_RV = CKR_VENDOR_DEFINED | PREFIX | 0x04;
/// Whether the workspace is under a legal hold (`CK_BBOOL`, on master key objects). The
/// SO sets it to true (`CKA_LABEL` in the same template, if any, is recorded as the
/// reason); setting it to false lifts it, which needs an approved `lift-hold` request
/// when the workspace has a quorum.
pub const CKA_CV_LEGAL_HOLD: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x0D;

/// Emergency access (bytes, on master key objects): setting it to a person's name asks
/// for an emergency window for them (`CKR_CV_QUORUM_REQUIRED` until the custodians
/// approve the `emergency-access:NAME` request, then the window opens); setting it empty
/// closes the window. While open, master key versions an audit alert blocked unwrap, each
/// use audited. Reads the name of the open window (empty: none).
pub const CKA_CV_EMERGENCY_ACCESS: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x0E;
/// When the emergency window closes, Unix seconds (`CK_ULONG`; 0: none open).
pub const CKA_CV_EMERGENCY_EXPIRES: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x0F;
/// BYOK import (`C_UnwrapKey`): a customer's 32-byte key, wrapped outside the token under
/// an import key, becomes a new master key version (the active one; the previous one
/// becomes decrypt-only), its origin recorded ([`CKA_CV_ORIGIN`]) and audited. The
/// unwrapping key is the private half of an RSA (3072 bits or more) or ML-KEM-768/1024
/// pair made on the token, always sensitive and never extractable, whose
/// `CKA_ALLOWED_MECHANISMS` is exactly this mechanism. The wrapped key is RSA-OAEP
/// (SHA-256, MGF1-SHA-256, empty label) of the key, or the ML-KEM ciphertext followed by
/// the key under AES-256 key wrap with padding (RFC 5649) keyed by the shared secret
/// (`doc/byok.md`). With a quorum, only with an approved `import-key` request. Returns
/// the new version's master key object. No parameter.
pub const CKM_CV_IMPORT_MASTER: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x07;
/// Where a master key version's key came from (UTF-8, on master key objects, read-only):
/// `generated`, or `imported:<how>` for a BYOK import ([`CKM_CV_IMPORT_MASTER`]).
pub const CKA_CV_ORIGIN: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x10;

/// Opens a quorum request ahead of the operation it guards (UTF-8, on master key objects,
/// user or SO, read-write session): the action (`unlock`, `destroy-vN`,
/// `emergency-access:NAME`, `change-quorum`, `init-token`, `lift-hold`, `import-key`,
/// `export-kit`, `reshare-root`), optionally followed by `\n` and the request's lifetime in hours (at most
/// `[quorum] approval_hours`). An open request for the same action is reused. Read
/// (`CK_ULONG`): the number of the request this session last opened or found (0: none).
pub const CKA_CV_QUORUM_REQUEST: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x11;
/// Cancels open quorum request N (`CK_ULONG`, set on master key objects in a read-write
/// session, by whoever opened it or the SO): its approvals count for nothing after that.
pub const CKA_CV_CANCEL_REQUEST: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | PREFIX | 0x12;

/// Recovery kit export (`C_WrapKey`, `doc/recovery.md`): every master key version that
/// still unwraps, sealed under the wrapping key (an AES-256 secret key, `CKA_WRAP`: the
/// kit key `cvault kit export` derives from the passphrase and the second factor). The
/// key to wrap is the current master key object (the whole hierarchy); the parameter is
/// the kit id (16 bytes), bound into the sealed section with the workspace. The output is
/// the kit's KEYS section: `nonce (12) || AES-256-GCM(count || entries) || tag`, each entry
/// `version || state || created || check value || key`. Only the user; with a quorum,
/// only with the master keys unlocked and an approved `export-kit` request. Audited.
pub const CKM_CV_EXPORT_KIT: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | PREFIX | 0x20;

/// `CKA_CV_ROLE`: a workspace master key.
pub const CV_ROLE_MASTER: CK_ULONG = 1;
/// `CKA_CV_ROLE`: a key-encryption key.
pub const CV_ROLE_KEK: CK_ULONG = 2;
/// `CKA_CV_ROLE`: a data-encryption key.
pub const CV_ROLE_DEK: CK_ULONG = 3;

/// `CKA_CV_LIFECYCLE`: wraps and unwraps.
pub const CV_STATE_ACTIVE: CK_ULONG = 1;
/// `CKA_CV_LIFECYCLE`: unwraps only.
pub const CV_STATE_DECRYPT_ONLY: CK_ULONG = 2;
/// `CKA_CV_LIFECYCLE`: no longer unwraps.
pub const CV_STATE_RETIRED: CK_ULONG = 3;
/// `CKA_CV_LIFECYCLE`: its sealed value is gone.
pub const CV_STATE_DESTROYED: CK_ULONG = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_c_header() {
        let header = include_str!("../include/collabvault.h");
        for (name, value) in [
            ("CKM_CV_WRAP_RECORD", CKM_CV_WRAP_RECORD),
            ("CKM_CV_REWRAP_RECORD", CKM_CV_REWRAP_RECORD),
            ("CKM_CV_ROTATE_MASTER", CKM_CV_ROTATE_MASTER),
            ("CKM_CV_REWRAP_STORED", CKM_CV_REWRAP_STORED),
            ("CKM_CV_SHARE_RECORD", CKM_CV_SHARE_RECORD),
            ("CKM_CV_EXPORT_KIT", CKM_CV_EXPORT_KIT),
            ("CKM_CV_XWING_KEY_PAIR_GEN", CKM_CV_XWING_KEY_PAIR_GEN),
            ("CKM_CV_XWING", CKM_CV_XWING),
            ("CKK_CV_XWING", CKK_CV_XWING),
            ("CKM_CV_MLKEM768_P256_KEY_PAIR_GEN", CKM_CV_MLKEM768_P256_KEY_PAIR_GEN),
            ("CKM_CV_MLKEM768_P256", CKM_CV_MLKEM768_P256),
            ("CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN", CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN),
            ("CKM_CV_MLKEM1024_P384", CKM_CV_MLKEM1024_P384),
            ("CKK_CV_MLKEM768_P256", CKK_CV_MLKEM768_P256),
            ("CKK_CV_MLKEM1024_P384", CKK_CV_MLKEM1024_P384),
            ("CKA_CV_ROLE", CKA_CV_ROLE),
            ("CKA_CV_KEY_VERSION", CKA_CV_KEY_VERSION),
            ("CKA_CV_LIFECYCLE", CKA_CV_LIFECYCLE),
            ("CKA_CV_CREATED", CKA_CV_CREATED),
            ("CKA_CV_CLASSIFICATION", CKA_CV_CLASSIFICATION),
            ("CKA_CV_CURRENT", CKA_CV_CURRENT),
            ("CKA_CV_BLOCKED", CKA_CV_BLOCKED),
            ("CKA_CV_STORED_RECORDS", CKA_CV_STORED_RECORDS),
            ("CKM_CV_QUORUM_SPLIT", CKM_CV_QUORUM_SPLIT),
            ("CKA_CV_THRESHOLD", CKA_CV_THRESHOLD),
            ("CKA_CV_CUSTODIANS", CKA_CV_CUSTODIANS),
            ("CKA_CV_LOCKED", CKA_CV_LOCKED),
            ("CKA_CV_UNLOCK_EXPIRES", CKA_CV_UNLOCK_EXPIRES),
            ("CKU_CV_CUSTODIAN", CKU_CV_CUSTODIAN),
            ("CKR_CV_LOCKED", CKR_CV_LOCKED),
            ("CKR_CV_QUORUM_REQUIRED", CKR_CV_QUORUM_REQUIRED),
            ("CKR_CV_QUORUM_FAILED", CKR_CV_QUORUM_FAILED),
            ("CKR_CV_LEGAL_HOLD", CKR_CV_LEGAL_HOLD),
            ("CKA_CV_EMERGENCY_ACCESS", CKA_CV_EMERGENCY_ACCESS),
            ("CKA_CV_EMERGENCY_EXPIRES", CKA_CV_EMERGENCY_EXPIRES),
            ("CKA_CV_LEGAL_HOLD", CKA_CV_LEGAL_HOLD),
            ("CKM_CV_IMPORT_MASTER", CKM_CV_IMPORT_MASTER),
            ("CKA_CV_ORIGIN", CKA_CV_ORIGIN),
            ("CKA_CV_QUORUM_REQUEST", CKA_CV_QUORUM_REQUEST),
            ("CKA_CV_CANCEL_REQUEST", CKA_CV_CANCEL_REQUEST),
        ] {
            let line = format!("#define {name} 0x{value:08X}UL");
            assert!(header.contains(&line), "include/collabvault.h lacks `{line}`");
        }
    }
}
