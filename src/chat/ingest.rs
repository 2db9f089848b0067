//! Group commit: new messages are stored in batches, one transaction per commit cycle.
//!
//! With durable commits every transaction waits for its WAL flush, and a room's messages are
//! serialized by its row lock, so storing messages one transaction each caps a room at one
//! flush per message. Instead each message goes to one of [`SHARDS`] writers, chosen by its
//! room, and a writer stores everything that waits for it (up to [`MAX_BATCH`]) in one
//! transaction: rooms locked in id order, access and `client_msg_id` repeats checked for the
//! whole batch with one query each (the three sent together), then one statement takes each
//! room's seqs, inserts the messages and moves the authors' read markers. Each writer has a
//! connection of its own with these statements prepared once. While one batch commits the
//! next one gathers, so the batch grows with the load and a lone message still commits at once.
//!
//! A room always goes to the same writer, so its messages are stored in the order they were
//! posted (one connection's messages keep theirs), and writers never wait on each other's
//! rooms. Each message is answered — acked or refused — exactly as if stored alone: a refusal
//! (not a member, banned, archived room, an id reused in another room) affects that message
//! only. A batch that fails before its commit (a deadlock or a `client_msg_id` raced by
//! another node, a lost connection) stored nothing; its messages are then stored one by one
//! the ordinary way. New messages are published in seq order after the commit, then answered.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::access::{self, Action};
use super::replies::{check_parent, decorate_as, ReplyTo};
use super::types::{ClientMsgId, MessageBody};
use super::{room_not_found, Actor, Chat, MessageView};
use crate::bus::Bus;
use crate::db::messages::{self, NewMessages};
use crate::db::replies::{self, Parent};
use crate::db::rooms::{self, RoomAccess};
use crate::db::Db;
use crate::error::{Error, Result};
use tokio_postgres::Statement;

/// Writers; a room's messages always go to the same one.
const SHARDS: usize = 4;
/// Messages stored by one transaction at most.
const MAX_BATCH: usize = 512;
/// Messages waiting for a writer before posting waits for room.
const QUEUE: usize = 4096;

/// What a post gets back: the message, and whether it is new (`false`: a repeat of a
/// `client_msg_id`, answered with the original).
pub type Posted = Result<(MessageView, bool)>;

/// A message to store, already validated and charged to its author's send rate.
pub(super) struct Post {
    pub author: Uuid,
    pub username: String,
    pub room: Uuid,
    pub body: MessageBody,
    pub client_msg_id: Option<ClientMsgId>,
    /// The seq this message replies to (checked when stored: see `replies`).
    pub reply_to: Option<i64>,
}

/// A post waiting in a writer's queue, with where its answer goes.
pub(super) struct Pending {
    post: Post,
    reply: oneshot::Sender<Posted>,
}

impl std::ops::Deref for Pending {
    type Target = Post;
    fn deref(&self) -> &Post {
        &self.post
    }
}

impl Post {
    fn actor(&self) -> Actor {
        Actor::User {
            id: self.author,
            username: self.username.clone(),
        }
    }

    fn view(&self, id: Uuid, seq: i64, created_at: OffsetDateTime) -> MessageView {
        MessageView {
            id,
            room_id: self.room,
            seq,
            author: Some(self.username.clone()),
            body: Some(self.body.as_str().to_owned()),
            client_msg_id: self.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
            created_at,
            edited_at: None,
            deleted: false,
            deleted_at: None,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
        }
    }
}

/// The answer to a post, once its batch is committed.
pub struct Receipt(oneshot::Receiver<Posted>);

impl Receipt {
    pub async fn wait(self) -> Posted {
        self.0
            .await
            .unwrap_or_else(|_| Err(Error::Internal("the message writer stopped".into())))
    }
}

/// The writers' queues, started with the first message.
#[derive(Default)]
pub(super) struct Ingest {
    shards: OnceLock<Vec<mpsc::Sender<Pending>>>,
}

