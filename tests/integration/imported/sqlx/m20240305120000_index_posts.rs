//! Imported by `strata import` from sqlx: `20240305120000_index_posts.sql`.
//! The SQL is applied verbatim from the file beside this one; the declaration is the
//! schema after it, read from a replay of the sqlx migrations up to this one.

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
}

/// Index posts.
#[migration(20240305120000, role = "sqlx", imported = "sqlx:20240305120000")]
fn index_posts(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("m20240305120000_index_posts.sql"))
}
