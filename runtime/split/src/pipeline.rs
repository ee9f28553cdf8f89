//! The split itself: shard files and their checkpoints (resume), K readers streaming rowid
//! ranges, one writer per shard, progress.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::{Result, SplitError, sql_err};
use crate::options::SplitOptions;
use crate::route::Router;
use crate::source::{Source, inspect, open_source, quote};

/// The file of shard `k`: `<out>/<table>_shard_NN.db`.
pub fn shard_path(out: &Path, table: &str, k: u32) -> PathBuf {
    out.join(format!("{table}_shard_{k:02}.db"))
}

/// The reader ranges `(after, through]` over the rowids.
fn ranges(src: &Source, readers: usize) -> Vec<(i64, i64)> {
    let lo = i128::from(src.min_rowid) - 1;
    let hi = i128::from(src.max_rowid);
    let span = (hi - lo).max(0);
    let k = readers.max(1) as i128;
    (0..k)
        .map(|i| {
            let a = lo + span * i / k;
            let b = lo + span * (i + 1) / k;
            (a as i64, b as i64)
        })
        .collect()
}

/// A shard's record of what split it belongs to and how far it got.
const SHARD_META: &str = "
CREATE TABLE IF NOT EXISTS strata_split (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS strata_split_progress (
    reader INTEGER PRIMARY KEY NOT NULL,
    after INTEGER NOT NULL,
    through INTEGER NOT NULL,
    done_through INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
";

/// The parameters a resume must repeat.
fn identity(opts: &SplitOptions, src: &Source) -> Vec<(&'static str, String)> {
    let source = std::fs::canonicalize(&opts.source)
        .unwrap_or_else(|_| opts.source.clone())
        .display()
        .to_string();
    vec![
        ("source", source),
        ("table", opts.table.clone()),
        ("key", opts.key.clone()),
        ("shards", opts.shards.to_string()),
        ("placement", opts.placement.as_str().to_string()),
        ("readers", opts.readers.to_string()),
        ("source rows", src.rows.to_string()),
        ("source max rowid", src.max_rowid.to_string()),
    ]
}

/// Per shard and reader: the rowid through which every row is in the shard.
struct Checkpoints {
    /// `done[k][r]`
    done: Vec<Vec<i64>>,
    /// Rows in each shard.
    rows: Vec<u64>,
}

/// A shard's connection. Shards use a rollback journal, not WAL: pages appended to a new file
/// are not journaled at all, so a bulk load writes each page once (WAL writes it twice, into
/// the log and at the checkpoint). A crash rolls the open batch back on the next open.
fn open_shard(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql_err(path))?;
    conn.execute_batch(
        "PRAGMA journal_mode = PERSIST; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8000; \
         PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF;",
    )
    .map_err(sql_err(path))?;
    Ok(conn)
}

/// A shard's connection while loading: the splitter is its only user, so it holds the file
/// exclusively.
fn open_shard_for_load(path: &Path) -> Result<Connection> {
    let conn = open_shard(path)?;
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
        .map_err(sql_err(path))?;
    Ok(conn)
}

/// Creates the shards (fresh split) or checks them and reads their checkpoints (resume).
fn prepare_shards(opts: &SplitOptions, src: &Source) -> Result<Checkpoints> {
    let n = opts.shards + 1;
    let ranges = ranges(src, opts.readers);
    let ident = identity(opts, src);
    let mut done = Vec::new();
    let mut rows = Vec::new();
    let io = |source| SplitError::Io {
        path: opts.out.clone(),
        source,
    };
    let marker = opts.out.join(format!(".{}.strata-split", opts.table));
    let mut fresh = !opts.resume;
    if opts.resume && !marker.exists() {
        // A split killed while creating its shards, before any row: start it again, after
        // removing what it made (only its own files are there, or this is not that split) —
        // the shards, their journals, and the marker written aside when the kill fell between
        // writing it and renaming it in place.
        let aside = format!(".{}.strata-split.tmp", opts.table);
        let ours = |name: &str| {
            name == aside
                || (name.starts_with(&format!("{}_shard_", opts.table))
                    && (name.ends_with(".db") || name.ends_with(".db-journal")))
        };
        let entries: Vec<PathBuf> = match std::fs::read_dir(&opts.out) {
            Ok(dir) => dir
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .map_err(io)?,
            Err(_) => Vec::new(),
        };
        let all_ours = entries
            .iter()
            .all(|p| p.file_name().is_some_and(|n| ours(&n.to_string_lossy())));
        if entries.is_empty() || !all_ours {
            return Err(SplitError::NothingToResume(opts.out.clone()));
        }
        for path in entries {
            std::fs::remove_file(&path).map_err(|source| SplitError::Io { path, source })?;
        }
        fresh = true;
    }
    if fresh {
        std::fs::create_dir_all(&opts.out).map_err(io)?;
        let non_empty = std::fs::read_dir(&opts.out).map_err(io)?.next().is_some();
        if non_empty {
            return Err(SplitError::OutNotEmpty(opts.out.clone()));
        }
        for k in 0..n {
            let path = shard_path(&opts.out, &opts.table, k);
            let conn = open_shard(&path)?;
            let err = sql_err(&path);
            let tx = conn.unchecked_transaction().map_err(&err)?;
            tx.execute_batch(&src.create).map_err(&err)?;
            tx.execute_batch(SHARD_META).map_err(&err)?;
            for (key, value) in ident.iter().chain(&[("shard", k.to_string())]) {
                tx.execute(
                    "INSERT INTO strata_split (key, value) VALUES (?1, ?2)",
                    params![key, value],
                )
                .map_err(&err)?;
            }
            for (r, (after, through)) in ranges.iter().enumerate() {
                tx.execute(
                    "INSERT INTO strata_split_progress (reader, after, through, done_through, \
                     rows) VALUES (?1, ?2, ?3, ?2, 0)",
                    params![r as i64, after, through],
                )
                .map_err(&err)?;
            }
            tx.commit().map_err(&err)?;
            done.push(ranges.iter().map(|r| r.0).collect());
            rows.push(0);
        }
        // Every shard exists: the split has begun (written aside, then renamed in place).
        let ident_text: String = ident.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let aside = opts.out.join(format!(".{}.strata-split.tmp", opts.table));
        std::fs::write(&aside, ident_text).map_err(io)?;
        std::fs::rename(&aside, &marker).map_err(io)?;
        return Ok(Checkpoints { done, rows });
    }
    for k in 0..n {
        let path = shard_path(&opts.out, &opts.table, k);
        if !path.exists() {
            return Err(if k == 0 {
                SplitError::NothingToResume(opts.out.clone())
            } else {
                SplitError::BadOptions(format!(
                    "{} is missing: the split in {} is damaged; split into an empty directory",
                    path.display(),
                    opts.out.display()
                ))
            });
        }
        let conn = open_shard(&path)?;
        let err = sql_err(&path);
        let stored: Vec<(String, String)> = conn
            .prepare("SELECT key, value FROM strata_split")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(&err)?;
        for (what, now) in &ident {
            let was = stored
                .iter()
                .find(|(k, _)| k == what)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if &was != now {
                return Err(SplitError::ResumeMismatch {
                    path: path.clone(),
                    what,
                    was,
                    now: now.clone(),
                });
            }
        }
        let progress: Vec<(i64, i64)> = conn
            .prepare("SELECT done_through, rows FROM strata_split_progress ORDER BY reader")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(&err)?;
        done.push(progress.iter().map(|p| p.0).collect());
        rows.push(progress.iter().map(|p| p.1 as u64).sum());
    }
    Ok(Checkpoints { done, rows })
}

/// Rows for one shard from one reader batch, encoded back to back, and the rowid the reader
/// has read through.
struct Chunk {
    reader: usize,
    through: i64,
    rows: usize,
    data: Vec<u8>,
}

/// Appends a value: a tag, then its bytes.
pub(crate) fn encode(out: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push(0),
        ValueRef::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            out.push(2);
            out.extend_from_slice(&f.to_le_bytes());
        }
        ValueRef::Text(t) => {
            out.push(3);
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(t);
        }
        ValueRef::Blob(b) => {
            out.push(4);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// Reads one value encoded by [`encode`] at `*at`.
fn decode<'a>(data: &'a [u8], at: &mut usize) -> ValueRef<'a> {
    let tag = data[*at];
    *at += 1;
    let mut take = |n: usize| {
        let s = &data[*at..*at + n];
        *at += n;
        s
    };
    match tag {
        1 => ValueRef::Integer(i64::from_le_bytes(take(8).try_into().unwrap_or_default())),
        2 => ValueRef::Real(f64::from_le_bytes(take(8).try_into().unwrap_or_default())),
        3 | 4 => {
            let len = u32::from_le_bytes(take(4).try_into().unwrap_or_default()) as usize;
            let bytes = take(len);
            if tag == 3 {
                ValueRef::Text(bytes)
            } else {
                ValueRef::Blob(bytes)
            }
        }
        _ => ValueRef::Null,
    }
}

