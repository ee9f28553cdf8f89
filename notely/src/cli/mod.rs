//! Command line: `notely [--data-dir DIR] [--migrate MODE] [migrate <command>]`.

pub mod demo;
mod deploy;
mod feed;
mod moves;
pub mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
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

    /// File mode creation mask (octal) for what Notely creates: the data directory, databases,
    /// backups and the operator token. 077: owner only (directories 0700, files 0600); 027
    /// lets the group read them.
    #[arg(long, global = true, env = "NOTELY_UMASK", default_value = "077", value_parser = umask)]
    pub umask: u32,

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

    /// At startup, check databases up to this many MiB for damage (`PRAGMA quick_check`)
    /// and refuse to start on any; 0: check none (`migrate verify` checks every one).
    #[arg(
        long,
        global = true,
        env = "NOTELY_STARTUP_CHECK_LIMIT",
        value_name = "MIB",
        default_value_t = crate::db::STARTUP_CHECK_LIMIT / (1024 * 1024)
    )]
    pub startup_check_limit: u64,
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
    /// Ask the running server (at --host/--port) to deploy: it launches a new binary on its
    /// port, waits until it serves, keeps both serving for the overlap, then hands over. Follows
    /// it to the end; exits with 3 if it failed.
    Deploy {
        /// The binary to launch [default: the server's own executable, as it is on disk now].
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Seconds both serve side by side (`30` or `30s`) [default: the server's
        /// --deploy-overlap].
        #[arg(long, value_parser = overlap)]
        overlap: Option<f64>,
        /// Print the deploy's end state as one JSON object.
        #[arg(long)]
        json: bool,
    },
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
        /// Deploy the same binary while the users run (a 3 s overlap), and report whether any
        /// request failed meanwhile.
        #[arg(long, conflicts_with_all = ["legacy", "shards"])]
        deploy: bool,
        /// With --deploy: the binary to put live instead of this one, e.g. the next release
        /// (`cargo build -p notely --features next --target-dir target/next`, then
        /// `target/next/debug/notely`): its expand migrations apply as it starts, its contracts
        /// once this process has handed over.
        #[arg(long, requires = "deploy", value_name = "PATH")]
        deploy_binary: Option<PathBuf>,
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
    /// Milliseconds the server's move worker rests after each batch, when it is not paced by
    /// latency (`--move-latency-budget 0`); under a budget the rate sets the rests, with this
    /// one once ten times as long passes without one (a chance for other processes' writers).
    #[arg(long, global = true, default_value_t = 1.0)]
    pub move_pause_ms: f64,
    /// The server's move worker keeps the foreground p99 (the engine's, and the API's) within
    /// this many times what it was before the backfill; 0: no latency pacing.
    #[arg(long, global = true, default_value_t = 1.5)]
    pub move_latency_budget: f64,
    /// Records per second the server's move worker never goes below under the latency
    /// budget, so that every move finishes.
    #[arg(long, global = true, default_value_t = 500.0)]
    pub move_min_rate: f64,
}

