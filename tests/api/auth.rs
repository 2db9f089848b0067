//! `/api/v1/auth/*`: registration, login, refresh rotation and reuse detection, logout.

use serde_json::json;

use crate::helpers::{code, token, TestApp};

#[tokio::test]
async fn register_returns_the_user_and_a_working_token_pair() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"username": "Alice", "password": "correct horse", "display_name": "Alice A."})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["username"], "alice", "usernames are stored lower-case");
    assert_eq!(body["user"]["display_name"], "Alice A.");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
    assert!(body["user"].get("password_hash").is_none());

    let (status, me) = app
        .call("GET", "/api/v1/users/me", Some(&token(&body, "access_token")), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], body["user"]["id"]);
}

#[tokio::test]
async fn register_rejects_bad_and_taken_usernames_and_bad_passwords() {
    let app = TestApp::spawn().await;
    app.register("bob", "password123").await;
    let cases = [
        (
            json!({"username": "BOB", "password": "password123"}),
            409,
            "username_taken",
        ),
        (
            json!({"username": "ab", "password": "password123"}),
            422,
            "invalid_username",
        ),
        (
            json!({"username": "has space", "password": "password123"}),
            422,
            "invalid_username",
        ),
        (
            json!({"username": "x".repeat(33), "password": "password123"}),
            422,
            "invalid_username",
        ),
        (
            json!({"username": "carol", "password": "short"}),
            422,
            "invalid_password",
        ),
        (
            json!({"username": "carol", "password": "p".repeat(129)}),
            422,
            "invalid_password",
        ),
        (
            json!({"username": "carol", "password": "password123", "display_name": "d".repeat(65)}),
            422,
            "invalid_display_name",
        ),
        (json!({"username": "carol"}), 400, "invalid_request"),
        (
            json!({"username": 5, "password": "password123"}),
            400,
            "invalid_request",
        ),
        (
            json!({"username": "carol", "password": "password123", "admin": true}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, expected) in cases {
        let (s, b) = app
            .call("POST", "/api/v1/auth/register", None, Some(body.clone()))
            .await;
        assert_eq!((s, code(&b)), (status, expected), "{body} -> {b}");
    }
    // Nothing was created by the failed attempts.
    let (status, _) = app.login("carol", "password123").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn malformed_empty_and_oversized_bodies_are_4xx_json() {
    // Streamed (chunked, no Content-Length) bodies are read and bounded the same way.
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = 1024).await;
    let (s, b) = app.raw("POST", "/api/v1/auth/login", "{\"username\": ").await;
    assert_eq!((s, code(&b)), (400, "invalid_json"));
    let (s, b) = app.raw("POST", "/api/v1/auth/login", "  ").await;
    assert_eq!((s, code(&b)), (400, "invalid_json"));
    let (s, b) = app.raw("POST", "/api/v1/auth/login", "").await;
    assert_eq!((s, code(&b)), (400, "invalid_json"));
    // serde would read a struct from an array; the API wants an object.
    let (s, b) = app
        .raw("POST", "/api/v1/auth/login", r#"["someone", "password123"]"#)
        .await;
    assert_eq!((s, code(&b)), (400, "invalid_request"));
    let (s, b) = app.raw("POST", "/api/v1/auth/login", "null").await;
    assert_eq!((s, code(&b)), (400, "invalid_request"));
    let big = json!({"username": "a".repeat(2000), "password": "x"});
    let (s, b) = app.call("POST", "/api/v1/auth/register", None, Some(big.clone())).await;
    assert_eq!((s, code(&b)), (413, "payload_too_large"));
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(big.to_string())];
    let res = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413, "chunked bodies are bounded too");
    let small = json!({"username": "chunky", "password": "password123"}).to_string();
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(small[..10].to_string()), Ok(small[10..].to_string())];
    let res = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        201,
        "a chunked body within the limit is accepted"
    );
    let (s, b) = app.call("GET", "/api/v1/no/such/route", None, None).await;
    assert_eq!((s, code(&b)), (404, "not_found"));
    let (s, b) = app.call("GET", "/api/v1/auth/login", None, None).await;
    assert_eq!((s, code(&b)), (405, "method_not_allowed"));

    // A body declared as something other than JSON is refused, not parsed as JSON anyway.
    let login = json!({"username": "chunky", "password": "password123"}).to_string();
    for (media, status) in [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/xml", 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        ("application/merge-patch+json", 200),
    ] {
        let res = app
            .http
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", media)
            .body(login.clone())
            .send()
            .await
            .unwrap();
        let status_seen = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(status_seen, status, "{media}: {body}");
        if status == 415 {
            assert_eq!(code(&body), "unsupported_media_type");
        }
    }
}

