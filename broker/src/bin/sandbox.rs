//! The `sandbox` command.
use clap::Parser;

fn main() {
    let cli = broker::cli::Cli::parse();
    std::process::exit(broker::cli::main_with(cli));
}
