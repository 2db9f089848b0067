//! The message service: post (idempotent by `client_msg_id`), history, edit, delete, read
//! markers. The REST API and the WebSocket gateway call the same functions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{self, Action};
use super::ingest::{client_msg_id_reused, Post, Receipt};
use super::mentions;
use super::reactions::Reaction;
use super::replies::{self, decorate, ReplyTo};
use super::types::{ClientMsgId, MessageBody};
use super::{Actor, Chat, Page, MESSAGES_LIMIT};
use crate::bus::{self, Event};
use crate::db::messages::{self, MessageRecord};
use crate::db::unread;
use crate::error::{Error, Result};

pub use crate::db::messages::HistoryPage;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: i64,
    /// The author's username; `null` once their account is deleted.
    #[schema(required = true)]
    pub author: Option<String>,
    /// `null` for a deleted message.
    #[schema(required = true)]
    pub body: Option<String>,
    #[schema(required = true)]
    pub client_msg_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub edited_at: Option<OffsetDateTime>,
    pub deleted: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub deleted_at: Option<OffsetDateTime>,
    /// The message this one replies to; `null` when it is not a reply.
    #[serde(default)]
    #[schema(required = true)]
    pub reply_to: Option<ReplyTo>,
    /// One entry per emoji, in the order they were first used; none on a deleted message.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The room's members the body names with `@username` (resolved when it was sent or last
    /// edited), in order of first appearance; empty for a deleted message.
    #[serde(default)]
    pub mentions: Vec<super::Mention>,
}

impl From<MessageRecord> for MessageView {
    fn from(m: MessageRecord) -> Self {
        Self {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            author: m.author,
            body: m.body,
            client_msg_id: m.client_msg_id,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted_at.is_some(),
            deleted_at: m.deleted_at,
            // Read apart (`replies::decorate`).
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
        }
    }
}

/// The caller's read marker in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadState {
    pub room_id: Uuid,
    pub last_read_seq: i64,
    pub unread_count: i64,
    /// Mentions of me after `last_read_seq` in messages not deleted (capped like
    /// `unread_count`).
    #[serde(default)]
    pub mention_count: i64,
}

pub(super) fn message_not_found(seq: i64) -> Error {
    Error::not_found("message_not_found", format!("no message with seq {seq} in this room"))
}

impl Chat {
    /// Stores a message and returns it; `false` when `client_msg_id` was already used by this
    /// author in this room, in which case the original is returned and nothing is stored.
    ///
    /// The message is committed before this returns and before anyone hears of it; then it is
    /// published to the room's live subscribers. Both are done by the room's writer (see
    /// `ingest`), so a caller that goes away (an HTTP client hanging up) cannot stop a
    /// committed message from being published.
    pub async fn post(
        &self,
        actor: &Actor,
        room_id: Uuid,
        body: &str,
        client_msg_id: Option<&str>,
        reply_to: Option<i64>,
    ) -> Result<(MessageView, bool)> {
        self.submit(actor, room_id, body, client_msg_id, reply_to)
            .await?
            .wait()
            .await
    }

    /// [`post`](Self::post) in two steps: the message is validated, charged to the sender's rate
    /// and queued for its room's writer (in the order of calls); the receipt answers once it is
    /// stored. A connection queues its messages in order without waiting for each to commit.
    pub async fn submit(
        &self,
        actor: &Actor,
        room_id: Uuid,
        body: &str,
        client_msg_id: Option<&str>,
        reply_to: Option<i64>,
    ) -> Result<Receipt> {
        let Actor::User { id: author, username } = actor else {
            return Err(Error::invalid("invalid_actor", "messages are posted by users"));
        };
        let body = MessageBody::parse(body)?;
        let client_msg_id = client_msg_id.map(ClientMsgId::parse).transpose()?;
        let reply_to = replies::parse_reply_to(reply_to)?;
        // Every well-formed attempt counts, before any database work: a flood of sends (even
        // refused ones) must cost the database nothing once over the rate.
        self.charge_send(*author)?;
        let post = Post {
            author: *author,
            username: username.clone(),
            room: room_id,
            body,
            client_msg_id,
            reply_to,
        };
        self.ingest.submit(self, post).await
    }

