//! `chatd migrate [up|status]`.

use clap::{Args, Subcommand};

use super::{print, with_database, CliError};
use crate::app::Signals;
use crate::config::Config;
use crate::db::{migrate, Database};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
}

#[derive(Debug, Subcommand, Clone, Copy)]
pub enum MigrateAction {
    /// Apply every pending migration (the default)
    Up,
    /// List applied and pending migrations (exit 0 whether or not some are pending; 1, after
    /// the list, if an applied migration was edited or is unknown to this binary)
    Status,
}

pub async fn run(config: Config, args: MigrateArgs, mut signals: Signals) -> Result<(), CliError> {
    let action = args.action.unwrap_or(MigrateAction::Up);
    with_database(&config, &mut signals, async |database| act(database, action).await).await
}

async fn act(database: &Database, action: MigrateAction) -> Result<(), CliError> {
    let migrations = migrate::embedded()?;
    let mut conn = database.db.conn().await?;
    match action {
        MigrateAction::Up => {
            let applied = migrate::run(&mut conn, &migrations).await?;
            if applied.is_empty() {
                let latest = migrations.last().map(|m| m.label()).unwrap_or_default();
                print(format_args!("database is up to date (latest migration: {latest})"))?;
            }
            for m in applied {
                print(format_args!("applied {}", m.label()))?;
            }
        }
        MigrateAction::Status => {
            let status = migrate::status(&conn, &migrations).await?;
            let width = status.iter().map(|s| s.label.len()).max().unwrap_or(0);
            for s in &status {
                let at = s
                    .applied_at
                    .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default();
                let (word, note) = match s.state {
                    migrate::State::Applied => ("applied", ""),
                    migrate::State::Pending => ("pending", ""),
                    migrate::State::Edited { .. } => ("EDITED ", "  (the file changed after it was applied)"),
                    migrate::State::Unknown => ("UNKNOWN", "  (applied by a newer chatd; not in this binary)"),
                };
                print(
                    format_args!("{word}  {:width$}  {at}{note}", s.label)
                        .to_string()
                        .trim_end(),
                )?;
            }
            // The list is printed either way; a state `migrate up` would refuse is a failure.
            if let Some(problem) = status.iter().find_map(|s| s.problem(&migrations)) {
                return Err(problem.into());
            }
        }
    }
    Ok(())
}
