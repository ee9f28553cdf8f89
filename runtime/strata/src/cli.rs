//! The `migrate` subcommand, for applications to embed in their clap command line.
//!
//! ```no_run
//! # strata::migrations!();
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! enum Cli {
//!     /// Schema migrations.
//!     Migrate(strata::cli::MigrateArgs),
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let Cli::Migrate(args) = Cli::parse();
//!     let fleet = strata::Fleet::new(&MIGRATIONS).database("main", "app.db");
//!     strata::cli::main(&args, &fleet)
//! }
//! ```
//!
//! Exit codes: 0 success, 1 failure (the error is printed), 2 bad usage (clap), 3 `verify`
//! found something pending, changed, drifted or damaged. With `--json`, a failure is one JSON
//! object on stdout, `{"error": "..", "kind": ".."}` (see [`CliError::to_json`]), and nothing
//! on stderr; the exit codes stay the same.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::error::Error;
use crate::fleet::{Fleet, FleetError, FleetReport, Outcome};
use crate::options::Options;
use crate::report::{MigrationState, Report};

/// `migrate <command> [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The command to run.
    #[command(subcommand)]
    pub command: MigrateCommand,

    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands of `migrate`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum MigrateCommand {
    /// Each database: role, version, pending and problem counts, and what is not applied.
    Status,
    /// What `up` (or `down --to`) would run, in order; changes nothing.
    Plan {
        /// Plan up to this version only.
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        /// Plan a revert to this version instead.
        #[arg(long, value_name = "VERSION", conflicts_with = "to")]
        down_to: Option<i64>,
        /// Show each pending migration in full, to review before approving: its source with
        /// line numbers, its class and schema change, the last rehearsal, the backup taken
        /// first, and the review's digest for `approve --review`.
        #[arg(long, conflicts_with = "down_to")]
        review: bool,
    },
    /// Apply pending migrations to every database, after a backup.
    Up {
        /// Stop at this version.
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        /// Apply contract migrations now, although live instances of older binaries lack them
        /// (they may fail on the new schema); recorded in the audit log with who forced it.
        #[arg(long)]
        contract_now: bool,
        /// Who forces the contract (default: $USER@host).
        #[arg(long, requires = "contract_now")]
        by: Option<String>,
    },
    /// The processes registered as serving on each database, the newest migration their
    /// binaries know, and whether they are alive.
    Instances,
    /// Revert every migration newer than VERSION, newest first, after a backup; refuses if one
    /// of them has no `down`, if VERSION is no migration's (0 reverts everything), or, without
    /// --yes, if it would drop tables holding rows.
    Down {
        /// The newest migration to keep (0: revert everything).
        #[arg(long, value_name = "VERSION")]
        to: i64,
        /// Only the databases of this role.
        #[arg(long)]
        role: Option<String>,
        /// Revert even if it drops tables that hold rows (they are in the backup taken first).
        #[arg(long)]
        yes: bool,
    },
    /// Applied migrations and the audit log.
    History {
        /// How many of the latest events to show per database.
        #[arg(long, default_value_t = 20)]
        events: usize,
    },
    /// Fail (exit 3) unless every database is up to date and has exactly the schema its
    /// migrations produce; changes nothing.
    Verify,
    /// Print each database's canonical schema.
    Dump,
    /// Apply the pending migrations to a copy of each database, verify the copy, report
    /// duration and rows changed per migration, and delete the copy (exit 3 if it fails).
    Rehearse,
    /// Approve the pending migrations (checked mode), recording who approved them.
    Approve {
        /// Who approves (default: $USER@host).
        #[arg(long)]
        by: Option<String>,
        /// The digest of the review read (`plan --review`): refused if the pending migrations
        /// changed since.
        #[arg(long, value_name = "DIGEST")]
        review: Option<String>,
    },
    /// Accept the changed checksum of an applied migration after reviewing the change.
    Repair {
        /// The applied migration whose new checksum to accept.
        #[arg(long, value_name = "VERSION")]
        version: i64,
        /// Who accepts it (default: $USER@host).
        #[arg(long)]
        by: Option<String>,
    },
    /// Write a new migration (see `strata new`).
    New(NewArgs),
    /// Back up every database now.
    Backup,
    /// Replace a database with a backup; refuses while another process holds a lock on it.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Which database (path, file name or stem); default: the one the backup is named after.
        #[arg(long)]
        database: Option<PathBuf>,
    },
}

