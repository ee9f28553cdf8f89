//! Instances: the processes serving on a database, and the migration set each was built with.
//!
//! Every serving process registers itself in each database it serves (`strata_instances`):
//! who it is (`host/pid@start`), the newest migration of the role its binary knows and a
//! fingerprint of that set, and a heartbeat written every [`HEARTBEAT`] from a background
//! thread. A clean exit removes the row; an instance is *gone* when its process no longer
//! exists on this host, or — from another host, where that cannot be seen — when its heartbeat
//! is older than [`TTL`].
//!
//! The runner reads the table before applying a contract migration (see [`crate::class`]): while
//! a live instance's binary does not know the contract, the contract and everything after it
//! wait. The newest instance's heartbeat thread applies them once the last older instance is
//! gone. Registration is a write and runs after the startup check, never inside it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use crate::checksum::Checksum;
use crate::class::Class;
use crate::error::{Error, MigrationId, Result};
use crate::lease::{Lease, lease_holder};
use crate::migration::Migration;
use crate::migrator::Migrator;
use crate::options::Mode;
use crate::store::{self, hostname, now};

/// How often a registered process writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A heartbeat older than this marks an instance on another host as gone.
pub const TTL: Duration = Duration::from_secs(15);

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS strata_instances (
    id TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    label TEXT NOT NULL,
    newest_version INTEGER,
    fingerprint TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL
)";

/// A process registered as serving on a database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Instance {
    /// `host/pid@start`: the process, told apart from a later one with a reused pid.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id on `host`.
    pub pid: i64,
    /// What the application calls itself (e.g. `notely 0.1.0`).
    pub label: String,
    /// The newest migration of the database's role its binary knows.
    pub newest_version: Option<i64>,
    /// Digest of the checksums of every migration of the role its binary knows.
    pub fingerprint: String,
    /// When it registered: UTC, RFC 3339.
    pub started_at: String,
    /// Its last heartbeat: UTC, RFC 3339.
    pub heartbeat_at: String,
    /// Seconds since that heartbeat, when read.
    pub heartbeat_age_s: f64,
    /// Whether it is alive, as far as can be known from here.
    pub alive: bool,
    /// Why it counts as gone, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gone: Option<String>,
}

impl Instance {
    /// `host/pid (label, knows up to V)`, for messages and the audit log.
    pub fn describe(&self) -> String {
        format!(
            "{}/{} ({}, knows up to {})",
            self.host,
            self.pid,
            self.label,
            self.newest_version
                .map_or_else(|| "nothing".to_string(), |v| v.to_string())
        )
    }

    /// Whether its binary lacks migration `version` (knows only older ones).
    pub fn lacks(&self, version: i64) -> bool {
        self.newest_version.is_none_or(|v| v < version)
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn table_exists(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'strata_instances'",
        [],
        |r| r.get(0),
    )?)
}

/// Every registered instance of the database behind `conn`, with its liveness judged now.
pub fn list(conn: &Connection) -> Result<Vec<Instance>> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT id, host, pid, label, newest_version, fingerprint, started_at, heartbeat_at, \
         heartbeat_ms FROM strata_instances ORDER BY started_at, id",
    )?;
    let now_ms = unix_ms();
    let rows = stmt.query_map([], |r| {
        let heartbeat_ms: i64 = r.get(8)?;
        Ok(Instance {
            id: r.get(0)?,
            host: r.get(1)?,
            pid: r.get(2)?,
            label: r.get(3)?,
            newest_version: r.get(4)?,
            fingerprint: r.get(5)?,
            started_at: r.get(6)?,
            heartbeat_at: r.get(7)?,
            heartbeat_age_s: (now_ms - heartbeat_ms).max(0) as f64 / 1e3,
            alive: true,
            gone: None,
        })
    })?;
    let mut out: Vec<Instance> = rows.collect::<rusqlite::Result<_>>()?;
    for i in &mut out {
        i.gone = gone_because(i);
        i.alive = i.gone.is_none();
    }
    Ok(out)
}

fn gone_because(i: &Instance) -> Option<String> {
    let lease = Lease {
        holder: i.id.clone(),
        host: i.host.clone(),
        pid: i.pid,
        version: 0,
        acquired_at: String::new(),
    };
    if i.host == hostname() {
        if i.id == lease_holder() {
            return None;
        }
        if lease.is_stale() {
            return Some("its process has ended".to_string());
        }
        return None;
    }
    (i.heartbeat_age_s > TTL.as_secs_f64()).then(|| {
        format!(
            "no heartbeat for {:.0} s (more than {} s)",
            i.heartbeat_age_s,
            TTL.as_secs()
        )
    })
}

