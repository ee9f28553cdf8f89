//! Notely's SQLite stores: accounts in the control database, notes in note stores.
//!
//! Each database file gets one writer connection and a few reader connections in WAL mode, so
//! reads never queue behind writes. Every call runs off the async executor threads: the note
//! API's on the proxy's read and write threads (`crate::lane`), the rest on tokio's blocking
//! pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use strata_online::{
    Item, Layout, LayoutError, LayoutResult, MoveError, Phase, Placement, Pool, directory,
};
use uuid::Uuid;

/// What can go wrong talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{0}: the blocking task failed: {1}")]
    Task(PathBuf, String),
    #[error(transparent)]
    Move(#[from] MoveError),
}

/// One SQLite database (see [`strata_online::Pool`]), with async helpers that run its
/// calls on tokio's blocking pool.
#[derive(Debug)]
pub struct Db {
    pool: Arc<Pool>,
}

impl Db {
    /// Opens an existing, migrated database with `readers` reader connections.
    pub fn open(path: &Path, readers: usize) -> Result<Arc<Db>, StoreError> {
        let pool = Pool::open(path, readers).map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Arc::new(Db {
            pool: Arc::new(pool),
        }))
    }

    /// The connections, for the online engine.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// Runs `f` on a free reader connection, on the calling thread (which must be allowed to
    /// block: the blocking pool, not an async worker).
    pub fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.pool.with_reader(f)
    }

    /// Runs `f` on the writer connection, on the calling thread (see [`Db::with_reader`]).
    pub fn with_writer<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.pool.with_writer(f)
    }

    /// Runs `f` on a reader connection, on the blocking pool.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        self.blocking(move || db.with_reader(f)).await
    }

    /// Runs `f` on the writer connection, on the blocking pool.
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        self.blocking(move || db.with_writer(f)).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path().to_path_buf();
        match tokio::task::spawn_blocking(f).await {
            Ok(result) => result.map_err(|source| StoreError::Sqlite { path, source }),
            Err(e) => Err(StoreError::Task(path, e.to_string())),
        }
    }
}

/// An account, as the API shows it. `isMigrating` and `shard` come from the placement
/// directory: whether the account's notes are moving, and the store holding them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub is_migrating: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Where the notes are (absent only for an account the directory does not know).
    #[serde(skip)]
    pub placement: Option<Placement>,
}

impl Account {
    /// A new account, not placed yet.
    pub fn new(id: Uuid, name: String) -> Account {
        Account {
            id,
            name,
            is_migrating: false,
            shard: None,
            placement: None,
        }
    }

    fn placed(mut self, placement: Option<Placement>) -> Account {
        self.is_migrating = placement.as_ref().is_some_and(|p| p.phase != Phase::Stable);
        self.shard = placement.as_ref().map(|p| p.location.clone());
        self.placement = placement;
        self
    }
}

/// A note, as the API shows it. Times are stored as Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: Uuid,
    pub creator: Uuid,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    pub content: String,
}

/// Serialises a time exactly as chrono's `Serialize` does (RFC 3339 in UTC with `Z`, the
/// fraction in 3, 6 or 9 digits as needed, none when whole), without `fmt`: every note the
/// API answers with has two, and chrono's formatting was a tenth of a GET note's own work in
/// the profile. Years outside 0..=9999 and leap seconds go through chrono.
pub fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match write_rfc3339(t, &mut buf) {
        Some(len) => s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default()),
        None => Serialize::serialize(t, s),
    }
}

/// `t` in `buf` as [`rfc3339`] writes it; its length, or `None` when chrono must do it.
fn write_rfc3339(t: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    fn put(buf: &mut [u8], at: usize, mut value: u32, width: usize) -> usize {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        at + width
    }
    let mut at = put(buf, 0, year, 4);
    for (sep, value) in [
        (b'-', t.month()),
        (b'-', t.day()),
        (b'T', t.hour()),
        (b':', t.minute()),
        (b':', t.second()),
    ] {
        buf[at] = sep;
        at = put(buf, at + 1, value, 2);
    }
    if nanos != 0 {
        buf[at] = b'.';
        at = if nanos.is_multiple_of(1_000_000) {
            put(buf, at + 1, nanos / 1_000_000, 3)
        } else if nanos.is_multiple_of(1_000) {
            put(buf, at + 1, nanos / 1_000, 6)
        } else {
            put(buf, at + 1, nanos, 9)
        };
    }
    buf[at] = b'Z';
    Some(at + 1)
}

