//! Membership, roles and bans: join, leave, add, kick, promote, transfer ownership, ban.
//! Every change takes the room row's lock, so concurrent changes to one room are serialized
//! (two owners, or a last member leaving twice, cannot happen).

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{self, Action};
use super::rooms::room_view;
use super::types::BanReason;
use super::{Actor, Chat, Page, Role, RoomView, MEMBERS_LIMIT};
use crate::bus::{self, Event, LeaveReason};
use crate::db::audit::{self, AuditAction, Entry};
use crate::db::rooms;
use crate::error::{Error, Result};
use crate::page;
use crate::users::Username;
use tokio_postgres::GenericClient;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub username: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BanView {
    pub username: String,
    /// Who banned them; `null` for the operator or a deleted account.
    #[schema(required = true)]
    pub banned_by: Option<String>,
    #[schema(required = true)]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn member_not_found(name: &str) -> Error {
    Error::not_found("member_not_found", format!("'{name}' is not a member of this room"))
}

impl Chat {
    /// Joins a public room (a member joining again changes nothing).
    pub async fn join(&self, actor: &Actor, room_id: Uuid) -> Result<RoomView> {
        let Some(me) = actor.user_id() else {
            return Err(Error::invalid("invalid_actor", "only users join rooms"));
        };
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::load(&tx, actor, room_id, true).await?;
        room.require(Action::Read)?;
        if room.role.is_none() {
            room.writable()?;
            rooms::add_member(&tx, room_id, me, Role::Member.as_str()).await?;
            joined(&tx, room_id, me, actor.username(), Role::Member).await?;
        }
        tx.commit().await?;
        // Read after the commit, so the room's lock is not held for it: a crowd joining one
        // room at once queues on that lock for the membership change only.
        room_view(&*conn, actor, room_id).await
    }

