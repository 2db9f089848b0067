//! The admin API's wire types (`/api/v1/admin/*` and its live stream), shared by the server
//! that writes them and `chatd tui`, which reads them: one definition, so the two cannot drift.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `GET /api/v1/admin/stats`: every live node, and the totals over them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Stats {
    pub nodes: Vec<NodeStats>,
    pub totals: Totals,
}

/// One `chatd serve` process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NodeStats {
    /// A fresh id each time the process starts.
    pub node_id: Uuid,
    pub hostname: String,
    /// The address the node listens on.
    pub address: String,
    /// Where the other nodes reach its API (`cluster.advertise_url`).
    #[serde(default)]
    pub url: String,
    /// A public name of its token signing secret: nodes of one cluster must show the same.
    #[serde(default)]
    pub signing_key_id: String,
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub uptime_secs: u64,
    /// Open WebSocket connections.
    pub connections: u64,
    /// Distinct users with at least one connection.
    pub users_online: u64,
    /// Room subscriptions over all connections.
    pub subscriptions: u64,
    /// Rooms with at least one subscriber on this node.
    pub rooms_live: u64,
    /// Messages stored through this node since it started.
    pub messages_in_total: u64,
    /// Message frames written to sockets since it started.
    pub messages_out_total: u64,
    /// Over the last second.
    pub messages_in_per_sec: f64,
    pub messages_out_per_sec: f64,
    /// Connections closed because their outbound queue was full (slow consumers).
    pub queue_drops_total: u64,
    pub db_pool: PoolStats,
    /// Resident memory of the process, where the platform tells (Linux).
    #[schema(required = true)]
    pub rss_bytes: Option<u64>,
    /// Messages in per second, one sample per second, oldest first (up to 120).
    pub message_rate_history: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PoolStats {
    pub max_size: u32,
    /// Connections open (idle + in use).
    pub connections: u32,
    pub idle: u32,
    pub in_use: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Totals {
    pub nodes: u64,
    pub connections: u64,
    pub users_online: u64,
    pub subscriptions: u64,
    pub messages_in_per_sec: f64,
    pub messages_out_per_sec: f64,
}

/// `GET /api/v1/admin/connections`: one page (`{items, next_cursor}`, as every list), oldest
/// connection first.
pub type ConnectionPage = crate::page::Page<ConnectionInfo>;

/// One live WebSocket connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConnectionInfo {
    /// Unique on its node; `DELETE /api/v1/admin/connections/{id}` closes it.
    pub id: u64,
    pub node_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub session_id: Uuid,
    /// The peer's address (`ip:port`, `[ip]:port` for IPv6) as the server saw it (a proxy's,
    /// behind one).
    #[schema(required = true)]
    pub remote_addr: Option<String>,
    #[schema(required = true)]
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    /// Ids of the rooms subscribed to.
    pub rooms: Vec<Uuid>,
    /// Frames waiting in the outbound queue, and its size.
    pub queue_depth: u64,
    pub queue_capacity: u64,
    /// Frames received from the client, and written to it.
    pub frames_in: u64,
    pub frames_out: u64,
}

/// `GET /api/v1/admin/rooms`: one page of live rooms (subscribed on some node, or with
/// messages in the last 10 minutes), by id.
pub type RoomPage = crate::page::Page<RoomInfo>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RoomInfo {
    pub id: Uuid,
    /// None for a direct room.
    #[schema(required = true)]
    pub name: Option<String>,
    /// "public", "private" or "direct".
    pub visibility: String,
    pub archived: bool,
    /// Live subscriptions to it (all nodes).
    pub subscribers: u64,
    pub members: u64,
    pub last_seq: i64,
    /// Over the last second.
    pub messages_per_sec: f64,
    /// When its last message was published (since the node started), if any.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub last_activity: Option<OffsetDateTime>,
}

/// A frame of `GET /api/v1/admin/stream` (WebSocket, text frames, one per interval).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamFrame {
    Snapshot(Snapshot),
}

/// Everything the console shows, at one moment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Snapshot {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub stats: Stats,
    /// The busiest rooms first, up to the stream's `rooms` limit.
    pub rooms: Vec<RoomInfo>,
    /// Oldest first, up to the stream's `connections` limit.
    pub connections: Vec<ConnectionInfo>,
    /// Whether rooms or connections were cut at their limit.
    pub truncated: bool,
}

/// `DELETE /api/v1/admin/connections/{id}`'s optional body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// Sent to the client in the close frame (`closed_by_admin: <reason>`), at most 100 bytes.
    #[serde(default)]
    pub reason: Option<String>,
}
