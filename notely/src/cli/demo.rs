//! `notely demo`: a server on a fresh data directory, strict users against it, and with
//! `--legacy`/`--shards`/`--reshard` data moves, or with `--deploy` a deploy, while they run;
//! the report.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notely_migrations::{LEGACY, NOTES};
use serde::Serialize;
use strata_online::Pace;

use crate::deploy::{self, Phase};
use crate::http::serve::Limits;
use crate::loadgen::{self, LoadConfig, LoadReport};
use crate::server::{Server, ServerConfig, handed_over, refresh_counts, runtime};
use crate::store::Db;
use crate::telemetry::{Snapshot, Telemetry};

/// The demo's report: what the strict users saw, and what the server measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub data_dir: String,
    #[serde(flatten)]
    pub load: LoadReport,
    /// With data moves (`--legacy`, `--shards`, `--reshard`): what they did.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub moves: Option<MovesReport>,
    /// With `--deploy`: what each deploy did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deploys: Vec<DeployFigures>,
    pub server: Snapshot,
}

/// One deploy's figures, as the strict users saw it.
#[derive(Debug, Serialize)]
pub struct DeployFigures {
    pub id: String,
    /// `READY`, or `FAILED`.
    pub phase: String,
    pub reason: Option<String>,
    /// The new process (stopped at the end of the demo).
    pub new_pid: Option<u32>,
    /// From the deploy's start until the old process stopped serving (or the deploy failed).
    pub duration_s: f64,
    /// Requests that failed from the deploy's start to the end of the run.
    pub failed_requests: u64,
    /// Of them, connections that could not be made.
    pub refused_connections: u64,
    /// Migrations the new binary deferred at startup (0 when it did not say).
    pub deferred: u64,
    /// How long after the hand-over the deferred migrations were applied (unknown: `null`).
    pub applied_after_s: Option<f64>,
}

/// The demo's deploy overlap: short, the demo is about the hand-over.
const DEMO_OVERLAP: Duration = Duration::from_secs(3);

/// What the demo's data moves did.
#[derive(Debug, Serialize)]
pub struct MovesReport {
    /// Notes seeded into the legacy store besides the users' own (`--legacy`).
    pub legacy_notes_seeded: u64,
    /// Differences verification found, over all moves (0 for correct moves).
    pub verify_differences: u64,
    /// API p99 (ms) as the users saw it before the first move, and during the moves.
    pub p99_before_ms: f64,
    pub p99_during_ms: f64,
    pub moves: Vec<MoveFigures>,
    /// Notes per store (and shard) at the end.
    pub note_counts: std::collections::BTreeMap<String, u64>,
}

/// One move's figures.
#[derive(Debug, Serialize)]
pub struct MoveFigures {
    pub id: i64,
    pub description: String,
    pub state: String,
    pub accounts: u64,
    pub duration_s: f64,
    pub records: u64,
    pub records_per_s: f64,
    pub verify_differences: u64,
    /// API p99 (ms) during this move.
    pub p99_during_ms: f64,
}

impl MoveFigures {
    pub fn of(s: &strata_online::MoveStatus, p99_during_ms: f64) -> MoveFigures {
        let r = &s.record;
        let duration_s =
            (r.finished_at.unwrap_or(r.updated_at) - r.created_at).max(0) as f64 / 1000.0;
        MoveFigures {
            id: r.id,
            description: r.description.clone(),
            state: r.state.as_str().to_string(),
            accounts: r.owners,
            duration_s,
            records: r.records_copied,
            records_per_s: if duration_s > 0.0 {
                r.records_copied as f64 / duration_s
            } else {
                0.0
            },
            verify_differences: r.differences,
            p99_during_ms,
        }
    }
}

/// The data moves a demo makes while its users run.
#[derive(Debug, Clone, Default)]
pub struct DemoMoves {
    /// Start in the legacy store, with this many extra legacy notes per account, and move
    /// everything to the new store.
    pub legacy: Option<usize>,
    /// Then shard into this many shards.
    pub shards: Option<usize>,
    /// Then reshard into this many.
    pub reshard: Option<usize>,
}

impl DemoMoves {
    fn any(&self) -> bool {
        self.legacy.is_some() || self.shards.is_some() || self.reshard.is_some()
    }
}

