//! Every `notely migrate` command from a fresh data directory, and the startup modes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{NOTELY, history, json, notely, ok};

#[test]
fn every_migrate_command_works_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = ok(&notely(d, &["migrate", "plan"]));
    assert!(
        plan.contains("notes.db (notes): 2 to apply") && plan.contains("index_notes_by_creator"),
        "{plan}"
    );
    ok(&notely(d, &["migrate", "up"]));
    assert!(ok(&notely(d, &["migrate", "verify"])).contains("notes.db (notes): ok"));
    let dump = ok(&notely(d, &["migrate", "dump"]));
    assert!(
        dump.contains("CREATE TABLE \"notes\"(")
            && dump.contains("CREATE INDEX \"notes_by_creator\""),
        "{dump}"
    );
    let history_text = ok(&notely(d, &["migrate", "history"]));
    assert!(
        history_text.contains("create_accounts") && history_text.contains("run_started"),
        "{history_text}"
    );

    let backups = json(&notely(d, &["migrate", "backup", "--json"]));
    let notes_backup = backups["backups"][1]["path"].as_str().unwrap().to_string();
    assert!(Path::new(&notes_backup).exists());

    let down = ok(&notely(d, &["migrate", "down", "--to", "20240226153100"]));
    assert!(
        down.contains("reverted 1")
            && down.contains("- 20240301090000 index_notes_by_creator")
            && down.contains("- 20261121100000 place_accounts"),
        "{down}"
    );
    let status = json(&notely(d, &["migrate", "status", "--json"]));
    assert_eq!(status["databases"][1]["migrations"][1]["state"], "pending");
    assert_eq!(status["databases"][1]["lagging"], false);
    ok(&notely(d, &["migrate", "up", "--to", "20240301090000"]));
    assert_eq!(
        history(&d.join("notes.db")),
        [20240226153100, 20240301090000]
    );

    // A refusal: the index migration has a down, but the first one of `control` does not
    // matter here; reverting past a migration without down would be refused (covered in
    // the runtime tests). Repairing an unchanged migration is refused with a reason.
    let repair = notely(d, &["migrate", "repair", "--version", "20240301090000"]);
    assert_eq!(repair.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&repair.stderr).contains("nothing to repair"));

    // Restore the backup taken before the down: same version as then.
    let restored = ok(&notely(d, &["migrate", "restore", &notes_backup]));
    assert!(restored.contains("restored from"), "{restored}");
    assert_eq!(
        history(&d.join("notes.db")),
        [20240226153100, 20240301090000]
    );
    let events = ok(&notely(d, &["migrate", "history", "--events", "1"]));
    assert!(events.contains("restored"), "{events}");
}

#[test]
fn repair_accepts_a_changed_checksum_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    rusqlite::Connection::open(d.join("control.db"))
        .unwrap()
        .execute(
            "UPDATE strata_migrations SET checksum = 'edited' WHERE version = 20240226153000",
            [],
        )
        .unwrap();
    let refused = notely(d, &[]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("was changed after it was applied") && err.contains("edited"),
        "{err}"
    );
    let repaired = ok(&notely(
        d,
        &[
            "migrate",
            "repair",
            "--version",
            "20240226153000",
            "--by",
            "reviewer",
        ],
    ));
    assert!(repaired.contains("repaired by reviewer"), "{repaired}");
    assert!(common::start(d, &[]).serving);
}

#[test]
fn checked_mode_waits_for_an_operator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = std::thread::spawn({
        let d = d.to_path_buf();
        move || common::start(&d, &["--migrate", "checked"])
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !server.is_finished(),
        "it waits for approval instead of exiting or serving"
    );
    let plan = ok(&notely(d, &["--migrate", "checked", "migrate", "plan"]));
    assert!(plan.contains("REFUSED: waiting for approval"), "{plan}");
    let approved = ok(&notely(d, &["migrate", "approve", "--by", "ops@example"]));
    assert!(approved.contains("approved by ops@example"), "{approved}");
    let start = Instant::now();
    while !server.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "it did not proceed after the approval"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let startup = server.join().unwrap();
    assert!(startup.serving, "{}", startup.stdout);
    assert!(
        startup.stdout.contains("not serving until approved"),
        "{}",
        startup.stdout
    );
    assert_eq!(
        history(&d.join("notes.db")),
        [20240226153100, 20240301090000]
    );
}

#[test]
fn checked_mode_from_the_environment_gives_up_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(NOTELY)
        .arg("--data-dir")
        .arg(dir.path())
        .env("NOTELY_MIGRATE", "checked")
        .env("NOTELY_APPROVAL_TIMEOUT", "0.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no approval within"));
}

#[test]
fn verify_mode_and_command_catch_pending_and_drift() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let refused = notely(d, &["--migrate", "verify"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("pending: 20240226153000 `create_accounts`")
    );
    assert!(!d.join("control.db").exists(), "verify writes nothing");
    ok(&notely(d, &["migrate", "up"]));
    assert!(
        common::start(d, &["--migrate", "verify"]).serving,
        "verify mode serves a verified database"
    );
    rusqlite::Connection::open(d.join("notes.db"))
        .unwrap()
        .execute_batch("ALTER TABLE notes ADD COLUMN title TEXT")
        .unwrap();
    let drift = notely(d, &["migrate", "verify"]);
    assert_eq!(drift.status.code(), Some(3));
    let text = String::from_utf8_lossy(&drift.stdout);
    assert!(
        text.contains("drift: table `notes`: unexpected column `title`"),
        "{text}"
    );
    let as_json: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap_or_default();
    assert!(as_json.is_null(), "human output by default");
    let drift_json = notely(d, &["migrate", "verify", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&drift_json.stdout).unwrap();
    assert_eq!(v["clean"], false);
}

#[test]
fn rehearse_then_checked_mode_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rehearsed = ok(&notely(d, &["migrate", "rehearse"]));
    assert!(
        rehearsed.contains("notes.db (notes): 2 pending, rehearsed on a copy: ok"),
        "{rehearsed}"
    );
    assert!(
        rehearsed.contains("create_notes") && rehearsed.contains("rows"),
        "{rehearsed}"
    );
    assert!(
        !d.join("notes.db").exists(),
        "rehearsal does not create the real database"
    );
    let waiting = notely(d, &["--migrate", "checked", "--approval-timeout", "0.3"]);
    let log = String::from_utf8_lossy(&waiting.stdout);
    assert!(
        log.contains("WARN notely:") && log.contains("pending set rehearsed successfully at"),
        "{log}"
    );
}

#[test]
fn migrate_new_scaffolds_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let notely_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/src");
    for entry in std::fs::read_dir(notely_src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, src.join(path.file_name().unwrap())).unwrap();
    }
    let made = ok(&notely(
        dir.path(),
        &[
            "migrate",
            "new",
            "add_note_titles",
            "--role",
            "notes",
            "--dir",
            src.to_str().unwrap(),
        ],
    ));
    assert!(
        made.contains("copy of m20240301090000_index_notes_by_creator")
            && made.contains("registered"),
        "{made}"
    );
    let ambiguous = notely(
        dir.path(),
        &["migrate", "new", "x", "--dir", src.to_str().unwrap()],
    );
    assert_eq!(ambiguous.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("--role"));
}
