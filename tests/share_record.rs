//! Sharing a document key between two tokens with `CKM_CV_SHARE_RECORD`: the recipient
//! workspace makes an X-Wing key pair, the sender imports its public key and wraps a DEK
//! to it (a format-2 record, doc/wrap-record.md), the recipient unwraps it on its own
//! token and reads the document. No master key leaves either token. Through the C ABI,
//! with the exact codes for altered records, the wrong recipient, other associated data,
//! templates that contradict the bound attributes, and keys the wrap policy refuses.

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks, missing_docs)]
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::ptr::null_mut;

use collabvault_pkcs11::vendor::{
    CKK_CV_MLKEM1024_P384, CKK_CV_MLKEM768_P256, CKK_CV_XWING, CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN,
    CKM_CV_MLKEM768_P256_KEY_PAIR_GEN, CKM_CV_SHARE_RECORD, CKM_CV_WRAP_RECORD, CKM_CV_XWING_KEY_PAIR_GEN,
};
use common::raw::{assert_rv, Api, Template};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn mech(ty: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM { mechanism: ty, pParameter: null_mut(), ulParameterLen: 0 }
}

fn aes_template() -> Template {
    Template::default().ulong(CKA_CLASS, CKO_SECRET_KEY).ulong(CKA_KEY_TYPE, CKK_AES)
}

/// One token's session through the raw 3.2 function list.
struct Side<'a> {
    api: &'a Api,
    s: CK_SESSION_HANDLE,
}

impl Side<'_> {
    fn create(&self, t: Template) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        common::raw::create(self.api, self.s, t)
    }

    fn value(&self, h: CK_OBJECT_HANDLE) -> Vec<u8> {
        common::raw::value(self.api, self.s, h)
    }

    /// An X-Wing pair: the public half may wrap, the private half unwrap.
    fn recipient_pair(&self) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        self.recipient_pair_of(CKM_CV_XWING_KEY_PAIR_GEN)
    }

    /// A pair of the hybrid KEM that `gen` makes, for wrapping and unwrapping.
    fn recipient_pair_of(&self, gen: CK_MECHANISM_TYPE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut m = mech(gen);
        let (mut public, mut private) =
            (Template::default().flag(CKA_WRAP, true), Template::default().flag(CKA_UNWRAP, true));
        let (mut pt, mut st) = (public.raw(), private.raw());
        let (mut ph, mut sh) = (0, 0);
        let f = self.api.f.C_GenerateKeyPair.expect("fn");
        let rv = unsafe { f(self.s, &mut m, pt.as_mut_ptr(), 1, st.as_mut_ptr(), 1, &mut ph, &mut sh) };
        assert_rv(rv, CKR_OK, "C_GenerateKeyPair(recipient)");
        (ph, sh)
    }

    fn wrap(&self, ty: CK_MECHANISM_TYPE, wrapping: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE) -> Result<Vec<u8>, CK_RV> {
        let mut m = mech(ty);
        let (mut out, mut len) = (vec![0u8; 4096], 4096 as CK_ULONG);
        let rv =
            unsafe { self.api.f.C_WrapKey.expect("fn")(self.s, &mut m, wrapping, key, out.as_mut_ptr(), &mut len) };
        if rv != CKR_OK {
            return Err(rv);
        }
        out.truncate(len as usize);
        Ok(out)
    }

    fn unwrap(&self, unwrapping: CK_OBJECT_HANDLE, record: &[u8], mut t: Template) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let mut m = mech(CKM_CV_SHARE_RECORD);
        let mut raw = t.raw();
        let (mut record, mut h) = (record.to_vec(), 0);
        let f = self.api.f.C_UnwrapKey.expect("fn");
        let rv = unsafe {
            f(
                self.s,
                &mut m,
                unwrapping,
                record.as_mut_ptr(),
                record.len() as _,
                raw.as_mut_ptr(),
                raw.len() as _,
                &mut h,
            )
        };
        if rv == CKR_OK {
            Ok(h)
        } else {
            Err(rv)
        }
    }

    fn wrap_authenticated(&self, wrapping: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE, ad: &[u8]) -> Vec<u8> {
        let mut m = mech(CKM_CV_SHARE_RECORD);
        let (mut ad, mut out, mut len) = (ad.to_vec(), vec![0u8; 4096], 4096 as CK_ULONG);
        let f = self.api.f.C_WrapKeyAuthenticated.expect("fn");
        let rv =
            unsafe { f(self.s, &mut m, wrapping, key, ad.as_mut_ptr(), ad.len() as _, out.as_mut_ptr(), &mut len) };
        assert_rv(rv, CKR_OK, "C_WrapKeyAuthenticated");
        out.truncate(len as usize);
        out
    }

    fn unwrap_authenticated(&self, unwrapping: CK_OBJECT_HANDLE, record: &[u8], ad: &[u8]) -> CK_RV {
        let mut m = mech(CKM_CV_SHARE_RECORD);
        let mut t = aes_template();
        let mut raw = t.raw();
        let (mut record, mut ad, mut h) = (record.to_vec(), ad.to_vec(), 0);
        let f = self.api.f.C_UnwrapKeyAuthenticated.expect("fn");
        unsafe {
            f(
                self.s,
                &mut m,
                unwrapping,
                record.as_mut_ptr(),
                record.len() as _,
                raw.as_mut_ptr(),
                raw.len() as _,
                ad.as_mut_ptr(),
                ad.len() as _,
                &mut h,
            )
        }
    }
}

