//! The history (`strata_migrations`: one row per applied migration, written in the
//! transaction that applies the migration) and the audit log (`strata_events`: append-only, who did what
//! when).

use std::time::Duration;

use rusqlite::{Connection, params};

use crate::class::Class;
use crate::error::Result;
use crate::store::{actor, now};

/// A row of the history table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AppliedMigration {
    /// The migration's version, a UTC timestamp `YYYYMMDDHHMMSS`.
    pub version: i64,
    /// The migration function's name.
    pub name: String,
    /// The checksum of its code when it was applied (or last repaired), lowercase hex.
    pub checksum: String,
    /// When it was applied: UTC, RFC 3339 with milliseconds.
    pub applied_at: String,
    /// How long its code ran, in milliseconds.
    pub duration_ms: f64,
    /// Who applied it: `host/pid` (see [`actor`]).
    pub applied_by: String,
    /// Its class when it was applied (`None`: applied before Strata recorded classes). A
    /// binary that does not know it serves beside it only when it is `expand`.
    pub class: Option<Class>,
}

/// A row of the audit log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// Position in the log, increasing (`AUTOINCREMENT`: never reused).
    pub id: i64,
    /// When it happened: UTC, RFC 3339 with milliseconds.
    pub at: String,
    /// What happened: one of the [`event`] kinds.
    pub kind: String,
    /// The version of the migration concerned; `None` for events about the whole database
    /// (a run starting, a refusal, a backup, a restore).
    pub version: Option<i64>,
    /// The name of the migration concerned; `None` with `version`, and empty for
    /// `lease_recovered`, which only knows the version.
    pub name: Option<String>,
    /// Who acted: `host/pid` (see [`actor`]).
    pub actor: String,
    /// Free text, empty when there is nothing to add: the error of `failed` and `refused`,
    /// the backup path of `backed_up`, the checksums of `repaired`, and so on.
    pub detail: String,
}

/// Kinds of audit events.
pub mod event {
    /// A run with pending migrations began.
    pub const RUN_STARTED: &str = "run_started";
    /// A migration was applied (written with it, in its transaction).
    pub const APPLIED: &str = "applied";
    /// A migration failed and was rolled back.
    pub const FAILED: &str = "failed";
    /// The runner refused to migrate (checksum, unknown or out-of-order).
    pub const REFUSED: &str = "refused";
    /// A stale lease of a crashed `no_transaction` migration was taken over.
    pub const LEASE_RECOVERED: &str = "lease_recovered";
    /// A backup was written before migrating (detail: its path).
    pub const BACKED_UP: &str = "backed_up";
    /// An operator approved a pending migration (checked mode).
    pub const APPROVED: &str = "approved";
    /// A migration was reverted by its `down`.
    pub const REVERTED: &str = "reverted";
    /// A contract migration was put off: live instances of older binaries lack it (detail:
    /// which).
    pub const DEFERRED: &str = "deferred";
    /// A contract migration was applied although live instances lacked it
    /// (`--contract-now`; detail: which, and who forced it).
    pub const CONTRACT_FORCED: &str = "contract_forced";
    /// An operator accepted the changed checksum of an applied migration.
    pub const REPAIRED: &str = "repaired";
    /// The database was restored from a backup.
    pub const RESTORED: &str = "restored";
    /// A database created without Strata was adopted by a baseline migration.
    pub const BASELINED: &str = "baselined";
    /// An imported migration was recorded without running: the peer tool it was imported from
    /// had applied it (detail: `adopted from sqlx version ..`).
    pub const ADOPTED: &str = "adopted";
}

