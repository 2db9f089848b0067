//! This node among the others sharing its database (docs/cluster.md).
//!
//! Every `chatd serve` registers itself in the `nodes` table when it starts, writes a
//! heartbeat with its admin figures every `cluster.heartbeat_secs`, and removes itself when it
//! stops. A node that dies without stopping (killed, its machine lost) stops beating; once its
//! heartbeat is older than its `cluster.node_timeout_secs` (each node's own, stored in its row),
//! whichever node looks next removes it and its presence rows, and tells every node that those
//! users' connections ended — so their presence is expired within about `node_timeout_secs +
//! heartbeat_secs`. The clients it held reconnect to another node and resume with `since_seq`.
//! A node judges others only once it has itself been beating for a whole timeout, so a database
//! outage does not make every node take all the others for dead.
//!
//! A node that was itself taken for dead (its database connection stalled for longer than the
//! timeout) finds its row gone at its next heartbeat, registers again and rewrites its presence
//! rows. All times are the database's clock, so nodes' clocks need not agree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::admin::Node;
use crate::bus;
use crate::config::ClusterConfig;
use crate::db::{nodes, Db};
use crate::error::Result;
use crate::ws::hub::Hub;

/// This node's membership of the cluster.
#[derive(Clone)]
pub struct Cluster {
    node: Arc<Node>,
    hub: Hub,
    db: Db,
    config: ClusterConfig,
}

impl Cluster {
    pub fn new(node: Arc<Node>, hub: Hub, db: Db, config: ClusterConfig) -> Self {
        Self { node, hub, db, config }
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::to_value(self.node.stats(&self.hub, &self.db)).unwrap_or_default()
    }

    /// Adds this node's row (at start, and again if it was removed).
    pub async fn join(&self) -> Result<()> {
        let conn = self.db.conn().await?;
        let version = env!("CARGO_PKG_VERSION");
        let record = nodes::NodeRecord {
            id: self.node.id,
            hostname: &self.node.hostname,
            address: &self.node.address,
            url: &self.node.url,
            version,
            key_id: &self.node.key_id,
            started_at: self.node.started_at,
            // Validated to at most 3600.
            timeout_secs: self.config.node_timeout_secs as i32,
        };
        nodes::register(&*conn, &record, &self.stats()).await?;
        for (other, url) in nodes::other_secrets(&*conn, self.node.id, &self.node.key_id).await? {
            tracing::error!(
                node = %other,
                url,
                "this node and another sign tokens with different secrets, so each refuses the other's tokens and clients cannot move between them: give every node the same auth.jwt_secret_file (compare signing_key_id in the admin stats)"
            );
        }
        Ok(())
    }

    /// Heartbeats until `stop`: registers again when taken for dead, and removes dead nodes.
    ///
    /// Only a node that has itself been beating without a break for a whole timeout judges
    /// the others: after the database was unreachable for a while, every other node's heartbeat
    /// is old too, and they are not dead — they were waiting like this one.
    pub async fn beat(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.heartbeat_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let judge_after = Duration::from_secs(self.config.node_timeout_secs);
        let mut beating_since: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let beat = async {
                self.beat_once().await?;
                let since = *beating_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= judge_after {
                    self.reap().await?;
                }
                Ok::<_, crate::error::Error>(())
            };
            let outcome = tokio::select! {
                r = beat => r,
                _ = stop.cancelled() => return,
            };
            if let Err(e) = outcome {
                beating_since = None;
                tracing::warn!("cluster heartbeat failed: {e}");
            }
        }
    }

    async fn beat_once(&self) -> Result<()> {
        let present = {
            let conn = self.db.conn().await?;
            nodes::heartbeat(&*conn, self.node.id, &self.stats()).await?
        };
        if !present {
            tracing::warn!(node = %self.node.id, "this node was taken for dead by the cluster; registering again");
            self.join().await?;
            // Its presence rows went with it: write them again, and re-read everyone's (the
            // presence task retries until it succeeds). Messages were not missed: the
            // listener is another connection.
            self.hub.resync_presence();
        }
        Ok(())
    }

    /// Removes nodes whose heartbeat is too old, and tells every node their users left them.
    async fn reap(&self) -> Result<()> {
        // From no node: every node (this one too) re-reads these users' presence.
        let users = self.remove(nodes::Gone::Silent, Uuid::nil()).await?;
        if users > 0 {
            tracing::info!(users, "removed dead nodes; their users' presence expired");
        }
        Ok(())
    }

    /// Removes this node (it is stopping) and tells the others its users left it.
    pub async fn leave(&self) {
        if let Err(e) = self.remove(nodes::Gone::Node(self.node.id), self.node.id).await {
            tracing::warn!("could not leave the cluster cleanly (the others will time this node out): {e}");
        }
    }

    /// Removes the `gone` nodes with their presence rows and, in the same commit, tells every
    /// node (as from `origin`) that their users left them; returns how many users that was.
    async fn remove(&self, gone: nodes::Gone, origin: Uuid) -> Result<usize> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let users = nodes::remove(&tx, gone).await?;
        bus::notify_all(&tx, &bus::presence_changed(origin, &users)).await?;
        tx.commit().await?;
        Ok(users.len())
    }
}
