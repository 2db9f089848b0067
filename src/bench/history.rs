//! `chatd bench history`: seed one room with M messages as fast as the server takes them
//! (a few pipelined WebSocket senders, a bounded number of sends in flight each), then time
//! Q history pages (`GET /rooms/{id}/messages?limit=50`): half the newest page, half pages
//! before a random seq, reported apart. `--room ID` reuses a room seeded by an earlier run
//! (and tops it up if it holds fewer than M messages), so a million-message room is seeded
//! once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use super::{
    add, client, counter, error_code, failed, get, histogram, progress, Account, Errors, Latency, Result, Target,
};

/// Pipelined senders used for seeding.
const SEEDERS: usize = 4;
/// A send without an answer for this long ends the seeding.
const SEED_STALL: Duration = Duration::from_secs(60);
/// History page size.
const PAGE: u64 = 50;

#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub messages: u64,
    pub requests: usize,
    pub concurrency: usize,
    /// An existing public room to reuse.
    pub room: Option<String>,
    /// Sends in flight per seeding socket.
    pub in_flight: usize,
    pub cleanup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryReport {
    pub scenario: String,
    pub room_id: String,
    /// The room's last seq when the requests ran.
    pub messages: u64,
    pub seeded: u64,
    pub seed_secs: f64,
    pub seed_per_sec: f64,
    pub seed_errors: Errors,
    pub requests: usize,
    pub requests_per_sec: f64,
    pub newest_ms: Latency,
    pub before_ms: Latency,
    /// Requests that did not answer 200, by code.
    pub errors: Errors,
}

pub async fn run(target: &Target, options: &HistoryOptions) -> Result<HistoryReport> {
    let prefix = super::run_prefix();
    let mut accounts = super::register_accounts(target, &prefix, "h", SEEDERS).await?;
    let (room, created) = match &options.room {
        Some(id) => {
            super::join_room(target, id, &accounts).await?;
            (id.clone(), false)
        }
        None => {
            let id = super::create_room(target, &accounts[0], &format!("{prefix}-history")).await?;
            super::join_room(target, &id, &accounts[1..]).await?;
            (id, true)
        }
    };
    let result = async {
        let have = super::last_seq(target, &accounts[0].access_token, &room).await?;
        let to_seed = options.messages.saturating_sub(have);
        let started = Instant::now();
        let (seeded, seed_errors) = if to_seed > 0 {
            seed(target, &room, &accounts, to_seed, options.in_flight.max(1)).await?
        } else {
            if target.progress {
                progress(format_args!("history: room {room} already holds {have} messages"));
            }
            (0, Errors::new())
        };
        let seed_time = started.elapsed();
        // Seeding a large room can outlast the access token.
        super::login(target, &mut accounts[0]).await?;
        let last = super::last_seq(target, &accounts[0].access_token, &room).await?;
        let (wall, newest, before, errors) = query(target, &accounts[0], &room, last, options).await;
        Ok(HistoryReport {
            scenario: "history".into(),
            room_id: room.clone(),
            messages: last,
            seeded,
            seed_secs: super::round1(seed_time.as_secs_f64()),
            seed_per_sec: if seeded > 0 {
                super::round1(seeded as f64 / seed_time.as_secs_f64())
            } else {
                0.0
            },
            seed_errors,
            requests: options.requests,
            requests_per_sec: super::round1(options.requests as f64 / wall.as_secs_f64().max(1e-9)),
            newest_ms: Latency::of(&newest),
            before_ms: Latency::of(&before),
            errors,
        })
    }
    .await;
    if options.cleanup {
        let rooms = if created {
            vec![(room.clone(), accounts[0].clone())]
        } else {
            Vec::new()
        };
        super::cleanup(target, &rooms, &accounts).await?;
    }
    result
}

/// Sends `total` messages over one socket per account, at most `in_flight` unanswered per
/// socket; returns the acked count and the errors by code.
async fn seed(
    target: &Target,
    room: &str,
    accounts: &[Account],
    total: u64,
    in_flight: usize,
) -> Result<(u64, Errors)> {
    let acked = counter();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let n = accounts.len() as u64;
    for (i, a) in accounts.iter().enumerate() {
        let share = total / n + u64::from((i as u64) < total % n);
        let ws = client::connect(&target.node(i), &a.access_token, None)
            .await
            .map_err(|e| failed(format!("seed connect: {e}")))?;
        tasks.push(tokio::spawn(seed_one(
            ws,
            room.to_owned(),
            i,
            share,
            in_flight,
            acked.clone(),
        )));
    }
    let progress_on = target.progress;
    let ticker = {
        let acked = acked.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if progress_on {
                    let done = get(&acked);
                    progress(format_args!(
                        "history: seeded {done}/{total} ({:.0}/s)",
                        done as f64 / started.elapsed().as_secs_f64()
                    ));
                }
            }
        })
    };
    let mut errors = Errors::new();
    for t in tasks {
        match t.await {
            Ok(errs) => {
                for (k, v) in errs {
                    *errors.entry(k).or_default() += v;
                }
            }
            Err(e) => *errors.entry(format!("task_{e}")).or_default() += 1,
        }
    }
    ticker.abort();
    Ok((get(&acked), errors))
}

