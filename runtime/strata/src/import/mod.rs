//! Switching from another migration tool: `strata import` turns a sqlx, refinery, diesel or
//! goose migrations folder into Strata migrations, and the runner adopts what that tool had
//! applied, so that nothing runs twice.
//!
//! **Import** ([`plan`], [`write()`]): each peer migration becomes one Strata migration file
//! `m<version>_<name>.rs` with the peer's SQL verbatim in a sibling `.sql` file, applied with
//! `tx.execute_batch(strata::sql_file!(..))` (and its `down` when the peer has one), and the
//! `schema!` declaration of the database as the peer's migrations leave it at that point, read
//! from a replay of them on an in-memory database by [`authoring`](crate::authoring)'s
//! introspection. The attribute carries the peer's identity:
//! `#[migration(20240226153000, role = "main", imported = "sqlx:20240226153000")]`. Versions
//! that are UTC timestamps `YYYYMMDDHHMMSS` (sqlx's, diesel's and goose's defaults) are kept;
//! small sequential numbers (refinery's `V1`, goose's `00001`) become a base time plus that
//! many seconds.
//!
//! **Adoption** (the runner): an imported migration pending on a database whose peer history
//! table (`_sqlx_migrations`, `refinery_schema_history`, `__diesel_schema_migrations`,
//! `goose_db_version`) records its version as applied is recorded as applied without running,
//! with an `adopted` audit event, once the peer's checksum (sqlx: SHA-384 of the SQL;
//! refinery: SipHash-1-3 of name, version and SQL) matches the file. Refused, with nothing
//! recorded: a checksum that differs ([`Error::PeerChecksumMismatch`]), a version the peer
//! recorded as failed ([`Error::PeerFailed`]), and peer versions no migration was imported from
//! ([`Error::PeerUnknown`], unless unknown migrations are allowed). [`check_database`] tells
//! the same, read-only, before anyone switches.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use chrono::{NaiveDateTime, TimeDelta};
use rusqlite::Connection;
use rusqlite::types::Value;
use sha2::Digest;

use crate::error::{Error, Result};
use crate::inspect::{Difference, SchemaSnapshot};
use crate::migration::Migration;

mod history;
pub use history::*;
pub(crate) use history::{adoption, check_pending, claims_peer_history};

/// A migration tool whose folders `strata import` reads and whose history Strata adopts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// sqlx: `<version>_<name>.sql`, or `.up.sql` and `.down.sql`; `_sqlx_migrations`.
    Sqlx,
    /// refinery: `V<n>__<name>.sql`; `refinery_schema_history`.
    Refinery,
    /// diesel: `<version>_<name>/up.sql` and `down.sql`; `__diesel_schema_migrations`.
    Diesel,
    /// goose: `<version>_<name>.sql` with `-- +goose Up` / `Down` sections; `goose_db_version`.
    Goose,
}

impl Tool {
    /// Every tool, in the order the help text lists them.
    pub const ALL: [Tool; 4] = [Tool::Sqlx, Tool::Refinery, Tool::Diesel, Tool::Goose];

    /// `sqlx`, `refinery`, `diesel` or `goose`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::Refinery => "refinery",
            Tool::Diesel => "diesel",
            Tool::Goose => "goose",
        }
    }

    /// The tool called `name`.
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table where the tool records what it applied (its default name).
    pub fn history_table(self) -> &'static str {
        match self {
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Refinery => "refinery_schema_history",
            Tool::Diesel => "__diesel_schema_migrations",
            Tool::Goose => "goose_db_version",
        }
    }

    /// Whether its history keeps a checksum of each migration's SQL.
    pub fn keeps_checksums(self) -> bool {
        matches!(self, Tool::Sqlx | Tool::Refinery)
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One migration of a peer's folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerMigration {
    /// The tool.
    pub tool: Tool,
    /// The version as the tool records it in its history table (`1` for goose's `00001_..`,
    /// `20240226153000` for diesel's `2024-02-26-153000_..`).
    pub version: String,
    /// Its name, as the file or directory gives it (`create_users`).
    pub name: String,
    /// The file (or diesel directory) it was read from, relative to the folder.
    pub source: String,
    /// The SQL that applies it, verbatim (goose: its `Up` section).
    pub up: String,
    /// The SQL that reverts it, verbatim, when the peer has one with a statement in it.
    pub down: Option<String>,
    /// Where the down SQL was read from (goose: the same file as `source`).
    pub down_source: Option<String>,
    /// Runs outside a transaction (sqlx `-- no-transaction`, diesel `run_in_transaction =
    /// false`, goose `-- +goose NO TRANSACTION`).
    pub no_transaction: bool,
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("reading {}: {e}", path.display())))
}

/// The entries of `dir`, sorted by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let list = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingDirectory(dir.to_path_buf())
        } else {
            usage(format!("reading {}: {e}", dir.display()))
        }
    })?;
    let mut out: Vec<(String, PathBuf)> = list
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    Ok(out)
}

/// Whether `sql` holds anything but blanks and `--` comments.
fn has_statements(sql: &str) -> bool {
    sql.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with("--")
    })
}

/// Reads the migrations of `tool`'s folder `dir`, in the order the tool applies them. Files
/// the tool ignores are ignored, and named in the warnings.
///
/// # Errors
///
/// [`Error::Usage`] for what cannot be imported — refinery's unversioned `U..` migrations, Rust
/// (refinery) or Go (goose) migrations, goose `ENVSUB`, duplicate versions — and for versions
/// the tool itself would refuse; [`Error::MissingDirectory`] when `dir` does not exist.
pub fn read_folder(tool: Tool, dir: &Path) -> Result<(Vec<PeerMigration>, Vec<String>)> {
    let mut warnings = Vec::new();
    let migrations = match tool {
        Tool::Sqlx => read_sqlx(dir, &mut warnings)?,
        Tool::Refinery => read_refinery(dir, &mut warnings)?,
        Tool::Diesel => read_diesel(dir, &mut warnings)?,
        Tool::Goose => read_goose(dir, &mut warnings)?,
    };
    if migrations.is_empty() {
        return Err(usage(format!(
            "{} holds no {tool} migration{}",
            dir.display(),
            match tool {
                Tool::Sqlx => " (`<version>_<name>.sql` or `.up.sql`)",
                Tool::Refinery => " (`V<n>__<name>.sql`)",
                Tool::Diesel => " (`<version>_<name>/up.sql`)",
                Tool::Goose => " (`<version>_<name>.sql`)",
            }
        )));
    }
    Ok((migrations, warnings))
}

