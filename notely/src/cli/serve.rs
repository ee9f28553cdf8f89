//! `notely serve`: migrate, serve until asked to stop or until a deploy hands over (with the
//! terminal UI, and strict users, if asked), and `notely --load-target`: strict users against
//! another Notely.

use std::ffi::OsString;
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
use crate::server::{Server, ServerConfig, handed_over, runtime, shutdown_signal};
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
    /// The file mode creation mask (handed on to a deploy's new process).
    pub umask: u32,
    /// How long the old and the new process both serve during a deploy, by default.
    pub deploy_overlap: Duration,
}

/// How a deploy launches this server's successor: this process's executable as it is on disk
/// now, with this server's own settings (never `--cli` or `--gen`: the new process serves
/// headless, its output in the deploy's log). Where it listens does not matter: it takes over
/// the listening socket.
pub fn relaunch(config: &ServeConfig) -> crate::deploy::Launch {
    let mut args: Vec<OsString> = Vec::new();
    let mut arg = |flag: &str, value: String| {
        args.push(flag.into());
        args.push(value.into());
    };
    let data_dir = std::path::absolute(&config.data_dir).unwrap_or(config.data_dir.clone());
    arg("--data-dir", data_dir.display().to_string());
    for origin in &config.cors {
        arg("--cors-origin", origin.clone());
    }
    let s = &config.settings;
    arg("--migrate", format!("{:?}", s.mode).to_lowercase());
    arg("--lock-timeout", s.lock_timeout.as_secs_f64().to_string());
    if let Some(t) = s.approval_timeout {
        arg("--approval-timeout", t.as_secs_f64().to_string());
    }
    arg("--backups", s.backups.to_string());
    arg(
        "--startup-check-limit",
        (s.startup_check_limit / (1024 * 1024)).to_string(),
    );
    let l = &config.limits;
    arg("--max-connections", l.max_connections.to_string());
    arg(
        "--header-timeout",
        l.header_timeout.as_secs_f64().to_string(),
    );
    arg("--idle-timeout", l.idle_timeout.as_secs_f64().to_string());
    arg(
        "--request-timeout",
        l.request_timeout.as_secs_f64().to_string(),
    );
    let p = &config.pace;
    arg("--move-batch", p.batch.to_string());
    if let Some(rate) = p.max_rate {
        arg("--move-max-rate", rate.to_string());
    }
    arg(
        "--move-pause-ms",
        (p.pause.as_secs_f64() * 1000.0).to_string(),
    );
    arg(
        "--move-latency-budget",
        p.latency_budget.unwrap_or(0.0).to_string(),
    );
    arg("--move-min-rate", p.min_rate.to_string());
    arg("--umask", format!("{:03o}", config.umask));
    arg(
        "--deploy-overlap",
        config.deploy_overlap.as_secs_f64().to_string(),
    );
    if s.allow_unknown {
        args.push("--allow-unknown".into());
    }
    if s.allow_out_of_order {
        args.push("--allow-out-of-order".into());
    }
    args.push("serve".into());
    crate::deploy::Launch {
        binary: crate::deploy::executable(),
        args,
        overlap: config.deploy_overlap,
        ready_timeout: crate::deploy::READY_TIMEOUT,
    }
}

/// Migrates the databases (per the settings' mode; in checked mode the operator page is served
/// meanwhile, to approve from), then serves until asked to stop (Ctrl-C, or `q` in the
/// terminal UI) or until a deploy hands over to a new process (then it finishes what it
/// serves and exits, printing `notely: handed over to pid N`; the terminal UI stays up until
/// `q`, saying so); with `load`, strict users exercise the server meanwhile and their report is
/// printed at the end. Started by a deploy, it reports itself ready once it serves.
pub fn serve(config: ServeConfig) -> Result<()> {
    let launch = relaunch(&config);
    let ServeConfig {
        data_dir,
        addr,
        cors,
        settings,
        limits,
        pace,
        load,
        ui,
        ..
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
            deploy: Some(launch),
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
        if let Some(ready) = crate::deploy::ready_file() {
            crate::deploy::announce_ready(&ready).with_context(|| {
                format!(
                    "telling the deploying process that this one serves ({})",
                    ready.display()
                )
            })?;
        }
        let handover = server.handover();
        let (stop_load, stopped) = tokio::sync::watch::channel(false);
        let users = load.map(|config| {
            let base = format!("http://{}", server.addr);
            let telemetry = Arc::clone(&telemetry);
            tokio::spawn(async move { loadgen::run(&base, &config, telemetry, stopped).await })
        });
        let mut server = Some(server);
        let handed = match ui {
            None => tokio::select! {
                () = shutdown_signal() => None,
                pid = handed_over(handover) => Some(pid),
            },
            Some(settings) => {
                let serving = server.as_ref().expect("the server runs");
                let (feed, requests) = super::feed::start(
                    serving.state.clone(),
                    data_dir.to_path_buf(),
                    settings,
                    serving.addr,
                    serving.deployer().cloned(),
                );
                let mut tui = tokio::task::spawn_blocking(move || crate::tui::run(feed, requests));
                tokio::select! {
                    done = &mut tui => {
                        done.context("terminal UI")??;
                        None
                    }
                    pid = handed_over(handover) => {
                        // Stop serving now; the terminal UI stays up (it says so) until `q`.
                        if let Some(server) = server.take() {
                            server.stop().await?;
                        }
                        tracing::info!("handed over to pid {pid}: this process no longer serves");
                        tui.await.context("terminal UI")??;
                        Some(pid)
                    }
                }
            }
        };
        let _ = stop_load.send(true);
        if let Some(users) = users {
            let report = users.await.context("load generator")??;
            println!("notely: load: {}", serde_json::to_string(&report)?);
        }
        if let Some(server) = server {
            server.stop().await?;
        }
        match handed {
            Some(pid) => println!("notely: handed over to pid {pid}"),
            None => println!("notely: stopped"),
        }
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
