//! Typed schema declarations: what `strata::schema!` generates code against.
//!
//! Each migration declares the tables its role's database holds after it ran. `schema!` turns
//! that declaration into a module per table with a marker type implementing [`Table`], a `Row`
//! struct implementing [`Record`], one [`Column`] constant per column and one [`Index`] constant
//! per index, plus a `SCHEMA` constant of type [`Schema`] listing every table.

use std::fmt::Write as _;
use std::marker::PhantomData;

use rusqlite::types::{FromSql, ToSql};

/// A Rust type that can be stored in a column: its SQLite type name and whether it admits NULL.
///
/// Implemented for the integer types, `f64`, `bool`, `String`, `Vec<u8>`, `uuid::Uuid` (16-byte
/// BLOB), `chrono::DateTime<Utc>` (TEXT) and `Option<T>` (nullable). Implement it for your own
/// newtypes together with rusqlite's `ToSql` and `FromSql`.
pub trait SqlType: ToSql + FromSql {
    /// Declared type in `CREATE TABLE`.
    const SQL_TYPE: &'static str;
    /// Whether the column admits NULL (`Option<T>`).
    const NULLABLE: bool = false;
}

macro_rules! sql_types {
    ($($t:ty => $name:literal),* $(,)?) => {
        $(impl SqlType for $t { const SQL_TYPE: &'static str = $name; })*
    };
}

sql_types! {
    i8 => "INTEGER", i16 => "INTEGER", i32 => "INTEGER", i64 => "INTEGER",
    u8 => "INTEGER", u16 => "INTEGER", u32 => "INTEGER",
    bool => "INTEGER", f32 => "REAL", f64 => "REAL",
    String => "TEXT", Vec<u8> => "BLOB",
    uuid::Uuid => "BLOB",
    chrono::DateTime<chrono::Utc> => "TEXT",
}

/// An untyped column (`CREATE TABLE t (a)`): any value, its SQL type empty.
impl SqlType for rusqlite::types::Value {
    const SQL_TYPE: &'static str = "";
}

impl<T: SqlType> SqlType for Option<T> {
    const SQL_TYPE: &'static str = T::SQL_TYPE;
    const NULLABLE: bool = true;
}

/// What happens to referencing rows when the referenced row is deleted (or, as `on_update`,
/// when its key changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// The default: deleting a referenced row fails (when foreign keys are enforced).
    NoAction,
    /// Deleting a referenced row fails at once, not at the end of the statement
    /// (`ON DELETE RESTRICT`).
    Restrict,
    /// Deleting a referenced row deletes the rows referencing it (`ON DELETE CASCADE`).
    Cascade,
    /// Deleting a referenced row sets the referencing column to NULL (`ON DELETE SET NULL`).
    SetNull,
    /// Deleting a referenced row sets the referencing column to its default
    /// (`ON DELETE SET DEFAULT`).
    SetDefault,
}

impl OnDelete {
    /// The SQL words (`NO ACTION`, `CASCADE`, ..).
    pub fn sql(self) -> &'static str {
        match self {
            OnDelete::NoAction => "NO ACTION",
            OnDelete::Restrict => "RESTRICT",
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
            OnDelete::SetDefault => "SET DEFAULT",
        }
    }
}

/// A foreign key: a column's `references t(c)`, or a table's `foreign key (..) references ..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignKeyDef {
    /// The referencing columns (the column itself for a column's key).
    pub columns: &'static [&'static str],
    /// The parent table.
    pub table: &'static str,
    /// The parent's columns, pairwise with `columns`; empty to reference its primary key.
    pub parent_columns: &'static [&'static str],
    /// `ON DELETE`.
    pub on_delete: OnDelete,
    /// `ON UPDATE`.
    pub on_update: OnDelete,
    /// `DEFERRABLE INITIALLY DEFERRED`.
    pub deferrable: bool,
}

