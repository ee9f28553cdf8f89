//! Migrations run in version order, whatever the order of their definitions.

use strata::{Migrator, Result, Tx, migration};

use crate::util::{history, open, temp_db};

mod set {
    use super::*;

    strata::migrations!();

    // Defined newest first on purpose.
    #[migration(20230101000003, schema = none)]
    fn third(tx: &mut Tx) -> Result<()> {
        tx.execute("INSERT INTO log (step) VALUES ('third')", [])
            .map(drop)
    }

    #[migration(20230101000001, schema = none)]
    fn first(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE log (id INTEGER PRIMARY KEY, step TEXT NOT NULL)")
    }

    #[migration(20230101000002, schema = none)]
    fn second(tx: &mut Tx) -> Result<()> {
        tx.execute("INSERT INTO log (step) VALUES ('second')", [])
            .map(drop)
    }
}

#[test]
fn applies_in_version_order_then_nothing() {
    let (_dir, path) = temp_db();
    let migrator = Migrator::new(&set::MIGRATIONS, "main");
    let report = migrator.run(&path).unwrap();
    let applied: Vec<_> = report.applied.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(applied, ["first", "second", "third"]);
    assert!(report.created);
    assert_eq!(report.version, Some(20230101000003));
    assert_eq!(
        history(&path),
        [20230101000001, 20230101000002, 20230101000003]
    );
    let steps: Vec<String> = open(&path)
        .prepare("SELECT step FROM log ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(steps, ["second", "third"]);

    let again = migrator.run(&path).unwrap();
    assert!(again.applied.is_empty() && !again.created);
    assert_eq!(again.version, Some(20230101000003));
    let status = migrator.status(&path).unwrap();
    assert_eq!((status.pending(), status.problems()), (0, 0));
}

#[test]
fn status_of_a_missing_database_writes_nothing() {
    let (_dir, path) = temp_db();
    let status = Migrator::new(&set::MIGRATIONS, "main")
        .status(&path)
        .unwrap();
    assert!(!status.initialized);
    assert_eq!(status.pending(), 3);
    assert!(!path.exists(), "status must not create the database");
}
