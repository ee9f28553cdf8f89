//! Real OS processes: concurrent starts, kill -9 in the middle of migrations, exit codes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Rng, count, events, has_table, history, open, temp_db};

const PROBE: &str = env!("CARGO_BIN_EXE_strata-probe");
const ALL: [i64; 4] = [
    20240101000000,
    20240102000000,
    20240103000000,
    20240104000000,
];

fn probe(path: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(PROBE);
    cmd.arg(path).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Versions the probe reports it applied, from its JSON line.
fn applied_by(out: &Output) -> Vec<i64> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let list = stdout
        .split("\"applied\":[")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or("");
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

fn assert_complete(path: &Path) {
    assert_eq!(history(path), ALL);
    assert_eq!(count(path, "items"), 200);
    assert_eq!(count(path, "people"), 3);
    assert_eq!(count(path, "pets"), 3);
}

#[test]
fn eight_processes_at_once_apply_each_migration_once() {
    for round in 0..3 {
        let (_dir, path) = temp_db();
        // The slow migration keeps the write lock for a while, so the others really wait.
        let children: Vec<Child> = (0..8)
            .map(|_| {
                probe(&path, &[("STRATA_PROBE_SLOW_MS", "600")])
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut applied: Vec<i64> = Vec::new();
        for out in &outputs {
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            applied.extend(applied_by(out));
        }
        applied.sort();
        assert_eq!(
            applied, ALL,
            "round {round}: each migration applied exactly once"
        );
        assert_complete(&path);
        let applied_events = events(&path).iter().filter(|e| e.0 == "applied").count();
        assert_eq!(applied_events, 4);
    }
}

/// Waits until `cond` holds or `limit` passes.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn kill_9_during_a_long_migration_then_restart_completes() {
    let mut rng = Rng::from_time();
    for round in 0..8 {
        let (_dir, path) = temp_db();
        // A transaction per migration: the first commits alone, the slow one is killed midway.
        let mut child = probe(
            &path,
            &[
                ("STRATA_PROBE_SLOW_MS", "1000"),
                ("STRATA_PROBE_GROUP_MS", "0"),
            ],
        )
        .spawn()
        .unwrap();
        // Wait for the first migration to commit, then kill at a random point of the slow one.
        assert!(wait_for(Duration::from_secs(20), || {
            path.exists()
                && std::panic::catch_unwind(|| history(&path).contains(&ALL[0])).unwrap_or(false)
        }));
        // Kill points range over the slow migration and past it, into the later ones.
        std::thread::sleep(Duration::from_millis(rng.below(1300)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Either the slow migration is applied and recorded, or there is no trace of it.
        let recorded = history(&path).contains(&ALL[1]);
        eprintln!("round {round}: slow migration recorded before the kill: {recorded}");
        assert_eq!(
            has_table(&path, "items"),
            recorded,
            "round {round}: half-applied migration"
        );
        if recorded {
            assert_eq!(count(&path, "items"), 200);
        }
        let out = probe(&path, &[]).output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_complete(&path);
    }
}

/// Group commit: the first migration and the slow one share a transaction, so a kill -9
/// anywhere leaves both or neither, each with its history row, and a restart completes.
#[test]
fn kill_9_during_a_group_of_migrations_leaves_all_or_none_of_it() {
    let mut rng = Rng::from_time();
    let mut seen = BTreeSet::new();
    for round in 0..8 {
        let (_dir, path) = temp_db();
        // A window no loaded machine runs past: the first two always share the transaction.
        let mut child = probe(
            &path,
            &[
                ("STRATA_PROBE_SLOW_MS", "1000"),
                ("STRATA_PROBE_GROUP_MS", "60000"),
            ],
        )
        .spawn()
        .unwrap();
        assert!(wait_for(Duration::from_secs(20), || path.exists()));
        std::thread::sleep(Duration::from_millis(rng.below(1400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let applied = std::panic::catch_unwind(|| history(&path)).unwrap_or_default();
        let (first, slow) = (applied.contains(&ALL[0]), applied.contains(&ALL[1]));
        eprintln!("round {round}: recorded before the kill: {applied:?}");
        // Never the first alone while the slow one ran after it in the same transaction.
        assert_eq!(first, slow, "round {round}: a group half committed");
        assert_eq!(has_table(&path, "people"), first, "round {round}");
        assert_eq!(has_table(&path, "items"), slow, "round {round}");
        if slow {
            assert_eq!(count(&path, "items"), 200);
        }
        seen.insert(first);
        let out = probe(&path, &[]).output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_complete(&path);
    }
    eprintln!("kill points fell before and after the group's commit: {seen:?}");
}

#[test]
fn kill_9_during_a_no_transaction_migration_is_recovered() {
    let (_dir, path) = temp_db();
    let mut child = probe(&path, &[("STRATA_PROBE_NOTX_SLOW_MS", "5000")])
        .spawn()
        .unwrap();
    let leased = || {
        path.exists()
            && std::panic::catch_unwind(|| {
                open(&path)
                    .query_row("SELECT count(*) FROM strata_lease", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .unwrap_or(0)
                    == 1
            })
            .unwrap_or(false)
    };
    assert!(
        wait_for(Duration::from_secs(20), leased),
        "the no_transaction migration never started"
    );
    // Meanwhile, another process waits for the lease rather than running past it.
    let waiter = probe(&path, &[("STRATA_PROBE_LOCK_TIMEOUT_MS", "300")])
        .output()
        .unwrap();
    assert!(!waiter.status.success());
    let stderr = String::from_utf8_lossy(&waiter.stderr);
    assert!(
        stderr.contains("waiting for the migration lock") && stderr.contains("held by"),
        "{stderr}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(history(&path), &ALL[..3]);

    let out = probe(&path, &[]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(applied_by(&out), [ALL[3]]);
    assert_complete(&path);
    assert!(
        events(&path)
            .iter()
            .any(|e| e.0 == "lease_recovered" && e.1 == Some(ALL[3]))
    );
}

#[test]
fn waiting_is_bounded_by_the_lock_timeout() {
    let (_dir, path) = temp_db();
    let slow = probe(
        &path,
        &[
            ("STRATA_PROBE_SLOW_MS", "4000"),
            ("STRATA_PROBE_GROUP_MS", "0"),
        ],
    )
    .spawn()
    .unwrap();
    assert!(wait_for(Duration::from_secs(20), || {
        path.exists()
            && std::panic::catch_unwind(|| history(&path).contains(&ALL[0])).unwrap_or(false)
    }));
    let started = Instant::now();
    let impatient = probe(&path, &[("STRATA_PROBE_LOCK_TIMEOUT_MS", "300")])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(impatient.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&impatient.stderr);
    assert!(
        stderr.contains("gave up after 0.3s waiting for the migration lock"),
        "{stderr}"
    );
    // The patient one finishes normally.
    let out = slow.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_complete(&path);
}

#[test]
fn failing_migration_exits_non_zero_naming_it() {
    let (_dir, path) = temp_db();
    let out = probe(&path, &[("STRATA_PROBE_FAIL", "1")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for part in [
        "20240102000000",
        "slow_fill",
        "no such table: missing_table",
    ] {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
    assert_eq!(history(&path), [ALL[0]]);
    assert!(!has_table(&path, "items"));
}

/// Looking at a database (status, plan, a heartbeat) from a process that also writes to it must
/// not release that process's locks. POSIX drops every lock a process holds on a file when any
/// descriptor of it closes; Strata used to open the file itself to read its header, so a
/// status read beside an open transaction let another process write at the same time.
#[test]
fn reading_a_database_beside_an_open_transaction_keeps_its_locks() {
    let (_dir, path) = temp_db();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let status = strata::Migrator::new(&strata_tests::probe::MIGRATIONS, "main")
        .status(&path)
        .unwrap();
    assert!(!status.initialized);
    // Another process wants the write lock: it must still be held.
    let out = probe(&path, &[("STRATA_PROBE_LOCK_TIMEOUT_MS", "300")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "another process migrated while this one held the write lock: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waiting for the migration lock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    holder.execute_batch("COMMIT").unwrap();
    assert!(probe(&path, &[]).output().unwrap().status.success());
}
