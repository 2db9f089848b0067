//! The `chatd` command line: one file per subcommand, all calling the same domain services
//! as the HTTP API.
//!
//! Exit status: 0 success; 1 runtime failure (database unreachable, no such user, name
//! taken…); 2 usage or configuration error (bad flag, bad config key, invalid input such as
//! a too-short password). Errors are one line on stderr: `chatd: error: …`.

mod audit;
mod bench;
mod completions;
mod man;
mod migrate;
mod prompt;
mod room;
mod serve;
mod tui;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::io::Write as _;

use crate::app::Signals;
use crate::config::{Config, ConfigError};
use crate::db::Database;
use crate::error::Error;

/// Exit status for runtime failures.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for usage, configuration and input errors (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "chatd",
    version,
    about = "A self-hosted real-time chat server",
    long_about = "chatd serves a JSON REST API (accounts, sessions, profiles, rooms, membership and moderation, direct messages, message history) backed by PostgreSQL.\n\n\
        With no database.url configured it runs its own embedded PostgreSQL cluster under the \
        data directory, using the PostgreSQL server binaries installed on the machine.\n\n\
        Exit status: 0 success, 1 runtime failure, 2 usage, configuration or input error."
)]
pub struct Cli {
    /// Configuration file [default: ./config.toml if it exists]
    #[arg(long, global = true, value_name = "PATH", env = "CHATD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: embedded PostgreSQL cluster and generated secrets [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API server (applies pending migrations first)
    Serve(serve::ServeArgs),
    /// Apply database migrations, or show their status
    Migrate(migrate::MigrateArgs),
    /// Manage user accounts directly in the database
    User(user::UserArgs),
    /// Manage rooms and their members directly in the database
    Room(room::RoomArgs),
    /// Show the audit log: moderation and administration actions, newest first
    Audit(audit::AuditArgs),
    /// Load-test a running chatd: fan-out, many rooms, idle connections, logins, history
    Bench(bench::BenchArgs),
    /// A live console for operators: nodes, rooms and connections, with actions
    Tui(tui::TuiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Write the manual pages into a directory (for packagers and developers)
    #[command(hide = true)]
    Man(man::ManArgs),
}

/// A failure to report: one line and an exit status.
#[derive(Debug)]
pub struct CliError {
    pub exit: u8,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: EXIT_USAGE,
            message: message.into(),
        }
    }
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            exit: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { message, .. } => Self::usage(message),
            other => Self::failure(other.to_string()),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self::usage(e.to_string())
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::failure(format!("{e:#}"))
    }
}

impl From<crate::db::OpenError> for CliError {
    fn from(e: crate::db::OpenError) -> Self {
        Self::failure(e.to_string())
    }
}

impl From<crate::db::migrate::MigrateError> for CliError {
    fn from(e: crate::db::migrate::MigrateError) -> Self {
        Self::failure(e.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                // Not `eprintln!`: it panics when stderr is closed or full.
                let _ = writeln!(std::io::stderr(), "chatd: error: {}", e.message.replace('\n', " "));
            }
            ExitCode::from(e.exit)
        }
    }
}

/// Writes `text` (one or more whole lines) to standard output.
///
/// Never `println!` in the CLI: it panics when stdout is a closed pipe or a full disk, which
/// would skip closing the database and orphan the embedded cluster. A closed pipe
/// (`chatd user list | head -1`) ends the command quietly with status 0, as the reader
/// chose to stop; any other write error is a runtime failure.
pub(crate) fn print(text: impl std::fmt::Display) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError {
                exit: 0,
                message: String::new(),
            },
            _ => CliError::failure(format!("cannot write to standard output: {e}")),
        })
}

/// `--help` and `--version` print as clap renders them; a usage error becomes our one line
/// (clap's own is several lines: usage and a hint), with exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
    ) {
        eprintln!("chatd: error: {}", missing_subcommand(std::env::args().skip(1)));
        return ExitCode::from(EXIT_USAGE);
    }
    // clap's message runs up to the first blank line (a missing-argument error names the
    // arguments on the lines after its first); usage and hints follow. Fold it into one line.
    let rendered = e.render().to_string();
    let message: Vec<&str> = rendered.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let message = if message.is_empty() {
        "invalid arguments"
    } else {
        message
    };
    eprintln!("chatd: error: {message} (see `chatd --help`)");
    ExitCode::from(EXIT_USAGE)
}

