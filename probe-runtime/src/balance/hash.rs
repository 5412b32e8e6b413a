//! A 64-bit hash that every probe client computes alike, on any Rust version or platform.
//!
//! `std`'s `DefaultHasher` may change between Rust releases, which would move every key of a
//! consistent-hash ring when clients upgrade; this one is fixed: FNV-1a over the bytes, then
//! MurmurHash3's 64-bit finaliser so that inputs differing in one byte land far apart on the ring.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a with a MurmurHash3 finaliser. Writing `ab` then `c` equals writing `abc`.
#[derive(Debug, Clone)]
pub(crate) struct StableHasher {
    state: u64,
}

impl StableHasher {
    pub(crate) fn new() -> Self {
        StableHasher { state: FNV_OFFSET_BASIS }
    }

    /// The finalised hash of `bytes`.
    pub(crate) fn hash(bytes: &[u8]) -> u64 {
        let mut h = StableHasher::new();
        h.write(bytes);
        h.finish()
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
    }

    /// The plain FNV-1a value, before finalising.
    fn fnv1a(&self) -> u64 {
        self.state
    }

    pub(crate) fn finish(&self) -> u64 {
        fmix64(self.fnv1a())
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let fnv = |s: &[u8]| {
            let mut h = StableHasher::new();
            h.write(s);
            h.fnv1a()
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_matches_murmur3() {
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn writes_concatenate() {
        let mut h = StableHasher::new();
        h.write(b"Demo_10.0.0.7");
        h.write(b"_9090");
        assert_eq!(h.finish(), StableHasher::hash(b"Demo_10.0.0.7_9090"));
    }

    #[test]
    fn nearby_inputs_land_far_apart() {
        let (a, b) = (StableHasher::hash(b"key-1"), StableHasher::hash(b"key-2"));
        assert!((a ^ b).count_ones() > 16, "{a:x} {b:x}");
    }
}
