//! The event bus between the domain (`chat`, `auth`, `users`) and the WebSocket hub.
//!
//! Two kinds of news travel it:
//! - **New messages** go straight from the message service to this process's hub
//!   (`Bus::publish_message`), serialized once — the hot path never leaves memory. With
//!   `cluster.bus = "postgres"` each one is *also* sent as an [`Event::MessagePosted`] with
//!   `NOTIFY` in the transaction that stores it, so the other nodes' hubs publish it too (the
//!   node that stored it skips its own). A message too large for a NOTIFY payload travels as
//!   its room and seq, and the receiving node reads it from the database. Order and gaps are
//!   the connection writers' business (they deliver by seq and fill holes from the database),
//!   so a late or lost notification never shows a client a gap.
//! - **Everything else** (edits, deletes, joins, leaves, kicks, bans, role and room changes,
//!   ended sessions, disabled accounts) is an [`Event`] sent with PostgreSQL `NOTIFY` inside the
//!   transaction that makes the change (`notify`). PostgreSQL delivers it only if, and only
//!   after, that transaction commits, to every listening `chatd serve` — so a change made by
//!   `chatd user disable` or `chatd room kick` in another process reaches the sockets exactly
//!   like one made over the API. `listen` is the server's side: one dedicated connection (the
//!   pool's connections drop notifications), reconnected when lost; after a reconnect the hub
//!   re-checks every socket and subscription against the database, since events sent while it
//!   was away are gone.
//!
//! Payloads carry ids and names only (NOTIFY payloads are limited to 8000 bytes); the hub reads
//! anything larger (an edited body, a room's topic) from the database, once per event.
//!
//! After the listener reconnects, the hub also catches up (`Hub::catch_up`): each subscribed
//! room's last seq is read and every subscriber behind it is replayed the difference, and
//! presence is re-read, so nothing sent while it was away stays missing.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::chat::{MessageView, Role};
use crate::db::Db;
use crate::ws::hub::Hub;

/// The NOTIFY channel.
pub const CHANNEL: &str = "chatd_events";
/// The `application_name` of a node's listening connection.
pub const LISTENER_NAME: &str = "chatd listener";

/// Why a member is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Kicked,
    Banned,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Kicked => "kicked",
            Self::Banned => "banned",
        }
    }
}

/// A committed change that live connections must hear about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    MessageEdited {
        room_id: Uuid,
        seq: i64,
    },
    MessageDeleted {
        room_id: Uuid,
        seq: i64,
    },
    MemberJoined {
        room_id: Uuid,
        user_id: Uuid,
        username: String,
        role: Role,
    },
    MemberLeft {
        room_id: Uuid,
        user_id: Uuid,
        username: String,
        reason: LeaveReason,
    },
    RoleChanged {
        room_id: Uuid,
        user_id: Uuid,
        username: String,
        role: Role,
    },
    /// Renamed, re-topiced, made private or public, archived.
    RoomChanged {
        room_id: Uuid,
    },
    RoomDeleted {
        room_id: Uuid,
    },
    /// One session ended (logout, revoked by its user, refresh-token reuse).
    SessionEnded {
        session_id: Uuid,
        reason: String,
    },
    /// Every session of a user ended, but `keep` (password change or reset, account disabled
    /// or deleted).
    UserSessionsEnded {
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: String,
    },
    /// A message was stored by node `origin` (`cluster.bus = "postgres"` only). `message` is
    /// absent when it would not fit a payload: read it by `room_id` and `seq`.
    MessagePosted {
        origin: Uuid,
        room_id: Uuid,
        seq: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<Box<MessageView>>,
    },
    /// These users' connections on node `origin` began or ended (they may be online or
    /// offline now: each node reads where they are connected).
    PresenceChanged {
        origin: Uuid,
        users: Vec<(Uuid, String)>,
    },
    /// `username` is typing in `room_id`, on node `origin` (`cluster.bus = "postgres"` only).
    Typing {
        origin: Uuid,
        room_id: Uuid,
        user_id: Uuid,
        username: String,
    },
    /// `user_id`'s read marker moved: their connections hear of it, but `origin` (node,
    /// connection), which asked.
    ReadMarker {
        user_id: Uuid,
        state: crate::chat::ReadState,
        origin: Option<(Uuid, u64)>,
    },
    /// An administrator closes connection `connection_id` of node `node_id`.
    CloseConnection {
        node_id: Uuid,
        connection_id: u64,
        reason: String,
    },
    /// `username` added (`added`) or removed their reaction `emoji` to message `seq`; `count`
    /// is how many reactions with it the message has now. At most ~200 bytes of payload (an
    /// emoji is at most 64 bytes, a username 32).
    Reaction {
        room_id: Uuid,
        seq: i64,
        emoji: String,
        username: String,
        added: bool,
        count: i64,
    },
    /// An edit of message `seq` named `users` for the first time: they get a `mention` frame
    /// (new messages' mentions travel with `MessagePosted` instead).
    Mentioned {
        room_id: Uuid,
        seq: i64,
        users: Vec<Uuid>,
    },
}

