//! `strata`: authoring tools for Strata migrations, and the bulk shard splitter.
//!
//!     strata new <name> [--role R] [--dir migrations/src]
//!     strata introspect <DB> [--table T]... [--role R] [--version V]
//!     strata import --from sqlx|refinery|diesel|goose <DIR> [--out migrations/src] [--role R]
//!                   [--database DB] [--base-time '2000-01-01 00:00:00']
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
    /// Turn a sqlx, refinery, diesel or goose migrations folder into Strata migrations (the
    /// SQL verbatim beside each, declarations from a replay), registered in <out>/lib.rs. With
    /// --database, tell (read-only) what that database will adopt; exit 3 on a problem.
    Import {
        /// The tool the folder is written for.
        #[arg(long, value_parser = ["sqlx", "refinery", "diesel", "goose"])]
        from: String,
        /// The peer's migrations folder.
        dir: PathBuf,
        /// Where to write the Strata migrations (created if missing).
        #[arg(long, default_value = "migrations/src")]
        out: PathBuf,
        /// Role of the migrations.
        #[arg(long, default_value = strata::DEFAULT_ROLE)]
        role: String,
        /// A database the peer migrated: check what the runner will adopt, before switching.
        #[arg(long)]
        database: Option<PathBuf>,
        /// Sequential peer versions n (refinery's V1, goose's 00001) become this UTC time plus
        /// n seconds.
        #[arg(long, default_value = "2000-01-01 00:00:00")]
        base_time: String,
        /// Declare in each migration only the tables, views and triggers it adds or changes
        /// (`extends` the previous one) instead of its role's whole schema.
        #[arg(long)]
        inherit: bool,
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

/// `strata import`: read, replay and write; then, with a database, what it will adopt.
fn import(
    from: &str,
    dir: &std::path::Path,
    out: &std::path::Path,
    role: &str,
    database: Option<&std::path::Path>,
    base_time: &str,
    inherit: bool,
) -> Result<ExitCode> {
    use strata::import::{self, Decision, Tool};
    let tool = Tool::from_name(from).context("unknown tool")?;
    let base = import::parse_base_time(base_time)?;
    let plan = import::plan_with(tool, dir, role, base, inherit)
        .with_context(|| format!("importing {} from {}", tool, dir.display()))?;
    for w in &plan.warnings {
        println!("skipped {w}");
    }
    for m in &plan.migrations {
        let how = if m.mapped {
            format!(
                "; {tool} version {} counted as seconds after {base_time}",
                m.peer.version
            )
        } else {
            String::new()
        };
        println!(
            "{} -> {} (version {}{how})",
            m.peer.source, m.module, m.version
        );
    }
    let written = import::write(&plan, out)?;
    println!(
        "wrote {} file(s) to {}{}",
        written.written.len(),
        out.display(),
        if written.unchanged.is_empty() {
            String::new()
        } else {
            format!(" ({} already there, unchanged)", written.unchanged.len())
        }
    );
    if let Some(lib) = &written.registered_in {
        println!(
            "{} {}",
            if written.created_lib {
                "created"
            } else {
                "registered the modules in"
            },
            lib.display()
        );
    }
    let Some(database) = database else {
        println!(
            "next: build, and run the migrator on a database {tool} made: what {} records as \
             applied is adopted (recorded, not run); `--database DB` checks one first",
            tool.history_table()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let check = import::check_database(&plan, database)
        .with_context(|| format!("checking {}", database.display()))?;
    println!("{}:", database.display());
    if !check.table_found {
        println!(
            "  no {} table: nothing to adopt, every migration runs",
            check.table
        );
    }
    if let Some(role) = &check.strata_role {
        println!("  Strata already ran on it (role `{role}`)");
    }
    for e in &check.entries {
        let what = if e.in_strata_history {
            "already in Strata's history".to_string()
        } else {
            match &e.decision {
                Decision::Adopt { checked: true } => "adopt (checksum matches)".to_string(),
                Decision::Adopt { checked: false } => {
                    format!("adopt ({tool} keeps no checksum)")
                }
                Decision::Run => "run (not applied by the peer)".to_string(),
                Decision::Failed => "REFUSED: the peer recorded it as failed".to_string(),
                Decision::Mismatch { recorded, computed } => {
                    format!("REFUSED: checksum mismatch (recorded {recorded}, file {computed})")
                }
            }
        };
        println!("  {} {}: {what}", e.version, e.source);
    }
    for v in &check.unknown {
        println!(
            "  {tool} version {v}: applied, but not in {}",
            dir.display()
        );
    }
    let problems = check.problems();
    if problems.is_empty() {
        println!("ok: switching adopts what {tool} applied and runs the rest");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("the runner would refuse this database:");
        for p in &problems {
            println!("  {p}");
        }
        Ok(ExitCode::from(3))
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Import {
            from,
            dir,
            out,
            role,
            database,
            base_time,
            inherit,
        } => {
            return import(
                &from,
                &dir,
                &out,
                &role,
                database.as_deref(),
                &base_time,
                inherit,
            );
        }
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
