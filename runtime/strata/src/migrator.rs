//! [`Migrator`]: everything one role's migrations do to one database — status, plan, apply,
//! revert, approve, repair, verify, dump, backup and restore.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rusqlite::Connection;

use crate::analysis::{analyze, id_of};
use crate::backup::{self, BackupFile, BackupPolicy};
use crate::class::{Class, classify};
use crate::error::{Error, MigrationId, Result};
use crate::inspect::SchemaSnapshot;
use crate::instances;
use crate::migration::{ForeignKeys, Migration, Source};
use crate::options::{Mode, Options};
use crate::report::{
    Applied, History, MigrationState, MigrationStatus, Plan, PlannedMigration, Rehearsal,
    RehearsalState, Rehearsed, Repair, Report, Status, Verification, summarize,
};
use crate::review::{MigrationReview, RehearsalEvidence, Review};
use crate::runner::{self, Runner};
use crate::store::{self, AppliedMigration, State, event};

/// Applies the migrations of one role to databases of that role.
///
/// # Examples
///
/// A migration, then the application applying what is pending at startup (here on a
/// database in a temporary directory) and checking that the database is what the migrations
/// make:
///
/// ```
/// use strata::{Migrator, Result, Tx, migration};
///
/// strata::migrations!();
///
/// strata::schema! {
///     table notes {
///         id: i64 primary key,
///         content: String,
///     }
/// }
///
/// /// Notes.
/// #[migration(20240226153100, role = "notes")]
/// fn create_notes(tx: &mut Tx) -> Result<()> {
///     tx.create_table(notes::Table)
/// }
///
/// # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("strata-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("notes.db");
/// # let _ = std::fs::remove_file(&path);
/// let migrator = Migrator::new(&MIGRATIONS, "notes").backup(None);
/// let report = migrator.run(&path)?;
/// assert_eq!(report.applied.len(), 1);
/// assert!(migrator.run(&path)?.applied.is_empty(), "nothing pending the second time");
/// assert!(migrator.verify(&path)?.is_clean());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Migrator<'s> {
    source: &'s Source,
    role: String,
    options: Options,
    stop: Option<&'s AtomicBool>,
}

impl<'s> Migrator<'s> {
    /// A migrator for the migrations of `role` in `source`, with default [`Options`].
    pub fn new(source: &'s Source, role: &str) -> Self {
        Migrator {
            source,
            role: role.to_string(),
            options: Options::default(),
            stop: None,
        }
    }

    /// Replaces all settings.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// How long to wait, without progress, for another process migrating the same database
    /// (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// How long consecutive plain migrations may share one transaction (default 50 ms; see
    /// [`Options::group_for`]); `Duration::ZERO`: a transaction per migration.
    pub fn group_for(mut self, window: Duration) -> Self {
        self.options.group_for = window;
        self
    }

    /// Proceed although the database has migrations applied that this binary does not know
    /// (a deliberate rollback of the binary). Default: refuse.
    pub fn allow_unknown(mut self, allow: bool) -> Self {
        self.options.allow_unknown = allow;
        self
    }

