//! Maps keyed by the ids this module hands out itself (session and object handles,
//! store row ids).
//!
//! The standard map hashes with SipHash, which resists keys chosen by an attacker to
//! collide; these keys are sequential counters the module chose, so a multiplicative
//! hash spreads them as well at a fraction of the cost, on every call's lookups.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The 64-bit golden ratio: an odd multiplier whose products of consecutive integers
/// differ in their high bits, which the map's probing uses first.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// A hasher for small integer keys (and tuples of them).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(K);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` keyed by module-chosen ids.
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_hash_apart_in_the_high_bits() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let tops: std::collections::HashSet<u64> = (1..=128u64).map(|i| build.hash_one(i) >> 57).collect();
        assert!(tops.len() > 64, "only {} distinct top-7-bit values for 128 ids", tops.len());
    }

    #[test]
    fn a_map_keyed_by_ids_works_like_any_other() {
        let mut m: IdMap<(u64, Option<u32>), u32> = IdMap::default();
        for i in 0..1000u32 {
            m.insert((u64::from(i), Some(i)), i);
        }
        assert!((0..1000u32).all(|i| m.get(&(u64::from(i), Some(i))) == Some(&i)));
        assert_eq!(m.get(&(1, None)), None);
    }
}
