//! `chatd room …`: room administration straight against the database, through the same chat
//! service the API uses, acting as the operator (who may do what a room's owner may, in any
//! room). Rooms are named by name or by id (direct rooms have only an id).

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{print, require_installation, with_database, CliError};
use crate::app::{prepare_schema, Signals};
use crate::chat::{Actor, Chat, Role, RoomView};
use crate::config::Config;
use crate::db::Database;

#[derive(Debug, Args)]
pub struct RoomArgs {
    #[command(subcommand)]
    pub action: RoomAction,
}

/// A role that can be given when adding a member.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AddRole {
    Admin,
    Member,
}

/// Any role; `owner` transfers ownership.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AnyRole {
    Owner,
    Admin,
    Member,
}

#[derive(Debug, Subcommand)]
pub enum RoomAction {
    /// Create a room (public unless --private)
    Create {
        /// Room name: 1-64 characters, unique case-insensitively
        name: String,
        /// Make the room private: invisible to non-members, members are added by its owner/admins
        #[arg(long)]
        private: bool,
        /// The room's owner [default: none; set one later with set-role]
        #[arg(long, value_name = "USERNAME")]
        owner: Option<String>,
        /// The room's topic (up to 250 characters)
        #[arg(long, value_name = "TEXT")]
        topic: Option<String>,
    },
    /// List every room: public, private and direct, archived ones included
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one room and its members
    Show {
        /// The room's name or id
        room: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Archive a room: read-only from now on, history kept
    Archive {
        /// The room's name or id
        room: String,
    },
    /// Delete a room and all of its messages, permanently
    Delete {
        /// The room's name or id
        room: String,
        /// Confirm the permanent deletion (required: without it nothing is deleted, exit status 2)
        #[arg(long)]
        yes: bool,
    },
    /// Add a user to a room
    AddMember {
        /// The room's name or id
        room: String,
        /// The user to add
        username: String,
        /// Their role
        #[arg(long, value_enum, default_value = "member")]
        role: AddRole,
    },
    /// Remove a user from a room
    RemoveMember {
        /// The room's name or id
        room: String,
        /// The member to remove
        username: String,
    },
    /// Change a member's role; `owner` transfers ownership (the previous owner becomes an admin)
    SetRole {
        /// The room's name or id
        room: String,
        /// The member
        username: String,
        /// The new role
        #[arg(value_enum)]
        role: AnyRole,
    },
}

pub async fn run(config: Config, args: RoomArgs, mut signals: Signals) -> Result<(), CliError> {
    if let RoomAction::Delete { yes: false, room } = &args.action {
        return Err(CliError::usage(format!(
            "deleting '{room}' removes all of its messages for good: add --yes to confirm (or archive it instead)"
        )));
    }
    require_installation(&config)?;
    let config = Arc::new(config);
    with_database(&config.clone(), &mut signals, async |database| {
        act(&config, database, args.action).await
    })
    .await
}

async fn act(config: &Config, database: &Database, action: RoomAction) -> Result<(), CliError> {
    prepare_schema(&database.db, config.database.auto_migrate).await?;
    let chat = Chat::new(database.db.clone(), crate::bus::Bus::detached(), &config.limits);
    let op = Actor::Operator;
    match action {
        RoomAction::Create {
            name,
            private,
            owner,
            topic,
        } => {
            let visibility = if private { "private" } else { "public" };
            let room = chat
                .create_room(&op, &name, topic.as_deref(), Some(visibility), owner.as_deref())
                .await?;
            print(format_args!(
                "created {} room {} ({}){}",
                visibility,
                room.name.as_deref().unwrap_or_default(),
                room.id,
                owner
                    .map(|o| format!(", owned by {}", o.to_lowercase()))
                    .unwrap_or_default()
            ))?;
        }
        RoomAction::List { json } => {
            let rooms = all_rooms(&chat).await?;
            if json {
                print(to_json(&rooms)?)?;
            } else {
                print(format_args!(
                    "{:<36}  {:<24}  {:<8}  {:>7}  {:>8}  STATUS",
                    "ID", "NAME", "KIND", "MEMBERS", "MESSAGES"
                ))?;
                for r in &rooms {
                    print(format_args!(
                        "{:<36}  {:<24}  {:<8}  {:>7}  {:>8}  {}",
                        r.id,
                        display_name(r),
                        r.visibility.as_str(),
                        r.member_count,
                        r.last_seq,
                        if r.archived { "archived" } else { "active" }
                    ))?;
                }
            }
        }
        RoomAction::Show { room, json } => {
            let id = chat.resolve_room(&room).await?;
            let view = chat.room(&op, id).await?;
            let members = all_members(&chat, id).await?;
            if json {
                let value = serde_json::json!({"room": view, "members": members});
                print(to_json(&value)?)?;
            } else {
                print(format_args!("id:        {}", view.id))?;
                print(format_args!("name:      {}", display_name(&view)))?;
                print(format_args!("topic:     {}", view.topic.as_deref().unwrap_or("-")))?;
                print(format_args!("kind:      {}", view.visibility.as_str()))?;
                print(format_args!(
                    "status:    {}",
                    if view.archived { "archived" } else { "active" }
                ))?;
                print(format_args!("messages:  {}", view.last_seq))?;
                print(format_args!("created:   {}", rfc3339(view.created_at)))?;
                print(format_args!("members:   {}", view.member_count))?;
                for m in &members {
                    print(format_args!("  {:<32}  {}", m.username, m.role))?;
                }
            }
        }
        RoomAction::Archive { room } => {
            let id = chat.resolve_room(&room).await?;
            chat.archive_room(&op, id).await?;
            print(format_args!("archived {room}; its history is kept, read-only"))?;
        }
        RoomAction::Delete { room, .. } => {
            let id = chat.resolve_room(&room).await?;
            chat.delete_room(id).await?;
            print(format_args!("deleted {room} and all of its messages"))?;
        }
        RoomAction::AddMember { room, username, role } => {
            let id = chat.resolve_room(&room).await?;
            let role = match role {
                AddRole::Admin => Role::Admin,
                AddRole::Member => Role::Member,
            };
            let (member, added) = chat.add_member(&op, id, &username, Some(role)).await?;
            if added {
                print(format_args!("added {} to {room} as {}", member.username, member.role))?;
            } else {
                print(format_args!(
                    "{} is already in {room} as {}",
                    member.username, member.role
                ))?;
            }
        }
        RoomAction::RemoveMember { room, username } => {
            let id = chat.resolve_room(&room).await?;
            chat.kick(&op, id, &username).await?;
            print(format_args!("removed {} from {room}", username.to_lowercase()))?;
        }
        RoomAction::SetRole { room, username, role } => {
            let id = chat.resolve_room(&room).await?;
            let role = match role {
                AnyRole::Owner => Role::Owner,
                AnyRole::Admin => Role::Admin,
                AnyRole::Member => Role::Member,
            };
            let member = chat.set_role(&op, id, &username, role).await?;
            print(format_args!(
                "{} is now {} of {room}",
                member.username,
                article(member.role)
            ))?;
        }
    }
    Ok(())
}

/// Every room, page by page.
async fn all_rooms(chat: &Chat) -> Result<Vec<RoomView>, CliError> {
    let query = crate::chat::RoomQuery {
        include_archived: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = chat
            .rooms(
                &Actor::Operator,
                &query,
                cursor.as_deref(),
                Some(crate::chat::ROOMS_LIMIT.max),
            )
            .await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

async fn all_members(chat: &Chat, room: uuid::Uuid) -> Result<Vec<crate::chat::MemberView>, CliError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = chat
            .members(
                &Actor::Operator,
                room,
                cursor.as_deref(),
                Some(crate::chat::MEMBERS_LIMIT.max),
            )
            .await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

fn display_name(r: &RoomView) -> String {
    match (&r.name, &r.direct_members) {
        (Some(name), _) => name.clone(),
        (None, Some(members)) => format!("(direct: {})", members.join(", ")),
        (None, None) => "-".into(),
    }
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Owner => "the owner",
        Role::Admin => "an admin",
        Role::Member => "a member",
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(|e| CliError::failure(e.to_string()))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