/// Two workspaces, "sender" and "recipient", each with an initialized token and a user session.
fn two_tokens(test: impl FnOnce(&Side, &Side)) {
    let _serial = common::lock();
    let _ws = common::Workspace::with_workspaces(&[("sender", None), ("recipient", None)]);
    let pkcs11 = common::load();
    let slots = pkcs11.get_all_slots().expect("slots");
    let sessions: Vec<Session> = slots
        .iter()
        .map(|slot| {
            common::init_token(&pkcs11, *slot, common::LABEL);
            common::user_session(&pkcs11, *slot)
        })
        .collect();
    let api = Api::load();
    test(&Side { api: &api, s: sessions[0].handle() }, &Side { api: &api, s: sessions[1].handle() });
}

/// The sender's DEK: an AES-256 key that may be wrapped and encrypts documents.
fn dek(side: &Side) -> CK_OBJECT_HANDLE {
    let mut m = mech(CKM_AES_KEY_GEN);
    let mut t = aes_template()
        .ulong(CKA_VALUE_LEN, 32)
        .flag(CKA_EXTRACTABLE, true)
        .flag(CKA_ENCRYPT, true)
        .flag(CKA_DECRYPT, true);
    let mut raw = t.raw();
    let mut h = 0;
    let rv = unsafe { side.api.f.C_GenerateKey.expect("fn")(side.s, &mut m, raw.as_mut_ptr(), raw.len() as _, &mut h) };
    assert_rv(rv, CKR_OK, "C_GenerateKey(DEK)");
    h
}

/// AES-ECB of one block under `key` (enough to show two tokens hold the same key).
fn encrypt_block(side: &Side, key: CK_OBJECT_HANDLE) -> Vec<u8> {
    let mut m = mech(CKM_AES_ECB);
    assert_rv(unsafe { side.api.f.C_EncryptInit.expect("fn")(side.s, &mut m, key) }, CKR_OK, "C_EncryptInit");
    let (mut block, mut out, mut len) = (*b"a document block", [0u8; 16], 16 as CK_ULONG);
    let rv = unsafe { side.api.f.C_Encrypt.expect("fn")(side.s, block.as_mut_ptr(), 16, out.as_mut_ptr(), &mut len) };
    assert_rv(rv, CKR_OK, "C_Encrypt");
    out.to_vec()
}

