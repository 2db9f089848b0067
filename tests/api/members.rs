//! Membership, roles and moderation, and the authorization matrix:
//! (owner, admin, member, non-member, banned) × (read, post, moderate), public and private.

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

#[tokio::test]
async fn join_leave_and_the_last_member_archives_the_room() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "club", "public").await;
    let path = format!("/api/v1/rooms/{room}");

    let (s, r) = app.call("POST", &format!("{path}/join"), Some(&bob), None).await;
    assert_eq!(
        (s, r["my_role"].as_str(), r["member_count"].as_i64()),
        (200, Some("member"), Some(2))
    );
    let (s, r) = app.call("POST", &format!("{path}/join"), Some(&bob), None).await;
    assert_eq!(
        (s, r["member_count"].as_i64()),
        (200, Some(2)),
        "joining twice changes nothing"
    );

    // The owner cannot walk away from members.
    let (s, b) = app.call("POST", &format!("{path}/leave"), Some(&alice), None).await;
    assert_eq!((s, code(&b)), (409, "owner_must_transfer"));
    let (s, _) = app.call("POST", &format!("{path}/leave"), Some(&bob), None).await;
    assert_eq!(s, 204);
    let (s, b) = app.call("POST", &format!("{path}/leave"), Some(&bob), None).await;
    assert_eq!((s, code(&b)), (403, "not_a_member"));

    // Alone now, the owner may leave; the room is archived with its history.
    app.say(&alice, &room, "bye").await;
    let (s, _) = app.call("POST", &format!("{path}/leave"), Some(&alice), None).await;
    assert_eq!(s, 204);
    let (s, r) = app.call("GET", &path, Some(&bob), None).await;
    assert_eq!(
        (s, r["archived"].as_bool(), r["member_count"].as_i64()),
        (200, Some(true), Some(0))
    );
}

