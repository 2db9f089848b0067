//! Presence: who is online, told to the people who share a room with them.
//!
//! A user is online while they have at least one connection. Connections only *mark* work
//! (`changed`, `snapshot`, `joined`); one task does it, in batches. Marking coalesces: a user
//! who connects and disconnects a hundred times before the task runs is looked at once, in
//! their state *then*, and told about only if it differs from what was last told. So churn
//! costs nothing it does not need, nothing is ever dropped, and the last word is always right.
//!
//! The audience is everyone sharing with the user a room of at most `ws.presence_max_members`
//! members (in large rooms presence is noise and quadratic); it is read from the database when
//! a state changes.
//!
//! Across nodes: each node records in `node_presence` which users it holds connections of (a
//! row per user and node, written by this task with a `PresenceChanged` notification in the
//! same transaction), and a user is online while any node has a row for them. Every node's task
//! re-reads a user's rows when told of a change — by its own connections or by another node —
//! and tells its own connections. A node that dies stops its heartbeat; another node removes it
//! with its rows and notifies the change (`cluster`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use uuid::Uuid;

use super::hub::{lock, Conn, Hub, Inner, Out};
use super::protocol::{Frame, ServerFrame};
use crate::bus;
use crate::db::{nodes, rooms};
use crate::error::Result;

/// Work waiting for the presence task.
pub struct Presence {
    /// `ws.presence_max_members > 0`: when off, nothing is recorded (and no task runs).
    enabled: bool,
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Pending {
    /// Users whose online state may have changed, with their names.
    users: HashMap<Uuid, String>,
    /// Those of `users` whose connections to this node began or ended (their rows to write).
    local: HashSet<Uuid>,
    /// Re-read everyone's state (events may have been missed).
    resync: bool,
    /// New connections, to be told who of their co-members is online.
    snapshots: Vec<Weak<Conn>>,
    /// (user, room): the user joined the room while online.
    joined: Vec<(Uuid, Uuid)>,
}

impl Presence {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            pending: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// `user`'s first connection opened or their last one closed.
    pub fn changed(&self, user: Uuid, username: &str) {
        if !self.enabled {
            return;
        }
        let mut pending = lock(&self.pending);
        pending.users.insert(user, username.to_string());
        pending.local.insert(user);
        drop(pending);
        self.wake.notify_one();
    }

    /// Another node's connections of `users` began or ended.
    pub fn changed_elsewhere(&self, users: Vec<(Uuid, String)>) {
        if !self.enabled {
            return;
        }
        lock(&self.pending).users.extend(users);
        self.wake.notify_one();
    }

