//! Replies (`reply_to`, the parent's quote or tombstone, `around=` context) and reactions
//! (`PUT`/`DELETE …/reactions/{emoji}`, counts and `me` per reader, who may react, the live
//! `reaction` frame), over REST and the WebSocket.

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

fn messages(room: &str) -> String {
    format!("/api/v1/rooms/{room}/messages")
}

/// The path of `emoji`'s reaction to message `seq` (the emoji percent-encoded).
fn reaction(room: &str, seq: i64, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}")
}

async fn reply(app: &TestApp, token: &str, room: &str, body: &str, to: Value) -> (u16, Value) {
    app.call(
        "POST",
        &messages(room),
        Some(token),
        Some(json!({"body": body, "reply_to": to})),
    )
    .await
}

/// The seqs of a page of messages.
fn seqs(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_reply_shows_its_parent_quoted_and_a_tombstone_once_the_parent_is_deleted() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "club", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let long = format!("{}é and more", "a".repeat(99));
    app.say(&alice, &room, &long).await;
    app.say(&alice, &room, "short one").await;

    let (s, m) = reply(&app, &bob, &room, "answer", json!(1)).await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["seq"], 3);
    assert_eq!(
        m["reply_to"],
        json!({"seq": 1, "author": "alice", "quote": format!("{}é", "a".repeat(99)), "truncated": true, "deleted": false})
    );
    assert_eq!(m["reactions"], json!([]));
    let (s, m) = reply(&app, &bob, &room, "again", json!(2)).await;
    assert_eq!(
        (s, &m["reply_to"]["quote"], &m["reply_to"]["truncated"]),
        (201, &json!("short one"), &json!(false))
    );

    // A room's last message shows its parent too, in the room and in the room list.
    let r = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}"), Some(&bob), None)
        .await;
    assert_eq!(r["last_message"]["reply_to"]["quote"], "short one", "{r}");
    let list = app
        .expect(200, "GET", "/api/v1/rooms?mine=true", Some(&bob), None)
        .await;
    assert_eq!(list["items"][0]["last_message"]["reply_to"]["seq"], 2, "{list}");

    // History shows the parent as it is now: not a reply is `null`, a deleted parent a tombstone.
    app.expect(204, "DELETE", &format!("{}/1", messages(&room)), Some(&alice), None)
        .await;
    let page = app
        .expect(200, "GET", &format!("{}?after=0", messages(&room)), Some(&bob), None)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items[0]["reply_to"], Value::Null);
    assert_eq!(
        items[2]["reply_to"],
        json!({"seq": 1, "author": "alice", "quote": null, "truncated": false, "deleted": true})
    );
    assert_eq!(items[3]["reply_to"]["quote"], "short one");

    // A deleted message cannot be replied to any more.
    let (s, e) = reply(&app, &bob, &room, "late", json!(1)).await;
    assert_eq!((s, code(&e)), (409, "reply_to_deleted"));
}

#[tokio::test]
async fn reply_to_must_name_an_earlier_message_of_the_room() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "club", "public").await;
    let other = app.room(&alice, "other", "public").await;
    app.say(&alice, &room, "one").await;
    for _ in 0..3 {
        app.say(&alice, &other, "elsewhere").await;
    }
    for bad in [json!(0), json!(-1), json!(2), json!(3), json!(i64::MAX)] {
        let (s, e) = reply(&app, &alice, &room, "hm", bad.clone()).await;
        assert_eq!((s, code(&e)), (422, "invalid_reply_to"), "reply_to {bad}: {e}");
    }
    for bad in [json!("1"), json!(1.5), json!([1]), json!({"seq": 1})] {
        let (s, e) = reply(&app, &alice, &room, "hm", bad.clone()).await;
        assert_eq!((s, code(&e)), (400, "invalid_request"), "reply_to {bad}: {e}");
    }
    // Nothing was stored by the refused ones: the next message is seq 2.
    let (s, m) = reply(&app, &alice, &room, "ok", json!(null)).await;
    assert_eq!((s, &m["seq"], &m["reply_to"]), (201, &json!(2), &Value::Null));
    // A retry of a reply returns the original, with its parent.
    let body = json!({"body": "retry me", "client_msg_id": "r-1", "reply_to": 2});
    let first = app
        .expect(201, "POST", &messages(&room), Some(&alice), Some(body.clone()))
        .await;
    let again = app
        .expect(201, "POST", &messages(&room), Some(&alice), Some(body))
        .await;
    assert_eq!(first, again);
    assert_eq!(again["reply_to"]["seq"], 2);
}

