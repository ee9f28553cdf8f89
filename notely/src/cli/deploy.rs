//! `notely deploy`: asks the running server to deploy (the operator route, with the operator
//! token), then follows the deploy through `GET /deploy` to its end — the phases, and a
//! progress bar during the overlap.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::deploy::{DeployState, Phase};

/// What `notely deploy` was asked.
#[derive(Debug)]
pub struct DeployArgs {
    /// The server (`--host`/`--port`).
    pub addr: SocketAddr,
    /// Where the operator token is (`admin.token`), unless `NOTELY_ADMIN_TOKEN` says it.
    pub data_dir: PathBuf,
    pub binary: Option<PathBuf>,
    pub overlap: Option<Duration>,
    pub json: bool,
}

/// How long `GET /deploy` may go unanswered before giving up.
const UNANSWERED: Duration = Duration::from_secs(15);

/// `notely deploy`: exits with 0 once the deploy is `READY`, 3 if it `FAILED`.
pub fn command(args: &DeployArgs) -> Result<ExitCode> {
    let token = operator_token(&args.data_dir)?;
    let base = format!("http://{}", loopback(args.addr));
    let binary = args
        .binary
        .as_deref()
        .map(std::path::absolute)
        .transpose()
        .context("resolving --binary")?;
    crate::server::runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut body = serde_json::Map::new();
        if let Some(binary) = &binary {
            body.insert("binary".into(), json!(binary));
        }
        if let Some(overlap) = args.overlap {
            body.insert("overlap_s".into(), json!(overlap.as_secs_f64()));
        }
        let res = client
            .post(format!("{base}/admin/api/deploy"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("asking the server at {base} to deploy"))?;
        let status = res.status();
        let answer: serde_json::Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "the server at {base} refused to deploy ({status}): {}",
                answer["error"].as_str().unwrap_or("no reason given")
            );
        }
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        if !args.json {
            println!("notely: deploy {id} started on {base}");
        }
        let end = follow(&client, &base, &id, !args.json).await?;
        if args.json {
            println!("{}", serde_json::to_string(&end)?);
        } else {
            report(&end);
        }
        Ok(if end.phase == Phase::Ready {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        })
    })
}

/// The operator token: `NOTELY_ADMIN_TOKEN`, or `admin.token` in the data directory (never
/// created here).
fn operator_token(data_dir: &Path) -> Result<String> {
    if let Ok(token) = std::env::var("NOTELY_ADMIN_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_string());
    }
    let path = data_dir.join("admin.token");
    let token = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the operator token in {} (or set NOTELY_ADMIN_TOKEN; --data-dir names the \
             server's data directory)",
            path.display()
        )
    })?;
    Ok(token.trim().to_string())
}

/// Where to reach a server listening on `addr` (an unspecified address: on loopback).
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Follows deploy `id` through `GET /deploy` until it is over; prints its phases (and the
/// overlap's progress on a terminal) when `show`.
async fn follow(client: &reqwest::Client, base: &str, id: &str, show: bool) -> Result<DeployState> {
    let mut seen: Option<Phase> = None;
    let mut answered = Instant::now();
    let bar = show && std::io::stderr().is_terminal();
    loop {
        let state = match get_state(client, base).await {
            Ok(state) => {
                answered = Instant::now();
                state
            }
            Err(e) if answered.elapsed() < UNANSWERED => {
                tracing::debug!("GET /deploy: {e:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(e.context(format!("following deploy {id}"))),
        };
        if state.id.as_deref() != Some(id) {
            bail!(
                "deploy {id} is no longer the newest on the server (now: {})",
                state.id_or_dash()
            );
        }
        if show && seen != Some(state.phase) {
            if bar && seen == Some(Phase::Wait) {
                eprintln!();
            }
            seen = Some(state.phase);
            println!("notely: {}", describe(&state));
        }
        if bar && let Some(left) = state.overlap_left_s {
            eprint!("\r{}", progress(state.overlap_s, left));
            let _ = std::io::stderr().flush();
        }
        if !state.phase.is_running() {
            if bar && seen == Some(Phase::Wait) {
                eprintln!();
            }
            return Ok(state);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn get_state(client: &reqwest::Client, base: &str) -> Result<DeployState> {
    let res = client.get(format!("{base}/deploy")).send().await?;
    let status = res.status();
    if !status.is_success() {
        bail!("GET /deploy answered {status}");
    }
    Ok(res.json().await?)
}

/// One line per phase.
fn describe(s: &DeployState) -> String {
    let pid = |side: &Option<crate::deploy::Side>| side.as_ref().map_or(0, |s| s.pid);
    match s.phase {
        Phase::LaunchNew => format!(
            "LAUNCH_NEW: started pid {} ({}); waiting until it serves",
            pid(&s.new),
            s.new.as_ref().map_or("-", |n| n.binary.as_str())
        ),
        Phase::Wait => format!(
            "WAIT: pid {} serves (migrations up to {}); both serve for {:.0} s",
            pid(&s.new),
            s.new
                .as_ref()
                .and_then(|n| n.version.as_deref())
                .unwrap_or("?"),
            s.overlap_s
        ),
        Phase::Ready => format!(
            "READY: pid {} took over from pid {}",
            pid(&s.new),
            pid(&s.old)
        ),
        Phase::Failed => format!(
            "FAILED: {}",
            s.reason.as_deref().unwrap_or("no reason given")
        ),
        other => other.as_str().to_string(),
    }
}

/// `[#########...........]  12 s left`
fn progress(total: f64, left: f64) -> String {
    const WIDTH: usize = 30;
    let done = if total > 0.0 {
        (((total - left) / total).clamp(0.0, 1.0) * WIDTH as f64).round() as usize
    } else {
        WIDTH
    };
    format!(
        "[{}{}] {left:>4.0} s left of the overlap",
        "#".repeat(done),
        ".".repeat(WIDTH - done)
    )
}

fn report(end: &DeployState) {
    if let Some(note) = &end.note {
        println!("notely: note: {note}");
    }
    if let (Phase::Failed, Some(log)) = (end.phase, &end.log) {
        println!("notely: the new process's output is in {log}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_fills_as_the_overlap_passes() {
        assert!(progress(30.0, 30.0).starts_with(&format!("[{}]", ".".repeat(30))));
        assert!(progress(30.0, 15.0).starts_with(&format!(
            "[{}{}]",
            "#".repeat(15),
            ".".repeat(15)
        )));
        assert!(progress(30.0, 0.0).starts_with(&format!("[{}]", "#".repeat(30))));
    }
}
