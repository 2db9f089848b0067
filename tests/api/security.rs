//! The security properties docs/security.md promises, checked from outside: access tokens
//! verified with HS256 only, no secret in anything chatd prints, the browser-facing headers and
//! CORS policy, and refresh tokens stored only as hashes.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::cli::ChildGuard;
use crate::helpers::{code, scratch_dir, test_config, token, TestApp, TestDb};

/// The web client's origin where CORS is configured, and another site's.
const CHAT: &str = "https://chat.example.com";
const EVIL: &str = "https://evil.example";

/// The same claims, signed with the server's own secret, under every algorithm but HS256 —
/// including `none` and RS256 with an HMAC signature (algorithm confusion): all are refused at
/// the REST API and at the WebSocket upgrade. Controls: the genuine token, and one built here
/// with HS256 and the hand-rolled HMAC the RS256 forgery uses, both work.
#[tokio::test]
async fn only_hs256_tokens_are_accepted_at_rest_and_websocket() {
    let app = TestApp::spawn().await;
    let genuine = token(&app.register("mallory", "password123").await, "access_token");
    let secret = app.config.auth.jwt_secret.clone().expect("test_config sets a secret");
    let (payload, claims) = (genuine.split('.').nth(1).unwrap(), claims(&genuine));
    for claim in ["sub", "sid", "iat", "exp", "iss"] {
        assert!(!claims[claim].is_null(), "{claim} in {claims}");
    }

    let resigned = |alg| encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
    let handmade = |alg: &str, signed: bool| {
        let head = B64.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let signature = match signed {
            true => B64.encode(hmac_sha256(secret.as_bytes(), format!("{head}.{payload}").as_bytes())),
            false => String::new(),
        };
        format!("{head}.{payload}.{signature}")
    };

    for good in [genuine.clone(), handmade("HS256", true)] {
        assert_eq!(app.me(&good).await.0, 200, "{good}");
        assert_eq!(app.ws(&good).await.hello["type"], "hello");
    }
    let forged = [
        ("HS384", resigned(Algorithm::HS384)),
        ("HS512", resigned(Algorithm::HS512)),
        ("none", handmade("none", false)),
        ("none, signed", handmade("none", true)),
        ("RS256 with an HMAC", handmade("RS256", true)),
    ];
    for (what, forgery) in forged {
        let (s, b) = app.me(&forgery).await;
        assert_eq!((s, code(&b)), (401, "invalid_token"), "{what} at REST: {b}");
        let (s, b) = app.ws_refused("/api/v1/ws", Some(&forgery)).await;
        assert_eq!((s, code(&b)), (401, "invalid_token"), "{what} at the upgrade: {b}");
        let (s, b) = app.ws_refused(&format!("/api/v1/ws?token={forgery}"), None).await;
        assert_eq!((s, code(&b)), (401, "invalid_token"), "{what} as ?token=: {b}");
    }
}

