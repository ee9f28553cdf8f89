//! The placements the engine remembers between commits to the control database (see
//! [`crate::Engine`]'s look-up): kept under the control database's commit stamp
//! ([`crate::Pool::stamp`]) they were read after, and for a second at most.

use std::hash::Hash;

use crate::directory::Placement;
use crate::stamp::Stamp;

/// Owners remembered at most before the cache forgets them all.
const KEPT_MAX: usize = 65_536;

/// The placements the engine's look-up read while the control database's commit stamp was
/// `stamp` (each read after the stamp was: a read beginning while the stamp is still the
/// same finds each of them as it is here). `None` for an owner without one.
pub(crate) struct Placements<O> {
    stamp: Option<Stamp>,
    /// When the cache started over at `stamp`.
    since: std::time::Instant,
    known: std::collections::HashMap<O, Option<Placement>>,
}

/// The longest the engine answers from remembered placements before it reads them again, even
/// while the stamp stands: a bound on the damage should the stamp ever stop following commits
/// (a `-shm` file deleted by hand, a process writing the database with locking turned off —
/// both outside SQLite's protocol, which already breaks SQLite's own readers).
pub(crate) const REMEMBER_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

impl<O: Hash + Eq> Placements<O> {
    /// How many owners it remembers now.
    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }

    pub(crate) fn new() -> Self {
        Placements {
            stamp: None,
            since: std::time::Instant::now(),
            known: std::collections::HashMap::new(),
        }
    }

    /// The owner's placement if it was read under `stamp`.
    pub(crate) fn get(&mut self, stamp: Stamp, owner: &O) -> Option<Option<Placement>> {
        if self.stamp != Some(stamp) || self.since.elapsed() >= REMEMBER_AT_MOST {
            // Something committed since (what was read before may have changed), or it is
            // time to read again anyway.
            self.stamp = Some(stamp);
            self.since = std::time::Instant::now();
            self.known.clear();
            return None;
        }
        self.known.get(owner).cloned()
    }

    /// Keeps what was read after `stamp` was, if nothing committed since it as far as this
    /// cache knows (else it may be stale for the stamp the cache is at).
    pub(crate) fn put(&mut self, stamp: Stamp, owner: O, placement: Option<Placement>) {
        if self.stamp == Some(stamp) {
            if self.known.len() >= KEPT_MAX {
                self.known.clear();
            }
            self.known.insert(owner, placement);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory;

    #[test]
    fn remembered_placements_last_while_the_stamp_stands_and_at_most_a_second() {
        let stamp = |n| crate::stamp::new_database_stamp("placements", n);
        let (a, b) = (stamp(1), stamp(2));
        assert_ne!(a, b, "two databases' headers differ in their salts");
        let placement = Placement {
            location: "x".into(),
            target: None,
            phase: directory::Phase::Stable,
            move_id: None,
            epoch: 3,
        };
        let mut p = Placements::new();
        assert_eq!(p.get(a, &1), None);
        p.put(a, 1, Some(placement.clone()));
        p.put(a, 2, None);
        assert_eq!(p.get(a, &1), Some(Some(placement.clone())));
        assert_eq!(p.get(a, &2), Some(None), "an owner without a placement");
        // Read under another stamp than the cache's: not kept.
        p.put(b, 3, None);
        assert_eq!(p.get(a, &3), None);
        // Another stamp: everything is read again.
        assert_eq!(p.get(b, &1), None);
        assert_eq!(p.get(b, &2), None);
        // The same stamp, but for longer than the bound.
        p.put(b, 1, Some(placement.clone()));
        assert_eq!(p.get(b, &1), Some(Some(placement.clone())));
        p.since -= REMEMBER_AT_MOST;
        assert_eq!(p.get(b, &1), None);
        assert!(p.known.is_empty());
    }
}
