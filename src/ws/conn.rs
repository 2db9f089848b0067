//! One WebSocket connection: a reader (this task) and a writer (a task of its own).
//!
//! The **reader** parses client frames and calls the same domain functions as the REST API;
//! replies go onto the connection's bounded queue like everything else, once it is at most half
//! full: a client that sends faster than it reads is slowed down (its frames wait in its
//! socket), and what the hub delivers always has room. A writer blocked on a slow socket does
//! not stop the reader otherwise, so pongs and close frames are seen.
//!
//! The **writer** drains the queue into the socket and owns delivery order: per subscribed room
//! it keeps the last seq sent, skips anything at or below it (a message both replayed and
//! published live), and fills any hole above it from the database before going on. A
//! subscription therefore starts with a replay of everything after `since_seq` and continues
//! live with no gap and no duplicate, however publishes and the replay interleave. Frames are
//! flushed when the queue is empty, so a burst costs one write.
//!
//! Subscribing registers with the hub *before* checking access and reading the room's last
//! seq: a message published in between is either replayed or delivered live, never neither,
//! and a kick that commits in between is seen either by the check or by the hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::Instrument as _;
use uuid::Uuid;

use super::hub::{Conn, Out};
use super::protocol::{self, ClientFrame, Close, Frame, HelloLimits, HelloUser, ServerFrame};
use super::Socket;
use crate::app::AppState;
use crate::auth::{AuthUser, ClientInfo};
use crate::chat::{Actor, HistoryPage, MessageView};
use crate::db::{messages, Db};
use crate::error::Error;
use crate::http::ApiError;

/// A connection's sends waiting for their ack at most; more wait in its socket.
const SENDS_IN_FLIGHT: usize = 256;
/// Messages read from the database per replay query.
const REPLAY_PAGE: i64 = 200;
/// How long a close frame may take to reach a client that is not reading.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a socket whose input cannot be read any more (an oversized frame) is kept open
/// after its close frame, so that the client reads the close before the connection is reset.
const READ_ERROR_LINGER: Duration = Duration::from_secs(2);

/// Serves one upgraded connection until it closes.
pub async fn serve(socket: Socket, state: AppState, user: AuthUser, client: ClientInfo) {
    let hub = state.hub.clone();
    let config = hub.config().clone();
    let limits = HelloLimits {
        max_frame_bytes: config.max_frame_bytes,
        max_subscriptions: config.max_subscriptions,
        outbound_queue: config.outbound_queue,
        typing_interval_ms: config.typing_interval_ms,
        messages_per_sec: state.config.limits.messages_per_sec,
        message_burst: state.config.limits.message_burst,
    };
    let me = HelloUser {
        id: user.user_id,
        username: user.username.clone(),
    };
    // Read before `connect`, which builds hello without waiting.
    let unread = unread_rooms(&state.db, user.user_id).await;
    let hello = |connection_id| {
        ServerFrame::Hello {
            protocol: protocol::PROTOCOL_VERSION,
            connection_id,
            session_id: user.session_id,
            user: &me,
            heartbeat_secs: config.heartbeat_secs,
            limits: &limits,
            rooms: unread.as_ref().map(|(rooms, _)| rooms.as_slice()),
            rooms_truncated: unread.as_ref().is_some_and(|(_, more)| *more),
        }
        .encode()
    };
    let (conn, queue) = hub.connect(&user, client, hello);
    let span = tracing::info_span!("ws", conn = conn.id, user = %user.username);
    async move {
        tracing::debug!("connected");
        let (sink, mut stream) = socket.split();
        let started = Instant::now();
        let last_seen = Arc::new(AtomicU64::new(0));
        // Presence only after hello, which is always the first frame.
        hub.announce(&conn);
        let writer = Writer {
            conn: conn.clone(),
            db: state.db.clone(),
            cursors: HashMap::new(),
            heartbeat: Duration::from_secs(config.heartbeat_secs),
            started,
            last_seen: last_seen.clone(),
            delivered: 0,
            metrics: hub.metrics().clone(),
        };
        let writer = tokio::spawn(writer.run(sink, queue).in_current_span());
        let actor = Actor::User {
            id: user.user_id,
            username: user.username.clone(),
        };
        let reader = read(&mut stream, &conn, &state, &actor, started, &last_seen);
        tokio::select! {
            why = reader => conn.close(why),
            _ = conn.closing() => {}
        }
        let _ = writer.await;
        match conn.close_reason() {
            Some(Close::SlowConsumer) => {
                hub.metrics().slow_consumer_closes.inc();
            }
            Some(Close::ClosedByAdmin(_)) => {
                hub.metrics().admin_closes.inc();
            }
            _ => {}
        }
        // Gone from the hub (subscriptions, presence) at once; only the socket lingers.
        hub.disconnect(&conn);
        // Keep the socket instead of dropping it at once: closing it with unread input (the
        // rest of an oversized frame, pings to answer) resets the connection, which can destroy
        // the close frame before the client reads it. Read on until the client closes its side
        // (a client that has stopped reading gets as long as the close frame had); if reading
        // is over (the stream failed), wait a moment.
        let read_failed = matches!(
            conn.close_reason(),
            Some(Close::TooBig | Close::InvalidData | Close::ProtocolError)
        );
        if read_failed {
            // The stream has ended for good (the library stops reading after an error), so
            // there is nothing to read on: give the client time to read the close frame.
            tokio::time::sleep(READ_ERROR_LINGER).await;
        } else {
            let linger = tokio::time::Instant::now() + CLOSE_TIMEOUT;
            let closed_cleanly = tokio::time::timeout_at(linger, async {
                loop {
                    match stream.next().await {
                        None => return true,
                        Some(Err(_)) => return false,
                        Some(Ok(_)) => {}
                    }
                }
            })
            .await;
            if closed_cleanly == Ok(false) {
                tokio::time::sleep(READ_ERROR_LINGER).await;
            }
        }
        tracing::debug!(reason = ?conn.close_reason(), "disconnected");
    }
    .instrument(span)
    .await
}