impl ForeignKeyDef {
    /// `REFERENCES "t"("c") ON DELETE ..`: the part after the referencing columns.
    pub fn references_sql(&self) -> String {
        let mut sql = format!("REFERENCES {}", quote_ident(self.table));
        if !self.parent_columns.is_empty() {
            let _ = write!(sql, "({})", quoted_list(self.parent_columns));
        }
        if self.on_delete != OnDelete::NoAction {
            let _ = write!(sql, " ON DELETE {}", self.on_delete.sql());
        }
        if self.on_update != OnDelete::NoAction {
            let _ = write!(sql, " ON UPDATE {}", self.on_update.sql());
        }
        if self.deferrable {
            sql.push_str(" DEFERRABLE INITIALLY DEFERRED");
        }
        sql
    }
}

/// A generated column's expression (`GENERATED ALWAYS AS (expr) STORED|VIRTUAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedDef {
    /// The SQL expression.
    pub expr: &'static str,
    /// `STORED` (true) or `VIRTUAL`.
    pub stored: bool,
}

/// A column's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name in SQL (a raw identifier `r#type` is `type`).
    pub name: &'static str,
    /// The declared SQL type: the Rust type's [`SqlType::SQL_TYPE`], or the `as "..."` text;
    /// empty for an untyped column.
    pub sql_type: &'static str,
    /// Whether the column admits NULL (its Rust type is an `Option`); otherwise `NOT NULL`.
    pub nullable: bool,
    /// Whether the column alone is the primary key (`primary key` on the column).
    pub primary_key: bool,
    /// `AUTOINCREMENT` (on an integer primary key).
    pub autoincrement: bool,
    /// Whether the column carries a `UNIQUE` constraint.
    pub unique: bool,
    /// SQL text of the default value, e.g. `0` or `'draft'`.
    pub default: Option<&'static str>,
    /// `COLLATE name`.
    pub collate: Option<&'static str>,
    /// A `CHECK` constraint on the column, as an SQL expression.
    pub check: Option<&'static str>,
    /// A generated column's expression.
    pub generated: Option<GeneratedDef>,
    /// The column's foreign key.
    pub references: Option<ForeignKeyDef>,
}

/// One term of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexTermDef {
    /// A column's name, or an SQL expression when `expression`.
    pub target: &'static str,
    /// Whether `target` is an SQL expression.
    pub expression: bool,
    /// `COLLATE name`.
    pub collate: Option<&'static str>,
    /// `Some(true)` for `DESC`, `Some(false)` for `ASC`, `None` when not written.
    pub desc: Option<bool>,
}

/// An index's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// The index's name, unique across the database.
    pub name: &'static str,
    /// The indexed columns, in index order (an expression term appears as its SQL text).
    pub columns: &'static [&'static str],
    /// The terms, in index order.
    pub terms: &'static [IndexTermDef],
    /// Whether it is a `UNIQUE` index.
    pub unique: bool,
    /// A partial index's `WHERE` expression.
    pub predicate: Option<&'static str>,
}

/// A table's declaration, from which its DDL is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The table's name in SQL.
    pub name: &'static str,
    /// The columns, in declaration order (the order of `CREATE TABLE` and of `Row`'s fields).
    pub columns: &'static [ColumnDef],
    /// Composite primary key; empty when a column carries `primary key` itself.
    pub primary_key: &'static [&'static str],
    /// Table-level `UNIQUE (..)` constraints.
    pub uniques: &'static [&'static [&'static str]],
    /// Table-level `CHECK` constraints, as SQL expressions.
    pub checks: &'static [&'static str],
    /// Table-level foreign keys.
    pub foreign_keys: &'static [ForeignKeyDef],
    /// `STRICT`.
    pub strict: bool,
    /// `WITHOUT ROWID`.
    pub without_rowid: bool,
    /// The table's indexes, in declaration order.
    pub indexes: &'static [IndexDef],
}

/// A view's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewDef {
    /// Its name.
    pub name: &'static str,
    /// Its `SELECT`.
    pub select: &'static str,
}

impl ViewDef {
    /// `CREATE VIEW`.
    pub fn create_sql(&self) -> String {
        format!("CREATE VIEW {} AS {}", quote_ident(self.name), self.select)
    }
}

/// A trigger's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerDef {
    /// Its name.
    pub name: &'static str,
    /// Everything after `CREATE TRIGGER name`.
    pub body: &'static str,
}

