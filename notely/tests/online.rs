//! Online moves with real processes: two servers sharing the files while strict users talk to
//! both and the notes move from the legacy store, into 4 shards, and are resharded into 8; and
//! a worker killed with SIGKILL at random points, again and again, until a restarted one
//! finishes the move.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{NOTELY, count, http, json, notely, ok, serve, spawn};

fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn move_status(dir: &Path) -> serde_json::Value {
    json(&notely(dir, &["move", "status", "--json"]))
}

#[test]
fn two_servers_and_strict_users_through_live_moves_and_a_reshard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    // New accounts start in the legacy store; some accounts come with many legacy notes.
    ok(&notely(d, &["move", "start", "--to", "legacy", "--all"]));
    ok(&notely(
        d,
        &["move", "seed-legacy", "--accounts", "4", "--notes", "400"],
    ));
    let (a, url_a) = serve(d, &["--move-batch", "10"]);
    let (b, url_b) = serve(d, &["--move-batch", "10"]);
    let users = Command::new(NOTELY)
        .args([
            "--gen",
            "--concurrency",
            "6",
            "--rpm",
            "3000",
            "--notes-per-account",
            "5",
        ])
        .args(["--target", &format!("{url_a},{url_b}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Legacy → notes, then into 4 shards, then resharded into 8, users all along.
    let mut statuses = Vec::new();
    for args in [
        &["--to", "notes", "--all"][..],
        &["--shards", "4"][..],
        &["--shards", "8"][..],
    ] {
        let started = ok(&notely(d, &[&["move", "start"][..], args].concat()));
        assert!(started.contains("started move"), "{started}");
        let deadline = Instant::now() + Duration::from_secs(120);
        statuses.push(loop {
            let newest = move_status(d)[0].clone();
            if newest["state"] != "running" {
                break newest;
            }
            assert!(
                Instant::now() < deadline,
                "the move did not finish: {newest}"
            );
            std::thread::sleep(Duration::from_millis(200));
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    terminate(&users);
    let out = users.wait_with_output().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the load generator's report");
    for mut server in [a, b] {
        terminate(&server);
        server.wait().unwrap();
    }
    for status in &statuses {
        assert_eq!(status["state"], "done", "{status}");
        assert_eq!(status["differences"], 0, "{status}");
    }
    assert!(
        statuses[0]["owners"].as_u64().unwrap() >= 10,
        "{statuses:?}"
    );
    assert!(
        statuses[2]["owners"].as_u64().unwrap() < statuses[1]["owners"].as_u64().unwrap(),
        "the reshard moves only some accounts: {statuses:?}"
    );
    assert!(report["requests"].as_u64().unwrap() > 200, "{report}");
    assert_eq!(report["consistency_misses"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(count(&d.join("legacy.db"), "SELECT count(*) FROM memos"), 0);
    assert_eq!(count(&d.join("notes.db"), "SELECT count(*) FROM notes"), 0);
    let sharded: i64 = (0..8)
        .map(|i| {
            count(
                &d.join(format!("shard-{i:02}.db")),
                "SELECT count(*) FROM notes",
            )
        })
        .sum();
    assert!(sharded >= 1600, "{sharded}");
}

/// `(id, content)` of every note, wherever it is.
fn all_notes(dir: &Path) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let legacy = rusqlite::Connection::open(dir.join("legacy.db")).unwrap();
    let mut stmt = legacy.prepare("SELECT memo_id, body FROM memos").unwrap();
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap() {
        out.insert(row.unwrap());
    }
    let notes = rusqlite::Connection::open(dir.join("notes.db")).unwrap();
    let mut stmt = notes.prepare("SELECT id, content FROM notes").unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((r.get::<_, uuid::Uuid>(0)?.to_string(), r.get(1)?))
        })
        .unwrap()
    {
        out.insert(row.unwrap());
    }
    out
}

#[test]
fn a_worker_killed_at_random_points_resumes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    ok(&notely(
        d,
        &["move", "seed-legacy", "--accounts", "6", "--notes", "300"],
    ));
    let before = all_notes(d);
    assert_eq!(before.len(), 1800);
    ok(&notely(d, &["move", "start", "--to", "notes", "--all"]));
    let mut rng = common::seed();
    let mut kills_mid_move = 0;
    for _ in 0..60 {
        // Slow enough (about 1,500 notes/s) that kills land mid-move.
        let mut worker = spawn(
            d,
            &[
                "move",
                "run",
                "--batch",
                "5",
                "--pause-ms",
                "2",
                "--max-rate",
                "1500",
            ],
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(40 + rng % 200));
        let finished = worker.try_wait().unwrap().is_some();
        let _ = worker.kill();
        let _ = worker.wait();
        let s = move_status(d)[0].clone();
        if s["state"] != "running" {
            break;
        }
        if !finished {
            kills_mid_move += 1;
        }
        eprintln!("kill {kills_mid_move}: {} copied", s["records_copied"]);
        // Mid-move, nothing is lost: every note is somewhere (in both stores only for a
        // batch caught between its copy and its removal).
        let now = all_notes(d);
        assert_eq!(now, before, "notes changed across a kill");
    }
    assert!(
        kills_mid_move >= 3,
        "only {kills_mid_move} kills landed mid-move"
    );
    // Whatever is left, one more worker finishes it.
    ok(&notely(d, &["move", "run"]));
    let s = move_status(d)[0].clone();
    assert_eq!(s["state"], "done", "{s}");
    assert_eq!(s["differences"], 0, "{s}");
    assert_eq!(s["records_copied"], 1800, "{s}");
    assert_eq!(count(&d.join("legacy.db"), "SELECT count(*) FROM memos"), 0);
    assert_eq!(all_notes(d), before);
    assert_eq!(
        count(&d.join("notes.db"), "SELECT count(*) FROM notes"),
        1800
    );
}

fn wait_for_move(d: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let newest = move_status(d)[0].clone();
        if newest["state"] != "running" {
            return newest;
        }
        assert!(Instant::now() < deadline, "the move did not end: {newest}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 13, item 1, end to end: another account takes a legacy note's id in the `notes`
/// store, then that legacy account moves to `notes`, everyone moves into 4 shards and is
/// resharded into 8. Before, the first move deleted the legacy note (its copy silently did
/// nothing) and it answered 404 for good. Now each account keeps its own note through every
/// move, whatever store the two land in.
#[test]
fn notes_with_colliding_ids_survive_a_move_into_notes_shards_and_a_reshard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    ok(&notely(
        d,
        &["move", "seed-legacy", "--accounts", "1", "--notes", "5"],
    ));
    let (owner, nid, content): (String, String, String) =
        rusqlite::Connection::open(d.join("legacy.db"))
            .unwrap()
            .query_row(
                "SELECT account_ref, memo_id, body FROM memos ORDER BY memo_id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
    let (mut server, url) = serve(d, &["--move-batch", "2"]);
    // New accounts (in `notes`) squat the id: enough of them that some share every shard.
    let mut squatters = Vec::new();
    for i in 0..24 {
        let id = common::account(&url, &format!("squatter {i}"));
        let (status, body) = http(
            &url,
            "POST",
            &format!("/accounts/{id}/notes"),
            Some(&format!(r#"{{"id": "{nid}", "content": "squat {i}"}}"#)),
        );
        assert_eq!(status, 201, "{body}");
        squatters.push((id, format!("squat {i}")));
    }
    let check = |stage: &str| {
        let (status, body) = http(&url, "GET", &format!("/accounts/{owner}/notes/{nid}"), None);
        assert_eq!(status, 200, "{stage}: {body}");
        assert_eq!(body["content"], content.as_str(), "{stage}");
        let (status, list) = http(&url, "GET", &format!("/accounts/{owner}/notes"), None);
        assert_eq!(
            (status, list.as_array().map(Vec::len)),
            (200, Some(5)),
            "{stage}"
        );
        for (id, content) in &squatters {
            let (status, body) = http(&url, "GET", &format!("/accounts/{id}/notes/{nid}"), None);
            assert_eq!(
                (status, &body["content"]),
                (200, &serde_json::json!(content))
            );
        }
    };
    check("before");
    for args in [
        &["--to", "notes", "--accounts", owner.as_str()][..],
        &["--shards", "4"][..],
        &["--shards", "8"][..],
    ] {
        ok(&notely(d, &[&["move", "start"][..], args].concat()));
        let status = wait_for_move(d);
        assert_eq!(status["state"], "done", "{args:?}: {status}");
        assert_eq!(status["differences"], 0, "{args:?}: {status}");
        check(&format!("after move {args:?}"));
    }
    let _ = server.kill();
    let _ = server.wait();
}