    /// Stores one message in a transaction of its own (what a batch falls back to).
    pub(super) async fn store(
        &self,
        actor: &Actor,
        room_id: Uuid,
        body: &MessageBody,
        client_msg_id: Option<&ClientMsgId>,
        reply_to: Option<i64>,
    ) -> Result<(MessageView, bool)> {
        let Actor::User { id: author, username } = actor else {
            return Err(Error::invalid("invalid_actor", "messages are posted by users"));
        };
        let mut conn = self.db.conn().await?;
        if let Some(cmid) = client_msg_id {
            // A retry is answered only to someone who may post here now: a kicked or banned
            // member, or an outsider to a private room, learns nothing from replaying an id.
            // An archived room still confirms what was stored before it was archived.
            access::load(&*conn, actor, room_id, false)
                .await?
                .require(Action::Post)?;
            if let Some(original) = self.original(&*conn, *author, room_id, cmid).await? {
                return Ok((original, false));
            }
        }
        let tx = conn.transaction().await?;
        // The room row's lock (taken here, kept by `next_seq`) orders concurrent senders.
        let room = access::load(&tx, actor, room_id, true).await?;
        room.require(Action::Post)?;
        room.writable()?;
        let parent = match reply_to {
            Some(r) => {
                let found = crate::db::replies::parents(&tx, &[room_id], &[r]).await?;
                Some(replies::check_parent(r, found.first())?)
            }
            None => None,
        };
        let seq = messages::next_seq(&tx, room_id).await?;
        let stored = messages::insert(
            &tx,
            room_id,
            seq,
            *author,
            body.as_str(),
            client_msg_id.map(ClientMsgId::as_str),
            reply_to,
        )
        .await?;
        let Some((id, created_at)) = stored else {
            // A concurrent retry of the same message won: give its seq back, return it.
            tx.rollback().await?;
            let cmid = client_msg_id.ok_or_else(|| Error::Internal("conflict without a client_msg_id".into()))?;
            let original = self.original(&*conn, *author, room_id, cmid).await?;
            return original
                .map(|m| (m, false))
                .ok_or_else(|| Error::Internal("idempotent original vanished".into()));
        };
        // What I write, I have read.
        messages::mark_read(&tx, room_id, *author, seq).await?;
        let mut message = MessageView {
            id,
            room_id,
            seq,
            author: Some(username.clone()),
            body: Some(body.as_str().to_string()),
            client_msg_id: client_msg_id.map(|c| c.as_str().to_string()),
            created_at,
            edited_at: None,
            deleted: false,
            deleted_at: None,
            reply_to: parent,
            reactions: Vec::new(),
            mentions: Vec::new(),
        };
        mentions::resolve_one(&tx, *author, &mut message).await?;
        self.bus.announce(&tx, [&message]).await?;
        tx.commit().await?;
        Ok((message, true))
    }

    /// The message `author` already sent with `cmid`, if any; reusing an id in another room
    /// is a client bug and is refused.
    async fn original(
        &self,
        c: &impl tokio_postgres::GenericClient,
        author: Uuid,
        room_id: Uuid,
        cmid: &ClientMsgId,
    ) -> Result<Option<MessageView>> {
        let mut original = match messages::by_client_msg_id(c, author, cmid.as_str()).await? {
            Some(m) if m.room_id != room_id => return Err(client_msg_id_reused()),
            other => other.map(MessageView::from),
        };
        decorate(c, Some(author), original.as_mut_slice()).await?;
        Ok(original)
    }

