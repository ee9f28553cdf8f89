//! [`Tx`]: what a migration function works with.

use std::any::TypeId;
use std::cell::RefCell;
use std::marker::PhantomData;

use rusqlite::types::ToSql;
use rusqlite::{Connection, Params};

use crate::error::{Error, Result};
use crate::migration::{ForeignKeys, Migration};
use crate::schema::{Column, Filter, Index, Record, SqlType, Table, TableDef, quote_ident};

/// The database a migration runs against: inside the migration's `BEGIN IMMEDIATE`
/// transaction, or in autocommit mode for `no_transaction` migrations.
///
/// Typed operations take the constants of the migration's declared schema
/// (`tx.insert(&notes::Row { .. })`, `tx.select::<prev::notes::Row>()`,
/// `tx.update(notes::Table).set(notes::CONTENT, "..")`); [`Tx::execute`] and [`Tx::conn`] remain
/// for raw SQL.
pub struct Tx<'c> {
    conn: &'c Connection,
    migration: Option<&'static Migration>,
    /// Tables being rebuilt: writes and reads through the new declaration go to the new table.
    redirects: RefCell<Vec<(TypeId, String)>>,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c Connection, migration: Option<&'static Migration>) -> Self {
        Tx {
            conn,
            migration,
            redirects: RefCell::new(Vec::new()),
        }
    }

    /// A `Tx` over a connection outside of any migration, e.g. to seed rows through a
    /// migration's typed schema in tests. The caller manages transactions.
    pub fn over(conn: &'c Connection) -> Self {
        Tx::new(conn, None)
    }

    /// The underlying rusqlite connection, for anything the typed API does not cover.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// The migration being applied, if any.
    pub fn migration(&self) -> Option<&'static Migration> {
        self.migration
    }

    /// Runs one SQL statement with parameters; returns the number of rows changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        Ok(self.conn.execute(sql, params)?)
    }

    /// Runs several SQL statements without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn table_name<T: Table>(&self) -> String {
        let id = TypeId::of::<T>();
        self.redirects
            .borrow()
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| T::DEF.name.to_string())
    }

    /// Creates a declared table and its declared indexes.
    pub fn create_table<T: Table>(&self, _table: T) -> Result<()> {
        self.conn.execute_batch(&T::DEF.create_sql())?;
        for sql in T::DEF.index_sql() {
            self.conn.execute_batch(&sql)?;
        }
        Ok(())
    }

    /// Creates one declared index.
    pub fn create_index<T: Table>(&self, index: Index<T>) -> Result<()> {
        self.conn
            .execute_batch(&index.def().create_sql(&self.table_name::<T>()))?;
        Ok(())
    }

    /// `ALTER TABLE .. ADD COLUMN` with the column as declared. SQLite only adds columns that
    /// are nullable or have a default, and never primary-key or unique ones: rebuild the table
    /// for those (see [`Tx::rebuild_table`]).
    pub fn add_column<T: Table, V: SqlType + 'static>(&self, column: Column<T, V>) -> Result<()> {
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN {}",
            quote_ident(&self.table_name::<T>()),
            column.def().column_sql()
        );
        self.conn.execute_batch(&sql)?;
        Ok(())
    }

    /// Drops a table that a later schema no longer declares.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        self.conn
            .execute_batch(&format!("DROP TABLE {}", quote_ident(name)))?;
        Ok(())
    }

    /// Inserts a row through its migration's declaration.
    pub fn insert<R: Record>(&self, row: &R) -> Result<()> {
        let def: &TableDef = <R::Table as Table>::DEF;
        let cols: Vec<_> = def.columns.iter().map(|c| quote_ident(c.name)).collect();
        let marks: Vec<_> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote_ident(&self.table_name::<R::Table>()),
            cols.join(", "),
            marks.join(", ")
        );
        self.conn
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(row.values()))?;
        Ok(())
    }

    /// Selects rows through a migration's declaration (usually the previous migration's, to read
    /// data as it was before this one).
    pub fn select<R: Record>(&self) -> Select<'_, 'c, R> {
        Select {
            tx: self,
            filter: None,
            order: Vec::new(),
            limit: None,
            _row: PhantomData,
        }
    }

    /// Updates rows of a declared table.
    pub fn update<T: Table>(&self, _table: T) -> Update<'_, 'c, T> {
        Update {
            tx: self,
            sets: Vec::new(),
            filter: None,
        }
    }

    /// Deletes rows of a declared table.
    pub fn delete<T: Table>(&self, _table: T) -> Delete<'_, 'c, T> {
        Delete {
            tx: self,
            filter: None,
        }
    }

    /// Rebuilds `table` to its new declaration, following SQLite's 12-step procedure
    /// (<https://www.sqlite.org/lang_altertable.html#otheralter>): creates the new table under a
    /// temporary name, runs `copy` (during which inserts and selects through the new
    /// declaration reach the new table, and the previous migration's declaration still reads the
    /// old one), drops the old table, renames the new one and creates the declared indexes.
    ///
    /// Requires `#[migration(.., foreign_keys = off)]`, so that dropping the old table neither
    /// cascades nor fails on references; the runner checks foreign keys before commit.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] without `foreign_keys = off` or outside a transaction; SQLite's errors
    /// otherwise.
    pub fn rebuild_table<T: Table>(
        &self,
        _table: T,
        copy: impl FnOnce(&Tx<'c>) -> Result<()>,
    ) -> Result<()> {
        let fk_off = self
            .migration
            .is_some_and(|m| m.foreign_keys == ForeignKeys::Off);
        if self.migration.is_some() && !fk_off {
            return Err(Error::Usage(format!(
                "rebuild_table(`{}`) needs `#[migration(.., foreign_keys = off)]`: with foreign \
                 keys enforced, dropping the old table deletes or rejects referencing rows",
                T::DEF.name
            )));
        }
        if self.conn.is_autocommit() {
            return Err(Error::Usage(
                "rebuild_table must run inside a transaction; remove `no_transaction`".into(),
            ));
        }
        let def = T::DEF;
        let tmp = format!("strata_rebuild_{}", def.name);
        // Step 3: remember triggers and views that mention the table, to recreate them.
        let mut stmt = self.conn.prepare(
            "SELECT sql FROM sqlite_schema WHERE type IN ('trigger', 'view') AND tbl_name = ?1 \
             AND sql IS NOT NULL",
        )?;
        let keep: Vec<String> = stmt
            .query_map([def.name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        // Step 4-5: the new table, filled by the caller.
        self.conn.execute_batch(&def.create_sql_named(&tmp))?;
        self.redirects
            .borrow_mut()
            .push((TypeId::of::<T>(), tmp.clone()));
        let copied = copy(self);
        self.redirects
            .borrow_mut()
            .retain(|(t, _)| *t != TypeId::of::<T>());
        copied?;
        // Step 6-7: replace the old table.
        self.conn.execute_batch(&format!(
            "DROP TABLE {}; ALTER TABLE {} RENAME TO {}",
            quote_ident(def.name),
            quote_ident(&tmp),
            quote_ident(def.name)
        ))?;
        // Step 8-9: indexes as declared, triggers and views as they were.
        for sql in def.index_sql().iter().chain(keep.iter()) {
            self.conn.execute_batch(sql)?;
        }
        Ok(())
    }
}

/// A `SELECT` through a declared row type; see [`Tx::select`].
pub struct Select<'t, 'c, R: Record> {
    tx: &'t Tx<'c>,
    filter: Option<Filter<R::Table>>,
    order: Vec<String>,
    limit: Option<usize>,
    _row: PhantomData<fn() -> R>,
}

impl<R: Record> Select<'_, '_, R> {
    /// Only rows matching `filter` (several calls combine with AND).
    pub fn filter(mut self, filter: Filter<R::Table>) -> Self {
        self.filter = Filter::both(self.filter.take(), filter);
        self
    }

    /// Orders by `column`, ascending (several calls add tie-breakers).
    pub fn order_by<V: SqlType + 'static>(mut self, column: Column<R::Table, V>) -> Self {
        self.order.push(quote_ident(column.name()));
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    fn sql(&self, what: &str) -> String {
        let mut sql = format!(
            "SELECT {what} FROM {}",
            quote_ident(&self.tx.table_name::<R::Table>())
        );
        if let Some(f) = &self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&f.sql);
        }
        if !self.order.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&self.order.join(", "));
        }
        if let Some(n) = self.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        sql
    }

    fn params(&self) -> &[Box<dyn ToSql>] {
        self.filter
            .as_ref()
            .map(|f| f.params.as_slice())
            .unwrap_or_default()
    }

    fn columns() -> String {
        let def = <R::Table as Table>::DEF;
        def.columns
            .iter()
            .map(|c| quote_ident(c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Calls `f` with each row, streaming: memory stays flat however large the table.
    pub fn for_each(self, mut f: impl FnMut(R) -> Result<()>) -> Result<()> {
        let sql = self.sql(&Self::columns());
        let mut stmt = self.tx.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(self.params()))?;
        while let Some(row) = rows.next()? {
            f(R::from_row(row)?)?;
        }
        Ok(())
    }

    /// All matching rows.
    pub fn all(self) -> Result<Vec<R>> {
        let mut out = Vec::new();
        self.for_each(|r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first matching row, if any.
    pub fn first(self) -> Result<Option<R>> {
        let this = self.limit(1);
        let sql = this.sql(&Self::columns());
        let mut stmt = this.tx.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(this.params()))?;
        Ok(match rows.next()? {
            Some(row) => Some(R::from_row(row)?),
            None => None,
        })
    }

    /// The number of matching rows.
    pub fn count(self) -> Result<u64> {
        let sql = self.sql("COUNT(*)");
        let n: i64 =
            self.tx
                .conn
                .query_row(&sql, rusqlite::params_from_iter(self.params()), |r| {
                    r.get(0)
                })?;
        Ok(n as u64)
    }
}

/// An `UPDATE` of a declared table; see [`Tx::update`].
pub struct Update<'t, 'c, T: Table> {
    tx: &'t Tx<'c>,
    sets: Vec<(&'static str, Box<dyn ToSql>)>,
    filter: Option<Filter<T>>,
}

impl<T: Table> Update<'_, '_, T> {
    /// Sets `column` to `value`; the value must convert into the column's declared type.
    pub fn set<V: SqlType + 'static>(mut self, column: Column<T, V>, value: impl Into<V>) -> Self {
        self.sets.push((column.name(), Box::new(value.into())));
        self
    }

    /// Only rows matching `filter` (several calls combine with AND).
    pub fn filter(mut self, filter: Filter<T>) -> Self {
        self.filter = Filter::both(self.filter.take(), filter);
        self
    }

    /// Runs the update; returns the number of rows changed.
    pub fn execute(self) -> Result<usize> {
        if self.sets.is_empty() {
            return Err(Error::Usage(format!(
                "update of `{}` sets no column; call .set(column, value)",
                T::DEF.name
            )));
        }
        let assignments: Vec<_> = self
            .sets
            .iter()
            .map(|(c, _)| format!("{} = ?", quote_ident(c)))
            .collect();
        let mut sql = format!(
            "UPDATE {} SET {}",
            quote_ident(&self.tx.table_name::<T>()),
            assignments.join(", ")
        );
        let mut params: Vec<Box<dyn ToSql>> = self.sets.into_iter().map(|(_, v)| v).collect();
        if let Some(f) = self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&f.sql);
            params.extend(f.params);
        }
        Ok(self
            .tx
            .conn
            .execute(&sql, rusqlite::params_from_iter(params))?)
    }
}

/// A `DELETE` from a declared table; see [`Tx::delete`].
pub struct Delete<'t, 'c, T: Table> {
    tx: &'t Tx<'c>,
    filter: Option<Filter<T>>,
}

impl<T: Table> Delete<'_, '_, T> {
    /// Only rows matching `filter` (several calls combine with AND).
    pub fn filter(mut self, filter: Filter<T>) -> Self {
        self.filter = Filter::both(self.filter.take(), filter);
        self
    }

    /// Runs the delete (all rows without a filter); returns the number of rows deleted.
    pub fn execute(self) -> Result<usize> {
        let mut sql = format!("DELETE FROM {}", quote_ident(&self.tx.table_name::<T>()));
        let mut params = Vec::new();
        if let Some(f) = self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&f.sql);
            params = f.params;
        }
        Ok(self
            .tx
            .conn
            .execute(&sql, rusqlite::params_from_iter(params))?)
    }
}
