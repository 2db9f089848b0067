//! Rooms: create, list, read, edit, archive, delete; and direct conversations.

use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::access::{self, Action};
use super::mentions;
use super::messages::MessageView;
use super::types::{name_key, RoomName, Topic};
use super::{room_not_found, Actor, Chat, Page, Role, Visibility, ROOMS_LIMIT};
use crate::bus::{self, Event};
use crate::db::audit::{self, AuditAction, Entry};
use crate::db::rooms::{self, NewRoom, RoomChange, RoomCursor, RoomFilter, RoomSummary};
use crate::error::{Error, Result};
use crate::page;

/// A room as a client sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoomView {
    pub id: Uuid,
    /// `null` for direct rooms.
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub topic: Option<String>,
    pub visibility: Visibility,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub archived_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The seq of the newest message (0: none yet).
    pub last_seq: i64,
    pub member_count: i64,
    /// The caller's role; `null` when not a member.
    #[schema(required = true)]
    pub my_role: Option<Role>,
    /// Messages by others after the caller's read marker; `null` when not a member.
    #[schema(required = true)]
    pub unread_count: Option<i64>,
    /// The newest message that is not deleted.
    #[schema(required = true)]
    pub last_message: Option<MessageView>,
    /// For direct rooms, the two members' usernames; `null` otherwise.
    #[schema(required = true)]
    pub direct_members: Option<Vec<String>>,
    /// Mentions of the caller after their read marker, in messages not deleted (capped like
    /// `unread_count`); `null` when not a member.
    #[schema(required = true)]
    pub mention_count: Option<i64>,
}

impl TryFrom<RoomSummary> for RoomView {
    type Error = Error;
    fn try_from(s: RoomSummary) -> Result<Self> {
        Ok(Self {
            id: s.room.id,
            name: s.room.name,
            topic: s.room.topic,
            visibility: s.room.visibility.parse()?,
            archived: s.room.archived_at.is_some(),
            archived_at: s.room.archived_at,
            created_at: s.room.created_at,
            updated_at: s.room.updated_at,
            last_seq: s.room.last_seq,
            member_count: s.member_count,
            my_role: s.role.as_deref().map(str::parse).transpose()?,
            unread_count: s.unread_count,
            last_message: s.last_message.map(MessageView::from),
            direct_members: s.direct_members,
            mention_count: None,
        })
    }
}

/// `PATCH /rooms/{id}`: absent fields stay; an empty or `null` topic clears it.
#[derive(Debug, Default, Clone)]
pub struct RoomUpdate {
    pub name: Option<String>,
    pub topic: Option<Option<String>>,
    pub visibility: Option<String>,
}

/// Filters of `GET /rooms`.
#[derive(Debug, Default, Clone)]
pub struct RoomQuery {
    pub mine: bool,
    pub include_archived: bool,
    pub q: Option<String>,
}

fn name_taken(name: &str) -> Error {
    Error::conflict("room_name_taken", format!("a room named '{name}' already exists"))
}

