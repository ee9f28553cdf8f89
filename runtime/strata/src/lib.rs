//! Strata: schema and data migrations for SQLite, compiled into the binary and checked by the
//! compiler.
//!
//! A migration is a Rust function with `#[migration(YYYYMMDDHHMMSS)]`. Next to it, the
//! migration's module declares with [`schema!`] the tables its role's database holds after it
//! ran; the declaration yields typed column constants, a row struct per table and the DDL.
//! Migrations register themselves at link time; an application collects those of its
//! migrations crate with [`migrations!`] and applies the pending ones with a [`Migrator`].
//!
//! ```no_run
//! // In the migrations crate: src/lib.rs has `strata::migrations!();` and one module per
//! // migration, such as this one.
//! strata::migrations!();
//!
//! strata::schema! {
//!     table notes {
//!         id: uuid::Uuid primary key,
//!         content: String,
//!     }
//! }
//!
//! /// Notes, as Notely first stored them.
//! #[strata::migration(20240226153000, role = "notes")]
//! fn create_notes(tx: &mut strata::Tx) -> strata::Result<()> {
//!     tx.create_table(notes::Table)
//! }
//!
//! // In the application, at startup:
//! fn main() -> strata::Result<()> {
//!     let report = strata::Migrator::new(&MIGRATIONS, "notes").run("notes.db".as_ref())?;
//!     for applied in &report.applied {
//!         println!("applied {} {}", applied.version, applied.name);
//!     }
//!     Ok(())
//! }
//! ```

mod analysis;
pub mod authoring;
mod backup;
mod checksum;
pub mod class;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod fleet;
mod history;
pub mod import;
pub mod inspect;
pub mod instances;
mod lease;
mod migration;
mod migrator;
mod options;
mod report;
pub mod review;
mod runner;
pub mod schema;
pub mod sqltext;
pub mod store;
pub mod testing;
mod tx;

pub use backup::{BackupFile, BackupPolicy};
pub use checksum::Checksum;
pub use error::{DroppedTable, Error, MigrationId, Result};
pub use fleet::{
    Database, DatabaseReport, DatabaseStatus, Fleet, FleetError, FleetReport, Outcome,
};
pub use inspect::{Difference, SchemaSnapshot};
pub use migration::{DEFAULT_ROLE, ForeignKeys, Migration, MigrationFn, Source};
pub use migrator::Migrator;
pub use options::{Mode, Options};
pub use report::{
    Applied, History, MigrationState, MigrationStatus, Plan, PlannedMigration, Rehearsal,
    RehearsalState, Rehearsed, Repair, Report, Status, Verification,
};
/// Any SQLite value: the Rust type of an untyped column (`a: Option<strata::Value>`).
pub use rusqlite::types::Value;
pub use schema::{
    Column, ColumnDef, Filter, ForeignKeyDef, GeneratedDef, Index, IndexDef, IndexTermDef,
    OnDelete, Record, Schema, SqlType, Table, TableDef, TriggerDef, ViewDef,
};
/// Registers a function as a migration.
///
/// ```
/// use strata::{Result, Tx, migration};
///
/// strata::schema! {
///     table notes {
///         id: i64 primary key,
///         content: String,
///     }
/// }
///
/// /// Notes, as Notely first stored them. (The doc comment is the description.)
/// #[migration(20240226153000, role = "notes", down = drop_notes)]
/// fn create_notes(tx: &mut Tx) -> Result<()> {
///     tx.create_table(notes::Table)
/// }
///
/// fn drop_notes(tx: &mut Tx) -> Result<()> {
///     tx.drop_table("notes")
/// }
/// # fn main() {}
/// ```
///
/// The first argument is the version, a UTC timestamp `YYYYMMDDHHMMSS`; anything that is not
/// a real date-time fails to compile. Optional arguments:
///
/// - `role = "name"`: the kind of database it applies to (default `"main"`).
/// - `no_transaction`: run outside a transaction (`VACUUM`, `PRAGMA journal_mode`); recorded
///   after it succeeds, under a lease other processes wait for. Make it idempotent: after a
///   crash midway it runs again.
/// - `foreign_keys = off`: for table rebuilds ([`Tx::rebuild_table`]); enforcement is switched
///   off outside the transaction and `PRAGMA foreign_key_check` must find no new violation
///   before commit.
/// - `down = function`: the paired reversal, same signature.
/// - `test_data = function`: rows [`testing::Harness`] loads after applying it.
/// - `baseline`: adopts an existing database whose schema is exactly the declared one (it is then
///   recorded without running); on a new database it runs normally. See [`authoring::introspect`].
/// - `schema = PATH` / `schema = none`: the declared schema, by default `SCHEMA` from
///   [`schema!`] in the same module.
/// - `imported = "tool:version"` (`sqlx`, `refinery`, `diesel` or `goose`), written by `strata
///   import`: the peer migration it was imported from. Pending on a database whose peer history
///   records that version as applied, it is recorded without running (see [`import`]). Not part
///   of the checksum.
///
/// The name comes from the function, the description from its doc comment. A checksum of the
/// function's tokens and of its schema declaration (whitespace, comments and doc comments
/// excluded) is computed at compile time; the runner refuses to start when an applied
/// migration's code has changed. Two migrations with one version in one crate fail to compile.
#[doc(inline)]
pub use strata_macros::migration;

