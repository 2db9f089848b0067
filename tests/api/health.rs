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
