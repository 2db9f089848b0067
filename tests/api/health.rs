//! `/healthz` and `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{code, scratch_dir, test_config, TestApp};

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_database_is_up() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz", "/api/v1/healthz", "/api/v1/readyz"] {
        let (s, b) = app.call("GET", path, None, None).await;
        assert_eq!(s, 200, "{path}: {b}");
        let (s, _) = app.call("HEAD", path, None, None).await;
        assert_eq!(s, 200, "HEAD {path}");
    }
}

#[tokio::test]
async fn readyz_is_503_and_requests_are_503_when_the_database_is_unreachable() {
    // A pool pointing at a port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut pg = tokio_postgres::Config::new();
    pg.host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("chatd")
        .connect_timeout(Duration::from_secs(1));
    let dir = scratch_dir();
    let config = Arc::new(test_config(dir.path().to_path_buf()));
    let app = chatd::app::Application::build(config, chatd::db::Db::new(pg, 2, Duration::from_secs(1)))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    let res = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "the process is alive");
    let res = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("5"));
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "someone", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(code(&body), "unavailable");
}

#[tokio::test]
async fn pooled_connections_postgresql_closed_are_replaced_not_handed_out() {
    let app = TestApp::spawn().await;
    let token = app.user("alice").await;
    // Warm the pool, then end every server connection of this database but ours.
    for _ in 0..4 {
        assert_eq!(app.me(&token).await.0, 200);
    }
    let killed: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the pool had connections");
    // The clients notice the closed sockets at once; give them a moment to be scheduled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..4 {
        let (status, body) = app.me(&token).await;
        assert_eq!(status, 200, "a closed connection was handed out: {body}");
    }
}