#[tokio::test]
async fn owners_add_and_promote_admins_add_members_and_ownership_transfers() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    app.user("dave").await;
    let room = app.room(&alice, "staff", "private").await;
    let path = format!("/api/v1/rooms/{room}");
    let members = format!("{path}/members");

    let (s, m) = app
        .call(
            "POST",
            &members,
            Some(&alice),
            Some(json!({"username": "bob", "role": "admin"})),
        )
        .await;
    assert_eq!(
        (s, m["role"].as_str(), m["username"].as_str()),
        (201, Some("admin"), Some("bob")),
        "{m}"
    );
    let (s, m) = app
        .call("POST", &members, Some(&alice), Some(json!({"username": "BOB"})))
        .await;
    assert_eq!(
        (s, m["role"].as_str()),
        (200, Some("admin")),
        "adding again changes nothing"
    );

    // An admin adds members, but not admins.
    let (s, _) = app
        .call("POST", &members, Some(&bob), Some(json!({"username": "carol"})))
        .await;
    assert_eq!(s, 201);
    let (s, b) = app
        .call(
            "POST",
            &members,
            Some(&bob),
            Some(json!({"username": "dave", "role": "admin"})),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"));
    let (s, b) = app
        .call("POST", &members, Some(&carol), Some(json!({"username": "dave"})))
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"), "members do not add");
    for (body, status, expected) in [
        (json!({"username": "nobody"}), 404, "user_not_found"),
        (json!({"username": "dave", "role": "owner"}), 422, "invalid_role"),
        (json!({"username": "dave", "role": "king"}), 422, "invalid_role"),
        (json!({"username": "dave", "role": 3}), 400, "invalid_request"),
        (json!({"username": "dave", "role": true}), 400, "invalid_request"),
    ] {
        let (s, b) = app.call("POST", &members, Some(&alice), Some(body.clone())).await;
        assert_eq!((s, code(&b)), (status, expected), "{body}");
    }
    for (body, status, expected) in [
        (json!({"role": "king"}), 422, "invalid_role"),
        (json!({"role": 3}), 400, "invalid_request"),
        (json!({}), 400, "invalid_request"),
    ] {
        let (s, b) = app
            .call("PATCH", &format!("{members}/bob"), Some(&alice), Some(body.clone()))
            .await;
        assert_eq!((s, code(&b)), (status, expected), "{body}");
    }

    // Only the owner changes roles; giving away `owner` makes the old owner an admin.
    let (s, b) = app
        .call(
            "PATCH",
            &format!("{members}/carol"),
            Some(&bob),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"));
    let (s, b) = app
        .call(
            "PATCH",
            &format!("{members}/alice"),
            Some(&alice),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "owner_must_transfer"));
    let (s, b) = app
        .call(
            "PATCH",
            &format!("{members}/dave"),
            Some(&alice),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!((s, code(&b)), (404, "member_not_found"));
    let (s, m) = app
        .call(
            "PATCH",
            &format!("{members}/carol"),
            Some(&alice),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!((s, m["role"].as_str()), (200, Some("owner")), "{m}");

    let (s, page) = app.call("GET", &members, Some(&bob), None).await;
    assert_eq!(s, 200);
    assert_eq!(roles(&page), [("alice", "admin"), ("bob", "admin"), ("carol", "owner")]);
    let (s, _) = app.call("POST", &format!("{path}/leave"), Some(&alice), None).await;
    assert_eq!(s, 204, "no longer the owner, alice may leave");
}

#[tokio::test]
async fn kicks_and_bans_follow_rank_and_bans_keep_people_out() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol, dave) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
        app.user("dave").await,
    );
    let room = app.room(&alice, "forum", "public").await;
    let path = format!("/api/v1/rooms/{room}");
    for t in [&bob, &carol, &dave] {
        app.call("POST", &format!("{path}/join"), Some(t), None).await;
    }
    app.call(
        "PATCH",
        &format!("{path}/members/bob"),
        Some(&alice),
        Some(json!({"role": "admin"})),
    )
    .await;

    // Members kick nobody; admins kick members but not the owner.
    let (s, b) = app
        .call("DELETE", &format!("{path}/members/dave"), Some(&carol), None)
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"));
    let (s, b) = app
        .call("DELETE", &format!("{path}/members/alice"), Some(&bob), None)
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"));
    let (s, _) = app
        .call("DELETE", &format!("{path}/members/dave"), Some(&bob), None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = app
        .call("DELETE", &format!("{path}/members/dave"), Some(&bob), None)
        .await;
    assert_eq!((s, code(&b)), (404, "member_not_found"));
    // A kicked member may come back; a banned one may not.
    let (s, _) = app.call("POST", &format!("{path}/join"), Some(&dave), None).await;
    assert_eq!(s, 200);

    let bans = format!("{path}/bans");
    let (s, ban) = app
        .call(
            "POST",
            &bans,
            Some(&bob),
            Some(json!({"username": "dave", "reason": "spam"})),
        )
        .await;
    assert_eq!(s, 201, "{ban}");
    assert_eq!(
        (
            ban["username"].as_str(),
            ban["reason"].as_str(),
            ban["banned_by"].as_str()
        ),
        (Some("dave"), Some("spam"), Some("bob"))
    );
    let (s, ban) = app
        .call(
            "POST",
            &bans,
            Some(&bob),
            Some(json!({"username": "dave", "reason": "more spam"})),
        )
        .await;
    assert_eq!(
        (s, ban["reason"].as_str()),
        (200, Some("more spam")),
        "banning again updates the reason"
    );
    let (s, b) = app.call("POST", &format!("{path}/join"), Some(&dave), None).await;
    assert_eq!((s, code(&b)), (403, "banned"));
    let (s, b) = app
        .call(
            "POST",
            &format!("{path}/members"),
            Some(&alice),
            Some(json!({"username": "dave"})),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "user_banned"));
    let (s, b) = app
        .call("POST", &bans, Some(&bob), Some(json!({"username": "alice"})))
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"), "nobody bans the owner");
    let (s, b) = app
        .call("POST", &bans, Some(&bob), Some(json!({"username": "bob"})))
        .await;
    assert_eq!((s, code(&b)), (422, "cannot_ban_self"));
    let (s, b) = app.call("GET", &bans, Some(&carol), None).await;
    assert_eq!((s, code(&b)), (403, "forbidden"), "the ban list is for moderators");
    let (s, page) = app.call("GET", &bans, Some(&alice), None).await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["username"], "dave");

    let (s, _) = app.call("DELETE", &format!("{bans}/dave"), Some(&alice), None).await;
    assert_eq!(s, 204);
    let (s, b) = app.call("DELETE", &format!("{bans}/dave"), Some(&alice), None).await;
    assert_eq!((s, code(&b)), (404, "ban_not_found"));
    let (s, _) = app.call("POST", &format!("{path}/join"), Some(&dave), None).await;
    assert_eq!(s, 200, "unbanned, dave may join again");
    // The owner outranks admins.
    let (s, _) = app
        .call("DELETE", &format!("{path}/members/bob"), Some(&alice), None)
        .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn member_lists_page_by_username() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let room = app.room(&owner, "crowd", "public").await;
    let mut expected = vec!["owner".to_string()];
    for i in 0..12 {
        let name = format!("user{i:02}");
        let t = app.user(&name).await;
        app.call("POST", &format!("/api/v1/rooms/{room}/join"), Some(&t), None)
            .await;
        expected.push(name);
    }
    expected.sort();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (s, page) = app
            .call(
                "GET",
                &format!("/api/v1/rooms/{room}/members?limit=5{cursor}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(s, 200, "{page}");
        seen.extend(roles(&page).into_iter().map(|(u, _)| u.to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

/// A request and the status and error code it must get.
type Probe = (&'static str, String, Option<Value>, (u16, &'static str));

/// Who is asking, in the matrix below.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Owner,
    Admin,
    Member,
    Outsider,
    Banned,
}

#[tokio::test]
async fn authorization_matrix_for_public_and_private_rooms() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let banned = app.user("banned").await;
    app.user("target").await;
    let tokens = [
        (Who::Owner, &owner),
        (Who::Admin, &admin),
        (Who::Member, &member),
        (Who::Outsider, &outsider),
        (Who::Banned, &banned),
    ];

    for visibility in ["public", "private"] {
        let room = app.room(&owner, &format!("matrix-{visibility}"), visibility).await;
        let path = format!("/api/v1/rooms/{room}");
        for (name, role) in [("admin", "admin"), ("member", "member"), ("banned", "member")] {
            let (s, b) = app
                .call(
                    "POST",
                    &format!("{path}/members"),
                    Some(&owner),
                    Some(json!({"username": name, "role": role})),
                )
                .await;
            assert_eq!(s, 201, "{b}");
        }
        let (s, _) = app
            .call(
                "POST",
                &format!("{path}/bans"),
                Some(&owner),
                Some(json!({"username": "banned"})),
            )
            .await;
        assert_eq!(s, 201);

        for (who, token) in tokens {
            let private = visibility == "private";
            // Outsiders and the banned are not members: a private room does not exist for them.
            let hidden = private && matches!(who, Who::Outsider | Who::Banned);
            let expect = |allowed: u16, refusal: (u16, &'static str)| -> (u16, &'static str) {
                if hidden {
                    (404, "room_not_found")
                } else if who == Who::Banned {
                    (403, "banned")
                } else if allowed != 0 {
                    (allowed, "")
                } else {
                    refusal
                }
            };
            let can_post = matches!(who, Who::Owner | Who::Admin | Who::Member);
            let can_moderate = matches!(who, Who::Owner | Who::Admin);
            let cases: [Probe; 5] = [
                ("GET", path.clone(), None, expect(200, (0, ""))),
                ("GET", format!("{path}/messages"), None, expect(200, (0, ""))),
                (
                    "POST",
                    format!("{path}/messages"),
                    Some(json!({"body": format!("{who:?} was here")})),
                    expect(if can_post { 201 } else { 0 }, (403, "not_a_member")),
                ),
                (
                    "PATCH",
                    path.clone(),
                    Some(json!({"topic": format!("set by {who:?}")})),
                    expect(if can_moderate { 200 } else { 0 }, (403, "forbidden")),
                ),
                (
                    "POST",
                    format!("{path}/bans"),
                    Some(json!({"username": "target", "reason": format!("{who:?}")})),
                    // The owner bans first (201); the admin's ban of the same user updates it (200).
                    expect(
                        match who {
                            Who::Owner => 201,
                            Who::Admin => 200,
                            _ => 0,
                        },
                        (403, "forbidden"),
                    ),
                ),
            ];
            for (method, url, body, (status, err)) in cases {
                let (s, b) = app.call(method, &url, Some(token), body).await;
                let ok = s == status && (err.is_empty() || code(&b) == err);
                assert!(
                    ok,
                    "{visibility} room, {who:?}: {method} {url} → {s} {b}, expected {status} {err}"
                );
            }
        }
        // Private rooms are not even listed to outsiders.
        let (_, page) = app.call("GET", "/api/v1/rooms", Some(&outsider), None).await;
        let listed = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == room.as_str());
        assert_eq!(listed, visibility == "public");
    }
}

