//! Deploys with real processes: `POST /deploy` launches a new `notely` on the same listening
//! socket, both serve for the overlap, then the old one hands over and exits — under strict
//! users, without a failed request or a refused connection. A new binary that dies while
//! starting fails the deploy and the old process keeps serving; a second deploy is refused
//! while one runs; the public route cannot choose what runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notely::loadgen::{self, LoadConfig};
use notely::telemetry::Telemetry;
use serde_json::{Value, json};

use crate::common::{NOTELY, http, try_http};

/// Processes a test started, killed at its end whatever happened (the new processes of
/// deploys by pid: they are not the test's children).
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    pids: Vec<u64>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in &self.pids {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A `notely serve` started by a test: its URL, and its stdout as it comes.
struct Served {
    url: String,
    out: Arc<Mutex<String>>,
    /// Index of the process in [`Cleanup::children`].
    index: usize,
}

/// Starts `notely serve` on a free port over `dir` (stderr to `dir/old.err`).
fn serve(dir: &Path, args: &[&str], cleanup: &mut Cleanup) -> Served {
    let err = std::fs::File::create(dir.join("old.err")).unwrap();
    let mut child = Command::new(NOTELY)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--port", "0", "--backups", "0"])
        .args(args)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .env_remove("NOTELY_ADMIN_TOKEN")
        .env_remove("NOTELY_DEPLOY_OVERLAP")
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("start notely");
    let stdout = child.stdout.take().unwrap();
    cleanup.children.push(child);
    let index = cleanup.children.len() - 1;
    let out = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let out = Arc::clone(&out);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("notely: listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut out = out.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
    }
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("notely serve did not start: {}", out.lock().unwrap()));
    Served { url, out, index }
}

