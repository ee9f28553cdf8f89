//! Switching from sqlx, refinery, diesel or goose: `strata import` turns a peer's folder into
//! the migrations checked in under `imported/` (compiled here, so the generated code is known
//! to compile), and the runner adopts what each peer's history table records — nothing runs
//! twice, a changed checksum, a failed peer migration or a peer version without a file is
//! refused with nothing recorded.
//!
//! The peer folders are written by the tests into temporary directories; the peers' history
//! tables are created with the DDL each tool uses and filled as each tool fills them (sqlx's
//! SHA-384 and refinery's SipHash checksums are pinned to values computed outside Strata in
//! `strata::import`'s unit tests).
//!
//! After changing the generator: `STRATA_BLESS=1 cargo test -p strata-tests --test
//! integration import_` rewrites `imported/` (then review the diff).

use std::path::{Path, PathBuf};

use rusqlite::params;
use strata::import::{self, Tool};
use strata::{Error, Migrator, Source};

use crate::util::{count, events, has_table, history, open, temp_db};

#[path = "imported/sqlx/lib.rs"]
mod imported_sqlx;

#[path = "imported/refinery/lib.rs"]
mod imported_refinery;

#[path = "imported/diesel/lib.rs"]
mod imported_diesel;

#[path = "imported/goose/lib.rs"]
mod imported_goose;

const USERS: &str = "CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE
);
";
const DROP_USERS: &str = "DROP TABLE users;\n";
const POSTS: &str = "CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT
);
";
const DROP_POSTS: &str = "DROP TABLE posts;\n";
const INDEX: &str = "CREATE INDEX posts_by_user ON posts (user_id);\n";
const DROP_INDEX: &str = "DROP INDEX posts_by_user;\n";

/// The three migrations of each peer's folder: (relative path, content).
fn peer_files(tool: Tool) -> Vec<(String, String)> {
    let files: Vec<(&str, String)> = match tool {
        Tool::Sqlx => vec![
            ("20240226153000_create_users.up.sql", USERS.into()),
            ("20240226153000_create_users.down.sql", DROP_USERS.into()),
            ("20240301090000_add_posts.sql", POSTS.into()),
            ("20240305120000_index_posts.sql", INDEX.into()),
        ],
        Tool::Refinery => vec![
            ("V1__create_users.sql", USERS.into()),
            ("V2__add_posts.sql", POSTS.into()),
            ("later/V3__index_posts.sql", INDEX.into()),
        ],
        Tool::Diesel => vec![
            ("2024-02-26-153000_create_users/up.sql", USERS.into()),
            ("2024-02-26-153000_create_users/down.sql", DROP_USERS.into()),
            ("2024-03-01-090000_add_posts/up.sql", POSTS.into()),
            ("2024-03-01-090000_add_posts/down.sql", DROP_POSTS.into()),
            ("2024-03-05-120000_index_posts/up.sql", INDEX.into()),
            ("2024-03-05-120000_index_posts/down.sql", DROP_INDEX.into()),
        ],
        Tool::Goose => vec![
            (
                "00001_create_users.sql",
                format!("-- +goose Up\n{USERS}\n-- +goose Down\n{DROP_USERS}"),
            ),
            (
                "00002_add_posts.sql",
                format!(
                    "-- +goose Up\n{POSTS}\n-- +goose StatementBegin\n\
                     CREATE TRIGGER posts_touch AFTER INSERT ON posts BEGIN\n    \
                     UPDATE users SET email = lower(email) WHERE id = new.user_id;\nEND;\n\
                     -- +goose StatementEnd\n\n-- +goose Down\n{DROP_POSTS}"
                ),
            ),
            ("00003_index_posts.sql", format!("-- +goose Up\n{INDEX}")),
        ],
    };
    files.into_iter().map(|(p, t)| (p.to_string(), t)).collect()
}

fn peer_folder(tool: Tool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in peer_files(tool) {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The role each peer's imported migrations are checked in for (one crate holds all four:
/// their versions need distinct roles).
fn role(tool: Tool) -> &'static str {
    tool.name()
}

fn source(tool: Tool) -> &'static Source {
    match tool {
        Tool::Sqlx => &imported_sqlx::MIGRATIONS,
        Tool::Refinery => &imported_refinery::MIGRATIONS,
        Tool::Diesel => &imported_diesel::MIGRATIONS,
        Tool::Goose => &imported_goose::MIGRATIONS,
    }
}

