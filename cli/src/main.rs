//! The `sandbox` command.
use clap::Parser;

fn main() {
    // Re-executed as the in-sandbox stage of `sandbox run`.
    if std::env::args().nth(1).as_deref() == Some(sandbox_cli::run::STAGE_ARG) {
        sandbox_cli::run::stage();
    }
    let cli = sandbox_cli::Cli::parse();
    std::process::exit(sandbox_cli::main_with(cli));
}
