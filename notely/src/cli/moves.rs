//! `notely move …`: starting, following and cancelling moves from the command line, and
//! carrying them out in this process (`--wait`, `run`).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use strata_online::{Engine, MoveStatus, Pace};

use super::MoveCommand;
use crate::moves::{Selection, cancel, describe, seed_legacy, start, start_shards};
use crate::store::Note;

/// Opens the engine over the databases under `data_dir`, which must be migrated.
fn open_engine(
    data_dir: &std::path::Path,
    settings: &crate::db::Settings,
) -> anyhow::Result<Arc<Engine<Note>>> {
    use anyhow::Context;
    let check = crate::db::Settings {
        mode: strata::Mode::Verify,
        ..settings.clone()
    };
    crate::db::startup(data_dir, &check, &mut std::io::sink(), None).with_context(|| {
        format!(
            "the databases under {} are not ready for moves; run `notely migrate up` (or start \
             `notely serve`) first",
            data_dir.display()
        )
    })?;
    Ok(crate::db::Stores::open(data_dir, 2)?.engine)
}

/// Works on unfinished moves in this process, printing progress, until `until` says stop.
fn work_here(
    engine: &Engine<Note>,
    pace: &Pace,
    mut until: impl FnMut(&Engine<Note>) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let stop = AtomicBool::new(false);
    let mut last = Instant::now() - Duration::from_secs(60);
    loop {
        let mut progress = |s: &MoveStatus| {
            if last.elapsed() >= Duration::from_secs(1) || !s.record.state.is_active() {
                last = Instant::now();
                eprintln!("notely: {}", describe(s));
            }
        };
        let worked = engine.work(pace, &stop, &mut progress)?;
        if until(engine)? {
            return Ok(());
        }
        if worked.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn finished(engine: &Engine<Note>, id: i64) -> anyhow::Result<bool> {
    Ok(!engine.move_status(id)?.record.state.is_active())
}

fn exit_for(status: &MoveStatus) -> std::process::ExitCode {
    match status.record.state {
        strata_online::MoveState::Failed => std::process::ExitCode::from(3),
        _ => std::process::ExitCode::SUCCESS,
    }
}

/// `notely move …`
pub fn command(
    data_dir: &std::path::Path,
    settings: &crate::db::Settings,
    command: MoveCommand,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let engine = open_engine(data_dir, settings)?;
    match command {
        MoveCommand::Start {
            to,
            shards,
            accounts,
            fraction,
            all,
            wait,
            pace,
        } => {
            let pace = pace.pace()?;
            let to = match (to, shards) {
                (Some(to), None) => to,
                (None, Some(n)) => {
                    let Some(record) = start_shards(&engine, data_dir, settings, n)? else {
                        println!("notely: every account is on its shard already");
                        return Ok(ExitCode::SUCCESS);
                    };
                    println!(
                        "notely: started move {} ({}): {} account(s), {} note(s) to copy",
                        record.id, record.description, record.owners, record.records_total
                    );
                    if wait {
                        work_here(&engine, &pace, |e| finished(e, record.id))?;
                        let status = engine.move_status(record.id)?;
                        println!("notely: {}", describe(&status));
                        return Ok(exit_for(&status));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                _ => anyhow::bail!("say where to: --to STORE, or --shards N"),
            };
            let selection = match (accounts.is_empty(), fraction, all) {
                (false, None, false) => Selection::Accounts(accounts),
                (true, Some(f), false) => Selection::Fraction(f),
                (true, None, true) => Selection::All,
                _ => {
                    anyhow::bail!("say which accounts move: --accounts ID,…, --fraction F or --all")
                }
            };
            let Some(record) = start(&engine, &selection, &to)? else {
                println!("notely: every account is at {to} already; new accounts go there too");
                return Ok(ExitCode::SUCCESS);
            };
            println!(
                "notely: started move {} ({}): {} account(s), {} note(s) to copy",
                record.id, record.description, record.owners, record.records_total
            );
            if !wait {
                println!(
                    "notely: a running `notely serve` carries it out; follow it with `notely move status`"
                );
                return Ok(ExitCode::SUCCESS);
            }
            work_here(&engine, &pace, |e| finished(e, record.id))?;
            let status = engine.move_status(record.id)?;
            println!("notely: {}", describe(&status));
            Ok(exit_for(&status))
        }
        MoveCommand::Status { id, json } => {
            let statuses = match id {
                Some(id) => vec![engine.move_status(id)?],
                None => engine.moves()?,
            };
            if json {
                let value = match id {
                    Some(_) => serde_json::to_value(&statuses[0])?,
                    None => serde_json::to_value(&statuses)?,
                };
                println!("{value}");
            } else if statuses.is_empty() {
                println!("no moves yet; start one with `notely move start --to STORE --all`");
            } else {
                for s in &statuses {
                    println!("{}", describe(s));
                    if let Some(e) = &s.record.error {
                        println!("  error: {e}");
                    }
                    for (owner, detail) in &s.found {
                        println!("  difference: account {owner}: {detail}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        MoveCommand::Cancel { id, wait, pace } => {
            let pace = pace.pace()?;
            let record = cancel(&engine, id)?;
            println!(
                "notely: move {} is {}; accounts not yet switched go back",
                record.id,
                record.state.as_str()
            );
            if wait {
                work_here(&engine, &pace, |e| finished(e, record.id))?;
                println!("notely: {}", describe(&engine.move_status(record.id)?));
            }
            Ok(ExitCode::SUCCESS)
        }
        MoveCommand::SeedLegacy { accounts, notes } => {
            let ids = seed_legacy(&engine, accounts, notes)?;
            println!(
                "notely: seeded {} legacy account(s) with {notes} note(s) each",
                ids.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        MoveCommand::Run { pace } => {
            let pace = pace.pace()?;
            work_here(&engine, &pace, |e| {
                Ok(!e.moves()?.iter().any(|m| m.record.state.is_active()))
            })?;
            for s in engine.moves()?.iter().take(5) {
                println!("notely: {}", describe(s));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
