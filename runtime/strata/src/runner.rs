//! The runner behind [`Migrator`](crate::Migrator): applies or reverts migrations on one open
//! database, each in a `BEGIN IMMEDIATE` transaction — of its own, or shared by consecutive
//! plain migrations for up to [`crate::Options::group_for`], each in a savepoint (group commit).
//!
//! Every step that decides something reads the history under SQLite's write lock, so processes
//! migrating the same file at once apply each migration exactly once. Between two transactions
//! the lock is released; the next step checks, with one cheap query, that nobody else moved on
//! meanwhile, and starts over from a full read if somebody did.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::analysis::{Analysis, analyze, id_of};
use crate::backup;
use crate::class::{Class, classify};
use crate::error::{DroppedTable, Error, MigrationId, Result};
use crate::import;
use crate::inspect::SchemaSnapshot;
use crate::instances::{self, Instance};
use crate::migration::{ForeignKeys, Migration, MigrationFn};
use crate::options::Options;
use crate::report::{Applied, Deferred, Report};
use crate::store::{self, AppliedMigration, Lease, State, event};
use crate::tx::Tx;

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Up,
    Down,
}

/// One run over one open database.
pub(crate) struct Runner<'a> {
    pub options: &'a Options,
    pub role: &'a str,
    pub conn: &'a Connection,
    pub path: &'a Path,
    pub known: &'a [&'static Migration],
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
}

/// A group member: the migration, and what applying it reported.
type GroupMember = (&'static Migration, Applied);

/// Consecutive plain migrations applied in one transaction (group commit).
struct Group {
    /// When the transaction began.
    since: Instant,
    /// Applied inside it, in order; reported once it commits.
    members: Vec<GroupMember>,
}

/// How one group member went.
enum Member {
    /// Applied, in the open transaction.
    Applied(Applied),
    /// Applied, but its SQL ended the group's transaction and began another: the one open now.
    Restarted(Applied),
    /// Failed and undone; the group's earlier members are intact in the open transaction.
    Undone(Error),
    /// Failed, and the whole transaction ended with it.
    Lost(Error),
}

/// `, rolled back with it: V name, …` for a failed event (nothing when `lost` is empty).
fn rolled_back_with(lost: &[GroupMember]) -> String {
    if lost.is_empty() {
        return String::new();
    }
    let names: Vec<String> = lost
        .iter()
        .map(|(m, _)| format!("{} {}", m.version(), m.name()))
        .collect();
    format!(
        "; rolled back with it (same transaction), to be applied again: {}",
        names.join(", ")
    )
}

/// Deferred foreign-key constraints violated in the connection's open transaction (what makes
/// its `COMMIT` fail), from `sqlite3_db_status(SQLITE_DBSTATUS_DEFERRED_FKS)`.
fn deferred_foreign_key_violations(conn: &Connection) -> i32 {
    let (mut current, mut highest) = (0, 0);
    // SAFETY: `conn.handle()` is the live handle of `conn`, borrowed for this call; the
    // status call only reads a counter of that connection into the two integers.
    #[allow(unsafe_code)]
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_DEFERRED_FKS,
            &mut current,
            &mut highest,
            0,
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        current
    } else {
        0
    }
}

/// What to do after the planning step under the write lock.
enum Plan {
    /// Nothing to do: commit and finish.
    Done,
    /// Another process holds the lease of a `no_transaction` migration: commit and wait.
    Wait(Lease),
    /// Something was done (an existing database adopted): commit and plan again.
    Again,
    /// Run these, in order; `history` is (row count, newest version) as they start.
    Run {
        migrations: Vec<&'static Migration>,
        history: (i64, Option<i64>),
    },
}

