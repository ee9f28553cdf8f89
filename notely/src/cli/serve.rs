//! `notely serve`: migrate, serve until asked to stop (with the terminal UI, and strict users,
//! if asked), and `notely --load-target`: strict users against another Notely.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use strata_online::Pace;

use crate::db::Settings;
use crate::http::admin::Admin;
use crate::http::serve::Limits;
use crate::loadgen::{self, LoadConfig, LoadReport};
use crate::server::{Server, ServerConfig, runtime, shutdown_signal};
use crate::telemetry::Telemetry;

/// What `notely serve` does: the server's own settings, and what the command adds.
pub struct ServeConfig {
    /// The data directory (created if missing, migrated per `settings`).
    pub data_dir: PathBuf,
    /// Where to listen (port 0: a free one).
    pub addr: SocketAddr,
    /// Origins allowed besides the local ones.
    pub cors: Vec<String>,
    /// The migration mode and the rest of the settings.
    pub settings: Settings,
    /// Connection cap and timeouts.
    pub limits: Limits,
    /// The move worker's pace.
    pub pace: Pace,
    /// Strict users exercising the server meanwhile (their report printed at the end).
    pub load: Option<LoadConfig>,
    /// Show the terminal UI (instead of printing the address).
    pub ui: bool,
}

/// Migrates the databases (per the settings' mode; in checked mode the operator page is served
/// meanwhile, to approve from), then serves until asked to stop (Ctrl-C, or `q` in the
/// terminal UI); with `load`, strict users exercise the server meanwhile and their report is
/// printed at the end.
pub fn serve(config: ServeConfig) -> Result<()> {
    let ServeConfig {
        data_dir,
        addr,
        cors,
        settings,
        limits,
        pace,
        load,
        ui,
    } = config;
    let (data_dir, settings) = (data_dir.as_path(), &settings);
    let ui = ui.then(|| settings.clone());
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
                let (feed, requests) = super::feed::start(
                    server.state.clone(),
                    data_dir.to_path_buf(),
                    settings,
                    server.addr,
                );
                tokio::task::spawn_blocking(move || crate::tui::run(feed, requests))
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
