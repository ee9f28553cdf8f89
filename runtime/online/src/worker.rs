//! Moves: planning them, the worker that drives owners through the phases, cancelling, and
//! progress.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::directory::{self, MoveRecord, MoveState, Phase, Placement, now_ms};
use crate::pace::{
    Controller, LONG_WINDOW, PaceState, Pacer, Reading, Signal, WINDOW, next_due, paced_rest,
};

/// How far back the baseline looks: the foreground before the worker started copying.
const BASELINE_WINDOW: Duration = Duration::from_secs(5);

/// The directory key a worker publishes its controller's state under.
fn pace_key(move_id: i64) -> String {
    format!("pace.{move_id}")
}
use crate::engine::{Commit, Engine, Item, Location, MoveError, Result, sqlite};
use crate::ledger::{Delta, HASH_MODULUS, confirmed, item_hash};

/// How the backfill shares the databases with foreground traffic.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Records copied per batch (one short write lock on both databases per batch).
    pub batch: usize,
    /// At most this many records per second, if set.
    pub max_rate: Option<f64>,
    /// Rest after every batch, leaving the write locks to foreground requests, when the pace is
    /// fixed (no `latency_budget`). Under a budget the rate sets the rests, and this one comes
    /// once ten times as long has passed without a rest as long: a chance at the locks for
    /// writers of other processes, which a batch cannot see waiting (a `notely serve` beside
    /// the worker's).
    /// (Under Notely's users a 1 ms rest after every batch of about 2 ms held the paced
    /// backfill to 15.1k notes/s, median of 5 interleaved runs, against 16.9k without, at the
    /// same latency.)
    pub pause: Duration,
    /// A worker silent for this long is presumed gone and its move is taken over.
    pub lease_timeout: Duration,
    /// Keep the foreground p99 within this many times its baseline (see [`crate::pace`]);
    /// `None`: copy at the fixed pace above, whatever the foreground sees.
    pub latency_budget: Option<f64>,
    /// With a budget: the rate (records/s) the backfill never goes below, so that every move
    /// finishes.
    pub min_rate: f64,
    /// The application's own latency (e.g. its API p99), combined with the engine's.
    pub signal: Option<Signal>,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            batch: 100,
            max_rate: None,
            pause: Duration::from_millis(1),
            lease_timeout: Duration::from_secs(10),
            latency_budget: Some(1.5),
            min_rate: 500.0,
            signal: None,
        }
    }
}

/// A move's progress, as the CLI, the TUI and the logs show it.
#[derive(Debug, Clone, Serialize)]
pub struct MoveStatus {
    /// The move as the directory records it (its fields appear at the top level in JSON).
    #[serde(flatten)]
    pub record: MoveRecord,
    /// Owners of the move per phase (`planned` for those not started yet).
    pub phases: BTreeMap<String, u64>,
    /// Records still to copy (an estimate: the sources' count at the start, less the copies).
    pub remaining: u64,
    /// Seconds to go at the current rate.
    pub eta_s: Option<f64>,
    /// What verification found: `(owner, detail)`.
    pub found: Vec<(String, String)>,
    /// Per target location: owners the move sends there, and how many are there already.
    pub targets: BTreeMap<String, TargetProgress>,
    /// While a worker paces the backfill by latency: its controller (rate, budget, measured
    /// p99 against the baseline, share of time throttled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<PaceState>,
}

/// A move's progress towards one target location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TargetProgress {
    /// Owners the move sends to this location.
    pub owners: u64,
    /// Of those, owners already verified and switched to it.
    pub switched: u64,
}

/// What one call of [`Engine::work`] did.
#[derive(Debug, Clone, Serialize)]
pub struct WorkReport {
    /// The move the call worked on.
    pub move_id: i64,
    /// The move's state when the call returned (still active if `stop` was set).
    pub state: MoveState,
    /// Records the backfill copied during this call.
    pub records_copied: u64,
    /// Owners verified and switched to their target during this call.
    pub owners_switched: u64,
    /// Wall-clock seconds the call worked on the move.
    pub duration_s: f64,
}

/// Records a backfill batch copies at a time under the locks (one statement per store for them
/// all), and between which it lets a waiting foreground write in (see `backfill_batch`).
const YIELD_AFTER: usize = 8;

/// The backfill scans this many batches' ids ahead at a time (at most [`SCAN_MAX`] ids, or one
/// batch if that is more): each scan reads the owner's index at the source, and with batches
/// cut short to let foreground writes in, a scan per batch cost the mover a fifth of its time.
const SCAN_AHEAD: usize = 8;
/// See [`SCAN_AHEAD`].
const SCAN_MAX: usize = 4096;

/// Ids the backfill scanned at one owner's source, for its next batches (see
/// `backfill_batch`). They are candidates: each is read again under the locks, and one gone
/// meanwhile is skipped. The owner goes to verification only when a fresh scan finds nothing
/// left, never on the strength of a stored one.
pub(crate) struct Scanned<R: Item> {
    owner: R::Owner,
    /// The placement's epoch at the scan: any change of placement since drops the scan.
    epoch: i64,
    ids: VecDeque<R::Id>,
}

/// Moves whose scans an engine keeps at most (one owner's each); past that, it forgets the
/// oldest move's.
const SCANS_KEPT: usize = 16;

