//! `strata import`, as a real process: the files it writes and the mapping it prints, the
//! read-only check of a database the peer made (exit 3 when the runner would refuse it), and
//! folders it cannot import refused with a message saying what to do.

use std::path::Path;
use std::process::{Command, Output};

use rusqlite::Connection;

const STRATA: &str = env!("CARGO_BIN_EXE_strata");

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n";
const POSTS: &str = "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT);\n";

fn import(args: &[&str]) -> Output {
    Command::new(STRATA)
        .arg("import")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sqlx_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("1_create_users.sql"), USERS).unwrap();
    std::fs::write(dir.join("2_create_posts.sql"), POSTS).unwrap();
}

/// A database sqlx migrated with the first migration, its checksum as given.
fn sqlx_database(path: &Path, checksum: &[u8]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);",
    )
    .unwrap();
    conn.execute_batch(USERS).unwrap();
    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (1, 'create users', TRUE, ?1, 1)",
        [checksum],
    )
    .unwrap();
}

#[test]
fn import_writes_migrations_and_checks_a_database_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer");
    sqlx_folder(&peer);
    let out = dir.path().join("out");
    let db = dir.path().join("app.db");
    sqlx_database(&db, &strata::import::sqlx_checksum(USERS));
    let before = std::fs::read(&db).unwrap();
    let done = import(&[
        "--from",
        "sqlx",
        peer.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        db.to_str().unwrap(),
    ]);
    let said = text(&done);
    assert!(done.status.success(), "{said}");
    for part in [
        "1_create_users.sql -> m20000101000001_create_users (version 20000101000001; sqlx version 1 \
         counted as seconds after 2000-01-01 00:00:00)",
        "20000101000001 1_create_users.sql: adopt (checksum matches)",
        "20000101000002 2_create_posts.sql: run (not applied by the peer)",
        "ok: switching adopts what sqlx applied and runs the rest",
    ] {
        assert!(said.contains(part), "{part:?} missing from:\n{said}");
    }
    let rs = std::fs::read_to_string(out.join("m20000101000001_create_users.rs")).unwrap();
    assert!(
        rs.contains("imported = \"sqlx:1\"") && rs.contains("strata::sql_file!("),
        "{rs}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("m20000101000001_create_users.sql")).unwrap(),
        USERS
    );
    assert!(
        std::fs::read_to_string(out.join("lib.rs"))
            .unwrap()
            .contains("pub mod m20000101000002_create_posts;")
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the check writes nothing"
    );

    // The same database with another checksum: exit 3, saying which file.
    let other = dir.path().join("other.db");
    sqlx_database(
        &other,
        &strata::import::sqlx_checksum("CREATE TABLE users (id);\n"),
    );
    let refused = import(&[
        "--from",
        "sqlx",
        peer.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--database",
        other.to_str().unwrap(),
    ]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(3), "{said}");
    assert!(
        said.contains("1_create_users.sql: REFUSED: checksum mismatch"),
        "{said}"
    );
    assert!(said.contains("(4 already there, unchanged)"), "{said}");
}

#[test]
fn what_cannot_be_imported_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let goose = dir.path().join("goose");
    std::fs::create_dir_all(&goose).unwrap();
    std::fs::write(goose.join("00001_a.sql"), format!("-- +goose Up\n{USERS}")).unwrap();
    std::fs::write(goose.join("00002_backfill.go"), "package migrations\n").unwrap();
    let out = dir.path().join("out");
    let refused = import(&[
        "--from",
        "goose",
        goose.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("goose migration(s) written in Go (00002_backfill.go)"),
        "{said}"
    );
    assert!(!out.exists(), "nothing written");

    let refinery = dir.path().join("refinery");
    std::fs::create_dir_all(&refinery).unwrap();
    std::fs::write(refinery.join("V1__a.sql"), USERS).unwrap();
    std::fs::write(refinery.join("U2__b.sql"), POSTS).unwrap();
    let refused = import(&[
        "--from",
        "refinery",
        refinery.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("U2__b.sql is an unversioned refinery migration"),
        "{said}"
    );
}
