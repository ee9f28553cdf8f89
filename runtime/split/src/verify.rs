//! Verification of a finished split against its source: row counts and content hashes.

use std::path::PathBuf;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::error::{Result, sql_err};
use crate::options::SplitOptions;
use crate::pipeline::{encode, shard_path};
use crate::route::shard_of;
use crate::source::{inspect, open_source, quote};

/// One shard's verification.
#[derive(Debug, Clone, Serialize)]
pub struct ShardCheck {
    /// The shard number: `0..shards`, or `shards` for the reserved shard.
    pub shard: u32,
    /// The shard's file ([`shard_path`]); it may not exist.
    pub path: PathBuf,
    /// Source rows that route to this shard.
    pub expected_rows: u64,
    /// Rows in the shard (0 if its file is missing).
    pub rows: u64,
    /// The content hash of the source rows that route to this shard: the sum of the rows'
    /// hashes modulo 2^61 - 1, as 16 hex digits.
    pub expected_hash: String,
    /// The content hash of the shard's rows, in the same form.
    pub hash: String,
    /// Whether the shard is marked complete (its load finished and its indexes are built).
    pub complete: bool,
    /// Whether the shard is complete and its row count and hash match the source's.
    pub ok: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Every shard's check, in shard order, the reserved shard last.
    pub shards: Vec<ShardCheck>,
    /// Whether every shard is ok.
    pub ok: bool,
}

/// A row's content hash (its rowid and values, encoded), the online engine's: sums modulo
/// [`MODULUS`] are order-independent.
use strata_online::hash::content_hash as row_hash;

const MODULUS: u64 = strata_online::hash::HASH_MODULUS;

/// Compares each shard with the source: row counts, and a content hash of every row (its
/// rowid and values) routed to it. Reads only.
pub fn verify(opts: &SplitOptions) -> Result<VerifyReport> {
    let conn = open_source(&opts.source)?;
    let src = inspect(&conn, opts)?;
    let err = sql_err(&opts.source);
    let n = (opts.shards + 1) as usize;
    let mut expected = vec![(0u64, 0u64); n];
    let columns = src.column_list();
    let width = src.columns.len();
    {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT rowid, {columns}, CAST({} AS TEXT) FROM {}",
                quote(&opts.key),
                quote(&opts.table)
            ))
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        let mut buf = Vec::new();
        while let Some(row) = rows.next().map_err(&err)? {
            let key = match row.get_ref(width + 1).map_err(&err)? {
                ValueRef::Text(t) | ValueRef::Blob(t) => Some(t),
                _ => None,
            };
            let k = shard_of(key, opts.shards, opts.placement) as usize;
            buf.clear();
            for i in 0..=width {
                encode(&mut buf, row.get_ref(i).map_err(&err)?);
            }
            expected[k].0 += 1;
            expected[k].1 = (expected[k].1 + row_hash(&buf)) % MODULUS;
        }
    }
    let mut shards = Vec::new();
    for (k, &(expected_rows, expected_hash)) in expected.iter().enumerate() {
        let path = shard_path(&opts.out, &opts.table, k as u32);
        let (rows, hash, complete) = if path.exists() {
            let shard = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(sql_err(&path))?;
            let e = sql_err(&path);
            let mut stmt = shard
                .prepare(&format!(
                    "SELECT rowid, {columns} FROM {}",
                    quote(&opts.table)
                ))
                .map_err(&e)?;
            let mut rows = stmt.query([]).map_err(&e)?;
            let (mut count, mut sum) = (0u64, 0u64);
            let mut buf = Vec::new();
            while let Some(row) = rows.next().map_err(&e)? {
                buf.clear();
                for i in 0..=width {
                    encode(&mut buf, row.get_ref(i).map_err(&e)?);
                }
                count += 1;
                sum = (sum + row_hash(&buf)) % MODULUS;
            }
            let complete = shard
                .query_row(
                    "SELECT value FROM strata_split WHERE key = 'complete'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .ok()
                .flatten()
                .is_some();
            (count, sum, complete)
        } else {
            (0, 0, false)
        };
        let ok = rows == expected_rows && hash == expected_hash && complete;
        shards.push(ShardCheck {
            shard: k as u32,
            path,
            expected_rows,
            rows,
            expected_hash: format!("{expected_hash:016x}"),
            hash: format!("{hash:016x}"),
            complete,
            ok,
        });
    }
    let ok = shards.iter().all(|s| s.ok);
    Ok(VerifyReport { shards, ok })
}
