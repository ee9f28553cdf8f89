//! Many databases migrated in unison: every database of every role an application keeps
//! (a control database, N note shards, ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::instances::Presence;
use crate::migration::Source;
use crate::migrator::Migrator;
use crate::options::{Mode, Options};
use crate::report::{Report, Status};

/// One database of a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Database {
    /// The role whose migrations it takes.
    pub role: String,
    /// The database file.
    pub path: PathBuf,
}

/// The databases of an application and the migrations they take.
///
/// Roles are migrated in the order their first database was added (the control database
/// before the note shards, say); the databases of one role are migrated in parallel. When one
/// fails, the others finish the migration they are in (each is atomic), stop before the next,
/// and roles not started yet are left alone.
///
/// ```no_run
/// # strata::migrations!();
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fleet = strata::Fleet::new(&MIGRATIONS)
///     .database("control", "data/control.db")
///     .database("notes", "data/notes-0.db")
///     .database("notes", "data/notes-1.db");
/// let report = fleet.run(strata::Mode::Auto)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Fleet<'s> {
    source: &'s Source,
    databases: Vec<Database>,
    options: Options,
    parallelism: usize,
}

/// How one database fared in a fleet run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Up to date (or at the target) now.
    Done,
    /// Failed; the error names why.
    Failed,
    /// Stopped before its next migration because another database failed.
    Stopped,
    /// Not started because another database failed first.
    NotStarted,
}

/// One database's part of a [`FleetReport`].
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    /// The database's role.
    pub role: String,
    /// The database file.
    pub path: PathBuf,
    /// How its run ended.
    pub outcome: Outcome,
    /// What its run did; `None` when it failed or was not started.
    pub report: Option<Report>,
    /// Why it failed (the error's message); `None` unless `outcome` is `Failed`.
    pub error: Option<String>,
}

/// What a fleet run did, database by database.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// One entry per database of the fleet, in the order they were added.
    pub databases: Vec<DatabaseReport>,
}

/// A fleet run that failed on one database: the report of all, and that database's error.
#[derive(Debug, thiserror::Error)]
#[error("{} ({} database): {error}{}", .database.display(), .role, stopped_note(.report))]
pub struct FleetError {
    /// The failed database's role.
    pub role: String,
    /// The failed database: the first that failed, in the order they were added.
    pub database: PathBuf,
    /// Why it failed.
    #[source]
    pub error: Box<Error>,
    /// What the run did to every database, the failed one included.
    pub report: FleetReport,
}

fn stopped_note(report: &FleetReport) -> String {
    let stopped = report
        .databases
        .iter()
        .filter(|d| matches!(d.outcome, Outcome::Stopped | Outcome::NotStarted))
        .count();
    if stopped == 0 {
        String::new()
    } else {
        format!(" ({stopped} other database(s) stopped or not started)")
    }
}

/// How one database's run ended.
type Slot = (Outcome, Option<Report>, Option<Error>);

/// A database's status within its fleet.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    /// The database's own status.
    #[serde(flatten)]
    pub status: Status,
    /// Behind the newest version another database of its role has.
    pub lagging: bool,
}

impl<'s> Fleet<'s> {
    /// An empty fleet over the migrations of `source`.
    pub fn new(source: &'s Source) -> Self {
        let parallelism = std::thread::available_parallelism()
            .map(std::num::NonZero::get)
            .unwrap_or(2)
            .clamp(1, 8);
        Fleet {
            source,
            databases: Vec::new(),
            options: Options::default(),
            parallelism,
        }
    }

    /// Adds the database at `path`, migrated with the migrations of `role`.
    pub fn database(mut self, role: &str, path: impl Into<PathBuf>) -> Self {
        self.databases.push(Database {
            role: role.to_string(),
            path: path.into(),
        });
        self
    }