impl WorkerArgs {
    pub fn pace(&self) -> Result<strata_online::Pace> {
        PaceArgs {
            batch: self.move_batch,
            max_rate: self.move_max_rate,
            pause_ms: self.move_pause_ms,
            latency_budget: self.move_latency_budget,
            min_rate: self.move_min_rate,
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
    /// Milliseconds to rest after each batch, leaving the databases to requests, when not
    /// paced by latency (`--latency-budget 0`); under a budget the rate sets the rests, with
    /// this one once ten times as long passes without one (a chance for other processes' writers).
    #[arg(long, default_value_t = 1.0)]
    pub pause_ms: f64,
    /// Keep the foreground p99 within this many times what it was before the backfill (the
    /// rate adapts); 0: no latency pacing.
    #[arg(long, default_value_t = 1.5)]
    pub latency_budget: f64,
    /// Under the latency budget, never fewer records per second than this.
    #[arg(long, default_value_t = 500.0)]
    pub min_rate: f64,
}

impl PaceArgs {
    pub fn pace(&self) -> Result<strata_online::Pace> {
        anyhow::ensure!(self.batch > 0, "--batch must be at least 1");
        anyhow::ensure!(
            self.latency_budget == 0.0 || self.latency_budget >= 1.0,
            "the latency budget is a factor of at least 1 (or 0 for none)"
        );
        anyhow::ensure!(
            self.min_rate >= 1.0,
            "the minimum rate must be at least 1 record/s"
        );
        Ok(strata_online::Pace {
            batch: self.batch,
            max_rate: self.max_rate,
            pause: seconds("--pause-ms", self.pause_ms / 1000.0)?,
            latency_budget: (self.latency_budget > 0.0).then_some(self.latency_budget),
            min_rate: self.min_rate,
            ..strata_online::Pace::default()
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
    /// Connections served at once [default: half the open-file limit, at most 4096]. At the
    /// limit, each new connection closes the one idle the longest; if every connection is
    /// busy with a request, new ones queue.
    #[arg(long, global = true, env = "NOTELY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request's head, from its first byte.
    #[arg(
        long,
        global = true,
        env = "NOTELY_HEADER_TIMEOUT",
        default_value_t = 10.0
    )]
    pub header_timeout: f64,
    /// Seconds an open connection may wait for its next request (keep-alive).
    #[arg(
        long,
        global = true,
        env = "NOTELY_IDLE_TIMEOUT",
        default_value_t = 60.0
    )]
    pub idle_timeout: f64,
    /// Seconds a request may take from its first byte to its answer, body included.
    #[arg(
        long,
        global = true,
        env = "NOTELY_REQUEST_TIMEOUT",
        default_value_t = 30.0
    )]
    pub request_timeout: f64,
    /// Seconds the old and the new process both serve during a deploy (`POST /deploy`).
    #[arg(
        long,
        global = true,
        env = "NOTELY_DEPLOY_OVERLAP",
        value_name = "SECONDS",
        default_value_t = crate::deploy::OVERLAP.as_secs_f64()
    )]
    pub deploy_overlap: f64,
}

impl ServeArgs {
    fn limits(&self) -> Result<crate::http::serve::Limits> {
        let positive = |flag: &str, value: f64| {
            anyhow::ensure!(
                value > 0.0,
                "{flag} must be more than 0 seconds, got {value}"
            );
            seconds(flag, value)
        };
        let max_connections = match self.max_connections {
            Some(n) => {
                anyhow::ensure!(
                    (1..=1_000_000).contains(&n),
                    "--max-connections must be between 1 and 1000000, got {n}"
                );
                n
            }
            None => crate::http::serve::default_max_connections(),
        };
        Ok(crate::http::serve::Limits {
            max_connections,
            header_timeout: positive("--header-timeout", self.header_timeout)?,
            idle_timeout: positive("--idle-timeout", self.idle_timeout)?,
            request_timeout: positive("--request-timeout", self.request_timeout)?,
        })
    }
}

/// An octal file mode creation mask, at most 777.
fn umask(text: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("an octal mask like 077 or 027 was expected, got {text:?}"))
}

/// An overlap in seconds, `30` or `30s`.
fn overlap(text: &str) -> std::result::Result<f64, String> {
    text.trim()
        .trim_end_matches('s')
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| format!("a number of seconds like 30 or 30s was expected, got {text:?}"))
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
            startup_check_limit: self.startup_check_limit.saturating_mul(1024 * 1024),
        })
    }
}

impl Cli {
    /// Whether the command prints JSON (`--json`): then its errors are JSON too.
    pub fn json(&self) -> bool {
        match &self.command {
            Some(Command::Migrate(args)) => args.json,
            Some(Command::Demo { json, .. } | Command::Deploy { json, .. }) => *json,
            Some(Command::Move(MoveCommand::Status { json, .. })) => *json,
            _ => false,
        }
    }
}

/// Parses the command line. With `--json` on it, a usage error is one JSON object on stdout,
/// `{"error": .., "kind": "usage"}`, with clap's exit code (2); help and version as usual.
pub fn parse() -> std::result::Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            let text = e.render().to_string();
            let text = text.trim().trim_start_matches("error: ");
            println!("{}", strata::cli::error_json(&text, "usage"));
            Err(ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)))
        }
        Err(e) => e.exit(),
    }
}

