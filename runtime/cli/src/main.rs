//! `strata`: authoring tools for Strata migrations, and the bulk shard splitter.
//!
//!     strata new <name> [--role R] [--dir migrations/src]
//!     strata introspect <DB> [--table T]... [--role R] [--version V]
//!     strata split --source SRC.db --table T --key COL --shards N --out DIR [--readers K]
//!                  [--batch B] [--resume] [--placement hash|logical] [--log-format text|json]
//!     strata split verify --source SRC.db --table T --key COL --shards N --out DIR

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Authoring tools for Strata migrations, and the bulk shard splitter"
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
    /// Split a table into shard databases by a key: offline, resumable, exact. `split verify`
    /// compares the shards with the source.
    Split(Box<SplitArgs>),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SplitArgs {
    #[command(subcommand)]
    action: Option<SplitAction>,
    #[command(flatten)]
    options: SplitFlags,
    /// Continue a split that stopped (crash, Ctrl-C, full disk) with the same parameters.
    #[arg(long)]
    resume: bool,
    /// Log lines: `text`, or `json` (one object per line, with rows/s per shard).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Debug, Subcommand)]
enum SplitAction {
    /// Compare every shard with the source (row counts and content hashes); exit 3 on a
    /// difference.
    Verify {
        #[command(flatten)]
        options: SplitFlags,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct SplitFlags {
    /// The source database (opened read-only).
    #[arg(long, required = true)]
    source: Option<PathBuf>,
    /// The table to split.
    #[arg(long, required = true)]
    table: Option<String>,
    /// The column whose value picks the shard.
    #[arg(long, required = true)]
    key: Option<String>,
    /// Shards (a reserved one more takes NULL and blank keys).
    #[arg(long, required = true)]
    shards: Option<u32>,
    /// Directory of the shard files `<table>_shard_NN.db`.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Reader threads, each reading its own rowid range (default: half the cores, at least 1).
    #[arg(long)]
    readers: Option<usize>,
    /// Rows per batch (and per shard commit).
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// `hash`: SHA-256 of the key's text mod N (the original tool's); `logical`: Notely's
    /// logical shards, in contiguous ranges.
    #[arg(long, default_value = "hash", value_parser = ["hash", "logical"])]
    placement: String,
}

impl SplitFlags {
    fn options(&self, resume: bool) -> Result<strata_split::SplitOptions> {
        let missing = |what: &str| anyhow::anyhow!("--{what} is required");
        Ok(strata_split::SplitOptions {
            source: self.source.clone().ok_or_else(|| missing("source"))?,
            table: self.table.clone().ok_or_else(|| missing("table"))?,
            key: self.key.clone().ok_or_else(|| missing("key"))?,
            shards: self.shards.ok_or_else(|| missing("shards"))?,
            out: self.out.clone().ok_or_else(|| missing("out"))?,
            readers: self.readers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| (n.get() / 2).max(1))
                    .unwrap_or(1)
            }),
            batch: self.batch,
            resume,
            placement: if self.placement == "logical" {
                strata_split::Routing::Logical
            } else {
                strata_split::Routing::Hash
            },
        })
    }
}

fn split(args: SplitArgs) -> Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};
    if let Some(SplitAction::Verify { options, json }) = args.action {
        let report = strata_split::verify(&options.options(false)?)?;
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            for s in &report.shards {
                println!(
                    "{} shard {:02}: {} rows (source: {}), hash {} (source: {}){}",
                    if s.ok { "ok  " } else { "DIFF" },
                    s.shard,
                    s.rows,
                    s.expected_rows,
                    s.hash,
                    s.expected_hash,
                    if s.complete { "" } else { ", not complete" }
                );
            }
            println!(
                "{}",
                if report.ok {
                    "every shard matches the source"
                } else {
                    "the shards differ from the source"
                }
            );
        }
        return Ok(if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        });
    }
    let options = args.options.options(args.resume)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the Ctrl-C handler")?;
    }
    let json = args.log_format == "json";
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} rows, {per_sec}, eta {eta}",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let mut last: Option<(Instant, Vec<u64>)> = None;
    let mut log = |p: &strata_split::Progress| {
        bar.set_length(p.total);
        bar.set_position(p.rows);
        let now = Instant::now();
        let rates: Vec<f64> = match &last {
            Some((at, before)) => {
                let secs = now.duration_since(*at).as_secs_f64().max(1e-9);
                p.per_shard
                    .iter()
                    .zip(before)
                    .map(|(a, b)| a.saturating_sub(*b) as f64 / secs)
                    .collect()
            }
            None => vec![0.0; p.per_shard.len()],
        };
        let total_rate: f64 = rates.iter().sum();
        if json {
            let shards: Vec<serde_json::Value> = p
                .per_shard
                .iter()
                .zip(&rates)
                .enumerate()
                .map(|(k, (rows, rate))| {
                    serde_json::json!({"shard": k, "rows": rows, "rows_per_s": rate.round()})
                })
                .collect();
            bar.suspend(|| {
                println!(
                    "{}",
                    serde_json::json!({
                        "ts": chrono::Utc::now().to_rfc3339(),
                        "level": "info",
                        "msg": "progress",
                        "rows": p.rows,
                        "total": p.total,
                        "rows_per_s": total_rate.round(),
                        "elapsed_s": p.elapsed_s,
                        "shards": shards,
                    })
                );
            });
        } else if bar.is_hidden() {
            eprintln!(
                "strata split: {}/{} rows, {:.0} rows/s, {:.1}s",
                p.rows, p.total, total_rate, p.elapsed_s
            );
        }
        last = Some((now, p.per_shard.clone()));
    };
    let result = strata_split::split(&options, &stop, Duration::from_secs(1), &mut log);
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(strata_split::SplitError::Interrupted) => {
            eprintln!("strata split: {}", strata_split::SplitError::Interrupted);
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ts": chrono::Utc::now().to_rfc3339(),
                "level": "info",
                "msg": "done",
                "report": report,
            })
        );
    } else {
        println!(
            "strata split: {} rows into {} shards in {:.2}s ({:.0} rows/s); per shard: {}",
            report.rows,
            report.per_shard.len(),
            report.duration_s,
            report.rows_per_s,
            report
                .per_shard
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Split(args) => return split(*args),
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
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