/// sqlx: `<VERSION>_<DESCRIPTION>.sql` (simple) or `.up.sql` / `.down.sql` (reversible), in
/// the folder itself; the version an `i64` above 0. The checksum covers the file as read.
fn read_sqlx(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<PeerMigration>> {
    #[derive(Default)]
    struct Parts {
        simple: Option<(String, String)>,
        up: Option<(String, String)>,
        down: Option<(String, String)>,
        name: String,
    }
    let mut by_version: BTreeMap<i64, Parts> = BTreeMap::new();
    for (file, path) in entries(dir)? {
        if !path.is_file() {
            continue;
        }
        let Some((version, rest)) = file.split_once('_').filter(|(_, r)| r.ends_with(".sql"))
        else {
            if file.ends_with(".sql") {
                warnings.push(format!(
                    "{file}: ignored (sqlx reads `<version>_<name>.sql`)"
                ));
            }
            continue;
        };
        let version: i64 = version.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
            usage(format!(
                "{file}: sqlx needs a version above 0 before the first `_` \
                 (`20240226153000_create_users.sql`); sqlx itself refuses this file"
            ))
        })?;
        let text = read_text(&path)?;
        let parts = by_version.entry(version).or_default();
        let (slot, name) = if let Some(name) = rest.strip_suffix(".up.sql") {
            (&mut parts.up, name)
        } else if let Some(name) = rest.strip_suffix(".down.sql") {
            (&mut parts.down, name)
        } else {
            (&mut parts.simple, rest.trim_end_matches(".sql"))
        };
        if let Some((other, _)) = slot {
            return Err(usage(format!(
                "sqlx migrations {other} and {file} have the same version {version}"
            )));
        }
        *slot = Some((file.clone(), text));
        if parts.name.is_empty() {
            parts.name = name.to_string();
        }
    }
    let mut out = Vec::new();
    for (version, parts) in by_version {
        let (source, up, down) = match (parts.simple, parts.up, parts.down) {
            (Some(simple), None, None) => (simple.0, simple.1, None),
            (None, Some(up), down) => (up.0, up.1, down),
            (Some(simple), Some(up), _) => {
                return Err(usage(format!(
                    "sqlx migrations {} and {} have the same version {version}",
                    simple.0, up.0
                )));
            }
            (_, None, Some(down)) => {
                return Err(usage(format!(
                    "{} has no `.up.sql` beside it: sqlx refuses a reversible migration without one",
                    down.0
                )));
            }
            (None, None, None) => continue,
        };
        let no_transaction = up.starts_with("-- no-transaction");
        let down = down.filter(|(_, text)| has_statements(text));
        out.push(PeerMigration {
            tool: Tool::Sqlx,
            version: version.to_string(),
            name: parts.name,
            source,
            up,
            down_source: down.as_ref().map(|d| d.0.clone()),
            down: down.map(|d| d.1),
            no_transaction,
        });
    }
    Ok(out)
}

/// refinery's file name: `(U|V)<n>__<name>.<ext>`, as its `^([U|V])(\d+(?:\.\d+)?)__(\w+)`
/// with the extension after: (prefix, version, name, extension).
fn refinery_name(file: &str) -> Option<(char, &str, &str, &str)> {
    let prefix = file
        .chars()
        .next()
        .filter(|c| matches!(c, 'U' | 'V' | '|'))?;
    let rest = &file[1..];
    let digits = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (version, rest) = rest.split_at(digits);
    let valid_version = !version.is_empty()
        && !version.starts_with('.')
        && !version.ends_with('.')
        && version.matches('.').count() <= 1;
    let rest = rest.strip_prefix("__")?;
    let (name, ext) = rest.rsplit_once('.')?;
    let word = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    (valid_version && word).then_some((prefix, version, name, ext))
}