#[tokio::test]
async fn login_fails_identically_for_unknown_user_and_wrong_password() {
    let app = TestApp::spawn().await;
    app.register("dave", "password123").await;
    let (s1, b1) = app.login("dave", "wrong-password").await;
    let (s2, b2) = app.login("nobody-here", "wrong-password").await;
    let (s3, b3) = app.login("!!", "wrong-password").await;
    assert_eq!(s1, 401);
    assert_eq!(code(&b1), "invalid_credentials");
    assert_eq!((s1, &b1), (s2, &b2), "same status and body for unknown user");
    assert_eq!((s1, &b1), (s3, &b3), "same status and body for an impossible username");

    let (s, b) = app.login("DAVE", "password123").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["username"], "dave");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let reg = app.register("erin", "password123").await;
    let first = token(&reg, "refresh_token");

    let (s, rotated) = app.refresh(&first).await;
    assert_eq!(s, 200, "{rotated}");
    let second = token(&rotated, "refresh_token");
    assert_ne!(first, second);
    let access = token(&rotated, "access_token");
    assert_eq!(app.me(&access).await.0, 200);

    // The spent token is refused, and presenting it revokes the whole session...
    let (s, b) = app.refresh(&first).await;
    assert_eq!((s, code(&b)), (401, "refresh_token_reused"));
    // ...so the newest refresh token and the access tokens die too.
    let (s, b) = app.refresh(&second).await;
    assert_eq!((s, code(&b)), (401, "session_revoked"));
    let (s, b) = app.me(&access).await;
    assert_eq!((s, code(&b)), (401, "session_revoked"));

    let (s, b) = app.refresh("garbage").await;
    assert_eq!((s, code(&b)), (401, "invalid_refresh_token"));
}

#[tokio::test]
async fn logout_revokes_the_session_but_not_others() {
    let app = TestApp::spawn().await;
    let a = app.register("frank", "password123").await;
    let (_, b) = app.login("frank", "password123").await;
    let (ta, tb) = (token(&a, "access_token"), token(&b, "access_token"));

    let (s, body) = app.call("POST", "/api/v1/auth/logout", Some(&ta), None).await;
    assert_eq!(s, 204, "{body}");
    let (s, body) = app.me(&ta).await;
    assert_eq!((s, code(&body)), (401, "session_revoked"));
    let (s, body) = app.refresh(&token(&a, "refresh_token")).await;
    assert_eq!((s, code(&body)), (401, "session_revoked"));
    assert_eq!(app.me(&tb).await.0, 200, "the other session lives");
    // Logging out twice: the token is already dead.
    assert_eq!(app.call("POST", "/api/v1/auth/logout", Some(&ta), None).await.0, 401);
}

#[tokio::test]
async fn bad_tokens_are_401_with_a_code() {
    let app = TestApp::spawn().await;
    let (s, b) = app.call("GET", "/api/v1/users/me", None, None).await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
    let (s, b) = app.call("GET", "/api/v1/users/me", Some("not.a.jwt"), None).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
    // Signed with another secret.
    let other = chatd::auth::tokens::TokenKeys::new(&[1u8; 32], "chatd", 60);
    let forged = other.issue(uuid::Uuid::new_v4(), uuid::Uuid::new_v4()).unwrap();
    let (s, b) = app.me(&forged).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
}

#[tokio::test]
async fn access_tokens_carry_user_session_issuer_and_expiry() {
    let app = TestApp::spawn().await;
    let reg = app.register("gina", "password123").await;
    let claims: serde_json::Value = {
        use base64::Engine as _;
        let t = token(&reg, "access_token");
        let payload = t.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["iss"], "chatd");
    assert_eq!(claims["sub"], reg["user"]["id"]);
    assert!(claims["sid"].is_string());
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 900);
}

