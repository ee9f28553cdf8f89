//! A database file opened for an application: one writer connection and a few readers.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::stamp::{Stamp, Watch};

/// One SQLite database in WAL mode with a writer connection and `readers` reader connections,
/// so reads never queue behind writes. Calls block the calling thread; async applications run
/// them on a blocking pool.
///
/// (Pool crates for rusqlite lag behind the rusqlite release Strata uses; this is the little
/// that the online engine and Notely need.)
///
/// WAL checkpoints run on a background thread of the pool, not in the commit of whichever
/// request happens to cross the threshold (a checkpoint syncs the database file, which can
/// take milliseconds; requests waiting for the writer would wait for it too).
///
/// SQLite starts the WAL over from its beginning only when a write transaction begins with
/// every frame already checkpointed; under a steady stream of writes (a move's backfill, group
/// commits) one is always open when the background checkpoint ends, so the WAL never restarts
/// and grows by every commit (hundreds of megabytes in a minute of backfill: each frame then
/// extends the file, and every read searches a longer WAL index). So when the background
/// thread has copied a WAL of 1024 frames or more (nearly) whole, the next transaction begun
/// on the writer connection first checkpoints the few frames committed since, under the
/// writer's lock (two syncs, of the WAL and the database; at most once a second), and
/// begins with the WAL fully checkpointed: its first write restarts the WAL, unless a reader
/// still reads from it (then the next round tries again).
///
/// Writes of one owner at one location can share a transaction ([`Pool::with_group_write`]):
/// group commit, one `BEGIN IMMEDIATE … COMMIT` for every write waiting for the writer, each
/// in its own savepoint.
#[derive(Debug)]
pub struct Pool {
    /// Unique in the process (a deferring thread tells its pools apart by it, see [`deferred`]).
    id: u64,
    path: PathBuf,
    writer: Mutex<Writer>,
    /// Signalled when a group transaction ends (committed or rolled back).
    ended: Condvar,
    /// Threads waiting for the writer's mutex right now: a group writer leaves the group's
    /// transaction open for them when there are any, and commits it at once when there are
    /// none (a lone write never waits for company).
    queued: AtomicUsize,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// Set by the background checkpoint when the WAL should start over (see above).
    restart: Arc<AtomicBool>,
    /// The database's commit stamp, if its WAL index is shared memory (see [`Pool::stamp`]);
    /// opened by the first call, so that pools nobody asks keep no connection for it.
    watch: OnceLock<Option<Watch>>,
    /// Held for its `Drop`, which stops the thread.
    _checkpointer: Option<Checkpointer>,
}

/// The background checkpointing thread.
#[derive(Debug)]
struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the background thread checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

/// A WAL of this many frames (4 MiB of 4 KiB pages) or more is made to start over (see
/// [`Pool`]).
const RESTART_FRAMES: i64 = 1024;

/// At most this many frames left by the background checkpoint (held back by a reader) for the
/// writer to copy before its next transaction.
const RESTART_SLACK: i64 = 256;

