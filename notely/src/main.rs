fn main() -> std::process::ExitCode {
    let cli = match notely::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let json = cli.json();
    if !cli.cli {
        // Warnings and errors of the server on stderr (the terminal UI shows its own log).
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::INFO)
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
