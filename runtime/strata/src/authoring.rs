//! Writing migrations: scaffold the next one from the previous one's schema (`strata new`), and
//! adopt an existing database by printing its schema as a declaration (`strata introspect`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::inspect::{SchemaSnapshot, TableInfo};
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
    match schema {
        Some(body) => {
            let _ = writeln!(
                text,
                "// The tables of `{role}` as this migration leaves them: copied from {}; change them.",
                previous.map(|p| p.module.as_str()).unwrap_or_default()
            );
            let _ = writeln!(text, "strata::schema! {{{body}}}");
        }
        None => {
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

/// The Rust type and, when its SQL type differs from the declared one, the `as ".."` override.
fn rust_type(declared: &str) -> (&'static str, &'static str) {
    let upper = declared.to_ascii_uppercase();
    // SQLite's affinity rules (https://www.sqlite.org/datatype3.html#determination_of_column_affinity).
    if upper.contains("INT") {
        ("i64", "INTEGER")
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        ("String", "TEXT")
    } else if upper.is_empty() || upper.contains("BLOB") {
        ("Vec<u8>", "BLOB")
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        ("f64", "REAL")
    } else {
        ("f64", "NUMERIC")
    }
}

fn default_literal(sql: &str) -> String {
    let s = sql.trim();
    if s.eq_ignore_ascii_case("null") {
        return "null".to_string();
    }
    if s.parse::<i64>().is_ok() || (s.parse::<f64>().is_ok() && !s.contains(['e', 'E'])) {
        return s.to_string();
    }
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        let inner = s[1..s.len() - 1].replace("''", "'");
        return format!("{inner:?}");
    }
    format!("sql({:?})", without_outer_parens(s))
}

/// `expr` without one pair of parentheses around all of it (`(strftime('%s', 'now'))` →
/// `strftime('%s', 'now')`); anything else as it is — a trailing `)` that closes a call stays.
fn without_outer_parens(expr: &str) -> &str {
    let Some(inner) = expr.strip_prefix('(').and_then(|e| e.strip_suffix(')')) else {
        return expr;
    };
    // The first `(` must close at the very end: count depth outside quoted text.
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in expr.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth = depth.saturating_sub(1);
                if depth == 0 && i + 1 < expr.len() {
                    return expr;
                }
            }
            _ => {}
        }
    }
    inner.trim()
}

fn declare_table(t: &TableInfo, snapshot: &SchemaSnapshot, out: &mut String) {
    let pk: Vec<&str> = {
        let mut cols: Vec<_> = t.columns.iter().filter(|c| c.primary_key > 0).collect();
        cols.sort_by_key(|c| c.primary_key);
        cols.iter().map(|c| c.name.as_str()).collect()
    };
    let uniques: Vec<&Vec<String>> = snapshot
        .indexes
        .values()
        .filter(|i| i.table == t.name && i.origin == "u")
        .map(|i| &i.columns)
        .collect();
    let _ = writeln!(out, "    table {} {{", t.name);
    for c in t.columns.iter().filter(|c| c.hidden == 0) {
        let (ty, affinity) = rust_type(&c.sql_type);
        let single_pk = pk.len() == 1 && pk[0] == c.name;
        let not_null = c.not_null || (single_pk && affinity == "INTEGER");
        let mut line = if not_null {
            format!("        {}: {ty}", c.name)
        } else {
            format!("        {}: Option<{ty}>", c.name)
        };
        if !c.sql_type.eq_ignore_ascii_case(affinity) {
            let _ = write!(line, " as {:?}", c.sql_type);
        }
        if single_pk {
            line.push_str(" primary key");
        }
        if uniques.iter().any(|u| u.len() == 1 && u[0] == c.name) {
            line.push_str(" unique");
        }
        if let Some(d) = c
            .default
            .as_deref()
            .filter(|d| !d.eq_ignore_ascii_case("NULL"))
        {
            let _ = write!(line, " = {}", default_literal(d));
        }
        if let Some(fk) = t
            .foreign_keys
            .iter()
            .find(|f| f.from.len() == 1 && f.from[0] == c.name)
        {
            let _ = write!(line, " references {}({})", fk.table, fk.to[0]);
            match fk.on_delete.as_str() {
                "CASCADE" => line.push_str(" on delete cascade"),
                "RESTRICT" => line.push_str(" on delete restrict"),
                "SET NULL" => line.push_str(" on delete set null"),
                _ => {}
            }
        }
        let _ = writeln!(out, "{line},");
    }
    if pk.len() > 1 {
        let _ = writeln!(out, "        primary key ({}),", pk.join(", "));
    }
    for u in uniques.iter().filter(|u| u.len() > 1) {
        let _ = writeln!(
            out,
            "        // not declarable: UNIQUE ({}) constraint",
            u.join(", ")
        );
    }
    for f in t.foreign_keys.iter().filter(|f| f.from.len() > 1) {
        let _ = writeln!(
            out,
            "        // not declarable: composite foreign key ({}) to {}",
            f.from.join(", "),
            f.table
        );
    }
    for i in snapshot
        .indexes
        .values()
        .filter(|i| i.table == t.name && i.origin == "c")
    {
        if i.partial || i.columns.iter().any(|c| c == "<expr>") {
            let _ = writeln!(
                out,
                "        // not declarable: partial or expression index {}",
                i.name
            );
            continue;
        }
        let unique = if i.unique { "unique " } else { "" };
        let _ = writeln!(
            out,
            "        {unique}index {} ({}),",
            i.name,
            i.columns.join(", ")
        );
    }
    let _ = writeln!(out, "    }}");
}

/// A migration file adopting the database at `path`: a `schema!` declaration of its tables
/// (all, or those named) and a `baseline` migration creating them. Applied to that database,
/// the baseline is recorded without changing anything; applied to an empty one, it creates
/// the tables.
///
/// Constructs `schema!` cannot declare (composite foreign keys, multi-column UNIQUE
/// constraints, partial or expression indexes, views, triggers) are listed as comments; the
/// baseline then refuses to adopt until they are dealt with.
pub fn introspect(path: &Path, tables: &[String], role: &str, version: i64) -> Result<String> {
    let conn = store::open_ro(path, std::time::Duration::from_secs(5))?
        .ok_or_else(|| Error::Usage(format!("{} does not exist", path.display())))?;
    introspect_connection(&conn, tables, role, version)
}

fn introspect_connection(
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
    let chosen: Vec<&TableInfo> = snapshot
        .tables
        .values()
        .filter(|t| tables.is_empty() || tables.contains(&t.name))
        .collect();
    let mut out = String::from(
        "// Baseline: the schema of an existing database, as `strata introspect` read it.\n\n\
         use strata::{Result, Tx, migration};\n\nstrata::schema! {\n",
    );
    for t in &chosen {
        declare_table(t, &snapshot, &mut out);
    }
    out.push_str("}\n");
    for (kind, map) in [("view", &snapshot.views), ("trigger", &snapshot.triggers)] {
        for name in map.keys() {
            let _ = writeln!(out, "// not declarable: {kind} {name}");
        }
    }
    let _ = write!(
        out,
        "\n/// Adopts the existing database: applied to it, only recorded; applied to an empty\n\
         /// database, creates the tables.\n\
         #[migration({version}, role = \"{role}\", baseline)]\n\
         fn baseline(tx: &mut Tx) -> Result<()> {{\n"
    );
    for t in &chosen {
        let _ = writeln!(out, "    tx.create_table({}::Table)?;", t.name);
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
        assert_eq!(default_literal("(')')"), "sql(\"')'\")");
    }
}
