//! Reviews: what each pending migration will do, for an operator to read before approving it —
//! its source as written, its schema change and class, the last rehearsal of the pending set,
//! and whether a backup is taken first.
//!
//! A review has a digest over what it shows (versions, checksums, rehearsal). An approval given
//! after reading a review names that digest in the audit log, and is refused when the pending
//! set changed since ([`Migrator::approve_reviewed`](crate::Migrator::approve_reviewed)).

use std::path::PathBuf;

use serde::Serialize;

use crate::checksum::Checksum;
use crate::class::{Class, SchemaChange};
use crate::report::Applied;

/// One pending migration, as a reviewer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReview {
    /// The migration's version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// Its doc comment.
    pub description: String,
    /// The checksum an approval covers, lowercase hex.
    pub checksum: String,
    /// The source file, as the compiler saw it (`migrations/src/m2024….rs`).
    pub file: String,
    /// The line of its `#[migration]` attribute in `file`.
    pub line: u32,
    /// The file's text: the function, its `down`, its test data and its `schema!`.
    pub source: String,
    /// Expand or contract.
    pub class: Class,
    /// Whether the attribute declares `contract`.
    pub declared_contract: bool,
    /// Whether the declared schema was compared with the previous one (false: no
    /// declaration, `schema = none`).
    pub schema_compared: bool,
    /// The declared schema's differences from the previous migration's of its role.
    pub changes: Vec<SchemaChange>,
    /// Whether it runs in a transaction (false for `no_transaction`).
    pub transactional: bool,
    /// Whether foreign keys are off while it runs.
    pub foreign_keys_off: bool,
    /// Whether it has a `down`.
    pub has_down: bool,
    /// Whether an operator approved it already.
    pub approved: bool,
    /// Whether the run would put it off (a contract older instances lack, or after one).
    pub deferred: bool,
    /// The live instances of older binaries it waits for.
    pub blocked_by: Vec<String>,
    /// What the last rehearsal measured for exactly this code: duration and rows changed.
    pub rehearsed: Option<Applied>,
}

/// The last rehearsal of a database's pending migrations.
#[derive(Debug, Clone, Serialize)]
pub struct RehearsalEvidence {
    /// When it ran (UTC, RFC 3339).
    pub at: String,
    /// What it ran on: a copy of the database made with SQLite's backup API, deleted after.
    pub copy: String,
    /// Whether it covered exactly the pending set under review (same versions and code).
    pub current: bool,
    /// Whether applying and verifying the copy succeeded.
    pub passed: bool,
    /// Why applying failed, if it did.
    pub error: Option<String>,
    /// What `verify` found on the copy.
    pub findings: Vec<String>,
    /// How long the whole pending set took on the copy, in milliseconds.
    pub total_ms: f64,
}

/// What approving a database's pending migrations means.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The database file.
    pub path: PathBuf,
    /// The migrator's role.
    pub role: String,
    /// The pending migrations, in the order they would run.
    pub migrations: Vec<MigrationReview>,
    /// The directory a backup is written to before they run (`None`: no backup).
    pub backup_dir: Option<PathBuf>,
    /// The last rehearsal, if there was one.
    pub rehearsal: Option<RehearsalEvidence>,
    /// Why a run would be refused now, if it would.
    pub refused: Option<String>,
    /// A digest of what this review shows (versions, checksums, rehearsal): an approval names
    /// it, and is refused if the pending set changed since.
    pub digest: String,
}

impl Review {
    /// Computes the digest over everything the review shows: the database, the backup, the
    /// refusal, every migration as shown (source, description, checksum, class, changes,
    /// flags, deferral, rehearsed figures) and the rehearsal.
    pub(crate) fn seal(mut self) -> Review {
        self.digest = String::new();
        let shown = serde_json::to_vec(&self).unwrap_or_default();
        self.digest = Checksum::of(&[b"strata-review-2", &shown]).to_hex()[..16].to_string();
        self
    }

    /// The source lines of `m` with their numbers, 1-based.
    pub fn numbered(m: &MigrationReview) -> impl Iterator<Item = (usize, &str)> {
        m.source.lines().enumerate().map(|(i, l)| (i + 1, l))
    }
}
