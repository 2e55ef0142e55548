//! A fast hasher for the integer keys the model uses (product indices and ids,
//! index pairs). The keys come from the store, not from anyone choosing collisions,
//! so the default DoS-resistant hasher is not needed; this one is several times
//! cheaper per lookup, which matters in the per-recipient path.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) type IndexMap<K, V> = HashMap<K, V, BuildHasherDefault<IndexHasher>>;
pub(crate) type IndexSet<K> = HashSet<K, BuildHasherDefault<IndexHasher>>;

/// Multiply-rotate hashing (as in rustc's FxHasher).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IndexHasher(u64);

const SEED: u64 = 0x517c_c1b7_2722_0a95;

impl IndexHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.add(u64::from(byte));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}
