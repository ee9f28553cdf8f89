//! Command line: `notely [--data-dir DIR] [--migrate MODE] [migrate <command>]`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use strata::Mode;

use crate::db::{self, Settings};
use crate::loadgen::LoadConfig;

/// Notely: notes, on SQLite databases migrated by Strata.
#[derive(Debug, Parser)]
#[command(name = "notely", version)]
pub struct Cli {
    /// Directory holding Notely's databases (created if missing) [default: .data; `demo`: a
    /// temporary directory].
    #[arg(long, global = true, env = "NOTELY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(flatten)]
    pub settings: SettingsArgs,

    #[command(flatten)]
    pub serve: ServeArgs,

    #[command(flatten)]
    pub load: LoadArgs,

    #[command(flatten)]
    pub worker: WorkerArgs,

    /// Show the terminal UI while serving.
    #[arg(long, global = true)]
    pub cli: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Strict simulated users.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Run strict simulated users against the server (or against --target).
    #[arg(long = "gen", global = true)]
    pub generate: bool,
    /// Simulated users (accounts).
    #[arg(long, global = true, default_value_t = 5)]
    pub concurrency: usize,
    /// Notes each user keeps.
    #[arg(long, global = true, default_value_t = 3)]
    pub notes_per_account: usize,
    /// Requests per minute per user.
    #[arg(long, global = true, default_value_t = 60)]
    pub rpm: u32,
    /// Run the users against another Notely at this URL instead of serving (several
    /// comma-separated URLs: each request goes to one of them at random).
    #[arg(long, global = true)]
    pub target: Option<String>,
}

impl LoadArgs {
    fn config(&self, duration: Option<Duration>) -> Result<LoadConfig> {
        anyhow::ensure!(self.rpm > 0, "--rpm must be at least 1");
        anyhow::ensure!(self.concurrency > 0, "--concurrency must be at least 1");
        Ok(LoadConfig {
            accounts: self.concurrency,
            notes_per_account: self.notes_per_account,
            rpm: self.rpm,
            duration,
        })
    }
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
    /// Online data moves: accounts' notes from one store to another, while Notely serves.
    #[command(subcommand)]
    Move(MoveCommand),
    /// Migrate the databases (per --migrate), then serve the REST API until Ctrl-C (what
    /// `notely` without a command does).
    Serve,
    /// Serve on a free loopback port, run strict simulated users against it, and report.
    Demo {
        /// How long the users run, in seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Simulated users (accounts).
        #[arg(long, default_value_t = 5)]
        accounts: usize,
        /// Requests per minute per user.
        #[arg(long = "user-rpm", default_value_t = 600)]
        user_rpm: u32,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Seed the legacy store first, then move every account to the new store while the
        /// users run.
        #[arg(long)]
        legacy: bool,
        /// With --legacy: legacy notes seeded per account, besides the users' own.
        #[arg(long, default_value_t = 200)]
        legacy_notes: usize,
        /// Then shard every account into N shards while the users run.
        #[arg(long)]
        shards: Option<usize>,
        /// Then reshard into M shards.
        #[arg(long, requires = "shards")]
        reshard: Option<usize>,
    },
}

/// `notely move …`
#[derive(Debug, Subcommand)]
pub enum MoveCommand {
    /// Start moving accounts' notes to a store (a running `notely serve` carries it out).
    Start {
        /// The store to move to.
        #[arg(long, required_unless_present = "shards")]
        to: Option<String>,
        /// Shard every account by the hash of its id into N shard databases (created as
        /// needed); again later with another N, reshard: only the logical shards that change
        /// location move.
        #[arg(long, conflicts_with_all = ["to", "accounts", "fraction", "all"])]
        shards: Option<usize>,
        /// These accounts (comma-separated ids).
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["fraction", "all"])]
        accounts: Vec<uuid::Uuid>,
        /// A stable share of the accounts, 0 to 1 (a larger share later adds accounts).
        #[arg(long, conflicts_with = "all")]
        fraction: Option<f64>,
        /// Every account; new accounts are placed at the target from now on.
        #[arg(long)]
        all: bool,
        /// Carry the move out in this process, showing progress, instead of leaving it to a
        /// server.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Show the moves and their progress.
    Status {
        /// Only this move.
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a move (default: the newest unfinished one): accounts not yet switched go back
    /// to their source, losing nothing.
    Cancel {
        id: Option<i64>,
        /// Carry the cancel out in this process instead of leaving it to a server.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Work on unfinished moves in this process until none is left.
    Run {
        #[command(flatten)]
        pace: PaceArgs,
    },
    /// Create accounts in the legacy store with notes in the legacy layout (a legacy world to
    /// move from, for demos, tests and benchmarks).
    SeedLegacy {
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        /// Notes per account.
        #[arg(long, default_value_t = 100)]
        notes: usize,
    },
}

/// How the move worker of `notely serve` paces the backfill.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Records per backfill batch of the server's move worker.
    #[arg(long, global = true, default_value_t = 100)]
    pub move_batch: usize,
    /// At most this many records per second for the server's move worker.
    #[arg(long, global = true)]
    pub move_max_rate: Option<f64>,
    /// Milliseconds the server's move worker rests after each batch.
    #[arg(long, global = true, default_value_t = 1.0)]
    pub move_pause_ms: f64,
}

