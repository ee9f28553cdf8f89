//! Reading a live schema: a canonical dump for review, and a structural diff that names each
//! difference (missing table, extra column, changed type, missing index, ...).

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::Connection;
use serde::Serialize;

use crate::error::Result;

/// A column as SQLite reports it (`PRAGMA table_xinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    /// The column's name.
    pub name: String,
    /// The declared type as written (`TEXT`, `VARCHAR(100)`); empty when none was declared.
    pub sql_type: String,
    /// Whether it is `NOT NULL`; also true for an `INTEGER PRIMARY KEY` (the rowid), which
    /// cannot hold NULL either way.
    pub not_null: bool,
    /// The default as SQL text, as written (`0`, `'untitled'`, `CURRENT_TIMESTAMP`); `None`
    /// without a default.
    pub default: Option<String>,
    /// Position in the primary key (0 when not part of it).
    pub primary_key: i64,
    /// SQLite's `hidden`: 0 for an ordinary column, 1 for a hidden column of a virtual table,
    /// 2 for a virtual generated column, 3 for a stored generated column.
    pub hidden: i64,
}

/// An index (`PRAGMA index_list` + `index_xinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexInfo {
    /// The index's name (`sqlite_autoindex_*` for those SQLite makes for constraints).
    pub name: String,
    /// The table it indexes.
    pub table: String,
    /// Whether it is unique.
    pub unique: bool,
    /// The indexed columns, in index order; `<expr>` for an indexed expression.
    pub columns: Vec<String>,
    /// `c` created by CREATE INDEX, `u` by a UNIQUE constraint, `pk` by the primary key.
    pub origin: String,
    /// Whether it is a partial index (has a `WHERE` clause).
    pub partial: bool,
}

/// A foreign key (`PRAGMA foreign_key_list`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ForeignKeyInfo {
    /// The referencing columns of this table, in key order.
    pub from: Vec<String>,
    /// The referenced (parent) table.
    pub table: String,
    /// The referenced columns, pairwise with `from`; empty strings when the key names none
    /// (it then references the parent's primary key).
    pub to: Vec<String>,
    /// The `ON UPDATE` action as SQLite names it: `NO ACTION`, `CASCADE`, `RESTRICT`,
    /// `SET NULL` or `SET DEFAULT`.
    pub on_update: String,
    /// The `ON DELETE` action, named as `on_update`'s.
    pub on_delete: String,
}

/// A table's structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// The table's name.
    pub name: String,
    /// Its columns in declaration order, hidden and generated ones included.
    pub columns: Vec<ColumnInfo>,
    /// Its foreign keys, in SQLite's order (`PRAGMA foreign_key_list` ids).
    pub foreign_keys: Vec<ForeignKeyInfo>,
}

/// The schema of a database, without Strata's and SQLite's own tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaSnapshot {
    /// Tables by name.
    pub tables: BTreeMap<String, TableInfo>,
    /// Indexes by name, those SQLite makes for UNIQUE and PRIMARY KEY constraints included
    /// (see [`IndexInfo::origin`]).
    pub indexes: BTreeMap<String, IndexInfo>,
    /// Views by name, as normalised SQL.
    pub views: BTreeMap<String, String>,
    /// Triggers by name, as normalised SQL.
    pub triggers: BTreeMap<String, String>,
    /// Every object's normalised SQL, keyed by (kind order, name), for the dump.
    sql: BTreeMap<(u8, String), String>,
}

fn own_object(name: &str) -> bool {
    name.starts_with("sqlite_") || name.starts_with("strata_")
}

/// Copies `sql`, passing each character outside quoted text (including the opening quote) to
/// `f`, and copying quoted text as it is.
fn rewrite_unquoted(sql: &str, mut f: impl FnMut(char, &mut String)) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        f(c, &mut out);
        if matches!(c, '\'' | '"' | '`' | '[') {
            quote = Some(if c == '[' { ']' } else { c });
        }
    }
    out
}