fn checked_in(tool: Tool) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integration/imported")
        .join(tool.name())
}

/// The text of a generated file without its `strata::schema! { .. }` block: that is the
/// introspection printer's (authoring's) to format, and compiling it here is its check.
fn without_schema(text: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("strata::schema!") {
            inside = !line.trim_end().ends_with("{}");
            out.push("strata::schema! { .. }");
            continue;
        }
        if inside {
            inside = line != "}";
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

#[test]
fn import_writes_the_migrations_checked_in_here() {
    let bless = std::env::var_os("STRATA_BLESS").is_some();
    for tool in Tool::ALL {
        let peer = peer_folder(tool);
        let plan = import::plan(tool, peer.path(), role(tool), import::default_base_time())
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        let out = tempfile::tempdir().unwrap();
        let written = import::write(&plan, out.path()).unwrap();
        assert!(written.created_lib);
        let expected = checked_in(tool);
        if bless {
            let _ = std::fs::remove_dir_all(&expected);
            std::fs::create_dir_all(&expected).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in &names {
            let made = std::fs::read_to_string(out.path().join(name)).unwrap();
            if bless {
                std::fs::write(expected.join(name), &made).unwrap();
                continue;
            }
            let kept = std::fs::read_to_string(expected.join(name)).unwrap_or_else(|_| {
                panic!("{tool}: {name} is not checked in; run with STRATA_BLESS=1")
            });
            let (made, kept) = if name.ends_with(".rs") {
                (without_schema(&made), without_schema(&kept))
            } else {
                (made, kept)
            };
            assert_eq!(
                made, kept,
                "{tool}: {name} differs from the one checked in; run with STRATA_BLESS=1 and \
                 review the diff"
            );
        }
        // The SQL is verbatim, and every migration carries the peer's identity.
        let sql: Vec<&String> = plan.migrations.iter().map(|m| &m.peer.up).collect();
        assert!(sql.iter().all(|s| s.contains("CREATE")), "{sql:?}");
        for m in &plan.migrations {
            let rs = &m.files[0].1;
            let attribute = format!(
                "#[migration({}, role = \"{}\", imported = \"{tool}:{}\"",
                m.version,
                role(tool),
                m.peer.version
            );
            assert!(rs.contains(&attribute), "{attribute} missing from:\n{rs}");
        }
    }
}

#[test]
fn versions_are_timestamps_or_counted_from_the_base_time() {
    let versions = |tool| -> Vec<(i64, String)> {
        let peer = peer_folder(tool);
        import::plan(tool, peer.path(), "main", import::default_base_time())
            .unwrap()
            .migrations
            .iter()
            .map(|m| (m.version, m.peer.version.clone()))
            .collect()
    };
    let stamps = [20240226153000, 20240301090000, 20240305120000];
    for tool in [Tool::Sqlx, Tool::Diesel] {
        let v: Vec<i64> = versions(tool).iter().map(|v| v.0).collect();
        assert_eq!(v, stamps, "{tool}");
    }
    assert_eq!(
        versions(Tool::Diesel)[0].1,
        "20240226153000",
        "diesel records its version without dashes"
    );
    for tool in [Tool::Refinery, Tool::Goose] {
        assert_eq!(
            versions(tool),
            [
                (20000101000001, "1".to_string()),
                (20000101000002, "2".to_string()),
                (20000101000003, "3".to_string())
            ],
            "{tool}"
        );
    }
}

/// A database `tool` made: the first `applied` of its migrations run as it runs them, and
/// recorded in its history table as it records them; a user in `users`.
fn peer_database(tool: Tool, applied: usize) -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp_db();
    let conn = open(&path);
    let peer = peer_folder(tool);
    let (migrations, _) = import::read_folder(tool, peer.path()).unwrap();
    match tool {
        Tool::Sqlx => conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                success BOOLEAN NOT NULL,
                checksum BLOB NOT NULL,
                execution_time BIGINT NOT NULL
            );",
        ),
        Tool::Refinery => conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS refinery_schema_history(
                 version int4 PRIMARY KEY,
                 name VARCHAR(255),
                 applied_on VARCHAR(255),
                 checksum VARCHAR(255));",
        ),
        Tool::Diesel => conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                version VARCHAR(50) PRIMARY KEY NOT NULL,
                run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
            );",
        ),
        Tool::Goose => conn.execute_batch(
            "CREATE TABLE goose_db_version (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                version_id INTEGER NOT NULL,
                is_applied INTEGER NOT NULL,
                tstamp TIMESTAMP DEFAULT (datetime('now'))
            );
            INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1);",
        ),
    }
    .unwrap();
    for m in migrations.iter().take(applied) {
        peer_applies(&conn, tool, m);
    }
    conn.execute("INSERT INTO users (email) VALUES ('ada@example.com')", [])
        .unwrap();
    (dir, path)
}

