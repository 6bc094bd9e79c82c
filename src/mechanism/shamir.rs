//! Shamir secret sharing over GF(256), for the quorum's key-encryption key, over the
//! `blahaj` crate (the maintained fork of `sharks`; `sharks` 0.5 carries
//! RUSTSEC-2024-0398).
//!
//! Plain Shamir has no integrity: a share with a wrong value still interpolates, to a
//! wrong secret. This file only refuses what is malformed (index 0, which would be the
//! secret itself; a repeated index; a share of another length; fewer shares than the
//! threshold); the caller proves a recombined secret right with its check value before
//! any use (`quorum/kek.rs`). The polynomial coefficients come from `rand`'s thread RNG
//! (ChaCha12 seeded from the OS), which is what `blahaj` draws from.

use blahaj::{Share as RawShare, Sharks};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// One share: its x coordinate (1..=255) and its bytes (as long as the secret).
pub struct Share {
    /// The x coordinate, never 0.
    pub index: u8,
    /// The polynomials' values at `index`; zeroized on drop.
    pub value: Zeroizing<Vec<u8>>,
}

/// The most shares a secret may be split into (x runs over 1..=255).
pub const MAX_SHARES: usize = 255;

/// Splits `secret` into `n` shares, any `k` of which recover it (`1 <= k <= n <= 255`).
pub fn split(secret: &[u8], k: u8, n: usize) -> Result<Vec<Share>> {
    if k == 0 || n < usize::from(k) || n > MAX_SHARES || secret.is_empty() {
        return Err(Error::ArgumentsBad("a k-of-n split needs 1 <= k <= n <= 255 and a secret"));
    }
    let shares = Sharks(k)
        .dealer(secret)
        .take(n)
        .map(|s| {
            let bytes = Zeroizing::new(Vec::from(&s));
            Share { index: bytes[0], value: Zeroizing::new(bytes[1..].to_vec()) }
        })
        .collect();
    Ok(shares)
}

/// Recombines `len`-byte secret from at least `k` shares. Refuses index 0, a repeated
/// index and a share of the wrong length (`Error::QuorumFailed` names which); says
/// nothing about whether the result is right.
pub fn combine(shares: &[Share], k: u8, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut seen = [false; 256];
    for s in shares {
        if s.index == 0 {
            return Err(Error::QuorumFailed("a share has index 0"));
        }
        if std::mem::replace(&mut seen[usize::from(s.index)], true) {
            return Err(Error::QuorumFailed("two shares have the same index"));
        }
        if s.value.len() != len {
            return Err(Error::QuorumFailed("a share has the wrong length"));
        }
    }
    if k == 0 || shares.len() < usize::from(k) {
        return Err(Error::QuorumFailed("fewer shares than the threshold"));
    }
    let raw: Vec<RawShare> = shares
        .iter()
        .map(|s| {
            let bytes = Zeroizing::new([&[s.index][..], &s.value].concat());
            RawShare::try_from(bytes.as_slice()).map_err(|_| Error::QuorumFailed("a share does not decode"))
        })
        .collect::<Result<_>>()?;
    let secret = Sharks(k).recover(&raw).map_err(|_| Error::QuorumFailed("the shares do not recombine"))?;
    Ok(Zeroizing::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(shares: &[Share], which: &[usize]) -> Vec<Share> {
        which.iter().map(|&i| Share { index: shares[i].index, value: shares[i].value.clone() }).collect()
    }

    #[test]
    fn any_k_of_n_recover_the_secret() {
        let secret = [0x5au8; 32];
        let shares = split(&secret, 2, 3).unwrap();
        assert_eq!(shares.iter().map(|s| s.index).collect::<Vec<_>>(), [1, 2, 3]);
        for pair in [[0, 1], [0, 2], [1, 2]] {
            assert_eq!(combine(&pick(&shares, &pair), 2, 32).unwrap().as_slice(), secret);
        }
    }

    #[test]
    fn fewer_than_k_are_refused_and_one_share_says_nothing_alone() {
        let shares = split(&[7u8; 32], 3, 5).unwrap();
        assert!(matches!(combine(&pick(&shares, &[0, 1]), 3, 32), Err(Error::QuorumFailed(_))));
        // With k = 3 a single share is uniformly random: it differs from the secret.
        assert_ne!(shares[0].value.as_slice(), [7u8; 32]);
    }

    #[test]
    fn index_zero_duplicates_and_wrong_lengths_are_refused() {
        let shares = split(&[1u8; 32], 2, 3).unwrap();
        let mut zero = pick(&shares, &[0, 1]);
        zero[0].index = 0;
        assert_eq!(combine(&zero, 2, 32).err(), Some(Error::QuorumFailed("a share has index 0")));
        let dup = pick(&shares, &[0, 0]);
        assert_eq!(combine(&dup, 2, 32).err(), Some(Error::QuorumFailed("two shares have the same index")));
        let mut short = pick(&shares, &[0, 1]);
        short[1].value.pop();
        assert_eq!(combine(&short, 2, 32).err(), Some(Error::QuorumFailed("a share has the wrong length")));
    }

    #[test]
    fn a_forged_share_steers_the_result_which_is_why_callers_check_it() {
        let secret = [9u8; 32];
        let shares = split(&secret, 2, 3).unwrap();
        let mut forged = pick(&shares, &[0, 1]);
        forged[1].value[0] ^= 1;
        assert_ne!(combine(&forged, 2, 32).unwrap().as_slice(), secret);
    }

    #[test]
    fn impossible_splits_are_refused() {
        assert!(split(&[1; 32], 0, 3).is_err());
        assert!(split(&[1; 32], 4, 3).is_err());
        assert!(split(&[1; 32], 2, 256).is_err());
        assert!(split(&[], 2, 3).is_err());
    }
}
