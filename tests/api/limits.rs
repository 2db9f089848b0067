//! Abuse limits (`[limits]`, `server.*_timeout_secs`, `server.trusted_proxies`): each refuses
//! with its documented status and code, and only whom it should. Other clients are other
//! loopback addresses (127.0.0.0/8): every per-address limit is shown not to touch them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::*;

/// A raw request: status, `Retry-After` (seconds) and the JSON body.
async fn post(app: &TestApp, path: &str, forwarded_for: Option<&str>, body: Value) -> (u16, Option<u64>, Value) {
    let mut req = app.http.post(app.url(path)).json(&body);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse::<u64>()
            .expect("Retry-After in whole seconds")
    });
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Option<u64>, Value) {
    post(
        app,
        "/api/v1/auth/login",
        None,
        json!({"username": username, "password": password}),
    )
    .await
}

/// Asserts a 429 with `code`, a `Retry-After` of at least a second and the same hint in ms.
fn assert_limited(reply: &(u16, Option<u64>, Value), code_: &str) -> u64 {
    let (status, retry, body) = reply;
    assert_eq!(*status, 429, "{body}");
    assert_eq!(code(body), code_, "{body}");
    let retry = retry.expect("Retry-After is set");
    assert!(retry >= 1, "{retry}");
    let ms = body["error"]["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert_eq!(ms.div_ceil(1000).max(1), retry, "header and body agree: {body}");
    ms
}

#[tokio::test]
async fn login_attempts_are_limited_per_address_right_or_wrong_and_other_addresses_are_not() {
    let app = TestApp::spawn_with(|c| c.limits.login_attempts_per_ip_per_min = 3).await;
    app.user("alice").await;
    assert_eq!(login(&app, "alice", "wrong-password").await.0, 401);
    assert_eq!(login(&app, "nobody", "wrong-password").await.0, 401);
    assert_eq!(login(&app, "alice", "password123").await.0, 200);
    // The fourth attempt in a minute is refused before the password is looked at.
    let ms = assert_limited(&login(&app, "alice", "password123").await, "rate_limited");
    assert!(ms > 1_000, "the next attempt is ~20 s away: {ms}");
    let (s, body) = app.via_ip("127.0.0.2").login("alice", "password123").await;
    assert_eq!(s, 200, "another address has its own allowance: {body}");
}

#[tokio::test]
async fn failed_logins_back_off_a_username_exponentially_from_any_address_until_one_succeeds() {
    let app = TestApp::spawn_with(|c| {
        c.limits.login_free_failures = 2;
        c.limits.login_max_backoff_secs = 2;
    })
    .await;
    app.user("alice").await;
    app.user("bob").await;
    for _ in 0..2 {
        let (s, _, body) = login(&app, "alice", "wrong-password").await;
        assert_eq!(s, 401, "{body}");
    }
    // Two failures, then 1 s: even the right password is not checked meanwhile, from
    // any address, under any spelling of the name.
    let ms = assert_limited(&login(&app, "alice", "password123").await, "login_throttled");
    assert!(ms <= 1_000, "{ms}");
    let elsewhere = app.via_ip("127.0.0.3");
    let (s, body) = elsewhere.login("ALICE", "password123").await;
    assert_eq!((s, code(&body)), (429, "login_throttled"), "{body}");
    assert_eq!(
        login(&app, "bob", "password123").await.0,
        200,
        "other accounts are unaffected"
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(login(&app, "alice", "wrong-password").await.0, 401);
    let ms = assert_limited(&login(&app, "alice", "password123").await, "login_throttled");
    assert!(ms > 1_000, "the wait doubled (capped at 2 s): {ms}");

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (s, _, body) = login(&app, "alice", "password123").await;
    assert_eq!(s, 200, "{body}");
    // A success starts the count over: the next failure is a free one again.
    assert_eq!(login(&app, "alice", "wrong-password").await.0, 401);
    assert_eq!(login(&app, "alice", "password123").await.0, 200);
}

#[tokio::test]
async fn guesses_sent_all_at_once_get_no_more_checks_than_the_free_failures() {
    let app = TestApp::spawn_with(|c| {
        c.limits.login_free_failures = 3;
        c.limits.login_max_backoff_secs = 60;
    })
    .await;
    app.user("alice").await;
    // Twenty guesses at once, from four addresses: only three may reach the password check.
    let callers: Vec<TestApp> = (1..=4).map(|i| app.via_ip(&format!("127.0.0.{}", 10 + i))).collect();
    let guesses = (0..20).map(|i| callers[i % 4].login("alice", "wrong-password"));
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|(s, _)| *s == 401).count();
    let throttled = answers
        .iter()
        .filter(|(s, b)| *s == 429 && code(b) == "login_throttled")
        .count();
    assert_eq!((checked, throttled), (3, 17), "{answers:?}");
    let (s, body) = app.login("alice", "password123").await;
    assert_eq!((s, code(&body)), (429, "login_throttled"), "still backing off: {body}");
}

#[tokio::test]
async fn registrations_are_limited_per_address_and_a_refused_one_creates_nothing() {
    let app = TestApp::spawn_with(|c| c.limits.registrations_per_ip_per_hour = 2).await;
    let sign_up = |name: &'static str| {
        post(
            &app,
            "/api/v1/auth/register",
            None,
            json!({"username": name, "password": "password123"}),
        )
    };
    assert_eq!(sign_up("first").await.0, 201);
    assert_eq!(sign_up("second").await.0, 201);
    let ms = assert_limited(&sign_up("third").await, "rate_limited");
    assert!(ms > 60_000, "the next registration is ~30 minutes away: {ms}");
    assert_eq!(app.login("third", "password123").await.0, 401, "no account was created");
    app.via_ip("127.0.0.2").register("third", "password123").await;
}

