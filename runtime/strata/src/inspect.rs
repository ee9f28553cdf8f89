//! Reading a live schema: a canonical dump for review, and a structural diff that names each
//! difference (missing table, extra column, changed type, missing index, ...).

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::error::Result;
use crate::sqltext;

/// A column as SQLite reports it (`PRAGMA table_xinfo`), with what only its `CREATE TABLE`
/// text says (collation, generated expression, CHECK constraints).
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
    /// without a default. Compared normalised, without parentheses around all of it.
    pub default: Option<String>,
    /// Position in the primary key (0 when not part of it).
    pub primary_key: i64,
    /// SQLite's `hidden`: 0 for an ordinary column, 1 for a hidden column of a virtual table,
    /// 2 for a virtual generated column, 3 for a stored generated column.
    pub hidden: i64,
    /// `COLLATE name`, lowercased (`nocase`); `None` for the default, `binary`.
    pub collation: Option<String>,
    /// The expression of a generated column, normalised ([`crate::sqltext::normalize_expr`]);
    /// its kind is in [`hidden`](Self::hidden).
    pub generated: Option<String>,
    /// The column's own `CHECK` constraints, normalised.
    pub checks: Vec<String>,
}

/// One term of an index (`PRAGMA index_xinfo`, key columns only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexTerm {
    /// The column's name; `<expr>` for an expression, `rowid` for the rowid.
    pub column: String,
    /// The indexed expression, normalised, when the term is one.
    pub expr: Option<String>,
    /// Whether it is in descending order.
    pub desc: bool,
    /// Its collation, lowercased (`binary`, `nocase`, ...).
    pub collation: String,
}

/// An index (`PRAGMA index_list` + `index_xinfo`, and the `CREATE INDEX` text).
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
    /// The terms, in index order: columns or expressions, with order and collation.
    pub terms: Vec<IndexTerm>,
    /// The condition of a partial index, normalised.
    pub where_clause: Option<String>,
}

/// A foreign key (`PRAGMA foreign_key_list`, and the `CREATE TABLE` text for deferral).
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
    /// The `MATCH` clause as SQLite reports it (`NONE` without one).
    pub match_type: String,
    /// Whether it is `DEFERRABLE INITIALLY DEFERRED` (checked at commit).
    pub deferred: bool,
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
    /// Whether it is a `STRICT` table.
    pub strict: bool,
    /// Whether it is a `WITHOUT ROWID` table.
    pub without_rowid: bool,
    /// Whether its primary key says `AUTOINCREMENT`.
    pub autoincrement: bool,
    /// Its table-level `CHECK` constraints, normalised (those of columns are on the columns).
    pub checks: Vec<String>,
    /// For a virtual table, its `CREATE VIRTUAL TABLE` statement, normalised.
    pub virtual_table: Option<String>,
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

/// Tables other tools keep their migration history in, and the tool: not part of the
/// application's schema.
pub(crate) const PEER_HISTORY_TABLES: &[(&str, &str)] = &[
    ("_sqlx_migrations", "sqlx"),
    ("refinery_schema_history", "refinery"),
    ("__diesel_schema_migrations", "diesel"),
    ("goose_db_version", "goose"),
    ("seaql_migrations", "SeaORM"),
];

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
        let mut index_sql: BTreeMap<String, String> = BTreeMap::new();
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
                    let info = table_info(conn, &name, sql.as_deref())?;
                    snap.tables.insert(name, info);
                }
                "index" => {
                    if let Some(sql) = sql {
                        index_sql.insert(name, sql);
                    }
                }
                "view" => {
                    snap.views.insert(
                        name,
                        sqltext::normalize_create(sql.as_deref().unwrap_or("")),
                    );
                }
                "trigger" => {
                    snap.triggers.insert(
                        name,
                        sqltext::normalize_create(sql.as_deref().unwrap_or("")),
                    );
                }
                _ => {}
            }
        }
        let tables: Vec<String> = snap.tables.keys().cloned().collect();
        for table in tables {
            for index in index_infos(conn, &table, &index_sql)? {
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
    /// Names, types, defaults and expressions are compared normalised
    /// ([`crate::sqltext`]): whitespace, case and quoting alone are no difference.
    ///
    /// Other tools' migration histories (`_sqlx_migrations`, `refinery_schema_history`, ..)
    /// are left out on both sides: a database that switched to Strata keeps them.
    pub fn diff(&self, expected: &SchemaSnapshot) -> Vec<Difference> {
        let (mine, theirs) = (
            self.without_peer_histories(),
            expected.without_peer_histories(),
        );
        mine.diff_all(&theirs)
    }

    /// This snapshot without other tools' history tables and their indexes.
    fn without_peer_histories(&self) -> SchemaSnapshot {
        let peer = |name: &str| {
            PEER_HISTORY_TABLES
                .iter()
                .any(|(t, _)| t.eq_ignore_ascii_case(name))
        };
        let mut out = self.clone();
        out.tables.retain(|name, _| !peer(name));
        out.indexes.retain(|_, i| !peer(&i.table));
        out
    }

    fn diff_all(&self, expected: &SchemaSnapshot) -> Vec<Difference> {
        let mut out = Vec::new();
        for (name, want) in &expected.tables {
            match lookup(&self.tables, name) {
                None => out.push(Difference::MissingTable(name.clone())),
                Some(have) => diff_table(want, have, expected, self, &mut out),
            }
        }
        for name in unmatched(&self.tables, &expected.tables) {
            out.push(Difference::UnexpectedTable(name.clone()));
        }
        // Indexes SQLite makes for PRIMARY KEY and UNIQUE constraints belong to their tables
        // (compared below); compare the ones created explicitly.
        let explicit = |s: &SchemaSnapshot| -> BTreeMap<String, IndexInfo> {
            s.indexes
                .iter()
                .filter(|(_, i)| i.origin == "c")
                .map(|(n, i)| (n.clone(), i.clone()))
                .collect()
        };
        let (want_idx, have_idx) = (explicit(expected), explicit(self));
        for (name, want) in &want_idx {
            match lookup(&have_idx, name) {
                None => out.push(Difference::MissingIndex(name.clone())),
                Some(have) => diff_index(want, have, &mut out),
            }
        }
        for name in unmatched(&have_idx, &want_idx) {
            out.push(Difference::UnexpectedIndex(name.clone()));
        }
        for (table, _) in expected
            .tables
            .iter()
            .filter(|(t, _)| lookup(&self.tables, t).is_some())
        {
            // UNIQUE constraints (SQLite's automatic indexes), compared by their terms.
            let (want, have) = (
                constraint_terms(expected, table, "u"),
                constraint_terms(self, table, "u"),
            );
            if want != have {
                out.push(Difference::ChangedUnique {
                    table: table.clone(),
                    expected: show_constraints(&want),
                    found: show_constraints(&have),
                });
            }
            // The primary key's order and collations (its columns are compared column by
            // column; whether it has an index at all follows from the table's kind).
            let (want, have) = (
                constraint_terms(expected, table, "pk"),
                constraint_terms(self, table, "pk"),
            );
            if !want.is_empty() && !have.is_empty() && want != have {
                out.push(Difference::ChangedPrimaryKey {
                    table: table.clone(),
                    expected: show_constraints(&want),
                    found: show_constraints(&have),
                });
            }
        }
        for (kind, want_map, have_map) in [
            ("view", &expected.views, &self.views),
            ("trigger", &expected.triggers, &self.triggers),
        ] {
            for (name, want) in want_map {
                match lookup(have_map, name) {
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
            for name in unmatched(have_map, want_map) {
                out.push(Difference::Unexpected {
                    kind,
                    name: name.clone(),
                });
            }
        }
        out
    }
}

/// `map[name]`, the name compared as SQLite compares identifiers (ignoring ASCII case).
fn lookup<'a, V>(map: &'a BTreeMap<String, V>, name: &str) -> Option<&'a V> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The names of `map` that `other` does not hold.
fn unmatched<'a, V, W>(
    map: &'a BTreeMap<String, V>,
    other: &'a BTreeMap<String, W>,
) -> impl Iterator<Item = &'a String> {
    map.keys().filter(|n| lookup(other, n).is_none())
}

