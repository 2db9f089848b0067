//! Mentions (`@username`), the `mention` frame, mention and unread counts in the room list, in
//! read markers and in `hello`.

use serde_json::{json, Value};

use crate::helpers::{TestApp, WsClient};
use chatd::config::BusKind;

/// Alice owns the public room `name`; each of `members` has joined it. Tokens in order
/// (alice first), and the room's id.
async fn room_with(app: &TestApp, name: &str, members: &[&str]) -> (Vec<String>, String) {
    let alice = app.user("alice").await;
    let room = app.room(&alice, name, "public").await;
    let mut tokens = vec![alice];
    for m in members {
        let t = app.user(m).await;
        app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&t), None)
            .await;
        tokens.push(t);
    }
    (tokens, room)
}

fn names(message: &Value) -> Vec<&str> {
    message["mentions"]
        .as_array()
        .unwrap_or_else(|| panic!("no mentions in {message}"))
        .iter()
        .map(|m| m["username"].as_str().expect("a username"))
        .collect()
}

async fn user_id(app: &TestApp, token: &str) -> Value {
    let (s, me) = app.me(token).await;
    assert_eq!(s, 200, "{me}");
    me["id"].clone()
}

/// `token`'s entry for `room` in `GET /rooms?mine=true`.
async fn listed(app: &TestApp, token: &str, room: &str) -> Value {
    let page = app
        .expect(200, "GET", "/api/v1/rooms?mine=true", Some(token), None)
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("{room} not in {page}"))
        .clone()
}

/// `(unread_count, mention_count)` of `room` in the room list.
async fn counts(app: &TestApp, token: &str, room: &str) -> (i64, i64) {
    let r = listed(app, token, room).await;
    (
        r["unread_count"].as_i64().expect("unread_count"),
        r["mention_count"].as_i64().expect("mention_count"),
    )
}

/// `room`'s entry in a `hello`.
fn in_hello<'a>(hello: &'a Value, room: &str) -> &'a Value {
    hello["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("no rooms in {hello}"))
        .iter()
        .find(|r| r["room_id"] == room)
        .unwrap_or_else(|| panic!("{room} not in {hello}"))
}

/// Asserts no `mention` frame is waiting: a ping's pong comes first.
async fn no_mention(ws: &mut WsClient) {
    ws.send(json!({"type": "ping", "id": "none"})).await;
    loop {
        let f = ws.next().await;
        assert_ne!(f["type"], "mention", "an unexpected mention: {f}");
        if f["type"] == "pong" {
            return;
        }
    }
}

#[tokio::test]
async fn members_named_are_mentioned_once_case_insensitively_and_the_rest_ignored() {
    let app = TestApp::spawn().await;
    let (t, room) = room_with(&app, "Lobby", &["bob", "carol"]).await;
    let _dave = app.user("dave").await; // exists, not a member
    let body = "hi @BOB and @bob, (@Carol) @dave @nobody a@carol.com bob@x.io @alice";
    let sent = app.say(&t[0], &room, body).await;
    assert_eq!(names(&sent), ["bob", "carol"], "{sent}");
    assert_eq!(sent["mentions"][0]["user_id"], user_id(&app, &t[1]).await);
    assert_eq!(sent["mentions"][1]["user_id"], user_id(&app, &t[2]).await);
    // An address alone names no one; history says the same as the answer.
    let plain = app.say(&t[0], &room, "mail carol@example.com or a@bob.com").await;
    assert_eq!(names(&plain), Vec::<&str>::new());
    let history = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}/messages"), Some(&t[2]), None)
        .await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{history}");
    assert_eq!(names(&items[0]), Vec::<&str>::new());
    assert_eq!(items[1]["mentions"], sent["mentions"]);
    // The room list's last message carries them too.
    let r = listed(&app, &t[1], &room).await;
    assert_eq!(r["last_message"]["seq"], 2);
    assert_eq!(names(&r["last_message"]), Vec::<&str>::new());
}

