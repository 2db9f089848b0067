//! The admin API, its live stream and `/metrics`, against real connections.

use std::time::Duration;

use chatd::admin::types::{ConnectionPage, RoomPage, Stats, StreamFrame};
use futures_util::StreamExt as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{code, TestApp, WS_WAIT};

impl TestApp {
    /// Registers `username` and makes them a server administrator; returns an access token.
    pub async fn admin(&self, username: &str) -> String {
        let token = self.user(username).await;
        let n = self
            .db
            .client()
            .await
            .execute("UPDATE users SET is_admin = true WHERE username = $1", &[&username])
            .await
            .unwrap();
        assert_eq!(n, 1);
        token
    }

    /// `GET path` as `token`, which must answer 200 with a `T`.
    async fn get_ok<T: serde::de::DeserializeOwned>(&self, path: &str, token: &str) -> T {
        let (status, body) = self.call("GET", path, Some(token), None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_value(body).expect("the documented shape")
    }

    async fn connections(&self, token: &str) -> ConnectionPage {
        self.get_ok("/api/v1/admin/connections", token).await
    }

    /// `/metrics` as text.
    async fn metrics_text(&self) -> String {
        let res = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        res.text().await.unwrap()
    }

    /// Opens the admin stream as `token`.
    async fn admin_stream(&self, token: &str, query: &str) -> AdminStream {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut req = format!("ws://{}/api/v1/admin/stream{query}", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("stream connect");
        AdminStream { stream }
    }
}

struct AdminStream {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl AdminStream {
    async fn next(&mut self) -> Result<chatd::admin::types::Snapshot, (u16, String)> {
        loop {
            let msg = tokio::time::timeout(WS_WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a snapshot")
                .expect("the stream ended")
                .expect("stream read");
            match msg {
                Message::Text(t) => {
                    let StreamFrame::Snapshot(s) = serde_json::from_str(&t).expect("a snapshot frame");
                    return Ok(s);
                }
                Message::Close(Some(c)) => return Err((c.code.into(), c.reason.to_string())),
                Message::Close(None) => return Err((1005, String::new())),
                _ => continue,
            }
        }
    }
}

/// The value of the sample `name` (no labels) in Prometheus text, parsed by a Prometheus
/// parser rather than by looking for substrings.
fn sample(text: &str, name: &str) -> f64 {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a number"),
        })
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

#[tokio::test]
async fn admin_api_is_for_administrators_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    for (method, path) in [
        ("GET", "/api/v1/admin/stats"),
        ("GET", "/api/v1/admin/connections"),
        ("GET", "/api/v1/admin/rooms"),
        ("DELETE", "/api/v1/admin/connections/1"),
        ("POST", "/api/v1/admin/users/alice/disable"),
        (
            "POST",
            "/api/v1/admin/rooms/00000000-0000-0000-0000-000000000000/archive",
        ),
    ] {
        let (status, body) = app.call(method, path, Some(&alice), None).await;
        assert_eq!(
            (status, code(&body)),
            (403, "admin_required"),
            "{method} {path}: {body}"
        );
        let (status, body) = app.call(method, path, None, None).await;
        assert_eq!(status, 401, "{method} {path} without a token: {body}");
    }
    let (status, body) = app.ws_refused("/api/v1/admin/stream", Some(&alice)).await;
    assert_eq!((status, code(&body)), (403, "admin_required"), "{body}");
    // A made-up operator token (another secret) is nobody's.
    let forged = chatd::auth::tokens::TokenKeys::new(&[9u8; 32], "chatd", 900)
        .issue_operator(60)
        .unwrap();
    let (status, _) = app.call("GET", "/api/v1/admin/stats", Some(&forged), None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn operator_token_opens_the_admin_api_and_nothing_else() {
    let app = TestApp::spawn().await;
    let operator = chatd::auth::tokens::operator_token(&app.config).unwrap();
    let stats: Stats = app.get_ok("/api/v1/admin/stats", &operator).await;
    assert_eq!(stats.nodes.len(), 1);
    assert_eq!(stats.nodes[0].address, app.addr.to_string());
    let (status, body) = app.me(&operator).await;
    assert_eq!(status, 401, "an operator token is no user's: {body}");
}

#[tokio::test]
async fn stats_connections_and_rooms_show_live_sockets() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "lobby", "public").await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.subscribe(&room, None).await;
    b.subscribe(&room, None).await;
    app.say(&alice, &room, "hello").await;
    a.next_of("message").await;
    b.next_of("message").await;

    let stats: Stats = app.get_ok("/api/v1/admin/stats", &root).await;
    let node = &stats.nodes[0];
    assert_eq!(
        (node.connections, node.users_online, node.subscriptions, node.rooms_live),
        (2, 2, 2, 1)
    );
    assert_eq!(node.messages_in_total, 1);
    assert_eq!(node.messages_out_total, 2, "delivered to both subscribers");
    assert!(node.db_pool.max_size > 0 && node.rss_bytes.unwrap_or(0) > 0, "{node:?}");
    assert_eq!(stats.totals.connections, 2);

    let page = app.connections(&root).await;
    let names: Vec<&str> = page.items.iter().map(|c| c.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob"], "oldest first");
    let conn = &page.items[0];
    assert_eq!(conn.rooms, [room.parse::<uuid::Uuid>().unwrap()]);
    let remote = conn.remote_addr.as_deref().unwrap_or_default();
    let (ip, port) = remote.rsplit_once(':').expect("ip:port");
    assert_eq!(ip, "127.0.0.1", "{remote}");
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{remote}");
    assert!(conn.frames_in >= 1 && conn.frames_out >= 2, "{conn:?}");
    assert!(conn.queue_capacity >= 16);
    // Pagination: one at a time.
    let first: ConnectionPage = app.get_ok("/api/v1/admin/connections?limit=1", &root).await;
    let next = first.next_cursor.expect("a second page");
    let second: ConnectionPage = app
        .get_ok(&format!("/api/v1/admin/connections?limit=1&cursor={next}"), &root)
        .await;
    assert_eq!(second.items[0].username, "bob");
    assert_eq!(second.next_cursor, None);
    let (status, body) = app
        .call("GET", "/api/v1/admin/connections?cursor=x", Some(&root), None)
        .await;
    assert_eq!((status, code(&body)), (422, "invalid_cursor"));
    let (status, body) = app
        .call("GET", "/api/v1/admin/connections?limit=0", Some(&root), None)
        .await;
    assert_eq!((status, code(&body)), (422, "invalid_limit"));

    let rooms: RoomPage = app.get_ok("/api/v1/admin/rooms", &root).await;
    assert_eq!(rooms.items.len(), 1, "{rooms:?}");
    let lobby = &rooms.items[0];
    assert_eq!(lobby.name.as_deref(), Some("lobby"));
    assert_eq!((lobby.subscribers, lobby.members, lobby.last_seq), (2, 1, 1));
    assert!(lobby.last_activity.is_some());
}

#[tokio::test]
async fn an_administrator_closes_a_connection_with_a_reason() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice).await;
    let id = ws.hello["connection_id"].as_u64().unwrap();
    let path = format!("/api/v1/admin/connections/{id}");
    let (status, body) = app
        .call("DELETE", &path, Some(&root), Some(json!({"reason": "a\nb"})))
        .await;
    assert_eq!((status, code(&body)), (422, "invalid_reason"));
    let (status, body) = app
        .call("DELETE", &path, Some(&root), Some(json!({"reason": "spamming"})))
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(ws.closed().await, (4010, "closed_by_admin: spamming".into()));
    let deadline = tokio::time::Instant::now() + WS_WAIT;
    while !app.connections(&root).await.items.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the connection is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = app.call("DELETE", &path, Some(&root), None).await;
    assert_eq!((status, code(&body)), (404, "connection_not_found"));
    let (status, body) = app
        .call("DELETE", "/api/v1/admin/connections/x", Some(&root), None)
        .await;
    assert_eq!((status, code(&body)), (404, "connection_not_found"));
    assert_eq!(sample(&app.metrics_text().await, "chatd_admin_closes_total"), 1.0);
}

#[tokio::test]
async fn administrators_disable_users_and_archive_rooms() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "public").await;
    let mut ws = app.ws(&alice).await;
    let (status, body) = app
        .call("POST", "/api/v1/admin/users/alice/disable", Some(&root), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true, "{body}");
    assert_eq!(ws.closed().await.0, 4003);
    let (status, body) = app.login("alice", "password123").await;
    assert_eq!((status, code(&body)), (403, "account_disabled"));
    let (status, _) = app
        .call("POST", "/api/v1/admin/users/alice/enable", Some(&root), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.login("alice", "password123").await.0, 200);
    for me in ["root", "ROOT"] {
        let path = format!("/api/v1/admin/users/{me}/disable");
        let (status, body) = app.call("POST", &path, Some(&root), None).await;
        assert_eq!((status, code(&body)), (409, "cannot_disable_self"), "{me}");
    }
    let (status, body) = app
        .call("POST", "/api/v1/admin/users/nobody/disable", Some(&root), None)
        .await;
    assert_eq!((status, code(&body)), (404, "user_not_found"), "{body}");

    let path = format!("/api/v1/admin/rooms/{room}/archive");
    let (status, body) = app.call("POST", &path, Some(&root), None).await;
    assert_eq!(status, 204, "{body}");
    let (_, view) = app
        .call("GET", &format!("/api/v1/rooms/{room}"), Some(&root), None)
        .await;
    assert_eq!(view["archived"], true, "{view}");
    let (status, body) = app
        .call("POST", "/api/v1/admin/rooms/not-a-room/archive", Some(&root), None)
        .await;
    assert_eq!((status, code(&body)), (404, "room_not_found"));
}

