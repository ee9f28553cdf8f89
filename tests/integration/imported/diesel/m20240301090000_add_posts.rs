//! Imported by `strata import` from diesel: `2024-03-01-090000_add_posts/up.sql` (down: `2024-03-01-090000_add_posts/down.sql`).
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the diesel migrations up to this one.

use strata::{Result, Tx, migration};

strata::schema! {
    table posts {
        id: i64 primary key,
        user_id: i64 references users(id) on delete cascade,
        body: Option<String>,
    }
    table users {
        id: i64 primary key,
        email: String unique,
    }
}

/// Add posts.
#[migration(20240301090000, role = "diesel", imported = "diesel:20240301090000", down = revert)]
fn add_posts(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20240301090000_add_posts.sql"))
}

/// Reverts it, with diesel's down SQL.
fn revert(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20240301090000_add_posts.down.sql"))
}
