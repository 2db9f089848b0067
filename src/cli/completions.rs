//! `chatd completions SHELL`: a completion script for the shell, on standard output.
//!
//! Generated from the same clap definition as `--help` and the manual pages, so it always
//! knows every subcommand and flag of this binary. It needs no configuration and no database.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{print, Cli, CliError};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> Result<(), CliError> {
    // The generators offer hidden subcommands too (the developer's `man`): leave them out.
    let full = Cli::command();
    let mut cmd = clap::Command::new("chatd")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "chatd", &mut script);
    let script = String::from_utf8_lossy(&script);
    // `print` adds the final newline back, and turns a closed pipe into a quiet exit.
    print(script.trim_end_matches('\n'))
}
