//! Who may do what in a room — the one place these rules live.
//!
//! | actor                      | read | post, edit own, mark read | moderate | own |
//! |----------------------------|------|---------------------------|----------|-----|
//! | owner                      | yes  | yes                       | yes      | yes |
//! | admin                      | yes  | yes                       | yes      | 403 |
//! | member                     | yes  | yes                       | 403      | 403 |
//! | non-member, public room    | yes  | 403 `not_a_member`        | 403      | 403 |
//! | banned, public room        | 403 `banned` for everything                     ||||
//! | non-member, private/direct | 404 `room_not_found` for everything, as if no room ||||
//! | operator (`chatd room`)    | yes  | —                         | yes      | yes |
//!
//! "Moderate" is editing the room, adding, kicking and banning members, deleting others'
//! messages and reading the ban list; "own" is archiving the room and changing roles. Archived
//! rooms refuse every write with 409 `room_archived` (`writable`).

use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::{room_not_found, Actor, Role, Visibility};
use crate::db::rooms::{self, RoomAccess, RoomRecord};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Read,
    Post,
    Moderate,
    Own,
}

/// A room as the actor stands towards it.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub room: RoomRecord,
    pub visibility: Visibility,
    pub role: Option<Role>,
    pub banned: bool,
    pub operator: bool,
}

/// Loads `room_id` for `actor`; with `lock`, holds the room row until the transaction ends.
/// A room the actor may not see is `room_not_found`.
pub(crate) async fn load(c: &impl GenericClient, actor: &Actor, room_id: Uuid, lock: bool) -> Result<Access> {
    let access = read(c, actor, room_id).await?;
    if !lock {
        return Ok(access);
    }
    // Only someone the room is visible to waits for its lock, so outsiders neither contend
    // with its members nor learn from the wait. The access is then read again: a statement's
    // snapshot is taken before it waits for a lock, so a membership, role or ban read together
    // with the lock would describe the room as it was before the holder committed.
    rooms::lock(c, room_id).await?;
    read(c, actor, room_id).await
}

/// Loads and locks a named (not direct) room for a membership or settings change that
/// `action` allows, refusing archived rooms — the checks every moderation step starts with.
pub(crate) async fn for_change(c: &impl GenericClient, actor: &Actor, room_id: Uuid, action: Action) -> Result<Access> {
    let room = load(c, actor, room_id, true).await?;
    room.require(action)?;
    room.not_direct()?;
    room.writable()?;
    Ok(room)
}

async fn read(c: &impl GenericClient, actor: &Actor, room_id: Uuid) -> Result<Access> {
    let row = rooms::access(c, room_id, actor.user_id())
        .await?
        .ok_or_else(room_not_found)?;
    judge(actor, row)
}

/// What `actor` may do in a room, from its row; a room they may not see is not found.
pub(crate) fn judge(actor: &Actor, row: RoomAccess) -> Result<Access> {
    let access = Access {
        visibility: row.room.visibility.parse()?,
        role: row.role.as_deref().map(str::parse).transpose()?,
        banned: row.banned,
        operator: matches!(actor, Actor::Operator),
        room: row.room,
    };
    if !access.visible() {
        return Err(room_not_found());
    }
    Ok(access)
}

impl Access {
    fn visible(&self) -> bool {
        self.operator || self.role.is_some() || self.visibility == Visibility::Public
    }

    /// Checks that the actor may perform `action` (archival is checked by `writable`).
    pub fn require(&self, action: Action) -> Result<()> {
        if self.operator {
            return Ok(());
        }
        if self.banned {
            return Err(Error::forbidden("banned", "you are banned from this room"));
        }
        let needed = match action {
            Action::Read => return Ok(()),
            Action::Post => {
                self.member()?;
                return Ok(());
            }
            Action::Moderate => Role::Admin,
            Action::Own => Role::Owner,
        };
        if self.role < Some(needed) {
            return Err(Error::forbidden(
                "forbidden",
                format!(
                    "only the room's {} may do this",
                    if needed == Role::Owner {
                        "owner"
                    } else {
                        "owner and admins"
                    }
                ),
            ));
        }
        Ok(())
    }

    /// The actor's role; `not_a_member` if they have none.
    pub fn member(&self) -> Result<Role> {
        self.role
            .ok_or_else(|| Error::forbidden("not_a_member", "you are not a member of this room; join it first"))
    }

    /// Archived rooms are read-only.
    pub fn writable(&self) -> Result<()> {
        if self.room.archived_at.is_some() {
            return Err(Error::conflict("room_archived", "the room is archived and read-only"));
        }
        Ok(())
    }

    /// Membership of a direct room is fixed: two people, no roles, no moderation.
    pub fn not_direct(&self) -> Result<()> {
        if self.visibility == Visibility::Direct {
            return Err(Error::conflict(
                "direct_room",
                "direct conversations have exactly two members and no moderation",
            ));
        }
        Ok(())
    }

    /// May the actor remove (kick or ban) someone holding `target`? Only someone above them.
    pub fn outranks(&self, target: Option<Role>) -> Result<()> {
        // Not even the operator removes or bans an owner: a room always keeps one.
        if self.operator && target == Some(Role::Owner) {
            return Err(Error::conflict(
                "owner_must_transfer",
                "the owner cannot be removed or banned: make another member owner first",
            ));
        }
        if self.operator || self.role > target {
            return Ok(());
        }
        Err(Error::forbidden(
            "forbidden",
            "you can only act on members whose role is below yours",
        ))
    }
}
