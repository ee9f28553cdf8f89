//! Authoring: scaffolding a migration from the previous one, rehearsing on a copy, adopting an
//! existing database with a baseline.

use std::path::Path;

use chrono::TimeZone;
use strata::authoring::new_migration;
use strata::{Error, Migrator, RehearsalState, Result, SchemaSnapshot, Tx, migration};

use crate::util::{events, history, open, temp_db};

const NOTES_V1: &str = r#"use strata::{Result, Tx, migration};
use uuid::Uuid;

strata::schema! {
    /// Notes.
    table notes {
        id: Uuid primary key,
        content: String, // "}" in a comment
    }
}

#[migration(20240226153100, role = "notes")]
fn create_notes(tx: &mut Tx) -> Result<()> {
    tx.create_table(notes::Table)
}
"#;

const CONTROL_V1: &str = r#"use strata::{Result, Tx, migration};

strata::schema! {
    table accounts {
        id: i64 primary key,
    }
}

#[migration(20240226153000, role = "control")]
fn create_accounts(tx: &mut Tx) -> Result<()> {
    tx.create_table(accounts::Table)
}
"#;

fn migrations_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m20240226153000_create_accounts.rs"),
        CONTROL_V1,
    )
    .unwrap();
    std::fs::write(dir.path().join("m20240226153100_create_notes.rs"), NOTES_V1).unwrap();
    std::fs::write(
        dir.path().join("lib.rs"),
        "strata::migrations!();\n\npub mod m20240226153000_create_accounts;\npub mod m20240226153100_create_notes;\n\npub const X: i32 = 1;\n",
    )
    .unwrap();
    dir
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

#[test]
fn new_copies_the_previous_schema_of_its_role_and_registers_itself() {
    let dir = migrations_dir();
    let made = new_migration(
        dir.path(),
        "add_titles",
        Some("notes"),
        at(2024, 3, 1, 12, 0, 0),
    )
    .unwrap();
    assert_eq!(made.version, 20240301120000);
    assert_eq!(
        made.copied_from.as_deref(),
        Some("m20240226153100_create_notes")
    );
    let text = std::fs::read_to_string(&made.path).unwrap();
    assert!(text.contains("use uuid::Uuid;"), "{text}");
    assert!(
        text.contains("use super::m20240226153100_create_notes as prev;"),
        "{text}"
    );
    assert!(
        text.contains("content: String, // \"}\" in a comment"),
        "{text}"
    );
    assert!(
        text.contains("#[migration(20240301120000, role = \"notes\")]\nfn add_titles(tx: &mut Tx)"),
        "{text}"
    );
    assert!(
        !text.contains("accounts"),
        "the other role's schema is not copied"
    );
    let lib = std::fs::read_to_string(dir.path().join("lib.rs")).unwrap();
    assert!(
        lib.contains(
            "pub mod m20240226153100_create_notes;\n/// Add titles.\n\
             pub mod m20240301120000_add_titles;\n\npub const X"
        ),
        "{lib}"
    );
}

#[test]
fn two_in_one_second_get_distinct_versions() {
    let dir = migrations_dir();
    let now = at(2024, 3, 1, 12, 0, 0);
    let a = new_migration(dir.path(), "first", Some("notes"), now).unwrap();
    let b = new_migration(dir.path(), "second", Some("notes"), now).unwrap();
    assert_eq!((a.version, b.version), (20240301120000, 20240301120001));
    // The second copies the first's schema: the newest of its role.
    assert_eq!(b.copied_from.as_deref(), Some("m20240301120000_first"));
    // A clock behind the newest migration still yields a newer version.
    let c = new_migration(
        dir.path(),
        "third",
        Some("control"),
        at(2020, 1, 1, 0, 0, 0),
    )
    .unwrap();
    assert_eq!(c.version, 20240301120002);
}

