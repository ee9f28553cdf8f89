//! Migration checksums: SHA-256, computed while the migrations crate compiles.
//!
//! `#[migration]` serialises the migration's tokens canonically (no whitespace, no comments, no
//! doc comments, `\n` line endings) and `schema!` does the same for the declared schema; the digest
//! of both is evaluated in a `const`, so the binary carries only the 32 bytes.

use std::fmt;

/// The SHA-256 digest identifying the code of one migration.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// Digest of the concatenation of `parts`, each prefixed by its length so that moving bytes
    /// from one part to the next changes the result.
    pub const fn of(parts: &[&[u8]]) -> Checksum {
        let mut h = Sha256::new();
        let mut i = 0;
        while i < parts.len() {
            let len = (parts[i].len() as u64).to_be_bytes();
            h.update(&len);
            h.update(parts[i]);
            i += 1;
        }
        Checksum(h.finish())
    }

    /// Plain SHA-256 of `data` (no length prefix).
    pub const fn sha256(data: &[u8]) -> Checksum {
        let mut h = Sha256::new();
        h.update(data);
        Checksum(h.finish())
    }

    /// The raw digest.
    pub const fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `hex` is this checksum in lowercase hex (as stored in the history table);
    /// allocation-free, for the startup check.
    pub fn matches_hex(&self, hex: &str) -> bool {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let hex = hex.as_bytes();
        hex.len() == 64
            && self.0.iter().enumerate().all(|(i, b)| {
                hex[2 * i] == DIGITS[(b >> 4) as usize]
                    && hex[2 * i + 1] == DIGITS[(b & 15) as usize]
            })
    }

    /// Lowercase hex, as stored in the history table.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for b in self.0 {
            hex.push(char::from(DIGITS[usize::from(b >> 4)]));
            hex.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        hex
    }

    /// The first 12 hex digits, enough to tell checksums apart in tables.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_string()
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// A `const fn` SHA-256 (FIPS 180-4), small enough to evaluate at compile time.
struct Sha256 {
    state: [u32; 8],
    block: [u8; 64],
    filled: usize,
    total: u64,
}

impl Sha256 {
    const fn new() -> Self {
        Sha256 {
            state: [
                0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
                0x5be0cd19,
            ],
            block: [0; 64],
            filled: 0,
            total: 0,
        }
    }

    const fn update(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            self.block[self.filled] = data[i];
            self.filled += 1;
            if self.filled == 64 {
                self.compress();
                self.filled = 0;
            }
            i += 1;
        }
        self.total += data.len() as u64;
    }

    const fn finish(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8).to_be_bytes();
        self.update(&[0x80]);
        while self.filled != 56 {
            self.update(&[0]);
        }
        self.update(&bits);
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 8 {
            let w = self.state[i].to_be_bytes();
            out[4 * i] = w[0];
            out[4 * i + 1] = w[1];
            out[4 * i + 2] = w[2];
            out[4 * i + 3] = w[3];
            i += 1;
        }
        out
    }

    const fn compress(&mut self) {
        let mut w = [0u32; 64];
        let mut t = 0;
        while t < 16 {
            let b = &self.block;
            w[t] = u32::from_be_bytes([b[4 * t], b[4 * t + 1], b[4 * t + 2], b[4 * t + 3]]);
            t += 1;
        }
        while t < 64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
            t += 1;
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        t = 0;
        while t < 64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(w[t]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
            t += 1;
        }
        let add = [a, b, c, d, e, f, g, h];
        let mut i = 0;
        while i < 8 {
            self.state[i] = self.state[i].wrapping_add(add[i]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(data: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(data);
        h.finish().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn matches_fips_180_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(
            sha256_hex(&million_a),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(Checksum::of(&[b"ab", b"c"]), Checksum::of(&[b"a", b"bc"]));
        const C: Checksum = Checksum::of(&[b"x"]);
        assert_eq!(C, Checksum::of(&[b"x"]));
        assert_eq!(C.to_hex().len(), 64);
        assert!(C.matches_hex(&C.to_hex()));
        assert!(!C.matches_hex(&C.to_hex().to_uppercase()));
        assert!(!C.matches_hex(&C.to_hex()[1..]));
        assert!(!C.matches_hex(&Checksum::of(&[b"y"]).to_hex()));
        assert_eq!(C.short().len(), 12);
    }
}