/// Runs `m` and records it as `tool` does.
fn peer_applies(conn: &rusqlite::Connection, tool: Tool, m: &import::PeerMigration) {
    conn.execute_batch(&m.up).unwrap();
    match tool {
        Tool::Sqlx => conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, -1)",
            params![
                m.version.parse::<i64>().unwrap(),
                m.name.replace('_', " "),
                import::sqlx_checksum(&m.up)
            ],
        ),
        Tool::Refinery => {
            let v: i64 = m.version.parse().unwrap();
            conn.execute(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                 VALUES (?1, ?2, '2024-03-01T09:00:00Z', ?3)",
                params![
                    v,
                    m.name,
                    import::refinery_checksum(&m.name, v, &m.up, false)
                        .unwrap()
                        .to_string()
                ],
            )
        }
        Tool::Diesel => conn.execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES (?1)",
            [&m.version],
        ),
        Tool::Goose => conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (?1, 1)",
            [m.version.parse::<i64>().unwrap()],
        ),
    }
    .unwrap();
}

fn migrator(tool: Tool) -> Migrator<'static> {
    Migrator::new(source(tool), role(tool)).backup(None)
}

#[test]
fn each_peer_history_is_adopted_and_nothing_runs_twice() {
    for tool in Tool::ALL {
        // The peer applied the first two migrations; the third is new.
        let (_dir, path) = peer_database(tool, 2);
        let status = migrator(tool).status(&path).unwrap();
        assert_eq!(
            status.pending(),
            3,
            "{tool}: a peer's database shows all pending"
        );
        let report = migrator(tool)
            .run(&path)
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert_eq!(
            report
                .applied
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["create_users", "add_posts", "index_posts"],
            "{tool}"
        );
        let versions = history(&path);
        assert_eq!(versions.len(), 3, "{tool}");
        let kinds: Vec<(String, Option<i64>)> = events(&path)
            .into_iter()
            .filter(|e| e.0 == "adopted" || e.0 == "applied")
            .collect();
        assert_eq!(
            kinds,
            [
                ("adopted".to_string(), Some(versions[0])),
                ("adopted".to_string(), Some(versions[1])),
                ("applied".to_string(), Some(versions[2])),
            ],
            "{tool}: the peer's two are recorded, not run (running them would fail: their \
             tables exist)"
        );
        assert_eq!(count(&path, "users"), 1, "{tool}: the data is untouched");
        let conn = open(&path);
        let index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'posts_by_user'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(index, 1, "{tool}: the new migration ran");
        let detail: String = conn
            .query_row(
                "SELECT detail FROM strata_events WHERE kind = 'adopted' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let peer_version = if matches!(tool, Tool::Sqlx | Tool::Diesel) {
            "20240226153000"
        } else {
            "1"
        };
        assert!(
            detail.starts_with(&format!("adopted from {tool} version {peer_version}")),
            "{tool}: {detail}"
        );
        assert_eq!(
            detail.contains("(checksum verified)"),
            tool.keeps_checksums(),
            "{tool}: {detail}"
        );
        // Run again: up to date, nothing more.
        let again = migrator(tool).run(&path).unwrap();
        assert!(again.applied.is_empty(), "{tool}");
    }
}

