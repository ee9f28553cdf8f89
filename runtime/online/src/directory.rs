//! The placement directory: where each owner's records live, and the moves under way.
//!
//! It lives in the application's control database, in tables the engine owns:
//!
//! - `strata_placement`: one row per owner (an account, say): its `location`, and while it
//!   moves, its `target`, `phase` and `move_id`. `epoch` grows with every change, so a request
//!   can tell whether the placement it acted on is still current.
//! - `strata_moves`: one row per move, with its state, counters and the worker running it.
//! - `strata_move_differences`: what verification found, per owner.
//! - `strata_directory`: settings, such as the location of new owners.
//! - `strata_shard_map`: with hash placement, the location of each logical shard
//!   (see [`crate::shard`]).

use rusqlite::{Connection, OptionalExtension, ToSql, params};
use serde::Serialize;

/// The engine's tables in the control database (idempotent).
pub const DIRECTORY_SQL: &str = "
CREATE TABLE IF NOT EXISTS strata_moves (
    id INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'cancelling', 'done', 'cancelled', 'failed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    owners INTEGER NOT NULL,
    records_total INTEGER NOT NULL,
    records_copied INTEGER NOT NULL DEFAULT 0,
    verified INTEGER NOT NULL DEFAULT 0,
    differences INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    heartbeat INTEGER,
    rate REAL NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS strata_move_plan (
    move_id INTEGER NOT NULL REFERENCES strata_moves (id),
    owner BLOB NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (move_id, owner)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS strata_placement (
    owner BLOB PRIMARY KEY NOT NULL,
    location TEXT NOT NULL,
    target TEXT,
    phase TEXT NOT NULL DEFAULT 'stable'
        CHECK (phase IN ('stable', 'dual', 'backfill', 'verify')),
    move_id INTEGER REFERENCES strata_moves (id),
    epoch INTEGER NOT NULL DEFAULT 0,
    CHECK ((phase = 'stable') = (target IS NULL)),
    CHECK ((phase = 'stable') = (move_id IS NULL))
);
CREATE INDEX IF NOT EXISTS strata_placement_by_move ON strata_placement (move_id, phase);
CREATE INDEX IF NOT EXISTS strata_placement_by_location ON strata_placement (location);
CREATE TABLE IF NOT EXISTS strata_move_differences (
    move_id INTEGER NOT NULL REFERENCES strata_moves (id),
    owner BLOB NOT NULL,
    detail TEXT NOT NULL,
    found_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_directory (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strata_shard_map (
    logical INTEGER PRIMARY KEY CHECK (logical >= 0 AND logical < 4096),
    location TEXT NOT NULL
);
";

/// Where a move stands for one owner. Each phase is compatible with its neighbours: a request
/// that acted on the previous or the next phase still leaves the data correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// All records at `location`.
    Stable,
    /// New writes go to `target`; reads look at both and the newer version wins; an update
    /// moves the record to `target`; a delete removes it from both, older copy first.
    Dual,
    /// As `Dual`, while the worker copies the remaining records and removes them from the
    /// source, batch by batch.
    Backfill,
    /// As `Dual`, while the worker compares counts and content hashes.
    Verify,
}

impl Phase {
    /// The phase's name as `strata_placement.phase` stores it (`stable`, `dual`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Stable => "stable",
            Phase::Dual => "dual",
            Phase::Backfill => "backfill",
            Phase::Verify => "verify",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Phase> {
        Ok(match s {
            "stable" => Phase::Stable,
            "dual" => Phase::Dual,
            "backfill" => Phase::Backfill,
            "verify" => Phase::Verify,
            other => return Err(bad_value(format!("unknown phase `{other}`"))),
        })
    }
}

fn bad_value(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, msg.into())
}

/// Where one owner's records are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Where the records live (while moving: where they come from).
    pub location: String,
    /// While moving: where they go.
    pub target: Option<String>,
    /// Where the move stands for this owner; [`Phase::Stable`] exactly when `target` is
    /// `None`.
    pub phase: Phase,
    /// The move under way (a `strata_moves` id); `None` exactly when `target` is.
    pub move_id: Option<i64>,
    /// Grows with every change of this row.
    pub epoch: i64,
}

impl Placement {
    /// Whether a move is under way.
    pub fn is_moving(&self) -> bool {
        self.target.is_some()
    }
}

/// The look-up of a placement, reading the columns `placement_row` expects in its order (a
/// literal: it runs per request, and its text is the statement cache's key).
const LOOKUP: &str =
    "SELECT location, target, phase, move_id, epoch FROM strata_placement WHERE owner = ?1";

fn placement_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Placement> {
    Ok(Placement {
        location: r.get(0)?,
        target: r.get(1)?,
        phase: Phase::parse(&r.get::<_, String>(2)?)?,
        move_id: r.get(3)?,
        epoch: r.get(4)?,
    })
}

/// Creates the directory tables if they are missing.
pub fn install(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(DIRECTORY_SQL)
}

/// The owner's placement, `None` if the directory does not know it.
pub fn lookup(conn: &Connection, owner: &dyn ToSql) -> rusqlite::Result<Option<Placement>> {
    conn.prepare_cached(LOOKUP)?
        .query_row([owner], placement_row)
        .optional()
}

/// Places a new owner at `location` (stable); false if it already has a placement.
pub fn place(conn: &Connection, owner: &dyn ToSql, location: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO strata_placement (owner, location) VALUES (?1, ?2) \
             ON CONFLICT (owner) DO NOTHING",
        )?
        .execute(params![owner, location])?;
    Ok(n == 1)
}

