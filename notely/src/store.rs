//! Notely's SQLite stores: accounts in the control database, notes in note stores.
//!
//! Each database file gets one writer connection and a few reader connections in WAL mode, so
//! reads never queue behind writes. Every call runs on tokio's blocking pool, never on the
//! async executor threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
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
}

/// One SQLite database: a writer and a few readers.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

impl Db {
    /// Opens an existing, migrated database with `readers` reader connections.
    pub fn open(path: &Path, readers: usize) -> Result<Arc<Db>, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let writer =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(err)?;
        // WAL lets readers run beside the writer; it persists in the file.
        writer
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(err)?;
        configure(&writer).map_err(err)?;
        let readers = (0..readers.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                configure(&conn)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(err)?;
        Ok(Arc::new(Db {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers,
            next: AtomicUsize::new(0),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a free reader connection, on the calling thread (which must be allowed to
    /// block: the blocking pool, not an async worker).
    pub fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        // Take the first idle reader; wait for one only when all are busy.
        let conn = (0..n)
            .find_map(|i| self.readers[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| {
                self.readers[start % n]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            });
        f(&conn)
    }

    /// Runs `f` on the writer connection, on the calling thread (see [`Db::with_reader`]).
    pub fn with_writer<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
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
        let path = self.path.clone();
        match tokio::task::spawn_blocking(f).await {
            Ok(result) => result.map_err(|source| StoreError::Sqlite { path, source }),
            Err(e) => Err(StoreError::Task(path, e.to_string())),
        }
    }
}

/// An account, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub is_migrating: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// A note, as the API shows it. Times are stored as Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: Uuid,
    pub creator: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub content: String,
}

/// Unix milliseconds as a UTC time.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        name: r.get(1)?,
        is_migrating: r.get(2)?,
        shard: r.get(3)?,
    })
}

fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: r.get(0)?,
        creator: r.get(1)?,
        created_at: from_millis(r.get(2)?),
        updated_at: from_millis(r.get(3)?),
        content: r.get(4)?,
    })
}

/// Accounts (control database).
pub mod accounts {
    use super::*;

    pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Account>> {
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, is_migrating, shard FROM accounts ORDER BY name, id",
        )?;
        stmt.query_map([], account_row)?.collect()
    }

    pub fn get(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Account>> {
        conn.prepare_cached("SELECT id, name, is_migrating, shard FROM accounts WHERE id = ?1")?
            .query_row([id], account_row)
            .optional()
    }

    /// Inserts `account`; false if its id is taken.
    pub fn insert(conn: &Connection, a: &Account) -> rusqlite::Result<bool> {
        let n = conn
            .prepare_cached(
                "INSERT INTO accounts (id, name, is_migrating, shard) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![a.id, a.name, a.is_migrating, a.shard])?;
        Ok(n == 1)
    }

    /// Updates `account`; false if it does not exist.
    pub fn update(conn: &Connection, a: &Account) -> rusqlite::Result<bool> {
        let n = conn
            .prepare_cached(
                "UPDATE accounts SET name = ?2, is_migrating = ?3, shard = ?4 WHERE id = ?1",
            )?
            .execute(params![a.id, a.name, a.is_migrating, a.shard])?;
        Ok(n == 1)
    }
}

/// Notes (a note store). Every call names the account: a note is only reachable through its
/// own account.
pub mod notes {
    use super::*;

    /// Ids of the account's notes, oldest first.
    pub fn list(conn: &Connection, account: Uuid) -> rusqlite::Result<Vec<Uuid>> {
        let mut stmt =
            conn.prepare_cached("SELECT id FROM notes WHERE creator = ?1 ORDER BY created_at, id")?;
        stmt.query_map([account], |r| r.get(0))?.collect()
    }

    pub fn get(conn: &Connection, account: Uuid, id: Uuid) -> rusqlite::Result<Option<Note>> {
        conn.prepare_cached(
            "SELECT id, creator, created_at, updated_at, content FROM notes WHERE id = ?1 AND creator = ?2",
        )?
        .query_row([id, account], note_row)
        .optional()
    }

    /// Inserts `note`; false if its id is taken.
    pub fn create(conn: &Connection, n: &Note) -> rusqlite::Result<bool> {
        let inserted = conn
            .prepare_cached(
                "INSERT INTO notes (id, creator, created_at, updated_at, content) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![n.id, n.creator, n.created_at.timestamp_millis(), n.updated_at.timestamp_millis(), n.content])?;
        Ok(inserted == 1)
    }

    /// Last write wins: sets content and `updated_at` unless the stored note is as new or newer.
    /// Returns the note as stored afterwards, or `None` if the account has no such note.
    pub fn update(
        conn: &Connection,
        account: Uuid,
        id: Uuid,
        content: &str,
        updated_at: DateTime<Utc>,
    ) -> rusqlite::Result<Option<Note>> {
        conn.prepare_cached(
            "UPDATE notes SET content = ?3, updated_at = ?4 WHERE id = ?1 AND creator = ?2 AND updated_at < ?4",
        )?
        .execute(params![id, account, content, updated_at.timestamp_millis()])?;
        get(conn, account, id)
    }

    /// Deletes the note if it exists; deleting twice is fine.
    pub fn delete(conn: &Connection, account: Uuid, id: Uuid) -> rusqlite::Result<()> {
        conn.prepare_cached("DELETE FROM notes WHERE id = ?1 AND creator = ?2")?
            .execute([id, account])?;
        Ok(())
    }

    /// Notes in the store.
    pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
    }
}