/// What one step of a move did.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// An owner entered the move (dual phase).
    Began,
    /// An owner changed phase (or turned back, on a cancel).
    Phase,
    /// The backfill took `taken` records from a source and copied `copied` of them; `more`:
    /// the source may hold more of the owner's records (it took some), else (a fresh scan
    /// found none left) the owner goes on to verification.
    Batch {
        taken: usize,
        copied: u64,
        more: bool,
    },
    /// An owner was verified and switched to its final location.
    Verified,
    /// Verification found differences; the move failed.
    Differs,
    /// The move is over, in this state.
    Finished(MoveState),
    /// The move's state changed (to this) under the step.
    Changed(MoveState),
}

struct Run<'a> {
    move_id: i64,
    pace: &'a Pace,
    stop: &'a AtomicBool,
    holder: String,
    state: MoveState,
    started: Instant,
    copied: u64,
    switched: u64,
    /// Records and time since the rate was last published.
    window: (u64, Instant),
    /// Records copied since progress was last written to the directory.
    unpublished: u64,
    last_beat: Instant,
    /// With a latency budget: the controller and its schedule.
    pacer: Option<Pacer>,
}

fn ledger_row(
    conn: &Connection,
    move_id: i64,
    owner: &dyn rusqlite::ToSql,
) -> rusqlite::Result<(i64, i64)> {
    conn.prepare_cached(
        "SELECT records, hash FROM strata_move_ledger WHERE move_id = ?1 AND owner = ?2",
    )?
    .query_row(params![move_id, owner], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
    .map(|r| r.unwrap_or((0, 0)))
}

/// What verification finds: records left at the source, and a target whose count or content
/// hash (`tallied`) differs from its ledger.
fn differences<R: Item>(
    from: &Location<R>,
    left: u64,
    to: &Location<R>,
    (records, hash): (i64, i64),
    (want_records, want_hash): (i64, i64),
) -> Vec<String> {
    let mut found = Vec::new();
    if left > 0 {
        found.push(format!(
            "{left} record(s) left at {} after the backfill",
            from.name
        ));
    }
    if records != want_records {
        found.push(format!(
            "{} holds {records} record(s); the move wrote {want_records}",
            to.name
        ));
    } else if hash != want_hash {
        found.push(format!(
            "{} holds {records} record(s) as the move wrote, but their content differs \
             (hash {hash:x}, expected {want_hash:x})",
            to.name
        ));
    }
    found
}

/// Sets the ledger row of `(move_id, owner)` at `loc` to what `loc` holds for the owner now.
fn start_ledger<R: Item>(
    loc: &Location<R>,
    conn: &Connection,
    move_id: i64,
    owner: &R::Owner,
) -> Result<()> {
    let (records, hash) = tally(loc, conn, owner)?;
    conn.prepare_cached(
        "INSERT INTO strata_move_ledger (move_id, owner, records, hash, copied) \
         VALUES (?1, ?2, ?3, ?4, 0) ON CONFLICT (move_id, owner) DO UPDATE SET \
         records = excluded.records, hash = excluded.hash",
    )
    .and_then(|mut s| s.execute(params![move_id, owner, records, hash]))
    .map_err(|e| sqlite(loc, e))?;
    Ok(())
}

/// Count and content hash of the owner's records at `loc`, read back through its layout.
fn tally<R: Item>(loc: &Location<R>, conn: &Connection, owner: &R::Owner) -> Result<(i64, i64)> {
    let (mut records, mut hash) = (0i64, 0i64);
    let mut scratch = Vec::new();
    let mut after: Option<R::Id> = None;
    loop {
        let page = loc
            .layout
            .batch(conn, owner, after.as_ref(), 1000)
            .map_err(|e| sqlite(loc, e))?;
        for item in &page {
            records += 1;
            hash = (hash + item_hash(item, &mut scratch)) % HASH_MODULUS;
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = Some(last.id().clone()),
            _ => return Ok((records, hash)),
        }
    }
}

impl<R: Item> Engine<R> {
    fn control_write<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.control()
            .with_writer(|c| {
                c.execute_batch("BEGIN IMMEDIATE")?;
                let out = f(c).and_then(|v| c.execute_batch("COMMIT").map(|_| v));
                if out.is_err() {
                    let _ = c.execute_batch("ROLLBACK");
                }
                out
            })
            .map_err(|e| self.control_err(e))
    }

    fn control_read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.control()
            .with_reader(f)
            .map_err(|e| self.control_err(e))
    }

    /// Plans a move of each owner to its target and returns it; a worker ([`Engine::work`])
    /// carries it out. Owners already at their target are left out; an owner that is moving or
    /// planned in another unfinished move is refused.
    pub fn start_move(
        &self,
        description: &str,
        assignments: &[(R::Owner, String)],
    ) -> Result<MoveRecord> {
        let mut plan = Vec::new();
        let mut records_total = 0u64;
        for (owner, target) in assignments {
            let to = self.location(target)?;
            let p = self.placement(owner)?;
            if p.is_moving() {
                return Err(MoveError::Invalid(format!(
                    "{owner:?} is already moving (move {}); wait for it or cancel it",
                    p.move_id.unwrap_or_default()
                )));
            }
            if p.location == to.name {
                continue;
            }
            let from = self.location(&p.location)?;
            records_total += from
                .pool
                .with_reader(|c| from.layout.count(c, owner))
                .map_err(|e| sqlite(&from, e))?;
            plan.push((owner, p.location, target));
        }
        if plan.is_empty() {
            return Err(MoveError::Invalid(
                "nothing to move: every owner named is already at its target".into(),
            ));
        }
        let id = self.control_write(|c| {
            let mut busy = c.prepare_cached(
                "SELECT m.id FROM strata_move_plan p JOIN strata_moves m ON m.id = p.move_id \
                 WHERE p.owner = ?1 AND m.state IN ('running', 'cancelling', 'failed')",
            )?;
            for (owner, _, _) in &plan {
                if let Some(other) = busy.query_row([owner], |r| r.get::<_, i64>(0)).optional()? {
                    // Refused before anything is written: the (empty) transaction commits.
                    return Ok(Err(format!(
                        "{owner:?} is planned in unfinished move {other}; wait for it or \
                         cancel it"
                    )));
                }
            }
            let now = now_ms();
            c.execute(
                "INSERT INTO strata_moves (description, state, created_at, updated_at, owners, \
                 records_total) VALUES (?1, 'running', ?2, ?2, ?3, ?4)",
                params![description, now, plan.len() as i64, records_total as i64],
            )?;
            let id = c.last_insert_rowid();
            let mut add = c.prepare_cached(
                "INSERT INTO strata_move_plan (move_id, owner, source, target) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (owner, source, target) in &plan {
                add.execute(params![id, owner, source, target])?;
            }
            Ok(Ok(id))
        })?;
        let id = id.map_err(MoveError::Invalid)?;
        self.control_read(|c| directory::find_move(c, id))?
            .ok_or(MoveError::NoSuchMove(id))
    }

    /// Cancels a running (or failed) move: owners not yet switched move back to their source,
    /// losing nothing; owners already switched stay at their target.
    pub fn cancel_move(&self, id: i64) -> Result<MoveRecord> {
        let record = self
            .control_read(|c| directory::find_move(c, id))?
            .ok_or(MoveError::NoSuchMove(id))?;
        match record.state {
            MoveState::Running | MoveState::Failed => {}
            MoveState::Cancelling => return Ok(record),
            state => {
                return Err(MoveError::Invalid(format!(
                    "move {id} is {}; only a running or failed move can be cancelled",
                    state.as_str()
                )));
            }
        }
        self.control_write(|c| {
            c.execute(
                "UPDATE strata_moves SET state = 'cancelling', updated_at = ?2, error = NULL \
                 WHERE id = ?1",
                params![id, now_ms()],
            )
        })?;
        self.control_read(|c| directory::find_move(c, id))?
            .ok_or(MoveError::NoSuchMove(id))
    }

    /// Every move's progress, newest first.
    pub fn moves(&self) -> Result<Vec<MoveStatus>> {
        let records = self.control_read(directory::moves)?;
        records.into_iter().map(|r| self.status_of(r)).collect()
    }

    /// One move's progress.
    pub fn move_status(&self, id: i64) -> Result<MoveStatus> {
        let record = self
            .control_read(|c| directory::find_move(c, id))?
            .ok_or(MoveError::NoSuchMove(id))?;
        self.status_of(record)
    }

    fn status_of(&self, record: MoveRecord) -> Result<MoveStatus> {
        let id = record.id;
        let (phases, planned, found, targets, pace) = self.control_read(|c| {
            let phases = directory::phases(c, id)?;
            let planned: i64 = c.query_row(
                "SELECT count(*) FROM strata_move_plan p JOIN strata_placement s \
                 ON s.owner = p.owner WHERE p.move_id = ?1 AND s.move_id IS NULL \
                 AND s.location = p.source",
                [id],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT p.target, count(*), coalesce(sum(s.location = p.target \
                 AND s.move_id IS NULL), 0) FROM strata_move_plan p JOIN strata_placement s \
                 ON s.owner = p.owner WHERE p.move_id = ?1 GROUP BY p.target",
            )?;
            let targets = stmt
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        TargetProgress {
                            owners: r.get::<_, i64>(1)? as u64,
                            switched: r.get::<_, i64>(2)? as u64,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
            let pace: Option<String> = c
                .query_row(
                    "SELECT value FROM strata_directory WHERE key = ?1",
                    [pace_key(id)],
                    |r| r.get(0),
                )
                .optional()?;
            Ok((
                phases,
                planned,
                directory::differences(c, id)?,
                targets,
                pace,
            ))
        })?;
        let pace = pace
            .filter(|_| record.state.is_active())
            .and_then(|json| serde_json::from_str::<PaceState>(&json).ok());
        let mut by_phase: BTreeMap<String, u64> = phases
            .into_iter()
            .map(|(p, n)| (p.as_str().to_string(), n))
            .collect();
        if record.state.is_active() && planned > 0 {
            by_phase.insert("planned".into(), planned as u64);
        }
        let remaining = if record.state.is_active() {
            record.records_total.saturating_sub(record.records_copied)
        } else {
            0
        };
        let eta_s = (record.rate > 0.0 && remaining > 0).then(|| remaining as f64 / record.rate);
        Ok(MoveStatus {
            record,
            phases: by_phase,
            remaining,
            eta_s,
            found,
            targets,
            pace,
        })
    }

    /// Takes on one unfinished move whose worker is free or gone, and drives it until it is
    /// done, cancelled or failed, or until `stop` is set. Returns `None` when no move needs a
    /// worker. Safe to call from many processes at once: one wins each move; a worker silent
    /// for [`Pace::lease_timeout`], or whose process is gone, is taken over.
    pub fn work(
        &self,
        pace: &Pace,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(&MoveStatus),
    ) -> Result<Option<WorkReport>> {
        let holder = strata::store::lease_holder();
        let Some((move_id, state)) = self.claim(&holder, pace)? else {
            return Ok(None);
        };
        let mut run = Run {
            move_id,
            pace,
            stop,
            holder,
            state,
            started: Instant::now(),
            copied: 0,
            switched: 0,
            window: (0, Instant::now()),
            unpublished: 0,
            last_beat: Instant::now(),
            pacer: pace.latency_budget.map(|budget| {
                // The baseline: the foreground before this worker copies anything.
                let mut c = Controller::new(budget, pace.min_rate, pace.max_rate);
                c.set_baseline(
                    self.latencies().p99(BASELINE_WINDOW).map(|(p, _)| p),
                    pace.signal.as_ref().and_then(|s| s.read(BASELINE_WINDOW)),
                );
                Pacer {
                    controller: c,
                    decided: Instant::now(),
                    since: 0,
                    due: Instant::now(),
                    rested: Instant::now(),
                }
            }),
        };
        let outcome = self.drive(&mut run, progress);
        self.scanned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&run.move_id);
        let _ = self.control_write(|c| {
            c.execute(
                "DELETE FROM strata_directory WHERE key = ?1",
                [pace_key(move_id)],
            )
        });
        // Leave the move for the next worker at once, whatever happened, with the copies
        // counted from the checkpoints.
        let copied = self.ledger_copied(move_id);
        let _ = self.control_write(|c| {
            c.execute(
                "UPDATE strata_moves SET worker = NULL, heartbeat = NULL, \
                 records_copied = coalesce(?3, records_copied) WHERE id = ?1 AND worker = ?2",
                params![move_id, run.holder, copied.ok().map(|n| n as i64)],
            )
        });
        if let Err(e) = &outcome {
            let _ = self.control_write(|c| {
                c.execute(
                    "UPDATE strata_moves SET error = ?2, updated_at = ?3 WHERE id = ?1",
                    params![move_id, e.to_string(), now_ms()],
                )
            });
        }
        outcome?;
        let status = self.move_status(move_id)?;
        progress(&status);
        Ok(Some(WorkReport {
            move_id,
            state: status.record.state,
            records_copied: run.copied,
            owners_switched: run.switched,
            duration_s: run.started.elapsed().as_secs_f64(),
        }))
    }

    /// Claims the oldest unfinished move nobody is working on.
    fn claim(&self, holder: &str, pace: &Pace) -> Result<Option<(i64, MoveState)>> {
        let active: Vec<MoveRecord> = self.control_read(|c| {
            Ok(directory::moves(c)?
                .into_iter()
                .filter(|m| m.state.is_active())
                .collect())
        })?;
        let now = now_ms();
        let stale_before = now - pace.lease_timeout.as_millis() as i64;
        for m in active.into_iter().rev() {
            let free = match (&m.worker, m.heartbeat) {
                (None, _) => true,
                (Some(w), _) if w == holder => true,
                (Some(w), beat) => {
                    beat.is_none_or(|b| b < stale_before) || strata::store::holder_is_gone(w)
                }
            };
            if !free {
                continue;
            }
            let won = self.control_write(|c| {
                c.execute(
                    "UPDATE strata_moves SET worker = ?2, heartbeat = ?3 WHERE id = ?1 \
                     AND worker IS ?4",
                    params![m.id, holder, now, m.worker],
                )
            })?;
            if won == 1 {
                // Copies counted before a crash live on in the targets' ledgers.
                let copied = self.ledger_copied(m.id)?;
                self.control_write(|c| {
                    c.execute(
                        "UPDATE strata_moves SET records_copied = ?2 WHERE id = ?1",
                        params![m.id, copied as i64],
                    )
                })?;
                return Ok(Some((m.id, m.state)));
            }
        }
        Ok(None)
    }

    fn ledger_copied(&self, move_id: i64) -> Result<u64> {
        let mut total = 0u64;
        for loc in self.locations() {
            let n: i64 = loc
                .pool
                .with_reader(|c| {
                    c.query_row(
                        "SELECT coalesce(sum(copied), 0) FROM strata_move_ledger \
                         WHERE move_id = ?1",
                        [move_id],
                        |r| r.get(0),
                    )
                })
                .map_err(|e| sqlite(&loc, e))?;
            total += n as u64;
        }
        Ok(total)
    }

    /// Records the worker's progress (the heartbeat and rate at most four times a second,
    /// or when `force`d). Returns whether to keep going (false if the move is no longer ours,
    /// its state changed, or the worker is asked to stop) and whether it published.
    fn beat(&self, run: &mut Run<'_>, copied: u64, force: bool) -> Result<(bool, bool)> {
        run.copied += copied;
        run.window.0 += copied;
        run.unpublished += copied;
        let elapsed = run.window.1.elapsed();
        if !force && run.last_beat.elapsed() < Duration::from_millis(250) {
            return Ok((!run.stop.load(Ordering::Relaxed), false));
        }
        let copied = std::mem::take(&mut run.unpublished);
        let rate = if elapsed.as_secs_f64() > 0.0 {
            run.window.0 as f64 / elapsed.as_secs_f64()
        } else {
            0.0
        };
        if elapsed > Duration::from_secs(2) {
            run.window = (0, Instant::now());
        }
        run.last_beat = Instant::now();
        let paced = run.pacer.as_ref().map(|p| {
            let c = &p.controller;
            serde_json::to_string(&c.state(c.batch(run.pace.batch))).unwrap_or_default()
        });
        let state = self.control_write(|c| {
            let n = c.execute(
                "UPDATE strata_moves SET records_copied = records_copied + ?2, heartbeat = ?3, \
                 updated_at = ?3, rate = ?4 WHERE id = ?1 AND worker = ?5",
                params![run.move_id, copied as i64, now_ms(), rate, run.holder],
            )?;
            if n == 0 {
                return Ok(None);
            }
            if let Some(json) = &paced {
                c.execute(
                    "INSERT INTO strata_directory (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![pace_key(run.move_id), json],
                )?;
            }
            directory::find_move(c, run.move_id).map(|m| m.map(|m| m.state))
        })?;
        Ok((
            state == Some(run.state) && !run.stop.load(Ordering::Relaxed),
            true,
        ))
    }

    fn drive(&self, run: &mut Run<'_>, progress: &mut dyn FnMut(&MoveStatus)) -> Result<()> {
        let mut cursor = 0;
        loop {
            if run.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let batch = match &run.pacer {
                Some(p) => p.controller.batch(run.pace.batch),
                None => run.pace.batch,
            };
            let step = self.step_from(run.move_id, run.state, batch, &mut cursor)?;
            let (copied, force) = match step {
                Step::Batch {
                    taken,
                    copied,
                    more,
                } => {
                    self.rest(run, taken);
                    if taken == 0 && more {
                        // The owner's placement changed under the batch: look again after a
                        // pause rather than at once.
                        std::thread::sleep(run.pace.pause.max(Duration::from_millis(1)));
                    }
                    (copied, !more)
                }
                Step::Verified => {
                    run.switched += 1;
                    (0, false)
                }
                Step::Began | Step::Phase => (0, false),
                Step::Differs => {
                    let _ = self.beat(run, 0, true);
                    progress(&self.move_status(run.move_id)?);
                    return Ok(());
                }
                Step::Finished(state) => {
                    run.state = state;
                    return Ok(());
                }
                Step::Changed(state) => {
                    run.state = state;
                    cursor = 0;
                    continue;
                }
            };
            let (keep_going, published) = self.beat(run, copied, force)?;
            if published {
                progress(&self.move_status(run.move_id)?);
            }
            if !keep_going {
                // Asked to stop, lost the move, or its state changed (a cancel): look again.
                let record = self
                    .control_read(|c| directory::find_move(c, run.move_id))?
                    .ok_or(MoveError::NoSuchMove(run.move_id))?;
                if run.stop.load(Ordering::Relaxed)
                    || record.worker.as_deref() != Some(run.holder.as_str())
                    || !record.state.is_active()
                {
                    return Ok(());
                }
                run.state = record.state;
                cursor = 0;
            }
        }
    }

    /// Does the next single action of move `move_id`: start an owner, change its phase, copy
    /// one batch, verify it, or finish the move. Deterministic tests drive moves with it; the
    /// worker ([`Engine::work`]) is a loop around it.
    #[doc(hidden)]
    pub fn step_move(&self, move_id: i64, batch: usize) -> Result<Step> {
        let state = self
            .control_read(|c| directory::find_move(c, move_id))?
            .ok_or(MoveError::NoSuchMove(move_id))?
            .state;
        if !state.is_active() {
            return Ok(Step::Finished(state));
        }
        self.step_from(move_id, state, batch, &mut 0)
    }

    /// [`Engine::step_move`] for a worker that knows the move's state and that the owners
    /// before `cursor` in the plan are finished.
    fn step_from(
        &self,
        move_id: i64,
        state: MoveState,
        batch: usize,
        cursor: &mut usize,
    ) -> Result<Step> {
        let plan: Vec<(R::Owner, String, String)> = self.control_read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT owner, source, target FROM strata_move_plan WHERE move_id = ?1 \
                 ORDER BY owner LIMIT -1 OFFSET ?2",
            )?;
            stmt.query_map(params![move_id, *cursor as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })?;
        let cancelling = state == MoveState::Cancelling;
        for (owner, source, target) in &plan {
            let p = self.placement(owner)?;
            if p.move_id != Some(move_id) {
                if !cancelling && p.move_id.is_none() && p.location == *source {
                    self.begin_owner(move_id, owner, source, target)?;
                    return Ok(Step::Began);
                }
                // Finished, never started (cancelled), or taken elsewhere meanwhile.
                *cursor += 1;
                continue;
            }
            if cancelling && p.target.as_deref() == Some(target.as_str()) {
                self.reverse_owner(move_id, owner, source, target)?;
                return Ok(Step::Phase);
            }
            return Ok(match p.phase {
                Phase::Stable => unreachable!("a stable placement has no move"),
                Phase::Dual => {
                    self.set_phase(owner, &p, Phase::Backfill)?;
                    Step::Phase
                }
                Phase::Backfill => {
                    let (taken, copied, more) = match self.backfill_batch(owner, move_id, batch) {
                        Ok(done) => done,
                        Err(
                            conflict
                            @ (MoveError::Conflict { .. } | MoveError::Inconsistent { .. }),
                        ) => {
                            let detail = format!(
                                "{conflict}; the record stays at {}, readable and writable, \
                                 and nothing of its batch was removed there",
                                p.location
                            );
                            self.fail_move(move_id, state, owner, &[detail])?;
                            return Ok(Step::Differs);
                        }
                        Err(e) => return Err(e),
                    };
                    if !more {
                        self.set_phase(owner, &p, Phase::Verify)?;
                    }
                    Step::Batch {
                        taken,
                        copied,
                        more,
                    }
                }
                Phase::Verify => {
                    if self.verify_owner(owner, move_id, state)? {
                        Step::Verified
                    } else {
                        Step::Differs
                    }
                }
            });
        }
        let end = if cancelling {
            MoveState::Cancelled
        } else {
            MoveState::Done
        };
        let changed = self.control_write(|c| {
            let still: i64 = c.query_row(
                "SELECT count(*) FROM strata_placement WHERE move_id = ?1",
                [move_id],
                |r| r.get(0),
            )?;
            if still > 0 {
                return Ok(0);
            }
            c.execute(
                "UPDATE strata_moves SET state = ?2, finished_at = ?3, updated_at = ?3, \
                 rate = 0 WHERE id = ?1 AND state = ?4",
                params![move_id, end.as_str(), now_ms(), state.as_str()],
            )
        })?;
        if changed == 1 {
            return Ok(Step::Finished(end));
        }
        // The state changed under us (a cancel right at the end), or an owner is moving
        // again: look at the move afresh.
        let now = self
            .control_read(|c| directory::find_move(c, move_id))?
            .ok_or(MoveError::NoSuchMove(move_id))?
            .state;
        Ok(if now.is_active() {
            Step::Changed(now)
        } else {
            Step::Finished(now)
        })
    }

    /// Stable at `source` → dual towards `target`, with the target's ledger started from
    /// what it already holds for the owner (both databases locked).
    fn begin_owner(
        &self,
        move_id: i64,
        owner: &R::Owner,
        source: &str,
        target: &str,
    ) -> Result<()> {
        self.transition(owner, Some(target), |h| {
            if h.placement.is_moving() || h.placement.location != source {
                return Ok(None);
            }
            if let Some((to, tc)) = h.to {
                start_ledger(to, tc, move_id, owner)?;
            }
            Ok(Some(Placement {
                location: source.to_string(),
                target: Some(target.to_string()),
                phase: Phase::Dual,
                move_id: Some(move_id),
                epoch: h.placement.epoch,
            }))
        })?;
        Ok(())
    }

    /// A forward move of one owner turned around: records go back from `target` to `source`,
    /// whose ledger starts from what it still holds.
    fn reverse_owner(
        &self,
        move_id: i64,
        owner: &R::Owner,
        source: &str,
        target: &str,
    ) -> Result<()> {
        self.transition(owner, None, |h| {
            if h.placement.move_id != Some(move_id) || h.placement.target.as_deref() != Some(target)
            {
                return Ok(None);
            }
            let (back, bc) = h.from;
            start_ledger(back, bc, move_id, owner)?;
            Ok(Some(Placement {
                location: target.to_string(),
                target: Some(source.to_string()),
                phase: Phase::Dual,
                move_id: Some(move_id),
                epoch: h.placement.epoch,
            }))
        })?;
        Ok(())
    }

    /// Sleeps as the pace asks after a batch of `taken` records (none after a step that took
    /// none): under a latency budget, until the batch is due at the controller's rate (see
    /// [`Pacer::due`]; the controller revises the rate every quarter second, every twentieth
    /// during slow start), and a pause now and then at full speed ([`paced_rest`]); otherwise
    /// at least the pause, and within `max_rate` since the start.
    fn rest(&self, run: &mut Run<'_>, taken: usize) {
        let pause = run.pace.pause;
        if let Some(Pacer {
            controller: c,
            decided,
            since,
            due,
            rested,
        }) = &mut run.pacer
        {
            *since += taken as u64;
            let dt = decided.elapsed();
            if dt >= c.interval() {
                let achieved = *since as f64 / dt.as_secs_f64();
                let signal = run.pace.signal.as_ref();
                let last = Reading::take(self.latencies(), signal, WINDOW);
                // The move so far, but never less than the baseline's window: early on, the
                // foreground from before the move fills it out, so that one slow second at
                // the start is one of five rather than the whole window.
                let so_far = run.started.elapsed().clamp(BASELINE_WINDOW, LONG_WINDOW);
                let so_far = Reading::take(self.latencies(), signal, so_far);
                c.update(dt, last, so_far, achieved);
                tracing::debug!(
                    move_id = run.move_id,
                    achieved,
                    ?last,
                    ?so_far,
                    rate = c.rate(),
                    "backfill pace"
                );
                *decided = Instant::now();
                *since = 0;
            }
            // The rate alone sets the rest: the controller answers for the foreground's
            // latency, and a batch lets waiting writes in as it goes.
            let now = Instant::now();
            *due = next_due(*due, now, taken, c.rate());
            let wait = paced_rest(
                due.saturating_duration_since(now),
                pause,
                now.saturating_duration_since(*rested),
            );
            if taken > 0 && !wait.is_zero() {
                std::thread::sleep(wait);
                if wait >= pause {
                    *rested = Instant::now();
                }
            }
            return;
        }
        let wait = if let Some(max) = run.pace.max_rate.filter(|m| *m > 0.0) {
            let due = Duration::from_secs_f64(run.copied as f64 / max);
            run.pace
                .pause
                .max(due.saturating_sub(run.started.elapsed()))
        } else {
            run.pace.pause
        };
        if taken > 0 && !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    fn set_phase(&self, owner: &R::Owner, seen: &Placement, phase: Phase) -> Result<()> {
        self.transition(owner, None, |h| {
            if h.placement.move_id != seen.move_id || h.placement.phase != seen.phase {
                return Ok(None);
            }
            Ok(Some(Placement {
                phase,
                ..h.placement.clone()
            }))
        })?;
        Ok(())
    }

    /// Copies up to `limit` of the owner's records from the source to the target (unless the
    /// target holds a version as new or newer), records them in the target's ledger in the
    /// same transaction, then removes them from the source. Returns how many of the scan's ids
    /// the batch took (found at the source or not), how many records it copied, and whether
    /// the source may hold more (false only when a fresh scan finds nothing left).
    ///
    /// The batch holds the write locks of both databases, so every foreground write to either
    /// waits for it: it copies [`YIELD_AFTER`] records at a time, and ends after the ones in
    /// hand as soon as a write of this process queues for either lock (the rest of the batch
    /// is the next batch's). A foreground write thus waits for a few records' copies and the
    /// commits, not for a batch; under a steady stream of writes the batch stays big enough to
    /// keep the backfill going (at one record a batch it would crawl).
    fn backfill_batch(
        &self,
        owner: &R::Owner,
        move_id: i64,
        limit: usize,
    ) -> Result<(usize, u64, bool)> {
        // A batch of nothing would find nothing and send the owner to verification.
        let limit = limit.max(1);
        // Find the batch first, from a snapshot, without holding anything: scanning the source
        // (and reading its pages from disk) happens while requests still write. Under the
        // locks, each record is then looked up again by id, so it is copied as it is now.
        let seen = self.placement(owner)?;
        if seen.move_id != Some(move_id) || seen.phase != Phase::Backfill {
            return Ok((0, 0, true));
        }
        let source = self.location(&seen.location)?;
        // What an earlier scan left for this owner, or a new scan.
        let kept = self
            .scanned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&move_id);
        let want = limit.saturating_mul(SCAN_AHEAD).min(SCAN_MAX.max(limit));
        let mut fresh = false;
        let mut scanned = match kept {
            Some(s) if s.owner == *owner && s.epoch == seen.epoch && !s.ids.is_empty() => s,
            _ => {
                fresh = true;
                let ids: Vec<R::Id> = source
                    .pool
                    .with_reader(|c| source.layout.backfill_ids(c, owner, want))
                    .map_err(|e| sqlite(&source, e))?;
                Scanned {
                    owner: owner.clone(),
                    epoch: seen.epoch,
                    ids: ids.into(),
                }
            }
        };
        if scanned.ids.is_empty() {
            // Nothing left at the source: on to verification (which counts the source again).
            return Ok((0, 0, false));
        }
        let ids: Vec<R::Id> = scanned.ids.drain(..limit.min(scanned.ids.len())).collect();
        let (taken, copied, found) = self.locked(owner, |h| {
            let (from, fc) = h.from;
            let Some((to, tc)) = h.to else {
                return Ok(((0, 0, 0), Commit::TargetFirst));
            };
            if h.placement.move_id != Some(move_id)
                || h.placement.phase != Phase::Backfill
                || h.placement.epoch != seen.epoch
            {
                // Changed since the scan (by another worker, a cancel): look again.
                return Ok(((0, 0, 0), Commit::TargetFirst));
            }
            let mut delta = Delta::default();
            let mut scratch = Vec::new();
            let (mut taken, mut found) = (0, 0);
            // A few records at a time, each step one statement per store for them all (see
            // `Layout::get_many`), and a put per copy.
            for chunk in ids.chunks(YIELD_AFTER) {
                if taken > 0 && (from.pool.writers_waiting() > 0 || to.pool.writers_waiting() > 0) {
                    // A foreground write waits for one of the locks: let it in.
                    break;
                }
                taken += chunk.len();
                // Those gone since the snapshot (moved by an update, or deleted) are left out;
                // each record once, whatever the layout answers (a record counted twice in the
                // ledger would fail verification).
                let mut items = from
                    .layout
                    .get_many(fc, owner, chunk)
                    .map_err(|e| sqlite(from, e))?;
                let mut present: Vec<R::Id> = Vec::with_capacity(items.len());
                items.retain(|i| {
                    let first = !present.contains(i.id());
                    if first {
                        present.push(i.id().clone());
                    }
                    first
                });
                if items.is_empty() {
                    continue;
                }
                found += items.len();
                let there = to
                    .layout
                    .get_many(tc, owner, &present)
                    .map_err(|e| sqlite(to, e))?;
                let at_target = |id: &R::Id| there.iter().find(|t| t.id() == id);
                // Copy unless the target already has this version or a newer one (a crash
                // between an earlier copy and its removal, or an update since).
                let mut copies = Vec::new();
                for item in &items {
                    let old = at_target(item.id());
                    if old.is_none_or(|t| t.version() < item.version()) {
                        to.layout.put(tc, item).map_err(|e| sqlite(to, e))?;
                        copies.push((item, old));
                    }
                }
                if !copies.is_empty() {
                    // Confirmed by reading them back, or the whole batch rolls back and the
                    // source keeps everything.
                    let copied: Vec<R::Id> = copies.iter().map(|(i, _)| i.id().clone()).collect();
                    let back = to
                        .layout
                        .get_many(tc, owner, &copied)
                        .map_err(|e| sqlite(to, e))?;
                    for (item, old) in copies {
                        let landed = back.iter().find(|b| b.id() == item.id());
                        let hash = confirmed(to, item, landed, &mut scratch)?;
                        delta.replace_hashed(old, hash, &mut scratch);
                        delta.copied += 1;
                    }
                }
                let removed = from
                    .layout
                    .remove_many(fc, owner, &present)
                    .map_err(|e| sqlite(from, e))?;
                if removed != present.len() as u64 {
                    // Under the locks nothing else removes them: the layout kept one.
                    return Err(MoveError::Inconsistent {
                        location: from.name.clone(),
                        owner: format!("{owner:?}"),
                        id: format!("{:?}", present[0]),
                        why: "its remove_many did not remove every record its get_many found",
                    });
                }
            }
            // The checkpoint: the ledger row commits with the copies.
            if delta != Delta::default() {
                delta.apply(tc, move_id, owner).map_err(|e| sqlite(to, e))?;
            }
            Ok(((taken, delta.copied, found), Commit::TargetFirst))
        })?;
        if taken == 0 {
            // The placement changed under the batch: the scan is stale.
            return Ok((0, 0, true));
        }
        if fresh && found == 0 {
            // Not one of the ids a fresh scan gave this batch at the source: gone since
            // (deleted, or moved by an update), or a layout whose scan and reads disagree,
            // which would take the same ids for ever. The same scan again, now, tells them
            // apart: a record gone is not named again.
            let again = source
                .pool
                .with_reader(|c| source.layout.backfill_ids(c, owner, want))
                .map_err(|e| sqlite(&source, e))?;
            if let Some(id) = again.iter().find(|id| ids[..taken].contains(id))
                && self.placement(owner)?.epoch == seen.epoch
            {
                return Err(MoveError::Inconsistent {
                    location: source.name.clone(),
                    owner: format!("{owner:?}"),
                    id: format!("{id:?}"),
                    why: "its backfill_ids names the record, but its get_many does not find it",
                });
            }
        }
        // Those the batch did not reach (cut short) go first next time.
        for id in ids.into_iter().skip(taken).rev() {
            scanned.ids.push_front(id);
        }
        if !scanned.ids.is_empty() {
            let mut kept = self
                .scanned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() >= SCANS_KEPT {
                // Another move's, the oldest (each is only a saving: ids are read again).
                if let Some(&old) = kept.keys().filter(|&&m| m != move_id).min() {
                    kept.remove(&old);
                }
            }
            kept.insert(move_id, scanned);
        }
        Ok((taken, copied, true))
    }

    /// Compares the owner's records at the target with the ledger, and checks that nothing is
    /// left at the source. Switches the owner to the target when all agree; otherwise records
    /// the differences, fails the move and returns false.
    fn verify_owner(&self, owner: &R::Owner, move_id: i64, state: MoveState) -> Result<bool> {
        // First from snapshots, without blocking writers: the target's records and its ledger
        // change together in every write, so one read transaction sees them agree.
        let seen = self.placement(owner)?;
        let (Some(target), true) = (&seen.target, seen.move_id == Some(move_id)) else {
            return Ok(true);
        };
        let (from, to) = (self.location(&seen.location)?, self.location(target)?);
        let left = from
            .pool
            .with_reader(|c| from.layout.count(c, owner))
            .map_err(|e| sqlite(&from, e))?;
        let (tallied, ledger) = to.pool.with_reader(|c| -> Result<_> {
            c.execute_batch("BEGIN").map_err(|e| sqlite(&to, e))?;
            let out = tally(&to, c, owner).and_then(|tallied| {
                let ledger = ledger_row(c, move_id, owner).map_err(|e| sqlite(&to, e))?;
                Ok((tallied, ledger))
            });
            let _ = c.execute_batch("COMMIT");
            out
        })?;
        let clean = differences(&from, left, &to, tallied, ledger).is_empty();
        // Then the switch, with both databases locked: a quick look at the source, or, if the
        // snapshot disagreed, the whole comparison again, authoritatively.
        let mut found = Vec::new();
        self.transition(owner, None, |h| {
            found.clear();
            let (from, fc) = h.from;
            let Some((to, tc)) = h.to else {
                return Ok(None);
            };
            if h.placement.move_id != Some(move_id) || h.placement.phase != Phase::Verify {
                return Ok(None);
            }
            let left = from.layout.count(fc, owner).map_err(|e| sqlite(from, e))?;
            let (tallied, ledger) = if clean && h.placement.epoch == seen.epoch {
                ((0, 0), (0, 0))
            } else {
                let ledger = ledger_row(tc, move_id, owner).map_err(|e| sqlite(to, e))?;
                (tally(to, tc, owner)?, ledger)
            };
            found = differences(from, left, to, tallied, ledger);
            if !found.is_empty() {
                return Ok(None);
            }
            Ok(Some(Placement {
                location: to.name.clone(),
                target: None,
                phase: Phase::Stable,
                move_id: None,
                epoch: h.placement.epoch,
            }))
        })?;
        if found.is_empty() {
            self.control_write(|c| {
                c.execute(
                    "UPDATE strata_moves SET verified = verified + 1, updated_at = ?2 \
                     WHERE id = ?1",
                    params![move_id, now_ms()],
                )
            })?;
            return Ok(true);
        }
        self.fail_move(move_id, state, owner, &found)?;
        Ok(false)
    }

    /// Records what was found for `owner` and fails the move, unless its state changed from
    /// `seen` meanwhile (a cancel issued since is not overwritten): it stops, its owners stay
    /// readable and writable where they are, and a cancel turns them back. (A record that
    /// conflicts on the way back, during a cancel, stops the cancel the same way; it stays
    /// readable and writable where it is until an operator resolves the conflict.)
    fn fail_move(
        &self,
        move_id: i64,
        seen: MoveState,
        owner: &R::Owner,
        found: &[String],
    ) -> Result<()> {
        self.control_write(|c| {
            let now = now_ms();
            for detail in found {
                c.execute(
                    "INSERT INTO strata_move_differences (move_id, owner, detail, found_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![move_id, owner, detail, now],
                )?;
            }
            c.execute(
                "UPDATE strata_moves SET differences = differences + ?2, updated_at = ?3 \
                 WHERE id = ?1",
                params![move_id, found.len() as i64, now],
            )?;
            c.execute(
                "UPDATE strata_moves SET state = 'failed', error = ?2 WHERE id = ?1 \
                 AND state = ?3",
                params![
                    move_id,
                    "the move found differences (`move status` lists them) and stopped; its \
                     owners stay readable and writable where they are. Inspect them, then \
                     cancel the move to move the owners back",
                    seen.as_str()
                ],
            )
        })?;
        Ok(())
    }
}
