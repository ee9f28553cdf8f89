//! Operations around the runner: checked mode, backups, restore, down, targets, repair,
//! verify, plan, history, fleets.

use std::path::Path;

use strata::{
    BackupPolicy, Error, Fleet, MigrationState, Migrator, Mode, Outcome, Result, SchemaSnapshot,
    Tx, migration,
};

use crate::util::{events, has_table, history, open, temp_db};

fn sql(tx: &mut Tx, sql: &str) -> Result<()> {
    tx.execute_batch(sql)
}

/// `ops::base` holds v1; `ops` adds v2 (with a down) and v3 (without).
mod ops {
    use super::*;

    strata::migrations!();

    pub mod base {
        use super::*;

        strata::migrations!();

        #[migration(20220101000001, schema = none, down = drop_items)]
        fn create_items(tx: &mut Tx) -> Result<()> {
            sql(
                tx,
                "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)",
            )
        }

        fn drop_items(tx: &mut Tx) -> Result<()> {
            sql(tx, "DROP TABLE items")
        }
    }

    #[migration(20220101000002, schema = none, down = drop_tags)]
    fn create_tags(tx: &mut Tx) -> Result<()> {
        sql(
            tx,
            "CREATE TABLE tags (item INTEGER NOT NULL REFERENCES items(id), tag TEXT NOT NULL)",
        )
    }

    fn drop_tags(tx: &mut Tx) -> Result<()> {
        sql(tx, "DROP TABLE tags")
    }

    #[migration(20220101000003, schema = none)]
    fn index_tags(tx: &mut Tx) -> Result<()> {
        sql(tx, "CREATE INDEX tags_by_tag ON tags (tag)")
    }
}

const V1: i64 = 20220101000001;
const V2: i64 = 20220101000002;
const V3: i64 = 20220101000003;

fn no_backup(m: Migrator<'static>) -> Migrator<'static> {
    m.backup(None)
}

fn base() -> Migrator<'static> {
    no_backup(Migrator::new(&ops::base::MIGRATIONS, "main"))
}

fn full() -> Migrator<'static> {
    no_backup(Migrator::new(&ops::MIGRATIONS, "main"))
}

