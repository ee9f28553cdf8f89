//! strata-probe: a small application with its own migrations, run as real OS processes by the
//! integration tests (concurrent starts, kill -9 in the middle of a migration).
//!
//! `strata-probe DB_PATH` applies the probe's migrations to `DB_PATH` and prints the report as
//! one line of JSON. `STRATA_PROBE_SLOW_MS` makes the `slow_fill` migration take that long,
//! `STRATA_PROBE_NOTX_SLOW_MS` does the same for the `no_transaction` one.
//! `STRATA_PROBE_GROUP_MS` sets how long migrations may share a transaction (`0`: one each).

use std::time::Duration;

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return serve();
    }
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: strata-probe DB_PATH");
        return std::process::ExitCode::from(2);
    };
    let timeout = std::env::var("STRATA_PROBE_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let mut migrator = strata::Migrator::new(&strata_tests::probe::MIGRATIONS, "main")
        .lock_timeout(Duration::from_millis(timeout));
    if let Some(ms) = std::env::var("STRATA_PROBE_GROUP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        migrator = migrator.group_for(Duration::from_millis(ms));
    }
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

/// `strata-probe serve DB_PATH RELEASE [contract-now]`: one release (1 or 2) of the deploy
/// test application (`strata_tests::deploy`) starting as a server would: migrate, register its
/// instance, print one JSON line, then serve (keep the heartbeat) until stdin closes, and
/// leave cleanly.
fn serve() -> std::process::ExitCode {
    use std::io::Read;
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(release)) = (args.get(2), args.get(3)) else {
        eprintln!("usage: strata-probe serve DB_PATH 1|2 [contract-now]");
        return std::process::ExitCode::from(2);
    };
    let source = match release.as_str() {
        "1" => &strata_tests::deploy::v1::MIGRATIONS,
        _ => &strata_tests::deploy::MIGRATIONS,
    };
    let mut options = strata::Options {
        lock_timeout: Duration::from_secs(10),
        backup: None,
        ..strata::Options::default()
    };
    if args.get(4).is_some_and(|a| a == "contract-now") {
        options.contract_now = Some("probe-operator".to_string());
    }
    let migrator = strata::Migrator::new(source, "deploy").options(options);
    let path = std::path::PathBuf::from(path);
    let started = migrator.run(&path).and_then(|report| {
        let presence = strata::instances::Presence::join(
            &format!("probe release {release}"),
            vec![(migrator.clone(), path.clone())],
            strata::Mode::Auto,
            None,
        )?;
        Ok((report, presence))
    });
    match started {
        Ok((report, presence)) => {
            let list = |v: Vec<i64>| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "{{\"pid\":{},\"applied\":[{}],\"deferred\":[{}]}}",
                std::process::id(),
                list(report.applied.iter().map(|a| a.version).collect()),
                list(report.deferred.iter().map(|d| d.version).collect()),
            );
            let _ = std::io::Write::flush(&mut std::io::stdout());
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            match presence.leave() {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: leaving: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
