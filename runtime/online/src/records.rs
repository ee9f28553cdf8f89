//! The records the engine remembers between commits to their database (see
//! [`crate::Engine::get_many`]): as with the placements ([`crate::placements`]), each kept
//! under the commit stamp of its database ([`crate::Pool::stamp`]) read before it was, and
//! answered from memory only while that stamp stands (nothing committed there since, by any
//! connection of any process) and for a second at most. Bounded in records and in bytes.

use std::collections::HashMap;
use std::time::Instant;

use crate::engine::Item;
use crate::placements::REMEMBER_AT_MOST;
use crate::stamp::Stamp;

/// Records one database's cache keeps at most before it forgets them all.
const KEPT_MAX: usize = 16_384;
/// Bytes (of the records' encodings) one database's cache keeps at most.
const BYTES_MAX: usize = 16 << 20;
/// A record whose encoding is longer is read each time, never kept.
const RECORD_MAX: usize = 64 << 10;

/// One database's remembered records: what reads found for `(owner, id)` (`None`: no such
/// record) while its commit stamp was `stamp`.
pub(crate) struct Records<R: Item> {
    stamp: Option<Stamp>,
    /// When the cache started over at `stamp`.
    since: Instant,
    known: HashMap<(R::Owner, R::Id), Option<R>>,
    /// The kept records' encoded sizes, summed.
    bytes: usize,
    scratch: Vec<u8>,
}

impl<R: Item> Records<R> {
    pub(crate) fn new() -> Self {
        Records {
            stamp: None,
            since: Instant::now(),
            known: HashMap::new(),
            bytes: 0,
            scratch: Vec::new(),
        }
    }

    /// How many records it remembers now.
    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }

    /// The remembered records' encoded sizes, summed.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// What a read of `key` found under `stamp`, if one did: `Some(None)` for no record.
    pub(crate) fn get(&mut self, stamp: Stamp, key: &(R::Owner, R::Id)) -> Option<Option<R>> {
        if self.stamp != Some(stamp) || self.since.elapsed() >= REMEMBER_AT_MOST {
            // Something committed since, or it is time to read again anyway.
            self.start_over(Some(stamp));
            return None;
        }
        self.known.get(key).cloned()
    }

    /// Keeps what a read begun after `stamp` was taken found for `key`, if the cache is still
    /// at that stamp (else the read may be newer or older than the cache's stamp says).
    pub(crate) fn put(&mut self, stamp: Stamp, key: (R::Owner, R::Id), found: Option<R>) {
        if self.stamp != Some(stamp) {
            return;
        }
        let size = found.as_ref().map_or(0, |r| self.size(r));
        if size > RECORD_MAX {
            return;
        }
        // Replacing (the same record read twice in one batch): its old size goes first.
        if let Some(Some(old)) = self.known.remove(&key) {
            let old = self.size(&old);
            self.bytes -= old.min(self.bytes);
        }
        if self.known.len() >= KEPT_MAX || self.bytes + size > BYTES_MAX {
            self.start_over(self.stamp);
        }
        self.bytes += size;
        self.known.insert(key, found);
    }

    /// A record's encoded size (the scratch buffer kept no larger than a record it keeps).
    fn size(&mut self, r: &R) -> usize {
        self.scratch.clear();
        r.encode(&mut self.scratch);
        let size = self.scratch.len();
        if self.scratch.capacity() > RECORD_MAX {
            self.scratch = Vec::new();
        }
        size
    }

    fn start_over(&mut self, stamp: Option<Stamp>) {
        self.stamp = stamp;
        self.since = Instant::now();
        self.known.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Rec(i64, String);

    impl Item for Rec {
        type Owner = i64;
        type Id = i64;
        fn owner(&self) -> &i64 {
            &0
        }
        fn id(&self) -> &i64 {
            &self.0
        }
        fn version(&self) -> i64 {
            1
        }
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(self.1.as_bytes());
        }
    }

    fn stamp(n: u32) -> Stamp {
        crate::stamp::new_database_stamp("records", n)
    }

    #[test]
    fn records_last_while_the_stamp_stands_a_second_at_most_and_within_their_bounds() {
        let (a, b) = (stamp(1), stamp(2));
        let rec = |id: i64, len: usize| Rec(id, "x".repeat(len));
        let mut r: Records<Rec> = Records::new();
        assert_eq!(r.get(a, &(0, 1)), None);
        r.put(a, (0, 1), Some(rec(1, 10)));
        r.put(a, (0, 2), None);
        assert_eq!(r.get(a, &(0, 1)), Some(Some(rec(1, 10))));
        assert_eq!(r.get(a, &(0, 2)), Some(None), "no such record, remembered");
        assert_eq!(r.bytes, 10);
        // Read under another stamp than the cache's: not kept.
        r.put(b, (0, 3), None);
        assert_eq!(r.get(a, &(0, 3)), None);
        // Another stamp: everything is read again.
        assert_eq!(r.get(b, &(0, 1)), None);
        assert_eq!((r.len(), r.bytes), (0, 0));
        // Too large to keep.
        r.put(b, (0, 4), Some(rec(4, RECORD_MAX + 1)));
        assert_eq!(r.get(b, &(0, 4)), None);
        // The same record read twice is counted once.
        r.put(b, (0, 5), Some(rec(5, 100)));
        r.put(b, (0, 5), Some(rec(5, 100)));
        assert_eq!(r.bytes, 100);
        // Over the byte bound: it starts over, then keeps the newcomer.
        let big = RECORD_MAX;
        for id in 0..(BYTES_MAX / big) as i64 + 1 {
            r.put(b, (1, id), Some(rec(id, big)));
        }
        assert!(r.bytes <= BYTES_MAX && r.len() >= 1, "{} bytes", r.bytes);
        assert_eq!(r.get(b, &(0, 5)), None, "forgotten when it started over");
        // The same stamp, but for longer than the bound.
        r.put(b, (0, 6), None);
        assert_eq!(r.get(b, &(0, 6)), Some(None));
        r.since -= REMEMBER_AT_MOST;
        assert_eq!(r.get(b, &(0, 6)), None);
        assert!(r.known.is_empty());
    }
}
