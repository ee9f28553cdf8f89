use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = notely::cli::Cli::parse();
    match notely::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
