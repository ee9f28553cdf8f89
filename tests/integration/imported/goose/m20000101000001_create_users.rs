//! Imported by `strata import` from goose: `00001_create_users.sql` (its Up and Down sections).
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the goose migrations up to this one.

use strata::{Result, Tx, migration};

strata::schema! {
    table users {
        id: i64 primary key,
        email: String unique,
    }
}

/// Create users.
///
/// Version 20000101000001 is goose's 1, counted in seconds from the import's base time.
#[migration(20000101000001, role = "goose", imported = "goose:1", down = revert)]
fn create_users(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000001_create_users.sql"))
}

/// Reverts it, with goose's down SQL.
fn revert(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000001_create_users.down.sql"))
}
