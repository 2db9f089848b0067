//! `chatd bench connections`: open N authenticated idle WebSockets (each counts once its
//! `hello` arrives), hold them, close them; report how fast they opened, what failed and
//! what they cost the server in resident memory.
//!
//! One process can hold only as many sockets as its open-file limit allows; the soft limit is
//! raised to the hard one, and a count beyond it is refused up front rather than failing
//! half-way. A loopback client runs out of ephemeral ports (~28,000 per source address)
//! before the server does, so above that many sockets the source addresses are spread over
//! 127.0.0.x.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{add, client, counter, get, histogram, progress, BenchError, Errors, Latency, Result, Target};

/// Sockets per source address before spreading over 127.0.0.x.
const PORTS_PER_SOURCE: usize = 28_000;
/// Open files the process needs besides the sockets (HTTP pool, runtime, stdio).
const SPARE_FILES: u64 = 64;

#[derive(Debug, Clone)]
pub struct ConnectionsOptions {
    pub count: usize,
    pub hold: Duration,
    /// Accounts the sockets share, round-robin.
    pub users: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// The server's pid, to read its RSS from /proc when it has no /metrics.
    pub server_pid: Option<u32>,
    pub cleanup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionsReport {
    pub scenario: String,
    pub count: usize,
    pub opened: usize,
    /// Failed connects by reason (`http_503`, `timeout`, `connection_refused`…).
    pub failures: Errors,
    /// Sockets the server closed while they were held.
    pub dropped: u64,
    pub open_secs: f64,
    pub connects_per_sec: f64,
    pub connect_ms: Latency,
    /// Where the RSS figures come from: `metrics`, `proc` or `unknown` (then they are null).
    pub rss_source: String,
    pub rss_before_bytes: Option<u64>,
    pub rss_after_bytes: Option<u64>,
    pub rss_per_connection_bytes: Option<f64>,
    pub source_addresses: usize,
    pub client_cpu_percent: f64,
}

/// Refuses a count the open-file limit cannot hold (a usage error: retrying will not help).
pub fn check_limit(count: usize) -> Result<()> {
    let limit = super::raise_nofile_limit();
    if count as u64 + SPARE_FILES > limit {
        return Err(BenchError::Usage(format!(
            "--count {count} needs {} open files but this process may open at most {limit} (RLIMIT_NOFILE hard limit); use --count {} or less",
            count as u64 + SPARE_FILES,
            limit.saturating_sub(SPARE_FILES)
        )));
    }
    Ok(())
}

pub async fn run(target: &Target, options: &ConnectionsOptions) -> Result<ConnectionsReport> {
    check_limit(options.count)?;
    let prefix = super::run_prefix();
    let users = options.users.clamp(1, options.count.max(1));
    let accounts = super::register_accounts(target, &prefix, "u", users).await?;
    let sources: Vec<Option<IpAddr>> = match target.loopback() {
        Some(IpAddr::V4(_)) if options.count > PORTS_PER_SOURCE => (0..options.count.div_ceil(PORTS_PER_SOURCE))
            .map(|i| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8))))
            .collect(),
        _ => vec![None],
    };
    let (rss_source, rss_before) = server_rss(target, options.server_pid).await;

    let stop = CancellationToken::new();
    let dropped = counter();
    let mut connect_hist = histogram();
    let mut failures = Errors::new();
    let mut holders = Vec::with_capacity(options.count);
    let started = Instant::now();
    let cpu_before = super::cpu_time();
    let mut last_progress = Instant::now();
    let mut attempts = futures_util::stream::iter(0..options.count)
        .map(|i| {
            let token = &accounts[i % users].access_token;
            let local = sources[i % sources.len()];
            let node = target.node(i);
            async move {
                let t = Instant::now();
                (client::connect(&node, token, local).await, t.elapsed())
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some((result, took)) = attempts.next().await {
        match result {
            Ok(ws) => {
                let _ = connect_hist.record((took.as_micros() as u64).max(1));
                holders.push(tokio::spawn(hold(ws, stop.clone(), dropped.clone())));
            }
            Err(reason) => *failures.entry(reason).or_default() += 1,
        }
        if target.progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(format_args!(
                "connections: {} open, {} failed, {:.0} s",
                holders.len(),
                failures.values().sum::<u64>(),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    drop(attempts);
    let open_time = started.elapsed();
    let cpu_after = super::cpu_time();
    let opened = holders.len();
    // Let the server finish its per-connection work (presence, buffers) before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, rss_after) = server_rss(target, options.server_pid).await;
    if target.progress {
        progress(format_args!(
            "connections: {opened} open in {:.1} s, holding {} s",
            open_time.as_secs_f64(),
            options.hold.as_secs()
        ));
    }
    tokio::time::sleep(options.hold).await;
    stop.cancel();
    let mut sockets = Vec::with_capacity(opened);
    for h in holders {
        if let Ok(Some(ws)) = h.await {
            sockets.push(ws);
        }
    }
    futures_util::stream::iter(sockets)
        .for_each_concurrent(256, |mut ws| async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        })
        .await;
    if options.cleanup {
        super::cleanup(target, &[], &accounts).await?;
    }

    let per_connection = match (rss_before, rss_after) {
        (Some(b), Some(a)) if opened > 0 => Some(super::round1((a as f64 - b as f64) / opened as f64)),
        _ => None,
    };
    Ok(ConnectionsReport {
        scenario: "connections".into(),
        count: options.count,
        opened,
        failures,
        dropped: get(&dropped),
        open_secs: (open_time.as_secs_f64() * 100.0).round() / 100.0,
        connects_per_sec: super::round1(opened as f64 / open_time.as_secs_f64().max(1e-9)),
        connect_ms: Latency::of(&connect_hist),
        rss_source: rss_source.into(),
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_per_connection_bytes: per_connection,
        source_addresses: sources.len(),
        client_cpu_percent: super::cpu_percent(cpu_before, cpu_after, open_time),
    })
}

/// Keeps one socket read (answering pings, counting a close) until `stop`.
async fn hold(mut ws: client::Ws, stop: CancellationToken, dropped: super::Counter) -> Option<client::Ws> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Some(ws),
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    add(&dropped, 1);
                    return None;
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The server's resident memory: `chatd_process_resident_memory_bytes` (or the common
/// `process_resident_memory_bytes`) from GET /metrics when it answers Prometheus text, else
/// VmRSS of `--server-pid`, else unknown. With several nodes it is their sum, from /metrics
/// only (one pid is not the cluster).
pub async fn server_rss(target: &Target, pid: Option<u32>) -> (&'static str, Option<u64>) {
    let mut sum = 0;
    for node in target.nodes.iter() {
        match metrics_rss(target, node).await {
            Some(bytes) => sum += bytes,
            None if target.nodes.len() > 1 => return ("unknown", None),
            None => return proc_rss(pid),
        }
    }
    ("metrics", Some(sum))
}

async fn metrics_rss(target: &Target, node: &url::Url) -> Option<u64> {
    let url = format!("{}/metrics", node.as_str().trim_end_matches('/'));
    let resp = target.http.get(&url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let text = resp.text().await.ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("chatd_process_resident_memory_bytes ")
                .or_else(|| l.strip_prefix("process_resident_memory_bytes "))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn proc_rss(pid: Option<u32>) -> (&'static str, Option<u64>) {
    if let Some(pid) = pid {
        let kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
        if let Some(kb) = kb {
            return ("proc", Some(kb * 1024));
        }
    }
    ("unknown", None)
}
