//! Sharding by account with real files and processes: placement by the hash of the account id,
//! the move to N shards, a reshard that moves only the logical shards changing location, every
//! shard migrated in unison, and a reshard surviving SIGKILL of its worker.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{NOTELY, count, json, notely, ok, serve};
use strata_online::shard::logical_shard;

fn query<T: rusqlite::types::FromSql>(path: &Path, sql: &str) -> Vec<(uuid::Uuid, T)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Account → location, from the directory.
fn placements(dir: &Path) -> BTreeMap<uuid::Uuid, String> {
    query(
        &dir.join("control.db"),
        "SELECT owner, location FROM strata_placement",
    )
    .into_iter()
    .collect()
}

/// The shard map, logical shard → location.
fn shard_map(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("control.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT location FROM strata_shard_map ORDER BY logical")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Notes per shard database, and in total.
fn notes_per_shard(dir: &Path) -> (BTreeMap<String, i64>, i64) {
    let mut per = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".db")
            && stem.starts_with("shard-")
        {
            per.insert(
                stem.to_string(),
                count(&dir.join(&name), "SELECT count(*) FROM notes"),
            );
        }
    }
    let total = per.values().sum();
    (per, total)
}

fn newest_move(dir: &Path) -> serde_json::Value {
    json(&notely(dir, &["move", "status", "--json"]))[0].clone()
}

