//! Notely's integration tests, one test binary (one link instead of one per file): each file
//! next to this one is a module, so `cargo test -p notely --test notely api::` runs one of them.

mod common;

mod adversarial;
mod api;
mod browser;
mod cli;
mod demo;
mod deploy;
mod exposure;
mod online;
mod operations;
mod rollout;
mod shards;
