//! Strata's own tables in each database (metadata, history, audit log, lease), and opening
//! database files safely. The history and the audit log are read and written in
//! `history.rs` (re-exported here), leases in `lease.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};
pub(crate) use crate::history::ensure_class_column;
pub use crate::history::{AppliedMigration, Event, event, read_events, read_history};
pub(crate) use crate::history::{approved_versions, record_applied, record_event, remove_applied};
pub use crate::lease::{Lease, holder_is_gone, lease_holder};

/// History: one row per applied migration, written in the transaction that applies it.
pub const HISTORY_TABLE: &str = "strata_migrations";
/// Audit log: append-only.
pub const EVENTS_TABLE: &str = "strata_events";
/// Key/value facts about the database (its role).
pub const META_TABLE: &str = "strata_meta";
/// Lease held while a `no_transaction` migration runs outside any transaction.
pub const LEASE_TABLE: &str = "strata_lease";

/// `PRAGMA application_id` of databases created by Strata ("STRA").
pub const APPLICATION_ID: i32 = 0x5354_5241;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS strata_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    applied_by TEXT NOT NULL,
    class TEXT
);
CREATE TABLE IF NOT EXISTS strata_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    version INTEGER,
    name TEXT,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS strata_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version INTEGER NOT NULL,
    acquired_at TEXT NOT NULL
);
";

/// Who is acting: `host/pid`.
pub fn actor() -> String {
    format!("{}/{}", hostname(), std::process::id())
}

/// This host's name, read once per process: every history row and audit event names its
/// actor, and the lease's liveness check compares hosts, so one process names itself the same
/// way throughout (and does not read a file per row written).
pub(crate) fn hostname() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".to_string())
    })
    .clone()
}

/// Current UTC time, RFC 3339 with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Checks that `path` can hold an SQLite database before SQLite touches it: its directory
/// exists and, if the file exists and is not empty, it is at least one page long (512 bytes,
/// SQLite's smallest page) and starts with SQLite's header. The header is read through a
/// descriptor kept open for the life of the process ([`header_of`]): closing a descriptor of
/// a file releases every POSIX lock the process holds on it — the locks of this process's own
/// SQLite connections to the same database included.
fn check_file(path: &Path) -> Result<bool> {
    let found = std::fs::metadata(path);
    // A file found has its directory; otherwise a missing directory is what to report.
    if found.is_err() {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::MissingDirectory(dir));
        }
    }
    match found {
        Ok(m) if m.is_dir() => Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: "is a directory".into(),
        }),
        Ok(m) if m.len() == 0 => Ok(true),
        Ok(m) if m.len() < 512 => Err(Error::NotADatabase(path.to_path_buf())),
        Ok(m) => match header_of(path, &m) {
            // A hot journal beside a file that is no database would be played back into it
            // by SQLite's first read: the header is checked here first.
            Some(header) if &header != SQLITE_HEADER => {
                Err(Error::NotADatabase(path.to_path_buf()))
            }
            _ => Ok(true),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::ReadOnly(path.to_path_buf()))
        }
        Err(e) => Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The first 16 bytes of the file `path` (`meta` its metadata), read through a descriptor this
/// process keeps open for good, one per file: closing a descriptor would drop every POSIX lock
/// the process's SQLite connections hold on the file. `None` when it cannot be read.
#[cfg(unix)]
fn header_of(path: &Path, meta: &std::fs::Metadata) -> Option<[u8; 16]> {
    use std::collections::HashMap;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::sync::{Mutex, OnceLock};
    static OPEN: OnceLock<Mutex<HashMap<(u64, u64), std::fs::File>>> = OnceLock::new();
    let mut open = OPEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = (meta.dev(), meta.ino());
    // A kept descriptor of a file since deleted (its inode reused) is replaced: nobody can
    // open a deleted file, so no lock that matters is dropped with it.
    if open
        .get(&key)
        .is_some_and(|f| f.metadata().is_ok_and(|m| m.nlink() == 0))
    {
        open.remove(&key);
    }
    let file = match open.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(std::fs::File::open(path).ok()?),
    };
    let mut header = [0u8; 16];
    file.read_exact_at(&mut header, 0).ok()?;
    Some(header)
}

#[cfg(not(unix))]
fn header_of(_: &Path, _: &std::fs::Metadata) -> Option<[u8; 16]> {
    None
}

/// Maps SQLite's errors about the file itself to errors naming the file.
pub(crate) fn file_error(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotADatabase(path.to_path_buf()),
        Some(ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) => Error::ReadOnly(path.to_path_buf()),
        _ => Error::Sqlite(e),
    }
}

/// Opens (creating if missing) `path` for migrating. Writes nothing: the file SQLite creates
/// stays empty until the first migration commits.
pub fn open_rw(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = open_rw_unread(path, busy_timeout)?;
    // The first read checks the header (another file than a database fails here, untouched).
    // Kept out by another process's exclusive lock, it is left to the caller's own reads,
    // which wait and report that as a lock timeout.
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) => {}
        Err(e) => return Err(file_error(path, e)),
    }
    // A file damaged beyond its header shows on the first read, whose error goes through
    // `file_error` like every read of the runner.
    Ok(conn)
}

