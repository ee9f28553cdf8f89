//! Imported by `strata import` from diesel: `2024-02-26-153000_create_users/up.sql` (down: `2024-02-26-153000_create_users/down.sql`).
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the diesel migrations up to this one.

use strata::{Result, Tx, migration};

strata::schema! {
    table users {
        id: i64 primary key,
        email: String unique,
    }
}

/// Create users.
#[migration(20240226153000, role = "diesel", imported = "diesel:20240226153000", down = revert)]
fn create_users(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20240226153000_create_users.sql"))
}

/// Reverts it, with diesel's down SQL.
fn revert(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20240226153000_create_users.down.sql"))
}