/// `CREATE TABLE t(a, b)` as `CREATE TABLE t(\n  a,\n  b\n)`, so that a changed column is one
/// changed line in a reviewed dump. `sql` is normalised.
fn one_column_per_line(sql: &str) -> String {
    let mut depth = 0usize;
    rewrite_unquoted(sql, |c, out| match c {
        '(' => {
            depth += 1;
            out.push(c);
            if depth == 1 {
                out.push_str("\n  ");
            }
        }
        ')' => {
            if depth == 1 {
                out.push('\n');
            }
            depth = depth.saturating_sub(1);
            out.push(c);
        }
        ',' if depth == 1 => out.push_str(",\n "),
        _ => out.push(c),
    })
}

/// Collapses whitespace outside quotes, drops it around parentheses and before commas, so that
/// the same schema written differently dumps the same.
pub fn normalize_sql(sql: &str) -> String {
    let mut pending_space = false;
    rewrite_unquoted(sql, |c, out| {
        if c.is_whitespace() {
            pending_space = true;
            return;
        }
        let tight = matches!(c, '(' | ')' | ',') || out.ends_with('(') || out.is_empty();
        if pending_space && !tight {
            out.push(' ');
        }
        pending_space = c == ',';
        out.push(c);
    })
}

impl SchemaSnapshot {
    /// Reads the schema of `conn`'s main database.
    pub fn read(conn: &Connection) -> Result<SchemaSnapshot> {
        let mut snap = SchemaSnapshot::default();
        let objects: Vec<(String, String, String, Option<String>)> = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (kind, name, table, sql) in objects {
            if own_object(&name) || own_object(&table) {
                continue;
            }
            let order = match kind.as_str() {
                "table" => 0,
                "index" => 1,
                "view" => 2,
                _ => 3,
            };
            if let Some(sql) = &sql {
                snap.sql.insert((order, name.clone()), normalize_sql(sql));
            }
            match kind.as_str() {
                "table" => {
                    snap.tables.insert(name.clone(), table_info(conn, &name)?);
                }
                "view" => {
                    snap.views
                        .insert(name, normalize_sql(sql.as_deref().unwrap_or("")));
                }
                "trigger" => {
                    snap.triggers
                        .insert(name, normalize_sql(sql.as_deref().unwrap_or("")));
                }
                _ => {}
            }
        }
        let tables: Vec<String> = snap.tables.keys().cloned().collect();
        for table in tables {
            for index in index_infos(conn, &table)? {
                snap.indexes.insert(index.name.clone(), index);
            }
        }
        Ok(snap)
    }

    /// The canonical dump: each object's normalised SQL, tables first, then indexes, views and
    /// triggers, each group sorted by name.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for ((order, _), sql) in &self.sql {
            match order {
                0 => out.push_str(&one_column_per_line(sql)),
                _ => out.push_str(sql),
            }
            out.push_str(";\n");
        }
        out
    }

    /// What differs from `expected` to `self`, named object by object; empty when they agree.
    pub fn diff(&self, expected: &SchemaSnapshot) -> Vec<Difference> {
        let mut out = Vec::new();
        for (name, want) in &expected.tables {
            match self.tables.get(name) {
                None => out.push(Difference::MissingTable(name.clone())),
                Some(have) => diff_table(want, have, &mut out),
            }
        }
        for name in self
            .tables
            .keys()
            .filter(|n| !expected.tables.contains_key(*n))
        {
            out.push(Difference::UnexpectedTable(name.clone()));
        }
        // Indexes SQLite makes for PRIMARY KEY and UNIQUE constraints are covered by the
        // columns; compare the ones created explicitly.
        let explicit = |s: &SchemaSnapshot| -> BTreeMap<String, IndexInfo> {
            s.indexes
                .iter()
                .filter(|(_, i)| i.origin == "c")
                .map(|(n, i)| (n.clone(), i.clone()))
                .collect()
        };
        let (want_idx, have_idx) = (explicit(expected), explicit(self));
        for (name, want) in &want_idx {
            match have_idx.get(name) {
                None => out.push(Difference::MissingIndex(name.clone())),
                Some(have) if have != want => out.push(Difference::ChangedIndex {
                    name: name.clone(),
                    expected: describe_index(want),
                    found: describe_index(have),
                }),
                Some(_) => {}
            }
        }
        for name in have_idx.keys().filter(|n| !want_idx.contains_key(*n)) {
            out.push(Difference::UnexpectedIndex(name.clone()));
        }
        // UNIQUE constraints (SQLite's automatic indexes), compared by their columns.
        let uniques = |s: &SchemaSnapshot, table: &str| -> Vec<Vec<String>> {
            let mut u: Vec<Vec<String>> = s
                .indexes
                .values()
                .filter(|i| i.table == table && i.origin == "u")
                .map(|i| i.columns.clone())
                .collect();
            u.sort();
            u
        };
        for table in expected
            .tables
            .keys()
            .filter(|t| self.tables.contains_key(*t))
        {
            let (want, have) = (uniques(expected, table), uniques(self, table));
            if want != have {
                let show = |u: &[Vec<String>]| {
                    let parts: Vec<String> =
                        u.iter().map(|c| format!("({})", c.join(", "))).collect();
                    if parts.is_empty() {
                        "none".to_string()
                    } else {
                        parts.join(" ")
                    }
                };
                out.push(Difference::ChangedUnique {
                    table: table.clone(),
                    expected: show(&want),
                    found: show(&have),
                });
            }
        }
        for (kind, want_map, have_map) in [
            ("view", &expected.views, &self.views),
            ("trigger", &expected.triggers, &self.triggers),
        ] {
            for (name, want) in want_map {
                match have_map.get(name) {
                    None => out.push(Difference::Missing {
                        kind,
                        name: name.clone(),
                    }),
                    Some(have) if have != want => out.push(Difference::Changed {
                        kind,
                        name: name.clone(),
                    }),
                    Some(_) => {}
                }
            }
            for name in have_map.keys().filter(|n| !want_map.contains_key(*n)) {
                out.push(Difference::Unexpected {
                    kind,
                    name: name.clone(),
                });
            }
        }
        out
    }
}

