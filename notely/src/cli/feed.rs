//! The terminal UI's data source (ratatui's async pattern): a task that gathers what the UI
//! shows from the running server and the databases, publishes it on a `watch` channel, and
//! carries out the operator's requests (moves, deploys). The UI thread never waits on it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notely_migrations::LEGACY;
use tokio::sync::{mpsc, watch};

use crate::db::Settings;
use crate::deploy::{DeployState, Deployer, Phase, Side};
use crate::http::admin::overview::Overview;
use crate::http::api::AppState;
use crate::server::refresh_counts;
use crate::tui::{AccountRow, DatabaseRow, DeployPanel, Request, Snapshot};

/// The terminal UI's data source: a task that gathers a [`Snapshot`] every
/// [`REFRESH`] (and at once after carrying out a request) and publishes it; it ends when the
/// UI drops its ends of the channels. `deployer` carries out `d` (none: deploys are refused).
pub fn start(
    state: AppState,
    data_dir: PathBuf,
    settings: Settings,
    addr: SocketAddr,
    deployer: Option<Deployer>,
) -> (watch::Receiver<Snapshot>, mpsc::UnboundedSender<Request>) {
    let mut snapshot = Snapshot {
        address: format!("http://{addr}"),
        ..Snapshot::default()
    };
    let (publish, feed) = watch::channel(snapshot.clone());
    let (requests, mut requested) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(request) = requested.recv() => {
                    snapshot.answer = match request {
                        Request::Deploy => deploy(deployer.as_ref()).await,
                        request => carry_out(&state, &data_dir, &settings, request).await,
                    };
                    snapshot.answered += 1;
                    tracing::info!("terminal UI: {}", snapshot.answer);
                    refresh_counts(&state).await;
                }
            }
            gather(&state, &data_dir, &settings, &mut snapshot).await;
            if publish.send(snapshot.clone()).is_err() {
                break;
            }
        }
    });
    (feed, requests)
}

/// How often the terminal UI's data is gathered.
const REFRESH: Duration = Duration::from_millis(500);

/// Starts a deploy of this server's binary as it is on disk now; says what became of it.
async fn deploy(deployer: Option<&Deployer>) -> String {
    let Some(deployer) = deployer else {
        return "refused: this process does not deploy".into();
    };
    match deployer.start(crate::deploy::Request::default()).await {
        Ok(state) => format!("deploy {} started", state.id_or_dash()),
        Err(e) => format!("refused: {e}"),
    }
}

/// Carries out a request from the terminal UI's moves page; says what became of it.
async fn carry_out(
    state: &AppState,
    data_dir: &Path,
    settings: &Settings,
    request: Request,
) -> String {
    let engine = Arc::clone(state.notes.engine());
    let (dir, settings) = (data_dir.to_path_buf(), settings.clone());
    let done = tokio::task::spawn_blocking(move || match request {
        Request::AllTo(to) => {
            crate::moves::start(&engine, &crate::moves::Selection::All, &to).map(|m| match m {
                Some(m) => format!("started move {}: {}", m.id, m.description),
                None => format!("every account is at {to} already"),
            })
        }
        Request::CancelNewest => crate::moves::cancel(&engine, None)
            .map(|m| format!("move {} is {}", m.id, m.state.as_str())),
        Request::Shard => {
            let shards = crate::db::shards(&dir).len();
            let n = if shards == 0 { 4 } else { shards * 2 };
            match crate::moves::start_shards(&engine, &dir, &settings, n) {
                Ok(Some(m)) => Ok(format!("started move {}: {}", m.id, m.description)),
                Ok(None) => Ok(format!("every account is on its shard among {n} already")),
                Err(e) => Err(strata_online::MoveError::Invalid(format!("{e:#}"))),
            }
        }
        Request::Deploy => Err(strata_online::MoveError::Invalid(
            "a deploy is not a move".into(),
        )),
    })
    .await;
    match done {
        Ok(Ok(message)) => message,
        Ok(Err(e)) => format!("refused: {e}"),
        Err(e) => format!("failed: {e}"),
    }
}

/// Gathers what the terminal UI shows into `snapshot`: the telemetry, the accounts with their
/// placements and note counts, and the operator page's overview (databases and moves). What
/// cannot be read is logged and keeps its previous value.
async fn gather(state: &AppState, data_dir: &Path, settings: &Settings, snapshot: &mut Snapshot) {
    snapshot.stats = Some(state.telemetry.snapshot());
    snapshot.logs = state.telemetry.recent_logs(1000);
    match account_rows(state, data_dir).await {
        Ok(rows) => snapshot.accounts = rows,
        Err(e) => tracing::error!("refreshing the accounts page: {e}"),
    }
    let overview = {
        let (engine, dir, settings) = (
            Arc::clone(state.notes.engine()),
            data_dir.to_path_buf(),
            settings.clone(),
        );
        tokio::task::spawn_blocking(move || Overview::gather(&dir, &settings, Some(&engine), false))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|o| o)
    };
    match overview {
        Ok(overview) => {
            snapshot.moves = overview.moves;
            snapshot.databases = overview
                .databases
                .iter()
                .map(|d| DatabaseRow {
                    path: d.status.status.path.display().to_string(),
                    role: d.status.status.role.clone(),
                    version: d
                        .status
                        .status
                        .version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    pending: d.status.status.pending(),
                    problems: d.status.status.problems(),
                    deferred: d
                        .status
                        .status
                        .migrations
                        .iter()
                        .filter(|m| m.deferred_for.is_some())
                        .count(),
                    instances: d
                        .instances
                        .iter()
                        .filter(|i| i.alive)
                        .map(|i| {
                            format!(
                                "{} (≤{})",
                                i.pid,
                                i.newest_version
                                    .map_or_else(|| "-".into(), |v| v.to_string())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect();
        }
        Err(e) => tracing::error!("reading migration status: {e:#}"),
    }
    let dir = data_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || crate::deploy::status(&dir)).await {
        Ok(Ok(state)) => snapshot.deploy = deploy_panel(&state),
        Ok(Err(e)) => tracing::error!("reading the deploy state: {e}"),
        Err(e) => tracing::error!("reading the deploy state: {e}"),
    }
}

/// The Deployments panel of the newest deploy.
fn deploy_panel(d: &DeployState) -> DeployPanel {
    let side = |s: &Option<Side>| match s {
        Some(s) => format!(
            "pid {} · migrations up to {}",
            s.pid,
            s.version.as_deref().unwrap_or("?")
        ),
        None => "-".into(),
    };
    let own = std::process::id();
    DeployPanel {
        id: d.id.clone().unwrap_or_default(),
        phase: d.phase.as_str().into(),
        detail: d.reason.clone().or_else(|| d.note.clone()),
        old: side(&d.old),
        new: side(&d.new),
        launched: d
            .launched_at
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| "-".into()),
        overlap_s: d.overlap_s,
        overlap_left_s: d.overlap_left_s,
        handed_over: match (&d.old, &d.new) {
            (Some(old), Some(new)) if d.phase == Phase::Ready && old.pid == own => Some(new.pid),
            _ => None,
        },
    }
}

/// The accounts page: every account, its placement and its notes over all stores.
async fn account_rows(
    state: &AppState,
    data_dir: &Path,
) -> Result<Vec<AccountRow>, crate::store::StoreError> {
    let list = state.control.read(crate::store::accounts::list).await?;
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
    Ok(list
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
        .collect())
}
