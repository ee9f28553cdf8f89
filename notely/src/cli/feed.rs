//! The terminal UI's data source (ratatui's async pattern): a task that gathers what the UI
//! shows from the running server and the databases, publishes it on a `watch` channel, and
//! carries out the moves page's requests. The UI thread never waits on it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notely_migrations::LEGACY;
use tokio::sync::{mpsc, watch};

use crate::db::Settings;
use crate::http::admin::overview::Overview;
use crate::http::api::AppState;
use crate::server::refresh_counts;
use crate::tui::{AccountRow, DatabaseRow, MoveRequest, Snapshot};

/// The terminal UI's data source: a task that gathers a [`Snapshot`] every
/// [`REFRESH`] (and at once after carrying out a request from the moves page) and publishes
/// it; it ends when the UI drops its ends of the channels.
pub fn start(
    state: AppState,
    data_dir: PathBuf,
    settings: Settings,
    addr: SocketAddr,
) -> (
    watch::Receiver<Snapshot>,
    mpsc::UnboundedSender<MoveRequest>,
) {
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
                    snapshot.answer = carry_out(&state, &data_dir, &settings, request).await;
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

/// Carries out a request from the terminal UI's moves page; says what became of it.
async fn carry_out(
    state: &AppState,
    data_dir: &Path,
    settings: &Settings,
    request: MoveRequest,
) -> String {
    let engine = Arc::clone(state.notes.engine());
    let (dir, settings) = (data_dir.to_path_buf(), settings.clone());
    let done = tokio::task::spawn_blocking(move || match request {
        MoveRequest::AllTo(to) => crate::moves::start(&engine, &crate::moves::Selection::All, &to)
            .map(|m| match m {
                Some(m) => format!("started move {}: {}", m.id, m.description),
                None => format!("every account is at {to} already"),
            }),
        MoveRequest::CancelNewest => crate::moves::cancel(&engine, None)
            .map(|m| format!("move {} is {}", m.id, m.state.as_str())),
        MoveRequest::Shard => {
            let shards = crate::db::shards(&dir).len();
            let n = if shards == 0 { 4 } else { shards * 2 };
            match crate::moves::start_shards(&engine, &dir, &settings, n) {
                Ok(Some(m)) => Ok(format!("started move {}: {}", m.id, m.description)),
                Ok(None) => Ok(format!("every account is on its shard among {n} already")),
                Err(e) => Err(strata_online::MoveError::Invalid(format!("{e:#}"))),
            }
        }
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
                })
                .collect();
        }
        Err(e) => tracing::error!("reading migration status: {e:#}"),
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