impl TriggerDef {
    /// `CREATE TRIGGER`.
    pub fn create_sql(&self) -> String {
        format!("CREATE TRIGGER {} {}", quote_ident(self.name), self.body)
    }
}

/// Double-quote an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TableDef {
    /// `CREATE TABLE` for this table under `name` (its own name, or a temporary one during a
    /// rebuild).
    pub fn create_sql_named(&self, name: &str) -> String {
        let mut parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                // A STRICT table wants a type for every column: an untyped one is `ANY`.
                if self.strict && c.sql_type.is_empty() {
                    ColumnDef {
                        sql_type: "ANY",
                        ..*c
                    }
                    .column_sql()
                } else {
                    c.column_sql()
                }
            })
            .collect();
        if !self.primary_key.is_empty() {
            parts.push(format!("PRIMARY KEY ({})", quoted_list(self.primary_key)));
        }
        for u in self.uniques {
            parts.push(format!("UNIQUE ({})", quoted_list(u)));
        }
        for c in self.checks {
            parts.push(format!("CHECK ({c})"));
        }
        for fk in self.foreign_keys {
            parts.push(format!(
                "FOREIGN KEY ({}) {}",
                quoted_list(fk.columns),
                fk.references_sql()
            ));
        }
        let mut sql = format!("CREATE TABLE {} ({})", quote_ident(name), parts.join(", "));
        match (self.strict, self.without_rowid) {
            (true, true) => sql.push_str(" STRICT, WITHOUT ROWID"),
            (true, false) => sql.push_str(" STRICT"),
            (false, true) => sql.push_str(" WITHOUT ROWID"),
            (false, false) => {}
        }
        sql
    }

    /// `CREATE TABLE` for this table.
    pub fn create_sql(&self) -> String {
        self.create_sql_named(self.name)
    }

    /// `CREATE [UNIQUE] INDEX` statements for this table's indexes.
    pub fn index_sql(&self) -> Vec<String> {
        self.indexes
            .iter()
            .map(|i| i.create_sql(self.name))
            .collect()
    }

    /// The declaration of column `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl ColumnDef {
    /// The column's definition inside `CREATE TABLE` or `ALTER TABLE ADD COLUMN`.
    pub fn column_sql(&self) -> String {
        let mut sql = quote_ident(self.name);
        if !self.sql_type.is_empty() {
            let _ = write!(sql, " {}", self.sql_type);
        }
        if !self.nullable {
            sql.push_str(" NOT NULL");
        }
        if self.primary_key {
            sql.push_str(" PRIMARY KEY");
            if self.autoincrement {
                sql.push_str(" AUTOINCREMENT");
            }
        }
        if self.unique {
            sql.push_str(" UNIQUE");
        }
        if let Some(d) = self.default {
            let _ = write!(sql, " DEFAULT {d}");
        }
        if let Some(c) = self.collate {
            let _ = write!(sql, " COLLATE {c}");
        }
        if let Some(g) = self.generated {
            let kind = if g.stored { "STORED" } else { "VIRTUAL" };
            let _ = write!(sql, " GENERATED ALWAYS AS ({}) {kind}", g.expr);
        }
        if let Some(c) = self.check {
            let _ = write!(sql, " CHECK ({c})");
        }
        if let Some(fk) = &self.references {
            let _ = write!(sql, " {}", fk.references_sql());
        }
        sql
    }
}

impl IndexTermDef {
    /// The term in `CREATE INDEX`.
    pub fn sql(&self) -> String {
        let mut sql = if self.expression {
            self.target.to_string()
        } else {
            quote_ident(self.target)
        };
        if let Some(c) = self.collate {
            let _ = write!(sql, " COLLATE {c}");
        }
        match self.desc {
            Some(true) => sql.push_str(" DESC"),
            Some(false) => sql.push_str(" ASC"),
            None => {}
        }
        sql
    }
}

