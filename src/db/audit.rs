//! The `audit_log` table: every moderation and admin action, with who did it, to whom, where,
//! why and when. Written in the transaction that makes the change, so a change is never without
//! its record (and a rolled-back one leaves none). Names are copied at the time of the action.

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// What was done. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    RoleChanged,
    MemberAdded,
    MemberKicked,
    MemberBanned,
    MemberUnbanned,
    MessageDeleted,
    RoomUpdated,
    RoomArchived,
    RoomDeleted,
    InviteCreated,
    InviteRevoked,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    AdminGranted,
    AdminRevoked,
    PasswordReset,
    SessionRevoked,
    ConnectionClosed,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoleChanged => "role_changed",
            Self::MemberAdded => "member_added",
            Self::MemberKicked => "member_kicked",
            Self::MemberBanned => "member_banned",
            Self::MemberUnbanned => "member_unbanned",
            Self::MessageDeleted => "message_deleted",
            Self::RoomUpdated => "room_updated",
            Self::RoomArchived => "room_archived",
            Self::RoomDeleted => "room_deleted",
            Self::InviteCreated => "invite_created",
            Self::InviteRevoked => "invite_revoked",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserDeleted => "user_deleted",
            Self::AdminGranted => "admin_granted",
            Self::AdminRevoked => "admin_revoked",
            Self::PasswordReset => "password_reset",
            Self::SessionRevoked => "session_revoked",
            Self::ConnectionClosed => "connection_closed",
        }
    }
}

/// One action to record. `actor` is `None` for the operator; the room's and the users' names
/// are read from their rows as they are now (call before a deletion).
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub actor: Option<Uuid>,
    pub room: Option<Uuid>,
    pub target: Option<Uuid>,
    pub reason: Option<&'a str>,
    pub details: Option<serde_json::Value>,
}

/// The name an operator's actions are recorded under.
pub const OPERATOR: &str = "operator";

/// Records `action`.
pub async fn record(c: &impl GenericClient, action: AuditAction, e: &Entry<'_>) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "INSERT INTO audit_log (action, actor_id, actor_name, room_id, room_name, target_id, target_name, reason, details) \
         VALUES ($1, $2, coalesce((SELECT username FROM users WHERE id = $2), $7), \
                 $3, (SELECT coalesce(name, 'direct') FROM rooms WHERE id = $3), \
                 $4, (SELECT username FROM users WHERE id = $4), $5, $6)",
        &[&action.as_str(), &e.actor, &e.room, &e.target, &e.reason, &e.details, &OPERATOR],
    )
    .await?;
    Ok(())
}
