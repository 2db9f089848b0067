//! Invite links: who may make, list and revoke them; what accepting one does in every state
//! an invite can be in; that a use limit holds under concurrent accepts; and the audit trail.

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

/// Makes an invite to `room` as `token` with `body`; returns it.
async fn invite(app: &TestApp, token: &str, room: &str, body: Value) -> Value {
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{room}/invites"),
        Some(token),
        Some(body),
    )
    .await
}

async fn accept(app: &TestApp, token: &str, code: &str) -> (u16, Value) {
    app.call("POST", &format!("/api/v1/invites/{code}/accept"), Some(token), None)
        .await
}

/// `uses` of the invite `code`, read from the database.
async fn uses(app: &TestApp, code: &str) -> i32 {
    app.db
        .client()
        .await
        .query_one("SELECT uses FROM room_invites WHERE code = $1", &[&code])
        .await
        .unwrap()
        .get(0)
}

/// An `audit_log` row: action, actor name, room id, room name, details.
type AuditRow = (String, String, Option<String>, Option<String>, Option<Value>);

fn code_of(invite: &Value) -> String {
    invite["code"].as_str().expect("an invite code").to_string()
}

#[tokio::test]
async fn an_invite_admits_to_a_private_room_and_members_hear_of_it() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "secret", "private").await;
    let mut a = app.ws(&alice).await;
    a.subscribe(&room, None).await;
    let mut b = app.ws(&bob).await;

    let inv = invite(&app, &alice, &room, json!({"expires_in_secs": 3600, "max_uses": 5})).await;
    let c = code_of(&inv);
    assert_eq!(c.len(), 22, "128 bits in base64url: {inv}");
    assert!(
        c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{c}"
    );
    assert_eq!(
        (
            inv["room_id"].as_str(),
            inv["created_by"].as_str(),
            inv["max_uses"].as_i64(),
            inv["uses"].as_i64(),
            inv["revoked"].as_bool(),
            inv["state"].as_str(),
        ),
        (
            Some(room.as_str()),
            Some("alice"),
            Some(5),
            Some(0),
            Some(false),
            Some("active")
        )
    );
    let created = time::OffsetDateTime::parse(
        inv["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        inv["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - created).whole_seconds(), 3600);

    // Bob cannot see the room until he accepts.
    let (s, body) = app
        .call("GET", &format!("/api/v1/rooms/{room}"), Some(&bob), None)
        .await;
    assert_eq!((s, code(&body)), (404, "room_not_found"));
    let (s, r) = accept(&app, &bob, &c).await;
    assert_eq!(
        (s, r["id"].as_str(), r["my_role"].as_str(), r["member_count"].as_i64()),
        (200, Some(room.as_str()), Some("member"), Some(2)),
        "{r}"
    );
    let j = a.next_of("member_joined").await;
    assert_eq!(
        (j["room_id"].as_str(), j["user"].as_str(), j["role"].as_str()),
        (Some(room.as_str()), Some("bob"), Some("member"))
    );
    // The new member's own socket hears it too, and may now subscribe.
    let j = b.next_of("member_joined").await;
    assert_eq!(j["room_id"].as_str(), Some(room.as_str()));
    b.subscribe(&room, None).await;
    app.say(&bob, &room, "thanks for the invite").await;
    assert_eq!(uses(&app, &c).await, 1);

    // Accepting again as a member uses nothing.
    let (s, r) = accept(&app, &bob, &c).await;
    assert_eq!((s, r["my_role"].as_str()), (200, Some("member")));
    assert_eq!(uses(&app, &c).await, 1, "a member accepting again uses nothing");

    // The owner's list shows the use.
    let page = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}/invites"), Some(&alice), None)
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(
        (page["items"][0]["code"].as_str(), page["items"][0]["uses"].as_i64()),
        (Some(c.as_str()), Some(1))
    );
}

#[tokio::test]
async fn defaults_are_seven_days_and_no_use_limit_and_public_rooms_take_invites_too() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "public").await;
    let inv = invite(&app, &alice, &room, json!({})).await;
    assert_eq!(inv["max_uses"], Value::Null);
    let inv2 = invite(&app, &alice, &room, json!({"expires_in_secs": null, "max_uses": null})).await;
    assert_ne!(inv["code"], inv2["code"], "every invite has its own code");
    let rfc = &time::format_description::well_known::Rfc3339;
    let created = time::OffsetDateTime::parse(inv["created_at"].as_str().unwrap(), rfc).unwrap();
    let expires = time::OffsetDateTime::parse(inv["expires_at"].as_str().unwrap(), rfc).unwrap();
    assert_eq!((expires - created).whole_seconds(), 7 * 24 * 3600);
}

