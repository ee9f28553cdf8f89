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
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use strata_split::{Routing, SplitOptions, split, verify};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("strata-split-doc-{}", std::process::id()));
//! let _ = std::fs::remove_dir_all(&dir);
//! std::fs::create_dir_all(&dir)?;
//! let source = dir.join("clients.db");
//! let db = rusqlite::Connection::open(&source)?;
//! db.execute_batch("CREATE TABLE clients (phone TEXT, name TEXT)")?;
//! for i in 0..100 {
//!     db.execute("INSERT INTO clients VALUES (?1, 'x')", [format!("+1555{i:04}")])?;
//! }
//! db.execute("INSERT INTO clients VALUES (NULL, 'no phone')", [])?;
//! let options = SplitOptions {
//!     source,
//!     table: "clients".into(),
//!     key: "phone".into(),
//!     shards: 4,
//!     out: dir.join("shards"),
//!     readers: 2,
//!     batch: 16,
//!     resume: false,
//!     placement: Routing::Hash,
//! };
//! let report = split(&options, &AtomicBool::new(false), Duration::from_secs(1), &mut |_| {})?;
//! assert_eq!(report.rows, 101);
//! assert_eq!(report.per_shard.len(), 5); // 4 shards and the reserved one, for the NULL key
//! assert_eq!(report.per_shard[4], 1);
//! assert!(verify(&options)?.ok);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

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