/// A real `chatd serve` at debug level, in JSON and in text, sees every secret a client can
/// send (passwords in bodies, tokens in headers, bodies and `?token=`, junk query strings) and
/// `chatd user create` reads one on stdin: none of them, nor the signing secret or a token's
/// signature alone, appears in anything either printed — while the request lines (and debug
/// lines) do, so logging was really on.
#[tokio::test]
async fn no_password_token_or_signing_secret_reaches_the_logs() {
    const SECRET: &str = "Sig-Secret-f00d-4c1e-9b7a-e2d5c3a1b0f9XY";
    for (format, debug_line) in [("json", r#""level":"DEBUG""#), ("text", " DEBUG ")] {
        let db = Arc::new(TestDb::new().await);
        let dir = scratch_dir();
        let (out, err) = (dir.path().join("serve.out"), dir.path().join("serve.err"));
        let mut cmd = crate::cli::chatd(dir.path(), Some(&db.url), &["serve", "--bind", "127.0.0.1:0"]);
        cmd.env("CHATD_AUTH__JWT_SECRET", SECRET)
            .env("CHATD_LOG__LEVEL", "debug")
            .env("CHATD_LOG__FORMAT", format)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = ChildGuard(cmd.spawn().expect("spawn chatd serve"));
        let app = TestApp::over(listening_addr(&err, &mut child).await, db);

        let (mut secrets, cli_output) = handle_every_secret(&app, dir.path()).await;
        secrets.push(SECRET.to_string());

        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "chatd serve ignored SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let server_output = std::fs::read_to_string(&out).unwrap() + &std::fs::read_to_string(&err).unwrap();

        let paths = "auth/register auth/login auth/refresh users/me/password ws sessions auth/logout";
        // The closing quote: that exact path, in either format.
        for path in paths.split(' ').map(|p| format!("/api/v1/{p}\"")) {
            assert!(server_output.contains(&path), "{format}: {path} not logged");
        }
        assert!(server_output.contains(debug_line), "{format}: no debug line");
        for printed in [&server_output, &cli_output] {
            for secret in &secrets {
                let leak = printed.lines().find(|line| line.contains(secret.as_str()));
                assert_eq!(leak, None, "{format}: {secret} printed");
            }
        }
    }
}

/// Drives one of each secret-carrying request against `app` (a `chatd serve` child) and
/// `chatd user create --password-stdin` against its database. Returns every secret sent or
/// received, and what the CLI printed.
async fn handle_every_secret(app: &TestApp, dir: &Path) -> (Vec<String>, String) {
    let (first_pw, new_pw, cli_pw) = ("Reg-Pw-5b1e9d0c", "New-Pw-8e2a7f46", "Cli-Pw-3c9d0a57");
    let (wrong_pw, junk, bad_refresh) = ("Wrong-Pw-6f0b2e91", "Query-Junk-1a4c8e2d", "Refresh-Junk-0d7e3b5a");
    let mut secrets: Vec<String> = [first_pw, new_pw, cli_pw, wrong_pw, junk, bad_refresh]
        .map(String::from)
        .into();
    let mut keep = |body: &Value| {
        for field in ["access_token", "refresh_token"] {
            let t = token(body, field);
            if let Some(signature) = t.split('.').nth(2) {
                secrets.push(signature.to_string());
            }
            secrets.push(t);
        }
    };

    keep(&app.register("sec_user", first_pw).await);
    let (s, b) = app.login("sec_user", wrong_pw).await;
    assert_eq!((s, code(&b)), (401, "invalid_credentials"));
    let (s, login) = app.login("sec_user", first_pw).await;
    assert_eq!(s, 200, "{login}");
    keep(&login);
    let (s, b) = app.refresh(bad_refresh).await;
    assert_eq!(s, 401, "{b}");
    let (s, refreshed) = app.refresh(&token(&login, "refresh_token")).await;
    assert_eq!(s, 200, "{refreshed}");
    keep(&refreshed);
    let access = token(&refreshed, "access_token");

    let (password, change) = ("/api/v1/users/me/password", |current: &str| {
        Some(json!({"current_password": current, "new_password": new_pw}))
    });
    let (s, b) = app.call("PUT", password, Some(&access), change(wrong_pw)).await;
    assert_eq!((s, code(&b)), (403, "wrong_password"));
    app.expect(204, "PUT", password, Some(&access), change(first_pw)).await;

    let by_query = format!("ws://{}/api/v1/ws?token={access}", app.addr);
    let (mut queried, _) = tokio_tungstenite::connect_async(by_query).await.expect("?token= works");
    let mut by_header = app.ws(&access).await;
    assert_eq!(by_header.request(json!({"type": "ping"}), "p").await["type"], "pong");
    let (s, b) = app.ws_refused(&format!("/api/v1/ws?token={junk}"), None).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));

    let (s, b) = app
        .call("GET", &format!("/api/v1/users/me?token={junk}"), Some(&access), None)
        .await;
    assert_eq!(s, 200, "{b}");
    for malformed in [format!("{access}x"), format!("{junk}.{junk}.{junk}")] {
        let (s, b) = app.me(&malformed).await;
        assert_eq!((s, code(&b)), (401, "invalid_token"), "{b}");
    }
    app.expect(200, "GET", "/api/v1/sessions", Some(&access), None).await;
    let logout = "/api/v1/auth/logout";
    app.expect(204, "POST", logout, Some(&access), None).await;
    by_header.closed().await;
    let _ = queried.close(None).await;

    let create = ["user", "create", "sec_cli", "--password-stdin"];
    let mut cli = crate::cli::chatd(dir, Some(&app.db.url), &create);
    cli.env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cli.spawn().expect("spawn chatd user create");
    writeln!(child.stdin.take().unwrap(), "{cli_pw}").unwrap();
    let done = child.wait_with_output().unwrap();
    let cli_output = String::from_utf8_lossy(&done.stdout).to_string() + &String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{cli_output}");
    let (s, cli_login) = app.login("sec_cli", cli_pw).await;
    assert_eq!(s, 200, "the password read from stdin is the account's: {cli_login}");
    keep(&cli_login);
    // The stored hashes are secrets too (an offline guessing target): tokio-postgres would log
    // them as statement parameters at debug level.
    let hashes = app.db.client().await;
    for row in hashes.query("SELECT password_hash FROM users", &[]).await.unwrap() {
        secrets.push(row.get(0));
    }
    (secrets, cli_output)
}

