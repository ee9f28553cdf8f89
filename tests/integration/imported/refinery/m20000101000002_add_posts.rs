//! Imported by `strata import` from refinery: `V2__add_posts.sql`.
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the refinery migrations up to this one.

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
///
/// Version 20000101000002 is refinery's 2, counted in seconds from the import's base time.
#[migration(20000101000002, role = "refinery", imported = "refinery:2")]
fn add_posts(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000002_add_posts.sql"))
}
