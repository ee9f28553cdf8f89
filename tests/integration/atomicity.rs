//! A failing migration leaves the earlier ones applied and no trace of itself but its failed
//! event.

use strata::{Error, Migrator, Result, Tx, migration};

use crate::util::{events, has_table, history, temp_db};

mod sql_failure {
    use super::*;

    strata::migrations!();

    #[migration(20230201000001, schema = none)]
    fn create_a(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000002, schema = none)]
    fn breaks_midway(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE b (id INTEGER PRIMARY KEY); INSERT INTO b VALUES (1)")?;
        tx.execute_batch("INSERT INTO no_such_table VALUES (1)")
    }

    #[migration(20230201000003, schema = none)]
    fn create_c(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE c (id INTEGER PRIMARY KEY)")
    }
}

mod rust_failure {
    use super::*;

    strata::migrations!();

    #[migration(20230201000011, schema = none)]
    fn create_d(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE d (id INTEGER PRIMARY KEY); INSERT INTO d VALUES (1)")
    }

    #[migration(20230201000012, schema = none)]
    fn refuses_bad_data(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("DELETE FROM d")?;
        Err(Error::msg("found 1 row without an owner"))
    }
}

#[test]
fn sql_failure_rolls_back_only_the_failing_migration() {
    let (_dir, path) = temp_db();
    let err = Migrator::new(&sql_failure::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MigrationFailed { .. }), "{msg}");
    for part in [
        "20230201000002",
        "breaks_midway",
        "no such table: no_such_table",
        "rolled back",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert!(has_table(&path, "a"));
    assert!(
        !has_table(&path, "b"),
        "the failed migration's table must be rolled back"
    );
    assert!(
        !has_table(&path, "c"),
        "migrations after a failure must not run"
    );
    assert_eq!(history(&path), [20230201000001]);
    assert_eq!(
        events(&path),
        [
            ("run_started".into(), None),
            ("applied".into(), Some(20230201000001)),
            ("failed".into(), Some(20230201000002)),
        ]
    );
}

#[test]
fn rust_error_rolls_back_and_is_reported() {
    let (_dir, path) = temp_db();
    let err = Migrator::new(&rust_failure::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    assert!(
        err.to_string().contains("found 1 row without an owner"),
        "{err}"
    );
    assert_eq!(
        crate::util::count(&path, "d"),
        1,
        "the DELETE must be rolled back"
    );
    assert_eq!(history(&path), [20230201000011]);
    let failed = crate::util::open(&path)
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'failed'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert!(
        failed.contains("refuses_bad_data") && failed.contains("without an owner"),
        "{failed}"
    );
}

mod first_fails {
    use super::*;

    strata::migrations!();

    #[migration(20230201000021, schema = none)]
    fn broken_from_the_start(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE z (id INTEGER PRIMARY KEY); SELECT * FROM nowhere")
    }
}

#[test]
fn run_started_survives_a_failing_first_migration() {
    let (_dir, path) = temp_db();
    Migrator::new(&first_fails::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    assert!(!has_table(&path, "z"));
    assert_eq!(
        events(&path),
        [
            ("run_started".into(), None),
            ("failed".into(), Some(20230201000021))
        ]
    );
}

mod plain {
    use super::*;

    strata::migrations!();

    #[migration(20230201000031, schema = none)]
    fn create_p1(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE p1 (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000032, schema = none)]
    fn create_p2(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE p2 (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000033, schema = none)]
    fn create_p3(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE p3 (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000034, schema = none)]
    fn create_p4(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE p4 (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000035, schema = none)]
    fn create_p5(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE p5 (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000036, schema = none)]
    fn create_p6(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE p6 (id INTEGER PRIMARY KEY)")
    }
}

/// The database header's file change counter: SQLite (rollback journal) adds one per commit.
fn commits(path: &std::path::Path) -> u32 {
    let header = std::fs::read(path).unwrap();
    u32::from_be_bytes(header[24..28].try_into().unwrap())
}

/// Group commit: plain migrations applied together share one commit (the run's own set-up
/// commits aside); with `group_for` zero each has its own. Same history and audit either way.
#[test]
fn plain_migrations_share_a_commit_unless_told_otherwise() {
    let run = |group: Option<std::time::Duration>| {
        let (dir, path) = temp_db();
        let mut m = Migrator::new(&plain::MIGRATIONS, "main").backup(None);
        if let Some(g) = group {
            m = m.group_for(g);
        }
        let report = m.run(&path).unwrap();
        let versions: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
        assert_eq!(versions, history(&path));
        let applied = events(&path).iter().filter(|e| e.0 == "applied").count();
        (commits(&path), versions, applied, dir)
    };
    let (grouped, versions, applied, _a) = run(None);
    let (single, versions_single, applied_single, _b) = run(Some(std::time::Duration::ZERO));
    assert_eq!(versions.len(), 6);
    assert_eq!((versions_single, applied, applied_single), (versions, 6, 6));
    assert!(
        single >= grouped + 5,
        "commits: {grouped} grouped, {single} one per migration"
    );
}
