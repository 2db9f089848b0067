//! The `nodes` and `node_presence` tables: which `chatd serve` nodes are alive, and which
//! users are connected to which of them. Every time compared here is the database's clock.

use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// A node as it registers itself.
pub struct NodeRecord<'a> {
    pub id: Uuid,
    pub hostname: &'a str,
    pub address: &'a str,
    pub url: &'a str,
    pub version: &'a str,
    pub key_id: &'a str,
    pub started_at: OffsetDateTime,
    /// How long it may stay silent before the others take it for dead.
    pub timeout_secs: i32,
}

/// Adds (or refreshes) this node's row.
pub async fn register(
    c: &impl GenericClient,
    node: &NodeRecord<'_>,
    stats: &Value,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "INSERT INTO nodes (id, hostname, address, url, version, key_id, started_at, timeout_secs, stats) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stats = EXCLUDED.stats",
        &[
            &node.id,
            &node.hostname,
            &node.address,
            &node.url,
            &node.version,
            &node.key_id,
            &node.started_at,
            &node.timeout_secs,
            stats,
        ],
    )
    .await?;
    Ok(())
}

/// Records a heartbeat with the node's figures; `false` when the row is gone (this node was
/// taken for dead and removed: it must register again).
pub async fn heartbeat(c: &impl GenericClient, id: Uuid, stats: &Value) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE nodes SET heartbeat_at = now(), stats = $2 WHERE id = $1",
            &[&id, stats],
        )
        .await?;
    Ok(n == 1)
}

/// A node silent for longer than its own timeout.
const DEAD: &str = "heartbeat_at < now() - make_interval(secs => timeout_secs)";

/// Which nodes to remove.
pub enum Gone {
    /// This one (it is stopping).
    Node(Uuid),
    /// Every node silent for longer than its timeout.
    Silent,
}

/// Removes nodes with their presence rows; returns the users (id, name) who were connected to
/// them. Call in a transaction that then notifies.
pub async fn remove(c: &impl GenericClient, gone: Gone) -> Result<Vec<(Uuid, String)>, tokio_postgres::Error> {
    let (condition, id) = match gone {
        Gone::Node(id) => ("id = $1", Some(id)),
        Gone::Silent => (DEAD, None),
    };
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match &id {
        Some(id) => vec![id],
        None => Vec::new(),
    };
    // The statement's snapshot still shows the presence rows its cascade removes.
    let sql = format!(
        "WITH gone AS (DELETE FROM nodes WHERE {condition} RETURNING id) \
         SELECT DISTINCT u.id, u.username FROM node_presence p \
         JOIN gone ON gone.id = p.node_id JOIN users u ON u.id = p.user_id"
    );
    let rows = c.query(&sql, &params).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A live node as the others see it.
pub struct LiveNode {
    pub id: Uuid,
    pub url: String,
    pub started_at: OffsetDateTime,
    /// Its admin figures at its last heartbeat.
    pub stats: Option<Value>,
}

/// Every live node (heard from within its timeout), oldest first (then by id).
pub async fn live(c: &impl GenericClient) -> Result<Vec<LiveNode>, tokio_postgres::Error> {
    let sql = format!("SELECT id, url, started_at, stats FROM nodes WHERE NOT ({DEAD}) ORDER BY started_at, id");
    let rows = c.query(&sql, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| LiveNode {
            id: r.get(0),
            url: r.get(1),
            started_at: r.get(2),
            stats: r.get(3),
        })
        .collect())
}

/// The live nodes other than `id` whose signing secret differs from `key_id`: (id, url).
pub async fn other_secrets(
    c: &impl GenericClient,
    id: Uuid,
    key_id: &str,
) -> Result<Vec<(Uuid, String)>, tokio_postgres::Error> {
    let sql = format!("SELECT id, url FROM nodes WHERE id <> $1 AND key_id <> $2 AND NOT ({DEAD})");
    let rows = c.query(&sql, &[&id, &key_id]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether node `id` is alive.
pub async fn is_live(c: &impl GenericClient, id: Uuid) -> Result<bool, tokio_postgres::Error> {
    let sql = format!("SELECT 1 FROM nodes WHERE id = $1 AND NOT ({DEAD})");
    Ok(c.query_opt(&sql, &[&id]).await?.is_some())
}

/// Records that `online` users have a connection on node `node` and `offline` ones none.
pub async fn set_presence(
    c: &impl GenericClient,
    node: Uuid,
    online: &[Uuid],
    offline: &[Uuid],
) -> Result<(), tokio_postgres::Error> {
    if !online.is_empty() {
        c.execute(
            "INSERT INTO node_presence (user_id, node_id) SELECT u, $2 FROM unnest($1::uuid[]) AS u \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = u) ON CONFLICT DO NOTHING",
            &[&online, &node],
        )
        .await?;
    }
    if !offline.is_empty() {
        c.execute(
            "DELETE FROM node_presence WHERE node_id = $2 AND user_id = ANY($1)",
            &[&offline, &node],
        )
        .await?;
    }
    Ok(())
}

/// Those of `users` connected to some node.
pub async fn online_among(c: &impl GenericClient, users: &[Uuid]) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT DISTINCT user_id FROM node_presence WHERE user_id = ANY($1)",
            &[&users],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Everyone connected to some node, with their names.
pub async fn online(c: &impl GenericClient) -> Result<Vec<(Uuid, String)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT u.id, u.username FROM users u WHERE EXISTS (SELECT 1 FROM node_presence p WHERE p.user_id = u.id)",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Users connected to some node.
pub async fn users_online(c: &impl GenericClient) -> Result<u64, tokio_postgres::Error> {
    let row = c
        .query_one("SELECT count(DISTINCT user_id) FROM node_presence", &[])
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}