impl Ingest {
    /// Queues a message for its room's writer; waits while that writer's queue is full.
    pub(super) async fn submit(&self, chat: &Chat, post: Post) -> Result<Receipt> {
        let shards = self.shards.get_or_init(|| {
            (0..SHARDS)
                .map(|_| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tokio::spawn(chat.clone().write(rx));
                    tx
                })
                .collect()
        });
        let (reply, receipt) = oneshot::channel();
        let shard = (post.room.as_u64_pair().1 % SHARDS as u64) as usize;
        shards[shard]
            .send(Pending { post, reply })
            .await
            .map_err(|_| Error::Unavailable("the message writer has stopped".into()))?;
        Ok(Receipt(receipt))
    }
}

/// Why a batch was not stored.
enum Failed {
    /// Before its commit: nothing of it was stored.
    Before(Error),
    /// At its commit: whether it was stored is unknown, so it is not tried again.
    AtCommit(Error),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Before(e.into())
    }
}

/// A `client_msg_id` already used by this author for a message in another room (a client bug).
pub(super) fn client_msg_id_reused() -> Error {
    Error::conflict(
        "client_msg_id_reused",
        "this client_msg_id was already used for a message in another room",
    )
}

impl Chat {
    /// One writer: stores batches until the queue closes.
    async fn write(self, mut queue: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut session: Option<Session> = None;
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            if session.as_ref().is_none_or(|s| s.client.is_closed()) {
                session = match Session::open(&self.db).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!("message writer cannot reach the database: {e}");
                        None
                    }
                };
            }
            if !self.commit_batch(session.as_mut(), std::mem::take(&mut batch)).await {
                // Its connection is in an unknown state (a transaction cut off): a new one.
                session = None;
            }
        }
    }

    /// How long storing one batch may take before its senders are told `unavailable`: a
    /// database that stops answering on a connection already open (frozen, its host gone)
    /// would otherwise hold every sender until the kernel gives the connection up. Generous:
    /// a stored batch normally takes milliseconds, and a sender told too early resends with
    /// the same client_msg_id and is answered with the original.
    fn store_deadline(&self) -> std::time::Duration {
        self.db.timeout() * 2
    }

    /// Stores one batch and answers its senders. `false` when the writer's connection must be
    /// replaced.
    async fn commit_batch(&self, session: Option<&mut Session>, batch: Vec<Pending>) -> bool {
        // A second message with the same client_msg_id in one batch is answered after the
        // first is stored, on its own: it finds the original.
        let mut ids = HashSet::new();
        let (batch, repeats): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| {
            p.client_msg_id
                .as_ref()
                .is_none_or(|c| ids.insert((p.author, c.as_str().to_owned())))
        });
        let mut healthy = true;
        let stored = match session {
            Some(session) => {
                match tokio::time::timeout(self.store_deadline(), session.store_batch(&batch, &self.bus)).await {
                    Ok(stored) => stored,
                    Err(_) => {
                        healthy = false;
                        Err(Failed::AtCommit(Error::Unavailable(
                            "the database did not answer in time".into(),
                        )))
                    }
                }
            }
            None => Err(Failed::Before(Error::Unavailable("no database connection".into()))),
        };
        match stored {
            Ok(outcomes) => {
                for posted in outcomes.iter().flatten() {
                    if posted.1 {
                        self.bus.publish_message(&posted.0);
                    }
                }
                for (pending, posted) in batch.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(posted);
                }
            }
            Err(Failed::Before(e)) => {
                tracing::debug!("a batch of {} messages is stored one by one: {e}", batch.len());
                for pending in batch {
                    self.store_alone(pending).await;
                }
            }
            Err(Failed::AtCommit(e)) => {
                tracing::warn!("committing {} messages failed: {e}", batch.len());
                for pending in batch {
                    let _ = pending.reply.send(Err(Error::Unavailable(
                        "the database did not confirm the message: send it again with the same client_msg_id".into(),
                    )));
                }
            }
        }
        for pending in repeats {
            self.store_alone(pending).await;
        }
        healthy
    }

    async fn store_alone(&self, pending: Pending) {
        let actor = pending.actor();
        let store = self.store(
            &actor,
            pending.room,
            &pending.body,
            pending.client_msg_id.as_ref(),
            pending.reply_to,
        );
        let posted = tokio::time::timeout(self.store_deadline(), store)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Unavailable(
                    "the database did not answer in time: send it again with the same client_msg_id".into(),
                ))
            });
        if let Ok((message, true)) = &posted {
            self.bus.publish_message(message);
        }
        let _ = pending.reply.send(posted);
    }
}