#[tokio::test]
async fn only_owners_and_admins_make_list_and_revoke_invites() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, dave) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
        app.user("dave").await,
    );
    let private = app.room(&alice, "staff", "private").await;
    let public = app.room(&alice, "lobby", "public").await;
    for room in [&private, &public] {
        let members = format!("/api/v1/rooms/{room}/members");
        app.expect(
            201,
            "POST",
            &members,
            Some(&alice),
            Some(json!({"username": "bob", "role": "admin"})),
        )
        .await;
        app.expect(201, "POST", &members, Some(&alice), Some(json!({"username": "carol"})))
            .await;
    }
    let owners = invite(&app, &alice, &private, json!({})).await;
    let admins = invite(&app, &bob, &private, json!({"max_uses": 1})).await;
    assert_eq!(admins["created_by"].as_str(), Some("bob"));

    // A member: 403 forbidden for each.
    let base = format!("/api/v1/rooms/{private}/invites");
    let one = format!("{base}/{}", code_of(&owners));
    for (method, path, body) in [
        ("POST", &base, Some(json!({}))),
        ("GET", &base, None),
        ("DELETE", &one, None),
    ] {
        let (s, b) = app.call(method, path, Some(&carol), body.clone()).await;
        assert_eq!((s, code(&b)), (403, "forbidden"), "member {method} {path}");
        // A non-member of a private room does not learn it exists.
        let (s, b) = app.call(method, path, Some(&dave), body).await;
        assert_eq!((s, code(&b)), (404, "room_not_found"), "outsider {method} {path}");
    }
    // A non-member of a public room sees it, but may not make invites to it.
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{public}/invites"),
            Some(&dave),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"));
    // A room that does not exist, and one that is not an id, are just not found.
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{}/invites", uuid::Uuid::new_v4()),
            Some(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, code(&b)), (404, "room_not_found"));
    // An operator token opens the admin API only.
    let operator = chatd::auth::tokens::operator_token(&app.config).unwrap();
    let (s, _) = app.call("GET", &base, Some(&operator), None).await;
    assert_eq!(s, 401);

    // Admin and owner list both invites, newest first.
    for token in [&alice, &bob] {
        let page = app.expect(200, "GET", &base, Some(token), None).await;
        let codes: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["code"].as_str())
            .collect();
        assert_eq!(
            codes,
            [admins["code"].as_str().unwrap(), owners["code"].as_str().unwrap()]
        );
    }
    // The admin revokes the owner's; again is fine; another room's or an unknown code is not found.
    app.expect(204, "DELETE", &one, Some(&bob), None).await;
    app.expect(204, "DELETE", &one, Some(&alice), None).await;
    let (s, b) = app
        .call(
            "DELETE",
            &format!("/api/v1/rooms/{public}/invites/{}", code_of(&owners)),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (404, "invite_not_found"),
        "the code belongs to another room"
    );
    for unknown in ["AAAAAAAAAAAAAAAAAAAAAA", "nonsense", "%00"] {
        let (s, b) = app
            .call("DELETE", &format!("{base}/{unknown}"), Some(&alice), None)
            .await;
        assert_eq!((s, code(&b)), (404, "invite_not_found"), "{unknown}");
    }
    let page = app.expect(200, "GET", &base, Some(&alice), None).await;
    assert_eq!(
        (
            page["items"][1]["state"].as_str(),
            page["items"][1]["revoked"].as_bool()
        ),
        (Some("revoked"), Some(true))
    );

    // Pagination: one per page, then the next, then no more.
    let first = app
        .expect(200, "GET", &format!("{base}?limit=1"), Some(&alice), None)
        .await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let second = app
        .expect(
            200,
            "GET",
            &format!("{base}?limit=1&cursor={cursor}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(second["items"][0]["code"], owners["code"]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (s, b) = app
        .call("GET", &format!("{base}?cursor=bogus"), Some(&alice), None)
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_cursor"));

    // Direct rooms take no invites (nobody moderates them); archived rooms take no changes.
    let dm = app
        .expect(
            201,
            "POST",
            "/api/v1/dms",
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{}/invites", dm["id"].as_str().unwrap()),
            Some(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (403, "forbidden"),
        "a direct room has nobody who moderates it"
    );
    app.expect(204, "DELETE", &format!("/api/v1/rooms/{public}"), Some(&alice), None)
        .await;
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{public}/invites"),
            Some(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "room_archived"));
}

#[tokio::test]
async fn bad_invite_bodies_are_refused_with_a_code() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "private").await;
    let path = format!("/api/v1/rooms/{room}/invites");
    for (body, status, want) in [
        (json!({"expires_in_secs": 3600, "uses": 3}), 400, "invalid_request"),
        (json!({"max_uses": "3"}), 400, "invalid_request"),
        (json!({"max_uses": 1.5}), 400, "invalid_request"),
        (json!([]), 400, "invalid_request"),
        (json!({"expires_in_secs": -1}), 422, "invalid_expiry"),
        (json!({"expires_in_secs": 0}), 422, "invalid_expiry"),
        (json!({"expires_in_secs": 59}), 422, "invalid_expiry"),
        (json!({"expires_in_secs": 30 * 24 * 3600 + 1}), 422, "invalid_expiry"),
        (json!({"expires_in_secs": u64::MAX}), 400, "invalid_request"),
        (json!({"max_uses": 0}), 422, "invalid_max_uses"),
        (json!({"max_uses": -5}), 422, "invalid_max_uses"),
        (json!({"max_uses": 10_001}), 422, "invalid_max_uses"),
    ] {
        let (s, b) = app.call("POST", &path, Some(&alice), Some(body.clone())).await;
        assert_eq!((s, code(&b)), (status, want), "{body}");
    }
    let (s, b) = app.raw_as("POST", &path, Some(&alice), "{not json").await;
    assert_eq!((s, code(&b)), (400, "invalid_json"));
    let n: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM room_invites", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing refused was stored");
    // The bounds themselves are fine.
    invite(&app, &alice, &room, json!({"expires_in_secs": 60, "max_uses": 1})).await;
    invite(
        &app,
        &alice,
        &room,
        json!({"expires_in_secs": 30 * 24 * 3600, "max_uses": 10_000}),
    )
    .await;
}