/// The history, by version.
pub fn read_history(conn: &Connection) -> Result<Vec<AppliedMigration>> {
    let mut stmt = conn.prepare_cached(if has_class_column(conn)? {
        "SELECT version, name, checksum, applied_at, duration_ms, applied_by, class \
         FROM strata_migrations ORDER BY version"
    } else {
        "SELECT version, name, checksum, applied_at, duration_ms, applied_by, NULL \
         FROM strata_migrations ORDER BY version"
    })?;
    let rows = stmt.query_map([], |r| {
        Ok(AppliedMigration {
            version: r.get(0)?,
            name: r.get(1)?,
            checksum: r.get(2)?,
            applied_at: r.get(3)?,
            duration_ms: r.get(4)?,
            applied_by: r.get(5)?,
            class: r
                .get_ref(6)?
                .as_str_or_null()
                .ok()
                .flatten()
                .and_then(Class::parse),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes a history row (a migration reverted by its `down`).
pub(crate) fn remove_applied(conn: &Connection, version: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM strata_migrations WHERE version = ?1",
        [version],
    )?;
    Ok(())
}

/// The audit log, oldest first.
pub fn read_events(conn: &Connection) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, kind, version, name, actor, detail FROM strata_events ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Event {
            id: r.get(0)?,
            at: r.get(1)?,
            kind: r.get(2)?,
            version: r.get(3)?,
            name: r.get(4)?,
            actor: r.get(5)?,
            detail: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Appends an audit event.
pub(crate) fn record_event(
    conn: &Connection,
    kind: &str,
    migration: Option<(i64, &str)>,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO strata_events (at, kind, version, name, actor, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now(),
        kind,
        migration.map(|m| m.0),
        migration.map(|m| m.1),
        actor(),
        detail
    ])?;
    Ok(())
}

/// Versions approved and not reverted since.
pub(crate) fn approved_versions(
    conn: &Connection,
    known: &[&'static crate::migration::Migration],
) -> Result<std::collections::BTreeSet<i64>> {
    let mut stmt = conn.prepare(
        "SELECT version, detail FROM strata_events e WHERE kind = 'approved' AND id > \
         coalesce((SELECT max(id) FROM strata_events r WHERE r.kind = 'reverted' \
         AND r.version = e.version), 0)",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = std::collections::BTreeSet::new();
    for row in rows {
        let (version, detail) = row?;
        // An approval covers the code it names (`…; checksum HEX; …`): a migration edited
        // after it was approved needs a new approval. Approvals recorded before checksums
        // were named cover the version.
        let approved = match approved_checksum(&detail) {
            None => true,
            Some(hex) => known
                .iter()
                .any(|m| m.version() == version && m.checksum().matches_hex(hex)),
        };
        if approved {
            out.insert(version);
        }
    }
    Ok(out)
}

/// The checksum an `approved` event's detail names, if it names one.
fn approved_checksum(detail: &str) -> Option<&str> {
    detail
        .split("; ")
        .find_map(|part| part.strip_prefix("checksum "))
}

/// Whether the history has its `class` column (databases created before Strata recorded
/// classes get it from the first run that applies something). Looked up in the schema SQLite
/// has loaded, without a statement to parse: every history row written asks.
fn has_class_column(conn: &Connection) -> Result<bool> {
    Ok(conn.column_exists(None, "strata_migrations", "class")?)
}

/// Adds the `class` column to a history created before Strata recorded classes (inside the
/// run's write transaction; older binaries read named columns and are not disturbed).
pub(crate) fn ensure_class_column(conn: &Connection) -> Result<()> {
    if !has_class_column(conn)? {
        conn.execute_batch("ALTER TABLE strata_migrations ADD COLUMN class TEXT")?;
    }
    Ok(())
}

/// Appends a history row.
pub(crate) fn record_applied(
    conn: &Connection,
    version: i64,
    name: &str,
    checksum: &str,
    duration: Duration,
    class: Class,
) -> Result<()> {
    ensure_class_column(conn)?;
    conn.prepare_cached(
        "INSERT INTO strata_migrations (version, name, checksum, applied_at, duration_ms, \
         applied_by, class) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        version,
        name,
        checksum,
        now(),
        duration.as_secs_f64() * 1e3,
        actor(),
        class.label()
    ])?;
    Ok(())
}
