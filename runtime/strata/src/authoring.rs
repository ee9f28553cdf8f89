//! Writing migrations: scaffold the next one from the previous one's schema (`strata new`), and
//! adopt an existing database by printing its schema as a declaration (`strata introspect`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::inspect::{ColumnInfo, ForeignKeyInfo, IndexTerm, SchemaSnapshot, TableInfo};
use crate::sqltext;
use crate::store;

/// A migration file found in a migrations directory.
#[derive(Debug, Clone)]
struct Existing {
    version: i64,
    module: String,
    role: String,
    text: String,
}

/// What [`new_migration`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewMigration {
    /// The file written: `<dir>/<module>.rs`.
    pub path: PathBuf,
    /// The new migration's version: the current UTC time as `YYYYMMDDHHMMSS`, or one second
    /// after the newest existing migration when that is not older.
    pub version: i64,
    /// The module's name: `m<version>_<name>`.
    pub module: String,
    /// The role it targets: the one given, else the directory's only role, else `main`.
    pub role: String,
    /// The migration whose schema declaration was copied.
    pub copied_from: Option<String>,
    /// Where the module was registered (`lib.rs`), if it could be.
    pub registered_in: Option<PathBuf>,
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "yield",
];

/// The text between the `{` at `open` and its matching `}`, skipping strings and comments.
fn braced(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, open);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[open + 1..i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Version and role from the file's `#[migration(..)]`.
fn parse_attribute(text: &str) -> Option<(i64, String)> {
    let start = text.find("#[migration(")? + "#[migration(".len();
    let args = &text[start..start + text[start..].find(")]")?];
    let version = args.split(',').next()?.trim().parse().ok()?;
    let role = args
        .split(',')
        .filter_map(|a| a.split_once('='))
        .find(|(k, _)| k.trim() == "role")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| crate::DEFAULT_ROLE.to_string());
    Some((version, role))
}

