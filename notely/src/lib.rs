//! Notely, a notes service on Strata.
//!
//! For now: the databases Notely keeps under its data directory, created and migrated by Strata.

pub mod cli;
pub mod db;
