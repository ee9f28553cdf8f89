//! Helpers: temporary databases and reading them back with plain rusqlite.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// A fresh temporary directory and a database path inside it.
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    (dir, path)
}

pub fn open(path: &Path) -> Connection {
    Connection::open(path).expect("open database")
}

/// Versions recorded in the history, in order.
pub fn history(path: &Path) -> Vec<i64> {
    let conn = open(path);
    let mut stmt = conn
        .prepare("SELECT version FROM strata_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `(kind, version)` of every audit event, oldest first.
pub fn events(path: &Path) -> Vec<(String, Option<i64>)> {
    let conn = open(path);
    let mut stmt = conn
        .prepare("SELECT kind, version FROM strata_events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Whether table `name` exists.
pub fn has_table(path: &Path, name: &str) -> bool {
    open(path)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

pub fn count(path: &Path, table: &str) -> i64 {
    open(path)
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// A small deterministic-per-run random source (no extra dependency needed for test jitter).
pub struct Rng(u64);

impl Rng {
    pub fn from_time() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("rng seed {seed}");
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
