//! Routing reads and writes through the directory, with the locking that keeps phases
//! compatible.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use rusqlite::types::FromSql;
use rusqlite::{Connection, ToSql};

use crate::directory::{self, Placement};
use crate::ledger::{install_ledger, ledger_add, put_confirmed};
use crate::pace::Latencies;
use crate::placements::Placements;
use crate::pool::{self, Pool};
use crate::records::Records;

/// A record the engine moves: owned by one owner (the unit of placement), identified by an
/// id, versioned so that the newer of two copies wins.
pub trait Item: Clone + Send + Sync + 'static {
    /// The unit of placement (an account).
    type Owner: ToSql + FromSql + Clone + Eq + Hash + Debug + Send + Sync + 'static;
    /// The record's id.
    type Id: ToSql + Clone + Ord + Eq + Hash + Debug + Send + Sync + 'static;

    /// The owner the record belongs to; it decides where the record is placed.
    fn owner(&self) -> &Self::Owner;
    /// The record's id, unique within its owner.
    fn id(&self) -> &Self::Id;
    /// Orders the versions of one record: the larger wins (last write wins).
    fn version(&self) -> i64;
    /// The record's content in a canonical byte form, for verification hashes: two records
    /// are the same exactly when their encodings are.
    fn encode(&self, out: &mut Vec<u8>);
}

/// How one database lays out the records: its tables, columns and types. Implementations
/// convert between their rows and the application's [`Item`].
pub trait Layout<R: Item>: Send + Sync + 'static {
    /// The owner's record `id`.
    fn get(&self, c: &Connection, owner: &R::Owner, id: &R::Id) -> LayoutResult<Option<R>>;
    /// The owner's record ids, each with its sort key (for listing in a stable order).
    fn ids(&self, c: &Connection, owner: &R::Owner) -> LayoutResult<Vec<(i64, R::Id)>>;
    /// Up to `limit` of the owner's records, in id order, after `after` if given.
    fn batch(
        &self,
        c: &Connection,
        owner: &R::Owner,
        after: Option<&R::Id>,
        limit: usize,
    ) -> LayoutResult<Vec<R>>;
    /// Up to `limit` of the owner's record ids, each once: the backfill's next batches (a scan
    /// asks for several batches' worth, up to 4096 ids), which it then copies under the locks
    /// a few at a time and removes from this store. Each id as `get_many` finds it and
    /// `remove_many` removes it (a scan naming records those do not find stops the move,
    /// [`MoveError::Inconsistent`]). None only when the owner has nothing left here: that
    /// sends the owner to verification (which fails the move if records are left); fewer than
    /// `limit` are fine. Any order will do (each scan takes from what is left), so a layout
    /// returns them in the order it removes most cheaply: its storage order, where neighbouring
    /// records share pages and a batch rewrites each page once (in a random order, such as
    /// random ids, a batch rewrites a page per record, and the next batch the same pages
    /// again). The default takes [`Layout::batch`]'s ids (id order), reading the records.
    fn backfill_ids(
        &self,
        c: &Connection,
        owner: &R::Owner,
        limit: usize,
    ) -> LayoutResult<Vec<R::Id>> {
        Ok(self
            .batch(c, owner, None, limit)?
            .iter()
            .map(|item| item.id().clone())
            .collect())
    }
    /// The owner's records among `ids` (each given once), in any order; an id without a
    /// record is left out. The backfill reads a few records at a time through it, under the
    /// locks (at the source, then the target, then the target again to confirm its copies),
    /// so one statement for all of them (`.. AND id IN (?2, ?3, ..)`) saves a statement per
    /// record. The default calls [`Layout::get`] for each.
    fn get_many(&self, c: &Connection, owner: &R::Owner, ids: &[R::Id]) -> LayoutResult<Vec<R>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.get(c, owner, id)?);
        }
        Ok(out)
    }
    /// Removes the owner's records among `ids` (each given once); returns how many records it
    /// removed — the backfill checks, under the locks, that it removed every one `get_many`
    /// found ([`MoveError::Inconsistent`] otherwise). The default calls [`Layout::remove`] for
    /// each.
    fn remove_many(&self, c: &Connection, owner: &R::Owner, ids: &[R::Id]) -> LayoutResult<u64> {
        let mut removed = 0;
        for id in ids {
            removed += u64::from(self.remove(c, owner, id)?);
        }
        Ok(removed)
    }
    /// Inserts the record; false (and nothing written) if its id is taken.
    fn insert(&self, c: &Connection, item: &R) -> LayoutResult<bool>;
    /// Inserts or replaces the owner's record `item.id()`. It must never touch another
    /// owner's record: key the table by (owner, id), or, where the key is the id alone, leave
    /// another owner's record with the same id as it is (`ON CONFLICT (id) DO UPDATE .. WHERE
    /// owner = excluded.owner`). The engine reads every copy back and refuses to remove the
    /// source of one it cannot find ([`MoveError::Conflict`]), but it cannot see a `put` that
    /// replaced another owner's record (`INSERT OR REPLACE` on an id-only key): that one is
    /// lost.
    fn put(&self, c: &Connection, item: &R) -> LayoutResult<()>;
    /// Removes the owner's record `id`; false if there was none.
    fn remove(&self, c: &Connection, owner: &R::Owner, id: &R::Id) -> LayoutResult<bool>;
    /// The owner's number of records.
    fn count(&self, c: &Connection, owner: &R::Owner) -> LayoutResult<u64>;
    /// Records in the database.
    fn total(&self, c: &Connection) -> LayoutResult<u64>;
}

/// A named database and its layout.
pub struct Location<R: Item> {
    /// The name the directory knows the database by (its `location` and `target` columns);
    /// unique among an engine's locations.
    pub name: String,
    /// Connections to the database: one writer and a few readers.
    pub pool: Arc<Pool>,
    /// How this database stores the records.
    pub layout: Arc<dyn Layout<R>>,
}

