//! Prometheus metrics, served as text at `/metrics` (OpenMetrics format).
//!
//! The registry is explicit state (in `AppState`), not a global recorder: several servers in
//! one process (the tests) each count their own. Counters that the hot paths touch are plain
//! atomics; what is already known elsewhere (connections, subscriptions, the pool) is read
//! when scraped instead of being kept twice.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's template (`/api/v1/rooms/{id}/messages`), never the raw path.
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: &'static str,
}

/// Everything counted. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    pub messages_received: Counter,
    pub messages_delivered: Counter,
    pub delivery_latency: Histogram,
    pub slow_consumer_closes: Counter,
    pub admin_closes: Counter,
    pub frames_in: Counter,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    // Read at scrape time.
    connections: Gauge,
    users_online: Gauge,
    subscriptions: Gauge,
    rooms_live: Gauge,
    db_pool: Family<PoolLabels, Gauge>,
    db_pool_max: Gauge,
    uptime: Gauge<f64, AtomicU64>,
    rss: Gauge,
}

/// The values read from elsewhere when scraped.
pub struct Live {
    pub connections: u64,
    pub users_online: u64,
    pub subscriptions: u64,
    pub rooms_live: u64,
    pub pool_idle: u32,
    pub pool_in_use: u32,
    pub pool_max: u32,
    pub uptime_secs: f64,
    pub rss_bytes: Option<u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("chatd");
        let m = Self {
            registry: Registry::default(),
            messages_received: Counter::default(),
            messages_delivered: Counter::default(),
            // 100 µs .. ~3.3 s
            delivery_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            slow_consumer_closes: Counter::default(),
            admin_closes: Counter::default(),
            frames_in: Counter::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))),
            connections: Gauge::default(),
            users_online: Gauge::default(),
            subscriptions: Gauge::default(),
            rooms_live: Gauge::default(),
            db_pool: Family::default(),
            db_pool_max: Gauge::default(),
            uptime: Gauge::default(),
            rss: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "messages_received",
            "Messages stored and published through this node",
            m.messages_received.clone(),
        );
        r.register(
            "messages_delivered",
            "Live message frames written to WebSocket clients",
            m.messages_delivered.clone(),
        );
        r.register(
            "delivery_latency_seconds",
            "From a message's publication to its frame being written to a subscriber's socket",
            m.delivery_latency.clone(),
        );
        r.register(
            "slow_consumer_closes",
            "Connections closed because they did not read fast enough (close code 4008)",
            m.slow_consumer_closes.clone(),
        );
        r.register(
            "admin_closes",
            "Connections closed by an administrator (close code 4010)",
            m.admin_closes.clone(),
        );
        r.register(
            "ws_frames_received",
            "Frames received from WebSocket clients",
            m.frames_in.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            m.http_duration.clone(),
        );
        r.register("ws_connections", "Open WebSocket connections", m.connections.clone());
        r.register(
            "users_online",
            "Distinct users with at least one WebSocket connection",
            m.users_online.clone(),
        );
        r.register(
            "ws_subscriptions",
            "Room subscriptions over all connections",
            m.subscriptions.clone(),
        );
        r.register("rooms_live", "Rooms with at least one subscriber", m.rooms_live.clone());
        r.register(
            "db_pool_connections",
            "Pooled database connections, by state (idle, in_use)",
            m.db_pool.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "The database pool's size limit",
            m.db_pool_max.clone(),
        );
        r.register("uptime_seconds", "Seconds since this node started", m.uptime.clone());
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            m.rss.clone(),
        );
        Self { registry, ..m }
    }

    /// The metrics as Prometheus (OpenMetrics) text, with the live values read now.
    pub fn render(&self, live: &Live) -> String {
        self.connections.set(live.connections as i64);
        self.users_online.set(live.users_online as i64);
        self.subscriptions.set(live.subscriptions as i64);
        self.rooms_live.set(live.rooms_live as i64);
        self.db_pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(live.pool_idle as i64);
        self.db_pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(live.pool_in_use as i64);
        self.db_pool_max.set(live.pool_max as i64);
        self.uptime.set(live.uptime_secs);
        self.rss.set(live.rss_bytes.unwrap_or(0) as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts an answered HTTP request.
    pub fn request(&self, path: &str, method: &str, status: u16, seconds: f64) {
        let route = route_template(path);
        // Any token is a valid HTTP method; only the standard ones get a series of their own.
        const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        let method = METHODS.iter().find(|m| **m == method).copied().unwrap_or("other");
        self.http_requests
            .get_or_create(&RequestLabels { route, method, status })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }
}

/// The route a path belongs to, with its variable segments named: labels must not carry ids
/// or usernames (one time series per room would grow without bound). Unknown paths are
/// `other`, so a scanner probing random URLs adds one series, not thousands.
pub fn route_template(path: &str) -> &'static str {
    const ROUTES: &[&str] = &[
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/healthz",
        "/api/v1/readyz",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users",
        "/api/v1/users/me",
        "/api/v1/users/me/password",
        "/api/v1/users/{username}",
        "/api/v1/sessions",
        "/api/v1/sessions/{id}",
        "/api/v1/dms",
        "/api/v1/rooms",
        "/api/v1/rooms/{id}",
        "/api/v1/rooms/{id}/join",
        "/api/v1/rooms/{id}/leave",
        "/api/v1/rooms/{id}/read",
        "/api/v1/rooms/{id}/members",
        "/api/v1/rooms/{id}/members/{username}",
        "/api/v1/rooms/{id}/bans",
        "/api/v1/rooms/{id}/bans/{username}",
        "/api/v1/rooms/{id}/messages",
        "/api/v1/rooms/{id}/messages/{seq}",
        "/api/v1/ws",
        "/api/v1/admin/stats",
        "/api/v1/admin/connections",
        "/api/v1/admin/connections/{id}",
        "/api/v1/admin/rooms",
        "/api/v1/admin/rooms/{id}/archive",
        "/api/v1/admin/users/{username}/disable",
        "/api/v1/admin/users/{username}/enable",
        "/api/v1/admin/stream",
        "/api/v1/rooms/{id}/invites",
        "/api/v1/rooms/{id}/invites/{code}",
        "/api/v1/invites/{code}/accept",
    ];
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let matches = |route: &str| {
        let parts: Vec<&str> = route.split('/').collect();
        parts.len() == segments.len() && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s)
    };
    // Literal routes first: `/users/me` is not `/users/{username}`.
    ROUTES
        .iter()
        .filter(|r| !r.contains('{'))
        .chain(ROUTES.iter().filter(|r| r.contains('{')))
        .find(|r| matches(r))
        .copied()
        .unwrap_or("other")
}

