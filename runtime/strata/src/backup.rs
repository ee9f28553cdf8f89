//! Online backups beside the database (SQLite's backup API), with retention, and restore.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store;

/// Where backups go and how many are kept per database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPolicy {
    /// Directory for the backups; `None` = a `backups` directory beside the database.
    pub dir: Option<PathBuf>,
    /// Backups kept per database; older ones are deleted after a new one is written.
    pub keep: usize,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        BackupPolicy { dir: None, keep: 5 }
    }
}

/// A backup file and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFile {
    /// The backup file, `<database stem>.<UTC time>.v<version>.db` in the backup directory;
    /// after a restore, the file restored from.
    pub path: PathBuf,
    /// The database it is a copy of; after a restore, the database restored.
    pub database: PathBuf,
    /// Newest applied version in the copy.
    pub version: Option<i64>,
}

impl BackupPolicy {
    /// The directory backups of `database` go to.
    pub fn dir_for(&self, database: &Path) -> PathBuf {
        match &self.dir {
            Some(d) => d.clone(),
            None => database.parent().unwrap_or(Path::new(".")).join("backups"),
        }
    }

    /// The backups of `database` there are, oldest first.
    pub fn backups(&self, database: &Path) -> Vec<PathBuf> {
        list(self, database)
    }
}

fn stem(database: &Path) -> String {
    database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into())
}

/// Copies `database` to `<dir>/<stem>.<UTC time>.v<version>.db`, then deletes the oldest
/// backups beyond `keep`. The copy is read through a connection of its own, so the caller may
/// hold the write lock meanwhile (nobody else can change the database during the copy).
pub(crate) fn take(
    database: &Path,
    version: Option<i64>,
    policy: &BackupPolicy,
) -> Result<BackupFile> {
    write_backup(database, version, policy, |to| copy_file(database, to))
}

/// [`take`], reading through `conn`, a connection to `database` (which may hold every lock on
/// it: a restore copies what it is about to replace while nobody else can read or write).
fn take_from(
    conn: &Connection,
    database: &Path,
    version: Option<i64>,
    policy: &BackupPolicy,
) -> Result<BackupFile> {
    write_backup(database, version, policy, |to| {
        let mut dst = Connection::open(to)?;
        copy_all(conn, &mut dst, Duration::from_secs(30))
    })
}

/// Writes a backup of `database` with `copy` (into a `.partial` file, renamed once complete),
/// then applies retention.
fn write_backup(
    database: &Path,
    version: Option<i64>,
    policy: &BackupPolicy,
    copy: impl FnOnce(&Path) -> Result<()>,
) -> Result<BackupFile> {
    let dir = policy.dir_for(database);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Backup {
        path: dir.clone(),
        message: format!("cannot create the backup directory: {e}"),
    })?;
    let time = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = format!("{}.{time}.v{}.db", stem(database), version.unwrap_or(0));
    let path = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    if let Err(e) = copy(&partial) {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Backup {
            path,
            message: e.to_string(),
        });
    }
    std::fs::rename(&partial, &path).map_err(|e| Error::Backup {
        path: path.clone(),
        message: e.to_string(),
    })?;
    prune(&dir, &stem(database), policy.keep);
    Ok(BackupFile {
        path,
        database: database.to_path_buf(),
        version,
    })
}

/// Copies the database at `database` into a new file `to` with the backup API, reading through a
/// connection of its own.
pub(crate) fn copy_file(database: &Path, to: &Path) -> Result<()> {
    let src = Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dst = Connection::open(to)?;
    copy_all(&src, &mut dst, Duration::from_secs(30))
}

/// Copies every page of `src` into `dst` in one step, retrying while either is locked by
/// another connection, for at most `patience`.
fn copy_all(src: &Connection, dst: &mut Connection, patience: Duration) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let backup = Backup::new(src, dst)?;
    let started = std::time::Instant::now();
    loop {
        match backup.step(i32::MAX)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if started.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!(
                        "still locked by another connection after {patience:?}"
                    )),
                )));
            }
        }
    }
}

