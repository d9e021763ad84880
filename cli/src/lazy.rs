//! Subcommands whose arguments clap builds only when that subcommand is invoked
//! (`clap::Command::defer`). Building the whole command line — `run`'s options, then
//! `learn`'s copy of them and every `policy` subcommand — took ~0.2 ms of every
//! `sandbox run`'s start-up, most of it for subcommands that were not invoked.

use clap::{ArgMatches, Args, Command, Error, FromArgMatches, Subcommand};

/// Arguments `T` of a subcommand, built when the subcommand is.
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: Command) -> Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(T::augment_args_for_update)
    }
}

impl<T: Subcommand> Subcommand for Lazy<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        cmd.defer(T::augment_subcommands)
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        cmd.defer(T::augment_subcommands_for_update)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

#[cfg(test)]
mod tests {
    use crate::Cli;
    use clap::{CommandFactory, Parser};

    /// Every subcommand still builds, checks and parses (clap's own consistency
    /// checks run on the whole tree, deferred parts included).
    #[test]
    fn deferred_subcommands_build_and_parse() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["sandbox", "run", "--ro", "/usr", "--", "/bin/true"])
            .expect("parses");
        assert!(matches!(cli.command, crate::Command::Run(_)));
        let cli = Cli::try_parse_from(["sandbox", "policy", "show", "exec"]).expect("parses");
        assert!(matches!(cli.command, crate::Command::Policy(_)));
        let e = Cli::try_parse_from(["sandbox", "run", "--no-such-option"]).expect_err("refused");
        assert!(e.to_string().contains("--no-such-option"), "{e}");
    }
}
