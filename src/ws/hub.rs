//! The hub: who is connected, who is subscribed to which room, and fan-out.
//!
//! Invariants:
//! - No lock is held across an `.await` or a socket write. Locks (std `Mutex`, held for a few
//!   map operations) guard the registries; delivery is a `try_send` of a cheap handle onto each
//!   connection's bounded queue.
//! - A message is serialized once; every subscriber's queue holds the same `Frame`.
//! - A connection whose queue is full is closed as a slow consumer (4008) on the spot, so one
//!   stalled reader never delays the others: publishing never waits.
//! - The hub does not order or de-duplicate messages; each connection's writer does, by seq
//!   (`conn`), filling any hole from the database. So a publish that races another, or a
//!   subscription registered mid-stream, can never show a client a gap or a repeat.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::presence::Presence;
use super::protocol::{Close, Frame, ServerFrame};
use crate::admin::metrics::Metrics;
use crate::auth::{AuthUser, ClientInfo};
use crate::bus::Event;
use crate::chat::MessageView;
use crate::config::WsConfig;
use crate::db::{messages, rooms, sessions, Db};
use crate::error::{Error, Result};

/// What a connection's writer is handed.
#[derive(Debug)]
pub enum Out {
    /// A new message (its `message` frame); delivered in seq order, once. `at`: when it was
    /// published (for the delivery-latency histogram).
    Message {
        room: Uuid,
        seq: i64,
        frame: Frame,
        at: Instant,
    },
    /// A room event, delivered while the connection is subscribed to the room; `seq` when it
    /// is about one message (an edit, a delete).
    Room { room: Uuid, seq: Option<i64>, frame: Frame },
    /// A frame for this connection alone (reply, presence).
    Frame(Frame),
    /// A subscription began: send `frame`, then replay the room's messages after `from`.
    Subscribed { room: Uuid, from: i64, frame: Frame },
    /// A subscription ended: send `frame` and stop delivering the room.
    Unsubscribed { room: Uuid, frame: Frame },
    /// The room's messages go up to `seq` at least: replay what the connection has not had
    /// (after the bus was away, notifications may be missing).
    Tail { room: Uuid, seq: i64 },
}

/// One WebSocket connection, as the hub and its tasks share it.
pub struct Conn {
    pub id: u64,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub username: String,
    /// Who connected, from where, when (the admin API shows it).
    pub client: ClientInfo,
    pub connected_at: time::OffsetDateTime,
    /// Frames read from the client, and written to it.
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    tx: mpsc::Sender<Out>,
    closing: CancellationToken,
    close: OnceLock<Close>,
    /// Rooms subscribed to, with whether the user is a member (members may send `typing`).
    rooms: Mutex<HashMap<Uuid, bool>>,
    /// When this connection last relayed `typing` per room.
    typing: Mutex<HashMap<Uuid, Instant>>,
    /// Whether this was the user's only connection when it opened (presence: "online").
    first: bool,
    /// Signalled by the writer when the queue is less than half full (see `reply`).
    space: tokio::sync::Notify,
}

impl Conn {
    /// Queues `out`; a full queue closes the connection as a slow consumer.
    pub fn push(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(Close::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a reply to the client's own frame once the queue is at most half full, so
    /// replies never crowd out what the hub delivers: a client that sends faster than it reads
    /// is slowed down (its next frames wait), never closed for it. Nothing is reserved while
    /// waiting, so the hub keeps every free slot. Gives up once closing.
    pub async fn reply(&self, out: Out) {
        self.make_room().await;
        self.push(out);
    }

    /// Waits until the queue is at most half full.
    pub async fn make_room(&self) {
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            if self.half_free() || self.closing.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = space => {}
                _ = self.closing.cancelled() => return,
            }
        }
    }

    /// Called by the writer as it drains the queue.
    pub fn drained_some(&self) {
        if self.half_free() {
            self.space.notify_one();
        }
    }

    fn half_free(&self) -> bool {
        self.tx.capacity() >= self.tx.max_capacity() / 2
    }

    /// Whether `room` is still subscribed (a replay stops as soon as it is not).
    pub fn is_subscribed(&self, room: Uuid) -> bool {
        lock(&self.rooms).contains_key(&room)
    }

