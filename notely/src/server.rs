//! `notely serve`: the API over Notely's stores, with graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};

use crate::api::{AppState, app};
use crate::cli::ServeArgs;
use crate::proxy::NoteProxy;
use crate::store::Db;

/// Reader connections per database.
const READERS: usize = 4;

/// Opens the (migrated) stores under `data_dir`.
pub fn state(data_dir: &Path, cors_origins: Vec<String>) -> Result<AppState> {
    let control =
        Db::open(&data_dir.join("control.db"), READERS).context("opening the control database")?;
    let notes = Db::open(&data_dir.join("notes.db"), READERS).context("opening the note store")?;
    Ok(AppState {
        control,
        notes: NoteProxy::new(notes),
        cors_origins,
    })
}

/// Serves the API until Ctrl-C or SIGTERM.
pub fn serve(data_dir: &Path, args: &ServeArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async {
        let state = state(data_dir, args.cors_origins.clone())?;
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        println!("notely: listening on http://{local}");
        std::io::stdout().flush()?;
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving")?;
        println!("notely: stopped");
        Ok(())
    })
}

async fn shutdown() {
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
