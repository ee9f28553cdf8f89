//! Moving accounts' notes between stores while Notely serves them: choosing the accounts,
//! starting and cancelling moves, and the worker every server runs (see `strata::online`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use strata::online::{Engine, MoveError, MoveRecord, MoveStatus, Pace, directory};
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
    let digest = strata::Checksum::of(&[account.as_bytes()]);
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest.bytes()[..8]);
    (u64::from_be_bytes(head) as f64) < fraction * 2f64.powi(64)
}

/// Starts moving the selected accounts' notes to the store `to`.
pub fn start(
    engine: &Engine<Note>,
    selection: &Selection,
    to: &str,
) -> Result<MoveRecord, MoveError> {
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
        engine
            .control()
            .with_writer(|c| directory::set_setting(c, directory::DEFAULT_LOCATION, to))
            .map_err(control_err)?;
    }
    let description = match selection {
        Selection::Accounts(ids) => format!("{} account(s) → {to}", ids.len()),
        Selection::Fraction(f) => format!("{:.0}% of accounts → {to}", f * 100.0),
        Selection::All => format!("all accounts → {to}"),
    };
    engine.start_move(&description, &plan)
}

/// The move to cancel: `id`, or the newest unfinished one.
pub fn cancel(engine: &Engine<Note>, id: Option<i64>) -> Result<MoveRecord, MoveError> {
    let id = match id {
        Some(id) => id,
        None => engine
            .moves()?
            .into_iter()
            .find(|m| m.record.state.is_active() || m.record.state == strata::online::MoveState::Failed)
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
        .map(|e| format!(", eta {e:.0}s"))
        .unwrap_or_default();
    format!(
        "move {} ({}) {}: {}/{} accounts verified, {} records copied ({:.0}/s), {} to go{eta}{}{}",
        r.id,
        r.description,
        r.state.as_str(),
        r.verified,
        r.owners,
        r.records_copied,
        r.rate,
        s.remaining,
        if phases.is_empty() { String::new() } else { format!(" [{phases}]") },
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
    pub fn start(engine: Arc<Engine<Note>>, pace: Pace, telemetry: Arc<Telemetry>) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("notely-mover".into())
            .spawn(move || work(&engine, &pace, &flag, &telemetry))
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
                telemetry.log(format!("INFO {}", describe(s)));
            }
        };
        match engine.work(pace, stop, &mut progress) {
            Ok(Some(done)) => telemetry.log(format!(
                "INFO move {} {} after {:.1}s: {} records copied, {} accounts switched",
                done.move_id,
                done.state.as_str(),
                done.duration_s,
                done.records_copied,
                done.owners_switched
            )),
            Ok(None) => nap(stop, Duration::from_millis(200)),
            Err(e) => {
                telemetry.log(format!("ERROR move worker: {e}"));
                nap(stop, Duration::from_secs(1));
            }
        }
    }
}

fn nap(stop: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}