    /// Settings for every database.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// At most this many databases of one role are migrated at once.
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// The databases, in the order they were added.
    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    /// The same fleet, with only the databases of `role`.
    pub fn only_role(&self, role: &str) -> Fleet<'s> {
        Fleet {
            source: self.source,
            databases: self
                .databases
                .iter()
                .filter(|d| d.role == role)
                .cloned()
                .collect(),
            options: self.options.clone(),
            parallelism: self.parallelism,
        }
    }

    /// The migrations source.
    pub fn source(&self) -> &'s Source {
        self.source
    }

    /// The settings.
    pub fn settings(&self) -> &Options {
        &self.options
    }

    /// A migrator for one role, with the fleet's settings.
    pub fn migrator(&self, role: &str) -> Migrator<'s> {
        Migrator::new(self.source, role).options(self.options.clone())
    }

    /// The database called `name`: its path, its file name, or its file stem.
    pub fn find(&self, name: &Path) -> Option<&Database> {
        self.databases.iter().find(|d| {
            d.path == name
                || d.path.file_name() == Some(name.as_os_str())
                || d.path.file_stem() == Some(name.as_os_str())
        })
    }

    /// Roles in the order of their first database.
    pub fn roles(&self) -> Vec<&str> {
        let mut roles: Vec<&str> = Vec::new();
        for d in &self.databases {
            if !roles.contains(&d.role.as_str()) {
                roles.push(&d.role);
            }
        }
        roles
    }

    /// Migrates every database according to `mode` (see [`Migrator::startup`]), role by role,
    /// the databases of a role in parallel.
    ///
    /// # Errors
    ///
    /// [`FleetError`] naming the first database that failed, with the report of all.
    pub fn run(&self, mode: Mode) -> std::result::Result<FleetReport, FleetError> {
        self.each_in_unison(false, |migrator, path| migrator.startup(path, mode))
    }

    /// Registers this process as an instance serving on every database of the fleet (see
    /// [`crate::instances`]): call it after [`Fleet::run`] with the same `mode`, before
    /// serving. Keep the [`Presence`] while serving; dropping it deregisters. `discover`, when
    /// given, names the databases to serve as they change (new shards): they are joined at the
    /// next heartbeat.
    ///
    /// # Errors
    ///
    /// [`Error::NewerContract`](crate::Error::NewerContract) when a newer binary applied a
    /// contract this one does not know meanwhile; the file's errors.
    pub fn presence(
        &self,
        label: &str,
        mode: Mode,
        discover: Option<crate::instances::Discover>,
    ) -> Result<Presence>
    where
        's: 'static,
    {
        let members = self
            .databases
            .iter()
            .map(|d| (self.migrator(&d.role), d.path.clone()))
            .collect();
        Presence::join(label, members, mode, discover)
    }

    /// Reverts every database to `target` (see [`Migrator::down_to`]), roles in reverse order.
    /// Every database is asked first: if any would refuse (no `down`, an unknown target, rows
    /// it would drop), none is reverted.
    pub fn down_to(&self, target: i64) -> std::result::Result<FleetReport, FleetError> {
        // In the order the revert would take: roles newest first.
        for role in self.roles().into_iter().rev() {
            for (i, db) in self.databases.iter().enumerate() {
                if db.role != role {
                    continue;
                }
                if let Err(error) = self.migrator(&db.role).check_down(&db.path, target) {
                    return Err(self.refused_before_starting(i, error));
                }
            }
        }
        self.each_in_unison(true, |migrator, path| migrator.down_to(path, target))
    }

    /// The failure of database `i` before any database was touched.
    fn refused_before_starting(&self, i: usize, error: Error) -> FleetError {
        let databases = self
            .databases
            .iter()
            .enumerate()
            .map(|(j, db)| DatabaseReport {
                role: db.role.clone(),
                path: db.path.clone(),
                outcome: if i == j {
                    Outcome::Failed
                } else {
                    Outcome::NotStarted
                },
                report: None,
                error: (i == j).then(|| error.to_string()),
            })
            .collect();
        FleetError {
            role: self.databases[i].role.clone(),
            database: self.databases[i].path.clone(),
            error: Box::new(error),
            report: FleetReport { databases },
        }
    }

    fn each_in_unison(
        &self,
        reverse: bool,
        f: impl Fn(Migrator<'_>, &Path) -> Result<Report> + Sync,
    ) -> std::result::Result<FleetReport, FleetError> {
        let stop = AtomicBool::new(false);
        let results: Mutex<BTreeMap<usize, Slot>> = Mutex::new(BTreeMap::new());
        let mut roles = self.roles();
        if reverse {
            roles.reverse();
        }
        for role in roles {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let members: Vec<(usize, &Database)> = self
                .databases
                .iter()
                .enumerate()
                .filter(|(_, d)| d.role == role)
                .collect();
            let next = AtomicUsize::new(0);
            let workers = self.parallelism.min(members.len());
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(&(index, db)) = members.get(i) else {
                                break;
                            };
                            if stop.load(Ordering::SeqCst) {
                                continue;
                            }
                            let migrator = self.migrator(&db.role).stop_on(&stop);
                            let entry = match f(migrator, &db.path) {
                                Ok(r) if r.stopped => (Outcome::Stopped, Some(r), None),
                                Ok(r) => (Outcome::Done, Some(r), None),
                                Err(e) => {
                                    stop.store(true, Ordering::SeqCst);
                                    (Outcome::Failed, None, Some(e))
                                }
                            };
                            results
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .insert(index, entry);
                        }
                    });
                }
            });
        }
        let mut results = results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut failure: Option<(usize, Error)> = None;
        let databases = self
            .databases
            .iter()
            .enumerate()
            .map(|(i, db)| {
                let (outcome, report, error) =
                    results
                        .remove(&i)
                        .unwrap_or((Outcome::NotStarted, None, None));
                let message = error.as_ref().map(ToString::to_string);
                if let (Some(e), None) = (error, &failure) {
                    failure = Some((i, e));
                }
                DatabaseReport {
                    role: db.role.clone(),
                    path: db.path.clone(),
                    outcome,
                    report,
                    error: message,
                }
            })
            .collect();
        let report = FleetReport { databases };
        match failure {
            None => Ok(report),
            Some((i, error)) => Err(FleetError {
                role: self.databases[i].role.clone(),
                database: self.databases[i].path.clone(),
                error: Box::new(error),
                report,
            }),
        }
    }

    /// Every database's status; a database behind the newest version of its role is flagged.
    pub fn status(&self) -> Result<Vec<DatabaseStatus>> {
        let statuses: Vec<Status> = self
            .databases
            .iter()
            .map(|d| self.migrator(&d.role).status(&d.path))
            .collect::<Result<_>>()?;
        let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
        for s in &statuses {
            if let Some(v) = s.version {
                let e = newest.entry(s.role.as_str()).or_insert(v);
                *e = (*e).max(v);
            }
        }
        let newest: BTreeMap<String, i64> = newest
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Ok(statuses
            .into_iter()
            .map(|s| {
                let lagging = newest
                    .get(&s.role)
                    .is_some_and(|&n| s.version.is_none_or(|v| v < n));
                DatabaseStatus { status: s, lagging }
            })
            .collect())
    }

    /// Applies `f` to each database in order, collecting the results; stops at the first error.
    pub fn each<'f, T>(
        &'f self,
        f: impl Fn(&Migrator<'s>, &'f Database) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.databases
            .iter()
            .map(|d| f(&self.migrator(&d.role), d))
            .collect()
    }
}
