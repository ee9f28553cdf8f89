//! Strata's integration tests: real SQLite files, real processes.

mod atomicity;
mod authoring;
mod deploy;
mod files;
mod forms;
mod harness;
mod import;
mod online;
mod operations;
mod ordering;
mod policies;
mod processes;
mod registry;
mod typed;
mod util;

/// The migrations of a `billing` role, for tests that need another role's database.
pub fn policies_other_role() -> &'static strata::Source {
    &policies::other_role::MIGRATIONS
}