impl Runner<'_> {
    pub(crate) fn report(&self) -> Report {
        Report::empty(self.path, self.role)
    }

    /// Applies pending migrations (up to the target version, if any).
    pub(crate) fn up(&self) -> Result<Report> {
        let mut report = self.report();
        // Fast path: up to date, checked from one read snapshot without taking the write lock.
        if let Some(version) = self.up_to_date()? {
            report.version = version;
            return Ok(report);
        }
        self.drive(DirectionTarget::Up, &mut report)?;
        Ok(report)
    }

    /// Reverts applied migrations newer than `target`, newest first.
    pub(crate) fn down(&self, target: i64) -> Result<Report> {
        let mut report = self.report();
        self.drive(DirectionTarget::Down(target), &mut report)?;
        Ok(report)
    }

    /// The startup check: `Some(newest version)` when the database is initialised for this
    /// role, no lease is held, and its history is exactly the binary's migrations (up to the
    /// target) with matching checksums. Anything else (`None`) goes the slow way, which explains
    /// or fixes it.
    ///
    /// One read lock, one statement: the pragma takes the lock (reading no schema), SQLite
    /// loads the schema under it, Strata's tables are looked up in that schema, and a single
    /// query returns the role's row (whether it is this role), a row per lease, then the
    /// history's versions and checksums, compared in place without allocating per row. The
    /// rows come in that order, the history's by version (its rowid); were they not, the check
    /// fails and the slow path decides. `+key` scans the few rows of `strata_meta` instead of
    /// reading its key's index too.
    fn up_to_date(&self) -> Result<Option<Option<i64>>> {
        let check = || -> Result<Option<Option<i64>>> {
            // The first read: takes the read lock (and checks the file is a database).
            self.conn
                .query_row("PRAGMA schema_version", [], |_| Ok(()))?;
            for table in [store::META_TABLE, store::LEASE_TABLE, store::HISTORY_TABLE] {
                if !self.conn.table_exists(None, table)? {
                    return Ok(None);
                }
            }
            let mut stmt = self.conn.prepare(
                "SELECT NULL, value = ?1 FROM strata_meta WHERE +key = 'role' \
                 UNION ALL SELECT NULL, 0 FROM strata_lease \
                 UNION ALL SELECT version, checksum FROM strata_migrations",
            )?;
            let mut rows = stmt.query([self.role])?;
            let mut expected = self
                .known
                .iter()
                .filter(|m| self.options.target.is_none_or(|t| m.version() <= t))
                .peekable();
            let mut newest = None;
            // This role's row seen (before any history row).
            let mut role = false;
            while let Some(row) = rows.next()? {
                let Some(version) = row.get::<_, Option<i64>>(0)? else {
                    // The role's row, or a lease held.
                    role = row.get::<_, bool>(1)? && !role && newest.is_none();
                    if !role {
                        return Ok(None);
                    }
                    continue;
                };
                let matches = match expected.next() {
                    Some(m) if role => {
                        m.version() == version
                            && row
                                .get_ref(1)?
                                .as_str()
                                .is_ok_and(|c| m.checksum().matches_hex(c))
                    }
                    _ => false,
                };
                if !matches {
                    return Ok(None);
                }
                newest = Some(version);
            }
            Ok((role && expected.peek().is_none()).then_some(newest))
        };
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let result = check();
        self.conn.execute_batch("COMMIT")?;
        result.map_err(|e| match e {
            Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                self.lock_timeout(None)
            }
            Error::Sqlite(e) => store::file_error(self.path, e),
            e => e,
        })
    }

    fn in_target(&self, pending: &[&'static Migration]) -> Vec<&'static Migration> {
        pending
            .iter()
            .copied()
            .filter(|m| self.options.target.is_none_or(|t| m.version() <= t))
            .collect()
    }

    /// Plans under the lock, then runs the planned migrations, a transaction each or plain
    /// neighbours grouped (see [`crate::Options::group_for`]); starts over
    /// when another process changed the history in between.
    fn drive(&self, direction: DirectionTarget, report: &mut Report) -> Result<()> {
        let mut waiting_for: Option<(Lease, Instant)> = None;
        let mut started = false;
        // The data version read inside this connection's previous transaction (the plan's or a
        // migration's): its own commits do not change it, so the next `BEGIN IMMEDIATE` needs
        // no read (and lock) of its own.
        let mut seen: Option<i64>;
        'plan: loop {
            self.begin_immediate()?;
            seen = self.data_version();
            let plan = match self.plan(direction, &mut started, report) {
                Ok(plan) => plan,
                Err(e) => {
                    self.rollback();
                    return Err(e);
                }
            };
            self.conn.execute_batch("COMMIT")?;
            let (migrations, mut history) = match plan {
                Plan::Done => break,
                Plan::Again => continue,
                Plan::Wait(lease) => {
                    let since = match &waiting_for {
                        Some((held, since)) if *held == lease => *since,
                        _ => Instant::now(),
                    };
                    if since.elapsed() >= self.options.lock_timeout {
                        return Err(self.lock_timeout(Some(lease.holder)));
                    }
                    waiting_for = Some((lease, since));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Plan::Run {
                    migrations,
                    history,
                } => (migrations, history),
            };
            // The open group (see `Options::group_for`): its migrations are applied inside one
            // transaction and reported once it commits.
            let mut group: Option<Group> = None;
            for m in migrations {
                if self
                    .stop
                    .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
                {
                    report.stopped = true;
                    self.close_group(&mut group, report)?;
                    break 'plan;
                }
                let grouped = direction == DirectionTarget::Up && self.groupable(m);
                if group
                    .as_ref()
                    .is_some_and(|g| !grouped || g.since.elapsed() >= self.group_window())
                {
                    self.close_group(&mut group, report)?;
                }
                if grouped {
                    let open = match &mut group {
                        Some(open) => open,
                        None => {
                            if !self.begin_step(&mut seen, history)? {
                                continue 'plan;
                            }
                            group.insert(Group {
                                since: Instant::now(),
                                members: Vec::new(),
                            })
                        }
                    };
                    match self.execute_grouped(m) {
                        Member::Applied(done) => {
                            history = (
                                history.0 + 1,
                                Some(history.1.map_or(m.version(), |v| v.max(m.version()))),
                            );
                            open.members.push((m, done));
                        }
                        Member::Restarted(done) => {
                            // The migration's SQL ended the group's transaction and began
                            // another, which holds the rest of it and its history row: commit
                            // that, as a transaction of its own would have.
                            let mut members = group.take().map(|g| g.members).unwrap_or_default();
                            members.push((m, done));
                            let ended = Group {
                                since: Instant::now(),
                                members,
                            };
                            self.close_group(&mut Some(ended), report)?;
                            continue 'plan;
                        }
                        Member::Undone(e) => {
                            // Only this migration was undone: the group's earlier ones commit,
                            // as they would have one by one.
                            let members = group.take().map(|g| g.members).unwrap_or_default();
                            let lost = match self.exec_cached("COMMIT") {
                                Ok(()) => Vec::new(),
                                Err(_) => {
                                    self.rollback();
                                    members
                                }
                            };
                            return Err(self.failed_with(m, Direction::Up, e, &lost));
                        }
                        Member::Lost(e) => {
                            // SQLite (on a full disk, an I/O error) or the migration's SQL
                            // ended the whole transaction: the earlier ones went with it, unless
                            // the migration committed them (their history rows say which).
                            let members = group.take().map(|g| g.members).unwrap_or_default();
                            let lost = self.not_recorded(members);
                            return Err(self.failed_with(m, Direction::Up, e, &lost));
                        }
                    }
                    continue;
                }
                let fk_guard =
                    ForeignKeysOff::new(self.conn, m.foreign_keys() == ForeignKeys::Off)?;
                if !self.begin_step(&mut seen, history)? {
                    continue 'plan;
                }
                // An older instance may have registered since the plan (registering changes no
                // history): a contract is checked again under this very lock.
                if direction == DirectionTarget::Up
                    && self.options.contract_now.is_none()
                    && classify(self.known, m).class == Class::Contract
                    && !instances::blocking(self.conn, m.version())?.is_empty()
                {
                    self.rollback();
                    continue 'plan;
                }
                let dir = direction.direction();
                let done = self.execute(m, dir);
                drop(fk_guard);
                let done = done?;
                match dir {
                    Direction::Up => {
                        history = (
                            history.0 + 1,
                            Some(history.1.map_or(m.version(), |v| v.max(m.version()))),
                        );
                        report.applied.push(done);
                    }
                    Direction::Down => {
                        history = (history.0 - 1, self.newest_applied()?);
                        report.reverted.push(done);
                    }
                }
            }
            self.close_group(&mut group, report)?;
            break;
        }
        report.version = self.newest_applied()?;
        Ok(())
    }

    /// Takes the write lock for the next step and checks that nobody else moved the history
    /// on since `history` was seen; `false` (rolled back) if somebody did: plan again.
    fn begin_step(&self, seen: &mut Option<i64>, history: (i64, Option<i64>)) -> Result<bool> {
        match seen.take() {
            Some(version) => self.begin_immediate_since(Some(version))?,
            None => self.begin_immediate()?,
        }
        *seen = self.data_version();
        if self.history_marker()? != (history.0, history.1, 0) {
            // Another process applied, reverted or leased something.
            self.rollback();
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether `m` may share a transaction with its neighbours: it runs in one, keeps foreign
    /// keys on (switching them off needs no open transaction), is no contract (checked against
    /// live instances under its own lock) and adopts no imported history.
    fn groupable(&self, m: &'static Migration) -> bool {
        !self.group_window().is_zero()
            && m.transactional()
            && m.foreign_keys() != ForeignKeys::Off
            && m.imported().is_none()
            && classify(self.known, m).class != Class::Contract
    }

    /// How long a group's transaction may stay open before it commits: `group_for`, but at
    /// most half the lock timeout, so that another process waiting for the lock sees commits
    /// (progress) within its timeout.
    fn group_window(&self) -> Duration {
        self.options.group_for.min(self.options.lock_timeout / 2)
    }

    /// Commits the open group, if any, and reports its migrations applied. A failed commit
    /// (the disk, or the lock for the commit not granted within the timeout) rolls the group
    /// back and fails its last migration, naming the others in the `failed` event.
    fn close_group(&self, group: &mut Option<Group>, report: &mut Report) -> Result<()> {
        let Some(mut open) = group.take() else {
            return Ok(());
        };
        match self.exec_cached("COMMIT") {
            Ok(()) => {
                report
                    .applied
                    .extend(open.members.into_iter().map(|(_, done)| done));
                Ok(())
            }
            Err(e) => {
                self.rollback();
                let Some((last, _)) = open.members.pop() else {
                    return Err(store::file_error(self.path, e));
                };
                Err(self.failed_with(last, Direction::Up, e.into(), &open.members))
            }
        }
    }

    /// Of a group's members whose transaction ended abnormally, those whose history rows are
    /// not in the database (rolled back with it).
    fn not_recorded(&self, members: Vec<(&'static Migration, Applied)>) -> Vec<GroupMember> {
        members
            .into_iter()
            .filter(|(m, _)| {
                !self
                    .conn
                    .query_row(
                        "SELECT count(*) > 0 FROM strata_migrations WHERE version = ?1",
                        [m.version()],
                        |r| r.get::<_, bool>(0),
                    )
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Runs plain migration `m` up inside the open group's transaction, in a savepoint of its
    /// own, and checks at its end what its own commit would have: no deferred foreign key left
    /// violated. `PRAGMA defer_foreign_keys`, which a commit resets, is reset after it too.
    fn execute_grouped(&self, m: &'static Migration) -> Member {
        if let Err(e) = self.exec_cached("SAVEPOINT strata_group_member") {
            return self.member_failed(e.into());
        }
        let outcome = self
            .run_recorded(m, m.up_fn(), Direction::Up)
            .and_then(|done| {
                if deferred_foreign_key_violations(self.conn) > 0 {
                    // What `COMMIT` answers a transaction of its own in this state.
                    return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                        Some("FOREIGN KEY constraint failed".to_string()),
                    )));
                }
                Ok(done)
            });
        let done = match outcome {
            Ok(done) => done,
            Err(e) => return self.member_failed(e),
        };
        match self
            .exec_cached("RELEASE strata_group_member")
            .and_then(|()| self.exec_cached("PRAGMA defer_foreign_keys = OFF"))
        {
            Ok(()) => Member::Applied(done),
            // The savepoint is gone but a transaction is open: the migration's SQL committed
            // (or rolled back) the group's and began its own.
            Err(_) if !self.conn.is_autocommit() => Member::Restarted(done),
            Err(e) => Member::Lost(e.into()),
        }
    }

    /// Undoes a failed group member, leaving the earlier ones in the open transaction.
    fn member_failed(&self, e: Error) -> Member {
        if self.conn.is_autocommit() {
            return Member::Lost(e);
        }
        let undone = self
            .exec_cached("ROLLBACK TO strata_group_member")
            .and_then(|()| self.exec_cached("RELEASE strata_group_member"))
            .and_then(|()| self.exec_cached("PRAGMA defer_foreign_keys = OFF"));
        match undone {
            Ok(()) => Member::Undone(e),
            Err(_) => {
                self.rollback();
                Member::Lost(e)
            }
        }
    }

    /// Under the write lock: initialise, validate, wait for leases, back up, and decide what to
    /// run.
    fn plan(
        &self,
        direction: DirectionTarget,
        started: &mut bool,
        report: &mut Report,
    ) -> Result<Plan> {
        // A database another tool made (its history table present) whose migrations were
        // imported: new to Strata, but holding data (backed up) and the peer's history.
        let mut peer_made = false;
        let mut state = match store::read_state(self.conn, self.path) {
            Err(Error::ForeignDatabase { .. })
                if direction == DirectionTarget::Up && self.baseline().is_some() =>
            {
                self.adopt(report)?;
                return Ok(Plan::Again);
            }
            Err(Error::ForeignDatabase { .. })
                if direction == DirectionTarget::Up
                    && import::claims_peer_history(self.conn, self.known)? =>
            {
                peer_made = true;
                State::default()
            }
            other => other?,
        };
        self.check_role(&state)?;
        let fresh = state.role.is_none();
        let analysis = analyze(self.known, &state.history);
        if let Err(e) = self.policy_for(direction, &analysis) {
            if !fresh {
                // The refusal is kept in the audit log; nothing else is written.
                let recorded = store::record_event(self.conn, event::REFUSED, None, &e.to_string())
                    .and_then(|()| Ok(self.conn.execute_batch("COMMIT")?));
                if recorded.is_err() {
                    self.rollback();
                }
            }
            return Err(e);
        }
        if let Some(lease) = &state.lease {
            if !lease.is_stale() {
                return Ok(Plan::Wait(lease.clone()));
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
            state.lease = None;
        }
        let migrations = match direction {
            DirectionTarget::Up => {
                let pending = self.in_target(&analysis.pending);
                let (now, deferred) = self.defer_contracts(pending)?;
                report.deferred = deferred;
                now
            }
            DirectionTarget::Down(target) => {
                let revert = self.to_revert(&state, target)?;
                if !revert.is_empty() && !self.options.allow_data_loss {
                    let tables = rows_lost(
                        self.conn,
                        self.options,
                        self.role,
                        self.known,
                        &state,
                        target,
                    )?;
                    if !tables.is_empty() {
                        return Err(Error::DataLoss {
                            path: self.path.to_path_buf(),
                            target,
                            tables,
                        });
                    }
                }
                revert
            }
        };
        if migrations.is_empty() {
            return Ok(Plan::Done);
        }
        // Imported migrations their peer applied are recorded without running; every one is
        // checked before anything of the run is written.
        let adopting = match direction {
            DirectionTarget::Up => import::check_pending(
                self.conn,
                self.path,
                self.known,
                &migrations,
                self.options.allow_unknown,
            )?,
            DirectionTarget::Down(_) => BTreeSet::new(),
        };
        // The last one adopted must find the schema it declares.
        if let Some(last) = adopting
            .last()
            .and_then(|v| migrations.iter().find(|m| m.version() == *v))
        {
            self.check_adopted_schema(last)?;
        }
        if direction == DirectionTarget::Up && !fresh {
            store::ensure_class_column(self.conn)?;
        }
        if direction == DirectionTarget::Up && self.options.require_approval {
            let approved = if fresh {
                BTreeSet::new()
            } else {
                store::approved_versions(self.conn, self.known)?
            };
            let waiting: Vec<MigrationId> = migrations
                .iter()
                .filter(|m| !approved.contains(&m.version()) && !adopting.contains(&m.version()))
                .map(|m| m.id())
                .collect();
            if !waiting.is_empty() {
                return Err(Error::ApprovalRequired {
                    path: self.path.to_path_buf(),
                    pending: waiting,
                });
            }
        }
        if !*started {
            // Strata's tables first (uncommitted, so the backup copy has none of them): the
            // backup of a database another tool made is recorded in them.
            if fresh {
                store::initialize(self.conn, self.role)?;
                report.created = true;
            }
            // The backup copies the database before anything of this run is written, while
            // this transaction holds the write lock so that no other process changes it.
            if let (false, Some(policy)) = (fresh && !peer_made, &self.options.backup) {
                let version = state.history.last().map(|a| a.version);
                let file = backup::take(&self.database_file()?, version, policy)?;
                store::record_event(
                    self.conn,
                    event::BACKED_UP,
                    None,
                    &file.path.display().to_string(),
                )?;
                report.backup = Some(file.path);
            }
            let list: Vec<String> = migrations.iter().map(|m| m.id().to_string()).collect();
            let detail = match direction {
                DirectionTarget::Up => format!("pending: {}", list.join(", ")),
                DirectionTarget::Down(t) => format!("revert to {t}: {}", list.join(", ")),
            };
            store::record_event(self.conn, event::RUN_STARTED, None, &detail)?;
            *started = true;
        }
        let history = (
            state.history.len() as i64,
            state.history.last().map(|a| a.version),
        );
        Ok(Plan::Run {
            migrations,
            history,
        })
    }

    /// Splits `pending` at the first contract migration that a live instance of an older
    /// binary lacks: what runs now, and what waits (recorded as `deferred`, once per set of
    /// blockers). With `contract_now`, nothing waits and the override is recorded.
    fn defer_contracts(
        &self,
        pending: Vec<&'static Migration>,
    ) -> Result<(Vec<&'static Migration>, Vec<Deferred>)> {
        for (i, &m) in pending.clone().iter().enumerate() {
            let classification = classify(self.known, m);
            if classification.class != Class::Contract {
                continue;
            }
            let blockers = instances::blocking(self.conn, m.version())?;
            if blockers.is_empty() {
                continue;
            }
            let names: Vec<String> = blockers.iter().map(Instance::describe).collect();
            if let Some(who) = &self.options.contract_now {
                store::record_event(
                    self.conn,
                    event::CONTRACT_FORCED,
                    Some((m.version(), m.name())),
                    &format!("forced by {who} while alive: {}", names.join("; ")),
                )?;
                continue;
            }
            let detail = names.join("; ");
            let last: Option<String> = self
                .conn
                .query_row(
                    "SELECT detail FROM strata_events WHERE kind = ?1 AND version = ?2 \
                     ORDER BY id DESC LIMIT 1",
                    rusqlite::params![event::DEFERRED, m.version()],
                    |r| r.get(0),
                )
                .optional()?;
            if last.as_deref() != Some(detail.as_str()) {
                store::record_event(
                    self.conn,
                    event::DEFERRED,
                    Some((m.version(), m.name())),
                    &detail,
                )?;
            }
            let mut pending = pending;
            let later = pending.split_off(i);
            let deferred = later
                .iter()
                .map(|d| Deferred {
                    version: d.version(),
                    name: d.name().to_string(),
                    class: classify(self.known, d).class,
                    blocked_by: if d.version() == m.version() {
                        names.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            return Ok((pending, deferred));
        }
        Ok((pending, Vec::new()))
    }

    /// The instances a contract migration was deferred for, as the audit log recorded them.
    fn waited_for(&self, version: i64) -> Result<Option<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT detail FROM strata_events WHERE kind = ?1 AND version = ?2 ORDER BY id",
        )?;
        let details = stmt.query_map(rusqlite::params![event::DEFERRED, version], |r| {
            r.get::<_, String>(0)
        })?;
        let mut all: Vec<String> = Vec::new();
        for d in details {
            for name in d?.split("; ") {
                if !name.is_empty() && !all.iter().any(|n| n == name) {
                    all.push(name.to_string());
                }
            }
        }
        Ok((!all.is_empty()).then(|| all.join("; ")))
    }

    /// The file behind the connection (backups copy it; the path may be only a label).
    fn database_file(&self) -> Result<PathBuf> {
        match self.conn.path() {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => Err(Error::Backup {
                path: self.path.to_path_buf(),
                message: "an in-memory database cannot be backed up; disable backups for it".into(),
            }),
        }
    }

    /// The role's first migration, if it is a baseline.
    fn baseline(&self) -> Option<&'static Migration> {
        self.known.first().copied().filter(|m| m.is_baseline())
    }

    /// Adopts a database created without Strata: if its schema is exactly the one the baseline
    /// declares, Strata's tables are created and the baseline is recorded as applied without
    /// running it. Under the write lock.
    fn adopt(&self, report: &mut Report) -> Result<()> {
        let baseline = self
            .baseline()
            .expect("adopt is only called with a baseline");
        let schema = baseline.schema().ok_or_else(|| {
            Error::Usage(format!(
                "baseline {} declares no schema (`schema = none`), so it cannot check the database \
                 it adopts",
                baseline.id()
            ))
        })?;
        let declared = Connection::open_in_memory()?;
        for sql in schema.ddl() {
            declared.execute_batch(&sql)?;
        }
        let differences = SchemaSnapshot::read(self.conn)?.diff(&SchemaSnapshot::read(&declared)?);
        if !differences.is_empty() {
            return Err(Error::BaselineMismatch {
                path: self.path.to_path_buf(),
                id: baseline.id(),
                differences: differences.iter().map(ToString::to_string).collect(),
            });
        }
        store::initialize(self.conn, self.role)?;
        store::record_applied(
            self.conn,
            baseline.version(),
            baseline.name(),
            &baseline.checksum().to_hex(),
            Duration::ZERO,
            Class::Expand,
        )?;
        store::record_event(
            self.conn,
            event::BASELINED,
            Some((baseline.version(), baseline.name())),
            "existing database adopted: its schema matches the baseline, which was recorded without running",
        )?;
        report.created = true;
        report.applied.push(Applied {
            version: baseline.version(),
            name: baseline.name().to_string(),
            duration_ms: 0.0,
            rows_changed: 0,
        });
        Ok(())
    }

    /// Applied migrations newer than `target`, newest first; each must be known and have a
    /// `down`.
    fn to_revert(&self, state: &State, target: i64) -> Result<Vec<&'static Migration>> {
        let mut out = Vec::new();
        for row in state.history.iter().rev().filter(|a| a.version > target) {
            let Some(m) = self
                .known
                .iter()
                .copied()
                .find(|m| m.version() == row.version)
            else {
                return Err(Error::UnknownApplied {
                    path: self.path.to_path_buf(),
                    unknown: vec![id_of(row)],
                });
            };
            if !m.has_down() {
                return Err(Error::NoDown {
                    path: self.path.to_path_buf(),
                    target,
                    id: m.id(),
                });
            }
            out.push(m);
        }
        Ok(out)
    }

    pub(crate) fn check_role(&self, state: &State) -> Result<()> {
        match &state.role {
            Some(role) if role != self.role => Err(Error::WrongRole {
                path: self.path.to_path_buf(),
                expected: self.role.to_string(),
                found: role.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The first policy violation, if any.
    pub(crate) fn policy(&self, a: &Analysis<'_>) -> Result<()> {
        policy(self.options, self.path, a)
    }

    /// Reverting only needs checksums to match: an unknown or out-of-order history is what
    /// `down` may be used to clean up, and its own checks name missing code.
    fn policy_for(&self, direction: DirectionTarget, a: &Analysis<'_>) -> Result<()> {
        match direction {
            DirectionTarget::Up => self.policy(a),
            DirectionTarget::Down(_) => checksum_policy(self.path, a),
        }
    }

    /// A read snapshot; a reader kept out for the whole lock timeout (a writer holding the
    /// exclusive lock) is a lock timeout.
    pub(crate) fn snapshot(&self) -> Result<State> {
        let read = || -> Result<State> {
            self.conn.execute_batch("BEGIN DEFERRED")?;
            let state = store::read_state(self.conn, self.path);
            self.conn.execute_batch("COMMIT")?;
            state
        };
        read().map_err(|e| match e {
            Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                self.lock_timeout(None)
            }
            e => e,
        })
    }

    fn lock_timeout(&self, holder: Option<String>) -> Error {
        Error::LockTimeout {
            path: self.path.to_path_buf(),
            waited: self.options.lock_timeout,
            holder,
        }
    }

    /// Takes SQLite's write lock, waiting up to the lock timeout (the connection's busy timeout)
    /// for another process's transaction to end.
    pub(crate) fn begin_immediate(&self) -> Result<()> {
        self.begin_immediate_since(self.data_version())
    }

    /// [`Runner::begin_immediate`], `seen` being the data version as last read (inside this
    /// connection's previous transaction will do: its own commits do not change it).
    fn begin_immediate_since(&self, mut seen: Option<i64>) -> Result<()> {
        // Each attempt waits up to the busy timeout; while other processes keep committing
        // (their migrations make progress), keep waiting.
        loop {
            match self.exec_cached("BEGIN IMMEDIATE") {
                Ok(()) => return Ok(()),
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                    let now = self.data_version();
                    if now.is_none() || now == seen {
                        return Err(self.lock_timeout(None));
                    }
                    seen = now;
                }
                Err(e) => return Err(store::file_error(self.path, e)),
            }
        }
    }

    /// `PRAGMA data_version`: changes whenever another connection commits.
    fn data_version(&self) -> Option<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ok()
    }

    /// Runs `sql`, which returns no rows, prepared once per connection: the statements each
    /// migration's transaction repeats are parsed once per run.
    fn exec_cached(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    pub(crate) fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// (history rows, newest version, leases): what a planned step expects to find. Each in
    /// its own subquery, so that SQLite counts the history's rows from its pages' headers and
    /// finds the newest version at the end of its b-tree, instead of reading every row: this
    /// runs once per migration applied.
    fn history_marker(&self) -> Result<(i64, Option<i64>, i64)> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM strata_migrations), \
                 (SELECT max(version) FROM strata_migrations), (SELECT count(*) FROM strata_lease)",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?)
    }

    fn newest_applied(&self) -> Result<Option<i64>> {
        let has_history: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'strata_migrations'",
            [],
            |r| r.get(0),
        )?;
        if !has_history {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row("SELECT max(version) FROM strata_migrations", [], |r| {
                r.get(0)
            })?)
    }

    /// Runs `m` one way inside the open `BEGIN IMMEDIATE` transaction (or, for `no_transaction`
    /// migrations, under a lease) and records it; on failure rolls back and records that.
    fn execute(&self, m: &'static Migration, direction: Direction) -> Result<Applied> {
        if direction == Direction::Up && m.imported().is_some() {
            let adopted = import::adoption(self.conn, self.path, m)
                .and_then(|detail| detail.map(|d| self.record_adopted(m, &d)).transpose());
            match adopted {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(e) => {
                    // Nothing recorded: the refusal names what to fix.
                    self.rollback();
                    return Err(e);
                }
            }
        }
        let function = match direction {
            Direction::Up => m.up_fn(),
            Direction::Down => m.down_fn().ok_or_else(|| Error::NoDown {
                path: self.path.to_path_buf(),
                target: m.version(),
                id: m.id(),
            })?,
        };
        if m.transactional() {
            self.execute_in_transaction(m, function, direction)
        } else {
            self.execute_under_lease(m, function, direction)
        }
    }

    fn execute_in_transaction(
        &self,
        m: &'static Migration,
        f: MigrationFn,
        direction: Direction,
    ) -> Result<Applied> {
        let outcome = self
            .run_recorded(m, f, direction)
            .and_then(|done| Ok(self.exec_cached("COMMIT").map(|()| done)?));
        outcome.map_err(|e| {
            self.rollback();
            self.failed(m, direction, e)
        })
    }

    /// Runs `m` one way inside the open transaction and records it there (no commit).
    fn run_recorded(
        &self,
        m: &'static Migration,
        f: MigrationFn,
        direction: Direction,
    ) -> Result<Applied> {
        let fk_check = m.foreign_keys() == ForeignKeys::Off;
        let before = if fk_check {
            fk_violations(self.conn)?
        } else {
            BTreeSet::new()
        };
        let (t0, changes) = (Instant::now(), self.conn.total_changes());
        f(&mut Tx::new(self.conn, Some(m)))?;
        let rows = self.conn.total_changes() - changes;
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
        self.record_success(m, direction, t0.elapsed(), rows)
    }

    /// Runs a `no_transaction` migration under a lease, then records it.
    fn execute_under_lease(
        &self,
        m: &'static Migration,
        f: MigrationFn,
        direction: Direction,
    ) -> Result<Applied> {
        self.conn.execute(
            "INSERT INTO strata_lease (id, holder, host, pid, version, acquired_at) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![store::lease_holder(), store::hostname(), std::process::id(), m.version(), store::now()],
        )?;
        self.conn.execute_batch("COMMIT")?;
        let (t0, changes) = (Instant::now(), self.conn.total_changes());
        let mut result = f(&mut Tx::new(self.conn, Some(m)));
        let (duration, rows) = (t0.elapsed(), self.conn.total_changes() - changes);
        if !self.conn.is_autocommit() {
            self.rollback();
            if result.is_ok() {
                result = Err(Error::Usage(format!(
                    "no_transaction migration {} left a transaction open; it was rolled back",
                    m.id()
                )));
            }
        }
        // Outer error: recording failed; inner: the migration's own outcome.
        let recorded = self.begin_immediate().and_then(|()| {
            self.conn.execute("DELETE FROM strata_lease", [])?;
            Ok(match result {
                Ok(()) => Ok(self.record_success(m, direction, duration, rows)?),
                Err(e) => Err(e),
            })
        });
        match recorded {
            Ok(outcome) => {
                self.conn.execute_batch("COMMIT")?;
                outcome.map_err(|e| self.failed(m, direction, e))
            }
            Err(e) => {
                self.rollback();
                // Do not leave the lease behind for a process that lives on.
                let released = self.begin_immediate().and_then(|()| {
                    self.conn.execute("DELETE FROM strata_lease", [])?;
                    Ok(self.conn.execute_batch("COMMIT")?)
                });
                if released.is_err() {
                    self.rollback();
                }
                Err(self.failed(m, direction, e))
            }
        }
    }

    /// Writes (or, reverting, deletes) the history row and the event, inside the open
    /// transaction.
    fn record_success(
        &self,
        m: &'static Migration,
        direction: Direction,
        duration: Duration,
        rows: u64,
    ) -> Result<Applied> {
        match direction {
            Direction::Up => {
                let checksum = m.checksum().to_hex();
                let class = classify(self.known, m).class;
                store::record_applied(
                    self.conn,
                    m.version(),
                    m.name(),
                    &checksum,
                    duration,
                    class,
                )?;
                let detail = match class {
                    Class::Expand => String::new(),
                    Class::Contract => match self.waited_for(m.version())? {
                        Some(waited) => format!("contract, applied after waiting for {waited}"),
                        None => "contract".to_string(),
                    },
                };
                store::record_event(
                    self.conn,
                    event::APPLIED,
                    Some((m.version(), m.name())),
                    &detail,
                )?;
            }
            Direction::Down => {
                store::remove_applied(self.conn, m.version())?;
                store::record_event(
                    self.conn,
                    event::REVERTED,
                    Some((m.version(), m.name())),
                    "",
                )?;
            }
        }
        Ok(Applied {
            version: m.version(),
            name: m.name().to_string(),
            duration_ms: duration.as_secs_f64() * 1e3,
            rows_changed: rows,
        })
    }

    /// The database must have the schema `m`, the last migration adopted from the peer's
    /// history, declares: the peer's files may have been edited after it applied them (diesel
    /// and goose keep no checksums). Checked before anything is recorded.
    fn check_adopted_schema(&self, m: &'static Migration) -> Result<()> {
        let Some(schema) = m.schema() else {
            return Ok(());
        };
        let declared = Connection::open_in_memory()?;
        for sql in schema.ddl() {
            declared.execute_batch(&sql)?;
        }
        let differences = SchemaSnapshot::read(self.conn)?.diff(&SchemaSnapshot::read(&declared)?);
        if differences.is_empty() {
            return Ok(());
        }
        Err(Error::AdoptionMismatch {
            path: self.path.to_path_buf(),
            id: m.id(),
            differences: differences.iter().map(ToString::to_string).collect(),
        })
    }

    /// Records `m` as applied without running it — its peer tool applied it — with an
    /// `adopted` event, and commits the open transaction.
    fn record_adopted(&self, m: &'static Migration, detail: &str) -> Result<Applied> {
        store::record_applied(
            self.conn,
            m.version(),
            m.name(),
            &m.checksum().to_hex(),
            Duration::ZERO,
            classify(self.known, m).class,
        )?;
        store::record_event(
            self.conn,
            event::ADOPTED,
            Some((m.version(), m.name())),
            detail,
        )?;
        self.conn.execute_batch("COMMIT")?;
        Ok(Applied {
            version: m.version(),
            name: m.name().to_string(),
            duration_ms: 0.0,
            rows_changed: 0,
        })
    }

    /// Records a `failed` event in its own transaction and builds the error to return.
    fn failed(&self, m: &'static Migration, direction: Direction, e: Error) -> Error {
        self.failed_with(m, direction, e, &[])
    }

    /// [`Runner::failed`], naming in the event the migrations of its group that were rolled
    /// back with it (`lost`: to be applied again by the next run).
    fn failed_with(
        &self,
        m: &'static Migration,
        direction: Direction,
        e: Error,
        lost: &[GroupMember],
    ) -> Error {
        let error = match e {
            e @ Error::ForeignKeyViolation { .. } => e,
            e => Error::MigrationFailed {
                id: m.id(),
                source: Box::new(e),
            },
        };
        let what = if direction == Direction::Down {
            "down: "
        } else {
            ""
        };
        let recorded = self.begin_immediate().and_then(|()| {
            store::record_event(
                self.conn,
                event::FAILED,
                Some((m.version(), m.name())),
                &format!("{what}{error}{}", rolled_back_with(lost)),
            )?;
            Ok(self.conn.execute_batch("COMMIT")?)
        });
        if recorded.is_err() {
            self.rollback();
        }
        error
    }
}

/// Applies `migrations` (of `role`, in order) to a new in-memory database, and returns it.
pub(crate) fn replay(
    options: &Options,
    role: &str,
    migrations: &[&'static Migration],
) -> Result<Connection> {
    let mem = Connection::open_in_memory()?;
    mem.execute_batch("PRAGMA foreign_keys = ON")?;
    let options = Options {
        backup: None,
        target: None,
        require_approval: false,
        ..options.clone()
    };
    Runner {
        options: &options,
        role,
        conn: &mem,
        path: Path::new(":memory:"),
        known: migrations,
        stop: None,
    }
    .up()?;
    Ok(mem)
}

/// The application's tables of `conn` (not SQLite's, nor Strata's own bookkeeping).
fn table_names(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT IN ('strata_meta', 'strata_migrations', 'strata_events', 'strata_lease')",
    )?;
    let names = stmt.query_map([], |r| r.get(0))?;
    Ok(names.collect::<rusqlite::Result<_>>()?)
}

/// The tables of `conn` that reverting to `target` would drop, with their row counts, for
/// those holding rows: the tables the applied migrations produce on an empty database that
/// those kept (up to `target`) do not. Tables made otherwise (at run time, by hand) are no
/// migration's, and no `down` drops them.
pub(crate) fn rows_lost(
    conn: &Connection,
    options: &Options,
    role: &str,
    known: &[&'static Migration],
    state: &State,
    target: i64,
) -> Result<Vec<DroppedTable>> {
    let applied: Vec<&'static Migration> = known
        .iter()
        .copied()
        .filter(|m| state.history.iter().any(|a| a.version == m.version()))
        .collect();
    let kept: Vec<&'static Migration> = applied
        .iter()
        .copied()
        .filter(|m| m.version() <= target)
        .collect();
    let before = table_names(&replay(options, role, &applied)?)?;
    let after = table_names(&replay(options, role, &kept)?)?;
    let live = table_names(conn)?;
    let mut lost = Vec::new();
    for table in before.difference(&after).filter(|t| live.contains(*t)) {
        let rows: i64 = conn.query_row(
            &format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        if rows > 0 {
            lost.push(DroppedTable {
                table: table.clone(),
                rows,
            });
        }
    }
    Ok(lost)
}

/// An applied migration whose code changed.
fn checksum_policy(path: &Path, a: &Analysis<'_>) -> Result<()> {
    match a.changed.first() {
        Some((m, row)) => Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            id: m.id(),
            applied: row.checksum.clone(),
            compiled: m.checksum().to_hex(),
        }),
        None => Ok(()),
    }
}

/// The first violation of `options`' policies by the history of the database at `path`.
pub(crate) fn policy(options: &Options, path: &Path, a: &Analysis<'_>) -> Result<()> {
    checksum_policy(path, a)?;
    if !options.allow_unknown {
        // A newer binary's expand migrations (newer than all this binary knows) leave a schema
        // this binary still works on: it serves beside them, as during a rolling deploy.
        let knows_up_to = a.known_newest;
        let newer = |r: &&AppliedMigration| knows_up_to.is_none_or(|k| r.version > k);
        if let Some(row) = a
            .unknown
            .iter()
            .find(|r| newer(r) && r.class == Some(Class::Contract))
        {
            return Err(Error::NewerContract {
                path: path.to_path_buf(),
                contract: id_of(row),
                knows_up_to,
            });
        }
        let refused: Vec<MigrationId> = a
            .unknown
            .iter()
            .filter(|r| !(newer(r) && r.class == Some(Class::Expand)))
            .map(|r| id_of(r))
            .collect();
        if !refused.is_empty() {
            return Err(Error::UnknownApplied {
                path: path.to_path_buf(),
                unknown: refused,
            });
        }
    }
    if let (Some(m), Some(newest)) = (a.out_of_order.first(), a.newest)
        && !options.allow_out_of_order
    {
        return Err(Error::OutOfOrder {
            path: path.to_path_buf(),
            id: m.id(),
            newest: id_of(newest),
        });
    }
    Ok(())
}

/// Up (to the options' target), or down to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectionTarget {
    Up,
    Down(i64),
}

impl DirectionTarget {
    fn direction(self) -> Direction {
        match self {
            DirectionTarget::Up => Direction::Up,
            DirectionTarget::Down(_) => Direction::Down,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::MigrationDef;

    fn create(tx: &mut Tx<'_>) -> Result<()> {
        tx.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    }

    fn insert(tx: &mut Tx<'_>) -> Result<()> {
        tx.execute_batch("INSERT INTO t (id) VALUES (1)")
    }

    const fn def(version: i64, name: &'static str, up: MigrationFn) -> MigrationDef {
        MigrationDef {
            version,
            name,
            description: "",
            role: crate::DEFAULT_ROLE,
            module: "runner::tests",
            file: file!(),
            line: line!(),
            tokens: name,
            source: "",
            transaction: true,
            baseline: false,
            contract: false,
            foreign_keys: ForeignKeys::Enforce,
            up,
            down: None,
            test_data: None,
            schema: None,
            imported: None,
            imported_sql: None,
        }
    }

    static A: Migration = Migration::__new(def(20240101000000, "a", create));
    static B: Migration = Migration::__new(def(20240102000000, "b", insert));

    /// What the startup check answers on `conn` for `role` and `target`.
    fn check(conn: &Connection, role: &str, target: Option<i64>) -> Option<Option<i64>> {
        let options = Options {
            backup: None,
            target,
            ..Options::default()
        };
        Runner {
            options: &options,
            role,
            conn,
            path: Path::new(":memory:"),
            known: &[&A, &B],
            stop: None,
        }
        .up_to_date()
        .unwrap()
    }

    fn migrated(target: Option<i64>) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        let options = Options {
            backup: None,
            target,
            ..Options::default()
        };
        Runner {
            options: &options,
            role: crate::DEFAULT_ROLE,
            conn: &conn,
            path: Path::new(":memory:"),
            known: &[&A, &B],
            stop: None,
        }
        .up()
        .unwrap();
        conn
    }

    #[test]
    fn the_startup_check_answers_only_for_exactly_this_history_role_and_no_lease() {
        let main = crate::DEFAULT_ROLE;
        let empty = Connection::open_in_memory().unwrap();
        assert_eq!(check(&empty, main, None), None, "nothing there");
        let conn = migrated(None);
        assert_eq!(check(&conn, main, None), Some(Some(B.version())));
        assert_eq!(check(&conn, "other", None), None, "another role's");
        // Applied beyond the target: the slow path explains.
        assert_eq!(check(&conn, main, Some(A.version())), None);
        assert_eq!(check(&conn, main, Some(A.version() - 1)), None);
        let partly = migrated(Some(A.version()));
        assert_eq!(
            check(&partly, main, Some(A.version())),
            Some(Some(A.version()))
        );
        assert_eq!(check(&partly, main, None), None, "one pending");
        // Nothing applied and nothing expected: up to date, but only for its own role.
        let none = migrated(Some(A.version()));
        none.execute_batch("DELETE FROM strata_migrations").unwrap();
        assert_eq!(check(&none, main, Some(A.version() - 1)), Some(None));
        assert_eq!(check(&none, "other", Some(A.version() - 1)), None);
        // A lease held, a changed checksum, a role missing: the slow path.
        conn.execute(
            "INSERT INTO strata_lease (id, holder, host, pid, version, acquired_at) \
             VALUES (1, 'x', 'h', 1, 1, 'now')",
            [],
        )
        .unwrap();
        assert_eq!(check(&conn, main, None), None, "a lease");
        conn.execute_batch("DELETE FROM strata_lease").unwrap();
        assert_eq!(check(&conn, main, None), Some(Some(B.version())));
        conn.execute(
            "UPDATE strata_migrations SET checksum = ?1 WHERE version = ?2",
            rusqlite::params![A.checksum().to_hex(), B.version()],
        )
        .unwrap();
        assert_eq!(check(&conn, main, None), None, "a checksum");
        none.execute_batch("DELETE FROM strata_meta WHERE key = 'role'")
            .unwrap();
        assert_eq!(check(&none, main, Some(A.version() - 1)), None, "no role");
        // Not Strata's: one of its tables missing.
        partly.execute_batch("DROP TABLE strata_lease").unwrap();
        assert_eq!(check(&partly, main, Some(A.version())), None);
    }
}