impl Checkpointer {
    fn start(path: &Path, restart: Arc<AtomicBool>) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("strata-checkpoint".into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                let mut stopped = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*stopped {
                    // PASSIVE: copies what it can without blocking readers or writers.
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    match done {
                        // (Nearly) every frame copied: the writer has only the frames since,
                        // and the few a reader held back, to copy.
                        Ok((frames, copied))
                            if frames >= RESTART_FRAMES
                                && copied >= 0
                                && frames - copied <= RESTART_SLACK =>
                        {
                            restart.store(true, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e)
                            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                        }
                        Err(e) => tracing::warn!("WAL checkpoint: {e}"),
                    }
                    stopped = wake
                        .wait_timeout(stopped, CHECKPOINT_EVERY)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer connection and its group transaction.
#[derive(Debug)]
struct Writer {
    conn: Connection,
    /// The open group transaction, if any: its writes, done, wait for its commit.
    group: Option<Group>,
}

/// Group transactions begun so far, in every pool: the next one's id.
static GROUPS: AtomicU64 = AtomicU64::new(1);

/// Pools opened so far: the next one's id.
static POOLS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// While this thread runs [`deferred`]: the group transactions its writes joined.
    static DEFERRED: RefCell<Option<Vec<Joined>>> = const { RefCell::new(None) };
}

/// How many groups this thread's deferred writes have joined so far (see [`deferred`]).
pub(crate) fn deferred_len() -> usize {
    DEFERRED.with_borrow(|d| d.as_ref().map_or(0, Vec::len))
}

/// Commits the groups this thread's deferred writes left open in pools other than `pool`
/// (an id; 0 for all) (see [`deferred`]).
fn settle_deferred_except(pool: u64) {
    let open: Vec<Joined> = DEFERRED.with_borrow(|d| {
        d.iter()
            .flatten()
            .filter(|j| j.pool.id != pool && j.outcome.get().is_none())
            .cloned()
            .collect()
    });
    for j in open {
        j.settle();
    }
}

/// A group transaction a deferred write joined (see [`deferred`]).
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub(crate) pool: Arc<Pool>,
    group: u64,
    outcome: Arc<OnceLock<Result<(), Failure>>>,
}

impl Joined {
    /// Commits the group if it is still open; its outcome is then known.
    pub(crate) fn settle(&self) {
        self.pool.settle_group(self);
    }

    /// How the group ended: `None` while it is open.
    pub(crate) fn outcome(&self) -> Option<rusqlite::Result<()>> {
        self.outcome
            .get()
            .map(|o| o.as_ref().map(|_| ()).map_err(Failure::error))
    }
}

/// Runs `f` with this thread's group writes ([`Pool::with_group_write`]) deferred: each
/// returns as soon as its savepoint is released, without committing its group or waiting for
/// its commit, and the groups they joined are returned with `f`'s value. The caller commits
/// the groups still open ([`Joined::settle`]) and must not report any of these writes as
/// done before its group committed ([`Joined::outcome`]).
///
/// This is group commit for a thread that has several writes in hand (a batch of requests):
/// they share one transaction without a thread per write waiting for it.
///
/// A deferring thread keeps at most one group open, and none while it waits for another
/// pool's writer: taking a writer ([`Pool::with_group_write`], [`Pool::writer`]) first commits
/// its open groups elsewhere. Otherwise two processes each holding one database's group open
/// while waiting for the other's would stall each other until the busy timeout.
pub(crate) fn deferred<T>(f: impl FnOnce() -> T) -> (T, Vec<Joined>) {
    /// Ends the deferral even if `f` panics (the thread may go on serving), committing what
    /// the writes done before the panic left open (nobody else might, for a while).
    struct Restore(Option<Vec<Joined>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            let left = DEFERRED.with_borrow_mut(|d| std::mem::replace(d, previous));
            for j in left.into_iter().flatten() {
                j.settle();
            }
        }
    }
    settle_deferred_except(0);
    let restore = Restore(DEFERRED.with_borrow_mut(|d| d.replace(Vec::new())));
    let value = f();
    let joined = DEFERRED.with_borrow_mut(Option::take).unwrap_or_default();
    drop(restore);
    (value, joined)
}

/// An open group transaction.
#[derive(Debug)]
struct Group {
    /// Unique in the process (see [`Pool::with_group_write`]).
    id: u64,
    /// Writes done in it.
    members: usize,
    /// How it ended, once it has: what its members answer.
    outcome: Arc<OnceLock<Result<(), Failure>>>,
}

/// Why a group transaction failed to commit, for each of its members.
#[derive(Debug, Clone)]
struct Failure {
    code: Option<rusqlite::ffi::Error>,
    message: String,
}

impl Failure {
    fn of(e: &rusqlite::Error) -> Failure {
        Failure {
            code: e.sqlite_error().copied(),
            message: e.to_string(),
        }
    }

    fn error(&self) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            self.code
                .unwrap_or_else(|| rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR)),
            Some(self.message.clone()),
        )
    }
}

