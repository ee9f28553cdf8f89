//! Validation before anything is applied: changed checksums, unknown and out-of-order versions,
//! the database's role.

use strata::{Error, MigrationState, Migrator, Result, Tx, migration};

use crate::util::{events, history, open, temp_db};

fn create(tx: &mut Tx, table: &str) -> Result<()> {
    tx.execute_batch(&format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY)"))
}

mod checked {
    use super::*;

    strata::migrations!();

    #[migration(20230301000001, schema = none)]
    fn create_e(tx: &mut Tx) -> Result<()> {
        create(tx, "e")
    }

    #[migration(20230301000002, schema = none)]
    fn create_f(tx: &mut Tx) -> Result<()> {
        create(tx, "f")
    }
}

/// `unknown` holds v1 and v2; `unknown::base` only v1: a binary built before v2.
mod unknown {
    use super::*;

    strata::migrations!();

    pub mod base {
        use super::*;

        strata::migrations!();

        #[migration(20230302000001, schema = none)]
        fn create_g(tx: &mut Tx) -> Result<()> {
            create(tx, "g")
        }
    }

    #[migration(20230302000002, schema = none)]
    fn create_h(tx: &mut Tx) -> Result<()> {
        create(tx, "h")
    }
}

/// `ooo::early` holds v1 and v3; `ooo` adds v2, merged later from a parallel branch.
mod ooo {
    use super::*;

    strata::migrations!();

    pub mod early {
        use super::*;

        strata::migrations!();

        #[migration(20230303000001, schema = none)]
        fn create_i(tx: &mut Tx) -> Result<()> {
            create(tx, "i")
        }

        #[migration(20230303000003, schema = none)]
        fn create_k(tx: &mut Tx) -> Result<()> {
            create(tx, "k")
        }
    }

    #[migration(20230303000002, schema = none)]
    fn create_j(tx: &mut Tx) -> Result<()> {
        create(tx, "j")
    }
}

pub mod other_role {
    use super::*;

    strata::migrations!();

    #[migration(20230304000001, role = "billing", schema = none)]
    fn create_invoices(tx: &mut Tx) -> Result<()> {
        create(tx, "invoices")
    }
}

#[test]
fn edited_migration_is_refused_with_both_checksums() {
    let (_dir, path) = temp_db();
    let migrator = Migrator::new(&checked::MIGRATIONS, "main");
    migrator.run(&path).unwrap();
    // What an edited migration looks like from the database's side: the recorded checksum
    // differs from the one compiled into the binary.
    open(&path)
        .execute(
            "UPDATE strata_migrations SET checksum = 'abc123' WHERE version = 20230301000001",
            [],
        )
        .unwrap();
    let err = migrator.run(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{msg}");
    let compiled = migrator.status(&path).unwrap().migrations[0]
        .checksum
        .clone()
        .unwrap();
    for part in [
        "20230301000001",
        "create_e",
        "abc123",
        compiled.as_str(),
        "new migration",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_eq!(events(&path).last().unwrap().0, "refused");
    let status = migrator.status(&path).unwrap();
    assert_eq!(status.migrations[0].state, MigrationState::Changed);
    assert_eq!(status.problems(), 1);
}

#[test]
fn checksums_are_stable_and_distinct() {
    let all = checked::MIGRATIONS.all().unwrap();
    assert_ne!(all[0].checksum(), all[1].checksum());
    let again = checked::MIGRATIONS.all().unwrap();
    assert_eq!(all[0].checksum(), again[0].checksum());
}

#[test]
fn unknown_applied_version_is_refused_unless_allowed_or_a_newer_expand() {
    let (_dir, path) = temp_db();
    Migrator::new(&unknown::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    let older_binary = Migrator::new(&unknown::base::MIGRATIONS, "main");
    // The newer binary's migration only adds a table (expand): the older binary serves beside
    // it, as during a rolling deploy.
    let report = older_binary.run(&path).unwrap();
    assert!(report.applied.is_empty());
    let status = older_binary.status(&path).unwrap();
    assert_eq!(status.migrations[1].state, MigrationState::Unknown);
    assert_eq!(
        status.migrations[1].class,
        Some(strata::class::Class::Expand)
    );
    // Applied before Strata recorded classes: nothing says it is safe.
    open(&path)
        .execute("UPDATE strata_migrations SET class = NULL", [])
        .unwrap();
    let err = older_binary.run(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::UnknownApplied { .. }), "{msg}");
    assert!(
        msg.contains("20230302000002 `create_h`") && msg.contains("allow_unknown"),
        "{msg}"
    );
    assert_eq!(events(&path).last().unwrap().0, "refused");
    let status = older_binary.status(&path).unwrap();
    assert_eq!(status.migrations[1].state, MigrationState::Unknown);

    let report = older_binary.allow_unknown(true).run(&path).unwrap();
    assert!(report.applied.is_empty());
}

#[test]
fn out_of_order_version_is_refused_unless_allowed() {
    let (_dir, path) = temp_db();
    Migrator::new(&ooo::early::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    let merged = Migrator::new(&ooo::MIGRATIONS, "main");
    let err = merged.run(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::OutOfOrder { .. }), "{msg}");
    assert!(
        msg.contains("20230303000002 `create_j`") && msg.contains("20230303000003"),
        "{msg}"
    );
    assert_eq!(history(&path), [20230303000001, 20230303000003]);
    assert_eq!(
        merged.status(&path).unwrap().migrations[1].state,
        MigrationState::OutOfOrder
    );

    let report = merged.allow_out_of_order(true).run(&path).unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(
        history(&path),
        [20230303000001, 20230303000002, 20230303000003]
    );
}

#[test]
fn database_of_another_role_is_refused() {
    let (_dir, path) = temp_db();
    Migrator::new(&checked::MIGRATIONS, "main")
        .run(&path)
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Migrator::new(&other_role::MIGRATIONS, "billing")
        .run(&path)
        .unwrap_err();
    assert!(matches!(err, Error::WrongRole { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is a `main` database, not a `billing` one"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing may be written"
    );
}

#[test]
fn unknown_role_names_the_known_ones() {
    let err = Migrator::new(&checked::MIGRATIONS, "nope")
        .status("x.db".as_ref())
        .unwrap_err();
    assert!(matches!(err, Error::UnknownRole { .. }), "{err}");
    assert!(err.to_string().contains("roles present: main"), "{err}");
}
