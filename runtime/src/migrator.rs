//! The runner: validates a database's history against the binary and applies what is pending.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use serde::Serialize;

use crate::error::{Error, MigrationId, Result};
use crate::migration::{ForeignKeys, Migration, Source};
use crate::store::{self, AppliedMigration, State, event};
use crate::tx::Tx;

/// Applies the migrations of one role to databases of that role.
///
/// ```no_run
/// # strata::migrations!();
/// # fn main() -> strata::Result<()> {
/// let report = strata::Migrator::new(&MIGRATIONS, "notes").run("data/notes.db".as_ref())?;
/// println!("{} applied", report.applied.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Migrator<'s> {
    source: &'s Source,
    role: String,
    lock_timeout: Duration,
    allow_unknown: bool,
    allow_out_of_order: bool,
}

/// One migration applied by a run.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub duration_ms: f64,
}

/// What a run did to one database.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub path: PathBuf,
    pub role: String,
    /// Migrations this run applied, in order.
    pub applied: Vec<Applied>,
    /// The newest applied version once the run finished.
    pub version: Option<i64>,
    /// Whether this run created Strata's tables (a new database).
    pub created: bool,
}

/// Where one migration stands in one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    Applied,
    Pending,
    /// Applied, but its code changed since.
    Changed,
    /// Applied, but not in this binary.
    Unknown,
    /// Pending, yet older than the newest applied migration.
    OutOfOrder,
}

/// One line of [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    pub description: String,
    pub state: MigrationState,
    /// Checksum compiled into the binary (absent for unknown migrations).
    pub checksum: Option<String>,
    /// Checksum recorded when applied.
    pub applied_checksum: Option<String>,
    pub applied_at: Option<String>,
    pub duration_ms: Option<f64>,
    pub applied_by: Option<String>,
}

/// The state of one database compared with the binary. Reading it changes nothing.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub path: PathBuf,
    pub role: String,
    /// Whether the database exists and was initialised by Strata.
    pub initialized: bool,
    /// Newest applied version.
    pub version: Option<i64>,
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

    fn count(&self, states: &[MigrationState]) -> usize {
        self.migrations
            .iter()
            .filter(|m| states.contains(&m.state))
            .count()
    }
}

/// The comparison of the binary's migrations with a database's history.
struct Analysis<'h> {
    pending: Vec<&'static Migration>,
    changed: Vec<(&'static Migration, &'h AppliedMigration)>,
    unknown: Vec<&'h AppliedMigration>,
    out_of_order: Vec<&'static Migration>,
    newest: Option<&'h AppliedMigration>,
}

fn analyze<'h>(known: &[&'static Migration], history: &'h [AppliedMigration]) -> Analysis<'h> {
    let applied: BTreeMap<i64, &AppliedMigration> =
        history.iter().map(|a| (a.version, a)).collect();
    let known_versions: BTreeSet<i64> = known.iter().map(|m| m.version()).collect();
    let newest = history.iter().max_by_key(|a| a.version);
    let mut a = Analysis {
        pending: Vec::new(),
        changed: Vec::new(),
        unknown: history
            .iter()
            .filter(|h| !known_versions.contains(&h.version))
            .collect(),
        out_of_order: Vec::new(),
        newest,
    };
    for &m in known {
        match applied.get(&m.version()) {
            Some(row) if row.checksum != m.checksum().to_hex() => a.changed.push((m, row)),
            Some(_) => {}
            None => {
                if newest.is_some_and(|n| n.version > m.version()) {
                    a.out_of_order.push(m);
                }
                a.pending.push(m);
            }
        }
    }
    a
}

fn id_of(a: &AppliedMigration) -> MigrationId {
    MigrationId {
        version: a.version,
        name: a.name.clone(),
    }
}

impl<'s> Migrator<'s> {
    /// A migrator for the migrations of `role` in `source`.
    pub fn new(source: &'s Source, role: &str) -> Self {
        Migrator {
            source,
            role: role.to_string(),
            lock_timeout: Duration::from_secs(60),
            allow_unknown: false,
            allow_out_of_order: false,
        }
    }

