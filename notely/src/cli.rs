//! Command line: `notely [--data-dir DIR] [--migrate MODE] [migrate <command>]`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use strata::Mode;

use crate::db::{self, Settings};

/// Notely: notes, on SQLite databases migrated by Strata.
#[derive(Debug, Parser)]
#[command(name = "notely", version)]
pub struct Cli {
    /// Directory holding Notely's databases (created if missing).
    #[arg(long, global = true, env = "NOTELY_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub settings: SettingsArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How Notely treats its databases' migrations.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// At startup: `auto` backs up and migrates, `checked` waits for `migrate approve`,
    /// `verify` only checks and fails on anything pending or drifted.
    #[arg(long = "migrate", global = true, env = "NOTELY_MIGRATE", value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,

    /// Seconds to wait for another process migrating the same database.
    #[arg(
        long,
        global = true,
        env = "NOTELY_LOCK_TIMEOUT",
        default_value_t = 60.0
    )]
    pub lock_timeout: f64,

    /// In checked mode, seconds to wait for an approval before giving up (default: forever).
    #[arg(long, global = true, env = "NOTELY_APPROVAL_TIMEOUT")]
    pub approval_timeout: Option<f64>,

    /// Backups kept per database (0: no backup before migrating).
    #[arg(long, global = true, env = "NOTELY_BACKUPS", default_value_t = 5)]
    pub backups: usize,

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
    Migrate(strata::cli::MigrateArgs),
    /// Migrate the databases (per --migrate), then serve the REST API until Ctrl-C.
    Serve(ServeArgs),
}

/// Where the API listens.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port; the chosen one is printed).
    #[arg(long, env = "NOTELY_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "NOTELY_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Another origin allowed to call the API from a browser (repeatable); `http://localhost:*`
    /// and `http://127.0.0.1:*` always are.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value >= 0.0,
        "{flag} must be a number of seconds ≥ 0, got {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

impl SettingsArgs {
    fn settings(&self) -> Result<Settings> {
        Ok(Settings {
            mode: self.mode,
            lock_timeout: seconds("--lock-timeout", self.lock_timeout)?,
            allow_unknown: self.allow_unknown,
            allow_out_of_order: self.allow_out_of_order,
            backups: self.backups,
            approval_timeout: self
                .approval_timeout
                .map(|s| seconds("--approval-timeout", s))
                .transpose()?,
        })
    }
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let settings = cli.settings.settings()?;
    match cli.command {
        // Startup: the databases are migrated (or checked) before anything else happens.
        None => {
            let mut out = std::io::stdout().lock();
            let report = db::startup(&cli.data_dir, &settings, &mut out)?;
            strata::cli::write_report(&mut out, &report)?;
            writeln!(
                out,
                "notely: databases in {} are ready",
                cli.data_dir.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Serve(args)) => {
            let mut out = std::io::stdout().lock();
            let report = db::startup(&cli.data_dir, &settings, &mut out)?;
            strata::cli::write_report(&mut out, &report)?;
            drop(out);
            crate::server::serve(&cli.data_dir, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Migrate(args)) => {
            if matches!(
                args.command,
                strata::cli::MigrateCommand::Up { .. }
                    | strata::cli::MigrateCommand::Approve { .. }
            ) {
                std::fs::create_dir_all(&cli.data_dir).map_err(|e| {
                    anyhow::anyhow!("creating data directory {}: {e}", cli.data_dir.display())
                })?;
            }
            Ok(strata::cli::main(
                &args,
                &db::fleet(&cli.data_dir, &settings),
            ))
        }
    }
}