/// `new <name> [--role R] [--dir D]`.
#[derive(Debug, Clone, clap::Args)]
pub struct NewArgs {
    /// The migration's name: a lowercase Rust identifier, e.g. `add_note_titles`.
    pub name: String,
    /// The role it targets (default: the only role in the directory).
    #[arg(long)]
    pub role: Option<String>,
    /// The migrations crate's source directory.
    #[arg(long, default_value = "migrations/src")]
    pub dir: PathBuf,
    /// Write the short form: `extends` the previous migration's declaration instead of copying
    /// it, so that only the tables this migration changes are declared in it.
    #[arg(long)]
    pub inherit: bool,
}

/// Writes a new migration and says what to edit next.
pub fn new_migration(args: &NewArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let made = crate::authoring::new_migration_with(
        &args.dir,
        &args.name,
        args.role.as_deref(),
        chrono::Utc::now(),
        args.inherit,
    )?;
    writeln!(
        out,
        "wrote {} (version {}, role `{}`)",
        made.path.display(),
        made.version,
        made.role
    )?;
    match &made.copied_from {
        Some(prev) => writeln!(
            out,
            "  its schema! is a copy of {prev}'s: change it to the tables as this migration leaves them"
        )?,
        None => writeln!(
            out,
            "  declare in its schema! the tables as this migration leaves them"
        )?,
    }
    match &made.registered_in {
        Some(lib) => writeln!(
            out,
            "  registered as `pub mod {};` in {}",
            made.module,
            lib.display()
        )?,
        None => writeln!(
            out,
            "  add `pub mod {};` to the crate's lib.rs",
            made.module
        )?,
    }
    writeln!(
        out,
        "next: write its body and doc comment, add `down = ..` and `test_data = ..` if it has them,"
    )?;
    writeln!(
        out,
        "      run the migration tests (the harness checks the schema you declared), then `migrate rehearse`"
    )?;
    Ok(())
}

/// What went wrong running a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A command on one database failed.
    #[error(transparent)]
    Strata(#[from] Error),
    /// A run over the fleet failed on one database; carries the report of all.
    #[error(transparent)]
    Fleet(Box<FleetError>),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    /// The command line names something that does not exist (a role, a migration, a
    /// database); the text says what.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// A short, stable name for the kind of error (see [`Error::kind`]); `usage` for bad
    /// usage, `output` when writing the output failed.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Strata(e) => e.kind(),
            CliError::Fleet(e) => e.error.kind(),
            CliError::Output(_) => "output",
            CliError::Usage(_) => "usage",
        }
    }

    /// The error as one JSON object: `{"error": message, "kind": kind}`, with `database` (the
    /// one that failed) and `report` (what every database did) after a fleet run.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = error_json(self, self.kind());
        if let CliError::Fleet(e) = self {
            value["database"] = serde_json::json!(e.database);
            value["report"] = serde_json::to_value(&e.report).unwrap_or_default();
        }
        value
    }
}

/// `{"error": message, "kind": kind}`: how commands with `--json` report a failure.
pub fn error_json(message: &dyn std::fmt::Display, kind: &str) -> serde_json::Value {
    serde_json::json!({ "error": message.to_string(), "kind": kind })
}

impl From<FleetError> for CliError {
    fn from(e: FleetError) -> Self {
        CliError::Fleet(Box::new(e))
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        CliError::Output(e.into())
    }
}

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Exit code 0.
    Success,
    /// Exit code 3: `verify` found something.
    Attention,
}

