//! A database file opened for an application: one writer connection and a few readers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

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
#[derive(Debug)]
pub struct Pool {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// Held for its `Drop`, which stops the thread.
    _checkpointer: Option<Checkpointer>,
}

/// The background checkpointing thread.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the background thread checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

impl Checkpointer {
    fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("strata-checkpoint".into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                let mut stopped = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*stopped {
                    // PASSIVE: copies what it can without blocking readers or writers.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
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

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

impl Pool {
    /// Opens an existing database (created and migrated beforehand) with `readers` reader
    /// connections, and switches it to WAL mode.
    pub fn open(path: &Path, readers: usize) -> rusqlite::Result<Pool> {
        let writer = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // WAL lets readers run beside the writer; it persists in the file.
        writer.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        configure(&writer)?;
        // Checkpoints are the background thread's job (see above).
        writer.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
        let checkpointer = Some(Checkpointer::start(path)?);
        let readers = (0..readers.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                configure(&conn)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Pool {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers,
            next: AtomicUsize::new(0),
            _checkpointer: checkpointer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
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

    /// The writer connection, held until the guard drops.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
