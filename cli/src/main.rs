//! The `sandbox` command.
use clap::Parser;

fn main() {
    let cli = sandbox_cli::Cli::parse();
    std::process::exit(sandbox_cli::main_with(cli));
}