/// The unread state of `user`'s rooms for `hello`, or `None` when the database does not answer
/// in time: a connection is not refused for a badge (the room list has the counts too).
async fn unread_rooms(db: &Db, user: Uuid) -> Option<(Vec<crate::db::unread::RoomUnread>, bool)> {
    let read = async {
        let c = db.conn().await?;
        Ok::<_, Error>(crate::db::unread::of_user(&*c, user).await?)
    };
    match tokio::time::timeout(db.timeout(), read).await {
        Ok(Ok(rooms)) => Some(rooms),
        Ok(Err(e)) => {
            tracing::warn!("hello goes without unread counts: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("hello goes without unread counts: the database did not answer in time");
            None
        }
    }
}

/// Reads client frames until the client leaves or breaks the protocol; returns why.
async fn read(
    stream: &mut futures_util::stream::SplitStream<Socket>,
    conn: &Arc<Conn>,
    state: &AppState,
    actor: &Actor,
    started: Instant,
    last_seen: &AtomicU64,
) -> Close {
    let sends = Arc::new(Semaphore::new(SENDS_IN_FLIGHT));
    while let Some(next) = stream.next().await {
        last_seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        conn.frames_in.fetch_add(1, Ordering::Relaxed);
        state.hub.metrics().frames_in.inc();
        let message = match next {
            Ok(m) => m,
            Err(e) => return read_failure(&e),
        };
        let reply = match message {
            Message::Text(text) => handle(text.as_str(), conn, state, actor, &sends).await,
            Message::Binary(_) => Some(Out::Frame(error_frame(
                None,
                "unsupported_frame",
                "frames must be JSON text",
                None,
            ))),
            Message::Close(_) => return Close::Normal,
            // Pings are answered by the library; pongs only show the client is alive.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if let Some(out) = reply {
            conn.reply(out).await;
        }
    }
    Close::Normal
}

/// How to close after a failed read: 1009 for a frame over `ws.max_frame_bytes`, 1007 for text
/// that is not UTF-8, 1002 for other protocol violations; a broken connection needs no code.
fn read_failure(e: &tungstenite::Error) -> Close {
    match e {
        tungstenite::Error::Capacity(_) => Close::TooBig,
        tungstenite::Error::Utf8(_) => Close::InvalidData,
        tungstenite::Error::Protocol(_) => Close::ProtocolError,
        _ => Close::Normal,
    }
}

fn error_frame(id: Option<&Value>, code: &str, message: &str, retry_after_ms: Option<u64>) -> Frame {
    ServerFrame::Error {
        id,
        code,
        message,
        retry_after_ms,
    }
    .encode()
}

/// A domain error as an `error` frame; internal details are logged, not sent.
fn domain_error(id: Option<&Value>, e: Error) -> Frame {
    let e = ApiError::from(e);
    error_frame(id, e.code, &e.message, e.retry_after_ms)
}

/// Handles one text frame; returns the reply to send, if any (a subscription's reply is
/// queued by `subscribe` itself, in order with its replay).
async fn handle(text: &str, conn: &Arc<Conn>, state: &AppState, actor: &Actor, sends: &Arc<Semaphore>) -> Option<Out> {
    let (id, frame) = match protocol::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => return Some(Out::Frame(error_frame(e.id.as_ref(), e.code, &e.message, None))),
    };
    let id = id.as_ref();
    let result: Result<Option<Out>, Error> = async {
        Ok(match frame {
            ClientFrame::Ping => Some(Out::Frame(ServerFrame::Pong { id }.encode())),
            ClientFrame::Subscribe { room_id, since_seq } => {
                subscribe(conn, state, actor, id, &room_id, since_seq).await?;
                None
            }
            ClientFrame::Unsubscribe { room_id } => {
                let room = room(&room_id)?;
                if !state.hub.unsubscribe(conn, room) {
                    return Err(Error::invalid("not_subscribed", "you are not subscribed to this room"));
                }
                let frame = ServerFrame::Unsubscribed {
                    id,
                    room_id: room,
                    reason: "unsubscribed",
                };
                Some(Out::Unsubscribed {
                    room,
                    frame: frame.encode(),
                })
            }
            ClientFrame::Send {
                room_id,
                body,
                client_msg_id,
                reply_to,
            } => {
                // Queued in order, acked when stored: the next frame is read meanwhile, so a
                // client may have several sends in flight (up to SENDS_IN_FLIGHT).
                let room = room(&room_id)?;
                let permit = sends
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("send slots closed".into()))?;
                let receipt = state
                    .chat
                    .submit(actor, room, &body, Some(&client_msg_id), reply_to)
                    .await?;
                let conn = conn.clone();
                let id = id.cloned();
                tokio::spawn(async move {
                    let frame = match receipt.wait().await {
                        Ok((message, new)) => ServerFrame::Ack {
                            id: id.as_ref(),
                            duplicate: !new,
                            message: &message,
                        }
                        .encode(),
                        Err(e) => domain_error(id.as_ref(), e),
                    };
                    conn.reply(Out::Frame(frame)).await;
                    drop(permit);
                });
                None
            }
            ClientFrame::Typing { room_id } => {
                state.hub.typing(conn, room(&room_id)?)?;
                None
            }
            ClientFrame::Read { room_id, seq } => {
                let origin = Some((state.node.id, conn.id));
                let read = state.chat.mark_read(actor, room(&room_id)?, seq, origin).await?;
                Some(Out::Frame(ServerFrame::ReadMarker { id, state: &read }.encode()))
            }
        })
    }
    .await;
    result.unwrap_or_else(|e| Some(Out::Frame(domain_error(id, e))))
}