/// A term as `name [COLLATE X] [DESC]` (the collation only when it is not `binary`).
fn describe_term(t: &IndexTerm) -> String {
    let mut s = t.expr.clone().unwrap_or_else(|| t.column.clone());
    if t.collation != "binary" {
        let _ = write!(s, " COLLATE {}", t.collation.to_ascii_uppercase());
    }
    if t.desc {
        s.push_str(" DESC");
    }
    s
}

fn describe_index(i: &IndexInfo) -> String {
    let terms: Vec<String> = i.terms.iter().map(describe_term).collect();
    let mut s = format!(
        "{}{}({})",
        if i.unique { "UNIQUE " } else { "" },
        i.table,
        terms.join(", ")
    );
    match &i.where_clause {
        Some(w) => {
            let _ = write!(s, " WHERE {w}");
        }
        None if i.partial => s.push_str(" WHERE .."),
        None => {}
    }
    s
}

/// A term as compared: the column's name lowercased, the expression, order, collation.
type TermKey = (String, Option<String>, bool, String);

fn term_key(t: &IndexTerm) -> TermKey {
    (
        t.column.to_ascii_lowercase(),
        t.expr.clone(),
        t.desc,
        t.collation.clone(),
    )
}

fn diff_index(want: &IndexInfo, have: &IndexInfo, out: &mut Vec<Difference>) {
    let same_shape = want.unique == have.unique
        && want.table.eq_ignore_ascii_case(&have.table)
        && want.terms.len() == have.terms.len()
        && want
            .terms
            .iter()
            .zip(&have.terms)
            .all(|(w, h)| w.column.eq_ignore_ascii_case(&h.column));
    if !same_shape {
        out.push(Difference::ChangedIndex {
            name: want.name.clone(),
            expected: describe_index(want),
            found: describe_index(have),
        });
        return;
    }
    for (position, (w, h)) in want.terms.iter().zip(&have.terms).enumerate() {
        let mut changed = |what: &'static str, expected: String, found: String| {
            out.push(Difference::ChangedIndexTerm {
                name: want.name.clone(),
                term: position + 1,
                what,
                expected,
                found,
            });
        };
        if w.expr != h.expr {
            let show = |t: &IndexTerm| t.expr.clone().unwrap_or_else(|| t.column.clone());
            changed("expression", show(w), show(h));
        }
        if w.desc != h.desc {
            let show = |d: bool| if d { "DESC" } else { "ASC" }.to_string();
            changed("order", show(w.desc), show(h.desc));
        }
        if w.collation != h.collation {
            changed(
                "collation",
                w.collation.to_ascii_uppercase(),
                h.collation.to_ascii_uppercase(),
            );
        }
    }
    if want.where_clause != have.where_clause || want.partial != have.partial {
        out.push(Difference::ChangedIndexWhere {
            name: want.name.clone(),
            expected: want.where_clause.clone(),
            found: have.where_clause.clone(),
        });
    }
}