/// Declares the tables a migration leaves behind: typed columns, a row struct and the DDL.
///
/// ```
/// use uuid::Uuid;
///
/// strata::schema! {
///     /// Notes; times are Unix milliseconds.
///     table notes {
///         id: Uuid primary key,
///         creator: Uuid references accounts(id) on delete cascade,
///         title: Option<String>,
///         pages: i64 = 0,
///         index notes_by_creator (creator),
///     }
///     table accounts {
///         id: Uuid primary key,
///         name: String unique,
///     }
/// }
///
/// fn main() {
///     let _: strata::Column<notes::Table, Option<String>> = notes::TITLE;
///     let row = notes::Row { id: Uuid::nil(), creator: Uuid::nil(), title: None, pages: 3 };
///     assert_eq!(SCHEMA.tables().len(), 2);
///     assert!(SCHEMA.ddl()[0].starts_with("CREATE TABLE \"notes\""));
///     # let _ = row;
/// }
/// ```
///
/// For each table `t`: a module `t` with `t::Table` (a marker implementing [`Table`]), `t::Row`
/// (all columns as public fields, implementing [`Record`]), one [`Column`] constant per column
/// (`t::TITLE`) and one [`Index`] constant per index. The whole schema is `SCHEMA`.
/// Views and triggers get a `VIEW_<NAME>` / `TRIGGER_<NAME>` constant. Use `schema!` at
/// module level (one migration module each), not inside a function.
///
/// It declares everything SQLite's schema can hold:
///
/// ```
/// use uuid::Uuid;
///
/// strata::schema! {
///     table accounts { id: Uuid primary key }
///     table racks { region: String, code: String, primary key (region, code) } without rowid
///
///     table events {
///         id: i64 primary key autoincrement,           // INTEGER PRIMARY KEY AUTOINCREMENT
///         host: String collate nocase check("length(host) > 0"),
///         kind: String = "info",                       // a literal default
///         at: i64 = sql("strftime('%s', 'now')"),      // an expression default
///         deleted_at: Option<i64> = null,              // Option = nullable; DEFAULT NULL
///         price: i64, qty: i64,
///         total: Option<i64> generated("price * qty") stored,  // VIRTUAL without `stored`
///         code: String as "VARCHAR(16)",               // the SQL type, when not the Rust type's
///         region: String,
///         note: Option<strata::Value>,                 // an untyped column
///         owner: Uuid references accounts(id) on delete cascade on update set null deferrable,
///         unique (host, kind),                         // table-level constraints
///         check("at >= 0"),
///         foreign key (region, code) references racks(region, code) on delete restrict,
///         index events_by_host (host collate nocase desc, at),
///         unique index live_host (expr("lower(host)")) where("deleted_at IS NULL"),
///     }
///
///     table counters { name: String primary key, n: i64 = 0 } strict
///
///     view live_events as "SELECT id, host FROM events WHERE deleted_at IS NULL";
///     trigger count_events "AFTER INSERT ON events BEGIN UPDATE counters SET n = n + 1; END";
/// }
///
/// fn main() {
///     let conn = rusqlite::Connection::open_in_memory().unwrap();
///     for sql in SCHEMA.ddl() {
///         conn.execute_batch(&sql).unwrap();
///     }
///     assert_eq!(VIEW_LIVE_EVENTS.name, "live_events");
/// }
/// ```
///
/// A composite primary key is `primary key (a, b)` among the entries (instead of a column's
/// `primary key`); `strict` and `without rowid` follow the table's `}`, either or both.
/// Actions are `cascade`, `restrict`, `set null`, `set default` and `no action`; `deferrable`
/// is `DEFERRABLE INITIALLY DEFERRED`. Column types implement [`SqlType`]. SQLite itself
/// creates the declared schema in a scratch database at compile time, so an expression, a
/// collation or a query it rejects fails to compile, at the object; every error of a
/// declaration is reported at once.
///
/// Declare the full schema of the role in every migration: transforms read rows through the
/// previous migration's types and write through their own, so an old migration never depends
/// on today's model. Tables a migration does not change need not be repeated:
/// `extends super::m20240301090000_index_notes;` as the first line inherits every table, view
/// and trigger of that migration's declaration that this one does not declare (`drop table
/// name;` leaves one out), and still generates the typed modules for all of them. Inherited
/// column types are named in this module: import what the extended migration imports for them
/// (`strata new --inherit` copies its `use` lines).
#[doc(inline)]
pub use strata_macros::schema;