/// The operator token of the server over `dir`.
fn token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("data/admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// `POST /admin/api/deploy` with `body`, with the operator token unless `token` is `None`.
fn admin_deploy(base: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.to_string();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /admin/api/deploy HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The deploy as operators see it (`GET /admin/api/status`): paths and the log included.
fn operator_view(base: &str, token: &str) -> Value {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /admin/api/status HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<Value>(body).unwrap_or(Value::Null)["deploy"].clone()
}

/// Follows `GET /deploy` until deploy `id` is over (at most `within`); its end state.
fn wait_for_end(base: &str, id: &str, within: Duration) -> Value {
    let until = Instant::now() + within;
    let mut last = Value::Null;
    while Instant::now() < until {
        if let Ok((200, state)) = try_http(base, "GET", "/deploy", None) {
            let running = ["INITIAL", "LAUNCH_NEW", "WAIT"]
                .iter()
                .any(|p| state["phase"] == *p);
            if state["id"] == id && !running {
                return state;
            }
            last = state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("deploy {id} did not end within {within:?}; last seen: {last}");
}

/// Waits (at most `within`) for a test's child to exit; its exit code.
fn exit_code(child: &mut Child, within: Duration) -> Option<i32> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the old process did not exit within {within:?}");
}

/// A shell script in `dir` standing in for a new build.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn alive(pid: u64) -> bool {
    // A zombie is gone for our purposes: its stat says `Z`.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn a_deploy_hands_over_under_strict_users_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let old = serve(dir.path(), &["--deploy-overlap", "2"], &mut cleanup);
    let old_pid = u64::from(cleanup.children[old.index].id());
    let runtime = notely::server::runtime().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let users = runtime.spawn({
        let url = old.url.clone();
        async move {
            let config = LoadConfig {
                accounts: 4,
                notes_per_account: 3,
                rpm: 600,
                duration: None,
            };
            loadgen::run(&url, &config, Arc::new(Telemetry::default()), stopped).await
        }
    });
    std::thread::sleep(Duration::from_secs(1));

    let (status, started) = http(&old.url, "POST", "/deploy", None);
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "deployment started", "{started}");
    assert!(started["timestamp"].is_string(), "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let end = wait_for_end(&old.url, &id, Duration::from_secs(20));
    let new_pid = end["new"]["pid"].as_u64().unwrap_or(0);
    if new_pid > 0 {
        cleanup.pids.push(new_pid);
    }
    assert_eq!(end["phase"], "READY", "{end}");
    assert_eq!(end["old"]["pid"], old_pid, "{end}");
    assert_ne!(new_pid, old_pid);
    for side in ["old", "new"] {
        assert!(end[side]["migrations"].is_object(), "{end}");
        assert!(end[side]["version"].is_string(), "{end}");
    }
    assert!(
        end["launched_at"].is_string() && end["ready_at"].is_string(),
        "{end}"
    );

    // The old process finishes what it serves and exits 0, saying to whom it handed over.
    let code = exit_code(&mut cleanup.children[old.index], Duration::from_secs(15));
    assert_eq!(code, Some(0), "{}", old.out.lock().unwrap());
    assert!(
        old.out
            .lock()
            .unwrap()
            .contains(&format!("notely: handed over to pid {new_pid}")),
        "{}",
        old.out.lock().unwrap()
    );
    // The users go on against the same port, now served by the new process alone.
    std::thread::sleep(Duration::from_secs(1));
    let _ = stop.send(true);
    let report = runtime.block_on(users).unwrap().unwrap();
    assert!(alive(new_pid), "the new process serves on");
    let (status, after) = http(&old.url, "GET", "/deploy", None);
    assert_eq!((status, &after["phase"]), (200, &json!("READY")), "{after}");
    assert_eq!(http(&old.url, "GET", "/healthz", None).0, 200);
    assert!(report.requests > 50, "{report:?}");
    assert_eq!(
        (
            report.errors,
            report.refused_connections,
            report.consistency_misses
        ),
        (0, 0, 0),
        "{report:?}"
    );
}

#[test]
fn a_new_binary_that_dies_while_starting_fails_the_deploy_and_the_old_one_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let old = serve(dir.path(), &["--deploy-overlap", "1"], &mut cleanup);
    let broken = script(
        dir.path(),
        "broken-build",
        "echo starting the broken build\nsleep 1\necho 'error: it broke' >&2\nexit 1",
    );
    let token = token(dir.path());
    let (status, started) = admin_deploy(&old.url, Some(&token), &json!({ "binary": broken }));
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap();
    let public = wait_for_end(&old.url, id, Duration::from_secs(15));
    assert_eq!(public["phase"], "FAILED", "{public}");
    // The public view says why, but not what the log says nor where things are.
    assert!(
        public["log"].is_null()
            && !public["reason"].as_str().unwrap().contains("it broke")
            && public["new"]["binary"] == "broken-build",
        "{public}"
    );
    let end = operator_view(&old.url, &token);
    assert_eq!(end["id"], public["id"]);
    let reason = end["reason"].as_str().unwrap();
    assert!(
        reason.contains("exited (exit status: 1) before it was ready")
            && reason.contains("error: it broke"),
        "{reason}"
    );
    assert_eq!(end["new"]["binary"], json!(broken), "{end}");
    let log = std::fs::read_to_string(end["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("starting the broken build"), "{log}");
    // The old process never stopped serving.
    assert_eq!(cleanup.children[old.index].try_wait().unwrap(), None);
    assert_eq!(http(&old.url, "GET", "/healthz", None).0, 200);
    crate::common::account(&old.url, "after the failed deploy");
    assert!(!old.out.lock().unwrap().contains("handed over"));
}

#[test]
fn a_second_deploy_is_refused_while_one_runs_and_a_missing_binary_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let old = serve(dir.path(), &["--deploy-overlap", "1"], &mut cleanup);
    let token = token(dir.path());
    // The operator route needs the operator token; it refuses what cannot run.
    let (status, _) = admin_deploy(&old.url, None, &json!({}));
    assert_eq!(status, 401);
    let (status, body) = admin_deploy(
        &old.url,
        Some(&token),
        &json!({ "binary": dir.path().join("no-such-build") }),
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no-such-build"),
        "{body}"
    );
    let (status, body) = admin_deploy(&old.url, Some(&token), &json!({ "binary": "notely" }));
    assert_eq!(status, 400, "{body}");
    assert_eq!(http(&old.url, "GET", "/deploy", None).1["phase"], "NONE");

    let slow = script(dir.path(), "slow-broken-build", "sleep 2\nexit 1");
    let (status, started) = admin_deploy(&old.url, Some(&token), &json!({ "binary": slow }));
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap();
    let (status, refused) = http(&old.url, "POST", "/deploy", None);
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains(id), "{refused}");
    let (status, refused) = admin_deploy(&old.url, Some(&token), &json!({}));
    assert_eq!(status, 409, "{refused}");
    let end = wait_for_end(&old.url, id, Duration::from_secs(15));
    assert_eq!(end["phase"], "FAILED", "{end}");
    assert_eq!(cleanup.children[old.index].try_wait().unwrap(), None);
}

#[test]
fn the_public_route_cannot_choose_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let old = serve(dir.path(), &["--deploy-overlap", "1"], &mut cleanup);
    let marker = dir.path().join("ran");
    let evil = script(
        dir.path(),
        "evil",
        &format!("touch '{}'\nsleep 30", marker.display()),
    );
    let body = json!({ "binary": evil, "overlap_s": 0 }).to_string();
    let (status, started) = http(&old.url, "POST", "/deploy", Some(&body));
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let end = wait_for_end(&old.url, &id, Duration::from_secs(20));
    if let Some(pid) = end["new"]["pid"].as_u64() {
        cleanup.pids.push(pid);
    }
    assert_eq!(end["phase"], "READY", "{end}");
    let full = operator_view(&old.url, &token(dir.path()));
    let launched = PathBuf::from(full["new"]["binary"].as_str().unwrap());
    assert_eq!(
        launched.canonicalize().unwrap(),
        Path::new(NOTELY).canonicalize().unwrap(),
        "the server's own binary, not the one in the body"
    );
    assert_eq!(
        end["overlap_s"], 1.0,
        "the server's overlap, not the body's"
    );
    assert!(!marker.exists(), "the binary named in the body ran");
    let code = exit_code(&mut cleanup.children[old.index], Duration::from_secs(15));
    assert_eq!(code, Some(0));
}