    /// How long to wait for another process that is migrating the same database (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Proceed although the database has migrations applied that this binary does not know
    /// (a deliberate rollback of the binary). Default: refuse.
    pub fn allow_unknown(mut self, allow: bool) -> Self {
        self.allow_unknown = allow;
        self
    }

    /// Apply pending migrations older than the newest applied one (merged from a parallel
    /// branch). Default: refuse.
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.allow_out_of_order = allow;
        self
    }

    /// The role this migrator handles.
    pub fn role(&self) -> &str {
        &self.role
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
        let state = match store::open_ro(path, self.lock_timeout)? {
            Some(conn) => {
                let state = read_snapshot(&conn, path)?;
                self.check_role(&state, path)?;
                state
            }
            None => State::default(),
        };
        let analysis = analyze(&known, &state.history);
        let changed: BTreeMap<i64, &AppliedMigration> = analysis
            .changed
            .iter()
            .map(|(m, a)| (m.version(), *a))
            .collect();
        let ooo: BTreeSet<i64> = analysis.out_of_order.iter().map(|m| m.version()).collect();
        let applied: BTreeMap<i64, &AppliedMigration> =
            state.history.iter().map(|a| (a.version, a)).collect();
        let mut migrations: Vec<MigrationStatus> = known
            .iter()
            .map(|m| {
                let row = applied.get(&m.version());
                let state = if changed.contains_key(&m.version()) {
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
                    checksum: Some(m.checksum().to_hex()),
                    applied_checksum: row.map(|r| r.checksum.clone()),
                    applied_at: row.map(|r| r.applied_at.clone()),
                    duration_ms: row.map(|r| r.duration_ms),
                    applied_by: row.map(|r| r.applied_by.clone()),
                }
            })
            .collect();
        migrations.extend(analysis.unknown.iter().map(|a| MigrationStatus {
            version: a.version,
            name: a.name.clone(),
            description: String::new(),
            state: MigrationState::Unknown,
            checksum: None,
            applied_checksum: Some(a.checksum.clone()),
            applied_at: Some(a.applied_at.clone()),
            duration_ms: Some(a.duration_ms),
            applied_by: Some(a.applied_by.clone()),
        }));
        migrations.sort_by_key(|m| m.version);
        Ok(Status {
            path: path.to_path_buf(),
            role: self.role.clone(),
            initialized: state.role.is_some(),
            version: state.history.iter().map(|a| a.version).max(),
            migrations,
        })
    }

    /// Brings the database at `path` up to date, creating it if missing.
    ///
    /// Each migration runs in its own `BEGIN IMMEDIATE` transaction together with its history
    /// row and audit event, so after a crash it is either applied and recorded or absent.
    /// Processes migrating the same file at once serialise on SQLite's write lock and apply
    /// each migration exactly once; a crashed process releases the lock with its file handles.
    ///
    /// # Errors
    ///
    /// Besides the errors of [`Migrator::status`]: [`Error::ChecksumMismatch`],
    /// [`Error::UnknownApplied`] and [`Error::OutOfOrder`] before anything is applied (recorded
    /// as `refused` events), [`Error::MigrationFailed`] and [`Error::ForeignKeyViolation`] when a
    /// migration fails (rolled back, recorded as a `failed` event; earlier migrations stay
    /// applied), [`Error::LockTimeout`] when another process migrates for too long.
    pub fn run(&self, path: &Path) -> Result<Report> {
        let known = self.source.for_role(&self.role)?;
        let conn = store::open_rw(path, self.lock_timeout)?;
        Run {
            migrator: self,
            conn: &conn,
            path,
            known: &known,
        }
        .run()
    }

    fn check_role(&self, state: &State, path: &Path) -> Result<()> {
        match &state.role {
            Some(role) if *role != self.role => Err(Error::WrongRole {
                path: path.to_path_buf(),
                expected: self.role.clone(),
                found: role.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The first policy violation, if any.
    fn policy(&self, a: &Analysis<'_>, path: &Path) -> Result<()> {
        if let Some((m, row)) = a.changed.first() {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                id: m.id(),
                applied: row.checksum.clone(),
                compiled: m.checksum().to_hex(),
            });
        }
        if !a.unknown.is_empty() && !self.allow_unknown {
            return Err(Error::UnknownApplied {
                path: path.to_path_buf(),
                unknown: a.unknown.iter().map(|r| id_of(r)).collect(),
            });
        }
        if let (Some(m), Some(newest)) = (a.out_of_order.first(), a.newest)
            && !self.allow_out_of_order
        {
            return Err(Error::OutOfOrder {
                path: path.to_path_buf(),
                id: m.id(),
                newest: id_of(newest),
            });
        }
        Ok(())
    }
}

/// Reads the state in one read transaction, so history and lease agree.
fn read_snapshot(conn: &Connection, path: &Path) -> Result<State> {
    conn.execute_batch("BEGIN DEFERRED")?;
    let state = store::read_state(conn, path);
    conn.execute_batch("COMMIT")?;
    state
}

/// One run of a migrator over one open database.
struct Run<'a, 's> {
    migrator: &'a Migrator<'s>,
    conn: &'a Connection,
    path: &'a Path,
    known: &'a [&'static Migration],
}

