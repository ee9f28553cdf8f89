//! The real `notely` binary: migrating its databases from the command line and at startup.

use std::path::Path;
use std::process::Command;

use crate::common;

use crate::common::{NOTELY, json, notely, stderr, stdout};

fn history_len(path: &Path) -> usize {
    common::history(path).len()
}

#[test]
fn migrate_up_creates_and_migrates_an_empty_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = notely(&data, &["migrate", "up"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for part in [
        "control",
        "created, applied 2",
        "create_accounts",
        "place_accounts",
        "legacy",
        "create_legacy_memos",
        "notes",
        "applied 3",
        "create_notes",
        "index_notes_by_creator",
        "key_notes_by_account",
        "key_memos_by_account",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    assert_eq!(history_len(&data.join("control.db")), 2);
    assert_eq!(history_len(&data.join("notes.db")), 3);
    assert_eq!(history_len(&data.join("legacy.db")), 2);

    let again = notely(&data, &["migrate", "up"]);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));
}

#[test]
fn status_lists_every_compiled_migration_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before = json(&notely(dir.path(), &["migrate", "status", "--json"]));
    let dbs = before["databases"].as_array().unwrap();
    // The registry as the real binary sees it: an empty one would list nothing here.
    let listed: usize = dbs
        .iter()
        .map(|d| d["migrations"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, 7);
    assert!(dbs.iter().all(|d| d["initialized"] == false));
    assert!(
        !dir.path().join("control.db").exists(),
        "status must not create databases"
    );

    json(&notely(dir.path(), &["migrate", "up", "--json"]));
    let after = json(&notely(dir.path(), &["migrate", "status", "--json"]));
    for db in after["databases"].as_array().unwrap() {
        for m in db["migrations"].as_array().unwrap() {
            assert_eq!(m["state"], "applied", "{m}");
            assert_eq!(m["checksum"], m["applied_checksum"]);
        }
    }
    let text = stdout(&notely(dir.path(), &["migrate", "status"]));
    assert!(text.starts_with("DATABASE"), "{text}");
    let notes_line: Vec<&str> = text
        .lines()
        .find(|l| l.contains("notes.db"))
        .map(|l| l.split_whitespace().skip(1).collect())
        .unwrap_or_default();
    assert_eq!(notes_line, ["notes", "20261129200000", "0", "0"], "{text}");
}

#[test]
fn startup_migrates_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let startup = common::start(dir.path(), &[]);
    assert!(startup.serving, "{}", startup.stdout);
    assert!(
        startup.stdout.contains("created, applied 3"),
        "{}",
        startup.stdout
    );
    assert_eq!(history_len(&dir.path().join("notes.db")), 3);
}

#[test]
fn eight_notely_processes_start_at_once() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..8)
            .map(|_| {
                Command::new(NOTELY)
                    .arg("--data-dir")
                    .arg(dir.path())
                    .args(["migrate", "up", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = std::collections::BTreeMap::<String, Vec<i64>>::new();
        for child in children {
            let report = json(&child.wait_with_output().unwrap());
            for db in report["databases"].as_array().unwrap() {
                let role = db["role"].as_str().unwrap().to_string();
                assert_eq!(db["outcome"], "done", "{db}");
                for a in db["report"]["applied"].as_array().unwrap() {
                    applied
                        .entry(role.clone())
                        .or_default()
                        .push(a["version"].as_i64().unwrap());
                }
            }
        }
        for list in applied.values_mut() {
            list.sort();
        }
        assert_eq!(
            applied["control"],
            [20240226153000, 20261121100000],
            "round {round}"
        );
        assert_eq!(
            applied["legacy"],
            [20261121100100, 20261129200100],
            "round {round}"
        );
        assert_eq!(
            applied["notes"],
            [20240226153100, 20240301090000, 20261129200000],
            "round {round}"
        );
        assert_eq!(history_len(&dir.path().join("control.db")), 2);
        assert_eq!(history_len(&dir.path().join("notes.db")), 3);
    }
}

#[test]
fn a_foreign_file_in_the_data_dir_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.db");
    std::fs::write(&control, "not a database at all, just text\n").unwrap();
    let out = notely(dir.path(), &["migrate", "up"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("control.db is not an SQLite database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&control).unwrap(),
        "not a database at all, just text\n"
    );
}

#[test]
fn bad_flags_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = notely(dir.path(), &["--lock-timeout=-3", "migrate", "up"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--lock-timeout"), "{}", stderr(&out));
    let out = notely(dir.path(), &["migrate", "sideways"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unrecognized subcommand"),
        "{}",
        stderr(&out)
    );
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let out = notely(&file, &["migrate", "up"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("creating data directory"),
        "{}",
        stderr(&out)
    );
}
