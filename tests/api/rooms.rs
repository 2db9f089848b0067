//! `/api/v1/rooms` and `/api/v1/dms`: rooms, listing, editing, archiving, direct rooms.

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

#[tokio::test]
async fn creator_owns_a_new_room_and_names_are_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (s, room) = app
        .call(
            "POST",
            "/api/v1/rooms",
            Some(&alice),
            Some(json!({"name": "  Général ", "topic": "all things", "visibility": "public"})),
        )
        .await;
    assert_eq!(s, 201, "{room}");
    assert_eq!(room["name"], "Général");
    assert_eq!(room["topic"], "all things");
    assert_eq!(room["visibility"], "public");
    assert_eq!(room["my_role"], "owner");
    assert_eq!(room["member_count"], 1);
    assert_eq!(room["last_seq"], 0);
    assert_eq!(room["unread_count"], 0);
    assert_eq!(room["archived"], false);
    assert!(room["last_message"].is_null());

    // Visibility defaults to public; the same name in another case is taken.
    let (s, b) = app
        .call("POST", "/api/v1/rooms", Some(&alice), Some(json!({"name": "GÉNÉRAL"})))
        .await;
    assert_eq!((s, code(&b)), (409, "room_name_taken"), "{b}");
    // ...and so is the same name in another Unicode form (a combining accent, full-width).
    for lookalike in ["ge\u{301}ne\u{301}ral", "\u{FF27}\u{E9}n\u{E9}ral"] {
        let (s, b) = app
            .call("POST", "/api/v1/rooms", Some(&alice), Some(json!({"name": lookalike})))
            .await;
        assert_eq!((s, code(&b)), (409, "room_name_taken"), "{lookalike:?}: {b}");
    }

    for (body, expected) in [
        (json!({"name": ""}), "invalid_room_name"),
        (json!({"name": "x".repeat(65)}), "invalid_room_name"),
        (json!({"name": "a\u{202E}b"}), "invalid_room_name"),
        (json!({"name": "ok", "topic": "t".repeat(251)}), "invalid_topic"),
        (json!({"name": "ok", "visibility": "direct"}), "invalid_visibility"),
        (json!({"name": "ok", "visibility": "secret"}), "invalid_visibility"),
    ] {
        let (s, b) = app
            .call("POST", "/api/v1/rooms", Some(&alice), Some(body.clone()))
            .await;
        assert_eq!((s, code(&b)), (422, expected), "{body}");
    }
    let (s, b) = app
        .call(
            "POST",
            "/api/v1/rooms",
            Some(&alice),
            Some(json!({"name": "ok", "extra": 1})),
        )
        .await;
    assert_eq!((s, code(&b)), (400, "invalid_request"), "{b}");
    let (s, b) = app
        .call("POST", "/api/v1/rooms", None, Some(json!({"name": "ok"})))
        .await;
    assert_eq!((s, code(&b)), (401, "unauthorized"), "{b}");
}

#[tokio::test]
async fn listing_shows_public_rooms_and_mine_with_unread_counts_and_last_message() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let lobby = app.room(&alice, "lobby", "public").await;
    let secret = app.room(&alice, "secret", "private").await;
    app.room(&bob, "bobs-place", "private").await;
    app.say(&alice, &lobby, "one").await;
    app.say(&alice, &lobby, "two").await;

    // Bob sees the public room (not a member: no role, no unread count) and his own room.
    let (s, page) = app.call("GET", "/api/v1/rooms", Some(&bob), None).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(names(&page), ["bobs-place", "lobby"]);
    let lobby_entry = &page["items"][1];
    assert!(lobby_entry["my_role"].is_null() && lobby_entry["unread_count"].is_null());
    assert_eq!(lobby_entry["last_message"]["body"], "two");
    assert_eq!(lobby_entry["last_seq"], 2);

    // Joining starts with nothing unread; a new message by someone else is unread.
    let (s, _) = app
        .call("POST", &format!("/api/v1/rooms/{lobby}/join"), Some(&bob), None)
        .await;
    assert_eq!(s, 200);
    app.say(&alice, &lobby, "three").await;
    let (_, page) = app.call("GET", "/api/v1/rooms?mine=true", Some(&bob), None).await;
    assert_eq!(names(&page), ["bobs-place", "lobby"]);
    assert_eq!(page["items"][1]["unread_count"], 1);
    assert_eq!(page["items"][1]["my_role"], "member");

    // Alice's own messages never count as unread to her.
    let (_, page) = app.call("GET", "/api/v1/rooms?mine=true", Some(&alice), None).await;
    assert_eq!(names(&page), ["lobby", "secret"]);
    assert_eq!(page["items"][0]["unread_count"], 0);

    // q filters by name, case-insensitively.
    let (_, page) = app.call("GET", "/api/v1/rooms?q=LOB", Some(&bob), None).await;
    assert_eq!(names(&page), ["lobby"]);
    let _ = secret;

    for (query, expected) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=x", "invalid_limit"),
        ("cursor=garbage", "invalid_cursor"),
        ("mine=maybe", "invalid_query"),
    ] {
        let (s, b) = app
            .call("GET", &format!("/api/v1/rooms?{query}"), Some(&bob), None)
            .await;
        assert_eq!((s, code(&b)), (422, expected), "{query}");
    }
}

