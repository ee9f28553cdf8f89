//! strata-probe: a small application with its own migrations, run as real OS processes by the
//! integration tests (concurrent starts, kill -9 in the middle of a migration).
//!
//! `strata-probe DB_PATH` applies the probe's migrations to `DB_PATH` and prints the report as
//! one line of JSON. `STRATA_PROBE_SLOW_MS` makes the `slow_fill` migration take that long,
//! `STRATA_PROBE_NOTX_SLOW_MS` does the same for the `no_transaction` one.

use std::time::Duration;

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: strata-probe DB_PATH");
        return std::process::ExitCode::from(2);
    };
    let timeout = std::env::var("STRATA_PROBE_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let migrator = strata::Migrator::new(&strata_tests::probe::MIGRATIONS, "main")
        .lock_timeout(Duration::from_millis(timeout));
    match migrator.run(path.as_ref()) {
        Ok(report) => {
            let applied: Vec<String> = report
                .applied
                .iter()
                .map(|a| a.version.to_string())
                .collect();
            println!(
                "{{\"pid\":{},\"applied\":[{}],\"version\":{}}}",
                std::process::id(),
                applied.join(","),
                report.version.unwrap_or(0)
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