/// Runs a statement without parameters or rows, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Writes one group transaction takes at most before it commits.
const GROUP_MAX: usize = 64;

impl Writer {
    /// Ends the open group transaction, if any: commits it (rolls it back if the commit
    /// fails) and tells its members how it went.
    fn settle(&mut self, ended: &Condvar) -> Result<(), Failure> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let outcome = run(&self.conn, "COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            Failure::of(&e)
        });
        let _ = group.outcome.set(outcome.clone());
        ended.notify_all();
        outcome
    }

    /// Rolls the open group transaction back (its savepoints could not be undone), failing
    /// every member.
    fn abandon(&mut self, ended: &Condvar, why: &rusqlite::Error) {
        if let Some(group) = self.group.take() {
            let _ = self.conn.execute_batch("ROLLBACK");
            let _ = group.outcome.set(Err(Failure::of(why)));
            ended.notify_all();
        }
    }
}

/// The writer connection, held until dropped (see [`Pool::writer`]); no group transaction is
/// open on it.
#[derive(Debug)]
pub struct WriterGuard<'a>(MutexGuard<'a, Writer>);

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // A layout's statements, the backfill's `IN (..)` lists of a few lengths, the ledger's and
    // the directory's: more than rusqlite's default of 16, which would evict and re-prepare.
    conn.set_prepared_statement_cache_capacity(64);
    // SQLite plans a `LIMIT ?n` (and `LIKE ?n`, and, after ANALYZE, a range over ?n) with the
    // value bound, and marks the statement to be prepared again whenever that parameter is
    // bound anew, which a cached statement is on every use (rusqlite clears its bindings on
    // return to the cache): the backfill's scans and every paged read were parsed and planned
    // again per call. The query planner stability guarantee plans them once, from the text.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

impl Pool {
    /// Opens an existing database (created and migrated beforehand) with `readers` reader
    /// connections, and switches it to WAL mode. Every connection plans its statements with
    /// SQLite's query planner stability guarantee (QPSG): from their text, not from the
    /// values bound, so that a cached statement with a `LIMIT ?n` is not prepared again at
    /// every use. What that gives up: a `LIKE ?n` cannot use an index for its prefix, a
    /// partial index is not matched through a parameter, and `ANALYZE`'s samples are not
    /// weighed against bound values; write such conditions with literals.
    pub fn open(path: &Path, readers: usize) -> rusqlite::Result<Pool> {
        let writer = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // WAL lets readers run beside the writer; it persists in the file.
        writer.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        configure(&writer)?;
        // Checkpoints are the background thread's job (see above).
        writer.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
        let restart = Arc::new(AtomicBool::new(false));
        let checkpointer = Some(Checkpointer::start(path, Arc::clone(&restart))?);
        let readers = (0..readers.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                configure(&conn)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Pool {
            id: POOLS.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
            writer: Mutex::new(Writer {
                conn: writer,
                group: None,
            }),
            ended: Condvar::new(),
            queued: AtomicUsize::new(0),
            readers,
            next: AtomicUsize::new(0),
            restart,
            watch: OnceLock::new(),
            _checkpointer: checkpointer,
        })
    }

    /// The database's commit stamp now, read without a transaction: equal stamps, read at two
    /// moments, mean that no connection in any process committed to the database in between,
    /// so that something read from it after the first is still what a read would find at the
    /// second. `None` when it cannot tell (a commit under way; a VFS whose WAL index is not
    /// shared memory; a watch that could not be opened): read the database.
    ///
    /// The first call opens a connection that the pool keeps for it (see `stamp.rs`).
    pub fn stamp(&self) -> Option<Stamp> {
        self.watch
            .get_or_init(|| Watch::open(&self.path).ok().flatten())
            .as_ref()
            .and_then(Watch::stamp)
    }