impl IndexDef {
    /// `CREATE [UNIQUE] INDEX` on `table`.
    pub fn create_sql(&self, table: &str) -> String {
        let terms: Vec<String> = self.terms.iter().map(IndexTermDef::sql).collect();
        let mut sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(self.name),
            quote_ident(table),
            terms.join(", ")
        );
        if let Some(p) = self.predicate {
            let _ = write!(sql, " WHERE {p}");
        }
        sql
    }
}

/// Every table of a role's database as one migration leaves it.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    tables: &'static [&'static TableDef],
    views: &'static [ViewDef],
    triggers: &'static [TriggerDef],
    canonical: &'static str,
}

impl Schema {
    /// `schema!`'s `SCHEMA`: the tables and the declaration's canonical text, which the
    /// migration's checksum covers. Not public API.
    #[doc(hidden)]
    pub const fn __new(
        tables: &'static [&'static TableDef],
        views: &'static [ViewDef],
        triggers: &'static [TriggerDef],
        canonical: &'static str,
    ) -> Self {
        Schema {
            tables,
            views,
            triggers,
            canonical,
        }
    }

    /// The declared views, in declaration order.
    pub fn views(&self) -> &'static [ViewDef] {
        self.views
    }

    /// The declared triggers, in declaration order.
    pub fn triggers(&self) -> &'static [TriggerDef] {
        self.triggers
    }

    /// The declared tables, in declaration order.
    pub fn tables(&self) -> &'static [&'static TableDef] {
        self.tables
    }

    /// The declared table called `name`.
    pub fn table(&self, name: &str) -> Option<&'static TableDef> {
        self.tables.iter().copied().find(|t| t.name == name)
    }

    /// DDL creating every table and index, in declaration order, then the views and the
    /// triggers.
    pub fn ddl(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.tables {
            out.push(t.create_sql());
            out.extend(t.index_sql());
        }
        out.extend(self.views.iter().map(ViewDef::create_sql));
        out.extend(self.triggers.iter().map(TriggerDef::create_sql));
        out
    }

    pub(crate) const fn canonical(&self) -> &'static str {
        self.canonical
    }
}

/// Implemented by the marker type `schema!` generates for each table (`notes::Table`).
pub trait Table: Copy + 'static {
    /// The table's declaration.
    const DEF: &'static TableDef;
}

/// A row of one table, as declared by one migration (`notes::Row`).
pub trait Record: Sized {
    /// The table the row belongs to.
    type Table: Table;
    /// The row's values in column order.
    fn values(&self) -> Vec<&dyn ToSql>;
    /// Reads a row whose columns were selected in declaration order.
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A typed column: `notes::CONTENT` is a `Column<notes::Table, String>`.
pub struct Column<T, V> {
    index: usize,
    _marker: PhantomData<fn() -> (T, V)>,
}

impl<T, V> Clone for Column<T, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, V> Copy for Column<T, V> {}

impl<T, V> Column<T, V> {
    /// The column at `index` in its table's declaration, as `schema!` declares it. Not public
    /// API.
    #[doc(hidden)]
    pub const fn __new(index: usize) -> Self {
        Column {
            index,
            _marker: PhantomData,
        }
    }
}

impl<T: Table, V: SqlType + 'static> Column<T, V> {
    /// The column's declaration.
    pub fn def(&self) -> &'static ColumnDef {
        &T::DEF.columns[self.index]
    }

    /// The column's name.
    pub fn name(&self) -> &'static str {
        self.def().name
    }

    fn compare(self, op: &str, value: impl Into<V>) -> Filter<T> {
        Filter::leaf(
            format!("{} {op} ?", quote_ident(self.name())),
            Box::new(value.into()),
        )
    }

    /// `column IS value` (NULL-safe equality).
    pub fn eq(self, value: impl Into<V>) -> Filter<T> {
        self.compare("IS", value)
    }
    /// `column IS NOT value`.
    pub fn ne(self, value: impl Into<V>) -> Filter<T> {
        self.compare("IS NOT", value)
    }
    /// `column < value`.
    pub fn lt(self, value: impl Into<V>) -> Filter<T> {
        self.compare("<", value)
    }
    /// `column <= value`.
    pub fn le(self, value: impl Into<V>) -> Filter<T> {
        self.compare("<=", value)
    }
    /// `column > value`.
    pub fn gt(self, value: impl Into<V>) -> Filter<T> {
        self.compare(">", value)
    }
    /// `column >= value`.
    pub fn ge(self, value: impl Into<V>) -> Filter<T> {
        self.compare(">=", value)
    }
}