/// [`open_rw`] without its first read: for a caller whose own first read maps SQLite's errors
/// through [`file_error`] (and a lock held too long to a lock timeout), as the runner's startup
/// check does — one read lock instead of three for the common case.
pub(crate) fn open_rw_unread(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    check_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| file_error(path, e))?;
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(Error::ReadOnly(path.to_path_buf()));
    }
    conn.busy_timeout(busy_timeout)?;
    // Migrations run with foreign keys enforced; `foreign_keys = off` migrations get them
    // switched off around their transaction by the runner. (`PRAGMA foreign_keys = ON`'s
    // setting, without a statement to parse; reads nothing.)
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY,
        true,
    )?;
    Ok(conn)
}

/// Opens `path` read-only; `None` when the file does not exist.
pub fn open_ro(path: &Path, busy_timeout: Duration) -> Result<Option<Connection>> {
    if !check_file(path)? {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| file_error(path, e))?;
    conn.busy_timeout(busy_timeout)?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| file_error(path, e))?;
    Ok(Some(conn))
}

/// `PRAGMA quick_check` (SQLite's check of every page, without comparing indexes with their
/// tables): nothing when the database is intact, else SQLite's findings (at most 20). Reads
/// the whole file, so it takes time in proportion to its size.
pub fn quick_check(conn: &Connection) -> Result<Vec<String>> {
    let found: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(20)")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect());
    match found {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(Vec::new()),
        // One finding per line (a row may hold several), without the `*** in database main
        // ***` heading.
        Ok(rows) => Ok(rows
            .iter()
            .flat_map(|r| r.lines())
            .filter(|l| !l.starts_with("*** "))
            .map(str::to_string)
            .collect()),
        // Damage bad enough to stop the check itself (an unreadable schema, say).
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            ) =>
        {
            Ok(vec![e.to_string()])
        }
        Err(e) => Err(e.into()),
    }
}

/// What Strata knows about a database, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Strata's tables exist and carry a role.
    pub role: Option<String>,
    /// The applied migrations, in version order; empty for a new database.
    pub history: Vec<AppliedMigration>,
    /// The lease of a `no_transaction` migration running (or crashed) right now, if any.
    pub lease: Option<Lease>,
}

/// Reads role, history and lease. A database without Strata's tables yields an empty state if
/// it has no tables at all, and [`Error::ForeignDatabase`] otherwise.
pub fn read_state(conn: &Connection, path: &Path) -> Result<State> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| file_error(path, e))?;
    if !tables.iter().any(|t| t == META_TABLE) {
        if tables.is_empty() {
            return Ok(State::default());
        }
        return Err(Error::ForeignDatabase {
            path: path.to_path_buf(),
            tables: tables.join(", "),
        });
    }
    let role: Option<String> = conn
        .query_row(
            "SELECT value FROM strata_meta WHERE key = 'role'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let history = read_history(conn)?;
    let lease = conn
        .query_row(
            "SELECT holder, host, pid, version, acquired_at FROM strata_lease WHERE id = 1",
            [],
            |r| {
                Ok(Lease {
                    holder: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    version: r.get(3)?,
                    acquired_at: r.get(4)?,
                })
            },
        )
        .optional()?;
    Ok(State {
        role,
        history,
        lease,
    })
}

/// Creates Strata's tables and records the role. Call inside a write transaction.
pub(crate) fn initialize(conn: &Connection, role: &str) -> Result<()> {
    conn.execute_batch(CREATE)?;
    conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
    conn.execute(
        "INSERT OR IGNORE INTO strata_meta (key, value) VALUES ('role', ?1), ('created_at', ?2), \
         ('created_by', ?3)",
        params![role, now(), actor()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(host: String, pid: i64, holder: String) -> Lease {
        Lease {
            holder,
            host,
            pid,
            version: 1,
            acquired_at: now(),
        }
    }

    #[test]
    fn lease_liveness() {
        let me = i64::from(std::process::id());
        // This process, as it names itself: held (it is running the migration).
        assert!(!lease(hostname(), me, lease_holder()).is_stale());
        // This pid, but another process before it (a restarted container): stale.
        assert!(lease(hostname(), me, format!("{}/1@0", hostname())).is_stale());
        // Another host: cannot be known, held.
        assert!(!lease("elsewhere".into(), 1, "elsewhere/1@0".into()).is_stale());
        // A pid that does not exist here: stale.
        assert!(lease(hostname(), i64::from(u32::MAX), "x@1".into()).is_stale());
    }

    #[test]
    fn an_ended_process_not_yet_reaped_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i64::from(child.id());
        let holder = format!(
            "{}/{pid}@{}",
            hostname(),
            super::super::lease::process_start(pid).unwrap()
        );
        assert!(!lease(hostname(), pid, holder.clone()).is_stale());
        child.kill().unwrap();
        // Killed, but not waited for: a zombie until `wait`.
        std::thread::sleep(Duration::from_millis(200));
        assert!(lease(hostname(), pid, holder).is_stale());
        child.wait().unwrap();
    }
}