/// The terms of `table`'s automatic indexes of `origin` (`u` or `pk`), sorted.
fn constraint_terms(s: &SchemaSnapshot, table: &str, origin: &str) -> Vec<Vec<TermKey>> {
    let mut u: Vec<_> = s
        .indexes
        .values()
        .filter(|i| i.table.eq_ignore_ascii_case(table) && i.origin == origin)
        .map(|i| i.terms.iter().map(term_key).collect::<Vec<_>>())
        .collect();
    u.sort();
    u
}

fn show_constraints(u: &[Vec<TermKey>]) -> String {
    let parts: Vec<String> = u
        .iter()
        .map(|terms| {
            let terms: Vec<String> = terms
                .iter()
                .map(|(column, expr, desc, collation)| {
                    describe_term(&IndexTerm {
                        column: column.clone(),
                        expr: expr.clone(),
                        desc: *desc,
                        collation: collation.clone(),
                    })
                })
                .collect();
            format!("({})", terms.join(", "))
        })
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

/// A default as compared: normalised, without parentheses around all of it. `DEFAULT NULL` is
/// no default: SQLite fills a column without one with NULL.
fn default_key(d: Option<&str>) -> Option<String> {
    d.map(|d| match sqltext::bare_word_default(d) {
        // `DEFAULT Draft` is the string 'Draft'.
        Some(text) => format!("'{}'", text.replace('\'', "''")),
        None => sqltext::normalize_expr(d),
    })
    .filter(|d| d != "null")
}

/// A foreign key as compared: names lowercased, the parent's primary key filled in for a key
/// that names no parent columns.
type ForeignKeyKey = (
    Vec<String>,
    String,
    Vec<String>,
    String,
    String,
    String,
    bool,
);

fn foreign_key_key(fk: &ForeignKeyInfo, snapshot: &SchemaSnapshot) -> ForeignKeyKey {
    let lower =
        |v: &[String]| -> Vec<String> { v.iter().map(|s| s.to_ascii_lowercase()).collect() };
    (
        lower(&fk.from),
        fk.table.to_ascii_lowercase(),
        lower(&resolved_parent_columns(fk, snapshot)),
        fk.on_update.clone(),
        fk.on_delete.clone(),
        fk.match_type.clone(),
        fk.deferred,
    )
}

/// The parent columns of `fk`: as it names them, or the parent's primary key when it names
/// none (and the parent is in `snapshot`).
pub(crate) fn resolved_parent_columns(
    fk: &ForeignKeyInfo,
    snapshot: &SchemaSnapshot,
) -> Vec<String> {
    if fk.to.iter().any(|t| !t.is_empty()) {
        return fk.to.clone();
    }
    let Some(parent) = lookup(&snapshot.tables, &fk.table) else {
        return fk.to.clone();
    };
    let mut pk: Vec<&ColumnInfo> = parent
        .columns
        .iter()
        .filter(|c| c.primary_key > 0)
        .collect();
    pk.sort_by_key(|c| c.primary_key);
    if pk.len() == fk.from.len() {
        pk.iter().map(|c| c.name.clone()).collect()
    } else {
        fk.to.clone()
    }
}

/// `fks` in comparison order, each with its key.
fn sorted_foreign_keys<'a>(
    fks: &'a [ForeignKeyInfo],
    snapshot: &SchemaSnapshot,
) -> Vec<(ForeignKeyKey, &'a ForeignKeyInfo)> {
    let mut v: Vec<_> = fks
        .iter()
        .map(|f| (foreign_key_key(f, snapshot), f))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn describe_foreign_keys(fks: &[ForeignKeyInfo], snapshot: &SchemaSnapshot) -> String {
    if fks.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<String> = fks
        .iter()
        .map(|fk| {
            let mut s = format!(
                "({}) REFERENCES {}({})",
                fk.from.join(", "),
                fk.table,
                resolved_parent_columns(fk, snapshot).join(", ")
            );
            if fk.on_update != "NO ACTION" {
                let _ = write!(s, " ON UPDATE {}", fk.on_update);
            }
            if fk.on_delete != "NO ACTION" {
                let _ = write!(s, " ON DELETE {}", fk.on_delete);
            }
            if fk.match_type != "NONE" {
                let _ = write!(s, " MATCH {}", fk.match_type);
            }
            if fk.deferred {
                s.push_str(" DEFERRABLE INITIALLY DEFERRED");
            }
            s
        })
        .collect();
    parts.join(", ")
}

fn generated_kind(hidden: i64) -> &'static str {
    if hidden == 3 { "STORED" } else { "VIRTUAL" }
}