#[tokio::test]
async fn every_endpoint_answers_a_private_room_probe_exactly_like_a_missing_room() {
    let app = TestApp::spawn().await;
    let (alice, eve) = (app.user("alice").await, app.user("eve").await);
    let room = app.room(&alice, "hidden", "private").await;
    app.say(&alice, &room, "secret").await;
    let missing = uuid::Uuid::new_v4().to_string();
    let probes: Vec<(&str, &str, Option<Value>)> = vec![
        ("GET", "", None),
        ("PATCH", "", Some(json!({"topic": "x"}))),
        ("DELETE", "", None),
        ("POST", "/join", None),
        ("POST", "/leave", None),
        ("GET", "/members", None),
        ("POST", "/members", Some(json!({"username": "eve"}))),
        ("PATCH", "/members/alice", Some(json!({"role": "member"}))),
        ("DELETE", "/members/alice", None),
        ("GET", "/bans", None),
        ("POST", "/bans", Some(json!({"username": "alice"}))),
        ("DELETE", "/bans/alice", None),
        ("GET", "/messages", None),
        ("POST", "/messages", Some(json!({"body": "hi"}))),
        ("PATCH", "/messages/1", Some(json!({"body": "x"}))),
        ("DELETE", "/messages/1", None),
        ("PUT", "/read", Some(json!({"seq": 1}))),
        // Whatever else is wrong with a request, a room one may not see comes first.
        ("PATCH", "", Some(json!({"name": ""}))),
        ("PATCH", "", Some(json!({"colour": "red"}))),
        ("GET", "/members?limit=0", None),
        ("GET", "/bans?cursor=garbage", None),
        ("POST", "/members", Some(json!({"username": "eve", "role": "king"}))),
        ("PATCH", "/members/alice", Some(json!({"role": "king"}))),
        ("GET", "/messages?limit=500", None),
        ("GET", "/messages?before=abc", None),
        ("GET", "/messages?before=1&before=2", None),
        ("POST", "/messages", Some(json!({"body": "   "}))),
        ("POST", "/messages", Some(json!({"body": 7}))),
        ("PATCH", "/messages/abc", Some(json!({"body": "x"}))),
        ("PUT", "/read", Some(json!({"seq": "one"}))),
    ];
    for (method, suffix, body) in [("POST", "/messages", "{not json"), ("PUT", "/read", "")] {
        let (s, b) = app
            .raw_as(method, &format!("/api/v1/rooms/{room}{suffix}"), Some(&eve), body)
            .await;
        assert_eq!(
            (s, code(&b)),
            (404, "room_not_found"),
            "{method} {suffix} {body:?}: {b}"
        );
        // A member sending the same gets the input's error.
        let (s, _) = app
            .raw_as(method, &format!("/api/v1/rooms/{room}{suffix}"), Some(&alice), body)
            .await;
        assert_eq!(s, 400, "{method} {suffix} {body:?}");
    }
    for (method, suffix, body) in probes {
        let (s1, b1) = app
            .call(
                method,
                &format!("/api/v1/rooms/{room}{suffix}"),
                Some(&eve),
                body.clone(),
            )
            .await;
        let (s2, b2) = app
            .call(method, &format!("/api/v1/rooms/{missing}{suffix}"), Some(&eve), body)
            .await;
        assert_eq!((s1, code(&b1)), (404, "room_not_found"), "{method} {suffix}: {b1}");
        assert_eq!(
            b1, b2,
            "{method} {suffix}: the private room and a missing one look alike"
        );
        assert_eq!(s1, s2);
    }
}

