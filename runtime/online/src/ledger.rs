//! The ledger each target database keeps of what moves wrote into it (what verification
//! compares the target with), and the confirmed copy that feeds it.

use rusqlite::{Connection, ToSql, params};

use crate::engine::{Item, Location, MoveError, Result, sqlite};

/// The ledger each database keeps of what moves wrote into it: per move and owner, the number
/// of records and the sum of their content hashes (mod 2^61 - 1, so removing a record is
/// subtracting its hash), and how many records the backfill copied (its checkpoint).
pub(crate) const LEDGER_SQL: &str = "
CREATE TABLE IF NOT EXISTS strata_move_ledger (
    move_id INTEGER NOT NULL,
    owner BLOB NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    hash INTEGER NOT NULL DEFAULT 0,
    copied INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (move_id, owner)
) WITHOUT ROWID;
";

/// The modulus of ledger hashes: a Mersenne prime, so sums of two hashes fit in an i64.
pub(crate) const HASH_MODULUS: i64 = crate::hash::HASH_MODULUS as i64;

/// A record's content hash in `[0, 2^61 - 1)`: FNV-1a over [`Item::encode`], then a
/// SplitMix64 finaliser. Stable across versions and platforms (ledgers persist it).
pub fn item_hash<R: Item>(item: &R, scratch: &mut Vec<u8>) -> i64 {
    scratch.clear();
    item.encode(scratch);
    crate::hash::content_hash(scratch) as i64
}

/// A change to a ledger row: records and hash sum in, and copies made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delta {
    pub records: i64,
    pub hash: i64,
    pub copied: u64,
}

impl Delta {
    /// `old` out, `new` in (either may be absent).
    pub fn replace<R: Item>(&mut self, old: Option<&R>, new: Option<&R>, scratch: &mut Vec<u8>) {
        if let Some(old) = old {
            self.records -= 1;
            self.hash = (self.hash + HASH_MODULUS - item_hash(old, scratch)) % HASH_MODULUS;
        }
        if let Some(new) = new {
            self.records += 1;
            self.hash = (self.hash + item_hash(new, scratch)) % HASH_MODULUS;
        }
    }

    /// `old` out, a record whose content hash is `new_hash` in (as [`Delta::replace`] with
    /// the new record, its hash known already).
    pub fn replace_hashed<R: Item>(
        &mut self,
        old: Option<&R>,
        new_hash: i64,
        scratch: &mut Vec<u8>,
    ) {
        self.replace(old, None, scratch);
        self.records += 1;
        self.hash = (self.hash + new_hash) % HASH_MODULUS;
    }

    /// Adds the change to the ledger row of `(move_id, owner)`.
    pub fn apply(
        &self,
        conn: &Connection,
        move_id: i64,
        owner: &dyn ToSql,
    ) -> rusqlite::Result<()> {
        conn.prepare_cached(
            "INSERT INTO strata_move_ledger (move_id, owner, records, hash, copied) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (move_id, owner) DO UPDATE SET \
             records = records + excluded.records, hash = (hash + excluded.hash) % ?6, \
             copied = copied + excluded.copied",
        )?
        .execute(params![
            move_id,
            owner,
            self.records,
            self.hash,
            self.copied as i64,
            HASH_MODULUS
        ])?;
        Ok(())
    }
}

/// Adds to the ledger row of `(move_id, owner)`: `new` in, `old` out.
pub(crate) fn ledger_add<R: Item>(
    conn: &Connection,
    move_id: i64,
    owner: &R::Owner,
    old: Option<&R>,
    new: Option<&R>,
) -> rusqlite::Result<()> {
    let mut delta = Delta::default();
    delta.replace(old, new, &mut Vec::new());
    delta.apply(conn, move_id, owner)
}

/// Creates the ledger table at `loc` if missing.
pub(crate) fn install_ledger<R: Item>(loc: &Location<R>) -> Result<()> {
    loc.pool
        .with_writer(|c| c.execute_batch(LEDGER_SQL))
        .map_err(|e| sqlite(loc, e))
}

/// Why a copy read back is not what was written.
const READS_BACK_DIFFERENT: &str = "it reads back different from what was written (the layout \
                                    does not keep every field as it is given)";

/// Writes `item` at `loc` (its layout's `put`) and reads it back: an error unless `loc` now
/// holds exactly this record for its owner (the same version, encoding to the same bytes). The
/// caller rolls its transaction back on error, so a copy that did not land never lets its
/// source go. Returns the record's content hash ([`item_hash`]), what its ledger entry adds.
pub(crate) fn put_confirmed<R: Item>(
    loc: &Location<R>,
    conn: &Connection,
    item: &R,
    scratch: &mut Vec<u8>,
) -> Result<i64> {
    loc.layout.put(conn, item).map_err(|e| sqlite(loc, e))?;
    let back = loc
        .layout
        .get(conn, item.owner(), item.id())
        .map_err(|e| sqlite(loc, e))?;
    confirmed(loc, item, back.as_ref(), scratch)
}

/// Whether `back`, read from `loc` after `item` was written there, is exactly `item` (the
/// same version, encoding to the same bytes): its content hash if so, else the conflict that
/// keeps its source (see [`put_confirmed`]).
pub(crate) fn confirmed<R: Item>(
    loc: &Location<R>,
    item: &R,
    back: Option<&R>,
    scratch: &mut Vec<u8>,
) -> Result<i64> {
    let why = match back {
        Some(b) if b.version() == item.version() => {
            // The encodings compared byte for byte: exact, and cheaper than hashing both.
            scratch.clear();
            item.encode(scratch);
            let written = scratch.len();
            b.encode(scratch);
            if scratch[..written] == scratch[written..] {
                return Ok(crate::hash::content_hash(&scratch[..written]) as i64);
            }
            READS_BACK_DIFFERENT
        }
        Some(_) => READS_BACK_DIFFERENT,
        None => {
            "it is not there after the write: another record holds its key (a store keyed by \
             id alone, with another owner using the same id)"
        }
    };
    Err(MoveError::Conflict {
        location: loc.name.clone(),
        owner: format!("{:?}", item.owner()),
        id: format!("{:?}", item.id()),
        why,
    })
}
