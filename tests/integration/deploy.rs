//! Deploys with two releases side by side, as real OS processes: release 1 knows one migration,
//! release 2 adds an expand and a contract (`strata_tests::deploy`). The contract waits while a
//! release-1 instance lives, and the newest instance applies it once the last one is gone.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata::class::Class;
use strata::instances::HEARTBEAT;

use crate::util::{history, open, temp_db};

const PROBE: &str = env!("CARGO_BIN_EXE_strata-probe");
const BASE: i64 = 20250101000000;
const EXPAND: i64 = 20250102000000;
const CONTRACT: i64 = 20250103000000;

/// A serving probe, killed when dropped.
struct Served {
    child: Child,
    line: String,
}

impl Served {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn deferred(&self) -> bool {
        !self.line.contains("\"deferred\":[]")
    }
    /// Closes stdin: the probe leaves cleanly (deregisters) and exits.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the probe did not leave cleanly: {status}"
        );
    }
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts release `release` serving on `path`; `Err(stderr)` when it refuses to start.
fn serve(path: &Path, release: &str, extra: &[&str]) -> Result<Served, String> {
    let mut child = Command::new(PROBE)
        .arg("serve")
        .arg(path)
        .arg(release)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let out = child.wait_with_output().unwrap();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(Served { child, line })
}

