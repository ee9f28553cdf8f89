//! [`SplitError`]: what can go wrong.

use std::path::{Path, PathBuf};

/// What can go wrong. Every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// SQLite failed on the source or on a shard.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file: the source or a shard.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file system operation failed: the source is missing, or the output directory or its
    /// marker file cannot be created, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The source database has no table of that name.
    #[error("{path} has no table `{table}`; its tables are: {tables}")]
    NoTable {
        /// The source database.
        path: PathBuf,
        /// The table asked for.
        table: String,
        /// The source's tables, comma-separated (`none` if it has none).
        tables: String,
    },
    /// The table has no column named as the key.
    #[error("table `{table}` has no column `{column}`; its columns are: {columns}")]
    NoColumn {
        /// The table being split.
        table: String,
        /// The key column asked for.
        column: String,
        /// The table's columns, comma-separated.
        columns: String,
    },
    /// The table (named) is `WITHOUT ROWID`, so it cannot be read in rowid ranges.
    #[error("table `{0}` is WITHOUT ROWID; splitting by rowid ranges needs a rowid table")]
    WithoutRowid(String),
    /// A fresh split's output directory (this one) already holds files.
    #[error(
        "{0} is not empty; split into an empty directory, or pass --resume to continue the \
         split that is there"
    )]
    OutNotEmpty(PathBuf),
    /// `resume` found no split of this table in the output directory (this one).
    #[error("nothing to resume in {0}: no shard of this split is there; start without --resume")]
    NothingToResume(PathBuf),
    /// `resume` found a shard written by a split with other parameters (source, table, key,
    /// shards, routing, readers), or the source table changed since (its row count or largest
    /// rowid).
    #[error(
        "{path} belongs to another split: its {what} is {was}, this one's is {now}; resume \
         with the same parameters, or split into another directory"
    )]
    ResumeMismatch {
        /// The shard that differs.
        path: PathBuf,
        /// The parameter that differs (`key`, `shards`, `source rows`, ...).
        what: &'static str,
        /// Its value in the shard (empty if the shard does not record it).
        was: String,
        /// Its value for this split.
        now: String,
    },
    /// Options that cannot work (a count of zero) or a damaged split (a shard missing); the
    /// message says which.
    #[error("{0}")]
    BadOptions(String),
    /// `stop` was set before every row was in: the shards keep what they committed, and
    /// `resume` continues from there.
    #[error(
        "interrupted; the shards hold every batch committed so far; run the same command with \
         --resume to continue"
    )]
    Interrupted,
    /// A worker thread panicked: its kind (`reader`, `writer` or `index`) and what it
    /// reported.
    #[error("a {0} thread failed: {1}")]
    Thread(&'static str, String),
}

/// The result of a split operation: [`SplitError`] unless said otherwise.
pub type Result<T, E = SplitError> = std::result::Result<T, E>;

pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> SplitError + '_ {
    move |source| SplitError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}