#[test]
fn a_database_the_peer_fully_migrated_is_adopted_whole() {
    for tool in Tool::ALL {
        let (_dir, path) = peer_database(tool, 3);
        let report = migrator(tool)
            .run(&path)
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert_eq!(report.applied.len(), 3, "{tool}");
        assert!(
            events(&path).iter().all(|e| e.0 != "applied"),
            "{tool}: nothing ran"
        );
    }
}

/// Changes the checksum the peer recorded for its second migration (as if the file had been
/// edited after it ran).
fn tamper(path: &Path, tool: Tool) {
    let conn = open(path);
    match tool {
        Tool::Sqlx => conn.execute(
            "UPDATE _sqlx_migrations SET checksum = ?1 WHERE version = 20240301090000",
            [import::sqlx_checksum(
                "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
            )],
        ),
        Tool::Refinery => conn.execute(
            "UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 2",
            [],
        ),
        _ => unreachable!("{tool} keeps no checksum"),
    }
    .unwrap();
}

#[test]
fn a_checksum_mismatch_is_refused_naming_the_file_and_nothing_is_recorded() {
    for tool in [Tool::Sqlx, Tool::Refinery] {
        let (_dir, path) = peer_database(tool, 2);
        tamper(&path, tool);
        let before = std::fs::read(&path).unwrap();
        let err = migrator(tool).run(&path).unwrap_err();
        assert!(
            matches!(err, Error::PeerChecksumMismatch { .. }),
            "{tool}: {err}"
        );
        assert_eq!(err.kind(), "peer_checksum_mismatch");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("imported/{tool}/m")) && msg.contains("_add_posts.sql"),
            "{tool}: the message names the file: {msg}"
        );
        assert!(msg.contains("Nothing was recorded"), "{msg}");
        assert!(!has_table(&path, "strata_meta"), "{tool}: nothing recorded");
        assert_eq!(std::fs::read(&path).unwrap(), before, "{tool}");
    }
}

#[test]
fn a_migration_the_peer_recorded_as_failed_is_refused() {
    let (_dir, path) = peer_database(Tool::Sqlx, 2);
    open(&path)
        .execute(
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 20240301090000",
            [],
        )
        .unwrap();
    let err = migrator(Tool::Sqlx).run(&path).unwrap_err();
    assert!(matches!(err, Error::PeerFailed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("sqlx recorded version 20240301090000") && msg.contains("_sqlx_migrations"),
        "{msg}"
    );
    assert!(!has_table(&path, "strata_meta"));
}

#[test]
fn peer_versions_without_a_file_are_refused_unless_unknown_ones_are_allowed() {
    let (_dir, path) = peer_database(Tool::Diesel, 2);
    open(&path)
        .execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240401000000')",
            [],
        )
        .unwrap();
    let err = migrator(Tool::Diesel).run(&path).unwrap_err();
    assert!(matches!(err, Error::PeerUnknown { .. }), "{err}");
    assert!(err.to_string().contains("20240401000000"), "{err}");
    assert!(!has_table(&path, "strata_meta"));
    let report = migrator(Tool::Diesel)
        .allow_unknown(true)
        .run(&path)
        .unwrap();
    assert_eq!(report.applied.len(), 3);
}

#[test]
fn a_goose_migration_rolled_back_runs_again() {
    let (_dir, path) = peer_database(Tool::Goose, 2);
    // goose down: older goose appends `is_applied = 0`.
    let conn = open(&path);
    conn.execute_batch(
        "DROP TRIGGER posts_touch; DROP TABLE posts;
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, 0);",
    )
    .unwrap();
    drop(conn);
    migrator(Tool::Goose).run(&path).unwrap();
    let kinds: Vec<String> = events(&path)
        .into_iter()
        .filter(|e| e.0 == "adopted" || e.0 == "applied")
        .map(|e| e.0)
        .collect();
    assert_eq!(kinds, ["adopted", "applied", "applied"]);
    assert!(has_table(&path, "posts"));
}