/// An SQL string literal whose syntax SQLite's own parser checked at compile time.
///
/// ```
/// let sql: &'static str = strata::sql!("CREATE INDEX notes_by_creator ON notes (creator)");
/// # let _ = sql;
/// ```
///
/// Only syntax is checked: statements may name tables that earlier migrations create.
#[doc(inline)]
pub use strata_macros::sql;
/// An SQL file's text as a `&'static str`, checked by SQLite's parser at compile time:
/// `tx.execute_batch(strata::sql_file!("m20240101000000_create_people.sql"))`. The path is
/// relative to the source file (as `include_str!`'s); editing the file rebuilds the crate, and
/// `#[migration]` puts the file's content into the migration's checksum, so editing an applied
/// SQL file is caught like editing applied code.
pub use strata_macros::sql_file;
pub use tx::{Delete, Select, Tx, Update};

/// Declares `pub static MIGRATIONS: strata::Source` holding every migration defined in the
/// calling module and its submodules. Put it in the lib.rs of the crate defining the
/// migrations; the application passes `&your_crate::MIGRATIONS` to [`Migrator::new`], and
/// naming that static is what keeps the linker from dropping the crate.
#[macro_export]
macro_rules! migrations {
    () => {
        /// The migrations defined in this crate, collected at link time.
        pub static MIGRATIONS: $crate::Source = $crate::Source::__new(::core::module_path!());
    };
}

/// Not public API: paths used by the code the macros generate.
#[doc(hidden)]
pub mod __private {
    pub use crate::migration::MigrationDef;
    pub use crate::schema::{
        ColumnDef, ForeignKeyDef, GeneratedDef, IndexDef, IndexTermDef, OnDelete, TableDef,
        TriggerDef, ViewDef,
    };
    pub use inventory;
    pub use rusqlite;

    use crate::schema::SqlType;
    use rusqlite::types::ToSql;

    /// A row field as a statement parameter (bounded by `SqlType` so that an unsupported
    /// column type is reported once, at the type).
    pub fn sql_param<T: SqlType>(value: &T) -> &dyn ToSql {
        value
    }

    /// A column of a selected row.
    pub fn column_value<T: SqlType>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T> {
        row.get(index)
    }
}