#[test]
fn checked_mode_applies_only_after_approval() {
    let (_dir, path) = temp_db();
    base().run(&path).unwrap();
    let err = full().startup(&path, Mode::Checked).unwrap_err();
    assert!(matches!(err, Error::ApprovalRequired { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("20220101000002 `create_tags`") && msg.contains("migrate approve"),
        "{msg}"
    );
    assert_eq!(history(&path), [V1]);
    assert!(
        full().plan(&path).unwrap().refused.is_none(),
        "plain plan is not checked"
    );
    let checked_plan = full().require_approval(true).plan(&path).unwrap();
    assert!(checked_plan.refused.unwrap().contains("approval"));

    let approved = full().approve(&path, "alice").unwrap();
    assert_eq!(
        approved.iter().map(|m| m.version).collect::<Vec<_>>(),
        [V2, V3]
    );
    assert!(
        full().approve(&path, "alice").unwrap().is_empty(),
        "approving twice records nothing"
    );
    let status = full().status(&path).unwrap();
    assert!(
        status
            .migrations
            .iter()
            .filter(|m| m.version != V1)
            .all(|m| m.approved)
    );
    let detail: String = open(&path)
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'approved' AND version = ?1",
            [V2],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.starts_with("approved by alice; checksum "),
        "{detail}"
    );

    let report = full().startup(&path, Mode::Checked).unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(history(&path), [V1, V2, V3]);
}

#[test]
fn approval_is_needed_again_after_a_revert() {
    let (_dir, path) = temp_db();
    let downs = no_backup(Migrator::new(&ops::MIGRATIONS, "main")).target(Some(V2));
    downs.approve(&path, "alice").unwrap();
    downs.clone().require_approval(true).run(&path).unwrap();
    downs.down_to(&path, V1).unwrap();
    let err = downs.clone().require_approval(true).run(&path).unwrap_err();
    assert!(matches!(err, Error::ApprovalRequired { .. }), "{err}");
}

#[test]
fn backup_before_migrating_holds_the_previous_state_and_retention_applies() {
    let (dir, path) = temp_db();
    base().run(&path).unwrap();
    open(&path)
        .execute("INSERT INTO items VALUES (1, 'first')", [])
        .unwrap();
    let policy = BackupPolicy {
        dir: Some(dir.path().join("bk")),
        keep: 2,
    };
    let report = full()
        .backup(Some(policy.clone()))
        .target(Some(V2))
        .run(&path)
        .unwrap();
    let backup = report.backup.expect("a backup before applying");
    assert!(backup.starts_with(dir.path().join("bk")));
    assert!(
        backup
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(&format!(".v{V1}.db"))
    );
    assert_eq!(history(&backup), [V1]);
    assert!(!has_table(&backup, "tags"));
    assert_eq!(crate::util::count(&backup, "items"), 1);
    assert!(events(&path).iter().any(|e| e.0 == "backed_up"));

    for _ in 0..3 {
        full()
            .backup(Some(policy.clone()))
            .down_to(&path, V1)
            .unwrap();
        full()
            .backup(Some(policy.clone()))
            .target(Some(V2))
            .run(&path)
            .unwrap();
    }
    let kept = std::fs::read_dir(dir.path().join("bk")).unwrap().count();
    assert_eq!(kept, 2, "retention keeps the newest 2");
}

#[test]
fn a_fresh_database_is_not_backed_up() {
    let (dir, path) = temp_db();
    let report = Migrator::new(&ops::MIGRATIONS, "main").run(&path).unwrap();
    assert!(report.backup.is_none());
    assert!(!dir.path().join("backups").exists());
}

#[test]
fn restore_puts_a_backup_back_and_refuses_while_in_use() {
    let (dir, path) = temp_db();
    let policy = BackupPolicy {
        dir: Some(dir.path().join("bk")),
        keep: 5,
    };
    base().run(&path).unwrap();
    let report = full().backup(Some(policy.clone())).run(&path).unwrap();
    let backup = report.backup.unwrap();

    // Another process (here: connection) in a write transaction: refused, nothing changed.
    let writer = open(&path);
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = full()
        .backup(Some(policy.clone()))
        .restore(&path, &backup)
        .unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    writer.execute_batch("ROLLBACK").unwrap();
    drop(writer);
    assert_eq!(history(&path), [V1, V2, V3]);

    let restored = full()
        .backup(Some(policy.clone()))
        .restore(&path, &backup)
        .unwrap();
    assert_eq!(restored.version, Some(V1));
    assert_eq!(history(&path), [V1]);
    assert!(!has_table(&path, "tags"));
    assert_eq!(events(&path).last().unwrap().0, "restored");

    // Not a backup of this role, or no backup at all: refused, database untouched.
    let (_other_dir, other) = temp_db();
    Migrator::new(crate::policies_other_role(), "billing")
        .backup(None)
        .run(&other)
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = full().restore(&path, &other).unwrap_err();
    assert!(matches!(err, Error::WrongRole { .. }), "{err}");
    let plain = dir.path().join("plain.db");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE x (a)")
        .unwrap();
    let err = full().restore(&path, &plain).unwrap_err();
    assert!(err.to_string().contains("no Strata history"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn restore_works_in_wal_mode_and_refuses_while_another_connection_has_it_open() {
    let (dir, path) = temp_db();
    let policy = BackupPolicy {
        dir: Some(dir.path().join("bk")),
        keep: 5,
    };
    base().run(&path).unwrap();
    let backup = full()
        .backup(Some(policy.clone()))
        .run(&path)
        .unwrap()
        .backup
        .unwrap();
    // WAL mode, as Notely's databases are; an idle connection stays open, as in a server.
    let idle = open(&path);
    let mode: String = idle
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    idle.execute("INSERT INTO items VALUES (7, 'after the backup')", [])
        .unwrap();
    let started = std::time::Instant::now();
    let err = full()
        .backup(Some(policy.clone()))
        .restore(&path, &backup)
        .unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        history(&path),
        [V1, V2, V3],
        "refused before changing anything"
    );

    // Nobody else has it open: the restore goes through (it used to wait 30 s for its own
    // lock and fail), in place, and the database stays in WAL mode.
    drop(idle);
    let started = std::time::Instant::now();
    let restored = full()
        .backup(Some(policy.clone()))
        .restore(&path, &backup)
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(restored.version, Some(V1));
    assert_eq!(history(&path), [V1]);
    assert!(!has_table(&path, "tags"));
    assert_eq!(crate::util::count(&path, "items"), 0);
    let conn = open(&path);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // The replaced content (with the row written after the backup) was saved first.
    let saved: Vec<_> = std::fs::read_dir(dir.path().join("bk"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != &backup && p.extension().is_some_and(|e| e == "db"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(crate::util::count(&saved[0], "items"), 1);
}

mod all_downs {
    use super::*;

    strata::migrations!();

    #[migration(20220102000001, schema = none, down = drop_a)]
    fn create_a(tx: &mut Tx) -> Result<()> {
        sql(tx, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)")
    }
    fn drop_a(tx: &mut Tx) -> Result<()> {
        sql(tx, "DROP TABLE a")
    }

    #[migration(20220102000002, schema = none, down = drop_w)]
    fn add_w(tx: &mut Tx) -> Result<()> {
        sql(tx, "ALTER TABLE a ADD COLUMN w INTEGER NOT NULL DEFAULT 0")
    }
    fn drop_w(tx: &mut Tx) -> Result<()> {
        sql(tx, "ALTER TABLE a DROP COLUMN w")
    }

    #[migration(20220102000003, schema = none, down = drop_index)]
    fn index_a(tx: &mut Tx) -> Result<()> {
        sql(tx, "CREATE INDEX a_by_v ON a (v)")
    }
    fn drop_index(tx: &mut Tx) -> Result<()> {
        sql(tx, "DROP INDEX a_by_v")
    }
}

#[test]
fn down_reverts_newest_first_to_the_earlier_schema() {
    let (_dir, path) = temp_db();
    let (_dir2, reference) = temp_db();
    let m = no_backup(Migrator::new(&all_downs::MIGRATIONS, "main"));
    m.clone()
        .target(Some(20220102000001))
        .run(&reference)
        .unwrap();
    m.run(&path).unwrap();
    let plan = m.plan_down(&path, 20220102000001).unwrap();
    assert_eq!(
        plan.migrations
            .iter()
            .map(|p| p.version)
            .collect::<Vec<_>>(),
        [20220102000003, 20220102000002]
    );
    assert!(plan.refused.is_none());
    let report = m.down_to(&path, 20220102000001).unwrap();
    assert_eq!(
        report
            .reverted
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["index_a", "add_w"]
    );
    assert_eq!(history(&path), [20220102000001]);
    let live = SchemaSnapshot::read(&open(&path)).unwrap();
    let want = SchemaSnapshot::read(&open(&reference)).unwrap();
    assert!(live.diff(&want).is_empty(), "{:?}", live.diff(&want));
    let kinds: Vec<String> = events(&path).into_iter().map(|e| e.0).collect();
    assert!(
        kinds.ends_with(&["run_started".into(), "reverted".into(), "reverted".into()]),
        "{kinds:?}"
    );
}

#[test]
fn down_refuses_before_reverting_anything_when_a_down_is_missing() {
    let (_dir, path) = temp_db();
    full().run(&path).unwrap();
    let err = full().down_to(&path, 0).unwrap_err();
    assert!(matches!(err, Error::NoDown { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("20220101000003 `index_tags` has no `down`"),
        "{err}"
    );
    assert_eq!(history(&path), [V1, V2, V3]);
    assert!(full().plan_down(&path, 0).unwrap().refused.is_some());
}

#[test]
fn down_refuses_a_target_that_is_no_migration_naming_applied_versions_nearby() {
    let (_dir, path) = temp_db();
    let m = no_backup(Migrator::new(&all_downs::MIGRATIONS, "main"));
    m.run(&path).unwrap();
    // A digit short: below every version, so it used to revert everything.
    let typo = 2022010200002;
    let err = m.down_to(&path, typo).unwrap_err();
    assert!(matches!(err, Error::UnknownTarget { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("applied versions nearby: 20220102000001, 20220102000002"),
        "{err}"
    );
    assert_eq!(
        history(&path),
        [20220102000001, 20220102000002, 20220102000003]
    );
    let plan = m.plan_down(&path, typo).unwrap();
    assert!(
        plan.refused
            .as_deref()
            .is_some_and(|r| r.contains("no migration has that version")),
        "{:?}",
        plan.refused
    );
    // A version between two applied ones, and one after all of them: refused too.
    for target in [20220102000002 + 5, 20990101000000] {
        let err = m.down_to(&path, target).unwrap_err();
        assert!(matches!(err, Error::UnknownTarget { .. }), "{err}");
    }
    // An applied version, and 0 (everything), are targets.
    m.down_to(&path, 20220102000002).unwrap();
    assert_eq!(history(&path), [20220102000001, 20220102000002]);
    m.down_to(&path, 0).unwrap();
    assert!(history(&path).is_empty());
}

#[test]
fn down_that_would_drop_tables_holding_rows_needs_confirmation() {
    let (dir, path) = temp_db();
    let policy = BackupPolicy {
        dir: Some(dir.path().join("bk")),
        keep: 5,
    };
    let m = Migrator::new(&all_downs::MIGRATIONS, "main").backup(Some(policy));
    m.run(&path).unwrap();
    // A table no migration made (an engine's bookkeeping, say): no `down` drops it.
    open(&path)
        .execute_batch(
            "INSERT INTO a (id, v) VALUES (1, 'x'), (2, 'y'); \
             CREATE TABLE made_at_run_time (x); INSERT INTO made_at_run_time VALUES (1);",
        )
        .unwrap();
    let plan = m.plan_down(&path, 0).unwrap();
    assert_eq!(
        plan.drops,
        [strata::DroppedTable {
            table: "a".into(),
            rows: 2
        }]
    );
    assert!(plan.refused.is_some());
    let err = m.down_to(&path, 0).unwrap_err();
    assert!(matches!(err, Error::DataLoss { .. }), "{err}");
    assert!(
        err.to_string().contains("table `a` holding 2 row(s)") && err.to_string().contains("--yes"),
        "{err}"
    );
    assert_eq!(
        history(&path),
        [20220102000001, 20220102000002, 20220102000003],
        "refused before reverting anything"
    );
    assert!(!dir.path().join("bk").exists(), "nor backing up");
    // Dropping a column and an index keeps the table: no confirmation needed.
    let plan = m.plan_down(&path, 20220102000001).unwrap();
    assert!(plan.drops.is_empty() && plan.refused.is_none(), "{plan:?}");
    m.down_to(&path, 20220102000001).unwrap();
    // Confirmed: reverted, after a backup holding the rows.
    let report = m.allow_data_loss(true).down_to(&path, 0).unwrap();
    assert!(history(&path).is_empty());
    assert!(!has_table(&path, "a"));
    assert_eq!(crate::util::count(&report.backup.unwrap(), "a"), 2);
}

#[test]
fn up_to_a_target_version() {
    let (_dir, path) = temp_db();
    let report = full().target(Some(V2)).run(&path).unwrap();
    assert_eq!(report.version, Some(V2));
    assert_eq!(history(&path), [V1, V2]);
    assert_eq!(full().status(&path).unwrap().pending(), 1);
}

#[test]
fn repair_accepts_a_reviewed_checksum_once() {
    let (_dir, path) = temp_db();
    full().run(&path).unwrap();
    open(&path)
        .execute(
            "UPDATE strata_migrations SET checksum = 'old' WHERE version = ?1",
            [V2],
        )
        .unwrap();
    assert!(matches!(
        full().run(&path).unwrap_err(),
        Error::ChecksumMismatch { .. }
    ));
    let repair = full().repair(&path, V2, "bob").unwrap();
    assert_eq!(repair.old_checksum, "old");
    assert_eq!(full().status(&path).unwrap().problems(), 0);
    full().run(&path).unwrap();
    let detail: String = open(&path)
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'repaired'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(detail.contains("in place of old by bob"), "{detail}");
    let err = full().repair(&path, V2, "bob").unwrap_err();
    assert!(matches!(err, Error::NothingToRepair { .. }), "{err}");
}

#[test]
fn verify_names_pending_problems_and_drift() {
    let (_dir, path) = temp_db();
    base().run(&path).unwrap();
    let v = full().verify(&path).unwrap();
    assert_eq!(v.pending.len(), 2);
    assert!(v.differences.is_empty());
    full().run(&path).unwrap();
    assert!(full().verify(&path).unwrap().is_clean());
    // Out-of-band changes: an extra column, a missing index, an extra table.
    open(&path)
        .execute_batch(
            "ALTER TABLE items ADD COLUMN note TEXT; DROP INDEX tags_by_tag; CREATE TABLE scratch (x);",
        )
        .unwrap();
    let findings = full().verify(&path).unwrap().findings();
    assert_eq!(
        findings,
        [
            "drift: table `items`: unexpected column `note`",
            "drift: unexpected table `scratch`",
            "drift: missing index `tags_by_tag`",
        ]
    );
    let err = full().startup(&path, Mode::Verify).unwrap_err();
    assert!(
        matches!(err, Error::Verify { .. }) && err.to_string().contains("scratch"),
        "{err}"
    );
}

#[test]
fn plan_status_and_history_change_nothing() {
    let (_dir, path) = temp_db();
    let plan = full().plan(&path).unwrap();
    assert_eq!(plan.migrations.len(), 3);
    assert!(plan.backup_dir.is_none(), "a new database is not backed up");
    assert!(!path.exists());
    full().target(Some(V1)).run(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let plan = Migrator::new(&ops::MIGRATIONS, "main").plan(&path).unwrap();
    assert_eq!(
        plan.migrations
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>(),
        [V2, V3]
    );
    assert!(plan.backup_dir.is_some());
    let history = full().history(&path).unwrap();
    assert_eq!(history.applied.len(), 1);
    assert_eq!(history.events.len(), 2);
    assert!(!full().dump(&path).unwrap().is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

fn fleet_of(dir: &Path, n: usize) -> Fleet<'static> {
    let mut fleet = Fleet::new(&ops::MIGRATIONS).options(strata::Options {
        backup: None,
        ..Default::default()
    });
    for i in 0..n {
        fleet = fleet.database("main", dir.join(format!("shard-{i}.db")));
    }
    fleet
}

#[test]
fn fleet_migrates_every_database_in_unison() {
    let dir = tempfile::tempdir().unwrap();
    let report = fleet_of(dir.path(), 6).run(Mode::Auto).unwrap();
    assert!(report.databases.iter().all(|d| d.outcome == Outcome::Done));
    for d in &report.databases {
        assert_eq!(history(&d.path), [V1, V2, V3]);
    }
    let status = fleet_of(dir.path(), 6).status().unwrap();
    assert!(
        status
            .iter()
            .all(|s| !s.lagging && s.status.version == Some(V3))
    );
}

#[test]
fn fleet_stops_cleanly_when_one_database_fails() {
    for parallelism in [1, 4] {
        let dir = tempfile::tempdir().unwrap();
        let fleet = fleet_of(dir.path(), 6).parallelism(parallelism);
        // Shard 2 already has a `tags` table: creating it fails there.
        let bad = dir.path().join("shard-2.db");
        base().run(&bad).unwrap();
        open(&bad).execute_batch("CREATE TABLE tags (x)").unwrap();
        let err = fleet.run(Mode::Auto).unwrap_err();
        assert_eq!(err.database, bad);
        let msg = err.to_string();
        assert!(
            msg.contains("shard-2.db")
                && msg.contains("create_tags")
                && msg.contains("already exists"),
            "{msg}"
        );
        for d in &err.report.databases {
            let h = if d.path.exists() {
                history(&d.path)
            } else {
                Vec::new()
            };
            // Every database holds a prefix of the migrations, never half of one.
            assert!([V1, V2, V3].starts_with(&h), "{}: {h:?}", d.path.display());
            match d.outcome {
                Outcome::Failed => assert_eq!(d.path, bad),
                Outcome::Done => assert_eq!(h, [V1, V2, V3]),
                Outcome::Stopped | Outcome::NotStarted => {}
            }
        }
        if parallelism == 1 {
            let outcomes: Vec<Outcome> = err.report.databases.iter().map(|d| d.outcome).collect();
            use Outcome::*;
            assert_eq!(
                outcomes,
                [Done, Done, Failed, NotStarted, NotStarted, NotStarted]
            );
        }
        let status = fleet.status().unwrap();
        let newest = status.iter().filter_map(|s| s.status.version).max();
        for s in &status {
            assert_eq!(
                s.lagging,
                s.status.version < newest,
                "{}",
                s.status.path.display()
            );
        }
        if parallelism == 1 {
            assert!(
                status[2].lagging,
                "the failed database lags behind its role"
            );
        }
        assert_eq!(
            status[2]
                .status
                .migrations
                .iter()
                .filter(|m| m.state == MigrationState::Pending)
                .count(),
            2
        );
    }
}

/// A fleet asks every database before reverting any: a refusal on the last one (rows its
/// revert would drop) used to come after the others had been reverted, leaving the fleet at
/// mixed versions.
#[test]
fn fleet_down_refused_by_one_database_reverts_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::new(&all_downs::MIGRATIONS).options(strata::Options {
        backup: None,
        ..Default::default()
    });
    for i in 0..4 {
        fleet = fleet.database("main", dir.path().join(format!("shard-{i}.db")));
    }
    fleet.run(Mode::Auto).unwrap();
    let last = dir.path().join("shard-3.db");
    open(&last)
        .execute_batch("INSERT INTO a (id, v) VALUES (1, 'kept')")
        .unwrap();
    let err = fleet.down_to(0).unwrap_err();
    assert_eq!(err.database, last);
    assert!(matches!(*err.error, Error::DataLoss { .. }), "{err}");
    for i in 0..4 {
        assert_eq!(
            history(&dir.path().join(format!("shard-{i}.db"))),
            [20220102000001, 20220102000002, 20220102000003],
            "shard {i} was reverted before the refusal"
        );
    }
    assert!(
        err.report
            .databases
            .iter()
            .all(|d| d.path == last || d.outcome == Outcome::NotStarted)
    );
}

/// A review shows each pending migration as written (its file, with the attribute's line), its
/// class and schema change, and the last rehearsal; an approval after an outdated review is
/// refused, and the audit log names the checksum and the review approved.
#[test]
fn a_review_shows_the_pending_migrations_and_an_outdated_one_cannot_approve() {
    let (_dir, path) = temp_db();
    let m = Migrator::new(&strata_tests::probe::MIGRATIONS, "main")
        .backup(None)
        .require_approval(true);
    let before = m.review(&path).unwrap();
    assert_eq!(before.migrations.len(), 4);
    let split = &before.migrations[2];
    assert_eq!(split.name, "split_names");
    let attribute = split.source.lines().nth(split.line as usize - 1).unwrap();
    assert!(
        attribute.starts_with("#[migration(20240103000000"),
        "{attribute}"
    );
    assert!(split.file.ends_with("m20240103000000_split_names.rs"));
    assert_eq!(split.class, strata::class::Class::Contract);
    let changes: Vec<String> = split.changes.iter().map(ToString::to_string).collect();
    assert!(
        changes.contains(&"drops column people.full_name (TEXT NOT NULL)".to_string()),
        "{changes:?}"
    );
    assert!(before.rehearsal.is_none());
    // A rehearsal is evidence: the review changes, and shows it per migration.
    m.rehearse(&path).unwrap();
    let after = m.review(&path).unwrap();
    assert_ne!(after.digest, before.digest);
    let evidence = after.rehearsal.as_ref().unwrap();
    assert!(evidence.current && evidence.passed, "{evidence:?}");
    assert!(evidence.copy.contains("copy of the database"));
    assert!(after.migrations.iter().all(|x| x.rehearsed.is_some()));
    // Approving after the review from before the rehearsal is refused; after the current one
    // it is recorded with the checksum and the review.
    let stale = m
        .approve_reviewed(&path, "ada", Some(&before.digest))
        .unwrap_err();
    assert!(matches!(stale, Error::ReviewChanged { .. }), "{stale}");
    assert!(
        m.status(&path)
            .unwrap()
            .migrations
            .iter()
            .all(|s| !s.approved)
    );
    let approved = m
        .approve_reviewed(&path, "ada", Some(&after.digest))
        .unwrap();
    assert_eq!(approved.len(), 4);
    let detail: String = open(&path)
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'approved' AND version = 20240103000000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        detail,
        format!(
            "approved by ada; checksum {}; review {} (read by the approver)",
            split.checksum, after.digest
        )
    );
}

/// An approval covers the code it names: a migration changed after it was approved (its
/// checksum differs) waits for a new approval.
#[test]
fn an_approval_covers_the_checksum_it_names() {
    let (_dir, path) = temp_db();
    let m = Migrator::new(&strata_tests::probe::MIGRATIONS, "main")
        .backup(None)
        .require_approval(true);
    m.approve(&path, "alice").unwrap();
    // As if the code approved had been another: the recorded checksum no longer matches.
    open(&path)
        .execute(
            "UPDATE strata_events SET detail = 'approved by alice; checksum \
             00000000000000000000000000000000000000000000000000000000000000ff' \
             WHERE kind = 'approved' AND version = 20240103000000",
            [],
        )
        .unwrap();
    let status = m.status(&path).unwrap();
    let split = status
        .migrations
        .iter()
        .find(|s| s.version == 20240103000000)
        .unwrap();
    assert!(!split.approved);
    let err = m.startup(&path, Mode::Checked).unwrap_err();
    assert!(matches!(err, Error::ApprovalRequired { .. }), "{err}");
    m.approve(&path, "bob").unwrap();
    assert_eq!(m.startup(&path, Mode::Checked).unwrap().applied.len(), 4);
}