#[tokio::test]
async fn replies_over_the_websocket_are_acked_and_delivered_with_their_parent() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "club", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    app.say(&alice, &room, "the question").await;

    let mut watcher = app.ws(&alice).await;
    watcher.subscribe(&room, None).await;
    let mut ws = app.ws(&bob).await;
    let frame = json!({"type": "send", "room_id": room, "body": "the answer", "client_msg_id": "w-1", "reply_to": 1});
    let ack = ws.request(frame, "s1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let parent = json!({"seq": 1, "author": "alice", "quote": "the question", "truncated": false, "deleted": false});
    assert_eq!(ack["message"]["reply_to"], parent);
    let live = watcher.next_of("message").await;
    assert_eq!((&live["seq"], &live["reply_to"]), (&json!(2), &parent));
    assert_eq!(live["reactions"], json!([]));

    // Refused replies are error frames with the same codes; the connection goes on.
    for (to, want) in [
        (json!(0), "invalid_reply_to"),
        (json!(-4), "invalid_reply_to"),
        (json!(9), "invalid_reply_to"),
        (json!("1"), "invalid_frame"),
    ] {
        let frame = json!({"type": "send", "room_id": room, "body": "x", "client_msg_id": "w-bad", "reply_to": to});
        let e = ws.request(frame, "bad").await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(want)),
            "{to}: {e}"
        );
    }
    // A subscriber catching up later gets the reply with its parent, from the database.
    let mut late = app.ws(&bob).await;
    late.subscribe(&room, Some(0)).await;
    let replayed = late.messages_from(&room, 1, 2).await;
    assert_eq!(replayed[1]["reply_to"], parent);
}

#[tokio::test]
async fn around_returns_the_messages_centred_on_one() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "club", "public").await;
    for i in 1..=10 {
        app.say(&alice, &room, &format!("m{i}")).await;
    }
    let around = |q: &str| format!("{}?{q}", messages(&room));
    let cases = [
        ("around=5&limit=5", vec![3, 4, 5, 6, 7]),
        ("around=5&limit=4", vec![3, 4, 5, 6]),
        ("around=5&limit=1", vec![5]),
        ("around=1&limit=5", vec![1, 2, 3, 4, 5]),
        ("around=1&limit=4", vec![1, 2, 3, 4]),
        ("around=10&limit=5", vec![6, 7, 8, 9, 10]),
        ("around=10&limit=4", vec![7, 8, 9, 10]),
        ("around=9&limit=4", vec![7, 8, 9, 10]),
        ("around=2&limit=50", (1..=10).collect()),
    ];
    for (q, want) in cases {
        let page = app.expect(200, "GET", &around(q), Some(&alice), None).await;
        assert_eq!(seqs(&page), want, "{q}");
        assert_eq!(page["next_cursor"], Value::Null, "{q}");
    }
    // A deleted message is still a place to jump to: its tombstone is in the middle.
    app.expect(204, "DELETE", &format!("{}/4", messages(&room)), Some(&alice), None)
        .await;
    let page = app
        .expect(200, "GET", &around("around=4&limit=3"), Some(&alice), None)
        .await;
    assert_eq!(
        (seqs(&page), &page["items"][1]["deleted"]),
        (vec![3, 4, 5], &json!(true))
    );

    for (q, status, want) in [
        ("around=5&before=3", 422, "invalid_query"),
        ("around=5&after=3", 422, "invalid_query"),
        ("around=0", 422, "invalid_seq"),
        ("around=-2", 422, "invalid_seq"),
        ("around=x", 422, "invalid_seq"),
        ("around=", 422, "invalid_seq"),
        ("around=5&limit=0", 422, "invalid_limit"),
        ("around=5&limit=201", 422, "invalid_limit"),
        ("around=5&around=6", 400, "invalid_query"),
        ("around=11", 404, "message_not_found"),
    ] {
        let (s, e) = app.call("GET", &around(q), Some(&alice), None).await;
        assert_eq!((s, code(&e)), (status, want), "{q}: {e}");
    }
}

