//! The `sandbox` command line: `sandbox run`, `sandbox check`, `sandbox policy`.
#![deny(missing_docs)]

pub mod deps;
pub mod explain;
pub mod lazy;
pub mod learn;
pub mod notify;
pub mod policy;
pub mod profile;
pub mod run;
mod sys;
mod words;

use clap::{Parser, Subcommand};

/// `sandbox`: run programs sandboxed, check what this kernel offers, work with policies.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, compile, evaluate and show seccomp policies.
    #[command(subcommand)]
    Policy(lazy::Lazy<policy::PolicyCommand>),
    /// Run a program under the sandbox layers (like bwrap or minijail0).
    Run(lazy::Lazy<Box<run::RunArgs>>),
    /// Run a program as `sandbox run` would, recording every syscall and path instead
    /// of refusing, and write a profile that `sandbox run --profile` enforces.
    Learn(lazy::Lazy<Box<learn::LearnArgs>>),
    /// Show which sandbox layers this kernel and user offer; exit 0 when the default
    /// renderer configuration can be applied in full, 1 when it cannot.
    Check {
        /// Print the report as JSON-like debug output instead of a table.
        #[arg(long)]
        verbose: bool,
    },
}

/// Run the command line; returns the process exit code.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Command::Policy(cmd) => policy::run(cmd.0),
        Command::Run(args) => run::run(*args.0),
        Command::Learn(args) => learn::learn(*args.0),
        Command::Check { verbose } => {
            let report = sandbox::launch::check::kernel_report();
            if verbose {
                println!("{report:#?}");
            } else {
                print!("{report}");
            }
            if report.default_config_applies() {
                0
            } else {
                1
            }
        }
    }
}