#[tokio::test]
async fn dead_invites_answer_410_with_why_and_unknown_ones_404() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    let room = app.room(&alice, "club", "private").await;

    let expired = code_of(&invite(&app, &alice, &room, json!({"expires_in_secs": 60})).await);
    app.db
        .client()
        .await
        .execute(
            "UPDATE room_invites SET expires_at = now() - interval '1 second' WHERE code = $1",
            &[&expired],
        )
        .await
        .unwrap();
    let (s, b) = accept(&app, &bob, &expired).await;
    assert_eq!((s, code(&b)), (410, "invite_expired"));

    let once = code_of(&invite(&app, &alice, &room, json!({"max_uses": 1})).await);
    assert_eq!(accept(&app, &bob, &once).await.0, 200);
    let (s, b) = accept(&app, &carol, &once).await;
    assert_eq!((s, code(&b)), (410, "invite_exhausted"));
    assert_eq!(uses(&app, &once).await, 1);

    let revoked = code_of(&invite(&app, &alice, &room, json!({})).await);
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/invites/{revoked}"),
        Some(&alice),
        None,
    )
    .await;
    let (s, b) = accept(&app, &carol, &revoked).await;
    assert_eq!((s, code(&b)), (410, "invite_revoked"));

    // The list says where each stands.
    let page = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}/invites"), Some(&alice), None)
        .await;
    let states: Vec<(&str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["code"].as_str().unwrap(), i["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            (revoked.as_str(), "revoked"),
            (once.as_str(), "exhausted"),
            (expired.as_str(), "expired")
        ]
    );

    for unknown in ["AAAAAAAAAAAAAAAAAAAAAA", "x", "a%2Fb", &"z".repeat(300)] {
        let (s, b) = accept(&app, &carol, unknown).await;
        assert_eq!((s, code(&b)), (404, "invite_not_found"), "{unknown}");
    }
    let (s, b) = app
        .call("POST", &format!("/api/v1/invites/{once}/accept"), None, None)
        .await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
    // Nobody was let in on a dead invite.
    let (s, b) = app
        .call("GET", &format!("/api/v1/rooms/{room}"), Some(&carol), None)
        .await;
    assert_eq!((s, code(&b)), (404, "room_not_found"));
}

