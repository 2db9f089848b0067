//! `/api/v1/sessions`: my sessions, and revoking one.

use crate::helpers::{code, token, TestApp};

#[tokio::test]
async fn sessions_list_mine_and_revoking_one_kills_its_tokens() {
    let app = TestApp::spawn().await;
    let reg = app.register("olga", "password123").await;
    let first = token(&reg, "access_token");
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", "chatd-test-phone/1.0")
        .json(&serde_json::json!({"username": "olga", "password": "password123"}))
        .send()
        .await
        .unwrap();
    let second = token(&res.json::<serde_json::Value>().await.unwrap(), "access_token");
    let other = token(&app.register("pete", "password123").await, "access_token");

    let (s, list) = app.call("GET", "/api/v1/sessions", Some(&first), None).await;
    assert_eq!(s, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "only my own sessions: {list}");
    assert_eq!(items.iter().filter(|i| i["current"] == true).count(), 1);
    let phone = items
        .iter()
        .find(|i| i["user_agent"] == "chatd-test-phone/1.0")
        .expect("user agent recorded");
    assert_eq!(phone["ip"], "127.0.0.1");
    let phone_id = phone["id"].as_str().unwrap().to_string();

    // Someone else cannot revoke it; a malformed id is simply not found.
    let (s, b) = app
        .call("DELETE", &format!("/api/v1/sessions/{phone_id}"), Some(&other), None)
        .await;
    assert_eq!((s, code(&b)), (404, "session_not_found"));
    let (s, b) = app
        .call("DELETE", "/api/v1/sessions/not-a-uuid", Some(&first), None)
        .await;
    assert_eq!((s, code(&b)), (404, "session_not_found"));

    let (s, _) = app
        .call("DELETE", &format!("/api/v1/sessions/{phone_id}"), Some(&first), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.me(&second).await.0, 401);
    let (_, list) = app.call("GET", "/api/v1/sessions", Some(&first), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Revoking it again: it is no longer live.
    let (s, _) = app
        .call("DELETE", &format!("/api/v1/sessions/{phone_id}"), Some(&first), None)
        .await;
    assert_eq!(s, 404);
}