    /// A page of history: `Before(seq)` newest first, `After(seq)` oldest first.
    pub async fn history(
        &self,
        actor: &Actor,
        room_id: Uuid,
        page: HistoryPage,
        limit: Option<i64>,
    ) -> Result<Page<MessageView>> {
        let limit = MESSAGES_LIMIT.apply(limit)?;
        let conn = self.db.conn().await?;
        // The access check and the page are sent together (tokio-postgres pipelines queries
        // on one connection): one round trip instead of two. The page is read before it is
        // known to be readable, and dropped unseen when it is not.
        let (room, rows) = tokio::join!(
            access::load(&*conn, actor, room_id, false),
            messages::history(&*conn, room_id, page, limit + 1)
        );
        room?.require(Action::Read)?;
        let mut rows = rows?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|m| m.seq.to_string())
        } else {
            None
        };
        let mut items: Vec<MessageView> = rows.into_iter().map(MessageView::from).collect();
        decorate(&*conn, actor.user_id(), &mut items).await?;
        Ok(Page { items, next_cursor })
    }

    /// Edits the body of one's own message.
    pub async fn edit_message(&self, actor: &Actor, room_id: Uuid, seq: i64, body: &str) -> Result<MessageView> {
        let body = MessageBody::parse(body)?;
        let mut conn = self.db.conn().await?;
        let room = access::load(&*conn, actor, room_id, false).await?;
        room.require(Action::Post)?;
        room.writable()?;
        let (message, author) = messages::by_seq(&*conn, room_id, seq)
            .await?
            .ok_or_else(|| message_not_found(seq))?;
        if author.is_none() || author != actor.user_id() {
            return Err(Error::forbidden("forbidden", "only its author can edit a message"));
        }
        if message.deleted_at.is_some() {
            return Err(Error::conflict("message_deleted", "the message was deleted"));
        }
        let tx = conn.transaction().await?;
        messages::edit(&tx, message.id, body.as_str()).await?;
        bus::notify(&tx, &Event::MessageEdited { room_id, seq }).await?;
        // An edit names anew: whom the new body names is mentioned now, and those it names
        // for the first time hear of it.
        let newly = mentions::re_resolve(&tx, room_id, seq, actor.user_id(), body.as_str()).await?;
        if !newly.is_empty() {
            bus::notify(
                &tx,
                &Event::Mentioned {
                    room_id,
                    seq,
                    users: newly,
                },
            )
            .await?;
        }
        tx.commit().await?;
        let (edited, _) = messages::by_seq(&*conn, room_id, seq)
            .await?
            .ok_or_else(|| message_not_found(seq))?;
        let mut edited = [MessageView::from(edited)];
        decorate(&*conn, actor.user_id(), &mut edited).await?;
        let [edited] = edited;
        Ok(edited)
    }

    /// Deletes a message (its author, or the room's owner and admins): the body is removed,
    /// the seq stays as a tombstone. Deleting it again changes nothing.
    pub async fn delete_message(&self, actor: &Actor, room_id: Uuid, seq: i64) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let room = access::load(&*conn, actor, room_id, false).await?;
        room.require(Action::Read)?;
        let (message, author) = messages::by_seq(&*conn, room_id, seq)
            .await?
            .ok_or_else(|| message_not_found(seq))?;
        let own = author.is_some() && author == actor.user_id();
        room.require(if own { Action::Post } else { Action::Moderate })?;
        room.writable()?;
        if message.deleted_at.is_none() {
            let tx = conn.transaction().await?;
            messages::tombstone(&tx, message.id, actor.user_id()).await?;
            bus::notify(&tx, &Event::MessageDeleted { room_id, seq }).await?;
            if !own {
                let entry = crate::db::audit::Entry {
                    actor: actor.user_id(),
                    room: Some(room_id),
                    target: author,
                    details: Some(serde_json::json!({ "seq": seq })),
                    ..Default::default()
                };
                crate::db::audit::record(&tx, crate::db::audit::AuditAction::MessageDeleted, &entry).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// For a live subscription: `room_not_found`/`banned` unless the actor may read the room;
    /// else whether they are a member, and the room's last seq now.
    pub async fn watch(&self, actor: &Actor, room_id: Uuid) -> Result<(bool, i64)> {
        let room = access::load(&*self.db.conn().await?, actor, room_id, false).await?;
        room.require(Action::Read)?;
        Ok((room.role.is_some(), room.room.last_seq))
    }

    /// Moves my read marker forward to `seq` (never back). When it moves, my live connections
    /// on every node hear of it (`read_marker`), but `origin` — the connection (node, id) that
    /// asked, which gets the answer instead — so badges agree across devices.
    pub async fn mark_read(
        &self,
        actor: &Actor,
        room_id: Uuid,
        seq: i64,
        origin: Option<(Uuid, u64)>,
    ) -> Result<ReadState> {
        let Some(me) = actor.user_id() else {
            return Err(Error::invalid("invalid_actor", "read markers belong to users"));
        };
        let mut conn = self.db.conn().await?;
        let room = access::load(&*conn, actor, room_id, false).await?;
        room.require(Action::Read)?;
        room.member()?;
        if !(0..=room.room.last_seq).contains(&seq) {
            return Err(Error::invalid(
                "invalid_seq",
                format!("seq must be from 0 to the room's last seq ({})", room.room.last_seq),
            ));
        }
        let tx = conn.transaction().await?;
        let (marker, moved) = messages::mark_read(&tx, room_id, me, seq)
            .await?
            .ok_or_else(|| Error::forbidden("not_a_member", "you are not a member of this room"))?;
        let unread_count = messages::unread_count(&tx, room_id, me, marker).await?;
        let mention_count = unread::mention_count(&tx, room_id, me, marker).await?;
        let state = ReadState {
            room_id,
            last_read_seq: marker,
            unread_count,
            mention_count,
        };
        if moved {
            let event = Event::ReadMarker {
                user_id: me,
                state: state.clone(),
                origin,
            };
            bus::notify(&tx, &event).await?;
        }
        tx.commit().await?;
        Ok(state)
    }
}
