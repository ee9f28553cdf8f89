//! A database's commit stamp, read without a transaction: the header of its WAL index.
//!
//! In WAL mode every connection, in every process, learns of a commit from the WAL index's
//! header in the `-shm` file, which the committing connection rewrites before its commit is
//! visible to anyone (<https://www.sqlite.org/walformat.html>, "The WAL-Index Header": a
//! counter bumped by each transaction, the last valid frame, the WAL's salts and checksums).
//! Two equal headers, read at two moments, mean that no transaction committed in between:
//! a read transaction begun at either moment sees the same database. Reading the header is a
//! few loads from shared memory; a read transaction costs a lock on the `-shm` file (a system
//! call) and a statement. [`Watch::stamp`] lets a cache of something read from the database
//! (the engine's placements and records) be used only while no commit can have changed it.
//!
//! The header is read as SQLite reads it: copy 0, a barrier, then copy 1 (writers write copy
//! 1 then copy 0); copies that differ (a commit in progress, or one that died half-way) give
//! no stamp, as do a header not yet initialised and one whose checksum does not hold. (SQLite
//! writes the header with plain stores and reads it the same way, relying on the two copies,
//! the barrier and the checksum; the loads here are atomic, the rest is SQLite's protocol.)
//!
//! The memory is SQLite's own mapping of the `-shm` file, obtained through the VFS of a
//! connection the watch owns and never uses again: while that connection is open it holds its
//! SHARED lock on the database (as every connection in WAL mode does), so no connection
//! anywhere can take the database out of WAL mode or delete the `-shm` file, and the mapping
//! (shared by every connection of the process to that file) stays where it is.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use rusqlite::{Connection, OpenFlags, ffi};

/// The WAL-index header, in 32-bit words (48 bytes).
const WORDS: usize = 12;

/// The header's words at one moment: equal stamps mean no commit in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp([u32; WORDS]);

/// Watches one database's commits (see the module's documentation).
pub struct Watch {
    /// Never used after [`Watch::open`]: it keeps the mapping alive.
    _conn: Connection,
    /// The start of the WAL index: two copies of the header, [`WORDS`] words each.
    header: *const AtomicU32,
}

// SAFETY: `header` points into a shared memory mapping owned by `_conn`'s VFS, valid for as
// long as `_conn` is open (it is never used, so never closed before the watch is dropped),
// and only read, through atomics, from any thread.
#[allow(unsafe_code)]
unsafe impl Send for Watch {}
#[allow(unsafe_code)]
unsafe impl Sync for Watch {}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("stamp", &self.stamp())
            .finish()
    }
}

/// Size of a WAL-index region (SQLite asks its VFS for regions of 32 KiB).
const REGION: i32 = 32 * 1024;

impl Watch {
    /// Watches the database at `path`, which is in WAL mode. `None` when its WAL index is not
    /// shared memory that other connections update (a VFS without it, a database not in WAL
    /// mode): the caller then reads as if nothing could be cached.
    pub fn open(path: &Path) -> rusqlite::Result<Option<Watch>> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        // A read transaction opens the WAL and maps the index's first region.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        let header = first_region(&conn);
        Ok(header.map(|header| Watch {
            _conn: conn,
            header,
        }))
    }

    /// The header now; `None` while a commit rewrites it (or one died half-way) or before
    /// the index is initialised.
    pub fn stamp(&self) -> Option<Stamp> {
        let mut first = [0u32; WORDS];
        let mut second = [0u32; WORDS];
        // SAFETY: the two copies lie in the first region (see `Watch::header`).
        let word = |i: usize| -> &AtomicU32 {
            #[allow(unsafe_code)]
            unsafe {
                &*self.header.add(i)
            }
        };
        for (i, w) in first.iter_mut().enumerate() {
            *w = word(i).load(Ordering::Acquire);
        }
        fence(Ordering::SeqCst);
        for (i, w) in second.iter_mut().enumerate() {
            *w = word(WORDS + i).load(Ordering::Acquire);
        }
        // `isInit` is the first byte of the fourth word.
        let initialised = first[3].to_ne_bytes()[0] == 1;
        (first == second && initialised && checksum_holds(&first)).then_some(Stamp(first))
    }
}