fn existing(dir: &Path) -> Result<Vec<Existing>> {
    let entries = std::fs::read_dir(dir).map_err(|_| Error::MissingDirectory(dir.to_path_buf()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(module) = name.strip_suffix(".rs") else {
            continue;
        };
        let is_migration = module.len() > 16
            && module.starts_with('m')
            && module[1..15].bytes().all(|b| b.is_ascii_digit())
            && module.as_bytes()[15] == b'_';
        if !is_migration {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| Error::Usage(format!("reading {}: {e}", entry.path().display())))?;
        if let Some((version, role)) = parse_attribute(&text) {
            out.push(Existing {
                version,
                module: module.to_string(),
                role,
                text,
            });
        }
    }
    out.sort_by_key(|e| e.version);
    Ok(out)
}

/// The `schema!` body of `file`, following `pub use super::m..::{SCHEMA, ..}` re-exports.
fn schema_of<'a>(file: &'a Existing, all: &'a [Existing]) -> Option<&'a str> {
    if let Some(at) = file
        .text
        .find("schema! {")
        .or_else(|| file.text.find("schema!{"))
    {
        let open = at + file.text[at..].find('{')?;
        return braced(&file.text, open);
    }
    let reexport = file
        .text
        .lines()
        .find(|l| l.contains("pub use super::") && l.contains("SCHEMA"))?;
    let target = reexport.split("super::").nth(1)?.split("::").next()?;
    let next = all
        .iter()
        .find(|e| e.module == target && e.version < file.version)?;
    schema_of(next, all)
}

fn timestamp(t: NaiveDateTime) -> i64 {
    t.format("%Y%m%d%H%M%S")
        .to_string()
        .parse()
        .expect("14 digits")
}

/// Writes a new migration `<dir>/m<version>_<name>.rs` for `role`, versioned by `now` (UTC) or,
/// if that is not newer than every existing migration, one second after the newest. Its schema
/// declaration is a copy of the previous migration of the role; it is registered as
/// `pub mod ..;` in `<dir>/lib.rs` when that file exists.
///
/// # Errors
///
/// [`Error::Usage`] for a name that is no Rust identifier, or a missing role when the
/// directory holds several; [`Error::MissingDirectory`] when `dir` does not exist.
pub fn new_migration(
    dir: &Path,
    name: &str,
    role: Option<&str>,
    now: DateTime<Utc>,
) -> Result<NewMigration> {
    new_migration_with(dir, name, role, now, false)
}

/// [`new_migration`], and with `inherit` the short form of the declaration: `extends` the
/// previous migration of the role, so that only the tables this one changes are written out.
///
/// # Errors
///
/// As [`new_migration`].
pub fn new_migration_with(
    dir: &Path,
    name: &str,
    role: Option<&str>,
    now: DateTime<Utc>,
    inherit: bool,
) -> Result<NewMigration> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid || KEYWORDS.contains(&name) {
        return Err(Error::Usage(format!(
            "`{name}` cannot name a migration: use a lowercase Rust identifier like `add_note_titles`"
        )));
    }
    let all = existing(dir)?;
    let roles: std::collections::BTreeSet<&str> = all.iter().map(|e| e.role.as_str()).collect();
    let role = match (role, roles.len()) {
        (Some(r), _) => r.to_string(),
        (None, 0) => crate::DEFAULT_ROLE.to_string(),
        (None, 1) => roles.first().map(ToString::to_string).unwrap_or_default(),
        (None, _) => {
            return Err(Error::Usage(format!(
                "{} holds migrations of several roles ({}); say which with --role",
                dir.display(),
                roles.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let mut at = now.naive_utc();
    if let Some(newest) = all.last() {
        let newest_at = NaiveDateTime::parse_from_str(&newest.version.to_string(), "%Y%m%d%H%M%S")
            .map_err(|e| Error::Usage(format!("{} has an invalid version: {e}", newest.module)))?;
        if at.and_utc().timestamp() <= newest_at.and_utc().timestamp() {
            at = newest_at + TimeDelta::seconds(1);
        }
    }
    let version = timestamp(at);
    let module = format!("m{version}_{name}");
    let previous = all.iter().rev().find(|e| e.role == role);
    let mut text = String::from("use strata::{Result, Tx, migration};\n");
    if let Some(prev) = previous {
        for line in prev.text.lines() {
            let l = line.trim();
            // Its own imports, but not the modules of earlier migrations it read from (`use
            // crate::m.. as before`): the new migration reads from this one, as `prev`.
            // (`use ::strata::…` is `use strata::…`, which the new file has already.)
            let l = l.replacen("use ::", "use ", 1);
            if l.starts_with("use ")
                && !l.starts_with("use super")
                && !l.starts_with("use crate::")
                && !l.starts_with("use strata::")
            {
                let _ = writeln!(text, "{l}");
            }
        }
        let _ = writeln!(
            text,
            "\n#[allow(unused_imports)]\nuse super::{} as prev;",
            prev.module
        );
    }
    let schema = previous.and_then(|p| schema_of(p, &all));
    let _ = writeln!(text);
    match (schema, previous) {
        (Some(_), Some(prev)) if inherit => {
            let _ = writeln!(
                text,
                "// The tables of `{role}` as this migration leaves them: those of {module} and,\n\
                 // declared here in full, each table this migration adds or changes.\n\
                 strata::schema! {{\n    extends super::{module};\n}}",
                module = prev.module
            );
        }
        (Some(body), _) => {
            let _ = writeln!(
                text,
                "// The tables of `{role}` as this migration leaves them: copied from {}; change them.",
                previous.map(|p| p.module.as_str()).unwrap_or_default()
            );
            let _ = writeln!(text, "strata::schema! {{{body}}}");
        }
        (None, _) => {
            let _ = writeln!(
                text,
                "// The tables of `{role}` as this migration leaves them, e.g.\n\
                 //     table notes {{ id: i64 primary key, content: String, }}\n\
                 strata::schema! {{}}"
            );
        }
    }
    let _ = write!(
        text,
        "\n/// Describe the change here: this comment becomes the migration's description.\n\
         #[migration({version}, role = \"{role}\")]\n\
         fn {name}(tx: &mut Tx) -> Result<()> {{\n    \
         // Bring the database to the schema above: `tx.create_table(..)`, `tx.add_column(..)`,\n    \
         // `tx.rebuild_table(..)` (with `foreign_keys = off`), or read rows through\n    \
         // `prev::<table>::Row` and write them through this migration's rows.\n    \
         let _ = tx;\n    \
         Ok(())\n\
         }}\n"
    );
    let path = dir.join(format!("{module}.rs"));
    std::fs::write(&path, text)
        .map_err(|e| Error::Usage(format!("writing {}: {e}", path.display())))?;
    let registered_in = register(dir, &module)?;
    Ok(NewMigration {
        path,
        version,
        module,
        role,
        copied_from: schema.and(previous.map(|p| p.module.clone())),
        registered_in,
    })
}

/// Adds `pub mod <module>;` after the last migration module of `<dir>/lib.rs`.
fn register(dir: &Path, module: &str) -> Result<Option<PathBuf>> {
    let lib = dir.join("lib.rs");
    let Ok(text) = std::fs::read_to_string(&lib) else {
        return Ok(None);
    };
    // Documented, so that a crate with `missing_docs` stays clean: the name, in words
    // (`m20300102030405_add_note_titles` → "Add note titles."), until its author says more.
    let words = module
        .split_once('_')
        .map_or(module, |(_, name)| name)
        .replace('_', " ");
    let mut chars = words.chars();
    let title: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    let line = format!("/// {title}.\npub mod {module};");
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.iter().rposition(|l| {
        let l = l.trim_start_matches("pub ").trim();
        l.starts_with("mod m") && l.len() > 20 && l[5..19].bytes().all(|b| b.is_ascii_digit())
    });
    match last {
        Some(i) => lines.insert(i + 1, &line),
        None => lines.push(&line),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(&lib, out)
        .map_err(|e| Error::Usage(format!("writing {}: {e}", lib.display())))?;
    Ok(Some(lib))
}

/// The Rust type of a column declared with SQL type `declared` (without its `Option`), and the
/// SQL type that Rust type maps to; when that is not `declared` (ignoring case), the column
/// needs `as "declared"`.
fn rust_type(declared: &str) -> (&'static str, &'static str) {
    let upper = declared.trim().to_ascii_uppercase();
    // SQLite's affinity rules (https://www.sqlite.org/datatype3.html#determination_of_column_affinity),
    // with booleans and dates given the Rust types their values usually have.
    if upper.is_empty() || upper == "ANY" {
        ("strata::Value", "")
    } else if upper.contains("INT") {
        ("i64", "INTEGER")
    } else if upper.starts_with("BOOL") {
        ("bool", "INTEGER")
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        ("String", "TEXT")
    } else if upper.contains("BLOB") {
        ("Vec<u8>", "BLOB")
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        ("f64", "REAL")
    } else if upper.contains("DATE") || upper.contains("TIME") {
        ("String", "TEXT")
    } else {
        // NUMERIC affinity (NUMERIC, DECIMAL, JSON, `string`, ..): SQLite turns text that looks
        // like a number into one and keeps the rest as text, so any value may come back.
        ("strata::Value", "")
    }
}

/// `s` as a Rust string literal on one line.
fn rust_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as a Rust string literal that keeps its line breaks (for a view's or trigger's SQL).
fn rust_text(s: &str) -> String {
    let lines: Vec<String> = s
        .split('\n')
        .map(|l| {
            let quoted = rust_str(l);
            quoted[1..quoted.len() - 1].to_string()
        })
        .collect();
    format!("\"{}\"", lines.join("\n"))
}

/// Rust's keywords, strict and reserved: a name that is one is written `r#name`.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// `name` as a Rust identifier (`r#type` for a keyword); `None` when it cannot be one.
fn rust_ident(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_";
    if !valid || matches!(name, "self" | "Self" | "super" | "crate") {
        return None;
    }
    Some(if RUST_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    })
}

/// A default as `schema!` writes it: `null`, a number or string literal, or `sql("expr")`
/// (without parentheses around all of it; `schema!` adds them).
fn default_literal(sql: &str) -> String {
    let tokens = sqltext::tokenize(sql);
    let inner = sqltext::strip_outer_parens(&tokens);
    // A number `schema!` writes back as it is: no leading zeros, no exponent, no `_`.
    let plain_number = |t: &sqltext::Token<'_>| {
        let digits = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'))
        };
        t.kind == sqltext::Kind::Number
            && match t.text.split_once('.') {
                None => digits(t.text) && t.text.parse::<i64>().is_ok(),
                Some((int, frac)) => {
                    digits(int) && !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit())
                }
            }
    };
    if let Some(text) = sqltext::bare_word_default(sql) {
        // `DEFAULT Draft` / `DEFAULT "Draft"`: SQLite stores the string 'Draft'.
        return rust_str(&text);
    }
    match inner {
        [w] if w.is("null") => "null".to_string(),
        [n] if plain_number(n) => n.text.to_string(),
        [minus, n] if minus.text == "-" && plain_number(n) => format!("-{}", n.text),
        [s] if s.kind == sqltext::Kind::Str => {
            let text = &s.text[1..s.text.len() - 1];
            rust_str(&text.replace("''", "'"))
        }
        _ => format!("sql({})", rust_str(&sqltext::tidy_expr(sql))),
    }
}

/// `on delete ..` / `on update ..` for an action as SQLite names it; empty for `NO ACTION`.
fn action(on: &str, sqlite: &str) -> String {
    match sqlite {
        "CASCADE" => format!(" on {on} cascade"),
        "RESTRICT" => format!(" on {on} restrict"),
        "SET NULL" => format!(" on {on} set null"),
        "SET DEFAULT" => format!(" on {on} set default"),
        _ => String::new(),
    }
}

/// `references parent(cols) [on delete ..] [on update ..] [deferrable]`.
fn references(fk: &ForeignKeyInfo) -> String {
    let mut s = format!(
        "references {}",
        rust_ident(&fk.table).unwrap_or(fk.table.clone())
    );
    if fk.to.iter().any(|t| !t.is_empty()) {
        let cols: Vec<String> = fk
            .to
            .iter()
            .map(|c| rust_ident(c).unwrap_or(c.clone()))
            .collect();
        let _ = write!(s, "({})", cols.join(", "));
    }
    s.push_str(&action("delete", &fk.on_delete));
    s.push_str(&action("update", &fk.on_update));
    if fk.deferred {
        s.push_str(" deferrable");
    }
    s
}

/// Why `t` cannot be declared: a name that is no Rust identifier.
fn undeclarable(t: &TableInfo) -> Option<String> {
    if rust_ident(&t.name).is_none() {
        return Some(format!("its name `{}` is no Rust identifier", t.name));
    }
    t.columns
        .iter()
        .find(|c| rust_ident(&c.name).is_none())
        .map(|c| format!("column `{}` has a name that is no Rust identifier", c.name))
}

/// A term of an automatic (constraint) index as written in `CREATE TABLE`, for a comment.
fn constraint_term(t: &IndexTerm) -> String {
    let mut s = t.column.clone();
    if t.collation != "binary" {
        let _ = write!(s, " COLLATE {}", t.collation.to_ascii_uppercase());
    }
    if t.desc {
        s.push_str(" DESC");
    }
    s
}

fn declare_table(
    t: &TableInfo,
    snapshot: &SchemaSnapshot,
    sql: &BTreeMap<String, String>,
    out: &mut String,
) {
    let parsed = sql
        .get(&t.name)
        .and_then(|s| sqltext::parse_create_table(s));
    let ident = |n: &str| rust_ident(n).unwrap_or_else(|| n.to_string());
    let column = |name: &str| t.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name));
    // A constraint term in the column's own collation, ascending, is written as the column.
    let plain_term = |term: &IndexTerm| {
        !term.desc
            && column(&term.column)
                .is_some_and(|c| term.collation == c.collation.as_deref().unwrap_or("binary"))
    };
    let mut pk: Vec<&ColumnInfo> = t.columns.iter().filter(|c| c.primary_key > 0).collect();
    pk.sort_by_key(|c| c.primary_key);
    let single_pk = (pk.len() == 1).then(|| pk[0].name.as_str());
    let mut notes: Vec<String> = Vec::new();
    if let Some(pk_index) = snapshot
        .indexes
        .values()
        .find(|i| i.table == t.name && i.origin == "pk")
        && !pk_index.terms.iter().all(plain_term)
    {
        let terms: Vec<String> = pk_index.terms.iter().map(constraint_term).collect();
        notes.push(format!(
            "the primary key is ({}): `schema!` declares its columns, not their order or collation",
            terms.join(", ")
        ));
    }
    // UNIQUE constraints: on the column when it is one plain column, else at the table level.
    let mut column_unique: Vec<&str> = Vec::new();
    let mut table_uniques: Vec<Vec<String>> = Vec::new();
    for u in snapshot
        .indexes
        .values()
        .filter(|i| i.table == t.name && i.origin == "u")
    {
        if let [term] = u.terms.as_slice()
            && plain_term(term)
            && !column_unique
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&term.column))
        {
            column_unique.push(&term.column);
            continue;
        }
        if !u.terms.iter().all(plain_term) {
            let terms: Vec<String> = u.terms.iter().map(constraint_term).collect();
            notes.push(format!(
                "UNIQUE ({}): `schema!` declares its columns, not their order or collation",
                terms.join(", ")
            ));
        }
        table_uniques.push(u.terms.iter().map(|term| ident(&term.column)).collect());
    }
    // Foreign keys: a column's first single-column key on the column, the others at the
    // table level.
    let mut column_fk: Vec<(&str, &ForeignKeyInfo)> = Vec::new();
    let mut table_fks: Vec<&ForeignKeyInfo> = Vec::new();
    // In declaration order (SQLite numbers them backwards).
    for fk in t.foreign_keys.iter().rev() {
        if fk.match_type != "NONE" {
            notes.push(format!(
                "foreign key ({}) says MATCH {}, which SQLite ignores and `schema!` does not declare",
                fk.from.join(", "),
                fk.match_type
            ));
        }
        match fk.from.as_slice() {
            [one] if !column_fk.iter().any(|(c, _)| c == one) => column_fk.push((one, fk)),
            _ => table_fks.push(fk),
        }
    }
    let parsed_column = |name: &str| {
        parsed
            .as_ref()
            .and_then(|p| p.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
    };
    let mut table_checks: Vec<String> = Vec::new();
    let _ = writeln!(out, "    table {} {{", ident(&t.name));
    for note in &notes {
        let _ = writeln!(out, "        // Note: {note}.");
    }
    for c in t.columns.iter().filter(|c| c.hidden != 1) {
        let (ty, ty_sql) = rust_type(&c.sql_type);
        let is_pk = single_pk == Some(c.name.as_str());
        let mut line = if c.not_null {
            format!("        {}: {ty}", ident(&c.name))
        } else {
            format!("        {}: Option<{ty}>", ident(&c.name))
        };
        if !c.sql_type.trim().eq_ignore_ascii_case(ty_sql) {
            let _ = write!(line, " as {}", rust_str(&c.sql_type));
        }
        if is_pk {
            line.push_str(" primary key");
            if t.autoincrement {
                line.push_str(" autoincrement");
            }
        }
        if column_unique
            .iter()
            .any(|u| u.eq_ignore_ascii_case(&c.name))
        {
            line.push_str(" unique");
        }
        if let Some(d) = &c.default {
            let literal = default_literal(d);
            if literal == "null" && c.not_null {
                line.push_str(" = sql(\"NULL\")");
            } else {
                let _ = write!(line, " = {literal}");
            }
        }
        if let Some(collation) = &c.collation {
            let _ = write!(line, " collate {}", ident(collation));
        }
        let written = parsed_column(&c.name);
        let mut checks = written.map(|w| w.checks.clone()).unwrap_or_default();
        if !checks.is_empty() {
            let first = checks.remove(0);
            let _ = write!(line, " check({})", rust_str(&first));
            table_checks.extend(checks);
        }
        if matches!(c.hidden, 2 | 3) {
            let expr = written
                .and_then(|w| w.generated.clone())
                .or_else(|| c.generated.clone())
                .unwrap_or_default();
            let _ = write!(line, " generated({})", rust_str(&expr));
            if c.hidden == 3 {
                line.push_str(" stored");
            }
        }
        if let Some((_, fk)) = column_fk
            .iter()
            .find(|(col, _)| col.eq_ignore_ascii_case(&c.name))
        {
            let _ = write!(line, " {}", references(fk));
        }
        let _ = writeln!(out, "{line},");
    }
    if pk.len() > 1 {
        let cols: Vec<String> = pk.iter().map(|c| ident(&c.name)).collect();
        let _ = writeln!(out, "        primary key ({}),", cols.join(", "));
    }
    for u in &table_uniques {
        let _ = writeln!(out, "        unique ({}),", u.join(", "));
    }
    let own_checks = parsed
        .as_ref()
        .map(|p| p.checks.clone())
        .unwrap_or_default();
    for check in own_checks.iter().chain(&table_checks) {
        let _ = writeln!(out, "        check({}),", rust_str(check));
    }
    for fk in &table_fks {
        let cols: Vec<String> = fk.from.iter().map(|c| ident(c)).collect();
        let _ = writeln!(
            out,
            "        foreign key ({}) {},",
            cols.join(", "),
            references(fk)
        );
    }
    for i in snapshot
        .indexes
        .values()
        .filter(|i| i.table == t.name && i.origin == "c")
    {
        if rust_ident(&i.name).is_none() {
            let _ = writeln!(
                out,
                "        // Not declarable: index `{}` (its name is no Rust identifier; rename it).",
                i.name
            );
            continue;
        }
        let written = sql
            .get(&i.name)
            .and_then(|s| sqltext::parse_create_index(s));
        let terms: Vec<String> = i
            .terms
            .iter()
            .enumerate()
            .map(|(n, term)| {
                let w = written.as_ref().and_then(|w| w.terms.get(n));
                let mut s = match &term.expr {
                    Some(e) => format!(
                        "expr({})",
                        rust_str(&w.map_or_else(|| e.clone(), |w| w.expr.clone()))
                    ),
                    None => ident(&term.column),
                };
                // The collation as written; without the text, the one SQLite reports when it
                // is not the column's.
                let collation = match w {
                    Some(w) => w.collation.clone(),
                    None => column(&term.column)
                        .filter(|c| term.collation != c.collation.as_deref().unwrap_or("binary"))
                        .map(|_| term.collation.clone()),
                };
                if let Some(collation) = collation {
                    let _ = write!(s, " collate {}", ident(&collation));
                }
                if term.desc {
                    s.push_str(" desc");
                }
                s
            })
            .collect();
        let mut line = format!(
            "        {}index {} ({})",
            if i.unique { "unique " } else { "" },
            ident(&i.name),
            terms.join(", ")
        );
        let condition = written
            .and_then(|w| w.where_clause)
            .or_else(|| i.where_clause.clone());
        if let Some(w) = condition {
            let _ = write!(line, " where({})", rust_str(&w));
        }
        let _ = writeln!(out, "{line},");
    }
    let mut options = Vec::new();
    if t.strict {
        options.push("strict");
    }
    if t.without_rowid {
        options.push("without rowid");
    }
    if options.is_empty() {
        let _ = writeln!(out, "    }}");
    } else {
        let _ = writeln!(out, "    }} {}", options.join(", "));
    }
}

