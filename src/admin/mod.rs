//! Live statistics for operators: what the admin API (`/api/v1/admin/*`), its stream,
//! `/metrics` and `chatd tui` show.
//!
//! Everything here is read from what the server keeps anyway — the hub's registries, the
//! metrics counters, the pool — plus one sampler task that turns counters into per-second
//! rates once a second. Nothing on a hot path waits for the admin API: reading a snapshot
//! takes the hub's short-lived locks like a publish does.

pub mod metrics;
pub mod types;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{rooms, Db};
use crate::error::Result;
use crate::ws::hub::{Conn, Hub};
use metrics::Metrics;
use types::{ConnectionInfo, NodeStats, PoolStats, RoomInfo, Stats, Totals};

/// Samples kept of the message rate (two minutes at one per second).
const HISTORY: usize = 120;
/// How often rates are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// This process, as the admin API describes it.
pub struct Node {
    pub id: Uuid,
    pub hostname: String,
    pub address: String,
    /// Where the other nodes reach its API.
    pub url: String,
    /// Names its token signing secret (`TokenKeys::key_id`).
    pub key_id: String,
    pub started_at: OffsetDateTime,
    started: Instant,
    pub metrics: Arc<Metrics>,
    rates: Mutex<Rates>,
}

#[derive(Default)]
struct Rates {
    in_sampled: u64,
    out_sampled: u64,
    in_per_sec: f64,
    out_per_sec: f64,
    history: VecDeque<f64>,
}

impl Node {
    /// A node listening on `address`, reached by the others at `advertised` (default: an
    /// `http://` URL of `address`, with the hostname for an unspecified address).
    pub fn new(address: SocketAddr, advertised: Option<&str>, key_id: &str, metrics: Arc<Metrics>) -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let url = match advertised {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if address.ip().is_unspecified() && !hostname.is_empty() => {
                format!("http://{hostname}:{}", address.port())
            }
            None => format!("http://{address}"),
        };
        Self {
            id: Uuid::new_v4(),
            hostname,
            url,
            key_id: key_id.to_owned(),
            address: address.to_string(),
            started_at: OffsetDateTime::now_utc(),
            started: Instant::now(),
            metrics,
            rates: Mutex::default(),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Turns the counters into rates over the last `period`.
    fn sample(&self, period: Duration) {
        let received = self.metrics.messages_received.get();
        let delivered = self.metrics.messages_delivered.get();
        let mut r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let secs = period.as_secs_f64();
        r.in_per_sec = received.saturating_sub(r.in_sampled) as f64 / secs;
        r.out_per_sec = delivered.saturating_sub(r.out_sampled) as f64 / secs;
        r.in_sampled = received;
        r.out_sampled = delivered;
        let rate = r.in_per_sec;
        r.history.push_back(rate);
        if r.history.len() > HISTORY {
            r.history.pop_front();
        }
    }

    /// This node's figures now.
    pub fn stats(&self, hub: &Hub, db: &Db) -> NodeStats {
        let (in_per_sec, out_per_sec, history) = {
            let r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
            (r.in_per_sec, r.out_per_sec, r.history.iter().copied().collect())
        };
        let (subscriptions, rooms_live) = hub.subscription_counts();
        let pool = db.pool_state();
        NodeStats {
            node_id: self.id,
            hostname: self.hostname.clone(),
            address: self.address.clone(),
            url: self.url.clone(),
            signing_key_id: self.key_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at,
            uptime_secs: self.uptime().as_secs(),
            connections: hub.connections() as u64,
            users_online: hub.users_online() as u64,
            subscriptions: subscriptions as u64,
            rooms_live: rooms_live as u64,
            messages_in_total: self.metrics.messages_received.get(),
            messages_out_total: self.metrics.messages_delivered.get(),
            messages_in_per_sec: in_per_sec,
            messages_out_per_sec: out_per_sec,
            queue_drops_total: self.metrics.slow_consumer_closes.get(),
            db_pool: PoolStats {
                max_size: db.max_size(),
                connections: pool.connections,
                idle: pool.idle_connections,
                in_use: pool.connections.saturating_sub(pool.idle_connections),
            },
            rss_bytes: metrics::rss_bytes(),
            message_rate_history: history,
        }
    }

    /// `/metrics`, with the live values read now.
    pub fn render_metrics(&self, hub: &Hub, db: &Db) -> String {
        let stats = self.stats(hub, db);
        self.metrics.render(&metrics::Live {
            connections: stats.connections,
            users_online: stats.users_online,
            subscriptions: stats.subscriptions,
            rooms_live: stats.rooms_live,
            pool_idle: stats.db_pool.idle,
            pool_in_use: stats.db_pool.in_use,
            pool_max: stats.db_pool.max_size,
            uptime_secs: self.uptime().as_secs_f64(),
            rss_bytes: stats.rss_bytes,
        })
    }
}

/// Samples rates once a second, for as long as the server runs.
pub async fn sampler(node: Arc<Node>, hub: Hub) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last = Instant::now();
    loop {
        tick.tick().await;
        let period = last.elapsed();
        last = Instant::now();
        node.sample(period);
        hub.sample_activity(period);
    }
}

