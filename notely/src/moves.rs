//! Moving accounts' notes between stores while Notely serves them: choosing the accounts,
//! starting and cancelling moves, and the worker every server runs (see `strata_online`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use strata_online::{Engine, MoveError, MoveRecord, MoveStatus, Pace, directory};
use uuid::Uuid;

use crate::store::{Note, accounts};
use crate::telemetry::Telemetry;

/// Which accounts a move takes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// These accounts.
    Accounts(Vec<Uuid>),
    /// A stable share of all accounts: those whose id hashes below the fraction, so a larger
    /// fraction later takes the same accounts and more.
    Fraction(f64),
    /// Every account; new accounts are placed at the target from now on.
    All,
}

/// Whether `account` falls within `fraction` (SHA-256 of its id, first 8 bytes, as a share
/// of 2^64).
pub fn in_fraction(account: &Uuid, fraction: f64) -> bool {
    let digest = strata::Checksum::sha256(account.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest.bytes()[..8]);
    (u64::from_be_bytes(head) as f64) < fraction * 2f64.powi(64)
}

/// Starts moving the selected accounts' notes to the store `to`. `None` when every selected
/// account is there already (with `All`, new accounts are placed at `to` from now on all the
/// same).
pub fn start(
    engine: &Engine<Note>,
    selection: &Selection,
    to: &str,
) -> Result<Option<MoveRecord>, MoveError> {
    engine.location(to)?;
    let control_err = |source| MoveError::Sqlite {
        location: "control".into(),
        path: engine.control().path().to_path_buf(),
        source,
    };
    let all: Vec<Uuid> = engine
        .control()
        .with_reader(|c| accounts::list(c).map(|l| l.into_iter().map(|a| a.id).collect()))
        .map_err(control_err)?;
    let chosen: Vec<Uuid> = match selection {
        Selection::Accounts(ids) => {
            if let Some(unknown) = ids.iter().find(|id| !all.contains(id)) {
                return Err(MoveError::Invalid(format!("no account {unknown}")));
            }
            ids.clone()
        }
        Selection::Fraction(f) => {
            if !(0.0..=1.0).contains(f) {
                return Err(MoveError::Invalid(format!(
                    "the fraction must be between 0 and 1, got {f}"
                )));
            }
            all.into_iter().filter(|a| in_fraction(a, *f)).collect()
        }
        Selection::All => all,
    };
    // Everything moving or already there is left out; only a conflict is an error.
    let mut plan = Vec::new();
    for id in chosen {
        let p = engine.placement(&id)?;
        if p.location != to && !p.is_moving() {
            plan.push((id, to.to_string()));
        } else if p.is_moving() && matches!(selection, Selection::Accounts(_)) {
            return Err(MoveError::Invalid(format!(
                "account {id} is already moving (move {}); wait for it or cancel it",
                p.move_id.unwrap_or_default()
            )));
        }
    }
    if *selection == Selection::All {
        // New accounts go to `to` too: the default location, and no more hash placement.
        engine
            .control()
            .with_writer(|c| {
                let tx = rusqlite::Transaction::new_unchecked(
                    c,
                    rusqlite::TransactionBehavior::Immediate,
                )?;
                directory::set_setting(&tx, directory::DEFAULT_LOCATION, to)?;
                tx.execute("DELETE FROM strata_shard_map", [])?;
                tx.commit()
            })
            .map_err(control_err)?;
    }
    if plan.is_empty() {
        return match selection {
            Selection::All => Ok(None),
            _ => Err(MoveError::Invalid(format!(
                "nothing to move: the accounts named are at {to} already, or moving"
            ))),
        };
    }
    let description = match selection {
        Selection::Accounts(ids) => format!("{} account(s) → {to}", ids.len()),
        Selection::Fraction(f) => format!("{:.0}% of accounts → {to}", f * 100.0),
        Selection::All => format!("all accounts → {to}"),
    };
    engine.start_move(&description, &plan).map(Some)
}

/// Creates `accounts` accounts placed in the legacy store, each with `notes` notes written
/// straight into the legacy table: a legacy world to move from. Returns the account ids.
pub fn seed_legacy(
    engine: &Engine<Note>,
    accounts: usize,
    notes: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(accounts);
    for i in 0..accounts {
        let account = crate::store::Account::new(Uuid::new_v4(), format!("legacy user {i}"));
        engine.control().with_writer(|c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO accounts (id, name) VALUES (?1, ?2)",
                rusqlite::params![account.id, account.name],
            )?;
            directory::place(&tx, &account.id, notely_migrations::LEGACY)?;
            tx.commit()
        })?;
        ids.push(account.id);
    }
    seed_legacy_notes(engine, &ids, notes)?;
    Ok(ids)
}