#[tokio::test]
async fn reactions_are_one_per_user_and_emoji_counted_with_me_for_each_reader() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "club", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    app.say(&alice, &room, "react to me").await;

    let r = app
        .expect(200, "PUT", &reaction(&room, 1, "👍"), Some(&alice), None)
        .await;
    assert_eq!(
        r,
        json!({"room_id": room, "seq": 1, "reactions": [{"emoji": "👍", "count": 1, "me": true}]})
    );
    let again = app
        .expect(200, "PUT", &reaction(&room, 1, "👍"), Some(&alice), None)
        .await;
    assert_eq!(again, r, "adding it twice is one reaction");
    app.expect(200, "PUT", &reaction(&room, 1, "👍"), Some(&bob), None)
        .await;
    // `❤` without its variation selector is the same emoji as `❤️`.
    let r = app
        .expect(200, "PUT", &reaction(&room, 1, "\u{2764}"), Some(&bob), None)
        .await;
    assert_eq!(
        r["reactions"],
        json!([{"emoji": "👍", "count": 2, "me": true}, {"emoji": "\u{2764}\u{fe0f}", "count": 1, "me": true}])
    );
    app.expect(200, "PUT", &reaction(&room, 1, "👍🏽"), Some(&bob), None)
        .await;

    // Each reader sees `me` for themselves, in the order the emojis were first used.
    let as_seen_by = async |token: &str| {
        let page = app.expect(200, "GET", &messages(&room), Some(token), None).await;
        page["items"][0]["reactions"].clone()
    };
    assert_eq!(
        as_seen_by(&alice).await,
        json!([
            {"emoji": "👍", "count": 2, "me": true},
            {"emoji": "\u{2764}\u{fe0f}", "count": 1, "me": false},
            {"emoji": "👍🏽", "count": 1, "me": false},
        ])
    );
    let carol = app.user("carol").await;
    assert_eq!(
        as_seen_by(&carol).await[0],
        json!({"emoji": "👍", "count": 2, "me": false})
    );

    let r = app
        .expect(200, "DELETE", &reaction(&room, 1, "👍"), Some(&alice), None)
        .await;
    assert_eq!(r["reactions"][0], json!({"emoji": "👍", "count": 1, "me": false}));
    let again = app
        .expect(200, "DELETE", &reaction(&room, 1, "👍"), Some(&alice), None)
        .await;
    assert_eq!(again, r, "removing a missing reaction changes nothing");
    app.expect(200, "DELETE", &reaction(&room, 1, "👍"), Some(&bob), None)
        .await;
    let left = as_seen_by(&bob).await;
    assert_eq!(
        left.as_array().unwrap().len(),
        2,
        "an emoji nobody uses any more is gone: {left}"
    );

    // A deleted message has no reactions and takes none.
    app.expect(204, "DELETE", &format!("{}/1", messages(&room)), Some(&alice), None)
        .await;
    assert_eq!(as_seen_by(&bob).await, json!([]));
    for method in ["PUT", "DELETE"] {
        let (s, e) = app.call(method, &reaction(&room, 1, "👍"), Some(&bob), None).await;
        assert_eq!((s, code(&e)), (409, "message_deleted"), "{method}");
    }
}