/// "`chatd user` needs a subcommand: create, list, … (see `chatd user --help`)", for the
/// command the arguments name (options and their values are skipped).
fn missing_subcommand(args: impl Iterator<Item = String>) -> String {
    use clap::CommandFactory as _;
    let mut command = Cli::command();
    let mut path = vec![command.get_name().to_string()];
    for arg in args {
        let Some(sub) = command.find_subcommand(&arg).cloned() else {
            continue;
        };
        path.push(sub.get_name().to_string());
        command = sub;
    }
    let choices: Vec<&str> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    let path = path.join(" ");
    format!(
        "`{path}` needs a subcommand: {} (see `{path} --help`)",
        choices.join(", ")
    )
}

fn run(cli: Cli) -> Result<(), CliError> {
    // These only describe the command line: no configuration is read, so a broken one
    // cannot stand in their way.
    match &cli.command {
        Command::Completions(args) => return completions::run(args),
        Command::Man(args) => return man::run(args),
        // A client of a running server: no configuration, no database.
        Command::Bench(args) => return bench::run(args),
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.server.data_dir = dir;
    }
    crate::db::datadir::refuse_foreign_as_root(&config.server.data_dir).map_err(CliError::usage)?;
    if let Command::Serve(args) = &cli.command {
        args.apply(&mut config);
    } else if std::env::var_os("RUST_LOG").is_none() {
        // Short commands print their own results; keep the logs to warnings and errors.
        config.log.level = "warn".into();
    }
    config.validate()?;
    // The console owns the terminal: a log line on it would tear the screen.
    if !matches!(cli.command, Command::Tui(_)) {
        crate::telemetry::init(&config.log);
    }
    // Read a password before listening for signals: at the prompt, Ctrl-C must still simply
    // end chatd (nothing has been started yet).
    let password = match &cli.command {
        Command::User(args) => user::read_password_for(&args.action)?,
        Command::Tui(args) => tui::read_password_for(args)?,
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        // First, before the embedded cluster can be started: from here on a Ctrl-C or SIGTERM
        // is handled by us, and the cluster is stopped on the way out.
        let signals = Signals::install().map_err(|e| CliError::failure(format!("cannot listen for signals: {e}")))?;
        match cli.command {
            Command::Serve(_) => serve::run(config, signals).await,
            Command::Migrate(args) => migrate::run(config, args, signals).await,
            Command::User(args) => user::run(config, args, password, signals).await,
            Command::Room(args) => room::run(config, args, signals).await,
            Command::Audit(args) => audit::run(config, args, signals).await,
            Command::Tui(args) => tui::run(config, args, password, signals).await,
            // Handled above, before the configuration was read.
            Command::Completions(_) | Command::Man(_) | Command::Bench(_) => Ok(()),
        }
    })
}

/// Runs a short command against the database: opens it, runs `work` until it is done or a
/// signal arrives, and closes the database on every path — success, error, signal or even a
/// panic in `work` — so the embedded cluster never outlives its last user.
pub(crate) async fn with_database(
    config: &Config,
    signals: &mut Signals,
    work: impl AsyncFnOnce(&Database) -> Result<(), CliError>,
) -> Result<(), CliError> {
    use futures_util::FutureExt as _;
    // Opening is not interrupted half-way (a cluster could be left starting with nobody to
    // stop it); a signal that arrives meanwhile is seen right after.
    let database = Database::open(config).await?;
    let result = match signals.pending() {
        Some(signal) => Err(interrupted(signal)),
        None => {
            let work = std::panic::AssertUnwindSafe(work(&database)).catch_unwind();
            tokio::select! {
                result = work => result.unwrap_or_else(|_| Err(CliError::failure("internal error (see above)"))),
                signal = signals.recv() => Err(interrupted(signal)),
            }
        }
    };
    database.close().await;
    result
}

/// Administration commands (`user`, `room`) work on an existing installation: a data dir that
/// does not exist is a mistyped `--data-dir`, not a request for a new, empty cluster.
pub(crate) fn require_installation(config: &Config) -> Result<(), CliError> {
    let dir = &config.server.data_dir;
    if config.database_url().is_none() && !dir.exists() {
        return Err(CliError::failure(format!(
            "data directory {} does not exist: check --data-dir (`chatd serve` or `chatd migrate` creates one)",
            dir.display()
        )));
    }
    Ok(())
}

fn interrupted(signal: &str) -> CliError {
    CliError::failure(format!("interrupted by {signal}; nothing more was done"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
