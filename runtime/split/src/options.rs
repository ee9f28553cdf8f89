//! [`SplitOptions`]: what to split, and how.

use std::path::PathBuf;

use crate::route::Routing;

/// What to split, and how.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// The SQLite database holding the table; opened read-only.
    pub source: PathBuf,
    /// The table to split; it must have a rowid (not `WITHOUT ROWID`).
    pub table: String,
    /// The column whose value decides each row's shard.
    pub key: String,
    /// Shards besides the reserved one.
    pub shards: u32,
    /// The directory the shard files go to: empty (or missing) for a fresh split, the earlier
    /// run's when resuming.
    pub out: PathBuf,
    /// Reader threads, each with its own rowid range.
    pub readers: usize,
    /// Rows per reader batch; shard writers commit about this many rows at a time.
    pub batch: usize,
    /// Continue a split that stopped (crashed, interrupted) instead of starting one.
    pub resume: bool,
    /// How keys are assigned to shards; a resumed split must use the one it started with.
    pub placement: Routing,
}