/// Replaces the owner's placement, bumping its epoch.
pub(crate) fn set(conn: &Connection, owner: &dyn ToSql, p: &Placement) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE strata_placement SET location = ?2, target = ?3, phase = ?4, move_id = ?5, \
         epoch = epoch + 1 WHERE owner = ?1",
    )?
    .execute(params![
        owner,
        p.location,
        p.target,
        p.phase.as_str(),
        p.move_id
    ])?;
    Ok(())
}

/// A directory setting.
pub fn setting(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM strata_directory WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// Sets a directory setting.
pub fn set_setting(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO strata_directory (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// The setting holding the location of new owners.
pub const DEFAULT_LOCATION: &str = "default_location";

/// What a move is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MoveState {
    /// Owners are being moved.
    Running,
    /// Cancelled: owners not yet switched are moving back to their source.
    Cancelling,
    /// Every owner is at its target, verified.
    Done,
    /// Every owner not switched before the cancel is back at its source.
    Cancelled,
    /// Stopped: verification found differences, or an error that needs an operator.
    Failed,
}

impl MoveState {
    /// The state's name as `strata_moves.state` stores it (`running`, `cancelling`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MoveState::Running => "running",
            MoveState::Cancelling => "cancelling",
            MoveState::Done => "done",
            MoveState::Cancelled => "cancelled",
            MoveState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<MoveState> {
        Ok(match s {
            "running" => MoveState::Running,
            "cancelling" => MoveState::Cancelling,
            "done" => MoveState::Done,
            "cancelled" => MoveState::Cancelled,
            "failed" => MoveState::Failed,
            other => return Err(bad_value(format!("unknown move state `{other}`"))),
        })
    }

    /// Whether a worker still has something to do.
    pub fn is_active(self) -> bool {
        matches!(self, MoveState::Running | MoveState::Cancelling)
    }
}

/// A move as the directory records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoveRecord {
    /// The move's id (`strata_moves.id`), as [`crate::Engine::move_status`] and
    /// [`crate::Engine::cancel_move`] take it.
    pub id: i64,
    /// What the move is for, as given when it was started.
    pub description: String,
    /// What the move is doing.
    pub state: MoveState,
    /// When the move was started (Unix ms).
    pub created_at: i64,
    /// When the move's row last changed: progress, a switch, a state change (Unix ms).
    pub updated_at: i64,
    /// When the move ended, done or cancelled (Unix ms); `None` while it is unfinished.
    pub finished_at: Option<i64>,
    /// Owners in the move.
    pub owners: u64,
    /// Records at the sources when the move started.
    pub records_total: u64,
    /// Records the backfill copied so far.
    pub records_copied: u64,
    /// Owners verified and switched.
    pub verified: u64,
    /// Differences verification found.
    pub differences: u64,
    /// The process running the move (`host/pid@start`); `None` when no worker holds it.
    pub worker: Option<String>,
    /// The worker's last sign of life (Unix ms); `None` when no worker holds the move.
    pub heartbeat: Option<i64>,
    /// Records per second the backfill copied lately.
    pub rate: f64,
    /// Why the move stopped or its last worker failed; `None` if nothing went wrong (a cancel
    /// clears it).
    pub error: Option<String>,
}

const MOVE_COLUMNS: &str = "id, description, state, created_at, updated_at, finished_at, owners, \
     records_total, records_copied, verified, differences, worker, heartbeat, rate, error";

fn move_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MoveRecord> {
    let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
    Ok(MoveRecord {
        id: r.get(0)?,
        description: r.get(1)?,
        state: MoveState::parse(&r.get::<_, String>(2)?)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        finished_at: r.get(5)?,
        owners: n(6)?,
        records_total: n(7)?,
        records_copied: n(8)?,
        verified: n(9)?,
        differences: n(10)?,
        worker: r.get(11)?,
        heartbeat: r.get(12)?,
        rate: r.get(13)?,
        error: r.get(14)?,
    })
}

/// Every move, newest first.
pub fn moves(conn: &Connection) -> rusqlite::Result<Vec<MoveRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {MOVE_COLUMNS} FROM strata_moves ORDER BY id DESC"
    ))?;
    stmt.query_map([], move_row)?.collect()
}

/// One move.
pub fn find_move(conn: &Connection, id: i64) -> rusqlite::Result<Option<MoveRecord>> {
    conn.query_row(
        &format!("SELECT {MOVE_COLUMNS} FROM strata_moves WHERE id = ?1"),
        [id],
        move_row,
    )
    .optional()
}

/// Owners of a move per phase.
pub fn phases(conn: &Connection, move_id: i64) -> rusqlite::Result<Vec<(Phase, u64)>> {
    let mut stmt = conn.prepare(
        "SELECT phase, count(*) FROM strata_placement WHERE move_id = ?1 GROUP BY phase",
    )?;
    stmt.query_map([move_id], |r| {
        Ok((
            Phase::parse(&r.get::<_, String>(0)?)?,
            r.get::<_, i64>(1)? as u64,
        ))
    })?
    .collect()
}

/// Differences verification recorded for a move: `(owner, detail)` with the owner as text.
pub fn differences(conn: &Connection, move_id: i64) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT CASE typeof(owner) WHEN 'blob' THEN lower(hex(owner)) ELSE CAST(owner AS TEXT) END, \
         detail FROM strata_move_differences WHERE move_id = ?1 ORDER BY rowid",
    )?;
    stmt.query_map([move_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
