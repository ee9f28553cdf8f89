//! Command line: `notely [--data-dir DIR] [migrate up|status]`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use strata::{MigrationState, Report, Status};

use crate::db::{self, Policy};

/// Notely: notes, on SQLite databases migrated by Strata.
#[derive(Debug, Parser)]
#[command(name = "notely", version)]
pub struct Cli {
    /// Directory holding Notely's databases (created if missing).
    #[arg(long, global = true, env = "NOTELY_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub policy: PolicyArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How migrations treat a database's history.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Seconds to wait for another process migrating the same database.
    #[arg(
        long,
        global = true,
        env = "NOTELY_LOCK_TIMEOUT",
        default_value_t = 60.0
    )]
    pub lock_timeout: f64,

    /// Start although a database has migrations this binary does not know (a rolled-back deploy).
    #[arg(long, global = true, env = "NOTELY_ALLOW_UNKNOWN")]
    pub allow_unknown: bool,

    /// Apply pending migrations older than the newest applied one (merged from a branch).
    #[arg(long, global = true, env = "NOTELY_ALLOW_OUT_OF_ORDER")]
    pub allow_out_of_order: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Schema migrations of Notely's databases.
    #[command(subcommand)]
    Migrate(Migrate),
}

#[derive(Debug, Subcommand)]
pub enum Migrate {
    /// Apply every pending migration to every database, creating missing ones.
    Up {
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show each database's applied and pending migrations; changes nothing.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl PolicyArgs {
    fn policy(&self) -> Result<Policy> {
        anyhow::ensure!(
            self.lock_timeout.is_finite() && self.lock_timeout >= 0.0,
            "--lock-timeout must be a number of seconds ≥ 0, got {}",
            self.lock_timeout
        );
        Ok(Policy {
            lock_timeout: Duration::from_secs_f64(self.lock_timeout),
            allow_unknown: self.allow_unknown,
            allow_out_of_order: self.allow_out_of_order,
        })
    }
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<()> {
    let policy = cli.policy.policy()?;
    let mut out = std::io::stdout().lock();
    match cli.command {
        // Startup: the databases are migrated before anything else happens.
        None => {
            let reports = db::migrate(&cli.data_dir, &policy)?;
            print_reports(&mut out, &reports)?;
            writeln!(
                out,
                "notely: databases in {} are up to date",
                cli.data_dir.display()
            )?;
        }
        Some(Command::Migrate(Migrate::Up { json })) => {
            let reports = db::migrate(&cli.data_dir, &policy)?;
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({ "databases": reports }),
                )?;
                writeln!(out)?;
            } else {
                print_reports(&mut out, &reports)?;
            }
        }
        Some(Command::Migrate(Migrate::Status { json })) => {
            let statuses = db::status(&cli.data_dir, &policy)?;
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({ "databases": statuses }),
                )?;
                writeln!(out)?;
            } else {
                print_statuses(&mut out, &statuses)?;
            }
        }
    }
    Ok(())
}

fn print_reports(out: &mut impl Write, reports: &[Report]) -> Result<()> {
    for r in reports {
        let version = r
            .version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        let what = match (r.created, r.applied.len()) {
            (true, n) => format!("created, applied {n}"),
            (false, 0) => "up to date".to_string(),
            (false, n) => format!("applied {n}"),
        };
        writeln!(
            out,
            "{:<8} {}  {what}, at version {version}",
            r.role,
            r.path.display()
        )?;
        for a in &r.applied {
            writeln!(
                out,
                "  + {} {} ({:.1} ms)",
                a.version, a.name, a.duration_ms
            )?;
        }
    }
    Ok(())
}

fn print_statuses(out: &mut impl Write, statuses: &[Status]) -> Result<()> {
    for s in statuses {
        let version = s
            .version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        let state = if s.initialized {
            ""
        } else {
            " (not created yet)"
        };
        writeln!(
            out,
            "{:<8} {}{state}  version {version}, {} pending, {} problem(s)",
            s.role,
            s.path.display(),
            s.pending(),
            s.problems()
        )?;
        for m in &s.migrations {
            let label = match m.state {
                MigrationState::Applied => "applied",
                MigrationState::Pending => "pending",
                MigrationState::Changed => "CHANGED",
                MigrationState::Unknown => "UNKNOWN",
                MigrationState::OutOfOrder => "OUT-OF-ORDER",
            };
            let when = m.applied_at.as_deref().unwrap_or("");
            writeln!(out, "  {label:<12} {} {:<28} {when}", m.version, m.name)?;
        }
    }
    Ok(())
}
