//! `chatd bench`: a load generator that drives a running chatd the way real clients do.
//!
//! It registers its own accounts and rooms (every name starts with a run prefix,
//! `bench-<6 random chars>-`), connects WebSockets, and runs one scenario: `fanout`, `rooms`
//! (both in [`load`]: an open-loop sender schedule and an exact delivery check),
//! `connections`, `login`, `history`; `plot` draws a fan-out sweep. Each scenario is a library
//! function returning a report, so the integration tests run the same code as the CLI.
//! Given several nodes of one cluster (`--url A,B`), the k-th client of a scenario talks to
//! node `k mod n` ([`Target::node`]), so messages cross nodes; setup goes to the first.
//!
//! Measuring honestly is the point: sends follow a fixed schedule whatever the server answers
//! (overload shows as latency, not as a slower sender), latency is taken from the *intended*
//! send time carried in the message body (no coordinated omission), warm-up is not recorded,
//! every acknowledged message must reach every subscriber exactly once, and errors are counted
//! by their code, never hidden. Every loop is bounded in count and in time.

pub mod client;
pub mod connections;
pub mod fanout;
pub mod history;
pub mod load;
pub mod login;
pub mod plot;
pub mod rooms;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

/// A failure of a bench run: bad options (usage) or something the server or the network did.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

pub type Result<T> = std::result::Result<T, BenchError>;

pub(crate) fn failed(message: impl Into<String>) -> BenchError {
    BenchError::Failed(message.into())
}

/// The server under test: its base URL and one pooled HTTP client.
///
/// A run may drive several nodes of one cluster (`--url A,B`, sharing one database): setup
/// work (accounts, rooms, cleanup) goes to the first, and each client takes its own handle
/// from [`Target::node`], so the k-th client of a scenario talks to node `k mod n`.
#[derive(Clone)]
pub struct Target {
    /// The node this handle talks to: the first of `nodes`, or the one `node` picked.
    pub base: url::Url,
    /// Every node of the run, in the order given.
    pub nodes: Arc<[url::Url]>,
    pub http: reqwest::Client,
    /// Whether progress lines go to stderr once a second (off in tests).
    pub progress: bool,
    /// Start of the run: message bodies carry microseconds since this instant.
    pub epoch: Instant,
}

impl Target {
    /// `urls`: one base URL, or several nodes separated by commas.
    pub fn new(urls: &str, progress: bool) -> Result<Self> {
        let nodes = parse_urls(urls)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(512)
            .build()
            .map_err(|e| failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base: nodes[0].clone(),
            nodes: nodes.into(),
            http,
            progress,
            epoch: Instant::now(),
        })
    }

    /// The handle for the `k`-th client of a scenario: node `k mod n`, the same HTTP pool
    /// and epoch.
    pub fn node(&self, k: usize) -> Target {
        Target {
            base: self.nodes[k % self.nodes.len()].clone(),
            ..self.clone()
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!(
            "{}api/v1{path}",
            self.base.as_str().trim_end_matches('/').to_owned() + "/"
        )
    }

    /// The WebSocket URL (`ws://host:port/api/v1/ws`).
    pub fn ws_url(&self) -> String {
        let scheme = if self.base.scheme() == "https" { "wss" } else { "ws" };
        let host = self.base.host_str().unwrap_or("127.0.0.1");
        let port = self.base.port_or_known_default().unwrap_or(80);
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        format!("{scheme}://{host}:{port}/api/v1/ws")
    }

    /// The server's address when it is a loopback IP (then source addresses can be spread).
    pub fn loopback(&self) -> Option<IpAddr> {
        match self.base.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain("localhost")) => Some(IpAddr::from([127, 0, 0, 1])),
            _ => None,
        }
    }

    /// Microseconds since the run's epoch.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// One JSON request; returns the status and the body (`null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self.http.request(method, self.api(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| failed(format!("{path}: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| failed(format!("{path}: {e}")))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// `call`, which must answer `expect`; any other status is an error naming `what`.
    pub async fn call_expect(
        &self,
        what: &str,
        expect: u16,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, value) = self.call(method, path, token, body).await?;
        if status != expect {
            return Err(failed(format!("{what}: {status} {}", error_code(status, &value))));
        }
        Ok(value)
    }
}

