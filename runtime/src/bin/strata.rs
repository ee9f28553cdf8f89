//! `strata`: authoring tools for Strata migrations.
//!
//!     strata new <name> [--role R] [--dir migrations/src]
//!     strata introspect <DB> [--table T]... [--role R] [--version V]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Authoring tools for Strata migrations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new migration versioned by the current UTC time, starting from a copy of the
    /// previous migration's schema of its role, and register it in lib.rs.
    New(strata::cli::NewArgs),
    /// Print a `schema!` declaration and a baseline migration matching an existing database,
    /// to adopt it.
    Introspect {
        /// The SQLite database to read (read-only).
        database: PathBuf,
        /// Only these tables (repeatable); default: all.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Role of the baseline migration.
        #[arg(long, default_value = strata::DEFAULT_ROLE)]
        role: String,
        /// Version of the baseline migration (default: now, UTC).
        #[arg(long)]
        version: Option<i64>,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::New(args) => {
            let mut out = std::io::stdout().lock();
            strata::cli::new_migration(&args, &mut out).context("creating the migration")?;
        }
        Command::Introspect {
            database,
            tables,
            role,
            version,
        } => {
            let version = version.unwrap_or_else(|| {
                chrono::Utc::now()
                    .format("%Y%m%d%H%M%S")
                    .to_string()
                    .parse()
                    .unwrap_or(19700101000000)
            });
            let code = strata::authoring::introspect(&database, &tables, &role, version)
                .with_context(|| format!("reading {}", database.display()))?;
            print!("{code}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