impl<R: Item> Clone for Location<R> {
    fn clone(&self) -> Self {
        Location {
            name: self.name.clone(),
            pool: Arc::clone(&self.pool),
            layout: Arc::clone(&self.layout),
        }
    }
}

impl<R: Item> Debug for Location<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("name", &self.name)
            .field("path", &self.pool.path())
            .finish()
    }
}

/// What can go wrong routing or moving records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MoveError {
    /// SQLite failed on a location's database or on the control database.
    #[error("{location} ({path}): {source}")]
    Sqlite {
        /// The location's name; `control` for the control database.
        location: String,
        /// The database file.
        path: std::path::PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory or a caller named a location the engine neither has nor can open.
    #[error("unknown location `{name}`; the known locations are: {known}")]
    UnknownLocation {
        /// The name asked for.
        name: String,
        /// The names of the locations the engine has, comma-separated.
        known: String,
    },
    /// The owner (`Debug`-formatted) has no row in `strata_placement`.
    #[error("{0:?} has no placement in the directory")]
    Unplaced(String),
    /// The owner's (`Debug`-formatted) placement changed under every one of a request's
    /// attempts; nothing was written, and retrying is safe.
    #[error("the placement of {0:?} kept changing under the request; try again")]
    Contended(String),
    /// No move has this id.
    #[error("no move {0}; `move status` lists the moves")]
    NoSuchMove(i64),
    /// A request that cannot be carried out as asked (two locations with one name, an owner
    /// already moving, a move in a state that forbids it); the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A location's layout failed otherwise (a record it cannot read, say).
    #[error("{location} ({path}): {source}")]
    Layout {
        /// The location's name.
        location: String,
        /// The location's database file.
        path: std::path::PathBuf,
        /// The layout's error.
        #[source]
        source: LayoutError,
    },
    /// A location did not keep a record written there: after the write, reading the
    /// owner's record back gave something else (typically another owner's record holding the
    /// same key in a store keyed by id alone). Nothing of the write is committed, and a copy
    /// that conflicts never lets its source go.
    #[error("{location} did not keep record {id} of {owner}: {why}")]
    Conflict {
        /// The location's name.
        location: String,
        /// The record's owner, `Debug`-formatted.
        owner: String,
        /// The record's id, `Debug`-formatted.
        id: String,
        /// What reading it back found.
        why: &'static str,
    },
    /// A location's layout disagreed with itself during a backfill batch, under both locks:
    /// its `backfill_ids` named a record its `get_many` could not find there, again after a
    /// fresh scan, or its `remove_many` left a record its `get_many` found. The batch is rolled
    /// back, and the move stops with the record named (it would otherwise take the same ids
    /// for ever).
    #[error("{location}'s layout disagrees with itself on record {id} of {owner}: {why}")]
    Inconsistent {
        /// The location's name.
        location: String,
        /// The record's owner, `Debug`-formatted.
        owner: String,
        /// The record's id, `Debug`-formatted.
        id: String,
        /// What it did.
        why: &'static str,
    },
    /// An injected crash (tests only).
    #[error("injected crash at {0}")]
    Crashed(&'static str),
}

pub(crate) type Result<T, E = MoveError> = std::result::Result<T, E>;

/// What a [`Layout`] call can fail with. `?` converts SQLite's errors and Strata's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// SQLite refused a statement.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record the layout cannot read (a value of the wrong shape), named.
    #[error("{0}")]
    Invalid(String),
    /// Anything else the application's layout reports.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<strata::Error> for LayoutError {
    fn from(e: strata::Error) -> Self {
        match e {
            strata::Error::Sqlite(e) => LayoutError::Sqlite(e),
            other => LayoutError::Other(Box::new(other)),
        }
    }
}

/// The result of a [`Layout`] call.
pub type LayoutResult<T> = std::result::Result<T, LayoutError>;

/// How many times a request starts over when the placement changes under it. Placements
/// change a handful of times per move, so this is never reached in practice.
const ATTEMPTS: usize = 64;

/// The newer of two copies; the target's on a tie.
pub(crate) fn newest<R: Item>(from: Option<R>, to: Option<R>) -> Option<R> {
    match (from, to) {
        (Some(a), Some(b)) => Some(if a.version() > b.version() { a } else { b }),
        (a, b) => b.or(a),
    }
}

/// What [`Engine::get_many`] found for one record: the placement it was read by, and the
/// record if any.
pub type Found<R> = (Placement, Option<R>);

/// Runs `f`'s `reads` statements on `c` in one read transaction (one snapshot of the
/// database), its `BEGIN` and `COMMIT` prepared once per connection (they run per batch of
/// requests); a single statement is a transaction of its own already.
fn snapshot<T, E: From<rusqlite::Error>>(
    c: &Connection,
    reads: usize,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    if reads <= 1 {
        return f();
    }
    /// Rolls the read transaction back should `f` panic: the connection goes back to its
    /// pool, and a later single-statement read on it must not see this snapshot.
    struct Unwind<'c>(&'c Connection);
    impl Drop for Unwind<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() && !self.0.is_autocommit() {
                let _ = self.0.execute_batch("ROLLBACK");
            }
        }
    }
    c.prepare_cached("BEGIN")?.execute([])?;
    let guard = Unwind(c);
    let value = f();
    drop(guard);
    let end = c
        .prepare_cached(if value.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .and_then(|mut s| s.execute([]));
    if end.is_err() && !c.is_autocommit() {
        let _ = c.execute_batch("ROLLBACK");
    }
    let value = value?;
    end?;
    Ok(value)
}

