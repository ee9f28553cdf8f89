//! Running Notely: the API server (with graceful shutdown), in-process load, and the demo.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::api::{AppState, app};
use crate::loadgen::{self, LoadConfig, LoadReport};
use crate::moves::Worker;
use crate::proxy::NoteProxy;
use crate::store::legacy::MemosTable;
use crate::store::notes::NotesTable;
use crate::store::{Db, Note};
use crate::telemetry::{Snapshot, Telemetry};
use notely_migrations::{LEGACY, NOTES};
use strata::online::{Engine, Location, Pace};

/// Reader connections per database.
const READERS: usize = 4;

/// The online engine over the (migrated) databases under `data_dir`: the directory in the
/// control database, and the note stores by name.
pub fn engine(data_dir: &Path, control: &Db) -> Result<Engine<Note>> {
    let open = |role: &str| -> Result<Location<Note>> {
        let db = Db::open(&data_dir.join(format!("{role}.db")), READERS)
            .with_context(|| format!("opening the {role} store"))?;
        let layout: Arc<dyn strata::online::Layout<Note>> = if role == LEGACY {
            Arc::new(MemosTable)
        } else {
            Arc::new(NotesTable)
        };
        Ok(Location {
            name: role.to_string(),
            pool: Arc::clone(db.pool()),
            layout,
        })
    };
    Engine::new(Arc::clone(control.pool()), vec![open(NOTES)?, open(LEGACY)?])
        .context("starting the online engine")
}

/// Opens the (migrated) databases under `data_dir`.
pub fn state(
    data_dir: &Path,
    cors_origins: Vec<String>,
    telemetry: Arc<Telemetry>,
) -> Result<AppState> {
    let control =
        Db::open(&data_dir.join("control.db"), READERS).context("opening the control database")?;
    let engine = Arc::new(engine(data_dir, &control)?);
    Ok(AppState {
        control,
        notes: NoteProxy::new(engine, Arc::clone(&telemetry)),
        cors_origins,
        telemetry,
    })
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
    /// Binds `addr` and serves the API over the stores under `data_dir` in the background;
    /// refreshes the note counts per store and the moves' progress every second; with a
    /// `pace`, runs a move worker too.
    pub async fn start(
        data_dir: &Path,
        addr: SocketAddr,
        cors: Vec<String>,
        telemetry: Arc<Telemetry>,
        pace: Option<Pace>,
    ) -> Result<Server> {
        let state = state(data_dir, cors, telemetry)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let router = app(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
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
        state
            .telemetry
            .log(format!("INFO listening on http://{addr}"));
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
pub async fn refresh_counts(state: &AppState) {
    if let Ok(totals) = state.notes.totals().await {
        for (store, n) in totals {
            state.telemetry.note_count(&store, n as i64);
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
        .map(|n| n.get())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((2 * cores).max(4))
        .build()
        .context("starting tokio")
}

/// Serves until asked to stop (Ctrl-C, or `q` in the terminal UI); with `load`, strict users
/// exercise the server meanwhile and their report is printed at the end.
pub fn serve(
    data_dir: &Path,
    addr: SocketAddr,
    cors: Vec<String>,
    load: Option<LoadConfig>,
    ui: Option<crate::db::Settings>,
) -> Result<()> {
    runtime()?.block_on(async {
        let telemetry = Arc::new(Telemetry::default());
        let server = Server::start(
            data_dir,
            addr,
            cors,
            Arc::clone(&telemetry),
            Some(Pace::default()),
        )
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
        let done = handle.block_on(tokio::task::spawn_blocking(move || match request {
            crate::tui::MoveRequest::AllTo(to) => {
                crate::moves::start(&engine, &crate::moves::Selection::All, &to)
                    .map(|m| format!("started move {}: {}", m.id, m.description))
            }
            crate::tui::MoveRequest::CancelNewest => crate::moves::cancel(&engine, None)
                .map(|m| format!("move {} is {}", m.id, m.state.as_str())),
        }));
        app.message = match done {
            Ok(Ok(message)) => message,
            Ok(Err(e)) => format!("refused: {e}"),
            Err(e) => format!("failed: {e}"),
        };
        state.telemetry.log(format!("INFO terminal UI: {}", app.message));
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
        Err(e) => state
            .telemetry
            .log(format!("ERROR refreshing the accounts page: {e}")),
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
                .collect()
        }
        Err(e) => state
            .telemetry
            .log(format!("ERROR reading migration status: {e}")),
    }
}

/// Runs strict users against another Notely at `target` until asked to stop (or the duration).
pub fn load_only(target: &str, config: LoadConfig) -> Result<LoadReport> {
    runtime()?.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let telemetry = Arc::new(Telemetry::default());
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
    pub server: Snapshot,
}

/// Starts the server on `data_dir` (migrated already), runs the strict users for the
/// configured duration, stops the server, and reports.
pub fn demo(data_dir: &Path, config: LoadConfig) -> Result<DemoReport> {
    runtime()?.block_on(async {
        let telemetry = Arc::new(Telemetry::default());
        let server = Server::start(
            data_dir,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Vec::new(),
            Arc::clone(&telemetry),
            Some(Pace::default()),
        )
        .await?;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let load = loadgen::run(
            &format!("http://{}", server.addr),
            &config,
            Arc::clone(&telemetry),
            stopped,
        )
        .await?;
        refresh_counts(&server.state).await;
        server.stop().await?;
        Ok(DemoReport {
            data_dir: data_dir.display().to_string(),
            load,
            server: telemetry.snapshot(),
        })
    })
}