#[test]
fn a_dek_shared_to_another_tokens_x_wing_key_opens_there_with_its_attributes() {
    two_tokens(|sender, recipient| {
        let (public, private) = recipient.recipient_pair();
        // Only the public key travels to the sender.
        let imported = Template::default()
            .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
            .ulong(CKA_KEY_TYPE, CKK_CV_XWING)
            .bytes(CKA_VALUE, &recipient.value(public))
            .flag(CKA_WRAP, true);
        let recipient_key = sender.create(imported).expect("import the recipient's public key");
        let key = dek(sender);
        let record = sender.wrap(CKM_CV_SHARE_RECORD, recipient_key, key).expect("share");
        assert_eq!(&record[..6], b"CVWR\x02\x02", "format 2, X-Wing + AES-256-GCM");
        let opened = recipient.unwrap(private, &record, aes_template()).expect("open on the recipient's token");
        assert_eq!(encrypt_block(recipient, opened), encrypt_block(sender, key), "the same key on both tokens");
        // The bound attributes came along: a template contradicting them is refused.
        let loosened = aes_template().flag(CKA_SENSITIVE, false);
        assert_eq!(recipient.unwrap(private, &record, loosened), Err(CKR_TEMPLATE_INCONSISTENT));
    });
}

#[test]
fn a_dek_shared_to_an_mlkem768_p256_key_opens_there_and_with_no_other_kem() {
    two_tokens(|sender, recipient| {
        let (public, private) = recipient.recipient_pair_of(CKM_CV_MLKEM768_P256_KEY_PAIR_GEN);
        let (_, xwing_private) = recipient.recipient_pair();
        let imported = Template::default()
            .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
            .ulong(CKA_KEY_TYPE, CKK_CV_MLKEM768_P256)
            .bytes(CKA_VALUE, &recipient.value(public))
            .flag(CKA_WRAP, true);
        let recipient_key = sender.create(imported).expect("import the recipient's MLKEM768-P256 public key");
        let key = dek(sender);
        let record = sender.wrap(CKM_CV_SHARE_RECORD, recipient_key, key).expect("share");
        assert_eq!(&record[..6], b"CVWR\x02\x03", "format 2, MLKEM768-P256 + AES-256-GCM");
        assert_eq!(&record[6..8], &1153u16.to_be_bytes(), "the KEM ciphertext's length");
        let opened = recipient.unwrap(private, &record, aes_template()).expect("open on the recipient's token");
        assert_eq!(encrypt_block(recipient, opened), encrypt_block(sender, key), "the same key on both tokens");
        // The record names its KEM: an X-Wing key does not open it, nor a record relabelled.
        let refused = recipient.unwrap(xwing_private, &record, aes_template());
        assert_eq!(refused, Err(CKR_WRAPPED_KEY_INVALID), "an X-Wing key");
        let mut relabelled = record.clone();
        relabelled[5] = 0x04;
        assert_eq!(recipient.unwrap(private, &relabelled, aes_template()), Err(CKR_WRAPPED_KEY_INVALID));
        // MLKEM1024-P384 recipients too, algorithm 0x04.
        let (public, private) = recipient.recipient_pair_of(CKM_CV_MLKEM1024_P384_KEY_PAIR_GEN);
        let imported = Template::default()
            .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
            .ulong(CKA_KEY_TYPE, CKK_CV_MLKEM1024_P384)
            .bytes(CKA_VALUE, &recipient.value(public))
            .flag(CKA_WRAP, true);
        let recipient_key = sender.create(imported).expect("import the MLKEM1024-P384 public key");
        let record = sender.wrap(CKM_CV_SHARE_RECORD, recipient_key, key).expect("share");
        assert_eq!(&record[..6], b"CVWR\x02\x04");
        let opened = recipient.unwrap(private, &record, aes_template()).expect("open");
        assert_eq!(encrypt_block(recipient, opened), encrypt_block(sender, key));
    });
}

