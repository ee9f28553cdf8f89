//! The peer's history: reading what the peer tool recorded (its table, its checksums), the
//! runner's adoption of imported migrations, and `strata import --database`'s read-only check.

use super::*;

// ---------------------------------------------------------------------------------------------
// The peer's history, as the runner and `strata import --database` read it.

/// A checksum as the peer recorded it.
#[derive(Debug, Clone)]
pub(super) enum PeerChecksum {
    /// sqlx: SHA-384 of the SQL, a BLOB.
    Sqlx(Vec<u8>),
    /// refinery: the decimal text of a `u64`.
    Refinery(String),
}

/// One version of the peer's history.
#[derive(Debug, Clone)]
pub(super) enum PeerRow {
    Applied {
        /// refinery's `name` column (part of its checksum).
        name: Option<String>,
        checksum: Option<PeerChecksum>,
    },
    /// sqlx's `success = false`.
    Failed,
}

/// The peer's history table, read whole: applied (or failed) versions as the peer records
/// them.
#[derive(Debug, Clone)]
pub(crate) struct PeerHistory {
    tool: Tool,
    pub(super) rows: BTreeMap<String, PeerRow>,
}

pub(super) fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

/// A version as text: integers in decimal, text as it is.
fn version_text(v: Value) -> Option<String> {
    match v {
        Value::Integer(i) => Some(i.to_string()),
        Value::Text(t) => Some(t.trim().to_string()),
        Value::Real(f) if f.fract() == 0.0 => Some(format!("{f:.0}")),
        _ => None,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Integer(i) => *i != 0,
        Value::Real(f) => *f != 0.0,
        Value::Text(t) => matches!(t.trim().to_ascii_lowercase().as_str(), "1" | "true" | "t"),
        _ => false,
    }
}

impl PeerHistory {
    /// `tool`'s history in `conn`, `None` when its table is not there.
    pub(crate) fn read(conn: &Connection, tool: Tool) -> Result<Option<PeerHistory>> {
        if !has_table(conn, tool.history_table())? {
            return Ok(None);
        }
        let mut rows = BTreeMap::new();
        match tool {
            Tool::Sqlx => {
                let mut stmt =
                    conn.prepare("SELECT version, success, checksum FROM _sqlx_migrations")?;
                let mut q = stmt.query([])?;
                while let Some(r) = q.next()? {
                    let Some(version) = version_text(r.get(0)?) else {
                        continue;
                    };
                    let row = if truthy(&r.get(1)?) {
                        let checksum = match r.get::<_, Value>(2)? {
                            Value::Blob(b) => Some(PeerChecksum::Sqlx(b)),
                            _ => None,
                        };
                        PeerRow::Applied {
                            name: None,
                            checksum,
                        }
                    } else {
                        PeerRow::Failed
                    };
                    rows.insert(version, row);
                }
            }
            Tool::Refinery => {
                let mut stmt =
                    conn.prepare("SELECT version, name, checksum FROM refinery_schema_history")?;
                let mut q = stmt.query([])?;
                while let Some(r) = q.next()? {
                    let Some(version) = version_text(r.get(0)?) else {
                        continue;
                    };
                    let checksum = version_text(r.get(2)?).map(PeerChecksum::Refinery);
                    rows.insert(
                        version,
                        PeerRow::Applied {
                            name: r.get(1)?,
                            checksum,
                        },
                    );
                }
            }
            Tool::Diesel => {
                let mut stmt = conn.prepare("SELECT version FROM __diesel_schema_migrations")?;
                let mut q = stmt.query([])?;
                while let Some(r) = q.next()? {
                    if let Some(version) = version_text(r.get(0)?) {
                        rows.insert(
                            version,
                            PeerRow::Applied {
                                name: None,
                                checksum: None,
                            },
                        );
                    }
                }
            }
            Tool::Goose => {
                // One row per up or down (older goose records a down as `is_applied = 0`,
                // newer deletes the row); the newest row of a version says where it stands.
                // Version 0 is the row goose writes when it creates the table.
                let mut stmt = conn
                    .prepare("SELECT version_id, is_applied FROM goose_db_version ORDER BY id")?;
                let mut q = stmt.query([])?;
                while let Some(r) = q.next()? {
                    let Some(version) = version_text(r.get(0)?).filter(|v| v != "0") else {
                        continue;
                    };
                    if truthy(&r.get(1)?) {
                        rows.insert(
                            version,
                            PeerRow::Applied {
                                name: None,
                                checksum: None,
                            },
                        );
                    } else {
                        rows.remove(&version);
                    }
                }
            }
        }
        Ok(Some(PeerHistory { tool, rows }))
    }
}

