//! What the [`Migrator`](crate::Migrator) reports: runs, status, plans, repairs, history,
//! verifications and rehearsals.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::class::{Class, SchemaChange};
use crate::error::{DroppedTable, Error, MigrationId, Result};
use crate::inspect::Difference;
use crate::store::{AppliedMigration, Event};

/// One migration applied or reverted by a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Applied {
    /// The migration's version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// How long its code ran, in milliseconds; 0 for a baseline adopting an existing database.
    pub duration_ms: f64,
    /// Rows inserted, updated or deleted by the migration's code.
    pub rows_changed: u64,
}

/// What a run did to one database.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The database file.
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// Migrations this run applied, in order.
    pub applied: Vec<Applied>,
    /// Migrations this run reverted, newest first.
    pub reverted: Vec<Applied>,
    /// The newest applied version once the run finished.
    pub version: Option<i64>,
    /// Whether this run created Strata's tables (a new database).
    pub created: bool,
    /// The backup written before the run changed anything.
    pub backup: Option<PathBuf>,
    /// Whether the run stopped early because another database of its fleet failed.
    pub stopped: bool,
    /// Pending migrations put off: a contract that live instances of older binaries lack,
    /// and everything after it. This process's [`Presence`](crate::instances::Presence)
    /// applies them once those instances are gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Deferred>,
}

/// A pending migration a run put off until older instances are gone.
#[derive(Debug, Clone, Serialize)]
pub struct Deferred {
    /// The migration's version.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// Its class (the first deferred one is a contract; later ones wait for it).
    pub class: Class,
    /// For the contract that waits: the live instances lacking it.
    pub blocked_by: Vec<String>,
}

impl Report {
    /// A report of a run that did nothing (yet).
    pub(crate) fn empty(path: &Path, role: &str) -> Report {
        Report {
            path: path.to_path_buf(),
            role: role.to_string(),
            applied: Vec::new(),
            reverted: Vec::new(),
            version: None,
            created: false,
            backup: None,
            stopped: false,
            deferred: Vec::new(),
        }
    }
}

/// Where one migration stands in one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Applied, with the code it has in this binary.
    Applied,
    /// Not applied yet, and newer than every applied migration.
    Pending,
    /// Applied, but its code changed since.
    Changed,
    /// Applied, but not in this binary.
    Unknown,
    /// Pending, yet older than the newest applied migration.
    OutOfOrder,
}

impl MigrationState {
    /// Lowercase label, as in JSON.
    pub fn label(self) -> &'static str {
        match self {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Changed => "changed",
            MigrationState::Unknown => "unknown",
            MigrationState::OutOfOrder => "out_of_order",
        }
    }
}

/// One line of [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    /// The migration's version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// Its doc comment; empty for unknown migrations.
    pub description: String,
    /// Where it stands in this database.
    pub state: MigrationState,
    /// Expand or contract: as the binary classifies it, or as the history recorded it for
    /// unknown migrations (`None`: recorded before Strata recorded classes).
    pub class: Option<Class>,
    /// Pending, and waiting for live instances of older binaries to end (a contract, or a
    /// migration after one): who they are, on the contract's line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_for: Option<Vec<String>>,
    /// Checksum compiled into the binary (absent for unknown migrations).
    pub checksum: Option<String>,
    /// Checksum recorded when applied.
    pub applied_checksum: Option<String>,
    /// When it was applied (UTC, RFC 3339); `None` unless applied.
    pub applied_at: Option<String>,
    /// How long applying it took, in milliseconds; `None` unless applied.
    pub duration_ms: Option<f64>,
    /// Who applied it (`host/pid`); `None` unless applied.
    pub applied_by: Option<String>,
    /// For pending migrations: whether an operator approved them (checked mode).
    pub approved: bool,
    /// Whether it has a `down` function, so that a revert can undo it (false for unknown
    /// migrations).
    pub has_down: bool,
}

/// The state of one database compared with the binary. Reading it changes nothing.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The database file.
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// Whether the database exists and was initialised by Strata.
    pub initialized: bool,
    /// Newest applied version.
    pub version: Option<i64>,
    /// Every migration of the role in the binary, and every applied one it does not know,
    /// in version order.
    pub migrations: Vec<MigrationStatus>,
}

impl Status {
    /// Migrations waiting to be applied.
    pub fn pending(&self) -> usize {
        self.count(&[MigrationState::Pending, MigrationState::OutOfOrder])
    }

    /// Migrations that stop a run: changed, unknown or out of order.
    pub fn problems(&self) -> usize {
        self.count(&[
            MigrationState::Changed,
            MigrationState::Unknown,
            MigrationState::OutOfOrder,
        ])
    }

    /// Newest version the binary knows for this role.
    pub fn latest_known(&self) -> Option<i64> {
        self.migrations
            .iter()
            .filter(|m| m.state != MigrationState::Unknown)
            .map(|m| m.version)
            .max()
    }

    fn count(&self, states: &[MigrationState]) -> usize {
        self.migrations
            .iter()
            .filter(|m| states.contains(&m.state))
            .count()
    }
}