/// Starts moving every account to its shard among `n` shards, creating (and migrating) the
/// shards that do not exist. The directory's shard map is rebalanced over the `n` shards,
/// moving as few logical shards as possible, and set first, so that new accounts go straight
/// to their shard. Then only the accounts whose logical shard changed location move: the
/// first time every account (from wherever it is), on a reshard only those whose logical
/// shard moved. Accounts moving in another move are left out. `None` when nothing moves.
pub fn start_shards(
    engine: &Engine<Note>,
    data_dir: &std::path::Path,
    settings: &crate::db::Settings,
    n: usize,
) -> anyhow::Result<Option<MoveRecord>> {
    use strata_online::shard;
    anyhow::ensure!(
        (1..=256).contains(&n),
        "--shards must be between 1 and 256, got {n}"
    );
    let names: Vec<String> = (0..n).map(crate::db::shard_name).collect();
    crate::db::create_shards(data_dir, settings, &names)?;
    for name in &names {
        engine.location(name)?;
    }
    let control = engine.control();
    let current = control.with_reader(shard::shard_map)?;
    let before: std::collections::BTreeSet<&String> = current.iter().collect();
    let map = shard::rebalance(&current, &names);
    let accounts = control.with_reader(accounts::list)?;
    let mut plan = Vec::new();
    for a in accounts {
        let Some(p) = a.placement else { continue };
        let target = &map[usize::from(shard::logical_shard(a.id.as_bytes()))];
        if !p.is_moving() && p.location != *target {
            plan.push((a.id, target.clone()));
        }
    }
    control.with_writer(|c| {
        let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
        shard::set_shard_map(&tx, &map)?;
        tx.commit()
    })?;
    if plan.is_empty() {
        return Ok(None);
    }
    let description = if before.is_empty() {
        format!("→ {n} shards")
    } else {
        format!("reshard {} → {n} shards", before.len())
    };
    Ok(Some(engine.start_move(&description, &plan)?))
}

/// Puts `per_account` generated notes of each account straight into the legacy store, in the
/// legacy layout. Returns how many.
pub fn seed_legacy_notes(
    engine: &Engine<Note>,
    accounts: &[Uuid],
    per_account: usize,
) -> anyhow::Result<u64> {
    use anyhow::Context;
    use strata_online::Layout;
    let legacy = engine.location(notely_migrations::LEGACY)?;
    let mut n = 0u64;
    let base = chrono::Utc::now().timestamp_millis() - 86_400_000;
    for (a, account) in accounts.iter().enumerate() {
        legacy
            .pool
            .with_writer(|c| -> strata_online::LayoutResult<()> {
                // The write lock first (a deferred transaction that finds the database changed
                // by another process when it comes to write fails at once with SQLITE_BUSY,
                // whatever the busy timeout; `notely move seed-legacy` beside a running server
                // did, one run in two).
                let tx = rusqlite::Transaction::new_unchecked(
                    c,
                    rusqlite::TransactionBehavior::Immediate,
                )?;
                for i in 0..per_account {
                    let at = crate::store::from_millis(base + (a * per_account + i) as i64);
                    crate::store::legacy::MemosTable.insert(
                        &tx,
                        &Note {
                            id: Uuid::new_v4(),
                            creator: *account,
                            created_at: at,
                            updated_at: at,
                            content: format!("legacy note {i} of {account}: {}", "x".repeat(40)),
                        },
                    )?;
                }
                Ok(tx.commit()?)
            })
            .context("seeding the legacy store")?;
        n += per_account as u64;
        // Let the requests waiting for the writer in (a mutex is not fair: taken again at
        // once, it kept users' writes waiting for the whole seeding, ~0.5 s in the demo).
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(n)
}

/// The move to cancel: `id`, or the newest unfinished one.
pub fn cancel(engine: &Engine<Note>, id: Option<i64>) -> Result<MoveRecord, MoveError> {
    let id = match id {
        Some(id) => id,
        None => engine
            .moves()?
            .into_iter()
            .find(|m| {
                m.record.state.is_active() || m.record.state == strata_online::MoveState::Failed
            })
            .map(|m| m.record.id)
            .ok_or_else(|| MoveError::Invalid("no unfinished move to cancel".into()))?,
    };
    engine.cancel_move(id)
}

/// One line about a move, for logs and the CLI.
pub fn describe(s: &MoveStatus) -> String {
    let r = &s.record;
    let phases = s
        .phases
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let eta = s
        .eta_s
        .map(|e| {
            let held = if s.pace.as_ref().is_some_and(|p| p.at_minimum) {
                " (the latency budget holds it back)"
            } else {
                ""
            };
            format!(", eta {e:.0}s{held}")
        })
        .unwrap_or_default();
    let eta = match &s.pace {
        Some(p) => format!("{eta}; {}", p.describe()),
        None => eta,
    };
    let targets = if s.targets.len() > 1 {
        format!(
            "; per target: {}",
            s.targets
                .iter()
                .map(|(t, p)| format!("{t} {}/{}", p.switched, p.owners))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    format!(
        "move {} ({}) {}: {}/{} accounts verified, {} records copied ({:.0}/s), {} to go{eta}{}{}{targets}",
        r.id,
        r.description,
        r.state.as_str(),
        r.verified,
        r.owners,
        r.records_copied,
        r.rate,
        s.remaining,
        if phases.is_empty() {
            String::new()
        } else {
            format!(" [{phases}]")
        },
        if r.differences > 0 {
            format!(", {} difference(s)", r.differences)
        } else {
            String::new()
        }
    )
}

/// The move worker every server runs in the background: it takes on unfinished moves (one
/// process wins each; a crashed worker's move is taken over) and drives them.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub fn start(engine: Arc<Engine<Note>>, mut pace: Pace, telemetry: Arc<Telemetry>) -> Worker {
        // The API's own p99 joins the engine's measurement in pacing the backfill.
        if pace.signal.is_none() {
            let t = Arc::clone(&telemetry);
            pace.signal = Some(strata_online::pace::Signal::new(move |w| {
                t.api_p99_recent(w)
            }));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("notely-mover".into())
            .spawn(move || {
                strata_online::background_priority();
                work(&engine, &pace, &flag, &telemetry);
            })
            .expect("spawning the move worker");
        Worker {
            stop,
            thread: Some(thread),
        }
    }

    /// Asks the worker to finish its current batch and stop; waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.halt();
    }
}

fn work(engine: &Engine<Note>, pace: &Pace, stop: &AtomicBool, telemetry: &Telemetry) {
    let mut last_log = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        let mut progress = |s: &MoveStatus| {
            telemetry.move_progress(s);
            if last_log.elapsed() >= Duration::from_secs(1) || !s.record.state.is_active() {
                last_log = Instant::now();
                tracing::info!("{}", describe(s));
            }
        };
        // Read before looking for a move, so that one started while it looks wakes the nap.
        let before = engine.control().stamp();
        match engine.work(pace, stop, &mut progress) {
            Ok(Some(done)) => tracing::info!(
                "move {} {} after {:.1}s: {} records copied, {} accounts switched",
                done.move_id,
                done.state.as_str(),
                done.duration_s,
                done.records_copied,
                done.owners_switched
            ),
            // No move to work on: look again in a moment, or as soon as the control database
            // changes (a move started there is worked on at once; a move's figures count from
            // its start).
            Ok(None) => nap(
                stop,
                Duration::from_millis(200),
                Some((engine.control(), before)),
            ),
            Err(e) => {
                tracing::error!("move worker: {e}");
                nap(stop, Duration::from_secs(1), None);
            }
        }
    }
}