/// Unix milliseconds as a UTC time.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let placement = match r.get::<_, Option<String>>(2)? {
        None => None,
        Some(location) => Some(Placement {
            location,
            target: r.get(3)?,
            phase: match r.get::<_, String>(4)?.as_str() {
                "dual" => Phase::Dual,
                "backfill" => Phase::Backfill,
                "verify" => Phase::Verify,
                _ => Phase::Stable,
            },
            move_id: r.get(5)?,
            epoch: r.get(6)?,
        }),
    };
    Ok(Account::new(r.get(0)?, r.get(1)?).placed(placement))
}

/// Accounts with their placement, in one query.
const ACCOUNT_SELECT: &str = "SELECT a.id, a.name, p.location, p.target, p.phase, p.move_id, \
     p.epoch FROM accounts a LEFT JOIN strata_placement p ON p.owner = a.id";

fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: r.get(0)?,
        creator: r.get(1)?,
        created_at: from_millis(r.get(2)?),
        updated_at: from_millis(r.get(3)?),
        content: r.get(4)?,
    })
}

/// Ids per `IN (..)` list in a layout's `get_many` and `remove_many`: a longer list is split.
/// Each length is a statement of its own in the connection's cache; the backfill asks for
/// eight at a time.
const IN_MAX: usize = 16;

/// One statement text per length of its `IN (..)` list, 1 to [`IN_MAX`]: `head` and then
/// `(?2, ?3, ..)`, after the owner's `?1`.
fn in_lists(head: &str) -> Vec<String> {
    (1..=IN_MAX)
        .map(|n| {
            let marks: Vec<String> = (2..n + 2).map(|i| format!("?{i}")).collect();
            format!("{head} ({})", marks.join(", "))
        })
        .collect()
}

