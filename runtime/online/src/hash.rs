//! The hashes every move and split agrees on: where a key lives (its logical shard), and a
//! record's content hash for verification.
//!
//! Both must never change: placements in every directory and the splitter's output depend on
//! the first, and ledgers written by a running move on the second (`tests` pin them with fixed
//! vectors).

use sha2::Digest;

/// Size of the logical shard space.
pub const LOGICAL_SHARDS: usize = 4096;

/// Content hashes are summed modulo this prime (2⁶¹ − 1), so that a set's hash does not depend
/// on the order it is read in.
pub const HASH_MODULUS: u64 = (1 << 61) - 1;

/// The logical shard of `key` (for a UUID: its 16 bytes): SHA-256, first two bytes
/// big-endian, `>> 4`, a number in `0..4096`.
pub fn logical_shard(key: &[u8]) -> u16 {
    let digest = sha2::Sha256::digest(key);
    u16::from_be_bytes([digest[0], digest[1]]) >> 4
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// A content hash below [`HASH_MODULUS`]: FNV-1a over `bytes`, then a SplitMix64 finaliser.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h % HASH_MODULUS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashes_never_change() {
        // Ledgers of running moves and split verification depend on these values.
        assert_eq!(content_hash(b""), 0x152a_15e9_a9b5_e8a2);
        assert_eq!(content_hash(b"note"), 0x07f6_fb2a_1cf3_09e0);
        assert_eq!(content_hash(b"abc"), 0x0dd4_9049_0804_b508);
        // SHA-256("abc") begins ba 78: 0xba78 >> 4.
        assert_eq!(logical_shard(b"abc"), 0xba78 >> 4);
        assert_eq!(sha256(b"abc")[..2], [0xba, 0x78]);
    }
}
