//! `/api/v1/users/*`: profiles, password change, account deletion, search.

use serde_json::json;

use crate::helpers::{code, token, TestApp};

#[tokio::test]
async fn patch_me_sets_clears_and_validates_fields() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("jane", "password123").await, "access_token");
    let (s, me) = app
        .call(
            "PATCH",
            "/api/v1/users/me",
            Some(&t),
            Some(json!({"display_name": " Jane ", "bio": "hello\nworld", "avatar_url": "https://example.com/j.png"})),
        )
        .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["display_name"], "Jane");
    assert_eq!(me["bio"], "hello\nworld");
    assert_eq!(me["avatar_url"], "https://example.com/j.png");

    // Absent fields stay; null clears.
    let (s, me) = app
        .call("PATCH", "/api/v1/users/me", Some(&t), Some(json!({"bio": null})))
        .await;
    assert_eq!(s, 200);
    assert_eq!(me["display_name"], "Jane");
    assert!(me["bio"].is_null());

    for (body, expected) in [
        (json!({"avatar_url": "javascript:alert(1)"}), "invalid_avatar_url"),
        (json!({"bio": "b".repeat(501)}), "invalid_bio"),
        (json!({"display_name": "bell\u{7}"}), "invalid_display_name"),
    ] {
        let (s, b) = app
            .call("PATCH", "/api/v1/users/me", Some(&t), Some(body.clone()))
            .await;
        assert_eq!((s, code(&b)), (422, expected), "{body}");
    }
    let (s, b) = app
        .call("PATCH", "/api/v1/users/me", Some(&t), Some(json!({"username": "root"})))
        .await;
    assert_eq!((s, code(&b)), (400, "invalid_request"));
    let (_, me) = app.me(&t).await;
    assert_eq!(me["display_name"], "Jane", "failed updates changed nothing");

    // A patch that changes nothing ({} or the same values) leaves updated_at alone.
    assert!(me["updated_at"].is_string(), "{me}");
    for body in [json!({}), json!({"display_name": "Jane", "bio": null})] {
        let (s, after) = app
            .call("PATCH", "/api/v1/users/me", Some(&t), Some(body.clone()))
            .await;
        assert_eq!(s, 200);
        assert_eq!(after["updated_at"], me["updated_at"], "{body}");
    }
}

#[tokio::test]
async fn password_change_checks_the_current_one_and_revokes_other_sessions() {
    let app = TestApp::spawn().await;
    let a = token(&app.register("kate", "password123").await, "access_token");
    let b = token(&app.login("kate", "password123").await.1, "access_token");

    let (s, body) = app
        .call(
            "PUT",
            "/api/v1/users/me/password",
            Some(&a),
            Some(json!({"current_password": "nope-nope", "new_password": "newpassword1"})),
        )
        .await;
    assert_eq!((s, code(&body)), (403, "wrong_password"));
    let (s, body) = app
        .call(
            "PUT",
            "/api/v1/users/me/password",
            Some(&a),
            Some(json!({"current_password": "password123", "new_password": "short"})),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "invalid_password"));
    let (s, _) = app
        .call(
            "PUT",
            "/api/v1/users/me/password",
            Some(&a),
            Some(json!({"current_password": "password123", "new_password": "newpassword1"})),
        )
        .await;
    assert_eq!(s, 204);

    assert_eq!(app.me(&a).await.0, 200, "this session stays");
    assert_eq!(app.me(&b).await.0, 401, "other sessions are revoked");
    assert_eq!(app.login("kate", "password123").await.0, 401);
    assert_eq!(app.login("kate", "newpassword1").await.0, 200);
}

#[tokio::test]
async fn delete_me_needs_the_password_and_frees_the_name() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("leo", "password123").await, "access_token");
    let (s, b) = app
        .call(
            "DELETE",
            "/api/v1/users/me",
            Some(&t),
            Some(json!({"password": "wrong-one"})),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "wrong_password"));
    let (s, b) = app.call("DELETE", "/api/v1/users/me", Some(&t), Some(json!({}))).await;
    assert_eq!((s, code(&b)), (400, "invalid_request"));
    let (s, _) = app
        .call(
            "DELETE",
            "/api/v1/users/me",
            Some(&t),
            Some(json!({"password": "password123"})),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.me(&t).await.0, 401);
    assert_eq!(app.login("leo", "password123").await.0, 401);
    app.register("leo", "another-password").await;
}

#[tokio::test]
async fn public_profiles_show_public_fields_only() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("mia", "password123").await, "access_token");
    app.register("ned", "password123").await;
    let (s, p) = app.call("GET", "/api/v1/users/NED", Some(&t), None).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["username"], "ned");
    assert!(p.get("is_admin").is_none() && p.get("disabled").is_none());
    let (s, b) = app.call("GET", "/api/v1/users/nobody", Some(&t), None).await;
    assert_eq!((s, code(&b)), (404, "user_not_found"));
    let (s, b) = app.call("GET", "/api/v1/users/ned", None, None).await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
}