#[test]
fn demo_deploy_reports_a_deploy_without_a_failed_request() {
    let out = Command::new(NOTELY)
        .args([
            "demo",
            "--deploy",
            "--duration",
            "4",
            "--accounts",
            "4",
            "--json",
        ])
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_ADMIN_TOKEN")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let new_pid = report["deploys"][0]["new_pid"].as_u64();
    let _cleanup = Cleanup {
        children: Vec::new(),
        pids: new_pid.into_iter().collect(),
    };
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deploys = report["deploys"].as_array().unwrap();
    assert_eq!(deploys.len(), 1, "{report}");
    let d = &deploys[0];
    assert_eq!(d["phase"], "READY", "{d}");
    assert_eq!(
        (&d["failed_requests"], &d["refused_connections"]),
        (&json!(0), &json!(0)),
        "{d}"
    );
    assert_eq!(d["deferred"], 0, "{d}");
    assert!(d["applied_after_s"].is_null(), "{d}");
    assert!(d["duration_s"].as_f64().unwrap() >= 3.0, "{d}");
    assert_eq!(
        (&report["errors"], &report["consistency_misses"]),
        (&json!(0), &json!(0))
    );
    assert!(
        !alive(new_pid.unwrap()),
        "the demo stops the new process at its end"
    );
}

/// Waits until deploy `id` is in `phase` (at most `within`); its state then.
fn wait_for_phase(base: &str, id: &str, phase: &str, within: Duration) -> Value {
    let until = Instant::now() + within;
    let mut last = Value::Null;
    while Instant::now() < until {
        if let Ok((200, state)) = try_http(base, "GET", "/deploy", None) {
            if state["id"] == id && state["phase"] == phase {
                return state;
            }
            last = state;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("deploy {id} did not reach {phase} within {within:?}; last seen: {last}");
}

#[test]
fn kill_9_of_the_new_process_while_it_starts_fails_the_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let old = serve(dir.path(), &["--deploy-overlap", "1"], &mut cleanup);
    let hanging = script(dir.path(), "hanging-build", "exec sleep 30");
    let token = token(dir.path());
    let (status, started) = admin_deploy(&old.url, Some(&token), &json!({ "binary": hanging }));
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap();
    let launching = wait_for_phase(&old.url, id, "LAUNCH_NEW", Duration::from_secs(10));
    let new_pid = launching["new"]["pid"].as_u64().unwrap();
    cleanup.pids.push(new_pid);
    let killed = Command::new("kill")
        .args(["-9", &new_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let end = wait_for_end(&old.url, id, Duration::from_secs(10));
    assert_eq!(end["phase"], "FAILED", "{end}");
    assert!(
        end["reason"].as_str().unwrap().contains("signal: 9"),
        "{end}"
    );
    assert_eq!(cleanup.children[old.index].try_wait().unwrap(), None);
    assert_eq!(http(&old.url, "GET", "/healthz", None).0, 200);
}

#[test]
fn kill_9_of_the_old_process_during_the_overlap_leaves_the_new_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let old = serve(dir.path(), &["--deploy-overlap", "30"], &mut cleanup);
    let (status, started) = http(&old.url, "POST", "/deploy", None);
    assert_eq!(status, 200, "{started}");
    let id = started["id"].as_str().unwrap();
    let waiting = wait_for_phase(&old.url, id, "WAIT", Duration::from_secs(20));
    let new_pid = waiting["new"]["pid"].as_u64().unwrap();
    cleanup.pids.push(new_pid);
    assert!(
        waiting["overlap_left_s"].as_f64().unwrap() > 20.0,
        "{waiting}"
    );
    let old_child = &mut cleanup.children[old.index];
    old_child.kill().unwrap();
    old_child.wait().unwrap();
    // Only the new process serves the port now; it reports the deploy for what it became.
    let (status, state) = http(&old.url, "GET", "/deploy", None);
    assert_eq!(status, 200);
    assert_eq!(state["phase"], "READY", "{state}");
    assert!(
        state["note"].as_str().unwrap().contains("ended early"),
        "{state}"
    );
    assert_eq!(state["new"]["pid"], new_pid);
    crate::common::account(&old.url, "after the old one died");
    // And it may deploy in turn (nothing runs any more): refused only for the missing binary.
    let token = token(dir.path());
    let (status, body) = admin_deploy(
        &old.url,
        Some(&token),
        &json!({ "binary": dir.path().join("no-such-build") }),
    );
    assert_eq!(status, 503, "{body}");
}
