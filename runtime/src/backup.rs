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
    pub path: PathBuf,
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
    let dir = policy.dir_for(database);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Backup {
        path: dir.clone(),
        message: format!("cannot create the backup directory: {e}"),
    })?;
    let time = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = format!("{}.{time}.v{}.db", stem(database), version.unwrap_or(0));
    let path = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    if let Err(e) = copy_file(database, &partial) {
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

/// Replaces the content of `database` with the backup `file`, after checking that the file is
/// an intact database of `role` and that no other process is writing to `database`. The
/// current content is first saved as a backup itself.
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
    let mut dst = store::open_rw(database, Duration::ZERO)?;
    // Hold every lock this connection takes until it closes, so nothing can be written
    // between the safety copy and the restore (rollback-journal databases; in WAL mode other
    // readers may go on reading the old content until the copy lands).
    dst.execute_batch("PRAGMA locking_mode = EXCLUSIVE")?;
    // Nobody may be writing: take the write lock without waiting.
    match dst.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {}
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
            return Err(Error::InUse(database.to_path_buf()));
        }
        Err(e) => return Err(store::file_error(database, e)),
    }
    let prepared = (|| -> Result<Option<BackupFile>> {
        let current = store::read_state(&dst, database)?;
        if let Some(lease) = current.lease.filter(|l| !l.is_stale()) {
            return Err(Error::Backup {
                path: database.to_path_buf(),
                message: format!(
                    "{} is running a no_transaction migration on it; wait for it",
                    lease.holder
                ),
            });
        }
        let saved = match current.role {
            Some(_) => Some(take(
                database,
                current.history.last().map(|a| a.version),
                policy,
            )?),
            None => None,
        };
        // A first write makes this connection take, and in exclusive locking mode keep, the
        // exclusive lock at commit.
        if current.role.is_some() {
            store::record_event(&dst, store::event::RESTORED, None, "restore started")?;
        } else {
            dst.execute_batch(
                "CREATE TABLE strata_restore_lock (x); DROP TABLE strata_restore_lock;",
            )?;
        }
        Ok(saved)
    })();
    let saved = match prepared {
        Ok(saved) => saved,
        Err(e) => {
            let _ = dst.execute_batch("ROLLBACK");
            return Err(e);
        }
    };
    dst.execute_batch("COMMIT")?;
    // One step copies every page under one write lock: readers see the old or the new content.
    copy_all(&src, &mut dst, Duration::from_secs(5)).map_err(|e| match e {
        Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
            Error::InUse(database.to_path_buf())
        }
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
