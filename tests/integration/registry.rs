//! What the binary carries: the registry collected at link time.

use strata::{Error, Source};

#[test]
fn notely_migrations_are_all_registered_in_order() {
    let all = notely_migrations::MIGRATIONS.all().unwrap();
    let listed: Vec<(i64, &str, &str)> = all
        .iter()
        .map(|m| (m.version(), m.name(), m.role()))
        .collect();
    assert_eq!(
        listed,
        [
            (20240226153000, "create_accounts", "control"),
            (20240226153100, "create_notes", "notes"),
            (20240301090000, "index_notes_by_creator", "notes"),
            (20261121100000, "place_accounts", "control"),
            (20261121100100, "create_legacy_memos", "legacy"),
            (20261129200000, "key_notes_by_account", "notes"),
            (20261129200100, "key_memos_by_account", "legacy"),
        ]
    );
    assert_eq!(
        all[0].description(),
        "Accounts, as Notely first stored them."
    );
    assert!(all.iter().all(|m| m.has_down() && m.schema().is_some()));
    assert_eq!(
        notely_migrations::MIGRATIONS.roles().unwrap(),
        ["control", "legacy", "notes"]
    );
}

#[test]
fn sources_do_not_leak_into_each_other() {
    let probe = strata_tests::probe::MIGRATIONS.all().unwrap();
    assert_eq!(probe.len(), 4);
    assert!(
        probe
            .iter()
            .all(|m| m.module().starts_with("strata_tests::probe"))
    );
}

#[test]
fn a_source_without_migrations_is_an_error() {
    static EMPTY: Source = Source::__new("integration::no_such_module");
    let err = EMPTY.all().unwrap_err();
    assert!(matches!(err, Error::EmptyRegistry { .. }), "{err}");
}

/// Two databases (roles) may each have a migration of the same version, as histories ported
/// from several databases do; each runs on its own database.
mod shared_version {
    strata::migrations!();

    pub mod users {
        use strata::{Result, Tx, migration};

        #[migration(20250723000000, role = "users", schema = none)]
        fn create_users(tx: &mut Tx) -> Result<()> {
            tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        }
    }

    pub mod audit {
        use strata::{Result, Tx, migration};

        #[migration(20250723000000, role = "audit", schema = none)]
        fn create_audit(tx: &mut Tx) -> Result<()> {
            tx.execute_batch("CREATE TABLE audit (at TEXT NOT NULL)")
        }
    }
}

#[test]
fn roles_may_share_a_version() {
    let all = shared_version::MIGRATIONS.all().unwrap();
    assert_eq!(all.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    for role in ["users", "audit"] {
        let path = dir.path().join(format!("{role}.db"));
        let report = strata::Migrator::new(&shared_version::MIGRATIONS, role)
            .run(&path)
            .unwrap();
        assert_eq!(report.applied.len(), 1, "{role}");
        assert_eq!(report.applied[0].version, 20250723000000);
    }
}

/// `sql_file!` brings an SQL file into a migration: checked at compile time, applied as written.
#[test]
fn a_migration_applies_its_sql_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("files.db");
    strata::Migrator::new(&strata_tests::sqlfile::MIGRATIONS, "files")
        .run(&path)
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let index: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'things_by_label'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(index.contains("things (label)"), "{index}");
    let text = strata::sql_file!("../sqlfile/create_things.sql");
    assert!(text.starts_with("-- Things, as an SQL file"));
}