    /// Asks the connection to close; the first reason given wins.
    pub fn close(&self, why: Close) {
        let _ = self.close.set(why);
        self.closing.cancel();
    }

    /// Resolves once `close` has been called.
    pub async fn closing(&self) {
        self.closing.cancelled().await
    }

    pub fn close_reason(&self) -> Option<&Close> {
        self.close.get()
    }

    /// The rooms subscribed to now.
    pub fn rooms(&self) -> Vec<Uuid> {
        lock(&self.rooms).keys().copied().collect()
    }

    /// Frames waiting in the outbound queue, and its size.
    pub fn queue(&self) -> (usize, usize) {
        let max = self.tx.max_capacity();
        (max - self.tx.capacity(), max)
    }
}

/// What the hub knows of a room's traffic since this node started (for the admin API).
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Messages published.
    pub total: u64,
    /// `total` at the last sample, and the rate over the last sample period.
    sampled: u64,
    pub per_sec: f64,
    pub last: Option<time::OffsetDateTime>,
}

/// A live room as the hub sees it.
#[derive(Debug, Clone)]
pub struct LiveRoom {
    pub id: Uuid,
    pub subscribers: u64,
    pub per_sec: f64,
    pub last_activity: Option<time::OffsetDateTime>,
}

/// How long a room without subscribers stays "live" after its last message.
const ACTIVITY_KEPT: Duration = Duration::from_secs(600);

/// The subscribers of one room, by connection id.
#[derive(Default)]
struct Room {
    subs: Mutex<HashMap<u64, Arc<Conn>>>,
}

pub(super) struct Inner {
    /// This node (`nodes.id`): what it sends on the bus, it skips when the bus brings it back.
    pub(super) node_id: Uuid,
    /// Where typing notices go to the other nodes, when they share the bus (`cluster.bus =
    /// "postgres"`); a full queue drops them.
    typing_relay: Option<mpsc::Sender<Event>>,
    pub(super) db: Db,
    pub(super) config: WsConfig,
    rooms: Mutex<HashMap<Uuid, Arc<Room>>>,
    pub(super) users: Mutex<HashMap<Uuid, Vec<Arc<Conn>>>>,
    next_id: AtomicU64,
    open: AtomicUsize,
    drained: tokio::sync::Notify,
    shutting_down: std::sync::atomic::AtomicBool,
    pub(super) presence: Arc<Presence>,
    pub(super) metrics: Arc<Metrics>,
    activity: Mutex<HashMap<Uuid, Activity>>,
    /// Cancelled when the server starts shutting down (for sockets the hub does not hold,
    /// such as the admin stream).
    pub(super) stopping: CancellationToken,
}

/// The hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    pub(super) inner: Arc<Inner>,
}