/// In which order a write commits its two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    TargetFirst,
    SourceFirst,
}

/// The owner's databases, write-locked, with the placement that was current when they were
/// locked (and stays current until they are released).
pub(crate) struct Held<'a, R: Item> {
    pub placement: Placement,
    pub from: (&'a Location<R>, &'a Connection),
    pub to: Option<(&'a Location<R>, &'a Connection)>,
}

impl<R: Item> Held<'_, R> {
    /// Records in the target's ledger that `old` was replaced by `new` (either may be absent).
    pub fn ledger(&self, owner: &R::Owner, old: Option<&R>, new: Option<&R>) -> Result<()> {
        let (Some((loc, conn)), Some(move_id)) = (self.to, self.placement.move_id) else {
            return Ok(());
        };
        ledger_add(conn, move_id, owner, old, new).map_err(|e| sqlite(loc, e))
    }
}

/// A failure at `loc`, named: SQLite's errors as [`MoveError::Sqlite`], a layout's others as
/// [`MoveError::Layout`].
pub(crate) fn sqlite<R: Item>(loc: &Location<R>, error: impl Into<LayoutError>) -> MoveError {
    let (location, path) = (loc.name.clone(), loc.pool.path().to_path_buf());
    match error.into() {
        LayoutError::Sqlite(source) => MoveError::Sqlite {
            location,
            path,
            source,
        },
        source => MoveError::Layout {
            location,
            path,
            source,
        },
    }
}

/// Routes an application's record operations through the placement directory, and moves
/// owners between locations (see the [module documentation](super)).
pub struct Engine<R: Item> {
    control: Arc<Pool>,
    /// The durations of foreground calls, which pace the backfill (see [`crate::pace`]).
    latencies: Arc<Latencies>,
    locations: std::sync::RwLock<BTreeMap<String, Arc<Location<R>>>>,
    opener: Option<Opener<R>>,
    fault: std::sync::RwLock<Option<Fault>>,
    /// The placement each owner's last write read under its lock, and the group transaction
    /// it read it in (see [`Engine::locked_request`]): where the owner's next write locks first,
    /// and, within that same group, the placement it acts on.
    seen: std::sync::Mutex<std::collections::HashMap<R::Owner, (Placement, u64)>>,
    /// Placements read from the control database, good while its commit stamp stays the one
    /// they were read under (see [`Engine::lookup`]).
    placements: std::sync::Mutex<Placements<R::Owner>>,
    /// Per location, records read from it, good while its commit stamp stays the one they
    /// were read under (see [`Engine::get_many`]).
    records: std::sync::Mutex<std::collections::HashMap<String, Records<R>>>,
    /// Per move, the ids the backfill scanned ahead at one owner's source and has not taken
    /// yet (see `Engine::backfill_batch`).
    pub(crate) scanned: std::sync::Mutex<std::collections::HashMap<i64, crate::worker::Scanned<R>>>,
}

/// Bytes of records (their encodings) all of an engine's locations remember together at most
/// (see [`Engine::get_many`]); each location also has its own bounds (`records.rs`).
const RECORDS_BYTES_MAX: usize = 32 << 20;

/// Owners [`Engine`] remembers a placement for before it forgets them all.
const SEEN_MAX: usize = 65_536;

/// Opens a location the engine does not know yet (one another process created, such as a new
/// shard), by name; `None` if there is no such location.
pub type Opener<R> = Box<dyn Fn(&str) -> Option<Result<Location<R>>> + Send + Sync>;

/// A test's crash injector: called at named points, it returns true to make the engine stop
/// right there as if the process died (uncommitted work rolls back).
pub type Fault = Arc<dyn Fn(&'static str) -> bool + Send + Sync>;

/// The points where a [`Fault`] may strike.
pub mod fault {
    /// A write that touches two databases committed the first one, not the second.
    pub const BETWEEN_COMMITS: &str = "between-commits";
    /// A phase change committed the databases, not the directory.
    pub const BEFORE_DIRECTORY: &str = "before-directory";
}

/// Records a foreground call's duration when dropped.
struct Timed<'a>(&'a Latencies, std::time::Instant);

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.0.record(self.1.elapsed());
    }
}

impl<R: Item> Debug for Engine<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("control", &self.control.path())
            .field("locations", &self.locations())
            .finish()
    }
}

impl<R: Item> Engine<R> {
    /// An engine over the directory in `control` and the given locations. Creates the engine's
    /// tables where they are missing.
    pub fn new(control: Arc<Pool>, locations: Vec<Location<R>>) -> Result<Self> {
        control
            .with_writer(directory::install)
            .map_err(|source| MoveError::Sqlite {
                location: "control".into(),
                path: control.path().to_path_buf(),
                source,
            })?;
        let mut by_name = BTreeMap::new();
        for loc in locations {
            install_ledger(&loc)?;
            if by_name.insert(loc.name.clone(), Arc::new(loc)).is_some() {
                return Err(MoveError::Invalid(
                    "two locations share a name; give each its own".into(),
                ));
            }
        }
        Ok(Engine {
            control,
            latencies: Arc::new(Latencies::default()),
            locations: std::sync::RwLock::new(by_name),
            opener: None,
            fault: std::sync::RwLock::new(None),
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
            placements: std::sync::Mutex::new(Placements::new()),
            records: std::sync::Mutex::new(std::collections::HashMap::new()),
            scanned: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The durations of the foreground calls this engine served lately.
    pub fn latencies(&self) -> &Arc<Latencies> {
        &self.latencies
    }

    /// Times one foreground call until the guard drops.
    fn timed(&self) -> Timed<'_> {
        Timed(&self.latencies, std::time::Instant::now())
    }

    /// Lets the engine open locations it meets in the directory but was not given (created
    /// later, perhaps by another process).
    pub fn with_opener(mut self, opener: Opener<R>) -> Self {
        self.opener = Some(opener);
        self
    }

    /// Installs (or removes) a crash injector, for crash-safety tests.
    #[doc(hidden)]
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self
            .fault
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }

    /// Whether an injected crash strikes at `point`.
    fn crash_at(&self, point: &'static str) -> bool {
        self.fault
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|f| f(point))
    }

