//! Running Notely: the API server (with graceful shutdown), in-process load, and the demo.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::db::Stores;
use crate::http::admin::Admin;
use crate::http::api::AppState;
use crate::http::app;
use crate::http::serve::Limits;
use crate::loadgen::{self, LoadConfig, LoadReport};
use crate::moves::Worker;
use crate::proxy::NoteProxy;
use crate::store::Db;
use crate::telemetry::{Snapshot, Telemetry};
use axum::Router;
use notely_migrations::{LEGACY, NOTES};
use strata_online::Pace;

/// Opens the (migrated) databases under `data_dir`, with default settings for the operator
/// page.
pub fn state(
    data_dir: &Path,
    cors_origins: Vec<String>,
    telemetry: Arc<Telemetry>,
) -> Result<AppState> {
    let admin = admin(data_dir, &crate::db::Settings::default())?;
    state_with(data_dir, cors_origins, telemetry, &admin)
}

/// The operator page's state for `data_dir` (its token loaded, or created silently).
pub fn admin(data_dir: &Path, settings: &crate::db::Settings) -> Result<Admin> {
    let (token, _) = crate::http::admin::AdminToken::load(data_dir)
        .with_context(|| format!("reading the operator token in {}", data_dir.display()))?;
    Ok(Admin::new(token, data_dir, settings.clone()))
}

/// Opens the (migrated) databases under `data_dir`; the operator page keeps `admin`'s
/// sessions.
pub fn state_with(
    data_dir: &Path,
    cors_origins: Vec<String>,
    telemetry: Arc<Telemetry>,
    admin: &Admin,
) -> Result<AppState> {
    let Stores { control, engine } = Stores::open(data_dir, crate::db::READERS)?;
    Ok(AppState::new(crate::http::api::Shared {
        control,
        notes: NoteProxy::new(Arc::clone(&engine), Arc::clone(&telemetry)),
        cors_origins,
        telemetry,
        admin: admin.with_engine(engine),
    }))
}

/// What a server answers while checked mode waits for an approval: the operator page, and
/// 503 for everything else.
fn waiting_router(admin: Admin) -> Router {
    let unavailable = || async {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": "Notely is waiting for an operator to approve its pending migrations \
                          (the operator page is at /admin)"
            })),
        )
    };
    crate::http::admin::router(admin)
        .route("/healthz", axum::routing::get(unavailable))
        .fallback(unavailable)
}

/// What a server serves, and how.
pub struct ServerConfig {
    /// The data directory (migrated before the API is served).
    pub data_dir: std::path::PathBuf,
    /// Where to listen (port 0: a free one).
    pub addr: SocketAddr,
    /// Origins allowed besides the local ones.
    pub cors: Vec<String>,
    /// Where requests, store operations and logs are counted.
    pub telemetry: Arc<Telemetry>,
    /// With a pace, the server runs a move worker.
    pub pace: Option<Pace>,
    /// The operator page's state.
    pub admin: Admin,
    /// Connection cap and timeouts.
    pub limits: Limits,
}

/// A running API server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: Option<Worker>,
}

impl Server {
    /// Binds `addr` and serves the API over the stores under `data_dir` (migrated) in the
    /// background; refreshes the note counts per store and the moves' progress every second;
    /// with a `pace`, runs a move worker too.
    pub async fn start(
        data_dir: &Path,
        addr: SocketAddr,
        cors: Vec<String>,
        telemetry: Arc<Telemetry>,
        pace: Option<Pace>,
    ) -> Result<Server> {
        let admin = admin(data_dir, &crate::db::Settings::default())?;
        let config = ServerConfig {
            data_dir: data_dir.to_path_buf(),
            addr,
            cors,
            telemetry,
            pace,
            admin,
            limits: Limits::default(),
        };
        Server::start_when(config, async { Ok(()) }, |_| {}).await
    }

