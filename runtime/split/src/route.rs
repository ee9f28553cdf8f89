//! Routing: which shard each row goes to, from its key's text.

use serde::Serialize;

/// How rows are assigned to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// SHA-256 of the key's text, big-endian, mod N (the original tool's routing).
    Hash,
    /// The logical shard of the key's bytes (Notely's placement), contiguous ranges of the
    /// 4096 logical shards per shard.
    Logical,
}

impl Routing {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Routing::Hash => "hash",
            Routing::Logical => "logical",
        }
    }
}

/// The shard a key goes to: `0..shards`, or `shards` (the reserved shard) for a NULL, empty
/// or blank key. `text` is the key as SQLite renders it as text.
pub fn shard_of(text: Option<&[u8]>, shards: u32, routing: Routing) -> u32 {
    Router::new(shards, routing).route(text)
}

/// [`shard_of`] for one split: the powers of 2^32 mod N computed once, so that reducing a
/// digest takes one division.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Router {
    shards: u32,
    routing: Routing,
    /// `pow[i]` = 2^(32·(7-i)) mod N.
    pow: [u64; 8],
}

impl Router {
    pub(crate) fn new(shards: u32, routing: Routing) -> Router {
        let n = u64::from(shards.max(1));
        let mut pow = [0u64; 8];
        let mut p = 1 % n;
        for slot in pow.iter_mut().rev() {
            *slot = p;
            p = (p << 32) % n;
        }
        Router {
            shards,
            routing,
            pow,
        }
    }

    pub(crate) fn route(&self, text: Option<&[u8]>) -> u32 {
        let Some(bytes) = text else {
            return self.shards;
        };
        if is_blank(bytes) {
            return self.shards;
        }
        match self.routing {
            Routing::Hash => {
                let digest = strata_online::hash::sha256(bytes);
                // The digest as a 256-bit big-endian integer: Σ word_i · 2^(32·(7-i)), each
                // term below 2^64, the sum below 2^67.
                let sum: u128 = digest
                    .chunks_exact(4)
                    .zip(self.pow)
                    .map(|(c, p)| {
                        u128::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])) * u128::from(p)
                    })
                    .sum();
                (sum % u128::from(self.shards)) as u32
            }
            Routing::Logical => {
                let logical = u64::from(strata_online::hash::logical_shard(bytes));
                (logical * u64::from(self.shards) / strata_online::hash::LOGICAL_SHARDS as u64)
                    as u32
            }
        }
    }
}

/// Empty, or only whitespace (Unicode's, as the original tool's `strings.TrimSpace`).
fn is_blank(bytes: &[u8]) -> bool {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    if bytes.is_ascii() {
        return false;
    }
    String::from_utf8_lossy(bytes).trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_matches_the_original_tool() {
        // The original's own test vectors (shard_migrate internal/shard/shard_test.go).
        assert_eq!(shard_of(Some(b"79281558867"), 10, Routing::Hash), 0);
        assert_eq!(shard_of(Some(b"79029223667"), 10, Routing::Hash), 9);
        assert_eq!(shard_of(Some(b""), 10, Routing::Hash), 10);
        assert_eq!(shard_of(Some(b"  \t"), 10, Routing::Hash), 10);
        assert_eq!(shard_of(None, 10, Routing::Hash), 10);
        assert_eq!(shard_of(Some("\u{3000}".as_bytes()), 10, Routing::Hash), 10);
        // Against the same digest computed the slow way (byte by byte), for several n.
        for key in [&b"79281558867"[..], b"x", b"+70000000001"] {
            let digest = strata::Checksum::sha256(key);
            for n in [1u32, 2, 3, 7, 10, 255, 4096, u32::MAX] {
                let slow = digest
                    .bytes()
                    .iter()
                    .fold(0u64, |r, b| (r * 256 + u64::from(*b)) % u64::from(n));
                assert_eq!(u64::from(shard_of(Some(key), n, Routing::Hash)), slow);
            }
        }
        // Logical placement agrees with Notely's: the logical shard of the key's bytes, in
        // contiguous ranges.
        let id = uuid::Uuid::from_u128(1);
        let logical = strata_online::hash::logical_shard(id.as_bytes());
        assert_eq!(
            shard_of(Some(id.as_bytes()), 4, Routing::Logical),
            u32::from(logical) * 4 / 4096
        );
    }
}
