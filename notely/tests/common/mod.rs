//! Helpers shared by the tests of the `notely` binary.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub const NOTELY: &str = env!("CARGO_BIN_EXE_notely");

/// Runs `notely --data-dir DIR ARGS..` with no Notely settings from the environment.
pub fn notely(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(NOTELY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
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

/// Starts `notely --data-dir DIR ARGS..` with its stdout piped and stderr discarded.
pub fn spawn(data_dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(NOTELY)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start notely")
}

/// Starts `notely serve` on a free port and returns it with its URL.
pub fn serve(data_dir: &Path, args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = spawn(data_dir, &[&["--port", "0"], args].concat());
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
