//! The API server: opening its state, starting it (the operator page first while checked mode
//! waits), refreshing its counts, and stopping it gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::db::Stores;
use crate::deploy::{Deployer, Launch};
use crate::http::admin::Admin;
use crate::http::api::AppState;
use crate::http::app;
use crate::http::serve::Limits;
use crate::moves::Worker;
use crate::proxy::NoteProxy;
use crate::telemetry::Telemetry;
use axum::Router;
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
    /// How to launch a successor (`POST /deploy`); `None`: this server does not deploy.
    pub deploy: Option<Launch>,
}

/// A running API server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: Option<Worker>,
    deployer: Option<Deployer>,
    /// This process's registration as an instance in every database (dropped, deregistering,
    /// once it no longer serves).
    presence: Option<strata::instances::Presence>,
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
            deploy: None,
        };
        Server::start_when(config, async { Ok(()) }, |_| {}).await
    }

    /// Binds `addr` at once and serves the operator page while `ready` runs (checked mode
    /// waiting for an approval, then migrating); then opens the stores and serves the API.
    /// `bound` hears the address as soon as it is bound. Both are served within the limits.
    ///
    /// A process started by a deploy (`NOTELY_LISTEN_FD`) takes the listening socket it was
    /// handed instead of binding, and accepts nothing before `ready`: the old process serves
    /// that socket meanwhile, and the operator page would answer half its clients 503.
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
            deploy,
        } = config;
        let data_dir = data_dir.as_path();
        let inherited = crate::deploy::inherited_listener()
            .context("taking the listening socket handed over by the deploying process")?;
        let handed = inherited.is_some();
        let listener = match inherited {
            Some(listener) => listener,
            None => tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?
                .into_std()?,
        };
        let addr = listener.local_addr()?;
        admin.set_waiting(true);
        if handed {
            bound(addr);
            ready.await?;
        } else {
            // Until `ready`, a server with only the operator page answers on a clone of the
            // socket; then it stops accepting (finishing what it serves) and the API takes
            // over the same socket: connections that arrive meanwhile wait in its backlog.
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
        }
        admin.set_waiting(false);
        let deployer = deploy
            .map(|launch| Deployer::new(data_dir, &listener, launch))
            .transpose()
            .context("keeping the listening socket for deploys")?;
        let admin = match &deployer {
            Some(deployer) => admin.with_deployer(deployer.clone()),
            None => admin,
        };
        let state = state_with(data_dir, cors, telemetry, &admin)?;
        // Registered before serving: while this process serves, no contract migration its
        // binary lacks is applied by a newer one (and if one was applied meanwhile, this
        // refuses to serve, naming it).
        let presence = {
            let (dir, settings) = (data_dir.to_path_buf(), admin.settings().clone());
            tokio::task::spawn_blocking(move || crate::db::join(&dir, &settings))
                .await
                .context("registering this instance")??
        };
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let router = app(state.clone());
        // A server that handed over lets its idle connections ask once more as it stops: that
        // answer says `Connection: close` (the client connects again, to the new process)
        // instead of the connection closing under a request on its way.
        let handover = deployer.as_ref().map(Deployer::handover);
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.wait_for(|s| *s).await;
                match handover {
                    Some(h) if h.borrow().is_some() => crate::http::serve::DRAIN,
                    _ => Duration::ZERO,
                }
            };
            crate::http::serve::serve_draining(listener, router, limits, stopped).await
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
            deployer,
            presence: Some(presence),
        })
    }

    /// The deploy controller, when this server deploys.
    pub fn deployer(&self) -> Option<&Deployer> {
        self.deployer.as_ref()
    }

    /// Hears the new process's pid once this server handed over to it (never, when it does
    /// not deploy); pass it to [`handed_over`].
    pub fn handover(&self) -> Option<tokio::sync::watch::Receiver<Option<u32>>> {
        self.deployer.as_ref().map(Deployer::handover)
    }

    /// Stops accepting, lets requests in flight finish, stops the move worker after its
    /// current batch (it leaves its move for another process's worker at once), and waits for
    /// the server to end. A deploy this server controls ends too (see
    /// [`Deployer::abandon`]).
    pub async fn stop(mut self) -> Result<()> {
        if let Some(deployer) = self.deployer.take() {
            tokio::task::spawn_blocking(move || deployer.abandon())
                .await
                .context("ending the deploy")?;
        }
        let _ = self.stop.send(true);
        if let Some(worker) = self.worker.take() {
            tokio::task::spawn_blocking(move || worker.stop())
                .await
                .context("stopping the move worker")?;
        }
        let served = self.task.await.context("server task")?.context("serving");
        // Served its last request: older-release contracts may proceed without this process.
        if let Some(presence) = self.presence.take() {
            tokio::task::spawn_blocking(move || presence.leave())
                .await
                .context("deregistering this instance")?
                .context("deregistering this instance")?;
        }
        served
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

/// Resolves with the new process's pid once the server whose [`Server::handover`] this is has
/// handed over to it; never for a server that does not deploy.
pub async fn handed_over(handover: Option<tokio::sync::watch::Receiver<Option<u32>>>) -> u32 {
    if let Some(mut handover) = handover
        && let Ok(pid) = handover.wait_for(Option::is_some).await
        && let Some(pid) = *pid
    {
        return pid;
    }
    std::future::pending().await
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
