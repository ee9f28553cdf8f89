//! [`SplitOptions`]: what to split, and how.

use std::path::PathBuf;

use crate::route::Routing;

/// What to split, and how.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    pub source: PathBuf,
    pub table: String,
    pub key: String,
    /// Shards besides the reserved one.
    pub shards: u32,
    pub out: PathBuf,
    /// Reader threads, each with its own rowid range.
    pub readers: usize,
    /// Rows per reader batch; shard writers commit about this many rows at a time.
    pub batch: usize,
    /// Continue a split that stopped (crashed, interrupted) instead of starting one.
    pub resume: bool,
    pub placement: Routing,
}
