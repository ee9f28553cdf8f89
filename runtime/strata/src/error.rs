//! Strata's error type.

use std::path::PathBuf;
use std::time::Duration;

/// `Result` with Strata's [`Error`]; the return type of every migration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A migration registered in the binary, named in errors as `20240226153000 create_notes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationId {
    /// The version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
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
    /// The table's name.
    pub table: String,
    /// How many rows it holds now; always more than 0 (empty tables are not reported).
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

    /// The source holds no migration: the crate defining them was not linked into the binary.
    #[error(
        "no migrations are registered{}: the crate defining them was not linked into this \
         binary. Put `strata::migrations!()` in that crate's lib.rs and pass its `MIGRATIONS` to \
         the migrator, which makes the binary depend on it",
        if .set.is_empty() { String::new() } else { format!(" under `{}`", .set) }
    )]
    EmptyRegistry {
        /// The module path the source collects migrations under ([`Source::prefix`]).
        ///
        /// [`Source::prefix`]: crate::Source::prefix
        set: String,
    },

    /// No migration of the source targets the role asked for.
    #[error("no migrations for role `{role}` in `{set}` (roles present: {known})")]
    UnknownRole {
        /// The role asked for.
        role: String,
        /// The module path the source collects migrations under.
        set: String,
        /// The roles the source's migrations do target, sorted and comma-separated.
        known: String,
    },

    /// Two migrations of the same role share a version (within one crate, `#[migration]`
    /// already refuses that at compile time). Migrations of different roles may.
    #[error(
        "migration version {version} is used twice: by `{first}` and by `{second}`; give one of \
         them a new timestamp"
    )]
    DuplicateVersion {
        /// The version both use.
        version: i64,
        /// One of the two, as `module::path::function`.
        first: String,
        /// The other, as `module::path::function`.
        second: String,
    },

    /// A directory Strata was pointed at does not exist: the parent directory of a database
    /// to create, or a migrations directory ([`authoring`](crate::authoring)).
    #[error("directory {} does not exist; create it first", .0.display())]
    MissingDirectory(PathBuf),

    /// The file exists but is no SQLite database: its header is not `SQLite format 3`.
    #[error(
        "{} is not an SQLite database (its header is not `SQLite format 3`); point Strata at a \
         database file or at a path where it may create one",
        .0.display()
    )]
    NotADatabase(PathBuf),

    /// The database is damaged (SQLite reports `SQLITE_CORRUPT`, or `PRAGMA quick_check` finds
    /// damage), or the path cannot be opened as a database file at all (a directory, say).
    #[error("{} is corrupt: {message}; restore it from a backup", .path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system reported, such as `quick_check`'s findings.
        message: String,
    },

    /// The database cannot be written: read-only file, directory or file system.
    #[error(
        "{} cannot be written (read-only file, directory or file system); fix its permissions",
        .0.display()
    )]
    ReadOnly(PathBuf),

    /// The database holds tables but no Strata history: something else created it. A
    /// `baseline` migration adopts such a database.
    #[error(
        "{} holds tables ({tables}) but no Strata history: it was not created by Strata. Move it \
         away, or adopt it: `strata introspect` prints a baseline migration for it",
        .path.display()
    )]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// Its tables (SQLite's own `sqlite_*` tables excluded), comma-separated.
        tables: String,
    },

    /// An imported migration's SQL is not what its peer tool applied: the checksum the peer
    /// recorded (sqlx, refinery) differs from that of the file. Nothing was recorded.
    #[error(
        "{}: {tool} recorded version {} as applied with checksum {}, but {} (migration {id}) \
         hashes to {}: the SQL changed after {tool} applied it, so Strata cannot tell what the \
         database holds. Nothing was recorded. Restore the file as {tool} applied it (its \
         version control history has it)",
        .path.display(),
        .mismatch.peer_version,
        .mismatch.recorded,
        .mismatch.file,
        .mismatch.computed
    )]
    PeerChecksumMismatch {
        /// The database file.
        path: PathBuf,
        /// The imported migration.
        id: MigrationId,
        /// The peer tool: `sqlx` or `refinery`.
        tool: &'static str,
        /// The file, the peer's version and both checksums.
        mismatch: Box<crate::import::PeerMismatch>,
    },

    /// The peer tool's history records an imported migration as failed (sqlx's `success =
    /// false`): the database may hold part of it. Nothing was recorded.
    #[error(
        "{}: {tool} recorded version {peer_version} (migration {id}) as failed, so the database may \
         hold part of it and Strata will neither adopt it nor run it again. Finish or undo its SQL \
         by hand, delete that row from {table}, and run again",
        .path.display()
    )]
    PeerFailed {
        /// The database file.
        path: PathBuf,
        /// The imported migration.
        id: MigrationId,
        /// The peer tool.
        tool: &'static str,
        /// The version as the peer records it.
        peer_version: String,
        /// The peer's history table.
        table: &'static str,
    },

    /// The peer tool's history records versions that no migration of the binary was imported
    /// from: the database is ahead of the imported folder.
    #[error(
        "{}: {table} records {tool} version(s) {} as applied, but no migration of this binary was \
         imported from them: the database is ahead of the folder `strata import` read. Import \
         the folder that made this database (`strata import --from {tool} DIR --database DB` \
         lists what it adopts), or allow unknown migrations",
        .path.display(),
        .versions.join(", ")
    )]
    PeerUnknown {
        /// The database file.
        path: PathBuf,
        /// The peer tool.
        tool: &'static str,
        /// The peer's history table.
        table: &'static str,
        /// The versions, as the peer records them.
        versions: Vec<String>,
    },

    /// The database was initialized for another role than the one asked for.
    #[error(
        "{} is a `{found}` database, not a `{expected}` one; check the path",
        .path.display()
    )]
    WrongRole {
        /// The database file.
        path: PathBuf,
        /// The role of the migrator, or of the restore.
        expected: String,
        /// The role recorded in the database.
        found: String,
    },

    /// An applied migration's code changed: the checksum recorded when it was applied differs
    /// from the one compiled into this binary.
    #[error(
        "migration {id} was changed after it was applied to {}: applied checksum {applied}, \
         checksum in this binary {compiled}. Restore the migration as it was and put the change \
         in a new migration",
        .path.display()
    )]
    ChecksumMismatch {
        /// The database file.
        path: PathBuf,
        /// The changed migration.
        id: MigrationId,
        /// The checksum recorded in the history, lowercase hex.
        applied: String,
        /// The checksum of the migration in this binary, lowercase hex.
        compiled: String,
    },

    /// The database has applied migrations that this binary does not know (a newer build
    /// migrated it), and `allow_unknown` is off or a revert would have to undo one of them.
    #[error(
        "{} has migrations applied that this binary does not know: {}. It was migrated by a newer \
         build; deploy that build, or start with unknown migrations allowed \
         (`allow_unknown`) if this rollback is intended",
        .path.display(),
        list(.unknown)
    )]
    UnknownApplied {
        /// The database file.
        path: PathBuf,
        /// The unknown migrations, as the history records them.
        unknown: Vec<MigrationId>,
    },

    /// An approval named a review other than the current one: the pending migrations, their
    /// code or their rehearsal changed since the approver read it.
    #[error(
        "the pending migrations of {} changed since the review you read (review {seen}, now \
         {now}): read the review again, then approve",
        .path.display()
    )]
    ReviewChanged {
        /// The database file.
        path: PathBuf,
        /// The digest of the review the approver read.
        seen: String,
        /// The digest of the current review.
        now: String,
    },

    /// A newer binary applied a contract migration (or one recorded without a class) that this
    /// binary does not know: its code may not work on that schema.
    #[error(
        "{} has contract migration {contract} applied, which this binary does not know (it knows \
         up to {}): a newer build removed or tightened what this one may rely on. Deploy the newer \
         build; to run this one anyway, restore a backup from before the contract or start with \
         unknown migrations allowed (`allow_unknown`) knowing it may fail",
        .path.display(),
        .knows_up_to.map_or_else(|| "nothing".to_string(), |v| v.to_string())
    )]
    NewerContract {
        /// The database file.
        path: PathBuf,
        /// The oldest such migration, as the history records it.
        contract: MigrationId,
        /// The newest migration of the role this binary knows.
        knows_up_to: Option<i64>,
    },

    /// A pending migration is older than the newest applied one, and `allow_out_of_order` is
    /// off.
    #[error(
        "migration {id} is older than {newest}, which {} already has applied (merged from a \
         parallel branch?). Give it a newer timestamp, or allow out-of-order migrations \
         (`allow_out_of_order`) after checking it does not depend on order",
        .path.display()
    )]
    OutOfOrder {
        /// The database file.
        path: PathBuf,
        /// The first pending migration older than `newest`.
        id: MigrationId,
        /// The newest migration applied to the database.
        newest: MigrationId,
    },

    /// A migration's up or down function failed; its transaction was rolled back (a
    /// `no_transaction` migration keeps what it did before failing).
    #[error("migration {id} failed and was rolled back: {source}")]
    MigrationFailed {
        /// The migration that failed.
        id: MigrationId,
        /// The error it returned, or that recording it raised.
        #[source]
        source: Box<Error>,
    },

    /// A `foreign_keys = off` migration left rows referencing missing rows that were not
    /// there before it ran; it was rolled back.
    #[error(
        "migration {id} would leave foreign key violations, so it was rolled back: {violations}"
    )]
    ForeignKeyViolation {
        /// The migration.
        id: MigrationId,
        /// The first five new violations (`table` rowid, the table it references missing),
        /// `; `-separated, then how many more.
        violations: String,
    },

    /// Another process kept the database locked (or held the migration lease) for the whole
    /// lock timeout.
    #[error(
        "gave up after {:.1}s waiting for the migration lock on {}{}; raise the lock timeout or \
         check that process",
        .waited.as_secs_f64(),
        .path.display(),
        .holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default()
    )]
    LockTimeout {
        /// The database file.
        path: PathBuf,
        /// How long this process waited: the configured lock timeout.
        waited: Duration,
        /// The holder of the migration lease (`host/pid@start`), when a lease was what kept
        /// it waiting; `None` for SQLite's own lock, whose holder is unknown.
        holder: Option<String>,
    },

    /// Strata was used wrongly: an invalid option value or argument, a migration that ended
    /// its own transaction, a file that cannot be read or written while authoring. The text
    /// says which.
    #[error("invalid migration usage: {0}")]
    Usage(String),

    /// Checked mode ([`Mode`](crate::Mode)) and pending migrations were not approved yet.
    #[error(
        "{} has migrations waiting for approval (checked mode): {}. Review them with `migrate \
         plan`, then approve with `migrate approve`",
        .path.display(),
        list(.pending)
    )]
    ApprovalRequired {
        /// The database file.
        path: PathBuf,
        /// The pending migrations not approved yet, oldest first.
        pending: Vec<MigrationId>,
    },

    /// A revert would have to undo a migration that has no `down` function.
    #[error(
        "cannot revert {} to {target}: migration {id} has no `down`; add one (`#[migration(.., \
         down = f)]`) or restore a backup instead",
        .path.display()
    )]
    NoDown {
        /// The database file.
        path: PathBuf,
        /// The version the revert was to stop at (0: revert everything).
        target: i64,
        /// The migration without `down`.
        id: MigrationId,
    },

    /// Verification found the database different from what its migrations declare.
    #[error("{} does not match its migrations: {}", .path.display(), .problems.join("; "))]
    Verify {
        /// The database file.
        path: PathBuf,
        /// Each problem found, one sentence each ([`Verification`](crate::Verification)).
        problems: Vec<String>,
    },

    /// `repair` was asked for a migration whose applied checksum did not change.
    #[error(
        "nothing to repair in {}: migration {version} is {state}; `repair` only accepts the new \
         checksum of an applied migration whose code changed",
        .path.display()
    )]
    NothingToRepair {
        /// The database file.
        path: PathBuf,
        /// The version given to `repair`.
        version: i64,
        /// Why there is nothing to repair: `not applied`, `unchanged`,
        /// `unknown to this binary` or `neither applied nor in this binary`.
        state: String,
    },

    /// Taking or restoring a backup failed.
    #[error("backup {}: {message}", .path.display())]
    Backup {
        /// The backup file or directory concerned (for "the database does not exist yet",
        /// the database).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A `baseline` migration cannot adopt the database: its schema differs from the declared
    /// one.
    #[error(
        "{} cannot be adopted by baseline {id}: its schema differs from the one the baseline \
         declares: {}. Make the declaration match the database (`strata introspect` prints it)",
        .path.display(),
        .differences.join("; ")
    )]
    BaselineMismatch {
        /// The database file.
        path: PathBuf,
        /// The baseline migration.
        id: MigrationId,
        /// Each difference between the database and the declaration ([`Difference`]s as text).
        ///
        /// [`Difference`]: crate::Difference
        differences: Vec<String>,
    },

    /// The last migration adopted from a peer tool's history declares a schema the database
    /// does not have: the peer's files were edited after it applied them, or the database was
    /// changed by hand. Nothing was recorded.
    #[error(
        "{} cannot adopt {id} from the peer tool's history: the database's schema differs from          the one {id} declares (were the peer's files edited after it applied them?): {}",
        path.display(),
        .differences.join("; ")
    )]
    AdoptionMismatch {
        /// The database file.
        path: PathBuf,
        /// The last adopted migration.
        id: MigrationId,
        /// Each difference between the database and the declaration.
        differences: Vec<String>,
    },

    /// A restore needs the database to itself, and another process uses it.
    #[error(
        "{} is in use by another process{}: stop the processes using it first (a restore \
         replaces the content in place and needs the database to itself)",
        .path.display(),
        .holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    InUse {
        /// The database file.
        path: PathBuf,
        /// Who holds it, when that can be known (process ids and command lines, or the
        /// holder of a Strata lease).
        holder: Option<String>,
    },

    /// A revert target is neither 0, nor applied to the database, nor the version of a
    /// migration in the binary (a typo, most likely).
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
        /// The database file.
        path: PathBuf,
        /// The version given.
        target: i64,
        /// Applied versions just below and above the target.
        nearby: Vec<i64>,
    },

    /// A revert would drop tables that hold rows, and data loss was not allowed.
    #[error(
        "reverting {} to {target} would drop {}; a backup is taken first, but confirm that \
         these rows may go (`--yes`, `Options::allow_data_loss`) or move them elsewhere first",
        .path.display(),
        .tables.iter().map(|t| format!("table `{}` holding {} row(s)", t.table, t.rows)).collect::<Vec<_>>().join(", ")
    )]
    DataLoss {
        /// The database file.
        path: PathBuf,
        /// The version the revert was to stop at (0: revert everything).
        target: i64,
        /// Tables that would disappear, with their row counts.
        tables: Vec<DroppedTable>,
    },
}

fn list(ids: &[MigrationId]) -> String {
    ids.iter()
        .map(ToString::to_string)
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
            Error::PeerChecksumMismatch { .. } => "peer_checksum_mismatch",
            Error::PeerFailed { .. } => "peer_failed",
            Error::PeerUnknown { .. } => "peer_unknown",
            Error::WrongRole { .. } => "wrong_role",
            Error::ChecksumMismatch { .. } => "checksum_mismatch",
            Error::UnknownApplied { .. } => "unknown_applied",
            Error::NewerContract { .. } => "newer_contract",
            Error::ReviewChanged { .. } => "review_changed",
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
            Error::AdoptionMismatch { .. } => "adoption_mismatch",
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
