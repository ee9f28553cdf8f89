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
//!
//! Requests that arrive together can be served together, with the same guarantees:
//! [`Engine::get_many`] reads a batch with at most one read transaction per database (none
//! for the placements and records remembered since that database's last commit; each record
//! still read after its placement, and looked for again alone when it is missing),
//! [`Engine::remembered`] answers a hot read from memory alone, and
//! [`Engine::batch`] runs a batch of requests on one thread, the writes of owners that are not
//! moving sharing their store's group transaction ([`Pool::with_group_write`]); it says per
//! request whether its writes committed, and nothing may be answered before.
//!
//! # Examples
//!
//! Notes owned by accounts, moved from one database to another while they stay readable
//! and writable:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::AtomicBool;
//! use rusqlite::{Connection, OptionalExtension, params};
//! use strata_online::{Engine, Item, Layout, LayoutResult, Location, MoveState, Pace, Pool};
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct Note { owner: i64, id: i64, version: i64, text: String }
//!
//! impl Item for Note {
//!     type Owner = i64;
//!     type Id = i64;
//!     fn owner(&self) -> &i64 { &self.owner }
//!     fn id(&self) -> &i64 { &self.id }
//!     fn version(&self) -> i64 { self.version }
//!     fn encode(&self, out: &mut Vec<u8>) {
//!         out.extend(self.id.to_le_bytes());
//!         out.extend(self.version.to_le_bytes());
//!         out.extend(self.text.as_bytes());
//!     }
//! }
//!
//! /// Both databases keep notes in `notes (owner, id, version, text)`, keyed by (owner, id).
//! struct Notes;
//!
//! fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
//!     Ok(Note { owner: r.get(0)?, id: r.get(1)?, version: r.get(2)?, text: r.get(3)? })
//! }
//!
//! impl Layout<Note> for Notes {
//!     fn get(&self, c: &Connection, owner: &i64, id: &i64) -> LayoutResult<Option<Note>> {
//!         let sql = "SELECT * FROM notes WHERE owner = ?1 AND id = ?2";
//!         Ok(c.query_row(sql, [owner, id], row).optional()?)
//!     }
//!     fn ids(&self, c: &Connection, owner: &i64) -> LayoutResult<Vec<(i64, i64)>> {
//!         let mut s = c.prepare("SELECT id, id FROM notes WHERE owner = ?1 ORDER BY id")?;
//!         Ok(s.query_map([owner], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
//!     }
//!     fn batch(&self, c: &Connection, owner: &i64, after: Option<&i64>, limit: usize)
//!         -> LayoutResult<Vec<Note>> {
//!         let sql = "SELECT * FROM notes WHERE owner = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
//!         let mut s = c.prepare(sql)?;
//!         let after = after.copied().unwrap_or(i64::MIN);
//!         Ok(s.query_map(params![owner, after, limit as i64], row)?.collect::<Result<_, _>>()?)
//!     }
//!     fn insert(&self, c: &Connection, n: &Note) -> LayoutResult<bool> {
//!         let sql = "INSERT INTO notes VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
//!         Ok(c.execute(sql, params![n.owner, n.id, n.version, n.text])? == 1)
//!     }
//!     fn put(&self, c: &Connection, n: &Note) -> LayoutResult<()> {
//!         let sql = "INSERT INTO notes VALUES (?1, ?2, ?3, ?4) ON CONFLICT (owner, id) \
//!                    DO UPDATE SET version = excluded.version, text = excluded.text";
//!         c.execute(sql, params![n.owner, n.id, n.version, n.text])?;
//!         Ok(())
//!     }
//!     fn remove(&self, c: &Connection, owner: &i64, id: &i64) -> LayoutResult<bool> {
//!         Ok(c.execute("DELETE FROM notes WHERE owner = ?1 AND id = ?2", [owner, id])? == 1)
//!     }
//!     fn count(&self, c: &Connection, owner: &i64) -> LayoutResult<u64> {
//!         let sql = "SELECT count(*) FROM notes WHERE owner = ?1";
//!         Ok(c.query_row(sql, [owner], |r| r.get::<_, i64>(0))? as u64)
//!     }
//!     fn total(&self, c: &Connection) -> LayoutResult<u64> {
//!         Ok(c.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0))? as u64)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("strata-online-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let file = |name: &str| -> Result<Arc<Pool>, Box<dyn std::error::Error>> {
//!     let path = dir.join(name);
//!     let _ = std::fs::remove_file(&path);
//!     let c = Connection::open(&path)?;
//!     c.execute_batch("CREATE TABLE IF NOT EXISTS notes (owner INTEGER, id INTEGER, \
//!         version INTEGER, text TEXT, PRIMARY KEY (owner, id))")?;
//!     Ok(Arc::new(Pool::open(&path, 2)?))
//! };
//! let (control, old, new) = (file("control.db")?, file("old.db")?, file("new.db")?);
//! let location = |name: &str, pool: &Arc<Pool>| Location::<Note> {
//!     name: name.into(),
//!     pool: Arc::clone(pool),
//!     layout: Arc::new(Notes),
//! };
//! let engine = Engine::new(control, vec![location("old", &old), location("new", &new)])?;
//! engine.control().with_writer(|c| strata_online::directory::place(c, &7, "old"))?;
//! engine.create(&Note { owner: 7, id: 1, version: 1, text: "hello".into() })?;
//!
//! // Move account 7 to `new`; its note stays readable (and writable) all along.
//! engine.start_move("7 → new", &[(7, "new".into())])?;
//! let report = engine.work(&Pace::default(), &AtomicBool::new(false), &mut |_| {})?;
//! assert_eq!(report.map(|r| r.state), Some(MoveState::Done));
//! let placement = engine.placement(&7)?;
//! assert_eq!(placement.location, "new");
//! assert_eq!(engine.get(&placement, &7, &1)?.map(|n| n.text), Some("hello".into()));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

pub mod directory;
mod engine;
pub mod hash;
mod ledger;
pub mod pace;
mod placements;
mod pool;
mod records;
pub mod shard;
mod stamp;
mod worker;

pub use directory::{MoveRecord, MoveState, Phase, Placement};
pub use engine::{
    Engine, Fault, Found, Item, Layout, LayoutError, LayoutResult, Location, MoveError, Opener,
    fault,
};
pub use ledger::item_hash;
pub use pool::{Pool, WriterGuard};
pub use stamp::Stamp;
pub use worker::{MoveStatus, Pace, Step, TargetProgress, WorkReport};

/// Lowers the calling thread's CPU priority (nice +10 on Linux; nothing elsewhere), for
/// background work such as a move worker, so that foreground requests win the CPU when both
/// want it.
// A thread's nice value has no std API: setpriority.
#[allow(unsafe_code)]
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; `who = 0` is the calling thread on Linux,
    // where each thread has its own nice value. A failure leaves the priority unchanged.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
