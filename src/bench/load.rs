//! The message-traffic engine behind `fanout` and `rooms`: set up rooms and subscribed
//! sockets once, then run steps (one per rate) on them.
//!
//! A step is open-loop: each sender has a fixed schedule (`period = senders / rate`, senders
//! staggered evenly inside one period) and writes when its time comes whatever the server
//! answered, so overload shows as latency. Bodies carry the *intended* send time, so a sender
//! that falls behind (a blocked write) still reports the delay its message really had. The
//! first `warmup` seconds are sent but not recorded; after `duration`, the step waits at most
//! `drain` for outstanding acks and deliveries.
//!
//! The check is exact: every reader keeps a byte per expected seq of its room (`seq - base`),
//! the senders' readers collect the acked seqs, and at the end every acked seq must have been
//! seen exactly once by every subscriber of its room. Readers own their socket and their
//! tallies for the whole step and hand both back when it ends, so the hot path shares only a
//! few relaxed counters (for the progress line) and a batched histogram lock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::client::{self, WsSink, WsStream};
use super::{add, counter, failed, get, histogram, progress, Account, Counter, Errors, Latency, Result, Target};

/// One step's result: the same shape for `fanout` (one room) and `rooms` (many).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// `fanout` or `rooms`.
    pub scenario: String,
    pub rooms: usize,
    /// Subscribed sockets, over all rooms (the senders are among them).
    pub clients: usize,
    pub senders: usize,
    /// Seconds recorded (warm-up excluded).
    pub duration_secs: f64,
    /// Offered send rate, messages/s over all senders.
    pub rate: f64,
    /// Messages sent, acknowledged, delivered in the whole step (warm-up included), and the
    /// deliveries the acks call for (each acked message × its room's subscribers).
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub expected_deliveries: u64,
    /// Sends with neither an ack nor an error when the drain ended: the server is behind.
    pub unanswered: u64,
    /// Rates over the recorded window (messages sent after warm-up).
    pub sends_per_sec: f64,
    pub acks_per_sec: f64,
    pub deliveries_per_sec: f64,
    /// Intended send time → `ack` received, and → `message` received by a subscriber.
    pub ack_ms: Latency,
    pub deliver_ms: Latency,
    /// Acked messages a subscriber had not received when the drain ended (late or lost), and
    /// receipts beyond the first.
    pub missing: u64,
    pub duplicates: u64,
    /// Deliveries of seqs outside the step's range (another writer in the room).
    pub unexpected: u64,
    /// Errors by code: `rate_limited`, `closed_4008`, `send_failed`…
    pub errors: Errors,
    /// This process's CPU (user + system) over the recorded window, % of one core.
    pub client_cpu_percent: f64,
}

/// How to run one step.
#[derive(Debug, Clone)]
pub struct StepOptions {
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
}

struct Conn {
    room: usize,
    sender: bool,
    sink: Option<WsSink>,
    stream: Option<WsStream>,
}

/// A room of the run, with its owner (who archives it on cleanup).
pub struct Room {
    pub id: String,
    pub owner: Account,
}

/// Rooms and subscribed sockets, ready for steps.
pub struct Setup {
    pub scenario: &'static str,
    pub rooms: Vec<Room>,
    pub accounts: Vec<Account>,
    conns: Vec<Conn>,
    steps_run: u64,
}

