//! The stored encoding of an attribute list: `type (u64 LE) || length (u32 LE) || value`,
//! repeated. Values keep the C ABI's native layout (`CK_ULONG` is 8 bytes little-endian
//! on every platform this module builds for).

use cryptoki_sys::CK_ATTRIBUTE_TYPE;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Encodes attributes in order; a value over 4 GiB is refused.
pub fn encode<'a>(attrs: impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &'a [u8])>) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    for (ty, value) in attrs {
        let len = u32::try_from(value.len()).map_err(|_| Error::AttributeValueInvalid(ty))?;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(value);
    }
    Ok(out)
}

/// Decodes what [`encode`] wrote; a damaged row is an integrity error, never a panic.
/// The values may be secret: on an error, those decoded so far are zeroized.
pub fn decode(bytes: &[u8]) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    let mut out = Vec::new();
    decode_into(bytes, &mut out).inspect_err(|_| out.iter_mut().for_each(|(_, v)| v.zeroize()))?;
    Ok(out)
}

fn decode_into(mut bytes: &[u8], out: &mut Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>) -> Result<()> {
    while !bytes.is_empty() {
        let (ty, rest) = take::<8>(bytes)?;
        let (len, rest) = take::<4>(rest)?;
        let len = u32::from_le_bytes(len) as usize;
        if rest.len() < len {
            return Err(Error::Integrity("stored attribute list is truncated"));
        }
        let (value, rest) = rest.split_at(len);
        out.push((u64::from_le_bytes(ty), value.to_vec()));
        bytes = rest;
    }
    Ok(())
}

fn take<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8])> {
    if bytes.len() < N {
        return Err(Error::Integrity("stored attribute list is truncated"));
    }
    let (head, rest) = bytes.split_at(N);
    let head: [u8; N] = head.try_into().map_err(|_| Error::Integrity("stored attribute list"))?;
    Ok((head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_values() {
        let attrs: Vec<(u64, &[u8])> = vec![(3, b"label"), (0, b""), (0x8000_0001, &[1, 2])];
        let enc = encode(attrs.iter().map(|(t, v)| (*t, *v))).expect("encode");
        let dec = decode(&enc).expect("decode");
        assert_eq!(dec.len(), 3);
        assert_eq!(dec[0], (3, b"label".to_vec()));
        assert_eq!(dec[2], (0x8000_0001, vec![1, 2]));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let enc = encode([(3u64, &b"label"[..])].into_iter()).expect("encode");
        for cut in 1..enc.len() {
            assert!(decode(&enc[..cut]).is_err(), "cut at {cut} decoded");
        }
    }
}
