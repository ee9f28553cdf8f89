//! Migrations of role `goose`, imported from goose by `strata import`.

strata::migrations!();

/// Create users.
pub mod m20000101000001_create_users;
/// Add posts.
pub mod m20000101000002_add_posts;
/// Index posts.
pub mod m20000101000003_index_posts;
