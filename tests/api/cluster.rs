//! Several nodes on one database (`cluster.bus = "postgres"`): messages, resume, presence and
//! moderation across nodes; the event listener's connection killed mid-stream; a node killed
//! with SIGKILL while the others keep serving.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{
    next_frame, scratch_dir, send_frame, serve_child, try_connect, writer, Serving, Tally, TestApp, WsClient, WS_WAIT,
};
use chatd::config::BusKind;

/// Two nodes of one cluster: `a` and `b`.
async fn two_nodes() -> (TestApp, TestApp) {
    let a = TestApp::spawn_with(|c| c.cluster.bus = BusKind::Postgres).await;
    let b = a.spawn_node(|_| {}).await;
    (a, b)
}

/// A node of a cluster that notices a dead node within seconds (timeout 3 s, heartbeat 1 s).
fn fast(c: &mut chatd::config::Config) {
    c.cluster.bus = BusKind::Postgres;
    c.cluster.heartbeat_secs = 1;
    c.cluster.node_timeout_secs = 3;
}

/// Alice (registered through `a`) owns the public room `name`; Bob (registered through `b`,
/// which may be `a`) has joined it. Their tokens and the room's id.
async fn alice_and_bob(a: &TestApp, b: &TestApp, name: &str) -> (String, String, String) {
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let room = a.room(&alice, name, "public").await;
    b.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    (alice, bob, room)
}

fn send(room: &str, body: &str, cmid: &str) -> Value {
    json!({"type": "send", "room_id": room, "body": body, "client_msg_id": cmid})
}

#[tokio::test]
async fn messages_sent_on_one_node_reach_subscribers_on_the_other_in_order() {
    let (a, b) = two_nodes().await;
    let (alice, bob, room) = alice_and_bob(&a, &b, "lobby").await;
    let mut on_b = b.ws(&bob).await;
    on_b.subscribe(&room, None).await;
    let mut on_a = a.ws(&alice).await;
    // Typing notices cross too.
    on_a.subscribe(&room, None).await;
    on_a.send(json!({"type": "typing", "room_id": room})).await;
    let t = on_b.next_of("typing").await;
    assert_eq!(
        (t["room_id"].as_str(), t["user"].as_str()),
        (Some(room.as_str()), Some("alice"))
    );
    for i in 1..=30 {
        on_a.send(send(&room, &format!("m{i}"), &format!("c{i}"))).await;
    }
    // The longest body: 4,000 four-byte characters do not fit a NOTIFY payload; it travels by
    // reference and is read from the database on the other side.
    let big = "😀".repeat(4000);
    on_a.send(send(&room, &big, "big")).await;
    let got = on_b.messages_from(&room, 1, 31).await;
    for (i, m) in got.iter().take(30).enumerate() {
        assert_eq!(m["body"], format!("m{}", i + 1));
        assert_eq!(m["author"], "alice");
    }
    assert_eq!(got[30]["body"], big.as_str());
    on_b.nothing_more().await;

    // Moderation on one node reaches the socket on the other.
    a.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/members/bob"),
        Some(&alice),
        None,
    )
    .await;
    let u = on_b.next_of("unsubscribed").await;
    assert_eq!(
        (u["room_id"].as_str(), u["reason"].as_str()),
        (Some(room.as_str()), Some("kicked"))
    );
    // And revocation: bob's account disabled through node a closes his socket on node b.
    let admin = a.admin("root").await;
    a.expect(200, "POST", "/api/v1/admin/users/bob/disable", Some(&admin), None)
        .await;
    assert_eq!(on_b.closed().await.0, 4003);
}

#[tokio::test]
async fn a_client_resumes_on_another_node_with_since_seq() {
    let (a, b) = two_nodes().await;
    let (alice, bob, room) = alice_and_bob(&a, &a, "lobby").await;
    let mut first = a.ws(&bob).await;
    first.subscribe(&room, None).await;
    for i in 1..=5 {
        a.say(&alice, &room, &format!("m{i}")).await;
    }
    first.messages_from(&room, 1, 5).await;
    drop(first);
    for i in 6..=10 {
        a.say(&alice, &room, &format!("m{i}")).await;
    }
    // Back, on the other node, from the last seq seen: the missed ones, then live ones.
    let mut second = b.ws(&bob).await;
    let sub = second.subscribe(&room, Some(5)).await;
    assert_eq!(sub["last_seq"], 10);
    second.messages_from(&room, 6, 5).await;
    a.say(&alice, &room, "m11").await;
    let live = second.messages_from(&room, 11, 1).await;
    assert_eq!(live[0]["body"], "m11");
    second.nothing_more().await;
}