#[test]
fn sharding_then_resharding_moves_only_what_changes_and_migrations_reach_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    ok(&notely(
        d,
        &["move", "seed-legacy", "--accounts", "40", "--notes", "25"],
    ));
    ok(&notely(
        d,
        &["move", "start", "--to", "notes", "--all", "--wait"],
    ));

    let out = ok(&notely(d, &["move", "start", "--shards", "4", "--wait"]));
    assert!(out.contains("→ 4 shards") && out.contains("done"), "{out}");
    let four = shard_map(d);
    assert_eq!(four.len(), 4096);
    let placed = placements(d);
    assert_eq!(placed.len(), 40);
    for (account, location) in &placed {
        let logical = usize::from(logical_shard(account.as_bytes()));
        assert_eq!(
            location, &four[logical],
            "account {account} is on its shard"
        );
    }
    let (per, total) = notes_per_shard(d);
    assert_eq!((per.len(), total), (4, 1000), "{per:?}");
    assert_eq!(count(&d.join("notes.db"), "SELECT count(*) FROM notes"), 0);

    let out = ok(&notely(d, &["move", "start", "--shards", "8", "--wait"]));
    assert!(
        out.contains("reshard 4 → 8 shards") && out.contains("done"),
        "{out}"
    );
    let eight = shard_map(d);
    let changed: BTreeSet<usize> = (0..4096).filter(|&l| four[l] != eight[l]).collect();
    assert_eq!(changed.len(), 2048);
    let after = placements(d);
    let mut moved = 0;
    for (account, location) in &after {
        let logical = usize::from(logical_shard(account.as_bytes()));
        assert_eq!(location, &eight[logical]);
        if changed.contains(&logical) {
            moved += 1;
        } else {
            assert_eq!(
                location, &placed[account],
                "an unchanged logical shard stayed put"
            );
        }
    }
    let status = newest_move(d);
    assert_eq!(
        status["owners"], moved,
        "only the accounts of changed logical shards moved"
    );
    assert_eq!(status["differences"], 0);
    let (per, total) = notes_per_shard(d);
    assert_eq!((per.len(), total), (8, 1000), "{per:?}");
    let text = ok(&notely(d, &["move", "status"]));
    assert!(text.contains("per target: shard-04"), "{text}");

    // New accounts go straight to their shard.
    let (mut server, url) = serve(d, &[]);
    let account = post(&url, "/accounts", r#"{"name": "new"}"#);
    let id = uuid::Uuid::parse_str(account["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        account["shard"].as_str().unwrap(),
        eight[usize::from(logical_shard(id.as_bytes()))]
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // Every shard is migrated with the note stores, in unison.
    let status = json(&notely(d, &["migrate", "status", "--json"]));
    let shards: Vec<&serde_json::Value> = status["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|db| db["path"].as_str().unwrap().contains("shard-"))
        .collect();
    assert_eq!(shards.len(), 8);
    assert!(
        shards.iter().all(|db| db["version"] == 20261129200000i64),
        "{shards:?}"
    );
    let down = ok(&notely(
        d,
        &[
            "migrate",
            "down",
            "--to",
            "20240226153100",
            "--role",
            "notes",
        ],
    ));
    assert!(down.contains("shard-07.db"), "{down}");
    for i in 0..8 {
        let history = common::history(&d.join(format!("shard-{i:02}.db")));
        assert_eq!(history, [20240226153100], "shard {i}");
    }
    ok(&notely(d, &["migrate", "up"]));
    for i in 0..8 {
        let history = common::history(&d.join(format!("shard-{i:02}.db")));
        assert_eq!(
            history,
            [20240226153100, 20240301090000, 20261129200000],
            "shard {i}"
        );
    }

    // Back to one store: every account moves, and new accounts no longer go by hash.
    ok(&notely(
        d,
        &["move", "start", "--to", "notes", "--all", "--wait"],
    ));
    assert!(placements(d).values().all(|l| l == "notes"));
    assert!(shard_map(d).is_empty(), "the shard map is gone");
    let (_, total) = notes_per_shard(d);
    assert_eq!(total, 0);
    assert_eq!(
        count(&d.join("notes.db"), "SELECT count(*) FROM notes"),
        1000
    );
}

/// A POST over a plain socket (the tests need no HTTP client crate for one request).
fn post(url: &str, path: &str, body: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    serde_json::from_str(body).unwrap()
}

/// `(id, content)` of every note in every shard.
fn all_notes(dir: &Path) -> BTreeSet<(uuid::Uuid, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("shard-") && name.ends_with(".db") {
            out.extend(query::<String>(
                &dir.join(&name),
                "SELECT id, content FROM notes",
            ));
        }
    }
    out
}

#[test]
fn a_reshard_survives_sigkill_of_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    ok(&notely(
        d,
        &["move", "seed-legacy", "--accounts", "16", "--notes", "300"],
    ));
    ok(&notely(
        d,
        &["move", "start", "--to", "notes", "--all", "--wait"],
    ));
    ok(&notely(d, &["move", "start", "--shards", "2", "--wait"]));
    let before = all_notes(d);
    assert_eq!(before.len(), 4800);
    ok(&notely(d, &["move", "start", "--shards", "4"]));
    let mut rng = common::seed();
    let mut kills_mid_move = 0;
    for _ in 0..60 {
        let mut worker = Command::new(NOTELY)
            .arg("--data-dir")
            .arg(d)
            // Slow enough (about 1,500 notes/s) that kills land mid-move.
            .args([
                "move",
                "run",
                "--batch",
                "5",
                "--pause-ms",
                "2",
                "--max-rate",
                "1500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(40 + rng % 200));
        let finished = worker.try_wait().unwrap().is_some();
        let _ = worker.kill();
        let _ = worker.wait();
        if newest_move(d)["state"] != "running" {
            break;
        }
        if !finished {
            kills_mid_move += 1;
        }
        assert_eq!(all_notes(d), before, "notes changed across a kill");
    }
    assert!(
        kills_mid_move >= 3,
        "only {kills_mid_move} kills landed mid-move"
    );
    ok(&notely(d, &["move", "run"]));
    let status = newest_move(d);
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["differences"], 0, "{status}");
    assert_eq!(all_notes(d), before);
    let (per, total) = notes_per_shard(d);
    assert_eq!((per.len(), total), (4, 4800), "{per:?}");
    let map = shard_map(d);
    for (account, location) in placements(d) {
        assert_eq!(
            location,
            map[usize::from(logical_shard(account.as_bytes()))]
        );
    }
}
