//! `/api/v1/rooms/{id}/messages` and `/read`: posting, idempotency, seqs under concurrency,
//! history pagination, edits, deletes, read markers.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

#[tokio::test]
async fn a_message_is_stored_with_the_next_seq_and_a_retry_returns_the_original() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lobby", "public").await;
    let path = format!("/api/v1/rooms/{room}/messages");
    let send = |cmid: &'static str, body: &'static str| {
        let (app, alice, path) = (&app, &alice, &path);
        async move {
            let res = app
                .http
                .post(app.url(path))
                .bearer_auth(alice)
                .json(&json!({"body": body, "client_msg_id": cmid}))
                .send()
                .await
                .unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            (res.status().as_u16(), replayed, res.json::<Value>().await.unwrap())
        }
    };
    let (s, replayed, first) = send("c-1", "hello").await;
    assert_eq!((s, replayed), (201, false), "{first}");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["author"], "alice");
    assert_eq!(first["body"], "hello");
    assert_eq!(first["room_id"], room.as_str());
    assert_eq!(first["client_msg_id"], "c-1");
    assert!(first["id"].is_string() && first["created_at"].is_string());

    let (s, replayed, again) = send("c-1", "hello").await;
    assert_eq!((s, replayed), (201, true));
    assert_eq!(again, first, "the retry returns the original, nothing new is stored");
    let (s, _, second) = send("c-2", "world").await;
    assert_eq!((s, second["seq"].as_i64()), (201, Some(2)), "the retry used no seq");

    // The same client_msg_id in another room is a client bug.
    let other = app.room(&alice, "other", "public").await;
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{other}/messages"),
            Some(&alice),
            Some(json!({"body": "x", "client_msg_id": "c-1"})),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "client_msg_id_reused"));

    for (body, expected) in [
        (json!({"body": ""}), "invalid_message"),
        (json!({"body": "   \n "}), "invalid_message"),
        (json!({"body": "\u{3164}\u{200B}"}), "invalid_message"),
        (json!({"body": "pay \u{202E}gnp.exe"}), "invalid_message"),
        (json!({"body": "m".repeat(4001)}), "invalid_message"),
        (
            json!({"body": "ok", "client_msg_id": "has space"}),
            "invalid_client_msg_id",
        ),
    ] {
        let (s, b) = app.call("POST", &path, Some(&alice), Some(body.clone())).await;
        assert_eq!((s, code(&b)), (422, expected), "{body}");
    }
    let (s, b) = app.call("POST", &path, Some(&alice), Some(json!({"text": "hi"}))).await;
    assert_eq!((s, code(&b)), (400, "invalid_request"));

    // Emoji sequences and scripts that need joiners are ordinary text.
    let family =
        "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}";
    let (s, _, stored) = send("c-3", family).await;
    assert_eq!((s, stored["body"].as_str()), (201, Some(family)));
}

#[tokio::test]
async fn twenty_concurrent_senders_get_gapless_unique_seqs() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let room = app.room(&owner, "busy", "public").await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        let t = app.user(&format!("sender{i:02}")).await;
        let (s, _) = app
            .call("POST", &format!("/api/v1/rooms/{room}/join"), Some(&t), None)
            .await;
        assert_eq!(s, 200);
        tokens.push(t);
    }
    const EACH: usize = 5;
    let path = format!("/api/v1/rooms/{room}/messages");
    let sends = tokens.iter().enumerate().map(|(i, t)| {
        let (app, path) = (&app, &path);
        async move {
            let mut seqs = Vec::new();
            for n in 0..EACH {
                let (s, m) = app
                    .call(
                        "POST",
                        path,
                        Some(t),
                        Some(json!({"body": format!("{i}/{n}"), "client_msg_id": format!("m-{i}-{n}")})),
                    )
                    .await;
                assert_eq!(s, 201, "{m}");
                seqs.push(m["seq"].as_i64().unwrap());
            }
            seqs
        }
    });
    let all: Vec<i64> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect();
    let n = (tokens.len() * EACH) as i64;
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len() as i64, n, "no duplicate seq");
    assert_eq!(unique, (1..=n).collect::<HashSet<i64>>(), "seqs are exactly 1..={n}");
    let (_, r) = app
        .call("GET", &format!("/api/v1/rooms/{room}"), Some(&owner), None)
        .await;
    assert_eq!(r["last_seq"], n);
}

