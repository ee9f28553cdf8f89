//! Expand and contract: what a migration's declared schema changes, and whether a binary that
//! does not know the migration can still serve on what it leaves behind.
//!
//! A migration is *expand* when every change only adds (a table, a nullable or defaulted
//! column, an index) or loosens; old code keeps working on the new schema. It is *contract*
//! when it removes or tightens something old code relies on (drops or renames a table, column
//! or index; adds NOT NULL, UNIQUE, a key or a foreign key to existing data; changes a type or
//! a primary key). During a deploy, Strata applies expand migrations at once and defers a
//! contract until no instance of an older binary is alive (see [`crate::instances`]).
//!
//! The class is derived by comparing the migration's declared schema with the previous
//! migration's of the same role. A migration may also *declare* `contract` (in its attribute)
//! for changes no schema shows — a data rewrite old code cannot read. A derived contract must
//! be declared too: the test harness fails naming what it removes or tightens, so that the
//! word `contract` is in the code a reviewer reads.

use std::fmt;

use crate::migration::Migration;
use crate::schema::{ColumnDef, ForeignKeyDef, IndexDef, Schema, TableDef};

/// Whether binaries that do not know a migration can serve on the schema it leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Only adds or loosens: older binaries keep working.
    Expand,
    /// Removes or tightens: older binaries may fail on it.
    Contract,
}

impl Class {
    /// `expand` or `contract`, as the history records it.
    pub fn label(self) -> &'static str {
        match self {
            Class::Expand => "expand",
            Class::Contract => "contract",
        }
    }

    /// The class the history recorded (`None`: recorded before classes were, or unknown
    /// text — treated as a contract by whoever must decide).
    pub fn parse(text: &str) -> Option<Class> {
        match text {
            "expand" => Some(Class::Expand),
            "contract" => Some(Class::Contract),
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What changed about one item of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// It is new.
    Added,
    /// It is gone (a rename shows as removed + added).
    Removed,
    /// It is there before and after, declared differently.
    Changed,
}

/// One difference between two declared schemas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchemaChange {
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// `table`, `column`, `index`, `primary key`.
    pub item: &'static str,
    /// `notes`, `notes.title`, `notes.idx_notes_creator`.
    pub name: String,
    /// What exactly, in words: `nullable → NOT NULL`, `TEXT NOT NULL DEFAULT ''`.
    pub detail: String,
    /// Whether this change makes the migration a contract.
    pub contract: bool,
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            ChangeKind::Added => "adds",
            ChangeKind::Removed => "drops",
            ChangeKind::Changed => "changes",
        };
        write!(f, "{verb} {} {}", self.item, self.name)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Every difference between the `before` declaration (`None`: an empty database) and the
/// `after` one, tables in `after`'s order, then removed tables.
pub fn schema_changes(before: Option<&Schema>, after: &Schema) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    for t in after.tables() {
        match before.and_then(|b| b.table(t.name)) {
            None => out.push(SchemaChange {
                kind: ChangeKind::Added,
                item: "table",
                name: t.name.to_string(),
                detail: format!("{} columns", t.columns.len()),
                contract: false,
            }),
            Some(old) => table_changes(old, t, &mut out),
        }
    }
    if let Some(before) = before {
        for t in before.tables() {
            if after.table(t.name).is_none() {
                out.push(SchemaChange {
                    kind: ChangeKind::Removed,
                    item: "table",
                    name: t.name.to_string(),
                    detail: String::new(),
                    contract: true,
                });
            }
        }
    }
    let views = |s: Option<&Schema>| -> Vec<(&'static str, String)> {
        s.map(|s| s.views().iter().map(|v| (v.name, v.create_sql())).collect())
            .unwrap_or_default()
    };
    let triggers = |s: Option<&Schema>| -> Vec<(&'static str, String)> {
        s.map(|s| {
            s.triggers()
                .iter()
                .map(|t| (t.name, t.create_sql()))
                .collect()
        })
        .unwrap_or_default()
    };
    for (item, old, new) in [
        ("view", views(before), views(Some(after))),
        ("trigger", triggers(before), triggers(Some(after))),
    ] {
        object_changes(item, &old, &new, &mut out);
    }
    out
}