/// `texts[n - 1]` (from [`in_lists`]) run for each part of `keys` of at most [`IN_MAX`], with
/// `owner` as `?1` and the part after it; `each` sees every statement's rows.
fn for_each_in<K: rusqlite::ToSql>(
    c: &Connection,
    texts: &[String],
    owner: &K,
    keys: &[K],
    mut each: impl FnMut(&mut rusqlite::Statement<'_>, &[&dyn rusqlite::ToSql]) -> LayoutResult<()>,
) -> LayoutResult<()> {
    for part in keys.chunks(IN_MAX) {
        let mut stmt = c.prepare_cached(&texts[part.len() - 1])?;
        let params: Vec<&dyn rusqlite::ToSql> = std::iter::once(owner as &dyn rusqlite::ToSql)
            .chain(part.iter().map(|k| k as &dyn rusqlite::ToSql))
            .collect();
        each(&mut stmt, &params)?;
    }
    Ok(())
}

/// Accounts (control database).
pub mod accounts {
    use super::*;

    pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Account>> {
        let mut stmt = conn.prepare_cached(&format!("{ACCOUNT_SELECT} ORDER BY a.name, a.id"))?;
        stmt.query_map([], account_row)?.collect()
    }

    /// The account and where its notes are: two point lookups in one read transaction (a
    /// WAL read transaction costs file-lock system calls; as one join, SQLite re-plans the
    /// statement at every call).
    pub fn get(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Account>> {
        let autocommit = conn.is_autocommit();
        if autocommit {
            conn.prepare_cached("BEGIN")?.execute([])?;
        }
        let found = (|| {
            let name: Option<String> = conn
                .prepare_cached("SELECT name FROM accounts WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            let Some(name) = name else { return Ok(None) };
            Ok(Some(
                Account::new(id, name).placed(directory::lookup(conn, &id)?),
            ))
        })();
        if autocommit {
            conn.prepare_cached("COMMIT")?.execute([])?;
        }
        found
    }

    /// Inserts the account and places it, in one transaction: by the hash of its id when the
    /// directory has a shard map, else at its location for new accounts, else at `fallback`. Returns the account as stored, or
    /// `None` if its id is taken.
    pub fn create(
        conn: &Connection,
        a: &Account,
        fallback: &str,
    ) -> rusqlite::Result<Option<Account>> {
        let tx = conn.unchecked_transaction()?;
        let n = tx
            .prepare_cached(
                "INSERT INTO accounts (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![a.id, a.name])?;
        if n == 0 {
            return Ok(None);
        }
        let location = strata_online::shard::location_for_new(&tx, a.id.as_bytes(), fallback)?;
        directory::place(&tx, &a.id, &location)?;
        let stored = get(&tx, a.id)?;
        tx.commit()?;
        Ok(stored)
    }

    /// Renames the account; `None` if it does not exist.
    pub fn rename(conn: &Connection, id: Uuid, name: &str) -> rusqlite::Result<Option<Account>> {
        let n = conn
            .prepare_cached("UPDATE accounts SET name = ?2 WHERE id = ?1")?
            .execute(params![id, name])?;
        if n == 0 {
            return Ok(None);
        }
        get(conn, id)
    }
}

/// A note is what the online engine moves: owned by its account, versioned by `updatedAt`.
impl Item for Note {
    type Owner = Uuid;
    type Id = Uuid;

    fn owner(&self) -> &Uuid {
        &self.creator
    }

    fn id(&self) -> &Uuid {
        &self.id
    }

    fn version(&self) -> i64 {
        self.updated_at.timestamp_millis()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(self.creator.as_bytes());
        out.extend_from_slice(&self.created_at.timestamp_millis().to_le_bytes());
        out.extend_from_slice(&self.updated_at.timestamp_millis().to_le_bytes());
        out.extend_from_slice(self.content.as_bytes());
    }
}

/// Notes (a note store, `notes` table). Every call names the account: a note is only
/// reachable through its own account.
pub mod notes {
    use super::*;

    const COLUMNS: &str = "id, creator, created_at, updated_at, content";

    /// A note's values in `COLUMNS` order.
    #[cfg(not(feature = "next"))]
    fn values(n: &Note) -> (Uuid, Uuid, i64, i64, &str) {
        (
            n.id,
            n.creator,
            n.created_at.timestamp_millis(),
            n.updated_at.timestamp_millis(),
            &n.content,
        )
    }

    /// The next release writes a title with every note (its first line), so that the contract
    /// making `title` NOT NULL can follow once older binaries are gone.
    #[cfg(feature = "next")]
    const WRITTEN: &str = "id, creator, created_at, updated_at, content, title";
    #[cfg(feature = "next")]
    const VALUES: &str = "?1, ?2, ?3, ?4, ?5, ?6";
    #[cfg(feature = "next")]
    const ALSO_SET: &str = ", title = excluded.title";
    #[cfg(not(feature = "next"))]
    const WRITTEN: &str = COLUMNS;
    #[cfg(not(feature = "next"))]
    const VALUES: &str = "?1, ?2, ?3, ?4, ?5";
    #[cfg(not(feature = "next"))]
    const ALSO_SET: &str = "";

    /// A note's values in `WRITTEN` order.
    #[cfg(feature = "next")]
    fn values(n: &Note) -> (Uuid, Uuid, i64, i64, &str, String) {
        (
            n.id,
            n.creator,
            n.created_at.timestamp_millis(),
            n.updated_at.timestamp_millis(),
            &n.content,
            notely_migrations::title_of(&n.content),
        )
    }

    /// The layout's statements, written once (they run per request, and their text is the
    /// statement cache's key).
    struct Sql {
        get: String,
        get_many: Vec<String>,
        remove_many: Vec<String>,
        batch: String,
        backfill_ids: String,
        insert: String,
        put: String,
    }

    fn sql() -> &'static Sql {
        static SQL: std::sync::LazyLock<Sql> = std::sync::LazyLock::new(|| Sql {
            get: format!("SELECT {COLUMNS} FROM notes WHERE id = ?1 AND creator = ?2"),
            get_many: in_lists(&format!(
                "SELECT {COLUMNS} FROM notes WHERE creator = ?1 AND id IN"
            )),
            remove_many: in_lists("DELETE FROM notes WHERE creator = ?1 AND id IN"),
            batch: format!(
                "SELECT {COLUMNS} FROM notes WHERE creator = ?1 AND (?2 IS NULL OR id > ?2) \
                 ORDER BY id LIMIT ?3"
            ),
            // Creation order, from `notes_by_creator` (no sort, however many notes): notes are
            // written as they are created, and copied in in their source's order, so it is
            // the table's own order too.
            backfill_ids: "SELECT id FROM notes WHERE creator = ?1 ORDER BY created_at LIMIT ?2"
                .to_string(),
            insert: format!(
                "INSERT INTO notes ({WRITTEN}) VALUES ({VALUES}) \
                 ON CONFLICT (creator, id) DO NOTHING"
            ),
            put: format!(
                "INSERT INTO notes ({WRITTEN}) VALUES ({VALUES}) \
                 ON CONFLICT (creator, id) DO UPDATE SET created_at = excluded.created_at, \
                 updated_at = excluded.updated_at, content = excluded.content{ALSO_SET}"
            ),
        });
        &SQL
    }

    /// The layout of the `notes` table for the online engine.
    #[derive(Debug, Clone, Copy)]
    pub struct NotesTable;

    impl Layout<Note> for NotesTable {
        fn get(&self, c: &Connection, owner: &Uuid, id: &Uuid) -> LayoutResult<Option<Note>> {
            Ok(c.prepare_cached(&sql().get)?
                .query_row([id, owner], note_row)
                .optional()?)
        }

        fn get_many(&self, c: &Connection, owner: &Uuid, ids: &[Uuid]) -> LayoutResult<Vec<Note>> {
            let mut out = Vec::with_capacity(ids.len());
            for_each_in(c, &sql().get_many, owner, ids, |stmt, params| {
                for note in stmt.query_map(params, note_row)? {
                    out.push(note?);
                }
                Ok(())
            })?;
            Ok(out)
        }

        fn remove_many(&self, c: &Connection, owner: &Uuid, ids: &[Uuid]) -> LayoutResult<u64> {
            let mut removed = 0;
            for_each_in(c, &sql().remove_many, owner, ids, |stmt, params| {
                removed += stmt.execute(params)? as u64;
                Ok(())
            })?;
            Ok(removed)
        }

        fn ids(&self, c: &Connection, owner: &Uuid) -> LayoutResult<Vec<(i64, Uuid)>> {
            let mut stmt = c.prepare_cached(
                "SELECT created_at, id FROM notes WHERE creator = ?1 ORDER BY created_at, id",
            )?;
            Ok(stmt
                .query_map([owner], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?)
        }

        fn batch(
            &self,
            c: &Connection,
            owner: &Uuid,
            after: Option<&Uuid>,
            limit: usize,
        ) -> LayoutResult<Vec<Note>> {
            let mut stmt = c.prepare_cached(&sql().batch)?;
            Ok(stmt
                .query_map(params![owner, after, limit as i64], note_row)?
                .collect::<rusqlite::Result<_>>()?)
        }

        fn backfill_ids(
            &self,
            c: &Connection,
            owner: &Uuid,
            limit: usize,
        ) -> LayoutResult<Vec<Uuid>> {
            let mut stmt = c.prepare_cached(&sql().backfill_ids)?;
            Ok(stmt
                .query_map(params![owner, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        }

        fn insert(&self, c: &Connection, n: &Note) -> LayoutResult<bool> {
            let inserted = c.prepare_cached(&sql().insert)?.execute(values(n))?;
            Ok(inserted == 1)
        }

        fn put(&self, c: &Connection, n: &Note) -> LayoutResult<()> {
            c.prepare_cached(&sql().put)?.execute(values(n))?;
            Ok(())
        }

        fn remove(&self, c: &Connection, owner: &Uuid, id: &Uuid) -> LayoutResult<bool> {
            let n = c
                .prepare_cached("DELETE FROM notes WHERE id = ?1 AND creator = ?2")?
                .execute([id, owner])?;
            Ok(n == 1)
        }

        fn count(&self, c: &Connection, owner: &Uuid) -> LayoutResult<u64> {
            let n = c
                .prepare_cached("SELECT count(*) FROM notes WHERE creator = ?1")?
                .query_row([owner], |r| r.get::<_, i64>(0))?;
            Ok(n as u64)
        }

        fn total(&self, c: &Connection) -> LayoutResult<u64> {
            let n = c.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0))?;
            Ok(n as u64)
        }
    }

    /// Notes per account in a store.
    pub fn counts_by_account(
        c: &Connection,
    ) -> rusqlite::Result<std::collections::HashMap<Uuid, u64>> {
        let mut stmt = c.prepare_cached("SELECT creator, count(*) FROM notes GROUP BY creator")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect()
    }
}

/// The legacy store (`memos` table, text ids and RFC 3339 text times), read and written
/// through the legacy migration's typed schema.
pub mod legacy {
    use super::*;
    use notely_migrations::m20261121100100_create_legacy_memos::memos;
    use strata::Tx;

    /// How many of an account's legacy memos the backfill's scan looks at per memo it takes: of
    /// the first `limit × BACKFILL_WINDOW` in the key's index (ids alone; the index holds each
    /// rowid too), a batch is the `limit` first in the table's own order. Rows lie in the order
    /// they were written while their ids are random: in id order a batch's memos lay on about
    /// as many pages as memos, and the next batch rewrote the same pages again; in storage
    /// order they lie on the fewest. An account of up to `limit × BACKFILL_WINDOW` memos is
    /// taken in storage order (12,800 at the default batch of 100: the engine scans eight
    /// batches' ids at a time); beyond that, each window is a random sample of the account and
    /// the gain shrinks. The table has no index to take a bigger account in storage order
    /// without sorting all of it per scan (which would make moving an account of a million
    /// memos quadratic).
    pub(crate) const BACKFILL_WINDOW: usize = 16;

    fn backfill_window(limit: usize) -> i64 {
        limit.saturating_mul(BACKFILL_WINDOW) as i64
    }

    /// The layout of the legacy `memos` table for the online engine.
    #[derive(Debug, Clone, Copy)]
    pub struct MemosTable;

    fn time(memo: &str, field: &str, text: &str) -> LayoutResult<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| from_millis(t.timestamp_millis()))
            .map_err(|e| {
                LayoutError::Invalid(format!(
                    "legacy memo {memo}: `{field}` {text:?} is not RFC 3339: {e}"
                ))
            })
    }

    /// A legacy row as a note.
    pub fn to_note(row: memos::Row) -> LayoutResult<Note> {
        let uuid = |field: &str, text: &str| {
            Uuid::parse_str(text).map_err(|e| {
                LayoutError::Invalid(format!(
                    "legacy memo {}: `{field}` {text:?} is not a UUID: {e}",
                    row.memo_id
                ))
            })
        };
        Ok(Note {
            id: uuid("memo_id", &row.memo_id)?,
            creator: uuid("account_ref", &row.account_ref)?,
            created_at: time(&row.memo_id, "created", &row.created)?,
            updated_at: time(&row.memo_id, "modified", &row.modified)?,
            content: row.body,
        })
    }

    /// A note as a legacy row.
    pub fn to_row(n: &Note) -> memos::Row {
        let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        memos::Row {
            memo_id: n.id.hyphenated().to_string(),
            account_ref: n.creator.hyphenated().to_string(),
            body: n.content.clone(),
            created: at(&n.created_at),
            modified: at(&n.updated_at),
        }
    }

    fn key(id: &Uuid) -> String {
        id.hyphenated().to_string()
    }

    /// The statements, written once from the legacy schema's table and column constants;
    /// rows come back through `memos::Row`.
    struct Statements {
        get: String,
        get_many: Vec<String>,
        remove_many: Vec<String>,
        ids: String,
        batch: String,
        backfill_ids: String,
        taken: String,
        remove: String,
        count: String,
        total: String,
    }

    fn statements() -> &'static Statements {
        static SQL: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
        SQL.get_or_init(|| {
            use strata::Table;
            let table = memos::Table::DEF.name;
            let columns = memos::Table::DEF
                .columns
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ");
            let (id, owner, created) = (
                memos::MEMO_ID.name(),
                memos::ACCOUNT_REF.name(),
                memos::CREATED.name(),
            );
            Statements {
                get: format!("SELECT {columns} FROM {table} WHERE {id} = ?1 AND {owner} = ?2"),
                get_many: in_lists(&format!(
                    "SELECT {columns} FROM {table} WHERE {owner} = ?1 AND {id} IN"
                )),
                remove_many: in_lists(&format!(
                    "DELETE FROM {table} WHERE {owner} = ?1 AND {id} IN"
                )),
                ids: format!("SELECT {id}, {created} FROM {table} WHERE {owner} = ?1"),
                batch: format!(
                    "SELECT {columns} FROM {table} WHERE {owner} = ?1 AND {id} > ?2 \
                     ORDER BY {id} LIMIT ?3"
                ),
                backfill_ids: format!(
                    "SELECT {id} FROM (SELECT {id}, rowid AS r FROM {table} WHERE {owner} = ?1 \
                     LIMIT ?3) ORDER BY r LIMIT ?2"
                ),
                taken: format!("SELECT count(*) FROM {table} WHERE {id} = ?1 AND {owner} = ?2"),
                remove: format!("DELETE FROM {table} WHERE {id} = ?1 AND {owner} = ?2"),
                count: format!("SELECT count(*) FROM {table} WHERE {owner} = ?1"),
                total: format!("SELECT count(*) FROM {table}"),
            }
        })
    }

    /// A memo's `memo_id`, parsed.
    fn memo_id(id: &str) -> LayoutResult<Uuid> {
        Uuid::parse_str(id).map_err(|e| {
            LayoutError::Invalid(format!("legacy memo {id}: `memo_id` is not a UUID: {e}"))
        })
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<memos::Row> {
        <memos::Row as strata::Record>::from_row(r)
    }

    fn count_of(c: &Connection, sql: &str, param: &str) -> rusqlite::Result<u64> {
        c.prepare_cached(sql)?
            .query_row([param], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }

    impl Layout<Note> for MemosTable {
        fn get(&self, c: &Connection, owner: &Uuid, id: &Uuid) -> LayoutResult<Option<Note>> {
            c.prepare_cached(&statements().get)?
                .query_row([key(id), key(owner)], row)
                .optional()?
                .map(to_note)
                .transpose()
        }

        fn get_many(&self, c: &Connection, owner: &Uuid, ids: &[Uuid]) -> LayoutResult<Vec<Note>> {
            let keys: Vec<String> = ids.iter().map(key).collect();
            let mut out = Vec::with_capacity(ids.len());
            for_each_in(
                c,
                &statements().get_many,
                &key(owner),
                &keys,
                |stmt, params| {
                    for r in stmt.query_map(params, row)? {
                        out.push(to_note(r?)?);
                    }
                    Ok(())
                },
            )?;
            Ok(out)
        }

        fn remove_many(&self, c: &Connection, owner: &Uuid, ids: &[Uuid]) -> LayoutResult<u64> {
            let keys: Vec<String> = ids.iter().map(key).collect();
            let mut removed = 0;
            for_each_in(
                c,
                &statements().remove_many,
                &key(owner),
                &keys,
                |stmt, params| {
                    removed += stmt.execute(params)? as u64;
                    Ok(())
                },
            )?;
            Ok(removed)
        }

        fn ids(&self, c: &Connection, owner: &Uuid) -> LayoutResult<Vec<(i64, Uuid)>> {
            let mut stmt = c.prepare_cached(&statements().ids)?;
            let rows = stmt
                .query_map([key(owner)], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
            let mut out = rows
                .into_iter()
                .map(|(id, created)| {
                    let uuid = memo_id(&id)?;
                    Ok((time(&id, "created", &created)?.timestamp_millis(), uuid))
                })
                .collect::<LayoutResult<Vec<_>>>()?;
            out.sort();
            Ok(out)
        }

        fn batch(
            &self,
            c: &Connection,
            owner: &Uuid,
            after: Option<&Uuid>,
            limit: usize,
        ) -> LayoutResult<Vec<Note>> {
            let after = after.map(key).unwrap_or_default();
            let mut stmt = c.prepare_cached(&statements().batch)?;
            let rows = stmt.query_map(params![key(owner), after, limit as i64], row)?;
            rows.map(|r| to_note(r?)).collect()
        }

        fn backfill_ids(
            &self,
            c: &Connection,
            owner: &Uuid,
            limit: usize,
        ) -> LayoutResult<Vec<Uuid>> {
            // In storage order, within `BACKFILL_WINDOW`.
            let mut stmt = c.prepare_cached(&statements().backfill_ids)?;
            let mut rows = stmt.query(params![key(owner), limit as i64, backfill_window(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let id = r.get_ref(0)?.as_str().map_err(|e| {
                    LayoutError::Invalid(format!("legacy memo: `memo_id` is not text: {e}"))
                })?;
                out.push(memo_id(id)?);
            }
            Ok(out)
        }

        fn insert(&self, c: &Connection, n: &Note) -> LayoutResult<bool> {
            let taken = c
                .prepare_cached(&statements().taken)?
                .query_row([key(&n.id), key(&n.creator)], |r| r.get::<_, i64>(0))?;
            if taken > 0 {
                return Ok(false);
            }
            Tx::over(c).insert(&to_row(n))?;
            Ok(true)
        }

        fn put(&self, c: &Connection, n: &Note) -> LayoutResult<()> {
            self.remove(c, &n.creator, &n.id)?;
            Ok(Tx::over(c).insert(&to_row(n))?)
        }

        fn remove(&self, c: &Connection, owner: &Uuid, id: &Uuid) -> LayoutResult<bool> {
            let n = c
                .prepare_cached(&statements().remove)?
                .execute([key(id), key(owner)])?;
            Ok(n == 1)
        }

        fn count(&self, c: &Connection, owner: &Uuid) -> LayoutResult<u64> {
            Ok(count_of(c, &statements().count, &key(owner))?)
        }

        fn total(&self, c: &Connection) -> LayoutResult<u64> {
            let n = c
                .prepare_cached(&statements().total)?
                .query_row([], |r| r.get::<_, i64>(0))?;
            Ok(n as u64)
        }
    }

    /// Notes per account in the legacy store.
    pub fn counts_by_account(
        c: &Connection,
    ) -> rusqlite::Result<std::collections::HashMap<Uuid, u64>> {
        let mut stmt =
            c.prepare_cached("SELECT account_ref, count(*) FROM memos GROUP BY account_ref")?;
        stmt.query_map([], |r| {
            let text: String = r.get(0)?;
            Ok((
                Uuid::parse_str(&text).unwrap_or_default(),
                r.get::<_, i64>(1)? as u64,
            ))
        })?
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's times read exactly as chrono's own serialisation: whole seconds, millis,
    /// micros, nanos, the first and last four-digit years, and what goes through chrono.
    #[test]
    fn times_serialise_as_chrono_does() {
        let mut times: Vec<DateTime<Utc>> = [
            "2026-11-30T04:05:00Z",
            "2026-11-30T04:05:00.100Z",
            "2026-11-30T04:05:00.000001Z",
            "2026-11-30T04:05:00.000000001Z",
            "2026-11-30T04:05:00.123456789Z",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
            "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // A leap second.
        times.push(
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap()
                .and_utc(),
        );
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let secs = (seed % 400_000_000_000) as i64 - 62_000_000_000;
            let nanos =
                [0, 1_000_000, 1_000, 1][(seed >> 60) as usize % 4] * ((seed >> 20) % 1_000) as u32;
            times.push(DateTime::from_timestamp(secs, nanos).unwrap());
        }
        for t in times {
            let note = Note {
                id: Uuid::nil(),
                creator: Uuid::nil(),
                created_at: t,
                updated_at: t,
                content: String::new(),
            };
            let ours = serde_json::to_value(&note).unwrap();
            let chrono = serde_json::to_value(t).unwrap();
            assert_eq!(ours["createdAt"], chrono, "{t:?}");
            assert_eq!(ours["updatedAt"], chrono, "{t:?}");
        }
    }

    /// Each layout's `backfill_ids` (what the backfill scans) names only the owner's records,
    /// `limit` of them unless fewer are left, in the order they were written (the table's, not
    /// the ids'), with another owner's records between them; and after each batch's removal,
    /// the next. The legacy layout's scan is bounded by its window.
    /// Both layouts, each with its store's schema (the legacy one with its backfill window).
    fn layouts() -> [(&'static str, &'static dyn Layout<Note>, Option<usize>); 2] {
        #[cfg(not(feature = "next"))]
        let schemas = [
            include_str!("../../migrations/schema/legacy.sql"),
            include_str!("../../migrations/schema/notes.sql"),
        ];
        #[cfg(feature = "next")]
        let schemas = [
            include_str!("../../migrations/schema/next/legacy.sql"),
            include_str!("../../migrations/schema/next/notes.sql"),
        ];
        [
            (
                schemas[0],
                &legacy::MemosTable,
                Some(legacy::BACKFILL_WINDOW),
            ),
            (schemas[1], &notes::NotesTable, None),
        ]
    }

    /// `get_many` and `remove_many` (one statement per up to `IN_MAX` ids) find and remove
    /// exactly the owner's records among the ids: not another owner's with the same id, not
    /// ids without a record, all of a list longer than one statement takes.
    #[test]
    fn get_many_and_remove_many_keep_to_the_owner() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let note = |i: u128, creator| {
            let at = from_millis(1_700_000_000_000 + i as i64);
            Note {
                id: Uuid::from_u128(i),
                creator,
                created_at: at,
                updated_at: at,
                content: format!("note {i}"),
            }
        };
        for (schema, layout, _) in layouts() {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(schema).unwrap();
            let mine: Vec<Note> = (0..40).map(|i| note(i, a)).collect();
            for n in &mine {
                assert!(layout.insert(&c, n).unwrap());
            }
            // Another owner with one of the same ids, and one of its own.
            for n in [note(7, b), note(100, b)] {
                assert!(layout.insert(&c, &n).unwrap());
            }
            assert!(layout.get_many(&c, &a, &[]).unwrap().is_empty());
            // Every other one of a's, a missing id, and b's own: a's twenty, as `get` has them.
            let mut asked: Vec<Uuid> = mine.iter().step_by(2).map(|n| n.id).collect();
            asked.extend([Uuid::from_u128(999), Uuid::from_u128(100)]);
            assert!(asked.len() > IN_MAX);
            let mut found = layout.get_many(&c, &a, &asked).unwrap();
            found.sort_by_key(|n| n.id);
            let expected: Vec<Note> = mine.iter().step_by(2).cloned().collect();
            assert_eq!(found, expected);
            let b7 = layout.get_many(&c, &b, &[Uuid::from_u128(7)]).unwrap();
            assert_eq!(b7, [note(7, b)]);
            // Removing them: twenty, b's records stay, a's others too.
            assert_eq!(layout.remove_many(&c, &a, &asked).unwrap(), 20);
            assert_eq!(layout.remove_many(&c, &a, &asked).unwrap(), 0);
            assert!(layout.get_many(&c, &a, &asked).unwrap().is_empty());
            assert_eq!(layout.count(&c, &a).unwrap(), 20);
            assert_eq!(layout.count(&c, &b).unwrap(), 2);
            assert_eq!(
                layout.get(&c, &b, &Uuid::from_u128(100)).unwrap(),
                Some(note(100, b))
            );
            assert_eq!(
                layout.get(&c, &a, &Uuid::from_u128(7)).unwrap(),
                Some(note(7, a))
            );
        }
    }

    #[test]
    fn backfill_ids_take_the_owners_records_in_storage_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // Ids falling as they are written: storage order is the reverse of theirs.
        let note = |i: usize, creator| {
            let at = from_millis(1_700_000_000_000 + i as i64);
            Note {
                id: Uuid::from_u128(0xffff - i as u128),
                creator,
                created_at: at,
                updated_at: at,
                content: "body".into(),
            }
        };
        for (schema, layout, window) in layouts() {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(schema).unwrap();
            let mut written = Vec::new();
            for (i, owner) in [a, a, b, a, b, a, a, a, b, a].into_iter().enumerate() {
                let note = note(i, owner);
                assert!(layout.insert(&c, &note).unwrap());
                if owner == a {
                    written.push(note.id);
                }
            }
            assert_eq!(layout.backfill_ids(&c, &a, 100).unwrap(), written);
            let mut left = written.as_slice();
            while !left.is_empty() {
                let batch = layout.backfill_ids(&c, &a, 3).unwrap();
                assert_eq!(batch, left[..left.len().min(3)]);
                for id in &batch {
                    assert!(layout.remove(&c, &a, id).unwrap());
                }
                left = &left[batch.len()..];
            }
            assert!(layout.backfill_ids(&c, &a, 3).unwrap().is_empty());
            assert_eq!(layout.backfill_ids(&c, &b, 100).unwrap().len(), 3);
            // More records than a batch's window: a full batch whatever its size, and batches
            // drain the owner. Legacy: a batch of one looks at the first `BACKFILL_WINDOW` ids
            // only (the last written), and takes the first written of those.
            let written: Vec<Uuid> = (100..140)
                .map(|i| {
                    let note = note(i, a);
                    assert!(layout.insert(&c, &note).unwrap());
                    note.id
                })
                .collect();
            assert_eq!(layout.backfill_ids(&c, &a, 20).unwrap().len(), 20);
            let mut taken = Vec::new();
            while let [id] = layout.backfill_ids(&c, &a, 1).unwrap()[..] {
                assert!(layout.remove(&c, &a, &id).unwrap());
                taken.push(id);
            }
            let first = match window {
                Some(window) => written[written.len() - window],
                None => written[0],
            };
            assert_eq!(taken[0], first);
            if window.is_none() {
                assert_eq!(taken, written);
            }
            taken.sort();
            let mut written = written;
            written.sort();
            assert_eq!(taken, written);
        }
    }
}
