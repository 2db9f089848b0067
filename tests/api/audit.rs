//! The audit log: every moderation and administration action leaves exactly one entry, with
//! who did it, to whom, where and why; refused actions leave none; and the log is read through
//! `GET /rooms/{id}/audit`, `GET /admin/audit` and `chatd audit`.

use std::io::Write as _;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::cli::{chatd, outcome, run};
use crate::helpers::{code, scratch_dir, TestApp};

/// (action, actor, target, reason) of each entry, as listed (newest first).
fn summary(page: &Value) -> Vec<(String, String, Option<String>, Option<String>)> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["target"].as_str().map(str::to_owned),
                e["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn entry(
    action: &str,
    actor: &str,
    target: Option<&str>,
    reason: Option<&str>,
) -> (String, String, Option<String>, Option<String>) {
    (
        action.to_owned(),
        actor.to_owned(),
        target.map(str::to_owned),
        reason.map(str::to_owned),
    )
}

impl TestApp {
    async fn room_audit(&self, token: &str, room: &str) -> Value {
        self.expect(
            200,
            "GET",
            &format!("/api/v1/rooms/{room}/audit?limit=200"),
            Some(token),
            None,
        )
        .await
    }

    fn operator(&self) -> String {
        chatd::auth::tokens::operator_token(&self.config).unwrap()
    }

