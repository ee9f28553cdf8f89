//! Migrations of role `diesel`, imported from diesel by `strata import`.

strata::migrations!();

/// Create users.
pub mod m20240226153000_create_users;
/// Add posts.
pub mod m20240301090000_add_posts;
/// Index posts.
pub mod m20240305120000_index_posts;