    /// Apply pending migrations older than the newest applied one (merged from a parallel
    /// branch). Default: refuse.
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.options.allow_out_of_order = allow;
        self
    }

    /// Apply migrations up to `version` only.
    pub fn target(mut self, version: Option<i64>) -> Self {
        self.options.target = version;
        self
    }

    /// Where to back up before changing anything (`None`: no backup). Default: a `backups`
    /// directory beside the database, keeping 5 per database.
    pub fn backup(mut self, policy: Option<BackupPolicy>) -> Self {
        self.options.backup = policy;
        self
    }

    /// Apply only approved migrations (checked mode).
    pub fn require_approval(mut self, require: bool) -> Self {
        self.options.require_approval = require;
        self
    }

    /// Let `down` drop tables that hold rows (default: refuse, naming them).
    pub fn allow_data_loss(mut self, allow: bool) -> Self {
        self.options.allow_data_loss = allow;
        self
    }

    /// Stop before the next migration once `flag` is set (used to stop a fleet cleanly).
    pub fn stop_on(mut self, flag: &'s AtomicBool) -> Self {
        self.stop = Some(flag);
        self
    }

    /// The role this migrator handles.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The settings.
    pub fn settings(&self) -> &Options {
        &self.options
    }

    /// The migrations of this role in the source, sorted by version.
    ///
    /// # Errors
    ///
    /// The source's errors (empty, duplicate versions, unknown role).
    pub fn known(&self) -> Result<Vec<&'static Migration>> {
        self.source.for_role(&self.role)
    }

    fn runner<'a>(
        &'a self,
        conn: &'a Connection,
        path: &'a Path,
        known: &'a [&'static Migration],
    ) -> Runner<'a> {
        Runner {
            options: &self.options,
            role: &self.role,
            conn,
            path,
            known,
            stop: self.stop,
        }
    }

    /// Reads the database read-only: `None` when the file does not exist yet.
    fn read(&self, path: &Path) -> Result<(Option<Connection>, State)> {
        let known = self.source.for_role(&self.role)?;
        match store::open_ro(path, self.options.lock_timeout)? {
            Some(conn) => {
                let state = match self.runner(&conn, path, &known).snapshot() {
                    // A database the role's baseline can adopt: everything is pending.
                    Err(Error::ForeignDatabase { .. })
                        if known.first().is_some_and(|m| m.is_baseline()) =>
                    {
                        return Ok((None, State::default()));
                    }
                    // A database made by a tool the role's migrations were imported from:
                    // everything is pending (what its history records is adopted, not run).
                    Err(Error::ForeignDatabase { .. })
                        if crate::import::claims_peer_history(&conn, &known)? =>
                    {
                        return Ok((None, State::default()));
                    }
                    other => other?,
                };
                self.runner(&conn, path, &known).check_role(&state)?;
                Ok((Some(conn), state))
            }
            None => Ok((None, State::default())),
        }
    }

    /// Compares the database at `path` with the binary, without writing anything (a missing
    /// file stays missing).
    ///
    /// # Errors
    ///
    /// The source's errors (empty, duplicate versions, unknown role) and the file's (not a
    /// database, corrupt, foreign, another role's).
    pub fn status(&self, path: &Path) -> Result<Status> {
        let known = self.source.for_role(&self.role)?;
        let (conn, state) = self.read(path)?;
        let approved = match (&conn, &state.role) {
            (Some(conn), Some(_)) => store::approved_versions(conn, &known)?,
            _ => BTreeSet::new(),
        };
        let analysis = analyze(&known, &state.history);
        let changed: BTreeSet<i64> = analysis.changed.iter().map(|(m, _)| m.version()).collect();
        let ooo: BTreeSet<i64> = analysis.out_of_order.iter().map(|m| m.version()).collect();
        let applied: BTreeMap<i64, &AppliedMigration> =
            state.history.iter().map(|a| (a.version, a)).collect();
        let mut migrations: Vec<MigrationStatus> = known
            .iter()
            .map(|m| {
                let row = applied.get(&m.version());
                let state = if changed.contains(&m.version()) {
                    MigrationState::Changed
                } else if row.is_some() {
                    MigrationState::Applied
                } else if ooo.contains(&m.version()) {
                    MigrationState::OutOfOrder
                } else {
                    MigrationState::Pending
                };
                MigrationStatus {
                    version: m.version(),
                    name: m.name().to_string(),
                    description: m.description().to_string(),
                    state,
                    class: Some(classify(&known, m).class),
                    deferred_for: None,
                    checksum: Some(m.checksum().to_hex()),
                    applied_checksum: row.map(|r| r.checksum.clone()),
                    applied_at: row.map(|r| r.applied_at.clone()),
                    duration_ms: row.map(|r| r.duration_ms),
                    applied_by: row.map(|r| r.applied_by.clone()),
                    approved: row.is_none() && approved.contains(&m.version()),
                    has_down: m.has_down(),
                }
            })
            .collect();
        migrations.extend(analysis.unknown.iter().map(|a| MigrationStatus {
            version: a.version,
            name: a.name.clone(),
            description: String::new(),
            state: MigrationState::Unknown,
            class: a.class,
            deferred_for: None,
            checksum: None,
            applied_checksum: Some(a.checksum.clone()),
            applied_at: Some(a.applied_at.clone()),
            duration_ms: Some(a.duration_ms),
            applied_by: Some(a.applied_by.clone()),
            approved: false,
            has_down: false,
        }));
        migrations.sort_by_key(|m| m.version);
        if let (Some(conn), Some(_)) = (&conn, &state.role) {
            let deferred = instances::deferred(self, conn)?;
            if let Some((first, _)) = deferred.iter().find(|(_, b)| !b.is_empty()) {
                for s in &mut migrations {
                    if s.state == MigrationState::Pending && s.version >= first.version() {
                        s.deferred_for = Some(Vec::new());
                    }
                }
            }
            for (m, blockers) in deferred {
                if let Some(s) = migrations.iter_mut().find(|s| s.version == m.version())
                    && !blockers.is_empty()
                {
                    s.deferred_for =
                        Some(blockers.iter().map(instances::Instance::describe).collect());
                }
            }
        }
        Ok(Status {
            path: path.to_path_buf(),
            role: self.role.clone(),
            initialized: state.role.is_some(),
            version: state.history.iter().map(|a| a.version).max(),
            migrations,
        })
    }

    /// What [`Migrator::run`] would apply, in order, and whether it would be refused; changes
    /// nothing.
    pub fn plan(&self, path: &Path) -> Result<Plan> {
        let known = self.source.for_role(&self.role)?;
        let (conn, state) = self.read(path)?;
        let analysis = analyze(&known, &state.history);
        let approved = match (&conn, &state.role) {
            (Some(conn), Some(_)) => store::approved_versions(conn, &known)?,
            _ => BTreeSet::new(),
        };
        let mut refused = runner::policy(&self.options, path, &analysis)
            .err()
            .map(|e| e.to_string());
        let mut migrations: Vec<PlannedMigration> = analysis
            .pending
            .iter()
            .filter(|m| self.options.target.is_none_or(|t| m.version() <= t))
            .map(|m| planned(&known, m, approved.contains(&m.version())))
            .collect();
        mark_deferred(conn.as_ref(), &self.options, &mut migrations)?;
        if refused.is_none()
            && self.options.require_approval
            && migrations.iter().any(|m| !m.approved)
        {
            refused = Some("waiting for approval (checked mode): run `migrate approve`".into());
        }
        Ok(Plan {
            path: path.to_path_buf(),
            role: self.role.clone(),
            direction: "up",
            backup_dir: self.backup_dir(path, state.role.is_some(), !migrations.is_empty()),
            migrations,
            refused,
            drops: Vec::new(),
        })
    }

    /// What [`Migrator::down_to`] would revert, newest first; changes nothing.
    pub fn plan_down(&self, path: &Path, target: i64) -> Result<Plan> {
        let (plan, refusal) = self.plan_down_checked(path, target)?;
        Ok(Plan {
            refused: refusal.map(|e| e.to_string()),
            ..plan
        })
    }

    /// Whether [`Migrator::down_to`] would refuse, with the error it would refuse with; changes
    /// nothing. A fleet asks every database first, so that a refusal reverts none of them.
    pub fn check_down(&self, path: &Path, target: i64) -> Result<()> {
        match self.plan_down_checked(path, target)?.1 {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    fn plan_down_checked(&self, path: &Path, target: i64) -> Result<(Plan, Option<Error>)> {
        let known = self.source.for_role(&self.role)?;
        let (conn, state) = self.read(path)?;
        let mut migrations = Vec::new();
        let mut refused = self.check_target(path, &state.history, target).err();
        let mut all_known = true;
        for row in state.history.iter().rev().filter(|a| a.version > target) {
            match known.iter().find(|m| m.version() == row.version) {
                Some(m) if m.has_down() => migrations.push(planned(&known, m, true)),
                Some(m) => {
                    refused.get_or_insert(Error::NoDown {
                        path: path.to_path_buf(),
                        target,
                        id: m.id(),
                    });
                    migrations.push(planned(&known, m, true));
                }
                None => {
                    all_known = false;
                    refused.get_or_insert(Error::UnknownApplied {
                        path: path.to_path_buf(),
                        unknown: vec![id_of(row)],
                    });
                }
            }
        }
        let mut drops = Vec::new();
        if let (Some(conn), true, false) = (&conn, all_known, migrations.is_empty()) {
            let lost = runner::rows_lost(conn, &self.options, &self.role, &known, &state, target)?;
            if !lost.is_empty() && !self.options.allow_data_loss {
                refused.get_or_insert(Error::DataLoss {
                    path: path.to_path_buf(),
                    target,
                    tables: lost.clone(),
                });
            }
            drops = lost;
        }
        let plan = Plan {
            path: path.to_path_buf(),
            role: self.role.clone(),
            direction: "down",
            backup_dir: self.backup_dir(path, state.role.is_some(), !migrations.is_empty()),
            migrations,
            refused: None,
            drops,
        };
        Ok((plan, refused))
    }

    /// A revert target must name a migration: 0 (everything), a version applied here, or the
    /// version of a migration in the binary (of any role: in a fleet, versions are points in
    /// time). Anything else — a typo — is refused, naming the applied versions nearby.
    fn check_target(&self, path: &Path, history: &[AppliedMigration], target: i64) -> Result<()> {
        if target == 0
            || history.iter().any(|a| a.version == target)
            || self.source.all()?.iter().any(|m| m.version() == target)
        {
            return Ok(());
        }
        let mut nearby: Vec<i64> = history
            .iter()
            .rev()
            .filter(|a| a.version < target)
            .take(2)
            .map(|a| a.version)
            .collect();
        nearby.reverse();
        nearby.extend(
            history
                .iter()
                .filter(|a| a.version > target)
                .take(2)
                .map(|a| a.version),
        );
        Err(Error::UnknownTarget {
            path: path.to_path_buf(),
            target,
            nearby,
        })
    }

    fn backup_dir(&self, path: &Path, initialized: bool, work: bool) -> Option<PathBuf> {
        match (&self.options.backup, initialized && work) {
            (Some(policy), true) => Some(policy.dir_for(path)),
            _ => None,
        }
    }

    /// Brings the database at `path` up to date (or to the target version), creating it if
    /// missing, after a backup when it already held data.
    ///
    /// Each migration runs in a `BEGIN IMMEDIATE` transaction together with its history row and
    /// audit event — its own, or one shared with its plain neighbours for up to
    /// [`Options::group_for`] (group commit), each in a savepoint — so after a crash it is
    /// either applied and recorded or absent.
    /// Processes migrating the same file at once serialise on SQLite's write lock and apply
    /// each migration exactly once; a crashed process releases the lock with its file handles.
    ///
    /// # Errors
    ///
    /// Besides the errors of [`Migrator::status`]: [`Error::ChecksumMismatch`],
    /// [`Error::UnknownApplied`] and [`Error::OutOfOrder`] before anything is applied (recorded
    /// as `refused` events), [`Error::ApprovalRequired`] in checked mode,
    /// [`Error::MigrationFailed`] and [`Error::ForeignKeyViolation`] when a migration fails
    /// (rolled back, recorded as a `failed` event; earlier migrations stay applied, but for the
    /// exceptions [`Options::group_for`] names),
    /// [`Error::LockTimeout`] when another process migrates for too long.
    pub fn run(&self, path: &Path) -> Result<Report> {
        let known = self.source.for_role(&self.role)?;
        // The runner's startup check is the first read (its errors name the file).
        let conn = store::open_rw_unread(path, self.options.lock_timeout)?;
        self.runner(&conn, path, &known).up()
    }

    /// [`Migrator::run`] on an open connection (`label` names it in messages). No backup is
    /// taken unless the options ask for one and the connection is a file database.
    pub fn run_connection(&self, conn: &Connection, label: &Path) -> Result<Report> {
        let known = self.source.for_role(&self.role)?;
        self.runner(conn, label, &known).up()
    }

    /// [`Migrator::down_to`] on an open connection (`label` names it in messages).
    pub fn down_connection(&self, conn: &Connection, label: &Path, target: i64) -> Result<Report> {
        let known = self.source.for_role(&self.role)?;
        let runner = self.runner(conn, label, &known);
        self.check_target(label, &runner.snapshot()?.history, target)?;
        runner.down(target)
    }

    /// What an application calls at startup: `auto` runs, `checked` runs only approved
    /// migrations (failing with [`Error::ApprovalRequired`] otherwise), `verify` changes
    /// nothing and fails with [`Error::Verify`] unless the database is up to date and
    /// undrifted (without the page check of [`Migrator::verify`]: see
    /// [`Migrator::check_integrity`]).
    pub fn startup(&self, path: &Path, mode: Mode) -> Result<Report> {
        match mode {
            Mode::Auto => self.run(path),
            Mode::Checked => self.clone().require_approval(true).run(path),
            Mode::Verify => {
                // Not `PRAGMA quick_check`: it reads every page, too slow for every start.
                let verification = self.verify_with(path, false)?.into_result()?;
                let mut report = Report::empty(path, &self.role);
                report.version = self.status(&verification.path)?.version;
                Ok(report)
            }
        }
    }

    /// Reverts, newest first, every applied migration newer than `target`, each with its
    /// `down` in its own transaction, after a backup.
    ///
    /// # Errors
    ///
    /// Before reverting anything: [`Error::UnknownTarget`] when `target` is neither 0, nor
    /// applied here, nor the version of a migration in the binary; [`Error::NoDown`] when a
    /// migration in range has no `down`; [`Error::UnknownApplied`] when one is not in this
    /// binary; [`Error::DataLoss`] when the revert would drop tables holding rows (unless
    /// [`Options::allow_data_loss`]). Then the errors of `run`.
    pub fn down_to(&self, path: &Path, target: i64) -> Result<Report> {
        let known = self.source.for_role(&self.role)?;
        let conn = store::open_rw(path, self.options.lock_timeout)?;
        let runner = self.runner(&conn, path, &known);
        self.check_target(path, &runner.snapshot()?.history, target)?;
        runner.down(target)
    }

    /// Records an operator's approval of every pending migration (up to the target), for
    /// checked mode; returns the migrations newly approved.
    pub fn approve(&self, path: &Path, by: &str) -> Result<Vec<MigrationId>> {
        self.approve_reviewed(path, by, None)
    }

    /// [`Migrator::approve`], after reading the review with digest `seen` (see
    /// [`Migrator::review`]): refused when the pending migrations or their rehearsal changed
    /// since. Each `approved` event names who, the checksum approved and the review's digest.
    ///
    /// # Errors
    ///
    /// [`Error::ReviewChanged`] when `seen` is not the current review's digest; as
    /// [`Migrator::approve`] otherwise.
    pub fn approve_reviewed(
        &self,
        path: &Path,
        by: &str,
        seen: Option<&str>,
    ) -> Result<Vec<MigrationId>> {
        let review = self.review(path)?;
        let digest = review.digest.clone();
        if let Some(seen) = seen
            && seen != digest
        {
            return Err(Error::ReviewChanged {
                path: path.to_path_buf(),
                seen: seen.to_string(),
                now: digest,
            });
        }
        // What the review showed, to be checked again under the write lock: a revert or a
        // deploy in between must not slip unreviewed migrations into this approval.
        let reviewed: Vec<(i64, String)> = review
            .migrations
            .iter()
            .map(|m| (m.version, m.checksum.clone()))
            .collect();
        self.locked(path, |runner, state| {
            let analysis = analyze(runner.known, &state.history);
            runner.policy(&analysis)?;
            if seen.is_some() {
                let pending: Vec<(i64, String)> = analysis
                    .pending
                    .iter()
                    .filter(|m| self.options.target.is_none_or(|t| m.version() <= t))
                    .map(|m| (m.version(), m.checksum().to_hex()))
                    .collect();
                if pending != reviewed {
                    return Err(Error::ReviewChanged {
                        path: path.to_path_buf(),
                        seen: digest.clone(),
                        now: "(the pending migrations changed while approving)".into(),
                    });
                }
            }
            let approved = store::approved_versions(runner.conn, runner.known)?;
            let mut newly = Vec::new();
            for m in runner.known {
                let pending = !state.history.iter().any(|a| a.version == m.version());
                let in_target = self.options.target.is_none_or(|t| m.version() <= t);
                if pending && in_target && !approved.contains(&m.version()) {
                    store::record_event(
                        runner.conn,
                        event::APPROVED,
                        Some((m.version(), m.name())),
                        &format!(
                            "approved by {by}; checksum {}; review {digest}{}",
                            m.checksum().to_hex(),
                            if seen.is_some() {
                                " (read by the approver)"
                            } else {
                                ""
                            }
                        ),
                    )?;
                    newly.push(m.id());
                }
            }
            Ok(newly)
        })
    }

    /// What the pending migrations will do, for an operator to read before approving: each
    /// one's source, class and schema change, the last rehearsal, and the backup taken first.
    /// Changes nothing.
    ///
    /// # Errors
    ///
    /// The source's errors and the file's.
    pub fn review(&self, path: &Path) -> Result<Review> {
        let known = self.source.for_role(&self.role)?;
        let plan = self.plan(path)?;
        let last: Option<Rehearsal> = std::fs::read_to_string(Self::rehearsal_file(path))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        let pending = rehearsed_set(&known, &plan);
        let rehearsal = last.as_ref().map(|r| RehearsalEvidence {
            at: r.at.clone(),
            copy: r.copy.as_ref().map_or_else(
                || "a copy of the database".to_string(),
                |c| format!("a copy of the database ({}), deleted after", c.display()),
            ),
            current: !pending.is_empty() && r.pending == pending,
            passed: r.passed(),
            error: r.error.clone(),
            findings: r.findings.clone(),
            total_ms: r.applied.iter().map(|a| a.duration_ms).sum(),
        });
        let migrations = plan
            .migrations
            .iter()
            .filter_map(|p| {
                let m = known.iter().find(|m| m.version() == p.version)?;
                let c = classify(&known, m);
                let rehearsed = last
                    .as_ref()
                    .filter(|r| {
                        r.pending.iter().any(|x| {
                            x.version == m.version() && m.checksum().matches_hex(&x.checksum)
                        })
                    })
                    .and_then(|r| r.applied.iter().find(|a| a.version == m.version()).cloned());
                Some(MigrationReview {
                    version: m.version(),
                    name: m.name().to_string(),
                    description: m.description().to_string(),
                    checksum: m.checksum().to_hex(),
                    file: m.location().0.to_string(),
                    line: m.location().1,
                    source: m.source().to_string(),
                    class: c.class,
                    declared_contract: c.declared,
                    schema_compared: c.compared,
                    changes: c.changes,
                    transactional: m.transactional(),
                    foreign_keys_off: m.foreign_keys() == ForeignKeys::Off,
                    has_down: m.has_down(),
                    approved: p.approved,
                    deferred: p.deferred,
                    blocked_by: p.blocked_by.clone(),
                    rehearsed,
                })
            })
            .collect();
        Ok(Review {
            path: path.to_path_buf(),
            role: self.role.clone(),
            migrations,
            backup_dir: plan.backup_dir,
            rehearsal,
            refused: plan.refused,
            digest: String::new(),
        }
        .seal())
    }

    /// Accepts the changed checksum of applied migration `version` after review: the history
    /// takes the binary's checksum, and a `repaired` event records both.
    pub fn repair(&self, path: &Path, version: i64, by: &str) -> Result<Repair> {
        self.locked(path, |runner, state| {
            let row = state.history.iter().find(|a| a.version == version);
            let m = runner.known.iter().find(|m| m.version() == version);
            let (row, m) = match (row, m) {
                (Some(row), Some(m)) if row.checksum != m.checksum().to_hex() => (row, m),
                (row, m) => {
                    let state = match (row, m) {
                        (None, None) => "neither applied nor in this binary",
                        (None, Some(_)) => "not applied",
                        (Some(_), None) => "unknown to this binary",
                        _ => "unchanged",
                    };
                    return Err(Error::NothingToRepair {
                        path: path.to_path_buf(),
                        version,
                        state: state.into(),
                    });
                }
            };
            let new = m.checksum().to_hex();
            runner.conn.execute(
                "UPDATE strata_migrations SET checksum = ?1 WHERE version = ?2",
                rusqlite::params![new, version],
            )?;
            store::record_event(
                runner.conn,
                event::REPAIRED,
                Some((version, m.name())),
                &format!(
                    "checksum {} accepted in place of {} by {by}",
                    new, row.checksum
                ),
            )?;
            Ok(Repair {
                path: path.to_path_buf(),
                version,
                name: m.name().to_string(),
                old_checksum: row.checksum.clone(),
                new_checksum: new,
            })
        })
    }

    /// Runs `f` under the write lock on an initialised database, committing if it succeeds.
    fn locked<T>(
        &self,
        path: &Path,
        f: impl FnOnce(&Runner<'_>, &State) -> Result<T>,
    ) -> Result<T> {
        let known = self.source.for_role(&self.role)?;
        let conn = store::open_rw(path, self.options.lock_timeout)?;
        let runner = self.runner(&conn, path, &known);
        runner.begin_immediate()?;
        let result = (|| {
            let state = match store::read_state(&conn, path) {
                // A database made by a tool the migrations were imported from (approving its
                // pending migrations in checked mode, say): Strata's tables are created.
                Err(Error::ForeignDatabase { .. })
                    if crate::import::claims_peer_history(&conn, &known)? =>
                {
                    State::default()
                }
                other => other?,
            };
            runner.check_role(&state)?;
            if state.role.is_none() {
                store::initialize(&conn, &self.role)?;
            }
            f(&runner, &state)
        })();
        match result {
            Ok(v) => {
                conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                runner.rollback();
                Err(e)
            }
        }
    }

    /// The instances registered as serving on the database at `path` (none when it does
    /// not exist yet), with their liveness judged now.
    ///
    /// # Errors
    ///
    /// The file's errors (not a database, corrupt).
    pub fn instances(&self, path: &Path) -> Result<Vec<instances::Instance>> {
        match store::open_ro(path, self.options.lock_timeout)? {
            Some(conn) => instances::list(&conn),
            None => Ok(Vec::new()),
        }
    }

    /// The history and audit log.
    pub fn history(&self, path: &Path) -> Result<History> {
        let (conn, state) = self.read(path)?;
        let events = match (&conn, &state.role) {
            (Some(conn), Some(_)) => store::read_events(conn)?,
            _ => Vec::new(),
        };
        Ok(History {
            path: path.to_path_buf(),
            role: self.role.clone(),
            applied: state.history,
            events,
        })
    }

    /// The live database's canonical schema (see [`SchemaSnapshot::dump`]).
    pub fn dump(&self, path: &Path) -> Result<String> {
        let (conn, _) = self.read(path)?;
        match conn {
            Some(conn) => Ok(SchemaSnapshot::read(&conn)?.dump()),
            None => Ok(String::new()),
        }
    }

    /// The schema the binary's migrations of this role produce when applied, in order, to an
    /// empty database: all of them, or those listed in `versions`.
    pub fn expected_schema(&self, versions: Option<&BTreeSet<i64>>) -> Result<SchemaSnapshot> {
        let known: Vec<&'static Migration> = self
            .source
            .for_role(&self.role)?
            .into_iter()
            .filter(|m| versions.is_none_or(|v| v.contains(&m.version())))
            .collect();
        let mem = runner::replay(&self.options, &self.role, &known)?;
        SchemaSnapshot::read(&mem)
    }

    /// Checks, changing nothing, that the database is intact (`PRAGMA quick_check`, which
    /// reads the whole file), has nothing pending (up to the target), no changed, unknown or
    /// out-of-order migration, and exactly the schema its applied migrations produce.
    pub fn verify(&self, path: &Path) -> Result<Verification> {
        self.verify_with(path, true)
    }

    fn verify_with(&self, path: &Path, integrity: bool) -> Result<Verification> {
        let mut verification = Verification {
            path: path.to_path_buf(),
            role: self.role.clone(),
            pending: Vec::new(),
            problems: Vec::new(),
            differences: Vec::new(),
            damage: if integrity {
                self.damage(path)?
            } else {
                Vec::new()
            },
        };
        if !verification.damage.is_empty() {
            return Ok(verification);
        }
        let status = self.status(path)?;
        for m in &status.migrations {
            let id = MigrationId {
                version: m.version,
                name: m.name.clone(),
            };
            match m.state {
                MigrationState::Pending if self.options.target.is_none_or(|t| m.version <= t) => {
                    verification.pending.push(id);
                }
                MigrationState::Changed => verification
                    .problems
                    .push(format!("changed after it was applied: {id}")),
                MigrationState::Unknown => verification
                    .problems
                    .push(format!("applied but unknown to this binary: {id}")),
                MigrationState::OutOfOrder => {
                    verification.problems.push(format!("out of order: {id}"));
                }
                _ => {}
            }
        }
        let applied: BTreeSet<i64> = status
            .migrations
            .iter()
            .filter(|m| matches!(m.state, MigrationState::Applied | MigrationState::Changed))
            .map(|m| m.version)
            .collect();
        let (conn, _) = self.read(path)?;
        if let Some(conn) = conn {
            let live = SchemaSnapshot::read(&conn)?;
            let expected = self.expected_schema(Some(&applied))?;
            verification.differences = live.diff(&expected);
        }
        Ok(verification)
    }

    /// What `PRAGMA quick_check` finds damaged in the database (nothing for an intact or a
    /// missing file). Reads the whole file.
    pub fn damage(&self, path: &Path) -> Result<Vec<String>> {
        match store::open_ro(path, self.options.lock_timeout) {
            Ok(Some(conn)) => store::quick_check(&conn),
            Ok(None) => Ok(Vec::new()),
            // Damaged beyond reading its schema.
            Err(Error::Corrupt { message, .. }) => Ok(vec![message]),
            Err(e) => Err(e),
        }
    }

    /// [`Error::Corrupt`] naming the file and SQLite's findings when `PRAGMA quick_check`
    /// finds damage (see [`Migrator::damage`]).
    pub fn check_integrity(&self, path: &Path) -> Result<()> {
        let damage = self.damage(path)?;
        if damage.is_empty() {
            Ok(())
        } else {
            Err(Error::Corrupt {
                path: path.to_path_buf(),
                message: format!("PRAGMA quick_check found {}", summarize(&damage)),
            })
        }
    }

    /// Writes a backup of the database now.
    pub fn backup_now(&self, path: &Path) -> Result<BackupFile> {
        let policy = self.options.backup.clone().unwrap_or_default();
        let (conn, state) = self.read(path)?;
        if conn.is_none() {
            return Err(Error::Backup {
                path: path.to_path_buf(),
                message: "the database does not exist yet".into(),
            });
        }
        backup::take(path, state.history.last().map(|a| a.version), &policy)
    }

    fn rehearsal_file(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".rehearsal.json");
        PathBuf::from(name)
    }

    fn pending_set(&self, path: &Path) -> Result<Vec<Rehearsed>> {
        let known = self.source.for_role(&self.role)?;
        Ok(rehearsed_set(&known, &self.plan(path)?))
    }

    /// Applies the pending migrations to a copy of the database (made with the backup API),
    /// verifies the copy, and deletes it: the real database is not touched. The result is kept
    /// in `<database>.rehearsal.json`, which [`Migrator::rehearsal_state`] reads.
    pub fn rehearse(&self, path: &Path) -> Result<Rehearsal> {
        let pending = self.pending_set(path)?;
        let (existing, _) = self.read(path)?;
        let dir = std::env::temp_dir().join(format!(
            "strata-rehearsal-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Backup {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let copy = dir.join(path.file_name().unwrap_or(std::ffi::OsStr::new("copy.db")));
        let outcome = (|| -> Result<(Vec<Applied>, Option<String>, Vec<String>)> {
            if existing.is_some() {
                drop(existing);
                backup::copy_file(path, &copy)?;
            }
            let on_copy = self.clone().backup(None).require_approval(false);
            let (applied, error) = match on_copy.run(&copy) {
                Ok(report) => (report.applied, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            let findings = if error.is_none() {
                on_copy.verify(&copy)?.findings()
            } else {
                Vec::new()
            };
            Ok((applied, error, findings))
        })();
        let _ = std::fs::remove_dir_all(&dir);
        let (applied, error, findings) = outcome?;
        let copy = copy.clone();
        let rehearsal = Rehearsal {
            path: path.to_path_buf(),
            role: self.role.clone(),
            at: store::now(),
            pending,
            applied,
            error,
            findings,
            copy: Some(copy),
        };
        if let Ok(json) = serde_json::to_string_pretty(&rehearsal) {
            // Best effort: failing to note the result only means checked mode reports the
            // pending set as not rehearsed.
            let _ = std::fs::write(Self::rehearsal_file(path), json);
        }
        Ok(rehearsal)
    }

    /// Whether the database's current pending set has been rehearsed, and how it went.
    pub fn rehearsal_state(&self, path: &Path) -> Result<RehearsalState> {
        let pending = self.pending_set(path)?;
        if pending.is_empty() {
            return Ok(RehearsalState::NothingPending);
        }
        let last: Option<Rehearsal> = std::fs::read_to_string(Self::rehearsal_file(path))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        Ok(match last {
            Some(r) if r.pending == pending && r.passed() => RehearsalState::Passed { at: r.at },
            Some(r) if r.pending == pending => RehearsalState::Failed {
                reason: r.error.clone().unwrap_or_else(|| r.findings.join("; ")),
                at: r.at,
            },
            _ => RehearsalState::NotRehearsed,
        })
    }

    /// Replaces the database with backup `file` (see the `restore` command); refuses while
    /// another process holds a lock on it.
    pub fn restore(&self, path: &Path, file: &Path) -> Result<BackupFile> {
        let policy = self.options.backup.clone().unwrap_or_default();
        backup::restore(path, file, &self.role, &policy)
    }
}

/// A plan's migrations as a rehearsal records them (version, name, checksum).
fn rehearsed_set(known: &[&'static Migration], plan: &Plan) -> Vec<Rehearsed> {
    plan.migrations
        .iter()
        .filter_map(|p| known.iter().find(|m| m.version() == p.version))
        .map(|m| Rehearsed {
            version: m.version(),
            name: m.name().to_string(),
            checksum: m.checksum().to_hex(),
        })
        .collect()
}

fn planned(known: &[&'static Migration], m: &Migration, approved: bool) -> PlannedMigration {
    let c = classify(known, m);
    PlannedMigration {
        version: m.version(),
        name: m.name().to_string(),
        description: m.description().to_string(),
        transactional: m.transactional(),
        foreign_keys_off: m.foreign_keys() == ForeignKeys::Off,
        approved,
        class: c.class,
        contract_changes: c.contract_changes().map(ToString::to_string).collect(),
        changes: c.changes,
        deferred: false,
        blocked_by: Vec::new(),
    }
}

/// Marks the planned migrations a run would put off: from the first contract that a live
/// instance lacks (unless `contract_now`).
fn mark_deferred(
    conn: Option<&Connection>,
    options: &Options,
    planned: &mut [PlannedMigration],
) -> Result<()> {
    let Some(conn) = conn else { return Ok(()) };
    if options.contract_now.is_some() {
        return Ok(());
    }
    let mut waiting = false;
    for p in planned {
        if !waiting && p.class == Class::Contract {
            let blockers = instances::blocking(conn, p.version)?;
            if !blockers.is_empty() {
                waiting = true;
                p.blocked_by = blockers.iter().map(instances::Instance::describe).collect();
            }
        }
        p.deferred = waiting;
    }
    Ok(())
}