/// Views and triggers: a new one is an expansion; one removed or changed is a contraction
/// (old binaries may query the view, or rely on what the trigger did).
fn object_changes(
    item: &'static str,
    old: &[(&'static str, String)],
    new: &[(&'static str, String)],
    out: &mut Vec<SchemaChange>,
) {
    for (name, sql) in new {
        let (kind, contract) = match old.iter().find(|(n, _)| n == name) {
            None => (ChangeKind::Added, false),
            Some((_, old_sql)) if old_sql != sql => (ChangeKind::Changed, true),
            Some(_) => continue,
        };
        out.push(SchemaChange {
            kind,
            item,
            name: name.to_string(),
            detail: String::new(),
            contract,
        });
    }
    for (name, _) in old.iter().filter(|(n, _)| !new.iter().any(|(m, _)| m == n)) {
        out.push(SchemaChange {
            kind: ChangeKind::Removed,
            item,
            name: name.to_string(),
            detail: String::new(),
            contract: true,
        });
    }
}

fn column_text(c: &ColumnDef) -> String {
    let mut s = c.sql_type.to_string();
    if !c.nullable {
        s.push_str(" NOT NULL");
    }
    if c.unique {
        s.push_str(" UNIQUE");
    }
    if let Some(d) = c.default {
        s.push_str(" DEFAULT ");
        s.push_str(d);
    }
    if let Some(c) = c.collate {
        s.push_str(" COLLATE ");
        s.push_str(c);
    }
    if let Some(fk) = c.references {
        s.push(' ');
        s.push_str(&fk.references_sql());
    }
    s
}

fn primary_key(t: &TableDef) -> Vec<&'static str> {
    if t.primary_key.is_empty() {
        t.columns
            .iter()
            .filter(|c| c.primary_key)
            .map(|c| c.name)
            .collect()
    } else {
        t.primary_key.to_vec()
    }
}

fn table_changes(old: &TableDef, new: &TableDef, out: &mut Vec<SchemaChange>) {
    let table = new.name;
    let (old_pk, new_pk) = (primary_key(old), primary_key(new));
    if old_pk != new_pk {
        out.push(SchemaChange {
            kind: ChangeKind::Changed,
            item: "primary key",
            name: table.to_string(),
            detail: format!("({}) → ({})", old_pk.join(", "), new_pk.join(", ")),
            contract: true,
        });
    }
    let mut constraint = |item: &'static str, detail: String, contract: bool| {
        out.push(SchemaChange {
            kind: ChangeKind::Changed,
            item,
            name: table.to_string(),
            detail,
            contract,
        });
    };
    for u in new.uniques.iter().filter(|u| !old.uniques.contains(u)) {
        constraint(
            "unique constraint",
            format!("adds UNIQUE ({})", u.join(", ")),
            true,
        );
    }
    for u in old.uniques.iter().filter(|u| !new.uniques.contains(u)) {
        constraint(
            "unique constraint",
            format!("drops UNIQUE ({})", u.join(", ")),
            true,
        );
    }
    for c in new.checks.iter().filter(|c| !old.checks.contains(c)) {
        constraint("check", format!("adds CHECK ({c})"), true);
    }
    for c in old.checks.iter().filter(|c| !new.checks.contains(c)) {
        constraint("check", format!("drops CHECK ({c})"), false);
    }
    for fk in new
        .foreign_keys
        .iter()
        .filter(|f| !old.foreign_keys.contains(f))
    {
        let detail = format!(
            "adds FOREIGN KEY ({}) {}",
            fk.columns.join(", "),
            fk.references_sql()
        );
        constraint("foreign key", detail, true);
    }
    for fk in old
        .foreign_keys
        .iter()
        .filter(|f| !new.foreign_keys.contains(f))
    {
        let detail = format!(
            "drops FOREIGN KEY ({}) {}",
            fk.columns.join(", "),
            fk.references_sql()
        );
        constraint("foreign key", detail, false);
    }
    if old.strict != new.strict {
        let detail = if new.strict {
            "becomes STRICT"
        } else {
            "is no longer STRICT"
        };
        constraint("table option", detail.to_string(), true);
    }
    if old.without_rowid != new.without_rowid {
        let detail = if new.without_rowid {
            "becomes WITHOUT ROWID"
        } else {
            "gets a rowid again"
        };
        constraint("table option", detail.to_string(), true);
    }
    for c in new.columns {
        let name = format!("{table}.{}", c.name);
        let Some(o) = old.column(c.name) else {
            // Old binaries do not write the new column: it must take NULL or a default.
            let contract = !c.nullable && c.default.is_none();
            out.push(SchemaChange {
                kind: ChangeKind::Added,
                item: "column",
                name,
                detail: if contract {
                    format!("{}: NOT NULL without a default", column_text(c))
                } else {
                    column_text(c)
                },
                contract,
            });
            continue;
        };
        let mut what = Vec::new();
        let mut contract = false;
        if o.sql_type != c.sql_type {
            what.push(format!("type {} → {}", o.sql_type, c.sql_type));
            contract = true;
        }
        if o.nullable && !c.nullable {
            what.push("nullable → NOT NULL".to_string());
            contract = true;
        } else if !o.nullable && c.nullable {
            what.push("NOT NULL → nullable".to_string());
        }
        if !o.unique && c.unique {
            what.push("adds UNIQUE".to_string());
            contract = true;
        } else if o.unique && !c.unique {
            what.push("drops UNIQUE".to_string());
            contract = true;
        }
        if o.default != c.default {
            what.push(format!(
                "default {} → {}",
                o.default.unwrap_or("none"),
                c.default.unwrap_or("none")
            ));
            // Old binaries that omit the column relied on the default being there.
            contract |= c.default.is_none() && !c.nullable;
        }
        let target = |r: Option<ForeignKeyDef>| r.map(|r| (r.table, r.parent_columns));
        if target(o.references) != target(c.references) {
            let show = |r: Option<ForeignKeyDef>| {
                r.map_or("none".to_string(), |r| {
                    format!("{}({})", r.table, r.parent_columns.join(", "))
                })
            };
            what.push(format!(
                "references {} → {}",
                show(o.references),
                show(c.references)
            ));
            contract |= c.references.is_some();
        } else if o.references != c.references {
            what.push("ON DELETE/UPDATE or DEFERRABLE changes".to_string());
            contract = true;
        }
        if o.collate != c.collate {
            what.push(format!(
                "collation {} → {}",
                o.collate.unwrap_or("BINARY"),
                c.collate.unwrap_or("BINARY")
            ));
            contract = true;
        }
        if o.check != c.check {
            what.push(match (o.check, c.check) {
                (None, Some(new)) => format!("adds CHECK ({new})"),
                (Some(_), None) => "drops its CHECK".to_string(),
                (_, _) => "changes its CHECK".to_string(),
            });
            // A new or changed check can refuse what old binaries write.
            contract |= c.check.is_some();
        }
        if o.generated != c.generated {
            what.push("changes its generated expression".to_string());
            contract = true;
        }
        if o.autoincrement != c.autoincrement {
            what.push(if c.autoincrement {
                "adds AUTOINCREMENT".to_string()
            } else {
                "drops AUTOINCREMENT".to_string()
            });
            contract = true;
        }
        if !what.is_empty() {
            out.push(SchemaChange {
                kind: ChangeKind::Changed,
                item: "column",
                name,
                detail: what.join(", "),
                contract,
            });
        }
    }
    for o in old.columns {
        if new.column(o.name).is_none() {
            out.push(SchemaChange {
                kind: ChangeKind::Removed,
                item: "column",
                name: format!("{table}.{}", o.name),
                detail: column_text(o),
                contract: true,
            });
        }
    }
    let index_text = |i: &IndexDef| {
        let terms: Vec<String> = i
            .terms
            .iter()
            .map(|t| {
                let mut text = t.target.to_string();
                if let Some(c) = t.collate {
                    text.push_str(" COLLATE ");
                    text.push_str(c);
                }
                if t.desc == Some(true) {
                    text.push_str(" DESC");
                }
                text
            })
            .collect();
        format!(
            "{}on {}{}",
            if i.unique { "UNIQUE " } else { "" },
            terms.join(", "),
            i.predicate
                .map(|p| format!(" WHERE {p}"))
                .unwrap_or_default()
        )
    };
    for i in new.indexes {
        let name = format!("{table}.{}", i.name);
        match old.indexes.iter().find(|o| o.name == i.name) {
            None => out.push(SchemaChange {
                kind: ChangeKind::Added,
                item: "index",
                name,
                detail: index_text(i),
                // A new UNIQUE index tightens existing data and old binaries' writes.
                contract: i.unique,
            }),
            Some(o) if o != i => out.push(SchemaChange {
                kind: ChangeKind::Changed,
                item: "index",
                name,
                detail: format!("{} → {}", index_text(o), index_text(i)),
                contract: i.unique,
            }),
            Some(_) => {}
        }
    }
    for o in old.indexes {
        if !new.indexes.iter().any(|i| i.name == o.name) {
            out.push(SchemaChange {
                kind: ChangeKind::Removed,
                item: "index",
                name: format!("{table}.{}", o.name),
                detail: index_text(o),
                // Old queries may rely on it (ON CONFLICT targets a unique one; plans use it).
                contract: true,
            });
        }
    }
}

/// A migration's class and the changes it was derived from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// The class the runner acts on: contract when declared or derived.
    pub class: Class,
    /// Whether the attribute says `contract`.
    pub declared: bool,
    /// The declared schema's differences from the previous migration's of the same role
    /// (empty without a declared schema).
    pub changes: Vec<SchemaChange>,
    /// Whether a schema was compared (false: `schema = none`, or no earlier declaration to
    /// compare with after the first migration).
    pub compared: bool,
}

impl Classification {
    /// The changes that make it a contract.
    pub fn contract_changes(&self) -> impl Iterator<Item = &SchemaChange> {
        self.changes.iter().filter(|c| c.contract)
    }

    /// A derived contract the attribute does not declare (what the harness refuses).
    pub fn undeclared_contract(&self) -> bool {
        !self.declared && self.changes.iter().any(|c| c.contract)
    }
}

/// Classifies `m` against the migrations of its role in `known` (sorted by version): its
/// declared schema compared with that of the newest earlier migration declaring one.
pub fn classify(known: &[&'static Migration], m: &Migration) -> Classification {
    let declared = m.declares_contract();
    let Some(after) = m.schema() else {
        return Classification {
            class: if declared {
                Class::Contract
            } else {
                Class::Expand
            },
            declared,
            changes: Vec::new(),
            compared: false,
        };
    };
    let earlier: Vec<&&Migration> = known
        .iter()
        .filter(|p| p.role() == m.role() && p.version() < m.version())
        .collect();
    let before = earlier.iter().rev().find_map(|p| p.schema());
    let compared = before.is_some() || earlier.is_empty();
    let changes = if compared {
        schema_changes(before, after)
    } else {
        Vec::new()
    };
    let class = if declared || changes.iter().any(|c| c.contract) {
        Class::Contract
    } else {
        Class::Expand
    };
    Classification {
        class,
        declared,
        changes,
        compared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{IndexTermDef, OnDelete};

    const fn col(name: &'static str, sql_type: &'static str, nullable: bool) -> ColumnDef {
        ColumnDef {
            name,
            sql_type,
            nullable,
            primary_key: false,
            unique: false,
            default: None,
            references: None,
            autoincrement: false,
            collate: None,
            check: None,
            generated: None,
        }
    }

    fn schema(tables: &'static [&'static TableDef]) -> Schema {
        Schema::__new(tables, &[], &[], "")
    }

    const ID: ColumnDef = ColumnDef {
        primary_key: true,
        ..col("id", "TEXT", false)
    };
    const BODY: ColumnDef = col("body", "TEXT", false);
    const NOTES: TableDef = TableDef {
        name: "notes",
        columns: &[ID, BODY],
        primary_key: &[],
        uniques: &[],
        checks: &[],
        foreign_keys: &[],
        strict: false,
        without_rowid: false,
        indexes: &[],
    };

    fn classes(
        before: &'static [&'static TableDef],
        after: &'static [&'static TableDef],
    ) -> Vec<(String, bool)> {
        schema_changes(Some(&schema(before)), &schema(after))
            .iter()
            .map(|c| (c.to_string(), c.contract))
            .collect()
    }

    #[test]
    fn adding_tables_nullable_or_defaulted_columns_and_indexes_is_expand() {
        const WITH: TableDef = TableDef {
            columns: &[
                ID,
                BODY,
                col("title", "TEXT", true),
                ColumnDef {
                    default: Some("0"),
                    ..col("pinned", "INTEGER", false)
                },
            ],
            indexes: &[IndexDef {
                name: "by_title",
                columns: &["title"],
                terms: &[IndexTermDef {
                    target: "title",
                    expression: false,
                    collate: None,
                    desc: None,
                }],
                unique: false,
                predicate: None,
            }],
            ..NOTES
        };
        const TAGS: TableDef = TableDef {
            name: "tags",
            ..NOTES
        };
        let got = classes(&[&NOTES], &[&WITH, &TAGS]);
        assert_eq!(
            got,
            vec![
                ("adds column notes.title (TEXT)".to_string(), false),
                (
                    "adds column notes.pinned (INTEGER NOT NULL DEFAULT 0)".to_string(),
                    false
                ),
                ("adds index notes.by_title (on title)".to_string(), false),
                ("adds table tags (2 columns)".to_string(), false),
            ]
        );
        assert!(
            schema_changes(None, &schema(&[&NOTES]))
                .iter()
                .all(|c| !c.contract)
        );
    }

    #[test]
    fn drops_and_renames_are_contract() {
        const RENAMED: TableDef = TableDef {
            columns: &[ID, col("content", "TEXT", false)],
            ..NOTES
        };
        let got = classes(&[&NOTES], &[&RENAMED]);
        assert_eq!(
            got,
            vec![
                (
                    "adds column notes.content (TEXT NOT NULL: NOT NULL without a default)"
                        .to_string(),
                    true
                ),
                ("drops column notes.body (TEXT NOT NULL)".to_string(), true),
            ]
        );
        assert_eq!(
            classes(&[&NOTES], &[]),
            vec![("drops table notes".to_string(), true)]
        );
    }

    #[test]
    fn tightening_retyping_and_rekeying_are_contract_loosening_is_not() {
        const LOOSE: TableDef = TableDef {
            columns: &[ID, col("body", "TEXT", true)],
            ..NOTES
        };
        assert_eq!(
            classes(&[&NOTES], &[&LOOSE]),
            vec![(
                "changes column notes.body (NOT NULL → nullable)".to_string(),
                false
            )]
        );
        assert_eq!(
            classes(&[&LOOSE], &[&NOTES]),
            vec![(
                "changes column notes.body (nullable → NOT NULL)".to_string(),
                true
            )]
        );
        const RETYPED: TableDef = TableDef {
            columns: &[ID, col("body", "BLOB", false)],
            ..NOTES
        };
        assert!(classes(&[&NOTES], &[&RETYPED])[0].1);
        const REKEYED: TableDef = TableDef {
            columns: &[col("id", "TEXT", false), BODY],
            primary_key: &["id", "body"],
            ..NOTES
        };
        assert_eq!(
            classes(&[&NOTES], &[&REKEYED])[0],
            (
                "changes primary key notes ((id) → (id, body))".to_string(),
                true
            )
        );
        const REFERENCING: TableDef = TableDef {
            columns: &[
                ID,
                ColumnDef {
                    references: Some(ForeignKeyDef {
                        columns: &["creator"],
                        table: "accounts",
                        parent_columns: &["id"],
                        on_delete: OnDelete::Cascade,
                        on_update: OnDelete::NoAction,
                        deferrable: false,
                    }),
                    ..BODY
                },
            ],
            ..NOTES
        };
        assert!(classes(&[&NOTES], &[&REFERENCING])[0].1);
    }

    #[test]
    fn unique_indexes_added_and_any_index_dropped_are_contract() {
        const UNIQUE: TableDef = TableDef {
            indexes: &[IndexDef {
                name: "one_body",
                columns: &["body"],
                terms: &[IndexTermDef {
                    target: "body",
                    expression: false,
                    collate: None,
                    desc: None,
                }],
                unique: true,
                predicate: None,
            }],
            ..NOTES
        };
        assert_eq!(
            classes(&[&NOTES], &[&UNIQUE]),
            vec![(
                "adds index notes.one_body (UNIQUE on body)".to_string(),
                true
            )]
        );
        assert_eq!(
            classes(&[&UNIQUE], &[&NOTES]),
            vec![(
                "drops index notes.one_body (UNIQUE on body)".to_string(),
                true
            )]
        );
        assert!(classes(&[&NOTES], &[&NOTES]).is_empty());
    }
}
