//! Strata: schema and data migrations for SQLite, compiled into the binary and checked by the
//! compiler.
//!
//! A migration is a Rust function with `#[migration(YYYYMMDDHHMMSS)]`. Next to it, the
//! migration's module declares with [`schema!`] the tables its role's database holds after it
//! ran; the declaration yields typed column constants, a row struct per table and the DDL.
//! Migrations register themselves at link time; an application collects those of its
//! migrations crate with [`migrations!`] and applies the pending ones with a [`Migrator`].
//!
//! ```ignore
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
//! ```

mod checksum;
mod error;
mod migration;
mod migrator;
pub mod schema;
pub mod store;
mod tx;

pub use checksum::Checksum;
pub use error::{Error, MigrationId, Result};
pub use migration::{DEFAULT_ROLE, ForeignKeys, Migration, MigrationFn, Source};
pub use migrator::{Applied, MigrationState, MigrationStatus, Migrator, Report, Status};
pub use schema::{Column, Filter, Index, Record, Schema, SqlType, Table};
pub use strata_macros::{migration, schema, sql};
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

// Not public API: paths used by the code the macros generate.
#[doc(hidden)]
pub mod __private {
    pub use crate::migration::MigrationDef;
    pub use crate::schema::{ColumnDef, IndexDef, OnDelete, TableDef};
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