#[tokio::test]
async fn a_database_error_reading_a_profile_is_not_a_404() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("mia", "password123").await, "access_token");
    app.register("ned", "password123").await;
    // Breaks the profile query (not the session check): a real database error.
    app.db
        .client()
        .await
        .batch_execute("ALTER TABLE users RENAME COLUMN bio TO bio_gone")
        .await
        .unwrap();
    let (s, b) = app.call("GET", "/api/v1/users/ned", Some(&t), None).await;
    assert_eq!((s, code(&b)), (500, "internal"), "{b}");
}

#[tokio::test]
async fn listing_users_needs_a_token() {
    let app = TestApp::spawn().await;
    let (s, b) = app.call("GET", "/api/v1/users", None, None).await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
    let (s, b) = app.call("GET", "/api/v1/users?q=a", Some("not-a-jwt"), None).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
}

#[tokio::test]
async fn malformed_or_repeated_query_parameters_are_400() {
    // Never read loosely: a bad escape used to be dropped, so `?%zz=1` listed everyone.
    let app = TestApp::spawn().await;
    let t = app.user("queryist").await;
    for query in ["q=%ff", "q=%zz", "%zz=1", "limit=1&limit=2", "q=caf%C3"] {
        let (s, b) = app.call("GET", &format!("/api/v1/users?{query}"), Some(&t), None).await;
        assert_eq!((s, code(&b)), (400, "invalid_query"), "{query}: {b}");
    }
    let (s, b) = app
        .call("GET", "/api/v1/users?q=query%69st&limit=5", Some(&t), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["items"][0]["username"], "queryist", "escapes decode");
}

#[tokio::test]
async fn search_paginates_with_a_cursor_and_escapes_wildcards() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("searcher", "password123").await, "access_token");
    for i in 0..5 {
        app.register(&format!("team_{i}"), "password123").await;
    }
    app.register("teamx1", "password123").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?q=team_&limit=2&cursor={c}"),
            None => "/api/v1/users?q=team_&limit=2".to_string(),
        };
        let (s, page) = app.call("GET", &path, Some(&t), None).await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| u["username"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(seen.len() <= 10, "pagination must end");
    }
    // `_` is literal, so teamx1 is not a match.
    assert_eq!(seen, vec!["team_0", "team_1", "team_2", "team_3", "team_4"]);

    for (path, status, expected) in [
        ("/api/v1/users?limit=0", 422, "invalid_limit"),
        ("/api/v1/users?limit=101", 422, "invalid_limit"),
        ("/api/v1/users?limit=abc", 422, "invalid_limit"),
        ("/api/v1/users?limit=99999999999999999999", 422, "invalid_limit"),
        ("/api/v1/users?cursor=not*base64", 422, "invalid_cursor"),
        // Decodes to a NUL byte, which PostgreSQL refuses in text: must not be a 500.
        ("/api/v1/users?cursor=AA", 422, "invalid_cursor"),
        ("/api/v1/users?q=%00", 422, "invalid_query"),
    ] {
        let (s, b) = app.call("GET", path, Some(&t), None).await;
        assert_eq!((s, code(&b)), (status, expected), "{path}: {b}");
    }
    let long_q = format!("/api/v1/users?q={}", "q".repeat(65));
    let (s, b) = app.call("GET", &long_q, Some(&t), None).await;
    assert_eq!((s, code(&b)), (422, "invalid_query"), "{b}");
}

#[tokio::test]
async fn body_less_and_oversized_patch_and_delete_keep_their_codes() {
    // Regression: these used to come back as 405, merged with the GET routes on the same path.
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = 1024).await;
    let t = token(&app.register("quinn", "password123").await, "access_token");
    for method in ["PATCH", "DELETE"] {
        let res = app
            .http
            .request(method.parse().unwrap(), app.url("/api/v1/users/me"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!((status, code(&body)), (400, "invalid_json"), "{method} without a body");
        let big = json!({"bio": "b".repeat(2000)});
        let (s, b) = app.call(method, "/api/v1/users/me", Some(&t), Some(big)).await;
        assert_eq!((s, code(&b)), (413, "payload_too_large"), "{method} oversized");
    }
    assert_eq!(app.me(&t).await.0, 200, "the account is untouched");
}

#[tokio::test]
async fn profile_paths_are_percent_decoded() {
    let app = TestApp::spawn().await;
    let t = token(&app.register("rita", "password123").await, "access_token");
    let (s, p) = app.call("GET", "/api/v1/users/%72ita", Some(&t), None).await;
    assert_eq!((s, p["username"].as_str()), (200, Some("rita")));
}