    /// [`Pool::stamp`], if the watch is open already (`None` otherwise, without opening it):
    /// no I/O, for callers that must not block.
    pub fn stamp_if_watched(&self) -> Option<Stamp> {
        self.watch.get()?.as_ref().and_then(Watch::stamp)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits the group transaction `group` (see [`deferred`]) if it is still open; its
    /// outcome is then known.
    pub(crate) fn settle_group(&self, group: &Joined) {
        let mut w = self.lock_writer();
        if w.group.as_ref().is_some_and(|g| g.id == group.group) {
            let _ = w.settle(&self.ended);
        }
    }

    /// Runs `f` on an idle reader connection (waiting for one only when all are busy).
    pub fn with_reader<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        let conn = (0..n)
            .find_map(|i| self.readers[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| {
                self.readers[start % n]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            });
        f(&conn)
    }

    /// Runs `f` on the writer connection.
    pub fn with_writer<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        f(&self.writer())
    }

    /// When the background checkpoint asked for it: checkpoints, on the writer connection
    /// outside any transaction, the frames committed since the background checkpoint, so that
    /// the transaction begun next finds the WAL fully checkpointed and its first write starts
    /// the WAL over (see [`Pool`]). PASSIVE: it waits for nobody, and a reader still on the
    /// WAL only makes it partial (the background thread asks again).
    fn restart_wal(&self, conn: &Connection) {
        if conn.is_autocommit() && self.restart.swap(false, Ordering::Relaxed) {
            let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if let Err(e) = done
                && e.sqlite_error_code() != Some(rusqlite::ErrorCode::DatabaseBusy)
            {
                tracing::warn!("WAL checkpoint before a write: {e}");
            }
        }
    }

    /// How many threads of this process wait for the writer connection now.
    pub fn writers_waiting(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Locks the writer's mutex, counted in `queued` while waiting for it.
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        if let Ok(w) = self.writer.try_lock() {
            return w;
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        let w = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.queued.fetch_sub(1, Ordering::SeqCst);
        w
    }

    /// The writer connection, held until the guard drops. A group transaction open on it is
    /// committed first (its members are answered), so the caller has the connection to itself,
    /// outside any transaction it did not begin.
    pub fn writer(&self) -> WriterGuard<'_> {
        settle_deferred_except(self.id);
        let mut w = self.lock_writer();
        let _ = w.settle(&self.ended);
        self.restart_wal(&w.conn);
        WriterGuard(w)
    }

