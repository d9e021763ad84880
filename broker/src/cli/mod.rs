//! The `sandbox` command line.

pub mod policy;

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
    Policy(policy::PolicyCommand),
}

/// Run the command line; returns the process exit code.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
    }
}