fn diff_table(
    want: &TableInfo,
    have: &TableInfo,
    want_snap: &SchemaSnapshot,
    have_snap: &SchemaSnapshot,
    out: &mut Vec<Difference>,
) {
    let t = &want.name;
    for wc in &want.columns {
        let Some(hc) = have
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&wc.name))
        else {
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
        if sqltext::normalize(&wc.sql_type) != sqltext::normalize(&hc.sql_type) {
            changed("type", wc.sql_type.clone(), hc.sql_type.clone());
        }
        if wc.not_null != hc.not_null {
            let label = |n: bool| if n { "NOT NULL" } else { "nullable" }.to_string();
            changed("nullability", label(wc.not_null), label(hc.not_null));
        }
        if default_key(wc.default.as_deref()) != default_key(hc.default.as_deref()) {
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
        if wc.collation != hc.collation {
            let label = |c: &Option<String>| c.as_deref().unwrap_or("binary").to_ascii_uppercase();
            changed("collation", label(&wc.collation), label(&hc.collation));
        }
        match (&wc.generated, &hc.generated) {
            (Some(we), Some(he)) => {
                if we != he {
                    changed("generated expression", we.clone(), he.clone());
                }
                if generated_kind(wc.hidden) != generated_kind(hc.hidden) {
                    changed(
                        "generated kind",
                        generated_kind(wc.hidden).into(),
                        generated_kind(hc.hidden).into(),
                    );
                }
            }
            (None, None) => {}
            (w, h) => {
                let label = |e: &Option<String>, hidden: i64| match e {
                    Some(e) => format!("AS ({e}) {}", generated_kind(hidden)),
                    None => "not generated".into(),
                };
                changed("generated", label(w, wc.hidden), label(h, hc.hidden));
            }
        }
    }
    for hc in have.columns.iter().filter(|hc| {
        !want
            .columns
            .iter()
            .any(|wc| wc.name.eq_ignore_ascii_case(&hc.name))
    }) {
        out.push(Difference::UnexpectedColumn {
            table: t.clone(),
            column: hc.name.clone(),
        });
    }
    let (want_checks, have_checks) = (all_checks(want), all_checks(have));
    if want_checks != have_checks {
        let show = |c: &[String]| {
            if c.is_empty() {
                "none".to_string()
            } else {
                let parts: Vec<String> = c.iter().map(|e| format!("CHECK ({e})")).collect();
                parts.join(", ")
            }
        };
        out.push(Difference::ChangedChecks {
            table: t.clone(),
            expected: show(&want_checks),
            found: show(&have_checks),
        });
    }
    for (option, w, h) in [
        ("AUTOINCREMENT", want.autoincrement, have.autoincrement),
        ("STRICT", want.strict, have.strict),
        ("WITHOUT ROWID", want.without_rowid, have.without_rowid),
    ] {
        if w && !h {
            out.push(Difference::MissingTableOption {
                table: t.clone(),
                option,
            });
        } else if h && !w {
            out.push(Difference::UnexpectedTableOption {
                table: t.clone(),
                option,
            });
        }
    }
    if want.virtual_table != have.virtual_table {
        out.push(Difference::Changed {
            kind: "virtual table",
            name: t.clone(),
        });
    }
    let (wf, hf) = (
        sorted_foreign_keys(&want.foreign_keys, want_snap),
        sorted_foreign_keys(&have.foreign_keys, have_snap),
    );
    if wf.iter().map(|(k, _)| k).ne(hf.iter().map(|(k, _)| k)) {
        let fks = |v: &[(ForeignKeyKey, &ForeignKeyInfo)]| -> Vec<ForeignKeyInfo> {
            v.iter().map(|(_, f)| (*f).clone()).collect()
        };
        out.push(Difference::ChangedForeignKeys {
            table: t.clone(),
            expected: describe_foreign_keys(&fks(&wf), want_snap),
            found: describe_foreign_keys(&fks(&hf), have_snap),
        });
    }
}

/// Every CHECK constraint of a table, its columns' and its own, sorted: a column's
/// `CHECK (x)` and a table's `CHECK (x)` constrain the same.
fn all_checks(t: &TableInfo) -> Vec<String> {
    let mut all: Vec<String> = t
        .columns
        .iter()
        .flat_map(|c| c.checks.iter().cloned())
        .chain(t.checks.iter().cloned())
        .collect();
    all.sort();
    all
}