fn describe_index(i: &IndexInfo) -> String {
    format!(
        "{}({}){}",
        if i.unique { "UNIQUE " } else { "" },
        i.columns.join(", "),
        if i.partial { " WHERE .." } else { "" }
    )
}

fn diff_table(want: &TableInfo, have: &TableInfo, out: &mut Vec<Difference>) {
    let t = &want.name;
    for wc in &want.columns {
        let Some(hc) = have.columns.iter().find(|c| c.name == wc.name) else {
            out.push(Difference::MissingColumn {
                table: t.clone(),
                column: wc.name.clone(),
            });
            continue;
        };
        let mut changed = |what: &'static str, expected: String, found: String| {
            out.push(Difference::ChangedColumn {
                table: t.clone(),
                column: wc.name.clone(),
                what,
                expected,
                found,
            });
        };
        if !wc.sql_type.eq_ignore_ascii_case(&hc.sql_type) {
            changed("type", wc.sql_type.clone(), hc.sql_type.clone());
        }
        if wc.not_null != hc.not_null {
            let label = |n: bool| if n { "NOT NULL" } else { "nullable" }.to_string();
            changed("nullability", label(wc.not_null), label(hc.not_null));
        }
        if wc.default != hc.default {
            let label = |d: &Option<String>| d.clone().unwrap_or_else(|| "no default".into());
            changed("default", label(&wc.default), label(&hc.default));
        }
        if wc.primary_key != hc.primary_key {
            let label = |p: i64| {
                if p == 0 {
                    "not in the primary key".into()
                } else {
                    format!("primary key part {p}")
                }
            };
            changed("primary key", label(wc.primary_key), label(hc.primary_key));
        }
    }
    for hc in have
        .columns
        .iter()
        .filter(|hc| !want.columns.iter().any(|wc| wc.name == hc.name))
    {
        out.push(Difference::UnexpectedColumn {
            table: t.clone(),
            column: hc.name.clone(),
        });
    }
    let (mut wf, mut hf) = (want.foreign_keys.clone(), have.foreign_keys.clone());
    wf.sort();
    hf.sort();
    if wf != hf {
        out.push(Difference::ChangedForeignKeys { table: t.clone() });
    }
}

