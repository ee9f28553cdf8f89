use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = notely::cli::Cli::parse();
    match notely::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
