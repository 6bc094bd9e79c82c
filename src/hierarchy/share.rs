//! The share record: a secret key sealed to a recipient's hybrid KEM public key (X-Wing,
//! MLKEM768-P256 or MLKEM1024-P384), so that a document key can go to another workspace
//! or a user's device without any master key leaving either token (`CKM_CV_SHARE_RECORD`).
//!
//! Format 2 of the wrap record (documented in `doc/wrap-record.md`), integers big-endian:
//!
//! ```text
//! magic "CVWR" (4) | format 0x02 (1) | algorithm (1): the recipient's KEM + AES-256-GCM
//! | KEM ciphertext length (2) | KEM ciphertext (1120, 1153 or 1665)
//! | attributes length (2) | attributes (the key's bound attributes, TLV)
//! | nonce (12) | ciphertext of the key value | tag (16)
//! ```
//!
//! The algorithm byte is the recipient key's KEM: 0x02 X-Wing, 0x03 MLKEM768-P256,
//! 0x04 MLKEM1024-P384; a record opens only with a private key of that KEM. The
//! AES-256-GCM key is HMAC-SHA256 over the KEM's shared secret with a fixed label (one key
//! per record: the shared secret is fresh for each). Everything before the nonce is the
//! header; the associated data is the header followed by the caller's, so the algorithm,
//! the KEM ciphertext and every bound attribute are authenticated.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::record::TAG_LEN;
use crate::error::{Error, Internal, Result};
use crate::mechanism::aes_gcm::GcmKey;
use crate::mechanism::hybrid_kem::{self, Variant};
use crate::mechanism::registry::AttrSource;
use crate::mechanism::registry::KeyView;
use crate::mechanism::{primitives, xwing, GcmParams};
use crate::object::Template;

const MAGIC: &[u8; 4] = b"CVWR";
const FORMAT_V2: u8 = 2;
const NONCE_LEN: usize = 12;
/// Domain separation of the record key from any other use of the shared secret.
const KEY_LABEL: &[u8] = b"CollabVault share record v2: AES-256-GCM key";

/// The KEM of a recipient key, which names the record's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecipientKem {
    XWing,
    Hybrid(Variant),
}

impl RecipientKem {
    /// The KEM of a key the session checked against the row's recipient types.
    fn of(key: &dyn AttrSource) -> Result<RecipientKem> {
        match key.attr_ulong(CKA_KEY_TYPE)? {
            Some(crate::vendor::CKK_CV_XWING) => Ok(RecipientKem::XWing),
            Some(t) => Variant::of_key_type(t).map(RecipientKem::Hybrid).ok_or(Error::KeyTypeInconsistent),
            None => Err(Error::TemplateIncomplete(CKA_KEY_TYPE)),
        }
    }

    /// The record's algorithm byte: the KEM with AES-256-GCM.
    fn alg(self) -> u8 {
        match self {
            RecipientKem::XWing => 2,
            RecipientKem::Hybrid(Variant::MlKem768P256) => 3,
            RecipientKem::Hybrid(Variant::MlKem1024P384) => 4,
        }
    }

    fn ciphertext_len(self) -> usize {
        match self {
            RecipientKem::XWing => xwing::CIPHERTEXT_LEN,
            RecipientKem::Hybrid(v) => v.ciphertext_len(),
        }
    }

    fn encapsulate(self, key: &dyn KeyView) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        match self {
            RecipientKem::XWing => xwing::encapsulate_op(key),
            RecipientKem::Hybrid(_) => hybrid_kem::encapsulate_op(key),
        }
    }

    fn decapsulate(self, key: &dyn KeyView, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            RecipientKem::XWing => xwing::decapsulate_op(key, ciphertext),
            RecipientKem::Hybrid(_) => hybrid_kem::decapsulate_op(key, ciphertext),
        }
    }
}