/// What to do after taking the write lock.
enum Step {
    /// Nothing left to apply: commit and finish.
    Done,
    /// Commit what was written (initialisation, events) and look again at once.
    Continue,
    /// Another process holds the lease of a `no_transaction` migration: commit and wait.
    Wait(store::Lease),
    /// Apply this migration inside the open transaction (or, for `no_transaction`, under a
    /// lease).
    Apply(&'static Migration),
}

impl Run<'_, '_> {
    fn run(&self) -> Result<Report> {
        let mut report = Report {
            path: self.path.to_path_buf(),
            role: self.migrator.role.clone(),
            applied: Vec::new(),
            version: None,
            created: false,
        };
        // Fast path: up to date, checked from one read snapshot without taking the write lock.
        let state = self.snapshot()?;
        self.migrator.check_role(&state, self.path)?;
        let analysis = analyze(self.known, &state.history);
        // A refusal is not taken here: the slow path records it in the audit log.
        if state.role.is_some()
            && analysis.pending.is_empty()
            && state.lease.is_none()
            && self.migrator.policy(&analysis, self.path).is_ok()
        {
            report.version = state.history.last().map(|a| a.version);
            return Ok(report);
        }

        // The lock timeout bounds waiting without progress: each wait for SQLite's write lock
        // is bounded by the busy timeout, and a wait for another process's lease restarts when
        // that lease changes hands.
        let mut waiting_for: Option<(store::Lease, Instant)> = None;
        let mut started = false;
        loop {
            let next = {
                let state = self.snapshot()?;
                analyze(self.known, &state.history).pending.first().copied()
            };
            let fk_off = next.is_some_and(|m| m.foreign_keys() == ForeignKeys::Off);
            let fk_guard = ForeignKeysOff::new(self.conn, fk_off)?;
            self.begin_immediate()?;
            let step = match self.locked_step(next, &mut started, &mut report) {
                Ok(step) => step,
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            };
            match step {
                Step::Done => {
                    self.conn.execute_batch("COMMIT")?;
                    break;
                }
                Step::Continue => self.conn.execute_batch("COMMIT")?,
                Step::Wait(lease) => {
                    self.conn.execute_batch("COMMIT")?;
                    drop(fk_guard);
                    let since = match &waiting_for {
                        Some((held, since)) if *held == lease => *since,
                        _ => Instant::now(),
                    };
                    if since.elapsed() >= self.migrator.lock_timeout {
                        return Err(self.lock_timeout(Some(lease.holder)));
                    }
                    waiting_for = Some((lease, since));
                    std::thread::sleep(Duration::from_millis(50));
                }
                Step::Apply(m) if m.transactional() => {
                    let applied = self.apply_in_transaction(m);
                    drop(fk_guard);
                    report.applied.push(applied?);
                }
                Step::Apply(m) => {
                    let applied = self.apply_without_transaction(m);
                    drop(fk_guard);
                    report.applied.push(applied?);
                }
            }
        }
        report.version = store::read_history(self.conn)?.last().map(|a| a.version);
        Ok(report)
    }

