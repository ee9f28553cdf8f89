//! [`SplitError`]: what can go wrong.

use std::path::{Path, PathBuf};

/// What can go wrong. Every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has no table `{table}`; its tables are: {tables}")]
    NoTable {
        path: PathBuf,
        table: String,
        tables: String,
    },
    #[error("table `{table}` has no column `{column}`; its columns are: {columns}")]
    NoColumn {
        table: String,
        column: String,
        columns: String,
    },
    #[error("table `{0}` is WITHOUT ROWID; splitting by rowid ranges needs a rowid table")]
    WithoutRowid(String),
    #[error(
        "{0} is not empty; split into an empty directory, or pass --resume to continue the \
         split that is there"
    )]
    OutNotEmpty(PathBuf),
    #[error("nothing to resume in {0}: no shard of this split is there; start without --resume")]
    NothingToResume(PathBuf),
    #[error(
        "{path} belongs to another split: its {what} is {was}, this one's is {now}; resume \
         with the same parameters, or split into another directory"
    )]
    ResumeMismatch {
        path: PathBuf,
        what: &'static str,
        was: String,
        now: String,
    },
    #[error("{0}")]
    BadOptions(String),
    #[error(
        "interrupted; the shards hold every batch committed so far; run the same command with \
         --resume to continue"
    )]
    Interrupted,
    #[error("a {0} thread failed: {1}")]
    Thread(&'static str, String),
}

pub type Result<T, E = SplitError> = std::result::Result<T, E>;

pub(crate) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> SplitError + '_ {
    move |source| SplitError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}