/// A typed index: `notes::NOTES_BY_CREATOR` is an `Index<notes::Table>`.
pub struct Index<T> {
    index: usize,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Index<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Index<T> {}

impl<T: Table> Index<T> {
    /// The index at `index` among its table's declared indexes, as `schema!` declares it. Not
    /// public API.
    #[doc(hidden)]
    pub const fn __new(index: usize) -> Self {
        Index {
            index,
            _marker: PhantomData,
        }
    }

    /// The index's declaration.
    pub fn def(&self) -> &'static IndexDef {
        &T::DEF.indexes[self.index]
    }
}

/// A condition on the rows of table `T`; build one from a column (`notes::ID.eq(id)`).
pub struct Filter<T> {
    pub(crate) sql: String,
    pub(crate) params: Vec<Box<dyn ToSql>>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Filter<T> {
    fn leaf(sql: String, value: Box<dyn ToSql>) -> Self {
        Filter {
            sql,
            params: vec![value],
            _marker: PhantomData,
        }
    }

    /// `existing AND filter`, or `filter` alone.
    pub(crate) fn both(existing: Option<Filter<T>>, filter: Filter<T>) -> Option<Filter<T>> {
        Some(match existing {
            Some(f) => f.and(filter),
            None => filter,
        })
    }

    /// Both conditions.
    pub fn and(mut self, other: Filter<T>) -> Filter<T> {
        self.sql = format!("({}) AND ({})", self.sql, other.sql);
        self.params.extend(other.params);
        self
    }

    /// Either condition.
    pub fn or(mut self, other: Filter<T>) -> Filter<T> {
        self.sql = format!("({}) OR ({})", self.sql, other.sql);
        self.params.extend(other.params);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: TableDef = TableDef {
        name: "notes",
        columns: &[
            ColumnDef {
                name: "id",
                sql_type: "BLOB",
                nullable: false,
                primary_key: true,
                unique: false,
                default: None,
                references: None,
                autoincrement: false,
                collate: None,
                check: None,
                generated: None,
            },
            ColumnDef {
                name: "creator",
                sql_type: "BLOB",
                nullable: false,
                primary_key: false,
                unique: false,
                default: None,
                references: Some(ForeignKeyDef {
                    columns: &["creator"],
                    table: "accounts",
                    parent_columns: &["id"],
                    on_delete: OnDelete::Cascade,
                    on_update: OnDelete::NoAction,
                    deferrable: false,
                }),
                autoincrement: false,
                collate: None,
                check: None,
                generated: None,
            },
            ColumnDef {
                name: "title",
                sql_type: "TEXT",
                nullable: true,
                primary_key: false,
                unique: false,
                default: Some("'untitled'"),
                references: None,
                autoincrement: false,
                collate: None,
                check: None,
                generated: None,
            },
        ],
        primary_key: &[],
        uniques: &[],
        checks: &[],
        foreign_keys: &[],
        strict: false,
        without_rowid: false,
        indexes: &[IndexDef {
            name: "notes_by_creator",
            columns: &["creator"],
            terms: &[IndexTermDef {
                target: "creator",
                expression: false,
                collate: None,
                desc: None,
            }],
            unique: false,
            predicate: None,
        }],
    };

    #[test]
    fn ddl_is_valid_sqlite() {
        assert_eq!(
            NOTES.create_sql(),
            "CREATE TABLE \"notes\" (\"id\" BLOB NOT NULL PRIMARY KEY, \"creator\" BLOB NOT NULL \
             REFERENCES \"accounts\"(\"id\") ON DELETE CASCADE, \"title\" TEXT DEFAULT 'untitled')"
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE accounts (id BLOB PRIMARY KEY)")
            .unwrap();
        conn.execute_batch(&NOTES.create_sql()).unwrap();
        for sql in NOTES.index_sql() {
            conn.execute_batch(&sql).unwrap();
        }
    }
}
