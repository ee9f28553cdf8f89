//! Imported by `strata import` from refinery: `V1__create_users.sql`.
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the refinery migrations up to this one.

use strata::{Result, Tx, migration};

strata::schema! {
    table users {
        id: i64 primary key,
        email: String unique,
    }
}

/// Create users.
///
/// Version 20000101000001 is refinery's 1, counted in seconds from the import's base time.
#[migration(20000101000001, role = "refinery", imported = "refinery:1")]
fn create_users(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000001_create_users.sql"))
}
