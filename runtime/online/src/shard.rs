//! Hash placement: owners spread over a fixed space of logical shards, logical shards assigned
//! to physical locations by the directory's shard map.
//!
//! The logical shard of a key is the first two bytes of the key's SHA-256, big-endian, shifted
//! right by four: a number in `0..4096`. This function must never change — every placement
//! depends on it (`tests` pins it with fixed vectors).

use rusqlite::{Connection, params};

pub use crate::hash::{LOGICAL_SHARDS, logical_shard};

/// The shard map: `map[logical]` is the location of logical shard `logical`; empty when no
/// map was set.
pub fn shard_map(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT logical, location FROM strata_shard_map ORDER BY logical")?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if rows.len() != LOGICAL_SHARDS {
        return Ok(Vec::new());
    }
    Ok(rows.into_iter().map(|(_, l)| l).collect())
}

/// Replaces the shard map (`map.len()` must be [`LOGICAL_SHARDS`]), in the caller's
/// transaction.
pub fn set_shard_map(conn: &Connection, map: &[String]) -> rusqlite::Result<()> {
    assert_eq!(
        map.len(),
        LOGICAL_SHARDS,
        "a shard map covers every logical shard"
    );
    conn.execute("DELETE FROM strata_shard_map", [])?;
    let mut add =
        conn.prepare_cached("INSERT INTO strata_shard_map (logical, location) VALUES (?1, ?2)")?;
    for (logical, location) in map.iter().enumerate() {
        add.execute(params![logical as i64, location])?;
    }
    Ok(())
}

/// Where a new owner goes: its logical shard's location if there is a shard map, else the
/// directory's default location, else `fallback`.
pub fn location_for_new(conn: &Connection, key: &[u8], fallback: &str) -> rusqlite::Result<String> {
    let logical = i64::from(logical_shard(key));
    let mapped: Option<String> = conn
        .prepare_cached("SELECT location FROM strata_shard_map WHERE logical = ?1")?
        .query_row([logical], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if let Some(location) = mapped {
        return Ok(location);
    }
    Ok(
        crate::directory::setting(conn, crate::directory::DEFAULT_LOCATION)?
            .unwrap_or_else(|| fallback.to_string()),
    )
}

/// A shard map over `shards` that moves as few logical shards as possible away from
/// `current` (empty: none yet): each shard ends with an equal share (±1, the first shards
/// taking the remainder); a logical shard stays where it is if its location is among `shards`
/// and still within its share, and the rest fill the shards below their share in order. From
/// no map the result is contiguous ranges; from N to 2N shards, each keeps the first half of
/// its logical shards.
pub fn rebalance(current: &[String], shards: &[String]) -> Vec<String> {
    assert!(!shards.is_empty(), "rebalancing needs at least one shard");
    let n = shards.len();
    let quota = |i: usize| LOGICAL_SHARDS / n + usize::from(i < LOGICAL_SHARDS % n);
    let mut held = vec![0usize; n];
    let mut map: Vec<Option<usize>> = vec![None; LOGICAL_SHARDS];
    if current.len() == LOGICAL_SHARDS {
        for (logical, location) in current.iter().enumerate() {
            if let Some(i) = shards.iter().position(|s| s == location)
                && held[i] < quota(i)
            {
                held[i] += 1;
                map[logical] = Some(i);
            }
        }
    }
    let mut next = 0;
    for slot in map.iter_mut().filter(|s| s.is_none()) {
        while held[next] >= quota(next) {
            next += 1;
        }
        held[next] += 1;
        *slot = Some(next);
    }
    map.into_iter()
        .map(|i| shards[i.expect("every logical shard assigned")].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logical_shard_function_never_changes() {
        // Pinned (computed independently with Python's hashlib): changing any of these would
        // move owners without a move.
        let uuid = |s: &str| uuid::Uuid::parse_str(s).unwrap();
        let vectors = [
            (uuid("00000000-0000-0000-0000-000000000000"), 0x374),
            (uuid("00000000-0000-0000-0000-000000000001"), 0x7c3),
            (uuid("6a1d0c2e-5f7b-4e8a-9c3d-2b1a0f9e8d7c"), 0x9c5),
            (uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"), 0x5ac),
        ];
        for (key, expected) in vectors {
            assert_eq!(logical_shard(key.as_bytes()), expected, "{key}");
        }
        assert_eq!(logical_shard(b""), 0xe3b);
        assert_eq!(logical_shard(b"abc"), 0xba7);
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("shard-{i:02}")).collect()
    }

    #[test]
    fn rebalancing_moves_only_what_it_must() {
        let four = rebalance(&[], &names(4));
        assert_eq!(four[0], "shard-00");
        assert_eq!(four[1023], "shard-00");
        assert_eq!(four[1024], "shard-01");
        assert_eq!(four[4095], "shard-03");
        let eight = rebalance(&four, &names(8));
        let moved = four.iter().zip(&eight).filter(|(a, b)| a != b).count();
        assert_eq!(moved, 2048, "4 → 8 moves exactly half");
        for s in names(8) {
            assert_eq!(eight.iter().filter(|l| **l == s).count(), 512);
        }
        // Every logical shard that moved went to a new shard.
        assert!(
            four.iter()
                .zip(&eight)
                .filter(|(a, b)| a != b)
                .all(|(_, b)| b.as_str() >= "shard-04")
        );
        assert_eq!(rebalance(&eight, &names(8)), eight, "nothing to do");
        let three = rebalance(&four, &names(3));
        for (i, s) in names(3).iter().enumerate() {
            let want = 4096 / 3 + usize::from(i < 4096 % 3);
            assert_eq!(three.iter().filter(|l| *l == s).count(), want);
        }
    }
}