use crate::inspect::PEER_HISTORY_TABLES;

/// A migration file adopting the database at `path`: a `schema!` declaration of its tables
/// (all, or those named), indexes, views and triggers, and a `baseline` migration creating
/// them. Applied to that database, the baseline is recorded without changing anything; applied
/// to an empty one, it creates the schema.
///
/// Strata's own tables and other tools' migration histories (`_sqlx_migrations`,
/// `refinery_schema_history`, `__diesel_schema_migrations`, `goose_db_version`,
/// `seaql_migrations`) are left out unless named, with a comment saying so. What `schema!`
/// cannot declare (a virtual table, a name that is no Rust identifier, the order or collation
/// of a constraint's terms) is listed as a comment; the baseline then refuses to adopt until it
/// is dealt with.
pub fn introspect(path: &Path, tables: &[String], role: &str, version: i64) -> Result<String> {
    let conn = store::open_ro(path, std::time::Duration::from_secs(5))?
        .ok_or_else(|| Error::Usage(format!("{} does not exist", path.display())))?;
    introspect_connection(&conn, tables, role, version)
}

pub(crate) fn introspect_connection(
    conn: &Connection,
    tables: &[String],
    role: &str,
    version: i64,
) -> Result<String> {
    let snapshot = SchemaSnapshot::read(conn)?;
    for t in tables {
        if !snapshot.tables.contains_key(t) {
            return Err(Error::Usage(format!(
                "no table `{t}` (tables: {})",
                snapshot
                    .tables
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    // The statements as written, in the order they were made.
    let objects: Vec<(String, String, String, Option<String>)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let sql: BTreeMap<String, String> = objects
        .iter()
        .filter_map(|(_, name, _, sql)| Some((name.clone(), sql.clone()?)))
        .collect();
    let shadow: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut skipped: Vec<String> = objects
        .iter()
        .filter(|(kind, name, _, _)| kind == "table" && name.starts_with("strata_"))
        .map(|(_, name, _, _)| format!("`{name}` (Strata's own)"))
        .collect();
    let mut undeclared: Vec<String> = Vec::new();
    let mut chosen: Vec<&TableInfo> = Vec::new();
    for t in snapshot.tables.values() {
        if !tables.is_empty() && !tables.contains(&t.name) || shadow.contains(&t.name) {
            continue;
        }
        if tables.is_empty()
            && let Some((_, tool)) = PEER_HISTORY_TABLES
                .iter()
                .find(|(name, _)| t.name.eq_ignore_ascii_case(name))
        {
            skipped.push(format!("`{}` ({tool}'s migration history)", t.name));
            continue;
        }
        if t.virtual_table.is_some() {
            undeclared.push(format!(
                "virtual table `{}` (create it in the migration: {})",
                t.name,
                sql.get(&t.name).map_or("", String::as_str)
            ));
            continue;
        }
        if let Some(why) = undeclarable(t) {
            undeclared.push(format!("table `{}`: {why}", t.name));
            continue;
        }
        chosen.push(t);
    }
    let mut out = String::from(
        "// Baseline: the schema of an existing database, as `strata introspect` read it.\n",
    );
    if !skipped.is_empty() {
        let _ = writeln!(out, "// Not declared: {}.", skipped.join(", "));
    }
    for u in &undeclared {
        let _ = writeln!(out, "// Not declarable in `schema!`: {u}.");
    }
    out.push_str("\nuse strata::{Result, Tx, migration};\n\nstrata::schema! {\n");
    for t in &chosen {
        declare_table(t, &snapshot, &sql, &mut out);
    }
    // Views and triggers, in the order they were made (one may use another); with tables
    // named, only the triggers on those.
    let mut created: Vec<String> = Vec::new();
    for (kind, name, table, text) in &objects {
        let Some(text) = text else { continue };
        let wanted = match kind.as_str() {
            "view" => tables.is_empty(),
            "trigger" => tables.is_empty() || tables.contains(table),
            _ => false,
        };
        if !wanted || name.starts_with("sqlite_") || name.starts_with("strata_") {
            continue;
        }
        let Some(id) = rust_ident(name) else {
            let _ = writeln!(
                out,
                "    // Not declarable: {kind} `{name}` (its name is no Rust identifier)."
            );
            continue;
        };
        if kind == "view" {
            let Some((columns, select)) = sqltext::view_parts(text) else {
                continue;
            };
            if !columns.is_empty() {
                let _ = writeln!(
                    out,
                    "    // Note: view `{name}` names its columns ({}); `schema!` takes them from the SELECT.",
                    columns.join(", ")
                );
            }
            let _ = writeln!(out, "    view {id} as {};", rust_text(select));
        } else {
            let Some(body) = sqltext::trigger_body(text) else {
                continue;
            };
            let _ = writeln!(out, "    trigger {id} {};", rust_text(body));
        }
        created.push(format!(
            "{}_{}",
            kind.to_ascii_uppercase(),
            name.to_ascii_uppercase()
        ));
    }
    out.push_str("}\n");
    let _ = write!(
        out,
        "\n/// Adopts the existing database: applied to it, only recorded; applied to an empty\n\
         /// database, creates the schema.\n\
         #[migration({version}, role = \"{role}\", baseline)]\n\
         fn baseline(tx: &mut Tx) -> Result<()> {{\n"
    );
    for t in &chosen {
        let _ = writeln!(
            out,
            "    tx.create_table({}::Table)?;",
            rust_ident(&t.name).unwrap_or_default()
        );
    }
    for constant in &created {
        let _ = writeln!(out, "    tx.execute_batch(&{constant}.create_sql())?;");
    }
    out.push_str("    Ok(())\n}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_skip_strings_and_comments() {
        let text = "x { a \"}\" // }\n { b } }";
        assert_eq!(braced(text, 2), Some(" a \"}\" // }\n { b } "));
    }

    #[test]
    fn attribute_gives_version_and_role() {
        let text = "#[migration(20240226153000, role = \"notes\", down = d)]\nfn f() {}";
        assert_eq!(
            parse_attribute(text),
            Some((20240226153000, "notes".into()))
        );
        assert_eq!(
            parse_attribute("#[migration(20240226153000)]"),
            Some((20240226153000, "main".into()))
        );
    }

    #[test]
    fn defaults_become_literals() {
        // A bare name is a string to SQLite; TRUE and CURRENT_TIMESTAMP are not.
        assert_eq!(default_literal("Draft"), "\"Draft\"");
        assert_eq!(default_literal("\"Draft\""), "\"Draft\"");
        assert_eq!(default_literal("TRUE"), "sql(\"TRUE\")");
        assert_eq!(default_literal("0"), "0");
        assert_eq!(default_literal("'it''s'"), "\"it's\"");
        assert_eq!(
            default_literal("CURRENT_TIMESTAMP"),
            "sql(\"CURRENT_TIMESTAMP\")"
        );
        // An expression keeps its own closing parenthesis; one pair around all of it goes.
        assert_eq!(
            default_literal("strftime('%s', 'now')"),
            "sql(\"strftime('%s', 'now')\")"
        );
        assert_eq!(
            default_literal("(strftime('%s', 'now'))"),
            "sql(\"strftime('%s', 'now')\")"
        );
        assert_eq!(default_literal("(1) + (2)"), "sql(\"(1) + (2)\")");
        assert_eq!(default_literal("NULL"), "null");
        assert_eq!(default_literal("(')')"), "\")\"");
        assert_eq!(default_literal("-1"), "-1");
        assert_eq!(default_literal("(-1.5)"), "-1.5");
        // Numbers `schema!` would write back differently stay SQL.
        assert_eq!(default_literal("0x10"), "sql(\"0x10\")");
        assert_eq!(default_literal("007"), "sql(\"007\")");
        assert_eq!(default_literal("1e3"), "sql(\"1e3\")");
        assert_eq!(default_literal("TRUE"), "sql(\"TRUE\")");
        // Valid Rust string literals, whatever the SQL holds.
        assert_eq!(default_literal("'a\"b\\c'"), "\"a\\\"b\\\\c\"");
        assert_eq!(default_literal("'a' || \"b\""), "sql(\"'a' || \\\"b\\\"\")");
        assert_eq!(
            default_literal("(strftime('%s', 'now')) -- when\n"),
            "sql(\"strftime('%s', 'now')\")"
        );
    }

    #[test]
    fn declared_types_map_to_rust_types() {
        assert_eq!(rust_type("INTEGER"), ("i64", "INTEGER"));
        assert_eq!(rust_type("BIGINT"), ("i64", "INTEGER"));
        assert_eq!(rust_type("VARCHAR(255)"), ("String", "TEXT"));
        assert_eq!(rust_type("BOOLEAN"), ("bool", "INTEGER"));
        assert_eq!(rust_type("DATETIME"), ("String", "TEXT"));
        assert_eq!(rust_type("DOUBLE PRECISION"), ("f64", "REAL"));
        // NUMERIC affinity keeps text that is no number: any value may come back.
        assert_eq!(rust_type("DECIMAL(10, 2)"), ("strata::Value", ""));
        assert_eq!(rust_type("jsonb"), ("strata::Value", ""));
        assert_eq!(rust_type("BLOB"), ("Vec<u8>", "BLOB"));
        assert_eq!(rust_type(""), ("strata::Value", ""));
        assert_eq!(rust_type("ANY"), ("strata::Value", ""));
        assert_eq!(rust_ident("type").as_deref(), Some("r#type"));
        assert_eq!(rust_ident("Host").as_deref(), Some("Host"));
        assert_eq!(rust_ident("my col"), None);
        assert_eq!(rust_ident("self"), None);
    }

    fn introspected(sql: &str) -> String {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        introspect_connection(&conn, &[], "main", 20240101000000).unwrap()
    }

    #[test]
    fn introspect_declares_every_form() {
        let code = introspected(
            "CREATE TABLE accounts (id BLOB PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE);
             CREATE TABLE events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 host TEXT NOT NULL COLLATE NOCASE CHECK (length(host) > 0),
                 kind TEXT NOT NULL DEFAULT 'info',
                 n INTEGER NOT NULL DEFAULT -1,
                 at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
                 deleted_at INTEGER DEFAULT NULL,
                 price REAL, qty INTEGER,
                 total REAL GENERATED ALWAYS AS (price * qty) STORED,
                 half AS (price / 2),
                 name VARCHAR(255) NOT NULL DEFAULT 'say \"hi\"',
                 \"type\" TEXT,
                 note,
                 owner BLOB REFERENCES accounts(id) ON DELETE CASCADE ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
                 UNIQUE (host, kind),
                 CHECK (at >= 0)
             );
             CREATE TABLE racks (
                 region TEXT NOT NULL, code TEXT NOT NULL, host INTEGER,
                 PRIMARY KEY (region, code),
                 FOREIGN KEY (host) REFERENCES events ON DELETE SET NULL
             ) STRICT, WITHOUT ROWID;
             CREATE TABLE slots (
                 region TEXT NOT NULL, code TEXT NOT NULL,
                 FOREIGN KEY (region, code) REFERENCES racks(region, code) ON DELETE SET DEFAULT DEFERRABLE INITIALLY DEFERRED
             );
             CREATE INDEX events_by_host ON events (host COLLATE BINARY DESC, at);
             CREATE UNIQUE INDEX live_host ON events (lower(host), at DESC) WHERE deleted_at IS NULL;
             CREATE VIEW live_events AS
                 SELECT id, host FROM events WHERE deleted_at IS NULL;
             CREATE TRIGGER IF NOT EXISTS events_touch AFTER UPDATE ON events BEGIN
                 UPDATE events SET at = 0 WHERE id = new.id;
             END;
             CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL);
             CREATE TABLE strata_meta (k);",
        );
        let expected = r#"// Baseline: the schema of an existing database, as `strata introspect` read it.
// Not declared: `strata_meta` (Strata's own), `_sqlx_migrations` (sqlx's migration history).

use strata::{Result, Tx, migration};

strata::schema! {
    table accounts {
        id: Option<Vec<u8>> primary key,
        name: String unique collate nocase,
    }
    table events {
        id: i64 primary key autoincrement,
        host: String collate nocase check("length(host) > 0"),
        kind: String = "info",
        n: i64 = -1,
        at: i64 = sql("strftime('%s', 'now')"),
        deleted_at: Option<i64> = null,
        price: Option<f64>,
        qty: Option<i64>,
        total: Option<f64> generated("price * qty") stored,
        half: Option<strata::Value> generated("price / 2"),
        name: String as "VARCHAR(255)" = "say \"hi\"",
        r#type: Option<String>,
        note: Option<strata::Value>,
        owner: Option<Vec<u8>> references accounts(id) on delete cascade on update set null deferrable,
        unique (host, kind),
        check("at >= 0"),
        index events_by_host (host collate BINARY desc, at),
        unique index live_host (expr("lower(host)"), at desc) where("deleted_at IS NULL"),
    }
    table racks {
        region: String,
        code: String,
        host: Option<i64> references events on delete set null,
        primary key (region, code),
    } strict, without rowid
    table slots {
        region: String,
        code: String,
        foreign key (region, code) references racks(region, code) on delete set default deferrable,
    }
    view live_events as "SELECT id, host FROM events WHERE deleted_at IS NULL";
    trigger events_touch "AFTER UPDATE ON events BEGIN
                 UPDATE events SET at = 0 WHERE id = new.id;
             END";
}

/// Adopts the existing database: applied to it, only recorded; applied to an empty
/// database, creates the schema.
#[migration(20240101000000, role = "main", baseline)]
fn baseline(tx: &mut Tx) -> Result<()> {
    tx.create_table(accounts::Table)?;
    tx.create_table(events::Table)?;
    tx.create_table(racks::Table)?;
    tx.create_table(slots::Table)?;
    tx.execute_batch(&VIEW_LIVE_EVENTS.create_sql())?;
    tx.execute_batch(&TRIGGER_EVENTS_TOUCH.create_sql())?;
    Ok(())
}
"#;
        assert_eq!(code, expected, "{code}");
    }

    #[test]
    fn introspect_keeps_peer_tables_when_named_and_notes_what_it_cannot_declare() {
        let sql =
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL);
                   CREATE TABLE pairs (a TEXT, b TEXT, UNIQUE (a DESC, b));
                   CREATE TABLE \"odd name\" (x);
                   CREATE INDEX \"pairs-by-b\" ON pairs (b);";
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let code = introspect_connection(&conn, &["_sqlx_migrations".into()], "main", 1).unwrap();
        assert!(
            code.contains(
                "table _sqlx_migrations {\n        version: Option<i64> as \"BIGINT\" primary key,"
            ),
            "{code}"
        );
        let code = introspected(sql);
        assert!(code.contains("// Not declarable in `schema!`: table `odd name`: its name `odd name` is no Rust identifier."), "{code}");
        assert!(code.contains("        // Note: UNIQUE (a DESC, b): `schema!` declares its columns, not their order or collation.\n"), "{code}");
        assert!(code.contains("        unique (a, b),\n"), "{code}");
        assert!(
            code.contains("        // Not declarable: index `pairs-by-b` (its name is no Rust identifier; rename it).\n"),
            "{code}"
        );
    }
}