    /// Runs the write `f` in a group transaction on the writer connection (group commit): the
    /// transaction (`BEGIN IMMEDIATE`) is shared with the other writes waiting for the writer,
    /// each in its own savepoint, so that a write that fails (`f` returns an error) is undone
    /// without failing its neighbours. It returns once the transaction committed, with `f`'s
    /// value, or with the commit's error (nothing of the group is then written). A lone write
    /// commits at once; writes arriving meanwhile join the next group.
    ///
    /// `f` runs with the database write-locked (from the `BEGIN IMMEDIATE` to the commit), so
    /// whatever it reads there stays true until its write commits; it gets the group's id,
    /// unique in the process, so that what one write read under the group's lock can serve the
    /// next ones of the group. `wrap` turns SQLite's errors about the transaction itself into
    /// `E`.
    pub fn with_group_write<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection, u64) -> Result<T, E>,
        wrap: impl Fn(rusqlite::Error) -> E,
    ) -> Result<T, E> {
        let deferring = DEFERRED.with_borrow(Option::is_some);
        if deferring {
            settle_deferred_except(self.id);
        }
        let mut w = self.lock_writer();
        if w.group.is_none() {
            self.restart_wal(&w.conn);
            run(&w.conn, "BEGIN IMMEDIATE").map_err(&wrap)?;
            w.group = Some(Group {
                id: GROUPS.fetch_add(1, Ordering::Relaxed),
                members: 0,
                outcome: Arc::new(OnceLock::new()),
            });
        }
        let id = w.group.as_ref().map_or(0, |g| g.id);
        if let Err(e) = run(&w.conn, "SAVEPOINT strata_group") {
            w.abandon(&self.ended, &e);
            return Err(wrap(e));
        }
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&w.conn, id)))
        {
            Ok(result) => result,
            Err(panic) => {
                // Half a write must not commit with its neighbours.
                let why = rusqlite::Error::InvalidQuery;
                w.abandon(&self.ended, &why);
                std::panic::resume_unwind(panic);
            }
        };
        let undo = match &result {
            Ok(_) => run(&w.conn, "RELEASE strata_group"),
            Err(_) => run(&w.conn, "ROLLBACK TO strata_group")
                .and_then(|()| run(&w.conn, "RELEASE strata_group")),
        };
        if let Err(e) = undo {
            w.abandon(&self.ended, &e);
            return Err(wrap(e));
        }
        let group = w.group.as_mut().expect("a group transaction is open");
        if result.is_ok() {
            group.members += 1;
        }
        if group.members < GROUP_MAX && deferring {
            // A deferred write: the caller commits (see `deferred`), also after a failed one
            // (the group it began, if it did, is open).
            let joined = Joined {
                pool: Arc::clone(self),
                group: group.id,
                outcome: Arc::clone(&group.outcome),
            };
            DEFERRED.with_borrow_mut(|d| d.get_or_insert_default().push(joined));
            return result;
        }
        if self.queued.load(Ordering::SeqCst) == 0 || group.members >= GROUP_MAX {
            // Nobody else is coming: commit for the group, this write included.
            let settled = w.settle(&self.ended);
            let value = result?;
            return match settled {
                Ok(()) => Ok(value),
                Err(f) => Err(wrap(f.error())),
            };
        }
        // Others wait for the writer: the last of them (or anyone else taking the writer)
        // commits for everyone. A failed write has nothing to wait for.
        let outcome = Arc::clone(&group.outcome);
        let value = result?;
        let w = self
            .ended
            .wait_while(w, |_| outcome.get().is_none())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(w);
        match outcome.get().expect("the group ended") {
            Ok(()) => Ok(value),
            Err(f) => Err(wrap(f.error())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str) -> (Arc<Pool>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("strata-pool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
            .unwrap();
        (Arc::new(Pool::open(&path, 2).unwrap()), dir)
    }

    /// The WAL's checkpoint sequence (its header's bytes 12–15): SQLite adds one each time the
    /// WAL starts over.
    fn wal_restarts(path: &Path) -> Option<u32> {
        let mut wal = PathBuf::from(path).into_os_string();
        wal.push("-wal");
        let bytes = std::fs::read(wal).ok()?;
        Some(u32::from_be_bytes(bytes.get(12..16)?.try_into().ok()?))
    }

    /// Under a steady stream of writes, with a reader reading, the WAL still starts over (about
    /// once a second): without the writer's own checkpoint before its transaction, a write is
    /// always open when the background checkpoint ends, and the WAL grows by every commit.
    #[test]
    fn the_wal_starts_over_under_a_steady_stream_of_writes() {
        let (pool, dir) = pool("restart");
        let path = dir.join("db.sqlite");
        let stop = AtomicBool::new(false);
        let seen = std::thread::scope(|s| {
            for t in 0..2i64 {
                let (pool, stop) = (&pool, &stop);
                s.spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        pool.with_group_write(
                            |c, _| c.execute("INSERT INTO t (k, v) VALUES (?1, ?1)", [t << 40 | i]),
                            |e| e,
                        )
                        .unwrap();
                        i += 1;
                    }
                });
            }
            let (pool, stop) = (&pool, &stop);
            s.spawn(move || {
                // Short reads with pauses, as requests read (a reader that never pauses keeps
                // every checkpoint from completing: SQLite's checkpoint starvation).
                while !stop.load(Ordering::Relaxed) {
                    pool.with_reader(|c| {
                        c.query_row("SELECT count(*) FROM t WHERE k < 10", [], |r| {
                            r.get::<_, i64>(0)
                        })
                    })
                    .unwrap();
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
            // Until the WAL has started over twice (about two seconds), or 30 s have passed.
            let mut seen = std::collections::BTreeSet::new();
            let since = std::time::Instant::now();
            while seen.len() < 3 && since.elapsed() < Duration::from_secs(30) {
                seen.extend(wal_restarts(&path));
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.store(true, Ordering::Relaxed);
            seen
        });
        assert!(
            seen.len() >= 3,
            "the WAL started over {} times in 30 s",
            seen.len().saturating_sub(1)
        );
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Many threads write at once: every write that succeeded is there when it returns, a
    /// failing one (every seventh) left nothing and failed none of its neighbours, and the
    /// writes did share transactions.
    #[test]
    fn group_commit_keeps_each_write_and_undoes_only_the_failed_ones() {
        let (pool, dir) = pool("group");
        let groups = Mutex::new(std::collections::HashSet::new());
        std::thread::scope(|s| {
            for t in 0..8i64 {
                let (pool, groups) = (&pool, &groups);
                s.spawn(move || {
                    for i in 0..200i64 {
                        let k = t * 1000 + i;
                        let r = pool.with_group_write(
                            |c, group| {
                                groups.lock().unwrap().insert(group);
                                c.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [k])?;
                                if k % 7 == 0 {
                                    // Fails after writing: the savepoint undoes it.
                                    c.execute("INSERT INTO t (k, v) VALUES (?1, 2)", [k])?;
                                }
                                Ok::<_, rusqlite::Error>(k)
                            },
                            |e| e,
                        );
                        assert_eq!(r.is_err(), k % 7 == 0, "{k}: {r:?}");
                        // Committed before the answer: a reader sees it.
                        let n: i64 = pool
                            .with_reader(|c| {
                                c.query_row("SELECT count(*) FROM t WHERE k = ?1", [k], |r| {
                                    r.get(0)
                                })
                            })
                            .unwrap();
                        assert_eq!(n, i64::from(k % 7 != 0), "{k}");
                    }
                });
            }
        });
        let n: i64 = pool
            .writer()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let expected = (0..8i64)
            .flat_map(|t| (0..200i64).map(move |i| t * 1000 + i))
            .filter(|k| k % 7 != 0)
            .count() as i64;
        assert_eq!(n, expected);
        assert!(pool.writer().is_autocommit(), "no transaction left open");
        let groups = groups.lock().unwrap().len();
        assert!(
            groups < 1600,
            "writes shared transactions ({groups} for 1600)"
        );
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn count(pool: &Pool, sql: &str) -> i64 {
        pool.with_reader(|c| c.query_row(sql, [], |r| r.get(0)))
            .unwrap()
    }

    /// Deferred writes of one thread share a group that stays open (invisible to readers)
    /// until the caller settles it; a failed one is undone alone; a writer from another
    /// thread commits the deferred ones with its own; and a panic ends the deferral.
    #[test]
    fn deferred_writes_wait_for_their_caller_to_commit() {
        let (pool, dir) = pool("deferred");
        let insert = |k: i64| {
            pool.with_group_write(
                |c, _| c.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [k]),
                |e| e,
            )
        };
        let (results, joined) = deferred(|| (0..5).map(|k| insert(k % 4)).collect::<Vec<_>>());
        assert_eq!(
            results.iter().map(Result::is_ok).collect::<Vec<_>>(),
            [true, true, true, true, false],
            "the duplicate key fails alone"
        );
        assert_eq!(joined.len(), 5, "one entry per write");
        assert!(
            joined.iter().all(|j| j.outcome().is_none()),
            "not committed yet"
        );
        assert_eq!(
            count(&pool, "SELECT count(*) FROM t"),
            0,
            "readers see nothing yet"
        );
        joined[0].settle();
        assert!(joined.iter().all(|j| matches!(j.outcome(), Some(Ok(())))));
        assert_eq!(count(&pool, "SELECT count(*) FROM t"), 4);

        // Another thread's write joins the open group and commits it with its own.
        let ((), joined) = deferred(|| insert(10).map(|_| ()).unwrap());
        std::thread::scope(|s| {
            s.spawn(|| insert(11).unwrap());
        });
        assert!(matches!(joined[0].outcome(), Some(Ok(()))));
        assert_eq!(count(&pool, "SELECT count(*) FROM t"), 6);

        // A lone failed write leaves its group for the caller to settle.
        let (failed, joined) = deferred(|| insert(0));
        assert!(failed.is_err());
        assert!(
            !pool.writer.lock().unwrap().conn.is_autocommit(),
            "still open"
        );
        joined[0].settle();
        assert!(pool.writer().is_autocommit());

        // A panic inside the deferral ends it, committing what its writes left open; the
        // next write commits at once.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deferred(|| {
                insert(20).unwrap();
                panic!("boom")
            })
        }));
        assert!(caught.is_err());
        assert!(pool.writer.lock().unwrap().group.is_none(), "settled");
        assert_eq!(count(&pool, "SELECT count(*) FROM t"), 7);
        insert(12).unwrap();
        assert_eq!(count(&pool, "SELECT count(*) FROM t"), 8);

        // A deferring thread never waits for another database's writer with a group open:
        // it commits it first (two processes doing the opposite would stall each other).
        let (other, other_dir) = self::pool("deferred-other");
        let insert_other = |k: i64| {
            other.with_group_write(
                |c, _| c.execute("INSERT INTO t (k, v) VALUES (?1, 1)", [k]),
                |e| e,
            )
        };
        let ((), joined) = deferred(|| {
            insert(30).unwrap();
            assert_eq!(count(&pool, "SELECT count(*) FROM t"), 8, "open");
            insert_other(30).unwrap();
            assert_eq!(count(&pool, "SELECT count(*) FROM t"), 9, "committed first");
            drop(other.writer());
            assert_eq!(
                count(&other, "SELECT count(*) FROM t"),
                1,
                "and by a writer"
            );
        });
        assert!(joined.iter().all(|j| j.outcome().is_some()));
        drop(other);
        let _ = std::fs::remove_dir_all(other_dir);
        assert!(pool.writer().is_autocommit(), "no transaction left open");
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A cached statement with `LIMIT ?1`, run with changing limits, is prepared once on the
    /// pool's connections; on a plain connection SQLite prepares it again on every run (the
    /// reason the pool turns the query planner stability guarantee on).
    #[test]
    fn a_limit_parameter_does_not_prepare_the_statement_again() {
        use rusqlite::StatementStatus::RePrepare;
        let (pool, dir) = pool("qpsg");
        const SQL: &str = "SELECT k FROM t ORDER BY k LIMIT ?1";
        pool.with_writer(|c| c.execute_batch("INSERT INTO t (k, v) VALUES (1, 1), (2, 2), (3, 3)"))
            .unwrap();
        let runs = |c: &Connection| -> rusqlite::Result<(Vec<usize>, i32)> {
            let mut rows = Vec::new();
            for limit in [1, 2, 3, 1] {
                let mut stmt = c.prepare_cached(SQL)?;
                rows.push(stmt.query_map([limit], |r| r.get::<_, i64>(0))?.count());
            }
            let reprepared = c.prepare_cached(SQL)?.get_status(RePrepare);
            Ok((rows, reprepared))
        };
        for (rows, reprepared) in [
            pool.with_reader(runs).unwrap(),
            pool.with_writer(runs).unwrap(),
        ] {
            assert_eq!(rows, [1, 2, 3, 1], "each run sees its own limit");
            assert_eq!(reprepared, 0, "prepared once");
        }
        // A canary: if a future SQLite stops preparing such statements again, this fails, and
        // the pool's QPSG may go.
        let plain = Connection::open(dir.join("db.sqlite")).unwrap();
        let (rows, reprepared) = runs(&plain).unwrap();
        assert_eq!(rows, [1, 2, 3, 1]);
        assert!(
            reprepared >= 3,
            "SQLite prepares it again per run: {reprepared}"
        );
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }
}