#[tokio::test]
async fn disabled_users_cannot_log_in_or_use_their_tokens() {
    let app = TestApp::spawn().await;
    let reg = app.register("hank", "password123").await;
    let access = token(&reg, "access_token");
    let pool = chatd::db::Db::new(app.db.config.clone(), 2, std::time::Duration::from_secs(5));
    let accounts = chatd::app::AppState::new(app.config.clone(), pool).unwrap().accounts;
    accounts.set_disabled("hank", true).await.unwrap();

    let (s, b) = app.login("hank", "password123").await;
    assert_eq!((s, code(&b)), (403, "account_disabled"));
    let (s, _) = app.me(&access).await;
    assert_eq!(s, 401, "disabling revoked the sessions");
    let (s, _) = app.login("hank", "wrong-password").await;
    assert_eq!(s, 401, "a wrong password still says nothing about the account");

    accounts.set_disabled("hank", false).await.unwrap();
    assert_eq!(app.login("hank", "password123").await.0, 200);
}

#[tokio::test]
async fn weak_hashes_are_upgraded_at_login() {
    let app = TestApp::spawn().await;
    app.register("ivan", "password123").await;
    // Same database, stronger configured cost: the next login rehashes.
    let stronger = TestAppWithDb::new(&app, 2_000).await;
    let (s, _) = stronger.login("ivan", "password123").await;
    assert_eq!(s, 200);
    let client = app.db.client().await;
    let hash: String = client
        .query_one("SELECT password_hash FROM users WHERE username = 'ivan'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$pbkdf2-sha256$i=2000,"), "{hash}");
}

/// A second server on the same database with a different hashing cost.
struct TestAppWithDb {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestAppWithDb {
    async fn new(app: &TestApp, iterations: u32) -> Self {
        let mut config = (*app.config).clone();
        config.auth.pbkdf2_iterations = iterations;
        let pool = chatd::db::Db::new(app.db.config.clone(), 2, std::time::Duration::from_secs(5));
        let server = chatd::app::Application::build(std::sync::Arc::new(config), pool)
            .await
            .unwrap();
        let addr = server.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Self { addr, _stop: tx }
    }

    async fn login(&self, username: &str, password: &str) -> (u16, serde_json::Value) {
        let res = reqwest::Client::new()
            .post(format!("http://{}/api/v1/auth/login", self.addr))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }
}

#[tokio::test]
async fn expired_access_tokens_sessions_and_refresh_tokens_say_so() {
    let app = TestApp::spawn().await;
    let reg = app.register("jack", "password123").await;
    let access = token(&reg, "access_token");
    let db = app.db.client().await;

    // An access token signed with the server's secret whose `exp` has passed.
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": reg["user"]["id"], "sid": uuid::Uuid::new_v4(), "iat": now - 7200, "exp": now - 3600, "iss": "chatd"});
    let secret = app.config.auth.jwt_secret.clone().unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let (s, b) = app.me(&expired).await;
    assert_eq!((s, code(&b)), (401, "token_expired"));

    // The refresh token's own expiry.
    db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    let (s, b) = app.refresh(&token(&reg, "refresh_token")).await;
    assert_eq!((s, code(&b)), (401, "refresh_token_expired"));

    // The session's expiry ends its access tokens too.
    db.execute("UPDATE sessions SET expires_at = now() - interval '1 second'", &[])
        .await
        .unwrap();
    let (s, b) = app.me(&access).await;
    assert_eq!((s, code(&b)), (401, "session_expired"));
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let reg = app.register("kim", "password123").await;
    let rt = token(&reg, "refresh_token");
    let body = json!({"refresh_token": rt});
    let (a, b) = tokio::join!(
        app.call("POST", "/api/v1/auth/refresh", None, Some(body.clone())),
        app.call("POST", "/api/v1/auth/refresh", None, Some(body.clone()))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{a:?} {b:?}");
    let loser = if a.0 == 401 { &a.1 } else { &b.1 };
    assert_eq!(
        code(loser),
        "refresh_token_reused",
        "a replayed token revokes the session"
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("lena", "password123").await, "access_token");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let res = app
            .http
            .get(app.url("/api/v1/users/me"))
            .header("authorization", format!("{scheme} {t}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{scheme}");
    }
    let res = app
        .http
        .get(app.url("/api/v1/users/me"))
        .header("authorization", format!("Basic {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}