/// One migration a run would execute.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedMigration {
    /// The migration's version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// Its doc comment.
    pub description: String,
    /// Whether it runs inside a transaction (false for `no_transaction`).
    pub transactional: bool,
    /// Whether it runs with foreign key enforcement off (`foreign_keys = off`).
    pub foreign_keys_off: bool,
    /// Whether an operator approved it (checked mode); always true in a revert's plan,
    /// which needs no approval.
    pub approved: bool,
    /// Expand or contract (see [`crate::class`]).
    pub class: Class,
    /// What it removes or tightens, when it is a contract by its schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contract_changes: Vec<String>,
    /// Every change of its declared schema against the previous migration's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<SchemaChange>,
    /// Whether the run would put it off (a contract that live instances of older binaries
    /// lack, or a migration after one); for the contract, `blocked_by` names them.
    pub deferred: bool,
    /// The live instances whose binaries lack this contract.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
}

/// What `run` (or `down_to`) would do to one database; computing it changes nothing.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The database file.
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// `up` or `down`.
    pub direction: &'static str,
    /// In the order they would run.
    pub migrations: Vec<PlannedMigration>,
    /// Directory the backup would be written to, if one would be taken.
    pub backup_dir: Option<PathBuf>,
    /// Why the run would be refused, if it would.
    pub refused: Option<String>,
    /// For a revert: the tables it would drop that hold rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drops: Vec<DroppedTable>,
}

/// A changed checksum accepted by an operator.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// The database file.
    pub path: PathBuf,
    /// The repaired migration's version.
    pub version: i64,
    /// The repaired migration's function name.
    pub name: String,
    /// The checksum the history held before, lowercase hex.
    pub old_checksum: String,
    /// The checksum of the migration in this binary, now in the history, lowercase hex.
    pub new_checksum: String,
}

/// The history and audit log of one database.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The database file.
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// The history table: applied migrations in version order.
    pub applied: Vec<AppliedMigration>,
    /// The audit log, oldest first; empty for a database Strata has not initialized.
    pub events: Vec<Event>,
}

/// The result of [`Migrator::verify`](crate::Migrator::verify).
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The database file.
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// Migrations of the binary not applied yet, in version order.
    pub pending: Vec<MigrationId>,
    /// Changed, unknown and out-of-order migrations.
    pub problems: Vec<String>,
    /// How the live schema differs from what the applied migrations produce.
    pub differences: Vec<Difference>,
    /// What `PRAGMA quick_check` found damaged (nothing when the file is intact). A damaged
    /// database is not checked further.
    pub damage: Vec<String>,
}

impl Verification {
    /// Nothing pending, no problem, no drift.
    pub fn is_clean(&self) -> bool {
        self.pending.is_empty()
            && self.problems.is_empty()
            && self.differences.is_empty()
            && self.damage.is_empty()
    }

    /// Every finding, as sentences.
    pub fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.damage.is_empty() {
            out.push(format!(
                "damaged (PRAGMA quick_check): {}; restore it from a backup (`migrate restore`)",
                summarize(&self.damage)
            ));
        }
        if !self.pending.is_empty() {
            let ids: Vec<String> = self.pending.iter().map(ToString::to_string).collect();
            out.push(format!("pending: {}", ids.join(", ")));
        }
        out.extend(self.problems.iter().cloned());
        out.extend(self.differences.iter().map(|d| format!("drift: {d}")));
        out
    }

    /// `Ok` when clean, else [`Error::Verify`] naming every finding.
    pub fn into_result(self) -> Result<Verification> {
        if self.is_clean() {
            Ok(self)
        } else {
            Err(Error::Verify {
                path: self.path.clone(),
                problems: self.findings(),
            })
        }
    }
}

/// A pending migration as rehearsed: its version and the checksum of its code then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rehearsed {
    /// The migration's version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// The checksum of its code when rehearsed, lowercase hex.
    pub checksum: String,
}

/// The result of [`Migrator::rehearse`](crate::Migrator::rehearse), also kept beside the database
/// (`<database>.rehearsal.json`) for checked mode to report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rehearsal {
    /// The database file (not the copy the rehearsal ran on).
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// When it ran (UTC, RFC 3339).
    pub at: String,
    /// The pending set it covered.
    pub pending: Vec<Rehearsed>,
    /// What applying them to the copy did: duration and rows changed per migration.
    pub applied: Vec<Applied>,
    /// Why applying failed, if it did.
    pub error: Option<String>,
    /// What `verify` found on the copy afterwards.
    pub findings: Vec<String>,
    /// The copy it ran on (deleted afterwards).
    #[serde(default)]
    pub copy: Option<PathBuf>,
}

impl Rehearsal {
    /// Applied without error and verified clean.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.findings.is_empty()
    }
}

/// Whether the current pending set of a database has been rehearsed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RehearsalState {
    /// Nothing pending.
    NothingPending,
    /// No rehearsal of exactly this pending set (same versions and code).
    NotRehearsed,
    /// This pending set was rehearsed: it applied without error and verified clean.
    Passed {
        /// When the rehearsal ran (UTC, RFC 3339).
        at: String,
    },
    /// This pending set was rehearsed, and applying or verifying it failed.
    Failed {
        /// When the rehearsal ran (UTC, RFC 3339).
        at: String,
        /// The error that stopped it, or else verify's findings, `; `-separated.
        reason: String,
    },
}

/// The first three of SQLite's findings, and how many more there are.
pub(crate) fn summarize(damage: &[String]) -> String {
    let mut text = damage
        .iter()
        .take(3)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if damage.len() > 3 {
        text.push_str(&format!(" (and {} more)", damage.len() - 3));
    }
    text
}
