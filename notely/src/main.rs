//! The `notely` binary: parses the command line, sets up logging, runs the command.

fn main() -> std::process::ExitCode {
    let cli = match notely::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let json = cli.json();
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::filter::LevelFilter;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // Log events (INFO and above) go to the telemetry's recent lines (the TUI's Logs
        // page); without the TUI, warnings and errors go to stderr too (or down to the level
        // `NOTELY_LOG` names: `debug` shows, for one, each decision of a move's pace). Nothing
        // prints over the terminal UI.
        let level = match std::env::var("NOTELY_LOG").as_deref().map(str::trim) {
            Ok("") | Err(_) => LevelFilter::WARN,
            Ok(v) => v.parse::<LevelFilter>().unwrap_or_else(|_| {
                eprintln!(
                    "NOTELY_LOG={v:?} is not a level (error, warn, info, debug, trace or off); \
                     logging warnings"
                );
                LevelFilter::WARN
            }),
        };
        let stderr = (!cli.cli).then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(level)
        });
        tracing_subscriber::registry()
            .with(notely::telemetry::LogLayer.with_filter(LevelFilter::INFO))
            .with(stderr)
            .init();
    }
    match notely::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            notely::cli::report_error(&e, json);
            std::process::ExitCode::FAILURE
        }
    }
}