/// Resident memory of this process (Linux: /proc/self/statm), if known.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    Some(pages * page as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_route_template() {
        assert_eq!(route_template("/api/v1/users/me"), "/api/v1/users/me");
        assert_eq!(route_template("/api/v1/users/alice"), "/api/v1/users/{username}");
        assert_eq!(
            route_template("/api/v1/rooms/0b9e0c55-6f0c-4e4e-9d4b-2a2f3c1b2a10/messages/17"),
            "/api/v1/rooms/{id}/messages/{seq}"
        );
        assert_eq!(route_template("/api/v1/rooms/"), "/api/v1/rooms");
        assert_eq!(route_template("/wp-login.php"), "other");
        assert_eq!(route_template("/api/v1/rooms/x/y/z/w/v"), "other");
    }

    #[test]
    fn render_counts_and_reads_live_values() {
        let m = Metrics::new();
        m.messages_received.inc();
        m.request("/api/v1/rooms/abc", "GET", 404, 0.002);
        m.request("/api/v1/rooms/abc", "BREW", 405, 0.001);
        let text = m.render(&Live {
            connections: 3,
            users_online: 2,
            subscriptions: 5,
            rooms_live: 1,
            pool_idle: 1,
            pool_in_use: 2,
            pool_max: 16,
            uptime_secs: 1.5,
            rss_bytes: Some(4096),
        });
        assert!(text.contains("chatd_messages_received_total 1"), "{text}");
        assert!(text.contains("chatd_ws_connections 3"), "{text}");
        assert!(
            text.contains(r#"chatd_http_requests_total{route="/api/v1/rooms/{id}",method="GET",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"chatd_http_requests_total{route="/api/v1/rooms/{id}",method="other",status="405"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