#[tokio::test]
async fn history_pages_over_500_messages_return_each_exactly_once_both_ways() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "archive-of-500", "public").await;
    // Posted over HTTP by ten concurrent streams of 50.
    let path = format!("/api/v1/rooms/{room}/messages");
    let streams = (0..10).map(|w| {
        let (app, alice, path) = (&app, &alice, &path);
        async move {
            for n in 0..50 {
                let (s, m) = app
                    .call(
                        "POST",
                        path,
                        Some(alice),
                        Some(json!({"body": format!("message {w}/{n}")})),
                    )
                    .await;
                assert_eq!(s, 201, "{m}");
            }
        }
    });
    futures_util::future::join_all(streams).await;

    // Backwards from the newest, 200 at a time (the maximum).
    let mut seen = Vec::new();
    let mut query = "limit=200".to_string();
    for _ in 0..10 {
        let (s, page) = app.call("GET", &format!("{path}?{query}"), Some(&alice), None).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(seqs(&page));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=200&before={c}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=500).rev().collect::<Vec<i64>>(), "newest first, each once");

    // Forwards from the start, with the default page size (50).
    let mut seen: Vec<i64> = Vec::new();
    let mut after = 0;
    for _ in 0..20 {
        let (s, page) = app
            .call("GET", &format!("{path}?after={after}"), Some(&alice), None)
            .await;
        assert_eq!(s, 200);
        let got = seqs(&page);
        assert!(got.len() <= 50);
        seen.extend(&got);
        match page["next_cursor"].as_str() {
            Some(c) => after = c.parse().unwrap(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=500).collect::<Vec<i64>>(), "oldest first, each once");

    let (_, page) = app.call("GET", &format!("{path}?before=3"), Some(&alice), None).await;
    assert_eq!(seqs(&page), [2, 1]);
    assert!(page["next_cursor"].is_null());
    for (query, expected) in [
        ("limit=201", "invalid_limit"),
        ("limit=0", "invalid_limit"),
        ("before=-1", "invalid_seq"),
        ("after=x", "invalid_seq"),
        ("before=1&after=2", "invalid_query"),
    ] {
        let (s, b) = app.call("GET", &format!("{path}?{query}"), Some(&alice), None).await;
        assert_eq!((s, code(&b)), (422, expected), "{query}");
    }
}