#[tokio::test]
async fn websocket_connections_are_capped_per_user_and_per_address_and_freed_on_close() {
    let app = TestApp::spawn_with(|c| {
        c.limits.ws_connections_per_user = 2;
        c.limits.ws_connections_per_ip = 3;
    })
    .await;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    let mut first = app.ws_from(&alice, "127.0.0.1").await.expect("first socket");
    let _second = app.ws_from(&alice, "127.0.0.1").await.expect("second socket");
    let (s, body) = app
        .ws_from(&alice, "127.0.0.4")
        .await
        .err()
        .expect("a third is refused");
    assert_eq!(
        (s, code(&body)),
        (429, "too_many_connections"),
        "per user, from any address: {body}"
    );
    assert!(body["error"]["retry_after_ms"].is_null(), "nothing to wait for: {body}");

    let _bob = app.ws_from(&bob, "127.0.0.1").await.expect("bob's socket");
    let (s, body) = app
        .ws_from(&carol, "127.0.0.1")
        .await
        .err()
        .expect("a fourth from one address");
    assert_eq!((s, code(&body)), (429, "too_many_connections"), "per address: {body}");
    let _carol = app.ws_from(&carol, "127.0.0.5").await.expect("carol from elsewhere");

    // Closing a socket gives its place back.
    first.stream.close(None).await.unwrap();
    let deadline = Instant::now() + WS_WAIT;
    loop {
        match app.ws_from(&alice, "127.0.0.6").await {
            Ok(_) => break,
            Err((429, _)) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("the closed socket's place was not freed: {e:?}"),
        }
    }
}

#[tokio::test]
async fn subscriptions_per_connection_are_capped() {
    let app = TestApp::spawn_with(|c| c.ws.max_subscriptions = 2).await;
    let alice = app.user("alice").await;
    let rooms = [
        app.room(&alice, "one", "public").await,
        app.room(&alice, "two", "public").await,
        app.room(&alice, "three", "public").await,
    ];
    let mut ws = app.ws(&alice).await;
    assert_eq!(ws.hello["limits"]["max_subscriptions"], 2);
    ws.subscribe(&rooms[0], None).await;
    ws.subscribe(&rooms[1], None).await;
    let refused = ws
        .request(json!({"type": "subscribe", "room_id": rooms[2]}), "third")
        .await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "too_many_subscriptions", "{refused}");
    // Unsubscribing makes room for another.
    let left = ws
        .request(json!({"type": "unsubscribe", "room_id": rooms[0]}), "leave")
        .await;
    assert_eq!(left["type"], "unsubscribed", "{left}");
    ws.subscribe(&rooms[2], None).await;
}

/// Reads until the server closes the connection; everything it sent, or a panic past `within`.
async fn read_until_closed(tcp: &mut tokio::net::TcpStream, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {within:?}; received {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_http_connections_are_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|c| c.server.header_read_timeout_secs = 1).await;
    // Slowloris: a request head trickled a byte at a time never completes.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: chatd\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut reader, mut writer) = slow.split();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    let closed = async {
        let mut buf = [0u8; 1024];
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => assert!(
                        !String::from_utf8_lossy(&buf[..n]).contains("200 OK"),
                        "an incomplete head was answered"
                    ),
                }
            }
        })
        .await
        .expect("a trickled request head still held its connection after 10 s")
    };
    tokio::select! {
        () = closed => {}
        () = trickle => panic!("the server took 100 trickled bytes (20 s) without closing"),
    }

    // A connection that never sends anything.
    let mut silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    read_until_closed(&mut silent, Duration::from_secs(10)).await;

    // An idle keep-alive connection after a complete request: answered, then closed.
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: chatd\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // The listener still serves everyone else.
    assert_eq!(app.call("GET", "/readyz", None, None).await.0, 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let app = TestApp::spawn_with(|c| c.server.body_read_timeout_secs = 1).await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: chatd\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\nConnection: close\r\n\r\n{\"username\":",
    )
    .await
    .unwrap();
    let got = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"request_timeout\""), "{got}");
}

async fn register(via: &TestApp, name: &str, forwarded_for: &str) -> (u16, Option<u64>, Value) {
    post(
        via,
        "/api/v1/auth/register",
        Some(forwarded_for),
        json!({"username": name, "password": "password123"}),
    )
    .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_and_a_spoofed_entry_is_not_believed() {
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
        c.limits.registrations_per_ip_per_hour = 1;
    })
    .await;
    let (s, _, first) = register(&app, "first", "203.0.113.5").await;
    assert_eq!(s, 201, "{first}");
    assert_limited(&register(&app, "second", "203.0.113.5").await, "rate_limited");
    // Another client through the same proxy has its own allowance; what a client writes to
    // the left of the proxy's entry (or a chain of trusted proxies) changes nothing.
    assert_eq!(
        register(&app, "third", "198.51.100.9, 203.0.113.6, 10.1.2.3").await.0,
        201
    );
    assert_limited(
        &register(&app, "fourth", "198.51.100.10, 203.0.113.6").await,
        "rate_limited",
    );
    // The session list shows the client's address, not the proxy's.
    let token = token(&first, "access_token");
    let (_, sessions) = app.call("GET", "/api/v1/sessions", Some(&token), None).await;
    assert_eq!(sessions["items"][0]["ip"], "203.0.113.5", "{sessions}");

    // An untrusted peer's X-Forwarded-For is ignored: it is counted as itself.
    let direct = app.via_ip("127.0.0.2");
    assert_eq!(register(&direct, "fifth", "203.0.113.7").await.0, 201);
    assert_limited(&register(&direct, "sixth", "203.0.113.8").await, "rate_limited");
}