#[tokio::test]
async fn the_stream_pushes_snapshots_until_the_server_stops() {
    let mut app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "public").await;
    let mut stream = app.admin_stream(&root, "?interval_ms=250").await;
    let first = stream.next().await.expect("a snapshot at once");
    assert_eq!(first.stats.nodes[0].connections, 0);
    let mut ws = app.ws(&alice).await;
    ws.subscribe(&room, None).await;
    // Later snapshots show the subscriber, without asking.
    let deadline = tokio::time::Instant::now() + WS_WAIT;
    loop {
        let s = stream.next().await.expect("snapshots keep coming");
        if s.rooms.iter().any(|r| r.id.to_string() == room && r.subscribers == 1)
            && s.connections.iter().any(|c| c.username == "alice")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the subscriber never showed");
    }
    let (status, body) = app.ws_refused("/api/v1/admin/stream?interval_ms=10", Some(&root)).await;
    assert_eq!((status, code(&body)), (400, "invalid_query"), "{body}");
    app.stop();
    loop {
        if let Err(close) = stream.next().await {
            assert_eq!(close.0, 1001, "{close:?}");
            break;
        }
    }
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_a_sent_message() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "public").await;
    let mut ws = app.ws(&alice).await;
    ws.subscribe(&room, None).await;
    let before = app.metrics_text().await;
    assert_eq!(sample(&before, "chatd_ws_connections"), 1.0);
    assert_eq!(sample(&before, "chatd_ws_subscriptions"), 1.0);
    let received = sample(&before, "chatd_messages_received_total");
    let reply = ws
        .request(
            json!({"type": "send", "room_id": room, "body": "counted", "client_msg_id": "m1"}),
            "s1",
        )
        .await;
    assert_eq!(reply["type"], "ack", "{reply}");
    let after = app.metrics_text().await;
    assert_eq!(sample(&after, "chatd_messages_received_total"), received + 1.0);
    // Delivered counts are added when the writer flushes, which it did before the ack went out
    // (the message frame comes first: the subscriber is the sender).
    assert!(sample(&after, "chatd_messages_delivered_total") >= 1.0);
    assert!(sample(&after, "chatd_delivery_latency_seconds_count") >= 1.0);
    assert!(sample(&after, "chatd_db_pool_max_connections") > 0.0);
    // Requests are counted by route template, never by raw path.
    assert!(
        after.contains(r#"chatd_http_requests_total{route="/api/v1/rooms",method="POST",status="201"} 1"#),
        "{after}"
    );
    assert!(!after.contains(&room), "no room id in labels");
}

#[tokio::test]
async fn metrics_can_have_an_address_of_their_own() {
    let app = TestApp::spawn_with(|c| c.server.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    let (status, body) = app.call("GET", "/metrics", None, None).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "not on the main listener");
    let at = app.metrics_addr.expect("a metrics listener");
    let text = app
        .http
        .get(format!("http://{at}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sample(&text, "chatd_ws_connections"), 0.0);
    let res = app
        .http
        .get(format!("http://{at}/api/v1/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the metrics listener serves nothing else");
}