/// Every live node's figures, with the totals: this node's read now, the others' from their
/// last heartbeat (every `cluster.heartbeat_secs`). If the database cannot be read, this
/// node's alone.
pub async fn stats(node: &Node, hub: &Hub, db: &Db) -> Stats {
    let mine = node.stats(hub, db);
    let presence_on = hub.config().presence_max_members > 0;
    let cluster = async {
        let conn = db.conn().await?;
        let live = crate::db::nodes::live(&*conn).await?;
        let online = if presence_on {
            Some(crate::db::nodes::users_online(&*conn).await?)
        } else {
            None
        };
        Ok::<_, crate::error::Error>((live, online))
    };
    let (live, online) = match cluster.await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("other nodes' figures unavailable: {e}");
            (Vec::new(), None)
        }
    };
    let mut nodes = Vec::with_capacity(live.len().max(1));
    let mut mine = Some(mine);
    for other in live {
        if other.id == node.id {
            nodes.extend(mine.take());
        } else if let Some(figures) = other.stats.and_then(|f| serde_json::from_value::<NodeStats>(f).ok()) {
            nodes.push(figures);
        }
    }
    // Not registered (yet, or the database is away): still itself.
    if let Some(mine) = mine {
        nodes.insert(0, mine);
    }
    let totals = Totals {
        nodes: nodes.len() as u64,
        connections: nodes.iter().map(|n| n.connections).sum(),
        // A user connected to two nodes is one user online.
        users_online: online.unwrap_or_else(|| nodes.iter().map(|n| n.users_online).sum()),
        subscriptions: nodes.iter().map(|n| n.subscriptions).sum(),
        messages_in_per_sec: nodes.iter().map(|n| n.messages_in_per_sec).sum(),
        messages_out_per_sec: nodes.iter().map(|n| n.messages_out_per_sec).sum(),
    };
    Stats { nodes, totals }
}

fn connection_info(node: &Node, c: &Conn) -> ConnectionInfo {
    use std::sync::atomic::Ordering::Relaxed;
    let (depth, capacity) = c.queue();
    let mut rooms = c.rooms();
    rooms.sort_unstable();
    ConnectionInfo {
        id: c.id,
        node_id: node.id,
        user_id: c.user_id,
        username: c.username.clone(),
        session_id: c.session_id,
        remote_addr: c.client.address(),
        user_agent: c.client.user_agent.clone(),
        connected_at: c.connected_at,
        rooms,
        queue_depth: depth as u64,
        queue_capacity: capacity as u64,
        frames_in: c.frames_in.load(Relaxed),
        frames_out: c.frames_out.load(Relaxed),
    }
}

/// Live connections with ids above `after`, oldest first, at most `limit`; and whether there
/// are more.
pub fn connections(node: &Node, hub: &Hub, after: u64, limit: usize) -> (Vec<ConnectionInfo>, bool) {
    let conns = hub.connection_list();
    let mut page = conns.iter().filter(|c| c.id > after);
    let list: Vec<ConnectionInfo> = page.by_ref().take(limit).map(|c| connection_info(node, c)).collect();
    (list, page.next().is_some())
}

/// Which live rooms a listing shows.
pub enum RoomOrder {
    /// By id, after the given one (pagination).
    ById { after: Option<Uuid> },
    /// Busiest first: subscribers, then rate (the console's first screen).
    Busiest,
}

/// Live rooms (subscribed here, or with a message in the last ten minutes), at most `limit`,
/// with names and member counts from the database (rooms deleted meanwhile are left out); and,
/// when there are more, the id to continue after.
pub async fn rooms(hub: &Hub, db: &Db, order: RoomOrder, limit: usize) -> Result<(Vec<RoomInfo>, Option<Uuid>)> {
    let mut live = hub.live_rooms();
    match order {
        RoomOrder::ById { after } => {
            live.retain(|r| after.is_none_or(|a| r.id > a));
            live.sort_unstable_by_key(|r| r.id);
        }
        RoomOrder::Busiest => live.sort_unstable_by(|a, b| {
            (b.subscribers.cmp(&a.subscribers))
                .then(b.per_sec.total_cmp(&a.per_sec))
                .then(a.id.cmp(&b.id))
        }),
    }
    let more = live.len() > limit;
    live.truncate(limit);
    // From the page as listed, before deleted rooms drop out of it.
    let next = if more { live.last().map(|r| r.id) } else { None };
    if live.is_empty() {
        return Ok((Vec::new(), None));
    }
    let ids: Vec<Uuid> = live.iter().map(|r| r.id).collect();
    let records = rooms::with_member_counts(&*db.conn().await?, &ids).await?;
    let mut records: std::collections::HashMap<Uuid, _> = records.into_iter().map(|(r, n)| (r.id, (r, n))).collect();
    let list = live
        .into_iter()
        .filter_map(|l| {
            let (record, members) = records.remove(&l.id)?;
            Some(RoomInfo {
                id: l.id,
                name: record.name,
                visibility: record.visibility,
                archived: record.archived_at.is_some(),
                subscribers: l.subscribers,
                members: members as u64,
                last_seq: record.last_seq,
                messages_per_sec: l.per_sec,
                last_activity: l.last_activity,
            })
        })
        .collect();
    Ok((list, next))
}
