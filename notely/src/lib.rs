//! Notely, a notes service on Strata.
//!
//! Its databases are created and migrated by Strata at startup; `notely serve` answers the REST
//! API of the original Notely over them, note access going through the data proxy.
//!
//! Notely is an application: this library target exists for its binary and its tests, not as
//! an API for others, so its items are documented where it helps a reader, not by rule.
#![allow(missing_docs)]

pub mod cli;
pub mod db;
pub mod deploy;
pub mod http;
pub mod lane;
pub mod loadgen;
pub mod moves;
pub mod proxy;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tui;