fn table_info(conn: &Connection, table: &str) -> Result<TableInfo> {
    let columns = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?
        .query_map([table], |r| {
            Ok(ColumnInfo {
                name: r.get(0)?,
                sql_type: r.get(1)?,
                not_null: r.get(2)?,
                default: r.get(3)?,
                primary_key: r.get(4)?,
                hidden: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // An INTEGER PRIMARY KEY is the rowid: it cannot hold NULL whether or not it says NOT NULL.
    let mut columns: Vec<ColumnInfo> = columns;
    if columns.iter().filter(|c| c.primary_key > 0).count() == 1 {
        for c in columns.iter_mut().filter(|c| c.primary_key > 0) {
            if c.sql_type.eq_ignore_ascii_case("INTEGER") {
                c.not_null = true;
            }
        }
    }
    let rows: Vec<(i64, String, String, Option<String>, String, String)> = conn
        .prepare("SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut fks: BTreeMap<i64, ForeignKeyInfo> = BTreeMap::new();
    for (id, parent, from, to, on_update, on_delete) in rows {
        let fk = fks.entry(id).or_insert_with(|| ForeignKeyInfo {
            from: Vec::new(),
            table: parent,
            to: Vec::new(),
            on_update,
            on_delete,
        });
        fk.from.push(from);
        fk.to.push(to.unwrap_or_default());
    }
    Ok(TableInfo {
        name: table.to_string(),
        columns,
        foreign_keys: fks.into_values().collect(),
    })
}

fn index_infos(conn: &Connection, table: &str) -> Result<Vec<IndexInfo>> {
    let list: Vec<(String, bool, String, bool)> = conn
        .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")?
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (name, unique, origin, partial) in list {
        let columns: Vec<String> = conn
            .prepare("SELECT coalesce(name, '<expr>') FROM pragma_index_info(?1) ORDER BY seqno")?
            .query_map([&name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.push(IndexInfo {
            name,
            table: table.to_string(),
            unique,
            columns,
            origin,
            partial,
        });
    }
    Ok(out)
}

/// A table's or an index's name as `{"name": ..}` (an internally tagged enum cannot hold a bare
/// string).
fn named<S: serde::Serializer>(name: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("Difference", 1)?;
    st.serialize_field("name", name)?;
    st.end()
}

/// One way a live schema differs from the expected one. In JSON, an object with its kind in
/// `difference` and its fields (`name` for a table or an index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "difference", rename_all = "snake_case")]
pub enum Difference {
    /// An expected table is missing.
    #[serde(serialize_with = "named")]
    MissingTable(String),
    /// The live schema has a table the expected one does not.
    #[serde(serialize_with = "named")]
    UnexpectedTable(String),
    /// A table lacks an expected column.
    MissingColumn {
        /// The table.
        table: String,
        /// The missing column.
        column: String,
    },
    /// A table has a column the expected schema does not.
    UnexpectedColumn {
        /// The table.
        table: String,
        /// The unexpected column.
        column: String,
    },
    /// A column differs in one respect (one difference per respect that differs).
    ChangedColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The respect: `type`, `nullability`, `default` or `primary key`.
        what: &'static str,
        /// The expected value as text: a type, `NOT NULL` or `nullable`, a default or
        /// `no default`, `primary key part N` or `not in the primary key`.
        expected: String,
        /// The live value, in the same form.
        found: String,
    },
    /// A table's foreign keys differ (compared as a set, actions included).
    ChangedForeignKeys {
        /// The table.
        table: String,
    },
    /// A table's UNIQUE constraints differ (compared by their columns).
    ChangedUnique {
        /// The table.
        table: String,
        /// The expected constraints' columns, as `(a, b) (c)`, or `none`.
        expected: String,
        /// The live constraints' columns, in the same form.
        found: String,
    },
    /// An expected index (created by `CREATE INDEX`) is missing.
    #[serde(serialize_with = "named")]
    MissingIndex(String),
    /// The live schema has an index (created by `CREATE INDEX`) the expected one does not.
    #[serde(serialize_with = "named")]
    UnexpectedIndex(String),
    /// An index created by `CREATE INDEX` differs: its table, columns, uniqueness or
    /// partiality.
    ChangedIndex {
        /// The index.
        name: String,
        /// The expected index, as `UNIQUE (a, b) WHERE ..` (`UNIQUE` and `WHERE ..` when
        /// they apply).
        expected: String,
        /// The live index, in the same form.
        found: String,
    },
    /// An expected view or trigger is missing.
    Missing {
        /// `view` or `trigger`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The live schema has a view or trigger the expected one does not.
    Unexpected {
        /// `view` or `trigger`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A view or trigger differs: its normalised SQL is not the expected one.
    Changed {
        /// `view` or `trigger`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::MissingTable(t) => write!(f, "missing table `{t}`"),
            Difference::UnexpectedTable(t) => write!(f, "unexpected table `{t}`"),
            Difference::MissingColumn { table, column } => {
                write!(f, "table `{table}`: missing column `{column}`")
            }
            Difference::UnexpectedColumn { table, column } => {
                write!(f, "table `{table}`: unexpected column `{column}`")
            }
            Difference::ChangedColumn {
                table,
                column,
                what,
                expected,
                found,
            } => write!(
                f,
                "table `{table}`: column `{column}` has {what} {found}, expected {expected}"
            ),
            Difference::ChangedForeignKeys { table } => {
                write!(f, "table `{table}`: foreign keys differ")
            }
            Difference::ChangedUnique {
                table,
                expected,
                found,
            } => {
                write!(
                    f,
                    "table `{table}`: UNIQUE constraints are {found}, expected {expected}"
                )
            }
            Difference::MissingIndex(i) => write!(f, "missing index `{i}`"),
            Difference::UnexpectedIndex(i) => write!(f, "unexpected index `{i}`"),
            Difference::ChangedIndex {
                name,
                expected,
                found,
            } => {
                write!(f, "index `{name}` is on {found}, expected {expected}")
            }
            Difference::Missing { kind, name } => write!(f, "missing {kind} `{name}`"),
            Difference::Unexpected { kind, name } => write!(f, "unexpected {kind} `{name}`"),
            Difference::Changed { kind, name } => write!(f, "{kind} `{name}` differs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_difference_serializes_to_json() {
        let all = [
            Difference::MissingTable("a".into()),
            Difference::UnexpectedTable("stray".into()),
            Difference::MissingIndex("i".into()),
            Difference::UnexpectedIndex("j".into()),
            Difference::ChangedForeignKeys { table: "a".into() },
        ];
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(
            json[1],
            serde_json::json!({"difference": "unexpected_table", "name": "stray"})
        );
        assert_eq!(json[2]["name"], "i");
    }

    fn snap(sql: &str) -> SchemaSnapshot {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        SchemaSnapshot::read(&conn).unwrap()
    }

    #[test]
    fn layout_does_not_matter_and_own_tables_are_ignored() {
        let a = snap(
            "CREATE TABLE t (a INTEGER PRIMARY KEY,  b TEXT NOT NULL);\nCREATE INDEX i ON t (b);",
        );
        let b = snap(
            "CREATE TABLE strata_x (k);\nCREATE TABLE t (\n  a INTEGER PRIMARY KEY,\n  b TEXT NOT NULL\n);\nCREATE INDEX i ON t(b);",
        );
        assert_eq!(a.dump(), b.dump());
        assert!(a.diff(&b).is_empty());
        assert_eq!(
            a.dump(),
            "CREATE TABLE t(\n  a INTEGER PRIMARY KEY,\n  b TEXT NOT NULL\n);\nCREATE INDEX i ON t(b);\n"
        );
    }

    #[test]
    fn names_each_difference() {
        let expected = snap(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL, c INTEGER);
             CREATE INDEX t_b ON t (b); CREATE TABLE gone (x);",
        );
        let live = snap(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b INTEGER, d TEXT);
             CREATE INDEX t_d ON t (d); CREATE TABLE extra (x);",
        );
        let found: Vec<String> = live
            .diff(&expected)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "missing table `gone`",
                "table `t`: column `b` has type INTEGER, expected TEXT",
                "table `t`: column `b` has nullability nullable, expected NOT NULL",
                "table `t`: missing column `c`",
                "table `t`: unexpected column `d`",
                "unexpected table `extra`",
                "missing index `t_b`",
                "unexpected index `t_d`",
            ]
        );
    }

    #[test]
    fn unique_constraints_are_compared() {
        let expected = snap("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT UNIQUE)");
        let live = snap("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)");
        let found: Vec<String> = live
            .diff(&expected)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            ["table `t`: UNIQUE constraints are none, expected (b)"]
        );
    }

    #[test]
    fn quoted_text_is_kept() {
        assert_eq!(
            normalize_sql("SELECT  'a   b' ,\"x  y\""),
            "SELECT 'a   b', \"x  y\""
        );
    }
}