#[tokio::test]
async fn a_mentioned_member_hears_of_it_on_every_connection_without_subscribing() {
    let app = TestApp::spawn().await;
    let (t, room) = room_with(&app, "Lobby", &["bob", "carol"]).await;
    let mut phone = app.ws(&t[1]).await;
    let mut laptop = app.ws(&t[1]).await;
    let mut carol = app.ws(&t[2]).await;
    let mut alice = app.ws(&t[0]).await;
    let ack = alice
        .request(
            json!({"type": "send", "room_id": room, "body": "@bob look at this", "client_msg_id": "m1"}),
            "s1",
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(names(&ack["message"]), ["bob"]);
    for bob in [&mut phone, &mut laptop] {
        let m = bob.next_of("mention").await;
        assert_eq!(m["room_id"], room, "{m}");
        assert_eq!(m["seq"], 1);
        assert_eq!(m["author"], "alice");
        assert_eq!(m["message"]["body"], "@bob look at this");
        assert_eq!(names(&m["message"]), ["bob"]);
    }
    // Carol is a member, connected, and not named: nothing. Nor is the author told.
    no_mention(&mut carol).await;
    no_mention(&mut alice).await;
    // A subscriber named gets the message as usual, and the mention.
    carol.subscribe(&room, None).await;
    app.say(&t[0], &room, "and @carol").await;
    // Both, in either order (they travel apart).
    let mut got = Vec::new();
    while got.len() < 2 {
        let f = carol.next().await;
        if f["type"] == "message" || f["type"] == "mention" {
            got.push(f);
        }
    }
    got.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    assert_eq!(
        (&got[0]["type"], &got[1]["type"]),
        (&json!("mention"), &json!("message"))
    );
    assert_eq!(names(&got[1]), ["carol"]);
    assert_eq!(got[0]["seq"], 2);
    no_mention(&mut phone).await;
}

#[tokio::test]
async fn a_non_member_named_in_a_private_room_hears_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let dave = app.user("dave").await;
    let secret = app.room(&alice, "Secret", "private").await;
    let open = app.room(&alice, "Open", "public").await;
    app.expect(200, "POST", &format!("/api/v1/rooms/{open}/join"), Some(&dave), None)
        .await;
    let mut d = app.ws(&dave).await;
    let sent = app.say(&alice, &secret, "@dave must not know").await;
    assert_eq!(names(&sent), Vec::<&str>::new());
    app.say(&alice, &open, "hello @dave").await;
    // The first mention Dave hears of is the one in the room he is in.
    let m = d.next_of("mention").await;
    assert_eq!(m["room_id"], open, "{m}");
    assert_eq!(m["message"]["body"], "hello @dave");
    no_mention(&mut d).await;
}

#[tokio::test]
async fn counts_in_the_room_list_hello_and_read_markers_agree_across_devices() {
    let app = TestApp::spawn().await;
    let (t, room) = room_with(&app, "Lobby", &["bob"]).await;
    let (alice, bob) = (&t[0], &t[1]);
    app.say(alice, &room, "@bob one").await;
    app.say(alice, &room, "plain").await;
    app.say(alice, &room, "@bob three").await;
    assert_eq!(counts(&app, bob, &room).await, (3, 2));
    assert_eq!(counts(&app, alice, &room).await, (0, 0), "what I write, I have read");
    let single = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}"), Some(bob), None)
        .await;
    assert_eq!(single["mention_count"], 2, "{single}");

    let mut phone = app.ws(bob).await;
    let mut laptop = app.ws(bob).await;
    let r = in_hello(&phone.hello, &room);
    assert_eq!(
        (&r["last_seq"], &r["unread_count"], &r["mention_count"]),
        (&json!(3), &json!(3), &json!(2)),
        "{r}"
    );
    assert_eq!(phone.hello["rooms_truncated"], false);

    // Reading up to 2 on the phone: one unread mention left, on both devices.
    let read = phone
        .request(json!({"type": "read", "room_id": room, "seq": 2}), "r1")
        .await;
    assert_eq!(read["type"], "read_marker", "{read}");
    let pushed = laptop.next_of("read_marker").await;
    assert_eq!(pushed["room_id"], room);
    assert_eq!(pushed["mention_count"], read["mention_count"]);
    assert_eq!(pushed["unread_count"], read["unread_count"]);
    assert_eq!((&read["unread_count"], &read["mention_count"]), (&json!(1), &json!(1)));
    assert_eq!(counts(&app, bob, &room).await, (1, 1));
    let again = app.ws(bob).await;
    assert_eq!(in_hello(&again.hello, &room)["mention_count"], 1);
    // Over REST too.
    let state = app
        .expect(
            200,
            "PUT",
            &format!("/api/v1/rooms/{room}/read"),
            Some(bob),
            Some(json!({"seq": 3})),
        )
        .await;
    assert_eq!(
        (&state["unread_count"], &state["mention_count"]),
        (&json!(0), &json!(0))
    );
    let pushed = laptop.next_of("read_marker").await;
    assert_eq!(pushed["mention_count"], 0);
    assert_eq!(counts(&app, bob, &room).await, (0, 0));
}