#[test]
fn altered_records_another_recipient_and_other_associated_data_are_refused() {
    two_tokens(|sender, recipient| {
        let (public, private) = recipient.recipient_pair();
        let (_, other_private) = recipient.recipient_pair();
        let key = dek(recipient);
        let record = recipient.wrap(CKM_CV_SHARE_RECORD, public, key).expect("share");
        for i in [0, 5, 7, 500, record.len() - 30, record.len() - 1] {
            let mut altered = record.clone();
            altered[i] ^= 0x01;
            assert_eq!(recipient.unwrap(private, &altered, aes_template()), Err(CKR_WRAPPED_KEY_INVALID), "byte {i}");
        }
        assert_eq!(
            recipient.unwrap(private, &record[..record.len() - 1], aes_template()),
            Err(CKR_WRAPPED_KEY_INVALID)
        );
        assert_eq!(
            recipient.unwrap(other_private, &record, aes_template()),
            Err(CKR_WRAPPED_KEY_INVALID),
            "another recipient"
        );
        // A master-key record (format 1) is no share record.
        let master = recipient.wrap(CKM_CV_WRAP_RECORD, master_key(recipient), key).expect("wrap record");
        assert_eq!(recipient.unwrap(private, &master, aes_template()), Err(CKR_WRAPPED_KEY_INVALID), "format 1");
        // Associated data binds.
        let bound = recipient.wrap_authenticated(public, key, b"document 42");
        assert_rv(recipient.unwrap_authenticated(private, &bound, b"document 42"), CKR_OK, "the same AD");
        assert_rv(recipient.unwrap_authenticated(private, &bound, b"document 43"), CKR_WRAPPED_KEY_INVALID, "other AD");
        // The wrap policy: a key without CKA_EXTRACTABLE stays; an AES key is no recipient.
        let mut m = mech(CKM_AES_KEY_GEN);
        let mut t = aes_template().ulong(CKA_VALUE_LEN, 32).flag(CKA_EXTRACTABLE, false);
        let mut raw = t.raw();
        let mut fixed = 0;
        let rv = unsafe {
            sender.api.f.C_GenerateKey.expect("fn")(sender.s, &mut m, raw.as_mut_ptr(), raw.len() as _, &mut fixed)
        };
        assert_rv(rv, CKR_OK, "C_GenerateKey");
        let imported = Template::default()
            .ulong(CKA_CLASS, CKO_PUBLIC_KEY)
            .ulong(CKA_KEY_TYPE, CKK_CV_XWING)
            .bytes(CKA_VALUE, &recipient.value(public))
            .flag(CKA_WRAP, true);
        let recipient_key = sender.create(imported).expect("import");
        assert_eq!(sender.wrap(CKM_CV_SHARE_RECORD, recipient_key, fixed), Err(CKR_KEY_UNEXTRACTABLE));
        let aes = dek(sender);
        assert_eq!(sender.wrap(CKM_CV_SHARE_RECORD, aes, dek(sender)), Err(CKR_WRAPPING_KEY_TYPE_INCONSISTENT));
    });
}

/// The "current master key" object of the session's token.
fn master_key(side: &Side) -> CK_OBJECT_HANDLE {
    let mut t = Template::default().bytes(collabvault_pkcs11::vendor::CKA_CV_CURRENT, &[CK_TRUE]);
    let mut raw = t.raw();
    let f = side.api.f;
    assert_rv(unsafe { f.C_FindObjectsInit.expect("fn")(side.s, raw.as_mut_ptr(), 1) }, CKR_OK, "find init");
    let (mut h, mut n) = (0, 0);
    assert_rv(unsafe { f.C_FindObjects.expect("fn")(side.s, &mut h, 1, &mut n) }, CKR_OK, "find");
    assert_rv(unsafe { f.C_FindObjectsFinal.expect("fn")(side.s) }, CKR_OK, "find final");
    assert_eq!(n, 1, "one current master key object");
    h
}