/// Prints the error a command failed with: on stderr, or with `--json` as one JSON object on
/// stdout, `{"error": .., "kind": ..}` (the kind of Strata's error when it is one).
pub fn report_error(e: &anyhow::Error, json: bool) {
    if !json {
        eprintln!("error: {e:#}");
        return;
    }
    let kind = e
        .chain()
        .find_map(|cause| {
            if let Some(e) = cause.downcast_ref::<strata::Error>() {
                Some(e.kind())
            } else if let Some(e) = cause.downcast_ref::<strata::FleetError>() {
                Some(e.error.kind())
            } else {
                cause
                    .downcast_ref::<strata_online::MoveError>()
                    .map(|_| "move")
            }
        })
        .unwrap_or("error");
    println!("{}", strata::cli::error_json(&format_args!("{e:#}"), kind));
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // First, while this is the only thread: what a deploying parent handed this process.
    crate::deploy::inherit();
    let settings = cli.settings.settings()?;
    // What Notely creates holds the notes and the operator token: owner only by default. A
    // new migration's source file is the exception (it belongs to the source tree).
    let scaffolding = matches!(
        &cli.command,
        Some(Command::Migrate(a)) if matches!(a.command, strata::cli::MigrateCommand::New(_))
    );
    if !scaffolding {
        set_umask(cli.umask);
    }
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".data"));
    match cli.command {
        None | Some(Command::Serve) => {
            if let Some(target) = &cli.load.target {
                let report = serve::load_only(target, cli.load.config(None)?)?;
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
            serve::serve(serve::ServeConfig {
                data_dir,
                addr,
                cors: cli.serve.cors_origins.clone(),
                settings,
                limits: cli.serve.limits()?,
                pace,
                load,
                ui: cli.cli,
                umask: cli.umask,
                deploy_overlap: seconds("--deploy-overlap", cli.serve.deploy_overlap)?,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Deploy {
            binary,
            overlap,
            json,
        }) => {
            let addr = std::net::SocketAddr::new(cli.serve.host, cli.serve.port);
            deploy::command(&deploy::DeployArgs {
                addr,
                data_dir,
                binary,
                overlap: overlap.map(|s| seconds("--overlap", s)).transpose()?,
                json,
            })
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
            deploy,
            deploy_binary,
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
            let plan = demo::DemoMoves {
                legacy: legacy.then_some(legacy_notes),
                shards,
                reshard,
            };
            let report = if deploy {
                let limits = cli.serve.limits()?;
                demo::demo_deploy(
                    &dir,
                    config,
                    &settings,
                    cli.worker.pace()?,
                    limits,
                    cli.umask,
                    deploy_binary
                        .as_deref()
                        .map(std::path::absolute)
                        .transpose()
                        .context("resolving --deploy-binary")?,
                )?
            } else {
                demo::demo(&dir, config, plan, &settings, cli.worker.pace()?)?
            };
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
                for d in &report.deploys {
                    writeln!(
                        out,
                        "  deploy {} {}: {:.1}s, failed requests {}, refused connections {}, \
                         deferred migrations {}{}",
                        d.id,
                        d.phase,
                        d.duration_s,
                        d.failed_requests,
                        d.refused_connections,
                        d.deferred,
                        d.reason
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )?;
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
            }) && report.deploys.iter().all(|d| {
                d.phase == "READY"
                    && d.failed_requests == 0
                    && d.refused_connections == 0
                    && (d.deferred == 0 || d.applied_after_s.is_some())
            });
            Ok(
                if report.load.consistency_misses == 0 && report.load.errors == 0 && moved_cleanly {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                },
            )
        }
        Some(Command::Move(command)) => moves::command(&data_dir, &settings, command),
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

/// Sets the process's file-mode creation mask (no std API: umask).
#[allow(unsafe_code)]
fn set_umask(mask: u32) {
    // SAFETY: umask only sets the process's mask; nothing else is running yet.
    unsafe { libc::umask(mask as libc::mode_t) };
}
