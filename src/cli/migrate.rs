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
    /// List applied and pending migrations (exit 0 either way)
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
            for s in migrate::status(&conn, &migrations).await? {
                match s.applied_at {
                    Some(at) => print(format_args!(
                        "applied  {}  {}",
                        s.migration.label(),
                        at.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    ))?,
                    None => print(format_args!("pending  {}", s.migration.label()))?,
                }
            }
        }
    }
    Ok(())
}