/// The live instances, other than this process, whose binaries lack migration `version`.
pub(crate) fn blocking(conn: &Connection, version: i64) -> Result<Vec<Instance>> {
    let me = lease_holder();
    Ok(list(conn)?
        .into_iter()
        .filter(|i| i.alive && i.id != me && i.lacks(version))
        .collect())
}

/// The fingerprint of a binary's migration set for one role: a digest of their checksums.
pub fn fingerprint(known: &[&'static Migration]) -> String {
    let parts: Vec<Checksum> = known.iter().map(|m| m.checksum()).collect();
    let refs: Vec<&[u8]> = parts.iter().map(|c| c.bytes().as_slice()).collect();
    Checksum::of(&refs).to_hex()
}

/// One database a [`Presence`] is registered in.
struct Member {
    migrator: Migrator<'static>,
    path: PathBuf,
    /// The newest audit event when this process registered: a revert after it stops this
    /// process from applying anything there again (the operator rolled back on purpose).
    joined_at_event: i64,
    /// The history (rows, newest version) when applying deferred migrations last failed: not
    /// tried again, nor backed up again, until the history changes.
    failed_at: Option<(i64, Option<i64>)>,
}

/// Finds the databases a process serves now (e.g. shards created while it runs), so that its
/// [`Presence`] registers in them too.
pub type Discover = Arc<dyn Fn() -> Vec<(Migrator<'static>, PathBuf)> + Send + Sync>;

/// This process's registration in the databases it serves, kept alive by a heartbeat thread
/// that also applies deferred migrations once no older instance is left in any database of
/// their role. Dropping it (or [`Presence::leave`]) stops the thread and removes the
/// registrations.
pub struct Presence {
    id: String,
    members: Arc<Mutex<Vec<Member>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("id", &self.id)
            .field("databases", &lock(&self.members).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the heartbeat may apply deferred migrations: never in verify mode, and in checked
/// mode only approved ones.
fn may_apply(mode: Mode) -> bool {
    mode != Mode::Verify
}

impl Presence {
    /// Registers this process as `label` in every `(migrator, database)` — each registration
    /// in its own transaction, which refuses when a contract this binary does not know was
    /// applied meanwhile ([`Error::NewerContract`]) — and starts the heartbeat thread. `mode`
    /// is the startup mode the databases were migrated in: the heartbeat applies deferred
    /// migrations in `auto` mode, approved ones in `checked` mode, none in `verify` mode.
    /// `discover`, when given, names the databases to serve now: new ones are joined at the
    /// next heartbeat.
    ///
    /// # Errors
    ///
    /// The first database that cannot be registered in (the registrations already made are
    /// removed).
    pub fn join(
        label: &str,
        databases: Vec<(Migrator<'static>, PathBuf)>,
        mode: Mode,
        discover: Option<Discover>,
    ) -> Result<Presence> {
        let id = lease_holder();
        let mut members = Vec::new();
        for (migrator, path) in databases {
            let migrator = migrator_for(migrator, mode);
            match register(&migrator, &path, label, &id) {
                Ok(joined_at_event) => members.push(Member {
                    migrator,
                    path,
                    joined_at_event,
                    failed_at: None,
                }),
                Err(e) => {
                    for done in &members {
                        let _ = deregister(&done.path, &id);
                    }
                    return Err(e);
                }
            }
        }
        let members = Arc::new(Mutex::new(members));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let spawned = {
            let (members, stop, id, label) = (
                Arc::clone(&members),
                Arc::clone(&stop),
                id.clone(),
                label.to_string(),
            );
            std::thread::Builder::new()
                .name("strata-heartbeat".into())
                .spawn(move || {
                    heartbeat_loop(&members, &stop, &id, &label, mode, discover.as_ref());
                })
        };
        let thread = match spawned {
            Ok(t) => t,
            Err(e) => {
                for m in lock(&members).iter() {
                    let _ = deregister(&m.path, &id);
                }
                return Err(Error::msg(format!("starting the heartbeat thread: {e}")));
            }
        };
        Ok(Presence {
            id,
            members,
            stop,
            thread: Some(thread),
        })
    }

    /// This process's instance id (`host/pid@start`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops the heartbeat and removes this process's registrations.
    ///
    /// # Errors
    ///
    /// The first database the registration could not be removed from (the others are still
    /// tried); a row left behind counts as gone once the process has ended.
    pub fn leave(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        {
            let (flag, wake) = &*self.stop;
            *lock(flag) = true;
            wake.notify_all();
        }
        let _ = thread.join();
        let mut first = None;
        for m in lock(&self.members).iter() {
            if let Err(e) = deregister(&m.path, &self.id) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("removing this instance's registration: {e}");
        }
    }
}

/// The migrator the heartbeat applies with: approval required in checked mode.
fn migrator_for(migrator: Migrator<'static>, mode: Mode) -> Migrator<'static> {
    if mode == Mode::Checked {
        migrator.require_approval(true)
    } else {
        migrator
    }
}

/// Opens a database that exists (a heartbeat never creates one an operator removed).
fn open_existing(path: &Path) -> Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = store::open_rw(path, Duration::from_secs(10))?;
    Ok(Some(conn))
}

/// Writes this process's row in one transaction, after checking that no contract unknown to
/// this binary is applied (serialised with the runner by SQLite's write lock: a contract
/// either sees this row, or this check sees the contract).
fn register(migrator: &Migrator<'_>, path: &Path, label: &str, id: &str) -> Result<i64> {
    let known = migrator.known()?;
    let conn = store::open_rw(path, migrator.settings().lock_timeout)?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result =
        (|| {
            let state = store::read_state(&conn, path)?;
            if state.role.is_none() {
                return Err(Error::msg(format!(
                    "{} is not migrated yet: migrate it before registering an instance in it",
                    path.display()
                )));
            }
            let knows_up_to = known.iter().map(|m| m.version()).max();
            // A newer binary running a `no_transaction` migration has no history row for it yet.
            if let Some(lease) = &state.lease
                && knows_up_to.is_none_or(|k| lease.version > k)
                && !lease.is_stale()
            {
                return Err(Error::InUse {
                    path: path.to_path_buf(),
                    holder: Some(format!(
                        "{} is running migration {}, which this binary does not know; start \
                         again once it is done",
                        lease.holder, lease.version
                    )),
                });
            }
            if let Some(row) = state.history.iter().find(|a| {
                knows_up_to.is_some_and(|k| a.version > k) && a.class != Some(Class::Expand)
            }) {
                return Err(Error::NewerContract {
                    path: path.to_path_buf(),
                    contract: MigrationId {
                        version: row.version,
                        name: row.name.clone(),
                    },
                    knows_up_to,
                });
            }
            conn.execute_batch(CREATE)?;
            let (host, pid) = (hostname(), i64::from(std::process::id()));
            let ms = unix_ms();
            // Rows of this host's ended processes are removed as they are met.
            let gone: Vec<String> = list(&conn)?
                .into_iter()
                .filter(|i| i.host == host && !i.alive)
                .map(|i| i.id)
                .collect();
            for g in gone {
                conn.execute("DELETE FROM strata_instances WHERE id = ?1", [g])?;
            }
            let at = now();
            conn.execute(
                "INSERT OR REPLACE INTO strata_instances (id, host, pid, label, newest_version, \
             fingerprint, started_at, heartbeat_at, heartbeat_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                params![
                    id,
                    host,
                    pid,
                    label,
                    knows_up_to,
                    fingerprint(&known),
                    at,
                    ms
                ],
            )?;
            let newest_event: i64 =
                conn.query_row("SELECT coalesce(max(id), 0) FROM strata_events", [], |r| {
                    r.get(0)
                })?;
            Ok(newest_event)
        })();
    match result {
        Ok(newest_event) => {
            conn.execute_batch("COMMIT")?;
            Ok(newest_event)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn deregister(path: &Path, id: &str) -> Result<()> {
    let Some(conn) = open_existing(path)? else {
        return Ok(());
    };
    if table_exists(&conn)? {
        conn.execute("DELETE FROM strata_instances WHERE id = ?1", [id])?;
    }
    Ok(())
}

fn heartbeat_loop(
    members: &Mutex<Vec<Member>>,
    stop: &(Mutex<bool>, Condvar),
    id: &str,
    label: &str,
    mode: Mode,
    discover: Option<&Discover>,
) {
    let (flag, wake) = stop;
    loop {
        {
            let stopped = lock(flag);
            let (stopped, _) = wake
                .wait_timeout_while(stopped, HEARTBEAT, |s| !*s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *stopped {
                return;
            }
        }
        if let Some(discover) = discover {
            join_new(members, discover(), id, label, mode);
        }
        let mut all = lock(members);
        // One connection per database and beat: the heartbeat, the blockers, the apply.
        let conns: Vec<Option<Connection>> = all
            .iter()
            .map(|m| {
                refresh(m, id, label).unwrap_or_else(|e| {
                    tracing::warn!(database = %m.path.display(), "instance heartbeat: {e}");
                    None
                })
            })
            .collect();
        if !may_apply(mode) {
            continue;
        }
        // Blockers count role-wide: a database created meanwhile (a new shard) has none of
        // its own yet, while the older instances serve its role from the others.
        let mut blocked: Vec<(String, i64)> = Vec::new();
        for (m, conn) in all.iter().zip(&conns) {
            if let Some(conn) = conn
                && let Ok(list) = deferred(&m.migrator, conn)
            {
                for (contract, blockers) in list {
                    if !blockers.is_empty() {
                        blocked.push((m.migrator.role().to_string(), contract.version()));
                    }
                }
            }
        }
        for (m, conn) in all.iter_mut().zip(conns) {
            if let Some(conn) = conn
                && let Err(e) = apply(m, conn, &blocked)
            {
                tracing::warn!(database = %m.path.display(), "applying deferred migrations: {e}");
            }
        }
    }
}

/// Registers in the databases `found` names that this process has not joined yet.
fn join_new(
    members: &Mutex<Vec<Member>>,
    found: Vec<(Migrator<'static>, PathBuf)>,
    id: &str,
    label: &str,
    mode: Mode,
) {
    for (migrator, path) in found {
        if lock(members).iter().any(|m| m.path == path) {
            continue;
        }
        let migrator = migrator_for(migrator, mode);
        match register(&migrator, &path, label, id) {
            Ok(joined_at_event) => lock(members).push(Member {
                migrator,
                path,
                joined_at_event,
                failed_at: None,
            }),
            Err(e) => tracing::debug!(database = %path.display(), "not joined yet: {e}"),
        }
    }
}

/// Writes instance `id`'s heartbeat; false when it has no row.
///
/// In WAL mode the beat commits without syncing the WAL (`synchronous = NORMAL`; a beat lost to
/// a power cut is only a missed beat): with SQLite's default (`FULL`) its commit synced the
/// whole WAL — every frame the application wrote since the last sync — while holding the write
/// lock, and the application's writers, kept out, slept in SQLite's busy handler (1, 2, 5,
/// 10 ms…): requests stalled 30–60 ms at every beat while a move's backfill wrote. Nor does its
/// commit checkpoint the application's WAL (`wal_autocheckpoint = 0`): that is the
/// application's own writers' or checkpointer's job, and a beat adds one page to it. Both
/// settings are put back as they were after the beat (best effort: the beat has landed).
fn beat(conn: &Connection, id: &str) -> Result<bool> {
    let wal = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?
        .eq_ignore_ascii_case("wal");
    let before: Option<(i64, i64)> = if wal {
        let read = |pragma: &str| conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0));
        Some((read("synchronous")?, read("wal_autocheckpoint")?))
    } else {
        None
    };
    let updated = (|| {
        if before.is_some() {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        conn.execute(
            "UPDATE strata_instances SET heartbeat_at = ?1, heartbeat_ms = ?2 WHERE id = ?3",
            params![now(), unix_ms(), id],
        )
    })();
    if let Some((synchronous, autocheckpoint)) = before {
        let _ = conn.pragma_update(None, "synchronous", synchronous);
        let _ = conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint);
    }
    Ok(updated? > 0)
}

/// One heartbeat in one database (`None` when its file is gone): refresh this process's row,
/// re-registering if it was removed; the connection serves the rest of the beat.
fn refresh(m: &Member, id: &str, label: &str) -> Result<Option<Connection>> {
    let Some(conn) = open_existing(&m.path)? else {
        return Ok(None);
    };
    let updated = table_exists(&conn)? && beat(&conn, id)?;
    if !updated {
        register(&m.migrator, &m.path, label, id)?;
    }
    Ok(Some(conn))
}

/// Unless an operator reverted something since this process joined, or the same history
/// failed before, applies what is pending in `m` up to the first contract still blocked in any
/// database of its role (`blocked`: role and version).
fn apply(m: &mut Member, conn: Connection, blocked: &[(String, i64)]) -> Result<()> {
    let (rows, newest, reverted): (i64, Option<i64>, i64) = conn.query_row(
        "SELECT (SELECT count(*) FROM strata_migrations), \
         (SELECT max(version) FROM strata_migrations), \
         (SELECT count(*) FROM strata_events WHERE kind = 'reverted' AND id > ?1)",
        [m.joined_at_event],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if reverted > 0 || m.failed_at == Some((rows, newest)) {
        return Ok(());
    }
    let known = m.migrator.known()?;
    let applied = history_versions(&conn)?.unwrap_or_default();
    let target = m.migrator.settings().target;
    let pending: Vec<&&Migration> = known
        .iter()
        .filter(|p| !applied.contains(&p.version()) && target.is_none_or(|t| p.version() <= t))
        .collect();
    let Some(first) = pending.first() else {
        return Ok(());
    };
    // Stop before the first contract blocked anywhere in the role.
    let role = m.migrator.role().to_string();
    let stop_at = pending
        .iter()
        .find(|p| blocked.iter().any(|(r, v)| *r == role && *v == p.version()))
        .map(|p| p.version());
    if stop_at == Some(first.version()) {
        return Ok(());
    }
    let upto = match stop_at {
        Some(v) => known.iter().map(|k| k.version()).filter(|k| *k < v).max(),
        None => target,
    };
    drop(conn);
    match m.migrator.clone().target(upto).run(&m.path) {
        Ok(report) => {
            for a in &report.applied {
                tracing::info!(
                    database = %m.path.display(),
                    "applied deferred migration {} {}: no older instance is left",
                    a.version,
                    a.name
                );
            }
            Ok(())
        }
        Err(Error::ApprovalRequired { .. }) => Ok(()),
        Err(e) => {
            // Not again (nor another backup) until the history changes.
            m.failed_at = Some((rows, newest));
            Err(e)
        }
    }
}

/// The applied versions; `None` when the database has no history yet.
fn history_versions(conn: &Connection) -> Result<Option<std::collections::BTreeSet<i64>>> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'strata_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT version FROM strata_migrations")?;
    let versions = stmt.query_map([], |r| r.get(0))?;
    Ok(Some(versions.collect::<rusqlite::Result<_>>()?))
}

/// The pending contract migrations of `migrator`'s role in the database behind `conn`, each
/// with the live instances whose binaries lack it.
pub(crate) fn deferred(
    migrator: &Migrator<'_>,
    conn: &Connection,
) -> Result<Vec<(&'static Migration, Vec<Instance>)>> {
    let known = migrator.known()?;
    let Some(applied) = history_versions(conn)? else {
        return Ok(Vec::new());
    };
    let target = migrator.settings().target;
    let mut out = Vec::new();
    for &p in &known {
        if applied.contains(&p.version()) || target.is_some_and(|t| p.version() > t) {
            continue;
        }
        if crate::class::classify(&known, p).class == Class::Contract {
            out.push((p, blocking(conn, p.version())?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// A beat lands, and leaves its connection syncing and checkpointing as it found them
    /// (`EXTRA`, 3, and 500 pages here, not SQLite's defaults), in WAL mode (where the beat
    /// itself commits with `NORMAL` and no checkpoint) and in rollback mode alike.
    #[test]
    fn a_beat_lands_and_leaves_its_connection_as_it_found_it() {
        let dir = tempfile::tempdir().unwrap();
        for (name, mode) in [("wal.db", "wal"), ("rollback.db", "delete")] {
            let path = dir.path().join(name);
            let setup = Connection::open(&path).unwrap();
            setup
                .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()))
                .unwrap();
            setup.execute_batch(CREATE).unwrap();
            setup
                .execute(
                    "INSERT INTO strata_instances VALUES ('me', 'h', 1, 'l', NULL, 'f', 's', 'then', 0)",
                    [],
                )
                .unwrap();
            let conn = store::open_rw(&path, Duration::from_secs(1)).unwrap();
            conn.execute_batch("PRAGMA synchronous = EXTRA; PRAGMA wal_autocheckpoint = 500")
                .unwrap();
            assert!(beat(&conn, "me").unwrap(), "{mode}");
            assert!(!beat(&conn, "someone else").unwrap(), "{mode}");
            assert_eq!(synchronous(&conn), 3, "{mode}");
            let autocheckpoint: i64 = conn
                .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                .unwrap();
            assert_eq!(autocheckpoint, 500, "{mode}");
            let ms: i64 = setup
                .query_row("SELECT heartbeat_ms FROM strata_instances", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert!(ms > 0, "{mode}");
        }
    }
}
