//! Online data migrations: move records between databases while the application serves them.
//!
//! The application describes its records ([`Item`]) and how each database lays them out
//! ([`Layout`]; a legacy store and a new one may use different tables and types). The
//! [`Engine`] routes every read and write through the placement [`directory`] in the control
//! database, and a worker ([`Engine::work`]) drives each owner of a move through the phases
//!
//! ```text
//! stable(src) → dual → backfill → verify → stable(dst)
//! ```
//!
//! Every phase is compatible with its neighbours, so processes that see a change at different
//! moments stay correct:
//!
//! - Writes lock the owner's databases (in name order, `BEGIN IMMEDIATE`), then re-read the
//!   placement; if it changed they start over. Phase changes take the same locks, so a write
//!   always acts on the current phase.
//! - Reads take no locks. While moving they read the source, then the target, and the newer
//!   version wins; records only ever go source → target with the target written first, so a
//!   read never misses one. A read that finds nothing, and every list, re-reads the placement
//!   afterwards and starts over if it changed.
//! - Updates move the record to the target (target committed first); deletes remove the older
//!   copy first, so a crash between the two commits leaves the newest version, never an old
//!   one.
//! - The backfill copies a batch, records it in the target's ledger in the same transaction
//!   (the checkpoint), then removes the batch from the source. A crash in between leaves
//!   records in both, which the next batch or any read resolves by version.
//! - Verification compares, per owner, the target's records (count and content hash, read
//!   back through the target's layout) with the ledger of everything the move wrote there,
//!   and checks that nothing is left at the source. Any difference stops the move.

pub mod directory;
mod engine;
pub mod hash;
mod pool;
pub mod shard;
mod worker;

pub use directory::{MoveRecord, MoveState, Phase, Placement};
pub use engine::{
    Engine, Fault, Item, Layout, LayoutError, LayoutResult, Location, MoveError, Opener, fault,
    item_hash,
};
pub use pool::Pool;
pub use worker::{MoveStatus, Pace, Step, TargetProgress, WorkReport};

/// Lowers the calling thread's CPU priority (nice +10 on Linux; nothing elsewhere), for
/// background work such as a move worker, so that foreground requests win the CPU when both
/// want it.
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; `who = 0` is the calling thread on Linux,
    // where each thread has its own nice value. A failure leaves the priority unchanged.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