/// Terminates the nodes' event listeners on this database; returns how many there were.
async fn kill_listeners(app: &TestApp) -> i64 {
    let db = app.db.client().await;
    db.query_one(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'chatd listener' AND datname = current_database()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The number of event listeners connected to this database.
async fn listeners(app: &TestApp) -> i64 {
    let db = app.db.client().await;
    db.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chatd listener' AND datname = current_database()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Waits until both nodes listen again; returns when the later of them started listening.
async fn both_listening(app: &TestApp) -> time::OffsetDateTime {
    let deadline = Instant::now() + WS_WAIT;
    while listeners(app).await != 2 {
        assert!(Instant::now() < deadline, "the listeners did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let db = app.db.client().await;
    db.query_one(
        "SELECT max(backend_start) FROM pg_stat_activity WHERE application_name = 'chatd listener' AND datname = current_database()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn listener_connection_killed_mid_stream_leaves_no_gap() {
    let (a, b) = two_nodes().await;
    let (alice, bob, room) = alice_and_bob(&a, &b, "lobby").await;
    let mut on_b = b.ws(&bob).await;
    on_b.subscribe(&room, None).await;
    let mut on_a = a.ws(&alice).await;
    for i in 1..=20 {
        on_a.send(send(&room, &format!("m{i}"), &format!("c{i}"))).await;
    }
    on_b.messages_from(&room, 1, 20).await;
    both_listening(&a).await;
    // Cut every listener, then send at once: nothing is sent after these to reveal a hole. A
    // round proves the catch-up when every message was committed before node b listened
    // again (then no notification of them reached it); rounds are repeated until one does.
    let db = a.db.client().await;
    let mut next = 21;
    let mut proven = 0;
    for _ in 0..5 {
        assert_eq!(kill_listeners(&a).await, 2, "both nodes were listening");
        for i in next..next + 20 {
            on_a.send(send(&room, &format!("m{i}"), &format!("c{i}"))).await;
        }
        for _ in 0..20 {
            on_a.next_of("ack").await;
        }
        let committed: time::OffsetDateTime = db.query_one("SELECT clock_timestamp()", &[]).await.unwrap().get(0);
        let got = on_b.messages_from(&room, next, 20).await;
        assert_eq!(got[19]["body"], format!("m{}", next + 19));
        on_b.nothing_more().await;
        next += 20;
        if both_listening(&a).await > committed {
            proven += 1;
            break;
        }
    }
    assert_eq!(
        proven, 1,
        "no round had all its messages committed while node b was not listening"
    );
}

/// Waits for `user`'s presence to become `status` among the frames `ws` receives (a
/// `presence` frame, or a `presence_list` naming them).
async fn presence_of(ws: &mut WsClient, user: &str, status: &str) {
    loop {
        let f = ws.next().await;
        let listed = |key: &str| f[key].as_array().is_some_and(|l| l.iter().any(|u| u == user));
        match f["type"].as_str() {
            Some("presence") if f["user"] == user && f["status"] == status => return,
            Some("presence_list") if listed(status) => return,
            _ => {}
        }
    }
}

#[tokio::test]
async fn presence_is_shared_across_nodes() {
    let (a, b) = two_nodes().await;
    let (alice, bob, _room) = alice_and_bob(&a, &b, "pair").await;
    let mut bob_on_b = b.ws(&bob).await;
    let mut alice_on_a = a.ws(&alice).await;
    presence_of(&mut alice_on_a, "bob", "online").await;
    presence_of(&mut bob_on_b, "alice", "online").await;
    // A second connection on the other node; then the first one closes: she is still online,
    // and nobody is told otherwise, not even for a moment.
    let mut alice_on_b = b.ws(&alice).await;
    presence_rows(&a, "alice", 2).await;
    alice_on_a.stream.close(None).await.unwrap();
    drop(alice_on_a);
    presence_rows(&a, "alice", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob_on_b.send(json!({"type": "ping", "id": "barrier"})).await;
    loop {
        let f = bob_on_b.next().await;
        assert!(
            !(f["type"] == "presence" && f["user"] == "alice"),
            "told while still online: {f}"
        );
        if f["type"] == "pong" {
            break;
        }
    }
    // The last one closes: offline, on the node that never held it too.
    alice_on_b.stream.close(None).await.unwrap();
    drop(alice_on_b);
    let f = loop {
        let f = bob_on_b.next().await;
        if f["type"] == "presence" && f["user"] == "alice" {
            break f;
        }
    };
    assert_eq!(f["status"], "offline", "{f}");

    // Every node in the admin API of either; a connection of one closed through the other.
    let admin = a.admin("root").await;
    let stats: Value = a.expect(200, "GET", "/api/v1/admin/stats", Some(&admin), None).await;
    assert_eq!(stats["totals"]["nodes"], 2, "{stats}");
    let node_b = stats["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == b.addr.to_string())
        .expect("node b listed by node a");
    let on_b = node_b["node_id"].as_str().unwrap();
    let id = bob_on_b.hello["connection_id"].as_u64().unwrap();
    let close = |node: String| {
        let (a, admin) = (&a, &admin);
        async move {
            a.call(
                "DELETE",
                &format!("/api/v1/admin/connections/{id}?node={node}"),
                Some(admin),
                Some(json!({"reason": "maintenance"})),
            )
            .await
        }
    };
    let (status, body) = close(uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((status, crate::helpers::code(&body)), (404, "node_not_found"));
    let (status, _) = close(on_b.to_owned()).await;
    assert_eq!(status, 202);
    assert_eq!(
        bob_on_b.closed().await,
        (4010, "closed_by_admin: maintenance".to_owned())
    );
}

/// Waits until `user` has `count` rows in `node_presence` (is connected to that many nodes).
async fn presence_rows(app: &TestApp, user: &str, count: i64) {
    let db = app.db.client().await;
    let deadline = Instant::now() + WS_WAIT;
    loop {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM node_presence p JOIN users u ON u.id = p.user_id WHERE u.username = $1",
                &[&user],
            )
            .await
            .unwrap()
            .get(0);
        if n == count {
            return;
        }
        assert!(Instant::now() < deadline, "{user} has {n} presence rows, not {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stopping_node_announces_its_users_offline_at_once() {
    let (a, mut b) = two_nodes().await;
    let (alice, bob, _room) = alice_and_bob(&a, &b, "pair").await;
    let mut alice_on_a = a.ws(&alice).await;
    let mut bob_on_b = b.ws(&bob).await;
    presence_of(&mut alice_on_a, "bob", "online").await;
    // SIGTERM's path: sockets closed with "going away", the node leaves the registry and says
    // so — long before the 20 s after which it would be taken for dead.
    let started = Instant::now();
    b.stop();
    assert_eq!(bob_on_b.closed().await.0, 1001);
    presence_of(&mut alice_on_a, "bob", "offline").await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let admin = a.admin("root").await;
    let stats: Value = a.expect(200, "GET", "/api/v1/admin/stats", Some(&admin), None).await;
    assert_eq!(stats["totals"]["nodes"], 1, "{stats}");
}

#[tokio::test]
async fn a_node_taken_for_dead_registers_again_with_its_users() {
    let a = TestApp::spawn_with(fast).await;
    let b = a.spawn_node(fast).await;
    let bob = b.user("bob").await;
    let _bob_on_b = b.ws(&bob).await;
    presence_rows(&a, "bob", 1).await;
    // As if another node had found these nodes silent for too long (a stalled database
    // connection): their rows and their users' presence are gone.
    let db = a.db.client().await;
    db.execute("DELETE FROM nodes", &[]).await.unwrap();
    presence_rows(&a, "bob", 0).await;
    // Each finds its row gone at its next heartbeat, registers again and rewrites its users.
    presence_rows(&a, "bob", 1).await;
    let deadline = Instant::now() + WS_WAIT;
    loop {
        let n: i64 = db.query_one("SELECT count(*) FROM nodes", &[]).await.unwrap().get(0);
        if n == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} nodes registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `chatd serve` as a child process on the app's database, a node of its cluster.
fn child_node(app: &TestApp, dir: &std::path::Path) -> Serving {
    let env = [
        ("CHATD_CLUSTER__BUS", "postgres"),
        ("CHATD_CLUSTER__HEARTBEAT_SECS", "1"),
        ("CHATD_CLUSTER__NODE_TIMEOUT_SECS", "3"),
    ];
    serve_child(&app.db.url, dir, "127.0.0.1:0".parse().unwrap(), &env)
}

#[tokio::test]
async fn a_node_killed_with_sigkill_leaves_the_others_serving_and_loses_nothing() {
    let a = TestApp::spawn_with(fast).await;
    let dir = scratch_dir();
    let mut node = child_node(&a, dir.path());
    // The same test helpers, pointed at the child node.
    let c = TestApp::at(&a, node.addr);

    let (alice, bob, room) = alice_and_bob(&a, &a, "lobby").await;
    let mut alice_on_a = a.ws(&alice).await;
    alice_on_a.subscribe(&room, None).await;
    let mut bob_on_c = c.ws(&bob).await;
    bob_on_c.subscribe(&room, None).await;
    presence_of(&mut alice_on_a, "bob", "online").await;

    // Alice sends a stream; Bob reads the first half on the child node, which then dies.
    let mut acked: HashMap<i64, String> = HashMap::new();
    for i in 1..=20 {
        let ack = alice_on_a
            .request(send(&room, &format!("m{i}"), &format!("c{i}")), &format!("s{i}"))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acked.insert(ack["message"]["seq"].as_i64().unwrap(), format!("m{i}"));
    }
    let seen = bob_on_c.messages_from(&room, 1, 10).await;
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    for i in 21..=30 {
        let ack = alice_on_a
            .request(send(&room, &format!("m{i}"), &format!("c{i}")), &format!("s{i}"))
            .await;
        assert_eq!(ack["type"], "ack", "the surviving node keeps serving: {ack}");
        acked.insert(ack["message"]["seq"].as_i64().unwrap(), format!("m{i}"));
    }
    // The dead node's user is expired within the timeout (3 s) and a heartbeat or two.
    let started = Instant::now();
    presence_of(&mut alice_on_a, "bob", "offline").await;
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());

    // Bob reconnects to the survivor and resumes from the last seq he saw: every acked
    // message exactly once.
    let last = seen.last().unwrap()["seq"].as_i64().unwrap();
    let mut bob_on_a = a.ws(&bob).await;
    bob_on_a.subscribe(&room, Some(last)).await;
    let rest = bob_on_a.messages_from(&room, last + 1, 30 - last).await;
    let mut all: Vec<Value> = seen;
    all.extend(rest);
    assert_eq!(all.len(), acked.len());
    for m in &all {
        assert_eq!(acked[&m["seq"].as_i64().unwrap()], m["body"].as_str().unwrap());
    }
    bob_on_a.nothing_more().await;
    // Only the survivor is listed.
    let admin = a.admin("root").await;
    let stats: Value = a.expect(200, "GET", "/api/v1/admin/stats", Some(&admin), None).await;
    assert_eq!(stats["totals"]["nodes"], 1, "{stats}");
}

/// A client that reads `room` from node `nodes[start]`; when its node goes away it moves to the
/// next one and resumes with `since_seq`. Returns the seqs and bodies it received, once it has
/// the room's last seq as told by `target`.
async fn reader(
    nodes: Vec<std::net::SocketAddr>,
    start: usize,
    token: String,
    room: String,
    mut target: tokio::sync::watch::Receiver<Option<i64>>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Vec<(i64, String)> {
    let mut got: Vec<(i64, String)> = Vec::new();
    let mut ready = Some(ready);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in start.. {
        assert!(Instant::now() < deadline, "the reader never finished");
        let since = got.last().map_or(0, |(s, _)| *s);
        let Some(mut ws) = try_connect(nodes[i % nodes.len()], &token).await else {
            continue;
        };
        let sub = json!({"type": "subscribe", "room_id": room, "since_seq": since});
        if !send_frame(&mut ws, sub).await {
            continue;
        }
        loop {
            if target.borrow().is_some_and(|t| got.last().map_or(0, |g| g.0) >= t) {
                return got;
            }
            let frame = tokio::select! {
                f = next_frame(&mut ws) => f,
                _ = target.changed() => continue,
            };
            let Some(f) = frame else { break };
            match f["type"].as_str() {
                Some("subscribed") => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(()).await;
                    }
                }
                Some("message") => got.push((f["seq"].as_i64().unwrap(), f["body"].as_str().unwrap().to_owned())),
                _ => {}
            }
        }
    }
    unreachable!()
}

#[tokio::test]
async fn three_nodes_one_killed_mid_flood_every_acked_message_reaches_every_reader_once() {
    let a = TestApp::spawn_with(fast).await;
    let b = a.spawn_node(fast).await;
    let dir = scratch_dir();
    let mut node = child_node(&a, dir.path());
    let nodes = vec![a.addr, b.addr, node.addr];

    let owner = a.user("owner").await;
    let room = a.room(&owner, "flood", "public").await;
    let mut tokens = Vec::new();
    for i in 0..9 {
        let t = a.user(&format!("user{i}")).await;
        a.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&t), None)
            .await;
        tokens.push(t);
    }
    // Six readers and three writers, spread over the three nodes.
    let (target_tx, target_rx) = tokio::sync::watch::channel(None);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(6);
    let readers: Vec<_> = (0..6)
        .map(|i| {
            tokio::spawn(reader(
                nodes.clone(),
                i % 3,
                tokens[i].clone(),
                room.clone(),
                target_rx.clone(),
                ready_tx.clone(),
            ))
        })
        .collect();
    for _ in 0..6 {
        ready_rx.recv().await.expect("every reader subscribed");
    }
    const EACH: usize = 100;
    let tally = std::sync::Arc::new(Tally::default());
    let writers: Vec<_> = (0..3)
        .map(|i| {
            tokio::spawn(writer(
                nodes.clone(),
                i,
                tokens[6 + i].clone(),
                room.clone(),
                format!("w{i}"),
                EACH,
                tally.clone(),
            ))
        })
        .collect();
    // The third node dies (SIGKILL) with about a third of the flood acked.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tally.acked.load(std::sync::atomic::Ordering::Relaxed) < EACH && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    let killed_at = tally.acked.load(std::sync::atomic::Ordering::Relaxed);
    assert!(killed_at < 3 * EACH, "the node died mid-flood ({killed_at} acked)");

    let mut acked: HashMap<i64, String> = HashMap::new();
    for w in writers {
        for (body, seq) in w.await.unwrap() {
            assert!(acked.insert(seq, body).is_none(), "two messages acked with one seq");
        }
    }
    assert_eq!(acked.len(), 3 * EACH);
    let last: i64 =
        a.db.client()
            .await
            .query_one("SELECT last_seq FROM rooms WHERE id = $1::text::uuid", &[&room])
            .await
            .unwrap()
            .get(0);
    assert_eq!(last, (3 * EACH) as i64, "nothing stored twice or lost");
    target_tx.send(Some(last)).unwrap();
    for r in readers {
        let got = r.await.unwrap();
        let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "every message once, in order");
        for (seq, body) in got {
            assert_eq!(acked[&seq], body);
        }
    }
}

#[tokio::test]
async fn the_admin_api_of_any_node_lists_every_nodes_connections() {
    let (a, b) = two_nodes().await;
    let admin = a.admin("root").await;
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let carol = b.user("carol").await;
    let _alice_on_a = a.ws(&alice).await;
    let _bob_on_b = b.ws(&bob).await;
    let _carol_on_b = b.ws(&carol).await;
    let names = |page: &Value| -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["username"].as_str().unwrap().to_owned(),
                    c["node_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        names.sort();
        names
    };
    for app in [&a, &b] {
        let page = app
            .expect(200, "GET", "/api/v1/admin/connections", Some(&admin), None)
            .await;
        let listed = names(&page);
        let users: Vec<&str> = listed.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(users, ["alice", "bob", "carol"], "{page}");
        assert_ne!(listed[0].1, listed[1].1, "alice and bob are on different nodes");
        assert_eq!(listed[1].1, listed[2].1, "bob and carol on the same one");
        assert!(page["next_cursor"].is_null(), "{page}");
    }
    // Page by page, one at a time, across the nodes: each connection once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/admin/connections?limit=1&cursor={c}"),
            None => "/api/v1/admin/connections?limit=1".to_owned(),
        };
        let page = b.expect(200, "GET", &path, Some(&admin), None).await;
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    let users: Vec<&str> = seen.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, ["alice", "bob", "carol"]);
    // One node's own, as nodes ask each other; bad input is refused.
    let page = a
        .expect(200, "GET", "/api/v1/admin/connections?scope=node", Some(&admin), None)
        .await;
    assert_eq!(names(&page).len(), 1, "{page}");
    let (status, body) = a
        .call("GET", "/api/v1/admin/connections?scope=everything", Some(&admin), None)
        .await;
    assert_eq!((status, crate::helpers::code(&body)), (400, "invalid_query"));
    let (status, body) = a
        .call("GET", "/api/v1/admin/connections?cursor=bm9wZQ", Some(&admin), None)
        .await;
    assert_eq!((status, crate::helpers::code(&body)), (422, "invalid_cursor"), "{body}");
}

#[tokio::test]
async fn nodes_signing_with_different_secrets_are_told_apart() {
    let (a, b) = two_nodes().await;
    let c = a
        .spawn_node(|c| c.auth.jwt_secret = Some("another-secret-another-secret-0123456789".into()))
        .await;
    let admin = a.admin("root").await;
    let stats = a.expect(200, "GET", "/api/v1/admin/stats", Some(&admin), None).await;
    let key_of = |app: &TestApp| -> String {
        let node = stats["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"] == app.addr.to_string())
            .unwrap_or_else(|| panic!("{} listed: {stats}", app.addr));
        node["signing_key_id"].as_str().unwrap().to_owned()
    };
    let (ka, kb, kc) = (key_of(&a), key_of(&b), key_of(&c));
    assert_eq!(ka.len(), 16, "{ka}");
    assert_eq!(ka, kb, "one secret, one id");
    assert_ne!(ka, kc, "another secret, another id");
    assert!(
        !ka.contains("test-secret") && !kc.contains("another"),
        "an id, not the secret"
    );
    // Which is why it matters: the odd node refuses the others' tokens.
    let (status, _) = c.me(&admin).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_read_marker_moved_on_one_device_reaches_my_others_on_any_node() {
    let (a, b) = two_nodes().await;
    let alice = a.user("alice").await;
    let room = a.room(&alice, "notes", "public").await;
    for i in 1..=4 {
        a.say(&alice, &room, &format!("m{i}")).await;
    }
    let bob = a.user("bob").await;
    a.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    for i in 5..=6 {
        a.say(&bob, &room, &format!("m{i}")).await;
    }
    let mut phone = a.ws(&alice).await;
    let mut laptop = b.ws(&alice).await;
    let marker = |f: &Value| {
        (
            f["room_id"].as_str().map(str::to_owned),
            f["last_read_seq"].as_i64(),
            f["unread_count"].as_i64(),
        )
    };
    // Read on the phone: answered there, pushed to the laptop on the other node.
    let reply = phone
        .request(json!({"type": "read", "room_id": room, "seq": 5}), "r1")
        .await;
    assert_eq!(reply["type"], "read_marker", "{reply}");
    assert_eq!(marker(&reply), (Some(room.clone()), Some(5), Some(1)));
    let pushed = laptop.next_of("read_marker").await;
    assert!(pushed.get("id").is_none(), "{pushed}");
    assert_eq!(marker(&pushed), (Some(room.clone()), Some(5), Some(1)));
    // Backwards moves nothing and tells no one; over REST, every device hears of a move. The
    // phone's next marker is that one: it was never sent its own read back.
    a.expect(
        200,
        "PUT",
        &format!("/api/v1/rooms/{room}/read"),
        Some(&alice),
        Some(json!({"seq": 2})),
    )
    .await;
    a.expect(
        200,
        "PUT",
        &format!("/api/v1/rooms/{room}/read"),
        Some(&alice),
        Some(json!({"seq": 6})),
    )
    .await;
    for device in [&mut phone, &mut laptop] {
        let f = device.next_of("read_marker").await;
        assert_eq!(marker(&f), (Some(room.clone()), Some(6), Some(0)), "{f}");
    }
}