#[tokio::test]
async fn room_listing_pages_through_every_room_exactly_once() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut expected: Vec<String> = Vec::new();
    for i in 0..23 {
        let name = format!("room-{i:02}");
        app.room(&alice, &name, if i % 3 == 0 { "private" } else { "public" })
            .await;
        expected.push(name);
    }
    let bob = app.user("bob").await;
    let (s, _) = app
        .call("POST", "/api/v1/dms", Some(&alice), Some(json!({"username": "bob"})))
        .await;
    assert_eq!(s, 201);
    let mut seen: Vec<String> = Vec::new();
    let mut direct = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/rooms?limit=5&cursor={c}"),
            None => "/api/v1/rooms?limit=5".to_string(),
        };
        let (s, page) = app.call("GET", &path, Some(&alice), None).await;
        assert_eq!(s, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            match item["name"].as_str() {
                Some(n) => seen.push(n.to_string()),
                None => direct += 1,
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "the listing ended");
    assert_eq!(seen, expected, "named rooms in name order, each once");
    assert_eq!(direct, 1, "the direct room comes after the named ones");
    // Bob sees only the public ones (and his direct room).
    let (_, page) = app.call("GET", "/api/v1/rooms?limit=100", Some(&bob), None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 15 + 1);
}

#[tokio::test]
async fn owner_and_admins_edit_a_room_members_cannot() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "plans", "public").await;
    app.room(&alice, "taken", "public").await;
    let path = format!("/api/v1/rooms/{room}");
    app.call("POST", &format!("{path}/join"), Some(&bob), None).await;

    let (s, b) = app
        .call("PATCH", &path, Some(&bob), Some(json!({"topic": "mine now"})))
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"), "{b}");

    let (s, r) = app
        .call(
            "PATCH",
            &path,
            Some(&alice),
            Some(json!({"name": "Plans 2027", "topic": "next year", "visibility": "private"})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["name"].as_str(), r["topic"].as_str(), r["visibility"].as_str()),
        (Some("Plans 2027"), Some("next year"), Some("private"))
    );
    let (s, r) = app
        .call("PATCH", &path, Some(&alice), Some(json!({"topic": null})))
        .await;
    assert_eq!(s, 200);
    assert!(r["topic"].is_null());
    assert_eq!(r["name"], "Plans 2027", "absent fields stay");

    // Promote bob to admin: now he may edit, but not rename onto a taken name.
    let (s, _) = app
        .call(
            "PATCH",
            &format!("{path}/members/bob"),
            Some(&alice),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .call("PATCH", &path, Some(&bob), Some(json!({"topic": "by bob"})))
        .await;
    assert_eq!(s, 200);
    let (s, b) = app
        .call("PATCH", &path, Some(&bob), Some(json!({"name": "TAKEN"})))
        .await;
    assert_eq!((s, code(&b)), (409, "room_name_taken"));
    let (s, b) = app
        .call("PATCH", &path, Some(&bob), Some(json!({"visibility": "direct"})))
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_visibility"));
    for (body, expected) in [
        (json!({"name": null}), "invalid_room_name"),
        (json!({"visibility": null}), "invalid_visibility"),
    ] {
        let (s, b) = app.call("PATCH", &path, Some(&bob), Some(body.clone())).await;
        assert_eq!((s, code(&b)), (422, expected), "{body}");
    }
}