/// A room id from a frame; anything that is not an id names no room.
fn room(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| crate::chat::room_not_found())
}

async fn subscribe(
    conn: &Arc<Conn>,
    state: &AppState,
    actor: &Actor,
    id: Option<&Value>,
    room_id: &str,
    since_seq: Option<i64>,
) -> Result<(), Error> {
    let room = room(room_id)?;
    let hub = &state.hub;
    // A kick landing between the check and the start ends the subscription; then the check
    // is made again (and now refuses, or lets a public room's reader back in).
    for _ in 0..3 {
        hub.subscribe(conn, room)?;
        let checked = async {
            let (member, last_seq) = state.chat.watch(actor, room).await?;
            let since = since_seq.unwrap_or(last_seq);
            if !(0..=last_seq).contains(&since) {
                return Err(Error::invalid(
                    "invalid_seq",
                    format!("since_seq must be from 0 to the room's last seq ({last_seq})"),
                ));
            }
            Ok((member, since, last_seq))
        }
        .await;
        let (member, since, last_seq) = match checked {
            Ok(checked) => checked,
            Err(e) => {
                hub.unsubscribe(conn, room);
                return Err(e);
            }
        };
        let frame = ServerFrame::Subscribed {
            id,
            room_id: room,
            since_seq: since,
            last_seq,
        };
        let start = Out::Subscribed {
            room,
            from: since,
            frame: frame.encode(),
        };
        conn.make_room().await;
        if hub.confirm(conn, room, member, start) {
            return Ok(());
        }
    }
    Err(Error::conflict(
        "subscription_conflict",
        "the room's membership kept changing while subscribing; try again",
    ))
}