#[test]
fn bad_names_and_unclear_roles_are_refused() {
    let dir = migrations_dir();
    for name in ["AddTitles", "type", "1st", "add-titles", ""] {
        let err =
            new_migration(dir.path(), name, Some("notes"), at(2024, 3, 1, 0, 0, 0)).unwrap_err();
        assert!(
            err.to_string().contains("cannot name a migration"),
            "{name}: {err}"
        );
    }
    let err = new_migration(dir.path(), "x", None, at(2024, 3, 1, 0, 0, 0)).unwrap_err();
    assert!(
        err.to_string().contains("several roles (control, notes)"),
        "{err}"
    );
    let err = new_migration(
        Path::new("/nonexistent/dir"),
        "x",
        None,
        at(2024, 3, 1, 0, 0, 0),
    )
    .unwrap_err();
    assert!(matches!(err, Error::MissingDirectory(_)), "{err}");
}

mod rehearsed {
    use super::*;

    strata::migrations!();

    pub mod base {
        use super::*;

        strata::migrations!();

        #[migration(20220301000001, schema = none)]
        fn create_items(tx: &mut Tx) -> Result<()> {
            tx.execute_batch(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
                 INSERT INTO items (n) VALUES (1), (2), (3);",
            )
        }
    }

    #[migration(20220301000002, schema = none)]
    fn double(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("UPDATE items SET n = n * 2")
    }
}

mod broken {
    use super::*;

    strata::migrations!();

    pub mod base {
        use super::*;

        strata::migrations!();

        #[migration(20220301000005, schema = none)]
        fn create_items_too(tx: &mut Tx) -> Result<()> {
            tx.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        }
    }

    #[migration(20220301000006, schema = none)]
    fn breaks(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("UPDATE no_such_table SET x = 1")
    }
}

#[test]
fn rehearsal_applies_to_a_copy_and_leaves_the_database_alone() {
    let (_dir, path) = temp_db();
    Migrator::new(&rehearsed::base::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    let full = Migrator::new(&rehearsed::MIGRATIONS, "main").backup(None);
    assert!(matches!(
        full.rehearsal_state(&path).unwrap(),
        RehearsalState::NotRehearsed
    ));
    let before = std::fs::read(&path).unwrap();
    let rehearsal = full.rehearse(&path).unwrap();
    assert!(rehearsal.passed(), "{rehearsal:?}");
    let double = rehearsal
        .applied
        .iter()
        .find(|a| a.name == "double")
        .unwrap();
    assert_eq!(double.rows_changed, 3);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the real database is untouched"
    );
    assert_eq!(history(&path), [20220301000001]);
    assert!(matches!(
        full.rehearsal_state(&path).unwrap(),
        RehearsalState::Passed { .. }
    ));
}