#[tokio::test]
async fn archiving_is_owner_only_keeps_history_and_makes_the_room_read_only() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "old-times", "public").await;
    let path = format!("/api/v1/rooms/{room}");
    app.call("POST", &format!("{path}/join"), Some(&bob), None).await;
    app.say(&bob, &room, "memories").await;
    app.call(
        "PATCH",
        &format!("{path}/members/bob"),
        Some(&alice),
        Some(json!({"role": "admin"})),
    )
    .await;

    let (s, b) = app.call("DELETE", &path, Some(&bob), None).await;
    assert_eq!((s, code(&b)), (403, "forbidden"), "admins cannot archive");
    let (s, _) = app.call("DELETE", &path, Some(&alice), None).await;
    assert_eq!(s, 204);

    let (s, r) = app.call("GET", &path, Some(&bob), None).await;
    assert_eq!(s, 200);
    assert_eq!(r["archived"], true);
    assert!(r["archived_at"].is_string());
    let (s, h) = app.call("GET", &format!("{path}/messages"), Some(&bob), None).await;
    assert_eq!(s, 200);
    assert_eq!(h["items"][0]["body"], "memories", "history is kept");

    for (method, suffix, body) in [
        ("POST", "/messages", Some(json!({"body": "hello?"}))),
        ("PATCH", "", Some(json!({"topic": "x"}))),
        ("DELETE", "", None),
        ("POST", "/members", Some(json!({"username": "alice"}))),
        ("PATCH", "/messages/1", Some(json!({"body": "edited"}))),
        ("DELETE", "/messages/1", None),
    ] {
        let (s, b) = app.call(method, &format!("{path}{suffix}"), Some(&alice), body).await;
        assert_eq!((s, code(&b)), (409, "room_archived"), "{method} {suffix}: {b}");
    }
    // Archived rooms leave the default listing, and come back on request.
    let (_, page) = app.call("GET", "/api/v1/rooms", Some(&bob), None).await;
    assert!(names(&page).is_empty());
    let (_, page) = app
        .call("GET", "/api/v1/rooms?include_archived=true", Some(&bob), None)
        .await;
    assert_eq!(names(&page), ["old-times"]);
    // Nobody new can join an archived room.
    let carol = app.user("carol").await;
    let (s, b) = app.call("POST", &format!("{path}/join"), Some(&carol), None).await;
    assert_eq!((s, code(&b)), (409, "room_archived"));
}

#[tokio::test]
async fn a_direct_room_is_found_again_never_listed_and_closed_to_others() {
    let app = TestApp::spawn().await;
    let (alice, bob, eve) = (app.user("alice").await, app.user("bob").await, app.user("eve").await);
    let (s, dm) = app
        .call("POST", "/api/v1/dms", Some(&alice), Some(json!({"username": "Bob"})))
        .await;
    assert_eq!(s, 201, "{dm}");
    assert_eq!(dm["visibility"], "direct");
    assert!(dm["name"].is_null());
    assert_eq!(dm["direct_members"], json!(["alice", "bob"]));
    let id = dm["id"].as_str().unwrap().to_string();

    // Either side gets the same room back.
    let (s, again) = app
        .call("POST", "/api/v1/dms", Some(&bob), Some(json!({"username": "alice"})))
        .await;
    assert_eq!((s, again["id"].as_str()), (200, Some(id.as_str())));
    app.say(&bob, &id, "psst").await;
    let (_, page) = app.call("GET", "/api/v1/rooms?mine=true", Some(&alice), None).await;
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["unread_count"], 1);

    // Invisible to everyone else, and no joining.
    let (_, page) = app.call("GET", "/api/v1/rooms", Some(&eve), None).await;
    assert!(page["items"].as_array().unwrap().is_empty());
    for (method, suffix) in [
        ("GET", ""),
        ("POST", "/join"),
        ("GET", "/messages"),
        ("GET", "/members"),
    ] {
        let (s, b) = app
            .call(method, &format!("/api/v1/rooms/{id}{suffix}"), Some(&eve), None)
            .await;
        assert_eq!((s, code(&b)), (404, "room_not_found"), "{method} {suffix}");
    }
    // Its members cannot change its membership.
    let (s, b) = app
        .call("POST", &format!("/api/v1/rooms/{id}/leave"), Some(&alice), None)
        .await;
    assert_eq!((s, code(&b)), (409, "direct_room"));
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{id}/members"),
            Some(&alice),
            Some(json!({"username": "eve"})),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"), "{b}");

    for (body, status, expected) in [
        (json!({"username": "alice"}), 422, "cannot_dm_self"),
        (json!({"username": "nobody"}), 404, "user_not_found"),
        (json!({}), 400, "invalid_request"),
    ] {
        let (s, b) = app.call("POST", "/api/v1/dms", Some(&alice), Some(body.clone())).await;
        assert_eq!((s, code(&b)), (status, expected), "{body}");
    }
    let _ = eve;
}

#[tokio::test]
async fn concurrent_first_direct_messages_make_one_room() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let a = app.call("POST", "/api/v1/dms", Some(&alice), Some(json!({"username": "bob"})));
    let b = app.call("POST", "/api/v1/dms", Some(&bob), Some(json!({"username": "alice"})));
    let ((sa, ra), (sb, rb)) = tokio::join!(a, b);
    assert!(sa == 200 || sa == 201, "{ra}");
    assert!(sb == 200 || sb == 201, "{rb}");
    assert_eq!(ra["id"], rb["id"]);
    assert_eq!(
        [sa, sb].iter().filter(|s| **s == 201).count(),
        1,
        "one of them created it"
    );
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}
