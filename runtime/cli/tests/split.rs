//! `strata split`, as a real process on real files: exact results with the table's own schema
//! and indexes, exactness after SIGKILL at random moments and `--resume`, Ctrl-C, `verify`
//! catching a damaged shard, and every bad input refused with a clear error.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rusqlite::Connection;

const STRATA: &str = env!("CARGO_BIN_EXE_strata");

/// A `clients`-like table: INTEGER PRIMARY KEY, a text key with NULL and blank values, a
/// REAL, a BLOB, an integer-keyed second table, and indexes.
fn source(path: &Path, rows: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         CREATE TABLE clients (id INTEGER PRIMARY KEY, phone VARCHAR(20), score REAL,
                               photo BLOB, name TEXT NOT NULL);
         CREATE INDEX clients_by_phone ON clients (phone);
         CREATE UNIQUE INDEX clients_by_name ON clients (name);
         CREATE TABLE events (at INTEGER, code INTEGER);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut insert = tx
            .prepare("INSERT INTO clients VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        let mut events = tx.prepare("INSERT INTO events VALUES (?1, ?2)").unwrap();
        for i in 1..=rows {
            let phone = match i % 50 {
                0 => None,
                1 => Some("   ".to_string()),
                2 => Some(String::new()),
                _ => Some(format!("+7{:010}", i * 7919 % 10_000_000_000)),
            };
            insert
                .execute(rusqlite::params![
                    i * 3,
                    phone,
                    i as f64 / 3.0,
                    vec![i as u8; 4],
                    format!("client {i}")
                ])
                .unwrap();
            events.execute([i, i % 997]).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn strata(args: &[&str]) -> Output {
    Command::new(STRATA).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn split_args<'a>(src: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "split", "--source", src, "--table", "clients", "--key", "phone", "--shards", "4", "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

/// Every `(rowid, name)` in the shards, and how many rows in all (to catch duplicates).
fn shard_rows(out: &Path, shards: u32) -> (BTreeSet<(i64, String)>, usize) {
    let mut all = BTreeSet::new();
    let mut count = 0;
    for k in 0..=shards {
        let conn = Connection::open(out.join(format!("clients_shard_{k:02}.db"))).unwrap();
        let mut stmt = conn.prepare("SELECT id, name FROM clients").unwrap();
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap() {
            all.insert(row.unwrap());
            count += 1;
        }
    }
    (all, count)
}

fn source_rows(src: &Path) -> BTreeSet<(i64, String)> {
    let conn = Connection::open(src).unwrap();
    let mut stmt = conn.prepare("SELECT id, name FROM clients").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_split_is_exact_keeps_the_schema_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    source(&src, 5000);
    let out = dir.path().join("out");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let done = strata(&split_args(s, o, &["--readers", "3", "--batch", "300"]));
    assert!(done.status.success(), "{}", text(&done));
    assert!(
        text(&done).contains("5000 rows into 5 shards"),
        "{}",
        text(&done)
    );
    let (rows, count) = shard_rows(&out, 4);
    assert_eq!(count, 5000, "no duplicates");
    assert_eq!(rows, source_rows(&src), "exactly the source rows");
    // NULL and blank keys are in the reserved shard, and only there.
    let reserved = Connection::open(out.join("clients_shard_04.db")).unwrap();
    let (n, keyed): (i64, i64) = reserved
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE trim(phone) <> '') FROM clients",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, keyed), (300, 0));
    // The table's own schema and indexes, values of every type intact.
    let shard = Connection::open(out.join("clients_shard_00.db")).unwrap();
    let types: Vec<String> = shard
        .prepare("SELECT type FROM pragma_table_info('clients') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(types, ["INTEGER", "VARCHAR(20)", "REAL", "BLOB", "TEXT"]);
    let indexes: Vec<String> = shard
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'clients' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(indexes, ["clients_by_name", "clients_by_phone"]);
    let (score, photo): (f64, Vec<u8>) = shard
        .query_row(
            "SELECT score, photo FROM clients ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(score > 0.0 && photo.len() == 4);
    assert!(!out.join("clients_shard_00.db-journal").exists());

    let verify = strata(&[&["split", "verify"][..], &split_args(s, o, &[])[1..]].concat());
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("every shard matches the source"));
    // A shard changed behind the splitter's back is caught.
    shard
        .execute(
            "UPDATE clients SET name = name || '!' WHERE id = (SELECT min(id) FROM clients)",
            [],
        )
        .unwrap();
    let verify = strata(
        &[
            &["split", "verify", "--json"][..],
            &split_args(s, o, &[])[1..],
        ]
        .concat(),
    );
    assert_eq!(verify.status.code(), Some(3), "{}", text(&verify));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["shards"][0]["ok"], false);
    assert_eq!(report["shards"][1]["ok"], true);
}

#[test]
fn sigkill_at_random_moments_then_resume_yields_exactly_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    source(&src, 250_000);
    let out = dir.path().join("out");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {rng}");
    let mut kills = 0;
    let mut finished = false;
    for attempt in 0..80 {
        let mut args = split_args(s, o, &["--readers", "2", "--batch", "200"]);
        // Resume once the split has begun (a kill may land before it created anything).
        let begun = std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some());
        if attempt > 0 && begun {
            args.push("--resume");
        }
        let mut child = Command::new(STRATA)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(20 + rng % 100));
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            finished = true;
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    if !finished {
        let last = strata(&split_args(
            s,
            o,
            &["--readers", "2", "--batch", "200", "--resume"],
        ));
        assert!(last.status.success(), "{}", text(&last));
    }
    assert!(kills >= 3, "only {kills} kills landed mid-split");
    let (rows, count) = shard_rows(&out, 4);
    assert_eq!(count, 250_000, "no duplicates after {kills} kills");
    assert_eq!(rows, source_rows(&src), "no gaps after {kills} kills");
    let verify = strata(&[&["split", "verify"][..], &split_args(s, o, &[])[1..]].concat());
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn ctrl_c_checkpoints_and_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    source(&src, 150_000);
    let out = dir.path().join("out");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let child = Command::new(STRATA)
        .args(split_args(
            s,
            o,
            &["--batch", "100", "--log-format", "json"],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped));
    assert!(text(&stopped).contains("--resume"), "{}", text(&stopped));
    let (_, partial) = shard_rows(&out, 4);
    assert!(partial < 150_000, "{partial}");
    let resumed = strata(&split_args(
        s,
        o,
        &["--batch", "100", "--resume", "--log-format", "json"],
    ));
    assert!(resumed.status.success(), "{}", text(&resumed));
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&resumed.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["msg"], "done");
    assert_eq!(last["report"]["rows"], 150_000);
    let (rows, count) = shard_rows(&out, 4);
    assert_eq!((count, rows), (150_000, source_rows(&src)));
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    source(&src, 100);
    let out = dir.path().join("out");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let refused = |args: Vec<&str>, says: &str| {
        let r = strata(&args);
        assert!(!r.status.success(), "{args:?} succeeded");
        assert!(text(&r).contains(says), "{args:?}: {}", text(&r));
    };
    let mut missing_table = split_args(s, o, &[]);
    missing_table[4] = "nope";
    refused(
        missing_table,
        "has no table `nope`; its tables are: clients, events",
    );
    let mut missing_column = split_args(s, o, &[]);
    missing_column[6] = "nope";
    refused(
        missing_column,
        "has no column `nope`; its columns are: id, phone",
    );
    refused(split_args("/no/such.db", o, &[]), "no such source database");
    refused(split_args(s, o, &["--resume"]), "nothing to resume");
    assert!(!out.join("clients_shard_00.db").exists(), "nothing written");
    let done = strata(&split_args(s, o, &[]));
    assert!(done.status.success(), "{}", text(&done));
    refused(split_args(s, o, &[]), "is not empty");
    let mut other = split_args(s, o, &["--resume"]);
    other[8] = "3";
    refused(other, "its shards is 4, this one's is 3");
    let verify = strata(&[&["split", "verify"][..], &split_args(s, o, &[])[1..]].concat());
    assert!(verify.status.success(), "{}", text(&verify));
    let usage = strata(&["split", "--source", s]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
}

/// A kill between writing the split's marker aside and renaming it in place leaves the shards
/// and the marker's temporary file, no marker: `--resume` starts the split again (it used to
/// refuse, the temporary file not being one of the split's own).
#[test]
fn a_kill_between_the_markers_write_and_rename_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    source(&src, 2_000);
    let out = dir.path().join("out");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let first = strata(&split_args(s, o, &[]));
    assert!(first.status.success(), "{}", text(&first));
    let marker = out.join(".clients.strata-split");
    std::fs::rename(&marker, out.join(".clients.strata-split.tmp")).unwrap();
    let resumed = strata(&split_args(s, o, &["--resume"]));
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(marker.exists() && !out.join(".clients.strata-split.tmp").exists());
    let (rows, count) = shard_rows(&out, 4);
    assert_eq!((rows, count), (source_rows(&src), 2_000));
}