/// Every response — success, JSON error, refusal — carries the hardening headers; without
/// `server.cors_allowed_origins` no origin is ever allowed, and HSTS is off until configured.
#[tokio::test]
async fn every_response_carries_the_security_headers_and_no_cors_by_default() {
    let app = TestApp::spawn().await;
    let bearer = format!("Bearer {}", app.user("hedy").await);
    for (status, path, auth) in [
        (200, "/api/v1/users/me", bearer.as_str()),
        (404, "/api/v1/no/such/route", ""),
        (401, "/api/v1/users/me", ""),
    ] {
        let res = send(&app, "GET", path, &[("origin", EVIL), ("authorization", auth)]).await;
        assert_eq!(res.status().as_u16(), status, "GET {path}");
        assert_hardened(&res, path);
        assert!(res.headers().get("strict-transport-security").is_none(), "{path}");
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
}

/// With allowed origins configured, exactly those may call the API (preflight and actual
/// request), any other origin gets 403 `cors_forbidden`, credentials are never allowed, and
/// `server.hsts_max_age_secs` turns HSTS on.
#[tokio::test]
async fn cors_admits_only_the_configured_origins_and_hsts_follows_its_setting() {
    let app = TestApp::spawn_with(|c| {
        c.server.cors_allowed_origins = vec![CHAT.into()];
        c.server.hsts_max_age_secs = 31_536_000;
    })
    .await;
    let access = app.user("grace").await;
    let bearer = format!("Bearer {access}");
    let me = "/api/v1/users/me";
    let preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ]
    };

    let res = send(&app, "OPTIONS", me, &preflight(CHAT)).await;
    assert!(res.status().is_success(), "preflight: {}", res.status());
    assert_allowed(&res, "preflight");
    let res = send(&app, "GET", me, &[("origin", CHAT), ("authorization", &bearer)]).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_allowed(&res, "GET");
    let hsts = res.headers().get("strict-transport-security");
    assert_eq!(hsts.unwrap(), "max-age=31536000; includeSubDomains");
    assert_hardened(&res, "allowed GET");

    let evil_get = [("origin", EVIL), ("authorization", bearer.as_str())];
    for (what, method, headers) in [
        ("preflight", "OPTIONS", &preflight(EVIL)[..]),
        ("GET", "GET", &evil_get),
    ] {
        let res = send(&app, method, me, headers).await;
        assert_eq!(res.status().as_u16(), 403, "{what}");
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{what}");
        assert_hardened(&res, what);
        let body: Value = res.json().await.expect("a JSON error");
        assert_eq!(code(&body), "cors_forbidden", "{what}: {body}");
    }
    // Clients that send no Origin (not browsers) are not affected.
    assert_eq!(app.me(&access).await.0, 200);
}

