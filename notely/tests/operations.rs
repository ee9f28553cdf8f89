//! Every `notely migrate` command from a fresh data directory, and the startup modes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;

use crate::common::{NOTELY, history, json, notely, ok};

#[test]
fn every_migrate_command_works_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plan = ok(&notely(d, &["migrate", "plan"]));
    assert!(
        plan.contains("notes.db (notes): 3 to apply") && plan.contains("index_notes_by_creator"),
        "{plan}"
    );
    // The review: in the terminal (no colour when not a TTY), and as JSON.
    let review = ok(&notely(d, &["migrate", "plan", "--review"]));
    assert!(
        review.contains("== 20240301090000 index_notes_by_creator — expand")
            && review.contains("+ adds index notes.notes_by_creator (on creator, created_at)")
            && review.contains("#[migration(20240301090000")
            && review.contains("approve exactly this: migrate approve --review ")
            && !review.contains('\x1b'),
        "{review}"
    );
    let reviews = json(&notely(d, &["migrate", "plan", "--review", "--json"]));
    let notes = &reviews["databases"][1];
    assert_eq!(notes["role"], "notes");
    assert_eq!(notes["migrations"][1]["changes"][0]["item"], "index");
    assert_eq!(notes["migrations"][2]["class"], "contract");
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
        [20240226153100, 20240301090000, 20261129200000]
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
        [20240226153100, 20240301090000, 20261129200000]
    );
}

#[test]
fn checked_mode_from_the_environment_gives_up_after_its_timeout() {
    // Issue 13, item 12: this test bound the default port, 8080, and failed when anything
    // listened there.
    let _busy = common::occupy_default_port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(NOTELY)
        .arg("--data-dir")
        .arg(dir.path())
        .env("NOTELY_PORT", "0")
        .env("NOTELY_MIGRATE", "checked")
        .env("NOTELY_APPROVAL_TIMEOUT", "0.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no approval within"), "{err}");
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
    // Issue 13, item 12: the checked-mode start below bound the default port, 8080.
    let _busy = common::occupy_default_port();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rehearsed = ok(&notely(d, &["migrate", "rehearse"]));
    assert!(
        rehearsed.contains("notes.db (notes): 3 pending, rehearsed on a copy: ok"),
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
            "pin_notes",
            "--role",
            "notes",
            "--dir",
            src.to_str().unwrap(),
        ],
    ));
    assert!(
        made.contains("copy of m20261130090100_require_note_titles") && made.contains("registered"),
        "{made}"
    );
    let ambiguous = notely(
        dir.path(),
        &["migrate", "new", "x", "--dir", src.to_str().unwrap()],
    );
    assert_eq!(ambiguous.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("--role"));
}

