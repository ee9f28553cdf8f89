//! Migrations and helpers shared by Strata's integration tests and the `strata-probe` binary.

pub mod deploy;
pub mod probe;
pub mod sqlfile;