    /// The control database holding the directory.
    pub fn control(&self) -> &Arc<Pool> {
        &self.control
    }

    /// The locations known so far, in name order.
    pub fn locations(&self) -> Vec<Arc<Location<R>>> {
        self.locations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The location called `name` if it is open.
    fn known_location(&self, name: &str) -> Option<Arc<Location<R>>> {
        self.locations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The location called `name`, opened on first use if the engine has an opener.
    pub fn location(&self, name: &str) -> Result<Arc<Location<R>>> {
        if let Some(loc) = self
            .locations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(Arc::clone(loc));
        }
        let unknown = || MoveError::UnknownLocation {
            name: name.to_string(),
            known: self
                .locations()
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let opened = match &self.opener {
            Some(open) => open(name).ok_or_else(unknown)??,
            None => return Err(unknown()),
        };
        install_ledger(&opened)?;
        let mut all = self
            .locations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(Arc::clone(
            all.entry(name.to_string())
                .or_insert_with(|| Arc::new(opened)),
        ))
    }

    pub(crate) fn control_err(&self, source: rusqlite::Error) -> MoveError {
        MoveError::Sqlite {
            location: "control".into(),
            path: self.control.path().to_path_buf(),
            source,
        }
    }

    /// The placement the owner's last write here acted on (read under its lock), if the
    /// engine remembers one: where its records were lately, for reporting (it may be stale).
    pub fn last_placement(&self, owner: &R::Owner) -> Option<Placement> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(owner)
            .map(|(p, _)| p.clone())
    }

    /// The owner's current placement.
    pub fn placement(&self, owner: &R::Owner) -> Result<Placement> {
        self.lookup(std::slice::from_ref(owner))
            .map_err(|e| self.control_err(e))?
            .pop()
            .flatten()
            .ok_or_else(|| MoveError::Unplaced(format!("{owner:?}")))
    }

    /// How many placements the engine remembers now (see [`Engine::lookup`]); for tests.
    #[doc(hidden)]
    pub fn placements_remembered(&self) -> usize {
        self.remembered_placements().len()
    }

    /// How many records the engine remembers now, over all locations (see
    /// [`Engine::get_many`]); for tests.
    #[doc(hidden)]
    pub fn records_remembered(&self) -> usize {
        self.kept_records().values().map(Records::len).sum()
    }

    fn kept_records(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Records<R>>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The records `keys` at `loc` (item by item, `None`: no such record), as one read of it
    /// begun now would find them: those read since its last commit, by any connection in any
    /// process, are remembered ([`Pool::stamp`] tells), the others read in one snapshot.
    fn read_records(
        &self,
        loc: &Location<R>,
        keys: &[&(R::Owner, R::Id)],
    ) -> LayoutResult<Vec<Option<R>>> {
        // Read before the records are: any of them committed later changes it.
        let stamp = loc.pool.stamp();
        let mut found: Vec<Option<Option<R>>> = match stamp {
            Some(stamp) => {
                let mut all = self.kept_records();
                if !all.contains_key(&loc.name) {
                    all.insert(loc.name.clone(), Records::new());
                }
                let kept = all.get_mut(&loc.name).expect("inserted above");
                keys.iter().map(|key| kept.get(stamp, key)).collect()
            }
            None => vec![None; keys.len()],
        };
        let missing: Vec<usize> = (0..keys.len()).filter(|&k| found[k].is_none()).collect();
        if !missing.is_empty() {
            let (read, fresh) = loc.pool.with_reader(|c| -> LayoutResult<_> {
                // A connection left inside a transaction (it should never be) reads an old
                // snapshot: answer from it as before, but remember nothing.
                let fresh = c.is_autocommit();
                let read: Vec<Option<R>> = snapshot(c, missing.len(), || {
                    missing
                        .iter()
                        .map(|&k| loc.layout.get(c, &keys[k].0, &keys[k].1))
                        .collect()
                })?;
                Ok((read, fresh))
            })?;
            if let (Some(stamp), true) = (stamp, fresh) {
                let mut all = self.kept_records();
                if let Some(kept) = all.get_mut(&loc.name) {
                    for (&k, record) in missing.iter().zip(&read) {
                        kept.put(stamp, keys[k].clone(), record.clone());
                    }
                }
                // One budget for all locations: past it, they all start over.
                if all.values().map(Records::bytes).sum::<usize>() > RECORDS_BYTES_MAX {
                    all.clear();
                }
            }
            for (k, record) in missing.into_iter().zip(read) {
                found[k] = Some(record);
            }
        }
        Ok(found.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn remembered_placements(&self) -> std::sync::MutexGuard<'_, Placements<R::Owner>> {
        self.placements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The owners' placements (`None` for an owner without one), as one read of the control
    /// database begun now would find them: those read since the last commit to it, by any
    /// connection in any process, are remembered ([`Pool::stamp`] tells), the others read
    /// in one snapshot. A request's read then pays no transaction on the control database,
    /// which changes only when owners are created or moved.
    fn lookup(&self, owners: &[R::Owner]) -> rusqlite::Result<Vec<Option<Placement>>> {
        // Read before the placements are: any of them committed later changes it.
        let stamp = self.control.stamp();
        let mut found: Vec<Option<Option<Placement>>> = match stamp {
            Some(stamp) => {
                let mut known = self.remembered_placements();
                owners.iter().map(|o| known.get(stamp, o)).collect()
            }
            None => vec![None; owners.len()],
        };
        let missing: Vec<usize> = (0..owners.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let read = self.control.with_reader(|c| {
                snapshot(c, missing.len(), || {
                    missing
                        .iter()
                        .map(|&i| directory::lookup(c, &owners[i]))
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
            })?;
            let mut known = stamp.map(|_| self.remembered_placements());
            for (&i, placement) in missing.iter().zip(read) {
                if let (Some(stamp), Some(known)) = (stamp, known.as_mut()) {
                    known.put(stamp, owners[i].clone(), placement.clone());
                }
                found[i] = Some(placement);
            }
        }
        Ok(found.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Places a new owner at the default location for new owners (`fallback` if none is
    /// set), on the caller's control-database connection, so that creating the owner and
    /// placing it can share a transaction. Returns the location.
    pub fn place_new(
        &self,
        control: &Connection,
        owner: &R::Owner,
        fallback: &str,
    ) -> Result<String> {
        let location = directory::setting(control, directory::DEFAULT_LOCATION)
            .map_err(|e| self.control_err(e))?
            .unwrap_or_else(|| fallback.to_string());
        self.location(&location)?;
        directory::place(control, owner, &location).map_err(|e| self.control_err(e))?;
        Ok(location)
    }

    fn read_one<T>(
        &self,
        name: &str,
        f: impl FnOnce(&dyn Layout<R>, &Connection) -> LayoutResult<T>,
    ) -> Result<T> {
        let loc = self.location(name)?;
        loc.pool
            .with_reader(|c| f(loc.layout.as_ref(), c))
            .map_err(|e| sqlite(&loc, e))
    }

    /// The owner's record `id`, read as `placement` says (a placement the caller just looked
    /// up, perhaps with its own data); if it finds nothing and the placement changed
    /// meanwhile, it reads again with the new one.
    pub fn get(&self, placement: &Placement, owner: &R::Owner, id: &R::Id) -> Result<Option<R>> {
        let _timed = self.timed();
        let mut current = placement.clone();
        for _ in 0..ATTEMPTS {
            let from = self.read_one(&current.location, |l, c| l.get(c, owner, id))?;
            let found = match &current.target {
                None => from,
                Some(target) => newest(from, self.read_one(target, |l, c| l.get(c, owner, id))?),
            };
            if found.is_some() {
                return Ok(found);
            }
            let now = self.placement(owner)?;
            if now.epoch == current.epoch {
                return Ok(None);
            }
            current = now;
        }
        Err(MoveError::Contended(format!("{owner:?}")))
    }

    /// Several owners' records at once, each as [`Engine::placement`] then [`Engine::get`]
    /// would read it, but with at most one read transaction on the control database for all
    /// the placements (none for those remembered since its last commit) and at most one per
    /// location for all the records there (none for those remembered since the location's
    /// last commit; two rounds while owners move: every source before any target) (a batch of
    /// concurrent requests pays for each database's read lock once, not once per request). Each answer is `None` when its owner has no placement, else the placement it
    /// was read by and the record if any.
    ///
    /// Every placement is read after the call began and every record after its placement,
    /// as for a lone read; a record not found is looked for again as [`Engine::get`] does
    /// (a fresh placement, and the records again if it changed), and anything the batch could
    /// not read (an error on one database) is read again alone, so each answer, error
    /// included, is the one a lone read would have given.
    pub fn get_many(&self, wanted: &[(R::Owner, R::Id)]) -> Vec<Result<Option<Found<R>>>> {
        let _timed = self.timed();
        // The placements, as of now.
        let owners: Vec<R::Owner> = wanted.iter().map(|(owner, _)| owner.clone()).collect();
        let mut placements: Option<Vec<Option<Placement>>> = self.lookup(&owners).ok();
        // Which records each location is asked for (item index): first every item's source,
        // then every moving item's target, so that each item's source is read before its
        // target, as a lone read does (a record moves source → target, the target committed
        // first: read the other way round, a record copied and removed between the two reads
        // would be in neither). One snapshot per location and round.
        let mut sources: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut targets: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        if let Some(placements) = &placements {
            for (i, p) in placements.iter().enumerate() {
                if let Some(p) = p {
                    sources.entry(&p.location).or_default().push(i);
                    if let Some(target) = &p.target {
                        targets.entry(target).or_default().push(i);
                    }
                }
            }
        }
        // Per item: what each of its locations had, source first (`None` when a read failed).
        let mut found: Vec<Vec<Option<Option<R>>>> =
            (0..wanted.len()).map(|_| Vec::new()).collect();
        for (name, items) in sources.iter().chain(&targets) {
            let read = self.location(name).ok().and_then(|loc| {
                let keys: Vec<&(R::Owner, R::Id)> = items.iter().map(|&i| &wanted[i]).collect();
                self.read_records(&loc, &keys).ok()
            });
            match read {
                Some(records) => {
                    for (&i, record) in items.iter().zip(records) {
                        found[i].push(Some(record));
                    }
                }
                None => {
                    for &i in items {
                        found[i].push(None);
                    }
                }
            }
        }
        wanted
            .iter()
            .enumerate()
            .map(|(i, (owner, id))| {
                let alone = |p: Placement| {
                    let record = self.get(&p, owner, id)?;
                    Ok(Some((p, record)))
                };
                let Some(placement) = placements.as_mut().and_then(|p| p[i].take()) else {
                    // Unplaced, or the directory's read failed: as a lone read.
                    return match self.placement(owner) {
                        Ok(p) => alone(p),
                        Err(MoveError::Unplaced(_)) => Ok(None),
                        Err(e) => Err(e),
                    };
                };
                let mut record = None;
                for read in std::mem::take(&mut found[i]) {
                    match read {
                        Some(r) => record = newest(record, r),
                        None => return alone(placement),
                    }
                }
                if record.is_some() {
                    return Ok(Some((placement, record)));
                }
                // Not found: as a lone read does, unless the placement is still the same.
                let now = self.placement(owner)?;
                if now.epoch == placement.epoch {
                    return Ok(Some((placement, None)));
                }
                alone(now)
            })
            .collect()
    }

    /// The owner's record `id` as [`Engine::get_many`] would answer it, if the engine can
    /// tell from memory alone — its placement remembered since the last commit to the
    /// control database, and the record (found) since the last commit to each database it is
    /// read from, source before target — without any I/O or blocking beyond a mutex; `None`
    /// otherwise (read it with [`Engine::get_many`]). For answering hot reads on a thread that
    /// must not block.
    ///
    /// Not counted in the engine's foreground latencies (the backfill's pace): it waits for
    /// nothing the backfill could slow.
    pub fn remembered(&self, owner: &R::Owner, id: &R::Id) -> Option<Found<R>> {
        let placement = {
            let stamp = self.control.stamp_if_watched()?;
            self.remembered_placements().get(stamp, owner)??
        };
        let key = (owner.clone(), id.clone());
        let mut record = None;
        for name in std::iter::once(&placement.location).chain(&placement.target) {
            // (No opening here: a location not open yet is the slow path's.)
            let stamp = self.known_location(name)?.pool.stamp_if_watched()?;
            let found = self.kept_records().get_mut(name)?.get(stamp, &key)?;
            record = newest(record, found);
        }
        // Not found: the slow path looks the placement up again.
        record.map(|r| (placement, Some(r)))
    }

    /// Runs several requests (each op calls [`Engine::create`], [`Engine::update`],
    /// [`Engine::delete`] or reads) one after the other on this thread as one batch, and
    /// answers each with its value and whether its writes committed. The writes of owners
    /// that are not moving share their location's group transaction (group commit, see
    /// [`Pool::with_group_write`]) without waiting for its commit one by one: the batch
    /// commits what is still open once every op ran. A write is committed when its answer's
    /// second part is `Ok`; never tell a client an op succeeded before (and unless) it is.
    ///
    /// For a thread with many requests in hand (a queue of them): they pay for one
    /// transaction, and no thread waits per write.
    ///
    /// An op that panics ends the batch with its panic, after committing what the ops before it
    /// wrote (their answers are lost with the batch): catch panics in the op to fail it alone.
    pub fn batch<T, F: FnOnce(&Self) -> T>(
        &self,
        ops: impl IntoIterator<Item = F>,
    ) -> Vec<(T, Result<()>)> {
        // One deferral for the whole batch, so that a deferring thread never holds one op's
        // group open while a later op waits for another database (see `pool::deferred`); each
        // op's groups are its range of the joined list.
        let (done, joined) = pool::deferred(|| {
            ops.into_iter()
                .map(|op| {
                    let from = pool::deferred_len();
                    let value = op(self);
                    (value, from..pool::deferred_len())
                })
                .collect::<Vec<_>>()
        });
        for j in &joined {
            if j.outcome().is_none() {
                j.settle();
            }
        }
        let locations = self.locations();
        done.into_iter()
            .map(|(value, range)| {
                let committed = joined[range].iter().try_for_each(|j| {
                    // (`settle` left none open.)
                    let outcome = j.outcome().unwrap_or(Err(rusqlite::Error::InvalidQuery));
                    outcome.map_err(|source| {
                        match locations.iter().find(|l| Arc::ptr_eq(&l.pool, &j.pool)) {
                            Some(loc) => sqlite(loc, source),
                            None => MoveError::Sqlite {
                                location: String::new(),
                                path: j.pool.path().to_path_buf(),
                                source,
                            },
                        }
                    })
                });
                (value, committed)
            })
            .collect()
    }

    /// The owner's record ids in sort-key order (both locations merged while moving).
    pub fn list(&self, placement: &Placement, owner: &R::Owner) -> Result<Vec<R::Id>> {
        let _timed = self.timed();
        let mut current = placement.clone();
        for _ in 0..ATTEMPTS {
            let mut ids = self.read_one(&current.location, |l, c| l.ids(c, owner))?;
            if let Some(target) = &current.target {
                ids.extend(self.read_one(target, |l, c| l.ids(c, owner))?);
                ids.sort();
                let mut seen = std::collections::HashSet::new();
                ids.retain(|(_, id)| seen.insert(id.clone()));
            }
            let now = self.placement(owner)?;
            if now.epoch == current.epoch {
                return Ok(ids.into_iter().map(|(_, id)| id).collect());
            }
            current = now;
        }
        Err(MoveError::Contended(format!("{owner:?}")))
    }

    /// Runs `op` with the owner's databases write-locked and the current placement (see
    /// [`Held`]), then commits them in the order `op` asks for.
    pub(crate) fn locked<T>(
        &self,
        owner: &R::Owner,
        op: impl FnMut(&Held<'_, R>) -> Result<(T, Commit)>,
    ) -> Result<T> {
        self.locked_then(owner, None, op, |_| Ok(()))
    }

    /// As [`Engine::locked`] for a request (create, update, delete): an owner that is not
    /// moving has its write done in its location's group transaction (group commit, see
    /// [`Pool::with_group_write`]), under the same locks and with the same re-read of the
    /// placement as [`Engine::locked`]; a moving owner's takes [`Engine::locked`]'s path.
    pub(crate) fn locked_request<T>(
        &self,
        owner: &R::Owner,
        mut op: impl FnMut(&Held<'_, R>) -> Result<(T, Commit)>,
    ) -> Result<T> {
        // Where to lock: the placement the owner's last write read under its lock, else the
        // directory's; then the one read under the previous attempt's lock. Only a placement
        // read under the lock is acted on.
        let seen_lock = || {
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let remembered = seen_lock().get(owner).cloned();
        // (A remembered move may have ended since: the directory says.)
        let mut seen = match remembered {
            Some((p, _)) if !p.is_moving() => p,
            _ => self.placement(owner)?,
        };
        for _ in 0..ATTEMPTS {
            if seen.target.is_some() {
                return self.locked(owner, op);
            }
            let from = self.location(&seen.location)?;
            // `Err`: the placement read under the lock is not `seen`; try again with it.
            let done = from.pool.with_group_write(
                |conn, group| {
                    // The group holds the store's lock from its first write to its commit, so
                    // the placement an earlier write of the group read under it still holds:
                    // a phase change needs that lock. (The directory row itself may change
                    // meanwhile only as a phase change's last step, after its databases
                    // committed, as it may during any write.)
                    let known = seen_lock()
                        .get(owner)
                        .filter(|(_, g)| *g == group)
                        .map(|(p, _)| p.clone());
                    let now = match known {
                        Some(p) => p,
                        None => {
                            let now = self.placement(owner)?;
                            let mut all = seen_lock();
                            if all.len() >= SEEN_MAX {
                                all.clear();
                            }
                            all.insert(owner.clone(), (now.clone(), group));
                            now
                        }
                    };
                    if now != seen {
                        return Ok(Err(now));
                    }
                    let held = Held {
                        placement: now,
                        from: (&*from, conn),
                        to: None,
                    };
                    op(&held).map(|(value, _)| Ok(value))
                },
                |e| sqlite(&from, e),
            )?;
            match done {
                Ok(value) => return Ok(value),
                Err(now) => seen = now,
            }
        }
        Err(MoveError::Contended(format!("{owner:?}")))
    }

    /// As [`Engine::locked`], then runs `then` after the commits, before the locks are
    /// released. `extra` names a location to lock as the target of an owner that is not
    /// moving (to start a move).
    pub(crate) fn locked_then<T>(
        &self,
        owner: &R::Owner,
        extra: Option<&str>,
        mut op: impl FnMut(&Held<'_, R>) -> Result<(T, Commit)>,
        then: impl FnOnce(&T) -> Result<()>,
    ) -> Result<T> {
        for _ in 0..ATTEMPTS {
            let seen = self.placement(owner)?;
            let from = self.location(&seen.location)?;
            let to = seen
                .target
                .as_deref()
                .or(extra)
                .map(|t| self.location(t))
                .transpose()?;
            // Lock in name order, in this process (mutexes) and across processes (SQLite).
            let mut locs: Vec<&Location<R>> =
                std::iter::once(&*from).chain(to.as_deref()).collect();
            locs.sort_by(|a, b| a.name.cmp(&b.name));
            let guards: Vec<_> = locs.iter().map(|l| l.pool.writer()).collect();
            let mut begun = Vec::new();
            let mut begin = || -> Result<()> {
                for (loc, conn) in locs.iter().zip(&guards) {
                    conn.execute_batch("BEGIN IMMEDIATE")
                        .map_err(|e| sqlite(loc, e))?;
                    begun.push(&**conn);
                }
                Ok(())
            };
            let begun_ok = begin();
            let rollback = |conns: &[&Connection]| {
                for c in conns {
                    let _ = c.execute_batch("ROLLBACK");
                }
            };
            if let Err(e) = begun_ok {
                rollback(&begun);
                return Err(e);
            }
            let now = match self.placement(owner) {
                Ok(now) => now,
                Err(e) => {
                    rollback(&begun);
                    return Err(e);
                }
            };
            if now != seen {
                rollback(&begun);
                continue;
            }
            let conn_of = |loc: &Location<R>| {
                let i = locs
                    .iter()
                    .position(|l| l.name == loc.name)
                    .expect("locked");
                &*guards[i]
            };
            let held = Held {
                placement: now,
                from: (&*from, conn_of(&from)),
                to: to.as_deref().map(|t| (t, conn_of(t))),
            };
            let (value, order) = match op(&held) {
                Ok(v) => v,
                Err(e) => {
                    rollback(&begun);
                    return Err(e);
                }
            };
            let mut sequence = vec![held.from];
            if let Some(to) = held.to {
                match order {
                    Commit::TargetFirst => sequence.insert(0, to),
                    Commit::SourceFirst => sequence.push(to),
                }
            }
            for (i, (loc, conn)) in sequence.iter().enumerate() {
                if i == 1 && self.crash_at(fault::BETWEEN_COMMITS) {
                    rollback(&[conn]);
                    return Err(MoveError::Crashed(fault::BETWEEN_COMMITS));
                }
                if let Err(e) = conn.execute_batch("COMMIT") {
                    let rest: Vec<&Connection> = sequence[i..].iter().map(|(_, c)| *c).collect();
                    rollback(&rest);
                    return Err(sqlite(loc, e));
                }
            }
            then(&value)?;
            return Ok(value);
        }
        Err(MoveError::Contended(format!("{owner:?}")))
    }

    /// Creates a record for its owner; false if its id is taken.
    pub fn create(&self, item: &R) -> Result<bool> {
        let _timed = self.timed();
        let owner = item.owner();
        self.locked_request(owner, |h| {
            let (from, fc) = h.from;
            let Some((to, tc)) = h.to else {
                let created = from.layout.insert(fc, item).map_err(|e| sqlite(from, e))?;
                return Ok((created, Commit::TargetFirst));
            };
            if from
                .layout
                .get(fc, owner, item.id())
                .map_err(|e| sqlite(from, e))?
                .is_some()
            {
                return Ok((false, Commit::TargetFirst));
            }
            let created = to.layout.insert(tc, item).map_err(|e| sqlite(to, e))?;
            if created {
                h.ledger(owner, None, Some(item))?;
            }
            Ok((created, Commit::TargetFirst))
        })
    }

    /// Updates the owner's record `id`: `change` gets the current version and returns the new
    /// one, or `None` to leave it (last write wins is the caller's rule). Returns the record
    /// as it stands afterwards, `None` if there is no such record. While moving, the record
    /// moves to the target.
    pub fn update(
        &self,
        owner: &R::Owner,
        id: &R::Id,
        change: impl Fn(&R) -> Option<R>,
    ) -> Result<Option<R>> {
        let _timed = self.timed();
        self.locked_request(owner, |h| {
            let (from, fc) = h.from;
            let a = from
                .layout
                .get(fc, owner, id)
                .map_err(|e| sqlite(from, e))?;
            let Some((to, tc)) = h.to else {
                let Some(current) = a else {
                    return Ok((None, Commit::TargetFirst));
                };
                let Some(new) = change(&current) else {
                    return Ok((Some(current), Commit::TargetFirst));
                };
                from.layout.put(fc, &new).map_err(|e| sqlite(from, e))?;
                return Ok((Some(new), Commit::TargetFirst));
            };
            let b = to.layout.get(tc, owner, id).map_err(|e| sqlite(to, e))?;
            let in_from = a.is_some();
            let Some(current) = newest(a, b.clone()) else {
                return Ok((None, Commit::TargetFirst));
            };
            let Some(new) = change(&current) else {
                return Ok((Some(current), Commit::TargetFirst));
            };
            // The update moves the record to the target, unless the target cannot hold it (its
            // key is taken by another owner's record): then it stays at the source, updated
            // there, readable and writable, and the backfill will stop on it.
            tc.execute_batch("SAVEPOINT strata_update")
                .map_err(|e| sqlite(to, e))?;
            match put_confirmed(to, tc, &new, &mut Vec::new()) {
                Ok(_) => {
                    tc.execute_batch("RELEASE strata_update")
                        .map_err(|e| sqlite(to, e))?;
                }
                Err(MoveError::Conflict { .. }) => {
                    tc.execute_batch("ROLLBACK TO strata_update; RELEASE strata_update")
                        .map_err(|e| sqlite(to, e))?;
                    put_confirmed(from, fc, &new, &mut Vec::new())?;
                    return Ok((Some(new), Commit::TargetFirst));
                }
                Err(e) => return Err(e),
            }
            h.ledger(owner, b.as_ref(), Some(&new))?;
            if in_from {
                from.layout
                    .remove(fc, owner, id)
                    .map_err(|e| sqlite(from, e))?;
            }
            Ok((Some(new), Commit::TargetFirst))
        })
    }

    /// Deletes the owner's record `id` wherever it is; false if there was none. While moving,
    /// the older copy goes first, so a crash between the two commits leaves the newest.
    pub fn delete(&self, owner: &R::Owner, id: &R::Id) -> Result<bool> {
        let _timed = self.timed();
        self.locked_request(owner, |h| {
            let (from, fc) = h.from;
            let Some((to, tc)) = h.to else {
                let gone = from
                    .layout
                    .remove(fc, owner, id)
                    .map_err(|e| sqlite(from, e))?;
                return Ok((gone, Commit::TargetFirst));
            };
            let a = from
                .layout
                .get(fc, owner, id)
                .map_err(|e| sqlite(from, e))?;
            let b = to.layout.get(tc, owner, id).map_err(|e| sqlite(to, e))?;
            let order = match (&a, &b) {
                (Some(a), Some(b)) if a.version() > b.version() => Commit::TargetFirst,
                _ => Commit::SourceFirst,
            };
            if a.is_some() {
                from.layout
                    .remove(fc, owner, id)
                    .map_err(|e| sqlite(from, e))?;
            }
            if b.is_some() {
                to.layout.remove(tc, owner, id).map_err(|e| sqlite(to, e))?;
                h.ledger(owner, b.as_ref(), None)?;
            }
            Ok((a.is_some() || b.is_some(), order))
        })
    }

    /// Changes the owner's placement while its databases are locked: `change` may work on the
    /// locked databases and returns the new placement, or `None` to leave it. The databases
    /// commit first, then the directory, and only then are the locks released.
    pub(crate) fn transition(
        &self,
        owner: &R::Owner,
        extra: Option<&str>,
        change: impl FnMut(&Held<'_, R>) -> Result<Option<Placement>>,
    ) -> Result<Option<Placement>> {
        let mut change = change;
        self.locked_then(
            owner,
            extra,
            |h| Ok((change(h)?, Commit::TargetFirst)),
            |next| {
                let Some(next) = next else { return Ok(()) };
                if self.crash_at(fault::BEFORE_DIRECTORY) {
                    return Err(MoveError::Crashed(fault::BEFORE_DIRECTORY));
                }
                let write = |c: &Connection| -> rusqlite::Result<()> {
                    c.execute_batch("BEGIN IMMEDIATE")?;
                    let done =
                        directory::set(c, owner, next).and_then(|_| c.execute_batch("COMMIT"));
                    if done.is_err() {
                        let _ = c.execute_batch("ROLLBACK");
                    }
                    done
                };
                self.control
                    .with_writer(write)
                    .map_err(|e| self.control_err(e))
            },
        )
    }

    /// Total records per location.
    pub fn totals(&self) -> Result<Vec<(String, u64)>> {
        self.locations()
            .iter()
            .map(|l| {
                let n = l
                    .pool
                    .with_reader(|c| l.layout.total(c))
                    .map_err(|e| sqlite(l, e))?;
                Ok((l.name.clone(), n))
            })
            .collect()
    }
}