/// sqlx's checksum: SHA-384 of the SQL text.
pub fn sqlx_checksum(sql: &str) -> Vec<u8> {
    sha2::Sha384::digest(sql.as_bytes()).to_vec()
}

/// The characters sqlx's documentation suggests ignoring (`ignored-chars` in `sqlx.toml`), so
/// that reformatting a migration does not change its checksum.
const SQLX_IGNORABLE: [char; 5] = [' ', '\t', '\r', '\n', '\u{FEFF}'];

/// refinery's checksum: SipHash-1-3 (keys 0) over its name, version and SQL, as refinery hashes
/// them (`name.hash(h); version.hash(h); sql.hash(h)`), with the version an `i32`, or an `i64`
/// when refinery was built with `int8-versions`.
pub fn refinery_checksum(name: &str, version: i64, sql: &str, int8: bool) -> Option<u64> {
    let mut h = siphasher::sip::SipHasher13::new();
    name.hash(&mut h);
    if int8 {
        version.hash(&mut h);
    } else {
        i32::try_from(version).ok()?.hash(&mut h);
    }
    sql.hash(&mut h);
    Some(h.finish())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What the peer's history says about one imported migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Decision {
    /// Applied by the peer: record it without running. `checked`: its checksum was compared
    /// (false where the peer keeps none, or no SQL file is known).
    Adopt {
        /// Whether a checksum was compared.
        checked: bool,
    },
    /// Not in the peer's history: it runs.
    Run,
    /// The peer recorded it as failed.
    Failed,
    /// The peer's checksum differs from the file's.
    Mismatch {
        /// As the peer recorded it.
        recorded: String,
        /// Of the file, computed as the peer computes it.
        computed: String,
    },
}

impl PeerHistory {
    /// The decision for `version` (as the peer records it), whose SQL is `sql` when known.
    pub(super) fn decide(&self, version: &str, sql: Option<&str>) -> Decision {
        let Some(row) = self.rows.get(version) else {
            return Decision::Run;
        };
        let (name, checksum) = match row {
            PeerRow::Failed => return Decision::Failed,
            PeerRow::Applied { name, checksum } => (name, checksum),
        };
        let (Some(sql), true) = (sql, self.tool.keeps_checksums()) else {
            return Decision::Adopt { checked: false };
        };
        match checksum {
            Some(PeerChecksum::Sqlx(recorded)) => {
                let exact = sqlx_checksum(sql);
                let stripped: String = sql
                    .chars()
                    .filter(|c| !SQLX_IGNORABLE.contains(c))
                    .collect();
                if *recorded == exact || *recorded == sqlx_checksum(&stripped) {
                    Decision::Adopt { checked: true }
                } else {
                    Decision::Mismatch {
                        recorded: hex(recorded),
                        computed: hex(&exact),
                    }
                }
            }
            Some(PeerChecksum::Refinery(recorded)) => {
                let name = name.as_deref().unwrap_or_default();
                let number: i64 = version.parse().unwrap_or_default();
                let i32_sum = refinery_checksum(name, number, sql, false);
                let i64_sum = refinery_checksum(name, number, sql, true);
                let matches = [i32_sum, i64_sum]
                    .iter()
                    .flatten()
                    .any(|s| s.to_string() == *recorded);
                if matches {
                    Decision::Adopt { checked: true }
                } else {
                    Decision::Mismatch {
                        recorded: recorded.clone(),
                        computed: i32_sum.or(i64_sum).unwrap_or_default().to_string(),
                    }
                }
            }
            // A row without a checksum where the peer writes one: nothing to compare.
            None => Decision::Mismatch {
                recorded: "(none)".to_string(),
                computed: "(a checksum)".to_string(),
            },
        }
    }
}

/// `tool:version` of an imported migration.
fn peer_of(m: &Migration) -> Option<(Tool, &'static str)> {
    let (tool, version) = m.imported()?.split_once(':')?;
    Some((Tool::from_name(tool)?, version))
}

/// The SQL file of an imported migration, for messages: its path beside the migration's file.
fn sql_file_of(m: &Migration) -> String {
    match m.imported_sql() {
        Some((file, _)) => Path::new(m.location().0)
            .parent()
            .map_or_else(|| file.to_string(), |d| d.join(file).display().to_string()),
        None => m.location().0.to_string(),
    }
}