    /// A read snapshot; a reader kept out for the whole lock timeout (a writer holding the
    /// exclusive lock) is a lock timeout.
    fn snapshot(&self) -> Result<State> {
        read_snapshot(self.conn, self.path).map_err(|e| match e {
            Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                self.lock_timeout(None)
            }
            e => e,
        })
    }

    fn lock_timeout(&self, holder: Option<String>) -> Error {
        Error::LockTimeout {
            path: self.path.to_path_buf(),
            waited: self.migrator.lock_timeout,
            holder,
        }
    }

    /// Takes SQLite's write lock, waiting up to the lock timeout (the connection's busy timeout)
    /// for another process's transaction to end.
    fn begin_immediate(&self) -> Result<()> {
        match self.conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                Err(self.lock_timeout(None))
            }
            Err(e) => Err(store::file_error(self.path, e)),
        }
    }

    /// Under the write lock: initialise, validate, and pick the migration to apply.
    fn locked_step(
        &self,
        expected: Option<&'static Migration>,
        started: &mut bool,
        report: &mut Report,
    ) -> Result<Step> {
        let mut state = store::read_state(self.conn, self.path)?;
        self.migrator.check_role(&state, self.path)?;
        if state.role.is_none() {
            store::initialize(self.conn, &self.migrator.role)?;
            report.created = true;
            state.role = Some(self.migrator.role.clone());
        }
        let analysis = analyze(self.known, &state.history);
        if let Err(e) = self.migrator.policy(&analysis, self.path) {
            // The refusal is kept in the audit log; nothing else is written.
            store::record_event(self.conn, event::REFUSED, None, &e.to_string())?;
            self.conn.execute_batch("COMMIT")?;
            return Err(e);
        }
        if let Some(lease) = &state.lease {
            if !lease.is_stale() {
                return Ok(Step::Wait(lease.clone()));
            }
            self.conn.execute("DELETE FROM strata_lease", [])?;
            store::record_event(
                self.conn,
                event::LEASE_RECOVERED,
                Some((lease.version, "")),
                &format!(
                    "{} died while running a no_transaction migration; it runs again",
                    lease.holder
                ),
            )?;
        }
        let Some(next) = analysis.pending.first().copied() else {
            return Ok(Step::Done);
        };
        if !*started {
            let list: Vec<String> = analysis
                .pending
                .iter()
                .map(|m| m.id().to_string())
                .collect();
            store::record_event(
                self.conn,
                event::RUN_STARTED,
                None,
                &format!("pending: {}", list.join(", ")),
            )?;
            *started = true;
            // Committed on its own, so that it survives a failure of the first migration.
            return Ok(Step::Continue);
        }
        // Foreign-key handling was set up for `expected`; if another process moved on, look
        // again rather than run a migration without it.
        if expected.map(|m| m.version()) != Some(next.version()) {
            return Ok(Step::Continue);
        }
        Ok(Step::Apply(next))
    }

    /// Runs `m` inside the open `BEGIN IMMEDIATE` transaction and commits it with its history
    /// row, or rolls back and records the failure.
    fn apply_in_transaction(&self, m: &'static Migration) -> Result<Applied> {
        let fk_check = m.foreign_keys() == ForeignKeys::Off;
        let outcome = (|| {
            let before = if fk_check {
                fk_violations(self.conn)?
            } else {
                BTreeSet::new()
            };
            let t0 = Instant::now();
            (m.up_fn())(&mut Tx::new(self.conn, Some(m)))?;
            if self.conn.is_autocommit() {
                return Err(Error::Usage(format!(
                    "migration {} ended the transaction itself (COMMIT or ROLLBACK in its SQL); \
                     mark it `no_transaction` if it must manage transactions",
                    m.id()
                )));
            }
            if fk_check {
                let new: Vec<_> = fk_violations(self.conn)?
                    .difference(&before)
                    .cloned()
                    .collect();
                if !new.is_empty() {
                    return Err(Error::ForeignKeyViolation {
                        id: m.id(),
                        violations: describe_violations(&new),
                    });
                }
            }
            let applied = self.record_success(m, t0.elapsed())?;
            self.conn.execute_batch("COMMIT")?;
            Ok(applied)
        })();
        match outcome {
            Ok(applied) => Ok(applied),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(self.failed(m, e))
            }
        }
    }

    /// Runs a `no_transaction` migration under a lease, then records it.
    fn apply_without_transaction(&self, m: &'static Migration) -> Result<Applied> {
        self.conn.execute(
            "INSERT INTO strata_lease (id, holder, host, pid, version, acquired_at) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                store::actor(),
                store::hostname(),
                std::process::id(),
                m.version(),
                store::now()
            ],
        )?;
        self.conn.execute_batch("COMMIT")?;
        let t0 = Instant::now();
        let mut result = (m.up_fn())(&mut Tx::new(self.conn, Some(m)));
        let duration = t0.elapsed();
        if result.is_ok() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
            result = Err(Error::Usage(format!(
                "no_transaction migration {} left a transaction open; it was rolled back",
                m.id()
            )));
        }
        self.begin_immediate()?;
        // Outer error: recording failed; inner: the migration's own outcome.
        let recorded = (|| -> Result<Result<Applied>> {
            self.conn.execute("DELETE FROM strata_lease", [])?;
            Ok(match result {
                Ok(()) => Ok(self.record_success(m, duration)?),
                Err(e) => Err(e),
            })
        })();
        match recorded {
            Ok(outcome) => {
                self.conn.execute_batch("COMMIT")?;
                outcome.map_err(|e| self.failed(m, e))
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Writes the history row and the `applied` event, inside the open transaction.
    fn record_success(&self, m: &'static Migration, duration: Duration) -> Result<Applied> {
        let checksum = m.checksum().to_hex();
        store::record_applied(self.conn, m.version(), m.name(), &checksum, duration)?;
        store::record_event(self.conn, event::APPLIED, Some((m.version(), m.name())), "")?;
        Ok(Applied {
            version: m.version(),
            name: m.name().to_string(),
            duration_ms: duration.as_secs_f64() * 1e3,
        })
    }

    /// Records a `failed` event in its own transaction and builds the error to return.
    fn failed(&self, m: &'static Migration, e: Error) -> Error {
        let error = match e {
            e @ Error::ForeignKeyViolation { .. } => e,
            e => Error::MigrationFailed {
                id: m.id(),
                source: Box::new(e),
            },
        };
        let recorded = self.begin_immediate().and_then(|()| {
            store::record_event(
                self.conn,
                event::FAILED,
                Some((m.version(), m.name())),
                &error.to_string(),
            )?;
            Ok(self.conn.execute_batch("COMMIT")?)
        });
        if recorded.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        error
    }
}

/// Switches foreign-key enforcement off (outside any transaction, where SQLite honours it)
/// and restores it when dropped.
struct ForeignKeysOff<'c> {
    conn: &'c Connection,
    restore: bool,
}

impl<'c> ForeignKeysOff<'c> {
    fn new(conn: &'c Connection, off: bool) -> Result<Self> {
        let mut restore = false;
        if off {
            restore = conn.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, bool>(0))?;
            conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        }
        Ok(ForeignKeysOff { conn, restore })
    }
}

impl Drop for ForeignKeysOff<'_> {
    fn drop(&mut self) {
        if self.restore {
            let _ = self.conn.execute_batch("PRAGMA foreign_keys = ON");
        }
    }
}

type Violation = (String, Option<i64>, String, i64);

fn fk_violations(conn: &Connection) -> Result<BTreeSet<Violation>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn describe_violations(v: &[Violation]) -> String {
    let mut parts: Vec<String> = v
        .iter()
        .take(5)
        .map(|(table, rowid, parent, _)| {
            let row = rowid.map(|r| format!(" rowid {r}")).unwrap_or_default();
            format!("`{table}`{row} references a missing row of `{parent}`")
        })
        .collect();
    if v.len() > 5 {
        parts.push(format!("and {} more", v.len() - 5));
    }
    parts.join("; ")
}