/// The largest NOTIFY payload PostgreSQL accepts is 8000 bytes (less one); a little is kept spare.
pub const MAX_PAYLOAD: usize = 7900;

/// Users per `PresenceChanged` (a user is at most 16 + 32 characters of name and id in a payload).
const PRESENCE_CHUNK: usize = 80;

/// Sends `event` to every listening server when the transaction `c` belongs to commits (at
/// once, outside a transaction).
pub async fn notify(c: &impl GenericClient, event: &Event) -> Result<(), tokio_postgres::Error> {
    notify_all(c, std::slice::from_ref(event)).await
}

/// Sends `events` in order, in one statement, when the transaction `c` belongs to commits.
pub async fn notify_all<'a>(
    c: &impl GenericClient,
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<(), tokio_postgres::Error> {
    // Serializing an event (ids, names, a message) cannot fail.
    let payloads: Vec<String> = events
        .into_iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect();
    if payloads.is_empty() {
        return Ok(());
    }
    c.execute(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t (p, n) ORDER BY n",
        &[&CHANNEL, &payloads],
    )
    .await?;
    Ok(())
}

/// Sends `events` at once, without waiting for the commit to be flushed to disk: for news that
/// is stored nowhere and is worthless a moment later (typing notices).
pub async fn notify_volatile(db: &Db, events: &[Event]) -> crate::error::Result<()> {
    let mut conn = db.conn().await?;
    let tx = conn.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
    notify_all(&tx, events).await?;
    tx.commit().await?;
    Ok(())
}

/// Typing notices waiting to be sent to the other nodes at most; more are dropped.
const TYPING_QUEUE: usize = 256;

/// Starts the task that sends typing notices to the other nodes, a batch per transaction;
/// returns where to queue them. The task ends when every sender is dropped.
pub fn typing_relay(db: Db) -> tokio::sync::mpsc::Sender<Event> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(TYPING_QUEUE);
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, TYPING_QUEUE).await > 0 {
            if let Err(e) = notify_volatile(&db, &batch).await {
                tracing::debug!("{} typing notices not sent to other nodes: {e}", batch.len());
            }
            batch.clear();
        }
    });
    tx
}

/// The notification of a new message: the whole message when it fits a payload, else its place.
pub fn message_posted(origin: Uuid, message: &MessageView) -> Event {
    let whole = Event::MessagePosted {
        origin,
        room_id: message.room_id,
        seq: message.seq,
        message: Some(Box::new(message.clone())),
    };
    match serde_json::to_string(&whole) {
        Ok(text) if text.len() <= MAX_PAYLOAD => whole,
        _ => Event::MessagePosted {
            origin,
            room_id: message.room_id,
            seq: message.seq,
            message: None,
        },
    }
}

/// `PresenceChanged` notifications for `users`, each small enough for a payload.
pub fn presence_changed(origin: Uuid, users: &[(Uuid, String)]) -> Vec<Event> {
    users
        .chunks(PRESENCE_CHUNK)
        .map(|chunk| Event::PresenceChanged {
            origin,
            users: chunk.to_vec(),
        })
        .collect()
}

/// Where the message service hands new messages: this process's hub, if it serves sockets, and
/// with a cluster bus the other nodes too.
#[derive(Clone, Default)]
pub struct Bus {
    hub: Option<Hub>,
    /// This node's id when new messages are also sent to other nodes (`cluster.bus = "postgres"`).
    shared_as: Option<Uuid>,
}

