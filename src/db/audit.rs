//! The `audit_log` table: every moderation and admin action, with who did it, to whom, where,
//! why and when. Written in the transaction that makes the change, so a change is never without
//! its record (and a rolled-back one leaves none). Names are copied at the time of the action.

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// What was done. Stored, sent and parsed as its snake_case name (`as_str`, `FromStr` and
/// `VARIANTS` derived by strum, serde by serde: one name rule for both).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
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

/// A row of `audit_log`.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub at: time::OffsetDateTime,
    pub action: String,
    pub actor_name: String,
    pub room_id: Option<Uuid>,
    pub room_name: Option<String>,
    pub target_name: Option<String>,
    pub reason: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// Which entries a listing shows; every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub room_id: Option<Uuid>,
    /// A room by its name as recorded (so a deleted room is still found), without regard to case.
    pub room_name: Option<String>,
    /// The actor's or the target's name as recorded (`operator` for the operator).
    pub user: Option<String>,
    pub action: Option<AuditAction>,
    pub since: Option<time::OffsetDateTime>,
    pub until: Option<time::OffsetDateTime>,
}

/// Up to `limit` entries older than entry `before`, newest first.
pub async fn list(
    c: &impl GenericClient,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRecord>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id, at, action, actor_name, room_id, room_name, target_name, reason, details \
             FROM audit_log \
             WHERE ($1::uuid IS NULL OR room_id = $1) \
               AND ($2::text IS NULL OR lower(room_name) = lower($2)) \
               AND ($3::text IS NULL OR actor_name = $3 OR target_name = $3) \
               AND ($4::text IS NULL OR action = $4) \
               AND ($5::timestamptz IS NULL OR at >= $5) \
               AND ($6::timestamptz IS NULL OR at <= $6) \
               AND ($7::bigint IS NULL OR id < $7) \
             ORDER BY id DESC LIMIT $8",
            &[
                &filter.room_id,
                &filter.room_name,
                &filter.user,
                &filter.action.map(AuditAction::as_str),
                &filter.since,
                &filter.until,
                &before,
                &limit,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditRecord {
            id: r.get(0),
            at: r.get(1),
            action: r.get(2),
            actor_name: r.get(3),
            room_id: r.get(4),
            room_name: r.get(5),
            target_name: r.get(6),
            reason: r.get(7),
            details: r.get(8),
        })
        .collect())
}