/// Backups of `database` in `dir`, oldest first.
pub fn list(policy: &BackupPolicy, database: &Path) -> Vec<PathBuf> {
    let dir = policy.dir_for(database);
    let prefix = format!("{}.", stem(database));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with(&prefix)
                            && n.ends_with(".db")
                            && is_backup_suffix(&n[prefix.len()..])
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `20261121T080215.123Z.v20240301090000.db`: what follows `<stem>.` in a backup's name.
fn is_backup_suffix(rest: &str) -> bool {
    let Some((time, version)) = rest.strip_suffix(".db").and_then(|r| r.split_once(".v")) else {
        return false;
    };
    let t = time.as_bytes();
    t.len() == 20
        && t[8] == b'T'
        && t[15] == b'.'
        && t[19] == b'Z'
        && t.iter()
            .enumerate()
            .all(|(i, b)| matches!(i, 8 | 15 | 19) || b.is_ascii_digit())
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
}

fn prune(dir: &Path, stem: &str, keep: usize) {
    let policy = BackupPolicy {
        dir: Some(dir.to_path_buf()),
        keep,
    };
    let files = list(&policy, &dir.join(format!("{stem}.db")));
    if files.len() > keep {
        for old in &files[..files.len() - keep] {
            let _ = std::fs::remove_file(old);
        }
    }
}

/// How long a restore waits for other connections' transactions to end before it refuses.
const RESTORE_PATIENCE: Duration = Duration::from_secs(2);

/// Replaces the content of `database` with the backup `file`, after checking that the file is
/// an intact database of `role` and that no other process uses `database`. The current content
/// is first saved as a backup itself.
///
/// The pages are replaced through SQLite's backup API, in place (never by renaming a file over
/// the database), by a connection in exclusive locking mode that keeps every lock it takes
/// until it is done. In WAL mode every other connection holds a shared lock on the database
/// file for as long as it is open, even idle, so a restore is refused while any other process
/// has the database open (a running server included), naming it when it can be known. With a
/// rollback journal an idle connection holds no lock, and sees the new content at its next
/// transaction.
pub(crate) fn restore(
    database: &Path,
    file: &Path,
    role: &str,
    policy: &BackupPolicy,
) -> Result<BackupFile> {
    let src = store::open_ro(file, Duration::from_secs(5))?.ok_or_else(|| Error::Backup {
        path: file.to_path_buf(),
        message: "no such file".into(),
    })?;
    let check: String = src.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(Error::Corrupt {
            path: file.to_path_buf(),
            message: check,
        });
    }
    let state = store::read_state(&src, file)?;
    match state.role.as_deref() {
        Some(r) if r == role => {}
        Some(r) => {
            return Err(Error::WrongRole {
                path: file.to_path_buf(),
                expected: role.to_string(),
                found: r.to_string(),
            });
        }
        None => {
            return Err(Error::Backup {
                path: file.to_path_buf(),
                message: "it holds no Strata history, so it is no backup of this database".into(),
            });
        }
    }
    let mut dst = store::open_rw(database, RESTORE_PATIENCE)?;
    // Keep every lock this connection takes until it closes: nobody can read or write between
    // the safety copy and the restore.
    dst.execute_batch("PRAGMA locking_mode = EXCLUSIVE")?;
    // The exclusive lock, taken at once or refused; it outlives the transaction (exclusive
    // locking mode), which must end before the backup API reads through this connection.
    match dst.execute_batch("BEGIN EXCLUSIVE; COMMIT") {
        Ok(()) => {}
        Err(e) if is_busy(&e) => {
            drop(dst);
            return Err(in_use(database));
        }
        Err(e) => return Err(store::file_error(database, e)),
    }
    let current = store::read_state(&dst, database)?;
    if let Some(lease) = current.lease.filter(|l| !l.is_stale()) {
        return Err(Error::InUse {
            path: database.to_path_buf(),
            holder: Some(format!(
                "{} is running a no_transaction migration on it",
                lease.holder
            )),
        });
    }
    // The safety copy is read through this very connection: no other may read now.
    let saved = match current.role {
        Some(_) => Some(take_from(
            &dst,
            database,
            current.history.last().map(|a| a.version),
            policy,
        )?),
        None => None,
    };
    // One step copies every page under that lock.
    copy_all(&src, &mut dst, Duration::from_secs(5)).map_err(|e| match e {
        Error::Sqlite(e) if is_busy(&e) => Error::InUse {
            path: database.to_path_buf(),
            holder: None,
        },
        e => Error::Backup {
            path: file.to_path_buf(),
            message: e.to_string(),
        },
    })?;
    let detail = format!(
        "restored from {}{}",
        file.display(),
        saved
            .as_ref()
            .map(|s| format!("; the replaced content is in {}", s.path.display()))
            .unwrap_or_default()
    );
    store::record_event(&dst, store::event::RESTORED, None, &detail)?;
    let version = store::read_history(&dst)?.last().map(|a| a.version);
    Ok(BackupFile {
        path: file.to_path_buf(),
        database: database.to_path_buf(),
        version,
    })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// [`Error::InUse`] for `database`, naming who uses it when that can be known: the processes
/// that have it open, and the holder of a Strata lease.
fn in_use(database: &Path) -> Error {
    let mut who = holders(database);
    let lease = store::open_ro(database, Duration::from_millis(200))
        .ok()
        .flatten()
        .and_then(|conn| store::read_state(&conn, database).ok())
        .and_then(|state| state.lease)
        .filter(|l| !l.is_stale());
    if let Some(lease) = lease {
        who.push(format!(
            "{} is running a no_transaction migration on it",
            lease.holder
        ));
    }
    Error::InUse {
        path: database.to_path_buf(),
        holder: (!who.is_empty()).then(|| who.join("; ")),
    }
}

/// Other processes that have `database` (or its `-wal` or `-shm` file) open, as `pid N: command
/// line`, found in `/proc` (Linux; elsewhere, or for other users' processes, nothing).
fn holders(database: &Path) -> Vec<String> {
    let Ok(path) = database.canonicalize() else {
        return Vec::new();
    };
    let mut files = vec![path.clone()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in procs.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| files.contains(&target)));
        if holds {
            let command = std::fs::read(entry.path().join("cmdline"))
                .map(|raw| {
                    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
                    let text = text.trim();
                    match text.char_indices().nth(120) {
                        Some((i, _)) => format!("{}…", &text[..i]),
                        None => text.to_string(),
                    }
                })
                .unwrap_or_default();
            found.push(format!("pid {pid}: {command}"));
            if found.len() == 5 {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_of_one_database_only() {
        let dir = std::env::temp_dir().join(format!("strata-backup-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "data.20261121T080215.123Z.v3.db",
            "data.old.20261121T080215.123Z.v3.db",
            "data.20261121T080215.123Z.v3.db.partial",
            "data.notes.db",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let policy = BackupPolicy {
            dir: Some(dir.clone()),
            keep: 1,
        };
        let found = list(&policy, &dir.join("data.db"));
        assert_eq!(found, [dir.join("data.20261121T080215.123Z.v3.db")]);
        let old = list(&policy, &dir.join("data.old.db"));
        assert_eq!(old, [dir.join("data.old.20261121T080215.123Z.v3.db")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
