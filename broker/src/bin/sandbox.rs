//! The `sandbox` command.
use clap::Parser;

fn main() {
    // Re-executed as the in-sandbox stage of `sandbox run`.
    if std::env::args().nth(1).as_deref() == Some(broker::cli::run::STAGE_ARG) {
        broker::cli::run::stage();
    }
    let cli = broker::cli::Cli::parse();
    std::process::exit(broker::cli::main_with(cli));
}
