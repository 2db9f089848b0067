//! `chatd audit`: the audit log, read straight from the database — every moderation and
//! administration action, newest first, filtered by room, user, action and time.

use std::sync::Arc;

use clap::Args;

use super::{print, require_installation, with_database, CliError};
use crate::app::{prepare_schema, Signals};
use crate::chat::audit::{AuditEntry, AuditQuery};
use crate::chat::{Chat, Limit};
use crate::config::Config;
use crate::db::audit::Filter;

/// How many entries one command prints at most.
const LIMIT: Limit = Limit {
    default: 50,
    max: 10_000,
};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this room (its id, or its name as recorded: deleted rooms too)
    #[arg(long, value_name = "NAME|ID")]
    pub room: Option<String>,
    /// Only entries this user did or that were done to them (`operator`: the operator's)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only this action: role_changed, member_kicked, member_banned, user_disabled and so on
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only entries at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only entries at or before this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show at most this many entries, the newest [default: 50, at most 10000]
    #[arg(long, value_name = "N")]
    pub limit: Option<i64>,
    /// Print one JSON object per line instead of a table
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: Config, args: AuditArgs, mut signals: Signals) -> Result<(), CliError> {
    // The filters are checked before the database is opened: a typo costs nothing.
    let filter = AuditQuery {
        room: args.room,
        user: args.user,
        action: args.action,
        since: args.since,
        until: args.until,
    }
    .parse()?;
    let limit = LIMIT.apply(args.limit)?;
    require_installation(&config)?;
    let config = Arc::new(config);
    with_database(&config.clone(), &mut signals, async |database| {
        prepare_schema(&database.db, config.database.auto_migrate).await?;
        let chat = Chat::new(database.db.clone(), crate::bus::Bus::detached(), &config.limits);
        show(&chat, &filter, limit, args.json).await
    })
    .await
}

async fn show(chat: &Chat, filter: &Filter, limit: i64, json: bool) -> Result<(), CliError> {
    let entries = chat.audit_log(filter, None, limit).await?.items;
    if json {
        for e in &entries {
            print(serde_json::to_string(e).map_err(|e| CliError::failure(e.to_string()))?)?;
        }
        return Ok(());
    }
    print(format_args!(
        "{:>6}  {:<20}  {:<17}  {:<20}  {:<20}  {:<24}  REASON / DETAILS",
        "ID", "AT", "ACTION", "ACTOR", "TARGET", "ROOM"
    ))?;
    for e in &entries {
        print(line(e))?;
    }
    Ok(())
}

/// One entry as a table row.
fn line(e: &AuditEntry) -> String {
    let at =
        e.at.replace_nanosecond(0)
            .unwrap_or(e.at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    let mut notes: Vec<String> = Vec::new();
    if let Some(reason) = &e.reason {
        notes.push(format!("\"{reason}\""));
    }
    if let Some(details) = &e.details {
        notes.push(details.to_string());
    }
    format!(
        "{:>6}  {:<20}  {:<17}  {:<20}  {:<20}  {:<24}  {}",
        e.id,
        at,
        e.action.as_str(),
        e.actor,
        e.target.as_deref().unwrap_or("-"),
        e.room_name.as_deref().unwrap_or("-"),
        if notes.is_empty() { "-".into() } else { notes.join(" ") }
    )
    .trim_end()
    .to_owned()
}
