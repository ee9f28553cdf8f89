//! Helpers shared by the tests of the `notely` binary.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub const NOTELY: &str = env!("CARGO_BIN_EXE_notely");

/// Runs `notely --data-dir DIR ARGS..` with no Notely settings from the environment; should it
/// serve, it does on a free port (`NOTELY_PORT=0`), never on the default 8080.
pub fn notely(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(NOTELY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .env("NOTELY_PORT", "0")
        .output()
        .expect("run notely")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout of a successful run.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
    stdout(out)
}

/// JSON stdout of a successful run.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

/// Versions in a database's history, in order.
pub fn history(path: &Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version FROM strata_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How a `notely` startup ended: it got to serving (and was stopped), or it exited.
pub struct Startup {
    pub serving: bool,
    pub stdout: String,
    pub code: Option<i32>,
}

/// Starts `notely --port 0 ARGS..` and waits until it serves (then stops it) or exits.
pub fn start(data_dir: &Path, args: &[&str]) -> Startup {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(NOTELY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--port", "0"])
        .args(args)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start notely");
    let mut stdout = String::new();
    let mut serving = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line.starts_with("notely: listening on") {
            serving = true;
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait().unwrap();
    Startup {
        serving,
        stdout,
        code: if serving { None } else { status.code() },
    }
}

/// Starts `notely --data-dir DIR ARGS..` with its stdout piped and stderr discarded (on a free
/// port unless ARGS say otherwise).
pub fn spawn(data_dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(NOTELY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .env("NOTELY_PORT", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start notely")
}

/// Starts `notely serve` on a free port and returns it with its URL.
pub fn serve(data_dir: &Path, args: &[&str]) -> (std::process::Child, String) {
    serve_to(data_dir, args, std::process::Stdio::null())
}

/// [`serve`], with its stderr (its log) going to `stderr`.
pub fn serve_to(
    data_dir: &Path,
    args: &[&str],
    stderr: impl Into<std::process::Stdio>,
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(NOTELY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--port", "0"])
        .args(args)
        .env("NOTELY_PORT", "0")
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start notely");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.by_ref().map_while(Result::ok).find_map(|line| {
        line.strip_prefix("notely: listening on ")
            .map(|u| u.trim().to_string())
    });
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    match url {
        Some(url) => (child, url),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("notely serve did not start");
        }
    }
}

/// The single integer an SQL query returns.
pub fn count(path: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// One HTTP/1.1 request to `base` (`http://127.0.0.1:PORT`) over a fresh connection, blocking:
/// the status and the body as JSON (`Null` if empty or not JSON).
pub fn http(base: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    try_http(base, method, path, body).unwrap_or_else(|e| panic!("{method} {path} on {base}: {e}"))
}

/// [`http`], with an error when the server is not there or closes without an answer.
pub fn try_http(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, serde_json::Value), String> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let rest = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((
        status,
        serde_json::from_str(&rest).unwrap_or(serde_json::Value::Null),
    ))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Holds 127.0.0.1:8080, Notely's default port, while it lives, so that a test still relying
/// on the default port fails even on a machine where 8080 is free. `None` when something else
/// holds it already (which is just as good).
pub fn occupy_default_port() -> Option<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:8080").ok()
}

/// A migrated data directory and the API's router over it (no server), with the operator
/// token; `cors` are extra allowed origins.
pub fn router(cors: Vec<String>) -> (tempfile::TempDir, axum::Router, String) {
    let dir = tempfile::tempdir().unwrap();
    let settings = notely::db::Settings {
        backups: 0,
        ..Default::default()
    };
    notely::db::startup(dir.path(), &settings, &mut std::io::sink(), None).unwrap();
    let telemetry = std::sync::Arc::new(notely::telemetry::Telemetry::default());
    let state = notely::server::state(dir.path(), cors, telemetry).unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    (dir, notely::http::app(state), token)
}

/// A seed for a test's random choices, from the clock, printed so a failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    seed
}

/// Creates an account named `name` through the API at `url`; its id.
pub fn account(url: &str, name: &str) -> String {
    let (status, body) = http(
        url,
        "POST",
        "/accounts",
        Some(&serde_json::json!({ "name": name }).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}
