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
        let level = std::env::var("NOTELY_LOG")
            .ok()
            .and_then(|v| v.parse::<LevelFilter>().ok())
            .unwrap_or(LevelFilter::WARN);
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
