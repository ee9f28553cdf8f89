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
    // A window no loaded machine runs past: all six in one group.
    let (grouped, versions, applied, _a) = run(Some(std::time::Duration::from_secs(60)));
    let (single, versions_single, applied_single, _b) = run(Some(std::time::Duration::ZERO));
    assert_eq!(versions.len(), 6);
    assert_eq!((versions_single, applied, applied_single), (versions, 6, 6));
    assert!(
        single >= grouped + 5,
        "commits: {grouped} grouped, {single} one per migration"
    );
}

mod deferred {
    use super::*;

    strata::migrations!();

    #[migration(20230201000041, schema = none)]
    fn create_tree(tx: &mut Tx) -> Result<()> {
        tx.execute_batch(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY,
                 parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
        )
    }

    #[migration(20230201000042, schema = none)]
    fn orphan(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("INSERT INTO child VALUES (1, 99)")
    }

    #[migration(20230201000043, schema = none)]
    fn adopt(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("INSERT INTO parent VALUES (99)")
    }
}

/// A migration that leaves a deferred foreign key violated fails as its own commit would,
/// whether or not it shares a transaction with its neighbours (the next one, which would mend
/// it, does not run), and the earlier migration stays applied.
#[test]
fn a_deferred_foreign_key_left_violated_fails_its_migration_grouped_or_not() {
    for group in [
        std::time::Duration::from_secs(60),
        std::time::Duration::ZERO,
    ] {
        let (_dir, path) = temp_db();
        let err = Migrator::new(&deferred::MIGRATIONS, "main")
            .group_for(group)
            .run(&path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("20230201000042") && err.contains("FOREIGN KEY constraint failed"),
            "{group:?}: {err}"
        );
        assert_eq!(history(&path), [20230201000041], "{group:?}");
        assert_eq!(crate::util::count(&path, "child"), 0, "{group:?}");
        assert_eq!(
            events(&path),
            [
                ("run_started".into(), None),
                ("applied".into(), Some(20230201000041)),
                ("failed".into(), Some(20230201000042)),
            ],
            "{group:?}"
        );
    }
}

mod restarts {
    use super::*;

    strata::migrations!();

    #[migration(20230201000051, schema = none)]
    fn create_r1(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE r1 (id INTEGER PRIMARY KEY)")
    }

    /// Ends the transaction it was given and begins another (what `no_transaction` is for).
    #[migration(20230201000052, schema = none)]
    fn restart(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE r2 (id INTEGER PRIMARY KEY); COMMIT; BEGIN")
    }

    #[migration(20230201000053, schema = none)]
    fn create_r3(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE r3 (id INTEGER PRIMARY KEY)")
    }
}

mod rolls_back {
    use super::*;

    strata::migrations!();

    #[migration(20230201000101, schema = none)]
    fn create_s1(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE s1 (id INTEGER PRIMARY KEY)")
    }

    #[migration(20230201000102, schema = none)]
    fn roll_back(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("ROLLBACK")
    }
}

/// A migration whose SQL ends the transaction itself: `COMMIT; BEGIN` is applied as it is with a
/// transaction of its own, earlier group members included; a `ROLLBACK` fails it, and the
/// failed event names the group members that went with it (applied again by the next run).
#[test]
fn a_migration_ending_its_groups_transaction_is_caught() {
    let group = std::time::Duration::from_secs(60);
    for g in [group, std::time::Duration::ZERO] {
        let (_dir, path) = temp_db();
        let report = Migrator::new(&restarts::MIGRATIONS, "main")
            .group_for(g)
            .run(&path)
            .unwrap();
        let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
        assert_eq!(applied, [20230201000051, 20230201000052, 20230201000053]);
        assert_eq!(history(&path), applied, "{g:?}");
        assert!(["r1", "r2", "r3"].iter().all(|t| has_table(&path, t)));
    }

    let (_dir, path) = temp_db();
    let err = Migrator::new(&rolls_back::MIGRATIONS, "main")
        .group_for(group)
        .run(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ended the transaction itself"), "{err}");
    assert_eq!(history(&path), Vec::<i64>::new());
    assert!(!has_table(&path, "s1"));
    let detail: String = crate::util::open(&path)
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.contains("rolled back with it") && detail.contains("20230201000101 create_s1"),
        "{detail}"
    );
    // The next run applies the first again, and fails on the second again.
    Migrator::new(&rolls_back::MIGRATIONS, "main")
        .group_for(std::time::Duration::ZERO)
        .run(&path)
        .unwrap_err();
    assert_eq!(history(&path), [20230201000101]);
}