    /// Binds `addr` at once and serves the operator page while `ready` runs (checked mode
    /// waiting for an approval, then migrating); then opens the stores and serves the API.
    /// `bound` hears the address as soon as it is bound. Both are served within the limits.
    pub async fn start_when(
        config: ServerConfig,
        ready: impl Future<Output = Result<()>>,
        bound: impl FnOnce(SocketAddr),
    ) -> Result<Server> {
        let ServerConfig {
            data_dir,
            addr,
            cors,
            telemetry,
            pace,
            admin,
            limits,
        } = config;
        let data_dir = data_dir.as_path();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?
            .into_std()?;
        let addr = listener.local_addr()?;
        admin.set_waiting(true);
        // Until `ready`, a server with only the operator page answers on a clone of the
        // socket; then it stops accepting (finishing what it serves) and the API takes over
        // the same socket: connections that arrive meanwhile wait in its backlog.
        let (switch, mut switched) = tokio::sync::watch::channel(false);
        let waiting = {
            let early = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
            let router = waiting_router(admin.clone());
            tokio::spawn(async move {
                let switched = async move {
                    let _ = switched.wait_for(|s| *s).await;
                };
                crate::http::serve::serve(early, router, limits, switched).await
            })
        };
        bound(addr);
        let outcome = ready.await;
        let _ = switch.send(true);
        waiting
            .await
            .context("operator page task")?
            .context("serving the operator page")?;
        outcome?;
        admin.set_waiting(false);
        let state = state_with(data_dir, cors, telemetry, &admin)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let router = app(state.clone());
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            crate::http::serve::serve(listener, router, limits, stopped).await
        });
        let counting = state.clone();
        let mut counting_stop = stop.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = counting_stop.wait_for(|s| *s) => break,
                }
                refresh_counts(&counting).await;
            }
        });
        let worker = pace.map(|pace| {
            Worker::start(
                Arc::clone(state.notes.engine()),
                pace,
                Arc::clone(&state.telemetry),
            )
        });
        tracing::info!("listening on http://{addr}");
        Ok(Server {
            addr,
            state,
            stop,
            task,
            worker,
        })
    }

    /// Stops accepting, lets requests in flight finish, stops the move worker after its
    /// current batch, and waits for the server to end.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Some(worker) = self.worker.take() {
            tokio::task::spawn_blocking(move || worker.stop())
                .await
                .context("stopping the move worker")?;
        }
        self.task.await.context("server task")?.context("serving")
    }
}