fn table_info(conn: &Connection, table: &str, sql: Option<&str>) -> Result<TableInfo> {
    let parsed = sql
        .and_then(sqltext::parse_create_table)
        .unwrap_or_default();
    let mut columns: Vec<ColumnInfo> = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?
        .query_map([table], |r| {
            Ok(ColumnInfo {
                name: r.get(0)?,
                sql_type: r.get(1)?,
                not_null: r.get(2)?,
                default: r.get(3)?,
                primary_key: r.get(4)?,
                hidden: r.get(5)?,
                collation: None,
                generated: None,
                checks: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // An INTEGER PRIMARY KEY is the rowid: it cannot hold NULL whether or not it says NOT NULL.
    if columns.iter().filter(|c| c.primary_key > 0).count() == 1 {
        for c in columns.iter_mut().filter(|c| c.primary_key > 0) {
            if c.sql_type.eq_ignore_ascii_case("INTEGER") {
                c.not_null = true;
            }
        }
    }
    for c in &mut columns {
        let Some(p) = parsed
            .columns
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(&c.name))
        else {
            continue;
        };
        c.collation = p
            .collation
            .as_ref()
            .map(|n| n.to_ascii_lowercase())
            .filter(|n| n != "binary");
        if matches!(c.hidden, 2 | 3) {
            c.generated = p.generated.as_deref().map(sqltext::normalize_expr);
        }
        c.checks = p
            .checks
            .iter()
            .map(|e| sqltext::normalize_expr(e))
            .collect();
    }
    let (kind, without_rowid, strict) = conn
        .query_row(
            "SELECT type, wr, strict FROM pragma_table_list(?1) WHERE schema = 'main'",
            [table],
            |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .unwrap_or_else(|| ("table".into(), false, false));
    /// id, parent, from, to, on update, on delete, match.
    type Row = (i64, String, String, Option<String>, String, String, String);
    let rows: Vec<Row> = conn
        .prepare("SELECT id, \"table\", \"from\", \"to\", on_update, on_delete, \"match\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut fks: BTreeMap<i64, ForeignKeyInfo> = BTreeMap::new();
    for (id, parent, from, to, on_update, on_delete, match_type) in rows {
        let fk = fks.entry(id).or_insert_with(|| ForeignKeyInfo {
            from: Vec::new(),
            table: parent,
            to: Vec::new(),
            on_update,
            on_delete,
            match_type,
            deferred: false,
        });
        fk.from.push(from);
        fk.to.push(to.unwrap_or_default());
    }
    let mut foreign_keys: Vec<ForeignKeyInfo> = fks.into_values().collect();
    // Deferral is only in the text: pair each key with the first written one of its columns
    // and parent.
    let mut written: Vec<Option<&sqltext::ParsedForeignKey>> =
        parsed.foreign_keys.iter().map(Some).collect();
    for fk in &mut foreign_keys {
        let same = |p: &&sqltext::ParsedForeignKey| {
            p.table.eq_ignore_ascii_case(&fk.table)
                && p.from.len() == fk.from.len()
                && p.from
                    .iter()
                    .zip(&fk.from)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        };
        if let Some(slot) = written.iter_mut().find(|w| w.is_some_and(|p| same(&p))) {
            fk.deferred = slot.take().is_some_and(|p| p.deferred);
        }
    }
    Ok(TableInfo {
        name: table.to_string(),
        columns,
        foreign_keys,
        strict,
        without_rowid,
        autoincrement: parsed.autoincrement,
        checks: parsed
            .checks
            .iter()
            .map(|e| sqltext::normalize_expr(e))
            .collect(),
        virtual_table: (kind == "virtual").then(|| sqltext::normalize(sql.unwrap_or(""))),
    })
}

fn index_infos(
    conn: &Connection,
    table: &str,
    index_sql: &BTreeMap<String, String>,
) -> Result<Vec<IndexInfo>> {
    let list: Vec<(String, bool, String, bool)> = conn
        .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")?
        .query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (name, unique, origin, partial) in list {
        let keys: Vec<(i64, Option<String>, bool, String)> = conn
            .prepare("SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key ORDER BY seqno")?
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let parsed = index_sql
            .get(&name)
            .and_then(|sql| sqltext::parse_create_index(sql))
            .unwrap_or_default();
        let terms: Vec<IndexTerm> = keys
            .iter()
            .enumerate()
            .map(|(position, (cid, column, desc, coll))| IndexTerm {
                column: match (cid, column) {
                    (-1, _) => "rowid".to_string(),
                    (_, Some(c)) => c.clone(),
                    (_, None) => "<expr>".to_string(),
                },
                expr: (*cid == -2).then(|| {
                    parsed
                        .terms
                        .get(position)
                        .map(|t| sqltext::normalize_expr(&t.expr))
                        .unwrap_or_default()
                }),
                desc: *desc,
                collation: coll.to_ascii_lowercase(),
            })
            .collect();
        out.push(IndexInfo {
            name,
            table: table.to_string(),
            unique,
            columns: keys
                .iter()
                .map(|(_, c, _, _)| c.clone().unwrap_or_else(|| "<expr>".to_string()))
                .collect(),
            origin,
            partial,
            terms,
            where_clause: parsed.where_clause.as_deref().map(sqltext::normalize_expr),
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
        /// The respect: `type`, `nullability`, `default`, `primary key`, `collation`,
        /// `generated` (generated or not), `generated expression` or `generated kind`.
        what: &'static str,
        /// The expected value as text: a type, `NOT NULL` or `nullable`, a default or
        /// `no default`, `primary key part N` or `not in the primary key`, a collation
        /// (`NOCASE`, `BINARY`), `AS (expr) STORED` or `not generated`, an expression,
        /// `VIRTUAL` or `STORED`.
        expected: String,
        /// The live value, in the same form.
        found: String,
    },
    /// A table's foreign keys differ (compared as a set: columns, parent, actions, `MATCH`
    /// and deferral).
    ChangedForeignKeys {
        /// The table.
        table: String,
        /// The expected keys, as `(a) REFERENCES p(id) ON DELETE CASCADE DEFERRABLE INITIALLY
        /// DEFERRED, ..`, or `none`.
        expected: String,
        /// The live keys, in the same form.
        found: String,
    },
    /// A table's UNIQUE constraints differ (compared by their terms: columns, collations and
    /// order).
    ChangedUnique {
        /// The table.
        table: String,
        /// The expected constraints' terms, as `(a COLLATE NOCASE, b DESC) (c)`, or `none`.
        expected: String,
        /// The live constraints' terms, in the same form.
        found: String,
    },
    /// A table's primary key differs in its terms' collations or order (its columns are
    /// compared column by column).
    ChangedPrimaryKey {
        /// The table.
        table: String,
        /// The expected key's terms, as `(a COLLATE NOCASE, b DESC)`.
        expected: String,
        /// The live key's terms, in the same form.
        found: String,
    },
    /// A table's CHECK constraints differ (its columns' and its own, compared as one sorted
    /// list of normalised expressions).
    ChangedChecks {
        /// The table.
        table: String,
        /// The expected constraints, as `CHECK (a > 0), CHECK (..)`, or `none`.
        expected: String,
        /// The live constraints, in the same form.
        found: String,
    },
    /// A table lacks an expected option: `AUTOINCREMENT`, `STRICT` or `WITHOUT ROWID`.
    MissingTableOption {
        /// The table.
        table: String,
        /// The option.
        option: &'static str,
    },
    /// A table has an option the expected schema does not: `AUTOINCREMENT`, `STRICT` or
    /// `WITHOUT ROWID`.
    UnexpectedTableOption {
        /// The table.
        table: String,
        /// The option.
        option: &'static str,
    },
    /// An expected index (created by `CREATE INDEX`) is missing.
    #[serde(serialize_with = "named")]
    MissingIndex(String),
    /// The live schema has an index (created by `CREATE INDEX`) the expected one does not.
    #[serde(serialize_with = "named")]
    UnexpectedIndex(String),
    /// An index created by `CREATE INDEX` differs in its table, its columns or its
    /// uniqueness.
    ChangedIndex {
        /// The index.
        name: String,
        /// The expected index, as `UNIQUE t(a, lower(b) DESC) WHERE c IS NULL` (`UNIQUE`,
        /// `COLLATE`, `DESC` and `WHERE` when they apply).
        expected: String,
        /// The live index, in the same form.
        found: String,
    },
    /// One term of an index created by `CREATE INDEX` differs, its columns being the same.
    ChangedIndexTerm {
        /// The index.
        name: String,
        /// The term's position, from 1.
        term: usize,
        /// The respect: `expression`, `order` (`ASC`/`DESC`) or `collation`.
        what: &'static str,
        /// The expected expression, order or collation.
        expected: String,
        /// The live one.
        found: String,
    },
    /// The condition of an index created by `CREATE INDEX` differs (or one is partial and the
    /// other not).
    ChangedIndexWhere {
        /// The index.
        name: String,
        /// The expected condition, normalised; `None` for a full index.
        expected: Option<String>,
        /// The live condition, in the same form.
        found: Option<String>,
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
    /// A view, trigger or virtual table differs: its normalised SQL is not the expected one.
    Changed {
        /// `view`, `trigger` or `virtual table`.
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
            Difference::ChangedForeignKeys {
                table,
                expected,
                found,
            } => write!(
                f,
                "table `{table}`: foreign keys are {found}, expected {expected}"
            ),
            Difference::ChangedPrimaryKey {
                table,
                expected,
                found,
            } => write!(
                f,
                "table `{table}`: primary key is {found}, expected {expected}"
            ),
            Difference::ChangedChecks {
                table,
                expected,
                found,
            } => write!(
                f,
                "table `{table}`: CHECK constraints are {found}, expected {expected}"
            ),
            Difference::MissingTableOption { table, option } => {
                write!(f, "table `{table}`: missing {option}")
            }
            Difference::UnexpectedTableOption { table, option } => {
                write!(f, "table `{table}`: unexpected {option}")
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
            Difference::ChangedIndexTerm {
                name,
                term,
                what,
                expected,
                found,
            } => write!(
                f,
                "index `{name}`: term {term} has {what} {found}, expected {expected}"
            ),
            Difference::ChangedIndexWhere {
                name,
                expected,
                found,
            } => {
                let show = |w: &Option<String>| match w {
                    Some(w) => format!("WHERE {w}"),
                    None => "no WHERE".to_string(),
                };
                write!(
                    f,
                    "index `{name}` has {}, expected {}",
                    show(found),
                    show(expected)
                )
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
            Difference::ChangedForeignKeys {
                table: "a".into(),
                expected: "none".into(),
                found: "(b) REFERENCES p(id)".into(),
            },
            Difference::MissingTableOption {
                table: "a".into(),
                option: "AUTOINCREMENT",
            },
            Difference::ChangedIndexWhere {
                name: "i".into(),
                expected: Some("x is null".into()),
                found: None,
            },
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

    /// The differences from `expected` to `live`, as text.
    fn differences(expected: &str, live: &str) -> Vec<String> {
        snap(live)
            .diff(&snap(expected))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const EVERY_FORM: &str = "
        CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL COLLATE NOCASE);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL COLLATE NOCASE CHECK (length(host) > 0),
            kind TEXT NOT NULL DEFAULT 'info',
            n INTEGER NOT NULL DEFAULT -1,
            at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
            deleted_at INTEGER DEFAULT NULL,
            price REAL, qty INTEGER,
            total REAL GENERATED ALWAYS AS (price * qty) STORED,
            doubled REAL AS (price * 2),
            owner INTEGER REFERENCES accounts(id) ON DELETE CASCADE ON UPDATE SET NULL
                DEFERRABLE INITIALLY DEFERRED,
            UNIQUE (host COLLATE BINARY, kind DESC),
            CHECK (at >= 0)
        );
        CREATE TABLE pairs (a TEXT, b TEXT, PRIMARY KEY (a DESC, b)) WITHOUT ROWID, STRICT;
        CREATE TABLE kids (a TEXT, b TEXT, FOREIGN KEY (a, b) REFERENCES pairs(a, b) ON DELETE SET NULL);
        CREATE INDEX events_by_host ON events (host COLLATE BINARY DESC, at);
        CREATE UNIQUE INDEX live_host ON events (lower(host), at DESC) WHERE deleted_at IS NULL;
        CREATE VIEW live_events AS SELECT id, host FROM events WHERE deleted_at IS NULL;
        CREATE TRIGGER events_touch AFTER UPDATE ON events BEGIN UPDATE events SET at = 0 WHERE id = new.id; END;
    ";

    #[test]
    fn same_schema_written_differently_is_no_difference() {
        let other = "
            create table \"Accounts\" ( \"ID\" integer primary key autoincrement , [Name] text not null collate nocase ) ;
            CREATE TABLE `events` ( -- one line per column, or not
                ID integer primary key, Host TEXT NOT NULL COLLATE \"nocase\" CHECK ((LENGTH ( host ) >0)),
                kind text not null default ('info'), n INTEGER NOT NULL DEFAULT (-1),
                at INTEGER NOT NULL DEFAULT (strftime ('%s','now')), deleted_at integer default null,
                price real, qty integer, total real generated always as ((price*qty)) stored,
                doubled real as (price*2) virtual,
                owner integer references \"accounts\" (id) on update set null on delete cascade deferrable initially deferred,
                check (at>=0), unique (host collate \"BINARY\", kind desc)
            );
            CREATE TABLE pairs (a TEXT, b TEXT, PRIMARY KEY (a DESC, b)) STRICT, WITHOUT ROWID;
            CREATE TABLE kids (a TEXT, b TEXT, FOREIGN KEY (a, b) REFERENCES pairs ON DELETE SET NULL);
            create index events_by_host on events (HOST collate binary desc, \"at\" ASC);
            create unique index live_host on events ((LOWER(host)), at desc) where (deleted_at is null);
            create view if not exists live_events as select id, host from events where deleted_at is null;
            create trigger events_touch after update on events begin
                update events set at=0 where id=NEW.id;
            end;
        ";
        assert_eq!(differences(EVERY_FORM, other), Vec::<String>::new());
        assert_eq!(differences(other, EVERY_FORM), Vec::<String>::new());
        // Every part is read.
        let s = snap(EVERY_FORM);
        let events = &s.tables["events"];
        assert_eq!(events.columns[1].collation.as_deref(), Some("nocase"));
        assert_eq!(events.columns[1].checks, ["length(host) > 0"]);
        assert_eq!(events.checks, ["at >= 0"]);
        assert_eq!(events.columns[8].generated.as_deref(), Some("price * qty"));
        assert_eq!(events.columns[8].hidden, 3);
        assert!(events.foreign_keys[0].deferred);
        assert!(s.tables["accounts"].autoincrement);
        assert!(s.tables["pairs"].strict && s.tables["pairs"].without_rowid);
        let live = &s.indexes["live_host"];
        assert_eq!(live.where_clause.as_deref(), Some("deleted_at is null"));
        assert_eq!(live.terms[0].expr.as_deref(), Some("lower(host)"));
        assert!(live.terms[1].desc);
        assert_eq!(
            s.views["live_events"],
            "create view live_events as select id,host from events where deleted_at is null"
        );
    }

    /// `EVERY_FORM` with `from` replaced by `to`, against `EVERY_FORM`.
    fn changed(from: &str, to: &str) -> Vec<String> {
        assert!(EVERY_FORM.contains(from), "{from}");
        differences(EVERY_FORM, &EVERY_FORM.replacen(from, to, 1))
    }

    #[test]
    fn a_partial_index_condition_counts() {
        assert_eq!(
            changed(
                "WHERE deleted_at IS NULL;\n        CREATE VIEW",
                "WHERE deleted_at IS NOT NULL;\n        CREATE VIEW"
            ),
            [
                "index `live_host` has WHERE deleted_at is not null, expected WHERE deleted_at is null"
            ]
        );
        assert_eq!(
            changed(
                " WHERE deleted_at IS NULL;\n        CREATE VIEW",
                ";\n        CREATE VIEW"
            ),
            ["index `live_host` has no WHERE, expected WHERE deleted_at is null"]
        );
    }

    #[test]
    fn an_index_expression_counts() {
        assert_eq!(
            changed("(lower(host), at DESC)", "(upper(host), at DESC)"),
            ["index `live_host`: term 1 has expression upper(host), expected lower(host)"]
        );
        // An expression in place of a column changes the index's shape.
        assert_eq!(
            changed("(lower(host), at DESC)", "(host, at DESC)"),
            [
                "index `live_host` is on UNIQUE events(host COLLATE NOCASE, at DESC) WHERE deleted_at is null, \
              expected UNIQUE events(lower(host), at DESC) WHERE deleted_at is null"
            ]
        );
    }

    #[test]
    fn an_index_order_counts() {
        assert_eq!(
            changed("(lower(host), at DESC)", "(lower(host), at)"),
            ["index `live_host`: term 2 has order ASC, expected DESC"]
        );
    }

    #[test]
    fn an_index_collation_counts() {
        assert_eq!(
            changed("(host COLLATE BINARY DESC, at)", "(host DESC, at)"),
            ["index `events_by_host`: term 1 has collation NOCASE, expected BINARY"]
        );
    }

    #[test]
    fn a_column_collation_counts() {
        assert_eq!(
            changed(
                "name TEXT NOT NULL COLLATE NOCASE",
                "name TEXT NOT NULL COLLATE RTRIM"
            ),
            ["table `accounts`: column `name` has collation RTRIM, expected NOCASE"]
        );
        // BINARY is the default.
        assert_eq!(
            differences(
                "CREATE TABLE t (a TEXT)",
                "CREATE TABLE t (a TEXT COLLATE binary)"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn autoincrement_counts() {
        assert_eq!(
            changed("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY"),
            ["table `accounts`: missing AUTOINCREMENT"]
        );
        assert_eq!(
            changed(
                "id INTEGER PRIMARY KEY,",
                "id INTEGER PRIMARY KEY AUTOINCREMENT,"
            ),
            ["table `events`: unexpected AUTOINCREMENT"]
        );
    }

    #[test]
    fn check_constraints_count() {
        assert_eq!(
            changed("CHECK (at >= 0)", "CHECK (at > 0)"),
            [
                "table `events`: CHECK constraints are CHECK (at > 0), CHECK (length(host) > 0), \
              expected CHECK (at >= 0), CHECK (length(host) > 0)"
            ]
        );
        assert_eq!(
            changed(" CHECK (length(host) > 0)", ""),
            ["table `events`: CHECK constraints are CHECK (at >= 0), \
              expected CHECK (at >= 0), CHECK (length(host) > 0)"]
        );
        // A column's CHECK and the table's CHECK of the same expression are the same.
        assert_eq!(
            differences(
                "CREATE TABLE t (a INTEGER CHECK (a > 0))",
                "CREATE TABLE t (a INTEGER, CHECK (a > 0))"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn generated_columns_count() {
        assert_eq!(
            changed("AS (price * qty) STORED", "AS (price + qty) STORED"),
            [
                "table `events`: column `total` has generated expression price + qty, expected price * qty"
            ]
        );
        assert_eq!(
            changed("AS (price * qty) STORED", "AS (price * qty) VIRTUAL"),
            ["table `events`: column `total` has generated kind VIRTUAL, expected STORED"]
        );
        assert_eq!(
            differences(
                "CREATE TABLE t (a INTEGER, b INTEGER AS (a + 1))",
                "CREATE TABLE t (a INTEGER, b INTEGER)"
            ),
            ["table `t`: column `b` has generated not generated, expected AS (a + 1) VIRTUAL"]
        );
    }

    #[test]
    fn strict_and_without_rowid_count() {
        assert_eq!(
            changed("WITHOUT ROWID, STRICT;", "WITHOUT ROWID;"),
            ["table `pairs`: missing STRICT"]
        );
        assert_eq!(
            changed("WITHOUT ROWID, STRICT;", "STRICT;"),
            ["table `pairs`: missing WITHOUT ROWID"]
        );
        assert_eq!(
            differences(
                "CREATE TABLE t (a INTEGER)",
                "CREATE TABLE t (a INTEGER) STRICT"
            ),
            ["table `t`: unexpected STRICT"]
        );
    }

    #[test]
    fn a_primary_key_order_counts() {
        assert_eq!(
            changed("PRIMARY KEY (a DESC, b)", "PRIMARY KEY (a, b)"),
            ["table `pairs`: primary key is (a, b), expected (a DESC, b)"]
        );
    }

    #[test]
    fn foreign_key_deferral_and_actions_count() {
        assert_eq!(
            changed(
                "ON UPDATE SET NULL\n                DEFERRABLE INITIALLY DEFERRED",
                "ON UPDATE SET NULL"
            ),
            [
                "table `events`: foreign keys are (owner) REFERENCES accounts(id) ON UPDATE SET NULL ON DELETE CASCADE, \
              expected (owner) REFERENCES accounts(id) ON UPDATE SET NULL ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
            ]
        );
        assert_eq!(
            changed("ON UPDATE SET NULL", "ON UPDATE CASCADE"),
            [
                "table `events`: foreign keys are (owner) REFERENCES accounts(id) ON UPDATE CASCADE ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, \
              expected (owner) REFERENCES accounts(id) ON UPDATE SET NULL ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
            ]
        );
        // Without DEFERRABLE's INITIALLY DEFERRED, a key is checked at once: no difference.
        assert_eq!(
            differences(
                "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p(id))",
                "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY IMMEDIATE)"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn defaults_count_after_normalising() {
        assert_eq!(
            changed(
                "DEFAULT (strftime('%s', 'now'))",
                "DEFAULT (strftime('%Y', 'now'))"
            ),
            [
                "table `events`: column `at` has default strftime('%Y', 'now'), expected strftime('%s', 'now')"
            ]
        );
        assert_eq!(
            changed("DEFAULT 'info'", "DEFAULT 'INFO'"),
            ["table `events`: column `kind` has default 'INFO', expected 'info'"]
        );
        // A bare name is the string it spells.
        assert!(changed("DEFAULT 'info'", "DEFAULT info").is_empty());
        assert_eq!(changed("DEFAULT 'info'", "DEFAULT Info").len(), 1);
        // SQLite fills a column without a default with NULL: the same thing.
        assert!(changed("deleted_at INTEGER DEFAULT NULL", "deleted_at INTEGER").is_empty());
    }

    #[test]
    fn unique_constraints_compare_their_terms() {
        assert_eq!(
            changed(
                "UNIQUE (host COLLATE BINARY, kind DESC)",
                "UNIQUE (host, kind DESC)"
            ),
            [
                "table `events`: UNIQUE constraints are (host COLLATE NOCASE, kind DESC), expected (host, kind DESC)"
            ]
        );
        assert_eq!(
            changed(
                "UNIQUE (host COLLATE BINARY, kind DESC)",
                "UNIQUE (host COLLATE BINARY, kind)"
            ),
            ["table `events`: UNIQUE constraints are (host, kind), expected (host, kind DESC)"]
        );
    }

    #[test]
    fn views_and_triggers_compare_normalised() {
        assert_eq!(
            changed(
                "SELECT id, host FROM events",
                "SELECT id, 'host' FROM events"
            ),
            ["view `live_events` differs"]
        );
        assert_eq!(
            changed("SET at = 0", "SET at = 1"),
            ["trigger `events_touch` differs"]
        );
    }

    #[test]
    fn virtual_tables_compare_normalised() {
        let fts = "CREATE VIRTUAL TABLE docs USING fts5(title, body)";
        assert_eq!(
            differences(
                fts,
                "create virtual table \"docs\" using FTS5 ( title,body )"
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            differences(
                fts,
                "CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize = 'porter')"
            ),
            ["virtual table `docs` differs"]
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
