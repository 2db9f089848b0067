//! Faults under a running `chatd serve`: PostgreSQL stopped and started again beneath it, the
//! server SIGKILLed in the middle of a message flood, and SIGTERM's graceful shutdown. Each
//! runs the built binary as a child process, so what is checked is what an operator sees: exit
//! statuses, logs without panics, and clients that lose nothing they were told was stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd::db::embedded::{Embedded, EmbeddedOptions, DATABASE};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::helpers::{code, scratch_dir, serve_child, writer, Serving, Tally, TestApp, TestDb, WsClient, WS_WAIT};

/// Port 0: any free port.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn send(room: &str, body: &str, cmid: &str) -> Value {
    json!({"type": "send", "room_id": room, "body": body, "client_msg_id": cmid})
}

/// A PostgreSQL cluster of this test's own (the per-process test cluster is shared with other
/// tests and must never be stopped). Durable, as in production: fsync on, stopped with
/// `pg_ctl stop -m fast`, so a stop loses nothing committed. Stopped and removed when dropped.
struct OwnCluster {
    pg: Embedded,
    _dir: tempfile::TempDir,
}

impl OwnCluster {
    async fn start() -> Self {
        let dir = scratch_dir();
        let pg = Embedded::prepare(&EmbeddedOptions {
            data_dir: dir.path().join("data"),
            bin_dir: None,
            run_as_user: "postgres".into(),
            durable: true,
        })
        .await
        .expect("prepare a cluster of the test's own");
        pg.start().await.expect("start the test's own cluster");
        Self { pg, _dir: dir }
    }

    /// A `chatd serve` child on this cluster, with a one-second connect timeout (what needs the
    /// database is refused within about that), and the test helpers for it.
    fn serve(&self, dir: &std::path::Path) -> (Arc<TestDb>, Serving, TestApp) {
        let db = Arc::new(self.db());
        let server = serve_child(
            &db.url,
            dir,
            any_port(),
            &[("CHATD_DATABASE__CONNECT_TIMEOUT_SECS", "1")],
        );
        let app = TestApp::over(server.addr, db.clone());
        (db, server, app)
    }

    /// Its `chatd` database (chatd migrates it at start).
    fn db(&self) -> TestDb {
        let config = self.pg.connect_config(DATABASE);
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
        };
        let port = config.get_ports()[0];
        let url = format!("host={host} port={port} user=postgres dbname={DATABASE}");
        TestDb::external(config, url)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let pg = self.pg.clone();
        // Drop runs inside the test's runtime: stop it from a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(pg.stop());
        })
        .join();
    }
}

/// The number of event listeners connected and idle (their `LISTEN` committed) on `db`.
async fn listening(db: &TestDb) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = 'chatd listener' AND state = 'idle' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits until a query on `db` waits for a lock (one the test holds).
async fn waiting_for_a_lock(db: &TestDb) {
    let client = db.client().await;
    let deadline = Instant::now() + WS_WAIT;
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the request never reached the database");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every message of `room`, oldest first, read page by page over the REST API.
async fn history(app: &TestApp, token: &str, room: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    for _ in 0..1000 {
        let page = app
            .expect(
                200,
                "GET",
                &format!("/api/v1/rooms/{room}/messages?after={after}&limit=200"),
                Some(token),
                None,
            )
            .await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => return all,
        }
    }
    panic!("history of {room} never ended");
}