/// Note counts per store, and every move's progress, into the telemetry.
/// Counting reads every store's notes: damage met there is remembered (`/healthz` answers 503)
/// and logged, as when a request meets it.
pub async fn refresh_counts(state: &AppState) {
    match state.notes.totals().await {
        Ok(totals) => {
            for (store, n) in totals {
                state.telemetry.note_count(&store, n as i64);
            }
        }
        Err(e) => {
            if let Some(damaged) = crate::http::error::Damaged::of(&e) {
                damaged.report(&state.telemetry);
            }
        }
    }
    let engine = Arc::clone(state.notes.engine());
    if let Ok(Ok(moves)) = tokio::task::spawn_blocking(move || engine.moves()).await {
        for m in moves.iter().take(20) {
            state.telemetry.move_progress(m);
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    // SQLite calls are short: a few blocking threads kept busy beat tokio's default of up to
    // 512, which under load wake and park one another (GET note: 30% → 41% of the HTTP ceiling
    // in bench/http/run.sh on 2 cores).
    let cores = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((2 * cores).max(4))
        .build()
        .context("starting tokio")
}

/// Migrates the databases (per the settings' mode; in checked mode the operator page is served
/// meanwhile, to approve from), then serves until asked to stop (Ctrl-C, or `q` in the
/// terminal UI); with `load`, strict users exercise the server meanwhile and their report is
/// printed at the end.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    data_dir: &Path,
    addr: SocketAddr,
    cors: Vec<String>,
    load: Option<LoadConfig>,
    settings: &crate::db::Settings,
    with_ui: bool,
    pace: Pace,
    limits: Limits,
) -> Result<()> {
    let ui = with_ui.then(|| settings.clone());
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let (admin, created) = crate::http::admin::AdminToken::load(data_dir)
        .with_context(|| format!("reading the operator token in {}", data_dir.display()))?;
    if let Some(path) = created {
        // Shown this once; afterwards it is only in the file (readable by its owner only).
        println!(
            "notely: operator token for /admin (kept in {}): {}",
            path.display(),
            admin.reveal()
        );
    }
    runtime()?.block_on(async {
        let telemetry = Telemetry::capturing();
        let admin = Admin::new(admin, data_dir, settings.clone());
        let page = Arc::new(std::sync::Mutex::new(String::new()));
        // Migrate first; only when checked mode needs an approval does the port open at once,
        // to serve the operator page while waiting.
        let now = {
            let (dir, settings) = (data_dir.to_path_buf(), settings.clone());
            tokio::task::spawn_blocking(move || {
                let mut out = std::io::stdout().lock();
                let report = crate::db::startup_now(&dir, &settings, &mut out)?;
                if let Some(report) = &report {
                    strata::cli::write_report(&mut out, report)?;
                }
                Ok::<_, anyhow::Error>(report.is_some())
            })
            .await
            .context("migrating")??
        };
        let migrated = {
            let (dir, settings, page) =
                (data_dir.to_path_buf(), settings.clone(), Arc::clone(&page));
            async move {
                if now {
                    return Ok(());
                }
                tokio::task::spawn_blocking(move || {
                    let url = page
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    let mut out = std::io::stdout().lock();
                    let report = crate::db::startup(&dir, &settings, &mut out, Some(&url))?;
                    strata::cli::write_report(&mut out, &report)?;
                    Ok::<_, anyhow::Error>(())
                })
                .await
                .context("migrating")?
            }
        };
        let config = ServerConfig {
            data_dir: data_dir.to_path_buf(),
            addr,
            cors,
            telemetry: Arc::clone(&telemetry),
            pace: Some(pace),
            admin,
            limits,
        };
        let server = Server::start_when(config, migrated, |addr| {
            *page
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                format!("http://{addr}/admin");
        })
        .await?;
        if ui.is_none() {
            println!("notely: listening on http://{}", server.addr);
            std::io::stdout().flush()?;
        }
        let (stop_load, stopped) = tokio::sync::watch::channel(false);
        let users = load.map(|config| {
            let base = format!("http://{}", server.addr);
            let telemetry = Arc::clone(&telemetry);
            tokio::spawn(async move { loadgen::run(&base, &config, telemetry, stopped).await })
        });
        match ui {
            None => shutdown_signal().await,
            Some(settings) => {
                let (state, dir, addr) =
                    (server.state.clone(), data_dir.to_path_buf(), server.addr);
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    crate::tui::run(|app| refresh_ui(app, &handle, &state, &dir, &settings, addr))
                })
                .await
                .context("terminal UI")??;
            }
        }
        let _ = stop_load.send(true);
        if let Some(users) = users {
            let report = users.await.context("load generator")??;
            println!("notely: load: {}", serde_json::to_string(&report)?);
        }
        server.stop().await?;
        println!("notely: stopped");
        Ok(())
    })
}

