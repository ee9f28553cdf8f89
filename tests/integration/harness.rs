//! The test harness catches what review misses: raw SQL that disagrees with the declared
//! schema, a `down` that does not restore, test data that no longer fits, a changed dump.

use strata::testing::Harness;
use strata::{Migrator, Result, Tx, migration};

/// Rows the `add_last_name` transform updated, over all runs.
static TRANSFORMED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

mod honest {
    use super::*;

    strata::migrations!();

    pub mod m1 {
        use super::*;

        strata::schema! {
            table people {
                id: i64 primary key,
                full_name: String,
            }
        }

        #[migration(20220201000001, down = drop_people, test_data = people)]
        fn create_people(tx: &mut Tx) -> Result<()> {
            tx.create_table(people::Table)
        }

        fn drop_people(tx: &mut Tx) -> Result<()> {
            tx.drop_table("people")
        }

        fn people(tx: &mut Tx) -> Result<()> {
            tx.insert(&people::Row {
                id: 1,
                full_name: "Ada Lovelace".into(),
            })?;
            tx.insert(&people::Row {
                id: 2,
                full_name: "Plato".into(),
            })
        }
    }

    pub mod m2 {
        use super::m1 as prev;
        use super::*;

        strata::schema! {
            table people {
                id: i64 primary key,
                full_name: String,
                last_name: String = "",
            }
        }

        /// Adds `last_name` and fills it from the test data's names.
        #[migration(20220201000002)]
        fn add_last_name(tx: &mut Tx) -> Result<()> {
            tx.add_column(people::LAST_NAME)?;
            tx.select::<prev::people::Row>().for_each(|p| {
                let last = p.full_name.rsplit(' ').next().unwrap_or("").to_string();
                let n = tx
                    .update(people::Table)
                    .set(people::LAST_NAME, last)
                    .filter(people::ID.eq(p.id))
                    .execute()?;
                TRANSFORMED.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
        }
    }
}

mod lying {
    use super::*;

    strata::migrations!();

    strata::schema! {
        table things {
            id: i64 primary key,
            name: String,
        }
    }

    /// Its raw SQL forgets the `name` column its schema declares.
    #[migration(20220202000001)]
    fn create_things(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    }
}

mod leaky_down {
    use super::*;

    strata::migrations!();

    #[migration(20220203000001, schema = none, down = forgets_the_index)]
    fn create_widgets(tx: &mut Tx) -> Result<()> {
        tx.execute_batch(
            "CREATE TABLE widgets (id INTEGER PRIMARY KEY); CREATE TABLE parts (id INTEGER)",
        )
    }

    fn forgets_the_index(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("DROP TABLE widgets")
    }
}

#[test]
fn honest_migrations_pass_and_exercise_test_data() {
    let dir = tempfile::tempdir().unwrap();
    let dump = Migrator::new(&honest::MIGRATIONS, "main")
        .expected_schema(None)
        .unwrap()
        .dump();
    std::fs::write(dir.path().join("main.sql"), &dump).unwrap();
    let checked = Harness::new(&honest::MIGRATIONS)
        .schema_dir(dir.path())
        .check()
        .unwrap();
    assert_eq!(
        (checked.applied, checked.round_trips, checked.test_data),
        (2, 1, 1)
    );
    assert!(
        TRANSFORMED.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the transform ran on the first migration's test data"
    );
    assert!(
        dump.contains("\"last_name\" TEXT NOT NULL DEFAULT ''"),
        "{dump}"
    );
}

#[test]
fn a_changed_or_missing_dump_fails() {
    let dir = tempfile::tempdir().unwrap();
    let failures = Harness::new(&honest::MIGRATIONS)
        .schema_dir(dir.path())
        .check()
        .unwrap_err();
    assert!(
        failures[0].contains("main.sql is missing") && failures[0].contains("STRATA_BLESS=1"),
        "{failures:?}"
    );
    std::fs::write(
        dir.path().join("main.sql"),
        "CREATE TABLE \"people\"(\n  \"id\" INTEGER NOT NULL\n);\n",
    )
    .unwrap();
    let failures = Harness::new(&honest::MIGRATIONS)
        .schema_dir(dir.path())
        .check()
        .unwrap_err();
    assert!(
        failures[0].contains("differs from") && failures[0].contains("+   \"last_name\""),
        "{failures:?}"
    );
}

#[test]
fn raw_sql_that_disagrees_with_the_declared_schema_fails() {
    let failures = Harness::new(&lying::MIGRATIONS).check().unwrap_err();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("20220202000001 `create_things`"),
        "{failures:?}"
    );
    assert!(
        failures[0].contains("table `things`: missing column `name`"),
        "{failures:?}"
    );
}

#[test]
fn a_down_that_does_not_restore_fails() {
    let failures = Harness::new(&leaky_down::MIGRATIONS).check().unwrap_err();
    assert!(
        failures[0].contains("its down does not restore the previous schema"),
        "{failures:?}"
    );
    assert!(
        failures[0].contains("unexpected table `parts`"),
        "{failures:?}"
    );
}

/// `DEFAULT NULL`, as many SQLite histories write it: declared `= null`, checked exactly.
mod null_default {
    use super::*;

    strata::migrations!();

    pub mod m1 {
        use super::*;

        strata::schema! {
            table tags {
                id: i64 primary key,
                colour: Option<String> = null,
            }
        }

        #[migration(20220311000001)]
        fn create_tags(tx: &mut Tx) -> Result<()> {
            tx.execute_batch(strata::sql!(
                "CREATE TABLE tags (id INTEGER PRIMARY KEY NOT NULL, colour TEXT DEFAULT NULL)"
            ))
        }
    }
}

#[test]
fn a_null_default_is_declared_and_checked() {
    let checked = Harness::new(&null_default::MIGRATIONS).check().unwrap();
    assert_eq!(checked.applied, 1);
    assert_eq!(null_default::m1::tags::COLOUR.def().default, Some("NULL"));
}