fn roles(page: &Value) -> Vec<(&str, &str)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect()
}

/// Races a moderation change against the target's own action, many times, with small
/// staggers so that either may take the room's lock first. Bounded: 40 rounds.
#[tokio::test]
async fn racing_moderation_never_leaves_a_banned_member_or_an_ownerless_room() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    let db = app.db.client().await;
    let stagger = |i: u64| tokio::time::sleep(std::time::Duration::from_micros((i % 10) * 200));

    // A ban racing a join: bob ends up banned or a member (if the join went first, the ban
    // removed him), never both.
    let room = app.room(&owner, "ban-race", "public").await;
    for i in 0..40u64 {
        let bans = format!("/api/v1/rooms/{room}/bans");
        let join = format!("/api/v1/rooms/{room}/join");
        let (_, (joined, _)) = tokio::join!(
            app.call("POST", &bans, Some(&owner), Some(json!({"username": "bob"}))),
            async {
                stagger(i).await;
                app.call("POST", &join, Some(&bob), None).await
            }
        );
        let row = db
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM room_members m JOIN users u ON u.id = m.user_id \
                   WHERE u.username = 'bob' AND m.room_id = $1::text::uuid), \
                        EXISTS (SELECT 1 FROM room_bans b JOIN users u ON u.id = b.user_id \
                   WHERE u.username = 'bob' AND b.room_id = $1::text::uuid)",
                &[&room],
            )
            .await
            .unwrap();
        let (member, banned): (bool, bool) = (row.get(0), row.get(1));
        assert!(
            banned && !member,
            "round {i}: member={member} banned={banned} (join {joined})"
        );
        let (s, _) = app.call("DELETE", &format!("{bans}/bob"), Some(&owner), None).await;
        assert_eq!(s, 204);
    }

    // An ownership transfer racing the new owner's leave: the room keeps exactly one owner.
    for i in 0..40u64 {
        let room = app.room(&owner, &format!("transfer-race-{i}"), "public").await;
        app.call("POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
            .await;
        let member = format!("/api/v1/rooms/{room}/members/bob");
        let leave = format!("/api/v1/rooms/{room}/leave");
        let ((transferred, _), (left, _)) = tokio::join!(
            app.call("PATCH", &member, Some(&owner), Some(json!({"role": "owner"}))),
            async {
                stagger(i).await;
                app.call("POST", &leave, Some(&bob), None).await
            }
        );
        let owners: i64 = db
            .query_one(
                "SELECT count(*) FROM room_members WHERE room_id = $1::text::uuid AND role = 'owner'",
                &[&room],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(owners, 1, "round {i}: transfer {transferred}, leave {left}");
    }
}

#[tokio::test]
async fn writes_answer_from_their_own_connection_even_with_a_pool_of_one() {
    // Each change is answered from inside its transaction; one that asked the pool for a
    // second connection while holding the first would wait out the pool timeout and 503.
    let app = TestApp::spawn_with(|c| c.database.pool_size = 1).await;
    let owner = app.user("owner").await;
    app.user("bob").await;
    let room = app.room(&owner, "tiny-pool", "public").await;
    let members = format!("/api/v1/rooms/{room}/members");
    for (method, path, body, status) in [
        ("POST", members.clone(), json!({"username": "bob"}), 201),
        ("PATCH", format!("{members}/bob"), json!({"role": "admin"}), 200),
        ("PATCH", format!("/api/v1/rooms/{room}"), json!({"topic": "t"}), 200),
        (
            "POST",
            format!("/api/v1/rooms/{room}/bans"),
            json!({"username": "bob"}),
            201,
        ),
        ("POST", "/api/v1/dms".to_string(), json!({"username": "bob"}), 201),
    ] {
        let (s, b) = app.call(method, &path, Some(&owner), Some(body)).await;
        assert_eq!(s, status, "{method} {path}: {b}");
    }
}

#[tokio::test]
async fn a_disabled_account_cannot_be_added_or_messaged_and_looks_absent() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.user("dora").await;
    app.disable("dora").await;
    let room = app.room(&alice, "team", "private").await;
    let probes = [
        (format!("/api/v1/rooms/{room}/members"), json!({"username": "dora"})),
        ("/api/v1/dms".to_string(), json!({"username": "dora"})),
    ];
    for (path, body) in probes {
        let (s, b) = app.call("POST", &path, Some(&alice), Some(body.clone())).await;
        assert_eq!((s, code(&b)), (404, "user_not_found"), "{path}: {b}");
        // Exactly as for an account that never existed.
        let ghost = json!({"username": "ghost"});
        let (s2, b2) = app.call("POST", &path, Some(&alice), Some(ghost)).await;
        assert_eq!(s2, 404);
        assert_eq!(
            b["error"]["message"].as_str().unwrap().replace("dora", "X"),
            b2["error"]["message"].as_str().unwrap().replace("ghost", "X")
        );
    }
}