/// `seq → body` of a room's history, checking that seqs run 1, 2, 3… with no gap or repeat.
fn by_seq(history: &[Value]) -> Vec<(i64, String)> {
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as i64).collect::<Vec<_>>(),
        "seqs strictly increasing, no gap, no repeat"
    );
    history
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m["body"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn faults_postgresql_stopped_under_a_live_server_is_unavailable_then_recovers_losing_nothing() {
    let cluster = OwnCluster::start().await;
    let dir = scratch_dir();
    let (db, mut server, app) = cluster.serve(dir.path());
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = app.room(&alice, "lobby", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let mut alice_ws = app.ws(&alice).await;
    alice_ws.subscribe(&room, None).await;
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.subscribe(&room, None).await;
    let mut acked: Vec<(i64, String)> = Vec::new();
    for i in 1..=10 {
        let ack = alice_ws
            .request(send(&room, &format!("before-{i}"), &format!("b{i}")), &format!("b{i}"))
            .await;
        assert_eq!(
            (&ack["type"], &ack["duplicate"]),
            (&json!("ack"), &json!(false)),
            "{ack}"
        );
        acked.push((ack["message"]["seq"].as_i64().unwrap(), format!("before-{i}")));
    }
    bob_ws.messages_from(&room, 1, 10).await;
    assert_eq!(listening(&db).await, 1, "the server listens for events");

    // PostgreSQL goes away under the server, with a request in flight: an edit waiting for
    // the message's row lock, which the test holds.
    let mut locker = db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.execute(
        "SELECT 1 FROM messages WHERE room_id = $1::text::uuid AND seq = 2 FOR UPDATE",
        &[&room],
    )
    .await
    .unwrap();
    let in_flight = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url(&format!("/api/v1/rooms/{room}/messages/2")));
        let alice = alice.clone();
        async move {
            let res = http
                .patch(url)
                .bearer_auth(alice)
                .json(&json!({"body": "never"}))
                .send()
                .await
                .expect("the in-flight request is answered");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    waiting_for_a_lock(&db).await;
    cluster.pg.stop().await.expect("stop PostgreSQL");
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    drop(lock);
    let (status, body) = app.call("GET", "/readyz", None, None).await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    // Sends are refused, each with an answer and the socket left open.
    let started = Instant::now();
    for i in 1..=3 {
        refused_unavailable(&mut alice_ws, &room, &format!("during-{i}"), &format!("d{i}")).await;
    }
    eprintln!("three sends refused in {:?} during the outage", started.elapsed());
    for ws in [&mut alice_ws, &mut bob_ws] {
        let pong = ws.request(json!({"type": "ping"}), "alive").await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }
    // REST answers 503 `unavailable`, and so does a WebSocket handshake.
    let path = format!("/api/v1/rooms/{room}/messages");
    let (status, body) = app
        .call(
            "POST",
            &path,
            Some(&alice),
            Some(json!({"body": "rest", "client_msg_id": "r1"})),
        )
        .await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    let (status, body) = app.call("GET", &path, Some(&bob), None).await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    let (status, body) = app.ws_refused("/api/v1/ws", Some(&bob)).await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");

    // Back, on the same data and socket: the server recovers by itself.
    cluster.pg.start().await.expect("start PostgreSQL again");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app.call("GET", "/readyz", None, None).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The refused sends, sent again with the same ids, are stored now (once), and new ones too;
    // Bob, subscribed all along, gets each live in order.
    for (i, id) in (1..=3)
        .map(|i| (i, format!("d{i}")))
        .chain((1..=5).map(|i| (i, format!("a{i}"))))
    {
        let body = if id.starts_with('d') {
            format!("during-{i}")
        } else {
            format!("after-{i}")
        };
        let ack = alice_ws.request(send(&room, &body, &id), &id).await;
        assert_eq!(
            (&ack["type"], &ack["duplicate"]),
            (&json!("ack"), &json!(false)),
            "{ack}"
        );
        acked.push((ack["message"]["seq"].as_i64().unwrap(), body));
    }
    let live = bob_ws.messages_from(&room, 11, 8).await;
    for (m, (seq, body)) in live.iter().zip(&acked[10..]) {
        assert_eq!(
            (m["seq"].as_i64().unwrap(), m["body"].as_str().unwrap()),
            (*seq, body.as_str())
        );
    }
    bob_ws.nothing_more().await;
    // The event listener is back: an edit (which only NOTIFY carries) reaches Bob's socket.
    let deadline = Instant::now() + WS_WAIT;
    while listening(&db).await != 1 {
        assert!(Instant::now() < deadline, "the event listener never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.expect(
        200,
        "PATCH",
        &format!("/api/v1/rooms/{room}/messages/1"),
        Some(&alice),
        Some(json!({"body": "before-1, edited"})),
    )
    .await;
    let edited = bob_ws.next_of("message_edited").await;
    assert_eq!(
        (edited["seq"].as_i64(), edited["body"].as_str()),
        (Some(1), Some("before-1, edited"))
    );
    acked[0].1 = "before-1, edited".into();

    // History holds every acked message, once, at its seq; nothing else.
    assert_eq!(by_seq(&history(&app, &bob, &room).await), acked);

    stops_cleanly(&mut server);
}

/// An error frame's code.
/// `send` of `body` with `id` is answered with an `error` frame `unavailable`.
async fn refused_unavailable(ws: &mut WsClient, room: &str, body: &str, id: &str) {
    let reply = ws.request(send(room, body, id), id).await;
    assert_eq!(
        (&reply["type"], code_of(&reply)),
        (&json!("error"), "unavailable"),
        "{reply}"
    );
}

/// Resends `frozen` with `id` until it is acked (or `deadline` passes): the reply to the last try.
async fn acked_once_thawed(ws: &mut WsClient, room: &str, id: &str, deadline: Instant) -> Value {
    loop {
        let reply = ws.request(send(room, "frozen", id), id).await;
        if reply["type"] == "ack" || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// alice, a public room of hers and her socket, which has had one message (seq 1) acked.
async fn alice_has_sent_once(app: &TestApp) -> (String, String, WsClient) {
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "public").await;
    let mut ws = app.ws(&alice).await;
    let ack = ws.request(send(&room, "first", "c1"), "c1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    (alice, room, ws)
}

/// SIGTERM: the server exits 0 within 30 s, and never panicked.
fn stops_cleanly(server: &mut Serving) {
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = server.exited_within(Duration::from_secs(30));
    let log = server.log();
    assert!(status.success(), "{status:?}: {log}");
    assert!(!log.contains("panicked"), "{log}");
}

fn code_of(frame: &Value) -> &str {
    frame["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn faults_sigkill_mid_flood_loses_no_acked_message_and_resends_store_nothing_twice() {
    let db = Arc::new(TestDb::new().await);
    let dir = scratch_dir();
    let mut first = serve_child(&db.url, dir.path(), any_port(), &[]);
    let addr = first.addr;
    let app = TestApp::over(addr, db.clone());
    let owner = app.user("owner").await;
    let rooms = [
        app.room(&owner, "flood-a", "public").await,
        app.room(&owner, "flood-b", "public").await,
    ];
    // Four writers, two per room, each with its own ids.
    const WRITERS: usize = 4;
    const EACH: usize = 250;
    let mut tokens = Vec::new();
    for i in 0..WRITERS {
        let t = app.user(&format!("writer{i}")).await;
        let room = &rooms[i % 2];
        app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&t), None)
            .await;
        tokens.push(t);
    }
    let tally = Arc::new(Tally::default());
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            tokio::spawn(writer(
                vec![addr],
                0,
                tokens[i].clone(),
                rooms[i % 2].clone(),
                format!("w{i}"),
                EACH,
                tally.clone(),
            ))
        })
        .collect();
    // SIGKILL with some hundreds acked.
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.acked.load(Ordering::Relaxed) < 300 {
        assert!(Instant::now() < deadline, "the flood never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let killed_at = tally.acked.load(Ordering::Relaxed);
    assert!(killed_at < WRITERS * EACH, "killed mid-flood ({killed_at} acked)");
    // A new server on the same database and address; the writers reconnect and resend every
    // message not acked, with the same client_msg_id.
    let mut second = serve_child(&db.url, dir.path(), addr, &[]);
    let mut acked: HashMap<String, i64> = HashMap::new();
    for w in writers {
        acked.extend(w.await.expect("a writer failed"));
    }
    assert_eq!(acked.len(), WRITERS * EACH);
    eprintln!(
        "killed with {killed_at} acks; {} resends found their message already stored",
        tally.duplicates.load(Ordering::Relaxed)
    );
    for room in &rooms {
        let stored = history(&app, &owner, room).await;
        for m in &stored {
            assert_eq!(m["client_msg_id"], m["body"], "{m}");
        }
        let stored = by_seq(&stored);
        assert_eq!(stored.len(), WRITERS / 2 * EACH, "every message of {room} once");
        for (seq, body) in stored {
            assert_eq!(
                acked.get(&body),
                Some(&seq),
                "{body} stored at the seq it was acked with"
            );
        }
    }
    // A client that lost track resends everything with the same ids: each is answered with
    // the original, nothing is stored again.
    let mut ws = app.ws(&tokens[0]).await;
    for i in 0..EACH {
        let body = format!("w0-{i}");
        let ack = ws.request(send(&rooms[0], &body, &body), &body).await;
        assert_eq!(
            (&ack["type"], &ack["duplicate"]),
            (&json!("ack"), &json!(true)),
            "{ack}"
        );
        assert_eq!(ack["message"]["seq"].as_i64(), acked.get(&body).copied(), "{ack}");
    }
    assert_eq!(history(&app, &owner, &rooms[0]).await.len(), WRITERS / 2 * EACH);
    stops_cleanly(&mut second);
}

#[tokio::test]
async fn faults_sigterm_closes_sockets_with_going_away_finishes_in_flight_requests_and_exits_in_grace() {
    const GRACE: u64 = 3;
    let db = Arc::new(TestDb::new().await);
    let dir = scratch_dir();
    let grace = GRACE.to_string();
    let mut server = serve_child(
        &db.url,
        dir.path(),
        any_port(),
        &[("CHATD_SERVER__SHUTDOWN_GRACE_SECS", &grace)],
    );
    let app = TestApp::over(server.addr, db.clone());
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = app.room(&alice, "lobby", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let mut alice_ws = app.ws(&alice).await;
    alice_ws.subscribe(&room, None).await;
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.subscribe(&room, None).await;
    let mut idle_ws = app.ws(&bob).await;
    // One that will not read anything until the server has exited.
    let mut quiet_ws = app.ws(&alice).await;

    // An HTTP request in flight: its message waits for the room's lock, which the test holds.
    let mut locker = db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.execute(
        "SELECT 1 FROM rooms WHERE id = $1::text::uuid FOR NO KEY UPDATE",
        &[&room],
    )
    .await
    .unwrap();
    let in_flight = tokio::spawn({
        let (http, url, alice) = (
            app.http.clone(),
            app.url(&format!("/api/v1/rooms/{room}/messages")),
            alice.clone(),
        );
        async move {
            let res = http
                .post(url)
                .bearer_auth(alice)
                .json(&json!({"body": "in flight", "client_msg_id": "f1"}))
                .send()
                .await
                .expect("the in-flight request is answered");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    waiting_for_a_lock(&db).await;

    let signalled = Instant::now();
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    for ws in [&mut alice_ws, &mut bob_ws, &mut idle_ws] {
        assert_eq!(ws.closed().await, (1001, "going_away".to_string()));
    }
    // No new connections meanwhile; the request in flight still completes once unblocked.
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
    lock.rollback().await.unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, body["body"].as_str()), (201, Some("in flight")), "{body}");

    let status = server.exited_within(Duration::from_secs(GRACE + 30));
    let took = signalled.elapsed();
    let log = server.log();
    assert!(status.success(), "{status:?}: {log}");
    assert!(
        took < Duration::from_secs(GRACE + 5),
        "exited {took:?} after SIGTERM, grace {GRACE}s: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // The client that read nothing finds the close waiting for it.
    assert_eq!(quiet_ws.closed().await, (1001, "going_away".to_string()));
    // The in-flight message is stored.
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM messages WHERE room_id = $1::text::uuid AND body = 'in flight'",
            &[&room],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
}

/// Sends SIGCONT to the processes it was given stopped, when dropped: a failing test never
/// leaves a frozen PostgreSQL behind.
struct Frozen(Vec<Pid>);

impl Frozen {
    fn postmaster_pid(cluster: &OwnCluster) -> Pid {
        let pid_file = std::fs::read_to_string(cluster.pg.pgdata().join("postmaster.pid")).unwrap();
        Pid::from_raw(pid_file.lines().next().unwrap().trim().parse().unwrap())
    }

    fn postmaster(cluster: &OwnCluster) -> Self {
        Self::stop(vec![Self::postmaster_pid(cluster)])
    }

    /// The postmaster and every backend: connections already open stop answering too.
    fn everything(cluster: &OwnCluster) -> Self {
        let postmaster = Self::postmaster_pid(cluster);
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let parent = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|p| p.trim().parse::<i32>().ok());
            if parent == Some(postmaster.as_raw()) {
                if let Ok(pid) = entry.file_name().to_string_lossy().parse() {
                    pids.push(Pid::from_raw(pid));
                }
            }
        }
        Self::stop(pids)
    }

    fn stop(pids: Vec<Pid>) -> Self {
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGSTOP);
        }
        Self(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = kill(*pid, Signal::SIGCONT);
        }
    }
}

#[tokio::test]
async fn faults_postgresql_frozen_with_connections_open_sends_are_answered_unavailable() {
    let cluster = OwnCluster::start().await;
    let dir = scratch_dir();
    let (_db, mut server, app) = cluster.serve(dir.path());
    let (_alice, room, mut ws) = alice_has_sent_once(&app).await;

    // Every PostgreSQL process stops answering, the server's open connections included: no
    // error ever comes back on them. Sends are still answered (connect timeout 1 s: within 2 s).
    let frozen = Frozen::everything(&cluster);
    for id in ["c2", "c3"] {
        let started = Instant::now();
        refused_unavailable(&mut ws, &room, "frozen", id).await;
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }
    let pong = ws.request(json!({"type": "ping"}), "alive").await;
    assert_eq!(pong["type"], "pong", "the socket stays open: {pong}");

    // Thawed: resends with the same ids are stored once each, in order.
    drop(frozen);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seqs = Vec::new();
    for id in ["c2", "c3"] {
        let ack = acked_once_thawed(&mut ws, &room, id, deadline).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        seqs.push(ack["message"]["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, [2, 3], "nothing stored twice, nothing lost");
    stops_cleanly(&mut server);
}

#[tokio::test]
async fn faults_postgresql_frozen_sends_are_answered_unavailable_not_left_hanging() {
    let cluster = OwnCluster::start().await;
    let dir = scratch_dir();
    let (db, mut server, app) = cluster.serve(dir.path());
    let (alice, room, mut ws) = alice_has_sent_once(&app).await;

    // The postmaster hangs (stopped here; swapped out or wedged in life): it takes connections
    // into its socket's backlog and never answers them. The server's connections are cut
    // through one opened before, so that the next send needs a new one.
    let admin = db.client().await;
    let frozen = Frozen::postmaster(&cluster);
    let cut: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(cut > 0, "the server was connected");
    let deadline = Instant::now() + WS_WAIT;
    loop {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} connections survived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server's clients see their sockets closed at once; give them a moment to run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Each send is answered, whether its writer has yet to find its connection gone or has to
    // open a new one.
    for id in ["c2", "c3"] {
        refused_unavailable(&mut ws, &room, "frozen", id).await;
    }
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice),
            Some(json!({"body": "frozen", "client_msg_id": "c4"})),
        )
        .await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    let pong = ws.request(json!({"type": "ping"}), "alive").await;
    assert_eq!(pong["type"], "pong", "{pong}");

    // Thawed: the same sends go through.
    drop(frozen);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ack = acked_once_thawed(&mut ws, &room, "c2", deadline).await;
    assert_eq!(
        (&ack["type"], ack["message"]["seq"].as_i64()),
        (&json!("ack"), Some(2)),
        "{ack}"
    );
    drop(admin);
    stops_cleanly(&mut server);
}