/// Why the writer stopped writing.
enum Stop {
    /// The socket failed: the client is gone.
    Socket,
    /// The socket took no data for two heartbeat intervals: the client stopped reading.
    Stalled,
    /// The database failed during a replay.
    Database(Error),
}

struct Writer {
    conn: Arc<Conn>,
    db: Db,
    /// Per subscribed room, the last seq sent.
    cursors: HashMap<Uuid, i64>,
    heartbeat: Duration,
    started: Instant,
    last_seen: Arc<AtomicU64>,
    /// Live messages written since the last flush, added to the shared counter at flushes
    /// (one atomic add per burst, not per frame).
    delivered: u64,
    metrics: Arc<crate::admin::metrics::Metrics>,
}

type Sink = futures_util::stream::SplitSink<Socket, Message>;

impl Writer {
    async fn run(mut self, mut sink: Sink, mut queue: tokio::sync::mpsc::Receiver<Out>) {
        // Silence is checked four times per interval and a ping goes out every fourth check. A
        // peer is dropped when it has been silent for two intervals *and* has let a ping go
        // unanswered for a whole one: a long replay, during which no ping was sent, is no
        // reason to drop anyone.
        let mut check = tokio::time::interval(self.heartbeat / 4);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.tick().await;
        let mut checks = 0u32;
        // When the oldest ping not followed by any frame from the client went out.
        let mut unanswered_since: Option<u64> = None;
        let conn = self.conn.clone();
        loop {
            let step = async {
                tokio::select! {
                    // Pings first: a room that never goes quiet must not starve the heartbeat.
                    biased;
                    _ = check.tick() => {
                        let now = self.started.elapsed().as_millis() as u64;
                        let seen = self.last_seen.load(Ordering::Relaxed);
                        if unanswered_since.is_some_and(|ping| seen >= ping) {
                            unanswered_since = None;
                        }
                        let ms = |d: Duration| d.as_millis() as u64;
                        let silent = now.saturating_sub(seen) > ms(self.heartbeat * 2);
                        let ping_ignored = unanswered_since.is_some_and(|p| now.saturating_sub(p) >= ms(self.heartbeat));
                        if silent && ping_ignored {
                            self.conn.close(Close::HeartbeatTimeout);
                            return Ok(false);
                        }
                        checks += 1;
                        if checks.is_multiple_of(4) {
                            self.io(sink.send(Message::Ping(Default::default()))).await?;
                            unanswered_since.get_or_insert(now);
                        }
                        Ok(true)
                    }
                    out = queue.recv() => match out {
                        Some(out) => {
                            self.conn.drained_some();
                            self.deliver(&mut sink, out).await?;
                            if queue.is_empty() {
                                self.io(sink.flush()).await?;
                                self.count_delivered();
                            }
                            Ok(true)
                        }
                        None => Ok(false),
                    },
                }
            };
            // Closing interrupts even a write blocked on a client that does not read.
            let go_on = tokio::select! {
                r = step => r,
                _ = conn.closing() => Ok(false),
            };
            match go_on {
                Ok(true) => {}
                Ok(false) => break,
                Err(Stop::Socket) => {
                    conn.close(Close::Normal);
                    break;
                }
                Err(Stop::Stalled) => {
                    conn.close(Close::SlowConsumer);
                    break;
                }
                Err(Stop::Database(e)) => {
                    tracing::warn!("replay failed: {e}");
                    conn.close(Close::Internal);
                    break;
                }
            }
        }
        self.count_delivered();
        let why = conn.close_reason().cloned().unwrap_or(Close::Normal);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = sink.send(why.message()).await;
            let _ = sink.close().await;
        })
        .await;
    }

    /// Adds the deliveries counted since the last time to the shared counter.
    fn count_delivered(&mut self) {
        let n = std::mem::take(&mut self.delivered);
        if n > 0 {
            self.metrics.messages_delivered.inc_by(n);
        }
    }

    async fn write(&self, sink: &mut Sink, frame: Frame) -> Result<(), Stop> {
        self.conn.frames_out.fetch_add(1, Ordering::Relaxed);
        self.io(sink.feed(Message::Text(frame))).await
    }

    /// One socket operation. One that cannot progress for two heartbeat intervals means the
    /// client has stopped reading (its window is shut): it is closed as a slow consumer even
    /// if its queue never fills (a quiet room).
    ///
    /// Nearly every operation completes at once (a frame into the write buffer, a flush into
    /// the socket's buffer): those are tried first without a timer, since arming one per frame
    /// showed in profiles of a busy room; only one that has to wait gets the deadline.
    async fn io(&self, op: impl std::future::Future<Output = Result<(), tungstenite::Error>>) -> Result<(), Stop> {
        use futures_util::FutureExt as _;
        let mut op = std::pin::pin!(op);
        let done = match op.as_mut().now_or_never() {
            Some(done) => Ok(done),
            None => tokio::time::timeout(self.heartbeat * 2, op).await,
        };
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Socket),
            Err(_) => Err(Stop::Stalled),
        }
    }

    async fn deliver(&mut self, sink: &mut Sink, out: Out) -> Result<(), Stop> {
        match out {
            Out::Frame(frame) => self.write(sink, frame).await,
            Out::Room { room, seq, frame } => {
                // About a message not delivered yet (still to be replayed): the replay carries
                // its current state, so the event is not news.
                let ahead = |cursor: &i64| seq.is_some_and(|s| s > *cursor);
                if self.cursors.get(&room).is_some_and(|c| !ahead(c)) {
                    self.write(sink, frame).await?;
                }
                Ok(())
            }
            Out::Message { room, seq, frame, at } => {
                let Some(&cursor) = self.cursors.get(&room) else {
                    return Ok(());
                };
                if seq > cursor + 1 {
                    // Published ahead of an earlier seq (or registered mid-stream): everything
                    // before it is committed, so the database has the hole.
                    self.replay(sink, room).await?;
                }
                if self.cursors.get(&room).is_some_and(|c| seq > *c) {
                    self.write(sink, frame).await?;
                    self.cursors.insert(room, seq);
                    self.delivered += 1;
                    // A queue that never empties (a busy room) still reports its deliveries.
                    if self.delivered >= 256 {
                        self.count_delivered();
                    }
                    self.metrics.delivery_latency.observe(at.elapsed().as_secs_f64());
                }
                Ok(())
            }
            Out::Subscribed { room, from, frame } => {
                self.write(sink, frame).await?;
                self.cursors.insert(room, from);
                self.replay(sink, room).await
            }
            Out::Tail { room, seq } => {
                if self.cursors.get(&room).is_some_and(|c| *c < seq) {
                    self.replay(sink, room).await?;
                }
                Ok(())
            }
            Out::Unsubscribed { room, frame } => {
                // One the client never saw start (a kick during its subscribe) is not news.
                if self.cursors.remove(&room).is_some() {
                    self.write(sink, frame).await?;
                }
                Ok(())
            }
        }
    }

    /// Sends every stored message of `room` after its cursor, oldest first.
    async fn replay(&mut self, sink: &mut Sink, room: Uuid) -> Result<(), Stop> {
        loop {
            let Some(&cursor) = self.cursors.get(&room) else {
                return Ok(());
            };
            // Ended meanwhile (a kick, a ban): not one more page — its `unsubscribed` follows.
            if !self.conn.is_subscribed(room) {
                return Ok(());
            }
            let messages = {
                let c = self.db.conn().await.map_err(Stop::Database)?;
                let rows = messages::history(&*c, room, HistoryPage::After(cursor), REPLAY_PAGE)
                    .await
                    .map_err(|e| Stop::Database(e.into()))?;
                let mut messages: Vec<MessageView> = rows.into_iter().map(MessageView::from).collect();
                crate::chat::decorate(&*c, Some(self.conn.user_id), &mut messages)
                    .await
                    .map_err(|e| Stop::Database(e.into()))?;
                messages
            };
            let full = messages.len() as i64 == REPLAY_PAGE;
            for message in messages {
                self.write(sink, ServerFrame::Message(&message).encode()).await?;
                self.cursors.insert(room, message.seq);
            }
            if !full {
                return Ok(());
            }
        }
    }
}
