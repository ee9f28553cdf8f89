//! The typed schema API and foreign-key handling around table rebuilds.

use strata::{Error, Migrator, Result, Tx, migration};
use strata_tests::probe;

use crate::util::{count, history, open, temp_db};

mod library {
    use super::*;

    strata::migrations!();

    pub mod m1 {
        use super::*;

        strata::schema! {
            table authors {
                id: i64 primary key,
                name: String unique,
                born: Option<i64>,
            }
            table books {
                id: i64 primary key,
                author: i64 references authors(id) on delete cascade,
                title: String,
                pages: i64 = 0,
                index books_by_author (author),
            }
        }

        /// Authors and books, with reference rows.
        #[migration(20230501000001)]
        fn create_library(tx: &mut Tx) -> Result<()> {
            tx.create_table(authors::Table)?;
            tx.create_table(books::Table)?;
            tx.insert(&authors::Row {
                id: 1,
                name: "Le Guin".into(),
                born: Some(1929),
            })?;
            tx.insert(&authors::Row {
                id: 2,
                name: "Anonymous".into(),
                born: None,
            })?;
            for (id, title, pages) in [(1, "The Dispossessed", 387), (2, "Lathe of Heaven", 184)] {
                tx.insert(&books::Row {
                    id,
                    author: 1,
                    title: title.into(),
                    pages,
                })?;
            }
            tx.insert(&books::Row {
                id: 3,
                author: 2,
                title: "Beowulf".into(),
                pages: 0,
            })?;
            Ok(())
        }
    }

    pub mod m2 {
        use super::*;

        pub use super::m1::{SCHEMA, authors, books};

        /// Data-only: fills in page counts and drops anonymous books, through typed columns.
        #[migration(20230501000002)]
        fn fix_pages(tx: &mut Tx) -> Result<()> {
            let unknown = tx
                .select::<books::Row>()
                .filter(books::PAGES.eq(0))
                .count()?;
            assert_eq!(unknown, 1);
            tx.update(books::Table)
                .set(books::PAGES, 182)
                .filter(books::ID.eq(3))
                .execute()?;
            let long = tx
                .select::<books::Row>()
                .filter(books::PAGES.gt(185).and(books::AUTHOR.eq(1)))
                .order_by(books::TITLE)
                .all()?;
            assert_eq!(long.len(), 1);
            let n = tx
                .delete(authors::Table)
                .filter(authors::BORN.eq(None))
                .execute()?;
            assert_eq!(n, 1);
            Ok(())
        }
    }
}

#[test]
fn typed_rows_filters_and_updates() {
    let (_dir, path) = temp_db();
    let report = Migrator::new(&library::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    assert_eq!(report.applied.len(), 2);
    // The delete of the anonymous author cascaded to its book: foreign keys are enforced.
    assert_eq!(count(&path, "books"), 2);
    let conn = open(&path);
    let tx = Tx::over(&conn);
    use library::m2::books;
    let first = tx
        .select::<books::Row>()
        .order_by(books::ID)
        .first()
        .unwrap()
        .unwrap();
    assert_eq!(first.title, "The Dispossessed");
    let ddl: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'books'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        ddl.contains("\"pages\" INTEGER NOT NULL DEFAULT 0"),
        "{ddl}"
    );
    assert!(
        ddl.contains("REFERENCES \"authors\"(\"id\") ON DELETE CASCADE"),
        "{ddl}"
    );
    let schema = library::m2::SCHEMA;
    assert_eq!(schema.tables().len(), 2);
    assert_eq!(schema.ddl().len(), 3);
}

#[test]
fn rebuild_keeps_children_and_transforms_rows() {
    let (_dir, path) = temp_db();
    Migrator::new(&probe::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    // Without `foreign_keys = off`, dropping `people` would have cascaded to `pets`.
    assert_eq!(count(&path, "pets"), 3);
    let names: Vec<(String, String)> = open(&path)
        .prepare("SELECT first_name, last_name FROM people ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        names[2],
        ("Grace Brewster".to_string(), "Hopper".to_string())
    );
    // Foreign keys still point at the rebuilt table and are enforced afterwards.
    let conn = open(&path);
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    assert!(
        conn.execute("INSERT INTO pets VALUES (99, 42, 'stray')", [])
            .is_err()
    );
    let fk_list: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_foreign_key_list('pets')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fk_list, 1);
}

mod orphaning {
    use super::*;

    strata::migrations!();

    pub mod base {
        use super::*;

        strata::migrations!();

        #[migration(20230502000001, schema = none)]
        fn create_tree(tx: &mut Tx) -> Result<()> {
            tx.execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id));
                 INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1);",
            )
        }
    }

    /// Deletes a parent with foreign keys off: the check before commit must catch the orphan.
    #[migration(20230502000002, schema = none, foreign_keys = off)]
    fn orphan_child(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("DELETE FROM parent")
    }
}

#[test]
fn new_foreign_key_violation_rolls_back() {
    let (_dir, path) = temp_db();
    let err = Migrator::new(&orphaning::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    assert!(matches!(err, Error::ForeignKeyViolation { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("`child` rowid 1 references a missing row of `parent`"),
        "{err}"
    );
    assert_eq!(count(&path, "parent"), 1);
    assert_eq!(history(&path), [20230502000001]);
}

mod careless_rebuild {
    use super::*;

    strata::migrations!();

    strata::schema! {
        table things {
            id: i64 primary key,
        }
    }

    #[migration(20230503000001)]
    fn create_things(tx: &mut Tx) -> Result<()> {
        tx.create_table(things::Table)
    }

    /// A rebuild without `foreign_keys = off` is refused before it drops anything.
    #[migration(20230503000002)]
    fn rebuild_things(tx: &mut Tx) -> Result<()> {
        tx.rebuild_table(things::Table, |_| Ok(()))
    }
}

#[test]
fn rebuild_requires_foreign_keys_off() {
    let (_dir, path) = temp_db();
    let err = Migrator::new(&careless_rebuild::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    assert!(err.to_string().contains("foreign_keys = off"), "{err}");
    assert_eq!(history(&path), [20230503000001]);
}

mod restored {
    use super::*;

    strata::migrations!();

    #[migration(20230504000001, schema = none)]
    fn create_tree(tx: &mut Tx) -> Result<()> {
        tx.execute_batch(
            "CREATE TABLE root (id INTEGER PRIMARY KEY);
             CREATE TABLE leaf (id INTEGER PRIMARY KEY, root INTEGER REFERENCES root(id));",
        )
    }

    #[migration(20230504000002, schema = none, foreign_keys = off)]
    fn harmless_without_enforcement(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("INSERT INTO root VALUES (1)")
    }

    /// Runs after the `foreign_keys = off` one: enforcement must be back.
    #[migration(20230504000003, schema = none)]
    fn orphan_insert(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("INSERT INTO leaf VALUES (1, 42)")
    }
}

#[test]
fn foreign_keys_are_enforced_again_after_a_rebuild_migration() {
    let (_dir, path) = temp_db();
    let err = Migrator::new(&restored::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    assert!(
        err.to_string().contains("FOREIGN KEY constraint failed"),
        "{err}"
    );
    assert_eq!(history(&path), [20230504000001, 20230504000002]);
}
