//! Imported by `strata import` from goose: `00003_index_posts.sql`.
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the goose migrations up to this one.

use strata::{Result, Tx, migration};

strata::schema! {
    table posts {
        id: i64 primary key,
        user_id: i64 references users(id) on delete cascade,
        body: Option<String>,
        index posts_by_user (user_id),
    }
    table users {
        id: i64 primary key,
        email: String unique,
    }
    trigger posts_touch "AFTER INSERT ON posts BEGIN
    UPDATE users SET email = lower(email) WHERE id = new.user_id;
END";
}

/// Index posts.
///
/// Version 20000101000003 is goose's 3, counted in seconds from the import's base time.
#[migration(20000101000003, role = "goose", imported = "goose:3")]
fn index_posts(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20000101000003_index_posts.sql"))
}
