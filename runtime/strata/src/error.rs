//! Strata's error type.

use std::path::PathBuf;
use std::time::Duration;

/// `Result` with Strata's [`Error`]; the return type of every migration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A migration registered in the binary, named in errors as `20240226153000 create_notes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationId {
    pub version: i64,
    pub name: String,
}

impl std::fmt::Display for MigrationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`", self.version, self.name)
    }
}

/// A table a revert would drop, and the rows it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DroppedTable {
    pub table: String,
    pub rows: i64,
}

/// Everything that can go wrong while opening, checking or migrating a database.
///
/// Messages name what is wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SQLite call failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// An error raised by migration code itself (see [`Error::msg`] and [`Error::other`]).
    #[error("{0}")]
    Custom(Box<dyn std::error::Error + Send + Sync + 'static>),

    #[error(
        "no migrations are registered{}: the crate defining them was not linked into this \
         binary. Put `strata::migrations!()` in that crate's lib.rs and pass its `MIGRATIONS` to \
         the migrator, which makes the binary depend on it",
        if .set.is_empty() { String::new() } else { format!(" under `{}`", .set) }
    )]
    EmptyRegistry { set: String },

    #[error("no migrations for role `{role}` in `{set}` (roles present: {known})")]
    UnknownRole {
        role: String,
        set: String,
        known: String,
    },

    #[error(
        "migration version {version} is used twice: by `{first}` and by `{second}`; give one of \
         them a new timestamp"
    )]
    DuplicateVersion {
        version: i64,
        first: String,
        second: String,
    },

    #[error("directory {} does not exist; create it first", .0.display())]
    MissingDirectory(PathBuf),

    #[error(
        "{} is not an SQLite database (its header is not `SQLite format 3`); point Strata at a \
         database file or at a path where it may create one",
        .0.display()
    )]
    NotADatabase(PathBuf),

    #[error("{} is corrupt: {message}; restore it from a backup", .path.display())]
    Corrupt { path: PathBuf, message: String },

    #[error(
        "{} cannot be written (read-only file, directory or file system); fix its permissions",
        .0.display()
    )]
    ReadOnly(PathBuf),

    #[error(
        "{} holds tables ({tables}) but no Strata history: it was not created by Strata. Move it \
         away, or adopt it: `strata introspect` prints a baseline migration for it",
        .path.display()
    )]
    ForeignDatabase { path: PathBuf, tables: String },

    #[error(
        "{} is a `{found}` database, not a `{expected}` one; check the path",
        .path.display()
    )]
    WrongRole {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error(
        "migration {id} was changed after it was applied to {}: applied checksum {applied}, \
         checksum in this binary {compiled}. Restore the migration as it was and put the change \
         in a new migration",
        .path.display()
    )]
    ChecksumMismatch {
        path: PathBuf,
        id: MigrationId,
        applied: String,
        compiled: String,
    },

    #[error(
        "{} has migrations applied that this binary does not know: {}. It was migrated by a newer \
         build; deploy that build, or start with unknown migrations allowed \
         (`allow_unknown`) if this rollback is intended",
        .path.display(),
        list(.unknown)
    )]
    UnknownApplied {
        path: PathBuf,
        unknown: Vec<MigrationId>,
    },

    #[error(
        "migration {id} is older than {newest}, which {} already has applied (merged from a \
         parallel branch?). Give it a newer timestamp, or allow out-of-order migrations \
         (`allow_out_of_order`) after checking it does not depend on order",
        .path.display()
    )]
    OutOfOrder {
        path: PathBuf,
        id: MigrationId,
        newest: MigrationId,
    },

    #[error("migration {id} failed and was rolled back: {source}")]
    MigrationFailed {
        id: MigrationId,
        #[source]
        source: Box<Error>,
    },

    #[error(
        "migration {id} would leave foreign key violations, so it was rolled back: {violations}"
    )]
    ForeignKeyViolation { id: MigrationId, violations: String },

    #[error(
        "gave up after {:.1}s waiting for the migration lock on {}{}; raise the lock timeout or \
         check that process",
        .waited.as_secs_f64(),
        .path.display(),
        .holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default()
    )]
    LockTimeout {
        path: PathBuf,
        waited: Duration,
        holder: Option<String>,
    },

    #[error("invalid migration usage: {0}")]
    Usage(String),

    #[error(
        "{} has migrations waiting for approval (checked mode): {}. Review them with `migrate \
         plan`, then approve with `migrate approve`",
        .path.display(),
        list(.pending)
    )]
    ApprovalRequired {
        path: PathBuf,
        pending: Vec<MigrationId>,
    },

    #[error(
        "cannot revert {} to {target}: migration {id} has no `down`; add one (`#[migration(.., \
         down = f)]`) or restore a backup instead",
        .path.display()
    )]
    NoDown {
        path: PathBuf,
        target: i64,
        id: MigrationId,
    },

    #[error("{} does not match its migrations: {}", .path.display(), .problems.join("; "))]
    Verify {
        path: PathBuf,
        problems: Vec<String>,
    },

    #[error(
        "nothing to repair in {}: migration {version} is {state}; `repair` only accepts the new \
         checksum of an applied migration whose code changed",
        .path.display()
    )]
    NothingToRepair {
        path: PathBuf,
        version: i64,
        state: String,
    },

    #[error("backup {}: {message}", .path.display())]
    Backup { path: PathBuf, message: String },

    #[error(
        "{} cannot be adopted by baseline {id}: its schema differs from the one the baseline \
         declares: {}. Make the declaration match the database (`strata introspect` prints it)",
        .path.display(),
        .differences.join("; ")
    )]
    BaselineMismatch {
        path: PathBuf,
        id: MigrationId,
        differences: Vec<String>,
    },

    #[error(
        "{} is in use by another process{}: stop the processes using it first (a restore \
         replaces the content in place and needs the database to itself)",
        .path.display(),
        .holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    InUse {
        path: PathBuf,
        /// Who holds it, when that can be known (process ids and command lines, or the
        /// holder of a Strata lease).
        holder: Option<String>,
    },

    #[error(
        "cannot revert {} to {target}: no migration has that version{}; give the version of a \
         migration to keep (`migrate history` lists them), or 0 to revert everything",
        .path.display(),
        if .nearby.is_empty() {
            " and nothing is applied".to_string()
        } else {
            format!(" (applied versions nearby: {})", .nearby.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
        }
    )]
    UnknownTarget {
        path: PathBuf,
        target: i64,
        /// Applied versions just below and above the target.
        nearby: Vec<i64>,
    },

    #[error(
        "reverting {} to {target} would drop {}; a backup is taken first, but confirm that \
         these rows may go (`--yes`, `Options::allow_data_loss`) or move them elsewhere first",
        .path.display(),
        .tables.iter().map(|t| format!("table `{}` holding {} row(s)", t.table, t.rows)).collect::<Vec<_>>().join(", ")
    )]
    DataLoss {
        path: PathBuf,
        target: i64,
        /// Tables that would disappear, with their row counts.
        tables: Vec<DroppedTable>,
    },
}

fn list(ids: &[MigrationId]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// A short, stable name for the kind of error, for scripts (`{"kind": ..}` in `--json`
    /// output): `in_use`, `corrupt`, `lock_timeout`, `unknown_target`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Sqlite(e) => match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseCorrupt) => "corrupt",
                Some(rusqlite::ErrorCode::NotADatabase) => "not_a_database",
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "busy"
                }
                _ => "sqlite",
            },
            Error::Custom(_) => "custom",
            Error::EmptyRegistry { .. } => "empty_registry",
            Error::UnknownRole { .. } => "unknown_role",
            Error::DuplicateVersion { .. } => "duplicate_version",
            Error::MissingDirectory(_) => "missing_directory",
            Error::NotADatabase(_) => "not_a_database",
            Error::Corrupt { .. } => "corrupt",
            Error::ReadOnly(_) => "read_only",
            Error::ForeignDatabase { .. } => "foreign_database",
            Error::WrongRole { .. } => "wrong_role",
            Error::ChecksumMismatch { .. } => "checksum_mismatch",
            Error::UnknownApplied { .. } => "unknown_applied",
            Error::OutOfOrder { .. } => "out_of_order",
            Error::MigrationFailed { .. } => "migration_failed",
            Error::ForeignKeyViolation { .. } => "foreign_key_violation",
            Error::LockTimeout { .. } => "lock_timeout",
            Error::Usage(_) => "usage",
            Error::ApprovalRequired { .. } => "approval_required",
            Error::NoDown { .. } => "no_down",
            Error::Verify { .. } => "verify",
            Error::NothingToRepair { .. } => "nothing_to_repair",
            Error::Backup { .. } => "backup",
            Error::BaselineMismatch { .. } => "baseline_mismatch",
            Error::InUse { .. } => "in_use",
            Error::UnknownTarget { .. } => "unknown_target",
            Error::DataLoss { .. } => "data_loss",
        }
    }

    /// An error with a message, for migration code: `return Err(strata::Error::msg("..."))`.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Custom(message.into().into())
    }

    /// Wraps any error raised by migration code.
    pub fn other(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Custom(Box::new(error))
    }
}