/// Progress, for bars and logs.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Rows committed in the shards (including those of earlier runs, when resuming).
    pub rows: u64,
    /// Rows in the source table, counted when this run started.
    pub total: u64,
    /// Rows committed per shard, indexed by shard number (the last is the reserved shard).
    pub per_shard: Vec<u64>,
    /// Seconds since this run started (not counting earlier runs, when resuming).
    pub elapsed_s: f64,
}

/// What a split did.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// Rows in the shards, which is every source row (including those of earlier runs, when
    /// resuming).
    pub rows: u64,
    /// Rows per shard, indexed by shard number (the last is the reserved shard).
    pub per_shard: Vec<u64>,
    /// The shard files, in shard order ([`shard_path`]).
    pub files: Vec<PathBuf>,
    /// Wall-clock seconds of this run, index builds included.
    pub duration_s: f64,
    /// `rows` over `duration_s` (so rows of earlier runs count, when resuming).
    pub rows_per_s: f64,
    /// Whether this run continued an earlier one (`--resume`).
    pub resumed: bool,
}

/// Splits the table (see the module documentation). `stop` set (by Ctrl-C) makes the
/// readers finish their batch and the writers commit and stop: the result is
/// [`SplitError::Interrupted`], and `resume` continues. `progress` is called about every
/// `every`.
pub fn split(
    opts: &SplitOptions,
    stop: &AtomicBool,
    every: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<SplitReport> {
    if opts.shards == 0 || opts.readers == 0 || opts.batch == 0 {
        return Err(SplitError::BadOptions(
            "--shards, --readers and --batch must be at least 1".into(),
        ));
    }
    let started = Instant::now();
    let conn = open_source(&opts.source)?;
    let src = inspect(&conn, opts)?;
    drop(conn);
    let checkpoints = prepare_shards(opts, &src)?;
    let n = (opts.shards + 1) as usize;
    let committed: Arc<Vec<AtomicU64>> = Arc::new(
        checkpoints
            .rows
            .iter()
            .map(|r| AtomicU64::new(*r))
            .collect(),
    );
    let ranges = ranges(&src, opts.readers);
    // Each reader resumes after the smallest checkpoint any shard has for it.
    let starts: Vec<i64> = (0..ranges.len())
        .map(|r| {
            checkpoints
                .done
                .iter()
                .map(|d| d[r])
                .min()
                .unwrap_or(ranges[r].0)
        })
        .collect();
    let done = Arc::new(checkpoints.done);
    let src = &src;
    std::thread::scope(|scope| -> Result<SplitReport> {
        let mut senders = Vec::with_capacity(n);
        let mut writers = Vec::with_capacity(n);
        for k in 0..n {
            // Bounded: memory stays flat however far the readers get ahead.
            let (tx, rx) = mpsc::sync_channel::<Chunk>(8);
            senders.push(tx);
            let (committed, done) = (Arc::clone(&committed), Arc::clone(&done));
            let path = shard_path(&opts.out, &opts.table, k as u32);
            writers.push(
                scope.spawn(move || write_shard(&path, opts, src, &done[k], rx, &committed[k])),
            );
        }
        let mut readers = Vec::new();
        for (r, &(_, through)) in ranges.iter().enumerate() {
            let senders = senders.clone();
            let done = Arc::clone(&done);
            let start = starts[r];
            readers
                .push(scope.spawn(move || {
                    read_range(opts, src, r, start, through, &done, &senders, stop)
                }));
        }
        drop(senders);
        // Progress while the threads work.
        let mut last = Instant::now();
        while !readers
            .iter()
            .all(std::thread::ScopedJoinHandle::is_finished)
            || !writers
                .iter()
                .all(std::thread::ScopedJoinHandle::is_finished)
        {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= every {
                last = Instant::now();
                progress(&snapshot(&committed, src.rows, started));
            }
        }
        let mut first_error = None;
        let mut all_read = true;
        for h in readers {
            match h.join() {
                Ok(Ok(finished)) => all_read &= finished,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(SplitError::Thread("reader", "panicked".into()));
                }
            }
        }
        for h in writers {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(SplitError::Thread("writer", "panicked".into()));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if !all_read {
            return Err(SplitError::Interrupted);
        }
        // Indexes after the load, then one file per shard (WAL folded in).
        let files: Vec<PathBuf> = (0..n as u32)
            .map(|k| shard_path(&opts.out, &opts.table, k))
            .collect();
        let finishing: Vec<_> = files
            .iter()
            .cloned()
            .map(|path| scope.spawn(move || finish_shard(&path, &src.indexes)))
            .collect();
        for h in finishing {
            h.join()
                .map_err(|_| SplitError::Thread("index", "panicked".into()))??;
        }
        let last = snapshot(&committed, src.rows, started);
        progress(&last);
        let secs = started.elapsed().as_secs_f64();
        Ok(SplitReport {
            rows: last.rows,
            per_shard: last.per_shard,
            files,
            duration_s: secs,
            rows_per_s: last.rows as f64 / secs.max(1e-9),
            resumed: opts.resume,
        })
    })
}

fn snapshot(committed: &[AtomicU64], total: u64, started: Instant) -> Progress {
    let per_shard: Vec<u64> = committed
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    Progress {
        rows: per_shard.iter().sum(),
        total,
        per_shard,
        elapsed_s: started.elapsed().as_secs_f64(),
    }
}

/// Streams rows `(start, through]` of the reader's range in rowid order, routing each to its
/// shard, and sends every shard its rows and the rowid read through after each batch. Returns
/// whether it read its whole range (false: stopped).
#[allow(clippy::too_many_arguments)]
fn read_range(
    opts: &SplitOptions,
    src: &Source,
    reader: usize,
    start: i64,
    through: i64,
    done: &[Vec<i64>],
    senders: &[mpsc::SyncSender<Chunk>],
    stop: &AtomicBool,
) -> Result<bool> {
    let n = senders.len();
    let conn = open_source(&opts.source)?;
    let err = sql_err(&opts.source);
    let columns = src.column_list();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT rowid, {columns} FROM {} WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid",
            quote(&opts.table)
        ))
        .map_err(&err)?;
    // Reals are rendered as text by SQLite itself, as `CAST(key AS TEXT)` would.
    let mut real_text = conn.prepare("SELECT CAST(?1 AS TEXT)").map_err(&err)?;
    let key_at = 1 + src
        .columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(&opts.key))
        .unwrap_or_default();
    let width = src.columns.len();
    let with_rowid = src.rowid_alias.is_none();
    let router = Router::new(opts.shards, opts.placement);
    let mut rows = stmt.query(params![start, through]).map_err(&err)?;
    let mut pending: Vec<(usize, Vec<u8>)> = (0..n).map(|_| (0, Vec::new())).collect();
    let mut in_batch = 0usize;
    let mut last = start;
    // Sends each shard its rows and the rowid read through; false if a writer is gone (it
    // failed, and its error is what gets reported).
    let flush = |pending: &mut Vec<(usize, Vec<u8>)>, last: i64| -> bool {
        pending.iter_mut().enumerate().all(|(k, slot)| {
            let (rows, data) = std::mem::take(slot);
            let chunk = Chunk {
                reader,
                through: last,
                rows,
                data,
            };
            senders[k].send(chunk).is_ok()
        })
    };
    while let Some(row) = rows.next().map_err(&err)? {
        let rowid: i64 = row.get(0).map_err(&err)?;
        let k = match row.get_ref(key_at).map_err(&err)? {
            ValueRef::Text(t) | ValueRef::Blob(t) => router.route(Some(t)),
            ValueRef::Null => router.route(None),
            ValueRef::Integer(i) => {
                let mut digits = [0u8; 24];
                let mut cursor = std::io::Cursor::new(&mut digits[..]);
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{i}"));
                let len = cursor.position() as usize;
                router.route(Some(&digits[..len]))
            }
            ValueRef::Real(f) => {
                let text: String = real_text.query_row([f], |r| r.get(0)).map_err(&err)?;
                router.route(Some(text.as_bytes()))
            }
        } as usize;
        if rowid > done[k][reader] {
            let (count, data) = &mut pending[k];
            if with_rowid {
                encode(data, ValueRef::Integer(rowid));
            }
            for i in 0..width {
                encode(data, row.get_ref(i + 1).map_err(&err)?);
            }
            *count += 1;
        }
        last = rowid;
        in_batch += 1;
        if in_batch >= opts.batch {
            if !flush(&mut pending, last) {
                return Ok(false);
            }
            in_batch = 0;
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
        }
    }
    // The whole range is read: everything through its end.
    Ok(flush(&mut pending, through.max(last)))
}

