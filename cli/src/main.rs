//! The `sandbox` command.
use clap::Parser;

fn main() {
    // Re-executed as the in-sandbox stage of `sandbox run` (callers without
    // CAP_SYS_PTRACE; others clone it in place).
    if std::env::args().nth(1).as_deref() == Some(sandbox_cli::run::STAGE_ARG) {
        sandbox_cli::run::exec_stage();
    }
    let cli = sandbox_cli::Cli::parse();
    std::process::exit(sandbox_cli::main_with(cli));
}