impl Chat {
    /// Creates a public or private room. A user creating it becomes its owner; the operator
    /// names an owner or none.
    pub async fn create_room(
        &self,
        actor: &Actor,
        name: &str,
        topic: Option<&str>,
        visibility: Option<&str>,
        owner: Option<&str>,
    ) -> Result<RoomView> {
        let name = RoomName::parse(name)?;
        let topic = topic.map(Topic::parse).transpose()?.and_then(Topic::into_inner);
        let visibility = visibility
            .map(Visibility::parse_settable)
            .transpose()?
            .unwrap_or(Visibility::Public);
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let owner = match (actor, owner) {
            (Actor::User { id, .. }, _) => Some(*id),
            (Actor::Operator, Some(username)) => Some(self.active_user(&tx, actor, username).await?.id),
            (Actor::Operator, None) => None,
        };
        let id = rooms::insert(
            &tx,
            &NewRoom {
                name: Some((name.as_str(), name.key())),
                topic: topic.as_deref(),
                visibility: visibility.as_str(),
                direct_key: None,
                created_by: owner,
            },
        )
        .await?
        .ok_or_else(|| name_taken(name.as_str()))?;
        if let Some(owner) = owner {
            rooms::add_member(&tx, id, owner, Role::Owner.as_str()).await?;
        }
        let view = room_view(&tx, actor, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// One room, as `actor` sees it.
    pub async fn room(&self, actor: &Actor, room_id: Uuid) -> Result<RoomView> {
        room_view(&*self.db.conn().await?, actor, room_id).await
    }

    /// `room_not_found` unless the actor may see the room (public, or they are a member).
    pub async fn check_visible(&self, actor: &Actor, room_id: Uuid) -> Result<()> {
        access::load(&*self.db.conn().await?, actor, room_id, false)
            .await
            .map(drop)
    }

    /// Public rooms and the actor's rooms (`mine`: only the latter), by name, then direct rooms.
    pub async fn rooms(
        &self,
        actor: &Actor,
        query: &RoomQuery,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<RoomView>> {
        let limit = ROOMS_LIMIT.apply(limit)?;
        let q = page::search_query(query.q.as_deref())?;
        let filter = RoomFilter {
            mine: query.mine,
            include_archived: query.include_archived,
            query: q.map(name_key),
            room: None,
        };
        let after = cursor.map(decode_cursor).transpose()?;
        let conn = self.db.conn().await?;
        let rows = rooms::list(&*conn, actor.user_id(), &filter, after.as_ref(), limit + 1).await?;
        let mut page = Page::from_rows(rows, limit, cursor_key, RoomView::try_from)?;
        mentions::fill_rooms(&*conn, actor.user_id(), &mut page.items).await?;
        decorate_last_messages(&*conn, actor, &mut page.items).await?;
        Ok(page)
    }

    /// Renames, re-topics or changes the visibility of a room (owner and admins).
    pub async fn update_room(&self, actor: &Actor, room_id: Uuid, update: RoomUpdate) -> Result<RoomView> {
        let name = update.name.as_deref().map(RoomName::parse).transpose()?;
        let topic = update
            .topic
            .map(|t| t.as_deref().map(Topic::parse).transpose())
            .transpose()?
            .map(|t| t.and_then(Topic::into_inner));
        let visibility = update
            .visibility
            .as_deref()
            .map(Visibility::parse_settable)
            .transpose()?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let before = access::for_change(&tx, actor, room_id, Action::Moderate).await?.room;
        let change = RoomChange {
            name: name.as_ref().map(|n| (n.as_str().to_string(), n.key().to_string())),
            topic,
            visibility: visibility.map(|v| v.as_str().to_string()),
        };
        let unchanged = change.name.is_none() && change.topic.is_none() && change.visibility.is_none();
        if !unchanged && !rooms::update(&tx, room_id, &change).await? {
            let name = name.as_ref().map(RoomName::as_str).unwrap_or_default();
            return Err(name_taken(name));
        }
        if !unchanged {
            bus::notify(&tx, &Event::RoomChanged { room_id }).await?;
            let details = room_changes(&before, &change);
            if !details.is_empty() {
                let entry = Entry {
                    actor: actor.user_id(),
                    room: Some(room_id),
                    details: Some(details.into()),
                    ..Entry::default()
                };
                audit::record(&tx, AuditAction::RoomUpdated, &entry).await?;
            }
        }
        let view = room_view(&tx, actor, room_id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Archives a room (owner): read-only from now on, history kept.
    pub async fn archive_room(&self, actor: &Actor, room_id: Uuid) -> Result<()> {
        self.archive_room_recorded_as(actor, room_id, actor.user_id()).await
    }

    /// Archives a room as `actor` may, recorded as done by `recorded` (a server administrator
    /// acting with the operator's powers; `None`: the operator).
    pub async fn archive_room_recorded_as(&self, actor: &Actor, room_id: Uuid, recorded: Option<Uuid>) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::load(&tx, actor, room_id, true).await?;
        room.require(Action::Own)?;
        room.writable()?;
        rooms::archive(&tx, room_id).await?;
        bus::notify(&tx, &Event::RoomChanged { room_id }).await?;
        let entry = Entry {
            actor: recorded,
            room: Some(room_id),
            ..Entry::default()
        };
        audit::record(&tx, AuditAction::RoomArchived, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a room and all its history for good. Only the operator can.
    pub async fn delete_room(&self, room_id: Uuid) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        // Recorded first, while the room's name can still be read; rolled back with the rest
        // if there is no such room.
        let entry = Entry {
            room: Some(room_id),
            ..Entry::default()
        };
        audit::record(&tx, AuditAction::RoomDeleted, &entry).await?;
        if !rooms::delete(&tx, room_id).await? {
            return Err(room_not_found());
        }
        bus::notify(&tx, &Event::RoomDeleted { room_id }).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A room by its id, or (for the operator's convenience) by its name.
    pub async fn resolve_room(&self, name_or_id: &str) -> Result<Uuid> {
        if let Ok(id) = Uuid::parse_str(name_or_id) {
            return Ok(id);
        }
        let name = RoomName::parse(name_or_id).map_err(|_| room_not_found())?;
        rooms::id_by_name_key(&*self.db.conn().await?, name.key())
            .await?
            .ok_or_else(|| Error::not_found("room_not_found", format!("no room named '{name_or_id}'")))
    }

    /// The direct room between the actor and `username`, created on first use. The flag says
    /// whether it was created now.
    pub async fn direct_room(&self, actor: &Actor, username: &str) -> Result<(RoomView, bool)> {
        let Actor::User { id: me, .. } = actor else {
            return Err(Error::invalid("invalid_actor", "direct rooms are between two users"));
        };
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let peer = self.active_user(&tx, actor, username).await?;
        if peer.id == *me {
            return Err(Error::invalid(
                "cannot_dm_self",
                "a direct conversation needs another user",
            ));
        }
        let (a, b) = if *me < peer.id { (*me, peer.id) } else { (peer.id, *me) };
        let key = format!("{a}:{b}");
        let inserted = rooms::insert(
            &tx,
            &NewRoom {
                name: None,
                topic: None,
                visibility: Visibility::Direct.as_str(),
                direct_key: Some(&key),
                created_by: Some(*me),
            },
        )
        .await?;
        let id = match inserted {
            Some(id) => {
                for user in [a, b] {
                    rooms::add_member(&tx, id, user, Role::Member.as_str()).await?;
                }
                for (user, name) in [(*me, actor.username()), (peer.id, peer.username.as_str())] {
                    super::members::joined(&tx, id, user, name, Role::Member).await?;
                }
                id
            }
            // It exists (a concurrent creator's insert is waited for, then seen here).
            None => rooms::id_by_direct_key(&tx, &key).await?.ok_or_else(room_not_found)?,
        };
        let view = room_view(&tx, actor, id).await?;
        tx.commit().await?;
        Ok((view, inserted.is_some()))
    }
}

/// One room as `actor` sees it, read on `c` — inside the caller's transaction when there is
/// one, so a change is answered with what it wrote (not what a later change left), and on the
/// connection already held (a second one from the pool could wait on a pool it is exhausting).
pub(super) async fn room_view(c: &impl GenericClient, actor: &Actor, room_id: Uuid) -> Result<RoomView> {
    access::load(c, actor, room_id, false).await?.require(Action::Read)?;
    let filter = RoomFilter {
        include_archived: true,
        room: Some(room_id),
        ..RoomFilter::default()
    };
    // The access check passed, so the listing shows the room.
    let row = rooms::list(c, actor.user_id(), &filter, None, 1)
        .await?
        .pop()
        .ok_or_else(room_not_found)?;
    let mut view = [RoomView::try_from(row)?];
    mentions::fill_rooms(c, actor.user_id(), &mut view).await?;
    decorate_last_messages(c, actor, &mut view).await?;
    let [view] = view;
    Ok(view)
}

/// The rooms' last messages with their parent and reactions, as history shows them.
async fn decorate_last_messages(c: &impl GenericClient, actor: &Actor, views: &mut [RoomView]) -> Result<()> {
    let with_last: Vec<usize> = (0..views.len()).filter(|&i| views[i].last_message.is_some()).collect();
    let mut last: Vec<MessageView> = with_last.iter().filter_map(|&i| views[i].last_message.take()).collect();
    super::replies::decorate(c, actor.user_id(), &mut last).await?;
    for (i, m) in with_last.into_iter().zip(last) {
        views[i].last_message = Some(m);
    }
    Ok(())
}

/// What an update changes, field by field (`{"name": {"from": …, "to": …}, …}`); empty when
/// every value given is the one the room already has.
fn room_changes(before: &rooms::RoomRecord, change: &RoomChange) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let mut note = |field: &str, from: Option<&str>, to: Option<&str>| {
        if from != to {
            out.insert(field.into(), serde_json::json!({ "from": from, "to": to }));
        }
    };
    if let Some((name, _)) = &change.name {
        note("name", before.name.as_deref(), Some(name));
    }
    if let Some(topic) = &change.topic {
        note("topic", before.topic.as_deref(), topic.as_deref());
    }
    if let Some(visibility) = &change.visibility {
        note("visibility", Some(&before.visibility), Some(visibility));
    }
    out
}

/// A room cursor's key: `0|1` (named or direct), the id, then the name key.
fn cursor_key(s: &RoomSummary) -> String {
    let direct = s.room.visibility == Visibility::Direct.as_str();
    format!("{}:{}:{}", u8::from(direct), s.room.id, s.name_key)
}

fn decode_cursor(cursor: &str) -> Result<RoomCursor> {
    let bad = page::invalid_cursor;
    let text = page::decode(cursor)?;
    let mut parts = text.splitn(3, ':');
    let direct = match parts.next() {
        Some("0") => false,
        Some("1") => true,
        _ => return Err(bad()),
    };
    let id = parts.next().and_then(|p| Uuid::parse_str(p).ok()).ok_or_else(bad)?;
    let name_key = parts.next().ok_or_else(bad)?.to_string();
    Ok(RoomCursor { direct, name_key, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = decode_cursor(&page::encode("0:9b2f1c1e-8a3d-4e7b-9b71-000000000001:a:b")).unwrap();
        assert!(!c.direct);
        assert_eq!(c.name_key, "a:b");
        for bad in ["", "!!", &page::encode("2:x:y"), &page::encode("1:not-a-uuid:k")] {
            assert_eq!(decode_cursor(bad).unwrap_err().code(), "invalid_cursor", "{bad}");
        }
    }
}