#[test]
fn a_failing_rehearsal_is_reported() {
    let (_dir, path) = temp_db();
    let broken = Migrator::new(&broken::MIGRATIONS, "main").backup(None);
    Migrator::new(&broken::base::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    let rehearsal = broken.rehearse(&path).unwrap();
    assert!(!rehearsal.passed());
    assert!(
        rehearsal
            .error
            .as_deref()
            .unwrap_or("")
            .contains("no such table: no_such_table"),
        "{rehearsal:?}"
    );
    match broken.rehearsal_state(&path).unwrap() {
        RehearsalState::Failed { reason, .. } => assert!(reason.contains("breaks"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(history(&path), [20220301000005]);
}

mod adopted {
    use super::*;

    strata::migrations!();

    pub mod v1 {
        use super::*;

        strata::schema! {
            table people {
                id: i64 primary key,
                name: String as "VARCHAR(100)",
                born: Option<i64>,
                created: String = sql("CURRENT_TIMESTAMP"),
                index people_by_name (name),
            }
        }

        pub static MIGRATIONS_V1: strata::Source = strata::Source::__new(module_path!());

        /// Adopts the existing database.
        #[migration(20220401000001, baseline)]
        fn baseline(tx: &mut Tx) -> Result<()> {
            tx.create_table(people::Table)
        }
    }

    pub mod v2 {
        use super::*;

        #[migration(20220401000002, schema = none)]
        fn add_email(tx: &mut Tx) -> Result<()> {
            tx.execute_batch("ALTER TABLE people ADD COLUMN email TEXT")
        }
    }
}

const EXISTING: &str = "CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    born INTEGER,
    created TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP)
);
CREATE INDEX people_by_name ON people (name);
INSERT INTO people (name, born) VALUES ('Ada', 1815);";

#[test]
fn a_baseline_adopts_a_matching_database_without_changing_it() {
    let (_dir, path) = temp_db();
    open(&path).execute_batch(EXISTING).unwrap();
    let schema_before = SchemaSnapshot::read(&open(&path)).unwrap();
    let status = Migrator::new(&adopted::MIGRATIONS, "main")
        .status(&path)
        .unwrap();
    assert_eq!(
        status.pending(),
        2,
        "an adoptable database shows everything pending"
    );
    let report = Migrator::new(&adopted::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    assert_eq!(
        report
            .applied
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["baseline", "add_email"]
    );
    assert_eq!(history(&path), [20220401000001, 20220401000002]);
    assert!(events(&path).iter().any(|e| e.0 == "baselined"));
    assert_eq!(
        crate::util::count(&path, "people"),
        1,
        "the data is untouched"
    );
    let after = SchemaSnapshot::read(&open(&path)).unwrap();
    let added: Vec<String> = after
        .diff(&schema_before)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        added,
        ["table `people`: unexpected column `email`"],
        "only v2 changed the schema"
    );
    assert!(
        Migrator::new(&adopted::MIGRATIONS, "main")
            .verify(&path)
            .unwrap()
            .is_clean()
    );
}

#[test]
fn a_baseline_refuses_a_database_that_differs() {
    let (_dir, path) = temp_db();
    open(&path)
        .execute_batch("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Migrator::new(&adopted::MIGRATIONS, "main")
        .run(&path)
        .unwrap_err();
    assert!(matches!(err, Error::BaselineMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("column `name` has type TEXT, expected VARCHAR(100)"),
        "{msg}"
    );
    assert!(
        msg.contains("missing column `born`") && msg.contains("strata introspect"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_baseline_creates_the_tables_of_a_new_database() {
    let (_dir, path) = temp_db();
    Migrator::new(&adopted::v1::MIGRATIONS_V1, "main")
        .run(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(crate::util::has_table(&path, "people"));
    assert!(!events(&path).iter().any(|e| e.0 == "baselined"));
}

#[test]
fn introspect_prints_what_the_baseline_needs() {
    let (_dir, path) = temp_db();
    open(&path).execute_batch(EXISTING).unwrap();
    let code = strata::authoring::introspect(&path, &[], "main", 20220401000001).unwrap();
    for part in [
        "table people {",
        "id: i64 primary key,",
        "name: String as \"VARCHAR(100)\",",
        "born: Option<i64>,",
        "created: String = sql(\"CURRENT_TIMESTAMP\"),",
        "index people_by_name (name),",
        "#[migration(20220401000001, role = \"main\", baseline)]",
        "tx.create_table(people::Table)?;",
    ] {
        assert!(code.contains(part), "{part:?} missing from:\n{code}");
    }
    let err = strata::authoring::introspect(&path, &["nope".into()], "main", 1).unwrap_err();
    assert!(
        err.to_string().contains("no table `nope` (tables: people)"),
        "{err}"
    );
}

/// A previous migration that imports `::strata::…` (as Notely's `place_accounts` does, beside a
/// local `mod strata` shim) is not copied into the new one, which imports `strata::…` itself:
/// the same names twice would not compile.
#[test]
fn new_does_not_import_strata_twice() {
    let dir = migrations_dir();
    std::fs::write(
        dir.path().join("m20240226153000_create_accounts.rs"),
        CONTROL_V1.replace("use strata::{", "use ::strata::{"),
    )
    .unwrap();
    let made = new_migration(
        dir.path(),
        "add_names",
        Some("control"),
        at(2024, 3, 1, 12, 0, 0),
    )
    .unwrap();
    let text = std::fs::read_to_string(&made.path).unwrap();
    let imports = text
        .lines()
        .filter(|l| l.contains("strata::{Result, Tx, migration}"))
        .count();
    assert_eq!(imports, 1, "{text}");
}