/// refinery: `V<n>__<name>.sql` anywhere under the folder (it walks subdirectories); `U`
/// (unversioned) migrations and `.rs` migrations are refused.
fn read_refinery(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<PeerMigration>> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
        for (name, path) in entries(dir)? {
            if path.is_dir() {
                walk(&path, base, out)?;
            } else {
                let shown = path
                    .strip_prefix(base)
                    .map_or_else(|_| name.clone(), |p| p.display().to_string());
                out.push((shown, path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    let mut by_version: BTreeMap<i64, PeerMigration> = BTreeMap::new();
    for (shown, path) in files {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((prefix, version, name, ext)) = refinery_name(&file) else {
            if file.ends_with(".sql") || file.ends_with(".rs") {
                warnings.push(format!(
                    "{shown}: ignored (refinery reads `V<n>__<name>.sql`)"
                ));
            }
            continue;
        };
        match ext {
            "sql" => {}
            "rs" => {
                return Err(usage(format!(
                    "{shown} is a refinery migration written in Rust: `strata import` reads SQL \
                     only. Port it to a Strata migration by hand (`strata new`), then import the rest"
                )));
            }
            _ => continue,
        }
        if prefix != 'V' {
            return Err(usage(format!(
                "{shown} is an unversioned refinery migration (`U`): refinery runs it whenever it \
                 is missing, out of order, and Strata's history is ordered. Rename it `V<n>__..` \
                 at its place in the order (and its row in refinery_schema_history), or port it \
                 by hand"
            )));
        }
        let number: i64 = version.parse().map_err(|_| {
            usage(format!(
                "{shown}: version `{version}` is no integer; refinery refuses it too"
            ))
        })?;
        if let Some(other) = by_version.get(&number) {
            return Err(usage(format!(
                "refinery migrations {} and {shown} have the same version {number}",
                other.source
            )));
        }
        let up = read_text(&path)?;
        by_version.insert(
            number,
            PeerMigration {
                tool: Tool::Refinery,
                version: number.to_string(),
                name: name.to_string(),
                source: shown,
                up,
                down: None,
                down_source: None,
                no_transaction: false,
            },
        );
    }
    Ok(by_version.into_values().collect())
}

/// diesel: one directory per migration, `<version>_<name>/up.sql` (and `down.sql`,
/// `metadata.toml`); the version is the part before the first `_` without its dashes.
fn read_diesel(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<PeerMigration>> {
    let mut by_version: BTreeMap<String, PeerMigration> = BTreeMap::new();
    for (name, path) in entries(dir)? {
        if !path.is_dir() || name.starts_with('.') {
            continue;
        }
        let up_path = path.join("up.sql");
        if !up_path.is_file() {
            if path.join("up.rs").is_file() {
                return Err(usage(format!(
                    "{name}/up.rs is a diesel migration written in Rust: `strata import` reads SQL \
                     only. Port it to a Strata migration by hand (`strata new`), then import the rest"
                )));
            }
            warnings.push(format!(
                "{name}/: ignored (no up.sql; diesel refuses it too)"
            ));
            continue;
        }
        let (version, rest) = name.split_once('_').unwrap_or((name.as_str(), ""));
        let version = version.replace('-', "");
        if version.is_empty() {
            return Err(usage(format!("{name}/: no version before the first `_`")));
        }
        let down_path = path.join("down.sql");
        let down = if down_path.is_file() {
            Some(read_text(&down_path)?).filter(|d| has_statements(d))
        } else {
            None
        };
        let no_transaction = std::fs::read_to_string(path.join("metadata.toml"))
            .map(|t| {
                t.lines().any(|l| {
                    let l: String = l
                        .split('#')
                        .next()
                        .unwrap_or("")
                        .split_whitespace()
                        .collect();
                    l == "run_in_transaction=false"
                })
            })
            .unwrap_or(false);
        if let Some(other) = by_version.get(&version) {
            return Err(usage(format!(
                "diesel migrations {} and {name}/ have the same version {version}",
                other.source
            )));
        }
        by_version.insert(
            version.clone(),
            PeerMigration {
                tool: Tool::Diesel,
                version,
                name: rest.to_string(),
                source: format!("{name}/up.sql"),
                up: read_text(&up_path)?,
                down_source: down.as_ref().map(|_| format!("{name}/down.sql")),
                down,
                no_transaction,
            },
        );
    }
    Ok(by_version.into_values().collect())
}

/// A goose annotation (`-- +goose Up`), lowercased, or `None` for any other line.
fn goose_annotation(line: &str) -> Option<String> {
    let cmd = line.trim_start().strip_prefix("--")?.trim();
    let rest = cmd.strip_prefix("+goose")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(
        rest.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase(),
    )
}

/// goose's `Up` and `Down` sections of `text` (verbatim, the annotation lines themselves left
/// out), and whether it says `NO TRANSACTION`.
fn goose_sections(text: &str, file: &str) -> Result<(String, Option<String>, bool)> {
    // Byte ranges of the two sections.
    let mut up: Option<(usize, usize)> = None;
    let mut down: Option<(usize, usize)> = None;
    let mut no_transaction = false;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let (start, end) = (at, at + line.len());
        at = end;
        let Some(annotation) = goose_annotation(line) else {
            continue;
        };
        match annotation.as_str() {
            "up" if up.is_none() && down.is_none() => up = Some((end, text.len())),
            "down" if down.is_none() => {
                if let Some(u) = &mut up {
                    u.1 = start;
                }
                down = Some((end, text.len()));
            }
            "up" | "down" => {
                return Err(usage(format!(
                    "{file}: a second `-- +goose {annotation}`: goose refuses it too"
                )));
            }
            "no transaction" => no_transaction = true,
            "envsub on" => {
                return Err(usage(format!(
                    "{file}: `-- +goose ENVSUB ON` substitutes environment variables into the SQL \
                     when goose runs it, so the SQL Strata would apply is not this file. Write the \
                     values in and import again, or port it by hand"
                )));
            }
            _ => {}
        }
    }
    let Some(up) = up else {
        return Err(usage(format!(
            "{file}: no `-- +goose Up` annotation; goose refuses it too"
        )));
    };
    let down = down
        .map(|(s, e)| text[s..e].to_string())
        .filter(|d| has_statements(d));
    Ok((text[up.0..up.1].to_string(), down, no_transaction))
}

/// goose: `<version>_<name>.sql` in the folder itself; `.go` migrations are refused.
fn read_goose(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<PeerMigration>> {
    let mut by_version: BTreeMap<i64, PeerMigration> = BTreeMap::new();
    let mut go = Vec::new();
    for (file, path) in entries(dir)? {
        if !path.is_file() {
            continue;
        }
        let (stem, is_go) = if let Some(stem) = file.strip_suffix(".sql") {
            (stem, false)
        } else if let Some(stem) = file.strip_suffix(".go") {
            (stem, true)
        } else {
            continue;
        };
        let Some((version, name)) = stem.split_once('_') else {
            if !is_go {
                warnings.push(format!(
                    "{file}: ignored (goose reads `<version>_<name>.sql`)"
                ));
            }
            continue;
        };
        let Ok(number) = version.parse::<i64>() else {
            if !is_go {
                warnings.push(format!(
                    "{file}: ignored (no numeric version before the first `_`)"
                ));
            }
            continue;
        };
        if is_go {
            if !file.ends_with("_test.go") {
                go.push(file.clone());
            }
            continue;
        }
        if number < 1 {
            return Err(usage(format!(
                "{file}: goose versions start at 1; goose refuses it too"
            )));
        }
        if let Some(other) = by_version.get(&number) {
            return Err(usage(format!(
                "goose migrations {} and {file} have the same version {number}",
                other.source
            )));
        }
        let text = read_text(&path)?;
        let (up, down, no_transaction) = goose_sections(&text, &file)?;
        by_version.insert(
            number,
            PeerMigration {
                tool: Tool::Goose,
                version: number.to_string(),
                name: name.to_string(),
                source: file.clone(),
                up,
                down_source: down.as_ref().map(|_| file.clone()),
                down,
                no_transaction,
            },
        );
    }
    if !go.is_empty() {
        return Err(usage(format!(
            "{} {} goose migration(s) written in Go ({}): `strata import` reads SQL only. Port \
             them to Strata migrations by hand (`strata new`), move them out of the folder, and \
             import the rest",
            dir.display(),
            if go.len() == 1 { "holds a" } else { "holds" },
            go.join(", ")
        )));
    }
    Ok(by_version.into_values().collect())
}

/// The default `--base-time`: sequential peer versions `n` become 2000-01-01 00:00:00 UTC plus
/// `n` seconds.
pub fn default_base_time() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("20000101000000", "%Y%m%d%H%M%S").expect("a valid time")
}

/// A base time as `2000-01-01 00:00:00`, `2000-01-01T00:00:00` or `20000101000000`.
///
/// # Errors
///
/// [`Error::Usage`] for anything else.
pub fn parse_base_time(text: &str) -> Result<NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text.trim(), f).ok())
        .ok_or_else(|| {
            usage(format!(
                "--base-time `{text}`: expected a UTC time like `2000-01-01 00:00:00`"
            ))
        })
}

fn timestamp(t: NaiveDateTime) -> Option<i64> {
    use chrono::Datelike;
    (1970..=9999)
        .contains(&t.year())
        .then(|| t.format("%Y%m%d%H%M%S").to_string().parse().ok())
        .flatten()
}

/// The Strata version of peer version `version`: itself when it is a UTC timestamp
/// `YYYYMMDDHHMMSS` (`false`), else `base` plus that many seconds (`true`).
pub fn strata_version(version: &str, base: NaiveDateTime) -> Option<(i64, bool)> {
    if version.len() == 14
        && version.bytes().all(|b| b.is_ascii_digit())
        && let Ok(t) = NaiveDateTime::parse_from_str(version, "%Y%m%d%H%M%S")
        && let Some(v) = timestamp(t)
    {
        return Some((v, false));
    }
    let n: i64 = version.parse().ok().filter(|n| *n >= 0)?;
    let t = base.checked_add_signed(TimeDelta::try_seconds(n)?)?;
    Some((timestamp(t)?, true))
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "yield", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "try",
];

/// A lowercase Rust identifier for a peer migration's name (`Create-Users` → `create_users`).
pub fn identifier(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        "migration".to_string()
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("step_{out}")
    } else if KEYWORDS.contains(&out.as_str()) {
        format!("{out}_")
    } else {
        out
    }
}

