//! Deploying the next release over a running Notely, with real processes: the `next` build
//! (feature `next`: note titles, one expand and one contract) goes live through `POST
//! /admin/api/deploy` while strict users run. The expand is applied by the new binary as it
//! starts; the contract waits until no process of the old binary is alive.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{NOTELY, history, serve_to};

const EXPAND: i64 = 20261130090000;
const CONTRACT: i64 = 20261130090100;

/// The `next` build of Notely, built once (into `target/next`, so that it never replaces the
/// binary under test).
fn next_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = root.join("target").join("next");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root)
            .args([
                "build",
                "-p",
                "notely",
                "--features",
                "next",
                "--target-dir",
            ])
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .stdout(Stdio::null())
            .status()
            .expect("run cargo");
        assert!(status.success(), "building notely --features next failed");
        target.join("debug").join("notely")
    })
}

/// A process killed at the end of the test, whatever happens.
struct Guard(Vec<u32>);

impl Drop for Guard {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn serve(dir: &Path, overlap: &str) -> (Child, String) {
    serve_to(
        dir,
        &["--deploy-overlap", overlap, "--move-batch", "10"],
        Stdio::null(),
    )
}

fn deploy_state(url: &str) -> serde_json::Value {
    crate::common::http(url, "GET", "/deploy", None).1
}

/// `POST /admin/api/deploy` with the operator token of `dir`.
fn start_deploy(url: &str, dir: &Path, overlap: f64) {
    use std::io::{Read, Write};
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let body = serde_json::json!({"binary": next_binary(), "overlap_s": overlap}).to_string();
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /admin/api/deploy HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token.trim(),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Waits until the deploy's phase is one of `phases`.
fn until_phase(url: &str, phases: &[&str], within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let state = deploy_state(url);
        if phases.iter().any(|p| state["phase"] == *p) {
            return state;
        }
        assert!(Instant::now() < deadline, "deploy stuck: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn applied_within(path: &Path, version: i64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if history(path).contains(&version) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn event(path: &Path, kind: &str, version: i64) -> Option<(String, String)> {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT at, detail FROM strata_events WHERE kind = ?1 AND version = ?2 \
             ORDER BY id DESC LIMIT 1",
            rusqlite::params![kind, version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
}

fn users(url: &str) -> Child {
    Command::new(NOTELY)
        .args([
            "--gen",
            "--concurrency",
            "4",
            "--rpm",
            "1200",
            "--notes-per-account",
            "3",
            "--target",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn users_report(users: Child) -> serde_json::Value {
    let _ = Command::new("kill")
        .args(["-TERM", &users.id().to_string()])
        .status();
    let out = users.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).expect("the load generator's report")
}

#[test]
fn the_next_release_goes_live_under_strict_users_and_its_contract_waits_for_the_old_process() {
    let next = next_binary();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut v1, url) = serve(d, "3");
    let mut guard = Guard(vec![v1.id()]);
    let load = users(&url);
    guard.0.push(load.id());
    std::thread::sleep(Duration::from_millis(1500));
    start_deploy(&url, d, 3.0);
    let ready = until_phase(&url, &["WAIT", "READY", "FAILED"], Duration::from_secs(60));
    assert_ne!(ready["phase"], "FAILED", "{ready}");
    let v2 = ready["new"]["pid"].as_u64().unwrap() as u32;
    guard.0.push(v2);
    // The new binary applied the expand as it started, and deferred the contract: v1 lives.
    let notes = d.join("notes.db");
    assert!(history(&notes).contains(&EXPAND));
    assert!(!history(&notes).contains(&CONTRACT));
    let (_, waited) = event(&notes, "deferred", CONTRACT).expect("a deferred event");
    assert!(waited.contains(&format!("/{} ", v1.id())), "{waited}");
    let done = until_phase(&url, &["READY", "FAILED"], Duration::from_secs(60));
    assert_eq!(done["phase"], "READY", "{done}");
    let exited = v1.wait().unwrap();
    assert!(exited.success(), "the old process: {exited}");
    let gone_at = chrono::Utc::now();
    assert!(
        applied_within(&notes, CONTRACT, Duration::from_secs(10)),
        "the contract was not applied after the old process left"
    );
    let (at, detail) = event(&notes, "applied", CONTRACT).unwrap();
    assert!(
        detail.contains("after waiting for") && detail.contains(&format!("/{} ", v1.id())),
        "{detail}"
    );
    let at = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    let handed_over = chrono::DateTime::parse_from_rfc3339(done["ready_at"].as_str().unwrap())
        .unwrap()
        + chrono::Duration::milliseconds((done["overlap_s"].as_f64().unwrap() * 1e3) as i64);
    assert!(
        at >= handed_over,
        "contract applied at {at}, before the hand-over {handed_over}"
    );
    assert!(at <= gone_at + chrono::Duration::seconds(10));
    std::thread::sleep(Duration::from_millis(500));
    let report = users_report(load);
    assert!(report["requests"].as_u64().unwrap() > 100, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["refused_connections"], 0, "{report}");
    assert_eq!(report["consistency_misses"], 0, "{report}");
    // The new release wrote titles; the contract made them required.
    let untitled = crate::common::count(&notes, "SELECT count(*) FROM notes WHERE title IS NULL");
    assert_eq!(untitled, 0);
    // The old binary, started again, is refused, naming the contract.
    let again = Command::new(NOTELY)
        .arg("--data-dir")
        .arg(d)
        .args(["serve", "--port", "0"])
        .env_remove("NOTELY_DATA_DIR")
        .output()
        .unwrap();
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("contract migration 20261130090100"), "{said}");
    assert!(next.exists());
}

#[test]
fn a_killed_old_process_lets_the_contract_proceed_and_two_replicas_both_hold_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two replicas of the old release on the same files; the deploy goes through the first.
    let (a, url) = serve(d, "1");
    let (b, _) = serve(d, "1");
    let mut guard = Guard(vec![a.id(), b.id()]);
    start_deploy(&url, d, 1.0);
    let done = until_phase(&url, &["READY", "FAILED"], Duration::from_secs(60));
    assert_eq!(done["phase"], "READY", "{done}");
    guard.0.push(done["new"]["pid"].as_u64().unwrap() as u32);
    let notes = d.join("notes.db");
    // The first replica handed over and left; the second still serves the old release.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !history(&notes).contains(&CONTRACT),
        "the contract was applied while an old replica served"
    );
    let _ = Command::new("kill")
        .args(["-KILL", &b.id().to_string()])
        .status();
    assert!(
        applied_within(&notes, CONTRACT, Duration::from_secs(10)),
        "the contract did not proceed once the killed replica was known dead"
    );
    drop(a);
}
