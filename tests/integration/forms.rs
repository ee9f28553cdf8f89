//! Every form SQLite's schema can hold, declared with `schema!` and created by hand-written SQL
//! spelled differently (case, spacing, quoting): the harness finds them equal, and finds the
//! one change that matters when there is one. `extends` carries unchanged tables over.

use strata::testing::Harness;
use strata::{Result, Tx, migration};

mod every_form {
    use super::*;

    strata::migrations!();

    pub mod m1 {
        use super::*;

        /// The declaration, expanded by `schema!` and kept as text for `strata_syntax`.
        macro_rules! declared {
            ($($tokens:tt)*) => {
                strata::schema! { $($tokens)* }
                pub const DECLARATION: &str = stringify!($($tokens)*);
            };
        }

        declared! {
            /// Hosts, keyed by an autoincrementing rowid.
            table hosts {
                id: i64 primary key autoincrement,
                name: String collate nocase check("length(name) > 0"),
                region: String = "eu",
                seen_at: i64 = sql("strftime('%s', 'now')"),
                retired_at: Option<i64> = null,
                cores: i64 = 1,
                threads: Option<i64> generated("cores * 2") stored,
                label: Option<String> generated("upper(name)"),
                note: Option<strata::Value>,
                unique (region, name),
                check("cores > 0"),
                index hosts_by_seen (seen_at desc, name collate nocase),
                unique index live_host_names (expr("lower(name)")) where("retired_at IS NULL"),
            }

            table racks {
                region: String,
                code: String as "VARCHAR(16)",
                host: Option<i64> references hosts(id) on delete set null on update cascade,
                primary key (region, code),
            } without rowid

            table moves {
                id: i64 primary key,
                region: String,
                code: String,
                foreign key (region, code) references racks(region, code) on delete cascade deferrable,
            } strict

            view live_hosts as "SELECT id, name FROM hosts WHERE retired_at IS NULL";
            trigger hosts_retire_moves "AFTER UPDATE OF retired_at ON hosts WHEN new.retired_at IS NOT NULL BEGIN DELETE FROM moves WHERE region = new.region; END";
        }

        #[migration(20220501000001)]
        fn create_everything(tx: &mut Tx) -> Result<()> {
            tx.execute_batch(strata::sql!(
                "create table HOSTS (
                    ID integer primary key autoincrement,
                    Name text not null collate NOCASE check (length( name )>0),
                    region text not null default 'eu',
                    seen_at integer not null default ( strftime ('%s','now') ),
                    retired_at integer default null,
                    cores integer not null default 1,
                    threads integer generated always as (cores*2) stored,
                    label text as (upper(name)),
                    note,
                    unique(region,name),
                    check( cores > 0 )
                );
                create index hosts_by_seen on hosts(seen_at DESC, name collate nocase);
                create unique index live_host_names on hosts (lower( name )) where retired_at is null;
                create table racks (
                    region text not null, code varchar(16) not null,
                    host integer references hosts(id) on update cascade on delete set null,
                    primary key (region, code)
                ) without rowid;
                CREATE TABLE moves (
                    id INTEGER NOT NULL PRIMARY KEY, region TEXT NOT NULL, code TEXT NOT NULL,
                    FOREIGN KEY (region, code) REFERENCES racks (region, code)
                        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
                ) STRICT;
                CREATE VIEW live_hosts AS SELECT id,name FROM hosts WHERE retired_at IS NULL;
                CREATE TRIGGER hosts_retire_moves AFTER UPDATE OF retired_at ON hosts
                WHEN new.retired_at IS NOT NULL
                BEGIN DELETE FROM moves WHERE region = new.region; END;"
            ))
        }
    }

    pub mod m2 {
        use super::*;

        strata::schema! {
            extends super::m1;
            drop view live_hosts;

            table moves {
                id: i64 primary key,
                region: String,
                code: String,
                moved_at: Option<i64>,
                foreign key (region, code) references racks(region, code) on delete cascade deferrable,
            } strict
        }

        /// Adds `moves.moved_at`; drops the view.
        #[migration(20220501000002, contract)]
        fn add_moved_at(tx: &mut Tx) -> Result<()> {
            tx.execute_batch(strata::sql!(
                "ALTER TABLE moves ADD COLUMN moved_at INTEGER; DROP VIEW live_hosts;"
            ))
        }
    }
}

#[test]
fn every_form_is_declared_and_matches_sql_written_differently() {
    let checked = Harness::new(&every_form::MIGRATIONS)
        .check()
        .unwrap_or_else(|e| panic!("{}", e.join("\n")));
    assert_eq!(checked.applied, 2);
    // Typed constants carry every form.
    let name = every_form::m1::hosts::NAME.def();
    assert_eq!(name.collate, Some("nocase"));
    assert_eq!(name.check, Some("length(name) > 0"));
    assert!(every_form::m1::hosts::ID.def().autoincrement);
    let live = every_form::m1::hosts::LIVE_HOST_NAMES.def();
    assert_eq!(live.predicate, Some("retired_at IS NULL"));
    assert!(live.terms[0].expression);
    assert!(<every_form::m1::racks::Table as strata::Table>::DEF.without_rowid);
    assert_eq!(every_form::m1::VIEW_LIVE_HOSTS.name, "live_hosts");
}

#[test]
fn the_compile_time_check_and_the_runtime_create_the_same_sql() {
    // `schema!` has SQLite check `strata_syntax`'s DDL at compile time; the runner executes
    // the DDL of the generated definitions. Same declaration, same statements.
    let parsed = strata_syntax::parse_strict(every_form::m1::DECLARATION.parse().unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.schema.ddl(), every_form::m1::SCHEMA.ddl());
}

#[test]
fn extends_carries_unchanged_tables_with_their_types() {
    use every_form::m2;
    // Inherited: typed modules for tables this migration does not repeat.
    let row = m2::racks::Row {
        region: "eu".into(),
        code: "r1".into(),
        host: None,
    };
    assert_eq!(row.code, "r1");
    assert_eq!(m2::hosts::NAME.def().collate, Some("nocase"));
    let names: Vec<&str> = m2::SCHEMA.tables().iter().map(|t| t.name).collect();
    assert_eq!(names, ["hosts", "racks", "moves"]);
    assert!(m2::SCHEMA.views().is_empty());
    assert_eq!(m2::SCHEMA.triggers().len(), 1);
    assert!(m2::moves::MOVED_AT.def().nullable);
}

mod wrong_predicate {
    use super::*;

    strata::migrations!();

    pub mod m1 {
        use super::*;

        strata::schema! {
            table jobs {
                id: i64 primary key,
                done_at: Option<i64>,
                index open_jobs (id) where("done_at IS NULL"),
            }
        }

        #[migration(20220502000001)]
        fn create_jobs(tx: &mut Tx) -> Result<()> {
            tx.execute_batch(strata::sql!(
                "CREATE TABLE jobs (id INTEGER PRIMARY KEY NOT NULL, done_at INTEGER);
                 CREATE INDEX open_jobs ON jobs (id) WHERE done_at IS NOT NULL;"
            ))
        }
    }
}

#[test]
fn a_changed_partial_index_predicate_is_a_difference() {
    let err = Harness::new(&wrong_predicate::MIGRATIONS)
        .check()
        .unwrap_err()
        .join("\n");
    assert!(err.contains("open_jobs"), "{err}");
    assert!(
        err.contains("done_at IS NULL") || err.contains("done_at is null"),
        "{err}"
    );
}