/// A writer's own connection (outside the pool, so its statements are prepared once).
struct Session {
    client: tokio_postgres::Client,
    statements: Statements,
}

struct Statements {
    lock: Statement,
    access: Statement,
    originals: Statement,
    insert: Statement,
    mentions: Statement,
}

impl Session {
    async fn open(db: &Db) -> Result<Self> {
        let (client, connection) = db.connect_dedicated().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("message writer connection ended: {e}");
            }
        });
        let statements = Statements {
            lock: client.prepare(rooms::LOCK_MANY_SQL).await?,
            access: client.prepare(&rooms::access_many_sql()).await?,
            originals: client.prepare(&messages::by_client_msg_ids_sql()).await?,
            insert: client.prepare(messages::INSERT_MANY_SQL).await?,
            mentions: client.prepare(crate::db::mentions::RESOLVE_MANY_SQL).await?,
        };
        Ok(Self { client, statements })
    }

    /// Stores a batch in one transaction; one outcome per message, in order.
    ///
    /// Four round trips whatever the batch's size: `BEGIN`; the rooms' locks, access and
    /// earlier messages with the same ids, sent together (each statement still runs after the
    /// one before, so access is read once the locks are held); the insert; `COMMIT` (five with
    /// a cluster bus: the new messages' NOTIFY before it).
    async fn store_batch(&mut self, batch: &[Pending], bus: &Bus) -> Result<Vec<Posted>, Failed> {
        let statements = &self.statements;
        let tx = self.client.transaction().await?;
        let mut locked: Vec<Uuid> = batch.iter().map(|p| p.room).collect();
        locked.sort_unstable();
        locked.dedup();
        let (room_ids, authors): (Vec<Uuid>, Vec<Uuid>) = batch.iter().map(|p| (p.room, p.author)).unzip();
        let (cmid_authors, cmids): (Vec<Uuid>, Vec<&str>) = batch
            .iter()
            .filter_map(|p| Some((p.author, p.client_msg_id.as_ref()?.as_str())))
            .unzip();
        // The messages replied to, read after the locks like the rest (only when there are any).
        let (parent_rooms, parent_seqs): (Vec<Uuid>, Vec<i64>) =
            batch.iter().filter_map(|p| Some((p.room, p.reply_to?))).unzip();
        let ((), rows, originals, parents) = tokio::try_join!(
            async {
                tx.execute(&statements.lock, &[&locked]).await?;
                Ok(())
            },
            rooms::access_many(&tx, &statements.access, &room_ids, &authors),
            async {
                if cmids.is_empty() {
                    return Ok(Vec::new());
                }
                messages::by_client_msg_ids(&tx, &statements.originals, &cmid_authors, &cmids).await
            },
            async {
                if parent_seqs.is_empty() {
                    return Ok(Vec::new());
                }
                replies::parents(&tx, &parent_rooms, &parent_seqs).await
            },
        )?;
        let parents: HashMap<(Uuid, i64), Parent> = parents.into_iter().map(|p| ((p.room_id, p.seq), p)).collect();
        let mut reply_tos: HashMap<usize, ReplyTo> = HashMap::new();

        // Who may post where, as `access::load` decides for one message.
        let mut access: Vec<Option<RoomAccess>> = vec![None; batch.len()];
        for (i, row) in rows {
            access[i] = Some(row);
        }
        // A repeat is answered with its original as it is now (its parent, its reactions).
        let (original_authors, mut original_views): (Vec<Option<Uuid>>, Vec<MessageView>) = originals
            .into_iter()
            .map(|(author, m)| (Some(author), MessageView::from(m)))
            .unzip();
        decorate_as(&tx, &original_authors, &mut original_views).await?;
        let originals: HashMap<(Uuid, String), MessageView> = original_authors
            .into_iter()
            .zip(original_views)
            .filter_map(|(author, m)| Some(((author?, m.client_msg_id.clone()?), m)))
            .collect();
        let outcomes: Vec<Option<Posted>> = batch
            .iter()
            .zip(access)
            .enumerate()
            .map(|(i, (pending, row))| {
                let access = row
                    .ok_or_else(room_not_found)
                    .and_then(|row| access::judge(&pending.actor(), row));
                let refused = access.and_then(|a| {
                    a.require(Action::Post)?;
                    // A repeat of an earlier message is answered with it, even in a room
                    // archived since.
                    let original = pending
                        .client_msg_id
                        .as_ref()
                        .and_then(|c| originals.get(&(pending.author, c.as_str().to_owned())));
                    if let Some(m) = original {
                        return Ok(Some(if m.room_id == pending.room {
                            Ok((m.clone(), false))
                        } else {
                            Err(client_msg_id_reused())
                        }));
                    }
                    a.writable()?;
                    if let Some(seq) = pending.reply_to {
                        let parent = check_parent(seq, parents.get(&(pending.room, seq)))?;
                        reply_tos.insert(i, parent);
                    }
                    Ok(None)
                });
                refused.unwrap_or_else(|e| Some(Err(e)))
            })
            .collect();

        // The new messages, in posting order.
        let fresh: Vec<usize> = (0..batch.len()).filter(|&i| outcomes[i].is_none()).collect();
        let mut new = NewMessages::default();
        for &i in &fresh {
            let p = &batch[i];
            new.ids.push(Uuid::new_v4());
            new.rooms.push(p.room);
            new.authors.push(p.author);
            new.bodies.push(p.body.as_str());
            new.client_msg_ids
                .push(p.client_msg_id.as_ref().map(ClientMsgId::as_str));
            new.reply_tos.push(p.reply_to);
        }
        let stored = if fresh.is_empty() {
            Vec::new()
        } else {
            messages::insert_many(&tx, &statements.insert, &new).await?
        };
        if stored.len() != fresh.len() {
            return Err(Failed::Before(Error::Internal(format!(
                "{} of {} messages stored",
                stored.len(),
                fresh.len()
            ))));
        }
        let mut views: HashMap<usize, MessageView> = fresh
            .iter()
            .zip(new.ids.iter().zip(stored))
            .map(|(&i, (&id, (seq, at)))| {
                let mut view = batch[i].view(id, seq, at);
                view.reply_to = reply_tos.remove(&i);
                (i, view)
            })
            .collect();
        // Their mentions, resolved under the same locks, before anyone hears of them.
        let with_authors = views.iter_mut().map(|(&i, view)| (batch[i].author, view));
        super::mentions::resolve_batch(&tx, &statements.mentions, with_authors).await?;
        bus.announce(&tx, fresh.iter().filter_map(|i| views.get(i))).await?;
        tx.commit().await.map_err(|e| Failed::AtCommit(Error::from(e)))?;
        Ok(outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| {
                outcome.unwrap_or_else(|| {
                    views
                        .remove(&i)
                        .map(|view| (view, true))
                        .ok_or_else(|| Error::Internal("a stored message lost its place".into()))
                })
            })
            .collect())
    }
}