#[tokio::test]
async fn hello_describes_my_rooms_before_anything_is_read() {
    let app = TestApp::spawn().await;
    let (t, room) = room_with(&app, "Lobby", &["bob"]).await;
    let quiet = app.room(&t[0], "Quiet", "public").await;
    app.say(&t[0], &room, "@bob @bob hey").await;
    app.say(&t[0], &room, "again @bob").await;
    let bob = app.ws(&t[1]).await;
    let r = in_hello(&bob.hello, &room);
    assert_eq!(
        r,
        &json!({"room_id": room, "last_seq": 2, "last_read_seq": 0, "unread_count": 2, "mention_count": 2})
    );
    // Only rooms I am a member of.
    assert!(
        !bob.hello["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room_id"] == quiet),
        "{}",
        bob.hello
    );
    let alice = app.ws(&t[0]).await;
    assert_eq!(in_hello(&alice.hello, &quiet)["unread_count"], 0);
}

#[tokio::test]
async fn a_mention_in_a_deleted_message_no_longer_counts() {
    let app = TestApp::spawn().await;
    let (t, room) = room_with(&app, "Lobby", &["bob"]).await;
    app.say(&t[0], &room, "@bob first").await;
    app.say(&t[0], &room, "@bob second").await;
    assert_eq!(counts(&app, &t[1], &room).await, (2, 2));
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/messages/1"),
        Some(&t[0]),
        None,
    )
    .await;
    assert_eq!(counts(&app, &t[1], &room).await, (1, 1));
    let bob = app.ws(&t[1]).await;
    assert_eq!(in_hello(&bob.hello, &room)["mention_count"], 1);
    let history = app
        .expect(200, "GET", &format!("/api/v1/rooms/{room}/messages"), Some(&t[1]), None)
        .await;
    let tomb = &history["items"][1];
    assert_eq!((&tomb["seq"], &tomb["deleted"]), (&json!(1), &json!(true)));
    assert_eq!(names(tomb), Vec::<&str>::new(), "a tombstone names no one");
}

#[tokio::test]
async fn an_edit_names_anew_and_only_those_named_for_the_first_time_hear_of_it() {
    let app = TestApp::spawn().await;
    let (t, room) = room_with(&app, "Lobby", &["bob", "carol"]).await;
    let mut bob = app.ws(&t[1]).await;
    let mut carol = app.ws(&t[2]).await;
    app.say(&t[0], &room, "hello").await;
    let path = format!("/api/v1/rooms/{room}/messages/1");
    let edited = app
        .expect(200, "PATCH", &path, Some(&t[0]), Some(json!({"body": "hello @bob"})))
        .await;
    assert_eq!(names(&edited), ["bob"]);
    let m = bob.next_of("mention").await;
    assert_eq!((&m["seq"], &m["message"]["body"]), (&json!(1), &json!("hello @bob")));
    assert_eq!(counts(&app, &t[1], &room).await.1, 1);
    // Bob again, and Carol for the first time: only Carol hears.
    let edited = app
        .expect(
            200,
            "PATCH",
            &path,
            Some(&t[0]),
            Some(json!({"body": "@carol and @bob"})),
        )
        .await;
    assert_eq!(names(&edited), ["carol", "bob"]);
    let m = carol.next_of("mention").await;
    assert_eq!(m["seq"], 1);
    no_mention(&mut bob).await;
    // Unnamed: no longer counts.
    app.expect(
        200,
        "PATCH",
        &path,
        Some(&t[0]),
        Some(json!({"body": "never mind @carol"})),
    )
    .await;
    assert_eq!(counts(&app, &t[1], &room).await, (1, 0));
    assert_eq!(counts(&app, &t[2], &room).await, (1, 1));
    no_mention(&mut carol).await;
}

#[tokio::test]
async fn a_mention_reaches_a_member_connected_to_another_node_even_in_a_large_message() {
    let a = TestApp::spawn_with(|c| c.cluster.bus = BusKind::Postgres).await;
    let b = a.spawn_node(|_| {}).await;
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let room = a.room(&alice, "Lobby", "public").await;
    b.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let mut on_b = b.ws(&bob).await;
    a.say(&alice, &room, "hey @bob").await;
    let m = on_b.next_of("mention").await;
    assert_eq!((&m["room_id"], &m["seq"]), (&json!(room), &json!(1)), "{m}");
    assert_eq!(m["message"]["body"], "hey @bob");
    // Too large for a notification payload: read from the database on the other node.
    let large = format!("@bob {}", "€".repeat(3000));
    a.say(&alice, &room, &large).await;
    let m = on_b.next_of("mention").await;
    assert_eq!(m["seq"], 2, "{}", m["seq"]);
    assert_eq!(m["message"]["body"], large.as_str());
    assert_eq!(names(&m["message"]), ["bob"]);
}