/// Whether some migration of `known` was imported from a tool whose history table `conn` has:
/// a database that tool made, which the runner may adopt.
pub(crate) fn claims_peer_history(conn: &Connection, known: &[&'static Migration]) -> Result<bool> {
    let tools: BTreeSet<Tool> = known
        .iter()
        .filter_map(|m| peer_of(m))
        .map(|p| p.0)
        .collect();
    for tool in tools {
        if has_table(conn, tool.history_table())? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The details of [`Error::PeerChecksumMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMismatch {
    /// The imported migration's SQL file.
    pub file: String,
    /// The version as the peer records it.
    pub peer_version: String,
    /// The checksum in the peer's history table.
    pub recorded: String,
    /// The checksum of the file, computed as the peer computes it.
    pub computed: String,
}

/// The error for `decision` about `m`, if it is one.
fn refusal(
    path: &Path,
    m: &Migration,
    history: &PeerHistory,
    decision: &Decision,
) -> Option<Error> {
    let (tool, version) = peer_of(m)?;
    match decision {
        Decision::Failed => Some(Error::PeerFailed {
            path: path.to_path_buf(),
            id: m.id(),
            tool: tool.name(),
            peer_version: version.to_string(),
            table: history.tool.history_table(),
        }),
        Decision::Mismatch { recorded, computed } => Some(Error::PeerChecksumMismatch {
            path: path.to_path_buf(),
            id: m.id(),
            tool: tool.name(),
            mismatch: Box::new(PeerMismatch {
                file: sql_file_of(m),
                peer_version: version.to_string(),
                recorded: recorded.clone(),
                computed: computed.clone(),
            }),
        }),
        Decision::Adopt { .. } | Decision::Run => None,
    }
}

/// Under the runner's write lock, before anything of a run is written: the versions of
/// `pending` that the peers' histories in `conn` record as applied (to be adopted), after
/// checking every one of them. `known`: all the role's migrations.
///
/// # Errors
///
/// [`Error::PeerFailed`], [`Error::PeerChecksumMismatch`], and — unless `allow_unknown` —
/// [`Error::PeerUnknown`] for peer versions no migration of `known` was imported from.
pub(crate) fn check_pending(
    conn: &Connection,
    path: &Path,
    known: &[&'static Migration],
    pending: &[&'static Migration],
    allow_unknown: bool,
) -> Result<BTreeSet<i64>> {
    let mut adopt = BTreeSet::new();
    let tools: BTreeSet<Tool> = known
        .iter()
        .filter_map(|m| peer_of(m))
        .map(|p| p.0)
        .collect();
    for tool in tools {
        let Some(history) = PeerHistory::read(conn, tool)? else {
            continue;
        };
        if !allow_unknown {
            let claimed: BTreeSet<&str> = known
                .iter()
                .filter_map(|m| peer_of(m))
                .filter(|p| p.0 == tool)
                .map(|p| p.1)
                .collect();
            let unknown: Vec<String> = history
                .rows
                .keys()
                .filter(|v| !claimed.contains(v.as_str()))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(Error::PeerUnknown {
                    path: path.to_path_buf(),
                    tool: tool.name(),
                    table: tool.history_table(),
                    versions: unknown,
                });
            }
        }
        for m in pending {
            let Some((t, version)) = peer_of(m) else {
                continue;
            };
            if t != tool {
                continue;
            }
            let decision = history.decide(version, m.imported_sql().map(|s| s.1));
            if let Some(e) = refusal(path, m, &history, &decision) {
                return Err(e);
            }
            if matches!(decision, Decision::Adopt { .. }) {
                adopt.insert(m.version());
            }
        }
    }
    Ok(adopt)
}

/// Under the write lock, just before `m` would run: `Some(audit detail)` when its peer recorded
/// it as applied and it is to be recorded without running, checked again (another process of
/// the peer may have moved on since the plan).
///
/// # Errors
///
/// [`Error::PeerFailed`] and [`Error::PeerChecksumMismatch`].
pub(crate) fn adoption(conn: &Connection, path: &Path, m: &Migration) -> Result<Option<String>> {
    let Some((tool, version)) = peer_of(m) else {
        return Ok(None);
    };
    let Some(history) = PeerHistory::read(conn, tool)? else {
        return Ok(None);
    };
    let decision = history.decide(version, m.imported_sql().map(|s| s.1));
    if let Some(e) = refusal(path, m, &history, &decision) {
        return Err(e);
    }
    Ok(match decision {
        Decision::Adopt { checked } => Some(format!(
            "adopted from {tool} version {version}: {} recorded it as applied, so it was recorded \
             without running{}",
            history.tool.history_table(),
            if checked {
                " (checksum verified)"
            } else if tool.keeps_checksums() {
                " (checksum not checked: the migration applies no SQL file)"
            } else {
                ""
            }
        )),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// `strata import --database`: what a database would adopt, read-only.

/// What [`check_database`] found for one imported migration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseEntry {
    /// The Strata version.
    pub version: i64,
    /// The module.
    pub module: String,
    /// The peer's file.
    pub source: String,
    /// The peer's version.
    pub peer_version: String,
    /// Already in Strata's own history: nothing to do.
    pub in_strata_history: bool,
    /// What the runner will do, if it is not in Strata's history yet.
    pub decision: Decision,
}

/// What a database would adopt from its peer history, read without writing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseCheck {
    /// The database file.
    pub path: PathBuf,
    /// The peer's history table.
    pub table: &'static str,
    /// Whether the database has it.
    pub table_found: bool,
    /// The role in Strata's own tables, if Strata already ran on it.
    pub strata_role: Option<String>,
    /// The role of the imported migrations.
    pub role: String,
    /// One per imported migration.
    pub entries: Vec<DatabaseEntry>,
    /// Peer versions recorded (applied or failed) that no imported migration comes from.
    pub unknown: Vec<String>,
}

impl DatabaseCheck {
    /// Checksum mismatches, failed peer migrations, unknown peer versions, and a database of
    /// another role: what would make the runner refuse.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(role) = self.strata_role.as_ref().filter(|r| **r != self.role) {
            out.push(format!(
                "Strata runs it as a `{role}` database, not a `{}` one; check --role",
                self.role
            ));
        }
        for e in self.entries.iter().filter(|e| !e.in_strata_history) {
            match &e.decision {
                Decision::Failed => out.push(format!(
                    "{}: the peer recorded version {} as failed; finish or undo it by hand and \
                     delete its row from {}",
                    e.source, e.peer_version, self.table
                )),
                Decision::Mismatch { recorded, computed } => out.push(format!(
                    "{}: checksum {computed} differs from the {recorded} recorded in {}",
                    e.source, self.table
                )),
                Decision::Adopt { .. } | Decision::Run => {}
            }
        }
        if !self.unknown.is_empty() {
            out.push(format!(
                "{} records version(s) {} that the folder does not hold",
                self.table,
                self.unknown.join(", ")
            ));
        }
        out
    }
}

/// Reads `path` (read-only) and tells, for each migration of `plan`, whether the runner will
/// adopt it, run it, or refuse, and which peer versions no imported migration covers.
///
/// # Errors
///
/// [`Error::Usage`] when the file does not exist; the file's errors (not a database, corrupt).
pub fn check_database(plan: &ImportPlan, path: &Path) -> Result<DatabaseCheck> {
    let conn = crate::store::open_ro(path, std::time::Duration::from_secs(5))?
        .ok_or_else(|| usage(format!("{} does not exist", path.display())))?;
    conn.execute_batch("BEGIN DEFERRED")?;
    let result = check_connection(plan, &conn, path);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn check_connection(plan: &ImportPlan, conn: &Connection, path: &Path) -> Result<DatabaseCheck> {
    let history = PeerHistory::read(conn, plan.tool)?;
    let strata_role: Option<String> = if has_table(conn, crate::store::META_TABLE)? {
        conn.query_row(
            "SELECT value FROM strata_meta WHERE key = 'role'",
            [],
            |r| r.get(0),
        )
        .ok()
    } else {
        None
    };
    let strata_versions: BTreeSet<i64> = if has_table(conn, crate::store::HISTORY_TABLE)? {
        let mut stmt = conn.prepare("SELECT version FROM strata_migrations")?;
        let v = stmt.query_map([], |r| r.get(0))?;
        v.collect::<rusqlite::Result<_>>()?
    } else {
        BTreeSet::new()
    };
    let mut entries = Vec::new();
    for m in &plan.migrations {
        let sql = has_statements(&m.peer.up).then_some(m.peer.up.as_str());
        let decision = match &history {
            Some(h) => h.decide(&m.peer.version, sql),
            None => Decision::Run,
        };
        entries.push(DatabaseEntry {
            version: m.version,
            module: m.module.clone(),
            source: m.peer.source.clone(),
            peer_version: m.peer.version.clone(),
            in_strata_history: strata_versions.contains(&m.version),
            decision,
        });
    }
    let claimed: BTreeSet<&str> = plan
        .migrations
        .iter()
        .map(|m| m.peer.version.as_str())
        .collect();
    let unknown = history
        .as_ref()
        .map(|h| {
            h.rows
                .keys()
                .filter(|v| !claimed.contains(v.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(DatabaseCheck {
        path: path.to_path_buf(),
        table: plan.tool.history_table(),
        table_found: history.is_some(),
        strata_role,
        role: plan.role.clone(),
        entries,
        unknown,
    })
}