/// One peer migration, ready to be written as a Strata migration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedImport {
    /// The peer migration.
    pub peer: PeerMigration,
    /// Its Strata version.
    pub version: i64,
    /// Whether the version was made from a sequential number (`--base-time` plus n seconds).
    pub mapped: bool,
    /// The module: `m<version>_<name>`.
    pub module: String,
    /// The files to write into the output directory: name and content (the `.rs` first).
    pub files: Vec<(String, String)>,
    /// Whether the replay shows it removing or tightening something (it is then written as a
    /// `contract` migration).
    pub contract: bool,
}

/// What [`plan`] read and generated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportPlan {
    /// The tool imported from.
    pub tool: Tool,
    /// The role of the migrations.
    pub role: String,
    /// One per peer migration, in order.
    pub migrations: Vec<PlannedImport>,
    /// Files of the folder that were skipped, and why.
    pub warnings: Vec<String>,
}

/// The declaration parts of introspection's output: its imports, the `schema!` block, and the
/// notes printed after it.
fn declaration(code: &str) -> Result<(Vec<String>, String, Vec<String>)> {
    let lines: Vec<&str> = code.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("strata::schema!"))
        .ok_or_else(|| usage("the introspection printer wrote no `strata::schema!` block"))?;
    let end = start
        + lines[start..]
            .iter()
            .position(|l| {
                *l == "}" || (lines[start].trim_end().ends_with("{}") && l == &lines[start])
            })
            .ok_or_else(|| usage("the introspection printer's `strata::schema!` has no end"))?;
    let uses = lines[..start]
        .iter()
        .filter(|l| l.starts_with("use ") && !l.starts_with("use strata::{Result, Tx, migration}"))
        .map(ToString::to_string)
        .collect();
    let schema = lines[start..=end].join("\n");
    let notes = lines[end + 1..]
        .iter()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with("//") && !l.starts_with("///"))
        .map(ToString::to_string)
        .collect();
    Ok((uses, schema, notes))
}

/// `text` for a comment line of generated code: control characters (a newline in a file name
/// would end the comment and start code) become `?`.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The doc line of a migration: its name in words (`create_users` → "Create users.").
fn title(name: &str) -> String {
    let words = comment_safe(name).replace(['_', '-'], " ");
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => format!("{}{}.", c.to_uppercase(), chars.as_str()),
        None => "Imported migration.".to_string(),
    }
}

/// The Rust file of one imported migration.
fn migration_file(
    p: &PlannedImport,
    role: &str,
    schema: &(Vec<String>, String, Vec<String>),
) -> String {
    let peer = &p.peer;
    let tool = peer.tool;
    let function = identifier(&peer.name);
    let up_file = format!("{}.sql", p.module);
    let down_file = format!("{}.down.sql", p.module);
    let mut text = format!(
        "//! Imported by `strata import` from {tool}: `{}`{}.\n\
         //! The SQL is applied verbatim from the file beside this one; the declaration is the\n\
         //! schema after it, read from a replay of the {tool} migrations up to this one.\n\n\
         use strata::{{Result, Tx, migration}};\n",
        comment_safe(&peer.source),
        match &peer.down_source {
            Some(d) if *d == peer.source => " (its Up and Down sections)".to_string(),
            Some(d) => format!(" (down: `{}`)", comment_safe(d)),
            None => String::new(),
        }
    );
    for u in &schema.0 {
        let _ = writeln!(text, "{u}");
    }
    let _ = writeln!(text, "\n{}", schema.1);
    if !schema.2.is_empty() {
        let _ = writeln!(text, "{}", schema.2.join("\n"));
    }
    let mut args = format!(
        "{}, role = \"{role}\", imported = \"{tool}:{}\"",
        p.version, peer.version
    );
    if peer.no_transaction {
        args.push_str(", no_transaction");
    }
    if p.contract {
        args.push_str(", contract");
    }
    if peer.down.is_some() {
        args.push_str(", down = revert");
    }
    let sequence = if p.mapped {
        format!(
            "\n///\n/// Version {} is {tool}'s {}, counted in seconds from the import's base time.",
            p.version, peer.version
        )
    } else {
        String::new()
    };
    let body = if has_statements(&peer.up) {
        format!("    tx.execute_batch(strata::sql_file!(\"{up_file}\"))\n")
    } else {
        // `sql_file!` refuses a file without a statement: nothing to apply.
        "    // The peer's SQL holds no statement.\n    let _ = tx;\n    Ok(())\n".to_string()
    };
    let _ = write!(
        text,
        "\n/// {}{sequence}\n#[migration({args})]\nfn {function}(tx: &mut Tx) -> Result<()> {{\n{body}}}\n",
        title(&peer.name),
    );
    if peer.down.is_some() {
        let _ = write!(
            text,
            "\n/// Reverts it, with {tool}'s down SQL.\n\
             fn revert(tx: &mut Tx) -> Result<()> {{\n    \
             tx.execute_batch(strata::sql_file!(\"{down_file}\"))\n}}\n"
        );
    }
    text
}

/// Reads `tool`'s folder `dir` and generates one Strata migration per peer migration, for
/// `role`: versions mapped (sequential numbers from `base_time`), SQL verbatim, declarations
/// from a replay of the peer's SQL on an in-memory database. Writes nothing.
///
/// # Errors
///
/// [`read_folder`]'s; [`Error::Usage`] when versions cannot be mapped in order or the replay
/// fails (naming the file and SQLite's message).
pub fn plan(tool: Tool, dir: &Path, role: &str, base_time: NaiveDateTime) -> Result<ImportPlan> {
    plan_with(tool, dir, role, base_time, false)
}

