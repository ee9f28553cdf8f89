//! Two releases of one application, for deploy tests: release 1 knows [`v1`]'s migration;
//! release 2 knows every migration here ([`MIGRATIONS`]): an expand (a nullable column) and a
//! contract (a dropped column) on top of release 1's.

strata::migrations!();

/// Release 1's migrations.
pub mod v1 {
    strata::migrations!();

    /// Items with a note.
    pub mod m20250101000000_create_items;
}

/// Adds a nullable label (expand).
pub mod m20250102000000_add_label;
/// Drops the note (contract).
pub mod m20250103000000_drop_note;