    /// `GET /admin/audit?query` as the operator.
    async fn all_audit(&self, query: &str) -> Value {
        self.expect(
            200,
            "GET",
            &format!("/api/v1/admin/audit?{query}"),
            Some(&self.operator()),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn every_moderation_step_is_recorded_once_with_actor_target_and_reason() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let _dave = app.user("dave").await;
    let room = app.room(&alice, "Ops", "public").await;
    let r = |p: &str| format!("/api/v1/rooms/{room}{p}");

    app.expect(
        201,
        "POST",
        &r("/members"),
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await;
    app.expect(
        200,
        "PATCH",
        &r("/members/bob"),
        Some(&alice),
        Some(json!({"role": "admin"})),
    )
    .await;
    app.expect(
        201,
        "POST",
        &r("/members"),
        Some(&bob),
        Some(json!({"username": "carol"})),
    )
    .await;
    // Deleting one's own message is not moderation; deleting another's is.
    let own = app.say(&carol, &room, "mine").await["seq"].as_i64().unwrap();
    let theirs = app.say(&carol, &room, "spam").await["seq"].as_i64().unwrap();
    app.expect(204, "DELETE", &r(&format!("/messages/{own}")), Some(&carol), None)
        .await;
    app.expect(204, "DELETE", &r(&format!("/messages/{theirs}")), Some(&bob), None)
        .await;
    app.expect(204, "DELETE", &r("/members/carol"), Some(&bob), None).await;
    app.expect(
        201,
        "POST",
        &r("/bans"),
        Some(&bob),
        Some(json!({"username": "dave", "reason": "spam"})),
    )
    .await;
    app.expect(204, "DELETE", &r("/bans/dave"), Some(&bob), None).await;
    app.expect(
        200,
        "PATCH",
        &r(""),
        Some(&alice),
        Some(json!({"topic": "on call", "name": "Ops"})),
    )
    .await;
    app.expect(204, "DELETE", &r(""), Some(&alice), None).await;

    let page = app.room_audit(&alice, &room).await;
    assert_eq!(
        summary(&page),
        [
            entry("room_archived", "alice", None, None),
            entry("room_updated", "alice", None, None),
            entry("member_unbanned", "bob", Some("dave"), None),
            entry("member_banned", "bob", Some("dave"), Some("spam")),
            entry("member_kicked", "bob", Some("carol"), None),
            entry("message_deleted", "bob", Some("carol"), None),
            entry("member_added", "bob", Some("carol"), None),
            entry("role_changed", "alice", Some("bob"), None),
            entry("member_added", "alice", Some("bob"), None),
        ]
    );
    let items = page["items"].as_array().unwrap();
    // Only what changed: the name given was the room's own.
    assert_eq!(items[1]["details"], json!({"topic": {"from": null, "to": "on call"}}));
    assert_eq!(items[5]["details"], json!({"seq": theirs}));
    assert_eq!(items[7]["details"], json!({"from": "member", "to": "admin"}));
    assert_eq!(items[0]["room_id"], json!(room));
    assert_eq!(items[0]["room_name"], "Ops");
    assert!(items[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(page["next_cursor"], Value::Null);
    // Newest first, by id.
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
}

#[tokio::test]
async fn an_ownership_transfer_is_one_entry_naming_the_previous_owner() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let room = app.room(&alice, "Ops", "private").await;
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{room}/members"),
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await;
    app.expect(
        200,
        "PATCH",
        &format!("/api/v1/rooms/{room}/members/bob"),
        Some(&alice),
        Some(json!({"role": "owner"})),
    )
    .await;
    let page = app.all_audit("action=role_changed").await;
    assert_eq!(summary(&page), [entry("role_changed", "alice", Some("bob"), None)]);
    assert_eq!(
        page["items"][0]["details"],
        json!({"from": "member", "to": "owner", "previous_owner": "alice"})
    );
}

#[tokio::test]
async fn refused_actions_record_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.user("carol").await;
    let room = app.room(&alice, "Ops", "public").await;
    let r = |p: &str| format!("/api/v1/rooms/{room}{p}");
    app.expect(200, "POST", &r("/join"), Some(&bob), None).await;
    app.expect(
        201,
        "POST",
        &r("/members"),
        Some(&alice),
        Some(json!({"username": "carol"})),
    )
    .await;
    let before = app.all_audit("").await;
    assert_eq!(before["items"].as_array().unwrap().len(), 1);

    let seq = app.say(&alice, &room, "hello").await["seq"].as_i64().unwrap();
    let refused = [
        ("DELETE", r("/members/carol"), None),
        ("POST", r("/bans"), Some(json!({"username": "carol", "reason": "no"}))),
        ("PATCH", r("/members/carol"), Some(json!({"role": "admin"}))),
        ("PATCH", r(""), Some(json!({"topic": "mine now"}))),
        ("DELETE", r(&format!("/messages/{seq}")), None),
        ("DELETE", r(""), None),
    ];
    for (method, path, body) in refused {
        let (status, err) = app.call(method, &path, Some(&bob), body).await;
        assert_eq!((status, code(&err)), (403, "forbidden"), "{method} {path}");
    }
    // A plain user cannot disable anyone through the admin API either.
    let (status, _) = app
        .call("POST", "/api/v1/admin/users/carol/disable", Some(&bob), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(app.all_audit("").await, before);
}

#[tokio::test]
async fn only_the_rooms_owner_and_admins_read_its_audit_log() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let private = app.room(&alice, "Staff", "private").await;
    let public = app.room(&alice, "Lobby", "public").await;
    for (who, role) in [("bob", "admin"), ("carol", "member")] {
        app.expect(
            201,
            "POST",
            &format!("/api/v1/rooms/{private}/members"),
            Some(&alice),
            Some(json!({"username": who, "role": role})),
        )
        .await;
    }
    let path = format!("/api/v1/rooms/{private}/audit");
    for owner_or_admin in [&alice, &bob] {
        let page = app.expect(200, "GET", &path, Some(owner_or_admin), None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
    }
    let (status, err) = app.call("GET", &path, Some(&carol), None).await;
    assert_eq!((status, code(&err)), (403, "forbidden"));
    let (status, err) = app.call("GET", &path, Some(&dave), None).await;
    assert_eq!((status, code(&err)), (404, "room_not_found"));
    let (status, _) = app.call("GET", &path, None, None).await;
    assert_eq!(status, 401);
    let (status, err) = app
        .call("GET", &format!("/api/v1/rooms/{public}/audit"), Some(&dave), None)
        .await;
    assert_eq!((status, code(&err)), (403, "forbidden"));
    // A room's log holds only that room's entries.
    let page = app.room_audit(&alice, &public).await;
    assert_eq!(page["items"], json!([]));
    // Bad parameters are refused, never ignored.
    for (query, status, expected) in [
        ("?limit=0", 422, "invalid_limit"),
        ("?before=!!", 422, "invalid_cursor"),
        ("?action=sneezed", 422, "invalid_query"),
        ("?room=x", 400, "invalid_query"),
    ] {
        let (s, err) = app.call("GET", &format!("{path}{query}"), Some(&alice), None).await;
        assert_eq!((s, code(&err)), (status, expected), "{query}");
    }
}

#[tokio::test]
async fn pages_cover_every_entry_exactly_once_and_filter_by_action() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let room = app.room(&alice, "Ops", "public").await;
    for _ in 0..4 {
        app.expect(
            201,
            "POST",
            &format!("/api/v1/rooms/{room}/members"),
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
        app.expect(
            204,
            "DELETE",
            &format!("/api/v1/rooms/{room}/members/bob"),
            Some(&alice),
            None,
        )
        .await;
    }
    let all = app.room_audit(&alice, &room).await;
    let all: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(all.len(), 8);
    let mut seen = Vec::new();
    let mut path = format!("/api/v1/rooms/{room}/audit?limit=3");
    loop {
        let page = app.expect(200, "GET", &path, Some(&alice), None).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/rooms/{room}/audit?limit=3&before={c}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
    let kicks = app
        .expect(
            200,
            "GET",
            &format!("/api/v1/rooms/{room}/audit?action=member_kicked"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(kicks["items"].as_array().unwrap().len(), 4);
    assert!(summary(&kicks)
        .iter()
        .all(|e| *e == entry("member_kicked", "alice", Some("bob"), None)));
}

/// `chatd ARGS…` against `app`'s database.
fn cli(app: &TestApp, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    outcome(&run(chatd(dir, Some(app.db.url.as_str()), args)))
}

#[tokio::test]
async fn the_operators_commands_are_recorded_as_the_operator() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    app.user("alice").await;
    app.user("bob").await;
    let ok = |args: &[&str]| {
        let (status, _, err) = cli(&app, dir.path(), args);
        assert_eq!(status, 0, "{args:?}: {err}");
    };
    ok(&["room", "create", "Ops", "--owner", "alice"]);
    ok(&["room", "add-member", "Ops", "bob", "--role", "admin"]);
    ok(&["room", "set-role", "Ops", "bob", "member"]);
    ok(&["room", "archive", "Ops"]);
    ok(&["room", "delete", "Ops", "--yes"]);
    ok(&["user", "disable", "bob"]);
    ok(&["user", "disable", "bob"]); // already so: nothing to record
    ok(&["user", "enable", "bob"]);
    ok(&["user", "set-admin", "bob", "true"]);
    ok(&["user", "set-admin", "bob", "false"]);
    let mut passwd = chatd(
        dir.path(),
        Some(app.db.url.as_str()),
        &["user", "passwd", "bob", "--password-stdin"],
    );
    passwd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = passwd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"new-password-123\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    ok(&["user", "delete", "bob"]);

    let page = app.all_audit("").await;
    assert_eq!(
        summary(&page),
        [
            entry("user_deleted", "operator", Some("bob"), None),
            entry("password_reset", "operator", Some("bob"), None),
            entry("admin_revoked", "operator", Some("bob"), None),
            entry("admin_granted", "operator", Some("bob"), None),
            entry("user_enabled", "operator", Some("bob"), None),
            entry("user_disabled", "operator", Some("bob"), None),
            entry("room_deleted", "operator", None, None),
            entry("room_archived", "operator", None, None),
            entry("role_changed", "operator", Some("bob"), None),
            entry("member_added", "operator", Some("bob"), None),
        ]
    );
    // The room's name outlives the room; the user's name outlives the account.
    let items = page["items"].as_array().unwrap();
    assert_eq!(items[6]["room_name"], "Ops");
    let by_room = app.all_audit("room=ops").await;
    assert_eq!(by_room["items"].as_array().unwrap().len(), 4);
    let by_user = app.all_audit("user=bob").await;
    assert_eq!(by_user["items"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn administrators_actions_are_recorded_under_their_name() {
    let app = TestApp::spawn().await;
    let root = app.admin("root").await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let carol = app.user("carol").await;
    let room = app.room(&alice, "Ops", "public").await;
    app.expect(200, "POST", "/api/v1/admin/users/bob/disable", Some(&root), None)
        .await;
    app.expect(200, "POST", "/api/v1/admin/users/bob/enable", Some(&root), None)
        .await;
    app.expect(
        204,
        "POST",
        &format!("/api/v1/admin/rooms/{room}/archive"),
        Some(&root),
        None,
    )
    .await;
    // A connection closed by the operator, with a reason.
    let _ws = app.ws(&alice).await;
    let conns = app
        .expect(200, "GET", "/api/v1/admin/connections", Some(&root), None)
        .await;
    let id = conns["items"][0]["id"].as_u64().unwrap();
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/admin/connections/{id}"),
        Some(&app.operator()),
        Some(json!({"reason": "maintenance"})),
    )
    .await;
    let page = app.all_audit("").await;
    assert_eq!(
        summary(&page),
        [
            entry("connection_closed", "operator", Some("alice"), Some("maintenance")),
            entry("room_archived", "root", None, None),
            entry("user_enabled", "root", Some("bob"), None),
            entry("user_disabled", "root", Some("bob"), None),
        ]
    );
    assert_eq!(page["items"][0]["details"]["connection_id"], json!(id));

    // Filters: by user (actor or target), action, room and time.
    assert_eq!(app.all_audit("user=root").await["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.all_audit("user=operator").await["items"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        app.all_audit("action=user_enabled").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.all_audit(&format!("room={room}")).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let first = page["items"][3]["at"].as_str().unwrap().to_owned();
    let since = app
        .all_audit(&format!(
            "since=2000-01-01T00:00:00Z&until={}",
            first.replace('+', "%2B")
        ))
        .await;
    assert_eq!(summary(&since), [entry("user_disabled", "root", Some("bob"), None)]);
    assert_eq!(app.all_audit("since=2999-01-01T00:00:00Z").await["items"], json!([]));

    // Only administrators read it; bad filters are refused.
    let (status, err) = app.call("GET", "/api/v1/admin/audit", Some(&carol), None).await;
    assert_eq!((status, code(&err)), (403, "admin_required"));
    assert_eq!(app.call("GET", "/api/v1/admin/audit", None, None).await.0, 401);
    for (query, status) in [
        ("since=yesterday", 422),
        ("until=2026-13-01T00:00:00Z", 422),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", 422),
        ("action=nope", 422),
        ("user=not%20a%20name", 422),
        ("limit=201", 422),
        ("colour=red", 400),
    ] {
        let (s, err) = app
            .call("GET", &format!("/api/v1/admin/audit?{query}"), Some(&root), None)
            .await;
        assert_eq!(s, status, "{query}: {err}");
        assert!(code(&err).starts_with("invalid_"), "{query}: {err}");
    }
}

#[tokio::test]
async fn chatd_audit_lists_and_filters_the_log() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    let alice = app.user("alice").await;
    app.user("bob").await;
    app.user("carol").await;
    let ops = app.room(&alice, "Ops", "public").await;
    let lobby = app.room(&alice, "Lobby", "public").await;
    for room in [&ops, &lobby] {
        app.expect(
            201,
            "POST",
            &format!("/api/v1/rooms/{room}/members"),
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
    }
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{ops}/bans"),
        Some(&alice),
        Some(json!({"username": "carol", "reason": "flooding"})),
    )
    .await;

    let (status, out, err) = cli(&app, dir.path(), &["audit"]);
    assert_eq!(status, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("    ID") && lines[0].contains("ACTION"), "{out}");
    assert!(
        lines[1].contains("member_banned") && lines[1].contains("carol") && lines[1].contains("\"flooding\""),
        "{out}"
    );

    let json_lines = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["audit", "--json"];
        all.extend_from_slice(args);
        let (status, out, err) = cli(&app, dir.path(), &all);
        assert_eq!(status, 0, "{args:?}: {err}");
        out.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect()
    };
    assert_eq!(json_lines(&[]).len(), 3);
    assert_eq!(json_lines(&["--room", "ops"]).len(), 2);
    assert_eq!(json_lines(&["--room", &lobby]).len(), 1);
    assert_eq!(json_lines(&["--user", "carol"]).len(), 1);
    assert_eq!(json_lines(&["--user", "alice"]).len(), 3);
    assert_eq!(json_lines(&["--action", "member_added", "--limit", "1"]).len(), 1);
    assert_eq!(json_lines(&["--since", "2999-01-01T00:00:00Z"]).len(), 0);
    assert_eq!(json_lines(&["--until", "2000-01-01T00:00:00Z"]).len(), 0);
    let banned = &json_lines(&["--action", "member_banned"])[0];
    assert_eq!(
        (
            banned["actor"].as_str(),
            banned["target"].as_str(),
            banned["reason"].as_str(),
            banned["room_name"].as_str()
        ),
        (Some("alice"), Some("carol"), Some("flooding"), Some("Ops"))
    );

    for bad in [
        &["--action", "sneezed"][..],
        &["--since", "last week"],
        &["--until", "2026-01-01"],
        &["--user", "no such user!"],
        &["--limit", "0"],
    ] {
        let mut all = vec!["audit"];
        all.extend_from_slice(bad);
        let (status, out, err) = cli(&app, dir.path(), &all);
        assert_eq!(status, 2, "{bad:?}: {err}");
        assert_eq!(out, "");
    }
}