fn columns(path: &Path) -> Vec<String> {
    let conn = open(path);
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('items')")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Waits (up to a few heartbeats) until `version` is applied.
fn applied_within(path: &Path, version: i64, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if history(path).contains(&version) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The detail of the newest audit event of `kind` for `version`.
fn event_detail(path: &Path, kind: &str, version: i64) -> Option<String> {
    open(path)
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = ?1 AND version = ?2 \
             ORDER BY id DESC LIMIT 1",
            rusqlite::params![kind, version],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn a_contract_waits_for_the_older_instance_and_the_newest_applies_it_after_it_leaves() {
    let (_dir, path) = temp_db();
    let v1 = serve(&path, "1", &[]).unwrap();
    let v2 = serve(&path, "2", &[]).unwrap();
    // The expand is applied at once; the contract waits for release 1.
    assert_eq!(history(&path), vec![BASE, EXPAND]);
    assert!(v2.deferred(), "{}", v2.line);
    assert_eq!(columns(&path), ["id", "note", "label"]);
    let waited = event_detail(&path, "deferred", CONTRACT).expect("a deferred event");
    assert!(waited.contains(&format!("/{} ", v1.pid())), "{waited}");
    // The plan and the status say why.
    let plan = strata::Migrator::new(&strata_tests::deploy::MIGRATIONS, "deploy")
        .plan(&path)
        .unwrap();
    let contract = &plan.migrations[0];
    assert_eq!(
        (contract.version, contract.class),
        (CONTRACT, Class::Contract)
    );
    assert!(contract.deferred && contract.blocked_by[0].contains("probe release 1"));
    assert_eq!(
        contract.contract_changes,
        ["drops column items.note (TEXT NOT NULL)"]
    );
    let status = strata::Migrator::new(&strata_tests::deploy::MIGRATIONS, "deploy")
        .status(&path)
        .unwrap();
    assert!(status.migrations[2].deferred_for.is_some());
    // Two heartbeats later it still waits.
    std::thread::sleep(HEARTBEAT * 2);
    assert!(!history(&path).contains(&CONTRACT));
    let left = chrono::Utc::now();
    v1.stop();
    assert!(
        applied_within(&path, CONTRACT, HEARTBEAT * 4),
        "release 2 did not apply the contract after release 1 left"
    );
    assert_eq!(columns(&path), ["id", "label"]);
    let applied = event_detail(&path, "applied", CONTRACT).unwrap();
    assert!(
        applied.contains("after waiting for") && applied.contains("probe release 1"),
        "{applied}"
    );
    let at: String = open(&path)
        .query_row(
            "SELECT at FROM strata_events WHERE kind = 'applied' AND version = ?1",
            [CONTRACT],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&at).unwrap() >= left,
        "applied at {at}, release 1 left at {left}"
    );
    // The history records the classes.
    let classes: Vec<String> = {
        let conn = open(&path);
        let mut stmt = conn
            .prepare("SELECT class FROM strata_migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(classes, ["expand", "expand", "contract"]);
    v2.stop();
    // A clean exit removes the registration.
    let left: i64 = open(&path)
        .query_row("SELECT count(*) FROM strata_instances", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_killed_older_instance_lets_the_contract_proceed_once_it_is_known_dead() {
    let (_dir, path) = temp_db();
    let v1 = serve(&path, "1", &[]).unwrap();
    let _v2 = serve(&path, "2", &[]).unwrap();
    assert!(!history(&path).contains(&CONTRACT));
    v1.kill();
    assert!(applied_within(&path, CONTRACT, HEARTBEAT * 4));
}

#[test]
fn two_older_replicas_both_hold_the_contract_back() {
    let (_dir, path) = temp_db();
    let a = serve(&path, "1", &[]).unwrap();
    let b = serve(&path, "1", &[]).unwrap();
    let v2 = serve(&path, "2", &[]).unwrap();
    assert!(v2.deferred());
    let waited = event_detail(&path, "deferred", CONTRACT).unwrap();
    assert!(
        waited.contains(&format!("/{} ", a.pid())) && waited.contains(&format!("/{} ", b.pid())),
        "{waited}"
    );
    a.kill();
    std::thread::sleep(HEARTBEAT * 2 + Duration::from_millis(500));
    assert!(
        !history(&path).contains(&CONTRACT),
        "applied while a release-1 replica still served"
    );
    b.stop();
    assert!(applied_within(&path, CONTRACT, HEARTBEAT * 4));
}

#[test]
fn an_older_binary_serves_beside_newer_expands_and_is_refused_after_a_contract() {
    let (_dir, path) = temp_db();
    let v1 = serve(&path, "1", &[]).unwrap();
    let v2 = serve(&path, "2", &[]).unwrap();
    // Release 1 restarted during the overlap: the unknown migration is an expand.
    let again = serve(&path, "1", &[]).expect("release 1 refused beside an expand");
    v1.stop();
    again.stop();
    assert!(applied_within(&path, CONTRACT, HEARTBEAT * 4));
    let refused = serve(&path, "1", &[])
        .err()
        .expect("release 1 started after the contract");
    assert!(
        refused.contains("contract migration 20250103000000")
            && refused.contains("knows up to 20250101000000"),
        "{refused}"
    );
    drop(v2);
}

#[test]
fn contract_now_applies_at_once_and_the_audit_log_names_who_forced_it() {
    let (_dir, path) = temp_db();
    let v1 = serve(&path, "1", &[]).unwrap();
    let v2 = serve(&path, "2", &["contract-now"]).unwrap();
    assert!(!v2.deferred());
    assert_eq!(history(&path), vec![BASE, EXPAND, CONTRACT]);
    let forced = event_detail(&path, "contract_forced", CONTRACT).unwrap();
    assert!(
        forced.contains("probe-operator") && forced.contains(&format!("/{} ", v1.pid())),
        "{forced}"
    );
}

#[test]
fn instances_are_listed_with_their_liveness() {
    let (_dir, path) = temp_db();
    let v1 = serve(&path, "1", &[]).unwrap();
    let m = strata::Migrator::new(&strata_tests::deploy::MIGRATIONS, "deploy");
    let list = m.instances(&path).unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].alive && list[0].pid == i64::from(v1.pid()));
    assert_eq!(list[0].newest_version, Some(BASE));
    let pid = v1.pid();
    v1.kill();
    let list = m.instances(&path).unwrap();
    assert_eq!(list[0].pid, i64::from(pid));
    assert!(!list[0].alive && list[0].gone.as_deref() == Some("its process has ended"));
}

#[test]
fn in_verify_mode_the_heartbeat_applies_nothing_even_once_the_older_instance_is_gone() {
    let (_dir, path) = temp_db();
    let v1 = serve(&path, "1", &[]).unwrap();
    let newer = strata::Migrator::new(&strata_tests::deploy::MIGRATIONS, "deploy").backup(None);
    let report = newer.run(&path).unwrap();
    assert_eq!(report.deferred.len(), 1);
    let presence = strata::instances::Presence::join(
        "release 2, verify mode",
        vec![(newer.clone(), path.clone())],
        strata::Mode::Verify,
        None,
    )
    .unwrap();
    v1.stop();
    std::thread::sleep(HEARTBEAT * 3);
    assert!(
        !history(&path).contains(&CONTRACT),
        "a verify-mode process applied a migration"
    );
    presence.leave().unwrap();
    // The same in auto mode applies it.
    let presence = strata::instances::Presence::join(
        "release 2",
        vec![(newer, path.clone())],
        strata::Mode::Auto,
        None,
    )
    .unwrap();
    assert!(applied_within(&path, CONTRACT, HEARTBEAT * 4));
    presence.leave().unwrap();
}