/// Locks a registry. A panic while holding it (a bug) leaves the data consistent enough to
/// keep serving, so poisoning is ignored rather than turned into more panics.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// A hub for node `node_id`; `shared` when other nodes share its bus.
    pub fn new(db: Db, config: WsConfig, metrics: Arc<Metrics>, node_id: Uuid, shared: bool) -> Self {
        let presence_on = config.presence_max_members > 0;
        let hub = Self {
            inner: Arc::new(Inner {
                node_id,
                typing_relay: shared.then(|| crate::bus::typing_relay(db.clone())),
                db,
                config,
                rooms: Mutex::default(),
                users: Mutex::default(),
                next_id: AtomicU64::new(1),
                open: AtomicUsize::new(0),
                drained: tokio::sync::Notify::new(),
                shutting_down: std::sync::atomic::AtomicBool::new(false),
                presence: Arc::new(Presence::new(presence_on)),
                metrics,
                activity: Mutex::default(),
                stopping: CancellationToken::new(),
            }),
        };
        if presence_on {
            let presence = hub.inner.presence.clone();
            tokio::spawn(super::presence::work(presence, Arc::downgrade(&hub.inner)));
        }
        hub
    }

    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Registers a new connection; its writer reads the returned queue, which starts with the
    /// `hello` built from the connection's id — queued before anyone can find the connection,
    /// so nothing overtakes it. Call `announce` next.
    pub fn connect(
        &self,
        user: &AuthUser,
        client: ClientInfo,
        hello: impl FnOnce(u64) -> Frame,
    ) -> (Arc<Conn>, mpsc::Receiver<Out>) {
        let (tx, rx) = mpsc::channel(self.inner.config.outbound_queue);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        // The queue is new and empty: this cannot fail.
        let _ = tx.try_send(Out::Frame(hello(id)));
        let mut users = lock(&self.inner.users);
        let conns = users.entry(user.user_id).or_default();
        let conn = Arc::new(Conn {
            id,
            user_id: user.user_id,
            session_id: user.session_id,
            username: user.username.clone(),
            client,
            connected_at: time::OffsetDateTime::now_utc(),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            tx,
            closing: CancellationToken::new(),
            close: OnceLock::new(),
            rooms: Mutex::default(),
            typing: Mutex::default(),
            first: conns.is_empty(),
            space: tokio::sync::Notify::new(),
        });
        conns.push(conn.clone());
        drop(users);
        self.inner.open.fetch_add(1, Ordering::Relaxed);
        // Shutting down: one that slipped in after `close_all` took its list goes too.
        if self.inner.shutting_down.load(Ordering::Relaxed) {
            conn.close(Close::GoingAway);
        }
        (conn, rx)
    }

    /// Presence for a new connection: the user is online (if this is their first), and the
    /// connection hears who of the people it shares rooms with is.
    pub fn announce(&self, conn: &Arc<Conn>) {
        if conn.first {
            self.inner.presence.changed(conn.user_id, &conn.username);
        }
        self.inner.presence.snapshot(conn);
    }

    /// Removes a connection that has ended, with its subscriptions.
    pub fn disconnect(&self, conn: &Arc<Conn>) {
        let rooms: Vec<Uuid> = lock(&conn.rooms).drain().map(|(r, _)| r).collect();
        for room in rooms {
            self.remove_sub(room, conn.id);
        }
        let last = {
            let mut users = lock(&self.inner.users);
            match users.get_mut(&conn.user_id) {
                Some(conns) => {
                    conns.retain(|c| c.id != conn.id);
                    let last = conns.is_empty();
                    if last {
                        users.remove(&conn.user_id);
                    }
                    last
                }
                None => false,
            }
        };
        if last {
            self.inner.presence.changed(conn.user_id, &conn.username);
        }
        if self.inner.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.inner.drained.notify_waiters();
        }
    }

    /// Adds `conn` to `room`'s subscribers, before its access is checked (see `conn`); the
    /// subscription starts delivering once `confirm`ed.
    pub fn subscribe(&self, conn: &Arc<Conn>, room: Uuid) -> Result<()> {
        {
            let mut rooms = lock(&conn.rooms);
            if rooms.contains_key(&room) {
                return Err(Error::conflict(
                    "already_subscribed",
                    "you are already subscribed to this room; unsubscribe first to start again",
                ));
            }
            if rooms.len() >= self.inner.config.max_subscriptions {
                return Err(Error::invalid(
                    "too_many_subscriptions",
                    format!(
                        "a connection may subscribe to at most {} rooms",
                        self.inner.config.max_subscriptions
                    ),
                ));
            }
            rooms.insert(room, false);
        }
        // Inserted under the registry's lock, as `remove_sub` removes: an entry it is
        // dropping (its last subscriber gone) can never be the one joined here.
        let mut rooms = lock(&self.inner.rooms);
        let entry = rooms.entry(room).or_default();
        lock(&entry.subs).insert(conn.id, conn.clone());
        Ok(())
    }

    /// Starts a subscription whose access was checked: records whether the subscriber is a
    /// member and queues `start` (its `Subscribed`). `false` if the subscription was ended
    /// meanwhile (a kick or ban that committed after the check): nothing is queued. Checked and
    /// queued under the connection's lock, which ending a subscription takes too, so an
    /// `unsubscribed` can never be followed by a stale `subscribed`.
    pub fn confirm(&self, conn: &Conn, room: Uuid, member: bool, start: Out) -> bool {
        let mut rooms = lock(&conn.rooms);
        let Some(m) = rooms.get_mut(&room) else {
            return false;
        };
        // A join that committed after the check may have set it already; membership is only
        // ever lost by ending the subscription, so `true` stays.
        *m |= member;
        conn.push(start);
        true
    }

    /// Records whether the subscriber is a member of the room.
    pub fn set_member(&self, conn: &Conn, room: Uuid, member: bool) {
        if let Some(m) = lock(&conn.rooms).get_mut(&room) {
            *m = member;
        }
    }

    /// Ends `conn`'s subscription to `room`, if any; returns whether there was one.
    pub fn unsubscribe(&self, conn: &Conn, room: Uuid) -> bool {
        self.end_subscription(conn, room, None)
    }

    /// Ends `conn`'s subscription to `room`, queuing `notice` (its `Unsubscribed`) under the
    /// connection's lock — as `confirm` queues a start — so a start and an end are queued in
    /// the order they happened.
    fn end_subscription(&self, conn: &Conn, room: Uuid, notice: Option<Out>) -> bool {
        {
            let mut rooms = lock(&conn.rooms);
            if rooms.remove(&room).is_none() {
                return false;
            }
            if let Some(out) = notice {
                conn.push(out);
            }
        }
        lock(&conn.typing).remove(&room);
        self.remove_sub(room, conn.id);
        true
    }

    fn remove_sub(&self, room: Uuid, conn: u64) {
        let mut rooms = lock(&self.inner.rooms);
        if let Some(entry) = rooms.get(&room) {
            let mut subs = lock(&entry.subs);
            subs.remove(&conn);
            if subs.is_empty() {
                drop(subs);
                rooms.remove(&room);
            }
        }
    }

    /// The room's subscribers now (a snapshot: the lock is released before anyone is written to).
    fn subscribers(&self, room: Uuid) -> Vec<Arc<Conn>> {
        let entry = lock(&self.inner.rooms).get(&room).cloned();
        entry
            .map(|e| lock(&e.subs).values().cloned().collect())
            .unwrap_or_default()
    }

    /// Fans a message committed by this node out to the room's subscribers.
    pub fn publish_message(&self, message: &MessageView) {
        self.inner.metrics.messages_received.inc();
        self.fan_out(message);
    }

    /// Fans a committed message (this node's or another's) out to the room's subscribers.
    fn fan_out(&self, message: &MessageView) {
        {
            let mut activity = lock(&self.inner.activity);
            let a = activity.entry(message.room_id).or_default();
            a.total += 1;
            a.last = Some(message.created_at);
        }
        let subs = self.subscribers(message.room_id);
        if !subs.is_empty() {
            let frame = ServerFrame::Message(message).encode();
            let at = Instant::now();
            for conn in subs {
                conn.push(Out::Message {
                    room: message.room_id,
                    seq: message.seq,
                    frame: frame.clone(),
                    at,
                });
            }
        }
        // Whom it mentions hear of it wherever they are connected, subscribed or not (after
        // the message, on a subscribed connection, unless its writer is filling a hole).
        self.mentioned(message, message.mentions.iter().map(|m| m.user_id));
    }

    /// Sends a `mention` frame about `message` to every connection of `users`.
    fn mentioned(&self, message: &MessageView, users: impl Iterator<Item = Uuid>) {
        let mut frame = None;
        for user in users {
            for conn in self.user_conns(user) {
                let frame = frame.get_or_insert_with(|| {
                    ServerFrame::Mention {
                        room_id: message.room_id,
                        seq: message.seq,
                        author: message.author.as_deref(),
                        message,
                    }
                    .encode()
                });
                conn.push(Out::Frame(frame.clone()));
            }
        }
    }

    /// [`mentioned`](Self::mentioned) for a message read from the database: to `users`, or
    /// (`None`) to everyone it mentions. Reads nothing when none of them is connected here.
    async fn mentioned_from_db(&self, room: Uuid, seq: i64, users: Option<Vec<Uuid>>) -> Result<()> {
        let here = |u: &Uuid| lock(&self.inner.users).contains_key(u);
        if users.as_ref().is_some_and(|us| !us.iter().any(here)) {
            return Ok(());
        }
        let conn = self.inner.db.conn().await?;
        let Some((record, _)) = messages::by_seq(&*conn, room, seq).await? else {
            return Ok(());
        };
        let mut message = [MessageView::from(record)];
        crate::chat::decorate(&*conn, None, &mut message).await?;
        drop(conn);
        let [message] = message;
        if message.deleted {
            return Ok(());
        }
        let named = message.mentions.iter().map(|m| m.user_id);
        match users {
            Some(users) => self.mentioned(&message, named.filter(|u| users.contains(u))),
            None => self.mentioned(&message, named),
        }
        Ok(())
    }

    /// Sends a room event to its subscribers, except connections of `except` (a user).
    fn room_frame(&self, room: Uuid, seq: Option<i64>, frame: &ServerFrame<'_>, except: Option<Uuid>) {
        let subs = self.subscribers(room);
        if subs.is_empty() {
            return;
        }
        let frame = frame.encode();
        for conn in subs.iter().filter(|c| Some(c.user_id) != except) {
            conn.push(Out::Room {
                room,
                seq,
                frame: frame.clone(),
            });
        }
    }

    /// Ends the subscriptions of `user`'s connections to `room`, telling each why.
    fn drop_subscriptions(&self, room: Uuid, user: Option<Uuid>, reason: &str) {
        let frame = ServerFrame::Unsubscribed {
            id: None,
            room_id: room,
            reason,
        }
        .encode();
        for conn in self.subscribers(room) {
            if user.is_some_and(|u| u != conn.user_id) {
                continue;
            }
            let notice = Out::Unsubscribed {
                room,
                frame: frame.clone(),
            };
            self.end_subscription(&conn, room, Some(notice));
        }
    }

    /// Relays `typing` from `conn` to the room's other subscribers, at most once per
    /// `ws.typing_interval_ms` per connection and room; extra notices are dropped silently.
    pub fn typing(&self, conn: &Conn, room: Uuid) -> Result<()> {
        match lock(&conn.rooms).get(&room) {
            None => {
                return Err(Error::invalid(
                    "not_subscribed",
                    "subscribe to the room before sending typing notices",
                ))
            }
            Some(false) => {
                return Err(Error::forbidden(
                    "not_a_member",
                    "you are not a member of this room; join it first",
                ))
            }
            Some(true) => {}
        }
        let interval = Duration::from_millis(self.inner.config.typing_interval_ms);
        let now = Instant::now();
        {
            let mut typing = lock(&conn.typing);
            if typing.get(&room).is_some_and(|at| now.duration_since(*at) < interval) {
                return Ok(());
            }
            typing.insert(room, now);
        }
        let frame = ServerFrame::Typing {
            room_id: room,
            user: &conn.username,
        };
        self.room_frame(room, None, &frame, Some(conn.user_id));
        // And to the other nodes' subscribers; a notice lost on the way is harmless.
        if let Some(relay) = &self.inner.typing_relay {
            let _ = relay.try_send(Event::Typing {
                origin: self.inner.node_id,
                room_id: room,
                user_id: conn.user_id,
                username: conn.username.clone(),
            });
        }
        Ok(())
    }

    /// Sends `frame` to every connection of `user`.
    pub fn to_user(&self, user: Uuid, frame: Frame) {
        for conn in self.user_conns(user) {
            conn.push(Out::Frame(frame.clone()));
        }
    }

    /// Every open connection, oldest first.
    pub fn connection_list(&self) -> Vec<Arc<Conn>> {
        let mut conns = self.all_conns();
        conns.sort_unstable_by_key(|c| c.id);
        conns
    }

    /// Closes connection `id` (an administrator's decision); `false` if there is none, or it
    /// is closing already (for another reason, which its client is being told).
    pub fn close_connection(&self, id: u64, why: Close) -> bool {
        match self.all_conns().into_iter().find(|c| c.id == id) {
            Some(conn) if conn.close_reason().is_none() => {
                conn.close(why);
                true
            }
            _ => false,
        }
    }

    /// Distinct users connected now.
    pub fn users_online(&self) -> usize {
        lock(&self.inner.users).len()
    }

    /// Subscriptions over all connections, and rooms with at least one subscriber.
    pub fn subscription_counts(&self) -> (usize, usize) {
        let rooms = lock(&self.inner.rooms);
        let subs = rooms.values().map(|r| lock(&r.subs).len()).sum();
        (subs, rooms.len())
    }

    /// Takes a sample of every room's message rate (call once per `period`), and forgets
    /// rooms that have neither subscribers nor a message in the last ten minutes.
    pub fn sample_activity(&self, period: Duration) {
        let live: HashSet<Uuid> = lock(&self.inner.rooms).keys().copied().collect();
        let cutoff = time::OffsetDateTime::now_utc() - ACTIVITY_KEPT;
        let mut activity = lock(&self.inner.activity);
        activity.retain(|room, a| live.contains(room) || a.last.is_some_and(|t| t >= cutoff));
        for a in activity.values_mut() {
            a.per_sec = (a.total - a.sampled) as f64 / period.as_secs_f64();
            a.sampled = a.total;
        }
    }

    /// Rooms with subscribers here or recent messages: subscribers, rate, last message.
    pub fn live_rooms(&self) -> Vec<LiveRoom> {
        let subscribed: HashMap<Uuid, u64> = lock(&self.inner.rooms)
            .iter()
            .map(|(id, r)| (*id, lock(&r.subs).len() as u64))
            .collect();
        let activity = lock(&self.inner.activity).clone();
        let mut ids: HashSet<Uuid> = subscribed.keys().copied().collect();
        ids.extend(activity.keys().copied());
        ids.into_iter()
            .map(|id| {
                let a = activity.get(&id);
                LiveRoom {
                    id,
                    subscribers: subscribed.get(&id).copied().unwrap_or(0),
                    per_sec: a.map_or(0.0, |a| a.per_sec),
                    last_activity: a.and_then(|a| a.last),
                }
            })
            .collect()
    }

    /// Resolves once the server has started shutting down.
    pub async fn stopping(&self) {
        self.inner.stopping.cancelled().await
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub(super) fn user_conns(&self, user: Uuid) -> Vec<Arc<Conn>> {
        lock(&self.inner.users).get(&user).cloned().unwrap_or_default()
    }

    fn all_conns(&self) -> Vec<Arc<Conn>> {
        lock(&self.inner.users).values().flatten().cloned().collect()
    }

    /// Closes every connection (shutdown) and waits, at most `grace`, for them to end.
    pub async fn close_all(&self, why: Close, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Relaxed);
        self.inner.stopping.cancel();
        let drained = self.inner.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        for conn in self.all_conns() {
            conn.close(why.clone());
        }
        if self.connections() > 0 {
            let _ = tokio::time::timeout(grace, drained).await;
        }
    }

    /// Acts on an event from the bus.
    pub async fn apply(&self, event: Event) {
        if let Err(e) = self.try_apply(event).await {
            tracing::warn!("could not deliver an event: {e}");
        }
    }

    async fn try_apply(&self, event: Event) -> Result<()> {
        match event {
            Event::MessagePosted {
                origin,
                room_id,
                seq,
                message,
            } => {
                if origin == self.inner.node_id {
                    return Ok(());
                }
                match message {
                    Some(message) => self.fan_out(&message),
                    None => {
                        self.tail(room_id, seq);
                        // Nor does it bring its mentions: they are read (rarely: a large
                        // message) off the listener's path.
                        if !lock(&self.inner.users).is_empty() {
                            let hub = self.clone();
                            tokio::spawn(async move {
                                if let Err(e) = hub.mentioned_from_db(room_id, seq, None).await {
                                    tracing::warn!("could not deliver the mentions of a message: {e}");
                                }
                            });
                        }
                    }
                }
            }
            Event::Typing {
                origin,
                room_id,
                user_id,
                username,
            } => {
                if origin != self.inner.node_id {
                    let frame = ServerFrame::Typing {
                        room_id,
                        user: &username,
                    };
                    self.room_frame(room_id, None, &frame, Some(user_id));
                }
            }
            Event::ReadMarker { user_id, state, origin } => {
                let frame = ServerFrame::ReadMarker {
                    id: None,
                    state: &state,
                }
                .encode();
                for conn in self.user_conns(user_id) {
                    if origin != Some((self.inner.node_id, conn.id)) {
                        conn.push(Out::Frame(frame.clone()));
                    }
                }
            }
            Event::PresenceChanged { origin, users } => {
                if origin != self.inner.node_id {
                    self.inner.presence.changed_elsewhere(users);
                }
            }
            Event::CloseConnection {
                node_id,
                connection_id,
                reason,
            } => {
                if node_id == self.inner.node_id {
                    self.close_connection(connection_id, Close::ClosedByAdmin(reason));
                }
            }
            Event::Mentioned { room_id, seq, users } => {
                self.mentioned_from_db(room_id, seq, Some(users)).await?;
            }
            Event::MessageEdited { room_id, seq } | Event::MessageDeleted { room_id, seq } => {
                if self.subscribers(room_id).is_empty() {
                    return Ok(());
                }
                let conn = self.inner.db.conn().await?;
                let Some((record, _)) = messages::by_seq(&*conn, room_id, seq).await? else {
                    return Ok(());
                };
                // One frame for every subscriber: `me` is nobody's (false) in it.
                let mut message = [MessageView::from(record)];
                crate::chat::decorate(&*conn, None, &mut message).await?;
                let [message] = message;
                drop(conn);
                let frame = if message.deleted {
                    ServerFrame::MessageDeleted {
                        room_id,
                        seq,
                        id: message.id,
                        deleted_at: message.deleted_at,
                    }
                } else {
                    ServerFrame::MessageEdited(&message)
                };
                self.room_frame(room_id, Some(seq), &frame, None);
            }
            Event::MemberJoined {
                room_id,
                user_id,
                username,
                role,
            } => {
                for conn in self.user_conns(user_id) {
                    self.set_member(&conn, room_id, true);
                }
                let frame = ServerFrame::MemberJoined {
                    room_id,
                    user: &username,
                    role,
                };
                self.room_frame(room_id, None, &frame, None);
                // The new member hears of it too (added by someone, or a new direct room), on
                // connections not subscribed to the room.
                let theirs = frame.encode();
                for conn in self.user_conns(user_id) {
                    if !lock(&conn.rooms).contains_key(&room_id) {
                        conn.push(Out::Frame(theirs.clone()));
                    }
                }
                // Introduced wherever they are connected: this node tells its own connections.
                self.inner.presence.joined(user_id, room_id);
            }
            Event::MemberLeft {
                room_id,
                user_id,
                username,
                reason,
            } => {
                self.drop_subscriptions(room_id, Some(user_id), reason.as_str());
                let frame = ServerFrame::MemberLeft {
                    room_id,
                    user: &username,
                    reason: reason.as_str(),
                };
                self.room_frame(room_id, None, &frame, None);
            }
            Event::RoleChanged {
                room_id,
                username,
                role,
                ..
            } => {
                let frame = ServerFrame::MemberRoleChanged {
                    room_id,
                    user: &username,
                    role,
                };
                self.room_frame(room_id, None, &frame, None);
            }
            Event::RoomChanged { room_id } => {
                let subs = self.subscribers(room_id);
                if subs.is_empty() {
                    return Ok(());
                }
                let conn = self.inner.db.conn().await?;
                let Some(room) = rooms::by_id(&*conn, room_id).await? else {
                    drop(conn);
                    self.drop_subscriptions(room_id, None, "room_deleted");
                    return Ok(());
                };
                let frame = ServerFrame::RoomUpdated {
                    room_id,
                    name: room.name.as_deref(),
                    topic: room.topic.as_deref(),
                    visibility: &room.visibility,
                    archived: room.archived_at.is_some(),
                };
                self.room_frame(room_id, None, &frame, None);
                // Made private: readers who are not members lose it.
                if room.visibility != "public" {
                    let users: Vec<Uuid> = subs.iter().map(|c| c.user_id).collect();
                    let rooms_of = vec![room_id; users.len()];
                    let lost = rooms::unreadable(&*conn, &rooms_of, &users).await?;
                    drop(conn);
                    for (_, user) in lost {
                        self.drop_subscriptions(room_id, Some(user), "access_lost");
                    }
                }
            }
            Event::RoomDeleted { room_id } => self.drop_subscriptions(room_id, None, "room_deleted"),
            Event::Reaction {
                room_id,
                seq,
                emoji,
                username,
                added,
                count,
            } => {
                let frame = ServerFrame::Reaction {
                    room_id,
                    seq,
                    emoji: &emoji,
                    user: &username,
                    added,
                    count,
                };
                self.room_frame(room_id, Some(seq), &frame, None);
            }
            Event::SessionEnded { session_id, reason } => {
                for conn in self.all_conns().into_iter().filter(|c| c.session_id == session_id) {
                    conn.close(Close::SessionEnded(reason.clone()));
                }
            }
            Event::UserSessionsEnded { user_id, keep, reason } => {
                for conn in self.user_conns(user_id) {
                    if Some(conn.session_id) == keep {
                        continue;
                    }
                    conn.close(if reason == "account_disabled" {
                        Close::AccountDisabled
                    } else {
                        Close::SessionEnded(reason.clone())
                    });
                }
            }
        }
        Ok(())
    }

    /// Tells `room`'s subscribers its messages go up to `seq` at least: each replays what it
    /// has not had.
    fn tail(&self, room: Uuid, seq: i64) {
        for conn in self.subscribers(room) {
            conn.push(Out::Tail { room, seq });
        }
    }

    /// Re-reads who is online everywhere, and writes this node's presence rows again.
    pub fn resync_presence(&self) {
        let local = self
            .all_conns()
            .iter()
            .map(|c| (c.user_id, c.username.clone()))
            .collect();
        self.inner.presence.resync(local);
    }

    /// After the event listener was away (events sent meanwhile are lost): every subscriber
    /// gets what it missed of its rooms, presence is re-read, and every connection and
    /// subscription is checked against the database.
    /// Returns whether it all succeeded (if not, call it again: it is idempotent).
    pub async fn catch_up(&self) -> bool {
        self.resync_presence();
        let caught_up = match self.try_catch_up().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("could not catch up on missed messages yet: {e}");
                false
            }
        };
        self.reconcile().await && caught_up
    }

    async fn try_catch_up(&self) -> Result<()> {
        let rooms: Vec<Uuid> = lock(&self.inner.rooms).keys().copied().collect();
        if rooms.is_empty() {
            return Ok(());
        }
        let tails = {
            let db = self.inner.db.conn().await?;
            rooms::last_seqs(&*db, &rooms).await?
        };
        for (room, seq) in tails {
            self.tail(room, seq);
        }
        Ok(())
    }

    /// Checks every connection and subscription against the database: after the event
    /// listener was disconnected (events sent meanwhile are lost), and periodically as a net.
    /// Returns whether it succeeded.
    pub async fn reconcile(&self) -> bool {
        match self.try_reconcile().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("could not re-check live connections: {e}");
                false
            }
        }
    }

    async fn try_reconcile(&self) -> Result<()> {
        let conns = self.all_conns();
        if conns.is_empty() {
            return Ok(());
        }
        let db = self.inner.db.conn().await?;
        let session_ids: Vec<Uuid> = conns
            .iter()
            .map(|c| c.session_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let ended = sessions::ended_among(&*db, &session_ids).await?;
        for (session, reason, disabled) in ended {
            for conn in conns.iter().filter(|c| c.session_id == session) {
                conn.close(if disabled {
                    Close::AccountDisabled
                } else {
                    Close::SessionEnded(reason.clone())
                });
            }
        }
        let pairs: HashSet<(Uuid, Uuid)> = conns
            .iter()
            .flat_map(|c| c.rooms().into_iter().map(move |r| (r, c.user_id)))
            .collect();
        let (rooms_of, users): (Vec<Uuid>, Vec<Uuid>) = pairs.into_iter().unzip();
        for (room, user) in rooms::unreadable(&*db, &rooms_of, &users).await? {
            self.drop_subscriptions(room, Some(user), "access_lost");
        }
        Ok(())
    }
}
