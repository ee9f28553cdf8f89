//! Strata's integration tests: real SQLite files, real processes.

mod atomicity;
mod files;
mod ordering;
mod policies;
mod processes;
mod registry;
mod typed;
mod util;