/// `note id → content` of every note in a note store, read directly.
fn notes_in(path: &Path) -> std::collections::BTreeMap<String, String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id, content FROM notes").unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, uuid::Uuid>(0)?.to_string(), r.get(1)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Creates an account and `n` notes through the API; returns the account id and the notes.
fn add_notes(
    url: &str,
    account: Option<&str>,
    n: usize,
    content: impl Fn(usize) -> String,
) -> (String, std::collections::BTreeMap<String, String>) {
    let account = match account {
        Some(a) => a.to_string(),
        None => {
            let (status, body) = common::http(url, "POST", "/accounts", Some(r#"{"name":"Ada"}"#));
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().to_string()
        }
    };
    let mut notes = std::collections::BTreeMap::new();
    for i in 0..n {
        let text = content(i);
        let body = serde_json::json!({ "content": text }).to_string();
        let (status, note) = common::http(
            url,
            "POST",
            &format!("/accounts/{account}/notes"),
            Some(&body),
        );
        assert_eq!(status, 201, "{note}");
        notes.insert(note["id"].as_str().unwrap().to_string(), text);
    }
    (account, notes)
}

fn stop(mut server: std::process::Child) {
    let _ = server.kill();
    let _ = server.wait();
}

/// The backup of `name` a `migrate backup --json` wrote.
fn backup_of(d: &Path, name: &str) -> String {
    let backups = json(&notely(d, &["migrate", "backup", "--json"]));
    backups["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["database"].as_str().unwrap().ends_with(name))
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn restore_puts_back_notelys_wal_databases_and_is_refused_while_notely_serves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (server, url) = common::serve(d, &[]);
    let (account, kept) = add_notes(&url, None, 3, |i| format!("kept {i}"));
    // SIGKILL: the last writes are only in the WAL, as after a crash.
    stop(server);
    assert!(
        d.join("notes.db-wal").exists(),
        "notely keeps its stores in WAL mode"
    );
    let backup = backup_of(d, "notes.db");

    // More notes, and an edit, after the backup.
    let (server, url) = common::serve(d, &[]);
    add_notes(&url, Some(&account), 2, |i| format!("later {i}"));
    let first = kept.keys().next().unwrap();
    let (status, _) = common::http(
        &url,
        "PUT",
        &format!("/accounts/{account}/notes/{first}"),
        Some(r#"{"content":"edited"}"#),
    );
    assert_eq!(status, 200);
    stop(server);
    assert_eq!(notes_in(&d.join("notes.db")).len(), 5);

    // Nothing else running: restored at once (it used to wait 30 s for its own lock, then fail).
    let started = Instant::now();
    let restored = ok(&notely(d, &["migrate", "restore", &backup]));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(restored.contains("restored from"), "{restored}");
    assert_eq!(
        notes_in(&d.join("notes.db")),
        kept,
        "exactly the backup's notes"
    );
    assert!(ok(&notely(d, &["migrate", "verify"])).contains("notes.db (notes): ok"));

    // A server holding the databases open, idle: refused at once, naming it; nothing changes,
    // and the server goes on serving the same notes.
    let (server, url) = common::serve(d, &[]);
    let started = Instant::now();
    let refused = notely(d, &["migrate", "restore", &backup]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = common::stderr(&refused);
    assert!(
        err.contains("notes.db is in use by another process")
            && err.contains(&format!("pid {}", server.id())),
        "{err}"
    );
    let (status, ids) = common::http(&url, "GET", &format!("/accounts/{account}/notes"), None);
    assert_eq!(status, 200);
    let mut ids: Vec<String> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, kept.keys().cloned().collect::<Vec<_>>());
    assert_served(&url, &account, &kept);
    stop(server);
    assert_eq!(notes_in(&d.join("notes.db")), kept);
}

/// The server at `url` answers each of `notes` (`id → content`) of `account`.
fn assert_served(url: &str, account: &str, notes: &std::collections::BTreeMap<String, String>) {
    for (id, content) in notes {
        let (status, note) =
            common::http(url, "GET", &format!("/accounts/{account}/notes/{id}"), None);
        assert_eq!(
            (status, note["content"].as_str()),
            (200, Some(content.as_str()))
        );
    }
}

/// Starts `notely serve` with its stderr in `log`.
fn serve_logged(d: &Path, args: &[&str], log: &Path) -> (std::process::Child, String) {
    common::serve_to(d, args, std::fs::File::create(log).unwrap())
}

/// Overwrites with garbage the root pages of the `notes` table and of its indexes, and every
/// page of the second half of `path` but its last: the header and the schema (page 1) stay
/// intact, so SQLite opens the file and Strata finds its history.
fn damage_pages(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let roots: Vec<u64> = {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'notes'")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|r| r.unwrap() as u64)
            .collect()
    };
    assert!(roots.len() >= 2 && !roots.contains(&1), "{roots:?}");
    let len = std::fs::metadata(path).unwrap().len();
    let pages = len / 4096;
    assert!(pages > 16, "{pages} pages");
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for page in (pages / 2..pages - 1).chain(roots.into_iter().map(|r| r - 1)) {
        file.seek(SeekFrom::Start(page * 4096)).unwrap();
        file.write_all(&[0xA5; 4096]).unwrap();
    }
    file.sync_all().unwrap();
}

#[test]
fn page_damage_is_caught_by_verify_at_startup_and_by_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = tempfile::tempdir().unwrap();
    let (server, url) = common::serve(d, &[]);
    let (account, notes) = add_notes(&url, None, 40, |i| format!("{i} {}", "x".repeat(3000)));
    stop(server);
    // Into the file, as a clean shutdown leaves it.
    rusqlite::Connection::open(d.join("notes.db"))
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let backup = backup_of(d, "notes.db");
    assert!(ok(&notely(d, &["migrate", "verify"])).contains("notes.db (notes): ok"));
    damage_pages(&d.join("notes.db"));

    // `migrate verify` reads every page: exit 3, naming the file.
    let verify = notely(d, &["migrate", "verify"]);
    assert_eq!(verify.status.code(), Some(3));
    let text = common::stdout(&verify);
    assert!(
        text.contains("notes.db (notes): NOT OK")
            && text.contains("damaged (PRAGMA quick_check)")
            && text.contains("control.db (control): ok"),
        "{text}"
    );

    // Startup checks databases up to 64 MiB: refused, naming the file and the way back.
    let refused = notely(d, &["serve", "--port", "0"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = common::stderr(&refused);
    assert!(
        err.contains("notes.db is corrupt")
            && err.contains("quick_check")
            && err.contains(&format!("migrate restore {backup}")),
        "{err}"
    );

    // Without the startup check it serves; the first request meeting the damage makes
    // /healthz answer 503 naming the store, and the log says how to recover.
    let log = logs.path().join("serve.err");
    let (server, url) = serve_logged(d, &["--startup-check-limit", "0"], &log);
    let mut statuses =
        vec![common::http(&url, "GET", &format!("/accounts/{account}/notes"), None).0];
    for id in notes.keys() {
        statuses.push(
            common::http(
                &url,
                "GET",
                &format!("/accounts/{account}/notes/{id}"),
                None,
            )
            .0,
        );
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(!statuses.contains(&500), "{statuses:?}");
    let (status, health) = common::http(&url, "GET", "/healthz", None);
    assert_eq!(status, 503, "{health}");
    assert_eq!(
        health["damaged"],
        serde_json::json!(["notes.db"]),
        "{health}"
    );
    assert!(
        health["error"]
            .as_str()
            .is_some_and(|e| e.contains("notes.db is damaged") && e.contains("migrate restore")),
        "{health}"
    );
    stop(server);
    // A fresh server, no request: its per-second note counts read every store, and meet the
    // damage too.
    let (server, url) = serve_logged(d, &["--startup-check-limit", "0"], &logs.path().join("2"));
    let started = Instant::now();
    while common::http(&url, "GET", "/healthz", None).0 != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/healthz stays 200"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!("{} is damaged", d.join("notes.db").display()))
            && logged.contains(&format!("migrate restore {backup}")),
        "{logged}"
    );

    // The way back: restore the backup; verified, served, healthy.
    ok(&notely(d, &["migrate", "restore", &backup]));
    assert!(ok(&notely(d, &["migrate", "verify"])).contains("notes.db (notes): ok"));
    let (server, url) = common::serve(d, &[]);
    assert_eq!(common::http(&url, "GET", "/healthz", None).0, 200);
    assert_served(&url, &account, &notes);
    stop(server);
}

/// Stdout of a failed `--json` command: exactly one JSON object, and nothing on stderr.
fn json_error(out: &std::process::Output) -> serde_json::Value {
    assert!(out.stderr.is_empty(), "{}", common::stderr(out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", common::stdout(out)));
    assert!(
        value["error"].is_string() && value["kind"].is_string(),
        "{value}"
    );
    value
}

#[test]
fn with_json_errors_are_one_json_object_and_exit_codes_stay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));

    let out = notely(d, &["migrate", "down", "--to", "2024022615310", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_error(&out);
    assert_eq!(v["kind"], "unknown_target", "{v}");
    assert!(v["report"]["databases"].is_array(), "{v}");
    // The same failure without --json: text on stderr, as before.
    let out = notely(d, &["migrate", "down", "--to", "2024022615310"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).starts_with("error: "));

    let out = notely(d, &["migrate", "restore", "nowhere.db", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_error(&out)["kind"], "usage");

    // Bad usage (clap): exit 2.
    let out = notely(d, &["migrate", "down", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_error(&out);
    assert_eq!(v["kind"], "usage");
    assert!(v["error"].as_str().unwrap().contains("--to"), "{v}");

    // Notely's own commands with --json.
    let out = notely(d, &["move", "status", "--id", "99", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_error(&out);
    assert_eq!(v["kind"], "move");
    assert!(v["error"].as_str().unwrap().contains("no move 99"), "{v}");

    // A finding is no error: `verify` still answers its report, with exit 3.
    rusqlite::Connection::open(d.join("notes.db"))
        .unwrap()
        .execute_batch("CREATE TABLE stray (x)")
        .unwrap();
    let out = notely(d, &["migrate", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clean"], false);
}

#[test]
fn down_refuses_unknown_targets_and_asks_before_dropping_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    ok(&notely(
        d,
        &["move", "seed-legacy", "--accounts", "2", "--notes", "3"],
    ));
    let histories = || ["control.db", "notes.db", "legacy.db"].map(|db| history(&d.join(db)));
    let before = histories();

    // A digit short: below every version, it used to revert everything.
    let typo = notely(d, &["migrate", "down", "--to", "2024022615310"]);
    assert_eq!(typo.status.code(), Some(1));
    let err = common::stderr(&typo);
    assert!(
        err.contains("no migration has that version") && err.contains("applied versions nearby"),
        "{err}"
    );
    assert_eq!(histories(), before);

    // Everything: the legacy store's memos would go. Refused before anything, naming them.
    let plan = ok(&notely(d, &["migrate", "plan", "--down-to", "0"]));
    assert!(
        plan.contains("drops table `memos` holding 6 row(s)"),
        "{plan}"
    );
    let refused = notely(d, &["migrate", "down", "--to", "0"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = common::stderr(&refused);
    assert!(
        err.contains("legacy.db")
            && err.contains("table `memos` holding 6 row(s)")
            && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(histories(), before);
    assert!(!d.join("backups").exists(), "refused before backing up");

    // Confirmed: reverted, after a backup that holds the memos.
    let done = ok(&notely(
        d,
        &["migrate", "down", "--to", "0", "--role", "legacy", "--yes"],
    ));
    assert!(done.contains("reverted 2"), "{done}");
    assert!(history(&d.join("legacy.db")).is_empty());
    let backup = std::fs::read_dir(d.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("legacy.")
        })
        .unwrap();
    assert_eq!(common::count(&backup, "SELECT count(*) FROM memos"), 6);
}

/// `migrate approve --review DIGEST` approves the database whose review it names, and only while
/// that review is current.
#[test]
fn approve_names_the_review_it_follows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let refused = notely(d, &["migrate", "approve", "--review", "0123456789abcdef"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        common::stderr(&refused).contains("changed since the review you read"),
        "{}",
        common::stderr(&refused)
    );
    let reviews = json(&notely(d, &["migrate", "plan", "--review", "--json"]));
    let control = &reviews["databases"][0];
    assert_eq!(control["role"], "control");
    let digest = control["digest"].as_str().unwrap();
    let approved = ok(&notely(
        d,
        &["migrate", "approve", "--review", digest, "--by", "ada"],
    ));
    assert!(
        approved.contains("control.db (control): 2 approved by ada"),
        "{approved}"
    );
    let detail: String = rusqlite::Connection::open(d.join("control.db"))
        .unwrap()
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'approved' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.ends_with(&format!("review {digest} (read by the approver)")),
        "{detail}"
    );
    assert!(!d.join("notes.db").exists() || history(&d.join("notes.db")).is_empty());
}