impl Bus {
    /// A bus that delivers to `hub` alone.
    pub fn local(hub: Hub) -> Self {
        Self {
            hub: Some(hub),
            shared_as: None,
        }
    }

    /// A bus that delivers to `hub` and, through NOTIFY, to every other node; `node` is this one.
    pub fn shared(hub: Hub, node: Uuid) -> Self {
        Self {
            hub: Some(hub),
            shared_as: Some(node),
        }
    }

    /// Within the transaction `c` that stores `messages`: sends them to the other nodes when they
    /// share the bus (nothing otherwise: a single node's messages are not even looked at). Call
    /// before the commit.
    pub async fn announce<'a>(
        &self,
        c: &impl GenericClient,
        messages: impl IntoIterator<Item = &'a MessageView>,
    ) -> Result<(), tokio_postgres::Error> {
        let Some(origin) = self.shared_as else {
            return Ok(());
        };
        let events: Vec<Event> = messages.into_iter().map(|m| message_posted(origin, m)).collect();
        notify_all(c, &events).await
    }

    /// No live delivery: for `chatd user` and `chatd room`, which serve no sockets (their
    /// other changes still reach servers through `notify`).
    pub fn detached() -> Self {
        Self::default()
    }

    /// A message was committed: deliver it to the room's subscribers.
    pub fn publish_message(&self, message: &MessageView) {
        if let Some(hub) = &self.hub {
            hub.publish_message(message);
        }
    }
}

/// Listens for events until `stop` is cancelled, reconnecting when the connection is lost.
pub async fn listen(db: Db, hub: Hub, stop: tokio_util::sync::CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let connected = tokio::select! {
            r = subscribe(&db) => r,
            _ = stop.cancelled() => return,
        };
        match connected {
            Ok((client, driver, mut payloads)) => {
                // Events sent while not listening are gone: catch up on what they would have
                // changed (at the first start too: a socket may have opened before this listened),
                // again and again until it succeeds, while events are taken meanwhile.
                let catching_up = tokio::spawn(catch_up(hub.clone()));
                backoff = Duration::from_millis(200);
                loop {
                    let payload = tokio::select! {
                        p = payloads.recv() => p,
                        _ = stop.cancelled() => None,
                    };
                    let Some(payload) = payload else { break };
                    match serde_json::from_str::<Event>(&payload) {
                        Ok(event) => hub.apply(event).await,
                        Err(e) => tracing::warn!("ignoring an unreadable event ({e}): {payload}"),
                    }
                }
                catching_up.abort();
                drop(client);
                driver.abort();
                if stop.is_cancelled() {
                    return;
                }
                tracing::warn!("event listener disconnected; reconnecting");
            }
            Err(e) => tracing::warn!("event listener cannot connect: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `Hub::catch_up` until it succeeds, with back-off.
async fn catch_up(hub: Hub) {
    let mut delay = Duration::from_millis(200);
    while !hub.catch_up().await {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

type Listening = (
    tokio_postgres::Client,
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::Receiver<String>,
);

/// Opens a dedicated connection and `LISTEN`s on it; payloads arrive on the receiver, which
/// closes when the connection is lost.
async fn subscribe(db: &Db) -> crate::error::Result<Listening> {
    let (client, mut connection) = db.connect_dedicated().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1024);
    // The connection must be polled for the client to work; notifications arrive here.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("event listener connection failed: {e}");
                    break;
                }
            }
        }
    });
    // Named, so that an operator (or a test) can tell this connection in pg_stat_activity.
    let listen = format!("SET application_name = '{LISTENER_NAME}'; LISTEN {CHANNEL}");
    if let Err(e) = client.batch_execute(&listen).await {
        driver.abort();
        return Err(e.into());
    }
    Ok((client, driver, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fit_a_notify_payload_and_read_back() {
        let e = Event::MemberLeft {
            room_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            username: "a".repeat(32),
            reason: LeaveReason::Banned,
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.len() < 8000);
        assert!(text.contains(r#""kind":"member_left""#), "{text}");
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }
}