/// [`plan`]; with `inherit`, each migration after the first declares only the tables, views and
/// triggers it adds or changes (`extends` the previous one, `drop`s what it removed) instead of
/// the whole schema.
///
/// # Errors
///
/// As [`plan`].
pub fn plan_with(
    tool: Tool,
    dir: &Path,
    role: &str,
    base_time: NaiveDateTime,
    inherit: bool,
) -> Result<ImportPlan> {
    let (peers, warnings) = read_folder(tool, dir)?;
    let mut planned: Vec<PlannedImport> = Vec::new();
    for peer in peers {
        let (version, mapped) = strata_version(&peer.version, base_time).ok_or_else(|| {
            usage(format!(
                "{}: version {} is neither a UTC timestamp YYYYMMDDHHMMSS nor a number of \
                 seconds to count from --base-time",
                peer.source, peer.version
            ))
        })?;
        if let Some(prev) = planned.last()
            && prev.version >= version
        {
            return Err(usage(format!(
                "{} becomes version {version}, not after {} ({}): mixing sequential numbers and \
                 timestamps needs a --base-time that puts the numbers before the timestamps",
                peer.source, prev.version, prev.peer.source
            )));
        }
        let module = format!("m{version}_{}", identifier(&peer.name));
        planned.push(PlannedImport {
            peer,
            version,
            mapped,
            module,
            files: Vec::new(),
            contract: false,
        });
    }
    let conn = Connection::open_in_memory()?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    let mut previous: Option<(String, String)> = None;
    for p in &mut planned {
        let before = SchemaSnapshot::read(&conn)?;
        replay_one(&conn, &p.peer)?;
        p.contract = contracts(&before, &SchemaSnapshot::read(&conn)?);
        let code = crate::authoring::introspect_connection(&conn, &[], role, p.version)?;
        let mut schema = declaration(&code)?;
        let full = schema.1.clone();
        if inherit && let Some((prev_module, prev_schema)) = &previous {
            schema.1 = short_form(prev_module, prev_schema, &full);
        }
        previous = Some((p.module.clone(), full));
        let mut files = vec![(format!("{}.rs", p.module), migration_file(p, role, &schema))];
        if has_statements(&p.peer.up) {
            files.push((format!("{}.sql", p.module), p.peer.up.clone()));
        }
        if let Some(down) = &p.peer.down {
            files.push((format!("{}.down.sql", p.module), down.clone()));
        }
        p.files = files;
    }
    Ok(ImportPlan {
        tool,
        role: role.to_string(),
        migrations: planned,
        warnings,
    })
}

/// Applies `peer`'s SQL as the generated migration will: in a transaction unless it runs
/// without one.
fn replay_one(conn: &Connection, peer: &PeerMigration) -> Result<()> {
    let run = || -> rusqlite::Result<()> {
        if peer.no_transaction {
            return conn.execute_batch(&peer.up);
        }
        conn.execute_batch("BEGIN")?;
        conn.execute_batch(&peer.up)?;
        conn.execute_batch("COMMIT")
    };
    run().map_err(|e| {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        usage(format!(
            "replaying the {} migrations in order, SQLite refused {}: {e}",
            peer.tool, peer.source
        ))
    })
}

/// The objects of a printed `strata::schema! { .. }` block, keyed by kind and name, each with
/// its lines (comments before it included), in order.
fn schema_items(schema: &str) -> Vec<((String, String), String)> {
    let mut items = Vec::new();
    let mut pending = String::new();
    let mut current: Option<((String, String), String, bool)> = None;
    for line in schema.lines().skip(1) {
        if let Some((key, text, table)) = &mut current {
            text.push_str(line);
            text.push('\n');
            let done = if *table {
                line.starts_with("    }")
            } else {
                closes_literal(line)
            };
            if done {
                items.push((key.clone(), std::mem::take(text)));
                current = None;
            }
            continue;
        }
        let mut words = line.split_whitespace();
        match (
            line.starts_with("    ") && !line.starts_with("     "),
            words.next(),
        ) {
            (true, Some(kind @ ("table" | "view" | "trigger"))) => {
                let name = words.next().unwrap_or_default().to_string();
                let mut text = std::mem::take(&mut pending);
                text.push_str(line);
                text.push('\n');
                let table = kind == "table";
                // A table's block ends at its own `    }` line; a view's or trigger's at the
                // line closing its string.
                let done = !table && closes_literal(line);
                let key = (kind.to_string(), name);
                if done {
                    items.push((key, text));
                } else {
                    current = Some((key, text, table));
                }
            }
            (_, Some("}")) if !line.starts_with(' ') => break,
            _ => {
                pending.push_str(line);
                pending.push('\n');
            }
        }
    }
    items
}

/// Whether `line` ends the string literal of a printed view or trigger: `";` with the quote
/// not escaped.
fn closes_literal(line: &str) -> bool {
    let line = line.trim_end();
    let Some(body) = line.strip_suffix("\";") else {
        return false;
    };
    let backslashes = body.len() - body.trim_end_matches('\\').len();
    backslashes % 2 == 0
}

/// The short form of `schema` after `previous` (both printed by introspection): `extends` the
/// previous migration, `drop` what it no longer has, and declare only what is new or changed.
fn short_form(previous_module: &str, previous: &str, schema: &str) -> String {
    let (before, after) = (schema_items(previous), schema_items(schema));
    let mut out = format!("strata::schema! {{\n    extends super::{previous_module};\n");
    for ((kind, name), _) in &before {
        if !after.iter().any(|((k, n), _)| k == kind && n == name) {
            let _ = writeln!(out, "    drop {kind} {name};");
        }
    }
    for (key, text) in &after {
        if !before.iter().any(|(k, t)| k == key && t == text) {
            out.push_str(text);
        }
    }
    out.push('}');
    out
}

/// Whether going from `before` to `after` removes or tightens anything: everything but new
/// tables, new columns old writers can omit (nullable or defaulted), new non-unique indexes,
/// new views and new triggers.
fn contracts(before: &SchemaSnapshot, after: &SchemaSnapshot) -> bool {
    after.diff(before).iter().any(|d| match d {
        Difference::UnexpectedTable(_) | Difference::Unexpected { .. } => false,
        Difference::UnexpectedColumn { table, column } => after
            .tables
            .get(table)
            .and_then(|t| t.columns.iter().find(|c| &c.name == column))
            .is_none_or(|c| c.not_null && c.default.is_none() && c.hidden == 0),
        Difference::UnexpectedIndex(name) => after.indexes.get(name).is_none_or(|i| i.unique),
        _ => true,
    })
}

/// What [`write()`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Written {
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Files already there with the same content (an import run again).
    pub unchanged: Vec<PathBuf>,
    /// The `lib.rs` the modules were registered in.
    pub registered_in: Option<PathBuf>,
    /// Whether that `lib.rs` was created (with `strata::migrations!()`).
    pub created_lib: bool,
}