fn header(kem: RecipientKem, kem_ciphertext: &[u8], attrs: &Template) -> Result<Vec<u8>> {
    let too_long = || Error::Internal(Internal::RecordFieldTooLong);
    let encoded = attrs.encode_nested()?;
    let ct_len = u16::try_from(kem_ciphertext.len()).map_err(|_| too_long())?;
    let attrs_len = u16::try_from(encoded.len()).map_err(|_| too_long())?;
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&[FORMAT_V2, kem.alg()]);
    h.extend_from_slice(&ct_len.to_be_bytes());
    h.extend_from_slice(kem_ciphertext);
    h.extend_from_slice(&attrs_len.to_be_bytes());
    h.extend_from_slice(&encoded);
    Ok(h)
}

fn record_key(shared_secret: &[u8]) -> Result<GcmKey> {
    let key = primitives::hmac_sha256(shared_secret, &[KEY_LABEL])?;
    GcmKey::new(key.as_slice(), TAG_LEN)
}

fn gcm(nonce: &[u8], header: &[u8], ad: &[u8]) -> GcmParams {
    GcmParams { iv: nonce.to_vec(), aad: [header, ad].concat(), tag_len: TAG_LEN }
}

/// Length of a share record to `recipient` for a `value_len`-byte key with `attrs`.
pub fn sealed_len(recipient: &dyn KeyView, attrs: &Template, value_len: usize) -> Result<usize> {
    let kem = RecipientKem::of(recipient)?;
    Ok(header(kem, &vec![0; kem.ciphertext_len()], attrs)?.len() + NONCE_LEN + value_len + TAG_LEN)
}

/// Seals `value` (with its bound `attrs`, and `ad`) to the hybrid public key `recipient`.
pub fn seal(recipient: &dyn KeyView, attrs: &Template, value: &[u8], ad: &[u8]) -> Result<Vec<u8>> {
    let kem = RecipientKem::of(recipient)?;
    let (kem_ciphertext, shared) = kem.encapsulate(recipient)?;
    let mut record = header(kem, &kem_ciphertext, attrs)?;
    let mut nonce = [0u8; NONCE_LEN];
    primitives::fill_random(&mut nonce)?;
    let params = gcm(&nonce, &record, ad);
    record.extend_from_slice(&nonce);
    record_key(&shared)?.seal_into(&params, value, &mut record)?;
    Ok(record)
}

/// Opens a share record with the hybrid private key `recipient`: the bound attributes and
/// the key value. Anything malformed or altered, another recipient (or another KEM) or
/// other associated data is `CKR_WRAPPED_KEY_INVALID`, never a wrong key.
pub fn open(recipient: &dyn KeyView, record: &[u8], ad: &[u8]) -> Result<(Template, Zeroizing<Vec<u8>>)> {
    let bad = || Error::WrappedKeyInvalid;
    let kem = RecipientKem::of(recipient)?;
    let rest = record.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
    let (&[format, alg], rest) = rest.split_first_chunk::<2>().ok_or_else(bad)?;
    if format != FORMAT_V2 || alg != kem.alg() {
        return Err(bad());
    }
    let (ct_len, rest) = rest.split_first_chunk::<2>().ok_or_else(bad)?;
    let (kem_ciphertext, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*ct_len))).ok_or_else(bad)?;
    let (attrs_len, rest) = rest.split_first_chunk::<2>().ok_or_else(bad)?;
    let (attrs, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*attrs_len))).ok_or_else(bad)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    let attrs = Template::decode_nested(CKA_VALUE, attrs).map_err(|_| bad())?;
    let (head, body) = record.split_at(record.len() - rest.len());
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let shared = kem.decapsulate(recipient, kem_ciphertext).map_err(|_| bad())?;
    let mut value = Zeroizing::new(Vec::with_capacity(sealed.len()));
    record_key(&shared)?.open_into(&gcm(nonce, head, ad), sealed, &mut value).map_err(|_| bad())?;
    Ok((attrs, value))
}