/// Parses `--url`: one base URL or a comma list of them, each `http(s)://HOST[:PORT]`.
fn parse_urls(urls: &str) -> Result<Vec<url::Url>> {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            if url.is_empty() {
                return Err(BenchError::Usage("--url: an empty entry in the list".into()));
            }
            let base = url::Url::parse(url).map_err(|e| BenchError::Usage(format!("--url {url}: {e}")))?;
            if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
                return Err(BenchError::Usage(format!("--url {url}: expected http://HOST:PORT")));
            }
            Ok(base)
        })
        .collect()
}

/// The code of an error body (`{"error": {"code": …}}`), or the status.
pub fn error_code(status: u16, body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("http_{status}"))
}

/// A run's names: `bench-<6 random chars>`.
pub fn run_prefix() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let id: String = (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("bench-{id}")
}

/// An account this run registered.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// How many registrations or logins are in flight: the server hashes passwords on a small
/// pool and answers 503 when too many queue, so more would only add retries.
const AUTH_CONCURRENCY: usize = 8;

/// Registers `count` accounts named `<prefix>-<kind><n>`, a few at a time, retrying 503s.
pub async fn register_accounts(target: &Target, prefix: &str, kind: &str, count: usize) -> Result<Vec<Account>> {
    let password = format!("{prefix}-pw-{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    let results: Vec<Result<Account>> = futures_util::stream::iter(0..count)
        .map(|i| {
            let username = format!("{prefix}-{kind}{i}");
            let password = password.clone();
            async move {
                let body = json!({"username": username, "password": password});
                let value = auth_request(target, "/auth/register", body, 201).await?;
                Ok(account_from(&value, username, password))
            }
        })
        .buffered(AUTH_CONCURRENCY)
        .collect()
        .await;
    let accounts = results.into_iter().collect::<Result<Vec<_>>>()?;
    if target.progress && count > 0 {
        progress(format_args!(
            "registered {count} accounts in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(accounts)
}

fn account_from(value: &Value, username: String, password: String) -> Account {
    Account {
        username,
        password,
        access_token: value["access_token"].as_str().unwrap_or_default().to_owned(),
        refresh_token: value["refresh_token"].as_str().unwrap_or_default().to_owned(),
    }
}

/// POSTs to an auth endpoint, retrying (bounded) while the server answers 503 `unavailable`.
async fn auth_request(target: &Target, path: &str, body: Value, expect: u16) -> Result<Value> {
    for attempt in 0..20u64 {
        let (status, value) = target
            .call(reqwest::Method::POST, path, None, Some(body.clone()))
            .await?;
        if status == expect {
            return Ok(value);
        }
        if status != 503 {
            return Err(failed(format!("{path}: {status} {}", error_code(status, &value))));
        }
        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
    }
    Err(failed(format!("{path}: the server stayed unavailable (503)")))
}

/// Logs an account in again (fresh tokens, e.g. after a long seeding).
pub async fn login(target: &Target, account: &mut Account) -> Result<()> {
    let body = json!({"username": account.username, "password": account.password});
    let value = auth_request(target, "/auth/login", body, 200).await?;
    *account = account_from(&value, account.username.clone(), account.password.clone());
    Ok(())
}

/// Creates a public room owned by `owner`; returns its id.
pub async fn create_room(target: &Target, owner: &Account, name: &str) -> Result<String> {
    let value = target
        .call_expect(
            &format!("create room {name}"),
            201,
            reqwest::Method::POST,
            "/rooms",
            Some(&owner.access_token),
            Some(json!({"name": name})),
        )
        .await?;
    value["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| failed("create room: no id"))
}

/// Makes every account a member of the room (public: joining is enough).
pub async fn join_room(target: &Target, room: &str, members: &[Account]) -> Result<()> {
    let path = format!("/rooms/{room}/join");
    let results: Vec<Result<()>> = futures_util::stream::iter(members)
        .map(|a| {
            let path = path.clone();
            async move {
                target
                    .call_expect(
                        "join room",
                        200,
                        reqwest::Method::POST,
                        &path,
                        Some(&a.access_token),
                        None,
                    )
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The room's current last seq.
pub async fn last_seq(target: &Target, token: &str, room: &str) -> Result<u64> {
    let path = format!("/rooms/{room}");
    let value = target
        .call_expect(
            &format!("get room {room}"),
            200,
            reqwest::Method::GET,
            &path,
            Some(token),
            None,
        )
        .await?;
    value["last_seq"]
        .as_u64()
        .ok_or_else(|| failed("get room: no last_seq"))
}

/// What `--cleanup` removes: rooms are archived by their owner (`chatd room delete` purges
/// them for good), then the accounts are deleted. Failures are counted, not fatal.
pub async fn cleanup(target: &Target, rooms: &[(String, Account)], accounts: &[Account]) -> Result<()> {
    let mut failures = 0usize;
    for (room, owner) in rooms {
        let (status, _) = target
            .call(
                reqwest::Method::DELETE,
                &format!("/rooms/{room}"),
                Some(&owner.access_token),
                None,
            )
            .await?;
        if status != 204 {
            failures += 1;
        }
    }
    let results: Vec<bool> = futures_util::stream::iter(accounts)
        .map(|a| async move {
            // A long run may outlive the access token; the refresh token is good for days.
            let token = match target
                .call(
                    reqwest::Method::POST,
                    "/auth/refresh",
                    None,
                    Some(json!({"refresh_token": a.refresh_token})),
                )
                .await
            {
                Ok((200, v)) => v["access_token"].as_str().unwrap_or_default().to_owned(),
                _ => a.access_token.clone(),
            };
            matches!(
                target
                    .call(
                        reqwest::Method::DELETE,
                        "/users/me",
                        Some(&token),
                        Some(json!({"password": a.password}))
                    )
                    .await,
                Ok((204, _))
            )
        })
        .buffer_unordered(AUTH_CONCURRENCY)
        .collect()
        .await;
    failures += results.iter().filter(|ok| !**ok).count();
    if failures > 0 {
        return Err(failed(format!(
            "cleanup: {failures} of {} rooms and accounts could not be removed",
            rooms.len() + accounts.len()
        )));
    }
    if target.progress {
        progress(format_args!(
            "cleanup: archived {} rooms (purge them with `chatd room delete`), deleted {} accounts",
            rooms.len(),
            accounts.len()
        ));
    }
    Ok(())
}

/// One progress line on stderr (never a panic if stderr is gone).
pub fn progress(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "bench: {args}");
}

/// A latency histogram in microseconds, up to one hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// `p50/p90/p99/p99.9/max` in ms, for tables.
    pub fn cell(&self) -> String {
        format!(
            "{:.1}/{:.1}/{:.1}/{:.1}/{:.1}",
            self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

/// Errors by code (`rate_limited`, `closed_4008`, `connect_refused`…).
pub type Errors = BTreeMap<String, u64>;

pub fn errors_cell(errors: &Errors) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    errors
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// This process's CPU time (user + system) so far.
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// CPU used between two `cpu_time` readings over `wall`, as a percentage of one core.
pub fn cpu_percent(before: Duration, after: Duration, wall: Duration) -> f64 {
    let pct = after.saturating_sub(before).as_secs_f64() / wall.as_secs_f64().max(1e-9) * 100.0;
    (pct * 10.0).round() / 10.0
}

/// Raises this process's open-file soft limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// Runs `future` on the runtime `--threads` asks for: one thread by default.
pub fn block_on<T>(threads: usize, future: impl std::future::Future<Output = T>) -> Result<T> {
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .map_err(|e| failed(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// Shared counters a progress line reads once a second.
pub type Counter = Arc<std::sync::atomic::AtomicU64>;

pub fn counter() -> Counter {
    Arc::new(std::sync::atomic::AtomicU64::new(0))
}

pub fn get(c: &Counter) -> u64 {
    c.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn add(c: &Counter, n: u64) {
    c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_list_spreads_clients_round_robin_and_setup_goes_to_the_first() {
        let target = Target::new("http://127.0.0.1:8081, http://127.0.0.1:8082/", false).unwrap();
        assert_eq!(target.nodes.len(), 2);
        assert_eq!(target.api("/rooms"), "http://127.0.0.1:8081/api/v1/rooms");
        let ports: Vec<u16> = (0..5).map(|k| target.node(k).base.port().unwrap()).collect();
        assert_eq!(ports, [8081, 8082, 8081, 8082, 8081]);
        // A node's handle still knows every node.
        assert_eq!(target.node(1).node(2).ws_url(), "ws://127.0.0.1:8081/api/v1/ws");
    }

    #[test]
    fn a_single_url_is_one_node() {
        let target = Target::new("http://127.0.0.1:8080", false).unwrap();
        assert_eq!(target.nodes.len(), 1);
        assert_eq!(target.node(7).base, target.base);
    }

    #[test]
    fn url_list_refuses_empty_entries_and_other_schemes() {
        for bad in [
            "",
            "http://127.0.0.1:8081,",
            "http://127.0.0.1:8081,,http://127.0.0.1:8082",
            "ws://h:1",
        ] {
            assert!(
                matches!(Target::new(bad, false), Err(BenchError::Usage(_))),
                "{bad:?} accepted"
            );
        }
    }
}