/// Writes the plan's files into `out` (created if missing) and registers the modules in
/// `<out>/lib.rs` (created if missing). A file already there with the same content is left
/// alone; with other content, or another migration of the same version there, nothing is
/// written.
///
/// # Errors
///
/// [`Error::Usage`] for conflicts and I/O errors.
pub fn write(plan: &ImportPlan, out: &Path) -> Result<Written> {
    let io = |path: &Path, e: std::io::Error| usage(format!("writing {}: {e}", path.display()));
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let present: Vec<String> = entries(out)?.into_iter().map(|(n, _)| n).collect();
    let mut conflicts = Vec::new();
    let mut done = Written::default();
    for m in &plan.migrations {
        let prefix = format!("m{}_", m.version);
        for other in present
            .iter()
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".rs"))
        {
            if *other != format!("{}.rs", m.module) {
                conflicts.push(format!(
                    "{other} already has version {} (wanted for {})",
                    m.version, m.peer.source
                ));
            }
        }
        for (name, content) in &m.files {
            let path = out.join(name);
            match std::fs::read_to_string(&path) {
                Ok(existing) if existing == *content => done.unchanged.push(path),
                Ok(_) => conflicts.push(format!(
                    "{} exists with other content (remove it to import again)",
                    path.display()
                )),
                Err(_) => {}
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(usage(format!(
            "nothing written to {}: {}",
            out.display(),
            conflicts.join("; ")
        )));
    }
    for m in &plan.migrations {
        for (name, content) in &m.files {
            let path = out.join(name);
            if done.unchanged.contains(&path) {
                continue;
            }
            std::fs::write(&path, content).map_err(|e| io(&path, e))?;
            done.written.push(path);
        }
    }
    let lib = out.join("lib.rs");
    let modules: Vec<&PlannedImport> = plan.migrations.iter().collect();
    match std::fs::read_to_string(&lib) {
        Ok(text) => {
            let updated = register(&text, &modules);
            if updated != text {
                std::fs::write(&lib, updated).map_err(|e| io(&lib, e))?;
            }
        }
        Err(_) => {
            let header = format!(
                "//! Migrations of role `{}`, imported from {} by `strata import`.\n\n\
                 strata::migrations!();\n",
                plan.role, plan.tool
            );
            std::fs::write(&lib, register(&header, &modules)).map_err(|e| io(&lib, e))?;
            done.created_lib = true;
        }
    }
    done.registered_in = Some(lib);
    Ok(done)
}