#[tokio::test]
async fn banned_users_are_refused_without_using_the_invite_and_archived_rooms_admit_nobody() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    let room = app.room(&alice, "club", "private").await;
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{room}/bans"),
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await;
    let c = code_of(&invite(&app, &alice, &room, json!({"max_uses": 1})).await);
    let (s, b) = accept(&app, &bob, &c).await;
    assert_eq!((s, code(&b)), (403, "banned"));
    assert_eq!(uses(&app, &c).await, 0, "a refused accept uses nothing");

    // Archived: refused, nothing used.
    let other = app.room(&alice, "old", "private").await;
    let c2 = code_of(&invite(&app, &alice, &other, json!({})).await);
    app.expect(204, "DELETE", &format!("/api/v1/rooms/{other}"), Some(&alice), None)
        .await;
    let (s, b) = accept(&app, &carol, &c2).await;
    assert_eq!((s, code(&b)), (409, "room_archived"));
    assert_eq!(uses(&app, &c2).await, 0);

    // A deleted room's invites go with it.
    app.db
        .client()
        .await
        .execute("DELETE FROM rooms WHERE id = $1::text::uuid", &[&other])
        .await
        .unwrap();
    let (s, b) = accept(&app, &carol, &c2).await;
    assert_eq!((s, code(&b)), (404, "invite_not_found"));

    // The one use left is still there for someone allowed in.
    let (s, _) = accept(&app, &carol, &c).await;
    assert_eq!(s, 200);
    assert_eq!(uses(&app, &c).await, 1);
}

#[tokio::test]
async fn concurrent_accepts_admit_exactly_max_uses() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "popular", "private").await;
    let c = code_of(&invite(&app, &alice, &room, json!({"max_uses": 3})).await);
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(app.user(&format!("user{i}")).await);
    }
    let results = futures_util::future::join_all(tokens.iter().map(|t| accept(&app, t, &c))).await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&str> = results
        .iter()
        .filter(|(s, _)| *s != 200)
        .map(|(_, b)| code(b))
        .collect();
    assert_eq!(admitted, 3, "{results:?}");
    assert!(refused.iter().all(|c| *c == "invite_exhausted"), "{refused:?}");
    assert_eq!(uses(&app, &c).await, 3);
    let room_view = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}"), Some(&alice), None)
        .await;
    assert_eq!(room_view["member_count"].as_i64(), Some(4));
}

#[tokio::test]
async fn making_and_revoking_invites_is_audited_without_the_code() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "club", "private").await;
    let inv = invite(&app, &alice, &room, json!({"max_uses": 2})).await;
    let c = code_of(&inv);
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/invites/{c}"),
        Some(&alice),
        None,
    )
    .await;
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/invites/{c}"),
        Some(&alice),
        None,
    )
    .await;
    // A refused attempt leaves no record.
    let (s, _) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{room}/invites"),
            Some(&bob),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 404);

    let rows = app
        .db
        .client()
        .await
        .query(
            "SELECT action, actor_name, room_id::text, room_name, details FROM audit_log \
             WHERE action LIKE 'invite%' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<AuditRow> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(got.len(), 2, "one record each, none for the repeat revoke: {got:?}");
    assert_eq!(
        got.iter()
            .map(|g| (g.0.as_str(), g.1.as_str(), g.2.as_deref(), g.3.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("invite_created", "alice", Some(room.as_str()), Some("club")),
            ("invite_revoked", "alice", Some(room.as_str()), Some("club")),
        ]
    );
    let created = got[0].4.as_ref().expect("details");
    assert_eq!(created["code_prefix"].as_str(), Some(&c[..4]));
    assert_eq!(created["max_uses"].as_i64(), Some(2));
    assert_eq!(created["expires_at"], inv["expires_at"], "{created}");
    assert_eq!(got[1].4.as_ref().unwrap()["code_prefix"].as_str(), Some(&c[..4]));
    for (_, _, _, _, details) in &got {
        assert!(
            !details.as_ref().unwrap().to_string().contains(&c),
            "the code itself is not recorded"
        );
    }
}