/// The unlucky operator: Strata adopted the first migration, then the old binary (still on
/// the peer tool) applied the second; the next Strata run adopts that one too and runs the
/// third.
#[test]
fn a_half_strata_database_adopts_what_the_peer_applied_since() {
    let tool = Tool::Sqlx;
    let (_dir, path) = peer_database(tool, 1);
    let first = migrator(tool)
        .target(Some(20240226153000))
        .run(&path)
        .unwrap();
    assert_eq!(first.applied.len(), 1);
    let peer = peer_folder(tool);
    let (migrations, _) = import::read_folder(tool, peer.path()).unwrap();
    peer_applies(&open(&path), tool, &migrations[1]);
    migrator(tool).run(&path).unwrap();
    let kinds: Vec<String> = events(&path)
        .into_iter()
        .filter(|e| e.0 == "adopted" || e.0 == "applied")
        .map(|e| e.0)
        .collect();
    assert_eq!(kinds, ["adopted", "adopted", "applied"]);
    assert_eq!(count(&path, "users"), 1);
}

#[test]
fn the_import_check_tells_what_a_database_will_adopt_without_writing() {
    let tool = Tool::Refinery;
    let (_dir, path) = peer_database(tool, 2);
    tamper(&path, tool);
    let before = std::fs::read(&path).unwrap();
    let peer = peer_folder(tool);
    let plan = import::plan(tool, peer.path(), role(tool), import::default_base_time()).unwrap();
    let check = import::check_database(&plan, &path).unwrap();
    let decisions: Vec<&import::Decision> = check.entries.iter().map(|e| &e.decision).collect();
    assert_eq!(decisions[0], &import::Decision::Adopt { checked: true });
    assert!(matches!(decisions[1], import::Decision::Mismatch { .. }));
    assert_eq!(decisions[2], &import::Decision::Run);
    let problems = check.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("V2__add_posts.sql: checksum"),
        "{problems:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_peer_database_is_backed_up_before_anything_is_recorded() {
    let tool = Tool::Goose;
    let (dir, path) = peer_database(tool, 2);
    let report = Migrator::new(source(tool), role(tool))
        .backup(Some(strata::BackupPolicy {
            dir: Some(dir.path().join("backups")),
            ..Default::default()
        }))
        .run(&path)
        .unwrap();
    let backup = report.backup.expect("a backup of the peer's database");
    let copy = open(&backup);
    let tables: Vec<String> = copy
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        tables.contains(&"goose_db_version".to_string())
            && !tables.iter().any(|t| t.starts_with("strata_")),
        "the backup is the database as goose left it: {tables:?}"
    );
    assert!(events(&path).iter().any(|e| e.0 == "backed_up"));
}

/// Checked mode: what the peer applied needs no approval (it does not run); the rest does.
#[test]
fn in_checked_mode_only_what_runs_needs_approval() {
    let tool = Tool::Sqlx;
    let (_dir, path) = peer_database(tool, 2);
    let err = migrator(tool)
        .require_approval(true)
        .run(&path)
        .unwrap_err();
    match &err {
        Error::ApprovalRequired { pending, .. } => {
            let names: Vec<&str> = pending.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["index_posts"], "{err}");
        }
        other => panic!("{other}"),
    }
    migrator(tool).approve(&path, "ops").unwrap();
    let report = migrator(tool).require_approval(true).run(&path).unwrap();
    assert_eq!(report.applied.len(), 3);
    let kinds: Vec<String> = events(&path)
        .into_iter()
        .filter(|e| e.0 == "adopted" || e.0 == "applied")
        .map(|e| e.0)
        .collect();
    assert_eq!(kinds, ["adopted", "adopted", "applied"]);
}

#[test]
fn a_peer_database_whose_schema_is_not_what_the_files_say_is_refused() {
    // diesel and goose keep no checksums: a file edited after the peer applied it shows only in
    // the schema, which the last adopted migration's declaration must match.
    for tool in [Tool::Diesel, Tool::Goose] {
        let (_dir, path) = peer_database(tool, 2);
        open(&path)
            .execute_batch("ALTER TABLE posts ADD COLUMN sneaked_in TEXT")
            .unwrap();
        let err = migrator(tool).run(&path).unwrap_err();
        assert_eq!(err.kind(), "adoption_mismatch", "{tool}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("sneaked_in"), "{tool}: {msg}");
        assert!(!has_table(&path, "strata_meta"), "{tool}: nothing recorded");
    }
}