/// `text` (a lib.rs) with `pub mod <module>;` for each module it does not declare yet, after
/// its last migration module (or at the end).
fn register(text: &str, modules: &[&PlannedImport]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let declared = |lines: &[String], module: &str| {
        lines.iter().any(|l| {
            let l = l.trim().trim_start_matches("pub ");
            l == format!("mod {module};")
        })
    };
    for m in modules {
        if declared(&lines, &m.module) {
            continue;
        }
        let last = lines.iter().rposition(|l| {
            let l = l.trim().trim_start_matches("pub ");
            l.starts_with("mod m") && l.len() > 20 && l[5..19].bytes().all(|b| b.is_ascii_digit())
        });
        let entry = [
            format!("/// {}", title(&m.peer.name)),
            format!("pub mod {};", m.module),
        ];
        match last {
            Some(i) => {
                lines.insert(i + 1, entry[1].clone());
                lines.insert(i + 1, entry[0].clone());
            }
            None => {
                if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                    lines.push(String::new());
                }
                lines.extend(entry);
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_short_form_declares_only_what_changed() {
        let before = "strata::schema! {\n    table a {\n        x: i64,\n    }\n    table b {\n        y: i64,\n    }\n    view v as \"SELECT \\\";\n1\";\n    trigger t \"AFTER INSERT ON a\nBEGIN SELECT 1; END\";\n}";
        let after = "strata::schema! {\n    table a {\n        x: i64,\n    }\n    table b {\n        y: i64,\n        z: Option<i64>,\n    }\n    table c {\n        q: i64,\n    }\n    trigger t \"AFTER INSERT ON a\nBEGIN SELECT 1; END\";\n}";
        assert_eq!(
            short_form("m1_first", before, after),
            "strata::schema! {\n    extends super::m1_first;\n    drop view v;\n    table b {\n        y: i64,\n        z: Option<i64>,\n    }\n    table c {\n        q: i64,\n    }\n}"
        );
    }

    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn base() -> NaiveDateTime {
        default_base_time()
    }

    const PEOPLE: &str = "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n";
    const EMAIL: &str = "ALTER TABLE people ADD COLUMN email TEXT;\n";

    #[test]
    fn sqlx_checksum_is_sha384_of_the_file() {
        // `printf 'CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n' |
        // sha384sum`, computed outside Strata.
        assert_eq!(
            hex(&sqlx_checksum(PEOPLE)),
            "fda354e6baa0927720a3cb8ddc8d67c469bb9ce7ba5147d946b8f2f212e15600\
             f5c9add2e8c46b33759e1a8d1029b3ea"
        );
    }

    #[test]
    fn refinery_checksum_is_what_refinery_computes() {
        // Values printed by refinery-core 0.10.1's own `Migration::unapplied(name, sql)
        // .checksum()` for these two files.
        assert_eq!(
            refinery_checksum("create_people", 1, PEOPLE, false),
            Some(17356732592446574954)
        );
        assert_eq!(
            refinery_checksum("add_email", 2, EMAIL, false),
            Some(4703752031621372410)
        );
        // With `int8-versions`, the version is hashed as an i64: another checksum.
        assert_ne!(
            refinery_checksum("create_people", 1, PEOPLE, true),
            Some(17356732592446574954)
        );
    }

    #[test]
    fn versions_map_timestamps_directly_and_numbers_from_the_base_time() {
        assert_eq!(
            strata_version("20240226153000", base()),
            Some((20240226153000, false))
        );
        assert_eq!(strata_version("1", base()), Some((20000101000001, true)));
        assert_eq!(
            strata_version("00003", base()),
            Some((20000101000003, true))
        );
        assert_eq!(strata_version("3600", base()), Some((20000101010000, true)));
        // Not a real time: counted as seconds, which lands past year 9999.
        assert_eq!(strata_version("20241399000000", base()), None);
        assert_eq!(strata_version("x1", base()), None);
        let later = parse_base_time("2023-05-01 12:00:00").unwrap();
        assert_eq!(strata_version("2", later), Some((20230501120002, true)));
        assert!(parse_base_time("yesterday").is_err());
    }

    #[test]
    fn sqlx_folders_hold_simple_and_reversible_migrations() {
        let dir = folder(&[
            ("20240226153000_create_people.up.sql", PEOPLE),
            (
                "20240226153000_create_people.down.sql",
                "DROP TABLE people;\n",
            ),
            ("20240301090000_add_email.sql", EMAIL),
            (
                "20240302090000_backfill.sql",
                "-- no-transaction\nUPDATE people SET email = '';\n",
            ),
            ("README.md", "not a migration"),
            ("notes.sql", "SELECT 1;"),
        ]);
        let (found, warnings) = read_folder(Tool::Sqlx, dir.path()).unwrap();
        let summary: Vec<(&str, &str, bool, bool)> = found
            .iter()
            .map(|m| {
                (
                    m.version.as_str(),
                    m.name.as_str(),
                    m.down.is_some(),
                    m.no_transaction,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("20240226153000", "create_people", true, false),
                ("20240301090000", "add_email", false, false),
                ("20240302090000", "backfill", false, true),
            ]
        );
        assert_eq!(found[0].up, PEOPLE, "verbatim");
        assert_eq!(
            warnings,
            ["notes.sql: ignored (sqlx reads `<version>_<name>.sql`)"]
        );
        // A version sqlx refuses is refused, naming the file.
        let bad = folder(&[("x_y.sql", "SELECT 1;")]);
        let err = read_folder(Tool::Sqlx, bad.path()).unwrap_err().to_string();
        assert!(err.contains("x_y.sql") && err.contains("version"), "{err}");
    }

    #[test]
    fn refinery_folders_are_walked_and_unversioned_or_rust_migrations_refused() {
        let dir = folder(&[
            ("V1__create_people.sql", PEOPLE),
            ("later/V2__add_email.sql", EMAIL),
            ("V3-notes.sql", "SELECT 1;"),
        ]);
        let (found, warnings) = read_folder(Tool::Refinery, dir.path()).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|m| (m.version.as_str(), m.name.as_str(), m.source.as_str()))
                .collect::<Vec<_>>(),
            [
                ("1", "create_people", "V1__create_people.sql"),
                ("2", "add_email", "later/V2__add_email.sql")
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let unversioned = folder(&[("V1__a.sql", PEOPLE), ("U2__fix.sql", "SELECT 1;")]);
        let err = read_folder(Tool::Refinery, unversioned.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("U2__fix.sql is an unversioned refinery migration"),
            "{err}"
        );
        let rust = folder(&[
            ("V1__a.sql", PEOPLE),
            ("V2__b.rs", "pub fn migration() -> String { String::new() }"),
        ]);
        let err = read_folder(Tool::Refinery, rust.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("V2__b.rs is a refinery migration written in Rust"),
            "{err}"
        );
    }

    #[test]
    fn diesel_directories_take_their_version_without_dashes() {
        let dir = folder(&[
            ("2024-02-26-153000_create_people/up.sql", PEOPLE),
            (
                "2024-02-26-153000_create_people/down.sql",
                "DROP TABLE people;\n",
            ),
            ("20240301090000_add_email/up.sql", EMAIL),
            (
                "20240301090000_add_email/down.sql",
                "-- This file should undo anything in `up.sql`\n",
            ),
            (
                "20240302090000_index/up.sql",
                "CREATE INDEX people_by_name ON people (name);\n",
            ),
            (
                "20240302090000_index/metadata.toml",
                "run_in_transaction = false\n",
            ),
            (".keep/x", ""),
        ]);
        let (found, _) = read_folder(Tool::Diesel, dir.path()).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|m| (m.version.as_str(), m.down.is_some(), m.no_transaction))
                .collect::<Vec<_>>(),
            [
                ("20240226153000", true, false),
                ("20240301090000", false, false),
                ("20240302090000", false, true)
            ],
            "a down.sql of comments only is no down"
        );
        assert_eq!(found[0].source, "2024-02-26-153000_create_people/up.sql");
    }

    #[test]
    fn goose_files_split_into_up_and_down_and_go_migrations_are_refused() {
        let trigger = "-- +goose Up\n-- +goose StatementBegin\nCREATE TRIGGER t AFTER INSERT ON people BEGIN\n  UPDATE people SET name = upper(name) WHERE id = new.id;\nEND;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TRIGGER t;\n";
        let dir = folder(&[
            (
                "00001_create_people.sql",
                &format!("-- header\n-- +goose Up\n{PEOPLE}\n-- +goose Down\nDROP TABLE people;\n"),
            ),
            ("00002_upper_names.sql", trigger),
            (
                "00003_add_email.sql",
                &format!("-- +goose NO TRANSACTION\n-- +goose Up\n{EMAIL}"),
            ),
        ]);
        let (found, _) = read_folder(Tool::Goose, dir.path()).unwrap();
        assert_eq!(found[0].version, "1");
        assert_eq!(found[0].up, format!("{PEOPLE}\n"));
        assert_eq!(found[0].down.as_deref(), Some("DROP TABLE people;\n"));
        assert!(
            found[1]
                .up
                .starts_with("-- +goose StatementBegin\nCREATE TRIGGER"),
            "{}",
            found[1].up
        );
        assert!(
            found[1].up.ends_with("-- +goose StatementEnd\n\n"),
            "{}",
            found[1].up
        );
        assert!(found[2].no_transaction && found[2].down.is_none());
        let go = folder(&[
            ("00001_a.sql", "-- +goose Up\nSELECT 1;\n"),
            ("00002_backfill.go", "package migrations"),
        ]);
        let err = read_folder(Tool::Goose, go.path()).unwrap_err().to_string();
        assert!(err.contains("written in Go (00002_backfill.go)"), "{err}");
        let envsub = folder(&[(
            "00001_a.sql",
            "-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${X}';\n",
        )]);
        let err = read_folder(Tool::Goose, envsub.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("ENVSUB"), "{err}");
        let no_up = folder(&[("00001_a.sql", "SELECT 1;\n")]);
        assert!(
            read_folder(Tool::Goose, no_up.path())
                .unwrap_err()
                .to_string()
                .contains("no `-- +goose Up`")
        );
    }

    #[test]
    fn a_plan_writes_each_migration_with_its_sql_beside_it_and_the_replayed_schema() {
        let dir = folder(&[
            ("V1__create_people.sql", PEOPLE),
            ("V2__add_email.sql", EMAIL),
        ]);
        let plan = plan(Tool::Refinery, dir.path(), "main", base()).unwrap();
        let first = &plan.migrations[0];
        assert_eq!((first.version, first.mapped), (20000101000001, true));
        assert_eq!(first.module, "m20000101000001_create_people");
        let names: Vec<&str> = first.files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "m20000101000001_create_people.rs",
                "m20000101000001_create_people.sql"
            ]
        );
        assert_eq!(first.files[1].1, PEOPLE);
        let code = &plan.migrations[1].files[0].1;
        for part in [
            "#[migration(20000101000002, role = \"main\", imported = \"refinery:2\")]",
            "fn add_email(tx: &mut Tx) -> Result<()> {",
            "tx.execute_batch(strata::sql_file!(\"m20000101000002_add_email.sql\"))",
            "strata::schema! {",
            "table people {",
            "email: Option<String>",
            "Version 20000101000002 is refinery's 2",
        ] {
            assert!(code.contains(part), "{part:?} missing from:\n{code}");
        }
        assert!(
            !plan.migrations[0].files[0].1.contains("email"),
            "the first declaration predates the column"
        );
    }

    #[test]
    fn a_replay_that_fails_names_the_file() {
        let dir = folder(&[
            ("1_a.sql", PEOPLE),
            ("2_b.sql", "ALTER TABLE nobody ADD COLUMN x;\n"),
        ]);
        let err = plan(Tool::Sqlx, dir.path(), "main", base())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SQLite refused 2_b.sql") && err.contains("nobody"),
            "{err}"
        );
    }

    #[test]
    fn writing_registers_modules_and_refuses_to_overwrite_other_content() {
        let dir = folder(&[("1_create_people.sql", PEOPLE), ("2_add_email.sql", EMAIL)]);
        let plan = plan(Tool::Sqlx, dir.path(), "main", base()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let done = write(&plan, out.path()).unwrap();
        assert!(done.created_lib);
        assert_eq!(done.written.len(), 4);
        let lib = std::fs::read_to_string(out.path().join("lib.rs")).unwrap();
        assert!(lib.contains("strata::migrations!();"), "{lib}");
        assert!(
            lib.contains("/// Create people.\npub mod m20000101000001_create_people;\n/// Add email.\npub mod m20000101000002_add_email;\n"),
            "{lib}"
        );
        // Again: nothing changes.
        let again = write(&plan, out.path()).unwrap();
        assert!(again.written.is_empty() && again.unchanged.len() == 4);
        assert_eq!(
            std::fs::read_to_string(out.path().join("lib.rs")).unwrap(),
            lib
        );
        // A file edited since: nothing is written.
        std::fs::write(
            out.path().join("m20000101000002_add_email.sql"),
            "-- edited\n",
        )
        .unwrap();
        let err = write(&plan, out.path()).unwrap_err().to_string();
        assert!(err.contains("exists with other content"), "{err}");
    }

    fn peer_db(tool: Tool, ddl: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(ddl).unwrap();
        assert!(has_table(&conn, tool.history_table()).unwrap());
        conn
    }

    const SQLX_TABLE: &str = "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);";

    #[test]
    fn sqlx_history_adopts_matching_checksums_and_refuses_others() {
        let conn = peer_db(Tool::Sqlx, SQLX_TABLE);
        let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?1, 'x', ?2, ?3, 1)";
        conn.execute(insert, rusqlite::params![1, true, sqlx_checksum(PEOPLE)])
            .unwrap();
        conn.execute(
            insert,
            rusqlite::params![2, true, sqlx_checksum("something else")],
        )
        .unwrap();
        conn.execute(insert, rusqlite::params![3, false, sqlx_checksum(EMAIL)])
            .unwrap();
        let history = PeerHistory::read(&conn, Tool::Sqlx).unwrap().unwrap();
        assert_eq!(
            history.decide("1", Some(PEOPLE)),
            Decision::Adopt { checked: true }
        );
        // Whitespace sqlx may be told to ignore.
        let spaced = PEOPLE.replace(' ', "  ");
        conn.execute(
            insert,
            rusqlite::params![4, true, sqlx_checksum(&PEOPLE.replace([' ', '\n'], ""))],
        )
        .unwrap();
        let history = PeerHistory::read(&conn, Tool::Sqlx).unwrap().unwrap();
        assert_eq!(
            history.decide("4", Some(&spaced)),
            Decision::Adopt { checked: true }
        );
        assert!(matches!(
            history.decide("2", Some(EMAIL)),
            Decision::Mismatch { .. }
        ));
        assert_eq!(history.decide("3", Some(EMAIL)), Decision::Failed);
        assert_eq!(history.decide("9", Some(EMAIL)), Decision::Run);
    }

    #[test]
    fn refinery_diesel_and_goose_histories() {
        let conn = peer_db(
            Tool::Refinery,
            "CREATE TABLE refinery_schema_history (version int4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));",
        );
        conn.execute(
            "INSERT INTO refinery_schema_history VALUES (1, 'create_people', '2024-01-01T00:00:00Z', '17356732592446574954')",
            [],
        )
        .unwrap();
        let history = PeerHistory::read(&conn, Tool::Refinery).unwrap().unwrap();
        assert_eq!(
            history.decide("1", Some(PEOPLE)),
            Decision::Adopt { checked: true }
        );
        assert!(matches!(
            history.decide("1", Some(EMAIL)),
            Decision::Mismatch { .. }
        ));

        let conn = peer_db(
            Tool::Diesel,
            "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20240226153000');",
        );
        let history = PeerHistory::read(&conn, Tool::Diesel).unwrap().unwrap();
        assert_eq!(
            history.decide("20240226153000", Some(PEOPLE)),
            Decision::Adopt { checked: false }
        );
        assert_eq!(history.decide("20240301090000", Some(EMAIL)), Decision::Run);

        let conn = peer_db(
            Tool::Goose,
            "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (2, 0), (3, 1);",
        );
        let history = PeerHistory::read(&conn, Tool::Goose).unwrap().unwrap();
        assert_eq!(
            history.rows.keys().collect::<Vec<_>>(),
            ["1", "3"],
            "0 is goose's own row; 2 was rolled back"
        );
    }

    #[test]
    fn the_database_check_reports_what_would_be_adopted_run_or_refused() {
        let dir = folder(&[
            ("1_create_people.sql", PEOPLE),
            ("2_add_email.sql", EMAIL),
            (
                "3_index.sql",
                "CREATE INDEX people_by_name ON people (name);\n",
            ),
        ]);
        let plan = plan(Tool::Sqlx, dir.path(), "main", base()).unwrap();
        let db = tempfile::tempdir().unwrap();
        let path = db.path().join("app.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SQLX_TABLE).unwrap();
        conn.execute_batch(PEOPLE).unwrap();
        let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?1, 'x', 1, ?2, 1)";
        conn.execute(insert, rusqlite::params![1, sqlx_checksum(PEOPLE)])
            .unwrap();
        conn.execute(
            insert,
            rusqlite::params![
                2,
                sqlx_checksum("ALTER TABLE people ADD COLUMN mail TEXT;\n")
            ],
        )
        .unwrap();
        conn.execute(insert, rusqlite::params![7, sqlx_checksum("x")])
            .unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let check = check_database(&plan, &path).unwrap();
        assert!(check.table_found && check.strata_role.is_none());
        let decisions: Vec<&Decision> = check.entries.iter().map(|e| &e.decision).collect();
        assert_eq!(decisions[0], &Decision::Adopt { checked: true });
        assert!(matches!(decisions[1], Decision::Mismatch { .. }));
        assert_eq!(decisions[2], &Decision::Run);
        assert_eq!(check.unknown, ["7"]);
        let problems = check.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("2_add_email.sql: checksum"),
            "{problems:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "read-only");
    }

    #[test]
    fn identifiers_are_rust_names() {
        assert_eq!(identifier("create_users"), "create_users");
        assert_eq!(identifier("Add-Email to users"), "add_email_to_users");
        assert_eq!(identifier("1st"), "step_1st");
        assert_eq!(identifier("type"), "type_");
        assert_eq!(identifier("--"), "migration");
    }
}
