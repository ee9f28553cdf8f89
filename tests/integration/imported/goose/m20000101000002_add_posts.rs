//! Imported by `strata import` from goose: `00002_add_posts.sql` (its Up and Down sections).
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the goose migrations up to this one.

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
    trigger posts_touch "AFTER INSERT ON posts BEGIN
    UPDATE users SET email = lower(email) WHERE id = new.user_id;
END";
}

/// Add posts.
///
/// Version 20000101000002 is goose's 2, counted in seconds from the import's base time.
#[migration(20000101000002, role = "goose", imported = "goose:2", down = revert)]
fn add_posts(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000002_add_posts.sql"))
}

/// Reverts it, with goose's down SQL.
fn revert(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000002_add_posts.down.sql"))
}
