//! The wrap record: a secret key sealed under one workspace master key version.
//!
//! Format version 1 (documented in `doc/wrap-record.md`), all integers big-endian:
//!
//! ```text
//! magic "CVWR" (4) | format 0x01 (1) | algorithm 0x01 = AES-256-GCM (1)
//! | workspace length (1) | workspace (UTF-8) | master key version (4)
//! | attributes length (2) | attributes (the key's security-relevant attributes, TLV)
//! | nonce (12) | ciphertext of the key value | tag (16)
//! ```
//!
//! Everything before the nonce is the header; the AEAD's associated data is the header
//! followed by the caller's associated data (`C_WrapKeyAuthenticated`), so the version,
//! the workspace and every bound attribute are authenticated: a key cannot come back
//! under another master version, workspace or policy, and one flipped byte fails.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Error, Internal, Result};
use crate::mechanism::aes_gcm::GcmKey;
use crate::mechanism::GcmParams;
use crate::object::Template;

const MAGIC: &[u8; 4] = b"CVWR";
const FORMAT_V1: u8 = 1;
const ALG_AES_256_GCM: u8 = 1;
const NONCE_LEN: usize = 12;
/// The AES-GCM tag length of every record (what a master key is prepared for).
pub const TAG_LEN: usize = 16;

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The workspace whose master key sealed the record.
    pub workspace: String,
    /// The master key version.
    pub version: u32,
    /// The bound attributes.
    pub attrs: Template,
    /// Length of the header (where the nonce starts).
    len: usize,
}

fn header(workspace: &str, version: u32, attrs: &Template) -> Result<Vec<u8>> {
    let ws_len = u8::try_from(workspace.len()).map_err(|_| Error::Internal(Internal::RecordFieldTooLong))?;
    let encoded = attrs.encode_nested()?;
    let attrs_len = u16::try_from(encoded.len()).map_err(|_| Error::Internal(Internal::RecordFieldTooLong))?;
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&[FORMAT_V1, ALG_AES_256_GCM, ws_len]);
    h.extend_from_slice(workspace.as_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&attrs_len.to_be_bytes());
    h.extend_from_slice(&encoded);
    Ok(h)
}

fn gcm(nonce: Vec<u8>, header: &[u8], ad: &[u8]) -> GcmParams {
    let mut aad = header.to_vec();
    aad.extend_from_slice(ad);
    GcmParams { iv: nonce, aad, tag_len: TAG_LEN }
}

/// Seals `value` (with its bound `attrs`) under master key `version`.
pub fn seal(
    master: &GcmKey,
    workspace: &str,
    version: u32,
    attrs: &Template,
    value: &[u8],
    ad: &[u8],
) -> Result<Vec<u8>> {
    let mut record = header(workspace, version, attrs)?;
    let mut nonce = vec![0u8; NONCE_LEN];
    crate::mechanism::primitives::fill_random(&mut nonce)?;
    let params = gcm(nonce.clone(), &record, ad);
    record.extend_from_slice(&nonce);
    master.seal_into(&params, value, &mut record)?;
    Ok(record)
}

/// Length of a record for a `value_len`-byte key with `attrs`.
pub fn sealed_len(workspace: &str, attrs: &Template, value_len: usize) -> Result<usize> {
    Ok(header(workspace, 0, attrs)?.len() + NONCE_LEN + value_len + TAG_LEN)
}

/// Reads a record's header; anything malformed is `CKR_WRAPPED_KEY_INVALID`.
pub fn parse(record: &[u8]) -> Result<Header> {
    let bad = || Error::WrappedKeyInvalid;
    let rest = record.strip_prefix(MAGIC.as_slice()).ok_or_else(bad)?;
    let (&[format, alg, ws_len], rest) = rest.split_first_chunk::<3>().ok_or_else(bad)?;
    if format != FORMAT_V1 || alg != ALG_AES_256_GCM {
        return Err(bad());
    }
    let (ws, rest) = rest.split_at_checked(usize::from(ws_len)).ok_or_else(bad)?;
    let (version, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let (attrs_len, rest) = rest.split_first_chunk::<2>().ok_or_else(bad)?;
    let (attrs, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*attrs_len))).ok_or_else(bad)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    Ok(Header {
        workspace: String::from_utf8(ws.to_vec()).map_err(|_| bad())?,
        version: u32::from_be_bytes(*version),
        attrs: Template::decode_nested(CKA_VALUE, attrs).map_err(|_| bad())?,
        len: record.len() - rest.len(),
    })
}

/// Opens a record whose header `h` was parsed from it; any failure is
/// `CKR_WRAPPED_KEY_INVALID`, never a wrong key.
pub fn open(master: &GcmKey, record: &[u8], h: &Header, ad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (head, body) = record.split_at(h.len);
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let mut value = Zeroizing::new(Vec::with_capacity(sealed.len()));
    master.open_into(&gcm(nonce.to_vec(), head, ad), sealed, &mut value).map_err(|_| Error::WrappedKeyInvalid)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Attr;

    fn master() -> GcmKey {
        GcmKey::new(&[0x42; 32], TAG_LEN).expect("key")
    }

    fn attrs() -> Template {
        Template(vec![Attr::ulong(CKA_CLASS, CKO_SECRET_KEY), Attr::bool(CKA_SENSITIVE, true)])
    }

    #[test]
    fn a_record_opens_with_its_master_and_associated_data() {
        let r = seal(&master(), "eng", 3, &attrs(), b"0123456789abcdef", b"doc-7").expect("seal");
        let h = parse(&r).expect("parse");
        assert_eq!((h.workspace.as_str(), h.version, &h.attrs), ("eng", 3, &attrs()));
        assert_eq!(open(&master(), &r, &h, b"doc-7").expect("open").as_slice(), b"0123456789abcdef");
        assert_eq!(r.len(), sealed_len("eng", &attrs(), 16).expect("len"));
    }

    #[test]
    fn every_flipped_byte_is_wrapped_key_invalid() {
        let r = seal(&master(), "eng", 3, &attrs(), b"0123456789abcdef", b"").expect("seal");
        for i in 0..r.len() {
            let mut bad = r.clone();
            bad[i] ^= 0x01;
            let result = parse(&bad).and_then(|h| open(&master(), &bad, &h, b""));
            assert_eq!(result.err(), Some(Error::WrappedKeyInvalid), "byte {i} flipped");
        }
    }

    #[test]
    fn wrong_associated_data_or_master_fails() {
        let r = seal(&master(), "eng", 1, &attrs(), b"0123456789abcdef", b"doc-7").expect("seal");
        let h = parse(&r).expect("parse");
        assert_eq!(open(&master(), &r, &h, b"doc-8").err(), Some(Error::WrappedKeyInvalid));
        let other = GcmKey::new(&[1; 32], TAG_LEN).expect("key");
        assert_eq!(open(&other, &r, &h, b"doc-7").err(), Some(Error::WrappedKeyInvalid));
    }

    #[test]
    fn truncations_never_panic() {
        let r = seal(&master(), "eng", 1, &attrs(), b"k", b"").expect("seal");
        for cut in 0..r.len() {
            let result = parse(&r[..cut]).and_then(|h| open(&master(), &r[..cut], &h, b""));
            assert!(result.is_err(), "cut at {cut}");
        }
    }
}
