//! The event bus between the domain (`chat`, `auth`, `users`) and the WebSocket hub.
//!
//! Two kinds of news travel it:
//! - **New messages** go straight from the message service to this process's hub
//!   (`Bus::publish_message`), serialized once — the hot path never leaves memory.
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
}

/// Sends `event` to every listening server when the transaction `c` belongs to commits (at
/// once, outside a transaction).
pub async fn notify(c: &impl GenericClient, event: &Event) -> Result<(), tokio_postgres::Error> {
    // Serializing a plain enum of ids and short names cannot fail.
    let payload = serde_json::to_string(event).unwrap_or_default();
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
    Ok(())
}

/// Where the message service hands new messages: this process's hub, if it serves sockets.
#[derive(Clone, Default)]
pub struct Bus {
    hub: Option<Hub>,
}

impl Bus {
    /// A bus that delivers to `hub`.
    pub fn local(hub: Hub) -> Self {
        Self { hub: Some(hub) }
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
                // Events sent while not listening are gone: check what they would have changed
                // (at the first start too: a socket may have opened before this listened).
                hub.reconcile().await;
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
    if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
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