/// Gathers what the terminal UI shows, from the running server and the databases.
fn refresh_ui(
    app: &mut crate::tui::App,
    handle: &tokio::runtime::Handle,
    state: &AppState,
    data_dir: &Path,
    settings: &crate::db::Settings,
    addr: SocketAddr,
) {
    use crate::store::accounts;
    use crate::tui::{AccountRow, DatabaseRow};
    app.address = format!("http://{addr}");
    if let Some(request) = app.request.take() {
        let engine = Arc::clone(state.notes.engine());
        let (dir, settings) = (data_dir.to_path_buf(), settings.clone());
        let done = handle.block_on(tokio::task::spawn_blocking(move || match request {
            crate::tui::MoveRequest::AllTo(to) => {
                crate::moves::start(&engine, &crate::moves::Selection::All, &to).map(|m| match m {
                    Some(m) => format!("started move {}: {}", m.id, m.description),
                    None => format!("every account is at {to} already"),
                })
            }
            crate::tui::MoveRequest::CancelNewest => crate::moves::cancel(&engine, None)
                .map(|m| format!("move {} is {}", m.id, m.state.as_str())),
            crate::tui::MoveRequest::Shard => {
                let shards = crate::db::shards(&dir).len();
                let n = if shards == 0 { 4 } else { shards * 2 };
                match crate::moves::start_shards(&engine, &dir, &settings, n) {
                    Ok(Some(m)) => Ok(format!("started move {}: {}", m.id, m.description)),
                    Ok(None) => Ok(format!("every account is on its shard among {n} already")),
                    Err(e) => Err(strata_online::MoveError::Invalid(format!("{e:#}"))),
                }
            }
        }));
        app.message = match done {
            Ok(Ok(message)) => message,
            Ok(Err(e)) => format!("refused: {e}"),
            Err(e) => format!("failed: {e}"),
        };
        tracing::info!("terminal UI: {}", app.message);
        handle.block_on(refresh_counts(state));
    }
    app.stats = Some(state.telemetry.snapshot());
    app.logs = state.telemetry.recent_logs(1000);
    let gathered = handle.block_on(async {
        let list = state.control.read(accounts::list).await?;
        let engine = Arc::clone(state.notes.engine());
        let counts = tokio::task::spawn_blocking(move || {
            let mut all = std::collections::HashMap::new();
            for loc in engine.locations() {
                let per = loc.pool.with_reader(|c| {
                    if loc.name == LEGACY {
                        crate::store::legacy::counts_by_account(c)
                    } else {
                        crate::store::notes::counts_by_account(c)
                    }
                })?;
                for (account, n) in per {
                    *all.entry(account).or_insert(0u64) += n;
                }
            }
            Ok::<_, rusqlite::Error>(all)
        })
        .await
        .map_err(|e| crate::store::StoreError::Task(data_dir.to_path_buf(), e.to_string()))?
        .map_err(|source| crate::store::StoreError::Sqlite {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let rows = list
            .iter()
            .map(|a| AccountRow {
                id: a.id.to_string(),
                name: a.name.clone(),
                is_migrating: a.is_migrating,
                store: match &a.placement {
                    Some(p) => match &p.target {
                        Some(t) => format!("{} → {t} ({})", p.location, p.phase.as_str()),
                        None => p.location.clone(),
                    },
                    None => "-".into(),
                },
                notes: counts.get(&a.id).copied().unwrap_or(0) as usize,
            })
            .collect();
        Ok::<_, crate::store::StoreError>(rows)
    });
    match gathered {
        Ok(rows) => app.accounts = rows,
        Err(e) => tracing::error!("refreshing the accounts page: {e}"),
    }
    match crate::db::fleet(data_dir, settings).status() {
        Ok(statuses) => {
            app.databases = statuses
                .iter()
                .map(|s| DatabaseRow {
                    path: s.status.path.display().to_string(),
                    role: s.status.role.clone(),
                    version: s
                        .status
                        .version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    pending: s.status.pending(),
                    problems: s.status.problems(),
                })
                .collect();
        }
        Err(e) => tracing::error!("reading migration status: {e}"),
    }
}

/// Runs strict users against another Notely at `target` until asked to stop (or the duration).
pub fn load_only(target: &str, config: LoadConfig) -> Result<LoadReport> {
    runtime()?.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let telemetry = Telemetry::capturing();
        let users = tokio::spawn({
            let (target, telemetry) = (target.to_string(), Arc::clone(&telemetry));
            async move { loadgen::run(&target, &config, telemetry, stopped).await }
        });
        tokio::select! {
            () = shutdown_signal() => { let _ = stop.send(true); }
            _ = async { while !users.is_finished() { tokio::time::sleep(Duration::from_millis(50)).await } } => {}
        }
        users.await.context("load generator")?
    })
}

/// The demo's report: what the strict users saw, and what the server measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub data_dir: String,
    #[serde(flatten)]
    pub load: LoadReport,
    /// With data moves (`--legacy`, `--shards`, `--reshard`): what they did.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub moves: Option<MovesReport>,
    pub server: Snapshot,
}

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
                server: telemetry.snapshot(),
            });
        }
        let before = config.duration.unwrap_or(Duration::from_secs(5));
        let users = tokio::spawn({
            let (base, telemetry) = (format!("http://{}", server.addr), Arc::clone(&telemetry));
            let config = LoadConfig {
                duration: None,
                ..config.clone()
            };
            async move { loadgen::run(&base, &config, telemetry, stopped).await }
        });
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
            server: telemetry.snapshot(),
        })
    })
}

/// One data move of the demo.
enum Step {
    To(String),
    Shards(usize),
}