async fn seed_one(
    ws: client::Ws,
    room: String,
    seeder: usize,
    share: u64,
    in_flight: usize,
    acked: super::Counter,
) -> Errors {
    let (mut sink, mut stream) = ws.split();
    let permits = Arc::new(Semaphore::new(in_flight));
    let reader = {
        let permits = permits.clone();
        tokio::spawn(async move {
            let mut errors = Errors::new();
            let mut answered = 0u64;
            while answered < share {
                let frame = match tokio::time::timeout(SEED_STALL, stream.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {
                        *errors.entry("socket_closed".into()).or_default() += 1;
                        break;
                    }
                    Ok(Some(Ok(_))) => continue,
                    Err(_) => {
                        *errors.entry("stalled".into()).or_default() += 1;
                        break;
                    }
                };
                match client::frame_type(frame.as_bytes()) {
                    Some("ack") => add(&acked, 1),
                    Some("error") => {
                        *errors.entry(client::error_frame_code(frame.as_str())).or_default() += 1;
                    }
                    _ => continue,
                }
                answered += 1;
                permits.add_permits(1);
            }
            // Unblock the writer if the reader stopped early.
            permits.close();
            errors
        })
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    for k in 0..share {
        match tokio::time::timeout(SEED_STALL, permits.acquire()).await {
            Ok(Ok(p)) => p.forget(),
            _ => break,
        }
        let body = format!("history seed {seeder}.{k}");
        let frame = client::send_frame(k, &room, &body, &format!("{}.{seeder}.{k}", &run[..12]));
        if sink.send(frame).await.is_err() {
            break;
        }
    }
    let errors = reader.await.unwrap_or_default();
    let _ = sink.close().await;
    errors
}

type Queried = (
    Duration,
    hdrhistogram::Histogram<u64>,
    hdrhistogram::Histogram<u64>,
    Errors,
);

/// `requests` history pages with `concurrency` workers (worker `w` on node `w mod n`): even
/// ones the newest page, odd ones the page before a random seq.
async fn query(target: &Target, account: &Account, room: &str, last: u64, options: &HistoryOptions) -> Queried {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.concurrency.max(1))
        .map(|w| {
            let (target, next) = (target.node(w), next.clone());
            let (token, room, total) = (account.access_token.clone(), room.to_owned(), options.requests);
            tokio::spawn(async move {
                let (mut newest, mut before, mut errors) = (histogram(), histogram(), Errors::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let cursor = (i % 2 == 1 && last > 1).then(|| {
                        use rand::Rng as _;
                        rand::thread_rng().gen_range(PAGE.min(last - 1) + 1..=last)
                    });
                    let path = match cursor {
                        Some(c) => format!("/rooms/{room}/messages?limit={PAGE}&before={c}"),
                        None => format!("/rooms/{room}/messages?limit={PAGE}"),
                    };
                    let t = Instant::now();
                    match target.call(reqwest::Method::GET, &path, Some(&token), None).await {
                        Ok((200, _)) => {
                            let us = (t.elapsed().as_micros() as u64).max(1);
                            let h = if cursor.is_some() { &mut before } else { &mut newest };
                            let _ = h.record(us);
                        }
                        Ok((status, v)) => *errors.entry(error_code(status, &v)).or_default() += 1,
                        Err(_) => *errors.entry("request_failed".into()).or_default() += 1,
                    }
                }
                (newest, before, errors)
            })
        })
        .collect();
    let (mut newest, mut before, mut errors) = (histogram(), histogram(), Errors::new());
    for w in workers {
        if let Ok((n, b, e)) = w.await {
            let _ = newest.add(&n);
            let _ = before.add(&b);
            for (k, v) in e {
                *errors.entry(k).or_default() += v;
            }
        }
    }
    (started.elapsed(), newest, before, errors)
}