/// Origins must be exactly `scheme://host[:port]` and proxies addresses or networks; anything
/// else is a configuration error naming the key.
#[test]
fn cors_origins_and_trusted_proxies_are_validated() {
    let dir = scratch_dir();
    let refused = |tweak: &dyn Fn(&mut chatd::config::Config)| {
        let mut c = test_config(dir.path().to_path_buf());
        tweak(&mut c);
        c.validate().map(|_| ()).map_err(|e| e.to_string())
    };
    for bad in [
        "https://chat.example.com/path",
        "chat.example.com",
        "http://chat.example.com/",
    ] {
        let e = refused(&|c| c.server.cors_allowed_origins = vec![bad.into()]).expect_err(bad);
        assert!(e.contains("server.cors_allowed_origins"), "{bad}: {e}");
    }
    let e = refused(&|c| c.server.trusted_proxies = vec!["not-an-ip".into()]).expect_err("not-an-ip");
    assert!(e.contains("server.trusted_proxies"), "{e}");
    let good = refused(&|c| {
        c.server.cors_allowed_origins = vec![CHAT.into(), "http://localhost:5173".into()];
        c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()];
    });
    assert_eq!(good, Ok(()));
}

/// The database holds a refresh token only as its SHA-256, before and after rotation: no row of
/// any table contains a refresh or access token's text.
#[tokio::test]
async fn refresh_tokens_are_stored_only_as_sha256_hashes() {
    let app = TestApp::spawn().await;
    app.register("ada", "password123").await;
    let (s, login) = app.login("ada", "password123").await;
    assert_eq!(s, 200, "{login}");
    let first = token(&login, "refresh_token");
    let (s, refreshed) = app.refresh(&first).await;
    assert_eq!(s, 200, "{refreshed}");
    let second = token(&refreshed, "refresh_token");
    let sid = claims(&token(&refreshed, "access_token"))["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid: uuid::Uuid = sid.parse().unwrap();

    let db = app.db.client().await;
    let rows = db
        .query(
            "SELECT token_hash, rotated_at IS NOT NULL FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at",
            &[&sid],
        )
        .await
        .unwrap();
    let stored: Vec<(Vec<u8>, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let sha = |t: &str| Sha256::digest(t.as_bytes()).to_vec();
    assert_eq!(stored, vec![(sha(&first), true), (sha(&second), false)]);
    assert_ne!(stored[1].0, second.as_bytes());

    let mut secrets = vec![first, second];
    secrets.extend([&login, &refreshed].map(|b| token(b, "access_token")));
    let tables = db
        .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap();
    assert!(tables.len() >= 3, "the schema's tables are listed");
    for table in tables.iter().map(|r| r.get::<_, String>(0)) {
        for row in db.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap() {
            let text: String = row.get(0);
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{table} holds a token: {text}");
            }
        }
    }
}

/// Waits for `chatd serve` to log the address it listens on (the text and JSON formats both
/// carry "listening on http://ADDR").
async fn listening_addr(log: &Path, child: &mut ChildGuard) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            return addr.parse().expect("an address after 'listening on'");
        }
        assert!(child.try_wait().unwrap().is_none(), "chatd serve exited:\n{text}");
        assert!(Instant::now() < deadline, "chatd serve never listened:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request with `headers` (those with an empty value left out).
async fn send(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.http.request(method.parse().unwrap(), app.url(path));
    for (name, value) in headers.iter().filter(|(_, v)| !v.is_empty()) {
        req = req.header(*name, *value);
    }
    req.send().await.expect("request")
}

/// Asserts the headers every chatd response carries.
fn assert_hardened(res: &reqwest::Response, what: &str) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("cross-origin-resource-policy", "same-origin"),
        ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ] {
        let got = res.headers().get(name).map(|v| v.to_str().unwrap());
        assert_eq!(got, Some(value), "{what}: {name}");
    }
}

/// Asserts the response lets the allowed origin's scripts read it, without credentials.
fn assert_allowed(res: &reqwest::Response, what: &str) {
    let allowed = res.headers().get("access-control-allow-origin");
    assert_eq!(allowed.map(|v| v.to_str().unwrap()), Some(CHAT), "{what}");
    let credentials = res.headers().get("access-control-allow-credentials");
    assert!(credentials.is_none(), "{what}");
}

/// The claims of a JWT (its payload, base64url JSON), unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&B64.decode(payload).unwrap()).expect("JSON claims")
}

/// HMAC-SHA256 (RFC 2104) on `sha2` alone: the forged RS256 token needs a signature made the
/// way the server's HS256 check would accept it.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}
