//! Bulk shard split: one big SQLite table into N shard databases, offline, at disk speed,
//! exact and resumable.
//!
//! - **Routing** compatible with the original `shard_migrate`: the key's text (as SQLite's
//!   `CAST(key AS TEXT)` renders it), SHA-256, read as a big-endian unsigned integer, mod N;
//!   NULL, empty or blank keys go to the reserved shard N. [`Routing::Logical`] instead uses
//!   the logical shards of [`strata_online::shard`] (contiguous ranges of the 4096 logical
//!   shards per physical shard), as Notely's live sharding does.
//! - **Files**: `<out>/<table>_shard_NN.db`, NN = 00..N (N is the reserved shard), each with the
//!   source table's own `CREATE TABLE` (declared types, primary key) and its indexes, built
//!   after the load.
//! - **Pipeline**: K readers, each streaming its own rowid range in rowid order (never OFFSET);
//!   one writer thread per shard; bounded channels, so memory stays flat whatever the table's
//!   size.
//! - **Exact and resumable**: a reader sends every shard, after each batch of rows, the rowid
//!   it has read through; a writer commits only at those boundaries, and the checkpoint (per
//!   reader, the rowid through which every row of this shard is in) commits in the same
//!   transaction as the rows. After a crash at any moment, `resume` restarts each reader from
//!   the smallest checkpoint among the shards, and each shard skips the rows it already has:
//!   exactly the source rows, no duplicates, no gaps.

mod error;
mod options;
mod pipeline;
mod route;
mod source;
mod verify;

pub use error::{Result, SplitError};
pub use options::SplitOptions;
pub use pipeline::{Progress, SplitReport, shard_path, split};
pub use route::{Routing, shard_of};
pub use verify::{ShardCheck, VerifyReport, verify};