    /// Leaves a room. The owner must hand ownership over first, unless they are the last
    /// member; the last member to leave archives the room.
    pub async fn leave(&self, actor: &Actor, room_id: Uuid) -> Result<()> {
        let Some(me) = actor.user_id() else {
            return Err(Error::invalid("invalid_actor", "only users leave rooms"));
        };
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::load(&tx, actor, room_id, true).await?;
        let role = room.member()?;
        room.not_direct()?;
        let last = !rooms::has_other_members(&tx, room_id, me).await?;
        if role == Role::Owner && !last {
            return Err(Error::conflict(
                "owner_must_transfer",
                "the owner must transfer ownership (PATCH /rooms/{id}/members/{username} {\"role\":\"owner\"}) before leaving",
            ));
        }
        rooms::remove_member(&tx, room_id, me).await?;
        left(&tx, room_id, me, actor.username(), LeaveReason::Left).await?;
        if last {
            rooms::archive(&tx, room_id).await?;
            bus::notify(&tx, &Event::RoomChanged { room_id }).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Members by username.
    pub async fn members(
        &self,
        actor: &Actor,
        room_id: Uuid,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<MemberView>> {
        let limit = MEMBERS_LIMIT.apply(limit)?;
        let after = cursor.map(page::decode_username).transpose()?;
        let conn = self.db.conn().await?;
        access::load(&*conn, actor, room_id, false)
            .await?
            .require(Action::Read)?;
        let rows = rooms::members(&*conn, room_id, after.as_deref(), limit + 1, None).await?;
        Page::from_rows(
            rows,
            limit,
            |r| r.username.clone(),
            |r| {
                Ok(MemberView {
                    role: r.role.parse()?,
                    username: r.username,
                    display_name: r.display_name,
                    joined_at: r.joined_at,
                })
            },
        )
    }

    /// Adds `username` to the room (owner and admins; only the owner adds admins). Adding a
    /// member again changes nothing; the flag says whether they were added now.
    pub async fn add_member(
        &self,
        actor: &Actor,
        room_id: Uuid,
        username: &str,
        role: Option<Role>,
    ) -> Result<(MemberView, bool)> {
        let role = role.unwrap_or(Role::Member);
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::for_change(&tx, actor, room_id, Action::Moderate).await?;
        match role {
            Role::Owner => {
                return Err(Error::invalid(
                    "invalid_role",
                    "add the user as a member, then transfer ownership with role 'owner'",
                ))
            }
            Role::Admin => room.require(Action::Own)?,
            Role::Member => {}
        }
        let user = self.active_user(&tx, actor, username).await?;
        let banned = rooms::ban_exists(&tx, room_id, user.id).await?;
        if banned {
            return Err(Error::conflict(
                "user_banned",
                format!("'{}' is banned from this room; lift the ban first", user.username),
            ));
        }
        let added = rooms::add_member(&tx, room_id, user.id, role.as_str()).await?;
        if added {
            joined(&tx, room_id, user.id, &user.username, role).await?;
            let details = serde_json::json!({ "role": role });
            record(
                &tx,
                actor,
                room_id,
                AuditAction::MemberAdded,
                user.id,
                None,
                Some(details),
            )
            .await?;
        }
        let view = member_view(&tx, room_id, &user.username).await?;
        tx.commit().await?;
        Ok((view, added))
    }

    /// Changes a member's role (owner). Giving someone `owner` transfers ownership: the
    /// previous owner becomes an admin.
    pub async fn set_role(&self, actor: &Actor, room_id: Uuid, username: &str, role: Role) -> Result<MemberView> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        access::for_change(&tx, actor, room_id, Action::Own).await?;
        let user = self.any_user(&tx, username).await?;
        let current: Role = rooms::role_of(&tx, room_id, user.id)
            .await?
            .ok_or_else(|| member_not_found(&user.username))?
            .parse()?;
        if current != role {
            if current == Role::Owner {
                return Err(Error::conflict(
                    "owner_must_transfer",
                    "a room keeps its owner: give another member the role 'owner' instead",
                ));
            }
            // One entry per change: a transfer names the previous owner (now an admin) in it.
            let mut details = serde_json::json!({ "from": current, "to": role });
            if role == Role::Owner {
                if let Some(previous) = rooms::owner(&tx, room_id).await? {
                    rooms::set_role(&tx, room_id, previous, Role::Admin.as_str()).await?;
                    if let Some(was) = crate::db::users::by_id(&tx, previous).await? {
                        role_changed(&tx, room_id, previous, &was.username, Role::Admin).await?;
                        details["previous_owner"] = was.username.into();
                    }
                }
            }
            rooms::set_role(&tx, room_id, user.id, role.as_str()).await?;
            role_changed(&tx, room_id, user.id, &user.username, role).await?;
            record(
                &tx,
                actor,
                room_id,
                AuditAction::RoleChanged,
                user.id,
                None,
                Some(details),
            )
            .await?;
        }
        let view = member_view(&tx, room_id, &user.username).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Removes a member (owner and admins, on members below them). Removing yourself is leaving.
    pub async fn kick(&self, actor: &Actor, room_id: Uuid, username: &str) -> Result<()> {
        if let Actor::User { username: me, .. } = actor {
            if Username::parse(username).is_ok_and(|u| u.as_str() == me) {
                return self.leave(actor, room_id).await;
            }
        }
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::for_change(&tx, actor, room_id, Action::Moderate).await?;
        let user = self.any_user(&tx, username).await?;
        let target: Role = rooms::role_of(&tx, room_id, user.id)
            .await?
            .ok_or_else(|| member_not_found(&user.username))?
            .parse()?;
        room.outranks(Some(target))?;
        rooms::remove_member(&tx, room_id, user.id).await?;
        left(&tx, room_id, user.id, &user.username, LeaveReason::Kicked).await?;
        record(&tx, actor, room_id, AuditAction::MemberKicked, user.id, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bans `username` (removing them if a member); banning again updates the reason. The
    /// flag says whether the ban is new.
    pub async fn ban(
        &self,
        actor: &Actor,
        room_id: Uuid,
        username: &str,
        reason: Option<&str>,
    ) -> Result<(BanView, bool)> {
        let reason = reason
            .map(BanReason::parse)
            .transpose()?
            .and_then(BanReason::into_inner);
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::for_change(&tx, actor, room_id, Action::Moderate).await?;
        let user = self.any_user(&tx, username).await?;
        if actor.user_id() == Some(user.id) {
            return Err(Error::invalid("cannot_ban_self", "you cannot ban yourself"));
        }
        let target = rooms::role_of(&tx, room_id, user.id)
            .await?
            .map(|r| r.parse::<Role>())
            .transpose()?;
        room.outranks(target)?;
        let removed = rooms::remove_member(&tx, room_id, user.id).await?;
        let created = rooms::ban(&tx, room_id, user.id, actor.user_id(), reason.as_deref()).await?;
        // A new ban ends a member's place and a public room's reader's subscription alike.
        if removed || created {
            left(&tx, room_id, user.id, &user.username, LeaveReason::Banned).await?;
        }
        // Banning again (a new reason) is recorded too, marked as an update.
        let details = (!created).then(|| serde_json::json!({ "updated": true }));
        record(
            &tx,
            actor,
            room_id,
            AuditAction::MemberBanned,
            user.id,
            reason.as_deref(),
            details,
        )
        .await?;
        let ban = rooms::bans(&tx, room_id, None, 1, Some(user.id))
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("a ban just stored is missing".into()))?;
        tx.commit().await?;
        Ok((BanView::from(ban), created))
    }

    /// Lifts a ban (owner and admins).
    pub async fn unban(&self, actor: &Actor, room_id: Uuid, username: &str) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        access::for_change(&tx, actor, room_id, Action::Moderate).await?;
        let user = self.any_user(&tx, username).await?;
        if !rooms::unban(&tx, room_id, user.id).await? {
            return Err(Error::not_found(
                "ban_not_found",
                format!("'{}' is not banned from this room", user.username),
            ));
        }
        record(&tx, actor, room_id, AuditAction::MemberUnbanned, user.id, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The ban list (owner and admins), by username.
    pub async fn bans(
        &self,
        actor: &Actor,
        room_id: Uuid,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<BanView>> {
        let limit = MEMBERS_LIMIT.apply(limit)?;
        let after = cursor.map(page::decode_username).transpose()?;
        let conn = self.db.conn().await?;
        access::load(&*conn, actor, room_id, false)
            .await?
            .require(Action::Moderate)?;
        let rows = rooms::bans(&*conn, room_id, after.as_deref(), limit + 1, None).await?;
        Page::from_rows(rows, limit, |r| r.username.clone(), |r| Ok(BanView::from(r)))
    }
}

pub(super) async fn joined(
    c: &impl GenericClient,
    room_id: Uuid,
    user_id: Uuid,
    username: &str,
    role: Role,
) -> Result<()> {
    let event = Event::MemberJoined {
        room_id,
        user_id,
        username: username.to_string(),
        role,
    };
    Ok(bus::notify(c, &event).await?)
}

async fn left(c: &impl GenericClient, room_id: Uuid, user_id: Uuid, username: &str, reason: LeaveReason) -> Result<()> {
    let event = Event::MemberLeft {
        room_id,
        user_id,
        username: username.to_string(),
        reason,
    };
    Ok(bus::notify(c, &event).await?)
}

async fn role_changed(c: &impl GenericClient, room_id: Uuid, user_id: Uuid, username: &str, role: Role) -> Result<()> {
    let event = Event::RoleChanged {
        room_id,
        user_id,
        username: username.to_string(),
        role,
    };
    Ok(bus::notify(c, &event).await?)
}

/// Records a moderation step on member `target`, in the transaction that makes it.
async fn record(
    c: &impl GenericClient,
    actor: &Actor,
    room_id: Uuid,
    action: AuditAction,
    target: Uuid,
    reason: Option<&str>,
    details: Option<serde_json::Value>,
) -> Result<()> {
    let entry = Entry {
        actor: actor.user_id(),
        room: Some(room_id),
        target: Some(target),
        reason,
        details,
    };
    Ok(audit::record(c, action, &entry).await?)
}

/// One member, read inside the caller's transaction (see `rooms::room_view` for why).
async fn member_view(c: &impl GenericClient, room_id: Uuid, username: &str) -> Result<MemberView> {
    let rows = rooms::members(c, room_id, None, 1, Some(username)).await?;
    let r = rows.into_iter().next().ok_or_else(|| member_not_found(username))?;
    Ok(MemberView {
        role: r.role.parse()?,
        username: r.username,
        display_name: r.display_name,
        joined_at: r.joined_at,
    })
}

impl From<rooms::BanRecord> for BanView {
    fn from(r: rooms::BanRecord) -> Self {
        Self {
            username: r.username,
            banned_by: r.banned_by,
            reason: r.reason,
            created_at: r.created_at,
        }
    }
}