/// Inserts the chunks for shard `k`, committing at chunk boundaries about every `batch` rows,
/// the checkpoint in the same transaction.
fn write_shard(
    path: &Path,
    opts: &SplitOptions,
    src: &Source,
    done: &[i64],
    rx: mpsc::Receiver<Chunk>,
    committed: &AtomicU64,
) -> Result<()> {
    let conn = open_shard_for_load(path)?;
    let err = sql_err(path);
    let mut columns: Vec<String> = src.columns.iter().map(|c| quote(c)).collect();
    if src.rowid_alias.is_none() {
        columns.insert(0, "rowid".into());
    }
    let marks = (1..=columns.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let insert_sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        quote(&opts.table),
        columns.join(", ")
    );
    let width = columns.len();
    let mut through = done.to_vec();
    let mut since_commit = 0usize;
    // Rows in the open transaction, per reader.
    let mut rows_in_tx = vec![0u64; done.len()];
    let mut dirty = false;
    conn.execute_batch("BEGIN").map_err(&err)?;
    let commit = |through: &[i64], rows_in_tx: &mut [u64]| -> Result<()> {
        let mut up = conn
            .prepare_cached(
                "UPDATE strata_split_progress SET done_through = ?2, rows = rows + ?3 \
                 WHERE reader = ?1",
            )
            .map_err(&err)?;
        for (r, t) in through.iter().enumerate() {
            up.execute(params![r as i64, t, rows_in_tx[r] as i64])
                .map_err(&err)?;
        }
        drop(up);
        conn.execute_batch("COMMIT; BEGIN").map_err(&err)?;
        committed.fetch_add(rows_in_tx.iter().sum(), Ordering::Relaxed);
        rows_in_tx.fill(0);
        Ok(())
    };
    {
        let mut insert = conn.prepare(&insert_sql).map_err(&err)?;
        for chunk in rx {
            let mut at = 0;
            for _ in 0..chunk.rows {
                for i in 0..width {
                    insert
                        .raw_bind_parameter(
                            i + 1,
                            rusqlite::types::ToSqlOutput::Borrowed(decode(&chunk.data, &mut at)),
                        )
                        .map_err(&err)?;
                }
                insert.raw_execute().map_err(&err)?;
            }
            // A resumed reader catching up sends boundaries this shard has passed already:
            // its checkpoint only ever moves forward.
            through[chunk.reader] = through[chunk.reader].max(chunk.through);
            since_commit += chunk.rows.max(1);
            rows_in_tx[chunk.reader] += chunk.rows as u64;
            dirty = true;
            if since_commit >= opts.batch {
                commit(&through, &mut rows_in_tx)?;
                since_commit = 0;
                dirty = false;
            }
        }
    }
    if dirty {
        commit(&through, &mut rows_in_tx)?;
    }
    conn.execute_batch("COMMIT").map_err(&err)?;
    Ok(())
}