impl WorkerArgs {
    pub fn pace(&self) -> Result<strata::online::Pace> {
        PaceArgs {
            batch: self.move_batch,
            max_rate: self.move_max_rate,
            pause_ms: self.move_pause_ms,
        }
        .pace()
    }
}

/// How hard the backfill pushes.
#[derive(Debug, Clone, Args)]
pub struct PaceArgs {
    /// Records per backfill batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// At most this many records per second (default: no limit).
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Milliseconds to rest after each batch, leaving the databases to requests.
    #[arg(long, default_value_t = 1.0)]
    pub pause_ms: f64,
}

impl PaceArgs {
    pub fn pace(&self) -> Result<strata::online::Pace> {
        anyhow::ensure!(self.batch > 0, "--batch must be at least 1");
        Ok(strata::online::Pace {
            batch: self.batch,
            max_rate: self.max_rate,
            pause: seconds("--pause-ms", self.pause_ms / 1000.0)?,
            ..strata::online::Pace::default()
        })
    }
}

/// Where the API listens.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port; the chosen one is printed).
    #[arg(long, global = true, env = "NOTELY_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, global = true, env = "NOTELY_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Another origin allowed to call the API from a browser (repeatable); `http://localhost:*`
    /// and `http://127.0.0.1:*` always are.
    #[arg(long = "cors-origin", global = true)]
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
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".data"));
    match cli.command {
        None | Some(Command::Serve) => {
            if let Some(target) = &cli.load.target {
                let report = crate::server::load_only(target, cli.load.config(None)?)?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(if report.consistency_misses == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                });
            }
            let addr = std::net::SocketAddr::new(cli.serve.host, cli.serve.port);
            let load = if cli.load.generate {
                Some(cli.load.config(None)?)
            } else {
                None
            };
            let pace = cli.worker.pace()?;
            crate::server::serve(
                &data_dir,
                addr,
                cli.serve.cors_origins.clone(),
                load,
                &settings,
                cli.cli,
                pace,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Demo {
            duration,
            accounts,
            user_rpm,
            json,
            legacy,
            legacy_notes,
            shards,
            reshard,
        }) => {
            let duration = seconds("--duration", duration)?;
            let temp = match &cli.data_dir {
                Some(_) => None,
                None => Some(tempfile_dir()?),
            };
            let dir = temp.as_ref().map(|t| t.0.clone()).unwrap_or(data_dir);
            db::startup(&dir, &settings, &mut std::io::sink(), None)?;
            let config = LoadConfig {
                accounts,
                notes_per_account: cli.load.notes_per_account,
                rpm: user_rpm,
                duration: Some(duration),
            };
            anyhow::ensure!(
                accounts > 0 && user_rpm > 0,
                "--accounts and --user-rpm must be at least 1"
            );
            let plan = crate::server::DemoMoves {
                legacy: legacy.then_some(legacy_notes),
                shards,
                reshard,
            };
            let report = crate::server::demo(&dir, config, plan, &settings, cli.worker.pace()?)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "notely demo: {} strict users for {:.1}s on {}",
                    report.load.accounts, report.load.duration_s, report.data_dir
                )?;
                writeln!(
                    out,
                    "  requests {} ({:.0}/s), errors {}, consistency misses {}, p50 {:.2} ms, p99 {:.2} ms",
                    report.load.requests,
                    report.load.requests_per_s,
                    report.load.errors,
                    report.load.consistency_misses,
                    report.load.p50_ms,
                    report.load.p99_ms
                )?;
                for (route, s) in &report.server.api {
                    writeln!(
                        out,
                        "  {route:<40} {:>7} req  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
                        s.count, s.p50_ms, s.p99_ms, s.errors
                    )?;
                }
                for (store, n) in &report.server.note_counts {
                    writeln!(out, "  notes in {store}: {n}")?;
                }
                if let Some(l) = &report.moves {
                    writeln!(
                        out,
                        "  moves: {} legacy notes seeded; p99 before {:.2} ms, during {:.2} ms; \
                         verify differences {}",
                        l.legacy_notes_seeded,
                        l.p99_before_ms,
                        l.p99_during_ms,
                        l.verify_differences
                    )?;
                    for m in &l.moves {
                        writeln!(
                            out,
                            "  move {} ({}) {}: {} accounts, {} records in {:.2}s ({:.0}/s), \
                             p99 {:.2} ms",
                            m.id,
                            m.description,
                            m.state,
                            m.accounts,
                            m.records,
                            m.duration_s,
                            m.records_per_s,
                            m.p99_during_ms
                        )?;
                    }
                }
            }
            let moved_cleanly = report.moves.as_ref().is_none_or(|l| {
                l.verify_differences == 0 && l.moves.iter().all(|m| m.state == "done")
            });
            Ok(
                if report.load.consistency_misses == 0 && report.load.errors == 0 && moved_cleanly {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                },
            )
        }
        Some(Command::Move(command)) => crate::moves::command(&data_dir, &settings, command),
        Some(Command::Migrate(args)) => {
            if matches!(
                args.command,
                strata::cli::MigrateCommand::Up { .. }
                    | strata::cli::MigrateCommand::Approve { .. }
            ) {
                std::fs::create_dir_all(&data_dir).map_err(|e| {
                    anyhow::anyhow!("creating data directory {}: {e}", data_dir.display())
                })?;
            }
            Ok(strata::cli::main(&args, &db::fleet(&data_dir, &settings)))
        }
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<TempDir> {
    let dir = std::env::temp_dir().join(format!(
        "notely-demo-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}