#[tokio::test]
async fn authors_edit_their_messages_and_deletes_leave_tombstones() {
    let app = TestApp::spawn().await;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    let room = app.room(&alice, "talk", "public").await;
    let path = format!("/api/v1/rooms/{room}");
    for t in [&bob, &carol] {
        app.call("POST", &format!("{path}/join"), Some(t), None).await;
    }
    app.say(&bob, &room, "frist").await;
    app.say(&carol, &room, "second").await;
    app.say(&bob, &room, "third").await;

    let (s, m) = app
        .call(
            "PATCH",
            &format!("{path}/messages/1"),
            Some(&bob),
            Some(json!({"body": "first"})),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!((m["body"].as_str(), m["seq"].as_i64()), (Some("first"), Some(1)));
    assert!(m["edited_at"].is_string());
    let (s, b) = app
        .call(
            "PATCH",
            &format!("{path}/messages/1"),
            Some(&alice),
            Some(json!({"body": "mine"})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (403, "forbidden"),
        "not even the owner edits others' words"
    );

    // Authors delete their own; members cannot delete others'; the owner can.
    let (s, b) = app
        .call("DELETE", &format!("{path}/messages/2"), Some(&bob), None)
        .await;
    assert_eq!((s, code(&b)), (403, "forbidden"));
    let (s, _) = app
        .call("DELETE", &format!("{path}/messages/2"), Some(&carol), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call("DELETE", &format!("{path}/messages/3"), Some(&alice), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call("DELETE", &format!("{path}/messages/3"), Some(&alice), None)
        .await;
    assert_eq!(s, 204, "deleting again changes nothing");

    let (_, page) = app
        .call("GET", &format!("{path}/messages?after=0"), Some(&carol), None)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(seqs(&page), [1, 2, 3], "tombstones keep their seq");
    assert_eq!(items[0]["body"], "first");
    for tomb in &items[1..] {
        assert!(
            tomb["body"].is_null() && tomb["deleted"] == true && tomb["deleted_at"].is_string(),
            "{tomb}"
        );
    }
    let (s, b) = app
        .call(
            "PATCH",
            &format!("{path}/messages/2"),
            Some(&carol),
            Some(json!({"body": "back"})),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "message_deleted"));
    for bad in ["99", "0", "x"] {
        let (s, b) = app
            .call("DELETE", &format!("{path}/messages/{bad}"), Some(&alice), None)
            .await;
        assert_eq!((s, code(&b)), (404, "message_not_found"), "{bad}");
    }
    // The room's last message skips tombstones.
    let (_, r) = app.call("GET", &path, Some(&carol), None).await;
    assert_eq!(r["last_message"]["seq"], 1);
}

#[tokio::test]
async fn read_markers_drive_unread_counts_and_only_move_forward() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "news", "public").await;
    let path = format!("/api/v1/rooms/{room}");
    app.call("POST", &format!("{path}/join"), Some(&bob), None).await;
    for i in 0..4 {
        app.say(&alice, &room, &format!("item {i}")).await;
    }
    let unread = |t: &str| {
        let (app, path, t) = (&app, &path, t.to_string());
        async move { app.call("GET", path, Some(&t), None).await.1["unread_count"].clone() }
    };
    assert_eq!(unread(&bob).await, 4);
    let (s, r) = app
        .call("PUT", &format!("{path}/read"), Some(&bob), Some(json!({"seq": 3})))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["last_read_seq"].as_i64(), r["unread_count"].as_i64()),
        (Some(3), Some(1))
    );
    let (_, r) = app
        .call("PUT", &format!("{path}/read"), Some(&bob), Some(json!({"seq": 1})))
        .await;
    assert_eq!(r["last_read_seq"], 3, "markers never move back");
    assert_eq!(unread(&bob).await, 1);
    // Posting marks everything up to one's own message as read.
    app.say(&bob, &room, "caught up").await;
    assert_eq!(unread(&bob).await, 0);

    let (s, b) = app
        .call("PUT", &format!("{path}/read"), Some(&bob), Some(json!({"seq": 99})))
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_seq"));
    let carol = app.user("carol").await;
    let (s, b) = app
        .call("PUT", &format!("{path}/read"), Some(&carol), Some(json!({"seq": 1})))
        .await;
    assert_eq!((s, code(&b)), (403, "not_a_member"));
}

fn seqs(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_retry_is_answered_only_to_who_may_still_post() {
    // Replaying a client_msg_id must not leak a private room's existence (or its moderation)
    // to someone kicked or banned since.
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let send = |token: &str, room: &str| {
        let path = format!("/api/v1/rooms/{room}/messages");
        let token = token.to_string();
        let app = &app;
        // One id per room: the same id in two rooms is a client bug of its own.
        let cmid = format!("r-{}", &room[..8]);
        async move {
            app.call(
                "POST",
                &path,
                Some(&token),
                Some(json!({"body": "hi", "client_msg_id": cmid})),
            )
            .await
        }
    };
    let private = app.room(&alice, "secret", "private").await;
    let public = app.room(&alice, "open", "public").await;
    app.call(
        "POST",
        &format!("/api/v1/rooms/{private}/members"),
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await;
    app.call("POST", &format!("/api/v1/rooms/{public}/join"), Some(&bob), None)
        .await;
    assert_eq!(send(&bob, &private).await.0, 201);
    assert_eq!(send(&bob, &public).await.0, 201);
    let (s, _) = send(&bob, &private).await;
    assert_eq!(s, 201, "a member's retry returns the original");

    let (s, _) = app
        .call(
            "DELETE",
            &format!("/api/v1/rooms/{private}/members/bob"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{public}/bans"),
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(s, 201);

    let missing = uuid::Uuid::new_v4().to_string();
    let (s, nowhere) = send(&bob, &missing).await;
    assert_eq!(s, 404);
    assert_eq!(
        send(&bob, &private).await,
        (404, nowhere),
        "as if the room did not exist"
    );
    let (s, b) = send(&bob, &public).await;
    assert_eq!((s, code(&b)), (403, "banned"));
}
