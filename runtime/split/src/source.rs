//! The source table: opening its database read-only and reading what it looks like.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Result, SplitError, sql_err};
use crate::options::SplitOptions;

pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What the source table looks like.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) create: String,
    pub(crate) indexes: Vec<String>,
    pub(crate) columns: Vec<String>,
    /// The column aliasing the rowid (`INTEGER PRIMARY KEY`), if any.
    pub(crate) rowid_alias: Option<usize>,
    pub(crate) rows: u64,
    pub(crate) min_rowid: i64,
    pub(crate) max_rowid: i64,
}

impl Source {
    /// The table's columns, quoted and comma-separated, for a `SELECT`.
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(crate) fn open_source(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(SplitError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such source database"),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(path))?;
    conn.execute_batch("PRAGMA cache_size = -8000;")
        .map_err(sql_err(path))?;
    Ok(conn)
}

pub(crate) fn inspect(conn: &Connection, opts: &SplitOptions) -> Result<Source> {
    let path = &opts.source;
    let err = sql_err(path);
    let create: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [&opts.table],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    let Some(create) = create else {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .map_err(&err)?;
        let tables: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(&err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(&err)?;
        return Err(SplitError::NoTable {
            path: path.clone(),
            table: opts.table.clone(),
            tables: if tables.is_empty() {
                "none".into()
            } else {
                tables.join(", ")
            },
        });
    };
    if create.to_ascii_uppercase().contains("WITHOUT ROWID") {
        return Err(SplitError::WithoutRowid(opts.table.clone()));
    }
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({})", quote(&opts.table)))
        .map_err(&err)?;
    let info: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(5)?)))
        .map_err(&err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(&err)?;
    let columns: Vec<String> = info.iter().map(|c| c.0.clone()).collect();
    if !columns.iter().any(|c| c.eq_ignore_ascii_case(&opts.key)) {
        return Err(SplitError::NoColumn {
            table: opts.table.clone(),
            column: opts.key.clone(),
            columns: columns.join(", "),
        });
    }
    let pk: Vec<usize> = (0..info.len()).filter(|&i| info[i].2 > 0).collect();
    let rowid_alias = match pk.as_slice() {
        [i] if info[*i].1.eq_ignore_ascii_case("INTEGER") => Some(*i),
        _ => None,
    };
    let mut stmt = conn
        .prepare(
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 \
             AND sql IS NOT NULL ORDER BY name",
        )
        .map_err(&err)?;
    let indexes: Vec<String> = stmt
        .query_map([&opts.table], |r| r.get(0))
        .map_err(&err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(&err)?;
    let (rows, min_rowid, max_rowid): (i64, Option<i64>, Option<i64>) = conn
        .query_row(
            &format!(
                "SELECT count(*), min(rowid), max(rowid) FROM {}",
                quote(&opts.table)
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(&err)?;
    Ok(Source {
        create,
        indexes,
        columns,
        rowid_alias,
        rows: rows as u64,
        min_rowid: min_rowid.unwrap_or(0),
        max_rowid: max_rowid.unwrap_or(0),
    })
}