/// Runs `args` on `fleet`, printing to stdout and errors to stderr (with `--json`, errors too
/// go to stdout, as one JSON object); returns the exit code.
pub fn main(args: &MigrateArgs, fleet: &Fleet<'_>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match execute(args, fleet, &mut out) {
        Ok(Finished::Success) => ExitCode::SUCCESS,
        Ok(Finished::Attention) => ExitCode::from(3),
        Err(e) => {
            if args.json {
                let _ = json(&mut out, &e.to_json());
            } else {
                let _ = out.flush();
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The operator's name for audit events: `$USER@host`.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", crate::store::hostname())
}

fn json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Left-aligned columns separated by two spaces.
fn table(out: &mut dyn Write, indent: &str, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn version(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// Runs `args` on `fleet`, writing human or JSON output to `out`.
///
/// # Errors
///
/// The failure of the command; for `up` and `down` the per-database report has been written
/// to `out` before.
pub fn execute(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    match &args.command {
        MigrateCommand::Status => status(args, fleet, out),
        MigrateCommand::Plan {
            to,
            down_to: None,
            review: true,
        } => review(args, fleet, *to, out),
        MigrateCommand::Plan { to, down_to, .. } => plan(args, fleet, *to, *down_to, out),
        MigrateCommand::Up {
            to,
            contract_now,
            by,
        } => {
            let fleet = fleet.clone().options(Options {
                target: *to,
                contract_now: contract_now.then(|| by.clone().unwrap_or_else(operator)),
                ..fleet.settings().clone()
            });
            finish_run(args, fleet.run(crate::Mode::Auto), out)
        }
        MigrateCommand::Instances => instances(args, fleet, out),
        MigrateCommand::Down { to, role, yes } => {
            let fleet = fleet.clone().options(Options {
                allow_data_loss: *yes,
                ..fleet.settings().clone()
            });
            match role {
                Some(role) => {
                    if !fleet.databases().iter().any(|d| &d.role == role) {
                        return Err(CliError::Usage(format!(
                            "no database has role `{role}`; the roles here are: {}",
                            fleet.roles().join(", ")
                        )));
                    }
                    finish_run(args, fleet.only_role(role).down_to(*to), out)
                }
                None => finish_run(args, fleet.down_to(*to), out),
            }
        }
        MigrateCommand::History { events } => history(args, fleet, *events, out),
        MigrateCommand::Verify => verify(args, fleet, out),
        MigrateCommand::Dump => {
            let dumps = fleet.each(|m, d| Ok((d, m.dump(&d.path)?)))?;
            if args.json {
                let list: Vec<_> = dumps
                    .iter()
                    .map(|(d, dump)| serde_json::json!({"path": d.path, "role": d.role, "schema": dump}))
                    .collect();
                json(out, &serde_json::json!({ "databases": list }))?;
            } else {
                for (d, dump) in dumps {
                    writeln!(out, "-- {} ({})", d.path.display(), d.role)?;
                    write!(out, "{dump}")?;
                }
            }
            Ok(Finished::Success)
        }
        MigrateCommand::Rehearse => {
            let rehearsals = fleet.each(|m, d| m.rehearse(&d.path))?;
            let passed = rehearsals.iter().all(crate::Rehearsal::passed);
            if args.json {
                json(
                    out,
                    &serde_json::json!({ "passed": passed, "databases": rehearsals }),
                )?;
            } else {
                for r in &rehearsals {
                    let verdict = if r.passed() { "ok" } else { "FAILED" };
                    writeln!(
                        out,
                        "{} ({}): {} pending, rehearsed on a copy: {verdict}",
                        r.path.display(),
                        r.role,
                        r.pending.len()
                    )?;
                    let rows: Vec<Vec<String>> = r
                        .applied
                        .iter()
                        .map(|a| {
                            vec![
                                a.version.to_string(),
                                a.name.clone(),
                                format!("{:.1} ms", a.duration_ms),
                                format!("{} rows", a.rows_changed),
                            ]
                        })
                        .collect();
                    table(out, "  ", &rows)?;
                    for problem in r.error.iter().chain(&r.findings) {
                        writeln!(out, "  {problem}")?;
                    }
                }
            }
            Ok(if passed {
                Finished::Success
            } else {
                Finished::Attention
            })
        }
        MigrateCommand::Approve { by, review } => {
            let by = by.clone().unwrap_or_else(operator);
            let approved = match review {
                // One digest per database: `plan --review` prints them all; a digest names the
                // database it belongs to.
                Some(seen) => {
                    let reviews = fleet.each(|m, d| Ok((d, m.review(&d.path)?)))?;
                    if !reviews.iter().any(|(_, r)| &r.digest == seen) {
                        return Err(CliError::Strata(Error::ReviewChanged {
                            path: PathBuf::from("(every database)"),
                            seen: seen.clone(),
                            now: reviews
                                .iter()
                                .map(|(d, r)| format!("{}: {}", d.path.display(), r.digest))
                                .collect::<Vec<_>>()
                                .join(", "),
                        }));
                    }
                    let mut done = Vec::new();
                    for (db, _) in reviews.iter().filter(|(_, r)| &r.digest == seen) {
                        let m = fleet.migrator(&db.role);
                        done.push((*db, m.approve_reviewed(&db.path, &by, Some(seen))?));
                    }
                    done
                }
                None => fleet.each(|m, d| Ok((d, m.approve(&d.path, &by)?)))?,
            };
            if args.json {
                let list: Vec<_> = approved
                    .iter()
                    .map(|(d, ids)| serde_json::json!({"path": d.path, "role": d.role, "approved": ids}))
                    .collect();
                json(
                    out,
                    &serde_json::json!({ "approved_by": by, "databases": list }),
                )?;
            } else {
                for (d, ids) in approved {
                    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
                    match names.len() {
                        0 => writeln!(
                            out,
                            "{} ({}): nothing waiting for approval",
                            d.path.display(),
                            d.role
                        )?,
                        n => writeln!(
                            out,
                            "{} ({}): {n} approved by {by}: {}",
                            d.path.display(),
                            d.role,
                            names.join(", ")
                        )?,
                    }
                }
            }
            Ok(Finished::Success)
        }
        MigrateCommand::Repair { version, by } => {
            let by = by.clone().unwrap_or_else(operator);
            // Roles may share a version: every role that has one.
            let roles: Vec<&str> = fleet
                .source()
                .all()?
                .iter()
                .filter(|m| m.version() == *version)
                .map(|m| m.role())
                .collect();
            if roles.is_empty() {
                return Err(CliError::Usage(format!(
                    "no migration {version} in this binary"
                )));
            }
            let repaired = fleet
                .databases()
                .iter()
                .filter(|d| roles.contains(&d.role.as_str()))
                .map(|d| fleet.migrator(&d.role).repair(&d.path, *version, &by))
                .collect::<Result<Vec<_>, _>>()?;
            if args.json {
                json(out, &serde_json::json!({ "repaired": repaired }))?;
            } else {
                for r in repaired {
                    writeln!(
                        out,
                        "{}: {} {} now carries checksum {} (was {}); recorded as repaired by {by}",
                        r.path.display(),
                        r.version,
                        r.name,
                        &r.new_checksum[..12],
                        &r.old_checksum[..r.old_checksum.len().min(12)]
                    )?;
                }
            }
            Ok(Finished::Success)
        }
        MigrateCommand::New(new) => {
            new_migration(new, out)?;
            Ok(Finished::Success)
        }
        MigrateCommand::Backup => {
            let files = fleet.each(|m, d| m.backup_now(&d.path))?;
            if args.json {
                json(out, &serde_json::json!({ "backups": files }))?;
            } else {
                for f in files {
                    writeln!(out, "{} -> {}", f.database.display(), f.path.display())?;
                }
            }
            Ok(Finished::Success)
        }
        MigrateCommand::Restore { file, database } => {
            let db = match database {
                Some(name) => fleet.find(name),
                None => backup_stem(file).and_then(|stem| fleet.find(Path::new(&stem))),
            }
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "which database does {} belong to? name it with --database (one of: {})",
                    file.display(),
                    fleet
                        .databases()
                        .iter()
                        .map(|d| d.path.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let restored = fleet.migrator(&db.role).restore(&db.path, file)?;
            if args.json {
                json(out, &restored)?;
            } else {
                writeln!(
                    out,
                    "{} restored from {} (version {}); the replaced content was backed up first",
                    db.path.display(),
                    file.display(),
                    version(restored.version)
                )?;
            }
            Ok(Finished::Success)
        }
    }
}

/// `notes.20261121T080215.123Z.v20240301090000.db` → `notes`.
fn backup_stem(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    name.split('.').next().map(str::to_string)
}

fn status(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    let statuses = fleet.status()?;
    if args.json {
        json(out, &serde_json::json!({ "databases": statuses }))?;
        return Ok(Finished::Success);
    }
    let mut rows = vec![vec![
        "DATABASE".into(),
        "ROLE".into(),
        "VERSION".into(),
        "PENDING".into(),
        "PROBLEMS".into(),
        "".into(),
    ]];
    for s in &statuses {
        let note = match (s.status.initialized, s.lagging) {
            (false, _) => "not created yet",
            (true, true) => "LAGGING behind its role",
            _ => "",
        };
        rows.push(vec![
            s.status.path.display().to_string(),
            s.status.role.clone(),
            version(s.status.version),
            s.status.pending().to_string(),
            s.status.problems().to_string(),
            note.into(),
        ]);
    }
    table(out, "", &rows)?;
    for s in &statuses {
        let rows: Vec<Vec<String>> = s
            .status
            .migrations
            .iter()
            .filter(|m| m.state != MigrationState::Applied)
            .map(|m| {
                let mut notes = Vec::new();
                if m.approved {
                    notes.push("approved".to_string());
                }
                match &m.deferred_for {
                    Some(who) if who.is_empty() => notes.push("deferred".to_string()),
                    Some(who) => notes.push(format!("deferred while alive: {}", who.join("; "))),
                    None => {}
                }
                vec![
                    m.state.label().to_string(),
                    m.version.to_string(),
                    m.name.clone(),
                    m.class.map_or("-", crate::class::Class::label).to_string(),
                    notes.join(", "),
                ]
            })
            .collect();
        if !rows.is_empty() {
            writeln!(out, "\n{}:", s.status.path.display())?;
            table(out, "  ", &rows)?;
        }
    }
    Ok(Finished::Success)
}

fn plan(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    to: Option<i64>,
    down_to: Option<i64>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    let plans = fleet.each(|m, d| match down_to {
        Some(v) => m.plan_down(&d.path, v),
        None => m.clone().target(to.or(m.settings().target)).plan(&d.path),
    })?;
    if args.json {
        json(out, &serde_json::json!({ "databases": plans }))?;
        return Ok(Finished::Success);
    }
    for p in &plans {
        let verb = if p.direction == "down" {
            "revert"
        } else {
            "apply"
        };
        let backup = p
            .backup_dir
            .as_ref()
            .map(|d| format!(", backup to {}", d.display()))
            .unwrap_or_default();
        writeln!(
            out,
            "{} ({}): {} to {verb}{backup}",
            p.path.display(),
            p.role,
            p.migrations.len()
        )?;
        let rows: Vec<Vec<String>> = p
            .migrations
            .iter()
            .map(|m| {
                let mut flags = Vec::new();
                if !m.transactional {
                    flags.push("no_transaction");
                }
                if m.foreign_keys_off {
                    flags.push("foreign_keys=off");
                }
                if m.deferred {
                    flags.push("DEFERRED");
                }
                vec![
                    m.version.to_string(),
                    m.name.clone(),
                    m.class.label().to_string(),
                    flags.join(","),
                    m.description.lines().next().unwrap_or("").to_string(),
                ]
            })
            .collect();
        table(out, "  ", &rows)?;
        for m in &p.migrations {
            for change in &m.contract_changes {
                writeln!(out, "  {} {change}", m.version)?;
            }
            if !m.blocked_by.is_empty() {
                writeln!(
                    out,
                    "  {} waits (contract) while these instances of older binaries live: {}",
                    m.version,
                    m.blocked_by.join("; ")
                )?;
            }
        }
        for d in &p.drops {
            writeln!(out, "  drops table `{}` holding {} row(s)", d.table, d.rows)?;
        }
        if let Some(why) = &p.refused {
            writeln!(out, "  REFUSED: {why}")?;
        }
    }
    Ok(Finished::Success)
}

fn instances(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    let all = fleet.each(|m, d| Ok((d, m.instances(&d.path)?)))?;
    if args.json {
        let list: Vec<_> = all
            .iter()
            .map(|(d, i)| serde_json::json!({"path": d.path, "role": d.role, "instances": i}))
            .collect();
        json(out, &serde_json::json!({ "databases": list }))?;
        return Ok(Finished::Success);
    }
    for (d, list) in &all {
        writeln!(out, "{} ({}):", d.path.display(), d.role)?;
        if list.is_empty() {
            writeln!(out, "  no instance registered")?;
            continue;
        }
        let mut rows = vec![vec![
            "INSTANCE".into(),
            "LABEL".into(),
            "KNOWS UP TO".into(),
            "STARTED".into(),
            "HEARTBEAT".into(),
            "".into(),
        ]];
        rows.extend(list.iter().map(|i| {
            vec![
                format!("{}/{}", i.host, i.pid),
                i.label.clone(),
                version(i.newest_version),
                i.started_at.clone(),
                format!("{:.0} s ago", i.heartbeat_age_s),
                i.gone
                    .as_ref()
                    .map_or_else(|| "alive".to_string(), |g| format!("gone: {g}")),
            ]
        }));
        table(out, "  ", &rows)?;
    }
    Ok(Finished::Success)
}

fn review(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    to: Option<i64>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    let reviews =
        fleet.each(|m, d| m.clone().target(to.or(m.settings().target)).review(&d.path))?;
    if args.json {
        json(out, &serde_json::json!({ "databases": reviews }))?;
        return Ok(Finished::Success);
    }
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    for r in &reviews {
        write_review(out, r, colour)?;
    }
    Ok(Finished::Success)
}

/// A review for a terminal: per pending migration its header, schema change (added green,
/// removed red, changed yellow, contract changes bold), rehearsal and numbered source.
pub fn write_review(
    out: &mut dyn Write,
    r: &crate::review::Review,
    colour: bool,
) -> std::io::Result<()> {
    use crate::class::ChangeKind;
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    writeln!(
        out,
        "{} ({}): {} pending — review {}",
        r.path.display(),
        r.role,
        r.migrations.len(),
        paint("1", &r.digest)
    )?;
    if r.migrations.is_empty() {
        return Ok(());
    }
    match &r.backup_dir {
        Some(dir) => writeln!(out, "  backup first, to {}", dir.display())?,
        None => writeln!(out, "  {}", paint("33", "no backup is taken first"))?,
    }
    match &r.rehearsal {
        None => writeln!(
            out,
            "  {}",
            paint("33", "not rehearsed (`migrate rehearse`)")
        )?,
        Some(e) => writeln!(
            out,
            "  rehearsal: {} at {} on {}, {:.1} ms{}",
            if e.passed {
                paint("32", "passed")
            } else {
                paint("31", "FAILED")
            },
            e.at,
            e.copy,
            e.total_ms,
            if e.current {
                String::new()
            } else {
                paint("33", " — of another pending set: rehearse again")
            }
        )?,
    }
    if let Some(why) = &r.refused {
        writeln!(
            out,
            "  {}",
            paint("31", &format!("a run would be refused: {why}"))
        )?;
    }
    for m in &r.migrations {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint(
                "1",
                &format!(
                    "== {} {} — {}{} — {}:{}",
                    m.version,
                    m.name,
                    m.class,
                    if m.deferred { ", deferred" } else { "" },
                    m.file,
                    m.line
                )
            )
        )?;
        for line in m.description.lines() {
            writeln!(out, "   {line}")?;
        }
        writeln!(
            out,
            "   checksum {}{}{}{}",
            &m.checksum[..16],
            if m.transactional {
                ""
            } else {
                ", no_transaction"
            },
            if m.foreign_keys_off {
                ", foreign_keys = off"
            } else {
                ""
            },
            if m.has_down {
                ", has a down"
            } else {
                ", no down"
            }
        )?;
        if !m.blocked_by.is_empty() {
            writeln!(out, "   waits for: {}", m.blocked_by.join("; "))?;
        }
        match (m.schema_compared, m.changes.is_empty()) {
            (false, _) => writeln!(out, "   schema: no declaration to compare")?,
            (true, true) => writeln!(out, "   schema: unchanged")?,
            (true, false) => {
                writeln!(out, "   schema:")?;
                for c in &m.changes {
                    let (sign, code) = match c.kind {
                        ChangeKind::Added => ("+", "32"),
                        ChangeKind::Removed => ("-", "31"),
                        ChangeKind::Changed => ("~", "33"),
                    };
                    let code = if c.contract {
                        format!("1;{code}")
                    } else {
                        code.to_string()
                    };
                    let tail = if c.contract { "   [contract]" } else { "" };
                    writeln!(out, "     {}", paint(&code, &format!("{sign} {c}{tail}")))?;
                }
            }
        }
        match &m.rehearsed {
            Some(a) => writeln!(
                out,
                "   rehearsed: {:.1} ms, {} rows changed",
                a.duration_ms, a.rows_changed
            )?,
            None => writeln!(out, "   rehearsed: not with this code")?,
        }
        writeln!(out, "   source ({}):", m.file)?;
        let width = m.source.lines().count().to_string().len();
        for (n, line) in crate::review::Review::numbered(m) {
            let mark = if n == m.line as usize { ">" } else { " " };
            // Control characters in the source (an escape sequence in a comment) must not
            // restyle or hide lines of the review on a terminal.
            let line: String = line
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        // ␛ for ESC and its kind below 0x20; � for the others.
                        char::from_u32(0x2400 + c as u32)
                            .filter(|_| (c as u32) < 0x20)
                            .unwrap_or('\u{fffd}')
                    } else {
                        c
                    }
                })
                .collect();
            writeln!(out, "   {mark}{n:>width$} │ {line}")?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "approve exactly this: migrate approve --review {}",
        r.digest
    )?;
    Ok(())
}

fn history(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    events: usize,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    let mut histories = fleet.each(|m, d| m.history(&d.path))?;
    for h in &mut histories {
        let skip = h.events.len().saturating_sub(events);
        h.events.drain(..skip);
    }
    if args.json {
        json(out, &serde_json::json!({ "databases": histories }))?;
        return Ok(Finished::Success);
    }
    for h in &histories {
        writeln!(
            out,
            "{} ({}): {} applied",
            h.path.display(),
            h.role,
            h.applied.len()
        )?;
        let rows: Vec<Vec<String>> = h
            .applied
            .iter()
            .map(|a| {
                vec![
                    a.version.to_string(),
                    a.name.clone(),
                    a.applied_at.clone(),
                    format!("{:.1} ms", a.duration_ms),
                    a.applied_by.clone(),
                ]
            })
            .collect();
        table(out, "  ", &rows)?;
        writeln!(out, "  events (latest {}):", h.events.len())?;
        let rows: Vec<Vec<String>> = h
            .events
            .iter()
            .map(|e| {
                let what = match (e.version, &e.name) {
                    (Some(v), Some(n)) if !n.is_empty() => format!("{v} {n}"),
                    (Some(v), _) => v.to_string(),
                    _ => String::new(),
                };
                vec![
                    e.at.clone(),
                    e.kind.clone(),
                    what,
                    e.actor.clone(),
                    e.detail.clone(),
                ]
            })
            .collect();
        table(out, "    ", &rows)?;
    }
    Ok(Finished::Success)
}

fn verify(
    args: &MigrateArgs,
    fleet: &Fleet<'_>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    let results = fleet.each(|m, d| m.verify(&d.path))?;
    let clean = results.iter().all(crate::Verification::is_clean);
    if args.json {
        json(
            out,
            &serde_json::json!({ "clean": clean, "databases": results }),
        )?;
    } else {
        for v in &results {
            if v.is_clean() {
                writeln!(out, "{} ({}): ok", v.path.display(), v.role)?;
            } else {
                writeln!(out, "{} ({}): NOT OK", v.path.display(), v.role)?;
                for finding in v.findings() {
                    writeln!(out, "  {finding}")?;
                }
            }
        }
    }
    Ok(if clean {
        Finished::Success
    } else {
        Finished::Attention
    })
}

/// Prints a fleet run's report (also when it failed, except with `--json`, where the error
/// object carries it), then passes the failure on.
fn finish_run(
    args: &MigrateArgs,
    result: Result<FleetReport, FleetError>,
    out: &mut dyn Write,
) -> Result<Finished, CliError> {
    match (&result, args.json) {
        (Ok(report), true) => json(out, report)?,
        (Err(_), true) => {}
        (Ok(report), false) => write_report(out, report)?,
        (Err(e), false) => write_report(out, &e.report)?,
    }
    result.map(|_| Finished::Success).map_err(CliError::from)
}

/// A fleet run's report, one line per database and one per migration applied or reverted.
pub fn write_report(out: &mut dyn Write, report: &FleetReport) -> std::io::Result<()> {
    {
        for d in &report.databases {
            writeln!(
                out,
                "{}",
                describe(
                    &d.role,
                    &d.path,
                    d.outcome,
                    d.report.as_ref(),
                    d.error.as_deref()
                )
            )?;
            if let Some(r) = &d.report {
                for m in &r.deferred {
                    let why = if m.blocked_by.is_empty() {
                        "after the contract above".to_string()
                    } else {
                        format!("while alive: {}", m.blocked_by.join("; "))
                    };
                    writeln!(
                        out,
                        "  … {} {} ({}) deferred {why}",
                        m.version, m.name, m.class
                    )?;
                }
                for a in &r.applied {
                    writeln!(
                        out,
                        "  + {} {} ({:.1} ms)",
                        a.version, a.name, a.duration_ms
                    )?;
                }
                for a in &r.reverted {
                    writeln!(
                        out,
                        "  - {} {} ({:.1} ms)",
                        a.version, a.name, a.duration_ms
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn describe(
    role: &str,
    path: &Path,
    outcome: Outcome,
    report: Option<&Report>,
    error: Option<&str>,
) -> String {
    let head = format!("{role:<8} {}", path.display());
    match (outcome, report) {
        (Outcome::Done, Some(r)) => {
            let what = match (r.created, r.applied.len(), r.reverted.len()) {
                (_, 0, n) if n > 0 => format!("reverted {n}"),
                (true, n, _) => format!("created, applied {n}"),
                (false, 0, _) => "up to date".to_string(),
                (false, n, _) => format!("applied {n}"),
            };
            let backup = r
                .backup
                .as_ref()
                .map(|b| format!(" (backup: {})", b.display()))
                .unwrap_or_default();
            format!("{head}  {what}, at version {}{backup}", version(r.version))
        }
        (Outcome::Stopped, r) => format!(
            "{head}  STOPPED after another database failed, at version {}",
            version(r.and_then(|r| r.version))
        ),
        (Outcome::NotStarted, _) => format!("{head}  not started: another database failed first"),
        (_, _) => format!("{head}  FAILED: {}", error.unwrap_or("unknown error")),
    }
}