    /// Re-reads who is online (after news may have been missed), and writes this node's rows
    /// for `local` users again (after this node was taken for dead).
    pub fn resync(&self, local: Vec<(Uuid, String)>) {
        if !self.enabled {
            return;
        }
        let mut pending = lock(&self.pending);
        pending.resync = true;
        for (user, name) in local {
            pending.local.insert(user);
            pending.users.insert(user, name);
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// `conn` is new: tell it who is online.
    pub fn snapshot(&self, conn: &Arc<Conn>) {
        if !self.enabled {
            return;
        }
        lock(&self.pending).snapshots.push(Arc::downgrade(conn));
        self.wake.notify_one();
    }

    /// `user` (online) joined `room`: introduce them to its online members, and back.
    pub fn joined(&self, user: Uuid, room: Uuid) {
        if !self.enabled {
            return;
        }
        lock(&self.pending).joined.push((user, room));
        self.wake.notify_one();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The hub is gone: let its presence task end.
        self.presence.wake.notify_one();
    }
}

/// The presence task: runs until the hub is gone. It holds the hub only while working, so
/// dropping the hub ends it.
pub(super) async fn work(presence: Arc<Presence>, hub: Weak<Inner>) {
    // Who the co-members were last told is online, by name: anyone connected to any node.
    let mut told_online: HashMap<Uuid, String> = HashMap::new();
    // What other nodes hold is read when the event listener first connects (`Hub::catch_up`).
    loop {
        let wake = presence.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let batch = std::mem::take(&mut *lock(&presence.pending));
        let idle = batch.users.is_empty() && batch.snapshots.is_empty() && batch.joined.is_empty() && !batch.resync;
        if !idle {
            let Some(inner) = hub.upgrade() else { return };
            // Shutting down: every connection is being closed, nobody is left to tell, and
            // the database may already be gone.
            if inner.stopping.is_cancelled() {
                return;
            }
            if let Err(e) = (Hub { inner }).present(&batch, &mut told_online).await {
                // Nothing is dropped: the batch waits for the next round (what was already
                // told is told again, which is harmless: presence frames are states).
                tracing::warn!("presence update failed, retrying: {e}");
                lock(&presence.pending).merge(batch);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            continue;
        }
        if hub.strong_count() == 0 {
            return;
        }
        wake.await;
    }
}

impl Pending {
    /// Puts back a batch that could not be worked, under what has come since.
    fn merge(&mut self, older: Pending) {
        for (user, name) in older.users {
            self.users.entry(user).or_insert(name);
        }
        self.local.extend(older.local);
        self.resync |= older.resync;
        self.snapshots.extend(older.snapshots);
        self.joined.extend(older.joined);
    }
}

impl Hub {
    async fn present(&self, batch: &Pending, told_online: &mut HashMap<Uuid, String>) -> Result<()> {
        let max = self.inner.config.presence_max_members;
        let node = self.inner.node_id;
        let mut db = self.inner.db.conn().await?;
        // This node's part first: its rows, and the news to the other nodes, in one commit.
        if !batch.local.is_empty() {
            let (on, off): (Vec<Uuid>, Vec<Uuid>) =
                batch.local.iter().partition(|user| !self.user_conns(**user).is_empty());
            let named: Vec<(Uuid, String)> = batch
                .local
                .iter()
                .filter_map(|u| Some((*u, batch.users.get(u)?.clone())))
                .collect();
            let tx = db.transaction().await?;
            nodes::set_presence(&tx, node, &on, &off).await?;
            bus::notify_all(&tx, &bus::presence_changed(node, &named)).await?;
            tx.commit().await?;
        }
        // Whose state to read: the batch's users, and after missed news everyone that was or is
        // online.
        let mut checking: HashMap<Uuid, String> = batch.users.clone();
        if batch.resync {
            checking.extend(told_online.iter().map(|(u, n)| (*u, n.clone())));
            checking.extend(nodes::online(&*db).await?);
        }
        let ids: Vec<Uuid> = checking.keys().copied().collect();
        let online_now: HashSet<Uuid> = if ids.is_empty() {
            HashSet::new()
        } else {
            nodes::online_among(&*db, &ids).await?.into_iter().collect()
        };
        let changes: Vec<(Uuid, String, bool)> = checking
            .into_iter()
            .map(|(user, name)| {
                let online = online_now.contains(&user);
                (user, name, online)
            })
            .filter(|(user, _, online)| *online != told_online.contains_key(user))
            .collect();
        // With nobody connected here there is nobody to tell: only remember.
        if self.connections() == 0 {
            for (user, name, online) in changes {
                if online {
                    told_online.insert(user, name);
                } else {
                    told_online.remove(&user);
                }
            }
            return Ok(());
        }
        // The audiences of the changed users and of the new connections, in one query.
        let snapshots: Vec<Arc<Conn>> = batch.snapshots.iter().filter_map(Weak::upgrade).collect();
        let mut asking: Vec<Uuid> = changes.iter().map(|(u, _, _)| *u).collect();
        asking.extend(snapshots.iter().map(|c| c.user_id));
        asking.sort();
        asking.dedup();
        let mut audience: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        if !asking.is_empty() {
            for (user, other) in rooms::co_members(&*db, &asking, max).await? {
                audience.entry(user).or_default().push(other);
            }
        }
        let audience_of = |user: &Uuid| audience.get(user).map(Vec::as_slice).unwrap_or_default();
        // What each co-member hears from this batch, in one frame: a burst of changes (a
        // hundred people leaving at once) must not overflow anyone's queue.
        let mut news: HashMap<Uuid, (Vec<String>, Vec<String>)> = HashMap::new();
        for (user, name, online) in changes {
            for other in audience_of(&user) {
                if told_online.contains_key(other) {
                    let (on, off) = news.entry(*other).or_default();
                    if online { on } else { off }.push(name.clone());
                }
            }
            if online {
                told_online.insert(user, name);
            } else {
                told_online.remove(&user);
            }
        }
        for (recipient, (on, off)) in news {
            self.to_user(recipient, presence_news(on, off));
        }
        for conn in snapshots {
            let online: Vec<Uuid> = audience_of(&conn.user_id)
                .iter()
                .copied()
                .filter(|u| told_online.contains_key(u))
                .collect();
            if let Some(frame) = online_list(told_online, &online) {
                conn.push(Out::Frame(frame));
            }
        }
        for &(user, room) in &batch.joined {
            let Some(name) = told_online.get(&user).cloned() else {
                continue;
            };
            let others: Vec<Uuid> = told_online.keys().copied().filter(|u| *u != user).collect();
            let members = rooms::members_among(&*db, room, &others, max).await?;
            let theirs = presence_frame(&name, true);
            for other in &members {
                self.to_user(*other, theirs.clone());
            }
            if let Some(frame) = online_list(told_online, &members) {
                self.to_user(user, frame);
            }
        }
        Ok(())
    }
}

/// One `presence_list` of the online users among `users`, if any.
fn online_list(told_online: &HashMap<Uuid, String>, users: &[Uuid]) -> Option<Frame> {
    let mut online: Vec<String> = users.iter().filter_map(|u| told_online.get(u).cloned()).collect();
    online.sort();
    let list = ServerFrame::PresenceList {
        online: &online,
        offline: &[],
    };
    (!online.is_empty()).then(|| list.encode())
}

/// One change as `presence`; several (or a list of who is online) as one `presence_list`.
fn presence_news(mut online: Vec<String>, mut offline: Vec<String>) -> Frame {
    match (online.as_slice(), offline.as_slice()) {
        ([one], []) => presence_frame(one, true),
        ([], [one]) => presence_frame(one, false),
        _ => {
            online.sort();
            offline.sort();
            ServerFrame::PresenceList {
                online: &online,
                offline: &offline,
            }
            .encode()
        }
    }
}

fn presence_frame(user: &str, online: bool) -> Frame {
    ServerFrame::Presence {
        user,
        status: if online { "online" } else { "offline" },
    }
    .encode()
}