#[tokio::test]
async fn emojis_are_validated_and_capped_per_message() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "club", "public").await;
    app.say(&alice, &room, "hi").await;
    let raw = |e: &str| format!("/api/v1/rooms/{room}/messages/1/reactions/{e}");
    for bad in [
        reaction(&room, 1, "a"),
        reaction(&room, 1, "ok"),
        reaction(&room, 1, "👍👍"),
        reaction(&room, 1, "👍 "),
        reaction(&room, 1, &"👍".repeat(17)),
        raw("%F0%9F"),
        raw("%ZZ"),
        raw("%3A%2B1%3A"),
    ] {
        let (s, e) = app.call("PUT", &bad, Some(&alice), None).await;
        assert_eq!((s, code(&e)), (422, "invalid_emoji"), "{bad}: {e}");
    }
    for (path, want) in [
        (reaction(&room, 2, "👍"), "message_not_found"),
        (reaction(&room, 0, "👍"), "message_not_found"),
    ] {
        let (s, e) = app.call("PUT", &path, Some(&alice), None).await;
        assert_eq!((s, code(&e)), (404, want), "{path}");
    }

    // 50 different emojis at most on one message; one already there may still be added.
    let many: Vec<&str> = emojis::iter()
        .filter(|e| e.skin_tone().is_none())
        .map(|e| e.as_str())
        .take(51)
        .collect();
    let db = app.db.client().await;
    db.execute(
        "INSERT INTO message_reactions (message_id, emoji, user_id) \
         SELECT m.id, e, u.id FROM messages m, users u, unnest($1::text[]) e WHERE m.seq = 1 AND u.username = 'alice'",
        &[&&many[..50]],
    )
    .await
    .unwrap();
    let (s, e) = app.call("PUT", &reaction(&room, 1, many[50]), Some(&alice), None).await;
    assert_eq!((s, code(&e)), (409, "too_many_reactions"));
    let bob = app.user("bob").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let r = app
        .expect(200, "PUT", &reaction(&room, 1, many[0]), Some(&bob), None)
        .await;
    let first = r["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["emoji"] == many[0])
        .cloned();
    assert_eq!(first, Some(json!({"emoji": many[0], "count": 2, "me": true})));
    assert_eq!(r["reactions"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn who_may_react_is_who_may_post() {
    let app = TestApp::spawn().await;
    let (alice, bob, mallory) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("mallory").await,
    );
    let public = app.room(&alice, "open", "public").await;
    let private = app.room(&alice, "closed", "private").await;
    app.say(&alice, &public, "hi").await;
    app.say(&alice, &private, "psst").await;

    let refused = async |token: &str, room: &str| {
        let (s, e) = app.call("PUT", &reaction(room, 1, "👍"), Some(token), None).await;
        let (s2, e2) = app.call("DELETE", &reaction(room, 1, "👍"), Some(token), None).await;
        assert_eq!((s, code(&e)), (s2, code(&e2)), "PUT and DELETE agree");
        (s, code(&e).to_owned())
    };
    assert_eq!(refused(&bob, &public).await, (403, "not_a_member".into()));
    assert_eq!(refused(&bob, &private).await, (404, "room_not_found".into()));
    // Even with a bad emoji or seq, a private room stays invisible.
    let (s, e) = app.call("PUT", &reaction(&private, 9, "x"), Some(&bob), None).await;
    assert_eq!((s, code(&e)), (404, "room_not_found"));
    let (s, _) = app.call("PUT", &reaction(&public, 1, "👍"), None, None).await;
    assert_eq!(s, 401);

    // Kicked: a non-member again. Banned: refused.
    app.expect(200, "POST", &format!("/api/v1/rooms/{public}/join"), Some(&bob), None)
        .await;
    app.expect(200, "PUT", &reaction(&public, 1, "👍"), Some(&bob), None)
        .await;
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{public}/members/bob"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(refused(&bob, &public).await, (403, "not_a_member".into()));
    app.expect(
        200,
        "POST",
        &format!("/api/v1/rooms/{public}/join"),
        Some(&mallory),
        None,
    )
    .await;
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{public}/bans"),
            Some(&alice),
            Some(json!({"username": "mallory"})),
        )
        .await;
    assert!(s == 201 || s == 200, "ban: {s} {b}");
    assert_eq!(refused(&mallory, &public).await, (403, "banned".into()));

    // Archived: read-only for everyone.
    app.expect(204, "DELETE", &format!("/api/v1/rooms/{public}"), Some(&alice), None)
        .await;
    assert_eq!(refused(&alice, &public).await, (409, "room_archived".into()));
    // Bob's reaction from before is still counted.
    let page = app.expect(200, "GET", &messages(&public), Some(&alice), None).await;
    assert_eq!(
        page["items"][0]["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}])
    );
}

#[tokio::test]
async fn subscribers_see_reactions_live() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = app.room(&alice, "club", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    app.say(&alice, &room, "react to me").await;
    let mut ws = app.ws(&alice).await;
    ws.subscribe(&room, None).await;

    app.expect(200, "PUT", &reaction(&room, 1, "🎉"), Some(&bob), None)
        .await;
    let f = ws.next_of("reaction").await;
    assert_eq!(
        f,
        json!({"type": "reaction", "room_id": room, "seq": 1, "emoji": "🎉", "user": "bob", "added": true, "count": 1})
    );
    // Nothing changes, nothing is sent; the next change is.
    app.expect(200, "PUT", &reaction(&room, 1, "🎉"), Some(&bob), None)
        .await;
    app.expect(200, "DELETE", &reaction(&room, 1, "🎉"), Some(&bob), None)
        .await;
    let f = ws.next_of("reaction").await;
    assert_eq!((&f["added"], &f["count"]), (&json!(false), &json!(0)));

    // An edit's frame carries the reactions too.
    app.expect(200, "PUT", &reaction(&room, 1, "🎉"), Some(&bob), None)
        .await;
    ws.next_of("reaction").await;
    app.expect(
        200,
        "PATCH",
        &format!("{}/1", messages(&room)),
        Some(&alice),
        Some(json!({"body": "edited"})),
    )
    .await;
    let f = ws.next_of("message_edited").await;
    assert_eq!(f["reactions"], json!([{"emoji": "🎉", "count": 1, "me": false}]));
    // A late subscriber's replay shows the reactions with its own `me`.
    let mut late = app.ws(&bob).await;
    late.subscribe(&room, Some(0)).await;
    let m = late.next_of("message").await;
    assert_eq!(m["reactions"], json!([{"emoji": "🎉", "count": 1, "me": true}]));
}