/// Starts the server on `data_dir` (migrated already), runs the strict users for the
/// configured duration, stops the server, and reports. With data moves, new accounts may start
/// in the legacy store (which gets extra notes per account); after the duration the moves run
/// one after the other while the users go on, and the users stop once they are over.
pub fn demo(
    data_dir: &Path,
    config: LoadConfig,
    plan: DemoMoves,
    settings: &crate::db::Settings,
    pace: Pace,
) -> Result<DemoReport> {
    runtime()?.block_on(async {
        let telemetry = Telemetry::capturing();
        if plan.legacy.is_some() {
            let control = Db::open(&data_dir.join("control.db"), 1)?;
            control.with_writer(|c| {
                strata_online::directory::set_setting(
                    c,
                    strata_online::directory::DEFAULT_LOCATION,
                    LEGACY,
                )
            })?;
        }
        let server = Server::start(
            data_dir,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Vec::new(),
            Arc::clone(&telemetry),
            Some(pace),
        )
        .await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if !plan.any() {
            let load = loadgen::run(
                &format!("http://{}", server.addr),
                &config,
                Arc::clone(&telemetry),
                stopped,
            )
            .await?;
            refresh_counts(&server.state).await;
            server.stop().await?;
            return Ok(DemoReport {
                data_dir: data_dir.display().to_string(),
                load,
                moves: None,
                deploys: Vec::new(),
                server: telemetry.snapshot(),
            });
        }
        let before = config.duration.unwrap_or(Duration::from_secs(5));
        let users = spawn_users(server.addr, &config, &telemetry, stopped);
        let engine = Arc::clone(server.state.notes.engine());
        let control = Arc::clone(&server.state.control);
        // Wait for the users' accounts.
        let accounts = loop {
            let list = control.read(crate::store::accounts::list).await?;
            if list.len() >= config.accounts || users.is_finished() {
                break list.into_iter().map(|a| a.id).collect::<Vec<_>>();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut seeded = 0;
        if let Some(per_account) = plan.legacy {
            let engine = Arc::clone(&engine);
            seeded = tokio::task::spawn_blocking(move || {
                crate::moves::seed_legacy_notes(&engine, &accounts, per_account)
            })
            .await??;
            tracing::info!("demo: seeded {seeded} legacy notes");
        }
        let before_from = std::time::Instant::now();
        tokio::time::sleep(before).await;
        let mut windows = Vec::new();
        let mut done = Vec::new();
        let steps = [
            plan.legacy.map(|_| Step::To(NOTES.to_string())),
            plan.shards.map(Step::Shards),
            plan.reshard.map(Step::Shards),
        ];
        for step in steps.into_iter().flatten() {
            let from = std::time::Instant::now();
            let started = {
                let (engine, dir, settings) = (
                    Arc::clone(&engine),
                    data_dir.to_path_buf(),
                    settings.clone(),
                );
                tokio::task::spawn_blocking(move || -> Result<_> {
                    match step {
                        Step::To(to) => Ok(crate::moves::start(
                            &engine,
                            &crate::moves::Selection::All,
                            &to,
                        )?),
                        Step::Shards(n) => crate::moves::start_shards(&engine, &dir, &settings, n),
                    }
                })
                .await??
            };
            let Some(started) = started else { continue };
            tracing::info!(
                "demo: started move {} ({})",
                started.id,
                started.description
            );
            let status = loop {
                let engine = Arc::clone(&engine);
                let s =
                    tokio::task::spawn_blocking(move || engine.move_status(started.id)).await??;
                if !s.record.state.is_active() {
                    break s;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            windows.push((from, std::time::Instant::now()));
            done.push(status);
        }
        // A little traffic after the last switch.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = stop.send(true);
        let load = users.await.context("load generator")??;
        refresh_counts(&server.state).await;
        let note_counts = server.state.notes.totals().await?.into_iter().collect();
        server.stop().await?;
        let during: Vec<(std::time::Instant, u64)> = load
            .samples
            .iter()
            .filter(|(at, _)| windows.iter().any(|(a, b)| at >= a && at < b))
            .copied()
            .collect();
        let p99_during_ms = LoadReport {
            samples: during,
            ..load.clone()
        }
        .p99_between(before_from, std::time::Instant::now());
        let moves = done
            .iter()
            .zip(&windows)
            .map(|(s, (a, b))| MoveFigures::of(s, load.p99_between(*a, *b)))
            .collect::<Vec<_>>();
        Ok(DemoReport {
            data_dir: data_dir.display().to_string(),
            moves: Some(MovesReport {
                legacy_notes_seeded: seeded,
                verify_differences: moves.iter().map(|m| m.verify_differences).sum(),
                p99_before_ms: load.p99_between(
                    before_from,
                    windows.first().map(|w| w.0).unwrap_or(before_from),
                ),
                p99_during_ms,
                moves,
                note_counts,
            }),
            load,
            deploys: Vec::new(),
            server: telemetry.snapshot(),
        })
    })
}

/// Starts the server on `data_dir` (migrated already) and strict users against it; after a
/// quarter of the duration, deploys the same binary (a [`DEMO_OVERLAP`] overlap). The users go
/// on against the same port, served by the new process after the hand-over, until the duration
/// has passed and at least a second after the hand-over; then the new process is stopped.
pub fn demo_deploy(
    data_dir: &Path,
    config: LoadConfig,
    settings: &crate::db::Settings,
    pace: Pace,
    limits: Limits,
    umask: u32,
    binary: Option<std::path::PathBuf>,
) -> Result<DemoReport> {
    runtime()?.block_on(async {
        let telemetry = Telemetry::capturing();
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let launch = super::serve::relaunch(&super::serve::ServeConfig {
            data_dir: data_dir.to_path_buf(),
            addr,
            cors: Vec::new(),
            settings: settings.clone(),
            limits,
            pace: pace.clone(),
            load: None,
            ui: false,
            umask,
            deploy_overlap: DEMO_OVERLAP,
        });
        let server = Server::start_when(
            ServerConfig {
                data_dir: data_dir.to_path_buf(),
                addr,
                cors: Vec::new(),
                telemetry: Arc::clone(&telemetry),
                pace: Some(pace),
                admin: crate::server::admin(data_dir, settings)?,
                limits,
                deploy: Some(launch),
            },
            async { Ok(()) },
            |_| {},
        )
        .await?;
        let deployer = server
            .deployer()
            .cloned()
            .context("the demo's server deploys")?;
        let handover = server.handover();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let users = spawn_users(server.addr, &config, &telemetry, stopped);
        let duration = config.duration.unwrap_or(Duration::from_secs(10));
        let began = std::time::Instant::now();
        tokio::time::sleep((duration / 4).max(Duration::from_secs(1))).await;
        let from = std::time::Instant::now();
        let started = deployer
            .start(deploy::Request {
                binary,
                overlap: Some(DEMO_OVERLAP),
            })
            .await?;
        tracing::info!("demo: deploy {} started", started.id_or_dash());
        let end = loop {
            let s = {
                let dir = data_dir.to_path_buf();
                tokio::task::spawn_blocking(move || deploy::status(&dir)).await??
            };
            if s.id == started.id && !s.phase.is_running() {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        refresh_counts(&server.state).await;
        let mut server = Some(server);
        let mut applied_after_s = None;
        if end.phase == Phase::Ready {
            handed_over(handover).await;
            if let Some(server) = server.take() {
                server.stop().await?;
            }
            // This process no longer serves: the new one applies what it deferred.
            let left = std::time::Instant::now();
            let deferred = end.new.as_ref().and_then(|n| n.deferred).unwrap_or(0);
            while deferred > 0 && left.elapsed() < Duration::from_secs(20) {
                let (dir, settings) = (data_dir.to_path_buf(), settings.clone());
                let waiting =
                    tokio::task::spawn_blocking(move || crate::db::still_deferred(&dir, &settings))
                        .await??;
                if waiting == 0 {
                    applied_after_s = Some(left.elapsed().as_secs_f64());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let took = from.elapsed();
        let rest = duration.saturating_sub(began.elapsed());
        tokio::time::sleep(rest.max(Duration::from_secs(1))).await;
        let _ = stop.send(true);
        let load = users.await.context("load generator")??;
        if let Some(server) = server {
            server.stop().await?;
        }
        let stopped = tokio::task::spawn_blocking(move || deployer.stop_new(deploy::STOP_GRACE))
            .await
            .context("stopping the new process")?;
        tracing::info!("demo: the new process ended ({stopped:?})");
        let (failed_requests, refused_connections) =
            load.failures_between(from, std::time::Instant::now());
        Ok(DemoReport {
            data_dir: data_dir.display().to_string(),
            moves: None,
            deploys: vec![DeployFigures {
                id: end.id_or_dash().to_string(),
                phase: end.phase.as_str().to_string(),
                reason: end.reason.clone(),
                new_pid: end.new.as_ref().map(|n| n.pid),
                duration_s: took.as_secs_f64(),
                failed_requests,
                refused_connections,
                deferred: end.new.as_ref().and_then(|n| n.deferred).unwrap_or(0),
                applied_after_s,
            }],
            load,
            server: telemetry.snapshot(),
        })
    })
}

/// The strict users, running against `addr` until `stopped`.
fn spawn_users(
    addr: SocketAddr,
    config: &LoadConfig,
    telemetry: &Arc<Telemetry>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<LoadReport>> {
    let (base, telemetry) = (format!("http://{addr}"), Arc::clone(telemetry));
    let config = LoadConfig {
        duration: None,
        ..config.clone()
    };
    tokio::spawn(async move { loadgen::run(&base, &config, telemetry, stopped).await })
}

/// One data move of the demo.
enum Step {
    To(String),
    Shards(usize),
}