/// Registers `rooms × clients` accounts, creates the rooms (the first client of each owns
/// it, the others join), connects and subscribes every socket. In each room the first
/// `senders_per_room` clients also send. Socket `i` (over all rooms) goes to node `i mod n`,
/// so with several nodes senders and subscribers alternate and deliveries cross nodes.
pub async fn setup(
    target: &Target,
    scenario: &'static str,
    prefix: &str,
    rooms: usize,
    clients: usize,
    senders_per_room: usize,
) -> Result<Setup> {
    let accounts = super::register_accounts(target, prefix, "c", rooms * clients).await?;
    let mut room_list = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let members = &accounts[r * clients..(r + 1) * clients];
        let id = super::create_room(target, &members[0], &format!("{prefix}-room{r}")).await?;
        super::join_room(target, &id, &members[1..]).await?;
        room_list.push(Room {
            id,
            owner: members[0].clone(),
        });
    }
    let started = Instant::now();
    let connected: Vec<Result<Conn>> = futures_util::stream::iter(0..rooms * clients)
        .map(|i| {
            let (room, account) = (i / clients, &accounts[i]);
            let room_id = &room_list[room].id;
            let node = target.node(i);
            async move {
                let ws = client::connect(&node, &account.access_token, None)
                    .await
                    .map_err(|e| failed(format!("connect: {e}")))?;
                let (sink, stream) = client::subscribe(ws, room_id).await?;
                Ok(Conn {
                    room,
                    sender: i % clients < senders_per_room,
                    sink: Some(sink),
                    stream: Some(stream),
                })
            }
        })
        .buffered(64)
        .collect()
        .await;
    let conns = connected.into_iter().collect::<Result<Vec<_>>>()?;
    if target.progress {
        progress(format_args!(
            "{} sockets connected and subscribed in {:.1} s",
            conns.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(Setup {
        scenario,
        rooms: room_list,
        accounts,
        conns,
        steps_run: 0,
    })
}

/// What the readers share: counters for the progress line, histograms fed in batches.
struct Shared {
    delivered: Counter,
    acked: Counter,
    errors: Counter,
    hist: Mutex<(Histogram<u64>, Histogram<u64>)>,
}

struct ReaderOut {
    stream: Option<WsStream>,
    seen: Vec<u8>,
    acked_seqs: Vec<u64>,
    delivered: u64,
    delivered_measured: u64,
    acked_measured: u64,
    /// Ack and error frames received (answers to sends).
    answers: u64,
    unexpected: u64,
    errors: Errors,
}

impl Setup {
    /// Runs one step at `options.rate` messages/s over all senders.
    pub async fn step(&mut self, target: &Target, options: &StepOptions) -> Result<LoadReport> {
        let step = self.steps_run;
        self.steps_run += 1;
        // Sockets closed in an earlier step are neither subscribers nor senders any more.
        self.conns.retain(|c| c.stream.is_some() && c.sink.is_some());
        let senders = self.conns.iter().filter(|c| c.sender).count();
        if senders == 0 || options.rate <= 0.0 {
            return Err(failed("no sender is connected, or the rate is not positive"));
        }
        let mut bases = Vec::with_capacity(self.rooms.len());
        for room in &self.rooms {
            bases.push(super::last_seq(target, &room.owner.access_token, &room.id).await?);
        }
        let window = options.warmup + options.duration;
        let period = Duration::from_secs_f64(senders as f64 / options.rate);
        let schedule: Vec<(Duration, u64)> = (0..senders)
            .map(|i| {
                let offset = period.mul_f64(i as f64 / senders as f64);
                let count = ((window.saturating_sub(offset)).as_secs_f64() / period.as_secs_f64()).ceil() as u64;
                (offset, count)
            })
            .collect();
        let mut expected_sends = vec![0u64; self.rooms.len()];
        let mut subscribers = vec![0u64; self.rooms.len()];
        let mut s = 0;
        for c in &self.conns {
            subscribers[c.room] += 1;
            if c.sender {
                expected_sends[c.room] += schedule[s].1;
                s += 1;
            }
        }

        let shared = Arc::new(Shared {
            delivered: counter(),
            acked: counter(),
            errors: counter(),
            hist: Mutex::new((histogram(), histogram())),
        });
        let sent = counter();
        let sent_measured = counter();
        let stop = CancellationToken::new();
        let start = Instant::now() + Duration::from_millis(50);
        let warmup_end_us = (start + options.warmup).duration_since(target.epoch).as_micros() as u64;

        let mut readers = Vec::with_capacity(self.conns.len());
        let mut sender_tasks = Vec::with_capacity(senders);
        let mut s = 0;
        for c in &mut self.conns {
            let stream = c.stream.take().expect("retained above");
            let capacity = expected_sends[c.room] as usize;
            readers.push(tokio::spawn(read(
                stream,
                bases[c.room],
                capacity,
                step,
                target.epoch,
                shared.clone(),
                stop.clone(),
            )));
            if c.sender {
                let (offset, count) = schedule[s];
                let plan = SendPlan {
                    room: self.rooms[c.room].id.clone(),
                    step,
                    sender: s,
                    start: start + offset,
                    period,
                    count,
                    epoch: target.epoch,
                    warmup_end_us,
                    client_msg_prefix: format!("{}.{}", &c.room, s),
                    sent: sent.clone(),
                    sent_measured: sent_measured.clone(),
                };
                let sink = c.sink.take().expect("retained above");
                sender_tasks.push((s, tokio::spawn(send(sink, plan, stop.clone()))));
                s += 1;
            }
        }

        // Recorded window: CPU is read at its ends; progress once a second.
        let label = format!("{} rate {}", self.scenario, options.rate);
        tokio::time::sleep_until((start + options.warmup).into()).await;
        let cpu_before = super::cpu_time();
        let wall_before = Instant::now();
        let end = start + window;
        let mut tick =
            tokio::time::interval_at((Instant::now() + Duration::from_secs(1)).into(), Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::time::sleep_until(end.into()) => break,
            }
            if target.progress {
                progress(format_args!(
                    "{label}: {:.0} s sent {} acked {} delivered {} errors {}",
                    start.elapsed().as_secs_f64(),
                    get(&sent),
                    get(&shared.acked),
                    get(&shared.delivered),
                    get(&shared.errors)
                ));
            }
        }
        let cpu_after = super::cpu_time();
        let wall = wall_before.elapsed();

        // Drain: wait (bounded) until every send is answered and every ack delivered.
        let mut sinks: Vec<(usize, Option<WsSink>)> = Vec::with_capacity(sender_tasks.len());
        let mut errors = Errors::new();
        for (s, task) in sender_tasks {
            // A sender's schedule ends with the window; the stop token bounds a blocked write.
            let joined = tokio::time::timeout(options.drain + Duration::from_secs(1), task).await;
            match joined {
                Ok(Ok((sink, errs))) => {
                    merge(&mut errors, errs);
                    sinks.push((s, sink));
                }
                _ => {
                    *errors.entry("sender_stuck".into()).or_default() += 1;
                    sinks.push((s, None));
                }
            }
        }
        let drain_end = Instant::now() + options.drain;
        loop {
            let answered = get(&shared.acked) + get(&shared.errors);
            // Rooms are the same size, so acks × subscribers per room is the deliveries due.
            let deliveries_due = get(&shared.acked) * subscribers.iter().max().copied().unwrap_or(0);
            if (answered >= get(&sent) && get(&shared.delivered) >= deliveries_due) || Instant::now() >= drain_end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();

        // Collect the readers' tallies and give the sockets back for the next step.
        let mut outs = Vec::with_capacity(readers.len());
        for r in readers {
            outs.push(r.await.map_err(|e| failed(format!("reader task: {e}")))?);
        }
        let mut sender_sinks = sinks.into_iter();
        for (c, out) in self.conns.iter_mut().zip(outs.iter_mut()) {
            c.stream = out.stream.take();
            if c.sender {
                c.sink = sender_sinks.next().and_then(|(_, sink)| sink);
            }
        }

        // The exact check, room by room.
        let rooms = self.rooms.len();
        let mut acked_sets: Vec<Vec<bool>> = expected_sends.iter().map(|&n| vec![false; n as usize]).collect();
        let mut report_acked = 0u64;
        let mut acked_measured = 0u64;
        for (c, out) in self.conns.iter().zip(&outs) {
            acked_measured += out.acked_measured;
            for &seq in &out.acked_seqs {
                let idx = seq.wrapping_sub(bases[c.room] + 1) as usize;
                if let Some(slot) = acked_sets[c.room].get_mut(idx) {
                    if !*slot {
                        *slot = true;
                        report_acked += 1;
                    }
                }
            }
        }
        let (mut missing, mut duplicates, mut delivered, mut delivered_measured, mut unexpected) = (0, 0, 0, 0, 0);
        let mut expected_deliveries = 0;
        let mut answers = 0;
        for (c, out) in self.conns.iter().zip(outs) {
            let acked = &acked_sets[c.room];
            expected_deliveries += acked.iter().filter(|a| **a).count() as u64;
            for (i, &n) in out.seen.iter().enumerate() {
                if acked[i] && n == 0 {
                    missing += 1;
                }
                duplicates += u64::from(n.saturating_sub(1));
            }
            delivered += out.delivered;
            delivered_measured += out.delivered_measured;
            unexpected += out.unexpected;
            answers += out.answers;
            merge(&mut errors, out.errors);
        }
        let (ack_hist, deliver_hist) = {
            let guard = shared.hist.lock().unwrap_or_else(|p| p.into_inner());
            (guard.0.clone(), guard.1.clone())
        };
        let secs = options.duration.as_secs_f64();
        let per_sec = |n: u64| super::round1(n as f64 / secs);
        let report = LoadReport {
            scenario: self.scenario.into(),
            rooms,
            clients: self.conns.len(),
            senders,
            duration_secs: secs,
            rate: options.rate,
            sent: get(&sent),
            acked: report_acked,
            delivered,
            expected_deliveries,
            unanswered: get(&sent).saturating_sub(answers),
            sends_per_sec: per_sec(get(&sent_measured)),
            acks_per_sec: per_sec(acked_measured),
            deliveries_per_sec: per_sec(delivered_measured),
            ack_ms: Latency::of(&ack_hist),
            deliver_ms: Latency::of(&deliver_hist),
            missing,
            duplicates,
            unexpected,
            errors,
            client_cpu_percent: super::cpu_percent(cpu_before, cpu_after, wall),
        };
        Ok(report)
    }

    /// Closes every socket politely (bounded).
    pub async fn close(&mut self) {
        for c in &mut self.conns {
            if let (Some(sink), Some(stream)) = (c.sink.take(), c.stream.take()) {
                if let Ok(mut ws) = sink.reunite(stream) {
                    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
                }
            }
        }
        self.conns.clear();
    }

    /// The rooms with their owners, for cleanup.
    pub fn room_owners(&self) -> Vec<(String, Account)> {
        self.rooms.iter().map(|r| (r.id.clone(), r.owner.clone())).collect()
    }
}

fn merge(into: &mut Errors, from: Errors) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

struct SendPlan {
    room: String,
    step: u64,
    sender: usize,
    start: Instant,
    period: Duration,
    count: u64,
    epoch: Instant,
    warmup_end_us: u64,
    client_msg_prefix: String,
    sent: Counter,
    sent_measured: Counter,
}

/// One sender's open-loop schedule: message `k` is due at `start + k × period` and carries
/// that time, however late the write happens.
async fn send(mut sink: WsSink, plan: SendPlan, stop: CancellationToken) -> (Option<WsSink>, Errors) {
    let mut errors = Errors::new();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    for k in 0..plan.count {
        let due = plan.start + plan.period.mul_f64(k as f64);
        tokio::time::sleep_until(due.into()).await;
        let t = due.duration_since(plan.epoch).as_micros() as u64;
        let warm = t < plan.warmup_end_us;
        let body = format!("t={t} r={} w={} s={} n={k}", plan.step, u8::from(warm), plan.sender);
        let client_msg_id = format!("{}.{}.{}.{k}", &run_id[..12], plan.client_msg_prefix, plan.step);
        let frame = client::send_frame(k, &plan.room, &body, &client_msg_id);
        let written = tokio::select! {
            r = sink.send(frame) => r.is_ok(),
            _ = stop.cancelled() => false,
        };
        if !written {
            *errors.entry("send_failed".into()).or_default() += plan.count - k;
            return (None, errors);
        }
        add(&plan.sent, 1);
        if !warm {
            add(&plan.sent_measured, 1);
        }
    }
    (Some(sink), errors)
}

/// Latencies are recorded locally and moved into the shared histograms in batches.
const BATCH: usize = 256;

/// One socket's reader for one step: tallies deliveries per seq, acks, errors.
async fn read(
    mut stream: WsStream,
    base: u64,
    capacity: usize,
    step: u64,
    epoch: Instant,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> ReaderOut {
    let mut out = ReaderOut {
        stream: None,
        seen: vec![0u8; capacity],
        acked_seqs: Vec::new(),
        delivered: 0,
        delivered_measured: 0,
        acked_measured: 0,
        answers: 0,
        unexpected: 0,
        errors: Errors::new(),
    };
    let mut ack_batch: Vec<u64> = Vec::with_capacity(BATCH);
    let mut deliver_batch: Vec<u64> = Vec::with_capacity(BATCH);
    let flush = |acks: &mut Vec<u64>, delivers: &mut Vec<u64>| {
        let mut h = shared.hist.lock().unwrap_or_else(|p| p.into_inner());
        for v in acks.drain(..) {
            h.0.saturating_record(v.max(1));
        }
        for v in delivers.drain(..) {
            h.1.saturating_record(v.max(1));
        }
    };
    let mut alive = true;
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            frame = stream.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(f))) => {
                let code = f.map(|f| u16::from(f.code)).unwrap_or(1005);
                *out.errors.entry(format!("closed_{code}")).or_default() += 1;
                add(&shared.errors, 1);
                alive = false;
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                *out.errors.entry("socket_error".into()).or_default() += 1;
                add(&shared.errors, 1);
                alive = false;
                break;
            }
        };
        let bytes = text.as_bytes();
        let now = epoch.elapsed().as_micros() as u64;
        match client::frame_type(bytes) {
            Some("message") => {
                let Some(stamp) = client::scan_stamp(bytes).filter(|s| s.step == step) else {
                    out.unexpected += 1;
                    continue;
                };
                match stamp
                    .seq
                    .checked_sub(base + 1)
                    .and_then(|i| out.seen.get_mut(i as usize))
                {
                    Some(n) => *n = n.saturating_add(1),
                    None => {
                        out.unexpected += 1;
                        continue;
                    }
                }
                out.delivered += 1;
                add(&shared.delivered, 1);
                if !stamp.warmup {
                    out.delivered_measured += 1;
                    deliver_batch.push(now.saturating_sub(stamp.sent_us));
                }
            }
            Some("ack") => {
                let Some(stamp) = client::scan_stamp(bytes).filter(|s| s.step == step) else {
                    continue;
                };
                out.answers += 1;
                out.acked_seqs.push(stamp.seq);
                add(&shared.acked, 1);
                if !stamp.warmup {
                    out.acked_measured += 1;
                    ack_batch.push(now.saturating_sub(stamp.sent_us));
                }
            }
            Some("error") => {
                out.answers += 1;
                *out.errors.entry(client::error_frame_code(text.as_str())).or_default() += 1;
                add(&shared.errors, 1);
            }
            _ => {}
        }
        if ack_batch.len() >= BATCH || deliver_batch.len() >= BATCH {
            flush(&mut ack_batch, &mut deliver_batch);
        }
    }
    flush(&mut ack_batch, &mut deliver_batch);
    if alive {
        out.stream = Some(stream);
    }
    out
}