/// Whether the header's last two words are the checksum of its first ten, as SQLite checks
/// before it trusts a header it read (pairs of native-order words: `s1 += a + s2; s2 += b +
/// s1`).
fn checksum_holds(h: &[u32; WORDS]) -> bool {
    let (mut s1, mut s2) = (0u32, 0u32);
    for pair in h[..10].chunks_exact(2) {
        s1 = s1.wrapping_add(pair[0]).wrapping_add(s2);
        s2 = s2.wrapping_add(pair[1]).wrapping_add(s1);
    }
    [s1, s2] == [h[10], h[11]]
}

/// The connection's mapping of its WAL index's first region, if it has one in shared memory.
#[allow(unsafe_code)]
fn first_region(conn: &Connection) -> Option<*const AtomicU32> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn` is open and used by this thread only; FILE_POINTER writes the main
    // database's `sqlite3_file` pointer (valid while the connection is open) into `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK || file.is_null() {
        return None;
    }
    // SAFETY: `file` is the open database file of `conn`; its methods outlive it.
    let methods = unsafe { (*file).pMethods };
    if methods.is_null() {
        return None;
    }
    // SAFETY: as above; version 2 of the methods is the first with shared memory.
    let map = unsafe {
        if (*methods).iVersion < 2 {
            return None;
        }
        (*methods).xShmMap?
    };
    let mut region: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: region 0 was mapped by the read transaction above, so `bExtend = 0` returns it
    // without growing anything; the VFS serialises this with its other users of the mapping.
    let rc = unsafe { map(file, 0, REGION, 0, (&raw mut region).cast()) };
    if rc != ffi::SQLITE_OK || region.is_null() || !region.cast::<AtomicU32>().is_aligned() {
        return None;
    }
    Some(region.cast_const().cast())
}

/// The commit stamp of a new WAL database with one table (its files removed again): `tag`
/// and `n` name it, so two calls give two databases' stamps, different in their salts.
#[cfg(test)]
pub(crate) fn new_database_stamp(tag: &str, n: u32) -> Stamp {
    let path = std::env::temp_dir().join(format!("strata-{tag}-{}-{n}.db", std::process::id()));
    let c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    c.execute_batch("CREATE TABLE t (x)").unwrap();
    let s = Watch::open(&path).unwrap().unwrap().stamp().unwrap();
    drop(c);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            .unwrap();
        conn
    }

    #[test]
    fn the_stamp_changes_with_every_commit_and_only_then() {
        let dir = tempfile_dir();
        let path = dir.join("a.db");
        let writer = wal(&path);
        let watch = Watch::open(&path)
            .unwrap()
            .expect("a WAL index in shared memory");
        let before = watch.stamp().unwrap();
        // Reads and an empty transaction commit nothing.
        let reader = Connection::open(&path).unwrap();
        reader
            .query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .unwrap();
        writer.execute_batch("BEGIN IMMEDIATE; COMMIT").unwrap();
        assert_eq!(watch.stamp(), Some(before));
        let mut seen = vec![before];
        for i in 0..20 {
            writer.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
            let now = watch.stamp().unwrap();
            assert!(!seen.contains(&now), "commit {i} left the stamp as it was");
            seen.push(now);
        }
        // A checkpoint that restarts the WAL changes it too (the next write starts over).
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        writer.execute("INSERT INTO t VALUES (99)", []).unwrap();
        assert!(!seen.contains(&watch.stamp().unwrap()));
        // A rolled-back transaction commits nothing.
        let last = watch.stamp();
        writer
            .execute_batch("BEGIN; INSERT INTO t VALUES (1); ROLLBACK")
            .unwrap();
        assert_eq!(watch.stamp(), last);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_header_is_trusted_only_with_its_checksum() {
        let dir = tempfile_dir();
        let path = dir.join("c.db");
        let writer = wal(&path);
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let watch = Watch::open(&path).unwrap().unwrap();
        let Stamp(mut words) = watch.stamp().unwrap();
        assert!(checksum_holds(&words));
        words[4] ^= 1; // another last frame, the checksum left as it was
        assert!(!checksum_holds(&words));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_database_not_in_wal_mode_has_no_watch() {
        let dir = tempfile_dir();
        let path = dir.join("b.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(Watch::open(&path).unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "strata-stamp-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