/// Sleeps for `total`, in steps of 20 ms, until `stop` is set or, with `watch`, a commit to
/// that database since its stamp `before` (its [`strata_online::Pool::stamp`] differs; without
/// a stamp, the whole time).
fn nap(
    stop: &AtomicBool,
    total: Duration,
    watch: Option<(&strata_online::Pool, Option<strata_online::Stamp>)>,
) {
    let until = Instant::now() + total;
    // Sleep first: under a stream of commits (accounts created, heartbeats), the worker looks
    // for a move at most every 20 ms.
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        if let Some((pool, Some(before))) = watch
            && pool.stamp() != Some(before)
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's nap ends at a commit to the database it watches, also one made by another
    /// connection before the nap began (after the stamp was read); without one, it runs its
    /// whole time.
    #[test]
    fn the_nap_ends_at_a_commit_to_the_watched_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.db");
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let pool = strata_online::Pool::open(&path, 1).unwrap();
        let stop = AtomicBool::new(false);
        // No commit: the whole 100 ms.
        let before = pool.stamp();
        assert!(before.is_some(), "a WAL database has a stamp");
        let began = Instant::now();
        nap(&stop, Duration::from_millis(100), Some((&pool, before)));
        assert!(began.elapsed() >= Duration::from_millis(100));
        // A commit after the stamp was read: at once, well before the nap's 5 s.
        let before = pool.stamp();
        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let began = Instant::now();
        nap(&stop, Duration::from_secs(5), Some((&pool, before)));
        assert!(began.elapsed() < Duration::from_secs(4));
        // A commit during the nap.
        let before = pool.stamp();
        std::thread::scope(|s| {
            let other = &path;
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                rusqlite::Connection::open(other)
                    .unwrap()
                    .execute("INSERT INTO t VALUES (2)", [])
                    .unwrap();
            });
            let began = Instant::now();
            nap(&stop, Duration::from_secs(5), Some((&pool, before)));
            assert!(began.elapsed() < Duration::from_secs(4));
        });
    }
}