/// Builds the indexes of a loaded shard, marks it complete and removes its journal.
fn finish_shard(path: &Path, indexes: &[String]) -> Result<()> {
    let conn = open_shard_for_load(path)?;
    let err = sql_err(path);
    let tx = conn.unchecked_transaction().map_err(&err)?;
    for sql in indexes {
        let sql = sql
            .replacen("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
            .replacen(
                "CREATE UNIQUE INDEX",
                "CREATE UNIQUE INDEX IF NOT EXISTS",
                1,
            );
        tx.execute_batch(&sql).map_err(&err)?;
    }
    tx.execute(
        "INSERT INTO strata_split (key, value) VALUES ('complete', '1') \
         ON CONFLICT (key) DO UPDATE SET value = '1'",
        [],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(&err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_encoding() {
        let values = [
            ValueRef::Null,
            ValueRef::Integer(-7),
            ValueRef::Real(1.5),
            ValueRef::Text(b"hi"),
            ValueRef::Blob(&[0, 1, 2]),
        ];
        let mut buf = Vec::new();
        for v in values {
            encode(&mut buf, v);
        }
        let mut at = 0;
        for v in values {
            assert_eq!(decode(&buf, &mut at), v);
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn ranges_cover_every_rowid_once() {
        let src = Source {
            create: String::new(),
            indexes: Vec::new(),
            columns: Vec::new(),
            rowid_alias: None,
            rows: 10,
            min_rowid: 1,
            max_rowid: 10,
        };
        let r = ranges(&src, 3);
        assert_eq!(r.first().unwrap().0, 0);
        assert_eq!(r.last().unwrap().1, 10);
        assert!(r.windows(2).all(|w| w[0].1 == w[1].0));
    }
}
